/* level_internal.h — the pieces of lib/level.c that unit tests exercise one by one: the
 * folded orientation histogram, the decision rule on it, and the inner-rectangle geometry. */
#ifndef PIMG_LEVEL_INTERNAL_H
#define PIMG_LEVEL_INTERNAL_H

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

/* Largest axis-aligned rectangle (*iw x *ih) inside a w x h rectangle turned by deg. */
void pimg_level_inner_rect(int w, int h, double deg, int *iw, int *ih);

#endif
