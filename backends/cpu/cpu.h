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

/* Threads the CPU kernels use (cpu_threads.c): AG_NUM_THREADS when set,
 * otherwise every core less those other work keeps busy now. */
int cpu_threads(void);
int cpu_threads_fixed(void);    /* AG_NUM_THREADS, or 0 when unset or invalid */
/* AG_NUM_THREADS or every core, never the adaptive team: sizes work shares
 * whose boundaries change no value. Split sums take their part counts from
 * the sizes, never from a thread count. */
int cpu_plan_threads(void);
/* Tests only: cpu_threads() returns n (0: adapt again), to show that the team
 * size changes no result. */
void cpu_threads_force(int n);
int cpu_cores(void);            /* the cores this process may run on */
double cpu_threads_load(void);  /* cores other work keeps busy, smoothed (the last estimate) */
/* The policy and the parser, pure for the tests: the team for the smoothed
 * cores other work keeps busy (x 256); a /proc/stat "cpuN ..." line's CPU and
 * busy clock ticks (all but idle and iowait), false for any other line. */
int cpu_threads_choose(int cores, int others_256);
bool cpu_parse_stat_cpu(const char *line, int *cpu, long long *busy);

/* fn(arg, lo, hi) over [0, n) in nt contiguous parts [n t / nt, n (t + 1) / nt),
 * on nt threads, or on this thread alone without entering OpenMP when nt <= 1:
 * an `omp parallel if(0)` still costs libgomp a futex call once a larger team
 * has run (0.4 us here, a dozen times a batch-1 training step). */
typedef void (*cpu_parts_fn)(void *arg, int64_t lo, int64_t hi);
void cpu_run_parts(int nt, int64_t n, cpu_parts_fn fn, void *arg);

/* C[m, n] = alpha * A B + beta * C, row-major C with leading dimension ldc.
 * A(i, p) = a[i * a_rs + p * a_cs], B(p, j) = b[p * b_rs + j * b_cs]: any strides,
 * so transposes cost nothing. Cache-blocked and packed; threaded when large.
 * beta == 0 overwrites C without reading it. */
void cpu_sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t a_rs,
               int64_t a_cs, const float *b, int64_t b_rs, int64_t b_cs, float beta, float *c,
               int64_t ldc);

/* Philox block `block` of r's stream (backend.h), and a word's [0, 1) value
 * from its top 24 bits. */
static inline void cpu_philox_block(const ag_rand_args *r, int64_t block, uint32_t out[4])
{
    const uint32_t key[2] = {(uint32_t)r->seed, (uint32_t)(r->seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)(uint64_t)block, (uint32_t)((uint64_t)block >> 32),
                             (uint32_t)r->stream, (uint32_t)(r->stream >> 32)};
    ag_philox4x32(key, ctr, out);
}
static inline float cpu_u01(uint32_t w) { return (float)(w >> 8) * 0x1p-24f; }

/* Kernels, one per ag_backend_i field (cpu_backend.c assembles the table). */
AG_BACKEND_DECLARE(cpu);

#endif /* AG_CPU_H */
