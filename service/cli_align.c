/* cli_align.c — `pimg align IN REF OUT`: registers IN to the reference view REF (SIFT + RANSAC,
 * lib/align) and writes IN warped into REF's frame at full resolution.
 *
 * Output contract (CONTRACT.md): one JSON line {"homography": [9] | null, "inliers": N,
 * "matches": M, ...}. "No homography found" is a successful run (exit 0, homography null) and
 * OUT is then NOT written: a caller that wants the unaligned photo already has IN, and a file
 * that looks aligned but is not would be worse than no file. Unreadable images exit 2. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "align.h"
#include "cli.h"
#include "clock.h"
#include "image.h"

static const char align_help[] =
    "usage: pimg align IN REF OUT [options]\n"
    "Registers IN to the reference view REF (VLFeat SIFT, ratio + mutual matching, LO-RANSAC\n"
    "homography) and writes IN warped into REF's frame (REF's size, full resolution) as JPEG\n"
    "to OUT. Prints {\"homography\":[9 numbers, row-major, maps IN pixel (x,y,1) to REF pixel]\n"
    "|null,\"inliers\":N,\"matches\":M,...}. Pixel coordinates use the area convention (pixel\n"
    "(0,0) covers [0,1)x[0,1), the image corners are (0,0) and (w,h)).\n"
    "When no trustworthy homography is found, homography is null, OUT is not written and the\n"
    "exit code is still 0. Exit 2: an image cannot be read.\n"
    "  --analysis-side N    longest side of the analysis copies (default 1024)\n"
    "  --quality Q          JPEG quality 1..100 (default 85)\n"
    "  --max-pixels N       refuse larger images (default 50000000)\n";


int pimg_cmd_align(int argc, char **argv, const char *exe)
{
    (void)exe;
    enum { OPT_SIDE = 256, OPT_Q, OPT_MAXPX };
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"analysis-side", required_argument, NULL, OPT_SIDE},
        {"quality", required_argument, NULL, OPT_Q},
        {"max-pixels", required_argument, NULL, OPT_MAXPX},
        {NULL, 0, NULL, 0},
    };
    long side = PIMG_ANALYSIS_SIDE, quality = 85, v;
    pimg_load_opts lo = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(align_help, stdout); return 0;
        case OPT_SIDE:
            if (pimg_cli_parse_long(optarg, 64, 4096, &side)) {
                fprintf(stderr, "pimg: --analysis-side must be 64..4096\n");
                return 2;
            }
            break;
        case OPT_Q:
            if (pimg_cli_parse_long(optarg, 1, 100, &quality)) {
                fprintf(stderr, "pimg: --quality must be 1..100\n");
                return 2;
            }
            break;
        case OPT_MAXPX:
            if (pimg_cli_parse_long(optarg, 1, 1000000000L, &v)) {
                fprintf(stderr, "pimg: --max-pixels must be a positive integer\n");
                return 2;
            }
            lo.max_pixels = (uint64_t)v;
            break;
        default: fputs(align_help, stderr); return 2;
        }
    }
    if (argc - optind != 3) {
        fputs(align_help, stderr);
        return 2;
    }
    const char *inp = argv[optind], *refp = argv[optind + 1], *outp = argv[optind + 2];
    double t0 = pimg_clock_ms();
    pimg_error err = {0};
    pimg_image *img = NULL, *ref = NULL;
    pimg_tensor *ti = NULL, *tr = NULL;
    pimg_align_result r;
    memset(&r, 0, sizeof r);
    double t_est = 0, t_warp = 0;
    pimg_status st = pimg_image_load_file(inp, &lo, &img, &err);
    if (!st)
        st = pimg_image_load_file(refp, &lo, &ref, &err);
    if (!st)
        st = pimg_image_tensor(img, (int)side, &ti, &err);
    if (!st)
        st = pimg_image_tensor(ref, (int)side, &tr, &err);
    if (!st) {
        double t1 = pimg_clock_ms();
        st = pimg_align_estimate(ti, (double)pimg_image_input_width(img) / ti->w, tr,
                                 (double)pimg_image_input_width(ref) / tr->w, &r, &err);
        t_est = pimg_clock_ms() - t1;
    }
    if (!st && r.found) {
        double t1 = pimg_clock_ms();
        pimg_jpeg_opts jo = {.quality = (int)quality};
        st = pimg_align_warp(img, r.H, pimg_image_input_width(ref), pimg_image_input_height(ref), &err);
        if (!st)
            st = pimg_image_write_jpeg(img, &jo, outp, &err);
        t_warp = pimg_clock_ms() - t1;
    }
    int rc = pimg_cli_exit_code(st);
    if (st) {
        fprintf(stderr, "pimg: %s\n", err.msg);
    } else {
        cJSON *o = cJSON_CreateObject();
        if (r.found)
            cJSON_AddItemToObject(o, "homography", cJSON_CreateDoubleArray(r.H, 9));
        else
            cJSON_AddNullToObject(o, "homography");
        cJSON_AddNumberToObject(o, "inliers", r.inliers);
        cJSON_AddNumberToObject(o, "matches", r.matches);
        cJSON_AddNumberToObject(o, "features_in", r.features_in);
        cJSON_AddNumberToObject(o, "features_ref", r.features_ref);
        cJSON_AddStringToObject(o, "out", r.found ? outp : "not written (no homography)");
        cJSON *tm = cJSON_AddObjectToObject(o, "timings_ms");
        cJSON_AddNumberToObject(tm, "estimate", (double)(long)(t_est * 10) / 10);
        cJSON_AddNumberToObject(tm, "warp_encode", (double)(long)(t_warp * 10) / 10);
        cJSON_AddNumberToObject(tm, "total", (double)(long)((pimg_clock_ms() - t0) * 10) / 10);
        char *s = cJSON_PrintUnformatted(o);
        if (s)
            puts(s);
        free(s);
        cJSON_Delete(o);
    }
    pimg_tensor_free(ti);
    pimg_tensor_free(tr);
    pimg_image_free(img);
    pimg_image_free(ref);
    return rc;
}
