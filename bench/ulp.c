/* Accuracy of the CPU element-wise kernels against double-precision libm, over
 * every finite float (or every k-th bit pattern with --step k), for each
 * instruction set this machine runs: the portable kernels (called through the
 * backend, with AG_CPU_ISA=scalar) and each vector table (called directly).
 *
 * Forward ops report the worst error in ulps of the float32 result (spacing at
 * the exact value; 2^-149 below FLT_MIN), where it happens and the mean.
 * Backward ops (dy = 1, so dx = f'(x)) report the same, and the worst absolute
 * error in ulps of 1 (2^-24, "max abs"), because a derivative that crosses zero (gelu's,
 * near x = -0.75) has no relative accuracy in any float formula.
 *
 * Usage: ulp [--step K] [--op NAME[,NAME...]] [--isa NAME[,NAME...]] [--threads N]
 *           [--lo X --hi X]
 *   --step   every K-th float bit pattern (default 1: exhaustive)
 *   --op     only these ops (names as printed; "tanh,tanh'" etc.)
 *   --isa    only these instruction sets (scalar, avx2, avx512, neon)
 *   --lo/hi  only inputs in [lo, hi]
 * Example: build/bench/ulp --step 64 --op tanh,gelu_erf */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "anygrad.h"
#include "core.h"
#include "cpu/cpu_simd.h"

/* ---- references in double ---------------------------------------------------- */

static const double K_S2PI = 0.79788456080286535588; /* sqrt(2 / pi) */
static const double K_GC = 0.044715;

/* with e = exp(-|x|): sigmoid(x) and sigmoid(x) (1 - sigmoid(x)), no cancellation */
static double sig(double x)
{
    double e = exp(-fabs(x));
    return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}
static double sig_d(double x)
{
    double e = exp(-fabs(x));
    return e / ((1.0 + e) * (1.0 + e));
}

static double r_exp(double x) { return exp(x); }
static double r_elu(double x) { return x > 0 ? x : expm1(x); }
static double r_sigmoid(double x) { return sig(x); }
static double r_tanh(double x) { return tanh(x); }
static double gelu_u(double x) { return K_S2PI * (x + K_GC * x * x * x); }
static double r_gelu_tanh(double x) { return x * sig(2.0 * gelu_u(x)); }
static double r_gelu_erf(double x) { return 0.5 * x * erfc(-x / sqrt(2.0)); }
static double r_silu(double x) { return x * sig(x); }
static double r_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static double d_elu(double x) { return x > 0 ? 1.0 : exp(x); }
static double d_tanh(double x) { return 4.0 * sig_d(2.0 * x); }
static double d_gelu_tanh(double x)
{
    double u = gelu_u(x);
    return sig(2.0 * u) + 2.0 * x * sig_d(2.0 * u) * K_S2PI * (1.0 + 3.0 * K_GC * x * x);
}
static double d_gelu_erf(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) * 0.39894228040143267794;
}
static double d_silu(double x) { return sig(x) + x * sig_d(x); }

typedef struct op_def {
    const char *name;
    ag_unary_op op;
    float p0;
    bool backward;
    double (*ref)(double);
} op_def;

static const op_def OPS[] = {
    {"exp", AG_UNARY_EXP, 0, false, r_exp},
    {"elu", AG_UNARY_ELU, 1.0f, false, r_elu},
    {"sigmoid", AG_UNARY_SIGMOID, 0, false, r_sigmoid},
    {"tanh", AG_UNARY_TANH, 0, false, r_tanh},
    {"gelu_tanh", AG_UNARY_GELU_TANH, 0, false, r_gelu_tanh},
    {"gelu_erf", AG_UNARY_GELU_ERF, 0, false, r_gelu_erf},
    {"silu", AG_UNARY_SILU, 0, false, r_silu},
    {"softplus", AG_UNARY_SOFTPLUS, 0, false, r_softplus},
    {"elu'", AG_UNARY_ELU, 1.0f, true, d_elu},
    {"sigmoid'", AG_UNARY_SIGMOID, 0, true, sig_d},
    {"tanh'", AG_UNARY_TANH, 0, true, d_tanh},
    {"gelu_tanh'", AG_UNARY_GELU_TANH, 0, true, d_gelu_tanh},
    {"gelu_erf'", AG_UNARY_GELU_ERF, 0, true, d_gelu_erf},
    {"silu'", AG_UNARY_SILU, 0, true, d_silu},
    {"softplus'", AG_UNARY_SOFTPLUS, 0, true, r_sigmoid},
};
#define NOPS (int)(sizeof OPS / sizeof OPS[0])

/* ---- the kernels under test ---------------------------------------------------- */

#define MAX_ISA 3
typedef struct isa_def {
    const char *name;
    const cpu_simd_ops *table; /* NULL: the portable kernels through the backend */
} isa_def;

static isa_def isas[MAX_ISA];
static int nisa;
static ag_device *cpu_dev;

static bool wanted(const char *list, const char *name);

static void add_isa(const char *only, isa_def d)
{
    if (wanted(only, d.name)) isas[nisa++] = d;
}

static void find_isas(const char *only)
{
    add_isa(only, (isa_def){"scalar", NULL});
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        add_isa(only, (isa_def){"avx2", &cpu_simd_avx2});
    if (__builtin_cpu_supports("avx512f")) add_isa(only, (isa_def){"avx512", &cpu_simd_avx512});
#elif defined(__aarch64__)
    add_isa(only, (isa_def){"neon", &cpu_simd_neon});
#endif
}

/* y[0..n) = f(x) or f'(x) on one ISA; false on a backend error */
static bool run_isa(const isa_def *isa, const op_def *o, int64_t n, float *y, const float *x,
                    const float *ones)
{
    const float p[2] = {o->p0, 0.0f};
    if (isa->table) {
        if (o->backward) isa->table->unary_bw[o->op](n, y, ones, x, NULL, p[0], p[1]);
        else isa->table->unary[o->op](n, y, x, p[0], p[1]);
        return true;
    }
    /* the portable kernels: host memory wrapped as CPU tensors */
    const int64_t shape[1] = {n};
    ag_tensor *tx = ag_from_f32(x, 1, shape), *ty = ag_empty(1, shape, AG_F32);
    ag_tensor *t1 = o->backward ? ag_from_f32(ones, 1, shape) : NULL;
    bool ok = tx && ty && (!o->backward || t1);
    if (ok) {
        ag_view vx = ag__view(tx), vy = ag__view(ty);
        ag_status s;
        if (o->backward) {
            ag_view v1 = ag__view(t1);
            s = AG_LAUNCH(cpu_dev, unary_backward, o->op, p, &vy, &v1, &vx, NULL);
        } else {
            s = AG_LAUNCH(cpu_dev, unary, o->op, p, &vy, &vx);
        }
        ok = s == AG_OK && ag_to_host(ty, y, (size_t)n * sizeof *y) == AG_OK;
    }
    ag_release(tx);
    ag_release(ty);
    ag_release(t1);
    return ok;
}

/* ---- error measures --------------------------------------------------------------- */

/* float32 spacing at |w|, never below the subnormal step (as conformance/harness.c) */
static double ulp_at(double w)
{
    double a = fabs(w);
    if (a < FLT_MIN) return 0x1p-149;
    uint64_t b;
    memcpy(&b, &a, sizeof b);
    b = (b & 0x7ff0000000000000u) - ((uint64_t)23 << 52); /* 2^(exponent - 23) */
    memcpy(&a, &b, sizeof a);
    return a;
}

/* error of g against the exact w in ulps of w; NaN against a number, or a wrong
 * infinity, is infinite */
static double ulp_err(float g, double w)
{
    if (isnan(w) || isnan(g)) return isnan(w) && isnan(g) ? 0.0 : INFINITY;
    float wf = (float)w; /* beyond the float range: the infinity it rounds to */
    if (isinf(wf) || isinf(g)) return g == wf ? 0.0 : INFINITY;
    return fabs((double)g - w) / ulp_at(w);
}

typedef struct stat {
    double max_ulp, sum_ulp, max_abs;
    float worst_x, worst_abs_x;
    int64_t n, over1;
} stat;

static void stat_add(stat *s, float x, float g, double w)
{
    double u = ulp_err(g, w);
    if (u > s->max_ulp || (s->n == 0)) {
        if (u > s->max_ulp) s->max_ulp = u;
        s->worst_x = x;
    }
    s->sum_ulp += isfinite(u) ? u : 0.0;
    s->over1 += u > 1.0;
    s->n++;
    double a = isinf(g) || isnan(g) ? u : fabs((double)g - w) * 0x1p24;
    if (a > s->max_abs) {
        s->max_abs = a;
        s->worst_abs_x = x;
    }
}

static void stat_merge(stat *a, const stat *b)
{
    if (b->n == 0) return;
    if (a->n == 0 || b->max_ulp > a->max_ulp) {
        a->max_ulp = b->max_ulp;
        a->worst_x = b->worst_x;
    }
    if (b->max_abs > a->max_abs) {
        a->max_abs = b->max_abs;
        a->worst_abs_x = b->worst_abs_x;
    }
    a->sum_ulp += b->sum_ulp;
    a->over1 += b->over1;
    a->n += b->n;
}

/* ---- main ---------------------------------------------------------------------- */

#define CHUNK (1 << 16)

static bool wanted(const char *list, const char *name)
{
    if (!list) return true;
    size_t len = strlen(name);
    for (const char *s = list; *s;) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l == len && !strncmp(s, name, l)) return true;
        s += l + (e != NULL);
    }
    return false;
}

int main(int argc, char **argv)
{
    const char *only = NULL, *only_isa = NULL;
    int64_t step = 1;
    int threads = 0;
    double lo = -INFINITY, hi = INFINITY;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--step") && i + 1 < argc) step = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--op") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) only_isa = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--lo") && i + 1 < argc) lo = atof(argv[++i]);
        else if (!strcmp(argv[i], "--hi") && i + 1 < argc) hi = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: ulp [--step K] [--op NAMES] [--isa NAMES] [--threads N] "
                            "[--lo X --hi X]\n");
            return 2;
        }
    }
    if (step < 1) step = 1;
    /* the portable kernels, one thread each (the tool threads over chunks) */
    setenv("AG_CPU_ISA", "scalar", 1);
    setenv("AG_NUM_THREADS", "1", 1);
    cpu_dev = ag_device_by_name("cpu");
    if (!cpu_dev) {
        fprintf(stderr, "ulp: %s\n", ag_last_error());
        return 1;
    }
    ag_set_default_device(cpu_dev);
    find_isas(only_isa);
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
#endif
    printf("every %lld-th finite float in [%g, %g]; errors in ulps of the result, "
           "abs in ulps of 1\n", (long long)step, lo, hi);
    printf("%-11s %-7s %10s %15s %8s %9s %10s %15s\n", "op", "isa", "max ulp", "at x", "mean",
           "> 1 ulp", "max abs", "at x");

    const int64_t total = (int64_t)1 << 32, nchunks = total / ((int64_t)CHUNK * step) +
                                                      (total % ((int64_t)CHUNK * step) != 0);
    for (int oi = 0; oi < NOPS; oi++) {
        const op_def *o = &OPS[oi];
        if (!wanted(only, o->name)) continue;
        stat st[MAX_ISA];
        memset(st, 0, sizeof st);
        bool failed = false;
#ifdef _OPENMP
#pragma omp parallel
#endif
        {
            float *x = malloc(CHUNK * sizeof *x), *y = malloc(CHUNK * sizeof *y);
            float *ones = malloc(CHUNK * sizeof *ones);
            double *w = malloc(CHUNK * sizeof *w);
            stat loc[MAX_ISA];
            memset(loc, 0, sizeof loc);
            if (!x || !y || !ones || !w) failed = true;
            for (int64_t i = 0; i < CHUNK && ones; i++) ones[i] = 1.0f;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 4)
#endif
            for (int64_t c = 0; c < nchunks; c++) {
                if (failed) continue;
                int64_t n = 0;
                for (int64_t k = 0; k < CHUNK; k++) {
                    uint64_t bits = ((uint64_t)c * CHUNK + (uint64_t)k) * (uint64_t)step;
                    if (bits >= ((uint64_t)1 << 32)) break;
                    uint32_t b32 = (uint32_t)bits;
                    float v;
                    memcpy(&v, &b32, sizeof v);
                    if (!isfinite(v) || v < lo || v > hi) continue;
                    x[n++] = v;
                }
                if (n == 0) continue;
                for (int64_t k = 0; k < n; k++) w[k] = o->ref((double)x[k]);
                for (int j = 0; j < nisa; j++) {
                    if (!run_isa(&isas[j], o, n, y, x, ones)) {
                        failed = true;
                        break;
                    }
                    for (int64_t k = 0; k < n; k++) stat_add(&loc[j], x[k], y[k], w[k]);
                }
            }
#ifdef _OPENMP
#pragma omp critical
#endif
            for (int j = 0; j < nisa; j++) stat_merge(&st[j], &loc[j]);
            free(x);
            free(y);
            free(ones);
            free(w);
        }
        if (failed) {
            fprintf(stderr, "ulp: %s failed: %s\n", o->name, ag_last_error());
            return 1;
        }
        for (int j = 0; j < nisa; j++) {
            printf("%-11s %-7s %10.3f %15.8g %8.4f %9lld", o->name, isas[j].name, st[j].max_ulp,
                   st[j].worst_x, st[j].n ? st[j].sum_ulp / st[j].n : 0.0, (long long)st[j].over1);
            if (o->backward) printf(" %10.3f %15.8g", st[j].max_abs, st[j].worst_abs_x);
            printf("\n");
        }
        fflush(stdout);
    }
    return 0;
}
