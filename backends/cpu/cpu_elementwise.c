/* Element-wise f32 kernels on strided views: unary (forward and backward),
 * binary and where. One iterator walks any layout; per-op row functions come
 * from X-macro tables so adding an op is one line plus its scalar formula. */
#include "cpu.h"
#include "cpu_poly.h"
#include "cpu_simd.h"
#include "ops/binary_table.h"
#include "ops/unary_table.h"

#include <math.h>
#include <stdio.h>

#define EW_MAX_OPS 4
/* Work below this many elements stays on the calling thread. */
#define EW_PAR_MIN 32768
/* Rows are cut into chunks so one long dense row still spreads over threads. */
#define EW_CHUNK 8192
/* Side of the square tiles used when operands disagree on the fastest axis
 * (a transpose): both then stay in L1 while a tile is done. */
#define EW_TILE 64
/* Dense loops run in fixed blocks: gcc -O2's cheap vectorizer needs a constant
 * trip count. */
#define EW_BLOCK 8

/* ---- the strided iterator -------------------------------------------------- */

/* Operand 0 is the output; every operand has its shape. Strides are in elements
 * and every dtype here is 4 bytes wide. Axes [0, nd - 2) are walked one index at
 * a time; axis nd - 2 (rows) and nd - 1 (columns) in tiles of rb x cb. */
typedef struct ew_iter {
    int nops, nd;
    int64_t shape[AG_MAX_DIMS];
    int64_t stride[EW_MAX_OPS][AG_MAX_DIMS];
    char *base[EW_MAX_OPS];
    int64_t esz[EW_MAX_OPS]; /* bytes per element: 4, or 1 for u8 copies */
    int64_t rb, cb;
} ew_iter;

/* Processes n elements of one row: p[k] points at operand k, s[k] its stride. */
typedef void (*ew_body)(const void *arg, int64_t n, char *const *p, const int64_t *s);

static int64_t iabs64(int64_t v) { return v < 0 ? -v : v; }

static void ew_swap_axes(ew_iter *it, int a, int b)
{
    int64_t t = it->shape[a];
    it->shape[a] = it->shape[b];
    it->shape[b] = t;
    for (int k = 0; k < it->nops; k++) {
        t = it->stride[k][a];
        it->stride[k][a] = it->stride[k][b];
        it->stride[k][b] = t;
    }
}

/* Drops size-1 axes and merges neighbours that every operand lays out as one, so
 * dense or uniformly broadcast operands become a single long row. If an operand
 * is denser along another axis than along the last (a transposed view), that
 * axis becomes the row axis and the walk goes tile by tile. */
static void ew_init(ew_iter *it, int nops, const ag_view *const *v)
{
    const ag_view *y = v[0];
    /* slot 0 stays free for a leading size-1 axis: there are always two axes */
    int nd = 1;
    it->nops = nops;
    it->shape[0] = 1;
    for (int k = 0; k < nops; k++) {
        it->esz[k] = (int64_t)ag_dtype_size(v[k]->dtype);
        it->base[k] = (char *)v[k]->buf->data + v[k]->offset * it->esz[k];
        it->stride[k][0] = 0;
    }
    for (int d = 0; d < y->ndim; d++) {
        if (y->shape[d] == 1) continue;
        bool merge = nd > 1;
        for (int k = 0; k < nops && merge; k++)
            merge = it->stride[k][nd - 1] == v[k]->stride[d] * y->shape[d];
        if (merge) {
            it->shape[nd - 1] *= y->shape[d];
            for (int k = 0; k < nops; k++) it->stride[k][nd - 1] = v[k]->stride[d];
        } else {
            if (nd == AG_MAX_DIMS) { /* eight real axes: drop the spare slot */
                for (int a = 0; a + 1 < nd; a++) ew_swap_axes(it, a, a + 1);
                nd--;
            }
            it->shape[nd] = y->shape[d];
            for (int k = 0; k < nops; k++) it->stride[k][nd] = v[k]->stride[d];
            nd++;
        }
    }
    if (nd == 1) { /* a single element */
        it->shape[1] = 1;
        for (int k = 0; k < nops; k++) it->stride[k][1] = 1;
        nd = 2;
    }
    it->nd = nd;
    int best = -1;
    int64_t best_stride = 0;
    for (int k = 0; k < nops; k++) {
        int64_t last = iabs64(it->stride[k][nd - 1]);
        for (int d = 0; d < nd - 1; d++) {
            int64_t sd = iabs64(it->stride[k][d]);
            if (sd != 0 && sd < last && (best < 0 || sd < best_stride)) {
                best = d;
                best_stride = sd;
            }
        }
    }
    if (best >= 0) {
        ew_swap_axes(it, best, nd - 2);
        it->rb = EW_TILE;
        it->cb = EW_TILE;
    } else {
        it->rb = 1;
        it->cb = EW_CHUNK;
    }
}

/* Runs tiles [t0, t1) in order: column blocks fastest, then row blocks, then the
 * outer axes. */
static void ew_tiles(const ew_iter *it, ew_body body, const void *arg, int64_t t0, int64_t t1)
{
    const int nd = it->nd, nops = it->nops;
    const int64_t rows = it->shape[nd - 2], cols = it->shape[nd - 1];
    const int64_t nrb = (rows + it->rb - 1) / it->rb, ncb = (cols + it->cb - 1) / it->cb;
    int64_t idx[AG_MAX_DIMS] = {0};
    int64_t rs[EW_MAX_OPS], cs[EW_MAX_OPS];
    char *p[EW_MAX_OPS], *q[EW_MAX_OPS];
    int64_t cbi = t0 % ncb, rbi = t0 / ncb % nrb, outer = t0 / ncb / nrb;
    for (int d = nd - 3; d >= 0; d--) {
        idx[d] = outer % it->shape[d];
        outer /= it->shape[d];
    }
    for (int k = 0; k < nops; k++) {
        p[k] = it->base[k];
        for (int d = 0; d < nd - 2; d++) p[k] += idx[d] * it->stride[k][d] * it->esz[k];
        rs[k] = it->stride[k][nd - 2];
        cs[k] = it->stride[k][nd - 1];
    }
    for (int64_t t = t0; t < t1; t++) {
        const int64_t r0 = rbi * it->rb, r1 = rows - r0 < it->rb ? rows : r0 + it->rb;
        const int64_t c0 = cbi * it->cb, len = cols - c0 < it->cb ? cols - c0 : it->cb;
        for (int64_t r = r0; r < r1; r++) {
            for (int k = 0; k < nops; k++) q[k] = p[k] + (r * rs[k] + c0 * cs[k]) * it->esz[k];
            body(arg, len, q, cs);
        }
        if (t + 1 == t1) break;
        if (++cbi < ncb) continue;
        cbi = 0;
        if (++rbi < nrb) continue;
        rbi = 0;
        for (int d = nd - 3; d >= 0; d--) {
            for (int k = 0; k < nops; k++) p[k] += it->stride[k][d] * it->esz[k];
            if (++idx[d] < it->shape[d]) break;
            for (int k = 0; k < nops; k++) p[k] -= it->shape[d] * it->stride[k][d] * it->esz[k];
            idx[d] = 0;
        }
    }
}

static void ew_run(const ew_iter *it, ew_body body, const void *arg)
{
    const int nd = it->nd;
    int64_t numel = 1, outer = 1;
    for (int d = 0; d < nd; d++) numel *= it->shape[d];
    for (int d = 0; d < nd - 2; d++) outer *= it->shape[d];
    const int64_t ntiles = outer * ((it->shape[nd - 2] + it->rb - 1) / it->rb) *
                           ((it->shape[nd - 1] + it->cb - 1) / it->cb);
    if (ntiles == 1 && nd == 2) { /* small ops: no tile arithmetic (64-bit divisions) */
        char *q[EW_MAX_OPS];
        int64_t cs[EW_MAX_OPS];
        for (int k = 0; k < it->nops; k++) cs[k] = it->stride[k][1];
        for (int64_t r = 0; r < it->shape[0]; r++) {
            for (int k = 0; k < it->nops; k++) q[k] = it->base[k] + r * it->stride[k][0] * it->esz[k];
            body(arg, it->shape[1], q, cs);
        }
        return;
    }
    int nt = numel > EW_PAR_MIN ? cpu_threads() : 1;
    if (nt > ntiles) nt = (int)ntiles;
    if (nt <= 1) {
        ew_tiles(it, body, arg, 0, ntiles);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int t = 0; t < nt; t++) ew_tiles(it, body, arg, ntiles * t / nt, ntiles * (t + 1) / nt);
}

/* ---- same-shape copy, for cpu_memory.c ------------------------------------- */

/* cpu_memory.c's copies and casts share this iterator (cpu_ew_map2, in cpu.h). */

typedef struct map2_arg {
    cpu_map2_fn fn;
} map2_arg;

static void map2_body(const void *arg, int64_t n, char *const *p, const int64_t *s)
{
    ((const map2_arg *)arg)->fn(n, p[0], s[0], p[1], s[1]);
}

/* fn over two views of one shape (validated by the caller) */
void cpu_ew_map2(const ag_view *dst, const ag_view *src, cpu_map2_fn fn)
{
    const ag_view *v[2] = {dst, src};
    map2_arg a = {fn};
    ew_iter it;
    ew_init(&it, 2, v);
    ew_run(&it, map2_body, &a);
}

/* ---- argument checks ------------------------------------------------------- */


static ag_status ew_check(const char *op, int nops, const ag_view *const *v, int cond_at)
{
    return ag_ew_check("cpu", op, nops, v, cond_at);
}

/* ---- unary ops: value and derivative -------------------------------------- */

#define K_SQRT_2_OVER_PI 0.79788456080286535588f
#define K_INV_SQRT_2PI 0.39894228040143267794f
#define K_GELU_C 0.044715f

/* The polynomials of cpu_poly.h; the vector kernels fuse these multiply-adds,
 * here they round twice (fmaf is a library call without -mfma) except in the
 * last step, whose rounding is the result's, and in the exact splits. */
#define MA_S(a, b, c) ((a) * (b) + (c))
#define K_S(c) (c)

/* The formulas of ew_simd_body.h, one element at a time: see there for why. */
static inline float tanh_f(float x)
{
    float a = fabsf(x), a2 = a * a;
    if (a < 1.0f) return copysignf(fmaf(a * a2, CPU_POLY_TANH(MA_S, K_S, a2), a), x);
    return copysignf(1.0f - 2.0f / (1.0f + expf(a + a)), x);
}

/* x <= 0 */
static inline float expm1_neg_f(float x)
{
    if (x >= -1.0f) return copysignf(fmaf(x * x, CPU_POLY_EXPM1(MA_S, K_S, x), x), x);
    return expf(x) - 1.0f;
}

/* 0 <= e <= 1 */
static inline float log1p_01_f(float e) { return fmaf(e * e, CPU_POLY_LOG1P(MA_S, K_S, e), e); }

/* c exp(h + l) with one rounding (ldexpf rounds once into a subnormal); k is
 * bounded so that NaN converts to an int (the result stays NaN through u) */
static inline float mul_exp_f(float c, float h, float l)
{
    float k = fminf(fmaxf(rintf((h + l) * CPU_EXP_LOG2E), -200.0f), 200.0f);
    float u1 = fmaf(k, -CPU_EXP_LN2_HI, h);
    float u = u1 + l, bb = u - u1;
    float u_lo = fmaf(k, -CPU_EXP_LN2_LO, (u1 - (u - bb)) + (l - bb));
    float p = fmaf(u * u, CPU_POLY_EXPR(MA_S, K_S, u), u);
    p += u_lo + u_lo * p;
    return ldexpf(fmaf(c, p, c), (int)k);
}

/* The normal tail: t = min(|x|, 16) (NaN kept), d = 1 + a t rounded, and the
 * exponent -t^2/2 + G(w) - d_lo / d as h + l. */
typedef struct phi_f {
    float t, d, h, h_lo, l;
} phi_f;
static inline phi_f phi_parts_f(float x)
{
    phi_f o;
    o.t = fabsf(x);
    if (o.t > CPU_PHI_TMAX) o.t = CPU_PHI_TMAX;
    o.d = fmaf(o.t, CPU_PHI_A, 1.0f);
    float d_lo = fmaf(o.t, CPU_PHI_A, -(o.d - 1.0f));
    float w = (o.t - CPU_PHI_K) / (o.t + CPU_PHI_K);
    float p = o.t * o.t;
    o.h = -0.5f * p;
    o.h_lo = -0.5f * fmaf(o.t, o.t, -p);
    o.l = (CPU_POLY_PHI_G(MA_S, K_S, w) - d_lo / o.d) + o.h_lo;
    return o;
}

static inline float gelu_erf_f(float x)
{
    phi_f o = phi_parts_f(x);
    float q = mul_exp_f(0.5f * ((x > 0.0f ? -o.t : copysignf(o.t, x)) / o.d), o.h, o.l);
    return x > 0.0f ? x + q : copysignf(q, x);
}

static inline float gelu_erf_d_f(float x)
{
    phi_f o = phi_parts_f(x);
    float q = mul_exp_f(0.5f / o.d, o.h, o.l);
    return (x > 0.0f ? 1.0f - q : q) + x * mul_exp_f(K_INV_SQRT_2PI, o.h, o.h_lo);
}

static inline float sigmoid_f(float x)
{
    /* exp of a non-positive argument never overflows */
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* f(x, p0, p1) */
static inline float fw_neg(float x, float p0, float p1) { (void)p0; (void)p1; return -x; }
static inline float fw_exp(float x, float p0, float p1) { (void)p0; (void)p1; return expf(x); }
static inline float fw_log(float x, float p0, float p1) { (void)p0; (void)p1; return logf(x); }
static inline float fw_sqrt(float x, float p0, float p1) { (void)p0; (void)p1; return sqrtf(x); }
static inline float fw_rsqrt(float x, float p0, float p1) { (void)p0; (void)p1; return 1.0f / sqrtf(x); }
static inline float fw_abs(float x, float p0, float p1) { (void)p0; (void)p1; return fabsf(x); }
static inline float fw_square(float x, float p0, float p1) { (void)p0; (void)p1; return x * x; }
/* NaN passes through, as in PyTorch */
static inline float fw_relu(float x, float p0, float p1) { (void)p0; (void)p1; return x < 0.0f ? 0.0f : x; }
/* selects first, arithmetic after: gcc will not speculate a multiply inside a
 * branch (it could trap), so the plain ternary would not vectorize */
static inline float fw_leaky_relu(float x, float p0, float p1)
{
    (void)p1;
    return (x > 0.0f ? x : 0.0f) + p0 * (x > 0.0f ? 0.0f : x);
}
static inline float fw_elu(float x, float p0, float p1) { (void)p1; return x > 0.0f ? x : p0 * expm1_neg_f(x); }
static inline float fw_sigmoid(float x, float p0, float p1) { (void)p0; (void)p1; return sigmoid_f(x); }
static inline float fw_tanh(float x, float p0, float p1) { (void)p0; (void)p1; return tanh_f(x); }
/* 0.5 (1 + tanh(u)) == sigmoid(2u), and gelu's 0.5 (1 + erf(z)) goes through
 * the tail 0.5 erfc(|z|): the same functions without the cancellation that
 * costs digits for negative x */
static inline float gelu_tanh_u(float x) { return K_SQRT_2_OVER_PI * (x + K_GELU_C * x * x * x); }
static inline float fw_gelu_tanh(float x, float p0, float p1)
{
    (void)p0; (void)p1;
    return x * sigmoid_f(2.0f * gelu_tanh_u(x));
}
static inline float fw_gelu(float x, float p0, float p1)
{
    (void)p0; (void)p1;
    return gelu_erf_f(x);
}
static inline float fw_silu(float x, float p0, float p1) { (void)p0; (void)p1; return x * sigmoid_f(x); }
static inline float fw_softplus(float x, float p0, float p1)
{
    (void)p0; (void)p1;
    return fmaxf(x, 0.0f) + log1p_01_f(expf(-fabsf(x)));
}
/* min(max(x, lo), hi): NaN passes through and lo > hi gives hi, as in PyTorch */
static inline float fw_clamp(float x, float p0, float p1)
{
    float t = x < p0 ? p0 : x;
    return t > p1 ? p1 : t;
}
static inline float fw_pow(float x, float p0, float p1) { (void)p1; return powf(x, p0); }
/* mish: x tanh(softplus(x)) */
static inline float fw_mish(float x, float p0, float p1) { return x * tanh_f(fw_softplus(x, p0, p1)); }
static inline float fw_add_scalar(float x, float p0, float p1) { (void)p1; return x + p0; }
static inline float fw_mul_scalar(float x, float p0, float p1) { (void)p1; return x * p0; }

/* f'(x) given x and y = f(x) */
static inline float bw_neg(float x, float y, float p0, float p1) { (void)x; (void)y; (void)p0; (void)p1; return -1.0f; }
static inline float bw_exp(float x, float y, float p0, float p1) { (void)x; (void)p0; (void)p1; return y; }
static inline float bw_log(float x, float y, float p0, float p1) { (void)y; (void)p0; (void)p1; return 1.0f / x; }
static inline float bw_sqrt(float x, float y, float p0, float p1) { (void)x; (void)p0; (void)p1; return 0.5f / y; }
static inline float bw_rsqrt(float x, float y, float p0, float p1) { (void)x; (void)p0; (void)p1; return -0.5f * y * y * y; }
static inline float bw_abs(float x, float y, float p0, float p1)
{
    (void)y; (void)p0; (void)p1;
    return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x == 0.0f ? 0.0f : x;
}
static inline float bw_square(float x, float y, float p0, float p1) { (void)y; (void)p0; (void)p1; return 2.0f * x; }
static inline float bw_relu(float x, float y, float p0, float p1) { (void)y; (void)p0; (void)p1; return x > 0.0f ? 1.0f : 0.0f; }
static inline float bw_leaky_relu(float x, float y, float p0, float p1) { (void)y; (void)p1; return x > 0.0f ? 1.0f : p0; }
static inline float bw_elu(float x, float y, float p0, float p1) { (void)y; (void)p1; return x > 0.0f ? 1.0f : p0 * expf(x); }
/* y (1 - y) and 1 - y^2 from x, not from y: once the function saturates the
 * float y is 1 to within an ulp and 1 - y keeps no correct digits. With
 * e = exp(-|x|): sigmoid' = e / (1 + e)^2, and tanh' the same with 2|x|, times 4. */
static inline float bw_sigmoid(float x, float y, float p0, float p1)
{
    (void)y; (void)p0; (void)p1;
    float e = expf(-fabsf(x)), d = 1.0f + e;
    return e / (d * d);
}
static inline float bw_tanh(float x, float y, float p0, float p1)
{
    (void)y; (void)p0; (void)p1;
    float e = expf(-2.0f * fabsf(x)), d = 1.0f + e;
    return 4.0f * e / (d * d);
}
/* with s = sigmoid(2u) = 0.5 (1 + tanh u): 0.5 (1 - tanh^2 u) = 2 s (1 - s) */
static inline float bw_gelu_tanh(float x, float y, float p0, float p1)
{
    (void)y; (void)p0; (void)p1;
    float s = sigmoid_f(2.0f * gelu_tanh_u(x));
    float du = K_SQRT_2_OVER_PI * (1.0f + 3.0f * K_GELU_C * x * x);
    return s + 2.0f * x * s * (1.0f - s) * du;
}
static inline float bw_gelu(float x, float y, float p0, float p1)
{
    (void)y; (void)p0; (void)p1;
    return gelu_erf_d_f(x);
}
static inline float bw_silu(float x, float y, float p0, float p1)
{
    (void)y; (void)p0; (void)p1;
    float s = sigmoid_f(x);
    return s * (1.0f + x * (1.0f - s));
}
static inline float bw_softplus(float x, float y, float p0, float p1) { (void)y; (void)p0; (void)p1; return sigmoid_f(x); }
static inline float bw_clamp(float x, float y, float p0, float p1) { (void)y; return x >= p0 && x <= p1 ? 1.0f : 0.0f; }
static inline float bw_pow(float x, float y, float p0, float p1)
{
    (void)y; (void)p1;
    return p0 == 0.0f ? 0.0f : p0 * powf(x, p0 - 1.0f);
}
/* t + x (1 - t^2) sigmoid(x) with t = tanh(softplus(x)): softplus' = sigmoid */
static inline float bw_mish(float x, float y, float p0, float p1)
{
    (void)y;
    float t = tanh_f(fw_softplus(x, p0, p1));
    return t + x * (1.0f - t * t) * sigmoid_f(x);
}
static inline float bw_add_scalar(float x, float y, float p0, float p1) { (void)x; (void)y; (void)p0; (void)p1; return 1.0f; }
static inline float bw_mul_scalar(float x, float y, float p0, float p1) { (void)x; (void)y; (void)p1; return p0; }

/* Every row of the op table has a CPU kernel: the CPU is every op's fallback. */
#define UNARY_OPS(X) AG_UNARY_TABLE(X)

typedef void (*unary_row_fn)(int64_t n, float *restrict y, int64_t ys, const float *restrict x,
                             int64_t xs, float p0, float p1);
/* y may be NULL: ops that need it recompute it from x */
typedef void (*unary_bw_row_fn)(int64_t n, float *restrict dx, int64_t dxs,
                                const float *restrict dy, int64_t dys, const float *restrict x,
                                int64_t xs, const float *restrict y, int64_t ys, float p0, float p1);

#define DEF_UNARY_ROWS(E, name, ...)                                                            \
    static void un_row_##name(int64_t n, float *restrict y, int64_t ys, const float *restrict x, \
                              int64_t xs, float p0, float p1)                                 \
    {                                                                                         \
        int64_t i = 0;                                                                        \
        if (ys == 1 && xs == 1) {                                                             \
            for (; i + EW_BLOCK <= n; i += EW_BLOCK)                                          \
                for (int j = 0; j < EW_BLOCK; j++) y[i + j] = fw_##name(x[i + j], p0, p1);    \
            for (; i < n; i++) y[i] = fw_##name(x[i], p0, p1);                                \
        } else {                                                                              \
            for (; i < n; i++) y[i * ys] = fw_##name(x[i * xs], p0, p1);                      \
        }                                                                                     \
    }                                                                                         \
    static void ub_row_##name(int64_t n, float *restrict dx, int64_t dxs,                     \
                              const float *restrict dy, int64_t dys, const float *restrict x, \
                              int64_t xs, const float *restrict y, int64_t ys, float p0,      \
                              float p1)                                                       \
    {                                                                                         \
        int64_t i = 0;                                                                        \
        if (dxs == 1 && dys == 1 && xs == 1 && y && ys == 1) {                                \
            for (; i + EW_BLOCK <= n; i += EW_BLOCK)                                          \
                for (int j = 0; j < EW_BLOCK; j++)                                            \
                    dx[i + j] = dy[i + j] * bw_##name(x[i + j], y[i + j], p0, p1);            \
        } else if (dxs == 1 && dys == 1 && xs == 1 && !y) {                                   \
            for (; i + EW_BLOCK <= n; i += EW_BLOCK)                                          \
                for (int j = 0; j < EW_BLOCK; j++) {                                          \
                    const float xv = x[i + j];                                                \
                    dx[i + j] = dy[i + j] * bw_##name(xv, fw_##name(xv, p0, p1), p0, p1);     \
                }                                                                             \
        }                                                                                     \
        for (; i < n; i++) {                                                                  \
            const float xv = x[i * xs];                                                       \
            const float yv = y ? y[i * ys] : fw_##name(xv, p0, p1);                           \
            dx[i * dxs] = dy[i * dys] * bw_##name(xv, yv, p0, p1);                            \
        }                                                                                     \
    }
UNARY_OPS(DEF_UNARY_ROWS)

#define UNARY_FW_ENTRY(E, name, ...) [AG_UNARY_##E] = un_row_##name,
#define UNARY_BW_ENTRY(E, name, ...) [AG_UNARY_##E] = ub_row_##name,
static const unary_row_fn unary_rows[AG_UNARY_COUNT] = {UNARY_OPS(UNARY_FW_ENTRY)};
static const unary_bw_row_fn unary_bw_rows[AG_UNARY_COUNT] = {UNARY_OPS(UNARY_BW_ENTRY)};

/* The vector kernels (NULL: none for this ISA) take the runs where every
 * operand has unit stride; the row functions above take the rest. */
typedef struct unary_arg {
    unary_row_fn fw;
    unary_bw_row_fn bw;
    simd_unary_fn vfw;
    simd_unary_bw_fn vbw;
    float p0, p1;
} unary_arg;

static void unary_body(const void *arg, int64_t n, char *const *p, const int64_t *s)
{
    const unary_arg *u = arg;
    if (u->vfw && s[0] == 1 && s[1] == 1)
        u->vfw(n, (float *)p[0], (const float *)p[1], u->p0, u->p1);
    else
        u->fw(n, (float *)p[0], s[0], (const float *)p[1], s[1], u->p0, u->p1);
}

/* operands: dx, dy, x[, y] */
static void unary_bw_body(const void *arg, int64_t n, char *const *p, const int64_t *s)
{
    const unary_arg *u = arg;
    if (u->vbw && s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1)
        u->vbw(n, (float *)p[0], (const float *)p[1], (const float *)p[2], (const float *)p[3],
               u->p0, u->p1);
    else
        u->bw(n, (float *)p[0], s[0], (const float *)p[1], s[1], (const float *)p[2], s[2],
              (const float *)p[3], s[3], u->p0, u->p1);
}

static void unary_bw_body_no_y(const void *arg, int64_t n, char *const *p, const int64_t *s)
{
    const unary_arg *u = arg;
    if (u->vbw && s[0] == 1 && s[1] == 1 && s[2] == 1)
        u->vbw(n, (float *)p[0], (const float *)p[1], (const float *)p[2], NULL, u->p0, u->p1);
    else
        u->bw(n, (float *)p[0], s[0], (const float *)p[1], s[1], (const float *)p[2], s[2],
              NULL, 0, u->p0, u->p1);
}

ag_status cpu_unary(void *ctx, ag_unary_op op, const float p[2], const ag_view *y, const ag_view *x)
{
    (void)ctx;
    if ((unsigned)op >= AG_UNARY_COUNT)
        return ag_set_error(AG_ERR_ARG, "cpu unary: unknown op %d", (int)op);
    const ag_view *v[2] = {y, x};
    ag_status s = ew_check("unary", 2, v, -1);
    if (s != AG_OK) return s;
    if (ag_view_numel(y) == 0) return AG_OK;
    const cpu_simd_ops *simd = cpu_simd();
    unary_arg u = {unary_rows[op], NULL, simd ? simd->unary[op] : NULL, NULL, p ? p[0] : 0.0f,
                   p ? p[1] : 0.0f};
    ew_iter it;
    ew_init(&it, 2, v);
    ew_run(&it, unary_body, &u);
    return AG_OK;
}

ag_status cpu_unary_backward(void *ctx, ag_unary_op op, const float p[2], const ag_view *dx,
                             const ag_view *dy, const ag_view *x, const ag_view *y)
{
    (void)ctx;
    if ((unsigned)op >= AG_UNARY_COUNT)
        return ag_set_error(AG_ERR_ARG, "cpu unary_backward: unknown op %d", (int)op);
    const ag_view *v[4] = {dx, dy, x, y};
    int nops = y ? 4 : 3;
    ag_status s = ew_check("unary_backward", nops, v, -1);
    if (s != AG_OK) return s;
    if (ag_view_numel(dx) == 0) return AG_OK;
    const cpu_simd_ops *simd = cpu_simd();
    unary_arg u = {NULL, unary_bw_rows[op], NULL, simd ? simd->unary_bw[op] : NULL,
                   p ? p[0] : 0.0f, p ? p[1] : 0.0f};
    ew_iter it;
    ew_init(&it, nops, v);
    ew_run(&it, y ? unary_bw_body : unary_bw_body_no_y, &u);
    return AG_OK;
}

/* ---- binary ops ------------------------------------------------------------ */

static inline float bin_add(float a, float b) { return a + b; }
static inline float bin_sub(float a, float b) { return a - b; }
static inline float bin_mul(float a, float b) { return a * b; }
static inline float bin_div(float a, float b) { return a / b; }
/* NaN in either operand wins, as torch.maximum/minimum */
static inline float bin_maximum(float a, float b) { return a != a ? a : b != b ? b : a > b ? a : b; }
static inline float bin_minimum(float a, float b) { return a != a ? a : b != b ? b : a < b ? a : b; }
static inline float bin_eq(float a, float b) { return a == b ? 1.0f : 0.0f; }
static inline float bin_ne(float a, float b) { return a != b ? 1.0f : 0.0f; }
static inline float bin_lt(float a, float b) { return a < b ? 1.0f : 0.0f; }
static inline float bin_le(float a, float b) { return a <= b ? 1.0f : 0.0f; }
static inline float bin_gt(float a, float b) { return a > b ? 1.0f : 0.0f; }
static inline float bin_ge(float a, float b) { return a >= b ? 1.0f : 0.0f; }

#define BINARY_OPS(X) AG_BINARY_TABLE(X)

typedef void (*binary_row_fn)(int64_t n, float *restrict y, int64_t ys, const float *restrict a,
                              int64_t as, const float *restrict b, int64_t bs);

/* Dense, and dense against a broadcast scalar (bias adds, scaling), get blocked
 * loops the compiler vectorizes; anything else takes the strided loop. */
#define DEF_BINARY_ROW(E, name, ...)                                                             \
    static void bin_row_##name(int64_t n, float *restrict y, int64_t ys, const float *restrict a, \
                               int64_t as, const float *restrict b, int64_t bs)                \
    {                                                                                          \
        int64_t i = 0;                                                                         \
        if (ys == 1 && as == 1 && bs == 1) {                                                   \
            for (; i + EW_BLOCK <= n; i += EW_BLOCK)                                           \
                for (int j = 0; j < EW_BLOCK; j++) y[i + j] = bin_##name(a[i + j], b[i + j]);  \
            for (; i < n; i++) y[i] = bin_##name(a[i], b[i]);                                  \
        } else if (ys == 1 && as == 1 && bs == 0) {                                            \
            const float bv = b[0];                                                             \
            for (; i + EW_BLOCK <= n; i += EW_BLOCK)                                           \
                for (int j = 0; j < EW_BLOCK; j++) y[i + j] = bin_##name(a[i + j], bv);        \
            for (; i < n; i++) y[i] = bin_##name(a[i], bv);                                    \
        } else if (ys == 1 && as == 0 && bs == 1) {                                            \
            const float av = a[0];                                                             \
            for (; i + EW_BLOCK <= n; i += EW_BLOCK)                                           \
                for (int j = 0; j < EW_BLOCK; j++) y[i + j] = bin_##name(av, b[i + j]);        \
            for (; i < n; i++) y[i] = bin_##name(av, b[i]);                                    \
        } else {                                                                               \
            for (; i < n; i++) y[i * ys] = bin_##name(a[i * as], b[i * bs]);                   \
        }                                                                                      \
    }
BINARY_OPS(DEF_BINARY_ROW)

#define BINARY_ENTRY(E, name, ...) [AG_BINARY_##E] = bin_row_##name,
static const binary_row_fn binary_rows[AG_BINARY_COUNT] = {BINARY_OPS(BINARY_ENTRY)};

typedef struct binary_arg {
    binary_row_fn fn;
    simd_binary_fn vfn; /* unit-stride output, inputs dense or broadcast; NULL: none */
} binary_arg;

static void binary_body(const void *arg, int64_t n, char *const *p, const int64_t *s)
{
    const binary_arg *b = arg;
    if (b->vfn && s[0] == 1 && (s[1] == 0 || s[1] == 1) && (s[2] == 0 || s[2] == 1))
        b->vfn(n, (float *)p[0], (const float *)p[1], s[1], (const float *)p[2], s[2]);
    else
        b->fn(n, (float *)p[0], s[0], (const float *)p[1], s[1], (const float *)p[2], s[2]);
}

ag_status cpu_binary(void *ctx, ag_binary_op op, const ag_view *y, const ag_view *a, const ag_view *b)
{
    (void)ctx;
    if ((unsigned)op >= AG_BINARY_COUNT)
        return ag_set_error(AG_ERR_ARG, "cpu binary: unknown op %d", (int)op);
    const ag_view *v[3] = {y, a, b};
    ag_status s = ew_check("binary", 3, v, -1);
    if (s != AG_OK) return s;
    if (ag_view_numel(y) == 0) return AG_OK;
    const cpu_simd_ops *simd = cpu_simd();
    binary_arg ba = {binary_rows[op], simd ? simd->binary[op] : NULL};
    ew_iter it;
    ew_init(&it, 3, v);
    ew_run(&it, binary_body, &ba);
    return AG_OK;
}

/* ---- where ----------------------------------------------------------------- */

static void where_body_f32(const void *arg, int64_t n, char *const *p, const int64_t *s)
{
    (void)arg;
    float *restrict y = (float *)p[0];
    const float *restrict c = (const float *)p[1];
    const float *restrict a = (const float *)p[2];
    const float *restrict b = (const float *)p[3];
    for (int64_t i = 0; i < n; i++) y[i * s[0]] = c[i * s[1]] != 0.0f ? a[i * s[2]] : b[i * s[3]];
}

static void where_body_i32(const void *arg, int64_t n, char *const *p, const int64_t *s)
{
    (void)arg;
    float *restrict y = (float *)p[0];
    const int32_t *restrict c = (const int32_t *)p[1];
    const float *restrict a = (const float *)p[2];
    const float *restrict b = (const float *)p[3];
    for (int64_t i = 0; i < n; i++) y[i * s[0]] = c[i * s[1]] != 0 ? a[i * s[2]] : b[i * s[3]];
}

/* cond may be f32 (comparison results) or int32 */
ag_status cpu_where(void *ctx, const ag_view *y, const ag_view *cond, const ag_view *a, const ag_view *b)
{
    (void)ctx;
    const ag_view *v[4] = {y, cond, a, b};
    ag_status s = ew_check("where", 4, v, 1);
    if (s != AG_OK) return s;
    if (ag_view_numel(y) == 0) return AG_OK;
    ew_iter it;
    ew_init(&it, 4, v);
    ew_run(&it, cond->dtype == AG_I32 ? where_body_i32 : where_body_f32, NULL);
    return AG_OK;
}
