/* detect_train.c — composites, hard-negative mining and evaluation for the detector's libsvm
 * box scorer (see detect_train.h for the procedure and why). */
#include "detect_train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <libsvm/svm.h>
#include <vips/vips.h>

#include "clock.h"
#include "composite.h"
#include "dataset.h"
#include "detect_svm.h"
#include "image.h"
#include "mask.h"
#include "saliency.h"

#define D PIMG_SAL_FEAT_DIM
#define MAXP 320
#define POS_IOU 0.75
#define NEG_IOU 0.5

void pimg_detect_train_opts_default(pimg_detect_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 42;
    o->n_train = 800;
    o->n_val = 120;
    o->n_test = 150;
    o->max_rounds = 3;
    o->side = 384;
    o->clutter_fill[0] = 0.4;
    o->clutter_fill[1] = 0.85;
    o->rank = 0;
    o->rerank = 1;
}



/* ---- data split ------------------------------------------------------------------------------ */

enum { SPLIT_TRAIN = 0, SPLIT_VAL, SPLIT_TEST };

typedef struct {
    pimg_composite_src *src;
    int *obj[3], nobj[3];
    int *bg[3], nbg[3];
    int n_excluded; /* objects dropped by the exclusion list */
    int nobj0[3];   /* of obj[k], how many (the first ones) come from data_dir/objects */
} split_set;

static void split_free(split_set *s)
{
    pimg_composite_src_free(s->src);
    for (int i = 0; i < 3; i++) {
        free(s->obj[i]);
        free(s->bg[i]);
    }
    memset(s, 0, sizeof *s);
}

/* Shuffles 0..n-1 with the seed and cuts 70/15/15 (each part at least one item when n >= 3). */
static int cut(int n, uint64_t seed, int *parts[3], int counts[3])
{
    int *p = malloc(sizeof(int) * (n ? n : 1));
    if (!p)
        return -1;
    for (int i = 0; i < n; i++)
        p[i] = i;
    uint64_t r = seed;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(pimg_rand_uniform(&r) * (i + 1));
        int t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    int nv = n >= 3 ? (int)lround(0.15 * n) : 0, nt = nv;
    if (n >= 3 && nv < 1)
        nv = nt = 1;
    counts[SPLIT_TRAIN] = n - nv - nt;
    counts[SPLIT_VAL] = nv;
    counts[SPLIT_TEST] = nt;
    int off = 0;
    for (int k = 0; k < 3; k++) {
        parts[k] = malloc(sizeof(int) * (counts[k] ? counts[k] : 1));
        if (!parts[k]) {
            free(p);
            return -1;
        }
        memcpy(parts[k], p + off, sizeof(int) * counts[k]);
        off += counts[k];
    }
    free(p);
    return 0;
}

/* Objects come from data_dir/objects and then each objects_dirs folder, each folder's files
 * sorted by name. Each folder is shuffled and cut 70/15/15 on its own (extra folders by object
 * stem, pimg_object_stem), folder 0 file by file with the seed it always had: data_dir/objects keeps exactly the split it had before extra folders existed (so
 * composites made earlier from its test objects stay unseen, and without extra folders the
 * model is byte for byte what it was). Excluded objects are dropped after the cut, so the
 * exclusion list does not reshuffle the others; they are never loaded. */
static pimg_status split_load(const pimg_detect_train_opts *o, split_set *s, pimg_error *err)
{
    memset(s, 0, sizeof *s);
    char od[4096], bd[4096];
    snprintf(od, sizeof od, "%s/objects", o->data_dir);
    snprintf(bd, sizeof bd, "%s/train", o->data_dir);
    pimg_photo_list objs = {0};
    char **words = NULL;
    int nwords = 0, nf = 1 + (o->n_objects_dirs > 0 ? o->n_objects_dirs : 0), n0 = 0;
    int *keep = NULL;            /* object list index -> composite source index, -1 dropped */
    const char **paths = NULL;
    int *parts[3] = {0}, counts[3] = {0};
    pimg_status st = PIMG_OK;
    if (o->exclude_objects && (st = pimg_word_list_read(o->exclude_objects, &words, &nwords, err)))
        return st;
    for (int f = 0; f < nf && !st; f++) {
        const char *dir = f ? o->objects_dirs[f - 1] : od;
        int start = objs.n;
        if ((st = pimg_photos_read(dir, "objects.csv", &objs, err)))
            break;
        /* The loaders take PNG cut-outs only, in name order whatever the CSV's row order. */
        int w = start;
        for (int i = start; i < objs.n; i++) {
            const char *dot = strrchr(objs.v[i].path, '.');
            if (dot && !strcasecmp(dot, ".png"))
                objs.v[w++] = objs.v[i];
        }
        objs.n = w;
        pimg_photos_sort(&objs, start, objs.n);
        if (f == 0)
            n0 = objs.n;
        /* Extra folders are cut by object stem, so a stamp and its mirror or numbered variant
         * land in the same part (folder 0's split stays the historical one, file by file). */
        int nobj = objs.n - start, ng = 0;
        int *grp = malloc(sizeof(int) * (nobj ? nobj : 1)); /* object -> group */
        char (*stem)[128] = malloc(sizeof *stem * (nobj ? nobj : 1));
        if (!grp || !stem) {
            free(grp);
            free(stem);
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            break;
        }
        for (int i = 0; i < nobj; i++) {
            if (f == 0) {
                grp[i] = ng++;
                continue;
            }
            pimg_object_stem(objs.v[start + i].path, stem[ng], sizeof stem[ng]);
            int g = 0;
            while (g < ng && strcmp(stem[g], stem[ng]))
                g++;
            grp[i] = g;
            ng += g == ng;
        }
        free(stem);
        int *fp[3], fc[3];
        if (cut(ng, o->seed * 3 + 1 + (uint64_t)f * 1000003ULL, fp, fc)) {
            free(grp);
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            break;
        }
        for (int k = 0; k < 3 && !st; k++) {
            int *nv = realloc(parts[k], sizeof(int) * (counts[k] + nobj + 1));
            if (!nv)
                st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            else {
                parts[k] = nv;
                for (int i = 0; i < fc[k]; i++)
                    for (int j = 0; j < nobj; j++)
                        if (grp[j] == fp[k][i])
                            parts[k][counts[k]++] = start + j;
            }
        }
        free(grp);
        for (int k = 0; k < 3; k++)
            free(fp[k]);
    }
    if (!st && (!(keep = malloc(sizeof(int) * (objs.n ? objs.n : 1))) ||
                !(paths = malloc(sizeof(char *) * (objs.n ? objs.n : 1)))))
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    if (!st) {
        int nk = 0;
        for (int i = 0; i < objs.n; i++) {
            const char *slash = strrchr(objs.v[i].path, '/');
            keep[i] = pimg_name_has_word(slash ? slash + 1 : objs.v[i].path, (const char *const *)words, nwords) ? -1 : nk;
            if (keep[i] >= 0)
                paths[nk++] = objs.v[i].path;
        }
        s->n_excluded = objs.n - nk;
        struct stat sb;
        st = pimg_composite_src_load_files(paths, nk, stat(bd, &sb) == 0 ? bd : NULL, &s->src, err);
    }
    for (int k = 0; k < 3 && !st; k++) {
        s->obj[k] = malloc(sizeof(int) * (counts[k] ? counts[k] : 1));
        if (!s->obj[k]) {
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            break;
        }
        /* Folder 0's objects come first in each part (they were cut first). */
        for (int i = 0; i < counts[k]; i++)
            if (keep[parts[k][i]] >= 0) {
                s->obj[k][s->nobj[k]++] = keep[parts[k][i]];
                s->nobj0[k] += parts[k][i] < n0;
            }
    }
    if (!st && cut(pimg_composite_n_backgrounds(s->src), o->seed * 3 + 2, s->bg, s->nbg))
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    if (!st && (s->nobj[SPLIT_TRAIN] < 1 || s->nobj[SPLIT_VAL] < 1 || s->nobj[SPLIT_TEST] < 1))
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: need at least 3 objects to split", od);
    for (int k = 0; k < 3; k++)
        free(parts[k]);
    free(keep);
    free(paths);
    pimg_photo_list_free(&objs);
    pimg_word_list_free(words, nwords);
    if (st)
        split_free(s);
    return st;
}

/* Seed of a split's random draws: train_seed, when set, for the training split only. */
static uint64_t draw_seed(const pimg_detect_train_opts *o, int split)
{
    return split == SPLIT_TRAIN && o->train_seed ? o->train_seed : o->seed;
}

/* Composite i of a split: deterministic in (seed, split, i). About a third on synthetic plain
 * backgrounds, the rest on crops of the split's real photos. */
static pimg_status split_composite(const split_set *s, const pimg_detect_train_opts *o, int split, int i,
                                   pimg_tensor **img, pimg_tensor **mask, double box[4], int *plain,
                                   pimg_error *err)
{
    uint64_t r = draw_seed(o, split) * 1000003ULL + (uint64_t)split * 7919ULL * 1000003ULL + (uint64_t)i * 2654435761ULL;
    pimg_rand_uniform(&r);
    pimg_composite_spec sp = {.side = o->side, .shadow = -1};
    sp.object = s->obj[split][(int)(pimg_rand_uniform(&r) * s->nobj[split]) % s->nobj[split]];
    /* With extra folders, their objects may be given a fixed share of the composites instead of
     * one in proportion to their number (drawn only when asked: the default stream is as ever). */
    int n0 = s->nobj0[split], nx = s->nobj[split] - n0;
    if (o->extra_share > 0 && n0 > 0 && nx > 0)
        sp.object = pimg_rand_uniform(&r) < o->extra_share
                        ? s->obj[split][n0 + (int)(pimg_rand_uniform(&r) * nx) % nx]
                        : s->obj[split][(int)(pimg_rand_uniform(&r) * n0) % n0];
    *plain = s->nbg[split] == 0 || pimg_rand_uniform(&r) < 0.35;
    sp.background = *plain ? -1 : s->bg[split][(int)(pimg_rand_uniform(&r) * s->nbg[split]) % s->nbg[split]];
    if (*plain) {
        sp.min_fill = 0.35;
        sp.max_fill = 0.95;
    } else {
        /* Smaller than this and the background photo's own subject, not the pasted product,
         * is the honest "main object": such composites teach the wrong answer. */
        sp.min_fill = o->clutter_fill[0];
        sp.max_fill = o->clutter_fill[1];
    }
    /* Photos arrive at many sizes; drawn only when asked, so the default stream is unchanged. */
    if (o->side_min > 0 && o->side_min < o->side)
        sp.side = o->side_min + (int)(pimg_rand_uniform(&r) * (o->side - o->side_min + 1));
    return pimg_composite_make(s->src, &sp, &r, img, mask, box, err);
}

/* ---- samples ------------------------------------------------------------------------------ */

typedef struct {
    int n;               /* proposals */
    double (*box)[4];    /* scene pixels */
    float *feat;         /* n x D */
    double *iou;
    unsigned char *used; /* already in the training set as a negative */
    double gt[4];        /* scene pixels */
    float *pos;          /* npos x D: exact box and jitters */
    int npos;
    int plain;
} sample;

static void sample_free(sample *s)
{
    free(s->box);
    free(s->feat);
    free(s->iou);
    free(s->used);
    free(s->pos);
}

static pimg_status sample_make(const pimg_tensor *img, const double gt[4], int plain, uint64_t *r, sample *out,
                               pimg_error *err)
{
    memset(out, 0, sizeof *out);
    pimg_scene *sc = NULL;
    pimg_status st = pimg_scene_make(img, PIMG_SAL_SIDE, &sc, err);
    if (st)
        return st;
    out->plain = plain;
    for (int k = 0; k < 4; k++)
        out->gt[k] = gt[k] / sc->scale;
    out->box = malloc(sizeof(double[4]) * MAXP);
    if (!out->box)
        goto nomem;
    out->n = pimg_scene_proposals(sc, out->box, MAXP);
    out->feat = malloc(sizeof(float) * D * (out->n ? out->n : 1));
    out->iou = malloc(sizeof(double) * (out->n ? out->n : 1));
    out->used = calloc(out->n ? out->n : 1, 1);
    out->pos = malloc(sizeof(float) * D * 4);
    if (!out->feat || !out->iou || !out->used || !out->pos)
        goto nomem;
    for (int i = 0; i < out->n; i++) {
        pimg_scene_features(sc, out->box[i], out->feat + (size_t)i * D);
        out->iou[i] = pimg_box_iou(out->box[i], out->gt);
    }
    /* The exact box plus jittered copies that still overlap it well. */
    pimg_scene_features(sc, out->gt, out->pos);
    out->npos = 1;
    for (int tries = 0; tries < 12 && out->npos < 4; tries++) {
        double bw = out->gt[2] - out->gt[0], bh = out->gt[3] - out->gt[1], j[4];
        for (int k = 0; k < 4; k++)
            j[k] = out->gt[k] + (pimg_rand_uniform(r) - 0.5) * 0.14 * (k % 2 ? bh : bw);
        j[0] = fmax(0, j[0]);
        j[1] = fmax(0, j[1]);
        j[2] = fmin(sc->w, j[2]);
        j[3] = fmin(sc->h, j[3]);
        if (j[2] - j[0] < 3 || j[3] - j[1] < 3 || pimg_box_iou(j, out->gt) < 0.8)
            continue;
        pimg_scene_features(sc, j, out->pos + (size_t)out->npos * D);
        out->npos++;
    }
    pimg_scene_free(sc);
    return PIMG_OK;
nomem:
    pimg_scene_free(sc);
    sample_free(out);
    return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
}

static pimg_status make_samples(const split_set *ss, const pimg_detect_train_opts *o, int split, int n,
                                sample **out, pimg_error *err)
{
    sample *v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        pimg_tensor *img = NULL;
        double box[4];
        int plain;
        pimg_status st = split_composite(ss, o, split, i, &img, NULL, box, &plain, err);
        uint64_t r = draw_seed(o, split) + 77 * (uint64_t)i + split;
        if (!st)
            st = sample_make(img, box, plain, &r, &v[i], err);
        pimg_tensor_free(img);
        if (st) {
            for (int k = 0; k < i; k++)
                sample_free(&v[k]);
            free(v);
            return st;
        }
        if ((i + 1) % 100 == 0)
            pimg_progress_say(o->progress, o->progress_ctx, "  %s composites: %d/%d", split == SPLIT_TRAIN ? "train" : split == SPLIT_VAL ? "val" : "test",
                i + 1, n);
    }
    *out = v;
    return PIMG_OK;
}

/* ---- training set and libsvm ------------------------------------------------------------------ */

typedef struct {
    float *x; /* n x D */
    double *y;
    int n, cap;
} tset;

static int tset_add(tset *t, const float *f, double y)
{
    if (t->n == t->cap) {
        int nc = t->cap ? 2 * t->cap : 4096;
        float *nx = realloc(t->x, sizeof(float) * D * (size_t)nc);
        if (!nx)
            return -1;
        t->x = nx;
        double *ny = realloc(t->y, sizeof(double) * nc);
        if (!ny)
            return -1;
        t->y = ny;
        t->cap = nc;
    }
    memcpy(t->x + (size_t)t->n * D, f, sizeof(float) * D);
    t->y[t->n++] = y;
    return 0;
}

typedef struct {
    int kernel; /* LINEAR or RBF */
    double C, gamma;
} svm_cfg;

static void quiet(const char *s) { (void)s; }

/* Trains libsvm on t and returns a self-contained model (support vectors copied, so it does
 * not point into the problem's memory). Positive samples come first, so label[0] is +1. */
static struct svm_model *fit(const tset *t, const svm_cfg *c)
{
    struct svm_problem prob;
    prob.l = t->n;
    prob.y = t->y;
    struct svm_node *pool = malloc(sizeof(struct svm_node) * (size_t)(D + 1) * t->n);
    prob.x = malloc(sizeof(struct svm_node *) * t->n);
    if (!pool || !prob.x) {
        free(pool);
        free(prob.x);
        return NULL;
    }
    for (int i = 0; i < t->n; i++) {
        struct svm_node *p = pool + (size_t)i * (D + 1);
        prob.x[i] = p;
        int k = 0;
        for (int j = 0; j < D; j++) {
            float v = t->x[(size_t)i * D + j];
            if (v != 0.0f) {
                p[k].index = j + 1;
                p[k++].value = v;
            }
        }
        p[k].index = -1;
    }
    struct svm_parameter par;
    memset(&par, 0, sizeof par);
    par.svm_type = C_SVC;
    par.kernel_type = c->kernel;
    par.gamma = c->gamma;
    par.C = c->C;
    par.cache_size = 200;
    par.eps = 1e-2;
    par.shrinking = 1;
    /* Positives are rarer than negatives: weight them up to balance the hinge loss. */
    int npos = 0;
    for (int i = 0; i < t->n; i++)
        npos += t->y[i] > 0;
    int wl[2] = {1, -1};
    double wv[2] = {npos ? (double)(t->n - npos) / npos : 1.0, 1.0};
    if (wv[0] < 1)
        wv[0] = 1;
    par.nr_weight = 2;
    par.weight_label = wl;
    par.weight = wv;
    svm_set_print_string_function(quiet);
    struct svm_model *m = svm_train(&prob, &par);
    struct svm_model *out = NULL;
    if (m) {
        /* Copy the support vectors into one block the model owns (libsvm frees SV[0]). */
        size_t total = 0;
        for (int i = 0; i < m->l; i++) {
            const struct svm_node *p = m->SV[i];
            while (p->index != -1)
                p++;
            total += (size_t)(p - m->SV[i]) + 1;
        }
        struct svm_node *blk = malloc(sizeof(struct svm_node) * (total ? total : 1));
        if (blk) {
            size_t off = 0;
            for (int i = 0; i < m->l; i++) {
                const struct svm_node *p = m->SV[i];
                struct svm_node *q = blk + off;
                do {
                    blk[off++] = *p;
                } while ((p++)->index != -1);
                m->SV[i] = q;
            }
            m->free_sv = 1;
            /* The parameter's weight arrays are ours (stack); the model must not keep them. */
            m->param.nr_weight = 0;
            m->param.weight_label = NULL;
            m->param.weight = NULL;
            out = m;
        } else {
            svm_free_and_destroy_model(&m);
        }
    }
    free(pool);
    free(prob.x);
    return out;
}

/* Top box of each sample under model m: mean IoU, hit50 and (optional) per-sample scores. */
typedef struct {
    double loss, hit50, mean_iou, hit50_plain, hit50_clutter;
} val_result;

static val_result validate(const pimg_detect_model *m, const sample *v, int n, double *top_score, double *top_iou)
{
    val_result r = {0};
    int np = 0, nc = 0, hp = 0, hc = 0;
    for (int i = 0; i < n; i++) {
        int best = -1;
        double bs = -INFINITY;
        for (int k = 0; k < v[i].n; k++) {
            double s = pimg_detect_model_score(m, v[i].feat + (size_t)k * D);
            if (s > bs) {
                bs = s;
                best = k;
            }
        }
        double iou = best >= 0 ? v[i].iou[best] : 0;
        if (top_score)
            top_score[i] = bs;
        if (top_iou)
            top_iou[i] = iou;
        r.mean_iou += iou;
        r.hit50 += iou >= 0.5;
        if (v[i].plain) {
            np++;
            hp += iou >= 0.5;
        } else {
            nc++;
            hc += iou >= 0.5;
        }
    }
    r.mean_iou /= n ? n : 1;
    r.hit50 /= n ? n : 1;
    r.hit50_plain = np ? (double)hp / np : 0;
    r.hit50_clutter = nc ? (double)hc / nc : 0;
    r.loss = 1 - r.mean_iou;
    return r;
}

/* Platt (1999) sigmoid P(hit | s) = 1 / (1 + exp(A s + B)) by Newton's method with Lin et
 * al.'s (2007) regularised targets. */
static void platt(const double *s, const double *iou, int n, double *A, double *B)
{
    int np = 0;
    for (int i = 0; i < n; i++)
        np += iou[i] >= 0.5;
    double hi = (np + 1.0) / (np + 2.0), lo = 1.0 / (n - np + 2.0);
    double a = 0, b = log((n - np + 1.0) / (np + 1.0));
    for (int it = 0; it < 100; it++) {
        double g1 = 0, g2 = 0, h11 = 1e-12, h22 = 1e-12, h21 = 0;
        for (int i = 0; i < n; i++) {
            double t = iou[i] >= 0.5 ? hi : lo;
            double f = a * s[i] + b, p = 1 / (1 + exp(f));
            double d1 = t - p, d2 = p * (1 - p);
            g1 += s[i] * d1;
            g2 += d1;
            h11 += s[i] * s[i] * d2;
            h22 += d2;
            h21 += s[i] * d2;
        }
        double det = h11 * h22 - h21 * h21;
        if (fabs(det) < 1e-15)
            break;
        double da = -(h22 * g1 - h21 * g2) / det, db = -(-h21 * g1 + h11 * g2) / det;
        a += da;
        b += db;
        if (fabs(da) < 1e-7 && fabs(db) < 1e-7)
            break;
    }
    *A = a;
    *B = b;
}

static cJSON *val_json(const val_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "loss", round(r->loss * 1e4) / 1e4);
    cJSON_AddNumberToObject(o, "hit50", round(r->hit50 * 1e4) / 1e4);
    cJSON_AddNumberToObject(o, "mean_iou", round(r->mean_iou * 1e4) / 1e4);
    cJSON_AddNumberToObject(o, "hit50_plain", round(r->hit50_plain * 1e4) / 1e4);
    cJSON_AddNumberToObject(o, "hit50_cluttered", round(r->hit50_clutter * 1e4) / 1e4);
    return o;
}

static const char *cfg_name(const svm_cfg *c, char *buf, size_t n)
{
    if (c->kernel == LINEAR)
        snprintf(buf, n, "linear C=%g", c->C);
    else
        snprintf(buf, n, "rbf C=%g gamma=%.4g", c->C, c->gamma);
    return buf;
}

/* Initial set: every sample's positives, plus proposals with IoU >= POS_IOU, plus up to 6
 * random negatives (IoU < NEG_IOU) per sample. */
static int initial_set(sample *tr, int n, uint64_t seed, tset *t)
{
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < tr[i].npos; k++)
            if (tset_add(t, tr[i].pos + (size_t)k * D, 1))
                return -1;
        for (int k = 0; k < tr[i].n; k++)
            if (tr[i].iou[k] >= POS_IOU && tset_add(t, tr[i].feat + (size_t)k * D, 1))
                return -1;
    }
    uint64_t r = seed ^ 0xABCDEFULL;
    for (int i = 0; i < n; i++) {
        int added = 0;
        for (int tries = 0; tries < 40 && added < 6 && tr[i].n > 0; tries++) {
            int k = (int)(pimg_rand_uniform(&r) * tr[i].n) % tr[i].n;
            if (tr[i].used[k] || tr[i].iou[k] >= NEG_IOU)
                continue;
            tr[i].used[k] = 1;
            if (tset_add(t, tr[i].feat + (size_t)k * D, -1))
                return -1;
            added++;
        }
    }
    return 0;
}

/* The up-to-3 highest-scoring unused negatives of one photo that score above floor, best
 * first; unused slots of pick are -1. */
static void hardest_negatives(const pimg_detect_model *m, const sample *smp, double floor_, int pick[3])
{
    double ps[3] = {floor_, floor_, floor_};
    pick[0] = pick[1] = pick[2] = -1;
    for (int k = 0; k < smp->n; k++) {
        if (smp->used[k] || smp->iou[k] >= NEG_IOU)
            continue;
        double s = pimg_detect_model_score(m, smp->feat + (size_t)k * D);
        for (int j = 0; j < 3; j++)
            if (s > ps[j]) {
                for (int q = 2; q > j; q--) {
                    ps[q] = ps[q - 1];
                    pick[q] = pick[q - 1];
                }
                ps[j] = s;
                pick[j] = k;
                break;
            }
    }
}

/* Dalal-Triggs mining: per sample, the up-to-3 highest-scoring unused negatives that violate
 * the margin (score > -1). Returns how many were added, -1 on no memory. */
static int mine(const pimg_detect_model *m, sample *tr, int n, tset *t)
{
    int added = 0;
    for (int i = 0; i < n; i++) {
        int pick[3];
        hardest_negatives(m, &tr[i], -1, pick);
        for (int j = 0; j < 3; j++)
            if (pick[j] >= 0) {
                tr[i].used[pick[j]] = 1;
                if (tset_add(t, tr[i].feat + (size_t)pick[j] * D, -1))
                    return -1;
                added++;
            }
    }
    return added;
}

/* ---- ranking mode ------------------------------------------------------------------------------
 * The detector only ever compares boxes of ONE photo, so the scorer is trained on what it is used
 * for (Joachims' RankSVM): each training vector is the difference between a positive box and a
 * negative box of the same photo, with label +1 (or, for every other pair, the negated difference
 * with label -1 so libsvm sees two balanced classes). A linear model over these differences is a
 * plain linear scorer w.x; per-photo offsets (a busy photo scoring all its boxes high) cancel out
 * instead of being fought by the classifier. */

static int add_pair(tset *t, const float *pos, const float *neg, int *flip)
{
    float d[D];
    double sg = (*flip)++ % 2 ? -1.0 : 1.0;
    for (int j = 0; j < D; j++)
        d[j] = (float)(sg * (pos[j] - neg[j]));
    return tset_add(t, d, sg);
}

/* A positive of sample s: the k-th of its exact/jittered boxes and well-overlapping proposals. */
static const float *rank_pos(const sample *s, int k)
{
    int np = s->npos;
    if (k < np)
        return s->pos + (size_t)k * D;
    k -= np;
    for (int i = 0; i < s->n; i++)
        if (s->iou[i] >= POS_IOU && k-- == 0)
            return s->feat + (size_t)i * D;
    return s->pos;
}

static int rank_npos(const sample *s)
{
    int c = s->npos;
    for (int i = 0; i < s->n; i++)
        c += s->iou[i] >= POS_IOU;
    return c;
}

static int initial_set_rank(sample *tr, int n, uint64_t seed, tset *t)
{
    uint64_t r = seed ^ 0xABCDEFULL;
    int flip = 0;
    for (int i = 0; i < n; i++) {
        int np = rank_npos(&tr[i]), added = 0;
        if (!tr[i].npos)
            continue;
        for (int tries = 0; tries < 60 && added < 8 && tr[i].n > 0; tries++) {
            int k = (int)(pimg_rand_uniform(&r) * tr[i].n) % tr[i].n;
            if (tr[i].used[k] || tr[i].iou[k] >= NEG_IOU)
                continue;
            tr[i].used[k] = 1;
            int pk = (int)(pimg_rand_uniform(&r) * np) % np;
            if (add_pair(t, rank_pos(&tr[i], pk), tr[i].feat + (size_t)k * D, &flip))
                return -1;
            added++;
        }
    }
    return 0;
}

/* Mining for the ranker: per photo, the up-to-3 highest-scoring unused negatives that come within
 * the margin of the photo's best-scoring positive, each paired with that positive. */
static int mine_rank(const pimg_detect_model *m, sample *tr, int n, tset *t)
{
    int added = 0, flip = 0;
    for (int i = 0; i < n; i++) {
        int np = rank_npos(&tr[i]), bp = 0;
        if (!tr[i].npos)
            continue;
        double bps = -INFINITY;
        for (int k = 0; k < np; k++) {
            double s = pimg_detect_model_score(m, rank_pos(&tr[i], k));
            if (s > bps) {
                bps = s;
                bp = k;
            }
        }
        int pick[3];
        hardest_negatives(m, &tr[i], bps - 1, pick);
        for (int j = 0; j < 3; j++)
            if (pick[j] >= 0) {
                tr[i].used[pick[j]] = 1;
                if (add_pair(t, rank_pos(&tr[i], bp), tr[i].feat + (size_t)pick[j] * D, &flip))
                    return -1;
                added++;
            }
    }
    return added;
}

/* Sets libsvm's probA/probB to a Platt fit on the validation top boxes. */
static int calibrate(pimg_detect_model *m, const sample *val, int n)
{
    double *s = malloc(sizeof(double) * (n ? n : 1)), *iou = malloc(sizeof(double) * (n ? n : 1));
    if (!s || !iou) {
        free(s);
        free(iou);
        return -1;
    }
    validate(m, val, n, s, iou);
    double A, B;
    platt(s, iou, n, &A, &B);
    free(s);
    free(iou);
    struct svm_model *svm = (struct svm_model *)pimg_detect_model_svm(m);
    free(svm->probA);
    free(svm->probB);
    svm->probA = malloc(sizeof(double));
    svm->probB = malloc(sizeof(double));
    if (!svm->probA || !svm->probB)
        return -1;
    svm->probA[0] = A;
    svm->probB[0] = B;
    return 0;
}

/* ---- second-stage re-ranker ---------------------------------------------------------------- */

/* Indices of the K best proposals of v by m, best first; returns how many. */
static int top_k(const pimg_detect_model *m, const sample *v, int *top, double *sc)
{
    int nt = 0;
    for (int i = 0; i < v->n; i++) {
        double x = pimg_detect_model_score(m, v->feat + (size_t)i * D);
        int j = nt < PIMG_RERANK_K ? nt++ : PIMG_RERANK_K;
        if (j == PIMG_RERANK_K) {
            if (x <= sc[PIMG_RERANK_K - 1])
                continue;
            j = PIMG_RERANK_K - 1;
        }
        while (j > 0 && sc[j - 1] < x) {
            top[j] = top[j - 1];
            sc[j] = sc[j - 1];
            j--;
        }
        top[j] = i;
        sc[j] = x;
    }
    return nt;
}

/* Validation loss (1 - mean IoU of the chosen box) when rr re-orders m's top boxes. */
static double rerank_loss(const pimg_detect_model *m, const pimg_detect_model *rr, const sample *v, int n,
                          double *hit)
{
    double sum = 0;
    int h = 0;
    for (int i = 0; i < n; i++) {
        int top[PIMG_RERANK_K];
        double sc[PIMG_RERANK_K];
        int nt = top_k(m, &v[i], top, sc), best = -1;
        double bv = -INFINITY;
        for (int k = 0; k < nt; k++) {
            double x = sc[k] + (rr ? pimg_detect_model_score(rr, v[i].feat + (size_t)top[k] * D) : 0);
            if (x > bv) {
                bv = x;
                best = top[k];
            }
        }
        double iou = best >= 0 ? v[i].iou[best] : 0;
        sum += iou;
        h += iou >= 0.5;
    }
    if (hit)
        *hit = n ? (double)h / n : 0;
    return 1 - (n ? sum / n : 0);
}

/* Trains the re-ranker of m's top PIMG_RERANK_K boxes: a linear SVM on feature differences
 * (each feature scaled by its spread over the training proposals) between a top box that hits
 * (IoU >= 0.5) and a top box at least 0.2 IoU worse, in the same photo. C and the blend weight
 * with the scorer are chosen on validation; the re-ranker is kept only if it lowers the
 * validation loss. The scaling and the blend weight are folded into the support vectors, so
 * the file is a plain linear libsvm model scored on raw features. Returns NULL when not kept
 * (or on no memory: *nomem set). */
static pimg_detect_model *train_rerank(const pimg_detect_model *m, const sample *tr, int ntr, const sample *va,
                                       int nva, cJSON *rep, const pimg_detect_train_opts *o, int *nomem)
{
    *nomem = 0;
    double *mean = calloc(D, sizeof(double)), *spread = calloc(D, sizeof(double));
    tset t = {0};
    pimg_detect_model *keep = NULL;
    if (!mean || !spread)
        goto fail;
    long cnt = 0;
    for (int i = 0; i < ntr; i++)
        for (int k = 0; k < tr[i].n; k++, cnt++)
            for (int j = 0; j < D; j++) {
                double x = tr[i].feat[((size_t)k) * D + j];
                mean[j] += x;
                spread[j] += x * x;
            }
    for (int j = 0; j < D; j++) {
        mean[j] /= cnt ? cnt : 1;
        spread[j] = sqrt(fmax(spread[j] / (cnt ? cnt : 1) - mean[j] * mean[j], 0)) + 1e-6; /* sum of squares -> standard deviation */
    }
    int flip = 0;
    for (int i = 0; i < ntr; i++) {
        int top[PIMG_RERANK_K];
        double sc[PIMG_RERANK_K];
        int nt = top_k(m, &tr[i], top, sc);
        for (int a = 0; a < nt; a++) {
            if (tr[i].iou[top[a]] < 0.5)
                continue;
            for (int b = 0; b < nt; b++) {
                if (tr[i].iou[top[a]] - tr[i].iou[top[b]] < 0.2)
                    continue;
                float d[D];
                double sg = flip++ % 2 ? -1.0 : 1.0;
                const float *pa = tr[i].feat + (size_t)top[a] * D, *pb = tr[i].feat + (size_t)top[b] * D;
                for (int j = 0; j < D; j++)
                    d[j] = (float)(sg * (pa[j] - pb[j]) / spread[j]);
                if (tset_add(&t, d, sg))
                    goto fail;
            }
        }
    }
    double base_hit, base = rerank_loss(m, NULL, va, nva, &base_hit);
    cJSON *rj = cJSON_AddObjectToObject(rep, "rerank");
    cJSON_AddNumberToObject(rj, "k", PIMG_RERANK_K);
    cJSON_AddNumberToObject(rj, "pairs", t.n);
    cJSON_AddNumberToObject(rj, "val_loss_without", round(base * 1e4) / 1e4);
    cJSON *search = cJSON_AddArrayToObject(rj, "search");
    pimg_progress_say(o->progress, o->progress_ctx, "re-ranker: %d pairs from the top %d boxes; val loss without %.4f hit50 %.3f", t.n,
        PIMG_RERANK_K, base, base_hit);
    if (t.n < 20)
        goto done;
    static const double Cs[] = {0.01, 0.1, 1}, blends[] = {0.5, 1, 2};
    double best_loss = base - 1e-4;
    for (int c = 0; c < 3; c++)
        for (int b = 0; b < 3; b++) {
            svm_cfg cfg = {LINEAR, Cs[c], 0};
            struct svm_model *svm = fit(&t, &cfg);
            if (!svm)
                goto fail;
            /* fold the feature scaling and the blend weight (score = scorer + rr / blend) */
            for (int i = 0; i < svm->l; i++) {
                svm->sv_coef[0][i] /= blends[b];
                for (struct svm_node *p = svm->SV[i]; p->index != -1; p++)
                    p->value /= spread[p->index - 1];
            }
            svm->rho[0] /= blends[b];
            pimg_detect_model *rr = pimg_detect_model_wrap(svm);
            if (!rr)
                goto fail;
            double hit, loss = rerank_loss(m, rr, va, nva, &hit);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "C", Cs[c]);
            cJSON_AddNumberToObject(e, "blend", blends[b]);
            cJSON_AddNumberToObject(e, "val_loss", round(loss * 1e4) / 1e4);
            cJSON_AddNumberToObject(e, "val_hit50", round(hit * 1e4) / 1e4);
            cJSON_AddItemToArray(search, e);
            pimg_progress_say(o->progress, o->progress_ctx, "re-ranker C=%g blend %g: val loss %.4f hit50 %.3f", Cs[c], blends[b], loss, hit);
            if (loss < best_loss) {
                best_loss = loss;
                pimg_detect_model_free(keep);
                keep = rr;
                cJSON_DeleteItemFromObject(rj, "chosen");
                cJSON *ch = cJSON_AddObjectToObject(rj, "chosen");
                cJSON_AddNumberToObject(ch, "C", Cs[c]);
                cJSON_AddNumberToObject(ch, "blend", blends[b]);
                cJSON_AddNumberToObject(ch, "val_loss", round(loss * 1e4) / 1e4);
                cJSON_AddNumberToObject(ch, "val_hit50", round(hit * 1e4) / 1e4);
            } else {
                pimg_detect_model_free(rr);
            }
        }
done:
    cJSON_AddBoolToObject(rj, "kept", keep != NULL);
    free(mean);
    free(spread);
    free(t.x);
    free(t.y);
    return keep;
fail:
    *nomem = 1;
    pimg_detect_model_free(keep);
    free(mean);
    free(spread);
    free(t.x);
    free(t.y);
    return NULL;
}

/* Real photos with hand-checked boxes (CSV: file,x0,y0,x1,y1[,kind], files under
 * data_dir/train, boxes in pixels of the file as stored): analysed at 1024 px like `pimg
 * analyze`, split 70/30 by file with the seed, and appended to the training and validation
 * samples. */
static pimg_status add_real(const pimg_detect_train_opts *o, sample **tr, int *ntr, sample **va, int *nva,
                            int *nreal_tr, int *nreal_va, pimg_error *err)
{
    FILE *fp = fopen(o->labels_csv, "r");
    if (!fp)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot open", o->labels_csv);
    char line[4096], *f[16];
    int col[6] = {-1, -1, -1, -1, -1, -1};
    static const char *const want[6] = {"file", "x0", "y0", "x1", "y1", "kind"};
    pimg_status st = PIMG_OK;
    if (fgets(line, sizeof line, fp))
        pimg_csv_columns(f, pimg_csv_split(line, f, 16), want, 6, col);
    if (col[0] < 0 || col[1] < 0 || col[2] < 0 || col[3] < 0 || col[4] < 0) {
        fclose(fp);
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: needs file,x0,y0,x1,y1", o->labels_csv);
    }
    uint64_t r = o->seed * 31 + 5;
    while (fgets(line, sizeof line, fp)) {
        int nf = pimg_csv_split(line, f, 16);
        if (nf <= col[4] || !f[col[0]][0] || f[col[0]][0] == '#')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/train/%s", o->data_dir, f[col[0]]);
        pimg_image *img = NULL;
        pimg_tensor *t = NULL;
        if ((st = pimg_image_load_file(path, NULL, &img, err)) ||
            (st = pimg_image_tensor(img, PIMG_ANALYSIS_SIDE, &t, err))) {
            pimg_image_free(img);
            break;
        }
        double sc = (double)t->w / pimg_image_input_width(img);
        pimg_image_free(img);
        double box[4];
        for (int k = 0; k < 4; k++)
            box[k] = atof(f[col[k + 1]]) * sc;
        int plain = col[5] >= 0 && nf > col[5] && !strcmp(f[col[5]], "plain");
        int to_val = pimg_rand_uniform(&r) < 0.3;
        sample **v = to_val ? va : tr;
        int *n = to_val ? nva : ntr;
        sample *nv = realloc(*v, sizeof(sample) * (*n + 1));
        if (!nv) {
            pimg_tensor_free(t);
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            break;
        }
        *v = nv;
        st = sample_make(t, box, plain, &r, &nv[*n], err);
        pimg_tensor_free(t);
        if (st)
            break;
        (*n)++;
        (*(to_val ? nreal_va : nreal_tr))++;
    }
    fclose(fp);
    if (!st)
        pimg_progress_say(o->progress, o->progress_ctx, "real labelled photos: %d train, %d val", *nreal_tr, *nreal_va);
    return st;
}

pimg_status pimg_detect_train(const pimg_detect_train_opts *o, pimg_detect_model **model, cJSON **report,
                              pimg_error *err)
{
    split_set ss;
    sample *tr = NULL, *va = NULL;
    int ntr = o->n_train, nva = o->n_val, nreal_tr = 0, nreal_va = 0;
    tset t = {0};
    pimg_detect_model *best = NULL;
    cJSON *rep = NULL;
    double t0 = pimg_clock_ms();
    pimg_status st = split_load(o, &ss, err);
    if (st)
        return st;
    pimg_progress_say(o->progress, o->progress_ctx, "data: %d objects (train %d / val %d / test %d; %d excluded), %d backgrounds (%d / %d / %d)",
        pimg_composite_n_objects(ss.src), ss.nobj[0], ss.nobj[1], ss.nobj[2], ss.n_excluded, pimg_composite_n_backgrounds(ss.src),
        ss.nbg[0], ss.nbg[1], ss.nbg[2]);
    if ((st = make_samples(&ss, o, SPLIT_TRAIN, ntr, &tr, err)))
        goto out;
    if ((st = make_samples(&ss, o, SPLIT_VAL, nva, &va, err)))
        goto out;
    if (o->labels_csv && (st = add_real(o, &tr, &ntr, &va, &nva, &nreal_tr, &nreal_va, err)))
        goto out;
    pimg_progress_say(o->progress, o->progress_ctx, "features ready in %.1f s", (pimg_clock_ms() - t0) / 1e3);
    {
        /* Proposal recall bounds what any scorer can reach: report it. */
        int r50 = 0, r70 = 0;
        double np_ = 0;
        for (int i = 0; i < nva; i++) {
            double mx = 0;
            for (int k = 0; k < va[i].n; k++)
                mx = fmax(mx, va[i].iou[k]);
            r50 += mx >= 0.5;
            r70 += mx >= 0.7;
            np_ += va[i].n;
        }
        pimg_progress_say(o->progress, o->progress_ctx, "val proposal recall: iou>=0.5 %.3f, iou>=0.7 %.3f, %.0f proposals per image", (double)r50 / nva,
            (double)r70 / nva, np_ / nva);
    }
    /* rank 2 (hybrid): absolute boxes and within-photo differences in one training set */
    if ((o->rank != 1 && initial_set(tr, ntr, draw_seed(o, SPLIT_TRAIN), &t)) ||
        (o->rank && initial_set_rank(tr, ntr, draw_seed(o, SPLIT_TRAIN), &t)))
        goto nomem;
    int npos = 0;
    for (int i = 0; i < t.n; i++)
        npos += t.y[i] > 0;
    pimg_progress_say(o->progress, o->progress_ctx, "initial set: %d positives, %d negatives", npos, t.n - npos);

    /* Median-heuristic gamma: RBF widths relative to the typical squared feature distance. */
    double d2 = 0;
    int pairs = 0;
    uint64_t r = o->seed;
    for (int k = 0; k < 400 && t.n > 1; k++) {
        int a = (int)(pimg_rand_uniform(&r) * t.n) % t.n, b = (int)(pimg_rand_uniform(&r) * t.n) % t.n;
        double s = 0;
        for (int j = 0; j < D; j++) {
            double d = t.x[(size_t)a * D + j] - t.x[(size_t)b * D + j];
            s += d * d;
        }
        d2 += s;
        pairs++;
    }
    d2 = pairs ? d2 / pairs : 1;
    svm_cfg grid[] = {
        {LINEAR, 0.1, 0}, {LINEAR, 1, 0}, {RBF, 1, 1.0 / d2},
    };
    int ng = sizeof grid / sizeof *grid;
    if (!o->rbf && !o->rank)
        ng--; /* the RBF entry is last */
    if (o->rank) {
        /* A kernel over box differences is not a box score: a ranker stays linear. */
        grid[2] = (svm_cfg){LINEAR, 0.01, 0};
    }

    rep = cJSON_CreateObject();
    cJSON *search = cJSON_CreateArray(), *rounds = cJSON_CreateArray();
    if (!rep || !search || !rounds) {
        cJSON_Delete(search);
        cJSON_Delete(rounds);
        goto nomem;
    }
    cJSON_AddItemToObject(rep, "search", search);
    cJSON_AddItemToObject(rep, "rounds", rounds);
    int bi = -1;
    val_result bv = {.loss = INFINITY};
    for (int g = 0; g < ng; g++) {
        double ts = pimg_clock_ms();
        struct svm_model *svm = fit(&t, &grid[g]);
        pimg_detect_model *m = svm ? pimg_detect_model_wrap(svm) : NULL;
        if (!m)
            goto nomem;
        val_result v = validate(m, va, nva, NULL, NULL);
        char nb[64];
        pimg_progress_say(o->progress, o->progress_ctx, "search %-24s val loss %.4f hit50 %.3f (%d SV, %.1f s)", cfg_name(&grid[g], nb, sizeof nb), v.loss,
            v.hit50, svm_get_nr_sv(pimg_detect_model_svm(m)), (pimg_clock_ms() - ts) / 1e3);
        cJSON *e = val_json(&v);
        cJSON_AddStringToObject(e, "config", nb);
        cJSON_AddNumberToObject(e, "support_vectors", svm_get_nr_sv(pimg_detect_model_svm(m)));
        cJSON_AddItemToArray(search, e);
        /* Prefer the linear model unless RBF is clearly better: after mining an RBF model has
         * thousands of support vectors and blows the 80 ms detection budget. */
        double penalty = grid[g].kernel == RBF ? 0.03 : 0;
        if (v.loss + penalty < bv.loss) {
            bv = v;
            bi = g;
            bv.loss += penalty;
            pimg_detect_model_free(best);
            best = m;
        } else {
            pimg_detect_model_free(m);
        }
    }
    bv.loss = validate(best, va, nva, NULL, NULL).loss;
    char nb[64];
    pimg_progress_say(o->progress, o->progress_ctx, "chosen: %s", cfg_name(&grid[bi], nb, sizeof nb));
    cJSON_AddStringToObject(rep, "chosen", nb);
    cJSON *r0 = val_json(&bv);
    cJSON_AddNumberToObject(r0, "round", 0);
    cJSON_AddNumberToObject(r0, "train_size", t.n);
    cJSON_AddItemToArray(rounds, r0);
    const char *stop = "max_rounds";
    /* The rounds are bounded by count, not by the clock: a wall-clock rule made the model
     * depend on the machine's load (a busy machine stopped before the first round), so the
     * same command did not give the same model. Three rounds take ~3 min on 2 idle cores. */
    for (int round = 1; round <= o->max_rounds; round++) {
        int added = o->rank == 1 ? mine_rank(best, tr, ntr, &t) : mine(best, tr, ntr, &t);
        if (o->rank == 2 && added >= 0) {
            int more = mine_rank(best, tr, ntr, &t);
            added = more < 0 ? -1 : added + more;
        }
        if (added < 0)
            goto nomem;
        if (added == 0) {
            stop = "no_new_hard_negatives";
            break;
        }
        double ts = pimg_clock_ms();
        struct svm_model *svm = fit(&t, &grid[bi]);
        pimg_detect_model *m = svm ? pimg_detect_model_wrap(svm) : NULL;
        if (!m)
            goto nomem;
        val_result v = validate(m, va, nva, NULL, NULL);
        pimg_progress_say(o->progress, o->progress_ctx, "round %d: +%d hard negatives (set %d), val loss %.4f hit50 %.3f (%.1f s)", round, added, t.n, v.loss,
            v.hit50, (pimg_clock_ms() - ts) / 1e3);
        cJSON *e = val_json(&v);
        cJSON_AddNumberToObject(e, "round", round);
        cJSON_AddNumberToObject(e, "hard_negatives_added", added);
        cJSON_AddNumberToObject(e, "train_size", t.n);
        cJSON_AddItemToArray(rounds, e);
        if (v.loss < bv.loss - 1e-4) {
            bv = v;
            pimg_detect_model_free(best);
            best = m;
        } else {
            pimg_detect_model_free(m);
            stop = "validation_loss_stopped_improving";
            break;
        }
    }
    cJSON_AddStringToObject(rep, "stopped", stop);
    if (calibrate(best, va, nva))
        goto nomem;
    if (o->rerank) {
        int nomem = 0;
        pimg_detect_model *rr = train_rerank(best, tr, ntr, va, nva, rep, o, &nomem);
        if (nomem)
            goto nomem;
        pimg_detect_model_set_rerank(best, rr);
    }
    cJSON_AddItemToObject(rep, "validation", val_json(&bv));
    pimg_progress_say(o->progress, o->progress_ctx, "training done in %.1f s (%s)", (pimg_clock_ms() - t0) / 1e3, stop);

    cJSON *data = cJSON_AddObjectToObject(rep, "data");
    cJSON_AddStringToObject(data, "dir", o->data_dir);
    cJSON_AddStringToObject(data, "kind", "composites of objects/ cut-outs on synthetic plain backgrounds (35%) "
                                          "and on crops of train/ photos (65%)");
    cJSON_AddNumberToObject(data, "objects", pimg_composite_n_objects(ss.src));
    if (o->n_objects_dirs > 0) {
        if (o->extra_share > 0)
            cJSON_AddNumberToObject(data, "more_objects_share", o->extra_share);
        cJSON *od = cJSON_AddArrayToObject(data, "more_objects");
        for (int i = 0; i < o->n_objects_dirs; i++)
            cJSON_AddItemToArray(od, cJSON_CreateString(o->objects_dirs[i]));
    }
    if (o->exclude_objects) {
        cJSON_AddStringToObject(data, "exclude_objects", o->exclude_objects);
        cJSON_AddNumberToObject(data, "excluded_objects", ss.n_excluded);
    }
    cJSON_AddNumberToObject(data, "backgrounds", pimg_composite_n_backgrounds(ss.src));
    cJSON_AddNumberToObject(data, "composite_side", o->side);
    if (o->side_min > 0 && o->side_min < o->side)
        cJSON_AddNumberToObject(data, "composite_side_min", o->side_min);
    cJSON *cf = cJSON_AddArrayToObject(data, "cluttered_fill");
    cJSON_AddItemToArray(cf, cJSON_CreateNumber(o->clutter_fill[0]));
    cJSON_AddItemToArray(cf, cJSON_CreateNumber(o->clutter_fill[1]));
    if (o->labels_csv) {
        cJSON *real = cJSON_AddObjectToObject(data, "real_labelled");
        cJSON_AddStringToObject(real, "labels", o->labels_csv);
        cJSON_AddNumberToObject(real, "train", nreal_tr);
        cJSON_AddNumberToObject(real, "val", nreal_va);
    }
    cJSON *split = cJSON_AddObjectToObject(rep, "split");
    cJSON_AddNumberToObject(split, "seed", (double)o->seed);
    cJSON_AddStringToObject(split, "by", "object and background (70/15/15), before compositing");
    static const char *const names[3] = {"train", "val", "test"};
    int ncomp[3] = {o->n_train, o->n_val, o->n_test};
    for (int k = 0; k < 3; k++) {
        cJSON *e = cJSON_AddObjectToObject(split, names[k]);
        cJSON_AddNumberToObject(e, "objects", ss.nobj[k]);
        cJSON_AddNumberToObject(e, "backgrounds", ss.nbg[k]);
        cJSON_AddNumberToObject(e, "composites", ncomp[k]);
    }
    cJSON *feat = cJSON_AddObjectToObject(rep, "model");
    cJSON_AddStringToObject(feat, "features", "geometry, inside/ring/outside contrast of 4 saliency maps, colour "
                                              "histogram chi2, VLFeat UoCTTI HOG 3x3x31 of the grey crop, 6x6 saliency thumbnail");
    cJSON_AddNumberToObject(feat, "dim", D);
    cJSON_AddNumberToObject(feat, "support_vectors", svm_get_nr_sv(pimg_detect_model_svm(best)));
    cJSON_AddNumberToObject(feat, "train_size", t.n);
    cJSON_AddNumberToObject(rep, "train_seconds", round((pimg_clock_ms() - t0) / 100) / 10);
    *model = best;
    best = NULL;
    *report = rep;
    rep = NULL;
    goto out;
nomem:
    st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory (training)");
out:
    if (tr)
        for (int i = 0; i < ntr; i++)
            sample_free(&tr[i]);
    if (va)
        for (int i = 0; i < nva; i++)
            sample_free(&va[i]);
    free(tr);
    free(va);
    free(t.x);
    free(t.y);
    pimg_detect_model_free(best);
    cJSON_Delete(rep);
    split_free(&ss);
    return st;
}

/* ---- evaluation --------------------------------------------------------------------------- */

static double mask_iou(const pimg_tensor *a, const pimg_tensor *b)
{
    double in = 0, un = 0;
    for (long i = 0; i < (long)a->w * a->h; i++) {
        int x = a->data[i] >= 0.5f, y = b->data[i] >= 0.5f;
        in += x && y;
        un += x || y;
    }
    return un > 0 ? in / un : 0;
}

pimg_status pimg_detect_eval_composites(const pimg_detect_model *m, const pimg_detect_train_opts *o,
                                        cJSON **metrics, pimg_error *err)
{
    split_set ss;
    pimg_status st = split_load(o, &ss, err);
    if (st)
        return st;
    double iou_sum = 0, miou_sum = 0, ms = 0, ms_max = 0;
    /* mask IoU per kind (0 plain, 1 cluttered): seeded by the detected box, and by the true
     * box, which isolates the mask's quality from the detector's */
    double mdet[2] = {0, 0}, mtrue[2] = {0, 0}, mask_ms = 0;
    int hits = 0, np = 0, nc = 0, hp = 0, hc = 0;
    for (int i = 0; i < o->n_test; i++) {
        pimg_tensor *img = NULL, *gm = NULL;
        double box[4];
        int plain;
        if ((st = split_composite(&ss, o, SPLIT_TEST, i, &img, &gm, box, &plain, err)))
            break;
        /* The box and its time as /analyze finds them (colour-histogram mask); the mask as an
         * output that draws it gets it (GrabCut, whose mask also refines the box there). */
        pimg_detection d, dm;
        double t0 = pimg_clock_ms();
        st = pimg_detect_run(m, img, 0, &d, err);
        double dt = pimg_clock_ms() - t0;
        ms += dt;
        ms_max = fmax(ms_max, dt);
        double iou = !st && d.found ? pimg_box_iou(d.box, box) : 0;
        if (!st)
            pimg_detection_clear(&d);
        if (!st && !(st = pimg_detect_run(m, img, 1, &dm, err))) {
            iou_sum += iou;
            hits += iou >= 0.5;
            if (plain) {
                np++;
                hp += iou >= 0.5;
            } else {
                nc++;
                hc += iou >= 0.5;
            }
            if (dm.mask) {
                double mi = mask_iou(dm.mask, gm);
                miou_sum += mi;
                mdet[!plain] += mi;
            }
            pimg_detection_clear(&dm);
            /* the same mask seeded by the exact box, with the saliency blend map as its prior
             * as in pimg_detect_run */
            pimg_scene *sc = NULL;
            pimg_tensor *tm = NULL;
            if (!(st = pimg_scene_make(img, PIMG_SAL_SIDE, &sc, err))) {
                pimg_tensor prior = {sc->w, sc->h, 1, sc->map[PIMG_SAL_BLEND]};
                double t1 = pimg_clock_ms();
                st = pimg_mask_from_box(img, box, &prior, 1, &tm, NULL, NULL, err);
                mask_ms += pimg_clock_ms() - t1;
                if (!st)
                    mtrue[!plain] += mask_iou(tm, gm);
            }
            pimg_tensor_free(tm);
            pimg_scene_free(sc);
        }
        pimg_tensor_free(img);
        pimg_tensor_free(gm);
        if (st)
            break;
    }
    split_free(&ss);
    if (st)
        return st;
    int n = o->n_test ? o->n_test : 1;
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(j, "set", "test composites (held-out objects and backgrounds)");
    cJSON_AddNumberToObject(j, "n", o->n_test);
    cJSON_AddNumberToObject(j, "hit50", round(1e4 * hits / n) / 1e4);
    cJSON_AddNumberToObject(j, "mean_iou", round(1e4 * iou_sum / n) / 1e4);
    cJSON_AddNumberToObject(j, "hit50_plain", np ? round(1e4 * hp / np) / 1e4 : 0);
    cJSON_AddNumberToObject(j, "hit50_cluttered", nc ? round(1e4 * hc / nc) / 1e4 : 0);
    cJSON_AddNumberToObject(j, "n_plain", np);
    cJSON_AddNumberToObject(j, "n_cluttered", nc);
    cJSON_AddNumberToObject(j, "mask_iou", round(1e4 * miou_sum / n) / 1e4);
    cJSON_AddNumberToObject(j, "mask_iou_plain", np ? round(1e4 * mdet[0] / np) / 1e4 : 0);
    cJSON_AddNumberToObject(j, "mask_iou_cluttered", nc ? round(1e4 * mdet[1] / nc) / 1e4 : 0);
    cJSON_AddNumberToObject(j, "mask_iou_true_box", round(1e4 * (mtrue[0] + mtrue[1]) / n) / 1e4);
    cJSON_AddNumberToObject(j, "mask_iou_true_box_plain", np ? round(1e4 * mtrue[0] / np) / 1e4 : 0);
    cJSON_AddNumberToObject(j, "mask_iou_true_box_cluttered", nc ? round(1e4 * mtrue[1] / nc) / 1e4 : 0);
    cJSON_AddNumberToObject(j, "mask_ms_true_box", round(100 * mask_ms / n) / 100);
    cJSON_AddNumberToObject(j, "ms_per_image", round(100 * ms / n) / 100);
    cJSON_AddNumberToObject(j, "ms_max", round(100 * ms_max) / 100);
    *metrics = j;
    return PIMG_OK;
}

pimg_status pimg_detect_eval_folder(const pimg_detect_model *m, const char *dir, cJSON **metrics, pimg_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/labels.csv", dir);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot open", path);
    char line[8192], *f[32];
    int col[7] = {-1, -1, -1, -1, -1, -1, -1}; /* file x0 y0 x1 y1 kind rotation */
    static const char *const want[7] = {"file", "x0", "y0", "x1", "y1", "kind", "rotation"};
    if (!fgets(line, sizeof line, fp)) {
        fclose(fp);
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: empty", path);
    }
    pimg_csv_columns(f, pimg_csv_split(line, f, 32), want, 7, col);
    if (col[0] < 0 || col[1] < 0 || col[2] < 0 || col[3] < 0 || col[4] < 0) {
        fclose(fp);
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: needs file,x0,y0,x1,y1 columns", path);
    }
    int n = 0, hits = 0, np = 0, hp = 0, nc = 0, hc = 0;
    double iou_sum = 0, ms = 0;
    pimg_status st = PIMG_OK;
    while (fgets(line, sizeof line, fp)) {
        int nf = pimg_csv_split(line, f, 32);
        int ok = nf > col[4] && f[col[0]][0] && f[col[0]][0] != '#';
        for (int k = 1; ok && k < 5; k++)
            ok = f[col[k]][0] != '\0';
        if (!ok || (col[6] >= 0 && nf > col[6] && atoi(f[col[6]]) % 360))
            continue;
        double gt[4];
        for (int k = 0; k < 4; k++)
            gt[k] = atof(f[col[k + 1]]);
        int plain = col[5] >= 0 && nf > col[5] && !strcmp(f[col[5]], "plain");
        snprintf(path, sizeof path, "%s/%s", dir, f[col[0]]);
        pimg_image *img = NULL;
        pimg_tensor *t = NULL;
        if ((st = pimg_image_load_file(path, NULL, &img, err)) ||
            (st = pimg_image_tensor(img, PIMG_ANALYSIS_SIDE, &t, err))) {
            pimg_image_free(img);
            break;
        }
        double sc = (double)pimg_image_input_width(img) / t->w;
        pimg_image_free(img);
        pimg_detection d;
        double t0 = pimg_clock_ms();
        st = pimg_detect_run(m, t, 0, &d, err);
        ms += pimg_clock_ms() - t0;
        pimg_tensor_free(t);
        if (st)
            break;
        double b[4] = {d.box[0] * sc, d.box[1] * sc, d.box[2] * sc, d.box[3] * sc};
        double iou = d.found ? pimg_box_iou(b, gt) : 0;
        pimg_detection_clear(&d);
        n++;
        iou_sum += iou;
        hits += iou >= 0.5;
        if (plain) {
            np++;
            hp += iou >= 0.5;
        } else {
            nc++;
            hc += iou >= 0.5;
        }
    }
    fclose(fp);
    if (st)
        return st;
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(j, "set", dir);
    cJSON_AddNumberToObject(j, "n", n);
    cJSON_AddNumberToObject(j, "hit50", n ? round(1e4 * hits / n) / 1e4 : 0);
    cJSON_AddNumberToObject(j, "mean_iou", n ? round(1e4 * iou_sum / n) / 1e4 : 0);
    cJSON_AddNumberToObject(j, "hit50_plain", np ? round(1e4 * hp / np) / 1e4 : 0);
    cJSON_AddNumberToObject(j, "hit50_cluttered", nc ? round(1e4 * hc / nc) / 1e4 : 0);
    cJSON_AddNumberToObject(j, "n_plain", np);
    cJSON_AddNumberToObject(j, "n_cluttered", nc);
    cJSON_AddNumberToObject(j, "ms_per_image", n ? round(100 * ms / n) / 100 : 0);
    *metrics = j;
    return PIMG_OK;
}

/* Writes a 3-channel 0..1 tensor as a JPEG (quality 92). */
static pimg_status write_jpeg(const pimg_tensor *t, const char *path, pimg_error *err)
{
    size_t n = (size_t)t->w * t->h * 3;
    unsigned char *px = malloc(n);
    if (!px)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        float v = t->data[i] * 255.0f + 0.5f;
        px[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    VipsImage *im = vips_image_new_from_memory(px, n, t->w, t->h, 3, VIPS_FORMAT_UCHAR);
    pimg_status st = PIMG_OK;
    if (!im || vips_jpegsave(im, path, "Q", 92, NULL))
        st = pimg_error_vips(err, PIMG_ERR_IO, path);
    if (im)
        g_object_unref(im);
    free(px);
    return st;
}

pimg_status pimg_detect_dump_composites(const pimg_detect_train_opts *o, const char *split, int n,
                                        const char *out_dir, pimg_error *err)
{
    int sp = !strcmp(split, "train") ? SPLIT_TRAIN : !strcmp(split, "val") ? SPLIT_VAL : SPLIT_TEST;
    split_set ss;
    pimg_status st = split_load(o, &ss, err);
    if (st)
        return st;
    mkdir(out_dir, 0755);
    char path[4096];
    snprintf(path, sizeof path, "%s/labels.csv", out_dir);
    FILE *fp = fopen(path, "w");
    if (!fp) {
        split_free(&ss);
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot write", path);
    }
    fprintf(fp, "file,up,kind,rotation,x0,y0,x1,y1,license,source,description\n");
    for (int i = 0; i < n && !st; i++) {
        pimg_tensor *img = NULL;
        double box[4];
        int plain;
        if ((st = split_composite(&ss, o, sp, i, &img, NULL, box, &plain, err)))
            break;
        snprintf(path, sizeof path, "%s/%s_%04d.jpg", out_dir, split, i);
        st = write_jpeg(img, path, err);
        pimg_tensor_free(img);
        fprintf(fp, "%s_%04d.jpg,1,%s,0,%d,%d,%d,%d,see objects.csv,pimg composite,synthetic\n", split, i,
                plain ? "plain" : "cluttered", (int)box[0], (int)box[1], (int)box[2], (int)box[3]);
    }
    fclose(fp);
    split_free(&ss);
    return st;
}
