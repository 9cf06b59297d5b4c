/* maxflow.h — lib-internal: s-t minimum cut by the Boykov–Kolmogorov max-flow algorithm.
 *
 * "An Experimental Comparison of Min-Cut/Max-Flow Algorithms for Energy Minimization in Vision"
 * (Boykov & Kolmogorov, PAMI 2004): two search trees, one grown from the source and one from the
 * sink, meet on an augmenting path; after the augmentation the nodes cut off from their tree
 * (orphans) look for a new parent in the same tree before they are freed. On the sparse,
 * grid-like graphs of image segmentation it is much faster than push-relabel or Edmonds–Karp.
 * Written here because Debian packages no C max-flow library and OpenCV is not linked.
 *
 * Usage: pimg_maxflow_new with the node count and an upper bound on the edges, then
 * pimg_maxflow_add_tweights / pimg_maxflow_add_edge, then pimg_maxflow_solve once, then
 * pimg_maxflow_is_source per node. Capacities must be >= 0 and finite. */
#ifndef PIMG_MAXFLOW_H
#define PIMG_MAXFLOW_H

#include "status.h"

typedef struct pimg_maxflow pimg_maxflow;

/* A graph of n_nodes nodes (numbered 0..n_nodes-1, no terminal edges yet) with room for
 * max_edges edges. BAD_INPUT for negative sizes, NOMEM.
 * Ownership: *out written on success, freed with pimg_maxflow_free. */
pimg_status pimg_maxflow_new(int n_nodes, int max_edges, pimg_maxflow **out, pimg_error *err);

/* NULL-safe. */
void pimg_maxflow_free(pimg_maxflow *g);

/* Adds capacity from the source to node i (cap_source) and from node i to the sink (cap_sink);
 * may be called several times for one node (the capacities add up). Only the difference
 * matters for the cut: the common part is counted as flow straight away. */
void pimg_maxflow_add_tweights(pimg_maxflow *g, int i, double cap_source, double cap_sink);

/* Adds the edge i -> j with capacity cap and j -> i with capacity rev_cap (i != j). Returns -1
 * when the max_edges given to pimg_maxflow_new are used up (nothing added), else 0. */
int pimg_maxflow_add_edge(pimg_maxflow *g, int i, int j, double cap, double rev_cap);

/* After a solve: replaces node i's terminal capacities (those given so far, in total) by
 * cap_source and cap_sink, keeping the flow already routed through the edges. A following
 * pimg_maxflow_solve then finds the new minimum cut starting from that flow, which is much
 * less work when few capacities changed much (the iterations of GrabCut): Kohli & Torr,
 * "Dynamic Graph Cuts", 2005, without the reuse of the search trees. */
void pimg_maxflow_set_tweights(pimg_maxflow *g, int i, double cap_source, double cap_sink);

/* Computes the maximum flow, which equals the capacity of the minimum cut, and returns it.
 * Call after all edges are added; again after pimg_maxflow_set_tweights, when the value
 * returned is no longer the cut's capacity (only the cut is meaningful). */
double pimg_maxflow_solve(pimg_maxflow *g);

/* After pimg_maxflow_solve: 1 when node i is on the source side of the minimum cut, 0 when on
 * the sink side. The source side returned is the smallest one: the nodes still reachable from
 * the source through unsaturated edges. */
int pimg_maxflow_is_source(const pimg_maxflow *g, int i);

#endif
