#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "norm.glsl"
// Layer norm's dgamma / dbeta: sums over the rows of [rows, D]. Work-group
// (block, chunk) covers cpg consecutive columns (consecutive invocations read
// consecutive columns) over rows [chunk R, chunk R + R); blocks are x (and y
// past 65535), chunks z. With one chunk it writes the results; otherwise
// partials part[chunk][2][D], which norm_ln_param_final adds in chunk order.

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) writeonly buffer Part { float part[]; };
#ifdef AG_PACKED
// the per-row / per-channel operands in one buffer (vk_norm.c, packed())
layout(std430, binding = 4) buffer Aux { float aux[]; };
#define mean_ aux
#define rstd_ aux
#define dgamma_ aux
#define dbeta_ aux
#else
layout(std430, binding = 4) readonly buffer Mean { float mean_[]; };
layout(std430, binding = 5) readonly buffer Rstd { float rstd_[]; };
layout(std430, binding = 6) writeonly buffer DGamma { float dgamma_[]; };
layout(std430, binding = 7) writeonly buffer DBeta { float dbeta_[]; };
#endif

void main()
{
    int t = int(gl_LocalInvocationID.x), wg = int(gl_WorkGroupSize.x);
    int cpg = P.cpg, lane = t / cpg, lanes = wg / cpg, D = P.S, rows = P.C;
    int col = group_id() * cpg + t % cpg;
    int chunk = int(gl_WorkGroupID.z);
    bool live = col < D;
    int r0 = chunk * P.R, r1 = live ? min(rows, r0 + P.R) : r0;
    float sg = 0.0, cg = 0.0, sb = 0.0, cb = 0.0;
    for (int r = r0 + lane; r < r1; r += lanes) {
        int a = r * D + col;
        float g = dy[P.dy + a];
        kadd(sb, cb, g);
        kadd(sg, cg, g * ((x[P.x + a] - mean_[P.mean + r]) * rstd_[P.rstd + r]));
    }
    float G = group_sum(t, cpg, sg - cg);
    float B = group_sum(t, cpg, sb - cb);
    if (!live || lane != 0) return;
    if (P.nchunk == 1) {
        if ((P.has & HAS_DGAMMA) != 0) dgamma_[P.dgamma + col] = G;
        if ((P.has & HAS_DBETA) != 0) dbeta_[P.dbeta + col] = B;
    } else {
        part[2 * chunk * D + col] = G;
        part[(2 * chunk + 1) * D + col] = B;
    }
}
