/* align.c — registration of an upload to a reference view and the full-resolution warp.
 *
 * Features: VLFeat SIFT (DoG keypoints, up to four orientations each, 128-d descriptors turned
 * into RootSIFT) on grey copies of the two analysis tensors. Keypoint positions move to
 * full-resolution pixel coordinates with the pixel-area convention (pixel i covers [i, i+1),
 * so a tensor coordinate x maps to (x + 0.5) * scale), which keeps H exact across the two
 * images' different shrink factors. Matching: approximate nearest neighbours in a VLFeat
 * kd-forest, Lowe's ratio test, and a mutual-nearest check. Model: LO-RANSAC homography from
 * homography.c, then sanity checks (enough inliers, no mirror/fold, sane area change); a
 * model that fails them is reported as "not found" and nothing is warped.
 *
 * The warp maps every reference-frame output pixel back through H^-1 into the input with
 * libvips (vips_affine when H is affine, vips_mapim otherwise), so it runs at full resolution
 * and streams like the rest of the pipeline. */
#include "align.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <vl/kdtree.h>
#include <vl/sift.h>

#include "homography.h"
#include "image_vips.h"

#define DESC_DIM 128

/* Tuning (chosen on ../shared/data/train synthetic pairs, never on public/). */
#define PEAK_THRESH 0.004   /* DoG contrast (image in 0..1); below OpenCV's ~0.013 for low-texture shots */
#define EDGE_THRESH 10.0    /* Lowe's edge ratio */
#define MAX_FEATURES 5000   /* strongest keypoints kept per image (bounds matching time) */
#define UPSAMPLE_BELOW 700  /* longest side under which the first octave is upsampled */
#define RATIO 0.8           /* Lowe's ratio test on descriptor distance */
#define KD_TREES 4
#define KD_CHECKS 200
#define RANSAC_THRESH 2.0   /* inlier distance in reference analysis pixels */
#define MIN_INLIERS 12
#define MIN_INLIER_RATIO 0.10

typedef struct {
    int n, cap;
    double *xy;     /* full-resolution coordinates, 2 per feature */
    float *peak;    /* |DoG| at the keypoint, to keep the strongest */
    float *desc;    /* DESC_DIM per feature */
} features;

static void features_clear(features *f)
{
    free(f->xy);
    free(f->peak);
    free(f->desc);
    memset(f, 0, sizeof *f);
}

static int features_grow(features *f)
{
    int cap = f->cap ? f->cap * 2 : 1024;
    double *xy = realloc(f->xy, sizeof(double) * 2 * (size_t)cap);
    if (!xy)
        return -1;
    f->xy = xy;
    float *pk = realloc(f->peak, sizeof(float) * (size_t)cap);
    if (!pk)
        return -1;
    f->peak = pk;
    float *d = realloc(f->desc, sizeof(float) * DESC_DIM * (size_t)cap);
    if (!d)
        return -1;
    f->desc = d;
    f->cap = cap;
    return 0;
}

/* RootSIFT (Arandjelovic & Zisserman 2012): L1-normalise, then square-root, so that Euclidean
 * distance between descriptors behaves like the Hellinger kernel — better ratio-test matches
 * at no cost. */
static void root_sift(float *d)
{
    float s = 0;
    for (int i = 0; i < DESC_DIM; i++)
        s += d[i];
    if (s <= 0)
        return;
    for (int i = 0; i < DESC_DIM; i++)
        d[i] = sqrtf(d[i] / s);
}

/* |DoG| at a keypoint's integer location (VLFeat's filter struct is public; the value is the
 * detector's own contrast measure). */
static float key_peak(const VlSiftFilt *sf, const VlSiftKeypoint *k)
{
    int w = sf->octave_width, h = sf->octave_height;
    int ix = k->ix < 0 ? 0 : (k->ix >= w ? w - 1 : k->ix);
    int iy = k->iy < 0 ? 0 : (k->iy >= h ? h - 1 : k->iy);
    int is = k->is - sf->s_min;
    if (is < 0)
        is = 0;
    if (is > sf->s_max - sf->s_min - 1)
        is = sf->s_max - sf->s_min - 1;
    return fabsf(sf->dog[(size_t)is * w * h + (size_t)iy * w + ix]);
}

static pimg_status extract(const pimg_tensor *t, double scale, features *f, pimg_error *err)
{
    pimg_tensor *g = pimg_tensor_grey(t);
    if (!g)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for the grey analysis copy");
    int side = g->w > g->h ? g->w : g->h;
    int omin = side < UPSAMPLE_BELOW ? -1 : 0;
    VlSiftFilt *sf = vl_sift_new(g->w, g->h, -1, 3, omin);
    if (!sf) {
        pimg_tensor_free(g);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for SIFT");
    }
    vl_sift_set_peak_thresh(sf, PEAK_THRESH);
    vl_sift_set_edge_thresh(sf, EDGE_THRESH);
    pimg_status st = PIMG_OK;
    int r = vl_sift_process_first_octave(sf, g->data);
    while (r == VL_ERR_OK) {
        vl_sift_detect(sf);
        const VlSiftKeypoint *keys = vl_sift_get_keypoints(sf);
        int nk = vl_sift_get_nkeypoints(sf);
        for (int i = 0; i < nk; i++) {
            double angles[4];
            int na = vl_sift_calc_keypoint_orientations(sf, angles, &keys[i]);
            float pk = key_peak(sf, &keys[i]);
            for (int a = 0; a < na; a++) {
                if (f->n == f->cap && features_grow(f)) {
                    st = pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for SIFT features");
                    goto out;
                }
                float *d = f->desc + (size_t)f->n * DESC_DIM;
                vl_sift_calc_keypoint_descriptor(sf, d, &keys[i], angles[a]);
                root_sift(d);
                f->xy[2 * f->n] = (keys[i].x + 0.5) * scale;
                f->xy[2 * f->n + 1] = (keys[i].y + 0.5) * scale;
                f->peak[f->n] = pk;
                f->n++;
            }
        }
        r = vl_sift_process_next_octave(sf);
    }
out:
    vl_sift_delete(sf);
    pimg_tensor_free(g);
    return st;
}

static int cmp_desc_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Keeps the MAX_FEATURES strongest features (by |DoG|), in place. */
static void keep_strongest(features *f)
{
    if (f->n <= MAX_FEATURES)
        return;
    float *tmp = malloc(sizeof(float) * (size_t)f->n);
    if (!tmp)
        return;
    memcpy(tmp, f->peak, sizeof(float) * (size_t)f->n);
    qsort(tmp, (size_t)f->n, sizeof(float), cmp_desc_float);
    float cut = tmp[MAX_FEATURES - 1];
    free(tmp);
    int m = 0;
    for (int i = 0; i < f->n && m < MAX_FEATURES; i++) {
        if (f->peak[i] < cut)
            continue;
        if (m != i) {
            f->xy[2 * m] = f->xy[2 * i];
            f->xy[2 * m + 1] = f->xy[2 * i + 1];
            f->peak[m] = f->peak[i];
            memcpy(f->desc + (size_t)m * DESC_DIM, f->desc + (size_t)i * DESC_DIM, sizeof(float) * DESC_DIM);
        }
        m++;
    }
    f->n = m;
}

/* A kd-forest over f's descriptors with a fixed seed, so results are repeatable. The forest
 * borrows f->desc and *rng; both must outlive it. */
static VlKDForest *build_forest(const features *f, VlRand *rng)
{
    VlKDForest *kd = vl_kdforest_new(VL_TYPE_FLOAT, DESC_DIM, KD_TREES, VlDistanceL2);
    if (!kd)
        return NULL;
    vl_rand_init(rng);
    vl_rand_seed(rng, 7);
    kd->rand = rng;
    vl_kdforest_set_max_num_comparisons(kd, KD_CHECKS);
    vl_kdforest_build(kd, (vl_size)f->n, f->desc);
    return kd;
}

/* Ratio-test + mutual-nearest matches from a to b; writes pairs of coordinates into src/dst
 * (caller-allocated, a->n entries each) and returns their count, or -1 on no memory. */
static int match(const features *a, const features *b, double *src, double *dst)
{
    VlRand ra, rb;
    VlKDForest *kb = build_forest(b, &rb);
    VlKDForest *ka = build_forest(a, &ra);
    VlKDForestSearcher *sb = kb ? vl_kdforest_new_searcher(kb) : NULL;
    VlKDForestSearcher *sa = ka ? vl_kdforest_new_searcher(ka) : NULL;
    int m = -1;
    if (!sb || !sa)
        goto out;
    m = 0;
    for (int i = 0; i < a->n; i++) {
        VlKDForestNeighbor nb[2];
        if (vl_kdforestsearcher_query(sb, nb, 2, a->desc + (size_t)i * DESC_DIM) < 2)
            continue;
        /* VLFeat's L2 distance is squared. */
        if (!(nb[0].distance < RATIO * RATIO * nb[1].distance))
            continue;
        int j = (int)nb[0].index;
        VlKDForestNeighbor back[1];
        if (vl_kdforestsearcher_query(sa, back, 1, b->desc + (size_t)j * DESC_DIM) < 1)
            continue;
        /* Mutual check by position rather than index: one keypoint can carry several
         * orientations, and any of them coming back is the same point. */
        int k = (int)back[0].index;
        if (k != i && (fabs(a->xy[2 * k] - a->xy[2 * i]) > 1e-6 || fabs(a->xy[2 * k + 1] - a->xy[2 * i + 1]) > 1e-6))
            continue;
        src[2 * m] = a->xy[2 * i];
        src[2 * m + 1] = a->xy[2 * i + 1];
        dst[2 * m] = b->xy[2 * j];
        dst[2 * m + 1] = b->xy[2 * j + 1];
        m++;
    }
out:
    if (kb)
        vl_kdforest_delete(kb); /* also deletes its searchers */
    if (ka)
        vl_kdforest_delete(ka);
    return m;
}

/* Removes duplicate correspondences (the same point pair found through two orientations), which
 * would otherwise count twice in RANSAC's inlier ratio. */
static int dedupe(double *src, double *dst, int n)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int k = m - 1; k >= 0 && k >= m - 8 && !dup; k--)
            dup = fabs(src[2 * k] - src[2 * i]) < 1e-6 && fabs(src[2 * k + 1] - src[2 * i + 1]) < 1e-6 &&
                  fabs(dst[2 * k] - dst[2 * i]) < 1e-6 && fabs(dst[2 * k + 1] - dst[2 * i + 1]) < 1e-6;
        if (dup)
            continue;
        memmove(src + 2 * m, src + 2 * i, 2 * sizeof(double));
        memmove(dst + 2 * m, dst + 2 * i, 2 * sizeof(double));
        m++;
    }
    return m;
}

pimg_status pimg_align_estimate(const pimg_tensor *in, double in_scale, const pimg_tensor *ref,
                                double ref_scale, pimg_align_result *out, pimg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!in || !ref || !(in_scale > 0) || !(ref_scale > 0))
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "align: missing tensor or bad scale");
    features fa = {0}, fb = {0};
    double *src = NULL;
    pimg_status st = extract(in, in_scale, &fa, err);
    if (!st)
        st = extract(ref, ref_scale, &fb, err);
    if (st)
        goto out;
    keep_strongest(&fa);
    keep_strongest(&fb);
    out->features_in = fa.n;
    out->features_ref = fb.n;
    if (fa.n < 4 || fb.n < 4)
        goto out; /* not enough texture: found = 0 */
    src = malloc(sizeof(double) * 4 * (size_t)fa.n);
    if (!src) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for matches");
        goto out;
    }
    double *dst = src + 2 * (size_t)fa.n;
    int m = match(&fa, &fb, src, dst);
    if (m < 0) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for the kd-forest");
        goto out;
    }
    m = dedupe(src, dst, m);
    out->matches = m;
    if (m < MIN_INLIERS)
        goto out;
    pimg_ransac_opts ro = {.thresh = RANSAC_THRESH * ref_scale, .confidence = 0.9999,
                           .max_iter = 20000, .min_iter = 200, .seed = 12345};
    double H[9];
    int ninl = 0;
    pimg_error rerr = {0};
    pimg_status rs = pimg_homography_ransac(src, dst, m, &ro, H, NULL, &ninl, &rerr);
    if (rs == PIMG_ERR_NOMEM) {
        st = pimg_error_set(err, rs, "%s", rerr.msg);
        goto out;
    }
    if (rs)
        goto out; /* no consistent model: found = 0 */
    out->inliers = ninl;
    memcpy(out->H, H, sizeof H);
    double w = in->w * in_scale, h = in->h * in_scale;
    out->found = ninl >= MIN_INLIERS && ninl >= MIN_INLIER_RATIO * m &&
                 pimg_homography_plausible(H, w, h, 16.0);
out:
    free(src);
    features_clear(&fa);
    features_clear(&fb);
    return st;
}

pimg_status pimg_align_warp(pimg_image *img, const double H[9], int ref_w, int ref_h, pimg_error *err)
{
    if (ref_w < 1 || ref_h < 1)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "align: bad reference size %dx%d", ref_w, ref_h);
    double Hi[9];
    if (pimg_homography_invert(H, Hi))
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "align: homography is singular");
    VipsImage *in;
    pimg_status st = pimg_image_vips(img, &in, err);
    if (st)
        return st;
    /* Output pixel index (x, y) has area-convention centre (x + .5, y + .5); its source index
     * is H^-1 of that centre minus .5, i.e. M = T^-1 * H^-1 * T with T a shift by .5. */
    double M[9];
    memcpy(M, Hi, sizeof M);
    for (int r = 0; r < 3; r++) /* right-multiply by T: column 2 += .5 * (column 0 + column 1) */
        M[r * 3 + 2] += 0.5 * (M[r * 3] + M[r * 3 + 1]);
    for (int c = 0; c < 3; c++) { /* left-multiply by T^-1: rows 0 and 1 -= .5 * row 2 */
        M[c] -= 0.5 * M[6 + c];
        M[3 + c] -= 0.5 * M[6 + c];
    }

    /* The index image for vips_mapim: for every output pixel, (u, v) = dehomogenised M (x, y, 1).
     * Built lazily from vips_xyz, so it streams in strips like the rest of the pipeline. */
    VipsImage *t[9] = {NULL};
    VipsImage *outimg = NULL;
    VipsImage *mat = vips_image_new_matrixv(3, 3, M[0], M[1], M[2], M[3], M[4], M[5], M[6], M[7], M[8]);
    VipsInterpolate *interp = vips_interpolate_new("bicubic");
    /* White where the input does not cover the reference frame: product shots sit on white. */
    VipsArrayDouble *bg = vips_array_double_newv(3, 255.0, 255.0, 255.0);
    int fail = !mat || !interp || !bg;
    if (!fail)
        fail = vips_xyz(&t[0], ref_w, ref_h, NULL) || vips_cast(t[0], &t[1], VIPS_FORMAT_DOUBLE, NULL) ||
               vips_bandjoin_const1(t[1], &t[2], 1.0, NULL) || vips_recomb(t[2], &t[3], mat, NULL) ||
               vips_extract_band(t[3], &t[4], 0, "n", 2, NULL) || vips_extract_band(t[3], &t[5], 2, NULL) ||
               vips_divide(t[4], t[5], &t[6], NULL) || vips_cast(t[6], &t[7], VIPS_FORMAT_FLOAT, NULL) ||
               vips_mapim(in, &t[8], t[7], "interpolate", interp, "background", bg, NULL) ||
               vips_cast(t[8], &outimg, VIPS_FORMAT_UCHAR, NULL);
    for (int i = 0; i < 9; i++)
        if (t[i])
            g_object_unref(t[i]);
    if (mat)
        g_object_unref(mat);
    if (interp)
        g_object_unref(interp);
    if (bg)
        vips_area_unref(VIPS_AREA(bg));
    if (fail) {
        if (outimg)
            g_object_unref(outimg);
        return pimg_error_vips(err, PIMG_ERR_INTERNAL, "align warp");
    }
    pimg_image_set_vips(img, outimg);
    return PIMG_OK;
}
