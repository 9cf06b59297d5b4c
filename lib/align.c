/* align.c — registration of an upload to a reference view and the full-resolution warp.
 *
 * Features: VLFeat SIFT (DoG keypoints, up to four orientations each, 128-d descriptors turned
 * into RootSIFT) on grey copies of the two analysis tensors. Keypoint positions move to
 * full-resolution pixel coordinates with the pixel-area convention (pixel i covers [i, i+1),
 * so a tensor coordinate x maps to (x + 0.5) * scale), which keeps H exact across the two
 * images' different shrink factors. Matching: approximate nearest neighbours in a VLFeat
 * kd-forest, Lowe's ratio test, and a mutual-nearest check. Model: LO-RANSAC homography from
 * homography.c (matches weighted by keypoint scale in the final fit), then sanity checks
 * (enough inliers, no mirror/fold, sane area change); a model that fails them is reported as
 * "not found" and nothing is warped. Finally a photometric Gauss-Newton polish
 * (photometric.c) on the analysis images, kept only when it agrees with the keypoint inliers:
 * it fixes the corner extrapolation error of objects that fill little of the frame.
 *
 * The warp maps every reference-frame output pixel back through H^-1 into the input with
 * libvips vips_mapim (bicubic) at full resolution. */
#include "align.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <vl/kdtree.h>
#include <vl/sift.h>

#include "homography.h"
#include "image_vips.h"
#include "photometric.h"

#define DESC_DIM 128

/* Tuning (chosen on ../shared/data/train synthetic pairs, never on public/). */
#define PEAK_THRESH 0.002   /* DoG contrast (image in 0..1); below OpenCV's ~0.013 for low-texture shots */
#define EDGE_THRESH 10.0    /* Lowe's edge ratio */
#define MAX_KEYPOINTS 600   /* keypoints described per image (descriptors dominate the cost) */
#define OCTAVE_SHARE 0.6    /* share of the remaining keypoint budget one octave may take */
#define MAX_BLUR_RADIUS 64
#define UPSAMPLE_BELOW 700  /* longest side under which the first octave is upsampled */
#define LOW_FEATURES 250    /* fewer features than this: retry with an upsampled first octave */
#define RATIO 0.8           /* Lowe's ratio test on descriptor distance */
#define KD_TREES 2
#define KD_CHECKS 64
#define RANSAC_THRESH 2.0   /* inlier distance in reference analysis pixels */
#define MIN_INLIERS 12
#define MIN_INLIER_RATIO 0.10
#define DIRECT_MAX_MOVE 12.0  /* largest corner change (reference analysis pixels) it may make */

typedef struct {
    int n, cap;
    double *xy;     /* full-resolution coordinates, 2 per feature */
    float *sig;     /* keypoint scale in full-resolution pixels */
    float *desc;    /* DESC_DIM per feature */
} features;

static void features_clear(features *f)
{
    free(f->xy);
    free(f->sig);
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
    float *sg = realloc(f->sig, sizeof(float) * (size_t)cap);
    if (!sg)
        return -1;
    f->sig = sg;
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

/* ---- Gaussian scale space ------------------------------------------------------------
 *
 * VLFeat's own pyramid (vl_sift_process_*_octave) smooths with a scalar column convolution
 * that alone took ~55% of the alignment time. We build the same scale space (same sigmas,
 * same kernel support ceil(4 sigma), same edge continuity, same decimation) straight into
 * VLFeat's filter buffers with convolutions written as row-wide multiply-adds on short
 * vectors, then use VLFeat for detection, orientations and descriptors. */

typedef float v8f __attribute__((vector_size(32)));

/* o[x] += k * (a[x] + b[x]) for x < n (unaligned, any n). */
/* Built for AVX2 too where the compiler supports function multi-versioning (picked at load
 * time by the CPU); the default clone is plain SSE2. Not under ThreadSanitizer: the clone's
 * resolver runs at load time, before the TSan runtime is set up, and crashes the program. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define PIMG_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PIMG_SIMD_CLONES
#endif

static inline void axpy2(float *o, const float *a, const float *b, float k, int n)
{
    int x = 0;
    v8f kv = {k, k, k, k, k, k, k, k};
    for (; x + 8 <= n; x += 8) {
        v8f va, vb, vo;
        memcpy(&va, a + x, sizeof va);
        memcpy(&vb, b + x, sizeof vb);
        memcpy(&vo, o + x, sizeof vo);
        vo += kv * (va + vb);
        memcpy(o + x, &vo, sizeof vo);
    }
    for (; x < n; x++)
        o[x] += k * (a[x] + b[x]);
}

/* dst = src blurred by a Gaussian of std sigma (separable, radius ceil(4 sigma), edges
 * repeated); tmp holds w * h floats, line holds w + 2 * radius floats. dst may equal src. */
PIMG_SIMD_CLONES static void gauss_blur(float *dst, const float *src, float *tmp, float *line, int w, int h, double sigma)
{
    int r = (int)ceil(4.0 * sigma);
    if (r < 1)
        r = 1;
    if (r > MAX_BLUR_RADIUS)
        r = MAX_BLUR_RADIUS;
    float kern[MAX_BLUR_RADIUS + 1];
    double sum = 0;
    for (int i = 0; i <= r; i++) {
        kern[i] = (float)exp(-0.5 * (i / sigma) * (i / sigma));
        sum += i ? 2 * kern[i] : kern[i];
    }
    for (int i = 0; i <= r; i++)
        kern[i] = (float)(kern[i] / sum);
    /* Vertical pass, row by row: an output row is a weighted sum of input rows. */
    for (int y = 0; y < h; y++) {
        float *o = tmp + (size_t)y * w;
        const float *c = src + (size_t)y * w;
        for (int x = 0; x < w; x++)
            o[x] = kern[0] * c[x];
        for (int k = 1; k <= r; k++) {
            int ya = y - k < 0 ? 0 : y - k, yb = y + k >= h ? h - 1 : y + k;
            axpy2(o, src + (size_t)ya * w, src + (size_t)yb * w, kern[k], w);
        }
    }
    /* Horizontal pass through a padded copy of each row. */
    for (int y = 0; y < h; y++) {
        const float *row = tmp + (size_t)y * w;
        for (int i = 0; i < r; i++) {
            line[i] = row[0];
            line[r + w + i] = row[w - 1];
        }
        memcpy(line + r, row, sizeof(float) * (size_t)w);
        float *o = dst + (size_t)y * w;
        for (int x = 0; x < w; x++)
            o[x] = kern[0] * line[r + x];
        for (int k = 1; k <= r; k++)
            axpy2(o, line + r - k, line + r + k, kern[k], w);
    }
}

/* Level s of the filter's current octave buffer. */
static float *level(VlSiftFilt *sf, int s)
{
    return sf->octave + (size_t)sf->octave_width * sf->octave_height * (s - sf->s_min);
}

/* Computes octave o (0-based from o_min) into sf's buffers, as vl_sift_process_first_octave
 * (o == 0, from img) and vl_sift_process_next_octave (o > 0) would. line: scratch of
 * max(w, h) + 2 * MAX_BLUR_RADIUS floats. */
static void make_octave(VlSiftFilt *sf, int o, const float *img, float *line)
{
    int oi = sf->o_min + o;
    int w = oi < 0 ? sf->width << -oi : sf->width >> oi;
    int h = oi < 0 ? sf->height << -oi : sf->height >> oi;
    if (o == 0) {
        sf->octave_width = w;
        sf->octave_height = h;
        float *base = level(sf, sf->s_min);
        if (sf->o_min == -1) {
            /* Linear 2x upsampling (VLFeat's copy_and_upsample_rows, both directions). */
            int sw = sf->width, sh = sf->height;
            for (int y = 0; y < h; y++) {
                int y0 = y / 2, y1 = y0 + 1 < sh ? y0 + 1 : y0;
                float fy = (y & 1) ? 0.5f : 0.0f;
                for (int x = 0; x < w; x++) {
                    int x0 = x / 2, x1 = x0 + 1 < sw ? x0 + 1 : x0;
                    float fx = (x & 1) ? 0.5f : 0.0f;
                    float a = img[(size_t)y0 * sw + x0] * (1 - fx) + img[(size_t)y0 * sw + x1] * fx;
                    float b = img[(size_t)y1 * sw + x0] * (1 - fx) + img[(size_t)y1 * sw + x1] * fx;
                    base[(size_t)y * w + x] = a * (1 - fy) + b * fy;
                }
            }
        } else {
            memcpy(base, img, sizeof(float) * (size_t)w * h);
        }
        double sa = sf->sigma0 * pow(sf->sigmak, sf->s_min);
        double sb = sf->sigman * pow(2.0, -sf->o_min);
        if (sa > sb)
            gauss_blur(base, base, sf->temp, line, w, h, sqrt(sa * sa - sb * sb));
    } else {
        /* Decimate the level with twice the base smoothing (s_min + S): it already has the
         * next octave's base sigma, so no extra blur is needed. In place is safe: the
         * destination index never passes the source index. */
        int sbest = sf->s_min + sf->S < sf->s_max ? sf->s_min + sf->S : sf->s_max;
        const float *src = level(sf, sbest);
        int pw = sf->octave_width;
        float *t = sf->temp;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                t[(size_t)y * w + x] = src[(size_t)(2 * y) * pw + 2 * x];
        sf->octave_width = w;
        sf->octave_height = h;
        memcpy(level(sf, sf->s_min), t, sizeof(float) * (size_t)w * h);
    }
    for (int s = sf->s_min + 1; s <= sf->s_max; s++)
        gauss_blur(level(sf, s), level(sf, s - 1), sf->temp, line, w, h, sf->dsigma0 * pow(sf->sigmak, s));
    sf->o_cur = oi;
    sf->nkeys = 0;
    sf->grad_o = oi - 1; /* the gradient buffer holds an older octave */
}

/* |DoG| at a keypoint's integer location (valid right after vl_sift_detect on its octave). */
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

typedef struct {
    int i;
    float peak;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    float x = ((const ranked *)a)->peak, y = ((const ranked *)b)->peak;
    return (x < y) - (x > y);
}

/* SIFT features of grey image g (first octave o_min: -1 = upsampled 2x, 0 = as is), appended
 * to f with coordinates in full-resolution pixels (scale per pixel of g). */
static pimg_status extract_grey(const pimg_tensor *g, int omin, double scale, features *f, pimg_error *err)
{
    int side = g->w > g->h ? g->w : g->h;
    VlSiftFilt *sf = vl_sift_new(g->w, g->h, -1, 3, omin);
    float *line = malloc(sizeof(float) * ((size_t)(side << (omin < 0 ? 1 : 0)) + 2 * MAX_BLUR_RADIUS + 8));
    ranked *rk = NULL;
    int caprk = 0;
    pimg_status st = PIMG_OK;
    if (!sf || !line) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for SIFT");
        goto out;
    }
    vl_sift_set_peak_thresh(sf, PEAK_THRESH);
    vl_sift_set_edge_thresh(sf, EDGE_THRESH);
    int budget = MAX_KEYPOINTS;
    for (int o = 0; o < sf->O && budget > 0; o++) {
        make_octave(sf, o, g->data, line);
        vl_sift_detect(sf);
        const VlSiftKeypoint *keys = vl_sift_get_keypoints(sf);
        int nk = vl_sift_get_nkeypoints(sf);
        if (nk > caprk) {
            ranked *r2 = realloc(rk, sizeof *rk * (size_t)nk);
            if (!r2) {
                st = pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for SIFT keypoints");
                goto out;
            }
            rk = r2;
            caprk = nk;
        }
        for (int i = 0; i < nk; i++) {
            rk[i].i = i;
            rk[i].peak = key_peak(sf, &keys[i]);
        }
        /* Descriptors are the expensive part: each octave may spend at most OCTAVE_SHARE of
         * the remaining keypoint budget (all of it on the last octave), on its strongest
         * keypoints, so the fine octaves — the best-localised points — come first without
         * starving the coarse ones. */
        int take = o == sf->O - 1 ? budget : (int)ceil(budget * OCTAVE_SHARE);
        if (nk > take) {
            qsort(rk, (size_t)nk, sizeof *rk, cmp_ranked);
            nk = take;
        }
        budget -= nk;
        for (int q = 0; q < nk; q++) {
            const VlSiftKeypoint *k = &keys[rk[q].i];
            double angles[4];
            int na = vl_sift_calc_keypoint_orientations(sf, angles, k);
            for (int a = 0; a < na; a++) {
                if (f->n == f->cap && features_grow(f)) {
                    st = pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for SIFT features");
                    goto out;
                }
                float *d = f->desc + (size_t)f->n * DESC_DIM;
                vl_sift_calc_keypoint_descriptor(sf, d, k, angles[a]);
                root_sift(d);
                f->xy[2 * f->n] = (k->x + 0.5) * scale;
                f->xy[2 * f->n + 1] = (k->y + 0.5) * scale;
                f->sig[f->n] = (float)(k->sigma * scale);
                f->n++;
            }
        }
    }
out:
    free(rk);
    free(line);
    vl_sift_delete(sf);
    return st;
}

/* Features of an analysis tensor. Small images start from an upsampled first octave; so do
 * low-texture ones (a product on a plain background) that yield fewer than LOW_FEATURES
 * from the image as is: the extra fine-scale keypoints on the few structured parts are what
 * pins the homography down, and such images are cheap to describe anyway. */
static pimg_status extract(const pimg_tensor *t, double scale, features *f, pimg_error *err)
{
    pimg_tensor *g = pimg_tensor_grey(t);
    if (!g)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for the grey analysis copy");
    int side = g->w > g->h ? g->w : g->h;
    int omin = side < UPSAMPLE_BELOW ? -1 : 0;
    pimg_status st = extract_grey(g, omin, scale, f, err);
    if (!st && omin == 0 && f->n < LOW_FEATURES) {
        f->n = 0;
        st = extract_grey(g, -1, scale, f, err);
    }
    pimg_tensor_free(g);
    return st;
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
 * and a weight into wt (caller-allocated, a->n entries each) and returns their count, or -1
 * on no memory. A keypoint's position is uncertain in proportion to its scale, so a match
 * weighs 1 / (sigma_a^2 + sigma_b^2) in the final least-squares fit. */
static int match(const features *a, const features *b, double *src, double *dst, double *wt)
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
        wt[m] = 1.0 / ((double)a->sig[i] + b->sig[j] + 1e-9);
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
static int dedupe(double *src, double *dst, double *wt, int n)
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
        wt[m] = wt[i];
        m++;
    }
    return m;
}

/* Median forward error (reference pixels) of the inlier matches under H. */
static double inlier_median(const double *src, const double *dst, const unsigned char *mask, int m,
                            const double H[9])
{
    double *e = malloc(sizeof(double) * (size_t)m);
    if (!e)
        return HUGE_VAL;
    int k = 0;
    for (int i = 0; i < m; i++)
        if (mask[i])
            e[k++] = sqrt(pimg_homography_err2(H, src[2 * i], src[2 * i + 1], dst[2 * i], dst[2 * i + 1]));
    /* partial selection is overkill for a few hundred values */
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && e[j - 1] > e[j]; j--) {
            double t = e[j];
            e[j] = e[j - 1];
            e[j - 1] = t;
        }
    double r = k ? e[k / 2] : HUGE_VAL;
    free(e);
    return r;
}

/* Photometric polish of H (full-resolution coordinates) on the analysis images. The result is
 * kept only if it stays close to the keypoint model (DIRECT_MAX_MOVE at the corners), keeps
 * the keypoint inliers' median error small and passes the sanity checks. */
static pimg_status direct_refine(const pimg_tensor *ta, double sa_scale, const pimg_tensor *tb, double sb_scale,
                                 const double *src, const double *dst, const unsigned char *mask, int m,
                                 double H[9], pimg_error *err)
{
    pimg_tensor *ga = pimg_tensor_grey(ta), *gb = pimg_tensor_grey(tb);
    pimg_status st = PIMG_OK;
    if (!ga || !gb) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for the photometric refinement");
        goto out;
    }
    /* To analysis pixels: Ha = diag(1/sb) H diag(sa). */
    double Ha[9] = {H[0] * sa_scale / sb_scale, H[1] * sa_scale / sb_scale, H[2] / sb_scale,
                    H[3] * sa_scale / sb_scale, H[4] * sa_scale / sb_scale, H[5] / sb_scale,
                    H[6] * sa_scale,            H[7] * sa_scale,            H[8]};
    if ((st = pimg_photometric_refine(ga, gb, Ha, NULL))) {
        st = pimg_error_set(err, st, "no memory for the photometric refinement");
        goto out;
    }
    double Hn[9] = {Ha[0] * sb_scale / sa_scale, Ha[1] * sb_scale / sa_scale, Ha[2] * sb_scale,
                    Ha[3] * sb_scale / sa_scale, Ha[4] * sb_scale / sa_scale, Ha[5] * sb_scale,
                    Ha[6] / sa_scale,            Ha[7] / sa_scale,            Ha[8]};
    double w = ta->w * sa_scale, h = ta->h * sa_scale, move = 0;
    const double cx[4] = {0, w, w, 0}, cy[4] = {0, 0, h, h};
    for (int i = 0; i < 4; i++) {
        double zo = H[6] * cx[i] + H[7] * cy[i] + H[8], zn = Hn[6] * cx[i] + Hn[7] * cy[i] + Hn[8];
        double dx = (H[0] * cx[i] + H[1] * cy[i] + H[2]) / zo - (Hn[0] * cx[i] + Hn[1] * cy[i] + Hn[2]) / zn;
        double dy = (H[3] * cx[i] + H[4] * cy[i] + H[5]) / zo - (Hn[3] * cx[i] + Hn[4] * cy[i] + Hn[5]) / zn;
        move = fmax(move, hypot(dx, dy));
    }
    double before = inlier_median(src, dst, mask, m, H), after = inlier_median(src, dst, mask, m, Hn);
    if (move <= DIRECT_MAX_MOVE * sb_scale && after <= fmax(2 * before, before + 0.5 * sb_scale) &&
        pimg_homography_plausible(Hn, w, h, 16.0))
        memcpy(H, Hn, sizeof Hn);
out:
    pimg_tensor_free(ga);
    pimg_tensor_free(gb);
    return st;
}

/* t itself when its longest side is at most PIMG_ALIGN_MAX_SIDE, else an area-averaged copy
 * of that size (caller frees it), with *scale updated to full-resolution pixels per pixel of
 * the result. NULL on no memory. */
static pimg_tensor *fit_side(const pimg_tensor *t, double *scale)
{
    int side = t->w > t->h ? t->w : t->h;
    if (side <= PIMG_ALIGN_MAX_SIDE)
        return (pimg_tensor *)t;
    double f = (double)PIMG_ALIGN_MAX_SIDE / side;
    int w = (int)lround(t->w * f), h = (int)lround(t->h * f);
    pimg_tensor *r = pimg_tensor_resize(t, w < 1 ? 1 : w, h < 1 ? 1 : h);
    if (r)
        *scale *= (double)t->w / r->w;
    return r;
}

pimg_status pimg_align_estimate(const pimg_tensor *in, double in_scale, const pimg_tensor *ref,
                                double ref_scale, pimg_align_result *out, pimg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!in || !ref || !(in_scale > 0) || !(ref_scale > 0))
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "align: missing tensor or bad scale");
    features fa = {0}, fb = {0};
    double *src = NULL;
    unsigned char *mask = NULL;
    pimg_tensor *sa = NULL, *sb = NULL;
    pimg_status st = PIMG_OK;
    if (!(sa = fit_side(in, &in_scale)) || !(sb = fit_side(ref, &ref_scale))) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for the alignment copies");
        goto out;
    }
    st = extract(sa, in_scale, &fa, err);
    if (!st)
        st = extract(sb, ref_scale, &fb, err);
    if (st)
        goto out;
    out->features_in = fa.n;
    out->features_ref = fb.n;
    if (fa.n < 4 || fb.n < 4)
        goto out; /* not enough texture: found = 0 */
    src = malloc(sizeof(double) * 5 * (size_t)fa.n);
    if (!src) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for matches");
        goto out;
    }
    double *dst = src + 2 * (size_t)fa.n, *wt = src + 4 * (size_t)fa.n;
    int m = match(&fa, &fb, src, dst, wt);
    if (m < 0) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for the kd-forest");
        goto out;
    }
    m = dedupe(src, dst, wt, m);
    out->matches = m;
    if (m < MIN_INLIERS)
        goto out;
    pimg_ransac_opts ro = {.thresh = RANSAC_THRESH * ref_scale, .confidence = 0.9999,
                           .max_iter = 20000, .min_iter = 200, .seed = 12345, .weights = wt};
    double H[9];
    int ninl = 0;
    pimg_error rerr = {0};
    mask = malloc((size_t)m);
    if (!mask) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for matches");
        goto out;
    }
    pimg_status rs = pimg_homography_ransac(src, dst, m, &ro, H, mask, &ninl, &rerr);
    if (rs == PIMG_ERR_NOMEM) {
        st = pimg_error_set(err, rs, "%s", rerr.msg);
        goto out;
    }
    if (rs)
        goto out; /* no consistent model: found = 0 */
    out->inliers = ninl;
    double w = in->w * in_scale, h = in->h * in_scale;
    out->found = ninl >= MIN_INLIERS && ninl >= MIN_INLIER_RATIO * m &&
                 pimg_homography_plausible(H, w, h, 16.0);
    if (out->found && (st = direct_refine(sa, in_scale, sb, ref_scale, src, dst, mask, m, H, err)))
        goto out;
    memcpy(out->H, H, sizeof H);
out:
    free(mask);
    if (sa != in)
        pimg_tensor_free(sa);
    if (sb != ref)
        pimg_tensor_free(sb);
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
    /* A homography reads the source out of order (a tilted output row crosses many input
     * rows), which a sequentially decoded source refuses; decode it into memory first, as
     * image.c does for quarter turns. Bounded by the loader's pixel limit. */
    VipsImage *mem = vips_image_copy_memory(in);
    if (!mem)
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot decode image for the warp");
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
               vips_mapim(mem, &t[8], t[7], "interpolate", interp, "background", bg, NULL) ||
               vips_cast(t[8], &outimg, VIPS_FORMAT_UCHAR, NULL);
    for (int i = 0; i < 9; i++)
        if (t[i])
            g_object_unref(t[i]);
    g_object_unref(mem);
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
