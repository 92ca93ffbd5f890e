/* SGEMM through local memory for GPUs, gemm_<ta><tb>_<T> (see gemm.cl for the
 * names and the contract). A program of its own: these kernels require fixed
 * work-group sizes, and a device whose compiler cannot meet them (too many
 * registers for 256 items, as on some mobile GPUs) fails only this program;
 * ocl_gemm.c then takes gemm.cl's kernels. */

#include "gemm_common.cl"

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
