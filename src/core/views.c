/* View ops: new layouts over the same storage, each differentiable. */
#include <string.h>

#include "core.h"

/* ---- backward rules --------------------------------------------------- */

static ag_status reshape_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    gx[0] = ag_reshape(gy, n->in[0]->ndim, n->in[0]->shape);
    return gx[0] ? AG_OK : ag_last_status();
}

static ag_status permute_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    int inv[AG_MAX_DIMS];
    for (int d = 0; d < gy->ndim; d++) inv[n->p.permute.perm[d]] = d;
    gx[0] = ag_permute(gy, inv);
    return gx[0] ? AG_OK : ag_last_status();
}

static ag_status slice_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_tensor *x = n->in[0];
    ag_tensor *g = ag_zeros_like(x);
    if (!g) return ag_last_status();
    int axis = n->p.slice.axis;
    int64_t start = n->p.slice.start, step = n->p.slice.step;
    int64_t stride[AG_MAX_DIMS];
    memcpy(stride, g->stride, sizeof stride);
    stride[axis] *= step;
    ag_tensor *dst = ag__alias(g, gy->ndim, gy->shape, stride, start * g->stride[axis]);
    if (!dst) return ag_last_status();
    ag_view vd = ag__view(dst), vs = ag__view(gy);
    ag_status s = AG_LAUNCH(ag__dev(g), copy, &vd, &vs);
    gx[0] = g;
    return s;
}

static ag_status expand_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    gx[0] = ag__reduce_to(gy, n->in[0]->ndim, n->in[0]->shape);
    return gx[0] ? AG_OK : ag_last_status();
}

static ag_status identity_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    (void)n;
    gx[0] = gy;
    return AG_OK;
}

/* A view of t with history: the common tail of every view op. */
static ag_tensor *make_view(ag_tensor *t, const char *name, ag_backward_fn bwd, int ndim,
                            const int64_t *shape, const int64_t *stride, int64_t offset,
                            ag_node **node)
{
    ag_tensor *y = ag__alias(t, ndim, shape, stride, offset);
    if (!y) return NULL;
    ag_node *n = NULL;
    if (ag__record(y, name, bwd, 1, &t, &n) != AG_OK) return NULL;
    if (node) *node = n;
    return y;
}

/* ---- ops ---------------------------------------------------------------- */

/* Strides that show t's elements, in row-major order, with shape sh (same count):
 * possible when every run of t's axes that sh's axes split or merge is laid out
 * as one block. False when only a copy can. */
static bool view_strides(const ag_tensor *t, int ndim, const int64_t *sh, int64_t *out)
{
    if (ag_numel(t) <= 1) { /* no layout to keep */
        for (int64_t d = ndim - 1, s = 1; d >= 0; d--) {
            out[d] = s;
            s *= sh[d] ? sh[d] : 1;
        }
        return true;
    }
    int v = ndim - 1;
    int64_t base = t->stride[t->ndim - 1], run = 1, vrun = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        run *= t->shape[d];
        /* a run ends where the next outer axis does not continue it */
        if (d > 0 && (t->shape[d - 1] == 1 || t->stride[d - 1] == run * base)) continue;
        while (v >= 0 && (vrun < run || sh[v] == 1)) {
            out[v] = vrun * base;
            vrun *= sh[v--];
        }
        if (vrun != run) return false;
        if (d > 0) {
            base = t->stride[d - 1];
            run = vrun = 1;
        }
    }
    return v < 0;
}

ag_tensor *ag_reshape(ag_tensor *t, int ndim, const int64_t *shape)
{
    if (!ag__check("reshape", t, AG_ANY)) return NULL;
    if (ndim < 0 || ndim > AG_MAX_DIMS || (ndim && !shape))
        return ag_set_error(AG_ERR_ARG, "reshape: bad ndim %d", ndim), NULL;
    int64_t sh[AG_MAX_DIMS], known = 1, n = ag_numel(t);
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        sh[d] = shape[d];
        if (sh[d] == -1 && infer < 0) infer = d;
        else if (sh[d] < 0)
            return ag_set_error(AG_ERR_SHAPE, "reshape: bad size %lld", (long long)sh[d]), NULL;
        else if (!ag__mul_ok(&known, sh[d])) goto mismatch;
    }
    if (infer >= 0) {
        if (known == 0 || n % known)
            goto mismatch;
        sh[infer] = n / known;
    }
    if (!ag__shape_fits(ndim, sh) || ag__numel_shape(ndim, sh) != n) goto mismatch;

    ag_scope_begin();
    int64_t stride[AG_MAX_DIMS];
    /* a view when t's layout allows one (a slice of heads, say), else a copy */
    ag_tensor *src = view_strides(t, ndim, sh, stride) ? t : ag__contiguous(t);
    ag_tensor *y = NULL;
    if (src) {
        if (src != t)
            for (int64_t d = ndim - 1, s = 1; d >= 0; d--) {
                stride[d] = s;
                s *= sh[d] ? sh[d] : 1;
            }
        y = ag__alias(src, ndim, sh, stride, src->offset);
        ag_node *node = NULL;
        if (y && ag__record(y, "reshape", reshape_bwd, 1, &t, &node) != AG_OK) y = NULL;
    }
    return ag__done(y);

mismatch:;
    char a[160], b[160];
    ag__shape_fmt(t->ndim, t->shape, a, sizeof a);
    ag__shape_fmt(ndim, shape, b, sizeof b);
    ag_set_error(AG_ERR_SHAPE, "reshape: cannot view %s (%lld elements) as %s", a, (long long)n, b);
    return NULL;
}

ag_tensor *ag_permute(ag_tensor *t, const int *perm)
{
    if (!ag__check("permute", t, AG_ANY)) return NULL;
    if (!perm && t->ndim) return ag_set_error(AG_ERR_ARG, "permute: perm is NULL"), NULL;
    int64_t shape[AG_MAX_DIMS], stride[AG_MAX_DIMS];
    bool seen[AG_MAX_DIMS] = {0};
    for (int d = 0; d < t->ndim; d++) {
        int p = perm[d];
        if (p < 0) p += t->ndim;
        if (p < 0 || p >= t->ndim || seen[p])
            return ag_set_error(AG_ERR_ARG, "permute: not a permutation of %d axes", t->ndim), NULL;
        seen[p] = true;
        shape[d] = t->shape[p];
        stride[d] = t->stride[p];
    }
    ag_scope_begin();
    ag_node *n = NULL;
    ag_tensor *y = make_view(t, "permute", permute_bwd, t->ndim, shape, stride, t->offset, &n);
    if (y && n)
        for (int d = 0; d < t->ndim; d++) n->p.permute.perm[d] = perm[d] < 0 ? perm[d] + t->ndim : perm[d];
    return ag__done(y);
}

ag_tensor *ag_transpose(ag_tensor *t, int d0, int d1)
{
    if (!ag__check("transpose", t, AG_ANY)) return NULL;
    int a = ag__axis("transpose", d0, t->ndim), b = ag__axis("transpose", d1, t->ndim);
    if (a < 0 || b < 0) return NULL;
    if (t->ndim == 0) return ag__own(ag_retain(t));
    int perm[AG_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) perm[d] = d;
    perm[a] = b;
    perm[b] = a;
    return ag_permute(t, perm);
}

ag_tensor *ag_slice(ag_tensor *t, int axis, int64_t start, int64_t end, int64_t step)
{
    if (!ag__check("slice", t, AG_ANY)) return NULL;
    if (t->ndim == 0) return ag_set_error(AG_ERR_ARG, "slice: 0-dim tensor"), NULL;
    int a = ag__axis("slice", axis, t->ndim);
    if (a < 0) return NULL;
    if (step <= 0) return ag_set_error(AG_ERR_ARG, "slice: step %lld must be > 0", (long long)step), NULL;
    int64_t n = t->shape[a];
    /* Python's rules: negative counts from the end, out of range clamps. */
    if (start < 0) start += n;
    if (end < 0) end += n;
    start = start < 0 ? 0 : start > n ? n : start;
    end = end < start ? start : end > n ? n : end;
    int64_t shape[AG_MAX_DIMS], stride[AG_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(stride, t->stride, sizeof stride);
    shape[a] = end > start ? (end - start - 1) / step + 1 : 0;
    /* With at most one element the step is irrelevant, and a huge one would
     * overflow the stride (here and in the backward's scatter). */
    if (shape[a] <= 1) step = 1;
    stride[a] *= step;
    ag_scope_begin();
    ag_node *node = NULL;
    ag_tensor *y = make_view(t, "slice", slice_bwd, t->ndim, shape, stride,
                             t->offset + start * t->stride[a], &node);
    if (y && node) {
        node->p.slice.axis = a;
        node->p.slice.start = start;
        node->p.slice.step = step;
    }
    return ag__done(y);
}

ag_tensor *ag_expand(ag_tensor *t, int ndim, const int64_t *shape)
{
    if (!ag__check("expand", t, AG_ANY)) return NULL;
    if (ndim < t->ndim || ndim > AG_MAX_DIMS || (ndim && !shape))
        return ag_set_error(AG_ERR_ARG, "expand: cannot expand %d dims to %d", t->ndim, ndim), NULL;
    int64_t sh[AG_MAX_DIMS], stride[AG_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
        int s = d - lead;
        int64_t want = shape[d];
        if (s >= 0 && want == -1) want = t->shape[s];
        if (want < 0) goto bad;
        if (s >= 0 && t->shape[s] != want && t->shape[s] != 1) goto bad;
        sh[d] = want;
        stride[d] = (s < 0 || t->shape[s] != want) ? 0 : t->stride[s];
    }
    if (!ag__shape_fits(ndim, sh)) goto bad;
    ag_scope_begin();
    return ag__done(make_view(t, "expand", expand_bwd, ndim, sh, stride, t->offset, NULL));
bad:;
    char a[160], b[160];
    ag__shape_fmt(t->ndim, t->shape, a, sizeof a);
    ag__shape_fmt(ndim, shape, b, sizeof b);
    ag_set_error(AG_ERR_SHAPE, "expand: cannot expand %s to %s", a, b);
    return NULL;
}

/* squeeze and unsqueeze keep element order, so reshape's backward serves them. */
static ag_tensor *restride(ag_tensor *t, const char *name, int ndim, const int64_t *shape,
                           const int64_t *stride)
{
    ag_scope_begin();
    return ag__done(make_view(t, name, reshape_bwd, ndim, shape, stride, t->offset, NULL));
}

ag_tensor *ag_squeeze(ag_tensor *t, int axis)
{
    if (!ag__check("squeeze", t, AG_ANY)) return NULL;
    if (t->ndim == 0) return ag__own(ag_retain(t));
    int a = ag__axis("squeeze", axis, t->ndim);
    if (a < 0) return NULL;
    if (t->shape[a] != 1) return ag__own(ag_retain(t)); /* PyTorch: a no-op */
    int64_t shape[AG_MAX_DIMS], stride[AG_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < t->ndim; d++)
        if (d != a) {
            shape[n] = t->shape[d];
            stride[n++] = t->stride[d];
        }
    return restride(t, "squeeze", n, shape, stride);
}

ag_tensor *ag_unsqueeze(ag_tensor *t, int axis)
{
    if (!ag__check("unsqueeze", t, AG_ANY)) return NULL;
    if (t->ndim >= AG_MAX_DIMS)
        return ag_set_error(AG_ERR_SHAPE, "unsqueeze: already %d dims", AG_MAX_DIMS), NULL;
    int a = ag__axis("unsqueeze", axis, t->ndim + 1);
    if (a < 0) return NULL;
    int64_t shape[AG_MAX_DIMS], stride[AG_MAX_DIMS];
    for (int d = 0, s = 0; d <= t->ndim; d++) {
        if (d == a) {
            shape[d] = 1;
            stride[d] = a < t->ndim ? t->shape[a] * t->stride[a] : 1;
        } else {
            shape[d] = t->shape[s];
            stride[d] = t->stride[s++];
        }
    }
    return restride(t, "unsqueeze", t->ndim + 1, shape, stride);
}

ag_tensor *ag_flatten(ag_tensor *t, int start_axis, int end_axis)
{
    if (!ag__check("flatten", t, AG_ANY)) return NULL;
    if (t->ndim == 0) {
        int64_t one = 1;
        return ag_reshape(t, 1, &one);
    }
    int a = ag__axis("flatten", start_axis, t->ndim), b = ag__axis("flatten", end_axis, t->ndim);
    if (a < 0 || b < 0) return NULL;
    if (a > b) return ag_set_error(AG_ERR_ARG, "flatten: start axis after end axis"), NULL;
    int64_t shape[AG_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < a; d++) shape[n++] = t->shape[d];
    shape[n] = 1;
    for (int d = a; d <= b; d++) shape[n] *= t->shape[d];
    n++;
    for (int d = b + 1; d < t->ndim; d++) shape[n++] = t->shape[d];
    return ag_reshape(t, n, shape);
}

static ag_tensor *copy_op(ag_tensor *t, const char *name)
{
    ag_scope_begin();
    ag_tensor *y = ag__empty_like(t);
    if (y) {
        ag_view vy = ag__view(y), vx = ag__view(t);
        ag_node *n;
        if (AG_LAUNCH(ag__dev(t), copy, &vy, &vx) != AG_OK ||
            ag__record(y, name, identity_bwd, 1, &t, &n) != AG_OK)
            y = NULL;
    }
    return ag__done(y);
}

ag_tensor *ag_contiguous(ag_tensor *t)
{
    if (!ag__check("contiguous", t, AG_ANY)) return NULL;
    if (ag__is_contiguous(t)) return ag__own(ag_retain(t));
    return copy_op(t, "contiguous");
}

ag_tensor *ag_clone(ag_tensor *t)
{
    if (!ag__check("clone", t, AG_ANY)) return NULL;
    return copy_op(t, "clone");
}

ag_tensor *ag_detach(ag_tensor *t)
{
    if (!ag__check("detach", t, AG_ANY)) return NULL;
    return ag__alias(t, t->ndim, t->shape, t->stride, t->offset);
}
