/* cli_train_detect.c — `pimg train detect` / `pimg eval detect`: option parsing, progress on
 * stderr, metrics JSON on stdout, and the model card written beside the model. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "detect.h"
#include "detect_train.h"

static const char train_help[] =
    "usage: pimg train detect --data DIR --out MODEL [options]\n"
    "Trains the main-product box scorer (HOG + saliency features, libsvm) on composites of\n"
    "the DIR/objects PNG cut-outs (and those of --objects folders) on synthetic plain\n"
    "backgrounds and on DIR/train photos. Objects (each folder on its own) and backgrounds are\n"
    "split train/val/test (70/15/15) with --seed before compositing.\n"
    "Progress goes to stderr, the metrics JSON to stdout; the model card is written next to\n"
    "MODEL with the extension .json (models/detect.svm -> models/detect.json).\n"
    "  --seed N         split and composite seed (42)\n"
    "  --train-seed N   draw the training composites with this seed instead (split,\n"
    "                   validation and test composites stay --seed's)\n"
    "  --train N        training composites (800)\n"
    "  --val N          validation composites (120)\n"
    "  --test N         test composites (150)\n"
    "  --rank 0|1|2     0: box classifier over all photos (default), 1: pairwise ranking SVM on\n"
    "                   box differences within a photo, 2: both kinds of vectors in one SVM\n"
    "  --rerank 0|1     1: also train the second-stage re-ranker of the top 5 boxes, written\n"
    "                   beside MODEL as *_rerank.svm and kept only if it helps validation (1)\n"
    "  --rbf 0|1        1: the search also tries an RBF kernel, taken when clearly better on\n"
    "                   validation; its model is tens of MB and ~80 ms a photo (0)\n"
    "  --rounds N       max hard-negative mining rounds (3)\n"
    "  --side N         composite longest side in px (384)\n"
    "  --side-min N     draw each composite's longest side from N..--side (default: always --side)\n"
    "  --clutter-fill LO,HI  object's longest side as a share of the frame on photo\n"
    "                   backgrounds (0.4,0.85)\n"
    "  --objects DIR    more PNG cut-outs with alpha (objects.csv or every PNG; repeatable)\n"
    "  --objects-share F  share of composites whose object comes from the --objects folders\n"
    "                   (default: every object equally likely)\n"
    "  --exclude-objects FILE  words, one a line ('#' comments): objects whose file name\n"
    "                   contains one (any case) are left out of every split\n"
    "  --labels CSV     hand-checked boxes of real photos in DIR/train (file,x0,y0,x1,y1,kind):\n"
    "                   split 70/30 by file and added to the training / validation samples\n"
    "  --dump OUTDIR    instead of training, write composites of --split (train|val|test, default\n"
    "                   val) as JPEGs + labels.csv into OUTDIR (count: --val/--train/--test)\n"
    "  --split S        split for --dump\n";

static const char eval_help[] =
    "usage: pimg eval detect --data DIR --model MODEL [--seed N] [--test N] [--side N]\n"
    "                        [--objects DIR ...] [--exclude-objects FILE]\n"
    "With DIR/labels.csv (columns file,x0,y0,x1,y1[,kind,rotation]) scores the real labelled\n"
    "photos; otherwise scores the test split of composites made from DIR/objects and DIR/train\n"
    "(same seed = same split as training). MODEL \"none\" scores the no-model heuristic.\n";

enum { O_DATA = 256, O_OUT, O_MODEL, O_SEED, O_TRAIN, O_VAL, O_TEST, O_ROUNDS, O_SIDE, O_DUMP, O_SPLIT, O_RANK, O_RERANK, O_OBJ, O_EXCL, O_SIDEMIN, O_CFILL, O_OSHARE, O_TSEED, O_RBF };

static const struct option opts[] = {
    {"help", no_argument, NULL, 'h'},         {"data", required_argument, NULL, O_DATA},
    {"out", required_argument, NULL, O_OUT},   {"model", required_argument, NULL, O_MODEL},
    {"seed", required_argument, NULL, O_SEED}, {"train", required_argument, NULL, O_TRAIN},
    {"val", required_argument, NULL, O_VAL},   {"test", required_argument, NULL, O_TEST},
    {"rounds", required_argument, NULL, O_ROUNDS}, {"side", required_argument, NULL, O_SIDE},
    {"dump", required_argument, NULL, O_DUMP}, {"split", required_argument, NULL, O_SPLIT},
    {"labels", required_argument, NULL, 'l'},  {"rank", required_argument, NULL, O_RANK},
    {"rerank", required_argument, NULL, O_RERANK}, {"objects", required_argument, NULL, O_OBJ},
    {"exclude-objects", required_argument, NULL, O_EXCL}, {"side-min", required_argument, NULL, O_SIDEMIN},
    {"clutter-fill", required_argument, NULL, O_CFILL}, {"objects-share", required_argument, NULL, O_OSHARE},
    {"train-seed", required_argument, NULL, O_TSEED}, {"rbf", required_argument, NULL, O_RBF},
    {NULL, 0, NULL, 0},
};

typedef struct {
    pimg_detect_train_opts t;
    const char *out, *model, *dump, *split;
    const char *objs[PIMG_CLI_MAX_DIRS];
} args;

/* 0 ok, 1 help printed, 2 usage error. */
static int parse(int argc, char **argv, args *a, const char *help)
{
    memset(a, 0, sizeof *a);
    pimg_detect_train_opts_default(&a->t);
    a->split = "val";
    optind = 1;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(help, stdout); return 1;
        case O_DATA: a->t.data_dir = optarg; break;
        case O_OUT: a->out = optarg; break;
        case O_MODEL: a->model = optarg; break;
        case O_DUMP: a->dump = optarg; break;
        case O_SPLIT: a->split = optarg; break;
        case 'l': a->t.labels_csv = optarg; break;
        case O_OBJ:
            if (pimg_cli_add_dir(a->objs, &a->t.n_objects_dirs, optarg, "objects"))
                return 2;
            break;
        case O_EXCL: a->t.exclude_objects = optarg; break;
        case O_OSHARE: {
            double v2;
            if (pimg_cli_parse_double(optarg, 0, 1, &v2)) {
                fprintf(stderr, "pimg: --objects-share wants a number in [0, 1], got '%s'\n", optarg);
                return 2;
            }
            a->t.extra_share = v2;
            break;
        }
        case O_CFILL: {
            double lo, hi;
            char extra;
            if (sscanf(optarg, "%lf,%lf%c", &lo, &hi, &extra) != 2 || !(lo > 0.05) || !(hi <= 1.2) || !(lo <= hi)) {
                fprintf(stderr, "pimg: --clutter-fill wants LO,HI with 0.05 < LO <= HI <= 1.2, got '%s'\n", optarg);
                return 2;
            }
            a->t.clutter_fill[0] = lo;
            a->t.clutter_fill[1] = hi;
            break;
        }
        case O_SEED:
        case O_TSEED:
        case O_TRAIN:
        case O_VAL:
        case O_TEST:
        case O_ROUNDS:
        case O_SIDE:
        case O_SIDEMIN:
        case O_RANK:
        case O_RERANK:
        case O_RBF:
            if (pimg_cli_parse_long(optarg, c == O_ROUNDS || c == O_RANK || c == O_RERANK || c == O_RBF ? 0 : c == O_SIDE || c == O_SIDEMIN ? 64 : 1, c == O_SIDE || c == O_SIDEMIN ? 2048 : 1000000, &v)) {
                fprintf(stderr, "pimg: bad number '%s'\n", optarg);
                return 2;
            }
            if (c == O_SEED) a->t.seed = (uint64_t)v;
            if (c == O_TSEED) a->t.train_seed = (uint64_t)v;
            if (c == O_TRAIN) a->t.n_train = (int)v;
            if (c == O_VAL) a->t.n_val = (int)v;
            if (c == O_TEST) a->t.n_test = (int)v;
            if (c == O_ROUNDS) a->t.max_rounds = (int)v;
            if (c == O_SIDE) a->t.side = (int)v;
            if (c == O_SIDEMIN) a->t.side_min = (int)v;
            if (c == O_RANK) a->t.rank = v > 2 ? 2 : (int)v;
            if (c == O_RERANK) a->t.rerank = v != 0;
            if (c == O_RBF) a->t.rbf = v != 0;
            break;
        default: fputs(help, stderr); return 2;
        }
    }
    if (!a->t.data_dir) {
        fprintf(stderr, "pimg: --data DIR is required\n");
        return 2;
    }
    a->t.objects_dirs = a->objs;
    return 0;
}

static void progress(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "[train detect] %s\n", msg);
}

int pimg_cmd_train_detect(int argc, char **argv, const char *exe)
{
    (void)exe;
    args a;
    int r = parse(argc, argv, &a, train_help);
    if (r)
        return r == 1 ? 0 : 2;
    pimg_error err = {0};
    a.t.progress = progress;
    if (a.dump) {
        int n = !strcmp(a.split, "train") ? a.t.n_train : !strcmp(a.split, "test") ? a.t.n_test : a.t.n_val;
        pimg_status st = pimg_detect_dump_composites(&a.t, a.split, n, a.dump, &err);
        if (st) {
            fprintf(stderr, "pimg: %s\n", err.msg);
            return pimg_cli_exit_code(st);
        }
        fprintf(stderr, "wrote %d composites to %s\n", n, a.dump);
        return 0;
    }
    if (!a.out) {
        fprintf(stderr, "pimg: --out MODEL is required\n");
        return 2;
    }
    pimg_detect_model *m = NULL;
    cJSON *rep = NULL, *test = NULL;
    pimg_status st = pimg_detect_train(&a.t, &m, &rep, &err);
    if (!st) {
        progress(NULL, "scoring the test composites with the full detector (proposals, scorer, mask)");
        st = pimg_detect_eval_composites(m, &a.t, &test, &err);
    }
    if (!st)
        st = pimg_detect_model_save(m, a.out, &err);
    if (st) {
        fprintf(stderr, "pimg: %s\n", err.msg);
        pimg_detect_model_free(m);
        cJSON_Delete(rep);
        return pimg_cli_exit_code(st);
    }
    cJSON_AddItemToObject(rep, "test", test);
    char date[32];
    pimg_cli_utc_date(date, sizeof date);
    cJSON_AddStringToObject(rep, "date", date);
    cJSON_AddStringToObject(rep, "model_file", a.out);
    /* Model card: same content, beside the model. */
    char card[4096];
    snprintf(card, sizeof card, "%s", a.out);
    char *dot = strrchr(card, '.'), *slash = strrchr(card, '/');
    if (dot && (!slash || dot > slash))
        *dot = '\0';
    strncat(card, ".json", sizeof card - strlen(card) - 1);
    char *s = cJSON_Print(rep);
    FILE *fp = s ? fopen(card, "w") : NULL;
    if (fp) {
        fputs(s, fp);
        fputc('\n', fp);
        fclose(fp);
        progress(NULL, "model card written");
    } else {
        fprintf(stderr, "pimg: cannot write model card %s\n", card);
    }
    free(s);
    pimg_cli_print_json(rep);
    cJSON_Delete(rep);
    pimg_detect_model_free(m);
    return fp ? 0 : 1;
}

int pimg_cmd_eval_detect(int argc, char **argv, const char *exe)
{
    (void)exe;
    args a;
    int r = parse(argc, argv, &a, eval_help);
    if (r)
        return r == 1 ? 0 : 2;
    if (!a.model) {
        fprintf(stderr, "pimg: --model MODEL is required (or \"none\")\n");
        return 2;
    }
    pimg_error err = {0};
    pimg_detect_model *m = NULL;
    pimg_status st = PIMG_OK;
    if (strcmp(a.model, "none") && (st = pimg_detect_model_load(a.model, &m, &err))) {
        fprintf(stderr, "pimg: %s\n", err.msg);
        return pimg_cli_exit_code(st);
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/labels.csv", a.t.data_dir);
    struct stat sb;
    cJSON *j = NULL;
    if (stat(p, &sb) == 0)
        st = pimg_detect_eval_folder(m, a.t.data_dir, &j, &err);
    else
        st = pimg_detect_eval_composites(m, &a.t, &j, &err);
    pimg_detect_model_free(m);
    if (st) {
        fprintf(stderr, "pimg: %s\n", err.msg);
        return pimg_cli_exit_code(st);
    }
    cJSON_AddStringToObject(j, "model", a.model);
    pimg_cli_print_json(j);
    cJSON_Delete(j);
    return 0;
}
