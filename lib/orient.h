/* orient.h — learned 0/90/180/270 orientation classifier.
 *
 * rotation is the clockwise quarter turn that makes the analysed image upright. The
 * classifier only answers non-zero when confident: a wrong turn is worse than none. A model file
 * is either the dense-SIFT Fisher-vector ranker (orient_fv.h, shipped) or the colour-moment +
 * HOG RBF SVM (orient_features.h); the loader tells them apart by the file's first bytes. */
#ifndef PIMG_ORIENT_H
#define PIMG_ORIENT_H

#include "status.h"
#include "tensor.h"

typedef struct pimg_orient_model pimg_orient_model;

/* Loads a model file. NOT_FOUND when the file does not exist.
 * Ownership: *out written on success, freed with pimg_orient_model_free. */
pimg_status pimg_orient_model_load(const char *path, pimg_orient_model **out, pimg_error *err);

void pimg_orient_model_free(pimg_orient_model *m);

/* Predicts the clockwise turn (0/90/180/270) that makes t upright, and a 0..1 confidence.
 * m may be NULL (no model): rotation 0, confidence 0. */
pimg_status pimg_orient_predict(const pimg_orient_model *m, const pimg_tensor *t, int *rotation,
                                double *confidence, pimg_error *err);

#endif
