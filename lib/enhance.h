/* enhance.h — photo quality scores and the adaptive correction they drive
 * (denoise, white balance, levels, exposure/gamma, local contrast), applied at full resolution.
 *
 * Measure → decide → apply: pimg_enhance_analyse scores the analysis tensor and turns the
 * scores (and a fitted model, see models/README.md) into a plan:
 * an optional denoise, one per-channel lookup table that fuses white balance, levels and gamma,
 * and an optional tiled CLAHE on lightness; pimg_enhance_apply runs the plan on the full image
 * in one streaming pass per stage. A clean photo gets an empty plan and is left untouched. */
#ifndef PIMG_ENHANCE_H
#define PIMG_ENHANCE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "enhance_px.h"
#include "image.h"
#include "status.h"
#include "tensor.h"

typedef struct {
    double brightness;     /* mean luma 0..1 */
    double exposure;       /* median luma 0..1 */
    double contrast;       /* luma p95 - p5, 0..1 */
    double sharpness;      /* variance of the 4-neighbour Laplacian of luma (0..1 scale) */
    double noise;          /* robust sigma (0..255) of a high-pass residual, outliers excluded */
    double impulse_share;  /* share of pixels that are isolated outliers (salt and pepper) */
    double cast_rg;        /* log(R/G) of the shades-of-grey illuminant estimate */
    double cast_bg;        /* log(B/G) of the same */
    double lo[3], hi[3];   /* per-channel 0.5 % / 99.5 % percentiles, 0..1 */
} pimg_quality;

typedef struct pimg_enhance_model pimg_enhance_model;

/* What enhancement will do; filled by pimg_enhance_analyse. active == 0: leave the photo. */
typedef struct {
    int active;
    int denoise;                  /* run the denoise kernel */
    pimg_denoise_params dn;
    int tone;                     /* apply lut */
    double gain[3];               /* white balance gains (G = 1) */
    double black, white, gamma;   /* levels (0..1 of the balanced photo) and exposure gamma */
    double black_to, white_to;    /* where black and white go (0..1) */
    uint8_t lut[3][256];          /* the fused white balance + levels + gamma per channel */
    int clahe;                    /* apply the CLAHE tiles */
    double clahe_clip;
    pimg_clahe cl;
} pimg_enhance_plan;

/* Adds the scores to a JSON object (the analysis `quality`). */
void pimg_quality_to_json(const pimg_quality *q, cJSON *obj);

/* Ownership: *out written on success, freed with pimg_enhance_model_free. NOT_FOUND if missing,
 * BAD_INPUT if the file is not a valid model. */
pimg_status pimg_enhance_model_load(const char *path, pimg_enhance_model **out, pimg_error *err);
void pimg_enhance_model_free(pimg_enhance_model *m);

/* Measures the quality scores of the analysis tensor (3-channel sRGB 0..1) into *q and, when
 * plan is not NULL, decides the correction from them, both on one 8-bit copy of the tensor.
 * m may be NULL (built-in defaults: hand-set thresholds, no learned white balance or tone
 * curve). */
pimg_status pimg_enhance_analyse(const pimg_enhance_model *m, const pimg_tensor *t, pimg_quality *q,
                                 pimg_enhance_plan *plan, pimg_error *err);

/* Adds the plan's decisions and parameters to a JSON object. */
void pimg_enhance_plan_to_json(const pimg_enhance_plan *plan, cJSON *obj);

/* Runs the plan on 8-bit RGB memory in place (what training and tests score). 0 or -1 (no memory). */
int pimg_enhance_apply_rgb8(const pimg_enhance_plan *plan, pimg_rgb8 *img);

/* Applies the plan to the image's full-resolution pixels (lazily, streaming). */
pimg_status pimg_enhance_apply(pimg_image *img, const pimg_enhance_plan *plan, pimg_error *err);

/* Names of the steps a plan applies, for the analysis `applied` list: writes up to max static
 * strings ("denoise", "white_balance", "tone", "contrast") and returns how many. */
int pimg_enhance_plan_steps(const pimg_enhance_plan *plan, const char **names, int max);

/* Releases what a plan holds; NULL-safe. */
void pimg_enhance_plan_clear(pimg_enhance_plan *plan);

#endif
