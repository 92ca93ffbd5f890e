/* Softmax, log-softmax and cross entropy over the last axis of contiguous
 * [rows, cols] views (shaders/softmax.glsl), with the CPU backend's rules
 * (backends/cpu/cpu_softmax.c): a NaN makes its row NaN, a label outside
 * [0, C) makes its loss and gradient row NaN. A port of the OpenCL design
 * (backends/opencl/ocl_softmax.c).
 *
 * Where the device has subgroup arithmetic (and AG_VULKAN_PORTABLE is not
 * set), the _sg shader variants fold rows with subgroup operations instead of
 * shared-memory trees when a row's tpr items fill whole subgroups; the layout
 * is the same either way. Row sums may differ from the trees' in the last
 * bits, the row max is the same element. */
#include <stdio.h>

#include "vk.h"

/* Items that keep a device busy: core Vulkan does not report compute units,
 * so this assumes a large GPU (512 groups); extra items cost little elsewhere. */
#define SM_TARGET_GROUPS 512
/* groups per dimension every device accepts; more go to the y dimension */
#define SM_GRID_X 65535

static int64_t pow2_ceil(int64_t n)
{
    int64_t p = 1;
    while (p < n) p *= 2;
    return p;
}

/* Dense row-major, size-1 axes aside; an empty view has no layout to check. */
static bool is_contiguous(const ag_view *v)
{
    if (ag_view_numel(v) == 0) return true;
    int64_t expect = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->shape[d] == 1) continue;
        if (v->stride[d] != expect) return false;
        expect *= v->shape[d];
    }
    return true;
}

static ag_status check_dense(const char *op, const char *what, const ag_view *v, int32_t *off)
{
    ag_status s = ag_check_view("vulkan", op, what, v, AG_F32);
    if (s != AG_OK) return s;
    if (!is_contiguous(v))
        return ag_set_error(AG_ERR_ARG, "vulkan %s: %s is not contiguous", op, what);
    return ag_offset32("vulkan", op, v, off);
}

/* b has a's element count and last axis */
static ag_status check_like(const char *op, const char *what, const ag_view *a, const ag_view *b)
{
    int64_t na = ag_view_numel(a), nb = ag_view_numel(b);
    int64_t ca = a->ndim ? a->shape[a->ndim - 1] : 1, cb = b->ndim ? b->shape[b->ndim - 1] : 1;
    if (na != nb || ca != cb) {
        char sa[160], sb[160];
        ag_view_shape_str(a, sa, sizeof sa);
        ag_view_shape_str(b, sb, sizeof sb);
        return ag_set_error(AG_ERR_SHAPE, "vulkan %s: %s has shape %s, expected %s like the others",
                            op, what, sb, sa);
    }
    return AG_OK;
}

/* Items per row (a power of two, tpr) and rows per group: about four columns
 * an item, more items while the device would idle, one group per row once
 * rows are wide; narrow rows are packed several to a group. */
typedef struct row_plan {
    int64_t tpr, local, groups;
} row_plan;

static row_plan row_layout(const vk_ctx *c, int64_t rows, int64_t cols)
{
    int64_t wg = (int64_t)vk_reduce_wg(c);
    int64_t most = pow2_ceil(cols > 0 ? cols : 1);
    if (most > wg) most = wg;
    int64_t t = pow2_ceil(cols > 4 ? (cols + 3) / 4 : 1);
    if (t > most) t = most;
    while (t < most && rows * t < SM_TARGET_GROUPS * wg) t *= 2;
    int64_t rpg = wg / t;
    if (rpg > rows) rpg = rows > 0 ? rows : 1;
    /* group sizes are specialization constants: powers of two only, so that
     * few pipelines are ever built (wg / t is one already) */
    rpg = pow2_ceil(rpg);
    return (row_plan){t, t * rpg, (rows + rpg - 1) / rpg};
}

/* `name`, or its _sg variant where a row's items fill whole subgroups of the
 * device's fixed subgroup size (the shader checks again that subgroups are
 * full and falls back to the trees if not). */
static ag_status run_rows(vk_ctx *c, const char *name, row_plan rp, const void *params,
                          size_t size, int nbufs, const vk_bind *bufs)
{
    const uint32_t spec[1] = {(uint32_t)rp.local};
    int64_t gx = rp.groups < SM_GRID_X ? rp.groups : SM_GRID_X;
    int64_t gy = (rp.groups + gx - 1) / gx;
    const int64_t sgs = c->subgroup_size;
    char sg_name[48];
    if (c->subgroup_arith && sgs > 1 && rp.local % sgs == 0 && rp.tpr % sgs == 0) {
        snprintf(sg_name, sizeof sg_name, "%s_sg", name);
        name = sg_name;
    }
    return vk_dispatch(c, name, spec, 1, params, size, nbufs, bufs, (uint32_t)gx, (uint32_t)gy, 1);
}

static void rows_cols(const ag_view *v, int64_t *rows, int64_t *cols)
{
    *cols = v->ndim ? v->shape[v->ndim - 1] : 1;
    *rows = *cols ? ag_view_numel(v) / *cols : 0;
}

typedef struct softmax_params {
    int32_t log_, rows, cols, tpr, xoff, yoff;
} softmax_params;

ag_status vk_softmax(void *ctx, bool log, const ag_view *y, const ag_view *x)
{
    vk_ctx *c = ctx;
    const char *op = log ? "log_softmax" : "softmax";
    softmax_params p = {.log_ = log};
    ag_status s = check_dense(op, "x", x, &p.xoff);
    if (s == AG_OK) s = check_dense(op, "y", y, &p.yoff);
    if (s == AG_OK) s = check_like(op, "y", x, y);
    if (s != AG_OK) return s;
    int64_t rows, cols;
    rows_cols(x, &rows, &cols);
    if (rows == 0) return AG_OK;
    row_plan rp = row_layout(c, rows, cols);
    p.rows = (int32_t)rows;
    p.cols = (int32_t)cols;
    p.tpr = (int32_t)rp.tpr;
    return run_rows(c, "softmax_fw", rp, &p, sizeof p, VK_BUFS(x->buf, y->buf));
}

typedef struct softmax_bw_params {
    int32_t log_, rows, cols, tpr, dxoff, dyoff, yoff;
} softmax_bw_params;

ag_status vk_softmax_backward(void *ctx, bool log, const ag_view *dx, const ag_view *dy,
                              const ag_view *y)
{
    vk_ctx *c = ctx;
    const char *op = log ? "log_softmax_backward" : "softmax_backward";
    softmax_bw_params p = {.log_ = log};
    ag_status s = check_dense(op, "dx", dx, &p.dxoff);
    if (s == AG_OK) s = check_dense(op, "dy", dy, &p.dyoff);
    if (s == AG_OK) s = check_dense(op, "y", y, &p.yoff);
    if (s == AG_OK) s = check_like(op, "dy", y, dy);
    if (s == AG_OK) s = check_like(op, "dx", y, dx);
    if (s != AG_OK) return s;
    int64_t rows, cols;
    rows_cols(y, &rows, &cols);
    if (rows == 0) return AG_OK;
    row_plan rp = row_layout(c, rows, cols);
    p.rows = (int32_t)rows;
    p.cols = (int32_t)cols;
    p.tpr = (int32_t)rp.tpr;
    return run_rows(c, "softmax_bw", rp, &p, sizeof p, VK_BUFS(dx->buf, dy->buf, y->buf));
}

/* logits (and dlogits) [N, C] contiguous f32, labels int32 [N], a per-row f32 [N];
 * the [N] views may be strided. */
static ag_status ce_check(const char *op, const ag_view *logits, const ag_view *labels,
                          const ag_view *per_row, const ag_view *dlogits, int32_t *xoff,
                          int32_t *loff, int32_t *poff, int32_t *dxoff)
{
    ag_status s = ag_check_view("vulkan", op, "logits", logits, AG_F32);
    if (s == AG_OK) s = ag_check_view("vulkan", op, "labels", labels, AG_I32);
    if (s == AG_OK) s = ag_check_view("vulkan", op, dlogits ? "dloss" : "loss", per_row, AG_F32);
    if (s == AG_OK && dlogits) s = ag_check_view("vulkan", op, "dlogits", dlogits, AG_F32);
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
                            "vulkan %s: expected logits [N, C], labels [N] and a [N] view; got "
                            "%s, %s and %s",
                            op, sx, sl, sp);
    }
    if (!is_contiguous(logits) || (dlogits && !is_contiguous(dlogits)))
        return ag_set_error(AG_ERR_ARG, "vulkan %s: %s is not contiguous", op,
                            is_contiguous(logits) ? "dlogits" : "logits");
    s = ag_offset32("vulkan", op, logits, xoff);
    if (s == AG_OK) s = ag_offset32("vulkan", op, labels, loff);
    if (s == AG_OK) s = ag_offset32("vulkan", op, per_row, poff);
    if (s == AG_OK && dlogits) s = ag_offset32("vulkan", op, dlogits, dxoff);
    if (s == AG_OK && logits->shape[0] > INT32_MAX)
        return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan %s: 2^31 rows or more", op);
    return s;
}

typedef struct ce_params {
    float sm;
    int32_t rows, cols, tpr, xoff, loff, ls, ooff, os;
} ce_params;

ag_status vk_cross_entropy(void *ctx, float smoothing, const ag_view *loss, const ag_view *logits,
                           const ag_view *labels)
{
    vk_ctx *c = ctx;
    ce_params p = {.sm = smoothing};
    ag_status s = ce_check("cross_entropy", logits, labels, loss, NULL, &p.xoff, &p.loff, &p.ooff,
                           NULL);
    if (s != AG_OK) return s;
    int64_t rows = logits->shape[0], cols = logits->shape[1];
    if (rows == 0) return AG_OK;
    row_plan rp = row_layout(c, rows, cols);
    p.rows = (int32_t)rows;
    p.cols = (int32_t)cols;
    p.tpr = (int32_t)rp.tpr;
    p.ls = (int32_t)labels->stride[0];
    p.os = (int32_t)loss->stride[0];
    return run_rows(c, "cross_entropy_fw", rp, &p, sizeof p,
                    VK_BUFS(logits->buf, labels->buf, loss->buf));
}

typedef struct ce_bw_params {
    float sm, uni;
    int32_t rows, cols, tpr, dxoff, xoff, loff, ls, goff, gs;
} ce_bw_params;

ag_status vk_cross_entropy_backward(void *ctx, float smoothing, const ag_view *dlogits,
                                    const ag_view *dloss, const ag_view *logits,
                                    const ag_view *labels)
{
    vk_ctx *c = ctx;
    ce_bw_params p = {.sm = smoothing};
    ag_status s = ce_check("cross_entropy_backward", logits, labels, dloss, dlogits, &p.xoff,
                           &p.loff, &p.goff, &p.dxoff);
    if (s != AG_OK) return s;
    int64_t rows = logits->shape[0], cols = logits->shape[1];
    if (rows == 0 || cols == 0) return AG_OK;
    row_plan rp = row_layout(c, rows, cols);
    p.uni = smoothing / (float)cols;
    p.rows = (int32_t)rows;
    p.cols = (int32_t)cols;
    p.tpr = (int32_t)rp.tpr;
    p.ls = (int32_t)labels->stride[0];
    p.gs = (int32_t)dloss->stride[0];
    return run_rows(c, "cross_entropy_bw", rp, &p, sizeof p,
                    VK_BUFS(dlogits->buf, logits->buf, labels->buf, dloss->buf));
}
