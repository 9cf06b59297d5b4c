/* pipeline.c — runs the analysis steps on the tensor and the corrections on the full image.
 *
 * Analysis happens on a shrink-on-load copy (cost independent of megapixels); every decision
 * is then applied once, at full resolution, through libvips. Coordinates reported to callers
 * are input pixels after EXIF orientation, before pimg's own corrections. */
#include "pipeline.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "align.h"
#include "background.h"
#include "clock.h"
#include "detect.h"
#include "enhance.h"
#include "level.h"
#include "orient.h"
#include "shadow.h"

static const struct {
    const char *name;
    unsigned bit;
} op_names[] = {
    {"orient", PIMG_OP_ORIENT}, {"level", PIMG_OP_LEVEL},           {"align", PIMG_OP_ALIGN},
    {"detect", PIMG_OP_DETECT}, {"enhance", PIMG_OP_ENHANCE},       {"background", PIMG_OP_BACKGROUND},
    {"crop", PIMG_OP_CROP},
};

void pimg_pipeline_opts_default(pimg_pipeline_opts *o)
{
    memset(o, 0, sizeof *o);
    o->ops = PIMG_OPS_DEFAULT;
    o->background = PIMG_BG_KEEP;
    o->quality = 85;
    o->analysis_side = PIMG_ANALYSIS_SIDE;
    o->fill = 0.85;
    o->prefetch = 1;
}

pimg_status pimg_ops_parse(const char *list, unsigned *ops, pimg_error *err)
{
    unsigned bits = 0;
    const char *p = list ? list : "";
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n > 0) {
            size_t i;
            for (i = 0; i < sizeof op_names / sizeof *op_names; i++)
                if (strlen(op_names[i].name) == n && !strncasecmp(p, op_names[i].name, n))
                    break;
            if (i == sizeof op_names / sizeof *op_names)
                return pimg_error_set(err, PIMG_ERR_BAD_INPUT,
                                      "unknown op '%.*s' (known: orient,level,align,detect,enhance,background,crop)",
                                      (int)(n > 40 ? 40 : n), p);
            bits |= op_names[i].bit;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    *ops = bits;
    return PIMG_OK;
}

pimg_status pimg_background_parse(const char *s, pimg_background *bg, pimg_error *err)
{
    if (!strcasecmp(s, "keep"))
        *bg = PIMG_BG_KEEP;
    else if (!strcasecmp(s, "blur"))
        *bg = PIMG_BG_BLUR;
    else if (!strcasecmp(s, "white"))
        *bg = PIMG_BG_WHITE;
    else
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "background must be keep, blur or white");
    return PIMG_OK;
}

pimg_status pimg_fill_parse(const char *s, double *fill, pimg_error *err)
{
    char *end;
    double f = strtod(s, &end);
    if (!*s || *end || !(f > 0.1 && f <= 1.0))
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "fill must be a number in (0.1, 1]");
    *fill = f;
    return PIMG_OK;
}

pimg_status pimg_pipeline_opts_check(const pimg_pipeline_opts *o, pimg_error *err)
{
    if (o->white_shadow && o->background != PIMG_BG_WHITE)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "a shadow is drawn on the white background only: add background white");
    return PIMG_OK;
}

pimg_status pimg_analysis_init(pimg_analysis *a)
{
    memset(a, 0, sizeof *a);
    a->quality = cJSON_CreateObject();
    a->details = cJSON_CreateObject();
    a->timings = cJSON_CreateObject();
    a->compliance = cJSON_CreateObject();
    if (!a->quality || !a->details || !a->timings || !a->compliance) {
        pimg_analysis_clear(a);
        return PIMG_ERR_NOMEM;
    }
    return PIMG_OK;
}

void pimg_analysis_clear(pimg_analysis *a)
{
    cJSON_Delete(a->quality);
    cJSON_Delete(a->details);
    cJSON_Delete(a->timings);
    cJSON_Delete(a->compliance);
    memset(a, 0, sizeof *a);
}

static double round_to(double v, double step) { return round(v / step) * step; }

cJSON *pimg_analysis_to_json(const pimg_analysis *a, const char *file)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (file)
        cJSON_AddStringToObject(o, "file", file);
    cJSON_AddNumberToObject(o, "width", a->width);
    cJSON_AddNumberToObject(o, "height", a->height);
    cJSON_AddNumberToObject(o, "exif_orientation", a->exif_orientation);
    cJSON_AddNumberToObject(o, "rotation", a->rotation);
    cJSON_AddNumberToObject(o, "rotation_confidence", round_to(a->rotation_confidence, 1e-4));
    cJSON_AddNumberToObject(o, "level", round_to(a->level, 1e-3));
    cJSON_AddNumberToObject(o, "level_confidence", round_to(a->level_confidence, 1e-4));
    if (a->has_box) {
        cJSON *b = cJSON_AddArrayToObject(o, "box");
        for (int i = 0; i < 4; i++)
            cJSON_AddItemToArray(b, cJSON_CreateNumber(a->box[i]));
    } else {
        cJSON_AddNullToObject(o, "box");
    }
    cJSON_AddNumberToObject(o, "box_confidence", round_to(a->box_confidence, 1e-4));
    cJSON_AddItemToObject(o, "quality", cJSON_Duplicate(a->quality, 1));
    cJSON_AddItemToObject(o, "compliance", cJSON_Duplicate(a->compliance, 1));
    cJSON *ap = cJSON_AddArrayToObject(o, "applied");
    for (int i = 0; i < a->n_applied; i++)
        cJSON_AddItemToArray(ap, cJSON_CreateString(a->applied[i]));
    if (a->out_width) {
        cJSON_AddNumberToObject(o, "out_width", a->out_width);
        cJSON_AddNumberToObject(o, "out_height", a->out_height);
    }
    cJSON_AddItemToObject(o, "details", cJSON_Duplicate(a->details, 1));
    cJSON_AddItemToObject(o, "timings_ms", cJSON_Duplicate(a->timings, 1));
    return o;
}

/* Deadline check between steps: a step already running is not interrupted, but no new one
 * starts once the caller's deadline has passed. */
static pimg_status check_deadline(const pimg_pipeline_opts *o, pimg_error *err)
{
    if (o->deadline_ms > 0 && pimg_clock_ms() > o->deadline_ms)
        return pimg_error_set(err, PIMG_ERR_TIMEOUT, "processing deadline passed");
    return PIMG_OK;
}

static void add_timing(pimg_analysis *a, const char *stage, double t0)
{
    cJSON_AddNumberToObject(a->timings, stage, round_to(pimg_clock_ms() - t0, 0.01));
}

static void mark_applied(pimg_analysis *a, const char *step)
{
    if (a->n_applied < PIMG_MAX_APPLIED)
        a->applied[a->n_applied++] = step;
}

/* What the analysis found, kept for the apply stage. */
typedef struct {
    pimg_tensor *tensor;  /* input, EXIF-oriented, analysis size */
    pimg_tensor *upright; /* tensor turned by the chosen rotation (may alias tensor) */
    double scale;         /* input pixels per tensor pixel */
    pimg_detection det;   /* on `upright` */
    pimg_quality quality;
    pimg_enhance_plan plan;
} run_state;

static void state_clear(run_state *s)
{
    if (s->upright != s->tensor)
        pimg_tensor_free(s->upright);
    pimg_tensor_free(s->tensor);
    pimg_detection_clear(&s->det);
    pimg_enhance_plan_clear(&s->plan);
    memset(s, 0, sizeof *s);
}

/* Maps a point of the upright tensor (turned clockwise by rot) back to the input tensor. */
static void unrotate_point(double x, double y, int rot, int tw, int th, double *ox, double *oy)
{
    switch (rot) {
    case 90: *ox = y; *oy = th - x; break;
    case 180: *ox = tw - x; *oy = th - y; break;
    case 270: *ox = tw - y; *oy = x; break;
    default: *ox = x; *oy = y; break;
    }
}

static void box_to_input(pimg_analysis *a, const run_state *s, int rot)
{
    double x0, y0, x1, y1;
    unrotate_point(s->det.box[0], s->det.box[1], rot, s->tensor->w, s->tensor->h, &x0, &y0);
    unrotate_point(s->det.box[2], s->det.box[3], rot, s->tensor->w, s->tensor->h, &x1, &y1);
    double bx0 = fmin(x0, x1) * s->scale, bx1 = fmax(x0, x1) * s->scale;
    double by0 = fmin(y0, y1) * s->scale, by1 = fmax(y0, y1) * s->scale;
    a->box[0] = (int)fmax(0, floor(bx0));
    a->box[1] = (int)fmax(0, floor(by0));
    a->box[2] = (int)fmin(a->width, ceil(bx1));
    a->box[3] = (int)fmin(a->height, ceil(by1));
    a->has_box = a->box[2] > a->box[0] && a->box[3] > a->box[1];
}

/* Detection on its own thread: reads only the (immutable) upright tensor and the model. */
typedef struct {
    const pimg_detect_model *model;
    const pimg_tensor *t;
    int grabcut_mask; /* the mask will be drawn into the output (background, crop) */
    pimg_detection *det;
    pthread_t thread;
    pimg_status st;
    pimg_error err;
    double ms;
} detect_job;

static void *detect_main(void *arg)
{
    detect_job *j = arg;
    double t = pimg_clock_ms();
    j->st = pimg_detect_run(j->model, j->t, j->grabcut_mask, j->det, &j->err);
    j->ms = pimg_clock_ms() - t;
    return NULL;
}

/* Starts j on its own thread, or runs it here when no thread can be made. Returns 1 when a
 * thread was started (the caller joins it). */
static int detect_start(detect_job *j)
{
    if (pthread_create(&j->thread, NULL, detect_main, j) == 0)
        return 1;
    detect_main(j);
    return 0;
}

/* Levelling, quality scores and the enhancement plan: the analysis steps besides detection. */
static pimg_status analyse_tone_and_tilt(const pimg_models *models, const pimg_pipeline_opts *o,
                                         pimg_analysis *a, run_state *s, pimg_error *err)
{
    pimg_status st;
    double t;
    if ((st = check_deadline(o, err)))
        return st;
    if (o->ops & PIMG_OP_LEVEL) {
        t = pimg_clock_ms();
        if ((st = pimg_level_estimate_model(pimg_models_level(models), s->upright, &a->level,
                                            &a->level_confidence, err)))
            return st;
        add_timing(a, "level", t);
    }
    if ((st = check_deadline(o, err)))
        return st;
    t = pimg_clock_ms();
    if ((st = pimg_enhance_analyse(pimg_models_enhance(models), s->upright, &s->quality,
                                   o->ops & PIMG_OP_ENHANCE ? &s->plan : NULL, err)))
        return st;
    pimg_quality_to_json(&s->quality, a->quality);
    if (o->ops & PIMG_OP_ENHANCE) {
        cJSON *pj = cJSON_AddObjectToObject(a->details, "enhance");
        if (pj)
            pimg_enhance_plan_to_json(&s->plan, pj);
    }
    add_timing(a, "quality", t);
    return PIMG_OK;
}

/* Orientation: the turn that makes the analysis tensor upright; s->upright is the turned
 * copy (owned by s) or s->tensor itself. */
static pimg_status analyse_orientation(const pimg_models *models, const pimg_pipeline_opts *o,
                                       pimg_analysis *a, run_state *s, pimg_error *err)
{
    pimg_status st;
    double t;
    if (o->ops & PIMG_OP_ORIENT) {
        t = pimg_clock_ms();
        if ((st = pimg_orient_predict(pimg_models_orient(models), s->tensor, &a->rotation,
                                      &a->rotation_confidence, err)))
            return st;
        if (!pimg_models_orient(models))
            cJSON_AddStringToObject(a->details, "orient", "no orientation model loaded");
        if (a->rotation && !(s->upright = pimg_tensor_rot90(s->tensor, a->rotation)))
            return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        add_timing(a, "orient", t);
    }
    return PIMG_OK;
}

/* Whether the product mask is drawn into the output (background or crop): detection then makes
 * the finer GrabCut mask, and the background step runs. */
static int draws_mask(const pimg_pipeline_opts *o)
{
    return (o->ops & (PIMG_OP_BACKGROUND | PIMG_OP_CROP)) || o->background != PIMG_BG_KEEP;
}

static pimg_status run_analysis(const pimg_models *models, pimg_image *img, const pimg_pipeline_opts *o,
                                pimg_analysis *a, run_state *s, pimg_error *err)
{
    double t0 = pimg_clock_ms(), wasted_ms = 0;
    pimg_status st;
    a->width = pimg_image_input_width(img);
    a->height = pimg_image_input_height(img);
    a->exif_orientation = pimg_image_exif_orientation(img);
    if ((st = pimg_image_tensor(img, o->analysis_side, &s->tensor, err)))
        return st;
    s->upright = s->tensor;
    s->scale = (double)a->width / s->tensor->w;
    add_timing(a, "decode", t0);

    if ((st = check_deadline(o, err)))
        return st;
    /* Detection is the longest step and needs only the upright tensor. Nearly every photo
     * is upright already, so it starts on the decoded tensor at once, on a second thread,
     * while orientation, levelling and the quality scores run here; in the rare case that
     * the photo gets turned, it is run again on the turned tensor. */
    int want_mask = draws_mask(o);
    int want_detect = (o->ops & PIMG_OP_DETECT) || want_mask;
    detect_job dj = {.model = pimg_models_detect(models), .t = s->tensor, .grabcut_mask = want_mask, .det = &s->det};
    int threaded = want_detect && detect_start(&dj);
    st = analyse_orientation(models, o, a, s, err);
    if (!st && want_detect && s->upright != s->tensor) {
        /* turned: the guess was wrong, detect again on the upright tensor */
        if (threaded)
            pthread_join(dj.thread, NULL);
        pimg_detection_clear(&s->det);
        wasted_ms = dj.ms;
        dj = (detect_job){
            .model = pimg_models_detect(models), .t = s->upright, .grabcut_mask = want_mask, .det = &s->det};
        threaded = detect_start(&dj);
    }
    if (!st)
        st = analyse_tone_and_tilt(models, o, a, s, err);
    if (threaded)
        pthread_join(dj.thread, NULL);
    if (st)
        return st;
    if (want_detect) {
        if (dj.st)
            return pimg_error_set(err, dj.st, "%s", dj.err.msg);
        if (!dj.model)
            cJSON_AddStringToObject(a->details, "detect", "no detection model loaded");
        if (s->det.found) {
            box_to_input(a, s, a->rotation);
            a->box_confidence = s->det.confidence;
        }
        /* Compliance of the photo as uploaded (the enhance path replaces it with the output's). */
        cJSON *c = pimg_compliance_measure(s->upright, s->det.found ? s->det.mask : NULL,
                                           a->width > a->height ? a->width : a->height);
        if (c) {
            cJSON_Delete(a->compliance);
            a->compliance = c;
        }
        cJSON_AddNumberToObject(a->timings, "detect", round_to(wasted_ms + dj.ms, 0.01));
    }
    add_timing(a, "analyze_total", t0);
    return PIMG_OK;
}

pimg_status pimg_pipeline_analyze(const pimg_models *models, pimg_image *img,
                                  const pimg_pipeline_opts *opts, pimg_analysis *a, pimg_error *err)
{
    pimg_pipeline_opts def;
    if (!opts) {
        pimg_pipeline_opts_default(&def);
        opts = &def;
    }
    run_state s = {0};
    pimg_status st = run_analysis(models, img, opts, a, &s, err);
    state_clear(&s);
    return st;
}

static pimg_status apply_align(pimg_image *img, const pimg_pipeline_opts *o, const run_state *s,
                               pimg_analysis *a, pimg_error *err)
{
    pimg_tensor *rt = NULL;
    pimg_align_result r;
    pimg_status st = pimg_image_tensor(o->reference, o->analysis_side, &rt, err);
    if (st)
        return st;
    double rscale = (double)pimg_image_input_width(o->reference) / rt->w;
    st = pimg_align_estimate(s->tensor, s->scale, rt, rscale, &r, err);
    pimg_tensor_free(rt);
    if (st)
        return st;
    cJSON *j = cJSON_AddObjectToObject(a->details, "align");
    cJSON_AddNumberToObject(j, "inliers", r.inliers);
    cJSON_AddNumberToObject(j, "matches", r.matches);
    if (!r.found) {
        cJSON_AddStringToObject(j, "note", "no trustworthy homography; image not warped");
        return PIMG_OK;
    }
    cJSON_AddItemToObject(j, "homography", cJSON_CreateDoubleArray(r.H, 9));
    if ((st = pimg_align_warp(img, r.H, pimg_image_input_width(o->reference),
                              pimg_image_input_height(o->reference), err)))
        return st;
    mark_applied(a, "align");
    return PIMG_OK;
}

/* Background and crop, after orient/level/enhance. The mask lives on the upright analysis
 * tensor; a level rotation already applied at full resolution is replayed on the mask (turn
 * about the centre, keep the centred inner rectangle, as pimg_level_apply does with crop on),
 * so the white/blur edge follows the product exactly. Skipped (with a note) after `align`,
 * whose homography the mask does not follow. */
static pimg_status apply_background(pimg_image *img, const pimg_pipeline_opts *o, run_state *s, pimg_analysis *a,
                                    int up_w, int up_h, pimg_error *err)
{
    cJSON *j = cJSON_AddObjectToObject(a->details, "background");
    if (!s->det.found || !s->det.mask) {
        cJSON_AddStringToObject(j, "note", "no product found; background and crop skipped");
        return PIMG_OK;
    }
    if (!up_w) {
        cJSON_AddStringToObject(j, "note", "image was aligned to a reference; background and crop skipped");
        return PIMG_OK;
    }
    /* The colour-model mask holds the product's cast shadow on a plain backdrop; the white
     * or blurred background and the crop are for the product alone. */
    double shadow = 0;
    pimg_status st = pimg_shadow_remove(s->upright, s->det.mask, &shadow, err);
    if (st)
        return st;
    if (shadow >= 0.0005)
        cJSON_AddNumberToObject(j, "shadow_cleared", round_to(shadow, 0.001));
    int levelled = 0;
    for (int i = 0; i < a->n_applied; i++)
        levelled |= !strcmp(a->applied[i], "level");
    pimg_tensor *m = NULL;
    st = pimg_background_mask_for_level(s->det.mask, levelled ? a->level : 0.0, up_w, up_h, pimg_image_width(img),
                                        pimg_image_height(img), &m, err);
    if (st)
        return st;
    if (o->background == PIMG_BG_BLUR || o->background == PIMG_BG_WHITE) {
        st = o->background == PIMG_BG_BLUR ? pimg_background_blur(img, m, err)
                                           : pimg_background_white(img, m, o->white_shadow, err);
        if (st)
            goto out;
        cJSON_AddStringToObject(j, "mode", o->background == PIMG_BG_BLUR ? "blur" : "white");
        if (o->background == PIMG_BG_WHITE && o->white_shadow)
            cJSON_AddStringToObject(j, "shadow", "drawn");
        mark_applied(a, "background");
    }
    if (o->ops & PIMG_OP_CROP) {
        int in_long = a->width > a->height ? a->width : a->height;
        st = pimg_background_crop(img, &m, o->fill, o->background == PIMG_BG_WHITE, 1000, in_long, err);
        if (st == PIMG_ERR_NOT_FOUND) {
            cJSON_AddStringToObject(j, "note", "empty product mask; crop skipped");
            st = PIMG_OK;
        } else if (st) {
            goto out;
        } else {
            cJSON_AddNumberToObject(j, "fill", o->fill);
            mark_applied(a, "crop");
        }
    }
    /* Compliance of what is delivered: measured on a 1024 px copy of the finished pixels. */
    pimg_tensor *ft = NULL;
    if ((st = pimg_background_image_tensor(img, PIMG_ANALYSIS_SIDE, &ft, err)))
        goto out;
    int w = pimg_image_width(img), h = pimg_image_height(img), ls = w > h ? w : h;
    if (o->max_side > 0 && ls > o->max_side)
        ls = o->max_side;
    cJSON *c = pimg_compliance_measure(ft, m, ls);
    pimg_tensor_free(ft);
    if (c) {
        cJSON_Delete(a->compliance);
        a->compliance = c;
    }
out:
    pimg_tensor_free(m);
    return st;
}

pimg_status pimg_pipeline_enhance(const pimg_models *models, pimg_image *img,
                                  const pimg_pipeline_opts *opts, pimg_analysis *a, void **jpeg,
                                  size_t *jpeg_len, pimg_error *err)
{
    pimg_pipeline_opts def;
    if (!opts) {
        pimg_pipeline_opts_default(&def);
        opts = &def;
    }
    run_state s = {0};
    /* The output needs every pixel anyway: decode them on a second thread while the analysis
     * runs on its own shrink-on-load copy. */
    pimg_status st = opts->prefetch ? pimg_image_prefetch(img, PIMG_PREFETCH_MAX_PIXELS, err) : PIMG_OK;
    if (st || (st = run_analysis(models, img, opts, a, &s, err)) || (st = check_deadline(opts, err)))
        goto out;
    double t = pimg_clock_ms();
    int up_w = 0, up_h = 0; /* full-resolution size in the upright frame, before levelling */
    if (opts->ops & PIMG_OP_ALIGN && opts->reference) {
        /* Registration defines the whole geometry: it replaces orient/level. */
        if ((st = apply_align(img, opts, &s, a, err)))
            goto out;
    } else {
        if ((opts->ops & PIMG_OP_ORIENT) && a->rotation) {
            if ((st = pimg_image_rot90(img, a->rotation, err)))
                goto out;
            mark_applied(a, "orient");
        }
        up_w = pimg_image_width(img);
        up_h = pimg_image_height(img);
        if ((opts->ops & PIMG_OP_LEVEL) && a->level != 0.0) {
            if ((st = pimg_level_apply(img, a->level, !opts->level_fill, err)))
                goto out;
            mark_applied(a, "level");
        }
    }
    if ((opts->ops & PIMG_OP_ENHANCE) && s.plan.active) {
        if ((st = pimg_enhance_apply(img, &s.plan, err)))
            goto out;
        mark_applied(a, "enhance");
        const char *steps[4];
        int n = pimg_enhance_plan_steps(&s.plan, steps, 4);
        for (int i = 0; i < n; i++)
            mark_applied(a, steps[i]);
    }
    if (draws_mask(opts)) {
        if ((st = apply_background(img, opts, &s, a, up_w, up_h, err)))
            goto out;
    }
    add_timing(a, "apply", t);
    if ((st = check_deadline(opts, err)))
        goto out;
    t = pimg_clock_ms();
    pimg_jpeg_opts jo = {.quality = opts->quality, .keep_icc = opts->keep_icc, .max_side = opts->max_side,
                         .deadline_ms = opts->deadline_ms};
    if ((st = pimg_image_encode_jpeg(img, &jo, jpeg, jpeg_len, err)))
        goto out;
    a->out_width = pimg_image_width(img);
    a->out_height = pimg_image_height(img);
    if (opts->max_side > 0 && (a->out_width > opts->max_side || a->out_height > opts->max_side)) {
        double f = (double)opts->max_side / (a->out_width > a->out_height ? a->out_width : a->out_height);
        a->out_width = (int)lround(a->out_width * f);
        a->out_height = (int)lround(a->out_height * f);
    }
    add_timing(a, "encode", t);
out:
    state_clear(&s);
    return st;
}
