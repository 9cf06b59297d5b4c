/* models.c — loading the model folder into one immutable, reference-counted set. */
#include "models.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pimg_models {
    atomic_int refs;
    char dir[PATH_MAX];
    char version[64];
    pimg_orient_model *orient;
    pimg_detect_model *detect;
    pimg_enhance_model *enhance;
    pimg_level_model *level;
    char orient_note[256], detect_note[256], enhance_note[256], level_note[256];
};

/* Loads one model with `load`; missing is fine (note says why), anything else fails. */
#define LOAD_ONE(m, name, file, loadfn, err)                                                     \
    do {                                                                                         \
        char p_[PATH_MAX + 32];                                                                  \
        pimg_error e_ = {0};                                                                     \
        snprintf(p_, sizeof p_, "%s/%s", (m)->dir, file);                                        \
        pimg_status s_ = loadfn(p_, &(m)->name, &e_);                                            \
        if (s_ == PIMG_ERR_NOT_FOUND) {                                                          \
            memcpy((m)->name##_note, e_.msg, sizeof e_.msg);                 \
        } else if (s_) {                                                                         \
            pimg_error_set(err, s_, "model %s: %s", file, e_.msg);                               \
            pimg_models_release(m);                                                              \
            return s_;                                                                           \
        }                                                                                        \
    } while (0)

pimg_status pimg_models_load(const char *dir, pimg_models **out, pimg_error *err)
{
    pimg_models *m = calloc(1, sizeof *m);
    if (!m)
        return pimg_error_set(err, PIMG_ERR_NOMEM, "out of memory");
    atomic_init(&m->refs, 1);
    snprintf(m->dir, sizeof m->dir, "%s", dir ? dir : "models");
    struct stat sb;
    if (stat(m->dir, &sb) == 0) {
        /* The folder's mtime is a cheap version that changes whenever a model is promoted. */
        snprintf(m->version, sizeof m->version, "%lld", (long long)sb.st_mtime);
    } else {
        snprintf(m->version, sizeof m->version, "none");
    }
    LOAD_ONE(m, orient, "orient.svm", pimg_orient_model_load, err);
    LOAD_ONE(m, detect, "detect.svm", pimg_detect_model_load, err);
    LOAD_ONE(m, enhance, "enhance.json", pimg_enhance_model_load, err);
    LOAD_ONE(m, level, "level.model", pimg_level_model_load, err);
    *out = m;
    return PIMG_OK;
}

pimg_models *pimg_models_acquire(pimg_models *m)
{
    if (m)
        atomic_fetch_add(&m->refs, 1);
    return m;
}

void pimg_models_release(pimg_models *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    pimg_orient_model_free(m->orient);
    pimg_detect_model_free(m->detect);
    pimg_enhance_model_free(m->enhance);
    pimg_level_model_free(m->level);
    free(m);
}

const pimg_orient_model *pimg_models_orient(const pimg_models *m) { return m ? m->orient : NULL; }
const pimg_detect_model *pimg_models_detect(const pimg_models *m) { return m ? m->detect : NULL; }
const pimg_enhance_model *pimg_models_enhance(const pimg_models *m) { return m ? m->enhance : NULL; }
const pimg_level_model *pimg_models_level(const pimg_models *m) { return m ? m->level : NULL; }
const char *pimg_models_dir(const pimg_models *m) { return m ? m->dir : ""; }
const char *pimg_models_version(const pimg_models *m) { return m ? m->version : "none"; }

static void describe_one(cJSON *o, const char *name, const void *loaded, const char *note)
{
    cJSON *e = cJSON_AddObjectToObject(o, name);
    cJSON_AddBoolToObject(e, "loaded", loaded != NULL);
    if (!loaded && note[0])
        cJSON_AddStringToObject(e, "note", note);
}

cJSON *pimg_models_describe(const pimg_models *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !m)
        return o;
    cJSON_AddStringToObject(o, "dir", m->dir);
    cJSON_AddStringToObject(o, "version", m->version);
    describe_one(o, "orient", m->orient, m->orient_note);
    describe_one(o, "detect", m->detect, m->detect_note);
    describe_one(o, "enhance", m->enhance, m->enhance_note);
    describe_one(o, "level", m->level, m->level_note);
    return o;
}

char *pimg_models_default_dir(const char *exe_path, char *buf, size_t n)
{
    const char *env = getenv("PIMG_MODELS_DIR");
    if (env && *env) {
        snprintf(buf, n, "%s", env);
        return buf;
    }
    /* build/pimg → <root>/models: the binary lives one level below the project root. */
    char exe[PATH_MAX];
    if (exe_path && realpath(exe_path, exe)) {
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash)
                break;
            *slash = '\0';
            char cand[PATH_MAX + 16];
            snprintf(cand, sizeof cand, "%s/models", exe);
            struct stat sb;
            if (stat(cand, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                snprintf(buf, n, "%s", cand);
                return buf;
            }
        }
    }
    snprintf(buf, n, "models");
    return buf;
}
