/* Counter-based random numbers (Philox-4x32-10, mapping in backend.h). Every
 * element is a pure function of (seed, stream, index), so results do not depend
 * on the thread count and match the other backends. */
#include "cpu.h"
#include "rand_normal.h"

#include <math.h>

/* below this many elements generation stays on one thread */
#define RAND_PAR_MIN 16384


static ag_status check_f32_dense(const char *op, const char *what, const ag_view *v)
{
    if (!v || !v->buf || v->ndim < 0 || v->ndim > AG_MAX_DIMS)
        return ag_set_error(AG_ERR_ARG, "cpu %s: invalid %s view", op, what);
    if (v->dtype != AG_F32)
        return ag_set_error(AG_ERR_DTYPE, "cpu %s: %s is %s, expected f32", op, what,
                            ag_dtype_name(v->dtype));
    if (!ag_view_is_contiguous(v)) return ag_set_error(AG_ERR_ARG, "cpu %s: %s must be contiguous", op, what);
    return AG_OK;
}

static void rand_uniform(const ag_rand_args *r, float *y, int64_t n, int64_t b0, int64_t b1)
{
    const float lo = r->a, span = r->b - r->a;
    for (int64_t blk = b0; blk < b1; blk++) {
        uint32_t w[4];
        cpu_philox_block(r, blk, w);
        for (int64_t k = 0, i = blk * 4; k < 4 && i < n; k++, i++) y[i] = lo + span * cpu_u01(w[k]);
    }
}

/* Box-Muller (rand_normal.h, the same bits on every backend): element i uses
 * words 2(i%2) and 2(i%2)+1 of block i/2 */
static void rand_normal(const ag_rand_args *r, float *y, int64_t n, int64_t b0, int64_t b1)
{
    for (int64_t blk = b0; blk < b1; blk++) {
        uint32_t w[4];
        cpu_philox_block(r, blk, w);
        for (int64_t k = 0, i = blk * 2; k < 2 && i < n; k++, i++) {
            float z = rn_normal(w[2 * k], w[2 * k + 1]);
            y[i] = r->a + r->b * z;
        }
    }
}

ag_status cpu_rand(void *ctx, const ag_rand_args *r, const ag_view *y)
{
    (void)ctx;
    if (!r) return ag_set_error(AG_ERR_ARG, "cpu rand: NULL arguments");
    if (r->dist != AG_RAND_UNIFORM && r->dist != AG_RAND_NORMAL)
        return ag_set_error(AG_ERR_ARG, "cpu rand: unknown distribution %d", (int)r->dist);
    ag_status s = check_f32_dense("rand", "y", y);
    if (s != AG_OK) return s;
    const int64_t n = ag_view_numel(y);
    if (n == 0) return AG_OK;
    float *py = cpu_f32(y);
    const bool normal = r->dist == AG_RAND_NORMAL;
    const int64_t per = normal ? 2 : 4, nblocks = (n + per - 1) / per;
    int nt = n >= RAND_PAR_MIN ? cpu_threads() : 1;
    if (nt > nblocks) nt = (int)nblocks;
    void (*gen)(const ag_rand_args *, float *, int64_t, int64_t, int64_t) =
        normal ? rand_normal : rand_uniform;
    if (nt <= 1) {
        gen(r, py, n, 0, nblocks);
        return AG_OK;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int t = 0; t < nt; t++) gen(r, py, n, nblocks * t / nt, nblocks * (t + 1) / nt);
    return AG_OK;
}

static void dropout_range(const ag_rand_args *r, float p, float scale, float *y, float *mask,
                          const float *x, int64_t n, int64_t b0, int64_t b1)
{
    for (int64_t blk = b0; blk < b1; blk++) {
        uint32_t w[4];
        cpu_philox_block(r, blk, w);
        for (int64_t k = 0, i = blk * 4; k < 4 && i < n; k++, i++) {
            float m = cpu_u01(w[k]) >= p ? scale : 0.0f;
            if (mask) mask[i] = m;
            y[i] = x[i] * m;
        }
    }
}

/* mask may be NULL when the caller needs no gradient */
ag_status cpu_dropout(void *ctx, const ag_rand_args *r, float p, const ag_view *y,
                      const ag_view *mask, const ag_view *x)
{
    (void)ctx;
    if (!r) return ag_set_error(AG_ERR_ARG, "cpu dropout: NULL arguments");
    if (!(p >= 0.0f && p <= 1.0f))
        return ag_set_error(AG_ERR_ARG, "cpu dropout: p = %g is outside [0, 1]", (double)p);
    ag_status s = check_f32_dense("dropout", "y", y);
    if (s == AG_OK) s = check_f32_dense("dropout", "x", x);
    if (s == AG_OK && mask) s = check_f32_dense("dropout", "mask", mask);
    if (s != AG_OK) return s;
    const int64_t n = ag_view_numel(y);
    if (ag_view_numel(x) != n || (mask && ag_view_numel(mask) != n))
        return ag_set_error(AG_ERR_SHAPE, "cpu dropout: y, mask and x sizes differ (%lld, %lld, %lld)",
                            (long long)n, (long long)(mask ? ag_view_numel(mask) : n),
                            (long long)ag_view_numel(x));
    if (n == 0) return AG_OK;
    /* p == 1 drops everything; 1 / (1 - p) would make 0 * inf = NaN */
    const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    float *py = cpu_f32(y), *pm = mask ? cpu_f32(mask) : NULL;
    const float *px = cpu_f32(x);
    const int64_t nblocks = (n + 3) / 4;
    int nt = n >= RAND_PAR_MIN ? cpu_threads() : 1;
    if (nt > nblocks) nt = (int)nblocks;
    if (nt <= 1) {
        dropout_range(r, p, scale, py, pm, px, n, 0, nblocks);
        return AG_OK;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int t = 0; t < nt; t++)
        dropout_range(r, p, scale, py, pm, px, n, nblocks * t / nt, nblocks * (t + 1) / nt);
    return AG_OK;
}
