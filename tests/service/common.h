/* common.h — helpers shared by the service integration tests: start the real `pimg serve`
 * ($PIMG_BIN) on 127.0.0.1 and a free port, wait for /healthz, stop it; make HTTP requests
 * with libcurl; generate test images with libvips; check JSON error bodies.
 *
 * Servers are started from Check's unchecked fixtures (in the runner process) and get
 * PR_SET_PDEATHSIG, so they die with the test program even when it crashes. */
#ifndef PIMG_TEST_SERVICE_COMMON_H
#define PIMG_TEST_SERVICE_COMMON_H

#include <stddef.h>
#include <sys/types.h>

#include "clock.h"

typedef struct {
    pid_t pid;
    int port;
    char base[64];      /* "http://127.0.0.1:PORT" */
    char log_path[128]; /* the server's stderr */
} test_server;

/* Starts `pimg serve --bind 127.0.0.1 --port P` plus args (NULL-terminated, may be NULL) and
 * extra environment entries env ("K=V", NULL-terminated, may be NULL); waits until /healthz
 * answers 200. Returns 0, or -1 (with a message on stderr). */
int ts_start(test_server *ts, const char *const *args, const char *const *env);

/* SIGTERM, wait up to wait_ms, then SIGKILL. Returns the exit code (0..255), 128+signal when
 * killed by a signal, -1 if not running. The server's log is removed after a clean exit (0)
 * and kept otherwise. */
int ts_stop(test_server *ts, int wait_ms);

/* A raw TCP connection to 127.0.0.1:port (for slow or half-finished clients); the fd, or -1. */
int ts_connect(int port);

/* Whether the process is still running. */
int ts_alive(test_server *ts);

typedef struct {
    long status;         /* 0 when the transfer failed (connection reset, ...) */
    int curl_code;
    char *body;          /* NUL-terminated (extra byte beyond len) */
    size_t len;
    char content_type[128];
    char retry_after[32];
    char allow[64];
    char *meta;          /* X-Pimg-Metadata, malloc'd or NULL */
    double seconds;
} http_resp;

/* One request. headers: NULL-terminated "Name: value" list (may be NULL). body may be NULL for
 * no body. timeout_ms bounds the whole transfer (0 = 60 s). Returns resp->status. */
long http_req(const char *method, const char *url, const char *const *headers, const void *body,
              size_t len, int timeout_ms, http_resp *resp);

/* GET base+path and POST base+path conveniences. */
long http_get(const test_server *ts, const char *path, http_resp *resp);
long http_post(const test_server *ts, const char *path, const char *content_type, const void *body,
               size_t len, http_resp *resp);

void http_resp_free(http_resp *r);

/* Runs n identical requests concurrently (curl multi) and fills resp[0..n-1]. */
void http_parallel(const char *method, const char *url, const char *const *headers, const void *body,
                   size_t len, int n, int timeout_ms, http_resp *resp);

/* Resident set size of a process in MiB (from /proc), -1 if unknown. */
double rss_mib(int pid);

/* 1 when body is JSON {"error":{"code":C,"message":M}} with non-empty strings and, if code is
 * non-NULL, the same code. */
int is_json_error(const http_resp *r, const char *code);

/* A plausible photo-like test image (gradients and a dark rectangle), encoded by libvips.
 * fmt: "jpg", "png", "png16" (16-bit), "pnga" (with alpha), "gif", "webp", "tiff", "cmyk"
 * (CMYK JPEG). Ownership: malloc'd, caller frees. NULL on failure. */
void *make_image(const char *fmt, int w, int h, size_t *len);

/* Reads a whole file. Ownership: malloc'd, caller frees; NULL on failure. */
void *read_file(const char *path, size_t *len);

/* A real ~6 MP photo from ../shared/data/public (3088x2056 JPEG), or a generated 3000x2000
 * JPEG when the data folder is absent. Ownership: malloc'd. */
void *big_photo(size_t *len);

#endif
