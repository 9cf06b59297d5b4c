/* pipeline.h — the steps pimg runs on one photo, in order: analyse on the shrink-on-load
 * tensor (orient → level → detect → quality), then apply the chosen corrections at full
 * resolution (rotate, level, align, enhance, background, crop) and encode the JPEG.
 *
 * The result of the analysis is a pimg_analysis, rendered as the contract's analysis JSON. */
#ifndef PIMG_PIPELINE_H
#define PIMG_PIPELINE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "image.h"
#include "models.h"
#include "status.h"

enum {
    PIMG_OP_ORIENT = 1 << 0,
    PIMG_OP_LEVEL = 1 << 1,
    PIMG_OP_ALIGN = 1 << 2,
    PIMG_OP_DETECT = 1 << 3,
    PIMG_OP_ENHANCE = 1 << 4,
    PIMG_OP_BACKGROUND = 1 << 5,
    PIMG_OP_CROP = 1 << 6
};
#define PIMG_OPS_DEFAULT (PIMG_OP_ORIENT | PIMG_OP_LEVEL | PIMG_OP_DETECT | PIMG_OP_ENHANCE)

typedef enum { PIMG_BG_KEEP = 0, PIMG_BG_BLUR, PIMG_BG_WHITE } pimg_background;

typedef struct {
    unsigned ops;               /* PIMG_OP_* bits */
    pimg_background background; /* used when PIMG_OP_BACKGROUND is set or background != keep */
    int white_shadow;           /* white background: draw a soft contact shadow under the product
                                 * (its own cast shadow is always taken out first) */
    int quality;                /* JPEG quality 1..100 */
    int max_side;               /* 0 = keep size */
    int keep_icc;               /* tag output as sRGB instead of stripping all metadata */
    int analysis_side;          /* longest side of the analysis tensor */
    double fill;                /* crop: share of the frame the product should fill */
    int level_fill;             /* level: 0 = crop to the largest inner rectangle, 1 = keep the
                                 * whole photo and fill the corners white */
    pimg_image *reference;      /* borrowed; align target, NULL when none */
    double deadline_ms;         /* CLOCK_MONOTONIC time in ms after which the run stops with
                                   PIMG_ERR_TIMEOUT, checked between steps; 0 = none. The
                                   service sets it from its per-request timeout. */
    int prefetch;               /* enhance: decode the full-resolution pixels on a second thread
                                 * while the analysis runs (pimg_image_prefetch). Faster when a
                                 * core is idle, 3 bytes per pixel more memory; default 1. */
} pimg_pipeline_opts;

/* Fills opts with the defaults (PIMG_OPS_DEFAULT, keep, Q85, 1024 px analysis, fill 0.85,
 * prefetch on). */
void pimg_pipeline_opts_default(pimg_pipeline_opts *opts);

/* Parses a comma list such as "orient,level,enhance" into PIMG_OP_* bits. BAD_INPUT names the
 * unknown word. */
pimg_status pimg_ops_parse(const char *list, unsigned *ops, pimg_error *err);

/* Parses "keep" | "blur" | "white". */
pimg_status pimg_background_parse(const char *s, pimg_background *bg, pimg_error *err);

/* Parses the crop's fill share: a number in (0.1, 1]. */
pimg_status pimg_fill_parse(const char *s, double *fill, pimg_error *err);

/* Checks options that only make sense together (a drawn shadow needs the white background);
 * BAD_INPUT says which. The CLI and the service call it after reading their options. */
pimg_status pimg_pipeline_opts_check(const pimg_pipeline_opts *o, pimg_error *err);

/* Room for every op plus enhance's finer steps (denoise, white_balance, tone, contrast). */
#define PIMG_MAX_APPLIED 12

typedef struct {
    int width, height;       /* input, after EXIF orientation */
    int exif_orientation;
    int rotation;            /* clockwise quarter turn pimg makes */
    double rotation_confidence;
    double level;            /* clockwise degrees after rotation */
    double level_confidence;
    int has_box;
    int box[4];              /* input pixels, x1/y1 exclusive */
    double box_confidence;
    int out_width, out_height; /* of the written image (enhance only; 0 otherwise) */
    const char *applied[PIMG_MAX_APPLIED]; /* static step names, in order applied */
    int n_applied;
    cJSON *quality;          /* owned object: scores */
    cJSON *details;          /* owned object: per-step parameters and notes */
    cJSON *timings;          /* owned object: milliseconds per stage */
    cJSON *compliance;       /* owned object: marketplace checks (background, fill, size, sharpness) */
} pimg_analysis;

/* Initialises a to empty (owned JSON objects allocated). NOMEM on failure. */
pimg_status pimg_analysis_init(pimg_analysis *a);

/* Frees what a owns; safe on a zeroed or already-cleared record. */
void pimg_analysis_clear(pimg_analysis *a);

/* The contract's analysis JSON; file (CLI only) may be NULL.
 * Ownership: caller frees with cJSON_Delete; NULL on no memory. */
cJSON *pimg_analysis_to_json(const pimg_analysis *a, const char *file);

/* Analyses img (no pixels changed). models may be NULL. a must be initialised.
 * Errors: BAD_INPUT when the image cannot be decoded. */
pimg_status pimg_pipeline_analyze(const pimg_models *models, pimg_image *img,
                                  const pimg_pipeline_opts *opts, pimg_analysis *a, pimg_error *err);

/* Analyses, applies the corrections opts->ops allows, and encodes the JPEG.
 * Ownership: *jpeg is malloc'd on success; caller frees with free(). */
pimg_status pimg_pipeline_enhance(const pimg_models *models, pimg_image *img,
                                  const pimg_pipeline_opts *opts, pimg_analysis *a, void **jpeg,
                                  size_t *jpeg_len, pimg_error *err);

#endif
