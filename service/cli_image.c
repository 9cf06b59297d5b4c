/* cli_image.c — `pimg analyze` and `pimg enhance`: thin wrappers over lib/pipeline. */
#include <getopt.h>
#include <pthread.h>
#include <unistd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "image.h"
#include "models.h"
#include "pipeline.h"

int pimg_cli_exit_code(pimg_status st)
{
    switch (st) {
    case PIMG_OK: return 0;
    case PIMG_ERR_BAD_INPUT:
    case PIMG_ERR_UNSUPPORTED:
    case PIMG_ERR_TOO_LARGE:
    case PIMG_ERR_IO: return 2;
    case PIMG_ERR_NOT_IMPLEMENTED: return 3;
    default: return 1;
    }
}

static void print_json_line(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        puts(s);
        free(s);
    }
    fflush(stdout);
}

/* Options shared by analyze and enhance. */
typedef struct {
    pimg_pipeline_opts pipe;
    pimg_load_opts load;
    const char *models_dir;
    const char *reference;
    int jobs; /* analyze: parallel images, 0 = one per core */
} image_args;

enum { OPT_MODELS = 256, OPT_OPS, OPT_BG, OPT_Q, OPT_MAXSIDE, OPT_REF, OPT_MAXPX, OPT_ICC, OPT_SIDE, OPT_FILL, OPT_JOBS, OPT_SHADOW };

static const struct option long_opts[] = {
    {"help", no_argument, NULL, 'h'},          {"models", required_argument, NULL, OPT_MODELS},
    {"ops", required_argument, NULL, OPT_OPS}, {"background", required_argument, NULL, OPT_BG},
    {"quality", required_argument, NULL, OPT_Q}, {"max-side", required_argument, NULL, OPT_MAXSIDE},
    {"reference", required_argument, NULL, OPT_REF}, {"max-pixels", required_argument, NULL, OPT_MAXPX},
    {"keep-icc", no_argument, NULL, OPT_ICC}, {"analysis-side", required_argument, NULL, OPT_SIDE},
    {"fill", required_argument, NULL, OPT_FILL}, {"jobs", required_argument, NULL, OPT_JOBS},
    {"shadow", no_argument, NULL, OPT_SHADOW},
    {NULL, 0, NULL, 0},
};

int pimg_cli_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int pimg_cli_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int pimg_cli_add_dir(const char **v, int *n, const char *dir, const char *opt)
{
    if (*n == PIMG_CLI_MAX_DIRS) {
        fprintf(stderr, "pimg: at most %d --%s folders\n", PIMG_CLI_MAX_DIRS, opt);
        return 2;
    }
    v[(*n)++] = dir;
    return 0;
}

/* Parses options into a; returns -1 after printing help (exit 0), 2 on bad usage, 0 ok. */
static int parse_image_args(int argc, char **argv, image_args *a, const char *help)
{
    memset(a, 0, sizeof *a);
    pimg_pipeline_opts_default(&a->pipe);
    pimg_error err = {0};
    long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(help, stdout); return -1;
        case OPT_MODELS: a->models_dir = optarg; break;
        case OPT_OPS:
            if (pimg_ops_parse(optarg, &a->pipe.ops, &err)) goto bad;
            break;
        case OPT_BG:
            if (pimg_background_parse(optarg, &a->pipe.background, &err)) goto bad;
            break;
        case OPT_Q:
            if (pimg_cli_parse_long(optarg, 1, 100, &v)) { snprintf(err.msg, sizeof err.msg, "--quality must be 1..100"); goto bad; }
            a->pipe.quality = (int)v;
            break;
        case OPT_MAXSIDE:
            if (pimg_cli_parse_long(optarg, 1, 100000, &v)) { snprintf(err.msg, sizeof err.msg, "--max-side must be a positive integer"); goto bad; }
            a->pipe.max_side = (int)v;
            break;
        case OPT_SIDE:
            if (pimg_cli_parse_long(optarg, 64, 4096, &v)) { snprintf(err.msg, sizeof err.msg, "--analysis-side must be 64..4096"); goto bad; }
            a->pipe.analysis_side = (int)v;
            break;
        case OPT_MAXPX:
            if (pimg_cli_parse_long(optarg, 1, 1000000000L, &v)) { snprintf(err.msg, sizeof err.msg, "--max-pixels must be a positive integer"); goto bad; }
            a->load.max_pixels = (uint64_t)v;
            break;
        case OPT_FILL:
            if (pimg_fill_parse(optarg, &a->pipe.fill, &err)) goto bad;
            break;
        case OPT_JOBS:
            if (pimg_cli_parse_long(optarg, 1, 64, &v)) { snprintf(err.msg, sizeof err.msg, "--jobs must be 1..64"); goto bad; }
            a->jobs = (int)v;
            break;
        case OPT_REF: a->reference = optarg; break;
        case OPT_ICC: a->pipe.keep_icc = 1; break;
        case OPT_SHADOW: a->pipe.white_shadow = 1; break;
        default: fputs(help, stderr); return 2;
        }
    }
    if (pimg_pipeline_opts_check(&a->pipe, &err))
        goto bad;
    return 0;
bad:
    fprintf(stderr, "pimg: %s\n", err.msg);
    return 2;
}

static pimg_models *load_models(const char *dir, const char *exe)
{
    char buf[PATH_MAX];
    pimg_error err = {0};
    pimg_models *m = NULL;
    if (!dir)
        dir = pimg_models_default_dir(exe, buf, sizeof buf);
    if (pimg_models_load(dir, &m, &err)) {
        fprintf(stderr, "pimg: %s\n", err.msg);
        return NULL;
    }
    return m;
}

static const char analyze_help[] =
    "usage: pimg analyze [options] IMAGE...\n"
    "Prints one analysis JSON object per image, one per line (see CONTRACT: rotation, level,\n"
    "box, quality, ...). An image that cannot be read gives {\"file\":..,\"error\":..} and exit 2.\n"
    "  --models DIR         model folder (default: models/ of the project or $PIMG_MODELS_DIR)\n"
    "  --ops LIST           steps to analyse (default orient,level,detect,enhance)\n"
    "  --analysis-side N    longest side of the analysis copy (default 1024)\n"
    "  --max-pixels N       refuse larger images (default 50000000)\n";

/* One image of an analyze batch: the JSON line to print and the exit code it implies. */
typedef struct {
    char *line;
    int code;
    int done;
} analyze_slot;

typedef struct {
    const image_args *args;
    const pimg_models *models;
    char **files;
    int n;
    analyze_slot *slots;
    int next; /* next file to take, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} analyze_batch;

static void analyze_one(const analyze_batch *b, int i, analyze_slot *out)
{
    pimg_error err = {0};
    pimg_image *img = NULL;
    pimg_analysis an;
    const char *file = b->files[i];
    pimg_status st = pimg_analysis_init(&an);
    if (!st)
        st = pimg_image_load_file(file, &b->args->load, &img, &err);
    if (!st)
        st = pimg_pipeline_analyze(b->models, img, &b->args->pipe, &an, &err);
    cJSON *o;
    if (st) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", file);
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "code", pimg_status_name(st));
        cJSON_AddStringToObject(e, "message", err.msg);
        fprintf(stderr, "pimg: %s: %s\n", file, err.msg);
    } else {
        o = pimg_analysis_to_json(&an, file);
    }
    out->line = o ? cJSON_PrintUnformatted(o) : NULL;
    out->code = pimg_cli_exit_code(st);
    cJSON_Delete(o);
    pimg_analysis_clear(&an);
    pimg_image_free(img);
}

static void *analyze_worker(void *arg)
{
    analyze_batch *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        int i = b->next < b->n ? b->next++ : -1;
        pthread_mutex_unlock(&b->mu);
        if (i < 0)
            return NULL;
        analyze_slot r = {0};
        analyze_one(b, i, &r);
        pthread_mutex_lock(&b->mu);
        b->slots[i] = r;
        b->slots[i].done = 1;
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
    }
}

int pimg_cmd_analyze(int argc, char **argv, const char *exe)
{
    image_args a;
    int r = parse_image_args(argc, argv, &a, analyze_help);
    if (r)
        return r < 0 ? 0 : r;
    if (optind >= argc) {
        fputs(analyze_help, stderr);
        return 2;
    }
    pimg_models *models = load_models(a.models_dir, exe);
    if (!models)
        return 1;
    /* Images are independent: analyse them on every core, print in input order. */
    analyze_batch b = {.args = &a, .models = models, .files = argv + optind, .n = argc - optind};
    b.slots = calloc((size_t)b.n, sizeof *b.slots);
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nthreads = a.jobs > 0 ? a.jobs : (int)(cores > 0 ? cores : 1);
    if (nthreads > b.n)
        nthreads = b.n;
    pthread_t th[64];
    if (nthreads > 64)
        nthreads = 64;
    int started = 0;
    for (; b.slots && started < nthreads; started++)
        if (pthread_create(&th[started], NULL, analyze_worker, &b))
            break;
    if (started == 0 && b.slots)
        analyze_worker(&b); /* no threads to be had: do it here */
    int rc = b.slots ? 0 : 1;
    for (int i = 0; b.slots && i < b.n; i++) {
        pthread_mutex_lock(&b.mu);
        while (!b.slots[i].done)
            pthread_cond_wait(&b.cv, &b.mu);
        pthread_mutex_unlock(&b.mu);
        if (b.slots[i].line) {
            puts(b.slots[i].line);
            fflush(stdout);
            free(b.slots[i].line);
        }
        if (b.slots[i].code > rc)
            rc = b.slots[i].code;
    }
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
    free(b.slots);
    pimg_models_release(models);
    return rc;
}

static const char enhance_help[] =
    "usage: pimg enhance IN OUT [options]\n"
    "Writes the corrected JPEG to OUT and prints its metadata JSON.\n"
    "  --ops LIST           comma list of orient,level,align,detect,enhance,background,crop\n"
    "                       (default orient,level,detect,enhance; 'enhance' alone keeps size)\n"
    "  --background MODE    keep | blur | white (default keep); the product's own cast shadow\n"
    "                       on a plain backdrop counts as background\n"
    "  --shadow             with --background white: draw a soft contact shadow under it\n"
    "  --quality Q          JPEG quality 1..100 (default 85)\n"
    "  --max-side N         shrink the output so its longest side is at most N\n"
    "  --reference REF      align IN to this reference view (adds 'align' to ops)\n"
    "  --fill F             crop: share of the frame the product fills (default 0.85)\n"
    "  --keep-icc           tag the output as sRGB instead of stripping all metadata\n"
    "  --models DIR         model folder\n"
    "  --max-pixels N       refuse larger images (default 50000000)\n";

int pimg_cmd_enhance(int argc, char **argv, const char *exe)
{
    image_args a;
    int r = parse_image_args(argc, argv, &a, enhance_help);
    if (r)
        return r < 0 ? 0 : r;
    if (argc - optind != 2) {
        fputs(enhance_help, stderr);
        return 2;
    }
    const char *in = argv[optind], *outp = argv[optind + 1];
    pimg_models *models = load_models(a.models_dir, exe);
    if (!models)
        return 1;
    pimg_error err = {0};
    pimg_image *img = NULL, *ref = NULL;
    pimg_analysis an;
    void *jpeg = NULL;
    size_t len = 0;
    pimg_status st = pimg_analysis_init(&an);
    if (!st)
        st = pimg_image_load_file(in, &a.load, &img, &err);
    if (!st && a.reference) {
        st = pimg_image_load_file(a.reference, &a.load, &ref, &err);
        a.pipe.reference = ref;
        a.pipe.ops |= PIMG_OP_ALIGN;
    }
    if (!st)
        st = pimg_pipeline_enhance(models, img, &a.pipe, &an, &jpeg, &len, &err);
    if (!st) {
        FILE *f = fopen(outp, "wb");
        if (!f || fwrite(jpeg, 1, len, f) != len)
            st = pimg_error_set(&err, PIMG_ERR_IO, "%s: cannot write", outp);
        if (f && fclose(f) && !st)
            st = pimg_error_set(&err, PIMG_ERR_IO, "%s: cannot write", outp);
    }
    if (st) {
        fprintf(stderr, "pimg: %s\n", err.msg);
    } else {
        cJSON *o = pimg_analysis_to_json(&an, in);
        print_json_line(o);
        cJSON_Delete(o);
    }
    free(jpeg);
    pimg_analysis_clear(&an);
    pimg_image_free(img);
    pimg_image_free(ref);
    pimg_models_release(models);
    return pimg_cli_exit_code(st);
}
