/* level.c — small-tilt estimation from gradient orientations, and its full-resolution fix.
 *
 * Man-made structure (shelves, table edges, walls, the horizon, box edges) gives long straight
 * edges that are horizontal or vertical in an upright photo. We fold every gradient orientation
 * into one quarter turn, so horizontal and vertical edges vote for the same tilt, and build a
 * fine histogram weighted by gradient magnitude times local coherence (the structure tensor's
 * anisotropy): straight edges vote, texture and foliage mostly do not. A sharp peak well above
 * the histogram's floor is a tilt; a weak or flat histogram means "leave the photo alone",
 * because levelling a photo that was straight is worse than not levelling a tilted one.
 * The estimate works on a ~512 px grey copy: cheap, and it smooths away JPEG block edges that
 * would otherwise vote for 0°. */
#include "level.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image_vips.h"
#include "level_internal.h"

#define WORK_SIDE 512
#define BINS_PER_DEG 4
#define HALF_RANGE 45 /* the folded histogram covers [-45, 45) degrees */
#define NBINS (2 * HALF_RANGE * BINS_PER_DEG)
_Static_assert(NBINS == PIMG_LEVEL_NBINS, "level histogram size");

void pimg_level_params_default(pimg_level_params *p)
{
    p->max_deg = 20.0;
    p->min_peak_ratio = 6.0;
    p->min_coherent_share = 0.0;
    p->snap_deg = 0.35;
    p->max_zero_ratio = 0.4;
}

/* 3x3 box blur of a grey tensor into a new buffer (w*h floats); NULL on no memory. */
static float *blur3(const pimg_tensor *g)
{
    int w = g->w, h = g->h;
    float *tmp = malloc(sizeof(float) * (size_t)w * h), *o = malloc(sizeof(float) * (size_t)w * h);
    if (!tmp || !o) {
        free(tmp);
        free(o);
        return NULL;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int xa = x > 0 ? x - 1 : 0, xb = x < w - 1 ? x + 1 : w - 1;
            const float *r = g->data + (size_t)y * w;
            tmp[(size_t)y * w + x] = (r[xa] + r[x] + r[xb]) * (1.0f / 3.0f);
        }
    for (int y = 0; y < h; y++) {
        int ya = y > 0 ? y - 1 : 0, yb = y < h - 1 ? y + 1 : h - 1;
        for (int x = 0; x < w; x++)
            o[(size_t)y * w + x] = (tmp[(size_t)ya * w + x] + tmp[(size_t)y * w + x] + tmp[(size_t)yb * w + x]) *
                                   (1.0f / 3.0f);
    }
    free(tmp);
    return o;
}

/* Votes of one grey image (already at its working size) into two unfolded orientation
 * histograms of PIMG_LEVEL_UBINS bins over [-90, 90): hcoh weighted by magnitude times
 * coherence^4 (straight edges), hmag by magnitude alone (all oriented structure, texture
 * included: natural scenes still hold more energy along the horizontal and vertical). */
/* Long straight lines: an orientation-constrained Hough transform. Each edge pixel (gradient
 * maximum across the edge, coherent window) votes for lines through it whose normal is within
 * ±2° of its own, in 0.25° x 2 px cells. A horizon or a shelf edge piles hundreds of votes into
 * one cell; texture and JPEG block edges scatter theirs. Per angle bin: hsq the sum of squared
 * cell counts over diag², hmax the longest line (two adjacent cells) over diag. Only angles
 * within LINE_RANGE of 0 or ±90 are voted for: the rest cannot be a tilt. */
#define LINE_RANGE 24.0
static pimg_status line_votes(int w, int h, const float *gx, const float *gy, const float *angs,
                              const unsigned char *cand, double *hsq, double *hmax, pimg_error *err)
{
    memset(hsq, 0, sizeof(double) * PIMG_LEVEL_UBINS);
    memset(hmax, 0, sizeof(double) * PIMG_LEVEL_UBINS);
    double diag = sqrt((double)w * w + (double)h * h);
    int nr = (int)(diag / 2) + 3;
    unsigned short *acc = calloc((size_t)PIMG_LEVEL_UBINS * nr, sizeof *acc);
    if (!acc)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    double cs[PIMG_LEVEL_UBINS], sn[PIMG_LEVEL_UBINS];
    for (int b = 0; b < PIMG_LEVEL_UBINS; b++) {
        double a = (-90.0 + (b + 0.5) / BINS_PER_DEG) * (M_PI / 180.0);
        cs[b] = cos(a);
        sn[b] = sin(a);
    }
    double cx = 0.5 * w, cy = 0.5 * h;
    for (int y = 2; y < h - 2; y++)
        for (int x = 2; x < w - 2; x++) {
            size_t i = (size_t)y * w + x;
            if (!cand[i])
                continue;
            /* Non-maximum suppression along the gradient: one vote per edge, not per blur
             * pixel across it. */
            double m = (double)gx[i] * gx[i] + (double)gy[i] * gy[i];
            double ax = fabs(gx[i]), ay = fabs(gy[i]);
            int dx = ax > 0.414 * ay ? (gx[i] > 0 ? 1 : -1) : 0, dy = ay > 0.414 * ax ? (gy[i] > 0 ? 1 : -1) : 0;
            size_t j1 = (size_t)(y + dy) * w + (x + dx), j2 = (size_t)(y - dy) * w + (x - dx);
            if ((double)gx[j1] * gx[j1] + (double)gy[j1] * gy[j1] > m ||
                (double)gx[j2] * gx[j2] + (double)gy[j2] * gy[j2] > m)
                continue;
            double a = angs[i];
            double fold = fabs(a) > 45 ? 90 - fabs(a) : fabs(a); /* distance to 0 or ±90 */
            if (fold > LINE_RANGE + 2)
                continue;
            int b0 = (int)floor((a + 90.0) * BINS_PER_DEG);
            for (int d = -2 * BINS_PER_DEG; d <= 2 * BINS_PER_DEG; d++) {
                int b = ((b0 + d) % PIMG_LEVEL_UBINS + PIMG_LEVEL_UBINS) % PIMG_LEVEL_UBINS;
                /* Image y grows downwards, the angle is counter-clockwise: normal (cos, -sin). */
                double rho = (x - cx) * cs[b] - (y - cy) * sn[b];
                int r = (int)floor((rho + diag * 0.5) * 0.5) + 1;
                if (r >= 0 && r < nr && acc[(size_t)b * nr + r] < 65535)
                    acc[(size_t)b * nr + r]++;
            }
        }
    for (int b = 0; b < PIMG_LEVEL_UBINS; b++) {
        const unsigned short *row = acc + (size_t)b * nr;
        double sq = 0, mx = 0;
        for (int r = 0; r < nr; r++) {
            sq += (double)row[r] * row[r];
            double two = row[r] + (r + 1 < nr ? row[r + 1] : 0);
            if (two > mx)
                mx = two;
        }
        hsq[b] = sq / (diag * diag);
        hmax[b] = mx / diag;
    }
    free(acc);
    return PIMG_OK;
}

static pimg_status orient_votes(const pimg_tensor *g, double *hcoh, double *hmag, double *tcoh, double *tmag,
                                double *hsq, double *hmax, pimg_error *err)
{
    memset(hcoh, 0, sizeof(double) * PIMG_LEVEL_UBINS);
    memset(hmag, 0, sizeof(double) * PIMG_LEVEL_UBINS);
    if (hsq) {
        memset(hsq, 0, sizeof(double) * PIMG_LEVEL_UBINS);
        memset(hmax, 0, sizeof(double) * PIMG_LEVEL_UBINS);
    }
    *tcoh = *tmag = 0;
    int w = g->w, h = g->h;
    if (w < 16 || h < 16)
        return PIMG_OK; /* too small to say anything: empty histogram, no tilt */
    float *b = blur3(g);
    size_t n = (size_t)w * h;
    float *jxx = calloc(n, sizeof(float)), *jyy = calloc(n, sizeof(float)), *jxy = calloc(n, sizeof(float));
    float *gx = calloc(n, sizeof(float)), *gy = calloc(n, sizeof(float));
    float *angs = hsq ? malloc(sizeof(float) * n) : NULL;
    unsigned char *cand = hsq ? calloc(n, 1) : NULL;
    pimg_status st = PIMG_OK;
    if (!b || !jxx || !jyy || !jxy || !gx || !gy || (hsq && (!angs || !cand))) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Scharr gradients (3-10-3): far more rotation-invariant than Sobel, which biases edge
     * angles by up to a degree. The outer pixel ring stays zero: borders are not evidence. */
    for (int y = 1; y < h - 1; y++)
        for (int x = 1; x < w - 1; x++) {
            const float *p = b + (size_t)y * w + x;
            float dx = (3 * p[-w + 1] + 10 * p[1] + 3 * p[w + 1]) - (3 * p[-w - 1] + 10 * p[-1] + 3 * p[w - 1]);
            float dy = (3 * p[w - 1] + 10 * p[w] + 3 * p[w + 1]) - (3 * p[-w - 1] + 10 * p[-w] + 3 * p[-w + 1]);
            dx *= 0.25f; /* Sobel-like scale: |g| up to ~4 on a 0..1 image */
            dy *= 0.25f;
            size_t i = (size_t)y * w + x;
            gx[i] = dx;
            gy[i] = dy;
            jxx[i] = dx * dx;
            jyy[i] = dy * dy;
            jxy[i] = dx * dy;
        }
    float *planes[3] = {jxx, jyy, jxy};
    float *tmp = malloc(sizeof(float) * n);
    if (!tmp) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Running sums: each output pixel costs a few adds whatever the window. */
    for (int k = 0; k < 3; k++) {
        float *pl = planes[k];
        for (int y = 0; y < h; y++) {
            const float *src = pl + (size_t)y * w;
            float *dst = tmp + (size_t)y * w;
            float acc = 0;
            for (int d = -2; d <= 2; d++)
                acc += src[d < 0 ? 0 : d >= w ? w - 1 : d];
            for (int x = 0; x < w; x++) {
                dst[x] = acc;
                int o = x - 2 < 0 ? 0 : x - 2, in = x + 3 >= w ? w - 1 : x + 3;
                acc += src[in] - src[o];
            }
        }
        for (int x = 0; x < w; x++) {
            float acc = 0;
            for (int d = -2; d <= 2; d++)
                acc += tmp[(size_t)(d < 0 ? 0 : d >= h ? h - 1 : d) * w + x];
            for (int y = 0; y < h; y++) {
                pl[(size_t)y * w + x] = acc;
                int o = y - 2 < 0 ? 0 : y - 2, in = y + 3 >= h ? h - 1 : y + 3;
                acc += tmp[(size_t)in * w + x] - tmp[(size_t)o * w + x];
            }
        }
    }
    free(tmp);
    /* A gradient-free floor so flat areas and faint noise do not vote: Sobel of a 0..1 image
     * gives |g| up to ~4; 0.08 is a step of about 2% grey across the 3x3 blur. */
    const double gmin2 = 0.08 * 0.08;
    for (int y = 2; y < h - 2; y++)
        for (int x = 2; x < w - 2; x++) {
            size_t i = (size_t)y * w + x;
            double m2 = (double)gx[i] * gx[i] + (double)gy[i] * gy[i];
            if (m2 < gmin2)
                continue;
            double a = jxx[i], c = jyy[i], bb = jxy[i];
            double tr = a + c, det = sqrt((a - c) * (a - c) + 4 * bb * bb);
            if (tr <= 0)
                continue;
            double coh = det / tr; /* 1 for a straight edge, 0 for isotropic texture */
            double m = sqrt(m2), c2 = coh * coh, wgt = m * c2 * c2;
            /* The window's dominant gradient orientation (doubled-angle average) is steadier
             * than the pixel's own. y grows downwards: the minus sign makes the angle
             * counter-clockwise on screen, the tilt a counter-clockwise turn of the photo gives
             * its edges' normals. 0 = vertical edges, ±90 = horizontal ones. */
            double ang = 0.5 * atan2(-2.0 * bb, a - c) * (180.0 / M_PI);
            double fb = (ang + 90.0) * BINS_PER_DEG - 0.5;
            int b0 = (int)floor(fb);
            double fr = fb - b0;
            int i0 = ((b0 % PIMG_LEVEL_UBINS) + PIMG_LEVEL_UBINS) % PIMG_LEVEL_UBINS;
            int i1 = (i0 + 1) % PIMG_LEVEL_UBINS;
            hcoh[i0] += wgt * (1 - fr);
            hcoh[i1] += wgt * fr;
            *tcoh += wgt;
            hmag[i0] += m * (1 - fr);
            hmag[i1] += m * fr;
            *tmag += m;
            if (cand && coh > 0.6) {
                cand[i] = 1;
                angs[i] = (float)ang;
            }
        }
    if (hsq)
        st = line_votes(w, h, gx, gy, angs, cand, hsq, hmax, err);
out:
    free(angs);
    free(cand);
    free(b);
    free(jxx);
    free(jyy);
    free(jxy);
    free(gx);
    free(gy);
    return st;
}

/* Grey copy of t with its longest side at most side px (never upsized). NULL on no memory. */
static pimg_tensor *grey_at(const pimg_tensor *t, int side)
{
    pimg_tensor *g = pimg_tensor_grey(t);
    if (!g)
        return NULL;
    int s = g->w > g->h ? g->w : g->h;
    if (s <= side)
        return g;
    double f = (double)side / s;
    int w = (int)lround(g->w * f), h = (int)lround(g->h * f);
    pimg_tensor *r = pimg_tensor_resize(g, w < 8 ? 8 : w, h < 8 ? 8 : h);
    pimg_tensor_free(g);
    return r;
}

pimg_status pimg_level_hists_compute(const pimg_tensor *t, pimg_level_hists *out, pimg_error *err)
{
    memset(out, 0, sizeof *out);
    pimg_tensor *g = grey_at(t, WORK_SIDE);
    if (!g)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    pimg_status st = orient_votes(g, out->h[0], out->h[1], &out->total[0], &out->total[1], out->h[2],
                                  out->h[3], err);
    /* The line channels are already scale-free; a "total" of one bin per bin keeps the
     * normalisation of the others (value x bins / total) an identity for them. */
    out->total[2] = out->total[3] = PIMG_LEVEL_UBINS;
    pimg_tensor_free(g);
    return st;
}

pimg_status pimg_level_histogram(const pimg_tensor *t, double *hist, int nbins, double *total,
                                 pimg_error *err)
{
    if (nbins != NBINS)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "level histogram needs %d bins", NBINS);
    memset(hist, 0, sizeof(double) * nbins);
    *total = 0;
    pimg_tensor *g = grey_at(t, WORK_SIDE);
    if (!g)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    double hc[PIMG_LEVEL_UBINS], hm[PIMG_LEVEL_UBINS], tm;
    pimg_status st = orient_votes(g, hc, hm, total, &tm, NULL, NULL, err);
    pimg_tensor_free(g);
    if (st)
        return st;
    /* Fold a quarter turn: unfolded bin i starts at -90 + i/4, folded bin j at -45 + j/4, so
     * unfolded bins i and i + 360 both land on j = (i + 180) mod 360. */
    for (int i = 0; i < PIMG_LEVEL_UBINS; i++)
        hist[(i + 180) % NBINS] += hc[i];
    return PIMG_OK;
}

void pimg_level_peak(const double *hist, int nbins, double total, double max_deg, double *ang_out,
                     double *ratio_out, double *share_out)
{
    *ang_out = 0.0;
    *ratio_out = 0.0;
    *share_out = 0.0;
    if (nbins != NBINS || total <= 0)
        return;
    /* Smooth circularly with a small Gaussian (sigma 0.5°): peaks from slightly curved or
     * interpolated edges spread over a few bins. */
    double sm[NBINS];
    const int R = 2 * BINS_PER_DEG / 2 + 1;
    const double sig = 0.5 * BINS_PER_DEG;
    for (int i = 0; i < NBINS; i++) {
        double acc = 0, ws = 0;
        for (int d = -R; d <= R; d++) {
            double k = exp(-0.5 * d * d / (sig * sig));
            acc += k * hist[(i + d + NBINS) % NBINS];
            ws += k;
        }
        sm[i] = acc / ws;
    }
    double mean = total / NBINS;
    /* Robust floor: the median of the smoothed histogram (texture and noise level). */
    double sorted[NBINS];
    memcpy(sorted, sm, sizeof sorted);
    for (int i = 1; i < NBINS; i++) { /* insertion sort: 360 values, once per image */
        double v = sorted[i];
        int j = i - 1;
        while (j >= 0 && sorted[j] > v) {
            sorted[j + 1] = sorted[j];
            j--;
        }
        sorted[j + 1] = v;
    }
    double floor_ = sorted[NBINS / 2];
    if (floor_ < 0.05 * mean)
        floor_ = 0.05 * mean;
    int lim = (int)(max_deg * BINS_PER_DEG);
    int best = -1;
    for (int i = HALF_RANGE * BINS_PER_DEG - lim; i < HALF_RANGE * BINS_PER_DEG + lim; i++)
        if (best < 0 || sm[i] > sm[best])
            best = i;
    if (best < 0)
        return;
    double ratio = sm[best] / floor_;
    double share = 0; /* share of all coherent evidence within ±1° of the peak */
    for (int d = -BINS_PER_DEG; d <= BINS_PER_DEG; d++)
        share += hist[(best + d + NBINS) % NBINS];
    share /= total;
    /* Sub-bin peak by a parabola through the three smoothed values. */
    double l = sm[(best - 1 + NBINS) % NBINS], c = sm[best], r = sm[(best + 1) % NBINS];
    double den = l - 2 * c + r, off = den < 0 ? 0.5 * (l - r) / den : 0.0;
    *ang_out = ((best + off + 0.5) / BINS_PER_DEG) - HALF_RANGE;
    *ratio_out = ratio;
    *share_out = share;
}

pimg_status pimg_level_decide(const double *hist, int nbins, double total, const pimg_level_params *p,
                              double *deg, double *confidence)
{
    double ang, ratio, share;
    *deg = 0.0;
    *confidence = 0.0;
    pimg_level_peak(hist, nbins, total, p->max_deg, &ang, &ratio, &share);
    if (ratio <= 0)
        return PIMG_OK;
    /* Confidence grows with how far the peak stands above the floor. */
    double conf = 1.0 - exp(-(ratio - 1.0) / (2.0 * p->min_peak_ratio));
    if (conf < 0)
        conf = 0;
    *confidence = conf;
    if (ratio < p->min_peak_ratio || share < p->min_coherent_share)
        return PIMG_OK;
    /* Straight edges at exactly 0° are strong evidence that the photo is level and the peak
     * comes from oblique structure (a diagonal product, a roof): a tilted photo has almost no
     * edges left at 0°. Raw bins, ±0.5° around 0 and around the peak. */
    int pb = (int)floor((ang + HALF_RANGE) * BINS_PER_DEG), zb = HALF_RANGE * BINS_PER_DEG;
    double at_zero = 0, at_peak = 0;
    for (int d = -BINS_PER_DEG / 2; d < BINS_PER_DEG / 2; d++) {
        at_zero += hist[(zb + d + NBINS) % NBINS];
        at_peak += hist[(pb + d + NBINS) % NBINS];
    }
    if (at_peak <= 0 || at_zero >= p->max_zero_ratio * at_peak)
        return PIMG_OK;
    if (fabs(ang) < p->snap_deg)
        return PIMG_OK; /* straight enough: a sub-half-degree turn costs a resample for nothing */
    *deg = ang;
    return PIMG_OK;
}

pimg_status pimg_level_estimate(const pimg_tensor *t, double *deg, double *confidence, pimg_error *err)
{
    double hist[NBINS], total;
    pimg_status st = pimg_level_histogram(t, hist, NBINS, &total, err);
    if (st)
        return st;
    pimg_level_params p;
    pimg_level_params_default(&p);
    return pimg_level_decide(hist, NBINS, total, &p, deg, confidence);
}

void pimg_level_inner_rect(int w, int h, double deg, int *iw, int *ih)
{
    double a = fabs(deg) * M_PI / 180.0;
    double s = fabs(sin(a)), c = fabs(cos(a));
    int lg = w > h ? w : h, sh = w > h ? h : w;
    double wr, hr;
    if (s < 1e-12) {
        wr = w;
        hr = h;
    } else if (sh <= 2.0 * s * c * lg || fabs(s - c) < 1e-10) {
        double x = 0.5 * sh;
        if (w >= h) {
            wr = x / s;
            hr = x / c;
        } else {
            wr = x / c;
            hr = x / s;
        }
    } else {
        double cos2 = c * c - s * s;
        wr = (w * c - h * s) / cos2;
        hr = (h * c - w * s) / cos2;
    }
    *iw = (int)floor(wr);
    *ih = (int)floor(hr);
    if (*iw < 1) *iw = 1;
    if (*ih < 1) *ih = 1;
    if (*iw > w) *iw = w;
    if (*ih > h) *ih = h;
}

pimg_status pimg_level_apply(pimg_image *img, double deg, int crop, pimg_error *err)
{
    if (deg == 0.0)
        return PIMG_OK;
    if (!(fabs(deg) <= 45.0))
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "level angle %.2f out of range", deg);
    VipsImage *im, *rot = NULL, *out = NULL;
    pimg_status st = pimg_image_vips(img, &im, err);
    if (st)
        return st;
    int w = im->Xsize, h = im->Ysize;
    /* An arbitrary rotation reads the source out of order; a sequential decode can't serve
     * that, so bring the pixels to memory first (they are needed whole anyway). */
    VipsImage *mem = vips_image_copy_memory(im);
    if (!mem)
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot decode image");
    double white[3] = {255, 255, 255};
    VipsArrayDouble *bg = vips_array_double_new(white, 3);
    /* vips_similarity turns clockwise on screen for positive angles, the contract's sense.
     * Bicubic keeps edges crisp at full resolution. */
    VipsInterpolate *interp = vips_interpolate_new("bicubic");
    int r = vips_similarity(mem, &rot, "angle", deg, "background", bg, "interpolate", interp, NULL);
    g_object_unref(interp);
    vips_area_unref(VIPS_AREA(bg));
    g_object_unref(mem);
    if (r)
        return pimg_error_vips(err, PIMG_ERR_INTERNAL, "level rotate");
    if (crop) {
        int iw, ih;
        pimg_level_inner_rect(w, h, deg, &iw, &ih);
        /* The rotated canvas is centred on the original centre; cut the inner rectangle
         * out of its middle, shaving a pixel to drop interpolated edge pixels. */
        iw = iw > 3 ? iw - 2 : iw;
        ih = ih > 3 ? ih - 2 : ih;
        int left = (rot->Xsize - iw) / 2, top = (rot->Ysize - ih) / 2;
        if (vips_extract_area(rot, &out, left, top, iw, ih, NULL)) {
            g_object_unref(rot);
            return pimg_error_vips(err, PIMG_ERR_INTERNAL, "level crop");
        }
        g_object_unref(rot);
    } else {
        out = rot;
    }
    /* The rotation's output keeps the input's 3-band uchar sRGB format. */
    pimg_image_set_vips(img, out);
    return PIMG_OK;
}
