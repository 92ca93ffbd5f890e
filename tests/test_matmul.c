/* matmul (torch.matmul rules: 1-D promotion, broadcast batch dims) and linear
 * against the fp64 reference, on contiguous, transposed, sliced and expanded
 * operands, with gradients; and the backend's gemm op itself (alpha, beta,
 * strides, batches) on shapes that reach each path of the CPU GEMM. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h" /* the backend op, called directly for alpha, beta and strides */
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
    /* shapes for the CPU GEMM's paths (backends/cpu/cpu_gemm.c): */
    {1, {300}, 2, {300, 150}},        /* matrix-vector over several blocks of outputs */
    {2, {70, 1}, 2, {1, 45}},         /* k = 1: an outer product */
    {2, {37, 2}, 2, {2, 50}},         /* k = 2: short slivers */
    {2, {45, 20}, 2, {20, 7}},        /* narrow C (as C^T when A is transposed) */
    {2, {29, 100}, 2, {100, 70}},     /* small kernels on the operands in place, edges */
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

/* ---- the backend's gemm op ------------------------------------------------ */

/* c[b] = alpha a[b] b[b] + beta c[b] through the device's gemm directly, which
 * matmul reaches only with alpha 1, beta 0 and packed operands: A and B stored
 * transposed or not, with padded rows, a batch of B broadcast (stride 0). The
 * shapes reach each path of the CPU GEMM (backends/cpu/cpu_gemm.c) on AVX2 and
 * AVX-512: matrix-vector products (a strided vector included), the small
 * kernels on the operands in place (tiles, B strips packed on the stack, C^T
 * for a narrow C, the short slivers of k <= 2) and the packed panels (edge
 * tiles, A read in place, two k blocks). */
typedef struct gemm_case {
    int64_t batch, m, n, k;
} gemm_case;

static const gemm_case GC[] = {
    {1, 1, 37, 29},   {1, 1, 300, 70}, {1, 45, 1, 33},  {1, 1, 50, 31},   {1, 19, 1, 15},  {1, 1, 1, 1},     {1, 23, 41, 1},
    {1, 37, 50, 2},   {1, 13, 17, 9},  {1, 45, 7, 20},  {1, 33, 16, 40},  {2, 9, 70, 33},
    {3, 5, 3, 4},     {1, 70, 130, 48}, {1, 130, 531, 420}, {1, 700, 20, 800}, {1, 700, 12, 800},
    /* enough work for threads: matrix-vector, and few slivers split by columns */
    {1, 1, 1201, 900}, {1, 1801, 1, 600}, {1, 20, 1400, 40},
    /* rank-1 (the outer-product kernel): row blocks, a vector tail, and threads */
    {1, 150, 70, 1},  {1, 1100, 1000, 1},
};
#define NGC ((int)(sizeof GC / sizeof GC[0]))

typedef struct gemm_run {
    const gemm_case *c;
    bool ta, tb;
    float alpha, beta;
} gemm_run;

/* storage of one operand: batch matrices of rows x cols (the transposed shape
 * when stored transposed), each row padded by 3 */
static int64_t ld_of(int64_t cols) { return cols + 3; }

static ag_tensor *gemm_operand(const float *host, int64_t nb, int64_t rows, int64_t cols,
                               ag_device *dev)
{
    int64_t shape[3] = {nb, rows, ld_of(cols)};
    ag_tensor *h = ag_from_f32(host, 3, shape);
    return h ? ag_to_device(h, dev) : NULL;
}

/* The view of a stored operand as [batch, r, c] (rs, cs by the transpose flag) */
static ag_view gemm_view(const ag_tensor *t, int64_t batch, int64_t bs, int64_t r, int64_t c,
                         bool trans, int64_t ld)
{
    ag_view v = ag__view(t);
    v.ndim = 3;
    v.shape[0] = batch, v.shape[1] = r, v.shape[2] = c;
    v.stride[0] = bs;
    v.stride[1] = trans ? 1 : ld;
    v.stride[2] = trans ? ld : 1;
    return v;
}

static void gemm_fill(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)h_uniform(-1.0, 1.0);
}

/* Runs one case into got (batch * m * n floats) from the host data. */
static void gemm_call(const gemm_run *r, const float *ha, const float *hb, const float *hc,
                      float *got)
{
    const gemm_case *c = r->c;
    ag_device *dev = ag_device_default();
    /* B's batch is broadcast when there is more than one */
    const int64_t nba = c->batch, nbb = 1;
    const int64_t ar = r->ta ? c->k : c->m, ac = r->ta ? c->m : c->k;
    const int64_t br = r->tb ? c->n : c->k, bc = r->tb ? c->k : c->n;
    ag_scope_begin();
    ag_tensor *ta = gemm_operand(ha, nba, ar, ac, dev), *tb = gemm_operand(hb, nbb, br, bc, dev);
    ag_tensor *tc = ag_to_device(ag_from_f32(hc, 3, (int64_t[]){c->batch, c->m, c->n}), dev);
    H_REQUIRE(ta && tb && tc, "gemm operands: %s", ag_last_error());
    ag_view va = gemm_view(ta, c->batch, ar * ld_of(ac), c->m, c->k, r->ta, ld_of(ac));
    ag_view vb = gemm_view(tb, c->batch, 0, c->k, c->n, r->tb, ld_of(bc));
    ag_view vc = ag__view(tc);
    ag_status st = AG_LAUNCH(dev, gemm, r->alpha, r->beta, &vc, &va, &vb);
    H_REQUIRE(st == AG_OK, "gemm: %s", ag_last_error());
    H_REQUIRE(ag_to_host(tc, got, (size_t)(c->batch * c->m * c->n) * sizeof *got) == AG_OK,
              "gemm result: %s", ag_last_error());
    ag_scope_end();
}

static void gemm_check(const gemm_run *r)
{
    const gemm_case *c = r->c;
    const int64_t ar = r->ta ? c->k : c->m, ac = r->ta ? c->m : c->k;
    const int64_t br = r->tb ? c->n : c->k, bc = r->tb ? c->k : c->n;
    const int64_t na = c->batch * ar * ld_of(ac), nb = br * ld_of(bc), nc = c->batch * c->m * c->n;
    float *ha = malloc((size_t)na * sizeof *ha), *hb = malloc((size_t)nb * sizeof *hb);
    float *hc = malloc((size_t)nc * sizeof *hc), *got = malloc((size_t)nc * sizeof *got);
    H_REQUIRE(ha && hb && hc && got, "out of memory");
    gemm_fill(ha, na);
    gemm_fill(hb, nb);
    /* beta == 0 must ignore C, NaN included */
    if (r->beta == 0.0f)
        for (int64_t i = 0; i < nc; i++) hc[i] = NAN;
    else
        gemm_fill(hc, nc);
    gemm_call(r, ha, hb, hc, got);
    for (int64_t q = 0; q < c->batch; q++)
        for (int64_t i = 0; i < c->m; i++)
            for (int64_t j = 0; j < c->n; j++) {
                double s = 0.0, mag = 0.0;
                for (int64_t p = 0; p < c->k; p++) {
                    const double x = ha[q * ar * ld_of(ac) + (r->ta ? p * ld_of(ac) + i : i * ld_of(ac) + p)];
                    const double y = hb[r->tb ? j * ld_of(bc) + p : p * ld_of(bc) + j];
                    s += x * y;
                    mag += fabs(x * y);
                }
                const int64_t o = (q * c->m + i) * c->n + j;
                double want = r->alpha * s, tol = fabs(r->alpha) * mag * (double)(c->k + 1);
                if (r->beta != 0.0f) {
                    want += r->beta * (double)hc[o];
                    tol += 2.0 * fabs(r->beta * (double)hc[o]);
                }
                /* the worst-case error of a float sum of k products, doubled */
                tol = 2.0 * tol * 0x1p-24 + 1e-30;
                H_REQUIRE(fabs(got[o] - want) <= tol,
                          "gemm %lld x [%lld x %lld%s] x [%lld%s x %lld], alpha %g beta %g: "
                          "C[%lld][%lld][%lld] = %.9g, want %.9g (tolerance %.3g)",
                          (long long)c->batch, (long long)c->m, (long long)c->k, r->ta ? "^T" : "",
                          (long long)c->k, r->tb ? "^T" : "", (long long)c->n, r->alpha, r->beta,
                          (long long)q, (long long)i, (long long)j, got[o], want, tol);
            }
    /* On the CPU every element is summed in an order fixed by the shape, not
     * by how many threads share the product. */
    ag_device_props props;
    if (ag_device_info(ag_device_default(), &props) == AG_OK && strcmp(props.backend, "cpu") == 0) {
        const char *prev = getenv("AG_NUM_THREADS");
        char *saved = prev ? strdup(prev) : NULL;
        float *other = malloc((size_t)nc * sizeof *other);
        H_REQUIRE(other, "out of memory");
        for (int t = 1; t <= 3; t++) {
            char nt[4];
            snprintf(nt, sizeof nt, "%d", t);
            setenv("AG_NUM_THREADS", nt, 1);
            gemm_call(r, ha, hb, hc, other);
            for (int64_t o = 0; o < nc; o++)
                H_REQUIRE(memcmp(&other[o], &got[o], sizeof *got) == 0,
                          "gemm %lld x %lld x %lld%s%s: element %lld is %.9g on %d threads, "
                          "%.9g on the default count",
                          (long long)c->m, (long long)c->n, (long long)c->k, r->ta ? " A^T" : "",
                          r->tb ? " B^T" : "", (long long)o, other[o], t, got[o]);
        }
        if (saved)
            setenv("AG_NUM_THREADS", saved, 1);
        else
            unsetenv("AG_NUM_THREADS");
        free(saved);
        free(other);
    }
    free(ha);
    free(hb);
    free(hc);
    free(got);
}

START_TEST(t_gemm_contract)
{
    static const float AB[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.25f, -0.5f}};
    h_begin(2400 + (uint64_t)_i);
    for (int t = 0; t < 4; t++)
        for (size_t ab = 0; ab < sizeof AB / sizeof AB[0]; ab++) {
            const gemm_run r = {&GC[_i], t & 1, t >> 1, AB[ab][0], AB[ab][1]};
            gemm_check(&r);
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
    tcase_add_loop_test(tc, t_gemm_contract, 0, NGC);
    suite_add_tcase(s, tc);
    return s;
}
