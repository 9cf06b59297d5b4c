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

#define PIMG_OFV_SIDE 128 /* thumbnail side (aspect ignored, as in orient_features.h) */
#define PIMG_OFV_STEP 8   /* dense SIFT step (pixels) */
#define PIMG_OFV_SIFT 128
#define PIMG_OFV_PCA 32
#define PIMG_OFV_K 32
#define PIMG_OFV_NREG 7 /* whole, 3 rows, 3 columns */
#define PIMG_OFV_REGDIM (2 * PIMG_OFV_PCA * PIMG_OFV_K)
#define PIMG_OFV_DIM (PIMG_OFV_NREG * PIMG_OFV_REGDIM)
#define PIMG_OFV_MAX_DESC 512 /* descriptors per thumbnail (421 at 128 px) */

typedef struct {
    float pca_mean[PIMG_OFV_SIFT];
    float pca[PIMG_OFV_PCA][PIMG_OFV_SIFT]; /* rows: principal directions */
    float means[PIMG_OFV_K * PIMG_OFV_PCA], covs[PIMG_OFV_K * PIMG_OFV_PCA], priors[PIMG_OFV_K];
} pimg_ofv_vocab;

typedef struct {
    pimg_ofv_vocab vocab;
    float w[PIMG_OFV_DIM];  /* upright score = w · fv */
    double temperature;     /* softmax temperature of the four scores */
} pimg_ofv_model;

/* The PIMG_OFV_SIDE-square grey thumbnail (0..1) of an RGB tensor, written to grey.
 * BAD_INPUT when t is not 3-channel, NOMEM. */
pimg_status pimg_ofv_grey(const pimg_tensor *t, float *grey, pimg_error *err);

/* out = in (PIMG_OFV_SIDE square) turned clockwise by j quarter turns. */
void pimg_ofv_turn(const float *in, int j, float *out);

/* Root-SIFT dense descriptors of a grey thumbnail: desc (n x 128), xy (n x 2, pixels).
 * Returns n (<= PIMG_OFV_MAX_DESC), or -1 when VLFeat cannot allocate. */
int pimg_ofv_descriptors(const float *grey, float *desc, float *xy);

/* The Fisher vector (PIMG_OFV_DIM values) of a grey thumbnail. NOMEM on failure. */
pimg_status pimg_ofv_encode(const pimg_ofv_vocab *v, const float *grey, float *fv, pimg_error *err);

/* Posterior over the answer r (clockwise quarter turns that make the photo upright) from the
 * upright scores of the photo turned clockwise by j = 0..3: softmax(score[r] / temperature). */
void pimg_ofv_posterior(const double score[4], double temperature, double post[4]);

/* Learns the vocabulary from n root-SIFT descriptors (n x 128): PCA by Jacobi eigen-
 * decomposition of their covariance, then a diagonal GMM (VLFeat, k-means start, VLFeat's
 * random generator seeded with seed). BAD_INPUT when n is too small, NOMEM. */
pimg_status pimg_ofv_vocab_train(const float *desc, size_t n, unsigned seed, pimg_ofv_vocab *v, pimg_error *err);

/* Linear ranking SVM without bias (dual coordinate descent, squared hinge, as liblinear's
 * L2-loss solver): fv holds n examples x 4 versions x PIMG_OFV_DIM, version 0 upright; use[i]
 * selects examples (NULL: all). Learns w with w·(fv[i][0] - fv[i][k]) >= 1 for k = 1..3.
 * Deterministic for a given seed (visit order). NOMEM on failure. */
pimg_status pimg_ofv_rank_train(const float *fv, int n, const char *use, double C, unsigned seed, float *w,
                                pimg_error *err);

/* Model file: "PIMGOFV1", then the vocabulary, w and the temperature (little-endian floats).
 * read: NOT_FOUND, IO, BAD_INPUT. Ownership: *out is the caller's (free()). */
pimg_status pimg_ofv_write(const pimg_ofv_model *m, const char *path, pimg_error *err);
pimg_status pimg_ofv_read(const char *path, pimg_ofv_model **out, pimg_error *err);

/* 1 when the file at path starts with the Fisher-vector model magic. */
int pimg_ofv_is_model_file(const char *path);

#endif
