/* Layer and batch normalisation, forward and backward (shaders/norm_*.comp).
 * One work-group per row (layer norm) or per channel (batch norm; per 32
 * channels when the spatial size is 1), with shared-memory tree reductions;
 * layer norm's dgamma / dbeta sum over rows in a second shader, in row chunks
 * whose partials are added in a fixed order. No float atomics anywhere:
 * results are deterministic. Semantics and checks follow
 * backends/cpu/cpu_norm.c, the design backends/opencl/ocl_norm.c; batch norm
 * takes two shaders each way (per-channel sums, then an element-wise pass),
 * since one would need 8 buffers and Vulkan gets at most 7 here.
 *
 * Where the device has subgroup arithmetic (and AG_VULKAN_PORTABLE is not
 * set), the per-row and per-channel sums of groups with one channel use the
 * _sg shader variants (subgroup operations instead of the tree); sums may
 * then differ from the tree's in the last bits. */
#include <stdio.h>

#include "vk.h"

/* Laid out as Params in shaders/norm.glsl. */
typedef struct norm_params {
    int32_t training, N, C, S, cpg, has, R, nchunk;
    float eps, momentum;
    int32_t x, y, dy, dx, mean, rstd, gamma, beta, rmean, rvar, dgamma, dbeta;
} norm_params;

enum {
    HAS_GAMMA = 1, HAS_BETA = 2, HAS_MEAN = 4, HAS_RSTD = 8, HAS_RMEAN = 16, HAS_RVAR = 32,
    HAS_DX = 64, HAS_DGAMMA = 128, HAS_DBETA = 256
};

/* Layer norm's row chunks for dgamma / dbeta: at most this many partials. */
#define LN_MAX_CHUNKS 1024
#define LN_CHUNK_ROWS 512
/* Per dispatch dimension, the count every device allows. */
#define MAX_GROUPS 65535u

static bool dense(const ag_view *v)
{
    int64_t expect = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && v->stride[d] != expect) return false;
        expect *= v->shape[d];
    }
    return true;
}

/* A present view is valid, f32, contiguous, n elements, int32-addressable;
 * its offset goes to *off (0 for an absent view). */
static ag_status check_view(const char *op, const char *what, const ag_view *v, int64_t n,
                            int32_t *off)
{
    *off = 0;
    if (!v) return AG_OK;
    ag_status s = ag_check_view("vulkan", op, what, v, AG_F32);
    if (s != AG_OK) return s;
    if (ag_view_numel(v) != n)
        return ag_set_error(AG_ERR_SHAPE, "vulkan %s: %s has %lld elements, expected %lld", op,
                            what, (long long)ag_view_numel(v), (long long)n);
    if (!dense(v)) return ag_set_error(AG_ERR_ARG, "vulkan %s: %s must be contiguous", op, what);
    return ag_offset32("vulkan", op, v, off);
}

static uint32_t pow2_at_least(int64_t n)
{
    uint32_t p = 1;
    while ((int64_t)p < n && p < (1u << 30)) p *= 2;
    return p;
}

static uint32_t min_u(uint32_t a, uint32_t b) { return a < b ? a : b; }

/* Channels per work-group for reductions over [N, C, S] channels: several only
 * when S == 1, so that neighbouring invocations read neighbouring addresses. */
static uint32_t channels_per_group(int64_t C, int64_t S, uint32_t wg)
{
    return S == 1 ? min_u(min_u(32, pow2_at_least(C)), wg) : 1;
}

static int flag(const ag_view *v, int bit) { return v ? bit : 0; }

static vk_bind buf_of(const ag_view *v) { return v ? v->buf : NULL; }

/* groups work-groups of wg, past 65535 continued in y (shaders: group_id()),
 * times gz in z. Shaders built with an _sg variant (sg) take it when a group
 * sums one channel and is whole subgroups of the device's fixed subgroup size
 * (the shader checks again that subgroups are full and falls back to the tree
 * if not). */
static ag_status run_groups(vk_ctx *c, const char *name, bool sg, uint32_t wg,
                            const norm_params *p, int nbufs, const vk_bind *bufs, size_t groups,
                            uint32_t gz)
{
    size_t gy = (groups + MAX_GROUPS - 1) / MAX_GROUPS, gx = gy ? (groups + gy - 1) / gy : 0;
    uint32_t spec[1] = {wg};
    const uint32_t sgs = c->subgroup_size;
    char sg_name[48];
    if (sg && c->subgroup_arith && sgs > 1 && wg % sgs == 0 && p->cpg == 1) {
        snprintf(sg_name, sizeof sg_name, "%s_sg", name);
        name = sg_name;
    }
    return vk_dispatch(c, name, spec, 1, p, sizeof *p, nbufs, bufs, (uint32_t)gx, (uint32_t)gy, gz);
}

/* Scratch for per-channel values between two shaders; freed right after
 * recording: later work that reuses the range runs after this (every dispatch
 * waits for the one before it). */
static ag_buffer *scratch(vk_ctx *c, int64_t floats)
{
    return vk_alloc(c, (size_t)(floats > 0 ? floats : 1) * sizeof(float));
}

static ag_status status_or_oom(void) { return ag_last_status() ? ag_last_status() : AG_ERR_OOM; }

/* ---- layer norm: x [rows, D] ------------------------------------------------ */

static ag_status ln_setup(const char *op, const ag_norm_args *a, bool backward, int64_t *rows,
                          int64_t *dim, norm_params *o)
{
    if (!a || !a->x) return ag_set_error(AG_ERR_ARG, "vulkan %s: NULL input", op);
    if (backward && (!a->dy || !a->mean || !a->rstd))
        return ag_set_error(AG_ERR_ARG, "vulkan %s: needs dy, mean and rstd", op);
    if (!backward && !a->y) return ag_set_error(AG_ERR_ARG, "vulkan %s: NULL output", op);
    ag_status s = ag_check_view("vulkan", op, "x", a->x, AG_F32);
    if (s != AG_OK) return s;
    int64_t n = ag_view_numel(a->x);
    /* the row length comes from the statistics, else gamma, else x's last axis */
    int64_t last = a->x->ndim ? a->x->shape[a->x->ndim - 1] : 1;
    if (a->mean) {
        *rows = ag_view_numel(a->mean);
        *dim = *rows ? n / *rows : last;
    } else {
        *dim = a->gamma ? ag_view_numel(a->gamma) : last;
        *rows = *dim ? n / *dim : 0;
    }
    if (*rows * *dim != n)
        return ag_set_error(AG_ERR_SHAPE,
                            "vulkan %s: %lld input elements do not split into %lld rows", op,
                            (long long)n, (long long)*rows);
    *o = (norm_params){.N = 1, .C = (int32_t)*rows, .S = (int32_t)*dim, .cpg = 1, .eps = a->eps};
    s = check_view(op, "x", a->x, n, &o->x);
    if (!s && !backward) s = check_view(op, "y", a->y, n, &o->y);
    if (!s && backward) s = check_view(op, "dy", a->dy, n, &o->dy);
    if (!s && backward) s = check_view(op, "dx", a->dx, n, &o->dx);
    if (!s) s = check_view(op, "mean", a->mean, *rows, &o->mean);
    if (!s) s = check_view(op, "rstd", a->rstd, *rows, &o->rstd);
    if (!s) s = check_view(op, "gamma", a->gamma, *dim, &o->gamma);
    if (!s && !backward) s = check_view(op, "beta", a->beta, *dim, &o->beta);
    if (!s && backward) s = check_view(op, "dgamma", a->dgamma, *dim, &o->dgamma);
    if (!s && backward) s = check_view(op, "dbeta", a->dbeta, *dim, &o->dbeta);
    return s;
}

ag_status vk_layer_norm(void *ctx, const ag_norm_args *a)
{
    vk_ctx *c = ctx;
    int64_t rows, dim;
    norm_params p;
    ag_status s = ln_setup("layer_norm", a, false, &rows, &dim, &p);
    if (s != AG_OK || rows == 0) return s;
    p.has = flag(a->gamma, HAS_GAMMA) | flag(a->beta, HAS_BETA) | flag(a->mean, HAS_MEAN) |
            flag(a->rstd, HAS_RSTD);
    uint32_t wg = min_u(vk_reduce_wg(c), pow2_at_least(dim));
    return run_groups(c, "norm_ln_fw", true, wg, &p,
                      VK_BUFS(a->x->buf, a->y->buf, buf_of(a->mean), buf_of(a->rstd),
                              buf_of(a->gamma), buf_of(a->beta)),
                      (size_t)rows, 1);
}

/* dgamma / dbeta = sums over rows, by column blocks and row chunks. */
static ag_status ln_param_grads(vk_ctx *c, const ag_norm_args *a, norm_params p, int64_t rows,
                                int64_t dim)
{
    uint32_t wg = vk_reduce_wg(c), cpg = min_u(min_u(32, pow2_at_least(dim)), wg);
    int64_t R = rows > LN_CHUNK_ROWS ? LN_CHUNK_ROWS : rows > 0 ? rows : 1;
    if ((rows + R - 1) / R > LN_MAX_CHUNKS) R = (rows + LN_MAX_CHUNKS - 1) / LN_MAX_CHUNKS;
    int64_t nchunk = rows > 0 ? (rows + R - 1) / R : 1;
    p.cpg = (int32_t)cpg;
    p.R = (int32_t)R;
    p.nchunk = (int32_t)nchunk;
    p.has = flag(a->dgamma, HAS_DGAMMA) | flag(a->dbeta, HAS_DBETA);
    ag_buffer *part = NULL;
    if (nchunk > 1 && !(part = scratch(c, nchunk * 2 * dim))) return status_or_oom();
    size_t blocks = (size_t)(dim + (int64_t)cpg - 1) / cpg;
    ag_status s = run_groups(c, "norm_ln_param", false, wg, &p,
                             VK_BUFS(a->x->buf, a->dy->buf, a->mean->buf, a->rstd->buf,
                                     buf_of(a->dgamma), buf_of(a->dbeta), part),
                             blocks, (uint32_t)nchunk);
    if (s == AG_OK && part)
        s = vk_run1(c, "norm_ln_param_final", &p, sizeof p,
                    VK_BUFS(part, buf_of(a->dgamma), buf_of(a->dbeta)), (size_t)dim);
    vk_free(c, part);
    return s;
}

ag_status vk_layer_norm_backward(void *ctx, const ag_norm_args *a)
{
    vk_ctx *c = ctx;
    int64_t rows, dim;
    norm_params p;
    ag_status s = ln_setup("layer_norm_backward", a, true, &rows, &dim, &p);
    if (s != AG_OK) return s;
    if (a->dx && rows > 0) {
        norm_params q = p;
        q.has = flag(a->gamma, HAS_GAMMA) | HAS_DX;
        uint32_t wg = min_u(vk_reduce_wg(c), pow2_at_least(dim));
        s = run_groups(c, "norm_ln_bw", true, wg, &q,
                       VK_BUFS(a->x->buf, a->dy->buf, a->mean->buf, a->rstd->buf,
                               buf_of(a->gamma), a->dx->buf),
                       (size_t)rows, 1);
    }
    if (s == AG_OK && (a->dgamma || a->dbeta) && dim > 0) s = ln_param_grads(c, a, p, rows, dim);
    return s;
}

/* ---- batch norm: x [N, C, S] ------------------------------------------------- */

static ag_status bn_setup(const char *op, const ag_norm_args *a, bool backward, norm_params *o)
{
    if (!a || !a->x) return ag_set_error(AG_ERR_ARG, "vulkan %s: NULL input", op);
    ag_status s = ag_check_view("vulkan", op, "x", a->x, AG_F32);
    if (s != AG_OK) return s;
    if (a->x->ndim < 2)
        return ag_set_error(AG_ERR_SHAPE, "vulkan %s: expected input [N, C, ...], got %d dims",
                            op, a->x->ndim);
    int64_t n = a->x->shape[0], ch = a->x->shape[1], sp = 1;
    for (int d = 2; d < a->x->ndim; d++) sp *= a->x->shape[d];
    if (backward && (!a->dy || !a->mean || !a->rstd))
        return ag_set_error(AG_ERR_ARG, "vulkan %s: needs dy, mean and rstd", op);
    if (!backward && !a->y) return ag_set_error(AG_ERR_ARG, "vulkan %s: NULL output", op);
    if (!backward && !a->training && (!a->running_mean || !a->running_var))
        return ag_set_error(AG_ERR_ARG, "vulkan %s: eval mode needs running_mean and running_var",
                            op);
    if (!backward && a->training && n * sp == 1 && ch > 0)
        return ag_set_error(AG_ERR_SHAPE,
                            "vulkan %s: training needs more than one value per channel, got "
                            "input [%lld, %lld, ...] with %lld values per channel",
                            op, (long long)n, (long long)ch, (long long)(n * sp));
    int64_t total = n * ch * sp;
    *o = (norm_params){0};
    s = check_view(op, "x", a->x, total, &o->x);
    if (!s && !backward) s = check_view(op, "y", a->y, total, &o->y);
    if (!s && backward) s = check_view(op, "dy", a->dy, total, &o->dy);
    if (!s && backward) s = check_view(op, "dx", a->dx, total, &o->dx);
    if (!s) s = check_view(op, "mean", a->mean, ch, &o->mean);
    if (!s) s = check_view(op, "rstd", a->rstd, ch, &o->rstd);
    if (!s) s = check_view(op, "gamma", a->gamma, ch, &o->gamma);
    if (!s) s = check_view(op, "beta", a->beta, ch, &o->beta);
    if (!s && !backward) s = check_view(op, "running_mean", a->running_mean, ch, &o->rmean);
    if (!s && !backward) s = check_view(op, "running_var", a->running_var, ch, &o->rvar);
    if (!s && backward) s = check_view(op, "dgamma", a->dgamma, ch, &o->dgamma);
    if (!s && backward) s = check_view(op, "dbeta", a->dbeta, ch, &o->dbeta);
    /* x fits int32 indexing (checked above), so do its dimensions */
    o->N = (int32_t)n;
    o->C = (int32_t)ch;
    o->S = (int32_t)sp;
    o->training = a->training;
    o->eps = a->eps;
    o->momentum = a->momentum;
    return s;
}

/* Work-group size, channels per group and group count for the per-channel
 * shaders. */
static void bn_launch_shape(const vk_ctx *c, norm_params *p, uint32_t *wg, size_t *groups)
{
    uint32_t rwg = vk_reduce_wg(c), cpg = channels_per_group(p->C, p->S, rwg);
    *wg = min_u(rwg, cpg * pow2_at_least((int64_t)p->N * p->S));
    *groups = ((size_t)p->C + cpg - 1) / cpg;
    p->cpg = (int32_t)cpg;
}

ag_status vk_batch_norm(void *ctx, const ag_norm_args *a)
{
    vk_ctx *c = ctx;
    norm_params p;
    ag_status s = bn_setup("batch_norm", a, false, &p);
    if (s != AG_OK || p.C == 0) return s;
    uint32_t wg;
    size_t groups;
    bn_launch_shape(c, &p, &wg, &groups);
    p.has = flag(a->gamma, HAS_GAMMA) | flag(a->beta, HAS_BETA) | flag(a->mean, HAS_MEAN) |
            flag(a->rstd, HAS_RSTD) | flag(a->running_mean, HAS_RMEAN) |
            flag(a->running_var, HAS_RVAR);
    ag_buffer *st = scratch(c, 3 * (int64_t)p.C);
    if (!st) return status_or_oom();
    s = run_groups(c, "norm_bn_stats", true, wg, &p,
                   VK_BUFS(a->x->buf, st, buf_of(a->mean), buf_of(a->rstd),
                           buf_of(a->running_mean), buf_of(a->running_var)),
                   groups, 1);
    if (s == AG_OK)
        s = vk_run1(c, "norm_bn_apply", &p, sizeof p,
                    VK_BUFS(a->x->buf, a->y->buf, st, buf_of(a->gamma), buf_of(a->beta)),
                    (size_t)p.N * p.C * p.S);
    vk_free(c, st);
    return s;
}

ag_status vk_batch_norm_backward(void *ctx, const ag_norm_args *a)
{
    vk_ctx *c = ctx;
    norm_params p;
    ag_status s = bn_setup("batch_norm_backward", a, true, &p);
    if (s != AG_OK || p.C == 0 || (!a->dx && !a->dgamma && !a->dbeta)) return s;
    uint32_t wg;
    size_t groups;
    bn_launch_shape(c, &p, &wg, &groups);
    p.has = flag(a->gamma, HAS_GAMMA) | flag(a->dx, HAS_DX) | flag(a->dgamma, HAS_DGAMMA) |
            flag(a->dbeta, HAS_DBETA);
    /* eval wants the sums only for dgamma / dbeta */
    bool sums = a->training || a->dgamma || a->dbeta;
    ag_buffer *st = NULL;
    if (sums && !(st = scratch(c, 2 * (int64_t)p.C))) return status_or_oom();
    if (sums)
        s = run_groups(c, "norm_bn_bw_sums", true, wg, &p,
                       VK_BUFS(a->x->buf, a->dy->buf, a->mean->buf, a->rstd->buf, st,
                               buf_of(a->dgamma), buf_of(a->dbeta)),
                       groups, 1);
    if (s == AG_OK && a->dx)
        s = vk_run1(c, "norm_bn_bw_apply", &p, sizeof p,
                    VK_BUFS(a->x->buf, a->dy->buf, a->mean->buf, a->rstd->buf,
                            buf_of(a->gamma), st, a->dx->buf),
                    (size_t)p.N * p.C * p.S);
    vk_free(c, st);
    return s;
}
