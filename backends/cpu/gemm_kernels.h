/* SGEMM micro-kernels, one per ISA, each in a file compiled with that ISA's
 * flags (cpu_gemm.c calls them only when cpu_isa() allows): AVX2 and
 * AVX-512 on x86-64, Advanced SIMD (NEON) on aarch64.
 *
 * A kernel computes one full MR x NR tile of row-major C (leading dimension
 * ldc) from packed slivers: a holds kc groups of MR floats (column p of the A
 * rows), b holds kc groups of NR floats (row p of the B columns), both 64-byte
 * aligned. C = alpha * A B + beta * C; beta == 0 never reads C (it may hold
 * NaN). Edge tiles go to the ISA's small kernels below, or (without them)
 * through a full-size scratch tile in the caller. Besides: small kernels,
 * matrix-vector kernels and a transposing packer, each with its contract. */
#ifndef AG_GEMM_KERNELS_H
#define AG_GEMM_KERNELS_H

#include <stdint.h>

typedef void (*cpu_gemm_ukernel)(int64_t kc, const float *a, const float *b, float *c,
                                 int64_t ldc, float alpha, float beta);

/* A small kernel reads both operands in place and computes C[0:mr, 0:n] for
 * any mr <= MR and any n, in tiles of at most MR x NR: A(i, p) = a[i * a_rs +
 * p * a_cs] with any strides (only rows i < mr are read), B(p, j) = b[p * ldb
 * + j] (only columns j < n are read), and only those mr x n elements of C are
 * written. It serves products too small to repay packing (a sliver of rows
 * across all its columns, or one strip), products whose A would be used by
 * one tile only, and the edge tiles of packed panels (a_rs 1, a_cs MR, ldb NR),
 * so no edge goes through a scratch tile. */
typedef void (*cpu_gemm_small)(int64_t k, const float *a, int64_t a_rs, int64_t a_cs,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int64_t mr,
                               int64_t n, float alpha, float beta);

/* Packing by transposes: dst[p * ldd + j] = src[j * ld + p] for j < nr, p < kc
 * (rows of a matrix contiguous along p into a panel); writes only those. */
typedef void (*cpu_gemm_pack_t)(float *dst, int64_t ldd, const float *src, int64_t ld, int64_t kc,
                                int64_t nr);

/* Matrix-vector products y[t * ys] = alpha * sum_p M(t, p) x(p) + beta * y[t * ys],
 * t < len, p < k (beta == 0 never reads y). Rows: M(t, p) = mat[t * ld + p] and
 * x(p) = x[p] (dot products). Columns: M(t, p) = mat[p * ld + t] and x(p) =
 * x[p * xs] (a block of outputs in registers while the rows of mat stream by).
 * Splitting the outputs between calls at multiples of 16 (as cpu_gemm.c's
 * threads do) does not change any output's order of summation. */
typedef void (*cpu_gemv_rows)(int64_t len, int64_t k, const float *mat, int64_t ld,
                              const float *x, float *y, int64_t ys, float alpha, float beta);
typedef void (*cpu_gemv_cols)(int64_t len, int64_t k, const float *mat, int64_t ld,
                              const float *x, int64_t xs, float *y, int64_t ys, float alpha,
                              float beta);
/* Rank-1 product (k == 1): c[i * ldc + j] = alpha * (a[i * a_rs] * b[j]) (+ beta * c),
 * each product formed as the small kernels form it (an FMA onto zero), so the
 * bits do not depend on which path ran. */
typedef void (*cpu_ger)(int64_t m, int64_t n, const float *a, int64_t a_rs, const float *b,
                        float *c, int64_t ldc, float alpha, float beta);

/* Winograd F(2x2, 5x5) tile transforms (wino_simd_body.h; nc a multiple of the
 * ISA's vector width). In: the 36 values B^T d B of the 6 x 6 tile d(i, j) =
 * src[i * rs + j * cs + c], value v to dst[v * ds + c]. Out: the 2 x 2 outputs
 * A^T m A of m(v) = src[v * ss + c], output (i, j) to dst[i * dsi + j * dsj + c]. */
typedef void (*cpu_wino_in_fn)(const float *src, int64_t rs, int64_t cs, int64_t nc, float *dst,
                               int64_t ds);
typedef void (*cpu_wino_out_fn)(const float *src, int64_t ss, int64_t nc, float *dst, int64_t dsi,
                                int64_t dsj);
/* The weight gradient's: the 36 values A D A^T of the 2 x 2 block of output
 * gradients D(i, j) = src[i * rs + j * cs + c], value v to dst[v * ds + c]. */
typedef cpu_wino_in_fn cpu_wino_dout_fn;
#define CPU_WINO_DECLARE(isa)                                                                    \
    void cpu_wino_in_##isa(const float *src, int64_t rs, int64_t cs, int64_t nc, float *dst,     \
                           int64_t ds);                                                          \
    void cpu_wino_out_##isa(const float *src, int64_t ss, int64_t nc, float *dst, int64_t dsi,   \
                            int64_t dsj);                                                        \
    void cpu_wino_dout_##isa(const float *src, int64_t rs, int64_t cs, int64_t nc, float *dst,   \
                             int64_t ds);

#if defined(__x86_64__)
#define CPU_GEMM_AVX2_MR 6
#define CPU_GEMM_AVX2_NR 16
void cpu_sgemm_ukernel_avx2(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                            float alpha, float beta);
void cpu_sgemm_small_avx2(int64_t k, const float *a, int64_t a_rs, int64_t a_cs, const float *b,
                          int64_t ldb, float *c, int64_t ldc, int64_t mr, int64_t n, float alpha,
                          float beta);
void cpu_sgemv_rows_avx2(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                         float *y, int64_t ys, float alpha, float beta);
void cpu_sgemv_cols_avx2(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                         int64_t xs, float *y, int64_t ys, float alpha, float beta);
void cpu_sger_avx2(int64_t m, int64_t n, const float *a, int64_t a_rs, const float *b, float *c,
                   int64_t ldc, float alpha, float beta);
CPU_WINO_DECLARE(avx2)

#define CPU_GEMM_AVX512_MR 12
#define CPU_GEMM_AVX512_NR 32
void cpu_sgemm_ukernel_avx512(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                              float alpha, float beta);
void cpu_sgemm_small_avx512(int64_t k, const float *a, int64_t a_rs, int64_t a_cs, const float *b,
                            int64_t ldb, float *c, int64_t ldc, int64_t mr, int64_t n, float alpha,
                            float beta);
void cpu_sgemv_rows_avx512(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                           float *y, int64_t ys, float alpha, float beta);
void cpu_sgemv_cols_avx512(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                           int64_t xs, float *y, int64_t ys, float alpha, float beta);
void cpu_sger_avx512(int64_t m, int64_t n, const float *a, int64_t a_rs, const float *b, float *c,
                     int64_t ldc, float alpha, float beta);
CPU_WINO_DECLARE(avx512)
void cpu_gemm_pack_t_avx512(float *dst, int64_t ldd, const float *src, int64_t ld, int64_t kc,
                            int64_t nr);
#elif defined(__aarch64__)
#define CPU_GEMM_NEON_MR 8
#define CPU_GEMM_NEON_NR 12
void cpu_sgemm_ukernel_neon(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                            float alpha, float beta);
void cpu_sgemv_rows_neon(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                         float *y, int64_t ys, float alpha, float beta);
void cpu_sgemv_cols_neon(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                         int64_t xs, float *y, int64_t ys, float alpha, float beta);
#endif

#endif /* AG_GEMM_KERNELS_H */
