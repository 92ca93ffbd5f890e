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

/* ---- kernels that read the operands in place --------------------------------- */

/* The small kernels: C[0:mr, 0:n] for mr <= 6 and any n, in 6 x 16 tiles, A
 * read in place with any strides, B rows read in place (unit column stride).
 * One variant per row count R, so an edge sliver computes only its own rows
 * (GCC drops the rows i >= R once R is a constant). Partial columns are loaded
 * and stored through masks, which never touch the masked elements; whole ones
 * with plain loads, which are cheaper. */
#define SMALL_ROWS(X) X(0, a0, 0) X(1, a0, 1) X(2, a0, 2) X(3, a3, 0) X(4, a3, 1) X(5, a3, 2)

static inline __m256i lane_mask(int64_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __attribute__((always_inline)) void
small_tile(const int R, const int NV, const int FULL, int64_t k, const float *a, int64_t a_rs,
           int64_t a_cs, const float *b, int64_t ldb, float *c, int64_t ldc, int64_t nr,
           float alpha, float beta)
{
    /* NV == 2: the first vector is whole, the second holds nr - 8 */
    const __m256i mk = lane_mask(NV > 1 ? nr - 8 : nr);
#define SDECL(i, base, o) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
    SMALL_ROWS(SDECL)
    const int64_t lda2 = 2 * a_rs;
    const float *a0 = a, *a3 = R > 3 ? a + 3 * a_rs : a;
    for (int64_t p = 0; p < k; p++) {
        __m256 b0, b1;
        if (NV > 1) {
            b0 = _mm256_loadu_ps(b);
            b1 = FULL ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, mk);
        } else {
            b0 = FULL ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, mk);
            b1 = b0;
        }
#define SOFF(o) ((o) == 0 ? 0 : (o) == 1 ? a_rs : lda2)
#define SFMA(i, base, o)                                              \
    if (i < R) {                                                      \
        const __m256 ai = _mm256_broadcast_ss(base + SOFF(o));        \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                   \
        if (NV > 1) c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);       \
    }
        SMALL_ROWS(SFMA)
        a0 += a_cs;
        if (R > 3) a3 += a_cs;
        b += ldb;
    }
    /* alpha == 1 (every product of the backend op) skips the scaling */
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const int one = alpha == 1.0f;
    /* one vector of row i: v = alpha * acc (+ beta * C), stored whole or masked */
#define SPUT(ptr, acc, last)                                                                    \
    {                                                                                           \
        __m256 v = one ? acc : _mm256_mul_ps(va, acc);                                          \
        if (FULL || !(last)) {                                                                  \
            if (beta != 0.0f) v = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ptr), v);                 \
            _mm256_storeu_ps(ptr, v);                                                           \
        } else {                                                                                \
            if (beta != 0.0f) v = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ptr, mk), v);          \
            _mm256_maskstore_ps(ptr, mk, v);                                                    \
        }                                                                                       \
    }
#define SSTORE(i, base, o)                                  \
    if (i < R) {                                            \
        SPUT(c + i * ldc, c##i##0, NV == 1)                 \
        if (NV > 1) SPUT(c + i * ldc + 8, c##i##1, 1)       \
    }
    SMALL_ROWS(SSTORE)
}

/* R rows across n columns: whole strips of 16, then the rest in one or two
 * vectors. The strips share the setup of the A rows. */
#define SMALL_VARIANT(R)                                                                       \
    static void small_##R(int64_t k, const float *a, int64_t a_rs, int64_t a_cs,               \
                          const float *b, int64_t ldb, float *c, int64_t ldc, int64_t n,        \
                          float alpha, float beta)                                             \
    {                                                                                          \
        int64_t j = 0;                                                                         \
        for (; j + 16 <= n; j += 16)                                                           \
            small_tile(R, 2, 1, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, 16, alpha, beta);    \
        if (n - j > 8)                                                                         \
            small_tile(R, 2, 0, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, n - j, alpha, beta); \
        else if (n - j == 8)                                                                   \
            small_tile(R, 1, 1, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, 8, alpha, beta);     \
        else if (n > j)                                                                        \
            small_tile(R, 1, 0, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, n - j, alpha, beta); \
    }
SMALL_VARIANT(1) SMALL_VARIANT(2) SMALL_VARIANT(3) SMALL_VARIANT(4) SMALL_VARIANT(5)
SMALL_VARIANT(6)

typedef void (*small_fn)(int64_t, const float *, int64_t, int64_t, const float *, int64_t, float *,
                         int64_t, int64_t, float, float);
static const small_fn small_fns[6] = {small_1, small_2, small_3, small_4, small_5, small_6};

void cpu_sgemm_small_avx2(int64_t k, const float *a, int64_t a_rs, int64_t a_cs, const float *b,
                          int64_t ldb, float *c, int64_t ldc, int64_t mr, int64_t n, float alpha,
                          float beta)
{
    small_fns[mr - 1](k, a, a_rs, a_cs, b, ldb, c, ldc, n, alpha, beta);
}

/* y[t * ys] = alpha * M(t, :) . x + beta * y[t * ys] for rows of M contiguous:
 * four rows at a time share the loads of x, and their sums come out of one
 * reduction by horizontal adds. */
static inline float hsum8(__m256 s)
{
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

void cpu_sgemv_rows_avx2(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                         float *y, int64_t ys, float alpha, float beta)
{
    const __m256i mt = lane_mask(k & 7);
    const int64_t k8 = k & ~(int64_t)7;
    int64_t t = 0;
    for (; t + 4 <= len; t += 4) {
        const float *r0 = mat + t * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        __m256 u0 = s0, u1 = s0, u2 = s0, u3 = s0;
        int64_t p = 0;
        for (; p + 16 <= k; p += 16) {
            const __m256 x0 = _mm256_loadu_ps(x + p), x1 = _mm256_loadu_ps(x + p + 8);
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + p), x0, s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1 + p), x0, s1);
            s2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2 + p), x0, s2);
            s3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3 + p), x0, s3);
            u0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + p + 8), x1, u0);
            u1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1 + p + 8), x1, u1);
            u2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2 + p + 8), x1, u2);
            u3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3 + p + 8), x1, u3);
        }
        if (p < k8) {
            const __m256 x0 = _mm256_loadu_ps(x + p);
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + p), x0, s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1 + p), x0, s1);
            s2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2 + p), x0, s2);
            s3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3 + p), x0, s3);
            p += 8;
        }
        if (p < k) {
            const __m256 x0 = _mm256_maskload_ps(x + p, mt);
            u0 = _mm256_fmadd_ps(_mm256_maskload_ps(r0 + p, mt), x0, u0);
            u1 = _mm256_fmadd_ps(_mm256_maskload_ps(r1 + p, mt), x0, u1);
            u2 = _mm256_fmadd_ps(_mm256_maskload_ps(r2 + p, mt), x0, u2);
            u3 = _mm256_fmadd_ps(_mm256_maskload_ps(r3 + p, mt), x0, u3);
        }
        /* [s0 s1 s2 s3] partial sums in each 128-bit half, then the halves added */
        const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(_mm256_add_ps(s0, u0), _mm256_add_ps(s1, u1)),
                                        _mm256_hadd_ps(_mm256_add_ps(s2, u2), _mm256_add_ps(s3, u3)));
        __m128 r = _mm_mul_ps(_mm_set1_ps(alpha), _mm_add_ps(_mm256_castps256_ps128(h),
                                                             _mm256_extractf128_ps(h, 1)));
        float *yt = y + t * ys;
        if (ys == 1) {
            if (beta != 0.0f) r = _mm_fmadd_ps(_mm_set1_ps(beta), _mm_loadu_ps(yt), r);
            _mm_storeu_ps(yt, r);
        } else {
            float v[4];
            _mm_storeu_ps(v, r);
            for (int i = 0; i < 4; i++)
                yt[i * ys] = beta == 0.0f ? v[i] : v[i] + beta * yt[i * ys];
        }
    }
    for (; t < len; t++) {
        const float *r0 = mat + t * ld;
        __m256 s0 = _mm256_setzero_ps(), u0 = s0;
        int64_t p = 0;
        for (; p + 16 <= k; p += 16) {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + p), _mm256_loadu_ps(x + p), s0);
            u0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + p + 8), _mm256_loadu_ps(x + p + 8), u0);
        }
        if (p < k8) {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + p), _mm256_loadu_ps(x + p), s0);
            p += 8;
        }
        if (p < k)
            u0 = _mm256_fmadd_ps(_mm256_maskload_ps(r0 + p, mt), _mm256_maskload_ps(x + p, mt), u0);
        const float s = alpha * hsum8(_mm256_add_ps(s0, u0));
        y[t * ys] = beta == 0.0f ? s : s + beta * y[t * ys];
    }
}

/* y[t * ys] = alpha * sum_p M(t, p) x[p * xs] + beta * y[t * ys] for columns of
 * M contiguous (M(t, p) = mat[p * ld + t]): blocks of up to 64 outputs in
 * registers while k streams by. The rows of M are taken four at a time, g =
 * x0 m0 + x1 m1 + x2 m2 + x3 m3 (four independent chains of FMAs for a
 * narrow block, where one chain would wait on its latency), then s += g: one
 * order for every output, whatever block holds it. */
static inline __attribute__((always_inline)) __m256
group_rows(const float *r, int64_t ld, int nrow, __m256 x0, __m256 x1, __m256 x2, __m256 x3,
           __m256i mk, int full)
{
#define GLD(ptr) (full ? _mm256_loadu_ps(ptr) : _mm256_maskload_ps(ptr, mk))
    __m256 g = _mm256_mul_ps(x0, GLD(r));
    if (nrow > 1) g = _mm256_fmadd_ps(x1, GLD(r + ld), g);
    if (nrow > 2) g = _mm256_fmadd_ps(x2, GLD(r + 2 * ld), g);
    if (nrow > 3) g = _mm256_fmadd_ps(x3, GLD(r + 3 * ld), g);
    return g;
}

static inline __attribute__((always_inline)) void
gemv_cols_block(const int NV, int64_t nt, int64_t k, const float *mat, int64_t ld, const float *x,
                int64_t xs, float *y, int64_t ys, float alpha, float beta)
{
    const int64_t rem = nt - 8 * (NV - 1);
    const __m256i ml = lane_mask(rem);
    const int last_full = rem >= 8;
#define GV(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define GDECL(j) __m256 s##j = _mm256_setzero_ps();
    GV(GDECL)
    for (int64_t p = 0; p < k; p += 4) {
        const int nrow = k - p >= 4 ? 4 : (int)(k - p);
        const __m256 x0 = _mm256_broadcast_ss(x + p * xs);
        const __m256 x1 = nrow > 1 ? _mm256_broadcast_ss(x + (p + 1) * xs) : x0;
        const __m256 x2 = nrow > 2 ? _mm256_broadcast_ss(x + (p + 2) * xs) : x0;
        const __m256 x3 = nrow > 3 ? _mm256_broadcast_ss(x + (p + 3) * xs) : x0;
        const float *row = mat + p * ld;
        if (nrow == 4) {
#define GADD4(j)                                                                               \
    if (j < NV)                                                                                \
        s##j = _mm256_add_ps(s##j, group_rows(row + 8 * j, ld, 4, x0, x1, x2, x3, ml,          \
                                              j < NV - 1 || last_full));
            GV(GADD4)
        } else {
#define GADDN(j)                                                                               \
    if (j < NV)                                                                                \
        s##j = _mm256_add_ps(s##j, group_rows(row + 8 * j, ld, nrow, x0, x1, x2, x3, ml,       \
                                              j < NV - 1 || last_full));
            GV(GADDN)
        }
    }
    const __m256 va = _mm256_set1_ps(alpha);
    if (ys == 1) {
#define GSTORE(j)                                                                          \
    if (j < NV) {                                                                          \
        __m256 v = _mm256_mul_ps(va, s##j);                                                \
        if (j < NV - 1 || last_full) {                                                     \
            if (beta != 0.0f)                                                              \
                v = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(y + 8 * j), v);  \
            _mm256_storeu_ps(y + 8 * j, v);                                                \
        } else {                                                                           \
            if (beta != 0.0f)                                                              \
                v = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_maskload_ps(y + 8 * j, ml), v); \
            _mm256_maskstore_ps(y + 8 * j, ml, v);                                         \
        }                                                                                  \
    }
        GV(GSTORE)
        return;
    }
    float v[64];
#define GSPILL(j) if (j < NV) _mm256_storeu_ps(v + 8 * j, _mm256_mul_ps(va, s##j));
    GV(GSPILL)
    for (int64_t t = 0; t < nt; t++) y[t * ys] = beta == 0.0f ? v[t] : v[t] + beta * y[t * ys];
}

void cpu_sgemv_cols_avx2(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                         int64_t xs, float *y, int64_t ys, float alpha, float beta)
{
    int64_t t = 0;
    for (; t + 64 <= len; t += 64)
        gemv_cols_block(8, 64, k, mat + t, ld, x, xs, y + t * ys, ys, alpha, beta);
    const int64_t rem = len - t;
    mat += t;
    y += t * ys;
    switch ((rem + 7) / 8) {
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
