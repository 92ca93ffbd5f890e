/* STUB: replaced by the real implementation. */
#include "vk.h"

ag_status vk_gemm(void *ctx, float alpha, float beta, const ag_view *c, const ag_view *a,
                  const ag_view *b)
{
    (void)ctx;
    (void)alpha;
    (void)beta;
    (void)c;
    (void)a;
    (void)b;
    return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: gemm is not implemented yet");
}
