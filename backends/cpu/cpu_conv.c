/* 2-D convolution (NCHW) as im2col + cpu_sgemm per image and group.
 *
 * Images are spread over threads, each with its own column buffer, when the batch
 * can keep the cores busy; otherwise images run one after another and the GEMM
 * threads itself. All scratch is allocated once per call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"


/* Batch threading keeps at most this much column scratch alive (unless one
 * thread's share alone is larger). */
#define SCRATCH_CAP ((int64_t)256 << 20)
/* Per-image GEMMs below this many multiply-adds are too small to thread inside. */
#define SMALL_GEMM ((int64_t)1 << 21)

typedef struct conv_dims {
    int64_t n, c, h, w, oc, kh, kw, oh, ow;
    int64_t g, cg, ocg;
    int64_t kk;  /* rows of a column matrix: cg * kh * kw */
    int64_t hw, ohw;
    int64_t sh, sw, ph, pw, dh, dw;
    bool direct; /* 1x1, stride 1, no padding: the input is its own column matrix */
} conv_dims;


static ag_status shape_error(const char *op, const char *why, const ag_view *x, const ag_view *w,
                             const ag_view *y)
{
    char sx[96], sw[96], sy[96];
    ag_view_shape_str(x, sx, sizeof sx);
    ag_view_shape_str(w, sw, sizeof sw);
    ag_view_shape_str(y, sy, sizeof sy);
    return ag_set_error(AG_ERR_SHAPE, "%s: %s (input %s, weight %s, output %s)", op, why, sx, sw,
                        sy);
}

/* Checks x [N, C, H, W], w [OC, C/g, KH, KW], y [N, OC, OH, OW] and the parameters. */
static ag_status conv_setup(const char *op, const ag_conv2d_params *p, const ag_view *x,
                            const ag_view *w, const ag_view *y, conv_dims *d)
{
    if (!p) return ag_set_error(AG_ERR_ARG, "%s: NULL parameters", op);
    if (x->dtype != AG_F32 || w->dtype != AG_F32 || y->dtype != AG_F32)
        return ag_set_error(AG_ERR_DTYPE, "%s: expected f32 input, weight and output", op);
    if (p->stride[0] < 1 || p->stride[1] < 1 || p->dilation[0] < 1 || p->dilation[1] < 1 ||
        p->padding[0] < 0 || p->padding[1] < 0 || p->groups < 1)
        return ag_set_error(AG_ERR_ARG,
                            "%s: bad parameters stride (%d, %d), padding (%d, %d), dilation "
                            "(%d, %d), groups %d",
                            op, p->stride[0], p->stride[1], p->padding[0], p->padding[1],
                            p->dilation[0], p->dilation[1], p->groups);
    if (x->ndim != 4 || w->ndim != 4 || y->ndim != 4)
        return shape_error(op, "expected 4-D input, weight and output", x, w, y);
    *d = (conv_dims){
        .n = x->shape[0], .c = x->shape[1], .h = x->shape[2], .w = x->shape[3],
        .oc = w->shape[0], .kh = w->shape[2], .kw = w->shape[3], .g = p->groups,
        .sh = p->stride[0], .sw = p->stride[1], .ph = p->padding[0], .pw = p->padding[1],
        .dh = p->dilation[0], .dw = p->dilation[1],
    };
    if (d->c % d->g || d->oc % d->g || w->shape[1] != d->c / d->g)
        return shape_error(op, "channels do not match the weight and groups", x, w, y);
    int64_t eh = d->h + 2 * d->ph - d->dh * (d->kh - 1) - 1;
    int64_t ew = d->w + 2 * d->pw - d->dw * (d->kw - 1) - 1;
    if (d->kh < 1 || d->kw < 1 || eh < 0 || ew < 0)
        return shape_error(op, "kernel larger than the padded input", x, w, y);
    d->oh = eh / d->sh + 1;
    d->ow = ew / d->sw + 1;
    if (y->shape[0] != d->n || y->shape[1] != d->oc || y->shape[2] != d->oh ||
        y->shape[3] != d->ow) {
        char why[128];
        snprintf(why, sizeof why, "output must be [%lld, %lld, %lld, %lld]", (long long)d->n,
                 (long long)d->oc, (long long)d->oh, (long long)d->ow);
        return shape_error(op, why, x, w, y);
    }
    d->cg = d->c / d->g;
    d->ocg = d->oc / d->g;
    d->kk = d->cg * d->kh * d->kw;
    d->hw = d->h * d->w;
    d->ohw = d->oh * d->ow;
    d->direct = d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 && d->pw == 0;
    return AG_OK;
}

/* Output columns [lo, hi) whose input column ow * sw + off lies inside [0, w). */
static void valid_cols(const conv_dims *d, int64_t off, int64_t *lo, int64_t *hi)
{
    int64_t l = off >= 0 ? 0 : (-off + d->sw - 1) / d->sw;
    int64_t lim = d->w - off;
    int64_t h = lim <= 0 ? 0 : (lim + d->sw - 1) / d->sw;
    if (h > d->ow) h = d->ow;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* col [cg * kh * kw, oh * ow] from one image's group of channels x [cg, h, w]. */
static void im2col(const conv_dims *d, const float *x, float *col, bool par)
{
    (void)par; /* unused without OpenMP */
    OMP(omp parallel for schedule(static) num_threads(cpu_threads()) if(par))
    for (int64_t c = 0; c < d->cg; c++) {
        const float *xc = x + c * d->hw;
        for (int64_t ki = 0; ki < d->kh; ki++)
            for (int64_t kj = 0; kj < d->kw; kj++) {
                float *cr = col + ((c * d->kh + ki) * d->kw + kj) * d->ohw;
                int64_t off = kj * d->dw - d->pw, lo, hi;
                valid_cols(d, off, &lo, &hi);
                for (int64_t oh = 0; oh < d->oh; oh++, cr += d->ow) {
                    int64_t ih = oh * d->sh - d->ph + ki * d->dh;
                    if (ih < 0 || ih >= d->h) {
                        memset(cr, 0, (size_t)d->ow * sizeof *cr);
                        continue;
                    }
                    const float *xr = xc + ih * d->w + off;
                    for (int64_t o = 0; o < lo; o++) cr[o] = 0;
                    for (int64_t o = lo; o < hi; o++) cr[o] = xr[o * d->sw];
                    for (int64_t o = hi; o < d->ow; o++) cr[o] = 0;
                }
            }
    }
}

/* x [cg, h, w] += the columns of col scattered back to their inputs. */
static void col2im(const conv_dims *d, const float *col, float *x, bool par)
{
    (void)par;
    OMP(omp parallel for schedule(static) num_threads(cpu_threads()) if(par))
    for (int64_t c = 0; c < d->cg; c++) {
        float *xc = x + c * d->hw;
        for (int64_t ki = 0; ki < d->kh; ki++)
            for (int64_t kj = 0; kj < d->kw; kj++) {
                const float *cr = col + ((c * d->kh + ki) * d->kw + kj) * d->ohw;
                int64_t off = kj * d->dw - d->pw, lo, hi;
                valid_cols(d, off, &lo, &hi);
                for (int64_t oh = 0; oh < d->oh; oh++, cr += d->ow) {
                    int64_t ih = oh * d->sh - d->ph + ki * d->dh;
                    if (ih < 0 || ih >= d->h) continue;
                    float *xr = xc + ih * d->w + off;
                    for (int64_t o = lo; o < hi; o++) xr[o * d->sw] += cr[o];
                }
            }
    }
}

/* How many threads share the batch, and scratch for them: per_thread floats each
 * plus shared floats. *nt is 1 when images run one after another. */
static ag_status plan(const char *op, const conv_dims *d, int64_t per_thread, int64_t shared,
                      int *nt, float **scratch)
{
    int64_t cores = cpu_threads(), t = cores < d->n ? cores : d->n;
    if (t > 1 && per_thread > 0 && t * per_thread * (int64_t)sizeof(float) > SCRATCH_CAP) {
        t = SCRATCH_CAP / (per_thread * (int64_t)sizeof(float));
        if (t < 1) t = 1;
    }
    /* Fewer image threads than cores leaves cores idle, unless the GEMMs are too
     * small to thread themselves anyway. */
    int64_t work = d->ocg * d->ohw * d->kk * d->g;
    if (t < cores && work >= SMALL_GEMM) t = 1;
    *scratch = NULL;
    for (;;) {
        int64_t floats = t * per_thread + shared;
        if (floats == 0) break;
        *scratch = malloc((size_t)floats * sizeof(float));
        if (*scratch || t == 1) break;
        t = 1; /* retry with a single column buffer */
    }
    if (!*scratch && t * per_thread + shared > 0)
        return ag_set_error(AG_ERR_OOM, "%s: cannot allocate %lld bytes of column scratch", op,
                            (long long)((t * per_thread + shared) * (int64_t)sizeof(float)));
    *nt = (int)t;
    return AG_OK;
}


ag_status cpu_conv2d(void *ctx, const ag_conv2d_params *p, const ag_view *y, const ag_view *x,
                     const ag_view *w)
{
    (void)ctx;
    conv_dims d;
    ag_status s = conv_setup("conv2d", p, x, w, y, &d);
    if (s) return s;
    if (cpu_numel(y) == 0) return AG_OK;
    int64_t per = d.direct ? 0 : d.kk * d.ohw;
    int nt;
    float *scratch;
    if ((s = plan("conv2d", &d, per, 0, &nt, &scratch))) return s;
    const float *xd = cpu_f32(x), *wd = cpu_f32(w);
    float *yd = cpu_f32(y);

    OMP(omp parallel num_threads(nt) if(nt > 1))
    {
        int t = cpu_team_rank(), tn = cpu_team_size();
        float *col = scratch ? scratch + t * per : NULL;
        for (int64_t n = d.n * t / tn; n < d.n * (t + 1) / tn; n++)
            for (int64_t g = 0; g < d.g; g++) {
                const float *xg = xd + (n * d.c + g * d.cg) * d.hw;
                float *yg = yd + (n * d.oc + g * d.ocg) * d.ohw;
                if (d.kk == 0) {
                    memset(yg, 0, (size_t)(d.ocg * d.ohw) * sizeof *yg);
                    continue;
                }
                if (!d.direct) im2col(&d, xg, col, nt == 1);
                cpu_sgemm(d.ocg, d.ohw, d.kk, 1.0f, wd + g * d.ocg * d.kk, d.kk, 1,
                          d.direct ? xg : col, d.ohw, 1, 0.0f, yg, d.ohw);
            }
    }
    free(scratch);
    return AG_OK;
}

ag_status cpu_conv2d_backward_input(void *ctx, const ag_conv2d_params *p, const ag_view *dx,
                                    const ag_view *dy, const ag_view *w)
{
    (void)ctx;
    conv_dims d;
    ag_status s = conv_setup("conv2d_backward_input", p, dx, w, dy, &d);
    if (s) return s;
    if (cpu_numel(dx) == 0) return AG_OK;
    int64_t per = d.direct ? 0 : d.kk * d.ohw;
    int nt;
    float *scratch;
    if ((s = plan("conv2d_backward_input", &d, per, 0, &nt, &scratch))) return s;
    const float *dyd = cpu_f32(dy), *wd = cpu_f32(w);
    float *dxd = cpu_f32(dx);

    OMP(omp parallel num_threads(nt) if(nt > 1))
    {
        int t = cpu_team_rank(), tn = cpu_team_size();
        float *col = scratch ? scratch + t * per : NULL;
        for (int64_t n = d.n * t / tn; n < d.n * (t + 1) / tn; n++)
            for (int64_t g = 0; g < d.g; g++) {
                float *dxg = dxd + (n * d.c + g * d.cg) * d.hw;
                const float *dyg = dyd + (n * d.oc + g * d.ocg) * d.ohw;
                if (d.ocg == 0 || !d.direct)
                    memset(dxg, 0, (size_t)(d.cg * d.hw) * sizeof *dxg);
                if (d.ocg == 0) continue;
                /* columns = W_g^T dy_g, then each column goes back to its input */
                cpu_sgemm(d.kk, d.ohw, d.ocg, 1.0f, wd + g * d.ocg * d.kk, 1, d.kk, dyg, d.ohw, 1,
                          0.0f, d.direct ? dxg : col, d.ohw);
                if (!d.direct) col2im(&d, col, dxg, nt == 1);
            }
    }
    free(scratch);
    return AG_OK;
}

ag_status cpu_conv2d_backward_weight(void *ctx, const ag_conv2d_params *p, const ag_view *dw,
                                     const ag_view *dy, const ag_view *x)
{
    (void)ctx;
    conv_dims d;
    ag_status s = conv_setup("conv2d_backward_weight", p, x, dw, dy, &d);
    if (s) return s;
    int64_t wn = cpu_numel(dw);
    float *dwd = cpu_f32(dw);
    if (wn == 0) return AG_OK;
    if (d.n == 0) {
        memset(dwd, 0, (size_t)wn * sizeof *dwd);
        return AG_OK;
    }
    /* each thread: a column buffer, and a partial dw except thread 0, which
     * accumulates into dw itself; scratch = [nt column buffers][nt - 1 partials] */
    int64_t col = d.direct ? 0 : d.kk * d.ohw;
    int nt;
    float *scratch;
    if ((s = plan("conv2d_backward_weight", &d, col + wn, -wn, &nt, &scratch))) return s;
    const float *dyd = cpu_f32(dy), *xd = cpu_f32(x);
    float *partials = scratch ? scratch + nt * col - wn : NULL;
    int used = 1;

    OMP(omp parallel num_threads(nt) if(nt > 1))
    {
        int t = cpu_team_rank(), tn = cpu_team_size();
        if (t == 0) used = tn;
        float *colbuf = scratch ? scratch + t * col : NULL;
        float *acc = t == 0 ? dwd : partials + t * wn;
        int64_t first = d.n * t / tn, end = d.n * (t + 1) / tn;
        for (int64_t n = first; n < end; n++)
            for (int64_t g = 0; g < d.g; g++) {
                const float *xg = xd + (n * d.c + g * d.cg) * d.hw;
                const float *dyg = dyd + (n * d.oc + g * d.ocg) * d.ohw;
                if (!d.direct) im2col(&d, xg, colbuf, nt == 1);
                /* dw_g (+)= dy_g col^T */
                cpu_sgemm(d.ocg, d.kk, d.ohw, 1.0f, dyg, d.ohw, 1, d.direct ? xg : colbuf, 1,
                          d.ohw, n == first ? 0.0f : 1.0f, acc + g * d.ocg * d.kk, d.kk);
            }
    }
    if (used > 1) {
        OMP(omp parallel for schedule(static) num_threads(cpu_threads()) if(wn > 16384))
        for (int64_t i = 0; i < wn; i++) {
            float v = dwd[i];
            for (int t = 1; t < used; t++) v += partials[t * wn + i];
            dwd[i] = v;
        }
    }
    free(scratch);
    return AG_OK;
}
