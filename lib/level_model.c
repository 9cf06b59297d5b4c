/* level_model.c — the learned tilt model: candidate features from the orientation histograms,
 * the softmax posterior over candidate angles, the decision, and the model file.
 *
 * Why a posterior rather than a peak: on photos without clear straight structure the evidence
 * is spread over several angles. The evaluation (and a seller) pays the absolute angle error,
 * and under absolute error the best single answer is the posterior's median; when even that is
 * too uncertain (little mass near it) the photo is left alone, because a level photo must not
 * be turned. The model file is JSON (weights, standardisation, rule) written with %.17g, so
 * training twice gives the same bytes; the model card (data, split, metrics, date) is a separate
 * JSON file beside it. */
#include "level.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "level_internal.h"

#define NB PIMG_LEVEL_UBINS
#define NF PIMG_LEVEL_NFEAT
#define NK PIMG_LEVEL_NCAND

/* Circular Gaussian smoothing with scipy's gaussian_filter1d kernel (radius 4σ + 0.5). */
static void smooth_wrap(const double *in, double sigma, double *out)
{
    int r = (int)(4.0 * sigma + 0.5);
    double k[2 * 40 + 1], ks = 0;
    if (r > 40)
        r = 40; /* sigma is 2 or 8 bins here */
    for (int d = -r; d <= r; d++)
        ks += k[d + r] = exp(-0.5 * d * d / (sigma * sigma));
    for (int i = 0; i < NB; i++) {
        double acc = 0;
        for (int d = -r; d <= r; d++)
            acc += k[d + r] * in[((i + d) % NB + NB) % NB];
        out[i] = acc / ks;
    }
}

/* Value at angle phi (degrees): phi lies on the boundary of two bins, average them. */
static double at(const double *s, double phi)
{
    int i = (int)lround((phi + 90.0) * 4.0);
    i = ((i % NB) + NB) % NB;
    return 0.5 * (s[(i - 1 + NB) % NB] + s[i]);
}

void pimg_level_features(const pimg_level_hists *h, double *feat)
{
    static const int chans[3] = {0, 2, 3};
    static const double gain[3] = {1.0, 30.0, 30.0}; /* line channels are small fractions */
    static const double nbr[6] = {-4, -3, -2, 2, 3, 4};
    double p[NB], s1[NB], s2[NB];
    for (int ci = 0; ci < 3; ci++) {
        int c = chans[ci];
        double sc = h->total[c] > 0 ? gain[ci] * NB / h->total[c] : 0;
        for (int b = 0; b < NB; b++)
            p[b] = h->h[c][b] * sc;
        smooth_wrap(p, 2.0, s1);
        smooth_wrap(p, 8.0, s2);
        for (int b = 0; b < NB; b++) {
            s1[b] = log1p(s1[b]);
            s2[b] = log1p(s2[b]);
        }
        for (int k = 0; k < NK; k++) {
            double th = pimg_level_cand_deg(k);
            double *f = feat + (size_t)k * NF + ci * 7;
            for (int fam = 0; fam < 2; fam++) {
                double phi = th + 90.0 * fam, v1 = at(s1, phi), nb = 0;
                for (int d = 0; d < 6; d++)
                    nb += at(s1, phi + nbr[d]);
                f[fam * 3 + 0] = v1;
                f[fam * 3 + 1] = at(s2, phi);
                f[fam * 3 + 2] = v1 - nb / 6.0;
            }
            f[6] = fmin(f[0], f[3]);
        }
    }
    for (int k = 0; k < NK; k++) {
        double th = pimg_level_cand_deg(k);
        feat[(size_t)k * NF + 21] = fabs(th) / 20.0;
        feat[(size_t)k * NF + 22] = fabs(th) < 1e-9 ? 1.0 : 0.0;
    }
}

void pimg_level_softmax(double *s)
{
    double mx = -INFINITY;
    for (int k = 0; k < NK; k++)
        mx = fmax(mx, s[k]);
    double z = 0;
    for (int k = 0; k < NK; k++)
        z += s[k] = exp(s[k] - mx);
    for (int k = 0; k < NK; k++)
        s[k] /= z;
}

void pimg_level_posterior(const pimg_level_model *m, const double *feat, double *post)
{
    for (int k = 0; k < NK; k++) {
        double s = 0;
        for (int j = 0; j < NF; j++)
            s += m->w[j] * (feat[(size_t)k * NF + j] - m->mean[j]) / m->scale[j];
        post[k] = s;
    }
    pimg_level_softmax(post);
}

void pimg_level_from_posterior(const double *post, double min_conf, double snap_deg, double *deg, double *conf)
{
    double c = 0;
    int med = NK - 1;
    for (int k = 0; k < NK; k++)
        if ((c += post[k]) >= 0.5) {
            med = k;
            break;
        }
    double mass = 0, sum = 0;
    for (int k = med - 4; k <= med + 4; k++) /* ±1° */
        if (k >= 0 && k < NK) {
            mass += post[k];
            sum += post[k] * pimg_level_cand_deg(k);
        }
    *conf = mass;
    *deg = 0.0;
    if (mass <= 0 || mass < min_conf)
        return;
    double a = sum / mass;
    if (fabs(a) >= snap_deg)
        *deg = a;
}

pimg_status pimg_level_estimate_model(const pimg_level_model *m, const pimg_tensor *t, double *deg,
                                      double *confidence, pimg_error *err)
{
    if (!m)
        return pimg_level_estimate(t, deg, confidence, err);
    pimg_level_hists *h = malloc(sizeof *h);
    double *feat = malloc(sizeof(double) * NK * NF);
    pimg_status st = PIMG_OK;
    if (!h || !feat) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = pimg_level_hists_compute(t, h, err)))
        goto out;
    double post[NK];
    pimg_level_features(h, feat);
    pimg_level_posterior(m, feat, post);
    pimg_level_from_posterior(post, m->min_conf, m->snap_deg, deg, confidence);
out:
    free(h);
    free(feat);
    return st;
}

/* ---- file ------------------------------------------------------------------------------- */

void pimg_level_card_path(const char *path, char *buf, size_t n) { pimg_card_path(path, ".model", buf, n); }

static cJSON *num_array(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        char s[40];
        snprintf(s, sizeof s, "%.17g", v[i]);
        cJSON_AddItemToArray(a, cJSON_CreateRaw(s));
    }
    return a;
}

static int read_array(const cJSON *o, const char *key, double *v, int n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
        return -1;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
            return -1;
        v[i++] = e->valuedouble;
    }
    return 0;
}

static pimg_status write_json(const cJSON *o, const char *path, pimg_error *err)
{
    char *txt = cJSON_Print(o);
    if (!txt)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    FILE *f = fopen(path, "w");
    int bad = !f || fputs(txt, f) < 0 || fputc('\n', f) == EOF;
    if (f && fclose(f))
        bad = 1;
    free(txt);
    if (bad)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot write", path);
    return PIMG_OK;
}

pimg_status pimg_level_model_save(const pimg_level_model *m, const char *path, const cJSON *card,
                                  pimg_error *err)
{
    /* The model file holds only what prediction needs (same bytes on every retrain); dates
     * and metrics go to the card. */
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    char s[40];
    cJSON_AddStringToObject(o, "model", "pimg level: softmax over candidate tilts");
    cJSON_AddNumberToObject(o, "features", NF);
    cJSON_AddNumberToObject(o, "candidates", NK);
    cJSON_AddItemToObject(o, "mean", num_array(m->mean, NF));
    cJSON_AddItemToObject(o, "scale", num_array(m->scale, NF));
    cJSON_AddItemToObject(o, "w", num_array(m->w, NF));
    snprintf(s, sizeof s, "%.17g", m->min_conf);
    cJSON_AddItemToObject(o, "min_conf", cJSON_CreateRaw(s));
    snprintf(s, sizeof s, "%.17g", m->snap_deg);
    cJSON_AddItemToObject(o, "snap_deg", cJSON_CreateRaw(s));
    pimg_status st = write_json(o, path, err);
    cJSON_Delete(o);
    if (st || !card)
        return st;
    char cp[4096];
    pimg_level_card_path(path, cp, sizeof cp);
    return write_json(card, cp, err);
}

pimg_status pimg_level_model_load(const char *path, pimg_level_model **out, pimg_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return pimg_error_set(err, PIMG_ERR_NOT_FOUND, "%s: no levelling model", path);
    if (sb.st_size <= 0 || sb.st_size > (1 << 22))
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: unexpected size", path);
    /* a file that is not JSON fails the checks below, with their message */
    cJSON *o = NULL;
    pimg_status rs = pimg_json_read(path, 1 << 22, &o, NULL);
    if (rs == PIMG_ERR_NOMEM)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    if (rs && rs != PIMG_ERR_BAD_INPUT)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot read", path);
    pimg_level_model *m = calloc(1, sizeof *m);
    const cJSON *wo = o, *mc = o ? cJSON_GetObjectItemCaseSensitive(o, "min_conf") : NULL;
    const cJSON *sd = o ? cJSON_GetObjectItemCaseSensitive(o, "snap_deg") : NULL;
    const cJSON *nf = wo ? cJSON_GetObjectItemCaseSensitive(wo, "features") : NULL;
    pimg_status st = PIMG_OK;
    if (!m)
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    else if (!cJSON_IsNumber(nf) || nf->valueint != NF || read_array(wo, "mean", m->mean, NF) ||
             read_array(wo, "scale", m->scale, NF) || read_array(wo, "w", m->w, NF) || !cJSON_IsNumber(mc) ||
             !cJSON_IsNumber(sd))
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: not a levelling model for %d features", path, NF);
    else {
        m->min_conf = mc->valuedouble;
        m->snap_deg = sd->valuedouble;
        for (int j = 0; j < NF && !st; j++)
            if (!(m->scale[j] > 0))
                st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: bad feature scale", path);
    }
    cJSON_Delete(o);
    if (st) {
        free(m);
        return st;
    }
    *out = m;
    return PIMG_OK;
}

void pimg_level_model_free(pimg_level_model *m) { free(m); }
