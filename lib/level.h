/* level.h — small-tilt (±20°) estimation on an upright tensor and its full-resolution fix. */
#ifndef PIMG_LEVEL_H
#define PIMG_LEVEL_H

#include "image.h"
#include "status.h"
#include "tensor.h"

/* Estimates the clockwise angle in degrees (-20..20) that levels the upright tensor t, with a
 * 0..1 confidence; *deg is 0 when the evidence is too weak to act on. */
pimg_status pimg_level_estimate(const pimg_tensor *t, double *deg, double *confidence, pimg_error *err);

/* Rotates the image's current pixels clockwise by deg at full resolution; crop != 0 keeps the
 * largest inner rectangle, otherwise corners are filled white. */
pimg_status pimg_level_apply(pimg_image *img, double deg, int crop, pimg_error *err);

#endif
