/* matmul (torch.matmul rules: 1-D promotion, broadcast batch dims) and linear
 * against the fp64 reference, on contiguous, transposed, sliced and expanded
 * operands, with gradients. */
#include <stdio.h>

#include "harness.h"
#include "suites.h"

typedef struct mm_case {
    int na;
    int64_t a[4];
    int nb;
    int64_t b[4];
} mm_case;

static const mm_case MM[] = {
    {1, {5}, 1, {5}},                 /* 1-D @ 1-D -> 0-dim */
    {1, {1}, 1, {1}},
    {1, {1100}, 1, {1100}},
    {1, {5}, 2, {5, 3}},              /* 1-D @ 2-D */
    {1, {7}, 2, {7, 1}},
    {2, {4, 5}, 1, {5}},              /* 2-D @ 1-D */
    {2, {33, 7}, 1, {7}},
    {2, {3, 7}, 2, {7, 2}},           /* 2-D @ 2-D, odd sizes */
    {2, {1, 1}, 2, {1, 1}},
    {2, {33, 17}, 2, {17, 9}},
    {2, {5, 33}, 2, {33, 7}},
    {2, {2, 1000}, 2, {1000, 3}},     /* long inner dimension */
    {2, {40, 37}, 2, {37, 41}},       /* larger than a typical register tile */
    {1, {4}, 3, {2, 4, 3}},           /* 1-D @ batched */
    {3, {2, 3, 4}, 1, {4}},           /* batched @ 1-D */
    {4, {2, 1, 3, 4}, 3, {5, 4, 6}},  /* broadcast batch dims */
    {3, {3, 4, 5}, 3, {3, 5, 2}},
    {3, {1, 3, 4}, 2, {4, 2}},
    {2, {4, 5}, 3, {2, 5, 3}},
};
#define NMM ((int)(sizeof MM / sizeof MM[0]))

static ag_tensor *op_matmul(ag_tensor *const *in, const void *arg)
{
    (void)arg;
    return ag_matmul(in[0], in[1]);
}

static rt rf_matmul(const rt *const *in, const void *arg)
{
    (void)arg;
    return ref_matmul(in[0], in[1]);
}

static void describe(char *buf, size_t size, const char *op, const h_in *a, const h_in *b)
{
    char sa[64], sb[64];
    snprintf(buf, size, "%s %s (%s) @ %s (%s)", op, rt_shape_str(a->val.ndim, a->val.shape, sa, sizeof sa),
             h_layout_name(a->layout), rt_shape_str(b->val.ndim, b->val.shape, sb, sizeof sb),
             h_layout_name(b->layout));
}

START_TEST(t_matmul_forward)
{
    const mm_case *c = &MM[_i];
    int64_t K = c->a[c->na - 1];
    h_begin(2000 + (uint64_t)_i);
    for (int la = 0; la < H_LAYOUT_COUNT; la++)
        for (int lb = 0; lb < H_LAYOUT_COUNT; lb++) {
            h_in a = h_input(c->na, c->a, h_dist_normal(), (h_layout)la);
            h_in b = h_input(c->nb, c->b, h_dist_normal(), (h_layout)lb);
            char what[256];
            describe(what, sizeof what, "matmul", &a, &b);
            h_expect(what, ag_matmul(a.t, b.t), ref_matmul(&a.val, &b.val), h_tol_get("sum", K));
        }
    h_end();
}
END_TEST

START_TEST(t_matmul_grad)
{
    const mm_case *c = &MM[_i];
    int64_t K = c->a[c->na - 1];
    h_begin(2100 + (uint64_t)_i);
    /* transposed operands exercise the transpose flags of the backward products too */
    static const h_layout L[][2] = {{H_CONTIG, H_CONTIG}, {H_TRANSPOSED, H_TRANSPOSED}, {H_SLICED, H_EXPANDED}};
    for (size_t k = 0; k < sizeof L / sizeof L[0]; k++) {
        h_in in[2] = {h_input(c->na, c->a, h_dist_normal(), L[k][0]), h_input(c->nb, c->b, h_dist_normal(), L[k][1])};
        char what[256];
        describe(what, sizeof what, "grad matmul", &in[0], &in[1]);
        /* the output dims are the sums in the backward products */
        int64_t len = K;
        for (int i = 0; i < c->na; i++) len = len > c->a[i] ? len : c->a[i];
        for (int i = 0; i < c->nb; i++) len = len > c->b[i] ? len : c->b[i];
        h_gradcheck(&(h_gc){.what = what, .n = 2, .in = in, .op = op_matmul, .ref = rf_matmul,
                            .tol = h_tol_get("sum", len)});
    }
    h_end();
}
END_TEST

/* ---- linear --------------------------------------------------------------- */

typedef struct lin_case {
    int nx;
    int64_t x[3];
    int64_t out;
    bool bias;
} lin_case;

static const lin_case LIN[] = {
    {2, {4, 5}, 3, true},  {2, {4, 5}, 3, false}, {3, {2, 3, 5}, 7, true},
    {1, {7}, 4, true},     {2, {1, 1}, 1, true},  {2, {33, 17}, 9, false},
    {2, {3, 300}, 5, true},
};

static ag_tensor *op_linear(ag_tensor *const *in, const void *arg)
{
    bool bias = *(const bool *)arg;
    return ag_linear(in[0], in[1], bias ? in[2] : NULL);
}

static rt rf_linear(const rt *const *in, const void *arg)
{
    bool bias = *(const bool *)arg;
    return ref_linear(in[0], in[1], bias ? in[2] : NULL);
}

START_TEST(t_linear)
{
    const lin_case *c = &LIN[_i];
    int64_t K = c->x[c->nx - 1];
    h_begin(2200 + (uint64_t)_i);
    for (int l = 0; l < H_LAYOUT_COUNT; l++) {
        h_in in[3] = {h_input(c->nx, c->x, h_dist_normal(), (h_layout)l),
                      /* a transposed weight is the [in, out] storage some callers keep */
                      h_input(2, (int64_t[]){c->out, K}, h_dist_normal(), (h_layout)((l + 1) % H_LAYOUT_COUNT)),
                      h_input(1, &c->out, h_dist_normal(), (h_layout)((l + 2) % H_LAYOUT_COUNT))};
        char what[256], sx[64];
        snprintf(what, sizeof what, "linear x %s (%s), W [%lld, %lld] (%s), %s",
                 rt_shape_str(c->nx, c->x, sx, sizeof sx), h_layout_name(in[0].layout), (long long)c->out,
                 (long long)K, h_layout_name(in[1].layout), c->bias ? "bias" : "no bias");
        h_expect(what, ag_linear(in[0].t, in[1].t, c->bias ? in[2].t : NULL),
                 ref_linear(&in[0].val, &in[1].val, c->bias ? &in[2].val : NULL), h_tol_get("sum", K + 1));
        h_gradcheck(&(h_gc){.what = what, .n = c->bias ? 3 : 2, .in = in, .op = op_linear, .ref = rf_linear,
                            .arg = &c->bias, .tol = h_tol_get("sum", K > 16 ? K : 16)});
    }
    h_end();
}
END_TEST

/* matmul of a tensor with its own transpose: both operands share storage, and the
 * gradient from both paths must add up on the one leaf */
static ag_tensor *op_self(ag_tensor *const *in, const void *arg)
{
    (void)arg;
    return ag_matmul(in[0], ag_transpose(in[0], 0, 1));
}

static rt rf_self(const rt *const *in, const void *arg)
{
    (void)arg;
    rt t = ref_transpose(in[0], 0, 1);
    rt y = ref_matmul(in[0], &t);
    rt_free(&t);
    return y;
}

START_TEST(t_matmul_self)
{
    h_begin(2300);
    for (int l = 0; l < H_LAYOUT_COUNT; l++) {
        h_in a = h_input(H_S(6, 9), h_dist_normal(), (h_layout)l);
        ag_tensor *in[1] = {a.t};
        h_expect("a @ a^T", op_self(in, NULL), rf_self((const rt *const[]){&a.val}, NULL), h_tol_get("sum", 9));
        h_gradcheck(&(h_gc){.what = "grad a @ a^T", .n = 1, .in = &a, .op = op_self, .ref = rf_self,
                            .tol = h_tol_get("sum", 9)});
    }
    h_end();
}
END_TEST

Suite *suite_matmul(void)
{
    Suite *s = suite_create("matmul");
    TCase *tc = h_tcase_create("matmul");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, t_matmul_forward, 0, NMM);
    tcase_add_loop_test(tc, t_matmul_grad, 0, NMM);
    tcase_add_loop_test(tc, t_linear, 0, (int)(sizeof LIN / sizeof LIN[0]));
    tcase_add_test(tc, t_matmul_self);
    suite_add_tcase(s, tc);
    return s;
}
