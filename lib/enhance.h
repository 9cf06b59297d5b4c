/* enhance.h — photo quality scores and the adaptive correction they drive
 * (white balance, contrast, exposure, denoise), applied at full resolution. */
#ifndef PIMG_ENHANCE_H
#define PIMG_ENHANCE_H

#include <cjson/cJSON.h>

#include "image.h"
#include "status.h"
#include "tensor.h"

typedef struct {
    double brightness; /* mean luma 0..1 */
    double contrast;   /* luma p95 - p5, 0..1 */
    double sharpness;  /* variance of the 4-neighbour Laplacian of luma (0..1 scale) */
} pimg_quality;

typedef struct pimg_enhance_model pimg_enhance_model;

/* What enhancement will do; filled by pimg_enhance_plan. active == 0 means leave the photo. */
typedef struct {
    int active;
} pimg_enhance_plan;

/* Measures quality scores on the analysis tensor. */
pimg_status pimg_quality_measure(const pimg_tensor *t, pimg_quality *q, pimg_error *err);

/* Adds the scores to a JSON object (the analysis `quality`). */
void pimg_quality_to_json(const pimg_quality *q, cJSON *obj);

/* Ownership: *out written on success, freed with pimg_enhance_model_free. NOT_FOUND if missing. */
pimg_status pimg_enhance_model_load(const char *path, pimg_enhance_model **out, pimg_error *err);
void pimg_enhance_model_free(pimg_enhance_model *m);

/* Decides the correction for a photo from its tensor and scores. m may be NULL (defaults). */
pimg_status pimg_enhance_plan_make(const pimg_enhance_model *m, const pimg_tensor *t,
                                   const pimg_quality *q, pimg_enhance_plan *plan, pimg_error *err);

/* Adds the plan's parameters to a JSON object. */
void pimg_enhance_plan_to_json(const pimg_enhance_plan *plan, cJSON *obj);

/* Applies the plan to the image's full-resolution pixels (lazily, one pass). */
pimg_status pimg_enhance_apply(pimg_image *img, const pimg_enhance_plan *plan, pimg_error *err);

/* Releases what a plan holds; NULL-safe. */
void pimg_enhance_plan_clear(pimg_enhance_plan *plan);

#endif
