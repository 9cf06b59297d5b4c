/* shadow_test.c — lib/surface (backdrop colour surface) and lib/shadow (cast-shadow removal
 * from the product mask) on synthetic photos whose backdrop, product and shadow are known. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "shadow.h"
#include "surface.h"
#include "testutil.h"

#define W 320
#define H 240

/* A light backdrop graded left to right and top to bottom, with a little noise. */
static void backdrop(pimg_tensor *t, unsigned long long *rng)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double u = (double)x / W - 0.5, v = (double)y / H - 0.5;
            double base[3] = {0.86 + 0.05 * u - 0.04 * v * v, 0.84 + 0.05 * u, 0.80 + 0.03 * v};
            float *p = pimg_tensor_at(t, x, y);
            for (int c = 0; c < 3; c++)
                p[c] = (float)(base[c] + 0.006 * (pimg_test_urand(rng) - 0.5));
        }
}

/* Soft shadow factor at (x, y): 1 - depth inside the rectangle, blurred edges (width soft). */
static double shade(int x, int y, const int r[4], double depth, double soft)
{
    double fx = fmin(1, fmax(0, fmin(x - r[0], r[2] - x) / soft + 0.5));
    double fy = fmin(1, fmax(0, fmin(y - r[1], r[3] - y) / soft + 0.5));
    return 1 - depth * fx * fy;
}

static int inside(int x, int y, const int r[4]) { return x >= r[0] && x < r[2] && y >= r[1] && y < r[3]; }

START_TEST(surface_fit_recovers_backdrop_despite_an_object)
{
    unsigned long long rng = 7;
    pimg_tensor *t = pimg_tensor_new(W, H, 3);
    backdrop(t, &rng);
    /* a dark object on a quarter of the frame: the robust refits must ignore it */
    for (int y = 60; y < 180; y++)
        for (int x = 80; x < 200; x++)
            for (int c = 0; c < 3; c++)
                pimg_tensor_at(t, x, y)[c] = 0.1f;
    unsigned char *use = malloc(W * H);
    for (int i = 0; i < W * H; i++)
        use[i] = 1;
    double coef[3][6], sigma = -1, rgb[3];
    ck_assert_int_eq(pimg_surface_fit(t, use, 2, coef, &sigma), 0);
    ck_assert_double_lt(sigma, 0.01);
    pimg_surface_at(coef, W, H, 140, 120, rgb); /* under the object: the backdrop's colour */
    ck_assert_double_lt(fabs(rgb[0] - 0.86), 0.01);
    ck_assert_double_lt(fabs(rgb[2] - 0.80), 0.01);
    pimg_surface_at(coef, W, H, W - 1, 0, rgb);
    ck_assert_double_lt(fabs(rgb[1] - (0.84 + 0.05 * ((double)(W - 1) / W - 0.5))), 0.01);
    /* too few samples: refused */
    for (int i = 0; i < W * H; i++)
        use[i] = i < 10;
    ck_assert_int_eq(pimg_surface_fit(t, use, 1, coef, &sigma), -1);
    free(use);
    pimg_tensor_free(t);
}
END_TEST

START_TEST(cast_shadow_leaves_the_mask_and_the_product_stays)
{
    unsigned long long rng = 11;
    pimg_tensor *t = pimg_tensor_new(W, H, 3), *m = pimg_tensor_new(W, H, 1);
    backdrop(t, &rng);
    const int prod[4] = {100, 60, 190, 170}, shad[4] = {115, 75, 225, 200};
    /* a soft shadow offset down-right, 45% deep, then a textured red product over it */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double k = shade(x, y, shad, 0.45, 14);
            float *p = pimg_tensor_at(t, x, y);
            for (int c = 0; c < 3; c++)
                p[c] = (float)(p[c] * k);
            if (inside(x, y, prod)) {
                double tex = 0.08 * sin(x * 0.7) * cos(y * 0.5);
                p[0] = (float)(0.70 + tex);
                p[1] = (float)(0.22 + tex);
                p[2] = (float)(0.18 + tex);
            }
            /* the colour-model mask holds product and shadow */
            m->data[y * W + x] = inside(x, y, prod) || k < 0.985 ? 1.0f : 0.0f;
        }
    double share = -1;
    ck_assert_int_eq(pimg_shadow_remove(t, m, &share, NULL), PIMG_OK);
    long sh = 0, shc = 0, pr = 0, prk = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int i = y * W + x;
            if (inside(x, y, prod)) {
                pr++;
                prk += m->data[i] >= 0.5f;
            } else if (shade(x, y, shad, 0.45, 14) < 0.9) {
                sh++;
                shc += m->data[i] < 0.5f;
            }
        }
    ck_assert_msg(prk == pr, "product pixels kept: %ld of %ld", prk, pr);
    ck_assert_msg(shc >= 0.97 * sh, "shadow pixels cleared: %ld of %ld", shc, sh);
    ck_assert_double_gt(share, 0.2);
    pimg_tensor_free(t);
    pimg_tensor_free(m);
}
END_TEST

START_TEST(grey_product_with_its_own_outline_is_not_a_shadow)
{
    /* A product of exactly the backdrop's hue, 40% darker (what a shadow looks like pixel by
     * pixel) but with a sharp outline and no shadow: nothing may be taken from it. */
    unsigned long long rng = 13;
    pimg_tensor *t = pimg_tensor_new(W, H, 3), *m = pimg_tensor_new(W, H, 1);
    backdrop(t, &rng);
    const int prod[4] = {90, 50, 230, 190};
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            if (inside(x, y, prod)) {
                float *p = pimg_tensor_at(t, x, y);
                for (int c = 0; c < 3; c++)
                    p[c] *= 0.6f;
            }
            m->data[y * W + x] = inside(x, y, prod) ? 1.0f : 0.0f;
        }
    double share = -1;
    ck_assert_int_eq(pimg_shadow_remove(t, m, &share, NULL), PIMG_OK);
    for (int i = 0; i < W * H; i++)
        ck_assert(m->data[i] == (inside(i % W, i / W, prod) ? 1.0f : 0.0f));
    ck_assert_double_eq(share, 0);
    pimg_tensor_free(t);
    pimg_tensor_free(m);
}
END_TEST

START_TEST(busy_backdrop_leaves_mask_alone_and_bad_sizes_are_refused)
{
    unsigned long long rng = 17;
    pimg_tensor *t = pimg_tensor_new(W, H, 3), *m = pimg_tensor_new(W, H, 1);
    for (int i = 0; i < W * H * 3; i++)
        t->data[i] = (float)pimg_test_urand(&rng); /* no smooth backdrop to speak of */
    for (int i = 0; i < W * H; i++)
        m->data[i] = (i % W > 100 && i % W < 200) ? 1.0f : 0.0f;
    pimg_tensor *before = pimg_tensor_copy(m);
    double share = -1;
    ck_assert_int_eq(pimg_shadow_remove(t, m, &share, NULL), PIMG_OK);
    for (int i = 0; i < W * H; i++)
        ck_assert(m->data[i] == before->data[i]);
    ck_assert_double_eq(share, 0);
    pimg_tensor *small = pimg_tensor_new(W / 2, H / 2, 1);
    pimg_error err = {0};
    ck_assert_int_eq(pimg_shadow_remove(t, small, NULL, &err), PIMG_ERR_BAD_INPUT);
    ck_assert_str_ne(err.msg, "");
    pimg_tensor_free(small);
    pimg_tensor_free(before);
    pimg_tensor_free(t);
    pimg_tensor_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shadow");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, surface_fit_recovers_backdrop_despite_an_object);
    tcase_add_test(tc, cast_shadow_leaves_the_mask_and_the_product_stays);
    tcase_add_test(tc, grey_product_with_its_own_outline_is_not_a_shadow);
    tcase_add_test(tc, busy_backdrop_leaves_mask_alone_and_bad_sizes_are_refused);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
