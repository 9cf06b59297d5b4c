/* cli_train_orient.c — `pimg train orient` / `pimg eval orient`: option parsing, progress on
 * stderr, the metrics JSON on stdout, and the model card written beside the model. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "orient_internal.h"
#include "orient_train.h"

static void to_stderr(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "orient: %s\n", msg);
    fflush(stderr);
}

static const char train_help[] =
    "usage: pimg train orient --data DIR [--data DIR2 ...] [--objects DIR] --out MODEL [options]\n"
    "Trains the 0/90/180/270 orientation classifier on upright photos (labels.csv up=1, or every\n"
    "image of a folder without labels.csv), each turned four ways, plus composites of the upright\n"
    "cut-outs in --objects (objects.csv) on upright backgrounds. Splits by photo / object, grid-\n"
    "searches the SVM's C (and gamma for rbf) with grouped cross-validation, sets the turn threshold\n"
    "so that no out-of-fold or held-out upright photo is turned, writes MODEL and the model card\n"
    "MODEL with .json, prints progress on stderr and the metrics JSON on stdout.\n"
    "  --data DIR          photo folder (repeatable)\n"
    "  --objects DIR       cut-outs with alpha for composites (repeatable)\n"
    "  --out MODEL         e.g. models/orient.svm (card: models/orient.json)\n"
    "  --seed N            split/augmentation seed (default 1)\n"
    "  --test-frac F       held-out share of photos and objects (default 0.2)\n"
    "  --variants N        augmented copies per photo (default 3)\n"
    "  --composites N      composites in all (default 300)\n"
    "  --folds N           cross-validation folds (default 3)\n"
    "  --max-iter N        most grid points tried (default 8)\n"
    "  --max-false-turn F  out-of-fold false-turn rate the threshold allows (default 0)\n"
    "  --turn-margin F     added to that threshold (default 0.02)\n"
    "  --method M          fv: dense SIFT Fisher vectors, linear ranking of the four turns\n"
    "                      (default); rbf: colour moments + HOG, 4-class RBF SVM (round 2)\n"
    "  --dump-features F   only write the examples' features to F and their 128 px upright\n"
    "                      thumbnails to F.thumbs (for analysis), and stop\n";

enum { O_DATA = 300, O_OBJ, O_OUT, O_SEED, O_TEST, O_VAR, O_COMP, O_FOLDS, O_ITER, O_FT, O_MARGIN, O_DUMP, O_MODEL, O_METHOD };

static const struct option opts[] = {
    {"help", no_argument, NULL, 'h'},           {"data", required_argument, NULL, O_DATA},
    {"objects", required_argument, NULL, O_OBJ}, {"out", required_argument, NULL, O_OUT},
    {"seed", required_argument, NULL, O_SEED},   {"test-frac", required_argument, NULL, O_TEST},
    {"variants", required_argument, NULL, O_VAR}, {"composites", required_argument, NULL, O_COMP},
    {"folds", required_argument, NULL, O_FOLDS}, {"max-iter", required_argument, NULL, O_ITER},
    {"max-false-turn", required_argument, NULL, O_FT}, {"model", required_argument, NULL, O_MODEL},
    {"turn-margin", required_argument, NULL, O_MARGIN}, {"dump-features", required_argument, NULL, O_DUMP},
    {"method", required_argument, NULL, O_METHOD},
    {NULL, 0, NULL, 0},
};

int pimg_cmd_train_orient(int argc, char **argv, const char *exe)
{
    (void)exe;
    pimg_orient_train_opts o;
    pimg_orient_train_opts_default(&o);
    const char *dirs[PIMG_CLI_MAX_DIRS], *objs[PIMG_CLI_MAX_DIRS];
    int nd = 0, no = 0;
    const char *outp = NULL;
    double v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(train_help, stdout); return 0;
        case O_DATA:
            if (pimg_cli_add_dir(dirs, &nd, optarg, "data"))
                return 2;
            break;
        case O_OBJ:
            if (pimg_cli_add_dir(objs, &no, optarg, "objects"))
                return 2;
            break;
        case O_OUT: outp = optarg; break;
        case O_SEED: if (pimg_cli_parse_double(optarg, 0, 4e9, &v)) goto bad; o.seed = (unsigned)v; break;
        case O_TEST: if (pimg_cli_parse_double(optarg, 0, 0.9, &v)) goto bad; o.test_frac = v; break;
        case O_VAR: if (pimg_cli_parse_double(optarg, 1, 100, &v)) goto bad; o.variants = (int)v; break;
        case O_COMP: if (pimg_cli_parse_double(optarg, 0, 100000, &v)) goto bad; o.composites = (int)v; break;
        case O_FOLDS: if (pimg_cli_parse_double(optarg, 2, 10, &v)) goto bad; o.folds = (int)v; break;
        case O_ITER: if (pimg_cli_parse_double(optarg, 1, 100, &v)) goto bad; o.max_iter = (int)v; break;
        case O_FT: if (pimg_cli_parse_double(optarg, 0, 0.5, &v)) goto bad; o.max_false_turn = v; break;
        case O_MARGIN: if (pimg_cli_parse_double(optarg, 0, 0.5, &v)) goto bad; o.turn_margin = v; break;
        case O_DUMP: o.dump_path = optarg; break;
        case O_METHOD:
            if (!strcmp(optarg, "rbf"))
                o.method = PIMG_ORIENT_METHOD_RBF;
            else if (!strcmp(optarg, "fv"))
                o.method = PIMG_ORIENT_METHOD_FV;
            else {
                fprintf(stderr, "pimg train orient: --method is rbf or fv\n");
                return 2;
            }
            break;
        default: fputs(train_help, stderr); return 2;
        }
    }
    if (!nd || !outp) {
        fprintf(stderr, "pimg: train orient needs --data DIR and --out MODEL\n");
        return 2;
    }
    o.data_dirs = dirs;
    o.n_data_dirs = nd;
    o.objects_dirs = objs;
    o.n_objects_dirs = no;
    o.progress = to_stderr;
    pimg_orient_model *m = NULL;
    cJSON *metrics = NULL;
    pimg_error err = {0};
    pimg_status st = pimg_orient_train(&o, &m, &metrics, &err);
    if (st == PIMG_ERR_CANCELLED && o.dump_path) {
        fprintf(stderr, "pimg: %s\n", err.msg);
        return 0;
    }
    if (st) {
        fprintf(stderr, "pimg: %s\n", err.msg);
        return pimg_cli_exit_code(st);
    }
    /* Model card: what data, which split, how it scored, when. */
    cJSON *card = pimg_cli_card_new("orient", dirs, nd);
    cJSON *ob = cJSON_AddArrayToObject(card, "objects");
    for (int i = 0; i < no; i++)
        cJSON_AddItemToArray(ob, cJSON_CreateString(objs[i]));
    cJSON_AddItemToObject(card, "metrics", cJSON_Duplicate(metrics, 1));
    st = pimg_orient_model_save(m, outp, card, &err);
    cJSON_Delete(card);
    pimg_orient_model_free(m);
    char cpath[4096];
    pimg_orient_card_path(outp, cpath, sizeof cpath);
    return pimg_cli_report_trained(st, &err, metrics, outp, cpath);
bad:
    fprintf(stderr, "pimg: bad value '%s'\n", optarg);
    return 2;
}

static const char eval_help[] =
    "usage: pimg eval orient --data DIR [--data DIR2 ...] --model MODEL\n"
    "Turns every upright photo of the folders 0/90/180/270 degrees, asks the model, and prints\n"
    "per-class accuracy, the confusion matrix and the false-turn rate as JSON.\n";

int pimg_cmd_eval_orient(int argc, char **argv, const char *exe)
{
    (void)exe;
    const char *dirs[PIMG_CLI_MAX_DIRS];
    int nd = 0, c;
    const char *model = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(eval_help, stdout); return 0;
        case O_DATA:
            if (pimg_cli_add_dir(dirs, &nd, optarg, "data"))
                return 2;
            break;
        case O_MODEL: model = optarg; break;
        default: fputs(eval_help, stderr); return 2;
        }
    }
    if (!nd || !model) {
        fprintf(stderr, "pimg: eval orient needs --data DIR and --model MODEL\n");
        return 2;
    }
    pimg_error err = {0};
    pimg_orient_model *m = NULL;
    pimg_status st = pimg_orient_model_load(model, &m, &err);
    cJSON *metrics = NULL;
    if (!st)
        st = pimg_orient_evaluate(m, dirs, nd, to_stderr, NULL, &metrics, &err);
    pimg_orient_model_free(m);
    if (st) {
        fprintf(stderr, "pimg: %s\n", err.msg);
        return pimg_cli_exit_code(st);
    }
    cJSON_AddStringToObject(metrics, "model_file", model);
    pimg_cli_print_json(metrics);
    cJSON_Delete(metrics);
    return 0;
}
