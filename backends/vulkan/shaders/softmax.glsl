// Softmax, log-softmax and cross entropy over the rows of contiguous
// [rows, cols] views, with the formulas of backends/cpu/cpu_softmax.c;
// included by softmax_*.comp and cross_entropy_*.comp after their buffers
// (SM_LOGITS: the shader has a `x` buffer to take the row max and sum from).
//
// A work group holds rpg rows of tpr items each (tpr a power of two; one row
// per group when rows are wide). The items of a row stride over its columns
// and meet in shared-memory trees for the row's max and sums. The row max is
// subtracted before exp, so nothing overflows; a NaN anywhere in a row makes
// the whole row NaN, as on the CPU. Groups beyond 65535 come in the y
// dimension.
//
// The _sg variants (AG_SUBGROUP) fold a row with subgroup operations
// (backends/vulkan/shaders/subgroup.glsl) when its tpr items fill whole subgroups, else with
// the trees. The row max is the element the tree would pick (keyed by the
// bit-reversed item number, see backends/vulkan/shaders/reduce.glsl), so that -0 / +0 and NaN
// payloads come out as on the portable path.
#include "common.glsl"

shared float red[gl_WorkGroupSize.x];
#ifdef AG_SUBGROUP
shared uint redk[gl_WorkGroupSize.x];
#define SG_VALS red
#define SG_KEYS redk
#include "subgroup.glsl"
#endif

#define SM_NAN uintBitsToFloat(0x7fc00000u)

// Running sums per item are compensated (Kahan): a wide row leaves each item
// thousands of terms before the tree. `precise` keeps the driver from
// simplifying the correction away. An infinite partial sum drops the
// compensation, which would otherwise turn it to NaN.
void sm_add(inout float s, inout float c, float v)
{
    precise float y = v - c;
    precise float t = s + y;
    precise float nc = (t - s) - y;
    c = isinf(t) ? 0.0 : nc;
    s = t;
}

// NaN sticks
float sm_max(float a, float b) { return b > a || isnan(b) ? b : a; }

// The item's place: t in its row, the row, whether it exists, its offset.
// Items of a row past the last one still take part in the barriers.
struct SmItem {
    int lid, t, row, base;
    bool live, sg; // sg: the row is folded by subgroups
};

// Whole groups past the last row return at once (uniformly).
bool sm_item(int rows, int cols, int tpr, out SmItem it)
{
    int g = int(gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x);
    int rpg = int(gl_WorkGroupSize.x) / tpr;
#ifdef AG_SUBGROUP
    // numbered by subgroups, so that a row's items share subgroups
    it.sg = sg_usable() && tpr % int(gl_SubgroupSize) == 0;
    it.lid = it.sg ? sg_lid() : int(gl_LocalInvocationID.x);
#else
    it.sg = false;
    it.lid = int(gl_LocalInvocationID.x);
#endif
    it.t = it.lid % tpr;
    it.row = g * rpg + it.lid / tpr;
    it.live = it.row < rows;
    it.base = it.live ? it.row * cols : 0;
    return g * rpg < rows;
}

// The row's combined value, broadcast to all its items; red[lid - t] starts
// the row's slice of shared memory.
float row_sum(SmItem it, int tpr, float v)
{
#ifdef AG_SUBGROUP
    if (it.sg) return sg_seg_sum(v, it.lid - it.t, it.t, tpr);
#endif
    red[it.lid] = v;
    for (int s = tpr / 2; s > 0; s >>= 1) {
        barrier();
        if (it.t < s) {
            v += red[it.lid + s];
            red[it.lid] = v;
        }
    }
    barrier();
    v = red[it.lid - it.t];
    barrier(); // red is reused by the next call
    return v;
}

float row_max(SmItem it, int tpr, float v)
{
#ifdef AG_SUBGROUP
    if (it.sg) {
        uint k = bitfieldReverse(uint(it.t));
        sg_seg_best(v, k, it.lid - it.t, it.t, tpr, true, false, -1.0 / 0.0);
        return v;
    }
#endif
    red[it.lid] = v;
    for (int s = tpr / 2; s > 0; s >>= 1) {
        barrier();
        if (it.t < s) {
            v = sm_max(v, red[it.lid + s]);
            red[it.lid] = v;
        }
    }
    barrier();
    v = red[it.lid - it.t];
    barrier();
    return v;
}

#ifdef SM_LOGITS
// max and sum(exp(x - max)) of one row of x
void row_max_sumexp(SmItem it, int cols, int tpr, int xoff, out float m, out float s)
{
    m = -1.0 / 0.0;
    if (it.live)
        for (int j = it.t; j < cols; j += tpr) m = sm_max(m, x[xoff + it.base + j]);
    m = row_max(it, tpr, m);
    float a = 0.0, c = 0.0;
    if (it.live)
        for (int j = it.t; j < cols; j += tpr) sm_add(a, c, ag_exp(x[xoff + it.base + j] - m));
    s = row_sum(it, tpr, a - c);
}
#endif
