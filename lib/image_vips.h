/* image_vips.h — lib-internal access to a pimg_image's libvips pixels.
 *
 * Only lib/ modules that apply corrections at full resolution include this; the public API
 * (image.h) keeps libvips types out. */
#ifndef PIMG_IMAGE_VIPS_H
#define PIMG_IMAGE_VIPS_H

#include <vips/vips.h>

#include "image.h"

/* The current full-resolution pixels (sRGB uchar, 3 bands, EXIF-oriented, corrections so far),
 * decoding the header-only image on first use. Borrowed: valid until the next
 * pimg_image_set_vips or pimg_image_free; take a g_object_ref to keep it longer. */
pimg_status pimg_image_vips(pimg_image *img, VipsImage **out, pimg_error *err);

/* Replaces the current pixels with next (the image takes over the caller's reference).
 * next must be sRGB uchar with 3 bands. */
void pimg_image_set_vips(pimg_image *img, VipsImage *next);

/* Encoded bytes as loaded (borrowed, valid for the image's life). */
const void *pimg_image_bytes(const pimg_image *img, size_t *len);

#endif
