/* SGEMM on [B, M, K] x [B, K, N] views: the GPU backends' checks and the
 * normalised description of the product their kernels run. */
#include "plan.h"

static bool as_mat3(const ag_view *v, ag_mat3 *m)
{
    if (v->ndim == 2) {
        *m = (ag_mat3){1, v->shape[0], v->shape[1], 0, v->stride[0], v->stride[1]};
        return true;
    }
    if (v->ndim == 3) {
        *m = (ag_mat3){v->shape[0],  v->shape[1],  v->shape[2],
                       v->stride[0], v->stride[1], v->stride[2]};
        return true;
    }
    return false;
}

ag_status ag_gemm_check(const char *backend, const ag_view *c, const ag_view *a,
                        const ag_view *b, ag_mat3 *mc, ag_mat3 *ma, ag_mat3 *mb)
{
    ag_status s;
    if ((s = ag_check_view(backend, "gemm", "a", a, AG_F32)) != AG_OK ||
        (s = ag_check_view(backend, "gemm", "b", b, AG_F32)) != AG_OK ||
        (s = ag_check_view(backend, "gemm", "c", c, AG_F32)) != AG_OK)
        return s;
    bool ok = as_mat3(a, ma) && as_mat3(b, mb) && as_mat3(c, mc);
    /* a batch of one broadcasts like a batch stride of 0 */
    if (ok && ma->nb == 1) ma->bs = 0;
    if (ok && mb->nb == 1) mb->bs = 0;
    ok = ok && (ma->nb == mc->nb || ma->nb == 1) && (mb->nb == mc->nb || mb->nb == 1) &&
         ma->rows == mc->rows && mb->cols == mc->cols && ma->cols == mb->rows;
    if (!ok) {
        char sa[160], sb[160], sc[160];
        ag_view_shape_str(a, sa, sizeof sa);
        ag_view_shape_str(b, sb, sizeof sb);
        ag_view_shape_str(c, sc, sizeof sc);
        return ag_set_error(AG_ERR_SHAPE, "%s gemm: cannot multiply %s by %s into %s", backend,
                            sa, sb, sc);
    }
    /* the kernels write rows of C with unit stride */
    if (mc->cols > 1 && mc->cs != 1)
        return ag_set_error(AG_ERR_ARG, "%s gemm: the output's last axis must be contiguous",
                            backend);
    return AG_OK;
}

/* A size-1 axis may carry any stride: give it one that makes the other axis
 * the leading one, so that an operand with one row or column has a unit
 * stride like every other (and one that CLBlast accepts). */
static void unit_axis(int64_t rows, int64_t cols, int64_t *rs, int64_t *cs)
{
    if (rows == 1) *rs = *cs == 1 ? cols : 1;
    else if (cols == 1) *cs = *rs == 1 ? rows : 1;
}

ag_status ag_gemm_plan(const char *backend, float alpha, float beta, const ag_view *c,
                       const ag_view *a, const ag_view *b, ag_gemm_desc *d, ag_gemm_path *path)
{
    ag_status s;
    *path = AG_GEMM_NONE;
    ag_mat3 ma, mb, mc;
    if ((s = ag_gemm_check(backend, c, a, b, &mc, &ma, &mb)) != AG_OK) return s;
    if (mc.nb == 0 || mc.rows == 0 || mc.cols == 0) return AG_OK;
    int32_t off;
    if ((s = ag_offset32(backend, "gemm", a, &off)) != AG_OK ||
        (s = ag_offset32(backend, "gemm", b, &off)) != AG_OK ||
        (s = ag_offset32(backend, "gemm", c, &off)) != AG_OK)
        return s;
    if (mc.nb > INT32_MAX || mc.rows > INT32_MAX - 256 || mc.cols > INT32_MAX - 256 ||
        ma.cols > INT32_MAX - 256)
        return ag_set_error(AG_ERR_UNSUPPORTED, "%s gemm: sizes beyond 32-bit indexing", backend);

    *d = (ag_gemm_desc){.nb = mc.nb, .m = mc.rows, .n = mc.cols, .k = ma.cols,
                        .a_off = a->offset, .a_rs = ma.rs, .a_cs = ma.cs, .a_bs = ma.bs,
                        .b_off = b->offset, .b_rs = mb.rs, .b_cs = mb.cs, .b_bs = mb.bs,
                        .c_off = c->offset, .c_rs = mc.rs, .c_bs = mc.nb > 1 ? mc.bs : 0,
                        .alpha = alpha, .beta = beta,
                        .a = a->buf, .b = b->buf, .c = c->buf};
    unit_axis(d->m, d->k, &d->a_rs, &d->a_cs);
    unit_axis(d->k, d->n, &d->b_rs, &d->b_cs);
    if (d->m == 1) d->c_rs = d->n;
    /* as in BLAS, alpha == 0 does not touch A and B */
    if (d->k == 0 || alpha == 0.0f) {
        if ((double)d->nb * (double)d->m * (double)d->n > (double)INT32_MAX)
            return ag_set_error(AG_ERR_UNSUPPORTED, "%s gemm: output of 2^31 elements or more",
                                backend);
        *path = AG_GEMM_SCALE;
        return AG_OK;
    }
    /* A shared B across the batch with the batches of A and C stacked as rows:
     * one product of nb * M rows (linear layers on [B, T, in] inputs). */
    if (d->nb > 1 && d->b_bs == 0 && d->a_bs == d->m * d->a_rs && d->c_bs == d->m * d->c_rs &&
        d->m * d->nb <= INT32_MAX - 256) {
        d->m *= d->nb;
        d->nb = 1;
        d->a_bs = d->c_bs = 0;
    }
    if (d->nb == 1) d->a_bs = d->b_bs = d->c_bs = 0;
    *path = AG_GEMM_PRODUCT;
    return AG_OK;
}

ag_gemm_dims32 ag_gemm_dims32_of(const ag_gemm_desc *d)
{
    return (ag_gemm_dims32){.m = (int32_t)d->m, .n = (int32_t)d->n, .k = (int32_t)d->k,
                            .a_off = (int32_t)d->a_off, .a_rs = (int32_t)d->a_rs,
                            .a_cs = (int32_t)d->a_cs, .a_bs = (int32_t)d->a_bs,
                            .b_off = (int32_t)d->b_off, .b_rs = (int32_t)d->b_rs,
                            .b_cs = (int32_t)d->b_cs, .b_bs = (int32_t)d->b_bs,
                            .c_off = (int32_t)d->c_off, .c_rs = (int32_t)d->c_rs,
                            .c_bs = (int32_t)d->c_bs};
}
