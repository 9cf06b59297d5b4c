/* config.h — the immutable configuration of `pimg serve`.
 *
 * Every setting has a name, a default, a `PIMG_*` environment variable and a `--flag`;
 * precedence is defaults < environment < flags. pimg_config_parse fills the struct once at
 * start-up and validates it (ranges, cross-field rules such as queue >= 1); afterwards the
 * server only reads it, from any thread, without locks. */
#ifndef PIMG_SERVICE_CONFIG_H
#define PIMG_SERVICE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    char bind[64];          /* listen address (IPv4 literal) */
    int port;               /* 0 = any free port (logged at start-up) */
    char models_dir[4096];  /* "" = pimg_models_default_dir */
    char openapi[4096];     /* "" = openapi.yaml in the project root */
    int workers;            /* image worker threads */
    int queue;              /* jobs that may wait for a worker */
    int high_water;         /* /readyz is 503 once this many jobs wait */
    int vips_threads;       /* threads per libvips pipeline */
    uint64_t max_body;      /* request body bytes */
    uint64_t max_pixels;    /* width*height, checked from the header */
    uint64_t max_buffered;  /* body bytes held across all connections */
    int request_timeout_ms; /* queue wait + processing deadline per request */
    int conn_limit;         /* concurrent connections */
    int per_ip_limit;       /* concurrent connections per client IP, 0 = off */
    int conn_timeout_s;     /* inactivity timeout per connection */
    int upload_timeout_ms;  /* absolute deadline for receiving one request body */
    int header_timeout_ms;  /* absolute deadline for receiving one request's headers */
    uint64_t conn_memory;   /* libmicrohttpd memory pool per connection (headers) */
    int drain_timeout_ms;   /* SIGTERM: how long in-flight and queued jobs may take */
    int access_log;         /* one JSON line per request on stderr */
    char admin_token[256];  /* Bearer token of the admin API; "" = disabled (403) */
    char state_dir[4096];   /* feedback store and retrain jobs */
} pimg_config;

/* Parses defaults, then PIMG_* environment variables, then argv (argv[0] is the subcommand
 * name). Returns 0 on success, 1 when --help was printed (exit 0), 2 on invalid settings (a
 * one-line message naming the setting has been written to err_out). */
int pimg_config_parse(pimg_config *c, int argc, char **argv, FILE *err_out);

/* Prints the help text, one line per setting with its flag, variable and default. */
void pimg_config_help(FILE *f);

/* Number of online CPUs (>= 1). */
int pimg_config_cores(void);

#endif
