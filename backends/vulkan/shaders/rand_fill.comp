#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "philox.glsl"
#include "rand_normal.h"
// One invocation per Philox block: 4 uniform or 2 normal values, as
// backends/cpu/cpu_rand.c maps them.

AG_PARAMS {
    int normal, n, yo;
    uint k0, k1, s0, s1;
    float a, b; // uniform: low end and span (rounded in float as the CPU does)
} P;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };

void main()
{
    int per = P.normal != 0 ? 2 : 4;
    int nblocks = P.n / per + (P.n % per != 0 ? 1 : 0);
    AG_FOR(blk, nblocks) {
        uvec4 w = philox_block(P.k0, P.k1, P.s0, P.s1, blk);
        int i0 = blk * per;
        if (P.normal != 0) {
            // Box-Muller, cosine branch only (rand_normal.h)
            for (int k = 0; k < 2 && i0 + k < P.n; k++) {
                float z = rn_normal(w[2 * k], w[2 * k + 1]);
                precise float r = P.a + P.b * z;
                y[P.yo + i0 + k] = r;
            }
        } else {
            for (int k = 0; k < 4 && i0 + k < P.n; k++) {
                precise float r = P.a + P.b * u01(w[k]);
                y[P.yo + i0 + k] = r;
            }
        }
    }
}
