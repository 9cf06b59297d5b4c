/* fileio.c — whole-file read, crash-safe write, mkdir -p. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

pimg_status pimg_file_read(const char *path, void **buf, size_t *len, pimg_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: %s", path, strerror(errno));
    char *b = NULL;
    size_t n = 0, cap = 0, got;
    pimg_status st = PIMG_OK;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(b, cap);
            if (!nb) {
                st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory reading %s", path);
                break;
            }
            b = nb;
        }
        got = fread(b + n, 1, cap - n, f);
        n += got;
    } while (got);
    if (!st && ferror(f))
        st = pimg_error_set(err, PIMG_ERR_IO, "%s: read error", path);
    fclose(f);
    if (st) {
        free(b);
        return st;
    }
    *buf = b;
    *len = n;
    return PIMG_OK;
}

pimg_status pimg_json_read(const char *path, size_t max, cJSON **out, pimg_error *err)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && (size_t)sb.st_size > max)
        return pimg_error_set(err, PIMG_ERR_TOO_LARGE, "%s: larger than %zu bytes", path, max);
    void *buf = NULL;
    size_t n = 0;
    pimg_status st = pimg_file_read(path, &buf, &n, err);
    if (st)
        return st;
    cJSON *o = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (!o)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: not JSON", path);
    *out = o;
    return PIMG_OK;
}

void pimg_card_path(const char *path, const char *ext, char *buf, size_t n)
{
    size_t len = strlen(path), el = strlen(ext);
    if (len > el && !strcmp(path + len - el, ext))
        snprintf(buf, n, "%.*s.json", (int)(len - el), path);
    else
        snprintf(buf, n, "%s.json", path);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

pimg_status pimg_file_write_durably(const char *dir, const char *name, const void *data, size_t len,
                                    pimg_error *err)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst)
        return pimg_error_set(err, PIMG_ERR_IO, "path too long in %s", dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return pimg_error_set(err, PIMG_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return pimg_error_set(err, PIMG_ERR_IO, "cannot write %s: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) || close(fd) || rename(tmp, dst) || fsync_dir(dir)) {
        int e = errno;
        unlink(tmp);
        return pimg_error_set(err, PIMG_ERR_IO, "cannot store %s: %s", dst, strerror(e));
    }
    return PIMG_OK;
}

int pimg_mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}
