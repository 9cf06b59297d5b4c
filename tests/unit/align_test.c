/* align_test.c — unit tests for lib/align: SIFT + RANSAC recovers a known homography between
 * synthetic textured tensors (also across different analysis scales), refuses a textureless
 * pair, and the full-resolution warp moves pixels where H says. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#include "align.h"
#include "homography.h"
#include "image.h"
#include "image_vips.h"
#include "photometric.h"
#include "pimg.h"
#include "testutil.h"

/* A grey w x h "photo": random overlapping ellipses and rectangles of random brightness on a
 * mid-grey ground, softened by a small box blur — corners and blobs at many scales. */
static pimg_tensor *texture(int w, int h, unsigned long long seed)
{
    pimg_tensor *t = pimg_tensor_new(w, h, 1);
    for (int i = 0; i < w * h; i++)
        t->data[i] = 0.5f;
    for (int k = 0; k < 260; k++) {
        double cx = pimg_test_urand(&seed) * w, cy = pimg_test_urand(&seed) * h;
        double rx = 3 + pimg_test_urand(&seed) * w / 10, ry = 3 + pimg_test_urand(&seed) * h / 10;
        float v = (float)pimg_test_urand(&seed);
        int rect = pimg_test_urand(&seed) < 0.5;
        for (int y = (int)fmax(0, cy - ry); y < (int)fmin(h, cy + ry); y++)
            for (int x = (int)fmax(0, cx - rx); x < (int)fmin(w, cx + rx); x++) {
                double dx = (x - cx) / rx, dy = (y - cy) / ry;
                if (rect || dx * dx + dy * dy <= 1)
                    *pimg_tensor_at(t, x, y) = v;
            }
    }
    pimg_tensor *b = pimg_tensor_new(w, h, 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float s = 0;
            int n = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                    if (x + dx >= 0 && x + dx < w && y + dy >= 0 && y + dy < h) {
                        s += *pimg_tensor_at(t, x + dx, y + dy);
                        n++;
                    }
            *pimg_tensor_at(b, x, y) = s / n;
        }
    pimg_tensor_free(t);
    return b;
}

/* out(p) = src(H p) with bilinear sampling in the pixel-area convention; 0 outside. */
static pimg_tensor *warp_tensor(const pimg_tensor *src, const double H[9], int w, int h)
{
    pimg_tensor *o = pimg_tensor_new(w, h, 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double u, v;
            pimg_test_project(H, x + 0.5, y + 0.5, &u, &v);
            u -= 0.5;
            v -= 0.5;
            int x0 = (int)floor(u), y0 = (int)floor(v);
            if (x0 < 0 || y0 < 0 || x0 + 1 >= src->w || y0 + 1 >= src->h)
                continue;
            double fx = u - x0, fy = v - y0;
            double a = *pimg_tensor_at(src, x0, y0) * (1 - fx) + *pimg_tensor_at(src, x0 + 1, y0) * fx;
            double b = *pimg_tensor_at(src, x0, y0 + 1) * (1 - fx) + *pimg_tensor_at(src, x0 + 1, y0 + 1) * fx;
            *pimg_tensor_at(o, x, y) = (float)(a * (1 - fy) + b * fy);
        }
    return o;
}

/* Maps the warped upload (IN) to the reference: rotation ~17 degrees, scale 0.9, perspective. */
static const double H_IN_TO_REF[9] = {0.86, -0.26, 70.0, 0.27, 0.84, -30.0, 1.2e-4, -0.9e-4, 1.0};

START_TEST(estimate_recovers_synthetic_homography)
{
    pimg_tensor *ref = texture(480, 360, 11);
    pimg_tensor *in = warp_tensor(ref, H_IN_TO_REF, 480, 360);
    pimg_align_result r;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_align_estimate(in, 1.0, ref, 1.0, &r, &err), PIMG_OK);
    ck_assert_int_eq(r.found, 1);
    ck_assert_int_ge(r.inliers, 30);
    ck_assert_int_ge(r.matches, r.inliers);
    ck_assert_double_lt(pimg_test_corner_err(r.H, H_IN_TO_REF, 480, 360), 1.0);

    /* Scale-aware: the upload analysed at half size (scale 2 = full-res pixels per tensor
     * pixel) must still give H in full-resolution coordinates. */
    pimg_tensor *half = pimg_tensor_resize(in, 240, 180);
    ck_assert_int_eq(pimg_align_estimate(half, 2.0, ref, 1.0, &r, &err), PIMG_OK);
    ck_assert_int_eq(r.found, 1);
    ck_assert_double_lt(pimg_test_corner_err(r.H, H_IN_TO_REF, 480, 360), 2.0);
    pimg_tensor_free(half);
    pimg_tensor_free(in);
    pimg_tensor_free(ref);
}
END_TEST

START_TEST(photometric_refine_pulls_h_to_subpixel)
{
    pimg_tensor *ref = texture(400, 300, 5);
    pimg_tensor *in = warp_tensor(ref, H_IN_TO_REF, 400, 300);
    double H[9];
    memcpy(H, H_IN_TO_REF, sizeof H);
    H[2] += 2.0; /* a keypoint fit 2-3 px off at the corners */
    H[4] *= 1.004;
    ck_assert_double_gt(pimg_test_corner_err(H, H_IN_TO_REF, 400, 300), 1.5);
    pimg_photometric_stats st;
    ck_assert_int_eq(pimg_photometric_refine(in, ref, H, &st), PIMG_OK);
    ck_assert_int_gt(st.samples, 1000);
    ck_assert_int_gt(st.iterations, 0);
    ck_assert_double_lt(pimg_test_corner_err(H, H_IN_TO_REF, 400, 300), 0.2);
    /* Nothing to lock on: H stays as given. */
    pimg_tensor *flat = pimg_tensor_new(400, 300, 1);
    double H2[9];
    memcpy(H2, H, sizeof H2);
    ck_assert_int_eq(pimg_photometric_refine(flat, flat, H2, &st), PIMG_OK);
    for (int i = 0; i < 9; i++)
        ck_assert_double_eq(H2[i], H[i]);
    pimg_tensor_free(flat);
    pimg_tensor_free(in);
    pimg_tensor_free(ref);
}
END_TEST

START_TEST(estimate_reports_not_found_without_texture)
{
    pimg_tensor *a = pimg_tensor_new(200, 150, 3), *b = pimg_tensor_new(200, 150, 3);
    for (int i = 0; i < 200 * 150 * 3; i++)
        a->data[i] = b->data[i] = 0.8f;
    pimg_align_result r;
    ck_assert_int_eq(pimg_align_estimate(a, 1.0, b, 1.0, &r, NULL), PIMG_OK);
    ck_assert_int_eq(r.found, 0);
    ck_assert_int_eq(pimg_align_estimate(NULL, 1.0, b, 1.0, &r, NULL), PIMG_ERR_BAD_INPUT);
    pimg_tensor_free(a);
    pimg_tensor_free(b);
}
END_TEST

START_TEST(warp_moves_pixels_by_h)
{
    ck_assert_int_eq(pimg_init(NULL, 1, NULL), PIMG_OK);
    /* A 64 x 48 PNG with one bright pixel at (10, 20) on grey. */
    enum { W = 64, H = 48 };
    unsigned char px[W * H * 3];
    memset(px, 100, sizeof px);
    for (int c = 0; c < 3; c++)
        px[(20 * W + 10) * 3 + c] = 250;
    VipsImage *v = vips_image_new_from_memory_copy(px, sizeof px, W, H, 3, VIPS_FORMAT_UCHAR);
    void *png = NULL;
    size_t len = 0;
    ck_assert_int_eq(vips_pngsave_buffer(v, &png, &len, NULL), 0);
    g_object_unref(v);
    pimg_image *img = NULL;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_image_load_buffer(png, len, NULL, &img, &err), PIMG_OK);
    g_free(png);
    /* Translation by (+7, +3) into a 80 x 60 frame: the pixel must land on (17, 23). */
    const double T[9] = {1, 0, 7, 0, 1, 3, 0, 0, 1};
    ck_assert_int_eq(pimg_align_warp(img, T, 80, 60, &err), PIMG_OK);
    ck_assert_int_eq(pimg_image_width(img), 80);
    ck_assert_int_eq(pimg_image_height(img), 60);
    VipsImage *out = NULL;
    ck_assert_int_eq(pimg_image_vips(img, &out, &err), PIMG_OK);
    size_t n = 0;
    unsigned char *o = vips_image_write_to_memory(out, &n);
    ck_assert_uint_eq(n, 80 * 60 * 3);
    ck_assert_int_ge(o[(23 * 80 + 17) * 3], 240);
    ck_assert_int_le(o[(23 * 80 + 16) * 3], 110);
    ck_assert_int_eq(o[(30 * 80 + 30) * 3], 100);
    /* Beyond the source (x >= 71) the frame is filled white. */
    ck_assert_int_eq(o[(30 * 80 + 78) * 3], 255);
    g_free(o);
    /* A singular homography is refused and leaves the image alone. */
    const double S[9] = {1, 2, 0, 2, 4, 0, 0, 0, 0};
    ck_assert_int_eq(pimg_align_warp(img, S, 80, 60, &err), PIMG_ERR_BAD_INPUT);
    ck_assert_int_eq(pimg_image_width(img), 80);
    pimg_image_free(img);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("align");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, estimate_recovers_synthetic_homography);
    tcase_add_test(tc, photometric_refine_pulls_h_to_subpixel);
    tcase_add_test(tc, estimate_reports_not_found_without_texture);
    tcase_add_test(tc, warp_moves_pixels_by_h);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
