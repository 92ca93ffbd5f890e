#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "conv.glsl"
// Direct forward: one invocation per pixel and CB output channels of one group,
// so each x value loaded serves all of them. Channels past the group's end
// repeat its last one and are not stored.

layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer W { float w[]; };

void main()
{
    ConvDims p = P.p;
    int yo = P.out_off, xo = P.a_off, wo = P.b_off;
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
        tap_range(ih0, p.dlh, p.kh, p.h, ki0, ki1);
        tap_range(iw0, p.dlw, p.kw, p.w, kj0, kj1);
        // index of tap (0, 0), possibly outside x: only taps inside are read
        int xc = xo + (img * p.c + g * p.cg) * hw + ih0 * p.w + iw0;
        int wc = wo + (g * p.ocg + ob) * wstep;
        int wj[CB];
        for (int j = 0; j < CB; j++) wj[j] = min(j, nb - 1) * wstep;
        float acc[CB];
        for (int j = 0; j < CB; j++) acc[j] = 0.0;
        for (int c = 0; c < p.cg; c++, xc += hw, wc += khw)
            for (int ki = ki0; ki < ki1; ki++) {
                int xr = xc + ki * p.dlh * p.w;
                int wr = wc + ki * p.kw;
                for (int kj = kj0; kj < kj1; kj++) {
                    float xv = x[xr + kj * p.dlw];
                    for (int j = 0; j < CB; j++) acc[j] += w[wr + wj[j] + kj] * xv;
                }
            }
        int yp = yo + (img * p.oc + g * p.ocg + ob) * ohw + pix;
        for (int j = 0; j < nb; j++) y[yp + j * ohw] = acc[j];
    }
}
