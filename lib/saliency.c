/* saliency.c — the detector's working scene: foreground-evidence maps, candidate boxes and the
 * per-box feature vector (see saliency.h for the overview).
 *
 * Why these maps: a product photo's background is what touches the frame, so the colour
 * distance to the border's dominant colours (a k-means model, ignoring tiny clusters that are
 * usually the product itself touching an edge) is the strongest cue on plain backgrounds;
 * frequency-tuned saliency (Achanta et al. 2009) and edge density add evidence where the
 * background is cluttered. None of them alone decides: they propose boxes and describe them,
 * and the trained SVM ranks the descriptions. */
#include "saliency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <vl/hog.h>

/* ---- small helpers ---------------------------------------------------------------------- */

/* Separable Gaussian blur of an n-channel float image in place (edges clamp). */
static int blur(float *img, int w, int h, int n, double sigma)
{
    int r = (int)ceil(3 * sigma);
    if (r < 1)
        return 0;
    float *k = malloc(sizeof(float) * (2 * r + 1));
    float *tmp = malloc(sizeof(float) * (size_t)w * h * n);
    if (!k || !tmp) {
        free(k);
        free(tmp);
        return -1;
    }
    double sum = 0;
    for (int i = -r; i <= r; i++)
        sum += k[i + r] = (float)exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * r; i++)
        k[i] = (float)(k[i] / sum);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < n; c++) {
                float acc = 0;
                for (int i = -r; i <= r; i++) {
                    int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
                    acc += k[i + r] * img[((size_t)y * w + xx) * n + c];
                }
                tmp[((size_t)y * w + x) * n + c] = acc;
            }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < n; c++) {
                float acc = 0;
                for (int i = -r; i <= r; i++) {
                    int yy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
                    acc += k[i + r] * tmp[((size_t)yy * w + x) * n + c];
                }
                img[((size_t)y * w + x) * n + c] = acc;
            }
    free(k);
    free(tmp);
    return 0;
}

/* The q-quantile (0..1) of n non-negative values from a 2048-bin histogram over [0, max]:
 * exact enough for normalising maps, and linear time (a sort here dominated the detector). */
static float quantile(const float *v, int n, double q)
{
    enum { NBIN = 2048 };
    float mx = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > mx)
            mx = v[i];
    if (mx <= 0 || n <= 0)
        return 0;
    static const int zero[NBIN];
    int hist[NBIN];
    memcpy(hist, zero, sizeof hist);
    float f = (NBIN - 1) / mx;
    for (int i = 0; i < n; i++) {
        int b = (int)(v[i] * f);
        hist[b < 0 ? 0 : b]++;
    }
    long want = (long)(q * (n - 1)), c = 0;
    for (int b = 0; b < NBIN; b++) {
        c += hist[b];
        if (c > want)
            return (b + 0.5f) / f;
    }
    return mx;
}

/* Scales a map so its 99th percentile (at least `floor_`) maps to 1, clipping above. The floor
 * keeps a nearly uniform photo from having its noise stretched into "foreground". */
static void normalise(float *m, int n, float floor_)
{
    float p = quantile(m, n, 0.99);
    if (p < floor_)
        p = floor_;
    for (int i = 0; i < n; i++) {
        float v = m[i] / p;
        m[i] = v > 1 ? 1 : v < 0 ? 0 : v;
    }
}

/* Otsu threshold of values in 0..1 (64 bins). */
static float otsu(const float *m, int n)
{
    double hist[64] = {0};
    for (int i = 0; i < n; i++) {
        int b = (int)(m[i] * 63.999f);
        hist[b < 0 ? 0 : b > 63 ? 63 : b]++;
    }
    double total = 0, sum_all = 0;
    for (int i = 0; i < 64; i++) {
        total += hist[i];
        sum_all += i * hist[i];
    }
    double wb = 0, sb = 0, best = -1;
    int bt = 32;
    for (int t = 0; t < 63; t++) {
        wb += hist[t];
        sb += t * hist[t];
        double wf = total - wb;
        if (wb == 0 || wf == 0)
            continue;
        double mb = sb / wb, mf = (sum_all - sb) / wf;
        double v = wb * wf * (mb - mf) * (mb - mf);
        if (v > best) {
            best = v;
            bt = t;
        }
    }
    return (bt + 1) / 64.0f;
}

double pimg_box_iou(const double a[4], const double b[4])
{
    double ix = fmin(a[2], b[2]) - fmax(a[0], b[0]);
    double iy = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    if (ix <= 0 || iy <= 0)
        return 0;
    double inter = ix * iy;
    double u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return u > 0 ? inter / u : 0;
}

/* ---- scene construction ----------------------------------------------------------------- */

void pimg_scene_free(pimg_scene *s)
{
    if (!s)
        return;
    free(s->lab);
    free(s->grey);
    free(s->bin);
    for (int i = 0; i < PIMG_SAL_NMAPS; i++) {
        free(s->map[i]);
        free(s->integ[i]);
    }
    free(s);
}

/* Border colour model: k-means (k = 8) on the pixels of a thin frame ring; each pixel's map
 * value is its Lab distance to the nearest centre that holds at least 4% of the ring, so a
 * product touching one edge does not teach the model that its own colour is background. */
static void border_map(pimg_scene *s, float *out)
{
    enum { K = 8 };
    int w = s->w, h = s->h, rw = w / 40 > 2 ? w / 40 : 2;
    int n = 0, cap = 2 * rw * (w + h);
    float *pts = malloc(sizeof(float) * 3 * cap);
    if (!pts) {
        memset(out, 0, sizeof(float) * w * h);
        return;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if ((x < rw || x >= w - rw || y < rw || y >= h - rw) && n < cap) {
                memcpy(pts + 3 * n, s->lab + 3 * ((size_t)y * w + x), sizeof(float) * 3);
                n++;
            }
    float c[K][3];
    int cnt[K];
    for (int k = 0; k < K; k++) /* deterministic spread-out seeds along the ring */
        memcpy(c[k], pts + 3 * (size_t)((long)k * n / K), sizeof(float) * 3);
    for (int it = 0; it < 8; it++) {
        double acc[K][3] = {{0}};
        memset(cnt, 0, sizeof cnt);
        for (int i = 0; i < n; i++) {
            const float *p = pts + 3 * i;
            int bk = 0;
            float bd = 1e30f;
            for (int k = 0; k < K; k++) {
                float d = (p[0] - c[k][0]) * (p[0] - c[k][0]) + (p[1] - c[k][1]) * (p[1] - c[k][1]) +
                          (p[2] - c[k][2]) * (p[2] - c[k][2]);
                if (d < bd) {
                    bd = d;
                    bk = k;
                }
            }
            cnt[bk]++;
            for (int j = 0; j < 3; j++)
                acc[bk][j] += p[j];
        }
        for (int k = 0; k < K; k++)
            if (cnt[k])
                for (int j = 0; j < 3; j++)
                    c[k][j] = (float)(acc[k][j] / cnt[k]);
    }
    free(pts);
    for (int i = 0; i < w * h; i++) {
        const float *p = s->lab + 3 * i;
        float bd = 1e30f;
        for (int k = 0; k < K; k++) {
            if (cnt[k] < n / 25)
                continue;
            float d = (p[0] - c[k][0]) * (p[0] - c[k][0]) + (p[1] - c[k][1]) * (p[1] - c[k][1]) +
                      (p[2] - c[k][2]) * (p[2] - c[k][2]);
            if (d < bd)
                bd = d;
        }
        out[i] = bd < 1e29f ? sqrtf(bd) : 0;
    }
}

static double *integral(const float *m, int w, int h)
{
    double *I = calloc((size_t)(w + 1) * (h + 1), sizeof(double));
    if (!I)
        return NULL;
    for (int y = 0; y < h; y++) {
        double row = 0;
        for (int x = 0; x < w; x++) {
            row += m[(size_t)y * w + x];
            I[(size_t)(y + 1) * (w + 1) + x + 1] = I[(size_t)y * (w + 1) + x + 1] + row;
        }
    }
    return I;
}

pimg_status pimg_scene_make(const pimg_tensor *t, int side, pimg_scene **out, pimg_error *err)
{
    if (!t || t->c < 3 || t->w < 8 || t->h < 8)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "scene: need a colour tensor of at least 8x8");
    double f = (double)side / (t->w > t->h ? t->w : t->h);
    if (f > 1)
        f = 1;
    int w = (int)lround(t->w * f), h = (int)lround(t->h * f);
    if (w < 8) w = 8;
    if (h < 8) h = 8;
    pimg_tensor *small = (w == t->w && h == t->h) ? pimg_tensor_copy(t) : pimg_tensor_resize(t, w, h);
    pimg_scene *s = calloc(1, sizeof *s);
    if (!small || !s)
        goto nomem;
    s->w = w;
    s->h = h;
    s->scale = (double)t->w / w;
    size_t n = (size_t)w * h;
    s->lab = malloc(sizeof(float) * 3 * n);
    s->grey = malloc(sizeof(float) * n);
    s->bin = malloc(n);
    if (!s->lab || !s->grey || !s->bin)
        goto nomem;
    for (int i = 0; i < PIMG_SAL_NMAPS; i++)
        if (!(s->map[i] = calloc(n, sizeof(float))))
            goto nomem;
    double mean[3] = {0};
    for (size_t i = 0; i < n; i++) {
        const float *p = small->data + i * small->c;
        float *L = s->lab + 3 * i;
        pimg_srgb_to_lab(p, L);
        s->grey[i] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
        for (int j = 0; j < 3; j++)
            mean[j] += L[j];
        int bl = (int)(L[0] / 25.01f), ba = (int)((L[1] + 64) / 32), bb = (int)((L[2] + 64) / 32);
        bl = bl < 0 ? 0 : bl > 3 ? 3 : bl;
        ba = ba < 0 ? 0 : ba > 3 ? 3 : ba;
        bb = bb < 0 ? 0 : bb > 3 ? 3 : bb;
        s->bin[i] = (unsigned char)(bl * 16 + ba * 4 + bb);
    }
    pimg_tensor_free(small);
    small = NULL;
    for (int j = 0; j < 3; j++)
        mean[j] /= (double)n;

    /* Border-colour distance, lightly smoothed so JPEG noise does not speckle it. */
    border_map(s, s->map[PIMG_SAL_BORDER]);
    if (blur(s->map[PIMG_SAL_BORDER], w, h, 1, 1.0))
        goto nomem;
    normalise(s->map[PIMG_SAL_BORDER], (int)n, 20.0f);

    /* Frequency-tuned saliency: blurred Lab against the image mean. */
    float *bl = malloc(sizeof(float) * 3 * n);
    if (!bl)
        goto nomem;
    memcpy(bl, s->lab, sizeof(float) * 3 * n);
    if (blur(bl, w, h, 3, 1.5)) {
        free(bl);
        goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        float d0 = bl[3 * i] - (float)mean[0], d1 = bl[3 * i + 1] - (float)mean[1], d2 = bl[3 * i + 2] - (float)mean[2];
        s->map[PIMG_SAL_FT][i] = sqrtf(d0 * d0 + d1 * d1 + d2 * d2);
    }
    free(bl);
    normalise(s->map[PIMG_SAL_FT], (int)n, 15.0f);

    /* Edge density: Sobel magnitude of grey, spread over a few pixels. */
    float *e = s->map[PIMG_SAL_EDGE];
    for (int y = 1; y < h - 1; y++)
        for (int x = 1; x < w - 1; x++) {
            const float *g = s->grey + (size_t)y * w + x;
            float gx = (g[-w + 1] + 2 * g[1] + g[w + 1]) - (g[-w - 1] + 2 * g[-1] + g[w - 1]);
            float gy = (g[w - 1] + 2 * g[w] + g[w + 1]) - (g[-w - 1] + 2 * g[-w] + g[-w + 1]);
            e[(size_t)y * w + x] = sqrtf(gx * gx + gy * gy);
        }
    if (blur(e, w, h, 1, 2.5))
        goto nomem;
    normalise(e, (int)n, 0.1f);

    float *b = s->map[PIMG_SAL_BLEND];
    for (size_t i = 0; i < n; i++)
        b[i] = 0.55f * s->map[PIMG_SAL_BORDER][i] + 0.3f * s->map[PIMG_SAL_FT][i] + 0.15f * e[i];
    normalise(b, (int)n, 0.3f);

    for (int i = 0; i < PIMG_SAL_NMAPS; i++)
        if (!(s->integ[i] = integral(s->map[i], w, h)))
            goto nomem;
    *out = s;
    return PIMG_OK;
nomem:
    pimg_tensor_free(small);
    pimg_scene_free(s);
    return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
}

/* ---- box statistics ----------------------------------------------------------------------- */

static double box_sum(const pimg_scene *s, int m, int x0, int y0, int x1, int y1)
{
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > s->w) x1 = s->w;
    if (y1 > s->h) y1 = s->h;
    if (x1 <= x0 || y1 <= y0)
        return 0;
    const double *I = s->integ[m];
    int W = s->w + 1;
    return I[(size_t)y1 * W + x1] - I[(size_t)y0 * W + x1] - I[(size_t)y1 * W + x0] + I[(size_t)y0 * W + x0];
}

static long box_area(const pimg_scene *s, int x0, int y0, int x1, int y1)
{
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > s->w) x1 = s->w;
    if (y1 > s->h) y1 = s->h;
    return (x1 > x0 && y1 > y0) ? (long)(x1 - x0) * (y1 - y0) : 0;
}

double pimg_scene_box_mean(const pimg_scene *s, int m, int x0, int y0, int x1, int y1)
{
    long a = box_area(s, x0, y0, x1, y1);
    return a ? box_sum(s, m, x0, y0, x1, y1) / a : 0;
}

/* Integer box and its ring (the box grown by a fifth of its mean side, clipped). */
typedef struct {
    int x0, y0, x1, y1;    /* box */
    int rx0, ry0, rx1, ry1; /* grown box */
} box_geom;

/* The box in whole working pixels, rounded outwards and clipped to the scene (may be empty). */
static void int_box(const pimg_scene *s, const double b[4], box_geom *g)
{
    g->x0 = (int)floor(b[0]);
    g->y0 = (int)floor(b[1]);
    g->x1 = (int)ceil(b[2]);
    g->y1 = (int)ceil(b[3]);
    if (g->x0 < 0) g->x0 = 0;
    if (g->y0 < 0) g->y0 = 0;
    if (g->x1 > s->w) g->x1 = s->w;
    if (g->y1 > s->h) g->y1 = s->h;
}

long pimg_scene_box_count(const pimg_scene *s, int m, float thr, const double box[4])
{
    box_geom g;
    int_box(s, box, &g);
    long c = 0;
    for (int y = g.y0; y < g.y1; y++)
        for (int x = g.x0; x < g.x1; x++)
            c += s->map[m][(size_t)y * s->w + x] >= thr;
    return c;
}

static box_geom geom(const pimg_scene *s, const double b[4])
{
    box_geom g;
    int_box(s, b, &g);
    if (g.x1 <= g.x0) g.x1 = g.x0 + 1;
    if (g.y1 <= g.y0) g.y1 = g.y0 + 1;
    int r = (int)ceil(0.2 * sqrt((double)(g.x1 - g.x0) * (g.y1 - g.y0)));
    if (r < 2)
        r = 2;
    g.rx0 = g.x0 - r < 0 ? 0 : g.x0 - r;
    g.ry0 = g.y0 - r < 0 ? 0 : g.y0 - r;
    g.rx1 = g.x1 + r > s->w ? s->w : g.x1 + r;
    g.ry1 = g.y1 + r > s->h ? s->h : g.y1 + r;
    return g;
}

double pimg_scene_heuristic(const pimg_scene *s, const double box[4])
{
    box_geom g = geom(s, box);
    int m = PIMG_SAL_BLEND;
    double in = box_sum(s, m, g.x0, g.y0, g.x1, g.y1), grown = box_sum(s, m, g.rx0, g.ry0, g.rx1, g.ry1);
    long ain = box_area(s, g.x0, g.y0, g.x1, g.y1), agr = box_area(s, g.rx0, g.ry0, g.rx1, g.ry1);
    double total = box_sum(s, m, 0, 0, s->w, s->h);
    double mi = in / ain, mr = agr > ain ? (grown - in) / (agr - ain) : 0;
    double recall = total > 0 ? in / total : 0;
    return (mi - mr) * sqrt(recall) - 0.1 * (double)ain / ((double)s->w * s->h);
}

static double chi2(const double *a, const double *b, int n)
{
    double d = 0;
    for (int i = 0; i < n; i++)
        if (a[i] + b[i] > 0)
            d += (a[i] - b[i]) * (a[i] - b[i]) / (a[i] + b[i]);
    return 0.5 * d;
}

/* Bilinear sample of a w x h single-channel float image with clamping. */
static float sample1(const float *m, int w, int h, double x, double y)
{
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x > w - 1) x = w - 1;
    if (y > h - 1) y = h - 1;
    int x0 = (int)x, y0 = (int)y, x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
    double ax = x - x0, ay = y - y0;
    return (float)((1 - ay) * ((1 - ax) * m[(size_t)y0 * w + x0] + ax * m[(size_t)y0 * w + x1]) +
                   ay * ((1 - ax) * m[(size_t)y1 * w + x0] + ax * m[(size_t)y1 * w + x1]));
}

void pimg_scene_features(const pimg_scene *s, const double box[4], float *feat)
{
    int k = 0;
    box_geom g = geom(s, box);
    double W = s->w, H = s->h, bw = g.x1 - g.x0, bh = g.y1 - g.y0;
    feat[k++] = (float)(bw * bh / (W * H));
    feat[k++] = (float)(0.5 * log(bw / bh));
    feat[k++] = (float)(((g.x0 + g.x1) / 2.0) / W - 0.5);
    feat[k++] = (float)(((g.y0 + g.y1) / 2.0) / H - 0.5);
    double md = fmin(fmin(g.x0, g.y0), fmin(W - g.x1, H - g.y1));
    feat[k++] = (float)(md / fmin(W, H));
    feat[k++] = (float)(((g.x0 <= 1) + (g.y0 <= 1) + (g.x1 >= s->w - 1) + (g.y1 >= s->h - 1)) / 4.0);

    long ain = box_area(s, g.x0, g.y0, g.x1, g.y1), agr = box_area(s, g.rx0, g.ry0, g.rx1, g.ry1);
    long aall = (long)s->w * s->h;
    int sh = bw > 6 && bh > 6 ? 2 : 0; /* boundary strip width */
    long ash = box_area(s, g.x0 + sh, g.y0 + sh, g.x1 - sh, g.y1 - sh);
    for (int m = 0; m < PIMG_SAL_NMAPS; m++) {
        double in = box_sum(s, m, g.x0, g.y0, g.x1, g.y1);
        double gr = box_sum(s, m, g.rx0, g.ry0, g.rx1, g.ry1);
        double all = box_sum(s, m, 0, 0, s->w, s->h);
        double inner = box_sum(s, m, g.x0 + sh, g.y0 + sh, g.x1 - sh, g.y1 - sh);
        double mi = in / ain;
        feat[k++] = (float)mi;
        feat[k++] = (float)(agr > ain ? (gr - in) / (agr - ain) : mi);
        feat[k++] = (float)(aall > ain ? (all - in) / (aall - ain) : mi);
        feat[k++] = (float)(all > 0 ? in / all : 0);
        feat[k++] = (float)(ain > ash ? (in - inner) / (ain - ash) : mi);
    }

    /* Colour histograms: inside, ring, and the photo's outer frame (the background guess). */
    double hin[64] = {0}, hring[64] = {0}, hframe[64] = {0};
    double nin = 0, nring = 0, nframe = 0;
    for (int y = g.ry0; y < g.ry1; y++)
        for (int x = g.rx0; x < g.rx1; x++) {
            int b = s->bin[(size_t)y * s->w + x];
            if (x >= g.x0 && x < g.x1 && y >= g.y0 && y < g.y1) {
                hin[b]++;
                nin++;
            } else {
                hring[b]++;
                nring++;
            }
        }
    int fw = s->w / 40 > 2 ? s->w / 40 : 2;
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++)
            if (x < fw || y < fw || x >= s->w - fw || y >= s->h - fw) {
                hframe[s->bin[(size_t)y * s->w + x]]++;
                nframe++;
            }
    for (int i = 0; i < 64; i++) {
        hin[i] /= nin > 0 ? nin : 1;
        hring[i] /= nring > 0 ? nring : 1;
        hframe[i] /= nframe > 0 ? nframe : 1;
    }
    feat[k++] = (float)(nring > 0 ? chi2(hin, hring, 64) : 0);
    feat[k++] = (float)chi2(hin, hframe, 64);
    feat[k++] = (float)(nring > 0 ? chi2(hring, hframe, 64) : 1);

    /* Explicit non-linear terms: a linear model cannot form contrasts' products or a
     * preference for mid-sized, central boxes on its own. */
    {
        const float *f = feat;
        double area = f[0];
        feat[k++] = (float)(area * area);
        feat[k++] = (float)sqrt(area);
        feat[k++] = (float)(f[2] * f[2] + f[3] * f[3]);
        feat[k++] = (float)(f[1] * f[1]);
        const float *chi = f + 6 + 5 * PIMG_SAL_NMAPS; /* in/ring, in/frame, ring/frame */
        feat[k++] = chi[0] * chi[1];
        feat[k++] = (float)pimg_scene_heuristic(s, box);
        for (int m = 0; m < PIMG_SAL_NMAPS; m++) {
            const float *q = f + 6 + 5 * m; /* in, ring, out, recall, strip */
            double prec = q[0];
            feat[k++] = (float)(q[0] - q[1]);
            feat[k++] = (float)(q[0] - q[4]);
            feat[k++] = (float)(q[3] * prec);
            feat[k++] = (float)((q[0] - q[1]) * sqrt(q[3] > 0 ? q[3] : 0));
        }
    }

    /* HOG of the grey crop (box plus a 10% margin, so the outline is inside the window), scaled
     * by PIMG_SAL_HOG_GAIN (saliency.h). */
    double mx = 0.1 * bw, my = 0.1 * bh;
    double cx0 = g.x0 - mx, cy0 = g.y0 - my, cw = bw + 2 * mx, ch = bh + 2 * my;
    enum { S = PIMG_SAL_HOG_SIDE };
    float crop[S * S];
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            crop[y * S + x] = sample1(s->grey, s->w, s->h, cx0 + (x + 0.5) * cw / S - 0.5, cy0 + (y + 0.5) * ch / S - 0.5);
    VlHog *hog = vl_hog_new(VlHogVariantUoctti, 9, VL_FALSE);
    if (hog) {
        vl_hog_put_image(hog, crop, S, S, 1, 8);
        vl_size hw = vl_hog_get_width(hog), hh = vl_hog_get_height(hog), hd = vl_hog_get_dimension(hog);
        if (hw * hh * hd == 9 * 31) {
            vl_hog_extract(hog, feat + k);
        } else {
            memset(feat + k, 0, sizeof(float) * 9 * 31);
        }
        vl_hog_delete(hog);
    } else {
        memset(feat + k, 0, sizeof(float) * 9 * 31);
    }
    for (int j = k; j < k + 9 * 31; j++)
        feat[j] *= (float)PIMG_SAL_HOG_GAIN;
    k += 9 * 31;

    /* Thumbnail of the blend map over the same crop: the shape of the evidence in the window. */
    enum { T = PIMG_SAL_THUMB };
    for (int y = 0; y < T; y++)
        for (int x = 0; x < T; x++) {
            double acc = 0;
            for (int j = 0; j < 3; j++)
                for (int i = 0; i < 3; i++)
                    acc += sample1(s->map[PIMG_SAL_BLEND], s->w, s->h, cx0 + (x + (i + 0.5) / 3) * cw / T - 0.5,
                                   cy0 + (y + (j + 0.5) / 3) * ch / T - 0.5);
            feat[k++] = (float)(acc / 9);
        }
}

/* ---- proposals ------------------------------------------------------------------------------ */

typedef struct {
    double (*b)[4];
    int n, max;
} box_list;

static void add_box(box_list *l, double x0, double y0, double x1, double y1, int w, int h)
{
    double b[4] = {fmax(0, x0), fmax(0, y0), fmin(w, x1), fmin(h, y1)};
    if (b[2] - b[0] < 3 || b[3] - b[1] < 3 || l->n >= l->max)
        return;
    for (int i = 0; i < l->n; i++)
        if (pimg_box_iou(b, l->b[i]) > 0.92)
            return;
    memcpy(l->b[l->n++], b, sizeof b);
}

int pimg_label_parts(int *lab, int w, int h, int *stack, int max_parts, int (*box)[4], int *area)
{
    int nb = 0;
    for (int i = 0; i < w * h && nb < max_parts; i++) {
        if (lab[i] != -1)
            continue;
        int sp = 0, a = 0, x0 = w, y0 = h, x1 = -1, y1 = -1;
        stack[sp++] = i;
        lab[i] = nb + 1;
        while (sp) {
            int p = stack[--sp], px = p % w, py = p / w;
            a++;
            if (px < x0) x0 = px;
            if (px > x1) x1 = px;
            if (py < y0) y0 = py;
            if (py > y1) y1 = py;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int qx = px + dx, qy = py + dy;
                    if (qx < 0 || qy < 0 || qx >= w || qy >= h)
                        continue;
                    int q = qy * w + qx;
                    if (lab[q] == -1) {
                        lab[q] = nb + 1;
                        stack[sp++] = q;
                    }
                }
        }
        box[nb][0] = x0;
        box[nb][1] = y0;
        box[nb][2] = x1 + 1;
        box[nb][3] = y1 + 1;
        area[nb++] = a;
    }
    return nb;
}

/* Boxes of the connected blobs of map >= thr (8-connectivity): the largest blob, the union of
 * blobs at least a tenth of it, and the union of every blob above 1% of the frame. */
static void blob_boxes(const pimg_scene *s, const float *m, float thr, int *lab, int *stack, box_list *l)
{
    int w = s->w, h = s->h, n = w * h;
    for (int i = 0; i < n; i++)
        lab[i] = m[i] >= thr ? -1 : 0;
    enum { MAXB = 256 };
    int bx[MAXB][4], area[MAXB];
    int nb = pimg_label_parts(lab, w, h, stack, MAXB, bx, area);
    if (!nb)
        return;
    int big = 0;
    for (int i = 1; i < nb; i++)
        if (area[i] > area[big])
            big = i;
    add_box(l, bx[big][0], bx[big][1], bx[big][2], bx[big][3], w, h);
    for (int pass = 0; pass < 2; pass++) {
        double minarea = pass == 0 ? 0.1 * area[big] : 0.01 * n;
        int u[4] = {w, h, 0, 0}, any = 0;
        for (int i = 0; i < nb; i++)
            if (area[i] >= minarea) {
                any = 1;
                if (bx[i][0] < u[0]) u[0] = bx[i][0];
                if (bx[i][1] < u[1]) u[1] = bx[i][1];
                if (bx[i][2] > u[2]) u[2] = bx[i][2];
                if (bx[i][3] > u[3]) u[3] = bx[i][3];
            }
        if (any)
            add_box(l, u[0], u[1], u[2], u[3], w, h);
    }
}

/* The interval holding the central share of the map's mass along each axis, after removing
 * the map's typical background level. */
static void mass_boxes(const pimg_scene *s, const float *m, box_list *l)
{
    int w = s->w, h = s->h;
    float floor_ = quantile(m, w * h, 0.5);
    double *px = calloc(w, sizeof(double)), *py = calloc(h, sizeof(double));
    if (!px || !py) {
        free(px);
        free(py);
        return;
    }
    double tot = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double v = m[(size_t)y * w + x] - floor_;
            if (v > 0) {
                px[x] += v;
                py[y] += v;
                tot += v;
            }
        }
    static const double qs[] = {0.02, 0.05, 0.1};
    for (int qi = 0; qi < 3 && tot > 0; qi++) {
        double q = qs[qi], c = 0;
        int x0 = 0, x1 = w, y0 = 0, y1 = h;
        for (int x = 0; x < w; x++) {
            c += px[x];
            if (c < q * tot) x0 = x + 1;
            if (c <= (1 - q) * tot) x1 = x + 2;
        }
        c = 0;
        for (int y = 0; y < h; y++) {
            c += py[y];
            if (c < q * tot) y0 = y + 1;
            if (c <= (1 - q) * tot) y1 = y + 2;
        }
        add_box(l, x0, y0, x1, y1, w, h);
    }
    free(px);
    free(py);
}

int pimg_scene_proposals(const pimg_scene *s, double (*boxes)[4], int max)
{
    box_list l = {boxes, 0, max};
    int w = s->w, h = s->h, n = w * h;
    int *lab = malloc(sizeof(int) * n), *stack = malloc(sizeof(int) * n);
    if (lab && stack) {
        static const int maps[] = {PIMG_SAL_BLEND, PIMG_SAL_BORDER, PIMG_SAL_FT, PIMG_SAL_EDGE};
        static const float thr[] = {0.2f, 0.35f, 0.5f, 0.65f};
        for (int mi = 0; mi < 4; mi++) {
            const float *m = s->map[maps[mi]];
            blob_boxes(s, m, otsu(m, n), lab, stack, &l);
            for (int ti = 0; ti < 4; ti++)
                blob_boxes(s, m, thr[ti], lab, stack, &l);
            mass_boxes(s, m, &l);
        }
    }
    free(lab);
    free(stack);
    /* A coarse window grid gives the ranker something to choose when every map is fooled. */
    static const double sz[] = {0.3, 0.5, 0.7}, asp[] = {0.6, 1.0, 1.6}, pos[] = {0.3, 0.5, 0.7};
    double side = sqrt((double)w * h);
    for (int a = 0; a < 3; a++)
        for (int z = 0; z < 3; z++) {
            double bw = sz[z] * side * sqrt(asp[a]), bh = sz[z] * side / sqrt(asp[a]);
            if (bw > w) bw = w;
            if (bh > h) bh = h;
            for (int j = 0; j < 3; j++)
                for (int i = 0; i < 3; i++) {
                    double cx = pos[i] * w, cy = pos[j] * h;
                    double x0 = fmin(fmax(cx - bw / 2, 0), w - bw), y0 = fmin(fmax(cy - bh / 2, 0), h - bh);
                    add_box(&l, x0, y0, x0 + bw, y0 + bh, w, h);
                }
        }
    add_box(&l, 0, 0, w, h, w, h);
    add_box(&l, 0.1 * w, 0.1 * h, 0.9 * w, 0.9 * h, w, h);
    return l.n;
}
