/* admin_test.c — the admin API (RELIABILITY.md #11, #12): off without a token (403); Bearer
 * only, constant-time compare, wrong/prefix/query tokens refused (401/403); feedback is
 * validated and stored durably — after kill -9 mid-ingest every 201-acknowledged item is
 * intact; retrain jobs run in the background and report their outcome, also after a restart. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common.h"
#include "fileio.h"
#include "../unit/testutil.h"

#define TOKEN "s3cret-token-0123456789"

static char state_dir[128], models_dir[160];
static char env_token[] = "PIMG_ADMIN_TOKEN=" TOKEN;

/* A retrain may promote its candidate into the models folder: the server gets a copy of the
 * shipped models inside the state folder, never the project's own. */
static void start_admin(test_server *ts)
{
    snprintf(models_dir, sizeof models_dir, "%s-models", state_dir);
    char cmd[640];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s && cp models/* %s/", models_dir, models_dir,
             models_dir);
    ck_assert_int_eq(system(cmd), 0);
    const char *args[] = {"--state-dir", state_dir, "--models", models_dir, NULL};
    const char *env[] = {env_token, NULL};
    ck_assert_msg(ts_start(ts, args, env) == 0, "server did not start");
}

static long admin_req(const test_server *ts, const char *method, const char *path, const char *auth,
                      const char *ctype, const void *body, size_t len, http_resp *r)
{
    char url[256], a[256], c[256];
    snprintf(url, sizeof url, "%s%s", ts->base, path);
    const char *h[3] = {NULL, NULL, NULL};
    int n = 0;
    if (auth) {
        snprintf(a, sizeof a, "Authorization: %s", auth);
        h[n++] = a;
    }
    if (ctype) {
        snprintf(c, sizeof c, "Content-Type: %s", ctype);
        h[n++] = c;
    }
    return http_req(method, url, h, body, len, 0, r);
}

/* multipart body with an image part and (if label) a label part */
static size_t feedback_body(char *out, size_t cap, const void *img, size_t n, const char *label)
{
    size_t o = (size_t)snprintf(out, cap, "--fb\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
                                          "Content-Type: image/jpeg\r\n\r\n");
    memcpy(out + o, img, n);
    o += n;
    if (label)
        o += (size_t)snprintf(out + o, cap - o, "\r\n--fb\r\nContent-Disposition: form-data; name=\"label\"\r\n\r\n%s", label);
    o += (size_t)snprintf(out + o, cap - o, "\r\n--fb--\r\n");
    return o;
}

static void fresh_state(void)
{
    snprintf(state_dir, sizeof state_dir, "/tmp/pimg-admin-test-%d", (int)getpid());
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", state_dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(disabled_without_token)
{
    test_server ts;
    ck_assert(ts_start(&ts, NULL, NULL) == 0);
    http_resp r;
    ck_assert_int_eq(admin_req(&ts, "GET", "/admin/models", "Bearer anything", NULL, NULL, 0, &r), 403);
    ck_assert(is_json_error(&r, "admin_disabled"));
    http_resp_free(&r);
    ck_assert_int_eq(admin_req(&ts, "POST", "/admin/retrain", NULL, NULL, "", 0, &r), 403);
    http_resp_free(&r);
    ck_assert_int_eq(ts_stop(&ts, 10000), 0);
}
END_TEST

START_TEST(bearer_auth)
{
    fresh_state();
    test_server ts;
    start_admin(&ts);
    static const struct {
        const char *auth;
        const char *path;
        long status;
    } cases[] = {
        {NULL, "/admin/models", 401},
        {"Basic czNjcmV0", "/admin/models", 401},
        {"Bearer ", "/admin/models", 401},
        {"Bearer wrong", "/admin/models", 403},
        {"Bearer s3cret", "/admin/models", 403},               /* prefix */
        {"Bearer " TOKEN "X", "/admin/models", 403},           /* extension */
        {NULL, "/admin/models?token=" TOKEN, 401},             /* token in the query is ignored */
        {NULL, "/admin/models?access_token=" TOKEN, 401},
        {"bearer " TOKEN, "/admin/models", 200},
        {"Bearer " TOKEN, "/admin/nope", 404},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        http_resp r;
        long st = admin_req(&ts, "GET", cases[i].path, cases[i].auth, NULL, NULL, 0, &r);
        ck_assert_msg(st == cases[i].status, "case %zu (%s %s): %ld %s", i, cases[i].auth ? cases[i].auth : "-",
                      cases[i].path, st, r.body);
        if (st != 200)
            ck_assert(is_json_error(&r, NULL));
        http_resp_free(&r);
    }
    http_resp r;
    ck_assert_int_eq(admin_req(&ts, "GET", "/admin/models", "Bearer " TOKEN, NULL, NULL, 0, &r), 200);
    cJSON *o = cJSON_Parse(r.body);
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(o, "version")));
    ck_assert(cJSON_IsObject(cJSON_GetObjectItem(o, "models")));
    ck_assert_int_eq(cJSON_GetObjectItem(o, "feedback_items")->valueint, 0);
    cJSON_Delete(o);
    http_resp_free(&r);
    ck_assert_int_eq(admin_req(&ts, "GET", "/admin/feedback", "Bearer " TOKEN, NULL, NULL, 0, &r), 405);
    ck_assert_str_eq(r.allow, "POST");
    http_resp_free(&r);
    ck_assert_int_eq(ts_stop(&ts, 10000), 0);
}
END_TEST

START_TEST(feedback_validation_and_retrain_job)
{
    fresh_state();
    test_server ts;
    start_admin(&ts);
    size_t n;
    void *jpg = make_image("jpg", 160, 120, &n);
    size_t cap = n + 4096;
    char *body = malloc(cap);
    http_resp r;
    static const struct {
        const char *label;
        long status;
        const char *code;
    } bad[] = {
        {NULL, 400, "missing_label"},
        {"not json", 400, "bad_input"},
        {"{\"rotation\":45}", 400, "bad_input"},
        {"{\"box\":[1,2,3,4]}", 400, "bad_input"},
        {"{\"rotation\":90,\"box\":[10,10,5,20]}", 400, "bad_input"},
        {"{\"rotation\":90,\"box\":[0,0,161,120]}", 400, "bad_input"}, /* outside the 160x120 image */
        {"{\"rotation\":0,\"up\":2}", 400, "bad_input"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t bl = feedback_body(body, cap, jpg, n, bad[i].label);
        long st = admin_req(&ts, "POST", "/admin/feedback", "Bearer " TOKEN, "multipart/form-data; boundary=fb", body, bl, &r);
        ck_assert_msg(st == bad[i].status && is_json_error(&r, bad[i].code), "label %s: %ld %s", bad[i].label, st, r.body);
        http_resp_free(&r);
    }
    size_t bl = feedback_body(body, cap, "garbage", 7, "{\"rotation\":0}");
    ck_assert_int_eq(admin_req(&ts, "POST", "/admin/feedback", "Bearer " TOKEN, "multipart/form-data; boundary=fb", body, bl, &r), 400);
    http_resp_free(&r);
    ck_assert_int_eq(admin_req(&ts, "POST", "/admin/feedback", "Bearer " TOKEN, "image/jpeg", jpg, n, &r), 415);
    http_resp_free(&r);
    /* seven good items: ids 1..7, id 5 is held out */
    for (int i = 1; i <= 7; i++) {
        char label[96];
        snprintf(label, sizeof label, "{\"rotation\":%d,\"box\":[10,20,150,110]}", (i % 4) * 90);
        bl = feedback_body(body, cap, jpg, n, label);
        ck_assert_int_eq(admin_req(&ts, "POST", "/admin/feedback", "Bearer " TOKEN, "multipart/form-data; boundary=fb", body, bl, &r), 201);
        cJSON *o = cJSON_Parse(r.body);
        ck_assert_int_eq(cJSON_GetObjectItem(o, "id")->valueint, i);
        cJSON_Delete(o);
        http_resp_free(&r);
    }
    ck_assert_int_eq(admin_req(&ts, "POST", "/admin/retrain", "Bearer " TOKEN, "application/json", "{\"model\":\"bogus\"}", 17, &r), 400);
    http_resp_free(&r);
    ck_assert_int_eq(admin_req(&ts, "POST", "/admin/retrain", "Bearer " TOKEN, "text/plain", "x", 1, &r), 415);
    http_resp_free(&r);
    ck_assert_int_eq(admin_req(&ts, "POST", "/admin/retrain", "Bearer " TOKEN, "application/json", "{\"model\":\"orient\"}", 18, &r), 202);
    cJSON *o = cJSON_Parse(r.body);
    char job[64], path[128];
    snprintf(job, sizeof job, "%s", cJSON_GetObjectItem(o, "job")->valuestring);
    cJSON_Delete(o);
    http_resp_free(&r);
    snprintf(path, sizeof path, "/admin/retrain/%s", job);
    /* the job runs `pimg train orient` on the exported feedback; wait for its outcome */
    const char *state = NULL;
    cJSON *js = NULL;
    for (int i = 0; i < 600; i++) {
        ck_assert_int_eq(admin_req(&ts, "GET", path, "Bearer " TOKEN, NULL, NULL, 0, &r), 200);
        cJSON_Delete(js);
        js = cJSON_Parse(r.body);
        http_resp_free(&r);
        state = cJSON_GetObjectItem(js, "state")->valuestring;
        if (strcmp(state, "queued") && strcmp(state, "running"))
            break;
        usleep(100 * 1000);
    }
    /* train and both evaluations ran; the rule decided (promoted or "is worse than") */
    ck_assert_msg(!strcmp(state, "done"), "job state %s: %s", state, cJSON_GetObjectItem(js, "note")->valuestring);
    char final_state[16];
    snprintf(final_state, sizeof final_state, "%s", state);
    ck_assert(cJSON_IsBool(cJSON_GetObjectItem(js, "promoted")));
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(js, "note")));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(js, "candidate"), "accuracy")));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(js, "current"), "accuracy")));
    ck_assert(cJSON_IsObject(cJSON_GetObjectItem(js, "train")));
    /* promoted exactly when the served model file is now the candidate */
    char cand_path[300], served_path[300];
    snprintf(cand_path, sizeof cand_path, "%s/jobs/%s/candidate-orient.svm", state_dir, job);
    snprintf(served_path, sizeof served_path, "%s/orient.svm", models_dir);
    size_t cand_len, served_len;
    char *cand = read_file(cand_path, &cand_len), *served = read_file(served_path, &served_len);
    ck_assert_ptr_nonnull(cand);
    ck_assert_ptr_nonnull(served);
    int same = cand_len == served_len && !memcmp(cand, served, cand_len);
    ck_assert_int_eq(same, cJSON_IsTrue(cJSON_GetObjectItem(js, "promoted")));
    free(cand);
    free(served);
    /* and its model card (feature scaling, threshold) went with it */
    snprintf(cand_path, sizeof cand_path, "%s/jobs/%s/candidate-orient.json", state_dir, job);
    snprintf(served_path, sizeof served_path, "%s/orient.json", models_dir);
    cand = read_file(cand_path, &cand_len);
    served = read_file(served_path, &served_len);
    ck_assert_ptr_nonnull(cand);
    ck_assert_ptr_nonnull(served);
    ck_assert_int_eq(cand_len == served_len && !memcmp(cand, served, cand_len),
                     cJSON_IsTrue(cJSON_GetObjectItem(js, "promoted")));
    free(cand);
    free(served);
    if (cJSON_IsTrue(cJSON_GetObjectItem(js, "promoted"))) {
        /* the server reloaded the pair and still analyses */
        size_t jn;
        void *probe = make_image("jpg", 160, 120, &jn);
        char url[256];
        snprintf(url, sizeof url, "%s/analyze", ts.base);
        const char *h[] = {"Content-Type: image/jpeg", NULL};
        ck_assert_int_eq(http_req("POST", url, h, probe, jn, 0, &r), 200);
        http_resp_free(&r);
        free(probe);
    }
    cJSON *items = cJSON_GetObjectItem(js, "items");
    ck_assert_int_eq(cJSON_GetObjectItem(items, "train")->valueint, 6);
    ck_assert_int_eq(cJSON_GetObjectItem(items, "test")->valueint, 1);
    fprintf(stderr, "retrain job: %s / %s\n", state, cJSON_GetObjectItem(js, "note")->valuestring);
    cJSON_Delete(js);
    /* exported in the data sets' labels.csv format */
    char csv[256];
    snprintf(csv, sizeof csv, "%s/jobs/%s/train/labels.csv", state_dir, job);
    size_t cl;
    char *text = read_file(csv, &cl);
    ck_assert_ptr_nonnull(text);
    ck_assert(!strncmp(text, "file,up,kind,rotation,x0,y0,x1,y1", 33));
    free(text);
    ck_assert_int_eq(admin_req(&ts, "GET", "/admin/retrain/nope", "Bearer " TOKEN, NULL, NULL, 0, &r), 404);
    http_resp_free(&r);
    free(body);
    free(jpg);
    ck_assert_int_eq(ts_stop(&ts, 10000), 0);

    /* A restarted server still answers for the job, from the status kept in its folder; a job
     * that was running when its server stopped reads "interrupted". */
    char fake[256];
    snprintf(fake, sizeof fake, "%s/jobs/12-3", state_dir);
    ck_assert_int_eq(pimg_mkdir_p(fake), 0);
    char status_path[300];
    snprintf(status_path, sizeof status_path, "%s/status.json", fake);
    FILE *f = fopen(status_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"job\":\"12-3\",\"model\":\"orient\",\"state\":\"running\",\"promoted\":false}", f);
    fclose(f);
    start_admin(&ts);
    ck_assert_int_eq(admin_req(&ts, "GET", path, "Bearer " TOKEN, NULL, NULL, 0, &r), 200);
    cJSON *again = cJSON_Parse(r.body);
    http_resp_free(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(again, "state")->valuestring, final_state);
    ck_assert_str_eq(cJSON_GetObjectItem(again, "job")->valuestring, job);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(again, "items"), "train")->valueint, 6);
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(again, "note")));
    cJSON_Delete(again);
    ck_assert_int_eq(admin_req(&ts, "GET", "/admin/retrain/12-3", "Bearer " TOKEN, NULL, NULL, 0, &r), 200);
    again = cJSON_Parse(r.body);
    http_resp_free(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(again, "state")->valuestring, "interrupted");
    cJSON_Delete(again);
    ck_assert_int_eq(admin_req(&ts, "GET", "/admin/retrain/..%2F..%2Fetc", "Bearer " TOKEN, NULL, NULL, 0, &r), 404);
    http_resp_free(&r);
    ck_assert_int_eq(ts_stop(&ts, 10000), 0);
}
END_TEST

typedef struct {
    test_server *ts;
    int acked[200];
    int n_acked;
    int stop;
} ingest;

static void *ingest_main(void *vp)
{
    ingest *g = vp;
    size_t n;
    void *jpg = make_image("jpg", 200, 150, &n);
    size_t cap = n + 4096;
    char *body = malloc(cap);
    for (int i = 0; i < 200 && !__atomic_load_n(&g->stop, __ATOMIC_SEQ_CST); i++) {
        size_t bl = feedback_body(body, cap, jpg, n, "{\"rotation\":180,\"box\":null}");
        http_resp r;
        if (admin_req(g->ts, "POST", "/admin/feedback", "Bearer " TOKEN, "multipart/form-data; boundary=fb", body, bl, &r) == 201) {
            cJSON *o = cJSON_Parse(r.body);
            g->acked[g->n_acked++] = cJSON_GetObjectItem(o, "id")->valueint;
            cJSON_Delete(o);
        }
        http_resp_free(&r);
    }
    free(body);
    free(jpg);
    return NULL;
}

START_TEST(acknowledged_feedback_survives_kill_9)
{
    fresh_state();
    test_server ts;
    start_admin(&ts);
    static ingest g;
    g.ts = &ts;
    pthread_t th;
    pthread_create(&th, NULL, ingest_main, &g);
    while (__atomic_load_n(&g.n_acked, __ATOMIC_SEQ_CST) < 15)
        usleep(2000);
    kill(ts.pid, SIGKILL); /* mid-ingest */
    waitpid(ts.pid, NULL, 0);
    ts.pid = -ts.pid;
    __atomic_store_n(&g.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(th, NULL);
    ck_assert_int_ge(g.n_acked, 15);
    /* every acknowledged row and its file are there (checked offline, then via a restart) */
    char db[256];
    snprintf(db, sizeof db, "%s/feedback.db", state_dir);
    sqlite3 *h = NULL;
    ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (int i = 0; i < g.n_acked; i++) {
        sqlite3_stmt *q = NULL;
        ck_assert_int_eq(sqlite3_prepare_v2(h, "SELECT file, rotation FROM feedback WHERE id = ?", -1, &q, NULL), SQLITE_OK);
        sqlite3_bind_int(q, 1, g.acked[i]);
        ck_assert_msg(sqlite3_step(q) == SQLITE_ROW, "acknowledged id %d lost", g.acked[i]);
        ck_assert_int_eq(sqlite3_column_int(q, 1), 180);
        char path[512];
        snprintf(path, sizeof path, "%s/feedback/%s", state_dir, (const char *)sqlite3_column_text(q, 0));
        size_t len;
        unsigned char *img = read_file(path, &len);
        ck_assert_msg(img && len > 100 && img[0] == 0xFF && img[1] == 0xD8, "image of id %d missing or torn", g.acked[i]);
        free(img);
        sqlite3_finalize(q);
    }
    sqlite3_close(h);
    test_server ts2;
    start_admin(&ts2);
    http_resp r;
    ck_assert_int_eq(admin_req(&ts2, "GET", "/admin/models", "Bearer " TOKEN, NULL, NULL, 0, &r), 200);
    cJSON *o = cJSON_Parse(r.body);
    ck_assert_int_ge(cJSON_GetObjectItem(o, "feedback_items")->valueint, g.n_acked);
    cJSON_Delete(o);
    http_resp_free(&r);
    ck_assert_int_eq(ts_stop(&ts2, 10000), 0);
    fprintf(stderr, "kill -9 mid-ingest: %d acknowledged, all intact\n", g.n_acked);
    unlink(ts.log_path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service_admin");
    TCase *tc = tcase_create("admin");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, disabled_without_token);
    tcase_add_test(tc, bearer_auth);
    tcase_add_test(tc, feedback_validation_and_retrain_job);
    tcase_add_test(tc, acknowledged_feedback_survives_kill_9);
    suite_add_tcase(s, tc);
    int rc = pimg_test_run(s, 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/pimg-admin-test-*");
    (void)!system(cmd);
    return rc;
}
