/* SGEMM micro-kernels, one per ISA, each in a file compiled with that ISA's
 * flags (cpu_gemm.c calls them only when cpu_isa() allows): AVX2 and
 * AVX-512 on x86-64, Advanced SIMD (NEON) on aarch64.
 *
 * A kernel computes one full MR x NR tile of row-major C (leading dimension
 * ldc) from packed slivers: a holds kc groups of MR floats (column p of the A
 * rows), b holds kc groups of NR floats (row p of the B columns), both 64-byte
 * aligned. C = alpha * A B + beta * C; beta == 0 never reads C (it may hold
 * NaN). Edge tiles go through a full-size scratch tile in the caller. */
#ifndef AG_GEMM_KERNELS_H
#define AG_GEMM_KERNELS_H

#include <stdint.h>

typedef void (*cpu_gemm_ukernel)(int64_t kc, const float *a, const float *b, float *c,
                                 int64_t ldc, float alpha, float beta);

/* A direct kernel reads A in place (row i of the sliver at a + i * lda,
 * contiguous along k; all MR rows must be readable) and stores only the
 * leading mr x nr corner of its tile. */
typedef void (*cpu_gemm_ukernel_direct)(int64_t kc, const float *a, int64_t lda, const float *b,
                                        float *c, int64_t ldc, int64_t mr, int64_t nr, float alpha,
                                        float beta);

#if defined(__x86_64__)
#define CPU_GEMM_AVX2_MR 6
#define CPU_GEMM_AVX2_NR 16
void cpu_sgemm_ukernel_avx2(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                            float alpha, float beta);

#define CPU_GEMM_AVX512_MR 12
#define CPU_GEMM_AVX512_NR 32
void cpu_sgemm_ukernel_avx512(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                              float alpha, float beta);
#define CPU_GEMM_AVX512_NARROW_MR 12
#define CPU_GEMM_AVX512_NARROW_NR 16
void cpu_sgemm_ukernel_avx512_narrow(int64_t kc, const float *a, int64_t lda, const float *b,
                                     float *c, int64_t ldc, int64_t mr, int64_t nr, float alpha,
                                     float beta);
#elif defined(__aarch64__)
#define CPU_GEMM_NEON_MR 8
#define CPU_GEMM_NEON_NR 12
void cpu_sgemm_ukernel_neon(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                            float alpha, float beta);
#endif

#endif /* AG_GEMM_KERNELS_H */
