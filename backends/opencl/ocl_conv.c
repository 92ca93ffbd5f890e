/* 2-D convolution (NCHW, contiguous, no bias): kernels/conv.cl, launched as
 * backends/common/plan_conv.c plans them (conv_p there is ag_conv_dims). The tiled
 * implicit-GEMM kernels run when the plan says the shape suits them and the
 * device runs 256-item work groups. Results are deterministic: no atomics,
 * and the backward-weight reduction is split by shape only. */
#include "ocl.h"
#include "plan.h"

/* Whether to run tiled kernel `kernel`: the plan's shape, 256-item groups on
 * the device and for the compiled kernel (conv_tiled.cl, a program of its own:
 * where it does not build, the direct kernels run). */
static ag_status tiled_ok(ocl_ctx *c, const char *kernel, const ag_conv_plan *pl, bool *ok)
{
    *ok = false;
    if (!pl->tiled || c->max_wg < AG_CONV_TILE_WG) return AG_OK;
    *ok = ocl_kernel_wg_optional(c, "conv_tiled", kernel) >= AG_CONV_TILE_WG;
    return AG_OK;
}

/* Forward and backward input: the direct kernel over its work-items or the
 * tiled one, on the buffers (out, a, b). */
static ag_status run_fw_bwi(ocl_ctx *c, const ag_conv_plan *pl, const char *direct,
                            const char *tiled_kernel, cl_mem out, cl_mem a, cl_mem b)
{
    bool tiled;
    ag_status s = tiled_ok(c, tiled_kernel, pl, &tiled);
    if (s != AG_OK) return s;
    if (!tiled)
        return ocl_run1(c, "conv", direct, (size_t)pl->direct,
                        OCL_ARGS(OA(pl->d), OA(out), OA(pl->out_off), OA(a), OA(pl->a_off),
                                 OA(b), OA(pl->b_off)));
    if ((s = ag_conv_groups_check("opencl", pl, pl->groups)) != AG_OK) return s;
    return ocl_run_groups(c, "conv_tiled", tiled_kernel, (size_t)pl->groups, AG_CONV_TILE_WG,
                          OCL_ARGS(OA(pl->d), OA(pl->tiles_m), OA(pl->tiles_n), OA(out),
                                   OA(pl->out_off), OA(a), OA(pl->a_off), OA(b),
                                   OA(pl->b_off)));
}

ag_status ocl_conv2d(void *ctx, const ag_conv2d_params *p, const ag_view *y, const ag_view *x,
                     const ag_view *w)
{
    ag_conv_plan pl;
    ag_status s = ag_conv2d_plan("opencl", p, y, x, w, &pl);
    if (s != AG_OK || pl.numel == 0) return s;
    return run_fw_bwi(ctx, &pl, "conv_fw", "conv_fw_tiled", y->buf->mem, x->buf->mem,
                      w->buf->mem);
}

ag_status ocl_conv2d_backward_input(void *ctx, const ag_conv2d_params *p, const ag_view *dx,
                                    const ag_view *dy, const ag_view *w)
{
    ag_conv_plan pl;
    ag_status s = ag_conv2d_backward_input_plan("opencl", p, dx, dy, w, &pl);
    if (s != AG_OK || pl.numel == 0) return s;
    return run_fw_bwi(ctx, &pl, "conv_bwi", "conv_bwi_tiled", dx->buf->mem, dy->buf->mem,
                      w->buf->mem);
}

ag_status ocl_conv2d_backward_weight(void *ctx, const ag_conv2d_params *p, const ag_view *dw,
                                     const ag_view *dy, const ag_view *x)
{
    ocl_ctx *c = ctx;
    ag_conv_plan pl;
    ag_status s = ag_conv2d_backward_weight_plan("opencl", p, dw, dy, x, &pl);
    if (s != AG_OK || pl.numel == 0) return s;
    bool tiled;
    if ((s = tiled_ok(c, "conv_bww_tiled", &pl, &tiled)) != AG_OK) return s;
    if (!tiled) {
        /* a work group per CB output channels, input channel and tap; no
         * wider than the reduction needs */
        size_t wg = ocl_reduce_wg(c, "conv", "conv_bww");
        if (!wg) return ocl_build_status();
        while (wg > 32 && (int64_t)wg / 2 >= pl.k) wg /= 2;
        return ocl_run_groups(c, "conv", "conv_bww", (size_t)pl.direct, wg,
                              OCL_ARGS(OA(pl.d), OA(dw->buf->mem), OA(pl.out_off),
                                       OA(dy->buf->mem), OA(pl.a_off), OA(x->buf->mem),
                                       OA(pl.b_off),
                                       OA_LOCAL(AG_CONV_CB * wg * sizeof(cl_float))));
    }
    if ((s = ag_conv_groups_check("opencl", &pl, pl.groups)) != AG_OK) return s;
    if (pl.parts == 1)
        return ocl_run_groups(c, "conv_tiled", "conv_bww_tiled", (size_t)pl.groups, AG_CONV_TILE_WG,
                              OCL_ARGS(OA(pl.d), OA(pl.tiles_m), OA(pl.tiles_n), OA(pl.chunk),
                                       OA(dw->buf->mem), OA(pl.out_off), OA(dy->buf->mem),
                                       OA(pl.a_off), OA(x->buf->mem), OA(pl.b_off)));
    ag_buffer *part = ocl_alloc(c, (size_t)(pl.parts * pl.numel) * sizeof(cl_float));
    if (!part) return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    cl_int zero = 0, ne = (cl_int)pl.numel, np = (cl_int)pl.parts;
    s = ocl_run_groups(c, "conv_tiled", "conv_bww_tiled", (size_t)pl.groups, AG_CONV_TILE_WG,
                       OCL_ARGS(OA(pl.d), OA(pl.tiles_m), OA(pl.tiles_n), OA(pl.chunk),
                                OA(part->mem), OA(zero), OA(dy->buf->mem), OA(pl.a_off),
                                OA(x->buf->mem), OA(pl.b_off)));
    if (s == AG_OK)
        s = ocl_run1(c, "conv", "conv_sum_parts", (size_t)pl.numel,
                     OCL_ARGS(OA(ne), OA(np), OA(dw->buf->mem), OA(pl.out_off), OA(part->mem)));
    ocl_free(c, part); /* the driver keeps it until the queued kernels finish */
    return s;
}
