/* The Vulkan backend's interface table and constructor. */
#include "vk.h"
#include "ops/unary_table.h"

static const ag_backend_i vk_iface = {
    .name = "vulkan",
    .table_bit = AG_ON_VULKAN,
    .destroy = vk_destroy,
    .describe = vk_describe,
    .details = vk_details,
    .props = vk_props,
    .alloc = vk_alloc,
    .free = vk_free,
    .upload = vk_upload,
    .download = vk_download,
    .copy = vk_copy,
    .fill = vk_fill,
    .sync = vk_sync,
    .unary = vk_unary,
    .unary_backward = vk_unary_backward,
    .binary = vk_binary,
    .where = vk_where,
    .reduce = vk_reduce,
    .gemm = vk_gemm,
    .softmax = vk_softmax,
    .softmax_backward = vk_softmax_backward,
    .cross_entropy = vk_cross_entropy,
    .cross_entropy_backward = vk_cross_entropy_backward,
    .conv2d = vk_conv2d,
    .conv2d_backward_input = vk_conv2d_backward_input,
    .conv2d_backward_weight = vk_conv2d_backward_weight,
    .pool2d = vk_pool2d,
    .pool2d_backward = vk_pool2d_backward,
    .attention = vk_attention,
    .attention_backward = vk_attention_backward,
    .layer_norm = vk_layer_norm,
    .layer_norm_backward = vk_layer_norm_backward,
    .batch_norm = vk_batch_norm,
    .batch_norm_backward = vk_batch_norm_backward,
    .gather = vk_gather,
    .scatter_add = vk_scatter_add,
    .rand = vk_rand,
    .dropout = vk_dropout,
    .optim_step = vk_optim_step,
};

int ag_vulkan_backends_create(const ag_backend_i **iface, void **ctxs, int max)
{
    vk_ctx *made[16];
    *iface = &vk_iface;
    if (max <= 0) return 0; /* the interface alone: nothing is loaded */
    int n = vk_create_all(made, max < 16 ? max : 16);
    for (int i = 0; i < n; i++) ctxs[i] = made[i];
    return n;
}
