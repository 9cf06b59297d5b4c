/* status.c — error buffer helpers and the code → name table. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <vips/vips.h>

pimg_status pimg_error_set(pimg_error *err, pimg_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

pimg_status pimg_error_vips(pimg_error *err, pimg_status code, const char *what)
{
    /* libvips' buffer is per-thread and may hold several lines: keep the first, it names the
     * failing loader/operation, which is what a caller can act on. */
    char first[200];
    const char *buf = vips_error_buffer();
    size_t n = strcspn(buf, "\n");
    if (n >= sizeof first)
        n = sizeof first - 1;
    memcpy(first, buf, n);
    first[n] = '\0';
    vips_error_clear();
    if (first[0])
        return pimg_error_set(err, code, "%s: %s", what, first);
    return pimg_error_set(err, code, "%s", what);
}

const char *pimg_status_name(pimg_status code)
{
    switch (code) {
    case PIMG_OK: return "ok";
    case PIMG_ERR_NOMEM: return "out_of_memory";
    case PIMG_ERR_BAD_INPUT: return "bad_input";
    case PIMG_ERR_TOO_LARGE: return "too_large";
    case PIMG_ERR_UNSUPPORTED: return "unsupported_type";
    case PIMG_ERR_TIMEOUT: return "timeout";
    case PIMG_ERR_CANCELLED: return "cancelled";
    case PIMG_ERR_IO: return "io_error";
    case PIMG_ERR_NOT_FOUND: return "not_found";
    case PIMG_ERR_NOT_IMPLEMENTED: return "not_implemented";
    case PIMG_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

void pimg_progress_say(pimg_progress_fn fn, void *ctx, const char *fmt, ...)
{
    if (!fn)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fn(ctx, buf);
}
