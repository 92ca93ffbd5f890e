/* Layer and batch normalisation, forward and backward (backends/vulkan/shaders/norm_*.comp),
 * dispatched as backends/common/plan_norm.c lays them out: shared-memory tree
 * reductions, layer norm's dgamma / dbeta by row chunks whose partials are
 * added in a fixed order. Semantics and checks follow backends/cpu/cpu_norm.c;
 * batch norm takes two shaders each way (per-channel sums, then an
 * element-wise pass), since one would need 8 buffers and Vulkan gets at most 7
 * here.
 *
 * Where the device has subgroup arithmetic (and AG_VULKAN_PORTABLE is not
 * set), the per-row and per-channel sums of groups with one channel use the
 * _sg shader variants (subgroup operations instead of the tree); sums may
 * then differ from the tree's in the last bits.
 *
 * The shaders bind up to 7 storage buffers; Vulkan guarantees 4 and older
 * Mali drivers offer no more. There the _pk_u variants run: the small
 * per-row / per-channel operands (statistics, gamma, beta, running
 * statistics, their gradients) travel in one scratch buffer, copied in
 * before and out after, their element offsets moved with them, and the
 * parameters in a uniform buffer. */
#include <stddef.h>
#include <stdio.h>

#include "vk.h"
#include "plan.h"

/* Laid out as Params in backends/vulkan/shaders/norm.glsl. */
typedef struct norm_params {
    int32_t training, N, C, S, cpg, has, R, nchunk;
    float eps, momentum;
    ag_norm_offs off;
} norm_params;

/* Per dispatch dimension, the count every device allows. */
#define MAX_GROUPS 65535u

static vk_bind buf_of(const ag_view *v) { return v ? v->buf : NULL; }

/* The parameters every norm shader takes, as plan p and args a set them. */
static norm_params params_of(const ag_norm_plan *p, const ag_norm_args *a, bool bn)
{
    return (norm_params){.training = bn && a->training, .N = p->n, .C = p->c, .S = p->s,
                         .cpg = p->cpg, .has = p->has, .eps = a->eps,
                         .momentum = bn ? a->momentum : 0.0f, .off = p->off};
}

/* groups work-groups of wg, past 65535 continued in y (shaders: group_id()),
 * times gz in z; wg 0: an element-wise pass over `groups` items (vk_run1).
 * Shaders built with an _sg variant (sg) take it when a group sums one channel
 * and is whole subgroups of the device's fixed subgroup size (the shader checks
 * again that subgroups are full and falls back to the tree if not). */
static ag_status run_groups(vk_ctx *c, const char *name, bool sg, uint32_t wg,
                            const norm_params *p, int nbufs, const vk_bind *bufs, size_t groups,
                            uint32_t gz)
{
    if (wg == 0) return vk_run1(c, name, p, sizeof *p, nbufs, bufs, groups);
    size_t gy = (groups + MAX_GROUPS - 1) / MAX_GROUPS, gx = gy ? (groups + gy - 1) / gy : 0;
    uint32_t spec[1] = {wg};
    const uint32_t sgs = c->subgroup_size;
    char sg_name[48];
    if (sg && c->subgroup_arith && sgs > 1 && wg % sgs == 0 && p->cpg == 1) {
        snprintf(sg_name, sizeof sg_name, "%s_sg", name);
        name = sg_name;
    }
    return vk_dispatch(c, name, spec, 1, p, sizeof *p, nbufs, bufs, (uint32_t)gx, (uint32_t)gy, gz);
}

/* A small operand: its buffer (NULL: absent), where its element offset sits
 * in norm_params (NO_OFF: it has none and is indexed from 0, so it must come
 * first), whether the shader writes it. */
typedef struct small_op {
    const ag_buffer *buf;
    ptrdiff_t field;
    bool written;
} small_op;
#define NO_OFF ((ptrdiff_t)-1)
#define OFF(f) ((ptrdiff_t)offsetof(norm_params, off.f))
#define MAX_SMALL 4

static ag_status copy_range(vk_ctx *c, const ag_buffer *from, VkDeviceSize foff,
                            const ag_buffer *to, VkDeviceSize toff, size_t bytes)
{
    return vk_record_copy(c, vk_block_buffer(from->block), from->offset + foff,
                          vk_block_buffer(to->block), to->offset + toff, bytes);
}

/* Runs shader name with the large operands big[] bound one each, then the
 * small ones: each in its own binding where the device allows that many
 * storage buffers, else packed into one (the _pk_u variant). */
static ag_status norm_run(vk_ctx *c, const char *name, bool sg, uint32_t wg, const norm_params *p,
                          int nbig, const vk_bind *big, int nsmall, const small_op *small,
                          size_t groups, uint32_t gz)
{
    vk_bind bufs[VK_MAX_BINDINGS];
    for (int i = 0; i < nbig; i++) bufs[i] = big[i];
    if ((uint32_t)(nbig + nsmall + 1) <= c->max_storage_buffers) { /* + the parameter block */
        for (int i = 0; i < nsmall; i++) bufs[nbig + i] = small[i].buf;
        return run_groups(c, name, sg, wg, p, nbig + nsmall, bufs, groups, gz);
    }
    /* each present operand's whole buffer at a 16-byte boundary of aux */
    VkDeviceSize at[MAX_SMALL] = {0}, total = 0;
    for (int i = 0; i < nsmall; i++) {
        if (!small[i].buf) continue;
        at[i] = total;
        total += (small[i].buf->bytes + 15) / 16 * 16;
    }
    ag_buffer *aux = vk_alloc(c, total ? (size_t)total : 4);
    if (!aux) return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    norm_params pp = *p;
    ag_status s = AG_OK;
    for (int i = 0; i < nsmall && s == AG_OK; i++) {
        if (!small[i].buf) continue;
        if (small[i].field != NO_OFF) *(int32_t *)((char *)&pp + small[i].field) += (int32_t)(at[i] / 4);
        else if (at[i] != 0) s = ag_set_error(AG_ERR_ARG, "vulkan %s: an operand without offset is not first", name);
        if (s == AG_OK) s = copy_range(c, small[i].buf, 0, aux, at[i], small[i].buf->bytes);
    }
    char pk[48];
    snprintf(pk, sizeof pk, "%s_pk_u", name);
    bufs[nbig] = aux;
    if (s == AG_OK) s = run_groups(c, pk, false, wg, &pp, nbig + 1, bufs, groups, gz);
    for (int i = 0; i < nsmall && s == AG_OK; i++)
        if (small[i].buf && small[i].written)
            s = copy_range(c, aux, at[i], small[i].buf, 0, small[i].buf->bytes);
    vk_free(c, aux); /* later users of the range run after these commands (vk_free) */
    return s;
}

#define SMALL(...) (int)(sizeof((small_op[]){__VA_ARGS__}) / sizeof(small_op)), (small_op[]){__VA_ARGS__}

/* Scratch for per-channel values between two shaders; freed right after
 * recording: later work that reuses the range runs after this (it gets a
 * barrier before it, vk_dispatch.c). */
static ag_buffer *scratch(vk_ctx *c, int64_t floats)
{
    return vk_alloc(c, (size_t)(floats > 0 ? floats : 1) * sizeof(float));
}

static ag_status status_or_oom(void) { return ag_last_status() ? ag_last_status() : AG_ERR_OOM; }

/* ---- layer norm: x [rows, D] ------------------------------------------------ */

ag_status vk_layer_norm(void *ctx, const ag_norm_args *a)
{
    vk_ctx *c = ctx;
    ag_norm_plan pl;
    ag_status s = ag_layer_norm_plan("vulkan", a, false, vk_reduce_wg(c), &pl);
    if (s != AG_OK || pl.groups == 0) return s;
    norm_params p = params_of(&pl, a, false);
    return norm_run(c, "norm_ln_fw", true, (uint32_t)pl.wg, &p, VK_BUFS(a->x->buf, a->y->buf),
                    SMALL({buf_of(a->mean), OFF(mean), true}, {buf_of(a->rstd), OFF(rstd), true},
                          {buf_of(a->gamma), OFF(gamma), false}, {buf_of(a->beta), OFF(beta), false}),
                    (size_t)pl.groups, 1);
}

/* dgamma / dbeta = sums over rows, by column blocks and row chunks. */
static ag_status ln_param_grads(vk_ctx *c, const ag_norm_args *a, const ag_norm_plan *pl)
{
    norm_params p = params_of(pl, a, false);
    p.cpg = pl->param_cpg;
    p.R = pl->chunk_rows;
    p.nchunk = pl->nchunk;
    p.has = pl->param_has;
    ag_buffer *part = NULL;
    if (pl->nchunk > 1 && !(part = scratch(c, (int64_t)pl->nchunk * 2 * pl->s)))
        return status_or_oom();
    ag_status s = norm_run(c, "norm_ln_param", false, (uint32_t)pl->param_wg, &p,
                           VK_BUFS(a->x->buf, a->dy->buf, part),
                           SMALL({a->mean->buf, OFF(mean), false}, {a->rstd->buf, OFF(rstd), false},
                                 {buf_of(a->dgamma), OFF(dgamma), true},
                                 {buf_of(a->dbeta), OFF(dbeta), true}),
                           (size_t)pl->blocks, (uint32_t)pl->nchunk);
    if (s == AG_OK && part)
        s = vk_run1(c, "norm_ln_param_final", &p, sizeof p,
                    VK_BUFS(part, buf_of(a->dgamma), buf_of(a->dbeta)), (size_t)pl->s);
    vk_free(c, part);
    return s;
}

ag_status vk_layer_norm_backward(void *ctx, const ag_norm_args *a)
{
    vk_ctx *c = ctx;
    ag_norm_plan pl;
    ag_status s = ag_layer_norm_plan("vulkan", a, true, vk_reduce_wg(c), &pl);
    if (s != AG_OK) return s;
    if (pl.groups > 0) {
        norm_params p = params_of(&pl, a, false);
        s = norm_run(c, "norm_ln_bw", true, (uint32_t)pl.wg, &p,
                     VK_BUFS(a->x->buf, a->dy->buf, a->dx->buf),
                     SMALL({a->mean->buf, OFF(mean), false}, {a->rstd->buf, OFF(rstd), false},
                           {buf_of(a->gamma), OFF(gamma), false}),
                     (size_t)pl.groups, 1);
    }
    if (s == AG_OK && pl.blocks > 0) s = ln_param_grads(c, a, &pl);
    return s;
}

/* ---- batch norm: x [N, C, S] ------------------------------------------------- */

ag_status vk_batch_norm(void *ctx, const ag_norm_args *a)
{
    vk_ctx *c = ctx;
    ag_norm_plan pl;
    ag_status s = ag_batch_norm_plan("vulkan", a, false, vk_reduce_wg(c), &pl);
    if (s != AG_OK || pl.groups == 0) return s;
    norm_params p = params_of(&pl, a, true);
    ag_buffer *st = scratch(c, 3 * (int64_t)pl.c);
    if (!st) return status_or_oom();
    s = norm_run(c, "norm_bn_stats", true, (uint32_t)pl.wg, &p, VK_BUFS(a->x->buf, st),
                 SMALL({buf_of(a->mean), OFF(mean), true}, {buf_of(a->rstd), OFF(rstd), true},
                       {buf_of(a->running_mean), OFF(rmean), true},
                       {buf_of(a->running_var), OFF(rvar), true}),
                 (size_t)pl.groups, 1);
    if (s == AG_OK)
        s = norm_run(c, "norm_bn_apply", false, 0, &p, VK_BUFS(a->x->buf, a->y->buf, st),
                     SMALL({buf_of(a->gamma), OFF(gamma), false}, {buf_of(a->beta), OFF(beta), false}),
                     (size_t)pl.n * pl.c * pl.s, 1);
    vk_free(c, st);
    return s;
}

ag_status vk_batch_norm_backward(void *ctx, const ag_norm_args *a)
{
    vk_ctx *c = ctx;
    ag_norm_plan pl;
    ag_status s = ag_batch_norm_plan("vulkan", a, true, vk_reduce_wg(c), &pl);
    if (s != AG_OK || pl.groups == 0) return s;
    norm_params p = params_of(&pl, a, true);
    /* eval wants the sums only for dgamma / dbeta */
    bool sums = a->training || a->dgamma || a->dbeta;
    ag_buffer *st = NULL;
    if (sums && !(st = scratch(c, 2 * (int64_t)pl.c))) return status_or_oom();
    if (sums)
        s = norm_run(c, "norm_bn_bw_sums", true, (uint32_t)pl.wg, &p,
                     VK_BUFS(a->x->buf, a->dy->buf, st),
                     SMALL({a->mean->buf, OFF(mean), false}, {a->rstd->buf, OFF(rstd), false},
                           {buf_of(a->dgamma), OFF(dgamma), true}, {buf_of(a->dbeta), OFF(dbeta), true}),
                     (size_t)pl.groups, 1);
    if (s == AG_OK && a->dx)
        s = norm_run(c, "norm_bn_bw_apply", false, 0, &p, VK_BUFS(a->x->buf, a->dy->buf, a->dx->buf),
                     SMALL({st, NO_OFF, false}, {a->mean->buf, OFF(mean), false},
                           {a->rstd->buf, OFF(rstd), false}, {buf_of(a->gamma), OFF(gamma), false}),
                     (size_t)pl.n * pl.c * pl.s, 1);
    vk_free(c, st);
    return s;
}
