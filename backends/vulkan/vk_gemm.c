/* SGEMM on [B, M, K] x [B, K, N] views (2-D views are one batch), ported from
 * the OpenCL backend's own kernels (ocl_gemm.c, kernels/gemm.cl) minus CLBlast:
 *
 * - gemm_tiled / gemm_tiled4 (backends/vulkan/shaders/gemm_tiled.glsl): register-blocked
 *   tiles through shared memory, double-buffered, for everything not tiny.
 *   gemm_tiled4 reads and writes vec4s and is picked when M, N, K and every
 *   offset, leading dimension and batch stride are multiples of 4; gemm_tiled
 *   loads scalars and takes any sizes. Tile shapes come from TILES below and
 *   reach the shader as specialization constants.
 * - gemm_simple: one invocation per output with arbitrary strides, for tiny
 *   products, C with fewer than GEMM_SIMPLE_DIM rows or columns (mostly empty
 *   tiles otherwise), and views with no unit stride in an operand.
 * - gemm_scale: C = beta C when K == 0 or alpha == 0 (A and B are not read,
 *   as in BLAS; beta == 0 writes zeros whatever C held).
 *
 * Every output is one fp32 sum over k in order (no split of k, no atomics):
 * results do not depend on the kernel's grid or on timing. beta == 0 never
 * reads C. Grids of more than 65535 groups in any dimension (what every
 * device allows) are split into several dispatches (row0, col0, batch0).
 *
 * Tile choice (untuned on GPUs: no GPU was at hand when this was written; the
 * shapes are the usual ones for fp32 SGEMM): 128 x 128 tiles of 256
 * invocations with 8 x 8 outputs each when they give enough work groups to
 * fill a large GPU (GEMM_GPU_GROUPS), else 128 x 64 of 128 invocations (also
 * 8 x 8 each), else 64 x 64 of 256 (4 x 4 each). 32 x 32 of 64 and 16 x 16 of
 * 16 serve devices whose maxComputeWorkGroupInvocations or
 * maxComputeSharedMemorySize is too small for the others (Vulkan guarantees
 * 128 invocations and 16 KiB); a configuration the device cannot run is
 * skipped. The k slice is 8 deep: the two buffers of both slices take 16.5 KiB
 * at 128 x 128 (NVIDIA allows 48 KiB, lavapipe 32 KiB) and 12.5 KiB at
 * 128 x 64. On CPU devices (lavapipe) the largest tile giving two groups won
 * at every size measured (128^3 to 1024^3 on 2 cores: 128 x 128 with vec4
 * loads ran 12.5 GFLOP/s at 1024^3, 128 x 64 10.8, 64 x 64 5.6, its
 * scalar-load variant 10.1, gemm_simple 0.5); a CPU says nothing about GPU
 * speed, only that the kernels are sane relative to each other.
 *
 * AG_VULKAN_GEMM forces a kernel (read on every call, for tests and benchmarks):
 *   simple      one invocation per output;
 *   tiled       the tiled kernels with the automatic tile choice (even for
 *               products gemm_simple would get);
 *   tiled128, tiled128k16, tiled128x64, tiled64, tiled64k16, tiled32, tiled16
 *               one tile configuration (the k16 ones: 16-deep slices, 33 and
 *               17 KiB of shared memory, never chosen automatically);
 *   any tiled value with the suffix "-scalar" (e.g. tiled-scalar,
 *               tiled128-scalar) never uses the vec4 variant.
 * A forced tiled configuration the device cannot run, and views with no unit
 * stride, go to gemm_simple. Unset or anything else: the automatic choice. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vk.h"
#include "plan.h"

/* Below this many multiply-adds, or with fewer rows or columns than
 * GEMM_SIMPLE_DIM, one invocation per output instead of mostly empty tiles. */
#define GEMM_SIMPLE_MAX ((int64_t)32 * 32 * 32)
#define GEMM_SIMPLE_DIM 8
/* Work groups a tile size must give to be chosen on a GPU: about one per
 * compute unit of a large GPU (an H200 has 132 SMs), so that the bigger, more
 * efficient tiles do not leave most of the device idle. On CPU devices
 * (lavapipe) two groups already keep the threads busy and bigger tiles win. */
#define GEMM_GPU_GROUPS 96
#define GEMM_CPU_GROUPS 2
/* Groups per dispatch dimension: the minimum every Vulkan device allows. */
#define GEMM_MAX_GROUPS 65535

/* Laid out exactly as Params in backends/vulkan/shaders/gemm.glsl. */
typedef struct gemm_params {
    ag_gemm_dims32 s;
    int32_t row0, col0, batch0;
    int32_t total;
    float alpha, beta;
} gemm_params;

static gemm_params kernel_params(const ag_gemm_desc *d)
{
    return (gemm_params){.s = ag_gemm_dims32_of(d), .alpha = d->alpha, .beta = d->beta};
}

/* Dispatches over columns, rows and batches in pieces of at most
 * GEMM_MAX_GROUPS groups per dimension; a group covers cols x rows outputs of
 * one batch. */
static ag_status dispatch_split(vk_ctx *c, const char *name, const uint32_t *spec, int nspec,
                                const ag_gemm_desc *d, int64_t cols, int64_t rows)
{
    gemm_params p = kernel_params(d);
    const int64_t col_step = (int64_t)GEMM_MAX_GROUPS * cols, row_step = (int64_t)GEMM_MAX_GROUPS * rows;
    for (int64_t b0 = 0; b0 < d->nb; b0 += GEMM_MAX_GROUPS) {
        const int64_t nbat = d->nb - b0 < GEMM_MAX_GROUPS ? d->nb - b0 : GEMM_MAX_GROUPS;
        for (int64_t r0 = 0; r0 < d->m; r0 += row_step) {
            const int64_t nr = d->m - r0 < row_step ? d->m - r0 : row_step;
            for (int64_t c0 = 0; c0 < d->n; c0 += col_step) {
                const int64_t nc = d->n - c0 < col_step ? d->n - c0 : col_step;
                p.row0 = (int32_t)r0;
                p.col0 = (int32_t)c0;
                p.batch0 = (int32_t)b0;
                ag_status s = vk_dispatch(c, name, spec, nspec, &p, sizeof p,
                                          VK_BUFS(d->a, d->b, d->c), (uint32_t)((nc + cols - 1) / cols),
                                          (uint32_t)((nr + rows - 1) / rows), (uint32_t)nbat);
                if (s != AG_OK) return s;
            }
        }
    }
    return AG_OK;
}

/* C = beta C: the whole result when there is nothing to multiply. */
static ag_status gemm_scale(vk_ctx *c, const ag_gemm_desc *d)
{
    gemm_params p = kernel_params(d);
    p.total = (int32_t)(d->nb * d->m * d->n); /* the plan checked it fits */
    return vk_run1(c, "gemm_scale", &p, sizeof p, VK_BUFS(d->c), (size_t)p.total);
}

/* ---- kernels ------------------------------------------------------------------ */

typedef struct tile_cfg {
    const char *name;  /* for AG_VULKAN_GEMM */
    int bm, bn, bk;    /* tile of C, depth of a k slice */
    int wg, tx;        /* invocations, of which tx along N (wg / tx along M) */
    bool forced_only;
} tile_cfg;

/* Largest first; each invocation computes (bm / (4 ty)) x (bn / (4 tx)) blocks of 4 x 4. */
static const tile_cfg TILES[] = {
    {"tiled128", 128, 128, 8, 256, 16, false},   /* 8 x 8 per invocation */
    {"tiled128k16", 128, 128, 16, 256, 16, true},
    {"tiled128x64", 128, 64, 8, 128, 8, false},  /* 8 x 8 */
    {"tiled64", 64, 64, 8, 256, 16, false},      /* 4 x 4 */
    {"tiled64k16", 64, 64, 16, 256, 16, true},
    {"tiled32", 32, 32, 8, 64, 8, false},        /* 4 x 4 */
    {"tiled16", 16, 16, 8, 16, 4, false},        /* 4 x 4 */
};
#define NTILES (int)(sizeof TILES / sizeof TILES[0])

/* Shared memory of a configuration: two slices of A and B, rows padded by 4 floats. */
static uint32_t tile_shared_bytes(const tile_cfg *t)
{
    return (uint32_t)(2 * t->bk * ((t->bm + 4) + (t->bn + 4)) * 4);
}

static bool tile_fits(const vk_ctx *c, const tile_cfg *t)
{
    const VkPhysicalDeviceLimits *l = &c->props.limits;
    return (uint32_t)t->wg <= l->maxComputeWorkGroupInvocations &&
           (uint32_t)t->wg <= l->maxComputeWorkGroupSize[0] &&
           tile_shared_bytes(t) <= l->maxComputeSharedMemorySize;
}

static int64_t tile_groups(const ag_gemm_desc *d, const tile_cfg *t)
{
    return d->nb * ((d->m + t->bm - 1) / t->bm) * ((d->n + t->bn - 1) / t->bn);
}

/* The largest configuration the device runs that gives at least min_groups
 * work groups and is at least one subgroup wide (a 16-invocation group fills a
 * quarter of an AMD wave64, half of an NVIDIA warp); when none does, 64 x 64 (or
 * the largest smaller one that fits). -1: none fits. */
static int tile_by_size(const vk_ctx *c, const ag_gemm_desc *d, int64_t min_groups)
{
    for (int i = 0; i < NTILES; i++)
        if (!TILES[i].forced_only && tile_fits(c, &TILES[i]) && TILES[i].wg >= (int)c->subgroup_size &&
            tile_groups(d, &TILES[i]) >= min_groups)
            return i;
    for (int i = 0; i < NTILES; i++)
        if (!TILES[i].forced_only && TILES[i].bm <= 64 && tile_fits(c, &TILES[i])) return i;
    return -1;
}

/* vec4 loads and stores: every vec4 of each operand lies wholly inside or
 * wholly outside it. */
static bool aligned4(const ag_gemm_desc *d, bool ta, bool tb)
{
    const int64_t v[] = {d->m, d->n, d->k, d->a_off, ta ? d->a_cs : d->a_rs, d->a_bs,
                         d->b_off, tb ? d->b_cs : d->b_rs, d->b_bs,
                         d->c_off, d->c_rs, d->c_bs};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] % 4 != 0) return false;
    return true;
}

static ag_status run_tiled(vk_ctx *c, const ag_gemm_desc *d, const tile_cfg *t, bool ta, bool tb,
                           bool scalar)
{
    const bool vec4 = !scalar && aligned4(d, ta, tb);
    const uint32_t spec[4] = {(uint32_t)t->wg, (uint32_t)t->bm, (uint32_t)t->bn,
                              (uint32_t)t->bk | (uint32_t)t->tx << 8 | (uint32_t)ta << 16 |
                                  (uint32_t)tb << 17};
    return dispatch_split(c, vec4 ? "gemm_tiled4" : "gemm_tiled", spec, 4, d, t->bn, t->bm);
}

static ag_status run_simple(vk_ctx *c, const ag_gemm_desc *d)
{
    uint32_t wg = vk_reduce_wg(c); /* a power of two <= 256 the device allows */
    uint32_t lx = wg >= 16 ? 16 : wg;
    if (d->n < 16 && d->m >= 16 && wg >= 4) lx = 4; /* narrow C: more rows a group */
    const uint32_t spec[2] = {wg, lx};
    return dispatch_split(c, "gemm_simple", spec, 2, d, lx, wg / lx);
}

/* AG_VULKAN_GEMM, read on every call so that tests can switch kernels. */
typedef struct gemm_choice {
    enum { KIND_AUTO, KIND_TILED, KIND_SIMPLE } kind;
    int tile;    /* index into TILES, -1: by shape */
    bool scalar; /* never the vec4 variant */
} gemm_choice;

static gemm_choice forced_choice(void)
{
    gemm_choice ch = {KIND_AUTO, -1, false};
    const char *e = getenv("AG_VULKAN_GEMM");
    if (!e) return ch;
    if (strcmp(e, "simple") == 0) {
        ch.kind = KIND_SIMPLE;
        return ch;
    }
    char name[32];
    size_t len = strlen(e);
    const char *suffix = "-scalar";
    if (len >= sizeof name) return ch;
    memcpy(name, e, len + 1);
    if (len > strlen(suffix) && strcmp(name + len - strlen(suffix), suffix) == 0) {
        ch.scalar = true;
        name[len - strlen(suffix)] = '\0';
    }
    if (strcmp(name, "tiled") == 0) {
        ch.kind = KIND_TILED;
        return ch;
    }
    for (int i = 0; i < NTILES; i++)
        if (strcmp(name, TILES[i].name) == 0) {
            ch.kind = KIND_TILED;
            ch.tile = i;
            return ch;
        }
    return (gemm_choice){KIND_AUTO, -1, false};
}

static ag_status gemm_run(vk_ctx *c, const ag_gemm_desc *d)
{
    /* which axis of each operand has unit stride; neither: only gemm_simple takes it */
    const bool ta = d->a_cs != 1 && d->a_rs == 1, tb = d->b_cs != 1 && d->b_rs == 1;
    const bool unit = (d->a_cs == 1 || d->a_rs == 1) && (d->b_cs == 1 || d->b_rs == 1);
    gemm_choice ch = forced_choice();
    if (!unit) ch.kind = KIND_SIMPLE;
    if (ch.kind == KIND_AUTO) {
        const double work = (double)d->m * (double)d->n * (double)d->k;
        ch.kind = work < (double)GEMM_SIMPLE_MAX || d->m < GEMM_SIMPLE_DIM || d->n < GEMM_SIMPLE_DIM
                      ? KIND_SIMPLE
                      : KIND_TILED;
    }
    if (ch.kind == KIND_TILED) {
        const bool cpu = c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
        int t = ch.tile >= 0 ? (tile_fits(c, &TILES[ch.tile]) ? ch.tile : -1)
                             : tile_by_size(c, d, cpu ? GEMM_CPU_GROUPS : GEMM_GPU_GROUPS);
        if (t >= 0) return run_tiled(c, d, &TILES[t], ta, tb, ch.scalar);
    }
    return run_simple(c, d);
}

/* ---- entry point ------------------------------------------------------------ */

ag_status vk_gemm(void *ctx, float alpha, float beta, const ag_view *c, const ag_view *a,
                  const ag_view *b)
{
    vk_ctx *cx = ctx;
    ag_gemm_desc d;
    ag_gemm_path path;
    ag_status s = ag_gemm_plan("vulkan", alpha, beta, c, a, b, &d, &path);
    if (s != AG_OK || path == AG_GEMM_NONE) return s;
    if (path == AG_GEMM_SCALE) return gemm_scale(cx, &d);
    return gemm_run(cx, &d);
}
