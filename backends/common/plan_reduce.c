/* Reductions over strided f32 views on the GPU backends: the checks (the CPU
 * backend's rules, backends/cpu/cpu_reduce.c), the split of x's axes into a
 * kept and a reduced space, the sizes of each pass and the chain of passes,
 * which the backend launches (ag_reduce_device).
 *
 * x's axes split into kept axes (the output index space) and reduced axes,
 * each set ordered by decreasing x stride and merged where the layout allows.
 * One kernel shape serves every case: a work group covers tx outputs with ty
 * items each, ty items folding a chunk of the reduction serially and then in a
 * tree. The split is picked by sizes: long reductions over few outputs get one
 * group per output (ty = the group), many short reductions get one item per
 * output (ty = 1), column-like reductions (a kept axis is the dense one) get tx
 * adjacent outputs per group so that reads coalesce. When outputs are too few
 * to fill the device, or an item's serial run would be long, the reduction is
 * split into chunks whose partial results go to a temporary buffer and are
 * reduced by another pass (planned the same way). */
#include <stdio.h>
#include <string.h>

#include "plan.h"

/* elements per item below which a reduction is not worth more items */
#define RED_SER 8
/* longest serial run per item before the reduction is split into chunks (fp32
 * accuracy: the serial part of the sum stays short, the rest is a tree) */
#define RED_MAXSER 256
/* serial run per item above which idle compute units justify a chunked pass */
#define RED_SPLIT_MIN 64
/* outputs per group along a dense kept axis: a 128-byte row */
#define RED_VX 32

static const char *const red_names[AG_REDUCE_COUNT] = {
    [AG_REDUCE_SUM] = "sum", [AG_REDUCE_MEAN] = "mean", [AG_REDUCE_MAX] = "max",
    [AG_REDUCE_MIN] = "min", [AG_REDUCE_ARGMAX] = "argmax", [AG_REDUCE_ARGMIN] = "argmin",
};
/* the op as messages name it (formatting it cost a tenth of a small sum) */
static const char *const red_what[AG_REDUCE_COUNT] = {
    [AG_REDUCE_SUM] = "reduce sum", [AG_REDUCE_MEAN] = "reduce mean", [AG_REDUCE_MAX] = "reduce max",
    [AG_REDUCE_MIN] = "reduce min", [AG_REDUCE_ARGMAX] = "reduce argmax",
    [AG_REDUCE_ARGMIN] = "reduce argmin",
};

static int64_t iabs64(int64_t v) { return v < 0 ? -v : v; }

static int64_t pow2_ceil(int64_t n)
{
    int64_t p = 1;
    while (p < n) p *= 2;
    return p;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

static ag_status shape_error(const char *backend, const char *op, const ag_view *y,
                             const ag_view *x, const char *why)
{
    char a[160], b[160];
    ag_view_shape_str(x, a, sizeof a);
    ag_view_shape_str(y, b, sizeof b);
    return ag_set_error(AG_ERR_SHAPE, "%s reduce %s: %s (x %s, y %s)", backend, op, why, a, b);
}

static ag_status too_large(const char *backend, const char *op)
{
    /* the API's own word for its device programs */
    const char *code = strcmp(backend, "opencl") == 0   ? "OpenCL kernels"
                       : strcmp(backend, "vulkan") == 0 ? "Vulkan shaders"
                                                        : "kernels";
    return ag_set_error(AG_ERR_UNSUPPORTED,
                        "%s reduce %s: 2^31 elements or more; the %s index with 32-bit integers",
                        backend, op, code);
}

const char *ag_reduce_name(ag_reduce_op op)
{
    return (unsigned)op < AG_REDUCE_COUNT ? red_names[op] : NULL;
}

static ag_status red_split(const char *backend, ag_reduce_op op, const ag_view *y,
                           const ag_view *x, ag_reduce_axes *ax)
{
    const char *name = red_names[op];
    if (y->ndim != x->ndim)
        return shape_error(backend, name, y, x, "y must have x's number of axes");
    /* from the largest x stride to the smallest (stable), so the innermost
     * axis of each space is its densest */
    int order[AG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
        int q = d;
        while (q > 0 && iabs64(x->stride[order[q - 1]]) < iabs64(x->stride[d])) {
            order[q] = order[q - 1];
            q--;
        }
        order[q] = d;
    }
    int nk = 0, nr = 0, naxes = 0;
    ax->nout = 1;
    ax->nred = 1;
    for (int q = 0; q < x->ndim; q++) {
        const int d = order[q];
        const int64_t n = x->shape[d];
        if (y->shape[d] == n) {
            if (n == 1) continue;
            ax->nout *= n;
            if (nk > 0 && ax->kxs[nk - 1] == x->stride[d] * n &&
                ax->kys[nk - 1] == y->stride[d] * n) {
                ax->kshape[nk - 1] *= n;
                ax->kxs[nk - 1] = x->stride[d];
                ax->kys[nk - 1] = y->stride[d];
            } else {
                ax->kshape[nk] = n;
                ax->kxs[nk] = x->stride[d];
                ax->kys[nk] = y->stride[d];
                nk++;
            }
        } else if (y->shape[d] == 1) {
            naxes++;
            ax->nred *= n;
            if (nr > 0 && ax->rxs[nr - 1] == x->stride[d] * n) {
                ax->rshape[nr - 1] *= n;
                ax->rxs[nr - 1] = x->stride[d];
            } else {
                ax->rshape[nr] = n;
                ax->rxs[nr] = x->stride[d];
                nr++;
            }
        } else {
            return shape_error(backend, name, y, x, "each y axis must equal x's or be 1");
        }
    }
    /* an axis of size 1 is reduced trivially, so argmax over one gives zeros */
    if (ag_reduce_is_arg(op) && naxes > 1)
        return ag_set_error(AG_ERR_ARG, "%s reduce %s: reduces %d axes, expected one", backend,
                            name, naxes);
    if (nr == 0) {
        ax->rshape[0] = 1;
        ax->rxs[0] = 0;
        nr = 1;
    }
    ax->nk = nk;
    ax->nr = nr;
    ax->vertical = nk > 0 && iabs64(ax->kxs[nk - 1]) < iabs64(ax->rxs[nr - 1]);
    return AG_OK;
}

ag_status ag_reduce_check(const char *backend, ag_reduce_op op, const ag_view *y,
                          const ag_view *x, ag_reduce_axes *ax)
{
    if ((unsigned)op >= AG_REDUCE_COUNT)
        return ag_set_error(AG_ERR_ARG, "%s reduce: unknown op %d", backend, (int)op);
    const char *name = red_names[op], *what = red_what[op];
    ag_status s = ag_check_view(backend, what, "x", x, AG_F32);
    if (s == AG_OK) s = ag_check_view(backend, what, "y", y, ag_reduce_is_arg(op) ? AG_I32 : AG_F32);
    if (s == AG_OK) s = red_split(backend, op, y, x, ax);
    if (s != AG_OK || ax->nout == 0) return s;
    if (ax->nred == 0 && op != AG_REDUCE_SUM && op != AG_REDUCE_MEAN)
        return ag_set_error(AG_ERR_ARG, "%s reduce %s: cannot reduce an empty axis", backend,
                            name);
    return AG_OK;
}

/* Checks y = reduce(x) and plans its first pass: the split, laid out for the
 * kernels in 32-bit indices. */
static ag_status reduce_plan(const char *backend, ag_reduce_op op, const ag_view *y,
                             const ag_view *x, ag_reduce_pass *p)
{
    ag_reduce_axes ax;
    ag_status s = ag_reduce_check(backend, op, y, x, &ax);
    if (s != AG_OK) return s;
    const char *name = red_names[op];
    if (ax.nout > INT32_MAX || ax.nred > INT32_MAX || ax.nout * ax.nred > INT32_MAX)
        return too_large(backend, name);
    int32_t xoff, yoff;
    if ((s = ag_offset32(backend, name, x, &xoff)) != AG_OK ||
        (s = ag_offset32(backend, name, y, &yoff)) != AG_OK)
        return s;
    *p = (ag_reduce_pass){.nout = ax.nout, .nred = ax.nred, .count = (float)ax.nred,
                          .vertical = ax.vertical};
    p->ks.nd = ax.nk;
    p->ks.numel = (int32_t)ax.nout;
    for (int d = 0; d < ax.nk; d++) {
        p->ks.n[d] = (int32_t)ax.kshape[d];
        p->kx.s[d] = (int32_t)ax.kxs[d];
        p->ky.s[d] = (int32_t)ax.kys[d];
    }
    p->kx.off = xoff;
    p->ky.off = yoff;
    p->rs.nd = ax.nr;
    p->rs.numel = (int32_t)ax.nred;
    for (int d = 0; d < ax.nr; d++) {
        p->rs.n[d] = (int32_t)ax.rshape[d];
        p->rx.s[d] = (int32_t)ax.rxs[d];
    }
    return AG_OK;
}

/* How pass p runs on a device with work groups of at most wg items (a power
 * of two), kept busy by target_groups groups. */
static ag_reduce_launch launch_plan(const ag_reduce_pass *p, int64_t wg, int64_t target_groups)
{
    const int64_t nout = p->nout, nred = p->nred, target_items = target_groups * wg;
    /* items per output: enough that each folds about RED_SER elements, more
     * while the device would otherwise idle, never more than the elements */
    int64_t ty_max = min64(wg, pow2_ceil(max64(nred, 1)));
    if (p->vertical) /* leave room for a row of adjacent outputs */
        ty_max = min64(ty_max, wg / min64(min64(wg, RED_VX), pow2_ceil(p->ks.n[p->ks.nd - 1])));
    int64_t ty = min64(ty_max, pow2_ceil(cdiv(max64(nred, 1), RED_SER)));
    while (ty < ty_max && nout * ty < target_items) ty *= 2;
    int64_t tx = min64(wg / ty, pow2_ceil(nout));

    int64_t ngo = cdiv(nout, tx);
    int64_t run = cdiv(nred, ty); /* serial elements per item in one pass */
    int64_t nch = max64(1, cdiv(run, RED_MAXSER));
    if (ngo < target_groups && run > RED_SPLIT_MIN)
        nch = max64(nch, min64(cdiv(target_groups, ngo), run / (RED_SPLIT_MIN / 2)));
    /* partial results are indexed chunk * nout + output in int32 */
    if (nch > 1 && nch * nout > INT32_MAX) nch = max64(1, INT32_MAX / nout);
    int64_t chunk = nch > 1 ? cdiv(nred, nch) : nred;
    if (nch > 1) nch = cdiv(nred, chunk);
    return (ag_reduce_launch){.tx = tx, .ty = ty, .chunk = chunk, .nch = nch,
                              .local = tx * ty, .groups = ngo * nch};
}

/* The pass that reduces p's nch partial results. */
static ag_reduce_pass partials_pass(ag_reduce_op op, const ag_reduce_pass *p, int64_t nch)
{
    /* the partials as x [nch, kept...], dense, reduced over the chunk axis */
    ag_reduce_pass q = *p;
    int32_t stride = 1;
    for (int d = q.ks.nd - 1; d >= 0; d--) {
        q.kx.s[d] = stride;
        stride *= q.ks.n[d];
    }
    q.kx.off = 0;
    q.rs = (ag_shape32){.nd = 1, .numel = (int32_t)nch};
    q.rs.n[0] = (int32_t)nch;
    q.rx = (ag_strides32){0};
    q.rx.s[0] = (int32_t)p->nout;
    q.nred = nch;
    q.has_idx = ag_reduce_is_arg(op);
    q.vertical = q.ks.nd > 0;
    return q;
}

/* Runs pass p (and the passes its partial results need). */
static ag_status run_pass(const ag_reduce_device *dev, ag_reduce_op op, const ag_reduce_pass *p,
                          const ag_buffer *x, const ag_buffer *xi, const ag_buffer *yv,
                          const ag_buffer *yi)
{
    const bool arg = ag_reduce_is_arg(op);
    const ag_reduce_launch l = launch_plan(p, dev->wg, dev->target_groups);
    if (l.nch == 1) return dev->launch(dev->ctx, op, p, &l, true, x, xi, yv, yi);

    size_t nparts = (size_t)(l.nch * p->nout);
    ag_buffer *tv = dev->alloc(dev->ctx, nparts * sizeof(float));
    ag_buffer *ti = tv && arg ? dev->alloc(dev->ctx, nparts * sizeof(int32_t)) : NULL;
    if (!tv || (arg && !ti)) {
        dev->release(dev->ctx, tv);
        return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    }
    ag_status s = dev->launch(dev->ctx, op, p, &l, false, x, xi, tv, ti);
    if (s == AG_OK) {
        ag_reduce_pass q = partials_pass(op, p, l.nch);
        s = run_pass(dev, op, &q, tv, ti, yv, yi);
    }
    /* both backends may release these while launched passes still read them
     * (OpenCL keeps them until its queued kernels finish, Vulkan orders every
     * dispatch after the work before it) */
    dev->release(dev->ctx, tv);
    dev->release(dev->ctx, ti);
    return s;
}

ag_status ag_reduce_run(const char *backend, const ag_reduce_device *dev, ag_reduce_op op,
                        const ag_view *y, const ag_view *x)
{
    ag_reduce_pass p;
    ag_status s = reduce_plan(backend, op, y, x, &p);
    if (s != AG_OK || p.nout == 0) return s;
    const bool arg = ag_reduce_is_arg(op);
    return run_pass(dev, op, &p, x->buf, NULL, arg ? NULL : y->buf, arg ? y->buf : NULL);
}
