// Shared by the conv_*.comp shaders (#include after common.glsl): the
// parameter block, laid out as conv_params in backends/vulkan/vk_conv.c, and
// the pieces of the tiled implicit-GEMM kernels. NCHW, contiguous views,
// offsets in elements. No float atomics anywhere: every output element is
// written by exactly one invocation, and split reductions go through a partial
// buffer summed in a fixed order.
//
// Two shapes of kernel:
//  - direct: one invocation per output pixel and CB channels (or one work
//    group per CB dw elements, reducing in shared memory), used for small
//    channel counts, strided backward input, and on devices whose limits
//    (256-invocation groups, shared memory) rule out the tiles;
//  - tiled: an implicit GEMM per group, a 64 x 64 block of outputs per work
//    group of 256 invocations (4 x 4 each), operands staged through shared
//    memory in steps of 16 along the reduction axis, the im2col matrix never
//    stored.
//      forward:          y[oc, (img, pix)]   = sum_(c,ki,kj)     w * x
//      backward input:   dx[c, (img, pix)]   = sum_(oc,ki,kj)    w * dy (gather)
//      backward weight:  dw[oc, (c,ki,kj)]   = sum_(img,pix)     dy * x (split)

// 18 ints, padded to 80 bytes: std140 starts the next member at a multiple of
// 16, and std430 must agree (conv_params in vk_conv.c pads the same way)
struct ConvDims {
    int n, c, h, w, oc, kh, kw, oh, ow;
    int sh, sw, ph, pw, dlh, dlw;
    int g, cg, ocg, pad0, pad1;
};

// out_off / a_off / b_off: element offsets of bindings 1, 2, 3. groups: work
// groups of a tiled or reducing kernel's (x, y) grid, looped over.
AG_PARAMS {
    ConvDims p;
    int tiles_m, tiles_n, chunk, groups;
    int out_off, a_off, b_off;
    int numel, parts;
} P;

#define CB 4 // channels per invocation of the direct kernels

// Taps t in [lo, hi) with 0 <= start + t * dil < n (no overflow for any dil).
void tap_range(int start, int dil, int k, int n, out int lo, out int hi)
{
    lo = start < 0 ? (-start - 1) / dil + 1 : 0;
    hi = start >= n ? 0 : min(k, (n - 1 - start) / dil + 1);
}

// Work groups beyond 65535 spill into y; the loop covers any excess. gid is
// the same for the whole group, so barriers inside stay in uniform control flow.
#define AG_GROUPS(gid, n)                                                            \
    for (int gid = int(gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x);   \
         gid < (n); gid += int(gl_NumWorkGroups.x * gl_NumWorkGroups.y))

#define TM 64
#define TN 64
#define TK 16

// Invocation (tx, ty) of the 16 x 16 grid owns rows ty + 16 u and columns
// tx + 16 v: reads of As broadcast, reads of Bs and stores to the output run
// along tx.
#define TILE_MAC()                                                             \
    for (int kk = 0; kk < TK; kk++) {                                          \
        float ra[4], rb[4];                                                    \
        for (int u = 0; u < 4; u++) ra[u] = As[kk][ty + 16 * u];               \
        for (int u = 0; u < 4; u++) rb[u] = Bs[kk][tx + 16 * u];               \
        for (int u = 0; u < 4; u++)                                            \
            for (int v = 0; v < 4; v++) acc[u][v] += ra[u] * rb[v];            \
    }

#define TILE_ACC_ZERO()                                                        \
    float acc[4][4];                                                           \
    for (int u = 0; u < 4; u++)                                                \
        for (int v = 0; v < 4; v++) acc[u][v] = 0.0

// Loading: invocation lid fetches A rows lid / TK + 16 r at reduction step
// lid % TK (consecutive invocations read along the reduction axis), and B
// column lid % TN at reduction steps lid / TN + 4 r (consecutive invocations
// read along the columns). A rows are padded so those column-wise stores
// spread over the banks.
//
// The reduction index splits into parts (channel, tap, position) by division;
// rather than every invocation dividing for every element, the first TK
// invocations decode the next step's TK indices into a shared table while the
// tile is multiplied (two tables, used in turn).
