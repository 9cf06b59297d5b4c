/* enhance_px.c — the enhancement's pixel kernels on 8-bit RGB memory (see enhance_px.h):
 * impulse removal + bilateral smoothing, tiled CLAHE, per-channel lookups, PSNR.
 *
 * Integer arithmetic throughout: these run per pixel at full resolution, and 8-bit in / 8-bit
 * out needs no float precision. */
#include "enhance_px.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline int luma8(const uint8_t *p) { return (77 * p[0] + 150 * p[1] + 29 * p[2] + 128) >> 8; }

static inline uint8_t clamp8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

void pimg_denoise_prepare(pimg_denoise_params *p)
{
    double h = p->range_h > 0 ? p->range_h : 1.0;
    for (int d = 0; d < 766; d++)
        p->wrange[d] = (int)lround(1024.0 * exp(-(double)d * d / (2.0 * h * h)));
    /* Spatial sigma 1.5 px: wide enough to average ~10 pixels, small enough to keep detail. */
    for (int dy = -2; dy <= 2; dy++)
        for (int dx = -2; dx <= 2; dx++)
            p->wspace[(dy + 2) * 5 + dx + 2] = (int)lround(64.0 * exp(-(dx * dx + dy * dy) / (2 * 1.5 * 1.5)));
}

int pimg_is_impulse(const uint8_t *px, size_t stride, int thr)
{
    int l = luma8(px), up = 0, dn = 0;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            if (!dx && !dy)
                continue;
            int n = luma8(px + (ptrdiff_t)dy * (ptrdiff_t)stride + dx * 3);
            up += n < l - thr;
            dn += n > l + thr;
        }
    return up >= 6 || dn >= 6;
}

/* Median of the 8 neighbours, per channel: an impulse's own value carries no information. */
static void neighbour_median(const uint8_t *px, size_t stride, uint8_t *out)
{
    for (int c = 0; c < 3; c++) {
        int v[8], n = 0;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                if (!dx && !dy)
                    continue;
                int x = px[(ptrdiff_t)dy * (ptrdiff_t)stride + dx * 3 + c], i = n++;
                while (i > 0 && v[i - 1] > x) {
                    v[i] = v[i - 1];
                    i--;
                }
                v[i] = x;
            }
        out[c] = (uint8_t)((v[3] + v[4] + 1) >> 1);
    }
}

void pimg_denoise_rect(const uint8_t *src, size_t src_stride, uint8_t *dst, size_t dst_stride, int w,
                       int h, const pimg_denoise_params *p, uint8_t *scratch)
{
    /* Pass 1: impulses out, over the output plus the 2-pixel border pass 2 reads. */
    int sw = w + 4;
    size_t ss = (size_t)sw * 3;
    for (int y = -2; y < h + 2; y++) {
        const uint8_t *s = src + (ptrdiff_t)y * (ptrdiff_t)src_stride - 2 * 3;
        uint8_t *o = scratch + (size_t)(y + 2) * ss;
        for (int x = 0; x < sw; x++, s += 3, o += 3) {
            if (p->impulse && pimg_is_impulse(s, src_stride, p->impulse_thr))
                neighbour_median(s, src_stride, o);
            else
                memcpy(o, s, 3);
        }
    }
    /* Pass 2: bilateral 5x5 on the cleaned pixels (or a plain copy). */
    for (int y = 0; y < h; y++) {
        uint8_t *o = dst + (size_t)y * dst_stride;
        const uint8_t *c = scratch + (size_t)(y + 2) * ss + 2 * 3;
        if (p->range_h <= 0) {
            memcpy(o, c, (size_t)w * 3);
            continue;
        }
        for (int x = 0; x < w; x++, c += 3, o += 3) {
            int sr = 0, sg = 0, sb = 0, sw_ = 0;
            for (int dy = -2; dy <= 2; dy++) {
                const uint8_t *q = c + (ptrdiff_t)dy * (ptrdiff_t)ss - 2 * 3;
                const int *ws = p->wspace + (dy + 2) * 5;
                for (int dx = 0; dx < 5; dx++, q += 3) {
                    int d = abs(q[0] - c[0]) + abs(q[1] - c[1]) + abs(q[2] - c[2]);
                    int wt = ws[dx] * p->wrange[d];
                    sr += wt * q[0];
                    sg += wt * q[1];
                    sb += wt * q[2];
                    sw_ += wt;
                }
            }
            o[0] = (uint8_t)((sr + sw_ / 2) / sw_);
            o[1] = (uint8_t)((sg + sw_ / 2) / sw_);
            o[2] = (uint8_t)((sb + sw_ / 2) / sw_);
        }
    }
}

int pimg_denoise_rgb8(pimg_rgb8 *img, const pimg_denoise_params *p)
{
    const int m = PIMG_DENOISE_MARGIN;
    int pw = img->w + 2 * m, ph = img->h + 2 * m;
    uint8_t *pad = malloc((size_t)pw * ph * 3);
    uint8_t *scratch = malloc((size_t)(img->w + 4) * (img->h + 4) * 3);
    if (!pad || !scratch) {
        free(pad);
        free(scratch);
        return -1;
    }
    for (int y = 0; y < ph; y++) {
        int sy = y - m < 0 ? 0 : y - m >= img->h ? img->h - 1 : y - m;
        for (int x = 0; x < pw; x++) {
            int sx = x - m < 0 ? 0 : x - m >= img->w ? img->w - 1 : x - m;
            memcpy(pad + ((size_t)y * pw + x) * 3, img->p + ((size_t)sy * img->w + sx) * 3, 3);
        }
    }
    pimg_denoise_rect(pad + ((size_t)m * pw + m) * 3, (size_t)pw * 3, img->p, (size_t)img->w * 3, img->w,
                      img->h, p, scratch);
    free(pad);
    free(scratch);
    return 0;
}

void pimg_clahe_build(const pimg_rgb8 *img, double clip, double strength, pimg_clahe *c)
{
    /* Fewer tiles on tiny images so every tile still has a meaningful histogram. */
    c->tiles_x = img->w / 16 < PIMG_CLAHE_TILES ? (img->w / 16 > 0 ? img->w / 16 : 1) : PIMG_CLAHE_TILES;
    c->tiles_y = img->h / 16 < PIMG_CLAHE_TILES ? (img->h / 16 > 0 ? img->h / 16 : 1) : PIMG_CLAHE_TILES;
    c->strength = strength;
    for (int ty = 0; ty < c->tiles_y; ty++)
        for (int tx = 0; tx < c->tiles_x; tx++) {
            int x0 = tx * img->w / c->tiles_x, x1 = (tx + 1) * img->w / c->tiles_x;
            int y0 = ty * img->h / c->tiles_y, y1 = (ty + 1) * img->h / c->tiles_y;
            long hist[256] = {0}, n = (long)(x1 - x0) * (y1 - y0);
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++)
                    hist[luma8(img->p + ((size_t)y * img->w + x) * 3)]++;
            /* Clip and hand the excess back evenly: limits how steep the tile's curve gets. */
            long limit = (long)fmax(1.0, clip * n / 256.0), excess = 0;
            for (int b = 0; b < 256; b++)
                if (hist[b] > limit) {
                    excess += hist[b] - limit;
                    hist[b] = limit;
                }
            long add = excess / 256, rest = excess % 256;
            for (int b = 0; b < 256; b++)
                hist[b] += add + (b < rest);
            uint8_t *lut = c->lut[ty * c->tiles_x + tx];
            long acc = 0;
            for (int b = 0; b < 256; b++) {
                acc += hist[b];
                double eq = n ? 255.0 * acc / n : b;
                lut[b] = clamp8((int)lround(b + strength * (eq - b)));
            }
        }
}

void pimg_clahe_rect(const pimg_clahe *c, int fw, int fh, int x0, int y0, int w, int h,
                     const uint8_t *src, size_t src_stride, uint8_t *dst, size_t dst_stride)
{
    int *ix = malloc(sizeof(int) * (size_t)w * 2);
    int *axw = malloc(sizeof(int) * (size_t)w);
    if (!ix || !axw) { /* leave the rectangle as it is rather than fail the photo */
        for (int y = 0; y < h && src != dst; y++)
            memcpy(dst + (size_t)y * dst_stride, src + (size_t)y * src_stride, (size_t)w * 3);
        free(ix);
        free(axw);
        return;
    }
    /* Column weights once per rectangle: tile centres sit at (i + 0.5) * size / tiles. */
    for (int x = 0; x < w; x++) {
        double f = (x0 + x + 0.5) * c->tiles_x / fw - 0.5;
        int i0 = (int)floor(f);
        double a = f - i0;
        if (i0 < 0) {
            i0 = 0;
            a = 0;
        }
        if (i0 >= c->tiles_x - 1) {
            i0 = c->tiles_x - 1;
            a = 0;
        }
        ix[2 * x] = i0;
        ix[2 * x + 1] = i0 + 1 < c->tiles_x ? i0 + 1 : i0;
        axw[x] = (int)lround(a * 256);
    }
    for (int y = 0; y < h; y++) {
        double f = (y0 + y + 0.5) * c->tiles_y / fh - 0.5;
        int j0 = (int)floor(f);
        double a = f - j0;
        if (j0 < 0) {
            j0 = 0;
            a = 0;
        }
        if (j0 >= c->tiles_y - 1) {
            j0 = c->tiles_y - 1;
            a = 0;
        }
        int j1 = j0 + 1 < c->tiles_y ? j0 + 1 : j0, ay = (int)lround(a * 256);
        const uint8_t *s = src + (size_t)y * src_stride;
        uint8_t *o = dst + (size_t)y * dst_stride;
        for (int x = 0; x < w; x++, s += 3, o += 3) {
            int l = luma8(s), ax = axw[x];
            int t00 = c->lut[j0 * c->tiles_x + ix[2 * x]][l], t01 = c->lut[j0 * c->tiles_x + ix[2 * x + 1]][l];
            int t10 = c->lut[j1 * c->tiles_x + ix[2 * x]][l], t11 = c->lut[j1 * c->tiles_x + ix[2 * x + 1]][l];
            int top = t00 * (256 - ax) + t01 * ax, bot = t10 * (256 - ax) + t11 * ax;
            int nl = (top * (256 - ay) + bot * ay + (1 << 15)) >> 16;
            int d = nl - l;
            o[0] = clamp8(s[0] + d);
            o[1] = clamp8(s[1] + d);
            o[2] = clamp8(s[2] + d);
        }
    }
    free(ix);
    free(axw);
}

void pimg_lut_rgb8(pimg_rgb8 *img, const uint8_t lut[3][256])
{
    size_t n = (size_t)img->w * img->h;
    uint8_t *p = img->p;
    for (size_t i = 0; i < n; i++, p += 3) {
        p[0] = lut[0][p[0]];
        p[1] = lut[1][p[1]];
        p[2] = lut[2][p[2]];
    }
}

int pimg_rgb8_from_tensor(const pimg_tensor *t, pimg_rgb8 *out)
{
    size_t n = (size_t)t->w * t->h * 3;
    out->w = t->w;
    out->h = t->h;
    out->p = malloc(n);
    if (!out->p)
        return -1;
    /* Round half up with a clamp: branch-free, so the compiler vectorises it (this runs on
     * every analysis copy). */
    for (size_t i = 0; i < n; i++) {
        float v = t->data[i] * 255.0f + 0.5f;
        v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
        out->p[i] = (uint8_t)v;
    }
    return 0;
}

double pimg_rgb8_psnr(const pimg_rgb8 *a, const pimg_rgb8 *b)
{
    size_t n = (size_t)a->w * a->h * 3;
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a->p[i] - b->p[i];
        se += d * d;
    }
    return se == 0 ? 99.0 : 10 * log10(255.0 * 255.0 * n / se);
}
