/* Softmax, log-softmax and cross entropy over the last axis of contiguous
 * [rows, cols] views (kernels/softmax.cl), with the CPU backend's rules
 * (backends/cpu/cpu_softmax.c): a NaN makes its row NaN, a label outside
 * [0, C) makes its loss and gradient row NaN. Checks and the rows' layout:
 * backends/common/plan_softmax.c. */
#include "ocl.h"
#include "plan.h"

/* Rows over groups, for a device busy with four groups a compute unit. */
static ag_status row_layout(ocl_ctx *c, const char *kernel, const ag_rows_plan *p, ag_rows_launch *l)
{
    int64_t cu = c->compute_units ? (int64_t)c->compute_units : 1;
    size_t wg = ocl_reduce_wg(c, "softmax", kernel);
    if (!wg) return ocl_build_status();
    *l = ag_rows_launch_plan(p, (int64_t)wg, cu * 4, false);
    return AG_OK;
}

ag_status ocl_softmax(void *ctx, bool log, const ag_view *y, const ag_view *x)
{
    ocl_ctx *c = ctx;
    ag_rows_plan p;
    ag_status s = ag_softmax_plan("opencl", log, y, x, &p);
    if (s != AG_OK || p.empty) return s;
    ag_rows_launch l;
    if ((s = row_layout(c, "softmax_fw", &p, &l)) != AG_OK) return s;
    size_t local = (size_t)l.local;
    cl_int lg = log, r = (cl_int)p.rows, n = (cl_int)p.cols, t = (cl_int)l.tpr;
    return ocl_run_groups(c, "softmax", "softmax_fw", (size_t)l.groups, local,
                          OCL_ARGS(OA(lg), OA(r), OA(n), OA(t), OA(p.off[0]), OA(p.off[1]),
                                   OA(x->buf->mem), OA(y->buf->mem),
                                   OA_LOCAL(local * sizeof(cl_float))));
}

ag_status ocl_softmax_backward(void *ctx, bool log, const ag_view *dx, const ag_view *dy,
                               const ag_view *y)
{
    ocl_ctx *c = ctx;
    ag_rows_plan p;
    ag_status s = ag_softmax_backward_plan("opencl", log, dx, dy, y, &p);
    if (s != AG_OK || p.empty) return s;
    ag_rows_launch l;
    if ((s = row_layout(c, "softmax_bw", &p, &l)) != AG_OK) return s;
    size_t local = (size_t)l.local;
    cl_int lg = log, r = (cl_int)p.rows, n = (cl_int)p.cols, t = (cl_int)l.tpr;
    return ocl_run_groups(c, "softmax", "softmax_bw", (size_t)l.groups, local,
                          OCL_ARGS(OA(lg), OA(r), OA(n), OA(t), OA(p.off[0]), OA(p.off[1]),
                                   OA(p.off[2]), OA(dx->buf->mem), OA(dy->buf->mem),
                                   OA(y->buf->mem), OA_LOCAL(local * sizeof(cl_float))));
}

ag_status ocl_cross_entropy(void *ctx, float smoothing, const ag_view *loss, const ag_view *logits,
                            const ag_view *labels)
{
    ocl_ctx *c = ctx;
    ag_rows_plan p;
    ag_status s = ag_cross_entropy_plan("opencl", loss, logits, labels, &p);
    if (s != AG_OK || p.empty) return s;
    ag_rows_launch l;
    if ((s = row_layout(c, "cross_entropy_fw", &p, &l)) != AG_OK) return s;
    size_t local = (size_t)l.local;
    cl_float sm = smoothing;
    cl_int r = (cl_int)p.rows, n = (cl_int)p.cols, t = (cl_int)l.tpr;
    return ocl_run_groups(c, "softmax", "cross_entropy_fw", (size_t)l.groups, local,
                          OCL_ARGS(OA(sm), OA(r), OA(n), OA(t), OA(p.off[0]), OA(p.off[1]),
                                   OA(p.ls), OA(p.off[2]), OA(p.ps), OA(logits->buf->mem),
                                   OA(labels->buf->mem), OA(loss->buf->mem),
                                   OA_LOCAL(local * sizeof(cl_float))));
}

ag_status ocl_cross_entropy_backward(void *ctx, float smoothing, const ag_view *dlogits,
                                     const ag_view *dloss, const ag_view *logits,
                                     const ag_view *labels)
{
    ocl_ctx *c = ctx;
    ag_rows_plan p;
    ag_status s = ag_cross_entropy_backward_plan("opencl", dlogits, dloss, logits, labels, &p);
    if (s != AG_OK || p.empty) return s;
    ag_rows_launch l;
    if ((s = row_layout(c, "cross_entropy_bw", &p, &l)) != AG_OK) return s;
    size_t local = (size_t)l.local;
    cl_float sm = smoothing, uni = smoothing / (float)p.cols;
    cl_int r = (cl_int)p.rows, n = (cl_int)p.cols, t = (cl_int)l.tpr;
    return ocl_run_groups(c, "softmax", "cross_entropy_bw", (size_t)l.groups, local,
                          OCL_ARGS(OA(sm), OA(uni), OA(r), OA(n), OA(t), OA(p.off[3]),
                                   OA(p.off[0]), OA(p.off[1]), OA(p.ls), OA(p.off[2]), OA(p.ps),
                                   OA(dlogits->buf->mem), OA(logits->buf->mem),
                                   OA(labels->buf->mem), OA(dloss->buf->mem),
                                   OA_LOCAL(local * sizeof(cl_float))));
}
