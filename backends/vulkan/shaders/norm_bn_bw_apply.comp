#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm.glsl"
// Batch norm backward, element-wise: dx = gamma rstd (dy - A' - xhat B') with
// norm_bn_bw_sums' st[2 ch ..] = (A', B') in training, dx = gamma rstd dy in
// eval (st unused).

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) writeonly buffer DX { float dx[]; };
#ifdef AG_PACKED
// the per-row / per-channel operands in one buffer (vk_norm.c, packed())
layout(std430, binding = 4) buffer Aux { float aux[]; };
#define st_ aux
#define mean_ aux
#define rstd_ aux
#define gamma_ aux
#else
layout(std430, binding = 4) readonly buffer St { float st_[]; };
layout(std430, binding = 5) readonly buffer Mean { float mean_[]; };
layout(std430, binding = 6) readonly buffer Rstd { float rstd_[]; };
layout(std430, binding = 7) readonly buffer Gamma { float gamma_[]; };
#endif

void main()
{
    int total = P.N * P.C * P.S;
    AG_FOR(i, total) {
        int ch = P.S == 1 ? i % P.C : (i / P.S) % P.C;
        float rs = rstd_[P.rstd + ch];
        float k = (P.has & HAS_GAMMA) != 0 ? gamma_[P.gamma + ch] * rs : rs;
        float am = 0.0, bm = 0.0;
        if (P.training != 0) {
            am = st_[2 * ch];
            bm = st_[2 * ch + 1];
        }
        float xh = (x[P.x + i] - mean_[P.mean + ch]) * rs;
        dx[P.dx + i] = k * (dy[P.dy + i] - am - xh * bm);
    }
}
