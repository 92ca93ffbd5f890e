#version 450
#extension GL_GOOGLE_include_directive : require
// One output per invocation with arbitrary strides: products too small to fill
// tiles, C with fewer than a few rows or columns, views with no unit stride.
// The 1-D group is LX columns x (group size / LX) rows; grid (columns / LX,
// rows / rows a group, batches) of this dispatch.
#include "gemm.glsl"

layout(constant_id = 1) const int LX = 16;

layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(std430, binding = 3) buffer C { float c[]; };

void main()
{
    const int LY = int(gl_WorkGroupSize.x) / LX;
    int lid = int(gl_LocalInvocationID.x);
    int col = P.col0 + int(gl_WorkGroupID.x) * LX + lid % LX;
    int row = P.row0 + int(gl_WorkGroupID.y) * LY + lid / LX;
    int batch = P.batch0 + int(gl_WorkGroupID.z);
    if (col >= P.n || row >= P.m) return;
    int ai = P.a_off + batch * P.a_bs + row * P.a_rs;
    int bi = P.b_off + batch * P.b_bs + col * P.b_cs;
    float s = 0.0;
    for (int p = 0; p < P.k; p++) s += a[ai + p * P.a_cs] * b[bi + p * P.b_rs];
    int idx = P.c_off + batch * P.c_bs + row * P.c_rs + col;
    c[idx] = P.beta == 0.0 ? P.alpha * s : P.alpha * s + P.beta * c[idx];
}
