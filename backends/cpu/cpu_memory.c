/* Host buffers, transfers, strided copy (converting between f32, i32 and u8) and fill. */
#include "cpu.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CPU_ALIGN 64
/* Below this many elements a copy or fill is not worth waking threads for. */
#define CPU_MEM_PAR_MIN (1 << 16)

/* Freed buffers are kept by size and handed out again: a training step
 * allocates the same sizes every iteration, and fresh memory from the OS costs a
 * page fault per 4 KiB (a quarter of a small MLP step). Bounded by
 * AG_CPU_CACHE_MB (default 512; 0 disables), buffers over an eighth of it
 * never kept. */
#define CACHE_BUCKETS 64
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static ag_buffer *cache[CACHE_BUCKETS];
static size_t cache_bytes;

static size_t limit_bytes;
static void cache_limit_read(void)
{
    const char *s = getenv("AG_CPU_CACHE_MB");
    char *end;
    long v = s && *s ? strtol(s, &end, 10) : -1;
    if (v < 0 || !s || *end != '\0') v = 512;
    limit_bytes = (size_t)v << 20;
}

/* read once: getenv on every free was a few percent of a small op */
static size_t cache_limit(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, cache_limit_read);
    return limit_bytes;
}

static ag_buffer *cache_take(size_t cap)
{
    ag_buffer *hit = NULL;
    pthread_mutex_lock(&cache_lock);
    for (ag_buffer **p = &cache[(cap / CPU_ALIGN) % CACHE_BUCKETS]; *p; p = &(*p)->next)
        if ((*p)->cap == cap) {
            hit = *p;
            *p = hit->next;
            cache_bytes -= cap;
            break;
        }
    pthread_mutex_unlock(&cache_lock);
    return hit;
}

static bool cache_put(ag_buffer *buf)
{
    bool kept = false;
    size_t limit = cache_limit();
    pthread_mutex_lock(&cache_lock);
    /* a buffer over an eighth of the cache (a data set, an evaluation's big
     * batch) is rarely wanted again at that size: it goes back to the OS */
    if (buf->cap <= limit / 8 && cache_bytes + buf->cap <= limit) {
        ag_buffer **head = &cache[(buf->cap / CPU_ALIGN) % CACHE_BUCKETS];
        buf->next = *head;
        *head = buf;
        cache_bytes += buf->cap;
        kept = true;
    }
    pthread_mutex_unlock(&cache_lock);
    return kept;
}

ag_buffer *cpu_alloc(void *ctx, size_t bytes)
{
    (void)ctx;
    /* round up so every buffer, even an empty one, is a real aligned block */
    size_t size = bytes ? bytes : 1;
    if (size > SIZE_MAX - (CPU_ALIGN - 1)) {
        ag_set_error(AG_ERR_OOM, "cpu alloc: cannot allocate %zu bytes", bytes);
        return NULL;
    }
    size = (size + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    ag_buffer *buf = cache_take(size);
    if (buf) {
        buf->bytes = bytes;
        return buf;
    }
    buf = malloc(sizeof *buf);
    void *data = NULL;
    if (!buf || posix_memalign(&data, CPU_ALIGN, size) != 0) {
        free(buf);
        ag_set_error(AG_ERR_OOM, "cpu alloc: out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    buf->data = data;
    buf->bytes = bytes;
    buf->cap = size;
    buf->next = NULL;
    return buf;
}

void cpu_free(void *ctx, ag_buffer *buf)
{
    (void)ctx;
    if (!buf || cache_put(buf)) return;
    free(buf->data);
    free(buf);
}

static ag_status check_range(const char *op, const ag_buffer *buf, size_t off, const void *host,
                             size_t bytes)
{
    if (!buf) return ag_set_error(AG_ERR_ARG, "cpu %s: NULL buffer", op);
    if (!host && bytes) return ag_set_error(AG_ERR_ARG, "cpu %s: NULL host pointer", op);
    if (off > buf->bytes || bytes > buf->bytes - off)
        return ag_set_error(AG_ERR_ARG,
                            "cpu %s: range [%zu, %zu + %zu) outside a buffer of %zu bytes", op,
                            off, off, bytes, buf->bytes);
    return AG_OK;
}

ag_status cpu_upload(void *ctx, ag_buffer *dst, size_t off, const void *src, size_t bytes)
{
    (void)ctx;
    ag_status s = check_range("upload", dst, off, src, bytes);
    if (s != AG_OK) return s;
    if (bytes) memcpy((char *)dst->data + off, src, bytes);
    return AG_OK;
}

ag_status cpu_download(void *ctx, ag_buffer *src, size_t off, void *dst, size_t bytes)
{
    (void)ctx;
    ag_status s = check_range("download", src, off, dst, bytes);
    if (s != AG_OK) return s;
    if (bytes) memcpy(dst, (const char *)src->data + off, bytes);
    return AG_OK;
}

ag_status cpu_sync(void *ctx)
{
    (void)ctx;
    return AG_OK;
}

/* ---- row-major walk over one strided view ---------------------------------- */

/* Walks a view's elements in row-major order as runs along its innermost axis,
 * after merging axes that are laid out as one (so dense views are one run). */
typedef struct walk {
    int nd;
    int64_t shape[AG_MAX_DIMS], stride[AG_MAX_DIMS], idx[AG_MAX_DIMS];
    int64_t off;
} walk;

static int64_t iabs64(int64_t v) { return v < 0 ? -v : v; }

/* storage_order: visit axes from the largest stride to the smallest, for walks
 * whose order does not matter (fill), so a transposed view still runs densely. */
static void walk_init(walk *w, const ag_view *v, bool storage_order)
{
    int order[AG_MAX_DIMS];
    for (int d = 0; d < v->ndim; d++) {
        int q = d;
        /* insertion sort, stable so equal strides keep their order */
        while (storage_order && q > 0 && iabs64(v->stride[order[q - 1]]) < iabs64(v->stride[d])) {
            order[q] = order[q - 1];
            q--;
        }
        order[q] = d;
    }
    int nd = 0;
    for (int q = 0; q < v->ndim; q++) {
        int d = order[q];
        if (v->shape[d] == 1) continue;
        if (nd > 0 && w->stride[nd - 1] == v->stride[d] * v->shape[d]) {
            w->shape[nd - 1] *= v->shape[d];
            w->stride[nd - 1] = v->stride[d];
        } else {
            w->shape[nd] = v->shape[d];
            w->stride[nd] = v->stride[d];
            nd++;
        }
    }
    if (nd == 0) {
        w->shape[0] = 1;
        w->stride[0] = 1;
        nd = 1;
    }
    w->nd = nd;
}

static void walk_seek(walk *w, int64_t pos)
{
    w->off = 0;
    for (int d = w->nd - 1; d >= 0; d--) {
        w->idx[d] = pos % w->shape[d];
        pos /= w->shape[d];
        w->off += w->idx[d] * w->stride[d];
    }
}

/* Elements left in the current run. */
static inline int64_t walk_run(const walk *w) { return w->shape[w->nd - 1] - w->idx[w->nd - 1]; }

/* Moves n <= walk_run() elements forward. */
static void walk_advance(walk *w, int64_t n)
{
    int d = w->nd - 1;
    w->idx[d] += n;
    w->off += n * w->stride[d];
    while (d > 0 && w->idx[d] == w->shape[d]) {
        w->off -= w->shape[d] * w->stride[d];
        w->idx[d] = 0;
        d--;
        w->idx[d]++;
        w->off += w->stride[d];
    }
}

/* ---- copy ------------------------------------------------------------------ */

/* Same-shape copies run through cpu_ew_map2 (cpu_elementwise.c), whose
 * iterator tiles transposed layouts. */
typedef cpu_map2_fn copy_run_fn;

static void copy_same32(int64_t n, void *dst, int64_t ds, const void *src, int64_t ss)
{
    uint32_t *d = dst;
    const uint32_t *s = src;
    if (ds == 1 && ss == 1) {
        memcpy(d, s, (size_t)n * sizeof *d);
        return;
    }
    for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss];
}

static void copy_same8(int64_t n, void *dst, int64_t ds, const void *src, int64_t ss)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (ds == 1 && ss == 1) {
        memcpy(d, s, (size_t)n);
        return;
    }
    for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss];
}

/* Truncation toward zero; NaN becomes 0 and out-of-range values saturate, where a
 * plain C cast would be undefined. */
static inline int32_t f32_to_i32(float v)
{
    if (v != v) return 0;
    if (v >= 2147483648.0f) return INT32_MAX;
    if (v <= -2147483648.0f) return INT32_MIN;
    return (int32_t)v;
}

static inline uint8_t f32_to_u8(float v) { return v >= 255.0f ? 255 : v > 0.0f ? (uint8_t)v : 0; }
static inline uint8_t i32_to_u8(int32_t v) { return v >= 255 ? 255 : v > 0 ? (uint8_t)v : 0; }

/* One strided conversion loop per pair of element types. */
#define CONVERT(name, D, S, expr)                                                  \
    static void name(int64_t n, void *dst, int64_t ds, const void *src, int64_t ss) \
    {                                                                              \
        D *d = dst;                                                                \
        const S *s = src;                                                          \
        for (int64_t i = 0; i < n; i++) {                                          \
            const S v = s[i * ss];                                                 \
            d[i * ds] = (expr);                                                    \
        }                                                                          \
    }
CONVERT(copy_i32_to_f32, float, int32_t, (float)v)
CONVERT(copy_f32_to_i32, int32_t, float, f32_to_i32(v))
CONVERT(copy_u8_to_f32, float, uint8_t, (float)v)
CONVERT(copy_u8_to_i32, int32_t, uint8_t, (int32_t)v)
CONVERT(copy_f32_to_u8, uint8_t, float, f32_to_u8(v))
CONVERT(copy_i32_to_u8, uint8_t, int32_t, i32_to_u8(v))
#undef CONVERT

/* indexed [dst dtype][src dtype]; NULL: not supported (f16 and bf16 name file
 * types only) */
static const copy_run_fn copy_runs[AG_U8 + 1][AG_U8 + 1] = {
    [AG_F32] = {[AG_F32] = copy_same32, [AG_I32] = copy_i32_to_f32, [AG_U8] = copy_u8_to_f32},
    [AG_I32] = {[AG_F32] = copy_f32_to_i32, [AG_I32] = copy_same32, [AG_U8] = copy_u8_to_i32},
    [AG_U8] = {[AG_F32] = copy_f32_to_u8, [AG_I32] = copy_i32_to_u8, [AG_U8] = copy_same8},
};

static bool copy_ok(ag_dtype dst, ag_dtype src)
{
    return (unsigned)dst <= AG_U8 && (unsigned)src <= AG_U8 && copy_runs[dst][src];
}

static bool dtype_ok(ag_dtype dt) { return dt == AG_F32 || dt == AG_I32; }

static bool view_ok(const ag_view *v) { return v && v->buf && v->ndim >= 0 && v->ndim <= AG_MAX_DIMS; }

/* Copies flat positions [begin, end) of both views' row-major orders. */
static void copy_range(const ag_view *dst, const ag_view *src, int64_t begin, int64_t end)
{
    walk wd, ws;
    walk_init(&wd, dst, false);
    walk_init(&ws, src, false);
    walk_seek(&wd, begin);
    walk_seek(&ws, begin);
    copy_run_fn run = copy_runs[dst->dtype][src->dtype];
    char *db = dst->buf->data;
    const char *sb = src->buf->data;
    const int64_t de = (int64_t)ag_dtype_size(dst->dtype), se = (int64_t)ag_dtype_size(src->dtype);
    for (int64_t pos = begin; pos < end;) {
        int64_t n = walk_run(&wd);
        int64_t ns = walk_run(&ws);
        if (ns < n) n = ns;
        if (end - pos < n) n = end - pos;
        run(n, db + (dst->offset + wd.off) * de, wd.stride[wd.nd - 1],
            sb + (src->offset + ws.off) * se, ws.stride[ws.nd - 1]);
        pos += n;
        if (pos < end) {
            walk_advance(&wd, n);
            walk_advance(&ws, n);
        }
    }
}

/* Same shapes copy element by element (through the element-wise iterator);
 * differing shapes with the same element count copy in row-major order (what a
 * reshape of a strided view needs). */
ag_status cpu_copy(void *ctx, const ag_view *dst, const ag_view *src)
{
    (void)ctx;
    if (!view_ok(dst) || !view_ok(src)) return ag_set_error(AG_ERR_ARG, "cpu copy: invalid view");
    if (!copy_ok(dst->dtype, src->dtype))
        return ag_set_error(AG_ERR_DTYPE, "cpu copy: %s to %s is not supported",
                            ag_dtype_name(src->dtype), ag_dtype_name(dst->dtype));
    int64_t n = ag_view_numel(dst);
    if (ag_view_numel(src) != n)
        return ag_set_error(AG_ERR_SHAPE, "cpu copy: %lld elements into %lld",
                            (long long)ag_view_numel(src), (long long)n);
    if (n == 0) return AG_OK;
    bool same = dst->ndim == src->ndim;
    for (int d = 0; same && d < dst->ndim; d++) same = dst->shape[d] == src->shape[d];
    if (same) {
        cpu_ew_map2(dst, src, copy_runs[dst->dtype][src->dtype]);
        return AG_OK;
    }
    int nt = n >= CPU_MEM_PAR_MIN ? cpu_threads() : 1;
    if (nt > 1) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (int t = 0; t < nt; t++) copy_range(dst, src, n * t / nt, n * (t + 1) / nt);
    } else {
        copy_range(dst, src, 0, n);
    }
    return AG_OK;
}

/* ---- fill ------------------------------------------------------------------ */

static void fill_range(const ag_view *dst, uint32_t bits, int64_t begin, int64_t end)
{
    walk w;
    walk_init(&w, dst, true);
    walk_seek(&w, begin);
    uint32_t *base = (uint32_t *)dst->buf->data + dst->offset;
    for (int64_t pos = begin; pos < end;) {
        int64_t n = walk_run(&w);
        if (end - pos < n) n = end - pos;
        uint32_t *p = base + w.off;
        int64_t s = w.stride[w.nd - 1];
        if (s == 1)
            for (int64_t i = 0; i < n; i++) p[i] = bits;
        else
            for (int64_t i = 0; i < n; i++) p[i * s] = bits;
        pos += n;
        if (pos < end) walk_advance(&w, n);
    }
}

ag_status cpu_fill(void *ctx, const ag_view *dst, double value)
{
    (void)ctx;
    if (!view_ok(dst)) return ag_set_error(AG_ERR_ARG, "cpu fill: invalid view");
    if (!dtype_ok(dst->dtype))
        return ag_set_error(AG_ERR_DTYPE, "cpu fill: %s is not supported",
                            ag_dtype_name(dst->dtype));
    /* both dtypes are 4 bytes: fill with the bit pattern of the converted value */
    uint32_t bits = ag_fill_bits(dst->dtype, value);
    int64_t n = ag_view_numel(dst);
    if (n == 0) return AG_OK;
    int nt = n >= CPU_MEM_PAR_MIN ? cpu_threads() : 1;
    if (nt > 1) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (int t = 0; t < nt; t++) fill_range(dst, bits, n * t / nt, n * (t + 1) / nt);
    } else {
        fill_range(dst, bits, 0, n);
    }
    return AG_OK;
}
