// Scaled dot-product attention (backends/vulkan/vk_attention.c), shared by the
// attn_*.comp shaders, included after their buffers (attn_bufs.glsl): q, k, v
// and mask are bindings 1 to 4 in every one of them. One work-group per row
// (a query row forward and for dq, a key row for dk and dv); its invocations
// take a chunk of keys (or query rows) each, meet in shared-memory trees for
// the row's max and sums, then take its feature columns, AT_COLS each a pass
// (wider rows take more passes), to accumulate. No atomics: every result is
// summed in a fixed order.
//
// A score is always computed by att_score over e in order, `precise` so that
// no driver contracts it differently in another shader: backward rebuilds the
// very weights p = exp(s - m) / l that forward used (semantics:
// backends/cpu/cpu_attention.c).

#define AT_COLS 4
// key chunks whose values an invocation keeps between passes
#define AT_CACHE 4

// Laid out as attn_params in vk_attention.c: per view (offset, batch-0 stride,
// batch-1 stride, row stride), vectors first so that std140 and std430 agree.
AG_PARAMS {
    ivec4 vq, vk, vv, vm, vo, vg, vdq, vdk, vdv;
    int B1, L, S, E, Ev, rows, causal, has_mask, drop, want, mcs, st, de;
    float scale, p, keep;
    uint k0, k1, s0, s1;
} P;

#define WANT_DQ 1
#define WANT_DK 2
#define WANT_DV 4

shared float red[gl_WorkGroupSize.x];
shared float wa[gl_WorkGroupSize.x];
shared float wb[gl_WorkGroupSize.x];

int att_group() { return int(gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x); }

// A view's first element of head (b0, b1).
int att_head(ivec4 vw, int b0, int b1) { return vw.x + b0 * vw.y + b1 * vw.z; }

// NaN sticks
float att_max2(float a, float b) { return b > a || isnan(b) ? b : a; }

// Kahan step; an infinite or NaN sum stops compensating.
void att_add(inout float s, inout float c, float x)
{
    precise float y = x - c;
    precise float t = s + y;
    precise float e = (t - s) - y;
    c = isinf(t) || isnan(t) ? 0.0 : e;
    s = t;
}

// The group's max (sum), in every invocation. Call from all of them.
float att_grp_max(float x)
{
    int t = int(gl_LocalInvocationID.x);
    red[t] = x;
    for (int s = int(gl_WorkGroupSize.x) / 2; s > 0; s >>= 1) {
        barrier();
        if (t < s) {
            x = att_max2(x, red[t + s]);
            red[t] = x;
        }
    }
    barrier();
    x = red[0];
    barrier();
    return x;
}

float att_grp_sum(float x)
{
    int t = int(gl_LocalInvocationID.x);
    red[t] = x;
    for (int s = int(gl_WorkGroupSize.x) / 2; s > 0; s >>= 1) {
        barrier();
        if (t < s) {
            x += red[t + s];
            red[t] = x;
        }
    }
    barrier();
    x = red[0];
    barrier();
    return x;
}

// s = scale q_i . k_j + mask_ij; qr, kr: the rows' first elements, mr: the
// mask row's (j scaled by its column stride here).
float att_score(int qr, int kr, int mr, int j)
{
    precise float d = 0.0;
    for (int e = 0; e < P.E; e++) d += q[qr + e] * k[kr + e];
    precise float s = P.scale * d;
    if (P.has_mask != 0) s += mask[mr + j * P.mcs];
    return s;
}

// Dropout factor of weight (row, j), row counting query rows over all heads:
// Philox element row * S + j in 64 bits.
float att_keep(int row, int j)
{
    if (P.drop == 0) return 1.0;
    uint hi, lo;
    umulExtended(uint(row), uint(P.S), hi, lo);
    uint e = lo + uint(j);
    if (e < lo) hi++;
    uvec4 w = philox_block64(P.k0, P.k1, P.s0, P.s1, (e >> 2) | (hi << 30), hi >> 2);
    return u01(w[e & 3u]) >= P.p ? P.keep : 0.0;
}

#ifdef AT_BACKWARD
// dp = dout_i . v_j, in order (both backward shaders)
float att_dot_gv(int gr, int vr)
{
    precise float d = 0.0;
    for (int e = 0; e < P.Ev; e++) d += dout[gr + e] * v[vr + e];
    return d;
}
#endif
