/* gather and scatter_add along one axis (torch semantics) on views with any
 * strides: kernels/index.cl launched as backends/common/plan_index.c plans them
 * (checks, layouts and the choice between scan and sort are there). */
#include "ocl.h"
#include "plan.h"

ag_status ocl_gather(void *ctx, int axis, const ag_view *y, const ag_view *x, const ag_view *index)
{
    ag_gather_params p;
    ag_status s = ag_gather_plan("opencl", axis, y, x, index, &p);
    if (s != AG_OK) return s;
    return ocl_run1(ctx, "index", "gather_axis", (size_t)p.sh.numel,
                    OCL_ARGS(OA(p.sh), OA(p.ys), OA(p.is), OA(p.xs), OA(p.size), OA(p.xsa),
                             OA(y->buf->mem), OA(index->buf->mem), OA(x->buf->mem)));
}

/* Bitonic sort of each Lp-long line of keys[0, total). */
static ag_status sort_lines(ocl_ctx *c, cl_mem keys, int64_t total, int log_lp)
{
    int64_t lp = (int64_t)1 << log_lp;
    if (lp < 2) return AG_OK;
    size_t w = ocl_reduce_wg(c, "index", "bitonic_local");
    if (!w) return ocl_build_status();
    if ((int64_t)w > lp / 2) w = (size_t)(lp / 2);
    int64_t chunk = 2 * (int64_t)w;
    size_t groups = (size_t)(total / chunk);
    cl_int clp = (cl_int)lp, all = -1, pairs = (cl_int)(total / 2);
    ag_status s = ocl_run_groups(c, "index", "bitonic_local", groups, w,
                                 OCL_ARGS(OA(clp), OA(all), OA(keys),
                                          OA_LOCAL((size_t)chunk * sizeof(cl_ulong))));
    for (int64_t k = 2 * chunk; s == AG_OK && k <= lp; k *= 2) {
        cl_int ck = (cl_int)k;
        for (int64_t j = k / 2; s == AG_OK && j >= chunk; j /= 2) {
            cl_int cj = (cl_int)j;
            s = ocl_run1(c, "index", "bitonic_global", (size_t)pairs,
                         OCL_ARGS(OA(pairs), OA(clp), OA(ck), OA(cj), OA(keys)));
        }
        if (s == AG_OK)
            s = ocl_run_groups(c, "index", "bitonic_local", groups, w,
                               OCL_ARGS(OA(clp), OA(ck), OA(keys),
                                        OA_LOCAL((size_t)chunk * sizeof(cl_ulong))));
    }
    return s;
}

ag_status ocl_scatter_add(void *ctx, int axis, const ag_view *y, const ag_view *index,
                          const ag_view *src)
{
    ocl_ctx *c = ctx;
    ag_scatter_plan p;
    ag_status s = ag_scatter_add_plan("opencl", axis, y, index, src, UINT64_MAX, &p);
    if (s != AG_OK || p.path == AG_SCATTER_NONE) return s;
    cl_mem ym = y->buf->mem, im = index->buf->mem, sm = src->buf->mem;
    if (p.path == AG_SCATTER_SERIAL) {
        const ag_scatter_serial_params *q = &p.serial;
        size_t one = 1;
        return ocl_run(c, "index", "scatter_serial", 1, &one, &one,
                       OCL_ARGS(OA(q->sh), OA(q->is), OA(q->ss), OA(q->ys), OA(q->size),
                                OA(q->ysa), OA(ym), OA(im), OA(sm)));
    }
    if (p.path == AG_SCATTER_SCAN) {
        const ag_scatter_scan_params *q = &p.scan;
        return ocl_run1(c, "index", "scatter_scan", (size_t)q->sh.numel,
                        OCL_ARGS(OA(q->sh), OA(q->ys), OA(q->is), OA(q->ss), OA(q->ks),
                                 OA(q->L), OA(q->isa), OA(q->ssa), OA(ym), OA(im), OA(sm)));
    }
    const ag_scatter_keys_params *k = &p.sort.keys;
    const ag_scatter_runs_params *r = &p.sort.runs;
    int64_t total = p.sort.total;
    ag_buffer *keys = ocl_alloc(c, (size_t)total * sizeof(cl_ulong));
    if (!keys) return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    s = ocl_run1(c, "index", "scatter_keys", (size_t)total,
                 OCL_ARGS(OA(k->qsh), OA(k->qs), OA(k->L), OA(k->log_lp), OA(k->isa),
                          OA(k->size), OA(im), OA(keys->mem)));
    if (s == AG_OK) s = sort_lines(c, keys->mem, total, k->log_lp);
    if (s == AG_OK)
        s = ocl_run1(c, "index", "scatter_runs", (size_t)p.sort.entries,
                     OCL_ARGS(OA(r->lsh), OA(r->ys), OA(r->ss), OA(r->qs), OA(r->L),
                              OA(r->log_lp), OA(r->size), OA(r->ysa), OA(r->ssa), OA(ym),
                              OA(sm), OA(keys->mem)));
    /* the driver keeps the buffer until the queued kernels are done with it */
    ocl_free(c, keys);
    return s;
}
