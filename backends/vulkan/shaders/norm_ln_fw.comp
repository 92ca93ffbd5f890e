#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef AG_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common.glsl"
#include "crmath.glsl"
#include "norm.glsl"
// Layer norm forward: one work-group per row of [rows, D].

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
#ifdef AG_PACKED
// the per-row / per-channel operands in one buffer (vk_norm.c, packed())
layout(std430, binding = 3) buffer Aux { float aux[]; };
#define mean_ aux
#define rstd_ aux
#define gamma_ aux
#define beta_ aux
#else
layout(std430, binding = 3) writeonly buffer Mean { float mean_[]; };
layout(std430, binding = 4) writeonly buffer Rstd { float rstd_[]; };
layout(std430, binding = 5) readonly buffer Gamma { float gamma_[]; };
layout(std430, binding = 6) readonly buffer Beta { float beta_[]; };
#endif

void main()
{
    int t = norm_lid(1), wg = int(gl_WorkGroupSize.x);
    int row = group_id(), D = P.S;
    bool live = row < P.C;
    int cnt = live ? D : 0, base = row * D;
    float n = float(D);
    // corrected two-pass statistics: with u = x - m0 for a first mean m0,
    // mean = m0 + sum(u) / n and var = (sum(u^2) - sum(u)^2 / n) / n; the
    // correction recovers m0's rounding error, which 1 / std would magnify
    // when the spread is small against the mean
    float s = 0.0, c = 0.0;
    for (int e = t; e < cnt; e += wg) kadd(s, c, x[P.x + base + e]);
    float tot = group_sum(t, 1, s - c);
    // divides as the CPU does (an empty row gives NaN)
    float m0 = cr_div(tot, n);
    float s2 = 0.0, c2 = 0.0;
    s = 0.0;
    c = 0.0;
    for (int e = t; e < cnt; e += wg) {
        float v = x[P.x + base + e] - m0;
        kadd(s, c, v);
        kadd(s2, c2, v * v);
    }
    float d1 = group_sum(t, 1, s - c);
    float d2 = group_sum(t, 1, s2 - c2);
    float delta = cr_div(d1, n);
    // sum of squared deviations; rounding may leave it below 0, NaN stays
    float ss = d2 - d1 * delta;
    if (ss < 0.0) ss = 0.0;
    float rs = cr_div(1.0, cr_sqrt(cr_div(ss, n) + P.eps));
    if (live && t == 0) {
        if ((P.has & HAS_MEAN) != 0) mean_[P.mean + row] = m0 + delta;
        if ((P.has & HAS_RSTD) != 0) rstd_[P.rstd + row] = rs;
    }
    for (int e = t; e < cnt; e += wg) {
        float h = ((x[P.x + base + e] - m0) - delta) * rs;
        if ((P.has & HAS_GAMMA) != 0) h *= gamma_[P.gamma + e];
        if ((P.has & HAS_BETA) != 0) h += beta_[P.beta + e];
        y[P.y + base + e] = h;
    }
}
