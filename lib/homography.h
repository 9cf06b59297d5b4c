/* homography.h — plane-to-plane homographies from point correspondences: normalised DLT,
 * geometric (Levenberg-Marquardt) refinement, LO-RANSAC with adaptive iterations, and sanity
 * checks. Pure math on caller-owned arrays (no allocation beyond what each function says),
 * reentrant, no libraries: align.c feeds it SIFT matches, the unit tests feed it exact and
 * contaminated correspondences.
 *
 * Points are packed as x0, y0, x1, y1, ...; H is row-major 3x3 and maps a src point (x, y, 1)
 * to a dst point, normalised so that H[8] == 1 whenever possible. */
#ifndef PIMG_HOMOGRAPHY_H
#define PIMG_HOMOGRAPHY_H

#include "status.h"

/* Least-squares homography src -> dst by the normalised DLT (Hartley: each set shifted to its
 * centroid and scaled to mean distance sqrt(2), smallest eigenvector of A^T A). n >= 4.
 * Returns BAD_INPUT on n < 4 or a degenerate configuration (e.g. all points on a line). */
pimg_status pimg_homography_dlt(const double *src, const double *dst, int n, double H[9]);

/* Squared distance between H*src and dst (forward transfer error); HUGE_VAL when src maps to
 * infinity or behind the camera (w <= 0). */
double pimg_homography_err2(const double H[9], double x, double y, double u, double v);

/* Minimises the sum of squared forward transfer errors over the n correspondences (geometric
 * error, not the DLT's algebraic one) with Levenberg-Marquardt, starting from H; H is updated
 * only when the error goes down. n >= 4. */
void pimg_homography_refine(const double *src, const double *dst, int n, double H[9], int max_iter);

typedef struct {
    double thresh;      /* inlier if forward error <= thresh (dst units, e.g. pixels) */
    double confidence;  /* probability of having drawn one all-inlier sample, e.g. 0.999 */
    int max_iter;       /* hard cap on samples */
    int min_iter;       /* samples drawn even when the adaptive count says fewer suffice */
    unsigned long seed; /* the sampler is deterministic for a given seed */
    const double *weights; /* optional, n entries: relative confidence of each match (e.g.
                            * 1 / keypoint scale^2) used by the final least-squares refits;
                            * NULL = all equal. Sampling and scoring ignore it. */
} pimg_ransac_opts;

/* Robust homography: draws minimal 4-point samples (skipping collinear and orientation-
 * flipping ones), scores them by MSAC (truncated squared error), runs a local optimisation
 * (iterated least-squares refits on the inliers) whenever a new best model appears, stops
 * after the adaptive number of samples for opts->confidence given the best inlier ratio so
 * far, and finishes with a (weighted) least-squares + Levenberg-Marquardt refit on all inliers.
 * inlier_mask (n bytes, caller-owned, may be NULL) receives 1 for inliers.
 * Returns BAD_INPUT when n < 4 or no model with at least 4 inliers was found; NOMEM when the
 * scratch arrays (freed before return) cannot be allocated. */
pimg_status pimg_homography_ransac(const double *src, const double *dst, int n,
                                   const pimg_ransac_opts *opts, double H[9],
                                   unsigned char *inlier_mask, int *n_inliers, pimg_error *err);

/* Nonzero when H is a plausible view change for a src image of w x h pixels: the four corners
 * stay in front of the camera (w > 0), keep their orientation (no mirror), form a convex
 * quadrilateral, and the area changes by less than max_area_ratio either way. */
int pimg_homography_plausible(const double H[9], double w, double h, double max_area_ratio);

/* Inverse of H (normalised to H[8] == 1 when possible). Returns BAD_INPUT when singular. */
pimg_status pimg_homography_invert(const double H[9], double out[9]);

/* Solves the dense n x n system a x = b in place (Gaussian elimination with partial pivoting;
 * the solution replaces b, a is destroyed). Returns -1 when a pivot falls below tiny (singular
 * for the caller's scale), else 0. Shared by the homography fits and photometric refinement. */
int pimg_linsolve(double *a, double *b, int n, double tiny);

#endif
