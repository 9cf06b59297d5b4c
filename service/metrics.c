/* metrics.c — fixed-size tables (endpoints × a few status codes, stages × buckets), so
 * recording never allocates and the exposition has a bounded number of series. */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define N_BUCKETS (sizeof buckets / sizeof *buckets)
#define MAX_STATUSES 16

typedef struct {
    uint64_t le[N_BUCKETS]; /* non-cumulative per bucket; summed at render */
    uint64_t count;
    double sum;
} histogram;

struct pimg_metrics {
    pthread_mutex_t mu;
    struct {
        int status[MAX_STATUSES];
        uint64_t count[MAX_STATUSES];
        int n;
        histogram latency;
    } ep[PIMG_EP_COUNT];
    histogram stage[PIMG_STAGE_COUNT];
    uint64_t rejected[PIMG_REJECT_COUNT];
};

static const char *ep_names[PIMG_EP_COUNT] = {"enhance", "analyze", "healthz", "readyz",
                                              "metrics", "openapi", "admin",   "other"};
static const char *stage_names[PIMG_STAGE_COUNT] = {"queue", "decode", "analyze", "enhance", "encode"};
static const char *reject_names[PIMG_REJECT_COUNT] = {"queue_full", "body_too_large", "memory_budget",
                                                      "draining", "timeout", "upload_timeout", "slow_client"};

pimg_metrics *pimg_metrics_new(void)
{
    pimg_metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void pimg_metrics_free(pimg_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

const char *pimg_endpoint_name(pimg_endpoint ep)
{
    return (unsigned)ep < PIMG_EP_COUNT ? ep_names[ep] : "other";
}

static void observe(histogram *h, double v)
{
    size_t i = 0;
    while (i < N_BUCKETS && v > buckets[i])
        i++;
    if (i < N_BUCKETS)
        h->le[i]++;
    h->count++;
    h->sum += v;
}

void pimg_metrics_request(pimg_metrics *m, pimg_endpoint ep, int status, double seconds)
{
    if ((unsigned)ep >= PIMG_EP_COUNT)
        ep = PIMG_EP_OTHER;
    pthread_mutex_lock(&m->mu);
    int i;
    for (i = 0; i < m->ep[ep].n; i++)
        if (m->ep[ep].status[i] == status)
            break;
    if (i == m->ep[ep].n) {
        if (m->ep[ep].n < MAX_STATUSES) {
            m->ep[ep].status[i] = status;
            m->ep[ep].count[i] = 0;
            m->ep[ep].n++;
        } else {
            i = -1; /* more distinct statuses than slots: count latency only */
        }
    }
    if (i >= 0)
        m->ep[ep].count[i]++;
    observe(&m->ep[ep].latency, seconds);
    pthread_mutex_unlock(&m->mu);
}

void pimg_metrics_stage(pimg_metrics *m, pimg_stage stage, double seconds)
{
    if ((unsigned)stage >= PIMG_STAGE_COUNT)
        return;
    pthread_mutex_lock(&m->mu);
    observe(&m->stage[stage], seconds);
    pthread_mutex_unlock(&m->mu);
}

void pimg_metrics_reject(pimg_metrics *m, pimg_reject why)
{
    if ((unsigned)why >= PIMG_REJECT_COUNT)
        return;
    pthread_mutex_lock(&m->mu);
    m->rejected[why]++;
    pthread_mutex_unlock(&m->mu);
}

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} sbuf;

static void out(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(sbuf *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            s->failed = 1;
            return;
        }
        if ((size_t)n < s->cap - s->len) {
            s->len += (size_t)n;
            return;
        }
        size_t nc = s->cap * 2 + (size_t)n;
        char *nb = realloc(s->buf, nc);
        if (!nb) {
            s->failed = 1;
            return;
        }
        s->buf = nb;
        s->cap = nc;
    }
}

static void render_hist(sbuf *s, const char *name, const char *label, const histogram *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += h->le[i];
        out(s, "%s_bucket{%s,le=\"%g\"} %llu\n", name, label, buckets[i], (unsigned long long)cum);
    }
    out(s, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, label, (unsigned long long)h->count);
    out(s, "%s_sum{%s} %.6f\n", name, label, h->sum);
    out(s, "%s_count{%s} %llu\n", name, label, (unsigned long long)h->count);
}

char *pimg_metrics_render(pimg_metrics *m, const pimg_metrics_gauges *g, size_t *len)
{
    sbuf s = {malloc(8192), 0, 8192, 0};
    if (!s.buf)
        return NULL;
    s.buf[0] = '\0';
    pthread_mutex_lock(&m->mu);
    out(&s, "# HELP pimg_requests_total Finished HTTP requests by endpoint and status.\n"
            "# TYPE pimg_requests_total counter\n");
    for (int e = 0; e < PIMG_EP_COUNT; e++)
        for (int i = 0; i < m->ep[e].n; i++)
            out(&s, "pimg_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", ep_names[e],
                m->ep[e].status[i], (unsigned long long)m->ep[e].count[i]);
    out(&s, "# HELP pimg_request_duration_seconds Time from request start to response queued.\n"
            "# TYPE pimg_request_duration_seconds histogram\n");
    for (int e = 0; e < PIMG_EP_COUNT; e++) {
        if (!m->ep[e].latency.count)
            continue;
        char label[64];
        snprintf(label, sizeof label, "endpoint=\"%s\"", ep_names[e]);
        render_hist(&s, "pimg_request_duration_seconds", label, &m->ep[e].latency);
    }
    out(&s, "# HELP pimg_stage_duration_seconds Time per processing stage.\n"
            "# TYPE pimg_stage_duration_seconds histogram\n");
    for (int st = 0; st < PIMG_STAGE_COUNT; st++) {
        char label[64];
        snprintf(label, sizeof label, "stage=\"%s\"", stage_names[st]);
        render_hist(&s, "pimg_stage_duration_seconds", label, &m->stage[st]);
    }
    out(&s, "# HELP pimg_rejected_total Requests refused to protect the service, by reason.\n"
            "# TYPE pimg_rejected_total counter\n");
    for (int r = 0; r < PIMG_REJECT_COUNT; r++)
        out(&s, "pimg_rejected_total{reason=\"%s\"} %llu\n", reject_names[r],
            (unsigned long long)m->rejected[r]);
    pthread_mutex_unlock(&m->mu);
    out(&s, "# HELP pimg_queue_depth Jobs waiting for a worker.\n# TYPE pimg_queue_depth gauge\n"
            "pimg_queue_depth %d\n",
        g->queue_depth);
    out(&s, "# HELP pimg_queue_capacity Jobs that may wait.\n# TYPE pimg_queue_capacity gauge\n"
            "pimg_queue_capacity %d\n",
        g->queue_capacity);
    out(&s, "# HELP pimg_in_flight Jobs running on a worker.\n# TYPE pimg_in_flight gauge\n"
            "pimg_in_flight %d\n",
        g->in_flight);
    out(&s, "# HELP pimg_connections Open HTTP connections.\n# TYPE pimg_connections gauge\n"
            "pimg_connections %d\n",
        g->connections);
    out(&s, "# HELP pimg_workers Image worker threads.\n# TYPE pimg_workers gauge\npimg_workers %d\n",
        g->workers);
    out(&s, "# HELP pimg_buffered_bytes Request body bytes held in memory.\n"
            "# TYPE pimg_buffered_bytes gauge\npimg_buffered_bytes %llu\n",
        (unsigned long long)g->buffered_bytes);
    out(&s, "# HELP pimg_ready 1 when /readyz answers 200.\n# TYPE pimg_ready gauge\npimg_ready %d\n",
        g->ready);
    out(&s, "# HELP pimg_draining 1 after SIGTERM.\n# TYPE pimg_draining gauge\npimg_draining %d\n",
        g->draining);
    /* Label values must not break the format: the version string is ours, but escape anyway. */
    char ver[128];
    size_t o = 0;
    for (const char *p = g->model_version ? g->model_version : "none"; *p && o < sizeof ver - 3; p++) {
        if (*p == '"' || *p == '\\')
            ver[o++] = '\\';
        ver[o++] = *p == '\n' ? ' ' : *p;
    }
    ver[o] = '\0';
    out(&s, "# HELP pimg_model_info Loaded model set.\n# TYPE pimg_model_info gauge\n"
            "pimg_model_info{version=\"%s\"} 1\n",
        ver);
    if (s.failed) {
        free(s.buf);
        return NULL;
    }
    if (len)
        *len = s.len;
    return s.buf;
}
