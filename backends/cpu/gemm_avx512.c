/* AVX-512F SGEMM kernels: the micro-kernel holds a 12 x 32 tile of C in 24 zmm
 * accumulators (24 FMAs for 14 loads a step of k, enough independent chains to
 * cover the FMA latency on two 512-bit pipes, with 24 + 2 + 1 of the 32
 * registers in use). The kernels are gemm_simd_body.h's; this file gives its
 * primitives, and the transposing packer that only AVX-512 has. */
#include "gemm_kernels.h"

#include <immintrin.h>

#define GEMM_SUFFIX avx512
#define GW 16
#define MR CPU_GEMM_AVX512_MR
#define NR CPU_GEMM_AVX512_NR
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define SMALL_ROWS(X) X(0, a0, 0) X(1, a0, 1) X(2, a0, 2) X(3, a3, 0) X(4, a3, 1) X(5, a3, 2) \
                      X(6, a6, 0) X(7, a6, 1) X(8, a6, 2) X(9, a9, 0) X(10, a9, 1) X(11, a9, 2)

typedef __m512 gv;
typedef __mmask16 gm;
#define gv_zero() _mm512_setzero_ps()
#define gv_set1(x) _mm512_set1_ps(x)
#define gv_bcast(p) _mm512_set1_ps(*(p))
#define gv_load(p) _mm512_loadu_ps(p)
#define gv_load_aligned(p) _mm512_load_ps(p)
#define gv_store(p, v) _mm512_storeu_ps(p, v)
#define gv_add(a, b) _mm512_add_ps(a, b)
#define gv_sub(a, b) _mm512_sub_ps(a, b)
#define gv_mul(a, b) _mm512_mul_ps(a, b)
#define gv_fma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define gv_mload(m, p) _mm512_maskz_loadu_ps(m, p)
#define gv_mstore(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define gv_hsum(v) _mm512_reduce_add_ps(v)

static inline gm gm_first(int64_t n)
{
    return n >= GW ? (gm)0xffff : (gm)((1u << n) - 1u);
}

/* [s0 s1 s0 s1 ...] and [s2 s3 ...] pairs, then [s0 s1 s2 s3] in each 128-bit
 * lane, then the four lanes added */
static inline __m128 gv_sum4(gv s0, gv s1, gv s2, gv s3)
{
    const __m512 t01 = _mm512_add_ps(_mm512_unpacklo_ps(s0, s1), _mm512_unpackhi_ps(s0, s1));
    const __m512 t23 = _mm512_add_ps(_mm512_unpacklo_ps(s2, s3), _mm512_unpackhi_ps(s2, s3));
    const __m512 q = _mm512_add_ps(_mm512_shuffle_ps(t01, t23, 0x44),
                                   _mm512_shuffle_ps(t01, t23, 0xee));
    return _mm_add_ps(_mm_add_ps(_mm512_castps512_ps128(q), _mm512_extractf32x4_ps(q, 1)),
                      _mm_add_ps(_mm512_extractf32x4_ps(q, 2), _mm512_extractf32x4_ps(q, 3)));
}

#include "gemm_simd_body.h"
#include "wino_simd_body.h"

/* ---- packing by 16 x 16 transposes ----------------------------------------------- */

/* dst[p * ldd + j] = src[j * ld + p] for j < nr <= 16 and p < kc: up to 16
 * rows of a matrix (contiguous along p) into a panel, 16 x 16 at a time, by
 * the usual four stages of shuffles (32-bit, 64-bit, then two of 128-bit
 * lanes); a last block of fewer than 16 p element by element. Only the nr
 * columns of dst are written, through masks. Named variables, not arrays:
 * GCC spills arrays of vectors. */
#define T16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
static void pack_t16(float *restrict dst, int64_t ldd, const float *src, int64_t ld, int64_t kc,
                     int64_t nr)
{
    const __mmask16 mj = (__mmask16)((1u << nr) - 1u);
    int64_t p0 = 0;
    for (; p0 + 16 <= kc; p0 += 16) {
#define TLOAD(i) const __m512 r##i = i < nr ? _mm512_loadu_ps(src + i * ld + p0) : _mm512_setzero_ps();
        T16(TLOAD)
#define TUNPACK(a, b) \
    const __m512 t##a = _mm512_unpacklo_ps(r##a, r##b), t##b = _mm512_unpackhi_ps(r##a, r##b);
        TUNPACK(0, 1) TUNPACK(2, 3) TUNPACK(4, 5) TUNPACK(6, 7)
        TUNPACK(8, 9) TUNPACK(10, 11) TUNPACK(12, 13) TUNPACK(14, 15)
        /* u(4g + q), lane L: rows 4g .. 4g + 3 at p = 4L + q */
#define TPAIR(g, a, b, c, d)                                                                   \
    const __m512 u##a = _mm512_shuffle_ps(t##a, t##c, 0x44), u##b = _mm512_shuffle_ps(t##a, t##c, 0xee), \
                 u##c = _mm512_shuffle_ps(t##b, t##d, 0x44), u##d = _mm512_shuffle_ps(t##b, t##d, 0xee);
        TPAIR(0, 0, 1, 2, 3) TPAIR(1, 4, 5, 6, 7) TPAIR(2, 8, 9, 10, 11) TPAIR(3, 12, 13, 14, 15)
#define TLANES(q, a, b, c, d)                                                          \
    {                                                                                  \
        const __m512 v0 = _mm512_shuffle_f32x4(u##a, u##b, 0x44);                      \
        const __m512 v1 = _mm512_shuffle_f32x4(u##a, u##b, 0xee);                      \
        const __m512 v2 = _mm512_shuffle_f32x4(u##c, u##d, 0x44);                      \
        const __m512 v3 = _mm512_shuffle_f32x4(u##c, u##d, 0xee);                      \
        float *dq = dst + (p0 + q) * ldd;                                              \
        _mm512_mask_storeu_ps(dq, mj, _mm512_shuffle_f32x4(v0, v2, 0x88));             \
        _mm512_mask_storeu_ps(dq + 4 * ldd, mj, _mm512_shuffle_f32x4(v0, v2, 0xdd));   \
        _mm512_mask_storeu_ps(dq + 8 * ldd, mj, _mm512_shuffle_f32x4(v1, v3, 0x88));   \
        _mm512_mask_storeu_ps(dq + 12 * ldd, mj, _mm512_shuffle_f32x4(v1, v3, 0xdd));  \
    }
        /* u0, u1, u2, u3 hold q = 0..3 of rows 0-3 (u4.. of rows 4-7, ...) */
        TLANES(0, 0, 4, 8, 12) TLANES(1, 1, 5, 9, 13) TLANES(2, 2, 6, 10, 14) TLANES(3, 3, 7, 11, 15)
    }
    for (; p0 < kc; p0++)
        for (int64_t j = 0; j < nr; j++) dst[p0 * ldd + j] = src[j * ld + p0];
}

void cpu_gemm_pack_t_avx512(float *dst, int64_t ldd, const float *src, int64_t ld, int64_t kc,
                            int64_t nr)
{
    for (int64_t j = 0; j < nr; j += 16)
        pack_t16(dst + j, ldd, src + j * ld, ld, kc, nr - j < 16 ? nr - j : 16);
}
