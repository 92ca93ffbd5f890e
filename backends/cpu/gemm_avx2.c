/* AVX2 + FMA SGEMM kernels: the micro-kernel holds a 6 x 16 tile of C in 12
 * ymm accumulators (12 FMAs a step of k, enough independent chains for two FMA
 * pipes of latency 4, with 12 + 2 + 1 of the 16 registers in use). The
 * kernels themselves are gemm_simd_body.h's; this file gives its primitives. */
#include "gemm_kernels.h"

#include <immintrin.h>

#define GEMM_SUFFIX avx2
#define GW 8
#define MR CPU_GEMM_AVX2_MR
#define NR CPU_GEMM_AVX2_NR
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define SMALL_ROWS(X) X(0, a0, 0) X(1, a0, 1) X(2, a0, 2) X(3, a3, 0) X(4, a3, 1) X(5, a3, 2)

typedef __m256 gv;
typedef __m256i gm;
#define gv_zero() _mm256_setzero_ps()
#define gv_set1(x) _mm256_set1_ps(x)
#define gv_bcast(p) _mm256_broadcast_ss(p)
#define gv_load(p) _mm256_loadu_ps(p)
#define gv_load_aligned(p) _mm256_load_ps(p)
#define gv_store(p, v) _mm256_storeu_ps(p, v)
#define gv_add(a, b) _mm256_add_ps(a, b)
#define gv_sub(a, b) _mm256_sub_ps(a, b)
#define gv_mul(a, b) _mm256_mul_ps(a, b)
#define gv_fma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define gv_mload(m, p) _mm256_maskload_ps(p, m)
#define gv_mstore(p, m, v) _mm256_maskstore_ps(p, m, v)

static inline gm gm_first(int64_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < GW ? n : GW)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline float gv_hsum(gv s)
{
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

/* [s0 s1 s2 s3] partial sums in each 128-bit half, then the halves added */
static inline __m128 gv_sum4(gv s0, gv s1, gv s2, gv s3)
{
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

#include "gemm_simd_body.h"
#include "wino_simd_body.h"
