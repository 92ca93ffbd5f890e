#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "index.glsl"
// scatter_add, scan path: one invocation per element of y that an index line
// reaches; it scans the L index entries of its line. Work is (elements of y)
// x L: the host picks this only when L is small or sorting would cost more.

AG_PARAMS {
    Shape sh;
    Strides ys, is, ss, ks;
    int L, isa, ssa;
} P;
layout(std430, binding = 1) buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer I { int idx[]; };
layout(std430, binding = 3) readonly buffer S { float src[]; };

void main()
{
    int c[8];
    AG_FOR(i, P.sh.numel) {
        if (P.sh.nd > 1) ag_coords(P.sh, i, c);
        int oi = AT(P.sh, P.is, c, i), os = AT(P.sh, P.ss, c, i), kc = AT(P.sh, P.ks, c, i);
        int oy = AT(P.sh, P.ys, c, i);
        float acc = 0.0;
        bool hit = false;
        for (int j = 0; j < P.L; j++)
            if (idx[oi + j * P.isa] == kc) {
                // y's old value first: the terms add in the CPU's order
                if (!hit) acc = y[oy];
                acc += src[os + j * P.ssa];
                hit = true;
            }
        if (hit) y[oy] = acc;
    }
}
