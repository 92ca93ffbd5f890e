/* Advanced SIMD (NEON) vector primitives for ew_simd_body.h, with SLEEF's
 * 1-ulp math. AArch64 has Advanced SIMD in its baseline, so this file needs no
 * extra flags; it is still called only when cpu_isa() reports NEON, so
 * AG_CPU_ISA=scalar keeps the portable kernels reachable. */
#include <arm_neon.h>
#include <sleef.h>
#include <string.h>

#include "cpu_simd.h"

#define VW 4
#define SIMD_TABLE cpu_simd_neon
#define SIMD_NAME "neon"

typedef float32x4_t vf;
typedef uint32x4_t vm; /* a lane mask: all ones or all zeros */

static inline vf v_set(float a) { return vdupq_n_f32(a); }
static inline vf v_ld(const float *p) { return vld1q_f32(p); }
static inline void v_st(float *p, vf v) { vst1q_f32(p, v); }

/* Partial vectors for the last r < VW elements. NEON has no masked loads, so
 * they go through a zeroed stack vector: nothing past the end is touched, dead
 * lanes read 0 as with the x86 masked loads, and each live lane computes the
 * same as in a full vector. */
static inline vf v_ldp(const float *p, int64_t r)
{
    float t[VW] = {0};
    memcpy(t, p, (size_t)r * sizeof *t);
    return vld1q_f32(t);
}
static inline void v_stp(float *p, vf v, int64_t r)
{
    float t[VW];
    vst1q_f32(t, v);
    memcpy(p, t, (size_t)r * sizeof *t);
}
/* zero in the lanes at and past r */
static inline vf v_keep(vf v, int64_t r)
{
    static const uint32_t lane[VW] = {0, 1, 2, 3};
    const vm live = vcltq_u32(vld1q_u32(lane), vdupq_n_u32((uint32_t)r));
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), live));
}

static inline vf v_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf v_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf v_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf v_div(vf a, vf b) { return vdivq_f32(a, b); }
static inline vf v_sqrt(vf a) { return vsqrtq_f32(a); }
/* a > b ? a : b, and b when either is NaN: the x86 rule the body is written
 * for (FMAX would return NaN, FMAXNM the number), so by compare and select */
static inline vf v_max(vf a, vf b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
static inline vf v_min(vf a, vf b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
static inline vf v_abs(vf a) { return vabsq_f32(a); }
static inline vf v_neg(vf a) { return vnegq_f32(a); }
/* 1 / a to about 22 bits: the 8-bit estimate and two Newton steps */
static inline vf v_recip(vf a)
{
    vf r = vrecpeq_f32(a);
    r = vmulq_f32(r, vrecpsq_f32(a, r));
    return vmulq_f32(r, vrecpsq_f32(a, r));
}
/* to the nearest integer (ties to even) */
static inline vf v_round(vf a) { return vrndnq_f32(a); }
/* a 2^k for an integral k in [-252, 254], rounded once (two exact steps of at
 * most 2^+-126, the second may round into a subnormal) */
static inline vf v_ldexp(vf a, vf k)
{
    int32x4_t ki = vcvtq_s32_f32(k), k1 = vshrq_n_s32(ki, 1), k2 = vsubq_s32(ki, k1);
    int32x4_t bias = vdupq_n_s32(127);
    vf s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k1, bias), 23));
    vf s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k2, bias), 23));
    return vmulq_f32(vmulq_f32(a, s1), s2);
}
/* a * b + c, one rounding */
static inline vf v_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
/* |a| with the sign of s */
static inline vf v_copysign(vf a, vf s) { return vbslq_f32(vdupq_n_u32(0x7fffffffu), a, s); }

/* ordered compares are false on NaN; != is their complement, true on NaN as in C */
static inline vm m_lt(vf a, vf b) { return vcltq_f32(a, b); }
static inline vm m_le(vf a, vf b) { return vcleq_f32(a, b); }
static inline vm m_gt(vf a, vf b) { return vcgtq_f32(a, b); }
static inline vm m_ge(vf a, vf b) { return vcgeq_f32(a, b); }
static inline vm m_eq(vf a, vf b) { return vceqq_f32(a, b); }
static inline vm m_ne(vf a, vf b) { return vmvnq_u32(vceqq_f32(a, b)); }
static inline vm m_nan(vf a) { return vmvnq_u32(vceqq_f32(a, a)); }
static inline vm m_and(vm a, vm b) { return vandq_u32(a, b); }
static inline vm m_or(vm a, vm b) { return vorrq_u32(a, b); }
static inline vm m_none(void) { return vdupq_n_u32(0); }
static inline bool m_any(vm m) { return vmaxvq_u32(m) != 0; }
/* m ? a : b */
static inline vf v_sel(vm m, vf a, vf b) { return vbslq_f32(m, a, b); }
/* m ? 1 : 0 */
static inline vf v_one_if(vm m)
{
    return vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(vdupq_n_f32(1.0f))));
}

/* callers rule out NaN first (row_max) */
static inline float v_hmax(vf v) { return vmaxvq_f32(v); }

static inline vf v_exp(vf a) { return Sleef_expf4_u10advsimd(a); }
static inline vf v_log(vf a) { return Sleef_logf4_u10advsimd(a); }
static inline vf v_pow(vf a, vf b) { return Sleef_powf4_u10advsimd(a, b); }

/* double accumulators: the float lanes widened, so long rows keep their digits */
typedef struct vacc {
    float64x2_t lo, hi;
} vacc;
static inline float64x2_t lo_pd(vf v) { return vcvt_f64_f32(vget_low_f32(v)); }
static inline float64x2_t hi_pd(vf v) { return vcvt_high_f64_f32(v); }
static inline vacc acc_zero(void) { return (vacc){vdupq_n_f64(0.0), vdupq_n_f64(0.0)}; }
static inline void acc_add(vacc *a, vf v)
{
    a->lo = vaddq_f64(a->lo, lo_pd(v));
    a->hi = vaddq_f64(a->hi, hi_pd(v));
}
typedef float64x2_t vdbl;
static inline vdbl d_set(double d) { return vdupq_n_f64(d); }
/* adds d - v (widened) */
static inline void acc_add_rsub(vacc *a, vdbl d, vf v)
{
    a->lo = vaddq_f64(a->lo, vsubq_f64(d, lo_pd(v)));
    a->hi = vaddq_f64(a->hi, vsubq_f64(d, hi_pd(v)));
}
/* adds u * v, the product exact in double */
static inline void acc_add_prod(vacc *a, vf u, vf v)
{
    a->lo = vaddq_f64(a->lo, vmulq_f64(lo_pd(u), lo_pd(v)));
    a->hi = vaddq_f64(a->hi, vmulq_f64(hi_pd(u), hi_pd(v)));
}
static inline double acc_sum(vacc a) { return vaddvq_f64(vaddq_f64(a.lo, a.hi)); }

/* p[0..VW) += v, widened */
static inline void d_add_to(double *p, vf v)
{
    vst1q_f64(p, vaddq_f64(vld1q_f64(p), lo_pd(v)));
    vst1q_f64(p + 2, vaddq_f64(vld1q_f64(p + 2), hi_pd(v)));
}

/* per lane, (float)(1 / sum) and (float)log(sum) of the double sums */
static inline vf acc_recip_f(vacc a)
{
    const float64x2_t one = vdupq_n_f64(1.0);
    return vcvt_high_f32_f64(vcvt_f32_f64(vdivq_f64(one, a.lo)), vdivq_f64(one, a.hi));
}
static inline vf acc_log_f(vacc a)
{
    return vcvt_high_f32_f64(vcvt_f32_f64(Sleef_logd2_u10advsimd(a.lo)),
                             Sleef_logd2_u10advsimd(a.hi));
}

/* p[0], p[s], ..., p[(VW - 1) s] */
static inline vf v_gather(const float *p, int64_t s)
{
    vf v = vld1q_dup_f32(p);
    v = vld1q_lane_f32(p + s, v, 1);
    v = vld1q_lane_f32(p + 2 * s, v, 2);
    return vld1q_lane_f32(p + 3 * s, v, 3);
}

/* p[0], p[s], ..., p[(VW - 1) s] = v */
static inline void v_scatter(float *p, int64_t s, vf v)
{
    vst1q_lane_f32(p, v, 0);
    vst1q_lane_f32(p + s, v, 1);
    vst1q_lane_f32(p + 2 * s, v, 2);
    vst1q_lane_f32(p + 3 * s, v, 3);
}

#include "ew_simd_body.h"
