/* orient_features.c — colour-moment grid + HOG features for the orientation classifier
 * (see orient_features.h for the layout and why the thumbnail is square). */
#include "orient_features.h"

#include <math.h>
#include <stdlib.h>

#include <vl/hog.h>

#define T PIMG_ORIENT_THUMB
#define G PIMG_ORIENT_GRID

pimg_tensor *pimg_orient_thumb(const pimg_tensor *t)
{
    if (!t || t->c != 3)
        return NULL;
    return pimg_tensor_resize(t, T, T);
}

/* sRGB 0..1 → L*a*b* scaled to roughly unit range (L/100, a/100, b/100). */
static void to_lab(const float *rgb, float *lab)
{
    pimg_srgb_to_lab(rgb, lab);
    lab[0] /= 100.0f;
    lab[1] /= 100.0f;
    lab[2] /= 100.0f;
}

pimg_status pimg_orient_features(const pimg_tensor *thumb, double log_aspect, float *out, pimg_error *err)
{
    if (!thumb || thumb->w != T || thumb->h != T || thumb->c != 3)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "orientation features need a %dx%d RGB thumbnail", T, T);
    float lab[T * T * 3];
    float grey[T * T];
    for (int i = 0; i < T * T; i++) {
        to_lab(thumb->data + i * 3, lab + i * 3);
        const float *p = thumb->data + i * 3;
        grey[i] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
    }
    /* Colour moments per grid cell: mean and standard deviation of each L*a*b* channel. */
    const int cs = T / G;
    float *o = out;
    for (int gy = 0; gy < G; gy++)
        for (int gx = 0; gx < G; gx++) {
            double s[3] = {0}, s2[3] = {0};
            for (int y = gy * cs; y < (gy + 1) * cs; y++)
                for (int x = gx * cs; x < (gx + 1) * cs; x++)
                    for (int c = 0; c < 3; c++) {
                        double v = lab[(y * T + x) * 3 + c];
                        s[c] += v;
                        s2[c] += v * v;
                    }
            double n = (double)cs * cs;
            for (int c = 0; c < 3; c++) {
                double m = s[c] / n, var = s2[c] / n - m * m;
                *o++ = (float)m;
                *o++ = (float)sqrt(var > 0 ? var : 0);
            }
        }
    /* HOG of the grey thumbnail. VLFeat allocates per call; the thumbnail is tiny so this is
     * cheap, and it keeps the function reentrant. */
    VlHog *hog = vl_hog_new(VlHogVariantUoctti, 9, VL_FALSE);
    if (!hog)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    vl_hog_put_image(hog, grey, T, T, 1, PIMG_ORIENT_HOG_CELL);
    size_t n = vl_hog_get_width(hog) * vl_hog_get_height(hog) * vl_hog_get_dimension(hog);
    if (n != PIMG_ORIENT_N_HOG) {
        vl_hog_delete(hog);
        return pimg_error_set(err, PIMG_ERR_INTERNAL, "unexpected HOG size %zu", n);
    }
    vl_hog_extract(hog, o);
    vl_hog_delete(hog);
    o[PIMG_ORIENT_N_HOG] = (float)log_aspect;
    return PIMG_OK;
}
