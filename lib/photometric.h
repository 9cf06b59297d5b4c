/* photometric.h — direct (intensity-based) refinement of a homography between two grey images.
 *
 * Keypoint homographies are limited by how precisely a few hundred keypoints are located; when
 * the texture sits in a small part of the frame (a product on a plain background) that error is
 * magnified at the image corners. Starting from such an estimate, Gauss-Newton on the pixel
 * intensities of every strongly textured reference pixel (Lucas-Kanade / Baker-Matthews
 * forward-additive, with a gain and bias for exposure differences and Huber weights against
 * occlusion) pulls the model to sub-pixel agreement over the whole textured area. Pure math on
 * tensors, reentrant. */
#ifndef PIMG_PHOTOMETRIC_H
#define PIMG_PHOTOMETRIC_H

#include "status.h"
#include "tensor.h"

typedef struct {
    int samples;       /* reference pixels used */
    int iterations;    /* Gauss-Newton steps accepted */
    double cost_start; /* mean robust cost before / after */
    double cost_end;
} pimg_photometric_stats;

/* Refines H (maps `in` pixel coordinates to `ref` pixel coordinates, pixel-area convention,
 * both in the tensors' own pixels) in place. in and ref are 1-channel tensors. H is changed
 * only when the photometric cost goes down; it is left alone (and PIMG_OK returned) when there
 * is too little texture or overlap to say anything. stats may be NULL. NOMEM when scratch
 * images (freed before return) cannot be allocated. */
pimg_status pimg_photometric_refine(const pimg_tensor *in, const pimg_tensor *ref, double H[9],
                                    pimg_photometric_stats *stats);

#endif
