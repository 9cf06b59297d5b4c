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
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "image.h"

struct pimg_feedback {
    sqlite3 *db; /* opened FULLMUTEX: one connection shared by all threads */
    char images[PATH_MAX];
};

static pimg_status db_error(pimg_error *err, sqlite3 *db, const char *what)
{
    return pimg_error_set(err, PIMG_ERR_IO, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

pimg_status pimg_feedback_open(const char *dir, pimg_feedback **out, pimg_error *err)
{
    char images[PATH_MAX], db[PATH_MAX];
    if (snprintf(images, sizeof images, "%s/feedback", dir) >= (int)sizeof images ||
        snprintf(db, sizeof db, "%s/feedback.db", dir) >= (int)sizeof db)
        return pimg_error_set(err, PIMG_ERR_IO, "path too long: %s", dir);
    if (pimg_mkdir_p(images))
        return pimg_error_set(err, PIMG_ERR_IO, "cannot create %s: %s", images, strerror(errno));
    pimg_feedback *fb = calloc(1, sizeof *fb);
    if (!fb)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    /* absolute, so exported symlinks work from any working directory */
    if (!realpath(images, fb->images))
        snprintf(fb->images, sizeof fb->images, "%s", images);
    if (sqlite3_open_v2(db, &fb->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) ||
        sqlite3_exec(fb->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;"
                     "CREATE TABLE IF NOT EXISTS feedback(id INTEGER PRIMARY KEY, file TEXT NOT NULL,"
                     " rotation INTEGER NOT NULL, up INTEGER NOT NULL, x0 INTEGER, y0 INTEGER, x1 INTEGER,"
                     " y1 INTEGER, label TEXT NOT NULL, created TEXT NOT NULL)",
                     NULL, NULL, NULL)) {
        pimg_status st = db_error(err, fb->db, db);
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

pimg_status pimg_feedback_label_parse(const char *json, size_t len, int w, int h, pimg_feedback_label *out,
                                      pimg_error *err)
{
    memset(out, 0, sizeof *out);
    cJSON *o = cJSON_ParseWithLength(json, len);
    pimg_status st = PIMG_OK;
    if (!cJSON_IsObject(o)) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label must be a JSON object");
        goto out;
    }
    const cJSON *rot = cJSON_GetObjectItemCaseSensitive(o, "rotation");
    if (!cJSON_IsNumber(rot) || rot->valuedouble != rot->valueint ||
        (rot->valueint != 0 && rot->valueint != 90 && rot->valueint != 180 && rot->valueint != 270)) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label.rotation must be 0, 90, 180 or 270");
        goto out;
    }
    out->rotation = rot->valueint;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "up");
    out->up = 1;
    if (u) {
        if (!cJSON_IsNumber(u) || (u->valuedouble != 0 && u->valuedouble != 1)) {
            st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label.up must be 0 or 1");
            goto out;
        }
        out->up = u->valueint;
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "box");
    if (b && !cJSON_IsNull(b)) {
        if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) != 4) {
            st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label.box must be [x0,y0,x1,y1] or null");
            goto out;
        }
        for (int i = 0; i < 4; i++) {
            const cJSON *v = cJSON_GetArrayItem(b, i);
            if (!cJSON_IsNumber(v) || v->valuedouble != (double)v->valueint) {
                st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label.box must hold 4 integers");
                goto out;
            }
            out->box[i] = v->valueint;
        }
        const int *x = out->box;
        if (x[0] < 0 || x[1] < 0 || x[0] >= x[2] || x[1] >= x[3] || x[2] > w || x[3] > h) {
            st = pimg_error_set(err, PIMG_ERR_BAD_INPUT,
                                "label.box must satisfy 0 <= x0 < x1 <= %d, 0 <= y0 < y1 <= %d", w, h);
            goto out;
        }
        out->has_box = 1;
    }
out:
    cJSON_Delete(o);
    return st;
}

pimg_status pimg_feedback_add(pimg_feedback *fb, const void *img, size_t img_len, const char *label_json,
                              size_t label_len, uint64_t max_pixels, int64_t *id, pimg_error *err)
{
    pimg_load_opts lo = {.max_pixels = max_pixels};
    pimg_image *im = NULL;
    pimg_status st = pimg_image_load_buffer(img, img_len, &lo, &im, err);
    if (st)
        return st;
    int w = pimg_image_input_width(im), h = pimg_image_input_height(im);
    const char *ext = pimg_format_name(pimg_image_format(im));
    pimg_image_free(im);
    pimg_feedback_label l;
    if ((st = pimg_feedback_label_parse(label_json, label_len, w, h, &l, err)))
        return st;
    unsigned char rnd[8];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd) {
        if (fd >= 0)
            close(fd);
        return pimg_error_set(err, PIMG_ERR_IO, "cannot read /dev/urandom");
    }
    close(fd);
    char name[64];
    snprintf(name, sizeof name, "%02x%02x%02x%02x%02x%02x%02x%02x.%s", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
             rnd[5], rnd[6], rnd[7], ext);
    if ((st = pimg_file_write_durably(fb->images, name, img, img_len, err)))
        return st;
    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(fb->db,
                                "INSERT INTO feedback(file,rotation,up,x0,y0,x1,y1,label,created)"
                                " VALUES(?,?,?,?,?,?,?,?,?) RETURNING id",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(q, 2, l.rotation);
        sqlite3_bind_int(q, 3, l.up);
        for (int i = 0; i < 4; i++) {
            if (l.has_box)
                sqlite3_bind_int(q, 4 + i, l.box[i]);
            else
                sqlite3_bind_null(q, 4 + i);
        }
        sqlite3_bind_text(q, 8, label_json, (int)label_len, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 9, created, -1, SQLITE_TRANSIENT);
        /* RETURNING gives this statement's id; last_insert_rowid could be another thread's */
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            *id = sqlite3_column_int64(q, 0);
        while (rc == SQLITE_ROW)
            rc = sqlite3_step(q);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        st = db_error(err, fb->db, "cannot record feedback");
        char path[PATH_MAX + 80];
        snprintf(path, sizeof path, "%s/%s", fb->images, name);
        unlink(path);
        return st;
    }
    return PIMG_OK;
}

int64_t pimg_feedback_count(pimg_feedback *fb)
{
    int64_t n = -1;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(fb->db, "SELECT COUNT(*) FROM feedback", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return n;
}

pimg_status pimg_feedback_export(pimg_feedback *fb, const char *train_dir, const char *test_dir, int *n_train,
                                 int *n_test, pimg_error *err)
{
    *n_train = *n_test = 0;
    char p1[PATH_MAX + 16], p2[PATH_MAX + 16];
    snprintf(p1, sizeof p1, "%s/labels.csv", train_dir);
    snprintf(p2, sizeof p2, "%s/labels.csv", test_dir);
    FILE *f1 = fopen(p1, "w"), *f2 = fopen(p2, "w");
    if (!f1 || !f2) {
        pimg_error_set(err, PIMG_ERR_IO, "cannot write %s: %s", f1 ? p2 : p1, strerror(errno));
        if (f1)
            fclose(f1);
        if (f2)
            fclose(f2);
        return PIMG_ERR_IO;
    }
    const char *hdr = "file,up,kind,rotation,x0,y0,x1,y1,license,source,description\n";
    fputs(hdr, f1);
    fputs(hdr, f2);
    pimg_status st = PIMG_OK;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(fb->db, "SELECT id,file,up,rotation,x0,y0,x1,y1 FROM feedback ORDER BY id", -1, &q,
                           NULL) != SQLITE_OK)
        st = db_error(err, fb->db, "cannot read feedback");
    while (!st && sqlite3_step(q) == SQLITE_ROW) {
        int test = sqlite3_column_int64(q, 0) % 5 == 0;
        const char *file = (const char *)sqlite3_column_text(q, 1);
        FILE *f = test ? f2 : f1;
        char src[PATH_MAX + 80], dst[PATH_MAX + 80];
        snprintf(src, sizeof src, "%s/%s", fb->images, file);
        snprintf(dst, sizeof dst, "%s/%s", test ? test_dir : train_dir, file);
        if (symlink(src, dst) && errno != EEXIST)
            continue;
        fprintf(f, "%s,%d,,%d,", file, sqlite3_column_int(q, 2), sqlite3_column_int(q, 3));
        if (sqlite3_column_type(q, 4) == SQLITE_NULL)
            fputs(",,,", f);
        else
            fprintf(f, "%d,%d,%d,%d", sqlite3_column_int(q, 4), sqlite3_column_int(q, 5), sqlite3_column_int(q, 6),
                    sqlite3_column_int(q, 7));
        fputs(",feedback,pimg admin feedback,\n", f);
        (*(test ? n_test : n_train))++;
    }
    sqlite3_finalize(q);
    int bad = fclose(f1) | fclose(f2);
    if (!st && bad)
        st = pimg_error_set(err, PIMG_ERR_IO, "cannot write the exported labels");
    return st;
}
