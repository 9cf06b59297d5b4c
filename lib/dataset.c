/* dataset.c — photo folders for the trainers (labels.csv or a plain folder), seeded splits and
 * random numbers (see dataset.h). One copy for the orientation, levelling and other trainers, so
 * that they read the data sets the same way. */
#include "dataset.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "image.h"

void pimg_rng_seed(pimg_rng *r, unsigned long long a, unsigned long long b, unsigned long long c)
{
    unsigned long long z = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL) * 0xBF58476D1CE4E5B9ULL ^
                           (c + 0x94D049BB133111EBULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    r->s = (z ^ (z >> 31)) | 1; /* xorshift must not start at 0 */
}

double pimg_rng_u(pimg_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (double)((r->s * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

double pimg_rng_range(pimg_rng *r, double lo, double hi) { return lo + (hi - lo) * pimg_rng_u(r); }

int pimg_rng_int(pimg_rng *r, int n) { return n > 0 ? (int)(pimg_rng_u(r) * n) % n : 0; }

int pimg_csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        char *w = p;
        fields[n++] = w;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0')
                    break;
                if (*p == '"') {
                    if (p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *w++ = *p++;
            }
            while (*p && *p != ',')
                p++;
        } else {
            while (*p && *p != ',' && *p != '\r' && *p != '\n')
                *w++ = *p++;
        }
        int more = *p == ',';
        *w = '\0';
        if (!more)
            break;
        p++;
    }
    return n;
}

void pimg_csv_columns(char *const *fields, int nf, const char *const *want, int nwant, int *col)
{
    for (int k = 0; k < nwant; k++) {
        col[k] = -1;
        for (int i = 0; i < nf && col[k] < 0; i++)
            if (!strcmp(fields[i], want[k]))
                col[k] = i;
    }
}

int pimg_has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    static const char *ext[] = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".gif", ".heic", ".avif"};
    if (!dot)
        return 0;
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (!strcasecmp(dot, ext[i]))
            return 1;
    return 0;
}

static int list_add(pimg_photo_list *l, const char *dir, const char *file, int up, int rotation)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        pimg_photo *nv = realloc(l->v, sizeof *nv * cap);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = cap;
    }
    pimg_photo *p = &l->v[l->n++];
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s/%s", dir, file);
    p->up = up;
    p->rotation = ((rotation % 360) + 360) % 360;
    return 0;
}

static pimg_status read_plain_folder(const char *dir, pimg_photo_list *l, pimg_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot open folder", dir);
    struct dirent *e;
    int start = l->n;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && pimg_has_image_ext(e->d_name) && list_add(l, dir, e->d_name, 1, 0)) {
            closedir(d);
            return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        }
    closedir(d);
    /* readdir order is arbitrary: sort so the split is the same on every machine. */
    pimg_photos_sort(l, start, l->n);
    return PIMG_OK;
}

void pimg_photos_sort(pimg_photo_list *l, int start, int end)
{
    for (int i = start + 1; i < end; i++)
        for (int j = i; j > start && strcmp(l->v[j - 1].path, l->v[j].path) > 0; j--) {
            pimg_photo t = l->v[j];
            l->v[j] = l->v[j - 1];
            l->v[j - 1] = t;
        }
}

int pimg_name_has_word(const char *name, const char *const *words, int n)
{
    for (int k = 0; k < n; k++) {
        size_t m = strlen(words[k]);
        if (!m)
            continue;
        for (const char *p = name; *p; p++)
            if (!strncasecmp(p, words[k], m))
                return 1;
    }
    return 0;
}

void pimg_object_stem(const char *path, char *out, size_t n)
{
    if (!n)
        return;
    const char *b = strrchr(path, '/'), *sep;
    b = b ? b + 1 : path;
    /* Flattened tuxpaint names carry their category before "__". */
    while ((sep = strstr(b, "__")))
        b = sep + 2;
    size_t len = strlen(b);
    const char *dot = strrchr(b, '.');
    if (dot)
        len = (size_t)(dot - b);
    if (len >= n)
        len = n - 1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)(b[i] >= 'A' && b[i] <= 'Z' ? b[i] - 'A' + 'a' : b[i]);
    out[len] = '\0';
    /* Strip trailing "mirror" and numbers (with a '-', '_' or ' ' before them) until neither is
     * left, but never down to nothing. */
    for (int changed = 1; changed;) {
        changed = 0;
        size_t m = len;
        while (m > 0 && out[m - 1] >= '0' && out[m - 1] <= '9')
            m--;
        if (m == len && m >= 6 && !strcmp(out + m - 6, "mirror"))
            m -= 6;
        while (m < len && m > 0 && (out[m - 1] == '-' || out[m - 1] == '_' || out[m - 1] == ' '))
            m--;
        if (m < len && m > 0) {
            out[len = m] = '\0';
            changed = 1;
        }
    }
}

void pimg_word_list_free(char **words, int n)
{
    for (int k = 0; k < n; k++)
        free(words[k]);
    free(words);
}

pimg_status pimg_word_list_read(const char *path, char ***words, int *n, pimg_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return pimg_error_set(err, PIMG_ERR_IO, "%s: cannot open", path);
    char line[1024], **v = NULL;
    int k = 0, cap = 0;
    pimg_status st = PIMG_OK;
    while (!st && fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *a = line, *b = line + strlen(line);
        while (*a == ' ' || *a == '\t')
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r' || b[-1] == '\n'))
            *--b = '\0';
        if (!*a)
            continue;
        if (k == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, sizeof *nv * cap);
            if (!nv) {
                st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        if (!(v[k] = strdup(a)))
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        else
            k++;
    }
    fclose(f);
    if (st) {
        pimg_word_list_free(v, k);
        return st;
    }
    *words = v;
    *n = k;
    return PIMG_OK;
}

pimg_status pimg_photos_read(const char *dir, const char *csv_name, pimg_photo_list *l, pimg_error *err)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, csv_name);
    FILE *f = fopen(path, "r");
    if (!f)
        return read_plain_folder(dir, l, err);
    char line[8192];
    char *fields[64];
    static const char *const want[3] = {"file", "up", "rotation"};
    int col[3];
    pimg_status st = PIMG_OK;
    if (!fgets(line, sizeof line, f)) { /* empty: no photos */
        fclose(f);
        return PIMG_OK;
    }
    pimg_csv_columns(fields, pimg_csv_split(line, fields, 64), want, 3, col);
    if (col[0] < 0)
        st = pimg_error_set(err, PIMG_ERR_BAD_INPUT, "%s: no 'file' column", path);
    while (!st && fgets(line, sizeof line, f)) {
        int n = pimg_csv_split(line, fields, 64);
        if (n <= col[0] || !fields[col[0]][0] || fields[col[0]][0] == '#')
            continue;
        int up = col[1] >= 0 && col[1] < n ? atoi(fields[col[1]]) : 1;
        int rot = col[2] >= 0 && col[2] < n ? atoi(fields[col[2]]) : 0;
        if (list_add(l, dir, fields[col[0]], up, rot))
            st = pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    }
    fclose(f);
    return st;
}

void pimg_photo_list_free(pimg_photo_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

int pimg_photos_split(pimg_photo_list *l, int start, int end, double frac, pimg_rng *r)
{
    int n = end - start;
    int *idx = malloc(sizeof(int) * (n > 0 ? n : 1));
    if (!idx)
        return -1;
    for (int i = 0; i < n; i++)
        idx[i] = start + i;
    for (int i = n - 1; i > 0; i--) {
        int j = pimg_rng_int(r, i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    int nt = (int)lround(frac * n);
    for (int i = 0; i < n; i++)
        l->v[idx[i]].test = i < nt;
    free(idx);
    return 0;
}

pimg_status pimg_photo_load(const pimg_photo *p, int side, pimg_tensor **out, pimg_error *err)
{
    pimg_image *img = NULL;
    pimg_tensor *t = NULL;
    pimg_status st = pimg_image_load_file(p->path, NULL, &img, err);
    if (!st)
        st = pimg_image_tensor(img, side, &t, err);
    pimg_image_free(img);
    if (st)
        return st;
    if (p->rotation) {
        pimg_tensor *r = pimg_tensor_rot90(t, p->rotation);
        pimg_tensor_free(t);
        if (!r)
            return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
        t = r;
    }
    *out = t;
    return PIMG_OK;
}
