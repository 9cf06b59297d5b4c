/* align_bench.c — times pimg_align_estimate on one image pair (not part of `make test`).
 *
 * Build and run on one core (see tests/bench/README.md):
 *   make && cc -O2 -std=c11 -D_GNU_SOURCE -Ilib $(pkg-config --cflags vips) \
 *     tests/bench/align_bench.c build/libpimg.a $(pkg-config --libs vips libcjson sqlite3) \
 *     -lvl -lsvm -lm -o build/align_bench
 *   taskset -c 0 build/align_bench IN REF [SIDE] [REPS]
 * Decoding and the analysis tensors are made once, outside the timed loop; each repetition
 * runs the whole estimate (SIFT on both images, matching, RANSAC, checks). Prints the median
 * and minimum wall time and the median thread CPU time. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <vips/vips.h>

#include "align.h"
#include "image.h"

static double ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: align_bench IN REF [SIDE] [REPS]\n");
        return 2;
    }
    int side = argc > 3 ? atoi(argv[3]) : 1024, reps = argc > 4 ? atoi(argv[4]) : 7;
    if (VIPS_INIT(argv[0]))
        return 1;
    vips_concurrency_set(1);
    pimg_error err = {0};
    pimg_image *a = NULL, *b = NULL;
    pimg_tensor *ta = NULL, *tb = NULL;
    if (pimg_image_load_file(argv[1], NULL, &a, &err) || pimg_image_load_file(argv[2], NULL, &b, &err) ||
        pimg_image_tensor(a, side, &ta, &err) || pimg_image_tensor(b, side, &tb, &err)) {
        fprintf(stderr, "align_bench: %s\n", err.msg);
        return 2;
    }
    double *wall = calloc((size_t)reps, sizeof *wall), *cpu = calloc((size_t)reps, sizeof *cpu);
    pimg_align_result r = {0};
    for (int i = 0; i < reps; i++) {
        double w0 = ms(CLOCK_MONOTONIC), c0 = ms(CLOCK_THREAD_CPUTIME_ID);
        if (pimg_align_estimate(ta, (double)pimg_image_input_width(a) / ta->w, tb,
                                (double)pimg_image_input_width(b) / tb->w, &r, &err)) {
            fprintf(stderr, "align_bench: %s\n", err.msg);
            return 1;
        }
        wall[i] = ms(CLOCK_MONOTONIC) - w0;
        cpu[i] = ms(CLOCK_THREAD_CPUTIME_ID) - c0;
    }
    qsort(wall, (size_t)reps, sizeof *wall, cmp);
    qsort(cpu, (size_t)reps, sizeof *cpu, cmp);
    printf("%dx%d vs %dx%d: found=%d inliers=%d matches=%d features=%d/%d  wall median %.1f ms "
           "min %.1f ms, thread CPU median %.1f ms (%d reps)\n",
           ta->w, ta->h, tb->w, tb->h, r.found, r.inliers, r.matches, r.features_in, r.features_ref,
           wall[reps / 2], wall[0], cpu[reps / 2], reps);
    free(wall);
    free(cpu);
    pimg_tensor_free(ta);
    pimg_tensor_free(tb);
    pimg_image_free(a);
    pimg_image_free(b);
    return 0;
}
