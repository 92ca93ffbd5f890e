/* Shared by gemm.cl and gemm_tiled.cl (included; not a program of its own):
 * the launch arguments and the stores to C. */

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
