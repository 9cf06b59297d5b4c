/* quality.c — measuring a photo: exposure, contrast, colour cast, noise, impulses, sharpness,
 * and the feature vectors the learned white balance and exposure regressions read.
 *
 * Everything runs on the 8-bit analysis copy (at most 1024 px), so cost does not grow with the
 * photo's megapixels. Statistics that a cast or a clipped highlight would bias (grey world,
 * shades of grey, grey edge) skip pixels where any channel is near 0 or 255. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "enhance.h"
#include "enhance_model.h"

static inline int luma8(const uint8_t *p) { return (77 * p[0] + 150 * p[1] + 29 * p[2] + 128) >> 8; }

static double clampd(double v, double lim) { return v > lim ? lim : v < -lim ? -lim : v; }

/* Pixel step of the statistics: every pixel up to ~400k pixels (the sizes the model was fitted
 * at), a regular sub-grid above, which keeps the analysis of a 1024 px copy within a few ms
 * and leaves the statistics (ratios, percentiles, medians) unchanged in expectation. */
static int sample_step(int w, int h)
{
    double r = sqrt((double)w * h / 400000.0);
    return r < 1.2 ? 1 : r < 2.5 ? 2 : (int)(r + 0.5);
}

/* Value below which a share frac of the histogram's n counts lies. */
static int hist_pct(const long *hist, int bins, long n, double frac)
{
    long acc = 0, want = (long)ceil(frac * n);
    if (want < 1)
        want = 1;
    for (int b = 0; b < bins; b++) {
        acc += hist[b];
        if (acc >= want)
            return b;
    }
    return bins - 1;
}

void pimg_quality_measure_rgb8(const pimg_rgb8 *img, pimg_quality *q)
{
    memset(q, 0, sizeof *q);
    int w = img->w, h = img->h;
    long n = (long)w * h;
    if (n <= 0)
        return;
    long hl[256], hc[3][256];
    memset(hl, 0, sizeof hl);
    memset(hc, 0, sizeof hc);
    double lsum = 0, p6[3] = {0}, wsum[3] = {0};
    long nw = 0;
    const int step = sample_step(w, h);
    n = 0;
    for (int y = 0; y < h; y += step)
        for (int x = 0; x < w; x += step) {
        const uint8_t *p = img->p + ((size_t)y * w + x) * 3;
        n++;
        int l = luma8(p);
        hl[l]++;
        lsum += l;
        for (int c = 0; c < 3; c++)
            hc[c][p[c]]++;
        if (p[0] > 5 && p[1] > 5 && p[2] > 5 && p[0] < 250 && p[1] < 250 && p[2] < 250) {
            for (int c = 0; c < 3; c++) {
                double v = p[c] / 255.0, v2 = v * v;
                p6[c] += v2 * v2 * v2;
                wsum[c] += v;
            }
            nw++;
        }
    }
    q->brightness = lsum / n / 255.0;
    q->exposure = hist_pct(hl, 256, n, 0.5) / 255.0;
    q->contrast = (hist_pct(hl, 256, n, 0.95) - hist_pct(hl, 256, n, 0.05)) / 255.0;
    for (int c = 0; c < 3; c++) {
        q->lo[c] = hist_pct(hc[c], 256, n, 0.005) / 255.0;
        q->hi[c] = hist_pct(hc[c], 256, n, 0.995) / 255.0;
    }
    if (nw > 0) {
        double g = pow(p6[1] / nw, 1.0 / 6) + 1e-3;
        q->cast_rg = log((pow(p6[0] / nw, 1.0 / 6) + 1e-3) / g);
        q->cast_bg = log((pow(p6[2] / nw, 1.0 / 6) + 1e-3) / g);
    }
    /* Noise: residual against the 4-neighbour mean, per channel, on interior pixels that are
     * neither impulses nor near clipping (clipping truncates the noise it would measure).
     * Median of |residual| -> sigma for Gaussian noise (0.6745 MAD, 1.118 for the mean's own
     * variance). Texture also leaves residuals; the decision thresholds are fitted with that. */
    long rh[1021];
    memset(rh, 0, sizeof rh);
    long nr = 0, nimp = 0, ninner = 0;
    double lap = 0, lap2 = 0;
    size_t st = (size_t)w * 3;
    for (int y = 1; y < h - 1; y += step)
        for (int x = 1; x < w - 1; x += step) {
            const uint8_t *c = img->p + (size_t)y * st + (size_t)x * 3;
            ninner++;
            double l4 = 4.0 * luma8(c) - luma8(c - 3) - luma8(c + 3) - luma8(c - st) - luma8(c + st);
            lap += l4 / 255.0;
            lap2 += (l4 / 255.0) * (l4 / 255.0);
            if (pimg_is_impulse(c, st, 50)) {
                nimp++;
                continue;
            }
            for (int k = 0; k < 3; k++) {
                int v = c[k], a = c[k - 3], b = c[k + 3], u = c[k - st], d = c[k + st];
                if (v < 3 || v > 252 || a < 3 || a > 252 || b < 3 || b > 252 || u < 3 || u > 252 || d < 3 ||
                    d > 252)
                    continue;
                rh[abs(4 * v - a - b - u - d)]++;
                nr++;
            }
        }
    if (nr > 0)
        q->noise = hist_pct(rh, 1021, nr, 0.5) / 4.0 / 0.6745 / 1.118;
    if (ninner > 0) {
        q->impulse_share = (double)nimp / ninner;
        q->sharpness = lap2 / ninner - (lap / ninner) * (lap / ninner);
    }
}

static double r4(double v) { return round(v * 1e4) / 1e4; }

void pimg_quality_to_json(const pimg_quality *q, cJSON *obj)
{
    cJSON_AddNumberToObject(obj, "brightness", r4(q->brightness));
    cJSON_AddNumberToObject(obj, "exposure", r4(q->exposure));
    cJSON_AddNumberToObject(obj, "contrast", r4(q->contrast));
    cJSON_AddNumberToObject(obj, "sharpness", r4(q->sharpness));
    cJSON_AddNumberToObject(obj, "noise", r4(q->noise));
    cJSON_AddNumberToObject(obj, "impulse_share", r4(q->impulse_share));
    cJSON *cast = cJSON_AddObjectToObject(obj, "cast");
    if (cast) {
        cJSON_AddNumberToObject(cast, "log_rg", r4(q->cast_rg));
        cJSON_AddNumberToObject(cast, "log_bg", r4(q->cast_bg));
    }
    double lo[3], hi[3];
    for (int c = 0; c < 3; c++) {
        lo[c] = r4(q->lo[c]);
        hi[c] = r4(q->hi[c]);
    }
    cJSON_AddItemToObject(obj, "black_rgb", cJSON_CreateDoubleArray(lo, 3));
    cJSON_AddItemToObject(obj, "white_rgb", cJSON_CreateDoubleArray(hi, 3));
}

/* ---- features of the learned regressions ---- */

void pimg_enhance_wb_features(const pimg_rgb8 *img, double f[2][PIMG_ENH_NF])
{
    int w = img->w, h = img->h;
    long n = 0, nw = 0, ne = 0;
    double mean[3] = {0}, p6[3] = {0}, edge[3] = {0}, clip[3] = {0};
    long hist[3][256];
    memset(hist, 0, sizeof hist);
    size_t st = (size_t)w * 3;
    const int step = sample_step(w, h);
    for (int y = 0; y < h; y += step)
        for (int x = 0; x < w; x += step) {
            const uint8_t *p = img->p + (size_t)y * st + (size_t)x * 3;
            n++;
            int ok = p[0] > 5 && p[1] > 5 && p[2] > 5 && p[0] < 250 && p[1] < 250 && p[2] < 250;
            for (int c = 0; c < 3; c++) {
                hist[c][p[c]]++;
                clip[c] += p[c] >= 250;
            }
            if (!ok)
                continue;
            nw++;
            for (int c = 0; c < 3; c++) {
                double v = p[c] / 255.0, v2 = v * v;
                mean[c] += v;
                p6[c] += v2 * v2 * v2;
            }
            if (x + 1 < w && y + 1 < h) {
                const uint8_t *r = p + 3, *d = p + st;
                if (r[0] > 5 && r[1] > 5 && r[2] > 5 && r[0] < 250 && r[1] < 250 && r[2] < 250 && d[0] > 5 &&
                    d[1] > 5 && d[2] > 5 && d[0] < 250 && d[1] < 250 && d[2] < 250) {
                    for (int c = 0; c < 3; c++)
                        edge[c] += abs(r[c] - p[c]) + abs(d[c] - p[c]);
                    ne++;
                }
            }
        }
    /* The border ring: on a plain product shot it is the backdrop, the best grey reference. */
    int ring = (w < h ? w : h) / 25;
    if (ring < 2)
        ring = 2;
    long bh[3][256], bl[256], nb = 0;
    memset(bh, 0, sizeof bh);
    memset(bl, 0, sizeof bl);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (x == ring && y >= ring && y < h - ring && w - ring > ring)
                x = w - ring; /* skip the interior of the row */
            const uint8_t *p = img->p + (size_t)y * st + (size_t)x * 3;
            for (int c = 0; c < 3; c++)
                bh[c][p[c]]++;
            bl[luma8(p)]++;
            nb++;
        }
    double border[3], hi[3];
    for (int c = 0; c < 3; c++) {
        border[c] = hist_pct(bh[c], 256, nb, 0.5) + 1.0;
        hi[c] = hist_pct(hist[c], 256, n, 0.995) + 1.0;
        mean[c] = nw ? mean[c] / nw + 1e-3 : 1.0;
        p6[c] = nw ? pow(p6[c] / nw, 1.0 / 6) + 1e-3 : 1.0;
        edge[c] = ne ? edge[c] / ne + 0.5 : 1.0;
        clip[c] /= n > 0 ? n : 1;
    }
    int bmed = hist_pct(bl, 256, nb, 0.5);
    double mad = 0;
    for (int b = 0; b < 256; b++)
        mad += (double)bl[b] * abs(b - bmed);
    double plain = nb ? mad / nb / 255.0 : 1.0;
    /* Bright-pixel ratio: the brightest unclipped decile, usually the least coloured light. */
    long lh[256];
    memset(lh, 0, sizeof lh);
    for (int y = 0; y < h; y += step)
        for (int x = 0; x < w; x += step) {
            const uint8_t *p = img->p + (size_t)y * st + (size_t)x * 3;
            if (p[0] < 250 && p[1] < 250 && p[2] < 250)
                lh[luma8(p)]++;
        }
    long nu = 0;
    for (int b = 0; b < 256; b++)
        nu += lh[b];
    int lcut = nu ? hist_pct(lh, 256, nu, 0.9) : 255;
    double bright[3] = {1, 1, 1};
    for (int y = 0; y < h; y += step)
        for (int x = 0; x < w; x += step) {
            const uint8_t *p = img->p + (size_t)y * st + (size_t)x * 3;
            if (p[0] < 250 && p[1] < 250 && p[2] < 250 && luma8(p) >= lcut)
                for (int c = 0; c < 3; c++)
                    bright[c] += p[c];
        }
    for (int k = 0; k < 2; k++) {
        int c = k ? 2 : 0, o = k ? 0 : 2;
        double *v = f[k];
        memset(v, 0, sizeof(double) * PIMG_ENH_NF);
        /* Log ratios are clamped: a near-black channel would otherwise give huge outliers that
         * swamp the regression's feature scaling. */
        v[0] = clampd(log(mean[c] / mean[1]), 0.7);
        v[1] = clampd(log(p6[c] / p6[1]), 0.7);
        v[2] = clampd(log(edge[c] / edge[1]), 0.7);
        v[3] = clampd(log(hi[c] / hi[1]), 0.7);
        v[4] = clampd(log(border[c] / border[1]), 0.7) * (bmed / 255.0);
        v[5] = plain;
        v[6] = clip[c] - clip[1];
        v[7] = clip[1];
        v[8] = clampd(log(mean[o] / mean[1]), 0.7);
        v[9] = clampd(log(hi[o] / hi[1]), 0.7);
        v[10] = clampd(log(bright[c] / bright[1]), 0.7);
        v[11] = bmed / 255.0;
    }
}

void pimg_enhance_tone_features(const pimg_rgb8 *img, double *f, double *lo, double *hi)
{
    long n = 0, hl[256], hc[3][256];
    memset(hl, 0, sizeof hl);
    memset(hc, 0, sizeof hc);
    double sum = 0;
    const int step = sample_step(img->w, img->h);
    for (int y = 0; y < img->h; y += step)
        for (int x = 0; x < img->w; x += step) {
            const uint8_t *p = img->p + ((size_t)y * img->w + x) * 3;
            int l = luma8(p);
            hl[l]++;
            sum += l;
            n++;
            for (int c = 0; c < 3; c++)
                hc[c][p[c]]++;
        }
    static const double pct[9] = {0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99};
    for (int i = 0; i < 9; i++)
        f[i] = hist_pct(hl, 256, n, pct[i]) / 255.0;
    f[9] = n ? sum / n / 255.0 : 0;
    *lo = 1;
    *hi = 0;
    for (int c = 0; c < 3; c++) {
        *lo = fmin(*lo, hist_pct(hc[c], 256, n, 0.005) / 255.0);
        *hi = fmax(*hi, hist_pct(hc[c], 256, n, 0.995) / 255.0);
    }
    f[10] = *lo;
    f[11] = *hi;
}
