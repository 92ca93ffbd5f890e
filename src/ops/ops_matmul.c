/* matmul with broadcast batch dimensions, and linear (x W^T + b). Transposed
 * operands reach the GEMM kernel as strides, not copies. */
#include "core.h"

/* A 3-D f32 view, every field written once (a zeroing initialiser of the
 * 152-byte struct cost a small product a tenth of its host time; see ag__view). */
static inline void view3(ag_view *v, ag_buffer *buf, int64_t offset, int64_t s0, int64_t s1,
                         int64_t s2, int64_t t0, int64_t t1, int64_t t2)
{
    v->buf = buf;
    v->offset = offset;
    v->dtype = AG_F32;
    v->ndim = 3;
    for (int d = 0; d < AG_MAX_DIMS; d++) v->shape[d] = v->stride[d] = 0;
    v->shape[0] = s0, v->shape[1] = s1, v->shape[2] = s2;
    v->stride[0] = t0, v->stride[1] = t1, v->stride[2] = t2;
}

/* t (already expanded to [batch..., R, C]) as a 3-D view [B, R, C], or false when
 * its batch axes cannot merge into one stride or neither matrix axis is unit. */
static bool as_3d(const ag_tensor *t, int nb, ag_view *v)
{
    int r = t->ndim - 2, c = t->ndim - 1;
    if (t->stride[r] != 1 && t->stride[c] != 1 && t->shape[r] > 1 && t->shape[c] > 1) return false;
    int64_t batch = 1, bstride = 0;
    for (int d = nb - 1; d >= 0; d--) {
        if (t->shape[d] == 1) continue;
        if (batch == 1) bstride = t->stride[d];
        else if (t->stride[d] != bstride * batch) return false;
        batch *= t->shape[d];
    }
    /* A size-1 axis may carry any stride; give the kernel a unit one. */
    int64_t rs = t->shape[r] == 1 ? (t->stride[c] == 1 ? t->shape[c] : 1) : t->stride[r];
    int64_t cs = t->shape[c] == 1 ? (rs == 1 ? t->shape[r] : 1) : t->stride[c];
    view3(v, t->st->buf, t->offset, batch, t->shape[r], t->shape[c], bstride, rs, cs);
    return true;
}

static ag_tensor *matmul_nd(ag_tensor *a, ag_tensor *b);

static ag_status matmul_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_tensor *a = n->in[0], *b = n->in[1];
    /* each gradient reads the other operand */
    if (a->requires_grad && ag__input_kept(n, 1) &&
        !(gx[0] = ag__reduce_to(matmul_nd(gy, ag_transpose(b, -1, -2)), a->ndim, a->shape)))
        return ag_last_status();
    if (b->requires_grad && ag__input_kept(n, 0) &&
        !(gx[1] = ag__reduce_to(matmul_nd(ag_transpose(a, -1, -2), gy), b->ndim, b->shape)))
        return ag_last_status();
    return AG_OK;
}

/* Both inputs have >= 2 dims. */
static ag_tensor *matmul_nd(ag_tensor *a, ag_tensor *b)
{
    if (!a || !b) return NULL;
    int64_t m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1];
    int64_t k2 = b->shape[b->ndim - 2], n = b->shape[b->ndim - 1];
    char sa[160], sb[160];
    if (k != k2) {
        ag__shape_fmt(a->ndim, a->shape, sa, sizeof sa);
        ag__shape_fmt(b->ndim, b->shape, sb, sizeof sb);
        ag_set_error(AG_ERR_SHAPE, "matmul: %s @ %s: inner sizes %lld and %lld differ", sa, sb,
                     (long long)k, (long long)k2);
        return NULL;
    }
    int nb;
    int64_t shape[AG_MAX_DIMS];
    if (!ag__broadcast_shape("matmul", a->ndim - 2, a->shape, b->ndim - 2, b->shape, &nb, shape))
        return NULL;
    if (nb + 2 > AG_MAX_DIMS) return ag_set_error(AG_ERR_SHAPE, "matmul: too many dims"), NULL;

    ag_scope_begin();
    int64_t ea[AG_MAX_DIMS], eb[AG_MAX_DIMS];
    for (int d = 0; d < nb; d++) ea[d] = eb[d] = shape[d];
    ea[nb] = m, ea[nb + 1] = k, eb[nb] = k, eb[nb + 1] = n;
    shape[nb] = m, shape[nb + 1] = n;
    ag_tensor *y = NULL;
    ag_no_grad_begin(); /* the layout work below is not part of the graph */
    /* two matrices (no batch axes) need no broadcasting: no expanded aliases
     * (a fifth of a small product's host time) */
    ag_tensor *xa = a, *xb = b;
    if (nb > 0) xa = ag_expand(a, nb + 2, ea), xb = ag_expand(b, nb + 2, eb);
    ag_view va, vb;
    if (xa && !as_3d(xa, nb, &va)) xa = ag__contiguous(xa), xa && as_3d(xa, nb, &va);
    if (xb && !as_3d(xb, nb, &vb)) xb = ag__contiguous(xb), xb && as_3d(xb, nb, &vb);
    ag_no_grad_end();
    if (xa && xb) y = ag__empty_on(ag__dev(a), AG_F32, nb + 2, shape);
    if (y) {
        ag_view vc;
        view3(&vc, y->st->buf, 0, ag__numel_shape(nb, shape), m, n, m * n, n, 1);
        ag_tensor *in[2] = {a, b};
        ag_node *node = NULL;
        if (AG_LAUNCH(ag__dev(a), gemm, 1.0f, 0.0f, &vc, &va, &vb) != AG_OK ||
            ag__record(y, "matmul", matmul_bwd, 2, in, &node) != AG_OK)
            y = NULL;
        /* each gradient reads the other operand */
        if (node && b->requires_grad) ag__save_input(node, 0);
        if (node && a->requires_grad) ag__save_input(node, 1);
    }
    return ag__done(y);
}

ag_tensor *ag_matmul(ag_tensor *a, ag_tensor *b)
{
    if (!ag__check("matmul", a, AG_F32) || !ag__check("matmul", b, AG_F32)) return NULL;
    if (!ag__same_device("matmul", a, b)) return NULL;
    if (a->ndim == 0 || b->ndim == 0)
        return ag_set_error(AG_ERR_SHAPE, "matmul: 0-dim operand (use ag_mul)"), NULL;
    if (a->ndim >= 2 && b->ndim >= 2) return matmul_nd(a, b); /* no views to drop */
    ag_scope_begin();
    /* 1-D operands become a row (left) or a column (right), dropped afterwards. */
    ag_tensor *a2 = a->ndim == 1 ? ag_unsqueeze(a, 0) : a;
    ag_tensor *b2 = b->ndim == 1 ? ag_unsqueeze(b, 1) : b;
    ag_tensor *y = matmul_nd(a2, b2);
    if (y && b->ndim == 1) y = ag_squeeze(y, -1);
    if (y && a->ndim == 1) y = ag_squeeze(y, y->ndim == 1 ? 0 : -2);
    return ag__done(y);
}

/* x seen as [rows, in] (an alias when x is contiguous, else a copy). */
static ag_tensor *as_rows(ag_tensor *x)
{
    int64_t shape[2] = {-1, x->shape[x->ndim - 1]};
    return x->ndim == 2 ? x : ag_reshape(x, 2, shape);
}

/* Linear is one node rather than matmul(x, W^T) + b: the weight's gradient
 * gy^T x is computed straight into a fresh [out, in] tensor that becomes the
 * leaf's gradient as it is, where the transpose node would hand back a
 * transposed view that must be copied. */
static ag_status linear_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    /* x's gradient reads W and W's reads x */
    const bool want_x = x->requires_grad && ag__input_kept(n, 1),
               want_w = w->requires_grad && ag__input_kept(n, 0);
    if (want_x && !(gx[0] = ag_matmul(gy, w))) return ag_last_status();
    if (!(want_w || (b && b->requires_grad))) return AG_OK;
    ag_tensor *g2 = as_rows(gy);
    if (!g2) return ag_last_status();
    if (want_w) {
        ag_tensor *x2 = as_rows(x);
        if (!x2 || !(gx[1] = ag_matmul(ag_transpose(g2, 0, 1), x2))) return ag_last_status();
    }
    if (b && b->requires_grad && !(gx[2] = ag_sum(g2, 1, (const int[]){0}, false)))
        return ag_last_status();
    return AG_OK;
}

ag_tensor *ag_linear(ag_tensor *x, ag_tensor *weight, ag_tensor *bias)
{
    if (!ag__check("linear", x, AG_F32) || !ag__check("linear", weight, AG_F32)) return NULL;
    if (bias && !ag__check("linear", bias, AG_F32)) return NULL;
    if (weight->ndim != 2)
        return ag_set_error(AG_ERR_SHAPE, "linear: weight must be [out, in], got %d dims",
                            weight->ndim), NULL;
    int64_t out = weight->shape[0], in = weight->shape[1];
    if (bias && (bias->ndim != 1 || bias->shape[0] != out))
        return ag_set_error(AG_ERR_SHAPE, "linear: bias must be [%lld]", (long long)out), NULL;
    if (x->ndim == 0 || x->shape[x->ndim - 1] != in) {
        char sx[160];
        ag__shape_fmt(x->ndim, x->shape, sx, sizeof sx);
        return ag_set_error(AG_ERR_SHAPE, "linear: input %s does not end in the weight's %lld "
                                          "input features", sx, (long long)in), NULL;
    }
    if (!ag__same_device("linear", x, weight) || (bias && !ag__same_device("linear", x, bias)))
        return NULL;

    ag_scope_begin();
    int64_t shape[AG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[x->ndim - 1] = out;
    ag_view vx, vw;
    ag_no_grad_begin(); /* layout work, not part of the graph */
    ag_tensor *x2 = as_rows(x), *wt = ag_transpose(weight, 0, 1);
    if (x2 && !as_3d(x2, 0, &vx)) x2 = ag__contiguous(x2), x2 && as_3d(x2, 0, &vx);
    if (wt && !as_3d(wt, 0, &vw)) wt = ag__contiguous(wt), wt && as_3d(wt, 0, &vw);
    ag_no_grad_end();
    ag_tensor *y = x2 && wt ? ag__empty_on(ag__dev(x), AG_F32, x->ndim, shape) : NULL;
    if (!y) return ag__done(NULL);
    int64_t rows = x2->shape[0];
    ag_device *dev = ag__dev(x);
    float beta = 0.0f;
    if (bias) { /* y starts as the bias on every row; the GEMM adds onto it */
        ag_view vy2 = {.buf = y->st->buf, .dtype = AG_F32, .ndim = 2, .shape = {rows, out},
                       .stride = {out, 1}};
        ag_view vb = {.buf = bias->st->buf, .offset = bias->offset, .dtype = AG_F32, .ndim = 2,
                      .shape = {rows, out}, .stride = {0, bias->stride[0]}};
        if (AG_LAUNCH(dev, copy, &vy2, &vb) != AG_OK) return ag__done(NULL);
        beta = 1.0f;
    }
    ag_view vy;
    view3(&vy, y->st->buf, 0, 1, rows, out, rows * out, out, 1);
    ag_tensor *in3[3] = {x, weight, bias};
    ag_node *node = NULL;
    if (AG_LAUNCH(dev, gemm, 1.0f, beta, &vy, &vx, &vw) != AG_OK ||
        ag__record(y, "linear", linear_bwd, bias ? 3 : 2, in3, &node) != AG_OK) {
        y = NULL;
    } else if (node) { /* backward reads x for W's gradient and W for x's */
        if (weight->requires_grad) ag__save_input(node, 0);
        if (x->requires_grad) ag__save_input(node, 1);
    }
    return ag__done(y);
}
