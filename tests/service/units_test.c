/* units_test.c — unit tests of the service modules that need no server: multipart parsing
 * (including every truncation of a body), base64, the status table, media-type checks, the
 * configuration precedence and validation, the bounded pool, and the metrics exposition.
 * The service sources are compiled in directly: the Makefile links only lib/ into tests. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../service/config.c"
#include "../../service/http_util.c"
#include "../../service/metrics.c"
#include "../../service/queue.c"
#include "../unit/testutil.h"

START_TEST(multipart_parses_parts)
{
    const char body[] = "preamble\r\n--AaB03x\r\nContent-Disposition: form-data; name=\"label\"\r\n\r\nhello\r\n"
                        "--AaB03x\r\ncontent-disposition: form-data; name=\"image\"; filename=\"a \\\"b\\\".jpg\"\r\n"
                        "Content-Type: image/jpeg\r\n\r\n\xff\xd8\r\n\x00\x01--AaB0\r\n--AaB03x--\r\nepilogue";
    pimg_part parts[PIMG_MAX_PARTS];
    int n = -1;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_multipart_parse("multipart/form-data; charset=utf-8; boundary=\"AaB03x\"",
                                          (const unsigned char *)body, sizeof body - 1, parts, PIMG_MAX_PARTS, &n, &err),
                     PIMG_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(parts[0].name, "label");
    ck_assert_uint_eq(parts[0].len, 5);
    ck_assert(!memcmp(parts[0].data, "hello", 5));
    ck_assert_str_eq(parts[1].name, "image");
    ck_assert_str_eq(parts[1].filename, "a \"b\".jpg");
    ck_assert_str_eq(parts[1].content_type, "image/jpeg");
    /* binary data with CR LF, NUL and a boundary prefix inside stays intact */
    ck_assert_uint_eq(parts[1].len, 12);
    ck_assert(!memcmp(parts[1].data, "\xff\xd8\r\n\x00\x01--AaB0", 12));
}
END_TEST

START_TEST(multipart_rejects_every_truncation)
{
    const char body[] = "--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n0123456789\r\n--b--\r\n";
    size_t full = sizeof body - 1;
    pimg_part parts[2];
    int n;
    /* up to the point where the closing delimiter is complete ("--b" after CRLF) */
    size_t complete = (size_t)(strstr(body, "\r\n--b--") - body) + 5;
    for (size_t cut = 0; cut < complete; cut++) {
        char *copy = malloc(cut ? cut : 1); /* exact size, so ASan catches an over-read */
        memcpy(copy, body, cut);
        pimg_status st = pimg_multipart_parse("multipart/form-data; boundary=b", (unsigned char *)copy, cut, parts, 2, &n, NULL);
        ck_assert_msg(st == PIMG_ERR_BAD_INPUT, "cut %zu accepted", cut);
        free(copy);
    }
    ck_assert_int_eq(pimg_multipart_parse("multipart/form-data; boundary=b", (const unsigned char *)body, full, parts, 2, &n, NULL), PIMG_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(pimg_multipart_parse("multipart/form-data", (const unsigned char *)body, full, parts, 2, &n, NULL), PIMG_ERR_BAD_INPUT);
    ck_assert_int_eq(pimg_multipart_parse("multipart/form-data; boundary=b", (const unsigned char *)body, full, parts, 0, &n, NULL), PIMG_ERR_BAD_INPUT);
}
END_TEST

START_TEST(base64_vectors)
{
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        size_t n;
        char *s = pimg_base64_encode(in[i], strlen(in[i]), &n);
        ck_assert_str_eq(s, out[i]);
        ck_assert_uint_eq(n, strlen(out[i]));
        free(s);
    }
}
END_TEST

START_TEST(status_table_and_media_types)
{
    const char *code;
    ck_assert_int_eq(pimg_http_status(PIMG_OK, &code), 200);
    ck_assert_int_eq(pimg_http_status(PIMG_ERR_BAD_INPUT, &code), 400);
    ck_assert_str_eq(code, "bad_input");
    ck_assert_int_eq(pimg_http_status(PIMG_ERR_TOO_LARGE, &code), 413);
    ck_assert_int_eq(pimg_http_status(PIMG_ERR_UNSUPPORTED, &code), 415);
    ck_assert_int_eq(pimg_http_status(PIMG_ERR_TIMEOUT, &code), 504);
    ck_assert_int_eq(pimg_http_status(PIMG_ERR_INTERNAL, &code), 500);
    ck_assert_int_eq(pimg_http_status((pimg_status)-99, &code), 500);
    ck_assert(pimg_media_type_is("image/jpeg", "image/"));
    ck_assert(pimg_media_type_is(" Image/PNG ; q=1", "image/"));
    ck_assert(!pimg_media_type_is("image/", "image/"));
    ck_assert(!pimg_media_type_is("imagex/png", "image/"));
    ck_assert(pimg_media_type_is("multipart/form-data; boundary=x", "multipart/form-data"));
    ck_assert(!pimg_media_type_is("multipart/form-datax", "multipart/form-data"));
    ck_assert(pimg_accepts_json("text/html, application/json;q=0.9"));
    ck_assert(!pimg_accepts_json("application/json;q=0"));
    ck_assert(!pimg_accepts_json("*/*"));
    ck_assert(!pimg_accepts_json(NULL));
    size_t n;
    char *e = pimg_http_error_json("x_y", "say \"hi\"\n", &n);
    ck_assert_str_eq(e, "{\"error\":{\"code\":\"x_y\",\"message\":\"say \\\"hi\\\"\\n\"}}");
    free(e);
    ck_assert_str_eq(pimg_sniff_refused_format((const unsigned char *)"  <svg>", 7), "SVG/XML");
    ck_assert_ptr_null(pimg_sniff_refused_format((const unsigned char *)"<sv", 3));
    ck_assert_ptr_null(pimg_sniff_refused_format((const unsigned char *)"hello", 5));
}
END_TEST

START_TEST(config_precedence_and_validation)
{
    FILE *devnull = fopen("/dev/null", "w");
    pimg_config c;
    char *a0[] = {"serve", NULL};
    unsetenv("PIMG_WORKERS");
    setenv("PIMG_MAX_BODY", "10M", 1);
    setenv("PIMG_PORT", "9000", 1);
    ck_assert_int_eq(pimg_config_parse(&c, 1, a0, devnull), 0);
    ck_assert_int_eq(c.port, 9000);
    ck_assert_uint_eq(c.max_body, 10u << 20);
    ck_assert_int_eq(c.workers, pimg_config_cores());
    ck_assert_int_eq(c.queue, 4 * c.workers);
    ck_assert_int_eq(c.request_timeout_ms, 30000);
    ck_assert_uint_eq(c.max_pixels, 50000000u);
    char *a1[] = {"serve", "--port", "9100", "--max-body=1.5M", "--workers", "3", "--request-timeout", "2.5", NULL};
    ck_assert_int_eq(pimg_config_parse(&c, 8, a1, devnull), 0);
    ck_assert_int_eq(c.port, 9100); /* flag beats env */
    ck_assert_uint_eq(c.max_body, 3u << 19);
    ck_assert_int_eq(c.workers, 3);
    ck_assert_int_eq(c.queue, 12);
    ck_assert_int_eq(c.request_timeout_ms, 2500);
    char *bad[][3] = {{"serve", "--workers", "0"},    {"serve", "--port", "70000"}, {"serve", "--max-body", "12Q"},
                      {"serve", "--bogus", "1"},      {"serve", "--queue", "1.5"},  {"serve", "--access-log", "maybe"},
                      {"serve", "--port", ""}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(pimg_config_parse(&c, 3, bad[i], devnull) == 2, "accepted %s %s", bad[i][1], bad[i][2]);
    char *missing[] = {"serve", "--port", NULL};
    ck_assert_int_eq(pimg_config_parse(&c, 2, missing, devnull), 2);
    setenv("PIMG_WORKERS", "zero", 1);
    ck_assert_int_eq(pimg_config_parse(&c, 1, a0, devnull), 2);
    unsetenv("PIMG_WORKERS");
    char *cross[] = {"serve", "--max-body", "100M", "--max-buffered", "50M", NULL};
    ck_assert_int_eq(pimg_config_parse(&c, 5, cross, devnull), 2);
    unsetenv("PIMG_MAX_BODY");
    unsetenv("PIMG_PORT");
    fclose(devnull);
}
END_TEST

START_TEST(config_file_layer)
{
    FILE *devnull = fopen("/dev/null", "w");
    pimg_config c;
    /* the shipped example parses and equals the defaults */
    char *a0[] = {"serve", "--config", "config/pimg.env.example", NULL};
    ck_assert_int_eq(pimg_config_parse(&c, 3, a0, devnull), 0);
    ck_assert_int_eq(c.port, 8080);
    ck_assert_uint_eq(c.max_body, 25u << 20);
    ck_assert_uint_eq(c.max_pixels, 50000000u);
    ck_assert_int_eq(c.header_timeout_ms, 20000);
    char path[] = "/tmp/pimg-config-XXXXXX";
    int fd = mkstemp(path);
    const char text[] = "# comment\n\nPIMG_PORT=7000\nexport PIMG_QUEUE=\"5\"\nPIMG_MAX_BODY=2M\n";
    ck_assert_int_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    setenv("PIMG_MAX_BODY", "3M", 1);
    char *a1[] = {"serve", "--config", path, "--queue", "6", NULL};
    ck_assert_int_eq(pimg_config_parse(&c, 5, a1, devnull), 0);
    ck_assert_int_eq(c.port, 7000);          /* file beats default */
    ck_assert_uint_eq(c.max_body, 3u << 20); /* env beats file */
    ck_assert_int_eq(c.queue, 6);            /* flag beats file */
    unsetenv("PIMG_MAX_BODY");
    FILE *f = fopen(path, "w");
    fputs("PIMG_NOPE=1\n", f);
    fclose(f);
    ck_assert_int_eq(pimg_config_parse(&c, 3, a1, devnull), 2);
    unlink(path);
    char *a2[] = {"serve", "--config", "/nonexistent/pimg.env", NULL};
    ck_assert_int_eq(pimg_config_parse(&c, 3, a2, devnull), 2);
    fclose(devnull);
}
END_TEST

static int ran;
static void count_job(void *job, void *arg)
{
    (void)arg;
    usleep(20000);
    __atomic_add_fetch(&ran, *(int *)job, __ATOMIC_SEQ_CST);
}
static int accepted;
static void on_accept(void *job)
{
    (void)job;
    accepted++;
}

START_TEST(pool_is_bounded)
{
    pimg_pool *p = pimg_pool_new(1, 2, count_job, NULL);
    int one = 1;
    int ok = 0, full = 0;
    for (int i = 0; i < 10; i++) {
        int r = pimg_pool_submit(p, &one, on_accept);
        ok += r == PIMG_POOL_OK;
        full += r == PIMG_POOL_FULL;
    }
    ck_assert_int_ge(ok, 2);
    ck_assert_int_le(ok, 3); /* 2 waiting + at most 1 already taken by the worker */
    ck_assert_int_eq(ok + full, 10);
    ck_assert_int_eq(accepted, ok);
    ck_assert_int_eq(pimg_pool_wait_idle(p, 5000), 0);
    ck_assert_int_eq(__atomic_load_n(&ran, __ATOMIC_SEQ_CST), ok);
    pimg_pool_close(p);
    ck_assert_int_eq(pimg_pool_submit(p, &one, NULL), PIMG_POOL_CLOSED);
    pimg_pool_free(p);
}
END_TEST

START_TEST(metrics_exposition)
{
    pimg_metrics *m = pimg_metrics_new();
    pimg_metrics_request(m, PIMG_EP_ENHANCE, 200, 0.3);
    pimg_metrics_request(m, PIMG_EP_ENHANCE, 200, 0.02);
    pimg_metrics_request(m, PIMG_EP_ENHANCE, 503, 0.001);
    pimg_metrics_stage(m, PIMG_STAGE_DECODE, 0.07);
    pimg_metrics_reject(m, PIMG_REJECT_QUEUE_FULL);
    pimg_metrics_gauges g = {.queue_depth = 3, .queue_capacity = 8, .model_version = "v\"1"};
    size_t n;
    char *t = pimg_metrics_render(m, &g, &n);
    ck_assert_uint_eq(n, strlen(t));
    ck_assert_ptr_nonnull(strstr(t, "pimg_requests_total{endpoint=\"enhance\",status=\"200\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "pimg_requests_total{endpoint=\"enhance\",status=\"503\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "pimg_request_duration_seconds_bucket{endpoint=\"enhance\",le=\"0.025\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "pimg_request_duration_seconds_bucket{endpoint=\"enhance\",le=\"+Inf\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "pimg_stage_duration_seconds_bucket{stage=\"decode\",le=\"0.1\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "pimg_stage_duration_seconds_count{stage=\"encode\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(t, "pimg_rejected_total{reason=\"queue_full\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "pimg_queue_depth 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "pimg_model_info{version=\"v\\\"1\"} 1\n"));
    free(t);
    pimg_metrics_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service_units");
    TCase *tc = tcase_create("units");
    tcase_add_test(tc, multipart_parses_parts);
    tcase_add_test(tc, multipart_rejects_every_truncation);
    tcase_add_test(tc, base64_vectors);
    tcase_add_test(tc, status_table_and_media_types);
    tcase_add_test(tc, config_precedence_and_validation);
    tcase_add_test(tc, config_file_layer);
    tcase_add_test(tc, pool_is_bounded);
    tcase_add_test(tc, metrics_exposition);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
