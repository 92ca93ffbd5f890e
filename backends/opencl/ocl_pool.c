/* Max and average 2-D pooling (NCHW, contiguous): kernels/pool.cl, launched
 * as backends/common/plan_pool.c plans them (pool_p there is ag_pool_dims). */
#include "ocl.h"
#include "plan.h"

ag_status ocl_pool2d(void *ctx, ag_pool_op op, const ag_pool2d_params *p, const ag_view *y,
                     const ag_view *indices, const ag_view *x)
{
    ag_pool_plan pl;
    ag_status s = ag_pool2d_plan("opencl", op, p, y, indices, x, &pl);
    if (s != AG_OK || pl.n == 0) return s;
    if (op == AG_POOL_AVG)
        return ocl_run1(ctx, "pool", "pool_avg_fw", (size_t)pl.n,
                        OCL_ARGS(OA(pl.d), OA(pl.inv), OA(y->buf->mem), OA(pl.off[1]),
                                 OA(x->buf->mem), OA(pl.off[0])));
    cl_int has_idx = pl.idx != NULL;
    cl_mem imem = ocl_mem_or_dummy(ctx, pl.idx);
    return ocl_run1(ctx, "pool", "pool_max_fw", (size_t)pl.n,
                    OCL_ARGS(OA(pl.d), OA(has_idx), OA(y->buf->mem), OA(pl.off[1]), OA(imem),
                             OA(pl.off[2]), OA(x->buf->mem), OA(pl.off[0])));
}

/* Gathers instead of scattering: no atomics, and each dx element sums its
 * windows in the CPU's order. A max index outside the element's windows (never
 * produced by pool2d) contributes nothing. */
ag_status ocl_pool2d_backward(void *ctx, ag_pool_op op, const ag_pool2d_params *p,
                              const ag_view *dx, const ag_view *dy, const ag_view *indices)
{
    ag_pool_plan pl;
    ag_status s = ag_pool2d_backward_plan("opencl", op, p, dx, dy, indices, &pl);
    if (s != AG_OK || pl.n == 0) return s;
    cl_int is_max = op == AG_POOL_MAX;
    cl_mem imem = ocl_mem_or_dummy(ctx, pl.idx);
    return ocl_run1(ctx, "pool", "pool_bw", (size_t)pl.n,
                    OCL_ARGS(OA(pl.d), OA(is_max), OA(pl.inv), OA(dx->buf->mem), OA(pl.off[0]),
                             OA(dy->buf->mem), OA(pl.off[1]), OA(imem), OA(pl.off[2])));
}
