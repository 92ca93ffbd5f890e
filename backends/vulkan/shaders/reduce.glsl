// Reductions over strided views (see backends/vulkan/vk_reduce.c for the plan),
// included by reduce_<op>.comp after it defines RED_ARG (0 or 1), RED_INIT and
// RED_OP (value kernels) or RED_BETTER (arg kernels), RED_KAHAN (0 or 1) and
// RED_IS_MAX (max and argmax 1, else 0; the subgroup path's direction).
//
// x's axes are split into kept axes (ks, strides kx in x and ky in y: the
// output index space) and reduced axes (rs, strides rx in x). A work group of
// tx_n * ty_n items handles tx_n consecutive outputs and one chunk of the
// reduction: item (tx, ty) folds positions ty, ty + ty_n, ... of the chunk
// serially (the host bounds how many), then the ty_n partial results of each
// output meet in a shared-memory tree. ty_fast numbers the items ty-first, so
// that neighbours read neighbouring memory when the reduced axis is the dense
// one; otherwise tx-first (a kept axis is the dense one).
//
// is_final = 1 writes y through ky (mean divides by count); 0 writes a partial
// result per (chunk, output) at yv/yi[chunk * nout + output] for a following
// pass. Arg kernels read candidate indices from xi when has_idx (a second
// pass), else the position along the reduced axis. Groups beyond 65535 come
// in the y dimension: ngroups is the real count.
//
// The _sg variants (AG_SUBGROUP) fold the ty_n partial results of an output
// with subgroup operations (backends/vulkan/shaders/subgroup.glsl) when the ty_n items of each
// output fill whole subgroups (ty_fast, ty_n a multiple of the subgroup size),
// else with the tree. Max and min pick the same element the tree would: the
// tree keeps the lower item on ties and the higher one among NaNs at every
// step, which is the order of the bit-reversed item number, so that number
// is the key. Arg kernels' keys are the indices.
#include "common.glsl"

AG_PARAMS {
    int is_final, divide, tx_n, ty_n, ty_fast, nout, nred, chunk, has_idx, ngroups;
    float count;
    Shape ks;
    Strides kx, ky;
    Shape rs;
    Strides rx;
} P;
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer YV { float yv[]; };
#if RED_ARG
layout(std430, binding = 3) readonly buffer XI { int xi[]; };
layout(std430, binding = 4) writeonly buffer YI { int yi[]; };
shared int li[gl_WorkGroupSize.x];
#endif
shared float lv[gl_WorkGroupSize.x];
#ifdef AG_SUBGROUP
#define SG_VALS lv
#if RED_ARG || !RED_KAHAN
shared uint lk[gl_WorkGroupSize.x];
#define SG_KEYS lk
#endif
#include "subgroup.glsl"
#endif

const float RED_INF = 1.0 / 0.0;

// x offset of reduction position r
int red_roff(int r)
{
    if (P.rs.nd == 1) return r * P.rx.s4[0].x;
    int o = 0;
    for (int d = P.rs.nd - 1; d >= 0; d--) {
        int n = AG_N(P.rs, d);
        o += (r % n) * AG_S(P.rx, d);
        r /= n;
    }
    return o;
}

void main()
{
    int g = int(gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x);
    if (g >= P.ngroups) return; // the whole group: barriers stay uniform
    int tx_n = P.tx_n, ty_n = P.ty_n, nout = P.nout;
#ifdef AG_SUBGROUP
    // numbered by subgroups, so that an output's items share subgroups
    bool sg = sg_usable() && P.ty_fast != 0 && ty_n % int(gl_SubgroupSize) == 0;
    int lid = sg ? sg_lid() : int(gl_LocalInvocationID.x);
#else
    int lid = int(gl_LocalInvocationID.x);
#endif
    int tx = P.ty_fast != 0 ? lid / ty_n : lid % tx_n;
    int ty = P.ty_fast != 0 ? lid % ty_n : lid / tx_n;
    int step = P.ty_fast != 0 ? 1 : tx_n; // local distance between ty and ty + 1
    int ngo = (nout + tx_n - 1) / tx_n;
    int chunk_id = g / ngo;
    int o = (g % ngo) * tx_n + tx;
    int r0 = chunk_id * P.chunk;
    uint len = uint(max(0, min(P.chunk, P.nred - r0)));
    int c[8];
    int xo = 0;
    if (o < nout) {
        ag_coords(P.ks, o, c);
        xo = ag_dot(P.kx, c, P.ks.nd);
    }
#if RED_ARG
    // (value, index) pairs; an item with no elements holds (INIT, INT_MAX),
    // which any real element beats
    float acc = RED_INIT;
    int ai = 0x7fffffff;
    if (o < nout)
        for (uint k = uint(ty); k < len; k += uint(ty_n)) {
            int r = r0 + int(k);
            int off = xo + red_roff(r);
            float v = x[off];
            int i = P.has_idx != 0 ? xi[off] : r;
            if (RED_BETTER(acc, ai, v, i)) {
                acc = v;
                ai = i;
            }
        }
#ifdef AG_SUBGROUP
    if (sg) {
        uint k = uint(ai);
        sg_seg_best(acc, k, lid - ty, ty, ty_n, RED_IS_MAX != 0, true, RED_INIT);
        ai = int(k);
    } else
#endif
    {
        lv[lid] = acc;
        li[lid] = ai;
        for (int s = ty_n / 2; s > 0; s >>= 1) {
            barrier();
            if (ty < s) {
                float bv = lv[lid + s * step];
                int bi = li[lid + s * step];
                if (RED_BETTER(acc, ai, bv, bi)) {
                    acc = bv;
                    ai = bi;
                }
                lv[lid] = acc;
                li[lid] = ai;
            }
        }
    }
    if (ty != 0 || o >= nout) return;
    if (P.is_final != 0) {
        yi[ag_dot(P.ky, c, P.ks.nd)] = ai;
    } else {
        yv[chunk_id * nout + o] = acc;
        yi[chunk_id * nout + o] = ai;
    }
#else
    float acc = RED_INIT;
#if RED_KAHAN
    // The serial part is compensated, so a run of a few hundred terms per item
    // costs no accuracy; `precise` keeps the driver from simplifying the
    // correction away. An infinite partial sum drops the compensation, which
    // would otherwise turn it to NaN.
    precise float comp = 0.0;
    if (o < nout)
        for (uint k = uint(ty); k < len; k += uint(ty_n)) {
            precise float yk = x[xo + red_roff(r0 + int(k))] - comp;
            precise float t = acc + yk;
            comp = isinf(t) ? 0.0 : (t - acc) - yk;
            acc = t;
        }
    acc -= comp;
#else
    if (o < nout)
        for (uint k = uint(ty); k < len; k += uint(ty_n)) acc = RED_OP(acc, x[xo + red_roff(r0 + int(k))]);
#endif
#ifdef AG_SUBGROUP
    if (sg) {
#if RED_KAHAN
        acc = sg_seg_sum(acc, lid - ty, ty, ty_n);
#else
        uint k = bitfieldReverse(uint(ty));
        sg_seg_best(acc, k, lid - ty, ty, ty_n, RED_IS_MAX != 0, false, RED_INIT);
#endif
    } else
#endif
    {
        lv[lid] = acc;
        for (int s = ty_n / 2; s > 0; s >>= 1) {
            barrier();
            if (ty < s) {
                acc = RED_OP(acc, lv[lid + s * step]);
                lv[lid] = acc;
            }
        }
    }
    if (ty != 0 || o >= nout) return;
    if (P.is_final != 0) {
        // 0 / 0 written out: drivers need not produce NaN from it
        float r = P.divide == 0 ? acc : P.count == 0.0 ? uintBitsToFloat(0x7fc00000u) : acc / P.count;
        yv[ag_dot(P.ky, c, P.ks.nd)] = r;
    } else {
        yv[chunk_id * nout + o] = acc;
    }
#endif
}
