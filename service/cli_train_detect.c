/* cli_train_detect.c — `pimg train detect` / `pimg eval detect`. Placeholder until issue 5 lands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int not_yet(int argc, char **argv, const char *what)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: pimg %s detect --data DIR --out MODEL\nNot implemented yet (exit 3).\n", what);
        return 0;
    }
    fprintf(stderr, "pimg: %s detect is not implemented yet\n", what);
    return 3;
}

int pimg_cmd_train_detect(int argc, char **argv, const char *exe)
{
    (void)exe;
    return not_yet(argc, argv, "train");
}

int pimg_cmd_eval_detect(int argc, char **argv, const char *exe)
{
    (void)exe;
    return not_yet(argc, argv, "eval");
}
