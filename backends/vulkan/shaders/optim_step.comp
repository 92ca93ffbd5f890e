#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "crmath.glsl"
// Fused optimizer steps, mirroring backends/cpu/cpu_optim.c operation for
// operation: `precise` keeps multiply-adds unfused and in the written order,
// and division and sqrt round correctly, so every update rounds as the CPU's.

#define OPT_SGD 0
#define OPT_RMSPROP 1
#define OPT_ADAM 2

AG_PARAMS {
    int kind, n, po, go, s0o, s1o;
    float lr, wd, mom, damp, alpha, eps, b1, b2;
    float step_size, bc2_sqrt, decay, l2;
    int first, nesterov, has_s0, has_s1;
} P;
layout(std430, binding = 1) buffer Par { float p[]; };
layout(std430, binding = 2) readonly buffer Grad { float gr[]; };
layout(std430, binding = 3) buffer S0 { float s0[]; };
layout(std430, binding = 4) buffer S1 { float s1[]; };

void main()
{
    AG_FOR(i, P.n) {
        precise float pi = p[P.po + i];
        precise float g = gr[P.go + i];
        precise float np;
        if (P.kind == OPT_SGD) {
            if (P.wd != 0.0) g = g + P.wd * pi;
            if (P.has_s0 != 0) {
                precise float b = P.first != 0 ? g : P.mom * s0[P.s0o + i] + P.damp * g;
                s0[P.s0o + i] = b;
                g = P.nesterov != 0 ? g + P.mom * b : b;
            }
            np = pi - P.lr * g;
        } else if (P.kind == OPT_RMSPROP) {
            if (P.wd != 0.0) g = g + P.wd * pi;
            precise float s = P.alpha * s0[P.s0o + i] + (1.0 - P.alpha) * g * g;
            s0[P.s0o + i] = s;
            precise float avg = cr_sqrt(s) + P.eps;
            if (P.has_s1 != 0) {
                precise float b = P.mom * s1[P.s1o + i] + cr_div(g, avg);
                s1[P.s1o + i] = b;
                np = pi - P.lr * b;
            } else {
                np = pi - cr_div(P.lr * g, avg);
            }
        } else {
            pi = pi * P.decay;
            if (P.l2 != 0.0) g = g + P.l2 * pi;
            precise float m = s0[P.s0o + i];
            precise float v = s1[P.s1o + i];
            // lerp(m, g, 1 - b1), as PyTorch
            m = m + (1.0 - P.b1) * (g - m);
            v = P.b2 * v + (1.0 - P.b2) * g * g;
            s0[P.s0o + i] = m;
            s1[P.s1o + i] = v;
            precise float denom = cr_div(cr_sqrt(v), P.bc2_sqrt) + P.eps;
            np = pi - P.step_size * cr_div(m, denom);
        }
        p[P.po + i] = np;
    }
}
