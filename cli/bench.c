/* anygrad bench: what a user asks of a device before training on it, timed
 * through the public API the way training uses it: SGEMM throughput, and one
 * training step (forward, backward, Adam) of the MLP and of the CNN that
 * anygrad train builds. Each figure is a median of several timed runs after a
 * warm-up; every run ends with ag_device_sync, so GPU work is counted. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* C = A B for n x n, reps products a run; GFLOP/s of the median run. */
static double gemm_gflops(ag_device *dev, int64_t n, int runs, int reps)
{
    ag_scope_begin();
    const int64_t shape[2] = {n, n};
    ag_tensor *a = ag_randn(2, shape, 0.0f, 1.0f), *b = ag_randn(2, shape, 0.0f, 1.0f);
    double t[16], r = NAN;
    bool ok = a && b && ag_matmul(a, b) && ag_device_sync(dev) == AG_OK; /* warm-up */
    for (int k = 0; ok && k < runs; k++) {
        double t0 = cli_now();
        for (int i = 0; ok && i < reps; i++) {
            ag_scope_begin();
            ok = ag_matmul(a, b) != NULL;
            ag_scope_end();
        }
        ok = ok && ag_device_sync(dev) == AG_OK;
        t[k] = cli_now() - t0;
    }
    if (ok) {
        qsort(t, (size_t)runs, sizeof t[0], cmp_double);
        r = 2.0 * (double)n * (double)n * (double)n * reps / t[runs / 2] * 1e-9;
    }
    ag_scope_end();
    return r;
}

/* Milliseconds of one training step of the model the layers describe, on
 * random samples of c x h x w (a batch of them) and 10 classes. */
static double step_ms(ag_device *dev, const char *layers, int64_t batch, int64_t c, int64_t h,
                      int64_t w, int runs)
{
    char err[256];
    ag_manual_seed(1);
    ag_module *m = cli_layers_build(layers, c, h, w, 10, err, sizeof err);
    if (!m) return NAN;
    int np = 0;
    ag_tensor *const *params = ag_module_parameters(m, &np);
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_ADAM, 1e-3f);
    ag_optim *opt = params ? ag_optim_new(&cfg, np, params) : NULL;
    bool image = cli_layers_take_images(layers);
    const int64_t xs4[4] = {batch, c, h, w}, xs2[2] = {batch, c * h * w};
    ag_tensor *x = ag_randn(image ? 4 : 2, image ? xs4 : xs2, 0.0f, 1.0f);
    int32_t *lab = malloc((size_t)batch * sizeof *lab);
    for (int64_t i = 0; lab && i < batch; i++) lab[i] = (int32_t)(i % 10);
    ag_tensor *y = lab ? ag_from_i32(lab, 1, &batch) : NULL;
    free(lab);
    double t[16], r = NAN;
    bool ok = opt && x && y;
    for (int k = -1; ok && k < runs; k++) { /* k = -1: the warm-up */
        double t0 = cli_now();
        ag_scope_begin();
        ag_tensor *loss = ag_cross_entropy(ag_module_forward(m, x), y, AG_REDUCTION_MEAN, 0.0f);
        ok = loss && ag_optim_zero_grad(opt) == AG_OK && ag_backward(loss, NULL) == AG_OK &&
             ag_optim_step(opt) == AG_OK && ag_device_sync(dev) == AG_OK;
        ag_scope_end();
        if (k >= 0) t[k] = cli_now() - t0;
    }
    if (ok) {
        qsort(t, (size_t)runs, sizeof t[0], cmp_double);
        r = t[runs / 2] * 1e3;
    }
    ag_release(x);
    ag_release(y);
    ag_optim_free(opt);
    ag_module_free(m);
    return r;
}

static void cell(double v, const char *fmt)
{
    if (isfinite(v)) printf(fmt, v);
    else printf(" %9s", "failed");
}

int cli_bench(const cli_bench_opts *o)
{
    ag_device *only = o->device ? ag_device_by_name(o->device) : NULL;
    if (o->device && !only) {
        fprintf(stderr, "anygrad bench: --device %s: %s\n", o->device, ag_last_error());
        return 2;
    }
    const int runs = o->quick ? 3 : 7;
    const int64_t sizes[3] = {256, 512, 1024};
    const int nsizes = o->quick ? 2 : 3;
    static const char *const mlp = CLI_MLP_LAYERS, *const cnn = CLI_CNN_LAYERS;
    printf("%-9s", "device");
    for (int s = 0; s < nsizes; s++) printf("  sgemm %4lld", (long long)sizes[s]);
    printf("  %9s  %9s  name\n", "mlp b128", "cnn b32");
    printf("%-9s", "");
    for (int s = 0; s < nsizes; s++) printf("  %10s", "GFLOP/s");
    printf("  %9s  %9s\n", "ms/step", "ms/step");
    int status = 0;
    for (int i = 0; i < ag_device_count(); i++) {
        ag_device *dev = ag_device_get(i);
        if (only && dev != only) continue;
        ag_device *saved = ag_device_default();
        if (ag_set_default_device(dev) != AG_OK) continue;
        int k = 0; /* the index within its backend, as --device takes it */
        for (int j = 0; j < i; j++) k += !strcmp(ag_device_backend(ag_device_get(j)), ag_device_backend(dev));
        char id[32];
        snprintf(id, sizeof id, "%s:%d", ag_device_backend(dev), k);
        printf("%-9s", id);
        fflush(stdout);
        double v[5];
        for (int s = 0; s < nsizes; s++) {
            v[s] = gemm_gflops(dev, sizes[s], runs, sizes[s] <= 256 ? 8 : 2);
            cell(v[s], "  %10.1f");
            fflush(stdout);
        }
        v[3] = step_ms(dev, mlp, 128, 1, 28, 28, runs);
        cell(v[3], "  %9.2f");
        fflush(stdout);
        v[4] = step_ms(dev, cnn, 32, 1, 28, 28, o->quick ? 2 : 5);
        cell(v[4], "  %9.2f");
        printf("  %s\n", ag_device_name(dev));
        for (int k = 0; k < nsizes; k++) status |= !isfinite(v[k]);
        status |= !isfinite(v[3]) || !isfinite(v[4]);
        if (saved) ag_set_default_device(saved);
    }
    printf("medians of %d runs after a warm-up; the MLP is 784-256-128-10, the CNN anygrad train's, "
           "both with Adam\n", runs);
    if (status) fprintf(stderr, "anygrad bench: a benchmark failed: %s\n", ag_last_error());
    return status ? 1 : 0;
}
