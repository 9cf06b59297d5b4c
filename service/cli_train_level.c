/* cli_train_level.c — `pimg train level`: option parsing, progress on stderr, the metrics JSON
 * on stdout, and the model card written beside the model. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "level_train.h"

static void to_stderr(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "level: %s\n", msg);
    fflush(stderr);
}

static const char train_help[] =
    "usage: pimg train level --data DIR [--data DIR2 ...] --out MODEL [options]\n"
    "Trains the tilt (levelling) model on upright photos (labels.csv up=1, stored-turned ones made\n"
    "upright with `rotation`; or every image of a folder without labels.csv), each tilted by random\n"
    "angles the way ../shared/eval/level.py does. Splits by photo, fits a softmax over candidate\n"
    "angles, picks when to abstain on out-of-fold posteriors of the training photos, writes MODEL\n"
    "and the card (MODEL with .json for .model), prints progress on stderr, metrics JSON on stdout.\n"
    "  --data DIR          photo folder (repeatable)\n"
    "  --out MODEL         e.g. models/level.model (card: models/level.json)\n"
    "  --seed N            split/angle seed (default 1)\n"
    "  --test-frac F       held-out share of photos (default 0.25)\n"
    "  --copies N          tilted copies per photo (default 16)\n"
    "  --max-untilted-mae F  untilted error (deg) the abstention rule allows on training photos\n"
    "                      (default 0.2)\n"
    "  --test-list FILE    also write the held-out photos (path,rotation) to FILE\n"
    "  --dump FILE         only write the examples' histograms to FILE (for analysis) and stop\n";

enum { O_DATA = 300, O_OUT, O_SEED, O_TEST, O_COPIES, O_UMAE, O_LIST, O_DUMP };

static const struct option opts[] = {
    {"help", no_argument, NULL, 'h'},          {"data", required_argument, NULL, O_DATA},
    {"out", required_argument, NULL, O_OUT},    {"seed", required_argument, NULL, O_SEED},
    {"test-frac", required_argument, NULL, O_TEST}, {"copies", required_argument, NULL, O_COPIES},
    {"max-untilted-mae", required_argument, NULL, O_UMAE},
    {"test-list", required_argument, NULL, O_LIST}, {"dump", required_argument, NULL, O_DUMP},
    {NULL, 0, NULL, 0},
};

int pimg_cmd_train_level(int argc, char **argv, const char *exe)
{
    (void)exe;
    pimg_level_train_opts o;
    pimg_level_train_opts_default(&o);
    const char *dirs[PIMG_CLI_MAX_DIRS];
    int nd = 0;
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
        case O_OUT: outp = optarg; break;
        case O_SEED: if (pimg_cli_parse_double(optarg, 0, 4e9, &v)) goto bad; o.seed = (unsigned)v; break;
        case O_TEST: if (pimg_cli_parse_double(optarg, 0, 0.9, &v)) goto bad; o.test_frac = v; break;
        case O_COPIES: if (pimg_cli_parse_double(optarg, 1, 100, &v)) goto bad; o.copies = (int)v; break;
        case O_UMAE: if (pimg_cli_parse_double(optarg, 0, 20, &v)) goto bad; o.max_untilted_mae = v; break;
        case O_LIST: o.test_list = optarg; break;
        case O_DUMP: o.dump_path = optarg; break;
        default: fputs(train_help, stderr); return 2;
        }
    }
    if (!nd || (!outp && !o.dump_path)) {
        fprintf(stderr, "pimg: train level needs --data DIR and --out MODEL\n");
        return 2;
    }
    o.data_dirs = dirs;
    o.n_data_dirs = nd;
    o.progress = to_stderr;
    pimg_level_model *m = NULL;
    cJSON *metrics = NULL;
    pimg_error err = {0};
    pimg_status st = pimg_level_train(&o, &m, &metrics, &err);
    if (st) {
        fprintf(stderr, "pimg: %s\n", err.msg);
        return pimg_cli_exit_code(st);
    }
    if (!m) { /* --dump: nothing trained */
        cJSON_Delete(metrics);
        return 0;
    }
    /* Model card: what data, which split, how it scored, when. */
    cJSON *card = pimg_cli_card_new("level", dirs, nd);
    cJSON_AddItemToObject(card, "metrics", cJSON_Duplicate(metrics, 1));
    st = pimg_level_model_save(m, outp, card, &err);
    cJSON_Delete(card);
    pimg_level_model_free(m);
    char cpath[4096];
    pimg_level_card_path(outp, cpath, sizeof cpath);
    return pimg_cli_report_trained(st, &err, metrics, outp, cpath);
bad:
    fprintf(stderr, "pimg: bad value '%s'\n", optarg);
    return 2;
}
