/* feedback_test.c — unit tests for lib/feedback: label parsing, durable add, reopen, export
 * split, and lib/fileio's durable write, JSON file read and model-card path. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vips/vips.h>

#include "feedback.h"
#include "fileio.h"
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
    ck_assert_int_eq(pimg_feedback_label_parse(ok, strlen(ok), 100, 100, &l, &err), PIMG_OK);
    ck_assert(l.rotation == 90 && l.up == 1 && l.has_box && l.box[2] == 30);
    const char *rot_only = "{\"rotation\":0,\"up\":0,\"box\":null}";
    ck_assert_int_eq(pimg_feedback_label_parse(rot_only, strlen(rot_only), 10, 10, &l, &err), PIMG_OK);
    ck_assert(l.up == 0 && !l.has_box);
    const char *bad[] = {"", "[]", "{}", "{\"rotation\":45}", "{\"rotation\":\"90\"}",
                         "{\"rotation\":0,\"box\":[1,2,3]}", "{\"rotation\":0,\"box\":[5,5,2,9]}",
                         "{\"rotation\":0,\"box\":[-1,0,3,3]}", "{\"rotation\":90.5}", "not json",
                         "{\"rotation\":0,\"box\":[0,0,101,50]}", "{\"rotation\":0,\"up\":2}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.msg[0] = '\0';
        ck_assert_msg(pimg_feedback_label_parse(bad[i], strlen(bad[i]), 100, 100, &l, &err) == PIMG_ERR_BAD_INPUT,
                      "accepted %s", bad[i]);
        ck_assert(err.msg[0]);
    }
}
END_TEST

static void *tiny_jpeg(size_t *len)
{
    VipsImage *b = NULL;
    vips_black(&b, 64, 48, "bands", 3, NULL);
    void *buf = NULL;
    ck_assert_int_eq(vips_jpegsave_buffer(b, &buf, len, NULL), 0);
    g_object_unref(b);
    return buf;
}

START_TEST(add_survives_reopen_and_exports_split)
{
    pimg_feedback *fb = NULL;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_feedback_open(dir, &fb, &err), PIMG_OK);
    ck_assert_int_eq(pimg_feedback_count(fb), 0);
    size_t len;
    void *jpg = tiny_jpeg(&len);
    int64_t id = 0, prev = 0;
    for (int i = 0; i < 6; i++) {
        const char *label = i == 0 ? "{\"rotation\":270}" : "{\"rotation\":0,\"box\":[1,2,30,40]}";
        ck_assert_int_eq(pimg_feedback_add(fb, jpg, len, label, strlen(label), 0, &id, &err), PIMG_OK);
        ck_assert(id > prev);
        prev = id;
    }
    /* refused before anything is stored */
    ck_assert_int_eq(pimg_feedback_add(fb, "nope", 4, "{\"rotation\":0}", 14, 0, &id, &err), PIMG_ERR_UNSUPPORTED);
    const char *outside = "{\"rotation\":0,\"box\":[0,0,65,10]}";
    ck_assert_int_eq(pimg_feedback_add(fb, jpg, len, outside, strlen(outside), 0, &id, &err), PIMG_ERR_BAD_INPUT);
    pimg_feedback_close(fb);

    ck_assert_int_eq(pimg_feedback_open(dir, &fb, &err), PIMG_OK);
    ck_assert_int_eq(pimg_feedback_count(fb), 6);
    char tr[128], te[128];
    snprintf(tr, sizeof tr, "%s/train", dir);
    snprintf(te, sizeof te, "%s/test", dir);
    ck_assert_int_eq(pimg_mkdir_p(tr), 0);
    ck_assert_int_eq(pimg_mkdir_p(te), 0);
    int ntr = 0, nte = 0;
    ck_assert_int_eq(pimg_feedback_export(fb, tr, te, &ntr, &nte, &err), PIMG_OK);
    ck_assert_int_eq(ntr, 5); /* ids 1-4, 6 */
    ck_assert_int_eq(nte, 1); /* id 5 */
    pimg_feedback_close(fb);

    char path[160], line[1024];
    snprintf(path, sizeof path, "%s/labels.csv", tr);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert(!strncmp(line, "file,up,kind,rotation,x0,y0,x1,y1,", 34));
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_ptr_nonnull(strstr(line, ".jpeg,1,,270,,,,,"));
    /* the linked image holds exactly the bytes given */
    *strchr(line, ',') = '\0';
    char img[1300];
    snprintf(img, sizeof img, "%s/%s", tr, line);
    void *got = NULL;
    size_t glen = 0;
    ck_assert_int_eq(pimg_file_read(img, &got, &glen, &err), PIMG_OK);
    ck_assert_uint_eq(glen, len);
    ck_assert(!memcmp(got, jpg, len));
    free(got);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_ptr_nonnull(strstr(line, ",1,,0,1,2,30,40,"));
    fclose(f);
    g_free(jpg);
}
END_TEST

START_TEST(durable_write_replaces_whole_file)
{
    pimg_error err = {0};
    ck_assert_int_eq(pimg_file_write_durably(dir, "m.svm", "first", 5, &err), PIMG_OK);
    ck_assert_int_eq(pimg_file_write_durably(dir, "m.svm", "second!", 7, &err), PIMG_OK);
    char path[128];
    snprintf(path, sizeof path, "%s/m.svm", dir);
    void *b = NULL;
    size_t n = 0;
    ck_assert_int_eq(pimg_file_read(path, &b, &n, &err), PIMG_OK);
    ck_assert_uint_eq(n, 7);
    ck_assert(!memcmp(b, "second!", 7));
    free(b);
    snprintf(path, sizeof path, "%s/.m.svm.tmp", dir);
    ck_assert_int_ne(access(path, F_OK), 0); /* no temporary left behind */
    ck_assert_int_eq(pimg_file_write_durably("/proc/no-such-dir", "x", "a", 1, &err), PIMG_ERR_IO);
    pimg_feedback *fb = NULL;
    ck_assert_int_eq(pimg_feedback_open("/proc/pimg-no/such", &fb, &err), PIMG_ERR_IO);
    ck_assert_ptr_null(fb);
}
END_TEST

START_TEST(json_read_and_card_path)
{
    pimg_error err = {0};
    char path[128];
    ck_assert_int_eq(pimg_file_write_durably(dir, "m.json", "{\"a\": 1}", 8, &err), PIMG_OK);
    snprintf(path, sizeof path, "%s/m.json", dir);
    cJSON *o = NULL;
    ck_assert_int_eq(pimg_json_read(path, 8, &o, &err), PIMG_OK);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "a")->valueint, 1);
    cJSON_Delete(o);
    o = NULL;
    ck_assert_int_eq(pimg_json_read(path, 7, &o, &err), PIMG_ERR_TOO_LARGE);
    ck_assert_ptr_null(o);
    ck_assert_int_eq(pimg_file_write_durably(dir, "m.json", "{oops", 5, &err), PIMG_OK);
    ck_assert_int_eq(pimg_json_read(path, 100, &o, &err), PIMG_ERR_BAD_INPUT);
    ck_assert_ptr_null(o);
    snprintf(path, sizeof path, "%s/none.json", dir);
    ck_assert_int_eq(pimg_json_read(path, 100, &o, &err), PIMG_ERR_IO);
    char card[64];
    pimg_card_path("models/orient.svm", ".svm", card, sizeof card);
    ck_assert_str_eq(card, "models/orient.json");
    pimg_card_path("models/level.model", ".model", card, sizeof card);
    ck_assert_str_eq(card, "models/level.json");
    pimg_card_path("x.bin", ".svm", card, sizeof card);
    ck_assert_str_eq(card, "x.bin.json");
    pimg_card_path(".svm", ".svm", card, sizeof card); /* nothing before the extension */
    ck_assert_str_eq(card, ".svm.json");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("feedback");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, label_parse_accepts_and_rejects);
    tcase_add_test(tc, add_survives_reopen_and_exports_split);
    tcase_add_test(tc, durable_write_replaces_whole_file);
    tcase_add_test(tc, json_read_and_card_path);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 1);
}
