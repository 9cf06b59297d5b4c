/* grabcut_test.c — lib/grabcut on synthetic photos whose foreground is known: from a rough,
 * too-large first labelling it recovers a two-coloured object on a noisy two-coloured
 * background, fixed pixels stay background, and a labelling with too few pixels of one kind
 * is returned as it came. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grabcut.h"
#include "testutil.h"

enum { W = 160, H = 120 };

/* An object (an ellipse, red with a dark-blue band) on a background of vertical green and
 * grey stripes, with noise; truth[i] = 1 on the object. */
static pimg_tensor *scene(unsigned char *truth)
{
    pimg_tensor *t = pimg_tensor_new(W, H, 3);
    unsigned long long rng = 5;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float *p = pimg_tensor_at(t, x, y);
            int in = hypot((x - 80) / 45.0, (y - 60) / 32.0) < 1;
            truth[y * W + x] = (unsigned char)in;
            float c[3];
            if (in && y > 52 && y < 64) {
                c[0] = 0.10f, c[1] = 0.12f, c[2] = 0.45f;
            } else if (in) {
                c[0] = 0.80f, c[1] = 0.15f, c[2] = 0.12f;
            } else if ((x / 12) % 2) {
                c[0] = 0.25f, c[1] = 0.55f, c[2] = 0.20f;
            } else {
                c[0] = 0.60f, c[1] = 0.60f, c[2] = 0.58f;
            }
            for (int k = 0; k < 3; k++)
                p[k] = c[k] + 0.06f * (float)(pimg_test_urand(&rng) - 0.5);
        }
    return t;
}

static double iou(const unsigned char *a, const unsigned char *b)
{
    long in = 0, un = 0;
    for (int i = 0; i < W * H; i++) {
        in += a[i] && b[i];
        un += a[i] || b[i];
    }
    return un ? (double)in / un : 0;
}

START_TEST(recovers_the_object_from_a_rough_start)
{
    unsigned char truth[W * H], label[W * H], fixed[W * H], start[W * H];
    float prob[W * H];
    pimg_tensor *t = scene(truth);
    /* first labelling: the object's box grown by 8 px (a lot of background inside), and only
     * the outer 6 px frame fixed as background */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int i = y * W + x;
            start[i] = x >= 35 - 8 && x < 125 + 8 && y >= 28 - 8 && y < 92 + 8;
            prob[i] = start[i] ? 0.8f : 0.1f;
            fixed[i] = x < 6 || y < 6 || x >= W - 6 || y >= H - 6;
        }
    ck_assert_int_eq(pimg_grabcut_segment(t, fixed, prob, &pimg_grabcut_defaults, label, NULL), PIMG_OK);
    double before = iou(start, truth), after = iou(label, truth);
    ck_assert_msg(after > 0.95, "IoU %.3f (start %.3f)", after, before);
    ck_assert(before < 0.75);
    for (int i = 0; i < W * H; i++)
        if (fixed[i])
            ck_assert_int_eq(label[i], 0);
    /* the dark band, a colour found nowhere in the background, is kept whole */
    long band = 0, band_in = 0;
    for (int y = 54; y < 63; y++)
        for (int x = 50; x < 110; x++)
            if (truth[y * W + x]) {
                band++;
                band_in += label[y * W + x];
            }
    ck_assert_int_ge(band_in, band * 98 / 100);
    pimg_tensor_free(t);
}
END_TEST

START_TEST(too_few_pixels_of_a_kind_returns_the_start)
{
    unsigned char truth[W * H], label[W * H];
    float prob[W * H];
    pimg_tensor *t = scene(truth);
    for (int i = 0; i < W * H; i++)
        prob[i] = i < 10 ? 0.9f : 0.1f; /* 10 foreground pixels: no mixture can be fitted */
    ck_assert_int_eq(pimg_grabcut_segment(t, NULL, prob, &pimg_grabcut_defaults, label, NULL), PIMG_OK);
    for (int i = 0; i < W * H; i++)
        ck_assert_int_eq(label[i], i < 10);
    pimg_tensor *g = pimg_tensor_new(W, H, 1);
    ck_assert_int_eq(pimg_grabcut_segment(g, NULL, prob, &pimg_grabcut_defaults, label, NULL), PIMG_ERR_BAD_INPUT);
    pimg_tensor_free(g);
    pimg_tensor_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("grabcut");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, recovers_the_object_from_a_rough_start);
    tcase_add_test(tc, too_few_pixels_of_a_kind_returns_the_start);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
