#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef AG_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
// loss = (1 - sm) (lse - x[label]) + sm mean_c(lse - x_c); every term of the
// smoothing sum is >= 0, so it does not cancel. The smoothing sum is skipped
// when sm == 0 so that -inf logits off the label keep the loss finite. A label
// outside [0, cols) gives NaN.
AG_PARAMS {
    float sm;
    int rows, cols, tpr, xoff, loff, ls, ooff, os;
} P;
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer L { int labels[]; };
layout(std430, binding = 3) writeonly buffer O { float loss[]; };
#define SM_LOGITS
#include "softmax.glsl"

void main()
{
    SmItem it;
    if (!sm_item(P.rows, P.cols, P.tpr, it)) return;
    int label = it.live ? labels[P.loff + it.row * P.ls] : 0;
    float m, s;
    row_max_sumexp(it, P.cols, P.tpr, P.xoff, m, s);
    float lse = m + ag_log(s);
    float spread = 0.0;
    if (P.sm != 0.0) {
        float a = 0.0, c = 0.0;
        if (it.live)
            for (int j = it.t; j < P.cols; j += P.tpr) sm_add(a, c, lse - x[P.xoff + it.base + j]);
        spread = row_sum(it, P.tpr, a - c);
    }
    if (!it.live || it.t != 0) return;
    float l;
    if (label < 0 || label >= P.cols) {
        l = SM_NAN;
    } else {
        l = (1.0 - P.sm) * (lse - x[P.xoff + it.base + label]);
        if (P.sm != 0.0) l += P.sm * spread / float(P.cols);
    }
    loss[P.ooff + it.row * P.os] = l;
}
