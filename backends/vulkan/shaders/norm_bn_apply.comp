#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm.glsl"
// Batch norm forward, element-wise: y = ((x - m0) - delta) scale + shift with
// norm_bn_stats' st[3 ch ..] = (m0, delta, rstd), scale = rstd gamma. x - m0
// is exact for x near the mean, unlike x scale - mean scale.

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer St { float st[]; };
#ifdef AG_PACKED
// the per-row / per-channel operands in one buffer (vk_norm.c, packed())
layout(std430, binding = 4) buffer Aux { float aux[]; };
#define gamma_ aux
#define beta_ aux
#else
layout(std430, binding = 4) readonly buffer Gamma { float gamma_[]; };
layout(std430, binding = 5) readonly buffer Beta { float beta_[]; };
#endif

void main()
{
    int total = P.N * P.C * P.S;
    AG_FOR(i, total) {
        int ch = P.S == 1 ? i % P.C : (i / P.S) % P.C;
        float scale = st[3 * ch + 2];
        if ((P.has & HAS_GAMMA) != 0) scale *= gamma_[P.gamma + ch];
        float shift = (P.has & HAS_BETA) != 0 ? beta_[P.beta + ch] : 0.0;
        y[P.y + i] = ((x[P.x + i] - st[3 * ch]) - st[3 * ch + 1]) * scale + shift;
    }
}
