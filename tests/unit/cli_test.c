/* cli_test.c — runs the real build/pimg binary ($PIMG_BIN) as a user would: exit codes,
 * --help on every subcommand, one JSON line per image from `analyze`, and `enhance` writing a
 * JPEG of the input's size. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static const char *bin(void)
{
    const char *b = getenv("PIMG_BIN");
    return b && *b ? b : "build/pimg";
}

/* Runs a shell command, captures stdout (up to cap bytes) and returns the exit code. */
static int run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char tmpdir[64];

static void make_photo(const char *path, const char *size)
{
    char cmd[2048];
    /* vips CLI from libvips-tools: a smooth test card, saved as JPEG */
    snprintf(cmd, sizeof cmd, "vips xyz %s/xyz.v %s && vips extract_band %s/xyz.v %s/b.v 0 && "
             "vips bandjoin '%s/b.v %s/b.v %s/b.v' %s/c.v && vips cast %s/c.v %s uchar",
             tmpdir, size, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, path);
    ck_assert_int_eq(system(cmd), 0);
}

static void setup(void)
{
    pimg_test_mkdtemp(tmpdir, sizeof tmpdir, "cli");
}

static void teardown(void)
{
    pimg_test_rmtree(tmpdir);
}

START_TEST(help_everywhere)
{
    const char *subs[] = {"", "serve", "analyze", "enhance", "align", "train", "eval"};
    char cmd[512], out[8192];
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
        snprintf(cmd, sizeof cmd, "%s %s --help 2>/dev/null", bin(), subs[i]);
        ck_assert_msg(run(cmd, out, sizeof out) == 0, "%s --help failed", subs[i]);
        ck_assert_msg(strstr(out, "usage") != NULL, "%s --help prints no usage", subs[i]);
    }
    snprintf(cmd, sizeof cmd, "%s frobnicate 2>/dev/null", bin());
    ck_assert_int_eq(run(cmd, out, sizeof out), 2);
}
END_TEST

START_TEST(analyze_prints_one_line_per_image)
{
    char img[128], bad[128], cmd[1024], out[16384];
    snprintf(img, sizeof img, "%s/a.jpg", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.jpg", tmpdir);
    make_photo(img, "320 240");
    FILE *f = fopen(bad, "w");
    fputs("this is not an image", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s analyze %s %s 2>/dev/null", bin(), img, img);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    char *line2 = strchr(out, '\n');
    ck_assert_ptr_nonnull(line2);
    *line2++ = '\0';
    cJSON *j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "file")->valuestring, img);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "width")->valueint, 320);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "height")->valueint, 240);
    cJSON_Delete(j);
    j = cJSON_Parse(line2);
    ck_assert_ptr_nonnull(j);
    cJSON_Delete(j);
    /* an unreadable image: exit 2, and its line carries an error object */
    snprintf(cmd, sizeof cmd, "%s analyze %s 2>/dev/null", bin(), bad);
    ck_assert_int_eq(run(cmd, out, sizeof out), 2);
    j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(j, "error"));
    cJSON_Delete(j);
    snprintf(cmd, sizeof cmd, "%s analyze /nonexistent.jpg 2>/dev/null", bin());
    ck_assert_int_eq(run(cmd, out, sizeof out), 2);
}
END_TEST

START_TEST(enhance_writes_jpeg_of_same_size)
{
    char img[128], outp[128], cmd[1024], out[16384];
    snprintf(img, sizeof img, "%s/in.png", tmpdir);
    snprintf(outp, sizeof outp, "%s/out.jpg", tmpdir);
    make_photo(img, "640 480");
    snprintf(cmd, sizeof cmd, "%s enhance %s %s --ops enhance --quality 90 2>/dev/null", bin(), img, outp);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    cJSON *j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "out_width")->valueint, 640);
    cJSON_Delete(j);
    snprintf(cmd, sizeof cmd, "vipsheader -f width %s && vipsheader -f height %s && vipsheader -f vips-loader %s",
             outp, outp, outp);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "640\n480\njpegload\n");
    /* bad option values are usage errors */
    snprintf(cmd, sizeof cmd, "%s enhance %s %s --quality 0 2>/dev/null", bin(), img, outp);
    ck_assert_int_eq(run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "%s enhance %s %s --ops enhance,sparkle 2>/dev/null", bin(), img, outp);
    ck_assert_int_eq(run(cmd, out, sizeof out), 2);
    /* a drawn shadow needs the white background it is drawn on */
    snprintf(cmd, sizeof cmd, "%s enhance %s %s --shadow --background blur 2>/dev/null", bin(), img, outp);
    ck_assert_int_eq(run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "%s enhance %s %s --ops detect --background white --shadow 2>/dev/null", bin(), img,
             outp);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    cJSON *bg = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "details"), "background");
    ck_assert_ptr_nonnull(bg);
    const cJSON *mode = cJSON_GetObjectItem(bg, "mode"), *note = cJSON_GetObjectItem(bg, "note");
    /* either drawn (a product was found) or skipped with a note (none was) */
    if (mode) {
        ck_assert_str_eq(mode->valuestring, "white");
        ck_assert_str_eq(cJSON_GetObjectItem(bg, "shadow")->valuestring, "drawn");
    } else {
        ck_assert_ptr_nonnull(note);
    }
    cJSON_Delete(j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, help_everywhere);
    tcase_add_test(tc, analyze_prints_one_line_per_image);
    tcase_add_test(tc, enhance_writes_jpeg_of_same_size);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
