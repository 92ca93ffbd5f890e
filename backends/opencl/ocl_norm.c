/* STUB: replaced by the real implementation. */
#include "ocl.h"

ag_status ocl_layer_norm(void *ctx, const ag_norm_args *a)
{
    (void)ctx;
    (void)a;
    return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: layer_norm is not implemented yet");
}

ag_status ocl_layer_norm_backward(void *ctx, const ag_norm_args *a)
{
    (void)ctx;
    (void)a;
    return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: layer_norm_backward is not implemented yet");
}

ag_status ocl_batch_norm(void *ctx, const ag_norm_args *a)
{
    (void)ctx;
    (void)a;
    return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: batch_norm is not implemented yet");
}

ag_status ocl_batch_norm_backward(void *ctx, const ag_norm_args *a)
{
    (void)ctx;
    (void)a;
    return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: batch_norm_backward is not implemented yet");
}
