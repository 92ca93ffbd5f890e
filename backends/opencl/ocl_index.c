/* gather and scatter_add along one axis (torch semantics) on views with any
 * strides; semantics and checks follow backends/cpu/cpu_index.c.
 *
 * scatter_add is deterministic without float atomics: every element of y is
 * owned by one work-item that adds its terms in position order along the axis,
 * the CPU's order, so the two backends agree bit for bit. Two ways to find the
 * terms (kernels/index.cl):
 *  - scan: each element of y reads all L index entries of its line. Cost
 *    O(size_y_axis * L) per line: fine for small L (gather's gradient with a
 *    few picks per row), quadratic for embedding-like cases;
 *  - sort: each distinct index line is bitonic-sorted by (target, position),
 *    O(L log^2 L), then the first entry of each run of equal targets adds
 *    the run to its element of y: O(index elements) in all. Embedding's
 *    gradient (one index line shared by every column) costs one sort. A run
 *    is added serially by one work-item (the CPU's order), so a target hit
 *    very often is a long serial sum; columns still run in parallel.
 * The host picks the cheaper by an operation count. */
#include "ocl.h"

/* Below this many operations the scan wins whatever the counts say: the sort
 * needs a buffer and several launches. */
#define SCAN_OVERHEAD ((int64_t)1 << 20)

static int norm_axis(int axis, int ndim)
{
    int n = ndim ? ndim : 1;
    if (axis < 0) axis += n;
    return axis >= 0 && axis < n ? axis : -1;
}

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
 * its coordinates (descriptor-only: ocl_ew_layout reads no buffer). */
static ag_view coord_view(int ndim, const int64_t *shape, const int64_t *stride)
{
    ag_view r = {.buf = NULL, .offset = 0, .dtype = AG_I32, .ndim = ndim};
    for (int d = 0; d < ndim; d++) {
        r.shape[d] = shape[d];
        r.stride[d] = stride[d];
    }
    return r;
}

/* No two positions of v share an element (sufficient test: strides sorted,
 * each step over the whole extent of the smaller ones). */
static bool no_overlap(const ag_view *v)
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

static bool view_ok(const ag_view *v)
{
    return v && v->buf && v->ndim >= 0 && v->ndim <= AG_MAX_DIMS;
}

ag_status ocl_gather(void *ctx, int axis, const ag_view *y, const ag_view *x, const ag_view *index)
{
    if (!view_ok(y) || !view_ok(x) || !view_ok(index))
        return ag_set_error(AG_ERR_ARG, "opencl gather: invalid view");
    if (index->dtype != AG_I32 || x->dtype != y->dtype ||
        (x->dtype != AG_F32 && x->dtype != AG_I32))
        return ag_set_error(AG_ERR_DTYPE, "opencl gather: expected int32 index and matching "
                                          "f32/int32 input and output");
    int ax = norm_axis(axis, x->ndim);
    bool ok = ax >= 0 && index->ndim == x->ndim && y->ndim == x->ndim;
    for (int d = 0; ok && d < x->ndim; d++)
        ok = y->shape[d] == index->shape[d] && (d == ax || index->shape[d] <= x->shape[d]);
    if (!ok) {
        char sx[96], si[96], sy[96];
        ag_view_shape_str(x, sx, sizeof sx);
        ag_view_shape_str(index, si, sizeof si);
        ag_view_shape_str(y, sy, sizeof sy);
        return ag_set_error(AG_ERR_SHAPE,
                            "opencl gather: axis %d, input %s, index %s, output %s: index and "
                            "output need the input's rank, equal shapes and no larger size off "
                            "the axis",
                            axis, sx, si, sy);
    }
    ag_view X = as_1d(x), Y = as_1d(y), I = as_1d(index);
    /* x at the index's positions, its axis offset added from the index value */
    ag_view xm = reshaped(&X, I.shape, ax, true);
    const ag_view *v[3] = {&Y, &I, &xm};
    ocl_shape sh;
    ocl_strides st[3];
    cl_int xoff;
    ag_status s = ocl_offset("gather", x, &xoff); /* x's whole extent fits int32 */
    if (s == AG_OK) s = ocl_ew_layout("gather", 3, v, &sh, st);
    if (s != AG_OK) return s;
    cl_int size = (cl_int)X.shape[ax], xsa = (cl_int)X.stride[ax];
    return ocl_run1(ctx, "index", "gather_axis", (size_t)sh.numel,
                    OCL_ARGS(OA(sh), OA(st[0]), OA(st[1]), OA(st[2]), OA(size), OA(xsa),
                             OA(y->buf->mem), OA(index->buf->mem), OA(x->buf->mem)));
}

static int ceil_log2(int64_t n)
{
    int k = 0;
    while (((int64_t)1 << k) < n) k++;
    return k;
}

/* Bitonic sort of each Lp-long line of keys[0, total). */
static ag_status sort_lines(ocl_ctx *c, cl_mem keys, int64_t total, int log_lp)
{
    int64_t lp = (int64_t)1 << log_lp;
    if (lp < 2) return AG_OK;
    size_t w = ocl_reduce_wg(c);
    if ((int64_t)w > lp / 2) w = (size_t)(lp / 2);
    int64_t chunk = 2 * (int64_t)w;
    size_t groups = (size_t)(total / chunk);
    cl_int clp = (cl_int)lp, all = -1, pairs = (cl_int)(total / 2);
    ag_status s = ocl_run_groups(c, "index", "bitonic_local", groups, w,
                                 OCL_ARGS(OA(clp), OA(all), OA(keys),
                                          OA_LOCAL((size_t)chunk * sizeof(cl_ulong))));
    for (int64_t k = 2 * chunk; s == AG_OK && k <= lp; k *= 2) {
        cl_int ck = (cl_int)k;
        for (int64_t j = k / 2; s == AG_OK && j >= chunk; j /= 2) {
            cl_int cj = (cl_int)j;
            s = ocl_run1(c, "index", "bitonic_global", (size_t)pairs,
                         OCL_ARGS(OA(pairs), OA(clp), OA(ck), OA(cj), OA(keys)));
        }
        if (s == AG_OK)
            s = ocl_run_groups(c, "index", "bitonic_local", groups, w,
                               OCL_ARGS(OA(clp), OA(ck), OA(keys),
                                        OA_LOCAL((size_t)chunk * sizeof(cl_ulong))));
    }
    return s;
}

ag_status ocl_scatter_add(void *ctx, int axis, const ag_view *y, const ag_view *index,
                          const ag_view *src)
{
    ocl_ctx *c = ctx;
    if (!view_ok(y) || !view_ok(src) || !view_ok(index))
        return ag_set_error(AG_ERR_ARG, "opencl scatter_add: invalid view");
    if (index->dtype != AG_I32 || y->dtype != AG_F32 || src->dtype != AG_F32)
        return ag_set_error(AG_ERR_DTYPE, "opencl scatter_add: expected int32 index and f32 data");
    int ax = norm_axis(axis, y->ndim);
    bool ok = ax >= 0 && index->ndim == y->ndim && src->ndim == y->ndim;
    for (int d = 0; ok && d < y->ndim; d++)
        ok = index->shape[d] <= src->shape[d] && (d == ax || index->shape[d] <= y->shape[d]);
    if (!ok) {
        char ss[96], si[96], sy[96];
        ag_view_shape_str(src, ss, sizeof ss);
        ag_view_shape_str(index, si, sizeof si);
        ag_view_shape_str(y, sy, sizeof sy);
        return ag_set_error(AG_ERR_SHAPE,
                            "opencl scatter_add: axis %d, output %s, index %s, source %s: all "
                            "need the same rank, index no larger than source, nor than output "
                            "off the axis",
                            axis, sy, si, ss);
    }
    cl_int off;
    ag_status s = ocl_offset("scatter_add", y, &off);
    if (s == AG_OK) s = ocl_offset("scatter_add", index, &off);
    if (s == AG_OK) s = ocl_offset("scatter_add", src, &off);
    if (s != AG_OK) return s;
    ag_view Y = as_1d(y), I = as_1d(index), S = as_1d(src);
    int nd = Y.ndim;
    int64_t L = I.shape[ax], size = Y.shape[ax];
    cl_int cL = (cl_int)L, csize = (cl_int)size, isa = (cl_int)I.stride[ax];
    cl_int ssa = (cl_int)S.stride[ax];
    if (ocl_numel(&I) == 0 || size == 0) return AG_OK;

    if (!no_overlap(&Y)) {
        ag_view sm = reshaped(&S, I.shape, ax, false), ym = reshaped(&Y, I.shape, ax, true);
        const ag_view *v[3] = {&I, &sm, &ym};
        ocl_shape sh;
        ocl_strides st[3];
        s = ocl_ew_layout("scatter_add", 3, v, &sh, st);
        if (s != AG_OK) return s;
        cl_int ysa = (cl_int)Y.stride[ax];
        size_t one = 1;
        return ocl_run(c, "index", "scatter_serial", 1, &one, &one,
                       OCL_ARGS(OA(sh), OA(st[0]), OA(st[1]), OA(st[2]), OA(csize), OA(ysa),
                                OA(y->buf->mem), OA(index->buf->mem), OA(src->buf->mem)));
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
    /* operation counts: the sort's keys must stay int32-indexable */
    bool scan = total > INT32_MAX;
    if (!scan) {
        int64_t sort_cost = total * ((int64_t)log_lp * (log_lp + 1) / 2 + 1) + 2 * ocl_numel(&I);
        scan = nR * L <= sort_cost + SCAN_OVERHEAD;
    }

    if (scan) {
        ag_view yr = reshaped(&Y, region, ax, false), sr = reshaped(&S, region, ax, true);
        ag_view kv = coord_view(nd, region, kstride), ir = reshaped(&I, region, ax, true);
        const ag_view *v[4] = {&yr, &ir, &sr, &kv};
        ocl_shape sh;
        ocl_strides st[4];
        s = ocl_ew_layout("scatter_add", 4, v, &sh, st);
        if (s != AG_OK) return s;
        return ocl_run1(c, "index", "scatter_scan", (size_t)sh.numel,
                        OCL_ARGS(OA(sh), OA(st[0]), OA(st[1]), OA(st[2]), OA(st[3]), OA(cL),
                                 OA(isa), OA(ssa), OA(y->buf->mem), OA(index->buf->mem),
                                 OA(src->buf->mem)));
    }

    /* one descriptor per line: the operands with the axis collapsed to 1 */
    ag_view yl = reshaped(&Y, lshape, ax, false), sl = reshaped(&S, lshape, ax, false);
    ag_view ql = coord_view(nd, lshape, qstride);
    const ag_view *v[3] = {&yl, &sl, &ql};
    const ag_view *qp = &qline;
    ocl_shape lsh, qsh;
    ocl_strides st[3], qs;
    s = ocl_ew_layout("scatter_add", 3, v, &lsh, st);
    if (s == AG_OK) s = ocl_ew_layout("scatter_add", 1, &qp, &qsh, &qs);
    if (s != AG_OK) return s;
    ag_buffer *keys = ocl_alloc(c, (size_t)total * sizeof(cl_ulong));
    if (!keys) return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    cl_int clog = log_lp, ysa = (cl_int)Y.stride[ax];
    s = ocl_run1(c, "index", "scatter_keys", (size_t)total,
                 OCL_ARGS(OA(qsh), OA(qs), OA(cL), OA(clog), OA(isa), OA(csize),
                          OA(index->buf->mem), OA(keys->mem)));
    if (s == AG_OK) s = sort_lines(c, keys->mem, total, log_lp);
    if (s == AG_OK)
        s = ocl_run1(c, "index", "scatter_runs", (size_t)ocl_numel(&I),
                     OCL_ARGS(OA(lsh), OA(st[0]), OA(st[1]), OA(st[2]), OA(cL), OA(clog),
                              OA(csize), OA(ysa), OA(ssa), OA(y->buf->mem), OA(src->buf->mem),
                              OA(keys->mem)));
    /* the driver keeps the buffer until the queued kernels are done with it */
    ocl_free(c, keys);
    return s;
}
