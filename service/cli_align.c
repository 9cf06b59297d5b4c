/* cli_align.c — `pimg align IN REF OUT`. Alignment itself lands with issue 7. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int pimg_cmd_align(int argc, char **argv, const char *exe)
{
    (void)exe;
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        puts("usage: pimg align IN REF OUT\n"
             "Registers IN to REF with SIFT + RANSAC and writes IN warped into REF's frame.\n"
             "Not implemented yet (exit 3).");
        return 0;
    }
    fprintf(stderr, "pimg: align is not implemented yet\n");
    return 3;
}
