/* align.c — placeholder until SIFT + RANSAC alignment lands (issue 7). */
#include "align.h"

#include <string.h>

pimg_status pimg_align_estimate(const pimg_tensor *in, double in_scale, const pimg_tensor *ref,
                                double ref_scale, pimg_align_result *out, pimg_error *err)
{
    (void)in;
    (void)in_scale;
    (void)ref;
    (void)ref_scale;
    memset(out, 0, sizeof *out);
    return pimg_error_set(err, PIMG_ERR_NOT_IMPLEMENTED, "alignment not implemented yet");
}

pimg_status pimg_align_warp(pimg_image *img, const double H[9], int ref_w, int ref_h, pimg_error *err)
{
    (void)img;
    (void)H;
    (void)ref_w;
    (void)ref_h;
    return pimg_error_set(err, PIMG_ERR_NOT_IMPLEMENTED, "alignment not implemented yet");
}
