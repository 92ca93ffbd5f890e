/* Reductions over strided f32 views: sum, mean, max, min (NaN wins) and
 * argmax/argmin (int32, first index on ties, NaN is the extreme), with the CPU
 * backend's rules (backends/cpu/cpu_reduce.c): backends/vulkan/shaders/reduce.glsl, dispatched
 * in the passes backends/common/plan_reduce.c plans (a work group's ty items fold in
 * a shared-memory tree).
 *
 * Where the device has subgroup arithmetic (and AG_VULKAN_PORTABLE is not
 * set), the _sg shader variants fold each output's ty partial results with
 * subgroup operations instead of the tree, when those ty items fill whole
 * subgroups (ty-first numbering, ty a multiple of the subgroup size). The plan
 * is the same either way: sums may differ from the tree's in the last bits
 * (another association), max, min and the arg reductions pick the very same
 * element. */
#include "vk.h"
#include "plan.h"

/* Work groups that keep a device busy. Core Vulkan does not report compute
 * units; this covers large GPUs, and extra groups cost little elsewhere. */
#define RED_TARGET_GROUPS 512
/* groups per dimension every device accepts; more go to the y dimension */
#define RED_GRID_X 65535

static const char *const red_shaders[AG_REDUCE_COUNT] = {
    [AG_REDUCE_SUM] = "reduce_sum", [AG_REDUCE_MEAN] = "reduce_sum",
    [AG_REDUCE_MAX] = "reduce_max", [AG_REDUCE_MIN] = "reduce_min",
    [AG_REDUCE_ARGMAX] = "reduce_argmax", [AG_REDUCE_ARGMIN] = "reduce_argmin",
};

static const char *const red_shaders_sg[AG_REDUCE_COUNT] = {
    [AG_REDUCE_SUM] = "reduce_sum_sg", [AG_REDUCE_MEAN] = "reduce_sum_sg",
    [AG_REDUCE_MAX] = "reduce_max_sg", [AG_REDUCE_MIN] = "reduce_min_sg",
    [AG_REDUCE_ARGMAX] = "reduce_argmax_sg", [AG_REDUCE_ARGMIN] = "reduce_argmin_sg",
};

/* The parameter block of backends/vulkan/shaders/reduce.glsl. */
typedef struct red_params {
    int32_t is_final, divide, tx_n, ty_n, ty_fast, nout, nred, chunk, has_idx, ngroups;
    float count;
    ag_shape32 ks;
    ag_strides32 kx, ky;
    ag_shape32 rs;
    ag_strides32 rx;
} red_params;

/* Records one pass; its groups go past RED_GRID_X in the y dimension. */
static ag_status red_launch(void *ctx, ag_reduce_op op, const ag_reduce_pass *p,
                            const ag_reduce_launch *l, bool final, const ag_buffer *x,
                            const ag_buffer *xi, const ag_buffer *yv, const ag_buffer *yi)
{
    vk_ctx *c = ctx;
    red_params rp = {
        .is_final = final, .divide = final && op == AG_REDUCE_MEAN, .tx_n = (int32_t)l->tx,
        .ty_n = (int32_t)l->ty, .ty_fast = !p->vertical, .nout = (int32_t)p->nout,
        .nred = (int32_t)p->nred, .chunk = (int32_t)l->chunk, .has_idx = p->has_idx,
        .ngroups = (int32_t)l->groups, .count = p->count,
        .ks = p->ks, .kx = p->kx, .ky = p->ky, .rs = p->rs, .rx = p->rx,
    };
    const uint32_t spec[1] = {(uint32_t)l->local};
    const int64_t gx = l->groups < RED_GRID_X ? l->groups : RED_GRID_X;
    const int64_t gy = (l->groups + gx - 1) / gx;
    /* subgroups of a fixed, known size (without size control a pipeline's
     * subgroups are the device's subgroupSize); the shader checks again that
     * they are full and falls back to the tree if not */
    const int64_t sgs = c->subgroup_size;
    const bool sg = c->subgroup_arith && sgs > 1 && l->local % sgs == 0 && rp.ty_fast &&
                    rp.ty_n % sgs == 0;
    const char *name = sg ? red_shaders_sg[op] : red_shaders[op];
    if (ag_reduce_is_arg(op))
        return vk_dispatch(c, name, spec, 1, &rp, sizeof rp, VK_BUFS(x, yv, xi, yi),
                           (uint32_t)gx, (uint32_t)gy, 1);
    return vk_dispatch(c, name, spec, 1, &rp, sizeof rp, VK_BUFS(x, yv), (uint32_t)gx,
                       (uint32_t)gy, 1);
}

ag_status vk_reduce(void *ctx, ag_reduce_op op, const ag_view *y, const ag_view *x)
{
    /* Freed partials are safe while recorded passes still read them: the next
     * user of the memory gets a barrier before it (vk_dispatch.c). */
    const ag_reduce_device dev = {.ctx = ctx, .wg = (int64_t)vk_reduce_wg(ctx),
                                  .target_groups = RED_TARGET_GROUPS, .alloc = vk_alloc,
                                  .release = vk_free, .launch = red_launch};
    return ag_reduce_run("vulkan", &dev, op, y, x);
}
