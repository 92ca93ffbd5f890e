/* Scaled dot-product attention, forward and backward (backend.h, ag_attn_args;
 * backends/vulkan/shaders/attn_*.comp, attention.glsl): one work-group per
 * query row forward, per query row (delta, dq) then per key row (dk, dv)
 * backward, each row's scores rebuilt from q and k. Semantics follow
 * backends/cpu/cpu_attention.c; sums run in a fixed order, without atomics.
 *
 * The backward shaders bind 9 storage buffers besides their parameters. On a
 * device that allows fewer (Vulkan guarantees 4) the _pk_u variants run: the
 * operands' ranges copied into one scratch buffer, their offsets moved with
 * them, results copied back. Where even that cannot work (the scratch past the
 * device's buffer range), forward refuses with AG_ERR_UNSUPPORTED before
 * recording anything, and the core composes attention from other ops instead. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "vk.h"

/* feature columns an invocation accumulates (AT_COLS in attention.glsl) */
#define AT_COLS 4
/* bindings of the widest shader (attn_bw_kv) and its parameter block */
#define AT_STORAGE 10
_Static_assert(AT_STORAGE <= VK_MAX_BINDINGS, "attn_bw_kv's bindings");
#define AT_GRID_X 65535

/* Laid out as the parameter block in backends/vulkan/shaders/attention.glsl:
 * each view as (offset, batch-0 stride, batch-1 stride, row stride). */
typedef struct attn_params {
    int32_t vq[4], vk[4], vv[4], vm[4], vo[4], vg[4], vdq[4], vdk[4], vdv[4];
    int32_t B1, L, S, E, Ev, rows, causal, has_mask, drop, want, mcs, st, de;
    float scale, p, keep;
    uint32_t k0, k1, s0, s1;
} attn_params;

enum { WANT_DQ = 1, WANT_DK = 2, WANT_DV = 4 };

/* A 4-D view's int32 offset and strides (0 on size-1 axes); AG_ERR_UNSUPPORTED
 * when it reaches 2^31 elements. */
static ag_status view32(const char *op, const ag_view *v, int32_t out[4])
{
    ag_status s = ag_offset32("vulkan", op, v, &out[0]);
    for (int d = 0; d < 3 && s == AG_OK; d++)
        out[d + 1] = v->shape[d] > 1 ? (int32_t)v->stride[d] : 0;
    return s;
}

/* Checks a's views and fills the parameters every shader takes. */
static ag_status attn_make(const char *op, const ag_attn_args *a, bool backward, attn_params *p)
{
    int64_t d[6];
    ag_status s = ag_attn_check("vulkan", op, a, backward, d);
    if (s != AG_OK) return s;
    const int64_t B0 = d[0], B1 = d[1], L = d[2], S = d[3], E = d[4], Ev = d[5];
    *p = (attn_params){.scale = a->scale, .p = a->dropout, .causal = a->causal,
                       .drop = a->dropout > 0.0f, .has_mask = a->mask != NULL};
    s = ag_offset32("vulkan", op, a->stats, &p->st);
    if (s == AG_OK && backward) s = ag_offset32("vulkan", op, a->delta, &p->de);
    if (s != AG_OK) return s;
    if (B0 * B1 * S > INT32_MAX) /* the key rows' groups; query rows are below stats' size */
        return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan %s: %lld key rows need 2^31 work-groups "
                            "or more", op, (long long)(B0 * B1 * S));
    /* int32 indexing: every view; the row counts are below their numels */
    s = view32(op, a->q, p->vq);
    if (s == AG_OK) s = view32(op, a->k, p->vk);
    if (s == AG_OK) s = view32(op, a->v, p->vv);
    if (s == AG_OK && a->o) s = view32(op, a->o, p->vo);
    if (s == AG_OK && a->mask) {
        s = view32(op, a->mask, p->vm);
        p->mcs = S > 1 ? (int32_t)a->mask->stride[3] : 0;
    }
    if (s == AG_OK && backward) {
        s = view32(op, a->dout, p->vg);
        if (s == AG_OK && a->dq) s = view32(op, a->dq, p->vdq);
        if (s == AG_OK && a->dk) s = view32(op, a->dk, p->vdk);
        if (s == AG_OK && a->dv) s = view32(op, a->dv, p->vdv);
    }
    if (s != AG_OK) return s;
    p->B1 = (int32_t)B1;
    p->L = (int32_t)L;
    p->S = (int32_t)S;
    p->E = (int32_t)E;
    p->Ev = (int32_t)Ev;
    p->keep = 1.0f / (1.0f - a->dropout);
    p->k0 = (uint32_t)a->rng.seed;
    p->k1 = (uint32_t)(a->rng.seed >> 32);
    p->s0 = (uint32_t)a->rng.stream;
    p->s1 = (uint32_t)(a->rng.stream >> 32);
    return AG_OK;
}

/* The group size: a power of two from 64 up to what holds the widest rows in
 * AT_COLS columns an invocation (wider rows take several passes). */
static uint32_t attn_wg(const vk_ctx *c, const attn_params *p)
{
    const uint32_t max = vk_reduce_wg(c);
    const int64_t cols = p->E > p->Ev ? p->E : p->Ev;
    uint32_t wg = 64;
    while ((int64_t)wg * AT_COLS < cols && wg < max) wg *= 2;
    return wg < max ? wg : max;
}

/* ---- operands: bound one each, or packed into one buffer --------------------- */

/* An operand: its view (NULL: absent, the dummy is bound), where its element
 * offset sits in attn_params, whether the shader writes it. */
typedef struct at_op {
    const ag_view *v;
    size_t field;
    bool written;
} at_op;
#define AT_OFF(f) offsetof(attn_params, f)
#define AT_MAXOPS 9

/* The packed layout: each distinct buffer's range [lo, hi) (elements) at
 * element `at` of the scratch buffer. */
typedef struct at_pack {
    int n;
    const ag_buffer *buf[AT_MAXOPS];
    int64_t lo[AT_MAXOPS], hi[AT_MAXOPS], at[AT_MAXOPS];
    bool written[AT_MAXOPS];
    int64_t total; /* elements */
} at_pack;

/* the elements [lo, hi) of its buffer a view reaches (empty: lo == hi) */
static void view_span(const ag_view *v, int64_t *lo, int64_t *hi)
{
    *lo = *hi = v->offset;
    for (int d = 0; d < v->ndim; d++) {
        if (v->shape[d] == 0) return;
        const int64_t r = (v->shape[d] - 1) * v->stride[d];
        if (r < 0) *lo += r;
        else *hi += r;
    }
    *hi += 1;
}

static void pack_plan(int nops, const at_op *ops, at_pack *pk)
{
    pk->n = 0;
    for (int i = 0; i < nops; i++) {
        if (!ops[i].v) continue;
        int64_t lo, hi;
        view_span(ops[i].v, &lo, &hi);
        int b = 0;
        while (b < pk->n && pk->buf[b] != ops[i].v->buf) b++;
        if (b == pk->n) {
            pk->n++;
            pk->buf[b] = ops[i].v->buf;
            pk->lo[b] = lo;
            pk->hi[b] = hi;
            pk->written[b] = false;
        } else if (lo < hi) {
            if (pk->lo[b] == pk->hi[b] || lo < pk->lo[b]) pk->lo[b] = lo;
            if (pk->lo[b] == pk->hi[b] || hi > pk->hi[b]) pk->hi[b] = hi;
        }
        pk->written[b] = pk->written[b] || ops[i].written;
    }
    pk->total = 0;
    for (int b = 0; b < pk->n; b++) {
        pk->at[b] = pk->total;
        pk->total += (pk->hi[b] - pk->lo[b] + 3) / 4 * 4; /* 16-byte steps */
    }
}

/* Whether a scratch buffer of that many floats can be bound. */
static bool pack_fits(const vk_ctx *c, int64_t floats)
{
    const uint64_t bytes = (uint64_t)(floats > 0 ? floats : 1) * sizeof(float);
    return floats < INT32_MAX && bytes <= c->props.limits.maxStorageBufferRange &&
           bytes <= c->max_alloc;
}

static bool packed(const vk_ctx *c) { return c->max_storage_buffers < AT_STORAGE; }

static ag_status copy_span(vk_ctx *c, const ag_buffer *from, int64_t foff, const ag_buffer *to,
                           int64_t toff, int64_t n)
{
    if (n <= 0) return AG_OK;
    return vk_record_copy(c, vk_block_buffer(from->block), from->offset + (VkDeviceSize)foff * 4,
                          vk_block_buffer(to->block), to->offset + (VkDeviceSize)toff * 4,
                          (VkDeviceSize)n * 4);
}

/* Runs `name` over `rows` groups of wg. */
static ag_status run_rows(vk_ctx *c, const char *name, uint32_t wg, const attn_params *p,
                          int64_t rows, int nops, const at_op *ops)
{
    attn_params q = *p;
    q.rows = (int32_t)rows;
    const uint32_t spec[1] = {wg};
    const int64_t gx = rows < AT_GRID_X ? rows : AT_GRID_X, gy = (rows + gx - 1) / gx;
    vk_bind bufs[AT_MAXOPS];
    if (!packed(c)) {
        for (int i = 0; i < nops; i++) bufs[i] = ops[i].v ? ops[i].v->buf : NULL;
        return vk_dispatch(c, name, spec, 1, &q, sizeof q, nops, bufs, (uint32_t)gx,
                           (uint32_t)gy, 1);
    }
    at_pack pk;
    pack_plan(nops, ops, &pk);
    if (!pack_fits(c, pk.total))
        return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan %s: %lld floats of operands exceed %s's "
                            "storage buffer range", name, (long long)pk.total, c->name);
    ag_buffer *aux = vk_alloc(c, (size_t)(pk.total > 0 ? pk.total : 1) * sizeof(float));
    if (!aux) return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    for (int i = 0; i < nops; i++) {
        if (!ops[i].v) continue;
        int b = 0;
        while (pk.buf[b] != ops[i].v->buf) b++;
        *(int32_t *)((char *)&q + ops[i].field) += (int32_t)(pk.at[b] - pk.lo[b]);
    }
    /* written ranges too: the copy back covers what the shader skips */
    ag_status s = AG_OK;
    for (int b = 0; b < pk.n && s == AG_OK; b++)
        s = copy_span(c, pk.buf[b], pk.lo[b], aux, pk.at[b], pk.hi[b] - pk.lo[b]);
    char pk_name[48];
    snprintf(pk_name, sizeof pk_name, "%s_pk_u", name);
    if (s == AG_OK)
        s = vk_dispatch(c, pk_name, spec, 1, &q, sizeof q, VK_BUFS(aux), (uint32_t)gx, (uint32_t)gy, 1);
    for (int b = 0; b < pk.n && s == AG_OK; b++)
        if (pk.written[b]) s = copy_span(c, aux, pk.at[b], pk.buf[b], pk.lo[b], pk.hi[b] - pk.lo[b]);
    vk_free(c, aux); /* later users of the range run after these commands (vk_free) */
    return s;
}

#define OPS(...) (int)(sizeof((at_op[]){__VA_ARGS__}) / sizeof(at_op)), (at_op[]){__VA_ARGS__}

/* Whether this device runs these shapes forward and backward; for packed
 * operands, backward's (dout, delta, dq, dk, dv as the core makes them:
 * contiguous) estimated from forward's. */
static bool attn_fits(const vk_ctx *c, const ag_attn_args *a, uint32_t wg, int64_t fw_floats)
{
    const VkPhysicalDeviceLimits *l = &c->props.limits;
    if (3 * wg * sizeof(float) > l->maxComputeSharedMemorySize ||
        sizeof(attn_params) > l->maxUniformBufferRange)
        return false;
    if (!packed(c)) return true;
    const ag_view *rows_ev = a->o ? a->o : a->dout; /* [B0, B1, L, Ev] either way */
    const int64_t bw = fw_floats + ag_view_numel(rows_ev) + ag_view_numel(a->stats) / 2 +
                       ag_view_numel(a->q) + ag_view_numel(a->k) + ag_view_numel(a->v) + 32;
    return pack_fits(c, fw_floats) && pack_fits(c, bw);
}

ag_status vk_attention(void *ctx, const ag_attn_args *a)
{
    vk_ctx *c = ctx;
    attn_params p;
    ag_status s = attn_make("attention", a, false, &p);
    if (s != AG_OK) return s;
    const uint32_t wg = attn_wg(c, &p);
    const int64_t heads = a->q->shape[0] * a->q->shape[1];
    const at_op ops[] = {{a->q, AT_OFF(vq), false}, {a->k, AT_OFF(vk), false},
                         {a->v, AT_OFF(vv), false}, {a->mask, AT_OFF(vm), false},
                         {a->stats, AT_OFF(st), true}, {a->o, AT_OFF(vo), true}};
    at_pack pk;
    pack_plan(6, ops, &pk);
    if (!attn_fits(c, a, wg, pk.total))
        return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan attention: these operands exceed %s's "
                            "limits (shared memory, buffer range)", c->name);
    return run_rows(c, "attn_fw", wg, &p, heads * p.L, 6, ops);
}

ag_status vk_attention_backward(void *ctx, const ag_attn_args *a)
{
    vk_ctx *c = ctx;
    attn_params p;
    ag_status s = attn_make("attention backward", a, true, &p);
    if (s != AG_OK) return s;
    const uint32_t wg = attn_wg(c, &p);
    if (!attn_fits(c, a, wg, 0))
        return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan attention backward: these operands "
                            "exceed %s's limits (shared memory, buffer range)", c->name);
    p.want = (a->dq ? WANT_DQ : 0) | (a->dk ? WANT_DK : 0) | (a->dv ? WANT_DV : 0);
    const int64_t heads = a->q->shape[0] * a->q->shape[1];
    /* delta only serves dq and dk */
    if (a->dq || a->dk)
        s = run_rows(c, "attn_bw_q", wg, &p, heads * p.L,
                     OPS({a->q, AT_OFF(vq), false}, {a->k, AT_OFF(vk), false},
                         {a->v, AT_OFF(vv), false}, {a->mask, AT_OFF(vm), false},
                         {a->stats, AT_OFF(st), false}, {a->dout, AT_OFF(vg), false},
                         {a->delta, AT_OFF(de), true}, {a->dq, AT_OFF(vdq), true}));
    if (s == AG_OK && (a->dk || a->dv))
        s = run_rows(c, "attn_bw_kv", wg, &p, heads * p.S,
                     OPS({a->q, AT_OFF(vq), false}, {a->k, AT_OFF(vk), false},
                         {a->v, AT_OFF(vv), false}, {a->mask, AT_OFF(vm), false},
                         {a->stats, AT_OFF(st), false}, {a->dout, AT_OFF(vg), false},
                         {a->delta, AT_OFF(de), false}, {a->dk, AT_OFF(vdk), true},
                         {a->dv, AT_OFF(vdv), true}));
    return s;
}
