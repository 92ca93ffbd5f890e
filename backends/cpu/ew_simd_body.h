/* The vector kernels, written once over the primitives that the including file
 * (ew_avx2.c, ew_avx512.c, ew_neon.c) defines: vf/vm, VW lanes, v_* and m_*
 * operations, SLEEF math, double accumulators, SIMD_TABLE naming the table to
 * define. Every formula follows the scalar kernel in cpu_elementwise.c (the
 * stable forms, the polynomials of cpu_poly.h), so the ISAs differ only by
 * SLEEF's exp against libm's and by fused multiply-adds. Tails use partial
 * (masked) loads and stores: a lane's result does not depend on where the run
 * starts. */
#include <math.h>

#include "cpu_poly.h"
#include "ops/binary_table.h"
#include "ops/unary_table.h"

#ifndef VW
#error "include ew_simd_body.h from an ISA file that defines the vector primitives"
#endif

#define K_SQRT_2_OVER_PI 0.79788456080286535588f
#define K_INV_SQRT_2PI 0.39894228040143267794f
#define K_GELU_C 0.044715f

/* ---- unary ops: value and derivative -------------------------------------- */

static inline vf one(void) { return v_set(1.0f); }
static inline vf zero(void) { return v_set(0.0f); }

/* x >= 0: 1 / (1 + exp(-x)); else e / (1 + e) with e = exp(x): exp never sees
 * a positive argument, and one division as in the scalar form */
static inline vf v_sigmoid(vf x)
{
    vf e = v_exp(v_neg(v_abs(x)));
    return v_div(v_sel(m_ge(x, zero()), one(), e), v_add(one(), e));
}
static inline vf gelu_tanh_u(vf x)
{
    return v_mul(v_set(K_SQRT_2_OVER_PI), v_add(x, v_mul(v_mul(v_mul(v_set(K_GELU_C), x), x), x)));
}

/* The polynomials of cpu_poly.h with fused multiply-adds. */
#define MA_V(a, b, c) v_fma(a, b, c)
#define K_V(c) v_set(c)

/* tanh(|x|) with the sign of x (-0 stays -0): below 1 the odd polynomial, else
 * 1 - 2 / (1 + exp(2|x|)), where the fraction is below 0.24, so exp's error
 * shrinks instead of cancelling. exp overflows to inf past |x| = 44 and the
 * fraction goes to 0. */
static inline vf v_tanh_(vf x)
{
    vf a = v_abs(x), a2 = v_mul(a, a);
    vf small = v_fma(v_mul(a, a2), CPU_POLY_TANH(MA_V, K_V, a2), a);
    vf big = v_sub(one(), v_div(v_set(2.0f), v_add(one(), v_exp(v_add(a, a)))));
    return v_copysign(v_sel(m_lt(a, one()), small, big), x);
}

/* expm1(x) for x <= 0: the polynomial on [-1, 0], exp(x) - 1 below (there
 * exp(x) <= 0.37, so its error is scaled down, not up); the result has x's
 * sign, which keeps -0 */
static inline vf v_expm1_neg(vf x)
{
    vf small = v_fma(v_mul(x, x), CPU_POLY_EXPM1(MA_V, K_V, x), x);
    return v_copysign(v_sel(m_ge(x, v_set(-1.0f)), small, v_sub(v_exp(x), one())), x);
}

/* log1p(e) for e in [0, 1], as e + e^2 Q(e) so that the rounding of the
 * polynomial lands on its smaller part */
static inline vf v_log1p_01(vf e) { return v_fma(v_mul(e, e), CPU_POLY_LOG1P(MA_V, K_V, e), e); }

/* gelu (erf form) through the normal tail Phi(-t), t = |x| clamped to 16 (NaN
 * stays NaN: the min returns its second operand then), as cpu_poly.h
 * describes: Phi(-t) = 0.5 exp(-t^2/2 + G(w)) / (1 + a t). d = 1 + a t is
 * rounded; its rounding error d_lo goes into the exponent (1 / (d + d_lo) =
 * exp(-d_lo / d) / d to far below an ulp), and -t^2/2 is carried exactly as
 * h + h_lo: the exponent is h + l, l = h_lo + G - d_lo / d, for v_mul_exp. The
 * caller divides by d itself (one rounding; an approximate reciprocal's error
 * would add one more where the result is exact, e.g. x / 2 for tiny x). */
typedef struct phi_parts {
    vf t, d, h, h_lo, l;
} phi_parts;
static inline phi_parts v_phi_parts(vf x)
{
    phi_parts o;
    const vf av = v_set(CPU_PHI_A), k = v_set(CPU_PHI_K);
    o.t = v_min(v_set(CPU_PHI_TMAX), v_abs(x));
    vf d = v_fma(o.t, av, one());                         /* 1 + a t, rounded */
    vf d_lo = v_fma(o.t, av, v_neg(v_sub(d, one())));     /* d - 1 is exact */
    o.d = d;
    vf res = v_mul(v_neg(d_lo), v_recip(d)); /* 1 / (d + d_lo) = exp(res) / d */
    vf tk = v_add(o.t, k), rk = v_recip(tk), w = v_mul(v_sub(o.t, k), rk);
    w = v_fma(v_fma(v_neg(w), tk, v_sub(o.t, k)), rk, w); /* a Newton step: 22 bits are not enough */
    vf p = v_mul(o.t, o.t);
    o.h = v_mul(v_set(-0.5f), p);
    o.h_lo = v_mul(v_set(-0.5f), v_fma(o.t, o.t, v_neg(p))); /* t^2 = p + p_lo exactly */
    o.l = v_add(v_add(CPU_POLY_PHI_G(MA_V, K_V, w), res), o.h_lo);
    return o;
}
/* c exp(h + l) as cpu_poly.h describes, h + l in [-190, 88], |l| < 1: h - k
 * ln2_hi is exact (k ln2_hi has 15 bits; the difference is below 1 in size and
 * a multiple of h's ulp), so l joins the reduced argument, not h itself. That
 * sum's rounding (2Sum) and -k ln2_lo stay apart as u_lo: exp(u + u_lo) =
 * (1 + p) (1 + u_lo), so c exp(...) = c + c (p + u_lo (1 + p)). */
static inline vf v_mul_exp(vf c, vf h, vf l)
{
    vf k = v_round(v_mul(v_add(h, l), v_set(CPU_EXP_LOG2E)));
    vf u1 = v_fma(k, v_set(-CPU_EXP_LN2_HI), h);
    vf u = v_add(u1, l), bb = v_sub(u, u1);
    vf u_lo = v_add(v_sub(u1, v_sub(u, bb)), v_sub(l, bb));
    u_lo = v_fma(k, v_set(-CPU_EXP_LN2_LO), u_lo);
    vf p = v_fma(v_mul(u, u), CPU_POLY_EXPR(MA_V, K_V, u), u);
    p = v_add(p, v_fma(u_lo, p, u_lo));
    return v_ldexp(v_fma(c, p, c), k);
}
/* exp(x) for x <= 0 (softmax's terms), inline: v_mul_exp's reduction and
 * polynomial (about 0.6 ulp), x clamped at -104 where the result is 0 anyway
 * (NaN stays NaN through the polynomial) */
static inline vf v_exp_neg(vf x)
{
    const vf h = v_max(v_set(-104.0f), x); /* the second operand on NaN */
    vf k = v_round(v_mul(h, v_set(CPU_EXP_LOG2E)));
    vf u = v_fma(k, v_set(-CPU_EXP_LN2_HI), h);
    u = v_fma(k, v_set(-CPU_EXP_LN2_LO), u);
    vf p = v_fma(v_mul(u, u), CPU_POLY_EXPR(MA_V, K_V, u), u);
    return v_ldexp(v_add(one(), p), k);
}
/* x Phi(x) = x + Q for x > 0 and Q otherwise, Q = n Phi(-t) with n = -t (t
 * with x's sign for x <= 0, so that +0 gives +0): the factor n / 2d goes in
 * before the scaling, so even a subnormal tail is rounded once */
static inline vf v_gelu_erf(vf x)
{
    phi_parts o = v_phi_parts(x);
    vm pos = m_gt(x, zero());
    vf n = v_sel(pos, v_neg(o.t), v_copysign(o.t, x));
    vf q = v_mul_exp(v_div(v_mul(v_set(0.5f), n), o.d), o.h, o.l);
    return v_sel(pos, v_add(x, q), v_copysign(q, x)); /* x <= 0: x's sign, -0 too */
}
/* Phi(x) + x phi(x), phi(x) = exp(h + h_lo) / sqrt(2 pi) */
static inline vf v_gelu_erf_d(vf x)
{
    phi_parts o = v_phi_parts(x);
    vf q = v_mul_exp(v_div(v_set(0.5f), o.d), o.h, o.l);
    vf cdf = v_sel(m_gt(x, zero()), v_sub(one(), q), q);
    return v_fma(x, v_mul_exp(v_set(K_INV_SQRT_2PI), o.h, o.h_lo), cdf);
}

/* f(x, p0, p1) */
static inline vf f_neg(vf x, vf a, vf b) { (void)a; (void)b; return v_neg(x); }
static inline vf f_exp(vf x, vf a, vf b) { (void)a; (void)b; return v_exp(x); }
static inline vf f_log(vf x, vf a, vf b) { (void)a; (void)b; return v_log(x); }
static inline vf f_sqrt(vf x, vf a, vf b) { (void)a; (void)b; return v_sqrt(x); }
static inline vf f_rsqrt(vf x, vf a, vf b) { (void)a; (void)b; return v_div(one(), v_sqrt(x)); }
static inline vf f_abs(vf x, vf a, vf b) { (void)a; (void)b; return v_abs(x); }
static inline vf f_square(vf x, vf a, vf b) { (void)a; (void)b; return v_mul(x, x); }
/* NaN passes through */
static inline vf f_relu(vf x, vf a, vf b) { (void)a; (void)b; return v_sel(m_lt(x, zero()), zero(), x); }
static inline vf f_leaky_relu(vf x, vf a, vf b)
{
    (void)b;
    vm pos = m_gt(x, zero());
    return v_add(v_sel(pos, x, zero()), v_mul(a, v_sel(pos, zero(), x)));
}
static inline vf f_elu(vf x, vf a, vf b)
{
    (void)b;
    return v_sel(m_gt(x, zero()), x, v_mul(a, v_expm1_neg(x)));
}
static inline vf f_sigmoid(vf x, vf a, vf b) { (void)a; (void)b; return v_sigmoid(x); }
static inline vf f_tanh(vf x, vf a, vf b) { (void)a; (void)b; return v_tanh_(x); }
static inline vf f_gelu_tanh(vf x, vf a, vf b)
{
    (void)a; (void)b;
    return v_mul(x, v_sigmoid(v_mul(v_set(2.0f), gelu_tanh_u(x))));
}
static inline vf f_gelu(vf x, vf a, vf b) { (void)a; (void)b; return v_gelu_erf(x); }
static inline vf f_silu(vf x, vf a, vf b) { (void)a; (void)b; return v_mul(x, v_sigmoid(x)); }
/* max(x, 0) + log1p(exp(-|x|)), the exp inline (its argument is <= 0); max
 * gives 0 for NaN as fmaxf does, the log1p term keeps the NaN */
static inline vf f_softplus(vf x, vf a, vf b)
{
    (void)a; (void)b;
    return v_add(v_max(x, zero()), v_log1p_01(v_exp_neg(v_neg(v_abs(x)))));
}
/* min(max(x, lo), hi) with NaN passing and lo > hi giving hi */
static inline vf f_clamp(vf x, vf a, vf b)
{
    vf t = v_sel(m_lt(x, a), a, x);
    return v_sel(m_gt(t, b), b, t);
}
static inline vf f_pow(vf x, vf a, vf b) { (void)b; return v_pow(x, a); }
/* mish: x tanh(softplus(x)) */
static inline vf f_mish(vf x, vf a, vf b) { return v_mul(x, v_tanh_(f_softplus(x, a, b))); }
static inline vf f_add_scalar(vf x, vf a, vf b) { (void)b; return v_add(x, a); }
static inline vf f_mul_scalar(vf x, vf a, vf b) { (void)b; return v_mul(x, a); }

/* f'(x) given x and y = f(x) */
static inline vf b_neg(vf x, vf y, vf a, vf b) { (void)x; (void)y; (void)a; (void)b; return v_set(-1.0f); }
static inline vf b_exp(vf x, vf y, vf a, vf b) { (void)x; (void)a; (void)b; return y; }
static inline vf b_log(vf x, vf y, vf a, vf b) { (void)y; (void)a; (void)b; return v_div(one(), x); }
static inline vf b_sqrt(vf x, vf y, vf a, vf b) { (void)x; (void)a; (void)b; return v_div(v_set(0.5f), y); }
static inline vf b_rsqrt(vf x, vf y, vf a, vf b)
{
    (void)x; (void)a; (void)b;
    return v_mul(v_mul(v_mul(v_set(-0.5f), y), y), y);
}
/* sign(x), 0 at 0, NaN passing */
static inline vf b_abs(vf x, vf y, vf a, vf b)
{
    (void)y; (void)a; (void)b;
    return v_sel(m_gt(x, zero()), one(),
                 v_sel(m_lt(x, zero()), v_set(-1.0f), v_sel(m_eq(x, zero()), zero(), x)));
}
static inline vf b_square(vf x, vf y, vf a, vf b) { (void)y; (void)a; (void)b; return v_mul(v_set(2.0f), x); }
static inline vf b_relu(vf x, vf y, vf a, vf b) { (void)y; (void)a; (void)b; return v_one_if(m_gt(x, zero())); }
static inline vf b_leaky_relu(vf x, vf y, vf a, vf b) { (void)y; (void)b; return v_sel(m_gt(x, zero()), one(), a); }
static inline vf b_elu(vf x, vf y, vf a, vf b)
{
    (void)y; (void)b;
    return v_sel(m_gt(x, zero()), one(), v_mul(a, v_exp(x)));
}
/* from x, not y: with e = exp(-|x|), sigmoid' = e / (1 + e)^2 and tanh' the same
 * at 2|x|, times 4 (1 - y keeps no digits once y saturates) */
static inline vf b_sigmoid(vf x, vf y, vf a, vf b)
{
    (void)y; (void)a; (void)b;
    vf e = v_exp(v_neg(v_abs(x))), d = v_add(one(), e);
    return v_div(e, v_mul(d, d));
}
static inline vf b_tanh(vf x, vf y, vf a, vf b)
{
    (void)y; (void)a; (void)b;
    vf e = v_exp(v_mul(v_set(-2.0f), v_abs(x))), d = v_add(one(), e);
    return v_div(v_mul(v_set(4.0f), e), v_mul(d, d));
}
/* with s = sigmoid(2u): 0.5 (1 - tanh^2 u) = 2 s (1 - s) */
static inline vf b_gelu_tanh(vf x, vf y, vf a, vf b)
{
    (void)y; (void)a; (void)b;
    vf s = v_sigmoid(v_mul(v_set(2.0f), gelu_tanh_u(x)));
    vf du = v_mul(v_set(K_SQRT_2_OVER_PI),
                  v_add(one(), v_mul(v_mul(v_set(3.0f * K_GELU_C), x), x)));
    vf t = v_mul(v_mul(v_mul(v_mul(v_set(2.0f), x), s), v_sub(one(), s)), du);
    return v_add(s, t);
}
static inline vf b_gelu(vf x, vf y, vf a, vf b)
{
    (void)y; (void)a; (void)b;
    return v_gelu_erf_d(x);
}
static inline vf b_silu(vf x, vf y, vf a, vf b)
{
    (void)y; (void)a; (void)b;
    vf s = v_sigmoid(x);
    return v_mul(s, v_add(one(), v_mul(x, v_sub(one(), s))));
}
static inline vf b_softplus(vf x, vf y, vf a, vf b) { (void)y; (void)a; (void)b; return v_sigmoid(x); }
static inline vf b_clamp(vf x, vf y, vf a, vf b) { (void)y; return v_one_if(m_and(m_ge(x, a), m_le(x, b))); }
static inline vf b_pow(vf x, vf y, vf a, vf b)
{
    (void)y; (void)b;
    return v_sel(m_eq(a, zero()), zero(), v_mul(a, v_pow(x, v_sub(a, one()))));
}
/* t + x (1 - t^2) sigmoid(x) with t = tanh(softplus(x)) */
static inline vf b_mish(vf x, vf y, vf a, vf b)
{
    (void)y;
    vf t = v_tanh_(f_softplus(x, a, b));
    return v_add(t, v_mul(v_mul(x, v_sub(one(), v_mul(t, t))), v_sigmoid(x)));
}
static inline vf b_add_scalar(vf x, vf y, vf a, vf b) { (void)x; (void)y; (void)a; (void)b; return one(); }
static inline vf b_mul_scalar(vf x, vf y, vf a, vf b) { (void)x; (void)y; (void)b; return a; }

/* One vector kernel per row of the op table; uses_y: the derivative reads y
 * (else the backward kernel never computes it when it is not given). */
#define SIMD_UNARY_OPS(X) AG_UNARY_TABLE(X)

#define DEF_SIMD_UNARY(E, name, np, pn, doc, mod, uses_y, ...)                                \
    static void un_##name(int64_t n, float *y, const float *x, float p0, float p1)            \
    {                                                                                         \
        const vf a = v_set(p0), b = v_set(p1);                                                \
        int64_t i = 0;                                                                        \
        for (; i + VW <= n; i += VW) {                                                        \
            __builtin_prefetch(x + i + 512);                                                  \
            v_st(y + i, f_##name(v_ld(x + i), a, b));                                         \
        }                                                                                     \
        if (i < n) v_stp(y + i, f_##name(v_ldp(x + i, n - i), a, b), n - i);                  \
    }                                                                                         \
    static inline vf ub_one_##name(vf xv, const float *y, int64_t i, int64_t r, vf a, vf b)   \
    {                                                                                         \
        vf yv = xv;                                                                           \
        if (uses_y)                                                                           \
            yv = !y ? f_##name(xv, a, b) : r == VW ? v_ld(y + i) : v_ldp(y + i, r);           \
        return b_##name(xv, yv, a, b);                                                        \
    }                                                                                         \
    static void ub_##name(int64_t n, float *dx, const float *dy, const float *x,              \
                          const float *y, float p0, float p1)                                 \
    {                                                                                         \
        const vf a = v_set(p0), b = v_set(p1);                                                \
        int64_t i = 0;                                                                        \
        for (; i + VW <= n; i += VW)                                                          \
            v_st(dx + i, v_mul(v_ld(dy + i), ub_one_##name(v_ld(x + i), y, i, VW, a, b)));    \
        if (i < n) {                                                                          \
            const int64_t r = n - i;                                                          \
            v_stp(dx + i, v_mul(v_ldp(dy + i, r), ub_one_##name(v_ldp(x + i, r), y, i, r, a, b)), \
                  r);                                                                         \
        }                                                                                     \
    }
SIMD_UNARY_OPS(DEF_SIMD_UNARY)

/* ---- binary ops ------------------------------------------------------------ */

static inline vf g_add(vf a, vf b) { return v_add(a, b); }
static inline vf g_sub(vf a, vf b) { return v_sub(a, b); }
static inline vf g_mul(vf a, vf b) { return v_mul(a, b); }
static inline vf g_div(vf a, vf b) { return v_div(a, b); }
/* a > b ? a : b is the instruction; it already yields b when b is NaN, so only a
 * NaN in a needs restoring */
static inline vf g_maximum(vf a, vf b) { return v_sel(m_nan(a), a, v_max(a, b)); }
static inline vf g_minimum(vf a, vf b) { return v_sel(m_nan(a), a, v_min(a, b)); }
static inline vf g_eq(vf a, vf b) { return v_one_if(m_eq(a, b)); }
static inline vf g_ne(vf a, vf b) { return v_one_if(m_ne(a, b)); }
static inline vf g_lt(vf a, vf b) { return v_one_if(m_lt(a, b)); }
static inline vf g_le(vf a, vf b) { return v_one_if(m_le(a, b)); }
static inline vf g_gt(vf a, vf b) { return v_one_if(m_gt(a, b)); }
static inline vf g_ge(vf a, vf b) { return v_one_if(m_ge(a, b)); }

#define SIMD_BINARY_OPS(X) AG_BINARY_TABLE(X)

/* one loop per broadcast pattern, so none tests the strides per element */
#define BIN_LOOP(name, A, B, AP, BP)                                                  \
    do {                                                                              \
        for (; i + VW <= n; i += VW) v_st(y + i, g_##name(A, B));                     \
        if (i < n) v_stp(y + i, g_##name(AP, BP), n - i);                             \
    } while (0)

#define DEF_SIMD_BINARY(E, name, ...)                                                           \
    static void bn_##name(int64_t n, float *y, const float *a, int64_t as, const float *b,    \
                          int64_t bs)                                                         \
    {                                                                                         \
        int64_t i = 0;                                                                        \
        if (as && bs) {                                                                       \
            BIN_LOOP(name, v_ld(a + i), v_ld(b + i), v_ldp(a + i, n - i), v_ldp(b + i, n - i)); \
        } else if (as) {                                                                      \
            const vf bv = v_set(b[0]);                                                        \
            BIN_LOOP(name, v_ld(a + i), bv, v_ldp(a + i, n - i), bv);                         \
        } else if (bs) {                                                                      \
            const vf av = v_set(a[0]);                                                        \
            BIN_LOOP(name, av, v_ld(b + i), av, v_ldp(b + i, n - i));                         \
        } else {                                                                              \
            const vf yv = g_##name(v_set(a[0]), v_set(b[0]));                                 \
            for (; i + VW <= n; i += VW) v_st(y + i, yv);                                     \
            if (i < n) v_stp(y + i, yv, n - i);                                               \
        }                                                                                     \
    }
SIMD_BINARY_OPS(DEF_SIMD_BINARY)

/* ---- softmax and cross-entropy rows ---------------------------------------- */

/* Every exp here has a non-positive argument (x - max, log-probabilities), so
 * they use the inline v_exp_neg. */

static float row_max(const float *x, int64_t n)
{
    vf m = v_set(-INFINITY);
    vm nan = m_none();
    int64_t i = 0;
    for (; i + VW <= n; i += VW) {
        vf v = v_ld(x + i);
        nan = m_or(nan, m_nan(v));
        m = v_max(m, v);
    }
    if (i < n) {
        /* dead lanes load 0: keep the running max there instead */
        vf v = v_sel(m_lt(v_keep(one(), n - i), one()), m, v_ldp(x + i, n - i));
        nan = m_or(nan, m_nan(v));
        m = v_max(m, v);
    }
    return m_any(nan) ? NAN : v_hmax(m);
}

static double row_exp_sum(float *y, const float *x, int64_t n, float m)
{
    const vf mv = v_set(m);
    vacc acc = acc_zero();
    int64_t i = 0;
    for (; i + VW <= n; i += VW) {
        vf e = v_exp_neg(v_sub(v_ld(x + i), mv));
        if (y) v_st(y + i, e);
        acc_add(&acc, e);
    }
    if (i < n) {
        const int64_t r = n - i;
        vf e = v_exp_neg(v_sub(v_ldp(x + i, r), mv));
        if (y) v_stp(y + i, e, r);
        acc_add(&acc, v_keep(e, r));
    }
    return acc_sum(acc);
}

static void row_scale(float *y, int64_t n, float s)
{
    const vf sv = v_set(s);
    int64_t i = 0;
    for (; i + VW <= n; i += VW) v_st(y + i, v_mul(v_ld(y + i), sv));
    if (i < n) v_stp(y + i, v_mul(v_ldp(y + i, n - i), sv), n - i);
}

static void row_sub2(float *y, const float *x, int64_t n, float a, float b)
{
    const vf av = v_set(a), bv = v_set(b);
    int64_t i = 0;
    for (; i + VW <= n; i += VW) v_st(y + i, v_sub(v_sub(v_ld(x + i), av), bv));
    if (i < n) v_stp(y + i, v_sub(v_sub(v_ldp(x + i, n - i), av), bv), n - i);
}

static double row_sum(const float *x, int64_t n)
{
    vacc acc = acc_zero();
    int64_t i = 0;
    for (; i + VW <= n; i += VW) acc_add(&acc, v_ld(x + i));
    if (i < n) acc_add(&acc, v_ldp(x + i, n - i));
    return acc_sum(acc);
}

static double row_dot(const float *a, const float *b, int64_t n)
{
    vacc acc = acc_zero();
    int64_t i = 0;
    for (; i + VW <= n; i += VW) acc_add_prod(&acc, v_ld(a + i), v_ld(b + i));
    if (i < n) acc_add_prod(&acc, v_ldp(a + i, n - i), v_ldp(b + i, n - i));
    return acc_sum(acc);
}

static double row_lse_minus(const float *x, int64_t n, double lse)
{
    const vdbl d = d_set(lse);
    vacc acc = acc_zero();
    int64_t i = 0;
    for (; i + VW <= n; i += VW) acc_add_rsub(&acc, d, v_ld(x + i));
    double s = acc_sum(acc);
    for (; i < n; i++) s += lse - x[i]; /* no transcendental: a plain remainder */
    return s;
}

static inline vf ce_bw_one(vf x, vf m, vf ls, vf g, vf uni)
{
    return v_mul(g, v_sub(v_exp_neg(v_sub(v_sub(x, m), ls)), uni));
}

static void row_ce_bw(float *dx, const float *x, int64_t n, float m, float ls, float g, float uni)
{
    const vf mv = v_set(m), lv = v_set(ls), gv = v_set(g), uv = v_set(uni);
    int64_t i = 0;
    for (; i + VW <= n; i += VW) v_st(dx + i, ce_bw_one(v_ld(x + i), mv, lv, gv, uv));
    if (i < n) v_stp(dx + i, ce_bw_one(v_ldp(x + i, n - i), mv, lv, gv, uv), n - i);
}

/* The next row's lines, one prefetch per 64 bytes, while this row is worked
 * on in cache: its first pass then finds it there instead of waiting on memory
 * with nothing to overlap. */
#define PREFETCH_LINE(i, rd, wr)                                                      \
    do {                                                                              \
        if (VW >= 16 || ((i) & 15) == 0) {                                            \
            __builtin_prefetch((rd) + (i));                                           \
            __builtin_prefetch((wr) + (i), 1);                                        \
        }                                                                             \
    } while (0)

/* Softmax (y = exp(x - m) / sum) or log-softmax (y = (x - m) - log(sum)) of one
 * row: max, exp and sum, then scale or subtract, prefetching px and py (the
 * next row, or this one again). */
static inline void softmax_row(float *y, const float *x, int64_t n, bool log_, const float *px,
                               float *py)
{
    const float m = row_max(x, n);
    const vf mv = v_set(m);
    vacc acc = acc_zero();
    int64_t i = 0;
    for (; i + VW <= n; i += VW) {
        PREFETCH_LINE(i, px, py);
        vf e = v_exp_neg(v_sub(v_ld(x + i), mv));
        if (!log_) v_st(y + i, e);
        acc_add(&acc, e);
    }
    if (i < n) {
        const int64_t r = n - i;
        vf e = v_exp_neg(v_sub(v_ldp(x + i, r), mv));
        if (!log_) v_stp(y + i, e, r);
        acc_add(&acc, v_keep(e, r));
    }
    const double sum = acc_sum(acc);
    if (log_) row_sub2(y, x, n, m, (float)log(sum));
    else row_scale(y, n, (float)(1.0 / sum));
}

/* Rows of at most SM_SMALL: VW rows at a time, transposed (gathered in,
 * scattered out) so that each lane is a row. The max, the sums and the scaling then need no
 * horizontal steps, which dominate a short row's latency. The arithmetic is
 * the row path's, lane by lane (the double sum adds the same terms, in column
 * order). */
#define SM_SMALL 16
static void softmax_small(float *y, const float *x, int64_t n, bool log_)
{
    float t[SM_SMALL][VW];
    for (int64_t j = 0; j < n; j++) v_st(t[j], v_gather(x + j, n));
    vf m = v_ld(t[0]);
    vm nan = m_nan(m);
    for (int64_t j = 1; j < n; j++) {
        vf v = v_ld(t[j]);
        nan = m_or(nan, m_nan(v));
        m = v_max(m, v);
    }
    m = v_sel(nan, v_set(NAN), m);
    vacc acc = acc_zero();
    for (int64_t j = 0; j < n; j++) {
        vf e = v_exp_neg(v_sub(v_ld(t[j]), m));
        if (!log_) v_st(t[j], e);
        acc_add(&acc, e);
    }
    if (log_) {
        const vf ls = acc_log_f(acc);
        for (int64_t j = 0; j < n; j++) v_scatter(y + j, n, v_sub(v_sub(v_ld(t[j]), m), ls));
    } else {
        const vf inv = acc_recip_f(acc);
        for (int64_t j = 0; j < n; j++) v_scatter(y + j, n, v_mul(v_ld(t[j]), inv));
    }
}

/* rows consecutive rows of n; inlined row code lets a short row overlap the next */
static void rows_softmax(float *y, const float *x, int64_t rows, int64_t n, bool log_)
{
    int64_t r0 = 0;
    if (n >= 1 && n <= SM_SMALL)
        for (; r0 + VW <= rows; r0 += VW) softmax_small(y + r0 * n, x + r0 * n, n, log_);
    for (int64_t r = r0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        const bool more = r + 1 < rows;
        softmax_row(yr, xr, n, log_, more ? xr + n : xr, more ? yr + n : yr);
    }
}

/* Their backward over one row: dx = y (dy - dot(dy, y)) or dx = dy - exp(y)
 * sum(dy), prefetching the next row's dy, y and dx (pg, py, pd). */
static inline void softmax_bw_row(float *dx, const float *dy, const float *y, int64_t n,
                                  bool log_, const float *pg, const float *py, float *pd)
{
    const vf c = v_set(log_ ? (float)row_sum(dy, n) : (float)row_dot(dy, y, n));
    int64_t i = 0;
    for (; i + VW <= n; i += VW) {
        PREFETCH_LINE(i, pg, pd);
        if (VW >= 16 || (i & 15) == 0) __builtin_prefetch(py + i);
        vf g = v_ld(dy + i), yv = v_ld(y + i);
        v_st(dx + i, log_ ? v_sub(g, v_mul(v_exp_neg(yv), c)) : v_mul(yv, v_sub(g, c)));
    }
    if (i < n) {
        const int64_t r = n - i;
        vf g = v_ldp(dy + i, r), yv = v_ldp(y + i, r);
        v_stp(dx + i, log_ ? v_sub(g, v_mul(v_exp_neg(yv), c)) : v_mul(yv, v_sub(g, c)), r);
    }
}

static void rows_softmax_bw(float *dx, const float *dy, const float *y, int64_t rows, int64_t n,
                            bool log_)
{
    for (int64_t r = 0; r < rows; r++) {
        const int64_t o = r * n, on = r + 1 < rows ? o + n : o;
        softmax_bw_row(dx + o, dy + o, y + o, n, log_, dy + on, y + on, dx + on);
    }
}

/* ---- reductions ------------------------------------------------------------- */

/* acc[i] += x[i] in double (a column sum's block of outputs) */
static void col_add(double *acc, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + VW <= n; i += VW) d_add_to(acc + i, v_ld(x + i));
    for (; i < n; i++) acc[i] += x[i];
}

/* ---- optimizers ------------------------------------------------------------ */

/* Each element's update is the scalar kernel's, operation for operation and
 * without fused multiply-adds: the ISAs give bit-identical parameters. The
 * tail goes through the same vector code on masked loads. */

/* buf may be NULL (no momentum) */
static inline void sgd_vec(const cpu_optim_hp *h, float *p, const float *gr, float *buf, int64_t r)
{
    const bool full = r == VW;
    vf pv = full ? v_ld(p) : v_ldp(p, r), g = full ? v_ld(gr) : v_ldp(gr, r);
    if (h->wd != 0) g = v_add(g, v_mul(v_set(h->wd), pv));
    if (buf) {
        vf b = g;
        if (!h->first) {
            vf old = full ? v_ld(buf) : v_ldp(buf, r);
            b = v_add(v_mul(v_set(h->mom), old), v_mul(v_set(h->damp), g));
        }
        if (full) v_st(buf, b); else v_stp(buf, b, r);
        g = h->nesterov ? v_add(g, v_mul(v_set(h->mom), b)) : b;
    }
    pv = v_sub(pv, v_mul(v_set(h->lr), g));
    if (full) v_st(p, pv); else v_stp(p, pv, r);
}

static void sgd(int64_t n, const cpu_optim_hp *h, float *p, const float *g, float *s0, float *s1)
{
    (void)s1;
    int64_t i = 0;
    for (; i + VW <= n; i += VW) sgd_vec(h, p + i, g + i, s0 ? s0 + i : NULL, VW);
    if (i < n) sgd_vec(h, p + i, g + i, s0 ? s0 + i : NULL, n - i);
}

static inline void rmsprop_vec(const cpu_optim_hp *h, float *p, const float *gr, float *sq,
                               float *buf, int64_t r)
{
    const bool full = r == VW;
    vf pv = full ? v_ld(p) : v_ldp(p, r), g = full ? v_ld(gr) : v_ldp(gr, r);
    vf sv = full ? v_ld(sq) : v_ldp(sq, r);
    if (h->wd != 0) g = v_add(g, v_mul(v_set(h->wd), pv));
    sv = v_add(v_mul(v_set(h->alpha), sv), v_mul(v_mul(v_set(1.0f - h->alpha), g), g));
    if (full) v_st(sq, sv); else v_stp(sq, sv, r);
    vf avg = v_add(v_sqrt(sv), v_set(h->eps));
    if (buf) {
        vf b = full ? v_ld(buf) : v_ldp(buf, r);
        b = v_add(v_mul(v_set(h->mom), b), v_div(g, avg));
        if (full) v_st(buf, b); else v_stp(buf, b, r);
        pv = v_sub(pv, v_mul(v_set(h->lr), b));
    } else {
        pv = v_sub(pv, v_div(v_mul(v_set(h->lr), g), avg));
    }
    if (full) v_st(p, pv); else v_stp(p, pv, r);
}

static void rmsprop(int64_t n, const cpu_optim_hp *h, float *p, const float *g, float *s0,
                    float *s1)
{
    int64_t i = 0;
    for (; i + VW <= n; i += VW) rmsprop_vec(h, p + i, g + i, s0 + i, s1 ? s1 + i : NULL, VW);
    if (i < n) rmsprop_vec(h, p + i, g + i, s0 + i, s1 ? s1 + i : NULL, n - i);
}

static inline void adam_vec(const cpu_optim_hp *h, float *p, const float *gr, float *m, float *v,
                            int64_t r)
{
    const bool full = r == VW;
    vf pv = full ? v_ld(p) : v_ldp(p, r), g = full ? v_ld(gr) : v_ldp(gr, r);
    vf mv = full ? v_ld(m) : v_ldp(m, r), vv = full ? v_ld(v) : v_ldp(v, r);
    pv = v_mul(pv, v_set(h->decay));
    if (h->l2 != 0) g = v_add(g, v_mul(v_set(h->l2), pv));
    /* lerp(m, g, 1 - b1), as PyTorch */
    mv = v_add(mv, v_mul(v_set(1.0f - h->b1), v_sub(g, mv)));
    vv = v_add(v_mul(v_set(h->b2), vv), v_mul(v_mul(v_set(1.0f - h->b2), g), g));
    vf denom = v_add(v_div(v_sqrt(vv), v_set(h->bc2_sqrt)), v_set(h->eps));
    pv = v_sub(pv, v_mul(v_set(h->step_size), v_div(mv, denom)));
    if (full) {
        v_st(m, mv);
        v_st(v, vv);
        v_st(p, pv);
    } else {
        v_stp(m, mv, r);
        v_stp(v, vv, r);
        v_stp(p, pv, r);
    }
}

static void adam(int64_t n, const cpu_optim_hp *h, float *p, const float *g, float *s0, float *s1)
{
    int64_t i = 0;
    for (; i + VW <= n; i += VW) adam_vec(h, p + i, g + i, s0 + i, s1 + i, VW);
    if (i < n) adam_vec(h, p + i, g + i, s0 + i, s1 + i, n - i);
}

/* ---- the table -------------------------------------------------------------- */

#define SIMD_UNARY_ENTRY(E, name, ...) [AG_UNARY_##E] = un_##name,
#define SIMD_UNARY_BW_ENTRY(E, name, ...) [AG_UNARY_##E] = ub_##name,
#define SIMD_BINARY_ENTRY(E, name, ...) [AG_BINARY_##E] = bn_##name,

const cpu_simd_ops SIMD_TABLE = {
    .name = SIMD_NAME,
    .unary = {SIMD_UNARY_OPS(SIMD_UNARY_ENTRY)},
    .unary_bw = {SIMD_UNARY_OPS(SIMD_UNARY_BW_ENTRY)},
    .binary = {SIMD_BINARY_OPS(SIMD_BINARY_ENTRY)},
    .rows = {.max = row_max, .exp_sum = row_exp_sum, .lse_minus = row_lse_minus,
             .ce_bw = row_ce_bw, .softmax = rows_softmax, .softmax_bw = rows_softmax_bw},
    .reduce = {.sum = row_sum, .col_add = col_add},
    .optim = {.sgd = sgd, .rmsprop = rmsprop, .adam = adam},
};
