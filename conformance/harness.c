/* Test harness (see harness.h): paired inputs, comparisons, gradient checks. */
#include "harness.h"

/* Absolute floor of gradient checks per unit of |u| (and |v|): two float ulps
 * at 1. A gradient element that is a float sum of O(|u|) terms cancelling to
 * near 0 carries rounding of this size on any backend (a sum in another order
 * rounds differently), so a tighter floor fails correct kernels by luck. */
#define H_GRAD_FLOOR 2.4e-7

#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H_MAX_IN 8

/* ---- tolerances ----------------------------------------------------------
 *
 * The one table of accuracy classes. Every op's class is named by its row in the
 * op table (optable.c), which drives the conformance matrix, `anygrad check` and
 * docs/ops.md; the op suites pick classes by name too. docs/testing.md justifies
 * each number. want is always the fp64 reference on the very float32 inputs the
 * library saw, so the only error measured is the library's own float32
 * arithmetic (a want beyond the float range counts as the infinity float32 must
 * round it to).
 *
 * Metric ulp (element-wise ops): the distance |got - want| in units of the
 * float32 spacing at want. Results below FLT_MIN may come back flushed to zero
 * (GPUs flush subnormals); signed zeros are equal.
 *  exact    no rounding at all: neg, abs, relu, clamp, maximum, minimum, the
 *           comparisons, where, max/min/argmax/argmin, views, concat, stack,
 *           gather, embedding, max_pool2d, dropout's identity cases: 0 ulp.
 *  arith    one or two float32 roundings (0.5 ulp each; div may be a * (1/b)):
 *           add, sub, mul, div, square, leaky_relu, the scalar ops: 2 ulp.
 *  ulp      libm-style functions and short compositions of them: exp, log, sqrt,
 *           rsqrt, sigmoid, tanh, silu, softplus, pow. 16 ulp: OpenCL's full
 *           profile allows 3-5 ulp for exp/log/tanh and 16 for pow; sigmoid and
 *           silu add a division and a product on top.
 * Metric rel (everything else): |got - want| <= rtol |want| + atol, i.e. a
 * relative error with the floor atol/rtol for results that cancel to ~0.
 *  transc   compositions that cancel near 0 in any float32 form: elu (exp - 1),
 *           gelu (1 + erf), gelu_tanh (1 + tanh) at x << 0, bce_with_logits per
 *           element: rtol 4e-6 (16 ulp = 2e-6 for erf in OpenCL), atol 1e-6.
 *  sum      reductions over n terms: sum, var, matmul and linear (n = K), conv2d (n = C/g*KH*KW),
 *           avg_pool2d, scatter_add, mse, nll. Rounding grows like sqrt(n) for
 *           pairwise/blocked summation; naive float accumulation of zero-mean O(1)
 *           terms errs by about 6e-8 * n / sqrt(2), which rtol 1e-6 * sqrt(n),
 *           atol 1.5e-5 * sqrt(n) still cover up to n of a few thousand.
 *  mean     mean: the sum class with atol / n, a mean's error is its sum's over n.
 *  softmax  softmax, log_softmax, cross_entropy: transc accuracy per element,
 *           growing with sqrt(n) through the sum of exponentials.
 *  norm     batch_norm, layer_norm: mean and variance over n values (sqrt(n)
 *           growth), then a subtraction that cancels to O(eps |x| / std).
 *
 * Gradients (column grad): compared with central differences of the reference in
 * double (truncation ~h^2 = 1e-10, negligible), so the tolerance only absorbs the
 * float32 backward pass, relative to the largest gradient component of an input
 * (element-wise) or to the size of the projected terms (directional): 1e-5 for a
 * few roundings, 1e-4 for transcendental chains and normalisation, scaled by
 * sqrt(n) for the growing classes.
 */
static const h_tol_class TOL[] = {
    {"exact", H_METRIC_ULP, 0.0, 0.0, 0.0, 1e-5, false, "no rounding: data movement, selection, sign", false},
    {"arith", H_METRIC_ULP, 0.0, 0.0, 2.0, 1e-5, false, "one or two correctly rounded fp32 operations", false},
    {"ulp", H_METRIC_ULP, 0.0, 0.0, 16.0, 1e-4, false, "libm-class functions: OpenCL allows 3-5 ulp (16 for pow), plus a division or product", false},
    {"transc", H_METRIC_REL, 4e-6, 1e-6, 0.0, 1e-4, false, "cancels near 0 (exp - 1, 1 + erf): 16 ulp relative, 1e-6 absolute floor", false},
    {"sum", H_METRIC_REL, 1e-6, 1.5e-5, 0.0, 1e-5, true, "n-term fp32 accumulation: error grows like sqrt(n)", false},
    {"mean", H_METRIC_REL, 1e-6, 1.5e-5, 0.0, 1e-5, true, "a sum's error, divided by n with the result (atol / n)", true},
    {"softmax", H_METRIC_REL, 2e-6, 1e-6, 0.0, 2e-5, true, "exp per element plus an n-term sum of exponentials", false},
    {"norm", H_METRIC_REL, 4e-6, 4e-6, 0.0, 1e-4, true, "n-term mean and variance, then a cancelling subtraction", false},
    {NULL, H_METRIC_REL, 0, 0, 0, 0, false, NULL, false},
};

const h_tol_class *h_tol_class_at(int i)
{
    return (i >= 0 && i < (int)(sizeof TOL / sizeof TOL[0]) - 1) ? &TOL[i] : NULL;
}

h_tol h_tol_get(const char *cls, int64_t len)
{
    for (const h_tol_class *c = TOL; c->name; c++) {
        if (strcmp(c->name, cls)) continue;
        double n = (double)(len > 1 ? len : 1), k = c->grows ? sqrt(n) : 1.0;
        return (h_tol){c->rtol * k, c->atol * k / (c->per_n ? n : 1.0), c->grad * k, c->metric, c->ulps};
    }
    h_fail("unknown tolerance class '%s'", cls);
}

h_tol h_tol_scaled(h_tol t, double f)
{
    /* an exact class stays exact: two correct backends agree bit for bit */
    t.rtol *= f, t.atol *= f, t.grad *= f, t.ulps *= f;
    return t;
}

/* ---- failures ------------------------------------------------------------ */

static h_fail_fn fail_handler;
static jmp_buf *try_env;          /* innermost h_try, if any */
static char *try_msg;
static int try_size;
static int scope_depth;           /* anygrad scopes the harness opened */

h_fail_fn h_set_fail_handler(h_fail_fn fn)
{
    h_fail_fn old = fail_handler;
    fail_handler = fn;
    return old;
}

_Noreturn void h_fail(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (try_env) {
        snprintf(try_msg, (size_t)try_size, "%s", msg);
        longjmp(*try_env, 1);
    }
    if (fail_handler) fail_handler(msg);
    fprintf(stderr, "harness failure: %s\n", msg);
    abort();
}

static void free_tracked(void);

bool h_try(void (*fn)(void *), void *ctx, char *msg, int size)
{
    jmp_buf env, *outer = try_env;
    char *outer_msg = try_msg;
    int outer_size = try_size;
    /* volatile: read after longjmp */
    volatile int depth = scope_depth;
    volatile bool ok = true;
    if (size > 0) msg[0] = '\0';
    try_env = &env, try_msg = msg, try_size = size;
    if (setjmp(env) == 0) {
        fn(ctx);
    } else {
        ok = false;
        while (scope_depth > depth) {
            ag_scope_end();
            scope_depth--;
        }
        if (depth == 0) free_tracked();
        ag_clear_error();
    }
    try_env = outer, try_msg = outer_msg, try_size = outer_size;
    return ok;
}

/* ---- bookkeeping --------------------------------------------------------- */

static rt **tracked;
static int ntracked, captracked;

rt *h_track(rt r)
{
    if (ntracked == captracked) {
        int cap = captracked ? 2 * captracked : 64;
        rt **p = realloc(tracked, sizeof(rt *) * (size_t)cap);
        H_REQUIRE(p != NULL, "harness: out of memory");
        tracked = p, captracked = cap;
    }
    rt *slot = malloc(sizeof(rt));
    H_REQUIRE(slot != NULL, "harness: out of memory");
    *slot = r;
    tracked[ntracked++] = slot;
    return slot;
}

static uint64_t rng_state;

void h_begin(uint64_t seed)
{
    rng_state = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    ag_clear_error();
    ag_scope_begin();
    scope_depth++;
}

void h_end(void)
{
    ag_scope_end();
    scope_depth--;
    free_tracked();
}

static void free_tracked(void)
{
    for (int i = 0; i < ntracked; i++) {
        rt_free(tracked[i]);
        free(tracked[i]);
    }
    free(tracked);
    tracked = NULL, ntracked = captracked = 0;
}

/* ---- random numbers: splitmix64, independent of the library's Philox ------ */

uint64_t h_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double h_uniform(double lo, double hi) { return lo + (hi - lo) * (double)(h_next() >> 11) * 0x1p-53; }

double h_normal(void)
{
    double u = ((double)(h_next() >> 11) + 1.0) * 0x1p-53; /* (0, 1] */
    double v = (double)(h_next() >> 11) * 0x1p-53;
    return sqrt(-2.0 * log(u)) * cos(2.0 * 3.14159265358979323846 * v);
}

int64_t h_randint(int64_t lo, int64_t hi) { return lo + (int64_t)(h_next() % (uint64_t)(hi - lo)); }

h_dist h_dist_normal(void) { return (h_dist){.kind = H_DIST_NORMAL, .a = 0.0, .b = 1.0}; }
h_dist h_dist_wide(void) { return (h_dist){.kind = H_DIST_UNIFORM, .a = -8.0, .b = 8.0}; }
h_dist h_dist_positive(void) { return (h_dist){.kind = H_DIST_UNIFORM, .a = 0.5, .b = 3.0}; }
h_dist h_dist_uniform(double lo, double hi) { return (h_dist){.kind = H_DIST_UNIFORM, .a = lo, .b = hi}; }

h_dist h_dist_away(h_dist d, double kink, double margin)
{
    if (d.nkinks < 4) d.kink[d.nkinks++] = kink;
    if (margin > d.margin) d.margin = margin;
    return d;
}

double h_draw(const h_dist *d)
{
    if (d->npool > 0 && h_uniform(0, 1) < d->pool_p) return (double)(float)d->pool[h_next() % (uint64_t)d->npool];
    for (int tries = 0;; tries++) {
        double x = d->kind == H_DIST_NORMAL ? d->a + d->b * h_normal() : h_uniform(d->a, d->b);
        x = (double)(float)x;
        bool near = false;
        for (int k = 0; k < d->nkinks; k++) near |= fabs(x - d->kink[k]) < d->margin;
        if (!near || tries > 1000) return x;
    }
}

/* ---- layouts ------------------------------------------------------------- */

const char *h_layout_name(h_layout l)
{
    static const char *names[H_LAYOUT_COUNT] = {"contiguous", "transposed", "sliced", "expanded"};
    return (l >= 0 && l < H_LAYOUT_COUNT) ? names[l] : "?";
}

static int expand_axis(int ndim, const int64_t *shape)
{
    for (int i = 0; i < ndim; i++)
        if (shape[i] > 1) return i;
    return -1;
}

/* The layout actually used: one that the shape cannot carry falls back. */
static h_layout usable_layout(h_layout l, int ndim, const int64_t *shape)
{
    if (l == H_TRANSPOSED && ndim < 2) l = H_SLICED;
    if (l == H_SLICED && ndim < 1) l = H_CONTIG;
    if (l == H_EXPANDED && expand_axis(ndim, shape) < 0) l = H_CONTIG;
    return l;
}

static void base_shape(h_layout l, int ndim, const int64_t *shape, int64_t *bs)
{
    memcpy(bs, shape, sizeof(int64_t) * (size_t)ndim);
    if (l == H_TRANSPOSED) bs[ndim - 2] = shape[ndim - 1], bs[ndim - 1] = shape[ndim - 2];
    if (l == H_SLICED) bs[ndim - 1] = 2 * shape[ndim - 1] + 1;
    if (l == H_EXPANDED) bs[expand_axis(ndim, shape)] = 1;
}

/* The view's values from the base's, by the reference index mappings. */
static rt view_ref(const rt *base, h_layout l, int ndim, const int64_t *shape)
{
    switch (l) {
    case H_TRANSPOSED: return ref_transpose(base, ndim - 2, ndim - 1);
    case H_SLICED: return ref_slice(base, ndim - 1, 1, base->shape[ndim - 1], 2);
    case H_EXPANDED: return ref_expand(base, ndim, shape);
    default: return rt_clone(base);
    }
}

static ag_tensor *view_ag(ag_tensor *leaf, h_layout l, int ndim, const int64_t *shape)
{
    switch (l) {
    case H_TRANSPOSED: return ag_transpose(leaf, ndim - 2, ndim - 1);
    case H_SLICED: return ag_slice(leaf, ndim - 1, 1, ag_dim(leaf, ndim - 1), 2);
    case H_EXPANDED: return ag_expand(leaf, ndim, shape);
    default: return leaf;
    }
}

ag_tensor *h_view(const h_in *in)
{
    ag_tensor *v = view_ag(in->leaf, in->layout, in->val.ndim, in->val.shape);
    H_REQUIRE(v != NULL, "making a %s view failed: %s", h_layout_name(in->layout), ag_last_error());
    return v;
}

ag_tensor *h_tensor(rt *r)
{
    int64_t n = rt_numel(r);
    float *f = malloc(sizeof(float) * (size_t)(n ? n : 1));
    H_REQUIRE(f != NULL, "harness: out of memory");
    for (int64_t i = 0; i < n; i++) {
        f[i] = (float)r->data[i];
        r->data[i] = (double)f[i];
    }
    int64_t dummy[1] = {1};
    ag_tensor *t = ag_from_f32(f, r->ndim, r->ndim ? r->shape : dummy);
    free(f);
    H_REQUIRE(t != NULL, "ag_from_f32 failed: %s", ag_last_error());
    return t;
}

static h_in make_input(int ndim, const int64_t *shape, const double *values, const h_dist *d,
                       h_layout layout)
{
    h_in in;
    memset(&in, 0, sizeof in);
    in.layout = usable_layout(layout, ndim, shape);
    int64_t bs[AG_MAX_DIMS];
    base_shape(in.layout, ndim, shape, bs);
    rt base = rt_new(ndim, bs);
    H_REQUIRE(rt_valid(&base), "harness: bad input shape");
    if (values) {
        /* invert the view mapping so that the view shows these values */
        rt logical = rt_from(values, ndim, shape);
        rt src = in.layout == H_TRANSPOSED ? ref_transpose(&logical, ndim - 2, ndim - 1)
                 : in.layout == H_EXPANDED
                     ? ref_slice(&logical, expand_axis(ndim, shape), 0, 1, 1)
                     : rt_clone(&logical);
        if (in.layout == H_SLICED) {
            int64_t rows = rt_numel(&base) / bs[ndim - 1], n = shape[ndim - 1];
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < n; j++) base.data[r * bs[ndim - 1] + 1 + 2 * j] = src.data[r * n + j];
        } else {
            memcpy(base.data, src.data, sizeof(double) * (size_t)rt_numel(&base));
        }
        rt_free(&logical);
        rt_free(&src);
    } else {
        for (int64_t i = 0; i < rt_numel(&base); i++) base.data[i] = h_draw(d);
    }
    if (in.layout == H_SLICED) { /* rows of 2n+1: the even positions are the gaps */
        int64_t len = bs[ndim - 1];
        for (int64_t i = 0; i < rt_numel(&base); i++)
            if ((i % len) % 2 == 0) base.data[i] = NAN;
    }
    in.leaf = h_tensor(&base);
    in.t = view_ag(in.leaf, in.layout, ndim, shape);
    H_REQUIRE(in.t != NULL, "making a %s input view failed: %s", h_layout_name(in.layout),
                  ag_last_error());
    in.base = *h_track(base);
    in.val = *h_track(view_ref(&in.base, in.layout, ndim, shape));
    return in;
}

h_in h_input(int ndim, const int64_t *shape, h_dist d, h_layout layout)
{
    return make_input(ndim, shape, NULL, &d, layout);
}

h_in h_input_values(int ndim, const int64_t *shape, const double *values, h_layout layout)
{
    return make_input(ndim, shape, values, NULL, layout);
}

h_in h_input_int(int ndim, const int64_t *shape, const int32_t *values)
{
    h_in in;
    memset(&in, 0, sizeof in);
    in.is_int = true;
    rt r = rt_new(ndim, shape);
    for (int64_t i = 0; i < rt_numel(&r); i++) r.data[i] = values[i];
    int64_t dummy[1] = {1};
    in.leaf = in.t = ag_from_i32(values, ndim, ndim ? shape : dummy);
    H_REQUIRE(in.t != NULL, "ag_from_i32 failed: %s", ag_last_error());
    in.base = *h_track(r);
    in.val = in.base;
    return in;
}

h_in h_input_randint(int ndim, const int64_t *shape, int32_t lo, int32_t hi)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    int32_t *v = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    H_REQUIRE(v != NULL, "harness: out of memory");
    for (int64_t i = 0; i < n; i++) v[i] = (int32_t)h_randint(lo, hi);
    h_in in = h_input_int(ndim, shape, v);
    free(v);
    return in;
}

rt h_read(const ag_tensor *t)
{
    if (!t) return rt_invalid();
    int64_t shape[AG_MAX_DIMS];
    int nd = ag_shape(t, shape);
    if (nd < 0) return rt_invalid();
    rt r = rt_new(nd, shape);
    int64_t n = rt_numel(&r);
    ag_dtype dt = ag_dtype_of(t);
    if (dt != AG_F32 && dt != AG_I32) {
        rt_free(&r);
        return rt_invalid();
    }
    void *buf = malloc(4 * (size_t)(n ? n : 1));
    if (!buf || ag_to_host(t, buf, 4 * (size_t)n) != AG_OK) {
        free(buf);
        rt_free(&r);
        return rt_invalid();
    }
    for (int64_t i = 0; i < n; i++)
        r.data[i] = dt == AG_F32 ? (double)((float *)buf)[i] : (double)((int32_t *)buf)[i];
    free(buf);
    return r;
}

/* ---- comparison ---------------------------------------------------------- */

static void index_str(int64_t flat, int ndim, const int64_t *shape, char *buf, int size)
{
    int64_t idx[AG_MAX_DIMS];
    for (int i = ndim - 1; i >= 0; i--) {
        idx[i] = shape[i] ? flat % shape[i] : 0;
        flat = shape[i] ? flat / shape[i] : 0;
    }
    rt_shape_str(ndim, idx, buf, size);
}

/* float32 spacing at |w|, never below the subnormal step */
static double ulp_at(double w)
{
    double a = fabs(w);
    if (a < FLT_MIN) return 0x1p-149;
    int e;
    frexp(a, &e); /* a = m 2^e, m in [0.5, 1) */
    return ldexp(1.0, e - 24);
}

/* AG_RESULT_HASH=1: every result measured is folded into one FNV-1a hash,
 * printed at exit, so a refactoring can show its results are bit-identical. */
static uint64_t result_hash = 0xcbf29ce484222325u;
static void hash_bytes(const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) result_hash = (result_hash ^ ((const unsigned char *)p)[i]) * 0x100000001b3u;
}
static void hash_print(void) { fprintf(stderr, "result hash %016llx\n", (unsigned long long)result_hash); }
static void hash_result(const char *what, const rt *got)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("AG_RESULT_HASH");
        on = e && *e && strcmp(e, "0") != 0;
        if (on) atexit(hash_print);
    }
    if (!on) return;
    hash_bytes(what, strlen(what));
    if (!rt_valid(got)) return;
    for (int64_t i = 0, n = rt_numel(got); i < n; i++) {
        float f = (float)got->data[i];
        if (f != f) f = NAN; /* one NaN: payloads may differ by compiler */
        hash_bytes(&f, sizeof f);
    }
}

double h_measure(const char *what, const rt *got, const rt *want, h_tol tol, char *msg, int size)
{
    char s1[96], s2[96];
    hash_result(what, got);
    if (size > 0) msg[0] = '\0';
    if (!rt_valid(want)) {
        snprintf(msg, (size_t)size, "%s: the reference rejected the arguments", what);
        return INFINITY;
    }
    if (!rt_valid(got)) {
        snprintf(msg, (size_t)size, "%s: could not read the result back: %s", what, ag_last_error());
        return INFINITY;
    }
    if (!rt_same_shape(got, want)) {
        snprintf(msg, (size_t)size, "%s: shape %s, want %s", what,
                 rt_shape_str(got->ndim, got->shape, s1, sizeof s1),
                 rt_shape_str(want->ndim, want->shape, s2, sizeof s2));
        return INFINITY;
    }
    int64_t n = rt_numel(want), worst = -1, nbad = 0;
    double worst_ratio = 0, max_abs = 0, max_rel = 0, max_ulp = 0;
    double floor_ = tol.rtol > 0 ? tol.atol / tol.rtol : 0;
    for (int64_t i = 0; i < n; i++) {
        double g = got->data[i], w = want->data[i], ratio;
        if (isfinite(w) && isinf((float)w)) w = (double)(float)w; /* float overflow is inf */
        if (isnan(w) || isinf(w) || isnan(g) || isinf(g)) {
            bool same = (isnan(w) && isnan(g)) || (isinf(w) && g == w);
            ratio = same ? 0.0 : INFINITY;
        } else {
            double err = fabs(g - w);
            double rel = err / fmax(fabs(w), floor_ > 0 ? floor_ : 1e-6);
            max_abs = fmax(max_abs, err);
            max_rel = fmax(max_rel, rel);
            if (tol.metric == H_METRIC_ULP) {
                /* a result in the subnormal range may be flushed to zero */
                double u = (fabs(w) < FLT_MIN && fabs(g) < FLT_MIN) ? 0.0 : err / ulp_at(w);
                max_ulp = fmax(max_ulp, u);
                ratio = tol.ulps > 0 ? u / tol.ulps : (u > 0 ? INFINITY : 0.0);
            } else {
                double allowed = tol.rtol * fabs(w) + tol.atol;
                ratio = allowed > 0 ? err / allowed : (err > 0 ? INFINITY : 0.0);
            }
        }
        if (ratio > 1.0) nbad++;
        if (ratio > worst_ratio || (worst < 0 && ratio > 1.0)) worst_ratio = ratio, worst = i;
    }
    if (nbad == 0) return worst_ratio;
    index_str(worst, want->ndim, want->shape, s2, sizeof s2);
    char tolstr[96];
    if (tol.metric == H_METRIC_ULP)
        snprintf(tolstr, sizeof tolstr, "max ulp %.3g; tolerance %.3g ulp", max_ulp, tol.ulps);
    else
        snprintf(tolstr, sizeof tolstr, "tolerance rtol %.3g atol %.3g", tol.rtol, tol.atol);
    snprintf(msg, (size_t)size,
             "%s: shape %s, %lld of %lld elements off; worst at index %s: got %.9g, want %.12g "
             "(max abs err %.3g, max rel err %.3g; %s)",
             what, rt_shape_str(want->ndim, want->shape, s1, sizeof s1), (long long)nbad,
             (long long)n, s2, got->data[worst], want->data[worst], max_abs, max_rel, tolstr);
    return worst_ratio > 1.0 ? worst_ratio : INFINITY;
}

bool h_compare(const char *what, const rt *got, const rt *want, h_tol tol, char *msg, int size)
{
    return h_measure(what, got, want, tol, msg, size) <= 1.0;
}

void h_expect(const char *what, ag_tensor *got, rt want, h_tol tol)
{
    if (!got) {
        rt_free(&want);
        h_fail("%s: op returned NULL: %s (%s)", what, ag_last_error(),
                     ag_status_name(ag_last_status()));
    }
    rt g = h_read(got);
    char msg[1024];
    bool ok = h_compare(what, &g, &want, tol, msg, sizeof msg);
    rt_free(&g);
    rt_free(&want);
    H_REQUIRE(ok, "%s", msg);
}

void h_expect_same(const char *what, ag_tensor *a, ag_tensor *b)
{
    H_REQUIRE(a && b, "%s: op returned NULL: %s", what, ag_last_error());
    rt ra = h_read(a), rb = h_read(b);
    char msg[1024];
    bool ok = h_compare(what, &ra, &rb, (h_tol){.metric = H_METRIC_REL}, msg, sizeof msg);
    rt_free(&ra);
    rt_free(&rb);
    H_REQUIRE(ok, "%s", msg);
}

/* ---- gradient check ------------------------------------------------------- */

typedef struct gc_state {
    const h_gc *g;
    bool diff[H_MAX_IN];
    const rt *vals[H_MAX_IN];
    rt u;
} gc_state;

/* u . f(views of the given bases); bases[i] NULL = input i unchanged */
static double eval_proj(const gc_state *s, rt *const *bases)
{
    rt tmp[H_MAX_IN];
    const rt *vals[H_MAX_IN];
    for (int i = 0; i < s->g->n; i++) {
        vals[i] = s->vals[i];
        if (bases[i]) {
            const h_in *in = &s->g->in[i];
            tmp[i] = view_ref(bases[i], in->layout, in->val.ndim, in->val.shape);
            vals[i] = &tmp[i];
        }
    }
    rt y = s->g->ref(vals, s->g->arg);
    double r = rt_valid(&y) && rt_same_shape(&y, &s->u) ? rt_dot(&s->u, &y) : NAN;
    rt_free(&y);
    for (int i = 0; i < s->g->n; i++)
        if (bases[i]) rt_free(&tmp[i]);
    return r;
}

static double max_abs_finite(const rt *r)
{
    double m = 0;
    for (int64_t i = 0; i < rt_numel(r); i++)
        if (isfinite(r->data[i])) m = fmax(m, fabs(r->data[i]));
    return m;
}

static rt normal_like(const rt *like)
{
    rt r = rt_new(like->ndim, like->shape);
    for (int64_t i = 0; i < rt_numel(&r); i++) r.data[i] = h_normal();
    return r;
}

/* Directional derivative along random v_i against sum_i <grad_i, v_i>. */
static void check_directional(const gc_state *s, const rt *grads)
{
    const h_gc *g = s->g;
    rt v[H_MAX_IN], pb[H_MAX_IN], mb[H_MAX_IN];
    rt *pp[H_MAX_IN] = {NULL}, *mp[H_MAX_IN] = {NULL};
    double scale = 1.0, dot = 0.0, l2 = 0.0, vnorm2 = 0.0;
    for (int i = 0; i < g->n; i++)
        if (s->diff[i]) scale = fmax(scale, max_abs_finite(&g->in[i].base));
    double h = 1e-5 * scale;
    for (int i = 0; i < g->n; i++) {
        if (!s->diff[i]) continue;
        v[i] = normal_like(&g->in[i].base);
        pb[i] = rt_clone(&g->in[i].base);
        mb[i] = rt_clone(&g->in[i].base);
        for (int64_t j = 0; j < rt_numel(&v[i]); j++) {
            pb[i].data[j] += h * v[i].data[j];
            mb[i].data[j] -= h * v[i].data[j];
            double t = grads[i].data[j] * v[i].data[j];
            vnorm2 += v[i].data[j] * v[i].data[j];
            dot += t;
            l2 += t * t;
        }
        pp[i] = &pb[i], mp[i] = &mb[i];
    }
    double fd = (eval_proj(s, pp) - eval_proj(s, mp)) / (2 * h);
    for (int i = 0; i < g->n; i++)
        if (s->diff[i]) rt_free(&v[i]), rt_free(&pb[i]), rt_free(&mb[i]);
    /* The floor, H_GRAD_FLOOR |u| |v|, is far below any real error; it only lets
     * through float noise where the exact derivative cancels to about 0. */
    double denom = fmax(fabs(fd), sqrt(l2));
    double floor_ = H_GRAD_FLOOR * sqrt(rt_dot(&s->u, &s->u) * vnorm2);
    double allowed = g->tol.grad * denom + floor_;
    double err = fabs(dot - fd);
    double ratio = !(isfinite(fd) && isfinite(dot)) ? INFINITY : allowed > 0 ? err / allowed : (err > 0 ? INFINITY : 0.0);
    if (g->report) g->report->dir = ratio;
    H_REQUIRE(ratio <= 1.0,
                  "%s: directional derivative: sum <grad, v> = %.9g, central difference of the "
                  "reference = %.9g (rel err %.3g, tolerance %.3g)",
                  g->what, dot, fd, fabs(dot - fd) / (denom > 0 ? denom : 1), g->tol.grad);
}

/* Every gradient element against its own central difference. */
static void check_elementwise(const gc_state *s, const rt *grads)
{
    const h_gc *g = s->g;
    for (int i = 0; i < g->n; i++) {
        if (!s->diff[i]) continue;
        const h_in *in = &g->in[i];
        int64_t n = rt_numel(&in->base);
        rt want = rt_new(in->base.ndim, in->base.shape);
        rt work = rt_clone(&in->base);
        rt *bases[H_MAX_IN] = {NULL};
        bases[i] = &work;
        for (int64_t j = 0; j < n; j++) {
            double x = in->base.data[j];
            if (isnan(x)) continue; /* a gap of a sliced input: no gradient */
            double h = 1e-5 * fmax(1.0, fabs(x));
            work.data[j] = x + h;
            double fp = eval_proj(s, bases);
            work.data[j] = x - h;
            double fm = eval_proj(s, bases);
            work.data[j] = x;
            want.data[j] = (fp - fm) / (2 * h);
        }
        char what[256], msg[1024];
        snprintf(what, sizeof what, "%s: gradient of input %d (%s)", g->what, i,
                 h_layout_name(in->layout));
        /* relative to the largest component; the |u| floor as in the directional check */
        h_tol t = {.rtol = g->tol.grad,
                   .atol = fmax(g->tol.grad * max_abs_finite(&want), H_GRAD_FLOOR * sqrt(rt_dot(&s->u, &s->u)))};
        double ratio = h_measure(what, &grads[i], &want, t, msg, sizeof msg);
        if (g->report) g->report->elem = fmax(g->report->elem, ratio);
        rt_free(&want);
        rt_free(&work);
        H_REQUIRE(ratio <= 1.0, "%s", msg);
    }
}

void h_gradcheck(const h_gc *g)
{
    H_REQUIRE(g->n >= 1 && g->n <= H_MAX_IN, "%s: gradcheck takes 1..%d inputs", g->what, H_MAX_IN);
    gc_state s;
    memset(&s, 0, sizeof s);
    s.g = g;
    ag_tensor *views[H_MAX_IN];
    int64_t total = 0;
    if (g->report) {
        g->report->fwd = g->report->dir = g->report->elem = -1;
        g->report->ngrads = 0;
        for (int i = 0; i < H_MAX_IN; i++) g->report->grads[i] = rt_invalid();
    }
    ag_scope_begin();
    scope_depth++;
    /* The views live in a scope of their own that ends before backward, so
     * each is an activation nobody holds: one the op's backward does not say
     * it reads (ag__save_input) loses its memory, and a rule that reads it
     * anyway fails here. */
    ag_scope_begin();
    scope_depth++;
    for (int i = 0; i < g->n; i++) {
        h_in *in = &g->in[i];
        s.diff[i] = !in->is_int && !(g->skip && g->skip[i]);
        s.vals[i] = &in->val;
        views[i] = in->t;
        if (!s.diff[i]) continue;
        total += rt_numel(&in->base);
        ag_zero_grad(in->leaf);
        H_REQUIRE(ag_set_requires_grad(in->leaf, true) == AG_OK, "%s: set_requires_grad: %s",
                      g->what, ag_last_error());
        /* a fresh view, made after requires_grad, so it carries the history */
        views[i] = in->layout == H_CONTIG
                       ? ag_reshape(in->leaf, in->val.ndim, in->val.shape) /* not the leaf itself */
                       : view_ag(in->leaf, in->layout, in->val.ndim, in->val.shape);
        H_REQUIRE(views[i] != NULL, "%s: view of input %d: %s", g->what, i, ag_last_error());
    }
    ag_tensor *out = g->op(views, g->arg);
    H_REQUIRE(out != NULL, "%s: op returned NULL: %s", g->what, ag_last_error());
    out = ag_scope_return(out);
    scope_depth--;

    char what[256], msg[1024];
    snprintf(what, sizeof what, "%s (forward, inputs requiring grad)", g->what);
    rt got = h_read(out), want = g->ref(s.vals, g->arg);
    double fwd = h_measure(what, &got, &want, g->tol, msg, sizeof msg);
    if (g->report) g->report->fwd = fwd;
    rt_free(&got);
    rt_free(&want);
    H_REQUIRE(fwd <= 1.0, "%s", msg);

    int64_t oshape[AG_MAX_DIMS];
    rt shaped = rt_new(ag_shape(out, oshape), oshape);
    s.u = normal_like(&shaped);
    rt_free(&shaped);
    ag_tensor *ut = h_tensor(&s.u);
    H_REQUIRE(ag_backward(out, ut) == AG_OK, "%s: ag_backward failed: %s", g->what, ag_last_error());

    rt grads[H_MAX_IN];
    for (int i = 0; i < g->n; i++) {
        if (!s.diff[i]) continue;
        const ag_tensor *gt = ag_grad(g->in[i].leaf);
        H_REQUIRE(gt != NULL, "%s: no gradient reached input %d", g->what, i);
        grads[i] = h_read(gt);
        char s1[96], s2[96];
        H_REQUIRE(rt_valid(&grads[i]) && rt_same_shape(&grads[i], &g->in[i].base),
                      "%s: gradient of input %d has shape %s, want %s", g->what, i,
                      rt_shape_str(grads[i].ndim, grads[i].shape, s1, sizeof s1),
                      rt_shape_str(g->in[i].base.ndim, g->in[i].base.shape, s2, sizeof s2));
        h_track(grads[i]);
        if (g->report && g->report->keep_grads) g->report->grads[i] = rt_clone(&grads[i]);
    }
    if (g->report) g->report->ngrads = g->n;
    check_directional(&s, grads);
    if (g->full > 0 || (g->full == 0 && total <= 1200)) check_elementwise(&s, grads);

    for (int i = 0; i < g->n; i++) {
        if (!s.diff[i]) continue;
        ag_zero_grad(g->in[i].leaf);
        ag_set_requires_grad(g->in[i].leaf, false);
    }
    rt_free(&s.u);
    ag_scope_end();
    scope_depth--;
}
