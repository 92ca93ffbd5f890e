/* Max and average 2-D pooling (NCHW), threaded over (image, channel) planes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cpu.h"
#include "plan.h"

#ifdef __SSE2__
#include <emmintrin.h> /* part of the x86-64 baseline: no ISA flags needed */
#endif

#define PAR_MIN 16384
/* Dense loops run in blocks of this many: gcc -O2's cheap vectorizer needs a
 * constant trip count. */
#define BLK 8

typedef struct pool_dims {
    int64_t planes, h, w, oh, ow;
    int64_t kh, kw, sh, sw, ph, pw;
} pool_dims;


/* ag_pool2d_check, then the dimensions in 64-bit. */
static ag_status pool_setup(const char *op, ag_pool_op kind, const ag_pool2d_params *p,
                            const ag_view *x, const char *xname, const ag_view *y,
                            const char *yname, const ag_view *idx, pool_dims *d)
{
    ag_status s = ag_pool2d_check("cpu", op, kind, p, x, xname, y, yname, idx);
    if (s != AG_OK) return s;
    *d = (pool_dims){.planes = x->shape[0] * x->shape[1], .h = x->shape[2], .w = x->shape[3],
                     .oh = y->shape[2], .ow = y->shape[3], .kh = p->kernel[0],
                     .kw = p->kernel[1], .sh = p->stride[0], .sw = p->stride[1],
                     .ph = p->padding[0], .pw = p->padding[1]};
    return AG_OK;
}

/* The window's rows [*h0, *h1) and columns [*w0, *w1) inside the input. */
static void window(const pool_dims *d, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1,
                   int64_t *w0, int64_t *w1)
{
    int64_t hs = oh * d->sh - d->ph, ws = ow * d->sw - d->pw;
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = hs + d->kh < d->h ? hs + d->kh : d->h;
    *w1 = ws + d->kw < d->w ? ws + d->kw : d->w;
}

/* Max pooling keeps the first maximum of a window in row-major order, and a NaN
 * wins over everything: the first NaN, after which nothing replaces it. */
static inline bool max_takes(float best, float v) { return best == best && (v > best || v != v); }

/* Outputs [o0, o1) of one output row of 2x2, stride-2, unpadded max pooling
 * that may hold NaNs: the window in order, as the definition says. */
static void max_2x2_exact(const float *r0, const float *r1, int64_t w, int64_t at0, int64_t o0,
                          int64_t o1, float *y, int32_t *ix)
{
    for (int64_t o = o0; o < o1; o++) {
        const float v[4] = {r0[2 * o], r0[2 * o + 1], r1[2 * o], r1[2 * o + 1]};
        const int64_t off[4] = {0, 1, w, w + 1};
        float best = v[0];
        int64_t k = 0;
        for (int i = 1; i < 4; i++)
            if (max_takes(best, v[i])) best = v[i], k = off[i];
        y[o] = best;
        if (ix) ix[o] = (int32_t)(at0 + 2 * o + k);
    }
}

/* One plane of 2x2, stride-2, unpadded max pooling (the common case) without
 * branches on the data (random data mispredicts half of them): the larger of
 * each pair, then of the pairs, each keeping the earlier on ties, is the
 * window's first maximum when nothing is NaN. A row with a NaN is done again
 * the exact way. */
static void max_plane_2x2(const pool_dims *d, const float *xp, float *yp, int32_t *ip)
{
    const int64_t w = d->w, ow = d->ow;
    const int32_t w32 = (int32_t)w;
    for (int64_t oh = 0; oh < d->oh; oh++) {
        const float *r0 = xp + 2 * oh * w, *r1 = r0 + w;
        float *y = yp + oh * ow;
        int32_t *ix = ip ? ip + oh * ow : NULL;
        const int32_t at0 = (int32_t)(2 * oh * w);
        int nan = 0;
        int64_t o = 0;
#ifdef __SSE2__
        /* four windows at a time: maxps(x, y) is x > y ? x : y, as below */
        const __m128i one = _mm_set1_epi32(1), wv = _mm_set1_epi32(w32);
        __m128i at = _mm_add_epi32(_mm_set1_epi32(at0), _mm_setr_epi32(0, 2, 4, 6));
        for (; o + 4 <= ow; o += 4) {
            const __m128 u0 = _mm_loadu_ps(r0 + 2 * o), u1 = _mm_loadu_ps(r0 + 2 * o + 4);
            const __m128 v0 = _mm_loadu_ps(r1 + 2 * o), v1 = _mm_loadu_ps(r1 + 2 * o + 4);
            const __m128 a = _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(2, 0, 2, 0));
            const __m128 b = _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(3, 1, 3, 1));
            const __m128 c = _mm_shuffle_ps(v0, v1, _MM_SHUFFLE(2, 0, 2, 0));
            const __m128 e = _mm_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));
            const __m128 m01 = _mm_max_ps(b, a), m23 = _mm_max_ps(e, c);
            _mm_storeu_ps(y + o, _mm_max_ps(m23, m01));
            nan |= _mm_movemask_ps(_mm_or_ps(_mm_cmpunord_ps(a, b), _mm_cmpunord_ps(c, e)));
            if (!ix) continue;
            const __m128i k01 = _mm_and_si128(_mm_castps_si128(_mm_cmpgt_ps(b, a)), one);
            const __m128i k23 = _mm_add_epi32(
                wv, _mm_and_si128(_mm_castps_si128(_mm_cmpgt_ps(e, c)), one));
            const __m128i t = _mm_castps_si128(_mm_cmpgt_ps(m23, m01));
            const __m128i k = _mm_or_si128(_mm_and_si128(t, k23), _mm_andnot_si128(t, k01));
            _mm_storeu_si128((__m128i *)(ix + o), _mm_add_epi32(at, k));
            at = _mm_add_epi32(at, _mm_set1_epi32(8));
        }
#endif
        for (; o < ow; o++) {
            const float a = r0[2 * o], b = r0[2 * o + 1], c = r1[2 * o], e = r1[2 * o + 1];
            const int t01 = b > a, t23 = e > c;
            const float m01 = b > a ? b : a, m23 = e > c ? e : c;
            /* the index by masks: a select on t here becomes a branch */
            const int32_t t = -(int32_t)(m23 > m01), k01 = t01, k23 = w32 + t23;
            y[o] = m23 > m01 ? m23 : m01;
            if (ix) ix[o] = at0 + 2 * (int32_t)o + (k01 ^ ((k01 ^ k23) & t));
            nan |= (a != a) | (b != b) | (c != c) | (e != e);
        }
        if (nan) max_2x2_exact(r0, r1, w, at0, 0, ow, y, ix);
    }
}

/* One plane of any pooling. */
static void pool_plane(const pool_dims *d, ag_pool_op op, const float *xp, float *yp, int32_t *ip)
{
    const float inv = 1.0f / (float)(d->kh * d->kw);
    for (int64_t oh = 0; oh < d->oh; oh++)
        for (int64_t ow = 0; ow < d->ow; ow++) {
            int64_t h0, h1, w0, w1;
            window(d, oh, ow, &h0, &h1, &w0, &w1);
            int64_t o = oh * d->ow + ow;
            if (op == AG_POOL_AVG) {
                float sum = 0;
                for (int64_t i = h0; i < h1; i++)
                    for (int64_t j = w0; j < w1; j++) sum += xp[i * d->w + j];
                yp[o] = sum * inv;
                continue;
            }
            if (h0 >= h1 || w0 >= w1) { /* all padding */
                yp[o] = -INFINITY;
                if (ip) ip[o] = -1;
                continue;
            }
            float best = xp[h0 * d->w + w0];
            int64_t at = h0 * d->w + w0;
            for (int64_t i = h0; i < h1; i++)
                for (int64_t j = i == h0 ? w0 + 1 : w0; j < w1; j++) {
                    float v = xp[i * d->w + j];
                    if (max_takes(best, v)) {
                        best = v;
                        at = i * d->w + j;
                    }
                }
            yp[o] = best;
            if (ip) ip[o] = (int32_t)at;
        }
}

ag_status cpu_pool2d(void *ctx, ag_pool_op op, const ag_pool2d_params *p, const ag_view *y,
                     const ag_view *indices, const ag_view *x)
{
    (void)ctx;
    pool_dims d;
    const ag_view *idx = op == AG_POOL_MAX ? indices : NULL;
    ag_status s = pool_setup("pool2d", op, p, x, "input", y, "output", idx, &d);
    if (s) return s;
    if (d.planes == 0 || d.oh * d.ow == 0) return AG_OK;
    const float *xd = cpu_f32(x);
    float *yd = cpu_f32(y);
    int32_t *id = idx ? cpu_i32(idx) : NULL;
    const bool two = op == AG_POOL_MAX && d.kh == 2 && d.kw == 2 && d.sh == 2 && d.sw == 2 &&
                     d.ph == 0 && d.pw == 0;

    OMP(omp parallel for schedule(static) num_threads(cpu_threads())
        if(d.planes * d.oh * d.ow * d.kh * d.kw > PAR_MIN))
    for (int64_t pl = 0; pl < d.planes; pl++) {
        const float *xp = xd + pl * d.h * d.w;
        float *yp = yd + pl * d.oh * d.ow;
        int32_t *ip = id ? id + pl * d.oh * d.ow : NULL;
        if (two)
            max_plane_2x2(&d, xp, yp, ip);
        else
            pool_plane(&d, op, xp, yp, ip);
    }
    return AG_OK;
}

ag_status cpu_pool2d_backward(void *ctx, ag_pool_op op, const ag_pool2d_params *p,
                              const ag_view *dx, const ag_view *dy, const ag_view *indices)
{
    (void)ctx;
    pool_dims d;
    if (op == AG_POOL_MAX && !indices)
        return ag_set_error(AG_ERR_ARG, "cpu pool2d_backward: max pooling needs the indices");
    const ag_view *idx = op == AG_POOL_MAX ? indices : NULL;
    ag_status s = pool_setup("pool2d_backward", op, p, dx, "dx", dy, "dy", idx, &d);
    if (s) return s;
    float *dxd = cpu_f32(dx);
    const float *dyd = cpu_f32(dy);
    const int32_t *id = idx ? cpu_i32(idx) : NULL;
    float inv = 1.0f / (float)(d.kh * d.kw);
    int64_t hw = d.h * d.w;

    OMP(omp parallel for schedule(static) num_threads(cpu_threads())
        if(d.planes * (d.h * d.w + d.oh * d.ow) > PAR_MIN))
    for (int64_t pl = 0; pl < d.planes; pl++) {
        float *xp = dxd + pl * hw;
        const float *gp = dyd + pl * d.oh * d.ow;
        memset(xp, 0, (size_t)hw * sizeof *xp);
        if (id) {
            const int32_t *ip = id + pl * d.oh * d.ow;
            for (int64_t o = 0; o < d.oh * d.ow; o++)
                if (ip[o] >= 0 && ip[o] < hw) xp[ip[o]] += gp[o];
            continue;
        }
        for (int64_t oh = 0; oh < d.oh; oh++)
            for (int64_t ow = 0; ow < d.ow; ow++) {
                int64_t h0, h1, w0, w1;
                window(&d, oh, ow, &h0, &h1, &w0, &w1);
                float g = gp[oh * d.ow + ow] * inv;
                for (int64_t i = h0; i < h1; i++)
                    for (int64_t j = w0; j < w1; j++) xp[i * d.w + j] += g;
            }
    }
    return AG_OK;
}
