/* Element-wise ops: unary with parameters, broadcasting binary, where. */
#include <math.h>

#include "core.h"
#include "ops/binary_table.h"
#include "ops/unary_table.h"

/* Names for messages; the derivative lives in each backend's unary_backward. */
#define NAME_ROW(E, name, ...) [AG_UNARY_##E] = #name,
static const char *const unary_names[AG_UNARY_COUNT] = {AG_UNARY_TABLE(NAME_ROW)};
#undef NAME_ROW
/* Whether the derivative reads y: only then is the output saved (a ReLU's
 * output is freed once nothing else holds it; the kernels work from x). */
#define USES_Y_ROW(E, name, np, params, doc, module, uses_y, ...) [AG_UNARY_##E] = (uses_y),
static const bool unary_uses_y[AG_UNARY_COUNT] = {AG_UNARY_TABLE(USES_Y_ROW)};
#undef USES_Y_ROW

/* Binary names, and which ops record a gradient (their rules are in binary_bwd). */
#define NAME_ROW(E, name, ...) [AG_BINARY_##E] = #name,
static const char *const binary_names[AG_BINARY_COUNT] = {AG_BINARY_TABLE(NAME_ROW)};
#undef NAME_ROW
#define GRAD_ROW(E, name, doc, grad, ...) [AG_BINARY_##E] = (grad),
static const bool binary_grad[AG_BINARY_COUNT] = {AG_BINARY_TABLE(GRAD_ROW)};
#undef GRAD_ROW

bool ag__broadcast_shape(const char *op, int na, const int64_t *sa, int nb, const int64_t *sb,
                         int *nout, int64_t *out)
{
    int n = na > nb ? na : nb;
    for (int d = 0; d < n; d++) {
        int ia = d - (n - na), ib = d - (n - nb);
        int64_t a = ia >= 0 ? sa[ia] : 1, b = ib >= 0 ? sb[ib] : 1;
        if (a != b && a != 1 && b != 1) {
            char x[160], y[160];
            ag__shape_fmt(na, sa, x, sizeof x);
            ag__shape_fmt(nb, sb, y, sizeof y);
            ag_set_error(AG_ERR_SHAPE, "%s: shapes %s and %s do not broadcast (axis %d: %lld vs %lld)",
                         op, x, y, d, (long long)a, (long long)b);
            return false;
        }
        out[d] = a == 1 ? b : a;
    }
    *nout = n;
    return true;
}

/* ---- unary ---------------------------------------------------------------- */

static ag_status unary_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_tensor *x = n->saved[0], *y = n->saved[1];
    ag_tensor *g = ag__empty_like(x);
    if (!g) return ag_last_status();
    ag_view vg = ag__view(g), vgy = ag__view(gy), vx = ag__view(x), vy = {0};
    if (y) vy = ag__view(y);
    float p[2] = {n->p.unary.p0, n->p.unary.p1};
    gx[0] = g;
    return AG_LAUNCH(ag__dev(x), unary_backward, n->p.unary.op, p, &vg, &vgy, &vx, y ? &vy : NULL);
}

static ag_tensor *unary_impl(ag_unary_op op, ag_tensor *x, float p0, float p1, bool record)
{
    if ((unsigned)op >= AG_UNARY_COUNT)
        return ag_set_error(AG_ERR_ARG, "unary: unknown op %d", (int)op), NULL;
    if (!ag__check(unary_names[op], x, AG_F32)) return NULL;
    const ag_backend_i *bk = ag__dev(x)->i;
    if (!(ag_unary_on[op] & bk->table_bit))
        return ag_set_error(AG_ERR_UNSUPPORTED, "%s: the %s backend has no kernel for this op",
                            unary_names[op], bk->name), NULL;
    ag_scope_begin();
    ag_tensor *y = ag__empty_like(x);
    if (y) {
        ag_view vy = ag__view(y), vx = ag__view(x);
        float p[2] = {p0, p1};
        ag_node *n = NULL;
        if (AG_LAUNCH(ag__dev(x), unary, op, p, &vy, &vx) != AG_OK ||
            (record && ag__record(y, unary_names[op], unary_bwd, 1, &x, &n) != AG_OK))
            y = NULL;
        if (n) {
            n->p.unary.op = op;
            n->p.unary.p0 = p0;
            n->p.unary.p1 = p1;
            if (ag__save(n, 0, x) != AG_OK || (unary_uses_y[op] && ag__save(n, 1, y) != AG_OK))
                y = NULL;
        }
    }
    return ag__done(y);
}

ag_tensor *ag_unary(ag_unary_op op, ag_tensor *x, float p0, float p1)
{
    return unary_impl(op, x, p0, p1, true);
}
ag_tensor *ag__unary_raw(ag_unary_op op, ag_tensor *x, float p0, float p1)
{
    return unary_impl(op, x, p0, p1, false);
}

/* ag_<name>() for the rows whose wrapper is generated (wrap = 1) */
#define WRAP_0(E, name) \
    ag_tensor *ag_##name(ag_tensor *x) { return ag_unary(AG_UNARY_##E, x, 0, 0); }
#define WRAP_1(E, name) \
    ag_tensor *ag_##name(ag_tensor *x, float p0) { return ag_unary(AG_UNARY_##E, x, p0, 0); }
#define WRAP_2(E, name) \
    ag_tensor *ag_##name(ag_tensor *x, float p0, float p1) { return ag_unary(AG_UNARY_##E, x, p0, p1); }
#define WRAP_ROW(E, name, np, pn, doc, mod, uy, on, wrap, ...) WRAP_IF_##wrap(np, E, name)
#define WRAP_IF_0(np, E, name)
#define WRAP_IF_1(np, E, name) WRAP_##np(E, name)
AG_UNARY_TABLE(WRAP_ROW)
#undef WRAP_ROW

ag_tensor *ag_sub_scalar(ag_tensor *x, float s) { return ag_unary(AG_UNARY_ADD_SCALAR, x, -s, 0); }

ag_tensor *ag_div_scalar(ag_tensor *x, float s)
{
    if (s == 0.0f) {
        /* 1/s would be inf and turn 0/0 into 0*inf: divide through the binary kernel. */
        if (!ag__check("div_scalar", x, AG_F32)) return NULL;
        ag_scope_begin();
        return ag__done(ag_div(x, ag__scalar_like(x, s)));
    }
    return ag_unary(AG_UNARY_MUL_SCALAR, x, 1.0f / s, 0);
}

ag_tensor *ag_clamp(ag_tensor *x, float lo, float hi)
{
    if (lo > hi) return ag_set_error(AG_ERR_ARG, "clamp: lo %g > hi %g", lo, hi), NULL;
    return ag_unary(AG_UNARY_CLAMP, x, lo, hi);
}

/* ---- binary --------------------------------------------------------------- */

/* Gradient masks for maximum/minimum: ties share the gradient equally. */
static ag_tensor *pick_mask(ag_tensor *a, ag_tensor *b, bool is_max)
{
    ag_tensor *win = is_max ? ag_gt(a, b) : ag_lt(a, b);
    ag_tensor *tie = ag_mul_scalar(ag_eq(a, b), 0.5f);
    return ag_add(win, tie);
}

static ag_status binary_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_tensor *a = n->in[0], *b = n->in[1];
    ag_tensor *ga = NULL, *gb = NULL;
    bool need_a = a->requires_grad, need_b = b->requires_grad;
    switch (n->p.binary.op) {
    case AG_BINARY_ADD: ga = gy; gb = gy; break;
    case AG_BINARY_SUB: ga = gy; gb = ag_neg(gy); break;
    case AG_BINARY_MUL:
        /* each factor's gradient reads the other */
        need_a &= ag__input_kept(n, 1);
        need_b &= ag__input_kept(n, 0);
        if (need_a) ga = ag_mul(gy, b);
        if (need_b) gb = ag_mul(gy, a);
        break;
    case AG_BINARY_DIV:
        ga = ag_div(gy, b);
        gb = ag_neg(ag_mul(ga, n->saved[0])); /* -gy a / b^2 = -(gy / b) y */
        break;
    case AG_BINARY_MAXIMUM:
    case AG_BINARY_MINIMUM: {
        ag_tensor *m = pick_mask(a, b, n->p.binary.op == AG_BINARY_MAXIMUM);
        ga = ag_mul(gy, m);
        gb = ag_sub(gy, ga);
        break;
    }
    default: return ag_set_error(AG_ERR_STATE, "internal: %s has no gradient", n->name);
    }
    if (need_a && !(gx[0] = ag__reduce_to(ga, a->ndim, a->shape))) return ag_last_status();
    if (need_b && !(gx[1] = ag__reduce_to(gb, b->ndim, b->shape))) return ag_last_status();
    return AG_OK;
}

ag_tensor *ag_binary(ag_binary_op op, ag_tensor *a, ag_tensor *b)
{
    if ((unsigned)op >= AG_BINARY_COUNT)
        return ag_set_error(AG_ERR_ARG, "binary: unknown op %d", (int)op), NULL;
    const char *name = binary_names[op];
    if (!ag__check(name, a, AG_F32) || !ag__check(name, b, AG_F32)) return NULL;
    if (!ag__same_device(name, a, b)) return NULL;
    if (!(ag_binary_on[op] & ag__dev(a)->i->table_bit))
        return ag_set_error(AG_ERR_UNSUPPORTED, "%s: the %s backend has no kernel for this op",
                            name, ag__dev(a)->i->name),
               NULL;
    int nd;
    int64_t shape[AG_MAX_DIMS];
    if (!ag__broadcast_shape(name, a->ndim, a->shape, b->ndim, b->shape, &nd, shape)) return NULL;
    ag_scope_begin();
    ag_tensor *y = ag__empty_on(ag__dev(a), AG_F32, nd, shape);
    if (y) {
        ag_view vy = ag__view(y), va = ag__view_bcast(a, nd, shape), vb = ag__view_bcast(b, nd, shape);
        ag_node *n = NULL;
        ag_tensor *in[2] = {a, b};
        if (AG_LAUNCH(ag__dev(a), binary, op, &vy, &va, &vb) != AG_OK ||
            (binary_grad[op] && ag__record(y, name, binary_bwd, 2, in, &n) != AG_OK))
            y = NULL;
        if (n) {
            n->p.binary.op = op;
            /* the inputs binary_bwd reads for the gradients it will produce */
            bool ga = a->requires_grad, gb = b->requires_grad;
            if ((op == AG_BINARY_MUL && gb) || op == AG_BINARY_MAXIMUM || op == AG_BINARY_MINIMUM)
                ag__save_input(n, 0);
            if ((op == AG_BINARY_MUL && ga) || op == AG_BINARY_DIV || op == AG_BINARY_MAXIMUM ||
                op == AG_BINARY_MINIMUM)
                ag__save_input(n, 1);
            if (op == AG_BINARY_DIV && ag__save(n, 0, y) != AG_OK) y = NULL;
        }
    }
    return ag__done(y);
}

#define WRAP(E, name, ...) \
    ag_tensor *ag_##name(ag_tensor *a, ag_tensor *b) { return ag_binary(AG_BINARY_##E, a, b); }
AG_BINARY_TABLE(WRAP)
#undef WRAP

/* ---- where ---------------------------------------------------------------- */

static ag_status where_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_tensor *cond = n->in[0], *a = n->in[1], *b = n->in[2];
    ag_tensor *zero = ag__scalar_like(gy, 0.0f);
    if (a->requires_grad && !(gx[1] = ag__reduce_to(ag_where(cond, gy, zero), a->ndim, a->shape)))
        return ag_last_status();
    if (b->requires_grad && !(gx[2] = ag__reduce_to(ag_where(cond, zero, gy), b->ndim, b->shape)))
        return ag_last_status();
    return AG_OK;
}

ag_tensor *ag_where(ag_tensor *cond, ag_tensor *a, ag_tensor *b)
{
    if (!ag__check("where", cond, AG_F32) || !ag__check("where", a, AG_F32) ||
        !ag__check("where", b, AG_F32))
        return NULL;
    if (!ag__same_device("where", cond, a) || !ag__same_device("where", a, b)) return NULL;
    int n1, nd;
    int64_t s1[AG_MAX_DIMS], shape[AG_MAX_DIMS];
    if (!ag__broadcast_shape("where", a->ndim, a->shape, b->ndim, b->shape, &n1, s1) ||
        !ag__broadcast_shape("where", cond->ndim, cond->shape, n1, s1, &nd, shape))
        return NULL;
    ag_scope_begin();
    ag_tensor *y = ag__empty_on(ag__dev(a), AG_F32, nd, shape);
    if (y) {
        ag_view vy = ag__view(y), vc = ag__view_bcast(cond, nd, shape),
                va = ag__view_bcast(a, nd, shape), vb = ag__view_bcast(b, nd, shape);
        ag_tensor *in[3] = {cond, a, b};
        ag_node *n = NULL;
        if (AG_LAUNCH(ag__dev(a), where, &vy, &vc, &va, &vb) != AG_OK ||
            ag__record(y, "where", where_bwd, 3, in, &n) != AG_OK)
            y = NULL;
        if (n) ag__save_input(n, 0); /* the condition routes the gradient */
    }
    return ag__done(y);
}
