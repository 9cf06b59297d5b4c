/* saliency.h — lib-internal: the small "scene" the product detector reasons on.
 *
 * The analysis tensor is shrunk to a working copy of about 160 px on its longest side; on it we
 * compute Lab colour, grey, and four foreground-evidence maps (distance to the border colours,
 * frequency-tuned saliency, edge density, and their blend), each with an integral image so the
 * mean of any box costs four lookups. From the maps come candidate boxes (thresholded blobs,
 * mass intervals, a coarse window grid) and a fixed-length feature vector per box (geometry,
 * inside/ring/outside contrast per map, colour-histogram distances, HOG of the grey crop and a
 * small thumbnail of the blended map) that the libsvm "is this the whole product" model scores.
 * Shared by detect.c (inference) and detect_train.c (training) so both see identical features. */
#ifndef PIMG_SALIENCY_H
#define PIMG_SALIENCY_H

#include "status.h"
#include "tensor.h"

enum { PIMG_SAL_BORDER = 0, PIMG_SAL_FT, PIMG_SAL_EDGE, PIMG_SAL_BLEND, PIMG_SAL_NMAPS };

#define PIMG_SAL_SIDE 160
#define PIMG_SAL_HOG_SIDE 24
#define PIMG_SAL_THUMB 6
/* The HOG block of the feature vector is multiplied by this gain. The linear SVM has one L2
 * penalty for all weights, so a smaller feature scale means a stronger penalty on the HOG
 * weights (a per-group regularisation): the 279 appearance dimensions otherwise fit the
 * composites' look and, on cluttered photos, pushed the winner towards boxes with the product
 * plus its surroundings. Chosen with retraining (1 / 0.5 / 0.35 / 0.25), see models/README.md. */
#define PIMG_SAL_HOG_GAIN 0.5
/* 6 geometry + 5 per map + 3 colour + 6 + 4 per map explicit non-linear terms (so a linear
 * scorer can use contrasts and products) + HOG (3x3 cells x 31) + thumbnail. */
#define PIMG_SAL_FEAT_DIM                                                                          \
    (6 + 5 * PIMG_SAL_NMAPS + 3 + 6 + 4 * PIMG_SAL_NMAPS + 9 * 31 + PIMG_SAL_THUMB * PIMG_SAL_THUMB)

typedef struct {
    int w, h;                        /* working size */
    double scale;                    /* source tensor pixels per working pixel */
    float *lab;                      /* w*h*3, L 0..100, a/b about -100..100 */
    float *grey;                     /* w*h, 0..1 */
    float *map[PIMG_SAL_NMAPS];      /* w*h each, 0..1 */
    double *integ[PIMG_SAL_NMAPS];   /* (w+1)*(h+1) each */
    unsigned char *bin;              /* w*h colour-histogram bin per pixel (4x4x4) */
} pimg_scene;

/* Builds the scene from a 3-channel tensor, longest side shrunk to `side` (never enlarged).
 * Ownership: *out written on success, freed with pimg_scene_free. */
pimg_status pimg_scene_make(const pimg_tensor *t, int side, pimg_scene **out, pimg_error *err);

void pimg_scene_free(pimg_scene *s);

/* Candidate boxes (x0, y0, x1, y1 in working pixels, x1/y1 exclusive), deduplicated; writes
 * at most max boxes and returns how many. */
int pimg_scene_proposals(const pimg_scene *s, double (*boxes)[4], int max);

/* Feature vector of a box (working pixels) into feat[PIMG_SAL_FEAT_DIM]. */
void pimg_scene_features(const pimg_scene *s, const double box[4], float *feat);

/* A heuristic "whole product" score used when no model is loaded: blend-map contrast between
 * the box and its surrounding ring, weighted by the share of the map's mass it captures. */
double pimg_scene_heuristic(const pimg_scene *s, const double box[4]);

/* Mean of map m over the integer box [x0,x1) x [y0,y1) (clipped); 0 for an empty box. */
double pimg_scene_box_mean(const pimg_scene *s, int m, int x0, int y0, int x1, int y1);

/* Pixels of map m at or above thr inside box (working pixels, rounded outwards, clipped):
 * a count of foreground pixels, where box_mean would mix a faint wide haze with a solid blob. */
long pimg_scene_box_count(const pimg_scene *s, int m, float thr, const double box[4]);

/* Intersection over union of two boxes. */
double pimg_box_iou(const double a[4], const double b[4]);

/* Parameters of the plain-backdrop test and box (plainbox.c); chosen on validation. */
typedef struct {
    double ring;      /* outer ring width as a share of the longest side */
    double wl;        /* weight of lightness in the colour distance */
    double max_sigma; /* backdrop residual (Lab units) above which the photo is not plain */
    double min_share; /* share of the ring that must fit the backdrop */
    double k;         /* foreground: distance above k * sigma ... */
    double floor_;    /* ... and above this floor */
    double min_area;  /* largest part must cover this share of the frame */
    double part;      /* parts at least this share of the largest join the box */
    double cand_sigma; /* up to this residual the box is still offered to the scorer */
    double wide_sigma; /* a ring that fits this well ... */
    double wide_share; /* ... on at least this share also counts as plain (0 = off) */
    double cross_sigma; /* a ring that fits this well ... */
    double cross_share; /* ... on this share of the ring not covered by the largest part, which
                         * reaches the frame, counts as plain too (0 = off) */
    double span_sigma;  /* ... but when that part reaches two opposite edges (it splits the
                         * frame like a horizon) only up to this residual ... */
    double span_fill;   /* ... and when it covers at least this share of its box */
    double link;        /* parts linked by a departure above link * the foreground threshold
                         * are one product for the inner candidate (0 = off) */
} pimg_plain_params;

/* Fits a smooth (quadratic) Lab backdrop to the frame's outer ring. If the photo is plain (small
 * residual on most of the ring, or on most of the ring outside a product that crosses the
 * frame), writes into boxes (room for PIMG_PLAIN_MAXBOX, count in *nbox)
 * candidate boxes (working pixels) of the pixels that depart from the backdrop — boxes[0] the
 * union of all sizeable parts, boxes[1] (if different) that of the parts not touching the
 * frame, counting as not touching a touching part that a weaker departure links to an inner
 * one — and returns 1; if it is not plain but the residual is at most
 * cand_sigma, writes the same candidates and returns 2; otherwise returns 0 with *nbox = 0. st (may be NULL)
 * receives the fit's and the foreground's statistics. */
#define PIMG_PLAIN_MAXBOX 2
typedef struct {
    double sigma;     /* backdrop residual scale (Lab units) on the ring's inliers */
    double share;     /* share of the ring that fits the backdrop */
    double fg_share;  /* share of the frame departing from the backdrop */
    double big_share; /* share of those pixels in the largest connected part */
    double big_fill;  /* largest part's area over its bounding box's */
    int big_edges;    /* frame edges (0..4) the largest part reaches */
    int nparts;       /* parts of at least 0.2% of the frame */
    double cross_share; /* share of the ring that fits, not counting the largest part's pixels */
    int big_span;       /* 1 when the largest part reaches two opposite edges of the frame */
} pimg_plain_stats;
int pimg_scene_backdrop_box(const pimg_scene *s, const pimg_plain_params *pp, double (*boxes)[4], int *nbox,
                            pimg_plain_stats *st);

/* Labels the 8-connected parts of a mask. On entry lab[i] is -1 for foreground, 0 for
 * background; on exit each part found holds its number 1..n (foreground beyond max_parts parts
 * stays -1). stack must hold w*h ints. Writes each part's box (x0, y0, x1, y1; x1/y1
 * exclusive) and pixel count; returns the number of parts. */
int pimg_label_parts(int *lab, int w, int h, int *stack, int max_parts, int (*box)[4], int *area);

#endif
