/* The OpenCL backend's interface table and constructor. */
#include "ocl.h"
#include "ops/unary_table.h"

static const ag_backend_i ocl_iface = {
    .name = "opencl",
    .table_bit = AG_ON_OPENCL,
    .destroy = ocl_destroy,
    .describe = ocl_describe,
    .details = ocl_details,
    .props = ocl_props,
    .alloc = ocl_alloc,
    .free = ocl_free,
    .upload = ocl_upload,
    .download = ocl_download,
    .copy = ocl_copy,
    .fill = ocl_fill,
    .sync = ocl_sync,
    .unary = ocl_unary,
    .unary_backward = ocl_unary_backward,
    .binary = ocl_binary,
    .where = ocl_where,
    .reduce = ocl_reduce,
    .gemm = ocl_gemm,
    .softmax = ocl_softmax,
    .softmax_backward = ocl_softmax_backward,
    .cross_entropy = ocl_cross_entropy,
    .cross_entropy_backward = ocl_cross_entropy_backward,
    .conv2d = ocl_conv2d,
    .conv2d_backward_input = ocl_conv2d_backward_input,
    .conv2d_backward_weight = ocl_conv2d_backward_weight,
    .pool2d = ocl_pool2d,
    .pool2d_backward = ocl_pool2d_backward,
    .attention = ocl_attention,
    .attention_backward = ocl_attention_backward,
    .layer_norm = ocl_layer_norm,
    .layer_norm_backward = ocl_layer_norm_backward,
    .batch_norm = ocl_batch_norm,
    .batch_norm_backward = ocl_batch_norm_backward,
    .gather = ocl_gather,
    .scatter_add = ocl_scatter_add,
    .rand = ocl_rand,
    .dropout = ocl_dropout,
    .optim_step = ocl_optim_step,
};

int ag_opencl_backends_create(const ag_backend_i **iface, void **ctxs, int max)
{
    ocl_ctx *made[16];
    *iface = &ocl_iface;
    if (max <= 0) return 0; /* the interface alone: nothing is loaded */
    ocl_stats_init();
    int n = ocl_create_all(&ocl_iface, made, max < 16 ? max : 16);
    for (int i = 0; i < n; i++) ctxs[i] = made[i];
    return n;
}
