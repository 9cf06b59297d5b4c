/* fuzz_replay_test.c — replays the fuzz seed corpus and every saved crash input through the
 * fuzz target (tests/fuzz/decode_fuzz.c) without libFuzzer, so `make test` and `make asan`
 * catch regressions of anything the fuzzer once found. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIMG_FUZZ_MULTIPART 1
#include "../../service/http_util.c"
#include "../fuzz/decode_fuzz.c"
#include "common.h"
#include "../unit/testutil.h"
#include <glib.h>

static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "README.md"))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len;
        void *buf = read_file(path, &len);
        if (!buf)
            continue;
        LLVMFuzzerTestOneInput(buf, len);
        /* and every prefix-truncation at a few points, as the fuzzer would */
        for (int k = 1; k < 4; k++)
            LLVMFuzzerTestOneInput(buf, len * (size_t)k / 4);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

START_TEST(corpus_and_crashes_replay_cleanly)
{
    int n = replay_dir("tests/fuzz/corpus");
    ck_assert_int_ge(n, 5);
    replay_dir("tests/fuzz/crashes");
}
END_TEST

static void quiet(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer ud)
{
    (void)domain, (void)level, (void)msg, (void)ud; /* truncated inputs make libvips warn per tile */
}

int main(void)
{
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, quiet, NULL);
    Suite *s = suite_create("fuzz_replay");
    TCase *tc = tcase_create("replay");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, corpus_and_crashes_replay_cleanly);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
