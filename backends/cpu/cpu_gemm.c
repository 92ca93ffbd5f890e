/* Single-precision GEMM: cache blocking with packed panels and a register-tiled
 * micro-kernel in portable C (the ISA-specific kernels come with the SIMD work).
 *
 * Loop nest (Goto/BLIS): columns of C in NC blocks, the shared dimension in KC
 * blocks (a KC x NC panel of B is packed once and stays in L2), rows in MC
 * blocks (an MC x KC block of A is packed), then MR x NR tiles of C computed by
 * the micro-kernel from an A sliver and a B sliver.
 *
 * The micro-kernel holds its MR x NR tile in registers as MR * NR / VL vectors
 * of VL lanes. Packed A stores every element VL times so that the kernel's
 * "broadcast a(i)" is a plain vector load: without FMA the FP ports are the
 * limit, and a shuffle per broadcast costs as much as a multiply. That makes the
 * A sliver the larger one, so tiles run along rows: one A sliver stays in L1
 * while the B panel streams from L2 (measured ~20% faster than the reverse). */
#include "cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define MR 6
#define NR 8
#define VL 4   /* lanes of the vectors the compiler makes (SSE: 4 floats) */
#define MC 144 /* multiple of MR */
#define KC 256
#define NC 2048 /* multiple of NR */
/* m * n * k from which the work is shared between threads */
#define GEMM_PAR_MIN (1 << 19)

#if defined(__GNUC__) && !defined(__clang__)
#define UNROLL_ALL _Pragma("GCC unroll 16")
#else
#define UNROLL_ALL
#endif

/* C tile (mr x nr valid of MR x NR) = alpha * A sliver . B sliver + beta * C.
 * a: kc groups of MR * VL floats (each a(i, p) repeated VL times); b: kc rows of
 * NR floats. beta == 0 never reads C. */
static void sgemm_kernel(int64_t kc, const float *restrict a, const float *restrict b,
                         float *restrict c, int64_t ldc, int64_t mr, int64_t nr, float alpha,
                         float beta)
{
    float acc[MR][NR] = {{0}};
    for (int64_t p = 0; p < kc; p++) {
        /* unrolling i lets the compiler keep acc in registers */
        UNROLL_ALL
        for (int i = 0; i < MR; i++)
            for (int h = 0; h < NR / VL; h++)
                for (int l = 0; l < VL; l++) acc[i][h * VL + l] += a[i * VL + l] * b[h * VL + l];
        a += MR * VL;
        b += NR;
    }
    if (mr == MR && nr == NR) {
        if (beta == 0.0f) {
            for (int i = 0; i < MR; i++)
                for (int j = 0; j < NR; j++) c[i * ldc + j] = alpha * acc[i][j];
        } else {
            for (int i = 0; i < MR; i++)
                for (int j = 0; j < NR; j++) c[i * ldc + j] = alpha * acc[i][j] + beta * c[i * ldc + j];
        }
        return;
    }
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++)
            c[i * ldc + j] = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c[i * ldc + j];
}

/* Rows [i0, i0 + mr) x columns [p0, p0 + kc) of A into one MR sliver, zero-padded. */
static void pack_a(float *restrict dst, const float *a, int64_t rs, int64_t cs, int64_t i0,
                   int64_t mr, int64_t p0, int64_t kc)
{
    for (int64_t i = 0; i < MR; i++) {
        float *d = dst + i * VL;
        if (i >= mr) {
            for (int64_t p = 0; p < kc; p++)
                for (int l = 0; l < VL; l++) d[p * MR * VL + l] = 0.0f;
            continue;
        }
        const float *s = a + (i0 + i) * rs + p0 * cs;
        for (int64_t p = 0; p < kc; p++) {
            const float v = s[p * cs];
            for (int l = 0; l < VL; l++) d[p * MR * VL + l] = v;
        }
    }
}

/* Rows [p0, p0 + kc) x columns [j0, j0 + nr) of B into one NR sliver, zero-padded. */
static void pack_b(float *restrict dst, const float *b, int64_t rs, int64_t cs, int64_t p0,
                   int64_t kc, int64_t j0, int64_t nr)
{
    const float *s = b + p0 * rs + j0 * cs;
    if (nr == NR && cs == 1) {
        for (int64_t p = 0; p < kc; p++)
            for (int j = 0; j < NR; j++) dst[p * NR + j] = s[p * rs + j];
        return;
    }
    for (int64_t j = 0; j < NR; j++) {
        if (j < nr)
            for (int64_t p = 0; p < kc; p++) dst[p * NR + j] = s[p * rs + j * cs];
        else
            for (int64_t p = 0; p < kc; p++) dst[p * NR + j] = 0.0f;
    }
}

/* C = beta * C, for the cases that need no product. */
static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++) {
        float *r = c + i * ldc;
        if (beta == 0.0f)
            memset(r, 0, (size_t)n * sizeof *r);
        else
            for (int64_t j = 0; j < n; j++) r[j] *= beta;
    }
}

/* Unblocked fallback, used only when the packing buffers cannot be allocated. */
static void sgemm_plain(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t a_rs,
                        int64_t a_cs, const float *b, int64_t b_rs, int64_t b_cs, float beta,
                        float *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float s = 0.0f;
            for (int64_t p = 0; p < k; p++) s += a[i * a_rs + p * a_cs] * b[p * b_rs + j * b_cs];
            float *cij = &c[i * ldc + j];
            *cij = beta == 0.0f ? alpha * s : alpha * s + beta * *cij;
        }
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

typedef struct gemm_args {
    int64_t m, n, k;
    float alpha, beta;
    const float *a;
    int64_t a_rs, a_cs;
    const float *b;
    int64_t b_rs, b_cs;
    float *c;
    int64_t ldc;
} gemm_args;

/* The blocked loop nest, run by every thread of the current team (or by one
 * thread alone): the worksharing loops divide packing and tiles between the
 * threads and their implicit barriers order the phases. */
static void sgemm_blocked(const gemm_args *g, float *pa, float *pb)
{
    const int64_t m = g->m, n = g->n, k = g->k;
    for (int64_t jc = 0; jc < n; jc += NC) {
        const int64_t nc = min64(n - jc, NC), njr = (nc + NR - 1) / NR;
        for (int64_t pc = 0; pc < k; pc += KC) {
            const int64_t kc = min64(k - pc, KC);
            const float beta_pc = pc == 0 ? g->beta : 1.0f;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
            for (int64_t jr = 0; jr < njr; jr++)
                pack_b(pb + jr * NR * kc, g->b, g->b_rs, g->b_cs, pc, kc, jc + jr * NR,
                       min64(nc - jr * NR, NR));
            for (int64_t ic = 0; ic < m; ic += MC) {
                const int64_t mc = min64(m - ic, MC), nir = (mc + MR - 1) / MR;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
                for (int64_t ir = 0; ir < nir; ir++)
                    pack_a(pa + ir * MR * VL * kc, g->a, g->a_rs, g->a_cs, ic + ir * MR,
                           min64(mc - ir * MR, MR), pc, kc);
                /* row-major over tiles: a thread's A sliver stays in L1 */
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
                for (int64_t t = 0; t < njr * nir; t++) {
                    const int64_t ir = t / njr, jr = t % njr;
                    const int64_t i = ic + ir * MR, j = jc + jr * NR;
                    sgemm_kernel(kc, pa + ir * MR * VL * kc, pb + jr * NR * kc, g->c + i * g->ldc + j,
                                 g->ldc, min64(m - i, MR), min64(n - j, NR), g->alpha, beta_pc);
                }
            }
        }
    }
}

/* ---- matrix-vector products (m == 1 or n == 1) ----------------------------- */

/* A tile of the general kernel would be mostly padding here, so these walk the
 * matrix once, densely: dot products when its rows are contiguous, otherwise
 * column updates (axpy) into a block of accumulators. */
#define GEMV_TB 256

static inline void gemv_store(float *out, float v, float alpha, float beta)
{
    *out = beta == 0.0f ? alpha * v : alpha * v + beta * *out;
}

/* out[t * os] = alpha * sum_p M(t, p) v[p * vs] + beta * out[t * os] for t in
 * [t0, t1), where M(t, p) = mat[t * ts + p * ps]. */
static void gemv_block(int64_t t0, int64_t t1, int64_t k, float alpha, const float *mat, int64_t ts,
                       int64_t ps, const float *v, int64_t vs, float beta, float *out, int64_t os)
{
    if (ps == 1 && vs == 1) {
        for (int64_t t = t0; t < t1; t++) {
            const float *row = mat + t * ts;
            float lane[8] = {0};
            int64_t p = 0;
            for (; p + 8 <= k; p += 8)
                for (int j = 0; j < 8; j++) lane[j] += row[p + j] * v[p + j];
            float s = 0.0f;
            for (int j = 0; j < 8; j++) s += lane[j];
            for (; p < k; p++) s += row[p] * v[p];
            gemv_store(out + t * os, s, alpha, beta);
        }
    } else if (ts == 1) {
        float acc[GEMV_TB];
        const int64_t len = t1 - t0;
        for (int64_t t = 0; t < len; t++) acc[t] = 0.0f;
        for (int64_t p = 0; p < k; p++) {
            const float *col = mat + p * ps + t0;
            const float vp = v[p * vs];
            int64_t t = 0;
            for (; t + 8 <= len; t += 8)
                for (int j = 0; j < 8; j++) acc[t + j] += col[t + j] * vp;
            for (; t < len; t++) acc[t] += col[t] * vp;
        }
        for (int64_t t = 0; t < len; t++) gemv_store(out + (t0 + t) * os, acc[t], alpha, beta);
    } else {
        for (int64_t t = t0; t < t1; t++) {
            float s = 0.0f;
            for (int64_t p = 0; p < k; p++) s += mat[t * ts + p * ps] * v[p * vs];
            gemv_store(out + t * os, s, alpha, beta);
        }
    }
}

static void sgemv(int64_t len, int64_t k, float alpha, const float *mat, int64_t ts, int64_t ps,
                  const float *v, int64_t vs, float beta, float *out, int64_t os, int nt)
{
    const int64_t nblk = (len + GEMV_TB - 1) / GEMV_TB;
    if (nt > nblk) nt = (int)nblk;
    if (nt <= 1) {
        for (int64_t b = 0; b < nblk; b++)
            gemv_block(b * GEMV_TB, min64(len, (b + 1) * GEMV_TB), k, alpha, mat, ts, ps, v, vs,
                       beta, out, os);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int64_t b = 0; b < nblk; b++)
        gemv_block(b * GEMV_TB, min64(len, (b + 1) * GEMV_TB), k, alpha, mat, ts, ps, v, vs, beta,
                   out, os);
}

/* ---- entry point ----------------------------------------------------------- */

/* packing buffers of small products live on the stack: no allocation per call */
#define GEMM_STACK_FLOATS 8192

void cpu_sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t a_rs,
               int64_t a_cs, const float *b, int64_t b_rs, int64_t b_cs, float beta, float *c,
               int64_t ldc)
{
    if (m <= 0 || n <= 0) return;
    /* as in BLAS, alpha == 0 does not touch A and B */
    if (k <= 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    const double work = (double)m * (double)n * (double)k;
    const int nt = work >= GEMM_PAR_MIN ? cpu_threads() : 1;
    if (n == 1) { /* C column = A . b column */
        sgemv(m, k, alpha, a, a_rs, a_cs, b, b_rs, beta, c, ldc, nt);
        return;
    }
    if (m == 1) { /* C row = a row . B, i.e. B^T . a */
        sgemv(n, k, alpha, b, b_cs, b_rs, a, a_cs, beta, c, 1, nt);
        return;
    }
    const gemm_args g = {m, n, k, alpha, beta, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc};
    const int64_t kc_max = min64(k, KC);
    const int64_t mpad = (min64(m, MC) + MR - 1) / MR * MR, npad = (min64(n, NC) + NR - 1) / NR * NR;
    /* pb starts on a 64-byte boundary after pa */
    const int64_t na = (mpad * kc_max * VL + 15) / 16 * 16, nb = npad * kc_max;
    _Alignas(64) float stack_buf[GEMM_STACK_FLOATS];
    float *buf = stack_buf;
    if (na + nb > GEMM_STACK_FLOATS &&
        posix_memalign((void **)&buf, 64, (size_t)(na + nb) * sizeof(float)) != 0) {
        sgemm_plain(m, n, k, alpha, a, a_rs, a_cs, b, b_rs, b_cs, beta, c, ldc);
        return;
    }
    float *pa = buf, *pb = buf + na;
#ifdef _OPENMP
    /* Inside another team (a caller's parallel loop) the worksharing loops must
     * bind to a team of our own, even a team of one. */
    if (nt > 1 || omp_in_parallel()) {
#pragma omp parallel num_threads(nt)
        sgemm_blocked(&g, pa, pb);
    } else
#endif
    {
        sgemm_blocked(&g, pa, pb);
    }
    if (buf != stack_buf) free(buf);
}

/* ---- the backend op on [B, M, K] x [B, K, N] views ------------------------- */


/* A 2-D or 3-D view as batch, rows, columns and their strides (batch of one for 2-D). */
typedef struct mat3 {
    int64_t nb, rows, cols, bs, rs, cs;
} mat3;

static bool as_mat3(const ag_view *v, mat3 *m)
{
    if (v->ndim == 2) {
        *m = (mat3){1, v->shape[0], v->shape[1], 0, v->stride[0], v->stride[1]};
        return true;
    }
    if (v->ndim == 3) {
        *m = (mat3){v->shape[0], v->shape[1], v->shape[2], v->stride[0], v->stride[1], v->stride[2]};
        return true;
    }
    return false;
}

ag_status cpu_gemm(void *ctx, float alpha, float beta, const ag_view *c, const ag_view *a,
                   const ag_view *b)
{
    (void)ctx;
    if (!a || !b || !c || !a->buf || !b->buf || !c->buf)
        return ag_set_error(AG_ERR_ARG, "cpu gemm: invalid view");
    if (a->dtype != AG_F32 || b->dtype != AG_F32 || c->dtype != AG_F32)
        return ag_set_error(AG_ERR_DTYPE, "cpu gemm: needs f32 operands, got %s x %s -> %s",
                            ag_dtype_name(a->dtype), ag_dtype_name(b->dtype),
                            ag_dtype_name(c->dtype));
    mat3 ma, mb, mc;
    bool ok = as_mat3(a, &ma) && as_mat3(b, &mb) && as_mat3(c, &mc);
    /* a batch of one broadcasts like a batch stride of 0 */
    if (ok && ma.nb == 1) ma.bs = 0;
    if (ok && mb.nb == 1) mb.bs = 0;
    ok = ok && (ma.nb == mc.nb || ma.nb == 1) && (mb.nb == mc.nb || mb.nb == 1) &&
         ma.rows == mc.rows && mb.cols == mc.cols && ma.cols == mb.rows;
    if (!ok) {
        char sa[160], sb[160], sc[160];
        ag_view_shape_str(a, sa, sizeof sa);
        ag_view_shape_str(b, sb, sizeof sb);
        ag_view_shape_str(c, sc, sizeof sc);
        return ag_set_error(AG_ERR_SHAPE, "cpu gemm: cannot multiply %s by %s into %s", sa, sb, sc);
    }
    const int64_t nbatch = mc.nb, m = mc.rows, n = mc.cols, k = ma.cols;
    /* the kernel writes rows of C with unit stride */
    if (n > 1 && mc.cs != 1)
        return ag_set_error(AG_ERR_ARG, "cpu gemm: the output's last axis must be contiguous");
    const int64_t ldc = m > 1 ? mc.rs : n;
    const float *pa = cpu_f32(a), *pb = cpu_f32(b);
    float *pc = cpu_f32(c);
    if (nbatch == 0 || m == 0 || n == 0) return AG_OK;

    const double work = (double)m * (double)n * (double)k;
    int nt = nbatch > 1 && work < GEMM_PAR_MIN && work * (double)nbatch >= GEMM_PAR_MIN
                 ? cpu_threads() : 1;
    if (nt > nbatch) nt = (int)nbatch;
    if (nt <= 1) {
        for (int64_t i = 0; i < nbatch; i++)
            cpu_sgemm(m, n, k, alpha, pa + i * ma.bs, ma.rs, ma.cs, pb + i * mb.bs, mb.rs, mb.cs,
                      beta, pc + i * mc.bs, ldc);
        return AG_OK;
    }
    /* small matrices in a large batch: one thread per matrix instead */
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int64_t i = 0; i < nbatch; i++)
        cpu_sgemm(m, n, k, alpha, pa + i * ma.bs, ma.rs, ma.cs, pb + i * mb.bs, mb.rs, mb.cs, beta,
                  pc + i * mc.bs, ldc);
    return AG_OK;
}
