/* http_util.h — HTTP helpers of the service that need no server state: the one table from
 * lib status codes to HTTP statuses, JSON error bodies, a binary-safe multipart/form-data
 * parser over a fully buffered body, base64 and small header-value parsers. */
#ifndef PIMG_SERVICE_HTTP_UTIL_H
#define PIMG_SERVICE_HTTP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* HTTP status and stable error code for a lib status (PIMG_OK → 200, "ok"). The only place
 * where lib results become HTTP statuses. */
int pimg_http_status(pimg_status st, const char **code);

/* `{"error":{"code":code,"message":msg}}` as a NUL-terminated string.
 * Ownership: malloc'd, caller frees; NULL on no memory. *len gets strlen. */
char *pimg_http_error_json(const char *code, const char *msg, size_t *len);

typedef struct {
    char name[64];         /* form field name, "" if none */
    char filename[128];    /* "" if none */
    char content_type[96]; /* "" if none */
    const unsigned char *data; /* borrowed: points into the parsed body */
    size_t len;
} pimg_part;

#define PIMG_MAX_PARTS 8

/* Parses a multipart/form-data body. content_type is the request's Content-Type header (the
 * boundary comes from it). parts[] borrow from body, valid while body is. Returns PIMG_OK,
 * BAD_INPUT (no boundary, malformed or truncated body, more than max parts) with a message. */
pimg_status pimg_multipart_parse(const char *content_type, const unsigned char *body, size_t len,
                                 pimg_part *parts, int max_parts, int *n_parts, pimg_error *err);

/* Base64 (RFC 4648, with padding). Ownership: malloc'd NUL-terminated string; NULL on no memory. */
char *pimg_base64_encode(const void *data, size_t len, size_t *out_len);

/* Case-insensitive check that the media type of a Content-Type value (before any ';') equals
 * `type` or, when type ends in '/', starts with it ("image/"). NULL value → 0. */
int pimg_media_type_is(const char *value, const char *type);

/* Whether an Accept header asks for JSON (application/json listed, not with q=0). */
int pimg_accepts_json(const char *accept);

/* Names a well-known image or document format that pimg refuses (e.g. "SVG", "PDF", "BMP")
 * when the bytes start like one; NULL otherwise. Used to tell 415 (a format we do not take)
 * from 400 (not an image at all). Never decodes anything. */
const char *pimg_sniff_refused_format(const unsigned char *b, size_t len);

#endif
