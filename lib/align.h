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

/* Longest side at which features are extracted: larger analysis tensors are area-reduced to
 * it first. Registration at ~0.5 MP (OpenCV's stitcher registers at 0.6 MP for the same reason)
 * keeps two 1024 px images well under 300 ms on one core; sub-pixel keypoints and the
 * least-squares refit keep the full-resolution error small. */
#define PIMG_ALIGN_MAX_SIDE 800

/* Estimates the homography from in to ref. The tensors are analysis copies; in_scale and
 * ref_scale are full-resolution pixels per tensor pixel, so H maps full-resolution input
 * coordinates to full-resolution reference coordinates, with the pixel-area convention
 * (pixel (0,0) covers [0,1) x [0,1); image corners are (0,0) and (w,h)). out->found is 0 when
 * there is too little texture, too few consistent matches, or the model fails the sanity
 * checks (mirror, fold, extreme area change); that is not an error. Errors: BAD_INPUT (bad
 * arguments), NOMEM. Allocates nothing that outlives the call. */
pimg_status pimg_align_estimate(const pimg_tensor *in, double in_scale, const pimg_tensor *ref,
                                double ref_scale, pimg_align_result *out, pimg_error *err);

/* Replaces the image's current pixels by their warp into a ref_w x ref_h frame: output pixel p
 * takes the input at H^-1 p (bicubic, libvips vips_mapim, lazy and full resolution); parts of
 * the frame the input does not cover are white. BAD_INPUT for a singular H or bad size. */
pimg_status pimg_align_warp(pimg_image *img, const double H[9], int ref_w, int ref_h, pimg_error *err);

#endif
