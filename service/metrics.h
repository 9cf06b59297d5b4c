/* metrics.h — the service's counters and latency histograms, rendered in the Prometheus text
 * exposition format for GET /metrics. Thread-safe: updates come from the HTTP thread and the
 * workers; one mutex is enough at image-processing request rates. */
#ifndef PIMG_SERVICE_METRICS_H
#define PIMG_SERVICE_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    PIMG_EP_ENHANCE,
    PIMG_EP_ANALYZE,
    PIMG_EP_HEALTHZ,
    PIMG_EP_READYZ,
    PIMG_EP_METRICS,
    PIMG_EP_OPENAPI,
    PIMG_EP_ADMIN,
    PIMG_EP_OTHER,
    PIMG_EP_COUNT
} pimg_endpoint;

typedef enum {
    PIMG_STAGE_QUEUE,   /* waiting for a worker */
    PIMG_STAGE_DECODE,  /* header + analysis-size decode */
    PIMG_STAGE_ANALYZE, /* orient, level, detect, quality */
    PIMG_STAGE_ENHANCE, /* corrections at full resolution */
    PIMG_STAGE_ENCODE,  /* JPEG encode (includes the full-size decode, which libvips streams into it) */
    PIMG_STAGE_COUNT
} pimg_stage;

typedef enum {
    PIMG_REJECT_QUEUE_FULL,
    PIMG_REJECT_BODY_TOO_LARGE,
    PIMG_REJECT_MEMORY_BUDGET,
    PIMG_REJECT_DRAINING,
    PIMG_REJECT_TIMEOUT,
    PIMG_REJECT_UPLOAD_TIMEOUT,
    PIMG_REJECT_SLOW_CLIENT,
    PIMG_REJECT_COUNT
} pimg_reject;

typedef struct pimg_metrics pimg_metrics;

/* Values read at render time. model_version is borrowed for the call. */
typedef struct {
    int queue_depth, queue_capacity, in_flight, workers, connections;
    int ready, draining;
    uint64_t buffered_bytes;
    const char *model_version;
} pimg_metrics_gauges;

/* Ownership: free with pimg_metrics_free (NULL-safe). NULL on no memory. */
pimg_metrics *pimg_metrics_new(void);
void pimg_metrics_free(pimg_metrics *m);

/* Route label ("enhance", "healthz", ...). */
const char *pimg_endpoint_name(pimg_endpoint ep);

/* One finished request: counts it by endpoint and status, observes its latency. */
void pimg_metrics_request(pimg_metrics *m, pimg_endpoint ep, int status, double seconds);

void pimg_metrics_stage(pimg_metrics *m, pimg_stage stage, double seconds);

void pimg_metrics_reject(pimg_metrics *m, pimg_reject why);

/* The whole exposition. Ownership: malloc'd string the caller frees; NULL on no memory. */
char *pimg_metrics_render(pimg_metrics *m, const pimg_metrics_gauges *g, size_t *len);

#endif
