/* testutil.c — shared helpers for the unit-test programs (linked into each of them). */
#include "testutil.h"

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
