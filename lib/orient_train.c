/* orient_train.c — building the self-supervised orientation set, grouped grid search, threshold
 * choice, final training and evaluation (see orient_train.h for the overall recipe).
 *
 * Sets are small (a few hundred photos), so every augmented copy keeps the features of its four
 * turns in memory; libsvm problems for the folds point into one shared node array. libsvm
 * trains single-threaded and prints through a hook we silence; its probability estimates use
 * rand() for their internal folds, so we seed it for reproducible models. */
#include "orient_train.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vips/vips.h>

#include "clock.h"
#include "dataset.h"
#include "image.h"
#include "level_internal.h"
#include "orient_internal.h"

void pimg_orient_train_opts_default(pimg_orient_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->test_frac = 0.2;
    o->variants = 3;
    o->composites = 300;
    o->folds = 3;
    o->max_iter = 8;
    o->max_false_turn = 0.0;
    o->turn_margin = 0.02;
    o->work_side = 320;
    o->method = PIMG_ORIENT_METHOD_FV;
}

/* ---- small helpers ---------------------------------------------------------------------- */



static void silent_print(const char *s) { (void)s; }

/* ---- images --------------------------------------------------------------------------- */

/* RGBA tensor (0..1, alpha last) of a cut-out at most side px. */
static pimg_status load_cutout(const char *path, int side, pimg_tensor **out, pimg_error *err)
{
    VipsImage *im = NULL, *t = NULL;
    if (vips_thumbnail(path, &im, side, "height", side, "size", VIPS_SIZE_DOWN, NULL))
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, path);
    /* Some cut-outs are grey + alpha but tagged sRGB; say what they are so the conversion to
     * sRGB is a plain band copy rather than a warning. */
    if (im->Bands <= 2 && im->Type != VIPS_INTERPRETATION_B_W) {
        if (vips_copy(im, &t, "interpretation", VIPS_INTERPRETATION_B_W, NULL)) {
            g_object_unref(im);
            return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, path);
        }
        g_object_unref(im);
        im = t;
    }
    if (vips_colourspace(im, &t, VIPS_INTERPRETATION_sRGB, NULL)) {
        g_object_unref(im);
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, path);
    }
    g_object_unref(im);
    im = t;
    if (vips_cast_uchar(im, &t, NULL)) {
        g_object_unref(im);
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, path);
    }
    g_object_unref(im);
    im = t;
    size_t n = 0;
    unsigned char *px = vips_image_write_to_memory(im, &n);
    int w = im->Xsize, h = im->Ysize, b = im->Bands;
    g_object_unref(im);
    if (!px)
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, path);
    pimg_tensor *o = pimg_tensor_new(w, h, 4);
    if (!o || n < (size_t)w * h * b || b < 3) {
        g_free(px);
        pimg_tensor_free(o);
        return pimg_error_set(err, o ? PIMG_ERR_BAD_INPUT : PIMG_ERR_NOMEM, "%s: unexpected pixel layout", path);
    }
    for (long i = 0; i < (long)w * h; i++)
        for (int c = 0; c < 4; c++)
            o->data[i * 4 + c] = (c < 3 ? px[i * b + c] : b >= 4 ? px[i * b + 3] : 255) / 255.0f;
    g_free(px);
    *out = o;
    return PIMG_OK;
}

static pimg_tensor *crop(const pimg_tensor *t, int x0, int y0, int w, int h)
{
    pimg_tensor *o = pimg_tensor_new(w, h, t->c);
    if (!o)
        return NULL;
    for (int y = 0; y < h; y++)
        memcpy(pimg_tensor_at(o, 0, y), pimg_tensor_at(t, x0, y0 + y), sizeof(float) * w * t->c);
    return o;
}

static void mirror(pimg_tensor *t)
{
    for (int y = 0; y < t->h; y++)
        for (int x = 0; x < t->w / 2; x++) {
            float *a = pimg_tensor_at(t, x, y), *b = pimg_tensor_at(t, t->w - 1 - x, y);
            for (int c = 0; c < t->c; c++) {
                float s = a[c];
                a[c] = b[c];
                b[c] = s;
            }
        }
}

/* One augmented copy of an upright tensor (consumed): v 0 is unchanged, v 1 mirrored, later
 * ones random mirror / small tilt with inner crop / crop / brightness-contrast. The result is
 * still upright. Returns NULL on no memory. */
static pimg_tensor *augment(pimg_tensor *t, int v, pimg_rng *r)
{
    if (v == 0)
        return t;
    if (v == 1 || pimg_rng_u(r) < 0.5)
        mirror(t);
    if (v == 1)
        return t;
    if (pimg_rng_u(r) < 0.35) {
        /* Small tilts: the levelling step runs after orientation, so tilted photos must still
         * read as upright. */
        double deg = pimg_rng_range(r, -15, 15);
        pimg_tensor *rt = pimg_tensor_rotate(t, deg);
        pimg_tensor_free(t);
        if (!rt)
            return NULL;
        int iw, ih;
        pimg_level_inner_rect(rt->w, rt->h, deg, &iw, &ih);
        t = crop(rt, (rt->w - iw) / 2, (rt->h - ih) / 2, iw, ih);
        pimg_tensor_free(rt);
        if (!t)
            return NULL;
    }
    if (pimg_rng_u(r) < 0.5) {
        int w = (int)(t->w * pimg_rng_range(r, 0.7, 1.0)), h = (int)(t->h * pimg_rng_range(r, 0.7, 1.0));
        if (w >= 16 && h >= 16) {
            pimg_tensor *c = crop(t, pimg_rng_int(r, t->w - w + 1), pimg_rng_int(r, t->h - h + 1), w, h);
            pimg_tensor_free(t);
            if (!(t = c))
                return NULL;
        }
    }
    if (pimg_rng_u(r) < 0.5) {
        float gain = (float)pimg_rng_range(r, 0.8, 1.2), bias = (float)pimg_rng_range(r, -0.06, 0.06);
        long n = (long)t->w * t->h * t->c;
        for (long i = 0; i < n; i++) {
            float x = (t->data[i] - 0.5f) * gain + 0.5f + bias;
            t->data[i] = x < 0 ? 0 : x > 1 ? 1 : x;
        }
    }
    return t;
}

/* Resizes src to cover w x h and crops a random window of that size. */
static pimg_tensor *cover(const pimg_tensor *src, int w, int h, pimg_rng *r)
{
    double s = fmax((double)w / src->w, (double)h / src->h);
    int sw = (int)ceil(src->w * s), sh = (int)ceil(src->h * s);
    if (sw < w) sw = w;
    if (sh < h) sh = h;
    pimg_tensor *big = pimg_tensor_resize(src, sw, sh);
    if (!big)
        return NULL;
    pimg_tensor *c = crop(big, pimg_rng_int(r, sw - w + 1), pimg_rng_int(r, sh - h + 1), w, h);
    pimg_tensor_free(big);
    return c;
}

/* A product shot: an upright cut-out on a plain studio background or an upright photo, with an
 * optional soft contact shadow below it. Returns NULL on no memory. */
static pimg_tensor *composite(const pimg_tensor *obj, const pimg_tensor *bgphoto, pimg_rng *r)
{
    static const int aspects[][2] = {{320, 240}, {240, 320}, {300, 300}, {320, 213}, {256, 320}};
    int ai = pimg_rng_int(r, 5), W = aspects[ai][0], H = aspects[ai][1];
    pimg_tensor *c;
    if (!bgphoto) {
        if (!(c = pimg_tensor_new(W, H, 3)))
            return NULL;
        double base = pimg_rng_range(r, 0.75, 1.0), grad = pimg_rng_range(r, -0.08, 0.08);
        double tint[3] = {pimg_rng_range(r, -0.04, 0.04), pimg_rng_range(r, -0.04, 0.04), pimg_rng_range(r, -0.04, 0.04)};
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int k = 0; k < 3; k++) {
                    double v = base + tint[k] + grad * ((double)y / H - 0.5);
                    pimg_tensor_at(c, x, y)[k] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
                }
    } else if (!(c = cover(bgphoto, W, H, r))) {
        return NULL;
    }
    double frac = pimg_rng_range(r, 0.35, 0.9);
    double s = frac * fmin((double)W / obj->w, (double)H / obj->h);
    int ow = (int)fmax(8, obj->w * s), oh = (int)fmax(8, obj->h * s);
    if (ow > W) ow = W;
    if (oh > H) oh = H;
    pimg_tensor *o = pimg_tensor_resize(obj, ow, oh);
    if (!o) {
        pimg_tensor_free(c);
        return NULL;
    }
    if (pimg_rng_u(r) < 0.5)
        mirror(o);
    int ox = pimg_rng_int(r, W - ow + 1), oy = pimg_rng_int(r, H - oh + 1);
    if (pimg_rng_u(r) < 0.5) {
        /* Contact shadow: the object's alpha shifted down a little, darkening what is below. */
        int dy = (int)(oh * pimg_rng_range(r, 0.02, 0.06)) + 1, dx = (int)(ow * pimg_rng_range(r, -0.03, 0.03));
        double dark = pimg_rng_range(r, 0.15, 0.4);
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                int cx = ox + x + dx, cy = oy + y + dy;
                if (cx < 0 || cy < 0 || cx >= W || cy >= H)
                    continue;
                float a = pimg_tensor_at(o, x, y)[3];
                float *p = pimg_tensor_at(c, cx, cy);
                for (int k = 0; k < 3; k++)
                    p[k] *= (float)(1.0 - dark * a);
            }
    }
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            const float *q = pimg_tensor_at(o, x, y);
            float *p = pimg_tensor_at(c, ox + x, oy + y);
            for (int k = 0; k < 3; k++)
                p[k] = q[3] * q[k] + (1 - q[3]) * p[k];
        }
    pimg_tensor_free(o);
    return c;
}

/* ---- the example set ------------------------------------------------------------------ */

/* One augmented upright image: the features of its four turns, feats[k] = the image turned so
 * that it needs k clockwise quarter turns. */
typedef struct {
    float feats[4][PIMG_ORIENT_NFEAT];
    int group; /* source photo or object: folds never split a group */
    int test;
    int plain; /* the unaugmented copy (scored on the test split) */
    float *grey; /* FV method: the upright PIMG_ORIENT_FV_SIDE grey thumbnail (owned) */
} example;

typedef struct {
    example *v;
    int n, cap;
    FILE *thumbs; /* analysis only: 128x128 RGB8 upright thumbnails + log aspect per example */
    int keep_grey; /* FV method: keep each example's grey thumbnail */
} example_set;

static pimg_status add_example(example_set *s, pimg_tensor *upright, int group, int test, int plain,
                               pimg_error *err)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 512;
        example *nv = realloc(s->v, sizeof *nv * cap);
        if (!nv)
            return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        s->v = nv;
        s->cap = cap;
    }
    if (s->thumbs) {
        pimg_tensor *big = pimg_tensor_resize(upright, 128, 128);
        if (!big)
            return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        unsigned char buf[128 * 128 * 3];
        for (int i = 0; i < 128 * 128 * 3; i++) {
            float v = big->data[i] * 255.0f + 0.5f;
            buf[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        float la = (float)log((double)upright->w / upright->h);
        fwrite(buf, sizeof buf, 1, s->thumbs);
        fwrite(&la, sizeof la, 1, s->thumbs);
        pimg_tensor_free(big);
    }
    pimg_tensor *thumb = pimg_orient_thumb(upright);
    if (!thumb)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    float turned[4][PIMG_ORIENT_NFEAT];
    pimg_status st = pimg_orient_turn_features(thumb, log((double)upright->w / upright->h), turned, err);
    pimg_tensor_free(thumb);
    if (st)
        return st;
    float *grey = NULL;
    if (s->keep_grey) {
        grey = malloc(sizeof(float) * PIMG_ORIENT_FV_SIDE * PIMG_ORIENT_FV_SIDE);
        if (!grey)
            return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        if ((st = pimg_orient_fv_grey(upright, grey, err))) {
            free(grey);
            return st;
        }
    }
    example *e = &s->v[s->n++];
    e->grey = grey;
    /* turned[j] is the upright image turned clockwise j quarters, which needs (4 - j) % 4. */
    for (int j = 0; j < 4; j++)
        memcpy(e->feats[(4 - j) % 4], turned[j], sizeof turned[j]);
    e->group = group;
    e->test = test;
    e->plain = plain;
    return PIMG_OK;
}

/* Weight of the (standardised) log aspect ratio next to the two feature groups, each of which
 * has unit total weight. */
#define ASPECT_WEIGHT 0.7

/* ---- libsvm plumbing ------------------------------------------------------------------ */

typedef struct {
    struct svm_node *nodes; /* n_examples * 4 rows of NFEAT + 1 */
    float mean[PIMG_ORIENT_NFEAT], scale[PIMG_ORIENT_NFEAT];
} scaled_set;

static struct svm_node *row(const scaled_set *ss, int ex, int k)
{
    return ss->nodes + ((size_t)ex * 4 + k) * (PIMG_ORIENT_NFEAT + 1);
}

/* Standardises every feature with the training examples' mean and spread, and weights the two
 * feature groups so each contributes about equally to RBF distances. */
static pimg_status scale_set(const example_set *s, scaled_set *ss, pimg_error *err)
{
    double sum[PIMG_ORIENT_NFEAT] = {0}, sq[PIMG_ORIENT_NFEAT] = {0};
    long cnt = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->v[i].test)
            continue;
        for (int k = 0; k < 4; k++)
            for (int f = 0; f < PIMG_ORIENT_NFEAT; f++) {
                double x = s->v[i].feats[k][f];
                sum[f] += x;
                sq[f] += x * x;
            }
        cnt += 4;
    }
    if (!cnt)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "no training examples");
    for (int f = 0; f < PIMG_ORIENT_NFEAT; f++) {
        double m = sum[f] / cnt, var = sq[f] / cnt - m * m;
        double gw = f < PIMG_ORIENT_N_COLOUR                      ? 1.0 / sqrt(PIMG_ORIENT_N_COLOUR)
                    : f < PIMG_ORIENT_N_COLOUR + PIMG_ORIENT_N_HOG ? 1.0 / sqrt(PIMG_ORIENT_N_HOG)
                                                                  : ASPECT_WEIGHT;
        ss->mean[f] = (float)m;
        ss->scale[f] = (float)(gw / sqrt(var + 1e-6));
    }
    ss->nodes = malloc(sizeof(struct svm_node) * (size_t)s->n * 4 * (PIMG_ORIENT_NFEAT + 1));
    if (!ss->nodes)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < 4; k++) {
            struct svm_node *x = row(ss, i, k);
            for (int f = 0; f < PIMG_ORIENT_NFEAT; f++) {
                x[f].index = f + 1;
                x[f].value = (s->v[i].feats[k][f] - ss->mean[f]) * ss->scale[f];
            }
            x[PIMG_ORIENT_NFEAT].index = -1;
        }
    return PIMG_OK;
}

static void svm_params(struct svm_parameter *p, double C, double gamma, int probability)
{
    memset(p, 0, sizeof *p);
    p->svm_type = C_SVC;
    p->kernel_type = RBF;
    p->gamma = gamma;
    p->C = C;
    p->cache_size = 256;
    p->eps = 1e-3;
    p->shrinking = 1;
    p->probability = probability;
}

/* Trains on the examples for which use[i] is set (all four turns of each). */
static struct svm_model *train_on(const example_set *s, const scaled_set *ss, const char *use, double C,
                                  double gamma, int probability, unsigned seed)
{
    int l = 0;
    for (int i = 0; i < s->n; i++)
        l += use[i] ? 4 : 0;
    struct svm_problem prob = {.l = l};
    prob.y = malloc(sizeof(double) * (l ? l : 1));
    prob.x = malloc(sizeof(struct svm_node *) * (l ? l : 1));
    struct svm_model *model = NULL;
    if (prob.y && prob.x && l) {
        int j = 0;
        for (int i = 0; i < s->n; i++)
            if (use[i])
                for (int k = 0; k < 4; k++) {
                    prob.y[j] = k;
                    prob.x[j++] = row(ss, i, k);
                }
        struct svm_parameter p;
        svm_params(&p, C, gamma, probability);
        svm_set_print_string_function(silent_print);
        srand(seed); /* libsvm's probability folds use rand(): same seed, same model */
        if (!svm_check_parameter(&prob, &p))
            model = svm_train(&prob, &p);
    }
    /* The model keeps pointers into prob.x rows (ss->nodes), not prob itself. */
    free(prob.y);
    free(prob.x);
    return model;
}

/* Class probabilities of one scaled row, indexed by class. */
static void probs_of(const struct svm_model *model, const int *labels, const struct svm_node *x, double out[4])
{
    double p[4];
    svm_predict_probability(model, x, p);
    for (int i = 0; i < 4; i++)
        out[labels[i]] = p[i];
}

/* Posteriors for the four truth cases of one example from its four rows' class probabilities
 * P[k'][.] (row k' needs k' turns): the case needing k, turned clockwise by j, is row (k-j). */
static void example_posteriors(const double P[4][4], double post[4][4])
{
    for (int k = 0; k < 4; k++) {
        double q[4][4];
        for (int j = 0; j < 4; j++)
            memcpy(q[j], P[(k - j + 4) % 4], sizeof q[j]);
        pimg_orient_combine(q, post[k]);
    }
}

/* ---- metrics -------------------------------------------------------------------------- */

cJSON *pimg_orient_metrics(const int *truth, const int *pred, int n)
{
    int conf[4][4] = {{0}};
    for (int i = 0; i < n; i++) {
        int t = ((truth[i] / 90) % 4 + 4) % 4, p = ((pred[i] / 90) % 4 + 4) % 4;
        conf[t][p]++;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int ok = 0, up = 0, upturned = 0, turned = 0, missed = 0;
    cJSON *pc = cJSON_AddObjectToObject(o, "per_class_accuracy");
    cJSON *cm = cJSON_AddArrayToObject(o, "confusion");
    for (int t = 0; t < 4; t++) {
        int rowsum = 0;
        cJSON *r = cJSON_CreateArray();
        for (int p = 0; p < 4; p++) {
            rowsum += conf[t][p];
            cJSON_AddItemToArray(r, cJSON_CreateNumber(conf[t][p]));
        }
        cJSON_AddItemToArray(cm, r);
        ok += conf[t][t];
        char key[8];
        snprintf(key, sizeof key, "%d", t * 90);
        cJSON_AddNumberToObject(pc, key, rowsum ? (double)conf[t][t] / rowsum : 0.0);
        if (t == 0) {
            up = rowsum;
            upturned = rowsum - conf[0][0];
        } else {
            turned += rowsum;
            missed += conf[t][0];
        }
    }
    cJSON_AddStringToObject(o, "confusion_axes", "rows: needed turn 0/90/180/270; columns: answered turn");
    cJSON_AddNumberToObject(o, "cases", n);
    cJSON_AddNumberToObject(o, "accuracy", n ? (double)ok / n : 0.0);
    cJSON_AddNumberToObject(o, "false_turn", up ? (double)upturned / up : 0.0);
    cJSON_AddNumberToObject(o, "left_alone", turned ? (double)missed / turned : 0.0);
    return o;
}

/* ---- training ------------------------------------------------------------------------- */

static pimg_status build_set(const pimg_orient_train_opts *o, example_set *set, cJSON *info, pimg_error *err)
{
    pimg_photo_list photos = {0}, objects = {0};
    pimg_tensor **bgs = NULL;
    int *bg_idx = NULL;
    pimg_status st = PIMG_OK;
    for (int d = 0; d < o->n_data_dirs && !st; d++)
        st = pimg_photos_read(o->data_dirs[d], "labels.csv", &photos, err);
    for (int d = 0; d < o->n_objects_dirs && !st; d++)
        st = pimg_photos_read(o->objects_dirs[d], "objects.csv", &objects, err);
    if (st)
        goto out;
    pimg_rng r1, r2;
    pimg_rng_seed(&r1, o->seed, 1, 0);
    pimg_rng_seed(&r2, o->seed, 2, 0);
    if (pimg_photos_split(&photos, 0, photos.n, o->test_frac, &r1) ||
        pimg_photos_split(&objects, 0, objects.n, o->test_frac, &r2)) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    int n_up = 0, n_up_test = 0;
    for (int i = 0; i < photos.n; i++)
        if (photos.v[i].up) {
            n_up++;
            n_up_test += photos.v[i].test;
        }
    if (!n_up) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "no upright (up=1) photos found");
        goto out;
    }
    bgs = calloc(photos.n, sizeof *bgs);
    bg_idx = malloc(sizeof(int) * photos.n);
    if (!bgs || !bg_idx) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Photos: augmented copies of every upright one; they are kept (small) as backgrounds. */
    int done = 0, skipped = 0;
    double t0 = pimg_clock_s();
    for (int i = 0; i < photos.n; i++) {
        const pimg_photo *it = &photos.v[i];
        if (!it->up)
            continue;
        pimg_tensor *t = NULL;
        pimg_error e = {0};
        if (pimg_photo_load(it, o->work_side, &t, &e)) {
            skipped++;
            pimg_progress_say(o->progress, o->progress_ud, "skipping %s: %s", it->path, e.msg);
            continue;
        }
        for (int v = 0; v < o->variants && !st; v++) {
            pimg_rng r;
            pimg_rng_seed(&r, o->seed, (unsigned long long)i + 1000, v);
            pimg_tensor *a = pimg_tensor_copy(t);
            if (a)
                a = augment(a, v, &r);
            if (!a) {
                st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
                break;
            }
            st = add_example(set, a, i, it->test, v == 0, err);
            pimg_tensor_free(a);
        }
        bgs[i] = t;
        if (st)
            goto out;
        if (++done % 20 == 0)
            pimg_progress_say(o->progress, o->progress_ud, "photos %d/%d (%.1f s)", done, n_up, pimg_clock_s() - t0);
    }
    pimg_progress_say(o->progress, o->progress_ud, "photos %d done, %d skipped, %d examples (%.1f s)", done, skipped, set->n, pimg_clock_s() - t0);
    /* Composites: each split's objects on that split's backgrounds (or plain ones). */
    int made = 0, n_obj_test = 0;
    for (int i = 0; i < objects.n; i++)
        n_obj_test += objects.v[i].up && objects.v[i].test;
    if (objects.n && o->composites > 0) {
        pimg_tensor **cut = calloc(objects.n, sizeof *cut);
        if (!cut) {
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (int i = 0; i < objects.n; i++) {
            pimg_error e = {0};
            if (objects.v[i].up && load_cutout(objects.v[i].path, 256, &cut[i], &e))
                pimg_progress_say(o->progress, o->progress_ud, "skipping %s: %s", objects.v[i].path, e.msg);
        }
        for (int split = 0; split < 2 && !st; split++) {
            int no = 0, nb = 0;
            for (int i = 0; i < objects.n; i++)
                no += cut[i] && objects.v[i].test == split;
            for (int i = 0; i < photos.n; i++)
                if (bgs[i] && photos.v[i].test == split)
                    bg_idx[nb++] = i;
            int want = (int)lround(o->composites * (split ? o->test_frac : 1.0 - o->test_frac));
            for (int c = 0; c < want && no && !st; c++) {
                pimg_rng r;
                pimg_rng_seed(&r, o->seed, 7777 + split, c);
                int pick = pimg_rng_int(&r, no), oi = -1;
                for (int i = 0; i < objects.n; i++)
                    if (cut[i] && objects.v[i].test == split && pick-- == 0) {
                        oi = i;
                        break;
                    }
                const pimg_tensor *bg = nb && pimg_rng_u(&r) < 0.5 ? bgs[bg_idx[pimg_rng_int(&r, nb)]] : NULL;
                pimg_tensor *cp = composite(cut[oi], bg, &r);
                if (cp)
                    cp = augment(cp, 2 + c % 4, &r);
                if (!cp) {
                    st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
                    break;
                }
                /* Composites are grouped by object, offset past the photo ids. */
                st = add_example(set, cp, photos.n + oi, split, 1, err);
                pimg_tensor_free(cp);
                made++;
            }
        }
        for (int i = 0; i < objects.n; i++)
            pimg_tensor_free(cut[i]);
        free(cut);
        pimg_progress_say(o->progress, o->progress_ud, "composites %d (%.1f s)", made, pimg_clock_s() - t0);
    }
    cJSON *sp = cJSON_AddObjectToObject(info, "split");
    cJSON_AddNumberToObject(sp, "seed", o->seed);
    cJSON_AddNumberToObject(sp, "test_frac", o->test_frac);
    cJSON_AddStringToObject(sp, "by", "source photo / object (turned and augmented copies stay together)");
    cJSON_AddNumberToObject(sp, "upright_photos", n_up - skipped);
    cJSON_AddNumberToObject(sp, "test_photos", n_up_test);
    cJSON_AddNumberToObject(sp, "objects", objects.n);
    cJSON_AddNumberToObject(sp, "test_objects", n_obj_test);
    cJSON_AddNumberToObject(sp, "composites", made);
    cJSON_AddNumberToObject(sp, "variants_per_photo", o->variants);
    cJSON_AddNumberToObject(sp, "examples", set->n);
out:
    if (bgs)
        for (int i = 0; i < photos.n; i++)
            pimg_tensor_free(bgs[i]);
    free(bgs);
    free(bg_idx);
    pimg_photo_list_free(&photos);
    pimg_photo_list_free(&objects);
    return st;
}

/* Out-of-fold class probabilities (or labels only when P is NULL) with grouped folds;
 * returns the single-image error rate over the training examples. */
static double cross_validate(const pimg_orient_train_opts *o, const example_set *s, const scaled_set *ss,
                             const int *fold, double C, double gamma, double (*P)[4][4])
{
    char *use = malloc(s->n);
    long wrong = 0, total = 0;
    if (!use)
        return 1.0;
    for (int f = 0; f < o->folds; f++) {
        for (int i = 0; i < s->n; i++)
            use[i] = !s->v[i].test && fold[i] != f;
        struct svm_model *m = train_on(s, ss, use, C, gamma, P != NULL, o->seed + f);
        if (!m) {
            free(use);
            return 1.0;
        }
        int labels[4];
        svm_get_labels(m, labels);
        for (int i = 0; i < s->n; i++) {
            if (s->v[i].test || fold[i] != f)
                continue;
            for (int k = 0; k < 4; k++) {
                int got;
                if (P) {
                    probs_of(m, labels, row(ss, i, k), P[i][k]);
                    got = 0;
                    for (int c = 1; c < 4; c++)
                        if (P[i][k][c] > P[i][k][got])
                            got = c;
                } else {
                    got = (int)svm_predict(m, row(ss, i, k));
                }
                wrong += got != k;
                total++;
            }
        }
        svm_free_and_destroy_model(&m);
    }
    free(use);
    return total ? (double)wrong / total : 1.0;
}

/* The smallest turn threshold that keeps out-of-fold false turns at or below max_rate, plus a
 * safety margin. */
static double choose_threshold(const example_set *s, const double (*P)[4][4], double max_rate, double margin,
                               double *cv_acc, double *cv_false, double *cv_argmax)
{
    int n = 0;
    double *best = malloc(sizeof(double) * (s->n ? s->n : 1));
    if (!best)
        return 0.99;
    for (int i = 0; i < s->n; i++) {
        if (s->v[i].test)
            continue;
        double post[4][4];
        example_posteriors(P[i], post);
        /* How sure the model would be of the (wrong) turn it prefers for this upright image. */
        double mx = 0;
        for (int r = 1; r < 4; r++)
            if (post[0][r] > post[0][0] && post[0][r] > mx)
                mx = post[0][r];
        best[n++] = mx;
    }
    /* Sort descending; allow floor(max_rate * n) upright images to be turned. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && best[j] > best[j - 1]; j--) {
            double t = best[j];
            best[j] = best[j - 1];
            best[j - 1] = t;
        }
    int allowed = (int)floor(max_rate * n);
    double thr = (allowed < n ? best[allowed] + 1e-4 : 0.5) + margin;
    if (thr < 0.5)
        thr = 0.5;
    if (thr > 0.999)
        thr = 0.999;
    free(best);
    /* Out-of-fold accuracy and false turns at that threshold over all four cases, and, for
     * comparison, the accuracy of always taking the most probable turn. */
    long ok = 0, ok0 = 0, tot = 0, ft = 0, up = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->v[i].test)
            continue;
        double post[4][4];
        example_posteriors(P[i], post);
        for (int k = 0; k < 4; k++) {
            int rot, bb = 0;
            double conf;
            pimg_orient_decide(post[k], thr, &rot, &conf);
            ok += rot == 90 * k;
            tot++;
            if (k == 0) {
                up++;
                ft += rot != 0;
            }
            for (int r = 1; r < 4; r++)
                if (post[k][r] > post[k][bb])
                    bb = r;
            ok0 += bb == k;
        }
    }
    *cv_acc = tot ? (double)ok / tot : 0;
    *cv_argmax = tot ? (double)ok0 / tot : 0;
    *cv_false = up ? (double)ft / up : 0;
    return thr;
}

/* ---- the Fisher-vector ranking method (PIMG_ORIENT_METHOD_FV) ------------------------- */

/* post[k0][r] of example i from the upright scores of its four versions (sc[k] = score of the
 * version that needs k turns): the photo needing k0, turned clockwise by j, is version
 * (k0 - j) mod 4. */
static void fv_example_post(const double sc[4], double temperature, double post[4][4])
{
    for (int k0 = 0; k0 < 4; k0++) {
        double s[4];
        for (int j = 0; j < 4; j++)
            s[j] = sc[(k0 - j + 4) % 4];
        pimg_orient_fv_posterior(s, temperature, post[k0]);
    }
}

/* Smallest threshold (+1e-4) that turns none of the selected upright examples (post[i][0]),
 * and the accuracy over all four cases at it plus margin (as it ships; as the rbf method
 * reports it) and when forced (always the argmax). */
static double fv_threshold(const double (*post)[4][4], const char *sel, int n, double margin, double *acc,
                           double *forced)
{
    double thr = 0;
    for (int i = 0; i < n; i++) {
        if (!sel[i])
            continue;
        for (int r = 1; r < 4; r++)
            if (post[i][0][r] > post[i][0][0] && post[i][0][r] > thr)
                thr = post[i][0][r];
    }
    thr += 1e-4;
    const double at = fmin(thr + margin, 0.999);
    long ok = 0, okf = 0, tot = 0;
    for (int i = 0; i < n; i++) {
        if (!sel[i])
            continue;
        for (int k = 0; k < 4; k++) {
            int rot, bb = 0;
            double conf;
            pimg_orient_decide(post[i][k], at, &rot, &conf);
            for (int r = 1; r < 4; r++)
                if (post[i][k][r] > post[i][k][bb])
                    bb = r;
            ok += rot == 90 * k;
            okf += bb == k;
            tot++;
        }
    }
    *acc = tot ? (double)ok / tot : 0;
    *forced = tot ? (double)okf / tot : 0;
    return thr;
}

#define FV_TEMPERATURE 0.25
#define FV_SAMPLES 20 /* descriptors per training image version for the vocabulary */

/* Upright scores of example i's four versions under the weights w. */
static void fv_scores(const float *fv, int i, const float *w, double S[4])
{
    for (int k = 0; k < 4; k++) {
        const float *x = fv + ((size_t)i * 4 + k) * PIMG_ORIENT_FV_DIM;
        double s = 0;
        for (size_t d = 0; d < PIMG_ORIENT_FV_DIM; d++)
            s += (double)w[d] * x[d];
        S[k] = s;
    }
}

/* Out-of-fold scores of the training split at C: each fold scored by a ranker trained on the
 * other folds (w is scratch space for the weights). */
static pimg_status fv_out_of_fold(const pimg_orient_train_opts *o, const example_set *set, const float *fv,
                                  const int *fold, double C, char *use, float *w, double (*S)[4], pimg_error *err)
{
    const int n = set->n;
    for (int f = 0; f < o->folds; f++) {
        for (int i = 0; i < n; i++)
            use[i] = !set->v[i].test && fold[i] != f;
        pimg_status st = pimg_orient_fv_rank_train(fv, n, use, C, o->seed + f, w, err);
        if (st)
            return st;
        for (int i = 0; i < n; i++)
            if (!set->v[i].test && fold[i] == f)
                fv_scores(fv, i, w, S[i]);
    }
    return PIMG_OK;
}

static pimg_status train_fv(const pimg_orient_train_opts *o, example_set *set, cJSON *info, pimg_orient_model **out,
                            pimg_error *err)
{
    const int n = set->n;
    const size_t dim = PIMG_ORIENT_FV_DIM;
    pimg_status st = PIMG_OK;
    double t = pimg_clock_s();
    int ntr = 0;
    for (int i = 0; i < n; i++)
        ntr += !set->v[i].test;
    float *samp = malloc(sizeof(float) * (size_t)ntr * 4 * FV_SAMPLES * PIMG_ORIENT_FV_SIFT);
    float *desc = malloc(sizeof(float) * PIMG_ORIENT_FV_MAX_DESC * (PIMG_ORIENT_FV_SIFT + 2));
    float *turned = malloc(sizeof(float) * PIMG_ORIENT_FV_MAX_DESC * (PIMG_ORIENT_FV_SIFT + 2));
    float *fv = malloc(sizeof(float) * (size_t)n * 4 * dim);
    double(*S)[4] = calloc(n, sizeof *S);
    double(*post)[4][4] = calloc(n, sizeof *post);
    char *use = malloc(n), *sel = malloc(n);
    int *fold = malloc(sizeof(int) * n);
    pimg_orient_model *m = calloc(1, sizeof *m);
    if (m)
        m->fv = calloc(1, sizeof *m->fv);
    if (!samp || !desc || !turned || !fv || !S || !post || !use || !sel || !fold || !m || !m->fv) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Vocabulary from the training split only: FV_SAMPLES random descriptors per version. */
    size_t ns = 0;
    float *xy = desc + PIMG_ORIENT_FV_MAX_DESC * PIMG_ORIENT_FV_SIFT, *txy = turned + PIMG_ORIENT_FV_MAX_DESC * PIMG_ORIENT_FV_SIFT;
    for (int i = 0; i < n && !st; i++) {
        if (set->v[i].test)
            continue;
        int nd = pimg_orient_fv_descriptors(set->v[i].grey, desc, xy);
        if (nd <= 0) {
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            break;
        }
        for (int j = 0; j < 4; j++) {
            pimg_orient_fv_turn_descriptors(desc, xy, nd, j, turned, txy);
            pimg_rng r;
            pimg_rng_seed(&r, o->seed, 5150 + (unsigned long long)i, j);
            for (int k = 0; k < FV_SAMPLES; k++)
                memcpy(samp + ns++ * PIMG_ORIENT_FV_SIFT, turned + (size_t)pimg_rng_int(&r, nd) * PIMG_ORIENT_FV_SIFT,
                       sizeof(float) * PIMG_ORIENT_FV_SIFT);
        }
    }
    if (st || (st = pimg_orient_fv_vocab_train(samp, ns, o->seed, &m->fv->vocab, err)))
        goto out;
    m->fv->temperature = FV_TEMPERATURE;
    pimg_progress_say(o->progress, o->progress_ud, "vocabulary: PCA %d + GMM %d from %zu descriptors (%.1f s)", PIMG_ORIENT_FV_PCA,
                      PIMG_ORIENT_FV_K, ns, pimg_clock_s() - t);
    /* Fisher vectors of every example's four versions (version k needs k turns). */
    t = pimg_clock_s();
    for (int i = 0; i < n && !st; i++) {
        int nd = pimg_orient_fv_descriptors(set->v[i].grey, desc, xy);
        if (nd <= 0) {
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            break;
        }
        for (int k = 0; k < 4 && !st; k++) {
            pimg_orient_fv_turn_descriptors(desc, xy, nd, (4 - k) % 4, turned, txy);
            st = pimg_orient_fv_encode_desc(&m->fv->vocab, turned, txy, nd, fv + ((size_t)i * 4 + k) * dim, err);
        }
        if ((i + 1) % 200 == 0)
            pimg_progress_say(o->progress, o->progress_ud, "fisher vectors %d/%d (%.1f s)", i + 1, n, pimg_clock_s() - t);
    }
    if (st)
        goto out;
    for (int i = 0; i < n; i++) {
        pimg_rng r;
        pimg_rng_seed(&r, o->seed, 99, (unsigned long long)set->v[i].group);
        fold[i] = pimg_rng_int(&r, o->folds);
        sel[i] = !set->v[i].test && set->v[i].plain;
    }
    /* C by grouped cross-validation: out-of-fold accuracy at the threshold that turns no
     * out-of-fold upright photo (the number that matters), ties broken by forced accuracy. */
    static const double Cs[] = {0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1};
    double best_C = 0.01, best_acc = -1, best_forced = -1;
    cJSON *grid = cJSON_AddArrayToObject(info, "grid_search");
    for (size_t ci = 0; ci < sizeof Cs / sizeof *Cs && (int)ci < o->max_iter; ci++) {
        double t1 = pimg_clock_s();
        if ((st = fv_out_of_fold(o, set, fv, fold, Cs[ci], use, m->fv->w, S, err)))
            goto out;
        for (int i = 0; i < n; i++)
            fv_example_post(S[i], FV_TEMPERATURE, post[i]);
        double acc, forced;
        double thr = fv_threshold((const double(*)[4][4])post, sel, n, o->turn_margin, &acc, &forced);
        pimg_progress_say(o->progress, o->progress_ud, "cv %zu: C=%g out-of-fold forced=%.4f, threshold %.4f (+ margin) acc=%.4f (%.1f s)", ci + 1,
                          Cs[ci], forced, thr, acc, pimg_clock_s() - t1);
        cJSON *g = cJSON_CreateObject();
        cJSON_AddNumberToObject(g, "C", Cs[ci]);
        cJSON_AddNumberToObject(g, "cv_forced_accuracy", forced);
        cJSON_AddNumberToObject(g, "cv_threshold", thr);
        cJSON_AddNumberToObject(g, "cv_accuracy_at_threshold", acc);
        cJSON_AddItemToArray(grid, g);
        if (acc > best_acc + 1e-9 || (fabs(acc - best_acc) <= 1e-9 && forced > best_forced)) {
            best_acc = acc;
            best_forced = forced;
            best_C = Cs[ci];
        }
    }
    /* Out-of-fold posteriors at the chosen C give the threshold. */
    if ((st = fv_out_of_fold(o, set, fv, fold, best_C, use, m->fv->w, S, err)))
        goto out;
    for (int i = 0; i < n; i++)
        fv_example_post(S[i], FV_TEMPERATURE, post[i]);
    double cv_acc, cv_forced;
    double thr_oof = fv_threshold((const double(*)[4][4])post, sel, n, o->turn_margin, &cv_acc, &cv_forced);
    const double thr_oof_m = fmin(thr_oof + o->turn_margin, 0.999);
    double thr = thr_oof_m;
    pimg_progress_say(o->progress, o->progress_ud, "chosen C=%g: out-of-fold forced=%.4f, threshold %.4f acc=%.4f", best_C, cv_forced,
                      thr_oof, cv_acc);
    /* Final model on the whole training split; held-out examples scored with it. */
    t = pimg_clock_s();
    for (int i = 0; i < n; i++)
        use[i] = !set->v[i].test;
    if ((st = pimg_orient_fv_rank_train(fv, n, use, best_C, o->seed, m->fv->w, err)))
        goto out;
    int nte = 0;
    double held_max = 0;
    for (int i = 0; i < n; i++) {
        sel[i] = set->v[i].test && set->v[i].plain;
        if (!sel[i])
            continue;
        fv_scores(fv, i, m->fv->w, S[i]);
        fv_example_post(S[i], FV_TEMPERATURE, post[i]);
        for (int r = 1; r < 4; r++)
            if (post[i][0][r] > post[i][0][0] && post[i][0][r] > held_max)
                held_max = post[i][0][r];
        nte++;
    }
    double test_acc_oof, test_forced;
    fv_threshold((const double(*)[4][4])post, sel, n, o->turn_margin, &test_acc_oof, &test_forced);
    if (held_max + 1e-4 + o->turn_margin > thr)
        thr = fmin(held_max + 1e-4 + o->turn_margin, 0.999);
    m->min_turn_prob = thr;
    int *truth = malloc(sizeof(int) * (4 * nte + 1)), *pred = malloc(sizeof(int) * (4 * nte + 1));
    if (!truth || !pred) {
        free(truth);
        free(pred);
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int pass = 0; pass < 2; pass++) {
        int j = 0;
        for (int i = 0; i < n; i++)
            if (sel[i])
                for (int k = 0; k < 4; k++, j++) {
                    double conf;
                    truth[j] = 90 * k;
                    pimg_orient_decide(post[i][k], pass ? thr_oof_m : thr, &pred[j], &conf);
                }
        cJSON_AddItemToObject(info, pass ? "test_at_oof_threshold" : "test", pimg_orient_metrics(truth, pred, j));
    }
    free(truth);
    free(pred);
    pimg_progress_say(o->progress, o->progress_ud, "final model (%.1f s): held-out forced=%.4f, threshold %.4f (out-of-fold %.4f + margin, held-out upright max %.4f)",
                      pimg_clock_s() - t, test_forced, thr, thr_oof, held_max);
    cJSON *ch = cJSON_AddObjectToObject(info, "model");
    cJSON_AddStringToObject(ch, "method", "dense SIFT Fisher vectors (whole + 3 rows + 3 columns), linear ranking SVM "
                                          "(squared hinge, no bias) on upright-minus-turned pairs, softmax over the four turns");
    cJSON_AddNumberToObject(ch, "C", best_C);
    cJSON_AddNumberToObject(ch, "temperature", FV_TEMPERATURE);
    cJSON_AddNumberToObject(ch, "dimensions", PIMG_ORIENT_FV_DIM);
    cJSON_AddNumberToObject(ch, "vocabulary_descriptors", (double)ns);
    cJSON_AddNumberToObject(ch, "min_turn_prob", thr);
    cJSON_AddNumberToObject(ch, "min_turn_prob_out_of_fold", thr_oof_m);
    cJSON_AddNumberToObject(ch, "held_out_upright_max_turn_prob", held_max);
    cJSON_AddNumberToObject(ch, "max_false_turn", 0);
    cJSON_AddNumberToObject(ch, "turn_margin", o->turn_margin);
    cJSON_AddNumberToObject(ch, "cv_accuracy_at_threshold", cv_acc);
    cJSON_AddNumberToObject(ch, "cv_accuracy_always_turning", cv_forced);
    cJSON_AddNumberToObject(ch, "test_accuracy_always_turning", test_forced);
out:
    free(samp);
    free(desc);
    free(turned);
    free(fv);
    free(S);
    free(post);
    free(use);
    free(sel);
    free(fold);
    if (st) {
        pimg_orient_model_free(m);
        return st;
    }
    *out = m;
    return PIMG_OK;
}

pimg_status pimg_orient_train(const pimg_orient_train_opts *o, pimg_orient_model **out, cJSON **metrics,
                              pimg_error *err)
{
    double t_start = pimg_clock_s();
    example_set set = {0};
    scaled_set ss = {0};
    int *fold = NULL;
    double(*P)[4][4] = NULL;
    pimg_orient_model *m = NULL;
    cJSON *info = cJSON_CreateObject();
    pimg_status st = PIMG_OK;
    if (!info)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    if (o->n_data_dirs < 1 || o->folds < 2 || o->variants < 1 || o->test_frac < 0 || o->test_frac >= 1) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "bad training options");
        goto out;
    }
    char tpath[1024];
    if (o->dump_path) {
        snprintf(tpath, sizeof tpath, "%s.thumbs", o->dump_path);
        set.thumbs = fopen(tpath, "wb");
    }
    set.keep_grey = o->method == PIMG_ORIENT_METHOD_FV;
    st = build_set(o, &set, info, err);
    if (set.thumbs)
        fclose(set.thumbs);
    if (st)
        goto out;
    if (o->dump_path) {
        /* Raw little-endian dump for offline analysis: n, nfeat, then per example group, test,
         * plain (int32) and the four turns' features (float32). */
        FILE *f = fopen(o->dump_path, "wb");
        int hdr[2] = {set.n, PIMG_ORIENT_NFEAT};
        int ok = f && fwrite(hdr, sizeof hdr, 1, f) == 1;
        for (int i = 0; ok && i < set.n; i++) {
            int g[3] = {set.v[i].group, set.v[i].test, set.v[i].plain};
            ok = fwrite(g, sizeof g, 1, f) == 1 && fwrite(set.v[i].feats, sizeof set.v[i].feats, 1, f) == 1;
        }
        if (f && fclose(f))
            ok = 0;
        st = ok ? PIMG_ERR_CANCELLED : pimg_error_set(err, PIMG_ERR_IO, "%s: cannot write", o->dump_path);
        if (ok)
            pimg_error_set(err, st, "features written to %s", o->dump_path);
        goto out;
    }
    if (o->method == PIMG_ORIENT_METHOD_FV) {
        if ((st = train_fv(o, &set, info, &m, err)))
            goto out;
        cJSON_AddNumberToObject(info, "train_seconds", pimg_clock_s() - t_start);
        goto out;
    }
    if ((st = scale_set(&set, &ss, err)))
        goto out;
    /* Grouped folds: every copy of one photo (or one object's composites) in the same fold. */
    fold = malloc(sizeof(int) * set.n);
    P = calloc(set.n, sizeof *P);
    if (!fold || !P) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < set.n; i++) {
        pimg_rng r;
        pimg_rng_seed(&r, o->seed, 99, (unsigned long long)set.v[i].group);
        fold[i] = pimg_rng_int(&r, o->folds);
    }
    /* Grid search: for each gamma raise C while the validation error improves; move to the next
     * gamma while the best error improves; never more than max_iter points. */
    static const double gammas[] = {0.25, 0.5, 1.0, 2.0};
    static const double Cs[] = {1, 4, 16};
    double best_err = 2, best_C = 4, best_g = 0.5;
    int iter = 0;
    cJSON *grid = cJSON_AddArrayToObject(info, "grid_search");
    double prev_gamma_best = 2;
    for (size_t gi = 0; gi < sizeof gammas / sizeof *gammas && iter < o->max_iter; gi++) {
        double gbest = 2;
        for (size_t ci = 0; ci < sizeof Cs / sizeof *Cs && iter < o->max_iter; ci++) {
            double t = pimg_clock_s();
            double e = cross_validate(o, &set, &ss, fold, Cs[ci], gammas[gi], NULL);
            iter++;
            pimg_progress_say(o->progress, o->progress_ud, "cv %d: gamma=%g C=%g error=%.4f (%.1f s)", iter, gammas[gi], Cs[ci], e, pimg_clock_s() - t);
            cJSON *g = cJSON_CreateObject();
            cJSON_AddNumberToObject(g, "gamma", gammas[gi]);
            cJSON_AddNumberToObject(g, "C", Cs[ci]);
            cJSON_AddNumberToObject(g, "cv_error", e);
            cJSON_AddItemToArray(grid, g);
            if (e < best_err) {
                best_err = e;
                best_C = Cs[ci];
                best_g = gammas[gi];
            }
            if (e >= gbest)
                break; /* validation error stopped improving along C */
            gbest = e;
        }
        if (gbest >= prev_gamma_best)
            break; /* and along gamma */
        prev_gamma_best = gbest;
    }
    pimg_progress_say(o->progress, o->progress_ud, "chosen gamma=%g C=%g (cv error %.4f)", best_g, best_C, best_err);
    /* Out-of-fold posteriors at the chosen point give the turn threshold. */
    double t = pimg_clock_s();
    cross_validate(o, &set, &ss, fold, best_C, best_g, P);
    double cv_acc = 0, cv_false = 0, cv_argmax = 0;
    double thr = choose_threshold(&set, (const double(*)[4][4])P, o->max_false_turn, o->turn_margin, &cv_acc,
                                  &cv_false, &cv_argmax);
    pimg_progress_say(o->progress, o->progress_ud, "threshold %.4f: out-of-fold acc=%.4f false_turn=%.4f (always turning: acc=%.4f) (%.1f s)", thr,
             cv_acc, cv_false, cv_argmax, pimg_clock_s() - t);
    /* Final model on the whole training split. */
    t = pimg_clock_s();
    char *use = malloc(set.n);
    if (!use) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < set.n; i++)
        use[i] = !set.v[i].test;
    struct svm_model *svm = train_on(&set, &ss, use, best_C, best_g, 1, o->seed);
    free(use);
    if (!svm) {
        st = pimg_error_set(err, PIMG_ERR_INTERNAL, "libsvm training failed");
        goto out;
    }
    /* Quantise for shipping and score the quantised model, so the metrics are those of the
     * file we write. The model no longer points into ss.nodes after this. */
    pimg_orient_qsvm *q = pimg_orient_qsvm_from_svm(svm, PIMG_ORIENT_NFEAT);
    svm_free_and_destroy_model(&svm);
    struct svm_model *own = q ? pimg_orient_qsvm_to_svm(q) : NULL;
    m = own ? calloc(1, sizeof *m) : NULL;
    if (!m) {
        if (own)
            svm_free_and_destroy_model(&own);
        pimg_orient_qsvm_free(q);
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    m->qsvm = q;
    m->svm = own;
    svm_get_labels(own, m->labels);
    if ((st = pimg_orient_model_prepare(m, err)))
        goto out;
    memcpy(m->mean, ss.mean, sizeof m->mean);
    memcpy(m->scale, ss.scale, sizeof m->scale);
    m->min_turn_prob = thr;
    pimg_progress_say(o->progress, o->progress_ud, "final model: %d support vectors (%.1f s)", own->l, pimg_clock_s() - t);
    /* Held-out test: each test photo's unaugmented copy and each test composite, four turns. */
    int nt = 0;
    for (int i = 0; i < set.n; i++)
        nt += set.v[i].test && set.v[i].plain ? 4 : 0;
    int *truth = malloc(sizeof(int) * (nt ? nt : 1)), *pred = malloc(sizeof(int) * (nt ? nt : 1));
    if (!truth || !pred) {
        free(truth);
        free(pred);
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Posteriors of the held-out cases; the held-out upright photos also bound the threshold
     * (the brief's "turn none of them", with the same margin): out-of-fold posteriors of fold
     * models do not always show how sure the final model is. The metrics at the out-of-fold
     * threshold alone stay in the card as the independent held-out figure. */
    double(*tpost)[4][4] = malloc(sizeof *tpost * (nt ? nt / 4 : 1));
    if (!tpost) {
        free(truth);
        free(pred);
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    int nte = 0;
    double held_max = 0;
    for (int i = 0; i < set.n; i++) {
        if (!set.v[i].test || !set.v[i].plain)
            continue;
        double Pi[4][4];
        for (int k = 0; k < 4; k++)
            pimg_orient_class_probs(m, set.v[i].feats[k], Pi[k]);
        example_posteriors(Pi, tpost[nte]);
        for (int r = 1; r < 4; r++)
            if (tpost[nte][0][r] > tpost[nte][0][0] && tpost[nte][0][r] > held_max)
                held_max = tpost[nte][0][r];
        nte++;
    }
    /* Held-out accuracy when always taking the most probable turn (no threshold). */
    long forced_ok = 0;
    for (int e = 0; e < nte; e++)
        for (int k = 0; k < 4; k++) {
            int bb = 0;
            for (int r = 1; r < 4; r++)
                if (tpost[e][k][r] > tpost[e][k][bb])
                    bb = r;
            forced_ok += bb == k;
        }
    double test_forced = nte ? (double)forced_ok / (4.0 * nte) : 0;
    double thr_oof = thr;
    if (held_max + 1e-4 + o->turn_margin > thr)
        thr = fmin(held_max + 1e-4 + o->turn_margin, 0.999);
    m->min_turn_prob = thr;
    for (int pass = 0; pass < 2; pass++) {
        for (int e = 0, j = 0; e < nte; e++)
            for (int k = 0; k < 4; k++, j++) {
                double conf;
                truth[j] = 90 * k;
                pimg_orient_decide(tpost[e][k], pass ? thr_oof : thr, &pred[j], &conf);
            }
        cJSON *tm = pimg_orient_metrics(truth, pred, nt);
        cJSON_AddItemToObject(info, pass ? "test_at_oof_threshold" : "test", tm);
    }
    pimg_progress_say(o->progress, o->progress_ud, "threshold %.4f (out-of-fold %.4f, held-out upright max %.4f)", thr, thr_oof, held_max);
    free(tpost);
    free(truth);
    free(pred);
    cJSON *ch = cJSON_AddObjectToObject(info, "model");
    cJSON_AddStringToObject(ch, "svm", "C-SVC, RBF kernel, 4 classes (clockwise quarter turns), Platt probabilities");
    cJSON_AddNumberToObject(ch, "C", best_C);
    cJSON_AddNumberToObject(ch, "gamma", best_g);
    cJSON_AddNumberToObject(ch, "cv_error_single", best_err);
    cJSON_AddNumberToObject(ch, "grid_points", iter);
    cJSON_AddNumberToObject(ch, "support_vectors", own->l);
    cJSON_AddNumberToObject(ch, "min_turn_prob", thr);
    cJSON_AddNumberToObject(ch, "min_turn_prob_out_of_fold", thr_oof);
    cJSON_AddNumberToObject(ch, "held_out_upright_max_turn_prob", held_max);
    cJSON_AddNumberToObject(ch, "max_false_turn", o->max_false_turn);
    cJSON_AddNumberToObject(ch, "turn_margin", o->turn_margin);
    cJSON_AddNumberToObject(ch, "cv_accuracy_at_threshold", cv_acc);
    cJSON_AddNumberToObject(ch, "cv_false_turn_at_threshold", cv_false);
    cJSON_AddNumberToObject(ch, "cv_accuracy_always_turning", cv_argmax);
    cJSON_AddNumberToObject(ch, "test_accuracy_always_turning", test_forced);
    cJSON_AddNumberToObject(info, "train_seconds", pimg_clock_s() - t_start);
out:
    for (int i = 0; i < set.n; i++)
        free(set.v[i].grey);
    free(set.v);
    free(ss.nodes);
    free(fold);
    free(P);
    if (st) {
        cJSON_Delete(info);
        pimg_orient_model_free(m);
        return st;
    }
    *out = m;
    *metrics = info;
    return PIMG_OK;
}

pimg_status pimg_orient_evaluate(const pimg_orient_model *m, const char *const *dirs, int n_dirs,
                                 pimg_progress_fn progress_fn, void *ud, cJSON **metrics, pimg_error *err)
{
    pimg_photo_list photos = {0};
    pimg_status st = PIMG_OK;
    for (int d = 0; d < n_dirs && !st; d++)
        st = pimg_photos_read(dirs[d], "labels.csv", &photos, err);
    if (st) {
        pimg_photo_list_free(&photos);
        return st;
    }
    int *truth = malloc(sizeof(int) * 4 * (photos.n ? photos.n : 1));
    int *pred = malloc(sizeof(int) * 4 * (photos.n ? photos.n : 1));
    int n = 0, skipped = 0;
    if (!truth || !pred) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < photos.n && !st; i++) {
        if (!photos.v[i].up)
            continue;
        pimg_tensor *t = NULL;
        pimg_error e = {0};
        if (pimg_photo_load(&photos.v[i], PIMG_ANALYSIS_SIDE, &t, &e)) {
            skipped++;
            continue;
        }
        for (int k = 0; k < 4 && !st; k++) {
            /* Turn the upright photo counter-clockwise by k quarters: it then needs k. */
            pimg_tensor *r = k ? pimg_tensor_rot90(t, 360 - 90 * k) : t;
            double conf;
            if (!r) {
                st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
                break;
            }
            st = pimg_orient_predict(m, r, &pred[n], &conf, err);
            truth[n++] = 90 * k;
            if (r != t)
                pimg_tensor_free(r);
        }
        pimg_tensor_free(t);
        if (progress_fn && (i + 1) % 20 == 0) {
            char msg[64];
            snprintf(msg, sizeof msg, "evaluated %d/%d photos", i + 1, photos.n);
            progress_fn(ud, msg);
        }
    }
    if (!st) {
        cJSON *o = pimg_orient_metrics(truth, pred, n);
        if (!o) {
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        } else {
            cJSON_AddNumberToObject(o, "photos", n / 4);
            cJSON_AddNumberToObject(o, "skipped", skipped);
            *metrics = o;
        }
    }
out:
    free(truth);
    free(pred);
    pimg_photo_list_free(&photos);
    return st;
}
