/* 2-D convolution (NCHW) as im2col + GEMM.
 *
 * The column matrix of a group of channels has a row per (input channel,
 * kernel row, kernel column) and a column per output pixel. The columns of a
 * chunk of images sit side by side ([C/g * KH * KW, images * OH * OW]), so the
 * products stay wide when the images are small (a 14x14 output alone is only
 * 196 columns) and the weights are packed once a chunk rather than once an
 * image. In stride-1 layouts whose output rows are as wide as the input's
 * ("same" padding) a column row is the input plane shifted and masked, so
 * im2col reads it in place in one run.
 *
 * The products: where cpu_isa() has an AVX micro-kernel and the layout is such
 * a flat one, they call the kernel directly - the weights packed once a call,
 * the column rows (or the output gradients) written straight into the
 * kernel's panel layout, with no column matrix in between. Otherwise they go
 * through cpu_sgemm with a column matrix.
 *
 * Threading:
 *  - forward and input gradient: chunks are independent (each writes its own
 *    images). With enough of them the threads take chunks as they finish (a
 *    descheduled thread on a shared machine then delays only its own chunk),
 *    each with its own scratch and serial products; with few (a batch of one)
 *    the chunks run in turn and the product and the copies thread themselves.
 *  - weight gradient: the rows of the column matrix (the columns of dW) are cut
 *    into blocks, each built and accumulated over the images by one thread, so
 *    there are no partial sums; rows too few to give every thread whole tiles
 *    (the packed path) split the images instead, into parts summed apart and
 *    then added in part order.
 * Chunk, block and part sizes depend on the shapes and AG_NUM_THREADS (or the
 * core count) only, never on how many threads OpenMP hands out, so results
 * are the same from call to call. Scratch memory is kept between calls: a
 * fresh large malloc is a fresh mmap, whose page faults cost more than a
 * small layer. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "cpu_winograd.h"
#include "gemm_kernels.h"

#ifdef __SSE2__
#include <emmintrin.h> /* part of the x86-64 baseline: no ISA flags needed */
#endif


/* Threads share the batch only while their column scratch stays under this
 * (unless one image's share alone is larger). */
#define SCRATCH_CAP ((int64_t)256 << 20)
/* A chunk has images enough for a product this wide (narrower ones lose to
 * packing and tile edges: a 64 x 800 x 196 product runs at 85% of the speed
 * of 64 x 800 x 588), unless its scratch would pass COL_CAP floats (more than
 * L2: the columns go out to memory and back). Wider chunks gain nothing. */
#define WIDE_N 512
#define COL_CAP ((int64_t)1 << 20)
/* Most floats of scratch a thread's chunk of one image may take on the packed
 * path (panel and product: about ohw * (256 + the output channels)). */
#define PACKED_CAP ((int64_t)1 << 22)
/* Chunks a thread gets at least, when the batch has enough images. */
#define CHUNKS_PER_THREAD 4
/* Copies below this many floats stay on the calling thread. */
#define PAR_COPY_MIN ((int64_t)1 << 15)
/* Blocks of dW columns are multiples of this where possible (the micro-kernels'
 * tile widths divide it). */
#define DW_ALIGN 32
/* Dense loops run in blocks of this many: gcc -O2's cheap vectorizer needs a
 * constant trip count. */
#define BLK 8

/* The dense loops below vectorize as functions of their own (restrict
 * parameters); inlined into the loops that call them, gcc loses that. */
#if defined(__GNUC__)
#define DENSE __attribute__((noinline))
#else
#define DENSE
#endif

typedef struct kpos kpos;
typedef struct packed_a packed_a;

typedef struct conv_dims {
    int64_t n, c, h, w, oc, kh, kw, oh, ow;
    int64_t g, cg, ocg;
    int64_t kk;  /* rows of a column matrix: cg * kh * kw */
    int64_t hw, ohw;
    int64_t sh, sw, ph, pw, dh, dw;
    bool direct; /* 1x1, stride 1, no padding: the input is its own column matrix */
    bool flat;   /* unit column stride and sh * w == ow: an input row shifted by a
                    kernel offset lands on an output row, so a whole column row is
                    one contiguous copy (the "same"-padded stride-1 case) */
    const kpos *kp; /* kpos_table(): each kernel offset's valid outputs */
    const packed_a *pa; /* the weights packed for the micro-kernel, or NULL */
} conv_dims;


static ag_status shape_error(const char *op, const char *why, const ag_view *x, const ag_view *w,
                             const ag_view *y)
{
    char sx[96], sw[96], sy[96];
    ag_view_shape_str(x, sx, sizeof sx);
    ag_view_shape_str(w, sw, sizeof sw);
    ag_view_shape_str(y, sy, sizeof sy);
    return ag_set_error(AG_ERR_SHAPE, "%s: %s (input %s, weight %s, output %s)", op, why, sx, sw,
                        sy);
}

/* Checks x [N, C, H, W], w [OC, C/g, KH, KW], y [N, OC, OH, OW] and the parameters. */
static ag_status conv_setup(const char *op, const ag_conv2d_params *p, const ag_view *x,
                            const ag_view *w, const ag_view *y, conv_dims *d)
{
    if (!p) return ag_set_error(AG_ERR_ARG, "%s: NULL parameters", op);
    if (x->dtype != AG_F32 || w->dtype != AG_F32 || y->dtype != AG_F32)
        return ag_set_error(AG_ERR_DTYPE, "%s: expected f32 input, weight and output", op);
    if (p->stride[0] < 1 || p->stride[1] < 1 || p->dilation[0] < 1 || p->dilation[1] < 1 ||
        p->padding[0] < 0 || p->padding[1] < 0 || p->groups < 1)
        return ag_set_error(AG_ERR_ARG,
                            "%s: bad parameters stride (%d, %d), padding (%d, %d), dilation "
                            "(%d, %d), groups %d",
                            op, p->stride[0], p->stride[1], p->padding[0], p->padding[1],
                            p->dilation[0], p->dilation[1], p->groups);
    if (x->ndim != 4 || w->ndim != 4 || y->ndim != 4)
        return shape_error(op, "expected 4-D input, weight and output", x, w, y);
    *d = (conv_dims){
        .n = x->shape[0], .c = x->shape[1], .h = x->shape[2], .w = x->shape[3],
        .oc = w->shape[0], .kh = w->shape[2], .kw = w->shape[3], .g = p->groups,
        .sh = p->stride[0], .sw = p->stride[1], .ph = p->padding[0], .pw = p->padding[1],
        .dh = p->dilation[0], .dw = p->dilation[1],
    };
    if (d->c % d->g || d->oc % d->g || w->shape[1] != d->c / d->g)
        return shape_error(op, "channels do not match the weight and groups", x, w, y);
    int64_t eh = d->h + 2 * d->ph - d->dh * (d->kh - 1) - 1;
    int64_t ew = d->w + 2 * d->pw - d->dw * (d->kw - 1) - 1;
    if (d->kh < 1 || d->kw < 1 || eh < 0 || ew < 0)
        return shape_error(op, "kernel larger than the padded input", x, w, y);
    d->oh = eh / d->sh + 1;
    d->ow = ew / d->sw + 1;
    if (y->shape[0] != d->n || y->shape[1] != d->oc || y->shape[2] != d->oh ||
        y->shape[3] != d->ow) {
        char why[128];
        snprintf(why, sizeof why, "output must be [%lld, %lld, %lld, %lld]", (long long)d->n,
                 (long long)d->oc, (long long)d->oh, (long long)d->ow);
        return shape_error(op, why, x, w, y);
    }
    d->cg = d->c / d->g;
    d->ocg = d->oc / d->g;
    d->kk = d->cg * d->kh * d->kw;
    d->hw = d->h * d->w;
    d->ohw = d->oh * d->ow;
    d->direct = d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 && d->pw == 0;
    d->flat = d->sw == 1 && d->sh * d->w == d->ow;
    return AG_OK;
}

/* Outputs [lo, hi) of out_len whose input o * stride + off lies inside [0, in_len). */
static void valid_range(int64_t off, int64_t stride, int64_t in_len, int64_t out_len, int64_t *lo,
                        int64_t *hi)
{
    int64_t l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t lim = in_len - off;
    int64_t h = lim <= 0 ? 0 : (lim + stride - 1) / stride;
    if (h > out_len) h = out_len;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* ---- small dense loops ------------------------------------------------------ */

static void zero_run(float *p, int64_t n)
{
    if (n >= 64) {
        memset(p, 0, (size_t)n * sizeof *p);
        return;
    }
    for (int64_t i = 0; i < n; i++) p[i] = 0.0f;
}

DENSE static void copy_run(float *restrict d, const float *restrict s, int64_t n)
{
    if (n >= 64) {
        memcpy(d, s, (size_t)n * sizeof *d);
        return;
    }
    int64_t i = 0;
    for (; i + BLK <= n; i += BLK)
        for (int j = 0; j < BLK; j++) d[i + j] = s[i + j];
    for (; i < n; i++) d[i] = s[i];
}

DENSE static void add_run(float *restrict d, const float *restrict s, int64_t n)
{
    int64_t i = 0;
    for (; i + BLK <= n; i += BLK)
        for (int j = 0; j < BLK; j++) d[i + j] += s[i + j];
    for (; i < n; i++) d[i] += s[i];
}

/* d = s where keep, else 0 (the loads are unconditional so that the loop
 * vectorizes; s must be readable throughout). */
DENSE static void copy_masked(float *restrict d, const float *restrict s, const int32_t *restrict keep,
                        int64_t n)
{
    int64_t i = 0;
    for (; i + BLK <= n; i += BLK)
        for (int j = 0; j < BLK; j++) {
            const float v = s[i + j];
            d[i + j] = keep[i + j] ? v : 0.0f;
        }
    for (; i < n; i++) {
        const float v = s[i];
        d[i] = keep[i] ? v : 0.0f;
    }
}

/* d += s where keep, d += 0 elsewhere: exact for sums that started from +0.0
 * (they never hold -0.0, the one value that adding +0.0 changes). Adding -0.0
 * instead would be exact anywhere, but gcc turns that into a branch. */
DENSE static void add_masked(float *restrict d, const float *restrict s,
                             const int32_t *restrict keep, int64_t n)
{
    int64_t i = 0;
    for (; i + BLK <= n; i += BLK)
        for (int j = 0; j < BLK; j++) {
            const float v = s[i + j];
            d[i + j] += keep[i + j] ? v : 0.0f;
        }
    for (; i < n; i++) {
        const float v = s[i];
        d[i] += keep[i] ? v : 0.0f;
    }
}

/* ---- im2col and col2im -------------------------------------------------------- */

/* One kernel offset (ki, kj): its input offsets, and the output rows
 * [r_lo, r_hi) and columns [lo, hi) that read inside the input (the rest read
 * padding). In flat layouts output q reads input q + shift, the outputs
 * [qa, qb) read inside the plane (the others may read a neighbouring plane or
 * past the tensor), keep (ohw flags) marks the outputs whose column is inside
 * or is NULL when all are, and valid (ohw flags, unless too large) those whose
 * row and column are. */
struct kpos {
    int64_t roff, coff, r_lo, r_hi, lo, hi;
    int64_t shift, qa, qb;
    const int32_t *keep, *valid;
};

/* Largest valid-flags table (kh * kw * ohw entries) kpos_table builds; past
 * it the products go through cpu_sgemm. */
#define VALID_MAX ((int64_t)1 << 21)

/* The kernel offsets of d and the flags of the flat layout: one allocation,
 * freed by the caller; NULL when out of memory. */
static kpos *kpos_table(const conv_dims *d)
{
    const int64_t nk = d->kh * d->kw;
    const bool with_valid = d->flat && nk * d->ohw <= VALID_MAX;
    const int64_t nflags = d->flat ? d->kw * d->ohw + (with_valid ? nk * d->ohw : 0) : 0;
    kpos *kp = malloc((size_t)nk * sizeof *kp + (size_t)nflags * sizeof(int32_t));
    if (!kp) return NULL;
    int32_t *flags = (int32_t *)(kp + nk), *valid = flags + d->kw * d->ohw;
    for (int64_t kj = 0; kj < d->kw; kj++) {
        int64_t lo, hi;
        valid_range(kj * d->dw - d->pw, d->sw, d->w, d->ow, &lo, &hi);
        if (!d->flat || (lo == 0 && hi == d->ow)) continue;
        int32_t *f = flags + kj * d->ohw;
        for (int64_t q = 0; q < d->ohw; q++) f[q] = q % d->ow >= lo && q % d->ow < hi;
    }
    for (int64_t ki = 0; ki < d->kh; ki++)
        for (int64_t kj = 0; kj < d->kw; kj++) {
            kpos *k = &kp[ki * d->kw + kj];
            k->roff = ki * d->dh - d->ph;
            k->coff = kj * d->dw - d->pw;
            valid_range(k->roff, d->sh, d->h, d->oh, &k->r_lo, &k->r_hi);
            valid_range(k->coff, d->sw, d->w, d->ow, &k->lo, &k->hi);
            if (k->lo >= k->hi) k->r_hi = k->r_lo; /* no column inside: no row either */
            k->keep = d->flat && (k->lo > 0 || k->hi < d->ow) ? flags + kj * d->ohw : NULL;
            k->shift = k->roff * d->w + k->coff;
            k->qa = k->r_lo < k->r_hi ? k->r_lo * d->ow + k->lo : 0;
            k->qb = k->r_lo < k->r_hi ? (k->r_hi - 1) * d->ow + k->hi : 0;
            k->valid = NULL;
            if (!with_valid) continue;
            int32_t *v = valid + (ki * d->kw + kj) * d->ohw;
            for (int64_t q = 0; q < d->ohw; q++) {
                int64_t oh = q / d->ow, o = q % d->ow;
                v[q] = oh >= k->r_lo && oh < k->r_hi && o >= k->lo && o < k->hi;
            }
            k->valid = v;
        }
    return kp;
}

/* Rows [r0, r1) of one image's column matrix, from its group of channels
 * x [cg, h, w]: row r at col + (r - r0) * ld, ohw floats. */
static void im2col_rows(const conv_dims *d, const float *x, float *col, int64_t ld, int64_t r0,
                        int64_t r1)
{
    const int64_t ow = d->ow, nk = d->kh * d->kw;
    /* row r: channel ch, kernel offset kp[ki] (no divisions per row: tiny
     * images have many short rows) */
    int64_t ch = r0 / nk, ki = r0 % nk;
    for (int64_t r = r0; r < r1; r++, ki = ki + 1 == nk ? (ch++, 0) : ki + 1) {
        const kpos *k = &d->kp[ki];
        const float *xc = x + ch * d->hw;
        float *c = col + (r - r0) * ld;
        zero_run(c, k->r_lo * ow);
        zero_run(c + k->r_hi * ow, (d->oh - k->r_hi) * ow);
        if (k->r_lo >= k->r_hi) continue;
        if (d->flat) {
            /* output q = oh * ow + o reads input q + shift: one copy from the first
             * valid pixel to the last, with the padding columns masked out */
            const int64_t shift = k->roff * d->w + k->coff;
            const int64_t q0 = k->r_lo * ow + k->lo, q1 = (k->r_hi - 1) * ow + k->hi;
            if (k->keep) {
                for (int64_t q = k->r_lo * ow; q < q0; q++) c[q] = 0.0f;
                copy_masked(c + q0, xc + q0 + shift, k->keep + q0, q1 - q0);
                for (int64_t q = q1; q < k->r_hi * ow; q++) c[q] = 0.0f;
            } else {
                copy_run(c + q0, xc + q0 + shift, q1 - q0);
            }
            continue;
        }
        for (int64_t oh = k->r_lo; oh < k->r_hi; oh++) {
            float *co = c + oh * ow;
            const float *xr = xc + (oh * d->sh + k->roff) * d->w + k->coff;
            for (int64_t o = 0; o < k->lo; o++) co[o] = 0.0f;
            if (d->sw == 1 && k->hi - k->lo >= 2 * BLK) /* short rows: no call */
                copy_run(co + k->lo, xr + k->lo, k->hi - k->lo);
            else
                for (int64_t o = k->lo; o < k->hi; o++) co[o] = xr[o * d->sw];
            for (int64_t o = k->hi; o < ow; o++) co[o] = 0.0f;
        }
    }
}

/* Channels [c0, c1) of one image's x [cg, h, w] += the rows of its column
 * matrix (leading dimension ld) scattered back to their inputs, each input's
 * terms in row order. The planes must hold +0.0 or sums that started from it
 * (add_masked). */
static void col2im_channels(const conv_dims *d, const float *col, int64_t ld, float *x, int64_t c0,
                            int64_t c1)
{
    const int64_t ow = d->ow, nk = d->kh * d->kw;
    for (int64_t r = c0 * nk; r < c1 * nk; r++) {
        const kpos *k = &d->kp[r - r / nk * nk];
        const float *c = col + r * ld;
        float *xc = x + r / nk * d->hw;
        if (k->r_lo >= k->r_hi) continue;
        if (d->flat) {
            const int64_t shift = k->roff * d->w + k->coff;
            const int64_t q0 = k->r_lo * ow + k->lo, q1 = (k->r_hi - 1) * ow + k->hi;
            if (k->keep)
                add_masked(xc + q0 + shift, c + q0, k->keep + q0, q1 - q0);
            else
                add_run(xc + q0 + shift, c + q0, q1 - q0);
            continue;
        }
        for (int64_t oh = k->r_lo; oh < k->r_hi; oh++) {
            const float *co = c + oh * ow;
            float *xr = xc + (oh * d->sh + k->roff) * d->w + k->coff;
            if (d->sw == 1 && k->hi - k->lo >= 2 * BLK)
                add_run(xr + k->lo, co + k->lo, k->hi - k->lo);
            else
                for (int64_t o = k->lo; o < k->hi; o++) xr[o * d->sw] += co[o];
        }
    }
}

/* ---- scratch ------------------------------------------------------------------ */

/* One buffer is cached between calls; a concurrent caller that finds the cache
 * empty allocates its own. */
typedef struct scratch_buf {
    size_t floats;
    _Alignas(64) float data[];
} scratch_buf;

static _Atomic(scratch_buf *) scratch_cache;

static scratch_buf *scratch_take(int64_t floats)
{
    scratch_buf *s = atomic_exchange(&scratch_cache, NULL);
    if (s && s->floats >= (size_t)floats) return s;
    free(s);
    void *mem = NULL;
    if (posix_memalign(&mem, 64, sizeof(scratch_buf) + (size_t)floats * sizeof(float)) != 0)
        return NULL;
    s = mem;
    s->floats = (size_t)floats;
    return s;
}

static void scratch_give(scratch_buf *s)
{
    if (!s) return;
    /* keep the larger of this one and whatever another caller returned meanwhile */
    scratch_buf *old = atomic_exchange(&scratch_cache, s);
    if (old && old->floats > s->floats) old = atomic_exchange(&scratch_cache, old);
    free(old);
}

/* The Winograd paths (cpu_winograd.c) on this file's scratch: out = the
 * convolution of in with w (flip: the input gradient's, in being dy), or with
 * dw set, out = dW from in = x and w = dy. */
static ag_status wino_run(const char *op, const conv_dims *d, const float *in, const float *w,
                          float *out, bool flip, bool dw)
{
    const int64_t ic = flip ? d->oc : d->c, oc = flip ? d->c : d->oc;
    const int nt = cpu_threads();
    scratch_buf *buf = scratch_take(dw ? cpu_wino_dw_scratch_floats(d->n, ic, oc, d->h, d->w, nt)
                                       : cpu_wino_scratch_floats(d->n, ic, oc, d->h, d->w, nt));
    if (!buf) return ag_set_error(AG_ERR_OOM, "%s: cannot allocate the Winograd scratch", op);
    if (dw) cpu_wino_conv5_dw(in, w, out, d->n, ic, oc, d->h, d->w, buf->data, nt);
    else cpu_wino_conv5(in, w, out, d->n, ic, oc, d->h, d->w, flip, buf->data, nt);
    scratch_give(buf);
    return AG_OK;
}

/* Rounds floats up to whole cache lines, so per-thread blocks do not share one. */
static int64_t lines(int64_t floats) { return (floats + 15) / 16 * 16; }

/* ---- products on packed panels ---------------------------------------------------- */

/* Where the AVX kernels can be called directly, the products skip cpu_sgemm.
 * Forward and input gradient: the weights are packed once a call, and each
 * chunk's other operand is written straight into the micro-kernel's panel
 * layout (B slivers of nr columns, k-major), by im2col for the forward and by
 * a copy of the output gradients for the input gradient. Weight gradient:
 * each image's dy and column rows are packed by 4 x 4 transposes. That saves
 * writing a column matrix, reading it back and packing it again (the tutorial
 * CNN's second layer: forward 32 -> 24 ms a batch of 128 on one core). Other
 * ISAs use cpu_sgemm. */
typedef struct ukernel {
    int64_t mr, nr;
    cpu_gemm_ukernel fn;
} ukernel;

static ukernel conv_ukernel(void)
{
#if defined(__x86_64__)
    switch (cpu_isa()) {
    case CPU_ISA_AVX512: return (ukernel){CPU_GEMM_AVX512_MR, CPU_GEMM_AVX512_NR,
                                          cpu_sgemm_ukernel_avx512};
    case CPU_ISA_AVX2: return (ukernel){CPU_GEMM_AVX2_MR, CPU_GEMM_AVX2_NR, cpu_sgemm_ukernel_avx2};
    default: break;
    }
#endif
    return (ukernel){0, 0, NULL};
}

/* Whether the packed path suits a product whose packed A has m rows (the
 * micro-kernel pads them to mr) and B n columns: flat layouts only (im2col
 * reads the input in place through the valid flags, which kpos_table builds
 * for them), and tiles at least 40% full (a depthwise layer's single output
 * channel would waste 11 of 12 rows; cpu_sgemm has a matrix-vector path). */
static bool packed_suits(const conv_dims *d, ukernel u, int64_t m, int64_t n)
{
    if (!u.fn || !d->flat || d->kh * d->kw * d->ohw > VALID_MAX || m <= 0 || n <= 0) return false;
    const double fm = (double)m / (double)((m + u.mr - 1) / u.mr * u.mr);
    const double fn = (double)n / (double)((n + u.nr - 1) / u.nr * u.nr);
    return fm * fn >= 0.4;
}

/* k blocks of the packed products: a B sliver of PK_KC x 32 floats fits L1 */
#define PK_KC 256

/* A [m, k] of every group packed: group g, k block b, sliver s (rows s*mr ..)
 * at data + g * group + b * mpad * kcb + s * mr * kc, kc the block's length;
 * each sliver kc groups of mr floats, rows past m zero. */
struct packed_a {
    ukernel u;
    int64_t m, k, mpad, nkb, kcb, group;
    float *data;
};

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Packs A(i, p) = a[g * a_gs + i * a_rs + p * a_cs] for every group; NULL when out of memory. */
static packed_a *pack_weights(ukernel u, int64_t groups, int64_t m, int64_t k, const float *a,
                              int64_t a_gs, int64_t a_rs, int64_t a_cs)
{
    packed_a *pa = malloc(sizeof *pa);
    if (!pa) return NULL;
    pa->u = u;
    pa->m = m;
    pa->k = k;
    pa->mpad = (m + u.mr - 1) / u.mr * u.mr;
    pa->nkb = (k + PK_KC - 1) / PK_KC;
    if (pa->nkb < 1) pa->nkb = 1;
    pa->kcb = (k + pa->nkb - 1) / pa->nkb;
    pa->group = lines(pa->mpad * pa->nkb * pa->kcb);
    void *mem = NULL;
    if (posix_memalign(&mem, 64, (size_t)(groups * pa->group + 16) * sizeof(float)) != 0) {
        free(pa);
        return NULL;
    }
    pa->data = mem;
    for (int64_t g = 0; g < groups; g++)
        for (int64_t b = 0; b < pa->nkb; b++) {
            const int64_t k0 = b * pa->kcb, kc = min64(k, k0 + pa->kcb) - k0;
            float *blk = pa->data + g * pa->group + b * pa->mpad * pa->kcb;
            for (int64_t i = 0; i < pa->mpad; i++) {
                float *d = blk + i / u.mr * u.mr * kc + i % u.mr;
                const float *src = a + g * a_gs + i * a_rs + k0 * a_cs;
                if (i >= m)
                    for (int64_t p = 0; p < kc; p++) d[p * u.mr] = 0.0f;
                else
                    for (int64_t p = 0; p < kc; p++) d[p * u.mr] = src[p * a_cs];
            }
        }
    return pa;
}

static void packed_free(packed_a *pa)
{
    if (pa) free(pa->data);
    free(pa);
}

/* Panel layout of B [kc, n]: sliver s (columns s*nr ..) at s * kc * nr, row p of
 * it at p * nr. Writes len values of row p from column j on. */
DENSE static void put_row(float *restrict panel, int64_t kc, int64_t nr, int64_t p, int64_t j,
                          const float *restrict src, int64_t len)
{
    int64_t s = j / nr, jj = j % nr;
    while (len > 0) {
        const int64_t run = min64(nr - jj, len);
        float *d = panel + s * kc * nr + p * nr + jj;
        int64_t t = 0;
        for (; t + BLK <= run; t += BLK)
            for (int i = 0; i < BLK; i++) d[t + i] = src[t + i];
        for (; t < run; t++) d[t] = src[t];
        src += run;
        len -= run;
        s++;
        jj = 0;
    }
}

/* The same with src[t] replaced by 0 where keep[t] is 0; src must be readable
 * throughout (the loads are unconditional, so that the blocks vectorize). */
DENSE static void put_masked(float *restrict panel, int64_t kc, int64_t nr, int64_t p, int64_t j,
                             const float *restrict src, const int32_t *restrict keep, int64_t len)
{
    int64_t s = j / nr, jj = j % nr;
    while (len > 0) {
        const int64_t run = min64(nr - jj, len);
        float *d = panel + s * kc * nr + p * nr + jj;
        int64_t t = 0;
        for (; t + BLK <= run; t += BLK)
            for (int i = 0; i < BLK; i++) {
                const float v = src[t + i];
                d[t + i] = keep[t + i] ? v : 0.0f;
            }
        for (; t < run; t++) {
            const float v = src[t];
            d[t] = keep[t] ? v : 0.0f;
        }
        src += run;
        keep += run;
        len -= run;
        s++;
        jj = 0;
    }
}

/* Outputs [q0, q0 + len) of column row r (kernel offset k) of a flat layout,
 * from its input plane x: the part that reads inside the plane masked, the
 * rest 0. Needs k->valid. */
static void flat_segment(const kpos *k, const float *x, float *dst, int64_t q0, int64_t len)
{
    const int64_t a = k->qa > q0 ? k->qa : q0, b = min64(k->qb, q0 + len);
    if (a >= b) {
        zero_run(dst, len);
        return;
    }
    zero_run(dst, a - q0);
    copy_masked(dst + (a - q0), x + a + k->shift, k->valid + a, b - a);
    zero_run(dst + (b - q0), q0 + len - b);
}

/* Row p of a panel from row r of an image's column matrix (a flat layout
 * with valid flags), at columns j .. j + ohw; the image's group of channels
 * starts at xd + xo, a tensor of xn floats. The input shifted and masked,
 * straight from the tensor where the whole shifted row lies inside it (every
 * plane but the tensor's first and last), else through row. */
static void panel_im2col(const conv_dims *d, float *panel, int64_t kc, int64_t nr, int64_t p,
                         int64_t j, const float *xd, int64_t xo, int64_t xn, int64_t r, float *row)
{
    const int64_t nk = d->kh * d->kw, xc = xo + r / nk * d->hw;
    const kpos *k = &d->kp[r % nk];
    if (xc + k->shift >= 0 && xc + k->shift + d->ohw <= xn) {
        put_masked(panel, kc, nr, p, j, xd + xc + k->shift, k->valid, d->ohw);
        return;
    }
    flat_segment(k, xd + xc, row, 0, d->ohw);
    put_row(panel, kc, nr, p, j, row, d->ohw);
}

/* C [mpad, npad] (leading dimension ldc) of group g = A B for k block b, whose
 * B panel holds n columns: beta 0 for the first block, else accumulated. */
static void packed_block(const packed_a *pa, int64_t g, int64_t b, const float *panel, int64_t n,
                         float *c, int64_t ldc)
{
    const ukernel u = pa->u;
    const int64_t k0 = b * pa->kcb, kc = min64(pa->k, k0 + pa->kcb) - k0;
    const float *ab = pa->data + g * pa->group + b * pa->mpad * pa->kcb;
    const int64_t nsl = (n + u.nr - 1) / u.nr, msl = pa->mpad / u.mr;
    for (int64_t s = 0; s < nsl; s++)
        for (int64_t i = 0; i < msl; i++)
            u.fn(kc, ab + i * u.mr * kc, panel + s * kc * u.nr, c + i * u.mr * ldc + s * u.nr, ldc,
                 1.0f, b == 0 ? 0.0f : 1.0f);
}

/* Zeroes the padding columns [n, npad) of rows [0, kc) of a panel. */
static void panel_pad(float *panel, int64_t kc, int64_t nr, int64_t n)
{
    const int64_t npad = (n + nr - 1) / nr * nr;
    if (npad == n) return;
    float *last = panel + (npad / nr - 1) * kc * nr;
    for (int64_t p = 0; p < kc; p++)
        for (int64_t j = n % nr; j < nr; j++) last[p * nr + j] = 0.0f;
}

/* ---- planning ------------------------------------------------------------------ */

/* How a batch is cut: nb images a chunk (the last may have fewer), and whether
 * threads take whole chunks (outer) or thread each chunk's work (inner). */
typedef struct chunk_plan {
    int64_t nb, nchunks;
    int nt;      /* threads asked for */
    bool outer;  /* threads take chunks; otherwise chunks in turn */
    bool packed; /* chunks use d->pa (threads over chunks or a single thread) */
} chunk_plan;

/* per_image: scratch floats an image needs. */
static chunk_plan plan_chunks(const conv_dims *d, int64_t per_image)
{
    chunk_plan cp = {.nt = cpu_plan_threads()};
    int64_t nb = d->ohw > 0 ? (WIDE_N + d->ohw - 1) / d->ohw : 1;
    if (nb > 1 && nb * per_image > COL_CAP) nb = COL_CAP / per_image;
    if (nb < 1 || d->direct) nb = 1; /* direct: the input is the columns, an image at a time */
    /* enough chunks to go round the threads a few times, when the batch allows */
    int64_t want = (int64_t)cp.nt * CHUNKS_PER_THREAD;
    if (want > d->n) want = d->n;
    int64_t nc = (d->n + nb - 1) / nb;
    if (nc < want) nc = want;
    if (nc < 1) nc = 1;
    cp.nb = (d->n + nc - 1) / nc;
    if (cp.nb < 1) cp.nb = 1;
    cp.nchunks = (d->n + cp.nb - 1) / cp.nb;
    cp.outer = cp.nt > 1 && cp.nchunks >= cp.nt;
    return cp;
}

/* Floats of scratch a thread needs for one chunk of nb images. Through
 * cpu_sgemm: the column matrix (unless the input is its own) and, for more
 * than one image, the product's or the gathered gradient's ocg rows. Packed:
 * a B panel for one k block, C with padded rows and columns, an im2col row. */
static int64_t chunk_floats(const conv_dims *d, const chunk_plan *cp, int64_t nb)
{
    if (cp->packed) {
        const packed_a *pa = d->pa;
        const int64_t npad = (nb * d->ohw + pa->u.nr - 1) / pa->u.nr * pa->u.nr;
        return lines(npad * pa->kcb) + lines(pa->mpad * npad) + lines(d->ohw);
    }
    int64_t f = d->direct ? 0 : d->kk * nb * d->ohw;
    if (nb > 1) f += d->ocg * nb * d->ohw;
    return lines(f);
}

/* Scratch for a plan: a chunk's worth for each thread when outer, else for one.
 * Too much for the cap: one image a chunk, then inner threading; an allocation
 * that fails: one image with inner threading before giving up. */
static ag_status plan_scratch(const char *op, const conv_dims *d, chunk_plan *cp,
                              scratch_buf **buf, int64_t *per_thread)
{
    const int64_t cap = SCRATCH_CAP / (int64_t)sizeof(float);
    /* the packed path holds a chunk's whole panel: large images go through
     * cpu_sgemm, which blocks its own */
    if (cp->packed && chunk_floats(d, cp, 1) > PACKED_CAP) cp->packed = false;
    if (cp->outer && cp->nt * chunk_floats(d, cp, cp->nb) > cap) cp->nb = 1;
    if (cp->outer && cp->nt * chunk_floats(d, cp, cp->nb) > cap) cp->outer = false;
    if (cp->packed && !cp->outer && cp->nt > 1) cp->packed = false;
    for (;;) {
        cp->nchunks = (d->n + cp->nb - 1) / cp->nb;
        *per_thread = chunk_floats(d, cp, cp->nb);
        int64_t total = *per_thread * (cp->outer ? cp->nt : 1);
        *buf = NULL;
        if (total == 0) return AG_OK;
        if ((*buf = scratch_take(total))) return AG_OK;
        if (!cp->outer && cp->nb == 1)
            return ag_set_error(AG_ERR_OOM, "%s: cannot allocate %lld bytes of column scratch", op,
                                (long long)(total * (int64_t)sizeof(float)));
        cp->outer = false;
        cp->packed = cp->packed && cp->nt == 1;
        cp->nb = 1;
    }
}

/* ---- forward ----------------------------------------------------------------- */

/* Images [n0, n0 + nb) of y. par: thread the copies and the product (the
 * caller is not threading over chunks). */
static void forward_chunk(const conv_dims *d, const float *xd, const float *wd, float *yd,
                          int64_t n0, int64_t nb, float *scratch, bool par)
{
    (void)par; /* unused without OpenMP */
    const int64_t ohw = d->ohw, ld = nb * ohw;
    float *col = scratch, *tmp = scratch + (d->direct ? 0 : d->kk * ld);
    for (int64_t g = 0; g < d->g; g++) {
        const float *xg = xd + (n0 * d->c + g * d->cg) * d->hw;
        float *yg = yd + (n0 * d->oc + g * d->ocg) * ohw;
        if (d->kk == 0) {
            for (int64_t i = 0; i < nb; i++)
                memset(yg + i * d->oc * ohw, 0, (size_t)(d->ocg * ohw) * sizeof *yg);
            continue;
        }
        const float *b = xg; /* direct: one image, its own columns */
        if (!d->direct) {
            /* in blocks of 64 rows of an image */
            const int64_t rb = (d->kk + 63) / 64, blocks = nb * rb;
            OMP(omp parallel for schedule(static) num_threads(cpu_threads())
                if(par && nb * d->kk * ohw >= PAR_COPY_MIN))
            for (int64_t t = 0; t < blocks; t++) {
                int64_t i = t / rb, r0 = t % rb * 64, r1 = min64(d->kk, r0 + 64);
                im2col_rows(d, xg + i * d->c * d->hw, col + r0 * ld + i * ohw, ld, r0, r1);
            }
            b = col;
        }
        /* y_g = W_g col: straight into y for one image, else side by side into
         * tmp and then each image's rows to its place */
        float *out = nb == 1 ? yg : tmp;
        cpu_sgemm(d->ocg, ld, d->kk, 1.0f, wd + g * d->ocg * d->kk, d->kk, 1, b, ld, 1, 0.0f, out,
                  ld);
        if (nb == 1) continue;
        const int64_t rows = nb * d->ocg;
        OMP(omp parallel for schedule(static) num_threads(cpu_threads())
            if(par && rows * ohw >= PAR_COPY_MIN))
        for (int64_t t = 0; t < rows; t++) {
            int64_t i = t / d->ocg, o = t % d->ocg;
            memcpy(yg + i * d->oc * ohw + o * ohw, tmp + o * ld + i * ohw,
                   (size_t)ohw * sizeof *yg);
        }
    }
}

/* ---- input gradient -------------------------------------------------------------- */

/* Images [n0, n0 + nb) of dx: columns = W_g^T dy_g, then each column back to
 * its input. */
static void backward_input_chunk(const conv_dims *d, const float *dyd, const float *wd, float *dxd,
                                 int64_t n0, int64_t nb, float *scratch, bool par)
{
    (void)par;
    const int64_t ohw = d->ohw, ld = nb * ohw;
    float *col = scratch, *dyc = scratch + (d->direct ? 0 : d->kk * ld);
    for (int64_t g = 0; g < d->g; g++) {
        float *dxg = dxd + (n0 * d->c + g * d->cg) * d->hw;
        const float *dyg = dyd + (n0 * d->oc + g * d->ocg) * ohw;
        if (d->ocg == 0) {
            for (int64_t i = 0; i < nb; i++)
                memset(dxg + i * d->c * d->hw, 0, (size_t)(d->cg * d->hw) * sizeof *dxg);
            continue;
        }
        const float *b = dyg;
        if (nb > 1) { /* the images' gradients side by side */
            const int64_t rows = nb * d->ocg;
            OMP(omp parallel for schedule(static) num_threads(cpu_threads())
                if(par && rows * ohw >= PAR_COPY_MIN))
            for (int64_t t = 0; t < rows; t++) {
                int64_t i = t / d->ocg, o = t % d->ocg;
                memcpy(dyc + o * ld + i * ohw, dyg + i * d->oc * ohw + o * ohw,
                       (size_t)ohw * sizeof *dyc);
            }
            b = dyc;
        }
        if (d->direct) { /* nb == 1: the columns are dx itself */
            cpu_sgemm(d->kk, ohw, d->ocg, 1.0f, wd + g * d->ocg * d->kk, 1, d->kk, b, ohw, 1, 0.0f,
                      dxg, ohw);
            continue;
        }
        cpu_sgemm(d->kk, ld, d->ocg, 1.0f, wd + g * d->ocg * d->kk, 1, d->kk, b, ld, 1, 0.0f, col,
                  ld);
        const int64_t planes = nb * d->cg;
        OMP(omp parallel for schedule(static) num_threads(cpu_threads())
            if(par && planes * d->kk / d->cg * ohw >= PAR_COPY_MIN))
        for (int64_t t = 0; t < planes; t++) {
            int64_t i = t / d->cg, c = t % d->cg;
            float *dxi = dxg + i * d->c * d->hw;
            memset(dxi + c * d->hw, 0, (size_t)d->hw * sizeof *dxi);
            col2im_channels(d, col + i * ohw, ld, dxi, c, c + 1);
        }
    }
}

/* Images [n0, n0 + nb) of y through packed panels (d->pa: W, every group). */
static void forward_chunk_packed(const conv_dims *d, const float *xd, const float *wd, float *yd,
                                 int64_t n0, int64_t nb, float *scratch, bool par)
{
    (void)wd;
    (void)par;
    const packed_a *pa = d->pa;
    const int64_t ohw = d->ohw, n = nb * ohw, nr = pa->u.nr;
    const int64_t npad = (n + nr - 1) / nr * nr;
    float *panel = scratch, *c = panel + lines(npad * pa->kcb), *row = c + lines(pa->mpad * npad);
    for (int64_t g = 0; g < d->g; g++) {
        float *yg = yd + (n0 * d->oc + g * d->ocg) * ohw;
        for (int64_t b = 0; b < pa->nkb; b++) {
            const int64_t k0 = b * pa->kcb, kc = min64(d->kk, k0 + pa->kcb) - k0;
            for (int64_t p = 0; p < kc; p++)
                for (int64_t i = 0; i < nb; i++)
                    panel_im2col(d, panel, kc, nr, p, i * ohw, xd,
                                 ((n0 + i) * d->c + g * d->cg) * d->hw, d->n * d->c * d->hw,
                                 k0 + p, row);
            panel_pad(panel, kc, nr, n);
            packed_block(pa, g, b, panel, n, c, npad);
        }
        for (int64_t t = 0; t < nb * d->ocg; t++) {
            int64_t i = t / d->ocg, o = t % d->ocg;
            memcpy(yg + i * d->oc * ohw + o * ohw, c + o * npad + i * ohw,
                   (size_t)ohw * sizeof *yg);
        }
    }
}

/* Images [n0, n0 + nb) of dx through packed panels (d->pa: W^T, every group):
 * the columns W_g^T dy_g, from a panel of the images' gradients side by side,
 * then back to their inputs. */
static void backward_input_chunk_packed(const conv_dims *d, const float *dyd, const float *wd,
                                        float *dxd, int64_t n0, int64_t nb, float *scratch, bool par)
{
    (void)wd;
    (void)par;
    const packed_a *pa = d->pa;
    const int64_t ohw = d->ohw, n = nb * ohw, nr = pa->u.nr;
    const int64_t npad = (n + nr - 1) / nr * nr;
    float *panel = scratch, *col = panel + lines(npad * pa->kcb);
    for (int64_t g = 0; g < d->g; g++) {
        float *dxg = dxd + (n0 * d->c + g * d->cg) * d->hw;
        const float *dyg = dyd + (n0 * d->oc + g * d->ocg) * ohw;
        for (int64_t b = 0; b < pa->nkb; b++) {
            const int64_t k0 = b * pa->kcb, kc = min64(d->ocg, k0 + pa->kcb) - k0;
            for (int64_t p = 0; p < kc; p++)
                for (int64_t i = 0; i < nb; i++)
                    put_row(panel, kc, nr, p, i * ohw, dyg + i * d->oc * ohw + (k0 + p) * ohw, ohw);
            panel_pad(panel, kc, nr, n);
            packed_block(pa, g, b, panel, n, col, npad);
        }
        for (int64_t t = 0; t < nb * d->cg; t++) {
            int64_t i = t / d->cg, c = t % d->cg;
            float *dxi = dxg + i * d->c * d->hw;
            memset(dxi + c * d->hw, 0, (size_t)d->hw * sizeof *dxi);
            col2im_channels(d, col + i * ohw, npad, dxi, c, c + 1);
        }
    }
}

/* ---- the batch loop ----------------------------------------------------------- */

typedef void (*chunk_fn)(const conv_dims *d, const float *in, const float *wd, float *out,
                         int64_t n0, int64_t nb, float *scratch, bool par);

/* Runs fn (or fn_packed, with pa) over the batch in chunks (see the top of the
 * file). */
static ag_status run_chunks(const char *op, conv_dims *d, chunk_fn fn, chunk_fn fn_packed,
                            packed_a *pa, const float *in, const float *wd, float *out)
{
    chunk_plan cp = plan_chunks(d, (d->kk + d->ocg) * d->ohw);
    cp.packed = pa && !d->direct && (cp.outer || cp.nt == 1);
    d->pa = pa;
    scratch_buf *buf;
    int64_t per;
    ag_status s = plan_scratch(op, d, &cp, &buf, &per);
    if (s) {
        packed_free(pa);
        return s;
    }
    if (cp.packed) fn = fn_packed;
    kpos *kp = kpos_table(d);
    if (!kp) {
        scratch_give(buf);
        packed_free(pa);
        return ag_set_error(AG_ERR_OOM, "%s: cannot allocate the kernel offset table", op);
    }
    d->kp = kp;
    float *scratch = buf ? buf->data : NULL;
    if (cp.outer) {
        /* the plan is cp.nt threads' (and their scratch); the team may be smaller */
        const int team = cpu_threads() < cp.nt ? cpu_threads() : cp.nt;
        (void)team;
        OMP(omp parallel num_threads(team))
        {
            float *own = scratch ? scratch + cpu_team_rank() * per : NULL;
            OMP(omp for schedule(dynamic, 1))
            for (int64_t k = 0; k < cp.nchunks; k++) {
                int64_t n0 = k * cp.nb, nb = d->n - n0 < cp.nb ? d->n - n0 : cp.nb;
                fn(d, in, wd, out, n0, nb, own, false);
            }
        }
    } else {
        for (int64_t k = 0; k < cp.nchunks; k++) {
            int64_t n0 = k * cp.nb, nb = d->n - n0 < cp.nb ? d->n - n0 : cp.nb;
            fn(d, in, wd, out, n0, nb, scratch, true);
        }
    }
    free(kp);
    packed_free(pa);
    scratch_give(buf);
    return AG_OK;
}

ag_status cpu_conv2d(void *ctx, const ag_conv2d_params *p, const ag_view *y, const ag_view *x,
                     const ag_view *w)
{
    (void)ctx;
    conv_dims d;
    ag_status s = conv_setup("conv2d", p, x, w, y, &d);
    if (s) return s;
    if (ag_view_numel(y) == 0) return AG_OK;
    const float *wd = cpu_f32(w);
    if (cpu_wino_suits(p, d.c, d.oc, d.kh, d.kw, d.h, d.w))
        return wino_run("conv2d", &d, cpu_f32(x), wd, cpu_f32(y), false, false);
    ukernel u = conv_ukernel();
    /* A = W_g [ocg, kk], row-major */
    packed_a *pa = !d.direct && d.kk > 0 && packed_suits(&d, u, d.ocg, d.ohw)
                       ? pack_weights(u, d.g, d.ocg, d.kk, wd, d.ocg * d.kk, d.kk, 1)
                       : NULL;
    return run_chunks("conv2d", &d, forward_chunk, forward_chunk_packed, pa, cpu_f32(x), wd,
                      cpu_f32(y));
}

ag_status cpu_conv2d_backward_input(void *ctx, const ag_conv2d_params *p, const ag_view *dx,
                                    const ag_view *dy, const ag_view *w)
{
    (void)ctx;
    conv_dims d;
    ag_status s = conv_setup("conv2d_backward_input", p, dx, w, dy, &d);
    if (s) return s;
    if (ag_view_numel(dx) == 0) return AG_OK;
    const float *wd = cpu_f32(w);
    if (cpu_wino_suits(p, d.oc, d.c, d.kh, d.kw, d.h, d.w))
        return wino_run("conv2d_backward_input", &d, cpu_f32(dy), wd, cpu_f32(dx), true, false);
    ukernel u = conv_ukernel();
    /* A = W_g^T [kk, ocg]: A(i, p) = W_g[p * kk + i] */
    packed_a *pa = !d.direct && d.ocg > 0 && packed_suits(&d, u, d.kk, d.ohw)
                       ? pack_weights(u, d.g, d.kk, d.ocg, wd, d.ocg * d.kk, 1, d.kk)
                       : NULL;
    return run_chunks("conv2d_backward_input", &d, backward_input_chunk,
                      backward_input_chunk_packed, pa, cpu_f32(dy), wd, cpu_f32(dx));
}

/* ---- weight gradient ------------------------------------------------------------ */

/* dW_g[:, r0:r1] = sum over images of dy_g col[r0:r1]^T, one image at a time in
 * order. col: (r1 - r0) * ohw floats of scratch (unused when direct). */
static void backward_weight_block(const conv_dims *d, const float *dyd, const float *xd, float *dwd,
                                  int64_t r0, int64_t r1, float *col)
{
    const int64_t ohw = d->ohw;
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t g = 0; g < d->g; g++) {
            const float *xg = xd + (n * d->c + g * d->cg) * d->hw;
            const float *dyg = dyd + (n * d->oc + g * d->ocg) * ohw;
            const float *b = xg + r0 * d->hw; /* direct: rows of x are the columns */
            if (!d->direct) {
                im2col_rows(d, xg, col, ohw, r0, r1);
                b = col;
            }
            cpu_sgemm(d->ocg, r1 - r0, ohw, 1.0f, dyg, ohw, 1, b, 1, ohw, n == 0 ? 0.0f : 1.0f,
                      dwd + g * d->ocg * d->kk + r0, d->kk);
        }
}

/* dst[p * step + i] = src[i * rs + p] for rows i < rows and p < kc, and 0 for
 * the slots i in [rows, step): rows of a matrix into a panel sliver. */
static void pack_t(float *restrict dst, int64_t step, const float *restrict src, int64_t rs,
                   int64_t rows, int64_t kc)
{
    int64_t i = 0;
#ifdef __SSE2__
    for (; i + 4 <= rows; i += 4) { /* 4 x 4 transposes: 16-byte stores */
        const float *s0 = src + i * rs, *s1 = s0 + rs, *s2 = s1 + rs, *s3 = s2 + rs;
        int64_t p = 0;
        for (; p + 4 <= kc; p += 4) {
            __m128 a = _mm_loadu_ps(s0 + p), b = _mm_loadu_ps(s1 + p);
            __m128 c = _mm_loadu_ps(s2 + p), e = _mm_loadu_ps(s3 + p);
            _MM_TRANSPOSE4_PS(a, b, c, e);
            _mm_storeu_ps(dst + (p + 0) * step + i, a);
            _mm_storeu_ps(dst + (p + 1) * step + i, b);
            _mm_storeu_ps(dst + (p + 2) * step + i, c);
            _mm_storeu_ps(dst + (p + 3) * step + i, e);
        }
        for (; p < kc; p++) {
            dst[p * step + i] = s0[p];
            dst[p * step + i + 1] = s1[p];
            dst[p * step + i + 2] = s2[p];
            dst[p * step + i + 3] = s3[p];
        }
    }
#endif
    for (; i < rows; i++)
        for (int64_t p = 0; p < kc; p++) dst[p * step + i] = src[i * rs + p];
    for (; i < step; i++)
        for (int64_t p = 0; p < kc; p++) dst[p * step + i] = 0.0f;
}

/* Packed weight gradient: C of every group, [mpad, wpad] each, for nw rows. */
static int64_t weight_c_floats(const conv_dims *d, ukernel u, int64_t nw)
{
    const int64_t mpad = (d->ocg + u.mr - 1) / u.mr * u.mr, wpad = (nw + u.nr - 1) / u.nr * u.nr;
    return lines(d->g * mpad * wpad);
}

/* Packed weight gradient: packing scratch for nw rows. */
static int64_t weight_work_floats(const conv_dims *d, ukernel u, int64_t nw)
{
    const int64_t mpad = (d->ocg + u.mr - 1) / u.mr * u.mr, wpad = (nw + u.nr - 1) / u.nr * u.nr;
    const int64_t nkb = (d->ohw + PK_KC - 1) / PK_KC, kcb = (d->ohw + nkb - 1) / nkb;
    return lines(mpad * kcb) + lines(wpad * kcb) + lines(u.nr * kcb);
}

/* The weight gradient through packed panels: c (weight_c_floats) = the sum
 * over images [n0, n1) of dy_g col[r0:r1]^T for each group g, one image (and
 * block of its pixels) at a time in order: dy_g packed as A, the column rows
 * as B. */
static void weight_packed(const conv_dims *d, ukernel u, const float *dyd, const float *xd,
                          int64_t r0, int64_t r1, int64_t n0, int64_t n1, float *c, float *work)
{
    const int64_t ohw = d->ohw, m = d->ocg, nw = r1 - r0, mr = u.mr, nr = u.nr;
    const int64_t mpad = (m + mr - 1) / mr * mr, wpad = (nw + nr - 1) / nr * nr;
    const int64_t nkb = (ohw + PK_KC - 1) / PK_KC, kcb = (ohw + nkb - 1) / nkb;
    const int64_t nk = d->kh * d->kw, xn = d->n * d->c * d->hw;
    float *ap = work, *bp = ap + lines(mpad * kcb);
    float *rows = bp + lines(wpad * kcb);
    for (int64_t n = n0; n < n1; n++)
        for (int64_t g = 0; g < d->g; g++) {
            const float *dyg = dyd + (n * d->oc + g * d->ocg) * ohw;
            const int64_t xo = (n * d->c + g * d->cg) * d->hw;
            float *cg = c + g * mpad * wpad;
            for (int64_t kb = 0; kb < nkb; kb++) {
                const int64_t q0 = kb * kcb, kc = min64(ohw, q0 + kcb) - q0;
                for (int64_t i = 0; i < mpad; i += mr)
                    pack_t(ap + i * kc, mr, dyg + i * ohw + q0, ohw, min64(mr, m - i), kc);
                for (int64_t j = 0; j < wpad; j += nr) {
                    const int64_t nrow = min64(nr, nw - j);
                    for (int64_t t = 0; t < nrow; t++) {
                        const int64_t r = r0 + j + t, xc = xo + r / nk * d->hw;
                        const kpos *k = &d->kp[r % nk];
                        const int64_t at = xc + k->shift + q0;
                        if (at >= 0 && at + kc <= xn)
                            copy_masked(rows + t * kc, xd + at, k->valid + q0, kc);
                        else
                            flat_segment(k, xd + xc, rows + t * kc, q0, kc);
                    }
                    pack_t(bp + j * kc, nr, rows, kc, nrow, kc);
                }
                const float beta = n == n0 && kb == 0 ? 0.0f : 1.0f;
                for (int64_t j = 0; j < wpad; j += nr)
                    for (int64_t i = 0; i < mpad; i += mr)
                        u.fn(kc, ap + i * kc, bp + j * kc, cg + i * wpad + j, wpad, 1.0f, beta);
            }
        }
}

/* dW[:, r0:r1] of every group = the sum of parts C's (weight_packed), in order. */
static void weight_store(const conv_dims *d, ukernel u, int64_t r0, int64_t r1, const float *c,
                         int64_t parts, int64_t part_floats, float *dwd)
{
    const int64_t m = d->ocg, nw = r1 - r0;
    const int64_t mpad = (m + u.mr - 1) / u.mr * u.mr, wpad = (nw + u.nr - 1) / u.nr * u.nr;
    for (int64_t g = 0; g < d->g; g++)
        for (int64_t o = 0; o < m; o++) {
            float *dst = dwd + (g * m + o) * d->kk + r0;
            const float *src = c + g * mpad * wpad + o * wpad;
            memcpy(dst, src, (size_t)nw * sizeof *dst);
            for (int64_t q = 1; q < parts; q++) add_run(dst, src + q * part_floats, nw);
        }
}

/* The weight gradient with the micro-kernel: the rows split into blocks when
 * there are a few slivers of them (each block summed over all images, in
 * order: a block boundary changes no sum), else the images into DW_PARTS parts
 * summed separately and then added in part order. Parts change the rounding,
 * so whether and how many follow the sizes alone: the result is the same for
 * every AG_NUM_THREADS and every team. */
#define DW_BLOCK_SLIVERS 4
#define DW_PARTS 8
static ag_status weight_gradient_packed(conv_dims *d, ukernel u, const float *dyd, const float *xd,
                                        float *dwd)
{
    const int nt = cpu_plan_threads();
    int64_t nblk = 1, parts = 1;
    if (d->kk >= DW_BLOCK_SLIVERS * u.nr) {
        nblk = d->kk / (2 * u.nr); /* two slivers a block at least */
        if (nblk > nt) nblk = nt;
        if (nblk > 64) nblk = 64;
        if (nblk < 1) nblk = 1;
    } else {
        parts = d->n < DW_PARTS ? d->n : DW_PARTS;
    }
    int64_t bounds[65];
    for (int64_t b = 0; b <= nblk; b++) /* on whole slivers */
        bounds[b] = b == nblk ? d->kk : (d->kk / u.nr) * b / nblk * u.nr;
    int64_t widest = 0;
    for (int64_t b = 0; b < nblk; b++)
        if (bounds[b + 1] - bounds[b] > widest) widest = bounds[b + 1] - bounds[b];
    const int64_t units = nblk * parts, cf = weight_c_floats(d, u, widest);
    const int64_t wf = weight_work_floats(d, u, widest);
    int64_t threads = units < nt ? units : nt;
    /* C: one per thread with blocks (stored as each finishes), one per part with parts */
    int64_t cs = parts > 1 ? parts * cf : threads * cf;
    if (threads > 1 && (cs + threads * wf) * (int64_t)sizeof(float) > SCRATCH_CAP) {
        threads = 1;
        cs = parts * cf;
    }
    scratch_buf *buf = scratch_take(cs + threads * wf);
    if (!buf)
        return ag_set_error(AG_ERR_OOM, "conv2d_backward_weight: cannot allocate %lld bytes of scratch",
                            (long long)((cs + threads * wf) * (int64_t)sizeof(float)));
    float *cbase = buf->data, *wbase = cbase + cs;
    const int team = threads > 1 && cpu_threads() < threads ? cpu_threads() : (int)threads;
    (void)team;
    OMP(omp parallel num_threads(team) if(team > 1))
    {
        const int t = cpu_team_rank();
        OMP(omp for schedule(dynamic, 1))
        for (int64_t k = 0; k < units; k++) {
            const int64_t b = k / parts, q = k % parts;
            const int64_t n0 = d->n * q / parts, n1 = d->n * (q + 1) / parts;
            float *c = parts > 1 ? cbase + q * cf : cbase + t * cf;
            weight_packed(d, u, dyd, xd, bounds[b], bounds[b + 1], n0, n1, c, wbase + t * wf);
            if (parts == 1) weight_store(d, u, bounds[b], bounds[b + 1], c, 1, cf, dwd);
        }
    }
    if (parts > 1) weight_store(d, u, 0, d->kk, cbase, parts, cf, dwd);
    scratch_give(buf);
    return AG_OK;
}

ag_status cpu_conv2d_backward_weight(void *ctx, const ag_conv2d_params *p, const ag_view *dw,
                                     const ag_view *dy, const ag_view *x)
{
    (void)ctx;
    conv_dims d;
    ag_status s = conv_setup("conv2d_backward_weight", p, x, dw, dy, &d);
    if (s) return s;
    int64_t wn = ag_view_numel(dw);
    float *dwd = cpu_f32(dw);
    if (wn == 0) return AG_OK;
    if (d.n == 0 || d.ohw == 0) {
        memset(dwd, 0, (size_t)wn * sizeof *dwd);
        return AG_OK;
    }
    if (cpu_wino_suits(p, d.c, d.oc, d.kh, d.kw, d.h, d.w))
        return wino_run("conv2d_backward_weight", &d, cpu_f32(x), cpu_f32(dy), dwd, false, true);
    const ukernel u = conv_ukernel();
    if (packed_suits(&d, u, d.ocg, d.kk)) {
        kpos *kp = kpos_table(&d);
        if (!kp)
            return ag_set_error(AG_ERR_OOM,
                                "conv2d_backward_weight: cannot allocate the kernel offset table");
        d.kp = kp;
        s = weight_gradient_packed(&d, u, cpu_f32(dy), cpu_f32(x), dwd);
        free(kp);
        return s;
    }
    /* blocks of the kk rows, at least 8 rows each and at most DW_PARTS of
     * them: where a block ends decides which rows take the vector or the tail
     * path, so the count follows the sizes, never the threads */
    const int nt = cpu_plan_threads();
    int64_t nblk = (d.kk + 7) / 8;
    if (nblk > DW_PARTS) nblk = DW_PARTS;
    if (nblk < 1) nblk = 1;
    int64_t bounds[DW_PARTS + 1];
    for (int64_t b = 0; b <= nblk; b++) {
        int64_t e = d.kk * b / nblk;
        if (b > 0 && b < nblk && d.kk >= 2 * DW_ALIGN * nblk) e = (e + DW_ALIGN / 2) / DW_ALIGN * DW_ALIGN;
        bounds[b] = e;
    }
    int64_t widest = 0;
    for (int64_t b = 0; b < nblk; b++)
        if (bounds[b + 1] - bounds[b] > widest) widest = bounds[b + 1] - bounds[b];
    int64_t per = d.direct ? 0 : lines(widest * d.ohw);
    int64_t threads = nblk < nt ? nblk : nt;
    if (threads > 1 && threads * per * (int64_t)sizeof(float) > SCRATCH_CAP) threads = 1;
    scratch_buf *buf = per ? scratch_take(threads * per) : NULL;
    if (per && !buf && threads > 1) buf = scratch_take(per), threads = 1;
    if (per && !buf)
        return ag_set_error(AG_ERR_OOM,
                            "conv2d_backward_weight: cannot allocate %lld bytes of column scratch",
                            (long long)(per * (int64_t)sizeof(float)));
    kpos *kp = kpos_table(&d);
    if (!kp) {
        scratch_give(buf);
        return ag_set_error(AG_ERR_OOM,
                            "conv2d_backward_weight: cannot allocate the kernel offset table");
    }
    d.kp = kp;
    const float *dyd = cpu_f32(dy), *xd = cpu_f32(x);
    float *scratch = buf ? buf->data : NULL;
    if (threads > 1) {
        const int team = cpu_threads() < threads ? cpu_threads() : (int)threads;
        (void)team;
        OMP(omp parallel num_threads(team))
        {
            float *own = scratch ? scratch + cpu_team_rank() * per : NULL;
            OMP(omp for schedule(dynamic, 1))
            for (int64_t b = 0; b < nblk; b++)
                backward_weight_block(&d, dyd, xd, dwd, bounds[b], bounds[b + 1], own);
        }
    } else {
        for (int64_t b = 0; b < nblk; b++)
            backward_weight_block(&d, dyd, xd, dwd, bounds[b], bounds[b + 1], scratch);
    }
    free(kp);
    scratch_give(buf);
    return AG_OK;
}
