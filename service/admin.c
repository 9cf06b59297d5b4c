/* admin.c — feedback store (files + SQLite) and retrain jobs for the admin API.
 *
 * Retrain runs `pimg train MODEL` on 4/5 of the feedback (rows whose id is not a multiple of 5)
 * and `pimg eval MODEL` of both the candidate and the current model on the other fifth, as
 * subprocesses of this binary (niced, killed with the server). The candidate is promoted —
 * copied atomically into the models folder, then the server reloads — only when its held-out
 * metric beats the current model's (or there is no current model). Job status lives in memory;
 * each job's folder under state_dir/jobs keeps the logs and JSON outputs. */
#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "image.h"

#define MAX_JOBS 32
#define JOB_TIMEOUT_S (20 * 60)

typedef struct {
    char id[40];
    char model[16];
    cJSON *status; /* owned; replaced as the job advances */
} job;

struct pimg_admin {
    char state[PATH_MAX], feedback[PATH_MAX + 16], exe[PATH_MAX], models[PATH_MAX];
    sqlite3 *db;
    pthread_mutex_t mu; /* db, jobs, running, child */
    job jobs[MAX_JOBS];
    int n_jobs, next_job;
    int running, have_thread, stopping;
    pid_t child;
    pthread_t thread;
    pimg_admin_promoted_fn promoted;
    void *promoted_ctx;
};

/* snprintf for paths, through a va_list so that over-long paths are reported as errors at
 * run time (return -1) instead of being silently cut. */
static int pathf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pathf(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return r < 0 || (size_t)r >= n ? -1 : 0;
}

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    pathf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
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

pimg_status pimg_admin_open(const char *state_dir, const char *exe, const char *models_dir,
                            pimg_admin_promoted_fn promoted, void *promoted_ctx, pimg_admin **out,
                            pimg_error *err)
{
    pimg_admin *a = calloc(1, sizeof *a);
    if (!a)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    pathf(a->state, sizeof a->state, "%s", state_dir);
    pathf(a->feedback, sizeof a->feedback, "%s/feedback", state_dir);
    if (!exe || !realpath(exe, a->exe))
        pathf(a->exe, sizeof a->exe, "%s", exe ? exe : "pimg");
    pathf(a->models, sizeof a->models, "%s", models_dir);
    a->promoted = promoted;
    a->promoted_ctx = promoted_ctx;
    pthread_mutex_init(&a->mu, NULL);
    char db[PATH_MAX + 32];
    pathf(db, sizeof db, "%s/feedback.db", state_dir);
    if (mkdir_p(a->feedback)) {
        pimg_admin_free(a);
        return pimg_error_set(err, PIMG_ERR_IO, "cannot create %s: %s", state_dir, strerror(errno));
    }
    if (sqlite3_open_v2(db, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK ||
        sqlite3_exec(a->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;"
                     "CREATE TABLE IF NOT EXISTS feedback(id INTEGER PRIMARY KEY, file TEXT NOT NULL,"
                     " rotation INTEGER NOT NULL, up INTEGER NOT NULL, x0 INTEGER, y0 INTEGER, x1 INTEGER,"
                     " y1 INTEGER, label TEXT NOT NULL, created TEXT NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK) {
        pimg_error_set(err, PIMG_ERR_IO, "cannot open %s: %s", db, a->db ? sqlite3_errmsg(a->db) : "no memory");
        pimg_admin_free(a);
        return PIMG_ERR_IO;
    }
    *out = a;
    return PIMG_OK;
}

void pimg_admin_free(pimg_admin *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = 1;
    if (a->child > 0)
        kill(a->child, SIGTERM);
    int have = a->have_thread;
    pthread_mutex_unlock(&a->mu);
    if (have)
        pthread_join(a->thread, NULL);
    for (int i = 0; i < a->n_jobs; i++)
        cJSON_Delete(a->jobs[i].status);
    if (a->db)
        sqlite3_close(a->db);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

int pimg_admin_auth(const char *token, const char *authorization)
{
    if (!token || !*token)
        return 403;
    if (!authorization || strncasecmp(authorization, "Bearer ", 7))
        return 401;
    const char *given = authorization + 7;
    while (*given == ' ')
        given++;
    if (!*given)
        return 401;
    /* Constant time in the token's length: every byte is compared whatever the input. */
    size_t gl = strlen(given), tl = strlen(token);
    unsigned diff = gl != tl;
    for (size_t i = 0; i < tl; i++)
        diff |= (unsigned char)token[i] ^ (unsigned char)(i < gl ? given[i] : 0);
    return diff ? 403 : 0;
}

/* ---- feedback ---- */

static pimg_status parse_label(const char *json, size_t len, int w, int h, int *rotation, int *up, int box[4],
                               int *has_box, pimg_error *err)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    pimg_status st = PIMG_OK;
    if (!cJSON_IsObject(o)) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label must be a JSON object");
        goto out;
    }
    const cJSON *rot = cJSON_GetObjectItemCaseSensitive(o, "rotation");
    if (!cJSON_IsNumber(rot) || (rot->valueint != 0 && rot->valueint != 90 && rot->valueint != 180 && rot->valueint != 270) ||
        rot->valuedouble != rot->valueint) {
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label.rotation must be 0, 90, 180 or 270");
        goto out;
    }
    *rotation = rot->valueint;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "up");
    *up = 1;
    if (u) {
        if (!cJSON_IsNumber(u) || (u->valueint != 0 && u->valueint != 1)) {
            st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label.up must be 0 or 1");
            goto out;
        }
        *up = u->valueint;
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "box");
    *has_box = 0;
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
            box[i] = v->valueint;
        }
        if (box[0] < 0 || box[1] < 0 || box[0] >= box[2] || box[1] >= box[3] || box[2] > w || box[3] > h) {
            st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "label.box must satisfy 0 <= x0 < x1 <= %d, 0 <= y0 < y1 <= %d",
                                w, h);
            goto out;
        }
        *has_box = 1;
    }
out:
    cJSON_Delete(o);
    return st;
}

/* Writes data to dir/name durably: temporary file, fsync, rename, fsync of the folder. */
static pimg_status write_durably(const char *dir, const char *name, const void *data, size_t len, pimg_error *err)
{
    char tmp[PATH_MAX + 160], dst[PATH_MAX + 160];
    pathf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    pathf(dst, sizeof dst, "%s/%s", dir, name);
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
            close(fd);
            unlink(tmp);
            return pimg_error_set(err, PIMG_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) || close(fd) || rename(tmp, dst) || fsync_dir(dir)) {
        unlink(tmp);
        return pimg_error_set(err, PIMG_ERR_IO, "cannot store %s: %s", dst, strerror(errno));
    }
    return PIMG_OK;
}

pimg_status pimg_admin_feedback(pimg_admin *a, const void *img, size_t img_len, const char *label_json,
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
    int rotation = 0, up = 1, box[4] = {0}, has_box = 0;
    if ((st = parse_label(label_json, label_len, w, h, &rotation, &up, box, &has_box, err)))
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
    pathf(name, sizeof name, "%02x%02x%02x%02x%02x%02x%02x%02x.%s", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
             rnd[6], rnd[7], ext);
    if ((st = write_durably(a->feedback, name, img, img_len, err)))
        return st;
    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    pthread_mutex_lock(&a->mu);
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(a->db,
                                "INSERT INTO feedback(file,rotation,up,x0,y0,x1,y1,label,created) VALUES(?,?,?,?,?,?,?,?,?)",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(q, 2, rotation);
        sqlite3_bind_int(q, 3, up);
        for (int i = 0; i < 4; i++) {
            if (has_box)
                sqlite3_bind_int(q, 4 + i, box[i]);
            else
                sqlite3_bind_null(q, 4 + i);
        }
        sqlite3_bind_text(q, 8, label_json, (int)label_len, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 9, created, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(q);
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE)
        *id = sqlite3_last_insert_rowid(a->db);
    else
        pimg_error_set(err, PIMG_ERR_IO, "cannot record feedback: %s", sqlite3_errmsg(a->db));
    pthread_mutex_unlock(&a->mu);
    if (rc != SQLITE_DONE) {
        char path[PATH_MAX + 80];
        pathf(path, sizeof path, "%s/%s", a->feedback, name);
        unlink(path);
        return PIMG_ERR_IO;
    }
    return PIMG_OK;
}

int64_t pimg_admin_feedback_count(pimg_admin *a)
{
    int64_t n = -1;
    pthread_mutex_lock(&a->mu);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(a->db, "SELECT COUNT(*) FROM feedback", -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&a->mu);
    return n;
}

/* ---- retrain jobs ---- */

static job *find_job(pimg_admin *a, const char *id)
{
    for (int i = 0; i < a->n_jobs; i++)
        if (!strcmp(a->jobs[i].id, id))
            return &a->jobs[i];
    return NULL;
}

cJSON *pimg_admin_job(pimg_admin *a, const char *id)
{
    pthread_mutex_lock(&a->mu);
    job *j = find_job(a, id);
    cJSON *o = j ? cJSON_Duplicate(j->status, 1) : NULL;
    pthread_mutex_unlock(&a->mu);
    return o;
}

/* Replaces one field of a job's status (takes ownership of v). */
static void job_set(pimg_admin *a, const char *id, const char *key, cJSON *v)
{
    pthread_mutex_lock(&a->mu);
    job *j = find_job(a, id);
    if (j && v) {
        if (cJSON_GetObjectItemCaseSensitive(j->status, key))
            cJSON_ReplaceItemInObjectCaseSensitive(j->status, key, v);
        else
            cJSON_AddItemToObject(j->status, key, v);
    } else {
        cJSON_Delete(v);
    }
    pthread_mutex_unlock(&a->mu);
}

/* Runs exe with argv (NULL-terminated), stdout to out_path and stderr to log_path, niced and
 * bounded in time. Returns the exit code, 128+signal, or -1 when it could not start. */
static int run_tool(pimg_admin *a, char *const argv[], const char *out_path, const char *log_path)
{
    pthread_mutex_lock(&a->mu);
    if (a->stopping) {
        pthread_mutex_unlock(&a->mu);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL); /* the server blocks SIGTERM; the tool must not */
        setpriority(PRIO_PROCESS, 0, 10);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (o >= 0)
            dup2(o, STDOUT_FILENO);
        if (e >= 0)
            dup2(e, STDERR_FILENO);
        execv(a->exe, argv);
        _exit(127);
    }
    a->child = pid;
    pthread_mutex_unlock(&a->mu);
    if (pid < 0)
        return -1;
    int st = 0;
    time_t until = time(NULL) + JOB_TIMEOUT_S;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            break;
        if (time(NULL) > until)
            kill(pid, SIGKILL);
        usleep(100 * 1000);
    }
    pthread_mutex_lock(&a->mu);
    a->child = 0;
    pthread_mutex_unlock(&a->mu);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* tools print one JSON object (possibly after other lines): take the last line that parses */
    cJSON *best = NULL;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        if (cJSON_IsObject(o)) {
            cJSON_Delete(best);
            best = o;
        } else {
            cJSON_Delete(o);
        }
    }
    return best;
}

/* The held-out metric both evaluations share: the first of a fixed list of names found at the
 * top level or under "test". Higher is better for all of them. */
static const char *pick_metric(const cJSON *a, const cJSON *b, double *va, double *vb)
{
    static const char *names[] = {"accuracy", "score", "f1", "mean_iou", "iou", "map", "ap"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, names[i]);
        if (!cJSON_IsNumber(x))
            x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a, "test"), names[i]);
        const cJSON *y = b ? cJSON_GetObjectItemCaseSensitive(b, names[i]) : NULL;
        if (b && !cJSON_IsNumber(y))
            y = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b, "test"), names[i]);
        if (cJSON_IsNumber(x) && (!b || cJSON_IsNumber(y))) {
            *va = x->valuedouble;
            *vb = b ? y->valuedouble : 0;
            return names[i];
        }
    }
    return NULL;
}

/* Exports the feedback rows into train/ and test/ folders in the labels.csv format of the
 * data sets (images symlinked). Returns the counts through n_train / n_test. */
static int export_feedback(pimg_admin *a, const char *train_dir, const char *test_dir, int *n_train, int *n_test)
{
    *n_train = *n_test = 0;
    char p1[PATH_MAX + 32], p2[PATH_MAX + 32];
    pathf(p1, sizeof p1, "%s/labels.csv", train_dir);
    pathf(p2, sizeof p2, "%s/labels.csv", test_dir);
    FILE *f1 = fopen(p1, "w"), *f2 = fopen(p2, "w");
    if (!f1 || !f2) {
        if (f1)
            fclose(f1);
        if (f2)
            fclose(f2);
        return -1;
    }
    const char *hdr = "file,up,kind,rotation,x0,y0,x1,y1,license,source,description\n";
    fputs(hdr, f1);
    fputs(hdr, f2);
    char fb_abs[PATH_MAX];
    if (!realpath(a->feedback, fb_abs))
        pathf(fb_abs, sizeof fb_abs, "%s", a->feedback);
    pthread_mutex_lock(&a->mu);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(a->db, "SELECT id,file,up,rotation,x0,y0,x1,y1 FROM feedback ORDER BY id", -1, &q, NULL) == SQLITE_OK) {
        while (sqlite3_step(q) == SQLITE_ROW) {
            int test = sqlite3_column_int64(q, 0) % 5 == 0;
            const char *file = (const char *)sqlite3_column_text(q, 1);
            FILE *f = test ? f2 : f1;
            char src[PATH_MAX + 80], dst[PATH_MAX + 80];
            pathf(src, sizeof src, "%s/%s", fb_abs, file);
            pathf(dst, sizeof dst, "%s/%s", test ? test_dir : train_dir, file);
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
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&a->mu);
    int bad = fclose(f1) | fclose(f2);
    return bad ? -1 : 0;
}

static pimg_status copy_durably(const char *src, const char *dir, const char *name, pimg_error *err)
{
    FILE *f = fopen(src, "rb");
    if (!f)
        return pimg_error_set(err, PIMG_ERR_IO, "cannot read %s", src);
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got);
    fclose(f);
    pimg_status st = write_durably(dir, name, buf, n, err);
    free(buf);
    return st;
}

typedef struct {
    pimg_admin *a;
    char id[40];
    char model[16];
} job_arg;

static void *job_main(void *vp)
{
    job_arg *ja = vp;
    pimg_admin *a = ja->a;
    const char *id = ja->id, *model = ja->model;
    char dir[PATH_MAX + 64], train_dir[PATH_MAX + 80], test_dir[PATH_MAX + 80];
    char cand[PATH_MAX + 96], out[PATH_MAX + 96], log[PATH_MAX + 96], current[PATH_MAX + 32];
    char model_file[32], note[512] = "";
    int promoted = 0, n_train = 0, n_test = 0;
    pathf(model_file, sizeof model_file, "%s.svm", model);
    pathf(dir, sizeof dir, "%s/jobs/%s", a->state, id);
    pathf(train_dir, sizeof train_dir, "%s/train", dir);
    pathf(test_dir, sizeof test_dir, "%s/test", dir);
    pathf(cand, sizeof cand, "%s/candidate-%s", dir, model_file);
    pathf(log, sizeof log, "%s/tools.log", dir);
    pathf(current, sizeof current, "%s/%s", a->models, model_file);
    job_set(a, id, "state", cJSON_CreateString("running"));
    if (mkdir_p(train_dir) || mkdir_p(test_dir) || export_feedback(a, train_dir, test_dir, &n_train, &n_test)) {
        pathf(note, sizeof note, "cannot prepare %s", dir);
        goto done;
    }
    cJSON *items = cJSON_CreateObject();
    cJSON_AddNumberToObject(items, "train", n_train);
    cJSON_AddNumberToObject(items, "test", n_test);
    job_set(a, id, "items", items);
    if (n_train < 5 || n_test < 1) {
        pathf(note, sizeof note, "not enough feedback: %d train / %d held-out items (need 5 / 1)", n_train, n_test);
        goto done;
    }
    pathf(out, sizeof out, "%s/train.json", dir);
    char *targv[] = {a->exe, "train", (char *)model, "--data", train_dir, "--out", cand, NULL};
    int rc = run_tool(a, targv, out, log);
    job_set(a, id, "train", read_json(out));
    if (rc) {
        pathf(note, sizeof note, "pimg train %s exited %d%s (see %s)", model, rc, rc == 3 ? " (not implemented)" : "",
                 log);
        goto done;
    }
    pathf(out, sizeof out, "%s/eval-candidate.json", dir);
    char *eargv[] = {a->exe, "eval", (char *)model, "--data", test_dir, "--model", cand, NULL};
    rc = run_tool(a, eargv, out, log);
    cJSON *ec = read_json(out);
    job_set(a, id, "candidate", ec ? cJSON_Duplicate(ec, 1) : cJSON_CreateNull());
    if (rc || !ec) {
        pathf(note, sizeof note, "evaluating the candidate failed (exit %d, see %s)", rc, log);
        cJSON_Delete(ec);
        goto done;
    }
    cJSON *eu = NULL;
    if (access(current, R_OK) == 0) {
        pathf(out, sizeof out, "%s/eval-current.json", dir);
        char *cargv[] = {a->exe, "eval", (char *)model, "--data", test_dir, "--model", current, NULL};
        rc = run_tool(a, cargv, out, log);
        eu = rc ? NULL : read_json(out);
        job_set(a, id, "current", eu ? cJSON_Duplicate(eu, 1) : cJSON_CreateNull());
        if (!eu) {
            pathf(note, sizeof note, "evaluating the current model failed (exit %d); not promoting", rc);
            cJSON_Delete(ec);
            goto done;
        }
    }
    double vc = 0, vu = 0;
    const char *metric = pick_metric(ec, eu, &vc, &vu);
    cJSON_Delete(ec);
    cJSON_Delete(eu);
    if (!metric) {
        pathf(note, sizeof note, "no comparable metric (accuracy, score, f1, mean_iou, iou, map, ap) in the evaluations");
        goto done;
    }
    job_set(a, id, "metric", cJSON_CreateString(metric));
    if (eu && !(vc > vu)) {
        pathf(note, sizeof note, "candidate %s %.4f does not beat current %.4f", metric, vc, vu);
        goto done;
    }
    pimg_error err = {0};
    if (copy_durably(cand, a->models, model_file, &err)) {
        pathf(note, sizeof note, "promotion failed: %s", err.msg);
        goto done;
    }
    promoted = 1;
    pathf(note, sizeof note, "promoted: candidate %s %.4f vs current %s", metric, vc,
             eu ? "(see current)" : "none");
    if (a->promoted)
        a->promoted(a->promoted_ctx);
done:
    job_set(a, id, "promoted", cJSON_CreateBool(promoted));
    job_set(a, id, "note", cJSON_CreateString(note));
    job_set(a, id, "finished", cJSON_CreateNumber((double)time(NULL)));
    job_set(a, id, "state", cJSON_CreateString(promoted || strstr(note, "does not beat") ? "done" : "failed"));
    pthread_mutex_lock(&a->mu);
    a->running = 0;
    pthread_mutex_unlock(&a->mu);
    free(ja);
    return NULL;
}

pimg_status pimg_admin_retrain(pimg_admin *a, const char *options_json, size_t len, char *job_id, size_t n,
                               pimg_error *err)
{
    char model[16] = "orient";
    if (options_json && len) {
        cJSON *o = cJSON_ParseWithLength(options_json, len);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model");
        if (!cJSON_IsObject(o) || (m && !(cJSON_IsString(m) && (!strcmp(m->valuestring, "orient") ||
                                                                  !strcmp(m->valuestring, "detect"))))) {
            cJSON_Delete(o);
            return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "options must be a JSON object with optional \"model\": \"orient\" | \"detect\"");
        }
        if (m)
            pathf(model, sizeof model, "%s", m->valuestring);
        cJSON_Delete(o);
    }
    pthread_mutex_lock(&a->mu);
    if (a->running || a->stopping) {
        pthread_mutex_unlock(&a->mu);
        return pimg_error_set(err, PIMG_ERR_CANCELLED, "a retrain job is already running");
    }
    if (a->have_thread) { /* the previous job has finished (running == 0): reap its thread */
        pthread_join(a->thread, NULL);
        a->have_thread = 0;
    }
    job_arg *ja = calloc(1, sizeof *ja);
    if (!ja) {
        pthread_mutex_unlock(&a->mu);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    ja->a = a;
    pathf(ja->id, sizeof ja->id, "%lld-%d", (long long)time(NULL), ++a->next_job);
    pathf(ja->model, sizeof ja->model, "%s", model);
    if (a->n_jobs == MAX_JOBS) { /* forget the oldest */
        cJSON_Delete(a->jobs[0].status);
        memmove(&a->jobs[0], &a->jobs[1], sizeof a->jobs[0] * (MAX_JOBS - 1));
        a->n_jobs--;
    }
    job *j = &a->jobs[a->n_jobs++];
    pathf(j->id, sizeof j->id, "%s", ja->id);
    pathf(j->model, sizeof j->model, "%s", model);
    j->status = cJSON_CreateObject();
    cJSON_AddStringToObject(j->status, "job", j->id);
    cJSON_AddStringToObject(j->status, "model", model);
    cJSON_AddStringToObject(j->status, "state", "queued");
    cJSON_AddBoolToObject(j->status, "promoted", 0);
    cJSON_AddNumberToObject(j->status, "started", (double)time(NULL));
    if (pthread_create(&a->thread, NULL, job_main, ja)) {
        cJSON_Delete(j->status);
        a->n_jobs--;
        free(ja);
        pthread_mutex_unlock(&a->mu);
        return pimg_error_set(err, PIMG_ERR_INTERNAL, "cannot start the retrain thread");
    }
    a->have_thread = 1;
    a->running = 1;
    pathf(job_id, n, "%s", j->id);
    pthread_mutex_unlock(&a->mu);
    return PIMG_OK;
}
