/* api_test.c — the HTTP contract of `pimg serve` over loopback: probes, /enhance (raw,
 * multipart, JSON answer), /analyze, query parameters, and the JSON errors 400/404/405/413/415,
 * each followed by proof that the server still serves. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common.h"
#include "../unit/testutil.h"

static test_server srv;
static int started;

static void setup(void)
{
    started = ts_start(&srv, NULL, NULL) == 0;
}

static void teardown(void)
{
    if (started)
        ts_stop(&srv, 10000);
}

/* A normal request still works (used after every error case). */
static void assert_serves(void)
{
    size_t n;
    void *jpg = make_image("jpg", 160, 120, &n);
    ck_assert_ptr_nonnull(jpg);
    http_resp r;
    ck_assert_int_eq(http_post(&srv, "/enhance", "image/jpeg", jpg, n, &r), 200);
    ck_assert_int_ge(r.len, 3);
    ck_assert(!memcmp(r.body, "\xff\xd8\xff", 3));
    http_resp_free(&r);
    free(jpg);
}

START_TEST(probes_answer)
{
    ck_assert(started);
    http_resp r;
    ck_assert_int_eq(http_get(&srv, "/healthz", &r), 200);
    ck_assert_str_eq(r.content_type, "application/json");
    http_resp_free(&r);
    ck_assert_int_eq(http_get(&srv, "/readyz", &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "ready"));
    http_resp_free(&r);
    ck_assert_int_eq(http_get(&srv, "/openapi.yaml", &r), 200);
    ck_assert_int_eq(strncmp(r.body, "openapi: 3", 10), 0);
    ck_assert_ptr_nonnull(strstr(r.body, "/enhance:"));
    http_resp_free(&r);
    ck_assert_int_eq(http_get(&srv, "/metrics", &r), 200);
    ck_assert_str_eq(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    ck_assert_ptr_nonnull(strstr(r.body, "pimg_requests_total{endpoint=\"healthz\",status=\"200\"}"));
    ck_assert_ptr_nonnull(strstr(r.body, "# TYPE pimg_stage_duration_seconds histogram"));
    ck_assert_ptr_nonnull(strstr(r.body, "pimg_model_info{version="));
    ck_assert_ptr_nonnull(strstr(r.body, "pimg_queue_depth 0"));
    http_resp_free(&r);
}
END_TEST

START_TEST(request_id_is_echoed_and_logged)
{
    ck_assert(started);
    char url[128];
    snprintf(url, sizeof url, "%s/healthz", srv.base);
    const char *h[] = {"X-Request-Id: abc-123_x", NULL};
    http_resp r;
    ck_assert_int_eq(http_req("GET", url, h, NULL, 0, 0, &r), 200);
    http_resp_free(&r);
    /* the access log line carries it (the log is written when the request completes) */
    int found = 0;
    for (int i = 0; i < 50 && !found; i++) {
        FILE *f = fopen(srv.log_path, "r");
        char line[2048];
        while (f && fgets(line, sizeof line, f))
            if (strstr(line, "\"request_id\":\"abc-123_x\"") && strstr(line, "\"route\":\"healthz\""))
                found = 1;
        if (f)
            fclose(f);
        if (!found)
            usleep(20000);
    }
    ck_assert(found);
}
END_TEST

START_TEST(enhance_raw_returns_jpeg_and_metadata)
{
    ck_assert(started);
    size_t n;
    void *jpg = make_image("jpg", 640, 480, &n);
    http_resp r;
    ck_assert_int_eq(http_post(&srv, "/enhance", "image/jpeg", jpg, n, &r), 200);
    ck_assert_str_eq(r.content_type, "image/jpeg");
    ck_assert(r.len > 100 && !memcmp(r.body, "\xff\xd8\xff", 3));
    ck_assert_ptr_nonnull(r.meta);
    cJSON *m = cJSON_Parse(r.meta);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(cJSON_GetObjectItem(m, "width")->valueint, 640);
    ck_assert_int_eq(cJSON_GetObjectItem(m, "height")->valueint, 480);
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(m, "applied")));
    cJSON_Delete(m);
    http_resp_free(&r);
    free(jpg);
}
END_TEST

START_TEST(enhance_query_and_json_answer)
{
    ck_assert(started);
    size_t n;
    void *png = make_image("png", 400, 300, &n);
    char url[256];
    snprintf(url, sizeof url, "%s/enhance?ops=enhance&quality=70&max_side=200", srv.base);
    const char *h[] = {"Content-Type: image/png", "Accept: application/json", NULL};
    http_resp r;
    ck_assert_int_eq(http_req("POST", url, h, png, n, 0, &r), 200);
    ck_assert_str_eq(r.content_type, "application/json");
    cJSON *o = cJSON_Parse(r.body);
    ck_assert_ptr_nonnull(o);
    cJSON *meta = cJSON_GetObjectItem(o, "metadata"), *img = cJSON_GetObjectItem(o, "image");
    ck_assert(cJSON_IsObject(meta) && cJSON_IsString(img));
    ck_assert_int_eq(cJSON_GetObjectItem(meta, "out_width")->valueint, 200);
    ck_assert_int_eq(cJSON_GetObjectItem(meta, "out_height")->valueint, 150);
    /* base64 of a JPEG starts with "/9j/" (FF D8 FF) */
    ck_assert_int_eq(strncmp(img->valuestring, "/9j/", 4), 0);
    cJSON_Delete(o);
    http_resp_free(&r);
    free(png);
}
END_TEST

/* Builds a multipart body with the given parts (name, content) and returns its length. */
static size_t multipart(char *out, size_t cap, const char *boundary, const char **names,
                        const void **data, const size_t *lens, int n)
{
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        o += (size_t)snprintf(out + o, cap - o,
                              "--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"f%d\"\r\n"
                              "Content-Type: application/octet-stream\r\n\r\n",
                              boundary, names[i], i);
        memcpy(out + o, data[i], lens[i]);
        o += lens[i];
        o += (size_t)snprintf(out + o, cap - o, "\r\n");
    }
    o += (size_t)snprintf(out + o, cap - o, "--%s--\r\n", boundary);
    return o;
}

START_TEST(multipart_image_and_missing_part)
{
    ck_assert(started);
    size_t n;
    void *jpg = make_image("jpg", 320, 240, &n);
    size_t cap = n + 4096;
    char *body = malloc(cap);
    const char *names[] = {"note", "image"};
    const void *data[] = {"hello", jpg};
    size_t lens[] = {5, n};
    size_t bl = multipart(body, cap, "XyZ--b0undary", names, data, lens, 2);
    http_resp r;
    ck_assert_int_eq(http_post(&srv, "/analyze", "multipart/form-data; boundary=XyZ--b0undary", body, bl, &r), 200);
    cJSON *o = cJSON_Parse(r.body);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "width")->valueint, 320);
    cJSON_Delete(o);
    http_resp_free(&r);
    ck_assert_int_eq(http_post(&srv, "/enhance", "multipart/form-data; boundary=\"XyZ--b0undary\"", body, bl, &r), 200);
    ck_assert(!memcmp(r.body, "\xff\xd8\xff", 3));
    http_resp_free(&r);
    /* no image part */
    bl = multipart(body, cap, "B", names, data, lens, 1);
    ck_assert_int_eq(http_post(&srv, "/enhance", "multipart/form-data; boundary=B", body, bl, &r), 400);
    ck_assert(is_json_error(&r, "missing_image"));
    http_resp_free(&r);
    /* truncated multipart (no closing boundary) */
    bl = multipart(body, cap, "B", names, data, lens, 2);
    ck_assert_int_eq(http_post(&srv, "/enhance", "multipart/form-data; boundary=B", body, bl / 2, &r), 400);
    ck_assert(is_json_error(&r, "bad_multipart"));
    http_resp_free(&r);
    /* multipart without boundary parameter */
    ck_assert_int_eq(http_post(&srv, "/enhance", "multipart/form-data", body, bl, &r), 400);
    ck_assert(is_json_error(&r, NULL));
    http_resp_free(&r);
    free(body);
    free(jpg);
    assert_serves();
}
END_TEST

START_TEST(garbage_is_400_and_server_keeps_serving)
{
    ck_assert(started);
    http_resp r;
    ck_assert_int_eq(http_post(&srv, "/enhance", "image/jpeg", "this is not an image at all", 27, &r), 400);
    ck_assert(is_json_error(&r, "bad_input"));
    http_resp_free(&r);
    /* JPEG magic followed by garbage */
    ck_assert_int_eq(http_post(&srv, "/enhance", "image/jpeg", "\xff\xd8\xff\xe0garbagegarbage", 18, &r), 400);
    ck_assert(is_json_error(&r, "bad_input"));
    http_resp_free(&r);
    assert_serves();
}
END_TEST

START_TEST(errors_404_405_415_400)
{
    ck_assert(started);
    http_resp r;
    ck_assert_int_eq(http_get(&srv, "/nope", &r), 404);
    ck_assert(is_json_error(&r, "not_found"));
    http_resp_free(&r);
    ck_assert_int_eq(http_get(&srv, "/enhance", &r), 405);
    ck_assert(is_json_error(&r, "method_not_allowed"));
    ck_assert_str_eq(r.allow, "POST");
    http_resp_free(&r);
    char url[128];
    snprintf(url, sizeof url, "%s/healthz", srv.base);
    ck_assert_int_eq(http_req("DELETE", url, NULL, NULL, 0, 0, &r), 405);
    ck_assert(is_json_error(&r, "method_not_allowed"));
    http_resp_free(&r);
    size_t n;
    void *jpg = make_image("jpg", 64, 64, &n);
    ck_assert_int_eq(http_post(&srv, "/enhance", "text/plain", jpg, n, &r), 415);
    ck_assert(is_json_error(&r, "unsupported_media_type"));
    http_resp_free(&r);
    ck_assert_int_eq(http_post(&srv, "/enhance", "application/x-www-form-urlencoded", jpg, n, &r), 415);
    http_resp_free(&r);
    const char svg[] = "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"></svg>";
    ck_assert_int_eq(http_post(&srv, "/enhance", "image/svg+xml", svg, sizeof svg - 1, &r), 415);
    ck_assert(is_json_error(&r, "unsupported_media_type"));
    http_resp_free(&r);
    ck_assert_int_eq(http_post(&srv, "/enhance", "image/jpeg", "", 0, &r), 400);
    ck_assert(is_json_error(&r, "empty_body"));
    http_resp_free(&r);
    const char *bad[] = {"?quality=0", "?quality=abc", "?max_side=-3", "?ops=orient,bogus", "?background=red",
                         "?shadow=maybe", "?shadow=1&background=blur", "?fill=0.05", "?fill=x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char path[64];
        snprintf(path, sizeof path, "/enhance%s", bad[i]);
        ck_assert_int_eq(http_post(&srv, path, "image/jpeg", jpg, n, &r), 400);
        ck_assert(is_json_error(&r, "bad_parameter"));
        http_resp_free(&r);
    }
    free(jpg);
    assert_serves();
}
END_TEST

START_TEST(oversize_body_is_413_before_reading)
{
    ck_assert(started);
    size_t n = 26u * 1024 * 1024; /* default limit is 25 MiB */
    char *big = malloc(n);
    memset(big, 0xAB, n);
    big[0] = (char)0xFF, big[1] = (char)0xD8, big[2] = (char)0xFF;
    http_resp r;
    ck_assert_int_eq(http_post(&srv, "/enhance", "image/jpeg", big, n, &r), 413);
    ck_assert(is_json_error(&r, "body_too_large"));
    http_resp_free(&r);
    free(big);
    assert_serves();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service_api");
    TCase *tc = tcase_create("api");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, probes_answer);
    tcase_add_test(tc, request_id_is_echoed_and_logged);
    tcase_add_test(tc, enhance_raw_returns_jpeg_and_metadata);
    tcase_add_test(tc, enhance_query_and_json_answer);
    tcase_add_test(tc, multipart_image_and_missing_part);
    tcase_add_test(tc, garbage_is_400_and_server_keeps_serving);
    tcase_add_test(tc, errors_404_405_415_400);
    tcase_add_test(tc, oversize_body_is_413_before_reading);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
