/* AVX2 + FMA vector primitives for ew_simd_body.h, with SLEEF's 1-ulp math.
 * Built with -mavx2 -mfma; called only when cpu_isa() reports AVX2. */
#include <immintrin.h>
#include <sleef.h>

#include "cpu_simd.h"

#define VW 8
#define SIMD_TABLE cpu_simd_avx2
#define SIMD_NAME "avx2"

typedef __m256 vf;
typedef __m256 vm; /* a lane mask: all ones or all zeros */

static inline vf v_set(float a) { return _mm256_set1_ps(a); }
static inline vf v_ld(const float *p) { return _mm256_loadu_ps(p); }
static inline void v_st(float *p, vf v) { _mm256_storeu_ps(p, v); }

/* Partial vectors for the last r < VW elements: masked, so nothing past the end
 * is touched and each lane computes the same as in a full vector. */
static inline __m256i tail_mask(int64_t r)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline vf v_ldp(const float *p, int64_t r) { return _mm256_maskload_ps(p, tail_mask(r)); }
static inline void v_stp(float *p, vf v, int64_t r) { _mm256_maskstore_ps(p, tail_mask(r), v); }
/* zero in the lanes at and past r */
static inline vf v_keep(vf v, int64_t r) { return _mm256_and_ps(v, _mm256_castsi256_ps(tail_mask(r))); }

static inline vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf v_sqrt(vf a) { return _mm256_sqrt_ps(a); }
/* a > b ? a : b, and b when either is NaN (the instruction's rule) */
static inline vf v_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf v_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf v_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline vf v_neg(vf a) { return _mm256_xor_ps(_mm256_set1_ps(-0.0f), a); }
/* 1 / a to about 22 bits: the estimate and one Newton step */
static inline vf v_recip(vf a)
{
    vf r = _mm256_rcp_ps(a);
    return _mm256_fmadd_ps(r, _mm256_fnmadd_ps(a, r, _mm256_set1_ps(1.0f)), r);
}
/* to the nearest integer (ties to even) */
static inline vf v_round(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
/* a 2^k for an integral k in [-252, 254], rounded once (two exact steps of at
 * most 2^+-126, the second may round into a subnormal) */
static inline vf v_ldexp(vf a, vf k)
{
    __m256i ki = _mm256_cvtps_epi32(k), k1 = _mm256_srai_epi32(ki, 1);
    __m256i k2 = _mm256_sub_epi32(ki, k1), bias = _mm256_set1_epi32(127);
    vf s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
    vf s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(a, s1), s2);
}
/* a * b + c, one rounding */
static inline vf v_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
/* |a| with the sign of s */
static inline vf v_copysign(vf a, vf s)
{
    const vf sign = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(sign, a), _mm256_and_ps(sign, s));
}

static inline vm m_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vm m_le(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
static inline vm m_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vm m_ge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
static inline vm m_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline vm m_ne(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); } /* C's != */
static inline vm m_nan(vf a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
static inline vm m_and(vm a, vm b) { return _mm256_and_ps(a, b); }
static inline vm m_or(vm a, vm b) { return _mm256_or_ps(a, b); }
static inline vm m_none(void) { return _mm256_setzero_ps(); }
static inline bool m_any(vm m) { return _mm256_movemask_ps(m) != 0; }
/* m ? a : b */
static inline vf v_sel(vm m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }
/* m ? 1 : 0 */
static inline vf v_one_if(vm m) { return _mm256_and_ps(m, _mm256_set1_ps(1.0f)); }

static inline float v_hmax(vf v)
{
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

static inline vf v_exp(vf a) { return Sleef_expf8_u10avx2(a); }
static inline vf v_log(vf a) { return Sleef_logf8_u10avx2(a); }
static inline vf v_pow(vf a, vf b) { return Sleef_powf8_u10avx2(a, b); }

/* double accumulators: the float lanes widened, so long rows keep their digits */
typedef struct vacc {
    __m256d lo, hi;
} vacc;
static inline vacc acc_zero(void) { return (vacc){_mm256_setzero_pd(), _mm256_setzero_pd()}; }
static inline void acc_add(vacc *a, vf v)
{
    a->lo = _mm256_add_pd(a->lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    a->hi = _mm256_add_pd(a->hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}
/* adds d - v (widened) */
static inline void acc_add_rsub(vacc *a, __m256d d, vf v)
{
    a->lo = _mm256_add_pd(a->lo, _mm256_sub_pd(d, _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    a->hi = _mm256_add_pd(a->hi, _mm256_sub_pd(d, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}
/* adds u * v, the product exact in double */
static inline void acc_add_prod(vacc *a, vf u, vf v)
{
    a->lo = _mm256_add_pd(a->lo, _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(u)),
                                               _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    a->hi = _mm256_add_pd(a->hi, _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(u, 1)),
                                               _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}
typedef __m256d vdbl;
static inline vdbl d_set(double d) { return _mm256_set1_pd(d); }
static inline double acc_sum(vacc a)
{
    __m256d s = _mm256_add_pd(a.lo, a.hi);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

/* p[0..VW) += v, widened */
static inline void d_add_to(double *p, vf v)
{
    _mm256_storeu_pd(p, _mm256_add_pd(_mm256_loadu_pd(p), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    _mm256_storeu_pd(p + 4, _mm256_add_pd(_mm256_loadu_pd(p + 4),
                                          _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

/* per lane, (float)(1 / sum) and (float)log(sum) of the double sums */
static inline vf acc_recip_f(vacc a)
{
    const __m256d one = _mm256_set1_pd(1.0);
    return _mm256_set_m128(_mm256_cvtpd_ps(_mm256_div_pd(one, a.hi)),
                           _mm256_cvtpd_ps(_mm256_div_pd(one, a.lo)));
}
static inline vf acc_log_f(vacc a)
{
    return _mm256_set_m128(_mm256_cvtpd_ps(Sleef_logd4_u10avx2(a.hi)),
                           _mm256_cvtpd_ps(Sleef_logd4_u10avx2(a.lo)));
}

/* p[0], p[s], ..., p[(VW - 1) s] */
static inline vf v_gather(const float *p, int64_t s)
{
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                           _mm256_set1_epi32((int)s));
    return _mm256_i32gather_ps(p, idx, 4);
}

/* p[0], p[s], ..., p[(VW - 1) s] = v (AVX2 has no scatter: through a buffer,
 * whose scalar loads the vector store forwards to) */
static inline void v_scatter(float *p, int64_t s, vf v)
{
    float t[8];
    _mm256_storeu_ps(t, v);
    for (int l = 0; l < 8; l++) p[l * s] = t[l];
}

#include "ew_simd_body.h"
