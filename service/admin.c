/* admin.c — the admin API state: token check, the feedback store (lib/feedback) and retrain jobs.
 *
 * Retrain runs `pimg train MODEL` on 4/5 of the feedback (rows whose id is not a multiple of 5)
 * and `pimg eval MODEL` of both the candidate and the current model on the other fifth, as
 * subprocesses of this binary (niced, killed with the server). The candidate is promoted —
 * copied atomically into the models folder, then the server reloads — only when its held-out
 * metric is not worse than the current model's (or there is no current model). Each job's folder
 * under state_dir/jobs keeps the logs, the JSON outputs and status.json, written durably at every
 * step, so that a job's outcome outlives a restart; the in-memory list caches the latest jobs. */
#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
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

#include "feedback.h"
#include "fileio.h"

#define MAX_JOBS 32
#define JOB_TIMEOUT_S (20 * 60)

typedef struct {
    char id[40];
    char model[16];
    cJSON *status; /* owned; replaced as the job advances */
} job;

struct pimg_admin {
    char state[PATH_MAX], exe[PATH_MAX], models[PATH_MAX];
    pimg_feedback *fb; /* thread-safe on its own */
    pthread_mutex_t mu; /* jobs, running, child */
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

pimg_status pimg_admin_open(const char *state_dir, const char *exe, const char *models_dir,
                            pimg_admin_promoted_fn promoted, void *promoted_ctx, pimg_admin **out,
                            pimg_error *err)
{
    pimg_admin *a = calloc(1, sizeof *a);
    if (!a)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    pathf(a->state, sizeof a->state, "%s", state_dir);
    if (!exe || !realpath(exe, a->exe))
        pathf(a->exe, sizeof a->exe, "%s", exe ? exe : "pimg");
    pathf(a->models, sizeof a->models, "%s", models_dir);
    a->promoted = promoted;
    a->promoted_ctx = promoted_ctx;
    pthread_mutex_init(&a->mu, NULL);
    pimg_status st = pimg_feedback_open(state_dir, &a->fb, err);
    if (st) {
        pimg_admin_free(a);
        return st;
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
    pimg_feedback_close(a->fb);
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

pimg_status pimg_admin_feedback(pimg_admin *a, const void *img, size_t img_len, const char *label_json,
                                size_t label_len, uint64_t max_pixels, int64_t *id, pimg_error *err)
{
    return pimg_feedback_add(a->fb, img, img_len, label_json, label_len, max_pixels, id, err);
}

int64_t pimg_admin_feedback_count(pimg_admin *a)
{
    return pimg_feedback_count(a->fb);
}

/* ---- retrain jobs ---- */

static job *find_job(pimg_admin *a, const char *id)
{
    for (int i = 0; i < a->n_jobs; i++)
        if (!strcmp(a->jobs[i].id, id))
            return &a->jobs[i];
    return NULL;
}

/* Writes a job's status text to state_dir/jobs/ID/status.json. Best effort: the status in
 * memory stays right if the disk fails. One writer at a time: pimg_admin_retrain before it
 * starts the job thread, then only that thread, outside a->mu (its fsyncs must not hold up
 * status requests). */
static void job_persist(const pimg_admin *a, const char *id, const char *txt)
{
    char dir[PATH_MAX + 64];
    if (pathf(dir, sizeof dir, "%s/jobs/%s", a->state, id) < 0 || pimg_mkdir_p(dir))
        return;
    pimg_file_write_durably(dir, "status.json", txt, strlen(txt), NULL);
}

/* A JSON object from a file (the tools' stdout, a job's status), NULL when unreadable or not
 * an object. */
static cJSON *read_json(const char *path)
{
    cJSON *o = NULL;
    if (pimg_json_read(path, SIZE_MAX, &o, NULL))
        return NULL;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The status a job left on disk, for jobs no longer in memory (restart, or more than MAX_JOBS
 * since). A job that was still queued or running then was cut short by the restart. */
static cJSON *job_load(const pimg_admin *a, const char *id)
{
    /* ids are "<seconds>-<n>": anything else never names a job folder (no path tricks) */
    size_t n = strlen(id);
    if (!n || n >= sizeof ((job *)0)->id || strspn(id, "0123456789-") != n)
        return NULL;
    char path[PATH_MAX + 96];
    cJSON *o = NULL;
    if (pathf(path, sizeof path, "%s/jobs/%s/status.json", a->state, id) < 0 || !(o = read_json(path)))
        return NULL;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "state");
    if (cJSON_IsString(st) && (!strcmp(st->valuestring, "queued") || !strcmp(st->valuestring, "running"))) {
        cJSON_ReplaceItemInObjectCaseSensitive(o, "state", cJSON_CreateString("interrupted"));
        if (!cJSON_GetObjectItemCaseSensitive(o, "note"))
            cJSON_AddStringToObject(o, "note", "the server stopped before the job ended; start a new one");
    }
    return o;
}

cJSON *pimg_admin_job(pimg_admin *a, const char *id)
{
    pthread_mutex_lock(&a->mu);
    job *j = find_job(a, id);
    cJSON *o = j ? cJSON_Duplicate(j->status, 1) : job_load(a, id);
    pthread_mutex_unlock(&a->mu);
    return o;
}

/* Replaces one field of a job's status (takes ownership of v) and keeps it on disk. */
static void job_set(pimg_admin *a, const char *id, const char *key, cJSON *v)
{
    char *txt = NULL;
    pthread_mutex_lock(&a->mu);
    job *j = find_job(a, id);
    if (j && v) {
        if (cJSON_GetObjectItemCaseSensitive(j->status, key))
            cJSON_ReplaceItemInObjectCaseSensitive(j->status, key, v);
        else
            cJSON_AddItemToObject(j->status, key, v);
        txt = cJSON_PrintUnformatted(j->status);
    } else {
        cJSON_Delete(v);
    }
    pthread_mutex_unlock(&a->mu);
    if (txt)
        job_persist(a, id, txt);
    free(txt);
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

/* Promotion: the candidate model file replaces dir/name atomically and durably. */
static pimg_status copy_durably(const char *src, const char *dir, const char *name, pimg_error *err)
{
    void *buf = NULL;
    size_t n = 0;
    pimg_status st = pimg_file_read(src, &buf, &n, err);
    if (!st)
        st = pimg_file_write_durably(dir, name, buf, n, err);
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
    pimg_error xerr = {0};
    if (pimg_mkdir_p(train_dir) || pimg_mkdir_p(test_dir) ||
        pimg_feedback_export(a->fb, train_dir, test_dir, &n_train, &n_test, &xerr)) {
        pathf(note, sizeof note, "cannot prepare %s: %s", dir, xerr.msg[0] ? xerr.msg : strerror(errno));
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
    /* "not worse" is enough: new feedback is folded in at no loss on the held-out items */
    if (eu && !(vc >= vu)) {
        pathf(note, sizeof note, "candidate %s %.4f is worse than current %.4f", metric, vc, vu);
        goto done;
    }
    /* The model card beside the weights (feature scaling, decision threshold) belongs to them:
     * card first, then weights; the reload after both sees a matching pair. */
    pimg_error err = {0};
    char cand_card[PATH_MAX + 96], card_file[32];
    pathf(cand_card, sizeof cand_card, "%.*s.json", (int)(strlen(cand) - 4), cand);
    pathf(card_file, sizeof card_file, "%s.json", model);
    if ((access(cand_card, R_OK) == 0 && copy_durably(cand_card, a->models, card_file, &err)) ||
        copy_durably(cand, a->models, model_file, &err)) {
        pathf(note, sizeof note, "promotion failed: %s", err.msg);
        goto done;
    }
    promoted = 1;
    if (eu)
        pathf(note, sizeof note, "promoted: candidate %s %.4f is not worse than current %.4f", metric, vc, vu);
    else
        pathf(note, sizeof note, "promoted: candidate %s %.4f (no current model)", metric, vc);
    if (a->promoted)
        a->promoted(a->promoted_ctx);
done:
    job_set(a, id, "promoted", cJSON_CreateBool(promoted));
    job_set(a, id, "note", cJSON_CreateString(note));
    job_set(a, id, "finished", cJSON_CreateNumber((double)time(NULL)));
    job_set(a, id, "state", cJSON_CreateString(promoted || strstr(note, "is worse than") ? "done" : "failed"));
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
    /* written before the job thread exists, so it cannot race the thread's own writes */
    char *txt = cJSON_PrintUnformatted(j->status);
    if (txt)
        job_persist(a, j->id, txt);
    free(txt);
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
