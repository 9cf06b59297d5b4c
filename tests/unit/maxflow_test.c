/* maxflow_test.c — lib/maxflow on graphs whose minimum cut is known: a textbook network, every
 * partition of small random graphs enumerated by brute force, and random grids where the
 * returned partition's own cut capacity must equal the flow (a cut is never below a flow, so
 * equality certifies both as optimal). */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "maxflow.h"
#include "testutil.h"

typedef struct {
    int i, j;
    double cap, rev;
} edge;

/* Capacity of the cut with source side `src` (src[i] = 1): source edges to sink-side nodes,
 * sink edges of source-side nodes, and edges crossing from the source side to the sink side. */
static double cut_value(int n, const double *cs, const double *ct, const edge *e, int ne, const int *src)
{
    double c = 0;
    for (int i = 0; i < n; i++)
        c += src[i] ? ct[i] : cs[i];
    for (int k = 0; k < ne; k++) {
        if (src[e[k].i] && !src[e[k].j])
            c += e[k].cap;
        if (src[e[k].j] && !src[e[k].i])
            c += e[k].rev;
    }
    return c;
}

/* The minimum cut by trying every labelling (n <= 10). */
static double brute_min_cut(int n, const double *cs, const double *ct, const edge *e, int ne)
{
    double best = INFINITY;
    int s[10];
    for (int m = 0; m < (1 << n); m++) {
        for (int i = 0; i < n; i++)
            s[i] = (m >> i) & 1;
        best = fmin(best, cut_value(n, cs, ct, e, ne, s));
    }
    return best;
}

static double solve(int n, const double *cs, const double *ct, const edge *e, int ne, int *src)
{
    pimg_maxflow *g = NULL;
    ck_assert_int_eq(pimg_maxflow_new(n, ne, &g, NULL), PIMG_OK);
    for (int i = 0; i < n; i++)
        pimg_maxflow_add_tweights(g, i, cs[i], ct[i]);
    for (int k = 0; k < ne; k++)
        ck_assert_int_eq(pimg_maxflow_add_edge(g, e[k].i, e[k].j, e[k].cap, e[k].rev), 0);
    ck_assert_int_eq(pimg_maxflow_add_edge(g, 0, 1, 1, 1), -1); /* the edge budget is enforced */
    double f = pimg_maxflow_solve(g);
    for (int i = 0; i < n; i++)
        src[i] = pimg_maxflow_is_source(g, i);
    pimg_maxflow_free(g);
    return f;
}

/* CLRS figure 26.1 (s, v1..v4, t; max flow 23), the terminal arcs as t-weights. */
START_TEST(textbook_network)
{
    /* nodes: v1 = 0, v2 = 1, v3 = 2, v4 = 3; s->v1 16, s->v2 13, v3->t 20, v4->t 4 */
    double cs[4] = {16, 13, 0, 0}, ct[4] = {0, 0, 20, 4};
    edge e[] = {{0, 2, 12, 0}, {1, 0, 4, 0}, {2, 1, 9, 0}, {1, 3, 14, 0}, {3, 2, 7, 0}};
    int src[4];
    double f = solve(4, cs, ct, e, 5, src);
    ck_assert_double_eq_tol(f, 23, 1e-9);
    ck_assert_double_eq_tol(cut_value(4, cs, ct, e, 5, src), 23, 1e-9);
    /* the smallest source side: {s, v1, v2, v4} */
    ck_assert_int_eq(src[0], 1);
    ck_assert_int_eq(src[1], 1);
    ck_assert_int_eq(src[2], 0);
    ck_assert_int_eq(src[3], 1);
    /* a node with equal terminal weights only adds flow */
    double cs2[1] = {5}, ct2[1] = {5};
    int s2[1];
    ck_assert_double_eq_tol(solve(1, cs2, ct2, NULL, 0, s2), 5, 1e-9);
    ck_assert_int_eq(s2[0], 0);
}
END_TEST

START_TEST(random_small_graphs_match_brute_force)
{
    unsigned long long rng = 7;
    for (int trial = 0; trial < 300; trial++) {
        int n = 2 + trial % 9;
        double cs[10], ct[10];
        edge e[64];
        int ne = 0;
        for (int i = 0; i < n; i++) {
            /* about a third of the terminal weights are zero, as in sparse real graphs */
            cs[i] = pimg_test_urand(&rng) < 0.35 ? 0 : floor(10 * pimg_test_urand(&rng));
            ct[i] = pimg_test_urand(&rng) < 0.35 ? 0 : floor(10 * pimg_test_urand(&rng));
        }
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                if (pimg_test_urand(&rng) < 0.5 && ne < 64) {
                    e[ne].i = i;
                    e[ne].j = j;
                    e[ne].cap = floor(8 * pimg_test_urand(&rng));
                    e[ne].rev = pimg_test_urand(&rng) < 0.3 ? 0 : floor(8 * pimg_test_urand(&rng));
                    ne++;
                }
        int src[10];
        double f = solve(n, cs, ct, e, ne, src);
        double best = brute_min_cut(n, cs, ct, e, ne);
        ck_assert_msg(fabs(f - best) < 1e-6, "trial %d: flow %g, min cut %g", trial, f, best);
        ck_assert_double_eq_tol(cut_value(n, cs, ct, e, ne, src), best, 1e-6);
    }
}
END_TEST

/* Terminal capacities changed after a solve: the re-solve, which starts from the old flow,
 * still finds the minimum cut of the new graph (brute force), several rounds in a row. */
START_TEST(changed_tweights_resolve_to_the_new_min_cut)
{
    unsigned long long rng = 31;
    for (int trial = 0; trial < 150; trial++) {
        int n = 3 + trial % 8;
        double cs[10], ct[10];
        edge e[64];
        int ne = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                if (pimg_test_urand(&rng) < 0.6) {
                    double c = floor(6 * pimg_test_urand(&rng));
                    e[ne++] = (edge){i, j, c, pimg_test_urand(&rng) < 0.5 ? c : floor(6 * pimg_test_urand(&rng))};
                }
        pimg_maxflow *g = NULL;
        ck_assert_int_eq(pimg_maxflow_new(n, ne, &g, NULL), PIMG_OK);
        for (int k = 0; k < ne; k++)
            pimg_maxflow_add_edge(g, e[k].i, e[k].j, e[k].cap, e[k].rev);
        for (int round = 0; round < 4; round++) {
            for (int i = 0; i < n; i++) {
                cs[i] = pimg_test_urand(&rng) < 0.3 ? 0 : floor(12 * pimg_test_urand(&rng));
                ct[i] = pimg_test_urand(&rng) < 0.3 ? 0 : floor(12 * pimg_test_urand(&rng));
                if (round == 0)
                    pimg_maxflow_add_tweights(g, i, cs[i], ct[i]);
                else
                    pimg_maxflow_set_tweights(g, i, cs[i], ct[i]);
            }
            double f = pimg_maxflow_solve(g);
            int src[10];
            for (int i = 0; i < n; i++)
                src[i] = pimg_maxflow_is_source(g, i);
            double best = brute_min_cut(n, cs, ct, e, ne);
            if (round == 0)
                ck_assert_double_eq_tol(f, best, 1e-6);
            ck_assert_msg(fabs(cut_value(n, cs, ct, e, ne, src) - best) < 1e-6, "trial %d round %d: cut %g, min %g",
                          trial, round, cut_value(n, cs, ct, e, ne, src), best);
        }
        pimg_maxflow_free(g);
    }
}
END_TEST

/* 8-connected grids with real-valued capacities, the shape GrabCut builds. */
START_TEST(random_grids_cut_equals_flow)
{
    unsigned long long rng = 99;
    for (int trial = 0; trial < 6; trial++) {
        int w = 40 + 13 * trial, h = 30 + 7 * trial, n = w * h;
        double *cs = malloc(sizeof(double) * n), *ct = malloc(sizeof(double) * n);
        edge *e = malloc(sizeof(edge) * 4 * n);
        int *src = malloc(sizeof(int) * n), ne = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int i = y * w + x;
                /* a disc that prefers the source, noise elsewhere */
                double d = hypot(x - w / 2.0, y - h / 2.0) < h / 3.0 ? 1 : -1;
                double u = d + 2.5 * (pimg_test_urand(&rng) - 0.5);
                cs[i] = u > 0 ? u : 0;
                ct[i] = u < 0 ? -u : 0;
                static const int dx[4] = {1, 0, 1, -1}, dy[4] = {0, 1, 1, 1};
                for (int k = 0; k < 4; k++) {
                    int xx = x + dx[k], yy = y + dy[k];
                    if (xx < 0 || xx >= w || yy >= h)
                        continue;
                    double c = 0.6 * pimg_test_urand(&rng);
                    e[ne++] = (edge){i, yy * w + xx, c, c};
                }
            }
        double f = solve(n, cs, ct, e, ne, src);
        double c = cut_value(n, cs, ct, e, ne, src);
        ck_assert_msg(fabs(f - c) < 1e-3 * (1 + f), "grid %d: flow %g, cut %g", trial, f, c);
        /* and the disc is mostly on the source side */
        int in = 0, in_src = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (hypot(x - w / 2.0, y - h / 2.0) < h / 3.0 - 2) {
                    in++;
                    in_src += src[y * w + x];
                }
        ck_assert_int_ge(in_src, 9 * in / 10);
        free(cs);
        free(ct);
        free(e);
        free(src);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("maxflow");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, textbook_network);
    tcase_add_test(tc, random_small_graphs_match_brute_force);
    tcase_add_test(tc, changed_tweights_resolve_to_the_new_min_cut);
    tcase_add_test(tc, random_grids_cut_equals_flow);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
