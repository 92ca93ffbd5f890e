/* Winograd F(2x2, 5x5) tile transforms (cpu_winograd.c), on vectors of GW
 * channels; included after gemm_simd_body.h, whose primitives they use (and
 * gv_sub). The channel count is a multiple of GW. Each value is formed in one
 * fixed order, so no result depends on which thread transformed a tile.
 *
 * Points 0, 1, -1, 2, -2 and infinity; with G and A in cpu_winograd.c:
 *   B^T = ( 4  0 -5  0  1  0 )      A^T = ( 1  1  1  1  1  0 )
 *         ( 0  4  4 -1 -1  0 )            ( 0  1 -1  2 -2  1 )
 *         ( 0 -4  4  1 -1  0 )
 *         ( 0 -2 -1  2  1  0 )
 *         ( 0  2 -1 -2  1  0 )
 *         ( 0  4  0 -5  0  1 ) */

/* r = B^T (d0 .. d5) */
static inline __attribute__((always_inline)) void wino_bt(const gv *d, gv *r)
{
    const gv four = gv_set1(4.0f), five = gv_set1(5.0f), two = gv_set1(2.0f);
    const gv s12 = gv_add(d[1], d[2]), s34 = gv_add(d[3], d[4]);
    const gv d21 = gv_sub(d[2], d[1]), d34 = gv_sub(d[3], d[4]);
    const gv d31 = gv_sub(d[3], d[1]), d42 = gv_sub(d[4], d[2]);
    r[0] = gv_add(gv_sub(gv_mul(four, d[0]), gv_mul(five, d[2])), d[4]);
    r[1] = gv_sub(gv_mul(four, s12), s34);
    r[2] = gv_add(gv_mul(four, d21), d34);
    r[3] = gv_add(gv_mul(two, d31), d42);
    r[4] = gv_sub(d42, gv_mul(two, d31));
    r[5] = gv_add(gv_sub(gv_mul(four, d[1]), gv_mul(five, d[3])), d[5]);
}

/* The 36 values B^T d B of the 6 x 6 tile d(i, j) = src[i * rs + j * cs + c]:
 * value 6a + b to dst[(6a + b) * ds + c], for c < nc. */
void GEMM_FN(cpu_wino_in)(const float *src, int64_t rs, int64_t cs, int64_t nc, float *dst,
                          int64_t ds)
{
    for (int64_t c = 0; c < nc; c += GW) {
        gv t[6][6]; /* t[a][j] = (B^T d)(a, j) */
        for (int j = 0; j < 6; j++) {
            gv d[6], r[6];
            for (int i = 0; i < 6; i++) d[i] = gv_load(src + i * rs + j * cs + c);
            wino_bt(d, r);
            for (int a = 0; a < 6; a++) t[a][j] = r[a];
        }
        for (int a = 0; a < 6; a++) {
            gv r[6];
            wino_bt(t[a], r);
            for (int b = 0; b < 6; b++) gv_store(dst + (6 * a + b) * ds + c, r[b]);
        }
    }
}

/* o = A^T (m0 .. m5) */
static inline __attribute__((always_inline)) void wino_at(const gv *m, gv *o)
{
    const gv two = gv_set1(2.0f);
    o[0] = gv_add(gv_add(gv_add(m[0], m[1]), gv_add(m[2], m[3])), m[4]);
    o[1] = gv_add(gv_add(gv_sub(m[1], m[2]), gv_mul(two, gv_sub(m[3], m[4]))), m[5]);
}

/* The 2 x 2 outputs A^T m A of the 36 products m(6a + b) = src[(6a + b) * ss + c]:
 * output (i, j) to dst[i * dsi + j * dsj + c], for c < nc. */
void GEMM_FN(cpu_wino_out)(const float *src, int64_t ss, int64_t nc, float *dst, int64_t dsi,
                           int64_t dsj)
{
    for (int64_t c = 0; c < nc; c += GW) {
        gv t[2][6]; /* t[i][b] = (A^T m)(i, b) */
        for (int b = 0; b < 6; b++) {
            gv m[6], o[2];
            for (int a = 0; a < 6; a++) m[a] = gv_load(src + (6 * a + b) * ss + c);
            wino_at(m, o);
            t[0][b] = o[0];
            t[1][b] = o[1];
        }
        for (int i = 0; i < 2; i++) {
            gv o[2];
            wino_at(t[i], o);
            gv_store(dst + i * dsi + c, o[0]);
            gv_store(dst + i * dsi + dsj + c, o[1]);
        }
    }
}

/* The 36 values A D A^T of a 2 x 2 block of output gradients D(i, j) =
 * src[i * rs + j * cs + c], value 6a + b to dst[(6a + b) * ds + c] (the weight
 * gradient's transform: the forward's output transform, transposed).
 * A's rows: (1, 0), (1, 1), (1, -1), (1, 2), (1, -2), (0, 1). */
static inline __attribute__((always_inline)) void wino_a(gv d0, gv d1, gv *z)
{
    const gv two = gv_set1(2.0f);
    z[0] = d0;
    z[1] = gv_add(d0, d1);
    z[2] = gv_sub(d0, d1);
    z[3] = gv_fma(two, d1, d0);
    z[4] = gv_sub(d0, gv_mul(two, d1));
    z[5] = d1;
}

void GEMM_FN(cpu_wino_dout)(const float *src, int64_t rs, int64_t cs, int64_t nc, float *dst,
                            int64_t ds)
{
    for (int64_t c = 0; c < nc; c += GW) {
        gv t0[6], t1[6]; /* column j of A D */
        wino_a(gv_load(src + c), gv_load(src + rs + c), t0);
        wino_a(gv_load(src + cs + c), gv_load(src + rs + cs + c), t1);
        for (int a = 0; a < 6; a++) {
            gv z[6];
            wino_a(t0[a], t1[a], z);
            for (int b = 0; b < 6; b++) gv_store(dst + (6 * a + b) * ds + c, z[b]);
        }
    }
}
