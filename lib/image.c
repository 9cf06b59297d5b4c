/* image.c — the one place pimg touches encoded images: sniffing, header-only open with the
 * pixel gate, strict lazy decode to sRGB uchar, the shrink-on-load analysis tensor, JPEG out.
 *
 * Every loader is called by name (vips_jpegload_buffer, ...) after sniffing the magic bytes, so
 * libvips' generic loader never guesses a format pimg did not allow. */
#include "image.h"
#include "clock.h"
#include "image_vips.h"
#include "fileio.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pimg_image {
    void *bytes; /* our copy of the encoded input */
    size_t len;
    pimg_format format;
    int exif_orientation;
    int in_w, in_h;   /* after EXIF orientation */
    VipsImage *full;  /* current full-resolution pixels, NULL until first needed */
    int corrected;    /* full holds corrections (not just the decoded input) */
    /* pimg_image_prefetch: a thread decodes full into memory while the analysis runs */
    pthread_t prefetch;
    int prefetching;
    VipsImage *prefetched; /* the thread's result, NULL if the decode failed */
};

pimg_format pimg_format_sniff(const void *buf, size_t len)
{
    const unsigned char *b = buf;
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return PIMG_FMT_JPEG;
    if (len >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8))
        return PIMG_FMT_PNG;
    if (len >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4))
        return PIMG_FMT_WEBP;
    if (len >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4)))
        return PIMG_FMT_TIFF;
    if (len >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6)))
        return PIMG_FMT_GIF;
    if (len >= 12 && !memcmp(b + 4, "ftyp", 4)) {
        static const char *brands[] = {"heic", "heix", "hevc", "hevx", "heim", "heis",
                                       "mif1", "msf1", "avif", "avis"};
        for (size_t i = 0; i < sizeof brands / sizeof *brands; i++)
            if (!memcmp(b + 8, brands[i], 4))
                return PIMG_FMT_HEIF;
    }
    return PIMG_FMT_UNKNOWN;
}

const char *pimg_format_name(pimg_format f)
{
    static const char *names[] = {"unknown", "jpeg", "png", "webp", "tiff", "gif", "heif"};
    return (unsigned)f < sizeof names / sizeof *names ? names[f] : "unknown";
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static uint32_t le16(const unsigned char *p) { return p[0] | p[1] << 8; }

/* Dimensions read straight from the container header for the formats where that is simple
 * (PNG IHDR, JPEG SOFn, GIF screen, WebP VP8/VP8L/VP8X), so the pixel gate never depends on
 * how far a loader reads before it allocates. Returns 0 when found. */
static int header_dims(const unsigned char *b, size_t len, pimg_format fmt, uint64_t *w, uint64_t *h)
{
    switch (fmt) {
    case PIMG_FMT_PNG:
        if (len >= 24 && !memcmp(b + 12, "IHDR", 4)) {
            *w = be32(b + 16);
            *h = be32(b + 20);
            return 0;
        }
        return -1;
    case PIMG_FMT_GIF:
        if (len >= 10) {
            *w = le16(b + 6);
            *h = le16(b + 8);
            return 0;
        }
        return -1;
    case PIMG_FMT_WEBP:
        if (len >= 30 && !memcmp(b + 12, "VP8X", 4)) {
            *w = 1 + (b[24] | b[25] << 8 | (uint32_t)b[26] << 16);
            *h = 1 + (b[27] | b[28] << 8 | (uint32_t)b[29] << 16);
            return 0;
        }
        if (len >= 25 && !memcmp(b + 12, "VP8L", 4)) {
            uint32_t v = b[21] | b[22] << 8 | (uint32_t)b[23] << 16 | (uint32_t)b[24] << 24;
            *w = 1 + (v & 0x3FFF);
            *h = 1 + ((v >> 14) & 0x3FFF);
            return 0;
        }
        if (len >= 30 && !memcmp(b + 12, "VP8 ", 4)) {
            *w = le16(b + 26) & 0x3FFF;
            *h = le16(b + 28) & 0x3FFF;
            return 0;
        }
        return -1;
    case PIMG_FMT_JPEG:
        /* Walk the marker segments up to the first start-of-frame. */
        for (size_t i = 2; i + 9 < len;) {
            if (b[i] != 0xFF) {
                i++;
                continue;
            }
            unsigned m = b[i + 1];
            if (m == 0xFF) {
                i++;
                continue;
            }
            if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
                i += 2;
                continue;
            }
            size_t seg = (size_t)b[i + 2] << 8 | b[i + 3];
            if ((m >= 0xC0 && m <= 0xCF) && m != 0xC4 && m != 0xC8 && m != 0xCC) {
                *h = (uint32_t)b[i + 5] << 8 | b[i + 6];
                *w = (uint32_t)b[i + 7] << 8 | b[i + 8];
                return 0;
            }
            if (m == 0xDA || seg < 2)
                return -1;
            i += 2 + seg;
        }
        return -1;
    default:
        return -1;
    }
}

static pimg_status too_large(pimg_error *err, uint64_t w, uint64_t h, uint64_t max_px)
{
    return pimg_error_set(err, PIMG_ERR_TOO_LARGE, "image is %llux%llu = %.1f MP, limit %.1f MP",
                          (unsigned long long)w, (unsigned long long)h, (double)(w * h) / 1e6,
                          (double)max_px / 1e6);
}

/* Opens the header (and, lazily, the pixels) with the loader for fmt. Strict: fail on errors
 * and truncation. Sequential access streams the decode; quarter turns need random access. */
static VipsImage *open_vips(const void *buf, size_t len, pimg_format fmt, VipsAccess access)
{
    VipsImage *im = NULL;
    int r = -1;
    switch (fmt) {
    case PIMG_FMT_JPEG:
        r = vips_jpegload_buffer((void *)buf, len, &im, "access", access, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
        break;
    case PIMG_FMT_PNG:
        r = vips_pngload_buffer((void *)buf, len, &im, "access", access, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
        break;
    case PIMG_FMT_WEBP:
        r = vips_webpload_buffer((void *)buf, len, &im, "access", access, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
        break;
    case PIMG_FMT_TIFF:
        r = vips_tiffload_buffer((void *)buf, len, &im, "access", access, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
        break;
    case PIMG_FMT_GIF:
        r = vips_gifload_buffer((void *)buf, len, &im, "access", access, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
        break;
    case PIMG_FMT_HEIF:
        r = vips_heifload_buffer((void *)buf, len, &im, "access", access, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
        break;
    case PIMG_FMT_UNKNOWN:
        break;
    }
    return r ? NULL : im;
}

/* Brings any decoded image to sRGB, 8 bit, exactly 3 bands: ICC import when a profile is
 * embedded (CMYK JPEGs need it), alpha flattened on white, grey replicated. Consumes `in`. */
static VipsImage *to_srgb8(VipsImage *in)
{
    VipsImage *t = NULL;
    if (vips_image_get_typeof(in, VIPS_META_ICC_NAME) && in->Type != VIPS_INTERPRETATION_sRGB) {
        if (!vips_icc_transform(in, &t, "srgb", "embedded", TRUE, "intent", VIPS_INTENT_RELATIVE, NULL)) {
            g_object_unref(in);
            in = t;
        } else {
            vips_error_clear(); /* a broken profile is no reason to refuse the photo */
        }
    }
    if (in->Type != VIPS_INTERPRETATION_sRGB || in->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_colourspace(in, &t, VIPS_INTERPRETATION_sRGB, NULL))
            goto fail;
        g_object_unref(in);
        in = t;
    }
    if (in->Bands == 2 || in->Bands == 4) {
        VipsArrayDouble *white = vips_array_double_newv(1, 255.0);
        int r = vips_flatten(in, &t, "background", white, "max_alpha", 255.0, NULL);
        vips_area_unref(VIPS_AREA(white));
        if (r)
            goto fail;
        g_object_unref(in);
        in = t;
    }
    if (in->Bands == 1) {
        if (vips_bandjoin_const1(in, &t, 0, NULL))
            goto fail;
        g_object_unref(in);
        VipsImage *b[3] = {t, t, t};
        if (vips_bandjoin(b, &in, 3, NULL)) {
            g_object_unref(t);
            return NULL;
        }
        g_object_unref(t);
    } else if (in->Bands > 3) {
        if (vips_extract_band(in, &t, 0, "n", 3, NULL))
            goto fail;
        g_object_unref(in);
        in = t;
    }
    if (in->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_cast_uchar(in, &t, NULL))
            goto fail;
        g_object_unref(in);
        in = t;
    }
    return in;
fail:
    g_object_unref(in);
    return NULL;
}

pimg_status pimg_image_load_buffer(const void *buf, size_t len, const pimg_load_opts *opts,
                                   pimg_image **out, pimg_error *err)
{
    uint64_t max_px = opts && opts->max_pixels ? opts->max_pixels : PIMG_DEFAULT_MAX_PIXELS;
    if (!buf || len == 0)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "empty image");
    pimg_format fmt = pimg_format_sniff(buf, len);
    if (fmt == PIMG_FMT_UNKNOWN)
        return pimg_error_set(err, PIMG_ERR_UNSUPPORTED,
                              "not a JPEG, PNG, WebP, TIFF, GIF or HEIF/AVIF image");
    uint64_t w, h;
    if (header_dims(buf, len, fmt, &w, &h) == 0 && w * h > max_px)
        return too_large(err, w, h, max_px);
    VipsImage *hdr = open_vips(buf, len, fmt, VIPS_ACCESS_SEQUENTIAL);
    if (!hdr)
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot read image header");
    w = (uint64_t)hdr->Xsize;
    h = (uint64_t)hdr->Ysize;
    int orient = vips_image_get_orientation(hdr);
    g_object_unref(hdr);
    if (w * h > max_px)
        return too_large(err, w, h, max_px);
    pimg_image *img = calloc(1, sizeof *img);
    if (!img || !(img->bytes = malloc(len))) {
        free(img);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    memcpy(img->bytes, buf, len);
    img->len = len;
    img->format = fmt;
    img->exif_orientation = orient >= 1 && orient <= 8 ? orient : 1;
    int swap = img->exif_orientation >= 5;
    img->in_w = (int)(swap ? h : w);
    img->in_h = (int)(swap ? w : h);
    *out = img;
    return PIMG_OK;
}

pimg_status pimg_image_load_file(const char *path, const pimg_load_opts *opts, pimg_image **out,
                                 pimg_error *err)
{
    void *buf = NULL;
    size_t len = 0;
    pimg_status st = pimg_file_read(path, &buf, &len, err);
    if (st)
        return st;
    st = pimg_image_load_buffer(buf, len, opts, out, err);
    free(buf);
    return st;
}

static void *prefetch_main(void *vp)
{
    pimg_image *img = vp;
    img->prefetched = vips_image_copy_memory(img->full);
    if (!img->prefetched)
        vips_error_clear(); /* the decode on first use reports it, with the caller's err */
    vips_thread_shutdown(); /* frees libvips' per-thread buffers of a thread it did not start */
    return NULL;
}

/* Waits for the prefetch thread and adopts its pixels. After a failed decode the lazy image has
 * been read once (sequential access) and cannot be read again: drop it, the next use reopens
 * it from the bytes and reports the error. */
static void prefetch_join(pimg_image *img)
{
    if (!img->prefetching)
        return;
    pthread_join(img->prefetch, NULL);
    img->prefetching = 0;
    g_object_unref(img->full);
    img->full = img->prefetched;
    img->prefetched = NULL;
}

void pimg_image_free(pimg_image *img)
{
    if (!img)
        return;
    prefetch_join(img);
    if (img->full)
        g_object_unref(img->full);
    free(img->bytes);
    free(img);
}

static pimg_status open_full(pimg_image *img, pimg_error *err)
{
    /* Quarter turns (EXIF or ours) read the source out of order: ask for random access only
     * then, so the common upright case streams. */
    VipsAccess access = img->exif_orientation == 1 ? VIPS_ACCESS_SEQUENTIAL : VIPS_ACCESS_RANDOM;
    VipsImage *im = open_vips(img->bytes, img->len, img->format, access), *t;
    if (!im)
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot decode image");
    if (img->exif_orientation != 1) {
        if (vips_autorot(im, &t, NULL)) {
            g_object_unref(im);
            return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot apply EXIF orientation");
        }
        g_object_unref(im);
        im = t;
    }
    if (!(im = to_srgb8(im)))
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot convert image to sRGB");
    img->full = im;
    return PIMG_OK;
}

pimg_status pimg_image_vips(pimg_image *img, VipsImage **out, pimg_error *err)
{
    prefetch_join(img);
    if (!img->full) {
        pimg_status st = open_full(img, err);
        if (st)
            return st;
    }
    *out = img->full;
    return PIMG_OK;
}

pimg_status pimg_image_prefetch(pimg_image *img, double max_pixels, pimg_error *err)
{
    if (img->prefetching || img->full || (double)img->in_w * img->in_h > max_pixels)
        return PIMG_OK;
    pimg_status st = open_full(img, err);
    if (st)
        return st;
    if (pthread_create(&img->prefetch, NULL, prefetch_main, img)) /* no thread: decode lazily */
        return PIMG_OK;
    img->prefetching = 1;
    return PIMG_OK;
}

void pimg_image_set_vips(pimg_image *img, VipsImage *next)
{
    prefetch_join(img);
    if (img->full)
        g_object_unref(img->full);
    img->full = next;
    img->corrected = 1;
}

const void *pimg_image_bytes(const pimg_image *img, size_t *len)
{
    *len = img->len;
    return img->bytes;
}

/* Header fields only: safe to read while a prefetch thread fills the pixels. */
int pimg_image_width(const pimg_image *img) { return img->full ? img->full->Xsize : img->in_w; }
int pimg_image_height(const pimg_image *img) { return img->full ? img->full->Ysize : img->in_h; }
int pimg_image_input_width(const pimg_image *img) { return img->in_w; }
int pimg_image_input_height(const pimg_image *img) { return img->in_h; }
int pimg_image_exif_orientation(const pimg_image *img) { return img->exif_orientation; }
pimg_format pimg_image_format(const pimg_image *img) { return img->format; }

/* The analysis copy of a JPEG: libjpeg's DCT scaling by the largest power of two that keeps
 * the longest side at or above 90% of max_side, then (only if still larger) a resize. This is
 * about twice as fast as vips_thumbnail, which insists on reaching max_side exactly and so
 * usually decodes at a smaller shrink. */
static VipsImage *jpeg_analysis_copy(const pimg_image *img, int max_side)
{
    int longest = img->in_w > img->in_h ? img->in_w : img->in_h, shrink = 1;
    while (shrink < 8 && longest / (shrink * 2) >= max_side * 9 / 10)
        shrink *= 2;
    VipsImage *im = NULL, *t;
    if (vips_jpegload_buffer(img->bytes, img->len, &im, "shrink", shrink, "fail_on", VIPS_FAIL_ON_ERROR,
                             "access", VIPS_ACCESS_SEQUENTIAL, NULL))
        return NULL;
    if (img->exif_orientation != 1) {
        VipsImage *mem = vips_image_copy_memory(im);
        g_object_unref(im);
        if (!mem || vips_autorot(mem, &t, NULL)) {
            if (mem)
                g_object_unref(mem);
            return NULL;
        }
        g_object_unref(mem);
        im = t;
    }
    if (!(im = to_srgb8(im)))
        return NULL;
    int side = im->Xsize > im->Ysize ? im->Xsize : im->Ysize;
    if (side > max_side) {
        if (vips_resize(im, &t, (double)max_side / side, NULL)) {
            g_object_unref(im);
            return NULL;
        }
        g_object_unref(im);
        im = t;
    }
    return im;
}

pimg_status pimg_image_tensor(const pimg_image *img, int max_side, pimg_tensor **out, pimg_error *err)
{
    if (max_side <= 0)
        max_side = PIMG_ANALYSIS_SIDE;
    VipsImage *th = NULL;
    if (img->format == PIMG_FMT_JPEG) {
        if (!(th = jpeg_analysis_copy(img, max_side)))
            return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot decode image");
    } else {
        /* thumbnail = shrink-on-load (WebP/HEIF scaled decode, PNG/TIFF plain) + autorotate +
         * colour management. */
        if (vips_thumbnail_buffer(img->bytes, img->len, &th, max_side, "height", max_side, "size",
                                  VIPS_SIZE_DOWN, "fail_on", VIPS_FAIL_ON_ERROR,
                                  /* libvips 8.14 does not forward fail_on from thumbnail_buffer
                                   * to the loader; the option string does reach it. */
                                  "option_string", "fail_on=error", NULL))
            return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot decode image");
        if (!(th = to_srgb8(th)))
            return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot convert image to sRGB");
    }
    /* The whole file is decoded here, so strictness (fail_on) is checked here too. */
    size_t n = 0;
    unsigned char *px = vips_image_write_to_memory(th, &n);
    if (!px) {
        g_object_unref(th);
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot decode image");
    }
    pimg_tensor *t = pimg_tensor_new(th->Xsize, th->Ysize, 3);
    g_object_unref(th);
    if (!t) {
        g_free(px);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    size_t cnt = (size_t)t->w * t->h * 3;
    for (size_t i = 0; i < cnt && i < n; i++)
        t->data[i] = px[i] * (1.0f / 255.0f);
    g_free(px);
    *out = t;
    return PIMG_OK;
}

/* The pixels to encode: current image, shrunk to max_side when asked. New reference. */
static pimg_status encode_source(pimg_image *img, const pimg_jpeg_opts *opts, VipsImage **out, pimg_error *err)
{
    VipsImage *im;
    pimg_status st = pimg_image_vips(img, &im, err);
    if (st)
        return st;
    int side = im->Xsize > im->Ysize ? im->Xsize : im->Ysize;
    if (opts && opts->max_side > 0 && side > opts->max_side) {
        if (vips_resize(im, out, (double)opts->max_side / side, NULL))
            return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot resize image");
        return PIMG_OK;
    }
    g_object_ref(im);
    *out = im;
    return PIMG_OK;
}

/* Metadata policy for output: always drop the source's EXIF (its orientation tag would turn
 * the already-upright pixels again); keep_icc tags the result as sRGB. Consumes `im`. */
static VipsImage *output_metadata(VipsImage *im, int keep_icc)
{
    VipsImage *c;
    if (vips_copy(im, &c, NULL)) {
        g_object_unref(im);
        return NULL;
    }
    g_object_unref(im);
    vips_image_remove(c, VIPS_META_EXIF_NAME);
    vips_image_remove(c, VIPS_META_XMP_NAME);
    vips_image_remove(c, VIPS_META_IPTC_NAME);
    vips_image_remove(c, VIPS_META_ORIENTATION);
    vips_image_remove(c, VIPS_META_ICC_NAME);
    if (keep_icc) {
        VipsBlob *prof = NULL;
        if (!vips_profile_load("srgb", &prof, NULL)) {
            size_t plen;
            const void *pd = vips_blob_get(prof, &plen);
            vips_image_set_blob_copy(c, VIPS_META_ICC_NAME, pd, plen);
            vips_area_unref(VIPS_AREA(prof));
        } else {
            vips_error_clear();
        }
    }
    return c;
}


typedef struct {
    double deadline_ms;
    int fired;
} kill_ctx;

/* libvips "eval" progress callback: stops the pipeline once the caller's deadline passed, so
 * one pathological image cannot hold a worker past its request's deadline. libvips may signal
 * from an internal image of the save, so the context, not the image, remembers the kill. */
static void kill_after_deadline(VipsImage *image, VipsProgress *progress, void *ud)
{
    (void)progress;
    kill_ctx *k = ud;
    if (pimg_clock_ms() > k->deadline_ms) {
        k->fired = 1;
        vips_image_set_kill(image, TRUE);
    }
}

pimg_status pimg_image_encode_jpeg(pimg_image *img, const pimg_jpeg_opts *opts, void **buf,
                                   size_t *len, pimg_error *err)
{
    VipsImage *im;
    pimg_status st = encode_source(img, opts, &im, err);
    if (st)
        return st;
    int q = opts && opts->quality > 0 ? opts->quality : 85;
    int keep = opts && opts->keep_icc;
    if (!(im = output_metadata(im, keep)))
        return pimg_error_vips(err, PIMG_ERR_INTERNAL, "cannot prepare output");
    void *b = NULL;
    size_t n = 0;
    kill_ctx kill = {opts ? opts->deadline_ms : 0, 0};
    if (kill.deadline_ms > 0) {
        vips_image_set_progress(im, TRUE);
        g_signal_connect(im, "eval", G_CALLBACK(kill_after_deadline), &kill);
    }
    int r = vips_jpegsave_buffer(im, &b, &n, "Q", q, "strip", !keep, NULL);
    g_object_unref(im);
    if (!img->corrected && img->full) {
        /* A sequential decode can be read once; an uncorrected image simply reopens from its
         * bytes next time, so encoding twice works. */
        g_object_unref(img->full);
        img->full = NULL;
    }
    if (r && kill.fired) {
        vips_error_clear();
        return pimg_error_set(err, PIMG_ERR_TIMEOUT, "processing deadline passed while encoding");
    }
    if (r)
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot encode image (corrupt input?)");
    *buf = b;
    *len = n;
    return PIMG_OK;
}

pimg_status pimg_image_write_jpeg(pimg_image *img, const pimg_jpeg_opts *opts, const char *path,
                                  pimg_error *err)
{
    void *b;
    size_t n;
    pimg_status st = pimg_image_encode_jpeg(img, opts, &b, &n, err);
    if (st)
        return st;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(b);
        return pimg_error_set(err, PIMG_ERR_IO, "%s: %s", path, strerror(errno));
    }
    int ok = fwrite(b, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    free(b);
    return ok ? PIMG_OK : pimg_error_set(err, PIMG_ERR_IO, "%s: write failed", path);
}

pimg_status pimg_image_rot90(pimg_image *img, int deg, pimg_error *err)
{
    deg = ((deg % 360) + 360) % 360;
    if (deg == 0)
        return PIMG_OK;
    if (deg % 90)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "rotation %d is not a quarter turn", deg);
    VipsImage *im, *t;
    pimg_status st = pimg_image_vips(img, &im, err);
    if (st)
        return st;
    /* A sequential source can't be turned: bring it to memory first (the pixels are needed
     * whole anyway to read them in turned order). */
    VipsImage *mem = vips_image_copy_memory(im);
    if (!mem)
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot decode image");
    VipsAngle a = deg == 90 ? VIPS_ANGLE_D90 : deg == 180 ? VIPS_ANGLE_D180 : VIPS_ANGLE_D270;
    int r = vips_rot(mem, &t, a, NULL);
    g_object_unref(mem);
    if (r)
        return pimg_error_vips(err, PIMG_ERR_INTERNAL, "rotate");
    pimg_image_set_vips(img, t);
    return PIMG_OK;
}
