#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "index.glsl"
// y[i] = x[.. index[i] ..]; out-of-range indices give 0. Data moves as raw
// 32-bit words, so f32 and int32 share the shader.

AG_PARAMS {
    Shape sh;
    Strides ys, is, xs;
    int size, xsa;
} P;
layout(std430, binding = 1) writeonly buffer Y { uint y[]; };
layout(std430, binding = 2) readonly buffer I { int idx[]; };
layout(std430, binding = 3) readonly buffer X { uint x[]; };

void main()
{
    int c[8];
    AG_FOR(i, P.sh.numel) {
        if (P.sh.nd > 1) ag_coords(P.sh, i, c);
        int k = idx[AT(P.sh, P.is, c, i)];
        y[AT(P.sh, P.ys, c, i)] = k >= 0 && k < P.size ? x[AT(P.sh, P.xs, c, i) + k * P.xsa] : 0u;
    }
}
