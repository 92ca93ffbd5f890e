/* 2-D convolution, NCHW, contiguous views; offsets in elements. No float
 * atomics anywhere: every output element is written by exactly one work item,
 * and split reductions go through a partial buffer summed in a fixed order.
 *
 * Two shapes of kernel:
 *  - direct: one work item per output pixel and CB channels (or one work group
 *    per CB dw elements, reducing in local memory), used for small channel
 *    counts, strided backward input, and on devices without 256-item work
 *    groups;
 *  - tiled: an implicit GEMM per group, a 64 x 64 block of outputs per work
 *    group of 256 items (4 x 4 each), operands staged through local memory in
 *    steps of 16 along the reduction axis, the im2col matrix never stored.
 *      forward:          y[oc, (img, pix)]   = sum_(c,ki,kj)     w * x
 *      backward input:   dx[c, (img, pix)]   = sum_(oc,ki,kj)    w * dy (gather)
 *      backward weight:  dw[oc, (c,ki,kj)]   = sum_(img,pix)     dy * x (split) */

/* Laid out as conv_p in ocl_conv.c. */
typedef struct {
    int n, c, h, w, oc, kh, kw, oh, ow;
    int sh, sw, ph, pw, dlh, dlw;
    int g, cg, ocg;
} conv_p;

/* ---- direct kernels --------------------------------------------------------- */

#define CB 4 /* channels per work item: each operand value loaded serves CB outputs */

/* Taps t in [*lo, *hi) with 0 <= start + t * dil < n (no overflow for any dil). */
inline void tap_range(int start, int dil, int k, int n, int *lo, int *hi)
{
    *lo = start < 0 ? (-start - 1) / dil + 1 : 0;
    *hi = start >= n ? 0 : min(k, (n - 1 - start) / dil + 1);
}

/* One work item per pixel and CB output channels of one group: each x value
 * loaded serves all of them. Channels past the group's end repeat its last one
 * and are not stored. */
kernel void conv_fw(conv_p p_in, global float *y, int yo, global const float *x, int xo,
                    global const float *w, int wo)
{
    const conv_p p = p_in; /* a private copy: see common.cl */
    int ohw = p.oh * p.ow, khw = p.kh * p.kw, hw = p.h * p.w, wstep = p.cg * khw;
    int blocks = (p.ocg + CB - 1) / CB;
    int total = p.n * p.g * blocks * ohw;
    AG_FOR(i, total) {
        int pix = i % ohw, t = i / ohw, blk = t % blocks;
        t /= blocks;
        int g = t % p.g, img = t / p.g;
        int ob = blk * CB, nb = min(CB, p.ocg - ob);
        int ih0 = pix / p.ow * p.sh - p.ph, iw0 = pix % p.ow * p.sw - p.pw;
        int ki0, ki1, kj0, kj1;
        tap_range(ih0, p.dlh, p.kh, p.h, &ki0, &ki1);
        tap_range(iw0, p.dlw, p.kw, p.w, &kj0, &kj1);
        /* index of tap (0, 0), possibly outside x: only taps inside are read */
        int xc = xo + (img * p.c + g * p.cg) * hw + ih0 * p.w + iw0;
        global const float *wc = w + wo + (g * p.ocg + ob) * wstep;
        int wj[CB];
        for (int j = 0; j < CB; j++) wj[j] = min(j, nb - 1) * wstep;
        float acc[CB];
        for (int j = 0; j < CB; j++) acc[j] = 0.0f;
        for (int c = 0; c < p.cg; c++, xc += hw, wc += khw)
            for (int ki = ki0; ki < ki1; ki++) {
                int xr = xc + ki * p.dlh * p.w;
                global const float *wr = wc + ki * p.kw;
                for (int kj = kj0; kj < kj1; kj++) {
                    float xv = x[xr + kj * p.dlw];
                    for (int j = 0; j < CB; j++) acc[j] += wr[wj[j] + kj] * xv;
                }
            }
        global float *yp = y + yo + (img * p.oc + g * p.ocg + ob) * ohw + pix;
        for (int j = 0; j < nb; j++) yp[j * ohw] = acc[j];
    }
}

/* Each dx element gathers the outputs whose windows cover it: tap ki reaches
 * row ih from output row (ih + ph - ki * dlh) / sh when that divides exactly.
 * One work item per pixel and CB input channels of one group, so each dy value
 * loaded serves all of them; channels past the group's end repeat its last one
 * and are not stored. */
kernel void conv_bwi(conv_p p_in, global float *dx, int dxo, global const float *dy, int dyo,
                     global const float *w, int wo)
{
    const conv_p p = p_in; /* a private copy: see common.cl */
    int ohw = p.oh * p.ow, khw = p.kh * p.kw, hw = p.h * p.w, wstep = p.cg * khw;
    int blocks = (p.cg + CB - 1) / CB;
    int total = p.n * p.g * blocks * hw;
    AG_FOR(i, total) {
        int pix = i % hw, t = i / hw, blk = t % blocks;
        t /= blocks;
        int g = t % p.g, img = t / p.g;
        int cb = blk * CB, nb = min(CB, p.cg - cb), ih = pix / p.w, iw = pix % p.w;
        global const float *dyg = dy + dyo + (img * p.oc + g * p.ocg) * ohw;
        global const float *wg = w + wo + (g * p.ocg * p.cg + cb) * khw;
        int wj[CB];
        for (int j = 0; j < CB; j++) wj[j] = min(j, nb - 1) * khw;
        float acc[CB];
        for (int j = 0; j < CB; j++) acc[j] = 0.0f;
        for (int ki = 0; ki < p.kh; ki++) {
            int th = ih + p.ph - ki * p.dlh;
            if (th < 0) break; /* only falls further */
            if (th % p.sh || th / p.sh >= p.oh) continue;
            for (int kj = 0; kj < p.kw; kj++) {
                int tw = iw + p.pw - kj * p.dlw;
                if (tw < 0) break;
                if (tw % p.sw || tw / p.sw >= p.ow) continue;
                global const float *d = dyg + th / p.sh * p.ow + tw / p.sw;
                global const float *wk = wg + ki * p.kw + kj;
                for (int oc = 0; oc < p.ocg; oc++) {
                    float dv = d[oc * ohw];
                    for (int j = 0; j < CB; j++) acc[j] += wk[oc * wstep + wj[j]] * dv;
                }
            }
        }
        global float *dxp = dx + dxo + (img * p.c + g * p.cg + cb) * hw + pix;
        for (int j = 0; j < nb; j++) dxp[j * hw] = acc[j];
    }
}

/* One work group per CB output channels, input channel and tap of dw: strided
 * partial sums over the (img, oh, ow) whose tap lands inside x (each x value
 * loaded serves the CB channels), then trees in local memory. The local size
 * is a power of two. Positions advance by the local size with carries, not
 * divisions. Channels past the group's end repeat its last one. */
kernel void conv_bww(conv_p p_in, global float *dw, int dwo, global const float *dy, int dyo,
                     global const float *x, int xo, local float *part)
{
    const conv_p p = p_in; /* a private copy: see common.cl */
    int ohw = p.oh * p.ow, khw = p.kh * p.kw, hw = p.h * p.w;
    int e = (int)get_group_id(0), lid = (int)get_local_id(0), ls = (int)get_local_size(0);
    int blocks = (p.ocg + CB - 1) / CB;
    int q = e % khw, t = e / khw, c = t % p.cg;
    t /= p.cg;
    int blk = t % blocks, g = t / blocks;
    int ob = blk * CB, nb = min(CB, p.ocg - ob);
    int offh = q / p.kw * p.dlh - p.ph, offw = q % p.kw * p.dlw - p.pw;
    /* output rows / columns whose tap is inside: 0 <= oh * sh + offh < h */
    int oh0, oh1, ow0, ow1;
    tap_range(offh, p.sh, p.oh, p.h, &oh0, &oh1);
    tap_range(offw, p.sw, p.ow, p.w, &ow0, &ow1);
    int nh = max(oh1 - oh0, 0), nw = max(ow1 - ow0, 0), plane = nh * nw, total = p.n * plane;
    float acc[CB];
    for (int j = 0; j < CB; j++) acc[j] = 0.0f;
    if (lid < total) {
        global const float *dyb = dy + dyo + (g * p.ocg + ob) * ohw + oh0 * p.ow + ow0;
        global const float *xc = x + xo + (g * p.cg + c) * hw + (oh0 * p.sh + offh) * p.w +
                                 ow0 * p.sw + offw; /* inside */
        int dj[CB];
        for (int j = 0; j < CB; j++) dj[j] = min(j, nb - 1) * ohw;
        int img = lid / plane, a = lid % plane / nw, b = lid % nw;
        int simg = ls / plane, sa = ls % plane / nw, sb = ls % nw;
        int dys = p.oc * ohw, xs = p.c * hw;
        for (int r = lid; r < total; r += ls) {
            float xv = xc[img * xs + a * p.sh * p.w + b * p.sw];
            int di = img * dys + a * p.ow + b;
            for (int j = 0; j < CB; j++) acc[j] += dyb[di + dj[j]] * xv;
            b += sb;
            if (b >= nw) { b -= nw; a++; }
            a += sa;
            if (a >= nh) { a -= nh; img++; }
            img += simg;
        }
    }
    for (int j = 0; j < CB; j++) part[j * ls + lid] = acc[j];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = ls / 2; s > 0; s >>= 1) {
        if (lid < s)
            for (int j = 0; j < CB; j++) part[j * ls + lid] += part[j * ls + lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        for (int j = 0; j < nb; j++)
            dw[dwo + ((g * p.ocg + ob + j) * p.cg + c) * khw + q] = part[j * ls];
}

/* dw = the split-reduction partials [parts][numel] summed in order */
kernel void conv_sum_parts(int numel, int parts, global float *dw, int dwo,
                           global const float *part)
{
    AG_FOR(i, numel) {
        float s = 0.0f;
        for (int k = 0; k < parts; k++) s += part[k * numel + i];
        dw[dwo + i] = s;
    }
}

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
