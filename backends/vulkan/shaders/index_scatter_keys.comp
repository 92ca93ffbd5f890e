#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "index.glsl"
// scatter_add, sort path. Each distinct index line (lines that differ only
// along axes where the index has stride 0 share one) becomes Lp = 2^k keys
// (target, position), padded with (~0, ~0); index_bitonic_* order each line
// by target, then position; index_scatter_runs adds each run of equal
// targets to y in position order. Out-of-range targets become `size` and are
// skipped. This shader writes the keys.

AG_PARAMS {
    Shape qsh;
    Strides qs;
    int L, log_lp, isa, size;
} P;
layout(std430, binding = 1) readonly buffer I { int idx[]; };
layout(std430, binding = 2) writeonly buffer K { uvec2 keys[]; };

void main()
{
    int c[8];
    int lp = 1 << P.log_lp, total = P.qsh.numel << P.log_lp;
    AG_FOR(g, total) {
        int q = g >> P.log_lp, p = g & (lp - 1);
        uvec2 key = uvec2(0xFFFFFFFFu);
        if (p < P.L) {
            if (P.qsh.nd > 1) ag_coords(P.qsh, q, c);
            int k = idx[AT(P.qsh, P.qs, c, q) + p * P.isa];
            key = uvec2(k >= 0 && k < P.size ? uint(k) : uint(P.size), uint(p));
        }
        keys[g] = key;
    }
}
