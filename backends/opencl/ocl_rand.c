/* Random fill (uniform, normal) and dropout: Philox-4x32-10 with the mapping of
 * backend.h, so every element is a function of (seed, stream, index) alone and
 * the uniform values equal the CPU backend's bit for bit. */
#include "ocl.h"

static ag_status check_f32_dense(const char *op, const char *what, const ag_view *v, cl_int *off)
{
    ag_status s = ocl_check_view(op, what, v, AG_F32);
    if (s != AG_OK) return s;
    if (!ag_view_is_contiguous(v)) return ag_set_error(AG_ERR_ARG, "opencl %s: %s must be contiguous", op, what);
    return ocl_offset(op, v, off);
}

ag_status ocl_rand(void *ctx, const ag_rand_args *r, const ag_view *y)
{
    if (!r) return ag_set_error(AG_ERR_ARG, "opencl rand: NULL arguments");
    if (r->dist != AG_RAND_UNIFORM && r->dist != AG_RAND_NORMAL)
        return ag_set_error(AG_ERR_ARG, "opencl rand: unknown distribution %d", (int)r->dist);
    cl_int yo;
    ag_status s = check_f32_dense("rand", "y", y, &yo);
    if (s != AG_OK) return s;
    int64_t n = ag_view_numel(y);
    cl_int normal = r->dist == AG_RAND_NORMAL, cn = (cl_int)n;
    cl_uint k0 = (cl_uint)r->seed, k1 = (cl_uint)(r->seed >> 32);
    cl_uint s0 = (cl_uint)r->stream, s1 = (cl_uint)(r->stream >> 32);
    /* uniform: low end and span, the span rounded in float as the CPU does */
    cl_float a = r->a, b = normal ? r->b : r->b - r->a;
    size_t blocks = normal ? ((size_t)n + 1) / 2 : ((size_t)n + 3) / 4;
    return ocl_run1(ctx, "rand", "rand_fill", blocks,
                    OCL_ARGS(OA(normal), OA(cn), OA(yo), OA(k0), OA(k1), OA(s0), OA(s1), OA(a),
                             OA(b), OA(y->buf->mem)));
}

/* mask may be NULL when the caller needs no gradient */
ag_status ocl_dropout(void *ctx, const ag_rand_args *r, float p, const ag_view *y,
                      const ag_view *mask, const ag_view *x)
{
    if (!r) return ag_set_error(AG_ERR_ARG, "opencl dropout: NULL arguments");
    if (!(p >= 0.0f && p <= 1.0f))
        return ag_set_error(AG_ERR_ARG, "opencl dropout: p = %g is outside [0, 1]", (double)p);
    cl_int yo, mo = 0, xo;
    ag_status s = check_f32_dense("dropout", "y", y, &yo);
    if (s == AG_OK) s = check_f32_dense("dropout", "x", x, &xo);
    if (s == AG_OK && mask) s = check_f32_dense("dropout", "mask", mask, &mo);
    if (s != AG_OK) return s;
    int64_t n = ag_view_numel(y);
    if (ag_view_numel(x) != n || (mask && ag_view_numel(mask) != n))
        return ag_set_error(AG_ERR_SHAPE,
                            "opencl dropout: y, mask and x sizes differ (%lld, %lld, %lld)",
                            (long long)n, (long long)(mask ? ag_view_numel(mask) : n),
                            (long long)ag_view_numel(x));
    /* p == 1 drops everything; 1 / (1 - p) would make 0 * inf = NaN */
    cl_float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f, cp = p;
    cl_int cn = (cl_int)n, has_mask = mask != NULL;
    cl_uint k0 = (cl_uint)r->seed, k1 = (cl_uint)(r->seed >> 32);
    cl_uint s0 = (cl_uint)r->stream, s1 = (cl_uint)(r->stream >> 32);
    cl_mem mm = ocl_mem_or_dummy(ctx, mask);
    return ocl_run1(ctx, "rand", "dropout_fw", ((size_t)n + 3) / 4,
                    OCL_ARGS(OA(cn), OA(yo), OA(mo), OA(xo), OA(has_mask), OA(k0), OA(k1), OA(s0),
                             OA(s1), OA(cp), OA(scale), OA(y->buf->mem), OA(mm),
                             OA(x->buf->mem)));
}
