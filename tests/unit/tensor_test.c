/* tensor_test.c — unit tests for lib/tensor: quarter turns, small rotations, resize, grey. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "tensor.h"
#include "testutil.h"

/* A 3x2 single-channel tensor holding 0..5 row by row. */
static pimg_tensor *ramp(void)
{
    pimg_tensor *t = pimg_tensor_new(3, 2, 1);
    for (int i = 0; i < 6; i++)
        t->data[i] = (float)i;
    return t;
}

START_TEST(rot90_moves_pixels_clockwise)
{
    pimg_tensor *t = ramp();
    pimg_tensor *r = pimg_tensor_rot90(t, 90);
    ck_assert_int_eq(r->w, 2);
    ck_assert_int_eq(r->h, 3);
    /* Clockwise: the bottom-left source pixel (value 3) becomes the top-left. */
    ck_assert_float_eq(*pimg_tensor_at(r, 0, 0), 3.0f);
    ck_assert_float_eq(*pimg_tensor_at(r, 1, 0), 0.0f);
    ck_assert_float_eq(*pimg_tensor_at(r, 1, 2), 2.0f);
    pimg_tensor *back = pimg_tensor_rot90(r, 270);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(back->data[i], t->data[i]);
    pimg_tensor *half = pimg_tensor_rot90(t, 180);
    ck_assert_float_eq(*pimg_tensor_at(half, 0, 0), 5.0f);
    ck_assert_ptr_null(pimg_tensor_rot90(t, 45));
    pimg_tensor_free(t);
    pimg_tensor_free(r);
    pimg_tensor_free(back);
    pimg_tensor_free(half);
}
END_TEST

START_TEST(rotate_zero_is_identity_and_small_angle_moves_edge)
{
    pimg_tensor *t = pimg_tensor_new(21, 21, 1);
    /* a horizontal line through the centre */
    for (int x = 0; x < 21; x++)
        *pimg_tensor_at(t, x, 10) = 1.0f;
    pimg_tensor *same = pimg_tensor_rotate(t, 0.0);
    for (int i = 0; i < 21 * 21; i++)
        ck_assert_float_eq_tol(same->data[i], t->data[i], 1e-6);
    pimg_tensor *r = pimg_tensor_rotate(t, 90.0);
    /* turned a quarter: the line is now vertical through the centre */
    ck_assert_float_eq_tol(*pimg_tensor_at(r, 10, 2), 1.0f, 1e-4);
    ck_assert_float_eq_tol(*pimg_tensor_at(r, 2, 10), 0.0f, 1e-4);
    pimg_tensor_free(t);
    pimg_tensor_free(same);
    pimg_tensor_free(r);
}
END_TEST

START_TEST(resize_keeps_mean_and_grey_weights)
{
    pimg_tensor *t = pimg_tensor_new(64, 32, 3);
    for (int i = 0; i < 64 * 32 * 3; i++)
        t->data[i] = (float)((i * 37) % 101) / 100.0f;
    pimg_tensor *s = pimg_tensor_resize(t, 16, 8);
    double m1 = 0, m2 = 0;
    for (int i = 0; i < 64 * 32 * 3; i++)
        m1 += t->data[i];
    for (int i = 0; i < 16 * 8 * 3; i++)
        m2 += s->data[i];
    ck_assert_double_eq_tol(m1 / (64 * 32 * 3), m2 / (16 * 8 * 3), 1e-3);
    pimg_tensor *g = pimg_tensor_grey(t);
    const float *p = t->data;
    ck_assert_float_eq_tol(g->data[0], 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2], 1e-6);
    ck_assert_ptr_null(pimg_tensor_new(0, 5, 1));
    pimg_tensor_free(t);
    pimg_tensor_free(s);
    pimg_tensor_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, rot90_moves_pixels_clockwise);
    tcase_add_test(tc, rotate_zero_is_identity_and_small_angle_moves_edge);
    tcase_add_test(tc, resize_keeps_mean_and_grey_weights);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
