/* STUB: replaced by the real implementation. */
#include "vk.h"

ag_status vk_layer_norm(void *ctx, const ag_norm_args *a)
{
    (void)ctx;
    (void)a;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: layer_norm is not implemented yet");
}

ag_status vk_layer_norm_backward(void *ctx, const ag_norm_args *a)
{
    (void)ctx;
    (void)a;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: layer_norm_backward is not implemented yet");
}

ag_status vk_batch_norm(void *ctx, const ag_norm_args *a)
{
    (void)ctx;
    (void)a;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: batch_norm is not implemented yet");
}

ag_status vk_batch_norm_backward(void *ctx, const ag_norm_args *a)
{
    (void)ctx;
    (void)a;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: batch_norm_backward is not implemented yet");
}
