#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm.glsl"
// Adds norm_ln_param's chunk partials in chunk order.

layout(std430, binding = 1) readonly buffer Part { float part[]; };
layout(std430, binding = 2) writeonly buffer DGamma { float dgamma[]; };
layout(std430, binding = 3) writeonly buffer DBeta { float dbeta[]; };

void main()
{
    int D = P.S;
    AG_FOR(col, D) {
        float sg = 0.0, cg = 0.0, sb = 0.0, cb = 0.0;
        for (int k = 0; k < P.nchunk; k++) {
            kadd(sg, cg, part[2 * k * D + col]);
            kadd(sb, cb, part[(2 * k + 1) * D + col]);
        }
        if ((P.has & HAS_DGAMMA) != 0) dgamma[P.dgamma + col] = sg - cg;
        if ((P.has & HAS_DBETA) != 0) dbeta[P.dbeta + col] = sb - cb;
    }
}
