/* homography.c — normalised DLT, Levenberg-Marquardt refinement and LO-RANSAC for 3x3
 * homographies (see homography.h for the contract).
 *
 * Everything numeric runs on Hartley-normalised coordinates (centroid at the origin, mean
 * distance sqrt(2)) so that the linear systems stay well conditioned whatever the pixel scale;
 * results are mapped back to the callers' coordinates at the end. */
#include "homography.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- small linear algebra ------------------------------------------------------------- */

static void mat3_mul(const double a[9], const double b[9], double out[9])
{
    double r[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            r[i * 3 + j] = a[i * 3] * b[j] + a[i * 3 + 1] * b[3 + j] + a[i * 3 + 2] * b[6 + j];
    memcpy(out, r, sizeof r);
}

/* Scales H so that H[8] == 1 (when H[8] is not ~0) and flips its sign so that H[8] >= 0. */
static void normalise_h(double H[9])
{
    double d = H[8];
    if (fabs(d) > 1e-12) {
        for (int i = 0; i < 9; i++)
            H[i] /= d;
        return;
    }
    double nrm = 0;
    for (int i = 0; i < 9; i++)
        nrm += H[i] * H[i];
    nrm = sqrt(nrm);
    if (nrm > 0)
        for (int i = 0; i < 9; i++)
            H[i] /= nrm;
}

pimg_status pimg_homography_invert(const double H[9], double out[9])
{
    double a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7], i = H[8];
    double A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
    double det = a * A + b * B + c * C;
    double scale = 0;
    for (int k = 0; k < 9; k++)
        scale = fmax(scale, fabs(H[k]));
    if (!(fabs(det) > 1e-14 * scale * scale * scale))
        return PIMG_ERR_BAD_INPUT;
    double r[9] = {A, -(b * i - c * h), b * f - c * e, B, a * i - c * g, -(a * f - c * d),
                   C, -(a * h - b * g), a * e - b * d};
    for (int k = 0; k < 9; k++)
        out[k] = r[k] / det;
    normalise_h(out);
    return PIMG_OK;
}

int pimg_linsolve(double *a, double *b, int n, double tiny)
{
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(a[r * n + c]) > fabs(a[p * n + c]))
                p = r;
        if (fabs(a[p * n + c]) < tiny)
            return -1;
        if (p != c) {
            for (int k = 0; k < n; k++) {
                double t = a[c * n + k];
                a[c * n + k] = a[p * n + k];
                a[p * n + k] = t;
            }
            double t = b[c];
            b[c] = b[p];
            b[p] = t;
        }
        for (int r = c + 1; r < n; r++) {
            double f = a[r * n + c] / a[c * n + c];
            if (f == 0)
                continue;
            for (int k = c; k < n; k++)
                a[r * n + k] -= f * a[c * n + k];
            b[r] -= f * b[c];
        }
    }
    for (int c = n - 1; c >= 0; c--) {
        double s = b[c];
        for (int k = c + 1; k < n; k++)
            s -= a[c * n + k] * b[k];
        b[c] = s / a[c * n + c];
    }
    return 0;
}

/* Eigenvector of the symmetric 9x9 matrix m for its smallest eigenvalue (cyclic Jacobi). */
static void smallest_eigvec9(const double m_in[81], double v_out[9])
{
    double a[81], v[81];
    memcpy(a, m_in, sizeof a);
    for (int i = 0; i < 81; i++)
        v[i] = (i % 10 == 0) ? 1.0 : 0.0;
    for (int sweep = 0; sweep < 50; sweep++) {
        double off = 0, diag = 0;
        for (int p = 0; p < 9; p++) {
            diag += a[p * 9 + p] * a[p * 9 + p];
            for (int q = p + 1; q < 9; q++)
                off += a[p * 9 + q] * a[p * 9 + q];
        }
        if (off <= 1e-30 * diag || off == 0)
            break;
        for (int p = 0; p < 8; p++) {
            for (int q = p + 1; q < 9; q++) {
                double apq = a[p * 9 + q];
                if (fabs(apq) < 1e-300)
                    continue;
                double theta = (a[q * 9 + q] - a[p * 9 + p]) / (2 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < 9; k++) {
                    double akp = a[k * 9 + p], akq = a[k * 9 + q];
                    a[k * 9 + p] = c * akp - s * akq;
                    a[k * 9 + q] = s * akp + c * akq;
                }
                for (int k = 0; k < 9; k++) {
                    double apk = a[p * 9 + k], aqk = a[q * 9 + k];
                    a[p * 9 + k] = c * apk - s * aqk;
                    a[q * 9 + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < 9; k++) {
                    double vkp = v[k * 9 + p], vkq = v[k * 9 + q];
                    v[k * 9 + p] = c * vkp - s * vkq;
                    v[k * 9 + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    int best = 0;
    for (int i = 1; i < 9; i++)
        if (a[i * 9 + i] < a[best * 9 + best])
            best = i;
    for (int k = 0; k < 9; k++)
        v_out[k] = v[k * 9 + best];
}

/* ---- normalisation -------------------------------------------------------------------- */

/* Similarity T (row-major 3x3) moving pts' centroid to the origin with mean distance sqrt(2). */
static int norm_transform(const double *pts, int n, const unsigned char *mask, double T[9])
{
    double cx = 0, cy = 0;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!mask || mask[i]) {
            cx += pts[2 * i];
            cy += pts[2 * i + 1];
            m++;
        }
    if (m == 0)
        return -1;
    cx /= m;
    cy /= m;
    double d = 0;
    for (int i = 0; i < n; i++)
        if (!mask || mask[i])
            d += hypot(pts[2 * i] - cx, pts[2 * i + 1] - cy);
    d /= m;
    if (!(d > 1e-12))
        return -1;
    double s = sqrt(2.0) / d;
    double t[9] = {s, 0, -s * cx, 0, s, -s * cy, 0, 0, 1};
    memcpy(T, t, sizeof t);
    return 0;
}

static void apply_t(const double T[9], const double *in, double *out, int n)
{
    for (int i = 0; i < n; i++) {
        double x = in[2 * i], y = in[2 * i + 1];
        out[2 * i] = T[0] * x + T[2];
        out[2 * i + 1] = T[4] * y + T[5];
    }
}

/* H = Td^-1 * Hn * Ts for similarity transforms Ts, Td of the form built above. */
static void denormalise(const double Hn[9], const double Ts[9], const double Td[9], double H[9])
{
    double tdi[9] = {1 / Td[0], 0, -Td[2] / Td[0], 0, 1 / Td[4], -Td[5] / Td[4], 0, 0, 1};
    double tmp[9];
    mat3_mul(Hn, Ts, tmp);
    mat3_mul(tdi, tmp, H);
    normalise_h(H);
}

/* ---- fits on normalised points ----------------------------------------------------------- */

/* Least-squares DLT on the (already normalised) points selected by idx (or all when NULL),
 * each weighted by wt[i] (NULL = 1). */
static int dlt_raw(const double *s, const double *d, const int *idx, int n, const double *wt, double H[9])
{
    double m[81] = {0};
    for (int k = 0; k < n; k++) {
        int i = idx ? idx[k] : k;
        double x = s[2 * i], y = s[2 * i + 1], u = d[2 * i], v = d[2 * i + 1];
        double r1[9] = {x, y, 1, 0, 0, 0, -u * x, -u * y, -u};
        double r2[9] = {0, 0, 0, x, y, 1, -v * x, -v * y, -v};
        double q = wt ? wt[i] : 1.0;
        for (int a = 0; a < 9; a++)
            for (int b = a; b < 9; b++)
                m[a * 9 + b] += q * (r1[a] * r1[b] + r2[a] * r2[b]);
    }
    for (int a = 0; a < 9; a++)
        for (int b = 0; b < a; b++)
            m[a * 9 + b] = m[b * 9 + a];
    smallest_eigvec9(m, H);
    normalise_h(H);
    for (int i = 0; i < 9; i++)
        if (!isfinite(H[i]))
            return -1;
    return 0;
}

/* Exact homography through four correspondences (8x8 solve with H[8] = 1). */
static int solve4(const double *s, const double *d, const int idx[4], double H[9])
{
    double a[64], b[8];
    for (int k = 0; k < 4; k++) {
        int i = idx[k];
        double x = s[2 * i], y = s[2 * i + 1], u = d[2 * i], v = d[2 * i + 1];
        double r1[8] = {x, y, 1, 0, 0, 0, -u * x, -u * y};
        double r2[8] = {0, 0, 0, x, y, 1, -v * x, -v * y};
        memcpy(a + (2 * k) * 8, r1, sizeof r1);
        memcpy(a + (2 * k + 1) * 8, r2, sizeof r2);
        b[2 * k] = u;
        b[2 * k + 1] = v;
    }
    if (pimg_linsolve(a, b, 8, 1e-12))
        return -1;
    memcpy(H, b, sizeof b);
    H[8] = 1;
    return 0;
}

double pimg_homography_err2(const double H[9], double x, double y, double u, double v)
{
    double w = H[6] * x + H[7] * y + H[8];
    if (!(w > 1e-12))
        return HUGE_VAL;
    double px = (H[0] * x + H[1] * y + H[2]) / w, py = (H[3] * x + H[4] * y + H[5]) / w;
    double dx = px - u, dy = py - v;
    return dx * dx + dy * dy;
}

/* Levenberg-Marquardt on the 8 free entries (H[8] fixed at 1) over the points in idx, each
 * squared error weighted by wt[i] (NULL = 1). */
static void lm_raw(const double *s, const double *d, const int *idx, int n, const double *wt, double H[9],
                   int max_iter)
{
    double lambda = 1e-3;
    double cur = 0;
    for (int k = 0; k < n; k++) {
        int i = idx ? idx[k] : k;
        cur += (wt ? wt[i] : 1.0) * pimg_homography_err2(H, s[2 * i], s[2 * i + 1], d[2 * i], d[2 * i + 1]);
    }
    if (!isfinite(cur) || fabs(H[8]) < 1e-12)
        return;
    for (int it = 0; it < max_iter; it++) {
        double jtj[64] = {0}, jtr[8] = {0};
        for (int k = 0; k < n; k++) {
            int i = idx ? idx[k] : k;
            double x = s[2 * i], y = s[2 * i + 1];
            double w = H[6] * x + H[7] * y + H[8];
            double px = (H[0] * x + H[1] * y + H[2]) / w, py = (H[3] * x + H[4] * y + H[5]) / w;
            double q = wt ? wt[i] : 1.0;
            double rx = px - d[2 * i], ry = py - d[2 * i + 1];
            double jx[8] = {x / w, y / w, 1 / w, 0, 0, 0, -px * x / w, -px * y / w};
            double jy[8] = {0, 0, 0, x / w, y / w, 1 / w, -py * x / w, -py * y / w};
            for (int a = 0; a < 8; a++) {
                jtr[a] += q * (jx[a] * rx + jy[a] * ry);
                for (int b = a; b < 8; b++)
                    jtj[a * 8 + b] += q * (jx[a] * jx[b] + jy[a] * jy[b]);
            }
        }
        for (int a = 0; a < 8; a++)
            for (int b = 0; b < a; b++)
                jtj[a * 8 + b] = jtj[b * 8 + a];
        int improved = 0;
        for (int tries = 0; tries < 8 && !improved; tries++) {
            double a[64], delta[8], Hn[9];
            memcpy(a, jtj, sizeof a);
            for (int q = 0; q < 8; q++) {
                a[q * 8 + q] += lambda * (jtj[q * 8 + q] + 1e-12);
                delta[q] = -jtr[q];
            }
            if (pimg_linsolve(a, delta, 8, 1e-12)) {
                lambda *= 10;
                continue;
            }
            for (int q = 0; q < 8; q++)
                Hn[q] = H[q] + delta[q];
            Hn[8] = 1;
            double e = 0;
            for (int k = 0; k < n; k++) {
                int i = idx ? idx[k] : k;
                e += (wt ? wt[i] : 1.0) * pimg_homography_err2(Hn, s[2 * i], s[2 * i + 1], d[2 * i], d[2 * i + 1]);
            }
            if (e < cur) {
                double gain = cur - e;
                memcpy(H, Hn, sizeof Hn);
                cur = e;
                lambda = fmax(lambda * 0.1, 1e-9);
                improved = 1;
                if (gain < 1e-12 * (cur + 1e-30))
                    return;
            } else {
                lambda *= 10;
            }
        }
        if (!improved)
            return;
    }
}

/* ---- public fits ---------------------------------------------------------------------- */

pimg_status pimg_homography_dlt(const double *src, const double *dst, int n, double H[9])
{
    if (n < 4)
        return PIMG_ERR_BAD_INPUT;
    double Ts[9], Td[9], Hn[9];
    if (norm_transform(src, n, NULL, Ts) || norm_transform(dst, n, NULL, Td))
        return PIMG_ERR_BAD_INPUT;
    double *s = malloc(sizeof(double) * 4 * (size_t)n);
    if (!s)
        return PIMG_ERR_NOMEM;
    double *d = s + 2 * n;
    apply_t(Ts, src, s, n);
    apply_t(Td, dst, d, n);
    int bad = dlt_raw(s, d, NULL, n, NULL, Hn);
    free(s);
    if (bad)
        return PIMG_ERR_BAD_INPUT;
    denormalise(Hn, Ts, Td, H);
    double inv[9];
    if (pimg_homography_invert(H, inv))
        return PIMG_ERR_BAD_INPUT;
    return PIMG_OK;
}

void pimg_homography_refine(const double *src, const double *dst, int n, double H[9], int max_iter)
{
    double Ts[9], Td[9];
    if (n < 4 || norm_transform(src, n, NULL, Ts) || norm_transform(dst, n, NULL, Td))
        return;
    double *s = malloc(sizeof(double) * 4 * (size_t)n);
    if (!s)
        return;
    double *d = s + 2 * n;
    apply_t(Ts, src, s, n);
    apply_t(Td, dst, d, n);
    /* Hn = Td H Ts^-1 */
    double tsi[9] = {1 / Ts[0], 0, -Ts[2] / Ts[0], 0, 1 / Ts[4], -Ts[5] / Ts[4], 0, 0, 1};
    double Hn[9], tmp[9];
    mat3_mul(H, tsi, tmp);
    mat3_mul(Td, tmp, Hn);
    normalise_h(Hn);
    lm_raw(s, d, NULL, n, NULL, Hn, max_iter);
    free(s);
    denormalise(Hn, Ts, Td, H);
}

/* ---- RANSAC --------------------------------------------------------------------------- */

/* splitmix64: a tiny deterministic generator owned by the caller's stack frame. */
static unsigned long long next_rand(unsigned long long *st)
{
    unsigned long long z = (*st += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double cross3(const double *p, int i, int j, int k)
{
    return (p[2 * j] - p[2 * i]) * (p[2 * k + 1] - p[2 * i + 1]) -
           (p[2 * j + 1] - p[2 * i + 1]) * (p[2 * k] - p[2 * i]);
}

/* A minimal sample is usable when no three of its points are (nearly) collinear in either
 * image and every triangle keeps its orientation: a homography of a real view cannot mirror
 * part of the plane, so such samples can only come from outliers. */
static int sample_ok(const double *s, const double *d, const int idx[4])
{
    static const int tri[4][3] = {{0, 1, 2}, {0, 1, 3}, {0, 2, 3}, {1, 2, 3}};
    for (int t = 0; t < 4; t++) {
        int i = idx[tri[t][0]], j = idx[tri[t][1]], k = idx[tri[t][2]];
        double cs = cross3(s, i, j, k), cd = cross3(d, i, j, k);
        /* Normalised coordinates: areas are in units where the point cloud spans ~2. */
        if (fabs(cs) < 1e-4 || fabs(cd) < 1e-4 || (cs > 0) != (cd > 0))
            return 0;
    }
    return 1;
}

typedef struct {
    const double *s, *d;
    int n;
    double t2; /* squared threshold in normalised dst units */
    int *idx;  /* scratch: n ints */
} rs_ctx;

/* MSAC cost (lower is better) and inlier count of H. */
static double msac(const rs_ctx *c, const double H[9], int *ninl)
{
    double cost = 0;
    int m = 0;
    for (int i = 0; i < c->n; i++) {
        double e = pimg_homography_err2(H, c->s[2 * i], c->s[2 * i + 1], c->d[2 * i], c->d[2 * i + 1]);
        if (e <= c->t2) {
            cost += e;
            m++;
        } else {
            cost += c->t2;
        }
    }
    *ninl = m;
    return cost;
}

/* Writes the indices of H's inliers at squared threshold t2 into c->idx; returns the count. */
static int collect(const rs_ctx *c, const double H[9], double t2)
{
    int m = 0;
    for (int i = 0; i < c->n; i++)
        if (pimg_homography_err2(H, c->s[2 * i], c->s[2 * i + 1], c->d[2 * i], c->d[2 * i + 1]) <= t2)
            c->idx[m++] = i;
    return m;
}

/* Local optimisation (Chum et al., LO-RANSAC, simplified): least-squares refits on the inliers
 * with a threshold shrinking from 2t to t, keeping each refit that lowers the MSAC cost. */
static void local_opt(const rs_ctx *c, double H[9], double *cost, int *ninl)
{
    static const double mult[] = {2.0, 1.6, 1.3, 1.0, 1.0};
    for (size_t k = 0; k < sizeof mult / sizeof *mult; k++) {
        int m = collect(c, H, c->t2 * mult[k] * mult[k]);
        if (m < 8)
            return;
        double Hc[9];
        if (dlt_raw(c->s, c->d, c->idx, m, NULL, Hc))
            return;
        int ni;
        double cc = msac(c, Hc, &ni);
        if (cc < *cost) {
            memcpy(H, Hc, sizeof Hc);
            *cost = cc;
            *ninl = ni;
        }
    }
}

static int needed_iters(double conf, int inl, int n, int cap)
{
    double w = (double)inl / n;
    double p = w * w * w * w;
    if (p <= 1e-12)
        return cap;
    if (p >= 1 - 1e-12)
        return 1;
    double k = log(1 - conf) / log(1 - p);
    return k > cap ? cap : (int)ceil(k);
}

pimg_status pimg_homography_ransac(const double *src, const double *dst, int n,
                                   const pimg_ransac_opts *opts, double H[9],
                                   unsigned char *inlier_mask, int *n_inliers, pimg_error *err)
{
    if (n < 4)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "need at least 4 matches, have %d", n);
    double Ts[9], Td[9];
    if (norm_transform(src, n, NULL, Ts) || norm_transform(dst, n, NULL, Td))
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "matched points are all identical");
    double *s = malloc(sizeof(double) * 4 * (size_t)n);
    int *idx = malloc(sizeof(int) * (size_t)n);
    if (!s || !idx) {
        free(s);
        free(idx);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "no memory for RANSAC");
    }
    double *d = s + 2 * n;
    apply_t(Ts, src, s, n);
    apply_t(Td, dst, d, n);
    rs_ctx c = {s, d, n, opts->thresh * opts->thresh * Td[0] * Td[0], idx};

    unsigned long long rng = opts->seed ? opts->seed : 0x5eed;
    double best[9] = {0}, best_cost = HUGE_VAL;
    int best_inl = 0, need = opts->max_iter;
    for (int it = 0; it < need || it < opts->min_iter; it++) {
        if (it >= opts->max_iter)
            break;
        int smp[4];
        for (int k = 0; k < 4; k++) {
            int r, dup;
            do {
                r = (int)(next_rand(&rng) % (unsigned long long)n);
                dup = 0;
                for (int q = 0; q < k; q++)
                    dup |= smp[q] == r;
            } while (dup);
            smp[k] = r;
        }
        double Hc[9];
        if (!sample_ok(s, d, smp) || solve4(s, d, smp, Hc))
            continue;
        int ni;
        double cost = msac(&c, Hc, &ni);
        if (cost < best_cost) {
            if (ni >= 8)
                local_opt(&c, Hc, &cost, &ni);
            memcpy(best, Hc, sizeof Hc);
            best_cost = cost;
            best_inl = ni;
            need = needed_iters(opts->confidence, best_inl, n, opts->max_iter);
        }
    }
    pimg_status st = PIMG_OK;
    if (best_inl < 4) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "no consistent homography among %d matches", n);
        goto out;
    }
    /* Final polish: least squares on all inliers, then the geometric error, twice, since the
     * refit can gain or lose a few borderline points. */
    for (int round = 0; round < 2; round++) {
        int m = collect(&c, best, c.t2);
        if (m < 4)
            break;
        double Hc[9];
        memcpy(Hc, best, sizeof Hc);
        if (m >= 8 && dlt_raw(s, d, idx, m, opts->weights, Hc) == 0) {
            int ni;
            double cc = msac(&c, Hc, &ni);
            if (cc > best_cost)
                memcpy(Hc, best, sizeof Hc);
        }
        lm_raw(s, d, idx, m, opts->weights, Hc, 20);
        int ni;
        double cc = msac(&c, Hc, &ni);
        if (cc <= best_cost * 1.05 && ni >= 4) {
            memcpy(best, Hc, sizeof Hc);
            best_cost = cc;
            best_inl = ni;
        }
    }
    best_inl = 0;
    for (int i = 0; i < n; i++) {
        int in = pimg_homography_err2(best, s[2 * i], s[2 * i + 1], d[2 * i], d[2 * i + 1]) <= c.t2;
        if (inlier_mask)
            inlier_mask[i] = (unsigned char)in;
        best_inl += in;
    }
    denormalise(best, Ts, Td, H);
    *n_inliers = best_inl;
out:
    free(s);
    free(idx);
    return st;
}

/* ---- sanity --------------------------------------------------------------------------- */

int pimg_homography_plausible(const double H[9], double w, double h, double max_area_ratio)
{
    const double cx[4] = {0, w, w, 0}, cy[4] = {0, 0, h, h};
    double px[4], py[4];
    for (int i = 0; i < 4; i++) {
        double z = H[6] * cx[i] + H[7] * cy[i] + H[8];
        if (!(z > 1e-9) || !isfinite(z))
            return 0;
        px[i] = (H[0] * cx[i] + H[1] * cy[i] + H[2]) / z;
        py[i] = (H[3] * cx[i] + H[4] * cy[i] + H[5]) / z;
    }
    /* The source quad turns the same way at every corner; the image must too (convex, same
     * orientation, so no mirror and no fold). */
    double area = 0;
    for (int i = 0; i < 4; i++) {
        int j = (i + 1) % 4, k = (i + 2) % 4;
        double turn = (px[j] - px[i]) * (py[k] - py[j]) - (py[j] - py[i]) * (px[k] - px[j]);
        if (!(turn > 0))
            return 0;
        area += px[i] * py[j] - px[j] * py[i];
    }
    area = fabs(area) / 2;
    double ratio = area / (w * h);
    return ratio < max_area_ratio && ratio > 1 / max_area_ratio;
}
