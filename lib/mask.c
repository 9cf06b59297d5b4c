/* mask.c — box-seeded colour-model foreground mask (see mask.h). */
#include "mask.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NB = 4096 };

static int bin_of(const float *p)
{
    int r = (int)(p[0] * 15.99f), g = (int)(p[1] * 15.99f), b = (int)(p[2] * 15.99f);
    r = r < 0 ? 0 : r > 15 ? 15 : r;
    g = g < 0 ? 0 : g > 15 ? 15 : g;
    b = b < 0 ? 0 : b > 15 ? 15 : b;
    return (r << 8) | (g << 4) | b;
}

/* Normalises a histogram after spreading each bin over its 3x3x3 neighbours: JPEG noise and
 * shading move a colour by a bin or so, and an unsmoothed model would call that "unseen". */
static void smooth_hist(const double *in, double *out)
{
    double tot = 0;
    for (int r = 0; r < 16; r++)
        for (int g = 0; g < 16; g++)
            for (int b = 0; b < 16; b++) {
                double acc = 0;
                for (int dr = -1; dr <= 1; dr++)
                    for (int dg = -1; dg <= 1; dg++)
                        for (int db = -1; db <= 1; db++) {
                            int rr = r + dr, gg = g + dg, bb = b + db;
                            if (rr < 0 || gg < 0 || bb < 0 || rr > 15 || gg > 15 || bb > 15)
                                continue;
                            acc += in[(rr << 8) | (gg << 4) | bb] * ((dr || dg || db) ? 0.25 : 1.0);
                        }
                out[(r << 8) | (g << 4) | b] = acc;
                tot += acc;
            }
    for (int i = 0; i < NB; i++)
        out[i] = out[i] / (tot > 0 ? tot : 1) + 1e-7;
}

/* Separable box blur of radius r over a float image, in place. */
static int box_blur(float *m, int w, int h, int r)
{
    float *tmp = malloc(sizeof(float) * (size_t)w * h);
    if (!tmp)
        return -1;
    for (int y = 0; y < h; y++) {
        const float *row = m + (size_t)y * w;
        double acc = 0;
        int cnt = 0;
        for (int x = 0; x < r && x < w; x++, cnt++)
            acc += row[x];
        for (int x = 0; x < w; x++) {
            if (x + r < w) { acc += row[x + r]; cnt++; }
            if (x - r - 1 >= 0) { acc -= row[x - r - 1]; cnt--; }
            tmp[(size_t)y * w + x] = (float)(acc / cnt);
        }
    }
    for (int x = 0; x < w; x++) {
        double acc = 0;
        int cnt = 0;
        for (int y = 0; y < r && y < h; y++, cnt++)
            acc += tmp[(size_t)y * w + x];
        for (int y = 0; y < h; y++) {
            if (y + r < h) { acc += tmp[(size_t)(y + r) * w + x]; cnt++; }
            if (y - r - 1 >= 0) { acc -= tmp[(size_t)(y - r - 1) * w + x]; cnt--; }
            m[(size_t)y * w + x] = (float)(acc / cnt);
        }
    }
    free(tmp);
    return 0;
}

pimg_status pimg_mask_from_box(const pimg_tensor *t, const double box[4], const pimg_tensor *prior,
                               pimg_tensor **mask, double mask_box[4], pimg_error *err)
{
    if (!t || t->c < 3)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "mask: need a colour tensor");
    int W = t->w, H = t->h;
    size_t n = (size_t)W * H;
    int bx0 = (int)fmax(0, floor(box[0])), by0 = (int)fmax(0, floor(box[1]));
    int bx1 = (int)fmin(W, ceil(box[2])), by1 = (int)fmin(H, ceil(box[3]));
    if (bx1 <= bx0 || by1 <= by0)
        return pimg_error_set(err, PIMG_ERR_BAD_INPUT, "mask: empty box");
    int gx = (int)ceil(0.08 * (bx1 - bx0)) + 2, gy = (int)ceil(0.08 * (by1 - by0)) + 2;
    int gx0 = bx0 - gx < 0 ? 0 : bx0 - gx, gy0 = by0 - gy < 0 ? 0 : by0 - gy;
    int gx1 = bx1 + gx > W ? W : bx1 + gx, gy1 = by1 + gy > H ? H : by1 + gy;

    pimg_status st = PIMG_OK;
    unsigned short *bins = malloc(sizeof(unsigned short) * n);
    float *p = malloc(sizeof(float) * n);
    double *hf = calloc(NB, sizeof(double)), *hb = calloc(NB, sizeof(double));
    double *sf = malloc(sizeof(double) * NB), *sb = malloc(sizeof(double) * NB);
    unsigned char *bin = malloc(n);
    int *lab = malloc(sizeof(int) * n), *stack = malloc(sizeof(int) * n);
    pimg_tensor *m = pimg_tensor_new(W, H, 1);
    if (!bins || !p || !hf || !hb || !sf || !sb || !bin || !lab || !stack || !m) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        bins[i] = (unsigned short)bin_of(t->data + i * t->c);

    /* First models: inside the box weighted by saliency, outside the box as background. */
    int has_bg = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            size_t i = (size_t)y * W + x;
            if (x >= bx0 && x < bx1 && y >= by0 && y < by1) {
                double w = 0.5;
                if (prior)
                    w = 0.1 + prior->data[(size_t)(y * prior->h / H) * prior->w + (size_t)x * prior->w / W];
                hf[bins[i]] += w;
            } else {
                hb[bins[i]] += 1;
                has_bg = 1;
            }
        }
    if (!has_bg) /* the box is the whole frame: use its outer ring as the background guess */
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                if (x < W / 20 || y < H / 20 || x >= W - W / 20 || y >= H - H / 20)
                    hb[bins[(size_t)y * W + x]] += 1;
    for (int it = 0; it < 3; it++) {
        smooth_hist(hf, sf);
        smooth_hist(hb, sb);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                size_t i = (size_t)y * W + x;
                if (x < gx0 || x >= gx1 || y < gy0 || y >= gy1) {
                    p[i] = 0;
                    continue;
                }
                double f = sf[bins[i]], b = sb[bins[i]];
                /* Between the box and the grown box the product is less likely: halve its odds. */
                if (x < bx0 || x >= bx1 || y < by0 || y >= by1)
                    f *= 0.5;
                p[i] = (float)(f / (f + b));
            }
        if (it == 2)
            break;
        memset(hf, 0, sizeof(double) * NB);
        memset(hb, 0, sizeof(double) * NB);
        for (size_t i = 0; i < n; i++) {
            if (p[i] > 0.5f)
                hf[bins[i]] += 1;
            else
                hb[bins[i]] += 1;
        }
    }
    if (box_blur(p, W, H, 2)) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        bin[i] = p[i] > 0.5f;

    /* Keep blobs that reach into the box and are at least a tenth of the biggest one. */
    for (size_t i = 0; i < n; i++)
        lab[i] = bin[i] ? -1 : 0;
    int nl = 0, cap = 4096;
    long *areas = calloc(cap + 1, sizeof(long));
    char *inbox = calloc(cap + 1, 1);
    if (!areas || !inbox) {
        free(areas);
        free(inbox);
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i0 = 0; i0 < n; i0++) {
        if (lab[i0] != -1)
            continue;
        int id = nl < cap ? ++nl : cap;
        int sp = 0;
        stack[sp++] = (int)i0;
        lab[i0] = id;
        while (sp) {
            int q = stack[--sp], qx = q % W, qy = q / W;
            areas[id]++;
            if (qx >= bx0 && qx < bx1 && qy >= by0 && qy < by1)
                inbox[id] = 1;
            static const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
            for (int d = 0; d < 4; d++) {
                int rx = qx + dx[d], ry = qy + dy[d];
                if (rx < 0 || ry < 0 || rx >= W || ry >= H)
                    continue;
                int r = ry * W + rx;
                if (lab[r] == -1) {
                    lab[r] = id;
                    stack[sp++] = r;
                }
            }
        }
    }
    long big = 0;
    for (int i = 1; i <= nl; i++)
        if (inbox[i] && areas[i] > big)
            big = areas[i];
    for (size_t i = 0; i < n; i++)
        bin[i] = lab[i] > 0 && inbox[lab[i]] && areas[lab[i]] * 10 >= big;
    free(areas);
    free(inbox);

    /* Fill holes: background is what the frame's edge reaches through non-product pixels. */
    int sp = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            if ((x == 0 || y == 0 || x == W - 1 || y == H - 1) && !bin[(size_t)y * W + x]) {
                bin[(size_t)y * W + x] = 2;
                stack[sp++] = y * W + x;
            }
    while (sp) {
        int q = stack[--sp], qx = q % W, qy = q / W;
        static const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
        for (int d = 0; d < 4; d++) {
            int rx = qx + dx[d], ry = qy + dy[d];
            if (rx < 0 || ry < 0 || rx >= W || ry >= H)
                continue;
            int r = ry * W + rx;
            if (!bin[r]) {
                bin[r] = 2;
                stack[sp++] = r;
            }
        }
    }
    int mx0 = W, my0 = H, mx1 = -1, my1 = -1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            size_t i = (size_t)y * W + x;
            bin[i] = bin[i] != 2;
            if (bin[i]) {
                if (x < mx0) mx0 = x;
                if (x > mx1) mx1 = x;
                if (y < my0) my0 = y;
                if (y > my1) my1 = y;
            }
        }
    /* Feather inward: erode one pixel, then blur one pixel, so true background stays 0. */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int keep = bin[(size_t)y * W + x];
            for (int dy = -1; dy <= 1 && keep; dy++)
                for (int dx = -1; dx <= 1 && keep; dx++) {
                    int rx = x + dx, ry = y + dy;
                    if (rx >= 0 && ry >= 0 && rx < W && ry < H && !bin[(size_t)ry * W + rx])
                        keep = 0;
                }
            m->data[(size_t)y * W + x] = keep ? 1.0f : 0.0f;
        }
    if (box_blur(m->data, W, H, 1)) {
        st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (mask_box) {
        if (mx1 >= 0) {
            mask_box[0] = mx0;
            mask_box[1] = my0;
            mask_box[2] = mx1 + 1;
            mask_box[3] = my1 + 1;
        } else {
            memcpy(mask_box, box, sizeof(double) * 4);
        }
    }
    *mask = m;
    m = NULL;
out:
    free(bins);
    free(p);
    free(hf);
    free(hb);
    free(sf);
    free(sb);
    free(bin);
    free(lab);
    free(stack);
    pimg_tensor_free(m);
    return st;
}
