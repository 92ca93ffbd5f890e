/* Indexing and data-movement ops: dropout, embedding, concat/stack, gather and
 * scatter_add. Gather and scatter_add are each other's gradient. */
#include <stdio.h>
#include <stdlib.h>

#include "core.h"

static void shape_str(const ag_tensor *t, char *buf, size_t size)
{
    ag__shape_fmt(t->ndim, t->shape, buf, size);
}

/* ---- dropout ------------------------------------------------------------------- */

static ag_status dropout_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    gx[0] = ag_mul(gy, n->saved[0]);
    return gx[0] ? AG_OK : ag_last_status();
}

ag_tensor *ag_dropout(ag_tensor *x, float p, bool training)
{
    if (!ag__check("dropout", x, AG_F32)) return NULL;
    if (!(p >= 0.0f && p <= 1.0f))
        return ag_set_error(AG_ERR_ARG, "dropout: probability %g is not in [0, 1]", p), NULL;
    if (!training || p == 0.0f) return ag__own(ag_retain(x));
    /* Everything dropped: the kernel's 1 / (1 - p) would be infinite. */
    if (p == 1.0f) return ag_mul_scalar(x, 0.0f);
    ag_scope_begin();
    ag_tensor *xc = ag__contiguous(x);
    ag_tensor *y = xc ? ag__empty_like(xc) : NULL, *mask = y ? ag__empty_like(xc) : NULL;
    if (mask) {
        ag_rand_args r = {.dist = AG_RAND_UNIFORM, .a = 0.0f, .b = 1.0f};
        ag__rng_next(&r.seed, &r.stream);
        ag_view vy = ag__view(y), vm = ag__view(mask), vx = ag__view(xc);
        ag_node *n = NULL;
        if (AG_LAUNCH(ag__dev(x), dropout, &r, p, &vy, &vm, &vx) != AG_OK ||
            ag__record(y, "dropout", dropout_bwd, 1, &x, &n) != AG_OK)
            y = NULL;
        if (n && ag__save(n, 0, mask) != AG_OK) y = NULL;
    } else {
        y = NULL;
    }
    return ag__done(y);
}

/* ---- embedding ------------------------------------------------------------------- */

/* The contiguous indices t repeated along a new last axis of size d (stride 0), so
 * that gathering rows along axis 0 of a [V, D] table picks whole rows. */
static ag_view rows_index(const ag_tensor *t, int64_t m, int64_t d)
{
    ag_view v = ag__view(t);
    v.ndim = 2;
    v.shape[0] = m;
    v.shape[1] = d;
    v.stride[0] = 1;
    v.stride[1] = 0;
    return v;
}

/* A contiguous tensor of m * d elements seen as [m, d]. */
static ag_view matrix_view(const ag_tensor *t, int64_t m, int64_t d)
{
    ag_view v = ag__view(t);
    v.ndim = 2;
    v.shape[0] = m;
    v.shape[1] = d;
    v.stride[0] = d;
    v.stride[1] = 1;
    return v;
}

/* saved[0] = contiguous indices; i[0], i[1] = rows looked up, D. */
static ag_status embedding_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    int64_t m = n->p.embedding.rows, d = n->p.embedding.dim;
    ag_tensor *g = ag__contiguous(gy), *gw = g ? ag_zeros_like(n->in[0]) : NULL;
    if (!gw) return ag_last_status();
    ag_view vw = ag__view(gw), vi = rows_index(n->saved[0], m, d), vg = matrix_view(g, m, d);
    gx[0] = gw;
    return AG_LAUNCH(ag__dev(gw), scatter_add, 0, &vw, &vi, &vg);
}

ag_tensor *ag_embedding(ag_tensor *indices, ag_tensor *weight)
{
    if (!ag__check("embedding", indices, AG_I32) || !ag__check("embedding", weight, AG_F32))
        return NULL;
    if (!ag__same_device("embedding", indices, weight)) return NULL;
    char si[160], sw[160];
    shape_str(indices, si, sizeof si);
    shape_str(weight, sw, sizeof sw);
    if (weight->ndim != 2)
        return ag_set_error(AG_ERR_SHAPE, "embedding: weight must be [V, D], got %s", sw), NULL;
    if (indices->ndim + 1 > AG_MAX_DIMS)
        return ag_set_error(AG_ERR_SHAPE, "embedding: indices %s leave no room for the "
                                          "embedding axis", si), NULL;
    int64_t m = ag_numel(indices), d = weight->shape[1], shape[AG_MAX_DIMS];
    for (int k = 0; k < indices->ndim; k++) shape[k] = indices->shape[k];
    shape[indices->ndim] = d;

    ag_scope_begin();
    ag_tensor *ic = ag__contiguous(indices);
    ag_tensor *y = ic ? ag__empty_on(ag__dev(weight), AG_F32, indices->ndim + 1, shape) : NULL;
    if (y) {
        ag_view vy = matrix_view(y, m, d), vw = ag__view(weight), vi = rows_index(ic, m, d);
        ag_node *n = NULL;
        if (AG_LAUNCH(ag__dev(weight), gather, 0, &vy, &vw, &vi) != AG_OK ||
            ag__record(y, "embedding", embedding_bwd, 1, &weight, &n) != AG_OK)
            y = NULL;
        if (n) {
            n->p.embedding.rows = m;
            n->p.embedding.dim = d;
            if (ag__save(n, 0, ic) != AG_OK) y = NULL;
        }
    }
    return ag__done(y);
}

/* ---- concat and stack -------------------------------------------------------------- */

/* i[0] = axis; each input's slice of gy starts where the previous one ended. */
static ag_status concat_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    int axis = n->p.axis.axis;
    int64_t start = 0;
    for (int k = 0; k < n->nin; k++) {
        ag_tensor *in = n->in[k];
        int64_t len = in->shape[axis];
        if (in->requires_grad && !(gx[k] = ag_slice(gy, axis, start, start + len, 1)))
            return ag_last_status();
        start += len;
    }
    return AG_OK;
}

static bool concat_check(const char *op, int n, ag_tensor *const *ts)
{
    if (n < 1 || !ts)
        return ag_set_error(AG_ERR_ARG, "%s: needs at least one tensor (got %d)", op, n), false;
    for (int k = 0; k < n; k++)
        if (!ag__check(op, ts[k], AG_ANY)) return false;
    for (int k = 1; k < n; k++) {
        if (ts[k]->dtype != ts[0]->dtype)
            return ag_set_error(AG_ERR_DTYPE, "%s: tensor %d is %s, tensor 0 is %s", op, k,
                                ag_dtype_name(ts[k]->dtype), ag_dtype_name(ts[0]->dtype)), false;
        if (!ag__same_device(op, ts[0], ts[k])) return false;
    }
    return true;
}

ag_tensor *ag_concat(int n, ag_tensor *const *ts, int axis)
{
    if (!concat_check("concat", n, ts)) return NULL;
    const ag_tensor *t0 = ts[0];
    if (t0->ndim == 0)
        return ag_set_error(AG_ERR_SHAPE, "concat: 0-dim tensors cannot be concatenated (use "
                                          "stack)"), NULL;
    int a = ag__axis("concat", axis, t0->ndim);
    if (a < 0) return NULL;
    int64_t shape[AG_MAX_DIMS];
    for (int d = 0; d < t0->ndim; d++) shape[d] = t0->shape[d];
    shape[a] = 0;
    for (int k = 0; k < n; k++) {
        bool ok = ts[k]->ndim == t0->ndim;
        for (int d = 0; ok && d < t0->ndim; d++) ok = d == a || ts[k]->shape[d] == t0->shape[d];
        if (!ok) {
            char s0[160], sk[160];
            shape_str(t0, s0, sizeof s0);
            shape_str(ts[k], sk, sizeof sk);
            return ag_set_error(AG_ERR_SHAPE, "concat: tensor %d has shape %s, tensor 0 has %s: "
                                              "they must match except on axis %d", k, sk, s0,
                                axis), NULL;
        }
        /* expanded inputs can be huge: the sum must stay a valid size */
        if (ts[k]->shape[a] > AG_MAX_NUMEL - shape[a])
            return ag_set_error(AG_ERR_SHAPE, "concat: the result is too large on axis %d",
                                axis), NULL;
        shape[a] += ts[k]->shape[a];
    }

    ag_scope_begin();
    ag_tensor *y = ag__empty_on(ag__dev(t0), t0->dtype, t0->ndim, shape);
    int64_t start = 0;
    for (int k = 0; y && k < n; k++) {
        int64_t part[AG_MAX_DIMS];
        for (int d = 0; d < t0->ndim; d++) part[d] = d == a ? ts[k]->shape[a] : shape[d];
        ag_tensor *dst = ag__alias(y, y->ndim, part, y->stride, y->offset + start * y->stride[a]);
        ag_view vd, vs = ag__view(ts[k]);
        if (dst) vd = ag__view(dst);
        if (!dst || AG_LAUNCH(ag__dev(y), copy, &vd, &vs) != AG_OK) y = NULL;
        start += ts[k]->shape[a];
    }
    ag_node *node = NULL;
    if (y && ag__record(y, "concat", concat_bwd, n, ts, &node) != AG_OK) y = NULL;
    if (node) node->p.axis.axis = a;
    return ag__done(y);
}

ag_tensor *ag_stack(int n, ag_tensor *const *ts, int axis)
{
    if (!concat_check("stack", n, ts)) return NULL;
    for (int k = 1; k < n; k++)
        if (!ag__same_shape(ts[k], ts[0])) {
            char s0[160], sk[160];
            shape_str(ts[0], s0, sizeof s0);
            shape_str(ts[k], sk, sizeof sk);
            return ag_set_error(AG_ERR_SHAPE, "stack: tensor %d has shape %s, tensor 0 has %s: "
                                              "all must be equal", k, sk, s0), NULL;
        }
    if (ts[0]->ndim >= AG_MAX_DIMS)
        return ag_set_error(AG_ERR_SHAPE, "stack: tensors already have %d dims", AG_MAX_DIMS),
               NULL;
    int a = ag__axis("stack", axis, ts[0]->ndim + 1);
    if (a < 0) return NULL;
    ag_tensor **parts = malloc((size_t)n * sizeof *parts);
    if (!parts) return ag_set_error(AG_ERR_OOM, "stack: out of host memory"), NULL;
    ag_scope_begin();
    ag_tensor *y = NULL;
    int k = 0;
    for (; k < n; k++)
        if (!(parts[k] = ag_unsqueeze(ts[k], a))) break;
    if (k == n) y = ag_concat(n, parts, a);
    free(parts);
    return ag__done(y);
}

/* ---- gather and scatter_add -------------------------------------------------------- */

/* index int32 with x's ndim, index.size(d) <= x.size(d) off the axis; gives the axis. */
static int index_check(const char *op, const ag_tensor *x, int axis, const ag_tensor *index)
{
    if (!ag__check(op, index, AG_I32) || !ag__same_device(op, x, index)) return -1;
    int a = ag__axis(op, axis, x->ndim);
    if (a < 0) return -1;
    bool ok = index->ndim == x->ndim;
    for (int d = 0; ok && d < x->ndim; d++) ok = d == a || index->shape[d] <= x->shape[d];
    if (ok) return a;
    char sx[160], si[160];
    shape_str(x, sx, sizeof sx);
    shape_str(index, si, sizeof si);
    ag_set_error(AG_ERR_SHAPE, "%s: index %s must have the ndim of input %s and be no larger "
                               "off axis %d", op, si, sx, axis);
    return -1;
}

/* saved[0] = index; i[0] = axis. */
static ag_status gather_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_tensor *g = ag_zeros_like(n->in[0]);
    if (!g) return ag_last_status();
    ag_view vg = ag__view(g), vi = ag__view(n->saved[0]), vs = ag__view(gy);
    gx[0] = g;
    return AG_LAUNCH(ag__dev(g), scatter_add, n->p.axis.axis, &vg, &vi, &vs);
}

ag_tensor *ag_gather(ag_tensor *x, int axis, ag_tensor *index)
{
    if (!ag__check("gather", x, AG_ANY)) return NULL;
    if (x->dtype != AG_F32 && x->dtype != AG_I32)
        return ag_set_error(AG_ERR_DTYPE, "gather: expected f32 or i32 input, got %s",
                            ag_dtype_name(x->dtype)), NULL;
    int a = index_check("gather", x, axis, index);
    if (a < 0) return NULL;
    ag_scope_begin();
    ag_tensor *y = ag__empty_on(ag__dev(x), x->dtype, index->ndim, index->shape);
    if (y) {
        ag_view vy = ag__view(y), vx = ag__view(x), vi = ag__view(index);
        ag_node *n = NULL;
        if (AG_LAUNCH(ag__dev(x), gather, a, &vy, &vx, &vi) != AG_OK ||
            ag__record(y, "gather", gather_bwd, 1, &x, &n) != AG_OK)
            y = NULL;
        if (n) {
            n->p.axis.axis = a;
            if (ag__save(n, 0, index) != AG_OK) y = NULL;
        }
    }
    return ag__done(y);
}

/* in = {x, src}; saved[0] = index; i[0] = axis. */
static ag_status scatter_add_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_tensor *src = n->in[1], *index = n->saved[0];
    if (n->in[0]->requires_grad) gx[0] = gy;
    if (!src->requires_grad) return AG_OK;
    /* src positions beyond the index's extent were never added: zero gradient */
    ag_tensor *g = ag__same_shape(index, src) ? ag__empty_like(src) : ag_zeros_like(src);
    ag_tensor *corner = g ? ag__alias(g, index->ndim, index->shape, g->stride, g->offset) : NULL;
    if (!corner) return ag_last_status();
    ag_view vc = ag__view(corner), vg = ag__view(gy), vi = ag__view(index);
    gx[1] = g;
    return AG_LAUNCH(ag__dev(g), gather, n->p.axis.axis, &vc, &vg, &vi);
}

ag_tensor *ag_scatter_add(ag_tensor *x, int axis, ag_tensor *index, ag_tensor *src)
{
    if (!ag__check("scatter_add", x, AG_F32) || !ag__check("scatter_add", src, AG_F32)) return NULL;
    if (!ag__same_device("scatter_add", x, src)) return NULL;
    int a = index_check("scatter_add", x, axis, index);
    if (a < 0) return NULL;
    bool ok = src->ndim == index->ndim;
    for (int d = 0; ok && d < src->ndim; d++) ok = index->shape[d] <= src->shape[d];
    if (!ok) {
        char ss[160], si[160];
        shape_str(src, ss, sizeof ss);
        shape_str(index, si, sizeof si);
        return ag_set_error(AG_ERR_SHAPE, "scatter_add: index %s must have the ndim of src %s "
                                          "and be no larger on any axis", si, ss), NULL;
    }
    ag_scope_begin();
    ag_tensor *y = ag__empty_like(x);
    if (y) {
        ag_view vy = ag__view(y), vx = ag__view(x), vi = ag__view(index), vs = ag__view(src);
        ag_tensor *in[2] = {x, src};
        ag_node *n = NULL;
        if (AG_LAUNCH(ag__dev(x), copy, &vy, &vx) != AG_OK ||
            AG_LAUNCH(ag__dev(x), scatter_add, a, &vy, &vi, &vs) != AG_OK ||
            ag__record(y, "scatter_add", scatter_add_bwd, 2, in, &n) != AG_OK)
            y = NULL;
        if (n) {
            n->p.axis.axis = a;
            if (ag__save(n, 0, index) != AG_OK) y = NULL;
        }
    }
    return ag__done(y);
}
