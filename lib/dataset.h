/* dataset.h — the photo folders the trainers read, and the seeded random numbers they share.
 *
 * A folder is DIR/labels.csv (the data sets' format: columns file, up, rotation found by the
 * header, other columns ignored) or, without one, every image in DIR, sorted so that a split is
 * the same on every machine. Trainers must be reproducible: everything random here is seeded. */
#ifndef PIMG_DATASET_H
#define PIMG_DATASET_H

#include <limits.h>
#include <stddef.h>

#include "status.h"
#include "tensor.h"

/* xorshift64* seeded by splitmix64 over three inputs: independent streams per photo, copy... */
typedef struct {
    unsigned long long s;
} pimg_rng;

void pimg_rng_seed(pimg_rng *r, unsigned long long a, unsigned long long b, unsigned long long c);
double pimg_rng_u(pimg_rng *r);                             /* uniform [0, 1) */
double pimg_rng_range(pimg_rng *r, double lo, double hi);   /* uniform [lo, hi) */
int pimg_rng_int(pimg_rng *r, int n);                       /* uniform 0..n-1 (0 when n <= 0) */

/* Splits one CSV line in place (RFC 4180 quotes, "" escapes; the line end is dropped).
 * fields point into line. Returns the field count (at most max). */
int pimg_csv_split(char *line, char **fields, int max);

/* Finds the columns named in want among a header line's fields: col[k] is the index of
 * want[k], -1 when the header lacks it. */
void pimg_csv_columns(char *const *fields, int nf, const char *const *want, int nwant, int *col);

/* 1 when name ends in an image extension the loaders accept. */
int pimg_has_image_ext(const char *name);

typedef struct {
    char path[PATH_MAX];
    int up;       /* has an upright direction (labels.csv `up`, 1 without the column) */
    int rotation; /* clockwise degrees (0..270) that make the stored photo upright */
    int test;     /* in the held-out split (set by the trainer) */
    int folder;   /* index of its folder among the trainer's --data folders (set by the trainer) */
} pimg_photo;

typedef struct {
    pimg_photo *v;
    int n, cap;
} pimg_photo_list;

/* Appends the photos of dir: the rows of dir/csv_name, or every image of dir (as upright) when
 * that file does not exist. IO when dir cannot be read, BAD_INPUT without a `file` column.
 * Ownership: l->v grows with realloc; free with pimg_photo_list_free. */
pimg_status pimg_photos_read(const char *dir, const char *csv_name, pimg_photo_list *l, pimg_error *err);

void pimg_photo_list_free(pimg_photo_list *l);

/* Sorts the photos [start, end) by path (byte order), so a listing does not depend on the
 * order of a CSV or of readdir. */
void pimg_photos_sort(pimg_photo_list *l, int start, int end);

/* 1 when name contains one of the n words, ignoring ASCII case (empty words never match);
 * used to keep named objects out of a training set. */
int pimg_name_has_word(const char *name, const char *const *words, int n);

/* The object a cut-out's file name shows, so that variants of one drawing are split together:
 * the file name without folder, extension and any "category__" prefix, in lower case, without
 * trailing numbers and "mirror" ("animals_mammals_cats__Lion-2.png" -> "lion",
 * "sedan_police_mirror.png" -> "sedan_police"). Writes at most n bytes with the NUL. */
void pimg_object_stem(const char *path, char *out, size_t n);

/* Reads a word list: one word per line, text after '#' and surrounding blanks ignored, blank
 * lines skipped. IO when the file cannot be opened. Ownership: on success *words (n strings)
 * belongs to the caller, freed with pimg_word_list_free. */
pimg_status pimg_word_list_read(const char *path, char ***words, int *n, pimg_error *err);

void pimg_word_list_free(char **words, int n);

/* Marks round(frac * n) of the photos [start, end) as test and the others not, by a shuffle
 * drawn from r. Returns -1 when out of memory (nothing marked). */
int pimg_photos_split(pimg_photo_list *l, int start, int end, double frac, pimg_rng *r);

/* The photo decoded as `pimg analyze` decodes an upload (shrink-on-load to at most side px),
 * turned upright by its rotation. Ownership: *out on success, pimg_tensor_free. */
pimg_status pimg_photo_load(const pimg_photo *p, int side, pimg_tensor **out, pimg_error *err);

#endif
