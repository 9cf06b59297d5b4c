/* testutil.c — shared helpers for the unit-test programs (linked into each of them). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "pimg.h"

int pimg_test_run(Suite *s, int with_lib)
{
    pimg_error err = {0};
    if (with_lib && pimg_init("pimg-test", 1, &err)) {
        fprintf(stderr, "pimg_init: %s\n", err.msg);
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (with_lib)
        pimg_shutdown();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void pimg_test_mkdtemp(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/pimg-%s-XXXXXX", tag);
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

void pimg_test_rmtree(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

double pimg_test_urand(unsigned long long *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*state >> 11) / 9007199254740992.0;
}

void pimg_test_project(const double H[9], double x, double y, double *u, double *v)
{
    double w = H[6] * x + H[7] * y + H[8];
    *u = (H[0] * x + H[1] * y + H[2]) / w;
    *v = (H[3] * x + H[4] * y + H[5]) / w;
}

double pimg_test_corner_err(const double H[9], const double G[9], double w, double h)
{
    const double cx[4] = {0, w, w, 0}, cy[4] = {0, 0, h, h};
    double e = 0;
    for (int i = 0; i < 4; i++) {
        double a, b, c, d;
        pimg_test_project(H, cx[i], cy[i], &a, &b);
        pimg_test_project(G, cx[i], cy[i], &c, &d);
        e += hypot(a - c, b - d);
    }
    return e / 4;
}

pimg_tensor *pimg_test_bars(int w, int h)
{
    pimg_tensor *t = pimg_tensor_new(w, h, 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int bar = (y % 60) < 18 && x > w / 10 && x < w - w / 10;
            int post = (x % 150) < 10;
            float v = bar || post ? 0.15f : 0.95f;
            for (int c = 0; c < 3; c++)
                pimg_tensor_at(t, x, y)[c] = v;
        }
    return t;
}
