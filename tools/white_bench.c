/* white_bench.c — measures the white background on plain-backdrop composites with known masks
 * (models/README, "White background: cast shadows"): N composites of shared/data/objects
 * (768 px, fill LO..HI, JPEG q92), the detector's mask (after pimg_shadow_remove when SHREM is
 * set), pimg_background_white; prints per composite fb = share of true-background pixels with
 * every channel >= 250 and fp = share of product pixels unchanged (|d| <= 3), then the count
 * meeting both (fb >= 0.99, fp >= 0.95). SHADOW=0/1 forces the contact shadow off/on (default
 * random); DUMP=1 writes /tmp/wbd/N_{in,out}.jpg. A measuring tool, not part of pimg.
 *
 * build: cc -O2 -std=gnu11 -Ilib tools/white_bench.c build/libpimg.a \
 *          $(pkg-config --cflags --libs vips libcjson) -lvl -lsvm -lpthread -lm -o build/white_bench
 * run:   SHREM=1 build/white_bench models/detect.svm 40 SEED 0.3 0.85 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>
#include "background.h"
#include "composite.h"
#include "detect.h"
#include "image.h"
#include "image_vips.h"
#include "pimg.h"
#include "shadow.h"
static pimg_image *image_of(const pimg_tensor *t)
{
    size_t n = (size_t)t->w * t->h * 3;
    unsigned char *px = malloc(n);
    for (size_t i = 0; i < n; i++)
        px[i] = (unsigned char)lroundf(fminf(fmaxf(t->data[i], 0), 1) * 255);
    VipsImage *v = vips_image_new_from_memory(px, n, t->w, t->h, 3, VIPS_FORMAT_UCHAR);
    void *buf = NULL; size_t len = 0;
    vips_jpegsave_buffer(v, &buf, &len, "Q", 92, NULL);
    g_object_unref(v); free(px);
    pimg_image *img = NULL;
    pimg_image_load_buffer(buf, len, NULL, &img, NULL);
    g_free(buf);
    return img;
}
static unsigned char *pixels_of(pimg_image *img, int *w, int *h)
{
    VipsImage *v; pimg_image_vips(img, &v, NULL);
    VipsImage *mem = vips_image_copy_memory(v);
    size_t len; unsigned char *px = vips_image_write_to_memory(mem, &len);
    *w = mem->Xsize; *h = mem->Ysize; pimg_image_set_vips(img, mem);
    return px;
}
int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: white_bench DETECT_MODEL N SEED FILL_LO FILL_HI  (see the file header)\n");
        return 2;
    }
    pimg_init(argv[0], 1, NULL);
    pimg_composite_src *src; pimg_error err = {0};
    if (pimg_composite_src_load("../shared/data/objects", "../shared/data/train", &src, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    pimg_detect_model *m = NULL; pimg_detect_model_load(argv[1], &m, NULL);
    int N = atoi(argv[2]); uint64_t rng = strtoull(argv[3], 0, 10);
    double lo = atof(argv[4]), hi = atof(argv[5]);
    int pass = 0; double sfb = 0, sfp = 0;
    for (int i = 0; i < N; i++) {
        pimg_composite_spec sp = {.side = 768, .shadow = getenv("SHADOW") ? atoi(getenv("SHADOW")) : -1, .background = -1, .min_fill = lo, .max_fill = hi};
        sp.object = (int)(pimg_rand_uniform(&rng) * pimg_composite_n_objects(src)) % pimg_composite_n_objects(src);
        pimg_tensor *t = NULL, *alpha = NULL; double box[4];
        if (pimg_composite_make(src, &sp, &rng, &t, &alpha, box, NULL)) continue;
        pimg_image *img = image_of(t);
        pimg_tensor *tt = NULL; pimg_image_tensor(img, 1024, &tt, NULL);
        pimg_detection d; pimg_detect_run(m, tt, 1, &d, NULL);
        int w, h; unsigned char *before = pixels_of(img, &w, &h);
        double shs = 0; if (d.found && d.mask && getenv("SHREM")) pimg_shadow_remove(tt, d.mask, &shs, NULL);
        if (d.found && d.mask) pimg_background_white(img, d.mask, 0, NULL);
        unsigned char *after = pixels_of(img, &w, &h);
        long nb = 0, wb = 0, np = 0, kp = 0;
        for (long k = 0; k < (long)w * h; k++) {
            float a = alpha->data[k];
            const unsigned char *p = after + 3 * k, *q = before + 3 * k;
            if (a == 0.0f) { nb++; wb += p[0] >= 250 && p[1] >= 250 && p[2] >= 250; }
            else if (a >= 0.999f) { np++; kp += abs(p[0]-q[0]) <= 3 && abs(p[1]-q[1]) <= 3 && abs(p[2]-q[2]) <= 3; }
        }
        double fb = (double)wb / nb, fp = (double)kp / np;
        pass += fb >= 0.99 && fp >= 0.95; sfb += fb; sfp += fp;
        printf("%d %s fb=%.4f fp=%.4f found=%d sh=%.3f\n", i, pimg_composite_object_name(src, sp.object), fb, fp, d.found, shs);
        if (getenv("DUMP")) {
            char fn[256]; snprintf(fn, sizeof fn, "/tmp/wbd/%d_in.jpg", i);
            vips_image_write_to_file(vips_image_new_from_memory(before, (size_t)w*h*3, w, h, 3, VIPS_FORMAT_UCHAR), fn, NULL);
            snprintf(fn, sizeof fn, "/tmp/wbd/%d_out.jpg", i);
            vips_image_write_to_file(vips_image_new_from_memory(after, (size_t)w*h*3, w, h, 3, VIPS_FORMAT_UCHAR), fn, NULL);
        }
        g_free(before); g_free(after); pimg_image_free(img); pimg_detection_clear(&d);
        pimg_tensor_free(t); pimg_tensor_free(tt); pimg_tensor_free(alpha);
    }
    printf("pass %d/%d mean_fb=%.4f mean_fp=%.4f\n", pass, N, sfb / N, sfp / N);
    return 0;
}
