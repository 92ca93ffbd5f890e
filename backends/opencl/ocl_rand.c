/* STUB: replaced by the real implementation. */
#include "ocl.h"

ag_status ocl_rand(void *ctx, const ag_rand_args *r, const ag_view *y)
{
    (void)ctx;
    (void)r;
    (void)y;
    return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: rand is not implemented yet");
}

ag_status ocl_dropout(void *ctx, const ag_rand_args *r, float p, const ag_view *y,
                      const ag_view *mask, const ag_view *x)
{
    (void)ctx;
    (void)r;
    (void)p;
    (void)y;
    (void)mask;
    (void)x;
    return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: dropout is not implemented yet");
}
