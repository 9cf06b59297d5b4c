/* status.h — result codes and the caller-owned error buffer used by every lib/ function.
 *
 * Functions return a pimg_status (PIMG_OK == 0, failures negative) and, when given a non-NULL
 * pimg_error, write a one-line human message into it. The service maps codes to HTTP statuses
 * in one table; the CLI maps them to exit codes. */
#ifndef PIMG_STATUS_H
#define PIMG_STATUS_H

typedef enum {
    PIMG_OK = 0,
    PIMG_ERR_NOMEM = -1,       /* allocation failed */
    PIMG_ERR_BAD_INPUT = -2,   /* undecodable / corrupt / invalid argument */
    PIMG_ERR_TOO_LARGE = -3,   /* pixel count or size above a limit */
    PIMG_ERR_UNSUPPORTED = -4, /* format not on the allow-list */
    PIMG_ERR_TIMEOUT = -5,     /* deadline passed */
    PIMG_ERR_CANCELLED = -6,   /* caller asked to stop */
    PIMG_ERR_IO = -7,          /* file could not be read or written */
    PIMG_ERR_NOT_FOUND = -8,   /* model or file missing */
    PIMG_ERR_NOT_IMPLEMENTED = -9,
    PIMG_ERR_INTERNAL = -10    /* a real bug or library fault */
} pimg_status;

typedef struct {
    pimg_status code;
    char msg[256];
} pimg_error;

/* Records code and a printf-style message in err (NULL allowed) and returns code, so callers
 * can write `return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "...")`. */
pimg_status pimg_error_set(pimg_error *err, pimg_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like pimg_error_set but appends libvips' error buffer (first line) and clears it. Call right
 * after a failed vips_* call, on the same thread. */
pimg_status pimg_error_vips(pimg_error *err, pimg_status code, const char *what);

/* Stable snake_case name of a code ("bad_input", "too_large", ...); never NULL. */
const char *pimg_status_name(pimg_status code);

/* Progress reports of long jobs (training): lib/ never prints, it hands each line to a
 * caller's callback; the CLI prints them to stderr. */
typedef void (*pimg_progress_fn)(void *ctx, const char *msg);

/* Formats a line and passes it to fn (nothing when fn is NULL). */
void pimg_progress_say(pimg_progress_fn fn, void *ctx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
