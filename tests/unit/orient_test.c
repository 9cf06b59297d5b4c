/* orient_test.c — unit tests for lib/orient: feature layout and turn consistency, the
 * four-turn combination, the act-only-when-confident rule, the trainer's metrics, model loading
 * errors, and (with the shipped model) that a turned photo comes back upright. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "models.h"
#include "orient.h"
#include "orient_features.h"
#include "orient_internal.h"
#include "orient_train.h"
#include "pimg.h"
#include "pipeline.h"
#include "saliency.h"
#include "testutil.h"

/* Bright "sky" over a dark "ground" with a vertical gradient: a minimal upright scene. */
static pimg_tensor *scene(int w, int h)
{
    pimg_tensor *t = pimg_tensor_new(w, h, 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float *p = pimg_tensor_at(t, x, y);
            int sky = y < h / 2;
            p[0] = sky ? 0.55f : 0.25f;
            p[1] = sky ? 0.70f : 0.35f;
            p[2] = sky ? 0.95f : 0.15f;
        }
    return t;
}

START_TEST(features_have_the_documented_layout)
{
    pimg_tensor *t = scene(320, 200);
    pimg_tensor *th = pimg_orient_thumb(t);
    ck_assert_int_eq(th->w, PIMG_ORIENT_THUMB);
    ck_assert_int_eq(th->h, PIMG_ORIENT_THUMB);
    float f[PIMG_ORIENT_NFEAT];
    ck_assert_int_eq(pimg_orient_features(th, log(320.0 / 200.0), f, NULL), PIMG_OK);
    /* Cell (0,0) is sky: brighter L* and bluer (more negative b*) than the last cell (ground). */
    int last = (PIMG_ORIENT_GRID * PIMG_ORIENT_GRID - 1) * 6;
    ck_assert(f[0] > f[last]);
    ck_assert(f[4] < f[last + 4]);
    /* Uniform cells have no spread. */
    ck_assert_float_eq_tol(f[1], 0.0f, 1e-4f);
    ck_assert_float_eq_tol(f[PIMG_ORIENT_NFEAT - 1], (float)log(1.6), 1e-6f);
    /* Wrong shape is refused. */
    ck_assert_int_eq(pimg_orient_features(t, 0.0, f, NULL), PIMG_ERR_BAD_INPUT);
    pimg_tensor_free(t);
    pimg_tensor_free(th);
}
END_TEST

START_TEST(turn_features_are_the_features_of_the_turned_thumbnail)
{
    pimg_tensor *t = scene(300, 200);
    pimg_tensor *th = pimg_orient_thumb(t);
    float(*turned)[PIMG_ORIENT_NFEAT] = malloc(sizeof(float) * 4 * PIMG_ORIENT_NFEAT);
    ck_assert_int_eq(pimg_orient_turn_features(th, 0.4, turned, NULL), PIMG_OK);
    pimg_tensor *r = pimg_tensor_rot90(th, 90);
    float f[PIMG_ORIENT_NFEAT];
    ck_assert_int_eq(pimg_orient_features(r, -0.4, f, NULL), PIMG_OK);
    for (int i = 0; i < PIMG_ORIENT_NFEAT; i++)
        ck_assert_float_eq_tol(turned[1][i], f[i], 1e-6f);
    /* A half turn moves the sky to the bottom: first cell darker than in the upright copy. */
    ck_assert(turned[2][0] < turned[0][0]);
    ck_assert_float_eq_tol(turned[3][PIMG_ORIENT_NFEAT - 1], -0.4f, 1e-6f);
    free(turned);
    pimg_tensor_free(r);
    pimg_tensor_free(th);
    pimg_tensor_free(t);
}
END_TEST

START_TEST(combining_four_turns_agrees_with_a_consistent_classifier)
{
    /* A classifier that says "needs 1 quarter" for the image, hence (1 - j) for the image
     * turned by j: the combined posterior must favour 1. */
    double q[4][4];
    for (int j = 0; j < 4; j++)
        for (int c = 0; c < 4; c++)
            q[j][c] = c == ((1 - j + 4) % 4) ? 0.7 : 0.1;
    double post[4];
    pimg_orient_combine(q, post);
    /* Geometric mean of four consistent 0.7 votes against 0.1s: 0.7 after normalising. */
    ck_assert_double_eq_tol(post[1], 0.7, 1e-9);
    ck_assert(post[1] > post[0] && post[1] > post[2] && post[1] > post[3]);
    double s = post[0] + post[1] + post[2] + post[3];
    ck_assert_double_eq_tol(s, 1.0, 1e-9);
    /* A classifier with no opinion gives a flat posterior. */
    for (int j = 0; j < 4; j++)
        for (int c = 0; c < 4; c++)
            q[j][c] = 0.25;
    pimg_orient_combine(q, post);
    for (int r = 0; r < 4; r++)
        ck_assert_double_eq_tol(post[r], 0.25, 1e-9);
}
END_TEST

START_TEST(decision_turns_only_when_confident)
{
    int rot;
    double conf;
    const double sure90[4] = {0.05, 0.9, 0.03, 0.02};
    pimg_orient_decide(sure90, 0.8, &rot, &conf);
    ck_assert_int_eq(rot, 90);
    ck_assert_double_eq_tol(conf, 0.9, 1e-12);
    /* Same evidence, stricter threshold: leave it alone and report the upright posterior. */
    pimg_orient_decide(sure90, 0.95, &rot, &conf);
    ck_assert_int_eq(rot, 0);
    ck_assert_double_eq_tol(conf, 0.05, 1e-12);
    const double up[4] = {0.6, 0.1, 0.2, 0.1};
    pimg_orient_decide(up, 0.0, &rot, &conf);
    ck_assert_int_eq(rot, 0);
    const double half[4] = {0.01, 0.01, 0.97, 0.01};
    pimg_orient_decide(half, 0.8, &rot, &conf);
    ck_assert_int_eq(rot, 180);
}
END_TEST

START_TEST(metrics_count_false_turns_and_confusion)
{
    const int truth[] = {0, 0, 0, 0, 90, 90, 180, 270};
    const int pred[] = {0, 0, 0, 90, 90, 0, 180, 90};
    cJSON *m = pimg_orient_metrics(truth, pred, 8);
    ck_assert_double_eq_tol(cJSON_GetObjectItem(m, "accuracy")->valuedouble, 5.0 / 8, 1e-12);
    ck_assert_double_eq_tol(cJSON_GetObjectItem(m, "false_turn")->valuedouble, 0.25, 1e-12);
    ck_assert_double_eq_tol(cJSON_GetObjectItem(m, "left_alone")->valuedouble, 0.25, 1e-12);
    cJSON *row0 = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "confusion"), 0);
    ck_assert_int_eq(cJSON_GetArrayItem(row0, 0)->valueint, 3);
    ck_assert_int_eq(cJSON_GetArrayItem(row0, 1)->valueint, 1);
    cJSON_Delete(m);
}
END_TEST

START_TEST(missing_or_corrupt_models_are_reported)
{
    pimg_orient_model *m = NULL;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_orient_model_load("/nonexistent/orient.svm", &m, &err), PIMG_ERR_NOT_FOUND);
    ck_assert_ptr_null(m);
    char path[] = "/tmp/pimg-orient-test-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "garbage\n", 8), 8);
    close(fd);
    ck_assert_int_ne(pimg_orient_model_load(path, &m, &err), PIMG_OK);
    ck_assert_ptr_null(m);
    unlink(path);
    /* No model: never turns. */
    pimg_tensor *t = scene(64, 48);
    int rot = 7;
    double conf = 7;
    ck_assert_int_eq(pimg_orient_predict(NULL, t, &rot, &conf, NULL), PIMG_OK);
    ck_assert_int_eq(rot, 0);
    ck_assert_double_eq(conf, 0.0);
    pimg_tensor_free(t);
}
END_TEST

/* A small round-2 (rbf) model trained here on a dozen train photos, when the shipped model is
 * of the other kind: fast to train (one grid point, two folds) and enough to compare paths. */
static pimg_orient_model *small_rbf_model(char *dir, size_t n)
{
    const char *photos[] = {"opencv-doc__building.jpg", "opencv-doc__001.jpg", "tuxtype-data__kcas0.jpg",
                            "tuxtype-data__kcas1.jpg", "tuxtype-data__kcas4.jpg", "tuxtype-data__kcas6.jpg",
                            "darknet__kite.jpg", "darknet__person.jpg", "darknet__horses.jpg",
                            "kphotoalbum__skagen.jpg", "kphotoalbum__cold_water.jpg", "tuxpaint-data__cliff.jpg"};
    pimg_test_mkdtemp(dir, n, "orient-rbf");
    int have = 0;
    for (size_t i = 0; i < sizeof photos / sizeof *photos; i++) {
        char cwd[512], src[1024], dst[1024];
        int a = snprintf(src, sizeof src, "%s/../shared/data/train/%s", getcwd(cwd, sizeof cwd) ? cwd : ".", photos[i]);
        int b = snprintf(dst, sizeof dst, "%s/%s", dir, photos[i]);
        if (a > 0 && a < (int)sizeof src && b > 0 && b < (int)sizeof dst && access(src, R_OK) == 0 &&
            symlink(src, dst) == 0)
            have++;
    }
    if (have < 8)
        return NULL;
    pimg_orient_train_opts o;
    pimg_orient_train_opts_default(&o);
    const char *dirs[1] = {dir};
    o.data_dirs = dirs;
    o.n_data_dirs = 1;
    o.method = PIMG_ORIENT_METHOD_RBF;
    o.variants = 1;
    o.composites = 0;
    o.folds = 2;
    o.max_iter = 1;
    o.test_frac = 0.25;
    pimg_orient_model *m = NULL;
    cJSON *metrics = NULL;
    ck_assert_int_eq(pimg_orient_train(&o, &m, &metrics, NULL), PIMG_OK);
    cJSON_Delete(metrics);
    return m;
}

/* The fast dense path gives libsvm's own probabilities (same support vectors, same coupling). */
START_TEST(fast_probabilities_match_libsvm)
{
    pimg_orient_model *m = NULL;
    char dir[256] = "";
    if (access("models/orient.svm", R_OK) == 0)
        ck_assert_int_eq(pimg_orient_model_load("models/orient.svm", &m, NULL), PIMG_OK);
    if (!m || m->fv) {
        /* The shipped model is the Fisher-vector ranker (tests/unit/orient_fv_test.c). */
        pimg_orient_model_free(m);
        m = small_rbf_model(dir, sizeof dir);
        if (!m) {
            fprintf(stderr, "orient_test: skipping libsvm comparison (no rbf model, train photos missing)\n");
            pimg_test_rmtree(dir);
            return;
        }
    }
    pimg_tensor *t = scene(200, 150);
    pimg_tensor *th = pimg_orient_thumb(t);
    float(*f)[PIMG_ORIENT_NFEAT] = malloc(sizeof(float) * 4 * PIMG_ORIENT_NFEAT);
    ck_assert_int_eq(pimg_orient_turn_features(th, log(200.0 / 150.0), f, NULL), PIMG_OK);
    struct svm_node x[PIMG_ORIENT_NFEAT + 1];
    for (int j = 0; j < 4; j++) {
        double fast[4], ref[4], p[4];
        pimg_orient_class_probs(m, f[j], fast);
        for (int i = 0; i < PIMG_ORIENT_NFEAT; i++) {
            x[i].index = i + 1;
            x[i].value = (f[j][i] - m->mean[i]) * m->scale[i];
        }
        x[PIMG_ORIENT_NFEAT].index = -1;
        svm_predict_probability(m->svm, x, p);
        for (int c = 0; c < 4; c++)
            ref[m->labels[c]] = p[c];
        for (int c = 0; c < 4; c++)
            ck_assert_double_eq_tol(fast[c], ref[c], 1e-4);
    }
    free(f);
    pimg_tensor_free(th);
    pimg_tensor_free(t);
    pimg_orient_model_free(m);
    if (*dir)
        pimg_test_rmtree(dir);
}
END_TEST

/* Integration: the shipped model and the whole analysis pipeline on a real photo, turned
 * counter-clockwise by 90° on disk: pimg must answer the clockwise quarter turn back. The photo
 * is a training photo (a mountain landscape the model is sure of: posterior ~0.88, threshold
 * 0.63): this checks the plumbing (turn, encode, decode, four-turn scoring, the answer's
 * direction), not generalisation, which the trainer's held-out metrics measure. */
START_TEST(turned_photo_comes_back_upright)
{
    const char *photo = "../shared/data/train/lomiri-wallpapers-16.04__aitzgorri_by_Aitzol_Berasategi.jpg";
    if (access("models/orient.svm", R_OK) != 0 || access(photo, R_OK) != 0) {
        fprintf(stderr, "orient_test: skipping integration (models/orient.svm or %s missing)\n", photo);
        return;
    }
    pimg_models *models = NULL;
    ck_assert_int_eq(pimg_models_load("models", &models, NULL), PIMG_OK);
    ck_assert_ptr_nonnull(pimg_models_orient(models));
    pimg_image *img = NULL;
    ck_assert_int_eq(pimg_image_load_file(photo, NULL, &img, NULL), PIMG_OK);
    void *jpeg = NULL;
    size_t len = 0;
    int expect[4] = {0, 270, 180, 90}; /* after turning clockwise by 90 * k */
    int box0[4] = {0, 0, 0, 0}, w0 = 0, h0 = 0;
    for (int k = 0; k < 4; k++) {
        pimg_image *src = NULL;
        ck_assert_int_eq(pimg_image_load_file(photo, NULL, &src, NULL), PIMG_OK);
        ck_assert_int_eq(pimg_image_rot90(src, 90 * k, NULL), PIMG_OK);
        pimg_jpeg_opts jo = {.quality = 92, .max_side = 1024};
        ck_assert_int_eq(pimg_image_encode_jpeg(src, &jo, &jpeg, &len, NULL), PIMG_OK);
        pimg_image_free(src);
        pimg_image *turned = NULL;
        ck_assert_int_eq(pimg_image_load_buffer(jpeg, len, NULL, &turned, NULL), PIMG_OK);
        free(jpeg);
        pimg_pipeline_opts o;
        pimg_pipeline_opts_default(&o);
        o.ops = PIMG_OP_ORIENT | PIMG_OP_DETECT;
        pimg_analysis a;
        ck_assert_int_eq(pimg_analysis_init(&a), PIMG_OK);
        ck_assert_int_eq(pimg_pipeline_enhance(models, turned, &o, &a, &jpeg, &len, NULL), PIMG_OK);
        ck_assert_int_eq(a.rotation, expect[k]);
        /* The written image has the upright photo's orientation (landscape again). */
        ck_assert_int_gt(a.out_width, a.out_height);
        /* Detection starts on the tensor as decoded and is redone once the photo is turned:
         * the box (in the turned input's pixels) is the upright photo's box turned with it. */
        ck_assert(a.has_box);
        if (k == 0) {
            memcpy(box0, a.box, sizeof box0);
            w0 = a.width;
            h0 = a.height;
        } else {
            double b[4] = {box0[0], box0[1], box0[2], box0[3]}, t[4];
            int w = w0, h = h0;
            for (int r = 0; r < k; r++) { /* clockwise quarter turn of a box in a w x h frame */
                t[0] = h - b[3], t[1] = b[0], t[2] = h - b[1], t[3] = b[2];
                memcpy(b, t, sizeof b);
                int tmp = w;
                w = h;
                h = tmp;
            }
            double got[4] = {a.box[0], a.box[1], a.box[2], a.box[3]};
            ck_assert_int_eq(a.width, w);
            ck_assert_double_ge(pimg_box_iou(b, got), 0.9);
        }
        free(jpeg);
        pimg_analysis_clear(&a);
        pimg_image_free(turned);
    }
    pimg_image_free(img);
    pimg_models_release(models);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("orient");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, features_have_the_documented_layout);
    tcase_add_test(tc, turn_features_are_the_features_of_the_turned_thumbnail);
    tcase_add_test(tc, combining_four_turns_agrees_with_a_consistent_classifier);
    tcase_add_test(tc, decision_turns_only_when_confident);
    tcase_add_test(tc, metrics_count_false_turns_and_confusion);
    tcase_add_test(tc, missing_or_corrupt_models_are_reported);
    tcase_add_test(tc, fast_probabilities_match_libsvm);
    tcase_add_test(tc, turned_photo_comes_back_upright);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 1);
}
