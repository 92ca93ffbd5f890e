/* Advanced SIMD (NEON) SGEMM micro-kernel: an 8 x 12 tile of C in 24 q-register
 * accumulators.
 *
 * Each step of k loads two vectors of A (the 8 rows) and three of B (the 12
 * columns), then multiplies every B vector by each A element in place with
 * FMLA's by-element form (vfmaq_laneq_f32): no broadcasts, 24 FMAs for 5 loads,
 * and 24 independent chains to cover the FMA latency on two pipes, with
 * 24 + 2 + 3 of the 32 registers in use. The accumulators are named variables,
 * not an array: GCC spills an array of vectors. */
#include "gemm_kernels.h"

#include <arm_neon.h>
#include <math.h>

#define MR CPU_GEMM_NEON_MR
#define NR CPU_GEMM_NEON_NR
/* row i of the tile: A element in vector i / 4, lane i % 4 */
#define ROWS(X) X(0, a0, 0) X(1, a0, 1) X(2, a0, 2) X(3, a0, 3) \
                X(4, a1, 0) X(5, a1, 1) X(6, a1, 2) X(7, a1, 3)

/* k steps ahead for the B prefetch: B streams from L2 */
#define PREFETCH_B 8

void cpu_sgemm_ukernel_neon(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                            float alpha, float beta)
{
#define DECL(i, av, l) \
    float32x4_t c##i##0 = vdupq_n_f32(0.0f), c##i##1 = vdupq_n_f32(0.0f), c##i##2 = vdupq_n_f32(0.0f);
    ROWS(DECL)
    /* the C tile is needed at the end: start fetching it now */
#define PREF_C(i, av, l)                  \
    __builtin_prefetch(c + i * ldc);      \
    __builtin_prefetch(c + i * ldc + NR - 1);
    ROWS(PREF_C)
    for (int64_t p = 0; p < kc; p++) {
        const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        __builtin_prefetch(b + PREFETCH_B * NR);
#define STEP(i, av, l)                                  \
    c##i##0 = vfmaq_laneq_f32(c##i##0, b0, av, l);      \
    c##i##1 = vfmaq_laneq_f32(c##i##1, b1, av, l);      \
    c##i##2 = vfmaq_laneq_f32(c##i##2, b2, av, l);
        ROWS(STEP)
        a += MR;
        b += NR;
    }
    const float32x4_t va = vdupq_n_f32(alpha);
    if (beta == 0.0f) {
#define STORE0(i, av, l)                                      \
    vst1q_f32(c + i * ldc, vmulq_f32(va, c##i##0));           \
    vst1q_f32(c + i * ldc + 4, vmulq_f32(va, c##i##1));       \
    vst1q_f32(c + i * ldc + 8, vmulq_f32(va, c##i##2));
        ROWS(STORE0)
    } else {
        const float32x4_t vb = vdupq_n_f32(beta);
#define STORE1_ONE(i, j) \
    vst1q_f32(c + i * ldc + 4 * j,                                                   \
              vfmaq_f32(vmulq_f32(vb, vld1q_f32(c + i * ldc + 4 * j)), va, c##i##j));
#define STORE1(i, av, l) STORE1_ONE(i, 0) STORE1_ONE(i, 1) STORE1_ONE(i, 2)
        ROWS(STORE1)
    }
}

/* ---- matrix-vector products ---------------------------------------------------- */

/* y[t * ys] = alpha * M(t, :) . x + beta * y[t * ys] for rows of M contiguous:
 * four rows at a time share the loads of x, two vectors of sums a row. */
void cpu_sgemv_rows_neon(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                         float *y, int64_t ys, float alpha, float beta)
{
    int64_t t = 0;
    for (; t + 4 <= len; t += 4) {
        const float *r0 = mat + t * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
        float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
        float32x4_t u0 = s0, u1 = s0, u2 = s0, u3 = s0;
        int64_t p = 0;
        for (; p + 8 <= k; p += 8) {
            const float32x4_t x0 = vld1q_f32(x + p), x1 = vld1q_f32(x + p + 4);
            s0 = vfmaq_f32(s0, vld1q_f32(r0 + p), x0);
            s1 = vfmaq_f32(s1, vld1q_f32(r1 + p), x0);
            s2 = vfmaq_f32(s2, vld1q_f32(r2 + p), x0);
            s3 = vfmaq_f32(s3, vld1q_f32(r3 + p), x0);
            u0 = vfmaq_f32(u0, vld1q_f32(r0 + p + 4), x1);
            u1 = vfmaq_f32(u1, vld1q_f32(r1 + p + 4), x1);
            u2 = vfmaq_f32(u2, vld1q_f32(r2 + p + 4), x1);
            u3 = vfmaq_f32(u3, vld1q_f32(r3 + p + 4), x1);
        }
        float v[4] = {vaddvq_f32(vaddq_f32(s0, u0)), vaddvq_f32(vaddq_f32(s1, u1)),
                      vaddvq_f32(vaddq_f32(s2, u2)), vaddvq_f32(vaddq_f32(s3, u3))};
        for (; p < k; p++) {
            v[0] = fmaf(r0[p], x[p], v[0]);
            v[1] = fmaf(r1[p], x[p], v[1]);
            v[2] = fmaf(r2[p], x[p], v[2]);
            v[3] = fmaf(r3[p], x[p], v[3]);
        }
        for (int i = 0; i < 4; i++) {
            float *yi = y + (t + i) * ys;
            *yi = beta == 0.0f ? alpha * v[i] : alpha * v[i] + beta * *yi;
        }
    }
    for (; t < len; t++) {
        const float *r0 = mat + t * ld;
        float32x4_t s0 = vdupq_n_f32(0.0f), u0 = s0;
        int64_t p = 0;
        for (; p + 8 <= k; p += 8) {
            s0 = vfmaq_f32(s0, vld1q_f32(r0 + p), vld1q_f32(x + p));
            u0 = vfmaq_f32(u0, vld1q_f32(r0 + p + 4), vld1q_f32(x + p + 4));
        }
        float v = vaddvq_f32(vaddq_f32(s0, u0));
        for (; p < k; p++) v = fmaf(r0[p], x[p], v);
        y[t * ys] = beta == 0.0f ? alpha * v : alpha * v + beta * y[t * ys];
    }
}

/* y[t * ys] = alpha * sum_p M(t, p) x[p * xs] + beta * y[t * ys] for columns of
 * M contiguous: blocks of up to 32 outputs in registers while k streams by.
 * The rows of M are taken four at a time, g = x0 m0 + x1 m1 + x2 m2 + x3 m3,
 * then s += g: one order for every output (the last outputs, past a multiple
 * of four, in scalar code with the same fused steps). */
static inline float32x4_t group4(const float *r, int64_t ld, int nrow, float x0, float x1,
                                 float x2, float x3)
{
    float32x4_t g = vmulq_n_f32(vld1q_f32(r), x0);
    if (nrow > 1) g = vfmaq_n_f32(g, vld1q_f32(r + ld), x1);
    if (nrow > 2) g = vfmaq_n_f32(g, vld1q_f32(r + 2 * ld), x2);
    if (nrow > 3) g = vfmaq_n_f32(g, vld1q_f32(r + 3 * ld), x3);
    return g;
}

void cpu_sgemv_cols_neon(int64_t len, int64_t k, const float *mat, int64_t ld, const float *x,
                         int64_t xs, float *y, int64_t ys, float alpha, float beta)
{
    const int64_t len4 = len & ~(int64_t)3;
    for (int64_t t0 = 0; t0 < len4; t0 += 32) {
        const int nv = (int)((len4 - t0 < 32 ? len4 - t0 : 32) / 4);
        float32x4_t s[8];
        for (int j = 0; j < 8; j++) s[j] = vdupq_n_f32(0.0f);
        for (int64_t p = 0; p < k; p += 4) {
            const int nrow = k - p >= 4 ? 4 : (int)(k - p);
            const float x0 = x[p * xs], x1 = nrow > 1 ? x[(p + 1) * xs] : 0.0f;
            const float x2 = nrow > 2 ? x[(p + 2) * xs] : 0.0f, x3 = nrow > 3 ? x[(p + 3) * xs] : 0.0f;
            const float *row = mat + p * ld + t0;
            for (int j = 0; j < nv; j++)
                s[j] = vaddq_f32(s[j], group4(row + 4 * j, ld, nrow, x0, x1, x2, x3));
        }
        for (int j = 0; j < nv; j++) {
            float v[4];
            vst1q_f32(v, vmulq_n_f32(s[j], alpha));
            for (int l = 0; l < 4; l++) {
                float *yt = y + (t0 + 4 * j + l) * ys;
                *yt = beta == 0.0f ? v[l] : v[l] + beta * *yt;
            }
        }
    }
    for (int64_t t = len4; t < len; t++) {
        float s = 0.0f;
        for (int64_t p = 0; p < k; p += 4) {
            const int nrow = k - p >= 4 ? 4 : (int)(k - p);
            const float *col = mat + p * ld + t;
            float g = col[0] * x[p * xs];
            for (int i = 1; i < nrow; i++) g = fmaf(col[i * ld], x[(p + i) * xs], g);
            s += g;
        }
        y[t * ys] = beta == 0.0f ? alpha * s : alpha * s + beta * y[t * ys];
    }
}
