// Subgroup steps of the shared-memory reductions, for the _sg shader variants
// (built with -DAG_SUBGROUP=1; the host picks them only where the device has
// subgroup arithmetic and AG_VULKAN_PORTABLE is not set). The includer enables
// GL_KHR_shader_subgroup_arithmetic, declares its shared arrays and names them
// SG_VALS (float, one per invocation) and, for sg_seg_best, SG_KEYS (uint).
//
// A segment is n consecutive invocations in sg_lid() order, starting at a
// multiple of n, n a multiple of the subgroup size: every subgroup lies inside
// one segment. A subgroup operation folds each subgroup, the subgroups'
// results meet in shared memory and are folded again by subgroups until one is
// left, which every invocation of the segment receives. The loops depend only
// on n and the subgroup size, so barriers stay uniform.

// Subgroups are full and larger than one: sg_lid() is then a numbering of the
// work-group in which each subgroup is consecutive, whatever order the driver
// forms subgroups in. Uniform over the work-group.
bool sg_usable()
{
    return gl_SubgroupSize > 1u && gl_NumSubgroups * gl_SubgroupSize == gl_WorkGroupSize.x;
}

int sg_lid() { return int(gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID); }

// Sum over the segment [base, base + n) of which this invocation is number t.
float sg_seg_sum(float v, int base, int t, int n)
{
    int sgs = int(gl_SubgroupSize);
    v = subgroupAdd(v);
    for (int m = n / sgs; m > 1; m = (m + sgs - 1) / sgs) {
        barrier(); // the previous level's reads are done
        if (t % sgs == 0) SG_VALS[base + t / sgs] = v;
        barrier();
        // the last level is folded by every subgroup: the result reaches all
        int j = m > sgs ? t : t % sgs;
        v = subgroupAdd(j < m ? SG_VALS[base + j] : 0.0);
    }
    return v;
}

#ifdef SG_KEYS
// Max and min go through an order-preserving uint (subgroupMax/Min leave NaN
// undefined for floats): -0 and +0 share one code and NaN gets the extreme
// code in the direction of the reduction, so that it wins.
const uint SG_ZERO = 0x80000000u;
uint sg_nan_code(bool is_max) { return is_max ? 0xffffffffu : 0u; }

uint sg_code(float v, bool is_max)
{
    if (isnan(v)) return sg_nan_code(is_max);
    uint u = v == 0.0 ? 0u : floatBitsToUint(v);
    return (u & 0x80000000u) != 0u ? ~u : u | 0x80000000u;
}

// A NaN code decodes to the quiet NaN and SG_ZERO to +0; every other code
// to the very float it came from.
float sg_decode(uint c, bool is_max)
{
    if (c == sg_nan_code(is_max)) return uintBitsToFloat(0x7fc00000u);
    return uintBitsToFloat((c & 0x80000000u) != 0u ? c & 0x7fffffffu : ~c);
}

// The best (v, k) of the subgroup, in every invocation: a NaN beats any
// number, then the largest (is_max) or smallest value. Arg reductions (arg,
// keys are indices) resolve ties to the smallest index, NaNs included; the
// value is then only needed up to equality. Max and min (keys are positions)
// return the winner's value bit for bit, which only needs the key when the
// winning code is shared by different bits (zeros of both signs, NaN
// payloads): then, as in the portable tree, the smallest key wins among zeros
// and the largest among NaNs. The other invocations' keys go stale, which is
// harmless since later levels only compare the keys of such winners. Where
// a driver flushes denormals, v == 0.0 puts them in the zero class, as the
// tree's comparisons do.
void sg_best(inout float v, inout uint k, bool is_max, bool arg)
{
    uint c = sg_code(v, is_max);
    uint m = is_max ? subgroupMax(c) : subgroupMin(c);
    if (arg) {
        k = subgroupMin(c == m ? k : 0xffffffffu);
        v = sg_decode(m, is_max);
    } else if (m == SG_ZERO || m == sg_nan_code(is_max)) {
        uint w = m == SG_ZERO ? subgroupMin(c == m ? k : 0xffffffffu) : subgroupMax(c == m ? k : 0u);
        v = uintBitsToFloat(subgroupOr(c == m && k == w ? floatBitsToUint(v) : 0u));
        k = w;
    } else {
        v = sg_decode(m, is_max);
    }
}

// sg_best over the segment [base, base + n); `init` with key 0xffffffff
// stands in where a level has fewer pairs than invocations: it never wins
// against a real pair (or equals it bit for bit).
void sg_seg_best(inout float v, inout uint k, int base, int t, int n, bool is_max, bool arg,
                 float init)
{
    int sgs = int(gl_SubgroupSize);
    sg_best(v, k, is_max, arg);
    for (int m = n / sgs; m > 1; m = (m + sgs - 1) / sgs) {
        barrier();
        if (t % sgs == 0) {
            SG_VALS[base + t / sgs] = v;
            SG_KEYS[base + t / sgs] = k;
        }
        barrier();
        int j = m > sgs ? t : t % sgs;
        v = j < m ? SG_VALS[base + j] : init;
        k = j < m ? SG_KEYS[base + j] : 0xffffffffu;
        sg_best(v, k, is_max, arg);
    }
}
#endif
