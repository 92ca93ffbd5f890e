// Shared by the norm_*.comp shaders. Layer and batch normalisation are
// reductions over the elements of a "channel" of a [N, C, S] layout (element
// e of channel ch sits at (n C + ch) S + s with n = e / S, s = e % S): layer
// norm is N = 1, C = rows, S = D; batch norm is the input as it comes.
//
// A work-group handles cpg consecutive channels with wg / cpg lanes each
// (cpg = 1 unless S == 1, where consecutive invocations then read consecutive
// channels). Each lane sums its elements with compensation, then the lanes of
// a channel meet in a shared-memory tree: no float atomics, and the result is
// the same on every run. Barriers are never inside branches (every invocation
// runs every reduction, over nothing when it has no channel or no work).
//
// The _sg variants (AG_SUBGROUP) sum with subgroup operations
// (backends/vulkan/shaders/subgroup.glsl) when a group has one channel (cpg = 1) and full
// subgroups; lanes are then numbered by subgroups (norm_lid).

#define HAS_GAMMA 1
#define HAS_BETA 2
#define HAS_MEAN 4
#define HAS_RSTD 8
#define HAS_RMEAN 16
#define HAS_RVAR 32
#define HAS_DX 64
#define HAS_DGAMMA 128
#define HAS_DBETA 256

shared float lm[gl_WorkGroupSize.x];
#ifdef AG_SUBGROUP
#define SG_VALS lm
#include "subgroup.glsl"
#endif

// Whether group_sum folds by subgroups; uniform over the work-group.
bool norm_sg(int cpg)
{
#ifdef AG_SUBGROUP
    return cpg == 1 && sg_usable();
#else
    return false;
#endif
}

// The invocation's lane number t for the shaders' loops and group_sum.
int norm_lid(int cpg)
{
#ifdef AG_SUBGROUP
    if (norm_sg(cpg)) return sg_lid();
#endif
    return int(gl_LocalInvocationID.x);
}

// Group counts above 65535 continue in y.
int group_id() { return int(gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x); }

// Kahan step; an infinite sum stops compensating so that inf stays inf.
// `precise`: (t - s) - y is zero to a compiler that reassociates.
void kadd(inout float s, inout float c, float v)
{
    precise float y = v - c;
    precise float t = s + y;
    precise float e = (t - s) - y;
    c = isinf(t) || isnan(t) ? 0.0 : e;
    s = t;
}

// Sums v over the lanes that share t % cpg; every invocation gets its
// channel's total. Call from all invocations of the group.
float group_sum(int t, int cpg, float v)
{
    int wg = int(gl_WorkGroupSize.x);
#ifdef AG_SUBGROUP
    if (norm_sg(cpg)) return sg_seg_sum(v, 0, t, wg);
#endif
    memoryBarrierShared();
    barrier();
    lm[t] = v;
    memoryBarrierShared();
    barrier();
    for (int off = wg >> 1; off >= cpg; off >>= 1) {
        if (t < off) lm[t] += lm[t + off];
        memoryBarrierShared();
        barrier();
    }
    return lm[t % cpg];
}

// The division only when both N and S exceed 1 (uniform branches).
int chan_addr(int e, int ch, int N, int C, int S)
{
    if (N == 1) return ch * S + e;
    if (S == 1) return e * C + ch;
    int n = e / S;
    return (n * C + ch) * S + (e - n * S);
}

// Laid out as norm_params in backends/vulkan/vk_norm.c: sizes, flags, then
// every operand's element offset. Layer norm: C = rows, S = D.
AG_PARAMS {
    int training, N, C, S, cpg, has, R, nchunk;
    float eps, momentum;
    int x, y, dy, dx, mean, rstd, gamma, beta, rmean, rvar, dgamma, dbeta;
} P;
