/* STUB: replaced by the real implementation. */
#include "vk.h"

ag_status vk_conv2d(void *ctx, const ag_conv2d_params *p, const ag_view *y, const ag_view *x,
                    const ag_view *w)
{
    (void)ctx;
    (void)p;
    (void)y;
    (void)x;
    (void)w;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: conv2d is not implemented yet");
}

ag_status vk_conv2d_backward_input(void *ctx, const ag_conv2d_params *p, const ag_view *dx,
                                   const ag_view *dy, const ag_view *w)
{
    (void)ctx;
    (void)p;
    (void)dx;
    (void)dy;
    (void)w;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: conv2d_backward_input is not implemented yet");
}

ag_status vk_conv2d_backward_weight(void *ctx, const ag_conv2d_params *p, const ag_view *dw,
                                    const ag_view *dy, const ag_view *x)
{
    (void)ctx;
    (void)p;
    (void)dw;
    (void)dy;
    (void)x;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: conv2d_backward_weight is not implemented yet");
}
