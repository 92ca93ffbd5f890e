/* Argument checks and 32-bit element-wise layouts shared by the backends (GPU
 * kernels index with int, which is what GPUs do fast). */
#include <math.h>
#include <string.h>

#include <stdio.h>
#include <stdlib.h>

#include "backend.h"

ag_status ag_check_view(const char *backend, const char *op, const char *what, const ag_view *v,
                        ag_dtype dtype)
{
    if (!v || !v->buf || v->ndim < 0 || v->ndim > AG_MAX_DIMS)
        return ag_set_error(AG_ERR_ARG, "%s %s: %s is not a valid view", backend, op, what);
    if (v->dtype != dtype)
        return ag_set_error(AG_ERR_DTYPE, "%s %s: %s is %s, expected %s", backend, op, what,
                            ag_dtype_name(v->dtype), ag_dtype_name(dtype));
    return AG_OK;
}

ag_status ag_ew_check(const char *backend, const char *op, int nops, const ag_view *const *v,
                      int cond_at)
{
    for (int k = 0; k < nops; k++) {
        if (!v[k] || !v[k]->buf || v[k]->ndim < 0 || v[k]->ndim > AG_MAX_DIMS)
            return ag_set_error(AG_ERR_ARG, "%s %s: operand %d is not a valid view", backend, op, k);
        bool ok = v[k]->dtype == AG_F32 || (k == cond_at && v[k]->dtype == AG_I32);
        if (!ok)
            return ag_set_error(AG_ERR_DTYPE, "%s %s: operand %d is %s, expected f32", backend, op,
                                k, ag_dtype_name(v[k]->dtype));
    }
    for (int k = 1; k < nops; k++) {
        bool same = v[k]->ndim == v[0]->ndim;
        for (int d = 0; same && d < v[0]->ndim; d++) same = v[k]->shape[d] == v[0]->shape[d];
        if (!same) {
            char a[160], b[160];
            ag_view_shape_str(v[k], a, sizeof a);
            ag_view_shape_str(v[0], b, sizeof b);
            return ag_set_error(AG_ERR_SHAPE, "%s %s: operand %d has shape %s, output %s", backend,
                                op, k, a, b);
        }
    }
    return AG_OK;
}

bool ag_view_is_contiguous(const ag_view *v)
{
    int64_t want = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && v->stride[d] != want) return false;
        want *= v->shape[d];
    }
    return true;
}

/* Largest element index a view can touch, +1; views never have negative strides. */
static int64_t view_extent(const ag_view *v)
{
    int64_t end = v->offset + 1;
    for (int d = 0; d < v->ndim; d++)
        if (v->shape[d] > 0) end += (v->shape[d] - 1) * (v->stride[d] < 0 ? -v->stride[d] : v->stride[d]);
    return end;
}

static ag_status too_large(const char *backend, const char *op)
{
    return ag_set_error(AG_ERR_UNSUPPORTED,
                        "%s %s: tensor addresses 2^31 elements or more; the %s kernels index "
                        "with 32-bit integers",
                        backend, op, backend);
}

ag_status ag_offset32(const char *backend, const char *op, const ag_view *v, int32_t *off)
{
    if (view_extent(v) > INT32_MAX || ag_view_numel(v) > INT32_MAX) return too_large(backend, op);
    *off = (int32_t)v->offset;
    return AG_OK;
}

ag_status ag_layout32(const char *backend, const char *op, int nops, const ag_view *const *v,
                      ag_shape32 *shape, ag_strides32 *st)
{
    const ag_view *y = v[0];
    int64_t numel = ag_view_numel(y);
    if (numel > INT32_MAX) return too_large(backend, op);
    for (int k = 0; k < nops; k++) {
        if (view_extent(v[k]) > INT32_MAX) return too_large(backend, op);
        st[k].off = (int32_t)v[k]->offset;
        for (int d = 0; d < AG_MAX_DIMS; d++) st[k].s[d] = 0;
    }
    for (int d = 0; d < AG_MAX_DIMS; d++) shape->n[d] = 1;
    int nd = 0;
    for (int d = 0; d < y->ndim; d++) {
        if (y->shape[d] == 1) continue;
        bool merge = nd > 0;
        for (int k = 0; k < nops && merge; k++)
            merge = (int64_t)st[k].s[nd - 1] == v[k]->stride[d] * y->shape[d];
        if (merge) {
            shape->n[nd - 1] *= (int32_t)y->shape[d];
            for (int k = 0; k < nops; k++) st[k].s[nd - 1] = (int32_t)v[k]->stride[d];
        } else {
            shape->n[nd] = (int32_t)y->shape[d];
            for (int k = 0; k < nops; k++) st[k].s[nd] = (int32_t)v[k]->stride[d];
            nd++;
        }
    }
    shape->nd = nd;
    shape->numel = (int32_t)numel;
    return AG_OK;
}

uint32_t ag_fill_bits(ag_dtype dtype, double value)
{
    uint32_t bits;
    if (dtype == AG_F32) {
        float f = (float)value;
        memcpy(&bits, &f, 4);
    } else { /* int32: truncation toward zero, saturating, NaN -> 0 */
        double t = trunc(value);
        int32_t i = t != t ? 0 : t >= 2147483647.0 ? INT32_MAX : t <= -2147483648.0 ? INT32_MIN : (int32_t)t;
        memcpy(&bits, &i, 4);
    }
    return bits;
}

void ag__shape_fmt(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t len = 0;
    len += (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && len < size; d++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (len < size) snprintf(buf + len, size - len, "]");
}

void ag_view_shape_str(const ag_view *v, char *buf, size_t size)
{
    ag__shape_fmt(v->ndim, v->shape, buf, size);
}

/* ---- attention ------------------------------------------------------------------ */

static ag_status attn_view(const char *be, const char *op, const char *what, const ag_view *v,
                           const int64_t want[4], bool unit)
{
    ag_status s = ag_check_view(be, op, what, v, AG_F32);
    if (s != AG_OK) return s;
    if (v->ndim != 4 || v->shape[0] != want[0] || v->shape[1] != want[1] ||
        v->shape[2] != want[2] || v->shape[3] != want[3]) {
        char got[160];
        ag_view_shape_str(v, got, sizeof got);
        return ag_set_error(AG_ERR_SHAPE, "%s %s: %s is %s, expected [%lld, %lld, %lld, %lld]", be,
                            op, what, got, (long long)want[0], (long long)want[1],
                            (long long)want[2], (long long)want[3]);
    }
    if (unit && want[3] > 1 && v->stride[3] != 1)
        return ag_set_error(AG_ERR_ARG, "%s %s: %s needs a unit stride on its last axis", be, op,
                            what);
    return AG_OK;
}

static ag_status attn_rows(const char *be, const char *op, const char *what, const ag_view *v,
                           int64_t n)
{
    ag_status s = ag_check_view(be, op, what, v, AG_F32);
    if (s == AG_OK && (!ag_view_is_contiguous(v) || ag_view_numel(v) != n))
        s = ag_set_error(AG_ERR_SHAPE, "%s %s: %s must be contiguous with %lld elements", be, op,
                         what, (long long)n);
    return s;
}

ag_status ag_attn_check(const char *be, const char *op, const ag_attn_args *a, bool backward,
                        int64_t dims[6])
{
    if (!a || !a->q || !a->k || !a->v || !a->stats || (!backward && !a->o) ||
        (backward && (!a->dout || !a->delta)))
        return ag_set_error(AG_ERR_ARG, "%s %s: NULL arguments", be, op);
    if (a->q->ndim != 4 || a->k->ndim != 4 || a->v->ndim != 4)
        return ag_set_error(AG_ERR_SHAPE, "%s %s: q, k and v must be 4-D views", be, op);
    const int64_t B0 = a->q->shape[0], B1 = a->q->shape[1], L = a->q->shape[2],
                  E = a->q->shape[3], S = a->k->shape[2], Ev = a->v->shape[3];
    const int64_t sq[4] = {B0, B1, L, E}, sk[4] = {B0, B1, S, E}, sv[4] = {B0, B1, S, Ev},
                  so[4] = {B0, B1, L, Ev}, sm[4] = {B0, B1, L, S};
    ag_status s = attn_view(be, op, "q", a->q, sq, true);
    if (s == AG_OK) s = attn_view(be, op, "k", a->k, sk, true);
    if (s == AG_OK) s = attn_view(be, op, "v", a->v, sv, true);
    if (s == AG_OK && !backward) s = attn_view(be, op, "o", a->o, so, true);
    if (s == AG_OK && a->mask) s = attn_view(be, op, "mask", a->mask, sm, false);
    if (s == AG_OK) s = attn_rows(be, op, "stats", a->stats, 2 * B0 * B1 * L);
    if (s == AG_OK && backward) {
        s = attn_view(be, op, "dout", a->dout, so, true);
        if (s == AG_OK) s = attn_rows(be, op, "delta", a->delta, B0 * B1 * L);
        if (s == AG_OK && a->dq) s = attn_view(be, op, "dq", a->dq, sq, true);
        if (s == AG_OK && a->dk) s = attn_view(be, op, "dk", a->dk, sk, true);
        if (s == AG_OK && a->dv) s = attn_view(be, op, "dv", a->dv, sv, true);
    }
    if (s != AG_OK) return s;
    if (L <= 0 || S <= 0 || B0 <= 0 || B1 <= 0)
        return ag_set_error(AG_ERR_SHAPE, "%s %s: needs at least one head, query and key", be, op);
    if (!(a->dropout >= 0.0f && a->dropout < 1.0f) || !isfinite(a->scale))
        return ag_set_error(AG_ERR_ARG, "%s %s: dropout %g must be in [0, 1) and scale finite", be,
                            op, (double)a->dropout);
    const int64_t d[6] = {B0, B1, L, S, E, Ev};
    for (int i = 0; i < 6; i++) dims[i] = d[i];
    return AG_OK;
}
