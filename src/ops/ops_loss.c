/* Losses: MSE, cross entropy (fused kernel), NLL and BCE with logits. Each gives
 * a per-element loss, then the requested reduction as ordinary differentiable ops. */
#include <math.h>

#include "core.h"

static bool valid_reduction(const char *op, ag_reduction red)
{
    if ((unsigned)red <= AG_REDUCTION_NONE) return true;
    ag_set_error(AG_ERR_ARG, "%s: unknown reduction %d", op, (int)red);
    return false;
}

static ag_tensor *reduce_loss(ag_tensor *l, ag_reduction red)
{
    switch (red) {
    case AG_REDUCTION_MEAN: return ag_mean_all(l);
    case AG_REDUCTION_SUM: return ag_sum_all(l);
    default: return l;
    }
}

static bool same_shape_or_error(const char *op, const ag_tensor *a, const ag_tensor *b,
                                const char *an, const char *bn)
{
    if (ag__same_shape(a, b)) return true;
    char sa[160], sb[160];
    ag__shape_fmt(a->ndim, a->shape, sa, sizeof sa);
    ag__shape_fmt(b->ndim, b->shape, sb, sizeof sb);
    ag_set_error(AG_ERR_SHAPE, "%s: %s %s and %s %s must have the same shape", op, an, sa, bn, sb);
    return false;
}

/* Checks x [N, C] f32 and labels int32 [N] on one device. */
static bool check_class_args(const char *op, const ag_tensor *x, const ag_tensor *labels)
{
    if (!ag__check(op, x, AG_F32) || !ag__check(op, labels, AG_I32)) return false;
    if (!ag__same_device(op, x, labels)) return false;
    if (x->ndim == 2 && labels->ndim == 1 && labels->shape[0] == x->shape[0]) return true;
    char sx[160], sl[160];
    ag__shape_fmt(x->ndim, x->shape, sx, sizeof sx);
    ag__shape_fmt(labels->ndim, labels->shape, sl, sizeof sl);
    ag_set_error(AG_ERR_SHAPE, "%s: expected input [N, C] and labels [N], got %s and %s", op, sx,
                 sl);
    return false;
}

ag_tensor *ag_mse_loss(ag_tensor *pred, ag_tensor *target, ag_reduction red)
{
    if (!ag__check("mse_loss", pred, AG_F32) || !ag__check("mse_loss", target, AG_F32)) return NULL;
    if (!ag__same_device("mse_loss", pred, target) || !valid_reduction("mse_loss", red) ||
        !same_shape_or_error("mse_loss", pred, target, "pred", "target"))
        return NULL;
    ag_scope_begin();
    return ag__done(reduce_loss(ag_square(ag_sub(pred, target)), red));
}

/* ---- cross entropy ---------------------------------------------------------- */

static ag_status cross_entropy_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_tensor *logits = n->saved[0], *labels = n->saved[1];
    ag_tensor *g = ag__contiguous(gy);
    ag_tensor *dx = g ? ag__empty_like(logits) : NULL;
    if (!dx) return ag_last_status();
    ag_view vdx = ag__view(dx), vg = ag__view(g), vx = ag__view(logits), vl = ag__view(labels);
    gx[0] = dx;
    return AG_LAUNCH(ag__dev(logits), cross_entropy_backward, n->p.cross_entropy.label_smoothing, &vdx, &vg, &vx, &vl);
}

ag_tensor *ag_cross_entropy(ag_tensor *logits, ag_tensor *labels, ag_reduction red,
                            float label_smoothing)
{
    if (!check_class_args("cross_entropy", logits, labels) ||
        !valid_reduction("cross_entropy", red))
        return NULL;
    if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f))
        return ag_set_error(AG_ERR_ARG, "cross_entropy: label_smoothing %g is not in [0, 1]",
                            label_smoothing), NULL;
    ag_scope_begin();
    ag_tensor *xc = ag__contiguous(logits), *lc = ag__contiguous(labels);
    ag_tensor *loss = xc && lc ? ag__empty_on(ag__dev(logits), AG_F32, 1, logits->shape) : NULL;
    if (loss) {
        ag_view vl = ag__view(loss), vx = ag__view(xc), vlab = ag__view(lc);
        ag_node *n = NULL;
        if (AG_LAUNCH(ag__dev(logits), cross_entropy, label_smoothing, &vl, &vx, &vlab) != AG_OK ||
            ag__record(loss, "cross_entropy", cross_entropy_bwd, 1, &logits, &n) != AG_OK)
            loss = NULL;
        if (n) {
            n->p.cross_entropy.label_smoothing = label_smoothing;
            if (ag__save(n, 0, xc) != AG_OK || ag__save(n, 1, lc) != AG_OK) loss = NULL;
        }
    }
    return ag__done(reduce_loss(loss, red));
}

/* ---- nll ------------------------------------------------------------------------ */

ag_tensor *ag_nll_loss(ag_tensor *log_probs, ag_tensor *labels, ag_reduction red)
{
    if (!check_class_args("nll_loss", log_probs, labels) || !valid_reduction("nll_loss", red))
        return NULL;
    int64_t n = log_probs->shape[0], c = log_probs->shape[1];
    int64_t col[2] = {n, 1};
    ag_scope_begin();
    ag_tensor *picked = ag_gather(log_probs, 1, ag_reshape(labels, 2, col));
    ag_tensor *loss = ag_neg(ag_reshape(picked, 1, &n));
    /* gather reads 0 for a label outside [0, C); make it NaN as cross_entropy does */
    ag_tensor *lf = ag_to_dtype(labels, AG_F32);
    ag_tensor *ok = ag_mul(ag_ge(lf, ag__scalar_like(lf, 0.0f)), ag_lt(lf, ag__scalar_like(lf, (float)c)));
    loss = ag_where(ok, loss, ag__scalar_like(lf, NAN));
    return ag__done(reduce_loss(loss, red));
}

/* ---- binary cross entropy ------------------------------------------------------- */

ag_tensor *ag_bce_with_logits(ag_tensor *logits, ag_tensor *targets, ag_reduction red)
{
    const char *op = "bce_with_logits";
    if (!ag__check(op, logits, AG_F32) || !ag__check(op, targets, AG_F32)) return NULL;
    if (!ag__same_device(op, logits, targets) || !valid_reduction(op, red) ||
        !same_shape_or_error(op, logits, targets, "logits", "targets"))
        return NULL;
    ag_scope_begin();
    /* log(1 + e^x) - x t: the softplus kernel is stable for large |x| */
    ag_tensor *loss = ag_sub(ag_softplus(logits), ag_mul(logits, targets));
    return ag__done(reduce_loss(loss, red));
}

ag_status ag_count_correct(ag_tensor *logits, ag_tensor *labels, int64_t *correct)
{
    if (!correct) return ag_set_error(AG_ERR_ARG, "count_correct: correct is NULL");
    if (!ag__check("count_correct", logits, AG_F32) || !ag__check("count_correct", labels, AG_I32))
        return ag_last_status() ? ag_last_status() : AG_ERR_ARG;
    if (logits->ndim != 2 || labels->ndim != 1 || labels->shape[0] != logits->shape[0]) {
        char a[160], b[160];
        ag__shape_fmt(logits->ndim, logits->shape, a, sizeof a);
        ag__shape_fmt(labels->ndim, labels->shape, b, sizeof b);
        return ag_set_error(AG_ERR_SHAPE, "count_correct: logits %s must be [N, C] and labels %s [N]",
                            a, b);
    }
    /* Counted on the device; only the total comes back. Exact in f32 below 2^24 rows. */
    ag_scope_begin();
    ag_no_grad_begin();
    ag_tensor *hits = ag_eq(ag_to_dtype(ag_argmax(logits, 1, false), AG_F32),
                            ag_to_dtype(labels, AG_F32));
    float n = 0;
    ag_status s = hits ? ag_item(ag_sum_all(hits), &n) : ag_last_status();
    ag_no_grad_end();
    ag_scope_end();
    if (s == AG_OK) *correct = (int64_t)n;
    return s;
}
