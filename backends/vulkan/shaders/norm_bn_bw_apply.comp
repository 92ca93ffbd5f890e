#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm.glsl"
// Batch norm backward, element-wise: dx = gamma rstd (dy - A' - xhat B') with
// norm_bn_bw_sums' st[2 ch ..] = (A', B') in training, dx = gamma rstd dy in
// eval (st unused).

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) readonly buffer Mean { float mean[]; };
layout(std430, binding = 4) readonly buffer Rstd { float rstd[]; };
layout(std430, binding = 5) readonly buffer Gamma { float gamma[]; };
layout(std430, binding = 6) readonly buffer St { float st[]; };
layout(std430, binding = 7) writeonly buffer DX { float dx[]; };

void main()
{
    int total = P.N * P.C * P.S;
    AG_FOR(i, total) {
        int ch = P.S == 1 ? i % P.C : (i / P.S) % P.C;
        float rs = rstd[P.rstd + ch];
        float k = (P.has & HAS_GAMMA) != 0 ? gamma[P.gamma + ch] * rs : rs;
        float am = 0.0, bm = 0.0;
        if (P.training != 0) {
            am = st[2 * ch];
            bm = st[2 * ch + 1];
        }
        float xh = (x[P.x + i] - mean[P.mean + ch]) * rs;
        dx[P.dx + i] = k * (dy[P.dy + i] - am - xh * bm);
    }
}
