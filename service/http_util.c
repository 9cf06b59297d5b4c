/* http_util.c — status table, JSON errors, multipart parsing and base64 for the service.
 *
 * The multipart parser works on the whole buffered body (bodies are bounded by max-body before
 * they reach it), uses memmem over binary data and never reads past `len`: every offset is
 * checked against the end before it is used, so truncated or hostile bodies give BAD_INPUT. */
#include "http_util.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int pimg_http_status(pimg_status st, const char **code)
{
    static const struct {
        pimg_status st;
        int http;
        const char *code;
    } table[] = {
        {PIMG_OK, 200, "ok"},
        {PIMG_ERR_BAD_INPUT, 400, "bad_input"},
        {PIMG_ERR_TOO_LARGE, 413, "too_large"},
        {PIMG_ERR_UNSUPPORTED, 415, "unsupported_media_type"},
        {PIMG_ERR_TIMEOUT, 504, "timeout"},
        {PIMG_ERR_CANCELLED, 503, "cancelled"},
        {PIMG_ERR_NOMEM, 503, "out_of_memory"},
        {PIMG_ERR_NOT_IMPLEMENTED, 501, "not_implemented"},
        {PIMG_ERR_NOT_FOUND, 500, "internal"},
        {PIMG_ERR_IO, 500, "internal"},
        {PIMG_ERR_INTERNAL, 500, "internal"},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (table[i].st == st) {
            if (code)
                *code = table[i].code;
            return table[i].http;
        }
    if (code)
        *code = "internal";
    return 500;
}

char *pimg_http_error_json(const char *code, const char *msg, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *e = o ? cJSON_AddObjectToObject(o, "error") : NULL;
    char *s = NULL;
    if (e && cJSON_AddStringToObject(e, "code", code) && cJSON_AddStringToObject(e, "message", msg))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s && len)
        *len = strlen(s);
    return s;
}

int pimg_media_type_is(const char *value, const char *type)
{
    if (!value)
        return 0;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t tl = strlen(type);
    size_t vl = strcspn(value, ";");
    while (vl > 0 && (value[vl - 1] == ' ' || value[vl - 1] == '\t'))
        vl--;
    if (tl > 0 && type[tl - 1] == '/')
        return vl > tl && !strncasecmp(value, type, tl);
    return vl == tl && !strncasecmp(value, type, tl);
}

int pimg_accepts_json(const char *accept)
{
    if (!accept)
        return 0;
    const char *p = accept;
    while (*p) {
        size_t n = strcspn(p, ",");
        char item[128];
        size_t m = n < sizeof item - 1 ? n : sizeof item - 1;
        memcpy(item, p, m);
        item[m] = '\0';
        if (pimg_media_type_is(item, "application/json")) {
            const char *q = strstr(item, "q=");
            return !(q && atof(q + 2) <= 0.0);
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* Copies the value of parameter `key` (e.g. boundary, name) from a header value such as
 * `form-data; name="image"; filename="a.jpg"` into out. Returns 0 when found. */
static int header_param(const char *hv, size_t hlen, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    size_t i = 0;
    while (i < hlen) {
        /* advance to the start of a parameter (after ';') */
        while (i < hlen && hv[i] != ';')
            i++;
        if (i >= hlen)
            break;
        i++;
        while (i < hlen && (hv[i] == ' ' || hv[i] == '\t'))
            i++;
        if (hlen - i > kl && !strncasecmp(hv + i, key, kl) && hv[i + kl] == '=') {
            i += kl + 1;
            size_t o = 0;
            if (i < hlen && hv[i] == '"') {
                i++;
                while (i < hlen && hv[i] != '"') {
                    if (hv[i] == '\\' && i + 1 < hlen)
                        i++;
                    if (o + 1 >= cap)
                        return -1;
                    out[o++] = hv[i++];
                }
            } else {
                while (i < hlen && hv[i] != ';' && hv[i] != ' ' && hv[i] != '\t' && hv[i] != '\r') {
                    if (o + 1 >= cap)
                        return -1;
                    out[o++] = hv[i++];
                }
            }
            out[o] = '\0';
            return 0;
        }
    }
    return -1;
}

/* Reads the part headers in [p, end) (without the blank line) into part. */
static void part_headers(const char *p, size_t n, pimg_part *part)
{
    size_t i = 0;
    while (i < n) {
        const char *line = p + i;
        const char *eol = memmem(line, n - i, "\r\n", 2);
        size_t ll = eol ? (size_t)(eol - line) : n - i;
        const char *colon = memchr(line, ':', ll);
        if (colon) {
            size_t nl = (size_t)(colon - line);
            const char *v = colon + 1;
            size_t vl = ll - nl - 1;
            while (vl && (*v == ' ' || *v == '\t')) {
                v++;
                vl--;
            }
            if (nl == 19 && !strncasecmp(line, "Content-Disposition", 19)) {
                if (header_param(v, vl, "name", part->name, sizeof part->name))
                    part->name[0] = '\0';
                if (header_param(v, vl, "filename", part->filename, sizeof part->filename))
                    part->filename[0] = '\0';
            } else if (nl == 12 && !strncasecmp(line, "Content-Type", 12)) {
                size_t m = vl < sizeof part->content_type - 1 ? vl : sizeof part->content_type - 1;
                memcpy(part->content_type, v, m);
                part->content_type[m] = '\0';
            }
        }
        i += ll + 2;
    }
}

pimg_status pimg_multipart_parse(const char *content_type, const unsigned char *body, size_t len,
                                 pimg_part *parts, int max_parts, int *n_parts, pimg_error *err)
{
    char boundary[80];
    *n_parts = 0;
    if (!content_type || header_param(content_type, strlen(content_type), "boundary", boundary, sizeof boundary) ||
        !boundary[0])
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "multipart/form-data without a valid boundary");
    /* delimiter as it appears between parts: CRLF "--" boundary; the first one may lack CRLF */
    char delim[96];
    int dl = snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    const char *b = (const char *)body, *end = b + len;
    const char *p;
    if (len >= (size_t)dl - 2 && !memcmp(b, delim + 2, (size_t)dl - 2))
        p = b + dl - 2;
    else {
        p = memmem(b, len, delim, (size_t)dl);
        if (!p)
            return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "multipart body without its boundary");
        p += dl;
    }
    for (;;) {
        /* p is just after a delimiter */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return PIMG_OK; /* closing delimiter; epilogue ignored */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "malformed or truncated multipart body");
        p += 2;
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        const char *data;
        size_t hl;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') { /* part without headers */
            hl = 0;
            data = p + 2;
        } else {
            if (!hend || hend - p > 16384)
                return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "malformed multipart part headers");
            hl = (size_t)(hend - p);
            data = hend + 4;
        }
        const char *next = memmem(data, (size_t)(end - data), delim, (size_t)dl);
        if (!next)
            return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "truncated multipart body (no closing boundary)");
        if (*n_parts >= max_parts)
            return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "too many multipart parts (limit %d)", max_parts);
        pimg_part *part = &parts[(*n_parts)++];
        memset(part, 0, sizeof *part);
        part_headers(p, hl, part);
        part->data = (const unsigned char *)data;
        part->len = (size_t)(next - data);
        p = next + dl;
    }
}

char *pimg_base64_encode(const void *data, size_t len, size_t *out_len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = data;
    size_t n = 4 * ((len + 2) / 3);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

const char *pimg_sniff_refused_format(const unsigned char *b, size_t len)
{
    static const struct {
        const char *magic;
        size_t n;
        const char *name;
    } magics[] = {
        {"%PDF", 4, "PDF"},     {"%!PS", 4, "PostScript"}, {"BM", 2, "BMP"},
        {"\xff\x0a", 2, "JPEG XL"}, {"\0\0\0\x0cJXL ", 8, "JPEG XL"}, {"8BPS", 4, "PSD"},
        {"\0\0\1\0", 4, "ICO"}, {"P6", 2, "PPM"},       {"P5", 2, "PGM"},
        {"\x76\x2f\x31\x01", 4, "OpenEXR"}, {"#?RADIANCE", 10, "Radiance HDR"}, {"SIMPLE  =", 9, "FITS"},
        {"\x00\x00\x00\x0cjP  ", 8, "JPEG 2000"}, {"\xff\x4f\xff\x51", 4, "JPEG 2000"}, {"id=ImageMagick", 14, "MIFF"},
        {"push graphic-context", 20, "MVG"}, {"viewbox", 7, "MVG"}, {"\x89HDF", 4, "HDF"},
    };
    for (size_t i = 0; i < sizeof magics / sizeof *magics; i++)
        if (len >= magics[i].n && !memcmp(b, magics[i].magic, magics[i].n))
            return magics[i].name;
    /* Text formats may start with a BOM and white space: look at the first 256 bytes. */
    size_t i = 0;
    if (len >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF)
        i = 3;
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n'))
        i++;
    size_t n = len - i < 256 ? len - i : 256;
    static const char *texts[] = {"<?xml", "<svg", "<!DOCTYPE svg"};
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
        size_t tl = strlen(texts[k]);
        if (n >= tl && !strncasecmp((const char *)b + i, texts[k], tl))
            return "SVG/XML";
    }
    return NULL;
}
