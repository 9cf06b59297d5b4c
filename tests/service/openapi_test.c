/* openapi_test.c — openapi.yaml is complete for what the server does: served byte for byte at
 * /openapi.yaml, every route and method the server answers is described, every status each
 * endpoint can send (the ones the other suites assert) is documented, and every local $ref
 * resolves. The YAML is indexed by indentation (the file is block style only), which is all
 * these checks need. Full linting: `npx @redocly/cli lint openapi.yaml` (needs the network). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "../unit/testutil.h"

#define MAX_KEYS 4096

static char *keys[MAX_KEYS]; /* "paths//enhance/post/responses/400" style key paths */
static int n_keys;
static char *refs[MAX_KEYS];
static int n_refs;

static void strip_quotes(char *k)
{
    size_t n = strlen(k);
    if (n >= 2 && (k[0] == '\'' || k[0] == '"') && k[n - 1] == k[0]) {
        memmove(k, k + 1, n - 2);
        k[n - 2] = '\0';
    }
}

static void index_yaml(const char *text)
{
    char *stack[32];
    int indents[32], depth = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[1024];
        if (len >= sizeof line)
            len = sizeof line - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        p = eol ? eol + 1 : p + len;
        int ind = 0;
        while (line[ind] == ' ')
            ind++;
        char *s = line + ind;
        if (!*s || *s == '#' || *s == '-')
            continue;
        char *colon = strstr(s, ": ");
        if (!colon && s[strlen(s) - 1] == ':')
            colon = s + strlen(s) - 1;
        if (!colon)
            continue; /* continuation of a block scalar */
        *colon = '\0';
        char *val = colon + 1;
        while (*val == ' ')
            val++;
        char key[256];
        snprintf(key, sizeof key, "%s", s);
        strip_quotes(key);
        while (depth > 0 && indents[depth - 1] >= ind)
            depth--;
        if (depth >= 32)
            continue;
        char full[1024] = "";
        for (int i = 0; i < depth; i++) {
            strcat(full, stack[i]);
            strcat(full, "/");
        }
        strcat(full, key);
        if (n_keys < MAX_KEYS)
            keys[n_keys++] = strdup(full);
        stack[depth] = keys[n_keys - 1] + strlen(full) - strlen(key);
        indents[depth++] = ind;
        if (!strcmp(key, "$ref") && n_refs < MAX_KEYS) {
            char r[256];
            snprintf(r, sizeof r, "%s", val);
            strip_quotes(r);
            refs[n_refs++] = strdup(r);
        }
    }
}

static int has_key(const char *k)
{
    for (int i = 0; i < n_keys; i++)
        if (!strcmp(keys[i], k))
            return 1;
    return 0;
}

static char *spec;
static size_t spec_len;

static void load_spec(void)
{
    spec = read_file("openapi.yaml", &spec_len);
    ck_assert_msg(spec != NULL, "openapi.yaml missing at the project root");
    spec = realloc(spec, spec_len + 1);
    spec[spec_len] = '\0';
    index_yaml(spec);
}

START_TEST(served_file_is_the_repo_file)
{
    load_spec();
    test_server ts;
    ck_assert(ts_start(&ts, NULL, NULL) == 0);
    http_resp r;
    ck_assert_int_eq(http_get(&ts, "/openapi.yaml", &r), 200);
    ck_assert_str_eq(r.content_type, "application/yaml");
    ck_assert_uint_eq(r.len, spec_len);
    ck_assert(!memcmp(r.body, spec, spec_len));
    http_resp_free(&r);
    ck_assert_int_eq(ts_stop(&ts, 10000), 0);
}
END_TEST

START_TEST(every_route_and_status_is_documented)
{
    load_spec();
    ck_assert(has_key("openapi"));
    ck_assert(!strncmp(spec, "openapi: 3.", 11));
    static const struct {
        const char *path, *method;
        int statuses[12];
    } ops[] = {
        {"/enhance", "post", {200, 400, 405, 413, 415, 500, 501, 503, 504}},
        {"/analyze", "post", {200, 400, 405, 413, 415, 500, 503, 504}},
        {"/healthz", "get", {200, 405}},
        {"/readyz", "get", {200, 405, 503}},
        {"/metrics", "get", {200, 405}},
        {"/openapi.yaml", "get", {200, 404, 405}},
        {"/admin/models", "get", {200, 401, 403, 405}},
        {"/admin/feedback", "post", {201, 400, 401, 403, 405, 413, 415}},
        {"/admin/retrain", "post", {202, 400, 401, 403, 405, 409, 415}},
        {"/admin/retrain/{job}", "get", {200, 401, 403, 404, 405}},
    };
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        char k[256];
        snprintf(k, sizeof k, "paths/%s/%s", ops[i].path, ops[i].method);
        ck_assert_msg(has_key(k), "missing %s", k);
        snprintf(k, sizeof k, "paths/%s/%s/operationId", ops[i].path, ops[i].method);
        ck_assert_msg(has_key(k), "missing %s", k);
        for (int j = 0; j < 12 && ops[i].statuses[j]; j++) {
            snprintf(k, sizeof k, "paths/%s/%s/responses/%d", ops[i].path, ops[i].method, ops[i].statuses[j]);
            ck_assert_msg(has_key(k), "status not documented: %s", k);
        }
    }
    /* the error body and the headers clients rely on */
    ck_assert(has_key("components/schemas/Error/properties/error/properties/code"));
    ck_assert(has_key("components/schemas/Error/properties/error/properties/message"));
    ck_assert(has_key("components/responses/Unavailable/headers/Retry-After"));
    ck_assert(has_key("components/securitySchemes/bearer/scheme"));
    ck_assert(has_key("components/responses/Unauthorized/headers/WWW-Authenticate"));
    ck_assert(has_key("paths//enhance/post/responses/200/headers/X-Pimg-Metadata"));
    ck_assert(has_key("paths//enhance/post/responses/200/content/image/jpeg"));
    ck_assert(has_key("components/requestBodies/Image/content/multipart/form-data/schema/properties/image"));
    ck_assert(has_key("components/requestBodies/Image/content/multipart/form-data/schema/properties/reference"));
    static const char *params[] = {"ops", "background", "quality", "max_side"};
    for (size_t i = 0; i < 4; i++) {
        char k[128];
        snprintf(k, sizeof k, "components/parameters/%s/in", params[i]);
        ck_assert_msg(has_key(k), "missing %s", k);
    }
}
END_TEST

START_TEST(every_ref_resolves)
{
    load_spec();
    ck_assert_int_gt(n_refs, 10);
    for (int i = 0; i < n_refs; i++) {
        ck_assert_msg(!strncmp(refs[i], "#/", 2), "non-local $ref %s", refs[i]);
        ck_assert_msg(has_key(refs[i] + 2), "$ref %s does not resolve", refs[i]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service_openapi");
    TCase *tc = tcase_create("openapi");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, served_file_is_the_repo_file);
    tcase_add_test(tc, every_route_and_status_is_documented);
    tcase_add_test(tc, every_ref_resolves);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 0);
}
