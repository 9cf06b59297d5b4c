/* photometric.c — Gauss-Newton refinement of a homography on image intensities (see
 * photometric.h). Two stages, coarse (strong blur, wide basin) then fine (light blur, precise),
 * each on the reference pixels with the strongest gradients. Parameters: the 8 free entries
 * of G = H^-1 (reference -> input, so every sample is a fixed reference pixel and only the
 * input is resampled) in coordinates scaled by the image size so that all parameters are O(1),
 * plus gain and bias. */
#include "photometric.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "homography.h"

#define MAX_SAMPLES 12000
#define MAX_ITERS 15
#define HUBER_K 0.03      /* intensity units (0..1): beyond this a residual counts linearly */
#define MIN_GRAD 0.008    /* per-pixel gradient below which a reference pixel says nothing */
#define MIN_SAMPLES 400
#define NPAR 10

typedef struct {
    int w, h;
    float *v, *gx, *gy; /* blurred intensity and its central-difference gradient */
} gimg;

static void gimg_free(gimg *g)
{
    free(g->v);
    free(g->gx);
    free(g->gy);
    memset(g, 0, sizeof *g);
}

/* Separable Gaussian blur of t (1 channel) into g->v and its gradient. Both passes run over
 * whole rows (padded copies for the horizontal one) so the inner loops are branch-free.
 * -1 on no memory. */
static int gimg_make(const pimg_tensor *t, double sigma, gimg *g)
{
    int w = t->w, h = t->h, r = (int)ceil(3 * sigma);
    size_t n = (size_t)w * h;
    g->w = w;
    g->h = h;
    g->v = malloc(sizeof(float) * n);
    g->gx = malloc(sizeof(float) * n);
    g->gy = malloc(sizeof(float) * n);
    float *line = malloc(sizeof(float) * ((size_t)w + 2 * (size_t)r));
    float k[64];
    if (!g->v || !g->gx || !g->gy || !line || r > 63) {
        free(line);
        gimg_free(g);
        return -1;
    }
    double s = 0;
    for (int i = -r; i <= r; i++)
        s += exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= r; i++)
        k[i] = (float)(exp(-0.5 * i * i / (sigma * sigma)) / s);
    float *tmp = g->gx; /* scratch until the gradient is computed */
    for (int y = 0; y < h; y++) {
        float *o = tmp + (size_t)y * w;
        const float *c = t->data + (size_t)y * w;
        for (int x = 0; x < w; x++)
            o[x] = k[0] * c[x];
        for (int i = 1; i <= r; i++) {
            const float *a = t->data + (size_t)(y - i < 0 ? 0 : y - i) * w;
            const float *b = t->data + (size_t)(y + i >= h ? h - 1 : y + i) * w;
            float ki = k[i];
            for (int x = 0; x < w; x++)
                o[x] += ki * (a[x] + b[x]);
        }
    }
    for (int y = 0; y < h; y++) {
        const float *row = tmp + (size_t)y * w;
        for (int i = 0; i < r; i++) {
            line[i] = row[0];
            line[r + w + i] = row[w - 1];
        }
        memcpy(line + r, row, sizeof(float) * (size_t)w);
        float *o = g->v + (size_t)y * w;
        for (int x = 0; x < w; x++)
            o[x] = k[0] * line[r + x];
        for (int i = 1; i <= r; i++) {
            const float *a = line + r - i, *b = line + r + i;
            float ki = k[i];
            for (int x = 0; x < w; x++)
                o[x] += ki * (a[x] + b[x]);
        }
    }
    free(line);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int xa = x > 0 ? x - 1 : x, xb = x < w - 1 ? x + 1 : x;
            int ya = y > 0 ? y - 1 : y, yb = y < h - 1 ? y + 1 : y;
            g->gx[(size_t)y * w + x] = (g->v[(size_t)y * w + xb] - g->v[(size_t)y * w + xa]) / (float)(xb - xa);
            g->gy[(size_t)y * w + x] = (g->v[(size_t)yb * w + x] - g->v[(size_t)ya * w + x]) / (float)(yb - ya);
        }
    return 0;
}

/* Bilinear sample of the three planes at index coordinates (x, y); 0 when outside. */
static int sample3(const gimg *g, double x, double y, double *v, double *gx, double *gy)
{
    if (!(x >= 0 && y >= 0 && x < g->w - 1 && y < g->h - 1))
        return 0;
    int x0 = (int)x, y0 = (int)y;
    double fx = x - x0, fy = y - y0;
    size_t i = (size_t)y0 * g->w + x0;
    double w00 = (1 - fx) * (1 - fy), w10 = fx * (1 - fy), w01 = (1 - fx) * fy, w11 = fx * fy;
    *v = w00 * g->v[i] + w10 * g->v[i + 1] + w01 * g->v[i + g->w] + w11 * g->v[i + g->w + 1];
    *gx = w00 * g->gx[i] + w10 * g->gx[i + 1] + w01 * g->gx[i + g->w] + w11 * g->gx[i + g->w + 1];
    *gy = w00 * g->gy[i] + w10 * g->gy[i + 1] + w01 * g->gy[i + g->w] + w11 * g->gy[i + g->w + 1];
    return 1;
}

typedef struct {
    float xn, yn, iref; /* normalised reference coordinates, reference intensity */
} sample;

static double huber(double r, double *wt)
{
    double a = fabs(r);
    if (a <= HUBER_K) {
        *wt = 1;
        return 0.5 * r * r;
    }
    *wt = HUBER_K / a;
    return HUBER_K * a - 0.5 * HUBER_K * HUBER_K;
}

/* Mean robust cost of parameters p over the samples (and, when jtj is given, the normal
 * equations). Returns the number of samples that land inside the input. */
static int evaluate(const gimg *gi, double si, const sample *sm, int ns, const double p[NPAR], double *cost,
                    double jtj[NPAR * NPAR], double jtr[NPAR])
{
    if (jtj) {
        memset(jtj, 0, sizeof(double) * NPAR * NPAR);
        memset(jtr, 0, sizeof(double) * NPAR);
    }
    double c = 0;
    int used = 0;
    for (int k = 0; k < ns; k++) {
        double x = sm[k].xn, y = sm[k].yn;
        double z = p[6] * x + p[7] * y + 1;
        if (!(z > 1e-6))
            continue;
        double un = (p[0] * x + p[1] * y + p[2]) / z, vn = (p[3] * x + p[4] * y + p[5]) / z;
        double v, gx, gy;
        if (!sample3(gi, un * si - 0.5, vn * si - 0.5, &v, &gx, &gy))
            continue;
        double r = v - (p[8] * sm[k].iref + p[9]);
        double wt;
        c += huber(r, &wt);
        used++;
        if (!jtj)
            continue;
        gx *= si;
        gy *= si;
        double J[NPAR] = {gx * x / z, gx * y / z, gx / z, gy * x / z, gy * y / z, gy / z,
                          -(gx * un + gy * vn) * x / z, -(gx * un + gy * vn) * y / z, -sm[k].iref, -1};
        for (int a = 0; a < NPAR; a++) {
            jtr[a] += wt * J[a] * r;
            for (int b = a; b < NPAR; b++)
                jtj[a * NPAR + b] += wt * J[a] * J[b];
        }
    }
    if (jtj)
        for (int a = 0; a < NPAR; a++)
            for (int b = 0; b < a; b++)
                jtj[a * NPAR + b] = jtj[b * NPAR + a];
    *cost = used ? c / used : HUGE_VAL;
    return used;
}

/* One blur stage: picks samples on ref, runs Levenberg-Marquardt on p. Returns -1 on no
 * memory, else 0 (p updated only on improvement). */
static int stage(const pimg_tensor *in, const pimg_tensor *ref, double sigma, double p[NPAR],
                 pimg_photometric_stats *st)
{
    gimg gi = {0}, gr = {0};
    sample *sm = NULL;
    int rc = -1;
    if (gimg_make(in, sigma, &gi) || gimg_make(ref, sigma, &gr))
        goto out;
    double si = in->w > in->h ? in->w : in->h, sr = ref->w > ref->h ? ref->w : ref->h;
    /* Samples: reference pixels with a clear gradient, evenly thinned to MAX_SAMPLES. */
    int border = (int)ceil(2 * sigma) + 1, cand = 0;
    for (int y = border; y < gr.h - border; y++)
        for (int x = border; x < gr.w - border; x++) {
            size_t i = (size_t)y * gr.w + x;
            cand += gr.gx[i] * gr.gx[i] + gr.gy[i] * gr.gy[i] >= MIN_GRAD * MIN_GRAD;
        }
    if (cand < MIN_SAMPLES) {
        rc = 0;
        goto out;
    }
    int step = cand / MAX_SAMPLES + 1, ns = 0, seen = 0;
    sm = malloc(sizeof *sm * (size_t)(cand / step + 1));
    if (!sm)
        goto out;
    for (int y = border; y < gr.h - border; y++)
        for (int x = border; x < gr.w - border; x++) {
            size_t i = (size_t)y * gr.w + x;
            if (gr.gx[i] * gr.gx[i] + gr.gy[i] * gr.gy[i] < MIN_GRAD * MIN_GRAD || seen++ % step)
                continue;
            sm[ns].xn = (float)((x + 0.5) / sr);
            sm[ns].yn = (float)((y + 0.5) / sr);
            sm[ns].iref = gr.v[i];
            ns++;
        }
    double cost, jtj[NPAR * NPAR], jtr[NPAR];
    int used0 = evaluate(&gi, si, sm, ns, p, &cost, jtj, jtr);
    if (used0 < MIN_SAMPLES) {
        rc = 0;
        goto out;
    }
    if (st->samples == 0) {
        st->samples = used0;
        st->cost_start = cost;
    }
    double lambda = 1e-3;
    for (int it = 0; it < MAX_ITERS; it++) {
        int better = 0;
        for (int tries = 0; tries < 6 && !better; tries++) {
            double a[NPAR * NPAR], d[NPAR], q[NPAR], c2;
            memcpy(a, jtj, sizeof a);
            for (int k = 0; k < NPAR; k++) {
                a[k * NPAR + k] *= 1 + lambda;
                d[k] = -jtr[k];
            }
            if (pimg_linsolve(a, d, NPAR, 1e-18)) {
                lambda *= 10;
                continue;
            }
            for (int k = 0; k < NPAR; k++)
                q[k] = p[k] + d[k];
            /* Accept only with most samples still inside the input: a step that slides the
             * overlap away could "improve" the mean by dropping the hard pixels. */
            int used = evaluate(&gi, si, sm, ns, q, &c2, NULL, NULL);
            if (c2 < cost && used >= 0.8 * used0) {
                double move = 0;
                for (int k = 0; k < 6; k++)
                    move = fmax(move, fabs(d[k]));
                memcpy(p, q, sizeof q);
                cost = c2;
                lambda = fmax(lambda / 10, 1e-7);
                better = 1;
                st->iterations++;
                evaluate(&gi, si, sm, ns, p, &cost, jtj, jtr);
                if (move < 1e-6)
                    it = MAX_ITERS;
            } else {
                lambda *= 10;
            }
        }
        if (!better)
            break;
    }
    st->cost_end = cost;
    rc = 0;
out:
    free(sm);
    gimg_free(&gi);
    gimg_free(&gr);
    return rc;
}

pimg_status pimg_photometric_refine(const pimg_tensor *in, const pimg_tensor *ref, double H[9],
                                    pimg_photometric_stats *stats)
{
    pimg_photometric_stats local = {0};
    pimg_photometric_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    if (!in || !ref || in->c != 1 || ref->c != 1)
        return PIMG_ERR_BAD_INPUT;
    double G[9];
    if (pimg_homography_invert(H, G) || fabs(G[8]) < 1e-12)
        return PIMG_OK;
    double si = in->w > in->h ? in->w : in->h, sr = ref->w > ref->h ? ref->w : ref->h;
    /* Gn = diag(1/si) G diag(sr) in normalised coordinates, scaled so Gn[8] == 1. */
    double Gn[9] = {G[0] * sr / si, G[1] * sr / si, G[2] / si, G[3] * sr / si, G[4] * sr / si,
                    G[5] / si, G[6] * sr, G[7] * sr, G[8]};
    double p[NPAR];
    for (int k = 0; k < 8; k++)
        p[k] = Gn[k] / Gn[8];
    p[8] = 1;
    p[9] = 0;
    /* Coarse stage on half-size copies (same parameters: coordinates are normalised by the
     * image size), fine stage at full analysis size. */
    pimg_tensor *hi = pimg_tensor_resize(in, (in->w + 1) / 2, (in->h + 1) / 2);
    pimg_tensor *hr = pimg_tensor_resize(ref, (ref->w + 1) / 2, (ref->h + 1) / 2);
    int bad = !hi || !hr || stage(hi, hr, 1.25, p, st) || stage(in, ref, 1.0, p, st);
    pimg_tensor_free(hi);
    pimg_tensor_free(hr);
    if (bad)
        return PIMG_ERR_NOMEM;
    if (st->iterations == 0)
        return PIMG_OK;
    double Gb[9] = {p[0] * si / sr, p[1] * si / sr, p[2] * si, p[3] * si / sr, p[4] * si / sr,
                    p[5] * si, p[6] / sr, p[7] / sr, 1};
    double Hn[9];
    if (pimg_homography_invert(Gb, Hn))
        return PIMG_OK;
    memcpy(H, Hn, sizeof Hn);
    return PIMG_OK;
}
