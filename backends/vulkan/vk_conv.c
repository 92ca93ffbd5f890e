/* 2-D convolution (NCHW, contiguous, no bias): shaders/conv*.comp, a port of
 * the OpenCL backend's design. The checks follow backends/cpu/cpu_conv.c. Each
 * op picks a tiled implicit-GEMM shader when the channel counts fill its
 * 64 x 64 tiles reasonably and the device allows 256-invocation work groups
 * with the tiles' shared memory, else a direct shader. Results are
 * deterministic: no atomics, and the backward-weight reduction is split by
 * shape only. */
#include <stdio.h>

#include "vk.h"

/* Laid out as ConvDims and Params in shaders/conv.glsl. */
typedef struct conv_dims {
    int32_t n, c, h, w, oc, kh, kw, oh, ow;
    int32_t sh, sw, ph, pw, dlh, dlw;
    int32_t g, cg, ocg;
} conv_dims;

typedef struct conv_params {
    conv_dims d;
    int32_t tiles_m, tiles_n, chunk, groups;
    int32_t out_off, a_off, b_off; /* element offsets of bindings 1, 2, 3 */
    int32_t numel, parts;          /* conv_sum_parts */
} conv_params;

#define TILE 64        /* output tile side of the tiled shaders */
#define TILE_WG 256    /* their work-group size */
#define TILE_K 16      /* their reduction step */
#define TILE_MIN 32    /* tiled only when both GEMM sides reach this */
/* their shared memory: As[16][65], Bs[16][64], at most 4 int tables [2][16] */
#define TILE_SHARED ((TILE_K * (TILE + 1) + TILE_K * TILE + 4 * 2 * TILE_K) * 4)
#define CB 4           /* channels per invocation of the direct shaders (conv.glsl) */
/* Backward weight reduces over N * OH * OW in chunks of about this many steps,
 * each chunk a partial summed afterwards in a fixed order ... */
#define BWW_CHUNK 512
#define BWW_MAX_PARTS 64
/* ... holding at most this many partial floats (64 MiB, under lavapipe's
 * 128 MiB per buffer). */
#define BWW_PART_BUDGET ((int64_t)16 << 20)
#define GROUPS_PER_DIM 65535 /* all Vulkan promises per dimension */

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
    return ag_set_error(AG_ERR_SHAPE, "vulkan %s: %s (input %s, weight %s, output %s)", op, why,
                        sx, sw, sy);
}

/* Checks x [N, C, H, W], w [OC, C/g, KH, KW], y [N, OC, OH, OW] (named as the
 * op knows them) and the parameters; fills the shader's dimensions and the
 * element offsets of x, w, y. */
static ag_status conv_setup(const char *op, const ag_conv2d_params *p, const ag_view *x,
                            const ag_view *w, const ag_view *y, const char *const names[3],
                            conv_dims *d, int32_t off[3])
{
    if (!p) return ag_set_error(AG_ERR_ARG, "vulkan %s: NULL parameters", op);
    const ag_view *v[3] = {x, w, y};
    ag_status s = AG_OK;
    for (int k = 0; k < 3 && s == AG_OK; k++) s = ag_check_view("vulkan", op, names[k], v[k], AG_F32);
    if (s != AG_OK) return s;
    if (p->stride[0] < 1 || p->stride[1] < 1 || p->dilation[0] < 1 || p->dilation[1] < 1 ||
        p->padding[0] < 0 || p->padding[1] < 0 || p->groups < 1)
        return ag_set_error(AG_ERR_ARG,
                            "vulkan %s: bad parameters stride (%d, %d), padding (%d, %d), "
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
            return ag_set_error(AG_ERR_ARG, "vulkan %s: %s is not contiguous", op, names[k]);
        if ((s = ag_offset32("vulkan", op, v[k], &off[k])) != AG_OK) return s;
    }
    /* Tap positions reach h + 2 * padding; the views' extents bound the rest. */
    if (h + 2 * (int64_t)p->padding[0] > INT32_MAX || wd + 2 * (int64_t)p->padding[1] > INT32_MAX)
        return ag_set_error(AG_ERR_UNSUPPORTED,
                            "vulkan %s: the padded input exceeds 32-bit indexing", op);
    *d = (conv_dims){
        .n = (int32_t)n, .c = (int32_t)c, .h = (int32_t)h, .w = (int32_t)wd, .oc = (int32_t)oc,
        .kh = (int32_t)kh, .kw = (int32_t)kw, .oh = (int32_t)oh, .ow = (int32_t)ow,
        .sh = p->stride[0], .sw = p->stride[1], .ph = p->padding[0], .pw = p->padding[1],
        .dlh = p->dilation[0], .dlw = p->dilation[1], .g = (int32_t)g, .cg = (int32_t)(c / g),
        .ocg = (int32_t)(oc / g),
    };
    return AG_OK;
}

/* Whether to run the tiled shader for an m x n output reducing over k: sides
 * that fill its tiles, room for its index arithmetic past the ends, and a
 * device that runs 256-invocation groups with the tiles' shared memory. */
static bool tiled_ok(const vk_ctx *c, int64_t m, int64_t n, int64_t k)
{
    const int64_t room = INT32_MAX - 4 * TILE;
    const VkPhysicalDeviceLimits *l = &c->props.limits;
    return m >= TILE_MIN && n >= TILE_MIN && m <= room && n <= room && k <= room &&
           l->maxComputeWorkGroupInvocations >= TILE_WG && l->maxComputeWorkGroupSize[0] >= TILE_WG &&
           l->maxComputeSharedMemorySize >= TILE_SHARED;
}

static int64_t tiles(int64_t n) { return (n + TILE - 1) / TILE; }

/* Records `count` work groups of `wg` invocations as an x * y grid the shader
 * loops over (conv.glsl AG_GROUPS); count is checked against the int group id. */
static ag_status run_groups(vk_ctx *c, const char *op, const char *shader, uint32_t wg,
                            conv_params *cp, int64_t count, int nbufs, const vk_bind *bufs)
{
    if (count > INT32_MAX / 2)
        return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan %s: too many work groups", op);
    cp->groups = (int32_t)count;
    uint32_t cap_x = c->props.limits.maxComputeWorkGroupCount[0];
    uint32_t cap_y = c->props.limits.maxComputeWorkGroupCount[1];
    if (cap_x > GROUPS_PER_DIM) cap_x = GROUPS_PER_DIM;
    if (cap_y > GROUPS_PER_DIM) cap_y = GROUPS_PER_DIM;
    uint32_t gx = count < cap_x ? (uint32_t)count : cap_x;
    int64_t gy = (count + gx - 1) / gx;
    if (gy > cap_y) gy = cap_y;
    return vk_dispatch(c, shader, &wg, 1, cp, sizeof *cp, nbufs, bufs, gx, (uint32_t)gy, 1);
}

ag_status vk_conv2d(void *ctx, const ag_conv2d_params *p, const ag_view *y, const ag_view *x,
                    const ag_view *w)
{
    static const char *const names[3] = {"input", "weight", "output"};
    vk_ctx *c = ctx;
    conv_params cp = {0};
    int32_t off[3];
    ag_status s = conv_setup("conv2d", p, x, w, y, names, &cp.d, off);
    if (s != AG_OK) return s;
    if (ag_view_numel(y) == 0) return AG_OK;
    const conv_dims *d = &cp.d;
    int64_t m = d->ocg, n = (int64_t)d->n * d->oh * d->ow, k = (int64_t)d->cg * d->kh * d->kw;
    cp.out_off = off[2];
    cp.a_off = off[0];
    cp.b_off = off[1];
    if (!tiled_ok(c, m, n, k))
        return vk_run1(c, "conv_fw", &cp, sizeof cp, VK_BUFS(y->buf, x->buf, w->buf),
                       (size_t)((int64_t)d->n * d->g * ((d->ocg + CB - 1) / CB) * d->oh * d->ow));
    cp.tiles_m = (int32_t)tiles(m);
    cp.tiles_n = (int32_t)tiles(n);
    return run_groups(c, "conv2d", "conv_fw_tiled", TILE_WG, &cp,
                      (int64_t)d->g * cp.tiles_m * cp.tiles_n, VK_BUFS(y->buf, x->buf, w->buf));
}

ag_status vk_conv2d_backward_input(void *ctx, const ag_conv2d_params *p, const ag_view *dx,
                                   const ag_view *dy, const ag_view *w)
{
    static const char *const names[3] = {"dx", "weight", "dy"};
    vk_ctx *c = ctx;
    conv_params cp = {0};
    int32_t off[3];
    ag_status s = conv_setup("conv2d_backward_input", p, dx, w, dy, names, &cp.d, off);
    if (s != AG_OK) return s;
    if (ag_view_numel(dx) == 0) return AG_OK;
    const conv_dims *d = &cp.d;
    int64_t m = d->cg, n = (int64_t)d->n * d->h * d->w, k = (int64_t)d->ocg * d->kh * d->kw;
    cp.out_off = off[0];
    cp.a_off = off[2];
    cp.b_off = off[1];
    /* with strides, most taps of the tiled GEMM fall between outputs: the
     * direct gather skips them */
    if (!tiled_ok(c, d->sh == 1 && d->sw == 1 ? m : 0, n, k))
        return vk_run1(c, "conv_bwi", &cp, sizeof cp, VK_BUFS(dx->buf, dy->buf, w->buf),
                       (size_t)((int64_t)d->n * d->g * ((d->cg + CB - 1) / CB) * d->h * d->w));
    cp.tiles_m = (int32_t)tiles(m);
    cp.tiles_n = (int32_t)tiles(n);
    return run_groups(c, "conv2d_backward_input", "conv_bwi_tiled", TILE_WG, &cp,
                      (int64_t)d->g * cp.tiles_m * cp.tiles_n, VK_BUFS(dx->buf, dy->buf, w->buf));
}

ag_status vk_conv2d_backward_weight(void *ctx, const ag_conv2d_params *p, const ag_view *dw,
                                    const ag_view *dy, const ag_view *x)
{
    static const char *const names[3] = {"input", "dw", "dy"};
    static const char *const op = "conv2d_backward_weight";
    vk_ctx *c = ctx;
    conv_params cp = {0};
    int32_t off[3];
    ag_status s = conv_setup(op, p, x, dw, dy, names, &cp.d, off);
    if (s != AG_OK) return s;
    int64_t numel = ag_view_numel(dw);
    if (numel == 0) return AG_OK;
    const conv_dims *d = &cp.d;
    int64_t m = d->ocg, n = (int64_t)d->cg * d->kh * d->kw, k = (int64_t)d->n * d->oh * d->ow;
    cp.out_off = off[1];
    cp.a_off = off[2];
    cp.b_off = off[0];
    if (!tiled_ok(c, m, n, k)) {
        /* a work group per CB output channels, input channel and tap; no
         * wider than the reduction needs, nor than shared memory holds */
        uint32_t wg = vk_reduce_wg(c);
        while (wg > 1 && CB * wg * sizeof(float) > c->props.limits.maxComputeSharedMemorySize) wg /= 2;
        while (wg > 32 && (int64_t)wg / 2 >= k) wg /= 2;
        int64_t groups = (int64_t)d->g * ((d->ocg + CB - 1) / CB) * d->cg * d->kh * d->kw;
        return run_groups(c, op, "conv_bww", wg, &cp, groups, VK_BUFS(dw->buf, dy->buf, x->buf));
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
    cp.tiles_m = (int32_t)tiles(m);
    cp.tiles_n = (int32_t)tiles(n);
    cp.chunk = (int32_t)chunk;
    int64_t groups = parts * d->g * cp.tiles_m * cp.tiles_n;
    if (parts == 1)
        return run_groups(c, op, "conv_bww_tiled", TILE_WG, &cp, groups,
                          VK_BUFS(dw->buf, dy->buf, x->buf));
    ag_buffer *part = vk_alloc(c, (size_t)(parts * numel) * sizeof(float));
    if (!part) return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    cp.out_off = 0;
    s = run_groups(c, op, "conv_bww_tiled", TILE_WG, &cp, groups, VK_BUFS(part, dy->buf, x->buf));
    if (s == AG_OK) {
        conv_params sp = {.d = cp.d, .out_off = off[1], .numel = (int32_t)numel,
                          .parts = (int32_t)parts};
        s = vk_run1(c, "conv_sum_parts", &sp, sizeof sp, VK_BUFS(dw->buf, part), (size_t)numel);
    }
    vk_free(c, part); /* safe while queued: every dispatch waits for those before it */
    return s;
}
