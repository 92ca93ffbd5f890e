// Shared by the index_*.comp shaders (gather, scatter_add).
//
// Views arrive as element-wise shaders take them, with the axis handled
// apart: the operands' strides along the axis are zeroed in the descriptors
// and the axis offsets (index value or position times the stride) are added
// in the shader. A descriptor with offset 0, stride 1 on the axis and 0
// elsewhere yields an invocation's coordinate along the axis.
//
// scatter_add never uses atomics: each element of y is written by exactly one
// invocation, which adds its terms in the order of their positions along the
// axis, as the CPU backend's serial walk does, so results are bit-identical
// to it and do not vary between runs.

// Offset of element i of a view (coordinates c filled when nd > 1).
#define AT(sh, st, c, i) ((sh).nd <= 1 ? (st).off + (i) * (st).s4[0].x : ag_dot(st, c, (sh).nd))

// Sort keys: (target, position), compared as one 64-bit number.
bool key_gt(uvec2 a, uvec2 b) { return a.x > b.x || (a.x == b.x && a.y > b.y); }

// Pair t of bitonic stage (k, j): elements g and g + j where bit j of g is
// clear.
int bitonic_first(int t, int j) { return ((t & ~(j - 1)) << 1) | (t & (j - 1)); }
