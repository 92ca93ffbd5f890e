/* gather and scatter_add along one axis (torch semantics) on views with any
 * strides: backends/vulkan/shaders/index_*.comp dispatched as backends/common/plan_index.c plans them
 * (checks, layouts and the choice between scan and sort are there; the
 * shaders' Params blocks are laid out as the plan's structs). */
#include "vk.h"
#include "plan.h"

ag_status vk_gather(void *ctx, int axis, const ag_view *y, const ag_view *x, const ag_view *index)
{
    ag_gather_params p;
    ag_status s = ag_gather_plan("vulkan", axis, y, x, index, &p);
    if (s != AG_OK) return s;
    return vk_run1(ctx, "index_gather", &p, sizeof p, VK_BUFS(y->buf, index->buf, x->buf),
                   (size_t)p.sh.numel);
}

/* Laid out as Params in backends/vulkan/shaders/index_bitonic_*.comp. */
typedef struct bitonic_local_params {
    int32_t lp, k_only, groups;
} bitonic_local_params;
typedef struct bitonic_global_params {
    int32_t pairs, lp, k, j;
} bitonic_global_params;

/* Per dispatch dimension, the count every device allows. */
#define MAX_GROUPS 65535u

static ag_status bitonic_local(vk_ctx *c, ag_buffer *keys, uint32_t w, int64_t lp, int k_only,
                               int64_t total)
{
    int64_t groups = total / (2 * (int64_t)w);
    bitonic_local_params p = {.lp = (int32_t)lp, .k_only = k_only, .groups = (int32_t)groups};
    /* past 65535 groups continue in y */
    size_t gy = ((size_t)groups + MAX_GROUPS - 1) / MAX_GROUPS, gx = ((size_t)groups + gy - 1) / gy;
    uint32_t spec[1] = {w};
    return vk_dispatch(c, "index_bitonic_local", spec, 1, &p, sizeof p, VK_BUFS(keys),
                       (uint32_t)gx, (uint32_t)gy, 1);
}

/* Bitonic sort of each Lp-long line of keys[0, total). */
static ag_status sort_lines(vk_ctx *c, ag_buffer *keys, int64_t total, int log_lp)
{
    int64_t lp = (int64_t)1 << log_lp;
    if (lp < 2) return AG_OK;
    uint32_t w = vk_reduce_wg(c);
    if ((int64_t)w > lp / 2) w = (uint32_t)(lp / 2);
    int64_t chunk = 2 * (int64_t)w;
    ag_status s = bitonic_local(c, keys, w, lp, -1, total);
    for (int64_t k = 2 * chunk; s == AG_OK && k <= lp; k *= 2) {
        for (int64_t j = k / 2; s == AG_OK && j >= chunk; j /= 2) {
            bitonic_global_params g = {.pairs = (int32_t)(total / 2), .lp = (int32_t)lp,
                                       .k = (int32_t)k, .j = (int32_t)j};
            s = vk_run1(c, "index_bitonic_global", &g, sizeof g, VK_BUFS(keys),
                        (size_t)(total / 2));
        }
        if (s == AG_OK) s = bitonic_local(c, keys, w, lp, (int)k, total);
    }
    return s;
}

ag_status vk_scatter_add(void *ctx, int axis, const ag_view *y, const ag_view *index,
                         const ag_view *src)
{
    vk_ctx *c = ctx;
    /* the sort's keys must fit one allocation and one buffer binding */
    uint64_t max_keys = c->props.limits.maxStorageBufferRange;
    if (c->max_alloc < max_keys) max_keys = c->max_alloc;
    ag_scatter_plan p;
    ag_status s = ag_scatter_add_plan("vulkan", axis, y, index, src, max_keys, &p);
    if (s != AG_OK || p.path == AG_SCATTER_NONE) return s;
    if (p.path == AG_SCATTER_SERIAL)
        return vk_run1(c, "index_scatter_serial", &p.serial, sizeof p.serial,
                       VK_BUFS(y->buf, index->buf, src->buf), 1);
    if (p.path == AG_SCATTER_SCAN)
        return vk_run1(c, "index_scatter_scan", &p.scan, sizeof p.scan,
                       VK_BUFS(y->buf, index->buf, src->buf), (size_t)p.scan.sh.numel);
    int64_t total = p.sort.total;
    ag_buffer *keys = vk_alloc(c, (size_t)total * sizeof(uint64_t));
    if (!keys) return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    s = vk_run1(c, "index_scatter_keys", &p.sort.keys, sizeof p.sort.keys,
                VK_BUFS(index->buf, keys), (size_t)total);
    if (s == AG_OK) s = sort_lines(c, keys, total, p.sort.keys.log_lp);
    if (s == AG_OK)
        s = vk_run1(c, "index_scatter_runs", &p.sort.runs, sizeof p.sort.runs,
                    VK_BUFS(y->buf, src->buf, keys), (size_t)p.sort.entries);
    /* later work that reuses the range runs after these dispatches (it gets a
     * barrier before it, vk_dispatch.c) */
    vk_free(c, keys);
    return s;
}
