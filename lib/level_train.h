/* level_train.h — self-supervised training of the fine tilt (levelling) model.
 *
 * Any upright photo gives tilted examples with a known answer: the trainer turns each upright
 * photo (labels.csv `up=1`, stored-turned ones made upright with `rotation`; or every image of a
 * folder without labels.csv) by random angles the way the evaluation does (uniform ±15°, a
 * quarter untilted, largest inner rectangle, JPEG q92 round trip at the analysis size), splits by
 * source photo with a fixed seed (never by tilted copy), fits a softmax over candidate angles
 * (conditional logit, linear in the candidates' features, ridge-penalised, Newton steps), picks
 * the abstention threshold on out-of-fold posteriors of the training photos and reports the
 * held-out photos' scores. Nothing is printed: progress goes to a callback. */
#ifndef PIMG_LEVEL_TRAIN_H
#define PIMG_LEVEL_TRAIN_H

#include <cjson/cJSON.h>

#include "level.h"
#include "status.h"

typedef struct {
    const char *const *data_dirs; /* folders of photos (labels.csv optional) */
    int n_data_dirs;
    unsigned seed;             /* split, angles and libsvm */
    double test_frac;          /* share of photos held out for the test */
    int copies;                /* tilted copies per photo */
    double max_untilted_mae;   /* the abstention rule keeps the training photos' untilted error
                                * (degrees) at most this */
    const char *dump_path;     /* if set: write the examples' histograms there and stop
                                * (int32 n, channels, bins; per copy int32 photo, test, float32
                                * angle, then float32 histograms scaled to a mean of 1 per bin) */
    const char *test_list;     /* if set: write the held-out photos' paths there */
    pimg_progress_fn progress; /* may be NULL */
    void *progress_ud;
} pimg_level_train_opts;

/* Fills o with the defaults (seed 1, 25% test, 16 copies, untilted error 0.2°). */
void pimg_level_train_opts_default(pimg_level_train_opts *o);

/* Trains a model. *metrics receives the split, the chosen rule and train/test metrics (mean
 * absolute error, share within 2°, untilted error, share acted on). BAD_INPUT when no usable
 * photo is found. Ownership: *out (pimg_level_model_free) and *metrics (cJSON_Delete) are the
 * caller's, written only on success. */
pimg_status pimg_level_train(const pimg_level_train_opts *o, pimg_level_model **out, cJSON **metrics,
                             pimg_error *err);

#endif
