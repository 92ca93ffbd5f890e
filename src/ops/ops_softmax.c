/* softmax and log_softmax over any axis: the kernel works on the last axis of
 * a contiguous [rows, cols] layout, so other axes are moved there and back. */
#include "core.h"

/* A contiguous tensor seen as [rows, last-axis]. */
static ag_view rows_view(const ag_tensor *t)
{
    ag_view v = ag__view(t);
    int64_t cols = t->ndim ? t->shape[t->ndim - 1] : 1;
    v.ndim = 2;
    v.shape[1] = cols;
    v.shape[0] = cols ? ag_numel(t) / cols : 0;
    v.stride[1] = 1;
    v.stride[0] = cols;
    return v;
}

static ag_tensor *to_last(ag_tensor *t, int axis)
{
    return axis == t->ndim - 1 || t->ndim == 0 ? t : ag_transpose(t, axis, -1);
}

static ag_status softmax_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    int axis = n->p.softmax.axis;
    bool log = n->p.softmax.log;
    ag_tensor *yc = n->saved[0];
    ag_tensor *g = ag__contiguous(to_last(gy, axis));
    ag_tensor *dx = g ? ag__empty_like(yc) : NULL;
    if (!dx) return ag_last_status();
    ag_view vdx = rows_view(dx), vg = rows_view(g), vy = rows_view(yc);
    ag_status s = AG_LAUNCH(ag__dev(yc), softmax_backward, log, &vdx, &vg, &vy);
    if (s) return s;
    gx[0] = to_last(dx, axis);
    return gx[0] ? AG_OK : ag_last_status();
}

static ag_tensor *softmax_impl(const char *name, bool log, ag_tensor *x, int axis)
{
    if (!ag__check(name, x, AG_F32)) return NULL;
    int a = ag__axis(name, axis, x->ndim);
    if (a < 0) return NULL;
    ag_scope_begin();
    ag_no_grad_begin(); /* the layout moves are internal; one node covers the op */
    ag_tensor *xc = ag__contiguous(to_last(x, a));
    ag_tensor *yc = xc ? ag__empty_like(xc) : NULL, *y = NULL;
    if (yc) {
        ag_view vy = rows_view(yc), vx = rows_view(xc);
        if (AG_LAUNCH(ag__dev(x), softmax, log, &vy, &vx) == AG_OK) y = to_last(yc, a);
    }
    ag_no_grad_end();
    if (y == yc && y) y = ag__alias(yc, yc->ndim, yc->shape, yc->stride, yc->offset);
    ag_node *n = NULL;
    if (y && ag__record(y, name, softmax_bwd, 1, &x, &n) != AG_OK) y = NULL;
    if (n) {
        n->p.softmax.axis = a;
        n->p.softmax.log = log;
        if (ag__save(n, 0, yc) != AG_OK) y = NULL;
    }
    return ag__done(y);
}

ag_tensor *ag_softmax(ag_tensor *x, int axis) { return softmax_impl("softmax", false, x, axis); }
ag_tensor *ag_log_softmax(ag_tensor *x, int axis)
{
    return softmax_impl("log_softmax", true, x, axis);
}
