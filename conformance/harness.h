/* Test harness: inputs built twice (anygrad tensor + fp64 reference) from the same
 * float32 data, result comparison with per-op tolerances, gradient checks against
 * central differences of the reference, and non-contiguous input layouts.
 *
 * Usage inside a Check test:
 *     h_begin(seed);                       // opens an anygrad scope
 *     h_in x = h_input(H_S(3, 5), h_dist_normal(), H_TRANSPOSED);
 *     h_expect("exp", ag_exp(x.t), ref_unary(AG_UNARY_EXP, &x.val, 0, 0), h_tol_get("transc", 1));
 *     h_end();                             // frees everything
 * Failures go to the installed failure handler with a message naming the op, the
 * shape, the index, the value got and the value wanted: the Check suites install one
 * that fails the test (test_main.c), the conformance matrix catches them with h_try()
 * and records the case. The harness itself does not depend on Check, so the
 * `anygrad` command links it too.
 */
#ifndef AG_TEST_HARNESS_H
#define AG_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "anygrad.h"
#include "ref.h"

/* ndim, shape pair for calls: h_input(H_S(3, 1, 5), ...) */
#define H_S(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))), ((int64_t[]){__VA_ARGS__})

/* ---- failures ----------------------------------------------------------- */

/* Receives the message of a failed harness check; must not return (Check's
 * ck_abort_msg, or a longjmp). Without one, the message is printed and abort()
 * ends the process. */
typedef void (*h_fail_fn)(const char *msg);
h_fail_fn h_set_fail_handler(h_fail_fn fn);          /* returns the previous one */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
_Noreturn void h_fail(const char *fmt, ...);
#define H_REQUIRE(cond, ...) \
    do { \
        if (!(cond)) h_fail(__VA_ARGS__); \
    } while (0)
/* Runs fn(ctx); a harness failure inside it returns false with its message in msg
 * instead of reaching the handler. Scopes that h_begin()/h_gradcheck() opened in fn
 * are closed and tracked references freed (a failing case may leak a few host
 * buffers the failing check had in flight). */
bool h_try(void (*fn)(void *), void *ctx, char *msg, int size);

/* ---- test lifetime ------------------------------------------------------ */

void h_begin(uint64_t seed);  /* seeds the harness RNG, opens an anygrad scope */
void h_end(void);             /* closes the scope, frees every tracked rt */
rt *h_track(rt r);            /* keeps r until h_end(); returns a stable pointer */

/* ---- random numbers (harness-owned, deterministic per seed) ------------- */

uint64_t h_next(void);
double h_uniform(double lo, double hi);   /* [lo, hi) */
double h_normal(void);
int64_t h_randint(int64_t lo, int64_t hi); /* [lo, hi) */

typedef enum h_dist_kind { H_DIST_NORMAL, H_DIST_UNIFORM } h_dist_kind;
typedef struct h_dist {
    h_dist_kind kind;
    double a, b;          /* normal: mean, std; uniform: [a, b) */
    int nkinks;           /* values closer than margin to a kink are drawn again */
    double kink[4], margin;
    const double *pool;   /* with probability pool_p a value of pool (edge values) */
    int npool;
    double pool_p;
} h_dist;

h_dist h_dist_normal(void);                 /* N(0, 1) */
h_dist h_dist_wide(void);                   /* uniform [-8, 8) */
h_dist h_dist_positive(void);               /* uniform [0.5, 3): log, sqrt, rsqrt, pow */
h_dist h_dist_uniform(double lo, double hi);
h_dist h_dist_away(h_dist d, double kink, double margin); /* d, kept away from kink */
double h_draw(const h_dist *d);             /* rounded to float32 */

/* ---- inputs ------------------------------------------------------------- */

typedef enum h_layout {
    H_CONTIG,      /* a fresh contiguous tensor */
    H_TRANSPOSED,  /* ag_transpose of a tensor with the last two axes swapped */
    H_SLICED,      /* ag_slice(step 2) of a tensor twice as long on the last axis; the
                    * skipped elements are NaN so reading them shows in the result */
    H_EXPANDED,    /* ag_expand of a tensor whose first non-1 axis has size 1 */
    H_LAYOUT_COUNT
} h_layout;
const char *h_layout_name(h_layout l);

typedef struct h_in {
    ag_tensor *leaf;  /* the tensor gradients land on (owned by the scope) */
    ag_tensor *t;     /* what the op sees: leaf, or a view of leaf */
    rt base;          /* reference values of leaf */
    rt val;           /* reference values of t */
    h_layout layout;
    bool is_int;      /* int32 input: never differentiated */
} h_in;

h_in h_input(int ndim, const int64_t *shape, h_dist d, h_layout layout);
/* Logical values given row-major (rounded to float32). H_EXPANDED keeps the values
 * at index 0 of the expanded axis and repeats them. */
h_in h_input_values(int ndim, const int64_t *shape, const double *values, h_layout layout);
h_in h_input_int(int ndim, const int64_t *shape, const int32_t *values);
h_in h_input_randint(int ndim, const int64_t *shape, int32_t lo, int32_t hi);
/* A fresh view of in->leaf in in's layout (in->leaf itself when contiguous). Views
 * made before ag_set_requires_grad(leaf) carry no history: make a new one after. */
ag_tensor *h_view(const h_in *in);
/* f32 tensor with r's values (r is rounded to float32 in place). */
ag_tensor *h_tensor(rt *r);
/* Host copy of t as an rt (f32 or i32); invalid on error. Caller frees. */
rt h_read(const ag_tensor *t);

/* ---- comparison --------------------------------------------------------- */

/* How a forward result is judged (the tolerance table says which per class). */
typedef enum h_metric {
    H_METRIC_REL,  /* |got - want| <= rtol |want| + atol: relative error, floor atol/rtol */
    H_METRIC_ULP   /* float32 ULP distance <= ulps; subnormal results may be flushed */
} h_metric;

typedef struct h_tol {
    double rtol, atol;  /* forward (H_METRIC_REL): |got - want| <= rtol |want| + atol */
    double grad;        /* gradients: relative to the largest reference component */
    h_metric metric;
    double ulps;        /* forward (H_METRIC_ULP) */
} h_tol;

/* The documented tolerance of an accuracy class ("exact", "arith", "ulp",
 * "transc", "sum", "mean", "softmax", "norm"), scaled for classes whose error grows with
 * the reduction length len. */
h_tol h_tol_get(const char *cls, int64_t len);
/* The class table itself, for the coverage page: index 0.. until NULL. */
typedef struct h_tol_class {
    const char *name;
    h_metric metric;
    double rtol, atol, ulps, grad;
    bool grows;         /* rtol, atol and grad are multiplied by sqrt(len) */
    const char *why;    /* one line of justification */
    bool per_n;         /* atol is then divided by len (means) */
} h_tol_class;
const h_tol_class *h_tol_class_at(int i);
/* The same tolerance widened by factor (used to compare two backends, each of
 * which is within tol of the reference). */
h_tol h_tol_scaled(h_tol tol, double factor);

/* Worst error of got against want as a fraction of the allowed error (<= 1
 * passes; INFINITY for a NaN/inf mismatch, a shape mismatch or an invalid rt).
 * Writes a description of the worst element into msg when it is over 1. */
double h_measure(const char *what, const rt *got, const rt *want, h_tol tol, char *msg, int size);

/* Compares got with want (NaN matches NaN, infinities must match exactly); fails
 * the test with the worst element on mismatch. Consumes want. NULL got fails with
 * ag_last_error(). */
void h_expect(const char *what, ag_tensor *got, rt want, h_tol tol);
/* Same, but returns the verdict and writes the message instead of failing. */
bool h_compare(const char *what, const rt *got, const rt *want, h_tol tol, char *msg, int size);
/* Bitwise-equal values (NaN == NaN): two routes to the same kernel. */
void h_expect_same(const char *what, ag_tensor *a, ag_tensor *b);

/* ---- gradient check ----------------------------------------------------- */

typedef ag_tensor *(*h_op_fn)(ag_tensor *const *in, const void *arg);
typedef rt (*h_ref_fn)(const rt *const *in, const void *arg);

typedef struct h_gc {
    const char *what;
    int n;              /* number of inputs */
    h_in *in;           /* int inputs are never differentiated */
    const bool *skip;   /* optional: skip[i] true = not differentiated either */
    h_op_fn op;         /* builds the op from the input views (public API) */
    h_ref_fn ref;       /* the same op on the views' reference values */
    const void *arg;
    h_tol tol;          /* forward tolerance; tol.grad for the gradients */
    int full;           /* 0: element-wise check when small, 1: always, -1: never */
    struct h_report *report; /* optional: receives the measured ratios */
} h_gc;

/* What h_gradcheck measured, each as error / allowed error (<= 1 passes). Filled
 * as the checks run, so a failing check has already stored its ratio. */
typedef struct h_report {
    double fwd, dir, elem;   /* -1 = not measured */
    bool keep_grads;         /* copy the gradients into grads[] (caller frees) */
    int ngrads;
    rt grads[8];             /* gradient of input i (invalid for undifferentiated ones) */
} h_report;

/* Checks the forward result, then the vector-Jacobian product ag_backward(out, u)
 * for a random cotangent u: sum_i <grad_i, v_i> against the central difference
 * u . (f(x + h v) - f(x - h v)) / 2h of the reference along random directions v_i,
 * and, when the inputs are small, every gradient element against its own central
 * difference. Runs in its own scope; leaves the inputs without gradient.
 * Tolerances are relative to the gradient's own size, so avoid inputs on which the
 * exact gradient vanishes by an invariance (e.g. softmax along an expanded axis):
 * float noise there is all there is to compare. */
void h_gradcheck(const h_gc *g);

#endif /* AG_TEST_HARNESS_H */
