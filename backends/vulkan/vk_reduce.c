/* Reductions over strided f32 views: sum, mean, max, min (NaN wins) and
 * argmax/argmin (int32, first index on ties, NaN is the extreme), with the CPU
 * backend's rules (backends/cpu/cpu_reduce.c); a port of the OpenCL design
 * (backends/opencl/ocl_reduce.c).
 *
 * x's axes split into kept axes (the output index space) and reduced axes,
 * each set ordered by decreasing x stride and merged where the layout allows.
 * One shader shape serves every case (shaders/reduce.glsl): a work group covers
 * tx outputs with ty items each, ty items folding a chunk of the reduction
 * serially and then in a shared-memory tree. The split is picked by sizes:
 * long reductions over few outputs get one group per output (ty = the group),
 * many short reductions get one item per output (ty = 1), column-like
 * reductions (a kept axis is the dense one) get tx adjacent outputs per group
 * so that reads coalesce. When outputs are too few to fill the device, or an
 * item's serial run would be long, the reduction is split into chunks whose
 * partial results go to a temporary buffer and are reduced by another pass
 * (the same planner, recursively).
 *
 * Where the device has subgroup arithmetic (and AG_VULKAN_PORTABLE is not
 * set), the _sg shader variants fold each output's ty partial results with
 * subgroup operations instead of the tree, when those ty items fill whole
 * subgroups (ty-first numbering, ty a multiple of the subgroup size). The plan
 * is the same either way: sums may differ from the tree's in the last bits
 * (another association), max, min and the arg reductions pick the very same
 * element. */
#include <stdio.h>

#include "vk.h"

/* elements per item below which a reduction is not worth more items */
#define RED_SER 8
/* longest serial run per item before the reduction is split into chunks (fp32
 * accuracy: the serial part of the sum stays short, the rest is a tree) */
#define RED_MAXSER 256
/* serial run per item above which idle compute units justify a chunked pass */
#define RED_SPLIT_MIN 64
/* outputs per group along a dense kept axis: a 128-byte row */
#define RED_VX 32
/* Work groups that keep a device busy. Core Vulkan does not report compute
 * units; this covers large GPUs, and extra groups cost little elsewhere. */
#define RED_TARGET_GROUPS 512
/* groups per dimension every device accepts; more go to the y dimension */
#define RED_GRID_X 65535

static const char *const red_names[AG_REDUCE_COUNT] = {
    [AG_REDUCE_SUM] = "sum", [AG_REDUCE_MEAN] = "mean", [AG_REDUCE_MAX] = "max",
    [AG_REDUCE_MIN] = "min", [AG_REDUCE_ARGMAX] = "argmax", [AG_REDUCE_ARGMIN] = "argmin",
};

static const char *const red_shaders[AG_REDUCE_COUNT] = {
    [AG_REDUCE_SUM] = "reduce_sum", [AG_REDUCE_MEAN] = "reduce_sum",
    [AG_REDUCE_MAX] = "reduce_max", [AG_REDUCE_MIN] = "reduce_min",
    [AG_REDUCE_ARGMAX] = "reduce_argmax", [AG_REDUCE_ARGMIN] = "reduce_argmin",
};

static const char *const red_shaders_sg[AG_REDUCE_COUNT] = {
    [AG_REDUCE_SUM] = "reduce_sum_sg", [AG_REDUCE_MEAN] = "reduce_sum_sg",
    [AG_REDUCE_MAX] = "reduce_max_sg", [AG_REDUCE_MIN] = "reduce_min_sg",
    [AG_REDUCE_ARGMAX] = "reduce_argmax_sg", [AG_REDUCE_ARGMIN] = "reduce_argmin_sg",
};

/* The parameter block of shaders/reduce.glsl. */
typedef struct red_params {
    int32_t is_final, divide, tx_n, ty_n, ty_fast, nout, nred, chunk, has_idx, ngroups;
    float count;
    vk_shape ks;
    vk_strides kx, ky;
    vk_shape rs;
    vk_strides rx;
} red_params;

/* One pass: kept space (ks, kx, ky), reduced space (rs, rx), buffers. */
typedef struct red_pass {
    vk_shape ks, rs;
    vk_strides kx, ky, rx;
    const ag_buffer *x, *xi, *yv, *yi;
    bool has_idx;
    bool vertical; /* a kept axis is denser in x than the reduced ones */
} red_pass;

static int64_t iabs64(int64_t v) { return v < 0 ? -v : v; }

static int64_t pow2_ceil(int64_t n)
{
    int64_t p = 1;
    while (p < n) p *= 2;
    return p;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

static ag_status shape_error(const char *op, const ag_view *y, const ag_view *x, const char *why)
{
    char a[160], b[160];
    ag_view_shape_str(x, a, sizeof a);
    ag_view_shape_str(y, b, sizeof b);
    return ag_set_error(AG_ERR_SHAPE, "vulkan reduce %s: %s (x %s, y %s)", op, why, a, b);
}

static ag_status too_large(const char *op)
{
    return ag_set_error(AG_ERR_UNSUPPORTED,
                        "vulkan reduce %s: 2^31 elements or more; the Vulkan shaders index with "
                        "32-bit integers",
                        op);
}

/* Splits x's axes into the pass's kept and reduced spaces; counts outputs,
 * reduction length and reduced axes. */
static ag_status red_split(ag_reduce_op op, const ag_view *y, const ag_view *x, red_pass *p,
                           int64_t *nout, int64_t *nred)
{
    const char *name = red_names[op];
    if (y->ndim != x->ndim) return shape_error(name, y, x, "y must have x's number of axes");
    /* from the largest x stride to the smallest (stable), so the innermost
     * axis of each space is its densest */
    int order[AG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
        int q = d;
        while (q > 0 && iabs64(x->stride[order[q - 1]]) < iabs64(x->stride[d])) {
            order[q] = order[q - 1];
            q--;
        }
        order[q] = d;
    }
    int64_t kshape[AG_MAX_DIMS], kxs[AG_MAX_DIMS], kys[AG_MAX_DIMS];
    int64_t rshape[AG_MAX_DIMS], rxs[AG_MAX_DIMS];
    int nk = 0, nr = 0, naxes = 0;
    *nout = 1;
    *nred = 1;
    for (int q = 0; q < x->ndim; q++) {
        const int d = order[q];
        const int64_t n = x->shape[d];
        if (y->shape[d] == n) {
            if (n == 1) continue;
            *nout *= n;
            if (nk > 0 && kxs[nk - 1] == x->stride[d] * n && kys[nk - 1] == y->stride[d] * n) {
                kshape[nk - 1] *= n;
                kxs[nk - 1] = x->stride[d];
                kys[nk - 1] = y->stride[d];
            } else {
                kshape[nk] = n;
                kxs[nk] = x->stride[d];
                kys[nk] = y->stride[d];
                nk++;
            }
        } else if (y->shape[d] == 1) {
            naxes++;
            *nred *= n;
            if (nr > 0 && rxs[nr - 1] == x->stride[d] * n) {
                rshape[nr - 1] *= n;
                rxs[nr - 1] = x->stride[d];
            } else {
                rshape[nr] = n;
                rxs[nr] = x->stride[d];
                nr++;
            }
        } else {
            return shape_error(name, y, x, "each y axis must equal x's or be 1");
        }
    }
    /* an axis of size 1 is reduced trivially, so argmax over one gives zeros */
    if ((op == AG_REDUCE_ARGMAX || op == AG_REDUCE_ARGMIN) && naxes > 1)
        return ag_set_error(AG_ERR_ARG, "vulkan reduce %s: reduces %d axes, expected one", name,
                            naxes);
    if (nr == 0) {
        rshape[0] = 1;
        rxs[0] = 0;
        nr = 1;
    }
    if (*nout > INT32_MAX || *nred > INT32_MAX || *nout * *nred > INT32_MAX) return too_large(name);
    int32_t xoff, yoff;
    ag_status s = ag_offset32("vulkan", name, x, &xoff);
    if (s == AG_OK) s = ag_offset32("vulkan", name, y, &yoff);
    if (s != AG_OK) return s;

    *p = (red_pass){0};
    p->ks.nd = nk;
    p->ks.numel = (int32_t)*nout;
    for (int d = 0; d < nk; d++) {
        p->ks.n[d] = (int32_t)kshape[d];
        p->kx.s[d] = (int32_t)kxs[d];
        p->ky.s[d] = (int32_t)kys[d];
    }
    p->kx.off = xoff;
    p->ky.off = yoff;
    p->rs.nd = nr;
    p->rs.numel = (int32_t)*nred;
    for (int d = 0; d < nr; d++) {
        p->rs.n[d] = (int32_t)rshape[d];
        p->rx.s[d] = (int32_t)rxs[d];
    }
    p->vertical = nk > 0 && iabs64(kxs[nk - 1]) < iabs64(rxs[nr - 1]);
    return AG_OK;
}

/* Records one pass over `groups` work groups of `local` items. */
static ag_status red_dispatch(vk_ctx *c, ag_reduce_op op, red_params *rp, const red_pass *p,
                              const ag_buffer *yv, const ag_buffer *yi, int64_t groups,
                              int64_t local)
{
    const bool arg = op == AG_REDUCE_ARGMAX || op == AG_REDUCE_ARGMIN;
    const uint32_t spec[1] = {(uint32_t)local};
    const int64_t gx = min64(groups, RED_GRID_X), gy = cdiv(groups, gx);
    /* subgroups of a fixed, known size (without size control a pipeline's
     * subgroups are the device's subgroupSize); the shader checks again that
     * they are full and falls back to the tree if not */
    const int64_t sgs = c->subgroup_size;
    const bool sg = c->subgroup_arith && sgs > 1 && local % sgs == 0 && rp->ty_fast &&
                    rp->ty_n % sgs == 0;
    const char *name = sg ? red_shaders_sg[op] : red_shaders[op];
    rp->ngroups = (int32_t)groups;
    if (arg)
        return vk_dispatch(c, name, spec, 1, rp, sizeof *rp, VK_BUFS(p->x, yv, p->xi, yi),
                           (uint32_t)gx, (uint32_t)gy, 1);
    return vk_dispatch(c, name, spec, 1, rp, sizeof *rp, VK_BUFS(p->x, yv), (uint32_t)gx,
                       (uint32_t)gy, 1);
}

/* Runs pass p (and the passes its partial results need). */
static ag_status red_run(vk_ctx *c, ag_reduce_op op, const red_pass *p, int64_t nout,
                         int64_t nred, float count)
{
    const bool arg = op == AG_REDUCE_ARGMAX || op == AG_REDUCE_ARGMIN;
    const int64_t wg = (int64_t)vk_reduce_wg(c);
    const int64_t target_groups = RED_TARGET_GROUPS, target_items = target_groups * wg;

    /* items per output: enough that each folds about RED_SER elements, more
     * while the device would otherwise idle, never more than the elements */
    int64_t ty_max = min64(wg, pow2_ceil(max64(nred, 1)));
    if (p->vertical) /* leave room for a row of adjacent outputs */
        ty_max = min64(ty_max, wg / min64(min64(wg, RED_VX), pow2_ceil(p->ks.n[p->ks.nd - 1])));
    int64_t ty = min64(ty_max, pow2_ceil(cdiv(max64(nred, 1), RED_SER)));
    while (ty < ty_max && nout * ty < target_items) ty *= 2;
    int64_t tx = min64(wg / ty, pow2_ceil(nout));

    int64_t ngo = cdiv(nout, tx);
    int64_t run = cdiv(nred, ty); /* serial elements per item in one pass */
    int64_t nch = max64(1, cdiv(run, RED_MAXSER));
    if (ngo < target_groups && run > RED_SPLIT_MIN)
        nch = max64(nch, min64(cdiv(target_groups, ngo), run / (RED_SPLIT_MIN / 2)));
    /* partial results are indexed chunk * nout + output in int32 */
    if (nch > 1 && nch * nout > INT32_MAX) nch = max64(1, INT32_MAX / nout);
    int64_t chunk = nch > 1 ? cdiv(nred, nch) : nred;
    if (nch > 1) nch = cdiv(nred, chunk);

    red_params rp = {
        .tx_n = (int32_t)tx, .ty_n = (int32_t)ty, .ty_fast = !p->vertical,
        .nout = (int32_t)nout, .nred = (int32_t)nred, .chunk = (int32_t)chunk,
        .has_idx = p->has_idx, .count = count,
        .ks = p->ks, .kx = p->kx, .ky = p->ky, .rs = p->rs, .rx = p->rx,
    };
    const int64_t local = tx * ty, groups = ngo * nch;

    if (nch == 1) {
        rp.is_final = 1;
        rp.divide = op == AG_REDUCE_MEAN;
        return red_dispatch(c, op, &rp, p, p->yv, p->yi, groups, local);
    }

    size_t nparts = (size_t)(nch * nout);
    ag_buffer *tv = vk_alloc(c, nparts * sizeof(float));
    ag_buffer *ti = tv && arg ? vk_alloc(c, nparts * sizeof(int32_t)) : NULL;
    if (!tv || (arg && !ti)) {
        vk_free(c, tv);
        return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    }
    ag_status s = red_dispatch(c, op, &rp, p, tv, ti, groups, local);
    if (s == AG_OK) {
        /* the partials as x [nch, kept...], dense, reduced over the chunk axis */
        red_pass q = *p;
        int32_t stride = 1;
        for (int d = q.ks.nd - 1; d >= 0; d--) {
            q.kx.s[d] = stride;
            stride *= q.ks.n[d];
        }
        q.kx.off = 0;
        q.rs = (vk_shape){.nd = 1, .numel = (int32_t)nch};
        q.rs.n[0] = (int32_t)nch;
        q.rx = (vk_strides){0};
        q.rx.s[0] = (int32_t)nout;
        q.x = tv;
        q.xi = ti;
        q.has_idx = arg;
        q.vertical = q.ks.nd > 0;
        s = red_run(c, op, &q, nout, nch, count);
    }
    /* Safe while recorded passes still read them: every dispatch waits for
     * all work before it, so the next user of the memory runs after them. */
    vk_free(c, tv);
    vk_free(c, ti);
    return s;
}

ag_status vk_reduce(void *ctx, ag_reduce_op op, const ag_view *y, const ag_view *x)
{
    vk_ctx *c = ctx;
    if ((unsigned)op >= AG_REDUCE_COUNT)
        return ag_set_error(AG_ERR_ARG, "vulkan reduce: unknown op %d", (int)op);
    const char *name = red_names[op];
    const bool arg = op == AG_REDUCE_ARGMAX || op == AG_REDUCE_ARGMIN;
    char what[32];
    snprintf(what, sizeof what, "reduce %s", name);
    ag_status s = ag_check_view("vulkan", what, "x", x, AG_F32);
    if (s == AG_OK) s = ag_check_view("vulkan", what, "y", y, arg ? AG_I32 : AG_F32);
    if (s != AG_OK) return s;

    red_pass p;
    int64_t nout = 0, nred = 0;
    s = red_split(op, y, x, &p, &nout, &nred);
    if (s != AG_OK) return s;
    if (nout == 0) return AG_OK;
    if (nred == 0 && op != AG_REDUCE_SUM && op != AG_REDUCE_MEAN)
        return ag_set_error(AG_ERR_ARG, "vulkan reduce %s: cannot reduce an empty axis", name);
    p.x = x->buf;
    p.xi = NULL;
    p.yv = arg ? NULL : y->buf;
    p.yi = arg ? y->buf : NULL;
    p.has_idx = false;
    return red_run(c, op, &p, nout, nred, (float)nred);
}
