#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef AG_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common.glsl"
#include "crmath.glsl"
#include "norm.glsl"
// Layer norm backward, dx: one work-group per row. With ge = dy gamma,
// A = sum(ge), B = sum(ge xhat): dx = rstd (ge - A / D - xhat B / D).

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) writeonly buffer DX { float dx[]; };
#ifdef AG_PACKED
// the per-row / per-channel operands in one buffer (vk_norm.c, packed())
layout(std430, binding = 4) buffer Aux { float aux[]; };
#define mean_ aux
#define rstd_ aux
#define gamma_ aux
#else
layout(std430, binding = 4) readonly buffer Mean { float mean_[]; };
layout(std430, binding = 5) readonly buffer Rstd { float rstd_[]; };
layout(std430, binding = 6) readonly buffer Gamma { float gamma_[]; };
#endif

void main()
{
    int t = norm_lid(1), wg = int(gl_WorkGroupSize.x);
    int row = group_id(), D = P.S;
    bool live = row < P.C, g = (P.has & HAS_GAMMA) != 0;
    int cnt = live ? D : 0, base = row * D;
    float m = live ? mean_[P.mean + row] : 0.0, rs = live ? rstd_[P.rstd + row] : 0.0;
    float sa = 0.0, ca = 0.0, sb = 0.0, cb = 0.0;
    for (int e = t; e < cnt; e += wg) {
        float ge = dy[P.dy + base + e];
        if (g) ge *= gamma_[P.gamma + e];
        kadd(sa, ca, ge);
        kadd(sb, cb, ge * ((x[P.x + base + e] - m) * rs));
    }
    float A = group_sum(t, 1, sa - ca);
    float B = group_sum(t, 1, sb - cb);
    float n = float(D), am = cr_div(A, n), bm = cr_div(B, n);
    for (int e = t; e < cnt; e += wg) {
        float ge = dy[P.dy + base + e];
        if (g) ge *= gamma_[P.gamma + e];
        float xh = (x[P.x + base + e] - m) * rs;
        dx[P.dx + base + e] = rs * (ge - am - xh * bm);
    }
}
