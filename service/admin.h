/* admin.h — the admin API's state: Bearer-token check, the durable feedback store and
 * background retrain jobs (train a candidate, evaluate it against the current model on held-out
 * feedback, promote it when better).
 *
 * Feedback durability: the image is written to a temporary file, fsync'd, renamed into place
 * and the directory fsync'd; only then is its row committed to SQLite (WAL, synchronous=FULL).
 * A 201 is sent after the commit, so every acknowledged item survives kill -9; a crash in
 * between leaves at most an unreferenced file. */
#ifndef PIMG_SERVICE_ADMIN_H
#define PIMG_SERVICE_ADMIN_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct pimg_admin pimg_admin;

/* Called (from the retrain thread) after a candidate was promoted into models_dir, so the
 * server can load and swap the model set. */
typedef void (*pimg_admin_promoted_fn)(void *ctx);

/* Opens (creating) state_dir, its feedback/ folder and feedback.db. exe is the pimg binary run
 * for `train`/`eval`. Ownership: free with pimg_admin_free. IO/INTERNAL with a message. */
pimg_status pimg_admin_open(const char *state_dir, const char *exe, const char *models_dir,
                            pimg_admin_promoted_fn promoted, void *promoted_ctx, pimg_admin **out,
                            pimg_error *err);

/* Waits for a running retrain job's subprocesses to end, closes the database. NULL-safe. */
void pimg_admin_free(pimg_admin *a);

/* Checks an Authorization header against the configured token in constant time (for equal
 * lengths). Returns 0 when accepted, 401 when the header is missing or not "Bearer <token>",
 * 403 when the token is wrong. token "" means the admin API is disabled: 403. */
int pimg_admin_auth(const char *token, const char *authorization);

/* Validates and stores one feedback item: img (an image pimg can read, header checked) and
 * label_json ({"rotation":0|90|180|270, "box":[x0,y0,x1,y1] or null, optional "up":0|1}).
 * *id gets the new row id. BAD_INPUT/UNSUPPORTED/TOO_LARGE for bad input, IO on storage
 * failure. Thread-safe. */
pimg_status pimg_admin_feedback(pimg_admin *a, const void *img, size_t img_len, const char *label_json,
                                size_t label_len, uint64_t max_pixels, int64_t *id, pimg_error *err);

/* Starts a retrain job in the background. options_json may be NULL or {"model":"orient"|
 * "detect"}. Writes the job id into job (size n). Returns PIMG_OK, BAD_INPUT (bad options),
 * or PIMG_ERR_CANCELLED when a job is already running (the caller answers 409). */
pimg_status pimg_admin_retrain(pimg_admin *a, const char *options_json, size_t len, char *job, size_t n,
                               pimg_error *err);

/* Status of a job as JSON; NULL when unknown. Ownership: caller frees with cJSON_Delete. */
cJSON *pimg_admin_job(pimg_admin *a, const char *job);

/* Number of stored feedback items, -1 on error. */
int64_t pimg_admin_feedback_count(pimg_admin *a);

#endif
