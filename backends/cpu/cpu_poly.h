/* Polynomial pieces of the CPU activations, shared by the portable kernels
 * (cpu_elementwise.c) and the vector ones (ew_simd_body.h) so that every ISA
 * computes the same formula. Coefficients are Chebyshev fits (mpmath) rounded
 * to float; bench/ulp measures the resulting error of every op over all finite
 * floats, per ISA (docs/testing.md has the table).
 *
 * Each CPU_POLY_* macro is Horner's rule written with the caller's
 * multiply-add MA(a, b, c) = a * b + c and constant maker K(c). */
#ifndef AG_CPU_POLY_H
#define AG_CPU_POLY_H

/* tanh(x) = x + x^3 P(x^2) for |x| < 1: relative error of the fit 1e-8 */
#define CPU_TANH_P0 -0.333333343f
#define CPU_TANH_P1 0.13333331f
#define CPU_TANH_P2 -0.0539675951f
#define CPU_TANH_P3 0.0218625758f
#define CPU_TANH_P4 -0.00882625021f
#define CPU_TANH_P5 0.00347838644f
#define CPU_TANH_P6 -0.00124215754f
#define CPU_TANH_P7 0.000337689824f
#define CPU_TANH_P8 -4.84671109e-05f
#define CPU_POLY_TANH(MA, K, s)                                                           \
    MA(MA(MA(MA(MA(MA(MA(MA(K(CPU_TANH_P8), s, K(CPU_TANH_P7)), s, K(CPU_TANH_P6)), s,    \
                      K(CPU_TANH_P5)), s, K(CPU_TANH_P4)), s, K(CPU_TANH_P3)), s,           \
             K(CPU_TANH_P2)), s, K(CPU_TANH_P1)), s, K(CPU_TANH_P0))

/* expm1(x) = x + x^2 P(x) for -1 <= x <= 0: relative error of the fit 6e-9 */
#define CPU_EXPM1_P0 0.5f
#define CPU_EXPM1_P1 0.166666642f
#define CPU_EXPM1_P2 0.0416662917f
#define CPU_EXPM1_P3 0.00833105016f
#define CPU_EXPM1_P4 0.00138224161f
#define CPU_EXPM1_P5 0.000188324761f
#define CPU_EXPM1_P6 1.69281266e-05f
#define CPU_POLY_EXPM1(MA, K, x)                                                           \
    MA(MA(MA(MA(MA(MA(K(CPU_EXPM1_P6), x, K(CPU_EXPM1_P5)), x, K(CPU_EXPM1_P4)), x,        \
                K(CPU_EXPM1_P3)), x, K(CPU_EXPM1_P2)), x, K(CPU_EXPM1_P1)), x, K(CPU_EXPM1_P0))

/* log1p(e) = e + e^2 Q(e) for 0 <= e <= 1: relative error of the fit 2e-8 */
#define CPU_LOG1P_Q0 -0.5f
#define CPU_LOG1P_Q1 0.333333135f
#define CPU_LOG1P_Q2 -0.24999246f
#define CPU_LOG1P_Q3 0.199878186f
#define CPU_LOG1P_Q4 -0.165636182f
#define CPU_LOG1P_Q5 0.137627095f
#define CPU_LOG1P_Q6 -0.10774868f
#define CPU_LOG1P_Q7 0.0720485002f
#define CPU_LOG1P_Q8 -0.0363171063f
#define CPU_LOG1P_Q9 0.011725341f
#define CPU_LOG1P_Q10 -0.00177066261f
#define CPU_POLY_LOG1P(MA, K, e)                                                            \
    MA(MA(MA(MA(MA(MA(MA(MA(MA(MA(K(CPU_LOG1P_Q10), e, K(CPU_LOG1P_Q9)), e, K(CPU_LOG1P_Q8)), \
                               e, K(CPU_LOG1P_Q7)), e, K(CPU_LOG1P_Q6)), e, K(CPU_LOG1P_Q5)), \
                      e, K(CPU_LOG1P_Q4)), e, K(CPU_LOG1P_Q3)), e, K(CPU_LOG1P_Q2)), e,       \
          K(CPU_LOG1P_Q1)), e, K(CPU_LOG1P_Q0))

/* The normal tail Phi(-t), t >= 0 (gelu's 0.5 erfc(t / sqrt 2)), as
 *   Phi(-t) = 0.5 exp(-t^2 / 2 + G(w)) / (1 + a t),  w = (t - 2) / (t + 2),
 * with a = sqrt(pi / 2) (as a float) and G a fit of log((1 + a t) erfcx(t / sqrt 2))
 * over t in [0, 16]: G stays within [0, 0.171] (0 at t = 0, log(2 / sqrt(pi))
 * at infinity), so the float rounding of G is far below an ulp of the result,
 * and the fit's absolute error is 4e-9. Beyond t = 16, Phi(-t) t underflows. */
#define CPU_PHI_A 1.25331414f
#define CPU_PHI_K 2.0f
#define CPU_PHI_TMAX 16.0f
#define CPU_PHI_G0 0.164617822f
#define CPU_PHI_G1 -0.0632105842f
#define CPU_PHI_G2 -0.170929775f
#define CPU_PHI_G3 0.0622456633f
#define CPU_PHI_G4 0.012434545f
#define CPU_PHI_G5 0.00191547733f
#define CPU_PHI_G6 -0.00680869492f
#define CPU_PHI_G7 -0.00191204587f
#define CPU_PHI_G8 0.000560994959f
#define CPU_PHI_G9 0.00116117019f
#define CPU_PHI_G10 0.000236036343f
#define CPU_PHI_G11 -0.000199675211f
#define CPU_PHI_G12 -0.000110926521f
#define CPU_POLY_PHI_G(MA, K, w)                                                             \
    MA(MA(MA(MA(MA(MA(MA(MA(MA(MA(MA(MA(K(CPU_PHI_G12), w, K(CPU_PHI_G11)), w, K(CPU_PHI_G10)), \
                                     w, K(CPU_PHI_G9)), w, K(CPU_PHI_G8)), w, K(CPU_PHI_G7)),  \
                            w, K(CPU_PHI_G6)), w, K(CPU_PHI_G5)), w, K(CPU_PHI_G4)), w,          \
                   K(CPU_PHI_G3)), w, K(CPU_PHI_G2)), w, K(CPU_PHI_G1)), w, K(CPU_PHI_G0))

/* c exp(s + r), |r| tiny, with a single rounding (gelu's tails need more than
 * exp's own 1-ulp result times c): s = k ln2 + u by Cody and Waite (k ln2_hi
 * exact for |k| < 512), u += r, exp(u) - 1 = u + u^2 P(u) for |u| <= 0.35 (fit
 * error 1e-9 relative to exp(u)), then c + c (exp(u) - 1) scaled by 2^k. */
#define CPU_EXP_LOG2E 1.44269502f
#define CPU_EXP_LN2_HI 0.693145752f /* 0x3f317200 */
#define CPU_EXP_LN2_LO 1.42860677e-06f
#define CPU_EXPR_P0 0.5f
#define CPU_EXPR_P1 0.166666672f
#define CPU_EXPR_P2 0.041666463f
#define CPU_EXPR_P3 0.00833331048f
#define CPU_EXPR_P4 0.00139336742f
#define CPU_EXPR_P5 0.000198910173f
#define CPU_POLY_EXPR(MA, K, u)                                                              \
    MA(MA(MA(MA(MA(K(CPU_EXPR_P5), u, K(CPU_EXPR_P4)), u, K(CPU_EXPR_P3)), u, K(CPU_EXPR_P2)), \
          u, K(CPU_EXPR_P1)), u, K(CPU_EXPR_P0))

#endif /* AG_CPU_POLY_H */
