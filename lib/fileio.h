/* fileio.h — the few file operations pimg needs to get exactly right: reading a whole file,
 * writing one so that it survives a crash, and making a folder path. */
#ifndef PIMG_FILEIO_H
#define PIMG_FILEIO_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "status.h"

/* Reads the whole file. IO (with the path and reason) or NOMEM on failure.
 * Ownership: *buf is malloc'd on success; caller frees with free(). */
pimg_status pimg_file_read(const char *path, void **buf, size_t *len, pimg_error *err);

/* Reads and parses a whole JSON file (the model files and cards) of at most max bytes.
 * IO or NOMEM when it cannot be read, TOO_LARGE above max, BAD_INPUT when it is not JSON.
 * Ownership: *out on success, freed with cJSON_Delete. */
pimg_status pimg_json_read(const char *path, size_t max, cJSON **out, pimg_error *err);

/* Writes data to dir/name durably: a temporary file in dir, fsync, rename over name, fsync of
 * dir. Readers see the old file or the whole new one, never a part; once this returns PIMG_OK
 * the file survives power loss. */
pimg_status pimg_file_write_durably(const char *dir, const char *name, const void *data, size_t len,
                                    pimg_error *err);

/* The model card beside a model file: path with its extension ext (".svm", ".model") replaced by
 * ".json", or ".json" appended when path does not end in ext. */
void pimg_card_path(const char *path, const char *ext, char *buf, size_t n);

/* mkdir -p: creates path and its missing parents (mode 0755). 0 on success, -1 with errno. */
int pimg_mkdir_p(const char *path);

#endif
