/* cli_train_orient.c — `pimg train orient` / `pimg eval orient`. Placeholder until issue 4 lands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int not_yet(int argc, char **argv, const char *what)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: pimg %s orient --data DIR --out MODEL\nNot implemented yet (exit 3).\n", what);
        return 0;
    }
    fprintf(stderr, "pimg: %s orient is not implemented yet\n", what);
    return 3;
}

int pimg_cmd_train_orient(int argc, char **argv, const char *exe)
{
    (void)exe;
    return not_yet(argc, argv, "train");
}

int pimg_cmd_eval_orient(int argc, char **argv, const char *exe)
{
    (void)exe;
    return not_yet(argc, argv, "eval");
}
