/* detect.c — placeholder until product detection lands (issue 5): finds nothing. */
#include "detect.h"

#include <string.h>

pimg_status pimg_detect_model_load(const char *path, pimg_detect_model **out, pimg_error *err)
{
    (void)out;
    return pimg_error_set(err, PIMG_ERR_NOT_FOUND, "%s: detection model not implemented yet", path);
}

void pimg_detect_model_free(pimg_detect_model *m)
{
    (void)m;
}

pimg_status pimg_detect_run(const pimg_detect_model *m, const pimg_tensor *t, pimg_detection *out,
                            pimg_error *err)
{
    (void)m;
    (void)t;
    (void)err;
    memset(out, 0, sizeof *out);
    return PIMG_OK;
}

void pimg_detection_clear(pimg_detection *d)
{
    if (!d)
        return;
    pimg_tensor_free(d->mask);
    memset(d, 0, sizeof *d);
}
