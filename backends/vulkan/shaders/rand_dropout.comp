#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "philox.glsl"
// Dropout: mask = (uniform(i) >= p) * scale, y = x * mask; one invocation per
// Philox block of 4 elements. The masks equal the CPU backend's.

AG_PARAMS {
    int n, yo, mo, xo, has_mask;
    uint k0, k1, s0, s1;
    float p, scale;
} P;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer M { float mask[]; };
layout(std430, binding = 3) readonly buffer X { float x[]; };

void main()
{
    int nblocks = P.n / 4 + (P.n % 4 != 0 ? 1 : 0);
    AG_FOR(blk, nblocks) {
        uvec4 w = philox_block(P.k0, P.k1, P.s0, P.s1, blk);
        int i0 = blk * 4;
        for (int k = 0; k < 4 && i0 + k < P.n; k++) {
            float m = u01(w[k]) >= P.p ? P.scale : 0.0;
            if (P.has_mask != 0) mask[P.mo + i0 + k] = m;
            y[P.yo + i0 + k] = x[P.xo + i0 + k] * m;
        }
    }
}
