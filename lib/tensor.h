/* tensor.h — the float image the analysis code works on.
 *
 * A pimg_tensor is a dense, row-major, channel-interleaved float array: pixel (x, y) channel c is
 * data[(y * w + x) * c_count + c]. Colour tensors are sRGB (gamma-encoded, not linear) scaled to
 * 0..1; grey tensors have one channel with the same scale. Tensors are plain data: no libvips
 * types, safe to share read-only between threads. */
#ifndef PIMG_TENSOR_H
#define PIMG_TENSOR_H

#include "status.h"

typedef struct {
    int w, h, c;
    float *data;
} pimg_tensor;

/* Allocates a zero-filled w x h x c tensor. Returns NULL on bad size or no memory.
 * Ownership: caller frees with pimg_tensor_free. */
pimg_tensor *pimg_tensor_new(int w, int h, int c);

/* Frees t and its data; NULL-safe. */
void pimg_tensor_free(pimg_tensor *t);

/* Deep copy. Ownership: caller frees the result with pimg_tensor_free; NULL on no memory. */
pimg_tensor *pimg_tensor_copy(const pimg_tensor *t);

/* Pointer to pixel (x, y)'s first channel; no bounds check. */
static inline float *pimg_tensor_at(const pimg_tensor *t, int x, int y)
{
    return t->data + ((long)y * t->w + x) * t->c;
}

/* Luma (0.299 R + 0.587 G + 0.114 B) of a 3-channel tensor, or a copy of a 1-channel one.
 * Ownership: caller frees with pimg_tensor_free; NULL on no memory or bad channel count. */
pimg_tensor *pimg_tensor_grey(const pimg_tensor *t);

/* The tensor turned clockwise by deg (0, 90, 180 or 270). Ownership: caller frees; NULL on no
 * memory or an angle that is not a multiple of 90. */
pimg_tensor *pimg_tensor_rot90(const pimg_tensor *t, int deg);

/* The tensor turned clockwise by deg degrees about its centre with bilinear sampling, same
 * size; pixels that fall outside the source repeat the nearest edge. Ownership: caller frees. */
pimg_tensor *pimg_tensor_rotate(const pimg_tensor *t, double deg);

/* Bilinear (area-averaged when shrinking by 2x or more) resize to w x h.
 * Ownership: caller frees; NULL on no memory. */
pimg_tensor *pimg_tensor_resize(const pimg_tensor *t, int w, int h);

/* CIE L*a*b* (D65; L 0..100, a/b roughly -100..100) of one sRGB pixel given 0..1. */
void pimg_srgb_to_lab(const float rgb[3], float lab[3]);

#endif
