/* anygrad train / anygrad eval: Fashion-MNIST-style image classifiers (IDX files)
 * built from the module API, trained with the loader, logged, plotted and
 * checkpointed. Training checkpoints carry the run's settings in their
 * metadata ("anygrad.*") so that --resume and eval need no repeated flags. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anygrad.h"
#include "cli.h"

#define META "anygrad."

/* What the data decides about a model: one sample's shape (channels, height,
 * width; features only: [1, 1, F]) and the number of classes. */
typedef struct dims {
    int64_t c, h, w, classes;
} dims;

/* ---- models --------------------------------------------------------------- */

/* The built-in models are layer descriptions (layers.c) like --layers. */
typedef struct model_spec {
    const char *name, *layers;
    int first_weight_ndim;  /* of "0.weight": tells checkpoints of the two apart */
    const char *out_weight; /* the last layer's weight: [classes, ...] */
    const char *about;
} model_spec;

static const model_spec MODELS[] = {
    {"mlp", CLI_MLP_LAYERS, 2, "4.weight", "ReLU MLP"},
    {"cnn", CLI_CNN_LAYERS, 4, "10.weight", "TF-tutorial CNN"},
};
#define NMODELS ((int)(sizeof MODELS / sizeof MODELS[0]))

static const model_spec *find_model(const char *name)
{
    for (int i = 0; name && i < NMODELS; i++)
        if (!strcmp(MODELS[i].name, name)) return &MODELS[i];
    return NULL;
}

/* A --layers model: its name is "custom" and it is described by itself. */
static model_spec custom_model(const char *layers)
{
    return (model_spec){"custom", layers, 0, NULL, NULL};
}

static bool takes_images(const model_spec *ms) { return cli_layers_take_images(ms->layers); }

static ag_module *build_model(const model_spec *ms, const dims *d)
{
    char err[512];
    ag_module *m = cli_layers_build(ms->layers, d->c, d->h, d->w, d->classes, err, sizeof err);
    if (!m) fprintf(stderr, "anygrad: the model \"%s\": %s\n", ms->layers, err);
    return m;
}

static void describe(const model_spec *ms, const dims *d, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%lldx%lldx%lld -> %s -> %lld classes", ms->about ? ms->about : "",
             ms->about ? " on " : "", (long long)d->c, (long long)d->h, (long long)d->w, ms->layers,
             (long long)d->classes);
}

/* ---- data ------------------------------------------------------------------ */

/* anygrad eval's batch: small enough that a CNN's activations stay tens of MB */
#define EVAL_BATCH 128

/* DIR/SPLIT-KIND-idxN-ubyte.gz, or the same name without .gz (plain IDX). */
static void idx_path(const char *dir, const char *split, const char *kind, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s-%s-ubyte.gz", dir, split, kind);
    FILE *f = fopen(buf, "rb");
    if (f) {
        fclose(f);
        return;
    }
    char plain[4096];
    snprintf(plain, sizeof plain, "%s/%s-%s-ubyte", dir, split, kind);
    if ((f = fopen(plain, "rb"))) {
        fclose(f);
        snprintf(buf, size, "%s", plain);
    }
}

/* The labels as int32 with their range checked: every one in [0, classes), or
 * with classes 0, in [0, 2^16) and *classes set to the largest + 1. */
static bool check_labels(const char *path, ag_tensor *lab, int64_t *classes)
{
    int64_t n = ag_dim(lab, 0);
    int32_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    ag_scope_begin();
    ag_tensor *l32 = ag_to_dtype(lab, AG_I32);
    bool ok = v && l32 && ag_to_host(l32, v, (size_t)n * sizeof *v) == AG_OK;
    ag_scope_end();
    if (!ok) {
        fprintf(stderr, "%s: reading the labels: %s\n", path, v ? ag_last_error() : "out of memory");
        free(v);
        return false;
    }
    int64_t limit = *classes ? *classes : 1 << 16, top = -1;
    for (int64_t i = 0; i < n; i++) {
        if (v[i] < 0 || v[i] >= limit) {
            if (*classes)
                fprintf(stderr, "%s: label %lld is %d, outside the %lld classes (0 to %lld) of the "
                                "model\n", path, (long long)i, (int)v[i], (long long)*classes,
                        (long long)*classes - 1);
            else
                fprintf(stderr, "%s: label %lld is %d; labels are class numbers from 0 (below "
                                "65536)\n", path, (long long)i, (int)v[i]);
            free(v);
            return false;
        }
        if (v[i] > top) top = v[i];
    }
    free(v);
    if (!*classes) {
        *classes = top + 1 < 2 ? 2 : top + 1;
    }
    return true;
}

/* Images and labels of one split ("train" or "t10k"), the first limit (0 = all),
 * shaped [N, sample...] for model ms. *d: in, the sample shape and classes the
 * model was built for (0: take them from these files); out, what they are. */
static bool load_split(const char *dir, const char *split, int64_t limit, const model_spec *ms,
                       dims *d, ag_tensor **x, ag_tensor **y)
{
    char pi[4096], pl[4096];
    idx_path(dir, split, "images-idx3", pi, sizeof pi);
    idx_path(dir, split, "labels-idx1", pl, sizeof pl);
    *x = *y = NULL;
    ag_scope_begin();
    /* u8 as in the files: the loaders scale images per batch (a quarter of the memory) */
    ag_tensor *img = ag_idx_load_raw(pi), *lab = img ? ag_idx_load_raw(pl) : NULL;
    int64_t n = img ? ag_dim(img, 0) : 0, shape[AG_MAX_DIMS];
    int nd = img ? ag_shape(img, shape) : 0;
    if (!img || !lab) {
        fprintf(stderr, "loading %s data: %s\n", split, ag_last_error());
        if (strstr(ag_last_error(), "cannot open") || strstr(ag_last_error(), "No such file"))
            fprintf(stderr, "Fashion-MNIST comes from Debian's dataset-fashion-mnist package (`make "
                            "deps`); --data DIR points at other IDX files (SPLIT-images-idx3-ubyte "
                            "and SPLIT-labels-idx1-ubyte, gzipped or not)\n");
        ag_scope_end();
        return false;
    }
    dims got = {1, 1, nd >= 2 ? shape[nd - 1] : 0, d->classes};
    if (nd >= 3) got.h = shape[nd - 2];
    if (nd == 4) got.c = shape[1];
    const char *bad = NULL;
    if (ag_ndim(lab) != 1 || ag_dim(lab, 0) != n) bad = "labels";
    else if (nd < 2 || nd > 4) bad = "images";
    else if (takes_images(ms) && (nd < 3 || got.h < 4 || got.w < 4)) bad = "image size";
    else if (d->w && (got.c != d->c || got.h != d->h || got.w != d->w)) bad = "sample shape";
    if (bad) {
        char si[160] = "-";
        if (nd >= 2) snprintf(si, sizeof si, "%lld", (long long)shape[1]);
        for (int k = 2; k < nd; k++)
            snprintf(si + strlen(si), sizeof si - strlen(si), "x%lld", (long long)shape[k]);
        if (!strcmp(bad, "labels"))
            fprintf(stderr, "%s: %lld images of %lld pixels (%s) but %lld labels\n", pi,
                    (long long)n, (long long)(n ? ag_numel(img) / n : 0), si,
                    ag_ndim(lab) == 1 ? (long long)ag_dim(lab, 0) : -1LL);
        else if (!strcmp(bad, "images"))
            fprintf(stderr, "%s: %d dimensions; want [N, features], [N, H, W] or [N, C, H, W]\n",
                    pi, nd);
        else if (!strcmp(bad, "image size"))
            fprintf(stderr, "%s: samples of %s; the model (%s) needs images of at least 4x4 ([N, "
                            "H, W] or [N, C, H, W])\n", pi, si, ms->layers);
        else
            fprintf(stderr, "%s: samples of %s; the model takes %lldx%lldx%lld\n", pi, si,
                    (long long)d->c, (long long)d->h, (long long)d->w);
        ag_scope_end();
        return false;
    }
    if (!check_labels(pl, lab, &got.classes)) {
        ag_scope_end();
        return false;
    }
    if (limit > 0 && limit < n) n = limit;
    int64_t xs[4] = {n, got.c, got.h, got.w}, flat[2] = {n, got.c * got.h * got.w};
    *x = ag_retain(takes_images(ms) ? ag_reshape(ag_slice(img, 0, 0, n, 1), 4, xs)
                             : ag_reshape(ag_slice(img, 0, 0, n, 1), 2, flat));
    *y = ag_retain(ag_contiguous(ag_slice(lab, 0, 0, n, 1)));
    ag_scope_end();
    if (*x && *y) {
        *d = got;
        return true;
    }
    fprintf(stderr, "loading %s data: %s\n", split, ag_last_error());
    ag_release(*x);
    ag_release(*y);
    *x = *y = NULL;
    return false;
}

static bool is_csv(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 4 && !strcasecmp(path + n - 4, ".csv");
}

/* A CSV file as a table; a first line that is not numbers is a header. */
static ag_tensor *csv_table(const char *path)
{
    ag_tensor *t = ag_csv_load(path, false);
    if (!t && strstr(ag_last_error(), " line 1, field") && strstr(ag_last_error(), "not a number"))
        t = ag_csv_load(path, true);
    return t;
}

/* Every column of a [rows, cols] table but column lc. */
static ag_tensor *without_column(ag_tensor *t, int64_t lc)
{
    int64_t cols = ag_dim(t, 1);
    ag_tensor *parts[2];
    int np = 0;
    if (lc > 0) parts[np++] = ag_slice(t, 1, 0, lc, 1);
    if (lc + 1 < cols) parts[np++] = ag_slice(t, 1, lc + 1, cols, 1);
    return np == 1 ? ag_contiguous(parts[0]) : ag_concat(np, parts, 1);
}

/* A CSV table: every column but label_col (negative: from the end) a feature,
 * label_col the class. A first line that is not numbers is a header. */
static bool load_csv(const char *path, int64_t label_col, int64_t limit, const model_spec *ms,
                     dims *d, ag_tensor **x, ag_tensor **y)
{
    *x = *y = NULL;
    if (takes_images(ms)) {
        fprintf(stderr, "%s: CSV rows are feature vectors; the model (%s) needs images\n", path,
                ms->layers);
        return false;
    }
    ag_scope_begin();
    ag_tensor *t = csv_table(path);
    int64_t n = t ? ag_dim(t, 0) : 0, cols = t ? ag_dim(t, 1) : 0;
    int64_t lc = label_col < 0 ? cols + label_col : label_col;
    if (!t || cols < 2 || lc < 0 || lc >= cols) {
        if (t)
            fprintf(stderr, "%s: %lld columns; --label-column %lld needs a column for the label "
                            "and at least one feature\n", path, (long long)cols,
                    (long long)label_col);
        else
            fprintf(stderr, "loading %s: %s\n", path, ag_last_error());
        ag_scope_end();
        return false;
    }
    /* every value finite (strtod reads "inf" and "nan"), named where not */
    float *all = malloc((size_t)(n * cols) * sizeof *all);
    if (!all || ag_to_host(t, all, (size_t)(n * cols) * sizeof *all) != AG_OK) {
        fprintf(stderr, "loading %s: %s\n", path, all ? ag_last_error() : "out of memory");
        free(all);
        ag_scope_end();
        return false;
    }
    for (int64_t i = 0; i < n * cols; i++)
        if (!isfinite(all[i])) {
            fprintf(stderr, "%s: data row %lld, column %lld is %g; every value must be a finite "
                            "number\n", path, (long long)(i / cols + 1), (long long)(i % cols),
                    (double)all[i]);
            free(all);
            ag_scope_end();
            return false;
        }
    free(all);
    /* the labels must be class numbers: whole, from 0 */
    float *lv = malloc((size_t)n * sizeof *lv);
    ag_tensor *lab = ag_contiguous(ag_reshape(ag_slice(t, 1, lc, lc + 1, 1), 1, &n));
    bool ok = lv && lab && ag_to_host(lab, lv, (size_t)n * sizeof *lv) == AG_OK;
    for (int64_t i = 0; ok && i < n; i++)
        if (!(lv[i] >= 0.0f && lv[i] < 65536.0f && lv[i] == floorf(lv[i]))) {
            fprintf(stderr, "%s: data row %lld has label %g in column %lld; labels are class "
                            "numbers from 0\n", path, (long long)i + 1, (double)lv[i], (long long)lc);
            free(lv);
            ag_scope_end();
            return false;
        }
    free(lv);
    ag_tensor *feat = without_column(t, lc);
    ag_tensor *lab32 = ag_to_dtype(lab, AG_I32);
    dims got = {1, 1, cols - 1, d->classes};
    if (ok && feat && lab32 && d->w && got.w != d->c * d->h * d->w) {
        fprintf(stderr, "%s: %lld features a row; the model takes %lld\n", path, (long long)got.w,
                (long long)(d->c * d->h * d->w));
        ok = false;
    } else if (ok && feat && lab32) {
        ok = check_labels(path, lab32, &got.classes);
    } else {
        fprintf(stderr, "loading %s: %s\n", path, ag_last_error());
        ok = false;
    }
    if (ok) {
        if (limit > 0 && limit < n) n = limit;
        *x = ag_retain(ag_contiguous(ag_slice(feat, 0, 0, n, 1)));
        *y = ag_retain(ag_contiguous(ag_slice(lab32, 0, 0, n, 1)));
        ok = *x && *y;
        if (ok && !d->w) got.c = got.h = 1;
        if (ok) *d = got;
    }
    ag_scope_end();
    if (!ok) {
        ag_release(*x);
        ag_release(*y);
        *x = *y = NULL;
    }
    return ok;
}

static ag_loader *make_loader_drop(ag_tensor *x, ag_tensor *y, int64_t batch, bool shuffle,
                                   uint64_t seed, bool drop_last)
{
    ag_loader_config c = {.batch_size = batch, .shuffle = shuffle, .seed = seed, .drop_last = drop_last};
    ag_loader *l = x && y ? ag_loader_new(x, y, &c) : NULL;
    ag_release(x);
    ag_release(y);
    return l;
}

static ag_loader *make_loader(ag_tensor *x, ag_tensor *y, int64_t batch, bool shuffle, uint64_t seed)
{
    return make_loader_drop(x, y, batch, shuffle, seed, false);
}

/* Mean cross-entropy and accuracy over a loader, in eval mode. */
static bool evaluate(ag_module *m, ag_loader *l, double *loss, double *acc)
{
    double lsum = 0.0;
    int64_t correct = 0, seen = 0;
    bool ok = ag_loader_start_epoch(l, 0) == AG_OK;
    ag_module_train(m, false);
    ag_no_grad_begin();
    while (ok) {
        ag_tensor *x, *y;
        ag_scope_begin();
        if (!ag_loader_next(l, &x, &y)) {
            ok = ag_last_status() == AG_OK;
            ag_scope_end();
            break;
        }
        float lv = 0.0f;
        int64_t hits = 0;
        if (ag_dim(y, 0) > 0) { /* a rank's part of a short last batch can be empty */
            ag_tensor *logits = ag_module_forward(m, x);
            ok = ag_item(ag_cross_entropy(logits, y, AG_REDUCTION_SUM, 0.0f), &lv) == AG_OK &&
                 ag_count_correct(logits, y, &hits) == AG_OK;
        }
        correct += hits;
        lsum += lv;
        seen += ag_dim(y, 0);
        ag_scope_end();
    }
    ag_no_grad_end();
    ag_module_train(m, true);
    double sums[4] = {lsum, (double)correct, (double)seen, ok ? 0.0 : 1.0};
    if (cli_dist_on()) {
        if (ag_dist_sum(sums, 4) != AG_OK) return false;
        if (ok && sums[3] > 0.0) {
            fprintf(stderr, "anygrad: rank %d: evaluation failed on another rank\n", ag_dist_rank());
            return false;
        }
        lsum = sums[0];
        correct = (int64_t)sums[1];
        seen = (int64_t)sums[2];
    }
    *loss = seen ? lsum / (double)seen : NAN;
    *acc = seen ? (double)correct / (double)seen : NAN;
    return ok;
}

/* ---- checkpoints with the run's settings ------------------------------------ */

/* Input normalisation: one mean and deviation for all features (images) or
 * one per feature (tables). */
typedef struct norm {
    int64_t n;
    float *mean, *sd;
} norm;

static void norm_free(norm *z)
{
    free(z->mean);
    free(z->sd);
    memset(z, 0, sizeof *z);
}

static bool norm_alloc(norm *z, int64_t n)
{
    z->n = n;
    z->mean = malloc((size_t)n * sizeof *z->mean);
    z->sd = malloc((size_t)n * sizeof *z->sd);
    if (z->mean && z->sd) return true;
    norm_free(z);
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

static bool meta_float1(const ag_tensor_dict *d, const char *key, float *out)
{
    return parse_floats(ag_tensor_dict_meta(d, key), out, 1) == 1;
}

/* The statistics a training checkpoint recorded, for n features (1 or the
 * sample size): false when it has none that fit. */
static bool norm_from_meta(const ag_tensor_dict *d, int64_t features, norm *z)
{
    const char *m = ag_tensor_dict_meta(d, META "norm_mean"), *v = ag_tensor_dict_meta(d, META "norm_std");
    if (!m || !v) return false;
    int64_t n = strchr(m, ',') ? features : 1;
    if (!norm_alloc(z, n)) return false;
    if (parse_floats(m, z->mean, n) != n || parse_floats(v, z->sd, n) != n) {
        norm_free(z);
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
static ag_status save_checkpoint(const cli_train_opts *t, ag_module *m, ag_optim *opt, int64_t epoch,
                                 const norm *z, const dims *dm, int64_t total, int64_t cos_from,
                                 float cos_lr)
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
    add_meta_str(b, "norm_mean", floats_str(z->mean, z->n));
    add_meta_str(b, "norm_std", floats_str(z->sd, z->n));
    add_meta(b, "input", "%lldx%lldx%lld", (long long)dm->c, (long long)dm->h, (long long)dm->w);
    add_meta(b, "classes", "%lld", (long long)dm->classes);
    add_meta(b, "version", "%s", AG_VERSION);
    add_meta(b, "sched_total", "%lld", (long long)total);
    if (cos_from > 0) {
        add_meta(b, "cos_from", "%lld", (long long)cos_from);
        add_meta(b, "cos_lr", "%.9g", (double)cos_lr);
    }
    ag_status s = ag_checkpoint_save_meta(t->save, m, opt, epoch, b->n, b->kv);
    for (int i = 0; i < b->n; i++) free(b->vals[i]);
    return s;
}

/* The model a checkpoint holds: its own record, else the shape of "0.weight". */
static const model_spec *model_of(const ag_tensor_dict *d)
{
    const model_spec *ms = find_model(ag_tensor_dict_meta(d, META "model"));
    ag_tensor *w = ag_tensor_dict_get(d, "0.weight");
    for (int i = 0; !ms && w && i < NMODELS; i++)
        if (ag_ndim(w) == MODELS[i].first_weight_ndim) ms = &MODELS[i];
    return ms;
}

/* The model to rebuild: --model when given, else the checkpoint's layer
 * description (into *custom, pointing into d), else its named model. */
static const model_spec *spec_of(const ag_tensor_dict *d, const char *model_opt, model_spec *custom)
{
    if (model_opt) return find_model(model_opt);
    const char *layers = ag_tensor_dict_meta(d, META "layers");
    if (layers) {
        *custom = custom_model(layers);
        return custom;
    }
    return model_of(d);
}

/* The sample shape and classes a checkpoint's model was built for: its record,
 * else (weights from elsewhere) the classes from its last layer and the
 * sample shape left 0, for the data to decide. */
static dims dims_of(const ag_tensor_dict *d, const model_spec *ms)
{
    dims r = {0, 0, 0, 0};
    const char *in = ag_tensor_dict_meta(d, META "input"), *cl = ag_tensor_dict_meta(d, META "classes");
    long long c, h, w, k;
    char end;
    if (in && sscanf(in, "%lldx%lldx%lld%c", &c, &h, &w, &end) == 3 && c > 0 && h > 0 && w > 0)
        r.c = c, r.h = h, r.w = w;
    if (cl && sscanf(cl, "%lld%c", &k, &end) == 1 && k > 1) r.classes = k;
    ag_tensor *out = ms ? ag_tensor_dict_get(d, ms->out_weight) : NULL;
    if (!r.classes && out && ag_ndim(out) == 2) r.classes = ag_dim(out, 0);
    return r;
}


/* ---- the training run -------------------------------------------------------- */

typedef struct run {
    cli_train_opts o;
    const model_spec *ms;
    model_spec custom;      /* ms for a --layers model */
    dims d;                 /* the model's sample shape and classes */
    const cli_optim_spec *os;
    int sched;
    ag_module *m;
    ag_optim *opt;
    ag_loader *train, *val, *test;
    norm z;                 /* input normalisation */
    bool csv;               /* --data is a CSV file */
    int64_t start_epoch, steps_per_epoch;
    int64_t cos_from;       /* > 0: the cosine restarts here from cos_lr (a resume that */
    float cos_lr;           /* changed --epochs), instead of jumping to the new curve */
    cli_metrics log;
    double time_offset;
} run;

/* A cosine plan that ends at step total; from a step on (from > 0) it is
 * bent to start at from_lr there (a resume that moved the end). */
static float cosine_at(float base, int64_t from, float from_lr, int64_t total, int64_t step)
{
    if (from > 0 && step >= from) {
        int64_t left = total - from;
        return ag_lr_cosine(from_lr, step - from, left > 0 ? left : 1, 0.0f);
    }
    return ag_lr_cosine(base, step, total > 0 ? total : 1, 0.0f);
}

static int64_t sched_total(const run *r)
{
    return r->o.epochs * r->steps_per_epoch;
}

static float lr_at(const run *r, int64_t step)
{
    float base = (float)r->o.lr, lr = base;
    if (r->sched == CLI_SCHED_COSINE)
        lr = cosine_at(base, r->cos_from, r->cos_lr, sched_total(r), step);
    if (r->sched == CLI_SCHED_STEP) {
        int64_t every = r->o.step_size > 0 ? r->o.step_size : (r->o.epochs + 2) / 3;
        lr = ag_lr_step_decay(base, step, (every > 0 ? every : 1) * r->steps_per_epoch, (float)r->o.gamma);
    }
    return ag_lr_warmup(lr, step, r->o.warmup);
}

/* Dropout draws from the global generator: reseeding per epoch makes a resumed
 * run draw the same masks as one that was never interrupted. */
static uint64_t epoch_seed(uint64_t seed, int64_t epoch)
{
    return (seed ^ 0x5851f42d4c957f2dULL) + 0x9e3779b97f4a7c15ULL * (uint64_t)(epoch + 1);
}

/* Ctrl-C stops at the end of the step in progress (a second one kills at once):
 * the bar is cleared, the user told what was kept, the exit status 130. */
static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void catch_sigint(bool on)
{
    struct sigaction old, sa;
    /* an ignored SIGINT (nohup, a background job) stays ignored */
    if (sigaction(SIGINT, NULL, &old) != 0 || old.sa_handler == SIG_IGN) return;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? on_sigint : SIG_DFL;
    sa.sa_flags = on ? (int)SA_RESETHAND : 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

static int fail(const char *what)
{
    fprintf(stderr, "anygrad train: %s: %s\n", what, ag_last_error());
    return 1;
}

static bool write_outputs(run *r)
{
    char err[512];
    bool ok = true;
    if (r->o.log && !cli_metrics_write_csv(&r->log, r->o.log, err, sizeof err)) ok = false;
    char title[256];
    snprintf(title, sizeof title, "anygrad train %s%s: %s lr %g, batch %lld",
             r->o.layers ? "--layers " : "--model ", r->o.layers ? r->o.layers : r->o.model,
             r->o.optimizer, r->o.lr, (long long)r->o.batch);
    if (ok && r->o.plot && !cli_plot_svg(&r->log, r->o.plot, title, err, sizeof err)) ok = false;
    if (!ok) fprintf(stderr, "anygrad train: %s\n", err);
    return ok;
}

typedef struct epoch_stats {
    double loss, acc, seconds, val_loss, val_acc, test_loss, test_acc;
    int64_t samples;
} epoch_stats;

/* One pass over the training loader; rows go to the log every log_every steps. */
static bool train_epoch(run *r, int64_t e, epoch_stats *st)
{
    int np = 0;
    ag_tensor *const *params = ag_module_parameters(r->m, &np);
    char label[48];
    snprintf(label, sizeof label, "epoch %lld/%lld", (long long)e + 1, (long long)r->o.epochs);
    cli_progress bar;
    cli_progress_begin(&bar, label, r->steps_per_epoch);
    ag_manual_seed(epoch_seed((uint64_t)r->o.seed, e));
    if (ag_loader_start_epoch(r->train, e) != AG_OK) return false;
    double t0 = cli_now(), lsum = 0.0, isum = 0.0;
    int64_t seen = 0, correct = 0, iseen = 0, icorrect = 0, done = 0;
    for (;;) {
        ag_tensor *x, *y;
        int64_t step = ag_optim_steps(r->opt);
        float lr = lr_at(r, step), lv = 0.0f, norm;
        ag_scope_begin();
        if (!ag_loader_next(r->train, &x, &y)) {
            ag_scope_end();
            if (ag_last_status() != AG_OK) {
                cli_progress_end(&bar);
                return false;
            }
            break;
        }
        int64_t b = ag_dim(y, 0), hits = 0, global = b;
        bool ok = ag_optim_zero_grad(r->opt) == AG_OK;
        if (ok && b > 0) { /* a rank's part of a short last batch can be empty */
            ag_tensor *logits = ag_module_forward(r->m, x);
            ag_tensor *loss = ag_cross_entropy(logits, y, AG_REDUCTION_MEAN, 0.0f);
            ok = loss && ag_backward(loss, NULL) == AG_OK && ag_item(loss, &lv) == AG_OK &&
                 ag_count_correct(logits, y, &hits) == AG_OK;
        }
        /* several ranks: the global batch's mean gradient, loss and hits */
        if (cli_dist_on()) {
            int64_t local = b;
            ok = ok && ag_loader_last_batch(r->train, &local, &global) == AG_OK &&
                 ag_dist_average_gradients(np, params, (double)local / (double)global) == AG_OK;
            double sums[4] = {(double)lv * (double)b, (double)hits, (double)b, interrupted ? 1.0 : 0.0};
            if (ok && ag_dist_sum(sums, 4) == AG_OK) {
                lv = sums[2] > 0.0 ? (float)(sums[0] / sums[2]) : 0.0f;
                hits = (int64_t)sums[1];
                b = (int64_t)sums[2];
                if (sums[3] > 0.0) interrupted = 1; /* all ranks stop after the same step */
            } else {
                ok = false;
            }
        }
        ok = ok && (r->o.clip <= 0.0 || ag_clip_grad_norm(np, params, (float)r->o.clip, &norm) == AG_OK) &&
             ag_optim_set_lr(r->opt, lr) == AG_OK && ag_optim_step(r->opt) == AG_OK;
        (void)global;
        ag_scope_end();
        if (!ok || interrupted || !isfinite(lv)) cli_progress_end(&bar); /* a message follows */
        if (!ok || interrupted) return false;
        if (!isfinite(lv)) {
            ag_clear_error();
            fprintf(stderr, "anygrad train: the loss became %g at step %lld; try a smaller --lr "
                            "or --clip\n", (double)lv, (long long)step + 1);
            return false;
        }
        isum += (double)lv * (double)b;
        iseen += b;
        icorrect += hits;
        correct += hits;
        done++;
        cli_progress_update(&bar, done, seen + iseen, (lsum + isum) / (double)(seen + iseen),
                            (double)correct / (double)(seen + iseen));
        /* The last row of an epoch takes the leftover steps, so no row averages
         * over a stub of one or two batches. */
        bool last = done == r->steps_per_epoch, every = r->o.log_every > 0;
        if (last || (every && done % r->o.log_every == 0 &&
                     done + r->o.log_every <= r->steps_per_epoch)) {
            cli_metric_row row = {
                .epoch = (double)e + (double)done / (double)r->steps_per_epoch,
                .step = step + 1, .loss = isum / (double)iseen,
                .train_acc = (double)icorrect / (double)iseen, .val_acc = NAN, .test_acc = NAN,
                .val_loss = NAN, .test_loss = NAN,
                .lr = lr, .seconds = r->time_offset + cli_now() - t0};
            if (!cli_metrics_push(&r->log, &row)) {
                cli_progress_end(&bar);
                ag_clear_error();
                fprintf(stderr, "anygrad train: out of memory for the metrics log\n");
                return false;
            }
            lsum += isum;
            seen += iseen;
            isum = 0.0;
            iseen = icorrect = 0;
        }
    }
    cli_progress_end(&bar);
    lsum += isum;
    seen += iseen;
    st->seconds = cli_now() - t0;
    r->time_offset += st->seconds;
    st->samples = seen;
    st->loss = seen ? lsum / (double)seen : NAN;
    st->acc = seen ? (double)correct / (double)seen : NAN;
    return true;
}

static int train_loop(run *r)
{
    int64_t nparams = ag_module_num_parameters(r->m);
    char desc[200];
    describe(r->ms, &r->d, desc, sizeof desc);
    printf("anygrad train: %s (%s), %lld parameters, device %s\n", r->ms->name, desc,
           (long long)nparams, ag_device_name(ag_device_default()));
    char optdesc[160];
    int at = snprintf(optdesc, sizeof optdesc, "%s lr %g", r->os->name, r->o.lr);
    if (r->o.momentum > 0.0) at += snprintf(optdesc + at, sizeof optdesc - (size_t)at, " momentum %g", r->o.momentum);
    if (r->o.weight_decay > 0.0) at += snprintf(optdesc + at, sizeof optdesc - (size_t)at, " weight decay %g", r->o.weight_decay);
    if (r->sched) at += snprintf(optdesc + at, sizeof optdesc - (size_t)at, ", %s schedule", CLI_SCHEDULES[r->sched]);
    if (r->o.warmup > 0) at += snprintf(optdesc + at, sizeof optdesc - (size_t)at, ", warm-up %lld steps", (long long)r->o.warmup);
    if (r->o.clip > 0.0) snprintf(optdesc + at, sizeof optdesc - (size_t)at, ", clip %g", r->o.clip);
    printf("  %lld training, %lld validation, %lld test %s; batch %lld; %s\n",
           (long long)ag_loader_size(r->train), (long long)(r->val ? ag_loader_size(r->val) : 0),
           (long long)(r->test ? ag_loader_size(r->test) : 0), r->csv ? "rows" : "images",
           (long long)r->o.batch, optdesc);
    fflush(stdout);
    epoch_stats st = {0};
    double best_val = -1.0, train_s = 0.0;
    int64_t best_epoch = 0, samples = 0;
    bool wrote = false; /* the log and plot; only a trained epoch writes them */
    for (int64_t e = r->start_epoch; e < r->o.epochs; e++) {
        bool ok = train_epoch(r, e, &st);
        if (!ok && interrupted) {
            printf("interrupted in epoch %lld: its steps are not kept", (long long)e + 1);
            if (r->o.save && e > r->start_epoch)
                printf("; %s holds epoch %lld", r->o.save, (long long)e);
            else if (r->o.resume && r->o.save && !strcmp(r->o.save, r->o.resume))
                printf("; %s is as it was", r->o.save);
            printf("\n");
            fflush(stdout);
            return 130;
        }
        if (!ok) return ag_last_status() == AG_OK ? 1 : fail("training");
        train_s += st.seconds;
        samples += st.samples;
        st.val_loss = st.val_acc = NAN;
        /* batch norm's running statistics: the mean of the ranks' (each saw its parts) */
        if (cli_dist_on() && ag_dist_average_buffers(r->m) != AG_OK) return fail("averaging buffers");
        if (r->val && !evaluate(r->m, r->val, &st.val_loss, &st.val_acc)) return fail("validation");
        bool last = e + 1 == r->o.epochs,
             test = r->test && (last || (r->o.eval_every > 0 && (e + 1) % r->o.eval_every == 0));
        st.test_loss = st.test_acc = NAN;
        if (test && !evaluate(r->m, r->test, &st.test_loss, &st.test_acc)) return fail("test");
        if (r->log.n == 0) return 1; /* train_epoch logs every epoch's end */
        cli_metric_row *row = &r->log.rows[r->log.n - 1];
        row->val_acc = st.val_acc;
        row->val_loss = st.val_loss;
        row->test_acc = st.test_acc;
        row->test_loss = st.test_loss;
        if (r->val && st.val_acc > best_val) best_val = st.val_acc, best_epoch = e + 1;
        printf("epoch %lld/%lld  loss %.4f  acc %.4f", (long long)e + 1, (long long)r->o.epochs,
               st.loss, st.acc);
        if (r->val) printf("  val loss %.4f  val acc %.4f", st.val_loss, st.val_acc);
        if (test) printf("  test acc %.4f", st.test_acc);
        printf("  lr %.3g  %.2f s  %.0f samples/s\n", row->lr, st.seconds,
               st.seconds > 0 ? (double)st.samples / st.seconds : 0.0);
        fflush(stdout);
        if (cli_dist_leader() && r->o.save && save_checkpoint(&r->o, r->m, r->opt, e + 1, &r->z, &r->d, sched_total(r),
                                       r->cos_from, r->cos_lr) != AG_OK)
            return fail("saving the checkpoint");
        if (cli_dist_leader() && !write_outputs(r)) return 1;
        wrote = true;
    }
    if (r->start_epoch >= r->o.epochs) {
        if (r->o.resume)
            printf("the checkpoint is at epoch %lld already (--epochs %lld): nothing to train\n",
                   (long long)r->start_epoch, (long long)r->o.epochs);
        else
            printf("--epochs 0: nothing to train\n");
        if (r->test && !evaluate(r->m, r->test, &st.test_loss, &st.test_acc)) return fail("test");
    }
    printf("summary: %s, %lld epoch%s", r->ms->name, (long long)r->o.epochs, r->o.epochs == 1 ? "" : "s");
    if (samples)
        printf(" (%lld in this run: %.1f s training, %.0f samples/s)",
               (long long)(r->o.epochs - r->start_epoch), train_s,
               train_s > 0 ? (double)samples / train_s : 0.0);
    if (r->test) printf("; test loss %.4f, test accuracy %.4f", st.test_loss, st.test_acc);
    if (best_val >= 0.0) printf("; best validation accuracy %.4f (epoch %lld)", best_val, (long long)best_epoch);
    printf("\n");
    if (r->o.save && wrote) printf("checkpoint: %s\n", r->o.save);
    if (wrote && r->o.log) printf("log: %s\n", r->o.log);
    if (wrote && r->o.plot) printf("plot: %s\n", r->o.plot);
    if (!wrote && (r->o.log || r->o.plot))
        printf("nothing trained: --log and --plot files left as they were\n");
    return 0;
}

/* ---- setting up --------------------------------------------------------------- */

static int setup_data(run *r, const ag_tensor_dict *ck)
{
    ag_tensor *x, *y;
    r->csv = is_csv(r->o.data);
    if (r->o.test_data && !r->csv) {
        fprintf(stderr, "anygrad train: --test-data goes with --data FILE.csv (an IDX directory "
                        "holds its own t10k files)\n");
        return 2;
    }
    /* the model's sample shape and classes: a resumed checkpoint's, else the data's */
    if (ck) r->d = dims_of(ck, r->ms);
    bool ok = r->csv ? load_csv(r->o.data, r->o.label_column, r->o.limit, r->ms, &r->d, &x, &y)
                     : load_split(r->o.data, "train", r->o.limit, r->ms, &r->d, &x, &y);
    if (!ok) return 1;
    /* batch norm cannot train on a batch of one sample: such a last batch is
     * left out of every epoch (as its shuffle rotates, not always the same) */
    int64_t nall = ag_dim(x, 0), ntrain = nall - (int64_t)llround(r->o.val_frac * (double)nall);
    bool drop = strstr(r->ms->layers, "batchnorm") && ntrain > 1 && ntrain % r->o.batch == 1;
    if (drop)
        printf("note: %lld training samples leave a last batch of one, which batch norm cannot "
               "train on: it is left out of each epoch\n", (long long)ntrain);
    ag_loader *all = make_loader_drop(x, y, r->o.batch, true, (uint64_t)r->o.seed, drop);
    if (!all) return fail("data loader");
    if (r->o.val_frac > 0.0) {
        ag_status s = ag_loader_split(all, r->o.val_frac, &r->train, &r->val);
        ag_loader_free(all);
        if (s != AG_OK) return fail("validation split");
        if (ag_loader_size(r->val) == 0) { /* a fraction that rounds to no image */
            ag_loader_free(r->val);
            r->val = NULL;
        }
    } else {
        r->train = all;
    }
    if (ag_loader_size(r->train) == 0) {
        fprintf(stderr, "anygrad train: no training samples left (--limit %lld, --val-frac %g)\n",
                (long long)r->o.limit, r->o.val_frac);
        return 2;
    }
    /* the training batch size: evaluation then reuses the training step's buffers */
    if (r->csv ? r->o.test_data != NULL : true) {
        ok = r->csv ? load_csv(r->o.test_data, r->o.label_column, 0, r->ms, &r->d, &x, &y)
                    : load_split(r->o.data, "t10k", 0, r->ms, &r->d, &x, &y);
        if (!ok) return 1;
        r->test = make_loader(x, y, r->o.batch, false, 0);
        if (!r->test) return fail("data loader");
    }
    /* A resumed run keeps the statistics it started with. Tables are
     * normalised per feature (columns differ in scale), images over all. */
    int64_t features = r->d.c * r->d.h * r->d.w, n = r->csv ? features : 1;
    if (!(ck && norm_from_meta(ck, features, &r->z))) {
        if (!norm_alloc(&r->z, n)) return fail("data statistics");
        if (ag_loader_stats(r->train, r->csv, r->z.mean, r->z.sd) != AG_OK)
            return fail("data statistics");
        for (int64_t j = 0; j < n; j++) /* a constant feature stays as it is, centred */
            if (!(r->z.sd[j] > 0.0f)) r->z.sd[j] = 1.0f;
    }
    ag_loader *ls[3] = {r->train, r->val, r->test};
    for (int i = 0; i < 3; i++)
        if (ls[i] && ag_loader_set_normalize(ls[i], r->z.n, r->z.mean, r->z.sd) != AG_OK)
            return fail("normalisation");
    /* the same order on every rank; each takes its part of every batch */
    for (int i = 0; i < 3 && cli_dist_on(); i++)
        if (ls[i] && ag_loader_shard(ls[i], ag_dist_rank(), ag_dist_size()) != AG_OK)
            return fail("sharding the data");
    r->steps_per_epoch = ag_loader_num_batches(r->train);
    if (r->o.log_every < 0) r->o.log_every = r->steps_per_epoch >= 10 ? r->steps_per_epoch / 10 : 1;
    return 0;
}

/* An output that could not be written fails now, not after an epoch of
 * training: its directory must exist and be writable, and the path must not
 * be a directory. */
static bool output_ok(const char *flag, const char *path)
{
    if (!path) return true;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "anygrad train: --%s %s: is a directory\n", flag, path);
        return false;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "anygrad train: --%s %s: cannot write into %s: %s\n", flag, path, dir,
                strerror(errno));
        return false;
    }
    return true;
}

static int setup_device(run *r)
{
    ag_device *dev = r->o.device ? ag_device_by_name(r->o.device) : ag_device_default();
    if (!r->o.device && !getenv("AG_DEVICE")) dev = cli_dist_device(dev);
    if (!dev) {
        fprintf(stderr, "anygrad train: --device %s: %s\n", r->o.device ? r->o.device : "(default)",
                ag_last_error());
        return 2;
    }
    return ag_set_default_device(dev) != AG_OK ? fail("device") : 0;
}

static int setup_model(run *r, const ag_tensor_dict *ck)
{
    ag_manual_seed((uint64_t)r->o.seed);
    r->m = build_model(r->ms, &r->d);
    if (!r->m) return 2; /* build_model said why */
    int np = 0;
    ag_tensor *const *params = ag_module_parameters(r->m, &np);
    ag_optim_config c = ag_optim_defaults(r->os->kind, (float)r->o.lr);
    c.momentum = (float)r->o.momentum;
    if (r->o.weight_decay >= 0.0) c.weight_decay = (float)r->o.weight_decay;
    r->opt = params ? ag_optim_new(&c, np, params) : NULL;
    if (!r->opt) return fail("optimizer");
    if (!ck) return cli_dist_on() && ag_dist_broadcast_module(r->m, r->opt, 0) != AG_OK ? fail("broadcast") : 0;
    /* A training checkpoint restores the optimizer too; a weights-only file
     * (ag_module_save, the examples' --save) starts a fresh optimizer. */
    ag_status s;
    if (ag_tensor_dict_meta(ck, "optimizer.kind")) {
        s = ag_checkpoint_load(r->o.resume, r->m, r->opt, &r->start_epoch);
    } else {
        s = ag_module_load(r->m, r->o.resume);
        printf("note: %s holds weights only; starting a new optimizer\n", r->o.resume);
    }
    if (s != AG_OK) return fail("resuming");
    if (cli_dist_on() && ag_dist_broadcast_module(r->m, r->opt, 0) != AG_OK) return fail("broadcast");
    if (r->start_epoch < 0) r->start_epoch = 0;
    /* The cosine plan in force when the checkpoint was written: where it ends
     * and where an earlier resume bent it (without these a second resume
     * would jump back to the plain curve). */
    const char *st = ag_tensor_dict_meta(ck, META "sched_total"), *cf = ag_tensor_dict_meta(ck, META "cos_from");
    const char *e0 = ag_tensor_dict_meta(ck, META "epochs");
    long long old_epochs = e0 ? atoll(e0) : 0;
    int64_t old_total = st ? atoll(st) : old_epochs * r->steps_per_epoch;
    float old_lr = 0.0f;
    if (cf && meta_float1(ck, META "cos_lr", &old_lr)) {
        r->cos_from = atoll(cf);
        r->cos_lr = old_lr;
    }
    int64_t done = ag_optim_steps(r->opt), total = sched_total(r);
    if (r->sched == CLI_SCHED_COSINE && old_total > 0 && old_total != total && done > 0) {
        /* Another end: an unfinished cosine bends from the rate it reached
         * down to 0 at the new end (no jump); a finished one (rate 0) starts
         * again as planned for the new total, which the note makes plain. */
        float now = cosine_at((float)r->o.lr, r->cos_from, r->cos_lr, old_total, done);
        if (done < old_total) {
            r->cos_from = done;
            r->cos_lr = now;
            printf("note: --epochs %lld (was %lld): the cosine schedule continues from lr %.3g "
                   "down to 0 at epoch %lld\n", (long long)r->o.epochs, old_epochs, (double)now,
                   (long long)r->o.epochs);
        } else {
            r->cos_from = 0;
            printf("note: --epochs %lld (was %lld): the cosine schedule had ended; it starts "
                   "again as planned for %lld epochs (lr %.3g now)\n", (long long)r->o.epochs,
                   old_epochs, (long long)r->o.epochs, (double)lr_at(r, done));
        }
    }
    return 0;
}

/* Rows of an earlier log up to the resumed epoch, so the log and plot cover the
 * whole run. */
static void resume_log(run *r)
{
    cli_metrics old;
    char err[512];
    if (!r->o.log || !r->o.resume || !cli_metrics_read_csv(r->o.log, &old, err, sizeof err)) return;
    for (int i = 0; i < old.n; i++)
        if (old.rows[i].epoch <= (double)r->start_epoch + 1e-9) {
            cli_metrics_push(&r->log, &old.rows[i]);
            if (isfinite(old.rows[i].seconds)) r->time_offset = old.rows[i].seconds;
        }
    cli_metrics_free(&old);
}

int cli_train(const cli_train_opts *o, const bool given[CLI_NTRAIN_OPTS])
{
    int drc = cli_dist_begin("train");
    if (drc) return drc;
    run r;
    memset(&r, 0, sizeof r);
    r.o = *o;
    bool set[CLI_NTRAIN_OPTS];
    memcpy(set, given, sizeof set);
    ag_tensor_dict *ck = NULL;
    if (r.o.resume && !(ck = ag_safetensors_load(r.o.resume))) {
        fprintf(stderr, "anygrad train: --resume: %s\n", ag_last_error());
        return 1;
    }
    if (ck && !set[0] && !ag_tensor_dict_meta(ck, META "model")) {
        const model_spec *ms = model_of(ck); /* a weights-only file: guess from its shapes */
        if (ms) r.o.model = ms->name, set[0] = true;
    }
    char err[512];
    int rc = cli_train_resolve(&r.o, set, ck, err, sizeof err);
    if (rc) {
        fprintf(stderr, "anygrad train: %s\n", err);
    } else if (given[0] && r.o.layers) { /* given[0]: --model on the command line */
        fprintf(stderr, "anygrad train: --model %s and %s name two models; give one\n", r.o.model,
                ck && !given[2] ? "the checkpoint's --layers" : "--layers");
        rc = 2;
    } else {
        r.custom = custom_model(r.o.layers);
        r.ms = r.o.layers ? &r.custom : find_model(r.o.model);
        r.os = cli_find_optim(r.o.optimizer);
        r.sched = cli_find_schedule(r.o.schedule);
        rc = r.ms ? setup_device(&r) : 2; /* resolve knows the same names */
    }
    if (!rc && r.o.resume && !r.o.save) {
        r.o.save = r.o.resume; /* a resumed run keeps its epochs: back into its checkpoint */
        printf("saving to %s (--save names another file)\n", r.o.save);
    }
    const char *outs[3] = {r.o.save, r.o.log, r.o.plot}, *flags[3] = {"save", "log", "plot"};
    for (int i = 0; !rc && i < 3; i++)
        for (int j = i + 1; !rc && j < 3; j++)
            if (outs[i] && outs[j] && !strcmp(outs[i], outs[j])) {
                fprintf(stderr, "anygrad train: --%s and --%s are the same file, %s\n", flags[i],
                        flags[j], outs[i]);
                rc = 2;
            }
    if (!rc && !(output_ok("save", r.o.save) && output_ok("log", r.o.log) &&
                 output_ok("plot", r.o.plot)))
        rc = 1;
    if (!rc) rc = setup_data(&r, ck);
    if (!rc) rc = setup_model(&r, ck); /* the data decide its input and output sizes */
    if (!rc) {
        resume_log(&r);
        catch_sigint(true);
        rc = train_loop(&r);
        catch_sigint(false);
    }
    ag_tensor_dict_free(ck);
    ag_loader_free(r.train);
    ag_loader_free(r.val);
    ag_loader_free(r.test);
    norm_free(&r.z);
    ag_optim_free(r.opt);
    ag_module_free(r.m);
    cli_metrics_free(&r.log);
    return cli_dist_end(rc);
}

/* ---- anygrad eval ---------------------------------------------------------------- */

int cli_eval(const cli_eval_opts *o)
{
    const char *file = o->file, *model = o->model, *data = o->data, *device = o->device;
    ag_device *dev = device ? ag_device_by_name(device) : ag_device_default();
    if (!dev) {
        fprintf(stderr, "anygrad eval: --device %s: %s\n", device ? device : "(default)", ag_last_error());
        return 2;
    }
    ag_set_default_device(dev);
    ag_tensor_dict *d = ag_safetensors_load(file);
    if (!d) {
        fprintf(stderr, "anygrad eval: %s\n", ag_last_error());
        return 1;
    }
    model_spec custom;
    const model_spec *ms = spec_of(d, model, &custom);
    char epoch[32] = "";
    if (ag_tensor_dict_meta(d, "epoch"))
        snprintf(epoch, sizeof epoch, ", epoch %s", ag_tensor_dict_meta(d, "epoch"));
    dims dm = dims_of(d, ms);
    const char *lcs = ag_tensor_dict_meta(d, META "label-column");
    int64_t label_col = lcs ? atoll(lcs) : -1;
    int rc = 1;
    ag_module *m = NULL;
    ag_loader *test = NULL;
    ag_tensor *x, *y;
    norm z = {0};
    bool csv = is_csv(data);
    if (!ms) {
        fprintf(stderr, "anygrad eval: %s: cannot tell the model from the file; pass --model\n", file);
        ag_tensor_dict_free(d);
        return 2;
    }
    /* the test data first: a checkpoint without its sample shape takes theirs */
    if (!(csv ? load_csv(data, label_col, 0, ms, &dm, &x, &y)
              : load_split(data, "t10k", 0, ms, &dm, &x, &y)))
        goto out;
    test = make_loader(x, y, EVAL_BATCH, false, 0);
    m = test ? build_model(ms, &dm) : NULL;
    if (!m) goto out; /* said why */
    if (ag_module_load(m, file) != AG_OK) {
        fprintf(stderr, "anygrad eval: loading %s as %s: %s\n", file, ms->name, ag_last_error());
        goto out;
    }
    if (!norm_from_meta(d, dm.c * dm.h * dm.w, &z)) {
        /* Weights from elsewhere: normalise as training did, with the training
         * images' statistics (a CSV file is evaluated alone: it has none). */
        ag_loader *tr = !csv && norm_alloc(&z, 1) && load_split(data, "train", 0, ms, &dm, &x, &y)
                            ? make_loader(x, y, EVAL_BATCH, false, 0) : NULL;
        bool ok = tr && ag_loader_stats(tr, false, z.mean, z.sd) == AG_OK;
        ag_loader_free(tr);
        if (!ok) {
            fprintf(stderr, "anygrad eval: %s\n", csv ? "the checkpoint holds no input statistics "
                                                       "(norm_mean, norm_std) for CSV data"
                                                     : ag_last_error());
            goto out;
        }
    }
    double loss, acc;
    if (!test || ag_loader_set_normalize(test, z.n, z.mean, z.sd) != AG_OK ||
        !evaluate(m, test, &loss, &acc)) {
        fprintf(stderr, "anygrad eval: %s\n", ag_last_error());
        goto out;
    }
    printf("%s: %s, %lld parameters%s\n", file, ms->name, (long long)ag_module_num_parameters(m),
           epoch);
    printf("test loss %.4f\ntest accuracy %.4f (%lld %s)\n", loss, acc,
           (long long)ag_loader_size(test), csv ? "rows" : "images");
    rc = 0;
out:
    ag_tensor_dict_free(d);
    norm_free(&z);
    ag_loader_free(test);
    ag_module_free(m);
    return rc;
}

/* ---- anygrad predict ------------------------------------------------------------- */

/* The samples of a CSV file with the model's feature count: every column, or
 * every column but label_col when there is one more. */
static ag_tensor *csv_inputs(const char *path, int64_t label_col, int64_t features)
{
    ag_tensor *t = csv_table(path);
    if (!t) {
        fprintf(stderr, "anygrad predict: %s\n", ag_last_error());
        return NULL;
    }
    int64_t cols = ag_dim(t, 1);
    if (cols == features) return t;
    int64_t lc = label_col < 0 ? cols + label_col : label_col;
    if (cols != features + 1 || lc < 0 || lc >= cols) {
        fprintf(stderr, "anygrad predict: %s: %lld columns; the model takes %lld features (and the "
                        "label column %lld may be there too)\n", path, (long long)cols,
                (long long)features, (long long)label_col);
        return NULL;
    }
    return without_column(t, lc);
}

/* IDX images (a file, or a directory's t10k images) shaped for the model. */
static ag_tensor *idx_inputs(const char *path, const model_spec *ms, const dims *d)
{
    char file[4096];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) idx_path(path, "t10k", "images-idx3", file, sizeof file);
    else snprintf(file, sizeof file, "%s", path);
    ag_tensor *img = ag_idx_load_raw(file);
    if (!img) {
        fprintf(stderr, "anygrad predict: %s\n", ag_last_error());
        return NULL;
    }
    int64_t n = ag_dim(img, 0), per = n ? ag_numel(img) / n : 0, want = d->c * d->h * d->w;
    if (per != want) {
        fprintf(stderr, "anygrad predict: %s: samples of %lld values; the model takes "
                        "%lldx%lldx%lld\n", file, (long long)per, (long long)d->c, (long long)d->h,
                (long long)d->w);
        return NULL;
    }
    int64_t xs[4] = {n, d->c, d->h, d->w}, flat[2] = {n, want};
    return takes_images(ms) ? ag_reshape(img, 4, xs) : ag_reshape(img, 2, flat);
}

int cli_predict(const cli_eval_opts *o)
{
    ag_device *dev = o->device ? ag_device_by_name(o->device) : ag_device_default();
    if (!dev || ag_set_default_device(dev) != AG_OK) {
        fprintf(stderr, "anygrad predict: --device %s: %s\n", o->device ? o->device : "(default)",
                ag_last_error());
        return 2;
    }
    ag_tensor_dict *d = ag_safetensors_load(o->file);
    if (!d) {
        fprintf(stderr, "anygrad predict: %s\n", ag_last_error());
        return 1;
    }
    model_spec custom;
    const model_spec *ms = spec_of(d, o->model, &custom);
    dims dm = ms ? dims_of(d, ms) : (dims){0, 0, 0, 0};
    const char *lcs = ag_tensor_dict_meta(d, META "label-column");
    norm z = {0};
    int rc = 1;
    ag_module *m = NULL;
    ag_loader *l = NULL;
    char err[512] = "";
    if (!ms || !dm.w || !dm.classes || !norm_from_meta(d, dm.c * dm.h * dm.w, &z)) {
        fprintf(stderr, "anygrad predict: %s: not a checkpoint of anygrad train (it records the "
                        "model, its input shape, classes and input statistics)\n", o->file);
        rc = 2;
        goto out;
    }
    ag_scope_begin();
    ag_tensor *x = is_csv(o->data) ? csv_inputs(o->data, lcs ? atoll(lcs) : -1, dm.c * dm.h * dm.w)
                                   : idx_inputs(o->data, ms, &dm);
    if (x && is_csv(o->data) && takes_images(ms)) /* rows of C*H*W pixels */
        x = ag_reshape(x, 4, (const int64_t[]){ag_dim(x, 0), dm.c, dm.h, dm.w});
    ag_loader_config c = {.batch_size = EVAL_BATCH};
    l = x ? ag_loader_new(x, NULL, &c) : NULL;
    ag_scope_end();
    if (!x) goto out; /* said why */
    m = l ? build_model(ms, &dm) : NULL;
    if (l && !m) goto out; /* said why */
    if (!l || ag_module_load(m, o->file) != AG_OK ||
        ag_loader_set_normalize(l, z.n, z.mean, z.sd) != AG_OK) {
        fprintf(stderr, "anygrad predict: %s\n", ag_last_error());
        goto out;
    }
    cli_outfile out = {.f = stdout};
    if (o->out && !cli_out_open(&out, o->out, err, sizeof err)) {
        fprintf(stderr, "anygrad predict: %s\n", err);
        goto out;
    }
    float *p = malloc((size_t)(EVAL_BATCH * dm.classes) * sizeof *p);
    bool ok = p != NULL;
    int64_t index = 0;
    ag_module_train(m, false);
    ag_no_grad_begin();
    while (ok) {
        ag_tensor *bx;
        ag_scope_begin();
        if (!ag_loader_next(l, &bx, NULL)) {
            ok = ag_last_status() == AG_OK;
            ag_scope_end();
            break;
        }
        int64_t b = ag_dim(bx, 0);
        ag_tensor *prob = ag_softmax(ag_module_forward(m, bx), 1);
        ok = prob && ag_to_host(prob, p, (size_t)(b * dm.classes) * sizeof *p) == AG_OK;
        if (ok && index == 0) { /* the header once the model has run */
            fprintf(out.f, "index,class");
            for (int64_t k = 0; k < dm.classes; k++) fprintf(out.f, ",p%lld", (long long)k);
            fprintf(out.f, "\n");
        }
        for (int64_t i = 0; ok && i < b; i++, index++) {
            const float *row = p + i * dm.classes;
            int64_t best = 0;
            for (int64_t k = 1; k < dm.classes; k++)
                if (row[k] > row[best]) best = k;
            fprintf(out.f, "%lld,%lld", (long long)index, (long long)best);
            for (int64_t k = 0; k < dm.classes; k++) fprintf(out.f, ",%.6g", (double)row[k]);
            fprintf(out.f, "\n");
        }
        ag_scope_end();
    }
    ag_no_grad_end();
    free(p);
    if (!ok) fprintf(stderr, "anygrad predict: %s\n", p ? ag_last_error() : "out of memory");
    if (o->out) {
        if (!ok) fclose(out.f), remove(out.tmp);
        else if (!cli_out_close(&out, err, sizeof err)) ok = false, fprintf(stderr, "anygrad predict: %s\n", err);
    } else if (fflush(stdout) != 0) {
        ok = false;
    }
    if (ok && o->out) fprintf(stderr, "%lld predictions: %s\n", (long long)index, o->out);
    rc = ok ? 0 : 1;
out:
    ag_loader_free(l);
    ag_module_free(m);
    norm_free(&z);
    ag_tensor_dict_free(d);
    return rc;
}
