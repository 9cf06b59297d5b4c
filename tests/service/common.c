/* common.c — see common.h. */
#include "common.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <vips/vips.h>

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &l)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

int ts_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int ts_alive(test_server *ts)
{
    if (ts->pid <= 0)
        return 0;
    int st;
    pid_t r = waitpid(ts->pid, &st, WNOHANG);
    if (r == ts->pid) {
        ts->pid = -ts->pid; /* reaped; keep the number for messages */
        return 0;
    }
    return 1;
}

static int start_once(test_server *ts, const char *const *args, const char *const *env)
{
    const char *bin = getenv("PIMG_BIN");
    if (!bin)
        bin = "build/pimg";
    ts->port = free_port();
    if (ts->port <= 0)
        return -1;
    snprintf(ts->base, sizeof ts->base, "http://127.0.0.1:%d", ts->port);
    snprintf(ts->log_path, sizeof ts->log_path, "/tmp/pimg-test-%d-%d.log", (int)getpid(), ts->port);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(ts->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        for (const char *const *e = env; e && *e; e++)
            putenv((char *)*e);
        char port[16];
        snprintf(port, sizeof port, "%d", ts->port);
        const char *argv[64] = {bin, "serve", "--bind", "127.0.0.1", "--port", port};
        int n = 6;
        for (const char *const *a = args; a && *a && n < 62; a++)
            argv[n++] = *a;
        argv[n] = NULL;
        execv(bin, (char **)argv);
        _exit(127);
    }
    ts->pid = pid;
    char url[128];
    snprintf(url, sizeof url, "%s/healthz", ts->base);
    double until = pimg_clock_ms() + 20000; /* ASan builds start slowly */
    while (pimg_clock_ms() < until) {
        if (!ts_alive(ts))
            return -1;
        http_resp r;
        long st = http_req("GET", url, NULL, NULL, 0, 1000, &r);
        http_resp_free(&r);
        if (st == 200)
            return 0;
        usleep(20000);
    }
    ts_stop(ts, 100);
    return -1;
}

int ts_start(test_server *ts, const char *const *args, const char *const *env)
{
    memset(ts, 0, sizeof *ts);
    for (int attempt = 0; attempt < 3; attempt++)
        if (!start_once(ts, args, env))
            return 0;
    fprintf(stderr, "test: cannot start %s serve (see %s)\n", getenv("PIMG_BIN"), ts->log_path);
    return -1;
}

int ts_stop(test_server *ts, int wait_ms)
{
    if (ts->pid <= 0)
        return -1;
    kill(ts->pid, SIGTERM);
    double until = pimg_clock_ms() + wait_ms;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(ts->pid, &st, WNOHANG);
        if (r == ts->pid)
            break;
        if (pimg_clock_ms() > until) {
            kill(ts->pid, SIGKILL);
            waitpid(ts->pid, &st, 0);
            break;
        }
        usleep(10000);
    }
    ts->pid = -ts->pid;
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (rc == 0)
        unlink(ts->log_path); /* kept for reading after a failure */
    return rc;
}

/* ---- HTTP ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    http_resp *r = ud;
    size_t add = sz * n;
    char *nb = realloc(r->body, r->len + add + 1);
    if (!nb)
        return 0;
    memcpy(nb + r->len, p, add);
    r->body = nb;
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

static void header_value(const char *line, size_t n, char *out, size_t cap)
{
    const char *c = memchr(line, ':', n);
    if (!c)
        return;
    c++;
    while (c < line + n && (*c == ' ' || *c == '\t'))
        c++;
    size_t l = (size_t)(line + n - c);
    while (l && (c[l - 1] == '\r' || c[l - 1] == '\n'))
        l--;
    if (l >= cap)
        l = cap - 1;
    memcpy(out, c, l);
    out[l] = '\0';
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    http_resp *r = ud;
    size_t l = sz * n;
    if (l > 13 && !strncasecmp(p, "Content-Type:", 13))
        header_value(p, l, r->content_type, sizeof r->content_type);
    else if (l > 12 && !strncasecmp(p, "Retry-After:", 12))
        header_value(p, l, r->retry_after, sizeof r->retry_after);
    else if (l > 6 && !strncasecmp(p, "Allow:", 6))
        header_value(p, l, r->allow, sizeof r->allow);
    else if (l > 16 && !strncasecmp(p, "X-Pimg-Metadata:", 16)) {
        free(r->meta);
        r->meta = malloc(l + 1);
        if (r->meta) {
            r->meta[0] = '\0';
            header_value(p, l, r->meta, l + 1);
        }
    }
    return l;
}

long http_req(const char *method, const char *url, const char *const *headers, const void *body,
              size_t len, int timeout_ms, http_resp *resp)
{
    memset(resp, 0, sizeof *resp);
    CURL *c = curl_easy_init();
    if (!c)
        return 0;
    struct curl_slist *hl = NULL;
    for (const char *const *h = headers; h && *h; h++)
        hl = curl_slist_append(hl, *h);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ms ? timeout_ms : 60000));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    double t0 = pimg_clock_ms();
    resp->curl_code = (int)curl_easy_perform(c);
    resp->seconds = (pimg_clock_ms() - t0) / 1e3;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (!resp->body) {
        resp->body = calloc(1, 1);
        resp->len = 0;
    }
    return resp->status;
}

void http_parallel(const char *method, const char *url, const char *const *headers, const void *body,
                   size_t len, int n, int timeout_ms, http_resp *resp)
{
    CURLM *m = curl_multi_init();
    CURL **h = calloc((size_t)n, sizeof *h);
    double *t0 = calloc((size_t)n, sizeof *t0);
    struct curl_slist *hl = NULL;
    for (const char *const *p = headers; p && *p; p++)
        hl = curl_slist_append(hl, *p);
    for (int i = 0; i < n; i++) {
        memset(&resp[i], 0, sizeof resp[i]);
        CURL *c = h[i] = curl_easy_init();
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp[i]);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp[i]);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ms ? timeout_ms : 60000));
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PRIVATE, (void *)(intptr_t)i);
        curl_multi_add_handle(m, c);
        t0[i] = pimg_clock_ms();
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            void *pv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &pv);
            int i = (int)(intptr_t)pv;
            resp[i].curl_code = (int)msg->data.result;
            resp[i].seconds = (pimg_clock_ms() - t0[i]) / 1e3;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &resp[i].status);
        }
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (int i = 0; i < n; i++) {
        curl_multi_remove_handle(m, h[i]);
        curl_easy_cleanup(h[i]);
        if (!resp[i].body)
            resp[i].body = calloc(1, 1);
    }
    curl_slist_free_all(hl);
    curl_multi_cleanup(m);
    free(h);
    free(t0);
}

double rss_mib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    double v = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) {
            v = atof(line + 6) / 1024.0;
            break;
        }
    fclose(f);
    return v;
}

long http_get(const test_server *ts, const char *path, http_resp *resp)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", ts->base, path);
    return http_req("GET", url, NULL, NULL, 0, 0, resp);
}

long http_post(const test_server *ts, const char *path, const char *content_type, const void *body,
               size_t len, http_resp *resp)
{
    char url[512], ct[256];
    snprintf(url, sizeof url, "%s%s", ts->base, path);
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "");
    const char *h[] = {ct, NULL};
    return http_req("POST", url, h, body ? body : "", len, 0, resp);
}

void http_resp_free(http_resp *r)
{
    free(r->body);
    free(r->meta);
    memset(r, 0, sizeof *r);
}

int is_json_error(const http_resp *r, const char *code)
{
    if (!r->body || strncmp(r->content_type, "application/json", 16))
        return 0;
    cJSON *o = cJSON_Parse(r->body);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    int ok = cJSON_IsString(c) && cJSON_IsString(m) && c->valuestring[0] && m->valuestring[0] &&
             (!code || !strcmp(c->valuestring, code));
    cJSON_Delete(o);
    return ok;
}

/* ---- images ---- */

static void vips_once(void)
{
    static int done;
    if (!done) {
        if (VIPS_INIT("pimg-test"))
            abort();
        done = 1;
    }
}

void *make_image(const char *fmt, int w, int h, size_t *len)
{
    vips_once();
    int bands = !strcmp(fmt, "cmyk") || !strcmp(fmt, "pnga") ? 4 : 3;
    unsigned char *px = malloc((size_t)w * h * bands);
    if (!px)
        return NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *p = px + ((size_t)y * w + x) * bands;
            int inside = x > w / 4 && x < 3 * w / 4 && y > h / 3 && y < 2 * h / 3;
            p[0] = inside ? 40 : (unsigned char)(200 + 55 * x / (w > 1 ? w : 1));
            p[1] = inside ? 60 : (unsigned char)(180 + 60 * y / (h > 1 ? h : 1));
            p[2] = inside ? 120 : 230;
            if (bands == 4)
                p[3] = !strcmp(fmt, "cmyk") ? 20 : (unsigned char)(inside ? 255 : 128);
        }
    VipsImage *im = vips_image_new_from_memory_copy(px, (size_t)w * h * bands, w, h, bands, VIPS_FORMAT_UCHAR);
    free(px);
    if (!im)
        return NULL;
    void *buf = NULL;
    size_t n = 0;
    int r = -1;
    VipsImage *t = NULL;
    if (!strcmp(fmt, "jpg")) {
        r = vips_jpegsave_buffer(im, &buf, &n, "Q", 90, NULL);
    } else if (!strcmp(fmt, "png") || !strcmp(fmt, "pnga")) {
        r = vips_pngsave_buffer(im, &buf, &n, NULL);
    } else if (!strcmp(fmt, "png16")) {
        if (!vips_cast(im, &t, VIPS_FORMAT_USHORT, NULL)) {
            VipsImage *t2 = NULL;
            if (!vips_linear1(t, &t2, 256.0, 0.0, NULL)) {
                VipsImage *t3 = NULL;
                if (!vips_cast(t2, &t3, VIPS_FORMAT_USHORT, NULL)) {
                    t3->Type = VIPS_INTERPRETATION_RGB16;
                    r = vips_pngsave_buffer(t3, &buf, &n, "bitdepth", 16, NULL);
                    g_object_unref(t3);
                }
                g_object_unref(t2);
            }
            g_object_unref(t);
        }
    } else if (!strcmp(fmt, "cmyk")) {
        im->Type = VIPS_INTERPRETATION_CMYK;
        r = vips_jpegsave_buffer(im, &buf, &n, NULL);
    } else if (!strcmp(fmt, "gif")) {
        /* three frames stacked vertically = an animated GIF of height h */
        VipsImage *frames[3] = {im, im, im};
        if (!vips_arrayjoin(frames, &t, 3, "across", 1, NULL)) {
            VipsImage *c = NULL;
            if (!vips_copy(t, &c, NULL)) {
                vips_image_set_int(c, "page-height", h);
                r = vips_gifsave_buffer(c, &buf, &n, NULL);
                g_object_unref(c);
            }
            g_object_unref(t);
        }
    } else if (!strcmp(fmt, "webp")) {
        r = vips_webpsave_buffer(im, &buf, &n, NULL);
    } else if (!strcmp(fmt, "tiff")) {
        r = vips_tiffsave_buffer(im, &buf, &n, NULL);
    }
    g_object_unref(im);
    if (r) {
        vips_error_clear();
        return NULL;
    }
    void *out = malloc(n);
    if (out)
        memcpy(out, buf, n);
    g_free(buf);
    *len = n;
    return out;
}

void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        *len = (size_t)n;
    return buf;
}

void *big_photo(size_t *len)
{
    void *b = read_file("../shared/data/public/lomiri-wallpapers-16.04__life_by_Aitzol_Berasategi.jpg", len);
    return b ? b : make_image("jpg", 3000, 2000, len);
}
