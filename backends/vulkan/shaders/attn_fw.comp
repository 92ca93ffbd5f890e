#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "crmath.glsl"
#include "philox.glsl"
#include "attn_bufs.glsl"
// Attention forward: one group per query row. Two passes over the keys: the
// row max, then exp(s - max) into the sum and (times the dropout factor) into
// o, which is divided by the sum at the end.
AT_BUF(1, readonly, Q, q)
AT_BUF(2, readonly, K, k)
AT_BUF(3, readonly, V, v)
AT_BUF(4, readonly, M, mask)
AT_BUF(5, writeonly, St, stats)
AT_BUF(6, writeonly, O, o)
#include "attention.glsl"

void main()
{
    int g = att_group();
    if (g >= P.rows) return; // the whole group
    int t = int(gl_LocalInvocationID.x), wg = int(gl_WorkGroupSize.x);
    int h = g / P.L, i = g - h * P.L, b0 = h / P.B1, b1 = h - b0 * P.B1;
    int qr = att_head(P.vq, b0, b1) + i * P.vq.w, k0 = att_head(P.vk, b0, b1);
    int v0 = att_head(P.vv, b0, b1), mr = att_head(P.vm, b0, b1) + i * P.vm.w;
    int nj = P.causal != 0 && i + 1 < P.S ? i + 1 : P.S;

    // the first AT_CACHE chunks' scores stay for the second pass
    float mx = -1.0 / 0.0, sc[AT_CACHE];
    for (int j = t, c = 0; j < nj; j += wg, c++) {
        float s = att_score(qr, k0 + j * P.vk.w, mr, j);
        if (c < AT_CACHE) sc[c] = s;
        mx = att_max2(mx, s);
    }
    mx = att_grp_max(mx);

    // columns in blocks of AT_COLS an invocation; wider rows take the keys again
    float ls = 0.0, lc = 0.0, inv = 0.0;
    int orow = att_head(P.vo, b0, b1) + i * P.vo.w;
    for (int e0 = 0; e0 == 0 || e0 < P.Ev; e0 += AT_COLS * wg) {
        float acc[AT_COLS];
        for (int c = 0; c < AT_COLS; c++) acc[c] = 0.0;
        for (int j0 = 0; j0 < nj; j0 += wg) {
            int j = j0 + t;
            float w = 0.0;
            if (j < nj) {
                int c = j0 / wg;
                float s = c < AT_CACHE ? sc[c] : att_score(qr, k0 + j * P.vk.w, mr, j);
                float ex = ag_exp(s - mx);
                if (e0 == 0) att_add(ls, lc, ex);
                w = ex * att_keep(g, j);
            }
            wa[t] = w;
            barrier();
            int cnt = min(wg, nj - j0), vr = v0 + j0 * P.vv.w;
            for (int c = 0; c < AT_COLS; c++) {
                int e = e0 + t + c * wg;
                if (e < P.Ev)
                    for (int u = 0; u < cnt; u++) acc[c] += wa[u] * v[vr + u * P.vv.w + e];
            }
            barrier();
        }
        if (e0 == 0) inv = cr_div(1.0, att_grp_sum(ls - lc));
        for (int c = 0; c < AT_COLS; c++) {
            int e = e0 + t + c * wg;
            if (e < P.Ev) o[orow + e] = acc[c] * inv;
        }
    }
    if (t == 0) {
        stats[P.st + 2 * g] = mx;
        stats[P.st + 2 * g + 1] = inv;
    }
}
