/* gather and scatter_add along one axis on views with any strides.
 *
 * Views arrive through ag_shape / ag_strides as element-wise kernels take
 * them, with the axis handled apart: the operands' strides along the axis are
 * zeroed in the descriptors and the axis offsets (index value or position
 * times the stride) are added here. A descriptor with offset 0, stride 1 on
 * the axis and 0 elsewhere yields a work-item's coordinate along the axis.
 *
 * scatter_add never uses atomics: each element of y is written by exactly one
 * work-item, which adds its terms in the order of their positions along the
 * axis, as the CPU backend's serial walk does, so results are bit-identical to
 * it and do not vary between runs. */

inline int at(ag_shape sh, ag_strides st, const int *c, int i)
{
    return sh.nd <= 1 ? st.off + i * st.s[0] : ag_dot(st, c, sh.nd);
}

/* y[i] = x[.. index[i] ..]; out-of-range indices give 0. Data moves as raw
 * 32-bit words, so f32 and int32 share the kernel. */
kernel void gather_axis(ag_shape sh_in, ag_strides ys_in, ag_strides is_in, ag_strides xs_in, int size,
                        int xsa, global uint *y, global const int *idx, global const uint *x)
{
    const ag_shape sh = sh_in; /* a private copy: see common.cl */
    const ag_strides ys = ys_in; /* a private copy: see common.cl */
    const ag_strides is = is_in; /* a private copy: see common.cl */
    const ag_strides xs = xs_in; /* a private copy: see common.cl */
    int c[8];
    AG_FOR(i, sh.numel) {
        if (sh.nd > 1) ag_coords(sh, i, c);
        int k = idx[at(sh, is, c, i)];
        y[at(sh, ys, c, i)] = k >= 0 && k < size ? x[at(sh, xs, c, i) + k * xsa] : 0u;
    }
}

/* One work-item per element of y that an index line reaches; it scans the L
 * index entries of its line. Work is (elements of y) x L: the host picks this
 * only when L is small or the sort below would cost more. */
kernel void scatter_scan(ag_shape sh_in, ag_strides ys_in, ag_strides is_in, ag_strides ss_in,
                         ag_strides ks_in, int L, int isa, int ssa, global float *y,
                         global const int *idx, global const float *src)
{
    const ag_shape sh = sh_in; /* a private copy: see common.cl */
    const ag_strides ys = ys_in; /* a private copy: see common.cl */
    const ag_strides is = is_in; /* a private copy: see common.cl */
    const ag_strides ss = ss_in; /* a private copy: see common.cl */
    const ag_strides ks = ks_in; /* a private copy: see common.cl */
    int c[8];
    AG_FOR(i, sh.numel) {
        if (sh.nd > 1) ag_coords(sh, i, c);
        int oi = at(sh, is, c, i), os = at(sh, ss, c, i), kc = at(sh, ks, c, i);
        int oy = at(sh, ys, c, i);
        float acc = 0.0f;
        bool hit = false;
        for (int j = 0; j < L; j++)
            if (idx[oi + j * isa] == kc) {
                /* y's old value first: the terms add in the CPU's order */
                if (!hit) acc = y[oy];
                acc += src[os + j * ssa];
                hit = true;
            }
        if (hit) y[oy] = acc;
    }
}

/* ---- sorted scatter_add -------------------------------------------------------
 * Each distinct index line (lines that differ only along axes where the index
 * has stride 0 share one) becomes Lp = 2^k keys (target << 32 | position),
 * padded with ~0; a bitonic sort orders each line by target, then position;
 * the first entry of each run of equal targets then adds the run to y in
 * position order. Out-of-range targets become `size` and are skipped. */

kernel void scatter_keys(ag_shape qsh_in, ag_strides qs_in, int L, int log_lp, int isa, int size,
                         global const int *idx, global ulong *keys)
{
    const ag_shape qsh = qsh_in; /* a private copy: see common.cl */
    const ag_strides qs = qs_in; /* a private copy: see common.cl */
    int c[8];
    int lp = 1 << log_lp, total = qsh.numel << log_lp;
    AG_FOR(g, total) {
        int q = g >> log_lp, p = g & (lp - 1);
        ulong key = ~(ulong)0;
        if (p < L) {
            if (qsh.nd > 1) ag_coords(qsh, q, c);
            int k = idx[at(qsh, qs, c, q) + p * isa];
            uint t = k >= 0 && k < size ? (uint)k : (uint)size;
            key = (ulong)t << 32 | (ulong)(uint)p;
        }
        keys[g] = key;
    }
}

/* Pair t of stage (k, j): elements g and g + j where bit j of g is clear. Lines
 * are Lp-aligned, so the direction comes from the position within the line
 * (every line ends ascending). */
inline void bitonic_pair(int t, int j, int *g, int *h)
{
    *g = ((t & ~(j - 1)) << 1) | (t & (j - 1));
    *h = *g + j;
}

kernel void bitonic_global(int pairs, int lp, int k, int j, global ulong *keys)
{
    AG_FOR(t, pairs) {
        int g, h;
        bitonic_pair(t, j, &g, &h);
        bool up = ((g & (lp - 1)) & k) == 0;
        ulong a = keys[g], b = keys[h];
        if ((a > b) == up) {
            keys[g] = b;
            keys[h] = a;
        }
    }
}

/* A work-group sorts (k_only < 0) or finishes stage k_only for (j < chunk) a
 * chunk of 2 * wg keys in local memory. */
kernel void bitonic_local(int lp, int k_only, global ulong *keys, local ulong *lk)
{
    int t = (int)get_local_id(0), w = (int)get_local_size(0), chunk = 2 * w;
    int base = (int)get_group_id(0) * chunk;
    lk[t] = keys[base + t];
    lk[t + w] = keys[base + t + w];
    int k0 = k_only < 0 ? 2 : k_only, k1 = k_only < 0 ? chunk : k_only;
    for (int k = k0; k <= k1; k <<= 1)
        for (int j = (k_only < 0 ? k : chunk) >> 1; j > 0; j >>= 1) {
            barrier(CLK_LOCAL_MEM_FENCE);
            int g, h;
            bitonic_pair(t, j, &g, &h);
            bool up = (((base + g) & (lp - 1)) & k) == 0;
            ulong a = lk[g], b = lk[h];
            if ((a > b) == up) {
                lk[g] = b;
                lk[h] = a;
            }
        }
    barrier(CLK_LOCAL_MEM_FENCE);
    keys[base + t] = lk[t];
    keys[base + t + w] = lk[t + w];
}

/* One work-item per (position p, line): where a run of equal targets starts
 * at p, it adds the run's terms in position order to y[.. target ..] of its
 * line. Lines vary fastest, so neighbouring work-items read neighbouring
 * elements of src when the lines are its last axis (embedding's gradient). */
kernel void scatter_runs(ag_shape lsh_in, ag_strides ys_in, ag_strides ss_in, ag_strides qs_in, int L,
                         int log_lp, int size, int ysa, int ssa, global float *y,
                         global const float *src, global const ulong *keys)
{
    const ag_shape lsh = lsh_in; /* a private copy: see common.cl */
    const ag_strides ys = ys_in; /* a private copy: see common.cl */
    const ag_strides ss = ss_in; /* a private copy: see common.cl */
    const ag_strides qs = qs_in; /* a private copy: see common.cl */
    int c[8];
    int lines = lsh.numel;
    AG_FOR(g, lines * L) {
        int p = g / lines, line = g - p * lines;
        if (lsh.nd > 1) ag_coords(lsh, line, c);
        int base = at(lsh, qs, c, line) << log_lp;
        uint k = (uint)(keys[base + p] >> 32);
        if (k >= (uint)size || (p > 0 && (uint)(keys[base + p - 1] >> 32) == k)) continue;
        int oy = at(lsh, ys, c, line) + (int)k * ysa, os = at(lsh, ss, c, line);
        float acc = y[oy];
        for (int r = p; r < L; r++) {
            ulong key = keys[base + r];
            if ((uint)(key >> 32) != k) break;
            acc += src[os + (int)(uint)key * ssa];
        }
        y[oy] = acc;
    }
}

/* A y whose positions overlap each other: one work-item replays the CPU's
 * row-major walk, so shared elements get their terms in the same order. */
kernel void scatter_serial(ag_shape sh_in, ag_strides is_in, ag_strides ss_in, ag_strides ys_in, int size,
                           int ysa, global float *y, global const int *idx,
                           global const float *src)
{
    const ag_shape sh = sh_in; /* a private copy: see common.cl */
    const ag_strides is = is_in; /* a private copy: see common.cl */
    const ag_strides ss = ss_in; /* a private copy: see common.cl */
    const ag_strides ys = ys_in; /* a private copy: see common.cl */
    if (get_global_id(0) != 0) return;
    int c[8];
    for (int i = 0; i < sh.numel; i++) {
        if (sh.nd > 1) ag_coords(sh, i, c);
        int k = idx[at(sh, is, c, i)];
        if (k >= 0 && k < size) y[at(sh, ys, c, i) + k * ysa] += src[at(sh, ss, c, i)];
    }
}
