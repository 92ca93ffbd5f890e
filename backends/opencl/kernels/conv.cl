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
 *      backward weight:  dw[oc, (c,ki,kj)]   = sum_(img,pix)     dy * x (split)
 *
 * The tiled kernels (reqd_work_group_size) are a program of their own,
 * conv_tiled.cl: a device that cannot build them still runs these. */

#include "conv_common.cl"

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
