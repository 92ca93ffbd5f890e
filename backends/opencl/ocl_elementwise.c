/* Element-wise families: unary (+ backward), binary, where. */
#include "ocl.h"

static ag_status ew_check(const char *op, int nops, const ag_view *const *v, int cond_at)
{
    return ag_ew_check("opencl", op, nops, v, cond_at);
}

ag_status ocl_unary(void *ctx, ag_unary_op op, const float p[2], const ag_view *y, const ag_view *x)
{
    if ((unsigned)op >= AG_UNARY_COUNT)
        return ag_set_error(AG_ERR_ARG, "opencl unary: unknown op %d", (int)op);
    const ag_view *v[2] = {y, x};
    ag_shape32 sh;
    ag_strides32 st[2];
    ag_status s = ew_check("unary", 2, v, -1);
    if (s == AG_OK) s = ocl_ew_layout("unary", 2, v, &sh, st);
    if (s != AG_OK) return s;
    cl_int opc = (cl_int)op;
    cl_float p0 = p ? p[0] : 0.0f, p1 = p ? p[1] : 0.0f;
    return ocl_run1(ctx, "elementwise", "unary_fw", (size_t)sh.numel,
                    OCL_ARGS(OA(opc), OA(p0), OA(p1), OA(sh), OA(st[0]), OA(st[1]),
                             OA(y->buf->mem), OA(x->buf->mem)));
}

ag_status ocl_unary_backward(void *ctx, ag_unary_op op, const float p[2], const ag_view *dx,
                             const ag_view *dy, const ag_view *x, const ag_view *y)
{
    if ((unsigned)op >= AG_UNARY_COUNT)
        return ag_set_error(AG_ERR_ARG, "opencl unary_backward: unknown op %d", (int)op);
    const ag_view *v[4] = {dx, dy, x, y};
    int nops = y ? 4 : 3;
    ag_shape32 sh;
    ag_strides32 st[4] = {{0}};
    ag_status s = ew_check("unary_backward", nops, v, -1);
    if (s == AG_OK) s = ocl_ew_layout("unary_backward", nops, v, &sh, st);
    if (s != AG_OK) return s;
    cl_int opc = (cl_int)op, has_y = y != NULL;
    cl_float p0 = p ? p[0] : 0.0f, p1 = p ? p[1] : 0.0f;
    cl_mem ymem = ocl_mem_or_dummy(ctx, y);
    return ocl_run1(ctx, "elementwise", "unary_bw", (size_t)sh.numel,
                    OCL_ARGS(OA(opc), OA(p0), OA(p1), OA(has_y), OA(sh), OA(st[0]), OA(st[1]),
                             OA(st[2]), OA(st[3]), OA(dx->buf->mem), OA(dy->buf->mem),
                             OA(x->buf->mem), OA(ymem)));
}

ag_status ocl_binary(void *ctx, ag_binary_op op, const ag_view *y, const ag_view *a, const ag_view *b)
{
    if ((unsigned)op >= AG_BINARY_COUNT)
        return ag_set_error(AG_ERR_ARG, "opencl binary: unknown op %d", (int)op);
    const ag_view *v[3] = {y, a, b};
    ag_shape32 sh;
    ag_strides32 st[3];
    ag_status s = ew_check("binary", 3, v, -1);
    if (s == AG_OK) s = ocl_ew_layout("binary", 3, v, &sh, st);
    if (s != AG_OK) return s;
    cl_int opc = (cl_int)op;
    return ocl_run1(ctx, "elementwise", "binary", (size_t)sh.numel,
                    OCL_ARGS(OA(opc), OA(sh), OA(st[0]), OA(st[1]), OA(st[2]), OA(y->buf->mem),
                             OA(a->buf->mem), OA(b->buf->mem)));
}

ag_status ocl_where(void *ctx, const ag_view *y, const ag_view *cond, const ag_view *a, const ag_view *b)
{
    const ag_view *v[4] = {y, cond, a, b};
    ag_shape32 sh;
    ag_strides32 st[4];
    ag_status s = ew_check("where", 4, v, 1);
    if (s == AG_OK) s = ocl_ew_layout("where", 4, v, &sh, st);
    if (s != AG_OK) return s;
    cl_int is_int = cond->dtype == AG_I32;
    return ocl_run1(ctx, "elementwise", "where_select", (size_t)sh.numel,
                    OCL_ARGS(OA(is_int), OA(sh), OA(st[0]), OA(st[1]), OA(st[2]), OA(st[3]),
                             OA(y->buf->mem), OA(cond->buf->mem), OA(a->buf->mem),
                             OA(b->buf->mem)));
}
