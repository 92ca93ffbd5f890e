/* The fused attention kernels beyond the conformance row: dropout keeps exactly
 * the weights whose Philox uniform (ag_rand's element of [..., L, S] drawn from
 * the same seed) is >= p, forward and backward; heads taken as strided views of
 * one [B, L, H, E] tensor; rows long enough for several blocks and key chunks;
 * a row whose every key is masked is NaN and leaves the others alone. Each is
 * judged against a double-precision reference computed here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "suites.h"

typedef struct att_case {
    int64_t B, H, L, S, E, Ev;
    bool causal, strided;  /* strided: q, k, v are [B, L, H, E] transposed to [B, H, L, E] */
    float dropout;
} att_case;

static const att_case CASES[] = {
    {2, 3, 5, 6, 4, 3, false, false, 0.3f},
    {2, 3, 6, 6, 4, 3, true, false, 0.5f},
    {2, 4, 7, 7, 8, 8, true, true, 0.2f},
    {1, 2, 9, 4, 5, 6, false, true, 0.0f},
    {1, 1, 300, 300, 16, 8, true, false, 0.0f},  /* several row blocks and key chunks */
    {1, 2, 70, 530, 8, 4, false, false, 0.1f},
    /* wide rows: a backend short of local memory refuses them and the core
     * composes attention instead, which must draw the same mask
     * (tests/faults.sh runs this suite with AG_OPENCL_LOCAL_KB=1) */
    {1, 2, 6, 6, 40, 40, false, false, 0.3f},
};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

/* Per head (contiguous [L, E] etc.): o, and the gradients of sum(o * w). z holds
 * each weight's dropout factor (NULL: none). */
static void ref_head(const att_case *c, double scale, const double *q, const double *k,
                     const double *v, const double *w, const double *z, double *o, double *dq,
                     double *dk, double *dv)
{
    const int64_t L = c->L, S = c->S, E = c->E, Ev = c->Ev;
    double *p = calloc((size_t)S, sizeof *p), *dp = calloc((size_t)S, sizeof *dp);
    ck_assert(p && dp);
    for (int64_t i = 0; i < L; i++) {
        const int64_t nj = c->causal && i + 1 < S ? i + 1 : S;
        double m = -INFINITY, l = 0.0;
        for (int64_t j = 0; j < nj; j++) {
            double s = 0.0;
            for (int64_t e = 0; e < E; e++) s += q[i * E + e] * k[j * E + e];
            p[j] = s * scale;
            m = fmax(m, p[j]);
        }
        for (int64_t j = 0; j < nj; j++) l += (p[j] = exp(p[j] - m));
        double delta = 0.0;
        for (int64_t j = 0; j < nj; j++) {
            p[j] /= l;
            const double zj = z ? z[i * S + j] : 1.0;
            dp[j] = 0.0;
            for (int64_t e = 0; e < Ev; e++) dp[j] += w[i * Ev + e] * v[j * Ev + e];
            delta += p[j] * zj * dp[j];
            for (int64_t e = 0; e < Ev; e++) {
                o[i * Ev + e] += p[j] * zj * v[j * Ev + e];
                dv[j * Ev + e] += p[j] * zj * w[i * Ev + e];
            }
        }
        for (int64_t j = 0; j < nj; j++) {
            const double zj = z ? z[i * S + j] : 1.0, ds = p[j] * (zj * dp[j] - delta) * scale;
            for (int64_t e = 0; e < E; e++) {
                dq[i * E + e] += ds * k[j * E + e];
                dk[j * E + e] += ds * q[i * E + e];
            }
        }
    }
    free(p), free(dp);
}

/* A leaf holding [B, H, R, C] values: contiguous, or (strided) as [B, R, H, C]
 * whose transpose the op reads. */
static ag_tensor *heads_leaf(const att_case *c, rt *r, int64_t R, int64_t C)
{
    ag_tensor *x;
    if (!c->strided) {
        x = h_tensor(r);
    } else {
        rt t = rt_new(4, (int64_t[]){c->B, R, c->H, C});
        for (int64_t b = 0; b < c->B; b++)
            for (int64_t h = 0; h < c->H; h++)
                for (int64_t i = 0; i < R; i++)
                    for (int64_t e = 0; e < C; e++)
                        t.data[((b * R + i) * c->H + h) * C + e] = r->data[((b * c->H + h) * R + i) * C + e];
        x = h_tensor(h_track(t));
    }
    ck_assert_msg(x && ag_set_requires_grad(x, true) == AG_OK, "leaf: %s", ag_last_error());
    return x;
}

/* the [B, H, R, C] view of a leaf (or of its gradient) */
static ag_tensor *heads_of(const att_case *c, ag_tensor *t)
{
    return c->strided && t ? ag_transpose(t, 1, 2) : t;
}

static rt random_rt(int64_t a, int64_t b, int64_t r, int64_t cols)
{
    rt x = rt_new(4, (int64_t[]){a, b, r, cols});
    for (int64_t i = 0; i < rt_numel(&x); i++) x.data[i] = (double)(float)h_normal();
    return *h_track(x);
}

static void expect(const char *what, const att_case *c, ag_tensor *got, rt *want)
{
    char name[96];
    snprintf(name, sizeof name, "%s [%lld,%lld,%lld,%lld] S %lld%s%s p %.1f", what, (long long)c->B,
             (long long)c->H, (long long)c->L, (long long)c->E, (long long)c->S,
             c->causal ? " causal" : "", c->strided ? " strided" : "", (double)c->dropout);
    ck_assert_msg(got != NULL, "%s: no result: %s", name, ag_last_error());
    h_expect(name, got, *want, h_tol_get("sum", c->S * (c->E > c->Ev ? c->E : c->Ev)));
}

START_TEST(t_attention_reference)
{
    const att_case *c = &CASES[_i];
    h_begin(7100 + (uint64_t)_i);
    const int64_t B = c->B, H = c->H, L = c->L, S = c->S, E = c->E, Ev = c->Ev;
    rt q = random_rt(B, H, L, E), k = random_rt(B, H, S, E), v = random_rt(B, H, S, Ev),
       w = random_rt(B, H, L, Ev);
    /* h_expect consumes these */
    rt o = rt_new(4, (int64_t[]){B, H, L, Ev}), dq = rt_new(4, (int64_t[]){B, H, L, E}),
       dk = rt_new(4, (int64_t[]){B, H, S, E}), dv = rt_new(4, (int64_t[]){B, H, S, Ev});
    double *z = NULL;
    rt zr = {0};
    const int64_t shape[4] = {B, H, L, S};
    if (c->dropout > 0.0f) { /* the uniforms the op draws, from the same seed */
        ag_manual_seed(99);
        ag_tensor *u = ag_rand(4, shape, 0.0f, 1.0f);
        ck_assert_msg(u != NULL, "ag_rand: %s", ag_last_error());
        zr = *h_track(h_read(u));
        const float keep = 1.0f / (1.0f - c->dropout);
        for (int64_t i = 0; i < rt_numel(&zr); i++) zr.data[i] = (float)zr.data[i] >= c->dropout ? keep : 0.0;
        z = zr.data;
    }
    const double scale = (float)(1.0 / sqrt((double)E));
    for (int64_t h = 0; h < B * H; h++)
        ref_head(c, scale, q.data + h * L * E, k.data + h * S * E, v.data + h * S * Ev,
                 w.data + h * L * Ev, z ? z + h * L * S : NULL, o.data + h * L * Ev,
                 dq.data + h * L * E, dk.data + h * S * E, dv.data + h * S * Ev);

    ag_tensor *leaf[3] = {heads_leaf(c, &q, L, E), heads_leaf(c, &k, S, E), heads_leaf(c, &v, S, Ev)};
    ag_tensor *tw = h_tensor(&w), *x[3];
    for (int i = 0; i < 3; i++) x[i] = heads_of(c, leaf[i]);
    ag_manual_seed(99);
    ag_tensor *y = ag_scaled_dot_product_attention(x[0], x[1], x[2], NULL, c->dropout, c->causal, 0.0f);
    expect("output", c, y, &o);
    ag_tensor *loss = ag_sum_all(ag_mul(y, tw));
    ck_assert_msg(loss && ag_backward(loss, NULL) == AG_OK, "backward: %s", ag_last_error());
    rt *want[3] = {&dq, &dk, &dv};
    const char *names[3] = {"dq", "dk", "dv"};
    for (int i = 0; i < 3; i++) {
        expect(names[i], c, heads_of(c, ag_grad(leaf[i])), want[i]);
    }
    h_end();
}
END_TEST

/* Row 2 of the mask is -inf everywhere: that row's output is NaN, every other
 * row is finite (a NaN must not leak through shared row blocks). */
START_TEST(t_attention_masked_row)
{
    h_begin(7200);
    const int64_t L = 6, S = 5, E = 4;
    rt m = rt_new(2, (int64_t[]){L, S});
    for (int64_t j = 0; j < S; j++) m.data[2 * S + j] = -INFINITY;
    rt qr = random_rt(1, 2, L, E), kr = random_rt(1, 2, S, E);
    ag_tensor *q = h_tensor(&qr), *k = h_tensor(&kr);
    ag_tensor *y = ag_scaled_dot_product_attention(q, k, k, h_tensor(h_track(m)), 0.0f, false, 0.0f);
    ck_assert_msg(y != NULL, "attention: %s", ag_last_error());
    rt r = *h_track(h_read(y));
    for (int64_t h = 0; h < 2; h++)
        for (int64_t i = 0; i < L; i++)
            for (int64_t e = 0; e < E; e++) {
                double val = r.data[(h * L + i) * E + e];
                ck_assert_msg(i == 2 ? isnan(val) : isfinite(val), "head %lld row %lld: %g",
                              (long long)h, (long long)i, val);
            }
    h_end();
}
END_TEST

/* The fused op against the composed one: a zero mask that needs a gradient
 * sends the op down the composed path (matmul, softmax, matmul); without it
 * the fused kernels run. Same values and q, k, v gradients, and the mask's
 * gradient is the scores' gradient (it sums to 0 over each row's keys). */
START_TEST(t_attention_composed)
{
    h_begin(7300);
    const int64_t L = 6, S = 7, E = 5;
    rt qr = random_rt(2, 3, L, E), kr = random_rt(2, 3, S, E), vr = random_rt(2, 3, S, E),
       wr = random_rt(2, 3, L, E);
    ag_tensor *g[2][3], *y[2], *mask = ag_zeros(2, (int64_t[]){L, S});
    ck_assert(mask && ag_set_requires_grad(mask, true) == AG_OK);
    for (int path = 0; path < 2; path++) {
        ag_tensor *q = h_tensor(&qr), *k = h_tensor(&kr), *v = h_tensor(&vr);
        ag_tensor *in[3] = {q, k, v};
        for (int i = 0; i < 3; i++) ck_assert(ag_set_requires_grad(in[i], true) == AG_OK);
        y[path] = ag_scaled_dot_product_attention(q, k, v, path ? mask : NULL, 0.0f, false, 0.0f);
        ag_tensor *loss = ag_sum_all(ag_mul(y[path], h_tensor(&wr)));
        ck_assert_msg(loss && ag_backward(loss, NULL) == AG_OK, "backward: %s", ag_last_error());
        for (int i = 0; i < 3; i++) g[path][i] = ag_grad(in[i]);
    }
    const h_tol tol = h_tol_get("sum", S * E);
    const char *names[4] = {"output", "dq", "dk", "dv"};
    for (int i = 0; i < 4; i++) {
        rt want = h_read(i ? g[1][i - 1] : y[1]);
        h_expect(names[i], i ? g[0][i - 1] : y[0], want, tol);
    }
    rt dm = *h_track(h_read(ag_grad(mask)));
    for (int64_t i = 0; i < L; i++) {
        double row = 0.0, mag = 0.0;
        for (int64_t j = 0; j < S; j++) row += dm.data[i * S + j], mag += fabs(dm.data[i * S + j]);
        ck_assert_msg(mag > 0.0 && fabs(row) <= 1e-5 * mag, "mask gradient row %lld sums to %g of %g",
                      (long long)i, row, mag);
    }
    h_end();
}
END_TEST

Suite *suite_attention(void)
{
    Suite *s = suite_create("attention");
    TCase *tc = h_tcase_create("attention");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, t_attention_reference, 0, NCASES);
    tcase_add_test(tc, t_attention_masked_row);
    tcase_add_test(tc, t_attention_composed);
    suite_add_tcase(s, tc);
    return s;
}
