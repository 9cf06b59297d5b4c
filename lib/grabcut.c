/* grabcut.c — iterated graph-cut segmentation with colour mixtures (see grabcut.h).
 *
 * The mixtures start from an Orchard–Bouman split of each class (the cluster with the largest
 * colour variance is cut in two across its principal axis until there are K), as in the paper;
 * afterwards every pixel takes its label's most likely component and the components are
 * re-estimated. A pixel's colour cost is that of its best component (the paper's minimisation
 * over the component variable), which needs no exp() per component. */
#include "grabcut.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "maxflow.h"

enum { K = 5 };

const pimg_grabcut_params pimg_grabcut_defaults = {
    .iterations = 4,
    .gamma = 25,
};

/* Added to every covariance's diagonal: JPEG noise alone moves a colour by about this much, and
 * a component fitted to a flat white backdrop would otherwise call a product pixel one grey
 * level off "impossible" (and a single-colour component would be singular). */
#define VAR_FLOOR 1e-4
/* Fewer pixels than this in a class: no mixture is fitted, the first labelling is returned. */
#define MIN_CLASS 24
/* Terminal capacity that pins a fixed pixel: more than all its n-links together (8 * gamma). */
#define PIN 1e7

typedef struct {
    float mean[K][3];
    float icov[K][6]; /* inverse covariance: xx xy xz yy yz zz */
    float logc[K];    /* log weight - log det / 2; very negative for an empty component */
} gmm;

typedef struct {
    double n, s[3], ss[6];
} stats;

static void stats_add(stats *st, const float *c)
{
    st->n += 1;
    for (int k = 0; k < 3; k++)
        st->s[k] += c[k];
    st->ss[0] += (double)c[0] * c[0];
    st->ss[1] += (double)c[0] * c[1];
    st->ss[2] += (double)c[0] * c[2];
    st->ss[3] += (double)c[1] * c[1];
    st->ss[4] += (double)c[1] * c[2];
    st->ss[5] += (double)c[2] * c[2];
}

/* Mean and covariance (xx xy xz yy yz zz, floored) of a cluster with st->n > 0. */
static void stats_moments(const stats *st, double m[3], double cv[6])
{
    for (int k = 0; k < 3; k++)
        m[k] = st->s[k] / st->n;
    cv[0] = st->ss[0] / st->n - m[0] * m[0] + VAR_FLOOR;
    cv[1] = st->ss[1] / st->n - m[0] * m[1];
    cv[2] = st->ss[2] / st->n - m[0] * m[2];
    cv[3] = st->ss[3] / st->n - m[1] * m[1] + VAR_FLOOR;
    cv[4] = st->ss[4] / st->n - m[1] * m[2];
    cv[5] = st->ss[5] / st->n - m[2] * m[2] + VAR_FLOOR;
}

/* Principal axis of a covariance by power iteration (the matrix is positive definite, so the
 * largest eigenvalue dominates); returns that eigenvalue. */
static double principal_axis(const double cv[6], double e[3])
{
    double A[3][3] = {{cv[0], cv[1], cv[2]}, {cv[1], cv[3], cv[4]}, {cv[2], cv[4], cv[5]}};
    /* start from the largest column: never orthogonal to the principal axis unless A is
     * isotropic, when any axis will do */
    int c = 0;
    for (int k = 1; k < 3; k++)
        if (A[k][k] > A[c][c])
            c = k;
    double v[3] = {A[0][c], A[1][c], A[2][c]}, lam = 0;
    for (int it = 0; it < 40; it++) {
        double w[3];
        for (int r = 0; r < 3; r++)
            w[r] = A[r][0] * v[0] + A[r][1] * v[1] + A[r][2] * v[2];
        double nrm = sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
        if (nrm <= 0)
            break;
        lam = nrm;
        for (int r = 0; r < 3; r++)
            v[r] = w[r] / nrm;
    }
    memcpy(e, v, sizeof v);
    return lam;
}

/* Per-component sums (st[K]) of the pixels with label[i] == cls, each in component comp[i]. */
static void class_stats(stats *st, const float *rgb, int n, const unsigned char *label, int cls,
                        const unsigned char *comp)
{
    memset(st, 0, sizeof(stats) * K);
    for (int i = 0; i < n; i++)
        if (label[i] == cls)
            stats_add(&st[comp[i]], rgb + 3 * (size_t)i);
}

/* Fits g to the pixels with label[i] == cls, each to component comp[i]. */
static void gmm_fit(gmm *g, const float *rgb, int n, const unsigned char *label, int cls, const unsigned char *comp)
{
    stats st[K];
    class_stats(st, rgb, n, label, cls, comp);
    double tot = 0;
    for (int k = 0; k < K; k++)
        tot += st[k].n;
    for (int k = 0; k < K; k++) {
        if (st[k].n < 1) {
            memset(g->mean[k], 0, sizeof g->mean[k]);
            memset(g->icov[k], 0, sizeof g->icov[k]);
            g->logc[k] = -1e30f;
            continue;
        }
        double m[3], c[6];
        stats_moments(&st[k], m, c);
        /* inverse of the symmetric 3x3 by cofactors */
        double i0 = c[3] * c[5] - c[4] * c[4], i1 = c[2] * c[4] - c[1] * c[5], i2 = c[1] * c[4] - c[2] * c[3];
        double det = c[0] * i0 + c[1] * i1 + c[2] * i2;
        if (!(det > 1e-30)) /* cannot happen with the floor; guards a NaN colour */
            det = 1e-30;
        double i3 = c[0] * c[5] - c[2] * c[2], i4 = c[1] * c[2] - c[0] * c[4], i5 = c[0] * c[3] - c[1] * c[1];
        double inv[6] = {i0 / det, i1 / det, i2 / det, i3 / det, i4 / det, i5 / det};
        for (int q = 0; q < 3; q++)
            g->mean[k][q] = (float)m[q];
        for (int q = 0; q < 6; q++)
            g->icov[k][q] = (float)inv[q];
        g->logc[k] = (float)(log(st[k].n / tot) - 0.5 * log(det));
    }
}

/* The best component's log-likelihood (without the constant -1.5 log 2 pi) and its index. */
static inline float gmm_best(const gmm *g, const float *c, int *best)
{
    float bl = -3e30f;
    int bk = 0;
    for (int k = 0; k < K; k++) {
        float d0 = c[0] - g->mean[k][0], d1 = c[1] - g->mean[k][1], d2 = c[2] - g->mean[k][2];
        const float *a = g->icov[k];
        float q = a[0] * d0 * d0 + a[3] * d1 * d1 + a[5] * d2 * d2 + 2 * (a[1] * d0 * d1 + a[2] * d0 * d2 + a[4] * d1 * d2);
        float l = g->logc[k] - 0.5f * q;
        if (l > bl) {
            bl = l;
            bk = k;
        }
    }
    *best = bk;
    return bl;
}

/* Orchard–Bouman: splits the pixels of class cls into K clusters (comp[i]). */
static void split_init(const float *rgb, int n, const unsigned char *label, int cls, unsigned char *comp)
{
    for (int i = 0; i < n; i++)
        if (label[i] == cls)
            comp[i] = 0;
    for (int nc = 1; nc < K; nc++) {
        stats st[K];
        class_stats(st, rgb, n, label, cls, comp);
        int bc = -1;
        double blam = 0, be[3] = {0, 0, 0}, bthr = 0;
        for (int k = 0; k < nc; k++) {
            if (st[k].n < 2)
                continue;
            double m[3], cv[6], e[3];
            stats_moments(&st[k], m, cv);
            double lam = principal_axis(cv, e);
            if (lam > blam) {
                blam = lam;
                bc = k;
                memcpy(be, e, sizeof e);
                bthr = e[0] * m[0] + e[1] * m[1] + e[2] * m[2];
            }
        }
        if (bc < 0)
            break; /* fewer distinct pixels than components: the rest stay empty */
        for (int i = 0; i < n; i++) {
            const float *c = rgb + 3 * (size_t)i;
            if (label[i] == cls && comp[i] == bc && be[0] * c[0] + be[1] * c[1] + be[2] * c[2] > bthr)
                comp[i] = (unsigned char)nc;
        }
    }
}

pimg_status pimg_grabcut_segment(const pimg_tensor *rgb_t, const unsigned char *fixed, const float *prob,
                                 const pimg_grabcut_params *p, unsigned char *label, pimg_error *err)
{
    if (!rgb_t || rgb_t->c != 3)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "grabcut: need a 3-channel tensor");
    int w = rgb_t->w, h = rgb_t->h, n = w * h;
    const float *rgb = rgb_t->data;
    int nfg = 0;
    for (int i = 0; i < n; i++) {
        label[i] = prob[i] > 0.5f && !(fixed && fixed[i]);
        nfg += label[i];
    }
    if (nfg < MIN_CLASS || n - nfg < MIN_CLASS)
        return PIMG_OK;

    pimg_status st = PIMG_OK;
    pimg_maxflow *g = NULL;
    unsigned char *comp = malloc((size_t)n), *cf = malloc((size_t)n), *cb = malloc((size_t)n);
    if (!comp || !cf || !cb) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* The 8-neighbour pairs (each once: right, down and the two down diagonals) with their
     * squared colour step. */
    static const int dx[4] = {1, 0, 1, -1}, dy[4] = {0, 1, 1, 1};
    int *ends = malloc(sizeof(int) * 2 * 4 * (size_t)n);
    double *step = malloc(sizeof(double) * 4 * (size_t)n), sum = 0;
    unsigned char *diagonal = malloc(4 * (size_t)n);
    int n_edges = 0;
    if (!ends || !step || !diagonal) {
        free(ends);
        free(step);
        free(diagonal);
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int d = 0; d < 4; d++) {
                int xx = x + dx[d], yy = y + dy[d];
                if (xx < 0 || xx >= w || yy >= h)
                    continue;
                const float *a = rgb + 3 * ((size_t)y * w + x), *b = rgb + 3 * ((size_t)yy * w + xx);
                double d0 = a[0] - b[0], d1 = a[1] - b[1], d2 = a[2] - b[2];
                ends[2 * n_edges] = y * w + x;
                ends[2 * n_edges + 1] = yy * w + xx;
                diagonal[n_edges] = d >= 2;
                step[n_edges] = d0 * d0 + d1 * d1 + d2 * d2;
                sum += step[n_edges++];
            }
    /* beta from the mean squared colour step over all neighbour pairs: the Potts term then
     * weighs an edge by how unusual its contrast is for this image */
    double beta = sum > 0 ? n_edges / (2 * sum) : 0;
    if (!(st = pimg_maxflow_new(n, n_edges, &g, err))) {
        /* The n-links do not change between iterations: the graph is built once, and each
         * iteration only replaces the terminal capacities and re-solves from the previous flow. */
        for (int k = 0; k < n_edges; k++) {
            double c = p->gamma / (diagonal[k] ? M_SQRT2 : 1) * exp(-beta * step[k]);
            pimg_maxflow_add_edge(g, ends[2 * k], ends[2 * k + 1], c, c);
        }
    }
    free(ends);
    free(step);
    free(diagonal);
    if (st)
        goto out;
    split_init(rgb, n, label, 1, comp);
    split_init(rgb, n, label, 0, comp);
    for (int it = 0; it < p->iterations; it++) {
        gmm fg, bg;
        gmm_fit(&fg, rgb, n, label, 1, comp);
        gmm_fit(&bg, rgb, n, label, 0, comp);
        for (int i = 0; i < n; i++) {
            int kf, kb;
            /* cost of each label: minus the log-likelihood under its mixture; only the
             * difference enters the cut */
            double u = gmm_best(&bg, rgb + 3 * (size_t)i, &kb) - gmm_best(&fg, rgb + 3 * (size_t)i, &kf);
            cf[i] = (unsigned char)kf;
            cb[i] = (unsigned char)kb;
            /* source = foreground: a pixel left on the source side pays its sink edge */
            double to_src = u < 0 ? -u : 0, to_sink = u > 0 ? u : 0;
            if (fixed && fixed[i]) {
                to_src = 0;
                to_sink = PIN;
            }
            if (it == 0)
                pimg_maxflow_add_tweights(g, i, to_src, to_sink);
            else
                pimg_maxflow_set_tweights(g, i, to_src, to_sink);
        }
        pimg_maxflow_solve(g);
        nfg = 0;
        for (int i = 0; i < n; i++)
            nfg += pimg_maxflow_is_source(g, i);
        /* A cut that empties a class has lost the object (a product filling the whole region
         * leaves the background mixture nothing but stray pixels to fit, and it wins): keep
         * the labelling before it. */
        if (nfg < MIN_CLASS || n - nfg < MIN_CLASS)
            break;
        int changed = 0;
        for (int i = 0; i < n; i++) {
            unsigned char l = (unsigned char)pimg_maxflow_is_source(g, i);
            changed += l != label[i];
            label[i] = l;
            /* the next fit's components: each pixel's best one under its new label */
            comp[i] = l ? cf[i] : cb[i];
        }
        if (!changed)
            break;
    }
out:
    pimg_maxflow_free(g);
    free(comp);
    free(cf);
    free(cb);
    return st;
}
