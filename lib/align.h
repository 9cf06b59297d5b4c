/* align.h — registration of an image to a reference view: SIFT + ratio test + RANSAC
 * homography (VLFeat), and the full-resolution warp. */
#ifndef PIMG_ALIGN_H
#define PIMG_ALIGN_H

#include "image.h"
#include "status.h"
#include "tensor.h"

typedef struct {
    int found;      /* 0: no trustworthy homography */
    double H[9];    /* row-major, maps input pixel (x, y, 1) to reference pixel */
    int inliers;
    int matches;
    int features_in, features_ref; /* SIFT features (keypoint orientations) kept per image */
} pimg_align_result;

/* Estimates the homography from in to ref. The tensors are analysis copies; in_scale and
 * ref_scale are full-resolution pixels per tensor pixel, so H maps full-resolution input
 * coordinates to full-resolution reference coordinates. */
pimg_status pimg_align_estimate(const pimg_tensor *in, double in_scale, const pimg_tensor *ref,
                                double ref_scale, pimg_align_result *out, pimg_error *err);

/* Warps the image's current pixels into a ref_w x ref_h frame with H (full resolution). */
pimg_status pimg_align_warp(pimg_image *img, const double H[9], int ref_w, int ref_h, pimg_error *err);

#endif
