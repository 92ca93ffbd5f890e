/* Layer and batch normalisation, forward and backward. Statistics and gradient
 * sums accumulate in double. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cpu.h"


#define PAR_MIN 16384
/* parts of layer-norm backward's dgamma and dbeta sums (a size rule, not the threads) */
#define LN_PARTS 8

static inline const float *opt_f32(const ag_view *v) { return v ? cpu_f32(v) : NULL; }
static inline float *opt_out(const ag_view *v) { return v ? cpu_f32(v) : NULL; }

/* Every non-NULL view among vs is f32 with n elements. */
static ag_status check_views(const char *op, const char *what, int64_t n, int count,
                             const ag_view *const *vs)
{
    for (int i = 0; i < count; i++) {
        if (!vs[i]) continue;
        if (vs[i]->dtype != AG_F32)
            return ag_set_error(AG_ERR_DTYPE, "%s: expected f32 %s", op, what);
        if (ag_view_numel(vs[i]) != n)
            return ag_set_error(AG_ERR_SHAPE, "%s: %s has %lld elements, expected %lld", op, what,
                                (long long)ag_view_numel(vs[i]), (long long)n);
    }
    return AG_OK;
}

/* ---- layer norm: x [rows, D] ------------------------------------------- */

static ag_status ln_setup(const char *op, const ag_norm_args *a, bool backward, int64_t *rows,
                          int64_t *dim)
{
    if (!a || !a->x) return ag_set_error(AG_ERR_ARG, "%s: NULL input", op);
    if (backward && (!a->dy || !a->mean || !a->rstd))
        return ag_set_error(AG_ERR_ARG, "%s: needs dy, mean and rstd", op);
    if (!backward && !a->y) return ag_set_error(AG_ERR_ARG, "%s: NULL output", op);
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
        return ag_set_error(AG_ERR_SHAPE, "%s: %lld input elements do not split into %lld rows",
                            op, (long long)n, (long long)*rows);
    const ag_view *full[] = {a->x, backward ? NULL : a->y, a->dy, backward ? a->dx : NULL};
    const ag_view *stats[] = {a->mean, a->rstd};
    const ag_view *params[] = {a->gamma, a->beta, backward ? a->dgamma : NULL,
                               backward ? a->dbeta : NULL};
    ag_status s = check_views(op, "input/output", n, 4, full);
    if (!s) s = check_views(op, "mean/rstd", *rows, 2, stats);
    if (!s) s = check_views(op, "gamma/beta", *dim, 4, params);
    return s;
}

ag_status cpu_layer_norm(void *ctx, const ag_norm_args *a)
{
    (void)ctx;
    int64_t rows, dim;
    ag_status s = ln_setup("layer_norm", a, false, &rows, &dim);
    if (s) return s;
    const float *x = cpu_f32(a->x), *gamma = opt_f32(a->gamma), *beta = opt_f32(a->beta);
    float *y = cpu_f32(a->y), *mean = opt_out(a->mean), *rstd = opt_out(a->rstd);
    double eps = a->eps;

    OMP(omp parallel for schedule(static) num_threads(cpu_threads())
        if(rows * dim > PAR_MIN && rows > 1))
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        /* omp simd: lanes of partial sums (the order is fixed by the ISA, not
         * the threads) instead of one chain of dependent double adds */
        double m = 0, v = 0;
        OMP(omp simd reduction(+ : m))
        for (int64_t i = 0; i < dim; i++) m += xr[i];
        m /= (double)dim;
        OMP(omp simd reduction(+ : v))
        for (int64_t i = 0; i < dim; i++) v += (xr[i] - m) * (xr[i] - m);
        double rs = 1.0 / sqrt(v / (double)dim + eps);
        OMP(omp simd)
        for (int64_t i = 0; i < dim; i++) {
            double h = (xr[i] - m) * rs;
            if (gamma) h *= gamma[i];
            if (beta) h += beta[i];
            yr[i] = (float)h;
        }
        if (mean) mean[r] = (float)m;
        if (rstd) rstd[r] = (float)rs;
    }
    return AG_OK;
}


ag_status cpu_layer_norm_backward(void *ctx, const ag_norm_args *a)
{
    (void)ctx;
    int64_t rows, dim;
    ag_status s = ln_setup("layer_norm_backward", a, true, &rows, &dim);
    if (s) return s;
    const float *x = cpu_f32(a->x), *dy = cpu_f32(a->dy), *gamma = opt_f32(a->gamma);
    const float *mean = cpu_f32(a->mean), *rstd = cpu_f32(a->rstd);
    float *dx = opt_out(a->dx), *dgamma = opt_out(a->dgamma), *dbeta = opt_out(a->dbeta);
    bool params = dgamma || dbeta;
    /* parts of the rows, each with its partial sums of dgamma and dbeta, added
     * in part order: the count follows the sizes, whatever threads run them */
    int nt = rows * dim > PAR_MIN && rows > 1 ? LN_PARTS : 1;
    if (nt > rows) nt = (int)rows;
    double *part = NULL;
    if (params) {
        part = calloc((size_t)nt * 2 * (size_t)(dim ? dim : 1), sizeof *part);
        if (!part)
            return ag_set_error(AG_ERR_OOM, "layer_norm_backward: cannot allocate %lld bytes",
                                (long long)(nt * 2 * dim * (int64_t)sizeof *part));
    }
    const int team = nt > 1 ? cpu_threads() : 1;
    (void)team; /* unused without OpenMP */

    OMP(omp parallel for schedule(static) num_threads(team < nt ? team : nt) if(nt > 1))
    for (int t = 0; t < nt; t++) {
        double *pg = part ? part + (size_t)t * 2 * dim : NULL, *pb = pg ? pg + dim : NULL;
        for (int64_t r = rows * t / nt; r < rows * (t + 1) / nt; r++) {
            const float *xr = x + r * dim, *gr = dy + r * dim;
            double m = mean[r], rs = rstd[r];
            if (params)
                OMP(omp simd)
                for (int64_t i = 0; i < dim; i++) {
                    pg[i] += gr[i] * (xr[i] - m) * rs;
                    pb[i] += gr[i];
                }
            if (!dx) continue;
            /* dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) */
            double s1 = 0, s2 = 0;
            OMP(omp simd reduction(+ : s1, s2))
            for (int64_t i = 0; i < dim; i++) {
                double g = gamma ? (double)gr[i] * gamma[i] : gr[i];
                s1 += g;
                s2 += g * (xr[i] - m) * rs;
            }
            s1 /= (double)dim;
            s2 /= (double)dim;
            float *dr = dx + r * dim;
            OMP(omp simd)
            for (int64_t i = 0; i < dim; i++) {
                double g = gamma ? (double)gr[i] * gamma[i] : gr[i];
                dr[i] = (float)(rs * (g - s1 - (xr[i] - m) * rs * s2));
            }
        }
    }
    if (params)
        for (int64_t i = 0; i < dim; i++) {
            double g = 0, b = 0;
            for (int t = 0; t < nt; t++) {
                g += part[(size_t)t * 2 * dim + i];
                b += part[(size_t)t * 2 * dim + dim + i];
            }
            if (dgamma) dgamma[i] = (float)g;
            if (dbeta) dbeta[i] = (float)b;
        }
    free(part);
    return AG_OK;
}

/* ---- batch norm: x [N, C, S] -------------------------------------------- */

static ag_status bn_setup(const char *op, const ag_norm_args *a, bool backward, int64_t *n,
                          int64_t *c, int64_t *sp)
{
    if (!a || !a->x) return ag_set_error(AG_ERR_ARG, "%s: NULL input", op);
    if (a->x->ndim < 2)
        return ag_set_error(AG_ERR_SHAPE, "%s: expected input [N, C, ...], got %d dims", op,
                            a->x->ndim);
    *n = a->x->shape[0];
    *c = a->x->shape[1];
    *sp = 1;
    for (int d = 2; d < a->x->ndim; d++) *sp *= a->x->shape[d];
    if (backward && (!a->dy || !a->mean || !a->rstd))
        return ag_set_error(AG_ERR_ARG, "%s: needs dy, mean and rstd", op);
    if (!backward && !a->y) return ag_set_error(AG_ERR_ARG, "%s: NULL output", op);
    if (!backward && !a->training && (!a->running_mean || !a->running_var))
        return ag_set_error(AG_ERR_ARG, "%s: eval mode needs running_mean and running_var", op);
    if (!backward && a->training && *n * *sp == 1 && *c > 0)
        return ag_set_error(AG_ERR_SHAPE,
                            "%s: training needs more than one value per channel, got input "
                            "[%lld, %lld, ...] with %lld values per channel",
                            op, (long long)*n, (long long)*c, (long long)(*n * *sp));
    const ag_view *full[] = {a->x, backward ? NULL : a->y, a->dy, backward ? a->dx : NULL};
    const ag_view *chan[] = {a->mean, a->rstd, a->gamma, a->beta,
                             backward ? NULL : a->running_mean, backward ? NULL : a->running_var,
                             backward ? a->dgamma : NULL, backward ? a->dbeta : NULL};
    ag_status s = check_views(op, "input/output", *n * *c * *sp, 4, full);
    if (!s) s = check_views(op, "per-channel view", *c, 8, chan);
    return s;
}

ag_status cpu_batch_norm(void *ctx, const ag_norm_args *a)
{
    (void)ctx;
    int64_t n, c, sp;
    ag_status s = bn_setup("batch_norm", a, false, &n, &c, &sp);
    if (s) return s;
    const float *x = cpu_f32(a->x), *gamma = opt_f32(a->gamma), *beta = opt_f32(a->beta);
    float *y = cpu_f32(a->y), *mean = opt_out(a->mean), *rstd = opt_out(a->rstd);
    float *rmean = opt_out(a->running_mean), *rvar = opt_out(a->running_var);
    double eps = a->eps, mom = a->momentum, cnt = (double)(n * sp);
    bool training = a->training;

    OMP(omp parallel for schedule(static) num_threads(cpu_threads())
        if(n * c * sp > PAR_MIN && c > 1))
    for (int64_t ch = 0; ch < c; ch++) {
        double m, rs;
        if (training) {
            double sum = 0, sq = 0;
            for (int64_t i = 0; i < n; i++) {
                const float *xp = x + (i * c + ch) * sp;
                for (int64_t k = 0; k < sp; k++) sum += xp[k];
            }
            m = cnt > 0 ? sum / cnt : 0;
            for (int64_t i = 0; i < n; i++) {
                const float *xp = x + (i * c + ch) * sp;
                for (int64_t k = 0; k < sp; k++) sq += (xp[k] - m) * (xp[k] - m);
            }
            double var = cnt > 0 ? sq / cnt : 0;
            rs = 1.0 / sqrt(var + eps);
            if (rmean) rmean[ch] = (float)((1 - mom) * rmean[ch] + mom * m);
            double unbiased = cnt > 1 ? sq / (cnt - 1) : var;
            if (rvar) rvar[ch] = (float)((1 - mom) * rvar[ch] + mom * unbiased);
        } else {
            m = rmean[ch];
            rs = 1.0 / sqrt((double)rvar[ch] + eps);
        }
        if (mean) mean[ch] = (float)m;
        if (rstd) rstd[ch] = (float)rs;
        /* y = x * scale + shift */
        double scale = gamma ? rs * gamma[ch] : rs;
        double shift = (beta ? beta[ch] : 0) - m * scale;
        for (int64_t i = 0; i < n; i++) {
            const float *xp = x + (i * c + ch) * sp;
            float *yp = y + (i * c + ch) * sp;
            for (int64_t k = 0; k < sp; k++) yp[k] = (float)(xp[k] * scale + shift);
        }
    }
    return AG_OK;
}

ag_status cpu_batch_norm_backward(void *ctx, const ag_norm_args *a)
{
    (void)ctx;
    int64_t n, c, sp;
    ag_status s = bn_setup("batch_norm_backward", a, true, &n, &c, &sp);
    if (s) return s;
    const float *x = cpu_f32(a->x), *dy = cpu_f32(a->dy), *gamma = opt_f32(a->gamma);
    const float *mean = cpu_f32(a->mean), *rstd = cpu_f32(a->rstd);
    float *dx = opt_out(a->dx), *dgamma = opt_out(a->dgamma), *dbeta = opt_out(a->dbeta);
    double cnt = (double)(n * sp);
    bool training = a->training;

    OMP(omp parallel for schedule(static) num_threads(cpu_threads())
        if(n * c * sp > PAR_MIN && c > 1))
    for (int64_t ch = 0; ch < c; ch++) {
        double m = mean[ch], rs = rstd[ch], g = gamma ? gamma[ch] : 1.0;
        double sdy = 0, sdyx = 0; /* sum(dy), sum(dy xhat) */
        for (int64_t i = 0; i < n; i++) {
            const float *xp = x + (i * c + ch) * sp, *gp = dy + (i * c + ch) * sp;
            for (int64_t k = 0; k < sp; k++) {
                sdy += gp[k];
                sdyx += gp[k] * (xp[k] - m);
            }
        }
        sdyx *= rs;
        if (dgamma) dgamma[ch] = (float)sdyx;
        if (dbeta) dbeta[ch] = (float)sdy;
        if (!dx) continue;
        /* training: dx = g rstd (dy - mean(dy) - xhat mean(dy xhat)); eval: g rstd dy */
        double scale = g * rs;
        double mdy = training && cnt > 0 ? sdy / cnt : 0;
        double mdyx = training && cnt > 0 ? sdyx / cnt : 0;
        for (int64_t i = 0; i < n; i++) {
            const float *xp = x + (i * c + ch) * sp, *gp = dy + (i * c + ch) * sp;
            float *dp = dx + (i * c + ch) * sp;
            for (int64_t k = 0; k < sp; k++)
                dp[k] = (float)(scale * (gp[k] - mdy - (xp[k] - m) * rs * mdyx));
        }
    }
    return AG_OK;
}
