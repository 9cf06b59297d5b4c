/* orient_fv_test.c — unit tests for lib/orient_fv: quarter turns of the thumbnail, the dense
 * root-SIFT descriptors, the vocabulary (PCA + GMM), the banded Fisher vector against VLFeat's
 * own vl_fisher_encode, the softmax posterior, the ranking SVM, the model file, and the
 * decision through a Fisher-vector model. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vl/fisher.h>

#include "orient_fv.h"
#include "orient_internal.h"
#include "testutil.h"

#define S PIMG_ORIENT_FV_SIDE
#define N (S * S)

/* A textured test picture: bright top, dark bottom, a few slanted bars (deterministic). */
static void picture(float *g, unsigned long long seed)
{
    unsigned long long st = seed;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            float v = y < S / 3 ? 0.85f : 0.25f + 0.3f * (float)x / S;
            if (((x + 2 * y) / 9) % 3 == 0 && y > S / 2)
                v += 0.3f;
            g[y * S + x] = v + 0.05f * (float)pimg_test_urand(&st);
        }
}

START_TEST(turns_are_clockwise_and_four_make_the_identity)
{
    float *a = malloc(sizeof(float) * N * 3), *b = a + N, *c = b + N;
    for (int i = 0; i < N; i++)
        a[i] = (float)i;
    pimg_orient_fv_turn(a, 1, b);
    /* Clockwise: the top-left pixel goes to the top-right corner, bottom-left to top-left. */
    ck_assert_float_eq(b[S - 1], a[0]);
    ck_assert_float_eq(b[0], a[(S - 1) * S]);
    pimg_orient_fv_turn(b, 3, c);
    ck_assert_int_eq(memcmp(a, c, sizeof(float) * N), 0);
    pimg_orient_fv_turn(a, 2, b);
    pimg_orient_fv_turn(b, 2, c);
    ck_assert_int_eq(memcmp(a, c, sizeof(float) * N), 0);
    free(a);
}
END_TEST

START_TEST(descriptors_are_dense_root_sift)
{
    float *g = malloc(sizeof(float) * N);
    float *desc = malloc(sizeof(float) * PIMG_ORIENT_FV_MAX_DESC * PIMG_ORIENT_FV_SIFT),
          xy[2 * PIMG_ORIENT_FV_MAX_DESC];
    picture(g, 1);
    int n = pimg_orient_fv_descriptors(g, desc, xy);
    /* Two scales on a centred grid of step 8: 15x15 + 14x14 keypoints. */
    ck_assert_int_eq(n, 15 * 15 + 14 * 14);
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int b = 0; b < PIMG_ORIENT_FV_SIFT; b++) {
            ck_assert(desc[i * PIMG_ORIENT_FV_SIFT + b] >= 0);
            ss += desc[i * PIMG_ORIENT_FV_SIFT + b] * desc[i * PIMG_ORIENT_FV_SIFT + b];
        }
        /* Root of an L1-normalised histogram has unit L2 norm (flat patches give all zeros). */
        ck_assert(fabs(ss - 1) < 1e-3 || ss < 1e-6);
        ck_assert(xy[2 * i] >= 0 && xy[2 * i] < S && xy[2 * i + 1] >= 0 && xy[2 * i + 1] < S);
    }
    free(g);
    free(desc);
}
END_TEST

START_TEST(turned_descriptors_are_those_of_the_turned_thumbnail)
{
    float *g = malloc(sizeof(float) * N * 2), *t = g + N;
    float *d0 = malloc(sizeof(float) * PIMG_ORIENT_FV_MAX_DESC * PIMG_ORIENT_FV_SIFT * 3),
          *d1 = d0 + PIMG_ORIENT_FV_MAX_DESC * PIMG_ORIENT_FV_SIFT,
          *d2 = d1 + PIMG_ORIENT_FV_MAX_DESC * PIMG_ORIENT_FV_SIFT;
    float xy0[2 * PIMG_ORIENT_FV_MAX_DESC], xy1[2 * PIMG_ORIENT_FV_MAX_DESC],
        xy2[2 * PIMG_ORIENT_FV_MAX_DESC];
    picture(g, 3);
    int n = pimg_orient_fv_descriptors(g, d0, xy0);
    for (int j = 0; j < 4; j++) {
        pimg_orient_fv_turn(g, j, t);
        ck_assert_int_eq(pimg_orient_fv_descriptors(t, d1, xy1), n);
        pimg_orient_fv_turn_descriptors(d0, xy0, n, j, d2, xy2);
        /* Same keypoint set (another order): match each permuted keypoint by position. */
        for (int i = 0; i < n; i++) {
            int hit = -1;
            for (int k = 0; k < n && hit < 0; k++)
                if (xy1[2 * k] == xy2[2 * i] && xy1[2 * k + 1] == xy2[2 * i + 1] &&
                    (i < 15 * 15) == (k < 15 * 15)) /* same scale */
                    hit = k;
            ck_assert_int_ge(hit, 0);
            for (int b = 0; b < PIMG_ORIENT_FV_SIFT; b++)
                ck_assert_float_eq_tol(d2[i * PIMG_ORIENT_FV_SIFT + b], d1[hit * PIMG_ORIENT_FV_SIFT + b],
                                       1e-3f);
        }
    }
    free(g);
    free(d0);
}
END_TEST

/* A vocabulary trained on the descriptors of a few pictures and their turns. */
static pimg_orient_fv_vocab *small_vocab(void)
{
    float *g = malloc(sizeof(float) * N * 2), *t = g + N;
    float *all = malloc(sizeof(float) * 16 * PIMG_ORIENT_FV_MAX_DESC * PIMG_ORIENT_FV_SIFT),
          xy[2 * PIMG_ORIENT_FV_MAX_DESC];
    size_t n = 0;
    for (int p = 0; p < 4; p++) {
        picture(g, 10 + p);
        for (int j = 0; j < 4; j++) {
            pimg_orient_fv_turn(g, j, t);
            n += pimg_orient_fv_descriptors(t, all + n * PIMG_ORIENT_FV_SIFT, xy);
        }
    }
    pimg_orient_fv_vocab *v = malloc(sizeof *v);
    ck_assert_int_eq(pimg_orient_fv_vocab_train(all, n, 1, v, NULL), PIMG_OK);
    ck_assert_int_eq(pimg_orient_fv_vocab_train(all, 10, 1, v, NULL), PIMG_ERR_BAD_INPUT);
    ck_assert_int_eq(pimg_orient_fv_vocab_train(all, n, 1, v, NULL), PIMG_OK);
    free(g);
    free(all);
    return v;
}

START_TEST(vocabulary_is_orthonormal_pca_and_a_proper_gmm)
{
    pimg_orient_fv_vocab *v = small_vocab();
    for (int a = 0; a < PIMG_ORIENT_FV_PCA; a++)
        for (int b = a; b < PIMG_ORIENT_FV_PCA; b++) {
            double dot = 0;
            for (int d = 0; d < PIMG_ORIENT_FV_SIFT; d++)
                dot += v->pca[a][d] * v->pca[b][d];
            ck_assert_double_eq_tol(dot, a == b ? 1.0 : 0.0, 1e-4);
        }
    double ps = 0;
    for (int k = 0; k < PIMG_ORIENT_FV_K; k++) {
        ps += v->priors[k];
        for (int d = 0; d < PIMG_ORIENT_FV_PCA; d++)
            ck_assert(v->covs[k * PIMG_ORIENT_FV_PCA + d] > 0);
    }
    ck_assert_double_eq_tol(ps, 1.0, 1e-4);
    /* Same data, same seed: the same vocabulary (training must be reproducible). */
    pimg_orient_fv_vocab *w = small_vocab();
    ck_assert_int_eq(memcmp(v, w, sizeof *v), 0);
    free(v);
    free(w);
}
END_TEST

START_TEST(banded_fisher_vector_matches_vlfeat)
{
    pimg_orient_fv_vocab *v = small_vocab();
    float *g = malloc(sizeof(float) * N), *fv = malloc(sizeof(float) * PIMG_ORIENT_FV_DIM);
    picture(g, 99);
    ck_assert_int_eq(pimg_orient_fv_encode(v, g, fv, NULL), PIMG_OK);
    /* Reference: VLFeat on the projected descriptors of each region (its layout: all mean
     * terms, then all variance terms). */
    float *desc = malloc(sizeof(float) * PIMG_ORIENT_FV_MAX_DESC * PIMG_ORIENT_FV_SIFT),
          xy[2 * PIMG_ORIENT_FV_MAX_DESC];
    float *pj = malloc(sizeof(float) * PIMG_ORIENT_FV_MAX_DESC * PIMG_ORIENT_FV_PCA);
    float *ref = malloc(sizeof(float) * PIMG_ORIENT_FV_REGDIM);
    int n = pimg_orient_fv_descriptors(g, desc, xy);
    for (int r = 0; r < PIMG_ORIENT_FV_NREG; r++) {
        int m = 0;
        for (int i = 0; i < n; i++) {
            int row = (int)(xy[2 * i + 1] * 3 / S), col = (int)(xy[2 * i] * 3 / S);
            if (!(r == 0 || (r <= 3 && row == r - 1) || (r > 3 && col == r - 4)))
                continue;
            for (int k = 0; k < PIMG_ORIENT_FV_PCA; k++) {
                double s = 0;
                for (int b = 0; b < PIMG_ORIENT_FV_SIFT; b++)
                    s += (double)v->pca[k][b] * (desc[i * PIMG_ORIENT_FV_SIFT + b] - v->pca_mean[b]);
                pj[m * PIMG_ORIENT_FV_PCA + k] = (float)s;
            }
            m++;
        }
        ck_assert_int_gt(m, 0);
        vl_fisher_encode(ref, VL_TYPE_FLOAT, v->means, PIMG_ORIENT_FV_PCA, PIMG_ORIENT_FV_K, v->covs,
                         v->priors, pj, m, VL_FISHER_FLAG_IMPROVED);
        const float *got = fv + (size_t)r * PIMG_ORIENT_FV_REGDIM;
        double nrm = 0;
        for (int k = 0; k < PIMG_ORIENT_FV_K; k++)
            for (int d = 0; d < PIMG_ORIENT_FV_PCA; d++) {
                ck_assert_float_eq_tol(got[k * 2 * PIMG_ORIENT_FV_PCA + d], ref[k * PIMG_ORIENT_FV_PCA + d],
                                       2e-4f);
                ck_assert_float_eq_tol(got[k * 2 * PIMG_ORIENT_FV_PCA + PIMG_ORIENT_FV_PCA + d],
                                       ref[(PIMG_ORIENT_FV_K + k) * PIMG_ORIENT_FV_PCA + d], 2e-4f);
            }
        for (int j = 0; j < PIMG_ORIENT_FV_REGDIM; j++)
            nrm += got[j] * got[j];
        ck_assert_double_eq_tol(nrm, 1.0, 1e-4);
    }
    free(ref);
    free(pj);
    free(desc);
    free(g);
    free(fv);
    free(v);
}
END_TEST

START_TEST(posterior_is_a_softmax_of_the_turn_scores)
{
    double score[4] = {0.1, 2.0, -1.0, 0.5}, post[4];
    pimg_orient_fv_posterior(score, 0.25, post);
    double s = 0;
    for (int r = 0; r < 4; r++)
        s += post[r];
    ck_assert_double_eq_tol(s, 1.0, 1e-12);
    ck_assert(post[1] > post[3] && post[3] > post[0] && post[0] > post[2]);
    ck_assert_double_eq_tol(post[1] / post[3], exp((2.0 - 0.5) / 0.25), 1e-6);
    /* Equal scores: no preference, so the decision rule keeps the photo as it is. */
    double flat[4] = {1, 1, 1, 1};
    int rot;
    double conf;
    pimg_orient_fv_posterior(flat, 0.25, post);
    pimg_orient_decide(post, 0.5, &rot, &conf);
    ck_assert_int_eq(rot, 0);
}
END_TEST

START_TEST(ranking_svm_puts_the_upright_version_first)
{
    /* Examples whose upright version has a larger first coordinate and noise elsewhere. */
    enum { NEX = 40 };
    float *fv = calloc((size_t)NEX * 4 * PIMG_ORIENT_FV_DIM, sizeof(float));
    float *w = malloc(sizeof(float) * PIMG_ORIENT_FV_DIM);
    unsigned long long st = 7;
    for (int i = 0; i < NEX; i++)
        for (int k = 0; k < 4; k++) {
            float *x = fv + ((size_t)i * 4 + k) * PIMG_ORIENT_FV_DIM;
            x[0] = k == 0 ? 1.0f : 0.2f * (float)pimg_test_urand(&st);
            for (int d = 1; d < 50; d++)
                x[d] = (float)pimg_test_urand(&st) - 0.5f;
        }
    char use[NEX];
    for (int i = 0; i < NEX; i++)
        use[i] = i < NEX / 2;
    ck_assert_int_eq(pimg_orient_fv_rank_train(fv, NEX, use, 1.0, 1, w, NULL), PIMG_OK);
    ck_assert(w[0] > 0);
    /* Held-out half: the upright version scores highest. */
    for (int i = NEX / 2; i < NEX; i++) {
        double s[4] = {0};
        for (int k = 0; k < 4; k++)
            for (int d = 0; d < 50; d++)
                s[k] += w[d] * fv[((size_t)i * 4 + k) * PIMG_ORIENT_FV_DIM + d];
        ck_assert(s[0] > s[1] && s[0] > s[2] && s[0] > s[3]);
    }
    /* Deterministic for a seed. */
    float *w2 = malloc(sizeof(float) * PIMG_ORIENT_FV_DIM);
    ck_assert_int_eq(pimg_orient_fv_rank_train(fv, NEX, use, 1.0, 1, w2, NULL), PIMG_OK);
    ck_assert_int_eq(memcmp(w, w2, sizeof(float) * PIMG_ORIENT_FV_DIM), 0);
    free(w2);
    free(w);
    free(fv);
}
END_TEST

START_TEST(model_file_round_trip_and_errors)
{
    char dir[256], path[512], bad[512];
    pimg_test_mkdtemp(dir, sizeof dir, "ofv");
    snprintf(path, sizeof path, "%s/m.svm", dir);
    snprintf(bad, sizeof bad, "%s/bad.svm", dir);
    pimg_orient_fv_model *m = calloc(1, sizeof *m);
    for (int d = 0; d < PIMG_ORIENT_FV_DIM; d++)
        m->w[d] = (float)d * 1e-3f;
    m->vocab.priors[3] = 0.5f;
    m->temperature = 0.25;
    ck_assert_int_eq(pimg_orient_fv_write(m, path, NULL), PIMG_OK);
    ck_assert(pimg_orient_fv_is_model_file(path));
    pimg_orient_fv_model *r = NULL;
    ck_assert_int_eq(pimg_orient_fv_read(path, &r, NULL), PIMG_OK);
    ck_assert_int_eq(memcmp(r->w, m->w, sizeof m->w), 0);
    ck_assert_float_eq(r->vocab.priors[3], 0.5f);
    ck_assert_double_eq(r->temperature, 0.25);
    free(r);
    /* Truncated file and a file of another kind. */
    FILE *f = fopen(bad, "wb");
    fwrite("PIMGOFV1", 8, 1, f);
    fwrite(m->w, 100, 1, f);
    fclose(f);
    r = NULL;
    ck_assert_int_eq(pimg_orient_fv_read(bad, &r, NULL), PIMG_ERR_BAD_INPUT);
    ck_assert_ptr_null(r);
    f = fopen(bad, "wb");
    fputs("svm_type c_svc\n", f);
    fclose(f);
    ck_assert(!pimg_orient_fv_is_model_file(bad));
    ck_assert_int_eq(pimg_orient_fv_read(bad, &r, NULL), PIMG_ERR_BAD_INPUT);
    snprintf(bad, sizeof bad, "%s/none.svm", dir);
    ck_assert_int_eq(pimg_orient_fv_read(bad, &r, NULL), PIMG_ERR_NOT_FOUND);
    free(m);
    pimg_test_rmtree(dir);
}
END_TEST

/* Through pimg_orient_predict: a model whose w prefers bright tops turns an upside-down
 * picture back (answer 180) when confident and leaves it alone under a strict threshold. */
START_TEST(predict_uses_the_fisher_vector_model)
{
    pimg_orient_model *m = calloc(1, sizeof *m);
    m->fv = calloc(1, sizeof *m->fv);
    pimg_orient_fv_vocab *v = small_vocab();
    m->fv->vocab = *v;
    free(v);
    m->fv->temperature = 0.25;
    /* w = FV(upright) - mean FV(turned) of the training picture: a one-example ranker. */
    float *g = malloc(sizeof(float) * N * 2), *t = g + N,
          *fv = malloc(sizeof(float) * PIMG_ORIENT_FV_DIM * 4);
    picture(g, 10);
    for (int j = 0; j < 4; j++) {
        pimg_orient_fv_turn(g, j, t);
        ck_assert_int_eq(pimg_orient_fv_encode(&m->fv->vocab, t, fv + (size_t)j * PIMG_ORIENT_FV_DIM, NULL),
                         PIMG_OK);
    }
    for (int d = 0; d < PIMG_ORIENT_FV_DIM; d++)
        m->fv->w[d] = 10 * (fv[d] - (fv[PIMG_ORIENT_FV_DIM + d] + fv[2 * PIMG_ORIENT_FV_DIM + d] +
                                     fv[3 * PIMG_ORIENT_FV_DIM + d]) /
                                        3);
    /* The picture upside down, as an RGB tensor. */
    pimg_orient_fv_turn(g, 2, t);
    pimg_tensor *img = pimg_tensor_new(S, S, 3);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < 3; c++)
            img->data[3 * i + c] = t[i];
    int rot;
    double conf;
    m->min_turn_prob = 0.5;
    ck_assert_int_eq(pimg_orient_predict(m, img, &rot, &conf, NULL), PIMG_OK);
    ck_assert_int_eq(rot, 180);
    ck_assert(conf >= 0.5 && conf <= 1.0);
    m->min_turn_prob = 1.01;
    ck_assert_int_eq(pimg_orient_predict(m, img, &rot, &conf, NULL), PIMG_OK);
    ck_assert_int_eq(rot, 0);
    pimg_tensor_free(img);
    free(g);
    free(fv);
    pimg_orient_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("orient_fv");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, turns_are_clockwise_and_four_make_the_identity);
    tcase_add_test(tc, descriptors_are_dense_root_sift);
    tcase_add_test(tc, turned_descriptors_are_those_of_the_turned_thumbnail);
    tcase_add_test(tc, vocabulary_is_orthonormal_pca_and_a_proper_gmm);
    tcase_add_test(tc, banded_fisher_vector_matches_vlfeat);
    tcase_add_test(tc, posterior_is_a_softmax_of_the_turn_scores);
    tcase_add_test(tc, ranking_svm_puts_the_upright_version_first);
    tcase_add_test(tc, model_file_round_trip_and_errors);
    tcase_add_test(tc, predict_uses_the_fisher_vector_model);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 1);
}
