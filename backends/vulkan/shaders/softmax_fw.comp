#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef AG_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
// softmax or log-softmax of each row
AG_PARAMS {
    int log_, rows, cols, tpr, xoff, yoff;
} P;
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
#define SM_LOGITS
#include "softmax.glsl"

void main()
{
    SmItem it;
    if (!sm_item(P.rows, P.cols, P.tpr, it)) return;
    float m, s;
    row_max_sumexp(it, P.cols, P.tpr, P.xoff, m, s);
    if (!it.live) return;
    int xb = P.xoff + it.base, yb = P.yoff + it.base;
    if (P.log_ != 0) {
        // x - max first, then the log-sum: small results near the max stay accurate
        float ls = ag_log(s);
        for (int j = it.t; j < P.cols; j += P.tpr) y[yb + j] = (x[xb + j] - m) - ls;
    } else {
        float inv = 1.0 / s;
        for (int j = it.t; j < P.cols; j += P.tpr) y[yb + j] = ag_exp(x[xb + j] - m) * inv;
    }
}
