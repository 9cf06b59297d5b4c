/* orient_fv.h — dense-SIFT Fisher-vector "is this upright" scorer for the orientation fix.
 *
 * A richer representation than the colour-moment + HOG vector of orient_features.h: VLFeat
 * dense SIFT (two scales) on a 128 px grey thumbnail, root-SIFT, PCA to 32 dimensions, and a
 * Fisher vector over a 32-component diagonal GMM (VLFeat, improved: signed square root + L2),
 * pooled separately over the whole thumbnail, its three rows and its three columns — the bands
 * make the code depend on where things are, so it changes when the photo is turned. A linear
 * "upright" score w·fv is computed for the photo under each of the four quarter turns; the turn
 * whose version scores highest is the answer and a softmax of the four scores its confidence.
 * The vocabulary (PCA + GMM) and w are learned from upright training photos (pimg train orient
 * --method fv) and stored in one binary file. */
#ifndef PIMG_ORIENT_FV_H
#define PIMG_ORIENT_FV_H

#include <stddef.h>

#include "status.h"
#include "tensor.h"

#define PIMG_ORIENT_FV_SIDE                                                                                  \
    129                       /* thumbnail side (aspect ignored, as in orient_features.h); odd, so           \
                               * that the keypoint grid is symmetric under quarter turns */
#define PIMG_ORIENT_FV_STEP 8 /* dense SIFT step (pixels) */
#define PIMG_ORIENT_FV_SIFT 128
#define PIMG_ORIENT_FV_PCA 32
#define PIMG_ORIENT_FV_K 32
#define PIMG_ORIENT_FV_NREG 7 /* whole, 3 rows, 3 columns */
#define PIMG_ORIENT_FV_REGDIM (2 * PIMG_ORIENT_FV_PCA * PIMG_ORIENT_FV_K)
#define PIMG_ORIENT_FV_DIM (PIMG_ORIENT_FV_NREG * PIMG_ORIENT_FV_REGDIM)
#define PIMG_ORIENT_FV_MAX_DESC 512 /* descriptors per thumbnail (15x15 + 14x14 = 421) */

typedef struct {
    float pca_mean[PIMG_ORIENT_FV_SIFT];
    float pca[PIMG_ORIENT_FV_PCA][PIMG_ORIENT_FV_SIFT]; /* rows: principal directions */
    float means[PIMG_ORIENT_FV_K * PIMG_ORIENT_FV_PCA], covs[PIMG_ORIENT_FV_K * PIMG_ORIENT_FV_PCA],
        priors[PIMG_ORIENT_FV_K];
} pimg_orient_fv_vocab;

typedef struct {
    pimg_orient_fv_vocab vocab;
    float w[PIMG_ORIENT_FV_DIM]; /* upright score = w · fv */
    double temperature;          /* softmax temperature of the four scores */
} pimg_orient_fv_model;

/* The PIMG_ORIENT_FV_SIDE-square grey thumbnail (0..1) of an RGB tensor, written to grey.
 * BAD_INPUT when t is not 3-channel, NOMEM. */
pimg_status pimg_orient_fv_grey(const pimg_tensor *t, float *grey, pimg_error *err);

/* out = in (PIMG_ORIENT_FV_SIDE square) turned clockwise by j quarter turns. */
void pimg_orient_fv_turn(const float *in, int j, float *out);

/* Root-SIFT dense descriptors of a grey thumbnail: desc (n x 128), xy (n x 2, pixels).
 * The keypoint grid (step 8; 15x15 at 4 px bins, 14x14 at 6 px bins) is centred, so it maps
 * onto itself under a quarter turn. Returns n (<= PIMG_ORIENT_FV_MAX_DESC), or -1 when VLFeat cannot
 * allocate. */
int pimg_orient_fv_descriptors(const float *grey, float *desc, float *xy);

/* The descriptors of the thumbnail turned clockwise by j quarter turns, from those of the
 * unturned one: keypoint (x, y) moves to (S-1-y, x) and each descriptor's 4x4 spatial bins and
 * 8 orientation bins are permuted accordingly. Equal (to float rounding) to running
 * pimg_orient_fv_descriptors on the turned thumbnail, at a fraction of the cost. */
void pimg_orient_fv_turn_descriptors(const float *desc, const float *xy, int n, int j, float *out_desc,
                                     float *out_xy);

/* The Fisher vector (PIMG_ORIENT_FV_DIM values) of n descriptors (as pimg_orient_fv_descriptors gives). */
pimg_status pimg_orient_fv_encode_desc(const pimg_orient_fv_vocab *v, const float *desc, const float *xy,
                                       int n, float *fv, pimg_error *err);

/* The Fisher vector (PIMG_ORIENT_FV_DIM values) of a grey thumbnail. NOMEM on failure. */
pimg_status pimg_orient_fv_encode(const pimg_orient_fv_vocab *v, const float *grey, float *fv,
                                  pimg_error *err);

/* Posterior over the answer r (clockwise quarter turns that make the photo upright) from the
 * upright scores of the photo turned clockwise by j = 0..3: softmax(score[r] / temperature). */
void pimg_orient_fv_posterior(const double score[4], double temperature, double post[4]);

/* Learns the vocabulary from n root-SIFT descriptors (n x 128): PCA by Jacobi eigen-
 * decomposition of their covariance, then a diagonal GMM (VLFeat, k-means start, VLFeat's
 * random generator seeded with seed). BAD_INPUT when n is too small, NOMEM. */
pimg_status pimg_orient_fv_vocab_train(const float *desc, size_t n, unsigned seed, pimg_orient_fv_vocab *v,
                                       pimg_error *err);

/* Linear ranking SVM without bias (dual coordinate descent, squared hinge, as liblinear's
 * L2-loss solver): fv holds n examples x 4 versions x PIMG_ORIENT_FV_DIM, version 0 upright; use[i]
 * selects examples (NULL: all). Learns w with w·(fv[i][0] - fv[i][k]) >= 1 for k = 1..3.
 * Deterministic for a given seed (visit order). NOMEM on failure. */
pimg_status pimg_orient_fv_rank_train(const float *fv, int n, const char *use, double C, unsigned seed,
                                      float *w, pimg_error *err);

/* Model file: "PIMGOFV1", then the vocabulary, w and the temperature (little-endian floats).
 * read: NOT_FOUND, IO, BAD_INPUT. Ownership: *out is the caller's (free()). */
pimg_status pimg_orient_fv_write(const pimg_orient_fv_model *m, const char *path, pimg_error *err);
pimg_status pimg_orient_fv_read(const char *path, pimg_orient_fv_model **out, pimg_error *err);

/* 1 when the file at path starts with the Fisher-vector model magic. */
int pimg_orient_fv_is_model_file(const char *path);

#endif
