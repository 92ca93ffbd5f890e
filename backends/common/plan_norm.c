/* Layer and batch normalisation on the GPU backends: the checks (those of
 * backends/cpu/cpu_norm.c), the views' offsets and the work-group layout. One
 * work-group per row (layer norm) or per channel (batch norm; per 32 channels
 * when the spatial size is 1) with tree reductions; layer norm's dgamma /
 * dbeta sum over rows in another kernel, in row chunks whose partials are
 * added in a fixed order. No float atomics: results are deterministic. */
#include "plan.h"

/* Layer norm's row chunks for dgamma / dbeta: at most this many partials. */
#define LN_MAX_CHUNKS 1024
#define LN_CHUNK_ROWS 512

/* A present view is valid, f32, contiguous, n elements, int32-addressable;
 * its offset goes to *off (0 for an absent view). */
static ag_status check_view(const char *backend, const char *op, const char *what,
                            const ag_view *v, int64_t n, int32_t *off)
{
    *off = 0;
    if (!v) return AG_OK;
    ag_status s = ag_check_view(backend, op, what, v, AG_F32);
    if (s != AG_OK) return s;
    if (ag_view_numel(v) != n)
        return ag_set_error(AG_ERR_SHAPE, "%s %s: %s has %lld elements, expected %lld", backend,
                            op, what, (long long)ag_view_numel(v), (long long)n);
    if (!ag_view_is_contiguous(v))
        return ag_set_error(AG_ERR_ARG, "%s %s: %s must be contiguous", backend, op, what);
    return ag_offset32(backend, op, v, off);
}

static int64_t pow2_at_least(int64_t n)
{
    int64_t p = 1;
    while (p < n && p < ((int64_t)1 << 30)) p *= 2;
    return p;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int32_t flag(const ag_view *v, int32_t bit) { return v ? bit : 0; }

/* ---- layer norm: x [rows, D] ------------------------------------------------ */

ag_status ag_layer_norm_plan(const char *backend, const ag_norm_args *a, bool backward,
                             int64_t wg, ag_norm_plan *p)
{
    const char *op = backward ? "layer_norm_backward" : "layer_norm";
    if (!a || !a->x) return ag_set_error(AG_ERR_ARG, "%s %s: NULL input", backend, op);
    if (backward && (!a->dy || !a->mean || !a->rstd))
        return ag_set_error(AG_ERR_ARG, "%s %s: needs dy, mean and rstd", backend, op);
    if (!backward && !a->y) return ag_set_error(AG_ERR_ARG, "%s %s: NULL output", backend, op);
    ag_status s = ag_check_view(backend, op, "x", a->x, AG_F32);
    if (s != AG_OK) return s;
    int64_t n = ag_view_numel(a->x), rows, dim;
    /* the row length comes from the statistics, else gamma, else x's last axis */
    int64_t last = a->x->ndim ? a->x->shape[a->x->ndim - 1] : 1;
    if (a->mean) {
        rows = ag_view_numel(a->mean);
        dim = rows ? n / rows : last;
    } else {
        dim = a->gamma ? ag_view_numel(a->gamma) : last;
        rows = dim ? n / dim : 0;
    }
    if (rows * dim != n)
        return ag_set_error(AG_ERR_SHAPE, "%s %s: %lld input elements do not split into %lld rows",
                            backend, op, (long long)n, (long long)rows);
    *p = (ag_norm_plan){0};
    ag_norm_offs *o = &p->off;
    s = check_view(backend, op, "x", a->x, n, &o->x);
    if (!s && !backward) s = check_view(backend, op, "y", a->y, n, &o->y);
    if (!s && backward) s = check_view(backend, op, "dy", a->dy, n, &o->dy);
    if (!s && backward) s = check_view(backend, op, "dx", a->dx, n, &o->dx);
    if (!s) s = check_view(backend, op, "mean", a->mean, rows, &o->mean);
    if (!s) s = check_view(backend, op, "rstd", a->rstd, rows, &o->rstd);
    if (!s) s = check_view(backend, op, "gamma", a->gamma, dim, &o->gamma);
    if (!s && !backward) s = check_view(backend, op, "beta", a->beta, dim, &o->beta);
    if (!s && backward) s = check_view(backend, op, "dgamma", a->dgamma, dim, &o->dgamma);
    if (!s && backward) s = check_view(backend, op, "dbeta", a->dbeta, dim, &o->dbeta);
    if (s != AG_OK) return s;

    /* x passed the int32 check, so do its row count and length */
    p->n = 1;
    p->c = (int32_t)rows;
    p->s = (int32_t)dim;
    p->cpg = 1;
    p->wg = min64(wg, pow2_at_least(dim));
    if (!backward) {
        p->has = flag(a->gamma, AG_NORM_HAS_GAMMA) | flag(a->beta, AG_NORM_HAS_BETA) |
                 flag(a->mean, AG_NORM_HAS_MEAN) | flag(a->rstd, AG_NORM_HAS_RSTD);
        p->groups = rows;
        return AG_OK;
    }
    p->has = flag(a->gamma, AG_NORM_HAS_GAMMA) | flag(a->dx, AG_NORM_HAS_DX);
    p->groups = a->dx ? rows : 0;
    if ((!a->dgamma && !a->dbeta) || dim == 0) return AG_OK;
    /* dgamma / dbeta = sums over rows, by column blocks and row chunks */
    int64_t cpg = min64(min64(32, pow2_at_least(dim)), wg);
    int64_t R = rows > LN_CHUNK_ROWS ? LN_CHUNK_ROWS : rows > 0 ? rows : 1;
    if ((rows + R - 1) / R > LN_MAX_CHUNKS) R = (rows + LN_MAX_CHUNKS - 1) / LN_MAX_CHUNKS;
    p->param_has = flag(a->dgamma, AG_NORM_HAS_DGAMMA) | flag(a->dbeta, AG_NORM_HAS_DBETA);
    p->param_cpg = (int32_t)cpg;
    p->chunk_rows = (int32_t)R;
    p->nchunk = (int32_t)(rows > 0 ? (rows + R - 1) / R : 1);
    p->param_wg = wg;
    p->blocks = (dim + cpg - 1) / cpg;
    return AG_OK;
}

/* ---- batch norm: x [N, C, S] ------------------------------------------------- */

ag_status ag_batch_norm_plan(const char *backend, const ag_norm_args *a, bool backward,
                             int64_t wg, ag_norm_plan *p)
{
    const char *op = backward ? "batch_norm_backward" : "batch_norm";
    if (!a || !a->x) return ag_set_error(AG_ERR_ARG, "%s %s: NULL input", backend, op);
    ag_status s = ag_check_view(backend, op, "x", a->x, AG_F32);
    if (s != AG_OK) return s;
    if (a->x->ndim < 2)
        return ag_set_error(AG_ERR_SHAPE, "%s %s: expected input [N, C, ...], got %d dims",
                            backend, op, a->x->ndim);
    int64_t n = a->x->shape[0], ch = a->x->shape[1], sp = 1;
    for (int d = 2; d < a->x->ndim; d++) sp *= a->x->shape[d];
    if (backward && (!a->dy || !a->mean || !a->rstd))
        return ag_set_error(AG_ERR_ARG, "%s %s: needs dy, mean and rstd", backend, op);
    if (!backward && !a->y) return ag_set_error(AG_ERR_ARG, "%s %s: NULL output", backend, op);
    if (!backward && !a->training && (!a->running_mean || !a->running_var))
        return ag_set_error(AG_ERR_ARG, "%s %s: eval mode needs running_mean and running_var",
                            backend, op);
    if (!backward && a->training && n * sp == 1 && ch > 0)
        return ag_set_error(AG_ERR_SHAPE,
                            "%s %s: training needs more than one value per channel, got "
                            "input [%lld, %lld, ...] with %lld values per channel",
                            backend, op, (long long)n, (long long)ch, (long long)(n * sp));
    int64_t total = n * ch * sp;
    *p = (ag_norm_plan){0};
    ag_norm_offs *o = &p->off;
    s = check_view(backend, op, "x", a->x, total, &o->x);
    if (!s && !backward) s = check_view(backend, op, "y", a->y, total, &o->y);
    if (!s && backward) s = check_view(backend, op, "dy", a->dy, total, &o->dy);
    if (!s && backward) s = check_view(backend, op, "dx", a->dx, total, &o->dx);
    if (!s) s = check_view(backend, op, "mean", a->mean, ch, &o->mean);
    if (!s) s = check_view(backend, op, "rstd", a->rstd, ch, &o->rstd);
    if (!s) s = check_view(backend, op, "gamma", a->gamma, ch, &o->gamma);
    if (!s) s = check_view(backend, op, "beta", a->beta, ch, &o->beta);
    if (!s && !backward) s = check_view(backend, op, "running_mean", a->running_mean, ch, &o->rmean);
    if (!s && !backward) s = check_view(backend, op, "running_var", a->running_var, ch, &o->rvar);
    if (!s && backward) s = check_view(backend, op, "dgamma", a->dgamma, ch, &o->dgamma);
    if (!s && backward) s = check_view(backend, op, "dbeta", a->dbeta, ch, &o->dbeta);
    if (s != AG_OK) return s;

    /* x passed the int32 check, so do its dimensions */
    p->n = (int32_t)n;
    p->c = (int32_t)ch;
    p->s = (int32_t)sp;
    if (backward)
        p->has = flag(a->gamma, AG_NORM_HAS_GAMMA) | flag(a->dx, AG_NORM_HAS_DX) |
                 flag(a->dgamma, AG_NORM_HAS_DGAMMA) | flag(a->dbeta, AG_NORM_HAS_DBETA);
    else
        p->has = flag(a->gamma, AG_NORM_HAS_GAMMA) | flag(a->beta, AG_NORM_HAS_BETA) |
                 flag(a->mean, AG_NORM_HAS_MEAN) | flag(a->rstd, AG_NORM_HAS_RSTD) |
                 flag(a->running_mean, AG_NORM_HAS_RMEAN) |
                 flag(a->running_var, AG_NORM_HAS_RVAR);
    if (ch == 0 || (backward && !a->dx && !a->dgamma && !a->dbeta)) return AG_OK;
    /* several channels a group only when S == 1, so that neighbouring items
     * read neighbouring addresses */
    int64_t cpg = sp == 1 ? min64(min64(32, pow2_at_least(ch)), wg) : 1;
    p->cpg = (int32_t)cpg;
    p->wg = min64(wg, cpg * pow2_at_least(n * sp));
    p->groups = (ch + cpg - 1) / cpg;
    return AG_OK;
}
