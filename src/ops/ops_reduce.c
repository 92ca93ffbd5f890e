/* Reductions over any set of axes, with keepdim, and the broadcast-gradient
 * reduction every backward rule shares. */
#include "core.h"
#include "plan.h" /* ag_reduce_name */

/* Bit d set = axis d reduced; naxes == 0 means every axis. */
static bool axes_mask(const char *op, const ag_tensor *x, int naxes, const int *axes, unsigned *mask)
{
    *mask = 0;
    if (naxes < 0 || (naxes > 0 && !axes))
        return ag_set_error(AG_ERR_ARG, "%s: bad axes list", op), false;
    if (naxes == 0) {
        *mask = (1u << x->ndim) - 1;
        return true;
    }
    for (int k = 0; k < naxes; k++) {
        int a = ag__axis(op, axes[k], x->ndim);
        if (a < 0) return false;
        if (x->ndim == 0) continue;
        if (*mask & (1u << a)) return ag_set_error(AG_ERR_ARG, "%s: axis %d repeated", op, axes[k]), false;
        *mask |= 1u << a;
    }
    return true;
}

/* The shape of x reduced over the axes in mask: those kept as size 1
 * (keepdim) or dropped. Returns its ndim. */
static int reduced_shape(const ag_tensor *x, unsigned mask, bool keepdim, int64_t *shape)
{
    int n = 0;
    for (int d = 0; d < x->ndim; d++)
        if (!((mask >> d) & 1)) shape[n++] = x->shape[d];
        else if (keepdim) shape[n++] = 1;
    return n;
}

/* reduce(x) over the axes in mask into a new tensor of shape [ndim] (the kept
 * shape with any of its size-1 axes left out); the kernels see the kept shape,
 * so no result needs a second tensor to drop axes. */
static ag_tensor *reduce_raw(ag_reduce_op op, ag_tensor *x, unsigned mask, ag_dtype out_dt,
                             int ndim, const int64_t *shape)
{
    ag_tensor *y = ag__empty_on(ag__dev(x), out_dt, ndim, shape);
    if (!y) return NULL;
    ag_view vy = ag__view(y), vx = ag__view(x);
    vy.ndim = reduced_shape(x, mask, true, vy.shape);
    int64_t s = 1;
    for (int d = vy.ndim - 1; d >= 0; d--) {
        vy.stride[d] = s;
        s *= vy.shape[d];
    }
    return AG_LAUNCH(ag__dev(x), reduce, op, &vy, &vx) == AG_OK ? y : NULL;
}

/* reduce_raw shaped as the op's result */
static ag_tensor *reduce_shaped(ag_reduce_op op, ag_tensor *x, unsigned mask, ag_dtype out_dt,
                                bool keepdim)
{
    int64_t shape[AG_MAX_DIMS];
    int n = reduced_shape(x, mask, keepdim, shape);
    return reduce_raw(op, x, mask, out_dt, n, shape);
}

ag_tensor *ag__reduce_to(ag_tensor *g, int ndim, const int64_t *shape)
{
    if (!g) return NULL;
    if (g->ndim == ndim) {
        bool same = true;
        for (int d = 0; d < ndim; d++) same &= g->shape[d] == shape[d];
        if (same) return g;
    }
    int lead = g->ndim - ndim;
    unsigned mask = 0;
    for (int d = 0; d < g->ndim; d++)
        if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1)) mask |= 1u << d;
    /* the leading axes go, the others stay as size 1: shape itself */
    return reduce_raw(AG_REDUCE_SUM, g, mask, AG_F32, ndim, shape);
}

/* gy seen with the reduced axes restored as size 1, then broadcast to x. */
static ag_tensor *expand_back(ag_tensor *gy, const ag_tensor *x, unsigned mask)
{
    int64_t shape[AG_MAX_DIMS];
    reduced_shape(x, mask, true, shape);
    ag_tensor *g = ag_reshape(gy, x->ndim, shape);
    return ag_expand(g, x->ndim, x->shape);
}

static ag_status reduce_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_tensor *x = n->in[0];
    unsigned mask = n->p.reduce.axes;
    ag_tensor *g = expand_back(gy, x, mask);
    switch (n->p.reduce.op) {
    case AG_REDUCE_SUM: break;
    case AG_REDUCE_MEAN: g = ag_mul_scalar(g, n->p.reduce.inv_count); break;
    case AG_REDUCE_MAX:
    case AG_REDUCE_MIN: {
        /* Ties share the gradient equally, as PyTorch's amax/amin do. */
        ag_tensor *y = expand_back(n->saved[0], x, mask);
        ag_tensor *hit = ag_eq(n->saved[1], y);
        ag_tensor *count = reduce_shaped(AG_REDUCE_SUM, hit, mask, AG_F32, true);
        g = ag_mul(hit, ag_div(g, count));
        break;
    }
    default: return ag_set_error(AG_ERR_STATE, "internal: %s has no gradient", n->name);
    }
    gx[0] = g;
    return g ? AG_OK : ag_last_status();
}

static ag_tensor *reduce_op(ag_reduce_op op, ag_tensor *x, int naxes, const int *axes, bool keepdim)
{
    const char *name = ag_reduce_name(op);
    if (!ag__check(name, x, AG_F32)) return NULL;
    unsigned mask;
    if (!axes_mask(name, x, naxes, axes, &mask)) return NULL;
    if ((op == AG_REDUCE_MAX || op == AG_REDUCE_MIN))
        for (int d = 0; d < x->ndim; d++)
            if (((mask >> d) & 1) && x->shape[d] == 0)
                return ag_set_error(AG_ERR_SHAPE, "%s: reducing an empty axis %d", name, d), NULL;
    ag_scope_begin();
    ag_tensor *y = reduce_shaped(op, x, mask, AG_F32, keepdim);
    ag_node *n = NULL;
    if (y && ag__record(y, name, reduce_bwd, 1, &x, &n) != AG_OK) y = NULL;
    if (n) {
        n->p.reduce.op = op;
        n->p.reduce.axes = mask;
        int64_t count = ag_numel(x) / (ag_numel(y) ? ag_numel(y) : 1);
        n->p.reduce.inv_count = count ? 1.0f / (float)count : 0.0f;
        if (op == AG_REDUCE_MAX || op == AG_REDUCE_MIN)
            if (ag__save(n, 0, y) != AG_OK || ag__save(n, 1, x) != AG_OK) y = NULL;
    }
    return ag__done(y);
}

ag_tensor *ag_sum(ag_tensor *x, int naxes, const int *axes, bool keepdim)
{
    return reduce_op(AG_REDUCE_SUM, x, naxes, axes, keepdim);
}
ag_tensor *ag_mean(ag_tensor *x, int naxes, const int *axes, bool keepdim)
{
    return reduce_op(AG_REDUCE_MEAN, x, naxes, axes, keepdim);
}
ag_tensor *ag_max(ag_tensor *x, int naxes, const int *axes, bool keepdim)
{
    return reduce_op(AG_REDUCE_MAX, x, naxes, axes, keepdim);
}
ag_tensor *ag_min(ag_tensor *x, int naxes, const int *axes, bool keepdim)
{
    return reduce_op(AG_REDUCE_MIN, x, naxes, axes, keepdim);
}
ag_tensor *ag_sum_all(ag_tensor *x) { return reduce_op(AG_REDUCE_SUM, x, 0, NULL, false); }
ag_tensor *ag_mean_all(ag_tensor *x) { return reduce_op(AG_REDUCE_MEAN, x, 0, NULL, false); }

/* Two passes (mean, then squared deviations) for accuracy; differentiable
 * through the ops it is built from. */
ag_tensor *ag_var(ag_tensor *x, int naxes, const int *axes, int correction, bool keepdim)
{
    if (!ag__check("var", x, AG_F32)) return NULL;
    unsigned mask;
    if (!axes_mask("var", x, naxes, axes, &mask)) return NULL;
    if (correction < 0) return ag_set_error(AG_ERR_ARG, "var: correction %d < 0", correction), NULL;
    int64_t count = 1;
    for (int d = 0; d < x->ndim; d++)
        if ((mask >> d) & 1) count *= x->shape[d];
    ag_scope_begin();
    ag_tensor *m = ag_mean(x, naxes, axes, true);
    ag_tensor *ss = ag_sum(ag_square(ag_sub(x, m)), naxes, axes, keepdim);
    /* PyTorch divides by max(0, N - correction): inf or NaN when it is 0. */
    ag_tensor *y = ag_div_scalar(ss, (float)(count > correction ? count - correction : 0));
    return ag__done(y);
}

static ag_tensor *arg_op(ag_reduce_op op, ag_tensor *x, int axis, bool keepdim)
{
    const char *name = ag_reduce_name(op);
    if (!ag__check(name, x, AG_F32)) return NULL;
    int a = ag__axis(name, axis, x->ndim);
    if (a < 0) return NULL;
    if (x->ndim && x->shape[a] == 0)
        return ag_set_error(AG_ERR_SHAPE, "%s: axis %d is empty", name, axis), NULL;
    unsigned mask = x->ndim ? 1u << a : 0;
    ag_scope_begin();
    return ag__done(reduce_shaped(op, x, mask, AG_I32, keepdim));
}

ag_tensor *ag_argmax(ag_tensor *x, int axis, bool keepdim) { return arg_op(AG_REDUCE_ARGMAX, x, axis, keepdim); }
ag_tensor *ag_argmin(ag_tensor *x, int axis, bool keepdim) { return arg_op(AG_REDUCE_ARGMIN, x, axis, keepdim); }
