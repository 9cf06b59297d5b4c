/* detect.c — main-product detection: saliency proposals ranked by a HOG + libsvm
 * "is this the whole product" model, then refined by the foreground mask.
 *
 * Flow on the upright analysis tensor: build the ~160 px scene (saliency.c), propose boxes,
 * score each box's feature vector with the SVM (or a saliency heuristic when no model is
 * loaded), take the best, compute the colour-model mask seeded by it at tensor resolution
 * (mask.c), and let the model choose between the proposal and the mask's tighter bounding box.
 * Plain-backdrop photos (plainbox.c) skip the ranking: the box of what departs from the fitted
 * backdrop is taken directly, because a ranker trained to find "an object" tends to pick a
 * salient part of a product that fills the frame.
 * Everything is reentrant: the model is read-only after loading. */
#include "detect.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "detect_svm.h"
#include "mask.h"
#include "saliency.h"

#define MAX_PROPOSALS 320

/* Plain-backdrop test and box. Chosen on validation (held-out composites and hand-labelled
 * train/ photos, never public/): lightness weighted fully, a residual of 3 Lab units on 60% of
 * a 3% ring counts as plain, foreground above 4 sigma and 8 units; up to 12 units the box is
 * still a candidate for the scorer. A ring that fits to 4 units on 90% of its length (a carpet,
 * a wood grain, a studio sweep with JPEG noise) is plain too: there the ranker boxed a salient
 * piece of a thin or two-part product (a sickle's blade, one scissor handle). A product that
 * runs off the frame covers part of the ring: the ring outside the largest part fitting to 4
 * units on 95% is plain too, but a part reaching two opposite edges splits the frame like a
 * horizon, so then only a close fit (1.5 units) and a solid part (90% of its box) count; there
 * the ranker boxed the product's most salient piece (a beak, a label). Parts linked by a
 * departure above 0.8 of the threshold are one product for the inner candidate (a dark wing
 * beside a bright beak). */
const pimg_plain_params pimg_detect_plain_params = {
    .ring = 0.03, .wl = 1.0, .max_sigma = 3.0, .min_share = 0.6, .k = 4.0, .floor_ = 8.0,
    .min_area = 0.003, .part = 0.05, .cand_sigma = 12.0, .wide_sigma = 4.0, .wide_share = 0.9,
    .cross_sigma = 4.0, .cross_share = 0.95, .span_sigma = 1.5, .span_fill = 0.9, .link = 0.8,
};

/* Nested-box rule (see pimg_nest_params). Chosen on the 120 validation composites (top-1 hits
 * of the non-plain photos over a grid of margin 0.25..1.25, area 0.6..0.85, foreground share
 * 0.6..0.9), checked on the test composites and the hand-labelled real photos, never public/:
 * the candidate must be at most 0.7 of the winner's area, lie inside it, score within 0.5 of
 * it and keep 75% of its foreground pixels (blend map >= 0.5). Why the foreground condition:
 * without it a box on half of the product (or on one of two products) would win just as often
 * as the product without its surroundings. */
const pimg_nest_params pimg_detect_nest_params = {
    .margin = 0.5, .max_area = 0.7, .min_fg = 0.75, .inside = 0.9, .fg = 0.5,
};

static double box_area4(const double b[4]) { return fmax(0, b[2] - b[0]) * fmax(0, b[3] - b[1]); }

/* Area of a's and b's intersection. */
static double box_inter(const double a[4], const double b[4])
{
    double ix = fmin(a[2], b[2]) - fmax(a[0], b[0]), iy = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    return ix > 0 && iy > 0 ? ix * iy : 0;
}

int pimg_detect_prefer_nested(const pimg_scene *s, const pimg_nest_params *np, double (*boxes)[4], int n,
                              const double *scores, int best)
{
    if (best < 0 || best >= n)
        return best;
    double aw = box_area4(boxes[best]);
    long fw = -1; /* the winner's foreground count, computed only when a candidate needs it */
    int pick = best;
    for (int i = 0; i < n; i++) {
        double a = box_area4(boxes[i]);
        if (i == best || a <= 0 || a > np->max_area * aw || scores[i] < scores[best] - np->margin)
            continue;
        if (pick != best && scores[i] <= scores[pick])
            continue;
        if (box_inter(boxes[i], boxes[best]) < np->inside * a)
            continue;
        if (fw < 0)
            fw = pimg_scene_box_count(s, PIMG_SAL_BLEND, (float)np->fg, boxes[best]);
        if ((double)pimg_scene_box_count(s, PIMG_SAL_BLEND, (float)np->fg, boxes[i]) < np->min_fg * fw)
            continue;
        pick = i;
    }
    return pick;
}

struct pimg_detect_model {
    struct svm_model *svm;
    double sign;   /* +1 when libsvm's first label is the positive class */
    double *w;     /* linear kernel: the collapsed weight vector (dense), else NULL */
    float *sv;     /* RBF: support vectors as a dense nsv x dim matrix (float: 2x less memory
                    * traffic, and the kernel's precision needs are modest) */
    double *coef;  /* RBF: their coefficients */
    int nsv;
    pimg_detect_model *rerank; /* optional second-stage ranker of the top boxes, or NULL */
};

static void free_model(pimg_detect_model *m)
{
    if (!m)
        return;
    if (m->svm)
        svm_free_and_destroy_model(&m->svm);
    free_model(m->rerank);
    free(m->w);
    free(m->sv);
    free(m->coef);
    free(m);
}

/* Densifies the support vectors once, so scoring is a plain loop instead of libsvm's sparse
 * index merge (about 5x faster for our fully dense features). */
static int prepare(pimg_detect_model *m)
{
    const struct svm_model *s = m->svm;
    int labels[2] = {1, -1};
    if (svm_get_nr_class(s) != 2)
        return -1;
    svm_get_labels(s, labels);
    m->sign = labels[0] == 1 ? 1.0 : -1.0;
    int nsv = svm_get_nr_sv(s), D = PIMG_SAL_FEAT_DIM;
    m->nsv = nsv;
    int linear = s->param.kernel_type == LINEAR;
    if (linear) {
        if (!(m->w = calloc(D, sizeof(double))))
            return -1;
    } else {
        m->sv = calloc((size_t)nsv * D, sizeof(float));
        m->coef = malloc(sizeof(double) * (nsv ? nsv : 1));
        if (!m->sv || !m->coef)
            return -1;
    }
    for (int i = 0; i < nsv; i++) {
        double c = s->sv_coef[0][i];
        for (const struct svm_node *p = s->SV[i]; p->index != -1; p++) {
            if (p->index < 1 || p->index > D)
                return -1;
            if (linear)
                m->w[p->index - 1] += c * p->value;
            else
                m->sv[(size_t)i * D + p->index - 1] = (float)p->value;
        }
        if (!linear)
            m->coef[i] = c;
    }
    return 0;
}

pimg_detect_model *pimg_detect_model_wrap(struct svm_model *svm)
{
    pimg_detect_model *m = calloc(1, sizeof *m);
    if (!m) {
        svm_free_and_destroy_model(&svm);
        return NULL;
    }
    m->svm = svm;
    if (prepare(m)) {
        free_model(m);
        return NULL;
    }
    return m;
}

const struct svm_model *pimg_detect_model_svm(const pimg_detect_model *m) { return m ? m->svm : NULL; }

pimg_status pimg_detect_model_load(const char *path, pimg_detect_model **out, pimg_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return pimg_error_set(err, PIMG_ERR_NOT_FOUND, "%s: no detection model", path);
    struct svm_model *svm = svm_load_model(path);
    if (!svm)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: not a libsvm model", path);
    if (svm->param.svm_type != C_SVC || svm_get_nr_class(svm) != 2) {
        svm_free_and_destroy_model(&svm);
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: expected a two-class C-SVC model", path);
    }
    pimg_detect_model *m = pimg_detect_model_wrap(svm);
    if (!m)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: model does not match %d features", path,
                              PIMG_SAL_FEAT_DIM);
    /* The optional re-ranker lives beside the scorer (detect.svm -> detect_rerank.svm), so the
     * model directory layout and the loader's callers stay as they are. */
    char rp[4096];
    if (pimg_detect_rerank_path(path, rp, sizeof rp) == 0 && stat(rp, &sb) == 0) {
        pimg_detect_model *r = NULL;
        pimg_status st = pimg_detect_model_load(rp, &r, err);
        if (st) {
            free_model(m);
            return st;
        }
        free_model(r->rerank); /* one level only */
        r->rerank = NULL;
        m->rerank = r;
    }
    *out = m;
    return PIMG_OK;
}

int pimg_detect_rerank_path(const char *path, char *out, size_t n)
{
    size_t len = strlen(path);
    const char *suffix = "_rerank.svm";
    if (len >= 4 && !strcmp(path + len - 4, ".svm"))
        len -= 4;
    if (len + strlen(suffix) + 1 > n)
        return -1;
    memcpy(out, path, len);
    strcpy(out + len, suffix);
    return 0;
}

void pimg_detect_model_set_rerank(pimg_detect_model *m, pimg_detect_model *r)
{
    if (!m) {
        free_model(r);
        return;
    }
    free_model(m->rerank);
    m->rerank = r;
}

const pimg_detect_model *pimg_detect_model_rerank(const pimg_detect_model *m) { return m ? m->rerank : NULL; }

void pimg_detect_model_free(pimg_detect_model *m) { free_model(m); }

pimg_status pimg_detect_model_save(const pimg_detect_model *m, const char *path, pimg_error *err)
{
    if (!m)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "no model to save");
    const struct svm_model *s = m->svm;
    int rc;
    if (m->w) {
        /* Collapsed linear model: dec = 1 * <w, x> - rho, the same value libsvm computes from
         * all support vectors, in one line instead of thousands. */
        struct svm_node nodes[PIMG_SAL_FEAT_DIM + 1];
        int k = 0;
        for (int j = 0; j < PIMG_SAL_FEAT_DIM; j++)
            if (m->w[j] != 0.0) {
                nodes[k].index = j + 1;
                nodes[k++].value = m->w[j];
            }
        nodes[k].index = -1;
        struct svm_node *sv[1] = {nodes};
        double coef0[1] = {1.0}, *coef[1] = {coef0};
        int nsv[2] = {1, 0};
        struct svm_model c = *s;
        c.l = 1;
        c.SV = sv;
        c.sv_coef = coef;
        c.nSV = nsv;
        c.sv_indices = NULL;
        rc = svm_save_model(path, &c);
    } else {
        rc = svm_save_model(path, s);
    }
    if (rc != 0)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot write model", path);
    char rp[4096];
    if (pimg_detect_rerank_path(path, rp, sizeof rp))
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: path too long", path);
    if (m->rerank)
        return pimg_detect_model_save(m->rerank, rp, err);
    /* No re-ranker: remove a stale one, so the pair on disk is always what was trained. */
    if (remove(rp) != 0 && errno != ENOENT)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot remove stale re-ranker", rp);
    return PIMG_OK;
}

double pimg_detect_model_score(const pimg_detect_model *m, const float *feat)
{
    if (!m)
        return NAN;
    const struct svm_model *s = m->svm;
    int D = PIMG_SAL_FEAT_DIM;
    double dec = 0;
    if (m->w) {
        for (int j = 0; j < D; j++)
            dec += m->w[j] * feat[j];
    } else {
        double g = s->param.gamma;
        for (int i = 0; i < m->nsv; i++) {
            const float *v = m->sv + (size_t)i * D;
            /* four independent sums let the compiler keep the FPU pipelines busy */
            float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            int j = 0;
            for (; j + 4 <= D; j += 4) {
                float d0 = v[j] - feat[j], d1 = v[j + 1] - feat[j + 1];
                float d2 = v[j + 2] - feat[j + 2], d3 = v[j + 3] - feat[j + 3];
                a0 += d0 * d0;
                a1 += d1 * d1;
                a2 += d2 * d2;
                a3 += d3 * d3;
            }
            for (; j < D; j++) {
                float d = v[j] - feat[j];
                a0 += d * d;
            }
            dec += m->coef[i] * exp(-g * (double)(a0 + a1 + a2 + a3));
        }
    }
    dec -= s->rho[0];
    return m->sign * dec;
}

double pimg_detect_model_confidence(const pimg_detect_model *m, double score)
{
    if (!m || isnan(score))
        return 0;
    const struct svm_model *s = m->svm;
    /* libsvm's Platt form is P(label[0]) = 1 / (1 + exp(A f + B)) on its own decision value. */
    if (s->probA && s->probB) {
        double f = m->sign * score;
        double p0 = 1.0 / (1.0 + exp(s->probA[0] * f + s->probB[0]));
        return m->sign > 0 ? p0 : 1.0 - p0;
    }
    return 1.0 / (1.0 + exp(-2.0 * score));
}

int pimg_detect_pick(const pimg_detect_model *m, const pimg_scene *s, double (*boxes)[4], int n,
                     double *scores)
{
    float feat[PIMG_SAL_FEAT_DIM];
    int best = -1;
    double bs = -INFINITY;
    for (int i = 0; i < n; i++) {
        double v;
        if (m) {
            pimg_scene_features(s, boxes[i], feat);
            v = pimg_detect_model_score(m, feat);
        } else {
            v = pimg_scene_heuristic(s, boxes[i]);
        }
        if (scores)
            scores[i] = v;
        if (v > bs) {
            bs = v;
            best = i;
        }
    }
    return best;
}

int pimg_detect_rerank_pick(const pimg_detect_model *m, const pimg_scene *s, double (*boxes)[4], int n,
                            const double *scores)
{
    int top[PIMG_RERANK_K], nt = 0;
    /* the K best by the scorer, best first */
    for (int i = 0; i < n; i++) {
        int j = nt < PIMG_RERANK_K ? nt++ : PIMG_RERANK_K;
        if (j == PIMG_RERANK_K) {
            if (scores[i] <= scores[top[PIMG_RERANK_K - 1]])
                continue;
            j = PIMG_RERANK_K - 1;
        }
        while (j > 0 && scores[top[j - 1]] < scores[i]) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = i;
    }
    if (!nt)
        return -1;
    if (!m || !m->rerank)
        return top[0];
    float feat[PIMG_SAL_FEAT_DIM];
    int best = top[0];
    double bv = -INFINITY;
    for (int k = 0; k < nt; k++) {
        pimg_scene_features(s, boxes[top[k]], feat);
        /* The re-ranker's weights carry its blend with the scorer (set by the trainer). */
        double v = scores[top[k]] + pimg_detect_model_score(m->rerank, feat);
        if (v > bv) {
            bv = v;
            best = top[k];
        }
    }
    return best;
}

double pimg_detect_backdrop_score(double score)
{
    /* Chosen on validation (never public/): a bonus of 0.1, 0.25 or 0.5 wins the same photo
     * (an eagle on water whose backdrop box lost by 0.02), 1.0 loses a cluttered composite. */
    return score + 0.25;
}

pimg_status pimg_detect_run(const pimg_detect_model *m, const pimg_tensor *t, int grabcut_mask,
                            pimg_detection *out, pimg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!t || t->c < 3)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "detect: need a colour tensor");
    if (t->w < 16 || t->h < 16)
        return PIMG_OK; /* too small to hold a product worth boxing: nothing found */
    pimg_scene *s = NULL;
    pimg_status st = pimg_scene_make(t, PIMG_SAL_SIDE, &s, err);
    if (st)
        return st;
    double(*boxes)[4] = malloc(sizeof(double[4]) * (MAX_PROPOSALS + 1));
    double *scores = malloc(sizeof(double) * (MAX_PROPOSALS + 1));
    if (!boxes || !scores) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    int n = pimg_scene_proposals(s, boxes, MAX_PROPOSALS);
    int best = pimg_detect_pick(m, s, boxes, n, scores);
    if (best < 0)
        goto out;
    /* A second-stage re-ranker, when trained, reorders the scorer's top boxes: the scorer
     * says "an object", the re-ranker was trained only on the confusable top candidates. */
    best = pimg_detect_rerank_pick(m, s, boxes, n, scores);
    /* On a cluttered photo the winner is often the product plus what stands around it; a
     * nested candidate that keeps its foreground replaces it (top stays the scorer's own). */
    int top = best;
    const pimg_nest_params *np = &pimg_detect_nest_params;
    best = pimg_detect_prefer_nested(s, np, boxes, n, scores, best);
    /* The plain-backdrop path (plainbox.c): on a plain photo the box of what departs from the
     * fitted backdrop is taken (the scorer only chooses between its two candidates); on a
     * nearly plain one it competes with the proposals. */
    double pc[PIMG_PLAIN_MAXBOX][4], pbox[4], pscore = -INFINITY;
    int npc = 0;
    int plain = pimg_scene_backdrop_box(s, &pimg_detect_plain_params, pc, &npc, NULL);
    if (plain) {
        /* the scorer picks among the backdrop candidates */
        double pcs[PIMG_PLAIN_MAXBOX];
        int pb = pimg_detect_pick(m, s, pc, npc, pcs);
        memcpy(pbox, pc[pb], sizeof pbox);
        pscore = pcs[pb];
    }
    if (plain == 2) {
        /* the bonus stays in its score for the vote and the confidence */
        pscore = pimg_detect_backdrop_score(pscore);
        if (pscore > scores[top]) {
            memcpy(boxes[n], pbox, sizeof pbox); /* the arrays hold MAX_PROPOSALS + 1 */
            scores[n] = pscore;
            top = best = n++;
        }
        plain = 0;
    }
    double bs = scores[best];
    double box[4] = {0, 0, 0, 0}, wsum = 0;
    /* Box voting: average the boxes that overlap the winner and score nearly as well, so
     * one noisy proposal does not set the edges alone. */
    const double vote = 1.0; /* score margin; chosen on validation composites */
    for (int i = 0; i < n; i++) {
        if (i != best && (scores[i] < bs - vote || pimg_box_iou(boxes[i], boxes[best]) < 0.6))
            continue;
        /* the boxes the nested rule rejected as "product plus surroundings" do not vote */
        if (best != top && i != best && box_area4(boxes[best]) < np->max_area * box_area4(boxes[i]) &&
            box_inter(boxes[i], boxes[best]) >= np->inside * box_area4(boxes[best]))
            continue;
        double wgt = exp((scores[i] - bs) / vote * 2);
        for (int k = 0; k < 4; k++)
            box[k] += wgt * boxes[i][k] * s->scale;
        wsum += wgt;
    }
    for (int k = 0; k < 4; k++)
        box[k] /= wsum;
    if (plain) {
        for (int k = 0; k < 4; k++)
            box[k] = pbox[k] * s->scale;
        bs = fmax(bs, pscore); /* confidence: the plain box is at least as sure as the best proposal */
    }

    /* The mask, seeded by the chosen box, with the blend map as the first foreground weight.
     * GrabCut only when the caller draws the mask: it costs about as much again as the rest of
     * detection, and the box refined by either mask scores the same on validation. */
    pimg_tensor prior = {s->w, s->h, 1, s->map[PIMG_SAL_BLEND]};
    double mbox[4], sigma = 1;
    if ((st = pimg_mask_from_box(t, box, &prior, grabcut_mask, &out->mask, mbox, &sigma, err)))
        goto out;
    /* Refine by the mask. On a plain backdrop the mask is the better witness of the product's
     * extent (a white body on cream paper is weak in every saliency map but departs from the
     * backdrop surface), so its bounding box is taken when it overlaps the choice; elsewhere
     * the scorer chooses between the proposal and the mask's box. */
    double cand[4] = {mbox[0] / s->scale, mbox[1] / s->scale, mbox[2] / s->scale, mbox[3] / s->scale};
    const double clean_thr = 0.04; /* same "clean backdrop" level as mask.c */
    if (cand[2] - cand[0] >= 3 && cand[3] - cand[1] >= 3) {
        double cs;
        pimg_detect_pick(m, s, &cand, 1, &cs);
        if (plain) {
            /* the backdrop box stands: the box-seeded mask only supplies the mask */
        } else if (cs >= bs || (sigma < clean_thr && pimg_box_iou(mbox, box) >= 0.3)) {
            memcpy(box, mbox, sizeof box);
            bs = fmax(bs, cs);
        }
    }
    /* A box whose colour-model mask holds no product pixel at all is a box on nothing (a
     * blank frame): report no product rather than an arbitrary window. */
    {
        long on = 0, npx = (long)out->mask->w * out->mask->h;
        for (long i = 0; i < npx && !on; i++)
            on = out->mask->data[i] >= 0.5f;
        if (!on) {
            pimg_tensor_free(out->mask);
            out->mask = NULL;
            goto out;
        }
    }
    out->found = 1;
    memcpy(out->box, box, sizeof box);
    out->confidence = m ? pimg_detect_model_confidence(m, bs) : fmax(0, fmin(1, 0.5 + bs));
out:
    free(boxes);
    free(scores);
    pimg_scene_free(s);
    return st;
}

void pimg_detection_clear(pimg_detection *d)
{
    if (!d)
        return;
    pimg_tensor_free(d->mask);
    memset(d, 0, sizeof *d);
}
