#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "conv.glsl"
// Direct backward input: each dx element gathers the outputs whose windows
// cover it; tap ki reaches row ih from output row (ih + ph - ki * dlh) / sh
// when that divides exactly. One invocation per pixel and CB input channels of
// one group, so each dy value loaded serves all of them; channels past the
// group's end repeat its last one and are not stored.

layout(std430, binding = 1) writeonly buffer DX { float dx[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) readonly buffer W { float w[]; };

void main()
{
    ConvDims p = P.p;
    int dxo = P.out_off, dyo = P.a_off, wo = P.b_off;
    int ohw = p.oh * p.ow, khw = p.kh * p.kw, hw = p.h * p.w, wstep = p.cg * khw;
    int blocks = (p.cg + CB - 1) / CB;
    int total = p.n * p.g * blocks * hw;
    AG_FOR(i, total) {
        int pix = i % hw, t = i / hw, blk = t % blocks;
        t /= blocks;
        int g = t % p.g, img = t / p.g;
        int cb = blk * CB, nb = min(CB, p.cg - cb), ih = pix / p.w, iw = pix % p.w;
        int dyg = dyo + (img * p.oc + g * p.ocg) * ohw;
        int wg = wo + (g * p.ocg * p.cg + cb) * khw;
        int wj[CB];
        for (int j = 0; j < CB; j++) wj[j] = min(j, nb - 1) * khw;
        float acc[CB];
        for (int j = 0; j < CB; j++) acc[j] = 0.0;
        for (int ki = 0; ki < p.kh; ki++) {
            int th = ih + p.ph - ki * p.dlh;
            if (th < 0) break; // only falls further
            if (th % p.sh != 0 || th / p.sh >= p.oh) continue;
            for (int kj = 0; kj < p.kw; kj++) {
                int tw = iw + p.pw - kj * p.dlw;
                if (tw < 0) break;
                if (tw % p.sw != 0 || tw / p.sw >= p.ow) continue;
                int d = dyg + th / p.sh * p.ow + tw / p.sw;
                int wk = wg + ki * p.kw + kj;
                for (int oc = 0; oc < p.ocg; oc++) {
                    float dv = dy[d + oc * ohw];
                    for (int j = 0; j < CB; j++) acc[j] += w[wk + oc * wstep + wj[j]] * dv;
                }
            }
        }
        int dxp = dxo + (img * p.c + g * p.cg + cb) * hw + pix;
        for (int j = 0; j < nb; j++) dx[dxp + j * hw] = acc[j];
    }
}
