/* Training checkpoints with the run's settings in their metadata ("anygrad.*"),
 * so that --resume, eval and predict need no repeated flags. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "anygrad.h"
#include "cli.h"
#include "train.h"

/* ---- checkpoints with the run's settings ------------------------------------ */


void tr_norm_free(norm *z)
{
    free(z->mean);
    free(z->sd);
    memset(z, 0, sizeof *z);
}

bool tr_norm_alloc(norm *z, int64_t n)
{
    if (n < 1 || n > ((int64_t)1 << 28)) { /* a checkpoint's claim, bounded before allocating */
        memset(z, 0, sizeof *z);
        return false;
    }
    z->n = n;
    z->mean = malloc((size_t)n * sizeof *z->mean);
    z->sd = malloc((size_t)n * sizeof *z->sd);
    if (z->mean && z->sd) return true;
    tr_norm_free(z);
    return false;
}

/* "v,v,..." of a checkpoint's metadata: n values (n 0: as many as there are). */
static int64_t parse_floats(const char *s, float *out, int64_t cap)
{
    int64_t k = 0;
    while (s && *s && k < cap) {
        char *end;
        float v = strtof(s, &end);
        if (end == s || !isfinite(v) || (*end && *end != ',')) return -1;
        out[k++] = v;
        s = *end ? end + 1 : end;
    }
    return s && !*s ? k : -1;
}

bool tr_meta_float1(const ag_tensor_dict *d, const char *key, float *out)
{
    return parse_floats(ag_tensor_dict_meta(d, key), out, 1) == 1;
}

/* The statistics a training checkpoint recorded, for n features (1 or the
 * sample size): false when it has none that fit. */
bool tr_norm_from_meta(const ag_tensor_dict *d, int64_t features, norm *z)
{
    const char *m = ag_tensor_dict_meta(d, META "norm_mean"), *v = ag_tensor_dict_meta(d, META "norm_std");
    if (!m || !v) return false;
    int64_t n = strchr(m, ',') ? features : 1;
    if (!tr_norm_alloc(z, n)) return false;
    if (parse_floats(m, z->mean, n) != n || parse_floats(v, z->sd, n) != n) {
        tr_norm_free(z);
        return false;
    }
    return true;
}

static char *floats_str(const float *v, int64_t n)
{
    size_t cap = (size_t)n * 18 + 1, at = 0;
    char *s = malloc(cap);
    for (int64_t i = 0; s && i < n; i++)
        at += (size_t)snprintf(s + at, cap - at, "%s%.9g", i ? "," : "", (double)v[i]);
    if (s && n == 0) s[0] = '\0';
    return s;
}


typedef struct metabuf {
    int n;
    char keys[48][48], *vals[48];
    const char *kv[2 * 48];
} metabuf;

/* val: malloc'ed (NULL: out of memory, the pair is left out) */
static void add_meta_str(metabuf *b, const char *key, char *val)
{
    if (b->n == 48 || !val) {
        free(val);
        return;
    }
    snprintf(b->keys[b->n], sizeof b->keys[0], META "%s", key);
    b->vals[b->n] = val;
    b->kv[2 * b->n] = b->keys[b->n];
    b->kv[2 * b->n + 1] = val;
    b->n++;
}

static void add_meta(metabuf *b, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void add_meta(metabuf *b, const char *key, const char *fmt, ...)
{
    char val[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(val, sizeof val, fmt, ap);
    va_end(ap);
    add_meta_str(b, key, strdup(val));
}

/* The checkpoint with the run's settings in its metadata, written in one go
 * (ag_safetensors_save: a temporary file of its own, renamed over path). */
ag_status tr_save_checkpoint(const cli_train_opts *t, ag_module *m, ag_optim *opt, int64_t epoch,
                             int64_t epoch_step, const norm *z, const dims *dm, int64_t total,
                             int64_t cos_from, float cos_lr, int nextra, const char *const *extra)
{
    metabuf mb, *b = &mb;
    memset(b, 0, sizeof *b);
    for (int i = 0; i < CLI_NTRAIN_OPTS; i++) {
        const cli_optdef *o = &CLI_TRAIN_OPTS[i];
        const void *at = (const char *)t + o->off;
        if (!o->stored) continue;
        if (o->type == CLI_STR && *(const char *const *)at)
            add_meta_str(b, o->flag, strdup(*(const char *const *)at)); /* any length */
        if (o->type == CLI_INT) add_meta(b, o->flag, "%lld", (long long)*(const int64_t *)at);
        if (o->type == CLI_REAL) add_meta(b, o->flag, "%.9g", *(const double *)at);
    }
    if (z) {
        add_meta_str(b, "norm_mean", floats_str(z->mean, z->n));
        add_meta_str(b, "norm_std", floats_str(z->sd, z->n));
    }
    if (dm) {
        add_meta(b, "input", "%lldx%lldx%lld", (long long)dm->c, (long long)dm->h, (long long)dm->w);
        add_meta(b, "classes", "%lld", (long long)dm->classes);
    }
    for (int i = 0; i < nextra; i++) add_meta_str(b, extra[2 * i], strdup(extra[2 * i + 1]));
    add_meta(b, "version", "%s", AG_VERSION);
    add_meta(b, "sched_total", "%lld", (long long)total);
    if (epoch_step > 0) add_meta(b, "epoch_step", "%lld", (long long)epoch_step);
    if (cos_from > 0) {
        add_meta(b, "cos_from", "%lld", (long long)cos_from);
        add_meta(b, "cos_lr", "%.9g", (double)cos_lr);
    }
    ag_status s = ag_checkpoint_save_meta(t->save, m, opt, epoch, b->n, b->kv);
    for (int i = 0; i < b->n; i++) free(b->vals[i]);
    return s;
}
