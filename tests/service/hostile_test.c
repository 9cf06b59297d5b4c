/* hostile_test.c — hostile and odd inputs against the real server (RELIABILITY.md #1-4, #6):
 * each gets the right status with a JSON error (or a correct 200), and a normal request is
 * answered right after. Inputs are generated here, so the suite needs no fixture files. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common.h"
#include "../unit/testutil.h"

static test_server srv;
static int started;

static void setup(void)
{
    const char *args[] = {"--conn-timeout", "3", "--header-timeout", "2", "--upload-timeout", "3",
                          "--workers", "2", NULL};
    started = ts_start(&srv, args, NULL) == 0;
}

static void teardown(void)
{
    if (started)
        ck_assert_int_eq(ts_stop(&srv, 10000), 0);
}

static void assert_serves(void)
{
    size_t n;
    void *jpg = make_image("jpg", 200, 150, &n);
    ck_assert_ptr_nonnull(jpg);
    http_resp r;
    ck_assert_int_eq(http_post(&srv, "/enhance", "image/jpeg", jpg, n, &r), 200);
    ck_assert(r.len > 3 && !memcmp(r.body, "\xff\xd8\xff", 3));
    http_resp_free(&r);
    free(jpg);
}

/* POST body and expect status with a JSON error carrying code (NULL = any). */
static void expect_error(const char *path, const char *ctype, const void *body, size_t len, long status,
                         const char *code)
{
    http_resp r;
    long got = http_post(&srv, path, ctype, body, len, &r);
    if (got != status || !is_json_error(&r, code))
        ck_abort_msg("%s (%zu bytes, %s): got %ld %.200s, want %ld %s", path, len, ctype, got, r.body, status,
                     code ? code : "");
    http_resp_free(&r);
}

static void expect_ok_jpeg(const void *body, size_t len, const char *what)
{
    http_resp r;
    long got = http_post(&srv, "/enhance", "application/octet-stream", body, len, &r);
    if (got != 200 || r.len < 3 || memcmp(r.body, "\xff\xd8\xff", 3))
        ck_abort_msg("%s: got %ld %.200s, want 200 JPEG", what, got, r.body);
    http_resp_free(&r);
}

static uint32_t crc32_png(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

START_TEST(empty_and_wrong_type)
{
    ck_assert(started);
    expect_error("/enhance", "image/jpeg", "", 0, 400, "empty_body");
    expect_error("/analyze", "image/png", "", 0, 400, "empty_body");
    size_t n;
    void *jpg = make_image("jpg", 64, 48, &n);
    expect_error("/enhance", "text/html", jpg, n, 415, "unsupported_media_type");
    expect_error("/analyze", "application/json", jpg, n, 415, "unsupported_media_type");
    const char pdf[] = "%PDF-1.4\n1 0 obj << >> endobj\n";
    expect_error("/enhance", "image/jpeg", pdf, sizeof pdf - 1, 415, "unsupported_media_type");
    const char mvg[] = "push graphic-context\nviewbox 0 0 640 480\nimage over 0,0 0,0 'https://x/y.jpg'\n";
    expect_error("/enhance", "image/png", mvg, sizeof mvg - 1, 415, "unsupported_media_type");
    const char bmp[] = "BM\x36\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0";
    expect_error("/enhance", "image/bmp", bmp, sizeof bmp - 1, 415, "unsupported_media_type");
    free(jpg);
    assert_serves();
}
END_TEST

START_TEST(random_bytes)
{
    ck_assert(started);
    unsigned char buf[8192];
    unsigned seed = 12345;
    for (int round = 0; round < 5; round++) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (unsigned char)((seed = seed * 1103515245u + 12345u) >> 16);
        buf[0] = 'r'; /* never a magic number by chance */
        expect_error("/enhance", "image/jpeg", buf, sizeof buf, 400, "bad_input");
        /* random bytes behind valid magic numbers */
        memcpy(buf, "\xff\xd8\xff\xe0", 4);
        expect_error("/enhance", "image/jpeg", buf, sizeof buf, 400, "bad_input");
        memcpy(buf, "\x89PNG\r\n\x1a\n", 8);
        expect_error("/analyze", "image/png", buf, sizeof buf, 400, "bad_input");
        /* a plausible 100x100 screen, so garbage after the header is what gets tested (a random
         * size may claim > 50 MP and is then, correctly, refused with 413 from the header) */
        memcpy(buf, "GIF89a\x64\x00\x64\x00", 10);
        expect_error("/analyze", "image/gif", buf, sizeof buf, 400, "bad_input");
    }
    assert_serves();
}
END_TEST

static void truncations(const char *fmt)
{
    size_t n;
    unsigned char *img = make_image(fmt, 320, 240, &n);
    ck_assert_ptr_nonnull(img);
    /* fixed small offsets, then 5 %, 10 %, ... 95 % and the last byte missing */
    size_t offs[32];
    int k = 0;
    offs[k++] = 12;
    offs[k++] = 40;
    offs[k++] = 100;
    for (int pct = 5; pct < 100; pct += 5)
        offs[k++] = n * (size_t)pct / 100;
    /* JPEG: without the last byte of its EOI marker. PNG: cut inside the last IDAT (a file
     * missing only its 12-byte IEND still holds every pixel, and libspng accepts it). */
    offs[k++] = strcmp(fmt, "png") ? n - 1 : n - 20;
    for (int i = 0; i < k; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s truncated to %zu of %zu", fmt, offs[i], n);
        http_resp r;
        long got = http_post(&srv, i % 2 ? "/analyze" : "/enhance", "application/octet-stream", img, offs[i], &r);
        if (got != 400 || !is_json_error(&r, "bad_input"))
            ck_abort_msg("%s: got %ld %.200s, want 400 bad_input", what, got, r.body);
        http_resp_free(&r);
    }
    free(img);
    assert_serves();
}

START_TEST(truncated_jpeg) { ck_assert(started); truncations("jpg"); }
END_TEST

START_TEST(truncated_png) { ck_assert(started); truncations("png"); }
END_TEST

START_TEST(png_claiming_50000_squared)
{
    ck_assert(started);
    unsigned char png[128];
    size_t o = 0;
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    o = 8;
    put32(png + o, 13);
    memcpy(png + o + 4, "IHDR", 4);
    put32(png + o + 8, 50000);
    put32(png + o + 12, 50000);
    memcpy(png + o + 16, "\x08\x02\x00\x00\x00", 5); /* 8-bit RGB */
    put32(png + o + 21, crc32_png(png + o + 4, 17));
    o += 25;
    static const unsigned char idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
    put32(png + o, sizeof idat);
    memcpy(png + o + 4, "IDAT", 4);
    memcpy(png + o + 8, idat, sizeof idat);
    put32(png + o + 8 + sizeof idat, crc32_png(png + o + 4, 4 + sizeof idat));
    o += 12 + sizeof idat;
    put32(png + o, 0);
    memcpy(png + o + 4, "IEND", 4);
    put32(png + o + 8, crc32_png(png + o + 4, 4));
    o += 12;
    double t0 = pimg_clock_ms();
    expect_error("/enhance", "image/png", png, o, 413, "too_large");
    double ms = pimg_clock_ms() - t0;
    ck_assert_msg(ms < 500, "pixel gate took %.0f ms", ms); /* header-only: no decode */
    assert_serves();
}
END_TEST

START_TEST(jpeg_claiming_65500_squared)
{
    ck_assert(started);
    size_t n;
    unsigned char *jpg = make_image("jpg", 64, 48, &n);
    int patched = 0;
    for (size_t i = 2; i + 9 < n; i++)
        if (jpg[i] == 0xFF && (jpg[i + 1] == 0xC0 || jpg[i + 1] == 0xC2)) {
            jpg[i + 5] = 0xFF, jpg[i + 6] = 0xDC; /* height 65500 */
            jpg[i + 7] = 0xFF, jpg[i + 8] = 0xDC; /* width 65500 */
            patched = 1;
            break;
        }
    ck_assert(patched);
    double t0 = pimg_clock_ms();
    expect_error("/enhance", "image/jpeg", jpg, n, 413, "too_large");
    ck_assert(pimg_clock_ms() - t0 < 500);
    expect_error("/analyze", "image/jpeg", jpg, n, 413, "too_large");
    free(jpg);
    assert_serves();
}
END_TEST

START_TEST(odd_but_valid_images)
{
    ck_assert(started);
    static const struct {
        const char *fmt;
        int w, h;
    } cases[] = {{"jpg", 1, 1}, {"png", 1, 1}, {"png16", 200, 120}, {"cmyk", 200, 120},
                 {"pnga", 200, 120}, {"gif", 120, 90}, {"webp", 160, 120}, {"tiff", 160, 120}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n;
        void *img = make_image(cases[i].fmt, cases[i].w, cases[i].h, &n);
        ck_assert_msg(img != NULL, "cannot make %s", cases[i].fmt);
        char what[64];
        snprintf(what, sizeof what, "%s %dx%d", cases[i].fmt, cases[i].w, cases[i].h);
        expect_ok_jpeg(img, n, what);
        http_resp r;
        long got = http_post(&srv, "/analyze", "application/octet-stream", img, n, &r);
        ck_assert_msg(got == 200, "%s analyze: %ld %.200s", what, got, r.body);
        cJSON *o = cJSON_Parse(r.body);
        ck_assert_int_eq(cJSON_GetObjectItem(o, "width")->valueint, cases[i].w);
        ck_assert_int_eq(cJSON_GetObjectItem(o, "height")->valueint, cases[i].h);
        cJSON_Delete(o);
        http_resp_free(&r);
        free(img);
    }
    assert_serves();
}
END_TEST

START_TEST(huge_exif)
{
    ck_assert(started);
    size_t n;
    unsigned char *jpg = make_image("jpg", 160, 120, &n);
    /* APP1 "Exif" of the maximum segment size: a valid TIFF IFD with one ImageDescription
     * string of ~65 KB, repeated in four segments (~260 KB of metadata). */
    const size_t seg = 65535, nseg = 4;
    size_t out_len = n + nseg * (seg + 2);
    unsigned char *out = malloc(out_len), *p = out;
    memcpy(p, jpg, 2); /* SOI */
    p += 2;
    for (size_t k = 0; k < nseg; k++) {
        unsigned char *s = p;
        s[0] = 0xFF, s[1] = 0xE1, s[2] = (unsigned char)(seg >> 8), s[3] = (unsigned char)seg;
        unsigned char *t = s + 4;
        memcpy(t, "Exif\0\0", 6);
        unsigned char *tiff = t + 6;
        size_t tiff_len = seg - 2 - 6;
        memset(tiff, 'A', tiff_len);
        memcpy(tiff, "II*\0\x08\0\0\0", 8);
        tiff[8] = 1, tiff[9] = 0;                     /* one entry */
        tiff[10] = 0x0E, tiff[11] = 0x01;             /* tag 0x010E ImageDescription */
        tiff[12] = 2, tiff[13] = 0;                   /* ASCII */
        uint32_t cnt = (uint32_t)(tiff_len - 30);
        memcpy(tiff + 14, (unsigned char[]){(unsigned char)cnt, (unsigned char)(cnt >> 8), 0, 0}, 4);
        memcpy(tiff + 18, (unsigned char[]){26, 0, 0, 0}, 4); /* value offset */
        memset(tiff + 22, 0, 4);                      /* no next IFD */
        tiff[tiff_len - 1] = 0;
        p += seg + 2;
    }
    memcpy(p, jpg + 2, n - 2);
    p += n - 2;
    expect_ok_jpeg(out, (size_t)(p - out), "huge EXIF");
    free(out);
    free(jpg);
    assert_serves();
}
END_TEST

START_TEST(multipart_without_image)
{
    ck_assert(started);
    const char body[] = "--b\r\nContent-Disposition: form-data; name=\"label\"\r\n\r\n{\"x\":1}\r\n--b--\r\n";
    expect_error("/enhance", "multipart/form-data; boundary=b", body, sizeof body - 1, 400, "missing_image");
    const char empty[] = "--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n\r\n--b--\r\n";
    expect_error("/enhance", "multipart/form-data; boundary=b", empty, sizeof empty - 1, 400, "empty_body");
    const char garbage[] = "--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nnot an image\r\n--b--\r\n";
    expect_error("/analyze", "multipart/form-data; boundary=b", garbage, sizeof garbage - 1, 400, "bad_input");
    assert_serves();
}
END_TEST

START_TEST(body_100mb)
{
    ck_assert(started);
    size_t n = 100u * 1000 * 1000;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', n);
    /* declared length: refused from the header, before the body is read */
    http_resp r;
    char url[128];
    snprintf(url, sizeof url, "%s/enhance", srv.base);
    const char *h1[] = {"Content-Type: image/jpeg", NULL};
    ck_assert_int_eq(http_req("POST", url, h1, big, n, 0, &r), 413);
    ck_assert(is_json_error(&r, "body_too_large"));
    ck_assert_msg(r.seconds < 2.0, "413 took %.2f s", r.seconds);
    http_resp_free(&r);
    /* chunked, no length: counted while it arrives, rest dropped, then 413 */
    const char *h2[] = {"Content-Type: image/jpeg", "Transfer-Encoding: chunked", NULL};
    ck_assert_int_eq(http_req("POST", url, h2, big, n, 0, &r), 413);
    ck_assert(is_json_error(&r, "body_too_large"));
    http_resp_free(&r);
    free(big);
    assert_serves();
}
END_TEST

/* Whether the server has closed fd (read gives EOF or an error) within wait_ms. */
static int closed_by_server(int fd, int wait_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, wait_ms) <= 0)
        return 0;
    char buf[512];
    ssize_t r;
    while ((r = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        ; /* a 408/400 answer before the close is fine */
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

START_TEST(slowloris)
{
    ck_assert(started);
    enum { N = 200 }; /* RELIABILITY.md #6 */
    int fds[N];
    /* stalled headers: idle timeout (3 s) */
    for (int i = 0; i < N; i++) {
        fds[i] = ts_connect(srv.port);
        ck_assert_int_ge(fds[i], 0);
        const char part[] = "POST /enhance HTTP/1.1\r\nHost: x\r\n";
        ck_assert_int_eq(send(fds[i], part, sizeof part - 1, MSG_NOSIGNAL), (ssize_t)(sizeof part - 1));
    }
    /* trickling headers (one byte every 300 ms, never idle): absolute header deadline (2 s) */
    int trickle = ts_connect(srv.port);
    /* trickling body: absolute upload deadline (3 s) */
    int body = ts_connect(srv.port);
    const char hdr[] = "POST /enhance HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n\xff\xd8";
    ck_assert_int_eq(send(body, hdr, sizeof hdr - 1, MSG_NOSIGNAL), (ssize_t)(sizeof hdr - 1));
    assert_serves(); /* normal clients are served meanwhile */
    double t0 = pimg_clock_ms();
    int trickle_closed = 0, body_closed = 0;
    const char *line = "GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for (int i = 0; pimg_clock_ms() - t0 < 8000 && !(trickle_closed && body_closed); i++) {
        if (!trickle_closed && send(trickle, line + (i % 60), 1, MSG_NOSIGNAL) < 0)
            trickle_closed = 1;
        if (!body_closed && send(body, "x", 1, MSG_NOSIGNAL) < 0)
            body_closed = 1;
        usleep(300 * 1000);
        if (!trickle_closed && closed_by_server(trickle, 0))
            trickle_closed = 1;
        if (!body_closed && closed_by_server(body, 0))
            body_closed = 1;
    }
    double took = pimg_clock_ms() - t0;
    ck_assert_msg(trickle_closed, "trickling headers not cut off");
    ck_assert_msg(body_closed, "trickling body not cut off");
    ck_assert_msg(took < 6000, "cut off only after %.0f ms", took);
    int n_closed = 0;
    for (int i = 0; i < N; i++) {
        n_closed += closed_by_server(fds[i], 3000);
        close(fds[i]);
    }
    ck_assert_int_eq(n_closed, N);
    close(trickle);
    close(body);
    assert_serves();
    http_resp r;
    ck_assert_int_eq(http_get(&srv, "/metrics", &r), 200);
    ck_assert_ptr_null(strstr(r.body, "pimg_rejected_total{reason=\"slow_client\"} 0\n"));
    http_resp_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service_hostile");
    TCase *tc = tcase_create("hostile");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, empty_and_wrong_type);
    tcase_add_test(tc, random_bytes);
    tcase_add_test(tc, truncated_jpeg);
    tcase_add_test(tc, truncated_png);
    tcase_add_test(tc, png_claiming_50000_squared);
    tcase_add_test(tc, jpeg_claiming_65500_squared);
    tcase_add_test(tc, odd_but_valid_images);
    tcase_add_test(tc, huge_exif);
    tcase_add_test(tc, multipart_without_image);
    tcase_add_test(tc, body_100mb);
    tcase_add_test(tc, slowloris);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
