/* enhance.c — quality scores on the analysis tensor. The adaptive correction itself lands
 * with issue 6; until then the plan is always "leave the photo as it is". */
#include "enhance.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

pimg_status pimg_quality_measure(const pimg_tensor *t, pimg_quality *q, pimg_error *err)
{
    pimg_tensor *g = pimg_tensor_grey(t);
    if (!g)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    long n = (long)g->w * g->h;
    unsigned hist[256] = {0};
    double sum = 0;
    for (long i = 0; i < n; i++) {
        float v = g->data[i];
        sum += v;
        int b = (int)(v * 255.0f + 0.5f);
        hist[b < 0 ? 0 : b > 255 ? 255 : b]++;
    }
    /* Percentiles from the histogram: robust to a few blown or black pixels. */
    long acc = 0;
    int p5 = -1, p95 = 255;
    for (int b = 0; b < 256; b++) {
        acc += hist[b];
        if (p5 < 0 && acc >= n * 0.05)
            p5 = b;
        if (acc >= n * 0.95) {
            p95 = b;
            break;
        }
    }
    double lsum = 0, lsq = 0;
    long ln = 0;
    for (int y = 1; y < g->h - 1; y++)
        for (int x = 1; x < g->w - 1; x++) {
            const float *p = pimg_tensor_at(g, x, y);
            double l = 4 * p[0] - p[-1] - p[1] - p[-g->w] - p[g->w];
            lsum += l;
            lsq += l * l;
            ln++;
        }
    q->brightness = sum / n;
    q->contrast = (p95 - (p5 < 0 ? 0 : p5)) / 255.0;
    q->sharpness = ln ? lsq / ln - (lsum / ln) * (lsum / ln) : 0.0;
    pimg_tensor_free(g);
    return PIMG_OK;
}

void pimg_quality_to_json(const pimg_quality *q, cJSON *obj)
{
    /* four significant decimals are all a caller can use; longer floats only bloat headers */
    cJSON_AddNumberToObject(obj, "brightness", round(q->brightness * 1e4) / 1e4);
    cJSON_AddNumberToObject(obj, "contrast", round(q->contrast * 1e4) / 1e4);
    cJSON_AddNumberToObject(obj, "sharpness", round(q->sharpness * 1e6) / 1e6);
}

pimg_status pimg_enhance_model_load(const char *path, pimg_enhance_model **out, pimg_error *err)
{
    (void)out;
    return pimg_error_set(err, PIMG_ERR_NOT_FOUND, "%s: enhancement model not implemented yet", path);
}

void pimg_enhance_model_free(pimg_enhance_model *m)
{
    (void)m;
}

pimg_status pimg_enhance_plan_make(const pimg_enhance_model *m, const pimg_tensor *t,
                                   const pimg_quality *q, pimg_enhance_plan *plan, pimg_error *err)
{
    (void)m;
    (void)t;
    (void)q;
    (void)err;
    memset(plan, 0, sizeof *plan);
    return PIMG_OK;
}

void pimg_enhance_plan_to_json(const pimg_enhance_plan *plan, cJSON *obj)
{
    cJSON_AddBoolToObject(obj, "active", plan->active);
}

pimg_status pimg_enhance_apply(pimg_image *img, const pimg_enhance_plan *plan, pimg_error *err)
{
    (void)img;
    (void)plan;
    (void)err;
    return PIMG_OK;
}

void pimg_enhance_plan_clear(pimg_enhance_plan *plan)
{
    (void)plan;
}
