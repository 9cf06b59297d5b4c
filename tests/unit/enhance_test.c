/* enhance_test.c — unit tests for lib/enhance*: lookups, denoise, CLAHE, the do-no-harm plan,
 * the model's JSON form, the full-resolution path against the in-memory kernels, and a small
 * training run. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#include "enhance.h"
#include "enhance_model.h"
#include "enhance_train.h"
#include "image_vips.h"
#include "pimg.h"
#include "testutil.h"

/* A synthetic "photo": a diagonal gradient over the full range with a few flat shapes. */
static pimg_rgb8 scene(int w, int h, unsigned seed)
{
    pimg_rgb8 im = {w, h, malloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = im.p + ((size_t)y * w + x) * 3;
            double g = (double)(x + y) / (w + h - 2);
            p[0] = (uint8_t)(255 * g);
            p[1] = (uint8_t)(255 * (0.2 + 0.8 * g * g));
            p[2] = (uint8_t)(255 * (1 - g));
            unsigned r = (unsigned)((x / 8) * 31 + (y / 8) * 17 + seed * 7) % 11;
            if (r == 0)
                p[0] = p[1] = p[2] = 250;
            else if (r == 1)
                p[0] = p[1] = p[2] = 6;
            else if (r == 2) {
                p[0] = 200;
                p[1] = 40;
                p[2] = 30;
            }
        }
    return im;
}

START_TEST(lut_identity_and_highlights_kept)
{
    uint8_t lut[3][256];
    double one[3] = {1, 1, 1};
    pimg_enhance_build_lut(one, 0, 1, 0, 1, 1, lut);
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            ck_assert_int_eq(lut[c][v], v);
    /* Identity also when the levels map black/white onto themselves: tails are not clipped. */
    pimg_enhance_build_lut(one, 0.2, 0.8, 0.2, 0.8, 1, lut);
    for (int v = 0; v < 256; v++)
        ck_assert_int_eq(lut[1][v], v);
    double g[3] = {0.8, 1, 1.25};
    pimg_enhance_build_lut(g, 0, 1, 0, 1, 1, lut);
    ck_assert_int_eq(lut[0][100], 80);
    ck_assert_int_eq(lut[0][255], 255); /* a clipped channel stays clipped, not tinted */
    ck_assert_int_eq(lut[2][100], 125);
    ck_assert_int_eq(lut[2][250], 255);
}
END_TEST

START_TEST(impulses_removed_edges_kept)
{
    pimg_rgb8 im = {40, 40, malloc(40 * 40 * 3)};
    memset(im.p, 120, 40 * 40 * 3);
    for (int i = 0; i < 10; i++) {
        uint8_t *p = im.p + ((size_t)(4 + 3 * i) * 40 + 5 + 3 * i) * 3;
        memset(p, i % 2 ? 255 : 0, 3);
    }
    ck_assert(pimg_is_impulse(im.p + ((size_t)4 * 40 + 5) * 3, 40 * 3, 50));
    pimg_denoise_params dp = {.impulse = 1, .impulse_thr = 50, .range_h = 0};
    pimg_denoise_prepare(&dp);
    ck_assert_int_eq(pimg_denoise_rgb8(&im, &dp), 0);
    for (int i = 0; i < 40 * 40 * 3; i++)
        ck_assert_int_eq(im.p[i], 120);
    /* A straight edge between black and white is not an impulse. */
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 40; x++)
            memset(im.p + ((size_t)y * 40 + x) * 3, x < 20 ? 0 : 255, 3);
    ck_assert(!pimg_is_impulse(im.p + ((size_t)10 * 40 + 20) * 3, 40 * 3, 50));
    ck_assert(!pimg_is_impulse(im.p + ((size_t)10 * 40 + 19) * 3, 40 * 3, 50));
    free(im.p);
}
END_TEST

START_TEST(bilateral_reduces_gaussian_noise)
{
    pimg_rgb8 ref = scene(96, 64, 1), deg;
    pimg_degradation d = {.kind = PIMG_DEG_NOISE, .sigma = 12, .sp = 0, .seed = 42, .gain = {1, 1, 1}};
    ck_assert_int_eq(pimg_degradation_apply(&ref, &d, &deg), 0);
    double before = pimg_rgb8_psnr(&deg, &ref);
    pimg_quality q;
    pimg_quality_measure_rgb8(&deg, &q);
    ck_assert_double_gt(q.noise, 8);
    ck_assert_double_lt(q.noise, 16);
    pimg_denoise_params dp = {.impulse = 0, .range_h = q.noise * 3};
    pimg_denoise_prepare(&dp);
    pimg_denoise_rgb8(&deg, &dp);
    ck_assert_double_gt(pimg_rgb8_psnr(&deg, &ref), before + 3);
    free(ref.p);
    free(deg.p);
}
END_TEST

START_TEST(clahe_zero_strength_is_identity)
{
    pimg_rgb8 im = scene(128, 96, 2), out = {128, 96, malloc(128 * 96 * 3)};
    pimg_clahe *c = malloc(sizeof *c);
    pimg_clahe_build(&im, 2.0, 0.0, c);
    ck_assert_int_eq(c->tiles_x, 8);
    pimg_clahe_rect(c, 128, 96, 0, 0, 128, 96, im.p, 128 * 3, out.p, 128 * 3);
    ck_assert_int_eq(memcmp(im.p, out.p, 128 * 96 * 3), 0);
    /* Full strength on a low-contrast copy spreads lightness out. */
    for (int i = 0; i < 128 * 96 * 3; i++)
        im.p[i] = (uint8_t)(100 + im.p[i] / 8);
    pimg_clahe_build(&im, 4.0, 1.0, c);
    pimg_clahe_rect(c, 128, 96, 0, 0, 128, 96, im.p, 128 * 3, out.p, 128 * 3);
    int lo_in = 255, hi_in = 0, lo_out = 255, hi_out = 0;
    for (int i = 1; i < 128 * 96 * 3; i += 3) {
        lo_in = im.p[i] < lo_in ? im.p[i] : lo_in;
        hi_in = im.p[i] > hi_in ? im.p[i] : hi_in;
        lo_out = out.p[i] < lo_out ? out.p[i] : lo_out;
        hi_out = out.p[i] > hi_out ? out.p[i] : hi_out;
    }
    ck_assert_int_gt(hi_out - lo_out, hi_in - lo_in + 15);
    free(c);
    free(im.p);
    free(out.p);
}
END_TEST

START_TEST(clean_photo_left_alone_flat_photo_fixed)
{
    pimg_rgb8 ref = scene(160, 120, 3), deg;
    pimg_enhance_plan *plan = malloc(sizeof *plan);
    ck_assert_int_eq(pimg_enhance_plan_make_rgb8(NULL, &ref, plan, NULL), PIMG_OK);
    ck_assert_int_eq(plan->active, 0);
    pimg_degradation d = {.kind = PIMG_DEG_FLAT, .slope = 0.45, .offset = 70 / 255.0, .gain = {1, 1, 1}};
    ck_assert_int_eq(pimg_degradation_apply(&ref, &d, &deg), 0);
    double before = pimg_rgb8_psnr(&deg, &ref);
    ck_assert_int_eq(pimg_enhance_plan_make_rgb8(NULL, &deg, plan, NULL), PIMG_OK);
    ck_assert(plan->active && plan->tone);
    ck_assert_int_eq(pimg_enhance_apply_rgb8(plan, &deg), 0);
    ck_assert_double_gt(pimg_rgb8_psnr(&deg, &ref), before + 8);
    free(plan);
    free(ref.p);
    free(deg.p);
}
END_TEST

START_TEST(model_json_roundtrip)
{
    pimg_enhance_model m, back;
    pimg_enhance_model_defaults(&m);
    m.noise_min = 7.5;
    m.has_tone = 1;
    for (int k = 0; k < 3; k++) {
        pimg_svr *s = &m.tone[k];
        s->n_sv = 2;
        s->sv = calloc(2 * PIMG_ENH_NF, sizeof(double));
        s->coef = malloc(2 * sizeof(double));
        s->sv[0] = 1;
        s->sv[PIMG_ENH_NF + 1] = -1;
        s->coef[0] = 0.5 + k;
        s->coef[1] = -0.25;
        s->rho = 0.1;
        s->gamma = 0.3;
        for (int j = 0; j < PIMG_ENH_NF; j++) {
            s->mean[j] = 0.1 * j;
            s->scale[j] = 1 + j;
        }
    }
    cJSON *j = pimg_enhance_model_to_json(&m);
    ck_assert_int_eq(pimg_enhance_model_from_json(j, &back), 0);
    ck_assert_int_eq(back.has_tone, 1);
    ck_assert_int_eq(back.has_wb, 0);
    ck_assert_double_eq(back.noise_min, 7.5);
    double x[PIMG_ENH_NF];
    for (int i = 0; i < PIMG_ENH_NF; i++)
        x[i] = 0.3 * i - 1;
    for (int k = 0; k < 3; k++)
        ck_assert_double_eq_tol(pimg_svr_predict(&back.tone[k], x), pimg_svr_predict(&m.tone[k], x), 1e-12);
    /* A regression with a wrong number of support-vector values is refused. */
    cJSON *sv = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "tone"), "svr_black_to"), "sv");
    cJSON_DeleteItemFromArray(sv, 0);
    pimg_enhance_model bad;
    ck_assert_int_eq(pimg_enhance_model_from_json(j, &bad), -1);
    cJSON_Delete(j);
    pimg_enhance_model_clear(&m);
    pimg_enhance_model_clear(&back);
}
END_TEST

START_TEST(full_resolution_matches_memory_kernels)
{
    const int w = 203, h = 157; /* odd sizes: regions do not line up with anything */
    pimg_rgb8 ref = scene(w, h, 4), deg;
    pimg_degradation d = {.kind = PIMG_DEG_NOISE, .sigma = 10, .sp = 0.02, .seed = 7, .gain = {1, 1, 1}};
    ck_assert_int_eq(pimg_degradation_apply(&ref, &d, &deg), 0);
    VipsImage *vi = vips_image_new_from_memory(deg.p, (size_t)w * h * 3, w, h, 3, VIPS_FORMAT_UCHAR);
    void *png;
    size_t len;
    ck_assert_int_eq(vips_pngsave_buffer(vi, &png, &len, "compression", 1, NULL), 0);
    g_object_unref(vi);
    pimg_image *img = NULL;
    ck_assert_int_eq(pimg_image_load_buffer(png, len, NULL, &img, NULL), PIMG_OK);
    g_free(png);

    pimg_enhance_plan *plan = calloc(1, sizeof *plan);
    plan->active = plan->denoise = plan->tone = plan->clahe = 1;
    plan->dn.impulse = 1;
    plan->dn.impulse_thr = 50;
    plan->dn.range_h = 30;
    pimg_denoise_prepare(&plan->dn);
    double g[3] = {0.9, 1, 1.1};
    pimg_enhance_build_lut(g, 0.05, 0.95, 0, 1, 0.8, plan->lut);
    pimg_clahe_build(&deg, 2.0, 0.5, &plan->cl);
    ck_assert_int_eq(pimg_enhance_apply(img, plan, NULL), PIMG_OK);
    VipsImage *out;
    ck_assert_int_eq(pimg_image_vips(img, &out, NULL), PIMG_OK);
    ck_assert_int_eq(out->Xsize, w);
    ck_assert_int_eq(out->Ysize, h);
    size_t n;
    uint8_t *got = vips_image_write_to_memory(out, &n);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(n, (size_t)w * h * 3);
    ck_assert_int_eq(pimg_enhance_apply_rgb8(plan, &deg), 0);
    ck_assert_int_eq(memcmp(got, deg.p, n), 0);
    g_free(got);
    pimg_image_free(img);
    free(plan);
    free(ref.p);
    free(deg.p);
}
END_TEST

START_TEST(training_fits_and_helps_dark_photos)
{
    enum { N = 24 };
    pimg_rgb8 photos[N];
    int is_test[N];
    for (int i = 0; i < N; i++) {
        photos[i] = scene(48 + i, 40, (unsigned)i);
        is_test[i] = i % 4 == 0;
    }
    pimg_enhance_train_opts o = {.photos = photos, .n_photos = N, .is_test = is_test, .variants = 1, .seed = 5};
    pimg_enhance_model *m = NULL;
    pimg_enhance_metrics tr, te;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_enhance_train(&o, &m, &tr, &te, &err), PIMG_OK);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(tr.n[PIMG_DEG_DARK], 18);
    ck_assert_int_eq(te.n[PIMG_DEG_DARK], 6);
    ck_assert_double_gt(tr.psnr_pimg[PIMG_DEG_DARK], tr.psnr_input[PIMG_DEG_DARK] + 3);
    /* The JSON form predicts exactly what the in-memory model does. */
    cJSON *j = pimg_enhance_model_to_json(m);
    pimg_enhance_model back;
    ck_assert_int_eq(pimg_enhance_model_from_json(j, &back), 0);
    double x[PIMG_ENH_NF] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.5, 0.1, 0.9};
    ck_assert_double_eq_tol(pimg_svr_predict(&back.tone[2], x), pimg_svr_predict(&m->tone[2], x), 1e-9);
    cJSON_Delete(j);
    pimg_enhance_model_clear(&back);
    pimg_enhance_model_free(m);
    for (int i = 0; i < N; i++)
        free(photos[i].p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("enhance");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, lut_identity_and_highlights_kept);
    tcase_add_test(tc, impulses_removed_edges_kept);
    tcase_add_test(tc, bilateral_reduces_gaussian_noise);
    tcase_add_test(tc, clahe_zero_strength_is_identity);
    tcase_add_test(tc, clean_photo_left_alone_flat_photo_fixed);
    tcase_add_test(tc, model_json_roundtrip);
    tcase_add_test(tc, full_resolution_matches_memory_kernels);
    tcase_add_test(tc, training_fits_and_helps_dark_photos);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 1);
}
