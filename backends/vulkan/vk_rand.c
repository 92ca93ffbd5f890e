/* STUB: replaced by the real implementation. */
#include "vk.h"

ag_status vk_rand(void *ctx, const ag_rand_args *r, const ag_view *y)
{
    (void)ctx;
    (void)r;
    (void)y;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: rand is not implemented yet");
}

ag_status vk_dropout(void *ctx, const ag_rand_args *r, float p, const ag_view *y,
                     const ag_view *mask, const ag_view *x)
{
    (void)ctx;
    (void)r;
    (void)p;
    (void)y;
    (void)mask;
    (void)x;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: dropout is not implemented yet");
}
