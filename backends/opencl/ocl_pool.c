/* Max and average 2-D pooling (NCHW, contiguous): kernels/pool.cl. The checks
 * and conventions follow backends/cpu/cpu_pool.c. */
#include <stdio.h>

#include "ocl.h"

/* Laid out as pool_p in kernels/pool.cl. */
typedef struct pool_p {
    cl_int planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
} pool_p;

static bool contiguous(const ag_view *v)
{
    int64_t want = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && v->stride[d] != want) return false;
        want *= v->shape[d];
    }
    return true;
}

/* Checks x [N, C, H, W], y [N, C, OH, OW] and indices (int32, y's shape) when
 * given; fills the kernel's dimensions and the views' element offsets. */
static ag_status pool_setup(const char *op, ag_pool_op kind, const ag_pool2d_params *p,
                            const ag_view *x, const char *xname, const ag_view *y,
                            const char *yname, const ag_view *idx, pool_p *d, cl_int off[3])
{
    if (!p) return ag_set_error(AG_ERR_ARG, "opencl %s: NULL parameters", op);
    if (kind != AG_POOL_MAX && kind != AG_POOL_AVG)
        return ag_set_error(AG_ERR_ARG, "opencl %s: unknown pooling op %d", op, (int)kind);
    ag_status s = ocl_check_view(op, xname, x, AG_F32);
    if (s == AG_OK) s = ocl_check_view(op, yname, y, AG_F32);
    if (s == AG_OK && idx) s = ocl_check_view(op, "indices", idx, AG_I32);
    if (s != AG_OK) return s;
    if (p->kernel[0] < 1 || p->kernel[1] < 1 || p->stride[0] < 1 || p->stride[1] < 1 ||
        p->padding[0] < 0 || p->padding[1] < 0)
        return ag_set_error(AG_ERR_ARG,
                            "opencl %s: bad parameters kernel (%d, %d), stride (%d, %d), padding "
                            "(%d, %d)",
                            op, p->kernel[0], p->kernel[1], p->stride[0], p->stride[1],
                            p->padding[0], p->padding[1]);
    char sx[96], sy[96];
    ag_view_shape_str(x, sx, sizeof sx);
    ag_view_shape_str(y, sy, sizeof sy);
    if (x->ndim != 4 || y->ndim != 4)
        return ag_set_error(AG_ERR_SHAPE, "opencl %s: expected 4-D %s and %s, got %s and %s", op,
                            xname, yname, sx, sy);
    int64_t eh = x->shape[2] + 2 * (int64_t)p->padding[0] - p->kernel[0];
    int64_t ew = x->shape[3] + 2 * (int64_t)p->padding[1] - p->kernel[1];
    if (eh < 0 || ew < 0)
        return ag_set_error(AG_ERR_SHAPE,
                            "opencl %s: kernel (%d, %d) larger than the padded %s %s", op,
                            p->kernel[0], p->kernel[1], xname, sx);
    if (eh + p->kernel[0] > INT32_MAX || ew + p->kernel[1] > INT32_MAX)
        return ag_set_error(AG_ERR_UNSUPPORTED,
                            "opencl %s: the padded %s %s exceeds 32-bit indexing", op, xname, sx);
    int64_t oh = eh / p->stride[0] + 1, ow = ew / p->stride[1] + 1;
    if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] || y->shape[2] != oh ||
        y->shape[3] != ow)
        return ag_set_error(AG_ERR_SHAPE,
                            "opencl %s: %s %s needs %s [%lld, %lld, %lld, %lld], got %s", op,
                            xname, sx, yname, (long long)x->shape[0], (long long)x->shape[1],
                            (long long)oh, (long long)ow, sy);
    if (idx) {
        bool same = idx->ndim == 4;
        for (int k = 0; same && k < 4; k++) same = idx->shape[k] == y->shape[k];
        if (!same) {
            char si[96];
            ag_view_shape_str(idx, si, sizeof si);
            return ag_set_error(AG_ERR_SHAPE, "opencl %s: indices %s must have %s's shape %s",
                                op, si, yname, sy);
        }
    }
    const ag_view *v[3] = {x, y, idx};
    const char *names[3] = {xname, yname, "indices"};
    for (int k = 0; k < 3; k++) {
        off[k] = 0;
        if (!v[k]) continue;
        if (!contiguous(v[k]))
            return ag_set_error(AG_ERR_ARG, "opencl %s: %s is not contiguous", op, names[k]);
        if ((s = ocl_offset(op, v[k], &off[k])) != AG_OK) return s;
    }
    /* the extents fit in int32, so every size below does too */
    *d = (pool_p){
        .planes = (cl_int)(x->shape[0] * x->shape[1]), .h = (cl_int)x->shape[2],
        .w = (cl_int)x->shape[3], .oh = (cl_int)oh, .ow = (cl_int)ow, .kh = p->kernel[0],
        .kw = p->kernel[1], .sh = p->stride[0], .sw = p->stride[1], .ph = p->padding[0],
        .pw = p->padding[1],
    };
    return AG_OK;
}

ag_status ocl_pool2d(void *ctx, ag_pool_op op, const ag_pool2d_params *p, const ag_view *y,
                     const ag_view *indices, const ag_view *x)
{
    pool_p d;
    cl_int off[3];
    const ag_view *idx = op == AG_POOL_MAX ? indices : NULL;
    ag_status s = pool_setup("pool2d", op, p, x, "input", y, "output", idx, &d, off);
    if (s != AG_OK) return s;
    if (ocl_numel(y) == 0) return AG_OK;
    size_t n = (size_t)ocl_numel(y);
    if (op == AG_POOL_AVG) {
        cl_float inv = 1.0f / (float)((int64_t)d.kh * d.kw);
        return ocl_run1(ctx, "pool", "pool_avg_fw", n,
                        OCL_ARGS(OA(d), OA(inv), OA(y->buf->mem), OA(off[1]), OA(x->buf->mem),
                                 OA(off[0])));
    }
    cl_int has_idx = idx != NULL;
    cl_mem imem = ocl_mem_or_dummy(ctx, idx);
    return ocl_run1(ctx, "pool", "pool_max_fw", n,
                    OCL_ARGS(OA(d), OA(has_idx), OA(y->buf->mem), OA(off[1]), OA(imem),
                             OA(off[2]), OA(x->buf->mem), OA(off[0])));
}

/* Gathers instead of scattering: no atomics, and each dx element sums its
 * windows in the CPU's order. A max index outside the element's windows (never
 * produced by pool2d) contributes nothing. */
ag_status ocl_pool2d_backward(void *ctx, ag_pool_op op, const ag_pool2d_params *p,
                              const ag_view *dx, const ag_view *dy, const ag_view *indices)
{
    pool_p d;
    cl_int off[3];
    if (op == AG_POOL_MAX && !indices)
        return ag_set_error(AG_ERR_ARG, "opencl pool2d_backward: max pooling needs the indices");
    const ag_view *idx = op == AG_POOL_MAX ? indices : NULL;
    ag_status s = pool_setup("pool2d_backward", op, p, dx, "dx", dy, "dy", idx, &d, off);
    if (s != AG_OK) return s;
    if (ocl_numel(dx) == 0) return AG_OK;
    cl_int is_max = op == AG_POOL_MAX;
    cl_float inv = 1.0f / (float)((int64_t)d.kh * d.kw);
    cl_mem imem = ocl_mem_or_dummy(ctx, idx);
    return ocl_run1(ctx, "pool", "pool_bw", (size_t)ocl_numel(dx),
                    OCL_ARGS(OA(d), OA(is_max), OA(inv), OA(dx->buf->mem), OA(off[0]),
                             OA(dy->buf->mem), OA(off[1]), OA(imem), OA(off[2])));
}
