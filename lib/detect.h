/* detect.h — main-product detection (HOG + libsvm) and its foreground mask.
 *
 * Saliency proposals on a ~160 px copy of the tensor (saliency.h) are scored by a libsvm
 * "is this the whole product" model over HOG (VLFeat) and contrast features; the best boxes
 * are merged by score voting, a box-seeded colour-model mask is computed (mask.h) and, on a
 * plain backdrop (a smooth colour surface fitted to the frame's ring explains it), the box of the
 * pixels departing from that backdrop is taken instead of the ranking. Without a model the proposals are
 * ranked by a saliency-contrast heuristic. The model file is a plain libsvm model (see
 * detect_svm.h); training lives in detect_train.h. */
#ifndef PIMG_DETECT_H
#define PIMG_DETECT_H

#include "status.h"
#include "tensor.h"

typedef struct pimg_detect_model pimg_detect_model;

typedef struct {
    int found;          /* 0: no product found, box and mask unset */
    double box[4];      /* x0, y0, x1, y1 in tensor pixels, x1/y1 exclusive */
    double confidence;  /* 0..1 */
    pimg_tensor *mask;  /* 1 channel, tensor size, 0..1 foreground; owned, may be NULL */
} pimg_detection;

/* Loads a libsvm model file. NOT_FOUND if the file is missing, BAD_INPUT if it is not a
 * two-class libsvm model over this build's feature vector.
 * Ownership: *out written on success, freed with pimg_detect_model_free. */
pimg_status pimg_detect_model_load(const char *path, pimg_detect_model **out, pimg_error *err);

/* NULL-safe. */
void pimg_detect_model_free(pimg_detect_model *m);

/* Writes m as a libsvm model file. A linear model is written in its collapsed form (one
 * "support vector" holding the weight vector, coefficient 1), which scores identically and
 * keeps the file small. IO on write failure. */
pimg_status pimg_detect_model_save(const pimg_detect_model *m, const char *path, pimg_error *err);

/* Finds the main product in the 3-channel tensor t. m may be NULL: the heuristic ranking is
 * used (box_confidence is then a heuristic 0..1 score, not a calibrated probability).
 * out->confidence with a model is a Platt-calibrated probability that the box has IoU >= 0.5
 * with the true product box. out->mask is the colour-histogram mask (mask.h), or with
 * grabcut_mask the GrabCut one (about 20 ms more at 1024 px: for callers that draw the mask into
 * an output). The box is refined by that mask, so it can differ by a few pixels between the two.
 * Errors: BAD_INPUT (tensor too small/not colour), NOMEM.
 * Ownership: out->mask belongs to out; release with pimg_detection_clear. */
pimg_status pimg_detect_run(const pimg_detect_model *m, const pimg_tensor *t, int grabcut_mask,
                            pimg_detection *out, pimg_error *err);

/* Frees d's mask and zeroes d; NULL-safe. */
void pimg_detection_clear(pimg_detection *d);

#endif
