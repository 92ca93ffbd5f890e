/* Optimizers, gradient clipping and learning-rate schedules.
 *
 * Each optimizer runs three steps on a small vector whose gradient is a fixed
 * constant c (loss = sum(p * c)); the expected parameters come from the
 * double-precision formulas below, written from PyTorch's documented algorithms
 * (torch.optim.SGD, RMSprop, Adam, AdamW), not from any kernel. */
#include <math.h>
#include <string.h>

#include "anygrad.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include "suites.h"

#define N 5
/* Exactly representable in f32, so the double reference starts from the same
 * numbers. The zero gradient checks that 0 / (0 + eps) stays 0. */
static const float P0[N] = {0.5f, -1.25f, 2.0f, 0.75f, -0.125f};
static const float C[N] = {0.25f, -0.5f, 1.5f, 0.0f, -2.0f};

/* A plain f32 Adam lands within about 4e-7 of the fp64 values after three
 * steps; a wrong formula (bias correction, decay order, eps placement, the
 * first momentum step) is off by 1e-5 or more in at least one case. */
#define STEP_RTOL 2e-6

static bool close_to(double got, double want, double rtol)
{
    return fabs(got - want) <= rtol * fmax(1.0, fabs(want));
}

static ag_tensor *param(const float *v, int64_t n)
{
    ag_tensor *t = ag_from_f32(v, 1, &n);
    ck_assert_msg(t, "ag_from_f32: %s", ag_last_error());
    ck_assert_int_eq(ag_set_requires_grad(t, true), AG_OK);
    return t;
}

/* Leaves grad(p) == c by backpropagating sum(p * c). */
static void set_grad(ag_tensor *p, const float *c, int64_t n)
{
    ag_scope_begin();
    ag_tensor *ct = ag_from_f32(c, 1, &n);
    ag_tensor *loss = ag_sum_all(ag_mul(p, ct));
    ck_assert_msg(loss, "loss: %s", ag_last_error());
    ck_assert_msg(ag_backward(loss, NULL) == AG_OK, "backward: %s", ag_last_error());
    ag_scope_end();
}

static void read_f32(const ag_tensor *t, float *out, int64_t n)
{
    ck_assert_msg(ag_to_host(t, out, (size_t)n * sizeof(float)) == AG_OK, "to_host: %s",
                  ag_last_error());
}

/* ---- double-precision reference ---------------------------------------- */

typedef struct ref_state {
    double p[N], buf[N], sq[N], m[N], v[N];
} ref_state;

static void ref_init(ref_state *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < N; i++) r->p[i] = P0[i];
}

/* One step number t (1-based) with gradient C. The config's floats are widened
 * exactly as the kernel receives them. */
static void ref_step(ref_state *r, const ag_optim_config *c, int t)
{
    const double lr = c->lr, wd = c->weight_decay, mom = c->momentum;
    for (int i = 0; i < N; i++) {
        double p = r->p[i], g = C[i];
        switch (c->kind) {
        case AG_OPTIM_SGD:
            g += wd * p;
            if (mom != 0.0) {
                /* PyTorch starts the buffer at the first gradient, undampened. */
                r->buf[i] = t == 1 ? g : mom * r->buf[i] + (1.0 - c->dampening) * g;
                g = c->nesterov ? g + mom * r->buf[i] : r->buf[i];
            }
            p -= lr * g;
            break;
        case AG_OPTIM_RMSPROP: {
            g += wd * p;
            r->sq[i] = c->alpha * r->sq[i] + (1.0 - c->alpha) * g * g;
            double avg = sqrt(r->sq[i]) + c->eps;
            if (mom > 0.0) {
                r->buf[i] = mom * r->buf[i] + g / avg;
                p -= lr * r->buf[i];
            } else {
                p -= lr * g / avg;
            }
            break;
        }
        case AG_OPTIM_ADAM:
        case AG_OPTIM_ADAMW: {
            if (c->kind == AG_OPTIM_ADAMW)
                p *= 1.0 - lr * wd;
            else
                g += wd * p;
            double b1 = c->beta1, b2 = c->beta2;
            r->m[i] = b1 * r->m[i] + (1.0 - b1) * g;
            r->v[i] = b2 * r->v[i] + (1.0 - b2) * g * g;
            double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
            double denom = sqrt(r->v[i]) / sqrt(bc2) + c->eps;
            p -= lr / bc1 * r->m[i] / denom;
            break;
        }
        }
        r->p[i] = p;
    }
}

/* ---- optimizer cases ----------------------------------------------------- */

typedef struct optim_case {
    const char *name;
    ag_optim_config cfg;
} optim_case;

static optim_case make_case(const char *name, ag_optim_kind kind, float lr, float momentum,
                            float dampening, bool nesterov, float weight_decay)
{
    optim_case oc = {name, ag_optim_defaults(kind, lr)};
    if (kind == AG_OPTIM_SGD || kind == AG_OPTIM_RMSPROP) oc.cfg.momentum = momentum;
    oc.cfg.dampening = dampening;
    oc.cfg.nesterov = nesterov;
    if (weight_decay >= 0.0f) oc.cfg.weight_decay = weight_decay; /* < 0: keep the default */
    return oc;
}

static optim_case with_eps(optim_case oc, float eps)
{
    oc.cfg.eps = eps; /* large enough that where eps goes in the formula shows */
    return oc;
}

/* Stores case i in *out (when out is not NULL); returns the number of cases. */
static int get_case(int i, optim_case *out)
{
    const optim_case cases[] = {
        make_case("SGD", AG_OPTIM_SGD, 0.1f, 0.0f, 0.0f, false, 0.0f),
        make_case("SGD momentum", AG_OPTIM_SGD, 0.1f, 0.9f, 0.0f, false, 0.0f),
        make_case("SGD momentum dampening", AG_OPTIM_SGD, 0.1f, 0.9f, 0.5f, false, 0.0f),
        make_case("SGD nesterov", AG_OPTIM_SGD, 0.1f, 0.9f, 0.0f, true, 0.0f),
        make_case("SGD weight decay", AG_OPTIM_SGD, 0.1f, 0.0f, 0.0f, false, 0.5f),
        make_case("SGD nesterov weight decay", AG_OPTIM_SGD, 0.1f, 0.9f, 0.0f, true, 0.5f),
        make_case("RMSProp", AG_OPTIM_RMSPROP, 0.01f, 0.0f, 0.0f, false, 0.0f),
        make_case("RMSProp momentum", AG_OPTIM_RMSPROP, 0.01f, 0.9f, 0.0f, false, 0.0f),
        make_case("RMSProp weight decay", AG_OPTIM_RMSPROP, 0.01f, 0.0f, 0.0f, false, 0.25f),
        with_eps(make_case("RMSProp eps", AG_OPTIM_RMSPROP, 0.01f, 0.5f, 0.0f, false, 0.0f),
                 0.0625f),
        make_case("Adam", AG_OPTIM_ADAM, 0.1f, 0.0f, 0.0f, false, -1.0f),
        make_case("Adam L2", AG_OPTIM_ADAM, 0.1f, 0.0f, 0.0f, false, 0.5f),
        with_eps(make_case("Adam eps", AG_OPTIM_ADAM, 0.1f, 0.0f, 0.0f, false, -1.0f),
                 0.0625f),
        make_case("AdamW", AG_OPTIM_ADAMW, 0.1f, 0.0f, 0.0f, false, -1.0f),
        make_case("AdamW strong decay", AG_OPTIM_ADAMW, 0.1f, 0.0f, 0.0f, false, 0.5f),
    };
    if (out) *out = cases[i];
    return (int)(sizeof cases / sizeof cases[0]);
}

START_TEST(test_optim_three_steps)
{
    optim_case oc;
    get_case(_i, &oc);
    ag_tensor *p = param(P0, N);
    ag_optim *opt = ag_optim_new(&oc.cfg, 1, &p);
    ck_assert_msg(opt, "%s: ag_optim_new: %s", oc.name, ag_last_error());
    ref_state ref;
    ref_init(&ref);
    for (int t = 1; t <= 3; t++) {
        ck_assert_int_eq(ag_optim_zero_grad(opt), AG_OK);
        set_grad(p, C, N);
        ck_assert_msg(ag_optim_step(opt) == AG_OK, "%s step %d: %s", oc.name, t, ag_last_error());
        ref_step(&ref, &oc.cfg, t);
        float got[N];
        read_f32(p, got, N);
        for (int i = 0; i < N; i++)
            ck_assert_msg(close_to(got[i], ref.p[i], STEP_RTOL),
                          "%s step %d p[%d]: got %.9g, want %.9g", oc.name, t, i, got[i],
                          ref.p[i]);
    }
    ck_assert_int_eq(ag_optim_steps(opt), 3);
    ag_optim_free(opt);
    ag_release(p);
}
END_TEST

/* The CPU step flushes subnormal state to zero (it is many times slower to
 * compute with) and must leave the caller's floating-point mode as it was. */
START_TEST(test_optim_subnormal_state)
{
    ag_tensor *w = ag_full(1, (const int64_t[]){64}, 1.0f);
    ag_set_requires_grad(w, true);
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_SGD, 1.0f);
    cfg.momentum = 0.5f;
    ag_optim *opt = ag_optim_new(&cfg, 1, &w);
    ck_assert_ptr_nonnull(opt);
#if defined(__x86_64__)
    unsigned caller = _mm_getcsr(), csr = caller & ~0x8040u; /* FTZ and DAZ off */
    _mm_setcsr(csr);
#endif
    /* grad 1e-38 (normal), then zero gradients: momentum halves into subnormals. */
    ag_scope_begin();
    ck_assert_int_eq(ag_backward(ag_sum_all(ag_mul_scalar(w, 1e-38f)), NULL), AG_OK);
    ag_scope_end();
    ck_assert_int_eq(ag_optim_step(opt), AG_OK);
    for (int k = 0; k < 3; k++) {
        ag_optim_zero_grad(opt);
        ag_scope_begin();
        ck_assert_int_eq(ag_backward(ag_sum_all(ag_mul_scalar(w, 0.0f)), NULL), AG_OK);
        ag_scope_end();
        ck_assert_int_eq(ag_optim_step(opt), AG_OK);
    }
#if defined(__x86_64__)
    unsigned after = _mm_getcsr();
    _mm_setcsr(caller);
    ck_assert_uint_eq(after & ~0x3fu, csr & ~0x3fu); /* the mode; bits 0-5 are sticky flags */
#endif
    float v[64];
    ck_assert_int_eq(ag_to_host(w, v, sizeof v), AG_OK);
    for (int i = 0; i < 64; i++) ck_assert_float_eq(v[i], 1.0f); /* 1 - 1e-38 rounds to 1 */
    ag_optim_free(opt);
    ag_release(w);
}
END_TEST

START_TEST(test_optim_defaults)
{
    ag_optim_config s = ag_optim_defaults(AG_OPTIM_SGD, 0.1f);
    ck_assert(s.kind == AG_OPTIM_SGD && s.lr == 0.1f);
    ck_assert(s.momentum == 0.0f && s.dampening == 0.0f && !s.nesterov && s.weight_decay == 0.0f);
    ag_optim_config r = ag_optim_defaults(AG_OPTIM_RMSPROP, 0.01f);
    ck_assert(r.alpha == 0.99f && r.eps == 1e-8f && r.momentum == 0.0f && r.weight_decay == 0.0f);
    ag_optim_config a = ag_optim_defaults(AG_OPTIM_ADAM, 1e-3f);
    ck_assert(a.beta1 == 0.9f && a.beta2 == 0.999f && a.eps == 1e-8f && a.weight_decay == 0.0f);
    ag_optim_config w = ag_optim_defaults(AG_OPTIM_ADAMW, 1e-3f);
    ck_assert(w.kind == AG_OPTIM_ADAMW && w.beta1 == 0.9f && w.beta2 == 0.999f);
    ck_assert(w.eps == 1e-8f && w.weight_decay == 0.01f);
}
END_TEST

/* A parameter backward never reached keeps its value (and Adam state); the
 * step counter still advances. set_lr changes the next step. */
START_TEST(test_optim_skip_and_lr)
{
    ag_tensor *ps[2] = {param(P0, N), param(P0, N)};
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_SGD, 0.1f);
    ag_optim *opt = ag_optim_new(&cfg, 2, ps);
    ck_assert_msg(opt, "%s", ag_last_error());
    set_grad(ps[0], C, N);
    ck_assert(ag_grad(ps[1]) == NULL);
    ck_assert_int_eq(ag_optim_step(opt), AG_OK);
    ck_assert_int_eq(ag_optim_set_lr(opt, 0.5f), AG_OK);
    ck_assert(ag_optim_lr(opt) == 0.5f);
    ck_assert_int_eq(ag_optim_step(opt), AG_OK); /* same gradient, new rate */
    ck_assert_int_eq(ag_optim_steps(opt), 2);
    float got0[N], got1[N];
    read_f32(ps[0], got0, N);
    read_f32(ps[1], got1, N);
    for (int i = 0; i < N; i++) {
        double want = (double)P0[i] - 0.1 * C[i] - 0.5 * C[i];
        ck_assert_msg(close_to(got0[i], want, 1e-6), "p0[%d]: got %.9g want %.9g", i, got0[i],
                      want);
        ck_assert_msg(got1[i] == P0[i], "untouched p1[%d] changed to %.9g", i, got1[i]);
    }
    ck_assert_int_eq(ag_optim_zero_grad(opt), AG_OK);
    ck_assert(ag_grad(ps[0]) == NULL);
    ck_assert_int_eq(ag_optim_set_lr(opt, -1.0f), AG_ERR_ARG);
    ck_assert(ag_optim_lr(opt) == 0.5f);
    ag_optim_free(opt);
    ag_optim_free(NULL);
    ag_release(ps[0]);
    ag_release(ps[1]);
}
END_TEST

/* The optimizer holds its own references: dropping ours early is safe (a
 * missing retain shows as a use after free here, under valgrind or ASan). */
START_TEST(test_optim_retains_params)
{
    ag_tensor *p = param(P0, N);
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_ADAM, 0.1f);
    ag_optim *opt = ag_optim_new(&cfg, 1, &p);
    ck_assert_msg(opt, "%s", ag_last_error());
    set_grad(p, C, N);
    ag_release(p);
    ck_assert_int_eq(ag_optim_step(opt), AG_OK);
    ck_assert_int_eq(ag_optim_zero_grad(opt), AG_OK);
    ag_optim_free(opt);
}
END_TEST

/* ---- gradient clipping ----------------------------------------------------- */

static double norm_of(const float *a, int na, const float *b, int nb)
{
    double s = 0.0;
    for (int i = 0; i < na; i++) s += (double)a[i] * a[i];
    for (int i = 0; i < nb; i++) s += (double)b[i] * b[i];
    return sqrt(s);
}

START_TEST(test_clip_grad_norm)
{
    static const float ca[3] = {3.0f, -4.0f, 12.0f}, cb[2] = {0.0f, 84.0f};
    ag_tensor *ps[3] = {param(P0, 3), param(P0, 2), param(P0, 4)}; /* ps[2] has no gradient */
    set_grad(ps[0], ca, 3);
    set_grad(ps[1], cb, 2);
    const double norm = norm_of(ca, 3, cb, 2); /* sqrt(9 + 16 + 144 + 7056) = 85 */

    float total = 0.0f;
    ck_assert_int_eq(ag_clip_grad_norm(3, ps, 100.0f, &total), AG_OK); /* under: unchanged */
    ck_assert_msg(close_to(total, norm, 1e-6), "norm %.9g, want %.9g", total, norm);
    float ga[3], gb[2];
    read_f32(ag_grad(ps[0]), ga, 3);
    read_f32(ag_grad(ps[1]), gb, 2);
    for (int i = 0; i < 3; i++) ck_assert(ga[i] == ca[i]);
    for (int i = 0; i < 2; i++) ck_assert(gb[i] == cb[i]);

    ck_assert_int_eq(ag_clip_grad_norm(3, ps, 5.0f, &total), AG_OK);
    ck_assert_msg(close_to(total, norm, 1e-6), "norm %.9g, want %.9g", total, norm);
    const double coef = 5.0 / (norm + 1e-6);
    read_f32(ag_grad(ps[0]), ga, 3);
    read_f32(ag_grad(ps[1]), gb, 2);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(close_to(ga[i], ca[i] * coef, 1e-6), "ga[%d] %.9g want %.9g", i, ga[i],
                      ca[i] * coef);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(close_to(gb[i], cb[i] * coef, 1e-6), "gb[%d] %.9g want %.9g", i, gb[i],
                      cb[i] * coef);
    ck_assert(ag_grad(ps[2]) == NULL);

    /* Clipped once, the norm is now max_norm and a second call leaves it. */
    ck_assert_int_eq(ag_clip_grad_norm(3, ps, 5.0f, &total), AG_OK);
    ck_assert_msg(close_to(total, 5.0, 1e-5), "norm after clipping %.9g", total);

    ck_assert_int_eq(ag_clip_grad_norm(3, ps, -1.0f, &total), AG_ERR_ARG);
    ck_assert(strlen(ag_last_error()) > 0);
    ck_assert_int_eq(ag_clip_grad_norm(1, NULL, 1.0f, &total), AG_ERR_ARG);
    ck_assert_int_eq(ag_clip_grad_norm(0, NULL, 1.0f, &total), AG_OK);
    ck_assert(total == 0.0f);
    for (int i = 0; i < 3; i++) ag_release(ps[i]);
}
END_TEST

/* ---- schedules ------------------------------------------------------------- */

START_TEST(test_lr_schedules)
{
    /* step: base * gamma^(step / step_size) with integer division */
    const struct { int64_t step; double want; } st[] = {
        {0, 0.1}, {9, 0.1}, {10, 0.05}, {19, 0.05}, {20, 0.025}, {35, 0.0125}};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        float got = ag_lr_step_decay(0.1f, st[i].step, 10, 0.5f);
        ck_assert_msg(close_to(got, st[i].want, 1e-6), "lr_step(%lld) = %.9g, want %.9g",
                      (long long)st[i].step, got, st[i].want);
    }
    /* cosine: min + (base - min) (1 + cos(pi step / total)) / 2, held at min after total */
    const double pi = 3.14159265358979323846;
    const int64_t cs[] = {0, 25, 50, 75, 100, 150};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        double s = cs[i] > 100 ? 100 : (double)cs[i];
        double want = 0.01 + (1.0 - 0.01) * (1.0 + cos(pi * s / 100.0)) / 2.0;
        float got = ag_lr_cosine(1.0f, cs[i], 100, 0.01f);
        ck_assert_msg(close_to(got, want, 1e-6), "lr_cosine(%lld) = %.9g, want %.9g",
                      (long long)cs[i], got, want);
    }
    ck_assert(close_to(ag_lr_cosine(1.0f, 50, 100, 0.0f), 0.5, 1e-6));
    /* warmup: base * min(1, (step + 1) / warmup) */
    const struct { int64_t step; double want; } wu[] = {
        {0, 0.25}, {1, 0.5}, {2, 0.75}, {3, 1.0}, {4, 1.0}, {100, 1.0}};
    for (size_t i = 0; i < sizeof wu / sizeof wu[0]; i++) {
        float got = ag_lr_warmup(0.2f, wu[i].step, 4);
        ck_assert_msg(close_to(got, 0.2 * wu[i].want, 1e-6), "lr_warmup(%lld) = %.9g",
                      (long long)wu[i].step, got);
    }
}
END_TEST

/* ---- bad input ------------------------------------------------------------- */

static void expect_reject(const ag_optim_config *cfg, int n, ag_tensor *const *ps,
                          ag_status want, const char *what)
{
    ag_clear_error();
    ag_optim *opt = ag_optim_new(cfg, n, ps);
    if (opt) ag_optim_free(opt);
    ck_assert_msg(opt == NULL, "%s: accepted", what);
    ck_assert_msg(ag_last_status() == want, "%s: status %s, want %s", what,
                  ag_status_name(ag_last_status()), ag_status_name(want));
    ck_assert_msg(ag_last_error() && strlen(ag_last_error()) > 0, "%s: no message", what);
}

START_TEST(test_optim_bad_config)
{
    ag_tensor *p = param(P0, N);
    ag_optim_config c;

    expect_reject(NULL, 1, &p, AG_ERR_ARG, "NULL config");
    c = ag_optim_defaults(AG_OPTIM_SGD, -0.1f);
    expect_reject(&c, 1, &p, AG_ERR_ARG, "negative lr");
    c = ag_optim_defaults(AG_OPTIM_SGD, NAN);
    expect_reject(&c, 1, &p, AG_ERR_ARG, "NaN lr");
    c = ag_optim_defaults(AG_OPTIM_SGD, 0.1f);
    c.kind = (ag_optim_kind)42;
    expect_reject(&c, 1, &p, AG_ERR_ARG, "unknown kind");
    c = ag_optim_defaults(AG_OPTIM_SGD, 0.1f);
    c.nesterov = true;
    expect_reject(&c, 1, &p, AG_ERR_ARG, "nesterov without momentum");
    c.momentum = 0.9f;
    c.dampening = 0.1f;
    expect_reject(&c, 1, &p, AG_ERR_ARG, "nesterov with dampening");
    c = ag_optim_defaults(AG_OPTIM_SGD, 0.1f);
    c.momentum = -0.5f;
    expect_reject(&c, 1, &p, AG_ERR_ARG, "negative momentum");
    c = ag_optim_defaults(AG_OPTIM_SGD, 0.1f);
    c.weight_decay = -0.5f;
    expect_reject(&c, 1, &p, AG_ERR_ARG, "negative weight decay");
    c = ag_optim_defaults(AG_OPTIM_RMSPROP, 0.1f);
    c.eps = -1e-8f;
    expect_reject(&c, 1, &p, AG_ERR_ARG, "negative RMSProp eps");
    c = ag_optim_defaults(AG_OPTIM_ADAM, 0.1f);
    c.beta1 = 1.0f;
    expect_reject(&c, 1, &p, AG_ERR_ARG, "beta1 = 1");
    c = ag_optim_defaults(AG_OPTIM_ADAMW, 0.1f);
    c.beta2 = -0.1f;
    expect_reject(&c, 1, &p, AG_ERR_ARG, "negative beta2");
    c = ag_optim_defaults(AG_OPTIM_ADAM, 0.1f);
    c.eps = -1.0f;
    expect_reject(&c, 1, &p, AG_ERR_ARG, "negative Adam eps");

    /* edge values PyTorch accepts */
    c = ag_optim_defaults(AG_OPTIM_ADAM, 0.0f);
    c.beta1 = 0.0f;
    c.eps = 0.0f;
    ag_optim *ok = ag_optim_new(&c, 1, &p);
    ck_assert_msg(ok, "lr 0, beta1 0, eps 0 rejected: %s", ag_last_error());
    ag_optim_free(ok);
    ag_release(p);
}
END_TEST

START_TEST(test_optim_bad_params)
{
    ag_scope_begin(); /* owns every tensor made here */
    ag_optim_config c = ag_optim_defaults(AG_OPTIM_SGD, 0.1f);
    ag_tensor *p = param(P0, N);

    expect_reject(&c, 0, &p, AG_ERR_ARG, "no parameters");
    expect_reject(&c, 1, NULL, AG_ERR_ARG, "NULL params");
    ag_tensor *withnull[2] = {p, NULL};
    expect_reject(&c, 2, withnull, AG_ERR_ARG, "NULL params[1]");
    ag_tensor *twice[2] = {p, p};
    expect_reject(&c, 2, twice, AG_ERR_ARG, "repeated parameter");

    int64_t n = N;
    ag_tensor *nograd = ag_from_f32(P0, 1, &n);
    expect_reject(&c, 1, &nograd, AG_ERR_ARG, "no requires_grad");

    ag_tensor *nonleaf = ag_mul_scalar(p, 2.0f);
    ck_assert_msg(nonleaf, "%s", ag_last_error());
    expect_reject(&c, 1, &nonleaf, AG_ERR_ARG, "non-leaf");

    const int32_t iv[2] = {1, 2};
    int64_t two = 2;
    ag_tensor *ints = ag_from_i32(iv, 1, &two);
    expect_reject(&c, 1, &ints, AG_ERR_DTYPE, "i32 parameter");

    /* A transposed leaf: shares storage, not contiguous. */
    const int64_t shape[2] = {2, 3};
    ag_tensor *mt = ag_detach(ag_transpose(ag_zeros(2, shape), 0, 1));
    ck_assert_msg(mt, "%s", ag_last_error());
    ck_assert(!ag_is_contiguous(mt));
    ck_assert_int_eq(ag_set_requires_grad(mt, true), AG_OK);
    expect_reject(&c, 1, &mt, AG_ERR_ARG, "non-contiguous");
    ag_scope_end();

    ck_assert_int_eq(ag_optim_step(NULL), AG_ERR_ARG);
    ck_assert_int_eq(ag_optim_zero_grad(NULL), AG_ERR_ARG);
}
END_TEST

Suite *suite_optim(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = h_tcase_create("optimizers");
    tcase_add_loop_test(tc, test_optim_three_steps, 0, get_case(0, NULL));
    tcase_add_test(tc, test_optim_defaults);
    tcase_add_test(tc, test_optim_subnormal_state);
    tcase_add_test(tc, test_optim_skip_and_lr);
    tcase_add_test(tc, test_optim_retains_params);
    suite_add_tcase(s, tc);

    TCase *tclip = h_tcase_create("clip_and_schedules");
    tcase_add_test(tclip, test_clip_grad_norm);
    tcase_add_test(tclip, test_lr_schedules);
    suite_add_tcase(s, tclip);

    TCase *terr = h_tcase_create("errors");
    tcase_add_test(terr, test_optim_bad_config);
    tcase_add_test(terr, test_optim_bad_params);
    suite_add_tcase(s, terr);
    return s;
}
