/* AVX-512F vector primitives for ew_simd_body.h, with SLEEF's 1-ulp math.
 * Built with -mavx512f -mavx2 -mfma; called only when cpu_isa() reports
 * AVX-512. Only AVX-512F instructions: no DQ/VL/BW, so float bit operations go
 * through the integer forms. */
#include <immintrin.h>
#include <sleef.h>

#include "cpu_simd.h"

#define VW 16
#define SIMD_TABLE cpu_simd_avx512
#define SIMD_NAME "avx512"

typedef __m512 vf;
typedef __mmask16 vm;

static inline vf v_set(float a) { return _mm512_set1_ps(a); }
static inline vf v_ld(const float *p) { return _mm512_loadu_ps(p); }
static inline void v_st(float *p, vf v) { _mm512_storeu_ps(p, v); }

/* Partial vectors for the last r < VW elements: masked, so nothing past the end
 * is touched and each lane computes the same as in a full vector. */
static inline __mmask16 tail_mask(int64_t r) { return (__mmask16)((1u << r) - 1u); }
static inline vf v_ldp(const float *p, int64_t r) { return _mm512_maskz_loadu_ps(tail_mask(r), p); }
static inline void v_stp(float *p, vf v, int64_t r) { _mm512_mask_storeu_ps(p, tail_mask(r), v); }
static inline vf v_keep(vf v, int64_t r) { return _mm512_maskz_mov_ps(tail_mask(r), v); }

static inline vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf v_sqrt(vf a) { return _mm512_sqrt_ps(a); }
/* a > b ? a : b, and b when either is NaN (the instruction's rule) */
static inline vf v_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf v_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf v_abs(vf a) { return _mm512_abs_ps(a); }
static inline vf v_neg(vf a)
{
    return _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32((int)0x80000000u)));
}
/* 1 / a to about 22 bits (28 here): the estimate and one Newton step */
static inline vf v_recip(vf a)
{
    vf r = _mm512_rcp14_ps(a);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(a, r, _mm512_set1_ps(1.0f)), r);
}
/* to the nearest integer (ties to even) */
static inline vf v_round(vf a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
/* a 2^k for an integral k, rounded once (into a subnormal too) */
static inline vf v_ldexp(vf a, vf k) { return _mm512_scalef_ps(a, k); }
/* a * b + c, one rounding */
static inline vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
/* |a| with the sign of s: per bit, mask ? a : s (ternary-logic table 0xca) */
static inline vf v_copysign(vf a, vf s)
{
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_set1_epi32(0x7fffffff),
                                                         _mm512_castps_si512(a),
                                                         _mm512_castps_si512(s), 0xca));
}

static inline vm m_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vm m_le(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
static inline vm m_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vm m_ge(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
static inline vm m_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline vm m_ne(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); } /* C's != */
static inline vm m_nan(vf a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
static inline vm m_and(vm a, vm b) { return (vm)(a & b); }
static inline vm m_or(vm a, vm b) { return (vm)(a | b); }
static inline vm m_none(void) { return 0; }
static inline bool m_any(vm m) { return m != 0; }
/* m ? a : b */
static inline vf v_sel(vm m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); }
/* m ? 1 : 0 */
static inline vf v_one_if(vm m) { return _mm512_maskz_mov_ps(m, _mm512_set1_ps(1.0f)); }

static inline float v_hmax(vf v) { return _mm512_reduce_max_ps(v); }

static inline vf v_exp(vf a) { return Sleef_expf16_u10avx512f(a); }
static inline vf v_log(vf a) { return Sleef_logf16_u10avx512f(a); }
static inline vf v_pow(vf a, vf b) { return Sleef_powf16_u10avx512f(a, b); }

/* double accumulators: the float lanes widened, so long rows keep their digits */
typedef struct vacc {
    __m512d lo, hi;
} vacc;
static inline __m512d lo_pd(vf v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
static inline __m512d hi_pd(vf v)
{
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}
static inline vacc acc_zero(void) { return (vacc){_mm512_setzero_pd(), _mm512_setzero_pd()}; }
static inline void acc_add(vacc *a, vf v)
{
    a->lo = _mm512_add_pd(a->lo, lo_pd(v));
    a->hi = _mm512_add_pd(a->hi, hi_pd(v));
}
typedef __m512d vdbl;
static inline vdbl d_set(double d) { return _mm512_set1_pd(d); }
/* adds d - v (widened) */
static inline void acc_add_rsub(vacc *a, vdbl d, vf v)
{
    a->lo = _mm512_add_pd(a->lo, _mm512_sub_pd(d, lo_pd(v)));
    a->hi = _mm512_add_pd(a->hi, _mm512_sub_pd(d, hi_pd(v)));
}
/* adds u * v, the product exact in double */
static inline void acc_add_prod(vacc *a, vf u, vf v)
{
    a->lo = _mm512_add_pd(a->lo, _mm512_mul_pd(lo_pd(u), lo_pd(v)));
    a->hi = _mm512_add_pd(a->hi, _mm512_mul_pd(hi_pd(u), hi_pd(v)));
}
static inline double acc_sum(vacc a) { return _mm512_reduce_add_pd(_mm512_add_pd(a.lo, a.hi)); }

/* p[0..VW) += v, widened */
static inline void d_add_to(double *p, vf v)
{
    _mm512_storeu_pd(p, _mm512_add_pd(_mm512_loadu_pd(p), lo_pd(v)));
    _mm512_storeu_pd(p + 8, _mm512_add_pd(_mm512_loadu_pd(p + 8), hi_pd(v)));
}

/* per lane, (float)(1 / sum) and (float)log(sum) of the double sums */
static inline vf pd2_to_ps(__m512d lo, __m512d hi)
{
    __m512 l = _mm512_castps256_ps512(_mm512_cvtpd_ps(lo));
    return _mm512_castpd_ps(
        _mm512_insertf64x4(_mm512_castps_pd(l), _mm256_castps_pd(_mm512_cvtpd_ps(hi)), 1));
}
static inline vf acc_recip_f(vacc a)
{
    const __m512d one = _mm512_set1_pd(1.0);
    return pd2_to_ps(_mm512_div_pd(one, a.lo), _mm512_div_pd(one, a.hi));
}
static inline vf acc_log_f(vacc a)
{
    return pd2_to_ps(Sleef_logd8_u10avx512f(a.lo), Sleef_logd8_u10avx512f(a.hi));
}

/* p[0], p[s], ..., p[(VW - 1) s] */
static inline vf v_gather(const float *p, int64_t s)
{
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)s));
    return _mm512_i32gather_ps(idx, p, 4);
}

/* p[0], p[s], ..., p[(VW - 1) s] = v */
static inline void v_scatter(float *p, int64_t s, vf v)
{
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)s));
    _mm512_i32scatter_ps(p, idx, v, 4);
}

#include "ew_simd_body.h"
