/* STUB: replaced by the real implementation. */
#include "vk.h"

ag_status vk_gather(void *ctx, int axis, const ag_view *y, const ag_view *x, const ag_view *index)
{
    (void)ctx;
    (void)axis;
    (void)y;
    (void)x;
    (void)index;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: gather is not implemented yet");
}

ag_status vk_scatter_add(void *ctx, int axis, const ag_view *y, const ag_view *index,
                         const ag_view *src)
{
    (void)ctx;
    (void)axis;
    (void)y;
    (void)index;
    (void)src;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: scatter_add is not implemented yet");
}
