/* Max and average 2-D pooling (NCHW), threaded over (image, channel) planes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cpu.h"

#define PAR_MIN 16384

typedef struct pool_dims {
    int64_t planes, h, w, oh, ow;
    int64_t kh, kw, sh, sw, ph, pw;
} pool_dims;


/* Checks x [N, C, H, W], y [N, C, OH, OW] and indices (int32, y's shape) when given. */
static ag_status pool_setup(const char *op, ag_pool_op kind, const ag_pool2d_params *p,
                            const ag_view *x, const ag_view *y, const ag_view *idx, pool_dims *d)
{
    if (!p) return ag_set_error(AG_ERR_ARG, "%s: NULL parameters", op);
    if (kind != AG_POOL_MAX && kind != AG_POOL_AVG)
        return ag_set_error(AG_ERR_ARG, "%s: unknown pooling op %d", op, (int)kind);
    if (p->kernel[0] < 1 || p->kernel[1] < 1 || p->stride[0] < 1 || p->stride[1] < 1 ||
        p->padding[0] < 0 || p->padding[1] < 0)
        return ag_set_error(AG_ERR_ARG,
                            "%s: bad parameters kernel (%d, %d), stride (%d, %d), padding (%d, %d)",
                            op, p->kernel[0], p->kernel[1], p->stride[0], p->stride[1],
                            p->padding[0], p->padding[1]);
    if (x->dtype != AG_F32 || y->dtype != AG_F32 || (idx && idx->dtype != AG_I32))
        return ag_set_error(AG_ERR_DTYPE, "%s: expected f32 data and int32 indices", op);
    char sx[96], sy[96];
    ag_view_shape_str(x, sx, sizeof sx);
    ag_view_shape_str(y, sy, sizeof sy);
    if (x->ndim != 4 || y->ndim != 4)
        return ag_set_error(AG_ERR_SHAPE, "%s: expected 4-D input and output, got %s and %s", op,
                            sx, sy);
    *d = (pool_dims){.h = x->shape[2], .w = x->shape[3], .kh = p->kernel[0], .kw = p->kernel[1],
                     .sh = p->stride[0], .sw = p->stride[1], .ph = p->padding[0],
                     .pw = p->padding[1]};
    int64_t eh = d->h + 2 * d->ph - d->kh, ew = d->w + 2 * d->pw - d->kw;
    if (eh < 0 || ew < 0)
        return ag_set_error(AG_ERR_SHAPE, "%s: kernel (%lld, %lld) larger than the padded input %s",
                            op, (long long)d->kh, (long long)d->kw, sx);
    d->oh = eh / d->sh + 1;
    d->ow = ew / d->sw + 1;
    d->planes = x->shape[0] * x->shape[1];
    if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] || y->shape[2] != d->oh ||
        y->shape[3] != d->ow)
        return ag_set_error(AG_ERR_SHAPE,
                            "%s: input %s needs output [%lld, %lld, %lld, %lld], got %s", op, sx,
                            (long long)x->shape[0], (long long)x->shape[1], (long long)d->oh,
                            (long long)d->ow, sy);
    if (idx) {
        bool same = idx->ndim == 4;
        for (int k = 0; same && k < 4; k++) same = idx->shape[k] == y->shape[k];
        if (!same) {
            char si[96];
            ag_view_shape_str(idx, si, sizeof si);
            return ag_set_error(AG_ERR_SHAPE, "%s: indices %s must have the output's shape %s", op,
                                si, sy);
        }
    }
    return AG_OK;
}

/* The window's rows [*h0, *h1) and columns [*w0, *w1) inside the input. */
static void window(const pool_dims *d, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1,
                   int64_t *w0, int64_t *w1)
{
    int64_t hs = oh * d->sh - d->ph, ws = ow * d->sw - d->pw;
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = hs + d->kh < d->h ? hs + d->kh : d->h;
    *w1 = ws + d->kw < d->w ? ws + d->kw : d->w;
}

ag_status cpu_pool2d(void *ctx, ag_pool_op op, const ag_pool2d_params *p, const ag_view *y,
                     const ag_view *indices, const ag_view *x)
{
    (void)ctx;
    pool_dims d;
    const ag_view *idx = op == AG_POOL_MAX ? indices : NULL;
    ag_status s = pool_setup("pool2d", op, p, x, y, idx, &d);
    if (s) return s;
    const float *xd = cpu_f32(x);
    float *yd = cpu_f32(y);
    int32_t *id = idx ? cpu_i32(idx) : NULL;
    float inv = 1.0f / (float)(d.kh * d.kw);

    OMP(omp parallel for schedule(static) num_threads(cpu_threads())
        if(d.planes * d.oh * d.ow * d.kh * d.kw > PAR_MIN))
    for (int64_t pl = 0; pl < d.planes; pl++) {
        const float *xp = xd + pl * d.h * d.w;
        float *yp = yd + pl * d.oh * d.ow;
        int32_t *ip = id ? id + pl * d.oh * d.ow : NULL;
        for (int64_t oh = 0; oh < d.oh; oh++)
            for (int64_t ow = 0; ow < d.ow; ow++) {
                int64_t h0, h1, w0, w1;
                window(&d, oh, ow, &h0, &h1, &w0, &w1);
                int64_t o = oh * d.ow + ow;
                if (op == AG_POOL_AVG) {
                    float sum = 0;
                    for (int64_t i = h0; i < h1; i++)
                        for (int64_t j = w0; j < w1; j++) sum += xp[i * d.w + j];
                    yp[o] = sum * inv;
                    continue;
                }
                /* first maximum wins; a NaN wins over everything and stops the search */
                float best = -INFINITY;
                int64_t at = -1;
                for (int64_t i = h0; i < h1 && !(at >= 0 && isnan(best)); i++)
                    for (int64_t j = w0; j < w1; j++) {
                        float v = xp[i * d.w + j];
                        if (at < 0 || v > best || isnan(v)) {
                            best = v;
                            at = i * d.w + j;
                            if (isnan(v)) break;
                        }
                    }
                yp[o] = best;
                if (ip) ip[o] = (int32_t)at;
            }
    }
    return AG_OK;
}

ag_status cpu_pool2d_backward(void *ctx, ag_pool_op op, const ag_pool2d_params *p,
                              const ag_view *dx, const ag_view *dy, const ag_view *indices)
{
    (void)ctx;
    pool_dims d;
    if (op == AG_POOL_MAX && !indices)
        return ag_set_error(AG_ERR_ARG, "pool2d_backward: max pooling needs the indices");
    const ag_view *idx = op == AG_POOL_MAX ? indices : NULL;
    ag_status s = pool_setup("pool2d_backward", op, p, dx, dy, idx, &d);
    if (s) return s;
    float *dxd = cpu_f32(dx);
    const float *dyd = cpu_f32(dy);
    const int32_t *id = idx ? cpu_i32(idx) : NULL;
    float inv = 1.0f / (float)(d.kh * d.kw);
    int64_t hw = d.h * d.w;

    OMP(omp parallel for schedule(static) num_threads(cpu_threads())
        if(d.planes * (d.h * d.w + d.oh * d.ow) > PAR_MIN))
    for (int64_t pl = 0; pl < d.planes; pl++) {
        float *xp = dxd + pl * hw;
        const float *gp = dyd + pl * d.oh * d.ow;
        memset(xp, 0, (size_t)hw * sizeof *xp);
        if (id) {
            const int32_t *ip = id + pl * d.oh * d.ow;
            for (int64_t o = 0; o < d.oh * d.ow; o++)
                if (ip[o] >= 0 && ip[o] < hw) xp[ip[o]] += gp[o];
            continue;
        }
        for (int64_t oh = 0; oh < d.oh; oh++)
            for (int64_t ow = 0; ow < d.ow; ow++) {
                int64_t h0, h1, w0, w1;
                window(&d, oh, ow, &h0, &h1, &w0, &w1);
                float g = gp[oh * d.ow + ow] * inv;
                for (int64_t i = h0; i < h1; i++)
                    for (int64_t j = w0; j < w1; j++) xp[i * d.w + j] += g;
            }
    }
    return AG_OK;
}
