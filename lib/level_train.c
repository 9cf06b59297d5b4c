/* level_train.c — the tilted training set, the pairwise linear ranker of candidate angles, the
 * abstention rule and the held-out scores (see level_train.h for the recipe).
 *
 * Each tilted copy keeps only its orientation histograms (pimg_level_hists, ~23 KB), so a few
 * thousand copies fit in memory; candidate features are recomputed from them when needed. */
#include "level_train.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#include "clock.h"
#include "dataset.h"
#include "image.h"
#include "level_internal.h"

void pimg_level_train_opts_default(pimg_level_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->test_frac = 0.25;
    o->copies = 16;
    o->max_untilted_mae = 0.2;
}


/* ---- tilted copies -------------------------------------------------------------------------- */

/* The photo turned counter-clockwise by ccw degrees (what levelling must undo with a clockwise
 * turn of ccw), cut to the largest inner rectangle less a pixel each side, JPEG q92 and decoded
 * again the way `pimg analyze` decodes an upload — the evaluation's recipe. */
static pimg_status tilt_copy(const pimg_tensor *up, double ccw, pimg_tensor **out, pimg_error *err)
{
    pimg_tensor *rt = ccw != 0.0 ? pimg_tensor_rotate(up, -ccw) : pimg_tensor_copy(up);
    if (!rt)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    int iw, ih;
    pimg_level_inner_rect(rt->w, rt->h, ccw, &iw, &ih);
    iw = iw > 4 ? iw - 2 : iw;
    ih = ih > 4 ? ih - 2 : ih;
    int x0 = (rt->w - iw) / 2, y0 = (rt->h - ih) / 2;
    size_t n = (size_t)iw * ih * 3;
    unsigned char *px = malloc(n);
    if (!px) {
        pimg_tensor_free(rt);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    for (int y = 0; y < ih; y++) {
        const float *s = pimg_tensor_at(rt, x0, y0 + y);
        unsigned char *d = px + (size_t)y * iw * 3;
        for (int i = 0; i < iw * 3; i++) {
            float v = s[i] * 255.0f + 0.5f;
            d[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    pimg_tensor_free(rt);
    VipsImage *im = vips_image_new_from_memory(px, n, iw, ih, 3, VIPS_FORMAT_UCHAR);
    void *jpg = NULL;
    size_t len = 0;
    pimg_status st = PIMG_OK;
    if (!im || vips_jpegsave_buffer(im, &jpg, &len, "Q", 92, NULL))
        st = pimg_error_vips(err, PIMG_ERR_INTERNAL, "tilted copy: jpeg encode");
    if (im)
        g_object_unref(im);
    free(px);
    pimg_image *img = NULL;
    if (!st)
        st = pimg_image_load_buffer(jpg, len, NULL, &img, err);
    if (!st)
        st = pimg_image_tensor(img, PIMG_ANALYSIS_SIDE, out, err);
    pimg_image_free(img);
    g_free(jpg);
    return st;
}

/* ---- the example set ---------------------------------------------------------------------- */

typedef struct {
    int photo;    /* index into the photo list: the group */
    int test;     /* photo held out */
    double angle; /* the right answer: clockwise degrees that level the copy */
    pimg_level_hists h;
} example;

typedef struct {
    example *v;
    int n;
} example_set;

static pimg_status build_set(const pimg_level_train_opts *o, pimg_photo_list *l, example_set *s, pimg_error *err)
{
    s->v = calloc((size_t)l->n * o->copies, sizeof *s->v);
    s->n = 0;
    if (!s->v)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    double t0 = pimg_clock_s();
    for (int p = 0; p < l->n; p++) {
        pimg_tensor *up = NULL;
        pimg_error e = {0};
        if (pimg_photo_load(&l->v[p], PIMG_ANALYSIS_SIDE, &up, &e)) {
            pimg_progress_say(o->progress, o->progress_ud, "skipping %s: %s", l->v[p].path, e.msg);
            continue;
        }
        for (int k = 0; k < o->copies; k++) {
            pimg_rng r;
            pimg_rng_seed(&r, o->seed, (unsigned long long)p + 1, (unsigned long long)k + 1);
            /* As the evaluation: a quarter untilted (every fourth copy, so each photo has
             * some), the rest uniform in ±15°, rounded to 0.01°. */
            double ang = k % 4 == 0 ? 0.0 : round((pimg_rng_u(&r) * 30.0 - 15.0) * 100.0) / 100.0;
            pimg_tensor *tc = NULL;
            pimg_status st = tilt_copy(up, ang, &tc, err);
            if (!st) {
                example *x = &s->v[s->n];
                x->photo = p;
                x->test = l->v[p].test;
                x->angle = ang;
                st = pimg_level_hists_compute(tc, &x->h, err);
                pimg_tensor_free(tc);
                if (!st)
                    s->n++;
            }
            if (st) {
                pimg_tensor_free(up);
                return st;
            }
        }
        pimg_tensor_free(up);
        if ((p + 1) % 20 == 0 || p + 1 == l->n)
            pimg_progress_say(o->progress, o->progress_ud, "tilted copies: %d of %d photos (%.0f s)", p + 1, l->n,
                              pimg_clock_s() - t0);
    }
    return PIMG_OK;
}

static pimg_status dump_set(const example_set *s, const char *path, pimg_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot write", path);
    int hdr[3] = {s->n, PIMG_LEVEL_NCHAN, PIMG_LEVEL_UBINS};
    fwrite(hdr, sizeof hdr, 1, f);
    for (int i = 0; i < s->n; i++) {
        const example *x = &s->v[i];
        int g[2] = {x->photo, x->test};
        float a = (float)x->angle;
        fwrite(g, sizeof g, 1, f);
        fwrite(&a, sizeof a, 1, f);
        for (int c = 0; c < PIMG_LEVEL_NCHAN; c++) {
            float buf[PIMG_LEVEL_UBINS];
            double sc = x->h.total[c] > 0 ? PIMG_LEVEL_UBINS / x->h.total[c] : 0;
            for (int b = 0; b < PIMG_LEVEL_UBINS; b++)
                buf[b] = (float)(x->h.h[c][b] * sc);
            fwrite(buf, sizeof buf, 1, f);
        }
    }
    if (fclose(f))
        return pimg_error_set(err, PIMG_ERR_IO, "%s: write failed", path);
    return PIMG_OK;
}

static pimg_status write_test_list(const pimg_photo_list *l, const char *path, pimg_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot write", path);
    for (int i = 0; i < l->n; i++)
        if (l->v[i].test)
            fprintf(f, "%s,%d\n", l->v[i].path, l->v[i].rotation);
    if (fclose(f))
        return pimg_error_set(err, PIMG_ERR_IO, "%s: write failed", path);
    return PIMG_OK;
}

/* ---- the ranker: a softmax (conditional logit) over candidate angles ------------------- */

#define NF PIMG_LEVEL_NFEAT
#define NK PIMG_LEVEL_NCAND
#define LAMBDA 1e-2 /* ridge on the standardised weights, per example */

typedef struct {
    double *feat; /* n x NK x NF raw features */
    int *label;   /* candidate nearest to the true angle */
} feat_set;

/* Cholesky solve of the NF x NF system A x = b (A positive definite; overwritten). */
static int chol_solve(double *A, double *b, int n)
{
    for (int j = 0; j < n; j++) {
        double d = A[j * n + j];
        for (int k = 0; k < j; k++)
            d -= A[j * n + k] * A[j * n + k];
        if (!(d > 0))
            return -1;
        d = sqrt(d);
        A[j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double v = A[i * n + j];
            for (int k = 0; k < j; k++)
                v -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = v / d;
        }
    }
    for (int i = 0; i < n; i++) {
        double v = b[i];
        for (int k = 0; k < i; k++)
            v -= A[i * n + k] * b[k];
        b[i] = v / A[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double v = b[i];
        for (int k = i + 1; k < n; k++)
            v -= A[k * n + i] * b[k];
        b[i] = v / A[i * n + i];
    }
    return 0;
}

/* Penalised negative log-likelihood of the examples idx[0..n) under weights w (standardised
 * features xs), and if g/H are given its gradient and Hessian. */
static double nll(const double *xs, const int *label, const int *idx, int n, const double *w, double *g,
                  double *H)
{
    double loss = 0;
    if (g) {
        memset(g, 0, sizeof(double) * NF);
        memset(H, 0, sizeof(double) * NF * NF);
    }
    double s[NK];
    for (int e = 0; e < n; e++) {
        const double *x = xs + (size_t)idx[e] * NK * NF;
        for (int k = 0; k < NK; k++) {
            double v = 0;
            for (int j = 0; j < NF; j++)
                v += w[j] * x[k * NF + j];
            s[k] = v;
        }
        pimg_level_softmax(s);
        int y = label[idx[e]];
        loss -= log(s[y]);
        if (!g)
            continue;
        double ex[NF] = {0};
        for (int k = 0; k < NK; k++) {
            double p = s[k];
            const double *xk = x + k * NF;
            for (int j = 0; j < NF; j++) {
                ex[j] += p * xk[j];
                double pj = p * xk[j];
                for (int l = 0; l <= j; l++)
                    H[j * NF + l] += pj * xk[l];
            }
        }
        for (int j = 0; j < NF; j++) {
            g[j] -= x[y * NF + j] - ex[j];
            for (int l = 0; l <= j; l++)
                H[j * NF + l] -= ex[j] * ex[l];
        }
    }
    double reg = 0;
    for (int j = 0; j < NF; j++)
        reg += w[j] * w[j];
    loss += 0.5 * LAMBDA * n * reg;
    if (g) {
        for (int j = 0; j < NF; j++) {
            g[j] += LAMBDA * n * w[j];
            H[j * NF + j] += LAMBDA * n;
            for (int l = 0; l < j; l++)
                H[l * NF + j] = H[j * NF + l];
        }
    }
    return loss;
}

/* Fits standardisation and weights on examples idx[0..n) into m (rule fields untouched). */
static pimg_status fit(const feat_set *fs, const int *idx, int n, pimg_level_model *m, pimg_error *err)
{
    double cnt = (double)n * NK;
    for (int j = 0; j < NF; j++) {
        double a = 0, b = 0;
        for (int e = 0; e < n; e++)
            for (int k = 0; k < NK; k++) {
                double v = fs->feat[((size_t)idx[e] * NK + k) * NF + j];
                a += v;
                b += v * v;
            }
        m->mean[j] = a / cnt;
        double var = b / cnt - m->mean[j] * m->mean[j];
        m->scale[j] = var > 1e-18 ? sqrt(var) : 1.0;
    }
    /* Standardised copy of the examples used: the Newton steps read them many times. */
    int nmax = 0;
    for (int e = 0; e < n; e++)
        if (idx[e] + 1 > nmax)
            nmax = idx[e] + 1;
    double *xs = malloc(sizeof(double) * (size_t)nmax * NK * NF);
    if (!xs)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    for (int e = 0; e < n; e++)
        for (int k = 0; k < NK; k++)
            for (int j = 0; j < NF; j++) {
                size_t o = ((size_t)idx[e] * NK + k) * NF + j;
                xs[o] = (fs->feat[o] - m->mean[j]) / m->scale[j];
            }
    double w[NF] = {0}, g[NF], H[NF * NF], step[NF], trial[NF];
    double loss = nll(xs, fs->label, idx, n, w, g, H);
    for (int it = 0; it < 60; it++) {
        memcpy(step, g, sizeof step);
        if (chol_solve(H, step, NF))
            break;
        double t = 1.0, nl = loss;
        for (int h = 0; h < 30; h++, t *= 0.5) { /* damped: halve until the loss drops */
            for (int j = 0; j < NF; j++)
                trial[j] = w[j] - t * step[j];
            nl = nll(xs, fs->label, idx, n, trial, NULL, NULL);
            if (nl <= loss)
                break;
        }
        if (!(nl <= loss))
            break;
        memcpy(w, trial, sizeof w);
        double dl = loss - nl;
        loss = nll(xs, fs->label, idx, n, w, g, H);
        if (dl < 1e-9 * (1.0 + fabs(loss)))
            break;
    }
    memcpy(m->w, w, sizeof w);
    free(xs);
    return PIMG_OK;
}

/* ---- scoring ------------------------------------------------------------------------------ */

typedef struct {
    double mae, within2, untilted_mae, tilted_mae, acted;
    int n, n_untilted;
} scores;

static scores score_answers(const example_set *s, const int *idx, int n, const double *ans)
{
    scores r = {0};
    for (int e = 0; e < n; e++) {
        const example *x = &s->v[idx[e]];
        double er = fabs(ans[e] - x->angle);
        r.mae += er;
        r.within2 += er <= 2.0;
        r.acted += ans[e] != 0.0;
        if (x->angle == 0.0) {
            r.untilted_mae += er;
            r.n_untilted++;
        } else {
            r.tilted_mae += er;
        }
    }
    r.n = n;
    if (n) {
        r.mae /= n;
        r.within2 /= n;
        r.acted /= n;
    }
    if (n - r.n_untilted)
        r.tilted_mae /= n - r.n_untilted;
    if (r.n_untilted)
        r.untilted_mae /= r.n_untilted;
    return r;
}

static cJSON *scores_json(scores r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "copies", r.n);
    cJSON_AddNumberToObject(o, "untilted_copies", r.n_untilted);
    cJSON_AddNumberToObject(o, "mae", round(r.mae * 1000) / 1000);
    cJSON_AddNumberToObject(o, "within2", round(r.within2 * 1000) / 1000);
    cJSON_AddNumberToObject(o, "untilted_mae", round(r.untilted_mae * 1000) / 1000);
    cJSON_AddNumberToObject(o, "tilted_mae", round(r.tilted_mae * 1000) / 1000);
    cJSON_AddNumberToObject(o, "acted", round(r.acted * 1000) / 1000);
    return o;
}

/* Posteriors of examples idx[0..n) under m into post (n x NK). */
static void posteriors(const pimg_level_model *m, const feat_set *fs, const int *idx, int n, double *post)
{
    for (int e = 0; e < n; e++)
        pimg_level_posterior(m, fs->feat + (size_t)idx[e] * NK * NF, post + (size_t)e * NK);
}

static void answers(const double *post, int n, double min_conf, double snap, double *ans)
{
    for (int e = 0; e < n; e++) {
        double c;
        pimg_level_from_posterior(post + (size_t)e * NK, min_conf, snap, &ans[e], &c);
    }
}

pimg_status pimg_level_train(const pimg_level_train_opts *o, pimg_level_model **out, cJSON **metrics,
                             pimg_error *err)
{
    pimg_photo_list l = {0};
    example_set s = {0};
    feat_set fs = {0};
    int *tr = NULL, *te = NULL, *fold_tr = NULL, *fold_va = NULL;
    double *post = NULL, *ans = NULL;
    pimg_level_model *m = NULL;
    cJSON *met = NULL;
    pimg_status st = PIMG_OK;
    double t0 = pimg_clock_s();
    for (int d = 0; d < o->n_data_dirs && !st; d++) {
        int start = l.n, kept = l.n;
        if ((st = pimg_photos_read(o->data_dirs[d], "labels.csv", &l, err)))
            break;
        for (int i = start; i < l.n; i++)
            if (l.v[i].up == 1) { /* no upright direction: no tilt to learn */
                l.v[kept] = l.v[i];
                l.v[kept++].folder = d;
            }
        l.n = kept;
        /* each folder is split on its own, so adding a folder leaves the others' split (and
         * so their held-out scores) unchanged */
        pimg_rng r;
        pimg_rng_seed(&r, o->seed, 0x5e71, (unsigned)d);
        if (pimg_photos_split(&l, start, l.n, o->test_frac, &r))
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    if (st)
        goto done;
    if (!l.n) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "no upright photos found");
        goto done;
    }
    if (o->test_list && (st = write_test_list(&l, o->test_list, err)))
        goto done;
    if ((st = build_set(o, &l, &s, err)))
        goto done;
    if (o->dump_path) {
        st = dump_set(&s, o->dump_path, err);
        goto done;
    }
    fs.feat = malloc(sizeof(double) * (size_t)s.n * NK * NF);
    fs.label = malloc(sizeof(int) * (s.n ? s.n : 1));
    tr = malloc(sizeof(int) * (s.n ? s.n : 1));
    te = malloc(sizeof(int) * (s.n ? s.n : 1));
    fold_tr = malloc(sizeof(int) * (s.n ? s.n : 1));
    fold_va = malloc(sizeof(int) * (s.n ? s.n : 1));
    post = malloc(sizeof(double) * (size_t)(s.n ? s.n : 1) * NK);
    ans = malloc(sizeof(double) * (s.n ? s.n : 1));
    m = calloc(1, sizeof *m);
    if (!fs.feat || !fs.label || !tr || !te || !fold_tr || !fold_va || !post || !ans || !m) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto done;
    }
    int ntr = 0, nte = 0;
    for (int e = 0; e < s.n; e++) {
        pimg_level_features(&s.v[e].h, fs.feat + (size_t)e * NK * NF);
        fs.label[e] = (int)lround((s.v[e].angle - PIMG_LEVEL_CAND_MIN) / PIMG_LEVEL_CAND_STEP);
        if (s.v[e].test)
            te[nte++] = e;
        else
            tr[ntr++] = e;
    }
    if (!ntr) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "no training photos left after the split");
        goto done;
    }
    m->snap_deg = 0.35;
    /* Out-of-fold posteriors of the training photos (3 folds by photo) choose the abstention
     * threshold: in-sample posteriors would be over-confident. */
    const int folds = 3;
    double *oof = malloc(sizeof(double) * (size_t)ntr * NK);
    if (!oof) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int f = 0; f < folds && !st; f++) {
        int na = 0, nv = 0;
        for (int e = 0; e < ntr; e++) {
            /* Fold by photo: a hash of the photo index, so copies stay together. */
            unsigned hsh = (unsigned)s.v[tr[e]].photo * 2654435761u + o->seed;
            if ((int)((hsh >> 16) % folds) == f)
                fold_va[nv++] = e;
            else
                fold_tr[na++] = tr[e];
        }
        pimg_level_model fm = *m;
        if ((st = fit(&fs, fold_tr, na, &fm, err)))
            break;
        for (int v = 0; v < nv; v++)
            pimg_level_posterior(&fm, fs.feat + (size_t)tr[fold_va[v]] * NK * NF, oof + (size_t)fold_va[v] * NK);
        pimg_progress_say(o->progress, o->progress_ud, "fold %d of %d fitted (%.0f s)", f + 1, folds, pimg_clock_s() - t0);
    }
    if (st) {
        free(oof);
        goto done;
    }
    met = cJSON_CreateObject();
    cJSON *grid = cJSON_AddArrayToObject(met, "threshold_search");
    /* The untilted error along the grid is noisy (a few photos make it), so a threshold only
     * counts as safe when every stricter one is safe too; among those, the smallest error. */
    enum { NGRID = 17 };
    double gm[NGRID], gu[NGRID];
    for (int gi = 0; gi < NGRID; gi++) {
        double mc = 0.05 * gi;
        answers(oof, ntr, mc, m->snap_deg, ans);
        scores r = score_answers(&s, tr, ntr, ans);
        gm[gi] = r.mae;
        gu[gi] = r.untilted_mae;
        cJSON *row = scores_json(r);
        cJSON_AddNumberToObject(row, "min_conf", mc);
        cJSON_AddItemToArray(grid, row);
    }
    int best = NGRID - 1;
    for (int gi = NGRID - 1; gi >= 0 && gu[gi] <= o->max_untilted_mae; gi--)
        if (gm[gi] < gm[best] - 1e-12 || gu[best] > o->max_untilted_mae)
            best = gi;
    free(oof);
    m->min_conf = 0.05 * best;
    if ((st = fit(&fs, tr, ntr, m, err)))
        goto done;
    pimg_progress_say(o->progress, o->progress_ud, "final fit on %d copies, min_conf %.2f (%.0f s)", ntr, m->min_conf,
                      pimg_clock_s() - t0);
    cJSON *sp = cJSON_AddObjectToObject(met, "split");
    int np_test = 0;
    for (int i = 0; i < l.n; i++)
        np_test += l.v[i].test;
    cJSON_AddNumberToObject(sp, "seed", o->seed);
    cJSON_AddNumberToObject(sp, "photos_train", l.n - np_test);
    cJSON_AddNumberToObject(sp, "photos_test", np_test);
    cJSON_AddNumberToObject(sp, "copies_per_photo", o->copies);
    cJSON *pa = cJSON_AddObjectToObject(met, "params");
    cJSON_AddNumberToObject(pa, "lambda", LAMBDA);
    cJSON_AddNumberToObject(pa, "features", NF);
    cJSON_AddNumberToObject(pa, "candidates", NK);
    cJSON_AddNumberToObject(pa, "min_conf", m->min_conf);
    cJSON_AddNumberToObject(pa, "max_untilted_mae", o->max_untilted_mae);
    posteriors(m, &fs, tr, ntr, post);
    answers(post, ntr, m->min_conf, m->snap_deg, ans);
    cJSON_AddItemToObject(met, "train", scores_json(score_answers(&s, tr, ntr, ans)));
    if (nte) {
        posteriors(m, &fs, te, nte, post);
        answers(post, nte, m->min_conf, m->snap_deg, ans);
        cJSON_AddItemToObject(met, "test", scores_json(score_answers(&s, te, nte, ans)));
        /* Per folder, so a folder added later can be judged on the others' unchanged split. */
        cJSON *bf = cJSON_AddArrayToObject(met, "test_by_folder");
        for (int d = 0; d < o->n_data_dirs; d++) {
            int nd = 0;
            for (int e = 0; e < nte; e++)
                if (l.v[s.v[te[e]].photo].folder == d) {
                    fold_tr[nd] = te[e];
                    fold_va[nd++] = e;
                }
            double *fa = malloc(sizeof(double) * (nd ? nd : 1));
            if (!fa) {
                st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
                goto done;
            }
            for (int e = 0; e < nd; e++)
                fa[e] = ans[fold_va[e]];
            cJSON *row = scores_json(score_answers(&s, fold_tr, nd, fa));
            cJSON_AddStringToObject(row, "data", o->data_dirs[d]);
            /* The held-out trade-off at every threshold (reported, never used to choose). */
            cJSON *cu = cJSON_AddArrayToObject(row, "by_min_conf");
            double *fp = malloc(sizeof(double) * (size_t)(nd ? nd : 1) * NK);
            for (int gi = 0; fp && gi < 17; gi++) {
                for (int e = 0; e < nd; e++)
                    memcpy(fp + (size_t)e * NK, post + (size_t)fold_va[e] * NK, sizeof(double) * NK);
                answers(fp, nd, 0.05 * gi, m->snap_deg, fa);
                scores r = score_answers(&s, fold_tr, nd, fa);
                cJSON *pt = cJSON_CreateArray();
                cJSON_AddItemToArray(pt, cJSON_CreateNumber(0.05 * gi));
                cJSON_AddItemToArray(pt, cJSON_CreateNumber(round(r.mae * 1000) / 1000));
                cJSON_AddItemToArray(pt, cJSON_CreateNumber(round(r.untilted_mae * 1000) / 1000));
                cJSON_AddItemToArray(cu, pt);
            }
            free(fp);
            free(fa);
            cJSON_AddItemToArray(bf, row);
        }
        answers(post, nte, 0.0, 0.0, ans);
        cJSON_AddItemToObject(met, "test_always_answer", scores_json(score_answers(&s, te, nte, ans)));
        for (int e = 0; e < nte; e++)
            ans[e] = 0.0;
        cJSON_AddItemToObject(met, "test_never_answer", scores_json(score_answers(&s, te, nte, ans)));
    }
done:
    pimg_photo_list_free(&l);
    free(s.v);
    free(fs.feat);
    free(fs.label);
    free(tr);
    free(te);
    free(fold_tr);
    free(fold_va);
    free(post);
    free(ans);
    if (st || o->dump_path) {
        free(m);
        cJSON_Delete(met);
        return st;
    }
    *out = m;
    *metrics = met;
    return PIMG_OK;
}
