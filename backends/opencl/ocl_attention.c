/* Fused scaled-dot-product attention (backend.h, ag_attn_args): kernels/
 * attention.cl, a program of its own, so that a device that cannot build it
 * loses only this op (forward then says AG_ERR_UNSUPPORTED and the core
 * composes attention from the other kernels). Semantics: backends/cpu/
 * cpu_attention.c. */
#include <math.h>

#include "ocl.h"

/* rows (keys in attn_bw_kv) per work group: ATT_R in kernels/attention.cl */
#define ATT_R 8

enum { ATT_Q, ATT_K, ATT_V, ATT_M, ATT_O, ATT_DO, ATT_DQ, ATT_DK, ATT_DV, ATT_NV = 12 };

/* Laid out as att_dims in kernels/attention.cl: 4-byte members only. */
typedef struct ocl_attn_dims {
    cl_int B1, L, S, E, Ev, causal, has_mask, drop;
    cl_int st_off, dl_off, mask_cs, pad0;
    cl_float scale, p, keep, pad1;
    cl_uint k0, k1, s0, s1;
    cl_int off[ATT_NV], bs0[ATT_NV], bs1[ATT_NV], rs[ATT_NV];
} ocl_attn_dims;
_Static_assert(sizeof(ocl_attn_dims) == 4 * (20 + 4 * ATT_NV), "att_dims layout");

/* Records view `which` in d: its offset and strides, each index it reaches
 * checked for int32 (the kernels index with int). */
static ag_status put_view(const char *op, ocl_attn_dims *d, int which, const ag_view *v)
{
    cl_int off;
    ag_status s = ocl_offset(op, v, &off);
    if (s != AG_OK) return s;
    d->off[which] = off;
    d->bs0[which] = (cl_int)v->stride[0];
    d->bs1[which] = (cl_int)v->stride[1];
    d->rs[which] = (cl_int)v->stride[2];
    if (which == ATT_M) d->mask_cs = (cl_int)v->stride[3];
    return AG_OK;
}

/* Checks a's views and fills d (forward's, plus backward's when asked). */
static ag_status attn_dims(const char *op, const ag_attn_args *a, bool backward, ocl_attn_dims *d)
{
    int64_t dm[6];
    ag_status s = ag_attn_check("opencl", op, a, backward, dm);
    if (s != AG_OK) return s;
    const int64_t B0 = dm[0], B1 = dm[1], L = dm[2], S = dm[3], E = dm[4], Ev = dm[5];
    *d = (ocl_attn_dims){.B1 = (cl_int)B1, .L = (cl_int)L, .S = (cl_int)S, .E = (cl_int)E,
                         .Ev = (cl_int)Ev, .causal = a->causal, .has_mask = a->mask != NULL,
                         .drop = a->dropout > 0.0f, .scale = a->scale, .p = a->dropout,
                         .keep = 1.0f / (1.0f - a->dropout), .k0 = (cl_uint)a->rng.seed,
                         .k1 = (cl_uint)(a->rng.seed >> 32), .s0 = (cl_uint)a->rng.stream,
                         .s1 = (cl_uint)(a->rng.stream >> 32)};
    s = ocl_offset(op, a->stats, &d->st_off);
    if (s == AG_OK && backward) s = ocl_offset(op, a->delta, &d->dl_off);
    if (s != AG_OK) return s;
    /* the dropout element ((b0 B1 + b1) L + i) S + j and the groups' indices are int */
    const int64_t rows = B0 * B1 * (L > S ? L : S);
    if ((a->dropout > 0.0f && B0 * B1 * L * S > INT32_MAX) || rows > INT32_MAX)
        return ag_set_error(AG_ERR_UNSUPPORTED,
                            "opencl %s: %lld heads of %lld x %lld exceed 32-bit indexing", op,
                            (long long)(B0 * B1), (long long)L, (long long)S);
    const ag_view *views[ATT_NV] = {a->q, a->k, a->v, a->mask, a->o};
    if (backward) {
        views[ATT_DO] = a->dout;
        views[ATT_DQ] = a->dq;
        views[ATT_DK] = a->dk;
        views[ATT_DV] = a->dv;
    }
    for (int i = 0; i < ATT_NV && s == AG_OK; i++)
        if (views[i]) s = put_view(op, d, i, views[i]);
    return s;
}

/* Work-group sizes and local memory of the three kernels for these shapes:
 * a power of two no wider than the rows need, within each kernel's limit. */
typedef struct attn_launch {
    size_t wg_fw, wg_q, wg_kv;
    size_t acc_fw, acc_q, acc_kv; /* local floats for the accumulators */
} attn_launch;

static size_t pick_wg(size_t lim, int64_t want)
{
    size_t wg = 1;
    while (wg < lim && (int64_t)wg < want) wg *= 2;
    while (wg > lim) wg /= 2;
    return wg;
}

/* The kernel's work-group limit, 0 (no error set) when it does not build here. */
static size_t kernel_lim(ocl_ctx *c, const char *kernel)
{
    size_t lim = ocl_kernel_wg_optional(c, "attention", kernel);
    return lim > 256 ? 256 : lim;
}

static ag_status attn_plan(ocl_ctx *c, const char *op, const ocl_attn_dims *d, attn_launch *l)
{
    size_t lf = kernel_lim(c, "attn_fw"), lq = kernel_lim(c, "attn_bw_q"),
           lk = kernel_lim(c, "attn_bw_kv");
    if (!lf || !lq || !lk)
        return ag_set_error(AG_ERR_UNSUPPORTED,
                            "opencl %s: kernels/attention.cl does not build for %s", op, c->name);
    const int64_t feat = d->E > d->Ev ? d->E : d->Ev;
    l->wg_fw = pick_wg(lf, d->S > d->Ev ? d->S : d->Ev);
    l->wg_q = pick_wg(lq, d->S > d->E ? d->S : d->E);
    l->wg_kv = pick_wg(lk, d->L > feat ? d->L : feat);
    /* local arguments may not be empty */
    l->acc_fw = ATT_R * (d->Ev > 0 ? (size_t)d->Ev : 1);
    l->acc_q = ATT_R * (d->E > 0 ? (size_t)d->E : 1);
    l->acc_kv = ATT_R * (d->E + d->Ev > 0 ? (size_t)(d->E + d->Ev) : 1);
    /* narrower groups where local memory is short; the accumulators must fit */
    size_t *wg[3] = {&l->wg_fw, &l->wg_q, &l->wg_kv};
    const size_t per[3] = {ATT_R, ATT_R, 2 * ATT_R}, acc[3] = {l->acc_fw, l->acc_q, l->acc_kv};
    for (int i = 0; i < 3; i++) {
        while (*wg[i] > 1 && (per[i] * *wg[i] + acc[i]) * sizeof(cl_float) > c->local_mem)
            *wg[i] /= 2;
        const size_t need = (per[i] * *wg[i] + acc[i]) * sizeof(cl_float);
        if (need > c->local_mem)
            return ag_set_error(AG_ERR_UNSUPPORTED,
                                "opencl %s: %lld + %lld features need %zu bytes of local memory; "
                                "%s has %llu",
                                op, (long long)d->E, (long long)d->Ev, need, c->name,
                                (unsigned long long)c->local_mem);
    }
    return AG_OK;
}

/* work groups over n rows */
static size_t blocks(cl_int n) { return (size_t)((n + ATT_R - 1) / ATT_R); }

ag_status ocl_attention(void *ctx, const ag_attn_args *a)
{
    ocl_ctx *c = ctx;
    ocl_attn_dims d;
    attn_launch l;
    ag_status s = attn_dims("attention", a, false, &d);
    if (s == AG_OK) s = attn_plan(c, "attention", &d, &l);
    if (s != AG_OK) return s;
    const size_t groups = (size_t)a->q->shape[0] * (size_t)d.B1 * blocks(d.L);
    cl_mem mask = ocl_mem_or_dummy(c, a->mask);
    return ocl_run_groups(c, "attention", "attn_fw", groups, l.wg_fw,
                          OCL_ARGS(OA(d), OA(a->q->buf->mem), OA(a->k->buf->mem),
                                   OA(a->v->buf->mem), OA(mask), OA(a->o->buf->mem),
                                   OA(a->stats->buf->mem),
                                   OA_LOCAL(ATT_R * l.wg_fw * sizeof(cl_float)),
                                   OA_LOCAL(l.acc_fw * sizeof(cl_float))));
}

ag_status ocl_attention_backward(void *ctx, const ag_attn_args *a)
{
    ocl_ctx *c = ctx;
    ocl_attn_dims d;
    attn_launch l;
    ag_status s = attn_dims("attention backward", a, true, &d);
    if (s == AG_OK) s = attn_plan(c, "attention backward", &d, &l);
    if (s != AG_OK) return s;
    const size_t heads = (size_t)a->q->shape[0] * (size_t)d.B1;
    cl_mem mask = ocl_mem_or_dummy(c, a->mask), dq = ocl_mem_or_dummy(c, a->dq),
           dk = ocl_mem_or_dummy(c, a->dk), dv = ocl_mem_or_dummy(c, a->dv);
    /* delta feeds dk; dv alone does not need it */
    if (a->dq || a->dk) {
        cl_int has_dq = a->dq != NULL;
        s = ocl_run_groups(c, "attention", "attn_bw_q", heads * blocks(d.L), l.wg_q,
                           OCL_ARGS(OA(d), OA(has_dq), OA(a->q->buf->mem), OA(a->k->buf->mem),
                                    OA(a->v->buf->mem), OA(mask), OA(a->stats->buf->mem),
                                    OA(a->dout->buf->mem), OA(a->delta->buf->mem), OA(dq),
                                    OA_LOCAL(ATT_R * l.wg_q * sizeof(cl_float)),
                                    OA_LOCAL(l.acc_q * sizeof(cl_float))));
    }
    if (s == AG_OK && (a->dk || a->dv)) {
        cl_int has = (a->dv ? 1 : 0) | (a->dk ? 2 : 0);
        s = ocl_run_groups(c, "attention", "attn_bw_kv", heads * blocks(d.S), l.wg_kv,
                           OCL_ARGS(OA(d), OA(has), OA(a->q->buf->mem), OA(a->k->buf->mem),
                                    OA(a->v->buf->mem), OA(mask), OA(a->stats->buf->mem),
                                    OA(a->dout->buf->mem), OA(a->delta->buf->mem), OA(dk),
                                    OA(dv), OA_LOCAL(ATT_R * l.wg_kv * sizeof(cl_float)),
                                    OA_LOCAL(ATT_R * l.wg_kv * sizeof(cl_float)),
                                    OA_LOCAL(l.acc_kv * sizeof(cl_float))));
    }
    return s;
}
