/* Max and average 2-D pooling (NCHW, contiguous): backends/vulkan/shaders/pool_*.comp, a port
 * of the OpenCL backend's kernels, dispatched as backends/common/plan_pool.c plans
 * them. The results match backends/cpu/cpu_pool.c bit for bit. */
#include "vk.h"
#include "plan.h"

/* Laid out as Params in backends/vulkan/shaders/pool_*.comp. */
typedef struct pool_params {
    ag_pool_dims d;
    int32_t flag;                  /* forward: has indices; backward: max pooling */
    float inv;                     /* 1 / (kh * kw) */
    int32_t out_off, a_off, b_off; /* element offsets of bindings 1, 2, 3 */
} pool_params;

ag_status vk_pool2d(void *ctx, ag_pool_op op, const ag_pool2d_params *p, const ag_view *y,
                    const ag_view *indices, const ag_view *x)
{
    ag_pool_plan pl;
    ag_status s = ag_pool2d_plan("vulkan", op, p, y, indices, x, &pl);
    if (s != AG_OK || pl.n == 0) return s;
    pool_params d = {.d = pl.d, .inv = pl.inv, .out_off = pl.off[1]};
    if (op == AG_POOL_AVG) {
        d.a_off = pl.off[0];
        return vk_run1(ctx, "pool_avg_fw", &d, sizeof d, VK_BUFS(y->buf, x->buf), (size_t)pl.n);
    }
    d.flag = pl.idx != NULL;
    d.a_off = pl.off[2];
    d.b_off = pl.off[0];
    return vk_run1(ctx, "pool_max_fw", &d, sizeof d,
                   VK_BUFS(y->buf, pl.idx ? pl.idx->buf : NULL, x->buf), (size_t)pl.n);
}

/* Gathers instead of scattering: no atomics, and each dx element sums its
 * windows in the CPU's order. */
ag_status vk_pool2d_backward(void *ctx, ag_pool_op op, const ag_pool2d_params *p,
                             const ag_view *dx, const ag_view *dy, const ag_view *indices)
{
    ag_pool_plan pl;
    ag_status s = ag_pool2d_backward_plan("vulkan", op, p, dx, dy, indices, &pl);
    if (s != AG_OK || pl.n == 0) return s;
    pool_params d = {.d = pl.d, .flag = op == AG_POOL_MAX, .inv = pl.inv, .out_off = pl.off[0],
                     .a_off = pl.off[1], .b_off = pl.off[2]};
    return vk_run1(ctx, "pool_bw", &d, sizeof d,
                   VK_BUFS(dx->buf, dy->buf, pl.idx ? pl.idx->buf : NULL), (size_t)pl.n);
}
