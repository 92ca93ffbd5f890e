/* CPU backend internals: buffers are host memory; kernels run synchronously,
 * threaded with OpenMP. Portable C only here: ISA-specific code goes in its own
 * files (see the SIMD issue). */
#ifndef AG_CPU_H
#define AG_CPU_H

#include "backend.h"

/* OpenMP is optional: without it the pragmas vanish and kernels run serially. */
#ifdef _OPENMP
#include <omp.h>
#define OMP(...) _Pragma(#__VA_ARGS__)
#else
#define OMP(...)
#endif

/* This thread's index in the current parallel region, and the region's size. */
static inline int cpu_team_rank(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static inline int cpu_team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

struct ag_buffer {
    void *data;
    size_t bytes;     /* as requested */
    size_t cap;       /* allocated, the size class of the reuse cache */
    ag_buffer *next;  /* in the reuse cache */
};

static inline float *cpu_f32(const ag_view *v) { return (float *)v->buf->data + v->offset; }
static inline int32_t *cpu_i32(const ag_view *v) { return (int32_t *)v->buf->data + v->offset; }
static inline int64_t cpu_numel(const ag_view *v)
{
    int64_t n = 1;
    for (int d = 0; d < v->ndim; d++) n *= v->shape[d];
    return n;
}

/* Applies fn to matching runs of dst and src (same element count), walking the
 * views in a cache-friendly tiled order; the copy kernel shares it. */
typedef void (*cpu_map2_fn)(int64_t n, void *dst, int64_t ds, const void *src, int64_t ss);
void cpu_ew_map2(const ag_view *dst, const ag_view *src, cpu_map2_fn fn);

/* Instruction sets, chosen once at startup from cpuid/xgetbv (x86-64) or
 * HWCAP (aarch64); AG_CPU_ISA=scalar|avx2|avx512|neon forces a lower level.
 * Kernels for one ISA live in their own files compiled with their own flags
 * and are only called when cpu_isa() says the CPU and OS support them. */
typedef enum cpu_isa_level {
    CPU_ISA_SCALAR,
    CPU_ISA_AVX2,    /* AVX2 + FMA */
    CPU_ISA_AVX512,  /* AVX-512F */
    CPU_ISA_NEON,    /* aarch64 Advanced SIMD */
    CPU_ISA_COUNT
} cpu_isa_level;
cpu_isa_level cpu_isa(void);
const char *cpu_isa_name(cpu_isa_level isa);

/* Threads the CPU kernels use (AG_NUM_THREADS, default: all cores). */
int cpu_threads(void);

/* C[m, n] = alpha * A B + beta * C, row-major C with leading dimension ldc.
 * A(i, p) = a[i * a_rs + p * a_cs], B(p, j) = b[p * b_rs + j * b_cs]: any strides,
 * so transposes cost nothing. Cache-blocked and packed; threaded when large.
 * beta == 0 overwrites C without reading it. */
void cpu_sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t a_rs,
               int64_t a_cs, const float *b, int64_t b_rs, int64_t b_cs, float beta, float *c,
               int64_t ldc);

/* Kernels, one per ag_backend_i field (cpu_backend.c assembles the table). */
ag_buffer *cpu_alloc(void *ctx, size_t bytes);
void cpu_free(void *ctx, ag_buffer *buf);
ag_status cpu_upload(void *ctx, ag_buffer *dst, size_t off, const void *src, size_t bytes);
ag_status cpu_download(void *ctx, ag_buffer *src, size_t off, void *dst, size_t bytes);
ag_status cpu_copy(void *ctx, const ag_view *dst, const ag_view *src);
ag_status cpu_fill(void *ctx, const ag_view *dst, double value);
ag_status cpu_sync(void *ctx);
ag_status cpu_unary(void *ctx, ag_unary_op op, const float p[2], const ag_view *y, const ag_view *x);
ag_status cpu_unary_backward(void *ctx, ag_unary_op op, const float p[2], const ag_view *dx,
                             const ag_view *dy, const ag_view *x, const ag_view *y);
ag_status cpu_binary(void *ctx, ag_binary_op op, const ag_view *y, const ag_view *a, const ag_view *b);
ag_status cpu_where(void *ctx, const ag_view *y, const ag_view *cond, const ag_view *a, const ag_view *b);
ag_status cpu_reduce(void *ctx, ag_reduce_op op, const ag_view *y, const ag_view *x);
ag_status cpu_gemm(void *ctx, float alpha, float beta, const ag_view *c, const ag_view *a,
                   const ag_view *b);
ag_status cpu_softmax(void *ctx, bool log, const ag_view *y, const ag_view *x);
ag_status cpu_softmax_backward(void *ctx, bool log, const ag_view *dx, const ag_view *dy,
                               const ag_view *y);
ag_status cpu_cross_entropy(void *ctx, float smoothing, const ag_view *loss, const ag_view *logits,
                            const ag_view *labels);
ag_status cpu_cross_entropy_backward(void *ctx, float smoothing, const ag_view *dlogits,
                                     const ag_view *dloss, const ag_view *logits,
                                     const ag_view *labels);
ag_status cpu_conv2d(void *ctx, const ag_conv2d_params *p, const ag_view *y, const ag_view *x,
                     const ag_view *w);
ag_status cpu_conv2d_backward_input(void *ctx, const ag_conv2d_params *p, const ag_view *dx,
                                    const ag_view *dy, const ag_view *w);
ag_status cpu_conv2d_backward_weight(void *ctx, const ag_conv2d_params *p, const ag_view *dw,
                                     const ag_view *dy, const ag_view *x);
ag_status cpu_pool2d(void *ctx, ag_pool_op op, const ag_pool2d_params *p, const ag_view *y,
                     const ag_view *indices, const ag_view *x);
ag_status cpu_pool2d_backward(void *ctx, ag_pool_op op, const ag_pool2d_params *p,
                              const ag_view *dx, const ag_view *dy, const ag_view *indices);
ag_status cpu_layer_norm(void *ctx, const ag_norm_args *a);
ag_status cpu_layer_norm_backward(void *ctx, const ag_norm_args *a);
ag_status cpu_batch_norm(void *ctx, const ag_norm_args *a);
ag_status cpu_batch_norm_backward(void *ctx, const ag_norm_args *a);
ag_status cpu_gather(void *ctx, int axis, const ag_view *y, const ag_view *x, const ag_view *index);
ag_status cpu_scatter_add(void *ctx, int axis, const ag_view *y, const ag_view *index,
                          const ag_view *src);
ag_status cpu_rand(void *ctx, const ag_rand_args *r, const ag_view *y);
ag_status cpu_dropout(void *ctx, const ag_rand_args *r, float p, const ag_view *y,
                      const ag_view *mask, const ag_view *x);
ag_status cpu_optim_step(void *ctx, const ag_optim_args *o, const ag_view *param,
                         const ag_view *grad, const ag_view *s0, const ag_view *s1);

#endif /* AG_CPU_H */
