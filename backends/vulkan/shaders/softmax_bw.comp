#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef AG_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
// softmax: dx = y (dy - sum(dy y)); log: dx = dy - exp(y) sum(dy)
AG_PARAMS {
    int log_, rows, cols, tpr, dxoff, dyoff, yoff;
} P;
layout(std430, binding = 1) writeonly buffer DX { float dx[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) readonly buffer Y { float y[]; };
#include "softmax.glsl"

void main()
{
    SmItem it;
    if (!sm_item(P.rows, P.cols, P.tpr, it)) return;
    int dxb = P.dxoff + it.base, dyb = P.dyoff + it.base, yb = P.yoff + it.base;
    float a = 0.0, c = 0.0;
    if (it.live)
        for (int j = it.t; j < P.cols; j += P.tpr)
            sm_add(a, c, P.log_ != 0 ? dy[dyb + j] : dy[dyb + j] * y[yb + j]);
    float s = row_sum(it, P.tpr, a - c);
    if (!it.live) return;
    // unfused, as on the CPU: a fused rounding leaves residues where the
    // exact answer is 0
    if (P.log_ != 0)
        for (int j = it.t; j < P.cols; j += P.tpr) {
            precise float d = dy[dyb + j] - ag_exp(y[yb + j]) * s;
            dx[dxb + j] = d;
        }
    else
        for (int j = it.t; j < P.cols; j += P.tpr) {
            precise float d = y[yb + j] * (dy[dyb + j] - s);
            dx[dxb + j] = d;
        }
}
