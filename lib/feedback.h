/* feedback.h — durable store of labelled photos sent back by the marketplace (admin API).
 *
 * Each item is the uploaded image bytes plus a label: the clockwise `rotation` that makes the
 * photo upright, whether it has an upright direction at all (`up`), and optionally the product
 * `box`. Durability order: the image file is written, fsync'd and renamed into place and its
 * folder fsync'd before the row is committed in SQLite (WAL, synchronous=FULL), so every id a
 * caller was given survives a crash or kill -9; a crash in between leaves at most an orphan
 * file, never a row without its image. Layout: dir/feedback/<random>.<ext>, dir/feedback.db.
 * The store exports itself as data folders (labels.csv in the format of ../shared/data) that
 * the trainers read. Thread-safe. */
#ifndef PIMG_FEEDBACK_H
#define PIMG_FEEDBACK_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct pimg_feedback pimg_feedback;

typedef struct {
    int rotation;  /* 0/90/180/270: clockwise turn that makes the stored photo upright */
    int up;        /* 1: the photo has a clear upright direction */
    int has_box;
    int box[4];    /* x0, y0, x1, y1 in the photo's pixels (EXIF applied), x1/y1 exclusive */
} pimg_feedback_label;

/* Opens (creating if needed) the store in dir. IO on failure.
 * Ownership: *out written on success, closed with pimg_feedback_close. */
pimg_status pimg_feedback_open(const char *dir, pimg_feedback **out, pimg_error *err);

/* Closes the store; NULL-safe. */
void pimg_feedback_close(pimg_feedback *fb);

/* Parses a label JSON {"rotation":0|90|180|270, "box":[x0,y0,x1,y1]|null, "up":0|1 (default 1)}
 * for a w x h photo (the box must lie inside it). BAD_INPUT names what is wrong. */
pimg_status pimg_feedback_label_parse(const char *json, size_t len, int w, int h, pimg_feedback_label *out,
                                      pimg_error *err);

/* Validates and stores one item: img must be an image pimg reads (header checked against
 * max_pixels; 0 = default), label_json is parsed with pimg_feedback_label_parse and kept
 * verbatim. *id gets the new row id. BAD_INPUT / UNSUPPORTED / TOO_LARGE for bad input, IO on
 * storage failure. */
pimg_status pimg_feedback_add(pimg_feedback *fb, const void *img, size_t img_len, const char *label_json,
                              size_t label_len, uint64_t max_pixels, int64_t *id, pimg_error *err);

/* Number of stored items, -1 on error. */
int64_t pimg_feedback_count(pimg_feedback *fb);

/* Writes labels.csv into train_dir and into test_dir (file,up,kind,rotation,x0,y0,x1,y1,...)
 * with the images symlinked beside them: rows whose id is a multiple of 5 are held out in
 * test_dir, the rest go to train_dir. Both folders must exist. Counts go to *n_train and *n_test. */
pimg_status pimg_feedback_export(pimg_feedback *fb, const char *train_dir, const char *test_dir, int *n_train,
                                 int *n_test, pimg_error *err);

#endif
