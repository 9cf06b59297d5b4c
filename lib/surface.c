/* surface.c — quadratic colour surface of a backdrop (see surface.h). */
#include "surface.h"

#include <math.h>
#include <stdlib.h>

void pimg_surface_basis(double u, double v, double phi[6])
{
    phi[0] = 1;
    phi[1] = u;
    phi[2] = v;
    phi[3] = u * u;
    phi[4] = u * v;
    phi[5] = v * v;
}

void pimg_surface_add_sample(const pimg_tensor *t, int x, int y, double A[3][6][6], double b[3][6])
{
    double phi[6];
    pimg_surface_basis((double)x / t->w - 0.5, (double)y / t->h - 0.5, phi);
    const float *p = pimg_tensor_at(t, x, y);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 6; i++) {
            b[c][i] += phi[i] * p[c];
            for (int k = 0; k < 6; k++)
                A[c][i][k] += phi[i] * phi[k];
        }
}

int pimg_surface_solve(double A[6][6], double b[6], double x[6])
{
    for (int c = 0; c < 6; c++) {
        int piv = c;
        for (int r = c + 1; r < 6; r++)
            if (fabs(A[r][c]) > fabs(A[piv][c]))
                piv = r;
        if (fabs(A[piv][c]) < 1e-12)
            return -1;
        for (int k = 0; k < 6; k++) {
            double t = A[c][k];
            A[c][k] = A[piv][k];
            A[piv][k] = t;
        }
        double t = b[c];
        b[c] = b[piv];
        b[piv] = t;
        for (int r = c + 1; r < 6; r++) {
            double f = A[r][c] / A[c][c];
            for (int k = c; k < 6; k++)
                A[r][k] -= f * A[c][k];
            b[r] -= f * b[c];
        }
    }
    for (int c = 5; c >= 0; c--) {
        double acc = b[c];
        for (int k = c + 1; k < 6; k++)
            acc -= A[c][k] * x[k];
        x[c] = acc / A[c][c];
    }
    return 0;
}

void pimg_surface_at(const double coef[3][6], int w, int h, int x, int y, double rgb[3])
{
    double phi[6];
    pimg_surface_basis((double)x / w - 0.5, (double)y / h - 0.5, phi);
    for (int c = 0; c < 3; c++) {
        double s = 0;
        for (int k = 0; k < 6; k++)
            s += coef[c][k] * phi[k];
        rgb[c] = s;
    }
}

double pimg_surface_residual(const pimg_tensor *t, const double coef[3][6], int x, int y)
{
    double b[3], r2 = 0;
    pimg_surface_at(coef, t->w, t->h, x, y, b);
    const float *p = pimg_tensor_at(t, x, y);
    for (int c = 0; c < 3; c++)
        r2 += (p[c] - b[c]) * (p[c] - b[c]);
    return sqrt(r2);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int pimg_surface_fit(const pimg_tensor *t, const unsigned char *use, int step, double coef[3][6], double *sigma)
{
    int W = t->w, H = t->h;
    if (t->c < 3 || step < 1)
        return -1;
    long cap = ((long)W / step + 1) * ((long)H / step + 1);
    float *res = malloc(sizeof(float) * cap);
    if (!res)
        return -1;
    /* Start from the per-channel median colour (a constant surface): a least-squares start
     * bends towards a large object and its residual band then takes the object in. */
    long m0 = 0;
    for (int c = 0; c < 3; c++) {
        m0 = 0;
        for (int y = 0; y < H; y += step)
            for (int x = 0; x < W; x += step)
                if (use[(size_t)y * W + x] && m0 < cap)
                    res[m0++] = pimg_tensor_at(t, x, y)[c];
        for (int k = 0; k < 6; k++)
            coef[c][k] = 0;
        if (m0) {
            qsort(res, m0, sizeof(float), cmp_float);
            coef[c][0] = res[m0 / 2];
        }
    }
    double band = INFINITY, sig = 1;
    int rc = m0 < 50 ? -1 : 0;
    if (!rc) {
        long m = 0;
        for (int y = 0; y < H; y += step)
            for (int x = 0; x < W; x += step)
                if (use[(size_t)y * W + x] && m < cap)
                    res[m++] = (float)pimg_surface_residual(t, coef, x, y);
        qsort(res, m, sizeof(float), cmp_float);
        band = 3 * 1.4826 * res[m / 2] + 0.01;
    }
    for (int pass = 1; pass < 4 && !rc; pass++) {
        double A[3][6][6] = {{{0}}}, b[3][6] = {{0}};
        long n = 0;
        for (int y = 0; y < H; y += step)
            for (int x = 0; x < W; x += step) {
                if (!use[(size_t)y * W + x] || pimg_surface_residual(t, coef, x, y) > band)
                    continue;
                pimg_surface_add_sample(t, x, y, A, b);
                n++;
            }
        if (n < 50) {
            rc = -1;
            break;
        }
        for (int c = 0; c < 3 && !rc; c++)
            rc = pimg_surface_solve(A[c], b[c], coef[c]);
        if (rc)
            break;
        /* residuals of every usable sample: the robust band for the next pass, or the RMS of
         * the inliers after the last one */
        long m = 0;
        double s2 = 0;
        long k = 0;
        for (int y = 0; y < H; y += step)
            for (int x = 0; x < W; x += step) {
                if (!use[(size_t)y * W + x] || m >= cap)
                    continue;
                float r = (float)pimg_surface_residual(t, coef, x, y);
                res[m++] = r;
                if (r <= band) {
                    s2 += (double)r * r;
                    k++;
                }
            }
        qsort(res, m, sizeof(float), cmp_float);
        double robust = 1.4826 * res[m / 2];
        sig = k ? sqrt(s2 / k) : 1;
        band = 3 * robust + 0.01;
    }
    free(res);
    if (!rc)
        *sigma = sig;
    return rc;
}
