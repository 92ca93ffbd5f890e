/* Fused scaled-dot-product attention (backend.h, ag_attn_args), with the
 * semantics of backends/cpu/cpu_attention.c.
 *
 * attn_fw and attn_bw_q: one work group per (head, block of ATT_R query rows);
 * its items take the keys in chunks of the group size, one key each for all
 * the block's rows (each key row read once for ATT_R scores), then stride over
 * the features to accumulate the rows' outputs (or dq) in local memory.
 * attn_bw_kv: one work group per (head, block of ATT_R key rows), its items one
 * query row each, for dk and dv. No atomics: every output element has one
 * owner, so results do not depend on timing.
 *
 * Scores are sums over e in order of q_e k_e, then times scale, plus the mask,
 * in every kernel, with contraction off: backward rebuilds forward's weights
 * exp(s - m) * (1 / l) bit for bit from the saved (m, 1 / l). Barriers are never in
 * divergent code: chunk loops' bounds are uniform over a group. */
#pragma OPENCL FP_CONTRACT OFF

#include "rand.cl"

#define ATT_R 8 /* rows (keys in attn_bw_kv) per group; ATT_R in ocl_attention.c */

/* Views, indexing the arrays of att_dims (ATT_* in ocl_attention.c). */
#define VQ 0
#define VK 1
#define VV 2
#define VM 3
#define VO 4
#define VDO 5
#define VDQ 6
#define VDK 7
#define VDV 8
#define ATT_NV 12

/* Laid out as ocl_attn_dims in ocl_attention.c. */
typedef struct {
    int B1, L, S, E, Ev, causal, has_mask, drop;
    int st_off, dl_off, mask_cs, pad0;
    float scale, p, keep, pad1;
    uint k0, k1, s0, s1;
    int off[ATT_NV], bs0[ATT_NV], bs1[ATT_NV], rs[ATT_NV];
} att_dims;

/* A view's element offset at head (b0, b1). */
#define ATT_BASE(d, v, b0, b1) ((d).off[v] + (b0) * (d).bs0[v] + (b1) * (d).bs1[v])

/* NaN sticks */
inline float att_max(float a, float b) { return b > a || isnan(b) ? b : a; }

/* ATT_R tree reductions at once over the whole group (wg a power of two),
 * rows of red [ATT_R][wg]; v[r] becomes row r's result for every item, and
 * red is free again on return. */
inline void att_group_reduce(local float *red, int t, int wg, float *v, bool is_max)
{
    for (int r = 0; r < ATT_R; r++) red[r * wg + t] = v[r];
    for (int s = wg / 2; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (t < s)
            for (int r = 0; r < ATT_R; r++) {
                float a = red[r * wg + t], b = red[r * wg + t + s];
                red[r * wg + t] = is_max ? att_max(a, b) : a + b;
            }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int r = 0; r < ATT_R; r++) v[r] = red[r * wg];
    barrier(CLK_LOCAL_MEM_FENCE);
}

/* Kahan step: an item's terms before the tree (the CPU sums delta in double);
 * an infinite sum stops compensating so that it stays infinite. */
inline void att_kadd(float *s, float *c, float v)
{
    float y = v - *c, t = *s + y;
    *c = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

/* dot[r] = a_r . b over n features: rows a_r = a + rows[r] * ars, one b. */
inline void att_dots_rows(global const float *a, int ars, const int *rows,
                          global const float *b, int n, float *dot)
{
    for (int r = 0; r < ATT_R; r++) dot[r] = 0.0f;
    for (int e = 0; e < n; e++) {
        float be = b[e];
        for (int r = 0; r < ATT_R; r++) dot[r] += a[rows[r] * ars + e] * be;
    }
}

/* scores of rows[r] against key j (attn_fw, attn_bw_q) */
inline void att_scores_rows(att_dims d, global const float *qh, const int *rows,
                            global const float *kj, global const float *mask, int mo, int j,
                            float *s)
{
    att_dots_rows(qh, d.rs[VQ], rows, kj, d.E, s);
    for (int r = 0; r < ATT_R; r++) {
        s[r] = d.scale * s[r];
        if (d.has_mask) s[r] += mask[mo + rows[r] * d.rs[VM] + j * d.mask_cs];
    }
}

/* scores of row i against keys keys[r] (attn_bw_kv): the same sums */
inline void att_scores_keys(att_dims d, global const float *qi, global const float *kh,
                            const int *keys, global const float *mask, int mo, int i, float *s)
{
    att_dots_rows(kh, d.rs[VK], keys, qi, d.E, s);
    for (int r = 0; r < ATT_R; r++) {
        s[r] = d.scale * s[r];
        if (d.has_mask) s[r] += mask[mo + i * d.rs[VM] + keys[r] * d.mask_cs];
    }
}

/* The dropout factor of element e of [B0, B1, L, S]: keep = 1 / (1 - p), or 0. */
inline float att_keep(att_dims d, int e)
{
    uint4 w = philox_block(d.k0, d.k1, d.s0, d.s1, e / 4);
    return u01(word4(w, e % 4)) >= d.p ? d.keep : 0.0f;
}

/* The keys row i sees; 0 past the last row. */
inline int att_nkeys(att_dims d, int i)
{
    return i >= d.L ? 0 : d.causal && i + 1 < d.S ? i + 1 : d.S;
}

/* The block's rows (clamped: rows past the end read the last one, unused) and
 * how many keys each sees; returns the most. */
inline int att_block_rows(att_dims d, int i0, int *rows, int *nj)
{
    int most = 0;
    for (int r = 0; r < ATT_R; r++) {
        rows[r] = i0 + r < d.L ? i0 + r : d.L - 1;
        nj[r] = att_nkeys(d, i0 + r);
        most = nj[r] > most ? nj[r] : most;
    }
    return most;
}

/* acc[r * n + e] += sum_jj w[r * wg + jj] x[(x0 + jj) * xrs + e] over jj < cnt,
 * the items striding over e: one read of x for ATT_R rows. */
inline void att_accumulate(local float *acc, int n, local const float *w, int wg, int cnt,
                           global const float *x, int xrs, int t)
{
    for (int e = t; e < n; e += wg) {
        float a[ATT_R];
        for (int r = 0; r < ATT_R; r++) a[r] = acc[r * n + e];
        for (int jj = 0; jj < cnt; jj++) {
            float xe = x[jj * xrs + e];
            for (int r = 0; r < ATT_R; r++) a[r] += w[r * wg + jj] * xe;
        }
        for (int r = 0; r < ATT_R; r++) acc[r * n + e] = a[r];
    }
}

/* Zeroes acc [ATT_R][n] the way att_accumulate owns it (item t: e = t mod wg),
 * so that no barrier is needed between them, even when no chunk runs. */
inline void att_zero(local float *acc, int n, int t, int wg)
{
    for (int e = t; e < n; e += wg)
        for (int r = 0; r < ATT_R; r++) acc[r * n + e] = 0.0f;
}

/* Forward. red: ATT_R * wg floats; acc: ATT_R * Ev. */
kernel void attn_fw(att_dims dims, global const float *q, global const float *k,
                    global const float *v, global const float *mask, global float *o,
                    global float *stats, local float *red, local float *acc)
{
    const att_dims d = dims;
    const int t = (int)get_local_id(0), wg = (int)get_local_size(0), g = (int)get_group_id(0);
    const int nblk = (d.L + ATT_R - 1) / ATT_R;
    const int h = g / nblk, i0 = g % nblk * ATT_R, b0 = h / d.B1, b1 = h % d.B1;
    const int Ev = d.Ev, vrs = d.rs[VV], krs = d.rs[VK];
    global const float *qh = q + ATT_BASE(d, VQ, b0, b1);
    global const float *kh = k + ATT_BASE(d, VK, b0, b1);
    global const float *vh = v + ATT_BASE(d, VV, b0, b1);
    const int mo = d.has_mask ? ATT_BASE(d, VM, b0, b1) : 0;
    int rows[ATT_R], nj[ATT_R];
    const int most = att_block_rows(d, i0, rows, nj);

    /* pass 1: each item's running (max, sum) over its keys, then the group's */
    float mt[ATT_R], lt[ATT_R], s[ATT_R];
    for (int r = 0; r < ATT_R; r++) {
        mt[r] = -INFINITY;
        lt[r] = 0.0f;
    }
    for (int j = t; j < most; j += wg) {
        att_scores_rows(d, qh, rows, kh + j * krs, mask, mo, j, s);
        for (int r = 0; r < ATT_R; r++) {
            float mn = att_max(mt[r], s[r]);
            if (j < nj[r] && mn != -INFINITY) { /* all -inf so far: nothing yet */
                lt[r] = lt[r] * exp(mt[r] - mn) + exp(s[r] - mn);
                mt[r] = mn;
            }
        }
    }
    /* a row whose every key is -inf gets m = -inf and 1 / l = NaN, as on the CPU */
    float m[ATT_R], inv[ATT_R];
    for (int r = 0; r < ATT_R; r++) m[r] = mt[r];
    att_group_reduce(red, t, wg, m, true);
    for (int r = 0; r < ATT_R; r++) inv[r] = lt[r] * exp(mt[r] - m[r]);
    att_group_reduce(red, t, wg, inv, false);
    for (int r = 0; r < ATT_R; r++) {
        inv[r] = 1.0f / inv[r];
        if (t == 0 && nj[r] > 0) {
            const int row = h * d.L + i0 + r;
            stats[d.st_off + 2 * row] = m[r];
            stats[d.st_off + 2 * row + 1] = inv[r];
        }
    }

    /* pass 2: a chunk's weights p_ij z_ij in red, then o_i += p_ij z_ij v_j */
    att_zero(acc, Ev, t, wg);
    for (int j0 = 0; j0 < most; j0 += wg) {
        const int j = j0 + t;
        float p[ATT_R] = {0.0f};
        if (j < most) {
            att_scores_rows(d, qh, rows, kh + j * krs, mask, mo, j, s);
            for (int r = 0; r < ATT_R; r++) {
                p[r] = j < nj[r] ? exp(s[r] - m[r]) * inv[r] : 0.0f;
                if (d.drop && j < nj[r]) p[r] *= att_keep(d, (h * d.L + i0 + r) * d.S + j);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* the last chunk's readers are done */
        for (int r = 0; r < ATT_R; r++) red[r * wg + t] = p[r];
        barrier(CLK_LOCAL_MEM_FENCE);
        const int cnt = most - j0 < wg ? most - j0 : wg;
        att_accumulate(acc, Ev, red, wg, cnt, vh + j0 * vrs, vrs, t);
    }
    global float *oh = o + ATT_BASE(d, VO, b0, b1);
    for (int r = 0; r < ATT_R && i0 + r < d.L; r++)
        for (int e = t; e < Ev; e += wg) oh[(i0 + r) * d.rs[VO] + e] = acc[r * Ev + e];
}

/* Backward over a block of query rows: delta_i (always) and dq_i (has_dq).
 * red: ATT_R * wg floats; acc: ATT_R * E. */
kernel void attn_bw_q(att_dims dims, int has_dq, global const float *q, global const float *k,
                      global const float *v, global const float *mask, global const float *stats,
                      global const float *dout, global float *delta, global float *dq,
                      local float *red, local float *acc)
{
    const att_dims d = dims;
    const int t = (int)get_local_id(0), wg = (int)get_local_size(0), g = (int)get_group_id(0);
    const int nblk = (d.L + ATT_R - 1) / ATT_R;
    const int h = g / nblk, i0 = g % nblk * ATT_R, b0 = h / d.B1, b1 = h % d.B1;
    const int E = d.E, vrs = d.rs[VV], krs = d.rs[VK];
    global const float *qh = q + ATT_BASE(d, VQ, b0, b1);
    global const float *gh = dout + ATT_BASE(d, VDO, b0, b1);
    global const float *kh = k + ATT_BASE(d, VK, b0, b1);
    global const float *vh = v + ATT_BASE(d, VV, b0, b1);
    const int mo = d.has_mask ? ATT_BASE(d, VM, b0, b1) : 0;
    int rows[ATT_R], nj[ATT_R];
    const int most = att_block_rows(d, i0, rows, nj);
    float m[ATT_R], inv[ATT_R], s[ATT_R], dp[ATT_R];
    for (int r = 0; r < ATT_R; r++) {
        const int row = h * d.L + rows[r];
        m[r] = stats[d.st_off + 2 * row];
        inv[r] = stats[d.st_off + 2 * row + 1];
    }

    /* delta from the rebuilt weights (not dout . o): a weight of exactly 1 then
     * gives ds = 0 exactly, as on the CPU */
    float dsum[ATT_R], dcomp[ATT_R];
    for (int r = 0; r < ATT_R; r++) dsum[r] = dcomp[r] = 0.0f;
    for (int j = t; j < most; j += wg) {
        att_scores_rows(d, qh, rows, kh + j * krs, mask, mo, j, s);
        att_dots_rows(gh, d.rs[VDO], rows, vh + j * vrs, d.Ev, dp);
        for (int r = 0; r < ATT_R; r++)
            if (j < nj[r]) {
                float p = exp(s[r] - m[r]) * inv[r];
                if (d.drop) p *= att_keep(d, (h * d.L + i0 + r) * d.S + j);
                att_kadd(&dsum[r], &dcomp[r], p * dp[r]);
            }
    }
    for (int r = 0; r < ATT_R; r++) dsum[r] -= dcomp[r];
    att_group_reduce(red, t, wg, dsum, false);
    if (t == 0)
        for (int r = 0; r < ATT_R && i0 + r < d.L; r++)
            delta[d.dl_off + h * d.L + i0 + r] = dsum[r];
    if (!has_dq) return; /* uniform over the group: no barrier follows for anyone */

    att_zero(acc, E, t, wg);
    for (int j0 = 0; j0 < most; j0 += wg) {
        const int j = j0 + t;
        float ds[ATT_R] = {0.0f};
        if (j < most) {
            att_scores_rows(d, qh, rows, kh + j * krs, mask, mo, j, s);
            att_dots_rows(gh, d.rs[VDO], rows, vh + j * vrs, d.Ev, dp);
            for (int r = 0; r < ATT_R; r++)
                if (j < nj[r]) {
                    float p = exp(s[r] - m[r]) * inv[r], z = dp[r];
                    if (d.drop) z *= att_keep(d, (h * d.L + i0 + r) * d.S + j);
                    ds[r] = p * (z - dsum[r]);
                }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int r = 0; r < ATT_R; r++) red[r * wg + t] = ds[r];
        barrier(CLK_LOCAL_MEM_FENCE);
        const int cnt = most - j0 < wg ? most - j0 : wg;
        att_accumulate(acc, E, red, wg, cnt, kh + j0 * krs, krs, t);
    }
    global float *dqh = dq + ATT_BASE(d, VDQ, b0, b1);
    for (int r = 0; r < ATT_R && i0 + r < d.L; r++)
        for (int e = t; e < E; e += wg) dqh[(i0 + r) * d.rs[VDQ] + e] = d.scale * acc[r * E + e];
}

/* Backward over a block of key rows: dv_j (has & 1) and dk_j (has & 2), from
 * the query rows that see them. pz, dsr: ATT_R * wg floats each; acc:
 * ATT_R * (E + Ev) (dk, then dv). */
kernel void attn_bw_kv(att_dims dims, int has, global const float *q, global const float *k,
                       global const float *v, global const float *mask,
                       global const float *stats, global const float *dout,
                       global const float *delta, global float *dk, global float *dv,
                       local float *pz, local float *dsr, local float *acc)
{
    const att_dims d = dims;
    const int t = (int)get_local_id(0), wg = (int)get_local_size(0), g = (int)get_group_id(0);
    const int nblk = (d.S + ATT_R - 1) / ATT_R;
    const int h = g / nblk, j0 = g % nblk * ATT_R, b0 = h / d.B1, b1 = h % d.B1;
    const int E = d.E, Ev = d.Ev, qrs = d.rs[VQ], grs = d.rs[VDO];
    const bool want_dv = (has & 1) != 0, want_dk = (has & 2) != 0;
    global const float *qh = q + ATT_BASE(d, VQ, b0, b1);
    global const float *gh = dout + ATT_BASE(d, VDO, b0, b1);
    global const float *kh = k + ATT_BASE(d, VK, b0, b1);
    global const float *vh = v + ATT_BASE(d, VV, b0, b1);
    const int mo = d.has_mask ? ATT_BASE(d, VM, b0, b1) : 0;
    local float *dka = acc, *dva = acc + ATT_R * E;
    int keys[ATT_R];
    for (int r = 0; r < ATT_R; r++) keys[r] = j0 + r < d.S ? j0 + r : d.S - 1;
    /* causal: row i sees key j when j <= i (top-left aligned) */
    const int first = d.causal ? j0 : 0;

    att_zero(dka, E, t, wg);
    att_zero(dva, Ev, t, wg);
    for (int c0 = first; c0 < d.L; c0 += wg) {
        const int i = c0 + t;
        float w[ATT_R] = {0.0f}, ds[ATT_R] = {0.0f}, s[ATT_R], dp[ATT_R];
        if (i < d.L) {
            const int row = h * d.L + i;
            const float m = stats[d.st_off + 2 * row], inv = stats[d.st_off + 2 * row + 1];
            att_scores_keys(d, qh + i * qrs, kh, keys, mask, mo, i, s);
            if (want_dk) att_dots_rows(vh, d.rs[VV], keys, gh + i * grs, Ev, dp);
            const float dl = want_dk ? delta[d.dl_off + row] : 0.0f;
            for (int r = 0; r < ATT_R; r++)
                if (j0 + r < d.S && (!d.causal || j0 + r <= i)) {
                    float p = exp(s[r] - m) * inv, z = 1.0f;
                    if (d.drop) z = att_keep(d, row * d.S + j0 + r);
                    w[r] = d.drop ? p * z : p;
                    if (want_dk) ds[r] = p * ((d.drop ? dp[r] * z : dp[r]) - dl);
                }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int r = 0; r < ATT_R; r++) {
            pz[r * wg + t] = w[r];
            dsr[r * wg + t] = ds[r];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        const int cnt = d.L - c0 < wg ? d.L - c0 : wg;
        if (want_dk) att_accumulate(dka, E, dsr, wg, cnt, qh + c0 * qrs, qrs, t);
        if (want_dv) att_accumulate(dva, Ev, pz, wg, cnt, gh + c0 * grs, grs, t);
    }
    const int dko = ATT_BASE(d, VDK, b0, b1), dvo = ATT_BASE(d, VDV, b0, b1);
    for (int r = 0; r < ATT_R && j0 + r < d.S; r++) {
        if (want_dk)
            for (int e = t; e < E; e += wg)
                dk[dko + (j0 + r) * d.rs[VDK] + e] = d.scale * dka[r * E + e];
        if (want_dv)
            for (int e = t; e < Ev; e += wg) dv[dvo + (j0 + r) * d.rs[VDV] + e] = dva[r * Ev + e];
    }
}
