/* anygrad: tensors, autograd and training on any GPU or CPU.
 *
 * Conventions
 *  - Every function that returns a tensor returns a new reference, or NULL on
 *    error with the reason in ag_last_error(). A NULL input makes an op return
 *    NULL without overwriting the first error, so nested calls report it.
 *  - A tensor used after its last reference was released fails with
 *    AG_ERR_STATE (detected until 1024 more tensors were released on that
 *    thread), and so does backward when a tensor the forward pass saved was
 *    modified in place (ag_from_host, an optimizer step...) in between.
 *  - Inside ag_scope_begin()/ag_scope_end() the scope owns every tensor created;
 *    outside any scope the caller owns it and calls ag_release().
 *  - Shapes are int64_t, at most AG_MAX_DIMS dimensions; negative axes count
 *    from the end, as in PyTorch.
 *  - Names: ag_<op> for tensor ops (ag_matmul), ag_<object>_<verb> for the rest
 *    (ag_module_save, ag_safetensors_load, ag_loader_next). Tensors are reference
 *    counted (ag_retain, ag_release); every other object made by ag_<object>_new
 *    (or a loader such as ag_safetensors_load) has one owner and is freed with
 *    ag_<object>_free, which accepts NULL.
 *  - Threads: the last error, the scope stack, grad mode, the default device
 *    and the random generator are per thread. Devices, the probe, and creating,
 *    retaining and releasing tensors are safe from any thread; several threads
 *    may read one tensor, none may write it (ag_from_host, an optimizer step)
 *    meanwhile. A module, optimizer, loader or tensor dict, and an autograd
 *    graph, belong to one thread at a time. docs/guide.md, "Threads".
 */
#ifndef ANYGRAD_H
#define ANYGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the functions the shared library exports; everything else in it is hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define AG_API __attribute__((visibility("default")))
#else
#define AG_API
#endif

#define AG_MAX_DIMS 8
#define AG_VERSION "0.1.0"

/* ---- errors ------------------------------------------------------------ */

typedef enum ag_status {
    AG_OK = 0,
    AG_ERR_ARG,         /* NULL or out-of-range argument */
    AG_ERR_SHAPE,       /* incompatible shapes */
    AG_ERR_DTYPE,       /* unsupported or mismatched dtype */
    AG_ERR_DEVICE,      /* device failure or tensors on different devices */
    AG_ERR_OOM,         /* out of host or device memory */
    AG_ERR_IO,          /* file or parse error */
    AG_ERR_STATE,       /* misuse: a released tensor, backward twice, a saved tensor changed */
    AG_ERR_UNSUPPORTED  /* valid request this build or backend cannot do */
} ag_status;

AG_API const char *ag_last_error(void);       /* message of the last error on this thread */
AG_API ag_status ag_last_status(void);
AG_API void ag_clear_error(void);
AG_API const char *ag_status_name(ag_status s);

/* ---- types ------------------------------------------------------------- */

/* Ops compute in f32 (i32 for labels and indices). u8 is storage for data sets
 * in their file's type (image pixels: a quarter of the memory of f32): it is
 * created, viewed, copied, concatenated and converted with ag_to_dtype on the
 * CPU, and loaders turn it into f32 batches; every other op refuses it, as the
 * GPU backends do. f16 and bf16 only name safetensors types (they load as f32). */
typedef enum ag_dtype { AG_F32 = 0, AG_I32 = 1, AG_F16 = 2, AG_BF16 = 3, AG_U8 = 4 } ag_dtype;

typedef struct ag_tensor ag_tensor;
typedef struct ag_device ag_device;
typedef struct ag_optim ag_optim;

AG_API size_t ag_dtype_size(ag_dtype dt);
AG_API const char *ag_dtype_name(ag_dtype dt);

/* ---- devices ------------------------------------------------------------ */

/* The probe finds the CPU, every OpenCL device and every Vulkan device; a GPU
 * stack that is missing or broken is skipped (ag_device_unavailable says why).
 * The default is the best by kind, discrete GPU > integrated GPU > native CPU;
 * software implementations (PoCL's CPU device, lavapipe) are never the default
 * but stay selectable. AG_DEVICE=cpu | opencl[:N] | vulkan[:N] | name substring
 * overrides it. */
typedef enum ag_device_kind {
    AG_DEVICE_DISCRETE_GPU, AG_DEVICE_INTEGRATED_GPU, AG_DEVICE_CPU, AG_DEVICE_SOFTWARE,
    AG_DEVICE_OTHER
} ag_device_kind;

typedef struct ag_device_props {
    const char *backend;      /* "cpu", "opencl", "vulkan" */
    const char *name;
    ag_device_kind kind;
    uint64_t memory_bytes;    /* device memory (host RAM for the CPU) */
    double gflops, gbps;      /* calibration (SGEMM, copy); 0 until calibrated */
    bool is_default;          /* what ag_device_default picks without AG_DEVICE */
    int same_as;              /* index of the preferred entry for the same physical
                                 GPU seen through another API, or -1 */
} ag_device_props;

AG_API int ag_device_count(void);
AG_API ag_device *ag_device_get(int index);
AG_API ag_device *ag_device_default(void);             /* honours AG_DEVICE */
AG_API ag_device *ag_device_by_name(const char *name); /* "cpu", "opencl:1", "H200", ... */
AG_API const char *ag_device_name(const ag_device *dev);
AG_API const char *ag_device_backend(const ag_device *dev);
AG_API int ag_device_index(const ag_device *dev);
AG_API ag_status ag_device_info(const ag_device *dev, ag_device_props *out);
AG_API const char *ag_device_kind_name(ag_device_kind kind);
/* One line of "key: value" details (vendor, driver, memory, compute units...)
 * into buf; the empty string when the backend has none. */
AG_API ag_status ag_device_details(const ag_device *dev, char *buf, size_t size);
/* Measures SGEMM GFLOP/s and copy GB/s (about 100 ms; cached on disk by device
 * and driver, so only the first call measures unless force is set). */
AG_API ag_status ag_device_calibrate(ag_device *dev, bool force);
/* Backends that were not usable: i in [0, count); NULL past the end. */
AG_API int ag_device_unavailable_count(void);
AG_API const char *ag_device_unavailable(int i, const char **reason);
AG_API ag_status ag_set_default_device(ag_device *dev); /* for this thread's new tensors */
AG_API ag_status ag_device_sync(ag_device *dev);

/* ---- debugging: fault injection ----------------------------------------- */

/* Makes the nth event of one kind from now on fail once, on every backend, with
 * an error saying it was injected (n >= 1; n = 0 only counts events). For
 * testing that failures leave nothing leaked and the program able to go on.
 * AG_FAULT=alloc:N (or upload, build, launch, write) arms one at start. */
typedef enum ag_fault_point {
    AG_FAULT_ALLOC,   /* device buffer allocation */
    AG_FAULT_UPLOAD,  /* host to device copy */
    AG_FAULT_BUILD,   /* kernel program / pipeline build (GPU backends) */
    AG_FAULT_LAUNCH,  /* a kernel call into the backend */
    AG_FAULT_WRITE,   /* a step of saving a file: create, write, flush, sync, close, rename */
    AG_FAULT_COUNT
} ag_fault_point;
AG_API ag_status ag_debug_fault(ag_fault_point point, int64_t n);
/* Events of that kind since its last ag_debug_fault call. */
AG_API int64_t ag_debug_fault_events(ag_fault_point point);
/* Device buffers alive now, over all devices (leak checks). */
AG_API int64_t ag_debug_live_buffers(void);
/* OpenCL objects alive now, by type, over all devices: created by anygrad and
 * not yet released (leak checks). 0 without OpenCL, -1 for a bad type. Objects
 * CLBlast makes on its own are not counted; anygrad makes no events. */
typedef enum ag_cl_object {
    AG_CL_CONTEXT, AG_CL_QUEUE, AG_CL_PROGRAM, AG_CL_KERNEL, AG_CL_MEM, AG_CL_OBJECT_COUNT
} ag_cl_object;
AG_API int64_t ag_debug_live_cl_objects(ag_cl_object type);
/* Tears down a GPU device's backend state (context, queue, kernels, cached
 * buffers: what the probe and its use created) and sets it up afresh, so that
 * tests can check the teardown releases everything. Refused while any device
 * buffer is alive, and for the CPU; no other thread may use the device meanwhile.
 * The library never tears devices down by itself: the OS reclaims them at exit. */
AG_API ag_status ag_debug_device_reset(ag_device *dev);

/* ---- creation ----------------------------------------------------------- */

AG_API ag_tensor *ag_empty(int ndim, const int64_t *shape, ag_dtype dtype);
AG_API ag_tensor *ag_zeros(int ndim, const int64_t *shape);
AG_API ag_tensor *ag_ones(int ndim, const int64_t *shape);
AG_API ag_tensor *ag_full(int ndim, const int64_t *shape, float value);
AG_API ag_tensor *ag_scalar(float value);               /* 0-dim */
AG_API ag_tensor *ag_zeros_like(const ag_tensor *t);
AG_API ag_tensor *ag_ones_like(const ag_tensor *t);
AG_API ag_tensor *ag_from_f32(const float *data, int ndim, const int64_t *shape);
AG_API ag_tensor *ag_from_i32(const int32_t *data, int ndim, const int64_t *shape);
AG_API ag_tensor *ag_from_u8(const uint8_t *data, int ndim, const int64_t *shape);
AG_API ag_tensor *ag_arange(int64_t n);                 /* 0..n-1 as f32 */
AG_API ag_tensor *ag_to_device(ag_tensor *t, ag_device *dev);
/* Between f32, i32 and u8 (u8 on the CPU only). Floats truncate toward zero;
 * values out of the target's range saturate and NaN becomes 0. */
AG_API ag_tensor *ag_to_dtype(ag_tensor *t, ag_dtype dtype);

/* Philox-4x32-10 counter RNG: element i of the k-th random op after
 * ag_manual_seed(s) is the same number, bit for bit, on every backend (normal
 * draws included: their log, sqrt and cos are the library's own, not the
 * drivers'). Each thread has its own
 * generator: ag_manual_seed seeds the calling thread's, and a thread that never
 * calls it starts from the same default seed as every other; random ops
 * (ag_rand, ag_randn, ag_dropout, module initialisation) draw from the
 * calling thread's. Seeded code gives the same numbers in any thread. */
AG_API void ag_manual_seed(uint64_t seed);
AG_API ag_tensor *ag_rand(int ndim, const int64_t *shape, float lo, float hi);
AG_API ag_tensor *ag_randn(int ndim, const int64_t *shape, float mean, float std);

/* ---- lifetime ----------------------------------------------------------- */

/* One more reference to t: the caller's to release, and it outlives the current
 * scope (how a function hands a tensor out of its own scope). */
AG_API ag_tensor *ag_retain(ag_tensor *t);
AG_API void ag_release(ag_tensor *t);          /* NULL is fine; one release too many: AG_ERR_STATE */
AG_API void ag_scope_begin(void);
AG_API void ag_scope_end(void);
/* Ends the innermost scope but keeps t alive, handing it to the enclosing
 * scope (or to the caller when there is none). Returns t. */
AG_API ag_tensor *ag_scope_return(ag_tensor *t);
/* How many scopes are open on this thread (for checking that they balance). */
AG_API int ag_scope_depth(void);

/* ---- inspection and host data ------------------------------------------- */

AG_API int ag_ndim(const ag_tensor *t);
AG_API int64_t ag_dim(const ag_tensor *t, int axis);     /* -1 on error */
AG_API int ag_shape(const ag_tensor *t, int64_t shape[AG_MAX_DIMS]); /* returns ndim */
AG_API int64_t ag_numel(const ag_tensor *t);
AG_API ag_dtype ag_dtype_of(const ag_tensor *t);
AG_API ag_device *ag_device_of(const ag_tensor *t);
AG_API bool ag_is_contiguous(const ag_tensor *t);
/* Copies the elements in row-major logical order; bytes must equal numel * dtype size. */
AG_API ag_status ag_to_host(const ag_tensor *t, void *dst, size_t bytes);
AG_API ag_status ag_from_host(ag_tensor *t, const void *src, size_t bytes);
AG_API ag_status ag_item(const ag_tensor *t, float *out);   /* one-element tensors */
/* Writes "[2, 3] f32" style text into buf; returns buf. */
AG_API const char *ag_shape_str(const ag_tensor *t, char *buf, size_t size);

/* ---- views (share storage; differentiable) ------------------------------ */

AG_API ag_tensor *ag_reshape(ag_tensor *t, int ndim, const int64_t *shape); /* one -1 allowed; copies when needed */
AG_API ag_tensor *ag_permute(ag_tensor *t, const int *perm);
AG_API ag_tensor *ag_transpose(ag_tensor *t, int d0, int d1);
AG_API ag_tensor *ag_slice(ag_tensor *t, int axis, int64_t start, int64_t end, int64_t step);
AG_API ag_tensor *ag_expand(ag_tensor *t, int ndim, const int64_t *shape);
AG_API ag_tensor *ag_squeeze(ag_tensor *t, int axis);
AG_API ag_tensor *ag_unsqueeze(ag_tensor *t, int axis);
AG_API ag_tensor *ag_flatten(ag_tensor *t, int start_axis, int end_axis);
AG_API ag_tensor *ag_contiguous(ag_tensor *t);
AG_API ag_tensor *ag_detach(ag_tensor *t);     /* same storage, no autograd history */
AG_API ag_tensor *ag_clone(ag_tensor *t);      /* new storage, differentiable */

/* ---- element-wise ------------------------------------------------------- */

/* Unary ops: the enum and one function per op come from the op table
 * (src/ops/unary_table.h). Every backend implements every op unless the table
 * says otherwise; an op a device lacks fails with AG_ERR_UNSUPPORTED. */
/* BEGIN GENERATED: unary (scripts/gen_ops.py; `make regen` refreshes it) */
typedef enum ag_unary_op {
    AG_UNARY_NEG,
    AG_UNARY_EXP,
    AG_UNARY_LOG,
    AG_UNARY_SQRT,
    AG_UNARY_RSQRT,
    AG_UNARY_ABS,
    AG_UNARY_SQUARE,
    AG_UNARY_RELU,
    AG_UNARY_LEAKY_RELU,  /* p0 = negative slope */
    AG_UNARY_ELU,         /* p0 = alpha */
    AG_UNARY_SIGMOID,
    AG_UNARY_TANH,
    AG_UNARY_GELU_TANH,   /* tanh approximation */
    AG_UNARY_GELU_ERF,    /* erf form */
    AG_UNARY_SILU,
    AG_UNARY_SOFTPLUS,
    AG_UNARY_CLAMP,       /* p0 = lo, p1 = hi */
    AG_UNARY_POW,         /* p0 = exponent */
    AG_UNARY_ADD_SCALAR,  /* p0 */
    AG_UNARY_MUL_SCALAR,  /* p0 */
    AG_UNARY_MISH,
    AG_UNARY_COUNT
} ag_unary_op;

AG_API ag_tensor *ag_neg(ag_tensor *x);
AG_API ag_tensor *ag_exp(ag_tensor *x);
AG_API ag_tensor *ag_log(ag_tensor *x);
AG_API ag_tensor *ag_sqrt(ag_tensor *x);
AG_API ag_tensor *ag_rsqrt(ag_tensor *x);
AG_API ag_tensor *ag_abs(ag_tensor *x);
AG_API ag_tensor *ag_square(ag_tensor *x);
AG_API ag_tensor *ag_relu(ag_tensor *x);
AG_API ag_tensor *ag_leaky_relu(ag_tensor *x, float negative_slope);
AG_API ag_tensor *ag_elu(ag_tensor *x, float alpha);
AG_API ag_tensor *ag_sigmoid(ag_tensor *x);
AG_API ag_tensor *ag_tanh(ag_tensor *x);
AG_API ag_tensor *ag_gelu_tanh(ag_tensor *x);   /* tanh approximation */
AG_API ag_tensor *ag_gelu(ag_tensor *x);        /* erf form */
AG_API ag_tensor *ag_silu(ag_tensor *x);
AG_API ag_tensor *ag_softplus(ag_tensor *x);
AG_API ag_tensor *ag_clamp(ag_tensor *x, float lo, float hi);
AG_API ag_tensor *ag_pow(ag_tensor *x, float exponent);
AG_API ag_tensor *ag_add_scalar(ag_tensor *x, float s);
AG_API ag_tensor *ag_mul_scalar(ag_tensor *x, float s);
AG_API ag_tensor *ag_mish(ag_tensor *x);
/* END GENERATED: unary */

AG_API ag_tensor *ag_sub_scalar(ag_tensor *x, float s);
AG_API ag_tensor *ag_div_scalar(ag_tensor *x, float s);

/* Binary ops, NumPy broadcasting. Comparisons return f32 0/1 and have no gradient. */
/* BEGIN GENERATED: binary (scripts/gen_ops.py; `make regen` refreshes it) */
typedef enum ag_binary_op {
    AG_BINARY_ADD,        /* a + b */
    AG_BINARY_SUB,        /* a - b */
    AG_BINARY_MUL,        /* a * b */
    AG_BINARY_DIV,        /* a / b */
    AG_BINARY_MAXIMUM,    /* NaN wins, as torch.maximum */
    AG_BINARY_MINIMUM,    /* NaN wins, as torch.minimum */
    AG_BINARY_EQ,         /* a == b */
    AG_BINARY_NE,         /* a != b */
    AG_BINARY_LT,         /* a < b */
    AG_BINARY_LE,         /* a <= b */
    AG_BINARY_GT,         /* a > b */
    AG_BINARY_GE,         /* a >= b */
    AG_BINARY_COUNT
} ag_binary_op;

AG_API ag_tensor *ag_add(ag_tensor *a, ag_tensor *b);
AG_API ag_tensor *ag_sub(ag_tensor *a, ag_tensor *b);
AG_API ag_tensor *ag_mul(ag_tensor *a, ag_tensor *b);
AG_API ag_tensor *ag_div(ag_tensor *a, ag_tensor *b);
AG_API ag_tensor *ag_maximum(ag_tensor *a, ag_tensor *b);
AG_API ag_tensor *ag_minimum(ag_tensor *a, ag_tensor *b);
AG_API ag_tensor *ag_eq(ag_tensor *a, ag_tensor *b);
AG_API ag_tensor *ag_ne(ag_tensor *a, ag_tensor *b);
AG_API ag_tensor *ag_lt(ag_tensor *a, ag_tensor *b);
AG_API ag_tensor *ag_le(ag_tensor *a, ag_tensor *b);
AG_API ag_tensor *ag_gt(ag_tensor *a, ag_tensor *b);
AG_API ag_tensor *ag_ge(ag_tensor *a, ag_tensor *b);
/* END GENERATED: binary */

AG_API ag_tensor *ag_unary(ag_unary_op op, ag_tensor *x, float p0, float p1);
AG_API ag_tensor *ag_binary(ag_binary_op op, ag_tensor *a, ag_tensor *b);
AG_API ag_tensor *ag_where(ag_tensor *cond, ag_tensor *a, ag_tensor *b); /* cond != 0 ? a : b */

/* ---- reductions --------------------------------------------------------- */

typedef enum ag_reduce_op {
    AG_REDUCE_SUM, AG_REDUCE_MEAN, AG_REDUCE_MAX, AG_REDUCE_MIN,
    AG_REDUCE_ARGMAX, AG_REDUCE_ARGMIN, AG_REDUCE_COUNT
} ag_reduce_op;

/* naxes == 0 (axes may be NULL) reduces over every axis. */
AG_API ag_tensor *ag_sum(ag_tensor *x, int naxes, const int *axes, bool keepdim);
AG_API ag_tensor *ag_mean(ag_tensor *x, int naxes, const int *axes, bool keepdim);
AG_API ag_tensor *ag_max(ag_tensor *x, int naxes, const int *axes, bool keepdim);
AG_API ag_tensor *ag_min(ag_tensor *x, int naxes, const int *axes, bool keepdim);
AG_API ag_tensor *ag_var(ag_tensor *x, int naxes, const int *axes, int correction, bool keepdim);
AG_API ag_tensor *ag_sum_all(ag_tensor *x);
AG_API ag_tensor *ag_mean_all(ag_tensor *x);
/* Index (int32) of the first maximum along axis. */
AG_API ag_tensor *ag_argmax(ag_tensor *x, int axis, bool keepdim);
AG_API ag_tensor *ag_argmin(ag_tensor *x, int axis, bool keepdim);

/* ---- linear algebra ----------------------------------------------------- */

AG_API ag_tensor *ag_matmul(ag_tensor *a, ag_tensor *b);  /* batch dims broadcast */
AG_API ag_tensor *ag_linear(ag_tensor *x, ag_tensor *weight, ag_tensor *bias); /* x W^T + b, W [out, in] */

/* ---- softmax and losses ------------------------------------------------- */

typedef enum ag_reduction { AG_REDUCTION_MEAN, AG_REDUCTION_SUM, AG_REDUCTION_NONE } ag_reduction;

AG_API ag_tensor *ag_softmax(ag_tensor *x, int axis);
AG_API ag_tensor *ag_log_softmax(ag_tensor *x, int axis);
AG_API ag_tensor *ag_mse_loss(ag_tensor *pred, ag_tensor *target, ag_reduction red);
/* logits [N, C], labels int32 [N] in [0, C); a label outside gives NaN. */
AG_API ag_tensor *ag_cross_entropy(ag_tensor *logits, ag_tensor *labels, ag_reduction red,
                            float label_smoothing);
AG_API ag_tensor *ag_nll_loss(ag_tensor *log_probs, ag_tensor *labels, ag_reduction red);
AG_API ag_tensor *ag_bce_with_logits(ag_tensor *logits, ag_tensor *targets, ag_reduction red);
/* Rows of logits [N, C] whose argmax equals the int32 label [N] (for accuracy). */
AG_API ag_status ag_count_correct(ag_tensor *logits, ag_tensor *labels, int64_t *correct);

/* ---- neural-network ops ------------------------------------------------- */

typedef struct ag_conv2d_params {
    int stride[2], padding[2], dilation[2], groups;
} ag_conv2d_params;
typedef struct ag_pool2d_params {
    int kernel[2], stride[2], padding[2];
} ag_pool2d_params;

/* x [N, C, H, W], weight [OC, C/groups, KH, KW], bias [OC] or NULL; p NULL = stride 1, no padding. */
AG_API ag_tensor *ag_conv2d(ag_tensor *x, ag_tensor *weight, ag_tensor *bias, const ag_conv2d_params *p);
AG_API ag_tensor *ag_max_pool2d(ag_tensor *x, const ag_pool2d_params *p);
AG_API ag_tensor *ag_avg_pool2d(ag_tensor *x, const ag_pool2d_params *p); /* padding counted */
/* x [N, C] or [N, C, ...]; running stats [C] (NULL allowed in training) are updated
 * in training mode and used in eval mode; weight/bias [C] or NULL. */
AG_API ag_tensor *ag_batch_norm(ag_tensor *x, ag_tensor *running_mean, ag_tensor *running_var,
                         ag_tensor *weight, ag_tensor *bias, bool training,
                         float momentum, float eps);
/* Normalises over the last normalized_ndim axes; weight/bias have that shape or NULL. */
AG_API ag_tensor *ag_layer_norm(ag_tensor *x, int normalized_ndim, ag_tensor *weight,
                         ag_tensor *bias, float eps);
AG_API ag_tensor *ag_dropout(ag_tensor *x, float p, bool training);
/* torch.nn.functional.scaled_dot_product_attention: softmax(q k^T scale + bias) v
 * for q [..., L, E], k [..., S, E], v [..., S, Ev] (batch dims broadcast) ->
 * [..., L, Ev]. scale 0: 1 / sqrt(E). attn_mask (f32, added to the scores,
 * broadcast to [..., L, S]; -inf masks) or NULL; is_causal: key j > query i
 * masked (top-left aligned; not with attn_mask). dropout_p > 0 drops attention
 * weights (pass 0 in evaluation). */
AG_API ag_tensor *ag_scaled_dot_product_attention(ag_tensor *q, ag_tensor *k, ag_tensor *v,
                                                  ag_tensor *attn_mask, float dropout_p,
                                                  bool is_causal, float scale);
AG_API ag_tensor *ag_embedding(ag_tensor *indices, ag_tensor *weight); /* int32 [...] x [V, D] -> [..., D] */
AG_API ag_tensor *ag_concat(int n, ag_tensor *const *ts, int axis);
AG_API ag_tensor *ag_stack(int n, ag_tensor *const *ts, int axis);
/* torch.gather / scatter_add semantics; index int32 with x's ndim. */
AG_API ag_tensor *ag_gather(ag_tensor *x, int axis, ag_tensor *index);
AG_API ag_tensor *ag_scatter_add(ag_tensor *x, int axis, ag_tensor *index, ag_tensor *src);

/* ---- autograd ----------------------------------------------------------- */

AG_API ag_status ag_set_requires_grad(ag_tensor *t, bool requires_grad); /* leaves only */
AG_API bool ag_requires_grad(const ag_tensor *t);
/* grad NULL: root must have one element (seeded with 1). The graph is freed afterwards. */
AG_API ag_status ag_backward(ag_tensor *root, ag_tensor *grad);
AG_API ag_tensor *ag_grad(const ag_tensor *t);    /* borrowed; NULL when none */
AG_API ag_status ag_zero_grad(ag_tensor *t);      /* drops the gradient */
AG_API void ag_no_grad_begin(void);
AG_API void ag_no_grad_end(void);
AG_API bool ag_grad_enabled(void);

/* ---- optimizers --------------------------------------------------------- */

typedef enum ag_optim_kind { AG_OPTIM_SGD, AG_OPTIM_RMSPROP, AG_OPTIM_ADAM, AG_OPTIM_ADAMW } ag_optim_kind;

typedef struct ag_optim_config {
    ag_optim_kind kind;
    float lr;
    float momentum;      /* SGD, RMSProp */
    float dampening;     /* SGD */
    bool nesterov;       /* SGD */
    float alpha;         /* RMSProp smoothing (0.99) */
    float beta1, beta2;  /* Adam/AdamW */
    float eps;           /* RMSProp, Adam/AdamW */
    float weight_decay;  /* L2 for SGD/RMSProp/Adam, decoupled for AdamW */
} ag_optim_config;

AG_API ag_optim_config ag_optim_defaults(ag_optim_kind kind, float lr); /* PyTorch's defaults */
AG_API ag_optim *ag_optim_new(const ag_optim_config *cfg, int nparams, ag_tensor *const *params);
AG_API ag_status ag_optim_step(ag_optim *opt);
AG_API ag_status ag_optim_zero_grad(ag_optim *opt);
AG_API ag_status ag_optim_set_lr(ag_optim *opt, float lr);
AG_API float ag_optim_lr(const ag_optim *opt);
AG_API int64_t ag_optim_steps(const ag_optim *opt);
AG_API void ag_optim_free(ag_optim *opt);

/* Scales gradients so their global L2 norm is at most max_norm; returns the norm before. */
AG_API ag_status ag_clip_grad_norm(int n, ag_tensor *const *params, float max_norm, float *total_norm);

/* Learning-rate schedules: the rate for a 0-based step. */
AG_API float ag_lr_step_decay(float base_lr, int64_t step, int64_t step_size, float gamma);
AG_API float ag_lr_cosine(float base_lr, int64_t step, int64_t total_steps, float min_lr);
AG_API float ag_lr_warmup(float base_lr, int64_t step, int64_t warmup_steps); /* linear from base/warmup */

/* ---- modules ------------------------------------------------------------ */

/* Layers that own their parameters, after torch.nn. Parameters are leaf f32
 * tensors that require grad, in PyTorch's layouts (Linear weight [out, in],
 * Conv2d weight [out, in / groups, kh, kw]) and under PyTorch's names ("weight",
 * "bias", "running_mean"; inside a Sequential "0.weight" or, for children added
 * by name, "fc1.weight"). Initialisation draws from the Philox generator
 * (ag_manual_seed) with PyTorch's defaults: Linear and Conv2d weights
 * kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), biases
 * the same; Embedding N(0, 1); norm weights 1 and biases 0.
 * Modules start in training mode. ag_module_forward follows the usual tensor
 * conventions (new reference, scope-owned inside a scope). A module is used by
 * one thread at a time. */
typedef struct ag_module ag_module;

AG_API ag_module *ag_linear_new(int64_t in_features, int64_t out_features, bool bias);
/* p NULL = stride 1, no padding, dilation 1, groups 1. */
AG_API ag_module *ag_conv2d_new(int64_t in_channels, int64_t out_channels, int kh, int kw,
                         const ag_conv2d_params *p, bool bias);
/* A stride of 0 means the kernel size (PyTorch's default). */
AG_API ag_module *ag_max_pool2d_new(const ag_pool2d_params *p);
AG_API ag_module *ag_avg_pool2d_new(const ag_pool2d_params *p);
/* dims 1: BatchNorm1d (input [N, C] or [N, C, L]); dims 2: BatchNorm2d ([N, C, H, W]).
 * eps 1e-5, momentum 0.1, affine, running stats (buffers) included in the state. */
AG_API ag_module *ag_batch_norm_new(int64_t num_features, int dims);
/* Normalises over the last ndim axes of the given shape; eps 1e-5, affine. */
AG_API ag_module *ag_layer_norm_new(int ndim, const int64_t *shape);
AG_API ag_module *ag_dropout_new(float p);
AG_API ag_module *ag_embedding_new(int64_t num_embeddings, int64_t dim);
AG_API ag_module *ag_flatten_new(void);                   /* axes 1..-1, as nn.Flatten() */
/* Self-attention as nn.MultiheadAttention(embed_dim, num_heads, dropout, bias,
 * batch_first=True) called with query = key = value = x [N, L, E]; its state_dict
 * names (in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias) and init.
 * causal: each position attends to itself and earlier ones only. */
AG_API ag_module *ag_multihead_attention_new(int64_t embed_dim, int64_t num_heads, float dropout,
                                             bool bias, bool causal);
/* A pre-LayerNorm transformer block, nn.TransformerEncoderLayer(d_model, num_heads,
 * dim_feedforward, dropout, activation="gelu", batch_first=True, norm_first=True)
 * with its state_dict names: x + attn(norm1(x)), then x + linear2(gelu(linear1(norm2(x)))). */
AG_API ag_module *ag_transformer_block_new(int64_t d_model, int64_t num_heads,
                                           int64_t dim_feedforward, float dropout, bool causal);
/* A GPT language model (nanoGPT's layout): token and learned position embeddings
 * (wte [vocab, width], wpe [context, width]), `layers` causal pre-LN blocks as
 * above (h.0, h.1, ...; feed-forward 4 x width, GELU), a final LayerNorm (ln_f)
 * and an output layer without bias (lm_head). Forward takes int32 token indices
 * [B, T] with T <= context and gives logits [B, T, vocab]. Embeddings and
 * lm_head start as N(0, 0.02) (GPT-2), the rest as PyTorch's layers. */
AG_API ag_module *ag_gpt_new(int64_t vocab, int64_t context, int64_t layers, int64_t heads,
                             int64_t width, float dropout);
/* Any element-wise activation (AG_UNARY_RELU, AG_UNARY_GELU_ERF, ...; p0/p1 as in
 * ag_unary), and the common ones by name. */
AG_API ag_module *ag_activation_new(ag_unary_op op, float p0, float p1);
AG_API ag_module *ag_relu_new(void);
AG_API ag_module *ag_gelu_new(void);
AG_API ag_module *ag_tanh_new(void);
AG_API ag_module *ag_sigmoid_new(void);
AG_API ag_module *ag_silu_new(void);
AG_API ag_module *ag_leaky_relu_new(float negative_slope);
AG_API ag_module *ag_softmax_new(int axis);
AG_API ag_module *ag_log_softmax_new(int axis);

/* Takes ownership of the n modules (also on failure, except modules that
 * already belong to another Sequential: those stay with their owner); children
 * are named "0", "1", ... Modules may be NULL only when an earlier constructor
 * failed: the error is kept and NULL returned, so constructors can be nested. */
AG_API ag_module *ag_sequential_new(int n, ag_module *const *modules);
/* Appends a child under name (letters, digits, '_'; NULL = its index). Takes
 * ownership of child, also on failure, except when child already has a parent
 * or would create a cycle: then AG_ERR_ARG and child stays with its owner. The
 * child takes the Sequential's train/eval mode. */
AG_API ag_status ag_sequential_add(ag_module *seq, const char *name, ag_module *child);
AG_API int ag_module_num_children(const ag_module *m);
AG_API ag_module *ag_module_child(const ag_module *m, int index);  /* borrowed */
AG_API const char *ag_module_kind(const ag_module *m);            /* "Linear", "Sequential", ... */

AG_API ag_tensor *ag_module_forward(ag_module *m, ag_tensor *x);
AG_API void ag_module_free(ag_module *m);                         /* NULL is fine */
AG_API void ag_module_train(ag_module *m, bool training);         /* recursive */
AG_API bool ag_module_is_training(const ag_module *m);

/* Parameters in PyTorch's order; the arrays are borrowed and stay valid until
 * the module is changed or freed. */
AG_API ag_tensor *const *ag_module_parameters(ag_module *m, int *n);
AG_API const char *const *ag_module_parameter_names(ag_module *m, int *n);
AG_API int64_t ag_module_num_parameters(ag_module *m);             /* scalars, as sum(p.numel()) */
/* The state (PyTorch's state_dict): parameters and buffers, in PyTorch's order. */
AG_API ag_tensor *const *ag_module_state(ag_module *m, int *n);
AG_API const char *const *ag_module_state_names(ag_module *m, int *n);
AG_API ag_tensor *ag_module_get(ag_module *m, const char *name); /* borrowed state tensor or NULL */

/* ---- initialisation ---------------------------------------------------- */

/* Fill an existing tensor in place (no autograd), drawing from the Philox
 * generator. Fans follow torch.nn.init: fan_in = size(1) * receptive field,
 * fan_out = size(0) * receptive field; tensors need at least 2 dimensions. */
typedef enum ag_fan_mode { AG_FAN_IN, AG_FAN_OUT } ag_fan_mode;
AG_API ag_status ag_init_uniform(ag_tensor *t, float lo, float hi);
AG_API ag_status ag_init_normal(ag_tensor *t, float mean, float std);
AG_API ag_status ag_init_constant(ag_tensor *t, float value);
/* gain sqrt(2 / (1 + a^2)): a = 0 for ReLU, sqrt(5) for PyTorch's layer default. */
AG_API ag_status ag_init_kaiming_uniform(ag_tensor *t, float a, ag_fan_mode mode);
AG_API ag_status ag_init_kaiming_normal(ag_tensor *t, float a, ag_fan_mode mode);
AG_API ag_status ag_init_xavier_uniform(ag_tensor *t, float gain);
AG_API ag_status ag_init_xavier_normal(ag_tensor *t, float gain);

/* ---- data ---------------------------------------------------------------- */

/* Data files load into tensors on the CPU device (datasets live in host memory;
 * loaders hand out batches on the default device, ag_to_device moves the rest).
 * IDX files (the MNIST format), gzip-compressed or plain. Unsigned-byte data
 * with 2 or more dimensions (images) becomes f32 scaled to [0, 1]; 1-dimensional
 * unsigned bytes (labels) and the other integer types become int32; float and
 * double become f32. Bad or truncated files fail with AG_ERR_IO. */
AG_API ag_tensor *ag_idx_load(const char *path);
/* The same, but unsigned bytes stay u8 at any rank (a quarter of the memory;
 * loaders scale u8 samples to [0, 1] per batch). A header that claims more
 * data than the file can hold fails before anything is allocated. */
AG_API ag_tensor *ag_idx_load_raw(const char *path);

/* A numeric CSV table as f32 [rows, columns]; has_header skips the first line.
 * Every row needs the same number of fields and every field must be a number. */
AG_API ag_tensor *ag_csv_load(const char *path, bool has_header);

/* Mini-batches over the samples (axis 0) of x and optionally y (f32, i32 or
 * u8). Contiguous CPU tensors are read in place, as PyTorch's TensorDataset
 * does (the loader holds a reference; later writes to them show in batches);
 * others are copied to the host at creation. Batches are f32 and i32 as stored;
 * u8 x becomes f32 in [0, 1] (x / 255, the image convention: keep images u8
 * with ag_idx_load_raw at a quarter of the memory) and u8 y int32. Shuffling
 * order for epoch e is a Philox permutation of (seed, e): the same on every run
 * and backend. */
typedef struct ag_loader ag_loader;
typedef struct ag_loader_config {
    int64_t batch_size;
    bool shuffle;
    bool drop_last;      /* drop the last partial batch */
    uint64_t seed;
} ag_loader_config;

AG_API ag_loader *ag_loader_new(ag_tensor *x, ag_tensor *y, const ag_loader_config *cfg);
/* Splits l's samples into a shuffled-by-seed validation part of round(fraction *
 * n) samples and a training part; both share l's data and config (the validation
 * loader does not shuffle). l itself stays usable. */
AG_API ag_status ag_loader_split(const ag_loader *l, double val_fraction, ag_loader **train,
                          ag_loader **val);
AG_API int64_t ag_loader_size(const ag_loader *l);            /* samples */
AG_API int64_t ag_loader_num_batches(const ag_loader *l);     /* per epoch */
/* Every x batch becomes (x - mean[j]) / std[j] with j the feature index within a
 * sample (n = features per sample) or one pair for all (n = 1). f32 or u8 x
 * (after the scaling to [0, 1]). */
AG_API ag_status ag_loader_set_normalize(ag_loader *l, int64_t n, const float *mean, const float *std);
/* Population mean and standard deviation of l's x samples (u8: after the
 * scaling to [0, 1]), over everything (per_feature false: one value each) or
 * per feature. */
AG_API ag_status ag_loader_stats(const ag_loader *l, bool per_feature, float *mean, float *std);
/* Starts epoch e (0-based): reshuffles and rewinds. */
AG_API ag_status ag_loader_start_epoch(ag_loader *l, int64_t epoch);
/* Next batch as new tensors (y NULL when the loader has no y). Returns false at
 * the end of the epoch (clearing the thread's last error), or on error with
 * ag_last_status() != AG_OK. */
AG_API bool ag_loader_next(ag_loader *l, ag_tensor **x, ag_tensor **y);
/* Several processes training together (ag_dist_*): every process builds the
 * same loader (same data, config and seed), so each epoch's order is the same
 * everywhere, and calls this with its rank. Batches stay the global ones
 * (cfg.batch_size samples; ag_loader_num_batches unchanged); ag_loader_next
 * hands out rank's contiguous part of each, samples [b * rank / nranks,
 * b * (rank + 1) / nranks) of a batch of b. A part can be empty (a last batch
 * smaller than nranks): then *x and *y are tensors of 0 samples. nranks 1
 * undoes the sharding; loaders made by ag_loader_split start unsharded.
 * ag_loader_last_batch tells the sizes, the weight of this rank's gradient in
 * the global mean being local / global. */
AG_API ag_status ag_loader_shard(ag_loader *l, int rank, int nranks);
AG_API ag_status ag_loader_last_batch(const ag_loader *l, int64_t *local, int64_t *global);
AG_API void ag_loader_free(ag_loader *l);

/* ---- several processes: data parallelism over MPI ----------------------- */

/* Every process (rank) holds the whole model, runs forward and backward on its
 * part of each global batch (ag_loader_shard) and, before the optimizer step,
 * calls ag_dist_average_gradients: afterwards every rank holds the gradient of
 * the global batch and takes the same step. Built when MPI is found (meson
 * -Dmpi=auto|enabled|disabled); without it ag_dist_init fails with
 * AG_ERR_UNSUPPORTED and the rest act as a job of one process. Collectives
 * must be called by every rank in the same order, from one thread. A rank that
 * waits longer than AG_DIST_TIMEOUT seconds (default 300) for the others gets
 * AG_ERR_DEVICE; after any failed collective the job cannot go on: end it with
 * ag_dist_abort. */
AG_API bool ag_dist_available(void);             /* built with MPI */
/* Initialises MPI unless the program did (then its MPI stays the caller's to
 * finalise). Errors of MPI calls become return values, not exits. A second
 * call is a no-op. */
AG_API ag_status ag_dist_init(void);
AG_API int ag_dist_rank(void);                   /* 0 before ag_dist_init */
AG_API int ag_dist_size(void);                   /* 1 before ag_dist_init */
AG_API int ag_dist_local_rank(void);             /* among this host's ranks (GPU choice) */
AG_API int ag_dist_local_size(void);
/* Each rank's gradients (NULL: zeros) times weight, summed over the ranks,
 * become every rank's gradients. With weight = local / global batch size the
 * result is the gradient of the global batch's mean loss; rank counts and
 * uneven parts do not change its meaning. Gradients go through host memory in
 * buckets of AG_DIST_BUCKET_MB (default 4) megabytes, one timed allreduce
 * each. A parameter no rank has a gradient for keeps none. */
AG_API ag_status ag_dist_average_gradients(int n, ag_tensor *const *params, double weight);
/* Copies root's module state (parameters and buffers) and, when opt is not
 * NULL, optimizer state tensors to every other rank. */
AG_API ag_status ag_dist_broadcast_module(ag_module *m, ag_optim *opt, int root);
/* Makes every buffer of the module (batch norm's running statistics) the mean
 * over the ranks; parameters are left alone. */
AG_API ag_status ag_dist_average_buffers(ag_module *m);
/* In place: each v[i] becomes its sum over the ranks (metrics, counts). */
AG_API ag_status ag_dist_sum(double *v, int n);
AG_API ag_status ag_dist_barrier(void);
/* Ends the whole job: prints "anygrad: rank R: why" on stderr and has MPI stop
 * every rank with exit status code. Without MPI (or before ag_dist_init) it
 * only prints and returns, so callers still return their error. */
AG_API void ag_dist_abort(int code, const char *why);
/* Finalises MPI when ag_dist_init initialised it. */
AG_API ag_status ag_dist_finalize(void);

/* ---- checkpoints ------------------------------------------------------- */

/* safetensors files: 8-byte little-endian header length, a JSON header naming
 * each tensor's dtype, shape and data_offsets, then raw little-endian data.
 * Writes go to a new file in the same directory (anonymous where O_TMPFILE
 * exists), are fsync'ed and renamed over path, so a crash leaves the old file
 * or the new one. A symbolic link saves into its target; FIFOs, devices and
 * directories are refused. Readers validate everything and fail with AG_ERR_IO
 * naming the problem. meta holds nmeta key, value string pairs for
 * "__metadata__" (meta may be NULL when nmeta is 0). */
AG_API ag_status ag_safetensors_save(const char *path, int n, const char *const *names,
                              ag_tensor *const *tensors, int nmeta, const char *const *meta);

typedef struct ag_tensor_dict {
    int n;
    char **names;
    ag_tensor **tensors;     /* owned by the dict; retain to keep one */
    int nmeta;
    char **meta_keys, **meta_values;
} ag_tensor_dict;
/* F32 and I32 load as they are; F16, BF16 and F64 become f32, I64 int32 (when in
 * range); other dtypes fail with AG_ERR_UNSUPPORTED. */
AG_API ag_tensor_dict *ag_safetensors_load(const char *path);
AG_API ag_tensor *ag_tensor_dict_get(const ag_tensor_dict *d, const char *name);  /* borrowed */
AG_API const char *ag_tensor_dict_meta(const ag_tensor_dict *d, const char *key);
AG_API void ag_tensor_dict_free(ag_tensor_dict *d);

/* The module's state under its PyTorch names (loadable with
 * model.load_state_dict(safetensors.torch.load_file(path))). Loading needs every
 * state tensor with the same shape and rejects unknown names except those
 * starting with "optimizer." (checkpoints). */
AG_API ag_status ag_module_save(ag_module *m, const char *path);
AG_API ag_status ag_module_load(ag_module *m, const char *path);

/* A training checkpoint: the module's state plus, when opt is not NULL, the
 * optimizer's state tensors as "optimizer.state.<i>.<name>" (PyTorch's names:
 * exp_avg, exp_avg_sq, momentum_buffer, square_avg), its kind, learning rate
 * and step counts in the metadata, and the caller's epoch. Loading restores all
 * of it into a module and optimizer built the same way, so that training resumes
 * with the same losses (given the same data order and RNG seed). */
AG_API ag_status ag_checkpoint_save(const char *path, ag_module *m, const ag_optim *opt,
                             int64_t epoch);
/* The same with nmeta key, value pairs of the caller's in the metadata (read
 * back with ag_tensor_dict_meta); a key the checkpoint uses itself ("format",
 * "epoch", "optimizer.*") is refused with AG_ERR_ARG. */
AG_API ag_status ag_checkpoint_save_meta(const char *path, ag_module *m, const ag_optim *opt,
                                  int64_t epoch, int nmeta, const char *const *meta);
AG_API ag_status ag_checkpoint_load(const char *path, ag_module *m, ag_optim *opt, int64_t *epoch);

#ifdef __cplusplus
}
#endif
#endif /* ANYGRAD_H */
