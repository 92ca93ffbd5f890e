/* AVX2 + FMA SGEMM micro-kernel: a 6 x 16 tile of C in 12 ymm accumulators.
 *
 * Each step of k loads two vectors of B and broadcasts 6 elements of A: 12 FMAs,
 * enough independent chains for two FMA pipes of latency 4, with 12 + 2 + 1 of
 * the 16 registers in use. The accumulators are named variables, not an array:
 * GCC spills an array of vectors. */
#include "gemm_kernels.h"

#include <immintrin.h>

#define MR CPU_GEMM_AVX2_MR
#define NR CPU_GEMM_AVX2_NR
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

/* k steps ahead for the B prefetch: B streams from L2 */
#define PREFETCH_B 8

void cpu_sgemm_ukernel_avx2(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                            float alpha, float beta)
{
#define DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
    ROWS(DECL)
#define PREF_C(i) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);  \
    _mm_prefetch((const char *)(c + i * ldc + NR - 1), _MM_HINT_T0);
    ROWS(PREF_C)
    for (int64_t p = 0; p < kc; p++) {
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        _mm_prefetch((const char *)(b + PREFETCH_B * NR), _MM_HINT_T0);
#define STEP(i)                                          \
    {                                                    \
        const __m256 ai = _mm256_broadcast_ss(a + i);    \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);      \
        c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);      \
    }
        ROWS(STEP)
        a += MR;
        b += NR;
    }
    const __m256 va = _mm256_set1_ps(alpha);
    if (beta == 0.0f) {
#define STORE0(i)                                                    \
    _mm256_storeu_ps(c + i * ldc, _mm256_mul_ps(va, c##i##0));       \
    _mm256_storeu_ps(c + i * ldc + 8, _mm256_mul_ps(va, c##i##1));
        ROWS(STORE0)
    } else {
        const __m256 vb = _mm256_set1_ps(beta);
#define STORE1(i)                                                                              \
    _mm256_storeu_ps(c + i * ldc,                                                              \
                     _mm256_fmadd_ps(va, c##i##0, _mm256_mul_ps(vb, _mm256_loadu_ps(c + i * ldc)))); \
    _mm256_storeu_ps(c + i * ldc + 8,                                                          \
                     _mm256_fmadd_ps(va, c##i##1, _mm256_mul_ps(vb, _mm256_loadu_ps(c + i * ldc + 8))));
        ROWS(STORE1)
    }
}
