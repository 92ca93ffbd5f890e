#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "index.glsl"
// scatter_add into a y whose positions overlap each other: one invocation
// replays the CPU's row-major walk, so shared elements get their terms in
// the same order.

AG_PARAMS {
    Shape sh;
    Strides is, ss, ys;
    int size, ysa;
} P;
layout(std430, binding = 1) buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer I { int idx[]; };
layout(std430, binding = 3) readonly buffer S { float src[]; };

void main()
{
    if (gl_GlobalInvocationID.x != 0u) return;
    int c[8];
    for (int i = 0; i < P.sh.numel; i++) {
        if (P.sh.nd > 1) ag_coords(P.sh, i, c);
        int k = idx[AT(P.sh, P.is, c, i)];
        if (k >= 0 && k < P.size) y[AT(P.sh, P.ys, c, i) + k * P.ysa] += src[AT(P.sh, P.ss, c, i)];
    }
}
