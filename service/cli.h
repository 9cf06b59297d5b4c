/* cli.h — the `pimg` subcommands. Each takes argc/argv starting at the subcommand's name and
 * returns the process exit code: 0 ok, 1 failure, 2 unreadable image / bad usage, 3 not
 * implemented yet. */
#ifndef PIMG_CLI_H
#define PIMG_CLI_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "status.h"

int pimg_cmd_analyze(int argc, char **argv, const char *exe);
int pimg_cmd_enhance(int argc, char **argv, const char *exe);
int pimg_cmd_align(int argc, char **argv, const char *exe);
int pimg_cmd_train(int argc, char **argv, const char *exe);
int pimg_cmd_eval(int argc, char **argv, const char *exe);
int pimg_cmd_serve(int argc, char **argv, const char *exe);
int pimg_cmd_train_orient(int argc, char **argv, const char *exe);
int pimg_cmd_eval_orient(int argc, char **argv, const char *exe);
int pimg_cmd_train_detect(int argc, char **argv, const char *exe);
int pimg_cmd_eval_detect(int argc, char **argv, const char *exe);
int pimg_cmd_train_enhance(int argc, char **argv, const char *exe);
int pimg_cmd_eval_enhance(int argc, char **argv, const char *exe);
int pimg_cmd_train_level(int argc, char **argv, const char *exe);

/* Parses a whole decimal integer in lo..hi into *out. 0 ok; -1 (and *out untouched) for
 * anything else: empty, trailing characters, out of range. */
int pimg_cli_parse_long(const char *s, long lo, long hi, long *out);

/* The same for a whole decimal number (strtod syntax) in lo..hi. */
int pimg_cli_parse_double(const char *s, double lo, double hi, double *out);

/* Most folders a repeatable folder option (--data, --objects) takes. */
#define PIMG_CLI_MAX_DIRS 32

/* Appends dir to a repeatable folder option's list v (room for PIMG_CLI_MAX_DIRS, *n used).
 * 0 ok; 2 (the bad-usage exit code) after printing "at most N --opt folders" when it is full. */
int pimg_cli_add_dir(const char **v, int *n, const char *dir, const char *opt);

/* Prints o as indented JSON on stdout: the trainers' and evaluators' report. */
void pimg_cli_print_json(const cJSON *o);

/* The current UTC time as 2026-11-26T01:02:03Z into buf. */
void pimg_cli_utc_date(char *buf, size_t n);

/* The head every model card shares: model name, creation time, the data folders.
 * Ownership: the caller adds its fields and frees it with cJSON_Delete. NULL when out of memory. */
cJSON *pimg_cli_card_new(const char *model, const char *const *dirs, int n_dirs);

/* The end of `pimg train MODEL` once the model has been saved with status save_st (message in
 * err): on failure prints the error and returns its exit code; otherwise adds model_file and
 * card_file to metrics, prints it on stdout and returns 0. Takes ownership of metrics. */
int pimg_cli_report_trained(pimg_status save_st, const pimg_error *err, cJSON *metrics, const char *model_file,
                            const char *card_file);

/* Exit code for a lib status: unreadable/undecodable input → 2, not implemented → 3, else 1. */
int pimg_cli_exit_code(pimg_status st);

#endif
