/* shadow.c — cast-shadow removal from the product mask on plain backdrops (see shadow.h).
 *
 * A shadow on a matte backdrop multiplies the backdrop's colour by a factor below one (less
 * light, same surface), so a shadow pixel lies on the line from black to the backdrop colour
 * predicted there, and a soft shadow's brightness changes slowly. Region growing from the
 * clear backdrop through such pixels collects the shadow; a product's outline is an edge, so
 * growth stops at it. A grown region whose colour departs from the dimmed backdrop on
 * average in one direction (a blue-grey animal on a grey sweep) is a product, not a shadow,
 * and is given back to the mask: averaging over the region sees a tint per-pixel noise hides. */
#include "shadow.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mask.h"
#include "surface.h"

/* Chosen on plain-backdrop composites with and without soft contact shadows (see
 * models/README, "White background: cast shadows"). */
#define PLAIN_SIGMA 0.04 /* backdrop surface RMS residual (0..1 RGB) below which it is plain */
#define K_MIN 0.30       /* darkest shadow taken: 30% of the backdrop's light */
#define K_RIM 0.985      /* faintest: a rim this close to the backdrop is taken only downhill */
#define K_CORE 0.94      /* a shadow's core, darker than this, is free to grow within */
#define MONO_TOL 0.003   /* brightness noise allowed on a downhill path */
#define CHROMA_TOL 0.06  /* per-pixel chromatic residual over the dimmed backdrop's grey level */
#define MEAN_TOL 0.01    /* the same, averaged over a grown region */
#define GRAD_TOL 0.02    /* largest grey step per pixel (at 1024 px) around a penumbra pixel */
#define BARRIER 2        /* the gradient test looks this far around (closes gaps in outlines) */

/* 3x3 box mean of the RGB tensor: the per-pixel tests then see a quieter colour. */
static float *smooth3(const pimg_tensor *t)
{
    int W = t->w, H = t->h;
    float *o = malloc(sizeof(float) * 3 * W * H);
    if (!o)
        return NULL;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float s[3] = {0, 0, 0};
            int n = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int xx = x + dx, yy = y + dy;
                    if (xx < 0 || yy < 0 || xx >= W || yy >= H)
                        continue;
                    const float *p = pimg_tensor_at(t, xx, yy);
                    for (int c = 0; c < 3; c++)
                        s[c] += p[c];
                    n++;
                }
            for (int c = 0; c < 3; c++)
                o[((size_t)y * W + x) * 3 + c] = s[c] / n;
        }
    return o;
}

/* Marks in edge[] the pixels within BARRIER of a grey step above tol (per pixel, scaled to a
 * 1024 px frame), using the smoothed colours sm. */
static void edges(const float *sm, int W, int H, double tol, unsigned char *edge)
{
    unsigned char *raw = calloc((size_t)W * H, 1);
    if (!raw) { /* without the map, everything counts as an edge: nothing is grown */
        memset(edge, 1, (size_t)W * H);
        return;
    }
    double scale = (W > H ? W : H) / 1024.0 / 3.0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int xl = x > 0 ? x - 1 : x, xr = x + 1 < W ? x + 1 : x, yu = y > 0 ? y - 1 : y, yd = y + 1 < H ? y + 1 : y;
            const float *a = sm + ((size_t)y * W + xl) * 3, *e = sm + ((size_t)y * W + xr) * 3;
            const float *u = sm + ((size_t)yu * W + x) * 3, *d = sm + ((size_t)yd * W + x) * 3;
            double gx = (e[0] + e[1] + e[2] - a[0] - a[1] - a[2]) / (xr - xl > 0 ? xr - xl : 1);
            double gy = (d[0] + d[1] + d[2] - u[0] - u[1] - u[2]) / (yd - yu > 0 ? yd - yu : 1);
            raw[(size_t)y * W + x] = hypot(gx, gy) * scale > tol;
        }
    if (pimg_mask_dilate(raw, edge, W, H, BARRIER))
        memcpy(edge, raw, (size_t)W * H);
    free(raw);
}

pimg_status pimg_shadow_remove(const pimg_tensor *t, pimg_tensor *mask, double *share, pimg_error *err)
{
    if (share)
        *share = 0;
    if (!t || !mask || t->c < 3 || mask->c != 1 || mask->w != t->w || mask->h != t->h)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "shadow: mask and image must have the same size");
    int W = t->w, H = t->h;
    size_t n = (size_t)W * H;
    /* st: 0 clear backdrop, 1 held by the mask, 2 shadow candidate, 3 taken */
    unsigned char *st = calloc(n, 1), *edge = malloc(n);
    int *queue = malloc(sizeof(int) * n);
    float *sm = NULL, *kk = calloc(n, sizeof(float)), *res = malloc(sizeof(float) * 3 * n);
    pimg_status rc = PIMG_OK;
    if (!st || !edge || !queue || !kk || !res) {
        rc = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    long fg = 0;
    for (size_t i = 0; i < n; i++) {
        st[i] = mask->data[i] < 0.05f; /* for the fit: 1 = clear backdrop */
        fg += mask->data[i] >= 0.5f;
    }
    double coef[3][6], sigma = 1;
    int step = (int)sqrt((double)n / 20000.0);
    if (!fg || pimg_surface_fit(t, st, step < 1 ? 1 : step, coef, &sigma) || sigma >= PLAIN_SIGMA)
        goto out; /* nothing held, or not a plain backdrop: leave the mask alone */
    if (!(sm = smooth3(t))) {
        rc = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    edges(sm, W, H, GRAD_TOL + sigma / 3, edge);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            size_t i = (size_t)y * W + x;
            st[i] = mask->data[i] >= 0.05f;
            if (!st[i])
                continue;
            double b[3], bb = 0, pb = 0;
            pimg_surface_at(coef, W, H, x, y, b);
            const float *p = sm + i * 3;
            for (int c = 0; c < 3; c++) {
                bb += b[c] * b[c];
                pb += p[c] * b[c];
            }
            if (bb < 1e-4)
                continue; /* a black backdrop shows no shadow */
            double k = pb / bb, r2 = 0, grey = k * sqrt(bb / 3);
            if (k < K_MIN || k > K_RIM)
                continue;
            for (int c = 0; c < 3; c++) {
                double r = p[c] - k * b[c];
                r2 += r * r;
                res[i * 3 + c] = (float)(r / grey);
            }
            if (sqrt(r2) > CHROMA_TOL * grey + sigma)
                continue;
            kk[i] = (float)k; /* > 0: the colour is a dimmed backdrop's */
            if (!edge[i])
                st[i] = 2;
        }
    /* Grow each region from the candidates that touch the clear backdrop; keep it as shadow
     * only when its mean chromatic residual is small. */
    long cleared = 0;
    for (size_t s0 = 0; s0 < n; s0++) {
        if (st[s0] != 2)
            continue;
        int x0 = (int)(s0 % W), y0 = (int)(s0 / W);
        if (!((x0 > 0 && !st[s0 - 1]) || (x0 + 1 < W && !st[s0 + 1]) || (y0 > 0 && !st[s0 - W]) ||
              (y0 + 1 < H && !st[s0 + W])))
            continue;
        long nq = 0;
        double mr[3] = {0, 0, 0};
        st[s0] = 3;
        queue[nq++] = (int)s0;
        for (long h = 0; h < nq; h++) {
            int i = queue[h], x = i % W, y = i / W;
            for (int c = 0; c < 3; c++)
                mr[c] += res[(size_t)i * 3 + c];
            int nb[4] = {x > 0 ? i - 1 : -1, x + 1 < W ? i + 1 : -1, y > 0 ? i - W : -1, y + 1 < H ? i + W : -1};
            for (int k = 0; k < 4; k++)
                /* The core is entered downhill or from the core; the rim only downhill from
                 * the rim. A region never climbs out of a shadow's core into a brighter
                 * product beside it, where a white product meets its own shadow's rim. */
                if (nb[k] >= 0 && st[nb[k]] == 2 &&
                    (kk[nb[k]] <= K_CORE ? (kk[i] <= K_CORE || kk[nb[k]] <= kk[i] + MONO_TOL)
                                         : (kk[i] > K_CORE && kk[nb[k]] <= kk[i] + MONO_TOL))) {
                    st[nb[k]] = 3;
                    queue[nq++] = nb[k];
                }
        }
        double tint = sqrt(mr[0] * mr[0] + mr[1] * mr[1] + mr[2] * mr[2]) / nq;
        for (long h = 0; h < nq; h++) {
            int i = queue[h];
            if (tint > MEAN_TOL) {
                st[i] = 1; /* a tinted region: product; do not look at it again */
            } else {
                cleared += mask->data[i] >= 0.5f;
                mask->data[i] = 0;
            }
        }
    }
    /* The gradient test keeps a band of BARRIER pixels of shadow along the product's outline
     * (and the steeper core of a contact shadow): extend the cleared regions a few steps into
     * pixels whose colour alone is a dimmed backdrop's. */
    long nq = 0;
    for (size_t i = 0; i < n; i++)
        if (st[i] == 3 && mask->data[i] == 0)
            queue[nq++] = (int)i;
    for (long ring = 0, lo = 0; ring < BARRIER + 2; ring++) {
        long hi = nq;
        for (long h = lo; h < hi; h++) {
            int i = queue[h], x = i % W, y = i / W;
            int nb[4] = {x > 0 ? i - 1 : -1, x + 1 < W ? i + 1 : -1, y > 0 ? i - W : -1, y + 1 < H ? i + W : -1};
            for (int k = 0; k < 4; k++) {
                int j = nb[k];
                if (j < 0 || st[j] == 3 || st[j] == 0 || kk[j] <= 0)
                    continue;
                st[j] = 3;
                cleared += mask->data[j] >= 0.5f;
                mask->data[j] = 0;
                queue[nq++] = j;
            }
        }
        lo = hi;
    }
    if (share)
        *share = (double)cleared / fg;
out:
    free(st);
    free(edge);
    free(queue);
    free(sm);
    free(kk);
    free(res);
    return rc;
}
