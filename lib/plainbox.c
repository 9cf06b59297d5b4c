/* plainbox.c — the plain-backdrop path of the product detector.
 *
 * On a product shot against a sweep, paper or wall, the simplest witness of the product's extent
 * is "everything that is not backdrop": a smooth colour surface fitted to the frame's outer ring
 * predicts the backdrop everywhere, and the bounding box of the pixels that depart from it is the
 * product box. This beats ranking saliency proposals on such photos (a learned ranker tends to
 * pick a salient part of a frame-filling product). The test that decides whether the photo IS
 * plain is the same fit: a small residual on most of the ring. A product may touch or cross a
 * few edges, so the fit starts from the ring's dominant colour, not from the whole ring, and a
 * product that crosses the frame is not counted against the ring's fit where it covers it.
 * Cluttered photos fail the test and go to the SVM ranking. */
#include "saliency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "surface.h"

/* Lab distance with lightness down-weighted: soft shadows and light fall-off change mostly L. */
static double lab_dist(const float *p, const double *q, double wl)
{
    double d0 = wl * (p[0] - q[0]), d1 = p[1] - q[1], d2 = p[2] - q[2];
    return sqrt(d0 * d0 + d1 * d1 + d2 * d2);
}

/* Distance of pixel p of the scene from the fitted backdrop surface (coef per Lab channel over
 * pimg_surface_basis()). */
static double backdrop_dist(const pimg_scene *s, const double coef[3][6], int p, double wl)
{
    double v[6], q[3];
    pimg_surface_basis((double)(p % s->w) / s->w - 0.5, (double)(p / s->w) / s->h - 0.5, v);
    for (int ch = 0; ch < 3; ch++) {
        q[ch] = 0;
        for (int r = 0; r < 6; r++)
            q[ch] += coef[ch][r] * v[r];
    }
    return lab_dist(s->lab + 3 * (size_t)p, q, wl);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Marks in[i] = 1 for the ring pixels whose colour is near the backdrop's: the mean colour of
 * the angular sector that agrees (within SEED_TOL) with the most other sectors. */
enum { NSECT = 32 };
#define PI 3.14159265358979323846
#define SEED_TOL 10.0
static void seed_inliers(const pimg_scene *s, const int *ring, int nr, double wl, unsigned char *in)
{
    int w = s->w, h = s->h;
    double mean[NSECT][3] = {{0}};
    int cnt[NSECT] = {0};
    for (int i = 0; i < nr; i++) {
        int p = ring[i];
        double a = atan2((double)(p / w) / h - 0.5, (double)(p % w) / w - 0.5);
        int k = (int)((a + PI) / (2 * PI) * NSECT) % NSECT;
        for (int c = 0; c < 3; c++)
            mean[k][c] += s->lab[3 * (size_t)p + c];
        cnt[k]++;
    }
    int best = -1, bestn = -1;
    for (int k = 0; k < NSECT; k++) {
        if (!cnt[k])
            continue;
        for (int c = 0; c < 3; c++)
            mean[k][c] /= cnt[k];
    }
    for (int k = 0; k < NSECT; k++) {
        if (!cnt[k])
            continue;
        int agree = 0;
        for (int j = 0; j < NSECT; j++) {
            float f[3] = {(float)mean[j][0], (float)mean[j][1], (float)mean[j][2]};
            if (cnt[j] && lab_dist(f, mean[k], wl) <= SEED_TOL)
                agree += cnt[j];
        }
        if (agree > bestn) {
            bestn = agree;
            best = k;
        }
    }
    for (int i = 0; i < nr; i++)
        in[i] = best < 0 || lab_dist(s->lab + 3 * (size_t)ring[i], mean[best], wl) <= 1.5 * SEED_TOL;
}

/* 1: plain, box written; 2: not plain but the backdrop fit is good enough that the box is
 * worth offering the scorer as one more candidate; 0: nothing. */
int pimg_scene_backdrop_box(const pimg_scene *s, const pimg_plain_params *pp, double (*boxes)[4], int *nbox,
                            pimg_plain_stats *st)
{
    pimg_plain_stats dummy;
    if (!st)
        st = &dummy;
    memset(st, 0, sizeof *st);
    int w = s->w, h = s->h, n = w * h;
    int rw = (int)ceil(pp->ring * (w > h ? w : h));
    if (rw < 2)
        rw = 2;
    int cap = 2 * rw * (w + h);
    int *ring = malloc(sizeof(int) * cap);
    unsigned char *in = malloc(cap), *fg = malloc(n);
    double *res = malloc(sizeof(double) * cap);
    int *stack = malloc(sizeof(int) * n), *lab = malloc(sizeof(int) * n);
    int nr = 0, plain = 0;
    *nbox = 0;
    if (!ring || !in || !fg || !res || !stack || !lab)
        goto out;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if ((x < rw || x >= w - rw || y < rw || y >= h - rw) && nr < cap)
                ring[nr++] = y * w + x;
    /* Seed the fit with the backdrop's colour, not with the whole ring: a product that touches
     * or crosses the frame fills part of the ring, and a least-squares fit to everything (even
     * reweighted) then settles between product and backdrop. The ring is cut into angular
     * sectors; the colour shared by the most sectors is the backdrop, and the ring pixels near
     * it are the first inliers. */
    seed_inliers(s, ring, nr, pp->wl, in);
    double coef[3][6], sigma = 1e9;
    for (int it = 0; it < 4; it++) {
        double a[3][6][6], b[3][6];
        memset(a, 0, sizeof a);
        memset(b, 0, sizeof b);
        int used = 0;
        for (int i = 0; i < nr; i++) {
            if (!in[i])
                continue;
            int p = ring[i];
            double v[6];
            pimg_surface_basis((double)(p % w) / w - 0.5, (double)(p / w) / h - 0.5, v);
            const float *L = s->lab + 3 * (size_t)p;
            for (int r = 0; r < 6; r++)
                for (int c = 0; c < 6; c++)
                    a[0][r][c] += v[r] * v[c];
            for (int ch = 0; ch < 3; ch++)
                for (int r = 0; r < 6; r++)
                    b[ch][r] += v[r] * L[ch];
            used++;
        }
        if (used < 24)
            goto out;
        for (int ch = 0; ch < 3; ch++) {
            memcpy(a[ch], a[0], sizeof a[0]);
        }
        for (int ch = 0; ch < 3; ch++) {
            if (pimg_surface_solve(a[ch], b[ch], coef[ch]))
                goto out;
        }
        int k = 0;
        for (int i = 0; i < nr; i++)
            res[k++] = backdrop_dist(s, coef, ring[i], pp->wl);
        double *sorted = malloc(sizeof(double) * nr);
        if (!sorted)
            goto out;
        /* The backdrop is the best-fitting part of the ring: sigma from the residuals of the
         * current inliers only, so a product covering part of the ring does not inflate it. */
        int ni = 0;
        for (int i = 0; i < nr; i++)
            if (in[i])
                sorted[ni++] = res[i];
        if (ni < 24) {
            free(sorted);
            goto out;
        }
        qsort(sorted, ni, sizeof(double), cmp_double);
        sigma = 1.4826 * sorted[ni / 2] + 0.3;
        free(sorted);
        for (int i = 0; i < nr; i++)
            in[i] = res[i] <= 3 * sigma + 1.0;
    }
    int inl = 0;
    for (int i = 0; i < nr; i++)
        inl += in[i];
    double share = (double)inl / nr;

    st->sigma = sigma;
    st->share = share;
    double thr = fmax(pp->k * sigma, pp->floor_);
    /* fg: 2 = product (above thr), 1 = a weaker departure (above link * thr), 0 = backdrop */
    for (int p = 0; p < n; p++) {
        double d = backdrop_dist(s, coef, p, pp->wl);
        fg[p] = d > thr ? 2 : pp->link > 0 && d > pp->link * thr;
    }
    /* Connected parts; specks and JPEG ringing are dropped, parts of one product are joined. */
    for (int i = 0; i < n; i++)
        lab[i] = fg[i] == 2 ? -1 : 0;
    enum { MAXB = 512 };
    int bx[MAXB][4], area[MAXB];
    int nb = pimg_label_parts(lab, w, h, stack, MAXB, bx, area);
    int big = -1;
    for (int i = 0; i < nb; i++)
        if (big < 0 || area[i] > area[big])
            big = i;
    long fgn = 0;
    for (int p = 0; p < n; p++)
        fgn += fg[p] == 2;
    st->fg_share = (double)fgn / n;
    if (big >= 0) {
        st->big_share = fgn ? (double)area[big] / fgn : 0;
        st->big_fill = (double)area[big] / ((double)(bx[big][2] - bx[big][0]) * (bx[big][3] - bx[big][1]));
        /* edges of the frame the largest part reaches */
        st->big_edges = (bx[big][0] <= 0) + (bx[big][1] <= 0) + (bx[big][2] >= w) + (bx[big][3] >= h);
        st->big_span = (bx[big][0] <= 0 && bx[big][2] >= w) || (bx[big][1] <= 0 && bx[big][3] >= h);
    }
    for (int i = 0; i < nb; i++)
        st->nparts += area[i] >= 0.002 * n;
    /* The ring pixels the largest part covers are a product running off the frame there, not
     * a poor fit: a product that crosses two or three edges can leave less than half of the
     * ring to the backdrop (a cymbal filling the bottom of the frame), yet the rest of the
     * ring fits its backdrop closely. */
    int rbig = 0;
    for (int i = 0; big >= 0 && i < nr; i++)
        rbig += !in[i] && lab[ring[i]] == big + 1;
    st->cross_share = nr > rbig ? (double)inl / (nr - rbig) : 0;
    int is_plain = (sigma <= pp->max_sigma && share >= pp->min_share) ||
                   (pp->wide_share > 0 && sigma <= pp->wide_sigma && share >= pp->wide_share) ||
                   (pp->cross_share > 0 && big >= 0 && st->big_edges >= 1 && st->cross_share >= pp->cross_share &&
                    (st->big_span ? sigma <= pp->span_sigma && st->big_fill >= pp->span_fill
                                  : sigma <= pp->cross_sigma));
    /* A "product" that reaches all four edges yet covers less than half of its box is a
     * scene's lines or texture on a smooth field (a wall, a sky), not a product: it may still
     * compete as a candidate, but the photo is not taken for plain. */
    if (st->big_edges == 4 && st->big_fill < 0.5)
        is_plain = 0;
    if (!is_plain && (sigma > pp->cand_sigma || share < pp->min_share))
        goto out;
    if (big < 0 || area[big] < pp->min_area * n)
        goto out;
    /* Parts of one product split by a low-contrast band (a dark wing on a dark backdrop beside
     * a bright beak) are joined through a weaker departure from the backdrop: each part's
     * component at link * the foreground threshold. */
    int linked[MAXB];
    for (int i = 0; i < nb; i++)
        linked[i] = i;
    if (pp->link > 0) {
        int *low = malloc(sizeof(int) * n);
        if (!low)
            goto out;
        for (int p = 0; p < n; p++)
            low[p] = fg[p] ? -1 : 0;
        int lbx[MAXB][4], lar[MAXB];
        pimg_label_parts(low, w, h, stack, MAXB, lbx, lar);
        for (int p = 0; p < n; p++)
            if (lab[p] > 0 && low[p] > 0)
                linked[lab[p] - 1] = MAXB + low[p];
        free(low);
    }
    /* Candidates: [0] the union of all sizeable parts (the product, possibly in pieces), and
     * the union of those parts that do not touch the frame: a backdrop that passed the plainness
     * test may still carry its own objects (lamps, a horizon), and those usually run off the
     * edge while the product sits inside. The scorer chooses between the two. (Also offering
     * the largest part alone or the union of the big parts lost hand-labelled real photos on
     * validation: the scorer then picks a salient piece of a frame-filling product.) */
    unsigned char sizeable[MAXB], touches[MAXB];
    for (int i = 0; i < nb; i++) {
        sizeable[i] = area[i] >= 0.002 * n && area[i] >= pp->part * area[big];
        touches[i] = bx[i][0] <= 0 || bx[i][1] <= 0 || bx[i][2] >= w || bx[i][3] >= h;
    }
    int nc = 0;
    for (int v = 0; v < 2; v++) {
        double u[4] = {w, h, 0, 0};
        int any = 0;
        for (int i = 0; i < nb; i++) {
            int touch = touches[i];
            /* a frame-touching part linked to an inner part is more of the inner product */
            for (int j = 0; v == 1 && touch && j < nb; j++)
                if (j != i && linked[j] == linked[i] && sizeable[j] && !touches[j])
                    touch = 0;
            if (!sizeable[i] || (v == 1 && touch))
                continue;
            any = 1;
            u[0] = fmin(u[0], bx[i][0]);
            u[1] = fmin(u[1], bx[i][1]);
            u[2] = fmax(u[2], bx[i][2]);
            u[3] = fmax(u[3], bx[i][3]);
        }
        if (any && (nc == 0 || memcmp(boxes[0], u, sizeof u) != 0))
            memcpy(boxes[nc++], u, sizeof u);
    }
    *nbox = nc;
    plain = is_plain ? 1 : 2;
out:
    free(ring);
    free(in);
    free(fg);
    free(res);
    free(stack);
    free(lab);
    return plain;
}
