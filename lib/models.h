/* models.h — the set of trained models the pipeline uses, as one reference-counted handle.
 *
 * The service keeps a "current" handle and swaps it atomically after a retrain; each request
 * acquires the handle it started with and releases it when done, so no request ever sees a
 * half-loaded model and an old set is freed only when its last user is gone. A missing model
 * file is not an error: that step simply reports "no model" (see pimg_models_describe). */
#ifndef PIMG_MODELS_H
#define PIMG_MODELS_H

#include <cjson/cJSON.h>

#include "detect.h"
#include "enhance.h"
#include "level.h"
#include "orient.h"
#include "status.h"

typedef struct pimg_models pimg_models;

/* Loads every model found in dir (orient.svm, detect.svm, enhance.json, level.model). A corrupt model
 * file is an error; a missing one is recorded and skipped.
 * Ownership: *out holds one reference; drop it with pimg_models_release. */
pimg_status pimg_models_load(const char *dir, pimg_models **out, pimg_error *err);

/* Adds a reference (thread-safe) and returns m. */
pimg_models *pimg_models_acquire(pimg_models *m);

/* Drops a reference; the last one frees the set. NULL-safe. */
void pimg_models_release(pimg_models *m);

/* Borrowed model pointers, NULL when that model is absent; valid while the caller holds a
 * reference to m. m itself may be NULL. */
const pimg_orient_model *pimg_models_orient(const pimg_models *m);
const pimg_detect_model *pimg_models_detect(const pimg_models *m);
const pimg_enhance_model *pimg_models_enhance(const pimg_models *m);
const pimg_level_model *pimg_models_level(const pimg_models *m);

/* Directory and version string (borrowed, valid while referenced). */
const char *pimg_models_dir(const pimg_models *m);
const char *pimg_models_version(const pimg_models *m);

/* JSON description: which models are loaded, their files and versions.
 * Ownership: caller frees with cJSON_Delete. */
cJSON *pimg_models_describe(const pimg_models *m);

/* The models folder to use when none is given: $PIMG_MODELS_DIR, else `models/` in the
 * project root found from the binary's path (exe_path may be NULL), else "models".
 * Writes into buf (size n) and returns buf. */
char *pimg_models_default_dir(const char *exe_path, char *buf, size_t n);

#endif
