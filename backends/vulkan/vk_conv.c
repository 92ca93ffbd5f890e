/* 2-D convolution (NCHW, contiguous, no bias): backends/vulkan/shaders/conv*.comp, a port of
 * the OpenCL backend's design, dispatched as backends/common/plan_conv.c plans them.
 * The tiled implicit-GEMM shaders run when the plan says the shape suits them
 * and the device allows 256-invocation work groups with the tiles' shared
 * memory. Results are deterministic: no atomics, and the backward-weight
 * reduction is split by shape only. */
#include "vk.h"
#include "plan.h"

/* Laid out as Params in backends/vulkan/shaders/conv.glsl (ConvDims first). */
typedef struct conv_params {
    ag_conv_dims d;
    int32_t pad_[2]; /* std140: the member after a struct starts at a multiple of 16 */
    int32_t tiles_m, tiles_n, chunk, groups;
    int32_t out_off, a_off, b_off; /* element offsets of bindings 1, 2, 3 */
    int32_t numel, parts;          /* conv_sum_parts */
} conv_params;

/* the tiled shaders' shared memory: As[16][65], Bs[16][64], at most 4 int tables [2][16] */
#define TILE_SHARED                                                                    \
    ((AG_CONV_TILE_K * (AG_CONV_TILE + 1) + AG_CONV_TILE_K * AG_CONV_TILE +            \
      4 * 2 * AG_CONV_TILE_K) * 4)
#define GROUPS_PER_DIM 65535 /* all Vulkan promises per dimension */

/* The plan's shape and a device that runs 256-invocation groups with the
 * tiles' shared memory. */
static bool tiled_ok(const vk_ctx *c, const ag_conv_plan *pl)
{
    const VkPhysicalDeviceLimits *l = &c->props.limits;
    return pl->tiled && l->maxComputeWorkGroupInvocations >= AG_CONV_TILE_WG &&
           l->maxComputeWorkGroupSize[0] >= AG_CONV_TILE_WG &&
           l->maxComputeSharedMemorySize >= TILE_SHARED;
}

static conv_params params(const ag_conv_plan *pl)
{
    return (conv_params){.d = pl->d, .out_off = pl->out_off, .a_off = pl->a_off,
                         .b_off = pl->b_off};
}

/* Records `count` work groups of `wg` invocations as an x * y grid the shader
 * loops over (conv.glsl AG_GROUPS); count is checked against the int group id. */
static ag_status run_groups(vk_ctx *c, const ag_conv_plan *pl, const char *shader, uint32_t wg,
                            conv_params *cp, int64_t count, int nbufs, const vk_bind *bufs)
{
    ag_status s = ag_conv_groups_check("vulkan", pl, count);
    if (s != AG_OK) return s;
    cp->groups = (int32_t)count;
    uint32_t cap_x = c->props.limits.maxComputeWorkGroupCount[0];
    uint32_t cap_y = c->props.limits.maxComputeWorkGroupCount[1];
    if (cap_x > GROUPS_PER_DIM) cap_x = GROUPS_PER_DIM;
    if (cap_y > GROUPS_PER_DIM) cap_y = GROUPS_PER_DIM;
    uint32_t gx = count < cap_x ? (uint32_t)count : cap_x;
    int64_t gy = (count + gx - 1) / gx;
    if (gy > cap_y) gy = cap_y;
    return vk_dispatch(c, shader, &wg, 1, cp, sizeof *cp, nbufs, bufs, gx, (uint32_t)gy, 1);
}

/* Forward and backward input: the direct shader over its work-items or the
 * tiled one, on the bindings (out, a, b). */
static ag_status run_fw_bwi(vk_ctx *c, const ag_conv_plan *pl, const char *direct,
                            const char *tiled, ag_buffer *out, ag_buffer *a, ag_buffer *b)
{
    conv_params cp = params(pl);
    if (!tiled_ok(c, pl))
        return vk_run1(c, direct, &cp, sizeof cp, VK_BUFS(out, a, b), (size_t)pl->direct);
    cp.tiles_m = pl->tiles_m;
    cp.tiles_n = pl->tiles_n;
    return run_groups(c, pl, tiled, AG_CONV_TILE_WG, &cp, pl->groups, VK_BUFS(out, a, b));
}

ag_status vk_conv2d(void *ctx, const ag_conv2d_params *p, const ag_view *y, const ag_view *x,
                    const ag_view *w)
{
    ag_conv_plan pl;
    ag_status s = ag_conv2d_plan("vulkan", p, y, x, w, &pl);
    if (s != AG_OK || pl.numel == 0) return s;
    return run_fw_bwi(ctx, &pl, "conv_fw", "conv_fw_tiled", y->buf, x->buf, w->buf);
}

ag_status vk_conv2d_backward_input(void *ctx, const ag_conv2d_params *p, const ag_view *dx,
                                   const ag_view *dy, const ag_view *w)
{
    ag_conv_plan pl;
    ag_status s = ag_conv2d_backward_input_plan("vulkan", p, dx, dy, w, &pl);
    if (s != AG_OK || pl.numel == 0) return s;
    return run_fw_bwi(ctx, &pl, "conv_bwi", "conv_bwi_tiled", dx->buf, dy->buf, w->buf);
}

ag_status vk_conv2d_backward_weight(void *ctx, const ag_conv2d_params *p, const ag_view *dw,
                                    const ag_view *dy, const ag_view *x)
{
    vk_ctx *c = ctx;
    ag_conv_plan pl;
    ag_status s = ag_conv2d_backward_weight_plan("vulkan", p, dw, dy, x, &pl);
    if (s != AG_OK || pl.numel == 0) return s;
    conv_params cp = params(&pl);
    if (!tiled_ok(c, &pl)) {
        /* a work group per CB output channels, input channel and tap; no
         * wider than the reduction needs, nor than shared memory holds */
        uint32_t wg = vk_reduce_wg(c);
        while (wg > 1 && AG_CONV_CB * wg * sizeof(float) > c->props.limits.maxComputeSharedMemorySize)
            wg /= 2;
        while (wg > 32 && (int64_t)wg / 2 >= pl.k) wg /= 2;
        return run_groups(c, &pl, "conv_bww", wg, &cp, pl.direct,
                          VK_BUFS(dw->buf, dy->buf, x->buf));
    }
    cp.tiles_m = pl.tiles_m;
    cp.tiles_n = pl.tiles_n;
    cp.chunk = pl.chunk;
    if (pl.parts == 1)
        return run_groups(c, &pl, "conv_bww_tiled", AG_CONV_TILE_WG, &cp, pl.groups,
                          VK_BUFS(dw->buf, dy->buf, x->buf));
    ag_buffer *part = vk_alloc(c, (size_t)(pl.parts * pl.numel) * sizeof(float));
    if (!part) return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    cp.out_off = 0;
    s = run_groups(c, &pl, "conv_bww_tiled", AG_CONV_TILE_WG, &cp, pl.groups,
                   VK_BUFS(part, dy->buf, x->buf));
    if (s == AG_OK) {
        conv_params sp = {.d = pl.d, .out_off = pl.out_off, .numel = (int32_t)pl.numel,
                          .parts = (int32_t)pl.parts};
        s = vk_run1(c, "conv_sum_parts", &sp, sizeof sp, VK_BUFS(dw->buf, part), (size_t)pl.numel);
    }
    vk_free(c, part); /* safe while queued: a later user of the range is ordered after */
    return s;
}
