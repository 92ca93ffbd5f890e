/* Shared by fashion_mlp.c and fashion_cnn.c: command line, Fashion-MNIST
 * loading, the training loop and evaluation. Header-only so each example stays
 * one self-contained program. */
#ifndef FASHION_COMMON_H
#define FASHION_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anygrad.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

typedef struct fashion_opts {
    const char *prog, *data_dir, *save;
    long epochs;
    int64_t batch, limit, test_limit;
    float lr, min_acc;
    uint64_t seed;
} fashion_opts;

static void fashion_usage(FILE *f, const fashion_opts *o, const char *what)
{
    fprintf(f,
            "usage: %s [--epochs N] [--batch B] [--lr X] [--limit N] [--test-limit N]\n"
            "          [--seed S] [--min-acc A] [--data DIR] [--save FILE]\n"
            "Trains %s on Fashion-MNIST with Adam and prints, per epoch, the mean\n"
            "training loss, training and test accuracy and samples/s.\n"
            "  --epochs N      passes over the training set (default %ld)\n"
            "  --batch B       mini-batch size (default %lld)\n"
            "  --lr X          Adam learning rate (default %g)\n"
            "  --limit N       train on the first N images only (default all 60000)\n"
            "  --test-limit N  test on the first N test images only (default all 10000)\n"
            "  --seed S        initialisation and shuffling seed (default %llu)\n"
            "  --min-acc A     exit 1 unless the final test accuracy is at least A\n"
            "  --data DIR      IDX files (default " FASHION_DIR ",\n"
            "                  from Debian's dataset-fashion-mnist package)\n"
            "  --save FILE     write the trained weights as safetensors\n"
            "Exit status: 0 on success, 1 on an error or a missed --min-acc, 2 for bad\n"
            "arguments.\n",
            o->prog, what, o->epochs, (long long)o->batch, (double)o->lr,
            (unsigned long long)o->seed);
}

/* 0 to go on, else the exit status. */
static int fashion_parse(int argc, char **argv, fashion_opts *o, const char *what)
{
    for (int i = 1; i < argc; i += 2) { /* flag, value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        errno = 0;
        bool ok = v != NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fashion_usage(stdout, o, what);
            return -1;
        } else if (!strcmp(a, "--epochs") && v) {
            o->epochs = strtol(v, &end, 10);
            ok = o->epochs >= 0;
        } else if (!strcmp(a, "--batch") && v) {
            o->batch = strtoll(v, &end, 10);
            ok = o->batch > 0;
        } else if (!strcmp(a, "--limit") && v) {
            o->limit = strtoll(v, &end, 10);
            ok = o->limit > 0;
        } else if (!strcmp(a, "--test-limit") && v) {
            o->test_limit = strtoll(v, &end, 10);
            ok = o->test_limit > 0;
        } else if (!strcmp(a, "--lr") && v) {
            o->lr = strtof(v, &end);
            ok = o->lr > 0.0f;
        } else if (!strcmp(a, "--min-acc") && v) {
            o->min_acc = strtof(v, &end);
            ok = o->min_acc >= 0.0f && o->min_acc <= 1.0f;
        } else if (!strcmp(a, "--seed") && v) {
            o->seed = strtoull(v, &end, 10);
        } else if (!strcmp(a, "--data") && v) {
            o->data_dir = v;
        } else if (!strcmp(a, "--save") && v) {
            o->save = v;
        } else {
            fashion_usage(stderr, o, what);
            return 2;
        }
        if (!ok || (end && *end) || errno) {
            fprintf(stderr, "%s: bad value '%s' for %s\n", o->prog, v ? v : "", a);
            return 2;
        }
    }
    return 0;
}

static double fashion_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Images of one split ("train" or "t10k"), the first limit of them (0 = all),
 * reshaped to [N, sample_shape...]; labels int32 [N]. */
static bool fashion_load(const fashion_opts *o, const char *split, int64_t limit, int sndim,
                         const int64_t *sample_shape, ag_tensor **x, ag_tensor **y)
{
    char pi[1024], pl[1024];
    snprintf(pi, sizeof pi, "%s/%s-images-idx3-ubyte.gz", o->data_dir, split);
    snprintf(pl, sizeof pl, "%s/%s-labels-idx1-ubyte.gz", o->data_dir, split);
    ag_scope_begin();
    /* u8 as stored: the loader scales pixels to [0, 1] per batch, a quarter of the memory */
    ag_tensor *img = ag_idx_load_raw(pi), *lab = img ? ag_idx_load_raw(pl) : NULL;
    if (img && lab && ag_dim(img, 0) != ag_dim(lab, 0)) {
        fprintf(stderr, "%s: %s has %lld images but %lld labels\n", o->prog, split,
                (long long)ag_dim(img, 0), (long long)ag_dim(lab, 0));
        ag_scope_end();
        return false;
    }
    int64_t n = img ? ag_dim(img, 0) : 0;
    if (limit > 0 && limit < n) n = limit;
    int64_t shape[AG_MAX_DIMS] = {n};
    for (int d = 0; d < sndim; d++) shape[d + 1] = sample_shape[d];
    *x = ag_retain(ag_reshape(ag_slice(img, 0, 0, n, 1), sndim + 1, shape));
    *y = ag_retain(ag_contiguous(ag_slice(lab, 0, 0, n, 1)));
    ag_scope_end();
    if (!*x || !*y) {
        fprintf(stderr, "%s: loading Fashion-MNIST (%s): %s\n", o->prog, split, ag_last_error());
        if (strstr(ag_last_error(), "cannot open"))
            fprintf(stderr, "%s: install it with `make deps` (Debian package "
                            "dataset-fashion-mnist) or point --data at the IDX files\n", o->prog);
        ag_release(*x);
        ag_release(*y);
        return false;
    }
    return true;
}


static bool fashion_evaluate(ag_module *m, ag_loader *test, float *acc)
{
    int64_t correct = 0, seen = 0;
    bool ok = true;
    ag_module_train(m, false);
    ag_no_grad_begin();
    ag_loader_start_epoch(test, 0);
    ag_tensor *x, *y;
    while (ok) {
        ag_scope_begin();
        if (!ag_loader_next(test, &x, &y)) {
            ok = ag_last_status() == AG_OK;
            ag_scope_end();
            break;
        }
        int64_t hits = 0;
        ok = ag_count_correct(ag_module_forward(m, x), y, &hits) == AG_OK;
        correct += hits;
        seen += ag_dim(y, 0);
        ag_scope_end();
    }
    ag_no_grad_end();
    ag_module_train(m, true);
    *acc = seen ? (float)correct / (float)seen : 0.0f;
    return ok;
}

/* Trains m and reports each epoch; returns the exit status. */
static int fashion_train(const fashion_opts *o, ag_module *m, ag_loader *train, ag_loader *test)
{
    int np = 0;
    ag_tensor *const *params = ag_module_parameters(m, &np);
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_ADAM, o->lr);
    ag_optim *opt = params ? ag_optim_new(&cfg, np, params) : NULL;
    if (!opt) {
        fprintf(stderr, "%s: optimizer: %s\n", o->prog, ag_last_error());
        return 1;
    }
    printf("%s: %lld parameters, %lld training and %lld test images, batch %lld, Adam lr %g, "
           "device %s\n", o->prog, (long long)ag_module_num_parameters(m),
           (long long)ag_loader_size(train), (long long)ag_loader_size(test),
           (long long)o->batch, (double)o->lr, ag_device_name(ag_device_default()));
    float test_acc = 0.0f;
    for (long e = 0; e < o->epochs; e++) {
        double t0 = fashion_now(), loss_sum = 0.0;
        int64_t seen = 0, correct = 0;
        ag_loader_start_epoch(train, e);
        ag_tensor *x, *y;
        for (;;) {
            ag_scope_begin();
            if (!ag_loader_next(train, &x, &y)) {
                ag_scope_end();
                if (ag_last_status() == AG_OK) break;
                goto fail;
            }
            ag_tensor *logits = ag_module_forward(m, x);
            ag_tensor *loss = ag_cross_entropy(logits, y, AG_REDUCTION_MEAN, 0.0f);
            float lv = 0.0f;
            int64_t hits = 0;
            bool ok = loss && ag_optim_zero_grad(opt) == AG_OK &&
                      ag_backward(loss, NULL) == AG_OK && ag_optim_step(opt) == AG_OK &&
                      ag_item(loss, &lv) == AG_OK && ag_count_correct(logits, y, &hits) == AG_OK;
            int64_t b = ag_dim(y, 0);
            ag_scope_end();
            if (!ok) goto fail;
            loss_sum += (double)lv * (double)b;
            seen += b;
            correct += hits;
        }
        double dt = fashion_now() - t0;
        if (!fashion_evaluate(m, test, &test_acc)) goto fail;
        printf("epoch %ld/%ld  loss %.4f  train acc %.4f  test acc %.4f  %.1f s  %.0f samples/s\n",
               e + 1, o->epochs, seen ? loss_sum / (double)seen : 0.0,
               seen ? (double)correct / (double)seen : 0.0, (double)test_acc, dt,
               dt > 0 ? (double)seen / dt : 0.0);
        fflush(stdout);
    }
    if (o->epochs == 0 && !fashion_evaluate(m, test, &test_acc)) goto fail;
    ag_optim_free(opt);
    if (o->save && ag_module_save(m, o->save) != AG_OK) {
        fprintf(stderr, "%s: saving %s: %s\n", o->prog, o->save, ag_last_error());
        return 1;
    }
    printf("final test accuracy: %.4f\n", (double)test_acc);
    if (o->min_acc > 0.0f && !(test_acc >= o->min_acc)) {
        printf("below the required %.4f\n", (double)o->min_acc);
        return 1;
    }
    return 0;
fail:
    fprintf(stderr, "%s: training: %s\n", o->prog, ag_last_error());
    ag_optim_free(opt);
    return 1;
}

/* Loads both splits shaped as sample_shape, builds the loaders (pixels
 * standardised with the training set's mean and std) and trains m. */
static int fashion_main(fashion_opts *o, ag_module *m, int sndim, const int64_t *sample_shape)
{
    if (!m) {
        fprintf(stderr, "%s: building the model: %s\n", o->prog, ag_last_error());
        return 1;
    }
    ag_tensor *xtr = NULL, *ytr = NULL, *xte = NULL, *yte = NULL;
    if (!fashion_load(o, "train", o->limit, sndim, sample_shape, &xtr, &ytr) ||
        !fashion_load(o, "t10k", o->test_limit, sndim, sample_shape, &xte, &yte)) {
        ag_module_free(m);
        return 1;
    }
    ag_loader_config tc = {.batch_size = o->batch, .shuffle = true, .seed = o->seed};
    ag_loader_config ec = {.batch_size = 1000};
    ag_loader *train = ag_loader_new(xtr, ytr, &tc), *test = ag_loader_new(xte, yte, &ec);
    ag_release(xtr);
    ag_release(ytr);
    ag_release(xte);
    ag_release(yte);
    float mean, std;
    int rc = 1;
    if (!train || !test || ag_loader_stats(train, false, &mean, &std) != AG_OK ||
        ag_loader_set_normalize(train, 1, &mean, &std) != AG_OK ||
        ag_loader_set_normalize(test, 1, &mean, &std) != AG_OK)
        fprintf(stderr, "%s: data loader: %s\n", o->prog, ag_last_error());
    else
        rc = fashion_train(o, m, train, test);
    ag_loader_free(train);
    ag_loader_free(test);
    ag_module_free(m);
    return rc;
}

#endif
