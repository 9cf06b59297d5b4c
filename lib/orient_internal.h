/* orient_internal.h — what lib/orient.c shares with the trainer (lib/orient_train.c) and the
 * unit tests: the model's parts, scoring an image under its four quarter turns, and the
 * act-only-when-confident decision rule. */
#ifndef PIMG_ORIENT_INTERNAL_H
#define PIMG_ORIENT_INTERNAL_H

#include <cjson/cJSON.h>
#include <libsvm/svm.h>

#include "orient.h"
#include "orient_features.h"
#include "orient_fv.h"

/* Default minimum posterior for turning a photo when a model file does not say. */
#define PIMG_ORIENT_DEFAULT_MIN_TURN 0.8

struct pimg_orient_model {
    struct svm_model *svm;            /* 4 classes: label k = k clockwise quarter turns needed */
    struct pimg_orient_qsvm *qsvm;    /* the same model as stored (kept for saving) */
    float mean[PIMG_ORIENT_NFEAT];    /* feature standardisation: (f - mean) * scale */
    float scale[PIMG_ORIENT_NFEAT];
    double min_turn_prob;             /* posterior needed to answer a non-zero turn */
    float *sv;                        /* dense support vectors (l x NFEAT) for the fast kernel */
    int labels[4];                    /* svm_get_labels order: position → class */
    pimg_orient_fv_model *fv;               /* set: the Fisher-vector ranking model is used instead of
                                       * svm/qsvm (the model file says which, by its magic) */
};

/* Features of the thumbnail turned clockwise by 0, 90, 180 and 270 degrees, written to
 * feats[0..3][PIMG_ORIENT_NFEAT]; log_aspect is that of the unturned image. */
pimg_status pimg_orient_turn_features(const pimg_tensor *thumb, double log_aspect,
                                      float (*feats)[PIMG_ORIENT_NFEAT], pimg_error *err);

/* Class probabilities (index = clockwise quarter turns needed) of one raw feature vector.
 * Computes libsvm's pairwise Platt + Wu-Lin-Weng coupling itself over a dense float copy of the
 * support vectors (several times faster than libsvm's sparse kernel); m->svm gives the same
 * numbers through svm_predict_probability (the unit tests check this). Needs m->sv. */
void pimg_orient_class_probs(const pimg_orient_model *m, const float *feat, double probs[4]);

/* Builds m->sv from m->qsvm. NOMEM on failure. */
pimg_status pimg_orient_model_prepare(pimg_orient_model *m, pimg_error *err);

/* Combines the class probabilities of the image turned clockwise by j quarter turns
 * (q[j][.], j = 0..3) into the posterior post[r] that the image needs r quarter turns: the
 * normalised geometric mean over j of q[j][(r - j) mod 4]. Scoring all four turns cancels
 * most of the classifier's bias towards one side. */
void pimg_orient_combine(const double q[4][4], double post[4]);

/* The decision rule: turn by the most probable r only if r != 0 and post[r] >= min_turn_prob;
 * otherwise 0. *confidence is the posterior of the answer given. */
void pimg_orient_decide(const double post[4], double min_turn_prob, int *rotation, double *confidence);

/* Posterior over the four turns with the Fisher-vector model m->fv: the grey thumbnail under
 * each clockwise turn j is encoded and scored; post = softmax of the scores. */
pimg_status pimg_orient_fv_model_posterior(const pimg_orient_model *m, const pimg_tensor *t, double post[4],
                                     pimg_error *err);

/* Posterior over the four turns for a tensor (any size, RGB). */
pimg_status pimg_orient_posterior(const pimg_orient_model *m, const pimg_tensor *t, double post[4],
                                  pimg_error *err);

/* The shipped SVM, support vectors quantised to 8 bits per dimension (see orient_svmio.c). */
#define PIMG_ORIENT_MAX_CLASS 4
typedef struct pimg_orient_qsvm {
    int nr_class, l, nfeat;
    double gamma;
    int label[PIMG_ORIENT_MAX_CLASS], nSV[PIMG_ORIENT_MAX_CLASS];
    double rho[6], probA[6], probB[6];
    double *sv_coef;   /* (nr_class - 1) x l */
    float *qmin, *qstep; /* per dimension: value = qmin + qstep * q */
    unsigned char *q;  /* l x nfeat */
} pimg_orient_qsvm;

/* Quantises a trained libsvm model (RBF, with probabilities). NULL on no memory or a model of
 * another kind. Ownership: pimg_orient_qsvm_free. */
pimg_orient_qsvm *pimg_orient_qsvm_from_svm(const struct svm_model *s, int nfeat);

/* The libsvm model a quantised one stands for (support vectors dequantised, one node block).
 * Ownership: svm_free_and_destroy_model; NULL on no memory. */
struct svm_model *pimg_orient_qsvm_to_svm(const pimg_orient_qsvm *q);

void pimg_orient_qsvm_free(pimg_orient_qsvm *q);

/* File I/O of the compact format. read: NOT_FOUND, IO, BAD_INPUT (not ours / truncated).
 * Ownership: *out written on success, freed with pimg_orient_qsvm_free. */
pimg_status pimg_orient_qsvm_write(const pimg_orient_qsvm *q, const char *path, pimg_error *err);
pimg_status pimg_orient_qsvm_read(const char *path, pimg_orient_qsvm **out, pimg_error *err);

/* Writes the model: compact SVM file at svm_path and, beside it (same name, .json), the model card
 * `card` (borrowed; the standardisation and decision parameters are added to a copy). */
pimg_status pimg_orient_model_save(const pimg_orient_model *m, const char *svm_path, const cJSON *card,
                                   pimg_error *err);

/* The .json path beside an .svm path (replaces a trailing ".svm", else appends ".json"). */
void pimg_orient_card_path(const char *svm_path, char *buf, size_t n);

#endif
