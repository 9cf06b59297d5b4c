/* orient_train.h — self-supervised training and evaluation of the orientation classifier.
 *
 * Two methods: the Fisher-vector ranker of orient_fv.h (default, shipped) and the earlier
 * colour-moment + HOG RBF SVM of orient_features.h (--method rbf).
 *
 * Any upright photo gives four labelled examples by turning it. The trainer reads upright photos
 * (labels.csv `up=1`, or every image of a folder without labels.csv), optionally composites
 * upright object cut-outs onto upright backgrounds (the marketplace "product on a background"
 * case), splits by source photo / object with a fixed seed (never by turned or augmented copy),
 * augments (mirror, crop, small tilt, brightness), grid-searches libsvm's C and gamma with
 * grouped cross-validation, picks the turn threshold on out-of-fold posteriors, trains the final
 * model, raises the threshold if needed so that no held-out upright photo is turned either, and
 * scores it on the held-out photos. Nothing is printed: progress goes to a callback. */
#ifndef PIMG_ORIENT_TRAIN_H
#define PIMG_ORIENT_TRAIN_H

#include <cjson/cJSON.h>

#include "orient.h"
#include "status.h"


enum { PIMG_ORIENT_METHOD_RBF = 0, PIMG_ORIENT_METHOD_FV = 1 };

typedef struct {
    const char *const *data_dirs; /* folders of photos (labels.csv optional) */
    int n_data_dirs;
    const char *const *objects_dirs; /* cut-outs with alpha (objects.csv optional) */
    int n_objects_dirs;              /* 0 = no composites */
    unsigned seed;                /* split, augmentation and libsvm's internal folds */
    double test_frac;             /* share of photos (and objects) held out for the test */
    int variants;                 /* augmented copies per photo, the unchanged one included */
    int composites;               /* composites made in all (split like the objects) */
    int folds;                    /* grouped cross-validation folds for the grid search */
    int max_iter;                 /* most grid points tried */
    double max_false_turn;        /* out-of-fold share of upright photos we accept turning */
    double turn_margin;           /* added to that threshold: the final model, trained on all folds,
                                   * is more confident than the fold models were */
    int work_side;                /* longest side photos are loaded at for augmentation */
    int method;                   /* PIMG_ORIENT_METHOD_RBF (colour moments + HOG, RBF SVM) or
                                   * PIMG_ORIENT_METHOD_FV (dense SIFT Fisher vectors, ranking) */
    const char *dump_path;        /* if set: write the example features there and stop (analysis) */
    pimg_progress_fn progress;    /* may be NULL */
    void *progress_ud;
} pimg_orient_train_opts;

/* Fills o with the defaults (Fisher-vector method, seed 1, 20% test, 3 variants, 300 composites,
 * 3 folds, 8 grid points, no out-of-fold false turns + 0.02 margin, 320 px). data_dirs/objects_dirs
 * stay NULL. */
void pimg_orient_train_opts_default(pimg_orient_train_opts *o);

/* Trains a model. *metrics receives the split, grid search, chosen parameters and test-split
 * metrics (per-class accuracy, confusion matrix, false-turn rate). BAD_INPUT when no usable
 * photo is found. Ownership: *out (pimg_orient_model_free) and *metrics (cJSON_Delete) are the
 * caller's, written only on success. */
pimg_status pimg_orient_train(const pimg_orient_train_opts *o, pimg_orient_model **out, cJSON **metrics,
                              pimg_error *err);

/* Scores model m on every upright photo of the folders, each turned 0/90/180/270 (the tensor
 * at the analysis size, as `pimg analyze` sees it). Ownership: *metrics is the caller's. */
pimg_status pimg_orient_evaluate(const pimg_orient_model *m, const char *const *dirs, int n_dirs,
                                 pimg_progress_fn progress, void *ud, cJSON **metrics, pimg_error *err);

/* Metrics of n answers: truth[i], pred[i] in degrees (0/90/180/270). Per-class accuracy,
 * 4x4 confusion (rows = truth), overall accuracy, false-turn rate (upright photos turned), and
 * the share of turned photos left alone. Ownership: caller frees with cJSON_Delete. */
cJSON *pimg_orient_metrics(const int *truth, const int *pred, int n);

#endif
