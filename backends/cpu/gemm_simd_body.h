/* The x86 SGEMM kernels (gemm_kernels.h's contracts), written once over a
 * handful of per-ISA primitives, as ew_simd_body.h does for element-wise ops.
 * Included by gemm_avx2.c and gemm_avx512.c after they define:
 *
 *   gv, gm, GW         vector of GW floats, lane mask
 *   MR, NR, ROWS(X)    micro-kernel tile (NR = 2 * GW), X(i) for each of MR rows
 *   SMALL_ROWS(X)      X(i, base, o) for each row: row i = base + o * a_rs, with
 *                      bases a0, a3, a6, a9 (x86 addressing adds a_rs, 2 * a_rs)
 *   GEMM_SUFFIX        the function-name suffix (avx2, avx512)
 *   gv_zero() gv_set1(x) gv_bcast(p) gv_load(p) gv_load_aligned(p) gv_store(p, v)
 *   gv_add gv_mul gv_fma(a, b, c) = a * b + c
 *   gm_first(n)        lanes < n set, 0 <= n (n >= GW: all)
 *   gv_mload(m, p), gv_mstore(p, m, v)   masked: masked-off lanes never touched
 *   gv_hsum(v)         sum of the lanes, as a float
 *   gv_sum4(s0..s3)    __m128 of the four vectors' lane sums
 *
 * The order of every sum is fixed by this file alone, so a product's result
 * does not depend on how the caller splits it (cpu_gemm.c's threads). */
#ifndef GEMM_SUFFIX
#error "define the primitives before including gemm_simd_body.h"
#endif

#define GEMM_CAT2(a, b) a##_##b
#define GEMM_CAT(a, b) GEMM_CAT2(a, b)
#define GEMM_FN(name) GEMM_CAT(name, GEMM_SUFFIX)

/* k steps ahead for the B prefetch: B streams from L2 */
#define PREFETCH_B 8

/* ---- the micro-kernel: an MR x NR tile from packed slivers --------------------- */

/* Each step of k loads two vectors of B and broadcasts MR elements of A. The
 * accumulators are named variables, not an array: GCC spills an array of
 * vectors. */
void GEMM_FN(cpu_sgemm_ukernel)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                                float alpha, float beta)
{
#define DECL(i) gv c##i##0 = gv_zero(), c##i##1 = gv_zero();
    ROWS(DECL)
    /* the C tile is needed at the end: start fetching it now */
#define PREF_C(i)                                                         \
    _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);               \
    _mm_prefetch((const char *)(c + i * ldc + NR - 1), _MM_HINT_T0);
    ROWS(PREF_C)
    for (int64_t p = 0; p < kc; p++) {
        const gv b0 = gv_load_aligned(b), b1 = gv_load_aligned(b + GW);
        /* the 64-byte lines of a step of B */
        _mm_prefetch((const char *)(b + PREFETCH_B * NR), _MM_HINT_T0);
        if (NR > 16) _mm_prefetch((const char *)(b + PREFETCH_B * NR + 16), _MM_HINT_T0);
#define STEP(i)                                          \
    {                                                    \
        const gv ai = gv_bcast(a + i);                   \
        c##i##0 = gv_fma(ai, b0, c##i##0);               \
        c##i##1 = gv_fma(ai, b1, c##i##1);               \
    }
        ROWS(STEP)
        a += MR;
        b += NR;
    }
    const gv va = gv_set1(alpha);
    if (beta == 0.0f) {
#define STORE0(i)                                          \
    gv_store(c + i * ldc, gv_mul(va, c##i##0));            \
    gv_store(c + i * ldc + GW, gv_mul(va, c##i##1));
        ROWS(STORE0)
    } else {
        const gv vb = gv_set1(beta);
#define STORE1(i)                                                                       \
    gv_store(c + i * ldc, gv_fma(va, c##i##0, gv_mul(vb, gv_load(c + i * ldc))));       \
    gv_store(c + i * ldc + GW, gv_fma(va, c##i##1, gv_mul(vb, gv_load(c + i * ldc + GW))));
        ROWS(STORE1)
    }
}

/* ---- kernels that read the operands in place --------------------------------- */

/* The small kernels: C[0:mr, 0:n] for mr <= MR and any n, in MR x NR tiles,
 * A read in place with any strides, B rows read in place (unit column
 * stride). One variant per row count R, so an edge sliver computes only its
 * own rows (GCC drops the rows i >= R once R is a constant). Partial columns
 * are loaded and stored through masks, which never touch the masked elements;
 * whole ones (FULL) with plain loads, which are cheaper on AVX2. */
static inline __attribute__((always_inline)) void
small_tile(const int R, const int NV, const int FULL, int64_t k, const float *a, int64_t a_rs,
           int64_t a_cs, const float *b, int64_t ldb, float *c, int64_t ldc, int64_t nr,
           float alpha, float beta)
{
    /* NV == 2: the first vector is whole, the second holds nr - GW */
    const gm mk = gm_first(NV > 1 ? nr - GW : nr);
#define SDECL(i, base, o) gv c##i##0 = gv_zero(), c##i##1 = gv_zero();
    SMALL_ROWS(SDECL)
    const int64_t lda2 = 2 * a_rs;
    const float *a0 = a, *a3 = R > 3 ? a + 3 * a_rs : a, *a6 = R > 6 ? a + 6 * a_rs : a,
                *a9 = R > 9 ? a + 9 * a_rs : a;
    (void)a6, (void)a9; /* rows past R (AVX2 has 6) never read them */
    for (int64_t p = 0; p < k; p++) {
        gv b0, b1;
        if (NV > 1) {
            b0 = gv_load(b);
            b1 = FULL ? gv_load(b + GW) : gv_mload(mk, b + GW);
        } else {
            b0 = FULL ? gv_load(b) : gv_mload(mk, b);
            b1 = b0;
        }
#define SOFF(o) ((o) == 0 ? 0 : (o) == 1 ? a_rs : lda2)
#define SFMA(i, base, o)                                   \
    if (i < R) {                                           \
        const gv ai = gv_bcast(base + SOFF(o));            \
        c##i##0 = gv_fma(ai, b0, c##i##0);                 \
        if (NV > 1) c##i##1 = gv_fma(ai, b1, c##i##1);     \
    }
        SMALL_ROWS(SFMA)
        a0 += a_cs;
        if (R > 3) a3 += a_cs;
        if (R > 6) a6 += a_cs;
        if (R > 9) a9 += a_cs;
        b += ldb;
    }
    /* alpha == 1 (every product of the backend op) skips the scaling */
    const gv va = gv_set1(alpha), vb = gv_set1(beta);
    const int one = alpha == 1.0f;
    /* one vector of row i: v = alpha * acc (+ beta * C), stored whole or masked */
#define SPUT(ptr, acc, last)                                                   \
    {                                                                          \
        gv v = one ? acc : gv_mul(va, acc);                                    \
        if (FULL || !(last)) {                                                 \
            if (beta != 0.0f) v = gv_fma(vb, gv_load(ptr), v);                 \
            gv_store(ptr, v);                                                  \
        } else {                                                               \
            if (beta != 0.0f) v = gv_fma(vb, gv_mload(mk, ptr), v);            \
            gv_mstore(ptr, mk, v);                                             \
        }                                                                      \
    }
#define SSTORE(i, base, o)                                  \
    if (i < R) {                                            \
        SPUT(c + i * ldc, c##i##0, NV == 1)                 \
        if (NV > 1) SPUT(c + i * ldc + GW, c##i##1, 1)      \
    }
    SMALL_ROWS(SSTORE)
}

/* Rows 0..I across n columns: whole strips of NR, then the rest in one or two
 * vectors. The strips share the setup of the A rows. */
#define SMALL_VARIANT(I)                                                                       \
    static void small_##I(int64_t k, const float *a, int64_t a_rs, int64_t a_cs,               \
                          const float *b, int64_t ldb, float *c, int64_t ldc, int64_t n,        \
                          float alpha, float beta)                                             \
    {                                                                                          \
        const int R = (I) + 1;                                                                 \
        int64_t j = 0;                                                                         \
        for (; j + NR <= n; j += NR)                                                           \
            small_tile(R, 2, 1, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, NR, alpha, beta);    \
        if (n - j > GW)                                                                        \
            small_tile(R, 2, 0, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, n - j, alpha, beta); \
        else if (n - j == GW)                                                                  \
            small_tile(R, 1, 1, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, GW, alpha, beta);    \
        else if (n > j)                                                                        \
            small_tile(R, 1, 0, k, a, a_rs, a_cs, b + j, ldb, c + j, ldc, n - j, alpha, beta); \
    }
ROWS(SMALL_VARIANT)

typedef void (*small_fn)(int64_t, const float *, int64_t, int64_t, const float *, int64_t, float *,
                         int64_t, int64_t, float, float);
#define SMALL_ENTRY(I) small_##I,
/* entry mr - 1 computes mr rows */
static const small_fn small_fns[MR] = {ROWS(SMALL_ENTRY)};

void GEMM_FN(cpu_sgemm_small)(int64_t k, const float *a, int64_t a_rs, int64_t a_cs,
                              const float *b, int64_t ldb, float *c, int64_t ldc, int64_t mr,
                              int64_t n, float alpha, float beta)
{
    small_fns[mr - 1](k, a, a_rs, a_cs, b, ldb, c, ldc, n, alpha, beta);
}

/* ---- matrix-vector products --------------------------------------------------- */

/* Rows of M contiguous: four rows at a time share the loads of x; their four
 * sums come out of one transposing reduction (gv_sum4). */
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

void GEMM_FN(cpu_sgemv_rows)(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                             float *y, int64_t ys, float alpha, float beta)
{
    const gm mt = gm_first(k & (GW - 1));
    const int64_t kw = k & ~(int64_t)(GW - 1);
    int64_t t = 0;
    for (; t + 4 <= len; t += 4) {
        const float *r0 = mat + t * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
        gv s0 = gv_zero(), s1 = s0, s2 = s0, s3 = s0;
        gv u0 = s0, u1 = s0, u2 = s0, u3 = s0;
        int64_t p = 0;
        for (; p + 2 * GW <= k; p += 2 * GW) {
            const gv x0 = gv_load(x + p), x1 = gv_load(x + p + GW);
            s0 = gv_fma(gv_load(r0 + p), x0, s0);
            s1 = gv_fma(gv_load(r1 + p), x0, s1);
            s2 = gv_fma(gv_load(r2 + p), x0, s2);
            s3 = gv_fma(gv_load(r3 + p), x0, s3);
            u0 = gv_fma(gv_load(r0 + p + GW), x1, u0);
            u1 = gv_fma(gv_load(r1 + p + GW), x1, u1);
            u2 = gv_fma(gv_load(r2 + p + GW), x1, u2);
            u3 = gv_fma(gv_load(r3 + p + GW), x1, u3);
        }
        if (p < kw) {
            const gv x0 = gv_load(x + p);
            s0 = gv_fma(gv_load(r0 + p), x0, s0);
            s1 = gv_fma(gv_load(r1 + p), x0, s1);
            s2 = gv_fma(gv_load(r2 + p), x0, s2);
            s3 = gv_fma(gv_load(r3 + p), x0, s3);
            p += GW;
        }
        if (p < k) {
            const gv x0 = gv_mload(mt, x + p);
            u0 = gv_fma(gv_mload(mt, r0 + p), x0, u0);
            u1 = gv_fma(gv_mload(mt, r1 + p), x0, u1);
            u2 = gv_fma(gv_mload(mt, r2 + p), x0, u2);
            u3 = gv_fma(gv_mload(mt, r3 + p), x0, u3);
        }
        gemv_store4(gv_sum4(gv_add(s0, u0), gv_add(s1, u1), gv_add(s2, u2), gv_add(s3, u3)),
                    y + t * ys, ys, alpha, beta);
    }
    for (; t < len; t++) {
        const float *r0 = mat + t * ld;
        gv s0 = gv_zero(), u0 = s0;
        int64_t p = 0;
        for (; p + 2 * GW <= k; p += 2 * GW) {
            s0 = gv_fma(gv_load(r0 + p), gv_load(x + p), s0);
            u0 = gv_fma(gv_load(r0 + p + GW), gv_load(x + p + GW), u0);
        }
        if (p < kw) {
            s0 = gv_fma(gv_load(r0 + p), gv_load(x + p), s0);
            p += GW;
        }
        if (p < k) u0 = gv_fma(gv_mload(mt, r0 + p), gv_mload(mt, x + p), u0);
        const float s = alpha * gv_hsum(gv_add(s0, u0));
        y[t * ys] = beta == 0.0f ? s : s + beta * y[t * ys];
    }
}

/* Columns of M contiguous (M(t, p) = mat[p * ld + t]): blocks of up to 8 * GW
 * outputs in registers while k streams by. The rows of M are taken four at a
 * time, g = x0 m0 + x1 m1 + x2 m2 + x3 m3 (four independent chains of FMAs for
 * a narrow block, where one chain would wait on its latency), then s += g: one
 * order for every output, whatever block holds it. */
static inline __attribute__((always_inline)) gv
group_rows(const float *r, int64_t ld, int nrow, gv x0, gv x1, gv x2, gv x3, gm mk, int full)
{
#define GLD(ptr) (full ? gv_load(ptr) : gv_mload(mk, ptr))
    gv g = gv_mul(x0, GLD(r));
    if (nrow > 1) g = gv_fma(x1, GLD(r + ld), g);
    if (nrow > 2) g = gv_fma(x2, GLD(r + 2 * ld), g);
    if (nrow > 3) g = gv_fma(x3, GLD(r + 3 * ld), g);
    return g;
}

static inline __attribute__((always_inline)) void
gemv_cols_block(const int NV, int64_t nt, int64_t k, const float *mat, int64_t ld, const float *x,
                int64_t xs, float *y, int64_t ys, float alpha, float beta)
{
    const int64_t rem = nt - GW * (NV - 1);
    const gm ml = gm_first(rem);
    const int last_full = rem >= GW;
#define GV(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define GDECL(j) gv s##j = gv_zero();
    GV(GDECL)
    for (int64_t p = 0; p < k; p += 4) {
        const int nrow = k - p >= 4 ? 4 : (int)(k - p);
        const gv x0 = gv_bcast(x + p * xs);
        const gv x1 = nrow > 1 ? gv_bcast(x + (p + 1) * xs) : x0;
        const gv x2 = nrow > 2 ? gv_bcast(x + (p + 2) * xs) : x0;
        const gv x3 = nrow > 3 ? gv_bcast(x + (p + 3) * xs) : x0;
        const float *row = mat + p * ld;
        /* nrow a constant 4 in the common case, so group_rows unrolls fully */
        if (nrow == 4) {
#define GADD4(j)                                                                   \
    if (j < NV)                                                                    \
        s##j = gv_add(s##j, group_rows(row + GW * j, ld, 4, x0, x1, x2, x3, ml,    \
                                       j < NV - 1 || last_full));
            GV(GADD4)
        } else {
#define GADDN(j)                                                                   \
    if (j < NV)                                                                    \
        s##j = gv_add(s##j, group_rows(row + GW * j, ld, nrow, x0, x1, x2, x3, ml, \
                                       j < NV - 1 || last_full));
            GV(GADDN)
        }
    }
    const gv va = gv_set1(alpha);
    if (ys == 1) {
#define GSTORE(j)                                                                  \
    if (j < NV) {                                                                  \
        gv v = gv_mul(va, s##j);                                                   \
        if (j < NV - 1 || last_full) {                                             \
            if (beta != 0.0f) v = gv_fma(gv_set1(beta), gv_load(y + GW * j), v);   \
            gv_store(y + GW * j, v);                                               \
        } else {                                                                   \
            if (beta != 0.0f) v = gv_fma(gv_set1(beta), gv_mload(ml, y + GW * j), v); \
            gv_mstore(y + GW * j, ml, v);                                          \
        }                                                                          \
    }
        GV(GSTORE)
        return;
    }
    float v[8 * GW];
#define GSPILL(j) if (j < NV) gv_store(v + GW * j, gv_mul(va, s##j));
    GV(GSPILL)
    for (int64_t t = 0; t < nt; t++) y[t * ys] = beta == 0.0f ? v[t] : v[t] + beta * y[t * ys];
}

void GEMM_FN(cpu_sgemv_cols)(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                             int64_t xs, float *y, int64_t ys, float alpha, float beta)
{
    int64_t t = 0;
    for (; t + 8 * GW <= len; t += 8 * GW)
        gemv_cols_block(8, 8 * GW, k, mat + t, ld, x, xs, y + t * ys, ys, alpha, beta);
    const int64_t rem = len - t;
    mat += t;
    y += t * ys;
    /* the block width a compile-time constant in each call */
    switch ((rem + GW - 1) / GW) {
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

/* ---- rank-1 products (outer products: a batch-1 weight gradient) ---------------- */

/* Bound by the stores of C: one pass over the rows, b's vectors reloaded from L1,
 * none of the tile set-up of the small kernels (784 x 256 x 1 ran at 0.6-0.8x
 * OpenBLAS through them). */
void GEMM_FN(cpu_sger)(int64_t m, int64_t n, const float *a, int64_t a_rs, const float *b, float *c,
                       int64_t ldc, float alpha, float beta)
{
    const gm ml = gm_first(n & (GW - 1));
    const int64_t nw = n & ~(int64_t)(GW - 1);
    const gv va = gv_set1(alpha), vb = gv_set1(beta);
    const int one = alpha == 1.0f;
    for (int64_t i = 0; i < m; i++) {
        const gv ai = gv_bcast(a + i * a_rs);
        float *ci = c + i * ldc;
        int64_t j = 0;
        if (one && beta == 0.0f) { /* every product of the backend op: a plain stream */
            for (; j + 2 * GW <= nw; j += 2 * GW) {
                gv_store(ci + j, gv_fma(ai, gv_load(b + j), gv_zero()));
                gv_store(ci + j + GW, gv_fma(ai, gv_load(b + j + GW), gv_zero()));
            }
        }
        for (; j < nw; j += GW) {
            gv v = gv_fma(ai, gv_load(b + j), gv_zero());
            if (!one) v = gv_mul(va, v);
            if (beta != 0.0f) v = gv_fma(vb, gv_load(ci + j), v);
            gv_store(ci + j, v);
        }
        if (j < n) {
            gv v = gv_fma(ai, gv_mload(ml, b + j), gv_zero());
            if (!one) v = gv_mul(va, v);
            if (beta != 0.0f) v = gv_fma(vb, gv_mload(ml, ci + j), v);
            gv_mstore(ci + j, ml, v);
        }
    }
}
