/* image_test.c — unit tests for lib/image: decode of each allowed format, EXIF orientations
 * 1–8, the pixel gate (checked from the header), strict decode of truncated/garbage input,
 * and JPEG encoding. Test images are made here with libvips; no files needed. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "clock.h"
#include "image.h"
#include "pimg.h"
#include "testutil.h"

#define W 40
#define H 20

/* The upright test picture: grey, a red block top-left, a green block top-right. Any of the
 * eight EXIF transforms moves at least one block, so orientation errors can't hide. */
static VipsImage *upright(void)
{
    VipsImage *im = vips_image_new_memory();
    unsigned char *px = malloc(W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            unsigned char *p = px + (y * W + x) * 3;
            p[0] = p[1] = p[2] = 128;
            if (y < 8 && x < 8) { p[0] = 250; p[1] = 10; p[2] = 10; }
            if (y < 8 && x >= W - 8) { p[0] = 10; p[1] = 250; p[2] = 10; }
        }
    VipsImage *m = vips_image_new_from_memory_copy(px, W * H * 3, W, H, 3, VIPS_FORMAT_UCHAR);
    free(px);
    g_object_unref(im);
    m->Type = VIPS_INTERPRETATION_sRGB;
    return m;
}

/* Stored pixels for EXIF orientation o: the inverse of the display transform, written out
 * by hand (not with vips_autorot, which the loader itself uses). */
static VipsImage *stored_for(VipsImage *u, int o)
{
    VipsImage *a = NULL, *b = NULL;
    switch (o) {
    case 1: vips_copy(u, &a, NULL); return a;
    case 2: vips_flip(u, &a, VIPS_DIRECTION_HORIZONTAL, NULL); return a;
    case 3: vips_rot(u, &a, VIPS_ANGLE_D180, NULL); return a;
    case 4: vips_flip(u, &a, VIPS_DIRECTION_VERTICAL, NULL); return a;
    case 5: /* transpose = flip-h after a clockwise quarter turn */
        vips_rot(u, &a, VIPS_ANGLE_D90, NULL);
        vips_flip(a, &b, VIPS_DIRECTION_HORIZONTAL, NULL);
        g_object_unref(a);
        return b;
    case 6: vips_rot(u, &a, VIPS_ANGLE_D270, NULL); return a; /* displayed after 90 CW */
    case 7: /* transverse = flip-h after a 270 turn */
        vips_rot(u, &a, VIPS_ANGLE_D270, NULL);
        vips_flip(a, &b, VIPS_DIRECTION_HORIZONTAL, NULL);
        g_object_unref(a);
        return b;
    case 8: vips_rot(u, &a, VIPS_ANGLE_D90, NULL); return a;
    }
    return NULL;
}

/* Encodes im in the given loader's format ("jpg", "png", "webp", "tif", "gif", "avif"). */
static void *encode(VipsImage *im, const char *suffix, size_t *len)
{
    void *buf = NULL;
    int r = vips_image_write_to_buffer(im, suffix, &buf, len, NULL);
    ck_assert_msg(r == 0, "encode %s: %s", suffix, vips_error_buffer());
    return buf;
}

static void assert_upright_tensor(const pimg_tensor *t, const char *what)
{
    ck_assert_msg(t->w == W && t->h == H, "%s: size %dx%d", what, t->w, t->h);
    const float *tl = pimg_tensor_at(t, 2, 2), *tr = pimg_tensor_at(t, W - 3, 2), *mid = pimg_tensor_at(t, W / 2, H / 2);
    ck_assert_msg(tl[0] > 0.8f && tl[1] < 0.3f, "%s: top-left not red (%.2f %.2f %.2f)", what, tl[0], tl[1], tl[2]);
    ck_assert_msg(tr[1] > 0.8f && tr[0] < 0.3f, "%s: top-right not green (%.2f %.2f)", what, tr[0], tr[1]);
    ck_assert_msg(mid[0] > 0.4f && mid[0] < 0.6f, "%s: centre not grey", what);
}

START_TEST(exif_orientations_1_to_8)
{
    VipsImage *u = upright();
    for (int o = 1; o <= 8; o++) {
        VipsImage *s = stored_for(u, o), *c = NULL;
        ck_assert_ptr_nonnull(s);
        vips_copy(s, &c, NULL);
        vips_image_set_int(c, VIPS_META_ORIENTATION, o);
        size_t len;
        void *buf = encode(c, ".jpg[Q=95]", &len);
        pimg_image *img = NULL;
        pimg_error err = {0};
        ck_assert_int_eq(pimg_image_load_buffer(buf, len, NULL, &img, &err), PIMG_OK);
        ck_assert_int_eq(pimg_image_exif_orientation(img), o);
        ck_assert_int_eq(pimg_image_input_width(img), W);
        ck_assert_int_eq(pimg_image_input_height(img), H);
        pimg_tensor *t = NULL;
        ck_assert_int_eq(pimg_image_tensor(img, 1024, &t, &err), PIMG_OK);
        char what[32];
        snprintf(what, sizeof what, "orientation %d tensor", o);
        assert_upright_tensor(t, what);
        pimg_tensor_free(t);
        /* the full-resolution path must agree, and the output must carry no orientation tag */
        void *jpg = NULL;
        size_t jlen = 0;
        pimg_jpeg_opts jo = {.quality = 95};
        ck_assert_int_eq(pimg_image_encode_jpeg(img, &jo, &jpg, &jlen, &err), PIMG_OK);
        pimg_image *back = NULL;
        ck_assert_int_eq(pimg_image_load_buffer(jpg, jlen, NULL, &back, &err), PIMG_OK);
        ck_assert_int_eq(pimg_image_exif_orientation(back), 1);
        ck_assert_int_eq(pimg_image_tensor(back, 1024, &t, &err), PIMG_OK);
        snprintf(what, sizeof what, "orientation %d output", o);
        assert_upright_tensor(t, what);
        pimg_tensor_free(t);
        pimg_image_free(back);
        free(jpg);
        pimg_image_free(img);
        g_free(buf);
        g_object_unref(c);
        g_object_unref(s);
    }
    g_object_unref(u);
}
END_TEST

START_TEST(decodes_every_allowed_format)
{
    static const struct {
        const char *suffix;
        pimg_format fmt;
    } cases[] = {
        {".jpg", PIMG_FMT_JPEG}, {".png", PIMG_FMT_PNG}, {".webp[lossless]", PIMG_FMT_WEBP},
        {".tif", PIMG_FMT_TIFF}, {".gif", PIMG_FMT_GIF}, {".avif", PIMG_FMT_HEIF},
    };
    VipsImage *u = upright();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len;
        void *buf = encode(u, cases[i].suffix, &len);
        ck_assert_int_eq(pimg_format_sniff(buf, len), cases[i].fmt);
        pimg_image *img = NULL;
        pimg_error err = {0};
        ck_assert_msg(pimg_image_load_buffer(buf, len, NULL, &img, &err) == PIMG_OK, "%s: %s", cases[i].suffix, err.msg);
        pimg_tensor *t = NULL;
        ck_assert_msg(pimg_image_tensor(img, 1024, &t, &err) == PIMG_OK, "%s: %s", cases[i].suffix, err.msg);
        assert_upright_tensor(t, cases[i].suffix);
        pimg_tensor_free(t);
        pimg_image_free(img);
        g_free(buf);
    }
    g_object_unref(u);
}
END_TEST

START_TEST(alpha_16bit_and_grey_become_srgb8)
{
    /* 16-bit RGBA PNG with a transparent half: alpha is flattened on white */
    VipsImage *u = upright(), *u16 = NULL, *rgba = NULL, *grey = NULL;
    vips_cast(u, &u16, VIPS_FORMAT_USHORT, NULL);
    VipsImage *scaled = NULL;
    vips_linear1(u16, &scaled, 257.0, 0.0, NULL);
    VipsImage *s16 = NULL;
    vips_cast(scaled, &s16, VIPS_FORMAT_USHORT, NULL);
    s16->Type = VIPS_INTERPRETATION_RGB16;
    VipsImage *alpha = NULL;
    vips_black(&alpha, W, H, NULL); /* fully transparent */
    VipsImage *a16 = NULL;
    vips_cast(alpha, &a16, VIPS_FORMAT_USHORT, NULL);
    vips_bandjoin2(s16, a16, &rgba, NULL);
    rgba->Type = VIPS_INTERPRETATION_RGB16;
    size_t len;
    void *buf = encode(rgba, ".png", &len);
    pimg_image *img = NULL;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_image_load_buffer(buf, len, NULL, &img, &err), PIMG_OK);
    pimg_tensor *t = NULL;
    ck_assert_msg(pimg_image_tensor(img, 1024, &t, &err) == PIMG_OK, "%s", err.msg);
    ck_assert_int_eq(t->c, 3);
    ck_assert_float_eq_tol(*pimg_tensor_at(t, W / 2, H / 2), 1.0f, 0.01f); /* transparent → white */
    pimg_tensor_free(t);
    pimg_image_free(img);
    g_free(buf);
    /* 1-band grey JPEG */
    vips_colourspace(u, &grey, VIPS_INTERPRETATION_B_W, NULL);
    buf = encode(grey, ".jpg", &len);
    ck_assert_int_eq(pimg_image_load_buffer(buf, len, NULL, &img, &err), PIMG_OK);
    ck_assert_int_eq(pimg_image_tensor(img, 1024, &t, &err), PIMG_OK);
    ck_assert_int_eq(t->c, 3);
    const float *p = pimg_tensor_at(t, W / 2, H / 2);
    ck_assert_float_eq_tol(p[0], p[2], 0.02f);
    pimg_tensor_free(t);
    pimg_image_free(img);
    g_free(buf);
    g_object_unref(grey);
    g_object_unref(u);
    g_object_unref(u16);
    g_object_unref(scaled);
    g_object_unref(s16);
    g_object_unref(alpha);
    g_object_unref(a16);
    g_object_unref(rgba);
}
END_TEST

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return c ^ 0xFFFFFFFFu;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

START_TEST(pixel_gate_refuses_before_decoding)
{
    /* A ~60-byte PNG whose header claims 50000 x 50000: must be refused from the header,
     * fast, without allocating 7.5 GB. */
    unsigned char png[8 + 25 + 12];
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    put32(png + 8, 13);
    memcpy(png + 12, "IHDR", 4);
    put32(png + 16, 50000);
    put32(png + 20, 50000);
    png[24] = 8; png[25] = 2; png[26] = 0; png[27] = 0; png[28] = 0;
    put32(png + 29, crc32_of(png + 12, 17));
    memcpy(png + 33, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
    pimg_image *img = NULL;
    pimg_error err = {0};
    double t0 = pimg_clock_ms();
    ck_assert_int_eq(pimg_image_load_buffer(png, sizeof png, NULL, &img, &err), PIMG_ERR_TOO_LARGE);
    double ms = pimg_clock_ms() - t0;
    ck_assert_ptr_null(img);
    ck_assert_ptr_nonnull(strstr(err.msg, "MP"));
    ck_assert_msg(ms < 50.0, "gate took %.1f ms", ms);

    /* a configurable limit applies to ordinary images too */
    VipsImage *u = upright();
    size_t len;
    void *buf = encode(u, ".jpg", &len);
    pimg_load_opts lo = {.max_pixels = W * H - 1};
    ck_assert_int_eq(pimg_image_load_buffer(buf, len, &lo, &img, &err), PIMG_ERR_TOO_LARGE);
    lo.max_pixels = W * H;
    ck_assert_int_eq(pimg_image_load_buffer(buf, len, &lo, &img, &err), PIMG_OK);
    pimg_image_free(img);
    g_free(buf);
    g_object_unref(u);
}
END_TEST

START_TEST(truncated_and_garbage_are_errors_not_crashes)
{
    VipsImage *u = upright(), *big = NULL;
    vips_resize(u, &big, 8.0, NULL); /* 320x160, so truncation lands in the entropy data */
    const char *suffixes[] = {".jpg", ".png"};
    for (int s = 0; s < 2; s++) {
        size_t len;
        unsigned char *buf = encode(big, suffixes[s], &len);
        for (int pct = 10; pct <= 90; pct += 20) {
            size_t cut = len * pct / 100;
            pimg_image *img = NULL;
            pimg_error err = {0};
            pimg_status st = pimg_image_load_buffer(buf, cut, NULL, &img, &err);
            if (st == PIMG_OK) {
                pimg_tensor *t = NULL;
                st = pimg_image_tensor(img, 1024, &t, &err);
                ck_assert_ptr_null(t);
                pimg_image_free(img);
            }
            ck_assert_msg(st == PIMG_ERR_BAD_INPUT, "%s cut at %d%%: status %d (%s)", suffixes[s], pct, st, err.msg);
            ck_assert_msg(err.msg[0], "no message");
        }
        g_free(buf);
    }
    /* random bytes: not an allowed format */
    unsigned char junk[4096];
    srand(7);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rand();
    junk[0] = 0x00;
    pimg_image *img = NULL;
    ck_assert_int_eq(pimg_image_load_buffer(junk, sizeof junk, NULL, &img, NULL), PIMG_ERR_UNSUPPORTED);
    /* JPEG magic followed by garbage */
    junk[0] = 0xFF; junk[1] = 0xD8; junk[2] = 0xFF;
    pimg_status st = pimg_image_load_buffer(junk, sizeof junk, NULL, &img, NULL);
    if (st == PIMG_OK) {
        pimg_tensor *t = NULL;
        st = pimg_image_tensor(img, 1024, &t, NULL);
        pimg_image_free(img);
    }
    ck_assert_int_eq(st, PIMG_ERR_BAD_INPUT);
    ck_assert_int_eq(pimg_image_load_buffer(junk, 0, NULL, &img, NULL), PIMG_ERR_BAD_INPUT);
    /* SVG and PDF are never decoded */
    const char *svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>";
    ck_assert_int_eq(pimg_image_load_buffer(svg, strlen(svg), NULL, &img, NULL), PIMG_ERR_UNSUPPORTED);
    ck_assert_int_eq(pimg_image_load_buffer("%PDF-1.4\n", 9, NULL, &img, NULL), PIMG_ERR_UNSUPPORTED);
    g_object_unref(big);
    g_object_unref(u);
}
END_TEST

START_TEST(tensor_is_shrunk_on_load_and_encode_keeps_size)
{
    VipsImage *u = upright(), *big = NULL;
    vips_resize(u, &big, 60.0, "kernel", VIPS_KERNEL_NEAREST, NULL); /* 2400 x 1200 */
    size_t len;
    void *buf = encode(big, ".jpg", &len);
    pimg_image *img = NULL;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_image_load_buffer(buf, len, NULL, &img, &err), PIMG_OK);
    pimg_tensor *t = NULL;
    ck_assert_int_eq(pimg_image_tensor(img, 1024, &t, &err), PIMG_OK);
    ck_assert_int_eq(t->w, 1024);
    ck_assert_int_eq(t->h, 512);
    pimg_tensor_free(t);
    void *out = NULL;
    size_t olen = 0;
    ck_assert_int_eq(pimg_image_encode_jpeg(img, NULL, &out, &olen, &err), PIMG_OK);
    pimg_image *back = NULL;
    ck_assert_int_eq(pimg_image_load_buffer(out, olen, NULL, &back, &err), PIMG_OK);
    ck_assert_int_eq(pimg_image_width(back), 2400);
    ck_assert_int_eq(pimg_image_height(back), 1200);
    pimg_image_free(back);
    free(out);
    /* max_side shrinks the output; keep_icc embeds an sRGB profile */
    pimg_jpeg_opts jo = {.quality = 80, .max_side = 600, .keep_icc = 1};
    ck_assert_int_eq(pimg_image_encode_jpeg(img, &jo, &out, &olen, &err), PIMG_OK);
    VipsImage *chk = vips_image_new_from_buffer(out, olen, "", NULL);
    ck_assert_int_eq(chk->Xsize, 600);
    ck_assert_int_eq(chk->Ysize, 300);
    ck_assert(vips_image_get_typeof(chk, VIPS_META_ICC_NAME) != 0);
    g_object_unref(chk);
    free(out);
    /* quarter turn at full resolution */
    ck_assert_int_eq(pimg_image_rot90(img, 90, &err), PIMG_OK);
    ck_assert_int_eq(pimg_image_width(img), 1200);
    ck_assert_int_eq(pimg_image_height(img), 2400);
    ck_assert_int_eq(pimg_image_rot90(img, 45, &err), PIMG_ERR_BAD_INPUT);
    pimg_image_free(img);
    g_free(buf);
    g_object_unref(big);
    g_object_unref(u);
}
END_TEST

START_TEST(missing_file_is_io_error)
{
    pimg_image *img = NULL;
    pimg_error err = {0};
    ck_assert_int_eq(pimg_image_load_file("/nonexistent/x.jpg", NULL, &img, &err), PIMG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/x.jpg"));
    ck_assert_str_eq(pimg_status_name(PIMG_ERR_TOO_LARGE), "too_large");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, exif_orientations_1_to_8);
    tcase_add_test(tc, decodes_every_allowed_format);
    tcase_add_test(tc, alpha_16bit_and_grey_become_srgb8);
    tcase_add_test(tc, pixel_gate_refuses_before_decoding);
    tcase_add_test(tc, truncated_and_garbage_are_errors_not_crashes);
    tcase_add_test(tc, tensor_is_shrunk_on_load_and_encode_keeps_size);
    tcase_add_test(tc, missing_file_is_io_error);
    suite_add_tcase(s, tc);
    return pimg_test_run(s, 1);
}
