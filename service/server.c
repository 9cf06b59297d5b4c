/* server.c — placeholder for `pimg serve` (being written). */
#include <stdio.h>

#include "cli.h"

int pimg_cmd_serve(int argc, char **argv, const char *exe)
{
    (void)argc;
    (void)argv;
    (void)exe;
    fprintf(stderr, "pimg: serve is not implemented yet\n");
    return 3;
}
