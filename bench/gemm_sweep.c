/* SGEMM throughput of the default device (AG_DEVICE picks it): C = A B for
 * square n x n f32 matrices, median time over repeats after a warm-up, the
 * device synchronised around each timed run. Needs no BLAS, so it runs where
 * only the GPU driver is (bench/gpu/run.sh).
 * Usage: gemm_sweep [n ...] (default 1024 2048 4096) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "anygrad.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int64_t sizes[16] = {1024, 2048, 4096};
    int nsizes = 3;
    if (argc > 1) {
        nsizes = 0;
        for (int i = 1; i < argc && nsizes < 16; i++) sizes[nsizes++] = atoll(argv[i]);
    }
    ag_device *dev = ag_device_default();
    if (!dev) {
        fprintf(stderr, "gemm_sweep: no device: %s\n", ag_last_error());
        return 1;
    }
    printf("device %s (%s)\n", ag_device_name(dev), ag_device_backend(dev));
    ag_manual_seed(1);
    for (int s = 0; s < nsizes; s++) {
        int64_t n = sizes[s], shape[2] = {n, n};
        if (n <= 0) {
            fprintf(stderr, "gemm_sweep: bad size %lld\n", (long long)n);
            return 1;
        }
        ag_tensor *a = ag_rand(2, shape, -1.0f, 1.0f), *b = ag_rand(2, shape, -1.0f, 1.0f);
        if (!a || !b) {
            fprintf(stderr, "gemm_sweep: %s\n", ag_last_error());
            return 1;
        }
        /* enough repeats for about a second of work, at least 3 */
        double flop = 2.0 * (double)n * (double)n * (double)n, t[64];
        int reps = 0, want = 3;
        for (int r = -1; r < want && reps < 64; r++) {
            if (ag_device_sync(dev) != AG_OK) break;
            double t0 = now_s();
            ag_tensor *c = ag_matmul(a, b);
            ag_status st = c ? ag_device_sync(dev) : ag_last_status();
            double dt = now_s() - t0;
            ag_release(c);
            if (st != AG_OK) {
                fprintf(stderr, "gemm_sweep: n=%lld: %s\n", (long long)n, ag_last_error());
                return 1;
            }
            if (r < 0) { /* warm-up: kernel builds, first-touch; sets the repeat count */
                want = dt > 0 ? (int)(1.0 / dt) : 64;
                want = want < 3 ? 3 : want > 64 ? 64 : want;
                continue;
            }
            t[reps++] = dt;
        }
        qsort(t, (size_t)reps, sizeof t[0], cmp);
        double med = t[reps / 2];
        printf("sgemm n=%lld: median %.3f ms over %d runs, %.3f TFLOP/s\n", (long long)n, med * 1e3,
               reps, flop / med * 1e-12);
        ag_release(a);
        ag_release(b);
    }
    return 0;
}
