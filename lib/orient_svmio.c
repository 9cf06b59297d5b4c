/* orient_svmio.c — a compact file format for the orientation SVM.
 *
 * libsvm's own text format spends ~12 bytes per support-vector value: a 4-class RBF model with
 * a few thousand dense 881-dimensional support vectors would be tens of megabytes. We store the
 * same model with every support-vector dimension quantised to 8 bits over its own range (the
 * error, under 0.2% of a feature's spread, is far below what the RBF kernel can notice), and the
 * coefficients, offsets and Platt parameters in full precision. The trainer passes its fresh
 * model through the same quantisation, so the model it scores is bit for bit the one it ships.
 *
 * Layout (little-endian, as written by this machine kind): "PIMGOSV1", int32 nr_class, l, nfeat,
 * double gamma, int32 label[nr_class], int32 nSV[nr_class], double rho[P], probA[P], probB[P]
 * (P = nr_class*(nr_class-1)/2), double sv_coef[nr_class-1][l], float qmin[nfeat],
 * float qstep[nfeat], uint8 q[l][nfeat]. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orient_internal.h"

#define MAGIC "PIMGOSV1"

/* Empty 4-class RBF model shell with room for l dense support vectors of nfeat dimensions,
 * laid out like svm_load_model's (one node block, free_sv = 1) so svm_free_and_destroy_model
 * frees it. NULL on no memory. */
static struct svm_model *shell(int nr_class, int l, int nfeat, double gamma)
{
    struct svm_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    int pairs = nr_class * (nr_class - 1) / 2;
    m->param.svm_type = C_SVC;
    m->param.kernel_type = RBF;
    m->param.gamma = gamma;
    m->nr_class = nr_class;
    m->l = l;
    m->free_sv = 1;
    m->SV = calloc(l ? l : 1, sizeof *m->SV);
    struct svm_node *x = malloc(sizeof *x * (size_t)(l ? l : 1) * (nfeat + 1));
    m->sv_coef = calloc(nr_class - 1, sizeof *m->sv_coef);
    m->rho = calloc(pairs, sizeof(double));
    m->probA = calloc(pairs, sizeof(double));
    m->probB = calloc(pairs, sizeof(double));
    m->label = calloc(nr_class, sizeof(int));
    m->nSV = calloc(nr_class, sizeof(int));
    int ok = m->SV && x && m->sv_coef && m->rho && m->probA && m->probB && m->label && m->nSV;
    for (int k = 0; ok && k < nr_class - 1; k++)
        ok = (m->sv_coef[k] = calloc(l ? l : 1, sizeof(double))) != NULL;
    if (m->SV && x) {
        for (int i = 0; i < l; i++) {
            m->SV[i] = x + (size_t)i * (nfeat + 1);
            m->SV[i][nfeat].index = -1;
        }
        if (!l)
            m->SV[0] = x;
    } else {
        free(x);
        m->l = 0; /* nothing for the destructor to free through SV[0] */
    }
    if (!ok) {
        svm_free_and_destroy_model(&m);
        return NULL;
    }
    return m;
}

pimg_orient_qsvm *pimg_orient_qsvm_from_svm(const struct svm_model *s, int nfeat)
{
    if (!s || s->nr_class < 2 || s->param.kernel_type != RBF || !s->probA || !s->probB)
        return NULL;
    pimg_orient_qsvm *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    int l = s->l, P = s->nr_class * (s->nr_class - 1) / 2;
    q->nr_class = s->nr_class;
    q->l = l;
    q->nfeat = nfeat;
    q->gamma = s->param.gamma;
    memcpy(q->label, s->label, sizeof(int) * s->nr_class);
    memcpy(q->nSV, s->nSV, sizeof(int) * s->nr_class);
    memcpy(q->rho, s->rho, sizeof(double) * P);
    memcpy(q->probA, s->probA, sizeof(double) * P);
    memcpy(q->probB, s->probB, sizeof(double) * P);
    q->sv_coef = malloc(sizeof(double) * (size_t)(s->nr_class - 1) * (l ? l : 1));
    q->qmin = malloc(sizeof(float) * nfeat);
    q->qstep = malloc(sizeof(float) * nfeat);
    q->q = malloc((size_t)(l ? l : 1) * nfeat);
    double *dense = malloc(sizeof(double) * nfeat);
    if (!q->sv_coef || !q->qmin || !q->qstep || !q->q || !dense) {
        free(dense);
        pimg_orient_qsvm_free(q);
        return NULL;
    }
    for (int k = 0; k < s->nr_class - 1; k++)
        memcpy(q->sv_coef + (size_t)k * l, s->sv_coef[k], sizeof(double) * l);
    for (int f = 0; f < nfeat; f++) {
        q->qmin[f] = INFINITY;
        q->qstep[f] = -INFINITY; /* max, for now */
    }
    /* libsvm keeps SVs sparse: a missing index is 0. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < l; i++) {
            for (int f = 0; f < nfeat; f++)
                dense[f] = 0;
            for (const struct svm_node *n = s->SV[i]; n->index != -1; n++)
                if (n->index >= 1 && n->index <= nfeat)
                    dense[n->index - 1] = n->value;
            for (int f = 0; f < nfeat; f++) {
                if (pass == 0) {
                    if (dense[f] < q->qmin[f]) q->qmin[f] = (float)dense[f];
                    if (dense[f] > q->qstep[f]) q->qstep[f] = (float)dense[f];
                } else {
                    double v = q->qstep[f] > 0 ? (dense[f] - q->qmin[f]) / q->qstep[f] : 0;
                    q->q[(size_t)i * nfeat + f] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
                }
            }
            if (pass == 0 && i == l - 1)
                for (int f = 0; f < nfeat; f++) {
                    double range = q->qstep[f] - q->qmin[f];
                    q->qstep[f] = (float)(range > 0 ? range / 255.0 : 0.0);
                }
        }
    if (l == 0)
        for (int f = 0; f < nfeat; f++)
            q->qmin[f] = q->qstep[f] = 0;
    free(dense);
    return q;
}

struct svm_model *pimg_orient_qsvm_to_svm(const pimg_orient_qsvm *q)
{
    struct svm_model *m = shell(q->nr_class, q->l, q->nfeat, q->gamma);
    if (!m)
        return NULL;
    int P = q->nr_class * (q->nr_class - 1) / 2;
    memcpy(m->label, q->label, sizeof(int) * q->nr_class);
    memcpy(m->nSV, q->nSV, sizeof(int) * q->nr_class);
    memcpy(m->rho, q->rho, sizeof(double) * P);
    memcpy(m->probA, q->probA, sizeof(double) * P);
    memcpy(m->probB, q->probB, sizeof(double) * P);
    for (int k = 0; k < q->nr_class - 1; k++)
        memcpy(m->sv_coef[k], q->sv_coef + (size_t)k * q->l, sizeof(double) * q->l);
    for (int i = 0; i < q->l; i++)
        for (int f = 0; f < q->nfeat; f++) {
            m->SV[i][f].index = f + 1;
            m->SV[i][f].value = q->qmin[f] + q->qstep[f] * q->q[(size_t)i * q->nfeat + f];
        }
    return m;
}

void pimg_orient_qsvm_free(pimg_orient_qsvm *q)
{
    if (!q)
        return;
    free(q->sv_coef);
    free(q->qmin);
    free(q->qstep);
    free(q->q);
    free(q);
}

pimg_status pimg_orient_qsvm_write(const pimg_orient_qsvm *q, const char *path, pimg_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: %s", path, strerror(errno));
    int P = q->nr_class * (q->nr_class - 1) / 2;
    int32_t hdr[3] = {q->nr_class, q->l, q->nfeat};
    int32_t lab[PIMG_ORIENT_MAX_CLASS], nsv[PIMG_ORIENT_MAX_CLASS];
    for (int i = 0; i < q->nr_class; i++) {
        lab[i] = q->label[i];
        nsv[i] = q->nSV[i];
    }
    int ok = fwrite(MAGIC, 1, 8, f) == 8 && fwrite(hdr, sizeof hdr, 1, f) == 1 &&
             fwrite(&q->gamma, sizeof(double), 1, f) == 1 &&
             fwrite(lab, sizeof(int32_t), q->nr_class, f) == (size_t)q->nr_class &&
             fwrite(nsv, sizeof(int32_t), q->nr_class, f) == (size_t)q->nr_class &&
             fwrite(q->rho, sizeof(double), P, f) == (size_t)P && fwrite(q->probA, sizeof(double), P, f) == (size_t)P &&
             fwrite(q->probB, sizeof(double), P, f) == (size_t)P;
    size_t nc = (size_t)(q->nr_class - 1) * q->l, nq = (size_t)q->l * q->nfeat;
    ok = ok && fwrite(q->sv_coef, sizeof(double), nc, f) == nc &&
         fwrite(q->qmin, sizeof(float), q->nfeat, f) == (size_t)q->nfeat &&
         fwrite(q->qstep, sizeof(float), q->nfeat, f) == (size_t)q->nfeat && fwrite(q->q, 1, nq, f) == nq;
    if (fclose(f))
        ok = 0;
    return ok ? PIMG_OK : pimg_error_set(err, PIMG_ERR_IO, "%s: cannot write model", path);
}

pimg_status pimg_orient_qsvm_read(const char *path, pimg_orient_qsvm **out, pimg_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return pimg_error_set(err, errno == ENOENT ? PIMG_ERR_NOT_FOUND : PIMG_ERR_IO, "%s: %s", path, strerror(errno));
    char magic[8];
    int32_t hdr[3];
    pimg_orient_qsvm *q = calloc(1, sizeof *q);
    pimg_status st = PIMG_OK;
    if (!q) {
        fclose(f);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, MAGIC, 8) || fread(hdr, sizeof hdr, 1, f) != 1 ||
        hdr[0] < 2 || hdr[0] > PIMG_ORIENT_MAX_CLASS || hdr[1] < 0 || hdr[1] > (1 << 20) || hdr[2] < 1 ||
        hdr[2] > (1 << 16)) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: not a pimg orientation model", path);
        goto out;
    }
    q->nr_class = hdr[0];
    q->l = hdr[1];
    q->nfeat = hdr[2];
    int P = q->nr_class * (q->nr_class - 1) / 2;
    int32_t lab[PIMG_ORIENT_MAX_CLASS], nsv[PIMG_ORIENT_MAX_CLASS];
    size_t nc = (size_t)(q->nr_class - 1) * q->l, nq = (size_t)q->l * q->nfeat;
    q->sv_coef = malloc(sizeof(double) * (nc ? nc : 1));
    q->qmin = malloc(sizeof(float) * q->nfeat);
    q->qstep = malloc(sizeof(float) * q->nfeat);
    q->q = malloc(nq ? nq : 1);
    if (!q->sv_coef || !q->qmin || !q->qstep || !q->q) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    int ok = fread(&q->gamma, sizeof(double), 1, f) == 1 &&
             fread(lab, sizeof(int32_t), q->nr_class, f) == (size_t)q->nr_class &&
             fread(nsv, sizeof(int32_t), q->nr_class, f) == (size_t)q->nr_class &&
             fread(q->rho, sizeof(double), P, f) == (size_t)P && fread(q->probA, sizeof(double), P, f) == (size_t)P &&
             fread(q->probB, sizeof(double), P, f) == (size_t)P && fread(q->sv_coef, sizeof(double), nc, f) == nc &&
             fread(q->qmin, sizeof(float), q->nfeat, f) == (size_t)q->nfeat &&
             fread(q->qstep, sizeof(float), q->nfeat, f) == (size_t)q->nfeat && fread(q->q, 1, nq, f) == nq;
    long sum = 0;
    for (int i = 0; ok && i < q->nr_class; i++) {
        q->label[i] = lab[i];
        q->nSV[i] = nsv[i];
        ok = nsv[i] >= 0;
        sum += nsv[i];
    }
    if (!ok || sum != q->l || !(q->gamma > 0)) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: truncated or inconsistent orientation model", path);
        goto out;
    }
out:
    fclose(f);
    if (st) {
        pimg_orient_qsvm_free(q);
        return st;
    }
    *out = q;
    return PIMG_OK;
}
