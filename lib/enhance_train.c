/* enhance_train.c — synthetic degradations and the stage-by-stage fit of the enhancement model
 * (see enhance_train.h for the method).
 *
 * Every stage is fitted on the output of the stages before it, exactly as the runtime runs
 * them, and every threshold is chosen by the PSNR the whole stage gives on the training photos
 * — including the undegraded ones, so a threshold that would touch good photos pays for it.
 * PSNRs are capped at 45 dB in the objectives: above that the JPEG encode dominates anyway, and
 * an uncapped 99 dB for "left alone" would drown everything else. */
#include "enhance_train.h"
#include "enhance_model.h"

#include <libsvm/svm.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAP 45.0

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s) { return (rng_next(s) >> 11) * 0x1.0p-53; }
static double urange(uint64_t *s, double a, double b) { return a + (b - a) * unif(s); }

static double gauss(uint64_t *s)
{
    double u = unif(s), v = unif(s);
    return sqrt(-2.0 * log(u > 1e-300 ? u : 1e-300)) * cos(2 * M_PI * v);
}

const char *pimg_deg_name(int kind)
{
    static const char *names[PIMG_DEG_KINDS] = {"none", "dark", "flat", "cast", "noise"};
    return kind >= 0 && kind < PIMG_DEG_KINDS ? names[kind] : "?";
}

void pimg_degradation_random(int kind, uint64_t *rng, pimg_degradation *d)
{
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->gamma = d->scale = d->slope = 1.0;
    d->gain[0] = d->gain[1] = d->gain[2] = 1.0;
    d->seed = rng_next(rng);
    switch (kind) {
    case PIMG_DEG_DARK:
        d->gamma = urange(rng, 1.3, 2.6);
        d->scale = urange(rng, 0.45, 0.9);
        break;
    case PIMG_DEG_FLAT:
        d->slope = urange(rng, 0.35, 0.75);
        d->offset = (1 - d->slope) * urange(rng, 0.25, 0.7);
        break;
    case PIMG_DEG_CAST:
        do {
            d->gain[0] = exp(urange(rng, -0.3, 0.3));
            d->gain[2] = exp(urange(rng, -0.35, 0.3));
        } while (fabs(log(d->gain[0])) < 0.08 && fabs(log(d->gain[2])) < 0.08);
        break;
    case PIMG_DEG_NOISE:
        d->sigma = urange(rng, 5, 20);
        d->sp = unif(rng) < 0.7 ? urange(rng, 0.005, 0.03) : 0.0;
        break;
    default:
        break;
    }
}

static uint8_t trunc8(double v) { return (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : (int)v); }

int pimg_degradation_apply(const pimg_rgb8 *src, const pimg_degradation *d, pimg_rgb8 *out)
{
    size_t n = (size_t)src->w * src->h;
    out->w = src->w;
    out->h = src->h;
    out->p = malloc(n * 3);
    if (!out->p)
        return -1;
    uint8_t lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            double y = v;
            if (d->kind == PIMG_DEG_DARK)
                y = 255 * pow(v / 255.0, d->gamma) * d->scale;
            else if (d->kind == PIMG_DEG_FLAT)
                y = d->slope * v + d->offset * 255;
            else if (d->kind == PIMG_DEG_CAST)
                y = v * d->gain[c];
            lut[c][v] = trunc8(y);
        }
    uint64_t rng = d->seed;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = src->p + i * 3;
        uint8_t *o = out->p + i * 3;
        if (d->kind == PIMG_DEG_NOISE) {
            for (int c = 0; c < 3; c++)
                o[c] = trunc8(s[c] + d->sigma * gauss(&rng));
            double m = unif(&rng);
            if (m < d->sp / 2)
                o[0] = o[1] = o[2] = 0;
            else if (m > 1 - d->sp / 2)
                o[0] = o[1] = o[2] = 255;
        } else {
            for (int c = 0; c < 3; c++)
                o[c] = lut[c][s[c]];
        }
    }
    return 0;
}

/* Where a level y (0..1) of the degraded photo came from: the ideal tone correction. */
static double tone_inverse(const pimg_degradation *d, double y)
{
    if (d->kind == PIMG_DEG_DARK)
        return pow(fmax(y, 0) / d->scale, 1.0 / d->gamma);
    if (d->kind == PIMG_DEG_FLAT)
        return (y - d->offset) / d->slope;
    return y;
}

/* PIL's ImageOps.autocontrast(cutoff=1) per channel: the baseline the evaluation compares to. */
static void autocontrast(pimg_rgb8 *img)
{
    size_t n = (size_t)img->w * img->h;
    uint8_t lut[3][256];
    for (int c = 0; c < 3; c++) {
        long h[256] = {0};
        for (size_t i = 0; i < n; i++)
            h[img->p[i * 3 + c]]++;
        long cut = (long)(n * 1 / 100);
        long left = cut;
        for (int b = 0; b < 256 && left > 0; b++) {
            long t = h[b] < left ? h[b] : left;
            h[b] -= t;
            left -= t;
        }
        left = cut;
        for (int b = 255; b >= 0 && left > 0; b--) {
            long t = h[b] < left ? h[b] : left;
            h[b] -= t;
            left -= t;
        }
        int lo = 0, hi = 255;
        while (lo < 256 && !h[lo])
            lo++;
        while (hi >= 0 && !h[hi])
            hi--;
        for (int v = 0; v < 256; v++) {
            if (hi <= lo) {
                lut[c][v] = (uint8_t)v;
                continue;
            }
            double scale = 255.0 / (hi - lo), off = -lo * scale;
            int o = (int)(v * scale + off);
            lut[c][v] = (uint8_t)(o < 0 ? 0 : o > 255 ? 255 : o);
        }
    }
    pimg_lut_rgb8(img, lut);
}

static int rgb8_copy(const pimg_rgb8 *s, pimg_rgb8 *d)
{
    d->w = s->w;
    d->h = s->h;
    d->p = malloc((size_t)s->w * s->h * 3);
    if (!d->p)
        return -1;
    memcpy(d->p, s->p, (size_t)s->w * s->h * 3);
    return 0;
}

static double capped(double p) { return p > CAP ? CAP : p; }

/* ---- libsvm ---- */

static void quiet(const char *s) { (void)s; }

/* Fits an RBF epsilon-SVR on n rows of X (PIMG_ENH_NF each) and copies it into out. When cv is
 * not NULL it also gets 5-fold out-of-fold predictions for the n rows: the thresholds that
 * decide whether to act are fitted on those, because in-sample predictions of an RBF SVR are
 * far too good on the photos it has seen (it learns to leave exactly those alone). */
static int svr_fit(const double *X, const double *y, int n, double C, double eps, pimg_svr *out, double *cv)
{
    memset(out, 0, sizeof *out);
    for (int k = 0; k < PIMG_ENH_NF; k++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < n; i++) {
            s += X[(size_t)i * PIMG_ENH_NF + k];
            s2 += X[(size_t)i * PIMG_ENH_NF + k] * X[(size_t)i * PIMG_ENH_NF + k];
        }
        out->mean[k] = s / n;
        double var = s2 / n - out->mean[k] * out->mean[k];
        out->scale[k] = var > 1e-12 ? sqrt(var) : 1.0;
    }
    struct svm_node *nodes = malloc(sizeof *nodes * (size_t)n * (PIMG_ENH_NF + 1));
    struct svm_node **rows = malloc(sizeof *rows * (size_t)n);
    double *yy = malloc(sizeof *yy * (size_t)n);
    if (!nodes || !rows || !yy) {
        free(nodes);
        free(rows);
        free(yy);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        rows[i] = nodes + (size_t)i * (PIMG_ENH_NF + 1);
        for (int k = 0; k < PIMG_ENH_NF; k++) {
            rows[i][k].index = k + 1;
            rows[i][k].value = (X[(size_t)i * PIMG_ENH_NF + k] - out->mean[k]) / out->scale[k];
        }
        rows[i][PIMG_ENH_NF].index = -1;
        yy[i] = y[i];
    }
    struct svm_problem prob = {.l = n, .y = yy, .x = rows};
    struct svm_parameter par = {0};
    par.svm_type = EPSILON_SVR;
    par.kernel_type = RBF;
    par.gamma = 1.0 / PIMG_ENH_NF;
    par.C = C;
    par.p = eps;
    par.eps = 1e-3;
    par.cache_size = 100;
    par.shrinking = 1;
    svm_set_print_string_function(quiet);
    int rc = -1;
    struct svm_model *model = NULL;
    if (svm_check_parameter(&prob, &par))
        goto out;
    model = svm_train(&prob, &par);
    if (!model)
        goto out;
    if (cv)
        svm_cross_validation(&prob, &par, 5, cv);
    out->n_sv = model->l;
    out->gamma = par.gamma;
    out->rho = model->rho[0];
    out->sv = calloc((size_t)model->l * PIMG_ENH_NF, sizeof(double));
    out->coef = malloc(sizeof(double) * (size_t)(model->l > 0 ? model->l : 1));
    if (!out->sv || !out->coef)
        goto out;
    for (int i = 0; i < model->l; i++) {
        for (const struct svm_node *nd = model->SV[i]; nd->index != -1; nd++)
            if (nd->index >= 1 && nd->index <= PIMG_ENH_NF)
                out->sv[(size_t)i * PIMG_ENH_NF + nd->index - 1] = nd->value;
        out->coef[i] = model->sv_coef[0][i];
    }
    rc = 0;
out:
    svm_free_and_destroy_model(&model);
    free(nodes);
    free(rows);
    free(yy);
    return rc;
}

/* ---- the fit ---- */

#define N_DN 6 /* denoise options scored per sample: see dn_option */
static const double dn_k[2] = {0.7, 1.0};

/* Option index for (impulse on/off, bilateral off / k index). */
static int dn_option(int imp, int bil, int k) { return bil ? 2 + imp * 2 + k : imp; }

typedef struct {
    int photo, test;
    pimg_degradation d;
    double q_noise, q_imp;
    double psnr_dn[N_DN];
    pimg_rgb8 den;                 /* after the fitted denoise */
    double fwb[2][PIMG_ENH_NF], twb[2], pwb[2];
    double ftone[PIMG_ENH_NF], ttone[3], ptone[3], lo, hi;
    double psnr_tone_off, psnr_tone_on, tone_dev;
} sample;

/* Objective weight of a sample: harming a good photo costs more than missing a defect. */
static double weight(const pimg_enhance_train_opts *o, const sample *s)
{
    return s->d.kind == PIMG_DEG_NONE ? (o->none_weight > 0 ? o->none_weight : 3.0) : 1.0;
}


/* The gains a model's white-balance stage gives for a prediction. */
static void wb_gains(const pimg_enhance_model *m, const double pred[2], double gain[3])
{
    gain[0] = gain[1] = gain[2] = 1.0;
    for (int k = 0; k < 2; k++) {
        double l = pred[k];
        if (fabs(l) < m->wb_dead)
            continue;
        l = l > m->wb_max ? m->wb_max : l < -m->wb_max ? -m->wb_max : l;
        gain[k ? 2 : 0] = exp(l);
    }
}

static double psnr_after_lut(const pimg_rgb8 *img, const pimg_rgb8 *ref, uint8_t lut[3][256])
{
    pimg_rgb8 t;
    if (rgb8_copy(img, &t))
        return 0;
    pimg_lut_rgb8(&t, lut);
    double p = pimg_rgb8_psnr(&t, ref);
    free(t.p);
    return p;
}

pimg_status pimg_enhance_train(const pimg_enhance_train_opts *o, pimg_enhance_model **out,
                               pimg_enhance_metrics *train, pimg_enhance_metrics *test, pimg_error *err)
{
    pimg_status st = PIMG_OK;
    int variants = o->variants > 0 ? o->variants : 1;
    int ns = o->n_photos * PIMG_DEG_KINDS * variants;
    double C = o->svr_c > 0 ? o->svr_c : 4.0, eps = o->svr_eps > 0 ? o->svr_eps : 0.01;
    sample *S = calloc((size_t)ns, sizeof *S);
    pimg_enhance_model *m = calloc(1, sizeof *m);
    double *X = malloc(sizeof(double) * (size_t)ns * PIMG_ENH_NF), *Y = malloc(sizeof(double) * (size_t)ns);
    double *CV = malloc(sizeof(double) * (size_t)ns);
    if (!S || !m || !X || !Y || !CV) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    pimg_enhance_model_defaults(m);
    uint64_t rng = o->seed;
    int ntrain = 0;
    double wtrain = 0;
    for (int p = 0, i = 0; p < o->n_photos; p++)
        for (int k = 0; k < PIMG_DEG_KINDS; k++)
            for (int v = 0; v < variants; v++, i++) {
                S[i].photo = p;
                S[i].test = o->is_test && o->is_test[p];
                ntrain += !S[i].test;
                pimg_degradation_random(k, &rng, &S[i].d);
                wtrain += S[i].test ? 0 : weight(o, &S[i]);
            }
    if (ntrain < 20) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "too few training photos (%d samples)", ntrain);
        goto out;
    }

    /* Stage 1: denoise. Score every option once per sample, then search thresholds. */
    pimg_progress_say(o->progress, o->ctx, "denoise: scoring %d samples", ns);
    for (int i = 0; i < ns; i++) {
        const pimg_rgb8 *ref = &o->photos[S[i].photo];
        pimg_rgb8 deg, t;
        if (pimg_degradation_apply(ref, &S[i].d, &deg)) {
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            goto out;
        }
        pimg_quality q;
        pimg_quality_measure_rgb8(&deg, &q);
        S[i].q_noise = q.noise;
        S[i].q_imp = q.impulse_share;
        S[i].psnr_dn[0] = pimg_rgb8_psnr(&deg, ref);
        for (int opt = 1; opt < N_DN; opt++) {
            pimg_denoise_params dp = {0};
            dp.impulse = opt == 1 || opt >= 4;
            dp.impulse_thr = m->impulse_thr;
            dp.range_h = opt >= 2 ? dn_k[(opt - 2) % 2] * q.noise * 3.0 : 0;
            pimg_denoise_prepare(&dp);
            if (rgb8_copy(&deg, &t) || pimg_denoise_rgb8(&t, &dp)) {
                free(deg.p);
                free(t.p);
                st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
                goto out;
            }
            S[i].psnr_dn[opt] = pimg_rgb8_psnr(&t, ref);
            free(t.p);
        }
        free(deg.p);
    }
    {
        static const double imins[] = {0.001, 0.002, 0.003, 0.005, 0.008, 0.012, 0.02, 1.0};
        static const double nmins[] = {3, 4, 5, 6, 7, 8, 10, 12, 1e9};
        double best = -1;
        for (size_t a = 0; a < sizeof imins / sizeof *imins; a++)
            for (size_t b = 0; b < sizeof nmins / sizeof *nmins; b++)
                for (int k = 0; k < 2; k++) {
                    double sum = 0;
                    for (int i = 0; i < ns; i++)
                        if (!S[i].test)
                            sum += weight(o, &S[i]) * capped(S[i].psnr_dn[dn_option(S[i].q_imp > imins[a], S[i].q_noise > nmins[b], k)]);
                    if (sum > best) {
                        best = sum;
                        m->impulse_min = imins[a];
                        m->noise_min = nmins[b];
                        m->range_k = dn_k[k];
                    }
                }
        pimg_progress_say(o->progress, o->ctx, "denoise: impulse_min=%.3f noise_min=%.1f range_k=%.2f (train weighted mean capped PSNR %.2f dB)",
            m->impulse_min, m->noise_min, m->range_k, best / wtrain);
    }

    /* Stage 2: white balance on the denoised photos. */
    pimg_progress_say(o->progress, o->ctx, "white balance: features");
    for (int i = 0; i < ns; i++) {
        pimg_rgb8 deg;
        pimg_enhance_plan plan = {0};
        pimg_quality q;
        if (pimg_degradation_apply(&o->photos[S[i].photo], &S[i].d, &deg)) {
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            goto out;
        }
        pimg_quality_measure_rgb8(&deg, &q);
        if (pimg_enhance_plan_denoise(m, &q, &plan, &deg)) {
            free(deg.p);
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            goto out;
        }
        S[i].den = deg;
        pimg_enhance_wb_features(&S[i].den, S[i].fwb);
        S[i].twb[0] = -log(S[i].d.gain[0] / S[i].d.gain[1]);
        S[i].twb[1] = -log(S[i].d.gain[2] / S[i].d.gain[1]);
    }
    for (int k = 0; k < 2; k++) {
        int n = 0;
        for (int i = 0; i < ns; i++)
            if (!S[i].test) {
                memcpy(X + (size_t)n * PIMG_ENH_NF, S[i].fwb[k], sizeof(double) * PIMG_ENH_NF);
                Y[n++] = S[i].twb[k];
            }
        if (svr_fit(X, Y, n, C, eps, &m->wb[k], CV)) {
            st = pimg_error_set(err, PIMG_ERR_INTERNAL, "libsvm could not fit the white balance");
            goto out;
        }
        double se = 0, se0 = 0;
        for (int i = 0, r = 0; i < ns; i++) {
            S[i].pwb[k] = S[i].test ? pimg_svr_predict(&m->wb[k], S[i].fwb[k]) : CV[r++];
            if (S[i].test) {
                se += (S[i].pwb[k] - S[i].twb[k]) * (S[i].pwb[k] - S[i].twb[k]);
                se0 += S[i].twb[k] * S[i].twb[k];
            }
        }
        pimg_progress_say(o->progress, o->ctx, "white balance %s: %d support vectors, test RMSE %.4f (predicting 0: %.4f)", k ? "B" : "R",
            m->wb[k].n_sv, sqrt(se / (ns - ntrain > 0 ? ns - ntrain : 1)),
            sqrt(se0 / (ns - ntrain > 0 ? ns - ntrain : 1)));
    }
    m->has_wb = 1;
    {
        static const double deads[] = {0.0, 0.03, 0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3, 10};
        static const double maxs[] = {0.25, 0.4};
        double best = -1, bd = 0, bm = 0;
        for (size_t a = 0; a < sizeof deads / sizeof *deads; a++)
            for (size_t b = 0; b < sizeof maxs / sizeof *maxs; b++) {
                m->wb_dead = deads[a];
                m->wb_max = maxs[b];
                double sum = 0;
                for (int i = 0; i < ns; i++) {
                    if (S[i].test)
                        continue;
                    double g[3];
                    uint8_t lut[3][256];
                    wb_gains(m, S[i].pwb, g);
                    pimg_enhance_build_lut(g, 0, 1, 0, 1, 1, lut);
                    sum += weight(o, &S[i]) * capped(psnr_after_lut(&S[i].den, &o->photos[S[i].photo], lut));
                }
                if (sum > best) {
                    best = sum;
                    bd = deads[a];
                    bm = maxs[b];
                }
            }
        m->wb_dead = bd;
        m->wb_max = bm;
        pimg_progress_say(o->progress, o->ctx, "white balance: dead=%.2f max=%.2f (train weighted mean capped PSNR %.2f dB)", bd, bm, best / wtrain);
    }

    /* Stage 3: tone curve on the balanced photos. */
    pimg_progress_say(o->progress, o->ctx, "tone: features");
    for (int i = 0; i < ns; i++) {
        pimg_rgb8 t;
        pimg_enhance_plan plan = {0};
        if (rgb8_copy(&S[i].den, &t)) {
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            goto out;
        }
        pimg_enhance_plan_wb(m, &plan, &t);
        pimg_enhance_tone_features(&t, S[i].ftone, &S[i].lo, &S[i].hi);
        free(t.p);
        S[i].ttone[0] = tone_inverse(&S[i].d, S[i].lo);
        S[i].ttone[1] = tone_inverse(&S[i].d, S[i].hi);
        S[i].ttone[2] = S[i].d.kind == PIMG_DEG_DARK ? -log(S[i].d.gamma) : 0.0;
    }
    static const char *tone_names[3] = {"black_to", "white_to", "log_gamma"};
    for (int k = 0; k < 3; k++) {
        int n = 0;
        for (int i = 0; i < ns; i++)
            if (!S[i].test) {
                memcpy(X + (size_t)n * PIMG_ENH_NF, S[i].ftone, sizeof(double) * PIMG_ENH_NF);
                Y[n++] = S[i].ttone[k];
            }
        if (svr_fit(X, Y, n, C, eps, &m->tone[k], CV)) {
            st = pimg_error_set(err, PIMG_ERR_INTERNAL, "libsvm could not fit the tone curve");
            goto out;
        }
        for (int i = 0, r = 0; i < ns; i++)
            S[i].ptone[k] = S[i].test ? pimg_svr_predict(&m->tone[k], S[i].ftone) : CV[r++];
        double se = 0;
        int nt = 0;
        for (int i = 0; i < ns; i++)
            if (S[i].test) {
                double e = pimg_svr_predict(&m->tone[k], S[i].ftone) - S[i].ttone[k];
                se += e * e;
                nt++;
            }
        pimg_progress_say(o->progress, o->ctx, "tone %s: %d support vectors, test RMSE %.4f", tone_names[k], m->tone[k].n_sv,
            sqrt(se / (nt ? nt : 1)));
    }
    m->has_tone = 1;
    /* Dead zone: score each sample with and without its predicted curve, then pick the
     * deviation threshold that does best overall. */
    for (int i = 0; i < ns; i++) {
        pimg_enhance_plan plan = {0};
        pimg_rgb8 t;
        const pimg_rgb8 *ref = &o->photos[S[i].photo];
        if (rgb8_copy(&S[i].den, &t)) {
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            goto out;
        }
        pimg_enhance_plan_wb(m, &plan, &t);
        free(t.p);
        uint8_t lut[3][256];
        pimg_enhance_build_lut(plan.gain, 0, 1, 0, 1, 1, lut);
        S[i].psnr_tone_off = psnr_after_lut(&S[i].den, ref, lut);
        double bto = S[i].ptone[0], wto = S[i].ptone[1];
        double lg = S[i].ptone[2], g = exp(lg < -1.2 ? -1.2 : lg > 1.2 ? 1.2 : lg);
        if (S[i].hi - S[i].lo < 0.05 || wto - bto < 0.2) {
            S[i].psnr_tone_on = S[i].psnr_tone_off;
            S[i].tone_dev = 0;
            continue;
        }
        static const double one[3] = {1, 1, 1};
        pimg_enhance_build_lut(one, S[i].lo, S[i].hi, bto, wto, g, lut);
        int dev = 0;
        for (int v = 0; v < 256; v++)
            dev = abs(lut[1][v] - v) > dev ? abs(lut[1][v] - v) : dev;
        S[i].tone_dev = dev / 255.0;
        pimg_enhance_build_lut(plan.gain, S[i].lo, S[i].hi, bto, wto, g, lut);
        S[i].psnr_tone_on = psnr_after_lut(&S[i].den, ref, lut);
    }
    {
        static const double deads[] = {0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.18, 0.22, 0.27, 0.33, 2};
        double best = -1;
        for (size_t a = 0; a < sizeof deads / sizeof *deads; a++) {
            double sum = 0;
            for (int i = 0; i < ns; i++)
                if (!S[i].test)
                    sum += weight(o, &S[i]) * capped(S[i].tone_dev >= deads[a] && S[i].tone_dev > 0 ? S[i].psnr_tone_on
                                                                                  : S[i].psnr_tone_off);
            if (sum > best) {
                best = sum;
                m->tone_dead = deads[a];
            }
        }
        pimg_progress_say(o->progress, o->ctx, "tone: dead=%.2f (train weighted mean capped PSNR %.2f dB)", m->tone_dead, best / wtrain);
    }

    /* Stage 4: CLAHE strength rule, scored on the full plan. */
    {
        struct {
            double k, c0, max;
        } cfg[] = {{0, 0.3, 0}, {2, 0.4, 0.2}, {5, 0.4, 0.3}, {2, 0.6, 0.5}};
        int nc = sizeof cfg / sizeof *cfg, bestc = 0;
        double best = -1;
        for (int c = 0; c < nc; c++) {
            m->clahe_k = cfg[c].k;
            m->clahe_c0 = cfg[c].c0;
            m->clahe_max = cfg[c].max;
            double sum = 0;
            for (int i = 0; i < ns; i++) {
                if (S[i].test)
                    continue;
                pimg_enhance_plan plan = {0};
                pimg_rgb8 t;
                if (rgb8_copy(&S[i].den, &t)) {
                    st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
                    goto out;
                }
                pimg_enhance_plan_wb(m, &plan, &t);
                pimg_enhance_plan_tone(m, &plan, &t);
                pimg_enhance_plan_finish(m, &plan, &t);
                memcpy(t.p, S[i].den.p, (size_t)t.w * t.h * 3);
                plan.denoise = 0; /* den is already denoised */
                pimg_enhance_apply_rgb8(&plan, &t);
                sum += weight(o, &S[i]) * capped(pimg_rgb8_psnr(&t, &o->photos[S[i].photo]));
                free(t.p);
            }
            pimg_progress_say(o->progress, o->ctx, "clahe: k=%.1f c0=%.2f max=%.2f -> train weighted mean capped PSNR %.2f dB", cfg[c].k, cfg[c].c0,
                cfg[c].max, sum / wtrain);
            if (sum > best + 1e-9) {
                best = sum;
                bestc = c;
            }
        }
        m->clahe_k = cfg[bestc].k;
        m->clahe_c0 = cfg[bestc].c0;
        m->clahe_max = cfg[bestc].max;
    }

    pimg_progress_say(o->progress, o->ctx, "scoring the whole plan");
    int *use = malloc(sizeof(int) * (size_t)o->n_photos);
    if (!use) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int split = 0; split < 2 && !st; split++) {
        pimg_enhance_metrics *met = split ? test : train;
        if (!met)
            continue;
        for (int p = 0; p < o->n_photos; p++)
            use[p] = (o->is_test && o->is_test[p]) == split;
        st = pimg_enhance_evaluate(m, o->photos, o->n_photos, use, 1, o->seed ^ 0x5eed, met, err);
    }
    free(use);
    if (!st) {
        *out = m;
        m = NULL;
    }
out:
    if (S)
        for (int i = 0; i < ns; i++)
            free(S[i].den.p);
    free(S);
    free(X);
    free(Y);
    free(CV);
    pimg_enhance_model_free(m);
    return st;
}

pimg_status pimg_enhance_evaluate(const pimg_enhance_model *m, const pimg_rgb8 *photos, int n,
                                  const int *use, int variants, uint64_t seed, pimg_enhance_metrics *met,
                                  pimg_error *err)
{
    memset(met, 0, sizeof *met);
    uint64_t rng = seed;
    for (int p = 0; p < n; p++)
        for (int k = 0; k < PIMG_DEG_KINDS; k++)
            for (int v = 0; v < (variants > 0 ? variants : 1); v++) {
                pimg_degradation d;
                pimg_degradation_random(k, &rng, &d); /* drawn for every photo: same draws per seed */
                if (use && !use[p])
                    continue;
                pimg_rgb8 deg, a;
                pimg_enhance_plan plan;
                if (pimg_degradation_apply(&photos[p], &d, &deg))
                    return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
                pimg_status st = pimg_enhance_plan_make_rgb8(m, &deg, &plan, err);
                if (st || rgb8_copy(&deg, &a)) {
                    free(deg.p);
                    return st ? st : pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
                }
                met->psnr_input[k] += capped(pimg_rgb8_psnr(&deg, &photos[p]));
                autocontrast(&a);
                met->psnr_auto[k] += capped(pimg_rgb8_psnr(&a, &photos[p]));
                int bad = pimg_enhance_apply_rgb8(&plan, &deg);
                met->psnr_pimg[k] += capped(pimg_rgb8_psnr(&deg, &photos[p]));
                met->n[k]++;
                free(deg.p);
                free(a.p);
                if (bad)
                    return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            }
    for (int k = 0; k < PIMG_DEG_KINDS; k++)
        if (met->n[k]) {
            met->psnr_input[k] /= met->n[k];
            met->psnr_auto[k] /= met->n[k];
            met->psnr_pimg[k] /= met->n[k];
        }
    return PIMG_OK;
}
