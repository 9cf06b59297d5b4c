/* orient_features.h — the "which way is up" feature vector of an image.
 *
 * Every image is first reduced to a fixed PIMG_ORIENT_THUMB x PIMG_ORIENT_THUMB colour thumbnail
 * (aspect ignored on purpose: a quarter turn of the thumbnail is then exactly the thumbnail of
 * the turned image, so the four candidate turns cost four cheap feature passes, not four
 * resizes). The vector concatenates
 *   - colour moments (mean and standard deviation of CIE L*a*b*) on a GRID x GRID grid
 *     (Vailaya et al. 2002: sky on top, ground below, light from above), and
 *   - VLFeat HOG (UoCTTI variant) of the grey thumbnail: where the edges are and which way they
 *     run (horizon, shelves, object silhouettes, shadows below objects), and
 *   - the log aspect ratio of the image before squashing (most photos are shot landscape, so a
 *     portrait frame is itself evidence of a quarter turn; the classifier learns how much).
 * Features are raw; the model standardises them with the training mean and spread. */
#ifndef PIMG_ORIENT_FEATURES_H
#define PIMG_ORIENT_FEATURES_H

#include "status.h"
#include "tensor.h"

#define PIMG_ORIENT_THUMB 64
#define PIMG_ORIENT_GRID 8
#define PIMG_ORIENT_HOG_CELL 16
#define PIMG_ORIENT_N_COLOUR (PIMG_ORIENT_GRID * PIMG_ORIENT_GRID * 6)
#define PIMG_ORIENT_N_HOG ((PIMG_ORIENT_THUMB / PIMG_ORIENT_HOG_CELL) * (PIMG_ORIENT_THUMB / PIMG_ORIENT_HOG_CELL) * 31)
#define PIMG_ORIENT_NFEAT (PIMG_ORIENT_N_COLOUR + PIMG_ORIENT_N_HOG + 1)

/* The square RGB thumbnail the features are computed on (area-averaged from t, 3 channels).
 * Ownership: caller frees with pimg_tensor_free; NULL on no memory or t not 3-channel. */
pimg_tensor *pimg_orient_thumb(const pimg_tensor *t);

/* Writes the PIMG_ORIENT_NFEAT features of a PIMG_ORIENT_THUMB-square 3-channel thumbnail to
 * out; log_aspect = log(width / height) of the image the thumbnail was made from.
 * BAD_INPUT when thumb has the wrong shape, NOMEM when VLFeat cannot allocate. */
pimg_status pimg_orient_features(const pimg_tensor *thumb, double log_aspect, float *out, pimg_error *err);

#endif
