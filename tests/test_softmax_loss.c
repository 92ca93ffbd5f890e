/* softmax/log_softmax on every axis (and at logits that overflow a naive exp),
 * mse, cross_entropy (label smoothing, every reduction, out-of-range labels give
 * NaN), nll and bce_with_logits against the fp64 reference, with gradients. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "suites.h"

static const char *RED[] = {"mean", "sum", "none"};

/* ---- softmax ------------------------------------------------------------- */

typedef struct sm_case {
    int nd;
    int64_t s[4];
    int axis;
} sm_case;

static const sm_case SM[] = {
    {1, {7}, 0},        {1, {7}, -1},       {2, {3, 5}, 0},     {2, {3, 5}, 1},     {2, {3, 5}, -2},
    {3, {2, 3, 4}, 0},  {3, {2, 3, 4}, 1},  {3, {2, 3, 4}, -1}, {2, {1, 1}, 1},     {2, {4, 1}, -1},
    {2, {4, 1100}, -1}, {2, {1100, 3}, 0},  {2, {5, 33}, 1},
};
#define NSM ((int)(sizeof SM / sizeof SM[0]))

typedef struct sm_arg {
    int axis;
    bool log;
} sm_arg;

static ag_tensor *op_softmax(ag_tensor *const *in, const void *arg)
{
    const sm_arg *a = arg;
    return a->log ? ag_log_softmax(in[0], a->axis) : ag_softmax(in[0], a->axis);
}

static rt rf_softmax(const rt *const *in, const void *arg)
{
    const sm_arg *a = arg;
    return ref_softmax(in[0], a->axis, a->log);
}

START_TEST(t_softmax)
{
    const sm_case *c = &SM[_i];
    int64_t len = c->s[(c->axis + c->nd) % c->nd];
    h_begin(3000 + (uint64_t)_i);
    for (int lg = 0; lg < 2; lg++)
        for (int l = 0; l < H_LAYOUT_COUNT; l++) {
            sm_arg a = {c->axis, lg};
            /* wide logits: probabilities from ~1e-7 to ~1 */
            h_in x = h_input(c->nd, c->s, h_dist_wide(), (h_layout)l);
            char what[160], sh[64];
            snprintf(what, sizeof what, "%s of %s over axis %d (%s)", lg ? "log_softmax" : "softmax",
                     rt_shape_str(c->nd, c->s, sh, sizeof sh), c->axis, h_layout_name(x.layout));
            ag_tensor *in[1] = {x.t};
            h_expect(what, op_softmax(in, &a), ref_softmax(&x.val, c->axis, lg), h_tol_get("softmax", len));
            /* an input expanded along the softmax axis makes the gradient exactly 0
             * (shifting a row changes nothing): no relative check is possible */
            int ex = 0;
            while (ex < c->nd && c->s[ex] == 1) ex++;
            bool invariant = l == H_EXPANDED && ex == (c->axis + c->nd) % c->nd;
            if ((l == (int)(_i % H_LAYOUT_COUNT) || l == H_CONTIG) && !invariant) {
                /* normal logits for the gradient: wide ones make it vanish */
                h_in g = h_input(c->nd, c->s, h_dist_normal(), (h_layout)l);
                h_gradcheck(&(h_gc){.what = what, .n = 1, .in = &g, .op = op_softmax, .ref = rf_softmax,
                                    .arg = &a, .tol = h_tol_get("softmax", len)});
            }
        }
    h_end();
}
END_TEST

/* Logits beyond exp's float range: only the max-shifted form gets these right. */
START_TEST(t_softmax_stability)
{
    h_begin(3100);
    static const double X[] = {
        1000, 1001, 1002, 1003,     /* every exp(x) overflows */
        -1e4, 0, 1e4, 5,            /* one dominates */
        88, 89, 90, 91,             /* around exp's overflow threshold */
        -1e4, -1e4, -1e4, -1e4,     /* every exp(x) underflows: uniform */
        -INFINITY, 0, 1, -INFINITY, /* masked entries */
        3e38, 3e38, -3e38, 0,       /* near FLT_MAX */
    };
    h_in x = h_input_values(H_S(6, 4), X, H_CONTIG);
    for (int lg = 0; lg < 2; lg++) {
        ag_tensor *y = lg ? ag_log_softmax(x.t, 1) : ag_softmax(x.t, 1);
        h_expect(lg ? "log_softmax at extreme logits" : "softmax at extreme logits", y,
                 ref_softmax(&x.val, 1, lg), h_tol_get("softmax", 4));
    }
    /* the same along axis 0 through a transposed view */
    h_in xt = h_input_values(H_S(6, 4), X, H_TRANSPOSED);
    h_expect("softmax at extreme logits, transposed", ag_softmax(xt.t, 1), ref_softmax(&xt.val, 1, false),
             h_tol_get("softmax", 4));
    h_end();
}
END_TEST

/* ---- mse ------------------------------------------------------------------ */

typedef struct loss_arg {
    ag_reduction red;
    float smoothing;
} loss_arg;

static ag_tensor *op_mse(ag_tensor *const *in, const void *arg)
{
    return ag_mse_loss(in[0], in[1], ((const loss_arg *)arg)->red);
}

static rt rf_mse(const rt *const *in, const void *arg) { return ref_mse(in[0], in[1], ((const loss_arg *)arg)->red); }

static h_tol loss_tol(ag_reduction red, int64_t len)
{
    h_tol t = h_tol_get("sum", red == AG_REDUCTION_NONE ? 1 : len);
    if (red == AG_REDUCTION_MEAN) t.atol /= (double)len; /* the mean of O(1) terms */
    return t;
}

START_TEST(t_mse)
{
    static const struct { int nd; int64_t s[3]; } S[] = {{1, {1}}, {1, {7}}, {2, {3, 4}}, {3, {2, 3, 5}}, {1, {1100}}};
    h_begin(3200 + (uint64_t)_i);
    ag_reduction red = (ag_reduction)_i;
    for (size_t k = 0; k < sizeof S / sizeof S[0]; k++)
        for (int l = 0; l < H_LAYOUT_COUNT; l++) {
            h_in in[2] = {h_input(S[k].nd, S[k].s, h_dist_normal(), (h_layout)l),
                          h_input(S[k].nd, S[k].s, h_dist_normal(), (h_layout)((l + 1) % H_LAYOUT_COUNT))};
            loss_arg a = {red, 0};
            int64_t n = rt_numel(&in[0].val);
            char what[160], sh[64];
            snprintf(what, sizeof what, "mse %s of %s (%s, %s)", RED[red], rt_shape_str(S[k].nd, S[k].s, sh, sizeof sh),
                     h_layout_name(in[0].layout), h_layout_name(in[1].layout));
            h_expect(what, ag_mse_loss(in[0].t, in[1].t, red), ref_mse(&in[0].val, &in[1].val, red), loss_tol(red, n));
            if (l == (int)(k % H_LAYOUT_COUNT))
                h_gradcheck(&(h_gc){.what = what, .n = 2, .in = in, .op = op_mse, .ref = rf_mse, .arg = &a,
                                    .tol = loss_tol(red, n)});
        }
    h_end();
}
END_TEST

/* ---- cross entropy and nll ---------------------------------------------- */

static ag_tensor *op_ce(ag_tensor *const *in, const void *arg)
{
    const loss_arg *a = arg;
    return ag_cross_entropy(in[0], in[1], a->red, a->smoothing);
}

static rt rf_ce(const rt *const *in, const void *arg)
{
    const loss_arg *a = arg;
    return ref_cross_entropy(in[0], in[1], a->red, a->smoothing);
}

static ag_tensor *op_nll(ag_tensor *const *in, const void *arg)
{
    return ag_nll_loss(in[0], in[1], ((const loss_arg *)arg)->red);
}

static rt rf_nll(const rt *const *in, const void *arg) { return ref_nll(in[0], in[1], ((const loss_arg *)arg)->red); }

static const int64_t NC[][2] = {{1, 1}, {1, 4}, {4, 5}, {7, 3}, {33, 10}, {2, 1000}};
#define NNC ((int)(sizeof NC / sizeof NC[0]))

START_TEST(t_cross_entropy)
{
    static const float SMOOTH[] = {0.0f, 0.1f, 0.3f};
    ag_reduction red = (ag_reduction)_i;
    h_begin(3300 + (uint64_t)_i);
    for (int k = 0; k < NNC; k++)
        for (size_t m = 0; m < sizeof SMOOTH / sizeof SMOOTH[0]; m++) {
            int64_t N = NC[k][0], C = NC[k][1];
            h_layout l = (h_layout)((k + (int)m) % H_LAYOUT_COUNT);
            if (N == 1 && l == H_EXPANDED) l = H_TRANSPOSED; /* one row of equal logits: zero gradient */
            h_in in[2] = {h_input(H_S(N, C), h_dist_normal(), l), h_input_randint(1, &N, 0, (int32_t)C)};
            loss_arg a = {red, SMOOTH[m]};
            char what[160];
            snprintf(what, sizeof what, "cross_entropy %s, smoothing %g, [%lld, %lld] (%s)", RED[red], SMOOTH[m],
                     (long long)N, (long long)C, h_layout_name(in[0].layout));
            h_tol t = h_tol_get("softmax", N * C);
            h_expect(what, op_ce((ag_tensor *const[]){in[0].t, in[1].t}, &a), rf_ce((const rt *const[]){&in[0].val, &in[1].val}, &a), t);
            h_gradcheck(&(h_gc){.what = what, .n = 2, .in = in, .op = op_ce, .ref = rf_ce, .arg = &a, .tol = t});
        }
    h_end();
}
END_TEST

/* A label outside [0, C) gives NaN for its row, and so for the mean and the sum. */
START_TEST(t_cross_entropy_bad_label)
{
    h_begin(3400);
    int32_t labels[5] = {0, 5, -1, 2, 4};
    int64_t n = 5;
    h_in x = h_input(H_S(5, 5), h_dist_normal(), H_CONTIG);
    h_in y = h_input_int(1, &n, labels);
    for (int r = 0; r < 3; r++) {
        char what[96];
        snprintf(what, sizeof what, "cross_entropy %s with labels 5 and -1 of 5 classes", RED[r]);
        ag_tensor *loss = ag_cross_entropy(x.t, y.t, (ag_reduction)r, 0.0f);
        rt want = ref_cross_entropy(&x.val, &y.val, (ag_reduction)r, 0.0);
        if (r == AG_REDUCTION_NONE)
            ck_assert_msg(isnan(want.data[1]) && isnan(want.data[2]) && !isnan(want.data[0]), "reference broken");
        else
            ck_assert_msg(isnan(want.data[0]), "reference broken");
        h_expect(what, loss, want, h_tol_get("softmax", 25));
    }
    h_end();
}
END_TEST

START_TEST(t_nll)
{
    ag_reduction red = (ag_reduction)_i;
    h_begin(3500 + (uint64_t)_i);
    for (int k = 0; k < NNC; k++) {
        int64_t N = NC[k][0], C = NC[k][1];
        h_in in[2] = {h_input(H_S(N, C), h_dist_uniform(-6.0, 0.0), (h_layout)(k % H_LAYOUT_COUNT)),
                      h_input_randint(1, &N, 0, (int32_t)C)};
        loss_arg a = {red, 0};
        char what[160];
        snprintf(what, sizeof what, "nll %s [%lld, %lld] (%s)", RED[red], (long long)N, (long long)C,
                 h_layout_name(in[0].layout));
        h_tol t = loss_tol(red, N);
        h_expect(what, op_nll((ag_tensor *const[]){in[0].t, in[1].t}, &a), rf_nll((const rt *const[]){&in[0].val, &in[1].val}, &a), t);
        h_gradcheck(&(h_gc){.what = what, .n = 2, .in = in, .op = op_nll, .ref = rf_nll, .arg = &a, .tol = t});
    }
    /* nll of log_softmax is cross_entropy without smoothing */
    h_in x = h_input(H_S(6, 4), h_dist_normal(), H_CONTIG);
    int64_t N = 6;
    h_in y = h_input_randint(1, &N, 0, 4);
    h_expect("nll(log_softmax) == cross_entropy", ag_nll_loss(ag_log_softmax(x.t, 1), y.t, red),
             ref_cross_entropy(&x.val, &y.val, red, 0.0), h_tol_get("softmax", 24));
    h_end();
}
END_TEST

/* ---- binary cross entropy with logits ----------------------------------- */

static ag_tensor *op_bce(ag_tensor *const *in, const void *arg)
{
    return ag_bce_with_logits(in[0], in[1], ((const loss_arg *)arg)->red);
}

static rt rf_bce(const rt *const *in, const void *arg)
{
    return ref_bce_with_logits(in[0], in[1], ((const loss_arg *)arg)->red);
}

START_TEST(t_bce)
{
    static const struct { int nd; int64_t s[3]; } S[] = {{1, {1}}, {1, {7}}, {2, {3, 4}}, {3, {2, 3, 5}}, {1, {1100}}};
    ag_reduction red = (ag_reduction)_i;
    h_begin(3600 + (uint64_t)_i);
    for (size_t k = 0; k < sizeof S / sizeof S[0]; k++)
        for (int hard = 0; hard < 2; hard++) {
            h_layout l = (h_layout)((k + (size_t)hard) % H_LAYOUT_COUNT);
            h_in x = h_input(S[k].nd, S[k].s, h_dist_uniform(-6.0, 6.0), l);
            int64_t n = rt_numel(&x.val);
            double *tv = malloc(sizeof(double) * (size_t)n);
            ck_assert(tv != NULL);
            for (int64_t i = 0; i < n; i++) tv[i] = hard ? (double)h_randint(0, 2) : h_uniform(0.0, 1.0);
            h_in t = h_input_values(S[k].nd, S[k].s, tv, (h_layout)((l + 1) % H_LAYOUT_COUNT));
            free(tv);
            h_in in[2] = {x, t};
            loss_arg a = {red, 0};
            char what[160], sh[64];
            snprintf(what, sizeof what, "bce_with_logits %s of %s, %s targets", RED[red],
                     rt_shape_str(S[k].nd, S[k].s, sh, sizeof sh), hard ? "0/1" : "soft");
            h_tol tol = loss_tol(red, n);
            tol.rtol = fmax(tol.rtol, h_tol_get("transc", 1).rtol);
            tol.atol = fmax(tol.atol, h_tol_get("transc", 1).atol);
            h_expect(what, op_bce((ag_tensor *const[]){x.t, t.t}, &a), rf_bce((const rt *const[]){&x.val, &t.val}, &a), tol);
            /* the logits' gradient here; the targets' in t_bce_target_grad */
            static const bool skip_t[2] = {false, true};
            h_gradcheck(&(h_gc){.what = what, .n = 2, .in = in, .skip = skip_t, .op = op_bce, .ref = rf_bce,
                                .arg = &a, .tol = tol});
        }
    h_end();
}
END_TEST

/* logits exactly 0 (loss log 2) and |x| large enough that log(sigmoid(x)) overflows */
START_TEST(t_bce_edges)
{
    h_begin(3700);
    static const double X[] = {0, 0, 100, -100, 100, -100, 1e4, -1e4, 1e4, -1e4, 30, -30};
    static const double T[] = {0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0.5, 0.25};
    int64_t n = sizeof X / sizeof X[0];
    h_in x = h_input_values(1, &n, X, H_CONTIG), t = h_input_values(1, &n, T, H_CONTIG);
    h_tol tol = h_tol_get("transc", 1);
    h_expect("bce_with_logits at 0 and large |x|", ag_bce_with_logits(x.t, t.t, AG_REDUCTION_NONE),
             ref_bce_with_logits(&x.val, &t.val, AG_REDUCTION_NONE), tol);
    /* the gradient sigmoid(x) - t stays finite there too */
    ck_assert_int_eq(ag_set_requires_grad(x.leaf, true), AG_OK);
    ck_assert_int_eq(ag_backward(ag_bce_with_logits(x.leaf, t.t, AG_REDUCTION_SUM), NULL), AG_OK);
    rt g = h_read(ag_grad(x.leaf));
    ck_assert_msg(rt_valid(&g), "no gradient");
    for (int64_t i = 0; i < n; i++) {
        double s = X[i] >= 0 ? 1.0 / (1.0 + exp(-X[i])) : exp(X[i]) / (1.0 + exp(X[i]));
        double want = s - T[i];
        ck_assert_msg(fabs(g.data[i] - want) <= 1e-6 + 1e-6 * fabs(want),
                      "d bce / dx at x=%g, t=%g: got %.9g, want %.9g", X[i], T[i], g.data[i], want);
    }
    rt_free(&g);
    h_end();
}
END_TEST

/* PyTorch also differentiates bce_with_logits with respect to the targets (-x) */
START_TEST(t_bce_target_grad)
{
    h_begin(3800);
    h_in in[2] = {h_input(H_S(3, 4), h_dist_uniform(-4.0, 4.0), H_CONTIG),
                  h_input(H_S(3, 4), h_dist_uniform(0.0, 1.0), H_TRANSPOSED)};
    for (int r = 0; r < 3; r++) {
        loss_arg a = {(ag_reduction)r, 0};
        char what[96];
        snprintf(what, sizeof what, "bce_with_logits %s, gradient of logits and targets", RED[r]);
        h_gradcheck(&(h_gc){.what = what, .n = 2, .in = in, .op = op_bce, .ref = rf_bce, .arg = &a,
                            .tol = h_tol_get("transc", 1)});
    }
    h_end();
}
END_TEST

Suite *suite_softmax_loss(void)
{
    Suite *s = suite_create("softmax_loss");
    TCase *tc = h_tcase_create("softmax_loss");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, t_softmax, 0, NSM);
    tcase_add_test(tc, t_softmax_stability);
    tcase_add_loop_test(tc, t_mse, 0, 3);
    tcase_add_loop_test(tc, t_cross_entropy, 0, 3);
    tcase_add_test(tc, t_cross_entropy_bad_label);
    tcase_add_loop_test(tc, t_nll, 0, 3);
    tcase_add_loop_test(tc, t_bce, 0, 3);
    tcase_add_test(tc, t_bce_edges);
    tcase_add_test(tc, t_bce_target_grad);
    suite_add_tcase(s, tc);
    return s;
}
