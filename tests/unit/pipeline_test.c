/* pipeline_test.c — unit tests for lib/pipeline: option parsing, the analysis JSON the
 * contract promises, `enhance` keeping the input size with --ops enhance, and decoding ahead
 * (prefetch) changing nothing but the speed. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "pimg.h"
#include "pipeline.h"
#include "testutil.h"

START_TEST(ops_and_background_parse)
{
    unsigned ops = 0;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_ops_parse("orient,level,enhance", &ops, &err), PIMG_OK);
    ck_assert_uint_eq(ops, PIMG_OP_ORIENT | PIMG_OP_LEVEL | PIMG_OP_ENHANCE);
    ck_assert_int_eq(pimg_ops_parse("", &ops, &err), PIMG_OK);
    ck_assert_uint_eq(ops, 0);
    ck_assert_int_eq(pimg_ops_parse("crop,,background", &ops, &err), PIMG_OK);
    ck_assert_uint_eq(ops, PIMG_OP_CROP | PIMG_OP_BACKGROUND);
    ck_assert_int_eq(pimg_ops_parse("enhance,sharpen", &ops, &err), PIMG_ERR_BAD_INPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "sharpen"));
    pimg_background bg;
    ck_assert_int_eq(pimg_background_parse("white", &bg, &err), PIMG_OK);
    ck_assert_int_eq(bg, PIMG_BG_WHITE);
    ck_assert_int_eq(pimg_background_parse("pink", &bg, &err), PIMG_ERR_BAD_INPUT);
}
END_TEST

/* A 300x200 photo-like test image (smooth gradient + a dark square) as JPEG bytes. */
static void *test_jpeg(size_t *len)
{
    VipsImage *x = NULL, *g = NULL, *rgb = NULL;
    vips_xyz(&x, 300, 200, NULL);
    VipsImage *bands[2];
    vips_extract_band(x, &bands[0], 0, NULL);
    vips_extract_band(x, &bands[1], 1, NULL);
    VipsImage *sum = NULL;
    vips_add(bands[0], bands[1], &sum, NULL);
    vips_linear1(sum, &g, 0.5, 10.0, NULL);
    VipsImage *c3[3] = {g, g, g};
    vips_bandjoin(c3, &rgb, 3, NULL);
    VipsImage *u8 = NULL;
    vips_cast_uchar(rgb, &u8, NULL);
    void *buf = NULL;
    vips_jpegsave_buffer(u8, &buf, len, "Q", 90, NULL);
    g_object_unref(x);
    g_object_unref(bands[0]);
    g_object_unref(bands[1]);
    g_object_unref(sum);
    g_object_unref(g);
    g_object_unref(rgb);
    g_object_unref(u8);
    return buf;
}

START_TEST(analysis_json_has_contract_fields)
{
    size_t len;
    void *buf = test_jpeg(&len);
    pimg_image *img = NULL;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_image_load_buffer(buf, len, NULL, &img, &err), PIMG_OK);
    pimg_analysis a;
    ck_assert_int_eq(pimg_analysis_init(&a), PIMG_OK);
    ck_assert_int_eq(pimg_pipeline_analyze(NULL, img, NULL, &a, &err), PIMG_OK);
    cJSON *j = pimg_analysis_to_json(&a, "x.jpg");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "file")->valuestring, "x.jpg");
    ck_assert_int_eq(cJSON_GetObjectItem(j, "width")->valueint, 300);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "height")->valueint, 200);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "exif_orientation")->valueint, 1);
    const char *keys[] = {"rotation", "rotation_confidence", "level", "box", "box_confidence",
                          "quality", "applied", "timings_ms"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        ck_assert_msg(cJSON_GetObjectItem(j, keys[i]) != NULL, "missing %s", keys[i]);
    int rot = cJSON_GetObjectItem(j, "rotation")->valueint;
    ck_assert(rot == 0 || rot == 90 || rot == 180 || rot == 270);
    double lvl = cJSON_GetObjectItem(j, "level")->valuedouble;
    ck_assert(lvl >= -20 && lvl <= 20);
    cJSON *q = cJSON_GetObjectItem(j, "quality");
    double br = cJSON_GetObjectItem(q, "brightness")->valuedouble;
    ck_assert(br > 0.05 && br < 0.95);
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(j, "applied")));
    cJSON_Delete(j);
    pimg_analysis_clear(&a);
    pimg_image_free(img);
    g_free(buf);
}
END_TEST

START_TEST(enhance_only_keeps_size)
{
    size_t len;
    void *buf = test_jpeg(&len);
    pimg_image *img = NULL;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_image_load_buffer(buf, len, NULL, &img, &err), PIMG_OK);
    pimg_pipeline_opts o;
    pimg_pipeline_opts_default(&o);
    o.ops = PIMG_OP_ENHANCE;
    pimg_analysis a;
    pimg_analysis_init(&a);
    void *out = NULL;
    size_t olen = 0;
    ck_assert_msg(pimg_pipeline_enhance(NULL, img, &o, &a, &out, &olen, &err) == PIMG_OK, "%s", err.msg);
    VipsImage *r = vips_image_new_from_buffer(out, olen, "", NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->Xsize, 300);
    ck_assert_int_eq(r->Ysize, 200);
    ck_assert_int_eq(a.out_width, 300);
    g_object_unref(r);
    free(out);
    pimg_analysis_clear(&a);
    pimg_image_free(img);
    g_free(buf);
}
END_TEST

START_TEST(undecodable_input_fails_cleanly)
{
    /* a JPEG cut in half: the header opens, analysis must fail with BAD_INPUT */
    size_t len;
    void *buf = test_jpeg(&len);
    pimg_image *img = NULL;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_image_load_buffer(buf, len / 2, NULL, &img, &err), PIMG_OK);
    pimg_analysis a;
    pimg_analysis_init(&a);
    void *out = NULL;
    size_t olen = 0;
    ck_assert_int_eq(pimg_pipeline_enhance(NULL, img, NULL, &a, &out, &olen, &err), PIMG_ERR_BAD_INPUT);
    ck_assert_ptr_null(out);
    pimg_analysis_clear(&a);
    pimg_image_free(img);
    g_free(buf);
}
END_TEST

/* One enhance run of buf with the given prefetch setting (no models: enhance ops only, plus an
 * EXIF turn when the file has one). Returns the status; the JPEG goes to out and olen. */
static pimg_status enhance_with(const void *buf, size_t len, int prefetch, void **out, size_t *olen)
{
    pimg_image *img = NULL;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_image_load_buffer(buf, len, NULL, &img, &err), PIMG_OK);
    pimg_pipeline_opts o;
    pimg_pipeline_opts_default(&o);
    ck_assert_int_eq(o.prefetch, 1);
    o.prefetch = prefetch;
    pimg_analysis a;
    pimg_analysis_init(&a);
    *out = NULL;
    *olen = 0;
    pimg_status st = pimg_pipeline_enhance(NULL, img, &o, &a, out, olen, &err);
    pimg_analysis_clear(&a);
    pimg_image_free(img);
    return st;
}

START_TEST(prefetch_changes_nothing_but_speed)
{
    size_t len;
    void *buf = test_jpeg(&len);
    /* the same photo stored turned, with EXIF orientation 6: the prefetched pixels must be the
     * turned ones */
    VipsImage *im = vips_image_new_from_buffer(buf, len, "", NULL), *turned = NULL;
    ck_assert_ptr_nonnull(im);
    ck_assert_int_eq(vips_rot(im, &turned, VIPS_ANGLE_D270, NULL), 0);
    VipsImage *tagged = NULL;
    ck_assert_int_eq(vips_copy(turned, &tagged, NULL), 0);
    vips_image_set_int(tagged, VIPS_META_ORIENTATION, 6);
    void *exif = NULL;
    size_t exif_len = 0;
    ck_assert_int_eq(vips_jpegsave_buffer(tagged, &exif, &exif_len, "Q", 90, NULL), 0);
    g_object_unref(im);
    g_object_unref(turned);
    g_object_unref(tagged);
    const struct {
        const void *buf;
        size_t len;
        int w, h;
    } in[] = {{buf, len, 300, 200}, {exif, exif_len, 300, 200}};
    for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
        void *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        ck_assert_int_eq(enhance_with(in[i].buf, in[i].len, 1, &a, &al), PIMG_OK);
        ck_assert_int_eq(enhance_with(in[i].buf, in[i].len, 0, &b, &bl), PIMG_OK);
        ck_assert_msg(al == bl && !memcmp(a, b, al), "case %zu: prefetch changed the output", i);
        VipsImage *r = vips_image_new_from_buffer(a, al, "", NULL);
        ck_assert_int_eq(r->Xsize, in[i].w);
        ck_assert_int_eq(r->Ysize, in[i].h);
        g_object_unref(r);
        free(a);
        free(b);
    }
    /* a file whose tail is cut: the same error with and without prefetch */
    void *a = NULL;
    size_t al = 0;
    ck_assert_int_eq(enhance_with(buf, len * 3 / 4, 1, &a, &al), PIMG_ERR_BAD_INPUT);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(enhance_with(buf, len * 3 / 4, 0, &a, &al), PIMG_ERR_BAD_INPUT);
    ck_assert_ptr_null(a);
    /* started and never used: freeing the image joins the decode (ASan checks the rest) */
    pimg_image *img = NULL;
    ck_assert_int_eq(pimg_image_load_buffer(buf, len, NULL, &img, NULL), PIMG_OK);
    ck_assert_int_eq(pimg_image_prefetch(img, PIMG_PREFETCH_MAX_PIXELS, NULL), PIMG_OK);
    pimg_image_free(img);
    g_free(exif);
    g_free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ops_and_background_parse);
    tcase_add_test(tc, analysis_json_has_contract_fields);
    tcase_add_test(tc, enhance_only_keeps_size);
    tcase_add_test(tc, undecodable_input_fails_cleanly);
    tcase_add_test(tc, prefetch_changes_nothing_but_speed);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 1);
}
