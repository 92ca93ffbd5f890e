/* SGEMM throughput of anygrad (through ag_matmul on f32 tensors) against
 * OpenBLAS's cblas_sgemm, in the same run with the same thread count: square
 * sizes, the training shapes of an MLP at batch 128 and 1 (forward and
 * backward, with the transposes as views), and those of a small CNN's dense
 * layers and im2col products. Each shape is timed in
 * rounds that alternate the two libraries; the table shows medians.
 *
 * Usage: gemm [rounds] [threads...]   (default: 9 rounds, 1 thread and all)
 * GEMM_ONLY=WORD in the environment runs only the shapes whose name has WORD.
 * GEMM_CPU_TIME=1 times by the process's CPU time instead of wall time: on a
 * loaded machine that counts only this process's work, but with more than one
 * thread it counts their waiting too, so it suits one thread. GEMM_BEST=1
 * shows the fastest round instead of the median: with more than one thread on
 * a loaded machine, the round in which no thread was descheduled.
 * The machine may be shared: quote the ratios of one run and repeat it.
 * OpenBLAS 0.3.21 does not know Emerald Rapids Xeons and falls back to its
 * Prescott (SSE3) kernels there, so compare with its AVX-512 kernels:
 *   OPENBLAS_CORETYPE=SkylakeX build/bench/gemm
 * (the header line names the core OpenBLAS uses). */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "anygrad.h"

/* C = op(A) op(B) with C [m, n]; ta: A is stored [k, m] and used transposed. */
typedef struct shape {
    const char *what;
    int64_t m, n, k;
    bool ta, tb;
} shape;

static const shape shapes[] = {
    {"square", 128, 128, 128, false, false},
    {"square", 256, 256, 256, false, false},
    {"square", 512, 512, 512, false, false},
    {"square", 1024, 1024, 1024, false, false},
    {"square", 2048, 2048, 2048, false, false},
    /* the MLP 784-256-128-10 at batch 128 */
    {"mlp", 128, 256, 784, false, false},
    {"mlp", 128, 128, 256, false, false},
    {"mlp", 128, 10, 256, false, false},
    {"mlp", 128, 10, 128, false, false},
    /* what its training step sends (bench/mlp_step: W stored [out, in]) */
    {"mlp fwd x W^T", 128, 256, 784, false, true},
    {"mlp fwd x W^T", 128, 128, 256, false, true},
    {"mlp fwd x W^T", 128, 10, 128, false, true},
    {"mlp bwd dW^T = X^T dY", 784, 256, 128, true, false},
    {"mlp bwd dW^T = X^T dY", 256, 128, 128, true, false},
    {"mlp bwd dW^T = X^T dY", 128, 10, 128, true, false},
    {"mlp bwd dW = dY^T X", 256, 784, 128, true, false},
    {"mlp bwd dX = dY W", 128, 784, 256, false, false},
    {"mlp bwd dX = dY W", 128, 256, 128, false, false},
    {"mlp bwd dX = dY W", 128, 128, 10, false, false},
    /* the same MLP at batch 1: matrix-vector products and outer products */
    {"mlp b1 fwd x W", 1, 256, 784, false, false},
    {"mlp b1 fwd x W^T", 1, 256, 784, false, true},
    {"mlp b1 fwd x W^T", 1, 128, 256, false, true},
    {"mlp b1 fwd x W^T", 1, 10, 128, false, true},
    {"mlp b1 bwd dW^T = X^T dY", 784, 256, 1, true, false},
    {"mlp b1 bwd dW^T = X^T dY", 256, 128, 1, true, false},
    {"mlp b1 bwd dW^T = X^T dY", 128, 10, 1, true, false},
    {"mlp b1 bwd dW = dY^T X", 256, 784, 1, true, false},
    {"mlp b1 bwd dX = dY W", 1, 256, 128, false, false},
    {"mlp b1 bwd dX = dY W", 1, 128, 10, false, false},
    /* the dense layers of bench/cnn_step (3136-1024-10) at batch 128 and 1 */
    /* the char GPT's linear layers at batch 12 x context 64 (W stored [out, in]) */
    {"gpt fwd x W^T", 768, 384, 128, false, true},
    {"gpt fwd x W^T", 768, 128, 128, false, true},
    {"gpt fwd x W^T", 768, 512, 128, false, true},
    {"gpt fwd x W^T", 768, 128, 512, false, true},
    {"gpt fwd x W^T", 768, 114, 128, false, true},
    {"gpt bwd dW = dY^T X", 384, 128, 768, true, false},
    {"gpt bwd dW = dY^T X", 512, 128, 768, true, false},
    {"gpt bwd dW = dY^T X", 128, 512, 768, true, false},
    {"gpt bwd dX = dY W", 768, 128, 384, false, false},
    {"gpt bwd dX = dY W", 768, 128, 512, false, false},
    {"gpt bwd dX = dY W", 768, 512, 128, false, false},
    {"cnn dense fwd", 128, 1024, 3136, false, true},
    {"cnn dense fwd", 128, 10, 1024, false, true},
    {"cnn dense dW^T", 3136, 1024, 128, true, false},
    {"cnn dense dW^T", 1024, 10, 128, true, false},
    {"cnn dense dX", 128, 3136, 1024, false, false},
    {"cnn dense dX", 128, 1024, 10, false, false},
    {"cnn b1 dense fwd", 1, 1024, 3136, false, true},
    {"cnn b1 dense fwd", 1, 10, 1024, false, true},
    {"cnn b1 dense dW^T", 3136, 1024, 1, true, false},
    {"cnn b1 dense dW^T", 1024, 10, 1, true, false},
    {"cnn b1 dense dX", 1, 3136, 1024, false, false},
    {"cnn b1 dense dX", 1, 1024, 10, false, false},
    /* im2col: conv 5x5x32 on 28x28, conv 5x5x64 on 14x14, weights x columns.
     * With an AVX kernel cpu_conv.c calls the micro-kernel itself, except for
     * a batch of one on more than one thread, which sends these three: */
    {"cnn conv1", 32, 784, 25, false, false},
    {"cnn conv2", 64, 196, 800, false, false},
    {"cnn conv2 dX cols", 800, 196, 64, true, false},
    /* weight gradients per image, and three images side by side (batch-folded,
     * what the scalar ISA sends) */
    {"cnn conv1 dW", 32, 25, 784, false, true},
    {"cnn conv2 dW", 64, 800, 196, false, true},
    {"cnn conv2 x3", 64, 588, 800, false, false},
    {"cnn conv2 dX cols x3", 800, 588, 64, true, false},
    {"cnn conv1 x8", 32, 6272, 25, false, false},
    {"cnn conv2 x8", 64, 1568, 800, false, false},
    {"cnn conv2 dW x8", 64, 800, 1568, false, true},
    /* transposed: pixels as rows, channels as columns */
    {"cnn conv1^T x8", 6272, 32, 25, true, true},
    {"cnn conv2^T x4", 784, 64, 800, true, true},
};

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(clock_id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static bool best_round;

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* the statistic the table shows: median, or with GEMM_BEST the fastest */
static double summary(double *v, int n)
{
    double m = median(v, n);
    return best_round ? v[0] : m;
}

static float *falloc(int64_t n)
{
    return aligned_alloc(64, ((size_t)n * sizeof(float) + 63) / 64 * 64);
}

static void fill(float *x, int64_t n, unsigned seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
}

/* One shape at one thread count: fills gf[0] (anygrad), gf[1] (OpenBLAS) with
 * median GFLOP/s; returns the largest difference of the results relative to
 * the largest |C| (or -1 on an anygrad error). */
static double run_shape(const shape *s, int rounds, double gf[2])
{
    const int64_t m = s->m, n = s->n, k = s->k;
    /* storage as in memory: A [m, k] or [k, m], B [k, n] or [n, k] */
    int64_t ash[2] = {s->ta ? k : m, s->ta ? m : k}, bsh[2] = {s->tb ? n : k, s->tb ? k : n};
    /* 64-byte aligned like anygrad's own buffers: stores that split cache
     * lines would slow OpenBLAS down on the products bound by writing C */
    float *ha = falloc(m * k), *hb = falloc(k * n), *c_ob = falloc(m * n), *c_ag = falloc(m * n);
    fill(ha, m * k, 1);
    fill(hb, k * n, 2);
    ag_tensor *ta = ag_from_f32(ha, 2, ash), *tb = ag_from_f32(hb, 2, bsh);
    ag_tensor *va = s->ta ? ag_transpose(ta, 0, 1) : ag_retain(ta);
    ag_tensor *vb = s->tb ? ag_transpose(tb, 0, 1) : ag_retain(tb);
    double err = -1.0;
    if (!va || !vb) goto out;

    const double flop = 2.0 * (double)m * (double)n * (double)k;
    /* each sample about 20 ms, at least one call */
    int inner = (int)(2e-2 * 50e9 / flop);
    if (inner < 1) inner = 1;
    double *t_ag = malloc((size_t)rounds * sizeof *t_ag), *t_ob = malloc((size_t)rounds * sizeof *t_ob);
    ag_device *dev = ag_device_of(va);
    for (int r = -1; r < rounds; r++) { /* round -1 warms up both */
        double t0 = now_s();
        for (int i = 0; i < inner; i++) {
            ag_tensor *y = ag_matmul(va, vb);
            if (!y) {
                fprintf(stderr, "ag_matmul %lldx%lldx%lld: %s\n", (long long)m, (long long)n,
                        (long long)k, ag_last_error());
                free(t_ag);
                free(t_ob);
                goto out;
            }
            if (r == -1 && i == 0) ag_to_host(y, c_ag, (size_t)(m * n) * sizeof *c_ag);
            ag_release(y);
        }
        ag_device_sync(dev);
        double t1 = now_s();
        for (int i = 0; i < inner; i++)
            cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                        s->tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, ha,
                        (int)ash[1], hb, (int)bsh[1], 0.0f, c_ob, (int)n);
        double t2 = now_s();
        if (r >= 0) {
            t_ag[r] = (t1 - t0) / inner;
            t_ob[r] = (t2 - t1) / inner;
        }
    }
    gf[0] = flop / summary(t_ag, rounds) * 1e-9;
    gf[1] = flop / summary(t_ob, rounds) * 1e-9;
    free(t_ag);
    free(t_ob);
    double dmax = 0.0, cmax = 0.0;
    for (int64_t i = 0; i < m * n; i++) {
        dmax = fmax(dmax, fabs((double)c_ag[i] - c_ob[i]));
        cmax = fmax(cmax, fabs((double)c_ob[i]));
    }
    err = cmax > 0 ? dmax / cmax : dmax;
out:
    ag_release(va);
    ag_release(vb);
    ag_release(ta);
    ag_release(tb);
    free(ha);
    free(hb);
    free(c_ob);
    free(c_ag);
    return err;
}

/* Median time of ag_matmul on 1x1 operands: tensor and graph bookkeeping,
 * dispatch, allocation, which the small shapes pay on top of the product. */
static double call_ns(void)
{
    float one = 1.0f;
    int64_t sh[2] = {1, 1};
    ag_tensor *x = ag_from_f32(&one, 2, sh);
    double t[9];
    for (int r = 0; r < 9; r++) {
        double t0 = now_s();
        for (int i = 0; i < 10000; i++) ag_release(ag_matmul(x, x));
        t[r] = (now_s() - t0) / 10000 * 1e9;
    }
    ag_release(x);
    return summary(t, 9);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 9;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int threads[8] = {1, ncpu > 1 ? (int)ncpu : 1}, nthreads = ncpu > 1 ? 2 : 1;
    if (argc > 2) {
        nthreads = 0;
        for (int i = 2; i < argc && nthreads < 8; i++) threads[nthreads++] = atoi(argv[i]);
    }
    if (rounds < 1) {
        fprintf(stderr, "usage: gemm [rounds >= 1] [threads...]\n");
        return 2;
    }
    const char *isa = getenv("AG_CPU_ISA"), *only = getenv("GEMM_ONLY");
    const char *cpu_time = getenv("GEMM_CPU_TIME");
    if (cpu_time && *cpu_time && strcmp(cpu_time, "0") != 0) clock_id = CLOCK_PROCESS_CPUTIME_ID;
    const char *best = getenv("GEMM_BEST");
    best_round = best && *best && strcmp(best, "0") != 0;
    ag_device *dev = ag_device_default();
    if (!dev) {
        fprintf(stderr, "no device: %s\n", ag_last_error());
        return 1;
    }
    printf("anygrad device %s (AG_CPU_ISA=%s); OpenBLAS core %s, config %s\n",
           ag_device_name(dev), isa ? isa : "unset", openblas_get_corename(),
           openblas_get_config());
    printf("%s of %d rounds of %s, GFLOP/s; C[m,n] = A[m,k] B[k,n], ^T: operand used "
           "transposed\n\n",
           best_round ? "fastest" : "median", rounds,
           clock_id == CLOCK_MONOTONIC ? "wall time" : "process CPU time");
    printf("anygrad's fixed cost a call (ag_matmul of 1x1 by 1x1, in every anygrad figure "
           "below): %.0f ns\n\n", call_ns());
    printf("| threads | shape | m x n x k | anygrad | OpenBLAS | ratio |\n");
    printf("|---|---|---|---|---|---|\n");
    int bad = 0;
    for (int t = 0; t < nthreads; t++) {
        char nt[16];
        snprintf(nt, sizeof nt, "%d", threads[t]);
        setenv("AG_NUM_THREADS", nt, 1); /* read by the CPU backend at every call */
        openblas_set_num_threads(threads[t]);
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
            const shape *s = &shapes[i];
            if (only && !strstr(s->what, only)) continue;
            double gf[2];
            double err = run_shape(s, rounds, gf);
            if (err < 0) return 1;
            char dims[64];
            snprintf(dims, sizeof dims, "%lld%s x %lld%s x %lld", (long long)s->m,
                     s->ta ? "^T" : "", (long long)s->n, s->tb ? "^T" : "", (long long)s->k);
            const bool wrong = err > 1e-4;
            bad |= wrong;
            printf("| %d | %s | %s | %.1f | %.1f | %.2f |%s\n", threads[t], s->what, dims, gf[0],
                   gf[1], gf[0] / gf[1], wrong ? " RESULTS DIFFER" : "");
            fflush(stdout);
        }
    }
    return bad;
}
