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
