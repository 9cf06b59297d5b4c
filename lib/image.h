/* image.h — decoding, the analysis tensor, and JPEG encoding.
 *
 * pimg_image_load_* sniffs the format from magic bytes (allow-list: JPEG, PNG, WebP, TIFF, GIF,
 * HEIF/AVIF), reads only the header, refuses images above the pixel limit before any pixel is
 * decoded, and keeps its own copy of the encoded bytes so the analysis tensor can be made with
 * shrink-on-load. Full-resolution pixels are decoded lazily (when corrections are applied or
 * the image is encoded), already turned by the EXIF orientation, in sRGB, 8 bit, 3 bands
 * (alpha is flattened on white). Decoding is strict: truncated or corrupt data is an error,
 * never a half-grey picture. */
#ifndef PIMG_IMAGE_H
#define PIMG_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"

typedef struct pimg_image pimg_image;

typedef enum {
    PIMG_FMT_UNKNOWN = 0,
    PIMG_FMT_JPEG,
    PIMG_FMT_PNG,
    PIMG_FMT_WEBP,
    PIMG_FMT_TIFF,
    PIMG_FMT_GIF,
    PIMG_FMT_HEIF
} pimg_format;

typedef struct {
    uint64_t max_pixels; /* refuse width*height above this (0 = default 50 MP) */
} pimg_load_opts;

#define PIMG_DEFAULT_MAX_PIXELS (50ULL * 1000 * 1000)
#define PIMG_ANALYSIS_SIDE 1024
/* Largest input pimg_pipeline_enhance decodes into memory ahead (24 MP: 72 MB of pixels). */
#define PIMG_PREFETCH_MAX_PIXELS 24e6

/* The format the first bytes announce, PIMG_FMT_UNKNOWN if not on the allow-list. */
pimg_format pimg_format_sniff(const void *buf, size_t len);

/* Lower-case name ("jpeg", "png", ...) of a format. */
const char *pimg_format_name(pimg_format f);

/* Opens an encoded image held in memory; buf is copied, so it may be freed after the call.
 * opts may be NULL for defaults. Errors: UNSUPPORTED (not an allowed format), TOO_LARGE (pixel
 * limit, checked from the header), BAD_INPUT (header unreadable).
 * Ownership: *out is written only on success and freed with pimg_image_free. */
pimg_status pimg_image_load_buffer(const void *buf, size_t len, const pimg_load_opts *opts,
                                   pimg_image **out, pimg_error *err);

/* Same as pimg_image_load_buffer for a file path (IO on read failure). */
pimg_status pimg_image_load_file(const char *path, const pimg_load_opts *opts, pimg_image **out,
                                 pimg_error *err);

/* Frees the image and everything it holds; NULL-safe. */
void pimg_image_free(pimg_image *img);

/* Size of the current pixels: after EXIF orientation and after any correction applied so far. */
int pimg_image_width(const pimg_image *img);
int pimg_image_height(const pimg_image *img);

/* Size after EXIF orientation, before any pimg correction. */
int pimg_image_input_width(const pimg_image *img);
int pimg_image_input_height(const pimg_image *img);

/* EXIF orientation tag as found (1..8; 1 when absent). */
int pimg_image_exif_orientation(const pimg_image *img);

pimg_format pimg_image_format(const pimg_image *img);

/* A 3-channel sRGB float tensor (0..1) of the input, EXIF-oriented, longest side at most
 * max_side and, for large JPEGs, at least 90% of it (shrink-on-load picks a power-of-two DCT
 * scale, so cost barely grows with megapixels; never upsized). Decodes the
 * whole file strictly: BAD_INPUT on truncated/corrupt data.
 * Ownership: *out written only on success, freed with pimg_tensor_free. */
/* Starts decoding the full-resolution pixels into memory on a second thread, so that the
 * decode overlaps the analysis (which makes its own small copy with a shrink-on-load decode)
 * and the corrections and the encoder later read memory. Worth it only when the output is
 * encoded (enhance). A no-op when the pixels are already open or the input has more than
 * max_pixels pixels (those stream as before, to bound memory). A decode error surfaces at the
 * first use of the pixels, as without prefetch. Memory: 3 bytes per pixel, owned by img. */
pimg_status pimg_image_prefetch(pimg_image *img, double max_pixels, pimg_error *err);

pimg_status pimg_image_tensor(const pimg_image *img, int max_side, pimg_tensor **out,
                              pimg_error *err);

typedef struct {
    int quality;   /* 1..100, 0 = default 85 */
    int keep_icc;  /* nonzero: embed an sRGB profile; zero: strip all metadata */
    int max_side;  /* shrink so the longest side is at most this; 0 = keep size */
    double deadline_ms; /* CLOCK_MONOTONIC ms after which encoding (and the full-size decode
                           streaming into it) is stopped with vips_image_set_kill and the call
                           returns PIMG_ERR_TIMEOUT; 0 = none */
} pimg_jpeg_opts;

/* Encodes the current pixels as JPEG into a new buffer. BAD_INPUT when the source turns out
 * to be corrupt while decoding. The input is decoded as a stream: an image without
 * corrections may be encoded any number of times, a corrected one once. Ownership: *buf is malloc'd memory the caller frees with free(). */
pimg_status pimg_image_encode_jpeg(pimg_image *img, const pimg_jpeg_opts *opts, void **buf,
                                   size_t *len, pimg_error *err);

/* Encodes to a file (same rules as pimg_image_encode_jpeg). */
pimg_status pimg_image_write_jpeg(pimg_image *img, const pimg_jpeg_opts *opts, const char *path,
                                  pimg_error *err);

/* Turns the current pixels clockwise by deg (0/90/180/270), lazily, at full resolution. */
pimg_status pimg_image_rot90(pimg_image *img, int deg, pimg_error *err);

#endif
