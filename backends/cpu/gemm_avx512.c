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

/* ---- kernels that read the operands in place --------------------------------- */

/* The small kernels: C[0:mr, 0:n] for mr <= 12 and any n, in 12 x 32 tiles
 * (fewer rows, fewer columns through masks), A read in place with any
 * strides, B rows read in place (unit column stride). One variant per row
 * count R, so an edge sliver computes only its own rows: GCC drops the code of
 * the rows i >= R once R is a constant. Rows are addressed from four base
 * pointers plus lda and 2 * lda, which x86 addressing provides. */
#define SMALL_ROWS(X) X(0, a0, 0) X(1, a0, 1) X(2, a0, 2) X(3, a3, 0) X(4, a3, 1) X(5, a3, 2) \
                      X(6, a6, 0) X(7, a6, 1) X(8, a6, 2) X(9, a9, 0) X(10, a9, 1) X(11, a9, 2)

static inline __attribute__((always_inline)) void
small_tile(const int R, const int NV, int64_t k, const float *a, int64_t a_rs, int64_t a_cs,
           const float *b, int64_t ldb, float *c, int64_t ldc, int64_t nr, float alpha, float beta)
{
    const __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1u);
    const __mmask16 m1 = nr >= 32 ? (__mmask16)0xffff
                         : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1u) : (__mmask16)0;
#define SDECL(i, base, o) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
    SMALL_ROWS(SDECL)
    const int64_t lda2 = 2 * a_rs;
    const float *a0 = a, *a3 = R > 3 ? a + 3 * a_rs : a, *a6 = R > 6 ? a + 6 * a_rs : a,
                *a9 = R > 9 ? a + 9 * a_rs : a;
    for (int64_t p = 0; p < k; p++) {
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        const __m512 b1 = NV > 1 ? _mm512_maskz_loadu_ps(m1, b + 16) : b0;
#define SOFF(o) ((o) == 0 ? 0 : (o) == 1 ? a_rs : lda2)
#define SFMA(i, base, o)                                              \
    if (i < R) {                                                      \
        const __m512 ai = _mm512_set1_ps(base[SOFF(o)]);              \
        c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                   \
        if (NV > 1) c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);       \
    }
        SMALL_ROWS(SFMA)
        a0 += a_cs;
        if (R > 3) a3 += a_cs;
        if (R > 6) a6 += a_cs;
        if (R > 9) a9 += a_cs;
        b += ldb;
    }
    /* alpha == 1 (every product of the backend op) skips the scaling */
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const int mode = (beta != 0.0f) * 2 + (alpha != 1.0f);
#define SPUT(ptr, mk, acc)                                                                     \
    switch (mode) {                                                                            \
    case 0: _mm512_mask_storeu_ps(ptr, mk, acc); break;                                        \
    case 1: _mm512_mask_storeu_ps(ptr, mk, _mm512_mul_ps(va, acc)); break;                     \
    case 2:                                                                                    \
        _mm512_mask_storeu_ps(ptr, mk, _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mk, ptr), acc)); \
        break;                                                                                 \
    default:                                                                                   \
        _mm512_mask_storeu_ps(                                                                 \
            ptr, mk,                                                                           \
            _mm512_fmadd_ps(va, acc, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mk, ptr))));      \
    }
#define SSTORE(i, base, o)                                      \
    if (i < R) {                                                \
        SPUT(c + i * ldc, m0, c##i##0)                          \
        if (NV > 1) SPUT(c + i * ldc + 16, m1, c##i##1)         \
    }
    SMALL_ROWS(SSTORE)
}

/* R rows across n columns: whole strips of 32, then the rest in one or two
 * vectors. The strips share the setup of the A rows. */
#define SMALL_VARIANT(R)                                                                      \
    static void small_##R(int64_t k, const float *a, int64_t a_rs, int64_t a_cs,              \
                          const float *b, int64_t ldb, float *c, int64_t ldc, int64_t n,       \
                          float alpha, float beta)                                            \
    {                                                                                         \
        int64_t j = 0;                                                                        \
        for (; j + 32 <= n; j += 32)                                                          \
            small_tile(R, 2, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, 32, alpha, beta);      \
        if (n - j > 16)                                                                       \
            small_tile(R, 2, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, n - j, alpha, beta);   \
        else if (n > j)                                                                       \
            small_tile(R, 1, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, n - j, alpha, beta);   \
    }
SMALL_VARIANT(1) SMALL_VARIANT(2) SMALL_VARIANT(3) SMALL_VARIANT(4) SMALL_VARIANT(5)
SMALL_VARIANT(6) SMALL_VARIANT(7) SMALL_VARIANT(8) SMALL_VARIANT(9) SMALL_VARIANT(10)
SMALL_VARIANT(11) SMALL_VARIANT(12)

typedef void (*small_fn)(int64_t, const float *, int64_t, int64_t, const float *, int64_t, float *,
                         int64_t, int64_t, float, float);
static const small_fn small_fns[12] = {small_1, small_2, small_3, small_4,  small_5,  small_6,
                                       small_7, small_8, small_9, small_10, small_11, small_12};

void cpu_sgemm_small_avx512(int64_t k, const float *a, int64_t a_rs, int64_t a_cs, const float *b,
                            int64_t ldb, float *c, int64_t ldc, int64_t mr, int64_t n, float alpha,
                            float beta)
{
    small_fns[mr - 1](k, a, a_rs, a_cs, b, ldb, c, ldc, n, alpha, beta);
}

/* y[t * ys] = alpha * M(t, :) . x + beta * y[t * ys] for rows of M contiguous
 * (M(t, p) = mat[t * ld + p]). Four rows at a time share the loads of x; their
 * four sums come out of one transposing reduction. */
static inline void gemv_store4(__m128 s, float *y, int64_t ys, float alpha, float beta)
{
    s = _mm_mul_ps(_mm_set1_ps(alpha), s);
    if (ys == 1) {
        if (beta != 0.0f) s = _mm_fmadd_ps(_mm_set1_ps(beta), _mm_loadu_ps(y), s);
        _mm_storeu_ps(y, s);
        return;
    }
    float v[4];
    _mm_storeu_ps(v, s);
    for (int i = 0; i < 4; i++) y[i * ys] = beta == 0.0f ? v[i] : v[i] + beta * y[i * ys];
}

void cpu_sgemv_rows_avx512(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                           float *y, int64_t ys, float alpha, float beta)
{
    const __mmask16 mt = (__mmask16)((1u << (k & 15)) - 1u);
    const int64_t k16 = k & ~(int64_t)15;
    int64_t t = 0;
    for (; t + 4 <= len; t += 4) {
        const float *r0 = mat + t * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        __m512 u0 = s0, u1 = s0, u2 = s0, u3 = s0;
        int64_t p = 0;
        for (; p + 32 <= k; p += 32) {
            const __m512 x0 = _mm512_loadu_ps(x + p), x1 = _mm512_loadu_ps(x + p + 16);
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + p), x0, s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1 + p), x0, s1);
            s2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2 + p), x0, s2);
            s3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3 + p), x0, s3);
            u0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + p + 16), x1, u0);
            u1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1 + p + 16), x1, u1);
            u2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2 + p + 16), x1, u2);
            u3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3 + p + 16), x1, u3);
        }
        if (p < k16) {
            const __m512 x0 = _mm512_loadu_ps(x + p);
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + p), x0, s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1 + p), x0, s1);
            s2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2 + p), x0, s2);
            s3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3 + p), x0, s3);
            p += 16;
        }
        if (p < k) {
            const __m512 x0 = _mm512_maskz_loadu_ps(mt, x + p);
            u0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, r0 + p), x0, u0);
            u1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, r1 + p), x0, u1);
            u2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, r2 + p), x0, u2);
            u3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, r3 + p), x0, u3);
        }
        s0 = _mm512_add_ps(s0, u0);
        s1 = _mm512_add_ps(s1, u1);
        s2 = _mm512_add_ps(s2, u2);
        s3 = _mm512_add_ps(s3, u3);
        /* [s0 s1 s0 s1 ...] and [s2 s3 ...] pairs, then [s0 s1 s2 s3] in each
         * 128-bit lane, then the four lanes added */
        const __m512 t01 = _mm512_add_ps(_mm512_unpacklo_ps(s0, s1), _mm512_unpackhi_ps(s0, s1));
        const __m512 t23 = _mm512_add_ps(_mm512_unpacklo_ps(s2, s3), _mm512_unpackhi_ps(s2, s3));
        const __m512 q = _mm512_add_ps(_mm512_shuffle_ps(t01, t23, 0x44),
                                       _mm512_shuffle_ps(t01, t23, 0xee));
        const __m128 r = _mm_add_ps(
            _mm_add_ps(_mm512_castps512_ps128(q), _mm512_extractf32x4_ps(q, 1)),
            _mm_add_ps(_mm512_extractf32x4_ps(q, 2), _mm512_extractf32x4_ps(q, 3)));
        gemv_store4(r, y + t * ys, ys, alpha, beta);
    }
    for (; t < len; t++) {
        const float *r0 = mat + t * ld;
        __m512 s0 = _mm512_setzero_ps(), u0 = s0;
        int64_t p = 0;
        for (; p + 32 <= k; p += 32) {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + p), _mm512_loadu_ps(x + p), s0);
            u0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + p + 16), _mm512_loadu_ps(x + p + 16), u0);
        }
        if (p < k16) {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + p), _mm512_loadu_ps(x + p), s0);
            p += 16;
        }
        if (p < k)
            u0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, r0 + p), _mm512_maskz_loadu_ps(mt, x + p),
                                 u0);
        const float s = alpha * _mm512_reduce_add_ps(_mm512_add_ps(s0, u0));
        y[t * ys] = beta == 0.0f ? s : s + beta * y[t * ys];
    }
}

/* y[t * ys] = alpha * sum_p M(t, p) x[p * xs] + beta * y[t * ys] for columns of
 * M contiguous (M(t, p) = mat[p * ld + t]): blocks of up to 128 outputs in
 * registers while k streams by. The rows of M are taken four at a time, g =
 * x0 m0 + x1 m1 + x2 m2 + x3 m3 (four independent chains of FMAs for a
 * narrow block, where one chain would wait on its latency), then s += g: one
 * order for every output, whatever block holds it. */

/* g for the 16 outputs at t (mask mk) from rows r (rows r + i * ld, nrow of them) */
static inline __attribute__((always_inline)) __m512
group_rows(const float *r, int64_t ld, int nrow, __m512 x0, __m512 x1, __m512 x2, __m512 x3,
           __mmask16 mk, int full)
{
#define GLD(ptr) (full ? _mm512_loadu_ps(ptr) : _mm512_maskz_loadu_ps(mk, ptr))
    __m512 g = _mm512_mul_ps(x0, GLD(r));
    if (nrow > 1) g = _mm512_fmadd_ps(x1, GLD(r + ld), g);
    if (nrow > 2) g = _mm512_fmadd_ps(x2, GLD(r + 2 * ld), g);
    if (nrow > 3) g = _mm512_fmadd_ps(x3, GLD(r + 3 * ld), g);
    return g;
}

static inline __attribute__((always_inline)) void
gemv_cols_block(const int NV, int64_t nt, int64_t k, const float *mat, int64_t ld, const float *x,
                int64_t xs, float *y, int64_t ys, float alpha, float beta)
{
    const int64_t rem = nt - 16 * (NV - 1);
    const __mmask16 ml = rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1u);
#define GV(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define GDECL(j) __m512 s##j = _mm512_setzero_ps();
    GV(GDECL)
    for (int64_t p = 0; p < k; p += 4) {
        const int nrow = k - p >= 4 ? 4 : (int)(k - p);
        const __m512 x0 = _mm512_set1_ps(x[p * xs]);
        const __m512 x1 = nrow > 1 ? _mm512_set1_ps(x[(p + 1) * xs]) : x0;
        const __m512 x2 = nrow > 2 ? _mm512_set1_ps(x[(p + 2) * xs]) : x0;
        const __m512 x3 = nrow > 3 ? _mm512_set1_ps(x[(p + 3) * xs]) : x0;
        const float *row = mat + p * ld;
        if (nrow == 4) {
#define GADD4(j)                                                                               \
    if (j < NV)                                                                                \
        s##j = _mm512_add_ps(s##j, group_rows(row + 16 * j, ld, 4, x0, x1, x2, x3,             \
                                              j == NV - 1 ? ml : 0xffff, j < NV - 1));
            GV(GADD4)
        } else {
#define GADDN(j)                                                                               \
    if (j < NV)                                                                                \
        s##j = _mm512_add_ps(s##j, group_rows(row + 16 * j, ld, nrow, x0, x1, x2, x3,          \
                                              j == NV - 1 ? ml : 0xffff, j < NV - 1));
            GV(GADDN)
        }
    }
    const __m512 va = _mm512_set1_ps(alpha);
    if (ys == 1) {
#define GSTORE(j)                                                                           \
    if (j < NV) {                                                                           \
        const __mmask16 mj = j == NV - 1 ? ml : (__mmask16)0xffff;                         \
        __m512 v = _mm512_mul_ps(va, s##j);                                                 \
        if (beta != 0.0f)                                                                   \
            v = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mj, y + 16 * j), v); \
        _mm512_mask_storeu_ps(y + 16 * j, mj, v);                                           \
    }
        GV(GSTORE)
        return;
    }
    float v[128];
#define GSPILL(j) if (j < NV) _mm512_storeu_ps(v + 16 * j, _mm512_mul_ps(va, s##j));
    GV(GSPILL)
    for (int64_t t = 0; t < nt; t++) y[t * ys] = beta == 0.0f ? v[t] : v[t] + beta * y[t * ys];
}

void cpu_sgemv_cols_avx512(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                           int64_t xs, float *y, int64_t ys, float alpha, float beta)
{
    int64_t t = 0;
    for (; t + 128 <= len; t += 128)
        gemv_cols_block(8, 128, k, mat + t, ld, x, xs, y + t * ys, ys, alpha, beta);
    const int64_t rem = len - t;
    mat += t;
    y += t * ys;
    switch ((rem + 15) / 16) {
    case 0: break;
    case 1: gemv_cols_block(1, rem, k, mat, ld, x, xs, y, ys, alpha, beta); break;
    case 2: gemv_cols_block(2, rem, k, mat, ld, x, xs, y, ys, alpha, beta); break;
    case 3: gemv_cols_block(3, rem, k, mat, ld, x, xs, y, ys, alpha, beta); break;
    case 4: gemv_cols_block(4, rem, k, mat, ld, x, xs, y, ys, alpha, beta); break;
    case 5: gemv_cols_block(5, rem, k, mat, ld, x, xs, y, ys, alpha, beta); break;
    case 6: gemv_cols_block(6, rem, k, mat, ld, x, xs, y, ys, alpha, beta); break;
    case 7: gemv_cols_block(7, rem, k, mat, ld, x, xs, y, ys, alpha, beta); break;
    default: gemv_cols_block(8, rem, k, mat, ld, x, xs, y, ys, alpha, beta); break;
    }
}

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
