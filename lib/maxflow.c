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

typedef struct {
    int head;  /* node the arc points to */
    int next;  /* next arc with the same tail, -1 ends */
    float rcap; /* residual capacity */
} arc;

typedef struct {
    int first;       /* first arc out of the node, -1: none */
    int parent;      /* arc to the parent in the node's tree, or P_NONE / P_TERMINAL / P_ORPHAN */
    int next_active; /* active queue link (-1: not queued; the node itself: last in the queue) */
    int next_orphan; /* orphan queue link (-1 ends) */
    int ts, dist;    /* time stamp and distance to the terminal, valid when ts is recent */
    float trcap;     /* residual terminal capacity: > 0 from the source, < 0 to the sink */
    float tcap;      /* the terminal capacities given, as cap_source - cap_sink */
    int sink;        /* tree of the node: 1 sink, 0 source (meaningful when parent != P_NONE) */
} node;

/* Nodes and arcs are arrays of structs: the search touches several fields of one node or arc
 * at a time, and on a 50k-node grid one cache line per visit instead of one per field made
 * the solve about twice as fast. */
struct pimg_maxflow {
    int n, max_arcs, n_arcs;
    arc *arcs;
    node *nodes;
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
    g->n = n_nodes;
    g->max_arcs = 2 * max_edges;
    g->arcs = malloc(sizeof(arc) * (2 * (size_t)max_edges + 1));
    g->nodes = calloc((size_t)n_nodes + 1, sizeof(node));
    if (!g->arcs || !g->nodes) {
        pimg_maxflow_free(g);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n_nodes; i++)
        g->nodes[i].first = -1;
    *out = g;
    return PIMG_OK;
}

void pimg_maxflow_free(pimg_maxflow *g)
{
    if (!g)
        return;
    free(g->arcs);
    free(g->nodes);
    free(g);
}

void pimg_maxflow_add_tweights(pimg_maxflow *g, int i, double cap_source, double cap_sink)
{
    /* Both terminal edges of a node are saturated by the same amount whatever the cut: count
     * that as flow now and keep only the difference (the reference does the same). */
    double t = g->nodes[i].trcap;
    if (t > 0)
        cap_source += t;
    else
        cap_sink -= t;
    g->flow += cap_source < cap_sink ? cap_source : cap_sink;
    g->nodes[i].trcap = g->nodes[i].tcap = (float)(cap_source - cap_sink);
}

void pimg_maxflow_set_tweights(pimg_maxflow *g, int i, double cap_source, double cap_sink)
{
    /* The flow through the edges stays feasible: the node's terminal edges only have to carry
     * its new net excess, and adding one constant to both terminal capacities (which moves no
     * cut) makes any excess fit. So the residual terminal capacity just moves by the change. */
    node *v = &g->nodes[i];
    double t = cap_source - cap_sink;
    v->trcap = (float)(v->trcap + (t - v->tcap));
    v->tcap = (float)t;
}

int pimg_maxflow_add_edge(pimg_maxflow *g, int i, int j, double cap, double rev_cap)
{
    if (g->n_arcs + 2 > g->max_arcs)
        return -1;
    int a = g->n_arcs, b = a + 1;
    g->n_arcs += 2;
    g->arcs[a].head = j;
    g->arcs[a].rcap = (float)cap;
    g->arcs[a].next = g->nodes[i].first;
    g->nodes[i].first = a;
    g->arcs[b].head = i;
    g->arcs[b].rcap = (float)rev_cap;
    g->arcs[b].next = g->nodes[j].first;
    g->nodes[j].first = b;
    return 0;
}

/* Queues node i as active unless it is already queued (or is the node being processed). */
static void set_active(pimg_maxflow *g, int i)
{
    if (g->nodes[i].next_active != -1)
        return;
    if (g->q_last >= 0)
        g->nodes[g->q_last].next_active = i;
    else
        g->q_first = i;
    g->q_last = i;
    g->nodes[i].next_active = i;
}

/* The next active node that is still in a tree, or -1. */
static int next_active(pimg_maxflow *g)
{
    for (;;) {
        int i = g->q_first;
        if (i < 0)
            return -1;
        if (g->nodes[i].next_active == i)
            g->q_first = g->q_last = -1;
        else
            g->q_first = g->nodes[i].next_active;
        g->nodes[i].next_active = -1;
        if (g->nodes[i].parent != P_NONE)
            return i;
    }
}

static void set_orphan(pimg_maxflow *g, int i)
{
    g->nodes[i].parent = P_ORPHAN;
    g->nodes[i].next_orphan = -1;
    if (g->o_last >= 0)
        g->nodes[g->o_last].next_orphan = i;
    else
        g->o_first = i;
    g->o_last = i;
}

/* Pushes the bottleneck capacity along source -> ... -> tail(mid) -> head(mid) -> ... -> sink;
 * nodes whose parent arc (or terminal edge) saturates become orphans. */
static void augment(pimg_maxflow *g, int mid)
{
    float bottleneck = g->arcs[mid].rcap;
    int i, a;
    /* In the source tree node i's parent arc points from i to its parent, so the flow runs
     * along the sister arc; in the sink tree it runs along the parent arc itself. */
    for (i = g->arcs[mid ^ 1].head;; i = g->arcs[a].head) {
        a = g->nodes[i].parent;
        if (a == P_TERMINAL)
            break;
        if (bottleneck > g->arcs[a ^ 1].rcap)
            bottleneck = g->arcs[a ^ 1].rcap;
    }
    if (bottleneck > g->nodes[i].trcap)
        bottleneck = g->nodes[i].trcap;
    for (i = g->arcs[mid].head;; i = g->arcs[a].head) {
        a = g->nodes[i].parent;
        if (a == P_TERMINAL)
            break;
        if (bottleneck > g->arcs[a].rcap)
            bottleneck = g->arcs[a].rcap;
    }
    if (bottleneck > -g->nodes[i].trcap)
        bottleneck = -g->nodes[i].trcap;

    g->arcs[mid ^ 1].rcap += bottleneck;
    g->arcs[mid].rcap -= bottleneck;
    for (i = g->arcs[mid ^ 1].head;; i = g->arcs[a].head) {
        a = g->nodes[i].parent;
        if (a == P_TERMINAL)
            break;
        g->arcs[a].rcap += bottleneck;
        g->arcs[a ^ 1].rcap -= bottleneck;
        if (g->arcs[a ^ 1].rcap == 0)
            set_orphan(g, i);
    }
    g->nodes[i].trcap -= bottleneck;
    if (g->nodes[i].trcap == 0)
        set_orphan(g, i);
    for (i = g->arcs[mid].head;; i = g->arcs[a].head) {
        a = g->nodes[i].parent;
        if (a == P_TERMINAL)
            break;
        g->arcs[a ^ 1].rcap += bottleneck;
        g->arcs[a].rcap -= bottleneck;
        if (g->arcs[a].rcap == 0)
            set_orphan(g, i);
    }
    g->nodes[i].trcap += bottleneck;
    if (g->nodes[i].trcap == 0)
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
    for (int a0 = g->nodes[i].first; a0 >= 0; a0 = g->arcs[a0].next) {
        /* source tree: flow must reach i from j (arc j -> i = sister of a0); sink tree: flow
         * must leave i to j (arc a0) */
        if ((sink ? g->arcs[a0].rcap : g->arcs[a0 ^ 1].rcap) == 0)
            continue;
        int j = g->arcs[a0].head;
        if (g->nodes[j].sink != sink || g->nodes[j].parent == P_NONE)
            continue;
        /* walk to the root: a path through an orphan is no path */
        int d = 0;
        for (;;) {
            if (g->nodes[j].ts == g->time) {
                d += g->nodes[j].dist;
                break;
            }
            int a = g->nodes[j].parent;
            d++;
            if (a == P_TERMINAL) {
                g->nodes[j].ts = g->time;
                g->nodes[j].dist = 1;
                break;
            }
            if (a == P_ORPHAN) {
                d = INF_DIST;
                break;
            }
            j = g->arcs[a].head;
        }
        if (d < INF_DIST) {
            if (d < d_min) {
                a_min = a0;
                d_min = d;
            }
            /* stamp the walked path with its distances so later walks stop early */
            for (j = g->arcs[a0].head; g->nodes[j].ts != g->time; j = g->arcs[g->nodes[j].parent].head) {
                g->nodes[j].ts = g->time;
                g->nodes[j].dist = d--;
            }
        }
    }
    g->nodes[i].parent = a_min;
    if (a_min != P_NONE) {
        g->nodes[i].ts = g->time;
        g->nodes[i].dist = d_min + 1;
        return;
    }
    for (int a0 = g->nodes[i].first; a0 >= 0; a0 = g->arcs[a0].next) {
        int j = g->arcs[a0].head;
        int a = g->nodes[j].parent;
        if (g->nodes[j].sink != sink || a == P_NONE)
            continue;
        if (sink ? g->arcs[a0].rcap : g->arcs[a0 ^ 1].rcap)
            set_active(g, j);
        if (a != P_TERMINAL && a != P_ORPHAN && g->arcs[a].head == i)
            set_orphan(g, j);
    }
}

double pimg_maxflow_solve(pimg_maxflow *g)
{
    g->q_first = g->q_last = -1;
    g->o_first = g->o_last = -1;
    g->time = 0;
    for (int i = 0; i < g->n; i++) {
        g->nodes[i].next_active = -1;
        g->nodes[i].ts = 0;
        if (g->nodes[i].trcap > 0) {
            g->nodes[i].sink = 0;
            g->nodes[i].parent = P_TERMINAL;
            set_active(g, i);
            g->nodes[i].dist = 1;
        } else if (g->nodes[i].trcap < 0) {
            g->nodes[i].sink = 1;
            g->nodes[i].parent = P_TERMINAL;
            set_active(g, i);
            g->nodes[i].dist = 1;
        } else {
            g->nodes[i].parent = P_NONE;
        }
    }
    int cur = -1;
    for (;;) {
        int i = cur;
        if (i >= 0) {
            g->nodes[i].next_active = -1;
            if (g->nodes[i].parent == P_NONE)
                i = -1;
        }
        if (i < 0 && (i = next_active(g)) < 0)
            break;
        /* Growth: claim free neighbours; stop at an arc into the other tree (the path). */
        int mid = -1;
        if (!g->nodes[i].sink) {
            for (int a = g->nodes[i].first; a >= 0; a = g->arcs[a].next) {
                if (g->arcs[a].rcap == 0)
                    continue;
                int j = g->arcs[a].head;
                if (g->nodes[j].parent == P_NONE) {
                    g->nodes[j].sink = 0;
                    g->nodes[j].parent = a ^ 1;
                    g->nodes[j].ts = g->nodes[i].ts;
                    g->nodes[j].dist = g->nodes[i].dist + 1;
                    set_active(g, j);
                } else if (g->nodes[j].sink) {
                    mid = a;
                    break;
                } else if (g->nodes[j].ts <= g->nodes[i].ts && g->nodes[j].dist > g->nodes[i].dist) {
                    /* a shorter route to the root for j: reparent (keeps paths short) */
                    g->nodes[j].parent = a ^ 1;
                    g->nodes[j].ts = g->nodes[i].ts;
                    g->nodes[j].dist = g->nodes[i].dist + 1;
                }
            }
        } else {
            for (int a = g->nodes[i].first; a >= 0; a = g->arcs[a].next) {
                if (g->arcs[a ^ 1].rcap == 0)
                    continue;
                int j = g->arcs[a].head;
                if (g->nodes[j].parent == P_NONE) {
                    g->nodes[j].sink = 1;
                    g->nodes[j].parent = a ^ 1;
                    g->nodes[j].ts = g->nodes[i].ts;
                    g->nodes[j].dist = g->nodes[i].dist + 1;
                    set_active(g, j);
                } else if (!g->nodes[j].sink) {
                    mid = a ^ 1;
                    break;
                } else if (g->nodes[j].ts <= g->nodes[i].ts && g->nodes[j].dist > g->nodes[i].dist) {
                    g->nodes[j].parent = a ^ 1;
                    g->nodes[j].ts = g->nodes[i].ts;
                    g->nodes[j].dist = g->nodes[i].dist + 1;
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
        g->nodes[i].next_active = i;
        cur = i;
        augment(g, mid);
        while (g->o_first >= 0) {
            int o = g->o_first;
            g->o_first = g->nodes[o].next_orphan;
            if (g->o_first < 0)
                g->o_last = -1;
            adopt(g, o, g->nodes[o].sink);
        }
    }
    return g->flow;
}

int pimg_maxflow_is_source(const pimg_maxflow *g, int i)
{
    return g->nodes[i].parent != P_NONE && !g->nodes[i].sink;
}
