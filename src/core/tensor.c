/* Tensors: refcounted storage on a device, a strided layout over it, lifetime. */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* ---- storage --------------------------------------------------------- */

static _Atomic int64_t live_buffers;

int64_t ag_debug_live_buffers(void) { return live_buffers; }

ag_status ag__upload(ag_device *dev, ag_buffer *buf, size_t off, const void *src, size_t bytes)
{
    if (ag_fault_hit(AG_FAULT_UPLOAD))
        return ag_set_error(AG_ERR_DEVICE, "injected fault: upload of %zu bytes to %s failed", bytes, dev->name);
    return dev->i->upload(dev->ctx, buf, off, src, bytes);
}

static ag_storage *storage_new(ag_device *dev, size_t bytes)
{
    if (ag_fault_hit(AG_FAULT_ALLOC)) {
        ag_set_error(AG_ERR_OOM, "injected fault: allocating %zu bytes on %s failed", bytes, dev->name);
        return NULL;
    }
    if (ag__device_ready(dev) != AG_OK) return NULL;
    ag_storage *st = ag__reuse_take(AG_REUSE_STORAGE, sizeof *st);
    if (!st) {
        ag_set_error(AG_ERR_OOM, "out of host memory allocating a tensor");
        return NULL;
    }
    st->buf = dev->i->alloc(dev->ctx, bytes);
    if (!st->buf) {
        ag__reuse_give(AG_REUSE_STORAGE, st);
        return NULL; /* the backend set the error */
    }
    live_buffers++;
    st->refs = 1;
    st->dev = dev;
    st->bytes = bytes;
    return st;
}

static void storage_release(ag_storage *st)
{
    if (st && --st->refs == 0) {
        if (st->buf) { /* NULL: the record of a tensor whose values were dropped */
            st->dev->i->free(st->dev->ctx, st->buf);
            live_buffers--;
        }
        ag__reuse_give(AG_REUSE_STORAGE, st);
    }
}

/* Only autograd nodes that never read t's values still hold it: t keeps its
 * device on a record without memory and lets go of its storage (freed unless
 * an alias, a saved copy or a view still uses it). */
static void drop_values(ag_tensor *t)
{
    /* two threads may both see only graph references left (a release racing
     * the backward walk's): one of them drops */
    if (atomic_exchange(&t->dropped, true)) return;
    ag_storage *old = t->st;
    if (!old->buf) return;
    ag_storage *st = ag__reuse_take(AG_REUSE_STORAGE, sizeof *st);
    if (!st) return; /* keeping the memory is always correct */
    st->refs = 1;
    st->dev = old->dev;
    t->st = st;
    storage_release(old);
}

/* ---- tensor slots ------------------------------------------------------ */

/* Tensor structs come from chunks that are never given back to malloc, so a
 * stale handle points at readable memory. A released slot is marked dead and
 * waits in its thread's FIFO quarantine until SLOT_QUARANTINE more slots were
 * released after it: only then can it be handed out again, so a handle used
 * after its release reads "dead" for that long. Each thread keeps its own lists
 * (no lock on the common path); a thread that releases far more tensors than it
 * creates, or one that exits, passes slots to a shared pool, a FIFO with the
 * same quarantine. A handle used after its slot was reused is not detected. */
#define SLOT_QUARANTINE 1024
#define SLOT_BATCH 256 /* slots per chunk, per refill from the pool, per spill */

typedef struct slot_fifo {
    ag_tensor *head, *tail;
    size_t n;
} slot_fifo;

typedef struct slot_cache {
    ag_tensor *ready; /* LIFO of slots free to hand out */
    slot_fifo quarantine;
    bool registered;  /* the thread-exit hook is set */
} slot_cache;

typedef struct slot_chunk {
    struct slot_chunk *next; /* every chunk stays reachable (leak checkers) */
    ag_tensor slot[SLOT_BATCH];
} slot_chunk;

static _Thread_local slot_cache cache;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static slot_fifo pool;
static slot_chunk *chunks;
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;
static bool cache_key_ok;

static void fifo_push(slot_fifo *f, ag_tensor *t)
{
    t->next_slot = NULL;
    if (f->tail) f->tail->next_slot = t;
    else f->head = t;
    f->tail = t;
    f->n++;
}

static ag_tensor *fifo_pop(slot_fifo *f)
{
    ag_tensor *t = f->head;
    f->head = t->next_slot;
    if (!f->head) f->tail = NULL;
    f->n--;
    return t;
}

/* Thread exit: the free slots go to the pool's tail, the quarantine after them
 * in its order, so they keep waiting there. */
static void cache_exit(void *arg)
{
    slot_cache *c = arg;
    pthread_mutex_lock(&pool_lock);
    while (c->ready) {
        ag_tensor *t = c->ready;
        c->ready = t->next_slot;
        fifo_push(&pool, t);
    }
    while (c->quarantine.n) fifo_push(&pool, fifo_pop(&c->quarantine));
    pthread_mutex_unlock(&pool_lock);
    c->registered = false;
}

static void cache_key_make(void) { cache_key_ok = pthread_key_create(&cache_key, cache_exit) == 0; }

static void cache_register(slot_cache *c)
{
    pthread_once(&cache_key_once, cache_key_make);
    c->registered = cache_key_ok && pthread_setspecific(cache_key, c) == 0;
}

/* Refills c->ready from the pool's quarantined end, or from a new chunk. */
static bool slot_refill(slot_cache *c)
{
    if (!c->registered) cache_register(c);
    pthread_mutex_lock(&pool_lock);
    for (int k = 0; k < SLOT_BATCH && pool.n > SLOT_QUARANTINE; k++) {
        ag_tensor *t = fifo_pop(&pool);
        t->next_slot = c->ready;
        c->ready = t;
    }
    pthread_mutex_unlock(&pool_lock);
    if (c->ready) return true;
    slot_chunk *ch = malloc(sizeof *ch);
    if (!ch) return false;
    for (int k = SLOT_BATCH; k-- > 0;) {
        atomic_init(&ch->slot[k].state, AG_TENSOR_DEAD);
        ch->slot[k].next_slot = c->ready;
        c->ready = &ch->slot[k];
    }
    pthread_mutex_lock(&pool_lock);
    ch->next = chunks;
    chunks = ch;
    pthread_mutex_unlock(&pool_lock);
    return true;
}

/* A zeroed live tensor with one reference, or NULL (error set). */
static ag_tensor *tensor_new(void)
{
    slot_cache *c = &cache;
    AG_TLS_ONCE(c);
    ag_tensor *t = c->ready;
    if (t) {
        c->ready = t->next_slot;
    } else if (c->quarantine.n > SLOT_QUARANTINE) {
        t = fifo_pop(&c->quarantine);
    } else if (slot_refill(c)) {
        t = c->ready;
        c->ready = t->next_slot;
    } else {
        ag_set_error(AG_ERR_OOM, "out of host memory allocating a tensor");
        return NULL;
    }
    /* Only the state word may be read through a stale handle meanwhile. */
    memset((char *)t + offsetof(ag_tensor, refs), 0, sizeof *t - offsetof(ag_tensor, refs));
    atomic_init(&t->refs, 1);
    atomic_store_explicit(&t->state, AG_TENSOR_LIVE, memory_order_relaxed);
    return t;
}

static void tensor_free(ag_tensor *t)
{
    slot_cache *c = &cache;
    AG_TLS_ONCE(c);
    if (!c->registered) cache_register(c);
    fifo_push(&c->quarantine, t);
    if (c->quarantine.n < SLOT_QUARANTINE + SLOT_BATCH) return;
    /* Released far more than created here: the oldest go to the pool. */
    pthread_mutex_lock(&pool_lock);
    for (int k = 0; k < SLOT_BATCH; k++) fifo_push(&pool, fifo_pop(&c->quarantine));
    pthread_mutex_unlock(&pool_lock);
}

bool ag__bad_handle(const char *op, const ag_tensor *t)
{
    if (t)
        ag_set_error(AG_ERR_STATE, "%s: tensor used after it was released (its last reference "
                                   "was dropped by ag_release or the end of its scope)", op);
    else if (ag_last_status() == AG_OK)
        ag_set_error(AG_ERR_ARG, "%s: input tensor is NULL", op);
    return false;
}

/* ---- layout helpers --------------------------------------------------- */

int64_t ag__numel_shape(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return n;
}

static void contiguous_strides(int ndim, const int64_t *shape, int64_t *stride)
{
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= shape[d] > 0 ? shape[d] : 1;
    }
}

bool ag__is_contiguous(const ag_tensor *t)
{
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] == 0) return true; /* no elements: any layout is dense */
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != s) return false;
        s *= t->shape[d];
    }
    return true;
}

bool ag__same_shape(const ag_tensor *a, const ag_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

const char *ag_shape_str(const ag_tensor *t, char *buf, size_t size)
{
    if (!buf || size == 0) return buf;
    if (!t || !ag__alive(t)) {
        snprintf(buf, size, t ? "(released)" : "(null)");
        return buf;
    }
    char s[160];
    ag__shape_fmt(t->ndim, t->shape, s, sizeof s);
    snprintf(buf, size, "%s %s", s, ag_dtype_name(t->dtype));
    return buf;
}

bool ag__check(const char *op, const ag_tensor *t, ag_dtype dt)
{
    if (!ag__valid(op, t)) return false;
    if (dt != AG_ANY && t->dtype != dt) {
        ag_set_error(AG_ERR_DTYPE, "%s: expected %s input, got %s", op, ag_dtype_name(dt),
                     ag_dtype_name(t->dtype));
        return false;
    }
    return true;
}

bool ag__same_device(const char *op, const ag_tensor *a, const ag_tensor *b)
{
    if (a->dev == b->dev) return true;
    ag_set_error(AG_ERR_DEVICE, "%s: tensors on different devices (%s and %s)", op,
                 a->dev->name, b->dev->name);
    return false;
}

int ag__axis(const char *op, int axis, int ndim)
{
    int n = ndim > 0 ? ndim : 1;
    if (axis < -n || axis >= n) {
        ag_set_error(AG_ERR_ARG, "%s: axis %d out of range for %d dims", op, axis, ndim);
        return -1;
    }
    return axis < 0 ? axis + n : axis;
}

/* ---- creation --------------------------------------------------------- */

static bool valid_shape(const char *op, int ndim, const int64_t *shape, ag_dtype dt)
{
    if (ndim < 0 || ndim > AG_MAX_DIMS || (ndim > 0 && !shape)) {
        ag_set_error(AG_ERR_ARG, "%s: ndim %d must be in [0, %d] with a shape", op, ndim,
                     AG_MAX_DIMS);
        return false;
    }
    if (ag_dtype_size(dt) == 0) {
        ag_set_error(AG_ERR_DTYPE, "%s: unknown dtype %d", op, (int)dt);
        return false;
    }
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0) {
            ag_set_error(AG_ERR_SHAPE, "%s: negative size %lld in axis %d", op,
                         (long long)shape[d], d);
            return false;
        }
    if (!ag__shape_fits(ndim, shape)) {
        ag_set_error(AG_ERR_SHAPE, "%s: shape too large (element count or strides overflow)", op);
        return false;
    }
    return true;
}

ag_tensor *ag__empty_on(ag_device *dev, ag_dtype dt, int ndim, const int64_t *shape)
{
    if (!dev) return NULL;
    if (!valid_shape("empty", ndim, shape, dt)) return NULL;
    ag_storage *st = storage_new(dev, (size_t)ag__numel_shape(ndim, shape) * ag_dtype_size(dt));
    ag_tensor *t = st ? tensor_new() : NULL;
    if (!t) {
        storage_release(st);
        return NULL;
    }
    t->st = st;
    t->dev = dev;
    t->dtype = dt;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    contiguous_strides(ndim, shape, t->stride);
    return ag__own(t);
}

ag_tensor *ag__empty_like(const ag_tensor *t)
{
    return ag__empty_on(t->dev, t->dtype, t->ndim, t->shape);
}

ag_tensor *ag__alias(ag_tensor *base, int ndim, const int64_t *shape, const int64_t *stride,
                     int64_t offset)
{
    ag_tensor *t = tensor_new();
    if (!t) return NULL;
    t->st = base->st;
    t->st->refs++;
    t->dev = base->dev;
    t->dtype = base->dtype;
    t->ndim = ndim;
    t->offset = offset;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->stride[d] = stride[d];
    }
    return ag__own(t);
}

static ag_tensor *fill_new(ag_device *dev, ag_dtype dt, int ndim, const int64_t *shape,
                           double value)
{
    ag_scope_begin();
    ag_tensor *t = ag__empty_on(dev, dt, ndim, shape);
    if (t) {
        ag_view v = ag__view(t);
        if (AG_LAUNCH(dev, fill, &v, value) != AG_OK) t = NULL;
    }
    return ag__done(t);
}

static ag_tensor *filled(int ndim, const int64_t *shape, ag_dtype dt, double value)
{
    return fill_new(ag_device_default(), dt, ndim, shape, value);
}

ag_tensor *ag_empty(int ndim, const int64_t *shape, ag_dtype dtype)
{
    return ag__empty_on(ag_device_default(), dtype, ndim, shape);
}
ag_tensor *ag_zeros(int ndim, const int64_t *shape) { return filled(ndim, shape, AG_F32, 0.0); }
ag_tensor *ag_ones(int ndim, const int64_t *shape) { return filled(ndim, shape, AG_F32, 1.0); }
ag_tensor *ag_full(int ndim, const int64_t *shape, float value)
{
    return filled(ndim, shape, AG_F32, value);
}
ag_tensor *ag_scalar(float value) { return filled(0, NULL, AG_F32, value); }
ag_tensor *ag__scalar_like(const ag_tensor *like, float value)
{
    return fill_new(like->dev, AG_F32, 0, NULL, value);
}

static ag_tensor *filled_like(const char *op, const ag_tensor *t, double value)
{
    if (!ag__valid(op, t)) return NULL;
    return fill_new(t->dev, t->dtype, t->ndim, t->shape, value);
}
ag_tensor *ag_zeros_like(const ag_tensor *t) { return filled_like("ag_zeros_like", t, 0.0); }
ag_tensor *ag_ones_like(const ag_tensor *t) { return filled_like("ag_ones_like", t, 1.0); }

static ag_tensor *from_host(const void *data, int ndim, const int64_t *shape, ag_dtype dt)
{
    if (!data) {
        ag_set_error(AG_ERR_ARG, "ag_from_%s: data is NULL", ag_dtype_name(dt));
        return NULL;
    }
    ag_scope_begin();
    ag_tensor *t = ag__empty_on(ag_device_default(), dt, ndim, shape);
    if (t && ag__upload(t->st->dev, t->st->buf, 0, data, t->st->bytes) != AG_OK)
        t = NULL;
    return ag__done(t);
}

ag_tensor *ag_from_f32(const float *data, int ndim, const int64_t *shape)
{
    return from_host(data, ndim, shape, AG_F32);
}
ag_tensor *ag_from_i32(const int32_t *data, int ndim, const int64_t *shape)
{
    return from_host(data, ndim, shape, AG_I32);
}
ag_tensor *ag_from_u8(const uint8_t *data, int ndim, const int64_t *shape)
{
    return from_host(data, ndim, shape, AG_U8);
}

ag_tensor *ag_arange(int64_t n)
{
    if (n < 0 || n > (1LL << 30)) {
        ag_set_error(AG_ERR_ARG, "ag_arange: n = %lld out of range", (long long)n);
        return NULL;
    }
    float *host = malloc((size_t)(n ? n : 1) * sizeof *host);
    if (!host) {
        ag_set_error(AG_ERR_OOM, "ag_arange: out of host memory");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) host[i] = (float)i;
    ag_tensor *t = ag_from_f32(host, 1, &n);
    free(host);
    return t;
}

ag_tensor *ag_to_dtype(ag_tensor *t, ag_dtype dtype)
{
    if (!ag__check("ag_to_dtype", t, AG_ANY)) return NULL;
    if (dtype == t->dtype) return ag_clone(t); /* keeps the graph, like PyTorch's .to() */
    if (dtype != AG_F32 && dtype != AG_I32 && dtype != AG_U8) {
        ag_set_error(AG_ERR_UNSUPPORTED, "ag_to_dtype: %s tensors are not supported yet",
                     ag_dtype_name(dtype));
        return NULL;
    }
    ag_scope_begin();
    ag_tensor *y = ag__empty_on(t->st->dev, dtype, t->ndim, t->shape);
    if (y) {
        ag_view vy = ag__view(y), vx = ag__view(t);
        if (AG_LAUNCH(y->st->dev, copy, &vy, &vx) != AG_OK) y = NULL;
    }
    return ag__done(y);
}

ag_tensor *ag_to_device(ag_tensor *t, ag_device *dev)
{
    if (!ag__check("ag_to_device", t, AG_ANY)) return NULL;
    if (!dev) {
        ag_set_error(AG_ERR_ARG, "ag_to_device: device is NULL");
        return NULL;
    }
    if (t->st->dev == dev) return ag__own(ag_retain(t));
    /* Through the host: devices of different backends share no memory. */
    size_t bytes = (size_t)ag_numel(t) * ag_dtype_size(t->dtype);
    void *host = malloc(bytes ? bytes : 1);
    if (!host) {
        ag_set_error(AG_ERR_OOM, "ag_to_device: out of host memory");
        return NULL;
    }
    ag_scope_begin();
    ag_tensor *y = NULL;
    if (ag_to_host(t, host, bytes) == AG_OK) {
        y = ag__empty_on(dev, t->dtype, t->ndim, t->shape);
        if (y && ag_from_host(y, host, bytes) != AG_OK) y = NULL;
    }
    free(host);
    return ag__done(y);
}

/* ---- lifetime --------------------------------------------------------- */

ag_tensor *ag_retain(ag_tensor *t)
{
    if (!t) return NULL;
    if (!ag__alive(t)) return ag__bad_handle("ag_retain", t), NULL;
    t->refs++;
    return t;
}

void ag_release(ag_tensor *t)
{
    if (!t) return;
    /* One release too many is reported instead of freeing the slot twice; a
     * dead slot's count stays 0 until reuse, so two threads racing to release
     * the last reference cannot both free it either. */
    int refs = ag__alive(t) ? atomic_load_explicit(&t->refs, memory_order_relaxed) : 0;
    do {
        if (refs <= 0) {
            ag__bad_handle("ag_release", t);
            return;
        }
    } while (!atomic_compare_exchange_weak_explicit(&t->refs, &refs, refs - 1,
                                                    memory_order_acq_rel, memory_order_relaxed));
    if (refs > 1) {
        if (refs - 1 == atomic_load_explicit(&t->graph_refs, memory_order_relaxed)) drop_values(t);
        return;
    }
    atomic_store_explicit(&t->state, AG_TENSOR_DEAD, memory_order_relaxed);
    ag_tensor *grad = t->grad;
    ag_node *node = t->node;
    ag_storage *st = t->st;
    t->grad = NULL;
    t->node = NULL;
    t->st = NULL;
    ag_release(grad);
    ag__node_release(node);
    storage_release(st);
    tensor_free(t);
}

/* ---- inspection ------------------------------------------------------- */

int ag_ndim(const ag_tensor *t) { return ag__valid("ag_ndim", t) ? t->ndim : -1; }

int64_t ag_dim(const ag_tensor *t, int axis)
{
    if (!ag__valid("ag_dim", t)) return -1;
    if (t->ndim == 0) {
        ag_set_error(AG_ERR_ARG, "ag_dim: 0-dim tensor has no axes");
        return -1;
    }
    int a = ag__axis("ag_dim", axis, t->ndim);
    return a < 0 ? -1 : t->shape[a];
}

int ag_shape(const ag_tensor *t, int64_t shape[AG_MAX_DIMS])
{
    if (!ag__valid("ag_shape", t)) return -1;
    if (!shape) {
        ag_set_error(AG_ERR_ARG, "ag_shape: shape is NULL");
        return -1;
    }
    for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
    return t->ndim;
}

int64_t ag_numel(const ag_tensor *t)
{
    return ag__valid("ag_numel", t) ? ag__numel_shape(t->ndim, t->shape) : 0;
}
ag_dtype ag_dtype_of(const ag_tensor *t) { return ag__valid("ag_dtype_of", t) ? t->dtype : AG_F32; }
ag_device *ag_device_of(const ag_tensor *t)
{
    return ag__valid("ag_device_of", t) ? t->dev : NULL;
}
bool ag_is_contiguous(const ag_tensor *t)
{
    return ag__valid("ag_is_contiguous", t) && ag__is_contiguous(t);
}

ag_tensor *ag__contiguous(ag_tensor *t)
{
    if (!t || ag__is_contiguous(t)) return t;
    ag_tensor *y = ag__empty_like(t);
    if (!y) return NULL;
    ag_view vy = ag__view(y), vx = ag__view(t);
    if (AG_LAUNCH(t->st->dev, copy, &vy, &vx) != AG_OK) return NULL;
    return y;
}

static ag_status host_bytes_check(const char *op, const ag_tensor *t, const void *p, size_t bytes)
{
    if (!ag__valid(op, t)) return ag_last_status();
    if (!p) return ag_set_error(AG_ERR_ARG, "%s: host buffer is NULL", op);
    size_t want = (size_t)ag__numel_shape(t->ndim, t->shape) * ag_dtype_size(t->dtype);
    if (bytes != want)
        return ag_set_error(AG_ERR_ARG, "%s: buffer has %zu bytes, tensor needs %zu", op, bytes,
                            want);
    return AG_OK;
}

ag_status ag_to_host(const ag_tensor *t, void *dst, size_t bytes)
{
    ag_status s = host_bytes_check("ag_to_host", t, dst, bytes);
    if (s) return s;
    ag_device *dev = t->st->dev;
    if (ag__is_contiguous(t))
        return dev->i->download(dev->ctx, t->st->buf, (size_t)t->offset * ag_dtype_size(t->dtype),
                                dst, bytes);
    ag_scope_begin();
    ag_tensor *c = ag__contiguous((ag_tensor *)t);
    s = c ? dev->i->download(dev->ctx, c->st->buf, 0, dst, bytes) : ag_last_status();
    if (!c && s == AG_OK) s = AG_ERR_OOM;
    ag_scope_end();
    return s;
}

const void *ag__host_bytes(const ag_tensor *t)
{
    if (!t || !ag__is_contiguous(t) || !t->st->dev->i->host_data) return NULL;
    const char *base = t->st->dev->i->host_data(t->st->dev->ctx, t->st->buf);
    return base ? base + (size_t)t->offset * ag_dtype_size(t->dtype) : NULL;
}

ag_status ag_from_host(ag_tensor *t, const void *src, size_t bytes)
{
    ag_status s = host_bytes_check("ag_from_host", t, src, bytes);
    if (s) return s;
    ag__bump_version(t);
    ag_device *dev = t->st->dev;
    if (ag__is_contiguous(t))
        return ag__upload(dev, t->st->buf, (size_t)t->offset * ag_dtype_size(t->dtype), src, bytes);
    /* A strided destination: upload densely, then scatter with the copy kernel. */
    ag_scope_begin();
    ag_tensor *c = ag__empty_like(t);
    s = c ? ag__upload(dev, c->st->buf, 0, src, bytes) : ag_last_status();
    if (s == AG_OK) {
        ag_view vd = ag__view(t), vs = ag__view(c);
        s = AG_LAUNCH(dev, copy, &vd, &vs);
    }
    ag_scope_end();
    return s;
}

ag_status ag_item(const ag_tensor *t, float *out)
{
    if (!ag__valid("ag_item", t)) return ag_last_status();
    if (!out) return ag_set_error(AG_ERR_ARG, "ag_item: out is NULL");
    if (ag__numel_shape(t->ndim, t->shape) != 1) {
        char s[160];
        ag__shape_fmt(t->ndim, t->shape, s, sizeof s);
        return ag_set_error(AG_ERR_SHAPE, "ag_item: tensor of shape %s has %lld elements, not 1",
                            s, (long long)ag_numel(t));
    }
    if (t->dtype == AG_I32) {
        int32_t v;
        ag_status s = ag_to_host(t, &v, sizeof v);
        if (s == AG_OK) *out = (float)v;
        return s;
    }
    if (t->dtype == AG_U8) {
        uint8_t v;
        ag_status s = ag_to_host(t, &v, sizeof v);
        if (s == AG_OK) *out = (float)v;
        return s;
    }
    if (t->dtype != AG_F32) return ag_set_error(AG_ERR_DTYPE, "ag_item: unsupported dtype");
    return ag_to_host(t, out, sizeof *out);
}

/* Data files load into CPU tensors, as datasets live in host memory: a GPU may
 * not even bind a whole training set as one buffer. Falls back to the default
 * device when there is no CPU backend. */
ag_tensor *ag__empty_on_cpu(ag_dtype dtype, int ndim, const int64_t *shape)
{
    ag_device *cpu = ag_device_by_name("cpu");
    ag_clear_error();
    return ag__empty_on(cpu ? cpu : ag_device_default(), dtype, ndim, shape);
}

ag_tensor *ag__from_host_on_cpu(const void *data, ag_dtype dtype, int ndim, const int64_t *shape)
{
    if (!data) return ag_set_error(AG_ERR_ARG, "from host: data is NULL"), NULL;
    ag_scope_begin();
    ag_tensor *t = ag__empty_on_cpu(dtype, ndim, shape);
    if (t && ag__upload(t->st->dev, t->st->buf, 0, data, t->st->bytes) != AG_OK) t = NULL;
    return ag__done(t);
}
