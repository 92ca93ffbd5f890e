/* Mini-batch loader over the samples of x and y. Contiguous CPU tensors are
 * read in place (retained, not copied: a u8 image set costs its file's size
 * once); others are copied to the host at creation. The order of epoch e is a
 * Fisher-Yates shuffle driven by Philox(seed, e), so it does not depend on the
 * global generator, the backend or the thread count. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* Samples shared by a loader and the loaders split from it. */
typedef struct samples {
    _Atomic int refs;
    int64_t n;
    struct part {
        ag_dtype dtype;        /* f32, i32 or u8 */
        int ndim;              /* of the whole tensor */
        int64_t shape[AG_MAX_DIMS];
        int64_t feat;          /* elements per sample */
        const void *data;      /* the samples, row-major */
        ag_tensor *held;       /* data is this tensor's memory, or NULL: data is ours */
    } x, y;
    bool has_y;
} samples;

struct ag_loader {
    samples *s;
    ag_loader_config cfg;
    int64_t n, *idx;           /* this loader's samples (indices into s) */
    int64_t *order, pos;       /* current epoch */
    int64_t nnorm;             /* 0, 1 or x.feat */
    float *mean, *inv_std;
    float u8_norm[256];        /* nnorm 1, u8 x: each byte's normalised value */
    int rank, nranks;          /* ag_loader_shard: this rank's part of each batch */
    int64_t last_local, last_global;
};

/* Key separation: epoch shuffles use key (seed), the split uses key (~seed). */
static void philox_u64s(uint64_t key, uint64_t a, uint64_t b, uint32_t out[4])
{
    const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
    const uint32_t c[4] = {(uint32_t)a, (uint32_t)(a >> 32), (uint32_t)b, (uint32_t)(b >> 32)};
    ag_philox4x32(k, c, out);
}

static void shuffle(int64_t *v, int64_t n, uint64_t key, uint64_t stream)
{
    for (int64_t i = n - 1; i > 0; i--) {
        uint32_t r[4];
        philox_u64s(key, (uint64_t)i, stream, r);
        uint64_t u = (uint64_t)r[0] << 32 | r[1];
        int64_t j = (int64_t)(u % (uint64_t)(i + 1)); /* bias below 2^-31 */
        int64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* u8 samples are pixels: batches carry v / 255 (rounded once, as ag_idx_load
 * rounds), the convention of image libraries. */
static float u8_unit[256];
static void u8_unit_init(void)
{
    for (int v = 0; v < 256; v++) u8_unit[v] = (float)(v / 255.0);
}

static void part_free(struct part *p)
{
    if (p->held) ag_release(p->held);
    else free((void *)p->data);
}

static void samples_release(samples *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
    part_free(&s->x);
    part_free(&s->y);
    free(s);
}

static ag_status copy_part(const char *what, ag_tensor *t, int64_t n, struct part *p)
{
    if (!ag__check("ag_loader_new", t, AG_ANY)) return ag_last_status();
    if (t->dtype != AG_F32 && t->dtype != AG_I32 && t->dtype != AG_U8)
        return ag_set_error(AG_ERR_DTYPE, "ag_loader_new: %s is %s; f32, i32 or u8 needed", what,
                            ag_dtype_name(t->dtype));
    char s[160];
    ag__shape_fmt(t->ndim, t->shape, s, sizeof s);
    if (t->ndim < 1 || t->shape[0] != n)
        return ag_set_error(AG_ERR_SHAPE, "ag_loader_new: %s %s must have %lld samples on axis 0",
                            what, s, (long long)n);
    p->dtype = t->dtype;
    p->ndim = t->ndim;
    memcpy(p->shape, t->shape, sizeof p->shape);
    p->feat = 1;
    for (int d = 1; d < t->ndim; d++) p->feat *= t->shape[d];
    if ((p->data = ag__host_bytes(t))) {
        p->held = ag_retain(t);
        return AG_OK;
    }
    size_t bytes = (size_t)ag_numel(t) * ag_dtype_size(t->dtype);
    void *copy = malloc(bytes ? bytes : 1);
    if (!copy) return ag_set_error(AG_ERR_OOM, "ag_loader_new: no host memory for %s", what);
    p->data = copy;
    return ag_to_host(t, copy, bytes);
}

static ag_loader *loader_over(samples *s, const ag_loader_config *cfg, int64_t n,
                              const int64_t *idx)
{
    ag_loader *l = calloc(1, sizeof *l);
    if (l) {
        l->idx = malloc((size_t)(n ? n : 1) * sizeof *l->idx);
        l->order = malloc((size_t)(n ? n : 1) * sizeof *l->order);
    }
    if (!l || !l->idx || !l->order) {
        if (l) {
            free(l->idx);
            free(l->order);
            free(l);
        }
        ag_set_error(AG_ERR_OOM, "ag_loader: out of host memory");
        return NULL;
    }
    atomic_fetch_add(&s->refs, 1);
    l->s = s;
    l->cfg = *cfg;
    l->n = n;
    l->nranks = 1;
    memcpy(l->idx, idx, (size_t)n * sizeof *idx);
    ag_loader_start_epoch(l, 0);
    return l;
}

ag_loader *ag_loader_new(ag_tensor *x, ag_tensor *y, const ag_loader_config *cfg)
{
    if (!cfg) return ag_set_error(AG_ERR_ARG, "ag_loader_new: config is NULL"), NULL;
    if (cfg->batch_size <= 0)
        return ag_set_error(AG_ERR_ARG, "ag_loader_new: batch_size must be > 0 (got %lld)",
                            (long long)cfg->batch_size), NULL;
    if (!ag__valid("ag_loader_new", x)) return NULL;
    if (x->ndim < 1) return ag_set_error(AG_ERR_SHAPE, "ag_loader_new: x is 0-dim"), NULL;
    samples *s = calloc(1, sizeof *s);
    int64_t *idx = s ? malloc((size_t)(x->shape[0] ? x->shape[0] : 1) * sizeof *idx) : NULL;
    if (!idx) {
        free(s);
        return ag_set_error(AG_ERR_OOM, "ag_loader_new: out of host memory"), NULL;
    }
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, u8_unit_init);
    s->refs = 1;
    s->n = x->shape[0];
    s->has_y = y != NULL;
    ag_status st = copy_part("x", x, s->n, &s->x);
    if (st == AG_OK && y) st = copy_part("y", y, s->n, &s->y);
    ag_loader *l = NULL;
    if (st == AG_OK) {
        for (int64_t i = 0; i < s->n; i++) idx[i] = i;
        l = loader_over(s, cfg, s->n, idx);
    }
    free(idx);
    samples_release(s); /* the loader holds its own reference */
    return l;
}

ag_status ag_loader_split(const ag_loader *l, double val_fraction, ag_loader **train,
                          ag_loader **val)
{
    if (train) *train = NULL;
    if (val) *val = NULL;
    if (!l || !train || !val)
        return ag_set_error(AG_ERR_ARG, "ag_loader_split: loader or outputs NULL");
    if (!(val_fraction >= 0.0 && val_fraction <= 1.0))
        return ag_set_error(AG_ERR_ARG, "ag_loader_split: fraction %g is not in [0, 1]",
                            val_fraction);
    int64_t nval = (int64_t)llround(val_fraction * (double)l->n);
    int64_t *perm = malloc((size_t)(l->n ? l->n : 1) * sizeof *perm);
    if (!perm) return ag_set_error(AG_ERR_OOM, "ag_loader_split: out of host memory");
    memcpy(perm, l->idx, (size_t)l->n * sizeof *perm);
    shuffle(perm, l->n, ~l->cfg.seed, 0);
    ag_loader_config vcfg = l->cfg;
    vcfg.shuffle = false;
    *val = loader_over(l->s, &vcfg, nval, perm);
    *train = *val ? loader_over(l->s, &l->cfg, l->n - nval, perm + nval) : NULL;
    free(perm);
    if (!*train) {
        ag_loader_free(*val);
        *val = NULL;
        return ag_last_status();
    }
    /* Normalisation carries over so split loaders see the same inputs. */
    ag_status s = AG_OK;
    if (l->nnorm) {
        float *mean = malloc((size_t)l->nnorm * sizeof *mean), *sd = malloc((size_t)l->nnorm * sizeof *sd);
        for (int64_t j = 0; mean && sd && j < l->nnorm; j++) {
            mean[j] = l->mean[j];
            sd[j] = 1.0f / l->inv_std[j];
        }
        s = mean && sd ? ag_loader_set_normalize(*train, l->nnorm, mean, sd)
                       : ag_set_error(AG_ERR_OOM, "ag_loader_split: out of host memory");
        if (s == AG_OK) s = ag_loader_set_normalize(*val, l->nnorm, mean, sd);
        free(mean);
        free(sd);
    }
    if (s != AG_OK) {
        ag_loader_free(*train);
        ag_loader_free(*val);
        *train = *val = NULL;
    }
    return s;
}

int64_t ag_loader_size(const ag_loader *l) { return l ? l->n : 0; }

int64_t ag_loader_num_batches(const ag_loader *l)
{
    if (!l) return 0;
    int64_t b = l->cfg.batch_size;
    return l->cfg.drop_last ? l->n / b : (l->n + b - 1) / b;
}

ag_status ag_loader_set_normalize(ag_loader *l, int64_t n, const float *mean, const float *std)
{
    if (!l || (n > 0 && (!mean || !std)))
        return ag_set_error(AG_ERR_ARG, "ag_loader_set_normalize: NULL argument");
    if (l->s->x.dtype == AG_I32)
        return ag_set_error(AG_ERR_DTYPE, "ag_loader_set_normalize: x is int32");
    if (n != 0 && n != 1 && n != l->s->x.feat)
        return ag_set_error(AG_ERR_SHAPE, "ag_loader_set_normalize: %lld values given; need 1 "
                                          "or %lld (features per sample), or 0 to turn it off",
                            (long long)n, (long long)l->s->x.feat);
    for (int64_t j = 0; j < n; j++)
        if (!(std[j] > 0.0f) || !isfinite(mean[j]))
            return ag_set_error(AG_ERR_ARG, "ag_loader_set_normalize: feature %lld has mean %g "
                                            "std %g (std must be > 0)", (long long)j,
                                (double)mean[j], (double)std[j]);
    float *m = n ? malloc((size_t)n * sizeof *m) : NULL, *is = n ? malloc((size_t)n * sizeof *is) : NULL;
    if (n && (!m || !is)) {
        free(m);
        free(is);
        return ag_set_error(AG_ERR_OOM, "ag_loader_set_normalize: out of host memory");
    }
    for (int64_t j = 0; j < n; j++) {
        m[j] = mean[j];
        is[j] = 1.0f / std[j];
    }
    free(l->mean);
    free(l->inv_std);
    l->mean = m;
    l->inv_std = is;
    l->nnorm = n;
    /* the same two roundings as normalising the converted batch, looked up */
    if (n == 1)
        for (int v = 0; v < 256; v++) l->u8_norm[v] = (u8_unit[v] - m[0]) * is[0];
    return AG_OK;
}

ag_status ag_loader_stats(const ag_loader *l, bool per_feature, float *mean, float *std)
{
    if (!l || !mean || !std) return ag_set_error(AG_ERR_ARG, "ag_loader_stats: NULL argument");
    if (l->s->x.dtype == AG_I32) return ag_set_error(AG_ERR_DTYPE, "ag_loader_stats: x is int32");
    if (l->n == 0) return ag_set_error(AG_ERR_ARG, "ag_loader_stats: the loader has no samples");
    int64_t f = l->s->x.feat, k = per_feature ? f : 1;
    double *sum = calloc((size_t)(2 * k), sizeof *sum);
    if (!sum) return ag_set_error(AG_ERR_OOM, "ag_loader_stats: out of host memory");
    const bool u8 = l->s->x.dtype == AG_U8;
    for (int64_t i = 0; i < l->n; i++) {
        const float *row = (const float *)l->s->x.data + l->idx[i] * f;
        const uint8_t *brow = (const uint8_t *)l->s->x.data + l->idx[i] * f;
        for (int64_t j = 0; j < f; j++) {
            double v = u8 ? u8_unit[brow[j]] : row[j];
            sum[per_feature ? j : 0] += v;
            sum[k + (per_feature ? j : 0)] += v * v;
        }
    }
    double count = (double)l->n * (per_feature ? 1.0 : (double)f);
    for (int64_t j = 0; j < k; j++) {
        double m = sum[j] / count, var = sum[k + j] / count - m * m;
        mean[j] = (float)m;
        std[j] = (float)sqrt(var > 0.0 ? var : 0.0);
    }
    free(sum);
    return AG_OK;
}

ag_status ag_loader_start_epoch(ag_loader *l, int64_t epoch)
{
    if (!l) return ag_set_error(AG_ERR_ARG, "ag_loader_start_epoch: loader is NULL");
    memcpy(l->order, l->idx, (size_t)l->n * sizeof *l->order);
    if (l->cfg.shuffle) shuffle(l->order, l->n, l->cfg.seed, (uint64_t)epoch);
    l->pos = 0;
    return AG_OK;
}

/* Rows of one part as a batch: f32 and i32 as stored, u8 x as [0, 1] floats
 * (then normalised), u8 y as int32 class indices. */
static ag_tensor *gather(const ag_loader *l, const struct part *p, const int64_t *rows,
                         int64_t b, bool is_x)
{
    int64_t shape[AG_MAX_DIMS];
    memcpy(shape, p->shape, sizeof shape);
    shape[0] = b;
    const int64_t f = p->feat;
    const ag_dtype out = p->dtype == AG_U8 ? (is_x ? AG_F32 : AG_I32) : p->dtype;
    void *buf = malloc((size_t)(b * f) * 4 + 1);
    if (!buf) return ag_set_error(AG_ERR_OOM, "ag_loader_next: out of host memory"), NULL;
    /* u8 images normalised by one mean and std: one lookup a byte */
    const bool lookup = is_x && p->dtype == AG_U8 && l->nnorm == 1;
    const float *unit = lookup ? l->u8_norm : u8_unit;
    for (int64_t i = 0; i < b; i++) {
        const int64_t r = rows[i];
        if (p->dtype != AG_U8)
            memcpy((char *)buf + i * f * 4, (const char *)p->data + r * f * 4, (size_t)f * 4);
        else if (is_x)
            for (int64_t j = 0; j < f; j++)
                ((float *)buf)[i * f + j] = unit[((const uint8_t *)p->data)[r * f + j]];
        else
            for (int64_t j = 0; j < f; j++)
                ((int32_t *)buf)[i * f + j] = ((const uint8_t *)p->data)[r * f + j];
    }
    if (is_x && l->nnorm && !lookup) {
        float *v = buf;
        const bool one = l->nnorm == 1;
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j < f; j++) {
                const int64_t k = one ? 0 : j;
                v[i * f + j] = (v[i * f + j] - l->mean[k]) * l->inv_std[k];
            }
    }
    ag_tensor *t = out == AG_F32 ? ag_from_f32(buf, p->ndim, shape) : ag_from_i32(buf, p->ndim, shape);
    free(buf);
    return t;
}

bool ag_loader_next(ag_loader *l, ag_tensor **x, ag_tensor **y)
{
    if (x) *x = NULL;
    if (y) *y = NULL;
    if (!l || !x) {
        ag_set_error(AG_ERR_ARG, "ag_loader_next: loader or x is NULL");
        return false;
    }
    int64_t left = l->n - l->pos, b = l->cfg.batch_size;
    if (left <= 0 || (l->cfg.drop_last && left < b)) {
        ag_clear_error();
        return false;
    }
    if (b > left) b = left;
    /* a shard's part of the global batch [pos, pos + b) */
    const int64_t lo = b * l->rank / l->nranks, hi = b * (l->rank + 1) / l->nranks;
    const int64_t *rows = l->order + l->pos + lo, global = b;
    b = hi - lo;
    /* Both or neither: a failed y must not leave x behind. */
    ag_scope_begin();
    ag_tensor *bx = gather(l, &l->s->x, rows, b, true), *by = NULL;
    bool ok = bx && (!y || !l->s->has_y || (by = gather(l, &l->s->y, rows, b, false)));
    if (ok) {
        ag_retain(bx);
        if (by) ag_retain(by);
    }
    ag_scope_end();
    if (!ok) return false;
    *x = ag__own(bx);
    if (y) *y = ag__own(by);
    l->pos += global;
    l->last_local = b;
    l->last_global = global;
    return true;
}

ag_status ag_loader_shard(ag_loader *l, int rank, int nranks)
{
    if (!l) return ag_set_error(AG_ERR_ARG, "ag_loader_shard: loader is NULL");
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return ag_set_error(AG_ERR_ARG, "ag_loader_shard: rank %d of %d (need 0 <= rank < nranks)",
                            rank, nranks);
    l->rank = rank;
    l->nranks = nranks;
    return AG_OK;
}

ag_status ag_loader_last_batch(const ag_loader *l, int64_t *local, int64_t *global)
{
    if (!l || !local || !global) return ag_set_error(AG_ERR_ARG, "ag_loader_last_batch: NULL argument");
    *local = l->last_local;
    *global = l->last_global;
    return AG_OK;
}

void ag_loader_free(ag_loader *l)
{
    if (!l) return;
    samples_release(l->s);
    free(l->idx);
    free(l->order);
    free(l->mean);
    free(l->inv_std);
    free(l);
}
