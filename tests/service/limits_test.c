/* limits_test.c — load shedding and limits (RELIABILITY.md #1, #4-#8): a flood above
 * workers+queue gets only 200s and 503s with Retry-After; per-request deadline → JSON 503/504
 * with the worker reused; upload memory budget; connection limit; RSS stays flat under pixel
 * bombs. Every test starts its own server with the limits it needs. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "../unit/testutil.h"

static void start(test_server *ts, const char *const *args)
{
    ck_assert_msg(ts_start(ts, args, NULL) == 0, "server did not start");
}

static void assert_serves(test_server *ts, const char *path)
{
    size_t n;
    void *jpg = make_image("jpg", 120, 90, &n);
    http_resp r;
    long st = http_post(ts, path, "image/jpeg", jpg, n, &r);
    ck_assert_msg(st == 200, "normal request after the test: %ld %s", st, r.body);
    http_resp_free(&r);
    free(jpg);
}

START_TEST(flood_gives_only_200_and_503)
{
    test_server ts;
    const char *args[] = {"--workers", "1", "--queue", "2", NULL};
    start(&ts, args);
    size_t n;
    void *jpg = make_image("jpg", 1600, 1200, &n);
    enum { N = 1 + 2 + 50 };
    static http_resp resp[N];
    char url[128];
    snprintf(url, sizeof url, "%s/enhance", ts.base);
    const char *h[] = {"Content-Type: image/jpeg", NULL};
    http_parallel("POST", url, h, jpg, n, N, 60000, resp);
    int ok = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        if (resp[i].status == 200) {
            ck_assert(resp[i].len > 1000 && !memcmp(resp[i].body, "\xff\xd8\xff", 3));
            ok++;
        } else if (resp[i].status == 503) {
            ck_assert_msg(is_json_error(&resp[i], NULL), "503 without JSON: %s", resp[i].body);
            ck_assert_msg(atoi(resp[i].retry_after) >= 1, "503 without Retry-After");
            busy++;
        } else {
            ck_abort_msg("request %d: status %ld (curl %d) %s", i, resp[i].status, resp[i].curl_code, resp[i].body);
        }
        http_resp_free(&resp[i]);
    }
    ck_assert_int_eq(ok + busy, N);
    /* the queue's two places were taken (a third job runs if the worker dequeued in time) */
    ck_assert_int_ge(ok, 2);
    ck_assert_int_ge(busy, 1);
    fprintf(stderr, "flood: %d x 200, %d x 503\n", ok, busy);
    http_resp r;
    ck_assert_int_eq(http_get(&ts, "/metrics", &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "pimg_requests_total{endpoint=\"enhance\",status=\"503\"}"));
    ck_assert_ptr_null(strstr(r.body, "pimg_rejected_total{reason=\"queue_full\"} 0\n"));
    http_resp_free(&r);
    ck_assert_int_eq(http_get(&ts, "/readyz", &r), 200);
    http_resp_free(&r);
    assert_serves(&ts, "/enhance");
    free(jpg);
    ck_assert_int_eq(ts_stop(&ts, 10000), 0);
}
END_TEST

START_TEST(deadline_gives_json_timeout_and_worker_is_reused)
{
    test_server ts;
    const char *args[] = {"--workers", "1", "--request-timeout", "0.01", NULL};
    start(&ts, args);
    size_t n;
    void *jpg = make_image("jpg", 2400, 1800, &n);
    for (int i = 0; i < 3; i++) {
        http_resp r;
        long st = http_post(&ts, "/enhance", "image/jpeg", jpg, n, &r);
        ck_assert_msg(st == 504 || st == 503, "status %ld %s", st, r.body);
        ck_assert(is_json_error(&r, "timeout"));
        http_resp_free(&r);
    }
    http_resp r;
    ck_assert_int_eq(http_get(&ts, "/healthz", &r), 200);
    http_resp_free(&r);
    /* the worker is free again (it leaves the pool's running count just after answering) */
    int idle = 0;
    for (int i = 0; i < 100 && !idle; i++) {
        ck_assert_int_eq(http_get(&ts, "/metrics", &r), 200);
        ck_assert_ptr_nonnull(strstr(r.body, "pimg_rejected_total{reason=\"timeout\"} 3\n"));
        idle = strstr(r.body, "\npimg_in_flight 0\n") != NULL;
        http_resp_free(&r);
        if (!idle)
            usleep(10000);
    }
    ck_assert(idle);
    free(jpg);
    ck_assert_int_eq(ts_stop(&ts, 10000), 0);
}
END_TEST

START_TEST(upload_memory_budget)
{
    test_server ts;
    const char *args[] = {"--max-body", "1M", "--max-buffered", "1M", NULL};
    start(&ts, args);
    /* A slow upload holds its declared 800 KB while it arrives... */
    int fd = ts_connect(ts.port);
    const char hdr[] = "POST /enhance HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 800000\r\n\r\n";
    ck_assert_int_eq(send(fd, hdr, sizeof hdr - 1, MSG_NOSIGNAL), (ssize_t)(sizeof hdr - 1));
    usleep(200 * 1000);
    /* ...so a second one that would exceed the 1 MiB budget is refused at once. */
    char *body = calloc(1, 800000);
    http_resp r;
    ck_assert_int_eq(http_post(&ts, "/enhance", "image/jpeg", body, 800000, &r), 503);
    ck_assert(is_json_error(&r, "busy"));
    ck_assert_str_eq(r.retry_after, "1");
    http_resp_free(&r);
    close(fd);
    usleep(200 * 1000);
    /* budget released when the connection went away */
    ck_assert_int_eq(http_post(&ts, "/enhance", "image/jpeg", body, 800000, &r), 400);
    http_resp_free(&r);
    ck_assert_int_eq(http_get(&ts, "/metrics", &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "pimg_buffered_bytes 0\n"));
    http_resp_free(&r);
    free(body);
    ck_assert_int_eq(ts_stop(&ts, 10000), 0);
}
END_TEST

START_TEST(connection_limit)
{
    test_server ts;
    const char *args[] = {"--conn-limit", "4", NULL};
    start(&ts, args);
    int fds[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_ge(fds[i] = ts_connect(ts.port), 0);
    usleep(200 * 1000);
    /* at the limit MHD stops accepting: the 5th client waits in the backlog, unserved */
    char url[128];
    snprintf(url, sizeof url, "%s/healthz", ts.base);
    http_resp r;
    http_req("GET", url, NULL, NULL, 0, 1000, &r);
    ck_assert_msg(r.status != 200, "5th connection was served");
    http_resp_free(&r);
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    usleep(200 * 1000);
    ck_assert_int_eq(http_get(&ts, "/healthz", &r), 200);
    http_resp_free(&r);
    ck_assert_int_eq(ts_stop(&ts, 10000), 0);
}
END_TEST

START_TEST(pixel_bombs_keep_rss_flat)
{
    test_server ts;
    start(&ts, NULL);
    size_t n;
    unsigned char *jpg = make_image("jpg", 64, 48, &n);
    for (size_t i = 2; i + 9 < n; i++)
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
            jpg[i + 5] = 0xFF, jpg[i + 6] = 0xDC, jpg[i + 7] = 0xFF, jpg[i + 8] = 0xDC;
            break;
        }
    assert_serves(&ts, "/analyze");
    double before = rss_mib(ts.pid);
    for (int i = 0; i < 50; i++) {
        http_resp r;
        ck_assert_int_eq(http_post(&ts, "/enhance", "image/jpeg", jpg, n, &r), 413);
        http_resp_free(&r);
    }
    double after = rss_mib(ts.pid);
    fprintf(stderr, "pixel bombs: RSS %.1f -> %.1f MiB\n", before, after);
    ck_assert_msg(after - before < 20, "RSS grew from %.1f to %.1f MiB", before, after);
    free(jpg);
    ck_assert_int_eq(ts_stop(&ts, 10000), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service_limits");
    TCase *tc = tcase_create("limits");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, flood_gives_only_200_and_503);
    tcase_add_test(tc, deadline_gives_json_timeout_and_worker_is_reused);
    tcase_add_test(tc, upload_memory_budget);
    tcase_add_test(tc, connection_limit);
    tcase_add_test(tc, pixel_bombs_keep_rss_flat);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
