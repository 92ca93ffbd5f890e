/* Single-precision GEMM: cache blocking with packed panels and a register-tiled
 * micro-kernel chosen by cpu_isa() (gemm_kernels.h: AVX2+FMA, AVX-512F, NEON;
 * the portable kernel below for scalar).
 *
 * Loop nest (Goto/BLIS): columns of C in NC blocks, the shared dimension in KC
 * blocks (a KC x NC panel of B is packed once, shared by the threads, and stays
 * in L2), rows in MC blocks (an MC x KC block of A, packed by the thread that
 * owns those rows), then MR x NR tiles of C computed by the micro-kernel from an
 * A sliver (MR rows) and a B sliver (NR columns). Tiles run along rows: the A
 * sliver stays in L1 while the B panel streams from L2.
 *
 * Threads split the rows of C, so each packs only its own A and the only
 * barriers are around the shared B panel; a C with too few rows for that splits
 * its columns instead over a shared A block.
 *
 * Around that, for the shapes where packing and threading cost more than they
 * save:
 *  - m == 1 or n == 1: matrix-vector kernels that walk the matrix once (every
 *    ISA has them);
 *  - with an ISA's small kernels (gemm_kernels.h), products of up to
 *    DIRECT_WORK multiply-adds, with k <= DIRECT_K, or whose streamed operand
 *    stays in L2 (direct_suits) run on the operands in place: slivers of rows
 *    across all columns, B through a strip on the stack when its rows are not
 *    contiguous, a narrow C with A stored transposed as C^T; no packing
 *    buffers, threads only over whole slivers or strips;
 *  - in the packed path, a C of at most NR columns reads A in place (each
 *    sliver would serve one tile), and the small kernels take the edge tiles
 *    on the packed slivers, only the rows and columns that exist.
 * The matrix-vector and in-place paths allocate nothing; the packed path
 * reuses a cached buffer. Every element of C is summed in an order fixed by
 * the shape and the ISA, whatever the thread count (tests/test_matmul.c checks
 * 1, 2 and 3 threads bit for bit). */
#include "cpu.h"
#include "gemm_kernels.h"
#include "plan.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* m * n * k from which the work is shared between threads: on the packed
 * path, and on the in-place and matrix-vector paths (a product that small
 * takes a few microseconds on one core, about what waking a second costs) */
#define GEMM_PAR_MIN (1 << 19)
#define DIRECT_PAR_MIN (1 << 20)
/* the in-place path (direct_suits): m * n * k up to this, or k up to this, or
 * the operand it streams up to these many floats (A when B's rows are not
 * contiguous; B when A is row-major; B otherwise: an eighth of the first) */
#define DIRECT_WORK (1 << 22)
#define DIRECT_K 16
#define DIRECT_STREAM_ANY (512.0 * 1024)
#define DIRECT_STREAM_ROWS (200.0 * 1024)

/* One ISA's micro-kernel and blocking. mc is a multiple of mr, nc of nr. */
typedef struct gemm_impl {
    int mr, nr;
    int a_rep; /* copies of each A element in the packing (1 for a broadcasting kernel) */
    int64_t mc, kc, nc;
    cpu_gemm_ukernel kernel;
    cpu_gemm_small small; /* or NULL: the small kernels, tile mr x nr */
    int dmr, dmr_short;   /* rows of the in-place path's slivers: k > 2, k <= 2 */
    cpu_gemm_pack_t pack_t; /* or NULL: the SSE2 4 x 4 transposes */
    cpu_gemv_rows gemv_rows;
    cpu_gemv_cols gemv_cols;
    cpu_ger ger; /* or NULL: rank-1 products take the general paths */
} gemm_impl;

#define MR_MAX 12
#define NR_MAX 32
/* k block of a B strip packed on the stack by the in-place path: 32 KiB */
#define STRIP_KC 256

/* ---- the portable kernel --------------------------------------------------- */

/* The portable kernel holds its tile as SMR * SNR / SVL vectors of SVL lanes that
 * the compiler makes. Packed A stores every element SVL times so that the
 * kernel's "broadcast a(i)" is a plain vector load: without FMA the FP ports are
 * the limit, and a shuffle per broadcast costs as much as a multiply. */
#define SMR 6
#define SNR 8
#define SVL 4 /* lanes of the vectors the compiler makes (SSE: 4 floats) */

#if defined(__GNUC__) && !defined(__clang__)
#define UNROLL_ALL _Pragma("GCC unroll 16")
#else
#define UNROLL_ALL
#endif

static void scalar_ukernel(int64_t kc, const float *restrict a, const float *restrict b,
                           float *restrict c, int64_t ldc, float alpha, float beta)
{
    float acc[SMR][SNR] = {{0}};
    for (int64_t p = 0; p < kc; p++) {
        /* unrolling i lets the compiler keep acc in registers */
        UNROLL_ALL
        for (int i = 0; i < SMR; i++)
            for (int h = 0; h < SNR / SVL; h++)
                for (int l = 0; l < SVL; l++) acc[i][h * SVL + l] += a[i * SVL + l] * b[h * SVL + l];
        a += SMR * SVL;
        b += SNR;
    }
    if (beta == 0.0f) {
        for (int i = 0; i < SMR; i++)
            for (int j = 0; j < SNR; j++) c[i * ldc + j] = alpha * acc[i][j];
    } else {
        for (int i = 0; i < SMR; i++)
            for (int j = 0; j < SNR; j++) c[i * ldc + j] = alpha * acc[i][j] + beta * c[i * ldc + j];
    }
}


/* The portable matrix-vector kernels (gemm_kernels.h): plain loops that the
 * compiler vectorizes for the baseline ISA. */
static void portable_gemv_rows(int64_t len, int64_t k, const float *mat, int64_t ld,
                               const float *x, float *y, int64_t ys, float alpha, float beta)
{
    for (int64_t t = 0; t < len; t++) {
        const float *row = mat + t * ld;
        float lane[8] = {0};
        int64_t p = 0;
        for (; p + 8 <= k; p += 8)
            for (int j = 0; j < 8; j++) lane[j] += row[p + j] * x[p + j];
        float s = 0.0f;
        for (int j = 0; j < 8; j++) s += lane[j];
        for (; p < k; p++) s += row[p] * x[p];
        y[t * ys] = beta == 0.0f ? alpha * s : alpha * s + beta * y[t * ys];
    }
}

#define GEMV_TB 128 /* outputs a pass of the portable column kernel keeps */

static void portable_gemv_cols(int64_t len, int64_t k, const float *mat, int64_t ld,
                               const float *x, int64_t xs, float *y, int64_t ys, float alpha,
                               float beta)
{
    for (int64_t t0 = 0; t0 < len; t0 += GEMV_TB) {
        float acc[GEMV_TB];
        const int64_t nt = len - t0 < GEMV_TB ? len - t0 : GEMV_TB;
        for (int64_t t = 0; t < nt; t++) acc[t] = 0.0f;
        for (int64_t p = 0; p < k; p++) {
            const float *col = mat + p * ld + t0;
            const float xp = x[p * xs];
            for (int64_t t = 0; t < nt; t++) acc[t] += col[t] * xp;
        }
        for (int64_t t = 0; t < nt; t++) {
            float *out = y + (t0 + t) * ys;
            *out = beta == 0.0f ? alpha * acc[t] : alpha * acc[t] + beta * *out;
        }
    }
}

/* Blocking: the A sliver (mr x kc) fits L1 with room for the B stream, the B
 * panel (kc x nc, 1.5 MiB for AVX-512) most of L2 (2 MiB a core on this
 * machine). Measured on a Xeon (Emerald Rapids) with 2 FMA-512 pipes: kc 256-512
 * are within noise of each other, nc >= 1024 beats 512-768 at n = 2048 (fewer
 * repacks of A). The portable kernel keeps the blocking it was tuned with.
 * Slivers of the in-place path, measured there too: 8 rows beat 12 for AVX-512
 * at every k (fewer rows of C written at once: 128 x 128 x 10 went from 126 to
 * 142 GFLOP/s, 784 x 256 x 16 from 135 to 157), and with k <= 2 (outer
 * products, bound by the stores of C) 2 rows beat 8 (784 x 256 x 1: 18 -> 21);
 * AVX2: 6 and 3. */
#define PORTABLE {SMR, SNR, SVL, 144, 256, 2048, scalar_ukernel, NULL, 0, 0, NULL, \
                  portable_gemv_rows, portable_gemv_cols, NULL}
static const gemm_impl gemm_impls[CPU_ISA_COUNT] = {
    [CPU_ISA_SCALAR] = PORTABLE,
#ifdef __x86_64__
    [CPU_ISA_AVX2] = {CPU_GEMM_AVX2_MR, CPU_GEMM_AVX2_NR, 1, 144, 384, 1024, cpu_sgemm_ukernel_avx2,
                      cpu_sgemm_small_avx2, 6, 3, NULL, cpu_sgemv_rows_avx2, cpu_sgemv_cols_avx2,
                      cpu_sger_avx2},
    [CPU_ISA_AVX512] = {CPU_GEMM_AVX512_MR, CPU_GEMM_AVX512_NR, 1, 144, 384, 1024,
                        cpu_sgemm_ukernel_avx512, cpu_sgemm_small_avx512, 8, 2,
                        cpu_gemm_pack_t_avx512, cpu_sgemv_rows_avx512, cpu_sgemv_cols_avx512,
                        cpu_sger_avx512},
    [CPU_ISA_NEON] = PORTABLE,
#elif defined(__aarch64__)
    [CPU_ISA_AVX2] = PORTABLE,
    [CPU_ISA_AVX512] = PORTABLE,
    /* a guess, not measured (no ARM machine to tune on): the A sliver (8 x 256,
     * 8 KiB) and the B sliver stay in a 32-64 KiB L1, the B panel (256 x 768,
     * 768 KiB) in the 1 MiB L2 of Neoverse cores */
    [CPU_ISA_NEON] = {CPU_GEMM_NEON_MR, CPU_GEMM_NEON_NR, 1, 128, 256, 768, cpu_sgemm_ukernel_neon,
                      NULL, 0, 0, NULL, cpu_sgemv_rows_neon, cpu_sgemv_cols_neon, NULL},
#else
    [CPU_ISA_AVX2] = PORTABLE,
    [CPU_ISA_AVX512] = PORTABLE,
    [CPU_ISA_NEON] = PORTABLE,
#endif
};

/* ---- packing --------------------------------------------------------------- */

/* n floats from s to d without a call to memcpy (these runs are short, and the
 * call costs as much as the copy) */
static inline void copy_run(float *restrict d, const float *restrict s, int64_t n)
{
    int64_t j = 0;
#ifdef __SSE2__
    for (; j + 4 <= n; j += 4) _mm_storeu_ps(d + j, _mm_loadu_ps(s + j));
    switch (n - j) {
    case 3: d[j + 2] = s[j + 2]; /* fall through */
    case 2: d[j + 1] = s[j + 1]; /* fall through */
    case 1: d[j] = s[j]; /* fall through */
    default: break;
    }
#else
    for (; j < n; j++) d[j] = s[j];
#endif
}

#ifdef __SSE2__
/* Four rows of a row-major A (or four columns of a column-major B) into a
 * sliver's interleaved layout (step floats per k) by 4 x 4 transposes: 16-byte stores instead of scattered floats.
 * SSE2 is part of the x86-64 baseline, so no ISA flags are needed. */
static void pack_a_rows4(float *restrict d, const float *s, int64_t rs, int64_t kc, int64_t step)
{
    const float *s0 = s, *s1 = s + rs, *s2 = s + 2 * rs, *s3 = s + 3 * rs;
    int64_t p = 0;
    for (; p + 4 <= kc; p += 4) {
        __m128 r0 = _mm_loadu_ps(s0 + p), r1 = _mm_loadu_ps(s1 + p);
        __m128 r2 = _mm_loadu_ps(s2 + p), r3 = _mm_loadu_ps(s3 + p);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        _mm_storeu_ps(d + (p + 0) * step, r0);
        _mm_storeu_ps(d + (p + 1) * step, r1);
        _mm_storeu_ps(d + (p + 2) * step, r2);
        _mm_storeu_ps(d + (p + 3) * step, r3);
    }
    for (; p < kc; p++) {
        d[p * step + 0] = s0[p];
        d[p * step + 1] = s1[p];
        d[p * step + 2] = s2[p];
        d[p * step + 3] = s3[p];
    }
}
#endif

/* Rows [i0, i0 + mr) x columns [p0, p0 + kc) of A into one sliver: kc groups of
 * MR elements (each repeated rep times). Rows past mr are zeroed only for an
 * ISA without small kernels: the full-tile kernel reads them, the small
 * kernels that take the edge tiles read only rows that exist. */
static void pack_a(const gemm_impl *K, float *restrict dst, const float *a, int64_t rs, int64_t cs,
                   int64_t i0, int64_t mr, int64_t p0, int64_t kc)
{
    const int64_t MR = K->mr, rep = K->a_rep, step = MR * rep, rows = K->small ? mr : MR;
    const float *s = a + i0 * rs + p0 * cs;
    if (rep == 1 && rs == 1) { /* A transposed in memory: columns are contiguous */
        for (int64_t p = 0; p < kc; p++) {
            copy_run(dst + p * MR, s + p * cs, mr);
            for (int64_t i = mr; i < rows; i++) dst[p * MR + i] = 0.0f;
        }
        return;
    }
    int64_t i = 0;
    if (rep == 1 && cs == 1 && K->pack_t) {
        K->pack_t(dst, step, s, rs, kc, mr);
        i = mr;
    }
#ifdef __SSE2__
    if (rep == 1 && cs == 1)
        for (; i + 4 <= mr; i += 4) pack_a_rows4(dst + i, s + i * rs, rs, kc, step);
#endif
    for (; i < rows; i++) {
        float *d = dst + i * rep;
        const float *si = s + i * rs;
        if (i >= mr) {
            for (int64_t p = 0; p < kc; p++)
                for (int64_t l = 0; l < rep; l++) d[p * step + l] = 0.0f;
        } else if (rep == 1) {
            for (int64_t p = 0; p < kc; p++) d[p * step] = si[p * cs];
        } else {
            for (int64_t p = 0; p < kc; p++)
                for (int64_t l = 0; l < rep; l++) d[p * step + l] = si[p * cs];
        }
    }
}

/* Rows [p0, p0 + kc) x columns [j0, j0 + nr) of B into one sliver: kc groups of
 * NR elements; columns past nr zeroed only for an ISA without small kernels
 * (as in pack_a). */
static void pack_b(const gemm_impl *K, float *restrict dst, const float *b, int64_t rs, int64_t cs,
                   int64_t p0, int64_t kc, int64_t j0, int64_t nr)
{
    const int64_t NR = K->nr, cols = K->small ? nr : NR;
    const float *s = b + p0 * rs + j0 * cs;
    if (cs == 1) {
        for (int64_t p = 0; p < kc; p++) {
            copy_run(dst + p * NR, s + p * rs, nr);
            for (int64_t j = nr; j < cols; j++) dst[p * NR + j] = 0.0f;
        }
        return;
    }
    int64_t j = 0;
    if (rs == 1 && K->pack_t) { /* B transposed in memory: columns are contiguous */
        K->pack_t(dst, NR, s, cs, kc, nr);
        j = nr;
    }
#ifdef __SSE2__
    if (rs == 1)
        for (; j + 4 <= nr; j += 4) pack_a_rows4(dst + j, s + j * cs, cs, kc, NR);
#endif
    for (; j < cols; j++) {
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

/* C(q, r) = T(r, q) + beta * C(q, r) for r < mr, q < nr: a tile of C^T (T,
 * rows lt apart) stored into C, by 4 x 4 transposes where SSE2 has them. */
static void store_across(const float *t, int64_t lt, float *c, int64_t ldc, int64_t mr,
                         int64_t nr, float beta)
{
    int64_t q = 0;
#ifdef __SSE2__
    const __m128 vb = _mm_set1_ps(beta);
    for (; q + 4 <= nr; q += 4) {
        int64_t r = 0;
        for (; r + 4 <= mr; r += 4) {
            __m128 x0 = _mm_loadu_ps(t + r * lt + q), x1 = _mm_loadu_ps(t + (r + 1) * lt + q);
            __m128 x2 = _mm_loadu_ps(t + (r + 2) * lt + q), x3 = _mm_loadu_ps(t + (r + 3) * lt + q);
            _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
            float *c0 = c + q * ldc + r, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
            if (beta != 0.0f) {
                x0 = _mm_add_ps(x0, _mm_mul_ps(vb, _mm_loadu_ps(c0)));
                x1 = _mm_add_ps(x1, _mm_mul_ps(vb, _mm_loadu_ps(c1)));
                x2 = _mm_add_ps(x2, _mm_mul_ps(vb, _mm_loadu_ps(c2)));
                x3 = _mm_add_ps(x3, _mm_mul_ps(vb, _mm_loadu_ps(c3)));
            }
            _mm_storeu_ps(c0, x0);
            _mm_storeu_ps(c1, x1);
            _mm_storeu_ps(c2, x2);
            _mm_storeu_ps(c3, x3);
        }
        for (; r < mr; r++)
            for (int64_t h = q; h < q + 4; h++) {
                float *cij = c + h * ldc + r;
                *cij = beta == 0.0f ? t[r * lt + h] : t[r * lt + h] + beta * *cij;
            }
    }
#endif
    for (; q < nr; q++)
        for (int64_t r = 0; r < mr; r++) {
            float *cij = c + q * ldc + r;
            *cij = beta == 0.0f ? t[r * lt + q] : t[r * lt + q] + beta * *cij;
        }
}

/* ---- the blocked loop nest --------------------------------------------------- */

typedef struct gemm_plan {
    const gemm_impl *K;
    int64_t m, n, k;
    float alpha, beta;
    const float *a;
    int64_t a_rs, a_cs;
    const float *b;
    int64_t b_rs, b_cs;
    float *c;
    int64_t ldc;
    bool c_trans;       /* the product's (i, j) is C(j, i): see cpu_sgemm */
    bool a_inplace;     /* the small kernel reads A in place: A is never packed */
    int64_t kc;         /* k block, balanced so the last one is not a sliver */
    float *pb;          /* B panels: one shared, or one per thread */
    float *pa;          /* one A block per thread */
    int64_t pa_floats, pb_floats; /* size of each */
} gemm_plan;

/* One tile at (i, j) in the k block at pc, from the A sliver pa (or A in place)
 * and the B sliver pb: full tiles by the micro-kernel, edge tiles by the small
 * kernel when the ISA has one (only the rows and columns that exist), else
 * through a scratch tile. */
static void gemm_tile(const gemm_plan *P, const float *pa, const float *pb, int64_t kc, int64_t i,
                      int64_t j, int64_t pc, float beta)
{
    const gemm_impl *K = P->K;
    const int64_t mr = min64(P->m - i, K->mr), nr = min64(P->n - j, K->nr);
    /* A(r, p) of the sliver: packed, or in place */
    const float *a = pa;
    int64_t a_rs = K->a_rep, a_cs = (int64_t)K->mr * K->a_rep;
    if (P->a_inplace) {
        a = P->a + i * P->a_rs + pc * P->a_cs;
        a_rs = P->a_rs;
        a_cs = P->a_cs;
    }
    _Alignas(64) float t[MR_MAX * NR_MAX];
    if (P->c_trans) {
        if (K->small)
            K->small(kc, a, a_rs, a_cs, pb, K->nr, t, K->nr, mr, nr, P->alpha, 0.0f);
        else
            K->kernel(kc, pa, pb, t, K->nr, P->alpha, 0.0f);
        store_across(t, K->nr, P->c + j * P->ldc + i, P->ldc, mr, nr, beta);
        return;
    }
    float *c = P->c + i * P->ldc + j;
    if (mr == K->mr && nr == K->nr && !P->a_inplace) {
        K->kernel(kc, pa, pb, c, P->ldc, P->alpha, beta);
        return;
    }
    if (K->small) {
        K->small(kc, a, a_rs, a_cs, pb, K->nr, c, P->ldc, mr, nr, P->alpha, beta);
        return;
    }
    K->kernel(kc, pa, pb, t, K->nr, P->alpha, 0.0f);
    for (int64_t r = 0; r < mr; r++)
        for (int64_t q = 0; q < nr; q++) {
            float *cij = c + r * P->ldc + q;
            *cij = beta == 0.0f ? t[r * K->nr + q] : t[r * K->nr + q] + beta * *cij;
        }
}

/* Rows [r0, r1) of C (whole slivers) against the packed B panel pb at (jc, pc). */
static void gemm_rows(const gemm_plan *P, float *pa, const float *pb, int64_t r0, int64_t r1,
                      int64_t jc, int64_t nc, int64_t pc, int64_t kc, float beta)
{
    const gemm_impl *K = P->K;
    const int64_t njr = (nc + K->nr - 1) / K->nr;
    for (int64_t ic = r0; ic < r1; ic += K->mc) {
        const int64_t mc = min64(r1 - ic, K->mc), nir = (mc + K->mr - 1) / K->mr;
        for (int64_t ir = 0; ir < nir && !P->a_inplace; ir++)
            pack_a(K, pa + ir * K->mr * K->a_rep * kc, P->a, P->a_rs, P->a_cs, ic + ir * K->mr,
                   min64(mc - ir * K->mr, K->mr), pc, kc);
        for (int64_t ir = 0; ir < nir; ir++)
            for (int64_t jr = 0; jr < njr; jr++)
                gemm_tile(P, pa + ir * K->mr * K->a_rep * kc, pb + jr * K->nr * kc, kc,
                          ic + ir * K->mr, jc + jr * K->nr, pc, beta);
    }
}

/* Columns [j0, j1) of C by one thread alone, with its own packing buffers. */
static void gemm_serial(const gemm_plan *P, float *pa, float *pb, int64_t j0, int64_t j1)
{
    const gemm_impl *K = P->K;
    const int64_t NR = K->nr;
    for (int64_t jc = j0; jc < j1; jc += K->nc) {
        const int64_t nc = min64(j1 - jc, K->nc), njr = (nc + NR - 1) / NR;
        for (int64_t pc = 0; pc < P->k; pc += P->kc) {
            const int64_t kc = min64(P->k - pc, P->kc);
            for (int64_t jr = 0; jr < njr; jr++)
                pack_b(K, pb + jr * NR * kc, P->b, P->b_rs, P->b_cs, pc, kc, jc + jr * NR,
                       min64(nc - jr * NR, NR));
            gemm_rows(P, pa, pb, 0, P->m, jc, nc, pc, kc, pc == 0 ? P->beta : 1.0f);
        }
    }
}

/* How evenly units of work split over nth threads (1: perfectly). */
static double balance(int64_t units, int nth)
{
    return (double)units / (double)(((units + nth - 1) / nth) * nth);
}

/* Run by every thread of the team (or by one thread alone). */
static void gemm_team(const gemm_plan *P)
{
    const gemm_impl *K = P->K;
    const int tid = cpu_team_rank(), nth = cpu_team_size();
    const int64_t m = P->m, n = P->n, k = P->k, MR = K->mr, NR = K->nr;
    const int64_t nir_all = (m + MR - 1) / MR, njr_all = (n + NR - 1) / NR;
    if (nth == 1) {
        gemm_serial(P, P->pa, P->pb, 0, n);
        return;
    }
    /* Blocks of columns, each an independent product with its own packing,
     * taken as threads come free, when there are enough for that (a thread that
     * starts late on a loaded machine then does less instead of holding up the
     * rest), or when they split more evenly than the rows (128 rows are 11
     * slivers of 12: 6 + 5 on two threads) or as evenly with no more rows than
     * columns. Each block packs all of A, but shares nothing and never waits;
     * no tile's result depends on the block or thread that computes it. */
    const double bal_rows = balance(nir_all, nth), bal_cols = balance(njr_all, nth);
    if (njr_all >= 4 * nth ||
        (njr_all >= 2 * nth && (bal_cols > bal_rows || (bal_cols == bal_rows && m <= n)))) {
        const int64_t per = min64(K->nc / NR, njr_all >= 4 * nth ? njr_all / (4 * nth) : njr_all / nth);
        const int64_t blocks = (njr_all + per - 1) / per;
        float *pa = P->pa + tid * P->pa_floats, *pb = P->pb + tid * P->pb_floats;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int64_t q = 0; q < blocks; q++)
            gemm_serial(P, pa, pb, q * per * NR, min64((q + 1) * per * NR, n));
        return;
    }
    /* rows per thread when there are enough of them, otherwise columns */
    const bool split_rows = nir_all >= 2 * nth;
    float *pa_own = P->pa + (split_rows ? tid : 0) * P->pa_floats;
    for (int64_t jc = 0; jc < n; jc += K->nc) {
        const int64_t nc = min64(n - jc, K->nc), njr = (nc + NR - 1) / NR;
        for (int64_t pc = 0; pc < k; pc += P->kc) {
            const int64_t kc = min64(k - pc, P->kc);
            const float beta = pc == 0 ? P->beta : 1.0f;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
            for (int64_t jr = 0; jr < njr; jr++)
                pack_b(K, P->pb + jr * NR * kc, P->b, P->b_rs, P->b_cs, pc, kc, jc + jr * NR,
                       min64(nc - jr * NR, NR));
            if (split_rows) {
                const int64_t s0 = nir_all * tid / nth, s1 = nir_all * (tid + 1) / nth;
                gemm_rows(P, pa_own, P->pb, s0 * MR, min64(s1 * MR, m), jc, nc, pc, kc, beta);
            } else {
                /* few rows (m < 2 * MR * threads): one A block, packed together */
                const int64_t nir = nir_all;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
                for (int64_t ir = 0; ir < (P->a_inplace ? 0 : nir); ir++)
                    pack_a(K, pa_own + ir * MR * K->a_rep * kc, P->a, P->a_rs, P->a_cs, ir * MR,
                           min64(m - ir * MR, MR), pc, kc);
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
                for (int64_t t = 0; t < njr * nir; t++) {
                    const int64_t jr = t / nir, ir = t % nir;
                    gemm_tile(P, pa_own + ir * MR * K->a_rep * kc, P->pb + jr * NR * kc, kc,
                              ir * MR, jc + jr * NR, pc, beta);
                }
            }
            /* the next B panel overwrites this one */
#ifdef _OPENMP
#pragma omp barrier
#endif
        }
    }
}

/* ---- packing memory -------------------------------------------------------- */

/* Packing buffers are kept between calls: a fresh large malloc is a fresh mmap,
 * and its page faults cost more than a small product. One buffer is cached; a
 * concurrent caller that finds the cache empty allocates its own. */
typedef struct pack_buf {
    size_t floats;
    _Alignas(64) float data[];
} pack_buf;

static _Atomic(pack_buf *) pack_cache;

static pack_buf *pack_take(size_t floats)
{
    pack_buf *p = atomic_exchange(&pack_cache, NULL);
    if (p && p->floats >= floats) return p;
    free(p);
    void *mem = NULL;
    if (posix_memalign(&mem, 64, sizeof(pack_buf) + floats * sizeof(float)) != 0) return NULL;
    p = mem;
    p->floats = floats;
    return p;
}

static void pack_give(pack_buf *p)
{
    /* keep the larger of this one and whatever another caller returned meanwhile */
    pack_buf *old = atomic_exchange(&pack_cache, p);
    if (old && old->floats > p->floats) {
        old = atomic_exchange(&pack_cache, old);
    }
    free(old);
}

/* ---- matrix-vector products (m == 1 or n == 1) ----------------------------- */

/* A tile of the general kernel would be mostly padding here, so these walk the
 * matrix once, densely, with the ISA's gemv kernels: dot products when its rows
 * are contiguous, otherwise column updates into a block of sums held in
 * registers. */
#define GEMV_GATHER 1024 /* floats of a strided vector gathered at a time */
#define GEMV_UNIT 128    /* outputs a thread takes at a time (a multiple of 16: gemm_kernels.h) */

/* out[t * os] = alpha * sum_p M(t, p) v[p * vs] + beta * out[t * os] for t in
 * [t0, t1), where M(t, p) = mat[t * ts + p * ps]. */
static void gemv_range(const gemm_impl *K, int64_t t0, int64_t t1, int64_t k, float alpha,
                       const float *mat, int64_t ts, int64_t ps, const float *v, int64_t vs,
                       float beta, float *out, int64_t os)
{
    const int64_t len = t1 - t0;
    mat += t0 * ts;
    out += t0 * os;
    if (ps == 1 && vs == 1) {
        K->gemv_rows(len, k, mat, ts, v, out, os, alpha, beta);
    } else if (ts == 1) {
        K->gemv_cols(len, k, mat, ps, v, vs, out, os, alpha, beta);
    } else if (ps == 1) { /* a strided vector: gathered in blocks of k */
        float xb[GEMV_GATHER];
        for (int64_t p0 = 0; p0 < k; p0 += GEMV_GATHER) {
            const int64_t kc = min64(GEMV_GATHER, k - p0);
            for (int64_t p = 0; p < kc; p++) xb[p] = v[(p0 + p) * vs];
            K->gemv_rows(len, kc, mat + p0, ts, xb, out, os, alpha, p0 == 0 ? beta : 1.0f);
        }
    } else { /* neither axis of the matrix contiguous */
        for (int64_t t = 0; t < len; t++) {
            float s = 0.0f;
            for (int64_t p = 0; p < k; p++) s += mat[t * ts + p * ps] * v[p * vs];
            out[t * os] = beta == 0.0f ? alpha * s : alpha * s + beta * out[t * os];
        }
    }
}

static void sgemv(const gemm_impl *K, int64_t len, int64_t k, float alpha, const float *mat,
                  int64_t ts, int64_t ps, const float *v, int64_t vs, float beta, float *out,
                  int64_t os, int nt)
{
    const int64_t units = (len + GEMV_UNIT - 1) / GEMV_UNIT;
    if (nt > units) nt = (int)units;
    if (nt <= 1) {
        gemv_range(K, 0, len, k, alpha, mat, ts, ps, v, vs, beta, out, os);
        return;
    }
    /* units taken as threads come free: on a loaded machine a thread that
     * starts late then does less, and no unit's result depends on its thread */
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
#endif
    for (int64_t u = 0; u < units; u++)
        gemv_range(K, u * GEMV_UNIT, min64(len, (u + 1) * GEMV_UNIT), k, alpha, mat, ts, ps, v, vs,
                   beta, out, os);
}

/* ---- products on the operands in place ------------------------------------- */

/* One tile of the in-place path at (i, j), mr x nr, k from A (rows at a) and
 * B (columns at b, rows ldb apart). Transposed (c_trans): the tile is C^T's,
 * computed into a scratch tile and stored across. */
static inline void direct_tile(const gemm_impl *K, int64_t k, float alpha, const float *a,
                               int64_t a_rs, int64_t a_cs, const float *b, int64_t ldb,
                               float beta, float *c, int64_t ldc, int64_t i, int64_t j,
                               int64_t mr, int64_t nr, bool c_trans)
{
    if (!c_trans) {
        K->small(k, a, a_rs, a_cs, b, ldb, c + i * ldc + j, ldc, mr, nr, alpha, beta);
        return;
    }
    _Alignas(64) float t[MR_MAX * NR_MAX];
    K->small(k, a, a_rs, a_cs, b, ldb, t, K->nr, mr, nr, alpha, 0.0f);
    store_across(t, K->nr, c + j * ldc + i, ldc, mr, nr, beta);
}

/* Units [u0, u1) of the product by the small kernel with B in place: a unit
 * is a sliver of rows (sliver s: rows [m s / nsl, m (s + 1) / nsl)) across spu
 * strips of NR columns, numbered along the rows (one sliver's units, then the
 * next's), so the A sliver stays in L1 and the rows of C are written in
 * sequence. */
static void direct_tiles(const gemm_impl *K, int64_t u0, int64_t u1, int64_t nsl, int64_t spu,
                         int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                         int64_t a_rs, int64_t a_cs, const float *b, int64_t b_rs, float beta,
                         float *c, int64_t ldc, bool c_trans)
{
    const int64_t njr = (n + K->nr - 1) / K->nr, per_row = (njr + spu - 1) / spu;
    for (int64_t u = u0; u < u1; u++) {
        const int64_t s = u / per_row, i = m * s / nsl, mr = m * (s + 1) / nsl - i;
        const int64_t j = u % per_row * spu * K->nr;
        direct_tile(K, k, alpha, a + i * a_rs, a_rs, a_cs, b + j, b_rs, beta, c, ldc, i, j, mr,
                    min64(spu * K->nr, n - j), c_trans);
    }
}

/* Strips [s0, s1) of NR columns of the product when B's rows are not
 * contiguous: each strip of B packed on the stack, STRIP_KC rows of k at a
 * time, then used by every sliver of rows. */
static void direct_strips(const gemm_impl *K, int64_t s0, int64_t s1, int64_t nsl, int64_t m,
                          int64_t n, int64_t k, float alpha, const float *a, int64_t a_rs,
                          int64_t a_cs, const float *b, int64_t b_rs, int64_t b_cs, float beta,
                          float *c, int64_t ldc, bool c_trans)
{
    _Alignas(64) float strip[STRIP_KC * NR_MAX];
    for (int64_t s = s0; s < s1; s++) {
        const int64_t j = s * K->nr, nr = min64(K->nr, n - j);
        for (int64_t pc = 0; pc < k; pc += STRIP_KC) {
            const int64_t kc = min64(STRIP_KC, k - pc);
            pack_b(K, strip, b, b_rs, b_cs, pc, kc, j, nr);
            for (int64_t q = 0; q < nsl; q++) {
                const int64_t i = m * q / nsl, mr = m * (q + 1) / nsl - i;
                direct_tile(K, kc, alpha, a + i * a_rs + pc * a_cs, a_rs, a_cs, strip, K->nr,
                            pc == 0 ? beta : 1.0f, c, ldc, i, j, mr, nr, c_trans);
            }
        }
    }
}

/* C = A B computed as C^T = B^T A^T: swaps the sizes and operands and maps the
 * strides (new A(i, p) = B(p, i), new B(p, j) = old A(j, p)); the caller writes
 * C through its transposed strides. */
static void transpose_product(int64_t *m, int64_t *n, const float **a, const float **b,
                              int64_t *a_rs, int64_t *a_cs, int64_t *b_rs, int64_t *b_cs)
{
    int64_t t = *m;
    *m = *n;
    *n = t;
    const float *tp = *a;
    *a = *b;
    *b = tp;
    t = *a_rs;
    *a_rs = *b_cs;
    *b_cs = t;
    t = *a_cs;
    *a_cs = *b_rs;
    *b_rs = t;
}

/* The whole product by the small kernel, threads over whole units (slivers
 * across columns, or strips): every element of C is computed the same way
 * whatever the thread count and whichever sliver holds its row.
 * A C of one vector's width or less whose A is stored transposed is computed
 * as C^T = B^T A^T, which fills the vectors along m (128 x 10: 10 rows of 128
 * columns rather than 128 rows of 10 in 16 lanes) with B^T's rows in place. */
static void gemm_direct(const gemm_impl *K, int64_t m, int64_t n, int64_t k, float alpha,
                        const float *a, int64_t a_rs, int64_t a_cs, const float *b, int64_t b_rs,
                        int64_t b_cs, float beta, float *c, int64_t ldc, int nt)
{
    const bool c_trans = n <= K->nr / 2 && m >= K->nr && k >= DIRECT_K && a_rs == 1;
    if (c_trans) {
        transpose_product(&m, &n, &a, &b, &a_rs, &a_cs, &b_rs, &b_cs);
    }
    const int64_t rows = k <= 2 ? K->dmr_short : K->dmr;
    const int64_t nsl = (m + rows - 1) / rows, njr = (n + K->nr - 1) / K->nr;
    /* whole rows a unit, unless too few slivers to share between the threads
     * (a transposed tile goes through a scratch of one tile) */
    const int64_t spu = c_trans || (nt > 1 && nsl < 4 * nt) ? 1 : njr;
    const int64_t units = b_cs == 1 ? nsl * ((njr + spu - 1) / spu) : njr;
    if (nt > units) nt = (int)units;
    if (nt <= 1) {
        if (b_cs == 1)
            direct_tiles(K, 0, units, nsl, spu, m, n, k, alpha, a, a_rs, a_cs, b, b_rs, beta, c,
                         ldc, c_trans);
        else
            direct_strips(K, 0, units, nsl, m, n, k, alpha, a, a_rs, a_cs, b, b_rs, b_cs, beta, c,
                          ldc, c_trans);
        return;
    }
    /* units taken as threads come free (see sgemv) */
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
#endif
    for (int64_t u = 0; u < units; u++) {
        if (b_cs == 1)
            direct_tiles(K, u, u + 1, nsl, spu, m, n, k, alpha, a, a_rs, a_cs, b, b_rs, beta, c,
                         ldc, c_trans);
        else
            direct_strips(K, u, u + 1, nsl, m, n, k, alpha, a, a_rs, a_cs, b, b_rs, b_cs, beta, c,
                          ldc, c_trans);
    }
}

/* Whether the in-place path suits a product (an ISA with small kernels). It
 * streams all of B once a sliver of rows (or, when B's rows are not
 * contiguous, all of A once a strip of columns), so that operand must stay in
 * L2; then it beats packing, which costs a copy of both operands and tile
 * edges (measured on the Xeon: 128 x 256 x 784 at 174 against 146 GFLOP/s,
 * 256^3 177 against 156; with a B of 1 MiB or more, 512^3 or 64 x 588 x 800,
 * it lost by 10-35%; with A stored transposed it needs a smaller B). Small
 * products and short k always take it. */
static bool direct_suits(int64_t m, int64_t n, int64_t k, int64_t a_cs, int64_t b_cs, double work)
{
    if (work <= DIRECT_WORK || k <= DIRECT_K) return true;
    if (b_cs != 1) return (double)m * (double)k <= DIRECT_STREAM_ANY;
    const double bsize = (double)k * (double)n;
    return bsize <= DIRECT_STREAM_ANY / 8 || (a_cs == 1 && bsize <= DIRECT_STREAM_ROWS);
}

/* ---- rank-1 products ------------------------------------------------------- */

#define GER_ROWS 64 /* rows a block */

typedef struct ger_args {
    const gemm_impl *K;
    int64_t m, n;
    const float *a;
    int64_t a_rs;
    const float *b;
    float *c;
    int64_t ldc;
    float alpha, beta;
} ger_args;

/* Row blocks [q0, q1) of C = alpha a b + beta C, for cpu_run_parts. */
static void ger_blocks(void *arg, int64_t q0, int64_t q1)
{
    const ger_args *g = arg;
    for (int64_t q = q0; q < q1; q++) {
        const int64_t r = q * GER_ROWS;
        g->K->ger(min64(GER_ROWS, g->m - r), g->n, g->a + r * g->a_rs, g->a_rs, g->b,
                  g->c + r * g->ldc, g->ldc, g->alpha, g->beta);
    }
}

/* ---- entry point ----------------------------------------------------------- */

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
    const gemm_impl *K = &gemm_impls[cpu_isa()];
    const double work = (double)m * (double)n * (double)k;
    const int nt_direct = work >= DIRECT_PAR_MIN ? cpu_threads() : 1;
    if (n == 1) { /* C column = A . b column */
        sgemv(K, m, k, alpha, a, a_rs, a_cs, b, b_rs, beta, c, ldc, nt_direct);
        return;
    }
    if (m == 1) { /* C row = a row . B, i.e. B^T . a */
        sgemv(K, n, k, alpha, b, b_cs, b_rs, a, a_cs, beta, c, 1, nt_direct);
        return;
    }
    if (k == 1 && K->ger && b_cs == 1) {
        /* rows split at fixed blocks: a row's values never depend on the team */
        ger_args g = {K, m, n, a, a_rs, b, c, ldc, alpha, beta};
        cpu_run_parts(nt_direct, (m + GER_ROWS - 1) / GER_ROWS, ger_blocks, &g);
        return;
    }
    if (K->small && direct_suits(m, n, k, a_cs, b_cs, work)) {
        gemm_direct(K, m, n, k, alpha, a, a_rs, a_cs, b, b_rs, b_cs, beta, c, ldc, nt_direct);
        return;
    }
    const int nt = work >= GEMM_PAR_MIN ? cpu_threads() : 1;
    /* The portable kernel's tiles pad m to a multiple of mr and n to one of nr.
     * When few columns fill a wide tile badly (128 x 10: 31%) while the rows
     * would fill it well, compute C^T = B^T A^T instead: swap the operands'
     * roles and store tiles transposed. (The small kernels pad only to a
     * vector's width, and A is read in place for a C that narrow.) */
    bool c_trans = false;
    if (!K->small && n < K->nr && m > n) {
        const double fill = (double)m / (double)((m + K->mr - 1) / K->mr * K->mr) *
                            (double)n / (double)K->nr;
        const double fill_t = (double)n / (double)((n + K->mr - 1) / K->mr * K->mr) *
                              (double)m / (double)((m + K->nr - 1) / K->nr * K->nr);
        if (fill_t > 1.25 * fill) {
            c_trans = true;
            transpose_product(&m, &n, &a, &b, &a_rs, &a_cs, &b_rs, &b_cs);
        }
    }
    /* With one strip of columns each A sliver serves one tile: the small kernel
     * reads A in place rather than packing it for a single use. */
    const bool a_inplace = K->small && n <= K->nr;
    /* k in equal blocks of at most 1.5 kc: 784 as 2 x 392, not 384 + 384 + 16 */
    int64_t nkb = (k + K->kc / 2) / K->kc;
    if (nkb < 1) nkb = 1;
    const int64_t kc_max = min64(k, (k + nkb - 1) / nkb);
    const int64_t mpad = (min64(m, K->mc) + K->mr - 1) / K->mr * K->mr;
    const int64_t npad = (min64(n, K->nc) + K->nr - 1) / K->nr * K->nr;
    /* with fewer than 2 slivers of rows per thread the threads share one A block
     * of all rows (gemm_team) */
    const int64_t mall = (m + K->mr - 1) / K->mr * K->mr;
    const int64_t pa_rows = mall < 2 * K->mr * nt && mall > mpad ? mall : mpad;
    /* every block starts on a 64-byte boundary */
    const int64_t na = a_inplace ? 0 : (pa_rows * kc_max * K->a_rep + 15) / 16 * 16;
    const int64_t nb = (npad * kc_max + 15) / 16 * 16;
    pack_buf *buf = pack_take((size_t)((nb + na) * nt));
    if (!buf) {
        sgemm_plain(m, n, k, alpha, a, a_rs, a_cs, b, b_rs, b_cs, beta, c, ldc);
        return;
    }
    const gemm_plan plan = {K,   m,      n,    k,       alpha,     beta,   a,         a_rs,
                            a_cs, b,     b_rs, b_cs,    c,         ldc,    c_trans,   a_inplace,
                            kc_max, buf->data, buf->data + nb * nt, na, nb};
#ifdef _OPENMP
    /* Inside another team (a caller's parallel loop) the worksharing loops must
     * bind to a team of our own, even a team of one. */
    if (nt > 1 || omp_in_parallel()) {
#pragma omp parallel num_threads(nt)
        gemm_team(&plan);
    } else
#endif
    {
        gemm_team(&plan);
    }
    pack_give(buf);
}

/* ---- the backend op on [B, M, K] x [B, K, N] views ------------------------- */

ag_status cpu_gemm(void *ctx, float alpha, float beta, const ag_view *c, const ag_view *a,
                   const ag_view *b)
{
    (void)ctx;
    ag_mat3 ma, mb, mc;
    ag_status s = ag_gemm_check("cpu", c, a, b, &mc, &ma, &mb);
    if (s != AG_OK) return s;
    const int64_t nbatch = mc.nb, m = mc.rows, n = mc.cols, k = ma.cols;
    const int64_t ldc = m > 1 ? mc.rs : n;
    const float *pa = cpu_f32(a), *pb = cpu_f32(b);
    float *pc = cpu_f32(c);
    if (nbatch == 0 || m == 0 || n == 0) return AG_OK;

    const double work = (double)m * (double)n * (double)k;
    /* a batch of products too small to thread themselves: one thread a product */
    int nt = nbatch > 1 && work < DIRECT_PAR_MIN && work * (double)nbatch >= GEMM_PAR_MIN
                 ? cpu_threads() : 1;
    if (nt > nbatch) nt = (int)nbatch;
    if (nt <= 1) {
        for (int64_t i = 0; i < nbatch; i++)
            cpu_sgemm(m, n, k, alpha, pa + i * ma.bs, ma.rs, ma.cs, pb + i * mb.bs, mb.rs, mb.cs,
                      beta, pc + i * mc.bs, ldc);
        return AG_OK;
    }
    /* small matrices in a large batch: one thread per matrix instead, taken as
     * threads come free (each is computed the same way by any thread) */
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
#endif
    for (int64_t i = 0; i < nbatch; i++)
        cpu_sgemm(m, n, k, alpha, pa + i * ma.bs, ma.rs, ma.cs, pb + i * mb.bs, mb.rs, mb.cs, beta,
                  pc + i * mc.bs, ldc);
    return AG_OK;
}
