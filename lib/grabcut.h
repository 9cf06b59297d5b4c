/* grabcut.h — lib-internal: GrabCut foreground segmentation of a small colour image.
 *
 * Rother, Kolmogorov & Blake, "GrabCut — Interactive Foreground Extraction using Iterated Graph
 * Cuts" (SIGGRAPH 2004): foreground and background are each a Gaussian mixture in RGB (5
 * full-covariance components); a labelling costs, per pixel, minus the log-likelihood of its
 * colour under its label's mixture (best component, as in the paper), plus, per pair of
 * 8-neighbours with different labels, gamma * exp(-beta * |dc|^2) / distance, with beta =
 * 1 / (2 <|dc|^2>) over the image; the minimum is one s-t cut (maxflow.h). Mixtures re-fitted
 * to the new labels and another cut, a few times, make the iterated version. mask.c runs it on
 * the product's grown box at a reduced size, started from its colour-histogram probability. */
#ifndef PIMG_GRABCUT_H
#define PIMG_GRABCUT_H

#include "status.h"
#include "tensor.h"

typedef struct {
    int iterations;      /* mixture re-fits + cuts */
    double gamma;        /* weight of the contrast-sensitive Potts term (50 in the paper) */
} pimg_grabcut_params;

/* The settings mask.c uses (chosen on composites outside the test split, see models/README). */
extern const pimg_grabcut_params pimg_grabcut_defaults;

/* Segments the 3-channel tensor rgb (0..1) into label[w*h] (1 = foreground). fixed[i] != 0
 * marks pixels that are background whatever their colour (may be NULL). prob[w*h] (0..1) is
 * the initial foreground probability: the first labelling is prob > 0.5 (the energy does not
 * use it further). When the first labelling has too few pixels of either kind to fit a
 * mixture, label is that labelling; when a cut leaves too few, label is the labelling before
 * that cut. Errors: BAD_INPUT (not 3 channels), NOMEM. */
pimg_status pimg_grabcut_segment(const pimg_tensor *rgb, const unsigned char *fixed, const float *prob,
                                 const pimg_grabcut_params *p, unsigned char *label, pimg_error *err);

#endif
