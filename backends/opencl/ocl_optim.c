/* Fused optimizer step (SGD, RMSProp, Adam, AdamW): one element-wise kernel
 * (kernels/optim.cl) run as backends/common/plan_optim.c plans it, the update rules
 * of backends/cpu/cpu_optim.c in the same operation order. */
#include "ocl.h"
#include "plan.h"

ag_status ocl_optim_step(void *ctx, const ag_optim_args *o, const ag_view *param,
                         const ag_view *grad, const ag_view *s0, const ag_view *s1)
{
    ag_optim_plan p;
    ag_status s = ag_optim_step_plan("opencl", o, param, grad, s0, s1, &p);
    if (s != AG_OK) return s;
    cl_mem m0 = ocl_mem_or_dummy(ctx, p.hp.has_s0 ? s0 : NULL);
    cl_mem m1 = ocl_mem_or_dummy(ctx, p.hp.has_s1 ? s1 : NULL);
    return ocl_run1(ctx, "optim", "optim_step", (size_t)p.n,
                    OCL_ARGS(OA(p.kind), OA(p.n), OA(p.po), OA(p.go), OA(p.s0o), OA(p.s1o),
                             OA(p.hp), OA(param->buf->mem), OA(grad->buf->mem), OA(m0), OA(m1)));
}
