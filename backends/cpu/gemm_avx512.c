/* AVX-512F SGEMM micro-kernel: a 12 x 32 tile of C in 24 zmm accumulators.
 *
 * Each step of k loads two vectors of B and broadcasts 12 elements of A: 24
 * FMAs for 14 loads, enough independent chains to cover the FMA latency on two
 * 512-bit pipes, with 24 + 2 + 1 of the 32 registers in use. The accumulators
 * are named variables, not an array: GCC spills an array of vectors. */
#include "gemm_kernels.h"

#include <immintrin.h>

#define MR CPU_GEMM_AVX512_MR
#define NR CPU_GEMM_AVX512_NR
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* k steps ahead for the B prefetch: B streams from L2 */
#define PREFETCH_B 8

void cpu_sgemm_ukernel_avx512(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                              float alpha, float beta)
{
#define DECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
    ROWS(DECL)
    /* the C tile is needed at the end: start fetching it now */
#define PREF_C(i)                                                         \
    _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);               \
    _mm_prefetch((const char *)(c + i * ldc + NR - 1), _MM_HINT_T0);
    ROWS(PREF_C)
    for (int64_t p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        _mm_prefetch((const char *)(b + PREFETCH_B * NR), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + PREFETCH_B * NR + 16), _MM_HINT_T0);
#define STEP(i)                                          \
    {                                                    \
        const __m512 ai = _mm512_set1_ps(a[i]);          \
        c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);      \
        c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);      \
    }
        ROWS(STEP)
        a += MR;
        b += NR;
    }
    const __m512 va = _mm512_set1_ps(alpha);
    if (beta == 0.0f) {
#define STORE0(i)                                                     \
    _mm512_storeu_ps(c + i * ldc, _mm512_mul_ps(va, c##i##0));        \
    _mm512_storeu_ps(c + i * ldc + 16, _mm512_mul_ps(va, c##i##1));
        ROWS(STORE0)
    } else {
        const __m512 vb = _mm512_set1_ps(beta);
#define STORE1(i)                                                                              \
    _mm512_storeu_ps(c + i * ldc,                                                              \
                     _mm512_fmadd_ps(va, c##i##0, _mm512_mul_ps(vb, _mm512_loadu_ps(c + i * ldc)))); \
    _mm512_storeu_ps(c + i * ldc + 16,                                                         \
                     _mm512_fmadd_ps(va, c##i##1,                                              \
                                     _mm512_mul_ps(vb, _mm512_loadu_ps(c + i * ldc + 16))));
        ROWS(STORE1)
    }
}

/* The narrow kernel for n <= 16 (a layer's 10 outputs): a 12 x 16 tile, and A
 * read in place (row-major, row stride lda) instead of packed. With so few
 * columns each A sliver would serve one tile, so packing A would cost as much
 * as the product. Rows come from four base pointers plus lda and 2 * lda
 * offsets, which x86 addressing provides for free. Only the first mr rows and
 * nr columns of C are stored (nr by a mask), so edge tiles need no scratch. */
void cpu_sgemm_ukernel_avx512_narrow(int64_t kc, const float *a, int64_t lda, const float *b,
                                     float *c, int64_t ldc, int64_t mr, int64_t nr, float alpha,
                                     float beta)
{
#define NDECL(i) __m512 c##i = _mm512_setzero_ps();
    ROWS(NDECL)
    const float *a0 = a, *a3 = a + 3 * lda, *a6 = a + 6 * lda, *a9 = a + 9 * lda;
    for (int64_t p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_load_ps(b);
#define NFMA(i, base, off) c##i = _mm512_fmadd_ps(_mm512_set1_ps(base[off]), b0, c##i);
        NFMA(0, a0, 0) NFMA(1, a0, lda) NFMA(2, a0, 2 * lda)
        NFMA(3, a3, 0) NFMA(4, a3, lda) NFMA(5, a3, 2 * lda)
        NFMA(6, a6, 0) NFMA(7, a6, lda) NFMA(8, a6, 2 * lda)
        NFMA(9, a9, 0) NFMA(10, a9, lda) NFMA(11, a9, 2 * lda)
        a0++, a3++, a6++, a9++;
        b += 16;
    }
    const __mmask16 k = (__mmask16)((1u << nr) - 1u);
    const __m512 va = _mm512_set1_ps(alpha);
    if (beta == 0.0f) {
#define NSTORE0(i) \
    if (i < mr) _mm512_mask_storeu_ps(c + i * ldc, k, _mm512_mul_ps(va, c##i));
        ROWS(NSTORE0)
    } else {
        const __m512 vb = _mm512_set1_ps(beta);
#define NSTORE1(i)                                                                           \
    if (i < mr)                                                                              \
        _mm512_mask_storeu_ps(                                                               \
            c + i * ldc, k,                                                                  \
            _mm512_fmadd_ps(va, c##i, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(k, c + i * ldc))));
        ROWS(NSTORE1)
    }
}
