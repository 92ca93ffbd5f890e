/* Fused optimizer step (SGD, RMSProp, Adam, AdamW): one element-wise shader
 * (backends/vulkan/shaders/optim_step.comp, whose Params are ag_optim_plan) run as
 * backends/common/plan_optim.c plans it, the update rules of backends/cpu/cpu_optim.c
 * in the same operation order. */
#include "vk.h"
#include "plan.h"

ag_status vk_optim_step(void *ctx, const ag_optim_args *o, const ag_view *param,
                        const ag_view *grad, const ag_view *s0, const ag_view *s1)
{
    ag_optim_plan p;
    ag_status s = ag_optim_step_plan("vulkan", o, param, grad, s0, s1, &p);
    if (s != AG_OK) return s;
    return vk_run1(ctx, "optim_step", &p, sizeof p,
                   VK_BUFS(param->buf, grad->buf, p.hp.has_s0 ? s0->buf : NULL,
                           p.hp.has_s1 ? s1->buf : NULL),
                   (size_t)p.n);
}
