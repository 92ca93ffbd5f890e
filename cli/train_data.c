/* The data of anygrad train, eval and predict: IDX directories and CSV files
 * checked and shaped for a model, loaders, and evaluation over a loader. */
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

/* ---- data ------------------------------------------------------------------ */


/* DIR/SPLIT-KIND-idxN-ubyte.gz, or the same name without .gz (plain IDX). */
void tr_idx_path(const char *dir, const char *split, const char *kind, char *buf, size_t size)
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
bool tr_load_split(const char *dir, const char *split, int64_t limit, const model_spec *ms,
                       dims *d, ag_tensor **x, ag_tensor **y)
{
    char pi[4096], pl[4096];
    tr_idx_path(dir, split, "images-idx3", pi, sizeof pi);
    tr_idx_path(dir, split, "labels-idx1", pl, sizeof pl);
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
    else if (tr_takes_images(ms) && (nd < 3 || got.h < 4 || got.w < 4)) bad = "image size";
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
    *x = ag_retain(tr_takes_images(ms) ? ag_reshape(ag_slice(img, 0, 0, n, 1), 4, xs)
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

bool tr_is_csv(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 4 && !strcasecmp(path + n - 4, ".csv");
}

/* A CSV file as a table; a first line that is not numbers is a header. */
ag_tensor *tr_csv_table(const char *path)
{
    ag_tensor *t = ag_csv_load(path, false);
    if (!t && strstr(ag_last_error(), " line 1, field") && strstr(ag_last_error(), "not a number"))
        t = ag_csv_load(path, true);
    return t;
}

/* Every column of a [rows, cols] table but column lc. */
ag_tensor *tr_without_column(ag_tensor *t, int64_t lc)
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
bool tr_load_csv(const char *path, int64_t label_col, int64_t limit, const model_spec *ms,
                     dims *d, ag_tensor **x, ag_tensor **y)
{
    *x = *y = NULL;
    if (tr_takes_images(ms)) {
        fprintf(stderr, "%s: CSV rows are feature vectors; the model (%s) needs images\n", path,
                ms->layers);
        return false;
    }
    ag_scope_begin();
    ag_tensor *t = tr_csv_table(path);
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
    ag_tensor *feat = tr_without_column(t, lc);
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

ag_loader *tr_make_loader_drop(ag_tensor *x, ag_tensor *y, int64_t batch, bool shuffle,
                                   uint64_t seed, bool drop_last)
{
    ag_loader_config c = {.batch_size = batch, .shuffle = shuffle, .seed = seed, .drop_last = drop_last};
    ag_loader *l = x && y ? ag_loader_new(x, y, &c) : NULL;
    ag_release(x);
    ag_release(y);
    return l;
}

ag_loader *tr_make_loader(ag_tensor *x, ag_tensor *y, int64_t batch, bool shuffle, uint64_t seed)
{
    return tr_make_loader_drop(x, y, batch, shuffle, seed, false);
}

/* Mean cross-entropy and accuracy over a loader, in eval mode. */
bool tr_evaluate(ag_module *m, ag_loader *l, double *loss, double *acc)
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

/* The samples of a CSV file with the model's feature count: every column, or
 * every column but label_col when there is one more. */
ag_tensor *tr_csv_inputs(const char *path, int64_t label_col, int64_t features)
{
    ag_tensor *t = tr_csv_table(path);
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
    return tr_without_column(t, lc);
}

/* IDX images (a file, or a directory's t10k images) shaped for the model. */
ag_tensor *tr_idx_inputs(const char *path, const model_spec *ms, const dims *d)
{
    char file[4096];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) tr_idx_path(path, "t10k", "images-idx3", file, sizeof file);
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
    return tr_takes_images(ms) ? ag_reshape(img, 4, xs) : ag_reshape(img, 2, flat);
}
