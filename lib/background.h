/* background.h — marketplace finishing at full resolution: background blur or pure white
 * outside the product mask, centring crop to a fill share, and the compliance report.
 *
 * The mask travels with the image: every function that changes the image's geometry takes the
 * mask aligned with the current pixels (any resolution: it is resampled to the image) and,
 * where it changes the geometry, returns the mask aligned with the new pixels, so later steps
 * and the compliance check see the same product. */
#ifndef PIMG_BACKGROUND_H
#define PIMG_BACKGROUND_H

#include <cjson/cJSON.h>

#include "image.h"
#include "status.h"
#include "tensor.h"

/* Re-frames a mask computed on the upright analysis tensor for the current image after a
 * level rotation of deg degrees (clockwise) that kept the centred inner rectangle: the mask is
 * turned about its centre, then the centred part matching the current aspect and scale
 * (full_w x full_h upright pixels before levelling -> cur_w x cur_h now) is cut out.
 * Ownership: *out freed with pimg_tensor_free. */
pimg_status pimg_background_mask_for_level(const pimg_tensor *mask, double deg, int full_w, int full_h, int cur_w,
                                           int cur_h, pimg_tensor **out, pimg_error *err);

/* Blurs everything outside the mask strongly (Gaussian, sigma about 1/60 of the longest side,
 * normalised by the background weight so the product's colours do not halo into it) and keeps
 * the product untouched: out = img * m + blur * (1 - m). */
pimg_status pimg_background_blur(pimg_image *img, const pimg_tensor *mask, pimg_error *err);

/* Pure white (255,255,255) outside the mask with the mask's soft edge; shadow != 0 adds a
 * faint soft contact shadow below the product. */
pimg_status pimg_background_white(pimg_image *img, const pimg_tensor *mask, int shadow, pimg_error *err);

/* Centres the product (bounding box of mask >= 0.5) in a square frame where its longer side
 * fills `fill` (0.1..1] of the frame, padding with white when white != 0 or else with the
 * mean colour of the photo's outer ring; then enlarges to min_side on the longest side when
 * the frame is smaller and the input was at least that large (input_long_side). *mask is
 * replaced by the mask aligned with the new frame. NOT_FOUND when the mask is empty. */
pimg_status pimg_background_crop(pimg_image *img, pimg_tensor **mask, double fill, int white, int min_side,
                                 int input_long_side, pimg_error *err);

/* Marketplace checks of a photo (3-channel tensor, any size) and its product mask (any size,
 * same frame; NULL = none found): background whiteness (share of clear-background pixels with
 * every channel >= 250), fill ratio (longer side of the product box over the frame's), the
 * resolution (long_side, of the real image), and sharpness (variance of the Laplacian of the
 * product region on 0..255 grey). Each rule gets value, threshold and pass; "pass" is all.
 * Ownership: caller frees the result with cJSON_Delete; NULL on no memory. */
cJSON *pimg_compliance_measure(const pimg_tensor *t, const pimg_tensor *mask, int long_side);

/* The current pixels as a 3-channel tensor with the longest side at most max_side (for
 * measuring the finished image). Ownership: *out freed with pimg_tensor_free. */
pimg_status pimg_background_image_tensor(pimg_image *img, int max_side, pimg_tensor **out, pimg_error *err);

#endif
