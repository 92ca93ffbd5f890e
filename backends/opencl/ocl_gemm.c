/* STUB: replaced by the real implementation. */
#include "ocl.h"

ag_status ocl_gemm(void *ctx, float alpha, float beta, const ag_view *c, const ag_view *a,
                   const ag_view *b)
{
    (void)ctx;
    (void)alpha;
    (void)beta;
    (void)c;
    (void)a;
    (void)b;
    return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: gemm is not implemented yet");
}
