/* Softmax, log-softmax and cross entropy over the last axis of contiguous
 * [rows, cols] views (kernels/softmax.cl), with the CPU backend's rules
 * (backends/cpu/cpu_softmax.c): a NaN makes its row NaN, a label outside
 * [0, C) makes its loss and gradient row NaN. */
#include "ocl.h"

static int64_t pow2_ceil(int64_t n)
{
    int64_t p = 1;
    while (p < n) p *= 2;
    return p;
}

/* Dense row-major, size-1 axes aside; an empty view has no layout to check. */
static bool is_contiguous(const ag_view *v)
{
    if (ocl_numel(v) == 0) return true;
    int64_t expect = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->shape[d] == 1) continue;
        if (v->stride[d] != expect) return false;
        expect *= v->shape[d];
    }
    return true;
}

static ag_status check_dense(const char *op, const char *what, const ag_view *v, cl_int *off)
{
    ag_status s = ocl_check_view(op, what, v, AG_F32);
    if (s != AG_OK) return s;
    if (!is_contiguous(v))
        return ag_set_error(AG_ERR_ARG, "opencl %s: %s is not contiguous", op, what);
    return ocl_offset(op, v, off);
}

/* b has a's element count and last axis */
static ag_status check_like(const char *op, const char *what, const ag_view *a, const ag_view *b)
{
    int64_t na = ocl_numel(a), nb = ocl_numel(b);
    int64_t ca = a->ndim ? a->shape[a->ndim - 1] : 1, cb = b->ndim ? b->shape[b->ndim - 1] : 1;
    if (na != nb || ca != cb) {
        char sa[160], sb[160];
        ag_view_shape_str(a, sa, sizeof sa);
        ag_view_shape_str(b, sb, sizeof sb);
        return ag_set_error(AG_ERR_SHAPE, "opencl %s: %s has shape %s, expected %s like the others",
                            op, what, sb, sa);
    }
    return AG_OK;
}

/* Items per row (a power of two) and rows per group: about four columns an
 * item, more items while the device would idle, one group per row once rows
 * are wide. */
static void row_layout(const ocl_ctx *c, int64_t rows, int64_t cols, size_t *tpr, size_t *local,
                       size_t *groups)
{
    int64_t wg = (int64_t)ocl_reduce_wg(c);
    int64_t cu = c->compute_units ? (int64_t)c->compute_units : 1;
    int64_t most = pow2_ceil(cols > 0 ? cols : 1);
    if (most > wg) most = wg;
    int64_t t = pow2_ceil(cols > 4 ? (cols + 3) / 4 : 1);
    if (t > most) t = most;
    while (t < most && rows * t < cu * 4 * wg) t *= 2;
    int64_t rpg = wg / t;
    if (rpg > rows) rpg = rows > 0 ? rows : 1;
    *tpr = (size_t)t;
    *local = (size_t)(t * rpg);
    *groups = (size_t)((rows + rpg - 1) / rpg);
}

static void rows_cols(const ag_view *v, int64_t *rows, int64_t *cols)
{
    *cols = v->ndim ? v->shape[v->ndim - 1] : 1;
    *rows = *cols ? ocl_numel(v) / *cols : 0;
}

ag_status ocl_softmax(void *ctx, bool log, const ag_view *y, const ag_view *x)
{
    ocl_ctx *c = ctx;
    const char *op = log ? "log_softmax" : "softmax";
    cl_int xoff, yoff;
    ag_status s = check_dense(op, "x", x, &xoff);
    if (s == AG_OK) s = check_dense(op, "y", y, &yoff);
    if (s == AG_OK) s = check_like(op, "y", x, y);
    if (s != AG_OK) return s;
    int64_t rows, cols;
    rows_cols(x, &rows, &cols);
    if (rows == 0) return AG_OK;
    size_t tpr, local, groups;
    row_layout(c, rows, cols, &tpr, &local, &groups);
    cl_int lg = log, r = (cl_int)rows, n = (cl_int)cols, t = (cl_int)tpr;
    return ocl_run_groups(c, "softmax", "softmax_fw", groups, local,
                          OCL_ARGS(OA(lg), OA(r), OA(n), OA(t), OA(xoff), OA(yoff),
                                   OA(x->buf->mem), OA(y->buf->mem),
                                   OA_LOCAL(local * sizeof(cl_float))));
}

ag_status ocl_softmax_backward(void *ctx, bool log, const ag_view *dx, const ag_view *dy,
                               const ag_view *y)
{
    ocl_ctx *c = ctx;
    const char *op = log ? "log_softmax_backward" : "softmax_backward";
    cl_int dxoff, dyoff, yoff;
    ag_status s = check_dense(op, "dx", dx, &dxoff);
    if (s == AG_OK) s = check_dense(op, "dy", dy, &dyoff);
    if (s == AG_OK) s = check_dense(op, "y", y, &yoff);
    if (s == AG_OK) s = check_like(op, "dy", y, dy);
    if (s == AG_OK) s = check_like(op, "dx", y, dx);
    if (s != AG_OK) return s;
    int64_t rows, cols;
    rows_cols(y, &rows, &cols);
    if (rows == 0) return AG_OK;
    size_t tpr, local, groups;
    row_layout(c, rows, cols, &tpr, &local, &groups);
    cl_int lg = log, r = (cl_int)rows, n = (cl_int)cols, t = (cl_int)tpr;
    return ocl_run_groups(c, "softmax", "softmax_bw", groups, local,
                          OCL_ARGS(OA(lg), OA(r), OA(n), OA(t), OA(dxoff), OA(dyoff), OA(yoff),
                                   OA(dx->buf->mem), OA(dy->buf->mem), OA(y->buf->mem),
                                   OA_LOCAL(local * sizeof(cl_float))));
}

/* logits (and dlogits) [N, C] contiguous f32, labels int32 [N], a per-row f32 [N];
 * the [N] views may be strided. */
static ag_status ce_check(const char *op, const ag_view *logits, const ag_view *labels,
                          const ag_view *per_row, const ag_view *dlogits, cl_int *xoff,
                          cl_int *loff, cl_int *poff, cl_int *dxoff)
{
    ag_status s = ocl_check_view(op, "logits", logits, AG_F32);
    if (s == AG_OK) s = ocl_check_view(op, "labels", labels, AG_I32);
    if (s == AG_OK) s = ocl_check_view(op, dlogits ? "dloss" : "loss", per_row, AG_F32);
    if (s == AG_OK && dlogits) s = ocl_check_view(op, "dlogits", dlogits, AG_F32);
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
                            "opencl %s: expected logits [N, C], labels [N] and a [N] view; got "
                            "%s, %s and %s",
                            op, sx, sl, sp);
    }
    if (!is_contiguous(logits) || (dlogits && !is_contiguous(dlogits)))
        return ag_set_error(AG_ERR_ARG, "opencl %s: %s is not contiguous", op,
                            is_contiguous(logits) ? "dlogits" : "logits");
    s = ocl_offset(op, logits, xoff);
    if (s == AG_OK) s = ocl_offset(op, labels, loff);
    if (s == AG_OK) s = ocl_offset(op, per_row, poff);
    if (s == AG_OK && dlogits) s = ocl_offset(op, dlogits, dxoff);
    if (s == AG_OK && logits->shape[0] > INT32_MAX)
        return ag_set_error(AG_ERR_UNSUPPORTED, "opencl %s: 2^31 rows or more", op);
    return s;
}

ag_status ocl_cross_entropy(void *ctx, float smoothing, const ag_view *loss, const ag_view *logits,
                            const ag_view *labels)
{
    ocl_ctx *c = ctx;
    cl_int xoff, loff, ooff;
    ag_status s = ce_check("cross_entropy", logits, labels, loss, NULL, &xoff, &loff, &ooff, NULL);
    if (s != AG_OK) return s;
    int64_t rows = logits->shape[0], cols = logits->shape[1];
    if (rows == 0) return AG_OK;
    size_t tpr, local, groups;
    row_layout(c, rows, cols, &tpr, &local, &groups);
    cl_float sm = smoothing;
    cl_int r = (cl_int)rows, n = (cl_int)cols, t = (cl_int)tpr, ls = (cl_int)labels->stride[0],
           os = (cl_int)loss->stride[0];
    return ocl_run_groups(c, "softmax", "cross_entropy_fw", groups, local,
                          OCL_ARGS(OA(sm), OA(r), OA(n), OA(t), OA(xoff), OA(loff), OA(ls),
                                   OA(ooff), OA(os), OA(logits->buf->mem), OA(labels->buf->mem),
                                   OA(loss->buf->mem), OA_LOCAL(local * sizeof(cl_float))));
}

ag_status ocl_cross_entropy_backward(void *ctx, float smoothing, const ag_view *dlogits,
                                     const ag_view *dloss, const ag_view *logits,
                                     const ag_view *labels)
{
    ocl_ctx *c = ctx;
    cl_int xoff, loff, goff, dxoff;
    ag_status s = ce_check("cross_entropy_backward", logits, labels, dloss, dlogits, &xoff, &loff,
                           &goff, &dxoff);
    if (s != AG_OK) return s;
    int64_t rows = logits->shape[0], cols = logits->shape[1];
    if (rows == 0 || cols == 0) return AG_OK;
    size_t tpr, local, groups;
    row_layout(c, rows, cols, &tpr, &local, &groups);
    cl_float sm = smoothing, uni = smoothing / (float)cols;
    cl_int r = (cl_int)rows, n = (cl_int)cols, t = (cl_int)tpr, ls = (cl_int)labels->stride[0],
           gs = (cl_int)dloss->stride[0];
    return ocl_run_groups(c, "softmax", "cross_entropy_bw", groups, local,
                          OCL_ARGS(OA(sm), OA(uni), OA(r), OA(n), OA(t), OA(dxoff), OA(xoff),
                                   OA(loff), OA(ls), OA(goff), OA(gs), OA(dlogits->buf->mem),
                                   OA(logits->buf->mem), OA(labels->buf->mem),
                                   OA(dloss->buf->mem), OA_LOCAL(local * sizeof(cl_float))));
}
