/* gather and scatter_add: torch's argument rules (every backend) and the GPU
 * backends' launch plans.
 *
 * scatter_add is deterministic without float atomics: every element of y is
 * owned by one work-item that adds its terms in position order along the axis,
 * the CPU's order, so all backends agree bit for bit. Two ways to find the
 * terms:
 *  - scan: each element of y reads all L index entries of its line. Cost
 *    O(size_y_axis * L) per line: fine for small L (gather's gradient with a
 *    few picks per row), quadratic for embedding-like cases;
 *  - sort: each distinct index line is bitonic-sorted by (target, position),
 *    O(L log^2 L), then the first entry of each run of equal targets adds
 *    the run to its element of y: O(index elements) in all. Embedding's
 *    gradient (one index line shared by every column) costs one sort. A run
 *    is added serially by one work-item (the CPU's order), so a target hit
 *    very often is a long serial sum; columns still run in parallel.
 * The plan picks the cheaper by an operation count. */
#include "plan.h"

/* Below this many operations the scan wins whatever the counts say: the sort
 * needs a buffer and several launches. */
#define SCAN_OVERHEAD ((int64_t)1 << 20)

static int norm_axis(int axis, int ndim)
{
    int n = ndim ? ndim : 1;
    if (axis < 0) axis += n;
    return axis >= 0 && axis < n ? axis : -1;
}

static bool view_ok(const ag_view *v)
{
    return v && v->buf && v->ndim >= 0 && v->ndim <= AG_MAX_DIMS;
}

/* "opencl " before the op, or nothing for backend NULL. */
#define PREFIX(backend) (backend) ? (backend) : "", (backend) ? " " : ""

ag_status ag_gather_check(const char *backend, int axis, const ag_view *y, const ag_view *x,
                          const ag_view *index, int *ax)
{
    if (!view_ok(y) || !view_ok(x) || !view_ok(index))
        return ag_set_error(AG_ERR_ARG, "%s%sgather: invalid view", PREFIX(backend));
    if (index->dtype != AG_I32 || x->dtype != y->dtype ||
        (x->dtype != AG_F32 && x->dtype != AG_I32))
        return ag_set_error(AG_ERR_DTYPE, "%s%sgather: expected int32 index and matching "
                                          "f32/int32 input and output",
                            PREFIX(backend));
    *ax = norm_axis(axis, x->ndim);
    bool ok = *ax >= 0 && index->ndim == x->ndim && y->ndim == x->ndim;
    for (int d = 0; ok && d < x->ndim; d++)
        ok = y->shape[d] == index->shape[d] && (d == *ax || index->shape[d] <= x->shape[d]);
    if (!ok) {
        char sx[96], si[96], sy[96];
        ag_view_shape_str(x, sx, sizeof sx);
        ag_view_shape_str(index, si, sizeof si);
        ag_view_shape_str(y, sy, sizeof sy);
        return ag_set_error(AG_ERR_SHAPE,
                            "%s%sgather: axis %d, input %s, index %s, output %s: index and "
                            "output need the input's rank, equal shapes and no larger size off "
                            "the axis",
                            PREFIX(backend), axis, sx, si, sy);
    }
    return AG_OK;
}

ag_status ag_scatter_add_check(const char *backend, int axis, const ag_view *y,
                               const ag_view *index, const ag_view *src, int *ax)
{
    if (!view_ok(y) || !view_ok(src) || !view_ok(index))
        return ag_set_error(AG_ERR_ARG, "%s%sscatter_add: invalid view", PREFIX(backend));
    if (index->dtype != AG_I32 || y->dtype != AG_F32 || src->dtype != AG_F32)
        return ag_set_error(AG_ERR_DTYPE, "%s%sscatter_add: expected int32 index and f32 data",
                            PREFIX(backend));
    *ax = norm_axis(axis, y->ndim);
    bool ok = *ax >= 0 && index->ndim == y->ndim && src->ndim == y->ndim;
    for (int d = 0; ok && d < y->ndim; d++)
        ok = index->shape[d] <= src->shape[d] && (d == *ax || index->shape[d] <= y->shape[d]);
    if (!ok) {
        char ss[96], si[96], sy[96];
        ag_view_shape_str(src, ss, sizeof ss);
        ag_view_shape_str(index, si, sizeof si);
        ag_view_shape_str(y, sy, sizeof sy);
        return ag_set_error(AG_ERR_SHAPE,
                            "%s%sscatter_add: axis %d, output %s, index %s, source %s: all "
                            "need the same rank, index no larger than source, nor than output "
                            "off the axis",
                            PREFIX(backend), axis, sy, si, ss);
    }
    return AG_OK;
}

/* Strides sorted, each step over the whole extent of the smaller ones. */
bool ag_view_no_overlap(const ag_view *v)
{
    int64_t st[AG_MAX_DIMS], sz[AG_MAX_DIMS];
    int k = 0;
    for (int d = 0; d < v->ndim; d++) {
        if (v->shape[d] == 0) return true;
        if (v->shape[d] == 1) continue;
        int64_t s = v->stride[d] < 0 ? -v->stride[d] : v->stride[d];
        int i = k++;
        for (; i > 0 && st[i - 1] > s; i--) {
            st[i] = st[i - 1];
            sz[i] = sz[i - 1];
        }
        st[i] = s;
        sz[i] = v->shape[d];
    }
    int64_t reach = 1;
    for (int i = 0; i < k; i++) {
        if (st[i] < reach) return false;
        reach = st[i] * sz[i];
    }
    return true;
}

/* ---- GPU plans: int32 layouts of views reshaped around the axis ------------ */

/* A 0-d view walks as [1]. */
static ag_view as_1d(const ag_view *v)
{
    ag_view r = *v;
    if (r.ndim == 0) {
        r.ndim = 1;
        r.shape[0] = 1;
        r.stride[0] = 0;
    }
    return r;
}

/* v over `shape` (same rank), its stride along ax zeroed when zero_axis. */
static ag_view reshaped(const ag_view *v, const int64_t *shape, int ax, bool zero_axis)
{
    ag_view r = *v;
    for (int d = 0; d < r.ndim; d++) r.shape[d] = shape[d];
    if (zero_axis) r.stride[ax] = 0;
    return r;
}

/* A view with no buffer whose offset at a position is a linear combination of
 * its coordinates (descriptor-only: ag_layout32 reads no buffer). */
static ag_view coord_view(int ndim, const int64_t *shape, const int64_t *stride)
{
    ag_view r = {.buf = NULL, .offset = 0, .dtype = AG_I32, .ndim = ndim};
    for (int d = 0; d < ndim; d++) {
        r.shape[d] = shape[d];
        r.stride[d] = stride[d];
    }
    return r;
}

static int ceil_log2(int64_t n)
{
    int k = 0;
    while (((int64_t)1 << k) < n) k++;
    return k;
}

ag_status ag_gather_plan(const char *backend, int axis, const ag_view *y, const ag_view *x,
                         const ag_view *index, ag_gather_params *p)
{
    int ax;
    ag_status s = ag_gather_check(backend, axis, y, x, index, &ax);
    if (s != AG_OK) return s;
    ag_view X = as_1d(x), Y = as_1d(y), I = as_1d(index);
    /* x at the index's positions, its axis offset added from the index value */
    ag_view xm = reshaped(&X, I.shape, ax, true);
    const ag_view *v[3] = {&Y, &I, &xm};
    ag_strides32 st[3];
    int32_t xoff;
    s = ag_offset32(backend, "gather", x, &xoff); /* x's whole extent fits int32 */
    if (s == AG_OK) s = ag_layout32(backend, "gather", 3, v, &p->sh, st);
    if (s != AG_OK) return s;
    p->ys = st[0];
    p->is = st[1];
    p->xs = st[2];
    p->size = (int32_t)X.shape[ax];
    p->xsa = (int32_t)X.stride[ax];
    return AG_OK;
}

ag_status ag_scatter_add_plan(const char *backend, int axis, const ag_view *y,
                              const ag_view *index, const ag_view *src, uint64_t max_key_bytes,
                              ag_scatter_plan *p)
{
    static const char *const op = "scatter_add";
    int ax;
    p->path = AG_SCATTER_NONE;
    ag_status s = ag_scatter_add_check(backend, axis, y, index, src, &ax);
    if (s != AG_OK) return s;
    int32_t off;
    s = ag_offset32(backend, op, y, &off);
    if (s == AG_OK) s = ag_offset32(backend, op, index, &off);
    if (s == AG_OK) s = ag_offset32(backend, op, src, &off);
    if (s != AG_OK) return s;
    ag_view Y = as_1d(y), I = as_1d(index), S = as_1d(src);
    int nd = Y.ndim;
    int64_t L = I.shape[ax], size = Y.shape[ax];
    int32_t isa = (int32_t)I.stride[ax], ssa = (int32_t)S.stride[ax];
    int32_t ysa = (int32_t)Y.stride[ax];
    if (ag_view_numel(&I) == 0 || size == 0) return AG_OK;

    if (!ag_view_no_overlap(&Y)) {
        ag_view sm = reshaped(&S, I.shape, ax, false), ym = reshaped(&Y, I.shape, ax, true);
        const ag_view *v[3] = {&I, &sm, &ym};
        ag_scatter_serial_params *q = &p->serial;
        ag_strides32 st[3];
        *q = (ag_scatter_serial_params){.size = (int32_t)size, .ysa = ysa};
        s = ag_layout32(backend, op, 3, v, &q->sh, st);
        if (s != AG_OK) return s;
        q->is = st[0];
        q->ss = st[1];
        q->ys = st[2];
        p->path = AG_SCATTER_SERIAL;
        return AG_OK;
    }

    /* The region of y that index lines reach: the index's extent off the axis. */
    int64_t region[AG_MAX_DIMS], lshape[AG_MAX_DIMS], kstride[AG_MAX_DIMS];
    int64_t qstride[AG_MAX_DIMS], nR = 1, Q = 1;
    for (int d = 0; d < nd; d++) {
        region[d] = d == ax ? size : I.shape[d];
        lshape[d] = d == ax ? 1 : I.shape[d];
        kstride[d] = d == ax;
        nR *= region[d];
    }
    /* lines differing only where the index has stride 0 hold the same entries */
    ag_view qline = I;
    for (int d = nd - 1; d >= 0; d--) {
        bool kept = d != ax && I.stride[d] != 0 && I.shape[d] > 1;
        qstride[d] = kept ? Q : 0;
        if (kept) Q *= I.shape[d];
        else qline.shape[d] = 1;
    }
    int log_lp = ceil_log2(L);
    int64_t lp = (int64_t)1 << log_lp, total = Q * lp;
    /* operation counts; the sort's keys must stay int32-indexable and fit
     * what the backend can allocate and bind */
    bool scan = total > INT32_MAX || (uint64_t)total * sizeof(uint64_t) > max_key_bytes;
    if (!scan) {
        int64_t sort_cost =
            total * ((int64_t)log_lp * (log_lp + 1) / 2 + 1) + 2 * ag_view_numel(&I);
        scan = nR * L <= sort_cost + SCAN_OVERHEAD;
    }

    if (scan) {
        ag_view yr = reshaped(&Y, region, ax, false), sr = reshaped(&S, region, ax, true);
        ag_view kv = coord_view(nd, region, kstride), ir = reshaped(&I, region, ax, true);
        const ag_view *v[4] = {&yr, &ir, &sr, &kv};
        ag_scatter_scan_params *q = &p->scan;
        ag_strides32 st[4];
        *q = (ag_scatter_scan_params){.L = (int32_t)L, .isa = isa, .ssa = ssa};
        s = ag_layout32(backend, op, 4, v, &q->sh, st);
        if (s != AG_OK) return s;
        q->ys = st[0];
        q->is = st[1];
        q->ss = st[2];
        q->ks = st[3];
        p->path = AG_SCATTER_SCAN;
        return AG_OK;
    }

    /* one descriptor per line: the operands with the axis collapsed to 1 */
    ag_view yl = reshaped(&Y, lshape, ax, false), sl = reshaped(&S, lshape, ax, false);
    ag_view ql = coord_view(nd, lshape, qstride);
    const ag_view *v[3] = {&yl, &sl, &ql};
    const ag_view *qp = &qline;
    ag_scatter_runs_params *r = &p->sort.runs;
    ag_scatter_keys_params *k = &p->sort.keys;
    *r = (ag_scatter_runs_params){.L = (int32_t)L, .log_lp = log_lp, .size = (int32_t)size,
                                  .ysa = ysa, .ssa = ssa};
    *k = (ag_scatter_keys_params){.L = (int32_t)L, .log_lp = log_lp, .isa = isa,
                                  .size = (int32_t)size};
    ag_strides32 st[3];
    s = ag_layout32(backend, op, 3, v, &r->lsh, st);
    if (s == AG_OK) s = ag_layout32(backend, op, 1, &qp, &k->qsh, &k->qs);
    if (s != AG_OK) return s;
    r->ys = st[0];
    r->ss = st[1];
    r->qs = st[2];
    p->sort.total = total;
    p->sort.entries = ag_view_numel(&I);
    p->path = AG_SCATTER_SORT;
    return AG_OK;
}
