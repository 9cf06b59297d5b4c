/* orient_fv.c — dense SIFT + PCA + Fisher vectors and the linear ranking "upright" scorer
 * (see orient_fv.h for the representation and why it is pooled over bands). */
#include "orient_fv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <vl/dsift.h>
#include <vl/generic.h>
#include <vl/gmm.h>
#include <vl/random.h>

#define S PIMG_ORIENT_FV_SIDE
#define D PIMG_ORIENT_FV_PCA
#define K PIMG_ORIENT_FV_K

static const char MAGIC[8] = {'P', 'I', 'M', 'G', 'O', 'F', 'V', '1'};

pimg_status pimg_orient_fv_grey(const pimg_tensor *t, float *grey, pimg_error *err)
{
    if (!t || t->c != 3)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "orientation needs an RGB tensor");
    pimg_tensor *r = pimg_tensor_resize(t, S, S);
    if (!r)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    for (int i = 0; i < S * S; i++) {
        const float *p = r->data + 3 * i;
        grey[i] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
    }
    pimg_tensor_free(r);
    return PIMG_OK;
}

void pimg_orient_fv_turn(const float *in, int j, float *out)
{
    j = ((j % 4) + 4) % 4;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            /* Clockwise by one quarter: the output pixel (x, y) comes from (y, S-1-x). */
            int sx, sy;
            switch (j) {
            case 0:
                sx = x;
                sy = y;
                break;
            case 1:
                sx = y;
                sy = S - 1 - x;
                break;
            case 2:
                sx = S - 1 - x;
                sy = S - 1 - y;
                break;
            default:
                sx = S - 1 - y;
                sy = x;
                break;
            }
            out[y * S + x] = in[sy * S + sx];
        }
}

int pimg_orient_fv_descriptors(const float *grey, float *desc, float *xy)
{
    /* Two scales: 4 and 6 px spatial bins (16 and 24 px patches), flat window (fast and, at
     * this size, as good as the Gaussian one). */
    static const int bins[2] = {4, 6};
    /* Bounds that centre the grid on the thumbnail's centre (S - 1) / 2 = 64: keypoints at
     * 8..120 (4 px bins) and 12..116 (6 px bins). */
    static const int lo[2] = {2, 3}, hi[2] = {S - 3, S - 4};
    int n = 0;
    for (int s = 0; s < 2; s++) {
        VlDsiftFilter *f = vl_dsift_new_basic(S, S, PIMG_ORIENT_FV_STEP, bins[s]);
        if (!f)
            return -1;
        vl_dsift_set_bounds(f, lo[s], lo[s], hi[s], hi[s]);
        vl_dsift_set_flat_window(f, VL_TRUE);
        vl_dsift_process(f, grey);
        int nk = vl_dsift_get_keypoint_num(f);
        const float *d = vl_dsift_get_descriptors(f);
        const VlDsiftKeypoint *kp = vl_dsift_get_keypoints(f);
        for (int i = 0; i < nk && n < PIMG_ORIENT_FV_MAX_DESC; i++, n++) {
            /* Root-SIFT: L1-normalise, then square root (Hellinger kernel under a dot product). */
            double sum = 0;
            for (int b = 0; b < PIMG_ORIENT_FV_SIFT; b++)
                sum += d[i * PIMG_ORIENT_FV_SIFT + b];
            for (int b = 0; b < PIMG_ORIENT_FV_SIFT; b++)
                desc[n * PIMG_ORIENT_FV_SIFT + b] =
                    (float)sqrt(d[i * PIMG_ORIENT_FV_SIFT + b] / (sum + 1e-9));
            xy[2 * n] = (float)kp[i].x;
            xy[2 * n + 1] = (float)kp[i].y;
        }
        vl_dsift_delete(f);
    }
    return n;
}

void pimg_orient_fv_turn_descriptors(const float *desc, const float *xy, int n, int j, float *out_desc,
                                     float *out_xy)
{
    j = ((j % 4) + 4) % 4;
    /* One clockwise quarter turn, in VLFeat's layout (bin t + 8 bx + 32 by): the turned bin
     * (t, bx, by) is the original bin ((t + 6) mod 8, by, 3 - bx) — checked against dense SIFT
     * of the turned thumbnail in tests/unit/orient_fv_test.c. */
    for (int i = 0; i < n; i++) {
        float d[PIMG_ORIENT_FV_SIFT], e[PIMG_ORIENT_FV_SIFT];
        float x = xy[2 * i], y = xy[2 * i + 1];
        memcpy(d, desc + (size_t)i * PIMG_ORIENT_FV_SIFT, sizeof d);
        for (int k = 0; k < j; k++) {
            for (int by = 0; by < 4; by++)
                for (int bx = 0; bx < 4; bx++)
                    for (int t = 0; t < 8; t++)
                        e[t + 8 * bx + 32 * by] = d[(t + 6) % 8 + 8 * by + 32 * (3 - bx)];
            memcpy(d, e, sizeof d);
            float nx = (float)(S - 1) - y, ny = x;
            x = nx;
            y = ny;
        }
        memcpy(out_desc + (size_t)i * PIMG_ORIENT_FV_SIFT, d, sizeof d);
        out_xy[2 * i] = x;
        out_xy[2 * i + 1] = y;
    }
}

static void project(const pimg_orient_fv_vocab *v, const float *x, float *y)
{
    for (int k = 0; k < D; k++) {
        double s = 0;
        for (int b = 0; b < PIMG_ORIENT_FV_SIFT; b++)
            s += (double)v->pca[k][b] * (x[b] - v->pca_mean[b]);
        y[k] = (float)s;
    }
}

/* Region r of a keypoint at (x, y): 0 whole (always), 1..3 rows, 4..6 columns. */
static int band(float c)
{
    int b = (int)(c * 3 / S);
    return b < 0 ? 0 : b > 2 ? 2 : b;
}

/* Fisher vector of the projected descriptors pj (n x D) pooled over the seven regions, as
 * VLFeat's vl_fisher_encode with VL_FISHER_FLAG_IMPROVED computes it per region — but the GMM
 * posteriors of each descriptor are computed once and its statistics added to the three regions
 * it lies in (whole, its row, its column), which is ~4x faster than one VLFeat call per region.
 * Layout per region: for each component k, D mean terms then D variance terms. */
static int fisher_bands(const pimg_orient_fv_vocab *v, const float *pj, const float *xy, int n, float *fv)
{
    double lconst[K], isd[K * D];
    for (int k = 0; k < K; k++) {
        double s = log(v->priors[k] > 1e-30 ? v->priors[k] : 1e-30);
        for (int d = 0; d < D; d++) {
            s -= 0.5 * log(2 * M_PI * v->covs[k * D + d]);
            isd[k * D + d] = 1.0 / sqrt(v->covs[k * D + d]);
        }
        lconst[k] = s;
    }
    memset(fv, 0, sizeof(float) * PIMG_ORIENT_FV_DIM);
    double *acc = calloc(PIMG_ORIENT_FV_DIM, sizeof(double));
    if (!acc)
        return -1;
    int cnt[PIMG_ORIENT_FV_NREG] = {0};
    for (int i = 0; i < n; i++) {
        const float *x = pj + (size_t)i * D;
        double lp[K], mx = -1e300, sum = 0;
        for (int k = 0; k < K; k++) {
            double s = lconst[k];
            for (int d = 0; d < D; d++) {
                double z = (x[d] - v->means[k * D + d]) * isd[k * D + d];
                s -= 0.5 * z * z;
            }
            lp[k] = s;
            if (s > mx)
                mx = s;
        }
        for (int k = 0; k < K; k++)
            sum += lp[k] = exp(lp[k] - mx);
        int reg[3] = {0, 1 + band(xy[2 * i + 1]), 4 + band(xy[2 * i])};
        for (int r = 0; r < 3; r++)
            cnt[reg[r]]++;
        for (int k = 0; k < K; k++) {
            double q = lp[k] / sum;
            if (q < 1e-6)
                continue;
            double z[D];
            for (int d = 0; d < D; d++)
                z[d] = (x[d] - v->means[k * D + d]) * isd[k * D + d];
            for (int r = 0; r < 3; r++) {
                double *a = acc + (size_t)reg[r] * PIMG_ORIENT_FV_REGDIM + (size_t)k * 2 * D;
                for (int d = 0; d < D; d++) {
                    a[d] += q * z[d];
                    a[D + d] += q * (z[d] * z[d] - 1);
                }
            }
        }
    }
    for (int r = 0; r < PIMG_ORIENT_FV_NREG; r++) {
        if (!cnt[r])
            continue;
        double *a = acc + (size_t)r * PIMG_ORIENT_FV_REGDIM, nrm = 0;
        for (int k = 0; k < K; k++) {
            double su = 1.0 / (cnt[r] * sqrt(v->priors[k])), sv = 1.0 / (cnt[r] * sqrt(2 * v->priors[k]));
            for (int d = 0; d < D; d++) {
                a[k * 2 * D + d] *= su;
                a[k * 2 * D + D + d] *= sv;
            }
        }
        for (int j = 0; j < PIMG_ORIENT_FV_REGDIM; j++) {
            a[j] = a[j] < 0 ? -sqrt(-a[j]) : sqrt(a[j]); /* signed square root */
            nrm += a[j] * a[j];
        }
        nrm = nrm > 0 ? 1 / sqrt(nrm) : 0;
        for (int j = 0; j < PIMG_ORIENT_FV_REGDIM; j++)
            fv[(size_t)r * PIMG_ORIENT_FV_REGDIM + j] = (float)(a[j] * nrm);
    }
    free(acc);
    return 0;
}

pimg_status pimg_orient_fv_encode_desc(const pimg_orient_fv_vocab *v, const float *desc, const float *xy,
                                       int n, float *fv, pimg_error *err)
{
    float *pj = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1) * D);
    if (!pj)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        project(v, desc + (size_t)i * PIMG_ORIENT_FV_SIFT, pj + (size_t)i * D);
    int bad = fisher_bands(v, pj, xy, n, fv);
    free(pj);
    return bad ? pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory") : PIMG_OK;
}

pimg_status pimg_orient_fv_encode(const pimg_orient_fv_vocab *v, const float *grey, float *fv,
                                  pimg_error *err)
{
    float *desc = malloc(sizeof(float) * PIMG_ORIENT_FV_MAX_DESC * (PIMG_ORIENT_FV_SIFT + 2));
    if (!desc)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    float *xy = desc + PIMG_ORIENT_FV_MAX_DESC * PIMG_ORIENT_FV_SIFT;
    int n = pimg_orient_fv_descriptors(grey, desc, xy);
    pimg_status st = n > 0 ? pimg_orient_fv_encode_desc(v, desc, xy, n, fv, err)
                           : pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    free(desc);
    return st;
}

void pimg_orient_fv_posterior(const double score[4], double temperature, double post[4])
{
    double mx = score[0], sum = 0;
    for (int r = 1; r < 4; r++)
        if (score[r] > mx)
            mx = score[r];
    for (int r = 0; r < 4; r++)
        sum += post[r] = exp((score[r] - mx) / temperature);
    for (int r = 0; r < 4; r++)
        post[r] /= sum;
}

/* Eigenvectors of a symmetric n x n matrix a (destroyed) by cyclic Jacobi rotations: vecs rows
 * are eigenvectors, vals their eigenvalues (unsorted). Deterministic; fine for n = 128. */
static void jacobi(double *a, int n, double *vals, double *vecs)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            vecs[i * n + j] = i == j;
    for (int sweep = 0; sweep < 50; sweep++) {
        double off = 0;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++)
                off += a[p * n + q] * a[p * n + q];
        if (off < 1e-22)
            break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (fabs(apq) < 1e-30)
                    continue;
                double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) { /* columns p, q */
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) { /* rows p, q */
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < n; k++) {
                    double vp = vecs[p * n + k], vq = vecs[q * n + k];
                    vecs[p * n + k] = c * vp - s * vq;
                    vecs[q * n + k] = s * vp + c * vq;
                }
            }
    }
    for (int i = 0; i < n; i++)
        vals[i] = a[i * n + i];
}

pimg_status pimg_orient_fv_vocab_train(const float *desc, size_t n, unsigned seed, pimg_orient_fv_vocab *v,
                                       pimg_error *err)
{
    enum { B = PIMG_ORIENT_FV_SIFT };
    if (n < 10 * K)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "too few descriptors (%zu) for the vocabulary", n);
    double *cov = calloc((size_t)B * B * 2 + 2 * B, sizeof(double));
    float *proj = malloc(sizeof(float) * n * D);
    if (!cov || !proj) {
        free(cov);
        free(proj);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    double *vecs = cov + B * B, *vals = vecs + B * B, *mean = vals + B;
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < B; b++)
            mean[b] += desc[i * B + b];
    for (int b = 0; b < B; b++)
        mean[b] /= (double)n;
    for (size_t i = 0; i < n; i++) {
        double x[B];
        for (int b = 0; b < B; b++)
            x[b] = desc[i * B + b] - mean[b];
        for (int p = 0; p < B; p++)
            for (int q = p; q < B; q++)
                cov[p * B + q] += x[p] * x[q];
    }
    for (int p = 0; p < B; p++)
        for (int q = p; q < B; q++)
            cov[q * B + p] = cov[p * B + q] /= (double)n;
    jacobi(cov, B, vals, vecs);
    /* Top D eigenvalues, largest first (selection: B is small). */
    char taken[B] = {0};
    for (int k = 0; k < D; k++) {
        int best = -1;
        for (int b = 0; b < B; b++)
            if (!taken[b] && (best < 0 || vals[b] > vals[best]))
                best = b;
        taken[best] = 1;
        /* Fix the sign (largest component positive) so the vocabulary is canonical. */
        int big = 0;
        for (int b = 1; b < B; b++)
            if (fabs(vecs[best * B + b]) > fabs(vecs[best * B + big]))
                big = b;
        double sg = vecs[best * B + big] < 0 ? -1 : 1;
        for (int b = 0; b < B; b++)
            v->pca[k][b] = (float)(sg * vecs[best * B + b]);
    }
    for (int b = 0; b < B; b++)
        v->pca_mean[b] = (float)mean[b];
    free(cov);
    for (size_t i = 0; i < n; i++)
        project(v, desc + i * B, proj + i * D);
    /* VLFeat's k-means start draws from its per-thread generator: seed it for reproducibility. */
    vl_rand_seed(vl_get_rand(), seed);
    VlGMM *g = vl_gmm_new(VL_TYPE_FLOAT, D, K);
    if (!g) {
        free(proj);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    vl_gmm_set_initialization(g, VlGMMKMeans);
    vl_gmm_set_max_num_iterations(g, 100);
    vl_gmm_cluster(g, proj, n);
    memcpy(v->means, vl_gmm_get_means(g), sizeof v->means);
    memcpy(v->covs, vl_gmm_get_covariances(g), sizeof v->covs);
    memcpy(v->priors, vl_gmm_get_priors(g), sizeof v->priors);
    vl_gmm_delete(g);
    free(proj);
    return PIMG_OK;
}

pimg_status pimg_orient_fv_rank_train(const float *fv, int n, const char *use, double C, unsigned seed,
                                      float *w, pimg_error *err)
{
    const size_t dim = PIMG_ORIENT_FV_DIM;
    int np = 0;
    for (int i = 0; i < n; i++)
        np += !use || use[i] ? 3 : 0;
    int *idx = malloc(sizeof(int) * (np ? np : 1));
    double *alpha = calloc(np ? np : 1, sizeof(double)), *qd = malloc(sizeof(double) * (np ? np : 1));
    double *wd = calloc(dim, sizeof(double));
    if (!idx || !alpha || !qd || !wd) {
        free(idx);
        free(alpha);
        free(qd);
        free(wd);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    /* Pair p = 3 * example + (k - 1): x_p = fv[i][0] - fv[i][k], label +1. */
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!use || use[i])
            for (int k = 1; k < 4; k++)
                idx[m++] = i * 4 + k;
    const double dii = 0.5 / C; /* squared hinge: diagonal term of the dual */
    for (int p = 0; p < np; p++) {
        const float *a = fv + (size_t)(idx[p] / 4 * 4) * dim, *b = fv + (size_t)idx[p] * dim;
        double s = 0;
        for (size_t d = 0; d < dim; d++)
            s += (double)(a[d] - b[d]) * (a[d] - b[d]);
        qd[p] = s + dii;
    }
    unsigned long long st = seed * 2654435761ULL + 12345;
    for (int epoch = 0; epoch < 200; epoch++) {
        /* Fisher-Yates shuffle of the visiting order with a fixed LCG. */
        for (int p = np - 1; p > 0; p--) {
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            int q = (int)((st >> 33) % (unsigned long long)(p + 1));
            int t = idx[p];
            idx[p] = idx[q];
            idx[q] = t;
            double tq = qd[p];
            qd[p] = qd[q];
            qd[q] = tq;
            tq = alpha[p];
            alpha[p] = alpha[q];
            alpha[q] = tq;
        }
        double maxpg = 0;
        for (int p = 0; p < np; p++) {
            const float *a = fv + (size_t)(idx[p] / 4 * 4) * dim, *b = fv + (size_t)idx[p] * dim;
            double g = 0;
            for (size_t d = 0; d < dim; d++)
                g += wd[d] * (a[d] - b[d]);
            g = g - 1 + dii * alpha[p];
            double pg = alpha[p] == 0 && g > 0 ? 0 : g;
            if (fabs(pg) > maxpg)
                maxpg = fabs(pg);
            if (pg != 0) {
                double na = alpha[p] - g / qd[p];
                if (na < 0)
                    na = 0;
                double delta = na - alpha[p];
                alpha[p] = na;
                for (size_t d = 0; d < dim; d++)
                    wd[d] += delta * (a[d] - b[d]);
            }
        }
        if (maxpg < 1e-3)
            break;
    }
    for (size_t d = 0; d < dim; d++)
        w[d] = (float)wd[d];
    free(idx);
    free(alpha);
    free(qd);
    free(wd);
    return PIMG_OK;
}

pimg_status pimg_orient_fv_write(const pimg_orient_fv_model *m, const char *path, pimg_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot write", path);
    float t = (float)m->temperature;
    int ok = fwrite(MAGIC, sizeof MAGIC, 1, f) == 1 && fwrite(&m->vocab, sizeof m->vocab, 1, f) == 1 &&
             fwrite(m->w, sizeof m->w, 1, f) == 1 && fwrite(&t, sizeof t, 1, f) == 1;
    if (fclose(f))
        ok = 0;
    return ok ? PIMG_OK : pimg_error_set(err, PIMG_ERR_IO, "%s: cannot write", path);
}

int pimg_orient_fv_is_model_file(const char *path)
{
    char buf[sizeof MAGIC];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    int ok = fread(buf, sizeof buf, 1, f) == 1 && !memcmp(buf, MAGIC, sizeof MAGIC);
    fclose(f);
    return ok;
}

pimg_status pimg_orient_fv_read(const char *path, pimg_orient_fv_model **out, pimg_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return pimg_error_set(err, PIMG_ERR_NOT_FOUND, "%s: no orientation model", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot read", path);
    pimg_orient_fv_model *m = malloc(sizeof *m);
    char mg[sizeof MAGIC];
    float t = 0;
    int ok = m && fread(mg, sizeof mg, 1, f) == 1 && !memcmp(mg, MAGIC, sizeof MAGIC) &&
             fread(&m->vocab, sizeof m->vocab, 1, f) == 1 && fread(m->w, sizeof m->w, 1, f) == 1 &&
             fread(&t, sizeof t, 1, f) == 1 && t > 0 && fgetc(f) == EOF;
    fclose(f);
    if (!ok) {
        free(m);
        return m ? pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: not a Fisher-vector orientation model", path)
                 : pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    m->temperature = t;
    *out = m;
    return PIMG_OK;
}
