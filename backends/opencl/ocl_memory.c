/* Buffers, transfers, strided copy with f32 <-> i32 conversion, fill, sync. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ocl.h"

/* Freed buffers are kept by size class and handed out again: a training step
 * allocates the same sizes every iteration, and a driver allocation costs far
 * more than the kernels of a small step. Bounded by AG_OPENCL_CACHE_MB (default
 * a quarter of the device memory, at most 2048; 0 disables). */
static size_t size_class(size_t bytes)
{
    size_t b = bytes ? bytes : 4;
    return (b + 255) / 256 * 256;
}

static ag_buffer *cache_take(ocl_ctx *c, size_t cap)
{
    ag_buffer *hit = NULL;
    pthread_mutex_lock(&c->cache_lock);
    for (ag_buffer **p = &c->cache[(cap / 256) % OCL_CACHE_BUCKETS]; *p; p = &(*p)->next)
        if ((*p)->cap == cap) {
            hit = *p;
            *p = hit->next;
            c->cache_bytes -= cap;
            break;
        }
    pthread_mutex_unlock(&c->cache_lock);
    return hit;
}

void ocl_cache_flush(ocl_ctx *c)
{
    pthread_mutex_lock(&c->cache_lock);
    for (int i = 0; i < OCL_CACHE_BUCKETS; i++) {
        while (c->cache[i]) {
            ag_buffer *b = c->cache[i];
            c->cache[i] = b->next;
            ocl.clReleaseMemObject(b->mem);
            free(b);
        }
    }
    c->cache_bytes = 0;
    pthread_mutex_unlock(&c->cache_lock);
}

ag_buffer *ocl_alloc(void *ctx, size_t bytes)
{
    ocl_ctx *c = ctx;
    if (bytes > c->max_alloc) {
        ag_set_error(AG_ERR_OOM, "opencl alloc: %zu bytes exceed %s's largest allocation (%llu bytes)",
                     bytes, c->name, (unsigned long long)c->max_alloc);
        return NULL;
    }
    size_t cap = size_class(bytes);
    if (cap > c->max_alloc) cap = bytes; /* the class may not fit where the request does */
    ag_buffer *b = cache_take(c, cap);
    if (b) {
        b->bytes = bytes;
        return b;
    }
    b = malloc(sizeof *b);
    if (!b) {
        ag_set_error(AG_ERR_OOM, "opencl alloc: out of host memory");
        return NULL;
    }
    cl_int err;
    b->mem = ocl.clCreateBuffer(c->context, CL_MEM_READ_WRITE, cap, NULL, &err);
    if (err != CL_SUCCESS && c->cache_bytes) { /* give the cached buffers back and retry */
        ocl_cache_flush(c);
        b->mem = ocl.clCreateBuffer(c->context, CL_MEM_READ_WRITE, cap, NULL, &err);
    }
    if (err != CL_SUCCESS) {
        free(b);
        ocl_check(err == CL_INVALID_BUFFER_SIZE ? CL_MEM_OBJECT_ALLOCATION_FAILURE : err, "alloc");
        return NULL;
    }
    b->bytes = bytes;
    b->cap = cap;
    b->next = NULL;
    return b;
}

void ocl_free(void *ctx, ag_buffer *buf)
{
    ocl_ctx *c = ctx;
    if (!buf) return;
    pthread_mutex_lock(&c->cache_lock);
    bool keep = c->cache_bytes + buf->cap <= c->cache_limit;
    if (keep) {
        ag_buffer **head = &c->cache[(buf->cap / 256) % OCL_CACHE_BUCKETS];
        buf->next = *head;
        *head = buf;
        c->cache_bytes += buf->cap;
    }
    pthread_mutex_unlock(&c->cache_lock);
    if (keep) return;
    ocl.clReleaseMemObject(buf->mem); /* the driver keeps it alive for queued kernels */
    free(buf);
}

static ag_status check_range(const char *op, const ag_buffer *b, size_t off, const void *host, size_t bytes)
{
    if (!b || (!host && bytes)) return ag_set_error(AG_ERR_ARG, "opencl %s: NULL buffer or pointer", op);
    if (off > b->bytes || bytes > b->bytes - off)
        return ag_set_error(AG_ERR_ARG, "opencl %s: %zu bytes at offset %zu outside a %zu-byte buffer",
                            op, bytes, off, b->bytes);
    return AG_OK;
}

/* The caller may reuse its memory as soon as an upload returns. Uploads up to
 * ASYNC_UPLOAD_MAX are copied and written without waiting (a training step's
 * batch: on a discrete GPU a blocking write is a round trip the host sits
 * out); larger ones block rather than copy. At most PENDING_MAX bytes of
 * copies wait for a command that waits. */
#define ASYNC_UPLOAD_MAX ((size_t)4 << 20)
#define PENDING_MAX ((size_t)64 << 20)

typedef struct ocl_pending {
    struct ocl_pending *next;
    max_align_t data[]; /* the copy */
} ocl_pending;

void ocl_pending_release(ocl_ctx *c)
{
    while (c->pending) {
        ocl_pending *p = c->pending;
        c->pending = p->next;
        free(p);
    }
    c->pending_bytes = 0;
}

ag_status ocl_upload(void *ctx, ag_buffer *dst, size_t off, const void *src, size_t bytes)
{
    ocl_ctx *c = ctx;
    ag_status s = check_range("upload", dst, off, src, bytes);
    if (s != AG_OK || bytes == 0) return s;
    ocl_pending *p = bytes <= ASYNC_UPLOAD_MAX ? malloc(sizeof *p + bytes) : NULL;
    if (p) memcpy(p->data, src, bytes);
    pthread_mutex_lock(&c->lock);
    cl_int err = CL_SUCCESS;
    if (p && c->pending_bytes + bytes > PENDING_MAX) {
        err = ocl.clFinish(c->queue);
        ocl_count(OCL_STAT_WAIT);
        if (err == CL_SUCCESS) ocl_pending_release(c);
    }
    if (p && err == CL_SUCCESS) {
        /* an error of the write itself shows at the next command that waits */
        err = ocl.clEnqueueWriteBuffer(c->queue, dst->mem, CL_FALSE, off, bytes, p->data, 0, NULL, NULL);
        if (err == CL_SUCCESS) {
            p->next = c->pending;
            c->pending = p;
            c->pending_bytes += bytes;
            p = NULL;
        }
    } else if (!p) {
        err = ocl.clEnqueueWriteBuffer(c->queue, dst->mem, CL_TRUE, off, bytes, src, 0, NULL, NULL);
        ocl_count(OCL_STAT_WAIT);
        if (err == CL_SUCCESS) ocl_pending_release(c);
    }
    pthread_mutex_unlock(&c->lock);
    free(p); /* not enqueued */
    ocl_count(OCL_STAT_UPLOAD);
    return ocl_check(err, "upload");
}

ag_status ocl_download(void *ctx, ag_buffer *src, size_t off, void *dst, size_t bytes)
{
    ocl_ctx *c = ctx;
    ag_status s = check_range("download", src, off, dst, bytes);
    if (s != AG_OK || bytes == 0) return s;
    pthread_mutex_lock(&c->lock);
    cl_int err = ocl.clEnqueueReadBuffer(c->queue, src->mem, CL_TRUE, off, bytes, dst, 0, NULL, NULL);
    if (err == CL_SUCCESS) ocl_pending_release(c);
    pthread_mutex_unlock(&c->lock);
    ocl_count(OCL_STAT_DOWNLOAD);
    ocl_count(OCL_STAT_WAIT);
    return ocl_check(err, "download");
}

ag_status ocl_sync(void *ctx)
{
    ocl_ctx *c = ctx;
    pthread_mutex_lock(&c->lock);
    cl_int err = ocl.clFinish(c->queue);
    if (err == CL_SUCCESS) ocl_pending_release(c);
    pthread_mutex_unlock(&c->lock);
    ocl_count(OCL_STAT_WAIT);
    return ocl_check(err, "sync");
}

static bool dtype_ok(ag_dtype dt) { return dt == AG_F32 || dt == AG_I32; }

static bool view_ok(const ag_view *v) { return v && v->buf && v->ndim >= 0 && v->ndim <= AG_MAX_DIMS; }

ag_status ocl_copy(void *ctx, const ag_view *dst, const ag_view *src)
{
    if (!view_ok(dst) || !view_ok(src)) return ag_set_error(AG_ERR_ARG, "opencl copy: invalid view");
    if (!dtype_ok(dst->dtype) || !dtype_ok(src->dtype))
        return ag_set_error(AG_ERR_DTYPE, "opencl copy: %s to %s is not supported",
                            ag_dtype_name(src->dtype), ag_dtype_name(dst->dtype));
    int64_t n = ag_view_numel(dst);
    if (ag_view_numel(src) != n)
        return ag_set_error(AG_ERR_SHAPE, "opencl copy: %lld elements into %lld",
                            (long long)ag_view_numel(src), (long long)n);
    if (n == 0) return AG_OK;
    cl_int mode = dst->dtype == src->dtype ? 0 : dst->dtype == AG_I32 ? 1 : 2;
    bool same = dst->ndim == src->ndim;
    for (int d = 0; same && d < dst->ndim; d++) same = dst->shape[d] == src->shape[d];
    ag_shape32 sh[2];
    ag_strides32 st[2];
    const ag_view *v[2] = {dst, src};
    if (same) {
        ag_status s = ocl_ew_layout("copy", 2, v, &sh[0], st);
        if (s != AG_OK) return s;
        return ocl_run1(ctx, "memory", "copy_view", (size_t)n,
                        OCL_ARGS(OA(mode), OA(sh[0]), OA(st[0]), OA(st[1]), OA(dst->buf->mem),
                                 OA(src->buf->mem)));
    }
    for (int k = 0; k < 2; k++) {
        ag_status s = ocl_ew_layout("copy", 1, &v[k], &sh[k], &st[k]);
        if (s != AG_OK) return s;
    }
    return ocl_run1(ctx, "memory", "copy_reshape", (size_t)n,
                    OCL_ARGS(OA(mode), OA(sh[0]), OA(st[0]), OA(sh[1]), OA(st[1]),
                             OA(dst->buf->mem), OA(src->buf->mem)));
}

ag_status ocl_fill(void *ctx, const ag_view *dst, double value)
{
    if (!view_ok(dst)) return ag_set_error(AG_ERR_ARG, "opencl fill: invalid view");
    if (!dtype_ok(dst->dtype))
        return ag_set_error(AG_ERR_DTYPE, "opencl fill: %s is not supported", ag_dtype_name(dst->dtype));
    /* both dtypes are 4 bytes: fill with the bit pattern of the converted value */
    cl_uint bits = ag_fill_bits(dst->dtype, value);
    ag_shape32 sh;
    ag_strides32 st;
    ag_status s = ocl_ew_layout("fill", 1, &dst, &sh, &st);
    if (s != AG_OK) return s;
    return ocl_run1(ctx, "memory", "fill_view", (size_t)sh.numel,
                    OCL_ARGS(OA(bits), OA(sh), OA(st), OA(dst->buf->mem)));
}
