/* Reductions over strided f32 views: sum, mean, max, min (NaN wins) and
 * argmax/argmin (int32, first index on ties, NaN is the extreme), with the CPU
 * backend's rules (backends/cpu/cpu_reduce.c): kernels/reduce.cl, launched in
 * the passes backends/common/plan_reduce.c plans (a work group's ty items fold in a
 * local-memory tree). */
#include "ocl.h"
#include "plan.h"

static const char *const red_kernels[AG_REDUCE_COUNT] = {
    [AG_REDUCE_SUM] = "reduce_sum", [AG_REDUCE_MEAN] = "reduce_sum",
    [AG_REDUCE_MAX] = "reduce_max", [AG_REDUCE_MIN] = "reduce_min",
    [AG_REDUCE_ARGMAX] = "reduce_argmax", [AG_REDUCE_ARGMIN] = "reduce_argmin",
};

static cl_mem mem_of(const ocl_ctx *c, const ag_buffer *b) { return b ? b->mem : c->dummy; }

static ag_status red_launch(void *ctx, ag_reduce_op op, const ag_reduce_pass *p,
                            const ag_reduce_launch *l, bool final, const ag_buffer *x,
                            const ag_buffer *xi, const ag_buffer *yv, const ag_buffer *yi)
{
    ocl_ctx *c = ctx;
    cl_int final_ = final, divide = final && op == AG_REDUCE_MEAN, tx_n = (cl_int)l->tx,
           ty_n = (cl_int)l->ty, ty_fast = !p->vertical, nout_i = (cl_int)p->nout,
           nred_i = (cl_int)p->nred, chunk_i = (cl_int)l->chunk, has_idx = p->has_idx;
    cl_float cnt = p->count;
    cl_mem xm = mem_of(c, x), xim = mem_of(c, xi), yvm = mem_of(c, yv), yim = mem_of(c, yi);
    size_t local = (size_t)l->local;
    size_t lidx = ag_reduce_is_arg(op) ? local * sizeof(cl_int) : sizeof(cl_int);
    return ocl_run_groups(c, "reduce", red_kernels[op], (size_t)l->groups, local,
                          OCL_ARGS(OA(final_), OA(divide), OA(tx_n), OA(ty_n), OA(ty_fast),
                                   OA(nout_i), OA(nred_i), OA(chunk_i), OA(cnt), OA(p->ks),
                                   OA(p->kx), OA(p->ky), OA(p->rs), OA(p->rx), OA(has_idx),
                                   OA(xm), OA(xim), OA(yvm), OA(yim),
                                   OA_LOCAL(local * sizeof(cl_float)), OA_LOCAL(lidx)));
}

ag_status ocl_reduce(void *ctx, ag_reduce_op op, const ag_view *y, const ag_view *x)
{
    ocl_ctx *c = ctx;
    /* busy with four groups a compute unit; freed partials stay alive until
     * the queued kernels are done with them */
    const int64_t cu = c->compute_units ? (int64_t)c->compute_units : 1;
    const char *kernel = (unsigned)op < AG_REDUCE_COUNT ? red_kernels[op] : "reduce_sum";
    size_t wg = ocl_reduce_wg(c, "reduce", kernel);
    if (!wg) return ocl_build_status();
    const ag_reduce_device dev = {.ctx = ctx, .wg = (int64_t)wg,
                                  .target_groups = cu * 4, .alloc = ocl_alloc,
                                  .release = ocl_free, .launch = red_launch};
    return ag_reduce_run("opencl", &dev, op, y, x);
}
