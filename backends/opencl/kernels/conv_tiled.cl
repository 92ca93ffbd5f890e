/* The tiled implicit-GEMM convolution kernels (see conv.cl for the layout and
 * the contract). A program of its own: they require 256-item work groups, and
 * a device whose compiler cannot meet that fails only this program; ocl_conv.c
 * then takes conv.cl's direct kernels. */

#include "conv_common.cl"

/* ---- tiled kernels ---------------------------------------------------------- */

#define TM 64
#define TN 64
#define TK 16
#define TWG 256

/* Item (tx, ty) of the 16 x 16 grid owns rows ty + 16 i and columns tx + 16 j:
 * reads of As broadcast, reads of Bs and stores to the output run along tx. */
#define TILE_MAC()                                                             \
    for (int kk = 0; kk < TK; kk++) {                                          \
        float a[4], b[4];                                                      \
        for (int u = 0; u < 4; u++) a[u] = As[kk][ty + 16 * u];                \
        for (int u = 0; u < 4; u++) b[u] = Bs[kk][tx + 16 * u];                \
        for (int u = 0; u < 4; u++)                                            \
            for (int v = 0; v < 4; v++) acc[u][v] += a[u] * b[v];              \
    }

#define TILE_ACC_ZERO()                                                        \
    float acc[4][4];                                                           \
    for (int u = 0; u < 4; u++)                                                \
        for (int v = 0; v < 4; v++) acc[u][v] = 0.0f

/* Loading: item lid fetches A rows lid / TK + 16 r at reduction step lid % TK
 * (consecutive items read along the reduction axis), and B column lid % TN at
 * reduction steps lid / TN + 4 r (consecutive items read along the columns). A
 * rows are padded so those column-wise stores spread over the banks.
 *
 * The reduction index splits into parts (channel, tap, position) by division;
 * rather than every item dividing for every element, the first TK items decode
 * the next step's TK indices into a local table while the tile is multiplied
 * (two tables, used in turn). */

kernel __attribute__((reqd_work_group_size(TWG, 1, 1)))
void conv_fw_tiled(conv_p p, int tiles_m, int tiles_n, global float *y, int yo,
                   global const float *x, int xo, global const float *w, int wo)
{
    local float As[TK][TM + 1];
    local float Bs[TK][TN];
    local int kt_off[2][TK], kt_h[2][TK], kt_w[2][TK]; /* x offset, tap row, tap column */
    int ohw = p.oh * p.ow, khw = p.kh * p.kw, hw = p.h * p.w;
    int M = p.ocg, N = p.n * ohw, K = p.cg * khw;
    int gid = (int)get_group_id(0), lid = (int)get_local_id(0);
    int tn = gid % tiles_n, t = gid / tiles_n, tm = t % tiles_m, g = t / tiles_m;
    int m0 = tm * TM, n0 = tn * TN, tx = lid % 16, ty = lid / 16;

    int ak = lid % TK, am = lid / TK;
    global const float *wa = w + wo + (g * p.ocg + m0) * K;
    int bcol = lid % TN, bk = lid / TN, bn = n0 + bcol;
    bool bn_ok = bn < N;
    int bimg = bn_ok ? bn / ohw : 0, bpix = bn_ok ? bn % ohw : 0;
    int ih0 = bpix / p.ow * p.sh - p.ph, iw0 = bpix % p.ow * p.sw - p.pw;
    int xb = xo + (bimg * p.c + g * p.cg) * hw + ih0 * p.w + iw0; /* tap (0, 0), maybe outside */

    if (lid < TK && lid < K) {
        int q = lid % khw;
        kt_h[0][lid] = q / p.kw * p.dlh;
        kt_w[0][lid] = q % p.kw * p.dlw;
        kt_off[0][lid] = lid / khw * hw + kt_h[0][lid] * p.w + kt_w[0][lid];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    TILE_ACC_ZERO();
    for (int k0 = 0, cur = 0; k0 < K; k0 += TK, cur ^= 1) {
        int k = k0 + ak;
        for (int r = 0; r < 4; r++) {
            int m = am + 16 * r;
            As[ak][m] = m0 + m < M && k < K ? wa[m * K + k] : 0.0f;
        }
        for (int r = 0; r < 4; r++) {
            int kl = bk + 4 * r;
            float v = 0.0f;
            if (bn_ok && k0 + kl < K) {
                int ih = ih0 + kt_h[cur][kl], iw = iw0 + kt_w[cur][kl];
                if (ih >= 0 && ih < p.h && iw >= 0 && iw < p.w) v = x[xb + kt_off[cur][kl]];
            }
            Bs[kl][bcol] = v;
        }
        int kn = k0 + TK + lid;
        if (lid < TK && kn < K) {
            int q = kn % khw;
            kt_h[cur ^ 1][lid] = q / p.kw * p.dlh;
            kt_w[cur ^ 1][lid] = q % p.kw * p.dlw;
            kt_off[cur ^ 1][lid] = kn / khw * hw + kt_h[cur ^ 1][lid] * p.w + kt_w[cur ^ 1][lid];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        TILE_MAC();
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int v = 0; v < 4; v++) {
        int n = n0 + tx + 16 * v;
        if (n >= N) continue;
        global float *yn = y + yo + (n / ohw * p.oc + g * p.ocg + m0) * ohw + n % ohw;
        for (int u = 0; u < 4; u++) {
            int m = ty + 16 * u;
            if (m0 + m < M) yn[m * ohw] = acc[u][v];
        }
    }
}

/* dx as a GEMM over (oc, ki, kj): taps that land between strides or outside dy
 * stage zeros (the host sends strided convolutions to the direct kernel). */
kernel __attribute__((reqd_work_group_size(TWG, 1, 1)))
void conv_bwi_tiled(conv_p p, int tiles_m, int tiles_n, global float *dx, int dxo,
                    global const float *dy, int dyo, global const float *w, int wo)
{
    local float As[TK][TM + 1];
    local float Bs[TK][TN];
    /* w offset of (oc, tap) for row 0, dy offset of the channel, tap row, column */
    local int kt_w_off[2][TK], kt_dy[2][TK], kt_h[2][TK], kt_w[2][TK];
    int ohw = p.oh * p.ow, khw = p.kh * p.kw, hw = p.h * p.w;
    int M = p.cg, N = p.n * hw, K = p.ocg * khw;
    int gid = (int)get_group_id(0), lid = (int)get_local_id(0);
    int tn = gid % tiles_n, t = gid / tiles_n, tm = t % tiles_m, g = t / tiles_m;
    int m0 = tm * TM, n0 = tn * TN, tx = lid % 16, ty = lid / 16;
    bool unit = p.sh == 1 && p.sw == 1;

    int ak = lid % TK, am = lid / TK;
    /* w[g * ocg + oc][m0 + m][q] */
    global const float *wa = w + wo + (g * p.ocg * p.cg + m0) * khw;
    int bcol = lid % TN, bk = lid / TN, bn = n0 + bcol;
    bool bn_ok = bn < N;
    int bimg = bn_ok ? bn / hw : 0, bpix = bn_ok ? bn % hw : 0;
    int th0 = bpix / p.w + p.ph, tw0 = bpix % p.w + p.pw;
    global const float *dyb = dy + dyo + (bimg * p.oc + g * p.ocg) * ohw;

    if (lid < TK && lid < K) {
        int q = lid % khw, oc = lid / khw;
        kt_w_off[0][lid] = oc * p.cg * khw + q;
        kt_dy[0][lid] = oc * ohw;
        kt_h[0][lid] = q / p.kw * p.dlh;
        kt_w[0][lid] = q % p.kw * p.dlw;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    TILE_ACC_ZERO();
    for (int k0 = 0, cur = 0; k0 < K; k0 += TK, cur ^= 1) {
        bool k_ok = k0 + ak < K;
        int aoff = k_ok ? kt_w_off[cur][ak] : 0;
        for (int r = 0; r < 4; r++) {
            int m = am + 16 * r;
            As[ak][m] = m0 + m < M && k_ok ? wa[aoff + m * khw] : 0.0f;
        }
        for (int r = 0; r < 4; r++) {
            int kl = bk + 4 * r;
            float v = 0.0f;
            if (bn_ok && k0 + kl < K) {
                int th = th0 - kt_h[cur][kl], tw = tw0 - kt_w[cur][kl];
                if (th >= 0 && tw >= 0 && (unit || (th % p.sh == 0 && tw % p.sw == 0))) {
                    int oh = unit ? th : th / p.sh, ow = unit ? tw : tw / p.sw;
                    if (oh < p.oh && ow < p.ow) v = dyb[kt_dy[cur][kl] + oh * p.ow + ow];
                }
            }
            Bs[kl][bcol] = v;
        }
        int kn = k0 + TK + lid;
        if (lid < TK && kn < K) {
            int q = kn % khw, oc = kn / khw;
            kt_w_off[cur ^ 1][lid] = oc * p.cg * khw + q;
            kt_dy[cur ^ 1][lid] = oc * ohw;
            kt_h[cur ^ 1][lid] = q / p.kw * p.dlh;
            kt_w[cur ^ 1][lid] = q % p.kw * p.dlw;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        TILE_MAC();
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int v = 0; v < 4; v++) {
        int n = n0 + tx + 16 * v;
        if (n >= N) continue;
        global float *dxn = dx + dxo + (n / hw * p.c + g * p.cg + m0) * hw + n % hw;
        for (int u = 0; u < 4; u++) {
            int m = ty + 16 * u;
            if (m0 + m < M) dxn[m * hw] = acc[u][v];
        }
    }
}

/* dw as a GEMM reducing over (img, oh, ow), split into chunks of `chunk` steps:
 * work group (split s, group g, tile) writes out[s * numel + ...]. With one
 * split, out is dw itself. */
kernel __attribute__((reqd_work_group_size(TWG, 1, 1)))
void conv_bww_tiled(conv_p p, int tiles_m, int tiles_n, int chunk, global float *out, int outo,
                    global const float *dy, int dyo, global const float *x, int xo)
{
    local float As[TK][TM + 1];
    local float Bs[TK][TN];
    /* dy offset of (img, pix), x offset of its window corner, its oh * sh, ow * sw */
    local int kt_dy[2][TK], kt_x[2][TK], kt_h[2][TK], kt_w[2][TK];
    int ohw = p.oh * p.ow, khw = p.kh * p.kw, hw = p.h * p.w;
    int M = p.ocg, N = p.cg * khw, K = p.n * ohw;
    int gid = (int)get_group_id(0), lid = (int)get_local_id(0);
    int tn = gid % tiles_n, t = gid / tiles_n, tm = t % tiles_m;
    t /= tiles_m;
    int g = t % p.g, s = t / p.g;
    int m0 = tm * TM, n0 = tn * TN, tx = lid % 16, ty = lid / 16;
    int kbeg = s * chunk, kend = kbeg + min(chunk, K - kbeg);

    int ak = lid % TK, am = lid / TK;
    global const float *dya = dy + dyo + (g * p.ocg + m0) * ohw;
    int bcol = lid % TN, bk = lid / TN, bn = n0 + bcol;
    bool bn_ok = bn < N;
    int bc = bn_ok ? bn / khw : 0, bq = bn_ok ? bn % khw : 0;
    int offh = bq / p.kw * p.dlh - p.ph, offw = bq % p.kw * p.dlw - p.pw;
    int xb = xo + (g * p.cg + bc) * hw + offh * p.w + offw; /* maybe outside */

    int kn = kbeg + lid;
    if (lid < TK && kn < kend) {
        int img = kn / ohw, pix = kn % ohw;
        kt_dy[0][lid] = img * p.oc * ohw + pix;
        kt_h[0][lid] = pix / p.ow * p.sh;
        kt_w[0][lid] = pix % p.ow * p.sw;
        kt_x[0][lid] = img * p.c * hw + kt_h[0][lid] * p.w + kt_w[0][lid];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    TILE_ACC_ZERO();
    for (int k0 = kbeg, cur = 0; k0 < kend; k0 += TK, cur ^= 1) {
        bool k_ok = k0 + ak < kend;
        int aoff = k_ok ? kt_dy[cur][ak] : 0;
        for (int r = 0; r < 4; r++) {
            int m = am + 16 * r;
            As[ak][m] = m0 + m < M && k_ok ? dya[aoff + m * ohw] : 0.0f;
        }
        for (int r = 0; r < 4; r++) {
            int kl = bk + 4 * r;
            float v = 0.0f;
            if (bn_ok && k0 + kl < kend) {
                int ih = kt_h[cur][kl] + offh, iw = kt_w[cur][kl] + offw;
                if (ih >= 0 && ih < p.h && iw >= 0 && iw < p.w) v = x[xb + kt_x[cur][kl]];
            }
            Bs[kl][bcol] = v;
        }
        kn = k0 + TK + lid;
        if (lid < TK && kn < kend) {
            int img = kn / ohw, pix = kn % ohw;
            kt_dy[cur ^ 1][lid] = img * p.oc * ohw + pix;
            kt_h[cur ^ 1][lid] = pix / p.ow * p.sh;
            kt_w[cur ^ 1][lid] = pix % p.ow * p.sw;
            kt_x[cur ^ 1][lid] = img * p.c * hw + kt_h[cur ^ 1][lid] * p.w + kt_w[cur ^ 1][lid];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        TILE_MAC();
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    int numel = p.oc * N;
    global float *o = out + outo + s * numel + (g * p.ocg + m0) * N;
    for (int v = 0; v < 4; v++) {
        int n = n0 + tx + 16 * v;
        if (n >= N) continue;
        for (int u = 0; u < 4; u++) {
            int m = ty + 16 * u;
            if (m0 + m < M) o[m * N + n] = acc[u][v];
        }
    }
}
