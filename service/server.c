/* server.c — `pimg serve`: the HTTP front of the pipeline.
 *
 * One libmicrohttpd thread (epoll) owns every connection: it routes, enforces the body and
 * content-type rules while the body arrives, and buffers the body. Image work never runs on it:
 * a finished upload becomes a job for the fixed worker pool (service/queue.c) and its connection
 * is suspended (MHD_suspend_connection) until the worker has built the whole answer and resumes
 * it. A full queue is refused at once with 503 + Retry-After, decided from the headers: the body
 * is then dropped unbuffered (or never sent, with Expect: 100-continue) before the answer goes
 * out, so the client is not reset mid-upload; a Content-Length above max-body gets 413 without
 * reading the body. Body memory is bounded per request (max-body) and across requests
 * (max-buffered). SIGTERM drains: /readyz turns 503, new image requests get 503, accepted work
 * finishes (bounded by drain-timeout), then the process exits 0. SIGHUP reloads the models.
 *
 * Request lifecycle (request.state): RQ_BODY (receiving) → RQ_QUEUED (suspended, owned by a
 * worker) → RQ_DONE (answer ready; the worker no longer touches the request) → RQ_ANSWERED.
 * An answer decided early goes RQ_DISCARD (dropping the body) → RQ_ANSWERED.
 * The request is freed in the completion callback, which MHD only calls after the connection
 * was resumed, so a worker can never see a freed request. */
#include <arpa/inet.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <glib.h>

#include "admin.h"
#include "cli.h"
#include "clock.h"
#include "config.h"
#include "http_util.h"
#include "image.h"
#include "metrics.h"
#include "models.h"
#include "pimg.h"
#include "pipeline.h"
#include "queue.h"

typedef struct server server;

typedef enum { RQ_BODY = 0, RQ_QUEUED, RQ_DONE, RQ_ANSWERED, RQ_DISCARD } rq_state;

/* What a connection is waiting for, for the slowloris sweep. */
typedef enum { PH_HEADERS = 0, PH_BODY, PH_BUSY } conn_phase;

/* Per-connection record (MHD socket context), linked in server.conns under conns_mu. */
typedef struct conn_info {
    struct conn_info *prev, *next;
    int fd;
    conn_phase phase;
    double phase_start;
} conn_info;

typedef struct {
    server *srv;
    struct MHD_Connection *conn;
    uint64_t id;
    char client_id[65]; /* X-Request-Id sent by the client (sanitised), "" if none */
    pimg_endpoint ep;
    char method[8];
    double t_start, t_queued, queue_ms, deadline;
    /* body */
    unsigned char *body;
    size_t len, cap;
    size_t reserved;   /* bytes counted in srv->buffered */
    size_t discarded;  /* bytes dropped after an overflow */
    size_t bytes_in;   /* body bytes received (for the access log) */
    int multipart;
    int overflow;      /* 0, 413 (max-body) or 503 (max-buffered): answer once the body ends */
    char content_type[256];
    /* job */
    pimg_pipeline_opts opts;
    int want_json;
    const unsigned char *img, *ref; /* borrowed from body */
    size_t img_len, ref_len;
    _Atomic int state;
    /* answer (built by whichever thread decides it) */
    int status;
    char *resp;
    size_t resp_len;
    const char *resp_type;
    char *meta;        /* X-Pimg-Metadata value */
    const char *allow; /* Allow header for 405 */
    int retry_after;   /* seconds, 0 = no header */
    int close;         /* send Connection: close (body not read) */
    int first_call;    /* inside the first access-handler call (headers only) */
    int body_expected; /* Content-Length > 0 or chunked */
    int expect_100;    /* client waits for 100 Continue before sending the body */
    int no_defer;      /* answer before the body even without Expect (413 by length) */
    const char *err_code;
    int admin_op;      /* ADM_* for /admin routes */
    char job[48];      /* /admin/retrain/{job} */
    int www_auth;      /* 401: add WWW-Authenticate */
    const unsigned char *label; /* feedback: borrowed from body */
    size_t label_len;
} request;

enum { ADM_NONE = 0, ADM_MODELS, ADM_FEEDBACK, ADM_RETRAIN, ADM_JOB };

struct server {
    pimg_config cfg;
    struct MHD_Daemon *daemon;
    pimg_pool *pool;
    pimg_metrics *metrics;
    pthread_mutex_t models_mu;
    pimg_models *models; /* current set; swapped under models_mu */
    char models_dir[PATH_MAX];
    pimg_admin *admin;   /* NULL when no admin token is configured */
    char *openapi;
    size_t openapi_len;
    _Atomic int draining;
    _Atomic uint64_t next_id;
    _Atomic uint64_t buffered;     /* body bytes held */
    _Atomic int active;            /* requests begun, not completed */
    int port;
    int cores;                     /* online processors, for pipeline prefetch */
    pthread_mutex_t conns_mu;
    conn_info conns;               /* list head (sentinel) */
    int n_conns;
};

/* ---- logging: one JSON object per line on stderr, written with a single write(2) ---- */

static void log_line(cJSON *o)
{
    char ts[40];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);
    cJSON_AddStringToObject(o, "ts", ts);
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        size_t l = strlen(s);
        s[l] = '\n'; /* replaces the NUL; written with explicit length */
        ssize_t w = write(STDERR_FILENO, s, l + 1);
        (void)w;
        free(s);
    }
    cJSON_Delete(o);
}

static void log_event(const char *level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_event(const char *level, const char *event, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return;
    cJSON_AddStringToObject(o, "level", level);
    cJSON_AddStringToObject(o, "event", event);
    cJSON_AddStringToObject(o, "msg", msg);
    log_line(o);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_event("warn", "http", "%s", msg);
}

/* libvips and GLib print warnings ("error in tile ...") straight to stderr; route them into
 * the JSON log so every stderr line stays machine-readable. */
static void glib_logger(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer ud)
{
    (void)ud;
    if (!(level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)))
        return; /* info/debug chatter stays off, as with GLib's default handler */
    log_event(level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL) ? "error" : "warn", domain ? domain : "glib",
              "%s", message ? message : "");
}

/* ---- models ---- */

static pimg_models *models_acquire(server *s)
{
    pthread_mutex_lock(&s->models_mu);
    pimg_models *m = s->models ? pimg_models_acquire(s->models) : NULL;
    pthread_mutex_unlock(&s->models_mu);
    return m;
}

/* SIGHUP: loads the model folder again and swaps the current set. Requests running keep the
 * set they acquired; the old set is freed when the last of them releases it. A failed load
 * keeps the current set. */
static void reload_models(server *s, const char *dir)
{
    pimg_models *fresh = NULL;
    pimg_error err = {0};
    if (pimg_models_load(dir, &fresh, &err)) {
        log_event("error", "models_reload", "keeping the current models: %s", err.msg);
        return;
    }
    pthread_mutex_lock(&s->models_mu);
    pimg_models *old = s->models;
    s->models = fresh;
    pthread_mutex_unlock(&s->models_mu);
    pimg_models_release(old);
    log_event("info", "models_reload", "loaded %s version %s", dir, pimg_models_version(fresh));
}

/* ---- answers ---- */

static void set_answer(request *r, int status, const char *type, char *body, size_t len)
{
    free(r->resp);
    r->status = status;
    r->resp = body;
    r->resp_len = len;
    r->resp_type = type;
}

static void set_error(request *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_error(request *r, int status, const char *code, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = 0;
    char *body = pimg_http_error_json(code, msg, &len);
    set_answer(r, status, "application/json", body, len);
    r->err_code = code;
    if (status == 503 && !r->retry_after)
        r->retry_after = 1;
}

/* Hands the prepared answer to MHD. Ownership of r->resp passes to the response.
 *
 * An answer decided from the headers while a body is on its way is normally held back: the
 * body is read and dropped first (RQ_DISCARD), because a client still writing when we answer
 * and close gets a connection reset and may never read the answer. Exceptions, answered at
 * once: clients that sent `Expect: 100-continue` (they wait and will not send the body) and
 * bodies declared above max-body (413 without reading them). */
static enum MHD_Result send_answer(request *r)
{
    if (r->first_call && r->body_expected && !r->expect_100 && !r->no_defer) {
        r->close = 0; /* the body will have been consumed: keep-alive is fine */
        atomic_store(&r->state, RQ_DISCARD);
        return MHD_YES;
    }
    if (!r->resp) { /* only on out-of-memory while building an answer */
        static const char oom[] = "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}";
        r->status = 503;
        r->resp_type = "application/json";
        r->resp = strdup(oom);
        r->resp_len = r->resp ? strlen(oom) : 0;
        if (!r->resp)
            return MHD_NO;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        return MHD_NO;
    r->resp = NULL; /* owned by resp now */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->resp_type);
    char id[32];
    snprintf(id, sizeof id, "%llu", (unsigned long long)r->id);
    MHD_add_response_header(resp, "X-Request-Id", r->client_id[0] ? r->client_id : id);
    if (r->meta)
        MHD_add_response_header(resp, "X-Pimg-Metadata", r->meta);
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->www_auth)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"pimg-admin\"");
    if (r->retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (r->close || atomic_load(&r->srv->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    atomic_store(&r->state, RQ_ANSWERED);
    return ok;
}

static enum MHD_Result answer_error(request *r, int status, const char *code, const char *msg)
{
    set_error(r, status, code, "%s", msg);
    return send_answer(r);
}

/* ---- body budget across connections ---- */

static int budget_take(server *s, request *r, size_t n)
{
    uint64_t cur = atomic_load(&s->buffered);
    do {
        if (cur + n > s->cfg.max_buffered)
            return -1;
    } while (!atomic_compare_exchange_weak(&s->buffered, &cur, cur + n));
    r->reserved += n;
    return 0;
}

static void body_free(request *r)
{
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    r->img = r->ref = NULL;
    if (r->reserved) {
        atomic_fetch_sub(&r->srv->buffered, r->reserved);
        r->reserved = 0;
    }
}

/* ---- GET endpoints ---- */

static int is_ready(server *s, const char **why)
{
    if (atomic_load(&s->draining)) {
        *why = "draining (shutting down)";
        return 0;
    }
    if (!s->models) {
        *why = "models not loaded";
        return 0;
    }
    if (pimg_pool_waiting(s->pool) >= s->cfg.high_water) {
        *why = "queue above high-water mark";
        return 0;
    }
    *why = "ready";
    return 1;
}

static int n_connections(server *s)
{
    pthread_mutex_lock(&s->conns_mu);
    int n = s->n_conns;
    pthread_mutex_unlock(&s->conns_mu);
    return n;
}

static enum MHD_Result answer_get(request *r)
{
    server *s = r->srv;
    const char *why;
    switch (r->ep) {
    case PIMG_EP_HEALTHZ:
        set_answer(r, 200, "application/json", strdup("{\"status\":\"ok\"}"), 15);
        return send_answer(r);
    case PIMG_EP_READYZ:
        if (!is_ready(s, &why)) {
            set_error(r, 503, "not_ready", "%s", why);
            return send_answer(r);
        }
        set_answer(r, 200, "application/json", strdup("{\"status\":\"ready\"}"), 18);
        return send_answer(r);
    case PIMG_EP_METRICS: {
        pimg_models *m = models_acquire(s);
        pimg_metrics_gauges g = {
            .queue_depth = pimg_pool_waiting(s->pool),
            .queue_capacity = pimg_pool_capacity(s->pool),
            .in_flight = pimg_pool_running(s->pool),
            .workers = s->cfg.workers,
            .connections = n_connections(s),
            .ready = is_ready(s, &why),
            .draining = atomic_load(&s->draining),
            .buffered_bytes = atomic_load(&s->buffered),
            .model_version = m ? pimg_models_version(m) : NULL,
        };
        size_t len = 0;
        char *text = pimg_metrics_render(s->metrics, &g, &len);
        pimg_models_release(m);
        set_answer(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
        return send_answer(r);
    }
    case PIMG_EP_OPENAPI:
        if (!s->openapi)
            return answer_error(r, 404, "not_found", "openapi.yaml was not found at start-up");
        set_answer(r, 200, "application/yaml", malloc(s->openapi_len + 1), s->openapi_len);
        if (r->resp)
            memcpy(r->resp, s->openapi, s->openapi_len);
        return send_answer(r);
    default:
        return answer_error(r, 404, "not_found", "no such endpoint");
    }
}

/* ---- POST /enhance, /analyze ---- */

/* Query parameters → pipeline options; BAD_INPUT message in err. */
static int parse_query(request *r, pimg_error *err)
{
    pimg_pipeline_opts_default(&r->opts);
    const char *v;
    char *end;
    if ((v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "ops")) &&
        pimg_ops_parse(v, &r->opts.ops, err))
        return -1;
    if ((v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "background")) &&
        pimg_background_parse(v, &r->opts.background, err))
        return -1;
    if ((v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "shadow"))) {
        if (!strcmp(v, "1") || !strcmp(v, "true")) {
            r->opts.white_shadow = 1;
        } else if (strcmp(v, "0") && strcmp(v, "false")) {
            pimg_error_set(err, PIMG_ERR_BAD_INPUT, "shadow must be 1, true, 0 or false");
            return -1;
        }
    }
    if ((v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "fill")) &&
        pimg_fill_parse(v, &r->opts.fill, err))
        return -1;
    if ((v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "quality"))) {
        long q = strtol(v, &end, 10);
        if (!*v || *end || q < 1 || q > 100) {
            pimg_error_set(err, PIMG_ERR_BAD_INPUT, "quality must be an integer 1..100");
            return -1;
        }
        r->opts.quality = (int)q;
    }
    if ((v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "max_side"))) {
        long m = strtol(v, &end, 10);
        if (!*v || *end || m < 1 || m > 100000) {
            pimg_error_set(err, PIMG_ERR_BAD_INPUT, "max_side must be an integer 1..100000");
            return -1;
        }
        r->opts.max_side = (int)m;
    }
    return pimg_pipeline_opts_check(&r->opts, err) ? -1 : 0;
}

/* First callback of a POST: everything decidable from the headers alone, before any body byte
 * is read, so a refused upload is never buffered or decoded (see send_answer for when its
 * body is still read and dropped). */
static enum MHD_Result post_begin(request *r)
{
    server *s = r->srv;
    if (atomic_load(&s->draining)) {
        r->close = 1;
        pimg_metrics_reject(s->metrics, PIMG_REJECT_DRAINING);
        return answer_error(r, 503, "draining", "server is shutting down");
    }
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct)
        snprintf(r->content_type, sizeof r->content_type, "%s", ct);
    if (pimg_media_type_is(ct, "multipart/form-data"))
        r->multipart = 1;
    if (r->admin_op == ADM_FEEDBACK && !r->multipart) {
        r->close = 1;
        return answer_error(r, 415, "unsupported_media_type", "feedback must be multipart/form-data with 'image' and 'label'");
    }
    if (r->admin_op == ADM_RETRAIN) {
        if (ct && !pimg_media_type_is(ct, "application/json")) {
            r->close = 1;
            return answer_error(r, 415, "unsupported_media_type", "retrain options must be application/json");
        }
    } else if (!r->multipart && ct && !pimg_media_type_is(ct, "image/") && !pimg_media_type_is(ct, "application/octet-stream")) {
        r->close = 1;
        return answer_error(r, 415, "unsupported_media_type",
                            "Content-Type must be image/*, application/octet-stream or multipart/form-data");
    }
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long declared = 0;
    if (cl) {
        char *end;
        declared = strtoull(cl, &end, 10);
        if (declared > s->cfg.max_body) {
            r->close = 1;
            pimg_metrics_reject(s->metrics, PIMG_REJECT_BODY_TOO_LARGE);
            set_error(r, 413, "body_too_large", "request body of %llu bytes is above the limit of %llu bytes",
                      declared, (unsigned long long)s->cfg.max_body);
            r->no_defer = 1;
            return send_answer(r);
        }
    }
    if (pimg_pool_waiting(s->pool) >= pimg_pool_capacity(s->pool)) {
        r->close = 1;
        pimg_metrics_reject(s->metrics, PIMG_REJECT_QUEUE_FULL);
        return answer_error(r, 503, "queue_full", "all workers busy and the queue is full; retry later");
    }
    if (declared) {
        if (budget_take(s, r, (size_t)declared)) {
            r->close = 1;
            pimg_metrics_reject(s->metrics, PIMG_REJECT_MEMORY_BUDGET);
            return answer_error(r, 503, "busy", "too many uploads in progress; retry later");
        }
        if (!(r->body = malloc((size_t)declared))) {
            r->close = 1;
            return answer_error(r, 503, "out_of_memory", "out of memory");
        }
        r->cap = (size_t)declared;
    }
    return MHD_YES;
}

/* A chunk of body. Beyond the limits the rest is read and dropped (MHD cannot answer in the
 * middle of a body), up to a hard cap after which the connection is simply closed. */
static enum MHD_Result post_chunk(request *r, const char *data, size_t n)
{
    server *s = r->srv;
    if (pimg_clock_ms() - r->t_start > s->cfg.upload_timeout_ms) {
        pimg_metrics_reject(s->metrics, PIMG_REJECT_UPLOAD_TIMEOUT);
        r->err_code = "upload_timeout";
        return MHD_NO;
    }
    if (r->overflow) {
        r->discarded += n;
        return r->discarded > 4 * s->cfg.max_body + (16u << 20) ? MHD_NO : MHD_YES;
    }
    if (r->len + n > s->cfg.max_body) {
        r->overflow = 413;
        r->discarded = r->len + n;
        body_free(r);
        pimg_metrics_reject(s->metrics, PIMG_REJECT_BODY_TOO_LARGE);
        return MHD_YES;
    }
    if (r->len + n > r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 256 * 1024;
        while (nc < r->len + n)
            nc *= 2;
        if (nc > s->cfg.max_body)
            nc = (size_t)s->cfg.max_body;
        unsigned char *nb = NULL;
        if (budget_take(s, r, nc - r->cap) || !(nb = realloc(r->body, nc))) {
            r->overflow = 503;
            body_free(r);
            pimg_metrics_reject(s->metrics, PIMG_REJECT_MEMORY_BUDGET);
            return MHD_YES;
        }
        r->body = nb;
        r->cap = nc;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->bytes_in = r->len;
    return MHD_YES;
}

/* ---- connection tracking: absolute header and upload deadlines ----
 *
 * libmicrohttpd only has an inactivity timeout, which a client sending one byte every few
 * seconds never trips. The main thread therefore sweeps the open connections twice a second
 * and shuts down the socket of any connection that has spent longer than header-timeout on
 * one request's headers or upload-timeout on one body; MHD then sees the socket fail and
 * closes it on its own thread. MHD reports a connection closed (removing it from the list,
 * under conns_mu) before it closes the descriptor, so a swept fd is never a reused one. */

static void set_phase(request *r, conn_phase ph)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_info *c = ci ? ci->socket_context : NULL;
    if (!c)
        return;
    pthread_mutex_lock(&r->srv->conns_mu);
    c->phase = ph;
    c->phase_start = ph == PH_BODY ? r->t_start : pimg_clock_ms();
    pthread_mutex_unlock(&r->srv->conns_mu);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_info *c = calloc(1, sizeof *c);
        if (!c)
            return;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci ? ci->connect_fd : -1;
        c->phase = PH_HEADERS;
        c->phase_start = pimg_clock_ms();
        pthread_mutex_lock(&s->conns_mu);
        c->next = s->conns.next;
        c->prev = &s->conns;
        s->conns.next->prev = c;
        s->conns.next = c;
        s->n_conns++;
        pthread_mutex_unlock(&s->conns_mu);
        *socket_context = c;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_info *c = *socket_context;
        if (!c)
            return;
        pthread_mutex_lock(&s->conns_mu);
        c->prev->next = c->next;
        c->next->prev = c->prev;
        s->n_conns--;
        pthread_mutex_unlock(&s->conns_mu);
        free(c);
        *socket_context = NULL;
    }
}

static void sweep_connections(server *s)
{
    double now = pimg_clock_ms();
    int cut = 0;
    pthread_mutex_lock(&s->conns_mu);
    for (conn_info *c = s->conns.next; c != &s->conns; c = c->next) {
        double limit = c->phase == PH_HEADERS ? s->cfg.header_timeout_ms
                       : c->phase == PH_BODY  ? s->cfg.upload_timeout_ms
                                              : -1;
        if (limit > 0 && now - c->phase_start > limit && c->fd >= 0) {
            shutdown(c->fd, SHUT_RDWR);
            c->fd = -1; /* once is enough */
            cut++;
        }
    }
    pthread_mutex_unlock(&s->conns_mu);
    for (int i = 0; i < cut; i++)
        pimg_metrics_reject(s->metrics, PIMG_REJECT_SLOW_CLIENT);
    if (cut) {
        log_event("warn", "slow_client", "closed %d connection(s) past the header/upload deadline", cut);
    }
}

static enum MHD_Result admin_retrain(request *r);

/* Runs under the pool lock when the job is accepted, before a worker can take it. */
static void suspend_job(void *job)
{
    request *r = job;
    atomic_store(&r->state, RQ_QUEUED);
    MHD_suspend_connection(r->conn);
}

/* The body is complete: validate it, find the image, queue the job and suspend. */
static enum MHD_Result post_end(request *r)
{
    server *s = r->srv;
    pimg_error err = {0};
    if (r->overflow == 413) {
        r->close = 1;
        set_error(r, 413, "body_too_large", "request body is above the limit of %llu bytes",
                  (unsigned long long)s->cfg.max_body);
        return send_answer(r);
    }
    if (r->overflow)
        return answer_error(r, 503, "busy", "too many uploads in progress; retry later");
    if (r->admin_op == ADM_RETRAIN)
        return admin_retrain(r);
    if (r->len == 0)
        return answer_error(r, 400, "empty_body", "request body is empty; send an image");
    if (r->multipart) {
        pimg_part parts[PIMG_MAX_PARTS];
        int n = 0;
        if (pimg_multipart_parse(r->content_type, r->body, r->len, parts, PIMG_MAX_PARTS, &n, &err))
            return answer_error(r, 400, "bad_multipart", err.msg);
        for (int i = 0; i < n; i++) {
            if (!strcmp(parts[i].name, "image") && !r->img) {
                r->img = parts[i].data;
                r->img_len = parts[i].len;
            } else if (!strcmp(parts[i].name, "reference") && !r->ref) {
                r->ref = parts[i].data;
                r->ref_len = parts[i].len;
            } else if (!strcmp(parts[i].name, "label") && !r->label) {
                r->label = parts[i].data;
                r->label_len = parts[i].len;
            }
        }
        if (!r->img)
            return answer_error(r, 400, "missing_image", "multipart body has no 'image' part");
        if (!r->img_len)
            return answer_error(r, 400, "empty_body", "the 'image' part is empty");
        if (r->ref && r->ep != PIMG_EP_ENHANCE)
            r->ref = NULL;
        if (r->admin_op == ADM_FEEDBACK && !r->label)
            return answer_error(r, 400, "missing_label", "multipart body has no 'label' part");
    } else {
        r->img = r->body;
        r->img_len = r->len;
    }
    if (parse_query(r, &err))
        return answer_error(r, 400, "bad_parameter", err.msg);
    r->want_json = pimg_accepts_json(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT));
    r->t_queued = pimg_clock_ms();
    r->deadline = r->t_queued + s->cfg.request_timeout_ms; /* upload has its own deadline */
    int q = pimg_pool_submit(s->pool, r, suspend_job);
    if (q == PIMG_POOL_OK)
        return MHD_YES;
    body_free(r);
    if (q == PIMG_POOL_FULL) {
        pimg_metrics_reject(s->metrics, PIMG_REJECT_QUEUE_FULL);
        return answer_error(r, 503, "queue_full", "all workers busy and the queue is full; retry later");
    }
    pimg_metrics_reject(s->metrics, PIMG_REJECT_DRAINING);
    return answer_error(r, 503, "draining", "server is shutting down");
}

/* ---- worker side ---- */

static double timing(const pimg_analysis *a, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(a->timings, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void record_stages(server *s, const pimg_analysis *a)
{
    double dec = timing(a, "decode"), tot = timing(a, "analyze_total");
    double app = timing(a, "apply"), enc = timing(a, "encode");
    if (!isnan(dec))
        pimg_metrics_stage(s->metrics, PIMG_STAGE_DECODE, dec / 1e3);
    if (!isnan(tot) && !isnan(dec))
        pimg_metrics_stage(s->metrics, PIMG_STAGE_ANALYZE, (tot - dec) / 1e3);
    if (!isnan(app))
        pimg_metrics_stage(s->metrics, PIMG_STAGE_ENHANCE, app / 1e3);
    if (!isnan(enc))
        pimg_metrics_stage(s->metrics, PIMG_STAGE_ENCODE, enc / 1e3);
}

static void job_error(request *r, pimg_status st, const pimg_error *err, const char *prefix,
                      const unsigned char *bytes, size_t len)
{
    const char *code;
    int http = pimg_http_status(st, &code);
    /* lib says UNSUPPORTED for anything off its allow-list. A known format we refuse (SVG,
     * PDF, BMP, ...) is 415; bytes that are no image format at all are a bad body: 400. */
    if (st == PIMG_ERR_UNSUPPORTED && bytes) {
        const char *fmt = pimg_sniff_refused_format(bytes, len);
        if (fmt) {
            set_error(r, 415, "unsupported_media_type", "%s%s images are not accepted (JPEG, PNG, WebP, TIFF, GIF, HEIF/AVIF are)", prefix, fmt);
            return;
        }
        set_error(r, 400, "bad_input", "%sbody is not a recognisable image", prefix);
        return;
    }
    set_error(r, http, code, "%s%s", prefix, err->msg[0] ? err->msg : pimg_status_name(st));
}

static void run_job(void *job, void *arg)
{
    request *r = job;
    server *s = arg;
    double t0 = pimg_clock_ms();
    r->queue_ms = t0 - r->t_queued;
    pimg_metrics_stage(s->metrics, PIMG_STAGE_QUEUE, r->queue_ms / 1e3);
    pimg_models *models = NULL;
    pimg_image *img = NULL, *ref = NULL;
    pimg_analysis an;
    memset(&an, 0, sizeof an);
    pimg_error err = {0};
    pimg_status st;
    void *jpeg = NULL;
    size_t jpeg_len = 0;
    cJSON *meta = NULL;
    if (t0 > r->deadline) {
        pimg_metrics_reject(s->metrics, PIMG_REJECT_TIMEOUT);
        set_error(r, 503, "timeout", "request waited %.0f ms for a worker, past its deadline", r->queue_ms);
        goto done;
    }
    if (r->admin_op == ADM_FEEDBACK) {
        int64_t id = 0;
        st = pimg_admin_feedback(s->admin, r->img, r->img_len, (const char *)r->label, r->label_len, s->cfg.max_pixels,
                                 &id, &err);
        if (st) {
            job_error(r, st, &err, "", r->img, r->img_len);
        } else {
            char body[64];
            snprintf(body, sizeof body, "{\"id\":%lld}", (long long)id);
            set_answer(r, 201, "application/json", strdup(body), strlen(body));
        }
        goto done;
    }
    models = models_acquire(s);
    pimg_load_opts lo = {.max_pixels = s->cfg.max_pixels};
    if ((st = pimg_analysis_init(&an))) {
        job_error(r, st, &err, "", NULL, 0);
        goto done;
    }
    if ((st = pimg_image_load_buffer(r->img, r->img_len, &lo, &img, &err))) {
        job_error(r, st, &err, "", r->img, r->img_len);
        goto done;
    }
    if (r->ref) {
        if ((st = pimg_image_load_buffer(r->ref, r->ref_len, &lo, &ref, &err))) {
            job_error(r, st, &err, "reference: ", r->ref, r->ref_len);
            goto done;
        }
        r->opts.reference = ref;
        r->opts.ops |= PIMG_OP_ALIGN;
    }
    body_free(r); /* the images keep their own copies */
    r->opts.deadline_ms = r->deadline;
    /* Decoding ahead on a second thread pays only with a core to spare; under load it would
     * take CPU from the other requests. */
    r->opts.prefetch = pimg_pool_running(s->pool) < s->cores;
    if (r->ep == PIMG_EP_ANALYZE)
        st = pimg_pipeline_analyze(models, img, &r->opts, &an, &err);
    else
        st = pimg_pipeline_enhance(models, img, &r->opts, &an, &jpeg, &jpeg_len, &err);
    if (st) {
        if (st == PIMG_ERR_TIMEOUT)
            pimg_metrics_reject(s->metrics, PIMG_REJECT_TIMEOUT);
        job_error(r, st, &err, "", NULL, 0);
        goto done;
    }
    record_stages(s, &an);
    if (!(meta = pimg_analysis_to_json(&an, NULL))) {
        set_error(r, 503, "out_of_memory", "out of memory");
        goto done;
    }
    if (r->ep == PIMG_EP_ANALYZE) {
        char *body = cJSON_PrintUnformatted(meta);
        set_answer(r, 200, "application/json", body, body ? strlen(body) : 0);
    } else if (r->want_json) {
        size_t b64_len = 0;
        char *b64 = pimg_base64_encode(jpeg, jpeg_len, &b64_len);
        cJSON *o = cJSON_CreateObject();
        char *body = NULL;
        if (b64 && o) {
            cJSON_AddItemToObject(o, "metadata", meta);
            meta = NULL;
            cJSON_AddItemToObject(o, "image", cJSON_CreateStringReference(b64));
            body = cJSON_PrintUnformatted(o);
        }
        cJSON_Delete(o);
        free(b64);
        set_answer(r, 200, "application/json", body, body ? strlen(body) : 0);
    } else {
        r->meta = cJSON_PrintUnformatted(meta);
        set_answer(r, 200, "image/jpeg", jpeg, jpeg_len);
        jpeg = NULL;
    }
done:
    cJSON_Delete(meta);
    free(jpeg);
    pimg_analysis_clear(&an);
    pimg_image_free(img);
    pimg_image_free(ref);
    pimg_models_release(models);
    body_free(r);
    /* Last touch of r on this thread: after resume the HTTP thread may answer and free it. */
    struct MHD_Connection *conn = r->conn;
    atomic_store(&r->state, RQ_DONE);
    MHD_resume_connection(conn);
}

/* ---- admin API (see service/admin.h) ---- */

static enum MHD_Result admin_retrain(request *r)
{
    char job[48];
    pimg_error err = {0};
    pimg_status st = pimg_admin_retrain(r->srv->admin, (const char *)r->body, r->len, job, sizeof job, &err);
    if (st == PIMG_ERR_CANCELLED)
        return answer_error(r, 409, "conflict", err.msg);
    if (st == PIMG_ERR_BAD_INPUT)
        return answer_error(r, 400, "bad_parameter", err.msg);
    if (st)
        return answer_error(r, 500, "internal", err.msg);
    char body[96];
    snprintf(body, sizeof body, "{\"job\":\"%s\"}", job);
    set_answer(r, 202, "application/json", strdup(body), strlen(body));
    return send_answer(r);
}

static enum MHD_Result admin_models(request *r)
{
    server *s = r->srv;
    pimg_models *m = models_acquire(s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dir", m ? pimg_models_dir(m) : s->models_dir);
    cJSON_AddStringToObject(o, "version", m ? pimg_models_version(m) : "none");
    cJSON_AddItemToObject(o, "models", pimg_models_describe(m));
    cJSON_AddNumberToObject(o, "feedback_items", (double)pimg_admin_feedback_count(s->admin));
    pimg_models_release(m);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    set_answer(r, 200, "application/json", body, body ? strlen(body) : 0);
    return send_answer(r);
}

/* Auth first (so nothing about the admin API leaks without a token), then the sub-route. */
static enum MHD_Result admin_begin(request *r, const char *url, int is_get, int is_post)
{
    server *s = r->srv;
    r->close = r->body_expected;
    if (!s->admin)
        return answer_error(r, 403, "admin_disabled", "the admin API is disabled (no PIMG_ADMIN_TOKEN configured)");
    int a = pimg_admin_auth(s->cfg.admin_token, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
    if (a == 401) {
        r->www_auth = 1;
        return answer_error(r, 401, "unauthorized", "send Authorization: Bearer <PIMG_ADMIN_TOKEN>");
    }
    if (a)
        return answer_error(r, 403, "forbidden", "wrong admin token");
    if (!strcmp(url, "/admin/models")) {
        if (!is_get) {
            r->allow = "GET, HEAD";
            return answer_error(r, 405, "method_not_allowed", "use GET");
        }
        return admin_models(r);
    }
    if (!strcmp(url, "/admin/feedback") || !strcmp(url, "/admin/retrain")) {
        if (!is_post) {
            r->allow = "POST";
            return answer_error(r, 405, "method_not_allowed", "use POST");
        }
        r->close = 0;
        r->admin_op = url[7] == 'f' ? ADM_FEEDBACK : ADM_RETRAIN;
        return post_begin(r);
    }
    if (!strncmp(url, "/admin/retrain/", 15) && url[15] && strlen(url + 15) < sizeof r->job && !strchr(url + 15, '/')) {
        if (!is_get) {
            r->allow = "GET, HEAD";
            return answer_error(r, 405, "method_not_allowed", "use GET");
        }
        cJSON *o = pimg_admin_job(s->admin, url + 15);
        if (!o)
            return answer_error(r, 404, "not_found", "no such retrain job");
        char *body = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        set_answer(r, 200, "application/json", body, body ? strlen(body) : 0);
        return send_answer(r);
    }
    return answer_error(r, 404, "not_found", "no such admin endpoint");
}

static void on_promoted(void *ctx)
{
    server *s = ctx;
    reload_models(s, s->models_dir);
}

/* ---- routing and MHD callbacks ---- */

static pimg_endpoint route(const char *url)
{
    static const struct {
        const char *path;
        pimg_endpoint ep;
    } routes[] = {
        {"/enhance", PIMG_EP_ENHANCE}, {"/analyze", PIMG_EP_ANALYZE}, {"/healthz", PIMG_EP_HEALTHZ},
        {"/readyz", PIMG_EP_READYZ},   {"/metrics", PIMG_EP_METRICS}, {"/openapi.yaml", PIMG_EP_OPENAPI},
    };
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
        if (!strcmp(url, routes[i].path))
            return routes[i].ep;
    if (!strncmp(url, "/admin/", 7) || !strcmp(url, "/admin"))
        return PIMG_EP_ADMIN;
    return PIMG_EP_OTHER;
}

static enum MHD_Result first_call(request *r, const char *url, const char *method);
static enum MHD_Result later_call(request *r, const char *upload_data, size_t *upload_data_size);

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    server *s = cls;
    request *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->srv = s;
        r->conn = conn;
        r->id = atomic_fetch_add(&s->next_id, 1) + 1;
        r->t_start = pimg_clock_ms();
        r->ep = route(url);
        snprintf(r->method, sizeof r->method, "%s", method);
        *con_cls = r;
        atomic_fetch_add(&s->active, 1);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        const char *ex = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
        r->body_expected = (cl && strtoull(cl, NULL, 10) > 0) || te;
        r->expect_100 = ex && strcasestr(ex, "100-continue");
        /* A client's own request id is echoed and logged, if it is a plain token. */
        const char *cid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        if (cid && strlen(cid) < sizeof r->client_id && strspn(cid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == strlen(cid))
            snprintf(r->client_id, sizeof r->client_id, "%s", cid);
        r->first_call = 1;
        enum MHD_Result res = first_call(r, url, method);
        r->first_call = 0;
        return res;
    }
    int state = atomic_load(&r->state);
    if (state == RQ_DISCARD) { /* answer decided from the headers; the body is dropped */
        if (*upload_data_size) {
            r->discarded += *upload_data_size;
            *upload_data_size = 0;
            return r->discarded > 4 * s->cfg.max_body + (16u << 20) ? MHD_NO : MHD_YES;
        }
        return send_answer(r);
    }
    return later_call(r, upload_data, upload_data_size);
}

/* The first call of a request: route and decide what the headers alone allow. */
static enum MHD_Result first_call(request *r, const char *url, const char *method)
{
    set_phase(r, r->body_expected ? PH_BODY : PH_BUSY);
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    int is_post = !strcmp(method, "POST");
    switch (r->ep) {
    case PIMG_EP_ENHANCE:
    case PIMG_EP_ANALYZE:
        if (!is_post) {
            r->allow = "POST";
            r->close = r->body_expected;
            return answer_error(r, 405, "method_not_allowed", "use POST");
        }
        return post_begin(r);
    case PIMG_EP_ADMIN:
        return admin_begin(r, url, is_get, is_post);
    case PIMG_EP_OTHER:
        r->close = 1;
        return answer_error(r, 404, "not_found", "no such endpoint");
    default:
        if (!is_get) {
            r->allow = "GET, HEAD";
            r->close = 1;
            return answer_error(r, 405, "method_not_allowed", "use GET");
        }
        return answer_get(r);
    }
}

/* Later calls: body chunks, the end of the body, and the call after a worker resumed us. */
static enum MHD_Result later_call(request *r, const char *upload_data, size_t *upload_data_size)
{
    int state = atomic_load(&r->state);
    if (state == RQ_ANSWERED) { /* answer already queued: drop whatever body still arrives */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (state == RQ_DONE)
        return send_answer(r);
    if (state == RQ_QUEUED) /* resumed spuriously; cannot happen with our resume discipline */
        return MHD_YES;
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return post_chunk(r, upload_data, n);
    }
    set_phase(r, PH_BUSY);
    return post_end(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    server *s = cls;
    request *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    set_phase(r, PH_HEADERS); /* keep-alive: the next request's headers are due */
    (void)conn;
    double ms = pimg_clock_ms() - r->t_start;
    if (r->status)
        pimg_metrics_request(s->metrics, r->ep, r->status, ms / 1e3);
    if (s->cfg.access_log) {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            static const char *toe_names[] = {"ok", "error", "timeout", "shutdown", "read_error", "client_abort"};
            cJSON_AddStringToObject(o, "level", "info");
            cJSON_AddStringToObject(o, "event", "request");
            cJSON_AddNumberToObject(o, "id", (double)r->id);
            if (r->client_id[0])
                cJSON_AddStringToObject(o, "request_id", r->client_id);
            cJSON_AddStringToObject(o, "method", r->method);
            cJSON_AddStringToObject(o, "route", pimg_endpoint_name(r->ep));
            cJSON_AddNumberToObject(o, "status", r->status);
            cJSON_AddNumberToObject(o, "bytes_in", (double)(r->bytes_in > r->discarded ? r->bytes_in : r->discarded));
            cJSON_AddNumberToObject(o, "bytes_out", (double)r->resp_len);
            cJSON_AddNumberToObject(o, "ms", round(ms * 100) / 100);
            cJSON_AddNumberToObject(o, "queue_ms", round(r->queue_ms * 100) / 100);
            if (r->err_code)
                cJSON_AddStringToObject(o, "error", r->err_code);
            if ((unsigned)toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && (unsigned)toe < 6)
                cJSON_AddStringToObject(o, "end", toe_names[toe]);
            log_line(o);
        }
    }
    body_free(r);
    free(r->resp);
    free(r->meta);
    free(r);
    atomic_fetch_sub(&s->active, 1);
}

/* ---- start-up ---- */

/* Reads a project file (openapi.yaml) found next to the binary's project root, like models/. */
static char *load_project_file(const char *explicit_path, const char *exe, const char *name, size_t *len)
{
    char cand[PATH_MAX + 64];
    const char *paths[4];
    int np = 0;
    char exe_dir[PATH_MAX], up1[PATH_MAX + 64], up2[PATH_MAX + 64];
    if (explicit_path && *explicit_path)
        paths[np++] = explicit_path;
    else {
        if (exe && realpath(exe, exe_dir)) {
            char *sl = strrchr(exe_dir, '/');
            if (sl) {
                *sl = '\0';
                snprintf(up1, sizeof up1, "%s/%s", exe_dir, name);
                paths[np++] = up1;
                sl = strrchr(exe_dir, '/');
                if (sl) {
                    *sl = '\0';
                    snprintf(up2, sizeof up2, "%s/%s", exe_dir, name);
                    paths[np++] = up2;
                }
            }
        }
        snprintf(cand, sizeof cand, "%s", name);
        paths[np++] = cand;
    }
    for (int i = 0; i < np; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f)
            continue;
        char *buf = NULL;
        size_t n = 0, cap = 0, got;
        do {
            if (n == cap) {
                cap = cap ? cap * 2 : 65536;
                char *nb = realloc(buf, cap);
                if (!nb) {
                    free(buf);
                    fclose(f);
                    return NULL;
                }
                buf = nb;
            }
            got = fread(buf + n, 1, cap - n, f);
            n += got;
        } while (got);
        fclose(f);
        *len = n;
        return buf;
    }
    return NULL;
}

int pimg_cmd_serve(int argc, char **argv, const char *exe)
{
    static server srv; /* one server per process; static so the completion callbacks never outlive it */
    server *s = &srv;
    int rc = pimg_config_parse(&s->cfg, argc, argv, stderr);
    if (rc)
        return rc == 1 ? 0 : 2;
    pimg_error err = {0};
    /* main() already started libvips with its defaults; a second pimg_init only applies the
     * per-pipeline thread count (libvips' init is idempotent), so workers × vips threads ≤ cores. */
    if (pimg_init(exe, s->cfg.vips_threads, &err)) {
        fprintf(stderr, "pimg serve: %s\n", err.msg);
        return 1;
    }
    g_log_set_default_handler(glib_logger, NULL);
    g_log_set_handler("VIPS", G_LOG_LEVEL_MASK, glib_logger, NULL);
    g_log_set_handler("GLib", G_LOG_LEVEL_MASK, glib_logger, NULL);
    g_log_set_handler("GLib-GObject", G_LOG_LEVEL_MASK, glib_logger, NULL);
    /* glibc makes an arena per thread that ever mallocs; with libvips' threads that fragments
     * into gigabytes under load. A few arenas keep RSS flat at no measurable cost. */
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, 2 + s->cfg.workers / 4);
    pthread_mutex_init(&s->models_mu, NULL);
    pthread_mutex_init(&s->conns_mu, NULL);
    s->conns.next = s->conns.prev = &s->conns;
    char dirbuf[PATH_MAX];
    const char *dir = s->cfg.models_dir[0] ? s->cfg.models_dir : pimg_models_default_dir(exe, dirbuf, sizeof dirbuf);
    if (pimg_models_load(dir, &s->models, &err)) {
        fprintf(stderr, "pimg serve: models: %s\n", err.msg);
        return 1;
    }
    if (strlen(dir) >= sizeof s->models_dir) {
        fprintf(stderr, "pimg serve: models path too long\n");
        return 2;
    }
    memcpy(s->models_dir, dir, strlen(dir) + 1);
    if (s->cfg.admin_token[0] &&
        pimg_admin_open(s->cfg.state_dir, exe, dir, on_promoted, s, &s->admin, &err)) {
        fprintf(stderr, "pimg serve: admin: %s\n", err.msg);
        return 1;
    }
    s->openapi = load_project_file(s->cfg.openapi, exe, "openapi.yaml", &s->openapi_len);
    if (!s->openapi && s->cfg.openapi[0]) {
        fprintf(stderr, "pimg serve: cannot read %s\n", s->cfg.openapi);
        return 2;
    }
    if (!(s->metrics = pimg_metrics_new())) {
        fprintf(stderr, "pimg serve: out of memory\n");
        return 1;
    }
    /* Only this thread takes SIGTERM/SIGINT (via sigwait); every thread started from here on
     * (MHD, workers, libvips) inherits the blocked mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    s->cores = cores > 0 ? (int)cores : 1;
    if (!(s->pool = pimg_pool_new(s->cfg.workers, s->cfg.queue, run_job, s))) {
        fprintf(stderr, "pimg serve: cannot start %d workers\n", s->cfg.workers);
        return 1;
    }
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)s->cfg.port);
    if (inet_pton(AF_INET, s->cfg.bind, &addr.sin_addr) != 1) {
        fprintf(stderr, "pimg serve: --bind must be an IPv4 address, got '%s'\n", s->cfg.bind);
        return 2;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.conn_limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)s->cfg.per_ip_limit, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.conn_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)s->cfg.conn_memory, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_END);
    if (!s->daemon) {
        fprintf(stderr, "pimg serve: cannot listen on %s:%d\n", s->cfg.bind, s->cfg.port);
        pimg_pool_free(s->pool);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    log_event("info", "listening",
              "pimg %s on %s:%d workers=%d queue=%d vips_threads=%d max_body=%llu models=%s version=%s openapi=%s admin=%s",
              PIMG_VERSION, s->cfg.bind, s->port, s->cfg.workers, s->cfg.queue, s->cfg.vips_threads,
              (unsigned long long)s->cfg.max_body, dir, pimg_models_version(s->models),
              s->openapi ? "yes" : "missing", s->admin ? "on" : "off");

    int sig = 0;
    for (;;) {
        struct timespec tick = {0, 500 * 1000 * 1000};
        sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGHUP) {
            reload_models(s, dir);
            continue;
        }
        if (sig > 0)
            break;
        sweep_connections(s);
    }
    /* Drain: readiness off, stop accepting, let accepted work finish, then stop. */
    atomic_store(&s->draining, 1);
    log_event("info", "draining", "signal %d: refusing new work, finishing accepted requests", sig);
    /* The listening socket stays open while draining: probes keep answering (/readyz 503, so
     * the load balancer takes the pod out) and new image requests get a fast 503 "draining"
     * instead of a refused connection. */
    double until = pimg_clock_ms() + s->cfg.drain_timeout_ms;
    int clean = 0;
    for (;;) {
        if (atomic_load(&s->active) == 0 && pimg_pool_waiting(s->pool) == 0 && pimg_pool_running(s->pool) == 0) {
            clean = 1;
            break;
        }
        if (pimg_clock_ms() > until)
            break;
        usleep(20 * 1000);
        sweep_connections(s);
    }
    if (clean) {
        /* Accepted work is done: stop accepting, then give requests already on their way
         * through connections accepted just before (they get 503 "draining") a moment to be
         * answered, so MHD_stop_daemon does not cut a request in half. */
        MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
        if (lfd != MHD_INVALID_SOCKET)
            close(lfd);
        double quiet_since = pimg_clock_ms();
        while (pimg_clock_ms() - quiet_since < 300 && pimg_clock_ms() < until) {
            if (atomic_load(&s->active) != 0 || pimg_pool_waiting(s->pool) || pimg_pool_running(s->pool))
                quiet_since = pimg_clock_ms();
            usleep(10 * 1000);
        }
        clean = atomic_load(&s->active) == 0 && !pimg_pool_waiting(s->pool) && !pimg_pool_running(s->pool);
    }
    if (!clean) {
        /* Jobs still hold suspended connections; stopping MHD under them would free requests
         * the workers still use. Leave without tearing down. */
        log_event("error", "drain_timeout", "%d requests still active after %d ms; exiting",
                  atomic_load(&s->active), s->cfg.drain_timeout_ms);
        _exit(1);
    }
    MHD_stop_daemon(s->daemon);
    pimg_pool_free(s->pool);
    pimg_admin_free(s->admin);
    log_event("info", "stopped", "drained cleanly");
    pimg_models_release(s->models);
    pimg_metrics_free(s->metrics);
    free(s->openapi);
    return 0;
}
