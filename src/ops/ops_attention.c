/* Scaled dot-product attention, torch.nn.functional.scaled_dot_product_attention's
 * semantics: softmax(q k^T scale + bias) v. This first version composes the
 * existing ops (two batched GEMMs, softmax, dropout), so it runs and
 * differentiates on every backend; it keeps the [..., L, S] weights for the
 * backward pass, which a fused kernel would recompute instead. */
#include <math.h>
#include <stdlib.h>

#include "core.h"

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
    return ag__done(w ? ag_matmul(w, v) : NULL);
}
