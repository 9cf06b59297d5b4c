/* maxflow.c — Boykov–Kolmogorov max-flow / min-cut (see maxflow.h).
 *
 * Follows the structure of Kolmogorov's reference implementation (maxflow-v3): arcs are
 * stored in sister pairs (arc a and a ^ 1 are the two directions of one edge) and chained per
 * tail node; each node keeps its residual terminal capacity (positive: from the source,
 * negative: to the sink), its tree (source or sink), its parent arc, and a time stamp with the
 * distance to the terminal that the adoption step uses to prefer short paths. Capacities are
 * floats (half the memory of doubles on the 600k arcs of a 320x240 grid); a subtraction of two
 * different floats is never exactly 0, so "saturated" is tested exactly as in the reference. */
#include "maxflow.h"

#include <stdlib.h>

/* parent[] values other than an arc index */
enum { P_NONE = -1, P_TERMINAL = -2, P_ORPHAN = -3 };

#define INF_DIST 1000000000

struct pimg_maxflow {
    int n, max_arcs, n_arcs;
    /* arcs */
    int *head, *next_arc;
    float *rcap;
    /* nodes */
    int *first, *parent, *next_active, *ts, *dist, *next_orphan;
    float *trcap;
    unsigned char *sink; /* tree of the node: 1 sink, 0 source (meaningful when parent != P_NONE) */
    double flow;
    /* active queue (FIFO through next_active; a node's own index marks the queue's end) */
    int q_first, q_last;
    /* orphan queue (FIFO through next_orphan, -1 ends it) */
    int o_first, o_last;
    int time;
};

pimg_status pimg_maxflow_new(int n_nodes, int max_edges, pimg_maxflow **out, pimg_error *err)
{
    if (n_nodes < 0 || max_edges < 0 || max_edges > (1 << 29))
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "maxflow: bad size");
    pimg_maxflow *g = calloc(1, sizeof *g);
    if (!g)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    size_t na = 2 * (size_t)max_edges + 1, nn = (size_t)n_nodes + 1;
    g->n = n_nodes;
    g->max_arcs = 2 * max_edges;
    g->head = malloc(sizeof(int) * na);
    g->next_arc = malloc(sizeof(int) * na);
    g->rcap = malloc(sizeof(float) * na);
    g->first = malloc(sizeof(int) * nn);
    g->parent = malloc(sizeof(int) * nn);
    g->next_active = malloc(sizeof(int) * nn);
    g->ts = malloc(sizeof(int) * nn);
    g->dist = malloc(sizeof(int) * nn);
    g->next_orphan = malloc(sizeof(int) * nn);
    g->trcap = calloc(nn, sizeof(float));
    g->sink = calloc(nn, 1);
    if (!g->head || !g->next_arc || !g->rcap || !g->first || !g->parent || !g->next_active || !g->ts ||
        !g->dist || !g->next_orphan || !g->trcap || !g->sink) {
        pimg_maxflow_free(g);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n_nodes; i++)
        g->first[i] = -1;
    *out = g;
    return PIMG_OK;
}

void pimg_maxflow_free(pimg_maxflow *g)
{
    if (!g)
        return;
    free(g->head);
    free(g->next_arc);
    free(g->rcap);
    free(g->first);
    free(g->parent);
    free(g->next_active);
    free(g->ts);
    free(g->dist);
    free(g->next_orphan);
    free(g->trcap);
    free(g->sink);
    free(g);
}

void pimg_maxflow_add_tweights(pimg_maxflow *g, int i, double cap_source, double cap_sink)
{
    /* Both terminal edges of a node are saturated by the same amount whatever the cut: count
     * that as flow now and keep only the difference (the reference does the same). */
    double t = g->trcap[i];
    if (t > 0)
        cap_source += t;
    else
        cap_sink -= t;
    g->flow += cap_source < cap_sink ? cap_source : cap_sink;
    g->trcap[i] = (float)(cap_source - cap_sink);
}

int pimg_maxflow_add_edge(pimg_maxflow *g, int i, int j, double cap, double rev_cap)
{
    if (g->n_arcs + 2 > g->max_arcs)
        return -1;
    int a = g->n_arcs, b = a + 1;
    g->n_arcs += 2;
    g->head[a] = j;
    g->rcap[a] = (float)cap;
    g->next_arc[a] = g->first[i];
    g->first[i] = a;
    g->head[b] = i;
    g->rcap[b] = (float)rev_cap;
    g->next_arc[b] = g->first[j];
    g->first[j] = b;
    return 0;
}

/* Queues node i as active unless it is already queued (or is the node being processed). */
static void set_active(pimg_maxflow *g, int i)
{
    if (g->next_active[i] != -1)
        return;
    if (g->q_last >= 0)
        g->next_active[g->q_last] = i;
    else
        g->q_first = i;
    g->q_last = i;
    g->next_active[i] = i;
}

/* The next active node that is still in a tree, or -1. */
static int next_active(pimg_maxflow *g)
{
    for (;;) {
        int i = g->q_first;
        if (i < 0)
            return -1;
        if (g->next_active[i] == i)
            g->q_first = g->q_last = -1;
        else
            g->q_first = g->next_active[i];
        g->next_active[i] = -1;
        if (g->parent[i] != P_NONE)
            return i;
    }
}

static void set_orphan(pimg_maxflow *g, int i)
{
    g->parent[i] = P_ORPHAN;
    g->next_orphan[i] = -1;
    if (g->o_last >= 0)
        g->next_orphan[g->o_last] = i;
    else
        g->o_first = i;
    g->o_last = i;
}

/* Pushes the bottleneck capacity along source -> ... -> tail(mid) -> head(mid) -> ... -> sink;
 * nodes whose parent arc (or terminal edge) saturates become orphans. */
static void augment(pimg_maxflow *g, int mid)
{
    float bottleneck = g->rcap[mid];
    int i, a;
    /* In the source tree node i's parent arc points from i to its parent, so the flow runs
     * along the sister arc; in the sink tree it runs along the parent arc itself. */
    for (i = g->head[mid ^ 1];; i = g->head[a]) {
        a = g->parent[i];
        if (a == P_TERMINAL)
            break;
        if (bottleneck > g->rcap[a ^ 1])
            bottleneck = g->rcap[a ^ 1];
    }
    if (bottleneck > g->trcap[i])
        bottleneck = g->trcap[i];
    for (i = g->head[mid];; i = g->head[a]) {
        a = g->parent[i];
        if (a == P_TERMINAL)
            break;
        if (bottleneck > g->rcap[a])
            bottleneck = g->rcap[a];
    }
    if (bottleneck > -g->trcap[i])
        bottleneck = -g->trcap[i];

    g->rcap[mid ^ 1] += bottleneck;
    g->rcap[mid] -= bottleneck;
    for (i = g->head[mid ^ 1];; i = g->head[a]) {
        a = g->parent[i];
        if (a == P_TERMINAL)
            break;
        g->rcap[a] += bottleneck;
        g->rcap[a ^ 1] -= bottleneck;
        if (g->rcap[a ^ 1] == 0)
            set_orphan(g, i);
    }
    g->trcap[i] -= bottleneck;
    if (g->trcap[i] == 0)
        set_orphan(g, i);
    for (i = g->head[mid];; i = g->head[a]) {
        a = g->parent[i];
        if (a == P_TERMINAL)
            break;
        g->rcap[a ^ 1] += bottleneck;
        g->rcap[a] -= bottleneck;
        if (g->rcap[a] == 0)
            set_orphan(g, i);
    }
    g->trcap[i] += bottleneck;
    if (g->trcap[i] == 0)
        set_orphan(g, i);
    g->flow += bottleneck;
}

/* Adoption of orphan i of tree `sink`: the neighbour, still rooted at its terminal and joined
 * by an unsaturated arc in the tree's direction, that is closest to the terminal becomes its
 * parent. Without one, i is freed: its children become orphans and its tree neighbours become
 * active so that they may grow into it again. */
static void adopt(pimg_maxflow *g, int i, int sink)
{
    int a_min = P_NONE, d_min = INF_DIST;
    for (int a0 = g->first[i]; a0 >= 0; a0 = g->next_arc[a0]) {
        /* source tree: flow must reach i from j (arc j -> i = sister of a0); sink tree: flow
         * must leave i to j (arc a0) */
        if ((sink ? g->rcap[a0] : g->rcap[a0 ^ 1]) == 0)
            continue;
        int j = g->head[a0];
        if (g->sink[j] != sink || g->parent[j] == P_NONE)
            continue;
        /* walk to the root: a path through an orphan is no path */
        int d = 0;
        for (;;) {
            if (g->ts[j] == g->time) {
                d += g->dist[j];
                break;
            }
            int a = g->parent[j];
            d++;
            if (a == P_TERMINAL) {
                g->ts[j] = g->time;
                g->dist[j] = 1;
                break;
            }
            if (a == P_ORPHAN) {
                d = INF_DIST;
                break;
            }
            j = g->head[a];
        }
        if (d < INF_DIST) {
            if (d < d_min) {
                a_min = a0;
                d_min = d;
            }
            /* stamp the walked path with its distances so later walks stop early */
            for (j = g->head[a0]; g->ts[j] != g->time; j = g->head[g->parent[j]]) {
                g->ts[j] = g->time;
                g->dist[j] = d--;
            }
        }
    }
    g->parent[i] = a_min;
    if (a_min != P_NONE) {
        g->ts[i] = g->time;
        g->dist[i] = d_min + 1;
        return;
    }
    for (int a0 = g->first[i]; a0 >= 0; a0 = g->next_arc[a0]) {
        int j = g->head[a0];
        int a = g->parent[j];
        if (g->sink[j] != sink || a == P_NONE)
            continue;
        if (sink ? g->rcap[a0] : g->rcap[a0 ^ 1])
            set_active(g, j);
        if (a != P_TERMINAL && a != P_ORPHAN && g->head[a] == i)
            set_orphan(g, j);
    }
}

double pimg_maxflow_solve(pimg_maxflow *g)
{
    g->q_first = g->q_last = -1;
    g->o_first = g->o_last = -1;
    g->time = 0;
    for (int i = 0; i < g->n; i++) {
        g->next_active[i] = -1;
        g->ts[i] = 0;
        if (g->trcap[i] > 0) {
            g->sink[i] = 0;
            g->parent[i] = P_TERMINAL;
            set_active(g, i);
            g->dist[i] = 1;
        } else if (g->trcap[i] < 0) {
            g->sink[i] = 1;
            g->parent[i] = P_TERMINAL;
            set_active(g, i);
            g->dist[i] = 1;
        } else {
            g->parent[i] = P_NONE;
        }
    }
    int cur = -1;
    for (;;) {
        int i = cur;
        if (i >= 0) {
            g->next_active[i] = -1;
            if (g->parent[i] == P_NONE)
                i = -1;
        }
        if (i < 0 && (i = next_active(g)) < 0)
            break;
        /* Growth: claim free neighbours; stop at an arc into the other tree (the path). */
        int mid = -1;
        if (!g->sink[i]) {
            for (int a = g->first[i]; a >= 0; a = g->next_arc[a]) {
                if (g->rcap[a] == 0)
                    continue;
                int j = g->head[a];
                if (g->parent[j] == P_NONE) {
                    g->sink[j] = 0;
                    g->parent[j] = a ^ 1;
                    g->ts[j] = g->ts[i];
                    g->dist[j] = g->dist[i] + 1;
                    set_active(g, j);
                } else if (g->sink[j]) {
                    mid = a;
                    break;
                } else if (g->ts[j] <= g->ts[i] && g->dist[j] > g->dist[i]) {
                    /* a shorter route to the root for j: reparent (keeps paths short) */
                    g->parent[j] = a ^ 1;
                    g->ts[j] = g->ts[i];
                    g->dist[j] = g->dist[i] + 1;
                }
            }
        } else {
            for (int a = g->first[i]; a >= 0; a = g->next_arc[a]) {
                if (g->rcap[a ^ 1] == 0)
                    continue;
                int j = g->head[a];
                if (g->parent[j] == P_NONE) {
                    g->sink[j] = 1;
                    g->parent[j] = a ^ 1;
                    g->ts[j] = g->ts[i];
                    g->dist[j] = g->dist[i] + 1;
                    set_active(g, j);
                } else if (!g->sink[j]) {
                    mid = a ^ 1;
                    break;
                } else if (g->ts[j] <= g->ts[i] && g->dist[j] > g->dist[i]) {
                    g->parent[j] = a ^ 1;
                    g->ts[j] = g->ts[i];
                    g->dist[j] = g->dist[i] + 1;
                }
            }
        }
        g->time++;
        if (mid < 0) {
            cur = -1;
            continue;
        }
        /* i stays the current node (marked active so it is not queued twice): it may hold
         * more paths to the other tree */
        g->next_active[i] = i;
        cur = i;
        augment(g, mid);
        while (g->o_first >= 0) {
            int o = g->o_first;
            g->o_first = g->next_orphan[o];
            if (g->o_first < 0)
                g->o_last = -1;
            adopt(g, o, g->sink[o]);
        }
    }
    return g->flow;
}

int pimg_maxflow_is_source(const pimg_maxflow *g, int i)
{
    return g->parent[i] != P_NONE && !g->sink[i];
}
