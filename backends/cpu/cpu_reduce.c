/* Reductions over strided f32 views: sum, mean (double accumulation), max, min
 * (NaN wins) and argmax/argmin (int32, first index on ties, NaN is the extreme).
 *
 * The kept axes and the reduced axes are each merged where the layout allows.
 * When the reduced axis is the dense one, each output walks a contiguous run
 * ("horizontal"); when a kept axis is denser (a column sum), a block of adjacent
 * outputs is accumulated together while walking the reduced axes ("vertical"),
 * so memory is read in order either way. Few outputs over a long reduction are
 * split into chunks whose partial results are merged in order. */
#include "cpu.h"
#include "plan.h"
#include "cpu_simd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* outputs accumulated together in vertical mode */
#define RED_VB 2048
/* below this many input elements a reduction stays on one thread */
#define RED_PAR_MIN 32768
/* work items a large reduction is cut into, whatever the threads: 8 keep
 * machines of up to 8 cores busy and cost one merge per item */
#define RED_SPLIT 8
/* smallest reduction chunk worth a thread */
#define RED_CHUNK_MIN 16384

typedef struct rblock {
    double v[RED_VB];
    int64_t i[RED_VB];
} rblock;

typedef struct red_plan {
    ag_reduce_axes a; /* the split of x's axes (plan.h) */
    int64_t nb_full;  /* outputs per group: 1, or up to RED_VB in vertical mode */
    int64_t nblk;     /* groups along the inner kept axis (vertical) */
    int64_t ngroups, nchunks;
    const float *x;
    float *yf;
    int32_t *yi;
} red_plan;

/* ---- per-op accumulation --------------------------------------------------- */

/* Folds n elements x[0], x[s], ... at reduction positions r, r+1, ... into a->*[0]. */
typedef void (*red_run_fn)(rblock *a, const float *x, int64_t n, int64_t s, int64_t r);
/* Folds one reduction position r into nb adjacent outputs x[0], x[ks], ... */
typedef void (*red_vrun_fn)(rblock *a, const float *x, int64_t nb, int64_t ks, int64_t r);
/* Folds b's partial results (a later chunk) into a's. */
typedef void (*red_merge_fn)(rblock *a, const rblock *b, int64_t nb);

typedef struct red_ops {
    double init;
    red_run_fn run;
    red_vrun_fn vrun;
    red_merge_fn merge;
} red_ops;

static void run_sum(rblock *a, const float *x, int64_t n, int64_t s, int64_t r)
{
    (void)r;
    const cpu_simd_ops *v = cpu_simd();
    if (v && s == 1) { /* the ISA's lanes of double accumulators */
        a->v[0] += v->reduce.sum(x, n);
        return;
    }
    double t = 0.0;
    int64_t i = 0;
    if (s == 1) {
        /* independent lanes: vectorizes without reassociating */
        double lane[8] = {0};
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) lane[j] += x[i + j];
        for (int j = 0; j < 8; j++) t += lane[j];
    }
    for (; i < n; i++) t += x[i * s];
    a->v[0] += t;
}

static void vrun_sum(rblock *a, const float *x, int64_t nb, int64_t ks, int64_t r)
{
    (void)r;
    const cpu_simd_ops *v = cpu_simd();
    if (v && ks == 1)
        v->reduce.col_add(a->v, x, nb);
    else if (ks == 1 && nb == RED_VB)
        for (int j = 0; j < RED_VB; j++) a->v[j] += x[j]; /* constant trip count vectorizes */
    else if (ks == 1)
        for (int64_t j = 0; j < nb; j++) a->v[j] += x[j];
    else
        for (int64_t j = 0; j < nb; j++) a->v[j] += x[j * ks];
}

static void merge_sum(rblock *a, const rblock *b, int64_t nb)
{
    for (int64_t j = 0; j < nb; j++) a->v[j] += b->v[j];
}

/* NaN sticks: once m is NaN neither test can replace it */
static inline double take_max(double m, double v) { return v > m || v != v ? v : m; }
static inline double take_min(double m, double v) { return v < m || v != v ? v : m; }

static inline float take_maxf(float m, float v) { return v > m || v != v ? v : m; }
static inline float take_minf(float m, float v) { return v < m || v != v ? v : m; }

/* Lanes of float running extremes; the value is exact in float and which NaN
 * wins does not matter. */
static void run_max(rblock *a, const float *x, int64_t n, int64_t s, int64_t r)
{
    (void)r;
    float m = (float)a->v[0];
    int64_t i = 0;
    if (s == 1 && n >= 8) {
        float lane[8];
        for (int j = 0; j < 8; j++) lane[j] = m;
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) lane[j] = take_maxf(lane[j], x[i + j]);
        for (int j = 0; j < 8; j++) m = take_maxf(m, lane[j]);
    }
    for (; i < n; i++) m = take_maxf(m, x[i * s]);
    a->v[0] = m;
}

static void run_min(rblock *a, const float *x, int64_t n, int64_t s, int64_t r)
{
    (void)r;
    float m = (float)a->v[0];
    int64_t i = 0;
    if (s == 1 && n >= 8) {
        float lane[8];
        for (int j = 0; j < 8; j++) lane[j] = m;
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) lane[j] = take_minf(lane[j], x[i + j]);
        for (int j = 0; j < 8; j++) m = take_minf(m, lane[j]);
    }
    for (; i < n; i++) m = take_minf(m, x[i * s]);
    a->v[0] = m;
}

static void vrun_max(rblock *a, const float *x, int64_t nb, int64_t ks, int64_t r)
{
    (void)r;
    for (int64_t j = 0; j < nb; j++) a->v[j] = take_max(a->v[j], x[j * ks]);
}

static void vrun_min(rblock *a, const float *x, int64_t nb, int64_t ks, int64_t r)
{
    (void)r;
    for (int64_t j = 0; j < nb; j++) a->v[j] = take_min(a->v[j], x[j * ks]);
}

static void merge_max(rblock *a, const rblock *b, int64_t nb)
{
    for (int64_t j = 0; j < nb; j++) a->v[j] = take_max(a->v[j], b->v[j]);
}

static void merge_min(rblock *a, const rblock *b, int64_t nb)
{
    for (int64_t j = 0; j < nb; j++) a->v[j] = take_min(a->v[j], b->v[j]);
}

/* Strictly better or the first NaN: ties and later NaNs keep the earlier index. */
static inline bool better_max(double m, double v) { return m == m && (v > m || v != v); }
static inline bool better_min(double m, double v) { return m == m && (v < m || v != v); }

static void run_argmax(rblock *a, const float *x, int64_t n, int64_t s, int64_t r)
{
    for (int64_t i = 0; i < n; i++)
        if (better_max(a->v[0], x[i * s])) {
            a->v[0] = x[i * s];
            a->i[0] = r + i;
        }
}

static void run_argmin(rblock *a, const float *x, int64_t n, int64_t s, int64_t r)
{
    for (int64_t i = 0; i < n; i++)
        if (better_min(a->v[0], x[i * s])) {
            a->v[0] = x[i * s];
            a->i[0] = r + i;
        }
}

static void vrun_argmax(rblock *a, const float *x, int64_t nb, int64_t ks, int64_t r)
{
    for (int64_t j = 0; j < nb; j++)
        if (better_max(a->v[j], x[j * ks])) {
            a->v[j] = x[j * ks];
            a->i[j] = r;
        }
}

static void vrun_argmin(rblock *a, const float *x, int64_t nb, int64_t ks, int64_t r)
{
    for (int64_t j = 0; j < nb; j++)
        if (better_min(a->v[j], x[j * ks])) {
            a->v[j] = x[j * ks];
            a->i[j] = r;
        }
}

static void merge_argmax(rblock *a, const rblock *b, int64_t nb)
{
    for (int64_t j = 0; j < nb; j++)
        if (better_max(a->v[j], b->v[j])) {
            a->v[j] = b->v[j];
            a->i[j] = b->i[j];
        }
}

static void merge_argmin(rblock *a, const rblock *b, int64_t nb)
{
    for (int64_t j = 0; j < nb; j++)
        if (better_min(a->v[j], b->v[j])) {
            a->v[j] = b->v[j];
            a->i[j] = b->i[j];
        }
}

static const red_ops red_table[AG_REDUCE_COUNT] = {
    [AG_REDUCE_SUM] = {0.0, run_sum, vrun_sum, merge_sum},
    [AG_REDUCE_MEAN] = {0.0, run_sum, vrun_sum, merge_sum},
    [AG_REDUCE_MAX] = {-INFINITY, run_max, vrun_max, merge_max},
    [AG_REDUCE_MIN] = {INFINITY, run_min, vrun_min, merge_min},
    [AG_REDUCE_ARGMAX] = {-INFINITY, run_argmax, vrun_argmax, merge_argmax},
    [AG_REDUCE_ARGMIN] = {INFINITY, run_argmin, vrun_argmin, merge_argmin},
};

/* ---- planning -------------------------------------------------------------- */


/* Checks y = reduce(x) and groups the outputs: one a group, or up to RED_VB
 * adjacent ones along a dense kept axis (vertical). */
static ag_status red_plan_init(red_plan *p, ag_reduce_op op, const ag_view *y, const ag_view *x)
{
    ag_status s = ag_reduce_check("cpu", op, y, x, &p->a);
    if (s != AG_OK || p->a.nout == 0) return s;
    if (p->a.vertical) {
        int64_t kn = p->a.kshape[p->a.nk - 1];
        p->nb_full = kn < RED_VB ? kn : RED_VB;
        p->nblk = (kn + RED_VB - 1) / RED_VB;
        p->ngroups = p->a.nout / kn * p->nblk;
    } else {
        p->nb_full = 1;
        p->nblk = 1;
        p->ngroups = p->a.nout;
    }
    return AG_OK;
}

/* x and y offsets of group g's first output, and how many outputs it has */
static int64_t red_group(const red_plan *p, int64_t g, int64_t *xo, int64_t *yo)
{
    int64_t nb = 1;
    int nd = p->a.nk;
    *xo = 0;
    *yo = 0;
    if (p->a.vertical) {
        int64_t blk = g % p->nblk, kn = p->a.kshape[nd - 1];
        g /= p->nblk;
        int64_t j0 = blk * RED_VB;
        nb = kn - j0 < RED_VB ? kn - j0 : RED_VB;
        *xo += j0 * p->a.kxs[nd - 1];
        *yo += j0 * p->a.kys[nd - 1];
        nd--;
    }
    for (int d = nd - 1; d >= 0; d--) {
        int64_t i = g % p->a.kshape[d];
        g /= p->a.kshape[d];
        *xo += i * p->a.kxs[d];
        *yo += i * p->a.kys[d];
    }
    return nb;
}

/* Folds reduction positions [r0, r1) of the group at x offset xo into a. */
static void red_fold(const red_plan *p, const red_ops *ops, rblock *a, int64_t nb, int64_t xo,
                     int64_t r0, int64_t r1)
{
    if (r0 >= r1) return; /* an empty axis: nothing to unravel */
    const int nr = p->a.nr;
    int64_t idx[AG_MAX_DIMS], off = 0, rem = r0;
    for (int d = nr - 1; d >= 0; d--) {
        idx[d] = rem % p->a.rshape[d];
        rem /= p->a.rshape[d];
        off += idx[d] * p->a.rxs[d];
    }
    const int64_t inner = p->a.rshape[nr - 1], rs = p->a.rxs[nr - 1];
    const int64_t ks = p->a.vertical ? p->a.kxs[p->a.nk - 1] : 0;
    for (int64_t r = r0; r < r1;) {
        int64_t n = inner - idx[nr - 1];
        if (r1 - r < n) n = r1 - r;
        const float *base = p->x + xo + off;
        if (p->a.vertical)
            for (int64_t i = 0; i < n; i++) ops->vrun(a, base + i * rs, nb, ks, r + i);
        else
            ops->run(a, base, n, rs, r);
        r += n;
        if (r == r1) break;
        idx[nr - 1] += n;
        off += n * rs;
        for (int d = nr - 1; d > 0 && idx[d] == p->a.rshape[d]; d--) {
            off -= idx[d] * p->a.rxs[d];
            idx[d] = 0;
            idx[d - 1]++;
            off += p->a.rxs[d - 1];
        }
    }
}

static void red_store(const red_plan *p, ag_reduce_op op, const rblock *a, int64_t nb, int64_t yo,
                      int64_t ys)
{
    for (int64_t j = 0; j < nb; j++) {
        if (p->yi)
            p->yi[yo + j * ys] = (int32_t)a->i[j];
        else if (op == AG_REDUCE_MEAN)
            p->yf[yo + j * ys] = (float)(a->v[j] / (double)p->a.nred);
        else
            p->yf[yo + j * ys] = (float)a->v[j];
    }
}

/* Work item w: chunk (w % nchunks) of group (w / nchunks). */
static void red_item(const red_plan *p, ag_reduce_op op, int64_t w, rblock *partial)
{
    const red_ops *ops = &red_table[op];
    int64_t g = w / p->nchunks, c = w % p->nchunks;
    int64_t xo, yo;
    int64_t nb = red_group(p, g, &xo, &yo);
    int64_t r0 = p->a.nred * c / p->nchunks, r1 = p->a.nred * (c + 1) / p->nchunks;
    rblock a;
    for (int64_t j = 0; j < nb; j++) {
        a.v[j] = ops->init;
        a.i[j] = r0;
    }
    red_fold(p, ops, &a, nb, xo, r0, r1);
    if (partial)
        partial[w] = a;
    else
        red_store(p, op, &a, nb, yo, p->a.vertical ? p->a.kys[p->a.nk - 1] : 0);
}

ag_status cpu_reduce(void *ctx, ag_reduce_op op, const ag_view *y, const ag_view *x)
{
    (void)ctx;
    red_plan p;
    ag_status s = red_plan_init(&p, op, y, x);
    if (s != AG_OK || p.a.nout == 0) return s;
    const bool arg = ag_reduce_is_arg(op);
    p.x = cpu_f32(x);
    p.yf = arg ? NULL : cpu_f32(y);
    p.yi = arg ? cpu_i32(y) : NULL;

    int64_t total = p.a.nout * p.a.nred;
    /* the split of a reduction into chunks follows the sizes (never a thread
     * count): RED_SPLIT work items at least when the work is worth sharing */
    int nt = total >= RED_PAR_MIN ? RED_SPLIT : 1;
    p.nchunks = 1;
    if (nt > 1 && p.ngroups < nt) {
        /* too few outputs to share out: split the reduction itself */
        int64_t want = (nt + p.ngroups - 1) / p.ngroups;
        int64_t most = p.a.nred * p.nb_full / RED_CHUNK_MIN;
        p.nchunks = want < most ? want : most;
        if (p.nchunks < 1) p.nchunks = 1;
    }
    int64_t nitems = p.ngroups * p.nchunks;
    rblock *partial = NULL;
    if (p.nchunks > 1) {
        partial = malloc((size_t)nitems * sizeof *partial);
        if (!partial) { /* still correct, just not split */
            p.nchunks = 1;
            nitems = p.ngroups;
        }
    }
    if (nt > 1) nt = cpu_threads();
    if (nt > nitems) nt = (int)nitems;
    if (nt <= 1) { /* even an inactive parallel construct costs a small reduction dearly */
        for (int64_t w = 0; w < nitems; w++) red_item(&p, op, w, partial);
    } else {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (int64_t w = 0; w < nitems; w++) red_item(&p, op, w, partial);
    }
    if (partial) {
        const red_ops *ops = &red_table[op];
        for (int64_t g = 0; g < p.ngroups; g++) {
            rblock *a = &partial[g * p.nchunks];
            int64_t xo, yo;
            int64_t nb = red_group(&p, g, &xo, &yo);
            for (int64_t c = 1; c < p.nchunks; c++) ops->merge(a, &partial[g * p.nchunks + c], nb);
            red_store(&p, op, a, nb, yo, p.a.vertical ? p.a.kys[p.a.nk - 1] : 0);
        }
        free(partial);
    }
    return AG_OK;
}
