/* cli_train.c — `pimg train` and `pimg eval`: dispatch to the per-model trainers
 * (cli_train_orient.c, cli_train_detect.c, cli_train_enhance.c, cli_train_level.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void pimg_cli_print_json(const cJSON *o)
{
    char *s = cJSON_Print(o);
    if (s) {
        puts(s);
        free(s);
    }
}

void pimg_cli_utc_date(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

cJSON *pimg_cli_card_new(const char *model, const char *const *dirs, int n_dirs)
{
    cJSON *card = cJSON_CreateObject();
    if (!card)
        return NULL;
    char date[32];
    pimg_cli_utc_date(date, sizeof date);
    cJSON_AddStringToObject(card, "model", model);
    cJSON_AddStringToObject(card, "created", date);
    cJSON *d = cJSON_AddArrayToObject(card, "data");
    for (int i = 0; i < n_dirs; i++)
        cJSON_AddItemToArray(d, cJSON_CreateString(dirs[i]));
    return card;
}

int pimg_cli_report_trained(pimg_status save_st, const pimg_error *err, cJSON *metrics, const char *model_file,
                            const char *card_file)
{
    if (save_st) {
        fprintf(stderr, "pimg: %s\n", err->msg);
        cJSON_Delete(metrics);
        return pimg_cli_exit_code(save_st);
    }
    cJSON_AddStringToObject(metrics, "model_file", model_file);
    cJSON_AddStringToObject(metrics, "card_file", card_file);
    pimg_cli_print_json(metrics);
    cJSON_Delete(metrics);
    return 0;
}

static const char help[] =
    "usage: pimg train orient|detect|enhance|level --data DIR [--labels CSV] --out MODEL [options]\n"
    "       pimg eval  orient|detect|enhance --data DIR --model MODEL\n"
    "`pimg train orient|detect|enhance|level --help` lists each trainer's options.\n";

static int dispatch(int argc, char **argv, const char *exe, int train)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(help, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "orient"))
        return train ? pimg_cmd_train_orient(argc - 1, argv + 1, exe) : pimg_cmd_eval_orient(argc - 1, argv + 1, exe);
    if (!strcmp(argv[1], "detect"))
        return train ? pimg_cmd_train_detect(argc - 1, argv + 1, exe) : pimg_cmd_eval_detect(argc - 1, argv + 1, exe);
    if (!strcmp(argv[1], "level")) {
        if (train)
            return pimg_cmd_train_level(argc - 1, argv + 1, exe);
        fprintf(stderr, "pimg: use ../shared/eval/level.py to score levelling\n");
        return 2;
    }
    if (!strcmp(argv[1], "enhance"))
        return train ? pimg_cmd_train_enhance(argc - 1, argv + 1, exe) : pimg_cmd_eval_enhance(argc - 1, argv + 1, exe);
    fprintf(stderr, "pimg: unknown model '%s' (orient, detect or enhance)\n", argv[1]);
    return 2;
}

int pimg_cmd_train(int argc, char **argv, const char *exe) { return dispatch(argc, argv, exe, 1); }
int pimg_cmd_eval(int argc, char **argv, const char *exe) { return dispatch(argc, argv, exe, 0); }
