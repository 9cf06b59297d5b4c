/* orient.c — the learned 0/90/180/270 orientation fix: loading the model (libsvm file plus its
 * JSON card holding the feature standardisation and the decision threshold), scoring an image
 * under its four quarter turns, and deciding whether to turn at all.
 *
 * The SVM is stored in a compact 8-bit form (orient_svmio.c) to keep the shipped file small.
 *
 * A wrong turn is far worse than none, so the rule is asymmetric: "upright" is the default and a
 * turn needs a posterior above the model's min_turn_prob, chosen at training time so that almost
 * no upright photo of the validation folds is turned. */
#include "orient.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "orient_internal.h"

void pimg_orient_card_path(const char *svm_path, char *buf, size_t n) { pimg_card_path(svm_path, ".svm", buf, n); }

/* Reads a JSON number array of exactly n items into out. */
static int read_floats(const cJSON *arr, float *out, int n)
{
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n)
        return -1;
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsNumber(it))
            return -1;
        out[i++] = (float)it->valuedouble;
    }
    return 0;
}

pimg_status pimg_orient_model_load(const char *path, pimg_orient_model **out, pimg_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return pimg_error_set(err, PIMG_ERR_NOT_FOUND, "%s: no orientation model", path);
    char card[4096];
    pimg_orient_card_path(path, card, sizeof card);
    /* a card that is not JSON fails the checks below, with their message */
    cJSON *j = NULL;
    pimg_status rs = pimg_json_read(card, (64 << 20) - 1, &j, NULL);
    if (rs && rs != PIMG_ERR_BAD_INPUT)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot read the model card beside the model", card);
    pimg_orient_model *m = calloc(1, sizeof *m);
    pimg_status st = PIMG_OK;
    if (!m) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (j && pimg_orient_fv_is_model_file(path)) {
        const cJSON *dec = cJSON_GetObjectItemCaseSensitive(j, "decision");
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(dec, "min_turn_prob");
        m->min_turn_prob = cJSON_IsNumber(mt) ? mt->valuedouble : PIMG_ORIENT_DEFAULT_MIN_TURN;
        st = pimg_orient_fv_read(path, &m->fv, err);
        goto out;
    }
    const cJSON *feat = cJSON_GetObjectItemCaseSensitive(j, "features");
    const cJSON *nf = cJSON_GetObjectItemCaseSensitive(feat, "count");
    if (!j || !cJSON_IsNumber(nf) || nf->valueint != PIMG_ORIENT_NFEAT ||
        read_floats(cJSON_GetObjectItemCaseSensitive(feat, "mean"), m->mean, PIMG_ORIENT_NFEAT) ||
        read_floats(cJSON_GetObjectItemCaseSensitive(feat, "scale"), m->scale, PIMG_ORIENT_NFEAT)) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: not an orientation model card for %d features", card,
                            PIMG_ORIENT_NFEAT);
        goto out;
    }
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(j, "decision");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(dec, "min_turn_prob");
    m->min_turn_prob = cJSON_IsNumber(mt) ? mt->valuedouble : PIMG_ORIENT_DEFAULT_MIN_TURN;
    if ((st = pimg_orient_qsvm_read(path, &m->qsvm, err)))
        goto out;
    if (m->qsvm->nfeat != PIMG_ORIENT_NFEAT || m->qsvm->nr_class != 4) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: model is for %d features, %d classes", path,
                            m->qsvm->nfeat, m->qsvm->nr_class);
        goto out;
    }
    if (!(m->svm = pimg_orient_qsvm_to_svm(m->qsvm))) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!svm_check_probability_model(m->svm)) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: model has no probability estimates", path);
        goto out;
    }
    svm_get_labels(m->svm, m->labels);
    if ((st = pimg_orient_model_prepare(m, err)))
        goto out;
    for (int i = 0; i < 4; i++)
        if (m->labels[i] < 0 || m->labels[i] > 3) {
            st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: unexpected class label %d", path, m->labels[i]);
            goto out;
        }
out:
    cJSON_Delete(j);
    if (st) {
        pimg_orient_model_free(m);
        return st;
    }
    *out = m;
    return PIMG_OK;
}

void pimg_orient_model_free(pimg_orient_model *m)
{
    if (!m)
        return;
    if (m->svm)
        svm_free_and_destroy_model(&m->svm);
    pimg_orient_qsvm_free(m->qsvm);
    free(m->sv);
    free(m->fv);
    free(m);
}

pimg_status pimg_orient_turn_features(const pimg_tensor *thumb, double log_aspect, float (*feats)[PIMG_ORIENT_NFEAT],
                                      pimg_error *err)
{
    for (int j = 0; j < 4; j++) {
        pimg_tensor *r = j ? pimg_tensor_rot90(thumb, 90 * j) : NULL;
        if (j && !r)
            return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        /* A quarter turn swaps width and height. */
        pimg_status st = pimg_orient_features(j ? r : thumb, j % 2 ? -log_aspect : log_aspect, feats[j], err);
        pimg_tensor_free(r);
        if (st)
            return st;
    }
    return PIMG_OK;
}

pimg_status pimg_orient_model_prepare(pimg_orient_model *m, pimg_error *err)
{
    const pimg_orient_qsvm *q = m->qsvm;
    free(m->sv);
    m->sv = malloc(sizeof(float) * (size_t)(q->l ? q->l : 1) * q->nfeat);
    if (!m->sv)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    for (int i = 0; i < q->l; i++)
        for (int f = 0; f < q->nfeat; f++)
            m->sv[(size_t)i * q->nfeat + f] =
                (float)((double)q->qmin[f] + (double)q->qstep[f] * q->q[(size_t)i * q->nfeat + f]);
    return PIMG_OK;
}

/* libsvm's sigmoid_predict: Platt's p = 1 / (1 + exp(A f + B)), written to avoid overflow. */
static double sigmoid_predict(double dec, double A, double B)
{
    double fApB = dec * A + B;
    return fApB >= 0 ? exp(-fApB) / (1.0 + exp(-fApB)) : 1.0 / (1.0 + exp(fApB));
}

/* libsvm's multiclass_probability (Wu, Lin and Weng 2004, method 2) for k = 4. */
static void couple(const double r[4][4], double p[4])
{
    enum { K = 4 };
    double Q[K][K], Qp[K], pQp, eps = 0.005 / K;
    for (int t = 0; t < K; t++) {
        p[t] = 1.0 / K;
        Q[t][t] = 0;
        for (int j = 0; j < t; j++) {
            Q[t][t] += r[j][t] * r[j][t];
            Q[t][j] = Q[j][t];
        }
        for (int j = t + 1; j < K; j++) {
            Q[t][t] += r[j][t] * r[j][t];
            Q[t][j] = -r[j][t] * r[t][j];
        }
    }
    for (int iter = 0; iter < 100; iter++) {
        pQp = 0;
        for (int t = 0; t < K; t++) {
            Qp[t] = 0;
            for (int j = 0; j < K; j++)
                Qp[t] += Q[t][j] * p[j];
            pQp += p[t] * Qp[t];
        }
        double max_error = 0;
        for (int t = 0; t < K; t++) {
            double e = fabs(Qp[t] - pQp);
            if (e > max_error)
                max_error = e;
        }
        if (max_error < eps)
            break;
        for (int t = 0; t < K; t++) {
            double diff = (-Qp[t] + pQp) / Q[t][t];
            p[t] += diff;
            pQp = (pQp + diff * (diff * Q[t][t] + 2 * Qp[t])) / (1 + diff) / (1 + diff);
            for (int j = 0; j < K; j++) {
                Qp[j] = (Qp[j] + diff * Q[t][j]) / (1 + diff);
                p[j] /= (1 + diff);
            }
        }
    }
}

void pimg_orient_class_probs(const pimg_orient_model *m, const float *feat, double probs[4])
{
    const pimg_orient_qsvm *q = m->qsvm;
    const int nf = PIMG_ORIENT_NFEAT;
    float x[PIMG_ORIENT_NFEAT];
    for (int i = 0; i < nf; i++)
        x[i] = (feat[i] - m->mean[i]) * m->scale[i];
    double *kv = malloc(sizeof(double) * (q->l ? q->l : 1));
    if (!kv) {
        for (int c = 0; c < 4; c++)
            probs[c] = 0.25; /* no memory: no opinion, so the decision rule never turns */
        return;
    }
    for (int s = 0; s < q->l; s++) {
        const float *v = m->sv + (size_t)s * nf;
        /* Eight independent partial sums: lets the compiler use SIMD lanes without
         * -ffast-math (a single float accumulator forces strict left-to-right order). */
        float lane[8] = {0};
        int i = 0;
        for (; i + 8 <= nf; i += 8)
            for (int k = 0; k < 8; k++) {
                float d = x[i + k] - v[i + k];
                lane[k] += d * d;
            }
        float acc = 0;
        for (; i < nf; i++) {
            float d = x[i] - v[i];
            acc += d * d;
        }
        for (int k = 0; k < 8; k++)
            acc += lane[k];
        kv[s] = exp(-q->gamma * acc);
    }
    int start[4] = {0};
    for (int c = 1; c < 4; c++)
        start[c] = start[c - 1] + q->nSV[c - 1];
    double r[4][4] = {{0}};
    int p = 0;
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++, p++) {
            double sum = 0;
            const double *coef1 = q->sv_coef + (size_t)(j - 1) * q->l, *coef2 = q->sv_coef + (size_t)i * q->l;
            for (int k = 0; k < q->nSV[i]; k++)
                sum += coef1[start[i] + k] * kv[start[i] + k];
            for (int k = 0; k < q->nSV[j]; k++)
                sum += coef2[start[j] + k] * kv[start[j] + k];
            sum -= q->rho[p];
            double pr = sigmoid_predict(sum, q->probA[p], q->probB[p]);
            pr = fmin(fmax(pr, 1e-7), 1 - 1e-7);
            r[i][j] = pr;
            r[j][i] = 1 - pr;
        }
    free(kv);
    double pc[4];
    couple((const double(*)[4])r, pc);
    for (int c = 0; c < 4; c++)
        probs[m->labels[c]] = pc[c];
}

void pimg_orient_combine(const double q[4][4], double post[4])
{
    double s[4], mx = -1e300;
    for (int r = 0; r < 4; r++) {
        s[r] = 0;
        for (int j = 0; j < 4; j++) {
            double p = q[j][(r - j + 4) % 4];
            s[r] += log(p > 1e-6 ? p : 1e-6);
        }
        s[r] /= 4.0;
        if (s[r] > mx)
            mx = s[r];
    }
    double z = 0;
    for (int r = 0; r < 4; r++)
        z += (post[r] = exp(s[r] - mx));
    for (int r = 0; r < 4; r++)
        post[r] /= z;
}

void pimg_orient_decide(const double post[4], double min_turn_prob, int *rotation, double *confidence)
{
    int best = 0;
    for (int r = 1; r < 4; r++)
        if (post[r] > post[best])
            best = r;
    if (best != 0 && post[best] >= min_turn_prob) {
        *rotation = 90 * best;
        *confidence = post[best];
    } else {
        *rotation = 0;
        *confidence = post[0];
    }
}

pimg_status pimg_orient_fv_model_posterior(const pimg_orient_model *m, const pimg_tensor *t, double post[4],
                                     pimg_error *err)
{
    enum { N = PIMG_ORIENT_FV_SIDE * PIMG_ORIENT_FV_SIDE, DESC = PIMG_ORIENT_FV_MAX_DESC * PIMG_ORIENT_FV_SIFT };
    /* Dense SIFT once; the three turned versions permute those descriptors (exact, 4x cheaper). */
    float *grey = malloc(sizeof(float) * (N + 2 * DESC + 4 * PIMG_ORIENT_FV_MAX_DESC + PIMG_ORIENT_FV_DIM));
    if (!grey)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    float *desc = grey + N, *tdesc = desc + DESC, *xy = tdesc + DESC, *txy = xy + 2 * PIMG_ORIENT_FV_MAX_DESC;
    float *fv = txy + 2 * PIMG_ORIENT_FV_MAX_DESC;
    double score[4] = {0};
    pimg_status st = pimg_orient_fv_grey(t, grey, err);
    int n = st ? 0 : pimg_orient_fv_descriptors(grey, desc, xy);
    if (!st && n <= 0)
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    for (int j = 0; j < 4 && !st; j++) {
        pimg_orient_fv_turn_descriptors(desc, xy, n, j, tdesc, txy);
        if (!(st = pimg_orient_fv_encode_desc(&m->fv->vocab, tdesc, txy, n, fv, err))) {
            double s = 0;
            for (int d = 0; d < PIMG_ORIENT_FV_DIM; d++)
                s += (double)m->fv->w[d] * fv[d];
            score[j] = s;
        }
    }
    free(grey);
    if (!st)
        pimg_orient_fv_posterior(score, m->fv->temperature, post);
    return st;
}

pimg_status pimg_orient_posterior(const pimg_orient_model *m, const pimg_tensor *t, double post[4], pimg_error *err)
{
    if (m->fv)
        return pimg_orient_fv_model_posterior(m, t, post, err);
    pimg_tensor *thumb = pimg_orient_thumb(t);
    if (!thumb)
        return pimg_error_set(err, t && t->c == 3 ? PIMG_ERR_NOMEM : PIMG_ERR_BAD_INPUT,
                              "orientation needs an RGB tensor");
    float (*feats)[PIMG_ORIENT_NFEAT] = malloc(sizeof(float) * 4 * PIMG_ORIENT_NFEAT);
    if (!feats) {
        pimg_tensor_free(thumb);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    pimg_status st = pimg_orient_turn_features(thumb, log((double)t->w / t->h), feats, err);
    pimg_tensor_free(thumb);
    if (!st) {
        double q[4][4];
        for (int j = 0; j < 4; j++)
            pimg_orient_class_probs(m, feats[j], q[j]);
        pimg_orient_combine(q, post);
    }
    free(feats);
    return st;
}

pimg_status pimg_orient_predict(const pimg_orient_model *m, const pimg_tensor *t, int *rotation,
                                double *confidence, pimg_error *err)
{
    *rotation = 0;
    *confidence = 0.0;
    if (!m)
        return PIMG_OK;
    double post[4];
    pimg_status st = pimg_orient_posterior(m, t, post, err);
    if (st)
        return st;
    pimg_orient_decide(post, m->min_turn_prob, rotation, confidence);
    return PIMG_OK;
}

static cJSON *float_array(const float *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

pimg_status pimg_orient_model_save(const pimg_orient_model *m, const char *svm_path, const cJSON *card,
                                   pimg_error *err)
{
    char cpath[4096];
    pimg_orient_card_path(svm_path, cpath, sizeof cpath);
    if (!m->qsvm && !m->fv)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "model has no stored form");
    pimg_status wst = m->fv ? pimg_orient_fv_write(m->fv, svm_path, err) : pimg_orient_qsvm_write(m->qsvm, svm_path, err);
    if (wst)
        return wst;
    cJSON *j = card ? cJSON_Duplicate(card, 1) : cJSON_CreateObject();
    if (!j)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    cJSON *dec = cJSON_AddObjectToObject(j, "decision");
    cJSON_AddNumberToObject(dec, "min_turn_prob", m->min_turn_prob);
    cJSON *f = cJSON_AddObjectToObject(j, "features");
    if (m->fv) {
        char fk[256];
        snprintf(fk, sizeof fk,
                 "VLFeat dense SIFT (step %d, bins 4 and 6) on a %dx%d grey thumbnail, root-SIFT, PCA %d, Fisher "
                 "vector over a %d-component GMM, pooled over whole + 3 rows + 3 columns; linear upright score "
                 "per turn",
                 PIMG_ORIENT_FV_STEP, PIMG_ORIENT_FV_SIDE, PIMG_ORIENT_FV_SIDE, PIMG_ORIENT_FV_PCA, PIMG_ORIENT_FV_K);
        cJSON_AddStringToObject(f, "kind", fk);
        cJSON_AddNumberToObject(f, "count", PIMG_ORIENT_FV_DIM);
        cJSON_AddNumberToObject(f, "temperature", m->fv->temperature);
    } else {
    char kind[160];
    snprintf(kind, sizeof kind, "Lab colour moments %dx%d grid + VLFeat UoCTTI HOG (cell %d) on a %dx%d thumbnail + log aspect",
             PIMG_ORIENT_GRID, PIMG_ORIENT_GRID, PIMG_ORIENT_HOG_CELL, PIMG_ORIENT_THUMB, PIMG_ORIENT_THUMB);
    cJSON_AddStringToObject(f, "kind", kind);
    cJSON_AddNumberToObject(f, "count", PIMG_ORIENT_NFEAT);
    cJSON_AddItemToObject(f, "mean", float_array(m->mean, PIMG_ORIENT_NFEAT));
    cJSON_AddItemToObject(f, "scale", float_array(m->scale, PIMG_ORIENT_NFEAT));
    }
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    FILE *fp = fopen(cpath, "w");
    pimg_status st = PIMG_OK;
    if (!fp || fputs(s, fp) < 0 || fputc('\n', fp) == EOF)
        st = pimg_error_set(err, PIMG_ERR_IO, "%s: cannot write model card", cpath);
    if (fp && fclose(fp) && !st)
        st = pimg_error_set(err, PIMG_ERR_IO, "%s: cannot write model card", cpath);
    free(s);
    return st;
}
