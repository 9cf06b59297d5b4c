/* config.c — table-driven parsing of `pimg serve` settings: one row per setting gives its
 * flag, environment variable, type, range and help line, so flags, variables, validation and
 * --help can never drift apart. Sizes accept K/M/G suffixes (powers of 1024); durations are
 * given in seconds (fractions allowed) and stored in milliseconds. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum { T_INT, T_SIZE, T_COUNT, T_SECONDS_MS, T_SECONDS, T_STR, T_BOOL } kind;

typedef struct {
    const char *flag; /* without the leading "--" */
    const char *env;
    kind type;
    size_t off;
    size_t str_cap;       /* T_STR: buffer size */
    double lo, hi;        /* accepted range (in the unit the user writes) */
    const char *def_text; /* default, as shown in --help */
    const char *help;
} setting;

#define F(field) offsetof(pimg_config, field)
#define STR(field) offsetof(pimg_config, field), sizeof(((pimg_config *)0)->field)

static const setting settings[] = {
    {"bind", "PIMG_BIND", T_STR, STR(bind), 0, 0, "0.0.0.0", "listen address (IPv4)"},
    {"port", "PIMG_PORT", T_INT, F(port), 0, 0, 65535, "8080", "TCP port (0 = any free port)"},
    {"models", "PIMG_MODELS_DIR", T_STR, STR(models_dir), 0, 0, "models/ of the project", "model folder"},
    {"openapi", "PIMG_OPENAPI", T_STR, STR(openapi), 0, 0, "openapi.yaml of the project", "OpenAPI file served at /openapi.yaml"},
    {"workers", "PIMG_WORKERS", T_INT, F(workers), 0, 1, 256, "number of cores", "image worker threads"},
    {"queue", "PIMG_QUEUE", T_INT, F(queue), 0, 1, 100000, "4 x workers", "jobs that may wait for a worker; more get 503"},
    {"high-water", "PIMG_HIGH_WATER", T_INT, F(high_water), 0, 1, 100000, "queue", "waiting jobs at which /readyz turns 503"},
    {"vips-threads", "PIMG_VIPS_THREADS", T_INT, F(vips_threads), 0, 1, 256, "cores / workers", "threads per libvips pipeline"},
    {"max-body", "PIMG_MAX_BODY", T_SIZE, F(max_body), 0, 1024, 4.0 * 1024 * 1024 * 1024, "25M", "request body limit (413 above)"},
    {"max-pixels", "PIMG_MAX_PIXELS", T_COUNT, F(max_pixels), 0, 1, 1e10, "50M", "width x height limit (K/M = 10^3/10^6), from the header (413 above)"},
    {"max-buffered", "PIMG_MAX_BUFFERED", T_SIZE, F(max_buffered), 0, 1024 * 1024, 64.0 * 1024 * 1024 * 1024, "512M", "body bytes held across all connections (503 above)"},
    {"request-timeout", "PIMG_REQUEST_TIMEOUT", T_SECONDS_MS, F(request_timeout_ms), 0, 0.01, 3600, "30", "seconds a job may wait and run (504 after)"},
    {"conn-limit", "PIMG_CONN_LIMIT", T_INT, F(conn_limit), 0, 4, 100000, "512", "concurrent connections"},
    {"per-ip-limit", "PIMG_PER_IP_LIMIT", T_INT, F(per_ip_limit), 0, 0, 100000, "0 (off)", "concurrent connections per client IP"},
    {"conn-timeout", "PIMG_CONN_TIMEOUT", T_SECONDS, F(conn_timeout_s), 0, 1, 3600, "15", "seconds of inactivity before a connection is closed"},
    {"upload-timeout", "PIMG_UPLOAD_TIMEOUT", T_SECONDS_MS, F(upload_timeout_ms), 0, 0.1, 3600, "60", "seconds to receive one whole request body"},
    {"header-timeout", "PIMG_HEADER_TIMEOUT", T_SECONDS_MS, F(header_timeout_ms), 0, 0.1, 3600, "20", "seconds to receive one request's headers (slowloris)"},
    {"conn-memory", "PIMG_CONN_MEMORY", T_SIZE, F(conn_memory), 0, 8192, 16.0 * 1024 * 1024, "64K", "per-connection header memory"},
    {"drain-timeout", "PIMG_DRAIN_TIMEOUT", T_SECONDS_MS, F(drain_timeout_ms), 0, 0, 3600, "25", "SIGTERM: seconds to finish accepted jobs"},
    {"access-log", "PIMG_ACCESS_LOG", T_BOOL, F(access_log), 0, 0, 1, "1", "JSON access log lines on stderr (0/1)"},
    {"admin-token", "PIMG_ADMIN_TOKEN", T_STR, STR(admin_token), 0, 0, "none (admin API off)", "Bearer token for the /admin/ API (prefer the variable: argv is visible to ps)"},
    {"state-dir", "PIMG_STATE_DIR", T_STR, STR(state_dir), 0, 0, "pimg-state", "feedback store (SQLite + images) and retrain jobs"},
};
#define N_SETTINGS (sizeof settings / sizeof *settings)

int pimg_config_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* "25M", "1.5G", "65536" → bytes (powers of 1024), or with decimal=1 counts ("50M" = 5e7). */
static int parse_size(const char *s, double *out, int decimal)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0)
        return -1;
    double mul = 1;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': mul = decimal ? 1e3 : 1024.0; break;
        case 'm': case 'M': mul = decimal ? 1e6 : 1024.0 * 1024; break;
        case 'g': case 'G': mul = decimal ? 1e9 : 1024.0 * 1024 * 1024; break;
        default: return -1;
        }
        end++;
        if (*end == 'B' || *end == 'b')
            end++;
        if (*end)
            return -1;
    }
    *out = v * mul;
    return 0;
}

static int parse_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno)
        return -1;
    *out = v;
    return 0;
}

/* Stores `val` into the setting; `from` names the source for the error message. */
static int apply(pimg_config *c, const setting *s, const char *val, const char *from, FILE *err_out)
{
    char *base = (char *)c;
    double v = 0;
    switch (s->type) {
    case T_STR:
        if (strlen(val) >= s->str_cap) {
            fprintf(err_out, "pimg serve: %s: value too long\n", from);
            return 2;
        }
        snprintf(base + s->off, s->str_cap, "%s", val);
        return 0;
    case T_BOOL:
        if (!strcmp(val, "1") || !strcasecmp(val, "true") || !strcasecmp(val, "yes") || !strcasecmp(val, "on"))
            *(int *)(base + s->off) = 1;
        else if (!strcmp(val, "0") || !strcasecmp(val, "false") || !strcasecmp(val, "no") || !strcasecmp(val, "off"))
            *(int *)(base + s->off) = 0;
        else {
            fprintf(err_out, "pimg serve: %s must be 0 or 1, got '%s'\n", from, val);
            return 2;
        }
        return 0;
    case T_SIZE:
    case T_COUNT:
        if (parse_size(val, &v, s->type == T_COUNT)) {
            fprintf(err_out, "pimg serve: %s must be a size such as 25M, got '%s'\n", from, val);
            return 2;
        }
        break;
    default:
        if (parse_number(val, &v)) {
            fprintf(err_out, "pimg serve: %s must be a number, got '%s'\n", from, val);
            return 2;
        }
        if ((s->type == T_INT || s->type == T_SECONDS) && v != (double)(long long)v) {
            fprintf(err_out, "pimg serve: %s must be a whole number, got '%s'\n", from, val);
            return 2;
        }
        break;
    }
    if (v < s->lo || v > s->hi) {
        fprintf(err_out, "pimg serve: %s must be in %g..%g, got '%s'\n", from, s->lo, s->hi, val);
        return 2;
    }
    switch (s->type) {
    case T_INT:
    case T_SECONDS: *(int *)(base + s->off) = (int)v; break;
    case T_SECONDS_MS: *(int *)(base + s->off) = (int)(v * 1000.0 + 0.5); break;
    case T_SIZE:
    case T_COUNT: *(uint64_t *)(base + s->off) = (uint64_t)v; break;
    default: break;
    }
    return 0;
}

void pimg_config_help(FILE *f)
{
    fprintf(f, "usage: pimg serve [--config FILE] [options]\n"
               "Runs the HTTP service (see openapi.yaml). Every option can also be set by its\n"
               "environment variable or in a file of PIMG_NAME=value lines (--config FILE or\n"
               "$PIMG_CONFIG; see config/pimg.env.example). Precedence: defaults < file <\n"
               "environment < flags. Sizes take K/M/G suffixes; times are in seconds.\n\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s %s", settings[i].flag, settings[i].type == T_BOOL ? "0|1" : "V");
        fprintf(f, "  %-22s %-21s %s (default %s)\n", left, settings[i].env, settings[i].help,
                settings[i].def_text);
    }
}

/* Applies a file of `PIMG_NAME=value` lines (the format of config/pimg.env.example and of
 * Kubernetes env files); blank lines and # comments are skipped, values may be quoted. */
static int apply_file(pimg_config *c, const char *path, FILE *err_out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(err_out, "pimg serve: cannot read config file %s\n", path);
        return 2;
    }
    char line[4352];
    int lineno = 0, r = 0;
    while (!r && fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, "\r\n");
        p[n] = '\0';
        if (!*p || *p == '#')
            continue;
        if (!strncmp(p, "export ", 7))
            p += 7;
        char *eq = strchr(p, '=');
        if (!eq) {
            fprintf(err_out, "pimg serve: %s:%d: expected NAME=value\n", path, lineno);
            r = 2;
            break;
        }
        *eq = '\0';
        char *val = eq + 1;
        size_t vl = strlen(val);
        if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
            val[vl - 1] = '\0';
            val++;
        }
        size_t k;
        for (k = 0; k < N_SETTINGS; k++)
            if (!strcmp(settings[k].env, p))
                break;
        if (k == N_SETTINGS) {
            fprintf(err_out, "pimg serve: %s:%d: unknown setting %s\n", path, lineno, p);
            r = 2;
            break;
        }
        char from[160];
        snprintf(from, sizeof from, "%.100s:%d %.40s", path, lineno, p);
        if (*val)
            r = apply(c, &settings[k], val, from, err_out);
    }
    fclose(f);
    return r;
}

int pimg_config_parse(pimg_config *c, int argc, char **argv, FILE *err_out)
{
    memset(c, 0, sizeof *c);
    snprintf(c->bind, sizeof c->bind, "0.0.0.0");
    c->port = 8080;
    c->max_body = 25ull * 1024 * 1024;
    c->max_pixels = 50ull * 1000 * 1000;
    c->max_buffered = 512ull * 1024 * 1024;
    c->request_timeout_ms = 30000;
    c->conn_limit = 512;
    c->conn_timeout_s = 15;
    c->upload_timeout_ms = 60000;
    c->header_timeout_ms = 20000;
    c->conn_memory = 64 * 1024;
    c->drain_timeout_ms = 25000;
    c->access_log = 1;
    snprintf(c->state_dir, sizeof c->state_dir, "pimg-state");
    /* 0 = derive after parsing. Precedence: defaults < config file < environment < flags. */
    const char *file = getenv("PIMG_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            file = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            file = argv[i] + 9;
    }
    if (file && *file) {
        int r = apply_file(c, file, err_out);
        if (r)
            return r;
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *v = getenv(settings[i].env);
        if (v && *v) {
            int r = apply(c, &settings[i], v, settings[i].env, err_out);
            if (r)
                return r;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            pimg_config_help(stdout);
            return 1;
        }
        if (strncmp(a, "--", 2)) {
            fprintf(err_out, "pimg serve: unexpected argument '%s' (pimg serve --help)\n", a);
            return 2;
        }
        if (!strcmp(a, "--config")) {
            i++; /* read above */
            continue;
        }
        if (!strncmp(a, "--config=", 9))
            continue;
        a += 2;
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        size_t k;
        for (k = 0; k < N_SETTINGS; k++)
            if (strlen(settings[k].flag) == n && !strncmp(settings[k].flag, a, n))
                break;
        if (k == N_SETTINGS) {
            fprintf(err_out, "pimg serve: unknown option '%s' (pimg serve --help)\n", argv[i]);
            return 2;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(err_out, "pimg serve: --%s needs a value\n", settings[k].flag);
                return 2;
            }
            val = argv[++i];
        }
        char from[80];
        snprintf(from, sizeof from, "--%s", settings[k].flag);
        int r = apply(c, &settings[k], val, from, err_out);
        if (r)
            return r;
    }
    int cores = pimg_config_cores();
    if (!c->workers)
        c->workers = cores;
    if (!c->queue)
        c->queue = 4 * c->workers;
    if (!c->high_water || c->high_water > c->queue)
        c->high_water = c->queue;
    if (!c->vips_threads)
        c->vips_threads = cores / c->workers > 1 ? cores / c->workers : 1;
    if (c->max_buffered < c->max_body) {
        fprintf(err_out, "pimg serve: max-buffered (%llu) must be at least max-body (%llu)\n",
                (unsigned long long)c->max_buffered, (unsigned long long)c->max_body);
        return 2;
    }
    return 0;
}
