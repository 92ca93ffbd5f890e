/* Max and average 2-D pooling (NCHW, contiguous): the GPU backends' checks
 * and kernel dimensions. The checks and conventions follow
 * backends/cpu/cpu_pool.c. */
#include "plan.h"

ag_status ag_pool2d_check(const char *backend, const char *op, ag_pool_op kind,
                         const ag_pool2d_params *p, const ag_view *x, const char *xname,
                         const ag_view *y, const char *yname, const ag_view *idx)
{
    if (!p) return ag_set_error(AG_ERR_ARG, "%s %s: NULL parameters", backend, op);
    if (kind != AG_POOL_MAX && kind != AG_POOL_AVG)
        return ag_set_error(AG_ERR_ARG, "%s %s: unknown pooling op %d", backend, op, (int)kind);
    ag_status s = ag_check_view(backend, op, xname, x, AG_F32);
    if (s == AG_OK) s = ag_check_view(backend, op, yname, y, AG_F32);
    if (s == AG_OK && idx) s = ag_check_view(backend, op, "indices", idx, AG_I32);
    if (s != AG_OK) return s;
    if (p->kernel[0] < 1 || p->kernel[1] < 1 || p->stride[0] < 1 || p->stride[1] < 1 ||
        p->padding[0] < 0 || p->padding[1] < 0)
        return ag_set_error(AG_ERR_ARG,
                            "%s %s: bad parameters kernel (%d, %d), stride (%d, %d), padding "
                            "(%d, %d)",
                            backend, op, p->kernel[0], p->kernel[1], p->stride[0], p->stride[1],
                            p->padding[0], p->padding[1]);
    char sx[96], sy[96];
    ag_view_shape_str(x, sx, sizeof sx);
    ag_view_shape_str(y, sy, sizeof sy);
    if (x->ndim != 4 || y->ndim != 4)
        return ag_set_error(AG_ERR_SHAPE, "%s %s: expected 4-D %s and %s, got %s and %s",
                            backend, op, xname, yname, sx, sy);
    int64_t eh = x->shape[2] + 2 * (int64_t)p->padding[0] - p->kernel[0];
    int64_t ew = x->shape[3] + 2 * (int64_t)p->padding[1] - p->kernel[1];
    if (eh < 0 || ew < 0)
        return ag_set_error(AG_ERR_SHAPE, "%s %s: kernel (%d, %d) larger than the padded %s %s",
                            backend, op, p->kernel[0], p->kernel[1], xname, sx);
    int64_t oh = eh / p->stride[0] + 1, ow = ew / p->stride[1] + 1;
    if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] || y->shape[2] != oh ||
        y->shape[3] != ow)
        return ag_set_error(AG_ERR_SHAPE,
                            "%s %s: %s %s needs %s [%lld, %lld, %lld, %lld], got %s", backend,
                            op, xname, sx, yname, (long long)x->shape[0],
                            (long long)x->shape[1], (long long)oh, (long long)ow, sy);
    if (idx) {
        bool same = idx->ndim == 4;
        for (int k = 0; same && k < 4; k++) same = idx->shape[k] == y->shape[k];
        if (!same) {
            char si[96];
            ag_view_shape_str(idx, si, sizeof si);
            return ag_set_error(AG_ERR_SHAPE, "%s %s: indices %s must have %s's shape %s",
                                backend, op, si, yname, sy);
        }
    }
    const ag_view *v[3] = {x, y, idx};
    const char *names[3] = {xname, yname, "indices"};
    for (int k = 0; k < 3; k++)
        if (v[k] && !ag_view_is_contiguous(v[k]))
            return ag_set_error(AG_ERR_ARG, "%s %s: %s is not contiguous", backend, op,
                                names[k]);
    return AG_OK;
}

/* ag_pool2d_check, then the kernels' 32-bit dimensions and offsets. */
static ag_status pool_setup(const char *backend, const char *op, ag_pool_op kind,
                            const ag_pool2d_params *p, const ag_view *x, const char *xname,
                            const ag_view *y, const char *yname, const ag_view *idx,
                            ag_pool_plan *pl)
{
    ag_status s = ag_pool2d_check(backend, op, kind, p, x, xname, y, yname, idx);
    if (s != AG_OK) return s;
    const int64_t ph = x->shape[2] + 2 * (int64_t)p->padding[0];
    const int64_t pw = x->shape[3] + 2 * (int64_t)p->padding[1];
    if (ph > INT32_MAX || pw > INT32_MAX) {
        char sx[96];
        ag_view_shape_str(x, sx, sizeof sx);
        return ag_set_error(AG_ERR_UNSUPPORTED,
                            "%s %s: the padded %s %s exceeds 32-bit indexing", backend, op,
                            xname, sx);
    }
    const ag_view *v[3] = {x, y, idx};
    for (int k = 0; k < 3; k++) {
        pl->off[k] = 0;
        if (v[k] && (s = ag_offset32(backend, op, v[k], &pl->off[k])) != AG_OK) return s;
    }
    /* the extents fit in int32, so every size below does too */
    pl->d = (ag_pool_dims){
        .planes = (int32_t)(x->shape[0] * x->shape[1]), .h = (int32_t)x->shape[2],
        .w = (int32_t)x->shape[3], .oh = (int32_t)y->shape[2], .ow = (int32_t)y->shape[3],
        .kh = p->kernel[0], .kw = p->kernel[1], .sh = p->stride[0], .sw = p->stride[1],
        .ph = p->padding[0], .pw = p->padding[1],
    };
    pl->idx = idx;
    pl->inv = 1.0f / (float)((int64_t)p->kernel[0] * p->kernel[1]);
    return AG_OK;
}

ag_status ag_pool2d_plan(const char *backend, ag_pool_op op, const ag_pool2d_params *p,
                         const ag_view *y, const ag_view *indices, const ag_view *x,
                         ag_pool_plan *pl)
{
    const ag_view *idx = op == AG_POOL_MAX ? indices : NULL;
    ag_status s = pool_setup(backend, "pool2d", op, p, x, "input", y, "output", idx, pl);
    if (s == AG_OK) pl->n = ag_view_numel(y);
    return s;
}

ag_status ag_pool2d_backward_plan(const char *backend, ag_pool_op op, const ag_pool2d_params *p,
                                  const ag_view *dx, const ag_view *dy, const ag_view *indices,
                                  ag_pool_plan *pl)
{
    if (op == AG_POOL_MAX && !indices)
        return ag_set_error(AG_ERR_ARG, "%s pool2d_backward: max pooling needs the indices",
                            backend);
    const ag_view *idx = op == AG_POOL_MAX ? indices : NULL;
    ag_status s = pool_setup(backend, "pool2d_backward", op, p, dx, "dx", dy, "dy", idx, pl);
    if (s == AG_OK) pl->n = ag_view_numel(dx);
    return s;
}
