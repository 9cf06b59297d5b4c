/* detect_test.c — lib/detect, lib/saliency, lib/mask and lib/composite on synthetic and
 * composited photos with exact boxes: a plain-background product is found with a tight box
 * and mask, the libsvm model round-trips through its file, features are deterministic, and
 * detection + mask stay within budget on a 1024 px analysis tensor. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "composite.h"
#include "detect.h"
#include "detect_svm.h"
#include "detect_train.h"
#include "mask.h"
#include "pimg.h"
#include "saliency.h"
#include "testutil.h"

static const char *data_dir(void)
{
    const char *d = getenv("PIMG_DATA_DIR");
    return d && *d ? d : "../shared/data";
}

static void setup(void) { ck_assert_int_eq(pimg_init(NULL, 1, NULL), PIMG_OK); }

/* A dark ellipse on a light, slightly graded backdrop: the simplest product shot. */
static pimg_tensor *ellipse_scene(int w, int h, const double box[4])
{
    pimg_tensor *t = pimg_tensor_new(w, h, 3);
    double cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2, rx = (box[2] - box[0]) / 2,
           ry = (box[3] - box[1]) / 2;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float *p = pimg_tensor_at(t, x, y);
            double u = (x + 0.5 - cx) / rx, v = (y + 0.5 - cy) / ry;
            if (u * u + v * v <= 1) {
                p[0] = 0.7f;
                p[1] = 0.2f;
                p[2] = 0.15f;
            } else {
                float g = 0.92f + 0.04f * (float)y / h;
                p[0] = p[1] = p[2] = g;
            }
        }
    return t;
}

static pimg_detect_model *shipped_model(void)
{
    pimg_detect_model *m = NULL;
    const char *dir = getenv("PIMG_MODELS_DIR") ? getenv("PIMG_MODELS_DIR") : "models";
    char p[1024];
    snprintf(p, sizeof p, "%s/detect.svm", dir);
    pimg_detect_model_load(p, &m, NULL);
    return m;
}

START_TEST(plain_product_found_with_tight_box_and_mask)
{
    double box[4] = {200, 150, 520, 390};
    pimg_tensor *t = ellipse_scene(800, 600, box);
    pimg_detect_model *m = shipped_model();
    for (int run = 0; run < 4; run++) {
        /* with and without the model, with the colour-histogram and the GrabCut mask */
        int with_model = run / 2, grabcut = run % 2;
        pimg_detection d;
        ck_assert_int_eq(pimg_detect_run(with_model ? m : NULL, t, grabcut, &d, NULL), PIMG_OK);
        ck_assert(d.found);
        double iou = pimg_box_iou(d.box, box);
        ck_assert_msg(iou >= 0.85, "model %d grabcut %d: box iou %.3f", with_model, grabcut, iou);
        ck_assert(d.confidence >= 0 && d.confidence <= 1);
        ck_assert_ptr_nonnull(d.mask);
        ck_assert_int_eq(d.mask->w, 800);
        /* mask: centre is product, corners are background */
        ck_assert_float_ge(d.mask->data[270 * 800 + 360], 0.99f);
        ck_assert_float_le(d.mask->data[10 * 800 + 10], 0.01f);
        pimg_detection_clear(&d);
        ck_assert_ptr_null(d.mask);
    }
    pimg_detect_model_free(m);
    pimg_tensor_free(t);
}
END_TEST

/* The plain-backdrop path: a product filling most of the frame on a graded sweep is boxed by
 * what departs from the fitted backdrop (the case where a ranker boxes a salient part), and
 * a textured photo is not taken for plain. */
START_TEST(plain_backdrop_box_and_test)
{
    const pimg_plain_params *pp = &pimg_detect_plain_params; /* the shipped settings */
    double box[4] = {40, 20, 760, 590}; /* touches nearly every edge */
    pimg_tensor *t = ellipse_scene(800, 600, box);
    pimg_scene *s = NULL;
    ck_assert_int_eq(pimg_scene_make(t, PIMG_SAL_SIDE, &s, NULL), PIMG_OK);
    double pbs[PIMG_PLAIN_MAXBOX][4], pb[4];
    pimg_plain_stats ps;
    int npb = 0;
    ck_assert_int_eq(pimg_scene_backdrop_box(s, pp, pbs, &npb, &ps), 1);
    ck_assert(ps.sigma >= 0 && ps.sigma < 3 && ps.share > 0.6);
    ck_assert_int_ge(npb, 1);
    for (int k = 0; k < 4; k++)
        pb[k] = pbs[0][k] * s->scale;
    double iou = pimg_box_iou(pb, box);
    ck_assert_msg(iou >= 0.9, "backdrop box iou %.3f", iou);
    pimg_scene_free(s);
    /* The full detector takes that box too. */
    pimg_detection d;
    ck_assert_int_eq(pimg_detect_run(NULL, t, 0, &d, NULL), PIMG_OK);
    ck_assert(d.found);
    ck_assert_msg(pimg_box_iou(d.box, box) >= 0.9, "detector iou %.3f", pimg_box_iou(d.box, box));
    pimg_detection_clear(&d);

    /* Strong random texture everywhere: not plain. */
    uint64_t r = 7;
    for (long i = 0; i < (long)t->w * t->h * 3; i++)
        t->data[i] = (float)pimg_rand_uniform(&r);
    ck_assert_int_eq(pimg_scene_make(t, PIMG_SAL_SIDE, &s, NULL), PIMG_OK);
    ck_assert_int_ne(pimg_scene_backdrop_box(s, pp, pbs, &npb, &ps), 1);
    ck_assert(ps.sigma > 3);
    pimg_scene_free(s);
    pimg_tensor_free(t);
}
END_TEST

/* The second plainness rule: a backdrop residual above max_sigma still counts as plain when
 * it is within wide_sigma on at least wide_share of the ring; with the rule off the same photo
 * only offers its box to the scorer (2). */
START_TEST(plain_backdrop_wide_rule)
{
    double box[4] = {200, 150, 520, 390};
    pimg_tensor *t = ellipse_scene(800, 600, box);
    pimg_scene *s = NULL;
    ck_assert_int_eq(pimg_scene_make(t, PIMG_SAL_SIDE, &s, NULL), PIMG_OK);
    double pbs[PIMG_PLAIN_MAXBOX][4];
    pimg_plain_stats ps;
    int npb = 0;
    pimg_plain_params pp = pimg_detect_plain_params;
    ck_assert_int_eq(pimg_scene_backdrop_box(s, &pp, pbs, &npb, &ps), 1);
    pp.max_sigma = ps.sigma / 2; /* the first rule now fails */
    pp.wide_share = 0;
    ck_assert_int_eq(pimg_scene_backdrop_box(s, &pp, pbs, &npb, &ps), 2);
    pp.wide_sigma = ps.sigma + 0.5;
    pp.wide_share = ps.share;
    ck_assert_int_eq(pimg_scene_backdrop_box(s, &pp, pbs, &npb, &ps), 1);
    pp.wide_sigma = ps.sigma / 2; /* residual too large for the wide rule too */
    ck_assert_int_eq(pimg_scene_backdrop_box(s, &pp, pbs, &npb, &ps), 2);
    ck_assert(pimg_detect_plain_params.wide_sigma > pimg_detect_plain_params.max_sigma);
    pimg_scene_free(s);
    pimg_tensor_free(t);
}
END_TEST

/* A product that runs off two edges of the frame (a third of the ring is product, in two
 * colours): the backdrop fit is seeded from the ring's dominant colour, so the photo is still
 * plain and the box of what departs from the backdrop reaches the frame's edges. */
START_TEST(plain_backdrop_with_product_off_the_frame)
{
    const pimg_plain_params *pp = &pimg_detect_plain_params; /* the shipped settings */
    const int w = 800, h = 600;
    const double cx = 650, cy = 450, rx = 350, ry = 300;
    const double truth[4] = {300, 150, 800, 600}; /* the ellipse clipped by the frame */
    pimg_tensor *t = pimg_tensor_new(w, h, 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float *p = pimg_tensor_at(t, x, y);
            double u = (x + 0.5 - cx) / rx, v = (y + 0.5 - cy) / ry;
            if (u * u + v * v <= 1) {
                int stripe = (x / 40) % 2; /* a two-coloured product pulls a plain fit apart */
                p[0] = stripe ? 0.15f : 0.8f;
                p[1] = 0.2f;
                p[2] = stripe ? 0.7f : 0.1f;
            } else {
                p[0] = p[1] = p[2] = 0.9f - 0.05f * (float)x / w;
            }
        }
    pimg_scene *s = NULL;
    ck_assert_int_eq(pimg_scene_make(t, PIMG_SAL_SIDE, &s, NULL), PIMG_OK);
    double pbs[PIMG_PLAIN_MAXBOX][4], pb[4];
    pimg_plain_stats ps;
    int npb = 0;
    ck_assert_int_eq(pimg_scene_backdrop_box(s, pp, pbs, &npb, &ps), 1);
    ck_assert_msg(ps.sigma < 3 && ps.share > 0.6 && ps.share < 0.8, "sigma %.2f share %.2f", ps.sigma, ps.share);
    ck_assert_int_eq(ps.big_edges, 2);
    for (int k = 0; k < 4; k++)
        pb[k] = pbs[0][k] * s->scale;
    ck_assert_msg(pimg_box_iou(pb, truth) >= 0.9, "backdrop box iou %.3f", pimg_box_iou(pb, truth));
    pimg_scene_free(s);
    pimg_detection d;
    ck_assert_int_eq(pimg_detect_run(NULL, t, 0, &d, NULL), PIMG_OK);
    ck_assert(d.found);
    ck_assert_msg(pimg_box_iou(d.box, truth) >= 0.9, "detector iou %.3f", pimg_box_iou(d.box, truth));
    pimg_detection_clear(&d);
    pimg_tensor_free(t);
}
END_TEST

/* Lines that cross the whole frame on a smooth field (power lines on a sky) depart from the
 * backdrop and reach all four edges while covering little of their box: not a product, so
 * the photo is not taken for plain. */
START_TEST(plain_backdrop_rejects_frame_spanning_lines)
{
    const pimg_plain_params *pp = &pimg_detect_plain_params; /* the shipped settings */
    const int w = 800, h = 600;
    pimg_tensor *t = pimg_tensor_new(w, h, 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float *p = pimg_tensor_at(t, x, y);
            /* two diagonals and a horizontal wire, 10 px wide, on a pale blue sky */
            int line = abs(y - x * h / w) < 8 || abs(y - (w - x) * h / w) < 8 || abs(y - 200) < 5;
            p[0] = line ? 0.1f : 0.6f;
            p[1] = line ? 0.1f : 0.75f;
            p[2] = line ? 0.1f : 0.95f - 0.1f * (float)y / h;
        }
    pimg_scene *s = NULL;
    ck_assert_int_eq(pimg_scene_make(t, PIMG_SAL_SIDE, &s, NULL), PIMG_OK);
    double pbs[PIMG_PLAIN_MAXBOX][4];
    pimg_plain_stats ps;
    int npb = 0;
    int r = pimg_scene_backdrop_box(s, pp, pbs, &npb, &ps);
    ck_assert_msg(ps.sigma < 3 && ps.share >= 0.6, "sigma %.2f share %.2f", ps.sigma, ps.share);
    ck_assert_int_eq(ps.big_edges, 4);
    ck_assert(ps.big_fill < 0.5);
    ck_assert_int_eq(r, 2); /* still a candidate, not plain */
    pimg_scene_free(s);
    pimg_tensor_free(t);
}
END_TEST

/* A solid product filling the lower part of the frame from edge to edge (a cymbal seen from
 * above, a toolbox lid) on a dark graded backdrop, with its top edge either a smooth arc (a
 * product) or a saw-tooth ridge (a mountain range under a sky). Both cover most of the ring. */
static pimg_tensor *frame_crossing_scene(int w, int h, int ridge)
{
    pimg_tensor *t = pimg_tensor_new(w, h, 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float *p = pimg_tensor_at(t, x, y);
            double u = (x + 0.5 - w / 2.0) / (0.75 * w);
            double top = ridge ? 0.45 * h + 0.2 * h * fabs(fmod(x / (0.1 * w), 2.0) - 1.0)
                               : 0.4 * h + 0.3 * h * u * u; /* the arc reaches the sides at 0.53 h */
            if (y >= top) {
                p[0] = 0.75f - 0.1f * (float)y / h;
                p[1] = 0.45f;
                p[2] = 0.2f;
            } else {
                p[0] = p[1] = p[2] = 0.12f + 0.03f * (float)y / h;
            }
        }
    return t;
}

/* The frame-crossing rule: a product that runs off three edges leaves less than min_share of
 * the ring to the backdrop, so neither first rule holds, yet the ring outside the product fits
 * its backdrop closely: plain, with the product's box. Off (cross_share 0), the photo is not
 * even a candidate. A part that splits the frame like a horizon (two opposite edges) with a
 * ragged top covering little of its box is not taken for a product. */
START_TEST(plain_backdrop_frame_crossing_rule)
{
    const pimg_plain_params *pp = &pimg_detect_plain_params; /* the shipped settings */
    const int w = 600, h = 800;
    const double truth[4] = {0, 0.4 * h, w, h};
    pimg_tensor *t = frame_crossing_scene(w, h, 0);
    pimg_scene *s = NULL;
    ck_assert_int_eq(pimg_scene_make(t, PIMG_SAL_SIDE, &s, NULL), PIMG_OK);
    double pbs[PIMG_PLAIN_MAXBOX][4], pb[4];
    pimg_plain_stats ps;
    int npb = 0;
    ck_assert_int_eq(pimg_scene_backdrop_box(s, pp, pbs, &npb, &ps), 1);
    ck_assert_msg(ps.share < pp->min_share && ps.sigma < pp->span_sigma, "share %.2f sigma %.2f", ps.share, ps.sigma);
    ck_assert_msg(ps.cross_share >= pp->cross_share, "cross share %.2f", ps.cross_share);
    ck_assert_int_eq(ps.big_edges, 3);
    ck_assert_int_eq(ps.big_span, 1);
    ck_assert(ps.big_fill >= pp->span_fill);
    for (int k = 0; k < 4; k++)
        pb[k] = pbs[0][k] * s->scale;
    ck_assert_msg(pimg_box_iou(pb, truth) >= 0.9, "backdrop box iou %.3f", pimg_box_iou(pb, truth));
    pimg_plain_params off = *pp;
    off.cross_share = 0;
    ck_assert_int_eq(pimg_scene_backdrop_box(s, &off, pbs, &npb, &ps), 0);
    pimg_scene_free(s);
    /* The full detector takes the product's box. */
    pimg_detection d;
    ck_assert_int_eq(pimg_detect_run(NULL, t, 0, &d, NULL), PIMG_OK);
    ck_assert(d.found);
    ck_assert_msg(pimg_box_iou(d.box, truth) >= 0.9, "detector iou %.3f", pimg_box_iou(d.box, truth));
    pimg_detection_clear(&d);
    pimg_tensor_free(t);

    /* The ragged ridge: the same ring statistics, but the part covers too little of its box. */
    t = frame_crossing_scene(w, h, 1);
    ck_assert_int_eq(pimg_scene_make(t, PIMG_SAL_SIDE, &s, NULL), PIMG_OK);
    int r = pimg_scene_backdrop_box(s, pp, pbs, &npb, &ps);
    ck_assert_msg(ps.cross_share >= pp->cross_share && ps.sigma < pp->span_sigma, "cross %.2f sigma %.2f",
                  ps.cross_share, ps.sigma);
    ck_assert_int_eq(ps.big_span, 1);
    ck_assert_msg(ps.big_fill < pp->span_fill, "fill %.2f", ps.big_fill);
    ck_assert_int_ne(r, 1);
    pimg_scene_free(s);
    pimg_tensor_free(t);
}
END_TEST

/* A product entering from a corner (two adjacent edges, no split of the frame): the cross rule
 * takes a backdrop residual up to cross_sigma, above the first rule's max_sigma. */
START_TEST(plain_backdrop_corner_product_rule)
{
    const int w = 800, h = 600;
    const double cx = 650, cy = 450, rx = 450, ry = 330;
    pimg_tensor *t = pimg_tensor_new(w, h, 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float *p = pimg_tensor_at(t, x, y);
            double u = (x + 0.5 - cx) / rx, v = (y + 0.5 - cy) / ry;
            p[0] = p[1] = p[2] = u * u + v * v <= 1 ? 0.95f : 0.3f + 0.05f * (float)(x + y) / (w + h);
        }
    pimg_scene *s = NULL;
    ck_assert_int_eq(pimg_scene_make(t, PIMG_SAL_SIDE, &s, NULL), PIMG_OK);
    double pbs[PIMG_PLAIN_MAXBOX][4];
    pimg_plain_stats ps;
    int npb = 0;
    pimg_plain_params pp = pimg_detect_plain_params;
    ck_assert_int_eq(pimg_scene_backdrop_box(s, &pp, pbs, &npb, &ps), 1);
    ck_assert_int_eq(ps.big_edges, 2);
    ck_assert_int_eq(ps.big_span, 0);
    ck_assert_msg(ps.cross_share > ps.share, "cross %.2f share %.2f", ps.cross_share, ps.share);
    pp.max_sigma = ps.sigma / 2; /* the first two rules fail */
    pp.wide_share = 0;
    pp.cross_sigma = ps.sigma + 0.5;
    pp.cross_share = ps.cross_share;
    ck_assert_int_eq(pimg_scene_backdrop_box(s, &pp, pbs, &npb, &ps), 1);
    pp.cross_sigma = ps.sigma / 2; /* residual too large for the cross rule too */
    ck_assert_int_ne(pimg_scene_backdrop_box(s, &pp, pbs, &npb, &ps), 1);
    ck_assert(pimg_detect_plain_params.cross_sigma > pimg_detect_plain_params.max_sigma);
    pimg_scene_free(s);
    pimg_tensor_free(t);
}
END_TEST

/* Linked parts: a dark wing running off the left edge and a bright head inside the frame,
 * joined by a band that departs from the backdrop only weakly (below the foreground
 * threshold). Without the link the inner candidate is the head alone; with it the wing is
 * more of the same product, so the inner candidate is the whole bird (and equals the union). */
START_TEST(plain_backdrop_linked_parts)
{
    const int w = 800, h = 600;
    pimg_tensor *t = pimg_tensor_new(w, h, 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float *p = pimg_tensor_at(t, x, y);
            double u = (x + 0.5 - 520) / 100, v = (y + 0.5 - 350) / 100;
            float g = 0.5f + 0.02f * (float)y / h;
            if (u * u + v * v <= 1)
                g = 0.9f; /* the head */
            else if (x < 200 && y >= 250 && y < 450)
                g = 0.15f; /* the wing, off the left edge */
            else if (x < 440 && y >= 320 && y < 380)
                g = 0.44f; /* the low-contrast body between them */
            p[0] = p[1] = p[2] = g;
        }
    pimg_scene *s = NULL;
    ck_assert_int_eq(pimg_scene_make(t, PIMG_SAL_SIDE, &s, NULL), PIMG_OK);
    double pbs[PIMG_PLAIN_MAXBOX][4];
    pimg_plain_stats ps;
    int npb = 0;
    pimg_plain_params pp = pimg_detect_plain_params;
    pp.link = 0;
    ck_assert_int_eq(pimg_scene_backdrop_box(s, &pp, pbs, &npb, &ps), 1);
    ck_assert_int_eq(npb, 2);
    ck_assert_msg(pbs[0][0] * s->scale < 10, "union x0 %.1f", pbs[0][0] * s->scale);
    ck_assert_msg(fabs(pbs[1][0] * s->scale - 420) < 15, "inner x0 %.1f", pbs[1][0] * s->scale);
    pp.link = 0.3; /* the band departs by more than 0.3 of the threshold */
    ck_assert_int_eq(pimg_scene_backdrop_box(s, &pp, pbs, &npb, &ps), 1);
    ck_assert_int_eq(npb, 1);
    ck_assert_msg(pbs[0][0] * s->scale < 10, "union x0 %.1f", pbs[0][0] * s->scale);
    ck_assert(pimg_detect_plain_params.link > 0 && pimg_detect_plain_params.link < 1);
    pimg_scene_free(s);
    pimg_tensor_free(t);
}
END_TEST

/* The backdrop box of a not-plain photo wins a near tie against the best proposal (it is a
 * witness independent of the ranker), but not a clear loss; the order of scores is kept. */
START_TEST(backdrop_candidate_wins_near_ties)
{
    ck_assert(pimg_detect_backdrop_score(1.0) > 1.0 + 0.05);  /* 0.05 behind: wins */
    ck_assert(pimg_detect_backdrop_score(1.0) < 1.0 + 0.75);  /* 0.75 behind: loses */
    ck_assert(pimg_detect_backdrop_score(-2.0) < pimg_detect_backdrop_score(-1.9));
    ck_assert(fabs((pimg_detect_backdrop_score(0.3) - 0.3) - (pimg_detect_backdrop_score(-4.0) + 4.0)) < 1e-9);
}
END_TEST

/* A linear libsvm model file with one weight w on feature k (1-based), the rest zero. */
static void write_linear(const char *path, int k, double w)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "svm_type c_svc\nkernel_type linear\nnr_class 2\ntotal_sv 1\nrho 0\nlabel 1 -1\n"
               "nr_sv 1 0\nSV\n1 %d:%.17g\n", k, w);
    fclose(f);
}

/* The re-ranker: its file sits beside the scorer's and is loaded, saved and removed with it,
 * and it re-orders only the scorer's top PIMG_RERANK_K boxes. */
START_TEST(rerank_file_and_pick)
{
    char p[64];
    ck_assert_int_eq(pimg_detect_rerank_path("models/detect.svm", p, sizeof p), 0);
    ck_assert_str_eq(p, "models/detect_rerank.svm");
    ck_assert_int_eq(pimg_detect_rerank_path("m", p, sizeof p), 0);
    ck_assert_str_eq(p, "m_rerank.svm");
    ck_assert_int_eq(pimg_detect_rerank_path("models/detect.svm", p, 8), -1);

    /* scorer: prefers small boxes (feature 1 is the box's share of the frame); re-ranker:
     * prefers large ones, strongly enough to win over the scorer */
    write_linear("/tmp/pimg-rr-test.svm", 1, -1.0);
    write_linear("/tmp/pimg-rr-test_rerank.svm", 1, 10.0);
    pimg_detect_model *m = NULL;
    ck_assert_int_eq(pimg_detect_model_load("/tmp/pimg-rr-test.svm", &m, NULL), PIMG_OK);
    unlink("/tmp/pimg-rr-test.svm");
    unlink("/tmp/pimg-rr-test_rerank.svm");
    ck_assert_ptr_nonnull(pimg_detect_model_rerank(m));

    double box[4] = {100, 80, 300, 240};
    pimg_tensor *t = ellipse_scene(400, 300, box);
    pimg_scene *s = NULL;
    ck_assert_int_eq(pimg_scene_make(t, PIMG_SAL_SIDE, &s, NULL), PIMG_OK);
    enum { NB = 7 };
    double b[NB][4], sc[NB];
    for (int i = 0; i < NB; i++) { /* squares of growing size around the centre */
        double h = 10 + 5 * i;
        b[i][0] = s->w / 2.0 - h;
        b[i][1] = s->h / 2.0 - h;
        b[i][2] = s->w / 2.0 + h;
        b[i][3] = s->h / 2.0 + h;
    }
    ck_assert_int_eq(pimg_detect_pick(m, s, b, NB, sc), 0); /* the scorer alone: the smallest */
    pimg_detect_model *plain_m = NULL;
    ck_assert_int_eq(pimg_detect_rerank_pick(plain_m, s, b, NB, sc), 0);
    /* with the re-ranker: the largest of the scorer's 5 best, never a box outside them */
    ck_assert_int_eq(pimg_detect_rerank_pick(m, s, b, NB, sc), PIMG_RERANK_K - 1);

    /* save writes the pair; saving without a re-ranker removes the stale file */
    ck_assert_int_eq(pimg_detect_model_save(m, "/tmp/pimg-rr-test2.svm", NULL), PIMG_OK);
    ck_assert_int_eq(access("/tmp/pimg-rr-test2_rerank.svm", F_OK), 0);
    pimg_detect_model_set_rerank(m, NULL);
    ck_assert_ptr_null(pimg_detect_model_rerank(m));
    ck_assert_int_eq(pimg_detect_model_save(m, "/tmp/pimg-rr-test2.svm", NULL), PIMG_OK);
    ck_assert_int_ne(access("/tmp/pimg-rr-test2_rerank.svm", F_OK), 0);
    unlink("/tmp/pimg-rr-test2.svm");
    pimg_scene_free(s);
    pimg_tensor_free(t);
    pimg_detect_model_free(m);
}
END_TEST

/* The nested-box rule: a candidate inside the winner that scores nearly as well and keeps most
 * of its foreground replaces it; a candidate that scores too low, cuts the product in half, or
 * lies outside the winner does not. Also the foreground count it relies on. */
START_TEST(nested_box_rule)
{
    double box[4] = {100, 80, 300, 240};
    pimg_tensor *t = ellipse_scene(400, 300, box);
    pimg_scene *s = NULL;
    ck_assert_int_eq(pimg_scene_make(t, PIMG_SAL_SIDE, &s, NULL), PIMG_OK);
    ck_assert_int_eq(s->w, 160);
    double f = 1 / s->scale; /* tensor -> working pixels */
    double whole[4] = {0, 0, s->w, s->h};
    double tight[4] = {box[0] * f - 2, box[1] * f - 2, box[2] * f + 2, box[3] * f + 2};
    double corner[4] = {0, 0, 25, 25};
    /* the ellipse is the foreground: all of it inside its box, none in an empty corner, and
     * about its area (pi/4 of its box) */
    long fg_all = pimg_scene_box_count(s, PIMG_SAL_BLEND, 0.5f, whole);
    long fg_tight = pimg_scene_box_count(s, PIMG_SAL_BLEND, 0.5f, tight);
    double ell = M_PI / 4 * (box[2] - box[0]) * f * (box[3] - box[1]) * f;
    ck_assert_int_eq(fg_tight, fg_all);
    ck_assert_int_eq(pimg_scene_box_count(s, PIMG_SAL_BLEND, 0.5f, corner), 0);
    ck_assert(fg_all > 0.7 * ell && fg_all < 1.3 * ell);
    ck_assert_int_eq(pimg_scene_box_count(s, PIMG_SAL_BLEND, 2.0f, whole), 0); /* maps are 0..1 */

    const pimg_nest_params *np = &pimg_detect_nest_params;
    double half[4] = {tight[0], tight[1], (tight[0] + tight[2]) / 2, tight[3]}; /* half the product */
    double around[4] = {tight[0] - 15, tight[1] - 15, tight[2] + 15, tight[3] + 15}; /* the winner */
    double outside[4] = {tight[0] + 10, tight[1], tight[2] + 30, tight[3]}; /* sticks out of it */
    double b[4][4];
    memcpy(b[0], around, sizeof around);
    memcpy(b[1], tight, sizeof tight);
    memcpy(b[2], half, sizeof half);
    memcpy(b[3], outside, sizeof outside);
    double sc[4] = {1.0, 1.0 - 0.8 * np->margin, 0.99, 0.99};
    ck_assert_int_eq(pimg_detect_prefer_nested(s, np, b, 4, sc, 0), 1); /* the tight box wins */
    sc[1] = 1.0 - 1.2 * np->margin; /* scores too low: the winner stands (half is not enough) */
    ck_assert_int_eq(pimg_detect_prefer_nested(s, np, b, 4, sc, 0), 0);
    /* not nested: the same tight box as the winner has nothing smaller that keeps its product */
    sc[1] = 1.0;
    ck_assert_int_eq(pimg_detect_prefer_nested(s, np, b, 4, sc, 1), 1);
    /* a candidate as large as the winner is not "without the surroundings" */
    pimg_nest_params loose = *np;
    loose.max_area = 0.01;
    sc[1] = 0.9;
    ck_assert_int_eq(pimg_detect_prefer_nested(s, &loose, b, 4, sc, 0), 0);
    ck_assert_int_eq(pimg_detect_prefer_nested(s, np, b, 0, sc, -1), -1);
    pimg_scene_free(s);
    pimg_tensor_free(t);
}
END_TEST

START_TEST(no_model_and_missing_model_file)
{
    pimg_detect_model *m = NULL;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_detect_model_load("/nonexistent/detect.svm", &m, &err), PIMG_ERR_NOT_FOUND);
    ck_assert_ptr_null(m);
    /* A file that is not a libsvm model is an error, not "missing". */
    char path[] = "/tmp/pimg-detect-test-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "hello\n", 6), 6);
    close(fd);
    ck_assert_int_eq(pimg_detect_model_load(path, &m, &err), PIMG_ERR_BAD_INPUT);
    unlink(path);
}
END_TEST

START_TEST(model_file_round_trip_scores_identically)
{
    pimg_detect_model *m = shipped_model();
    if (!m) {
        /* No shipped model in this checkout: train a tiny one on hand-made features instead. */
        struct svm_problem prob;
        static double y[8];
        static struct svm_node nodes[8][PIMG_SAL_FEAT_DIM + 1];
        static struct svm_node *x[8];
        for (int i = 0; i < 8; i++) {
            y[i] = i < 4 ? 1 : -1;
            for (int j = 0; j < PIMG_SAL_FEAT_DIM; j++) {
                nodes[i][j].index = j + 1;
                nodes[i][j].value = (i < 4 ? 0.6 : 0.2) + 0.01 * ((i * 7 + j) % 5);
            }
            nodes[i][PIMG_SAL_FEAT_DIM].index = -1;
            x[i] = nodes[i];
        }
        prob.l = 8;
        prob.y = y;
        prob.x = x;
        struct svm_parameter par = {0};
        par.svm_type = C_SVC;
        par.kernel_type = LINEAR;
        par.C = 1;
        par.eps = 1e-3;
        par.cache_size = 10;
        ck_assert_ptr_null(svm_check_parameter(&prob, &par));
        /* the model points into prob's memory: save it while that is alive */
        struct svm_model *svm = svm_train(&prob, &par);
        ck_assert_int_eq(svm_save_model("/tmp/pimg-detect-tiny.svm", svm), 0);
        svm_free_and_destroy_model(&svm);
        ck_assert_int_eq(pimg_detect_model_load("/tmp/pimg-detect-tiny.svm", &m, NULL), PIMG_OK);
        unlink("/tmp/pimg-detect-tiny.svm");
    }
    double box[4] = {100, 80, 300, 240};
    pimg_tensor *t = ellipse_scene(400, 300, box);
    pimg_scene *s = NULL;
    ck_assert_int_eq(pimg_scene_make(t, PIMG_SAL_SIDE, &s, NULL), PIMG_OK);
    float f1[PIMG_SAL_FEAT_DIM], f2[PIMG_SAL_FEAT_DIM];
    double sb[4] = {box[0] / s->scale, box[1] / s->scale, box[2] / s->scale, box[3] / s->scale};
    pimg_scene_features(s, sb, f1);
    pimg_scene_features(s, sb, f2);
    ck_assert_mem_eq(f1, f2, sizeof f1);
    double a = pimg_detect_model_score(m, f1);
    ck_assert_int_eq(pimg_detect_model_save(m, "/tmp/pimg-detect-rt.svm", NULL), PIMG_OK);
    pimg_detect_model *m2 = NULL;
    ck_assert_int_eq(pimg_detect_model_load("/tmp/pimg-detect-rt.svm", &m2, NULL), PIMG_OK);
    unlink("/tmp/pimg-detect-rt.svm");
    ck_assert_double_eq_tol(pimg_detect_model_score(m2, f1), a, 1e-6 * (1 + fabs(a)));
    pimg_detect_model_free(m2);
    pimg_detect_model_free(m);
    pimg_scene_free(s);
    pimg_tensor_free(t);
}
END_TEST

START_TEST(composites_are_found_and_timed_at_1024)
{
    char od[1024], bd[1024];
    snprintf(od, sizeof od, "%s/objects", data_dir());
    snprintf(bd, sizeof bd, "%s/train", data_dir());
    pimg_composite_src *src = NULL;
    pimg_error err = {0};
    ck_assert_msg(pimg_composite_src_load(od, bd, &src, &err) == PIMG_OK, "%s", err.msg);
    pimg_detect_model *m = shipped_model();
    uint64_t rng = 2024;
    int hits = 0, n = 8;
    double worst_ms = 0, total_ms = 0;
    for (int i = 0; i < n; i++) {
        pimg_composite_spec sp = {.side = 1024, .shadow = -1, .background = -1, .min_fill = 0.5, .max_fill = 0.9};
        sp.object = (i * 5 + 1) % pimg_composite_n_objects(src);
        pimg_tensor *t = NULL, *alpha = NULL;
        double box[4];
        ck_assert_int_eq(pimg_composite_make(src, &sp, &rng, &t, &alpha, box, NULL), PIMG_OK);
        /* the exact box is the alpha's bounding box */
        ck_assert(box[2] > box[0] && box[3] > box[1]);
        ck_assert_float_ge(alpha->data[(size_t)((int)(box[1] + box[3]) / 2) * alpha->w + (int)(box[0] + box[2]) / 2],
                           0.0f);
        /* CPU time of this process: the 2-core machine is shared, so wall time measures the
         * neighbours; the budget is about our own cost. */
        struct timespec a, b;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
        pimg_detection d;
        ck_assert_int_eq(pimg_detect_run(m, t, 1, &d, NULL), PIMG_OK); /* with the costlier mask */
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
        double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
        worst_ms = fmax(worst_ms, ms);
        total_ms += ms;
        hits += d.found && pimg_box_iou(d.box, box) >= 0.5;
        pimg_detection_clear(&d);
        pimg_tensor_free(t);
        pimg_tensor_free(alpha);
    }
    fprintf(stderr, "plain composites at 1024 px: %d/%d found, %.1f ms CPU mean, %.1f ms worst\n", hits, n,
            total_ms / n, worst_ms);
    ck_assert_int_ge(hits, n - 1);
#ifndef __SANITIZE_ADDRESS__
    /* the budget holds for the optimised build; sanitizer builds run several times slower */
    ck_assert_double_lt(total_ms / n, 80.0);
#endif
    pimg_detect_model_free(m);
    pimg_composite_src_free(src);
}
END_TEST

/* --train-seed redraws the training composites only: validation (where hyper-parameters are
 * chosen) and test stay the same, so models of different draws compare on one validation. */
static char *dump_labels(const pimg_detect_train_opts *o, const char *split, const char *dir)
{
    pimg_error err = {0};
    ck_assert_msg(pimg_detect_dump_composites(o, split, 6, dir, &err) == PIMG_OK, "%s", err.msg);
    char path[1200];
    snprintf(path, sizeof path, "%s/labels.csv", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char *buf = calloc(1, 8192);
    ck_assert_ptr_nonnull(buf);
    size_t n = fread(buf, 1, 8191, f);
    fclose(f);
    ck_assert_uint_gt(n, 100);
    return buf;
}

START_TEST(train_seed_redraws_training_composites_only)
{
    char dir[] = "/tmp/pimg-tseed-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char sub[1100];
    pimg_detect_train_opts o;
    pimg_detect_train_opts_default(&o);
    o.data_dir = data_dir();
    char *lab[2][2];
    static const char *const splits[2] = {"train", "val"};
    for (int k = 0; k < 2; k++) {
        o.train_seed = k ? 7 : 0;
        for (int s = 0; s < 2; s++) {
            snprintf(sub, sizeof sub, "%s/%s%d", dir, splits[s], k);
            lab[k][s] = dump_labels(&o, splits[s], sub);
        }
    }
    ck_assert_str_ne(lab[0][0], lab[1][0]); /* other training composites (boxes, kinds) */
    ck_assert_str_eq(lab[0][1], lab[1][1]); /* the same validation composites */
    for (int k = 0; k < 2; k++)
        for (int s = 0; s < 2; s++)
            free(lab[k][s]);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("detect");
    TCase *tc = tcase_create("core");
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, plain_product_found_with_tight_box_and_mask);
    tcase_add_test(tc, train_seed_redraws_training_composites_only);
    tcase_add_test(tc, plain_backdrop_box_and_test);
    tcase_add_test(tc, plain_backdrop_wide_rule);
    tcase_add_test(tc, plain_backdrop_frame_crossing_rule);
    tcase_add_test(tc, plain_backdrop_corner_product_rule);
    tcase_add_test(tc, plain_backdrop_linked_parts);
    tcase_add_test(tc, backdrop_candidate_wins_near_ties);
    tcase_add_test(tc, plain_backdrop_with_product_off_the_frame);
    tcase_add_test(tc, plain_backdrop_rejects_frame_spanning_lines);
    tcase_add_test(tc, rerank_file_and_pick);
    tcase_add_test(tc, nested_box_rule);
    tcase_add_test(tc, no_model_and_missing_model_file);
    tcase_add_test(tc, model_file_round_trip_scores_identically);
    tcase_add_test(tc, composites_are_found_and_timed_at_1024);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
