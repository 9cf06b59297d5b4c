/* feedback_test.c — unit tests for lib/feedback: label parsing, durable add, reopen, export. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feedback.h"
#include "testutil.h"

static char dir[64];

static void setup(void)
{
    pimg_test_mkdtemp(dir, sizeof dir, "fb");
}

static void teardown(void)
{
    pimg_test_rmtree(dir);
}

START_TEST(label_parse_accepts_and_rejects)
{
    pimg_feedback_label l;
    pimg_error err = {0};
    const char *ok = "{\"rotation\":90,\"box\":[1,2,30,40]}";
    ck_assert_int_eq(pimg_feedback_label_parse(ok, strlen(ok), &l, &err), PIMG_OK);
    ck_assert(l.has_rotation && l.rotation == 90 && l.has_box && l.box[2] == 30);
    const char *rot_only = "{\"rotation\":0}";
    ck_assert_int_eq(pimg_feedback_label_parse(rot_only, strlen(rot_only), &l, &err), PIMG_OK);
    ck_assert(l.has_rotation && !l.has_box);
    const char *bad[] = {"", "[]", "{}", "{\"rotation\":45}", "{\"rotation\":\"90\"}", "{\"box\":[1,2,3]}",
                         "{\"box\":[5,5,2,9]}", "{\"box\":[-1,0,3,3]}", "{\"rotation\":90.5}", "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.msg[0] = '\0';
        ck_assert_msg(pimg_feedback_label_parse(bad[i], strlen(bad[i]), &l, &err) == PIMG_ERR_BAD_INPUT,
                      "accepted %s", bad[i]);
        ck_assert(err.msg[0]);
    }
}
END_TEST

START_TEST(add_survives_reopen_and_exports)
{
    pimg_feedback *fb = NULL;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_feedback_open(dir, &fb, &err), PIMG_OK);
    ck_assert_int_eq(pimg_feedback_count(fb), 0);
    pimg_feedback_label l = {.has_rotation = 1, .rotation = 270};
    long long id1 = 0, id2 = 0;
    ck_assert_int_eq(pimg_feedback_add(fb, "\xff\xd8\xff" "abc", 6, "jpg", &l, &id1, &err), PIMG_OK);
    pimg_feedback_label l2 = {.has_box = 1, .box = {1, 2, 3, 4}};
    ck_assert_int_eq(pimg_feedback_add(fb, "\x89PNG....", 8, "png", &l2, &id2, &err), PIMG_OK);
    ck_assert(id2 > id1 && id1 > 0);
    pimg_feedback_close(fb);

    ck_assert_int_eq(pimg_feedback_open(dir, &fb, &err), PIMG_OK);
    ck_assert_int_eq(pimg_feedback_count(fb), 2);
    char out[128];
    snprintf(out, sizeof out, "%s/export", dir);
    long long n = 0;
    ck_assert_int_eq(pimg_feedback_export(fb, out, &n, &err), PIMG_OK);
    ck_assert_int_eq(n, 2);
    pimg_feedback_close(fb);

    char path[160], line[1024];
    snprintf(path, sizeof path, "%s/labels.csv", out);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "file,up,kind,rotation,x0,y0,x1,y1\n");
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_ptr_nonnull(strstr(line, ".jpg,1,,270,,,,\n"));
    /* the stored image holds exactly the bytes given */
    char *comma = strchr(line, ',');
    *comma = '\0';
    FILE *img = fopen(line, "rb");
    ck_assert_ptr_nonnull(img);
    char got[16];
    ck_assert_int_eq(fread(got, 1, sizeof got, img), 6);
    ck_assert(!memcmp(got, "\xff\xd8\xff" "abc", 6));
    fclose(img);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_ptr_nonnull(strstr(line, ".png,0,,,1,2,3,4\n"));
    fclose(f);
}
END_TEST

START_TEST(open_fails_on_unwritable_dir)
{
    pimg_feedback *fb = NULL;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_feedback_open("/proc/pimg-no/such", &fb, &err), PIMG_ERR_IO);
    ck_assert_ptr_null(fb);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("feedback");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, label_parse_accepts_and_rejects);
    tcase_add_test(tc, add_survives_reopen_and_exports);
    tcase_add_test(tc, open_fails_on_unwritable_dir);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
