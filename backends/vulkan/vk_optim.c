/* STUB: replaced by the real implementation. */
#include "vk.h"

ag_status vk_optim_step(void *ctx, const ag_optim_args *o, const ag_view *param,
                        const ag_view *grad, const ag_view *s0, const ag_view *s1)
{
    (void)ctx;
    (void)o;
    (void)param;
    (void)grad;
    (void)s0;
    (void)s1;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: optim_step is not implemented yet");
}
