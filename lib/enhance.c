/* enhance.c — deciding and applying the adaptive correction: the model (defaults and JSON),
 * the plan built stage by stage on the analysis copy, and its full-resolution application.
 *
 * Order of the stages: denoise first (noise and impulses would bias every statistic after it),
 * then white balance, levels and gamma — fused into one per-channel lookup so the full image
 * is touched by a single maplut — and last an optional tiled CLAHE on lightness. Every stage
 * has a dead zone: a measured defect too small to be sure of is left alone, which is what keeps
 * good photos essentially unchanged. */
#include "enhance.h"
#include "enhance_model.h"
#include "fileio.h"
#include "image_vips.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- model ---- */

void pimg_enhance_model_defaults(pimg_enhance_model *m)
{
    memset(m, 0, sizeof *m);
    m->impulse_min = 0.004;
    m->impulse_thr = 50;
    m->noise_min = 6.0;
    m->range_k = 1.0;
    m->wb_dead = 0.05;
    m->wb_max = 0.4;
    m->black_min = 0.25;
    m->white_max = 0.75;
    m->tone_dead = 0.03;
    m->clahe_c0 = 0.3;
    m->clahe_k = 0.0;
    m->clahe_max = 0.0;
    m->clahe_clip = 2.0;
}

double pimg_svr_predict(const pimg_svr *s, const double *x)
{
    double z[PIMG_ENH_NF], sum = 0;
    for (int k = 0; k < PIMG_ENH_NF; k++)
        z[k] = (x[k] - s->mean[k]) / s->scale[k];
    for (int i = 0; i < s->n_sv; i++) {
        const double *v = s->sv + (size_t)i * PIMG_ENH_NF;
        double d = 0;
        for (int k = 0; k < PIMG_ENH_NF; k++)
            d += (z[k] - v[k]) * (z[k] - v[k]);
        sum += s->coef[i] * exp(-s->gamma * d);
    }
    return sum - s->rho;
}

static cJSON *svr_to_json(const pimg_svr *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "gamma", s->gamma);
    cJSON_AddNumberToObject(o, "rho", s->rho);
    cJSON_AddItemToObject(o, "mean", cJSON_CreateDoubleArray(s->mean, PIMG_ENH_NF));
    cJSON_AddItemToObject(o, "scale", cJSON_CreateDoubleArray(s->scale, PIMG_ENH_NF));
    cJSON_AddItemToObject(o, "coef", cJSON_CreateDoubleArray(s->coef, s->n_sv));
    cJSON_AddItemToObject(o, "sv", cJSON_CreateDoubleArray(s->sv, s->n_sv * PIMG_ENH_NF));
    return o;
}

static int read_array(const cJSON *a, double *out, int n)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
        return -1;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (!cJSON_IsNumber(e))
            return -1;
        out[i++] = e->valuedouble;
    }
    return 0;
}

static int svr_from_json(const cJSON *o, pimg_svr *s)
{
    memset(s, 0, sizeof *s);
    const cJSON *g = cJSON_GetObjectItem(o, "gamma"), *r = cJSON_GetObjectItem(o, "rho");
    const cJSON *coef = cJSON_GetObjectItem(o, "coef");
    if (!cJSON_IsNumber(g) || !cJSON_IsNumber(r) || !cJSON_IsArray(coef))
        return -1;
    s->gamma = g->valuedouble;
    s->rho = r->valuedouble;
    s->n_sv = cJSON_GetArraySize(coef);
    if (s->n_sv <= 0 || s->n_sv > 100000)
        return -1;
    s->coef = malloc(sizeof(double) * s->n_sv);
    s->sv = malloc(sizeof(double) * s->n_sv * PIMG_ENH_NF);
    if (!s->coef || !s->sv || read_array(coef, s->coef, s->n_sv) ||
        read_array(cJSON_GetObjectItem(o, "sv"), s->sv, s->n_sv * PIMG_ENH_NF) ||
        read_array(cJSON_GetObjectItem(o, "mean"), s->mean, PIMG_ENH_NF) ||
        read_array(cJSON_GetObjectItem(o, "scale"), s->scale, PIMG_ENH_NF))
        return -1;
    for (int k = 0; k < PIMG_ENH_NF; k++)
        if (!(s->scale[k] > 0))
            return -1;
    return 0;
}

static void svr_clear(pimg_svr *s)
{
    free(s->sv);
    free(s->coef);
    memset(s, 0, sizeof *s);
}

void pimg_enhance_model_clear(pimg_enhance_model *m)
{
    svr_clear(&m->wb[0]);
    svr_clear(&m->wb[1]);
    for (int k = 0; k < 3; k++)
        svr_clear(&m->tone[k]);
    m->has_wb = m->has_tone = 0;
}

cJSON *pimg_enhance_model_to_json(const pimg_enhance_model *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "version", 1);
    cJSON *d = cJSON_AddObjectToObject(o, "denoise");
    cJSON_AddNumberToObject(d, "impulse_min", m->impulse_min);
    cJSON_AddNumberToObject(d, "impulse_thr", m->impulse_thr);
    cJSON_AddNumberToObject(d, "noise_min", m->noise_min);
    cJSON_AddNumberToObject(d, "range_k", m->range_k);
    cJSON *w = cJSON_AddObjectToObject(o, "white_balance");
    cJSON_AddNumberToObject(w, "dead", m->wb_dead);
    cJSON_AddNumberToObject(w, "max", m->wb_max);
    if (m->has_wb) {
        cJSON_AddItemToObject(w, "svr_r", svr_to_json(&m->wb[0]));
        cJSON_AddItemToObject(w, "svr_b", svr_to_json(&m->wb[1]));
    }
    cJSON *l = cJSON_AddObjectToObject(o, "tone");
    cJSON_AddNumberToObject(l, "dead", m->tone_dead);
    cJSON_AddNumberToObject(l, "black_min", m->black_min);
    cJSON_AddNumberToObject(l, "white_max", m->white_max);
    if (m->has_tone) {
        cJSON_AddItemToObject(l, "svr_black_to", svr_to_json(&m->tone[0]));
        cJSON_AddItemToObject(l, "svr_white_to", svr_to_json(&m->tone[1]));
        cJSON_AddItemToObject(l, "svr_log_gamma", svr_to_json(&m->tone[2]));
    }
    cJSON *c = cJSON_AddObjectToObject(o, "clahe");
    cJSON_AddNumberToObject(c, "c0", m->clahe_c0);
    cJSON_AddNumberToObject(c, "k", m->clahe_k);
    cJSON_AddNumberToObject(c, "max", m->clahe_max);
    cJSON_AddNumberToObject(c, "clip", m->clahe_clip);
    return o;
}

static void get_num(const cJSON *o, const char *key, double *v)
{
    const cJSON *e = cJSON_GetObjectItem(o, key);
    if (cJSON_IsNumber(e))
        *v = e->valuedouble;
}

int pimg_enhance_model_from_json(const cJSON *j, pimg_enhance_model *m)
{
    pimg_enhance_model_defaults(m);
    if (!cJSON_IsObject(j))
        return -1;
    const cJSON *d = cJSON_GetObjectItem(j, "denoise"), *w = cJSON_GetObjectItem(j, "white_balance");
    const cJSON *l = cJSON_GetObjectItem(j, "tone");
    const cJSON *c = cJSON_GetObjectItem(j, "clahe");
    double thr = m->impulse_thr;
    get_num(d, "impulse_min", &m->impulse_min);
    get_num(d, "impulse_thr", &thr);
    m->impulse_thr = (int)thr;
    get_num(d, "noise_min", &m->noise_min);
    get_num(d, "range_k", &m->range_k);
    get_num(w, "dead", &m->wb_dead);
    get_num(w, "max", &m->wb_max);
    get_num(l, "dead", &m->tone_dead);
    get_num(l, "black_min", &m->black_min);
    get_num(l, "white_max", &m->white_max);
    get_num(c, "c0", &m->clahe_c0);
    get_num(c, "k", &m->clahe_k);
    get_num(c, "max", &m->clahe_max);
    get_num(c, "clip", &m->clahe_clip);
    const cJSON *sr = cJSON_GetObjectItem(w, "svr_r"), *sb = cJSON_GetObjectItem(w, "svr_b");
    if (sr && sb) {
        if (svr_from_json(sr, &m->wb[0]) || svr_from_json(sb, &m->wb[1]))
            goto bad;
        m->has_wb = 1;
    }
    static const char *tone_keys[3] = {"svr_black_to", "svr_white_to", "svr_log_gamma"};
    int nt = 0;
    for (int k = 0; k < 3; k++) {
        const cJSON *st = cJSON_GetObjectItem(l, tone_keys[k]);
        if (st && svr_from_json(st, &m->tone[k]))
            goto bad;
        nt += st != NULL;
    }
    if (nt != 0 && nt != 3)
        goto bad;
    m->has_tone = nt == 3;
    return 0;
bad:
    pimg_enhance_model_clear(m);
    return -1;
}

pimg_status pimg_enhance_model_load(const char *path, pimg_enhance_model **out, pimg_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return pimg_error_set(err, PIMG_ERR_NOT_FOUND, "%s: no enhancement model (built-in defaults)", path);
    if (sb.st_size <= 0 || sb.st_size > 64L * 1024 * 1024)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: bad size", path);
    cJSON *j = NULL;
    pimg_status rs = pimg_json_read(path, 64L * 1024 * 1024, &j, NULL);
    if (rs == PIMG_ERR_NOMEM)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    if (rs && rs != PIMG_ERR_BAD_INPUT)
        return pimg_error_set(err, PIMG_ERR_NOT_FOUND, "%s: no enhancement model (built-in defaults)", path);
    /* not JSON: j stays NULL and the check below reports it */
    pimg_enhance_model *m = calloc(1, sizeof *m);
    if (!m) {
        cJSON_Delete(j);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    int bad = !j || pimg_enhance_model_from_json(j, m);
    cJSON_Delete(j);
    if (bad) {
        free(m);
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: not a valid enhancement model", path);
    }
    *out = m;
    return PIMG_OK;
}

void pimg_enhance_model_free(pimg_enhance_model *m)
{
    if (!m)
        return;
    pimg_enhance_model_clear(m);
    free(m);
}

/* ---- plan ---- */

void pimg_enhance_build_lut(const double gain[3], double black, double white, double black_to,
                            double white_to, double gamma, uint8_t lut[3][256])
{
    double span = white - black > 0.05 ? white - black : 0.05;
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            double g = gain[c], x;
            if (g < 1 && v >= 250) {
                /* A clipped channel says only "at least this bright": keep clipped highlights
                 * white instead of tinting them by the gain. */
                double t = (v - 250) / 5.0;
                x = (1 - t) * (250 * g / 255.0) + t;
            } else {
                x = fmin(1.0, v / 255.0 * g);
            }
            /* Linear below the black point, so that black == black_to, white == white_to,
             * gamma == 1 is exactly the identity (the 0.5 % tails are not clipped). */
            double y = (x - black) / span;
            if (gamma != 1.0 && y > 0)
                y = pow(y, gamma);
            y = black_to + y * (white_to - black_to);
            int o = (int)lround(255 * y);
            lut[c][v] = (uint8_t)(o < 0 ? 0 : o > 255 ? 255 : o);
        }
}

int pimg_enhance_plan_denoise(const pimg_enhance_model *m, const pimg_quality *q, pimg_enhance_plan *plan,
                              pimg_rgb8 *img)
{
    pimg_denoise_params *d = &plan->dn;
    d->impulse = q->impulse_share > m->impulse_min;
    d->impulse_thr = m->impulse_thr;
    d->range_h = q->noise > m->noise_min ? m->range_k * q->noise * 3.0 : 0.0;
    plan->denoise = d->impulse || d->range_h > 0;
    if (!plan->denoise)
        return 0;
    pimg_denoise_prepare(d);
    return img ? pimg_denoise_rgb8(img, d) : 0;
}

void pimg_enhance_plan_wb(const pimg_enhance_model *m, pimg_enhance_plan *plan, pimg_rgb8 *img)
{
    plan->gain[0] = plan->gain[1] = plan->gain[2] = 1.0;
    if (!m->has_wb)
        return;
    double f[2][PIMG_ENH_NF];
    pimg_enhance_wb_features(img, f);
    int any = 0;
    for (int k = 0; k < 2; k++) {
        double l = pimg_svr_predict(&m->wb[k], f[k]);
        if (fabs(l) < m->wb_dead)
            continue;
        l = l > m->wb_max ? m->wb_max : l < -m->wb_max ? -m->wb_max : l;
        plan->gain[k ? 2 : 0] = exp(l);
        any = 1;
    }
    if (any) {
        uint8_t lut[3][256];
        pimg_enhance_build_lut(plan->gain, 0, 1, 0, 1, 1, lut);
        pimg_lut_rgb8(img, lut);
    }
}

static void tone_identity(pimg_enhance_plan *plan)
{
    plan->black = plan->black_to = 0;
    plan->white = plan->white_to = 1;
    plan->gamma = 1;
}

/* Largest change (0..1) the tone curve makes to any level. */
static double tone_deviation(const pimg_enhance_plan *plan, uint8_t lut[3][256])
{
    static const double one[3] = {1, 1, 1};
    pimg_enhance_build_lut(one, plan->black, plan->white, plan->black_to, plan->white_to, plan->gamma, lut);
    int dev = 0;
    for (int v = 0; v < 256; v++)
        dev = abs(lut[1][v] - v) > dev ? abs(lut[1][v] - v) : dev;
    return dev / 255.0;
}

void pimg_enhance_plan_tone(const pimg_enhance_model *m, pimg_enhance_plan *plan, pimg_rgb8 *img)
{
    double f[PIMG_ENH_NF] = {0}, lo, hi;
    tone_identity(plan);
    pimg_enhance_tone_features(img, f, &lo, &hi);
    if (hi - lo < 0.05)
        return; /* a flat field: nothing to stretch */
    plan->black = lo;
    plan->white = hi;
    if (m->has_tone) {
        plan->black_to = pimg_svr_predict(&m->tone[0], f);
        plan->white_to = pimg_svr_predict(&m->tone[1], f);
        double lg = pimg_svr_predict(&m->tone[2], f);
        plan->gamma = exp(lg < -1.2 ? -1.2 : lg > 1.2 ? 1.2 : lg);
        if (plan->white_to - plan->black_to < 0.2) {
            tone_identity(plan);
            return;
        }
    } else {
        plan->black_to = lo > m->black_min ? 0 : lo;
        plan->white_to = hi < m->white_max ? 1 : hi;
    }
    uint8_t lut[3][256];
    if (tone_deviation(plan, lut) < (m->has_tone ? m->tone_dead : 0.01)) {
        tone_identity(plan);
        return;
    }
    pimg_lut_rgb8(img, lut);
}

void pimg_enhance_plan_finish(const pimg_enhance_model *m, pimg_enhance_plan *plan, pimg_rgb8 *img)
{
    pimg_enhance_build_lut(plan->gain, plan->black, plan->white, plan->black_to, plan->white_to, plan->gamma,
                           plan->lut);
    plan->tone = 0;
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            plan->tone |= plan->lut[c][v] != v;
    plan->clahe = 0;
    if (m->clahe_max > 0 && img) {
        pimg_quality q;
        pimg_quality_measure_rgb8(img, &q);
        double s = m->clahe_k * (m->clahe_c0 - q.contrast);
        s = s < 0 ? 0 : s > m->clahe_max ? m->clahe_max : s;
        if (s >= 0.02) {
            plan->clahe = 1;
            plan->clahe_clip = m->clahe_clip;
            pimg_clahe_build(img, m->clahe_clip, s, &plan->cl);
        }
    }
    plan->active = plan->denoise || plan->tone || plan->clahe;
}

/* The plan for an 8-bit copy whose scores q were measured already. */
static pimg_status plan_from(const pimg_enhance_model *m, const pimg_rgb8 *src, const pimg_quality *q,
                             pimg_enhance_plan *plan, pimg_error *err)
{
    pimg_enhance_model def;
    if (!m) {
        pimg_enhance_model_defaults(&def);
        m = &def;
    }
    memset(plan, 0, sizeof *plan);
    pimg_rgb8 img = {src->w, src->h, malloc((size_t)src->w * src->h * 3)};
    if (!img.p)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    memcpy(img.p, src->p, (size_t)src->w * src->h * 3);
    if (pimg_enhance_plan_denoise(m, q, plan, &img)) {
        free(img.p);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    pimg_enhance_plan_wb(m, plan, &img);
    pimg_enhance_plan_tone(m, plan, &img);
    pimg_enhance_plan_finish(m, plan, &img);
    free(img.p);
    return PIMG_OK;
}

pimg_status pimg_enhance_plan_make_rgb8(const pimg_enhance_model *m, const pimg_rgb8 *img,
                                        pimg_enhance_plan *plan, pimg_error *err)
{
    pimg_quality q;
    pimg_quality_measure_rgb8(img, &q);
    return plan_from(m, img, &q, plan, err);
}

pimg_status pimg_enhance_analyse(const pimg_enhance_model *m, const pimg_tensor *t, pimg_quality *q,
                                 pimg_enhance_plan *plan, pimg_error *err)
{
    if (!t || t->c != 3)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "quality needs a 3-channel tensor");
    pimg_rgb8 img;
    if (pimg_rgb8_from_tensor(t, &img))
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    pimg_quality_measure_rgb8(&img, q);
    pimg_status st = plan ? plan_from(m, &img, q, plan, err) : PIMG_OK;
    free(img.p);
    return st;
}

static double r4(double v) { return round(v * 1e4) / 1e4; }

void pimg_enhance_plan_to_json(const pimg_enhance_plan *plan, cJSON *obj)
{
    cJSON_AddBoolToObject(obj, "active", plan->active);
    if (plan->denoise) {
        cJSON *d = cJSON_AddObjectToObject(obj, "denoise");
        cJSON_AddBoolToObject(d, "impulse_median", plan->dn.impulse);
        if (plan->dn.impulse)
            cJSON_AddNumberToObject(d, "impulse_threshold", plan->dn.impulse_thr);
        cJSON_AddNumberToObject(d, "bilateral_range", r4(plan->dn.range_h));
    }
    if (plan->gain[0] != 1.0 || plan->gain[2] != 1.0) {
        double g[3] = {r4(plan->gain[0]), r4(plan->gain[1]), r4(plan->gain[2])};
        cJSON_AddItemToObject(obj, "white_balance_gains", cJSON_CreateDoubleArray(g, 3));
    }
    if (plan->black != 0 || plan->white != 1 || plan->black_to != 0 || plan->white_to != 1) {
        cJSON *l = cJSON_AddObjectToObject(obj, "levels");
        cJSON_AddNumberToObject(l, "black", r4(plan->black));
        cJSON_AddNumberToObject(l, "white", r4(plan->white));
        cJSON_AddNumberToObject(l, "black_to", r4(plan->black_to));
        cJSON_AddNumberToObject(l, "white_to", r4(plan->white_to));
    }
    if (plan->gamma != 1.0)
        cJSON_AddNumberToObject(obj, "gamma", r4(plan->gamma));
    if (plan->clahe) {
        cJSON *c = cJSON_AddObjectToObject(obj, "clahe");
        cJSON_AddNumberToObject(c, "strength", r4(plan->cl.strength));
        cJSON_AddNumberToObject(c, "clip_limit", r4(plan->clahe_clip));
        cJSON_AddNumberToObject(c, "tiles_x", plan->cl.tiles_x);
        cJSON_AddNumberToObject(c, "tiles_y", plan->cl.tiles_y);
    }
}

int pimg_enhance_plan_steps(const pimg_enhance_plan *plan, const char **names, int max)
{
    int n = 0;
    if (plan->denoise && n < max)
        names[n++] = "denoise";
    if ((plan->gain[0] != 1.0 || plan->gain[2] != 1.0) && n < max)
        names[n++] = "white_balance";
    if ((plan->black != 0 || plan->white != 1 || plan->black_to != 0 || plan->white_to != 1 || plan->gamma != 1.0) &&
        n < max)
        names[n++] = "tone";
    if (plan->clahe && n < max)
        names[n++] = "contrast";
    return n;
}

int pimg_enhance_apply_rgb8(const pimg_enhance_plan *plan, pimg_rgb8 *img)
{
    if (plan->denoise && pimg_denoise_rgb8(img, &plan->dn))
        return -1;
    if (plan->tone)
        pimg_lut_rgb8(img, plan->lut);
    if (plan->clahe)
        pimg_clahe_rect(&plan->cl, img->w, img->h, 0, 0, img->w, img->h, img->p, (size_t)img->w * 3, img->p,
                        (size_t)img->w * 3);
    return 0;
}

/* ---- full resolution ---- */

/* Denoise region: reads the padded input (margin on every side), writes the output rectangle. */
static int denoise_gen(VipsRegion *out_region, void *seq, void *a, void *b, gboolean *stop)
{
    (void)a;
    (void)stop;
    VipsRegion *ir = seq;
    const pimg_denoise_params *p = b;
    const VipsRect *r = &out_region->valid;
    const int m = PIMG_DENOISE_MARGIN;
    VipsRect need = {r->left, r->top, r->width + 2 * m, r->height + 2 * m};
    if (vips_region_prepare(ir, &need))
        return -1;
    uint8_t *scratch = g_try_malloc((size_t)(r->width + 4) * (r->height + 4) * 3);
    if (!scratch) {
        vips_error("pimg", "out of memory");
        return -1;
    }
    pimg_denoise_rect((const uint8_t *)VIPS_REGION_ADDR(ir, r->left + m, r->top + m), VIPS_REGION_LSKIP(ir),
                      (uint8_t *)VIPS_REGION_ADDR(out_region, r->left, r->top), VIPS_REGION_LSKIP(out_region),
                      r->width, r->height, p, scratch);
    g_free(scratch);
    return 0;
}

static int clahe_gen(VipsRegion *out_region, void *seq, void *a, void *b, gboolean *stop)
{
    (void)stop;
    VipsRegion *ir = seq;
    const VipsImage *in = a;
    const pimg_clahe *c = b;
    const VipsRect *r = &out_region->valid;
    if (vips_region_prepare(ir, r))
        return -1;
    pimg_clahe_rect(c, in->Xsize, in->Ysize, r->left, r->top, r->width, r->height,
                    (const uint8_t *)VIPS_REGION_ADDR(ir, r->left, r->top), VIPS_REGION_LSKIP(ir),
                    (uint8_t *)VIPS_REGION_ADDR(out_region, r->left, r->top), VIPS_REGION_LSKIP(out_region));
    return 0;
}

/* A lazy image computed from `in` region by region with gen; params (size bytes) are copied and
 * live as long as the result. Consumes the caller's reference to in. */
static VipsImage *custom_op(VipsImage *in, int w, int h, VipsGenerateFn gen, const void *params,
                            size_t size)
{
    VipsImage *out = vips_image_new();
    if (vips_image_pipelinev(out, VIPS_DEMAND_STYLE_FATSTRIP, in, NULL)) {
        g_object_unref(out);
        g_object_unref(in);
        return NULL;
    }
    out->Xsize = w;
    out->Ysize = h;
    void *copy = vips_malloc(VIPS_OBJECT(out), size);
    memcpy(copy, params, size);
    /* `in` must outlive every region of out: drop it when out closes. */
    vips_object_local(out, in);
    if (vips_image_generate(out, vips_start_one, gen, vips_stop_one, in, copy)) {
        g_object_unref(out);
        return NULL;
    }
    return out;
}

pimg_status pimg_enhance_apply(pimg_image *img, const pimg_enhance_plan *plan, pimg_error *err)
{
    if (!plan->active)
        return PIMG_OK;
    VipsImage *in, *cur, *t;
    pimg_status st = pimg_image_vips(img, &in, err);
    if (st)
        return st;
    cur = in;
    g_object_ref(cur);
    int w = cur->Xsize, h = cur->Ysize;
    if (plan->denoise) {
        const int m = PIMG_DENOISE_MARGIN;
        if (vips_embed(cur, &t, m, m, w + 2 * m, h + 2 * m, "extend", VIPS_EXTEND_COPY, NULL))
            goto vips_fail;
        g_object_unref(cur);
        if (!(cur = custom_op(t, w, h, denoise_gen, &plan->dn, sizeof plan->dn)))
            return pimg_error_vips(err, PIMG_ERR_INTERNAL, "denoise");
    }
    if (plan->tone) {
        uint8_t buf[256 * 3];
        for (int v = 0; v < 256; v++)
            for (int c = 0; c < 3; c++)
                buf[v * 3 + c] = plan->lut[c][v];
        VipsImage *lut = vips_image_new_from_memory_copy(buf, sizeof buf, 256, 1, 3, VIPS_FORMAT_UCHAR);
        if (!lut)
            goto vips_fail;
        int r = vips_maplut(cur, &t, lut, NULL);
        g_object_unref(lut);
        if (r)
            goto vips_fail;
        g_object_unref(cur);
        cur = t;
    }
    if (plan->clahe) {
        if (!(cur = custom_op(cur, w, h, clahe_gen, &plan->cl, sizeof plan->cl)))
            return pimg_error_vips(err, PIMG_ERR_INTERNAL, "clahe");
    }
    pimg_image_set_vips(img, cur);
    return PIMG_OK;
vips_fail:
    g_object_unref(cur);
    return pimg_error_vips(err, PIMG_ERR_INTERNAL, "enhance");
}

void pimg_enhance_plan_clear(pimg_enhance_plan *plan)
{
    if (plan)
        memset(plan, 0, sizeof *plan);
}
