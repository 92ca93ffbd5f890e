/* STUB: replaced by the real implementation. */
#include "ocl.h"

ag_status ocl_reduce(void *ctx, ag_reduce_op op, const ag_view *y, const ag_view *x)
{
    (void)ctx;
    (void)op;
    (void)y;
    (void)x;
    return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: reduce is not implemented yet");
}
