/* Softmax, log-softmax and cross entropy over the last axis of contiguous
 * [rows, cols] views on the GPU backends: the checks (those of
 * backends/cpu/cpu_softmax.c), the views' offsets and how rows spread over
 * work groups. */
#include "plan.h"

static int64_t pow2_ceil(int64_t n)
{
    int64_t p = 1;
    while (p < n) p *= 2;
    return p;
}

/* Dense row-major, size-1 axes aside; an empty view has no layout to check. */
static bool is_contiguous(const ag_view *v)
{
    return ag_view_numel(v) == 0 || ag_view_is_contiguous(v);
}

static ag_status check_dense(const char *backend, const char *op, const char *what,
                             const ag_view *v, int32_t *off)
{
    ag_status s = ag_check_view(backend, op, what, v, AG_F32);
    if (s != AG_OK) return s;
    if (!is_contiguous(v))
        return ag_set_error(AG_ERR_ARG, "%s %s: %s is not contiguous", backend, op, what);
    return ag_offset32(backend, op, v, off);
}

/* b has a's element count and last axis */
static ag_status check_like(const char *backend, const char *op, const char *what,
                            const ag_view *a, const ag_view *b)
{
    int64_t na = ag_view_numel(a), nb = ag_view_numel(b);
    int64_t ca = a->ndim ? a->shape[a->ndim - 1] : 1, cb = b->ndim ? b->shape[b->ndim - 1] : 1;
    if (na != nb || ca != cb) {
        char sa[160], sb[160];
        ag_view_shape_str(a, sa, sizeof sa);
        ag_view_shape_str(b, sb, sizeof sb);
        return ag_set_error(AG_ERR_SHAPE, "%s %s: %s has shape %s, expected %s like the others",
                            backend, op, what, sb, sa);
    }
    return AG_OK;
}

/* v as rows of its last axis */
static void rows_cols(const ag_view *v, ag_rows_plan *p)
{
    p->cols = v->ndim ? v->shape[v->ndim - 1] : 1;
    p->rows = p->cols ? ag_view_numel(v) / p->cols : 0;
    p->empty = p->rows == 0;
}

ag_status ag_softmax_plan(const char *backend, bool log, const ag_view *y, const ag_view *x,
                          ag_rows_plan *p)
{
    const char *op = log ? "log_softmax" : "softmax";
    *p = (ag_rows_plan){0};
    ag_status s = check_dense(backend, op, "x", x, &p->off[0]);
    if (s == AG_OK) s = check_dense(backend, op, "y", y, &p->off[1]);
    if (s == AG_OK) s = check_like(backend, op, "y", x, y);
    if (s == AG_OK) rows_cols(x, p);
    return s;
}

ag_status ag_softmax_backward_plan(const char *backend, bool log, const ag_view *dx,
                                   const ag_view *dy, const ag_view *y, ag_rows_plan *p)
{
    const char *op = log ? "log_softmax_backward" : "softmax_backward";
    *p = (ag_rows_plan){0};
    ag_status s = check_dense(backend, op, "dx", dx, &p->off[0]);
    if (s == AG_OK) s = check_dense(backend, op, "dy", dy, &p->off[1]);
    if (s == AG_OK) s = check_dense(backend, op, "y", y, &p->off[2]);
    if (s == AG_OK) s = check_like(backend, op, "dy", y, dy);
    if (s == AG_OK) s = check_like(backend, op, "dx", y, dx);
    if (s == AG_OK) rows_cols(y, p);
    return s;
}

/* logits (and dlogits) [N, C] contiguous f32, labels int32 [N], a per-row f32 [N];
 * the [N] views may be strided. */
static ag_status ce_check(const char *backend, const char *op, const ag_view *logits,
                          const ag_view *labels, const ag_view *per_row, const ag_view *dlogits,
                          ag_rows_plan *p)
{
    *p = (ag_rows_plan){0};
    ag_status s = ag_check_view(backend, op, "logits", logits, AG_F32);
    if (s == AG_OK) s = ag_check_view(backend, op, "labels", labels, AG_I32);
    if (s == AG_OK) s = ag_check_view(backend, op, dlogits ? "dloss" : "loss", per_row, AG_F32);
    if (s == AG_OK && dlogits) s = ag_check_view(backend, op, "dlogits", dlogits, AG_F32);
    if (s != AG_OK) return s;
    if (logits->ndim != 2 || labels->ndim != 1 || per_row->ndim != 1 ||
        labels->shape[0] != logits->shape[0] || per_row->shape[0] != logits->shape[0] ||
        (dlogits && (dlogits->ndim != 2 || dlogits->shape[0] != logits->shape[0] ||
                     dlogits->shape[1] != logits->shape[1]))) {
        char sx[160], sl[160], sp[160];
        ag_view_shape_str(logits, sx, sizeof sx);
        ag_view_shape_str(labels, sl, sizeof sl);
        ag_view_shape_str(per_row, sp, sizeof sp);
        return ag_set_error(AG_ERR_SHAPE,
                            "%s %s: expected logits [N, C], labels [N] and a [N] view; got "
                            "%s, %s and %s",
                            backend, op, sx, sl, sp);
    }
    if (!is_contiguous(logits) || (dlogits && !is_contiguous(dlogits)))
        return ag_set_error(AG_ERR_ARG, "%s %s: %s is not contiguous", backend, op,
                            is_contiguous(logits) ? "dlogits" : "logits");
    s = ag_offset32(backend, op, logits, &p->off[0]);
    if (s == AG_OK) s = ag_offset32(backend, op, labels, &p->off[1]);
    if (s == AG_OK) s = ag_offset32(backend, op, per_row, &p->off[2]);
    if (s == AG_OK && dlogits) s = ag_offset32(backend, op, dlogits, &p->off[3]);
    if (s == AG_OK && logits->shape[0] > INT32_MAX)
        return ag_set_error(AG_ERR_UNSUPPORTED, "%s %s: 2^31 rows or more", backend, op);
    if (s != AG_OK) return s;
    p->rows = logits->shape[0];
    p->cols = logits->shape[1];
    /* as the kernels take them */
    p->ls = (int32_t)labels->stride[0];
    p->ps = (int32_t)per_row->stride[0];
    return AG_OK;
}

ag_status ag_cross_entropy_plan(const char *backend, const ag_view *loss, const ag_view *logits,
                                const ag_view *labels, ag_rows_plan *p)
{
    ag_status s = ce_check(backend, "cross_entropy", logits, labels, loss, NULL, p);
    p->empty = p->rows == 0;
    return s;
}

ag_status ag_cross_entropy_backward_plan(const char *backend, const ag_view *dlogits,
                                         const ag_view *dloss, const ag_view *logits,
                                         const ag_view *labels, ag_rows_plan *p)
{
    ag_status s = ce_check(backend, "cross_entropy_backward", logits, labels, dloss, dlogits, p);
    p->empty = p->rows == 0 || p->cols == 0;
    return s;
}

ag_rows_launch ag_rows_launch_plan(const ag_rows_plan *p, int64_t wg, int64_t target_groups,
                                   bool pow2_rows)
{
    const int64_t rows = p->rows, cols = p->cols;
    int64_t most = pow2_ceil(cols > 0 ? cols : 1);
    if (most > wg) most = wg;
    int64_t t = pow2_ceil(cols > 4 ? (cols + 3) / 4 : 1);
    if (t > most) t = most;
    while (t < most && rows * t < target_groups * wg) t *= 2;
    int64_t rpg = wg / t;
    if (rpg > rows) rpg = rows > 0 ? rows : 1;
    if (pow2_rows) rpg = pow2_ceil(rpg);
    return (ag_rows_launch){.tpr = t, .local = t * rpg, .groups = (rows + rpg - 1) / rpg};
}
