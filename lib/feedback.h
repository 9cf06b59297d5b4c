/* feedback.h — durable store of labelled photos sent back by the marketplace (admin API).
 *
 * Each item is the uploaded image bytes plus a label (the clockwise `rotation` that makes the
 * photo upright and/or the product `box`). Durability order: the image file is written and
 * fsync'd (and its directory entry too) before the row is committed in SQLite (WAL,
 * synchronous=FULL), so every id the caller was given survives a crash or kill -9; a crash in
 * between leaves at most an orphan file, never a row without its image.
 * The store can export itself as a data folder (images + labels.csv in the same format as
 * ../shared/data) that the trainers read. Thread-safe: one connection, serialized. */
#ifndef PIMG_FEEDBACK_H
#define PIMG_FEEDBACK_H

#include <stddef.h>

#include "status.h"

typedef struct pimg_feedback pimg_feedback;

typedef struct {
    int has_rotation;
    int rotation;   /* 0/90/180/270: clockwise turn that makes the stored photo upright */
    int has_box;
    int box[4];     /* x0, y0, x1, y1 in the photo's pixels (EXIF applied), x1/y1 exclusive */
} pimg_feedback_label;

/* Opens (creating if needed) the store in dir. IO on failure.
 * Ownership: *out written on success, closed with pimg_feedback_close. */
pimg_status pimg_feedback_open(const char *dir, pimg_feedback **out, pimg_error *err);

/* Closes the store; NULL-safe. */
void pimg_feedback_close(pimg_feedback *fb);

/* Parses a label JSON such as {"rotation":90,"box":[1,2,30,40]}; at least one of the two.
 * BAD_INPUT names what is wrong. */
pimg_status pimg_feedback_label_parse(const char *json, size_t len, pimg_feedback_label *out,
                                      pimg_error *err);

/* Stores one item durably (see the file comment) and returns its id. ext is the file suffix
 * to use ("jpg", "png", ...). */
pimg_status pimg_feedback_add(pimg_feedback *fb, const void *bytes, size_t len, const char *ext,
                              const pimg_feedback_label *label, long long *id, pimg_error *err);

/* Number of stored items, or a negative status. */
long long pimg_feedback_count(pimg_feedback *fb);

/* Writes dir/labels.csv listing every item (columns file,up,kind,rotation,x0,y0,x1,y1 with file
 * paths absolute) so a trainer can read the store like any data folder. Returns the count in
 * *n. */
pimg_status pimg_feedback_export(pimg_feedback *fb, const char *dir, long long *n, pimg_error *err);

#endif
