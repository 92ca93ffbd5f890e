/* gather and scatter_add along one axis, on views with any strides.
 *
 * Both walk the index's shape. Threads split it along one axis into boxes; for
 * scatter_add that axis is never the scatter axis, so two threads never add to
 * the same element of y and every element receives its terms in the same order
 * as a serial run (results do not depend on the thread count). */
#include "cpu.h"
#include "plan.h"


#define PAR_MIN 32768

typedef struct walk {
    int nd, axis;
    int64_t shape[AG_MAX_DIMS];          /* the index's shape */
    int64_t size;                        /* target's extent along axis */
    int64_t is[AG_MAX_DIMS];             /* index strides */
    int64_t os[AG_MAX_DIMS];             /* y (gather) or src (scatter) strides */
    int64_t ts[AG_MAX_DIMS];             /* x (gather) or y (scatter) strides */
    const int32_t *idx;
    int32_t *gy;                         /* gather: output, 4-byte elements copied as bits */
    const int32_t *gx;
    float *sy;                           /* scatter: accumulated target */
    const float *ssrc;
} walk;


/* Visits index positions in the box [lo, hi) in row-major order. */
static void walk_box(const walk *w, const int64_t *lo, const int64_t *hi)
{
    int L = w->nd - 1, ax = w->axis;
    int64_t c[AG_MAX_DIMS];
    for (int d = 0; d < w->nd; d++) {
        if (hi[d] <= lo[d]) return;
        c[d] = lo[d];
    }
    for (;;) {
        int64_t bi = 0, bo = 0, bt = 0;
        for (int d = 0; d < L; d++) {
            bi += c[d] * w->is[d];
            bo += c[d] * w->os[d];
            if (d != ax) bt += c[d] * w->ts[d];
        }
        /* along the last axis the target moves by the index value (scatter axis)
         * or by the position (any other axis) */
        int64_t tj = ax == L ? 0 : w->ts[L], tk = w->ts[ax];
        for (int64_t j = lo[L]; j < hi[L]; j++) {
            int64_t k = w->idx[bi + j * w->is[L]];
            if (k < 0 || k >= w->size) {
                if (w->gy) w->gy[bo + j * w->os[L]] = 0;
                continue;
            }
            int64_t t = bt + j * tj + k * tk;
            if (w->gy) w->gy[bo + j * w->os[L]] = w->gx[t];
            else w->sy[t] += w->ssrc[bo + j * w->os[L]];
        }
        int d = L - 1;
        for (; d >= 0; d--) {
            if (++c[d] < hi[d]) break;
            c[d] = lo[d];
        }
        if (d < 0) return;
    }
}

/* Splits the walk along axis p (-1: no split) over the threads. */
static void walk_all(const walk *w, int p)
{
    int64_t n = 1;
    for (int d = 0; d < w->nd; d++) n *= w->shape[d];
    if (n == 0) return;
    bool par = p >= 0 && n > PAR_MIN && w->shape[p] > 1;
    (void)par; /* unused without OpenMP */
    OMP(omp parallel num_threads(cpu_threads()) if(par))
    {
        int64_t lo[AG_MAX_DIMS] = {0}, hi[AG_MAX_DIMS];
        for (int d = 0; d < w->nd; d++) hi[d] = w->shape[d];
#ifdef _OPENMP
        if (par) {
            int64_t t = omp_get_thread_num(), tn = omp_get_num_threads();
            lo[p] = w->shape[p] * t / tn;
            hi[p] = w->shape[p] * (t + 1) / tn;
        }
#endif
        walk_box(w, lo, hi);
    }
}

/* Fills the shape and strides; a 0-d view walks as [1]. */
static void walk_dims(walk *w, const ag_view *index, const ag_view *o, const ag_view *t)
{
    w->nd = index->ndim ? index->ndim : 1;
    for (int d = 0; d < w->nd; d++) {
        bool z = index->ndim == 0;
        w->shape[d] = z ? 1 : index->shape[d];
        w->is[d] = z ? 0 : index->stride[d];
        w->os[d] = z ? 0 : o->stride[d];
        w->ts[d] = z ? 0 : t->stride[d];
    }
}

/* The largest axis other than skip, or -1 when none has more than one element. */
static int split_axis(const walk *w, int skip)
{
    int best = -1;
    for (int d = 0; d < w->nd; d++)
        if (d != skip && w->shape[d] > 1 && (best < 0 || w->shape[d] > w->shape[best])) best = d;
    return best;
}

ag_status cpu_gather(void *ctx, int axis, const ag_view *y, const ag_view *x, const ag_view *index)
{
    (void)ctx;
    int ax;
    ag_status s = ag_gather_check(NULL, axis, y, x, index, &ax);
    if (s != AG_OK) return s;
    walk w = {.axis = ax, .size = x->ndim ? x->shape[ax] : 1, .idx = cpu_i32(index),
              .gy = cpu_i32(y), .gx = cpu_i32(x)};
    walk_dims(&w, index, y, x);
    walk_all(&w, split_axis(&w, -1));
    return AG_OK;
}

ag_status cpu_scatter_add(void *ctx, int axis, const ag_view *y, const ag_view *index,
                          const ag_view *src)
{
    (void)ctx;
    int ax;
    ag_status s = ag_scatter_add_check(NULL, axis, y, index, src, &ax);
    if (s != AG_OK) return s;
    walk w = {.axis = ax, .size = y->ndim ? y->shape[ax] : 1, .idx = cpu_i32(index),
              .sy = cpu_f32(y), .ssrc = cpu_f32(src)};
    walk_dims(&w, index, src, y);
    /* an output that aliases itself could take one element from two threads */
    walk_all(&w, ag_view_no_overlap(y) ? split_axis(&w, ax) : -1);
    return AG_OK;
}
