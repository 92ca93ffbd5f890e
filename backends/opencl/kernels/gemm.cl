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
 * gemm_scale: C = beta C (0 when beta == 0), for K == 0 and alpha == 0.
 *
 * The tiled kernels (reqd_work_group_size) are a program of their own,
 * gemm_tiled.cl: a device that cannot build them still runs these. */

#include "gemm_common.cl"

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
