/* level_test.c — unit tests for lib/level: the folded orientation histogram finds the tilt of
 * straight edges (sign included), refuses to act on structureless images, the decision rule,
 * the inner-rectangle geometry (same as the evaluation's), and the full-resolution fix. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#include "image.h"
#include "level.h"
#include "level_internal.h"
#include "pimg.h"
#include "testutil.h"

START_TEST(tilted_bars_give_their_angle_with_the_right_sign)
{
    pimg_tensor *t = pimg_test_bars(600, 420);
    double deg, conf;
    ck_assert_int_eq(pimg_level_estimate(t, &deg, &conf, NULL), PIMG_OK);
    ck_assert_double_eq_tol(deg, 0.0, 0.2);
    /* Turned clockwise by 8°: levelling turns it back, i.e. -8 clockwise. */
    pimg_tensor *cw = pimg_tensor_rotate(t, 8.0);
    ck_assert_int_eq(pimg_level_estimate(cw, &deg, &conf, NULL), PIMG_OK);
    ck_assert_double_eq_tol(deg, -8.0, 0.5);
    ck_assert(conf > 0.5);
    pimg_tensor *ccw = pimg_tensor_rotate(t, -12.5);
    ck_assert_int_eq(pimg_level_estimate(ccw, &deg, &conf, NULL), PIMG_OK);
    ck_assert_double_eq_tol(deg, 12.5, 0.5);
    pimg_tensor_free(t);
    pimg_tensor_free(cw);
    pimg_tensor_free(ccw);
}
END_TEST

START_TEST(structureless_images_are_left_alone)
{
    pimg_tensor *flat = pimg_tensor_new(300, 200, 3);
    for (int i = 0; i < 300 * 200 * 3; i++)
        flat->data[i] = 0.5f;
    double deg = 99, conf = 99;
    ck_assert_int_eq(pimg_level_estimate(flat, &deg, &conf, NULL), PIMG_OK);
    ck_assert_double_eq(deg, 0.0);
    /* Isotropic noise: every orientation equally likely, no peak worth acting on. */
    pimg_tensor *noise = pimg_tensor_new(300, 200, 3);
    unsigned s = 12345;
    for (int i = 0; i < 300 * 200; i++) {
        s = s * 1103515245u + 12345u;
        float v = (float)((s >> 16) & 0x7fff) / 32767.0f;
        for (int c = 0; c < 3; c++)
            noise->data[i * 3 + c] = v;
    }
    ck_assert_int_eq(pimg_level_estimate(noise, &deg, &conf, NULL), PIMG_OK);
    ck_assert_double_eq(deg, 0.0);
    pimg_tensor_free(flat);
    pimg_tensor_free(noise);
}
END_TEST

START_TEST(decision_needs_a_clear_peak)
{
    pimg_level_params p;
    pimg_level_params_default(&p);
    double h[PIMG_LEVEL_NBINS], deg, conf;
    /* Uniform votes: no tilt. */
    for (int i = 0; i < PIMG_LEVEL_NBINS; i++)
        h[i] = 1.0;
    pimg_level_decide(h, PIMG_LEVEL_NBINS, PIMG_LEVEL_NBINS, &p, &deg, &conf);
    ck_assert_double_eq(deg, 0.0);
    /* A strong peak in the bin of 5.0..5.25°: tilt ~5.1. */
    int b = (45 + 5) * 4;
    h[b] = 400.0;
    pimg_level_decide(h, PIMG_LEVEL_NBINS, PIMG_LEVEL_NBINS + 399, &p, &deg, &conf);
    ck_assert_double_eq_tol(deg, 5.125, 0.2);
    /* The same peak with strong straight edges at exactly 0°: level photo with oblique
     * structure, left alone. */
    h[45 * 4] = 300.0;
    pimg_level_decide(h, PIMG_LEVEL_NBINS, PIMG_LEVEL_NBINS + 699, &p, &deg, &conf);
    ck_assert_double_eq(deg, 0.0);
    h[45 * 4] = 1.0;
    /* The same peak beyond the ±20° range is ignored. */
    h[b] = 1.0;
    h[(45 + 30) * 4] = 400.0;
    pimg_level_decide(h, PIMG_LEVEL_NBINS, PIMG_LEVEL_NBINS + 399, &p, &deg, &conf);
    ck_assert_double_eq(deg, 0.0);
}
END_TEST

START_TEST(inner_rect_matches_the_evaluation_formula)
{
    int w, h;
    pimg_level_inner_rect(1000, 700, 10.0, &w, &h);
    ck_assert_int_eq(w, 918);
    ck_assert_int_eq(h, 548);
    pimg_level_inner_rect(700, 1000, -10.0, &w, &h);
    ck_assert_int_eq(w, 548);
    ck_assert_int_eq(h, 918);
    pimg_level_inner_rect(400, 100, 15.0, &w, &h);
    ck_assert_int_eq(w, 193);
    ck_assert_int_eq(h, 51);
    pimg_level_inner_rect(640, 480, 0.0, &w, &h);
    ck_assert_int_eq(w, 640);
    ck_assert_int_eq(h, 480);
}
END_TEST

START_TEST(apply_turns_at_full_resolution_and_crops)
{
    /* Encode the bars, turned 6° counter-clockwise, as PNG; load; level by +6 (clockwise). */
    pimg_tensor *t = pimg_test_bars(800, 600);
    pimg_tensor *r = pimg_tensor_rotate(t, -6.0);
    unsigned char *px = malloc((size_t)800 * 600 * 3);
    for (int i = 0; i < 800 * 600 * 3; i++)
        px[i] = (unsigned char)lroundf(r->data[i] * 255.0f);
    VipsImage *im = vips_image_new_from_memory(px, (size_t)800 * 600 * 3, 800, 600, 3, VIPS_FORMAT_UCHAR);
    void *png = NULL;
    size_t len = 0;
    ck_assert_int_eq(vips_pngsave_buffer(im, &png, &len, NULL), 0);
    g_object_unref(im);
    pimg_image *img = NULL;
    ck_assert_int_eq(pimg_image_load_buffer(png, len, NULL, &img, NULL), PIMG_OK);
    g_free(png);
    free(px);
    ck_assert_int_eq(pimg_level_apply(img, 6.0, 1, NULL), PIMG_OK);
    int iw, ih;
    pimg_level_inner_rect(800, 600, 6.0, &iw, &ih);
    ck_assert_int_eq(pimg_image_width(img), iw - 2);
    ck_assert_int_eq(pimg_image_height(img), ih - 2);
    /* The result is level: re-estimating finds no tilt left. */
    pimg_tensor *back = NULL;
    void *jpg = NULL;
    size_t jl = 0;
    ck_assert_int_eq(pimg_image_encode_jpeg(img, NULL, &jpg, &jl, NULL), PIMG_OK);
    pimg_image *img2 = NULL;
    ck_assert_int_eq(pimg_image_load_buffer(jpg, jl, NULL, &img2, NULL), PIMG_OK);
    ck_assert_int_eq(pimg_image_tensor(img2, 1024, &back, NULL), PIMG_OK);
    double deg, conf;
    ck_assert_int_eq(pimg_level_estimate(back, &deg, &conf, NULL), PIMG_OK);
    ck_assert_double_eq_tol(deg, 0.0, 0.5);
    /* Without crop the canvas grows and the corners are filled. */
    pimg_image *img3 = NULL;
    ck_assert_int_eq(pimg_image_load_buffer(jpg, jl, NULL, &img3, NULL), PIMG_OK);
    int w0 = pimg_image_width(img3);
    ck_assert_int_eq(pimg_level_apply(img3, 10.0, 0, NULL), PIMG_OK);
    ck_assert(pimg_image_width(img3) > w0);
    ck_assert_int_ne(pimg_level_apply(img3, 90.0, 1, NULL), PIMG_OK);
    free(jpg);
    pimg_tensor_free(back);
    pimg_image_free(img);
    pimg_image_free(img2);
    pimg_image_free(img3);
    pimg_tensor_free(t);
    pimg_tensor_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("level");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tilted_bars_give_their_angle_with_the_right_sign);
    tcase_add_test(tc, structureless_images_are_left_alone);
    tcase_add_test(tc, decision_needs_a_clear_peak);
    tcase_add_test(tc, inner_rect_matches_the_evaluation_formula);
    tcase_add_test(tc, apply_turns_at_full_resolution_and_crops);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 1);
}
