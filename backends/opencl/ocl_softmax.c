/* STUB: replaced by the real implementation. */
#include "ocl.h"

ag_status ocl_softmax(void *ctx, bool log, const ag_view *y, const ag_view *x)
{
    (void)ctx;
    (void)log;
    (void)y;
    (void)x;
    return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: softmax is not implemented yet");
}

ag_status ocl_softmax_backward(void *ctx, bool log, const ag_view *dx, const ag_view *dy,
                               const ag_view *y)
{
    (void)ctx;
    (void)log;
    (void)dx;
    (void)dy;
    (void)y;
    return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: softmax_backward is not implemented yet");
}

ag_status ocl_cross_entropy(void *ctx, float smoothing, const ag_view *loss, const ag_view *logits,
                            const ag_view *labels)
{
    (void)ctx;
    (void)smoothing;
    (void)loss;
    (void)logits;
    (void)labels;
    return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: cross_entropy is not implemented yet");
}

ag_status ocl_cross_entropy_backward(void *ctx, float smoothing, const ag_view *dlogits,
                                     const ag_view *dloss, const ag_view *logits,
                                     const ag_view *labels)
{
    (void)ctx;
    (void)smoothing;
    (void)dlogits;
    (void)dloss;
    (void)logits;
    (void)labels;
    return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: cross_entropy_backward is not implemented yet");
}
