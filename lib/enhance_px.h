/* enhance_px.h — lib-internal pixel kernels of the enhancement, on plain 8-bit RGB memory.
 *
 * The same kernels run on the analysis copy (to measure what a correction would do, and in
 * training to score a plan against the clean original) and, strip by strip through libvips
 * regions, on the full-resolution image. Keeping them free of libvips types is what lets the
 * trainer and the tests score exactly the code that ships. */
#ifndef PIMG_ENHANCE_PX_H
#define PIMG_ENHANCE_PX_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

/* Interleaved 8-bit RGB, row-major, stride 3*w. Owned by whoever allocated it. */
typedef struct {
    int w, h;
    uint8_t *p;
} pimg_rgb8;

/* Pixels the denoise kernel reads beyond each side of its output rectangle. */
#define PIMG_DENOISE_MARGIN 3

typedef struct {
    int impulse;       /* nonzero: replace isolated outliers by their neighbours' median */
    int impulse_thr;   /* luma step (0..255) that makes a pixel an outlier */
    double range_h;    /* bilateral range scale on |dR|+|dG|+|dB|; 0 = no smoothing */
    /* Derived by pimg_denoise_prepare: */
    int wrange[766];   /* range weight by colour distance, 0..1024 */
    int wspace[25];    /* 5x5 spatial weight, 0..64 */
} pimg_denoise_params;

/* Fills the weight tables of p from impulse/impulse_thr/range_h. */
void pimg_denoise_prepare(pimg_denoise_params *p);

/* Denoises a w x h rectangle. src points at the input pixel of output (0,0); the input must be
 * readable PIMG_DENOISE_MARGIN pixels beyond every side. scratch must hold
 * (w + 4) * (h + 4) * 3 bytes. */
void pimg_denoise_rect(const uint8_t *src, size_t src_stride, uint8_t *dst, size_t dst_stride, int w,
                       int h, const pimg_denoise_params *p, uint8_t *scratch);

/* Denoises a whole buffer in place (edges repeat). Returns 0, or -1 on no memory. */
int pimg_denoise_rgb8(pimg_rgb8 *img, const pimg_denoise_params *p);

/* Per-pixel outlier test used both to measure the impulse share and by the kernel: the pixel's
 * luma differs by more than thr from at least 6 of its 8 neighbours, all on the same side. */
int pimg_is_impulse(const uint8_t *px, size_t stride, int thr);

/* Tiled CLAHE on luma: a 256-entry lookup per tile, blended bilinearly between tile centres. */
#define PIMG_CLAHE_TILES 8
typedef struct {
    int tiles_x, tiles_y;
    double strength; /* 0..1 blend of the equalised lightness with the original */
    uint8_t lut[PIMG_CLAHE_TILES * PIMG_CLAHE_TILES][256];
} pimg_clahe;

/* Builds the tile lookups from an image (the analysis copy). clip is the histogram clip limit
 * as a multiple of the mean bin count (OpenCV's clipLimit); the strength is folded in. */
void pimg_clahe_build(const pimg_rgb8 *img, double clip, double strength, pimg_clahe *c);

/* Applies c to rows of an image of full size fw x fh: the rectangle at (x0, y0), w x h, is read
 * from src and written to dst (may alias). Lightness changes, chroma differences are kept. */
void pimg_clahe_rect(const pimg_clahe *c, int fw, int fh, int x0, int y0, int w, int h,
                     const uint8_t *src, size_t src_stride, uint8_t *dst, size_t dst_stride);

/* Applies per-channel lookups in place. */
void pimg_lut_rgb8(pimg_rgb8 *img, const uint8_t lut[3][256]);

/* 8-bit copy of a 0..1 float RGB tensor. Ownership: caller frees ->p with free(); -1 on no memory. */
int pimg_rgb8_from_tensor(const pimg_tensor *t, pimg_rgb8 *out);

/* PSNR (dB, 99 when equal) between two same-size buffers. */
double pimg_rgb8_psnr(const pimg_rgb8 *a, const pimg_rgb8 *b);

#endif
