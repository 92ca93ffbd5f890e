/* Internal core: tensor layout, devices, autograd nodes, helpers shared by the
 * front-end ops. Never included by users. */
#ifndef AG_CORE_H
#define AG_CORE_H

#include <stdatomic.h>

#include "anygrad.h"
#include "backend.h"

struct ag_device {
    const ag_backend_i *i;
    void *ctx;
    _Atomic int opened; /* ctx is set (false for a GPU the child-process probe found, until used) */
    int index;
    char name[96];
};

/* Makes a device found by the child-process probe usable in this process
 * (src/core/device.c); every path that reaches dev->ctx without an existing
 * buffer of dev calls ag__device_ready first. */
ag_status ag__device_open(ag_device *dev);
static inline ag_status ag__device_ready(ag_device *dev)
{
    return atomic_load_explicit(&dev->opened, memory_order_acquire) ? AG_OK : ag__device_open(dev);
}

/* Small host structs reused per thread (src/core/reuse.c): take gives a
 * zeroed block of size (NULL when out of memory), give takes it back (NULL ok).
 * A kind's blocks all have one size. */
typedef enum { AG_REUSE_STORAGE, AG_REUSE_NODE, AG_REUSE_KINDS } ag_reuse_kind;
void *ag__reuse_take(ag_reuse_kind kind, size_t size);
void ag__reuse_give(ag_reuse_kind kind, void *p);

/* What the probe keeps of a device it found (src/core/probe_child.c). */
#define AG_PROBE_MAX 16
typedef struct {
    char name[96];
    char details[1024]; /* ag_device_details' line; or why nothing was found */
    ag_backend_props props;
} ag_probe_record;
typedef int (*ag_backend_create_fn)(const ag_backend_i **iface, void **ctxs, int max);
void ag__probe_describe(const ag_backend_i *iface, void *ctx, ag_probe_record *out);
/* Runs create in a child process and returns how many devices it made (their
 * records in out), 0 with the reason in why (nothing found, or the driver
 * crashed or hung), or -1 when no child could be started. */
int ag__probe_in_child(const char *backend, ag_backend_create_fn create, ag_probe_record *out, int max,
                       char *why, size_t wsize);

/* src/ops/calibrate.c: the cached calibration of a device (0, 0 when none). */
void ag__calibration_get(const ag_device *dev, double *gflops, double *gbps);
/* The kind the probe classified dev as (no default choice involved). */
ag_device_kind ag__device_kind(const ag_device *dev);
/* A tensor on the CPU device from host data (src/core/tensor.c). */
ag_tensor *ag__from_host_on_cpu(const void *data, ag_dtype dtype, int ndim, const int64_t *shape);
ag_tensor *ag__empty_on_cpu(ag_dtype dtype, int ndim, const int64_t *shape); /* scope-owned */
/* A contiguous tensor's first element when its memory is the host's (the CPU
 * backend), valid while t lives; NULL otherwise. */
const void *ag__host_bytes(const ag_tensor *t);
/* The calling thread's default set by ag_set_default_device, or NULL. */
ag_device *ag__thread_default(void);

/* Reference counts are atomic: threads may share read-only tensors. version
 * counts in-place writes through the public API (ag__bump_version), so that
 * backward can tell a saved tensor that no longer holds the forward's values. */
typedef struct ag_storage {
    _Atomic int refs;
    _Atomic uint32_t version;
    ag_device *dev;
    ag_buffer *buf;
    size_t bytes;
} ag_storage;

struct ag_node;

/* Tensor structs live in slots of a slab that never goes back to malloc
 * (src/core/tensor.c), so a stale handle still points at readable memory whose
 * state word says it was released. */
#define AG_TENSOR_LIVE 0x4c495645u /* "LIVE" */
#define AG_TENSOR_DEAD 0x44454144u /* "DEAD": released, or never handed out */

struct ag_tensor {
    _Atomic uint32_t state;              /* AG_TENSOR_LIVE while any reference exists */
    _Atomic int refs;
    ag_storage *st;
    ag_device *dev;                      /* st's, kept here: shape-only readers never follow st */
    ag_dtype dtype;
    int ndim;
    int64_t offset;                      /* elements */
    int64_t shape[AG_MAX_DIMS];
    int64_t stride[AG_MAX_DIMS];
    bool requires_grad;
    ag_tensor *grad;                     /* leaves: accumulated gradient */
    struct ag_node *node;                /* producer; NULL for leaves */
    /* references held by autograd nodes whose backward reads only the shape,
     * device and history: when they are all that is left, the memory goes
     * (ag_release), as PyTorch frees an activation nothing saved */
    _Atomic int graph_refs;
    _Atomic bool dropped;                /* the values went (one thread drops them) */
    ag_tensor *next_slot;                /* free and quarantine lists while dead */
};

static inline bool ag__alive(const ag_tensor *t)
{
    return atomic_load_explicit(&t->state, memory_order_relaxed) == AG_TENSOR_LIVE;
}
/* Sets the error for a handle that is NULL (AG_ERR_ARG, unless an earlier error
 * explains the NULL) or released (AG_ERR_STATE); returns false. */
bool ag__bad_handle(const char *op, const ag_tensor *t);
/* Every public function taking a tensor checks it with this first: a live
 * handle costs one load and compare. */
static inline bool ag__valid(const char *op, const ag_tensor *t)
{
    return (t && ag__alive(t)) || ag__bad_handle(op, t);
}
/* Records an in-place write into t's storage (every view of it sees it). */
static inline void ag__bump_version(ag_tensor *t)
{
    atomic_fetch_add_explicit(&t->st->version, 1, memory_order_relaxed);
}
static inline uint32_t ag__version(const ag_tensor *t)
{
    return atomic_load_explicit(&t->st->version, memory_order_relaxed);
}

/* ---- autograd nodes ----------------------------------------------------- */

/* Computes the gradient of every input from gy (the output's gradient). Runs in a
 * scope with grad mode off: tensors it creates belong to that scope; gx[i] may be
 * left NULL for inputs that need no gradient. gx[i] must have in[i]'s shape. */
typedef ag_status (*ag_backward_fn)(struct ag_node *n, ag_tensor *gy, ag_tensor **gx);

#define AG_NODE_INLINE_IN 4
#define AG_NODE_SAVED 4

/* A node's op parameters, one member per op family, written by the op that
 * records the node and read by its backward rule. */
typedef union ag_node_params {
    struct { ag_unary_op op; float p0, p1; } unary;             /* ops_elementwise.c */
    struct { ag_binary_op op; } binary;
    struct { ag_reduce_op op; unsigned axes; float inv_count; } reduce; /* axes: bit mask */
    struct { int axis; bool log; } softmax;
    struct { float label_smoothing; } cross_entropy;            /* ops_loss.c */
    ag_conv2d_params conv;                                      /* ops_conv.c */
    struct { ag_pool_op op; ag_pool2d_params p; } pool;
    struct { bool training; int64_t ncs[3]; } batch_norm;       /* ops_norm.c: N, C, spatial */
    struct { int64_t rows, d; } layer_norm;
    struct { float scale, dropout; bool causal; uint64_t seed, stream; } attention; /* ops_attention.c */
    struct { int64_t rows, dim; } embedding;                    /* ops_index.c */
    struct { int axis; } axis;                                  /* concat, stack, gather, scatter */
    struct { int perm[AG_MAX_DIMS]; } permute;                  /* views.c */
    struct { int axis; int64_t start, step; } slice;
} ag_node_params;

typedef struct ag_node {
    _Atomic int refs;
    const char *name;
    ag_backward_fn backward;
    int nin;
    ag_tensor **in;                      /* retained inputs */
    ag_tensor *in_inline[AG_NODE_INLINE_IN];
    ag_tensor *saved[AG_NODE_SAVED];     /* detached aliases, retained */
    uint32_t saved_version[AG_NODE_SAVED]; /* their storage versions when saved */
    uint32_t in_version[AG_NODE_INLINE_IN];
    unsigned in_read;                    /* bit k: backward reads in[k]'s values */
    unsigned in_meta;                    /* bit k: it does not (counted in graph_refs) */
    ag_node_params p;                    /* what the backward rule needs besides tensors */
    ag_tensor *gacc;                     /* output gradient during backward */
    bool released;                       /* graph freed after backward */
    uint64_t mark;
} ag_node;

/* When y needs a gradient (grad mode on and some input requires grad), creates
 * its producer node over in[0..nin) (retained), makes y require grad, and stores
 * the node in *out; otherwise *out = NULL. Fails only on out-of-memory. */
ag_status ag__record(ag_tensor *y, const char *name, ag_backward_fn fn, int nin,
                     ag_tensor *const *in, ag_node **out);
/* Saves a detached alias of t in slot (shares storage, no history) and its
 * version: backward fails if t was written in place in between. */
ag_status ag__save(ag_node *n, int slot, ag_tensor *t);
/* Marks input k (< AG_NODE_INLINE_IN) as read by backward, with the same check. */
void ag__save_input(ag_node *n, int k);
/* Whether input k's values were kept for backward (ag__save_input): a rule
 * whose operand was not (requires_grad set after the forward) gives no
 * gradient, as PyTorch's graph would not include it. */
static inline bool ag__input_kept(const ag_node *n, int k) { return (n->in_read >> k & 1) != 0; }
void ag__node_release(ag_node *n);

/* ---- tensors ------------------------------------------------------------- */

/* New contiguous tensor on dev, owned by the current scope or the caller. */
ag_tensor *ag__empty_on(ag_device *dev, ag_dtype dt, int ndim, const int64_t *shape);
ag_tensor *ag__empty_like(const ag_tensor *t);
/* A 0-dim f32 constant on like's device (temporaries must not land elsewhere). */
ag_tensor *ag__scalar_like(const ag_tensor *like, float value);
/* A view of base's storage with the given layout (no autograd). */
ag_tensor *ag__alias(ag_tensor *base, int ndim, const int64_t *shape, const int64_t *stride,
                     int64_t offset);
/* Views are built on every launch: inline, and every field written once (a
 * zeroing initialiser compiled to rep stos plus stalled reloads, ~10% of a small
 * op's host time). Axes past ndim are 0. */
static inline ag_view ag__view(const ag_tensor *t)
{
    ag_view v;
    v.buf = t->st->buf;
    v.offset = t->offset;
    v.dtype = t->dtype;
    v.ndim = t->ndim;
    for (int d = 0; d < AG_MAX_DIMS; d++) {
        v.shape[d] = d < t->ndim ? t->shape[d] : 0;
        v.stride[d] = d < t->ndim ? t->stride[d] : 0;
    }
    return v;
}
/* t broadcast to shape (t's ndim <= ndim; sizes 1 or equal) as a stride-0 view. */
static inline ag_view ag__view_bcast(const ag_tensor *t, int ndim, const int64_t *shape)
{
    ag_view v;
    v.buf = t->st->buf;
    v.offset = t->offset;
    v.dtype = t->dtype;
    v.ndim = ndim;
    const int lead = ndim - t->ndim;
    for (int d = 0; d < AG_MAX_DIMS; d++) {
        const int s = d - lead;
        v.shape[d] = d < ndim ? shape[d] : 0;
        v.stride[d] = d < ndim && s >= 0 && t->shape[s] == shape[d] ? t->stride[s] : 0;
    }
    return v;
}
/* t itself when contiguous, otherwise a contiguous copy (no autograd: use inside
 * ops, on tensors whose gradient is handled by the caller). */
ag_tensor *ag__contiguous(ag_tensor *t);
/* Sums g over the axes that broadcasting expanded so it has the given shape. */
ag_tensor *ag__reduce_to(ag_tensor *g, int ndim, const int64_t *shape);
/* Registers t with the current scope if there is one. */
ag_tensor *ag__own(ag_tensor *t);
/* Ops open a scope on entry so that temporaries, and the result on an error
 * path, are freed exactly once; they leave through ag__done(result or NULL). */
static inline ag_tensor *ag__done(ag_tensor *y)
{
    if (y) return ag_scope_return(y);
    ag_scope_end();
    return NULL;
}

int64_t ag__numel_shape(int ndim, const int64_t *shape);
/* *acc *= n unless the element count would pass AG_MAX_NUMEL. */
#define AG_MAX_NUMEL (INT64_MAX / 16)
static inline bool ag__mul_ok(int64_t *acc, int64_t n)
{
    if (n > 0 && *acc > AG_MAX_NUMEL / n) return false;
    *acc *= n;
    return true;
}
/* A shape is usable when its element count and its extent (sizes with 0 read
 * as 1, which bounds the strides) both stay under AG_MAX_NUMEL. */
static inline bool ag__shape_fits(int ndim, const int64_t *shape)
{
    int64_t n = 1, span = 1;
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0 || !ag__mul_ok(&n, shape[d]) ||
            !ag__mul_ok(&span, shape[d] ? shape[d] : 1))
            return false;
    return true;
}
bool ag__is_contiguous(const ag_tensor *t);
bool ag__same_shape(const ag_tensor *a, const ag_tensor *b);
/* Broadcast shape of a and b; false (with an error naming both) if incompatible. */
bool ag__broadcast_shape(const char *op, int na, const int64_t *sa, int nb, const int64_t *sb,
                         int *nout, int64_t *out);
/* Normalised axis in [0, ndim), or -1 with an error. */
int ag__axis(const char *op, int axis, int ndim);
/* Argument checks that set the error: NULL inputs propagate silently.
 * AG_ANY accepts every dtype. */
#define AG_ANY ((ag_dtype)-1)
bool ag__check(const char *op, const ag_tensor *t, ag_dtype dt);
bool ag__same_device(const char *op, const ag_tensor *a, const ag_tensor *b);

/* The device a tensor lives on, and calls into its backend. */
static inline ag_device *ag__dev(const ag_tensor *t) { return t->dev; }
#define AG_LAUNCH(dev, fn, ...)                                                            \
    (ag_fault_hit(AG_FAULT_LAUNCH)                                                      \
         ? ag_set_error(AG_ERR_DEVICE, "injected fault: launching " #fn " on %s failed",   \
                        (dev)->name)                                                    \
     : (dev)->i->fn ? (dev)->i->fn((dev)->ctx, __VA_ARGS__)                             \
                    : ag_set_error(AG_ERR_UNSUPPORTED, "backend %s has no kernel " #fn, \
                                   (dev)->i->name))
/* Host to device copy through the backend (with fault injection). */
ag_status ag__upload(ag_device *dev, ag_buffer *buf, size_t off, const void *src, size_t bytes);

/* ---- modes ------------------------------------------------------------- */

bool ag__grad_mode(void);
/* Next Philox stream number of the global generator. */
void ag__rng_next(uint64_t *seed, uint64_t *stream);
/* The stream ag__rng_next would give, without taking it (for a launch that may
 * be refused before it draws). */
void ag__rng_peek(uint64_t *seed, uint64_t *stream);

/* Front-end helpers used by several op files. */
ag_tensor *ag__unary_raw(ag_unary_op op, ag_tensor *x, float p0, float p1); /* no autograd */

#endif /* AG_CORE_H */
