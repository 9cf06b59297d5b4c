/* level_model_test.c — unit tests for the learned tilt model (lib/level_model.c, lib/level_train.c):
 * the unfolded and line histograms find tilted straight edges (sign included) and keep the two
 * edge families apart, the candidate features peak at the true tilt, the posterior decision
 * (median, confidence, abstention, snap), the model file round trip and its errors, the
 * estimate with a model, and a small end-to-end training run. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vips/vips.h>

#include "level.h"
#include "level_internal.h"
#include "level_train.h"
#include "testutil.h"

/* Angle (degrees) of the strongest bin of channel c within ±lim of centre (0 or 90). */
static double peak_near(const pimg_level_hists *h, int c, double centre, double lim)
{
    int best = -1;
    for (int b = 0; b < PIMG_LEVEL_UBINS; b++) {
        double a = -90.0 + (b + 0.5) / 4.0, d = fmod(a - centre + 630.0, 180.0) - 90.0;
        if (fabs(d) <= lim && (best < 0 || h->h[c][b] > h->h[c][best]))
            best = b;
    }
    return -90.0 + (best + 0.5) / 4.0;
}

/* A hand-set model: the sharp straight-edge evidence of both families, nothing else. */
static void hand_model(pimg_level_model *m)
{
    memset(m, 0, sizeof *m);
    for (int j = 0; j < PIMG_LEVEL_NFEAT; j++)
        m->scale[j] = 1.0;
    m->w[0] = m->w[3] = 20.0;
    m->min_conf = 0.3;
    m->snap_deg = 0.35;
}

START_TEST(histograms_keep_families_apart_and_see_the_tilt)
{
    pimg_tensor *t = pimg_test_bars(640, 480);
    pimg_tensor *ccw = pimg_tensor_rotate(t, -7.0); /* turned 7° counter-clockwise */
    pimg_level_hists *h = malloc(sizeof *h);
    ck_assert_int_eq(pimg_level_hists_compute(ccw, h, NULL), PIMG_OK);
    for (int c = 0; c < PIMG_LEVEL_NCHAN; c++)
        ck_assert(h->total[c] > 0);
    /* Vertical posts' edges near +7, the horizontal bars' near 7 - 90 = -83. */
    ck_assert_double_eq_tol(peak_near(h, 0, 0.0, 20.0), 7.0, 0.5);
    ck_assert_double_eq_tol(peak_near(h, 0, 90.0, 20.0), -83.0, 0.5);
    /* The long bars make the longest line channel peak at the same angle. */
    ck_assert_double_eq_tol(peak_near(h, 3, 90.0, 20.0), -83.0, 0.5);
    /* Features: the sharp evidence of the true candidate beats the untilted one. */
    double *f = malloc(sizeof(double) * PIMG_LEVEL_NCAND * PIMG_LEVEL_NFEAT);
    pimg_level_features(h, f);
    int k7 = (int)lround((7.0 - PIMG_LEVEL_CAND_MIN) / PIMG_LEVEL_CAND_STEP), k0 = 80;
    ck_assert_double_eq_tol(pimg_level_cand_deg(k7), 7.0, 1e-9);
    ck_assert(f[k7 * PIMG_LEVEL_NFEAT + 0] > f[k0 * PIMG_LEVEL_NFEAT + 0] + 0.5);
    ck_assert(f[k7 * PIMG_LEVEL_NFEAT + 3] > f[k0 * PIMG_LEVEL_NFEAT + 3] + 0.5);
    ck_assert_double_eq(f[k0 * PIMG_LEVEL_NFEAT + 22], 1.0); /* the zero-candidate flag */
    ck_assert_double_eq(f[k7 * PIMG_LEVEL_NFEAT + 22], 0.0);
    ck_assert_double_eq_tol(f[k7 * PIMG_LEVEL_NFEAT + 21], 7.0 / 20.0, 1e-12);
    free(f);
    free(h);
    pimg_tensor_free(t);
    pimg_tensor_free(ccw);
}
END_TEST

START_TEST(decision_from_posterior)
{
    double post[PIMG_LEVEL_NCAND], deg, conf;
    /* All mass on 5.0° and 5.25°: median 5, answer the mass-weighted 5.125, fully confident. */
    memset(post, 0, sizeof post);
    post[100] = 0.5;
    post[101] = 0.5;
    pimg_level_from_posterior(post, 0.3, 0.35, &deg, &conf);
    ck_assert_double_eq_tol(deg, 5.125, 1e-9);
    ck_assert_double_eq_tol(conf, 1.0, 1e-9);
    /* Flat: median near 0, little mass within ±1° -> abstain. */
    for (int k = 0; k < PIMG_LEVEL_NCAND; k++)
        post[k] = 1.0 / PIMG_LEVEL_NCAND;
    pimg_level_from_posterior(post, 0.3, 0.35, &deg, &conf);
    ck_assert_double_eq(deg, 0.0);
    ck_assert(conf < 0.1);
    /* Two modes, 60% at -8° and 40% at +12°: the median is the bigger one. */
    memset(post, 0, sizeof post);
    post[48] = 0.6;
    post[128] = 0.4;
    pimg_level_from_posterior(post, 0.3, 0.35, &deg, &conf);
    ck_assert_double_eq_tol(deg, -8.0, 1e-9);
    /* Under the snap angle: reported as 0 although confident. */
    memset(post, 0, sizeof post);
    post[81] = 1.0; /* 0.25° */
    pimg_level_from_posterior(post, 0.3, 0.35, &deg, &conf);
    ck_assert_double_eq(deg, 0.0);
    ck_assert_double_eq_tol(conf, 1.0, 1e-9);
}
END_TEST

START_TEST(estimate_with_a_model_finds_tilt_and_leaves_noise)
{
    pimg_level_model m;
    hand_model(&m);
    pimg_tensor *t = pimg_test_bars(600, 420);
    pimg_tensor *cw = pimg_tensor_rotate(t, 8.0); /* clockwise: levelling turns back by -8 */
    double deg, conf;
    ck_assert_int_eq(pimg_level_estimate_model(&m, cw, &deg, &conf, NULL), PIMG_OK);
    ck_assert_double_eq_tol(deg, -8.0, 0.5);
    ck_assert(conf >= 0.3);
    ck_assert_int_eq(pimg_level_estimate_model(&m, t, &deg, &conf, NULL), PIMG_OK);
    ck_assert_double_eq_tol(deg, 0.0, 0.35);
    /* Isotropic noise: no structure, no answer. */
    pimg_tensor *noise = pimg_tensor_new(300, 200, 3);
    unsigned long long s = 7;
    for (int i = 0; i < 300 * 200; i++) {
        float v = (float)pimg_test_urand(&s);
        for (int c = 0; c < 3; c++)
            noise->data[i * 3 + c] = v;
    }
    ck_assert_int_eq(pimg_level_estimate_model(&m, noise, &deg, &conf, NULL), PIMG_OK);
    ck_assert_double_eq(deg, 0.0);
    /* No model: the rule-based estimate. */
    ck_assert_int_eq(pimg_level_estimate_model(NULL, cw, &deg, &conf, NULL), PIMG_OK);
    ck_assert_double_eq_tol(deg, -8.0, 0.5);
    /* The shipped model, when present, levels the same scene. */
    if (access("models/level.model", R_OK) == 0) {
        pimg_level_model *sm = NULL;
        ck_assert_int_eq(pimg_level_model_load("models/level.model", &sm, NULL), PIMG_OK);
        ck_assert_int_eq(pimg_level_estimate_model(sm, cw, &deg, &conf, NULL), PIMG_OK);
        ck_assert_double_eq_tol(deg, -8.0, 0.6);
        pimg_level_model_free(sm);
    } else {
        fprintf(stderr, "level_model_test: no models/level.model, shipped-model check skipped\n");
    }
    pimg_tensor_free(noise);
    pimg_tensor_free(t);
    pimg_tensor_free(cw);
}
END_TEST

START_TEST(model_file_round_trip_and_errors)
{
    char dir[256], path[300], card[300];
    pimg_test_mkdtemp(dir, sizeof dir, "levelmodel");
    snprintf(path, sizeof path, "%s/level.model", dir);
    pimg_level_model m;
    hand_model(&m);
    m.mean[4] = 0.123456789012345678;
    m.w[22] = -1.0 / 3.0;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "model", "level");
    ck_assert_int_eq(pimg_level_model_save(&m, path, c, NULL), PIMG_OK);
    cJSON_Delete(c);
    pimg_level_card_path(path, card, sizeof card);
    ck_assert(strstr(card, "level.json") != NULL);
    ck_assert_int_eq(access(card, R_OK), 0);
    pimg_level_model *back = NULL;
    ck_assert_int_eq(pimg_level_model_load(path, &back, NULL), PIMG_OK);
    ck_assert(memcmp(back->w, m.w, sizeof m.w) == 0);
    ck_assert(memcmp(back->mean, m.mean, sizeof m.mean) == 0);
    ck_assert_double_eq(back->min_conf, m.min_conf);
    pimg_level_model_free(back);
    /* Missing: NOT_FOUND (the pipeline falls back to the rule); wrong content: BAD_INPUT. */
    char miss[300];
    snprintf(miss, sizeof miss, "%s/none.model", dir);
    pimg_error err = {0};
    ck_assert_int_eq(pimg_level_model_load(miss, &back, &err), PIMG_ERR_NOT_FOUND);
    FILE *f = fopen(path, "w");
    fputs("{\"features\": 3, \"w\": [1, 2, 3]}", f);
    fclose(f);
    ck_assert_int_eq(pimg_level_model_load(path, &back, &err), PIMG_ERR_BAD_INPUT);
    f = fopen(path, "w");
    fputs("not json", f);
    fclose(f);
    ck_assert_int_eq(pimg_level_model_load(path, &back, &err), PIMG_ERR_BAD_INPUT);
    pimg_test_rmtree(dir);
}
END_TEST

/* Writes t as a JPEG into dir/name. */
static void write_jpeg(const pimg_tensor *t, const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    size_t n = (size_t)t->w * t->h * 3;
    unsigned char *px = malloc(n);
    for (size_t i = 0; i < n; i++)
        px[i] = (unsigned char)lroundf(t->data[i] * 255.0f);
    VipsImage *im = vips_image_new_from_memory(px, n, t->w, t->h, 3, VIPS_FORMAT_UCHAR);
    ck_assert_int_eq(vips_jpegsave(im, p, "Q", 92, NULL), 0);
    g_object_unref(im);
    free(px);
}

START_TEST(training_end_to_end_on_synthetic_scenes)
{
    char dir[256];
    pimg_test_mkdtemp(dir, sizeof dir, "leveltrain");
    /* Six upright "shelf" scenes of different sizes and bar spacings (no labels.csv: every image
     * counts as upright). */
    for (int i = 0; i < 6; i++) {
        pimg_tensor *t = pimg_test_bars(360 + 40 * i, 260 + 20 * i);
        char name[32];
        snprintf(name, sizeof name, "s%d.jpg", i);
        write_jpeg(t, dir, name);
        pimg_tensor_free(t);
    }
    pimg_level_train_opts o;
    pimg_level_train_opts_default(&o);
    const char *dirs[1] = {dir};
    o.data_dirs = dirs;
    o.n_data_dirs = 1;
    o.copies = 4;
    o.test_frac = 0.34;
    pimg_level_model *m = NULL;
    cJSON *met = NULL;
    ck_assert_int_eq(pimg_level_train(&o, &m, &met, NULL), PIMG_OK);
    const cJSON *sp = cJSON_GetObjectItem(met, "split");
    ck_assert_int_eq(cJSON_GetObjectItem(sp, "photos_test")->valueint, 2);
    ck_assert_int_eq(cJSON_GetObjectItem(sp, "photos_train")->valueint, 4);
    /* Clear straight structure everywhere: the held-out scenes are levelled within a degree. */
    const cJSON *te = cJSON_GetObjectItem(met, "test");
    ck_assert_int_eq(cJSON_GetObjectItem(te, "copies")->valueint, 8);
    ck_assert(cJSON_GetObjectItem(te, "mae")->valuedouble < 1.0);
    ck_assert(cJSON_GetObjectItem(te, "untilted_mae")->valuedouble <= 0.4);
    /* Same options, same model bytes. */
    char p1[300], p2[300];
    snprintf(p1, sizeof p1, "%s/a.model", dir);
    snprintf(p2, sizeof p2, "%s/b.model", dir);
    ck_assert_int_eq(pimg_level_model_save(m, p1, NULL, NULL), PIMG_OK);
    pimg_level_model *m2 = NULL;
    cJSON *met2 = NULL;
    ck_assert_int_eq(pimg_level_train(&o, &m2, &met2, NULL), PIMG_OK);
    ck_assert_int_eq(pimg_level_model_save(m2, p2, NULL, NULL), PIMG_OK);
    FILE *a = fopen(p1, "rb"), *b = fopen(p2, "rb");
    int ca, cb, same = 1;
    do {
        ca = fgetc(a);
        cb = fgetc(b);
        same &= ca == cb;
    } while (ca != EOF && cb != EOF);
    fclose(a);
    fclose(b);
    ck_assert(same);
    /* No photos: BAD_INPUT. */
    char empty[256];
    pimg_test_mkdtemp(empty, sizeof empty, "levelempty");
    const char *edirs[1] = {empty};
    o.data_dirs = edirs;
    pimg_level_model *m3 = NULL;
    cJSON *met3 = NULL;
    ck_assert_int_eq(pimg_level_train(&o, &m3, &met3, NULL), PIMG_ERR_BAD_INPUT);
    pimg_level_model_free(m);
    pimg_level_model_free(m2);
    cJSON_Delete(met);
    cJSON_Delete(met2);
    pimg_test_rmtree(dir);
    pimg_test_rmtree(empty);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("level_model");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, histograms_keep_families_apart_and_see_the_tilt);
    tcase_add_test(tc, decision_from_posterior);
    tcase_add_test(tc, estimate_with_a_model_finds_tilt_and_leaves_noise);
    tcase_add_test(tc, model_file_round_trip_and_errors);
    tcase_add_test(tc, training_end_to_end_on_synthetic_scenes);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 1);
}
