#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "index.glsl"
// A work-group sorts (k_only < 0) or finishes stage k_only for j < chunk a
// chunk of 2 wg keys in shared memory. Groups past 65535 continue in y; the
// surplus ones of the last row leave before any barrier, all together.

AG_PARAMS {
    int lp, k_only, groups;
} P;
layout(std430, binding = 1) buffer K { uvec2 keys[]; };

shared uvec2 lk[2 * gl_WorkGroupSize.x];

void main()
{
    int grp = int(gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x);
    if (grp >= P.groups) return;
    int t = int(gl_LocalInvocationID.x), w = int(gl_WorkGroupSize.x), chunk = 2 * w;
    int base = grp * chunk;
    lk[t] = keys[base + t];
    lk[t + w] = keys[base + t + w];
    int k0 = P.k_only < 0 ? 2 : P.k_only, k1 = P.k_only < 0 ? chunk : P.k_only;
    for (int k = k0; k <= k1; k <<= 1)
        for (int j = (P.k_only < 0 ? k : chunk) >> 1; j > 0; j >>= 1) {
            memoryBarrierShared();
            barrier();
            int g = bitonic_first(t, j), h = g + j;
            bool up = (((base + g) & (P.lp - 1)) & k) == 0;
            uvec2 a = lk[g], b = lk[h];
            if (key_gt(a, b) == up) {
                lk[g] = b;
                lk[h] = a;
            }
        }
    memoryBarrierShared();
    barrier();
    keys[base + t] = lk[t];
    keys[base + t + w] = lk[t + w];
}
