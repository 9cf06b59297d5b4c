/* level.h — small-tilt (±20°) estimation on an upright tensor and its full-resolution fix. */
#ifndef PIMG_LEVEL_H
#define PIMG_LEVEL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "image.h"
#include "status.h"
#include "tensor.h"

/* Estimates the clockwise angle in degrees (-20..20) that levels the upright tensor t, with a
 * 0..1 confidence; *deg is 0 when the evidence is too weak to act on. */
pimg_status pimg_level_estimate(const pimg_tensor *t, double *deg, double *confidence, pimg_error *err);

/* The learned tilt model (models/level.model, card models/level.json): a softmax over
 * candidate angles, linear in orientation-histogram features, and the rule for when to abstain. */
typedef struct pimg_level_model pimg_level_model;

/* Loads path (weights, standardisation and abstention rule as JSON). NOT_FOUND when path does
 * not exist, BAD_INPUT when it does not fit.
 * Ownership: *out written only on success, freed with pimg_level_model_free. */
pimg_status pimg_level_model_load(const char *path, pimg_level_model **out, pimg_error *err);

/* Writes m to path and, when card (owned by the caller) is given, the card to the card path. */
pimg_status pimg_level_model_save(const pimg_level_model *m, const char *path, const cJSON *card,
                                  pimg_error *err);

/* NULL-safe. */
void pimg_level_model_free(pimg_level_model *m);

/* Card path for a model path: "x.model" -> "x.json" (else path + ".json"), into buf. */
void pimg_level_card_path(const char *svm_path, char *buf, size_t n);

/* pimg_level_estimate with the learned model m; m == NULL falls back to the rule above. */
pimg_status pimg_level_estimate_model(const pimg_level_model *m, const pimg_tensor *t, double *deg,
                                      double *confidence, pimg_error *err);

/* Rotates the image's current pixels clockwise by deg at full resolution; crop != 0 keeps the
 * largest inner rectangle, otherwise corners are filled white. */
pimg_status pimg_level_apply(pimg_image *img, double deg, int crop, pimg_error *err);

#endif
