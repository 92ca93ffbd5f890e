#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "conv.glsl"
// Direct backward weight: one work group per CB output channels, input channel
// and tap of dw: strided partial sums over the (img, oh, ow) whose tap lands
// inside x (each x value loaded serves the CB channels), then trees in shared
// memory. The work-group size is a power of two. Positions advance by the
// group size with carries, not divisions. Channels past the group's end repeat
// its last one.

layout(std430, binding = 1) writeonly buffer DW { float dw[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) readonly buffer X { float x[]; };

shared float part[CB][gl_WorkGroupSize.x];

void main()
{
    ConvDims p = P.p;
    int dwo = P.out_off, dyo = P.a_off, xo = P.b_off;
    int ohw = p.oh * p.ow, khw = p.kh * p.kw, hw = p.h * p.w;
    int lid = int(gl_LocalInvocationID.x), ls = int(gl_WorkGroupSize.x);
    int blocks = (p.ocg + CB - 1) / CB;
    AG_GROUPS(e, P.groups) {
        int q = e % khw, t = e / khw, c = t % p.cg;
        t /= p.cg;
        int blk = t % blocks, g = t / blocks;
        int ob = blk * CB, nb = min(CB, p.ocg - ob);
        int offh = q / p.kw * p.dlh - p.ph, offw = q % p.kw * p.dlw - p.pw;
        // output rows / columns whose tap is inside: 0 <= oh * sh + offh < h
        int oh0, oh1, ow0, ow1;
        tap_range(offh, p.sh, p.oh, p.h, oh0, oh1);
        tap_range(offw, p.sw, p.ow, p.w, ow0, ow1);
        int nh = max(oh1 - oh0, 0), nw = max(ow1 - ow0, 0), plane = nh * nw, total = p.n * plane;
        float acc[CB];
        for (int j = 0; j < CB; j++) acc[j] = 0.0;
        if (lid < total) {
            int dyb = dyo + (g * p.ocg + ob) * ohw + oh0 * p.ow + ow0;
            int xc = xo + (g * p.cg + c) * hw + (oh0 * p.sh + offh) * p.w + ow0 * p.sw + offw; // inside
            int dj[CB];
            for (int j = 0; j < CB; j++) dj[j] = min(j, nb - 1) * ohw;
            int img = lid / plane, a = lid % plane / nw, b = lid % nw;
            int simg = ls / plane, sa = ls % plane / nw, sb = ls % nw;
            int dys = p.oc * ohw, xs = p.c * hw;
            for (int r = lid; r < total; r += ls) {
                float xv = x[xc + img * xs + a * p.sh * p.w + b * p.sw];
                int di = dyb + img * dys + a * p.ow + b;
                for (int j = 0; j < CB; j++) acc[j] += dy[di + dj[j]] * xv;
                b += sb;
                if (b >= nw) { b -= nw; a++; }
                a += sa;
                if (a >= nh) { a -= nh; img++; }
                img += simg;
            }
        }
        for (int j = 0; j < CB; j++) part[j][lid] = acc[j];
        barrier();
        for (int s = ls / 2; s > 0; s >>= 1) {
            if (lid < s)
                for (int j = 0; j < CB; j++) part[j][lid] += part[j][lid + s];
            barrier();
        }
        if (lid == 0)
            for (int j = 0; j < nb; j++)
                dw[dwo + ((g * p.ocg + ob + j) * p.cg + c) * khw + q] = part[j][0];
        barrier(); // the next group's partials overwrite these
    }
}
