/* Fused scaled-dot-product attention (backend.h, ag_attn_args), with the
 * semantics of backends/cpu/cpu_attention.c.
 *
 * attn_fw and attn_bw_q: one work group per (head, query row); its items take
 * the row's keys in chunks of the group size, one key each, and then stride
 * over the features to accumulate the row's output (or dq) in local memory.
 * attn_bw_kv: one work group per (head, key row), its items one query row
 * each, for dk and dv. No atomics: every output element has one owner, so the
 * results do not depend on timing.
 *
 * Every kernel computes a score with att_score and a weight with att_weight,
 * and contraction is off, so backward rebuilds forward's weights bit for bit
 * from the saved (max, 1 / sum). Barriers are never inside divergent code: the
 * chunk loops' bounds are uniform over a group. */
#pragma OPENCL FP_CONTRACT OFF

#include "rand.cl"

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

/* NaN sticks */
inline float att_max(float a, float b) { return b > a || isnan(b) ? b : a; }

/* Tree reductions over the whole group (wg a power of two); every item gets
 * the result, and red is free again on return. */
inline float att_group_max(local float *red, int t, int wg, float v)
{
    red[t] = v;
    for (int s = wg / 2; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (t < s) {
            v = att_max(v, red[t + s]);
            red[t] = v;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    v = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return v;
}

inline float att_group_sum(local float *red, int t, int wg, float v)
{
    red[t] = v;
    for (int s = wg / 2; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (t < s) {
            v += red[t + s];
            red[t] = v;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    v = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return v;
}

/* Kahan step: an item's terms before the tree (the CPU sums delta in double);
 * an infinite sum stops compensating so that it stays infinite. */
inline void att_kadd(float *s, float *c, float v)
{
    float y = v - *c, t = *s + y;
    *c = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

inline float att_dot(global const float *a, global const float *b, int n)
{
    float s = 0.0f;
    for (int e = 0; e < n; e++) s += a[e] * b[e];
    return s;
}

/* s_ij = scale q_i . k_j + mask_ij; mo is the mask's (b0, b1) base. */
inline float att_score(global const float *qi, global const float *kj, int E, float scale,
                       int has_mask, global const float *mask, int mo, int mrs, int mcs, int i,
                       int j)
{
    float s = scale * att_dot(qi, kj, E);
    if (has_mask) s += mask[mo + i * mrs + j * mcs];
    return s;
}

/* p_ij from the row's (max, 1 / sum) */
inline float att_weight(float s, float m, float inv) { return exp(s - m) * inv; }

/* The dropout factor of element e of [B0, B1, L, S]: keep / (1 - p) or 0. */
inline float att_keep(uint k0, uint k1, uint s0, uint s1, float p, float keep, int e)
{
    uint4 w = philox_block(k0, k1, s0, s1, e / 4);
    return u01(word4(w, e % 4)) >= p ? keep : 0.0f;
}

/* A view's element offset at head (b0, b1). */
#define ATT_BASE(d, v, b0, b1) ((d).off[v] + (b0) * (d).bs0[v] + (b1) * (d).bs1[v])

/* Forward. red: wg floats; acc: Ev floats. */
kernel void attn_fw(att_dims dims, global const float *q, global const float *k,
                    global const float *v, global const float *mask, global float *o,
                    global float *stats, local float *red, local float *acc)
{
    const att_dims d = dims;
    const int t = (int)get_local_id(0), wg = (int)get_local_size(0), g = (int)get_group_id(0);
    const int h = g / d.L, i = g % d.L, b0 = h / d.B1, b1 = h % d.B1;
    const int E = d.E, Ev = d.Ev, vrs = d.rs[VV], krs = d.rs[VK];
    const int nj = d.causal && i + 1 < d.S ? i + 1 : d.S;
    global const float *qi = q + ATT_BASE(d, VQ, b0, b1) + i * d.rs[VQ];
    global const float *kh = k + ATT_BASE(d, VK, b0, b1);
    global const float *vh = v + ATT_BASE(d, VV, b0, b1);
    const int mo = d.has_mask ? ATT_BASE(d, VM, b0, b1) : 0, mrs = d.rs[VM], mcs = d.mask_cs;
    const int drop0 = (h * d.L + i) * d.S;

    /* pass 1: each item's running (max, sum) over its keys, then the group's */
    float mt = -INFINITY, lt = 0.0f;
    for (int j = t; j < nj; j += wg) {
        float s = att_score(qi, kh + j * krs, E, d.scale, d.has_mask, mask, mo, mrs, mcs, i, j);
        float mn = att_max(mt, s);
        if (mn != -INFINITY) { /* all -inf so far: nothing to add yet */
            lt = lt * exp(mt - mn) + exp(s - mn);
            mt = mn;
        }
    }
    /* a row whose every key is -inf gets m = -inf and l = NaN, as on the CPU */
    const float m = att_group_max(red, t, wg, mt);
    const float l = att_group_sum(red, t, wg, lt * exp(mt - m));
    const float inv = 1.0f / l;
    if (t == 0) {
        stats[d.st_off + 2 * (h * d.L + i)] = m;
        stats[d.st_off + 2 * (h * d.L + i) + 1] = inv;
    }

    /* pass 2: the weights of a chunk in red, o_i += p_ij z_ij v_j */
    for (int e = t; e < Ev; e += wg) acc[e] = 0.0f;
    for (int j0 = 0; j0 < nj; j0 += wg) {
        const int j = j0 + t;
        float p = 0.0f;
        if (j < nj) {
            float s = att_score(qi, kh + j * krs, E, d.scale, d.has_mask, mask, mo, mrs, mcs, i, j);
            p = att_weight(s, m, inv);
            if (d.drop) p *= att_keep(d.k0, d.k1, d.s0, d.s1, d.p, d.keep, drop0 + j);
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* the last chunk's readers are done */
        red[t] = p;
        barrier(CLK_LOCAL_MEM_FENCE);
        const int n = nj - j0 < wg ? nj - j0 : wg;
        for (int e = t; e < Ev; e += wg) {
            float a = acc[e];
            for (int jj = 0; jj < n; jj++) a += red[jj] * vh[(j0 + jj) * vrs + e];
            acc[e] = a;
        }
    }
    global float *oi = o + ATT_BASE(d, VO, b0, b1) + i * d.rs[VO];
    for (int e = t; e < Ev; e += wg) oi[e] = acc[e];
}

/* Backward over a query row: delta_i (always) and dq_i (has_dq). red: wg
 * floats; acc: E floats. */
kernel void attn_bw_q(att_dims dims, int has_dq, global const float *q, global const float *k,
                      global const float *v, global const float *mask, global const float *stats,
                      global const float *dout, global float *delta, global float *dq,
                      local float *red, local float *acc)
{
    const att_dims d = dims;
    const int t = (int)get_local_id(0), wg = (int)get_local_size(0), g = (int)get_group_id(0);
    const int h = g / d.L, i = g % d.L, b0 = h / d.B1, b1 = h % d.B1;
    const int E = d.E, Ev = d.Ev, vrs = d.rs[VV], krs = d.rs[VK];
    const int nj = d.causal && i + 1 < d.S ? i + 1 : d.S;
    global const float *qi = q + ATT_BASE(d, VQ, b0, b1) + i * d.rs[VQ];
    global const float *gi = dout + ATT_BASE(d, VDO, b0, b1) + i * d.rs[VDO];
    global const float *kh = k + ATT_BASE(d, VK, b0, b1);
    global const float *vh = v + ATT_BASE(d, VV, b0, b1);
    const int mo = d.has_mask ? ATT_BASE(d, VM, b0, b1) : 0, mrs = d.rs[VM], mcs = d.mask_cs;
    const int drop0 = (h * d.L + i) * d.S, row = h * d.L + i;
    const float m = stats[d.st_off + 2 * row], inv = stats[d.st_off + 2 * row + 1];

    /* delta from the rebuilt weights (not dout . o): a weight of exactly 1 then
     * gives ds = 0 exactly, as on the CPU */
    float ds_ = 0.0f, dc = 0.0f;
    for (int j = t; j < nj; j += wg) {
        float s = att_score(qi, kh + j * krs, E, d.scale, d.has_mask, mask, mo, mrs, mcs, i, j);
        float p = att_weight(s, m, inv);
        if (d.drop) p *= att_keep(d.k0, d.k1, d.s0, d.s1, d.p, d.keep, drop0 + j);
        att_kadd(&ds_, &dc, p * att_dot(gi, vh + j * vrs, Ev));
    }
    const float dl = att_group_sum(red, t, wg, ds_ - dc);
    if (t == 0) delta[d.dl_off + row] = dl;
    if (!has_dq) return; /* uniform over the group: no barrier follows for anyone */

    for (int e = t; e < E; e += wg) acc[e] = 0.0f;
    for (int j0 = 0; j0 < nj; j0 += wg) {
        const int j = j0 + t;
        float ds = 0.0f;
        if (j < nj) {
            float s = att_score(qi, kh + j * krs, E, d.scale, d.has_mask, mask, mo, mrs, mcs, i, j);
            float p = att_weight(s, m, inv), dp = att_dot(gi, vh + j * vrs, Ev);
            if (d.drop) dp *= att_keep(d.k0, d.k1, d.s0, d.s1, d.p, d.keep, drop0 + j);
            ds = p * (dp - dl);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        red[t] = ds;
        barrier(CLK_LOCAL_MEM_FENCE);
        const int n = nj - j0 < wg ? nj - j0 : wg;
        for (int e = t; e < E; e += wg) {
            float a = acc[e];
            for (int jj = 0; jj < n; jj++) a += red[jj] * kh[(j0 + jj) * krs + e];
            acc[e] = a;
        }
    }
    global float *dqi = dq + ATT_BASE(d, VDQ, b0, b1) + i * d.rs[VDQ];
    for (int e = t; e < E; e += wg) dqi[e] = d.scale * acc[e];
}

/* Backward over a key row: dv_j (has & 1) and dk_j (has & 2), from the query
 * rows that see key j. pz, dsr: wg floats each; acc: E + Ev floats (dk, dv). */
kernel void attn_bw_kv(att_dims dims, int has, global const float *q, global const float *k,
                       global const float *v, global const float *mask,
                       global const float *stats, global const float *dout,
                       global const float *delta, global float *dk, global float *dv,
                       local float *pz, local float *dsr, local float *acc)
{
    const att_dims d = dims;
    const int t = (int)get_local_id(0), wg = (int)get_local_size(0), g = (int)get_group_id(0);
    const int h = g / d.S, j = g % d.S, b0 = h / d.B1, b1 = h % d.B1;
    const int E = d.E, Ev = d.Ev, qrs = d.rs[VQ], grs = d.rs[VDO];
    const bool want_dv = (has & 1) != 0, want_dk = (has & 2) != 0;
    global const float *qh = q + ATT_BASE(d, VQ, b0, b1);
    global const float *gh = dout + ATT_BASE(d, VDO, b0, b1);
    global const float *kj = k + ATT_BASE(d, VK, b0, b1) + j * d.rs[VK];
    global const float *vj = v + ATT_BASE(d, VV, b0, b1) + j * d.rs[VV];
    const int mo = d.has_mask ? ATT_BASE(d, VM, b0, b1) : 0, mrs = d.rs[VM], mcs = d.mask_cs;
    local float *dka = acc, *dva = acc + E;
    /* causal: row i sees key j when j <= i (top-left aligned) */
    const int i0 = d.causal ? j : 0;

    for (int e = t; e < E + Ev; e += wg) acc[e] = 0.0f;
    for (int c0 = i0; c0 < d.L; c0 += wg) {
        const int i = c0 + t;
        float w = 0.0f, ds = 0.0f;
        if (i < d.L) {
            const int row = h * d.L + i;
            const float m = stats[d.st_off + 2 * row], inv = stats[d.st_off + 2 * row + 1];
            float s = att_score(qh + i * qrs, kj, E, d.scale, d.has_mask, mask, mo, mrs, mcs, i, j);
            float p = att_weight(s, m, inv), z = 1.0f;
            if (d.drop) z = att_keep(d.k0, d.k1, d.s0, d.s1, d.p, d.keep, row * d.S + j);
            w = d.drop ? p * z : p;
            if (want_dk) {
                float dp = att_dot(gh + i * grs, vj, Ev);
                if (d.drop) dp *= z;
                ds = p * (dp - delta[d.dl_off + row]);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        pz[t] = w;
        dsr[t] = ds;
        barrier(CLK_LOCAL_MEM_FENCE);
        const int n = d.L - c0 < wg ? d.L - c0 : wg;
        if (want_dk)
            for (int e = t; e < E; e += wg) {
                float a = dka[e];
                for (int ii = 0; ii < n; ii++) a += dsr[ii] * qh[(c0 + ii) * qrs + e];
                dka[e] = a;
            }
        if (want_dv)
            for (int e = t; e < Ev; e += wg) {
                float a = dva[e];
                for (int ii = 0; ii < n; ii++) a += pz[ii] * gh[(c0 + ii) * grs + e];
                dva[e] = a;
            }
    }
    if (want_dk) {
        global float *o = dk + ATT_BASE(d, VDK, b0, b1) + j * d.rs[VDK];
        for (int e = t; e < E; e += wg) o[e] = d.scale * dka[e];
    }
    if (want_dv) {
        global float *o = dv + ATT_BASE(d, VDV, b0, b1) + j * d.rs[VDV];
        for (int e = t; e < Ev; e += wg) o[e] = dva[e];
    }
}
