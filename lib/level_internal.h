/* level_internal.h — the pieces of lib/level.c that unit tests exercise one by one: the
 * folded orientation histogram, the decision rule on it, and the inner-rectangle geometry. */
#ifndef PIMG_LEVEL_INTERNAL_H
#define PIMG_LEVEL_INTERNAL_H

#include "level.h"
#include "status.h"
#include "tensor.h"

/* Histogram of folded edge orientations: 4 bins per degree over [-45, 45). */
#define PIMG_LEVEL_NBINS 360

typedef struct {
    double max_deg;            /* largest tilt considered (contract: 20) */
    double min_peak_ratio;     /* peak / histogram median needed to act */
    double min_coherent_share; /* share of the evidence within ±1° of the peak needed to act */
    double snap_deg;           /* smaller estimates are reported as 0 */
    double max_zero_ratio;     /* act only if the evidence within ±0.5° of 0 is below this share
                                * of the evidence within ±0.5° of the peak */
} pimg_level_params;

void pimg_level_params_default(pimg_level_params *p);

/* Fills hist[nbins] (nbins must be PIMG_LEVEL_NBINS) with coherence-weighted gradient votes of
 * t (grey or RGB); *total is their sum. Bin i covers [-45 + i/4, -45 + (i+1)/4) degrees,
 * counter-clockwise tilt of the edges as seen on screen. */
pimg_status pimg_level_histogram(const pimg_tensor *t, double *hist, int nbins, double *total,
                                 pimg_error *err);

/* The histogram's strongest peak within ±max_deg: its angle (sub-bin), its height over the
 * histogram's median, and the share of all votes within ±1° of it. All 0 for an empty one. */
void pimg_level_peak(const double *hist, int nbins, double total, double max_deg, double *ang,
                     double *ratio, double *share);

/* The decision on a histogram: *deg (clockwise degrees that level the photo, 0 when the
 * evidence is too weak) and *confidence in 0..1. */
pimg_status pimg_level_decide(const double *hist, int nbins, double total, const pimg_level_params *p,
                              double *deg, double *confidence);

/* Unfolded orientation histograms: 4 bins per degree over [-90, 90) (0 = vertical edges,
 * ±90 = horizontal ones), so a level photo's two edge families stay apart. Channels, all on the
 * ~512 px grey copy: 0 straight edges (magnitude x coherence^4), 1 magnitude alone, 2 and 3 long
 * straight lines (Hough: sum of squared line lengths over diag², longest line over diag), only
 * within ±24° of 0 and ±90. */
#define PIMG_LEVEL_UBINS 720
#define PIMG_LEVEL_NCHAN 4

typedef struct {
    double h[PIMG_LEVEL_NCHAN][PIMG_LEVEL_UBINS];
    double total[PIMG_LEVEL_NCHAN];
} pimg_level_hists;

/* Fills *out from tensor t (grey or RGB). Empty histograms (totals 0) for tiny images. */
pimg_status pimg_level_hists_compute(const pimg_tensor *t, pimg_level_hists *out, pimg_error *err);

/* The learned model scores candidate tilts -20..20° every 0.25°. Each candidate's features
 * (PIMG_LEVEL_NFEAT) read the histograms of channels 0, 2 and 3 at the candidate (its vertical
 * family) and 90° away (its horizontal family): log evidence sharply (σ 0.5°) and broadly (σ 2°)
 * smoothed, how far the sharp value stands above its ±2..4° surroundings, the weaker of the two
 * families (a level photo has both), then |angle| / 20 and "is the zero candidate". */
#define PIMG_LEVEL_NCAND 161
#define PIMG_LEVEL_CAND_MIN (-20.0)
#define PIMG_LEVEL_CAND_STEP 0.25
#define PIMG_LEVEL_NFEAT 23

static inline double pimg_level_cand_deg(int k) { return PIMG_LEVEL_CAND_MIN + PIMG_LEVEL_CAND_STEP * k; }

/* feat[k * PIMG_LEVEL_NFEAT + j]: raw (unstandardised) features of every candidate k. */
void pimg_level_features(const pimg_level_hists *h, double *feat);

struct pimg_level_model {
    double mean[PIMG_LEVEL_NFEAT], scale[PIMG_LEVEL_NFEAT]; /* standardisation */
    double w[PIMG_LEVEL_NFEAT];                              /* softmax score weights */
    double min_conf; /* act only when the posterior mass within ±1° of its median reaches this */
    double snap_deg; /* smaller answers are reported as 0 */
};

/* Turns the candidates' scores s[PIMG_LEVEL_NCAND] into softmax probabilities, in place
 * (shifted by the largest score so exp cannot overflow). Shared by inference and training. */
void pimg_level_softmax(double *s);

/* Softmax posterior post[PIMG_LEVEL_NCAND] of the candidates given their raw features. */
void pimg_level_posterior(const pimg_level_model *m, const double *feat, double *post);

/* The answer from a posterior: its median (the error-minimising choice for absolute error),
 * refined by the posterior mean within ±1° of it; *conf is the mass within ±1°. *deg is 0 when
 * *conf < min_conf or the answer is under snap_deg. */
void pimg_level_from_posterior(const double *post, double min_conf, double snap_deg, double *deg, double *conf);

/* Largest axis-aligned rectangle (*iw x *ih) inside a w x h rectangle turned by deg. */
void pimg_level_inner_rect(int w, int h, double deg, int *iw, int *ih);

#endif
