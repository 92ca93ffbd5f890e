#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "index.glsl"
// One invocation per (position p, line): where a run of equal targets starts
// at p, it adds the run's terms in position order to y[.. target ..] of its
// line. Lines vary fastest, so neighbouring invocations read neighbouring
// elements of src when the lines are its last axis (embedding's gradient).

AG_PARAMS {
    Shape lsh;
    Strides ys, ss, qs;
    int L, log_lp, size, ysa, ssa;
} P;
layout(std430, binding = 1) buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer S { float src[]; };
layout(std430, binding = 3) readonly buffer K { uvec2 keys[]; };

void main()
{
    int c[8];
    int lines = P.lsh.numel;
    AG_FOR(g, lines * P.L) {
        int p = g / lines, line = g - p * lines;
        if (P.lsh.nd > 1) ag_coords(P.lsh, line, c);
        int base = AT(P.lsh, P.qs, c, line) << P.log_lp;
        uint k = keys[base + p].x;
        if (k >= uint(P.size) || (p > 0 && keys[base + p - 1].x == k)) continue;
        int oy = AT(P.lsh, P.ys, c, line) + int(k) * P.ysa, os = AT(P.lsh, P.ss, c, line);
        float acc = y[oy];
        for (int r = p; r < P.L; r++) {
            uvec2 key = keys[base + r];
            if (key.x != k) break;
            acc += src[os + int(key.y) * P.ssa];
        }
        y[oy] = acc;
    }
}
