/* Scaled dot-product attention, torch.nn.functional.scaled_dot_product_attention's
 * semantics: softmax(q k^T scale + mask) v.
 *
 * One node with the backends' fused kernels (backend.h, ag_attn_args): forward
 * keeps each row's maximum and sum and backward rebuilds the weights from q and k,
 * so no [..., L, S] matrix outlives the forward pass. The composed version (two
 * batched GEMMs, softmax, dropout) remains for what the kernels do not take: a
 * mask that needs a gradient, empty shapes, dropout 1, more batch axes than two
 * groups can describe, and devices whose backend has no kernel or refuses the
 * shapes. */
#include <math.h>
#include <stdlib.h>

#include "core.h"

/* ---- composed ------------------------------------------------------------------ */

/* [L, S]: 1 where key j <= query i may be seen, 0 above (top-left aligned, as
 * PyTorch). */
static ag_tensor *causal_keep(ag_device *dev, int64_t L, int64_t S)
{
    if (L > 0 && S > (int64_t)(SIZE_MAX / sizeof(float)) / L)
        return ag_set_error(AG_ERR_OOM, "attention: a %lld x %lld causal mask is too large",
                            (long long)L, (long long)S), NULL;
    float *h = malloc((size_t)(L * S > 0 ? L * S : 1) * sizeof *h);
    if (!h) return ag_set_error(AG_ERR_OOM, "attention: out of host memory"), NULL;
    for (int64_t i = 0; i < L; i++)
        for (int64_t j = 0; j < S; j++) h[i * S + j] = j <= i ? 1.0f : 0.0f;
    ag_tensor *t = ag__empty_on(dev, AG_F32, 2, (int64_t[]){L, S});
    if (t && ag_from_host(t, h, (size_t)(L * S) * sizeof *h) != AG_OK) t = NULL; /* the scope frees it */
    free(h);
    return t;
}

static ag_tensor *composed(ag_tensor *q, ag_tensor *k, ag_tensor *v, ag_tensor *attn_mask,
                           float dropout_p, bool is_causal, float sc)
{
    int64_t L = q->shape[q->ndim - 2], S = k->shape[k->ndim - 2];
    ag_tensor *s = ag_matmul(q, ag_transpose(k, k->ndim - 2, k->ndim - 1));
    if (s) s = ag_mul_scalar(s, sc);
    if (s && attn_mask) s = ag_add(s, attn_mask);
    if (s && is_causal) { /* masked scores become -inf, even NaN ones (PyTorch's masked_fill) */
        const float minus_inf = -INFINITY;
        ag_tensor *keep = causal_keep(ag__dev(q), L, S), *ninf = NULL;
        if (keep && (ninf = ag__empty_on(ag__dev(q), AG_F32, 0, NULL)) &&
            ag_from_host(ninf, &minus_inf, sizeof minus_inf) != AG_OK)
            ninf = NULL;
        s = keep && ninf ? ag_where(keep, s, ninf) : NULL;
    }
    ag_tensor *w = s ? ag_softmax(s, s->ndim - 1) : NULL;
    if (w && dropout_p > 0.0f) w = ag_dropout(w, dropout_p, true);
    return w ? ag_matmul(w, v) : NULL;
}

/* ---- fused ---------------------------------------------------------------------- */

enum { AQ, AK, AV, AM, AN_IN };

/* The operands as the kernels see them: the broadcast batch axes split into two
 * groups [0, split) and [split, nb), each of which every operand steps through
 * with one stride. */
typedef struct attn_plan {
    int nb, split;
    int64_t bs[AG_MAX_DIMS];        /* broadcast batch shape */
    int64_t B0, B1, L, S, E, Ev;
    ag_tensor *t[AN_IN];            /* q, k, v, mask, or contiguous copies */
    /* o laid out [..., L, heads, Ev] (heads: the last batch axis) and returned
     * as its [..., heads, L, Ev] view, as PyTorch's fused kernels do: merging
     * the heads back, transpose + reshape, then copies nothing */
    bool heads_last;
} attn_plan;

/* o's strides in the heads-last layout */
static void heads_last_strides(const attn_plan *P, int64_t *st)
{
    const int nb = P->nb;
    const int64_t H = P->bs[nb - 1];
    st[nb + 1] = 1;
    st[nb - 1] = P->Ev;
    st[nb] = H * P->Ev;
    for (int64_t d = nb - 2, s = P->L * H * P->Ev; d >= 0; d--) {
        st[d] = s;
        s *= P->bs[d];
    }
}

/* The stride one group of batch axes steps with, if it has one. */
static bool group_stride(const ag_view *v, const int64_t *bs, int a, int b, int64_t *stride)
{
    int64_t st = 0, expect = 0;
    bool have = false;
    for (int d = b - 1; d >= a; d--) {
        if (bs[d] == 1) continue;
        if (!have) {
            st = v->stride[d];
            have = true;
        } else if (v->stride[d] != expect) {
            return false;
        }
        expect = v->stride[d] * bs[d];
    }
    *stride = st;
    return true;
}

/* t's view broadcast to [bs..., rows, cols] */
static ag_view full_view(const attn_plan *P, const ag_tensor *t, int64_t rows, int64_t cols)
{
    int64_t sh[AG_MAX_DIMS];
    for (int d = 0; d < P->nb; d++) sh[d] = P->bs[d];
    sh[P->nb] = rows;
    sh[P->nb + 1] = cols;
    return ag__view_bcast(t, P->nb + 2, sh);
}

static void op_dims(const attn_plan *P, int i, int64_t *rows, int64_t *cols)
{
    const int64_t r[AN_IN] = {P->L, P->S, P->S, P->L}, c[AN_IN] = {P->E, P->E, P->Ev, P->S};
    *rows = r[i];
    *cols = c[i];
}

/* The 4-D kernel view of a [bs..., rows, cols] view under split s. */
static bool view4(const attn_plan *P, const ag_view *full, int s, ag_view *out)
{
    int64_t s0, s1;
    if (!group_stride(full, P->bs, 0, s, &s0) || !group_stride(full, P->bs, s, P->nb, &s1))
        return false;
    ag_view v = *full;
    v.ndim = 4;
    v.shape[0] = P->B0;
    v.shape[1] = P->B1;
    v.shape[2] = full->shape[P->nb];
    v.shape[3] = full->shape[P->nb + 1];
    v.stride[0] = s0;
    v.stride[1] = s1;
    v.stride[2] = full->stride[P->nb];
    v.stride[3] = full->stride[P->nb + 1];
    *out = v;
    return true;
}

static bool split_fits(attn_plan *P, int s)
{
    P->B0 = ag__numel_shape(s, P->bs);
    P->B1 = ag__numel_shape(P->nb - s, P->bs + s);
    for (int i = 0; i < AN_IN; i++) {
        if (!P->t[i]) continue;
        int64_t r, c;
        op_dims(P, i, &r, &c);
        ag_view full = full_view(P, P->t[i], r, c), v4;
        if (!view4(P, &full, s, &v4) || v4.stride[3] != 1) return false;
    }
    if (P->heads_last) {
        ag_view o = {.ndim = P->nb + 2}, v4;
        for (int d = 0; d < P->nb; d++) o.shape[d] = P->bs[d];
        o.shape[P->nb] = P->L;
        o.shape[P->nb + 1] = P->Ev;
        heads_last_strides(P, o.stride);
        if (!view4(P, &o, s, &v4)) return false;
    }
    P->split = s;
    return true;
}

/* Fills P for the fused kernels; false when they cannot take these operands
 * (no error set) or on an error (set). */
static bool attn_plan_make(attn_plan *P, ag_tensor *q, ag_tensor *k, ag_tensor *v,
                           ag_tensor *mask, bool *failed)
{
    *failed = false;
    *P = (attn_plan){.L = q->shape[q->ndim - 2], .E = q->shape[q->ndim - 1],
                     .S = k->shape[k->ndim - 2], .Ev = v->shape[v->ndim - 1],
                     .t = {q, k, v, mask}};
    int nb = 0;
    int64_t bs[AG_MAX_DIMS];
    const ag_tensor *ops[AN_IN] = {q, k, v, mask};
    for (int i = 0; i < AN_IN; i++) {
        if (!ops[i]) continue;
        int n2;
        int64_t out[AG_MAX_DIMS];
        if (!ag__broadcast_shape("scaled_dot_product_attention", nb, bs, ops[i]->ndim - 2,
                                 ops[i]->shape, &n2, out))
            return !(*failed = true);
        /* a mask that widens the batch shape widens the result: composed */
        if (i == AM && (n2 != nb || ag__numel_shape(n2, out) != ag__numel_shape(nb, bs)))
            return false;
        nb = n2;
        for (int d = 0; d < nb; d++) bs[d] = out[d];
    }
    P->nb = nb;
    for (int d = 0; d < nb; d++) P->bs[d] = bs[d];
    if (P->L == 0 || P->S == 0 || P->Ev == 0 || ag__numel_shape(nb, bs) == 0) return false;
    for (int hl = nb >= 2; hl >= 0; hl--) {
        P->heads_last = hl;
        for (int s = 0; s <= nb; s++)
            if (split_fits(P, s)) return true;
    }
    /* no split serves every operand: dense copies of the broadcast operands */
    for (int i = 0; i < AN_IN; i++) {
        if (!P->t[i]) continue;
        int64_t r, c, sh[AG_MAX_DIMS];
        op_dims(P, i, &r, &c);
        ag_view full = full_view(P, P->t[i], r, c);
        for (int d = 0; d < full.ndim; d++) sh[d] = full.shape[d];
        ag_tensor *a = ag__alias(P->t[i], full.ndim, sh, full.stride, full.offset);
        P->t[i] = a ? ag__contiguous(a) : NULL;
        if (!P->t[i]) return !(*failed = true);
    }
    return split_fits(P, 0);
}

static ag_view plan_view(const attn_plan *P, int i)
{
    int64_t r, c;
    op_dims(P, i, &r, &c);
    ag_view full = full_view(P, P->t[i], r, c), v4;
    view4(P, &full, P->split, &v4);
    return v4;
}

/* A contiguous [bs..., rows, cols] tensor and its kernel view. */
static ag_tensor *plan_out(const attn_plan *P, ag_device *dev, int64_t rows, int64_t cols,
                           ag_view *v4)
{
    int64_t sh[AG_MAX_DIMS];
    for (int d = 0; d < P->nb; d++) sh[d] = P->bs[d];
    sh[P->nb] = rows;
    sh[P->nb + 1] = cols;
    ag_tensor *t = ag__empty_on(dev, AG_F32, P->nb + 2, sh);
    if (t) {
        ag_view full = ag__view(t);
        view4(P, &full, P->split, v4);
    }
    return t;
}

/* the output: plan_out's, or heads-last storage seen as [..., heads, L, Ev] */
static ag_tensor *plan_o(const attn_plan *P, ag_device *dev, ag_view *v4)
{
    if (!P->heads_last) return plan_out(P, dev, P->L, P->Ev, v4);
    int64_t phys[AG_MAX_DIMS], sh[AG_MAX_DIMS], st[AG_MAX_DIMS];
    const int nb = P->nb;
    for (int d = 0; d < nb; d++) sh[d] = phys[d] = P->bs[d];
    phys[nb - 1] = P->L;
    phys[nb] = P->bs[nb - 1];
    phys[nb + 1] = sh[nb + 1] = P->Ev;
    sh[nb] = P->L;
    heads_last_strides(P, st);
    ag_tensor *buf = ag__empty_on(dev, AG_F32, nb + 2, phys);
    ag_tensor *t = buf ? ag__alias(buf, nb + 2, sh, st, buf->offset) : NULL;
    if (t) {
        ag_view full = ag__view(t);
        view4(P, &full, P->split, v4);
    }
    return t;
}

/* [B0, B1, L, per] over a contiguous tensor */
static ag_view rows_view(const attn_plan *P, const ag_tensor *t, int64_t per)
{
    ag_view v = ag__view(t);
    v.ndim = 4;
    v.shape[0] = P->B0;
    v.shape[1] = P->B1;
    v.shape[2] = P->L;
    v.shape[3] = per;
    v.stride[3] = 1;
    v.stride[2] = per;
    v.stride[1] = P->L * per;
    v.stride[0] = P->B1 * P->L * per;
    return v;
}

/* saved: 0 = the rows' statistics; inputs q, k, v (and the mask) are read again. */
static ag_status attn_bwd(ag_node *n, ag_tensor *gy, ag_tensor **gx)
{
    ag_tensor *in[AN_IN] = {n->in[0], n->in[1], n->in[2], n->nin > 3 ? n->in[3] : NULL};
    attn_plan P;
    bool failed;
    if (!attn_plan_make(&P, in[0], in[1], in[2], in[3], &failed))
        return failed ? ag_last_status()
                      : ag_set_error(AG_ERR_STATE, "scaled_dot_product_attention backward: "
                                                   "the inputs no longer fit the fused kernel");
    ag_device *dev = ag__dev(in[0]);
    /* dout as it comes when it fits the split (heads-last, typically), else dense */
    ag_view fg = full_view(&P, gy, P.L, P.Ev), vg;
    if (!view4(&P, &fg, P.split, &vg) || (vg.stride[3] != 1 && P.Ev > 1)) {
        ag_tensor *g = ag__contiguous(gy);
        if (!g) return ag_last_status();
        fg = full_view(&P, g, P.L, P.Ev);
        view4(&P, &fg, P.split, &vg);
    }
    ag_tensor *delta = ag__empty_on(dev, AG_F32, 1, (int64_t[]){P.B0 * P.B1 * P.L});
    if (!delta) return ag_last_status();
    ag_view vq = plan_view(&P, AQ), vk = plan_view(&P, AK), vv = plan_view(&P, AV), vm,
            vl = rows_view(&P, n->saved[0], 2), vd = rows_view(&P, delta, 1), vdq, vdk, vdv;
    if (in[3]) vm = plan_view(&P, AM);
    ag_tensor *dq = in[0]->requires_grad ? plan_out(&P, dev, P.L, P.E, &vdq) : NULL;
    ag_tensor *dk = in[1]->requires_grad ? plan_out(&P, dev, P.S, P.E, &vdk) : NULL;
    ag_tensor *dv = in[2]->requires_grad ? plan_out(&P, dev, P.S, P.Ev, &vdv) : NULL;
    if ((in[0]->requires_grad && !dq) || (in[1]->requires_grad && !dk) ||
        (in[2]->requires_grad && !dv))
        return ag_last_status();
    ag_attn_args a = {.scale = n->p.attention.scale, .dropout = n->p.attention.dropout,
                      .causal = n->p.attention.causal,
                      .rng = {.seed = n->p.attention.seed, .stream = n->p.attention.stream,
                              .dist = AG_RAND_UNIFORM, .a = 0.0f, .b = 1.0f},
                      .q = &vq, .k = &vk, .v = &vv, .mask = in[3] ? &vm : NULL,
                      .stats = &vl, .dout = &vg, .delta = &vd, .dq = dq ? &vdq : NULL,
                      .dk = dk ? &vdk : NULL, .dv = dv ? &vdv : NULL};
    ag_status s = AG_LAUNCH(dev, attention_backward, &a);
    if (s != AG_OK) return s;
    ag_tensor *full[3] = {dq, dk, dv};
    for (int i = 0; i < 3; i++) {
        gx[i] = full[i] ? ag__reduce_to(full[i], in[i]->ndim, in[i]->shape) : NULL;
        if (full[i] && !gx[i]) return ag_last_status();
    }
    if (in[3]) gx[3] = NULL;
    return AG_OK;
}

/* The fused op; NULL with *fallback set when the kernels do not take it. */
static ag_tensor *fused(ag_tensor *q, ag_tensor *k, ag_tensor *v, ag_tensor *mask,
                        float dropout_p, bool is_causal, float sc, bool *fallback)
{
    *fallback = true;
    ag_device *dev = ag__dev(q);
    if (!dev->i->attention || !dev->i->attention_backward || dropout_p >= 1.0f ||
        (mask && mask->requires_grad && ag__grad_mode()))
        return NULL;
    attn_plan P;
    bool failed;
    if (!attn_plan_make(&P, q, k, v, mask, &failed)) {
        *fallback = !failed;
        return NULL;
    }
    *fallback = false;
    ag_view vq = plan_view(&P, AQ), vk = plan_view(&P, AK), vv = plan_view(&P, AV), vm, vo, vl;
    if (mask) vm = plan_view(&P, AM);
    ag_tensor *o = plan_o(&P, dev, &vo);
    ag_tensor *stats = ag__empty_on(dev, AG_F32, 1, (int64_t[]){P.B0 * P.B1 * P.L * 2});
    if (!o || !stats) return NULL;
    vl = rows_view(&P, stats, 2);
    ag_attn_args a = {.scale = sc, .dropout = dropout_p, .causal = is_causal,
                      .rng = {.dist = AG_RAND_UNIFORM, .a = 0.0f, .b = 1.0f},
                      .q = &vq, .k = &vk, .v = &vv, .mask = mask ? &vm : NULL, .o = &vo, .stats = &vl};
    /* the stream is taken only once the kernel ran: a refusal leaves it to the
     * composed path's dropout, so the mask is the same either way */
    if (dropout_p > 0.0f) ag__rng_peek(&a.rng.seed, &a.rng.stream);
    ag_status s = AG_LAUNCH(dev, attention, &a);
    if (s == AG_ERR_UNSUPPORTED) { /* the device's limits: composed */
        ag_clear_error();
        *fallback = true;
        return NULL;
    }
    if (s != AG_OK) return NULL;
    if (dropout_p > 0.0f) ag__rng_next(&a.rng.seed, &a.rng.stream);
    ag_tensor *in[AN_IN] = {q, k, v, mask};
    ag_node *n = NULL;
    if (ag__record(o, "scaled_dot_product_attention", attn_bwd, mask ? 4 : 3, in, &n) != AG_OK)
        return NULL;
    if (n) {
        n->p.attention.scale = sc;
        n->p.attention.dropout = dropout_p;
        n->p.attention.causal = is_causal;
        n->p.attention.seed = a.rng.seed;
        n->p.attention.stream = a.rng.stream;
        for (int i = 0; i < (mask ? 4 : 3); i++) ag__save_input(n, i);
        if (ag__save(n, 0, stats) != AG_OK) return NULL;
    }
    return o;
}

ag_tensor *ag_scaled_dot_product_attention(ag_tensor *q, ag_tensor *k, ag_tensor *v,
                                           ag_tensor *attn_mask, float dropout_p, bool is_causal,
                                           float scale)
{
    static const char op[] = "scaled_dot_product_attention";
    if (!ag__check(op, q, AG_F32) || !ag__check(op, k, AG_F32) || !ag__check(op, v, AG_F32))
        return NULL;
    if (attn_mask && !ag__check(op, attn_mask, AG_F32)) return NULL;
    if (!ag__same_device(op, q, k) || !ag__same_device(op, q, v) ||
        (attn_mask && !ag__same_device(op, q, attn_mask)))
        return NULL;
    if (q->ndim < 2 || k->ndim < 2 || v->ndim < 2)
        return ag_set_error(AG_ERR_SHAPE, "%s: q, k and v need at least 2 dims ([..., L, E]), got %d, %d, %d",
                            op, q->ndim, k->ndim, v->ndim), NULL;
    int64_t L = q->shape[q->ndim - 2], E = q->shape[q->ndim - 1];
    int64_t S = k->shape[k->ndim - 2];
    if (k->shape[k->ndim - 1] != E)
        return ag_set_error(AG_ERR_SHAPE, "%s: q has %lld features, k %lld", op, (long long)E,
                            (long long)k->shape[k->ndim - 1]), NULL;
    if (v->shape[v->ndim - 2] != S)
        return ag_set_error(AG_ERR_SHAPE, "%s: k has %lld positions, v %lld", op, (long long)S,
                            (long long)v->shape[v->ndim - 2]), NULL;
    if (attn_mask && (attn_mask->ndim < 2 || attn_mask->shape[attn_mask->ndim - 2] != L ||
                      attn_mask->shape[attn_mask->ndim - 1] != S)) {
        int sizes_ok = attn_mask->ndim >= 2 &&
                       (attn_mask->shape[attn_mask->ndim - 2] == 1 || attn_mask->shape[attn_mask->ndim - 2] == L) &&
                       (attn_mask->shape[attn_mask->ndim - 1] == 1 || attn_mask->shape[attn_mask->ndim - 1] == S);
        if (!sizes_ok) {
            char sm[160];
            ag__shape_fmt(attn_mask->ndim, attn_mask->shape, sm, sizeof sm);
            return ag_set_error(AG_ERR_SHAPE, "%s: attn_mask %s does not broadcast to [..., %lld, %lld]",
                                op, sm, (long long)L, (long long)S), NULL;
        }
    }
    if (E == 0 && scale == 0.0f)
        return ag_set_error(AG_ERR_SHAPE, "%s: q and k have no features (the default scale is 1 / sqrt(0))",
                            op), NULL;
    if (!isfinite(scale))
        return ag_set_error(AG_ERR_ARG, "%s: scale %g is not finite", op, (double)scale), NULL;
    if (!(dropout_p >= 0.0f && dropout_p <= 1.0f))
        return ag_set_error(AG_ERR_ARG, "%s: dropout_p = %g is outside [0, 1]", op, (double)dropout_p), NULL;
    if (attn_mask && is_causal) /* as PyTorch: one or the other */
        return ag_set_error(AG_ERR_ARG, "%s: give attn_mask or is_causal, not both", op), NULL;

    const float sc = scale != 0.0f ? scale : (float)(1.0 / sqrt((double)E));
    ag_scope_begin();
    bool fallback;
    ag_tensor *y = fused(q, k, v, attn_mask, dropout_p, is_causal, sc, &fallback);
    if (!y && fallback) y = composed(q, k, v, attn_mask, dropout_p, is_causal, sc);
    return ag__done(y);
}
