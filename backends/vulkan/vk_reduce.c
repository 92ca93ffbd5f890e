/* STUB: replaced by the real implementation. */
#include "vk.h"

ag_status vk_reduce(void *ctx, ag_reduce_op op, const ag_view *y, const ag_view *x)
{
    (void)ctx;
    (void)op;
    (void)y;
    (void)x;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: reduce is not implemented yet");
}
