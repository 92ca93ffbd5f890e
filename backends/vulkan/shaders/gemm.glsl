// SGEMM shared declarations (backends/vulkan/vk_gemm.c): C[b] = alpha A[b] B[b]
// + beta C[b] over a batch, A [M, K], B [K, N], C [M, N] as element strides;
// C's columns are contiguous. beta == 0 never reads C (NaN there does not
// leak). Every output is one fp32 sum over k in order: deterministic, no
// atomics, no split of k. Laid out exactly as gemm_params in vk_gemm.c.
#include "common.glsl"

AG_PARAMS {
    int m, n, k;
    int a_off, a_rs, a_cs, a_bs;
    int b_off, b_rs, b_cs, b_bs;
    int c_off, c_rs, c_bs;
    int row0, col0, batch0; // first row, column and batch of this dispatch (grids are split)
    int total;              // gemm_scale: batches * m * n
    float alpha, beta;
} P;
