/* STUB: replaced by the real implementation. */
#include "vk.h"

ag_status vk_softmax(void *ctx, bool log, const ag_view *y, const ag_view *x)
{
    (void)ctx;
    (void)log;
    (void)y;
    (void)x;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: softmax is not implemented yet");
}

ag_status vk_softmax_backward(void *ctx, bool log, const ag_view *dx, const ag_view *dy,
                              const ag_view *y)
{
    (void)ctx;
    (void)log;
    (void)dx;
    (void)dy;
    (void)y;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: softmax_backward is not implemented yet");
}

ag_status vk_cross_entropy(void *ctx, float smoothing, const ag_view *loss, const ag_view *logits,
                           const ag_view *labels)
{
    (void)ctx;
    (void)smoothing;
    (void)loss;
    (void)logits;
    (void)labels;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: cross_entropy is not implemented yet");
}

ag_status vk_cross_entropy_backward(void *ctx, float smoothing, const ag_view *dlogits,
                                    const ag_view *dloss, const ag_view *logits,
                                    const ag_view *labels)
{
    (void)ctx;
    (void)smoothing;
    (void)dlogits;
    (void)dloss;
    (void)logits;
    (void)labels;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: cross_entropy_backward is not implemented yet");
}
