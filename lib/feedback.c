/* feedback.c — image files + SQLite rows, written in the order that makes every
 * acknowledged item survive a crash. */
#include "feedback.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct pimg_feedback {
    sqlite3 *db;
    char dir[PATH_MAX];
};

static pimg_status db_error(pimg_error *err, sqlite3 *db, const char *what)
{
    return pimg_error_set(err, PIMG_ERR_IO, "%s: %s", what, db ? sqlite3_errmsg(db) : "no database");
}

pimg_status pimg_feedback_open(const char *dir, pimg_feedback **out, pimg_error *err)
{
    char path[PATH_MAX + 32];
    if (mkdir(dir, 0755) && errno != EEXIST)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/images", dir);
    if (mkdir(path, 0755) && errno != EEXIST)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: %s", path, strerror(errno));
    pimg_feedback *fb = calloc(1, sizeof *fb);
    if (!fb)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    /* absolute, so exported labels.csv paths work from any working directory */
    if (!realpath(dir, fb->dir))
        snprintf(fb->dir, sizeof fb->dir, "%s", dir);
    snprintf(path, sizeof path, "%s/feedback.db", fb->dir);
    if (sqlite3_open_v2(path, &fb->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL)) {
        pimg_status st = db_error(err, fb->db, path);
        pimg_feedback_close(fb);
        return st;
    }
    sqlite3_busy_timeout(fb->db, 5000);
    const char *schema =
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=FULL;"
        "CREATE TABLE IF NOT EXISTS feedback("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  file TEXT NOT NULL,"
        "  rotation INTEGER,"
        "  x0 INTEGER, y0 INTEGER, x1 INTEGER, y1 INTEGER,"
        "  created REAL NOT NULL);";
    if (sqlite3_exec(fb->db, schema, NULL, NULL, NULL)) {
        pimg_status st = db_error(err, fb->db, "create schema");
        pimg_feedback_close(fb);
        return st;
    }
    *out = fb;
    return PIMG_OK;
}

void pimg_feedback_close(pimg_feedback *fb)
{
    if (!fb)
        return;
    sqlite3_close(fb->db);
    free(fb);
}

pimg_status pimg_feedback_label_parse(const char *json, size_t len, pimg_feedback_label *out,
                                      pimg_error *err)
{
    memset(out, 0, sizeof *out);
    cJSON *j = cJSON_ParseWithLength(json, len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label is not a JSON object");
    }
    pimg_status st = PIMG_OK;
    cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "rotation");
    cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "box");
    if (r && !cJSON_IsNull(r)) {
        int v = cJSON_IsNumber(r) ? r->valueint : -1;
        if (!cJSON_IsNumber(r) || r->valuedouble != v || (v != 0 && v != 90 && v != 180 && v != 270)) {
            st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label rotation must be 0, 90, 180 or 270");
            goto out;
        }
        out->has_rotation = 1;
        out->rotation = v;
    }
    if (b && !cJSON_IsNull(b)) {
        if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) != 4) {
            st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label box must be [x0,y0,x1,y1]");
            goto out;
        }
        for (int i = 0; i < 4; i++) {
            cJSON *e = cJSON_GetArrayItem(b, i);
            if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 1e6) {
                st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label box must hold 4 non-negative numbers");
                goto out;
            }
            out->box[i] = e->valueint;
        }
        if (out->box[2] <= out->box[0] || out->box[3] <= out->box[1]) {
            st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label box must have x1 > x0 and y1 > y0");
            goto out;
        }
        out->has_box = 1;
    }
    if (!out->has_rotation && !out->has_box)
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label needs \"rotation\" or \"box\"");
out:
    cJSON_Delete(j);
    return st;
}

/* write(2) all of buf, retrying on EINTR and short writes. */
static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

pimg_status pimg_feedback_add(pimg_feedback *fb, const void *bytes, size_t len, const char *ext,
                              const pimg_feedback_label *label, long long *id, pimg_error *err)
{
    char name[96], tmp[PATH_MAX + 128], final[PATH_MAX + 128], imgdir[PATH_MAX + 16];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* time + pid + a random part: unique without asking the database first */
    snprintf(name, sizeof name, "%lld%09ld-%d-%08x.%s", (long long)ts.tv_sec, ts.tv_nsec, (int)getpid(),
             (unsigned)rand(), ext && *ext ? ext : "img");
    snprintf(imgdir, sizeof imgdir, "%s/images", fb->dir);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", imgdir, name);
    snprintf(final, sizeof final, "%s/%s", imgdir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (write_all(fd, bytes, len) || fsync(fd)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return pimg_error_set(err, PIMG_ERR_IO, "write %s: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, final) || fsync_dir(imgdir)) {
        unlink(tmp);
        return pimg_error_set(err, PIMG_ERR_IO, "store %s: %s", final, strerror(errno));
    }
    sqlite3_stmt *st = NULL;
    const char *sql = "INSERT INTO feedback(file, rotation, x0, y0, x1, y1, created) VALUES(?,?,?,?,?,?,?)";
    if (sqlite3_prepare_v2(fb->db, sql, -1, &st, NULL))
        return db_error(err, fb->db, "prepare insert");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (label->has_rotation)
        sqlite3_bind_int(st, 2, label->rotation);
    else
        sqlite3_bind_null(st, 2);
    for (int i = 0; i < 4; i++) {
        if (label->has_box)
            sqlite3_bind_int(st, 3 + i, label->box[i]);
        else
            sqlite3_bind_null(st, 3 + i);
    }
    sqlite3_bind_double(st, 7, ts.tv_sec + ts.tv_nsec / 1e9);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        pimg_status s = db_error(err, fb->db, "insert");
        unlink(final);
        return s;
    }
    *id = sqlite3_last_insert_rowid(fb->db);
    return PIMG_OK;
}

long long pimg_feedback_count(pimg_feedback *fb)
{
    sqlite3_stmt *st = NULL;
    long long n = PIMG_ERR_IO;
    if (sqlite3_prepare_v2(fb->db, "SELECT COUNT(*) FROM feedback", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

pimg_status pimg_feedback_export(pimg_feedback *fb, const char *dir, long long *n, pimg_error *err)
{
    char path[PATH_MAX + 32];
    if (mkdir(dir, 0755) && errno != EEXIST)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/labels.csv", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: %s", path, strerror(errno));
    fputs("file,up,kind,rotation,x0,y0,x1,y1\n", f);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(fb->db, "SELECT file, rotation, x0, y0, x1, y1 FROM feedback ORDER BY id", -1, &st,
                           NULL)) {
        fclose(f);
        return db_error(err, fb->db, "export");
    }
    long long count = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *file = (const char *)sqlite3_column_text(st, 0);
        int has_rot = sqlite3_column_type(st, 1) != SQLITE_NULL;
        /* a rotation label says the photo has an upright direction */
        fprintf(f, "%s/images/%s,%d,,", fb->dir, file, has_rot);
        if (has_rot)
            fprintf(f, "%d", sqlite3_column_int(st, 1));
        for (int i = 2; i < 6; i++) {
            if (sqlite3_column_type(st, i) != SQLITE_NULL)
                fprintf(f, ",%d", sqlite3_column_int(st, i));
            else
                fputs(",", f);
        }
        fputc('\n', f);
        count++;
    }
    sqlite3_finalize(st);
    if (fclose(f))
        return pimg_error_set(err, PIMG_ERR_IO, "%s: write failed", path);
    *n = count;
    return PIMG_OK;
}
