/* SGEMM: C[b] = alpha A[b] B[b] + beta C[b] over a batch, A [M, K], B [K, N],
 * C [M, N] with C's columns contiguous. beta == 0 never reads C (NaN there
 * does not leak). Every output is one fp32 sum over k in order: deterministic,
 * no atomics, no split of k.
 *
 * <ta><tb> in the names says which axis of each operand has unit stride: n,
 * the last one (row-major); t, the first one (a transposed view). Loads are
 * mapped so that neighbouring work-items read neighbouring addresses either
 * way, and any M, N, K works (tiles are zero-padded at the edges).
 *
 * gemm_<ta><tb>_<T>: T x T output tiles through local memory (GPUs).
 * gemm_reg_<ta><tb>: no local memory, for CPU devices.
 * gemm_simple: one output per work-item with arbitrary strides, for products
 * too small to fill tiles and for views with no unit stride.
 * gemm_scale: C = beta C (0 when beta == 0), for K == 0 and alpha == 0. */

/* Laid out exactly as ocl_gemm_args in ocl_gemm.c. */
typedef struct {
    int m, n, k;
    int a_off, a_rs, a_cs, a_bs;
    int b_off, b_rs, b_cs, b_bs;
    int c_off, c_rs, c_bs;
    int row0, batch0; /* first row and batch of this launch (large grids are split) */
    float alpha, beta;
} ag_gemm;

inline void gemm_store(__global float *C, int idx, float v, float alpha, float beta)
{
    C[idx] = beta == 0.0f ? alpha * v : alpha * v + beta * C[idx];
}

/* Columns col.. col + 3 of one row of C (those < n). */
inline void gemm_store4(__global float *Crow, int col, int n, float4 v, float alpha, float beta)
{
    if (col + 4 <= n) {
        float4 r = alpha * v;
        if (beta != 0.0f) r += beta * vload4(0, Crow + col);
        vstore4(r, 0, Crow + col);
    } else {
        const float t[4] = {v.x, v.y, v.z, v.w};
        for (int j = 0; j < 4 && col + j < n; j++) gemm_store(Crow, col + j, t[j], alpha, beta);
    }
}

/* Tiles in local memory are k-major with rows of T + 4 floats: the rows stay
 * 16-byte aligned for vload4, and the stride (not a multiple of 32 banks)
 * spreads the transposing stores of a row-major A over several banks. */
#define GEMM_LDS(T) ((T) + 4)

/* The TM x TK block of A at (row0, k0) into As[kk][mm], zero outside A. ta: A's
 * rows have unit stride (a transposed view); otherwise its columns do. lda is
 * the other stride. Neighbouring work-items read neighbouring addresses. */
inline void gemm_load_a(__global const float *A, int lda, int ta, int M, int K, int row0, int k0,
                        __local float *As, int TM, int TK, int tid, int nt)
{
    const bool full = row0 + TM <= M && k0 + TK <= K;
    for (int e = tid; e < TM * TK; e += nt) {
        int mm, kk;
        if (ta) {
            mm = e % TM;
            kk = e / TM;
        } else {
            kk = e % TK;
            mm = e / TK;
        }
        const int gm = row0 + mm, gk = k0 + kk;
        float v = 0.0f;
        if (full || (gm < M && gk < K)) v = A[ta ? gm + gk * lda : gm * lda + gk];
        As[kk * GEMM_LDS(TM) + mm] = v;
    }
}

/* The TK x TN block of B at (k0, col0) into Bs[kk][nn]. tb: B's columns (along
 * k) have unit stride; otherwise its rows do. */
inline void gemm_load_b(__global const float *B, int ldb, int tb, int K, int N, int k0, int col0,
                        __local float *Bs, int TN, int TK, int tid, int nt)
{
    const bool full = col0 + TN <= N && k0 + TK <= K;
    for (int e = tid; e < TN * TK; e += nt) {
        int nn, kk;
        if (tb) {
            kk = e % TK;
            nn = e / TK;
        } else {
            nn = e % TN;
            kk = e / TN;
        }
        const int gk = k0 + kk, gn = col0 + nn;
        float v = 0.0f;
        if (full || (gk < K && gn < N)) v = B[tb ? gk + gn * ldb : gk * ldb + gn];
        Bs[kk * GEMM_LDS(TN) + nn] = v;
    }
}

/* A T x T tile per work-group of R x R work-items, R = T / (4 W); each
 * work-item computes W x W blocks of 4 x 4 outputs, at rows 4 (ty + i R)..
 * and columns 4 (tx + j R)..: a block is one float4 of A's column times one
 * float4 of B's row from local memory (two 16-byte loads per 16 multiply-adds),
 * and neighbouring work-items store neighbouring columns. The accumulators are
 * indexed by constants only, so they stay in registers. */
#define GEMM_TILED(NAME, TA, TB, T, TK, W)                                                        \
    __kernel __attribute__((reqd_work_group_size((T) / (4 * (W)), (T) / (4 * (W)), 1))) void      \
    NAME(const ag_gemm g, __global const float *restrict A, __global const float *restrict B,     \
         __global float *restrict C)                                                              \
    {                                                                                             \
        /* float4 arrays: 16-byte aligned, so the vector reads below are single loads */          \
        __local float4 As4[(TK) * GEMM_LDS(T) / 4], Bs4[(TK) * GEMM_LDS(T) / 4];                  \
        __local float *As = (__local float *)As4, *Bs = (__local float *)Bs4;                     \
        const int R = (T) / (4 * (W)), NT = R * R;                                                \
        const int tx = (int)get_local_id(0), ty = (int)get_local_id(1), tid = ty * R + tx;        \
        const int col0 = (int)get_group_id(0) * (T);                                              \
        const int row0 = g.row0 + (int)get_group_id(1) * (T);                                     \
        const int batch = g.batch0 + (int)get_global_id(2);                                       \
        const int lda = (TA) ? g.a_cs : g.a_rs, ldb = (TB) ? g.b_cs : g.b_rs;                     \
        A += g.a_off + batch * g.a_bs;                                                            \
        B += g.b_off + batch * g.b_bs;                                                            \
        float4 acc[W][W][4];                                                                      \
        for (int i = 0; i < (W); i++)                                                             \
            for (int j = 0; j < (W); j++)                                                         \
                for (int r = 0; r < 4; r++) acc[i][j][r] = (float4)(0.0f);                        \
        for (int k0 = 0; k0 < g.k; k0 += (TK)) {                                                  \
            gemm_load_a(A, lda, TA, g.m, g.k, row0, k0, As, T, TK, tid, NT);                      \
            gemm_load_b(B, ldb, TB, g.k, g.n, k0, col0, Bs, T, TK, tid, NT);                      \
            barrier(CLK_LOCAL_MEM_FENCE);                                                         \
            for (int kk = 0; kk < (TK); kk++) {                                                   \
                float4 av[W], bv[W];                                                              \
                for (int i = 0; i < (W); i++) av[i] = As4[kk * (GEMM_LDS(T) / 4) + ty + i * R];   \
                for (int j = 0; j < (W); j++) bv[j] = Bs4[kk * (GEMM_LDS(T) / 4) + tx + j * R];   \
                for (int i = 0; i < (W); i++)                                                     \
                    for (int j = 0; j < (W); j++) {                                               \
                        acc[i][j][0] += av[i].x * bv[j];                                          \
                        acc[i][j][1] += av[i].y * bv[j];                                          \
                        acc[i][j][2] += av[i].z * bv[j];                                          \
                        acc[i][j][3] += av[i].w * bv[j];                                          \
                    }                                                                             \
            }                                                                                     \
            barrier(CLK_LOCAL_MEM_FENCE);                                                         \
        }                                                                                         \
        C += g.c_off + batch * g.c_bs;                                                            \
        for (int i = 0; i < (W); i++)                                                             \
            for (int r = 0; r < 4; r++) {                                                         \
                const int row = row0 + 4 * (ty + i * R) + r;                                      \
                if (row < g.m)                                                                    \
                    for (int j = 0; j < (W); j++)                                                 \
                        gemm_store4(C + row * g.c_rs, col0 + 4 * (tx + j * R), g.n, acc[i][j][r], \
                                    g.alpha, g.beta);                                             \
            }                                                                                     \
    }

/* T = 64: 4 x 4 outputs per work-item in 16 x 16 (the default); T = 128: 8 x 8
 * per work-item, for large products on GPUs; T = 32 and 16: 4 x 4 in 8 x 8
 * and 4 x 4 work-items, for devices that allow fewer than 256 per group. */
#define GEMM_VARIANTS(T, TK, W)                          \
    GEMM_TILED(gemm_nn_##T, 0, 0, T, TK, W)              \
    GEMM_TILED(gemm_nt_##T, 0, 1, T, TK, W)              \
    GEMM_TILED(gemm_tn_##T, 1, 0, T, TK, W)              \
    GEMM_TILED(gemm_tt_##T, 1, 1, T, TK, W)

GEMM_VARIANTS(128, 16, 2)
GEMM_VARIANTS(64, 16, 1)
GEMM_VARIANTS(32, 16, 1)
GEMM_VARIANTS(16, 16, 1)

/* For CPU devices (PoCL and the like): no local memory and no barriers, which
 * such drivers turn into loops over the work-items with spills around every
 * barrier. Each work-item computes 8 rows x 16 columns as float16 (one
 * AVX-512 register, or two AVX ones), streaming A and B through the caches.
 * Indices past the edges are clamped to the last row / column, so every load
 * is in bounds, and those outputs are not stored. Grid (ceil(N / 16), rows of
 * this launch / 8, batches). */
#define GEMM_REG_ROWS 8
#define GEMM_REG(NAME, TA, TB)                                                                    \
    __kernel void NAME(const ag_gemm g_in, __global const float *restrict A,                      \
                       __global const float *restrict B, __global float *restrict C)              \
    {                                                                                             \
        const ag_gemm g = g_in; /* a private copy: see common.cl */                               \
        const int c0 = (int)get_global_id(0) * 16;                                                \
        const int r0 = g.row0 + (int)get_global_id(1) * GEMM_REG_ROWS;                            \
        const int batch = g.batch0 + (int)get_global_id(2);                                       \
        if (c0 >= g.n || r0 >= g.m) return;                                                       \
        A += g.a_off + batch * g.a_bs;                                                            \
        B += g.b_off + batch * g.b_bs;                                                            \
        const int ka = (TA) ? g.a_cs : 1, kb = (TB) ? 1 : g.b_rs;                                 \
        const int rs = (TA) ? 1 : g.a_rs, cs = (TB) ? g.b_cs : 1;                                 \
        int ra[GEMM_REG_ROWS], cb[16];                                                            \
        for (int i = 0; i < GEMM_REG_ROWS; i++) ra[i] = min(r0 + i, g.m - 1) * rs;                \
        for (int j = 0; j < 16; j++) cb[j] = min(c0 + j, g.n - 1) * cs;                           \
        const bool full = !(TB) && c0 + 16 <= g.n;                                                \
        float16 acc[GEMM_REG_ROWS];                                                               \
        for (int i = 0; i < GEMM_REG_ROWS; i++) acc[i] = (float16)(0.0f);                         \
        for (int p = 0; p < g.k; p++) {                                                           \
            const __global float *bp = B + p * kb;                                                \
            float16 b;                                                                            \
            if (full)                                                                             \
                b = vload16(0, bp + c0);                                                          \
            else                                                                                  \
                b = (float16)(bp[cb[0]], bp[cb[1]], bp[cb[2]], bp[cb[3]], bp[cb[4]], bp[cb[5]],   \
                              bp[cb[6]], bp[cb[7]], bp[cb[8]], bp[cb[9]], bp[cb[10]], bp[cb[11]], \
                              bp[cb[12]], bp[cb[13]], bp[cb[14]], bp[cb[15]]);                    \
            for (int i = 0; i < GEMM_REG_ROWS; i++) acc[i] += A[ra[i] + p * ka] * b;              \
        }                                                                                         \
        C += g.c_off + batch * g.c_bs;                                                            \
        for (int i = 0; i < GEMM_REG_ROWS && r0 + i < g.m; i++) {                                 \
            gemm_store4(C + (r0 + i) * g.c_rs, c0, g.n, acc[i].lo.lo, g.alpha, g.beta);           \
            gemm_store4(C + (r0 + i) * g.c_rs, c0 + 4, g.n, acc[i].lo.hi, g.alpha, g.beta);       \
            gemm_store4(C + (r0 + i) * g.c_rs, c0 + 8, g.n, acc[i].hi.lo, g.alpha, g.beta);       \
            gemm_store4(C + (r0 + i) * g.c_rs, c0 + 12, g.n, acc[i].hi.hi, g.alpha, g.beta);      \
        }                                                                                         \
    }

GEMM_REG(gemm_reg_nn, 0, 0)
GEMM_REG(gemm_reg_nt, 0, 1)
GEMM_REG(gemm_reg_tn, 1, 0)
GEMM_REG(gemm_reg_tt, 1, 1)

/* Grid (N rounded up, rows of this launch rounded up, batches). */
__kernel void gemm_simple(const ag_gemm g_in, __global const float *restrict A,
                          __global const float *restrict B, __global float *restrict C)
{
    const ag_gemm g = g_in; /* a private copy: see common.cl */
    const int col = (int)get_global_id(0), row = g.row0 + (int)get_global_id(1);
    const int batch = g.batch0 + (int)get_global_id(2);
    if (col >= g.n || row >= g.m) return;
    const __global float *a = A + g.a_off + batch * g.a_bs + row * g.a_rs;
    const __global float *b = B + g.b_off + batch * g.b_bs + col * g.b_cs;
    float s = 0.0f;
    for (int p = 0; p < g.k; p++) s += a[p * g.a_cs] * b[p * g.b_rs];
    gemm_store(C + g.c_off + batch * g.c_bs, row * g.c_rs + col, s, g.alpha, g.beta);
}

/* C = beta C over [batches, M, N], grid-stride over g.m * g.n * batches. */
__kernel void gemm_scale(const ag_gemm g_in, const int total, __global float *restrict C)
{
    const ag_gemm g = g_in; /* a private copy: see common.cl */
    AG_FOR(i, total)
    {
        const int col = i % g.n, t = i / g.n, row = t % g.m, batch = t / g.m;
        const int idx = g.c_off + batch * g.c_bs + row * g.c_rs + col;
        C[idx] = g.beta == 0.0f ? 0.0f : g.beta * C[idx];
    }
}
