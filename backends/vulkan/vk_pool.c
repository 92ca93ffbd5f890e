/* STUB: replaced by the real implementation. */
#include "vk.h"

ag_status vk_pool2d(void *ctx, ag_pool_op op, const ag_pool2d_params *p, const ag_view *y,
                    const ag_view *indices, const ag_view *x)
{
    (void)ctx;
    (void)op;
    (void)p;
    (void)y;
    (void)indices;
    (void)x;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: pool2d is not implemented yet");
}

ag_status vk_pool2d_backward(void *ctx, ag_pool_op op, const ag_pool2d_params *p,
                             const ag_view *dx, const ag_view *dy, const ag_view *indices)
{
    (void)ctx;
    (void)op;
    (void)p;
    (void)dx;
    (void)dy;
    (void)indices;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: pool2d_backward is not implemented yet");
}
