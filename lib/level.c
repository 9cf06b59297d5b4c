/* level.c — placeholder until tilt levelling lands (issue 4): never reports a tilt. */
#include "level.h"

pimg_status pimg_level_estimate(const pimg_tensor *t, double *deg, double *confidence, pimg_error *err)
{
    (void)t;
    (void)err;
    *deg = 0.0;
    *confidence = 0.0;
    return PIMG_OK;
}

pimg_status pimg_level_apply(pimg_image *img, double deg, int crop, pimg_error *err)
{
    (void)img;
    (void)crop;
    if (deg == 0.0)
        return PIMG_OK;
    return pimg_error_set(err, PIMG_ERR_NOT_IMPLEMENTED, "levelling not implemented yet");
}
