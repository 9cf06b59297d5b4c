/* homography_test.c — unit tests for lib/homography: DLT on exact correspondences, RANSAC with
 * half the matches wrong, Levenberg-Marquardt refinement, inversion and the sanity checks. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "homography.h"
#include "testutil.h"

/* A realistic view change of an 800 x 600 image: rotation, scale, shear, perspective. */
static const double H_TRUE[9] = {0.92, -0.31, 60.0, 0.27, 1.05, -40.0, 1.5e-4, -2.0e-4, 1.0};

static double gauss(unsigned long long *s)
{
    double u = pimg_test_urand(s) + 1e-12, v = pimg_test_urand(s);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

START_TEST(dlt_recovers_exact_homography)
{
    unsigned long long rs = 1;
    double src[2 * 30], dst[2 * 30], H[9];
    for (int i = 0; i < 30; i++) {
        src[2 * i] = pimg_test_urand(&rs) * 800;
        src[2 * i + 1] = pimg_test_urand(&rs) * 600;
        pimg_test_project(H_TRUE, src[2 * i], src[2 * i + 1], &dst[2 * i], &dst[2 * i + 1]);
    }
    /* Minimal case (4 points) and over-determined case. */
    ck_assert_int_eq(pimg_homography_dlt(src, dst, 4, H), PIMG_OK);
    ck_assert_double_lt(pimg_test_corner_err(H, H_TRUE, 800, 600), 1e-6);
    ck_assert_int_eq(pimg_homography_dlt(src, dst, 30, H), PIMG_OK);
    ck_assert_double_lt(pimg_test_corner_err(H, H_TRUE, 800, 600), 1e-6);
    for (int i = 0; i < 9; i++)
        ck_assert_double_eq_tol(H[i], H_TRUE[i], 1e-7 * (fabs(H_TRUE[i]) + 1e-3));
    /* Pixel-scale coordinates are normalised internally: the same works in the 10^4 range. */
    for (int i = 0; i < 60; i++)
        src[i] *= 20, dst[i] *= 20;
    ck_assert_int_eq(pimg_homography_dlt(src, dst, 30, H), PIMG_OK);
    for (int i = 0; i < 30; i++)
        ck_assert_double_lt(pimg_homography_err2(H, src[2 * i], src[2 * i + 1], dst[2 * i], dst[2 * i + 1]), 1e-8);
}
END_TEST

START_TEST(dlt_rejects_degenerate_input)
{
    double src[8] = {0, 0, 1, 1, 2, 2, 3, 3}; /* collinear */
    double dst[8] = {0, 0, 1, 1, 2, 2, 3, 3};
    double H[9];
    ck_assert_int_eq(pimg_homography_dlt(src, dst, 3, H), PIMG_ERR_BAD_INPUT);
    ck_assert_int_ne(pimg_homography_dlt(src, dst, 4, H), PIMG_OK);
}
END_TEST

START_TEST(ransac_with_half_outliers_recovers_h)
{
    enum { N = 400 };
    unsigned long long rs = 42;
    double *src = malloc(sizeof(double) * 2 * N), *dst = malloc(sizeof(double) * 2 * N);
    unsigned char *mask = malloc(N);
    for (int i = 0; i < N; i++) {
        src[2 * i] = pimg_test_urand(&rs) * 800;
        src[2 * i + 1] = pimg_test_urand(&rs) * 600;
        if (i % 2 == 0) { /* inlier with 0.5 px localisation noise */
            pimg_test_project(H_TRUE, src[2 * i], src[2 * i + 1], &dst[2 * i], &dst[2 * i + 1]);
            dst[2 * i] += 0.5 * gauss(&rs);
            dst[2 * i + 1] += 0.5 * gauss(&rs);
        } else { /* outlier: anywhere in the reference */
            dst[2 * i] = pimg_test_urand(&rs) * 800;
            dst[2 * i + 1] = pimg_test_urand(&rs) * 600;
        }
    }
    pimg_ransac_opts o = {.thresh = 2.0, .confidence = 0.999, .max_iter = 5000, .min_iter = 50, .seed = 7};
    double H[9];
    int ninl = 0;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_homography_ransac(src, dst, N, &o, H, mask, &ninl, &err), PIMG_OK);
    /* Inliers at 2 px: almost all of the 200 true ones, at most a couple of lucky outliers. */
    ck_assert_int_ge(ninl, 190);
    ck_assert_int_le(ninl, 205);
    int wrong = 0;
    for (int i = 1; i < N; i += 2)
        wrong += mask[i];
    ck_assert_int_le(wrong, 5);
    /* 200 points with 0.5 px noise pin the corners far below a pixel. */
    ck_assert_double_lt(pimg_test_corner_err(H, H_TRUE, 800, 600), 0.5);
    ck_assert(pimg_homography_plausible(H, 800, 600, 16.0));
    free(src);
    free(dst);
    free(mask);
}
END_TEST

START_TEST(ransac_fails_cleanly_on_pure_noise)
{
    enum { N = 60 };
    unsigned long long rs = 3;
    double src[2 * N], dst[2 * N], H[9];
    for (int i = 0; i < 2 * N; i++) {
        src[i] = pimg_test_urand(&rs) * 800;
        dst[i] = pimg_test_urand(&rs) * 800;
    }
    pimg_ransac_opts o = {.thresh = 1.0, .confidence = 0.999, .max_iter = 2000, .min_iter = 50, .seed = 1};
    int ninl = 0;
    pimg_status st = pimg_homography_ransac(src, dst, N, &o, H, NULL, &ninl, NULL);
    /* Either no model, or one that explains only a handful of random points. */
    if (st == PIMG_OK)
        ck_assert_int_lt(ninl, 12);
    ck_assert_int_eq(pimg_homography_ransac(src, dst, 3, &o, H, NULL, &ninl, NULL), PIMG_ERR_BAD_INPUT);
}
END_TEST

START_TEST(refine_reduces_geometric_error)
{
    unsigned long long rs = 9;
    double src[2 * 50], dst[2 * 50];
    for (int i = 0; i < 50; i++) {
        src[2 * i] = pimg_test_urand(&rs) * 800;
        src[2 * i + 1] = pimg_test_urand(&rs) * 600;
        pimg_test_project(H_TRUE, src[2 * i], src[2 * i + 1], &dst[2 * i], &dst[2 * i + 1]);
    }
    double H[9];
    for (int i = 0; i < 9; i++)
        H[i] = H_TRUE[i];
    H[2] += 3.0; /* 3 px off */
    H[0] *= 1.01;
    ck_assert_double_gt(pimg_test_corner_err(H, H_TRUE, 800, 600), 2.0);
    pimg_homography_refine(src, dst, 50, H, 30);
    ck_assert_double_lt(pimg_test_corner_err(H, H_TRUE, 800, 600), 1e-4);
}
END_TEST

START_TEST(invert_and_plausibility)
{
    double Hi[9], back[9];
    ck_assert_int_eq(pimg_homography_invert(H_TRUE, Hi), PIMG_OK);
    ck_assert_int_eq(pimg_homography_invert(Hi, back), PIMG_OK);
    for (int i = 0; i < 9; i++)
        ck_assert_double_eq_tol(back[i], H_TRUE[i], 1e-9 * (fabs(H_TRUE[i]) + 1e-3));
    const double ident[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    const double mirror[9] = {-1, 0, 800, 0, 1, 0, 0, 0, 1};
    const double tiny[9] = {0.01, 0, 0, 0, 0.01, 0, 0, 0, 1};
    /* Sends the right half of the image through infinity (w changes sign). */
    const double behind[9] = {1, 0, 0, 0, 1, 0, -0.002, 0, 1};
    const double singular[9] = {1, 2, 3, 2, 4, 6, 0, 0, 0};
    ck_assert(pimg_homography_plausible(ident, 800, 600, 16.0));
    ck_assert(pimg_homography_plausible(H_TRUE, 800, 600, 16.0));
    ck_assert(!pimg_homography_plausible(mirror, 800, 600, 16.0));
    ck_assert(!pimg_homography_plausible(tiny, 800, 600, 16.0));
    ck_assert(!pimg_homography_plausible(behind, 800, 600, 16.0));
    ck_assert_int_eq(pimg_homography_invert(singular, Hi), PIMG_ERR_BAD_INPUT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("homography");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, dlt_recovers_exact_homography);
    tcase_add_test(tc, dlt_rejects_degenerate_input);
    tcase_add_test(tc, ransac_with_half_outliers_recovers_h);
    tcase_add_test(tc, ransac_fails_cleanly_on_pure_noise);
    tcase_add_test(tc, refine_reduces_geometric_error);
    tcase_add_test(tc, invert_and_plausibility);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
