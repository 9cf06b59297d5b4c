/* tensor.c — allocation and the few geometric helpers the analysis code shares
 * (grey, quarter turns, small rotations, resize). Kept dependency-free on purpose. */
#include "tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

pimg_tensor *pimg_tensor_new(int w, int h, int c)
{
    if (w <= 0 || h <= 0 || c <= 0 || (long long)w * h * c > (1LL << 30))
        return NULL;
    pimg_tensor *t = malloc(sizeof *t);
    if (!t)
        return NULL;
    t->data = calloc((size_t)w * h * c, sizeof(float));
    if (!t->data) {
        free(t);
        return NULL;
    }
    t->w = w;
    t->h = h;
    t->c = c;
    return t;
}

void pimg_tensor_free(pimg_tensor *t)
{
    if (!t)
        return;
    free(t->data);
    free(t);
}

pimg_tensor *pimg_tensor_copy(const pimg_tensor *t)
{
    pimg_tensor *o = pimg_tensor_new(t->w, t->h, t->c);
    if (o)
        memcpy(o->data, t->data, sizeof(float) * (size_t)t->w * t->h * t->c);
    return o;
}

pimg_tensor *pimg_tensor_grey(const pimg_tensor *t)
{
    if (t->c == 1)
        return pimg_tensor_copy(t);
    if (t->c < 3)
        return NULL;
    pimg_tensor *g = pimg_tensor_new(t->w, t->h, 1);
    if (!g)
        return NULL;
    long n = (long)t->w * t->h;
    for (long i = 0; i < n; i++) {
        const float *p = t->data + i * t->c;
        g->data[i] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
    }
    return g;
}

pimg_tensor *pimg_tensor_rot90(const pimg_tensor *t, int deg)
{
    deg = ((deg % 360) + 360) % 360;
    if (deg % 90)
        return NULL;
    int odd = deg == 90 || deg == 270;
    pimg_tensor *o = pimg_tensor_new(odd ? t->h : t->w, odd ? t->w : t->h, t->c);
    if (!o)
        return NULL;
    for (int y = 0; y < t->h; y++)
        for (int x = 0; x < t->w; x++) {
            int nx, ny; /* where source (x, y) lands after a clockwise turn */
            switch (deg) {
            case 90: nx = t->h - 1 - y; ny = x; break;
            case 180: nx = t->w - 1 - x; ny = t->h - 1 - y; break;
            case 270: nx = y; ny = t->w - 1 - x; break;
            default: nx = x; ny = y; break;
            }
            memcpy(pimg_tensor_at(o, nx, ny), pimg_tensor_at(t, x, y), sizeof(float) * t->c);
        }
    return o;
}

/* Bilinear sample with edge clamping; writes t->c floats to out. */
static void sample(const pimg_tensor *t, float fx, float fy, float *out)
{
    if (fx < 0) fx = 0;
    if (fy < 0) fy = 0;
    if (fx > t->w - 1) fx = (float)(t->w - 1);
    if (fy > t->h - 1) fy = (float)(t->h - 1);
    int x0 = (int)fx, y0 = (int)fy;
    int x1 = x0 + 1 < t->w ? x0 + 1 : x0, y1 = y0 + 1 < t->h ? y0 + 1 : y0;
    float ax = fx - x0, ay = fy - y0;
    const float *p00 = pimg_tensor_at(t, x0, y0), *p10 = pimg_tensor_at(t, x1, y0);
    const float *p01 = pimg_tensor_at(t, x0, y1), *p11 = pimg_tensor_at(t, x1, y1);
    for (int c = 0; c < t->c; c++)
        out[c] = (1 - ay) * ((1 - ax) * p00[c] + ax * p10[c]) + ay * ((1 - ax) * p01[c] + ax * p11[c]);
}

pimg_tensor *pimg_tensor_rotate(const pimg_tensor *t, double deg)
{
    pimg_tensor *o = pimg_tensor_new(t->w, t->h, t->c);
    if (!o)
        return NULL;
    /* Inverse mapping: for each output pixel find the source; clockwise on screen (y down). */
    double a = deg * M_PI / 180.0, ca = cos(a), sa = sin(a);
    double cx = (t->w - 1) / 2.0, cy = (t->h - 1) / 2.0;
    for (int y = 0; y < o->h; y++)
        for (int x = 0; x < o->w; x++) {
            double dx = x - cx, dy = y - cy;
            double sx = ca * dx + sa * dy + cx, sy = -sa * dx + ca * dy + cy;
            sample(t, (float)sx, (float)sy, pimg_tensor_at(o, x, y));
        }
    return o;
}

pimg_tensor *pimg_tensor_resize(const pimg_tensor *t, int w, int h)
{
    pimg_tensor *o = pimg_tensor_new(w, h, t->c);
    if (!o)
        return NULL;
    double sx = (double)t->w / w, sy = (double)t->h / h;
    if (sx >= 2.0 || sy >= 2.0) {
        /* Area average over the source footprint: avoids aliasing the features see. */
        for (int y = 0; y < h; y++) {
            int y0 = (int)(y * sy), y1 = (int)((y + 1) * sy);
            if (y1 <= y0) y1 = y0 + 1;
            if (y1 > t->h) y1 = t->h;
            for (int x = 0; x < w; x++) {
                int x0 = (int)(x * sx), x1 = (int)((x + 1) * sx);
                if (x1 <= x0) x1 = x0 + 1;
                if (x1 > t->w) x1 = t->w;
                float *d = pimg_tensor_at(o, x, y);
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++) {
                        const float *s = pimg_tensor_at(t, xx, yy);
                        for (int c = 0; c < t->c; c++)
                            d[c] += s[c];
                    }
                float inv = 1.0f / ((x1 - x0) * (y1 - y0));
                for (int c = 0; c < t->c; c++)
                    d[c] *= inv;
            }
        }
    } else {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                sample(t, (float)((x + 0.5) * sx - 0.5), (float)((y + 0.5) * sy - 0.5), pimg_tensor_at(o, x, y));
    }
    return o;
}

static float srgb_to_linear(float v)
{
    return v <= 0.04045f ? v / 12.92f : powf((v + 0.055f) / 1.055f, 2.4f);
}

static float lab_f(float t)
{
    return t > 0.008856f ? cbrtf(t) : 7.787f * t + 16.0f / 116.0f;
}

void pimg_srgb_to_lab(const float rgb[3], float lab[3])
{
    float r = srgb_to_linear(rgb[0]), g = srgb_to_linear(rgb[1]), b = srgb_to_linear(rgb[2]);
    float x = (0.4124f * r + 0.3576f * g + 0.1805f * b) / 0.95047f;
    float y = 0.2126f * r + 0.7152f * g + 0.0722f * b;
    float z = (0.0193f * r + 0.1192f * g + 0.9505f * b) / 1.08883f;
    float fx = lab_f(x), fy = lab_f(y), fz = lab_f(z);
    lab[0] = 116.0f * fy - 16.0f;
    lab[1] = 500.0f * (fx - fy);
    lab[2] = 200.0f * (fy - fz);
}
