/* detect_train.h — training and evaluating the product detector's box scorer.
 *
 * Data: a folder with `objects/` (RGBA cut-outs) and `train/` (real photos used as cluttered
 * backgrounds), optionally more cut-out folders. Objects (folder by folder) and backgrounds are
 * each split train/validation/test with a fixed seed before any composite is made, so no test
 * object or test background is ever seen in training.
 * Training: saliency proposals of each training composite are labelled by IoU with the exact
 * box (>= 0.75 positive, < 0.5 negative; the exact box and jittered copies are positives too),
 * a hyper-parameter search picks kernel and C on the validation composites, then Dalal-Triggs
 * hard-negative mining adds the highest-scoring negatives and retrains until no new hard
 * negative appears, the validation loss (1 - mean IoU of the top box) stops improving, or the
 * round limit is reached. A Platt sigmoid fitted on validation top boxes calibrates confidence.
 * No printing: progress goes through a callback. */
#ifndef PIMG_DETECT_TRAIN_H
#define PIMG_DETECT_TRAIN_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "detect.h"
#include "status.h"


typedef struct {
    const char *data_dir;   /* holds objects/ and train/ */
    uint64_t seed;          /* split and composites (default 42) */
    uint64_t train_seed;    /* > 0: the training composites and their sampling are drawn with
                             * this seed instead (split, validation and test stay seed's), so
                             * models that differ only in their training draw can be compared
                             * or averaged on one validation (default 0: seed) */
    int n_train, n_val, n_test; /* composites per split (defaults 800, 120, 150) */
    int max_rounds;         /* hard-negative mining rounds after the first fit (default 3) */
    int side;               /* composite longest side (default 384) */
    int side_min;           /* > 0 and < side: each composite's longest side drawn from
                             * side_min..side instead (default 0: always side) */
    double clutter_fill[2]; /* object's longest side as a share of the frame on photo
                             * backgrounds, min and max (default 0.4, 0.85) */
    int rank;               /* 0: classifier (default), 1: pairwise ranking SVM on box differences
                             * of one photo, 2: hybrid (both kinds of training vectors) */
    const char *labels_csv; /* optional hand-checked boxes of real photos in data_dir/train */
    const char *const *objects_dirs; /* more cut-out folders beside data_dir/objects (objects.csv
                                      * or every image; each folder split 70/15/15 on its own) */
    int n_objects_dirs;
    double extra_share;      /* > 0: share of composites whose object comes from objects_dirs
                              * (default 0: every object equally likely) */
    const char *exclude_objects; /* optional word list (pimg_word_list_read): objects whose file
                                  * name contains a word are dropped from every split */
    int rerank;             /* nonzero: also train the second-stage re-ranker of the top boxes
                             * (kept only if it lowers the validation loss; default 1) */
    int rbf;                /* nonzero: the search also fits an RBF kernel (taken when its
                             * validation loss is 0.03 better). Default 0: on any real training
                             * set its model keeps thousands of support vectors, a file of tens
                             * of MB that scores a photo in ~80 ms, over the model-size and
                             * detection-time limits, and its fit alone takes minutes */
    pimg_progress_fn progress; /* may be NULL */
    void *progress_ctx;
} pimg_detect_train_opts;

void pimg_detect_train_opts_default(pimg_detect_train_opts *o);

/* Trains a model. On success *model is the best model (free with pimg_detect_model_free) and
 * *report a JSON object with data, split, search, rounds and metrics (validation and test).
 * Ownership: both written only on success. */
pimg_status pimg_detect_train(const pimg_detect_train_opts *o, pimg_detect_model **model, cJSON **report,
                              pimg_error *err);

/* Scores m (NULL: the no-model heuristic) with the full detector (proposals, scorer, mask) on
 * the test split's composites of o (same seed, same split as training). *metrics: hit50,
 * mean_iou, mask_iou, per-kind figures, ms per image. Ownership: caller frees *metrics. */
pimg_status pimg_detect_eval_composites(const pimg_detect_model *m, const pimg_detect_train_opts *o,
                                        cJSON **metrics, pimg_error *err);

/* Scores m on real photos: dir/labels.csv rows with x0,y0,x1,y1 (and rotation 0), each photo
 * analysed at 1024 px like `pimg analyze`. Ownership: caller frees *metrics. */
pimg_status pimg_detect_eval_folder(const pimg_detect_model *m, const char *dir, cJSON **metrics,
                                    pimg_error *err);

/* Writes composites of the given split ("train", "val" or "test") of o as JPEGs into out_dir
 * with a labels.csv in the evaluation scripts' format (to inspect them, or to score `pimg
 * analyze` with ../shared/eval/detect.py on data that is not the public test set). */
pimg_status pimg_detect_dump_composites(const pimg_detect_train_opts *o, const char *split, int n,
                                        const char *out_dir, pimg_error *err);

#endif
