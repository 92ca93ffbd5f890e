#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "philox.glsl"
#include "attn_bufs.glsl"
// Attention backward, one group per key row j, over the query rows that see
// it (i >= j when causal): dv_j = sum_i p z dout_i, dk_j = scale sum_i ds q_i,
// with delta from attn_bw_q.
AT_BUF(1, readonly, Q, q)
AT_BUF(2, readonly, K, k)
AT_BUF(3, readonly, V, v)
AT_BUF(4, readonly, M, mask)
AT_BUF(5, readonly, St, stats)
AT_BUF(6, readonly, G, dout)
AT_BUF(7, readonly, D, delta)
AT_BUF(8, writeonly, DK, dk)
AT_BUF(9, writeonly, DV, dv)
#define AT_BACKWARD
#include "attention.glsl"

void main()
{
    int g = att_group();
    if (g >= P.rows) return;
    int t = int(gl_LocalInvocationID.x), wg = int(gl_WorkGroupSize.x);
    int h = g / P.S, j = g - h * P.S, b0 = h / P.B1, b1 = h - b0 * P.B1;
    int q0 = att_head(P.vq, b0, b1), kr = att_head(P.vk, b0, b1) + j * P.vk.w;
    int vr = att_head(P.vv, b0, b1) + j * P.vv.w, m0 = att_head(P.vm, b0, b1);
    int g0 = att_head(P.vg, b0, b1);
    bool want_dk = (P.want & WANT_DK) != 0, want_dv = (P.want & WANT_DV) != 0;

    int dkr = att_head(P.vdk, b0, b1) + j * P.vdk.w, dvr = att_head(P.vdv, b0, b1) + j * P.vdv.w;
    int cols = max(want_dk ? P.E : 0, want_dv ? P.Ev : 0);
    for (int e0 = 0; e0 < cols; e0 += AT_COLS * wg) { // wider rows take the queries again
        float ak[AT_COLS], av[AT_COLS];
        for (int c = 0; c < AT_COLS; c++) ak[c] = av[c] = 0.0;
        for (int i0 = P.causal != 0 ? j : 0; i0 < P.L; i0 += wg) {
            int i = i0 + t;
            float pz = 0.0, ds = 0.0;
            if (i < P.L) {
                int row = h * P.L + i;
                float p = ag_exp(att_score(q0 + i * P.vq.w, kr, m0 + i * P.vm.w, j) -
                                 stats[P.st + 2 * row]) * stats[P.st + 2 * row + 1];
                float z = att_keep(row, j);
                pz = p * z;
                if (want_dk) ds = p * (z * att_dot_gv(g0 + i * P.vg.w, vr) - delta[P.de + row]);
            }
            wa[t] = pz;
            wb[t] = ds;
            barrier();
            int cnt = min(wg, P.L - i0);
            for (int c = 0; c < AT_COLS; c++) {
                int e = e0 + t + c * wg;
                if (want_dv && e < P.Ev)
                    for (int u = 0; u < cnt; u++) av[c] += wa[u] * dout[g0 + (i0 + u) * P.vg.w + e];
                if (want_dk && e < P.E)
                    for (int u = 0; u < cnt; u++) ak[c] += wb[u] * q[q0 + (i0 + u) * P.vq.w + e];
            }
            barrier();
        }
        for (int c = 0; c < AT_COLS; c++) {
            int e = e0 + t + c * wg;
            if (want_dk && e < P.E) dk[dkr + e] = P.scale * ak[c];
            if (want_dv && e < P.Ev) dv[dvr + e] = av[c];
        }
    }
}
