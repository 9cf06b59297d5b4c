/* background.c — background blur / white, centring crop and the compliance report (see
 * background.h). Pixel work runs through libvips at full resolution; masks are small float
 * tensors resampled to the image on the fly. */
#include "background.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image_vips.h"

/* Unrefs a NULL-terminated list of images (NULL entries skipped up to the count). */
static void unref_all(VipsImage **v, int n)
{
    for (int i = 0; i < n; i++)
        if (v[i])
            g_object_unref(v[i]);
}

/* The current pixels, made random-access: the decoder streams top to bottom, but blurs,
 * resizes and crops read out of order, so the decoded image is materialised once (about 3
 * bytes per pixel) and installed as the image's pixels. */
static pimg_status random_access(pimg_image *img, VipsImage **out, pimg_error *err)
{
    VipsImage *base, *mem;
    pimg_status st = pimg_image_vips(img, &base, err);
    if (st)
        return st;
    if (!(mem = vips_image_copy_memory(base)))
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, "cannot decode image");
    pimg_image_set_vips(img, mem);
    *out = mem;
    return PIMG_OK;
}

/* The mask as a 1-band float VipsImage of exactly w x h, 0..1. */
static pimg_status mask_to_vips(const pimg_tensor *m, int w, int h, VipsImage **out, pimg_error *err)
{
    VipsImage *a = vips_image_new_from_memory_copy(m->data, sizeof(float) * (size_t)m->w * m->h, m->w, m->h, 1,
                                                   VIPS_FORMAT_FLOAT);
    VipsImage *b = NULL, *c = NULL;
    if (!a)
        return pimg_error_vips(err, PIMG_ERR_NOMEM, "mask");
    if (m->w == w && m->h == h) {
        *out = a;
        return PIMG_OK;
    }
    if (vips_resize(a, &b, (double)w / m->w, "vscale", (double)h / m->h, "kernel", VIPS_KERNEL_LINEAR, NULL) ||
        vips_embed(b, &c, 0, 0, w, h, "extend", VIPS_EXTEND_COPY, NULL)) {
        VipsImage *v[] = {a, b};
        unref_all(v, 2);
        return pimg_error_vips(err, PIMG_ERR_INTERNAL, "mask resize");
    }
    g_object_unref(a);
    g_object_unref(b);
    *out = c;
    return PIMG_OK;
}

/* out = bg + (img - bg) * m, cast to uchar, installed as the image's pixels. */
static pimg_status blend_in(pimg_image *img, VipsImage *base, VipsImage *bg, VipsImage *m, pimg_error *err)
{
    VipsImage *d = NULL, *p = NULL, *s = NULL, *r = NULL, *u = NULL;
    /* +0.5 before the (truncating) cast rounds, so product pixels (m = 1) come back exact. */
    if (vips_subtract(base, bg, &d, NULL) || vips_multiply(d, m, &p, NULL) || vips_add(bg, p, &s, NULL) ||
        vips_linear1(s, &r, 1.0, 0.5, NULL) || vips_cast(r, &u, VIPS_FORMAT_UCHAR, NULL)) {
        VipsImage *v[] = {d, p, s, r};
        unref_all(v, 4);
        return pimg_error_vips(err, PIMG_ERR_INTERNAL, "background blend");
    }
    VipsImage *v[] = {d, p, s, r};
    unref_all(v, 4);
    /* Computed once: the compliance check and the encoder both read the result, and a lazy
     * pipeline would run the whole blend (and blur) twice. */
    VipsImage *mem = vips_image_copy_memory(u);
    g_object_unref(u);
    if (!mem)
        return pimg_error_vips(err, PIMG_ERR_INTERNAL, "background blend");
    pimg_image_set_vips(img, mem);
    return PIMG_OK;
}

pimg_status pimg_background_blur(pimg_image *img, const pimg_tensor *mask, pimg_error *err)
{
    VipsImage *base;
    pimg_status st = random_access(img, &base, err);
    if (st)
        return st;
    g_object_ref(base);
    int W = base->Xsize, H = base->Ysize;
    VipsImage *m = NULL;
    if ((st = mask_to_vips(mask, W, H, &m, err))) {
        g_object_unref(base);
        return st;
    }
    /* Blur at a reduced scale (sigma 4 there): the same look as a huge kernel at full size
     * for a fraction of the cost. Normalised convolution keeps product colours out. */
    double sigma_full = fmax(W, H) / 60.0, k = fmax(1.0, sigma_full / 4.0);
    VipsImage *f = NULL, *inv = NULL, *wimg = NULL, *sm = NULL, *sw = NULL, *bn = NULL, *bd = NULL, *bd2 = NULL,
              *q0 = NULL, *q = NULL, *up = NULL, *upc = NULL;
    if (vips_cast(base, &f, VIPS_FORMAT_FLOAT, NULL) || vips_linear1(m, &inv, -1.0, 1.0, NULL) ||
        vips_multiply(f, inv, &wimg, NULL) ||
        vips_resize(wimg, &sm, 1.0 / k, "kernel", VIPS_KERNEL_LINEAR, NULL) ||
        vips_resize(inv, &sw, 1.0 / k, "kernel", VIPS_KERNEL_LINEAR, NULL) ||
        vips_gaussblur(sm, &bn, fmin(sigma_full, 4.0), "precision", VIPS_PRECISION_FLOAT, NULL) ||
        vips_gaussblur(sw, &bd, fmin(sigma_full, 4.0), "precision", VIPS_PRECISION_FLOAT, NULL) ||
        vips_linear1(bd, &bd2, 1.0, 1e-4, NULL) || vips_divide(bn, bd2, &q0, NULL) ||
        /* materialise the small blurred plate: otherwise every output tile of the upsample
         * re-runs the shrink and the blur of its source area */
        !(q = vips_image_copy_memory(q0)) ||
        vips_resize(q, &up, (double)W / q->Xsize, "vscale", (double)H / q->Ysize, "kernel", VIPS_KERNEL_LINEAR,
                    NULL) ||
        vips_embed(up, &upc, 0, 0, W, H, "extend", VIPS_EXTEND_COPY, NULL)) {
        st = pimg_error_vips(err, PIMG_ERR_INTERNAL, "background blur");
    } else {
        st = blend_in(img, f, upc, m, err);
    }
    VipsImage *v[] = {base, m, f, inv, wimg, sm, sw, bn, bd, bd2, q0, q, up, upc};
    unref_all(v, 14);
    return st;
}

pimg_status pimg_background_white(pimg_image *img, const pimg_tensor *mask, int shadow, pimg_error *err)
{
    VipsImage *base;
    pimg_status st = random_access(img, &base, err);
    if (st)
        return st;
    g_object_ref(base);
    int W = base->Xsize, H = base->Ysize;
    VipsImage *m = NULL, *f = NULL, *white = NULL, *sb = NULL, *ss = NULL, *sh = NULL;
    if ((st = mask_to_vips(mask, W, H, &m, err))) {
        g_object_unref(base);
        return st;
    }
    if (vips_cast(base, &f, VIPS_FORMAT_FLOAT, NULL)) {
        st = pimg_error_vips(err, PIMG_ERR_INTERNAL, "background white");
        goto out;
    }
    if (shadow) {
        /* A soft contact shadow: the mask blurred and dropped by 2% of the height, at most 25%
         * darker; the product itself covers its own part of it. */
        int dy = H / 50 > 1 ? H / 50 : 1;
        if (vips_gaussblur(m, &sb, fmax(W, H) / 80.0, "precision", VIPS_PRECISION_FLOAT, NULL) ||
            vips_embed(sb, &ss, 0, dy, W, H, "extend", VIPS_EXTEND_BLACK, NULL) ||
            vips_linear1(ss, &sh, -0.25 * 255.0, 255.0, NULL)) {
            st = pimg_error_vips(err, PIMG_ERR_INTERNAL, "background shadow");
            goto out;
        }
        white = sh;
        sh = NULL;
    } else if (vips_black(&sb, W, H, NULL) || vips_linear1(sb, &white, 1.0, 255.0, NULL)) {
        st = pimg_error_vips(err, PIMG_ERR_INTERNAL, "background white");
        goto out;
    }
    st = blend_in(img, f, white, m, err);
out:;
    VipsImage *v[] = {base, m, f, white, sb, ss, sh};
    unref_all(v, 7);
    return st;
}

/* Bilinear sample of a 1-channel tensor, 0 outside. */
static float sample0(const pimg_tensor *t, double x, double y)
{
    if (x < -0.5 || y < -0.5 || x > t->w - 0.5 || y > t->h - 0.5)
        return 0;
    x = fmin(fmax(x, 0), t->w - 1);
    y = fmin(fmax(y, 0), t->h - 1);
    int x0 = (int)x, y0 = (int)y, x1 = x0 + 1 < t->w ? x0 + 1 : x0, y1 = y0 + 1 < t->h ? y0 + 1 : y0;
    double ax = x - x0, ay = y - y0;
    return (float)((1 - ay) * ((1 - ax) * t->data[(size_t)y0 * t->w + x0] + ax * t->data[(size_t)y0 * t->w + x1]) +
                   ay * ((1 - ax) * t->data[(size_t)y1 * t->w + x0] + ax * t->data[(size_t)y1 * t->w + x1]));
}

pimg_status pimg_background_mask_for_level(const pimg_tensor *mask, double deg, int full_w, int full_h, int cur_w,
                                           int cur_h, pimg_tensor **out, pimg_error *err)
{
    (void)full_h;
    pimg_tensor *r = deg != 0.0 ? pimg_tensor_rotate(mask, deg) : pimg_tensor_copy(mask);
    if (!r)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    double s = (double)full_w / mask->w; /* full pixels per mask pixel */
    int ow = (int)lround(cur_w / s), oh = (int)lround(cur_h / s);
    if (ow < 1) ow = 1;
    if (oh < 1) oh = 1;
    pimg_tensor *o = pimg_tensor_new(ow, oh, 1);
    if (!o) {
        pimg_tensor_free(r);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    double ox = (mask->w - cur_w / s) / 2, oy = (mask->h - cur_h / s) / 2;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            o->data[(size_t)y * ow + x] = sample0(r, ox + x, oy + y);
    pimg_tensor_free(r);
    *out = o;
    return PIMG_OK;
}

/* Bounding box of mask >= 0.5; 0 when empty. */
static int mask_bbox(const pimg_tensor *m, int b[4])
{
    b[0] = m->w;
    b[1] = m->h;
    b[2] = -1;
    b[3] = -1;
    for (int y = 0; y < m->h; y++)
        for (int x = 0; x < m->w; x++)
            if (m->data[(size_t)y * m->w + x] >= 0.5f) {
                if (x < b[0]) b[0] = x;
                if (x > b[2]) b[2] = x;
                if (y < b[1]) b[1] = y;
                if (y > b[3]) b[3] = y;
            }
    b[2]++;
    b[3]++;
    return b[2] > b[0];
}

pimg_status pimg_background_crop(pimg_image *img, pimg_tensor **mask, double fill, int white, int min_side,
                                 int input_long_side, pimg_error *err)
{
    if (fill <= 0.1 || fill > 1.0)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "fill must be within (0.1, 1]");
    VipsImage *base;
    pimg_status st = random_access(img, &base, err);
    if (st)
        return st;
    int W = base->Xsize, H = base->Ysize, mb[4];
    const pimg_tensor *m = *mask;
    if (!mask_bbox(m, mb))
        return pimg_error_set(err, PIMG_ERR_NOT_FOUND, "crop: empty product mask");
    double sx = (double)W / m->w, sy = (double)H / m->h;
    double bx0 = mb[0] * sx, by0 = mb[1] * sy, bx1 = mb[2] * sx, by1 = mb[3] * sy;
    int S = (int)lround(fmax(bx1 - bx0, by1 - by0) / fill);
    if (S < 8)
        S = 8;
    int rx = (int)lround((bx0 + bx1) / 2 - S / 2.0), ry = (int)lround((by0 + by1) / 2 - S / 2.0);
    int pl = rx < 0 ? -rx : 0, pt = ry < 0 ? -ry : 0;
    int pr = rx + S > W ? rx + S - W : 0, pb = ry + S > H ? ry + S - H : 0;

    /* Padding colour: white, or the mean of the photo's outer ring so the pad reads as more
     * of the same backdrop. */
    double bgc[3] = {255, 255, 255};
    if (!white) {
        VipsImage *t = NULL;
        if (!vips_thumbnail_image(base, &t, 64, NULL)) {
            size_t len;
            unsigned char *px = vips_image_write_to_memory(t, &len);
            if (px && t->Bands >= 3) {
                double acc[3] = {0};
                int n = 0;
                for (int y = 0; y < t->Ysize; y++)
                    for (int x = 0; x < t->Xsize; x++)
                        if (x < 2 || y < 2 || x >= t->Xsize - 2 || y >= t->Ysize - 2) {
                            for (int c = 0; c < 3; c++)
                                acc[c] += px[((size_t)y * t->Xsize + x) * t->Bands + c];
                            n++;
                        }
                for (int c = 0; c < 3 && n; c++)
                    bgc[c] = acc[c] / n;
            }
            g_free(px);
            g_object_unref(t);
        } else {
            vips_error_clear();
        }
    }
    VipsImage *e = NULL, *c = NULL, *z = NULL;
    VipsArrayDouble *bga = vips_array_double_new(bgc, 3);
    if (vips_embed(base, &e, pl, pt, W + pl + pr, H + pt + pb, "extend", VIPS_EXTEND_BACKGROUND, "background", bga,
                   NULL) ||
        vips_extract_area(e, &c, rx + pl, ry + pt, S, S, NULL)) {
        vips_area_unref(VIPS_AREA(bga));
        VipsImage *v[] = {e, c};
        unref_all(v, 2);
        return pimg_error_vips(err, PIMG_ERR_INTERNAL, "crop");
    }
    vips_area_unref(VIPS_AREA(bga));
    g_object_unref(e);
    int side = S;
    if (S < min_side && input_long_side >= min_side) {
        if (vips_resize(c, &z, (double)min_side / S, NULL)) {
            g_object_unref(c);
            return pimg_error_vips(err, PIMG_ERR_INTERNAL, "crop upscale");
        }
        g_object_unref(c);
        c = z;
        side = c->Xsize;
    }
    /* The mask in the new frame, kept at a modest resolution (it is resampled when used). */
    int ms = side < 1024 ? side : 1024;
    pimg_tensor *nm = pimg_tensor_new(ms, ms, 1);
    if (!nm) {
        g_object_unref(c);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    for (int y = 0; y < ms; y++)
        for (int x = 0; x < ms; x++) {
            double fx = rx + (x + 0.5) * S / ms, fy = ry + (y + 0.5) * S / ms; /* input px */
            nm->data[(size_t)y * ms + x] = sample0(m, fx / sx - 0.5, fy / sy - 0.5);
        }
    pimg_tensor_free(*mask);
    *mask = nm;
    pimg_image_set_vips(img, c);
    return PIMG_OK;
}

pimg_status pimg_background_image_tensor(pimg_image *img, int max_side, pimg_tensor **out, pimg_error *err)
{
    VipsImage *base, *t = NULL;
    pimg_status st = random_access(img, &base, err);
    if (st)
        return st;
    if (vips_thumbnail_image(base, &t, max_side, "size", VIPS_SIZE_DOWN, NULL))
        return pimg_error_vips(err, PIMG_ERR_INTERNAL, "thumbnail");
    size_t len;
    unsigned char *px = vips_image_write_to_memory(t, &len);
    int w = t->Xsize, h = t->Ysize, b = t->Bands;
    g_object_unref(t);
    if (!px || b < 3) {
        g_free(px);
        return pimg_error_set(err, PIMG_ERR_INTERNAL, "thumbnail: unexpected format");
    }
    pimg_tensor *o = pimg_tensor_new(w, h, 3);
    if (!o) {
        g_free(px);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < (size_t)w * h; i++)
        for (int c = 0; c < 3; c++)
            o->data[i * 3 + c] = px[i * b + c] / 255.0f;
    g_free(px);
    *out = o;
    return PIMG_OK;
}

static void rule(cJSON *rules, const char *name, double value, double threshold, int pass, const char *what)
{
    cJSON *r = cJSON_AddObjectToObject(rules, name);
    cJSON_AddNumberToObject(r, "value", round(value * 1e4) / 1e4);
    cJSON_AddNumberToObject(r, "threshold", threshold);
    cJSON_AddBoolToObject(r, "pass", pass);
    cJSON_AddStringToObject(r, "rule", what);
}

cJSON *pimg_compliance_measure(const pimg_tensor *t, const pimg_tensor *mask, int long_side)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int W = t->w, H = t->h;
    long nbg = 0, nwhite = 0;
    int b[4] = {0, 0, W, H}, have = 0;
    if (mask) {
        b[0] = W;
        b[1] = H;
        b[2] = -1;
        b[3] = -1;
    }
    /* The mask's column for each x is the same on every row: computed once. */
    int *mcol = mask ? malloc(sizeof(int) * (size_t)W) : NULL;
    if (mask && !mcol) {
        cJSON_Delete(o);
        return NULL;
    }
    for (int x = 0; mcol && x < W; x++) {
        int mx = (int)((x + 0.5) * mask->w / W);
        mcol[x] = mx < mask->w ? mx : mask->w - 1;
    }
    for (int y = 0; y < H; y++) {
        const float *mrow = NULL;
        if (mask) {
            int my = (int)((y + 0.5) * mask->h / H);
            mrow = mask->data + (size_t)(my < mask->h ? my : mask->h - 1) * mask->w;
        }
        for (int x = 0; x < W; x++) {
            float mv = mrow ? mrow[mcol[x]] : 0;
            if (mv >= 0.5f) {
                have = 1;
                if (x < b[0]) b[0] = x;
                if (x > b[2]) b[2] = x;
                if (y < b[1]) b[1] = y;
                if (y > b[3]) b[3] = y;
            } else if (mv < 0.02f) {
                const float *p = pimg_tensor_at(t, x, y);
                nbg++;
                nwhite += p[0] * 255 >= 249.5f && p[1] * 255 >= 249.5f && p[2] * 255 >= 249.5f;
            }
        }
    }
    free(mcol);
    if (mask && have) {
        b[2]++;
        b[3]++;
    } else {
        b[0] = 0;
        b[1] = 0;
        b[2] = W;
        b[3] = H;
    }
    double white = nbg ? (double)nwhite / nbg : 0;
    double fillr = have ? fmax((double)(b[2] - b[0]) / W, (double)(b[3] - b[1]) / H) : 0;
    /* Laplacian variance of the product region on 0..255 grey. The grey of each pixel is
     * computed once into a plane over the region (it was five times per pixel). */
    double s = 0, s2 = 0;
    long n = 0;
    int gw = b[2] - b[0], gh = b[3] - b[1];
    float *g = gw >= 3 && gh >= 3 ? malloc(sizeof(float) * (size_t)gw * gh) : NULL;
    if (gw >= 3 && gh >= 3 && !g) {
        cJSON_Delete(o);
        return NULL;
    }
    for (int y = 0; g && y < gh; y++)
        for (int x = 0; x < gw; x++) {
            const float *p = pimg_tensor_at(t, b[0] + x, b[1] + y);
            g[(size_t)y * gw + x] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
        }
    for (int y = 1; g && y < gh - 1; y++)
        for (int x = 1; x < gw - 1; x++) {
            const float *c = g + (size_t)y * gw + x;
            double l = 255.0 * (c[-1] + c[1] + c[-gw] + c[gw] - 4 * c[0]);
            s += l;
            s2 += l * l;
            n++;
        }
    free(g);
    double sharp = n ? s2 / n - (s / n) * (s / n) : 0;
    cJSON_AddNumberToObject(o, "background_whiteness", round(white * 1e4) / 1e4);
    cJSON_AddNumberToObject(o, "fill_ratio", round(fillr * 1e4) / 1e4);
    cJSON_AddNumberToObject(o, "resolution", long_side);
    cJSON_AddNumberToObject(o, "sharpness", round(sharp * 100) / 100);
    cJSON *rules = cJSON_AddObjectToObject(o, "rules");
    int p1 = have && white >= 0.95, p2 = have && fillr >= 0.84, p3 = long_side >= 1000, p4 = sharp >= 100;
    rule(rules, "white_background", white, 0.95, p1,
         "share of background pixels with R,G,B >= 250 (marketplace main image: pure white 255,255,255)");
    rule(rules, "fill", fillr, 0.85, p2, "product's longer side over the frame's (product fills ~85% of the frame)");
    rule(rules, "resolution", long_side, 1000, p3, "longest side in pixels (>= 1000 enables zoom)");
    rule(rules, "sharpness", sharp, 100, p4, "variance of the Laplacian of the product region on 0..255 grey");
    cJSON_AddBoolToObject(o, "pass", p1 && p2 && p3 && p4);
    return o;
}
