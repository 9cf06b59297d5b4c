/* shutdown_test.c — graceful drain (RELIABILITY.md #9): SIGTERM while jobs run and wait turns
 * /readyz to 503 and refuses new image work with 503, yet every accepted request gets its full
 * answer, and the process exits 0. Also: SIGHUP reloads the models without dropping requests. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "../unit/testutil.h"

enum { N = 20 }; /* RELIABILITY.md #9: SIGTERM with 20 jobs accepted */

typedef struct {
    char url[128];
    void *body;
    size_t len;
    http_resp resp[N];
} load;

static void *run_load(void *vp)
{
    load *l = vp;
    const char *h[] = {"Content-Type: image/jpeg", NULL};
    http_parallel("POST", l->url, h, l->body, l->len, N, 60000, l->resp);
    return NULL;
}

static int metric(const char *text, const char *name)
{
    const char *p = strstr(text, name);
    return p ? atoi(p + strlen(name)) : 0;
}

/* Waits until the server has accepted `want` requests (running, queued or done, from
 * /metrics); returns how many were still running or queued then, -1 on timeout. */
static int wait_accepted(test_server *ts, int want)
{
    double until = pimg_clock_ms() + 10000;
    while (pimg_clock_ms() < until) {
        http_resp r;
        if (http_get(ts, "/metrics", &r) == 200) {
            int pending = metric(r.body, "\npimg_queue_depth ") + metric(r.body, "\npimg_in_flight ");
            int done = metric(r.body, "pimg_requests_total{endpoint=\"enhance\",status=\"200\"} ");
            http_resp_free(&r);
            if (pending + done >= want)
                return pending;
        } else {
            http_resp_free(&r);
        }
        usleep(5000);
    }
    return -1;
}

START_TEST(sigterm_drains_accepted_work)
{
    test_server ts;
    const char *args[] = {"--workers", "2", "--queue", "32", "--drain-timeout", "120", NULL};
    ck_assert(ts_start(&ts, args, NULL) == 0);
    static load l;
    snprintf(l.url, sizeof l.url, "%s/enhance", ts.base);
    l.body = make_image("jpg", 2400, 1600, &l.len);
    pthread_t th;
    pthread_create(&th, NULL, run_load, &l);
    /* SIGTERM once all N are accepted and at least two still wait or run */
    ck_assert_int_ge(wait_accepted(&ts, N), 2);
    kill(ts.pid, SIGTERM);
    usleep(50 * 1000);
    http_resp r;
    ck_assert_int_eq(http_get(&ts, "/readyz", &r), 503);
    ck_assert(is_json_error(&r, "not_ready"));
    http_resp_free(&r);
    ck_assert_int_eq(http_get(&ts, "/healthz", &r), 200);
    http_resp_free(&r);
    ck_assert_int_eq(http_post(&ts, "/enhance", "image/jpeg", l.body, l.len, &r), 503);
    ck_assert(is_json_error(&r, "draining"));
    http_resp_free(&r);
    pthread_join(th, NULL);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(l.resp[i].status == 200, "request %d: %ld (curl %d) %s", i, l.resp[i].status,
                      l.resp[i].curl_code, l.resp[i].body);
        ck_assert(l.resp[i].len > 10000 && !memcmp(l.resp[i].body, "\xff\xd8\xff", 3));
        ck_assert(!memcmp(l.resp[i].body + l.resp[i].len - 2, "\xff\xd9", 2)); /* complete JPEG */
        http_resp_free(&l.resp[i]);
    }
    ck_assert_int_eq(ts_stop(&ts, 30000), 0);
    free(l.body);
}
END_TEST

START_TEST(sighup_reloads_models_and_keeps_serving)
{
    test_server ts;
    ck_assert(ts_start(&ts, NULL, NULL) == 0);
    size_t n;
    void *jpg = make_image("jpg", 320, 240, &n);
    for (int i = 0; i < 3; i++) {
        kill(ts.pid, SIGHUP);
        http_resp r;
        ck_assert_int_eq(http_post(&ts, "/enhance", "image/jpeg", jpg, n, &r), 200);
        http_resp_free(&r);
    }
    usleep(700 * 1000); /* the main loop handles signals every 0.5 s */
    ck_assert(ts_alive(&ts));
    http_resp r;
    ck_assert_int_eq(http_get(&ts, "/readyz", &r), 200);
    http_resp_free(&r);
    FILE *f = fopen(ts.log_path, "r");
    char line[1024];
    int reloads = 0;
    while (f && fgets(line, sizeof line, f))
        reloads += strstr(line, "\"event\":\"models_reload\"") != NULL;
    if (f)
        fclose(f);
    ck_assert_int_ge(reloads, 1);
    free(jpg);
    ck_assert_int_eq(ts_stop(&ts, 10000), 0);
}
END_TEST

START_TEST(sigterm_when_idle_exits_0)
{
    test_server ts;
    ck_assert(ts_start(&ts, NULL, NULL) == 0);
    double t0 = pimg_clock_ms();
    ck_assert_int_eq(ts_stop(&ts, 10000), 0);
    ck_assert(pimg_clock_ms() - t0 < 2000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service_shutdown");
    TCase *tc = tcase_create("shutdown");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sigterm_drains_accepted_work);
    tcase_add_test(tc, sighup_reloads_models_and_keeps_serving);
    tcase_add_test(tc, sigterm_when_idle_exits_0);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
