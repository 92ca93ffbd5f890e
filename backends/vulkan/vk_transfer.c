/* Uploads, downloads, strided copy with f32 <-> i32 conversion, fill, sync.
 * Transfers are synchronous: unified-memory devices map tensor memory and
 * memcpy once the device is idle; others go through a staging buffer
 * (AG_VULKAN_EMULATE=discrete takes that path on any device). */
#include <math.h>
#include <string.h>

#include "vk.h"

static ag_status check_range(const char *op, const ag_buffer *b, size_t off, const void *host, size_t bytes)
{
    if (!b || (!host && bytes)) return ag_set_error(AG_ERR_ARG, "vulkan %s: NULL buffer or pointer", op);
    if (off > b->bytes || bytes > b->bytes - off)
        return ag_set_error(AG_ERR_ARG, "vulkan %s: %zu bytes at offset %zu outside a %zu-byte buffer",
                            op, bytes, off, b->bytes);
    return AG_OK;
}

/* The staging buffer, grown to hold bytes. Called with staging_lock held: the
 * buffer's last user waited for its copy before releasing the lock, so nothing
 * on the device still reads or writes the buffer that growing frees. */
static ag_status staging(vk_ctx *c, size_t bytes)
{
    if (c->staging.size >= bytes) return AG_OK;
    VkDeviceSize size = c->staging.size ? c->staging.size : ((VkDeviceSize)1 << 20);
    while (size < bytes) size *= 2;
    vk_host_buf_destroy(c, &c->staging);
    return vk_host_buf_create(c, size, VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                              &c->staging);
}

/* Mapped (unified) memory: wait for queued work that may still read or write the
 * range, then memcpy. Staged (discrete): the copy is queued behind that work,
 * one submit and wait; other threads wait for the staging buffer meanwhile. */
ag_status vk_upload(void *ctx, ag_buffer *dst, size_t off, const void *src, size_t bytes)
{
    vk_ctx *c = ctx;
    ag_status s = check_range("upload", dst, off, src, bytes);
    if (s != AG_OK || bytes == 0) return s;
    void *map = vk_block_map(dst->block);
    if (map) {
        if ((s = vk_flush_wait(c)) == AG_OK) memcpy((char *)map + dst->offset + off, src, bytes);
        return s;
    }
    pthread_mutex_lock(&c->staging_lock);
    if ((s = staging(c, bytes)) == AG_OK) {
        memcpy(c->staging.map, src, bytes);
        s = vk_record_copy(c, c->staging.buf, 0, vk_block_buffer(dst->block), dst->offset + off, bytes);
        if (s == AG_OK) s = vk_flush_wait(c);
    }
    pthread_mutex_unlock(&c->staging_lock);
    return s;
}

ag_status vk_download(void *ctx, ag_buffer *src, size_t off, void *dst, size_t bytes)
{
    vk_ctx *c = ctx;
    ag_status s = check_range("download", src, off, dst, bytes);
    if (s != AG_OK || bytes == 0) return s;
    void *map = vk_block_map(src->block);
    if (map) {
        if ((s = vk_flush_wait(c)) == AG_OK) memcpy(dst, (const char *)map + src->offset + off, bytes);
        return s;
    }
    pthread_mutex_lock(&c->staging_lock);
    if ((s = staging(c, bytes)) == AG_OK) {
        s = vk_record_copy(c, vk_block_buffer(src->block), src->offset + off, c->staging.buf, 0, bytes);
        if (s == AG_OK) s = vk_flush_wait(c);
        if (s == AG_OK) memcpy(dst, c->staging.map, bytes);
    }
    pthread_mutex_unlock(&c->staging_lock);
    return s;
}

ag_status vk_sync(void *ctx) { return vk_flush_wait(ctx); }

static bool dtype_ok(ag_dtype dt) { return dt == AG_F32 || dt == AG_I32; }

static bool view_ok(const ag_view *v) { return v && v->buf && v->ndim >= 0 && v->ndim <= AG_MAX_DIMS; }

typedef struct copy_params {
    int32_t mode, same;
    ag_shape32 dsh;
    ag_strides32 ds;
    ag_shape32 ssh;
    ag_strides32 ss;
} copy_params;

ag_status vk_copy(void *ctx, const ag_view *dst, const ag_view *src)
{
    if (!view_ok(dst) || !view_ok(src)) return ag_set_error(AG_ERR_ARG, "vulkan copy: invalid view");
    if (!dtype_ok(dst->dtype) || !dtype_ok(src->dtype))
        return ag_set_error(AG_ERR_DTYPE, "vulkan copy: %s to %s is not supported",
                            ag_dtype_name(src->dtype), ag_dtype_name(dst->dtype));
    int64_t n = ag_view_numel(dst);
    if (ag_view_numel(src) != n)
        return ag_set_error(AG_ERR_SHAPE, "vulkan copy: %lld elements into %lld",
                            (long long)ag_view_numel(src), (long long)n);
    if (n == 0) return AG_OK;
    copy_params p = {.mode = dst->dtype == src->dtype ? 0 : dst->dtype == AG_I32 ? 1 : 2};
    bool same = dst->ndim == src->ndim;
    for (int d = 0; same && d < dst->ndim; d++) same = dst->shape[d] == src->shape[d];
    const ag_view *v[2] = {dst, src};
    ag_status s;
    if (same) {
        ag_strides32 st[2];
        s = ag_layout32("vulkan", "copy", 2, v, &p.dsh, st);
        p.ds = st[0];
        p.ss = st[1];
        p.ssh = p.dsh;
        p.same = 1;
    } else {
        s = ag_layout32("vulkan", "copy", 1, &v[0], &p.dsh, &p.ds);
        if (s == AG_OK) s = ag_layout32("vulkan", "copy", 1, &v[1], &p.ssh, &p.ss);
    }
    if (s != AG_OK) return s;
    return vk_run1(ctx, "copy_view", &p, sizeof p, VK_BUFS(dst->buf, src->buf), (size_t)n);
}

typedef struct fill_params {
    uint32_t bits;
    ag_shape32 sh;
    ag_strides32 ds;
} fill_params;

ag_status vk_fill(void *ctx, const ag_view *dst, double value)
{
    if (!view_ok(dst)) return ag_set_error(AG_ERR_ARG, "vulkan fill: invalid view");
    if (!dtype_ok(dst->dtype))
        return ag_set_error(AG_ERR_DTYPE, "vulkan fill: %s is not supported", ag_dtype_name(dst->dtype));
    fill_params p;
    p.bits = ag_fill_bits(dst->dtype, value);
    ag_status s = ag_layout32("vulkan", "fill", 1, &dst, &p.sh, &p.ds);
    if (s != AG_OK) return s;
    return vk_run1(ctx, "fill_view", &p, sizeof p, VK_BUFS(dst->buf), (size_t)p.sh.numel);
}
