/* Softmax, log-softmax and cross entropy over the last axis of contiguous
 * [rows, cols] views (backends/vulkan/shaders/softmax.glsl), with the CPU backend's rules
 * (backends/cpu/cpu_softmax.c): a NaN makes its row NaN, a label outside
 * [0, C) makes its loss and gradient row NaN. Checks and the rows' layout:
 * backends/common/plan_softmax.c.
 *
 * Where the device has subgroup arithmetic (and AG_VULKAN_PORTABLE is not
 * set), the _sg shader variants fold rows with subgroup operations instead of
 * shared-memory trees when a row's tpr items fill whole subgroups; the layout
 * is the same either way. Row sums may differ from the trees' in the last
 * bits, the row max is the same element. */
#include <stdio.h>

#include "vk.h"
#include "plan.h"

/* Items that keep a device busy: core Vulkan does not report compute units,
 * so this assumes a large GPU (512 groups); extra items cost little elsewhere. */
#define SM_TARGET_GROUPS 512
/* groups per dimension every device accepts; more go to the y dimension */
#define SM_GRID_X 65535

/* Group sizes are specialization constants: rows a group are rounded to
 * powers of two, so that few pipelines are ever built. */
static ag_rows_launch row_layout(const vk_ctx *c, const ag_rows_plan *p)
{
    return ag_rows_launch_plan(p, (int64_t)vk_reduce_wg(c), SM_TARGET_GROUPS, true);
}

/* `name`, or its _sg variant where a row's items fill whole subgroups of the
 * device's fixed subgroup size (the shader checks again that subgroups are
 * full and falls back to the trees if not). */
static ag_status run_rows(vk_ctx *c, const char *name, ag_rows_launch rp, const void *params,
                          size_t size, int nbufs, const vk_bind *bufs)
{
    const uint32_t spec[1] = {(uint32_t)rp.local};
    int64_t gx = rp.groups < SM_GRID_X ? rp.groups : SM_GRID_X;
    int64_t gy = (rp.groups + gx - 1) / gx;
    const int64_t sgs = c->subgroup_size;
    char sg_name[48];
    if (c->subgroup_arith && sgs > 1 && rp.local % sgs == 0 && rp.tpr % sgs == 0) {
        snprintf(sg_name, sizeof sg_name, "%s_sg", name);
        name = sg_name;
    }
    return vk_dispatch(c, name, spec, 1, params, size, nbufs, bufs, (uint32_t)gx, (uint32_t)gy, 1);
}

typedef struct softmax_params {
    int32_t log_, rows, cols, tpr, xoff, yoff;
} softmax_params;

ag_status vk_softmax(void *ctx, bool log, const ag_view *y, const ag_view *x)
{
    vk_ctx *c = ctx;
    ag_rows_plan pl;
    ag_status s = ag_softmax_plan("vulkan", log, y, x, &pl);
    if (s != AG_OK || pl.empty) return s;
    ag_rows_launch rp = row_layout(c, &pl);
    softmax_params p = {.log_ = log, .rows = (int32_t)pl.rows, .cols = (int32_t)pl.cols,
                        .tpr = (int32_t)rp.tpr, .xoff = pl.off[0], .yoff = pl.off[1]};
    return run_rows(c, "softmax_fw", rp, &p, sizeof p, VK_BUFS(x->buf, y->buf));
}

typedef struct softmax_bw_params {
    int32_t log_, rows, cols, tpr, dxoff, dyoff, yoff;
} softmax_bw_params;

ag_status vk_softmax_backward(void *ctx, bool log, const ag_view *dx, const ag_view *dy,
                              const ag_view *y)
{
    vk_ctx *c = ctx;
    ag_rows_plan pl;
    ag_status s = ag_softmax_backward_plan("vulkan", log, dx, dy, y, &pl);
    if (s != AG_OK || pl.empty) return s;
    ag_rows_launch rp = row_layout(c, &pl);
    softmax_bw_params p = {.log_ = log, .rows = (int32_t)pl.rows, .cols = (int32_t)pl.cols,
                           .tpr = (int32_t)rp.tpr, .dxoff = pl.off[0], .dyoff = pl.off[1],
                           .yoff = pl.off[2]};
    return run_rows(c, "softmax_bw", rp, &p, sizeof p, VK_BUFS(dx->buf, dy->buf, y->buf));
}

typedef struct ce_params {
    float sm;
    int32_t rows, cols, tpr, xoff, loff, ls, ooff, os;
} ce_params;

ag_status vk_cross_entropy(void *ctx, float smoothing, const ag_view *loss, const ag_view *logits,
                           const ag_view *labels)
{
    vk_ctx *c = ctx;
    ag_rows_plan pl;
    ag_status s = ag_cross_entropy_plan("vulkan", loss, logits, labels, &pl);
    if (s != AG_OK || pl.empty) return s;
    ag_rows_launch rp = row_layout(c, &pl);
    ce_params p = {.sm = smoothing, .rows = (int32_t)pl.rows, .cols = (int32_t)pl.cols,
                   .tpr = (int32_t)rp.tpr, .xoff = pl.off[0], .loff = pl.off[1], .ls = pl.ls,
                   .ooff = pl.off[2], .os = pl.ps};
    return run_rows(c, "cross_entropy_fw", rp, &p, sizeof p,
                    VK_BUFS(logits->buf, labels->buf, loss->buf));
}

typedef struct ce_bw_params {
    float sm, uni;
    int32_t rows, cols, tpr, dxoff, xoff, loff, ls, goff, gs;
} ce_bw_params;

ag_status vk_cross_entropy_backward(void *ctx, float smoothing, const ag_view *dlogits,
                                    const ag_view *dloss, const ag_view *logits,
                                    const ag_view *labels)
{
    vk_ctx *c = ctx;
    ag_rows_plan pl;
    ag_status s = ag_cross_entropy_backward_plan("vulkan", dlogits, dloss, logits, labels, &pl);
    if (s != AG_OK || pl.empty) return s;
    ag_rows_launch rp = row_layout(c, &pl);
    ce_bw_params p = {.sm = smoothing, .uni = smoothing / (float)pl.cols,
                      .rows = (int32_t)pl.rows, .cols = (int32_t)pl.cols,
                      .tpr = (int32_t)rp.tpr, .dxoff = pl.off[3], .xoff = pl.off[0],
                      .loff = pl.off[1], .ls = pl.ls, .goff = pl.off[2], .gs = pl.ps};
    return run_rows(c, "cross_entropy_bw", rp, &p, sizeof p,
                    VK_BUFS(dlogits->buf, logits->buf, labels->buf, dloss->buf));
}
