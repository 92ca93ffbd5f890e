/* Neural-network ops against the fp64 reference: conv2d over stride / padding /
 * dilation / groups with and without bias, max/avg pooling, batch norm (training,
 * eval, running statistics), layer norm, embedding, concat/stack, gather and
 * scatter_add, all with gradients; dropout and ag_rand/ag_randn by their
 * statistics and seeding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "suites.h"

static rt read_ok(const ag_tensor *t, const char *what)
{
    ck_assert_msg(t != NULL, "%s returned NULL: %s", what, ag_last_error());
    rt r = h_read(t);
    ck_assert_msg(rt_valid(&r), "%s: read back failed: %s", what, ag_last_error());
    return r;
}

/* ---- conv2d -------------------------------------------------------------- */

typedef struct conv_case {
    int64_t n, c, h, w, oc, kh, kw;
    ag_conv2d_params p;
    bool bias, null_params;
} conv_case;

static const conv_case CONV[] = {
    {2, 3, 7, 7, 4, 3, 3, {{1, 1}, {0, 0}, {1, 1}, 1}, true, false},
    {1, 3, 8, 7, 2, 3, 3, {{2, 2}, {1, 1}, {1, 1}, 1}, false, false},
    {2, 2, 9, 8, 3, 3, 2, {{1, 2}, {2, 1}, {2, 1}, 1}, true, false},   /* dilation, asymmetric */
    {1, 4, 6, 6, 6, 3, 2, {{1, 1}, {1, 0}, {1, 1}, 2}, true, false},   /* groups */
    {2, 3, 5, 5, 6, 3, 3, {{2, 1}, {1, 1}, {1, 2}, 3}, false, false},  /* depthwise x2 */
    {1, 2, 1, 1, 3, 1, 1, {{1, 1}, {0, 0}, {1, 1}, 1}, true, false},   /* 1x1 on 1x1 */
    {1, 1, 5, 4, 1, 2, 2, {{1, 1}, {0, 0}, {1, 1}, 1}, false, true},   /* p == NULL */
    {3, 5, 4, 6, 4, 1, 3, {{1, 1}, {0, 1}, {1, 1}, 1}, true, false},
    {1, 2, 6, 5, 2, 3, 3, {{3, 2}, {2, 2}, {1, 1}, 2}, true, false},   /* padding > stride */
    /* 5x5 "same", channels multiples of 16: the CPU's Winograd path, forward and
     * input gradient, odd and even sizes (a partial tile at the edge) */
    {2, 16, 7, 6, 32, 5, 5, {{1, 1}, {2, 2}, {1, 1}, 1}, true, false},
    {1, 32, 4, 9, 16, 5, 5, {{1, 1}, {2, 2}, {1, 1}, 1}, false, false},
};
#define NCONV ((int)(sizeof CONV / sizeof CONV[0]))

static ag_tensor *op_conv(ag_tensor *const *in, const void *arg)
{
    const conv_case *c = arg;
    return ag_conv2d(in[0], in[1], c->bias ? in[2] : NULL, c->null_params ? NULL : &c->p);
}

static rt rf_conv(const rt *const *in, const void *arg)
{
    const conv_case *c = arg;
    return ref_conv2d(in[0], in[1], c->bias ? in[2] : NULL, c->null_params ? NULL : &c->p);
}

static void conv_inputs(const conv_case *c, h_layout lx, h_layout lw, h_in *in)
{
    int64_t g = c->null_params ? 1 : c->p.groups;
    in[0] = h_input(H_S(c->n, c->c, c->h, c->w), h_dist_normal(), lx);
    in[1] = h_input(H_S(c->oc, c->c / g, c->kh, c->kw), h_dist_normal(), lw);
    in[2] = h_input(H_S(c->oc), h_dist_normal(), H_CONTIG);
}

START_TEST(t_conv2d)
{
    const conv_case *c = &CONV[_i];
    int64_t g = c->null_params ? 1 : c->p.groups, len = c->c / g * c->kh * c->kw + 1;
    h_begin(4000 + (uint64_t)_i);
    for (int l = 0; l < H_LAYOUT_COUNT; l++) {
        h_in in[3];
        conv_inputs(c, (h_layout)l, (h_layout)((l + 1) % H_LAYOUT_COUNT), in);
        char what[200];
        snprintf(what, sizeof what,
                 "conv2d case %d: x [%lld, %lld, %lld, %lld] (%s), w (%s), stride %d,%d pad %d,%d dil %d,%d "
                 "groups %d, %s",
                 _i, (long long)c->n, (long long)c->c, (long long)c->h, (long long)c->w, h_layout_name(in[0].layout),
                 h_layout_name(in[1].layout), c->p.stride[0], c->p.stride[1], c->p.padding[0], c->p.padding[1],
                 c->p.dilation[0], c->p.dilation[1], c->p.groups, c->bias ? "bias" : "no bias");
        h_expect(what, op_conv((ag_tensor *const[]){in[0].t, in[1].t, in[2].t}, c),
                 rf_conv((const rt *const[]){&in[0].val, &in[1].val, &in[2].val}, c), h_tol_get("sum", len));
        if (l == H_CONTIG || l == (int)(_i % H_LAYOUT_COUNT))
            h_gradcheck(&(h_gc){.what = what, .n = c->bias ? 3 : 2, .in = in, .op = op_conv, .ref = rf_conv,
                                .arg = c, .tol = h_tol_get("sum", len > 16 ? len : 16)});
    }
    h_end();
}
END_TEST

/* ---- pooling ------------------------------------------------------------- */

typedef struct pool_arg {
    ag_pool2d_params p;
    bool max;
} pool_arg;

static const ag_pool2d_params POOL[] = {
    {{3, 3}, {2, 2}, {1, 1}},   /* overlapping windows, padding */
    {{2, 2}, {2, 2}, {0, 0}},
    {{3, 2}, {1, 2}, {1, 0}},
    {{2, 3}, {1, 1}, {1, 1}},
    {{1, 1}, {1, 1}, {0, 0}},   /* identity */
    {{7, 6}, {1, 1}, {0, 0}},   /* global */
    {{3, 3}, {1, 1}, {1, 1}},   /* stride 1, every input in up to 9 windows */
};
#define NPOOL ((int)(sizeof POOL / sizeof POOL[0]))

static ag_tensor *op_pool(ag_tensor *const *in, const void *arg)
{
    const pool_arg *a = arg;
    return a->max ? ag_max_pool2d(in[0], &a->p) : ag_avg_pool2d(in[0], &a->p);
}

static rt rf_pool(const rt *const *in, const void *arg)
{
    const pool_arg *a = arg;
    return ref_pool2d(a->max, in[0], &a->p);
}

START_TEST(t_pool2d)
{
    pool_arg a = {POOL[_i / 2], _i % 2 == 0};
    h_begin(4100 + (uint64_t)_i);
    for (int l = 0; l < H_LAYOUT_COUNT; l++) {
        /* all-negative inputs: a padded zero must never win the max */
        h_in x = h_input(H_S(2, 3, 7, 6), h_dist_uniform(-5.0, -0.5), (h_layout)l);
        char what[200];
        snprintf(what, sizeof what, "%s kernel %d,%d stride %d,%d padding %d,%d (%s)", a.max ? "max_pool2d" : "avg_pool2d",
                 a.p.kernel[0], a.p.kernel[1], a.p.stride[0], a.p.stride[1], a.p.padding[0], a.p.padding[1],
                 h_layout_name(x.layout));
        h_tol t = a.max ? h_tol_get("exact", 1) : h_tol_get("sum", a.p.kernel[0] * a.p.kernel[1]);
        h_expect(what, op_pool((ag_tensor *const[]){x.t}, &a), rf_pool((const rt *const[]){&x.val}, &a), t);
        h_gradcheck(&(h_gc){.what = what, .n = 1, .in = &x, .op = op_pool, .ref = rf_pool, .arg = &a, .tol = t});
    }
    h_end();
}
END_TEST

/* Ties inside a window: the gradient goes to the first maximum in row-major
 * window order (the one PyTorch and the backend contract pick), never split. */
START_TEST(t_max_pool_ties)
{
    h_begin(4150);
    static const ag_pool2d_params P[] = {{{2, 2}, {2, 2}, {0, 0}}, {{3, 3}, {1, 1}, {1, 1}}, {{2, 3}, {1, 2}, {1, 1}}};
    for (size_t k = 0; k < sizeof P / sizeof P[0]; k++) {
        const ag_pool2d_params *p = &P[k];
        int64_t H = 5, W = 6;
        double v[30];
        for (int i = 0; i < 30; i++) v[i] = (double)h_randint(0, 3); /* many ties */
        h_in x = h_input_values(H_S(1, 1, 5, 6), v, H_CONTIG);
        ck_assert_int_eq(ag_set_requires_grad(x.leaf, true), AG_OK);
        ag_tensor *y = ag_max_pool2d(x.leaf, p);
        rt yv = read_ok(y, "max_pool2d");
        int64_t OH = yv.shape[2], OW = yv.shape[3];
        rt u = rt_new(yv.ndim, yv.shape);
        for (int64_t i = 0; i < rt_numel(&u); i++) u.data[i] = h_normal();
        ck_assert_int_eq(ag_backward(y, h_tensor(&u)), AG_OK);
        rt g = read_ok(ag_grad(x.leaf), "grad");
        double want[30] = {0};
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t at = -1;
                for (int64_t kh = 0; kh < p->kernel[0]; kh++)
                    for (int64_t kw = 0; kw < p->kernel[1]; kw++) {
                        int64_t ih = oh * p->stride[0] - p->padding[0] + kh, iw = ow * p->stride[1] - p->padding[1] + kw;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                        if (at < 0 || v[ih * W + iw] > v[at]) at = ih * W + iw;
                    }
                want[at] += u.data[oh * OW + ow];
            }
        for (int i = 0; i < 30; i++)
            ck_assert_msg(fabs(g.data[i] - want[i]) <= 1e-6 * (1 + fabs(want[i])),
                          "max_pool2d ties, params %zu: grad at (%d, %d) is %.9g, want %.9g (first maximum)", k, i / 6,
                          i % 6, g.data[i], want[i]);
        rt_free(&yv), rt_free(&u), rt_free(&g);
    }
    h_end();
}
END_TEST

/* ---- batch norm ---------------------------------------------------------- */

typedef struct bn_arg {
    bool training, affine;
    float momentum, eps;
} bn_arg;

/* inputs: x, weight, bias, running_mean, running_var */
static ag_tensor *op_bn(ag_tensor *const *in, const void *arg)
{
    const bn_arg *a = arg;
    return ag_batch_norm(in[0], a->training ? NULL : in[3], a->training ? NULL : in[4], a->affine ? in[1] : NULL,
                         a->affine ? in[2] : NULL, a->training, a->momentum, a->eps);
}

static rt rf_bn(const rt *const *in, const void *arg)
{
    const bn_arg *a = arg;
    rt rm = rt_clone(in[3]), rv = rt_clone(in[4]); /* eval reads them; training must not touch ours */
    rt y = ref_batch_norm(in[0], a->training ? NULL : &rm, a->training ? NULL : &rv, a->affine ? in[1] : NULL,
                          a->affine ? in[2] : NULL, a->training, a->momentum, a->eps);
    rt_free(&rm);
    rt_free(&rv);
    return y;
}

static const struct { int nd; int64_t s[4]; } BN_SHAPES[] = {
    {2, {8, 3}}, {4, {4, 3, 5, 5}}, {3, {2, 4, 3}}, {4, {1, 2, 4, 4}}, {2, {300, 2}},
};
#define NBN ((int)(sizeof BN_SHAPES / sizeof BN_SHAPES[0]))

static void bn_inputs(int k, h_layout l, h_in *in)
{
    int64_t C = BN_SHAPES[k].s[1];
    in[0] = h_input(BN_SHAPES[k].nd, BN_SHAPES[k].s, h_dist_normal(), l);
    in[1] = h_input(1, &C, h_dist_uniform(0.5, 2.0), H_CONTIG);
    in[2] = h_input(1, &C, h_dist_normal(), H_CONTIG);
    in[3] = h_input(1, &C, h_dist_normal(), H_CONTIG);
    in[4] = h_input(1, &C, h_dist_uniform(0.5, 2.0), H_CONTIG);
}

START_TEST(t_batch_norm)
{
    h_begin(4200 + (uint64_t)_i);
    int k = _i;
    int64_t cnt = BN_SHAPES[k].s[0];
    for (int i = 2; i < BN_SHAPES[k].nd; i++) cnt *= BN_SHAPES[k].s[i];
    for (int mode = 0; mode < 4; mode++) {
        bn_arg a = {mode < 2, mode % 2 == 0, 0.1f, 1e-5f};
        for (int l = 0; l < H_LAYOUT_COUNT; l++) {
            h_in in[5];
            /* [N, C] expanded along N has constant channels: batch variance 0 */
            h_layout lx = (l == H_EXPANDED && BN_SHAPES[k].nd == 2) ? H_SLICED : (h_layout)l;
            bn_inputs(k, lx, in);
            char what[200], sh[64];
            snprintf(what, sizeof what, "batch_norm %s %s of %s (%s)", a.training ? "training" : "eval",
                     a.affine ? "affine" : "plain", rt_shape_str(BN_SHAPES[k].nd, BN_SHAPES[k].s, sh, sizeof sh),
                     h_layout_name(in[0].layout));
            h_tol t = h_tol_get("norm", cnt);
            h_expect(what, op_bn((ag_tensor *const[]){in[0].t, in[1].t, in[2].t, in[3].t, in[4].t}, &a),
                     rf_bn((const rt *const[]){&in[0].val, &in[1].val, &in[2].val, &in[3].val, &in[4].val}, &a), t);
            if (l == H_CONTIG || l == (k + mode) % H_LAYOUT_COUNT) {
                static const bool skip_plain[5] = {false, true, true, true, true};
                static const bool skip_affine[5] = {false, false, false, true, true};
                /* a stretched-out input keeps the batch variance away from 0 */
                h_gradcheck(&(h_gc){.what = what, .n = 5, .in = in, .skip = a.affine ? skip_affine : skip_plain,
                                    .op = op_bn, .ref = rf_bn, .arg = &a, .tol = t});
            }
        }
    }
    h_end();
}
END_TEST

/* Training moves the running stats by momentum towards the batch mean and the
 * unbiased batch variance; eval then normalises with them and leaves them be. */
START_TEST(t_batch_norm_running)
{
    h_begin(4300 + (uint64_t)_i);
    int k = _i;
    int64_t cnt = BN_SHAPES[k].s[0];
    for (int i = 2; i < BN_SHAPES[k].nd; i++) cnt *= BN_SHAPES[k].s[i];
    static const float MOM[2] = {0.1f, 0.3f};
    for (int m = 0; m < 2; m++) {
        h_in in[5];
        bn_inputs(k, m ? H_TRANSPOSED : H_CONTIG, in);
        rt rm = rt_clone(&in[3].val), rv = rt_clone(&in[4].val);
        h_tol t = h_tol_get("norm", cnt);
        char what[160];
        snprintf(what, sizeof what, "batch_norm training, momentum %g, shape case %d", MOM[m], k);
        h_expect(what, ag_batch_norm(in[0].t, in[3].t, in[4].t, in[1].t, in[2].t, true, MOM[m], 1e-5f),
                 ref_batch_norm(&in[0].val, &rm, &rv, &in[1].val, &in[2].val, true, MOM[m], 1e-5), t);
        snprintf(what, sizeof what, "running_mean after one step, momentum %g", MOM[m]);
        h_expect(what, in[3].t, rt_clone(&rm), t);
        snprintf(what, sizeof what, "running_var (unbiased) after one step, momentum %g", MOM[m]);
        h_expect(what, in[4].t, rt_clone(&rv), t);
        /* a second step compounds */
        h_in x2 = h_input(BN_SHAPES[k].nd, BN_SHAPES[k].s, h_dist_normal(), H_CONTIG);
        ag_batch_norm(x2.t, in[3].t, in[4].t, NULL, NULL, true, MOM[m], 1e-5f);
        rt y2 = ref_batch_norm(&x2.val, &rm, &rv, NULL, NULL, true, MOM[m], 1e-5);
        rt_free(&y2);
        h_expect("running_mean after two steps", in[3].t, rt_clone(&rm), t);
        h_expect("running_var after two steps", in[4].t, rt_clone(&rv), t);
        /* eval uses exactly the stored stats (read back, so this isolates eval) */
        rt srm = h_read(in[3].t), srv = h_read(in[4].t);
        h_in x3 = h_input(BN_SHAPES[k].nd, BN_SHAPES[k].s, h_dist_normal(), H_SLICED);
        h_expect("batch_norm eval with the updated stats",
                 ag_batch_norm(x3.t, in[3].t, in[4].t, in[1].t, in[2].t, false, MOM[m], 1e-5f),
                 ref_batch_norm(&x3.val, &srm, &srv, &in[1].val, &in[2].val, false, MOM[m], 1e-5), t);
        h_expect("running_mean unchanged by eval", in[3].t, rt_clone(&srm), h_tol_get("exact", 1));
        h_expect("running_var unchanged by eval", in[4].t, rt_clone(&srv), h_tol_get("exact", 1));
        rt_free(&srm), rt_free(&srv), rt_free(&rm), rt_free(&rv);
    }
    h_end();
}
END_TEST

/* ---- layer norm ---------------------------------------------------------- */

typedef struct ln_arg {
    int nnd;
    int affine; /* 0 none, 1 weight, 2 weight and bias */
    float eps;
} ln_arg;

static ag_tensor *op_ln(ag_tensor *const *in, const void *arg)
{
    const ln_arg *a = arg;
    return ag_layer_norm(in[0], a->nnd, a->affine >= 1 ? in[1] : NULL, a->affine >= 2 ? in[2] : NULL, a->eps);
}

static rt rf_ln(const rt *const *in, const void *arg)
{
    const ln_arg *a = arg;
    return ref_layer_norm(in[0], a->nnd, a->affine >= 1 ? in[1] : NULL, a->affine >= 2 ? in[2] : NULL, a->eps);
}

START_TEST(t_layer_norm)
{
    static const struct { int nd; int64_t s[3]; int nnd; } S[] = {
        {2, {4, 7}, 1}, {3, {2, 3, 5}, 2}, {1, {5}, 1}, {3, {2, 3, 5}, 1}, {2, {3, 1100}, 1}, {3, {2, 2, 3}, 3},
    };
    h_begin(4400);
    for (size_t k = 0; k < sizeof S / sizeof S[0]; k++)
        for (int aff = 0; aff < 3; aff++)
            for (int l = 0; l < H_LAYOUT_COUNT; l++) {
                ln_arg a = {S[k].nnd, aff, 1e-5f};
                const int64_t *ws = S[k].s + S[k].nd - S[k].nnd;
                int64_t D = 1;
                for (int i = 0; i < S[k].nnd; i++) D *= ws[i];
                /* expanding along a normalised axis makes a constant row: variance 0 */
                h_layout lx = (h_layout)l;
                if (lx == H_EXPANDED && S[k].nd == S[k].nnd) lx = H_SLICED;
                h_in in[3] = {h_input(S[k].nd, S[k].s, h_dist_normal(), lx),
                              h_input(S[k].nnd, ws, h_dist_uniform(0.5, 2.0), (h_layout)((l + 1) % H_LAYOUT_COUNT)),
                              h_input(S[k].nnd, ws, h_dist_normal(), H_CONTIG)};
                char what[200], sh[64];
                snprintf(what, sizeof what, "layer_norm of %s over %d axes, %s (%s)",
                         rt_shape_str(S[k].nd, S[k].s, sh, sizeof sh), S[k].nnd,
                         aff == 0 ? "no affine" : aff == 1 ? "weight" : "weight and bias", h_layout_name(in[0].layout));
                h_tol t = h_tol_get("norm", D);
                h_expect(what, op_ln((ag_tensor *const[]){in[0].t, in[1].t, in[2].t}, &a),
                         rf_ln((const rt *const[]){&in[0].val, &in[1].val, &in[2].val}, &a), t);
                bool const_rows = in[0].layout == H_EXPANDED && S[k].s[0] == 1;
                if ((l == H_CONTIG || l == (int)((k + (size_t)aff) % H_LAYOUT_COUNT)) && !const_rows)
                    h_gradcheck(&(h_gc){.what = what, .n = 1 + aff, .in = in, .op = op_ln, .ref = rf_ln, .arg = &a, .tol = t});
            }
    h_end();
}
END_TEST

/* ---- embedding ----------------------------------------------------------- */

static ag_tensor *op_emb(ag_tensor *const *in, const void *arg)
{
    (void)arg;
    return ag_embedding(in[0], in[1]);
}

static rt rf_emb(const rt *const *in, const void *arg)
{
    (void)arg;
    return ref_embedding(in[0], in[1]);
}

START_TEST(t_embedding)
{
    static const struct { int nd; int64_t s[3]; } I[] = {{1, {5}}, {2, {2, 3}}, {1, {1}}, {3, {2, 2, 4}}, {1, {300}}};
    h_begin(4500);
    for (size_t k = 0; k < sizeof I / sizeof I[0]; k++)
        for (int l = 0; l < H_LAYOUT_COUNT; l++) {
            /* 10 rows for up to 300 lookups: rows repeat, their gradients add up */
            h_in in[2] = {h_input_randint(I[k].nd, I[k].s, 0, 10), h_input(H_S(10, 4), h_dist_normal(), (h_layout)l)};
            char what[160], sh[64];
            snprintf(what, sizeof what, "embedding of indices %s, weight [10, 4] (%s)",
                     rt_shape_str(I[k].nd, I[k].s, sh, sizeof sh), h_layout_name(in[1].layout));
            h_expect(what, ag_embedding(in[0].t, in[1].t), ref_embedding(&in[0].val, &in[1].val), h_tol_get("exact", 1));
            h_gradcheck(&(h_gc){.what = what, .n = 2, .in = in, .op = op_emb, .ref = rf_emb,
                                .tol = h_tol_get("sum", 30)});
        }
    h_end();
}
END_TEST

/* ---- concat and stack ---------------------------------------------------- */

typedef struct cat_arg {
    int n, axis;
    bool stack;
} cat_arg;

static ag_tensor *op_cat(ag_tensor *const *in, const void *arg)
{
    const cat_arg *a = arg;
    return a->stack ? ag_stack(a->n, in, a->axis) : ag_concat(a->n, in, a->axis);
}

static rt rf_cat(const rt *const *in, const void *arg)
{
    const cat_arg *a = arg;
    return a->stack ? ref_stack(a->n, in, a->axis) : ref_concat(a->n, in, a->axis);
}

typedef struct cat_case {
    bool stack;
    int n, axis, nd;
    int64_t s[3][3]; /* per input */
} cat_case;

static const cat_case CAT[] = {
    {false, 3, 1, 2, {{2, 3}, {2, 5}, {2, 1}}},
    {false, 3, -1, 2, {{2, 3}, {2, 5}, {2, 1}}},
    {false, 2, 0, 2, {{1, 4}, {3, 4}}},
    {false, 3, 1, 3, {{2, 3, 4}, {2, 1, 4}, {2, 2, 4}}},
    {false, 2, -3, 3, {{1, 2, 3}, {2, 2, 3}}},
    {false, 1, 0, 1, {{7}}},
    {false, 2, 0, 1, {{1100}, {33}}},
    {true, 3, 0, 2, {{2, 3}, {2, 3}, {2, 3}}},
    {true, 3, 1, 2, {{2, 3}, {2, 3}, {2, 3}}},
    {true, 3, 2, 2, {{2, 3}, {2, 3}, {2, 3}}},
    {true, 3, -1, 2, {{2, 3}, {2, 3}, {2, 3}}},
    {true, 2, -3, 2, {{4, 1}, {4, 1}}},
    {true, 2, 1, 1, {{5}, {5}}},
    {true, 1, 0, 1, {{3}}},
};
#define NCAT ((int)(sizeof CAT / sizeof CAT[0]))

START_TEST(t_concat_stack)
{
    const cat_case *c = &CAT[_i];
    h_begin(4600 + (uint64_t)_i);
    for (int l = 0; l < H_LAYOUT_COUNT; l++) {
        h_in in[3];
        ag_tensor *ts[3];
        const rt *rs[3];
        for (int i = 0; i < c->n; i++) {
            in[i] = h_input(c->nd, c->s[i], h_dist_normal(), (h_layout)((l + i) % H_LAYOUT_COUNT));
            ts[i] = in[i].t, rs[i] = &in[i].val;
        }
        cat_arg a = {c->n, c->axis, c->stack};
        char what[160];
        snprintf(what, sizeof what, "%s case %d of %d inputs on axis %d, first %s", c->stack ? "stack" : "concat", _i,
                 c->n, c->axis, h_layout_name(in[0].layout));
        h_expect(what, op_cat(ts, &a), rf_cat(rs, &a), h_tol_get("exact", 1));
        h_gradcheck(&(h_gc){.what = what, .n = c->n, .in = in, .op = op_cat, .ref = rf_cat, .arg = &a,
                            .tol = h_tol_get("exact", 1)});
    }
    h_end();
}
END_TEST

/* ---- gather and scatter_add --------------------------------------------- */

typedef struct idx_case {
    int axis, nd;
    int64_t x[3], idx[3], src[3];
} idx_case;

static const idx_case IDX[] = {
    {0, 2, {4, 5}, {3, 5}, {3, 5}},
    {1, 2, {4, 5}, {4, 2}, {4, 2}},
    {-1, 2, {4, 5}, {2, 7}, {3, 7}},     /* index longer than x along the axis; src bigger */
    {0, 2, {4, 5}, {1, 3}, {2, 5}},      /* index smaller than x off the axis */
    {1, 3, {2, 3, 4}, {2, 5, 4}, {2, 5, 4}},
    {2, 3, {2, 3, 4}, {1, 2, 6}, {2, 3, 6}},
    {0, 1, {7}, {12}, {12}},
};
#define NIDX ((int)(sizeof IDX / sizeof IDX[0]))

static ag_tensor *op_gather(ag_tensor *const *in, const void *arg)
{
    return ag_gather(in[0], ((const idx_case *)arg)->axis, in[1]);
}

static rt rf_gather(const rt *const *in, const void *arg)
{
    return ref_gather(in[0], ((const idx_case *)arg)->axis, in[1]);
}

static ag_tensor *op_scatter(ag_tensor *const *in, const void *arg)
{
    return ag_scatter_add(in[0], ((const idx_case *)arg)->axis, in[1], in[2]);
}

static rt rf_scatter(const rt *const *in, const void *arg)
{
    return ref_scatter_add(in[0], ((const idx_case *)arg)->axis, in[1], in[2]);
}

START_TEST(t_gather_scatter)
{
    const idx_case *c = &IDX[_i];
    int ax = (c->axis + c->nd) % c->nd;
    h_begin(4700 + (uint64_t)_i);
    for (int l = 0; l < H_LAYOUT_COUNT; l++) {
        /* indices repeat along the axis, so gradients must accumulate */
        h_in x = h_input(c->nd, c->x, h_dist_normal(), (h_layout)l);
        h_in idx = h_input_randint(c->nd, c->idx, 0, (int32_t)c->x[ax]);
        h_in src = h_input(c->nd, c->src, h_dist_normal(), (h_layout)((l + 1) % H_LAYOUT_COUNT));
        char what[320], sh[64], si[64];
        snprintf(what, sizeof what, "gather x %s (%s) axis %d index %s", rt_shape_str(c->nd, c->x, sh, sizeof sh),
                 h_layout_name(x.layout), c->axis, rt_shape_str(c->nd, c->idx, si, sizeof si));
        h_expect(what, ag_gather(x.t, c->axis, idx.t), ref_gather(&x.val, c->axis, &idx.val), h_tol_get("exact", 1));
        h_in gin[2] = {x, idx};
        h_gradcheck(&(h_gc){.what = what, .n = 2, .in = gin, .op = op_gather, .ref = rf_gather, .arg = c,
                            .tol = h_tol_get("sum", 8)});
        snprintf(what, sizeof what, "scatter_add x %s (%s) axis %d index %s src (%s)", sh, h_layout_name(x.layout),
                 c->axis, si, h_layout_name(src.layout));
        h_expect(what, ag_scatter_add(x.t, c->axis, idx.t, src.t), ref_scatter_add(&x.val, c->axis, &idx.val, &src.val),
                 h_tol_get("sum", 8));
        h_in sin[3] = {x, idx, src};
        h_gradcheck(&(h_gc){.what = what, .n = 3, .in = sin, .op = op_scatter, .ref = rf_scatter, .arg = c,
                            .tol = h_tol_get("sum", 8)});
    }
    h_end();
}
END_TEST

/* ---- dropout ------------------------------------------------------------- */

START_TEST(t_dropout_training)
{
    h_begin(4800);
    static const float P[] = {0.1f, 0.3f, 0.5f, 0.9f};
    int64_t n = 100000;
    h_in x = h_input(1, &n, h_dist_away(h_dist_normal(), 0.0, 0.01), H_CONTIG);
    for (size_t k = 0; k < sizeof P / sizeof P[0]; k++) {
        float p = P[k];
        ag_manual_seed(1234 + k);
        rt y = read_ok(ag_dropout(x.t, p, true), "dropout");
        int64_t zeros = 0;
        double scale = 1.0 / (1.0 - (double)p);
        for (int64_t i = 0; i < n; i++) {
            if (y.data[i] == 0.0) {
                zeros++;
                continue;
            }
            double want = x.val.data[i] * scale;
            ck_assert_msg(fabs(y.data[i] - want) <= 1e-6 * fabs(want),
                          "dropout p=%g: element %lld is %.9g, neither 0 nor x/(1-p) = %.9g", p, (long long)i,
                          y.data[i], want);
        }
        double frac = (double)zeros / (double)n, se = sqrt((double)p * (1.0 - p) / (double)n);
        ck_assert_msg(fabs(frac - p) <= 5 * se, "dropout p=%g zeroed a fraction %.5f of %lld (5 s.e. = %.5f)", p, frac,
                      (long long)n, 5 * se);
        rt_free(&y);
    }
    h_end();
}
END_TEST

START_TEST(t_dropout_seed)
{
    h_begin(4801);
    h_in x = h_input(H_S(50, 40), h_dist_away(h_dist_normal(), 0.0, 0.01), H_CONTIG);
    ag_manual_seed(99);
    rt a = read_ok(ag_dropout(x.t, 0.5f, true), "dropout");
    rt b = read_ok(ag_dropout(x.t, 0.5f, true), "dropout");
    ag_manual_seed(99);
    rt c = read_ok(ag_dropout(x.t, 0.5f, true), "dropout");
    ag_manual_seed(100);
    rt d = read_ok(ag_dropout(x.t, 0.5f, true), "dropout");
    int64_t n = rt_numel(&a), same_ab = 0, same_ad = 0;
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(a.data[i] == c.data[i], "same seed, different dropout at %lld", (long long)i);
        same_ab += (a.data[i] == 0) == (b.data[i] == 0);
        same_ad += (a.data[i] == 0) == (d.data[i] == 0);
    }
    /* independent masks agree on about half the elements */
    ck_assert_msg(same_ab < n * 0.6, "two calls after one seed gave nearly the same mask (%lld of %lld)",
                  (long long)same_ab, (long long)n);
    ck_assert_msg(same_ad < n * 0.6, "different seeds gave nearly the same mask (%lld of %lld)", (long long)same_ad,
                  (long long)n);
    rt_free(&a), rt_free(&b), rt_free(&c), rt_free(&d);
    h_end();
}
END_TEST

START_TEST(t_dropout_identity)
{
    h_begin(4802);
    for (int l = 0; l < H_LAYOUT_COUNT; l++) {
        h_in x = h_input(H_S(7, 33), h_dist_normal(), (h_layout)l);
        h_expect("dropout in eval mode", ag_dropout(x.t, 0.5f, false), rt_clone(&x.val), h_tol_get("exact", 1));
        h_expect("dropout with p = 0", ag_dropout(x.t, 0.0f, true), rt_clone(&x.val), h_tol_get("exact", 1));
    }
    h_end();
}
END_TEST

/* the gradient is the cotangent times the same mask the forward used */
START_TEST(t_dropout_grad)
{
    h_begin(4803);
    for (int l = 0; l < H_LAYOUT_COUNT; l++) {
        h_in x = h_input(H_S(30, 40), h_dist_away(h_dist_normal(), 0.0, 0.01), (h_layout)l);
        ck_assert_int_eq(ag_set_requires_grad(x.leaf, true), AG_OK);
        ag_tensor *y = ag_dropout(h_view(&x), 0.4f, true);
        rt yv = read_ok(y, "dropout");
        rt u = rt_new(yv.ndim, yv.shape);
        for (int64_t i = 0; i < rt_numel(&u); i++) u.data[i] = h_normal();
        ck_assert_int_eq(ag_backward(y, h_tensor(&u)), AG_OK);
        rt g = read_ok(ag_grad(x.leaf), "grad");
        /* map the leaf's gradient to the view's elements with the reference view */
        rt gsum = rt_new(x.val.ndim, x.val.shape);
        if (x.layout == H_TRANSPOSED) {
            rt_free(&gsum);
            gsum = ref_transpose(&g, 0, 1);
        } else if (x.layout == H_SLICED) {
            rt_free(&gsum);
            gsum = ref_slice(&g, 1, 1, g.shape[1], 2);
        }
        int64_t kept = 0;
        for (int64_t i = 0; i < rt_numel(&yv); i++) {
            double mask = yv.data[i] != 0 ? 1.0 / (1.0 - 0.4) : 0.0;
            kept += yv.data[i] != 0;
            if (x.layout == H_EXPANDED) continue; /* copies add up; checked below */
            double want = u.data[i] * mask, got = x.layout == H_CONTIG ? g.data[i] : gsum.data[i];
            ck_assert_msg(fabs(got - want) <= 1e-6 * (fabs(want) + 1e-3), "dropout grad (%s) at %lld: got %.9g, want %.9g",
                          h_layout_name(x.layout), (long long)i, got, want);
        }
        if (x.layout == H_EXPANDED) {
            /* base [1, 40] expanded over 30 rows: the column sums of u * mask */
            for (int64_t j = 0; j < 40; j++) {
                double want = 0;
                for (int64_t i = 0; i < 30; i++) want += yv.data[i * 40 + j] != 0 ? u.data[i * 40 + j] / 0.6 : 0.0;
                ck_assert_msg(fabs(g.data[j] - want) <= 1e-5 * (fabs(want) + 1), "dropout grad (expanded) col %lld: %.9g vs %.9g",
                              (long long)j, g.data[j], want);
            }
        }
        ck_assert_msg(kept > 0 && kept < rt_numel(&yv), "dropout kept %lld of %lld", (long long)kept,
                      (long long)rt_numel(&yv));
        rt_free(&yv), rt_free(&u), rt_free(&g), rt_free(&gsum);
        ag_zero_grad(x.leaf);
    }
    h_end();
}
END_TEST

/* ---- random tensors ------------------------------------------------------ */

typedef struct stats {
    double mean, sd, lo, hi;
} stats;

static stats stats_of(const rt *r)
{
    int64_t n = rt_numel(r);
    stats s = {0, 0, INFINITY, -INFINITY};
    for (int64_t i = 0; i < n; i++) {
        s.mean += r->data[i];
        s.lo = fmin(s.lo, r->data[i]);
        s.hi = fmax(s.hi, r->data[i]);
    }
    s.mean /= (double)n;
    for (int64_t i = 0; i < n; i++) s.sd += (r->data[i] - s.mean) * (r->data[i] - s.mean);
    s.sd = sqrt(s.sd / (double)(n - 1));
    return s;
}

START_TEST(t_rand_stats)
{
    h_begin(4900);
    int64_t shape[2] = {400, 250}, n = 100000;
    ag_manual_seed(2024);
    ag_tensor *t = ag_rand(2, shape, -2.0f, 3.0f);
    ck_assert_msg(t && ag_dtype_of(t) == AG_F32 && ag_numel(t) == n && ag_ndim(t) == 2, "ag_rand shape/dtype wrong");
    rt r = read_ok(t, "ag_rand");
    stats s = stats_of(&r);
    double sd = 5.0 / sqrt(12.0);
    /* [lo, hi) up to the rounding of lo + (hi - lo) u, which may land on hi */
    ck_assert_msg(s.lo >= -2.0 && s.hi <= 3.0, "ag_rand(-2, 3) gave values in [%g, %g]", s.lo, s.hi);
    ck_assert_msg(fabs(s.mean - 0.5) <= 5 * sd / sqrt((double)n), "ag_rand mean %.5f, want 0.5", s.mean);
    /* s.e. of the sd of a uniform: sd * sqrt((kurtosis - 1) / (4n)), kurtosis 1.8 */
    ck_assert_msg(fabs(s.sd - sd) <= 5 * sd * sqrt(0.8 / (4.0 * (double)n)), "ag_rand sd %.5f, want %.5f", s.sd, sd);
    int64_t below = 0, tenth[10] = {0};
    for (int64_t i = 0; i < n; i++) {
        below += r.data[i] < 0.5;
        int b = (int)((r.data[i] + 2.0) / 0.5);
        tenth[b < 0 ? 0 : b > 9 ? 9 : b]++;
    }
    for (int b = 0; b < 10; b++)
        ck_assert_msg(fabs((double)tenth[b] / (double)n - 0.1) <= 5 * sqrt(0.09 / (double)n),
                      "ag_rand bucket %d holds %.4f of the samples, want 0.1", b, (double)tenth[b] / (double)n);
    ck_assert_msg(fabs((double)below / (double)n - 0.5) <= 5 * 0.5 / sqrt((double)n), "ag_rand median off");
    rt_free(&r);
    h_end();
}
END_TEST

START_TEST(t_randn_stats)
{
    h_begin(4901);
    int64_t n = 100000;
    ag_manual_seed(77);
    ag_tensor *t = ag_randn(1, &n, 1.5f, 2.0f);
    ck_assert_msg(t && ag_dtype_of(t) == AG_F32 && ag_numel(t) == n, "ag_randn shape/dtype wrong");
    rt r = read_ok(t, "ag_randn");
    stats s = stats_of(&r);
    ck_assert_msg(fabs(s.mean - 1.5) <= 5 * 2.0 / sqrt((double)n), "ag_randn mean %.5f, want 1.5", s.mean);
    ck_assert_msg(fabs(s.sd - 2.0) <= 5 * 2.0 / sqrt(2.0 * (double)n), "ag_randn sd %.5f, want 2", s.sd);
    int64_t in1 = 0, in2 = 0, above = 0;
    for (int64_t i = 0; i < n; i++) {
        double z = (r.data[i] - 1.5) / 2.0;
        ck_assert_msg(isfinite(z), "ag_randn gave a non-finite value at %lld", (long long)i);
        in1 += fabs(z) < 1, in2 += fabs(z) < 2, above += z > 0;
    }
    /* the normal's shape, not only its first two moments */
    double p1 = 0.682689492, p2 = 0.954499736;
    ck_assert_msg(fabs((double)in1 / (double)n - p1) <= 5 * sqrt(p1 * (1 - p1) / (double)n), "ag_randn P(|z|<1) = %.4f",
                  (double)in1 / (double)n);
    ck_assert_msg(fabs((double)in2 / (double)n - p2) <= 5 * sqrt(p2 * (1 - p2) / (double)n), "ag_randn P(|z|<2) = %.4f",
                  (double)in2 / (double)n);
    ck_assert_msg(fabs((double)above / (double)n - 0.5) <= 5 * 0.5 / sqrt((double)n), "ag_randn not symmetric");
    rt_free(&r);
    h_end();
}
END_TEST

/* Attention's semantics beyond the conformance row's numbers: a -inf mask is
 * the causal mask, dropout 1 drops every weight, and bad arguments are refused
 * with the documented status. */
START_TEST(t_attention_semantics)
{
    h_begin(4903);
    int64_t L = 5, E = 4;
    rt qr = rt_new(3, (int64_t[]){2, L, E}), mr = rt_new(2, (int64_t[]){L, L});
    for (int64_t i = 0; i < rt_numel(&qr); i++) qr.data[i] = sin(0.7 * (double)i);
    for (int64_t i = 0; i < L; i++)
        for (int64_t j = 0; j < L; j++) mr.data[i * L + j] = j > i ? -INFINITY : 0.0;
    ag_tensor *q = h_tensor(&qr), *m = h_tensor(&mr);
    rt a = read_ok(ag_scaled_dot_product_attention(q, q, q, NULL, 0.0f, true, 0.0f), "causal");
    rt b = read_ok(ag_scaled_dot_product_attention(q, q, q, m, 0.0f, false, 0.0f), "-inf mask");
    for (int64_t i = 0; i < rt_numel(&a); i++)
        ck_assert_msg(a.data[i] == b.data[i], "causal and the -inf mask differ at %lld: %.9g vs %.9g",
                      (long long)i, a.data[i], b.data[i]);
    ck_assert_msg(a.data[0] == qr.data[0], "the first query sees only the first key: %.9g vs %.9g",
                  a.data[0], qr.data[0]);
    rt z = read_ok(ag_scaled_dot_product_attention(q, q, q, NULL, 1.0f, false, 0.0f), "dropout 1");
    for (int64_t i = 0; i < rt_numel(&z); i++) ck_assert_msg(z.data[i] == 0.0, "dropout 1 left %g", z.data[i]);
    rt_free(&a), rt_free(&b), rt_free(&z);

    ag_tensor *k3 = ag_zeros(3, (int64_t[]){2, L, 3}), *v6 = ag_zeros(3, (int64_t[]){2, 6, E}),
              *x1 = ag_zeros(1, (int64_t[]){E});
    /* mask with causal, k's features, v's positions, 1-D q, dropout 1.5, scale NaN */
    ag_clear_error();
    ck_assert_ptr_null(ag_scaled_dot_product_attention(q, q, q, m, 0.0f, true, 0.0f));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ck_assert_ptr_null(ag_scaled_dot_product_attention(q, k3, q, NULL, 0.0f, false, 0.0f));
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    ck_assert_ptr_null(ag_scaled_dot_product_attention(q, q, v6, NULL, 0.0f, false, 0.0f));
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    ck_assert_ptr_null(ag_scaled_dot_product_attention(x1, q, q, NULL, 0.0f, false, 0.0f));
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    ck_assert_ptr_null(ag_scaled_dot_product_attention(q, q, q, NULL, 1.5f, false, 0.0f));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ck_assert_ptr_null(ag_scaled_dot_product_attention(q, q, q, NULL, 0.0f, false, NAN));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    rt_free(&qr), rt_free(&mr);
    h_end();
}
END_TEST

START_TEST(t_rand_seed)
{
    h_begin(4902);
    int64_t shape[2] = {33, 7};
    for (int normal = 0; normal < 2; normal++) {
        ag_manual_seed(5);
        rt a = read_ok(normal ? ag_randn(2, shape, 0, 1) : ag_rand(2, shape, 0, 1), "rand");
        rt b = read_ok(normal ? ag_randn(2, shape, 0, 1) : ag_rand(2, shape, 0, 1), "rand");
        ag_manual_seed(5);
        rt c = read_ok(normal ? ag_randn(2, shape, 0, 1) : ag_rand(2, shape, 0, 1), "rand");
        ag_manual_seed(6);
        rt d = read_ok(normal ? ag_randn(2, shape, 0, 1) : ag_rand(2, shape, 0, 1), "rand");
        int64_t n = rt_numel(&a), ab = 0, ad = 0, dup = 0;
        for (int64_t i = 0; i < n; i++) {
            ck_assert_msg(a.data[i] == c.data[i], "%s: same seed, different value at %lld", normal ? "randn" : "rand",
                          (long long)i);
            ab += a.data[i] == b.data[i];
            ad += a.data[i] == d.data[i];
            dup += i > 0 && a.data[i] == a.data[i - 1];
        }
        ck_assert_msg(ab == 0 && ad == 0, "%s: the next call or another seed repeated values (%lld, %lld)",
                      normal ? "randn" : "rand", (long long)ab, (long long)ad);
        ck_assert_msg(dup == 0, "%s: neighbouring elements repeat", normal ? "randn" : "rand");
        rt_free(&a), rt_free(&b), rt_free(&c), rt_free(&d);
    }
    h_end();
}
END_TEST

Suite *suite_nn(void)
{
    Suite *s = suite_create("nn");
    TCase *tc = h_tcase_create("nn");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, t_conv2d, 0, NCONV);
    tcase_add_test(tc, t_attention_semantics);
    tcase_add_loop_test(tc, t_pool2d, 0, 2 * NPOOL);
    tcase_add_test(tc, t_max_pool_ties);
    tcase_add_loop_test(tc, t_batch_norm, 0, NBN);
    tcase_add_loop_test(tc, t_batch_norm_running, 0, NBN);
    tcase_add_test(tc, t_layer_norm);
    tcase_add_test(tc, t_embedding);
    tcase_add_loop_test(tc, t_concat_stack, 0, NCAT);
    tcase_add_loop_test(tc, t_gather_scatter, 0, NIDX);
    tcase_add_test(tc, t_dropout_training);
    tcase_add_test(tc, t_dropout_seed);
    tcase_add_test(tc, t_dropout_identity);
    tcase_add_test(tc, t_dropout_grad);
    tcase_add_test(tc, t_rand_stats);
    tcase_add_test(tc, t_randn_stats);
    tcase_add_test(tc, t_rand_seed);
    suite_add_tcase(s, tc);
    return s;
}
