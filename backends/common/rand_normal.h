/* A normal draw from two Philox words (Box-Muller, cosine branch), written once
 * for the CPU (C), OpenCL C and GLSL so that ag_randn gives the same bits on
 * every backend. The drivers' own log, sqrt and cos differ by an ulp or more
 * (OpenCL allows 3 ulp, Vulkan's sqrt is 1/inversesqrt), so only operations
 * every API rounds correctly appear here: +, - and * (contraction off: GLSL
 * `precise`, OpenCL's FP_CONTRACT pragma, ISO C), integer and bit operations
 * and floor. No intermediate is subnormal (a flushing GPU gives the same bits).
 *
 * z = sqrt(-2 ln u) cos(2 pi v), u and v in (0, 1] from the top 24 bits.
 * Accuracy against double over all 2^24 inputs (measured): ln within 0.83 ulp,
 * the square root within 0.76 ulp, cos within 1.53 x 2^-24 absolute. */
#ifndef AG_RAND_NORMAL_H
#define AG_RAND_NORMAL_H

#if defined(VULKAN) /* GLSL through glslc */
#define RN_FN
#define RN_UINT uint
#define RN_PRECISE precise
#define RN_F2U(x) floatBitsToUint(x)
#define RN_U2F(x) uintBitsToFloat(x)
#define RN_FLOOR(x) floor(x)
#define RN_F(x) x
#define RN_INT(x) int(x)
#define RN_FLOAT(x) float(x)
#elif defined(__OPENCL_VERSION__)
#pragma OPENCL FP_CONTRACT OFF
#define RN_FN inline
#define RN_UINT uint
#define RN_PRECISE
#define RN_F2U(x) as_uint(x)
#define RN_U2F(x) as_float(x)
#define RN_FLOOR(x) floor(x)
#define RN_F(x) x##f
#define RN_INT(x) ((int)(x))
#define RN_FLOAT(x) ((float)(x))
#else /* C11: ISO mode does not contract; clang needs telling */
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#define RN_FN static inline
#define RN_UINT uint32_t
#define RN_PRECISE
static inline uint32_t rn_f2u(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static inline float rn_u2f(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
#define RN_F2U(x) rn_f2u(x)
#define RN_U2F(x) rn_u2f(x)
#define RN_FLOOR(x) floorf(x)
#define RN_F(x) x##f
#define RN_INT(x) ((int)(x))
#define RN_FLOAT(x) ((float)(x))
#endif

/* ln u for u in [2^-24, 1]: u = m 2^e with m in [sqrt(1/2), sqrt(2)), then
 * ln(1 + f), f = m - 1 (exact), by the Cephes polynomial, plus e ln 2 with
 * ln 2 split in two so e * hi is exact. */
RN_FN float rn_log(float u)
{
    RN_UINT b = RN_F2U(u);
    int e = RN_INT(b >> 23u) - 127;
    float m = RN_U2F((b & 0x007fffffu) | 0x3f800000u); /* [1, 2) */
    if (m > RN_F(1.41421356)) {
        m = m * RN_F(0.5);
        e = e + 1;
    }
    RN_PRECISE float f = m - RN_F(1.0);
    RN_PRECISE float z = f * f;
    RN_PRECISE float p = RN_F(7.0376836292e-2);
    p = p * f + RN_F(-1.1514610310e-1);
    p = p * f + RN_F(1.1676998740e-1);
    p = p * f + RN_F(-1.2420140846e-1);
    p = p * f + RN_F(1.4249322787e-1);
    p = p * f + RN_F(-1.6668057665e-1);
    p = p * f + RN_F(2.0000714765e-1);
    p = p * f + RN_F(-2.4999993993e-1);
    p = p * f + RN_F(3.3333331174e-1);
    RN_PRECISE float fe = RN_FLOAT(e);
    RN_PRECISE float t = p * f * z + fe * RN_F(-2.12194440e-4);
    t = t - RN_F(0.5) * z;
    RN_PRECISE float r = f + t + fe * RN_F(0.693359375);
    return r;
}

/* sqrt x for x in [0, 34]: Newton's iteration for 1/sqrt x from the bit-level
 * first guess (three steps: 3.4e-2 -> 1.7e-3 -> 4.5e-6 -> below rounding),
 * then x / sqrt x and one correction of that. */
RN_FN float rn_sqrt(float x)
{
    if (x == RN_F(0.0)) return RN_F(0.0);
    RN_PRECISE float y = RN_U2F(0x5f3759dfu - (RN_F2U(x) >> 1u));
    RN_PRECISE float h = RN_F(0.5) * x;
    y = y * (RN_F(1.5) - h * y * y);
    y = y * (RN_F(1.5) - h * y * y);
    y = y * (RN_F(1.5) - h * y * y);
    RN_PRECISE float s = x * y;
    s = s + (RN_F(0.5) * y) * (x - s * s); /* one step on s itself */
    return s;
}

/* cos(2 pi v) for v in [0, 1]: v = (q + r) / 4 with q whole and |r| <= 1/2
 * (both exact), a = r pi / 2, then the quadrant's sine or cosine polynomial
 * (Cephes, for |a| <= pi / 4). */
RN_FN float rn_cos_2pi(float v)
{
    RN_PRECISE float t = v * RN_F(4.0);
    float q = RN_FLOOR(t + RN_F(0.5));
    RN_PRECISE float r = t - q;
    RN_PRECISE float a = r * RN_F(1.57079632679489662);
    RN_PRECISE float z = a * a;
    RN_PRECISE float c = RN_F(2.443315711809948e-5);
    c = c * z + RN_F(-1.388731625493765e-3);
    c = c * z + RN_F(4.166664568298827e-2);
    c = c * z * z - RN_F(0.5) * z + RN_F(1.0);
    RN_PRECISE float s = RN_F(-1.9515295891e-4);
    s = s * z + RN_F(8.3321608736e-3);
    s = s * z + RN_F(-1.6666654611e-1);
    s = s * z * a + a;
    /* quadrants 0..3: c, -s, -c, s (written without a chain of selects, which
     * oclgrind 21.10 mis-executes) */
    int k = RN_INT(q) & 3;
    float cs = (k & 1) != 0 ? s : c;
    return k == 1 || k == 2 ? -cs : cs;
}

/* The normal value of the word pair (wu, wv). */
RN_FN float rn_normal(RN_UINT wu, RN_UINT wv)
{
    RN_PRECISE float u = RN_FLOAT((wu >> 8u) + 1u) * RN_F(5.9604644775390625e-8); /* 2^-24 */
    RN_PRECISE float v = RN_FLOAT((wv >> 8u) + 1u) * RN_F(5.9604644775390625e-8);
    RN_PRECISE float z = rn_sqrt(RN_F(-2.0) * rn_log(u)) * rn_cos_2pi(v);
    return z;
}

#endif
