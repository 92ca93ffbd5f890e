/* Scaled dot-product attention (backend.h, ag_attn_args). Per head, blocks of
 * query rows meet every key through the GEMM: the block's scores become its
 * weights in a per-thread scratch of [rows, S] floats, used for o = p v and
 * dropped. Backward rebuilds them from q, k and each row's saved maximum and sum.
 *
 * Threads take (head, block) units forward and whole heads backward (dk and dv
 * sum over a head's blocks in order), so no result depends on the team size. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "cpu_simd.h"

/* floats of one scratch matrix: a block has this many / S rows (1 to 128) */
#define ATT_SCRATCH 32768
#define ATT_MAX_ROWS 128

/* One (b0, b1) head: its operands' first rows and row strides. */
typedef struct att_head {
    const float *q, *k, *v, *m, *dout;
    float *o, *stats, *delta, *dq, *dk, *dv;
    int64_t drop0;  /* dropout element of (row 0, key 0) */
} att_head;

typedef struct att_job {
    const ag_attn_args *a;
    const cpu_row_ops *R;
    int64_t B1, L, S, E, Ev, rows;  /* rows: a block's query rows */
    int64_t q_rs, k_rs, v_rs, m_rs, m_cs, o_rs, do_rs, dq_rs, dk_rs, dv_rs;
    float keep_scale;
} att_job;

static const float *at4(const ag_view *v, int64_t b0, int64_t b1)
{
    return v ? cpu_f32(v) + b0 * v->stride[0] + b1 * v->stride[1] : NULL;
}

static att_head head_of(const att_job *J, int64_t h)
{
    const ag_attn_args *a = J->a;
    const int64_t b0 = h / J->B1, b1 = h % J->B1;
    att_head H = {.q = at4(a->q, b0, b1), .k = at4(a->k, b0, b1), .v = at4(a->v, b0, b1),
                  .m = at4(a->mask, b0, b1), .dout = at4(a->dout, b0, b1),
                  .o = (float *)at4(a->o, b0, b1), .stats = cpu_f32(a->stats) + 2 * h * J->L,
                  .delta = a->delta ? cpu_f32(a->delta) + h * J->L : NULL,
                  .dq = (float *)at4(a->dq, b0, b1), .dk = (float *)at4(a->dk, b0, b1),
                  .dv = (float *)at4(a->dv, b0, b1), .drop0 = h * J->L * J->S};
    return H;
}

/* the keys row i sees among the block's ns */
static int64_t keys_of(const att_job *J, int64_t i, int64_t ns)
{
    return J->a->causal && i + 1 < ns ? i + 1 : ns;
}

/* s [nr, ns] = scale q[i0 .. i0 + nr) k[0 .. ns)^T + mask */
static void scores(const att_job *J, const att_head *H, int64_t i0, int64_t nr, int64_t ns,
                   float *s)
{
    cpu_sgemm(nr, ns, J->E, J->a->scale, H->q + i0 * J->q_rs, J->q_rs, 1, H->k, 1, J->k_rs, 0.0f,
              s, ns);
    if (!H->m) return;
    for (int64_t r = 0; r < nr; r++) {
        const float *mr = H->m + (i0 + r) * J->m_rs;
        float *sr = s + r * ns;
        for (int64_t j = 0; j < ns; j++) sr[j] += mr[j * J->m_cs];
    }
}

/* z[j] for keys [0, n) of row i: 1 / (1 - p) where the weight is kept, else 0 */
static void keep_row(const att_job *J, const att_head *H, int64_t i, int64_t n, float *z)
{
    const ag_rand_args *r = &J->a->rng;
    const float p = J->a->dropout;
    int64_t e = H->drop0 + i * J->S, j = 0;
    while (j < n) {
        uint32_t w[4];
        cpu_philox_block(r, e / 4, w);
        for (int64_t k = e % 4; k < 4 && j < n; k++, j++, e++)
            z[j] = cpu_u01(w[k]) >= p ? J->keep_scale : 0.0f;
    }
}

/* Row i of the block in s (ns scores): its weights over nj keys, zeros after.
 * Forward writes st = (max, 1 / sum); backward passes them back, and the same
 * operations rebuild the same weights bit for bit. */
static void row_weights(const att_job *J, float *s, int64_t nj, int64_t ns, float *st, bool have)
{
    if (!have) {
        st[0] = J->R->max(s, nj);
        st[1] = (float)(1.0 / J->R->exp_sum(s, s, nj, st[0]));
    } else {
        J->R->exp_sum(s, s, nj, st[0]);
    }
    for (int64_t j = 0; j < nj; j++) s[j] *= st[1];
    for (int64_t j = nj; j < ns; j++) s[j] = 0.0f;
}

static void forward_block(const att_job *J, int64_t h, int64_t i0, float *s, float *z)
{
    const att_head H = head_of(J, h);
    const int64_t nr = J->L - i0 < J->rows ? J->L - i0 : J->rows;
    const int64_t ns = J->a->causal && i0 + nr < J->S ? i0 + nr : J->S;
    scores(J, &H, i0, nr, ns, s);
    for (int64_t r = 0; r < nr; r++) {
        const int64_t i = i0 + r, nj = keys_of(J, i, ns);
        float *sr = s + r * ns;
        row_weights(J, sr, nj, ns, H.stats + 2 * i, false);
        if (J->a->dropout > 0.0f) {
            keep_row(J, &H, i, nj, z);
            for (int64_t j = 0; j < nj; j++) sr[j] *= z[j];
        }
    }
    cpu_sgemm(nr, J->Ev, ns, 1.0f, s, ns, 1, H.v, J->v_rs, 1, 0.0f, H.o + i0 * J->o_rs, J->o_rs);
}

static void backward_head(const att_job *J, int64_t h, float *s, float *dp, float *z)
{
    const att_head H = head_of(J, h);
    const ag_attn_args *a = J->a;
    for (int64_t j = 0; j < J->S; j++) {
        if (H.dk) memset(H.dk + j * J->dk_rs, 0, (size_t)J->E * sizeof(float));
        if (H.dv) memset(H.dv + j * J->dv_rs, 0, (size_t)J->Ev * sizeof(float));
    }
    for (int64_t i0 = 0; i0 < J->L; i0 += J->rows) {
        const int64_t nr = J->L - i0 < J->rows ? J->L - i0 : J->rows;
        const int64_t ns = a->causal && i0 + nr < J->S ? i0 + nr : J->S;
        const float *g0 = H.dout + i0 * J->do_rs;
        scores(J, &H, i0, nr, ns, s);
        cpu_sgemm(nr, ns, J->Ev, 1.0f, g0, J->do_rs, 1, H.v, 1, J->v_rs, 0.0f, dp, ns);
        for (int64_t r = 0; r < nr; r++) {
            const int64_t i = i0 + r, nj = keys_of(J, i, ns);
            float *sr = s + r * ns, *dr = dp + r * ns;
            row_weights(J, sr, nj, ns, H.stats + 2 * i, true);
            /* delta from the rebuilt weights (not dout . o): a weight of exactly 1
             * then gives ds = 0 exactly, as the composed softmax backward does */
            double d = 0.0;
            if (a->dropout > 0.0f) {
                keep_row(J, &H, i, nj, z);
                for (int64_t j = 0; j < nj; j++) d += (double)(sr[j] * z[j]) * dr[j];
                const float di = (float)d;
                for (int64_t j = 0; j < nj; j++) {
                    dr[j] = sr[j] * (z[j] * dr[j] - di);
                    sr[j] *= z[j];
                }
            } else {
                for (int64_t j = 0; j < nj; j++) d += (double)sr[j] * dr[j];
                const float di = (float)d;
                for (int64_t j = 0; j < nj; j++) dr[j] = sr[j] * (dr[j] - di);
            }
            H.delta[i] = (float)d;
            for (int64_t j = nj; j < ns; j++) dr[j] = 0.0f;
        }
        if (H.dv) cpu_sgemm(ns, J->Ev, nr, 1.0f, s, 1, ns, g0, J->do_rs, 1, 1.0f, H.dv, J->dv_rs);
        if (H.dq)
            cpu_sgemm(nr, J->E, ns, a->scale, dp, ns, 1, H.k, J->k_rs, 1, 0.0f,
                      H.dq + i0 * J->dq_rs, J->dq_rs);
        if (H.dk)
            cpu_sgemm(ns, J->E, nr, a->scale, dp, 1, ns, H.q + i0 * J->q_rs, J->q_rs, 1, 1.0f,
                      H.dk, J->dk_rs);
    }
}

/* ---- setup ------------------------------------------------------------------- */

static ag_status job_make(const char *op, const ag_attn_args *a, bool backward, att_job *J)
{
    int64_t d[6];
    ag_status s = ag_attn_check("cpu", op, a, backward, d);
    if (s != AG_OK) return s;
    const int64_t B1 = d[1], L = d[2], S = d[3], E = d[4], Ev = d[5];
    int64_t rows = ATT_SCRATCH / S;
    rows = rows < 1 ? 1 : rows > ATT_MAX_ROWS ? ATT_MAX_ROWS : rows;
    *J = (att_job){.a = a, .R = cpu_rows(), .B1 = B1, .L = L, .S = S, .E = E, .Ev = Ev,
                   .rows = rows < L ? rows : L, .q_rs = a->q->stride[2], .k_rs = a->k->stride[2],
                   .v_rs = a->v->stride[2], .o_rs = a->o ? a->o->stride[2] : 0,
                   .keep_scale = 1.0f / (1.0f - a->dropout)};
    if (a->mask) {
        J->m_rs = a->mask->stride[2];
        J->m_cs = a->mask->stride[3];
    }
    if (backward) {
        J->do_rs = a->dout->stride[2];
        J->dq_rs = a->dq ? a->dq->stride[2] : 0;
        J->dk_rs = a->dk ? a->dk->stride[2] : 0;
        J->dv_rs = a->dv ? a->dv->stride[2] : 0;
    }
    return AG_OK;
}

/* threads for units of work, each worth `work` multiply-adds */
static int team_for(int64_t units, double work)
{
    if (units <= 1 || work * (double)units < 65536.0) return 1;
    const int nt = cpu_threads();
    return nt > units ? (int)units : nt;
}

/* ---- the ops -------------------------------------------------------------------- */

ag_status cpu_attention(void *ctx, const ag_attn_args *a)
{
    (void)ctx;
    att_job J;
    ag_status st = job_make("attention", a, false, &J);
    if (st != AG_OK) return st;
    const int64_t B0 = a->q->shape[0], heads = B0 * J.B1, blocks = (J.L + J.rows - 1) / J.rows;
    const int64_t units = heads * blocks;
    const int nt = team_for(units, (double)J.rows * (double)J.S * (double)(J.E + J.Ev));
    (void)nt; /* unused without OpenMP */
    bool oom = false;
    OMP(omp parallel num_threads(nt))
    {
        float *s = malloc((size_t)(J.rows * J.S + J.S) * sizeof(float));
        if (!s) {
            OMP(omp atomic write)
            oom = true;
        }
        OMP(omp for schedule(dynamic, 1))
        for (int64_t u = 0; u < units; u++)
            if (s) forward_block(&J, u / blocks, u % blocks * J.rows, s, s + J.rows * J.S);
        free(s);
    }
    return oom ? ag_set_error(AG_ERR_OOM, "cpu attention: out of memory for a %lld x %lld block",
                              (long long)J.rows, (long long)J.S)
               : AG_OK;
}

ag_status cpu_attention_backward(void *ctx, const ag_attn_args *a)
{
    (void)ctx;
    att_job J;
    ag_status st = job_make("attention backward", a, true, &J);
    if (st != AG_OK) return st;
    const int64_t heads = a->q->shape[0] * J.B1;
    const int nt = team_for(heads, 3.0 * (double)J.L * (double)J.S * (double)(J.E + J.Ev));
    (void)nt; /* unused without OpenMP */
    bool oom = false;
    OMP(omp parallel num_threads(nt))
    {
        float *s = malloc((size_t)(2 * J.rows * J.S + J.S) * sizeof(float));
        if (!s) {
            OMP(omp atomic write)
            oom = true;
        }
        OMP(omp for schedule(dynamic, 1))
        for (int64_t h = 0; h < heads; h++)
            if (s) backward_head(&J, h, s, s + J.rows * J.S, s + 2 * J.rows * J.S);
        free(s);
    }
    return oom ? ag_set_error(AG_ERR_OOM, "cpu attention backward: out of memory for a %lld x %lld block",
                              (long long)J.rows, (long long)J.S)
               : AG_OK;
}
