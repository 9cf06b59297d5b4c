/* detect_svm.h — lib-internal: the libsvm box scorer shared by detection and its trainer.
 *
 * The model file is a plain libsvm model (svm_save_model) over PIMG_SAL_FEAT_DIM features of
 * saliency.h; a Platt sigmoid fitted by the trainer on held-out boxes is stored in libsvm's
 * own probA/probB fields, so the file stays readable by stock libsvm tools. */
#ifndef PIMG_DETECT_SVM_H
#define PIMG_DETECT_SVM_H

#include <libsvm/svm.h>

#include "detect.h"
#include "saliency.h"

/* The plain-backdrop settings detection uses (read-only; chosen on validation, see detect.c). */
extern const pimg_plain_params pimg_detect_plain_params;

/* Score with which the backdrop box of a not-plain photo (pimg_scene_backdrop_box returned 2)
 * competes with the proposals: its scorer score plus a bonus, because it is a witness
 * independent of the ranker and a near tie should go to it. */
double pimg_detect_backdrop_score(double score);

/* Wraps a trained libsvm model; the wrapper takes ownership of svm (freed with
 * pimg_detect_model_free). NULL on no memory (svm is then freed too). */
pimg_detect_model *pimg_detect_model_wrap(struct svm_model *svm);

/* Borrowed libsvm model inside m (valid while m lives). */
const struct svm_model *pimg_detect_model_svm(const pimg_detect_model *m);

/* Decision value of one feature vector: > 0 means "the whole product". m == NULL: NAN. */
double pimg_detect_model_score(const pimg_detect_model *m, const float *feat);

/* 0..1 confidence of a decision value (Platt sigmoid when fitted, else a fixed logistic). */
double pimg_detect_model_confidence(const pimg_detect_model *m, double score);

/* Scores boxes[0..n) of scene s (m == NULL: the saliency heuristic) into scores (may be NULL)
 * and returns the index of the best, -1 when n == 0. */
int pimg_detect_pick(const pimg_detect_model *m, const pimg_scene *s, double (*boxes)[4], int n,
                     double *scores);

/* Optional second stage: a linear model over the same features whose score, added to the
 * scorer's, re-orders the scorer's PIMG_RERANK_K best boxes. It is stored beside the scorer's
 * file (pimg_detect_rerank_path: "X.svm" -> "X_rerank.svm"); pimg_detect_model_load loads it
 * when present and pimg_detect_model_save writes it (or removes a stale one). */
#define PIMG_RERANK_K 5

/* Writes the re-ranker path of a scorer path into out; -1 if it does not fit in n bytes. */
int pimg_detect_rerank_path(const char *path, char *out, size_t n);

/* Attaches r as m's re-ranker (m takes ownership; r == NULL detaches and frees the old). */
void pimg_detect_model_set_rerank(pimg_detect_model *m, pimg_detect_model *r);

/* m's re-ranker, borrowed; NULL when none. */
const pimg_detect_model *pimg_detect_model_rerank(const pimg_detect_model *m);

/* Index of the best of boxes[0..n) given the scorer's scores: the top score, or with a
 * re-ranker the best of the top PIMG_RERANK_K by score + re-ranker score. -1 when n == 0. */
int pimg_detect_rerank_pick(const pimg_detect_model *m, const pimg_scene *s, double (*boxes)[4], int n,
                            const double *scores);

/* The nested-box rule (detect.c): on a cluttered photo the scorer's winner is often the product
 * plus what stands around it (a lamp, the seabed). A candidate lying inside the winner (at
 * least `inside` of its area), at most `max_area` of the winner's area, scoring at most `margin`
 * below it and holding at least `min_fg` of the winner's foreground pixels (blend map >= `fg`)
 * is the same product without the surroundings. */
typedef struct {
    double margin;   /* score margin below the winner */
    double max_area; /* the candidate's area over the winner's, at most */
    double min_fg;   /* share of the winner's foreground pixels the candidate must hold */
    double inside;   /* share of the candidate's area that must lie inside the winner */
    double fg;       /* blend-map level counted as foreground */
} pimg_nest_params;

/* The settings detection uses (chosen on the validation composites, see detect.c). */
extern const pimg_nest_params pimg_detect_nest_params;

/* Applies the nested-box rule to winner `best` of boxes[0..n) with the scorer's scores: returns
 * the best-scoring candidate that qualifies, or `best` itself when none does. */
int pimg_detect_prefer_nested(const pimg_scene *s, const pimg_nest_params *np, double (*boxes)[4], int n,
                              const double *scores, int best);

#endif
