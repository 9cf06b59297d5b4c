/* cli_train_enhance.c — `pimg train enhance` and `pimg eval enhance`: load a folder of clean
 * photos (small copies), split them by photo with a fixed seed, fit or score the enhancement
 * model on synthetic degradations (lib/enhance_train.c). Progress on stderr, metrics JSON on
 * stdout. */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "enhance_model.h"
#include "enhance_train.h"
#include "image.h"
#include "models.h"

static const char train_help[] =
    "usage: pimg train enhance --data DIR --out MODEL [options]\n"
    "Fits the enhancement model (denoise thresholds, white-balance and tone regressions, CLAHE rule)\n"
    "on synthetically degraded copies of the clean photos listed in DIR/labels.csv.\n"
    "  --data DIR          folder with labels.csv (first column: file name)\n"
    "  --labels CSV        another list of files (default DIR/labels.csv)\n"
    "  --extra DIR         more photos: DIR/labels.csv or DIR/objects.csv (cut-outs are flattened\n"
    "                      on white: product shots); repeatable, split with the rest by photo\n"
    "  --out MODEL         where to write the model JSON (e.g. models/enhance.json)\n"
    "  --side N            photos are shrunk to this longest side (default 448)\n"
    "  --test-share F      share of photos held out (default 0.2)\n"
    "  --variants N        degraded copies per photo and kind (default 1)\n"
    "  --seed S            split and degradation seed (default 1)\n"
    "  --limit N           use at most N photos\n"
    "  --svr-c C, --svr-eps E   libsvm epsilon-SVR cost and tube (default 4, 0.01)\n"
    "  --none-weight W     weight of undegraded photos in the threshold fits (default 3)\n";

static const char eval_help[] =
    "usage: pimg eval enhance --data DIR [--model MODEL] [--side N] [--variants N] [--seed S]\n"
    "Scores an enhancement model (default: the shipped one; 'none' for built-in defaults) on\n"
    "synthetic degradations of every photo in DIR/labels.csv; prints metrics JSON.\n";

typedef struct {
    const char *data, *labels, *out, *model;
    const char *extra[4]; /* more photo folders (labels.csv or objects.csv) */
    int n_extra;
    int side, variants, limit;
    double test_share, svr_c, svr_eps, none_weight;
    unsigned long long seed;
} args;

static void progress(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "train enhance: %s\n", msg);
}

/* Reads the first CSV column of every data row. Ownership: *files and its strings, free each. */
static int read_list(const char *csv, char ***files, int *n)
{
    FILE *f = fopen(csv, "r");
    if (!f)
        return -1;
    char line[4096];
    int cap = 0;
    *n = 0;
    *files = NULL;
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, ",\r\n");
        line[len] = '\0';
        if (first) {
            first = 0;
            if (!strcmp(line, "file"))
                continue;
        }
        if (!len || line[0] == '#')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **t = realloc(*files, sizeof *t * (size_t)cap);
            if (!t)
                break;
            *files = t;
        }
        (*files)[(*n)++] = strdup(line);
    }
    fclose(f);
    return 0;
}

/* Appends the photos listed in csv (relative to dir) as small 8-bit copies; unreadable ones
 * are skipped with a note. Transparent cut-outs come out flattened on white: product shots. */
static int load_list(const char *dir, const char *csv, int side, int limit, pimg_rgb8 **photos, int *n, int *cap)
{
    char path[PATH_MAX * 2];
    char **files;
    int nf;
    if (read_list(csv, &files, &nf)) {
        fprintf(stderr, "pimg: cannot read %s\n", csv);
        return -1;
    }
    if (limit > 0 && nf > limit)
        nf = limit;
    int before = *n;
    for (int i = 0; i < nf; i++) {
        if (*n == *cap) {
            int nc = *cap ? *cap * 2 : 256;
            pimg_rgb8 *t = realloc(*photos, sizeof *t * (size_t)nc);
            if (!t)
                break;
            *photos = t;
            *cap = nc;
        }
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        pimg_image *img = NULL;
        pimg_tensor *t = NULL;
        pimg_error err = {0};
        if (pimg_image_load_file(path, NULL, &img, &err) || pimg_image_tensor(img, side, &t, &err) ||
            pimg_rgb8_from_tensor(t, &(*photos)[*n])) {
            fprintf(stderr, "train enhance: skipping %s: %s\n", files[i], err.msg);
        } else {
            (*n)++;
        }
        pimg_tensor_free(t);
        pimg_image_free(img);
    }
    for (int i = 0; i < nf; i++)
        free(files[i]);
    free(files);
    fprintf(stderr, "train enhance: %d photos from %s\n", *n - before, csv);
    return 0;
}

static int load_photos(const args *a, pimg_rgb8 **photos, int *n)
{
    char csv[PATH_MAX + 16];
    int cap = 0;
    *photos = NULL;
    *n = 0;
    if (a->labels)
        snprintf(csv, sizeof csv, "%s", a->labels);
    else
        snprintf(csv, sizeof csv, "%s/labels.csv", a->data);
    if (load_list(a->data, csv, a->side, a->limit, photos, n, &cap))
        return -1;
    for (int e = 0; e < a->n_extra; e++) {
        snprintf(csv, sizeof csv, "%s/labels.csv", a->extra[e]);
        if (access(csv, R_OK))
            snprintf(csv, sizeof csv, "%s/objects.csv", a->extra[e]);
        if (load_list(a->extra[e], csv, a->side, a->limit, photos, n, &cap))
            return -1;
    }
    return *n > 0 ? 0 : -1;
}

static cJSON *metrics_json(const pimg_enhance_metrics *m)
{
    cJSON *o = cJSON_CreateObject();
    double gain = 0;
    int nk = 0;
    for (int k = 0; k < PIMG_DEG_KINDS; k++) {
        cJSON *e = cJSON_AddObjectToObject(o, pimg_deg_name(k));
        cJSON_AddNumberToObject(e, "n", m->n[k]);
        cJSON_AddNumberToObject(e, "psnr_input", round(m->psnr_input[k] * 100) / 100);
        cJSON_AddNumberToObject(e, "psnr_autocontrast", round(m->psnr_auto[k] * 100) / 100);
        cJSON_AddNumberToObject(e, "psnr_pimg", round(m->psnr_pimg[k] * 100) / 100);
        if (k != PIMG_DEG_NONE && m->n[k]) {
            double best = m->psnr_input[k] > m->psnr_auto[k] ? m->psnr_input[k] : m->psnr_auto[k];
            gain += m->psnr_pimg[k] - best;
            nk++;
        }
    }
    cJSON_AddNumberToObject(o, "psnr_gain_over_best_baseline", nk ? round(gain / nk * 100) / 100 : 0);
    return o;
}

static void free_photos(pimg_rgb8 *p, int n)
{
    for (int i = 0; i < n; i++)
        free(p[i].p);
    free(p);
}

static int parse(int argc, char **argv, args *a, const char *help)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},           {"data", required_argument, NULL, 'd'},
        {"labels", required_argument, NULL, 'l'},   {"out", required_argument, NULL, 'o'},
        {"model", required_argument, NULL, 'm'},    {"side", required_argument, NULL, 's'},
        {"test-share", required_argument, NULL, 't'}, {"variants", required_argument, NULL, 'v'},
        {"seed", required_argument, NULL, 'S'},     {"limit", required_argument, NULL, 'n'},
        {"svr-c", required_argument, NULL, 'C'},    {"svr-eps", required_argument, NULL, 'E'},
        {"none-weight", required_argument, NULL, 'W'}, {"extra", required_argument, NULL, 'X'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    a->side = 448;
    a->variants = 1;
    a->test_share = 0.2;
    a->seed = 1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(help, stdout); return -1;
        case 'd': a->data = optarg; break;
        case 'l': a->labels = optarg; break;
        case 'o': a->out = optarg; break;
        case 'm': a->model = optarg; break;
        case 's': a->side = atoi(optarg); break;
        case 't': a->test_share = atof(optarg); break;
        case 'v': a->variants = atoi(optarg); break;
        case 'S': a->seed = strtoull(optarg, NULL, 10); break;
        case 'n': a->limit = atoi(optarg); break;
        case 'C': a->svr_c = atof(optarg); break;
        case 'E': a->svr_eps = atof(optarg); break;
        case 'W': a->none_weight = atof(optarg); break;
        case 'X':
            if (a->n_extra == 4) {
                fputs("pimg: at most 4 --extra folders\n", stderr);
                return 2;
            }
            a->extra[a->n_extra++] = optarg;
            break;
        default: fputs(help, stderr); return 2;
        }
    }
    if (!a->data || a->side < 32 || a->side > 4096 || a->variants < 1 || a->variants > 10 ||
        a->test_share < 0 || a->test_share >= 1) {
        fputs(help, stderr);
        return 2;
    }
    return 0;
}

int pimg_cmd_train_enhance(int argc, char **argv, const char *exe)
{
    (void)exe;
    args a;
    int r = parse(argc, argv, &a, train_help);
    if (r)
        return r < 0 ? 0 : r;
    if (!a.out) {
        fputs(train_help, stderr);
        return 2;
    }
    pimg_rgb8 *photos;
    int n;
    if (load_photos(&a, &photos, &n))
        return 1;
    /* Split by photo (before any degradation), Fisher-Yates with a fixed seed. */
    int *order = malloc(sizeof(int) * (size_t)(n ? n : 1)), *is_test = calloc((size_t)(n ? n : 1), sizeof(int));
    unsigned long long s = a.seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int j = (int)((s >> 33) % (unsigned long long)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int ntest = (int)(n * a.test_share + 0.5);
    for (int i = 0; i < ntest; i++)
        is_test[order[i]] = 1;
    pimg_enhance_train_opts o = {.photos = photos, .n_photos = n, .is_test = is_test, .variants = a.variants,
                                 .seed = a.seed, .progress = progress, .svr_c = a.svr_c,
                                 .svr_eps = a.svr_eps, .none_weight = a.none_weight};
    pimg_enhance_model *m = NULL;
    pimg_enhance_metrics mt, ms;
    pimg_error err = {0};
    pimg_status st = pimg_enhance_train(&o, &m, &mt, &ms, &err);
    free(order);
    free(is_test);
    free_photos(photos, n);
    if (st) {
        fprintf(stderr, "pimg: train enhance: %s\n", err.msg);
        return 1;
    }
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "model", "enhance");
    cJSON_AddNumberToObject(res, "photos", n);
    cJSON_AddNumberToObject(res, "test_photos", ntest);
    cJSON_AddNumberToObject(res, "seed", (double)a.seed);
    cJSON_AddNumberToObject(res, "side", a.side);
    cJSON_AddItemToObject(res, "train", metrics_json(&mt));
    cJSON_AddItemToObject(res, "test", metrics_json(&ms));
    cJSON *mj = pimg_enhance_model_to_json(m);
    cJSON_AddItemToObject(mj, "fit", cJSON_Duplicate(res, 1));
    char *text = cJSON_PrintUnformatted(mj);
    FILE *f = text ? fopen(a.out, "w") : NULL;
    int ok = f && fputs(text, f) >= 0;
    if (f)
        ok = !fclose(f) && ok;
    free(text);
    cJSON_Delete(mj);
    pimg_enhance_model_free(m);
    if (!ok) {
        fprintf(stderr, "pimg: cannot write %s\n", a.out);
        cJSON_Delete(res);
        return 1;
    }
    char *out = cJSON_PrintUnformatted(res);
    puts(out ? out : "{}");
    free(out);
    cJSON_Delete(res);
    return 0;
}

int pimg_cmd_eval_enhance(int argc, char **argv, const char *exe)
{
    args a;
    int r = parse(argc, argv, &a, eval_help);
    if (r)
        return r < 0 ? 0 : r;
    pimg_enhance_model *m = NULL;
    pimg_error err = {0};
    char def[PATH_MAX], path[PATH_MAX + 32];
    if (!a.model) {
        snprintf(path, sizeof path, "%s/enhance.json", pimg_models_default_dir(exe, def, sizeof def));
        a.model = path;
    }
    if (strcmp(a.model, "none") && pimg_enhance_model_load(a.model, &m, &err)) {
        fprintf(stderr, "pimg: %s\n", err.msg);
        return 1;
    }
    pimg_rgb8 *photos;
    int n;
    if (load_photos(&a, &photos, &n)) {
        pimg_enhance_model_free(m);
        return 1;
    }
    pimg_enhance_metrics met;
    pimg_status st = pimg_enhance_evaluate(m, photos, n, NULL, a.variants, a.seed ^ 0xe7a1, &met, &err);
    free_photos(photos, n);
    pimg_enhance_model_free(m);
    if (st) {
        fprintf(stderr, "pimg: eval enhance: %s\n", err.msg);
        return 1;
    }
    cJSON *res = metrics_json(&met);
    cJSON_AddStringToObject(res, "model", a.model);
    char *out = cJSON_PrintUnformatted(res);
    puts(out ? out : "{}");
    free(out);
    cJSON_Delete(res);
    return 0;
}
