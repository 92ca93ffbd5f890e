/* Element-wise ops against the fp64 reference: every unary and binary op through
 * its named function and through ag_unary/ag_binary, where, the scalar variants,
 * broadcasting, non-contiguous inputs, edge values and gradients. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "ops/binary_table.h"
#include "ops/unary_table.h"
#include "suites.h"

/* ---- shapes and layouts ------------------------------------------------- */

typedef struct shape_case {
    int nd;
    int64_t s[AG_MAX_DIMS];
} shape_case;

/* size 1, odd sizes, a 0-dim scalar, 3-D, and a 1000+ length */
static const shape_case SHAPES[] = {
    {1, {1}}, {1, {7}}, {2, {3, 5}}, {0, {0}}, {3, {2, 3, 4}}, {1, {1100}}, {2, {33, 3}},
};
#define NSHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))

/* ---- unary table -------------------------------------------------------- */

#define W0(fn) \
    static ag_tensor *w_##fn(ag_tensor *x, float p0, float p1) { (void)p0, (void)p1; return ag_##fn(x); }
#define W1(fn) \
    static ag_tensor *w_##fn(ag_tensor *x, float p0, float p1) { (void)p1; return ag_##fn(x, p0); }
W0(neg) W0(exp) W0(log) W0(sqrt) W0(rsqrt) W0(abs) W0(square) W0(relu) W1(leaky_relu) W1(elu)
W0(sigmoid) W0(tanh) W0(gelu_tanh) W0(gelu) W0(silu) W0(softplus) W1(pow) W1(add_scalar)
W1(mul_scalar)
static ag_tensor *w_clamp(ag_tensor *x, float lo, float hi) { return ag_clamp(x, lo, hi); }
/* the op table's rows through their generated wrappers (named t_<name>) */
#define T0(fn) \
    static ag_tensor *t_##fn(ag_tensor *x, float p0, float p1) { (void)p0, (void)p1; return ag_##fn(x); }
#define T1(fn) \
    static ag_tensor *t_##fn(ag_tensor *x, float p0, float p1) { (void)p1; return ag_##fn(x, p0); }
#define T2(fn) \
    static ag_tensor *t_##fn(ag_tensor *x, float p0, float p1) { return ag_##fn(x, p0, p1); }
#define T_ROW(E, name, np, ...) T##np(name)
AG_UNARY_TABLE(T_ROW)
#undef T_ROW
#define INF_OK_EW true
#define INF_OK_NOINF false

typedef enum dist_id { D_NORMAL, D_WIDE, D_POSITIVE, D_AWAY0, D_CLAMP } dist_id;

typedef struct unary_case {
    ag_unary_op op;
    const char *name;
    ag_tensor *(*named)(ag_tensor *, float, float);
    float p0, p1;
    dist_id dist;
    const char *tol;
    bool inf_ok; /* the op has one agreed value at +-inf (gelu/silu do not: inf * 0) */
} unary_case;

static const unary_case UNARY[] = {
    {AG_UNARY_NEG, "neg", w_neg, 0, 0, D_NORMAL, "exact", true},
    {AG_UNARY_EXP, "exp", w_exp, 0, 0, D_WIDE, "ulp", true},
    {AG_UNARY_LOG, "log", w_log, 0, 0, D_POSITIVE, "ulp", true},
    {AG_UNARY_SQRT, "sqrt", w_sqrt, 0, 0, D_POSITIVE, "ulp", true},
    {AG_UNARY_RSQRT, "rsqrt", w_rsqrt, 0, 0, D_POSITIVE, "ulp", true},
    {AG_UNARY_ABS, "abs", w_abs, 0, 0, D_AWAY0, "exact", true},
    {AG_UNARY_SQUARE, "square", w_square, 0, 0, D_NORMAL, "arith", true},
    {AG_UNARY_RELU, "relu", w_relu, 0, 0, D_AWAY0, "exact", true},
    {AG_UNARY_LEAKY_RELU, "leaky_relu(0.01)", w_leaky_relu, 0.01f, 0, D_AWAY0, "arith", true},
    {AG_UNARY_LEAKY_RELU, "leaky_relu(0.2)", w_leaky_relu, 0.2f, 0, D_AWAY0, "arith", true},
    {AG_UNARY_ELU, "elu(1)", w_elu, 1.0f, 0, D_AWAY0, "transc", true},
    {AG_UNARY_ELU, "elu(0.5)", w_elu, 0.5f, 0, D_AWAY0, "transc", true},
    {AG_UNARY_SIGMOID, "sigmoid", w_sigmoid, 0, 0, D_WIDE, "ulp", true},
    {AG_UNARY_TANH, "tanh", w_tanh, 0, 0, D_WIDE, "ulp", true},
    {AG_UNARY_GELU_TANH, "gelu_tanh", w_gelu_tanh, 0, 0, D_WIDE, "transc", false},
    {AG_UNARY_GELU_ERF, "gelu", w_gelu, 0, 0, D_WIDE, "transc", false},
    {AG_UNARY_SILU, "silu", w_silu, 0, 0, D_WIDE, "ulp", false},
    {AG_UNARY_SOFTPLUS, "softplus", w_softplus, 0, 0, D_WIDE, "ulp", true},
    {AG_UNARY_CLAMP, "clamp(-0.5, 1.25)", w_clamp, -0.5f, 1.25f, D_CLAMP, "exact", true},
    {AG_UNARY_POW, "pow(2)", w_pow, 2.0f, 0, D_NORMAL, "ulp", true},
    {AG_UNARY_POW, "pow(3)", w_pow, 3.0f, 0, D_NORMAL, "ulp", true},
    {AG_UNARY_POW, "pow(0.5)", w_pow, 0.5f, 0, D_POSITIVE, "ulp", true},
    {AG_UNARY_POW, "pow(-1.5)", w_pow, -1.5f, 0, D_POSITIVE, "ulp", true},
    {AG_UNARY_POW, "pow(2.5)", w_pow, 2.5f, 0, D_POSITIVE, "ulp", true},
    {AG_UNARY_ADD_SCALAR, "add_scalar(1.75)", w_add_scalar, 1.75f, 0, D_NORMAL, "arith", true},
    {AG_UNARY_MUL_SCALAR, "mul_scalar(-2.5)", w_mul_scalar, -2.5f, 0, D_NORMAL, "arith", true},
    /* and every row of the op table with its conformance parameters */
#define U_CASE(E, name, np, pn, doc, mod, uy, on, wrap, tn, p0, p1, dist, edges, tol, ref) \
    {AG_UNARY_##E, "table " tn, t_##name, p0, p1, D_##dist, tol, INF_OK_##edges},
    AG_UNARY_TABLE(U_CASE)
#undef U_CASE
};
#define NUNARY ((int)(sizeof UNARY / sizeof UNARY[0]))

static h_dist dist_of(dist_id d)
{
    switch (d) {
    case D_WIDE: return h_dist_wide();
    case D_POSITIVE: return h_dist_positive();
    case D_AWAY0: return h_dist_away(h_dist_normal(), 0.0, 0.05);
    case D_CLAMP: return h_dist_away(h_dist_away(h_dist_normal(), -0.5, 0.05), 1.25, 0.05);
    default: return h_dist_normal();
    }
}

static ag_tensor *op_unary_named(ag_tensor *const *in, const void *arg)
{
    const unary_case *c = arg;
    return c->named(in[0], c->p0, c->p1);
}

static rt rf_unary(const rt *const *in, const void *arg)
{
    const unary_case *c = arg;
    return ref_unary(c->op, in[0], c->p0, c->p1);
}

/* every op, every shape, every layout: forward by both routes */
START_TEST(t_unary_forward)
{
    const unary_case *c = &UNARY[_i];
    h_begin(100 + (uint64_t)_i);
    for (int s = 0; s < NSHAPES; s++)
        for (int l = 0; l < H_LAYOUT_COUNT; l++) {
            h_in x = h_input(SHAPES[s].nd, SHAPES[s].s, dist_of(c->dist), (h_layout)l);
            char what[160];
            snprintf(what, sizeof what, "%s on %s input", c->name, h_layout_name(x.layout));
            ag_tensor *y = c->named(x.t, c->p0, c->p1);
            h_expect(what, y, ref_unary(c->op, &x.val, c->p0, c->p1), h_tol_get(c->tol, 1));
            h_expect_same(what, y, ag_unary(c->op, x.t, c->p0, c->p1));
        }
    h_end();
}
END_TEST

START_TEST(t_unary_grad)
{
    const unary_case *c = &UNARY[_i];
    static const struct { shape_case s; h_layout l; } G[] = {
        {{1, {1}}, H_CONTIG},       {{1, {7}}, H_CONTIG},    {{2, {3, 5}}, H_TRANSPOSED},
        {{3, {2, 3, 4}}, H_SLICED}, {{2, {3, 5}}, H_EXPANDED}, {{0, {0}}, H_CONTIG},
        {{1, {1100}}, H_CONTIG},
    };
    h_begin(200 + (uint64_t)_i);
    for (size_t k = 0; k < sizeof G / sizeof G[0]; k++) {
        h_in x = h_input(G[k].s.nd, G[k].s.s, dist_of(c->dist), G[k].l);
        char what[160];
        snprintf(what, sizeof what, "grad %s [%zu]", c->name, k);
        h_gradcheck(&(h_gc){.what = what, .n = 1, .in = &x, .op = op_unary_named, .ref = rf_unary,
                            .arg = c, .tol = h_tol_get(c->tol, 1)});
    }
    h_end();
}
END_TEST

/* inf/NaN propagation, signed zeros, and saturation at large magnitudes */
START_TEST(t_unary_edge)
{
    const unary_case *c = &UNARY[_i];
    static const double E[] = {-30, -5, -1, -0.5, 0.5, 1, 5, 30, 100, -100, 1e4, -1e4, 0.0, -0.0,
                               NAN, INFINITY, -INFINITY};
    double v[sizeof E / sizeof E[0]];
    int64_t n = 0;
    for (size_t i = 0; i < sizeof E / sizeof E[0]; i++) {
        if (isinf(E[i]) && !c->inf_ok) continue;
        /* pow(-inf, non-integer): C says +inf, PyTorch says NaN; no agreed value */
        if (c->op == AG_UNARY_POW && E[i] == -INFINITY && c->p0 != floorf(c->p0)) continue;
        v[n++] = E[i];
    }
    h_begin(300 + (uint64_t)_i);
    h_in x = h_input_values(1, &n, v, H_CONTIG);
    char what[160];
    snprintf(what, sizeof what, "%s at edge values", c->name);
    /* transc tolerance at least: exp/pow of 30 and 100 leave the float range
     * differently than O(1) inputs, and the class of exact ops stays exact anyway */
    h_tol t = h_tol_get(c->tol, 1);
    h_expect(what, c->named(x.t, c->p0, c->p1), ref_unary(c->op, &x.val, c->p0, c->p1), t);
    h_end();
}
END_TEST

START_TEST(t_signed_zero)
{
    h_begin(7);
    double z[2] = {0.0, -0.0};
    h_in x = h_input_values(1, (int64_t[]){2}, z, H_CONTIG);
    rt n = h_read(ag_neg(x.t)), a = h_read(ag_abs(x.t));
    ck_assert_msg(rt_valid(&n) && rt_valid(&a), "neg/abs failed: %s", ag_last_error());
    ck_assert_msg(signbit(n.data[0]) && !signbit(n.data[1]), "neg(+-0) should be (-0, +0), got (%g, %g)",
                  n.data[0], n.data[1]);
    ck_assert_msg(!signbit(a.data[0]) && !signbit(a.data[1]), "abs(+-0) should be (+0, +0)");
    rt_free(&n);
    rt_free(&a);
    /* 1/sqrt(-0) = -inf and log(-0) = -inf, as in IEEE 754 and PyTorch */
    h_expect("rsqrt(+-0)", ag_rsqrt(x.t), ref_unary(AG_UNARY_RSQRT, &x.val, 0, 0), h_tol_get("exact", 1));
    h_expect("log(+-0)", ag_log(x.t), ref_unary(AG_UNARY_LOG, &x.val, 0, 0), h_tol_get("exact", 1));
    h_end();
}
END_TEST

/* sub_scalar / div_scalar have no enum of their own */
static ag_tensor *op_sub_div_scalar(ag_tensor *const *in, const void *arg)
{
    (void)arg;
    return ag_div_scalar(ag_sub_scalar(in[0], 1.5f), 3.0f);
}

static rt rf_sub_div_scalar(const rt *const *in, const void *arg)
{
    (void)arg;
    rt a = ref_unary(AG_UNARY_ADD_SCALAR, in[0], -1.5, 0);
    rt three = rt_scalar(3.0);
    rt y = ref_binary(AG_BINARY_DIV, &a, &three);
    rt_free(&a);
    rt_free(&three);
    return y;
}

START_TEST(t_scalar_ops)
{
    h_begin(8);
    for (int l = 0; l < H_LAYOUT_COUNT; l++) {
        h_in x = h_input(H_S(4, 9), h_dist_normal(), (h_layout)l);
        rt s = rt_scalar(1.5), three = rt_scalar(3.0), m = rt_scalar(-0.25);
        h_expect("sub_scalar", ag_sub_scalar(x.t, 1.5f), ref_binary(AG_BINARY_SUB, &x.val, &s), h_tol_get("arith", 1));
        h_expect("div_scalar", ag_div_scalar(x.t, 3.0f), ref_binary(AG_BINARY_DIV, &x.val, &three), h_tol_get("arith", 1));
        h_expect("add_scalar", ag_add_scalar(x.t, -0.25f), ref_binary(AG_BINARY_ADD, &x.val, &m), h_tol_get("arith", 1));
        h_expect("mul_scalar", ag_mul_scalar(x.t, -0.25f), ref_binary(AG_BINARY_MUL, &x.val, &m), h_tol_get("arith", 1));
        rt_free(&s), rt_free(&three), rt_free(&m);
        h_gradcheck(&(h_gc){.what = "grad div_scalar(sub_scalar(x))", .n = 1, .in = &x,
                            .op = op_sub_div_scalar, .ref = rf_sub_div_scalar, .tol = h_tol_get("arith", 1)});
    }
    h_end();
}
END_TEST

/* ---- binary -------------------------------------------------------------- */

typedef struct binary_case {
    ag_binary_op op;
    const char *name;
    ag_tensor *(*named)(ag_tensor *, ag_tensor *);
    const char *tol;
    bool grad;
    bool int_data; /* comparisons: small integers so that ties occur */
} binary_case;

/* one case per row of src/ops/binary_table.h */
#define B_CASE(E, f, doc, grad, on, d, tol, ref) {AG_BINARY_##E, #f, ag_##f, tol, (grad) != 0, !(grad)},
static const binary_case BINARY[] = {AG_BINARY_TABLE(B_CASE)};
#undef B_CASE
#define NBINARY ((int)(sizeof BINARY / sizeof BINARY[0]))

typedef struct pair_case {
    shape_case a, b;
} pair_case;

static const pair_case PAIRS[] = {
    {{1, {7}}, {1, {7}}},
    {{3, {3, 1, 5}}, {2, {4, 1}}},        /* both sides broadcast */
    {{1, {1}}, {2, {2, 3}}},
    {{0, {0}}, {2, {3, 4}}},              /* 0-dim with a matrix */
    {{4, {2, 1, 3, 1}}, {3, {5, 1, 4}}},  /* rank difference, size-1 on both */
    {{1, {33}}, {2, {2, 33}}},
    {{2, {3, 5}}, {2, {3, 5}}},
    {{1, {1100}}, {1, {1100}}},
};
#define NPAIRS ((int)(sizeof PAIRS / sizeof PAIRS[0]))

static h_in binary_input(const binary_case *c, const shape_case *s, h_layout l, bool denom)
{
    if (c->int_data) {
        int64_t n = 1;
        for (int i = 0; i < s->nd; i++) n *= s->s[i];
        double *v = malloc(sizeof(double) * (size_t)n);
        ck_assert(v != NULL);
        for (int64_t i = 0; i < n; i++) v[i] = (double)h_randint(-1, 3);
        h_in in = h_input_values(s->nd, s->s, v, l);
        free(v);
        return in;
    }
    /* denominators stay away from 0 so the quotient and its derivative stay O(1) */
    return h_input(s->nd, s->s, denom ? h_dist_away(h_dist_normal(), 0.0, 0.5) : h_dist_normal(), l);
}

static ag_tensor *op_binary_named(ag_tensor *const *in, const void *arg)
{
    return ((const binary_case *)arg)->named(in[0], in[1]);
}

static rt rf_binary(const rt *const *in, const void *arg)
{
    return ref_binary(((const binary_case *)arg)->op, in[0], in[1]);
}

START_TEST(t_binary_forward)
{
    const binary_case *c = &BINARY[_i];
    h_begin(400 + (uint64_t)_i);
    for (int p = 0; p < NPAIRS; p++)
        for (int l = 0; l < H_LAYOUT_COUNT; l++) {
            /* swap the operand roles too, so broadcasting is tested on each side */
            for (int swap = 0; swap < 2; swap++) {
                const shape_case *sa = swap ? &PAIRS[p].b : &PAIRS[p].a;
                const shape_case *sb = swap ? &PAIRS[p].a : &PAIRS[p].b;
                h_in a = binary_input(c, sa, (h_layout)l, false);
                h_in b = binary_input(c, sb, (h_layout)((l + 1 + swap) % H_LAYOUT_COUNT), true);
                char what[200];
                snprintf(what, sizeof what, "%s (%s, %s), pair %d%s", c->name, h_layout_name(a.layout),
                         h_layout_name(b.layout), p, swap ? " swapped" : "");
                ag_tensor *y = c->named(a.t, b.t);
                h_expect(what, y, ref_binary(c->op, &a.val, &b.val), h_tol_get(c->tol, 1));
                h_expect_same(what, y, ag_binary(c->op, a.t, b.t));
            }
        }
    h_end();
}
END_TEST

START_TEST(t_binary_grad)
{
    const binary_case *c = &BINARY[_i];
    h_begin(500 + (uint64_t)_i);
    for (int p = 0; p < NPAIRS; p++) {
        h_in in[2] = {binary_input(c, &PAIRS[p].a, (h_layout)(p % H_LAYOUT_COUNT), false),
                      binary_input(c, &PAIRS[p].b, (h_layout)((p + 2) % H_LAYOUT_COUNT), true)};
        char what[160];
        snprintf(what, sizeof what, "grad %s, pair %d", c->name, p);
        h_gradcheck(&(h_gc){.what = what, .n = 2, .in = in, .op = op_binary_named, .ref = rf_binary,
                            .arg = c, .tol = h_tol_get(c->tol, 1)});
    }
    h_end();
}
END_TEST

START_TEST(t_binary_edge)
{
    const binary_case *c = &BINARY[_i];
    static const double A[] = {1, INFINITY, -INFINITY, NAN, 0, -0.0, 2, 2, 1e30, INFINITY, -1, 3e38};
    static const double B[] = {INFINITY, INFINITY, 1, 2, 0, 0, NAN, 2, 1e-30, 0, -0.0, 10};
    int64_t n = sizeof A / sizeof A[0];
    h_begin(600 + (uint64_t)_i);
    h_in a = h_input_values(1, &n, A, H_CONTIG), b = h_input_values(1, &n, B, H_CONTIG);
    char what[160];
    snprintf(what, sizeof what, "%s at inf/NaN/zero/overflow", c->name);
    h_expect(what, c->named(a.t, b.t), ref_binary(c->op, &a.val, &b.val), h_tol_get(c->tol, 1));
    h_end();
}
END_TEST

/* Comparisons have no gradient even when their inputs need one. */
START_TEST(t_compare_no_grad)
{
    h_begin(9);
    h_in a = h_input(H_S(3, 4), h_dist_normal(), H_CONTIG);
    h_in b = h_input(H_S(3, 4), h_dist_normal(), H_CONTIG);
    ck_assert_int_eq(ag_set_requires_grad(a.leaf, true), AG_OK);
    ck_assert_int_eq(ag_set_requires_grad(b.leaf, true), AG_OK);
    for (int i = 0; i < NBINARY; i++) {
        if (BINARY[i].grad) continue;
        ag_tensor *y = ag_binary(BINARY[i].op, a.leaf, b.leaf);
        ck_assert_msg(y != NULL, "comparison %d failed: %s", i, ag_last_error());
        ck_assert_msg(!ag_requires_grad(y), "comparison %d output requires grad", i);
        ck_assert_int_eq(ag_dtype_of(y), AG_F32);
    }
    /* a mixed expression still differentiates through the other branch only */
    ag_tensor *y = ag_sum_all(ag_mul(ag_gt(a.leaf, b.leaf), a.leaf));
    ck_assert_int_eq(ag_backward(y, NULL), AG_OK);
    rt g = h_read(ag_grad(a.leaf));
    ck_assert_msg(rt_valid(&g), "no gradient for a");
    for (int64_t i = 0; i < 12; i++)
        ck_assert_msg(g.data[i] == (a.val.data[i] > b.val.data[i] ? 1.0 : 0.0),
                      "d/da sum((a > b) * a) at %lld: got %g", (long long)i, g.data[i]);
    rt_free(&g);
    h_end();
}
END_TEST

/* PyTorch's conventions at the kinks: relu'(0) = 0, abs'(0) = 0, and maximum /
 * minimum split the gradient equally between tied operands. */
START_TEST(t_kink_conventions)
{
    h_begin(10);
    double xa[4] = {0.0, 2.0, 1.0, -3.0}, xb[4] = {0.0, 1.0, 1.0, -3.0};
    h_in a = h_input_values(1, (int64_t[]){4}, xa, H_CONTIG);
    h_in b = h_input_values(1, (int64_t[]){4}, xb, H_CONTIG);
    ck_assert_int_eq(ag_set_requires_grad(a.leaf, true), AG_OK);
    ck_assert_int_eq(ag_set_requires_grad(b.leaf, true), AG_OK);
    ag_tensor *y = ag_sum_all(ag_add(ag_relu(a.leaf), ag_abs(a.leaf)));
    ck_assert_int_eq(ag_backward(y, NULL), AG_OK);
    rt g = h_read(ag_grad(a.leaf));
    ck_assert_msg(rt_valid(&g) && g.data[0] == 0.0, "relu'(0) + abs'(0) should be 0, got %g", g.data[0]);
    ck_assert_msg(g.data[1] == 2.0 && g.data[3] == -1.0, "relu' + abs' away from 0 wrong: %g %g",
                  g.data[1], g.data[3]);
    rt_free(&g);
    ag_zero_grad(a.leaf);
    ag_binary_op ops[2] = {AG_BINARY_MAXIMUM, AG_BINARY_MINIMUM};
    for (int k = 0; k < 2; k++) {
        ag_zero_grad(a.leaf);
        ag_zero_grad(b.leaf);
        y = ag_sum_all(ag_binary(ops[k], a.leaf, b.leaf));
        ck_assert_int_eq(ag_backward(y, NULL), AG_OK);
        rt ga = h_read(ag_grad(a.leaf)), gb = h_read(ag_grad(b.leaf));
        ck_assert_msg(rt_valid(&ga) && rt_valid(&gb), "no gradients");
        /* index 0, 2, 3 are ties; index 1 has a > b */
        double want_a1 = k == 0 ? 1.0 : 0.0;
        for (int i = 0; i < 4; i++) {
            double wa = i == 1 ? want_a1 : 0.5, wb = i == 1 ? 1.0 - want_a1 : 0.5;
            ck_assert_msg(ga.data[i] == wa && gb.data[i] == wb,
                          "%s tie split at %d: got (%g, %g), want (%g, %g)", k ? "minimum" : "maximum",
                          i, ga.data[i], gb.data[i], wa, wb);
        }
        rt_free(&ga);
        rt_free(&gb);
    }
    h_end();
}
END_TEST

/* ---- where --------------------------------------------------------------- */

typedef struct where_case {
    shape_case c, a, b;
} where_case;

static const where_case WHERE[] = {
    {{3, {3, 1, 5}}, {2, {4, 1}}, {1, {5}}},
    {{1, {7}}, {1, {7}}, {1, {1}}},
    {{2, {4, 6}}, {0, {0}}, {2, {4, 6}}},
    {{1, {1100}}, {1, {1100}}, {1, {1100}}},
    {{2, {1, 3}}, {2, {5, 1}}, {2, {5, 3}}},
};

static ag_tensor *op_where(ag_tensor *const *in, const void *arg)
{
    (void)arg;
    return ag_where(in[0], in[1], in[2]);
}

static rt rf_where(const rt *const *in, const void *arg)
{
    (void)arg;
    return ref_where(in[0], in[1], in[2]);
}

static h_in cond_input(const shape_case *s, h_layout l)
{
    int64_t n = 1;
    for (int i = 0; i < s->nd; i++) n *= s->s[i];
    double *v = malloc(sizeof(double) * (size_t)n);
    ck_assert(v != NULL);
    /* nonzero means true, whatever its sign or size */
    static const double choice[4] = {0.0, 1.0, -2.5, 0.0};
    for (int64_t i = 0; i < n; i++) v[i] = choice[h_randint(0, 4)];
    h_in in = h_input_values(s->nd, s->s, v, l);
    free(v);
    return in;
}

START_TEST(t_where)
{
    h_begin(11);
    for (size_t k = 0; k < sizeof WHERE / sizeof WHERE[0]; k++)
        for (int l = 0; l < H_LAYOUT_COUNT; l++) {
            h_in in[3] = {cond_input(&WHERE[k].c, (h_layout)l),
                          h_input(WHERE[k].a.nd, WHERE[k].a.s, h_dist_normal(), (h_layout)((l + 1) % H_LAYOUT_COUNT)),
                          h_input(WHERE[k].b.nd, WHERE[k].b.s, h_dist_normal(), (h_layout)((l + 2) % H_LAYOUT_COUNT))};
            char what[96];
            snprintf(what, sizeof what, "where case %zu layout %d", k, l);
            h_expect(what, ag_where(in[0].t, in[1].t, in[2].t), ref_where(&in[0].val, &in[1].val, &in[2].val),
                     h_tol_get("exact", 1));
            static const bool skip_cond[3] = {true, false, false};
            snprintf(what, sizeof what, "grad where case %zu layout %d", k, l);
            h_gradcheck(&(h_gc){.what = what, .n = 3, .in = in, .skip = skip_cond, .op = op_where,
                                .ref = rf_where, .tol = h_tol_get("exact", 1)});
        }
    h_end();
}
END_TEST

/* a comparison result feeds where directly, and NaN in the unchosen branch stays out */
START_TEST(t_where_from_compare)
{
    h_begin(12);
    double av[5] = {1, -2, 3, -4, 5}, bv[5] = {NAN, 7, NAN, 9, NAN};
    h_in a = h_input_values(1, (int64_t[]){5}, av, H_CONTIG);
    h_in b = h_input_values(1, (int64_t[]){5}, bv, H_CONTIG);
    ag_tensor *zero = ag_scalar(0.0f);
    double want[5] = {1, 7, 3, 9, 5};
    h_expect("where(a > 0, a, b)", ag_where(ag_gt(a.t, zero), a.t, b.t), rt_from(want, 1, (int64_t[]){5}),
             h_tol_get("exact", 1));
    h_end();
}
END_TEST

Suite *suite_elementwise(void)
{
    Suite *s = suite_create("elementwise");
    TCase *tc = h_tcase_create("elementwise");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, t_unary_forward, 0, NUNARY);
    tcase_add_loop_test(tc, t_unary_grad, 0, NUNARY);
    tcase_add_loop_test(tc, t_unary_edge, 0, NUNARY);
    tcase_add_test(tc, t_signed_zero);
    tcase_add_test(tc, t_scalar_ops);
    tcase_add_loop_test(tc, t_binary_forward, 0, NBINARY);
    tcase_add_loop_test(tc, t_binary_grad, 0, 6); /* the differentiable ones come first */
    tcase_add_loop_test(tc, t_binary_edge, 0, NBINARY);
    tcase_add_test(tc, t_compare_no_grad);
    tcase_add_test(tc, t_kink_conventions);
    tcase_add_test(tc, t_where);
    tcase_add_test(tc, t_where_from_compare);
    suite_add_tcase(s, tc);
    return s;
}
