/* mask.h — the product's foreground mask, seeded by its detected box.
 *
 * Two stages. A colour-histogram model: 4096-bin RGB histograms of foreground (inside the box,
 * weighted by saliency) and background (outside it), re-estimated twice, plus the departure
 * from a smooth backdrop surface, give a per-pixel foreground probability. GrabCut (grabcut.h:
 * colour mixtures and an iterated graph cut, Rother et al. 2004) then segments the grown box
 * at about 192 px, started from that probability, with a ring around the grown box fixed as
 * background; without it (grabcut 0) the probability is cut at one half. The labels are brought
 * back to the tensor's resolution, cleaned (small blobs away, holes filled, nothing outside the
 * grown box) and feathered inward so the soft edge lies on product pixels rather than on
 * background. */
#ifndef PIMG_MASK_H
#define PIMG_MASK_H

#include "status.h"
#include "tensor.h"

/* Computes the mask of the product in box (tensor pixels, x1/y1 exclusive) of the 3-channel
 * tensor t. prior (may be NULL) is a 1-channel foreground-evidence map of any size (resampled),
 * used to weight the first foreground colour model. grabcut 1 runs the graph-cut stage (about
 * 20 ms more on a 1024 px tensor: for masks that are drawn into the output), 0 stops at the
 * colour-histogram cut (enough for a box and the compliance figures). On success *mask is a
 * 1-channel tensor of t's size (0..1) and, when mask_box is non-NULL, it receives the bounding
 * box of mask >= 0.5 (or a copy of box when the mask is empty). backdrop_sigma (may be NULL) receives the RMS
 * residual (0..1 RGB units) of a smooth colour surface fitted to the pixels around the box:
 * small (< 0.04) on a studio/plain backdrop, large on a cluttered scene.
 * Ownership: *mask written on success, freed with pimg_tensor_free. */
pimg_status pimg_mask_from_box(const pimg_tensor *t, const double box[4], const pimg_tensor *prior, int grabcut,
                               pimg_tensor **mask, double mask_box[4], double *backdrop_sigma, pimg_error *err);

/* Dilates the 0/1 image in (w x h) by a square of radius r into out (w x h, not aliasing in):
 * out is 1 where any pixel of in within r is 1. Returns -1 on no memory (out untouched). */
int pimg_mask_dilate(const unsigned char *in, unsigned char *out, int w, int h, int r);

#endif
