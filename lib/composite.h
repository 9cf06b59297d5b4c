/* composite.h — synthetic product photos with exact boxes and masks, for training and tests.
 *
 * Real photographed object cut-outs (RGBA PNGs) are pasted, scaled, tilted, lit and shadowed,
 * onto either a plain studio-like background (white, grey, paper, fabric tints with a light
 * gradient, texture and noise) or a random crop of a real photo. The alpha after the same
 * transforms is the exact mask, and its bounding box the exact label. Deterministic for a
 * given RNG state, so a seed reproduces a data set. */
#ifndef PIMG_COMPOSITE_H
#define PIMG_COMPOSITE_H

#include <stdint.h>

#include "status.h"
#include "tensor.h"

typedef struct pimg_composite_src pimg_composite_src;

/* Loads every *.png in objects_dir (RGBA; longest side shrunk to 480) and, when bg_dir is not
 * NULL, every JPEG or PNG file in it as a background (longest side shrunk to 640). Files are
 * taken in name order. Errors: IO when a folder cannot be read, NOT_FOUND when it holds no
 * objects. Ownership: *out freed with pimg_composite_src_free. */
pimg_status pimg_composite_src_load(const char *objects_dir, const char *bg_dir, pimg_composite_src **out,
                                    pimg_error *err);

/* Same, with the cut-outs given as paths (loaded in this order; object i is object_paths[i],
 * its name the file name without the folder). NOT_FOUND when n_objects is 0. */
pimg_status pimg_composite_src_load_files(const char *const *object_paths, int n_objects, const char *bg_dir,
                                          pimg_composite_src **out, pimg_error *err);

void pimg_composite_src_free(pimg_composite_src *s);

int pimg_composite_n_objects(const pimg_composite_src *s);
int pimg_composite_n_backgrounds(const pimg_composite_src *s);

/* File name (no folder) of object i / background i; borrowed. */
const char *pimg_composite_object_name(const pimg_composite_src *s, int i);
const char *pimg_composite_background_name(const pimg_composite_src *s, int i);

/* One step of the generator every composite uses (splitmix64); returns 0..1. */
double pimg_rand_uniform(uint64_t *state);

typedef struct {
    int side;        /* longest side of the composite (e.g. 384) */
    int background;  /* background index, or -1 for a synthetic plain background */
    int object;      /* object index */
    int shadow;      /* -1 random, 0 none, 1 soft shadow */
    double min_fill, max_fill; /* object's longest side as a share of the frame (0 = defaults) */
} pimg_composite_spec;

/* Renders one composite. On success *img is 3-channel 0..1, *mask (may be NULL to skip) is the
 * object's alpha (1-channel, same size), and box receives the bounding box of alpha >= 0.5
 * (x1/y1 exclusive). Ownership: caller frees *img and *mask with pimg_tensor_free. */
pimg_status pimg_composite_make(const pimg_composite_src *s, const pimg_composite_spec *spec, uint64_t *rng,
                                pimg_tensor **img, pimg_tensor **mask, double box[4], pimg_error *err);

#endif
