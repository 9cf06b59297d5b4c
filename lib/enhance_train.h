/* enhance_train.h — fitting the enhancement model on synthetically degraded photos.
 *
 * Each clean photo is degraded in known ways (dark: gamma + exposure, flat: reduced contrast
 * with an offset, cast: channel gains, noise: Gaussian + salt-and-pepper, none), so the ideal
 * correction is known exactly. The trainer fits, stage by stage on the training photos: the
 * denoise thresholds (grid search on PSNR), the white-balance gain regressions (libsvm
 * epsilon-SVR) and their dead zone, the tone-curve regressions and their dead zone, and the
 * CLAHE strength rule; then scores the whole plan on the held-out photos. */
#ifndef PIMG_ENHANCE_TRAIN_H
#define PIMG_ENHANCE_TRAIN_H

#include <stdint.h>

#include "enhance.h"
#include "enhance_px.h"
#include "status.h"

typedef enum {
    PIMG_DEG_NONE = 0,
    PIMG_DEG_DARK,
    PIMG_DEG_FLAT,
    PIMG_DEG_CAST,
    PIMG_DEG_NOISE,
    PIMG_DEG_KINDS
} pimg_deg_kind;

typedef struct {
    int kind;
    double gamma, scale;  /* dark: y = scale * x^gamma (0..1) */
    double slope, offset; /* flat: y = slope * x + offset */
    double gain[3];       /* cast: y = gain * x */
    double sigma, sp;     /* noise: Gaussian sigma (0..255) and salt-and-pepper share */
    uint64_t seed;        /* noise draws */
} pimg_degradation;

/* Name of a kind ("none", "dark", ...). */
const char *pimg_deg_name(int kind);

/* Random parameters of a kind from *rng (ranges cover everyday defects). */
void pimg_degradation_random(int kind, uint64_t *rng, pimg_degradation *d);

/* The degraded copy of src (8-bit, truncated like numpy's astype(uint8) after clipping).
 * Ownership: out->p is malloc'd, caller frees. -1 on no memory. */
int pimg_degradation_apply(const pimg_rgb8 *src, const pimg_degradation *d, pimg_rgb8 *out);

typedef struct {
    int n[PIMG_DEG_KINDS];
    double psnr_input[PIMG_DEG_KINDS];   /* mean PSNR of the degraded photo */
    double psnr_auto[PIMG_DEG_KINDS];    /* mean PSNR of per-channel autocontrast (1 % cutoff) */
    double psnr_pimg[PIMG_DEG_KINDS];    /* mean PSNR of the plan's output */
} pimg_enhance_metrics;

typedef struct {
    const pimg_rgb8 *photos; /* clean photos (small: ~256 px) */
    int n_photos;
    const int *is_test;      /* per photo: held out */
    int variants;            /* degraded copies per photo and kind (>= 1) */
    uint64_t seed;
    double svr_c, svr_eps;   /* libsvm epsilon-SVR settings (<= 0: defaults 4, 0.01) */
    double none_weight;      /* objective weight of undegraded photos (<= 0: default 3) */
    pimg_progress_fn progress; /* may be NULL */
    void *ctx;
} pimg_enhance_train_opts;

/* Fits a model on the photos not flagged in is_test. Ownership: *out is written only on success
 * and freed with pimg_enhance_model_free. train and test (may be NULL) get the whole plan's
 * metrics on each split, on fresh degradations. */
pimg_status pimg_enhance_train(const pimg_enhance_train_opts *o, pimg_enhance_model **out,
                               pimg_enhance_metrics *train, pimg_enhance_metrics *test, pimg_error *err);

/* Scores a model (NULL = built-in defaults) on the photos flagged in `use` (NULL = all). */
pimg_status pimg_enhance_evaluate(const pimg_enhance_model *m, const pimg_rgb8 *photos, int n,
                                  const int *use, int variants, uint64_t seed, pimg_enhance_metrics *met,
                                  pimg_error *err);

#endif
