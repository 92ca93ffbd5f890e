#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "philox.glsl"
#include "attn_bufs.glsl"
// Attention backward, one group per query row: delta_i = sum_j p z dp, then
// (when dq is wanted) a second pass over the keys for dq_i = scale sum_j ds k_j.
AT_BUF(1, readonly, Q, q)
AT_BUF(2, readonly, K, k)
AT_BUF(3, readonly, V, v)
AT_BUF(4, readonly, M, mask)
AT_BUF(5, readonly, St, stats)
AT_BUF(6, readonly, G, dout)
AT_BUF(7, writeonly, D, delta)
AT_BUF(8, writeonly, DQ, dq)
#define AT_BACKWARD
#include "attention.glsl"

void main()
{
    int g = att_group();
    if (g >= P.rows) return;
    int t = int(gl_LocalInvocationID.x), wg = int(gl_WorkGroupSize.x);
    int h = g / P.L, i = g - h * P.L, b0 = h / P.B1, b1 = h - b0 * P.B1;
    int qr = att_head(P.vq, b0, b1) + i * P.vq.w, k0 = att_head(P.vk, b0, b1);
    int v0 = att_head(P.vv, b0, b1), mr = att_head(P.vm, b0, b1) + i * P.vm.w;
    int gr = att_head(P.vg, b0, b1) + i * P.vg.w;
    int nj = P.causal != 0 && i + 1 < P.S ? i + 1 : P.S;
    float mx = stats[P.st + 2 * g], inv = stats[P.st + 2 * g + 1];

    // the first AT_CACHE chunks' p and z dp stay for the second pass
    float ds = 0.0, dc = 0.0, pc[AT_CACHE], zc[AT_CACHE];
    for (int j = t, c = 0; j < nj; j += wg, c++) {
        float p = ag_exp(att_score(qr, k0 + j * P.vk.w, mr, j) - mx) * inv;
        float dp = att_dot_gv(gr, v0 + j * P.vv.w), z = att_keep(g, j);
        att_add(ds, dc, (p * z) * dp);
        if (c < AT_CACHE) {
            pc[c] = p;
            zc[c] = z * dp;
        }
    }
    float di = att_grp_sum(ds - dc);
    if (t == 0) delta[P.de + g] = di;
    if ((P.want & WANT_DQ) == 0) return; // the whole group

    int dr = att_head(P.vdq, b0, b1) + i * P.vdq.w;
    for (int e0 = 0; e0 < P.E; e0 += AT_COLS * wg) { // wider rows take the keys again
        float acc[AT_COLS];
        for (int c = 0; c < AT_COLS; c++) acc[c] = 0.0;
        for (int j0 = 0; j0 < nj; j0 += wg) {
            int j = j0 + t;
            float w = 0.0;
            int c = j0 / wg;
            if (j < nj && c < AT_CACHE) {
                w = pc[c] * (zc[c] - di);
            } else if (j < nj) {
                float p = ag_exp(att_score(qr, k0 + j * P.vk.w, mr, j) - mx) * inv;
                float dp = att_dot_gv(gr, v0 + j * P.vv.w);
                w = p * (att_keep(g, j) * dp - di);
            }
            wa[t] = w;
            barrier();
            int cnt = min(wg, nj - j0), kr = k0 + j0 * P.vk.w;
            for (int c = 0; c < AT_COLS; c++) {
                int e = e0 + t + c * wg;
                if (e < P.E)
                    for (int u = 0; u < cnt; u++) acc[c] += wa[u] * k[kr + u * P.vk.w + e];
            }
            barrier();
        }
        for (int c = 0; c < AT_COLS; c++) {
            int e = e0 + t + c * wg;
            if (e < P.E) dq[dr + e] = P.scale * acc[c];
        }
    }
}
