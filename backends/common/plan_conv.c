/* 2-D convolution (NCHW, contiguous, no bias) on the GPU backends: checks
 * (those of backends/cpu/cpu_conv.c) and the shape-only part of choosing and
 * sizing a kernel. Each op runs a tiled implicit-GEMM kernel when the channel
 * counts fill its tiles reasonably (and the device runs it), else a direct
 * kernel. */
#include <stdio.h>

#include "plan.h"

#define TILE_MIN 32 /* tiled only when both GEMM sides reach this */
/* Backward weight reduces over N * OH * OW in chunks of about this many steps,
 * each chunk a partial summed afterwards in a fixed order ... */
#define BWW_CHUNK 512
#define BWW_MAX_PARTS 64
/* ... holding at most this many partial floats (64 MiB, under lavapipe's
 * 128 MiB per buffer). */
#define BWW_PART_BUDGET ((int64_t)16 << 20)

static ag_status shape_error(const char *backend, const char *op, const char *why,
                             const ag_view *x, const ag_view *w, const ag_view *y)
{
    char sx[96], sw[96], sy[96];
    ag_view_shape_str(x, sx, sizeof sx);
    ag_view_shape_str(w, sw, sizeof sw);
    ag_view_shape_str(y, sy, sizeof sy);
    return ag_set_error(AG_ERR_SHAPE, "%s %s: %s (input %s, weight %s, output %s)", backend, op,
                        why, sx, sw, sy);
}

/* Checks x [N, C, H, W], w [OC, C/g, KH, KW], y [N, OC, OH, OW] (named as the
 * op knows them) and the parameters; fills the kernels' dimensions and the
 * element offsets of x, w, y. */
static ag_status conv_setup(const char *backend, const char *op, const ag_conv2d_params *p,
                            const ag_view *x, const ag_view *w, const ag_view *y,
                            const char *const names[3], ag_conv_dims *d, int32_t off[3])
{
    if (!p) return ag_set_error(AG_ERR_ARG, "%s %s: NULL parameters", backend, op);
    const ag_view *v[3] = {x, w, y};
    ag_status s = AG_OK;
    for (int k = 0; k < 3 && s == AG_OK; k++) s = ag_check_view(backend, op, names[k], v[k], AG_F32);
    if (s != AG_OK) return s;
    if (p->stride[0] < 1 || p->stride[1] < 1 || p->dilation[0] < 1 || p->dilation[1] < 1 ||
        p->padding[0] < 0 || p->padding[1] < 0 || p->groups < 1)
        return ag_set_error(AG_ERR_ARG,
                            "%s %s: bad parameters stride (%d, %d), padding (%d, %d), "
                            "dilation (%d, %d), groups %d",
                            backend, op, p->stride[0], p->stride[1], p->padding[0],
                            p->padding[1], p->dilation[0], p->dilation[1], p->groups);
    if (x->ndim != 4 || w->ndim != 4 || y->ndim != 4)
        return shape_error(backend, op, "expected 4-D input, weight and output", x, w, y);
    int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], wd = x->shape[3];
    int64_t oc = w->shape[0], kh = w->shape[2], kw = w->shape[3], g = p->groups;
    if (c % g || oc % g || w->shape[1] != c / g)
        return shape_error(backend, op, "channels do not match the weight and groups", x, w, y);
    int64_t eh = h + 2 * (int64_t)p->padding[0] - p->dilation[0] * (kh - 1) - 1;
    int64_t ew = wd + 2 * (int64_t)p->padding[1] - p->dilation[1] * (kw - 1) - 1;
    if (kh < 1 || kw < 1 || eh < 0 || ew < 0)
        return shape_error(backend, op, "kernel larger than the padded input", x, w, y);
    int64_t oh = eh / p->stride[0] + 1, ow = ew / p->stride[1] + 1;
    if (y->shape[0] != n || y->shape[1] != oc || y->shape[2] != oh || y->shape[3] != ow) {
        char why[128];
        snprintf(why, sizeof why, "output must be [%lld, %lld, %lld, %lld]", (long long)n,
                 (long long)oc, (long long)oh, (long long)ow);
        return shape_error(backend, op, why, x, w, y);
    }
    for (int k = 0; k < 3; k++) {
        if (!ag_view_is_contiguous(v[k]))
            return ag_set_error(AG_ERR_ARG, "%s %s: %s is not contiguous", backend, op, names[k]);
        if ((s = ag_offset32(backend, op, v[k], &off[k])) != AG_OK) return s;
    }
    /* Tap positions reach h + 2 * padding; the views' extents bound the rest. */
    if (h + 2 * (int64_t)p->padding[0] > INT32_MAX || wd + 2 * (int64_t)p->padding[1] > INT32_MAX)
        return ag_set_error(AG_ERR_UNSUPPORTED,
                            "%s %s: the padded input exceeds 32-bit indexing", backend, op);
    *d = (ag_conv_dims){
        .n = (int32_t)n, .c = (int32_t)c, .h = (int32_t)h, .w = (int32_t)wd, .oc = (int32_t)oc,
        .kh = (int32_t)kh, .kw = (int32_t)kw, .oh = (int32_t)oh, .ow = (int32_t)ow,
        .sh = p->stride[0], .sw = p->stride[1], .ph = p->padding[0], .pw = p->padding[1],
        .dlh = p->dilation[0], .dlw = p->dilation[1], .g = (int32_t)g, .cg = (int32_t)(c / g),
        .ocg = (int32_t)(oc / g),
    };
    return AG_OK;
}

static int64_t tiles(int64_t n) { return (n + AG_CONV_TILE - 1) / AG_CONV_TILE; }

/* Sides that fill the tiles, and room for the tiled kernels' index arithmetic
 * past the ends. */
static bool tiled_shape(int64_t m, int64_t n, int64_t k)
{
    const int64_t room = INT32_MAX - 4 * AG_CONV_TILE;
    return m >= TILE_MIN && n >= TILE_MIN && m <= room && n <= room && k <= room;
}

/* Chunks of a multiple of AG_CONV_TILE_K steps, at most BWW_MAX_PARTS of them
 * and BWW_PART_BUDGET partial floats in all. */
static void bww_split(ag_conv_plan *pl)
{
    int64_t k = pl->k;
    int64_t parts = (k + BWW_CHUNK - 1) / BWW_CHUNK;
    if (parts > BWW_MAX_PARTS) parts = BWW_MAX_PARTS;
    if (parts > BWW_PART_BUDGET / pl->numel) parts = BWW_PART_BUDGET / pl->numel;
    if (parts < 1) parts = 1;
    int64_t chunk = (k + parts - 1) / parts;
    chunk = (chunk + AG_CONV_TILE_K - 1) / AG_CONV_TILE_K * AG_CONV_TILE_K;
    if (chunk < AG_CONV_TILE_K) chunk = AG_CONV_TILE_K;
    parts = (k + chunk - 1) / chunk;
    if (parts < 1) parts = 1;
    pl->parts = parts;
    pl->chunk = (int32_t)chunk;
}

typedef enum conv_op { FORWARD, BACKWARD_INPUT, BACKWARD_WEIGHT } conv_op;

/* x, w, y as conv_setup takes them: (input or dx, weight or dw, output or dy). */
static ag_status conv_plan(const char *backend, conv_op op, const ag_conv2d_params *p,
                           const ag_view *x, const ag_view *w, const ag_view *y,
                           ag_conv_plan *pl)
{
    static const char *const ops[3] = {"conv2d", "conv2d_backward_input",
                                       "conv2d_backward_weight"};
    static const char *const names[3][3] = {
        {"input", "weight", "output"}, {"dx", "weight", "dy"}, {"input", "dw", "dy"}};
    *pl = (ag_conv_plan){.op = ops[op], .parts = 1};
    int32_t off[3];
    ag_status s = conv_setup(backend, pl->op, p, x, w, y, names[op], &pl->d, off);
    if (s != AG_OK) return s;
    const ag_conv_dims *d = &pl->d;
    const int64_t cb = AG_CONV_CB;
    if (op == FORWARD) {
        pl->numel = ag_view_numel(y);
        pl->m = d->ocg, pl->n = (int64_t)d->n * d->oh * d->ow, pl->k = (int64_t)d->cg * d->kh * d->kw;
        pl->out_off = off[2], pl->a_off = off[0], pl->b_off = off[1];
        pl->tiled = tiled_shape(pl->m, pl->n, pl->k);
        pl->direct = (int64_t)d->n * d->g * ((d->ocg + cb - 1) / cb) * d->oh * d->ow;
    } else if (op == BACKWARD_INPUT) {
        pl->numel = ag_view_numel(x);
        pl->m = d->cg, pl->n = (int64_t)d->n * d->h * d->w, pl->k = (int64_t)d->ocg * d->kh * d->kw;
        pl->out_off = off[0], pl->a_off = off[2], pl->b_off = off[1];
        /* with strides, most taps of the tiled GEMM fall between outputs: the
         * direct gather skips them */
        pl->tiled = d->sh == 1 && d->sw == 1 && tiled_shape(pl->m, pl->n, pl->k);
        pl->direct = (int64_t)d->n * d->g * ((d->cg + cb - 1) / cb) * d->h * d->w;
    } else {
        pl->numel = ag_view_numel(w);
        pl->m = d->ocg, pl->n = (int64_t)d->cg * d->kh * d->kw, pl->k = (int64_t)d->n * d->oh * d->ow;
        pl->out_off = off[1], pl->a_off = off[2], pl->b_off = off[0];
        pl->tiled = tiled_shape(pl->m, pl->n, pl->k);
        pl->direct = (int64_t)d->g * ((d->ocg + cb - 1) / cb) * d->cg * d->kh * d->kw;
    }
    if (pl->tiled && pl->numel > 0) { /* the tiles' sides fit int32 */
        if (op == BACKWARD_WEIGHT) bww_split(pl);
        pl->tiles_m = (int32_t)tiles(pl->m);
        pl->tiles_n = (int32_t)tiles(pl->n);
        pl->groups = pl->parts * d->g * pl->tiles_m * pl->tiles_n;
    }
    return AG_OK;
}

ag_status ag_conv2d_plan(const char *backend, const ag_conv2d_params *p, const ag_view *y,
                         const ag_view *x, const ag_view *w, ag_conv_plan *pl)
{
    return conv_plan(backend, FORWARD, p, x, w, y, pl);
}

ag_status ag_conv2d_backward_input_plan(const char *backend, const ag_conv2d_params *p,
                                        const ag_view *dx, const ag_view *dy, const ag_view *w,
                                        ag_conv_plan *pl)
{
    return conv_plan(backend, BACKWARD_INPUT, p, dx, w, dy, pl);
}

ag_status ag_conv2d_backward_weight_plan(const char *backend, const ag_conv2d_params *p,
                                         const ag_view *dw, const ag_view *dy, const ag_view *x,
                                         ag_conv_plan *pl)
{
    return conv_plan(backend, BACKWARD_WEIGHT, p, x, dw, dy, pl);
}

ag_status ag_conv_groups_check(const char *backend, const ag_conv_plan *pl, int64_t count)
{
    if (count > INT32_MAX / 2)
        return ag_set_error(AG_ERR_UNSUPPORTED, "%s %s: too many work groups", backend, pl->op);
    return AG_OK;
}
