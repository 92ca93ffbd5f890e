/* Times the TensorFlow-tutorial CNN of examples/fashion_cnn and `anygrad train
 * --model cnn` (conv 5x5x32 pad 2, ReLU, max-pool 2, conv 5x5x64 pad 2, ReLU,
 * max-pool 2, dense 1024, ReLU, dropout 0.4, dense 10) on random data shaped
 * like Fashion-MNIST: a whole training step with Adam, then each layer's
 * forward and forward + backward on its own (the backward alone is their
 * difference), so a profile of where a step goes needs no profiler. Medians.
 *
 * Usage: cnn_step [--batch B] [--steps N] [--layers] [--cpu-time] [--device NAME]
 *   --batch     images a step (default 128, as bench/torch_cnn.py)
 *   --steps     timed steps, and repetitions of each layer (default 30)
 *   --layers    also time the layers one by one
 *   --cpu-time  process CPU time instead of wall time (a loaded machine; with
 *               more than one thread it counts their waiting too)
 * Example: AG_NUM_THREADS=2 build/bench/cnn_step --layers */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anygrad.h"

/* Wall time, or with --cpu-time the process's CPU time: on a shared machine
 * that counts only this process's work (of every thread, spinning included, so
 * it suits AG_NUM_THREADS=1 best). */
static clockid_t clock_id = CLOCK_MONOTONIC;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(clock_id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void die(const char *what)
{
    fprintf(stderr, "cnn_step: %s: %s\n", what, ag_last_error());
    exit(1);
}

static const ag_conv2d_params SAME5 = {{1, 1}, {2, 2}, {1, 1}, 1};
static const ag_pool2d_params POOL2 = {{2, 2}, {2, 2}, {0, 0}};

typedef enum { L_CONV, L_POOL, L_LINEAR } layer_kind;

typedef struct layer {
    const char *name;
    layer_kind kind;
    int64_t in[4]; /* input shape (batch filled in) */
    int ndim;
    int64_t wshape[4]; /* conv weight or linear [out, in] */
    bool grad_x;       /* the input needs a gradient (not for the first layer) */
} layer;

static ag_tensor *run_layer(const layer *l, ag_tensor *x, ag_tensor *w, ag_tensor *b)
{
    switch (l->kind) {
    case L_CONV: return ag_relu(ag_conv2d(x, w, b, &SAME5));
    case L_POOL: return ag_max_pool2d(x, &POOL2);
    default: return ag_relu(ag_linear(x, w, b));
    }
}

/* Median milliseconds of the layer's forward, and of forward + backward. */
static void time_layer(const layer *l, int64_t batch, int reps, double *fwd, double *both)
{
    int64_t in[4];
    memcpy(in, l->in, sizeof in);
    in[0] = batch;
    ag_tensor *x = ag_randn(l->ndim, in, 0.0f, 1.0f), *w = NULL, *b = NULL;
    if (l->kind != L_POOL) {
        int wd = l->kind == L_CONV ? 4 : 2;
        w = ag_randn(wd, l->wshape, 0.0f, 0.05f);
        b = ag_zeros(1, l->wshape);
        ag_set_requires_grad(w, true);
        ag_set_requires_grad(b, true);
    }
    if (!x || (l->kind != L_POOL && (!w || !b))) die("layer inputs");
    ag_set_requires_grad(x, l->grad_x);
    double *tf = malloc((size_t)reps * sizeof *tf), *tb = malloc((size_t)reps * sizeof *tb);
    ag_tensor *g = NULL;
    for (int r = -2; r < reps; r++) { /* two warm-up rounds */
        ag_scope_begin();
        double t0 = now_ms();
        ag_no_grad_begin();
        ag_tensor *y = run_layer(l, x, w, b);
        if (!y) die(l->name);
        ag_item(ag_sum_all(ag_slice(ag_flatten(y, 0, -1), 0, 0, 1, 1)), &(float){0});
        ag_no_grad_end();
        double t1 = now_ms();
        y = run_layer(l, x, w, b);
        if (!g) {
            int64_t gs[AG_MAX_DIMS];
            int gn = ag_shape(y, gs);
            g = ag_retain(ag_randn(gn, gs, 0.0f, 1.0f));
        }
        if (!y || ag_backward(y, g) != AG_OK) die(l->name);
        ag_tensor *gr = ag_grad(w ? w : x);
        if (gr) ag_item(ag_sum_all(ag_slice(ag_flatten(gr, 0, -1), 0, 0, 1, 1)), &(float){0});
        double t2 = now_ms();
        ag_scope_end();
        if (w) {
            ag_zero_grad(w);
            ag_zero_grad(b);
        }
        ag_zero_grad(x);
        if (r >= 0) {
            tf[r] = t1 - t0;
            tb[r] = t2 - t1;
        }
    }
    *fwd = median(tf, reps);
    *both = median(tb, reps);
    free(tf);
    free(tb);
    ag_release(x);
    ag_release(w);
    ag_release(b);
    ag_release(g);
}

int main(int argc, char **argv)
{
    int64_t batch = 128;
    int steps = 30;
    bool layers = false;
    const char *devname = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers")) layers = true;
        else if (!strcmp(argv[i], "--cpu-time")) clock_id = CLOCK_PROCESS_CPUTIME_ID;
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) devname = argv[++i];
        else {
            fprintf(stderr, "usage: cnn_step [--batch B] [--steps N] [--layers] [--cpu-time] "
                            "[--device NAME]\n");
            return 2;
        }
    }
    if (batch <= 0 || steps <= 0) {
        fprintf(stderr, "cnn_step: batch and steps must be positive\n");
        return 2;
    }
    if (devname) {
        ag_device *dev = ag_device_by_name(devname);
        if (!dev) die("device");
        ag_set_default_device(dev);
    }
    ag_manual_seed(1);
    ag_module *l[] = {
        ag_conv2d_new(1, 32, 5, 5, &SAME5, true),  ag_relu_new(), ag_max_pool2d_new(&POOL2),
        ag_conv2d_new(32, 64, 5, 5, &SAME5, true), ag_relu_new(), ag_max_pool2d_new(&POOL2),
        ag_flatten_new(), ag_linear_new(7 * 7 * 64, 1024, true), ag_relu_new(),
        ag_dropout_new(0.4f), ag_linear_new(1024, 10, true),
    };
    ag_module *m = ag_sequential_new((int)(sizeof l / sizeof l[0]), l);
    int np = 0;
    ag_tensor *const *params = m ? ag_module_parameters(m, &np) : NULL;
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_ADAM, 1e-3f);
    ag_optim *opt = params ? ag_optim_new(&cfg, np, params) : NULL;
    const int64_t xs[4] = {batch, 1, 28, 28};
    ag_tensor *x = ag_randn(4, xs, 0.0f, 1.0f);
    int32_t *lab = malloc((size_t)batch * sizeof *lab);
    for (int64_t i = 0; i < batch; i++) lab[i] = (int32_t)(i * 7 % 10);
    ag_tensor *y = ag_from_i32(lab, 1, &batch);
    if (!opt || !x || !y) die("setup");

    double *t = malloc((size_t)steps * sizeof *t);
    float loss_v = 0;
    for (int s = -3; s < steps; s++) { /* three warm-up steps */
        double t0 = now_ms();
        ag_scope_begin();
        ag_tensor *loss = ag_cross_entropy(ag_module_forward(m, x), y, AG_REDUCTION_MEAN, 0.0f);
        ag_optim_zero_grad(opt);
        if (!loss || ag_backward(loss, NULL) != AG_OK || ag_optim_step(opt) != AG_OK) die("step");
        ag_item(loss, &loss_v);
        ag_scope_end();
        if (s >= 0) t[s] = now_ms() - t0;
    }
    double step = median(t, steps);
    printf("%s, ", clock_id == CLOCK_MONOTONIC ? "wall time" : "CPU time");
    printf("cnn batch %lld, Adam: median step %.2f ms (%.0f images/s, a 60000-image epoch %.1f s; "
           "min %.2f), final loss %.4f\n",
           (long long)batch, step, batch / step * 1e3, 60000.0 / batch * step / 1e3, t[0], loss_v);

    if (layers) {
        const layer L[] = {
            {"conv1 5x5 1->32 +relu", L_CONV, {0, 1, 28, 28}, 4, {32, 1, 5, 5}, false},
            {"pool1 2x2 32x28x28", L_POOL, {0, 32, 28, 28}, 4, {0}, true},
            {"conv2 5x5 32->64 +relu", L_CONV, {0, 32, 14, 14}, 4, {64, 32, 5, 5}, true},
            {"pool2 2x2 64x14x14", L_POOL, {0, 64, 14, 14}, 4, {0}, true},
            {"fc1 3136->1024 +relu", L_LINEAR, {0, 3136}, 2, {1024, 3136}, true},
        };
        double sf = 0, sb = 0;
        printf("%-26s %10s %10s %10s\n", "layer (ms, medians)", "forward", "backward", "total");
        for (size_t i = 0; i < sizeof L / sizeof L[0]; i++) {
            double f, fb;
            time_layer(&L[i], batch, steps, &f, &fb);
            printf("%-26s %10.2f %10.2f %10.2f\n", L[i].name, f, fb - f, fb);
            sf += f;
            sb += fb - f;
        }
        printf("%-26s %10.2f %10.2f %10.2f (the step: %.2f)\n", "sum", sf, sb, sf + sb, step);
    }
    ag_release(x);
    ag_release(y);
    ag_optim_free(opt);
    ag_module_free(m);
    free(lab);
    free(t);
    return 0;
}
