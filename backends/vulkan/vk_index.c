/* gather and scatter_add along one axis (torch semantics) on views with any
 * strides; semantics and checks follow backends/cpu/cpu_index.c.
 *
 * scatter_add is deterministic without float atomics: every element of y is
 * owned by one invocation that adds its terms in position order along the axis,
 * the CPU's order, so the two backends agree bit for bit. Two ways to find the
 * terms (shaders/index_*.comp):
 *  - scan: each element of y reads all L index entries of its line. Cost
 *    O(size_y_axis * L) per line: fine for small L (gather's gradient with a
 *    few picks per row), quadratic for embedding-like cases;
 *  - sort: each distinct index line is bitonic-sorted by (target, position),
 *    O(L log^2 L), then the first entry of each run of equal targets adds
 *    the run to its element of y: O(index elements) in all. Embedding's
 *    gradient (one index line shared by every column) costs one sort. A run
 *    is added serially by one invocation (the CPU's order), so a target hit
 *    very often is a long serial sum; columns still run in parallel.
 * The host picks the cheaper by an operation count. */
#include "vk.h"

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

/* Laid out as Params in shaders/index_gather.comp. */
typedef struct gather_params {
    vk_shape sh;
    vk_strides ys, is, xs;
    int32_t size, xsa;
} gather_params;

ag_status vk_gather(void *ctx, int axis, const ag_view *y, const ag_view *x, const ag_view *index)
{
    if (!view_ok(y) || !view_ok(x) || !view_ok(index))
        return ag_set_error(AG_ERR_ARG, "vulkan gather: invalid view");
    if (index->dtype != AG_I32 || x->dtype != y->dtype ||
        (x->dtype != AG_F32 && x->dtype != AG_I32))
        return ag_set_error(AG_ERR_DTYPE, "vulkan gather: expected int32 index and matching "
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
                            "vulkan gather: axis %d, input %s, index %s, output %s: index and "
                            "output need the input's rank, equal shapes and no larger size off "
                            "the axis",
                            axis, sx, si, sy);
    }
    ag_view X = as_1d(x), Y = as_1d(y), I = as_1d(index);
    /* x at the index's positions, its axis offset added from the index value */
    ag_view xm = reshaped(&X, I.shape, ax, true);
    const ag_view *v[3] = {&Y, &I, &xm};
    gather_params p;
    vk_strides st[3];
    int32_t xoff;
    ag_status s = ag_offset32("vulkan", "gather", x, &xoff); /* x's whole extent fits int32 */
    if (s == AG_OK) s = ag_layout32("vulkan", "gather", 3, v, &p.sh, st);
    if (s != AG_OK) return s;
    p.ys = st[0];
    p.is = st[1];
    p.xs = st[2];
    p.size = (int32_t)X.shape[ax];
    p.xsa = (int32_t)X.stride[ax];
    return vk_run1(ctx, "index_gather", &p, sizeof p, VK_BUFS(y->buf, index->buf, x->buf),
                   (size_t)p.sh.numel);
}

static int ceil_log2(int64_t n)
{
    int k = 0;
    while (((int64_t)1 << k) < n) k++;
    return k;
}

/* Laid out as Params in shaders/index_bitonic_*.comp. */
typedef struct bitonic_local_params {
    int32_t lp, k_only, groups;
} bitonic_local_params;
typedef struct bitonic_global_params {
    int32_t pairs, lp, k, j;
} bitonic_global_params;

/* Per dispatch dimension, the count every device allows. */
#define MAX_GROUPS 65535u

static ag_status bitonic_local(vk_ctx *c, ag_buffer *keys, uint32_t w, int64_t lp, int k_only,
                               int64_t total)
{
    int64_t groups = total / (2 * (int64_t)w);
    bitonic_local_params p = {.lp = (int32_t)lp, .k_only = k_only, .groups = (int32_t)groups};
    /* past 65535 groups continue in y */
    size_t gy = ((size_t)groups + MAX_GROUPS - 1) / MAX_GROUPS, gx = ((size_t)groups + gy - 1) / gy;
    uint32_t spec[1] = {w};
    return vk_dispatch(c, "index_bitonic_local", spec, 1, &p, sizeof p, VK_BUFS(keys),
                       (uint32_t)gx, (uint32_t)gy, 1);
}

/* Bitonic sort of each Lp-long line of keys[0, total). */
static ag_status sort_lines(vk_ctx *c, ag_buffer *keys, int64_t total, int log_lp)
{
    int64_t lp = (int64_t)1 << log_lp;
    if (lp < 2) return AG_OK;
    uint32_t w = vk_reduce_wg(c);
    if ((int64_t)w > lp / 2) w = (uint32_t)(lp / 2);
    int64_t chunk = 2 * (int64_t)w;
    ag_status s = bitonic_local(c, keys, w, lp, -1, total);
    for (int64_t k = 2 * chunk; s == AG_OK && k <= lp; k *= 2) {
        for (int64_t j = k / 2; s == AG_OK && j >= chunk; j /= 2) {
            bitonic_global_params g = {.pairs = (int32_t)(total / 2), .lp = (int32_t)lp,
                                       .k = (int32_t)k, .j = (int32_t)j};
            s = vk_run1(c, "index_bitonic_global", &g, sizeof g, VK_BUFS(keys),
                        (size_t)(total / 2));
        }
        if (s == AG_OK) s = bitonic_local(c, keys, w, lp, (int)k, total);
    }
    return s;
}

/* Laid out as Params in the shaders/index_scatter_*.comp they are named after. */
typedef struct scatter_serial_params {
    vk_shape sh;
    vk_strides is, ss, ys;
    int32_t size, ysa;
} scatter_serial_params;
typedef struct scatter_scan_params {
    vk_shape sh;
    vk_strides ys, is, ss, ks;
    int32_t L, isa, ssa;
} scatter_scan_params;
typedef struct scatter_keys_params {
    vk_shape qsh;
    vk_strides qs;
    int32_t L, log_lp, isa, size;
} scatter_keys_params;
typedef struct scatter_runs_params {
    vk_shape lsh;
    vk_strides ys, ss, qs;
    int32_t L, log_lp, size, ysa, ssa;
} scatter_runs_params;

ag_status vk_scatter_add(void *ctx, int axis, const ag_view *y, const ag_view *index,
                         const ag_view *src)
{
    vk_ctx *c = ctx;
    if (!view_ok(y) || !view_ok(src) || !view_ok(index))
        return ag_set_error(AG_ERR_ARG, "vulkan scatter_add: invalid view");
    if (index->dtype != AG_I32 || y->dtype != AG_F32 || src->dtype != AG_F32)
        return ag_set_error(AG_ERR_DTYPE, "vulkan scatter_add: expected int32 index and f32 data");
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
                            "vulkan scatter_add: axis %d, output %s, index %s, source %s: all "
                            "need the same rank, index no larger than source, nor than output "
                            "off the axis",
                            axis, sy, si, ss);
    }
    int32_t off;
    ag_status s = ag_offset32("vulkan", "scatter_add", y, &off);
    if (s == AG_OK) s = ag_offset32("vulkan", "scatter_add", index, &off);
    if (s == AG_OK) s = ag_offset32("vulkan", "scatter_add", src, &off);
    if (s != AG_OK) return s;
    ag_view Y = as_1d(y), I = as_1d(index), S = as_1d(src);
    int nd = Y.ndim;
    int64_t L = I.shape[ax], size = Y.shape[ax];
    int32_t isa = (int32_t)I.stride[ax], ssa = (int32_t)S.stride[ax];
    int32_t ysa = (int32_t)Y.stride[ax];
    if (ag_view_numel(&I) == 0 || size == 0) return AG_OK;

    if (!no_overlap(&Y)) {
        ag_view sm = reshaped(&S, I.shape, ax, false), ym = reshaped(&Y, I.shape, ax, true);
        const ag_view *v[3] = {&I, &sm, &ym};
        scatter_serial_params p = {.size = (int32_t)size, .ysa = ysa};
        vk_strides st[3];
        s = ag_layout32("vulkan", "scatter_add", 3, v, &p.sh, st);
        if (s != AG_OK) return s;
        p.is = st[0];
        p.ss = st[1];
        p.ys = st[2];
        return vk_run1(c, "index_scatter_serial", &p, sizeof p,
                       VK_BUFS(y->buf, index->buf, src->buf), 1);
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
    /* operation counts; the sort's keys must stay int32-indexable and fit one
     * buffer binding */
    uint64_t key_bytes = (uint64_t)total * 2 * sizeof(uint32_t);
    bool scan = total > INT32_MAX || key_bytes > c->max_alloc ||
                key_bytes > c->props.limits.maxStorageBufferRange;
    if (!scan) {
        int64_t sort_cost =
            total * ((int64_t)log_lp * (log_lp + 1) / 2 + 1) + 2 * ag_view_numel(&I);
        scan = nR * L <= sort_cost + SCAN_OVERHEAD;
    }

    if (scan) {
        ag_view yr = reshaped(&Y, region, ax, false), sr = reshaped(&S, region, ax, true);
        ag_view kv = coord_view(nd, region, kstride), ir = reshaped(&I, region, ax, true);
        const ag_view *v[4] = {&yr, &ir, &sr, &kv};
        scatter_scan_params p = {.L = (int32_t)L, .isa = isa, .ssa = ssa};
        vk_strides st[4];
        s = ag_layout32("vulkan", "scatter_add", 4, v, &p.sh, st);
        if (s != AG_OK) return s;
        p.ys = st[0];
        p.is = st[1];
        p.ss = st[2];
        p.ks = st[3];
        return vk_run1(c, "index_scatter_scan", &p, sizeof p,
                       VK_BUFS(y->buf, index->buf, src->buf), (size_t)p.sh.numel);
    }

    /* one descriptor per line: the operands with the axis collapsed to 1 */
    ag_view yl = reshaped(&Y, lshape, ax, false), sl = reshaped(&S, lshape, ax, false);
    ag_view ql = coord_view(nd, lshape, qstride);
    const ag_view *v[3] = {&yl, &sl, &ql};
    const ag_view *qp = &qline;
    scatter_runs_params r = {.L = (int32_t)L, .log_lp = log_lp, .size = (int32_t)size,
                             .ysa = ysa, .ssa = ssa};
    scatter_keys_params k = {.L = (int32_t)L, .log_lp = log_lp, .isa = isa, .size = (int32_t)size};
    vk_strides st[3];
    s = ag_layout32("vulkan", "scatter_add", 3, v, &r.lsh, st);
    if (s == AG_OK) s = ag_layout32("vulkan", "scatter_add", 1, &qp, &k.qsh, &k.qs);
    if (s != AG_OK) return s;
    r.ys = st[0];
    r.ss = st[1];
    r.qs = st[2];
    ag_buffer *keys = vk_alloc(c, (size_t)key_bytes);
    if (!keys) return ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    s = vk_run1(c, "index_scatter_keys", &k, sizeof k, VK_BUFS(index->buf, keys), (size_t)total);
    if (s == AG_OK) s = sort_lines(c, keys, total, log_lp);
    if (s == AG_OK)
        s = vk_run1(c, "index_scatter_runs", &r, sizeof r, VK_BUFS(y->buf, src->buf, keys),
                    (size_t)ag_view_numel(&I));
    /* later work that reuses the range runs after these dispatches (each one
     * waits for the one before it) */
    vk_free(c, keys);
    return s;
}
