/* Layer and batch normalisation, forward and backward (kernels/norm.cl). One
 * work-group per row (layer norm) or per channel (batch norm; per 32 channels
 * when the spatial size is 1), with local-memory tree reductions; layer norm's
 * dgamma / dbeta sum over rows in a second kernel, in row chunks whose
 * partials are added in a fixed order. No float atomics anywhere: results are
 * deterministic. Semantics and checks follow backends/cpu/cpu_norm.c. */
#include "ocl.h"

/* Laid out as norm_dims / norm_offs in kernels/norm.cl. */
typedef struct ocl_norm_dims {
    cl_int mode, training, N, C, S, cpg, has;
    cl_float eps, momentum;
} ocl_norm_dims;
typedef struct ocl_norm_offs {
    cl_int x, y, dy, dx, mean, rstd, gamma, beta, rmean, rvar, dgamma, dbeta;
} ocl_norm_offs;

enum { NORM_LN, NORM_BN };
enum {
    HAS_GAMMA = 1, HAS_BETA = 2, HAS_MEAN = 4, HAS_RSTD = 8, HAS_RMEAN = 16, HAS_RVAR = 32,
    HAS_DX = 64, HAS_DGAMMA = 128, HAS_DBETA = 256
};

/* Layer norm's row chunks for dgamma / dbeta: at most this many partials. */
#define LN_MAX_CHUNKS 1024
#define LN_CHUNK_ROWS 512

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
                            cl_int *off)
{
    *off = 0;
    if (!v) return AG_OK;
    ag_status s = ocl_check_view(op, what, v, AG_F32);
    if (s != AG_OK) return s;
    if (ocl_numel(v) != n)
        return ag_set_error(AG_ERR_SHAPE, "opencl %s: %s has %lld elements, expected %lld", op,
                            what, (long long)ocl_numel(v), (long long)n);
    if (!dense(v)) return ag_set_error(AG_ERR_ARG, "opencl %s: %s must be contiguous", op, what);
    return ocl_offset(op, v, off);
}

static size_t pow2_at_least(int64_t n)
{
    size_t p = 1;
    while ((int64_t)p < n && p < ((size_t)1 << 30)) p *= 2;
    return p;
}

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* Channels per work-group for reductions over [N, C, S] channels: several only
 * when S == 1, so that neighbouring work-items read neighbouring addresses. */
static size_t channels_per_group(int64_t C, int64_t S, size_t wg)
{
    return S == 1 ? min_sz(min_sz(32, pow2_at_least(C)), wg) : 1;
}

static int flag(const ag_view *v, int bit) { return v ? bit : 0; }

/* ---- layer norm: x [rows, D] ------------------------------------------------ */

static ag_status ln_setup(const char *op, const ag_norm_args *a, bool backward, int64_t *rows,
                          int64_t *dim, ocl_norm_offs *o)
{
    if (!a || !a->x) return ag_set_error(AG_ERR_ARG, "opencl %s: NULL input", op);
    if (backward && (!a->dy || !a->mean || !a->rstd))
        return ag_set_error(AG_ERR_ARG, "opencl %s: needs dy, mean and rstd", op);
    if (!backward && !a->y) return ag_set_error(AG_ERR_ARG, "opencl %s: NULL output", op);
    ag_status s = ocl_check_view(op, "x", a->x, AG_F32);
    if (s != AG_OK) return s;
    int64_t n = ocl_numel(a->x);
    /* the row length comes from the statistics, else gamma, else x's last axis */
    int64_t last = a->x->ndim ? a->x->shape[a->x->ndim - 1] : 1;
    if (a->mean) {
        *rows = ocl_numel(a->mean);
        *dim = *rows ? n / *rows : last;
    } else {
        *dim = a->gamma ? ocl_numel(a->gamma) : last;
        *rows = *dim ? n / *dim : 0;
    }
    if (*rows * *dim != n)
        return ag_set_error(AG_ERR_SHAPE,
                            "opencl %s: %lld input elements do not split into %lld rows", op,
                            (long long)n, (long long)*rows);
    *o = (ocl_norm_offs){0};
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

ag_status ocl_layer_norm(void *ctx, const ag_norm_args *a)
{
    ocl_ctx *c = ctx;
    int64_t rows, dim;
    ocl_norm_offs o;
    ag_status s = ln_setup("layer_norm", a, false, &rows, &dim, &o);
    if (s != AG_OK || rows == 0) return s;
    ocl_norm_dims d = {.mode = NORM_LN, .N = 1, .C = (cl_int)rows, .S = (cl_int)dim, .cpg = 1,
                       .eps = a->eps,
                       .has = flag(a->gamma, HAS_GAMMA) | flag(a->beta, HAS_BETA) |
                              flag(a->mean, HAS_MEAN) | flag(a->rstd, HAS_RSTD)};
    size_t wg = min_sz(ocl_reduce_wg(c), pow2_at_least(dim));
    cl_mem mean = ocl_mem_or_dummy(c, a->mean), rstd = ocl_mem_or_dummy(c, a->rstd);
    cl_mem gamma = ocl_mem_or_dummy(c, a->gamma), beta = ocl_mem_or_dummy(c, a->beta);
    return ocl_run_groups(c, "norm", "norm_fw", (size_t)rows, wg,
                          OCL_ARGS(OA(d), OA(o), OA(a->x->buf->mem), OA(a->y->buf->mem),
                                   OA(mean), OA(rstd), OA(gamma), OA(beta), OA(c->dummy),
                                   OA(c->dummy), OA_LOCAL(wg * sizeof(cl_float))));
}

/* dgamma / dbeta = sums over rows, by column blocks and row chunks. */
static ag_status ln_param_grads(ocl_ctx *c, const ag_norm_args *a, const ocl_norm_offs *o,
                                int64_t rows, int64_t dim)
{
    size_t wg = ocl_reduce_wg(c), cpg = min_sz(min_sz(32, pow2_at_least(dim)), wg);
    int64_t R = rows > LN_CHUNK_ROWS ? LN_CHUNK_ROWS : rows > 0 ? rows : 1;
    if ((rows + R - 1) / R > LN_MAX_CHUNKS) R = (rows + LN_MAX_CHUNKS - 1) / LN_MAX_CHUNKS;
    int64_t nchunk = rows > 0 ? (rows + R - 1) / R : 1;
    cl_int crows = (cl_int)rows, cdim = (cl_int)dim, cR = (cl_int)R, ccpg = (cl_int)cpg;
    cl_int cn = (cl_int)nchunk;
    cl_int has = flag(a->dgamma, HAS_DGAMMA) | flag(a->dbeta, HAS_DBETA);
    cl_mem dgamma = ocl_mem_or_dummy(c, a->dgamma), dbeta = ocl_mem_or_dummy(c, a->dbeta);
    ag_buffer *part = NULL;
    if (nchunk > 1) {
        part = ocl_alloc(c, (size_t)nchunk * 2 * (size_t)dim * sizeof(cl_float));
        if (!part) return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    }
    cl_mem pm = part ? part->mem : c->dummy;
    size_t global[2] = {(size_t)(dim + (int64_t)cpg - 1) / cpg * wg, (size_t)nchunk};
    size_t local[2] = {wg, 1};
    ag_status s = ocl_run(c, "norm", "ln_param_grad", 2, global, local,
                          OCL_ARGS(OA(crows), OA(cdim), OA(cR), OA(ccpg), OA(has), OA(*o),
                                   OA(a->x->buf->mem), OA(a->dy->buf->mem),
                                   OA(a->mean->buf->mem), OA(a->rstd->buf->mem), OA(dgamma),
                                   OA(dbeta), OA(pm), OA_LOCAL(wg * sizeof(cl_float))));
    if (s == AG_OK && part)
        s = ocl_run1(c, "norm", "ln_param_final", (size_t)dim,
                     OCL_ARGS(OA(cdim), OA(cn), OA(has), OA(*o), OA(pm), OA(dgamma), OA(dbeta)));
    /* the driver keeps the buffer until the queued kernels are done with it */
    ocl_free(c, part);
    return s;
}

ag_status ocl_layer_norm_backward(void *ctx, const ag_norm_args *a)
{
    ocl_ctx *c = ctx;
    int64_t rows, dim;
    ocl_norm_offs o;
    ag_status s = ln_setup("layer_norm_backward", a, true, &rows, &dim, &o);
    if (s != AG_OK) return s;
    if (a->dx && rows > 0) {
        ocl_norm_dims d = {.mode = NORM_LN, .N = 1, .C = (cl_int)rows, .S = (cl_int)dim,
                           .cpg = 1, .has = flag(a->gamma, HAS_GAMMA) | HAS_DX};
        size_t wg = min_sz(ocl_reduce_wg(c), pow2_at_least(dim));
        cl_mem gamma = ocl_mem_or_dummy(c, a->gamma);
        s = ocl_run_groups(c, "norm", "norm_bw", (size_t)rows, wg,
                           OCL_ARGS(OA(d), OA(o), OA(a->x->buf->mem), OA(a->dy->buf->mem),
                                    OA(a->mean->buf->mem), OA(a->rstd->buf->mem), OA(gamma),
                                    OA(a->dx->buf->mem), OA(c->dummy), OA(c->dummy),
                                    OA_LOCAL(wg * sizeof(cl_float))));
    }
    if (s == AG_OK && (a->dgamma || a->dbeta) && dim > 0) s = ln_param_grads(c, a, &o, rows, dim);
    return s;
}

/* ---- batch norm: x [N, C, S] ------------------------------------------------- */

static ag_status bn_setup(const char *op, const ag_norm_args *a, bool backward, int64_t *n,
                          int64_t *ch, int64_t *sp, ocl_norm_offs *o)
{
    if (!a || !a->x) return ag_set_error(AG_ERR_ARG, "opencl %s: NULL input", op);
    ag_status s = ocl_check_view(op, "x", a->x, AG_F32);
    if (s != AG_OK) return s;
    if (a->x->ndim < 2)
        return ag_set_error(AG_ERR_SHAPE, "opencl %s: expected input [N, C, ...], got %d dims",
                            op, a->x->ndim);
    *n = a->x->shape[0];
    *ch = a->x->shape[1];
    *sp = 1;
    for (int d = 2; d < a->x->ndim; d++) *sp *= a->x->shape[d];
    if (backward && (!a->dy || !a->mean || !a->rstd))
        return ag_set_error(AG_ERR_ARG, "opencl %s: needs dy, mean and rstd", op);
    if (!backward && !a->y) return ag_set_error(AG_ERR_ARG, "opencl %s: NULL output", op);
    if (!backward && !a->training && (!a->running_mean || !a->running_var))
        return ag_set_error(AG_ERR_ARG, "opencl %s: eval mode needs running_mean and running_var",
                            op);
    if (!backward && a->training && *n * *sp == 1 && *ch > 0)
        return ag_set_error(AG_ERR_SHAPE,
                            "opencl %s: training needs more than one value per channel, got "
                            "input [%lld, %lld, ...] with %lld values per channel",
                            op, (long long)*n, (long long)*ch, (long long)(*n * *sp));
    int64_t total = *n * *ch * *sp;
    *o = (ocl_norm_offs){0};
    s = check_view(op, "x", a->x, total, &o->x);
    if (!s && !backward) s = check_view(op, "y", a->y, total, &o->y);
    if (!s && backward) s = check_view(op, "dy", a->dy, total, &o->dy);
    if (!s && backward) s = check_view(op, "dx", a->dx, total, &o->dx);
    if (!s) s = check_view(op, "mean", a->mean, *ch, &o->mean);
    if (!s) s = check_view(op, "rstd", a->rstd, *ch, &o->rstd);
    if (!s) s = check_view(op, "gamma", a->gamma, *ch, &o->gamma);
    if (!s) s = check_view(op, "beta", a->beta, *ch, &o->beta);
    if (!s && !backward) s = check_view(op, "running_mean", a->running_mean, *ch, &o->rmean);
    if (!s && !backward) s = check_view(op, "running_var", a->running_var, *ch, &o->rvar);
    if (!s && backward) s = check_view(op, "dgamma", a->dgamma, *ch, &o->dgamma);
    if (!s && backward) s = check_view(op, "dbeta", a->dbeta, *ch, &o->dbeta);
    return s;
}

/* Work-group size and channels per group for [N, C, S]. */
static void bn_launch_shape(const ocl_ctx *c, int64_t n, int64_t ch, int64_t sp, size_t *wg,
                            size_t *cpg, size_t *groups)
{
    size_t rwg = ocl_reduce_wg(c);
    *cpg = channels_per_group(ch, sp, rwg);
    *wg = min_sz(rwg, *cpg * pow2_at_least(n * sp));
    *groups = (size_t)(ch + (int64_t)*cpg - 1) / *cpg;
}

ag_status ocl_batch_norm(void *ctx, const ag_norm_args *a)
{
    ocl_ctx *c = ctx;
    int64_t n, ch, sp;
    ocl_norm_offs o;
    ag_status s = bn_setup("batch_norm", a, false, &n, &ch, &sp, &o);
    if (s != AG_OK || ch == 0) return s;
    size_t wg, cpg, groups;
    bn_launch_shape(c, n, ch, sp, &wg, &cpg, &groups);
    ocl_norm_dims d = {.mode = NORM_BN, .training = a->training, .N = (cl_int)n,
                       .C = (cl_int)ch, .S = (cl_int)sp, .cpg = (cl_int)cpg, .eps = a->eps,
                       .momentum = a->momentum,
                       .has = flag(a->gamma, HAS_GAMMA) | flag(a->beta, HAS_BETA) |
                              flag(a->mean, HAS_MEAN) | flag(a->rstd, HAS_RSTD) |
                              flag(a->running_mean, HAS_RMEAN) |
                              flag(a->running_var, HAS_RVAR)};
    cl_mem mean = ocl_mem_or_dummy(c, a->mean), rstd = ocl_mem_or_dummy(c, a->rstd);
    cl_mem gamma = ocl_mem_or_dummy(c, a->gamma), beta = ocl_mem_or_dummy(c, a->beta);
    cl_mem rmean = ocl_mem_or_dummy(c, a->running_mean);
    cl_mem rvar = ocl_mem_or_dummy(c, a->running_var);
    return ocl_run_groups(c, "norm", "norm_fw", groups, wg,
                          OCL_ARGS(OA(d), OA(o), OA(a->x->buf->mem), OA(a->y->buf->mem),
                                   OA(mean), OA(rstd), OA(gamma), OA(beta), OA(rmean), OA(rvar),
                                   OA_LOCAL(wg * sizeof(cl_float))));
}

ag_status ocl_batch_norm_backward(void *ctx, const ag_norm_args *a)
{
    ocl_ctx *c = ctx;
    int64_t n, ch, sp;
    ocl_norm_offs o;
    ag_status s = bn_setup("batch_norm_backward", a, true, &n, &ch, &sp, &o);
    if (s != AG_OK || ch == 0 || (!a->dx && !a->dgamma && !a->dbeta)) return s;
    size_t wg, cpg, groups;
    bn_launch_shape(c, n, ch, sp, &wg, &cpg, &groups);
    ocl_norm_dims d = {.mode = NORM_BN, .training = a->training, .N = (cl_int)n,
                       .C = (cl_int)ch, .S = (cl_int)sp, .cpg = (cl_int)cpg,
                       .has = flag(a->gamma, HAS_GAMMA) | flag(a->dx, HAS_DX) |
                              flag(a->dgamma, HAS_DGAMMA) | flag(a->dbeta, HAS_DBETA)};
    cl_mem gamma = ocl_mem_or_dummy(c, a->gamma), dx = ocl_mem_or_dummy(c, a->dx);
    cl_mem dgamma = ocl_mem_or_dummy(c, a->dgamma), dbeta = ocl_mem_or_dummy(c, a->dbeta);
    return ocl_run_groups(c, "norm", "norm_bw", groups, wg,
                          OCL_ARGS(OA(d), OA(o), OA(a->x->buf->mem), OA(a->dy->buf->mem),
                                   OA(a->mean->buf->mem), OA(a->rstd->buf->mem), OA(gamma),
                                   OA(dx), OA(dgamma), OA(dbeta),
                                   OA_LOCAL(wg * sizeof(cl_float))));
}
