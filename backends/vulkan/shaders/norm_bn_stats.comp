#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef AG_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common.glsl"
#include "crmath.glsl"
#include "norm.glsl"
// Batch norm forward, statistics of [N, C, S] per channel (cpg channels per
// work-group): training reduces the batch and moves the running stats,
// eval takes the running stats. Writes mean / rstd when wanted and, for
// norm_bn_apply, st[3 ch ..] = (m0, delta, rstd) with mean = m0 + delta.

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer St { float st[]; };
#ifdef AG_PACKED
// the per-row / per-channel operands in one buffer (vk_norm.c, packed())
layout(std430, binding = 3) buffer Aux { float aux[]; };
#define mean_ aux
#define rstd_ aux
#define rmean_ aux
#define rvar_ aux
#else
layout(std430, binding = 3) writeonly buffer Mean { float mean_[]; };
layout(std430, binding = 4) writeonly buffer Rstd { float rstd_[]; };
layout(std430, binding = 5) buffer RMean { float rmean_[]; };
layout(std430, binding = 6) buffer RVar { float rvar_[]; };
#endif

void main()
{
    int t = norm_lid(P.cpg), wg = int(gl_WorkGroupSize.x);
    int lane = t / P.cpg, lanes = wg / P.cpg;
    int ch = group_id() * P.cpg + t % P.cpg;
    bool live = ch < P.C;
    int cnt = live ? P.N * P.S : 0;
    // the reductions run (over nothing) in eval too, so that every
    // invocation meets the same barriers
    int scnt = P.training != 0 ? cnt : 0;
    float n = float(P.N * P.S);
    // corrected two-pass statistics: see norm_ln_fw.comp
    float s = 0.0, c = 0.0;
    for (int e = lane; e < scnt; e += lanes) kadd(s, c, x[P.x + chan_addr(e, ch, P.N, P.C, P.S)]);
    float tot = group_sum(t, P.cpg, s - c);
    bool divide = P.N * P.S > 0;
    float m0 = divide ? cr_div(tot, n) : 0.0;
    float s2 = 0.0, c2 = 0.0;
    s = 0.0;
    c = 0.0;
    for (int e = lane; e < scnt; e += lanes) {
        float v = x[P.x + chan_addr(e, ch, P.N, P.C, P.S)] - m0;
        kadd(s, c, v);
        kadd(s2, c2, v * v);
    }
    float d1 = group_sum(t, P.cpg, s - c);
    float d2 = group_sum(t, P.cpg, s2 - c2);
    if (!live || lane != 0) return;
    float delta = divide ? cr_div(d1, n) : 0.0;
    // sum of squared deviations; rounding may leave it below 0, NaN stays
    float ss = d2 - d1 * delta;
    if (ss < 0.0) ss = 0.0;
    float var = divide ? cr_div(ss, n) : 0.0;
    float rs;
    if (P.training != 0) {
        rs = cr_div(1.0, cr_sqrt(var + P.eps));
        // the running variance moves towards the unbiased estimate
        float unbiased = P.N * P.S > 1 ? cr_div(ss, n - 1.0) : var;
        float m = m0 + delta;
        if ((P.has & HAS_RMEAN) != 0)
            rmean_[P.rmean + ch] = (1.0 - P.momentum) * rmean_[P.rmean + ch] + P.momentum * m;
        if ((P.has & HAS_RVAR) != 0)
            rvar_[P.rvar + ch] = (1.0 - P.momentum) * rvar_[P.rvar + ch] + P.momentum * unbiased;
    } else {
        m0 = rmean_[P.rmean + ch];
        delta = 0.0;
        rs = cr_div(1.0, cr_sqrt(rvar_[P.rvar + ch] + P.eps));
    }
    if ((P.has & HAS_MEAN) != 0) mean_[P.mean + ch] = m0 + delta;
    if ((P.has & HAS_RSTD) != 0) rstd_[P.rstd + ch] = rs;
    st[3 * ch] = m0;
    st[3 * ch + 1] = delta;
    st[3 * ch + 2] = rs;
}
