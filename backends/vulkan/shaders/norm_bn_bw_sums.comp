#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef AG_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common.glsl"
#include "crmath.glsl"
#include "norm.glsl"
// Batch norm backward, per channel: A = sum(dy), B = sum(dy xhat) give
// dbeta = A, dgamma = B and, for norm_bn_bw_apply, st[2 ch ..] = (A / cnt,
// B / cnt) in training (0 in eval: the statistics are constants there).

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) writeonly buffer St { float st[]; };
#ifdef AG_PACKED
// the per-row / per-channel operands in one buffer (vk_norm.c, packed())
layout(std430, binding = 4) buffer Aux { float aux[]; };
#define mean_ aux
#define rstd_ aux
#define dgamma_ aux
#define dbeta_ aux
#else
layout(std430, binding = 4) readonly buffer Mean { float mean_[]; };
layout(std430, binding = 5) readonly buffer Rstd { float rstd_[]; };
layout(std430, binding = 6) writeonly buffer DGamma { float dgamma_[]; };
layout(std430, binding = 7) writeonly buffer DBeta { float dbeta_[]; };
#endif

void main()
{
    int t = norm_lid(P.cpg), wg = int(gl_WorkGroupSize.x);
    int lane = t / P.cpg, lanes = wg / P.cpg;
    int ch = group_id() * P.cpg + t % P.cpg;
    bool live = ch < P.C;
    int cnt = live ? P.N * P.S : 0;
    float m = live ? mean_[P.mean + ch] : 0.0, rs = live ? rstd_[P.rstd + ch] : 0.0;
    float sa = 0.0, ca = 0.0, sb = 0.0, cb = 0.0;
    for (int e = lane; e < cnt; e += lanes) {
        int a = chan_addr(e, ch, P.N, P.C, P.S);
        float ge = dy[P.dy + a];
        kadd(sa, ca, ge);
        kadd(sb, cb, ge * ((x[P.x + a] - m) * rs));
    }
    float A = group_sum(t, P.cpg, sa - ca);
    float B = group_sum(t, P.cpg, sb - cb);
    if (!live || lane != 0) return;
    if ((P.has & HAS_DGAMMA) != 0) dgamma_[P.dgamma + ch] = B;
    if ((P.has & HAS_DBETA) != 0) dbeta_[P.dbeta + ch] = A;
    bool centre = P.training != 0 && P.N * P.S > 0;
    float n = float(P.N * P.S);
    st[2 * ch] = centre ? cr_div(A, n) : 0.0;
    st[2 * ch + 1] = centre ? cr_div(B, n) : 0.0;
}
