/* orient.c — placeholder until the orientation classifier lands (issue 4): there is no model
 * format yet, so loading always reports NOT_FOUND and prediction never turns. */
#include "orient.h"

#include <stddef.h>

pimg_status pimg_orient_model_load(const char *path, pimg_orient_model **out, pimg_error *err)
{
    (void)out;
    return pimg_error_set(err, PIMG_ERR_NOT_FOUND, "%s: orientation model not implemented yet", path);
}

void pimg_orient_model_free(pimg_orient_model *m)
{
    (void)m;
}

pimg_status pimg_orient_predict(const pimg_orient_model *m, const pimg_tensor *t, int *rotation,
                                double *confidence, pimg_error *err)
{
    (void)m;
    (void)t;
    (void)err;
    *rotation = 0;
    *confidence = 0.0;
    return PIMG_OK;
}
