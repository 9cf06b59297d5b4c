/* main.c — `pimg` entry point: starts the core library and dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pimg.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pimg <command> [options]\n"
            "\n"
            "commands:\n"
            "  serve    run the HTTP service (pimg serve --help)\n"
            "  analyze  print the analysis JSON of each image, one per line\n"
            "  enhance  write the corrected JPEG and print its metadata JSON\n"
            "  align    register an image to a reference view (SIFT + RANSAC)\n"
            "  train    train a model (orient | detect | enhance | level)\n"
            "  eval     evaluate a model on a folder\n"
            "\n"
            "pimg %s — every command takes --help.\n",
            PIMG_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("pimg %s\n", PIMG_VERSION);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **, const char *);
    } cmds[] = {
        {"analyze", pimg_cmd_analyze}, {"enhance", pimg_cmd_enhance}, {"align", pimg_cmd_align},
        {"train", pimg_cmd_train},     {"eval", pimg_cmd_eval},       {"serve", pimg_cmd_serve},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        if (strcmp(cmd, cmds[i].name))
            continue;
        pimg_error err = {0};
        if (pimg_init(argv[0], 0, &err)) {
            fprintf(stderr, "pimg: %s\n", err.msg);
            return 1;
        }
        int rc = cmds[i].fn(argc - 1, argv + 1, argv[0]);
        pimg_shutdown();
        return rc;
    }
    fprintf(stderr, "pimg: unknown command '%s' (pimg --help lists them)\n", cmd);
    return 2;
}
