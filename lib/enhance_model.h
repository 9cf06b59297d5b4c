/* enhance_model.h — lib-internal: the fitted enhancement model, its features and its JSON form,
 * shared by the runtime (enhance.c) and the trainer (enhance_train.c).
 *
 * The model is a handful of decision thresholds plus two kinds of learned regressions (RBF
 * epsilon-SVR trained with libsvm, exported into the JSON so prediction needs no extra file):
 * white-balance gains of R and B relative to G, and the tone curve (levels and gamma). */
#ifndef PIMG_ENHANCE_MODEL_H
#define PIMG_ENHANCE_MODEL_H

#include <cjson/cJSON.h>

#include "enhance.h"
#include "enhance_px.h"

#define PIMG_ENH_NF 12 /* features per regression (unused slots are 0) */

/* f(x) = sum_i coef_i * exp(-gamma * |z - sv_i|^2) - rho, z = (x - mean) / scale. */
typedef struct {
    int n_sv;
    double *sv;   /* n_sv * PIMG_ENH_NF, standardised */
    double *coef; /* n_sv */
    double rho, gamma;
    double mean[PIMG_ENH_NF], scale[PIMG_ENH_NF];
} pimg_svr;

struct pimg_enhance_model {
    /* denoise */
    double impulse_min; /* impulse share above which outliers are replaced */
    int impulse_thr;    /* luma step of an outlier */
    double noise_min;   /* residual sigma (0..255) above which the bilateral runs */
    double range_k;     /* bilateral range scale = range_k * sigma */
    /* white balance */
    int has_wb;
    pimg_svr wb[2];     /* log gain of R, of B (G = 1) */
    double wb_dead;     /* |log gain| below this: no correction */
    double wb_max;      /* |log gain| limit: never more than this, so a red product stays red */
    /* tone (levels + gamma). With a fitted model three regressions give, from the measured
     * black/white points lo/hi, where they go (black_to, white_to) and the gamma between; without
     * one, a hand-set rule stretches only far-out black/white points. */
    int has_tone;
    pimg_svr tone[3];   /* black_to, white_to, log gamma */
    double tone_dead;   /* max |curve - identity| (0..1) below which the tone is left alone */
    double black_min, white_max; /* the rule without a model */
    /* local contrast: strength = clamp(clahe_k * (clahe_c0 - contrast), 0, clahe_max) */
    double clahe_c0, clahe_k, clahe_max, clahe_clip;
};

/* Built-in defaults: hand-set thresholds, no learned regressions. */
void pimg_enhance_model_defaults(pimg_enhance_model *m);

/* JSON form (what models/enhance.json holds). Ownership: caller deletes with cJSON_Delete. */
cJSON *pimg_enhance_model_to_json(const pimg_enhance_model *m);

/* Reads the JSON form into m (defaults first, so missing fields keep them). -1 on bad data. */
int pimg_enhance_model_from_json(const cJSON *j, pimg_enhance_model *m);

/* Frees the regressions' arrays (not m itself). */
void pimg_enhance_model_clear(pimg_enhance_model *m);

double pimg_svr_predict(const pimg_svr *s, const double *x);

/* White-balance features of channel ch (0 = R, 2 = B) against G. */
void pimg_enhance_wb_features(const pimg_rgb8 *img, double f[2][PIMG_ENH_NF]);

/* Tone features of an image after white balance: luma percentiles, mean, and lo/hi (the
 * darkest and brightest 0.5 % over all channels), which it also returns. */
void pimg_enhance_tone_features(const pimg_rgb8 *img, double *f, double *lo, double *hi);

/* Stage by stage plan building, so the trainer can fit each stage on the output of the previous
 * one. Each fills its part of plan; img is the working copy, corrected in place as it goes. */
int pimg_enhance_plan_denoise(const pimg_enhance_model *m, const pimg_quality *q, pimg_enhance_plan *plan,
                              pimg_rgb8 *img);
void pimg_enhance_plan_wb(const pimg_enhance_model *m, pimg_enhance_plan *plan, pimg_rgb8 *img);
void pimg_enhance_plan_tone(const pimg_enhance_model *m, pimg_enhance_plan *plan, pimg_rgb8 *img);
void pimg_enhance_plan_finish(const pimg_enhance_model *m, pimg_enhance_plan *plan, pimg_rgb8 *img);

/* The per-channel lookup of gains, levels and gamma (what plan->lut holds). */
void pimg_enhance_build_lut(const double gain[3], double black, double white, double black_to,
                            double white_to, double gamma, uint8_t lut[3][256]);

/* Quality scores of an 8-bit image (what pimg_enhance_analyse computes on the tensor). */
void pimg_quality_measure_rgb8(const pimg_rgb8 *img, pimg_quality *q);

/* Plan from an 8-bit copy of the photo (what pimg_enhance_analyse does on the tensor). */
pimg_status pimg_enhance_plan_make_rgb8(const pimg_enhance_model *m, const pimg_rgb8 *img,
                                        pimg_enhance_plan *plan, pimg_error *err);

#endif
