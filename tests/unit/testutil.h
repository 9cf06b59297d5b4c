/* testutil.h — what every unit-test program shares: running a suite, scratch folders, fixtures. */
#ifndef PIMG_TESTUTIL_H
#define PIMG_TESTUTIL_H

#include <check.h>
#include <stddef.h>

#include "tensor.h"

/* Runs s (CK_NORMAL: prints the Check summary line) and returns the process exit code.
 * with_lib != 0 wraps the run in pimg_init/pimg_shutdown (libvips). */
int pimg_test_run(Suite *s, int with_lib);

/* Makes a fresh folder /tmp/pimg-<tag>-XXXXXX into buf (size n); fails the test on error. */
void pimg_test_mkdtemp(char *buf, size_t n, const char *tag);

/* Removes a folder made by pimg_test_mkdtemp, with everything in it. */
void pimg_test_rmtree(const char *dir);

/* Deterministic uniform numbers in [0, 1) from a 64-bit LCG state (fixtures must not vary). */
double pimg_test_urand(unsigned long long *state);

/* Where homography H (row-major) sends (x, y). */
void pimg_test_project(const double H[9], double x, double y, double *u, double *v);

/* Mean distance between where H and G send the four corners of a w x h image — the error
 * ../shared/eval/align.py scores. */
double pimg_test_corner_err(const double H[9], const double G[9], double w, double h);

/* Dark horizontal bars on white with a few vertical posts: a shelf-like upright scene for the
 * levelling tests. Ownership: pimg_tensor_free. */
pimg_tensor *pimg_test_bars(int w, int h);

#endif
