/* Device throughput of single ops through the public API, on any device:
 * element-wise bandwidth against a plain copy measured in the same run, GEMM
 * GFLOP/s over square sizes, softmax rows. Each figure is the median of several
 * rounds; a round runs the op back to back and ends with ag_device_sync.
 *
 * Usage: ops [--device NAME] [--rounds R] [--elems N] [--max-n N]
 *   --elems  elements per element-wise operand (default 16M)
 *   --max-n  largest square GEMM (default 2048; 8192 on a big GPU)
 * Example: build/bench/ops --device opencl --max-n 8192 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anygrad.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef ag_tensor *(*op_fn)(ag_tensor *a, ag_tensor *b);

static ag_tensor *op_copy(ag_tensor *a, ag_tensor *b) { (void)b; return ag_clone(a); }
static ag_tensor *op_add(ag_tensor *a, ag_tensor *b) { return ag_add(a, b); }
static ag_tensor *op_mul(ag_tensor *a, ag_tensor *b) { return ag_mul(a, b); }
static ag_tensor *op_scale(ag_tensor *a, ag_tensor *b) { (void)b; return ag_mul_scalar(a, 2.0f); }
static ag_tensor *op_relu(ag_tensor *a, ag_tensor *b) { (void)b; return ag_relu(a); }
static ag_tensor *op_exp(ag_tensor *a, ag_tensor *b) { (void)b; return ag_exp(a); }
static ag_tensor *op_tanh(ag_tensor *a, ag_tensor *b) { (void)b; return ag_tanh(a); }
static ag_tensor *op_gelu(ag_tensor *a, ag_tensor *b) { (void)b; return ag_gelu(a); }
static ag_tensor *op_sigmoid(ag_tensor *a, ag_tensor *b) { (void)b; return ag_sigmoid(a); }
static ag_tensor *op_sum(ag_tensor *a, ag_tensor *b) { (void)b; return ag_sum_all(a); }
static ag_tensor *op_matmul(ag_tensor *a, ag_tensor *b) { return ag_matmul(a, b); }
static ag_tensor *op_softmax(ag_tensor *a, ag_tensor *b) { (void)b; return ag_softmax(a, -1); }

/* Median seconds per call over `rounds` rounds of `reps` calls. */
static double time_op(ag_device *dev, op_fn fn, ag_tensor *a, ag_tensor *b, int rounds, int reps)
{
    double t[64];
    if (rounds > 64) rounds = 64;
    for (int w = 0; w < 2; w++) { /* warm-up: program builds, caches */
        ag_tensor *y = fn(a, b);
        if (!y) return -1;
        ag_release(y);
    }
    ag_device_sync(dev);
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        for (int i = 0; i < reps; i++) ag_release(fn(a, b));
        if (ag_device_sync(dev) != AG_OK) return -1;
        t[r] = (now() - t0) / reps;
    }
    qsort(t, (size_t)rounds, sizeof t[0], cmp_double);
    return t[rounds / 2];
}

int main(int argc, char **argv)
{
    const char *devname = NULL;
    int rounds = 7;
    int64_t elems = 16 << 20, max_n = 2048;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) devname = argv[++i];
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--elems") && i + 1 < argc) elems = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--max-n") && i + 1 < argc) max_n = atoll(argv[++i]);
        else {
            fprintf(stderr, "usage: ops [--device NAME] [--rounds R] [--elems N] [--max-n N]\n");
            return 2;
        }
    }
    if (rounds < 1 || elems < 1 || max_n < 1) {
        fprintf(stderr, "ops: rounds, elems and max-n must be positive\n");
        return 2;
    }
    ag_device *dev = devname ? ag_device_by_name(devname) : ag_device_default();
    if (!dev) {
        fprintf(stderr, "ops: %s\n", ag_last_error());
        return 1;
    }
    ag_set_default_device(dev);
    printf("device: %s (%s), %d rounds, medians\n\n", ag_device_name(dev), ag_device_backend(dev), rounds);

    ag_manual_seed(1);
    const int64_t shape[1] = {elems};
    ag_tensor *a = ag_rand(1, shape, -2.0f, 2.0f), *b = ag_rand(1, shape, -2.0f, 2.0f);
    if (!a || !b) {
        fprintf(stderr, "ops: %s\n", ag_last_error());
        return 1;
    }
    static const struct { const char *name; op_fn fn; int inputs; } ew[] = {
        {"copy", op_copy, 1}, {"add", op_add, 2}, {"mul", op_mul, 2}, {"mul_scalar", op_scale, 1},
        {"relu", op_relu, 1}, {"exp", op_exp, 1}, {"sigmoid", op_sigmoid, 1}, {"tanh", op_tanh, 1},
        {"gelu", op_gelu, 1}, {"sum_all", op_sum, -1},
    };
    const double mb = elems * 4.0;
    int reps = (int)(2e9 / (mb * 3) / 50) + 1;
    double copy_bw = 0;
    printf("%-12s %12s %10s %10s %9s\n", "op", "elements", "ms", "GB/s", "of copy");
    for (size_t i = 0; i < sizeof ew / sizeof ew[0]; i++) {
        double t = time_op(dev, ew[i].fn, a, b, rounds, reps);
        if (t < 0) {
            printf("%-12s failed: %s\n", ew[i].name, ag_last_error());
            continue;
        }
        /* bytes moved: every input read once, the output written once */
        double bytes = ew[i].inputs < 0 ? mb : mb * (ew[i].inputs + 1);
        double bw = bytes / t / 1e9;
        if (i == 0) copy_bw = bw;
        printf("%-12s %12lld %10.3f %10.1f %8.0f%%\n", ew[i].name, (long long)elems, t * 1e3, bw,
               copy_bw > 0 ? 100.0 * bw / copy_bw : 0.0);
    }
    ag_release(a);
    ag_release(b);

    printf("\n%-12s %12s %10s %10s\n", "gemm", "n", "ms", "GFLOP/s");
    for (int64_t n = 256; n <= max_n; n *= 2) {
        const int64_t sq[2] = {n, n};
        ag_tensor *x = ag_rand(2, sq, -1.0f, 1.0f), *w = ag_rand(2, sq, -1.0f, 1.0f);
        double flops = 2.0 * n * n * n;
        int greps = (int)(2e10 / flops) + 1;
        if (greps > 50) greps = 50;
        double t = x && w ? time_op(dev, op_matmul, x, w, rounds, greps) : -1;
        if (t < 0) printf("%-12s %12lld failed: %s\n", "matmul", (long long)n, ag_last_error());
        else printf("%-12s %12lld %10.3f %10.1f\n", "matmul", (long long)n, t * 1e3, flops / t / 1e9);
        ag_release(x);
        ag_release(w);
    }

    printf("\n%-12s %12s %10s %10s\n", "softmax", "rows x cols", "ms", "GB/s");
    static const int64_t sm[][2] = {{4096, 10}, {4096, 1000}, {1024, 32768}};
    for (size_t i = 0; i < sizeof sm / sizeof sm[0]; i++) {
        ag_tensor *x = ag_rand(2, sm[i], -4.0f, 4.0f);
        double bytes = 8.0 * sm[i][0] * sm[i][1];
        double t = x ? time_op(dev, op_softmax, x, NULL, rounds, 20) : -1;
        char dims[32];
        snprintf(dims, sizeof dims, "%lldx%lld", (long long)sm[i][0], (long long)sm[i][1]);
        if (t < 0) printf("%-12s %12s failed: %s\n", "softmax", dims, ag_last_error());
        else printf("%-12s %12s %10.3f %10.1f\n", "softmax", dims, t * 1e3, bytes / t / 1e9);
        ag_release(x);
    }
    return 0;
}
