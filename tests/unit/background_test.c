/* background_test.c — lib/background on composited photos whose true masks are known:
 * blur keeps the product's detail and removes the background's; white makes the true
 * background white and leaves the product alone (mask from the real detector); crop centres
 * the product at the requested fill; compliance reports it. Photos come from
 * ../shared/data/objects and ../shared/data/train (or $PIMG_DATA_DIR). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#include "background.h"
#include "composite.h"
#include "detect.h"
#include "image.h"
#include "image_vips.h"
#include "models.h"
#include "pimg.h"
#include "shadow.h"
#include "testutil.h"

static pimg_composite_src *src;

static const char *data_dir(void)
{
    const char *d = getenv("PIMG_DATA_DIR");
    return d && *d ? d : "../shared/data";
}

static void setup(void)
{
    pimg_error err = {0};
    ck_assert_int_eq(pimg_init(NULL, 1, &err), PIMG_OK);
    char od[1024], bd[1024];
    snprintf(od, sizeof od, "%s/objects", data_dir());
    snprintf(bd, sizeof bd, "%s/train", data_dir());
    pimg_status st = pimg_composite_src_load(od, bd, &src, &err);
    ck_assert_msg(st == PIMG_OK, "cannot load composite sources: %s", err.msg);
}

static void teardown(void)
{
    pimg_composite_src_free(src);
    src = NULL;
}

/* Encodes a 0..1 tensor losslessly (PNG) and opens it as a pimg_image. */
static pimg_image *image_of(const pimg_tensor *t)
{
    size_t n = (size_t)t->w * t->h * 3;
    unsigned char *px = malloc(n);
    for (size_t i = 0; i < n; i++)
        px[i] = (unsigned char)lroundf(fminf(fmaxf(t->data[i], 0), 1) * 255);
    VipsImage *v = vips_image_new_from_memory(px, n, t->w, t->h, 3, VIPS_FORMAT_UCHAR);
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(vips_pngsave_buffer(v, &buf, &len, "compression", 1, NULL), 0);
    g_object_unref(v);
    free(px);
    pimg_image *img = NULL;
    ck_assert_int_eq(pimg_image_load_buffer(buf, len, NULL, &img, NULL), PIMG_OK);
    g_free(buf);
    return img;
}

/* The image's current pixels as 8-bit RGB (g_malloc'd). */
static unsigned char *pixels_of(pimg_image *img, int *w, int *h)
{
    VipsImage *v;
    ck_assert_int_eq(pimg_image_vips(img, &v, NULL), PIMG_OK);
    VipsImage *mem = vips_image_copy_memory(v);
    ck_assert_ptr_nonnull(mem);
    size_t len;
    unsigned char *px = vips_image_write_to_memory(mem, &len);
    *w = mem->Xsize;
    *h = mem->Ysize;
    /* A decoded image streams once: keep the memory copy as the image's pixels. */
    pimg_image_set_vips(img, mem);
    return px;
}

/* Variance of the grey Laplacian over pixels where sel[i] is set (and all 4 neighbours are
 * inside the image). */
static double lap_var(const unsigned char *px, int w, int h, const unsigned char *sel)
{
    double s = 0, s2 = 0;
    long n = 0;
    for (int y = 1; y < h - 1; y++)
        for (int x = 1; x < w - 1; x++) {
            if (!sel[(size_t)y * w + x])
                continue;
#define G(xx, yy) (0.299 * px[((size_t)(yy) * w + (xx)) * 3] + 0.587 * px[((size_t)(yy) * w + (xx)) * 3 + 1] + \
                   0.114 * px[((size_t)(yy) * w + (xx)) * 3 + 2])
            double l = G(x - 1, y) + G(x + 1, y) + G(x, y - 1) + G(x, y + 1) - 4 * G(x, y);
#undef G
            s += l;
            s2 += l * l;
            n++;
        }
    return n ? s2 / n - (s / n) * (s / n) : 0;
}

/* Region selectors from the true alpha: product core (alpha 1, 3 px from the edge) and clear
 * background (alpha 0, at least `gap` px from any product pixel). */
static void regions(const pimg_tensor *alpha, int gap, unsigned char *prod, unsigned char *bg)
{
    int w = alpha->w, h = alpha->h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int allp = 1, nonep = 1;
            int r = gap > 3 ? gap : 3;
            for (int dy = -r; dy <= r; dy++)
                for (int dx = -r; dx <= r; dx++) {
                    int xx = x + dx, yy = y + dy;
                    if (xx < 0 || yy < 0 || xx >= w || yy >= h)
                        continue;
                    float a = alpha->data[(size_t)yy * w + xx];
                    if (abs(dx) <= 3 && abs(dy) <= 3 && a < 0.999f)
                        allp = 0;
                    if (a > 0.0f)
                        nonep = 0;
                }
            prod[(size_t)y * w + x] = (unsigned char)allp;
            bg[(size_t)y * w + x] = (unsigned char)nonep;
        }
}

START_TEST(blur_keeps_product_detail_and_removes_background_detail)
{
    /* Real photo backgrounds: textured, so their Laplacian variance is meaningful. */
    uint64_t rng = 1234;
    double worst_prod = 10, worst_bg = 0;
    for (int i = 0; i < 6; i++) {
        pimg_composite_spec sp = {.side = 640, .shadow = 0, .min_fill = 0.4, .max_fill = 0.7};
        sp.object = (i * 7) % pimg_composite_n_objects(src);
        sp.background = (i * 13) % pimg_composite_n_backgrounds(src);
        pimg_tensor *t = NULL, *alpha = NULL;
        double box[4];
        ck_assert_int_eq(pimg_composite_make(src, &sp, &rng, &t, &alpha, box, NULL), PIMG_OK);
        pimg_image *img = image_of(t);
        int w, h;
        unsigned char *before = pixels_of(img, &w, &h);
        ck_assert_int_eq(pimg_background_blur(img, alpha, NULL), PIMG_OK);
        unsigned char *after = pixels_of(img, &w, &h);
        unsigned char *prod = malloc((size_t)w * h), *bg = malloc((size_t)w * h);
        regions(alpha, 8, prod, bg);
        double pb = lap_var(before, w, h, prod), pa = lap_var(after, w, h, prod);
        double bb = lap_var(before, w, h, bg), ba = lap_var(after, w, h, bg);
        worst_prod = fmin(worst_prod, pa / pb);
        worst_bg = fmax(worst_bg, ba / bb);
        ck_assert_msg(pa >= 0.9 * pb, "composite %d: product kept %.1f%% of its Laplacian variance", i, 100 * pa / pb);
        ck_assert_msg(ba <= 0.3 * bb, "composite %d: background kept %.1f%% of its Laplacian variance", i,
                      100 * ba / bb);
        free(prod);
        free(bg);
        g_free(before);
        g_free(after);
        pimg_image_free(img);
        pimg_tensor_free(t);
        pimg_tensor_free(alpha);
    }
    fprintf(stderr, "blur: product keeps >= %.1f%% of its Laplacian variance, background keeps <= %.1f%%\n",
            100 * worst_prod, 100 * worst_bg);
}
END_TEST

/* One composite of spec sp through the detector (its mask, with the cast shadow taken out
 * when drop_shadow) and the white background: *fb = share of true-background pixels now white
 * (all channels >= 250), *fp = share of product pixels unchanged (|d| <= 3). */
static void white_shares(const pimg_detect_model *m, const pimg_composite_spec *sp, uint64_t *rng, int drop_shadow,
                         int i, double *fb, double *fp)
{
    pimg_tensor *t = NULL, *alpha = NULL;
    double box[4];
    ck_assert_int_eq(pimg_composite_make(src, sp, rng, &t, &alpha, box, NULL), PIMG_OK);
    pimg_detection d;
    ck_assert_int_eq(pimg_detect_run(m, t, 1, &d, NULL), PIMG_OK);
    ck_assert(d.found && d.mask);
    if (drop_shadow)
        ck_assert_int_eq(pimg_shadow_remove(t, d.mask, NULL, NULL), PIMG_OK);
    pimg_image *img = image_of(t);
    int w, h;
    unsigned char *before = pixels_of(img, &w, &h);
    ck_assert_int_eq(pimg_background_white(img, d.mask, 0, NULL), PIMG_OK);
    unsigned char *after = pixels_of(img, &w, &h);
    long nb = 0, wb = 0, np = 0, kp = 0;
    for (long k = 0; k < (long)w * h; k++) {
        float a = alpha->data[k];
        const unsigned char *p = after + 3 * k, *q = before + 3 * k;
        if (a == 0.0f) {
            nb++;
            wb += p[0] >= 250 && p[1] >= 250 && p[2] >= 250;
        } else if (a >= 0.999f) {
            np++;
            kp += abs(p[0] - q[0]) <= 3 && abs(p[1] - q[1]) <= 3 && abs(p[2] - q[2]) <= 3;
        }
    }
    *fb = (double)wb / nb;
    *fp = (double)kp / np;
    if (getenv("PIMG_TEST_DUMP")) { /* debugging aid: the composite and the whitened photo */
        fprintf(stderr, "composite %d (%s): box %.0f %.0f %.0f %.0f, true %.0f %.0f %.0f %.0f, fb %.4f fp %.4f\n", i,
                pimg_composite_object_name(src, sp->object), d.box[0], d.box[1], d.box[2], d.box[3], box[0], box[1],
                box[2], box[3], *fb, *fp);
        char fn[256];
        snprintf(fn, sizeof fn, "/tmp/bgt_%d_in.png", i);
        vips_image_write_to_file(vips_image_new_from_memory(before, (size_t)w * h * 3, w, h, 3, VIPS_FORMAT_UCHAR), fn, NULL);
        snprintf(fn, sizeof fn, "/tmp/bgt_%d_out.png", i);
        vips_image_write_to_file(vips_image_new_from_memory(after, (size_t)w * h * 3, w, h, 3, VIPS_FORMAT_UCHAR), fn, NULL);
    }
    g_free(before);
    g_free(after);
    pimg_image_free(img);
    pimg_detection_clear(&d);
    pimg_tensor_free(t);
    pimg_tensor_free(alpha);
}

/* The shipped detector (or the no-model ranking when models/ has no detect.svm). */
static pimg_detect_model *detector(void)
{
    char mp[1024];
    snprintf(mp, sizeof mp, "%s", getenv("PIMG_MODELS_DIR") ? getenv("PIMG_MODELS_DIR") : "models");
    strncat(mp, "/detect.svm", sizeof mp - strlen(mp) - 1);
    pimg_detect_model *m = NULL;
    pimg_detect_model_load(mp, &m, NULL);
    return m;
}

START_TEST(white_with_detected_mask_whitens_background_and_keeps_product)
{
    /* End to end on plain-background composites: the mask comes from the detector, not from
     * the true alpha. */
    pimg_detect_model *m = detector();
    uint64_t rng = 99;
    double worst_bg = 1, worst_prod = 1;
    for (int i = 0; i < 6; i++) {
        pimg_composite_spec sp = {.side = 768, .shadow = 0, .background = -1, .min_fill = 0.5, .max_fill = 0.85};
        sp.object = (i * 11 + 3) % pimg_composite_n_objects(src);
        double fb, fp;
        white_shares(m, &sp, &rng, 1, i, &fb, &fp);
        worst_bg = fmin(worst_bg, fb);
        worst_prod = fmin(worst_prod, fp);
        ck_assert_msg(fb >= 0.99, "composite %d (%s): %.2f%% of true background is white", i,
                      pimg_composite_object_name(src, sp.object), 100 * fb);
        ck_assert_msg(fp >= 0.95, "composite %d (%s): %.2f%% of product pixels unchanged", i,
                      pimg_composite_object_name(src, sp.object), 100 * fp);
    }
    fprintf(stderr, "white: worst true-background white share %.4f, worst product unchanged share %.4f\n", worst_bg,
            worst_prod);
    pimg_detect_model_free(m);
}
END_TEST

START_TEST(white_takes_out_the_cast_shadow)
{
    /* The same composites with a soft contact shadow (part of the true background): with the
     * shadow left in the mask it stays grey; taken out, the background is white and the
     * product still untouched on almost every photo. */
    pimg_detect_model *m = detector();
    int n = 12, ok_with = 0, ok_without = 0;
    double fp_sum = 0;
    for (int drop = 0; drop < 2; drop++) {
        uint64_t rng = 2026;
        for (int i = 0; i < n; i++) {
            pimg_composite_spec sp = {.side = 768, .shadow = 1, .background = -1, .min_fill = 0.3, .max_fill = 0.85};
            sp.object = (i * 7 + 5) % pimg_composite_n_objects(src);
            double fb, fp;
            white_shares(m, &sp, &rng, drop, i, &fb, &fp);
            int ok = fb >= 0.99 && fp >= 0.95;
            if (drop) {
                ok_with += ok;
                fp_sum += fp;
            } else {
                ok_without += ok;
            }
        }
    }
    fprintf(stderr, "white with cast shadows: %d of %d composites pass with the shadow taken out, %d without; "
            "mean product unchanged share %.4f\n", ok_with, n, ok_without, fp_sum / n);
    ck_assert_int_ge(ok_with, n - 2);
    ck_assert_int_gt(ok_with, ok_without);
    ck_assert_double_ge(fp_sum / n, 0.97);
    pimg_detect_model_free(m);
}
END_TEST

START_TEST(white_draws_a_soft_shadow_on_request)
{
    /* The optional synthetic shadow: just below the product the background is darker, far
     * from it pure white, and the product itself untouched. Mask = the true alpha. */
    uint64_t rng = 5;
    pimg_composite_spec sp = {.side = 600, .shadow = 0, .background = -1, .min_fill = 0.4, .max_fill = 0.6};
    sp.object = 2 % pimg_composite_n_objects(src);
    pimg_tensor *t = NULL, *alpha = NULL;
    double box[4];
    ck_assert_int_eq(pimg_composite_make(src, &sp, &rng, &t, &alpha, box, NULL), PIMG_OK);
    pimg_image *img = image_of(t);
    int w, h;
    unsigned char *before = pixels_of(img, &w, &h);
    ck_assert_int_eq(pimg_background_white(img, alpha, 1, NULL), PIMG_OK);
    unsigned char *after = pixels_of(img, &w, &h);
    /* the band right under the product's bottom edge, within its columns */
    long nb = 0;
    int darkest = 255;
    int y0 = (int)box[3] + 1, y1 = y0 + h / 100 + 2;
    for (int y = y0; y < y1 && y < h; y++)
        for (int x = (int)box[0]; x < (int)box[2]; x++)
            if (alpha->data[(long)y * w + x] == 0.0f) {
                int v = after[3 * ((long)y * w + x)];
                darkest = v < darkest ? v : darkest;
                nb++;
            }
    fprintf(stderr, "white with a drawn shadow: darkest pixel just under the product %d\n", darkest);
    ck_assert_int_gt(nb, 0);
    ck_assert_int_le(darkest, 235);
    /* the top-left corner, far from the product: pure white */
    ck_assert_int_eq(after[0], 255);
    ck_assert_int_eq(after[3 * ((long)2 * w + 2) + 1], 255);
    long np = 0, kp = 0;
    for (long k = 0; k < (long)w * h; k++)
        if (alpha->data[k] >= 0.999f) {
            np++;
            kp += abs(after[3 * k] - before[3 * k]) <= 3;
        }
    ck_assert_double_ge((double)kp / np, 0.99);
    g_free(before);
    g_free(after);
    pimg_image_free(img);
    pimg_tensor_free(t);
    pimg_tensor_free(alpha);
}
END_TEST

START_TEST(crop_centres_product_at_fill_and_compliance_reports_it)
{
    uint64_t rng = 7;
    pimg_composite_spec sp = {.side = 600, .shadow = 0, .background = -1, .object = 5, .min_fill = 0.3, .max_fill = 0.4};
    pimg_tensor *t = NULL, *alpha = NULL;
    double box[4];
    ck_assert_int_eq(pimg_composite_make(src, &sp, &rng, &t, &alpha, box, NULL), PIMG_OK);
    pimg_image *img = image_of(t);
    ck_assert_int_eq(pimg_background_white(img, alpha, 0, NULL), PIMG_OK);
    pimg_tensor *m = pimg_tensor_copy(alpha);
    /* Input long side 600 < 1000: no enlargement is allowed. */
    ck_assert_int_eq(pimg_background_crop(img, &m, 0.85, 1, 1000, 600, NULL), PIMG_OK);
    pimg_tensor *out = NULL;
    ck_assert_int_eq(pimg_background_image_tensor(img, 1024, &out, NULL), PIMG_OK);
    ck_assert_int_eq(out->w, out->h);
    cJSON *c = pimg_compliance_measure(out, m, out->w);
    double fill = cJSON_GetObjectItem(c, "fill_ratio")->valuedouble;
    ck_assert_double_eq_tol(fill, 0.85, 0.02);
    ck_assert_double_ge(cJSON_GetObjectItem(c, "background_whiteness")->valuedouble, 0.99);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "rules"), "fill"), "pass")));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "rules"), "resolution"), "pass")));
    /* Centred: the product box's centre sits in the middle of the frame (within 2%). */
    int b[4] = {m->w, m->h, -1, -1};
    for (int y = 0; y < m->h; y++)
        for (int x = 0; x < m->w; x++)
            if (m->data[(size_t)y * m->w + x] >= 0.5f) {
                if (x < b[0]) b[0] = x;
                if (x > b[2]) b[2] = x;
                if (y < b[1]) b[1] = y;
                if (y > b[3]) b[3] = y;
            }
    ck_assert_double_eq_tol((b[0] + b[2] + 1) / 2.0 / m->w, 0.5, 0.02);
    ck_assert_double_eq_tol((b[1] + b[3] + 1) / 2.0 / m->h, 0.5, 0.02);
    /* A large input: the frame is enlarged to 1000 px. */
    pimg_tensor *m2 = pimg_tensor_copy(alpha);
    pimg_image *img2 = image_of(t);
    ck_assert_int_eq(pimg_background_crop(img2, &m2, 0.85, 1, 1000, 4000, NULL), PIMG_OK);
    ck_assert_int_eq(pimg_image_width(img2), 1000);
    cJSON_Delete(c);
    pimg_tensor_free(out);
    pimg_tensor_free(m);
    pimg_tensor_free(m2);
    pimg_image_free(img);
    pimg_image_free(img2);
    pimg_tensor_free(t);
    pimg_tensor_free(alpha);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("background");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, blur_keeps_product_detail_and_removes_background_detail);
    tcase_add_test(tc, white_with_detected_mask_whitens_background_and_keeps_product);
    tcase_add_test(tc, white_takes_out_the_cast_shadow);
    tcase_add_test(tc, white_draws_a_soft_shadow_on_request);
    tcase_add_test(tc, crop_centres_product_at_fill_and_compliance_reports_it);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
