#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef AG_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
// dlogits = dloss (softmax - target), target = (1 - sm) onehot + sm / cols
AG_PARAMS {
    float sm, uni;
    int rows, cols, tpr, dxoff, xoff, loff, ls, goff, gs;
} P;
layout(std430, binding = 1) writeonly buffer DX { float dx[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer L { int labels[]; };
layout(std430, binding = 4) readonly buffer G { float dloss[]; };
#define SM_LOGITS
#include "softmax.glsl"

void main()
{
    SmItem it;
    if (!sm_item(P.rows, P.cols, P.tpr, it)) return;
    int label = it.live ? labels[P.loff + it.row * P.ls] : 0;
    float g = it.live ? dloss[P.goff + it.row * P.gs] : 0.0;
    float m, s;
    row_max_sumexp(it, P.cols, P.tpr, P.xoff, m, s);
    if (!it.live) return;
    int dxb = P.dxoff + it.base, xb = P.xoff + it.base;
    if (label < 0 || label >= P.cols) {
        for (int j = it.t; j < P.cols; j += P.tpr) dx[dxb + j] = SM_NAN;
        return;
    }
    float lsum = ag_log(s);
    for (int j = it.t; j < P.cols; j += P.tpr) {
        // unfused: at the label g (p - uni) - g (1 - sm) must cancel exactly
        // where p rounds to 1 (a single class, say); a fused multiply-add
        // leaves a residue of about 4e-8
        precise float d = g * (ag_exp((x[xb + j] - m) - lsum) - P.uni);
        if (j == label) d -= g * (1.0 - P.sm);
        dx[dxb + j] = d;
    }
}
