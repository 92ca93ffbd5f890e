/* Reductions against the fp64 reference: sum/mean/max/min/var over single,
 * multiple, negative and all axes with and without keepdim, argmax/argmin (int32,
 * first index on ties), and gradients (max/min ties split equally, like amax). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "suites.h"

typedef struct red_arg {
    ag_reduce_op op;
    int naxes;
    int axes[AG_MAX_DIMS];
    bool keepdim;
    int correction;
    bool is_var;
} red_arg;

typedef struct red_case {
    int nd;
    int64_t s[AG_MAX_DIMS];
    int naxes; /* 0 = all */
    int axes[3];
} red_case;

static const red_case CASES[] = {
    {1, {7}, 0, {0}},          {1, {7}, 1, {0}},           {1, {7}, 1, {-1}},
    {2, {3, 5}, 1, {0}},       {2, {3, 5}, 1, {1}},        {2, {3, 5}, 1, {-2}},
    {2, {3, 5}, 2, {0, 1}},    {2, {3, 5}, 0, {0}},        {3, {2, 3, 4}, 1, {1}},
    {3, {2, 3, 4}, 2, {0, 2}}, {3, {2, 3, 4}, 2, {-1, 0}}, {3, {2, 3, 4}, 2, {1, -1}},
    {3, {2, 3, 4}, 3, {0, 1, 2}}, {3, {2, 3, 4}, 0, {0}},  {1, {1}, 1, {0}},
    {1, {1}, 0, {0}},          {3, {4, 1, 6}, 1, {1}},     {3, {4, 1, 6}, 2, {0, 1}},
    {0, {0}, 0, {0}},          {1, {1100}, 1, {0}},        {2, {3, 1500}, 1, {1}},
    {2, {1500, 3}, 1, {0}},    {2, {33, 7}, 1, {-1}},
};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

/* number of elements folded into each output */
static int64_t red_len(const red_case *c)
{
    int64_t n = 1;
    for (int i = 0; i < c->nd; i++) {
        bool r = c->naxes == 0;
        for (int k = 0; k < c->naxes; k++) r |= (c->axes[k] + c->nd) % c->nd == i;
        if (r) n *= c->s[i];
    }
    return n;
}

static red_arg make_arg(ag_reduce_op op, const red_case *c, bool keepdim)
{
    red_arg a = {op, c->naxes, {0}, keepdim, 0, false};
    for (int k = 0; k < c->naxes; k++) a.axes[k] = c->axes[k];
    return a;
}

static ag_tensor *op_reduce(ag_tensor *const *in, const void *arg)
{
    const red_arg *a = arg;
    const int *axes = a->naxes ? a->axes : NULL;
    if (a->is_var) return ag_var(in[0], a->naxes, axes, a->correction, a->keepdim);
    switch (a->op) {
    case AG_REDUCE_SUM: return ag_sum(in[0], a->naxes, axes, a->keepdim);
    case AG_REDUCE_MEAN: return ag_mean(in[0], a->naxes, axes, a->keepdim);
    case AG_REDUCE_MAX: return ag_max(in[0], a->naxes, axes, a->keepdim);
    case AG_REDUCE_MIN: return ag_min(in[0], a->naxes, axes, a->keepdim);
    case AG_REDUCE_ARGMAX: return ag_argmax(in[0], a->axes[0], a->keepdim);
    default: return ag_argmin(in[0], a->axes[0], a->keepdim);
    }
}

static rt rf_reduce(const rt *const *in, const void *arg)
{
    const red_arg *a = arg;
    if (a->is_var) return ref_var(in[0], a->naxes, a->axes, a->correction, a->keepdim);
    return ref_reduce(a->op, in[0], a->naxes, a->axes, a->keepdim);
}

static const char *OPNAME[] = {"sum", "mean", "max", "min", "argmax", "argmin"};

/* The tolerance of a reduction: sums grow with the length; a mean's error is its
 * sum's divided by the length; max/min select without rounding. */
static h_tol red_tol(ag_reduce_op op, int64_t len)
{
    if (op == AG_REDUCE_MAX || op == AG_REDUCE_MIN) return h_tol_get("exact", 1);
    h_tol t = h_tol_get("sum", len);
    if (op == AG_REDUCE_MEAN) t.atol /= (double)len;
    return t;
}

static void describe(char *buf, size_t size, const char *op, const red_case *c, bool keepdim,
                     h_layout l, const char *extra)
{
    char sh[64];
    rt_shape_str(c->nd, c->s, sh, sizeof sh);
    int k = snprintf(buf, size, "%s%s of %s over axes {", op, extra, sh);
    for (int i = 0; i < c->naxes && k < (int)size; i++)
        k += snprintf(buf + k, size - (size_t)k, "%s%d", i ? "," : "", c->axes[i]);
    if (k < (int)size)
        snprintf(buf + k, size - (size_t)k, "%s}, keepdim %d, %s", c->naxes ? "" : "all", keepdim,
                 h_layout_name(l));
}

START_TEST(t_reduce_forward)
{
    ag_reduce_op op = (ag_reduce_op)_i;
    h_begin(1000 + (uint64_t)_i);
    for (int k = 0; k < NCASES; k++)
        for (int l = 0; l < H_LAYOUT_COUNT; l++) {
            const red_case *c = &CASES[k];
            /* means on positive data: nothing cancels, so the relative tolerance is tight */
            h_dist d = op == AG_REDUCE_MEAN ? h_dist_uniform(0.5, 1.5) : h_dist_normal();
            h_in x = h_input(c->nd, c->s, d, (h_layout)l);
            for (int keep = 0; keep < 2; keep++) {
                red_arg a = make_arg(op, c, keep);
                char what[200];
                describe(what, sizeof what, OPNAME[op], c, keep, x.layout, "");
                ag_tensor *in[1] = {x.t};
                h_expect(what, op_reduce(in, &a), rf_reduce((const rt *const[]){&x.val}, &a),
                         red_tol(op, red_len(c)));
            }
        }
    h_end();
}
END_TEST

START_TEST(t_reduce_grad)
{
    ag_reduce_op op = (ag_reduce_op)_i;
    /* small cases get every gradient element checked; the long ones the projection */
    static const int PICK[] = {0, 1, 3, 4, 6, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 21};
    h_begin(1100 + (uint64_t)_i);
    for (size_t k = 0; k < sizeof PICK / sizeof PICK[0]; k++) {
        const red_case *c = &CASES[PICK[k]];
        h_in x = h_input(c->nd, c->s, h_dist_normal(), (h_layout)(k % H_LAYOUT_COUNT));
        red_arg a = make_arg(op, c, k % 2);
        char what[200];
        describe(what, sizeof what, OPNAME[op], c, k % 2, x.layout, " grad");
        h_gradcheck(&(h_gc){.what = what, .n = 1, .in = &x, .op = op_reduce, .ref = rf_reduce, .arg = &a,
                            .tol = red_tol(op, red_len(c))});
    }
    h_end();
}
END_TEST

START_TEST(t_sum_mean_all)
{
    h_begin(1200);
    static const red_case ALL[] = {{0, {0}, 0, {0}}, {1, {1}, 0, {0}}, {2, {3, 5}, 0, {0}}, {1, {5000}, 0, {0}}};
    for (size_t k = 0; k < sizeof ALL / sizeof ALL[0]; k++)
        for (int l = 0; l < H_LAYOUT_COUNT; l++) {
            const red_case *c = &ALL[k];
            int64_t n = red_len(c);
            h_in x = h_input(c->nd, c->s, h_dist_uniform(0.5, 1.5), (h_layout)l);
            ag_tensor *s = ag_sum_all(x.t), *m = ag_mean_all(x.t);
            ck_assert_msg(s && m, "sum_all/mean_all failed: %s", ag_last_error());
            ck_assert_int_eq(ag_ndim(s), 0);
            ck_assert_int_eq(ag_ndim(m), 0);
            h_expect("sum_all", s, ref_reduce(AG_REDUCE_SUM, &x.val, 0, NULL, false), red_tol(AG_REDUCE_SUM, n));
            h_expect("mean_all", m, ref_reduce(AG_REDUCE_MEAN, &x.val, 0, NULL, false), red_tol(AG_REDUCE_MEAN, n));
            /* scalar roots seed themselves with 1: d sum / dx = k and d mean / dx = k / n
             * for an element the view shows k times (expanded), 0 for a skipped one */
            ck_assert_int_eq(ag_set_requires_grad(x.leaf, true), AG_OK);
            int64_t shown = 0;
            for (int64_t i = 0; i < rt_numel(&x.base); i++) shown += !isnan(x.base.data[i]);
            double copies = (double)n / (double)shown;
            for (int which = 0; which < 2; which++) {
                ag_zero_grad(x.leaf);
                ag_tensor *v = h_view(&x);
                ag_tensor *y = which ? ag_mean_all(v) : ag_sum_all(v);
                ck_assert_int_eq(ag_backward(y, NULL), AG_OK);
                rt g = h_read(ag_grad(x.leaf));
                ck_assert_msg(rt_valid(&g), "no gradient");
                for (int64_t i = 0; i < rt_numel(&g); i++) {
                    double want = isnan(x.base.data[i]) ? 0.0 : which ? copies / (double)n : copies;
                    ck_assert_msg(fabs(g.data[i] - want) <= 1e-6 * want, "%s grad[%lld] (%s) = %.9g, want %.9g",
                                  which ? "mean_all" : "sum_all", (long long)i, h_layout_name(x.layout),
                                  g.data[i], want);
                }
                rt_free(&g);
            }
            ag_zero_grad(x.leaf);
            ag_set_requires_grad(x.leaf, false);
        }
    h_end();
}
END_TEST

START_TEST(t_var)
{
    h_begin(1300);
    for (int k = 0; k < NCASES; k++) {
        const red_case *c = &CASES[k];
        int64_t n = red_len(c);
        for (int corr = 0; corr <= 2; corr++) {
            if (n - corr <= 0) continue; /* no defined value */
            h_in x = h_input(c->nd, c->s, h_dist_normal(), (h_layout)((k + corr) % H_LAYOUT_COUNT));
            for (int keep = 0; keep < 2; keep++) {
                red_arg a = make_arg(AG_REDUCE_SUM, c, keep);
                a.is_var = true, a.correction = corr;
                char what[200], extra[32];
                snprintf(extra, sizeof extra, "(correction %d)", corr);
                describe(what, sizeof what, "var", c, keep, x.layout, extra);
                ag_tensor *in[1] = {x.t};
                h_expect(what, op_reduce(in, &a), rf_reduce((const rt *const[]){&x.val}, &a), h_tol_get("sum", n));
                if (keep == 0 && rt_numel(&x.base) <= 1200) {
                    describe(what, sizeof what, "var", c, keep, x.layout, " grad");
                    h_gradcheck(&(h_gc){.what = what, .n = 1, .in = &x, .op = op_reduce, .ref = rf_reduce,
                                        .arg = &a, .tol = h_tol_get("sum", n)});
                }
            }
        }
    }
    h_end();
}
END_TEST

/* Large mean, unit spread: E[x^2] - E[x]^2 in float would lose every digit. */
START_TEST(t_var_shifted)
{
    h_begin(1301);
    h_dist d = {.kind = H_DIST_NORMAL, .a = 1000.0, .b = 1.0};
    h_in x = h_input(H_S(4, 300), d, H_CONTIG);
    red_arg a = {AG_REDUCE_SUM, 1, {1}, false, 1, true};
    ag_tensor *in[1] = {x.t};
    h_expect("var of N(1000, 1) rows", op_reduce(in, &a), rf_reduce((const rt *const[]){&x.val}, &a),
             h_tol_get("sum", 300));
    h_end();
}
END_TEST

START_TEST(t_argmax_argmin)
{
    h_begin(1400);
    static const red_case A[] = {
        {1, {7}, 1, {0}},     {1, {7}, 1, {-1}},    {2, {3, 5}, 1, {0}},    {2, {3, 5}, 1, {1}},
        {2, {3, 5}, 1, {-2}}, {3, {2, 3, 4}, 1, {1}}, {3, {2, 3, 4}, 1, {-1}}, {1, {1}, 1, {0}},
        {1, {1100}, 1, {0}},  {2, {1500, 3}, 1, {0}}, {3, {4, 1, 6}, 1, {1}},
    };
    for (size_t k = 0; k < sizeof A / sizeof A[0]; k++)
        for (int l = 0; l < H_LAYOUT_COUNT; l++)
            for (int ties = 0; ties < 2; ties++) {
                const red_case *c = &A[k];
                int64_t n = 1;
                for (int i = 0; i < c->nd; i++) n *= c->s[i];
                double *v = malloc(sizeof(double) * (size_t)n);
                ck_assert(v != NULL);
                /* few distinct values so the first-index rule decides */
                for (int64_t i = 0; i < n; i++) v[i] = ties ? (double)h_randint(0, 3) : h_normal();
                h_in x = h_input_values(c->nd, c->s, v, (h_layout)l);
                free(v);
                for (int keep = 0; keep < 2; keep++)
                    for (int op = AG_REDUCE_ARGMAX; op <= AG_REDUCE_ARGMIN; op++) {
                        red_arg a = make_arg((ag_reduce_op)op, c, keep);
                        char what[200];
                        describe(what, sizeof what, OPNAME[op], c, keep, x.layout, ties ? " (ties)" : "");
                        ag_tensor *in[1] = {x.t}, *y = op_reduce(in, &a);
                        ck_assert_msg(y != NULL, "%s: %s", what, ag_last_error());
                        ck_assert_msg(ag_dtype_of(y) == AG_I32, "%s: dtype %s, want i32", what,
                                      ag_dtype_name(ag_dtype_of(y)));
                        h_expect(what, y, rf_reduce((const rt *const[]){&x.val}, &a), h_tol_get("exact", 1));
                    }
            }
    h_end();
}
END_TEST

/* max/min gradients with ties: split equally among the tied elements (amax rule) */
START_TEST(t_max_min_ties)
{
    h_begin(1500);
    double v[8] = {1, 3, 3, 2, 5, 5, 5, 0};
    h_in x = h_input_values(H_S(2, 4), v, H_CONTIG);
    ck_assert_int_eq(ag_set_requires_grad(x.leaf, true), AG_OK);
    static const double third = 1.0 / 3.0;
    struct { bool max; int naxes; int axis; double want[8]; } T[] = {
        {true, 1, 1, {0, 0.5, 0.5, 0, third, third, third, 0}},
        {true, 0, 0, {0, 0, 0, 0, third, third, third, 0}},
        {false, 1, 0, {1, 1, 1, 0, 0, 0, 0, 1}},
        {true, 1, 0, {0, 0, 0, 1, 1, 1, 1, 0}},
    };
    double vmin[8] = {2, 1, 4, 1, 2, 1, 4, 1};
    h_in y = h_input_values(H_S(2, 4), vmin, H_CONTIG);
    ck_assert_int_eq(ag_set_requires_grad(y.leaf, true), AG_OK);
    for (size_t k = 0; k < sizeof T / sizeof T[0]; k++) {
        ag_zero_grad(x.leaf);
        int ax = T[k].axis;
        ag_tensor *r = T[k].max ? ag_max(x.leaf, T[k].naxes, &ax, false) : ag_min(x.leaf, T[k].naxes, &ax, false);
        ck_assert_int_eq(ag_backward(ag_sum_all(r), NULL), AG_OK);
        rt g = h_read(ag_grad(x.leaf));
        ck_assert_msg(rt_valid(&g), "no gradient");
        for (int i = 0; i < 8; i++)
            ck_assert_msg(fabs(g.data[i] - T[k].want[i]) < 1e-7, "tie case %zu: grad[%d] = %.9g, want %.9g",
                          k, i, g.data[i], T[k].want[i]);
        rt_free(&g);
    }
    /* min over all with two ties per row plus a keepdim output */
    ag_tensor *r = ag_min(y.leaf, 0, NULL, true);
    ck_assert_msg(r && ag_ndim(r) == 2 && ag_numel(r) == 1, "min over all with keepdim should be [1, 1]");
    ck_assert_int_eq(ag_backward(ag_sum_all(r), NULL), AG_OK);
    rt g = h_read(ag_grad(y.leaf));
    for (int i = 0; i < 8; i++)
        ck_assert_msg(fabs(g.data[i] - (vmin[i] == 1 ? 0.25 : 0.0)) < 1e-7, "min ties: grad[%d] = %.9g", i,
                      g.data[i]);
    rt_free(&g);
    h_end();
}
END_TEST

/* keepdim keeps size-1 axes where the reduced ones were; negative axes count from the end */
START_TEST(t_reduce_shapes)
{
    h_begin(1600);
    h_in x = h_input(H_S(2, 3, 4, 5), h_dist_normal(), H_CONTIG);
    int axes[2] = {-3, 3};
    int64_t s[AG_MAX_DIMS];
    ag_tensor *a = ag_sum(x.t, 2, axes, true), *b = ag_sum(x.t, 2, axes, false);
    ck_assert_msg(a && b, "sum failed: %s", ag_last_error());
    ck_assert_int_eq(ag_shape(a, s), 4);
    ck_assert_msg(s[0] == 2 && s[1] == 1 && s[2] == 4 && s[3] == 1, "keepdim shape wrong");
    ck_assert_int_eq(ag_shape(b, s), 2);
    ck_assert_msg(s[0] == 2 && s[1] == 4, "shape without keepdim wrong");
    ag_tensor *m = ag_argmax(x.t, -2, true);
    ck_assert_int_eq(ag_shape(m, s), 4);
    ck_assert_msg(s[0] == 2 && s[1] == 3 && s[2] == 1 && s[3] == 5, "argmax keepdim shape wrong");
    h_end();
}
END_TEST

Suite *suite_reduce(void)
{
    Suite *s = suite_create("reduce");
    TCase *tc = h_tcase_create("reduce");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, t_reduce_forward, AG_REDUCE_SUM, AG_REDUCE_MIN + 1);
    tcase_add_loop_test(tc, t_reduce_grad, AG_REDUCE_SUM, AG_REDUCE_MIN + 1);
    tcase_add_test(tc, t_sum_mean_all);
    tcase_add_test(tc, t_var);
    tcase_add_test(tc, t_var_shifted);
    tcase_add_test(tc, t_argmax_argmin);
    tcase_add_test(tc, t_max_min_ties);
    tcase_add_test(tc, t_reduce_shapes);
    suite_add_tcase(s, tc);
    return s;
}
