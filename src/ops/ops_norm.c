/* Batch and layer normalisation. One node per op; the kernels work on contiguous
 * [N, C, S] (batch) and [rows, D] (layer) views and save mean and 1/std. */
#include <stdio.h>

#include "core.h"

/* A contiguous tensor seen with another shape of the same element count. */
static ag_view dense_view(const ag_tensor *t, int ndim, const int64_t *shape)
{
    ag_view v = ag__view(t);
    v.ndim = ndim;
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        v.shape[d] = shape[d];
        v.stride[d] = s;
        s *= shape[d] ? shape[d] : 1;
    }
    return v;
}

/* An optional tensor's view, or NULL. */
static const ag_view *opt_view(const ag_tensor *t, ag_view *v)
{
    if (!t) return NULL;
    *v = ag__view(t);
    return v;
}

/* ---- batch norm --------------------------------------------------------------- */

/* saved: 0 = x (contiguous), 1 = mean, 2 = rstd, 3 = weight (contiguous) or none. */
static ag_status batch_norm_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    ag_tensor *xc = n->saved[0], *g = ag__contiguous(gy);
    if (!g) return ag_last_status();
    const int64_t *ncs = n->p.batch_norm.ncs;
    ag_tensor *dx = x->requires_grad ? ag__empty_like(xc) : NULL;
    ag_tensor *dw = w && w->requires_grad ? ag__empty_like(w) : NULL;
    ag_tensor *db = b && b->requires_grad ? ag__empty_like(b) : NULL;
    if ((x->requires_grad && !dx) || (w && w->requires_grad && !dw) || (b && b->requires_grad && !db))
        return ag_last_status();
    ag_view vx = dense_view(xc, 3, ncs), vdy = dense_view(g, 3, ncs), vm = ag__view(n->saved[1]),
            vr = ag__view(n->saved[2]), vgam, vdx, vdw, vdb;
    if (dx) vdx = dense_view(dx, 3, ncs);
    ag_norm_args a = {.training = n->p.batch_norm.training, .x = &vx, .mean = &vm, .rstd = &vr,
                      .gamma = opt_view(n->saved[3], &vgam), .dy = &vdy,
                      .dx = dx ? &vdx : NULL, .dgamma = opt_view(dw, &vdw),
                      .dbeta = opt_view(db, &vdb)};
    ag_status s = AG_LAUNCH(ag__dev(xc), batch_norm_backward, &a);
    gx[0] = dx;
    gx[1] = dw;
    gx[2] = db;
    return s;
}

/* A per-channel tensor: NULL, or f32 [C] on x's device (contiguous when written). */
static bool channel_arg(const char *what, const ag_tensor *x, const ag_tensor *t, int64_t c,
                        bool written)
{
    if (!t) return true;
    if (!ag__check("batch_norm", t, AG_F32) || !ag__same_device("batch_norm", x, t)) return false;
    if (t->ndim != 1 || t->shape[0] != c) {
        char st[160], sx[160];
        ag__shape_fmt(t->ndim, t->shape, st, sizeof st);
        ag__shape_fmt(x->ndim, x->shape, sx, sizeof sx);
        ag_set_error(AG_ERR_SHAPE, "batch_norm: %s %s must be [%lld] for input %s", what, st,
                     (long long)c, sx);
        return false;
    }
    if (written && !ag__is_contiguous(t)) {
        ag_set_error(AG_ERR_ARG, "batch_norm: %s must be contiguous (it is updated in place)",
                     what);
        return false;
    }
    return true;
}

ag_tensor *ag_batch_norm(ag_tensor *x, ag_tensor *running_mean, ag_tensor *running_var,
                         ag_tensor *weight, ag_tensor *bias, bool training, float momentum,
                         float eps)
{
    if (!ag__check("batch_norm", x, AG_F32)) return NULL;
    char sx[160];
    ag__shape_fmt(x->ndim, x->shape, sx, sizeof sx);
    if (x->ndim < 2)
        return ag_set_error(AG_ERR_SHAPE, "batch_norm: expected input [N, C] or [N, C, ...], got %s",
                            sx), NULL;
    int64_t c = x->shape[1], sp = 1;
    for (int d = 2; d < x->ndim; d++) sp *= x->shape[d];
    if (!channel_arg("running_mean", x, running_mean, c, true) ||
        !channel_arg("running_var", x, running_var, c, true) ||
        !channel_arg("weight", x, weight, c, false) || !channel_arg("bias", x, bias, c, false))
        return NULL;
    if (!running_mean != !running_var)
        return ag_set_error(AG_ERR_ARG, "batch_norm: give both running_mean and running_var, or "
                                        "neither"), NULL;
    if (!training && !running_mean)
        return ag_set_error(AG_ERR_ARG, "batch_norm: eval mode needs running_mean and "
                                        "running_var"), NULL;
    if (!(eps >= 0.0f) || (training && !(momentum >= 0.0f && momentum <= 1.0f)))
        return ag_set_error(AG_ERR_ARG, "batch_norm: eps %g must be >= 0 and momentum %g in [0, 1]",
                            eps, momentum), NULL;
    if (training && x->shape[0] * sp <= 1 && c > 0)
        return ag_set_error(AG_ERR_SHAPE, "batch_norm: training needs more than one value per "
                                          "channel, got input %s", sx), NULL;

    ag_scope_begin();
    int64_t ncs[3] = {x->shape[0], c, sp};
    ag_device *dev = ag__dev(x);
    ag_tensor *xc = ag__contiguous(x), *wc = ag__contiguous(weight), *bc = ag__contiguous(bias);
    ag_tensor *y = xc ? ag__empty_like(xc) : NULL;
    ag_tensor *mean = ag__empty_on(dev, AG_F32, 1, &c), *rstd = ag__empty_on(dev, AG_F32, 1, &c);
    if ((weight && !wc) || (bias && !bc) || !mean || !rstd) y = NULL;
    if (y) {
        ag_view vx = dense_view(xc, 3, ncs), vy = dense_view(y, 3, ncs), vm = ag__view(mean),
                vr = ag__view(rstd), vgam, vbet, vrm, vrv;
        ag_norm_args a = {.eps = eps, .momentum = momentum, .training = training, .x = &vx,
                          .y = &vy, .mean = &vm, .rstd = &vr, .gamma = opt_view(wc, &vgam),
                          .beta = opt_view(bc, &vbet),
                          .running_mean = opt_view(running_mean, &vrm),
                          .running_var = opt_view(running_var, &vrv)};
        ag_tensor *in[3] = {x, weight, bias};
        ag_node *n = NULL;
        if (training && running_mean) { /* the kernel updates them in place */
            ag__bump_version(running_mean);
            ag__bump_version(running_var);
        }
        if (AG_LAUNCH(dev, batch_norm, &a) != AG_OK ||
            ag__record(y, "batch_norm", batch_norm_bwd, 3, in, &n) != AG_OK)
            y = NULL;
        if (n) {
            n->p.batch_norm.training = training;
            for (int k = 0; k < 3; k++) n->p.batch_norm.ncs[k] = ncs[k];
            if (ag__save(n, 0, xc) != AG_OK || ag__save(n, 1, mean) != AG_OK ||
                ag__save(n, 2, rstd) != AG_OK || (wc && ag__save(n, 3, wc) != AG_OK))
                y = NULL;
        }
    }
    /* y is x's shape: the [N, C, S] layout was only for the kernel */
    return ag__done(y);
}

/* ---- layer norm ------------------------------------------------------------------ */

/* saved: 0 = x (contiguous), 1 = mean, 2 = rstd, 3 = weight (contiguous) or none;
 * i[0], i[1] = rows, D. */
static ag_status layer_norm_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    ag_tensor *xc = n->saved[0], *g = ag__contiguous(gy);
    if (!g) return ag_last_status();
    int64_t rd[2] = {n->p.layer_norm.rows, n->p.layer_norm.d}, d = n->p.layer_norm.d;
    ag_tensor *dx = x->requires_grad ? ag__empty_like(xc) : NULL;
    ag_tensor *dw = w && w->requires_grad ? ag__empty_like(w) : NULL;
    ag_tensor *db = b && b->requires_grad ? ag__empty_like(b) : NULL;
    if ((x->requires_grad && !dx) || (w && w->requires_grad && !dw) || (b && b->requires_grad && !db))
        return ag_last_status();
    ag_view vx = dense_view(xc, 2, rd), vdy = dense_view(g, 2, rd), vm = ag__view(n->saved[1]),
            vr = ag__view(n->saved[2]), vgam, vdx, vdw, vdb;
    if (n->saved[3]) vgam = dense_view(n->saved[3], 1, &d);
    if (dx) vdx = dense_view(dx, 2, rd);
    if (dw) vdw = dense_view(dw, 1, &d);
    if (db) vdb = dense_view(db, 1, &d);
    ag_norm_args a = {.x = &vx, .mean = &vm, .rstd = &vr, .gamma = n->saved[3] ? &vgam : NULL,
                      .dy = &vdy, .dx = dx ? &vdx : NULL, .dgamma = dw ? &vdw : NULL,
                      .dbeta = db ? &vdb : NULL};
    ag_status s = AG_LAUNCH(ag__dev(xc), layer_norm_backward, &a);
    gx[0] = dx;
    gx[1] = dw;
    gx[2] = db;
    return s;
}

/* weight or bias: NULL, or f32 with exactly the normalised shape. */
static bool affine_arg(const char *what, const ag_tensor *x, const ag_tensor *t, int k)
{
    if (!t) return true;
    if (!ag__check("layer_norm", t, AG_F32) || !ag__same_device("layer_norm", x, t)) return false;
    bool ok = t->ndim == k;
    for (int d = 0; ok && d < k; d++) ok = t->shape[d] == x->shape[x->ndim - k + d];
    if (ok) return true;
    char st[160], sx[160], sn[160];
    ag__shape_fmt(t->ndim, t->shape, st, sizeof st);
    ag__shape_fmt(x->ndim, x->shape, sx, sizeof sx);
    ag__shape_fmt(k, x->shape + x->ndim - k, sn, sizeof sn);
    ag_set_error(AG_ERR_SHAPE, "layer_norm: %s %s must have the normalised shape %s of input %s",
                 what, st, sn, sx);
    return false;
}

ag_tensor *ag_layer_norm(ag_tensor *x, int normalized_ndim, ag_tensor *weight, ag_tensor *bias,
                         float eps)
{
    if (!ag__check("layer_norm", x, AG_F32)) return NULL;
    int k = normalized_ndim;
    if (k < 1 || k > x->ndim) {
        char sx[160];
        ag__shape_fmt(x->ndim, x->shape, sx, sizeof sx);
        return ag_set_error(AG_ERR_ARG, "layer_norm: normalized_ndim %d must be in [1, %d] for "
                                        "input %s", k, x->ndim, sx), NULL;
    }
    if (!affine_arg("weight", x, weight, k) || !affine_arg("bias", x, bias, k)) return NULL;
    if (!(eps >= 0.0f)) return ag_set_error(AG_ERR_ARG, "layer_norm: eps %g must be >= 0", eps), NULL;
    int64_t rows = ag__numel_shape(x->ndim - k, x->shape);
    int64_t d = ag__numel_shape(k, x->shape + x->ndim - k), rd[2] = {rows, d};

    ag_scope_begin();
    ag_device *dev = ag__dev(x);
    ag_tensor *xc = ag__contiguous(x), *wc = ag__contiguous(weight), *bc = ag__contiguous(bias);
    ag_tensor *y = xc ? ag__empty_like(xc) : NULL;
    ag_tensor *mean = ag__empty_on(dev, AG_F32, 1, &rows), *rstd = ag__empty_on(dev, AG_F32, 1, &rows);
    if ((weight && !wc) || (bias && !bc) || !mean || !rstd) y = NULL;
    if (y) {
        ag_view vx = dense_view(xc, 2, rd), vy = dense_view(y, 2, rd), vm = ag__view(mean),
                vr = ag__view(rstd), vgam, vbet;
        if (wc) vgam = dense_view(wc, 1, &d);
        if (bc) vbet = dense_view(bc, 1, &d);
        ag_norm_args a = {.eps = eps, .x = &vx, .y = &vy, .mean = &vm, .rstd = &vr,
                          .gamma = wc ? &vgam : NULL, .beta = bc ? &vbet : NULL};
        ag_tensor *in[3] = {x, weight, bias};
        ag_node *n = NULL;
        if (AG_LAUNCH(dev, layer_norm, &a) != AG_OK ||
            ag__record(y, "layer_norm", layer_norm_bwd, 3, in, &n) != AG_OK)
            y = NULL;
        if (n) {
            n->p.layer_norm.rows = rows;
            n->p.layer_norm.d = d;
            if (ag__save(n, 0, xc) != AG_OK || ag__save(n, 1, mean) != AG_OK ||
                ag__save(n, 2, rstd) != AG_OK || (wc && ag__save(n, 3, wc) != AG_OK))
                y = NULL;
        }
    }
    return ag__done(y);
}
