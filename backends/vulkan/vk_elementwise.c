/* Element-wise families: unary (+ backward), binary, where. */
#include "vk.h"

typedef struct unary_params {
    int32_t op;
    float p0, p1;
    ag_shape32 sh;
    ag_strides32 ys, xs;
} unary_params;

ag_status vk_unary(void *ctx, ag_unary_op op, const float p[2], const ag_view *y, const ag_view *x)
{
    if ((unsigned)op >= AG_UNARY_COUNT)
        return ag_set_error(AG_ERR_ARG, "vulkan unary: unknown op %d", (int)op);
    const ag_view *v[2] = {y, x};
    ag_strides32 st[2];
    unary_params u = {.op = (int32_t)op, .p0 = p ? p[0] : 0.0f, .p1 = p ? p[1] : 0.0f};
    ag_status s = ag_ew_check("vulkan", "unary", 2, v, -1);
    if (s == AG_OK) s = ag_layout32("vulkan", "unary", 2, v, &u.sh, st);
    if (s != AG_OK) return s;
    u.ys = st[0];
    u.xs = st[1];
    return vk_run1(ctx, "unary_fw", &u, sizeof u, VK_BUFS(y->buf, x->buf), (size_t)u.sh.numel);
}

typedef struct unary_bw_params {
    int32_t op;
    float p0, p1;
    int32_t has_y;
    ag_shape32 sh;
    ag_strides32 dxs, dys, xs, ys;
} unary_bw_params;

ag_status vk_unary_backward(void *ctx, ag_unary_op op, const float p[2], const ag_view *dx,
                            const ag_view *dy, const ag_view *x, const ag_view *y)
{
    if ((unsigned)op >= AG_UNARY_COUNT)
        return ag_set_error(AG_ERR_ARG, "vulkan unary_backward: unknown op %d", (int)op);
    const ag_view *v[4] = {dx, dy, x, y};
    int nops = y ? 4 : 3;
    ag_strides32 st[4] = {{0}};
    unary_bw_params u = {.op = (int32_t)op, .p0 = p ? p[0] : 0.0f, .p1 = p ? p[1] : 0.0f, .has_y = y != NULL};
    ag_status s = ag_ew_check("vulkan", "unary_backward", nops, v, -1);
    if (s == AG_OK) s = ag_layout32("vulkan", "unary_backward", nops, v, &u.sh, st);
    if (s != AG_OK) return s;
    u.dxs = st[0];
    u.dys = st[1];
    u.xs = st[2];
    u.ys = st[3];
    return vk_run1(ctx, "unary_bw", &u, sizeof u,
                   VK_BUFS(dx->buf, dy->buf, x->buf, y ? y->buf : NULL), (size_t)u.sh.numel);
}

typedef struct binary_params {
    int32_t op;
    ag_shape32 sh;
    ag_strides32 ys, as, bs;
} binary_params;

ag_status vk_binary(void *ctx, ag_binary_op op, const ag_view *y, const ag_view *a, const ag_view *b)
{
    if ((unsigned)op >= AG_BINARY_COUNT)
        return ag_set_error(AG_ERR_ARG, "vulkan binary: unknown op %d", (int)op);
    const ag_view *v[3] = {y, a, b};
    ag_strides32 st[3];
    binary_params p = {.op = (int32_t)op};
    ag_status s = ag_ew_check("vulkan", "binary", 3, v, -1);
    if (s == AG_OK) s = ag_layout32("vulkan", "binary", 3, v, &p.sh, st);
    if (s != AG_OK) return s;
    p.ys = st[0];
    p.as = st[1];
    p.bs = st[2];
    return vk_run1(ctx, "binary", &p, sizeof p, VK_BUFS(y->buf, a->buf, b->buf), (size_t)p.sh.numel);
}

typedef struct where_params {
    int32_t cond_is_int;
    ag_shape32 sh;
    ag_strides32 ys, cs, as, bs;
} where_params;

ag_status vk_where(void *ctx, const ag_view *y, const ag_view *cond, const ag_view *a, const ag_view *b)
{
    const ag_view *v[4] = {y, cond, a, b};
    ag_strides32 st[4];
    where_params p = {0};
    ag_status s = ag_ew_check("vulkan", "where", 4, v, 1);
    if (s == AG_OK) s = ag_layout32("vulkan", "where", 4, v, &p.sh, st);
    if (s != AG_OK) return s;
    p.cond_is_int = cond->dtype == AG_I32;
    p.ys = st[0];
    p.cs = st[1];
    p.as = st[2];
    p.bs = st[3];
    return vk_run1(ctx, "where_select", &p, sizeof p, VK_BUFS(y->buf, cond->buf, a->buf, b->buf),
                   (size_t)p.sh.numel);
}
