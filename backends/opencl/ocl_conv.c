/* 2-D convolution (NCHW, contiguous, no bias): kernels/conv.cl. The checks
 * follow backends/cpu/cpu_conv.c. Each op picks a tiled implicit-GEMM kernel
 * when the channel counts fill its 64 x 64 tiles reasonably and the device runs
 * 256-item work groups, else a direct kernel. Results are deterministic: no
 * atomics, and the backward-weight reduction is split by shape only. */
#include <stdio.h>

#include "ocl.h"

/* Laid out as conv_p in kernels/conv.cl. */
typedef struct conv_p {
    cl_int n, c, h, w, oc, kh, kw, oh, ow;
    cl_int sh, sw, ph, pw, dlh, dlw;
    cl_int g, cg, ocg;
} conv_p;

#define TILE 64        /* output tile side of the tiled kernels */
#define TILE_WG 256    /* their work-group size (reqd_work_group_size) */
#define TILE_K 16      /* their reduction step */
#define TILE_MIN 32    /* tiled only when both GEMM sides reach this */
#define CB 4           /* channels per work item of the direct kernels (conv.cl) */
/* Backward weight reduces over N * OH * OW in chunks of about this many steps,
 * each chunk a partial summed afterwards in a fixed order ... */
#define BWW_CHUNK 512
#define BWW_MAX_PARTS 64
/* ... holding at most this many partial floats. */
#define BWW_PART_BUDGET ((int64_t)16 << 20)

static bool contiguous(const ag_view *v)
{
    int64_t want = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && v->stride[d] != want) return false;
        want *= v->shape[d];
    }
    return true;
}

static ag_status shape_error(const char *op, const char *why, const ag_view *x, const ag_view *w,
                             const ag_view *y)
{
    char sx[96], sw[96], sy[96];
    ag_view_shape_str(x, sx, sizeof sx);
    ag_view_shape_str(w, sw, sizeof sw);
    ag_view_shape_str(y, sy, sizeof sy);
    return ag_set_error(AG_ERR_SHAPE, "opencl %s: %s (input %s, weight %s, output %s)", op, why,
                        sx, sw, sy);
}

/* Checks x [N, C, H, W], w [OC, C/g, KH, KW], y [N, OC, OH, OW] (named as the
 * op knows them) and the parameters; fills the kernel's dimensions and the
 * element offsets of x, w, y. */
static ag_status conv_setup(const char *op, const ag_conv2d_params *p, const ag_view *x,
                            const ag_view *w, const ag_view *y, const char *const names[3],
                            conv_p *d, cl_int off[3])
{
    if (!p) return ag_set_error(AG_ERR_ARG, "opencl %s: NULL parameters", op);
    const ag_view *v[3] = {x, w, y};
    ag_status s = AG_OK;
    for (int k = 0; k < 3 && s == AG_OK; k++) s = ocl_check_view(op, names[k], v[k], AG_F32);
    if (s != AG_OK) return s;
    if (p->stride[0] < 1 || p->stride[1] < 1 || p->dilation[0] < 1 || p->dilation[1] < 1 ||
        p->padding[0] < 0 || p->padding[1] < 0 || p->groups < 1)
        return ag_set_error(AG_ERR_ARG,
                            "opencl %s: bad parameters stride (%d, %d), padding (%d, %d), "
                            "dilation (%d, %d), groups %d",
                            op, p->stride[0], p->stride[1], p->padding[0], p->padding[1],
                            p->dilation[0], p->dilation[1], p->groups);
    if (x->ndim != 4 || w->ndim != 4 || y->ndim != 4)
        return shape_error(op, "expected 4-D input, weight and output", x, w, y);
    int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], wd = x->shape[3];
    int64_t oc = w->shape[0], kh = w->shape[2], kw = w->shape[3], g = p->groups;
    if (c % g || oc % g || w->shape[1] != c / g)
        return shape_error(op, "channels do not match the weight and groups", x, w, y);
    int64_t eh = h + 2 * (int64_t)p->padding[0] - p->dilation[0] * (kh - 1) - 1;
    int64_t ew = wd + 2 * (int64_t)p->padding[1] - p->dilation[1] * (kw - 1) - 1;
    if (kh < 1 || kw < 1 || eh < 0 || ew < 0)
        return shape_error(op, "kernel larger than the padded input", x, w, y);
    int64_t oh = eh / p->stride[0] + 1, ow = ew / p->stride[1] + 1;
    if (y->shape[0] != n || y->shape[1] != oc || y->shape[2] != oh || y->shape[3] != ow) {
        char why[128];
        snprintf(why, sizeof why, "output must be [%lld, %lld, %lld, %lld]", (long long)n,
                 (long long)oc, (long long)oh, (long long)ow);
        return shape_error(op, why, x, w, y);
    }
    for (int k = 0; k < 3; k++) {
        if (!contiguous(v[k]))
            return ag_set_error(AG_ERR_ARG, "opencl %s: %s is not contiguous", op, names[k]);
        if ((s = ocl_offset(op, v[k], &off[k])) != AG_OK) return s;
    }
    /* Tap positions reach h + 2 * padding; the views' extents bound the rest. */
    if (h + 2 * (int64_t)p->padding[0] > INT32_MAX || wd + 2 * (int64_t)p->padding[1] > INT32_MAX)
        return ag_set_error(AG_ERR_UNSUPPORTED,
                            "opencl %s: the padded input exceeds 32-bit indexing", op);
    *d = (conv_p){
        .n = (cl_int)n, .c = (cl_int)c, .h = (cl_int)h, .w = (cl_int)wd, .oc = (cl_int)oc,
        .kh = (cl_int)kh, .kw = (cl_int)kw, .oh = (cl_int)oh, .ow = (cl_int)ow,
        .sh = p->stride[0], .sw = p->stride[1], .ph = p->padding[0], .pw = p->padding[1],
        .dlh = p->dilation[0], .dlw = p->dilation[1], .g = (cl_int)g, .cg = (cl_int)(c / g),
        .ocg = (cl_int)(oc / g),
    };
    return AG_OK;
}

/* Whether to run the tiled kernel for an m x n output reducing over k: sides
 * that fill its tiles, 256-item groups on the device and for the compiled
 * kernel, and room for its index arithmetic past the ends. Errors only when
 * the program cannot be built. */
static ag_status tiled_ok(ocl_ctx *c, const char *kernel, int64_t m, int64_t n, int64_t k,
                          bool *ok)
{
    const int64_t room = INT32_MAX - 4 * TILE;
    *ok = false;
    if (m < TILE_MIN || n < TILE_MIN || m > room || n > room || k > room || c->max_wg < TILE_WG)
        return AG_OK;
    pthread_mutex_lock(&c->lock);
    cl_kernel kern = ocl_kernel(c, "conv", kernel);
    size_t wg = 0;
    cl_int err = kern ? ocl.clGetKernelWorkGroupInfo(kern, c->device, CL_KERNEL_WORK_GROUP_SIZE,
                                                     sizeof wg, &wg, NULL)
                      : CL_SUCCESS;
    pthread_mutex_unlock(&c->lock);
    if (!kern) return ag_last_status() ? ag_last_status() : AG_ERR_DEVICE;
    *ok = err == CL_SUCCESS && wg >= TILE_WG;
    return AG_OK;
}

static int64_t tiles(int64_t n) { return (n + TILE - 1) / TILE; }

/* Work groups of a tiled launch, checked against size_t and the int group id. */
static ag_status tiled_groups(const char *op, int64_t count, size_t *groups)
{
    if (count > INT32_MAX / 2)
        return ag_set_error(AG_ERR_UNSUPPORTED, "opencl %s: too many work groups", op);
    *groups = (size_t)count;
    return AG_OK;
}

ag_status ocl_conv2d(void *ctx, const ag_conv2d_params *p, const ag_view *y, const ag_view *x,
                     const ag_view *w)
{
    static const char *const names[3] = {"input", "weight", "output"};
    conv_p d;
    cl_int off[3];
    ag_status s = conv_setup("conv2d", p, x, w, y, names, &d, off);
    if (s != AG_OK) return s;
    int64_t total = ocl_numel(y);
    if (total == 0) return AG_OK;
    int64_t m = d.ocg, n = (int64_t)d.n * d.oh * d.ow, k = (int64_t)d.cg * d.kh * d.kw;
    bool tiled;
    if ((s = tiled_ok(ctx, "conv_fw_tiled", m, n, k, &tiled)) != AG_OK) return s;
    if (!tiled)
        return ocl_run1(ctx, "conv", "conv_fw",
                        (size_t)((int64_t)d.n * d.g * ((d.ocg + CB - 1) / CB) * d.oh * d.ow),
                        OCL_ARGS(OA(d), OA(y->buf->mem), OA(off[2]), OA(x->buf->mem), OA(off[0]),
                                 OA(w->buf->mem), OA(off[1])));
    cl_int tm = (cl_int)tiles(m), tn = (cl_int)tiles(n);
    size_t groups = 0;
    if ((s = tiled_groups("conv2d", (int64_t)d.g * tm * tn, &groups)) != AG_OK) return s;
    return ocl_run_groups(ctx, "conv", "conv_fw_tiled", groups, TILE_WG,
                          OCL_ARGS(OA(d), OA(tm), OA(tn), OA(y->buf->mem), OA(off[2]),
                                   OA(x->buf->mem), OA(off[0]), OA(w->buf->mem), OA(off[1])));
}

ag_status ocl_conv2d_backward_input(void *ctx, const ag_conv2d_params *p, const ag_view *dx,
                                    const ag_view *dy, const ag_view *w)
{
    static const char *const names[3] = {"dx", "weight", "dy"};
    conv_p d;
    cl_int off[3];
    ag_status s = conv_setup("conv2d_backward_input", p, dx, w, dy, names, &d, off);
    if (s != AG_OK) return s;
    int64_t total = ocl_numel(dx);
    if (total == 0) return AG_OK;
    int64_t m = d.cg, n = (int64_t)d.n * d.h * d.w, k = (int64_t)d.ocg * d.kh * d.kw;
    bool tiled;
    /* with strides, most taps of the tiled GEMM fall between outputs: the
     * direct gather skips them */
    if ((s = tiled_ok(ctx, "conv_bwi_tiled", d.sh == 1 && d.sw == 1 ? m : 0, n, k, &tiled)) !=
        AG_OK)
        return s;
    if (!tiled)
        return ocl_run1(ctx, "conv", "conv_bwi",
                        (size_t)((int64_t)d.n * d.g * ((d.cg + CB - 1) / CB) * d.h * d.w),
                        OCL_ARGS(OA(d), OA(dx->buf->mem), OA(off[0]), OA(dy->buf->mem),
                                 OA(off[2]), OA(w->buf->mem), OA(off[1])));
    cl_int tm = (cl_int)tiles(m), tn = (cl_int)tiles(n);
    size_t groups = 0;
    if ((s = tiled_groups("conv2d_backward_input", (int64_t)d.g * tm * tn, &groups)) != AG_OK)
        return s;
    return ocl_run_groups(ctx, "conv", "conv_bwi_tiled", groups, TILE_WG,
                          OCL_ARGS(OA(d), OA(tm), OA(tn), OA(dx->buf->mem), OA(off[0]),
                                   OA(dy->buf->mem), OA(off[2]), OA(w->buf->mem), OA(off[1])));
}

ag_status ocl_conv2d_backward_weight(void *ctx, const ag_conv2d_params *p, const ag_view *dw,
                                     const ag_view *dy, const ag_view *x)
{
    static const char *const names[3] = {"input", "dw", "dy"};
    ocl_ctx *c = ctx;
    conv_p d;
    cl_int off[3];
    ag_status s = conv_setup("conv2d_backward_weight", p, x, dw, dy, names, &d, off);
    if (s != AG_OK) return s;
    int64_t numel = ocl_numel(dw);
    if (numel == 0) return AG_OK;
    int64_t m = d.ocg, n = (int64_t)d.cg * d.kh * d.kw, k = (int64_t)d.n * d.oh * d.ow;
    bool tiled;
    if ((s = tiled_ok(c, "conv_bww_tiled", m, n, k, &tiled)) != AG_OK) return s;
    if (!tiled) {
        /* a work group per CB output channels, input channel and tap; no
         * wider than the reduction needs */
        size_t wg = ocl_reduce_wg(c);
        while (wg > 32 && (int64_t)wg / 2 >= k) wg /= 2;
        size_t groups = (size_t)((int64_t)d.g * ((d.ocg + CB - 1) / CB) * d.cg * d.kh * d.kw);
        return ocl_run_groups(c, "conv", "conv_bww", groups, wg,
                              OCL_ARGS(OA(d), OA(dw->buf->mem), OA(off[1]), OA(dy->buf->mem),
                                       OA(off[2]), OA(x->buf->mem), OA(off[0]),
                                       OA_LOCAL(CB * wg * sizeof(cl_float))));
    }
    /* Split the reduction by shape alone, so the result does not depend on the
     * device: chunks of a multiple of TILE_K steps. */
    int64_t parts = (k + BWW_CHUNK - 1) / BWW_CHUNK;
    if (parts > BWW_MAX_PARTS) parts = BWW_MAX_PARTS;
    if (parts > BWW_PART_BUDGET / numel) parts = BWW_PART_BUDGET / numel;
    if (parts < 1) parts = 1;
    int64_t chunk = (k + parts - 1) / parts;
    chunk = (chunk + TILE_K - 1) / TILE_K * TILE_K;
    if (chunk < TILE_K) chunk = TILE_K;
    parts = (k + chunk - 1) / chunk;
    if (parts < 1) parts = 1;
    cl_int tm = (cl_int)tiles(m), tn = (cl_int)tiles(n), ch = (cl_int)chunk;
    size_t groups = 0;
    if ((s = tiled_groups("conv2d_backward_weight", parts * d.g * tm * tn, &groups)) != AG_OK)
        return s;
    if (parts == 1)
        return ocl_run_groups(c, "conv", "conv_bww_tiled", groups, TILE_WG,
                              OCL_ARGS(OA(d), OA(tm), OA(tn), OA(ch), OA(dw->buf->mem),
                                       OA(off[1]), OA(dy->buf->mem), OA(off[2]),
                                       OA(x->buf->mem), OA(off[0])));
    ag_buffer *part = ocl_alloc(c, (size_t)(parts * numel) * sizeof(cl_float));
    if (!part) return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    cl_int zero = 0, ne = (cl_int)numel, np = (cl_int)parts;
    s = ocl_run_groups(c, "conv", "conv_bww_tiled", groups, TILE_WG,
                       OCL_ARGS(OA(d), OA(tm), OA(tn), OA(ch), OA(part->mem), OA(zero),
                                OA(dy->buf->mem), OA(off[2]), OA(x->buf->mem), OA(off[0])));
    if (s == AG_OK)
        s = ocl_run1(c, "conv", "conv_sum_parts", (size_t)numel,
                     OCL_ARGS(OA(ne), OA(np), OA(dw->buf->mem), OA(off[1]), OA(part->mem)));
    ocl_free(c, part); /* the driver keeps it until the queued kernels finish */
    return s;
}
