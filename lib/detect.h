/* detect.h — main-product detection (HOG + libsvm) and its foreground mask. */
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

/* Ownership: *out written on success, freed with pimg_detect_model_free. NOT_FOUND if missing. */
pimg_status pimg_detect_model_load(const char *path, pimg_detect_model **out, pimg_error *err);

void pimg_detect_model_free(pimg_detect_model *m);

/* Finds the main product in t. m may be NULL (no model): nothing found.
 * Ownership: out->mask belongs to out; release with pimg_detection_clear. */
pimg_status pimg_detect_run(const pimg_detect_model *m, const pimg_tensor *t, pimg_detection *out,
                            pimg_error *err);

void pimg_detection_clear(pimg_detection *d);

#endif
