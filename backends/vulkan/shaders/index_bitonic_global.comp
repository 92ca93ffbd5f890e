#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "index.glsl"
// One compare-exchange step (k, j) of the bitonic sort over every line of Lp
// keys, for j too wide for index_bitonic_local. Lines are Lp-aligned, so the
// direction comes from the position within the line (every line ends
// ascending).

AG_PARAMS {
    int pairs, lp, k, j;
} P;
layout(std430, binding = 1) buffer K { uvec2 keys[]; };

void main()
{
    AG_FOR(t, P.pairs) {
        int g = bitonic_first(t, P.j), h = g + P.j;
        bool up = ((g & (P.lp - 1)) & P.k) == 0;
        uvec2 a = keys[g], b = keys[h];
        if (key_gt(a, b) == up) {
            keys[g] = b;
            keys[h] = a;
        }
    }
}
