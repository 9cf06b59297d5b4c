/* cli_align_test.c — the `pimg align IN REF OUT` contract, run against the real binary
 * ($PIMG_BIN, set by `make test`): JSON with a 9-number homography that maps IN pixels to REF
 * pixels, OUT written in REF's size; "no homography" is exit 0 with null and no OUT;
 * an unreadable image is exit 2. Fixture images are generated into a temporary folder. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <vips/vips.h>

#include "testutil.h"

static char dir[64];

static double urand(unsigned long long *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

/* REF: 360 x 280 random rectangles; IN: REF seen through G (IN pixel p shows REF at G p). */
static const double G[9] = {0.9, -0.2, 40, 0.22, 0.93, -10, 1e-4, -5e-5, 1};

static void write_pair(const char *in_path, const char *ref_path)
{
    enum { W = 360, H = 280 };
    static unsigned char ref[W * H], in[W * H];
    unsigned long long s = 17;
    memset(ref, 128, sizeof ref);
    for (int k = 0; k < 220; k++) {
        int x0 = (int)(urand(&s) * W), y0 = (int)(urand(&s) * H);
        int x1 = x0 + 4 + (int)(urand(&s) * 40), y1 = y0 + 4 + (int)(urand(&s) * 40);
        unsigned char v = (unsigned char)(urand(&s) * 255);
        for (int y = y0; y < y1 && y < H; y++)
            for (int x = x0; x < x1 && x < W; x++)
                ref[y * W + x] = v;
    }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double X = x + 0.5, Y = y + 0.5, z = G[6] * X + G[7] * Y + G[8];
            double u = (G[0] * X + G[1] * Y + G[2]) / z - 0.5, v = (G[3] * X + G[4] * Y + G[5]) / z - 0.5;
            int x0 = (int)floor(u), y0 = (int)floor(v);
            double fx = u - x0, fy = v - y0;
            double val = 0;
            if (x0 >= 0 && y0 >= 0 && x0 + 1 < W && y0 + 1 < H)
                val = (ref[y0 * W + x0] * (1 - fx) + ref[y0 * W + x0 + 1] * fx) * (1 - fy) +
                      (ref[(y0 + 1) * W + x0] * (1 - fx) + ref[(y0 + 1) * W + x0 + 1] * fx) * fy;
            in[y * W + x] = (unsigned char)lround(val);
        }
    VipsImage *a = vips_image_new_from_memory(ref, sizeof ref, W, H, 1, VIPS_FORMAT_UCHAR);
    VipsImage *b = vips_image_new_from_memory(in, sizeof in, W, H, 1, VIPS_FORMAT_UCHAR);
    ck_assert_int_eq(vips_image_write_to_file(a, ref_path, NULL), 0);
    ck_assert_int_eq(vips_image_write_to_file(b, in_path, NULL), 0);
    g_object_unref(a);
    g_object_unref(b);
}

/* Runs `pimg align in ref out`; returns the exit code and the last stdout line parsed as JSON. */
static int run_align(const char *in, const char *ref, const char *out, cJSON **json)
{
    const char *bin = getenv("PIMG_BIN");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' align '%s' '%s' '%s' 2>/dev/null", bin ? bin : "build/pimg", in, ref, out);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[4096] = "", buf[4096];
    while (fgets(buf, sizeof buf, p))
        if (buf[0] == '{')
            strcpy(line, buf);
    int st = pclose(p);
    *json = line[0] ? cJSON_Parse(line) : NULL;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void setup(void)
{
    ck_assert_int_eq(VIPS_INIT("cli_align_test"), 0);
    strcpy(dir, "/tmp/pimg-align-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Removes the fixture folder (its name comes from mkdtemp, so it is ours). */
static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(align_writes_json_and_warped_image)
{
    setup();
    char in[128], ref[128], out[128];
    snprintf(in, sizeof in, "%s/in.png", dir);
    snprintf(ref, sizeof ref, "%s/ref.png", dir);
    snprintf(out, sizeof out, "%s/out.jpg", dir);
    write_pair(in, ref);
    cJSON *j = NULL;
    ck_assert_int_eq(run_align(in, ref, out, &j), 0);
    ck_assert_ptr_nonnull(j);
    cJSON *h = cJSON_GetObjectItem(j, "homography");
    ck_assert(cJSON_IsArray(h));
    ck_assert_int_eq(cJSON_GetArraySize(h), 9);
    double Hm[9];
    for (int i = 0; i < 9; i++)
        Hm[i] = cJSON_GetArrayItem(h, i)->valuedouble;
    /* H maps IN -> REF, i.e. it is G: compare where both send IN's corners. */
    const double cx[4] = {0, 360, 360, 0}, cy[4] = {0, 0, 280, 280};
    double e = 0;
    for (int i = 0; i < 4; i++) {
        double z1 = Hm[6] * cx[i] + Hm[7] * cy[i] + Hm[8], z2 = G[6] * cx[i] + G[7] * cy[i] + G[8];
        e += hypot((Hm[0] * cx[i] + Hm[1] * cy[i] + Hm[2]) / z1 - (G[0] * cx[i] + G[1] * cy[i] + G[2]) / z2,
                   (Hm[3] * cx[i] + Hm[4] * cy[i] + Hm[5]) / z1 - (G[3] * cx[i] + G[4] * cy[i] + G[5]) / z2);
    }
    ck_assert_double_lt(e / 4, 1.0);
    ck_assert_int_ge(cJSON_GetObjectItem(j, "inliers")->valueint, 12);
    ck_assert_int_ge(cJSON_GetObjectItem(j, "matches")->valueint, cJSON_GetObjectItem(j, "inliers")->valueint);
    cJSON_Delete(j);
    VipsImage *o = vips_image_new_from_file(out, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->Xsize, 360);
    ck_assert_int_eq(o->Ysize, 280);
    g_object_unref(o);
    cleanup();
}
END_TEST

START_TEST(align_without_model_is_success_with_null)
{
    setup();
    char a[128], b[128], out[128];
    snprintf(a, sizeof a, "%s/flat.png", dir);
    snprintf(b, sizeof b, "%s/flat2.png", dir);
    snprintf(out, sizeof out, "%s/none.jpg", dir);
    VipsImage *f = NULL;
    ck_assert_int_eq(vips_black(&f, 200, 150, NULL), 0);
    ck_assert_int_eq(vips_image_write_to_file(f, a, NULL), 0);
    ck_assert_int_eq(vips_image_write_to_file(f, b, NULL), 0);
    g_object_unref(f);
    cJSON *j = NULL;
    ck_assert_int_eq(run_align(a, b, out, &j), 0);
    ck_assert_ptr_nonnull(j);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "homography")));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "inliers")));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "matches")));
    cJSON_Delete(j);
    struct stat sb;
    ck_assert_int_ne(stat(out, &sb), 0); /* OUT is not written */
    cleanup();
}
END_TEST

START_TEST(align_unreadable_image_exits_2)
{
    setup();
    char bad[128], out[128];
    snprintf(bad, sizeof bad, "%s/bad.jpg", dir);
    snprintf(out, sizeof out, "%s/x.jpg", dir);
    FILE *f = fopen(bad, "wb");
    fputs("not an image", f);
    fclose(f);
    cJSON *j = NULL;
    ck_assert_int_eq(run_align(bad, bad, out, &j), 2);
    cJSON_Delete(j);
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.png", dir);
    ck_assert_int_eq(run_align(missing, bad, out, &j), 2);
    cJSON_Delete(j);
    cleanup();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli_align");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, align_writes_json_and_warped_image);
    tcase_add_test(tc, align_without_model_is_success_with_null);
    tcase_add_test(tc, align_unreadable_image_exits_2);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
