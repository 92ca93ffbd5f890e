/* Layer and batch normalisation, forward and backward: kernels/norm.cl,
 * launched as backends/common/plan_norm.c lays them out (local-memory tree
 * reductions; layer norm's dgamma / dbeta in ln_param_grad, then
 * ln_param_final over the row chunks' partials). Semantics and checks follow
 * backends/cpu/cpu_norm.c. */
#include "ocl.h"
#include "plan.h"

/* Laid out as norm_dims in kernels/norm.cl (norm_offs there is ag_norm_offs). */
typedef struct ocl_norm_dims {
    cl_int mode, training, N, C, S, cpg, has;
    cl_float eps, momentum;
} ocl_norm_dims;

enum { NORM_LN, NORM_BN };

ag_status ocl_layer_norm(void *ctx, const ag_norm_args *a)
{
    ocl_ctx *c = ctx;
    ag_norm_plan p;
    size_t lim = ocl_reduce_wg(c, "norm", "norm_fw");
    if (!lim) return ocl_build_status();
    ag_status s = ag_layer_norm_plan("opencl", a, false, (int64_t)lim, &p);
    if (s != AG_OK || p.groups == 0) return s;
    ocl_norm_dims d = {.mode = NORM_LN, .N = p.n, .C = p.c, .S = p.s, .cpg = p.cpg,
                       .eps = a->eps, .has = p.has};
    size_t wg = (size_t)p.wg;
    cl_mem mean = ocl_mem_or_dummy(c, a->mean), rstd = ocl_mem_or_dummy(c, a->rstd);
    cl_mem gamma = ocl_mem_or_dummy(c, a->gamma), beta = ocl_mem_or_dummy(c, a->beta);
    return ocl_run_groups(c, "norm", "norm_fw", (size_t)p.groups, wg,
                          OCL_ARGS(OA(d), OA(p.off), OA(a->x->buf->mem), OA(a->y->buf->mem),
                                   OA(mean), OA(rstd), OA(gamma), OA(beta), OA(c->dummy),
                                   OA(c->dummy), OA_LOCAL(wg * sizeof(cl_float))));
}

/* dgamma / dbeta = sums over rows, by column blocks and row chunks. */
static ag_status ln_param_grads(ocl_ctx *c, const ag_norm_args *a, const ag_norm_plan *p)
{
    size_t wg = (size_t)p->param_wg;
    cl_mem dgamma = ocl_mem_or_dummy(c, a->dgamma), dbeta = ocl_mem_or_dummy(c, a->dbeta);
    ag_buffer *part = NULL;
    if (p->nchunk > 1) {
        part = ocl_alloc(c, (size_t)p->nchunk * 2 * (size_t)p->s * sizeof(cl_float));
        if (!part) return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    }
    cl_mem pm = part ? part->mem : c->dummy;
    size_t global[2] = {(size_t)p->blocks * wg, (size_t)p->nchunk};
    size_t local[2] = {wg, 1};
    ag_status s = ocl_run(c, "norm", "ln_param_grad", 2, global, local,
                          OCL_ARGS(OA(p->c), OA(p->s), OA(p->chunk_rows), OA(p->param_cpg),
                                   OA(p->param_has), OA(p->off), OA(a->x->buf->mem),
                                   OA(a->dy->buf->mem), OA(a->mean->buf->mem),
                                   OA(a->rstd->buf->mem), OA(dgamma), OA(dbeta), OA(pm),
                                   OA_LOCAL(wg * sizeof(cl_float))));
    if (s == AG_OK && part)
        s = ocl_run1(c, "norm", "ln_param_final", (size_t)p->s,
                     OCL_ARGS(OA(p->s), OA(p->nchunk), OA(p->param_has), OA(p->off), OA(pm),
                              OA(dgamma), OA(dbeta)));
    /* the driver keeps the buffer until the queued kernels are done with it */
    ocl_free(c, part);
    return s;
}

ag_status ocl_layer_norm_backward(void *ctx, const ag_norm_args *a)
{
    ocl_ctx *c = ctx;
    ag_norm_plan p;
    /* the plan's work groups serve norm_bw and ln_param_grad: within both limits */
    size_t lim = ocl_reduce_wg(c, "norm", "norm_bw");
    size_t lim2 = lim ? ocl_reduce_wg(c, "norm", "ln_param_grad") : 0;
    if (lim2 < lim) lim = lim2;
    if (!lim) return ocl_build_status();
    ag_status s = ag_layer_norm_plan("opencl", a, true, (int64_t)lim, &p);
    if (s != AG_OK) return s;
    if (p.groups > 0) {
        ocl_norm_dims d = {.mode = NORM_LN, .N = p.n, .C = p.c, .S = p.s, .cpg = p.cpg,
                           .has = p.has};
        size_t wg = (size_t)p.wg;
        cl_mem gamma = ocl_mem_or_dummy(c, a->gamma);
        s = ocl_run_groups(c, "norm", "norm_bw", (size_t)p.groups, wg,
                           OCL_ARGS(OA(d), OA(p.off), OA(a->x->buf->mem), OA(a->dy->buf->mem),
                                    OA(a->mean->buf->mem), OA(a->rstd->buf->mem), OA(gamma),
                                    OA(a->dx->buf->mem), OA(c->dummy), OA(c->dummy),
                                    OA_LOCAL(wg * sizeof(cl_float))));
    }
    if (s == AG_OK && p.blocks > 0) s = ln_param_grads(c, a, &p);
    return s;
}

ag_status ocl_batch_norm(void *ctx, const ag_norm_args *a)
{
    ocl_ctx *c = ctx;
    ag_norm_plan p;
    size_t lim = ocl_reduce_wg(c, "norm", "norm_fw");
    if (!lim) return ocl_build_status();
    ag_status s = ag_batch_norm_plan("opencl", a, false, (int64_t)lim, &p);
    if (s != AG_OK || p.groups == 0) return s;
    ocl_norm_dims d = {.mode = NORM_BN, .training = a->training, .N = p.n, .C = p.c, .S = p.s,
                       .cpg = p.cpg, .eps = a->eps, .momentum = a->momentum, .has = p.has};
    size_t wg = (size_t)p.wg;
    cl_mem mean = ocl_mem_or_dummy(c, a->mean), rstd = ocl_mem_or_dummy(c, a->rstd);
    cl_mem gamma = ocl_mem_or_dummy(c, a->gamma), beta = ocl_mem_or_dummy(c, a->beta);
    cl_mem rmean = ocl_mem_or_dummy(c, a->running_mean);
    cl_mem rvar = ocl_mem_or_dummy(c, a->running_var);
    return ocl_run_groups(c, "norm", "norm_fw", (size_t)p.groups, wg,
                          OCL_ARGS(OA(d), OA(p.off), OA(a->x->buf->mem), OA(a->y->buf->mem),
                                   OA(mean), OA(rstd), OA(gamma), OA(beta), OA(rmean), OA(rvar),
                                   OA_LOCAL(wg * sizeof(cl_float))));
}

ag_status ocl_batch_norm_backward(void *ctx, const ag_norm_args *a)
{
    ocl_ctx *c = ctx;
    ag_norm_plan p;
    size_t lim = ocl_reduce_wg(c, "norm", "norm_bw");
    if (!lim) return ocl_build_status();
    ag_status s = ag_batch_norm_plan("opencl", a, true, (int64_t)lim, &p);
    if (s != AG_OK || p.groups == 0) return s;
    ocl_norm_dims d = {.mode = NORM_BN, .training = a->training, .N = p.n, .C = p.c, .S = p.s,
                       .cpg = p.cpg, .has = p.has};
    size_t wg = (size_t)p.wg;
    cl_mem gamma = ocl_mem_or_dummy(c, a->gamma), dx = ocl_mem_or_dummy(c, a->dx);
    cl_mem dgamma = ocl_mem_or_dummy(c, a->dgamma), dbeta = ocl_mem_or_dummy(c, a->dbeta);
    return ocl_run_groups(c, "norm", "norm_bw", (size_t)p.groups, wg,
                          OCL_ARGS(OA(d), OA(p.off), OA(a->x->buf->mem), OA(a->dy->buf->mem),
                                   OA(a->mean->buf->mem), OA(a->rstd->buf->mem), OA(gamma),
                                   OA(dx), OA(dgamma), OA(dbeta),
                                   OA_LOCAL(wg * sizeof(cl_float))));
}
