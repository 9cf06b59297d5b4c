/* cli_train.c — `pimg train` and `pimg eval`: dispatch to the per-model trainers. The
 * trainers land with issues 4 (orient) and 5 (detect). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int not_yet(int argc, char **argv, const char *what)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: pimg %s orient|detect --data DIR [--labels CSV] --out MODEL\n"
               "Not implemented yet (exit 3).\n", what);
        return 0;
    }
    fprintf(stderr, "pimg: %s is not implemented yet\n", what);
    return 3;
}

int pimg_cmd_train(int argc, char **argv, const char *exe)
{
    (void)exe;
    return not_yet(argc, argv, "train");
}

int pimg_cmd_eval(int argc, char **argv, const char *exe)
{
    (void)exe;
    return not_yet(argc, argv, "eval");
}
