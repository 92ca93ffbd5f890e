/* Device throughput of single ops, on any device: element-wise, softmax,
 * reduction and optimizer bandwidth against a STREAM-like triad (CPU) or a
 * plain copy (other devices) measured in the same run, then GEMM GFLOP/s over
 * square sizes. Each figure is the median of several rounds; a round runs the
 * op back to back and ends with ag_device_sync.
 *
 * On the CPU the bandwidth table is printed once per thread count (default: 1
 * and every core; AG_NUM_THREADS is set for each), with the triad run at that
 * count right before it. GB/s counts each operand once: inputs read, outputs
 * written (a write-allocate is not counted), so a kernel that keeps up with
 * memory reaches about the triad's figure.
 *
 * Backward kernels are called through the backend interface directly (the
 * autograd walk would add its own allocations and passes); everything else
 * goes through the public API.
 *
 * Usage: ops [--device NAME] [--rounds R] [--elems N] [--max-n N] [--threads LIST]
 *            [--only WORDS]
 *   --elems    elements per operand (default 16M)
 *   --max-n    largest square GEMM (default 2048; 0 skips GEMM)
 *   --threads  comma-separated thread counts for the CPU (default "1,all")
 *   --only     comma-separated words: only the ops whose name contains one (and
 *              the triad or copy they are measured against)
 * Example: build/bench/ops --max-n 0 --threads 1,2 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "anygrad.h"
#include "core.h" /* the backend table, for the backward kernels */

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

/* ---- what a case runs ------------------------------------------------------ */

typedef struct bench_ctx {
    ag_device *dev;
    ag_tensor *a, *b;       /* [elems] in [-2, 2) */
    ag_tensor *m[3];        /* softmax inputs [rows, cols] for the three widths */
    ag_tensor *my[3];       /* softmax outputs, log-softmax outputs */
    ag_tensor *ly[3];
    ag_tensor *r2, *c2;     /* [elems / 1000, 1000] and [1000, elems / 1000] */
    ag_optim *adam, *adamw;
    float *ta, *tb, *tc;    /* triad arrays (host) */
    int64_t elems;
    int nt;                 /* threads of this table */
} bench_ctx;

static const int64_t sm_cols[3] = {10, 1000, 32768};

/* One call of the op; false (with ag_last_error) on failure. */
typedef bool (*case_fn)(bench_ctx *c, int arg);

static bool keep(ag_tensor *y)
{
    if (!y) return false;
    ag_release(y);
    return true;
}

/* a = b + s c over the host arrays, threaded as the CPU kernels are */
static bool c_triad(bench_ctx *c, int arg)
{
    (void)arg;
    float *restrict ta = c->ta;
    const float *restrict tb = c->tb, *restrict tc = c->tc;
    const float s = 3.0f;
    const int64_t n = c->elems;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(c->nt)
#endif
    for (int64_t i = 0; i < n; i++) ta[i] = tb[i] + s * tc[i];
    return true;
}

static bool c_copy(bench_ctx *c, int arg) { (void)arg; return keep(ag_clone(c->a)); }
static bool c_add(bench_ctx *c, int arg) { (void)arg; return keep(ag_add(c->a, c->b)); }
static bool c_mul(bench_ctx *c, int arg) { (void)arg; return keep(ag_mul(c->a, c->b)); }

/* unary op `arg` with the bench's parameters */
static const float un_p0[AG_UNARY_COUNT] = {[AG_UNARY_LEAKY_RELU] = 0.01f, [AG_UNARY_ELU] = 1.0f,
                                            [AG_UNARY_MUL_SCALAR] = 2.0f};
static bool c_unary(bench_ctx *c, int arg)
{
    return keep(ag_unary((ag_unary_op)arg, c->a, un_p0[arg], 0.0f));
}

/* dx = dy f'(x) straight through the backend, y given as autograd gives it */
static bool c_unary_bw(bench_ctx *c, int arg)
{
    ag_tensor *dx = ag__empty_like(c->a);
    if (!dx) return false;
    ag_view vdx = ag__view(dx), vdy = ag__view(c->b), vx = ag__view(c->a), vy = ag__view(c->b);
    const float p[2] = {un_p0[arg], 0.0f};
    ag_status s = AG_LAUNCH(c->dev, unary_backward, (ag_unary_op)arg, p, &vdx, &vdy, &vx, &vy);
    ag_release(dx);
    return s == AG_OK;
}

static bool c_softmax(bench_ctx *c, int arg) { return keep(ag_softmax(c->m[arg], -1)); }
static bool c_log_softmax(bench_ctx *c, int arg) { return keep(ag_log_softmax(c->m[arg], -1)); }

static bool sm_bw(bench_ctx *c, int arg, bool log_)
{
    ag_tensor *y = log_ ? c->ly[arg] : c->my[arg];
    ag_tensor *dx = ag__empty_like(y);
    if (!dx) return false;
    /* dy: the inputs, another [rows, cols] tensor of the same size */
    ag_view vdx = ag__view(dx), vdy = ag__view(c->m[arg]), vy = ag__view(y);
    ag_status s = AG_LAUNCH(c->dev, softmax_backward, log_, &vdx, &vdy, &vy);
    ag_release(dx);
    return s == AG_OK;
}
static bool c_softmax_bw(bench_ctx *c, int arg) { return sm_bw(c, arg, false); }
static bool c_log_softmax_bw(bench_ctx *c, int arg) { return sm_bw(c, arg, true); }

static bool c_sum_all(bench_ctx *c, int arg) { (void)arg; return keep(ag_sum_all(c->a)); }
static bool c_mean_all(bench_ctx *c, int arg) { (void)arg; return keep(ag_mean_all(c->a)); }
/* arg 0: the rows' sums ([R, 1000] over axis 1); 1: the columns' ([1000, C] over axis 0) */
static bool c_sum_axis(bench_ctx *c, int arg)
{
    const int ax = arg ? 0 : 1;
    return keep(ag_sum(arg ? c->c2 : c->r2, 1, &ax, false));
}
static bool c_adam(bench_ctx *c, int arg) { return ag_optim_step(arg ? c->adamw : c->adam) == AG_OK; }

typedef struct bench_case {
    const char *name;
    case_fn fn;
    int arg;
    double bytes_per_elem; /* per element of the operand size */
    bool cpu_only;         /* the triad: host memory */
} bench_case;

#define UN(nm, op) {nm, c_unary, op, 8, false}
#define UB(nm, op) {nm " bw", c_unary_bw, op, 12, false}

static const bench_case CASES[] = {
    {"triad", c_triad, 0, 12, true},
    {"copy", c_copy, 0, 8, false},
    {"add", c_add, 0, 12, false},
    {"mul", c_mul, 0, 12, false},
    UN("mul_scalar", AG_UNARY_MUL_SCALAR),
    UN("exp", AG_UNARY_EXP),
    UN("relu", AG_UNARY_RELU), UB("relu", AG_UNARY_RELU),
    UN("leaky_relu", AG_UNARY_LEAKY_RELU), UB("leaky_relu", AG_UNARY_LEAKY_RELU),
    UN("elu", AG_UNARY_ELU), UB("elu", AG_UNARY_ELU),
    UN("sigmoid", AG_UNARY_SIGMOID), UB("sigmoid", AG_UNARY_SIGMOID),
    UN("tanh", AG_UNARY_TANH), UB("tanh", AG_UNARY_TANH),
    UN("gelu_tanh", AG_UNARY_GELU_TANH), UB("gelu_tanh", AG_UNARY_GELU_TANH),
    UN("gelu_erf", AG_UNARY_GELU_ERF), UB("gelu_erf", AG_UNARY_GELU_ERF),
    UN("silu", AG_UNARY_SILU), UB("silu", AG_UNARY_SILU),
    UN("softplus", AG_UNARY_SOFTPLUS), UB("softplus", AG_UNARY_SOFTPLUS),
    {"softmax c=10", c_softmax, 0, 8, false},
    {"softmax c=1000", c_softmax, 1, 8, false},
    {"softmax c=32768", c_softmax, 2, 8, false},
    {"softmax bw c=1000", c_softmax_bw, 1, 12, false},
    {"softmax bw c=32768", c_softmax_bw, 2, 12, false},
    {"log_softmax c=10", c_log_softmax, 0, 8, false},
    {"log_softmax c=1000", c_log_softmax, 1, 8, false},
    {"log_softmax c=32768", c_log_softmax, 2, 8, false},
    {"log_softmax bw c=1000", c_log_softmax_bw, 1, 12, false},
    {"log_softmax bw c=32768", c_log_softmax_bw, 2, 12, false},
    {"sum_all", c_sum_all, 0, 4, false},
    {"mean_all", c_mean_all, 0, 4, false},
    {"sum rows c=1000", c_sum_axis, 0, 4, false},
    {"sum cols r=1000", c_sum_axis, 1, 4, false},
    /* param, grad, m, v read; param, m, v written */
    {"adam step", c_adam, 0, 28, false},
    {"adamw step", c_adam, 1, 28, false},
};

/* Median seconds per call over `rounds` rounds of `reps` calls; -1 on failure. */
static double time_case(bench_ctx *c, const bench_case *k, int rounds, int reps)
{
    double t[64];
    if (rounds > 64) rounds = 64;
    for (int w = 0; w < 2; w++) /* warm-up: program builds, caches, first touch */
        if (!k->fn(c, k->arg)) return -1;
    if (ag_device_sync(c->dev) != AG_OK) return -1;
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        for (int i = 0; i < reps; i++)
            if (!k->fn(c, k->arg)) return -1;
        if (ag_device_sync(c->dev) != AG_OK) return -1;
        t[r] = (now() - t0) / reps;
    }
    qsort(t, (size_t)rounds, sizeof t[0], cmp_double);
    return t[rounds / 2];
}

/* whether name contains one of the comma-separated words (all when NULL) */
static bool selected(const char *only, const char *name)
{
    if (!only) return true;
    char word[64];
    for (const char *s = only; *s;) {
        size_t l = strcspn(s, ",");
        if (l > 0 && l < sizeof word) {
            memcpy(word, s, l);
            word[l] = '\0';
            if (strstr(name, word)) return true;
        }
        s += l + (s[l] == ',');
    }
    return false;
}

static void bandwidth_table(bench_ctx *c, bool cpu, int rounds, const char *only)
{
    const double mb = c->elems * 4.0;
    /* about 0.2 s per round at 10 GB/s */
    int reps = (int)(2e9 / (mb * 3) / 10) + 1;
    double ref = 0;
    printf("%-24s %10s %10s %9s\n", "op", "ms", "GB/s", cpu ? "of triad" : "of copy");
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const bench_case *k = &CASES[i];
        if (k->cpu_only && !cpu) continue;
        if (i > (cpu ? 0u : 1u) && !selected(only, k->name)) continue;
        double t = time_case(c, k, rounds, reps);
        if (t < 0) {
            printf("%-24s failed: %s\n", k->name, ag_last_error());
            continue;
        }
        double bw = k->bytes_per_elem * c->elems / t / 1e9;
        if (ref == 0) ref = bw; /* the triad on the CPU, else the copy */
        printf("%-24s %10.3f %10.2f %8.0f%%\n", k->name, t * 1e3, bw, 100.0 * bw / ref);
        fflush(stdout);
    }
}

/* ---- setup ----------------------------------------------------------------- */

static bool setup(bench_ctx *c)
{
    const int64_t n = c->elems, shape[1] = {n};
    ag_manual_seed(1);
    c->a = ag_rand(1, shape, -2.0f, 2.0f);
    c->b = ag_rand(1, shape, -2.0f, 2.0f);
    for (int i = 0; i < 3; i++) {
        const int64_t sm[2] = {n / sm_cols[i] > 0 ? n / sm_cols[i] : 1, sm_cols[i]};
        c->m[i] = ag_rand(2, sm, -4.0f, 4.0f);
        c->my[i] = ag_softmax(c->m[i], -1);
        c->ly[i] = ag_log_softmax(c->m[i], -1);
    }
    const int64_t r2[2] = {n / 1000 > 0 ? n / 1000 : 1, 1000}, c2[2] = {1000, r2[0]};
    c->r2 = ag_rand(2, r2, -2.0f, 2.0f);
    c->c2 = ag_rand(2, c2, -2.0f, 2.0f);
    if (!c->a || !c->b || !c->r2 || !c->c2) return false;
    for (int i = 0; i < 3; i++)
        if (!c->m[i] || !c->my[i] || !c->ly[i]) return false;

    /* Adam on one parameter of n elements whose gradient stays set */
    ag_tensor *p[2];
    for (int k = 0; k < 2; k++) {
        p[k] = ag_rand(1, shape, -1.0f, 1.0f);
        if (!p[k] || ag_set_requires_grad(p[k], true) != AG_OK) return false;
        ag_tensor *s = ag_sum_all(ag_mul(p[k], c->b));
        if (!s || ag_backward(s, NULL) != AG_OK) return false;
        ag_release(s);
    }
    ag_optim_config ca = ag_optim_defaults(AG_OPTIM_ADAM, 1e-3f);
    ag_optim_config cw = ag_optim_defaults(AG_OPTIM_ADAMW, 1e-3f);
    c->adam = ag_optim_new(&ca, 1, &p[0]);
    c->adamw = ag_optim_new(&cw, 1, &p[1]);
    ag_release(p[0]); /* the optimizers keep their parameters */
    ag_release(p[1]);
    if (!c->adam || !c->adamw) return false;

    c->ta = malloc((size_t)n * sizeof(float));
    c->tb = malloc((size_t)n * sizeof(float));
    c->tc = malloc((size_t)n * sizeof(float));
    if (!c->ta || !c->tb || !c->tc) {
        ag_set_error(AG_ERR_OOM, "ops: no host memory for the triad");
        return false;
    }
    for (int64_t i = 0; i < n; i++) { /* first touch on one thread, as ag_rand's */
        c->ta[i] = 0.0f;
        c->tb[i] = (float)(i & 1023);
        c->tc[i] = 1.0f;
    }
    return true;
}

static void teardown(bench_ctx *c)
{
    ag_release(c->a);
    ag_release(c->b);
    for (int i = 0; i < 3; i++) {
        ag_release(c->m[i]);
        ag_release(c->my[i]);
        ag_release(c->ly[i]);
    }
    ag_release(c->r2);
    ag_release(c->c2);
    ag_optim_free(c->adam);
    ag_optim_free(c->adamw);
    free(c->ta);
    free(c->tb);
    free(c->tc);
}

/* ---- GEMM ------------------------------------------------------------------ */

static double time_matmul(ag_device *dev, ag_tensor *x, ag_tensor *w, int rounds, int reps)
{
    double t[64];
    if (rounds > 64) rounds = 64;
    for (int i = 0; i < 2; i++)
        if (!keep(ag_matmul(x, w))) return -1;
    ag_device_sync(dev);
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        for (int i = 0; i < reps; i++)
            if (!keep(ag_matmul(x, w))) return -1;
        if (ag_device_sync(dev) != AG_OK) return -1;
        t[r] = (now() - t0) / reps;
    }
    qsort(t, (size_t)rounds, sizeof t[0], cmp_double);
    return t[rounds / 2];
}

static void gemm_table(ag_device *dev, int64_t max_n, int rounds)
{
    printf("\n%-12s %12s %10s %10s\n", "gemm", "n", "ms", "GFLOP/s");
    for (int64_t n = 256; n <= max_n; n *= 2) {
        const int64_t sq[2] = {n, n};
        ag_tensor *x = ag_rand(2, sq, -1.0f, 1.0f), *w = ag_rand(2, sq, -1.0f, 1.0f);
        double flops = 2.0 * n * n * n;
        int greps = (int)(2e10 / flops) + 1;
        if (greps > 50) greps = 50;
        double t = x && w ? time_matmul(dev, x, w, rounds, greps) : -1;
        if (t < 0) printf("%-12s %12lld failed: %s\n", "matmul", (long long)n, ag_last_error());
        else printf("%-12s %12lld %10.3f %10.1f\n", "matmul", (long long)n, t * 1e3, flops / t / 1e9);
        ag_release(x);
        ag_release(w);
    }
}

/* ---- main ------------------------------------------------------------------ */

static int usage(void)
{
    fprintf(stderr, "usage: ops [--device NAME] [--rounds R] [--elems N] [--max-n N] "
                    "[--threads LIST] [--only WORDS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *devname = NULL, *threads = NULL, *only = NULL;
    int rounds = 7;
    int64_t elems = 16 << 20, max_n = 2048;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) devname = argv[++i];
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--elems") && i + 1 < argc) elems = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--max-n") && i + 1 < argc) max_n = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else return usage();
    }
    if (rounds < 1 || elems < 1000 || max_n < 0) {
        fprintf(stderr, "ops: rounds must be positive, elems at least 1000, max-n not negative\n");
        return 2;
    }
    ag_device *dev = devname ? ag_device_by_name(devname) : ag_device_default();
    if (!dev) {
        fprintf(stderr, "ops: %s\n", ag_last_error());
        return 1;
    }
    ag_set_default_device(dev);
    const bool cpu = !strcmp(ag_device_backend(dev), "cpu");
    printf("device: %s (%s), %lld elements per operand, %d rounds, medians\n",
           ag_device_name(dev), ag_device_backend(dev), (long long)elems, rounds);

    bench_ctx c = {.dev = dev, .elems = elems};
    if (!setup(&c)) {
        fprintf(stderr, "ops: %s\n", ag_last_error());
        teardown(&c);
        return 1;
    }

    /* thread counts: the CPU's tables, one table elsewhere */
    int counts[16], ncounts = 0, all = 1;
#ifdef _OPENMP
    all = omp_get_num_procs();
#endif
    if (!cpu) {
        counts[ncounts++] = 1;
    } else if (!threads) {
        counts[ncounts++] = 1;
        if (all > 1) counts[ncounts++] = all;
    } else {
        for (const char *s = threads; *s && ncounts < 16;) {
            char *end;
            long v = !strncmp(s, "all", 3) ? (end = (char *)s + 3, all) : strtol(s, &end, 10);
            if (end == s || v < 1 || (*end && *end != ',')) return usage();
            counts[ncounts++] = (int)v;
            s = *end ? end + 1 : end;
        }
    }
    for (int k = 0; k < ncounts; k++) {
        c.nt = counts[k];
        if (cpu) {
            char v[16];
            snprintf(v, sizeof v, "%d", c.nt);
            setenv("AG_NUM_THREADS", v, 1);
            printf("\nthreads: %d\n", c.nt);
        } else {
            printf("\n");
        }
        bandwidth_table(&c, cpu, rounds, only);
    }
    teardown(&c);
    if (max_n > 0) gemm_table(dev, max_n, rounds);
    return 0;
}
