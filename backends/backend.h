/* The op interface every backend implements (the contract).
 *
 * A backend is a table of function pointers plus a context pointer. Kernels may
 * run asynchronously: they enqueue and return; only download() and sync() wait.
 * Every function returns AG_OK or an error status after calling ag_set_error().
 *
 * Tensors reach kernels as views: a buffer, an element offset, a shape and
 * strides in elements (stride 0 broadcasts). Element-wise, reduction, copy,
 * fill, gather and scatter kernels accept any strides. The others say
 * "contiguous": the core makes those views dense row-major before calling.
 * Unless a kernel says otherwise, outputs never alias inputs.
 */
#ifndef AG_BACKEND_H
#define AG_BACKEND_H

#include "anygrad.h"
#include "base.h" /* errors, fault injection, Philox */

typedef struct ag_buffer ag_buffer; /* defined by each backend */

typedef struct ag_view {
    ag_buffer *buf;
    int64_t offset;                  /* elements */
    ag_dtype dtype;
    int ndim;                        /* 0 = scalar */
    int64_t shape[AG_MAX_DIMS];
    int64_t stride[AG_MAX_DIMS];     /* elements */
} ag_view;

typedef enum ag_pool_op { AG_POOL_MAX, AG_POOL_AVG } ag_pool_op;
typedef enum ag_rand_dist { AG_RAND_UNIFORM, AG_RAND_NORMAL } ag_rand_dist;

/* Philox-4x32-10 with key (seed lo, seed hi) and counter (block lo, block hi,
 * stream lo, stream hi). Uniform element i: block i/4, word i%4, value
 * (word >> 8) * 2^-24 in [0, 1), scaled to [a, b). Normal element i: block i/2,
 * words u = w[2*(i%2)], v = w[2*(i%2)+1] as ((word >> 8) + 1) * 2^-24 in (0, 1],
 * z = sqrt(-2 ln u) cos(2 pi v), value a + b z. */
typedef struct ag_rand_args {
    uint64_t seed, stream;
    ag_rand_dist dist;
    float a, b;
} ag_rand_args;

/* Normalisation, forward and backward.
 * layer norm: x, y, dy, dx viewed as [rows, D]; mean, rstd [rows]; gamma, beta,
 *   dgamma, dbeta [D] or NULL.
 * batch norm: x, y, dy, dx viewed as [N, C, S]; mean, rstd, running_mean,
 *   running_var, gamma, beta, dgamma, dbeta [C] (gamma, beta, dgamma, dbeta and the
 *   running stats may be NULL). Training: mean/rstd receive the batch statistics
 *   (biased variance) and the running stats move by momentum towards the batch
 *   mean and unbiased variance. Eval: mean/rstd receive the running stats'
 *   mean and 1/sqrt(var + eps), and backward treats them as constants.
 * All views contiguous. */
typedef struct ag_norm_args {
    float eps, momentum;
    bool training;
    const ag_view *x, *y, *mean, *rstd, *gamma, *beta, *running_mean, *running_var;
    const ag_view *dy, *dx, *dgamma, *dbeta;
} ag_norm_args;

/* Fused optimizer step on contiguous param, grad and state views of one shape.
 * SGD: s0 = momentum buffer (NULL when momentum == 0).
 * RMSProp: s0 = square average, s1 = momentum buffer (NULL when momentum == 0).
 * Adam/AdamW: s0 = first moment, s1 = second moment; step is 1-based. */
typedef struct ag_optim_args {
    ag_optim_config cfg;
    float lr;
    int64_t step;
} ag_optim_args;

/* Scaled dot-product attention on 4-D views [B0, B1, rows, features]: any
 * strides (batch strides may be 0) but a unit stride on the last axis of q, k,
 * v, o, dout, dq, dk, dv. q [B0, B1, L, E], k [B0, B1, S, E], v [B0, B1, S, Ev],
 * o [B0, B1, L, Ev] (forward only); mask [B0, B1, L, S] (any strides) or NULL; stats
 * contiguous [B0, B1, L, 2] and delta contiguous [B0, B1, L]. B0, B1, L, S > 0.
 *   s_ij = scale * q_i . k_j + mask_ij; with causal, keys j > i take no part;
 *   p_ij = exp(s_ij - m_i) / l_i with m_i = max_j s_ij, l_i = sum_j exp(s_ij - m_i);
 *   stats_i = (m_i, 1 / l_i), saved so that backward rebuilds the same p from q
 *   and k instead of keeping the [L, S] weights;
 *   dropout > 0: weight (b0, b1, i, j) is kept when the Philox uniform (rng,
 *   element ((b0 * B1 + b1) * L + i) * S + j) >= dropout and scaled by the float
 *   1 / (1 - dropout) (z_ij: that factor or 0); dropout < 1;
 *   o_i = sum_j p_ij z_ij v_j.
 * A NaN score makes its row NaN; a row whose every key is masked (-inf) is NaN,
 * as a softmax of -inf is.
 * backward (no o: the rebuilt p gives what it would): dp_ij = dout_i . v_j,
 *   delta_i = sum_j p_ij z_ij dp_ij (= dout_i . o_i; delta is scratch the kernels
 *   may use), ds_ij = p_ij (z_ij dp_ij - delta_i),
 *   dv_j = sum_i p_ij z_ij dout_i, dq_i = scale sum_j ds_ij k_j,
 *   dk_j = scale sum_i ds_ij q_i;
 * dq, dk, dv are overwritten, each NULL when not wanted, never broadcast (the
 * core sums broadcast batch axes). forward returns AG_ERR_UNSUPPORTED, before
 * doing anything, when this device cannot run these shapes forward and
 * backward (limits): the core then composes attention from other ops. */
typedef struct ag_attn_args {
    float scale, dropout;
    bool causal;
    ag_rand_args rng;
    const ag_view *q, *k, *v, *mask, *o, *stats;
    const ag_view *dout, *delta, *dq, *dk, *dv;
} ag_attn_args;

/* What the probe ranks and deduplicates devices by. */
typedef struct ag_backend_props {
    ag_device_kind kind;
    uint64_t memory_bytes;
    uint32_t vendor_id, device_id;   /* PCI ids; 0 when unknown */
    uint8_t uuid[16];                /* device UUID (Vulkan, cl_khr_device_uuid) */
    bool has_uuid;
} ag_backend_props;

typedef struct ag_backend_i {
    const char *name;
    /* This backend's AG_ON_* bit in the op tables (src/ops/unary_table.h): the
     * front end refuses an op whose row lacks it, so a kernel a backend has not
     * written fails with a message instead of running something else. */
    unsigned table_bit;
    void (*destroy)(void *ctx);
    /* Human-readable device name, e.g. "Intel Xeon ... (avx512)". */
    void (*describe)(void *ctx, char *buf, size_t size);
    /* One line of "key: value" pairs (vendor, memory, units...); may be NULL. */
    void (*details)(void *ctx, char *buf, size_t size);
    void (*props)(void *ctx, ag_backend_props *out);

    /* memory */
    ag_buffer *(*alloc)(void *ctx, size_t bytes);   /* NULL + error on failure */
    void (*free)(void *ctx, ag_buffer *buf);
    ag_status (*upload)(void *ctx, ag_buffer *dst, size_t offset_bytes, const void *src, size_t bytes);
    ag_status (*download)(void *ctx, ag_buffer *src, size_t offset_bytes, void *dst, size_t bytes);
    /* Optional: the buffer's bytes when they are host memory that readers may
     * use in place until it is freed (the CPU), else NULL or no member. */
    void *(*host_data)(void *ctx, ag_buffer *buf);
    /* dst[i] = src[i] over dst's shape; converts between f32, i32 and (the CPU)
     * u8: floats truncate toward 0, out-of-range values saturate, NaN gives 0. */
    ag_status (*copy)(void *ctx, const ag_view *dst, const ag_view *src);
    ag_status (*fill)(void *ctx, const ag_view *dst, double value);
    ag_status (*sync)(void *ctx);

    /* element-wise, f32; inputs already expanded to y's shape (stride 0) */
    ag_status (*unary)(void *ctx, ag_unary_op op, const float p[2], const ag_view *y, const ag_view *x);
    /* dx = dy * f'(x); y = f(x) is given for ops whose derivative uses it. */
    ag_status (*unary_backward)(void *ctx, ag_unary_op op, const float p[2], const ag_view *dx,
                                const ag_view *dy, const ag_view *x, const ag_view *y);
    ag_status (*binary)(void *ctx, ag_binary_op op, const ag_view *y, const ag_view *a, const ag_view *b);
    ag_status (*where)(void *ctx, const ag_view *y, const ag_view *cond, const ag_view *a, const ag_view *b);

    /* y has x's ndim; every axis where y's size is 1 and x's is not is reduced.
     * ARGMAX/ARGMIN reduce one axis and write int32 (first index on ties). */
    ag_status (*reduce)(void *ctx, ag_reduce_op op, const ag_view *y, const ag_view *x);

    /* c[b] = alpha * a[b] @ b[b] + beta * c[b]; a [B, M, K], b [B, K, N], c [B, M, N].
     * a and b have unit stride in one of their last two axes (that is the
     * transpose flag); batch strides may be 0. c is contiguous. beta == 0 ignores
     * c's old contents (NaN included). */
    ag_status (*gemm)(void *ctx, float alpha, float beta, const ag_view *c, const ag_view *a,
                      const ag_view *b);

    /* over the last axis of contiguous [rows, cols] views */
    ag_status (*softmax)(void *ctx, bool log, const ag_view *y, const ag_view *x);
    /* softmax: dx = y (dy - sum(dy y)); log: dx = dy - exp(y) sum(dy) */
    ag_status (*softmax_backward)(void *ctx, bool log, const ag_view *dx, const ag_view *dy,
                                  const ag_view *y);

    /* loss [N] per row, logits [N, C], labels int32 [N]; label smoothing s mixes the
     * one-hot target with the uniform 1/C. dlogits = dloss[n] (softmax - target). */
    ag_status (*cross_entropy)(void *ctx, float smoothing, const ag_view *loss,
                               const ag_view *logits, const ag_view *labels);
    ag_status (*cross_entropy_backward)(void *ctx, float smoothing, const ag_view *dlogits,
                                        const ag_view *dloss, const ag_view *logits,
                                        const ag_view *labels);

    /* NCHW, contiguous; y [N, OC, OH, OW], x [N, C, H, W], w [OC, C/g, KH, KW]. No bias. */
    ag_status (*conv2d)(void *ctx, const ag_conv2d_params *p, const ag_view *y, const ag_view *x,
                        const ag_view *w);
    ag_status (*conv2d_backward_input)(void *ctx, const ag_conv2d_params *p, const ag_view *dx,
                                       const ag_view *dy, const ag_view *w);
    ag_status (*conv2d_backward_weight)(void *ctx, const ag_conv2d_params *p, const ag_view *dw,
                                        const ag_view *dy, const ag_view *x);

    /* y [N, C, OH, OW] from x [N, C, H, W]; max writes int32 indices h * W + w of the
     * chosen input (first maximum; padding never chosen), avg counts padding. */
    ag_status (*pool2d)(void *ctx, ag_pool_op op, const ag_pool2d_params *p, const ag_view *y,
                        const ag_view *indices, const ag_view *x);
    /* dx is overwritten; max uses indices, avg spreads dy / (kh * kw). */
    ag_status (*pool2d_backward)(void *ctx, ag_pool_op op, const ag_pool2d_params *p,
                                 const ag_view *dx, const ag_view *dy, const ag_view *indices);

    /* optional (NULL: the core composes attention from other ops) */
    ag_status (*attention)(void *ctx, const ag_attn_args *a);
    ag_status (*attention_backward)(void *ctx, const ag_attn_args *a);

    ag_status (*layer_norm)(void *ctx, const ag_norm_args *a);
    ag_status (*layer_norm_backward)(void *ctx, const ag_norm_args *a);
    ag_status (*batch_norm)(void *ctx, const ag_norm_args *a);
    ag_status (*batch_norm_backward)(void *ctx, const ag_norm_args *a);

    /* torch.gather: y[..i..] = x[..index[..i..]..] along axis; index int32 shaped as y.
     * scatter_add: y[..index[..i..]..] += src[..i..] along axis (y updated in place).
     * Indices outside [0, size) are skipped. */
    ag_status (*gather)(void *ctx, int axis, const ag_view *y, const ag_view *x, const ag_view *index);
    ag_status (*scatter_add)(void *ctx, int axis, const ag_view *y, const ag_view *index,
                             const ag_view *src);

    /* contiguous f32 */
    ag_status (*rand)(void *ctx, const ag_rand_args *r, const ag_view *y);
    /* mask = (uniform(r, i) >= p) / (1 - p); y = x * mask. */
    ag_status (*dropout)(void *ctx, const ag_rand_args *r, float p, const ag_view *y,
                         const ag_view *mask, const ag_view *x);

    ag_status (*optim_step)(void *ctx, const ag_optim_args *o, const ag_view *param,
                            const ag_view *grad, const ag_view *s0, const ag_view *s1);
} ag_backend_i;

/* Declares <be>_alloc ... <be>_optim_step: backend be's functions for the
 * members of ag_backend_i from alloc on, named after them, so that the
 * backends' internal headers need not repeat the contract. */
#define AG_BACKEND_DECLARE(be)                                                                     \
    ag_buffer *be##_alloc(void *ctx, size_t bytes);                                                \
    void be##_free(void *ctx, ag_buffer *buf);                                                     \
    ag_status be##_upload(void *ctx, ag_buffer *dst, size_t off, const void *src, size_t bytes);   \
    ag_status be##_download(void *ctx, ag_buffer *src, size_t off, void *dst, size_t bytes);       \
    ag_status be##_copy(void *ctx, const ag_view *dst, const ag_view *src);                        \
    ag_status be##_fill(void *ctx, const ag_view *dst, double value);                              \
    ag_status be##_sync(void *ctx);                                                                \
                                                                                                   \
    ag_status be##_unary(void *ctx, ag_unary_op op, const float p[2], const ag_view *y,            \
                         const ag_view *x);                                                        \
    ag_status be##_unary_backward(void *ctx, ag_unary_op op, const float p[2], const ag_view *dx,  \
                                  const ag_view *dy, const ag_view *x, const ag_view *y);          \
    ag_status be##_binary(void *ctx, ag_binary_op op, const ag_view *y, const ag_view *a,          \
                          const ag_view *b);                                                       \
    ag_status be##_where(void *ctx, const ag_view *y, const ag_view *cond, const ag_view *a,       \
                         const ag_view *b);                                                        \
    ag_status be##_reduce(void *ctx, ag_reduce_op op, const ag_view *y, const ag_view *x);         \
    ag_status be##_gemm(void *ctx, float alpha, float beta, const ag_view *c, const ag_view *a,    \
                        const ag_view *b);                                                         \
                                                                                                   \
    ag_status be##_softmax(void *ctx, bool log, const ag_view *y, const ag_view *x);               \
    ag_status be##_softmax_backward(void *ctx, bool log, const ag_view *dx, const ag_view *dy,     \
                                    const ag_view *y);                                             \
    ag_status be##_cross_entropy(void *ctx, float smoothing, const ag_view *loss,                  \
                                 const ag_view *logits, const ag_view *labels);                    \
    ag_status be##_cross_entropy_backward(void *ctx, float smoothing, const ag_view *dlogits,      \
                                          const ag_view *dloss, const ag_view *logits,             \
                                          const ag_view *labels);                                  \
                                                                                                   \
    ag_status be##_conv2d(void *ctx, const ag_conv2d_params *p, const ag_view *y,                  \
                          const ag_view *x, const ag_view *w);                                     \
    ag_status be##_conv2d_backward_input(void *ctx, const ag_conv2d_params *p, const ag_view *dx,  \
                                         const ag_view *dy, const ag_view *w);                     \
    ag_status be##_conv2d_backward_weight(void *ctx, const ag_conv2d_params *p, const ag_view *dw, \
                                          const ag_view *dy, const ag_view *x);                    \
    ag_status be##_pool2d(void *ctx, ag_pool_op op, const ag_pool2d_params *p, const ag_view *y,   \
                          const ag_view *indices, const ag_view *x);                               \
    ag_status be##_pool2d_backward(void *ctx, ag_pool_op op, const ag_pool2d_params *p,            \
                                   const ag_view *dx, const ag_view *dy, const ag_view *indices);  \
                                                                                                   \
    ag_status be##_attention(void *ctx, const ag_attn_args *a);                                    \
    ag_status be##_attention_backward(void *ctx, const ag_attn_args *a);                           \
    ag_status be##_layer_norm(void *ctx, const ag_norm_args *a);                                   \
    ag_status be##_layer_norm_backward(void *ctx, const ag_norm_args *a);                          \
    ag_status be##_batch_norm(void *ctx, const ag_norm_args *a);                                   \
    ag_status be##_batch_norm_backward(void *ctx, const ag_norm_args *a);                          \
                                                                                                   \
    ag_status be##_gather(void *ctx, int axis, const ag_view *y, const ag_view *x,                 \
                          const ag_view *index);                                                   \
    ag_status be##_scatter_add(void *ctx, int axis, const ag_view *y, const ag_view *index,        \
                               const ag_view *src);                                                \
                                                                                                   \
    ag_status be##_rand(void *ctx, const ag_rand_args *r, const ag_view *y);                       \
    ag_status be##_dropout(void *ctx, const ag_rand_args *r, float p, const ag_view *y,            \
                           const ag_view *mask, const ag_view *x);                                 \
                                                                                                   \
    ag_status be##_optim_step(void *ctx, const ag_optim_args *o, const ag_view *param,             \
                              const ag_view *grad, const ag_view *s0, const ag_view *s1)

/* Writes a shape as "[2, 3]" for error messages (backend_util.c). */
void ag__shape_fmt(int ndim, const int64_t *shape, char *buf, size_t size);
void ag_view_shape_str(const ag_view *v, char *buf, size_t size);

/* backends/common/backend_util.c: checks every backend makes. A view that exists,
 * has a buffer and the wanted dtype: */
ag_status ag_check_view(const char *backend, const char *op, const char *what, const ag_view *v,
                        ag_dtype dtype);
/* Element-wise operands: valid, f32 (operand cond_at may be int32; -1: none),
 * all of v[0]'s shape. */
ag_status ag_ew_check(const char *backend, const char *op, int nops, const ag_view *const *v,
                      int cond_at);

/* ag_attn_args' views against the contract (shapes, dtypes, unit strides, o
 * forward only,
 * contiguous stats and delta, B0, B1, L, S > 0, dropout in [0, 1)); dims receives B0, B1,
 * L, S, E, Ev. */
ag_status ag_attn_check(const char *backend, const char *op, const ag_attn_args *a, bool backward,
                        int64_t dims[6]);

/* The 4-byte pattern fill() writes for value in dtype (f32, or int32 truncated
 * toward zero and saturated, NaN -> 0). */
uint32_t ag_fill_bits(ag_dtype dtype, double value);

/* GPU kernels index with int32. A shape and per-operand strides in the layout
 * their kernels declare: 4-byte members, the arrays 16-byte aligned and each
 * struct a multiple of 16 bytes, so OpenCL structs, std430 blocks and std140
 * (uniform) blocks all match (Vulkan shaders read them as ivec4[2]); size-1 axes
 * dropped, axes every operand lays out as one merged.
 */
typedef struct ag_shape32 {
    _Alignas(16) int32_t nd;
    int32_t numel, pad_[2];
    int32_t n[AG_MAX_DIMS];
} ag_shape32;
typedef struct ag_strides32 {
    _Alignas(16) int32_t off;
    int32_t pad_[3];
    int32_t s[AG_MAX_DIMS];
} ag_strides32;
_Static_assert(sizeof(ag_shape32) == 48 && sizeof(ag_strides32) == 48, "kernels' view layout");
static inline int64_t ag_view_numel(const ag_view *v)
{
    int64_t n = 1;
    for (int d = 0; d < v->ndim; d++) n *= v->shape[d];
    return n;
}
/* Dense row-major (size-1 axes may carry any stride): what "contiguous" means
 * in the contract. */
bool ag_view_is_contiguous(const ag_view *v);
/* nops views of v[0]'s shape; AG_ERR_UNSUPPORTED when an index needs 2^31 or more. */
ag_status ag_layout32(const char *backend, const char *op, int nops, const ag_view *const *v,
                      ag_shape32 *shape, ag_strides32 *st);
/* A view's element offset, checked to index with int32. */
ag_status ag_offset32(const char *backend, const char *op, const ag_view *v, int32_t *off);

/* CPU backend constructor (backends/cpu). */
ag_status ag_cpu_backend_create(const ag_backend_i **iface, void **ctx);

/* OpenCL (backends/opencl, built when AG_HAVE_OPENCL): one context per device of
 * every platform, at most max; returns how many (0 when OpenCL is unusable, the
 * reason in the thread's error). With max 0 it only sets *iface and loads
 * nothing (the probe's child process made the devices; see src/core/device.c). */
int ag_opencl_backends_create(const ag_backend_i **iface, void **ctxs, int max);
/* Its objects alive now (ag_debug_live_cl_objects; type already checked). */
int64_t ag_opencl_live_objects(ag_cl_object type);
/* Vulkan (backends/vulkan, built when AG_HAVE_VULKAN): one device per physical
 * device with a compute queue, at most max; max 0 as for OpenCL. */
int ag_vulkan_backends_create(const ag_backend_i **iface, void **ctxs, int max);

#endif /* AG_BACKEND_H */
