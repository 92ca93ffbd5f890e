/* Vector kernels for unit-stride f32 runs, one table per instruction set
 * (ew_avx2.c, ew_avx512.c, ew_neon.c, all built from ew_simd_body.h). The portable files
 * reach them only through cpu_simd(), which is NULL when the chosen ISA has no
 * table, so the binary still runs on any CPU of the architecture. */
#ifndef AG_CPU_SIMD_H
#define AG_CPU_SIMD_H

#include "cpu.h"

/* y = f(x) over n elements; y may be x. */
typedef void (*simd_unary_fn)(int64_t n, float *y, const float *x, float p0, float p1);
/* dx = dy * f'(x); y = f(x) may be NULL (recomputed where the derivative needs it). */
typedef void (*simd_unary_bw_fn)(int64_t n, float *dx, const float *dy, const float *x,
                                 const float *y, float p0, float p1);
/* as, bs: 1 for a dense operand, 0 for one value broadcast along the run. */
typedef void (*simd_binary_fn)(int64_t n, float *y, const float *a, int64_t as, const float *b,
                               int64_t bs);

/* Everything an optimizer step needs, resolved once per step on the host. */
typedef struct cpu_optim_hp {
    float lr, wd, mom, damp, alpha, eps, b1, b2;
    float step_size, bc2_sqrt, decay, l2; /* Adam/AdamW */
    bool first, nesterov;                 /* SGD */
} cpu_optim_hp;
/* One optimizer over n elements; s0/s1 as in ag_optim_args (NULL where unused). */
typedef void (*simd_optim_fn)(int64_t n, const cpu_optim_hp *h, float *p, const float *g,
                              float *s0, float *s1);

/* Rows of softmax and cross entropy (cpu_softmax.c has the scalar set). Sums
 * are accumulated in double. */
typedef struct cpu_row_ops {
    float (*max)(const float *x, int64_t n); /* NaN if any is NaN */
    double (*exp_sum)(float *y, const float *x, int64_t n, float m); /* y = exp(x - m); y may be NULL */
    double (*lse_minus)(const float *x, int64_t n, double lse); /* sum(lse - x) */
    /* dx = g * (exp((x - m) - ls) - uni) */
    void (*ce_bw)(float *dx, const float *x, int64_t n, float m, float ls, float g, float uni);
    /* rows consecutive rows of n: y = exp(x - max) / sum (log: (x - max) -
     * log(sum)), and the backward dx = y (dy - sum(dy y)) (log: dx = dy - exp(y)
     * sum(dy)) */
    void (*softmax)(float *y, const float *x, int64_t rows, int64_t n, bool log_);
    void (*softmax_bw)(float *dx, const float *dy, const float *y, int64_t rows, int64_t n,
                       bool log_);
} cpu_row_ops;

/* The chosen ISA's rows, else the scalar ones (cpu_softmax.c). */
const cpu_row_ops *cpu_rows(void);

/* Sums for reductions (cpu_reduce.c has the scalar loops), in double. */
typedef struct cpu_reduce_ops {
    double (*sum)(const float *x, int64_t n);
    void (*col_add)(double *acc, const float *x, int64_t n); /* acc[i] += x[i] */
} cpu_reduce_ops;

/* Optimizer steps over n elements (cpu_optim.c has the scalar set). */
typedef struct cpu_optim_ops {
    simd_optim_fn sgd, rmsprop, adam;
} cpu_optim_ops;

typedef struct cpu_simd_ops {
    const char *name;
    simd_unary_fn unary[AG_UNARY_COUNT];
    simd_unary_bw_fn unary_bw[AG_UNARY_COUNT];
    simd_binary_fn binary[AG_BINARY_COUNT];
    cpu_row_ops rows;
    cpu_reduce_ops reduce;
    cpu_optim_ops optim;
} cpu_simd_ops;

#if defined(__x86_64__)
extern const cpu_simd_ops cpu_simd_avx2, cpu_simd_avx512;
#elif defined(__aarch64__)
extern const cpu_simd_ops cpu_simd_neon;
#endif

/* The table for the ISA cpu_isa() chose, or NULL: the scalar kernels then. */
static inline const cpu_simd_ops *cpu_simd(void)
{
    switch (cpu_isa()) {
#if defined(__x86_64__)
    case CPU_ISA_AVX2: return &cpu_simd_avx2;
    case CPU_ISA_AVX512: return &cpu_simd_avx512;
#elif defined(__aarch64__)
    case CPU_ISA_NEON: return &cpu_simd_neon;
#endif
    default: return NULL;
    }
}

#endif /* AG_CPU_SIMD_H */
