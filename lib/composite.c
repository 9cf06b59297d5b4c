/* composite.c — synthetic product photos from real cut-outs (see composite.h).
 *
 * Why these variations: the detector must not learn "product = the thing pasted with a hard
 * edge on a random photo", so plain backgrounds get studio-like lighting gradients, paper and
 * fabric textures and sensor noise, objects get exposure changes, a slight tilt and a soft
 * contact shadow, and the cut-out edge is resampled like any other pixel. */
#include "composite.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <vips/vips.h>

#include "image.h"

struct pimg_composite_src {
    int n_obj, n_bg;
    pimg_tensor **obj; /* RGBA, 0..1, straight alpha */
    pimg_tensor **bg;  /* RGB */
    char **obj_name, **bg_name;
};

double pimg_rand_uniform(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static double urange(uint64_t *r, double lo, double hi) { return lo + (hi - lo) * pimg_rand_uniform(r); }

static double gauss(uint64_t *r)
{
    double u = pimg_rand_uniform(r) + 1e-12, v = pimg_rand_uniform(r);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int has_ext(const char *name, const char *const *exts)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (; *exts; exts++)
        if (!strcasecmp(dot + 1, *exts))
            return 1;
    return 0;
}

/* Sorted list of file names in dir with one of exts. Ownership: caller frees each and the array. */
static pimg_status list_dir(const char *dir, const char *const *exts, char ***names, int *n, pimg_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot open folder", dir);
    int cap = 64, k = 0;
    char **v = malloc(sizeof(char *) * cap);
    struct dirent *e;
    while (v && (e = readdir(d))) {
        if (e->d_name[0] == '.' || !has_ext(e->d_name, exts))
            continue;
        if (k == cap) {
            char **nv = realloc(v, sizeof(char *) * (cap *= 2));
            if (!nv)
                break;
            v = nv;
        }
        v[k++] = strdup(e->d_name);
    }
    closedir(d);
    if (!v)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    qsort(v, k, sizeof(char *), cmp_str);
    *names = v;
    *n = k;
    return PIMG_OK;
}

/* RGBA cut-out as a 4-channel tensor, longest side at most max_side (libvips thumbnail handles
 * premultiplication, so edges do not pick up dark fringes). */
static pimg_status load_rgba(const char *path, int max_side, pimg_tensor **out, pimg_error *err)
{
    VipsImage *a = NULL, *b = NULL, *c = NULL;
    pimg_status st = PIMG_OK;
    if (vips_thumbnail(path, &a, max_side, "size", VIPS_SIZE_DOWN, NULL))
        return pimg_error_vips(err, PIMG_ERR_BAD_INPUT, path);
    if (vips_colourspace(a, &b, VIPS_INTERPRETATION_sRGB, NULL)) {
        st = pimg_error_vips(err, PIMG_ERR_BAD_INPUT, path);
        goto out;
    }
    if (b->Bands == 3) {
        if (vips_bandjoin_const1(b, &c, 255, NULL)) {
            st = pimg_error_vips(err, PIMG_ERR_BAD_INPUT, path);
            goto out;
        }
    } else {
        c = b;
        g_object_ref(c);
    }
    VipsImage *u = NULL;
    if (vips_cast_uchar(c, &u, NULL)) {
        st = pimg_error_vips(err, PIMG_ERR_BAD_INPUT, path);
        goto out;
    }
    size_t len = 0;
    unsigned char *px = vips_image_write_to_memory(u, &len);
    int w = u->Xsize, h = u->Ysize, bands = u->Bands;
    g_object_unref(u);
    if (!px || bands != 4) {
        g_free(px);
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: expected RGBA", path);
        goto out;
    }
    pimg_tensor *t = pimg_tensor_new(w, h, 4);
    if (!t) {
        g_free(px);
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < (size_t)w * h * 4; i++)
        t->data[i] = px[i] / 255.0f;
    g_free(px);
    *out = t;
out:
    if (a) g_object_unref(a);
    if (b) g_object_unref(b);
    if (c) g_object_unref(c);
    return st;
}

void pimg_composite_src_free(pimg_composite_src *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_obj; i++) {
        pimg_tensor_free(s->obj[i]);
        free(s->obj_name[i]);
    }
    for (int i = 0; i < s->n_bg; i++) {
        pimg_tensor_free(s->bg[i]);
        free(s->bg_name[i]);
    }
    free(s->obj);
    free(s->bg);
    free(s->obj_name);
    free(s->bg_name);
    free(s);
}

/* Adds the backgrounds of bg_dir (every JPEG or PNG, in name order) to s. */
static pimg_status load_backgrounds(pimg_composite_src *s, const char *bg_dir, pimg_error *err)
{
    static const char *const pics[] = {"jpg", "jpeg", "png", NULL};
    char **names = NULL;
    int n = 0;
    pimg_status st = list_dir(bg_dir, pics, &names, &n, err);
    if (st)
        return st;
    s->bg = calloc(n ? n : 1, sizeof *s->bg);
    s->bg_name = names;
    s->n_bg = n;
    if (!s->bg) {
        s->n_bg = 0;
        for (int i = 0; i < n; i++)
            free(names[i]);
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", bg_dir, names[i]);
        pimg_image *img = NULL;
        if ((st = pimg_image_load_file(p, NULL, &img, err)))
            return st;
        st = pimg_image_tensor(img, 640, &s->bg[i], err);
        pimg_image_free(img);
        if (st)
            return st;
    }
    return PIMG_OK;
}

pimg_status pimg_composite_src_load_files(const char *const *object_paths, int n_objects, const char *bg_dir,
                                          pimg_composite_src **out, pimg_error *err)
{
    pimg_composite_src *s = calloc(1, sizeof *s);
    pimg_status st = PIMG_OK;
    if (!s)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    int n = n_objects;
    s->obj = calloc(n ? n : 1, sizeof *s->obj);
    s->obj_name = calloc(n ? n : 1, sizeof *s->obj_name);
    if (!s->obj || !s->obj_name) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto fail;
    }
    s->n_obj = n;
    for (int i = 0; i < n; i++) {
        const char *slash = strrchr(object_paths[i], '/');
        if (!(s->obj_name[i] = strdup(slash ? slash + 1 : object_paths[i]))) {
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if ((st = load_rgba(object_paths[i], 480, &s->obj[i], err)))
            goto fail;
    }
    if (!n) {
        st = pimg_error_set(err, PIMG_ERR_NOT_FOUND, "no PNG cut-outs");
        goto fail;
    }
    if (bg_dir && (st = load_backgrounds(s, bg_dir, err)))
        goto fail;
    *out = s;
    return PIMG_OK;
fail:
    pimg_composite_src_free(s);
    return st;
}

pimg_status pimg_composite_src_load(const char *objects_dir, const char *bg_dir, pimg_composite_src **out,
                                    pimg_error *err)
{
    static const char *const png[] = {"png", NULL};
    char **names = NULL;
    int n = 0;
    pimg_status st = list_dir(objects_dir, png, &names, &n, err);
    if (st)
        return st;
    char **paths = calloc(n ? n : 1, sizeof *paths);
    for (int i = 0; paths && i < n; i++) {
        size_t len = strlen(objects_dir) + strlen(names[i]) + 2;
        if ((paths[i] = malloc(len)))
            snprintf(paths[i], len, "%s/%s", objects_dir, names[i]);
        else
            st = PIMG_ERR_NOMEM;
    }
    if (!paths || st)
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    else if (!n)
        st = pimg_error_set(err, PIMG_ERR_NOT_FOUND, "%s: no PNG cut-outs", objects_dir);
    else
        st = pimg_composite_src_load_files((const char *const *)paths, n, bg_dir, out, err);
    for (int i = 0; i < n; i++) {
        free(names[i]);
        if (paths)
            free(paths[i]);
    }
    free(names);
    free(paths);
    return st;
}

int pimg_composite_n_objects(const pimg_composite_src *s) { return s->n_obj; }
int pimg_composite_n_backgrounds(const pimg_composite_src *s) { return s->n_bg; }
const char *pimg_composite_object_name(const pimg_composite_src *s, int i) { return s->obj_name[i]; }
const char *pimg_composite_background_name(const pimg_composite_src *s, int i) { return s->bg_name[i]; }

/* A studio-like plain background: a base tint (white, greys, paper, pale fabric), a linear
 * light gradient, a mild vignette, optional weave texture, and sensor noise. */
static void plain_background(pimg_tensor *o, uint64_t *r)
{
    double base[3];
    double kind = pimg_rand_uniform(r);
    if (kind < 0.35) { /* white sweep */
        double v = urange(r, 0.9, 1.0);
        base[0] = base[1] = base[2] = v;
    } else if (kind < 0.55) { /* greys */
        double v = urange(r, 0.45, 0.9);
        base[0] = base[1] = base[2] = v;
    } else if (kind < 0.75) { /* paper / kraft */
        double v = urange(r, 0.75, 0.97);
        base[0] = v;
        base[1] = v * urange(r, 0.9, 0.98);
        base[2] = v * urange(r, 0.75, 0.92);
    } else { /* fabric tints: any hue, low saturation */
        double v = urange(r, 0.4, 0.95), sat = urange(r, 0.05, 0.35), hue = urange(r, 0, 2 * M_PI);
        for (int c = 0; c < 3; c++)
            base[c] = v * (1 - sat * 0.5 * (1 + cos(hue + c * 2 * M_PI / 3)));
    }
    double gx = urange(r, -0.12, 0.12), gy = urange(r, -0.12, 0.12), vig = urange(r, 0, 0.15);
    double tex = pimg_rand_uniform(r) < 0.3 ? urange(r, 0.01, 0.04) : 0, tf = urange(r, 0.3, 1.2);
    double noise = urange(r, 0.002, 0.02);
    for (int y = 0; y < o->h; y++)
        for (int x = 0; x < o->w; x++) {
            double u = (double)x / o->w - 0.5, v = (double)y / o->h - 0.5;
            double f = 1 + gx * u + gy * v - vig * (u * u + v * v) * 2;
            double t = tex ? tex * sin(tf * x) * sin(tf * 1.1 * y) : 0;
            float *p = pimg_tensor_at(o, x, y);
            for (int c = 0; c < 3; c++) {
                double val = base[c] * f + t + noise * gauss(r);
                p[c] = (float)(val < 0 ? 0 : val > 1 ? 1 : val);
            }
        }
}

/* A random crop (60-100% of each side) of a real photo, resized to the canvas. */
static pimg_tensor *photo_background(const pimg_tensor *bg, int w, int h, uint64_t *r)
{
    double ar = (double)w / h;
    double cw = bg->w, ch = cw / ar;
    if (ch > bg->h) {
        ch = bg->h;
        cw = ch * ar;
    }
    double s = urange(r, 0.6, 1.0);
    cw *= s;
    ch *= s;
    int x0 = (int)urange(r, 0, bg->w - cw), y0 = (int)urange(r, 0, bg->h - ch);
    int iw = (int)cw < 1 ? 1 : (int)cw, ih = (int)ch < 1 ? 1 : (int)ch;
    pimg_tensor *crop = pimg_tensor_new(iw, ih, 3);
    if (!crop)
        return NULL;
    for (int y = 0; y < ih; y++)
        memcpy(pimg_tensor_at(crop, 0, y), pimg_tensor_at(bg, x0, y0 + y), sizeof(float) * 3 * iw);
    pimg_tensor *o = pimg_tensor_resize(crop, w, h);
    pimg_tensor_free(crop);
    return o;
}

pimg_status pimg_composite_make(const pimg_composite_src *s, const pimg_composite_spec *spec, uint64_t *r,
                                pimg_tensor **img, pimg_tensor **mask, double box[4], pimg_error *err)
{
    if (spec->object < 0 || spec->object >= s->n_obj || spec->background >= s->n_bg || spec->side < 32)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "composite: bad spec");
    static const double aspects[] = {1.0, 4.0 / 3, 3.0 / 4, 3.0 / 2, 2.0 / 3, 1.0};
    double ar = aspects[(int)(pimg_rand_uniform(r) * 6) % 6];
    int W = ar >= 1 ? spec->side : (int)lround(spec->side * ar);
    int H = ar >= 1 ? (int)lround(spec->side / ar) : spec->side;
    pimg_tensor *canvas = NULL, *obj = NULL, *alpha = pimg_tensor_new(W, H, 1);
    pimg_status st = PIMG_OK;
    if (!alpha)
        goto nomem;
    if (spec->background < 0) {
        if (!(canvas = pimg_tensor_new(W, H, 3)))
            goto nomem;
        plain_background(canvas, r);
    } else if (!(canvas = photo_background(s->bg[spec->background], W, H, r))) {
        goto nomem;
    }

    /* Scale: the object's longest side covers min_fill..max_fill of the matching frame side. */
    const pimg_tensor *src = s->obj[spec->object];
    double lo = spec->min_fill > 0 ? spec->min_fill : 0.3, hi = spec->max_fill > 0 ? spec->max_fill : 0.9;
    double fill = urange(r, lo, hi);
    double sc = fmin(fill * W / src->w, fill * H / src->h);
    int ow = (int)lround(src->w * sc), oh = (int)lround(src->h * sc);
    if (ow < 4) ow = 4;
    if (oh < 4) oh = 4;
    if (!(obj = pimg_tensor_new(ow, oh, 4)))
        goto nomem;
    {
        /* Premultiply before resampling so transparent pixels' colours do not bleed in. */
        pimg_tensor *pm = pimg_tensor_copy(src);
        if (!pm)
            goto nomem;
        for (long i = 0; i < (long)pm->w * pm->h; i++)
            for (int c = 0; c < 3; c++)
                pm->data[i * 4 + c] *= pm->data[i * 4 + 3];
        pimg_tensor *rs = pimg_tensor_resize(pm, ow, oh);
        pimg_tensor_free(pm);
        if (!rs)
            goto nomem;
        pimg_tensor_free(obj);
        obj = rs;
    }
    /* Exposure and contrast of the object, like a different shoot. */
    double gain = urange(r, 0.8, 1.15), con = urange(r, 0.85, 1.15);
    for (long i = 0; i < (long)ow * oh; i++) {
        float a = obj->data[i * 4 + 3];
        for (int c = 0; c < 3; c++) {
            double v = a > 0 ? obj->data[i * 4 + c] / a : 0;
            v = ((v - 0.5) * con + 0.5) * gain;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            obj->data[i * 4 + c] = (float)(v * a);
        }
    }
    /* Tilt and place: inverse-map canvas pixels into the (premultiplied) object. */
    double ang = urange(r, -10, 10) * M_PI / 180, ca = cos(ang), sa = sin(ang);
    double ew = fabs(ow * ca) + fabs(oh * sa), eh = fabs(ow * sa) + fabs(oh * ca);
    /* Photographers frame the product near the centre: the mean of two uniform draws gives a
     * triangular position prior that still reaches every edge. */
    double cx = 0.5 * (urange(r, fmin(ew / 2, W / 2.0), fmax(W - ew / 2, W / 2.0)) +
                       urange(r, fmin(ew / 2, W / 2.0), fmax(W - ew / 2, W / 2.0)));
    double cy = 0.5 * (urange(r, fmin(eh / 2, H / 2.0), fmax(H - eh / 2, H / 2.0)) +
                       urange(r, fmin(eh / 2, H / 2.0), fmax(H - eh / 2, H / 2.0)));
    pimg_tensor *rgb = pimg_tensor_new(W, H, 3);
    if (!rgb)
        goto nomem;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
            double sx = ca * dx + sa * dy + ow / 2.0 - 0.5, sy = -sa * dx + ca * dy + oh / 2.0 - 0.5;
            if (sx < -1 || sy < -1 || sx > ow || sy > oh)
                continue;
            /* bilinear with zero outside the object */
            int x0 = (int)floor(sx), y0 = (int)floor(sy);
            double ax = sx - x0, ay = sy - y0, acc[4] = {0};
            for (int j = 0; j < 2; j++)
                for (int i = 0; i < 2; i++) {
                    int xx = x0 + i, yy = y0 + j;
                    if (xx < 0 || yy < 0 || xx >= ow || yy >= oh)
                        continue;
                    double wgt = (i ? ax : 1 - ax) * (j ? ay : 1 - ay);
                    const float *p = pimg_tensor_at(obj, xx, yy);
                    for (int c = 0; c < 4; c++)
                        acc[c] += wgt * p[c];
                }
            float *q = pimg_tensor_at(rgb, x, y);
            for (int c = 0; c < 3; c++)
                q[c] = (float)acc[c];
            alpha->data[(size_t)y * W + x] = (float)(acc[3] > 1 ? 1 : acc[3]);
        }
    /* Soft contact shadow: the alpha, blurred, shifted down-right, darkening the background. */
    int shadow = spec->shadow >= 0 ? spec->shadow : pimg_rand_uniform(r) < (spec->background < 0 ? 0.6 : 0.3);
    if (shadow) {
        pimg_tensor *sh = pimg_tensor_resize(alpha, W / 8 > 4 ? W / 8 : 4, H / 8 > 4 ? H / 8 : 4);
        if (!sh) {
            pimg_tensor_free(rgb);
            goto nomem;
        }
        pimg_tensor *big = pimg_tensor_resize(sh, W, H);
        pimg_tensor_free(sh);
        if (!big) {
            pimg_tensor_free(rgb);
            goto nomem;
        }
        int ox = (int)urange(r, -0.02 * W, 0.04 * W), oy = (int)urange(r, 0.0, 0.04 * H);
        double op = urange(r, 0.15, 0.45);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sx = x - ox, sy = y - oy;
                if (sx < 0 || sy < 0 || sx >= W || sy >= H)
                    continue;
                float d = (float)(1 - op * big->data[(size_t)sy * W + sx]);
                float *p = pimg_tensor_at(canvas, x, y);
                for (int c = 0; c < 3; c++)
                    p[c] *= d;
            }
        pimg_tensor_free(big);
    }
    double noise = urange(r, 0.0, 0.012);
    int bx0 = W, by0 = H, bx1 = -1, by1 = -1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float a = alpha->data[(size_t)y * W + x];
            float *p = pimg_tensor_at(canvas, x, y);
            const float *q = pimg_tensor_at(rgb, x, y);
            for (int c = 0; c < 3; c++) {
                double v = q[c] + (1 - a) * p[c] + (a > 0 ? noise * gauss(r) : 0);
                p[c] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
            }
            if (a >= 0.5f) {
                if (x < bx0) bx0 = x;
                if (x > bx1) bx1 = x;
                if (y < by0) by0 = y;
                if (y > by1) by1 = y;
            }
        }
    pimg_tensor_free(rgb);
    pimg_tensor_free(obj);
    if (bx1 < 0) {
        pimg_tensor_free(canvas);
        pimg_tensor_free(alpha);
        return pimg_error_set(err, PIMG_ERR_INTERNAL, "composite: object vanished");
    }
    box[0] = bx0;
    box[1] = by0;
    box[2] = bx1 + 1;
    box[3] = by1 + 1;
    *img = canvas;
    if (mask)
        *mask = alpha;
    else
        pimg_tensor_free(alpha);
    return st;
nomem:
    pimg_tensor_free(canvas);
    pimg_tensor_free(obj);
    pimg_tensor_free(alpha);
    return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
}
