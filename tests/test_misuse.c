/* API misuse gives a clear error, never a crash or a silently wrong gradient:
 * NULL and released handles to every public function (one table, checked
 * against include/anygrad.h), one release too many, tensors written in place
 * between the forward and the backward pass, backward twice, tensors of two
 * devices mixed, and sizes at the edges (empty, huge, overflowing). */
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anygrad.h"
#include "ops/unary_table.h"
#include "suites.h"

static void setup(void) { ag_clear_error(); }

/* expr fails with status st and a message containing want (NULL: any). */
#define EXPECT_PTR_FAIL(st, want, expr)                                                    \
    do {                                                                                   \
        ag_clear_error();                                                                  \
        const void *r_ = (expr);                                                           \
        ck_assert_msg(r_ == NULL, "%s should fail", #expr);                                \
        expect_error(#expr, st, want);                                                     \
    } while (0)
#define EXPECT_ST(st, want, expr)                                                          \
    do {                                                                                   \
        ag_clear_error();                                                                  \
        ag_status s_ = (expr);                                                             \
        ck_assert_msg(s_ == (st), "%s returned %s (%s), want %s", #expr, ag_status_name(s_), \
                      ag_last_error(), ag_status_name(st));                                \
        expect_error(#expr, st, want);                                                     \
    } while (0)

static void expect_error(const char *what, ag_status st, const char *want)
{
    ck_assert_msg(ag_last_status() == st, "%s: status %s (%s), want %s", what,
                  ag_status_name(ag_last_status()), ag_last_error(), ag_status_name(st));
    if (want)
        ck_assert_msg(strstr(ag_last_error(), want), "%s: message '%s' lacks '%s'", what,
                      ag_last_error(), want);
}

static ag_tensor *vec(int64_t n, float v) { return ag_full(1, &n, v); }
static ag_tensor *mat(int64_t r, int64_t c, float v) { return ag_full(2, (const int64_t[]){r, c}, v); }

static ag_tensor *leaf(ag_tensor *t)
{
    ck_assert_int_eq(ag_set_requires_grad(t, true), AG_OK);
    return t;
}

/* A handle whose every reference was released (made outside any scope). */
static ag_tensor *released(void)
{
    ck_assert_int_eq(ag_scope_depth(), 0);
    ag_tensor *t = mat(2, 3, 1.0f);
    ck_assert_ptr_nonnull(t);
    ag_release(t);
    return t;
}

static void values(ag_tensor *t, const float *want, int n)
{
    float got[64];
    ck_assert_int_le(n, 64);
    ck_assert_int_eq(ag_numel(t), n);
    ck_assert_int_eq(ag_to_host(t, got, (size_t)n * sizeof *got), AG_OK);
    for (int k = 0; k < n; k++)
        ck_assert_msg(fabsf(got[k] - want[k]) <= 1e-5f * (1 + fabsf(want[k])),
                      "element %d: %g, want %g", k, got[k], want[k]);
}

/* ---- every public function, given a NULL or a released handle ------------------ */

typedef struct fx {
    ag_tensor *a, *w, *c2, *lab, *idx, *img, *cw, *leaf; /* valid other arguments */
    ag_module *mod, *seq;
    ag_device *dev;
    ag_tensor *bad;   /* the handle under test: NULL, or a released tensor */
    ag_tensor *arr[2], *out;
    int64_t shape6[1], shape23[2], shape8[AG_MAX_DIMS], count;
    int perm[2], axis0[1], n;
    float buf[8], norm;
    char str[64], path[64];
    ag_pool2d_params pool;
    ag_device_props props;
} fx;

#define B (f->bad)
#define A_ AG_ERR_ARG
#define S_ AG_ERR_STATE
#define O_ AG_OK
#define N_ (-1) /* NULL is a valid value here: not tested */

static ag_tensor *const *with_bad(fx *f)
{
    f->arr[0] = f->a;
    f->arr[1] = f->bad;
    return f->arr;
}
static ag_tensor *const *only_bad(fx *f)
{
    f->arr[0] = f->bad;
    return f->arr;
}
static const ag_optim_config *sgd(void)
{
    static ag_optim_config c;
    c = ag_optim_defaults(AG_OPTIM_SGD, 0.1f);
    return &c;
}
static const ag_loader_config loader_cfg = {.batch_size = 1};
static const char *const names1[1] = {"t"};

typedef enum { K_PTR, K_ST, K_TRUE, K_VOID } row_kind;

/* X(id, kind, status with NULL, status with a released tensor, expression):
 * K_PTR expressions must give NULL, K_ST ones the status, K_TRUE ones true (a
 * sentinel check); the thread's last status must be the one given, and a
 * released handle's message must say so. */
#define TENSOR_ROWS(X)                                                                        \
    X(zeros_like, K_PTR, A_, S_, ag_zeros_like(B))                                            \
    X(ones_like, K_PTR, A_, S_, ag_ones_like(B))                                              \
    X(to_device, K_PTR, A_, S_, ag_to_device(B, f->dev))                                      \
    X(to_dtype, K_PTR, A_, S_, ag_to_dtype(B, AG_I32))                                        \
    X(retain, K_PTR, O_, S_, ag_retain(B))                                                    \
    X(keep, K_PTR, O_, S_, ag_retain(B))                                                        \
    X(release, K_VOID, O_, S_, (ag_release(B), 0))                                            \
    X(scope_return, K_PTR, O_, S_, (ag_scope_begin(), ag_scope_return(B)))                    \
    X(ndim, K_TRUE, A_, S_, ag_ndim(B) == -1)                                                 \
    X(dim, K_TRUE, A_, S_, ag_dim(B, 0) == -1)                                                \
    X(shape, K_TRUE, A_, S_, ag_shape(B, f->shape8) == -1)                                   \
    X(numel, K_TRUE, A_, S_, ag_numel(B) == 0)                                                \
    X(dtype_of, K_TRUE, A_, S_, ag_dtype_of(B) == AG_F32)                                     \
    X(device_of, K_PTR, A_, S_, ag_device_of(B))                                              \
    X(is_contiguous, K_TRUE, A_, S_, !ag_is_contiguous(B))                                    \
    X(to_host, K_ST, A_, S_, ag_to_host(B, f->buf, 6 * sizeof(float)))                        \
    X(from_host, K_ST, A_, S_, ag_from_host(B, f->buf, 6 * sizeof(float)))                    \
    X(item, K_ST, A_, S_, ag_item(B, f->buf))                                                 \
    X(shape_str, K_TRUE, O_, O_, ag_shape_str(B, f->str, sizeof f->str) == f->str)            \
    X(reshape, K_PTR, A_, S_, ag_reshape(B, 1, f->shape6))                                    \
    X(permute, K_PTR, A_, S_, ag_permute(B, f->perm))                                         \
    X(transpose, K_PTR, A_, S_, ag_transpose(B, 0, 1))                                        \
    X(slice, K_PTR, A_, S_, ag_slice(B, 0, 0, 1, 1))                                          \
    X(expand, K_PTR, A_, S_, ag_expand(B, 2, f->shape23))                                     \
    X(squeeze, K_PTR, A_, S_, ag_squeeze(B, 0))                                               \
    X(unsqueeze, K_PTR, A_, S_, ag_unsqueeze(B, 0))                                           \
    X(flatten, K_PTR, A_, S_, ag_flatten(B, 0, -1))                                           \
    X(contiguous, K_PTR, A_, S_, ag_contiguous(B))                                            \
    X(detach, K_PTR, A_, S_, ag_detach(B))                                                    \
    X(clone, K_PTR, A_, S_, ag_clone(B))                                                      \
    X(unary, K_PTR, A_, S_, ag_unary(AG_UNARY_EXP, B, 0, 0))                                  \
    X(binary_l, K_PTR, A_, S_, ag_binary(AG_BINARY_ADD, B, f->a))                             \
    X(binary_r, K_PTR, A_, S_, ag_binary(AG_BINARY_ADD, f->a, B))                             \
    X(sub_scalar, K_PTR, A_, S_, ag_sub_scalar(B, 1.0f))                                      \
    X(div_scalar, K_PTR, A_, S_, ag_div_scalar(B, 2.0f))                                      \
    X(div_scalar0, K_PTR, A_, S_, ag_div_scalar(B, 0.0f))                                     \
    X(add_l, K_PTR, A_, S_, ag_add(B, f->a))                                                  \
    X(add_r, K_PTR, A_, S_, ag_add(f->a, B))                                                  \
    X(sub, K_PTR, A_, S_, ag_sub(f->a, B))                                                    \
    X(mul, K_PTR, A_, S_, ag_mul(B, f->a))                                                    \
    X(div, K_PTR, A_, S_, ag_div(f->a, B))                                                    \
    X(maximum, K_PTR, A_, S_, ag_maximum(B, f->a))                                            \
    X(minimum, K_PTR, A_, S_, ag_minimum(f->a, B))                                            \
    X(eq, K_PTR, A_, S_, ag_eq(B, f->a))                                                      \
    X(ne, K_PTR, A_, S_, ag_ne(f->a, B))                                                      \
    X(lt, K_PTR, A_, S_, ag_lt(B, f->a))                                                      \
    X(le, K_PTR, A_, S_, ag_le(f->a, B))                                                      \
    X(gt, K_PTR, A_, S_, ag_gt(B, f->a))                                                      \
    X(ge, K_PTR, A_, S_, ag_ge(f->a, B))                                                      \
    X(where_c, K_PTR, A_, S_, ag_where(B, f->a, f->a))                                        \
    X(where_a, K_PTR, A_, S_, ag_where(f->a, B, f->a))                                        \
    X(where_b, K_PTR, A_, S_, ag_where(f->a, f->a, B))                                        \
    X(sum, K_PTR, A_, S_, ag_sum(B, 1, f->axis0, false))                                      \
    X(mean, K_PTR, A_, S_, ag_mean(B, 1, f->axis0, true))                                     \
    X(max, K_PTR, A_, S_, ag_max(B, 0, NULL, false))                                          \
    X(min, K_PTR, A_, S_, ag_min(B, 0, NULL, false))                                          \
    X(var, K_PTR, A_, S_, ag_var(B, 0, NULL, 1, false))                                       \
    X(sum_all, K_PTR, A_, S_, ag_sum_all(B))                                                  \
    X(mean_all, K_PTR, A_, S_, ag_mean_all(B))                                                \
    X(argmax, K_PTR, A_, S_, ag_argmax(B, 0, false))                                          \
    X(argmin, K_PTR, A_, S_, ag_argmin(B, 1, true))                                           \
    X(matmul_l, K_PTR, A_, S_, ag_matmul(B, f->w))                                            \
    X(matmul_r, K_PTR, A_, S_, ag_matmul(f->w, B))                                            \
    X(linear_x, K_PTR, A_, S_, ag_linear(B, f->w, NULL))                                      \
    X(linear_w, K_PTR, A_, S_, ag_linear(f->a, B, NULL))                                      \
    X(linear_b, K_PTR, N_, S_, ag_linear(f->a, f->w, B))                                      \
    X(softmax, K_PTR, A_, S_, ag_softmax(B, 0))                                               \
    X(log_softmax, K_PTR, A_, S_, ag_log_softmax(B, -1))                                      \
    X(mse_p, K_PTR, A_, S_, ag_mse_loss(B, f->a, AG_REDUCTION_MEAN))                          \
    X(mse_t, K_PTR, A_, S_, ag_mse_loss(f->a, B, AG_REDUCTION_SUM))                           \
    X(ce_x, K_PTR, A_, S_, ag_cross_entropy(B, f->lab, AG_REDUCTION_MEAN, 0.0f))              \
    X(ce_l, K_PTR, A_, S_, ag_cross_entropy(f->a, B, AG_REDUCTION_MEAN, 0.0f))                \
    X(nll_x, K_PTR, A_, S_, ag_nll_loss(B, f->lab, AG_REDUCTION_MEAN))                        \
    X(nll_l, K_PTR, A_, S_, ag_nll_loss(f->a, B, AG_REDUCTION_NONE))                          \
    X(bce_x, K_PTR, A_, S_, ag_bce_with_logits(B, f->a, AG_REDUCTION_MEAN))                   \
    X(bce_t, K_PTR, A_, S_, ag_bce_with_logits(f->a, B, AG_REDUCTION_MEAN))                   \
    X(count_x, K_ST, A_, S_, ag_count_correct(B, f->lab, &f->count))                          \
    X(count_l, K_ST, A_, S_, ag_count_correct(f->a, B, &f->count))                            \
    X(conv_x, K_PTR, A_, S_, ag_conv2d(B, f->cw, NULL, NULL))                                 \
    X(conv_w, K_PTR, A_, S_, ag_conv2d(f->img, B, NULL, NULL))                                \
    X(conv_b, K_PTR, N_, S_, ag_conv2d(f->img, f->cw, B, NULL))                               \
    X(max_pool, K_PTR, A_, S_, ag_max_pool2d(B, &f->pool))                                    \
    X(avg_pool, K_PTR, A_, S_, ag_avg_pool2d(B, &f->pool))                                    \
    X(bn_x, K_PTR, A_, S_, ag_batch_norm(B, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f))       \
    X(bn_rm, K_PTR, N_, S_, ag_batch_norm(f->img, B, f->c2, NULL, NULL, true, 0.1f, 1e-5f))   \
    X(bn_rv, K_PTR, N_, S_, ag_batch_norm(f->img, f->c2, B, NULL, NULL, true, 0.1f, 1e-5f))   \
    X(bn_w, K_PTR, N_, S_, ag_batch_norm(f->img, NULL, NULL, B, NULL, true, 0.1f, 1e-5f))     \
    X(bn_b, K_PTR, N_, S_, ag_batch_norm(f->img, NULL, NULL, NULL, B, true, 0.1f, 1e-5f))     \
    X(ln_x, K_PTR, A_, S_, ag_layer_norm(B, 1, NULL, NULL, 1e-5f))                            \
    X(ln_w, K_PTR, N_, S_, ag_layer_norm(f->a, 1, B, NULL, 1e-5f))                            \
    X(ln_b, K_PTR, N_, S_, ag_layer_norm(f->a, 1, NULL, B, 1e-5f))                            \
    X(dropout, K_PTR, A_, S_, ag_dropout(B, 0.5f, true))                                      \
    X(sdpa_q, K_PTR, A_, S_, ag_scaled_dot_product_attention(B, f->a, f->a, NULL, 0, false, 0)) \
    X(sdpa_k, K_PTR, A_, S_, ag_scaled_dot_product_attention(f->a, B, f->a, NULL, 0, false, 0)) \
    X(sdpa_v, K_PTR, A_, S_, ag_scaled_dot_product_attention(f->a, f->a, B, NULL, 0, true, 0))  \
    X(embedding_i, K_PTR, A_, S_, ag_embedding(B, f->w))                                      \
    X(embedding_w, K_PTR, A_, S_, ag_embedding(f->lab, B))                                    \
    X(concat, K_PTR, A_, S_, ag_concat(2, with_bad(f), 0))                                    \
    X(stack, K_PTR, A_, S_, ag_stack(2, with_bad(f), 0))                                      \
    X(gather_x, K_PTR, A_, S_, ag_gather(B, 1, f->idx))                                       \
    X(gather_i, K_PTR, A_, S_, ag_gather(f->a, 1, B))                                         \
    X(scatter_x, K_PTR, A_, S_, ag_scatter_add(B, 1, f->idx, f->a))                           \
    X(scatter_i, K_PTR, A_, S_, ag_scatter_add(f->a, 1, B, f->a))                             \
    X(scatter_s, K_PTR, A_, S_, ag_scatter_add(f->a, 1, f->idx, B))                           \
    X(set_requires_grad, K_ST, A_, S_, ag_set_requires_grad(B, true))                         \
    X(requires_grad, K_TRUE, A_, S_, !ag_requires_grad(B))                                    \
    X(backward_root, K_ST, A_, S_, ag_backward(B, NULL))                                      \
    X(backward_grad, K_ST, O_, S_, ag_backward(ag_sum_all(f->leaf), B))                       \
    X(grad, K_TRUE, A_, S_, ag_grad(B) == NULL)                                               \
    X(zero_grad, K_ST, A_, S_, ag_zero_grad(B))                                               \
    X(optim_new, K_PTR, A_, S_, ag_optim_new(sgd(), 1, only_bad(f)))                          \
    X(clip_grad_norm, K_ST, A_, S_, ag_clip_grad_norm(1, only_bad(f), 1.0f, &f->norm))        \
    X(dist_average_gradients, K_ST, A_, S_, ag_dist_average_gradients(1, only_bad(f), 1.0))   \
    X(module_forward, K_PTR, A_, S_, ag_module_forward(f->mod, B))                            \
    X(init_uniform, K_ST, A_, S_, ag_init_uniform(B, 0.0f, 1.0f))                             \
    X(init_normal, K_ST, A_, S_, ag_init_normal(B, 0.0f, 1.0f))                               \
    X(init_constant, K_ST, A_, S_, ag_init_constant(B, 1.0f))                                 \
    X(init_ku, K_ST, A_, S_, ag_init_kaiming_uniform(B, 0.0f, AG_FAN_IN))                     \
    X(init_kn, K_ST, A_, S_, ag_init_kaiming_normal(B, 0.0f, AG_FAN_OUT))                     \
    X(init_xu, K_ST, A_, S_, ag_init_xavier_uniform(B, 1.0f))                                 \
    X(init_xn, K_ST, A_, S_, ag_init_xavier_normal(B, 1.0f))                                  \
    X(loader_x, K_PTR, A_, S_, ag_loader_new(B, NULL, &loader_cfg))                           \
    X(loader_y, K_PTR, N_, S_, ag_loader_new(f->a, B, &loader_cfg))                           \
    X(save_safetensors, K_ST, A_, S_, ag_safetensors_save(f->path, 1, names1, only_bad(f), 0, NULL))

/* Devices, modules and optimizers (and loaders' tensor outputs): NULL only.
 * Name and kind queries answer "(null)" and the like without an error. */
#define OTHER_ROWS(X)                                                                         \
    X(device_name, K_TRUE, O_, N_, !strcmp(ag_device_name(NULL), "(null)"))                   \
    X(device_backend, K_TRUE, O_, N_, !strcmp(ag_device_backend(NULL), "(null)"))            \
    X(device_index, K_TRUE, O_, N_, ag_device_index(NULL) == -1)                              \
    X(device_info, K_ST, A_, N_, ag_device_info(NULL, &f->props))                             \
    X(device_details, K_ST, A_, N_, ag_device_details(NULL, f->str, sizeof f->str))           \
    X(device_calibrate, K_ST, A_, N_, ag_device_calibrate(NULL, false))                       \
    X(debug_device_reset, K_ST, A_, N_, ag_debug_device_reset(NULL))                          \
    X(set_default_device, K_ST, O_, N_, ag_set_default_device(NULL))                          \
    X(device_sync, K_ST, A_, N_, ag_device_sync(NULL))                                        \
    X(to_device_dev, K_PTR, A_, N_, ag_to_device(f->a, NULL))                                 \
    X(optim_step, K_ST, A_, N_, ag_optim_step(NULL))                                          \
    X(optim_zero_grad, K_ST, A_, N_, ag_optim_zero_grad(NULL))                                \
    X(optim_set_lr, K_ST, A_, N_, ag_optim_set_lr(NULL, 0.1f))                                \
    X(optim_lr, K_TRUE, A_, N_, isnan(ag_optim_lr(NULL)))                                     \
    X(optim_steps, K_TRUE, A_, N_, ag_optim_steps(NULL) == -1)                                \
    X(optim_free, K_VOID, O_, N_, (ag_optim_free(NULL), 0))                                   \
    X(sequential_new, K_PTR, A_, N_, ag_sequential_new(1, (ag_module *const[]){NULL}))        \
    X(sequential_add_seq, K_ST, A_, N_, ag_sequential_add(NULL, NULL, ag_relu_new()))         \
    X(sequential_add_child, K_ST, A_, N_, ag_sequential_add(f->seq, NULL, NULL))              \
    X(module_num_children, K_TRUE, O_, N_, ag_module_num_children(NULL) == 0)                 \
    X(module_child, K_PTR, A_, N_, ag_module_child(NULL, 0))                                  \
    X(module_kind, K_TRUE, O_, N_, !strcmp(ag_module_kind(NULL), "(null)"))                   \
    X(module_forward_m, K_PTR, A_, N_, ag_module_forward(NULL, f->a))                         \
    X(module_free, K_VOID, O_, N_, (ag_module_free(NULL), 0))                                 \
    X(module_train, K_VOID, O_, N_, (ag_module_train(NULL, true), 0))                         \
    X(module_is_training, K_TRUE, O_, N_, !ag_module_is_training(NULL))                       \
    X(module_parameters, K_PTR, A_, N_, ag_module_parameters(NULL, &f->n))                    \
    X(module_parameter_names, K_PTR, A_, N_, ag_module_parameter_names(NULL, &f->n))          \
    X(module_num_parameters, K_TRUE, A_, N_, ag_module_num_parameters(NULL) == -1)            \
    X(module_state, K_PTR, A_, N_, ag_module_state(NULL, &f->n))                              \
    X(module_state_names, K_PTR, A_, N_, ag_module_state_names(NULL, &f->n))                  \
    X(module_get, K_PTR, A_, N_, ag_module_get(NULL, "weight"))                               \
    X(module_get_name, K_PTR, A_, N_, ag_module_get(f->mod, NULL))                            \
    X(module_save, K_ST, A_, N_, ag_module_save(NULL, f->path))                               \
    X(module_load, K_ST, A_, N_, ag_module_load(NULL, f->path))                               \
    X(checkpoint_save, K_ST, A_, N_, ag_checkpoint_save(f->path, NULL, NULL, 0))              \
    X(checkpoint_save_meta, K_ST, A_, N_, ag_checkpoint_save_meta(f->path, NULL, NULL, 0, 0, NULL)) \
    X(checkpoint_save_meta_kv, K_ST, A_, N_, ag_checkpoint_save_meta(f->path, f->mod, NULL, 0, 1, NULL)) \
    X(checkpoint_load, K_ST, A_, N_, ag_checkpoint_load(f->path, NULL, NULL, NULL))           \
    X(dist_broadcast_module, K_ST, A_, N_, ag_dist_broadcast_module(NULL, NULL, 0))           \
    X(dist_average_buffers, K_ST, A_, N_, ag_dist_average_buffers(NULL))                      \
    X(loader_next, K_TRUE, A_, N_, !ag_loader_next(NULL, &f->out, NULL))

/* every op of the op table (src/ops/unary_table.h), with its conformance parameters */
#define UNARY_ARGS_0(p0, p1)
#define UNARY_ARGS_1(p0, p1) , p0
#define UNARY_ARGS_2(p0, p1) , p0, p1
#define UNARY_ROW(X, name, np, p0, p1) X(name, K_PTR, A_, S_, ag_##name(B UNARY_ARGS_##np(p0, p1)))

#define THUNK(id, kind, wn, wd, expr)                                                         \
    static intptr_t th_##id(fx *f)                                                            \
    {                                                                                         \
        (void)f;                                                                              \
        return (intptr_t)(expr);                                                              \
    }
TENSOR_ROWS(THUNK)
OTHER_ROWS(THUNK)
#define U_THUNK(E, name, np, pn, doc, mod, uy, on, wrap, tn, p0, p1, ...) UNARY_ROW(THUNK, name, np, p0, p1)
AG_UNARY_TABLE(U_THUNK)

typedef struct row {
    const char *expr;
    row_kind kind;
    int want_null, want_released;
    intptr_t (*fn)(fx *f);
} row;

#define ROW(id, kind, wn, wd, expr) {#expr, kind, wn, wd, th_##id},
#define U_ROW(E, name, np, pn, doc, mod, uy, on, wrap, tn, p0, p1, ...) UNARY_ROW(ROW, name, np, p0, p1)
static const row rows[] = {TENSOR_ROWS(ROW) AG_UNARY_TABLE(U_ROW) OTHER_ROWS(ROW)};
#define NROWS ((int)(sizeof rows / sizeof rows[0]))

static void fx_init(fx *f)
{
    memset(f, 0, sizeof *f);
    f->a = mat(2, 3, 0.5f);
    f->w = mat(4, 3, 0.25f);
    f->c2 = vec(2, 1.0f);
    f->lab = ag_from_i32((const int32_t[]){0, 2}, 1, (const int64_t[]){2});
    f->idx = ag_from_i32((const int32_t[]){0, 0, 0, 0, 0, 0}, 2, (const int64_t[]){2, 3});
    f->img = ag_full(4, (const int64_t[]){1, 2, 4, 4}, 1.0f);
    f->cw = ag_full(4, (const int64_t[]){2, 2, 3, 3}, 0.1f);
    f->leaf = leaf(mat(2, 3, 1.0f));
    f->mod = ag_linear_new(3, 4, true);
    f->seq = ag_sequential_new(0, NULL);
    f->dev = ag_device_default();
    f->shape6[0] = 6;
    f->shape23[0] = 2;
    f->shape23[1] = 3;
    f->perm[0] = 1;
    f->axis0[0] = 0;
    f->pool = (ag_pool2d_params){{2, 2}, {2, 2}, {0, 0}};
    snprintf(f->path, sizeof f->path, "/tmp/ag-misuse-%d.safetensors", (int)getpid());
    ck_assert_msg(f->a && f->w && f->c2 && f->lab && f->idx && f->img && f->cw && f->leaf &&
                      f->mod && f->seq && f->dev,
                  "fixture: %s", ag_last_error());
}

static void fx_free(fx *f)
{
    ag_tensor *ts[] = {f->a, f->w, f->c2, f->lab, f->idx, f->img, f->cw, f->leaf};
    for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) ag_release(ts[k]);
    ag_module_free(f->mod);
    ag_module_free(f->seq);
    unlink(f->path);
}

/* Runs row r with bad as the handle under test; pass names it in messages. */
static void run_row(const row *r, fx *f, ag_tensor *bad, int want, const char *pass)
{
    f->bad = bad;
    ag_scope_begin();
    ag_clear_error();
    intptr_t got = r->fn(f);
    ag_status st = ag_last_status();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ag_last_error());
    ag_scope_end();
    bool ok = r->kind == K_PTR ? got == 0 : r->kind == K_ST ? got == want
                                          : r->kind == K_TRUE ? got != 0 : true;
    ck_assert_msg(ok && st == (ag_status)want,
                  "%s with a %s handle: returned %ld, status %s (%s); want %s", r->expr, pass,
                  (long)got, ag_status_name(st), msg, ag_status_name((ag_status)want));
    if (want == AG_ERR_STATE)
        ck_assert_msg(strstr(msg, "released"), "%s: message '%s' does not say 'released'",
                      r->expr, msg);
}

START_TEST(null_handles)
{
    fx f;
    fx_init(&f);
    for (int k = 0; k < NROWS; k++)
        if (rows[k].want_null != N_) run_row(&rows[k], &f, NULL, rows[k].want_null, "NULL");
    ck_assert_int_eq(ag_scope_depth(), 0);
    fx_free(&f);
}
END_TEST

START_TEST(released_handles)
{
    fx f;
    fx_init(&f);
    for (int k = 0; k < NROWS; k++)
        if (rows[k].want_released != N_)
            run_row(&rows[k], &f, released(), rows[k].want_released, "released");
    ck_assert_int_eq(ag_scope_depth(), 0);
    fx_free(&f);
}
END_TEST

/* Every function of include/anygrad.h with a tensor, device, module or
 * optimizer parameter has a row: a new one without a row fails here. */
START_TEST(table_covers_header)
{
    FILE *fp = fopen(AG_SOURCE_ROOT "/include/anygrad.h", "r");
    ck_assert_ptr_nonnull(fp);
    static char text[1 << 17];
    size_t len = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    ck_assert_uint_lt(len, sizeof text - 1);
    text[len] = '\0';
    /* Comments and preprocessor lines out; then one declaration per ';'. */
    for (char *c = strstr(text, "/*"); c; c = strstr(c, "/*")) {
        char *e = strstr(c + 2, "*/");
        ck_assert_ptr_nonnull(e);
        memset(c, ' ', (size_t)(e + 2 - c));
    }
    for (char *l = text; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
        char *p = l;
        while (*p == ' ') p++;
        if (*p == '#')
            while (*p && *p != '\n') *p++ = ' ';
    }
    static const char *const types[] = {"ag_tensor *", "ag_device *", "ag_module *", "ag_optim *"};
    int checked = 0;
    for (char *decl = strtok(text, ";"); decl; decl = strtok(NULL, ";")) {
        char *open = strchr(decl, '(');
        if (!open) continue;
        char *name = open;
        while (name > decl && name[-1] == ' ') name--;
        char *end = name;
        while (name > decl && (name[-1] == '_' || (name[-1] >= 'a' && name[-1] <= 'z') ||
                               (name[-1] >= '0' && name[-1] <= '9')))
            name--;
        if (strncmp(name, "ag_", 3) != 0) continue;
        bool handles = false;
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) handles |= strstr(open, types[t]) != NULL;
        if (!handles) continue;
        char call[80];
        snprintf(call, sizeof call, "%.*s(", (int)(end - name), name);
        bool found = false;
        for (int k = 0; k < NROWS && !found; k++) found = strstr(rows[k].expr, call) != NULL;
        ck_assert_msg(found, "%s has no row in test_misuse.c's handle table", call);
        checked++;
    }
    ck_assert_int_ge(checked, 140); /* the parser found the header's functions */
}
END_TEST

/* ---- released tensors ------------------------------------------------------------ */

START_TEST(use_after_release)
{
    ag_tensor *t = released();
    EXPECT_PTR_FAIL(AG_ERR_STATE, "exp: tensor used after it was released", ag_exp(t));
    /* the first error survives the calls around it */
    EXPECT_PTR_FAIL(AG_ERR_STATE, "exp:", ag_sum_all(ag_relu(ag_exp(t))));
    char s[32];
    ck_assert_str_eq(ag_shape_str(t, s, sizeof s), "(released)");
}
END_TEST

/* One release too many is reported instead of freeing the slot and the
 * device buffer twice; nothing else is disturbed. */
START_TEST(release_once_too_often)
{
    int64_t live = ag_debug_live_buffers();
    ag_tensor *keep = vec(3, 2.0f);
    ag_tensor *t = vec(3, 1.0f);
    ag_release(t);
    ck_assert_int_eq(ag_debug_live_buffers(), live + 1);
    ag_clear_error();
    ag_release(t);
    expect_error("second ag_release", AG_ERR_STATE, "ag_release");
    ck_assert_int_eq(ag_debug_live_buffers(), live + 1);
    values(keep, (const float[]){2, 2, 2}, 3);
    ag_release(keep);
    ck_assert_int_eq(ag_debug_live_buffers(), live);
}
END_TEST

/* Releasing a tensor the scope owns, then ending the scope. */
START_TEST(scope_owned_tensor_released)
{
    int64_t live = ag_debug_live_buffers();
    ag_scope_begin();
    ag_tensor *t = vec(4, 1.0f);
    ag_release(t); /* the scope's only reference */
    ag_clear_error();
    ag_scope_end();
    expect_error("ag_scope_end after the extra release", AG_ERR_STATE, "released");
    ck_assert_int_eq(ag_debug_live_buffers(), live);
    ck_assert_int_eq(ag_scope_depth(), 0);
}
END_TEST

/* The optimizer holds its own reference; releasing a parameter twice kills
 * it under the optimizer, which then refuses to step instead of crashing. */
START_TEST(optimizer_parameter_released)
{
    ag_tensor *p = leaf(vec(2, 1.0f));
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_SGD, 0.1f);
    ag_optim *opt = ag_optim_new(&cfg, 1, &p);
    ck_assert_ptr_nonnull(opt);
    ag_release(p);
    ag_release(p);
    EXPECT_ST(AG_ERR_STATE, "params[0] was released", ag_optim_step(opt));
    EXPECT_ST(AG_ERR_STATE, "params[0] was released", ag_optim_zero_grad(opt));
    ag_clear_error();
    ag_optim_free(opt); /* reports the dead parameter, frees the rest */
    expect_error("ag_optim_free", AG_ERR_STATE, "released");
}
END_TEST

/* The graph holds its own reference to an op's inputs: releasing the
 * caller's one twice kills the input under it, and backward says so. */
START_TEST(graph_input_released)
{
    int64_t live = ag_debug_live_buffers();
    ag_tensor *x = leaf(vec(2, 1.0f));
    ag_scope_begin();
    ag_tensor *y = ag_sum_all(ag_exp(x));
    ag_release(x);
    ag_release(x);
    EXPECT_ST(AG_ERR_STATE, "released while the graph still held it", ag_backward(y, NULL));
    ag_clear_error();
    ag_scope_end(); /* frees the graph, which reports the dead input */
    expect_error("freeing the graph", AG_ERR_STATE, "released");
    ck_assert_int_eq(ag_debug_live_buffers(), live);
}
END_TEST

/* A released slot is not handed out again before 1000 more tensors were
 * released on the same thread, so the stale handle keeps reading "released". */
START_TEST(quarantine_window)
{
    ag_tensor *t = released();
    for (int k = 0; k < 1000; k++) {
        ag_tensor *u = ag_scalar((float)k);
        ck_assert_ptr_ne(u, t);
        ag_release(u);
    }
    EXPECT_PTR_FAIL(AG_ERR_STATE, "released", ag_neg(t));
}
END_TEST

/* Tensors created on one thread and released on another, threads that exit
 * with slots in quarantine, and many threads at once. */
#define NCROSS 3000
static void *release_all(void *arg)
{
    ag_tensor **ts = arg;
    for (int k = 0; k < NCROSS; k++) ag_release(ts[k]);
    return NULL;
}

static void *churn(void *arg)
{
    ag_tensor **stale = arg;
    ag_tensor *x = vec(4, 1.0f);
    bool ok = x != NULL;
    for (int k = 0; k < 2000 && ok; k++) {
        ag_scope_begin();
        ag_tensor *y = ag_add_scalar(ag_mul_scalar(x, 2.0f), (float)k);
        float v[4];
        ok = y && ag_to_host(y, v, sizeof v) == AG_OK && v[3] == 2.0f + (float)k;
        ag_scope_end();
    }
    ag_release(x);
    *stale = x; /* released on this thread, just before it exits */
    return ok ? NULL : (void *)1;
}

START_TEST(threads_and_slots)
{
    static ag_tensor *ts[NCROSS];
    for (int k = 0; k < NCROSS; k++) ck_assert_ptr_nonnull(ts[k] = ag_scalar((float)k));
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, release_all, ts), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    EXPECT_PTR_FAIL(AG_ERR_STATE, "released", ag_exp(ts[NCROSS - 1]));

    ag_tensor *stale[4];
    pthread_t ths[4];
    for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&ths[i], NULL, churn, &stale[i]), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        ck_assert_int_eq(pthread_join(ths[i], &r), 0);
        ck_assert_msg(r == NULL, "thread %d computed a wrong value", i);
    }
    /* The exited threads' slots wait in the shared pool, still dead. */
    for (int i = 0; i < 4; i++) EXPECT_PTR_FAIL(AG_ERR_STATE, "released", ag_exp(stale[i]));
    /* The slots the other thread released serve new tensors here. */
    for (int k = 0; k < NCROSS; k++) {
        ag_tensor *t = ag_scalar((float)k);
        float v = -1;
        ck_assert_int_eq(ag_item(t, &v), AG_OK);
        ck_assert(v == (float)k);
        ag_release(t);
    }
}
END_TEST

/* Large tensors (a device allocation of their own, freed once unused) made and
 * released on one thread while another thread synchronises the same device:
 * memory must not be freed while work recorded on it waits to be submitted (the
 * Vulkan backend trimmed unused blocks outside its recording lock and crashed). */
static _Atomic int big_done;

static void *small_syncs(void *arg)
{
    (void)arg;
    bool ok = true;
    while (ok && !atomic_load(&big_done)) {
        ag_tensor *t = vec(4, 1.0f);
        float v[4];
        ok = t && ag_to_host(t, v, sizeof v) == AG_OK && v[0] == 1.0f;
        ag_release(t);
    }
    return ok ? NULL : (void *)1;
}

START_TEST(big_tensors_two_threads)
{
    const int64_t n = (int64_t)9 << 20; /* 36 MiB of f32 */
    atomic_store(&big_done, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, small_syncs, NULL), 0);
    bool ok = true;
    for (int k = 0; k < 3 && ok; k++) {
        ag_tensor *x = ag_full(1, &n, 1.0f);
        ag_tensor *y = ag_add_scalar(x, 1.0f);
        ag_release(x);
        ag_tensor *s = ag_sum_all(y);
        ag_release(y);
        float v = 0;
        ok = s && ag_item(s, &v) == AG_OK && fabsf(v - 2.0f * (float)n) <= 1e-6f * 2.0f * (float)n;
        ag_release(s);
    }
    atomic_store(&big_done, 1);
    void *r;
    ck_assert_int_eq(pthread_join(th, &r), 0);
    ck_assert_msg(ok, "the large-tensor thread computed a wrong value: %s", ag_last_error());
    ck_assert_msg(r == NULL, "the small-tensor thread computed a wrong value");
}
END_TEST

/* ---- in-place writes between forward and backward ------------------------------------ */

START_TEST(inplace_input_of_mul)
{
    ag_scope_begin();
    ag_tensor *a = leaf(vec(3, 2.0f)), *b = leaf(vec(3, 3.0f));
    ag_tensor *loss = ag_sum_all(ag_mul(a, b));
    const float fresh[3] = {5, 5, 5};
    ck_assert_int_eq(ag_from_host(a, fresh, sizeof fresh), AG_OK);
    EXPECT_ST(AG_ERR_STATE, "saved by 'mul'", ag_backward(loss, NULL));
    expect_error("backward", AG_ERR_STATE, "modified in place after the forward pass");
    ck_assert_ptr_null(ag_grad(b)); /* nothing wrong was accumulated */
    ag_scope_end();
}
END_TEST

/* Only what the backward reads is checked: for a * b with only a requiring a
 * gradient, b is read (d/da = b) and a is not. */
START_TEST(inplace_checks_only_what_backward_reads)
{
    ag_scope_begin();
    const float five[3] = {5, 5, 5};
    ag_tensor *a = leaf(vec(3, 2.0f)), *b = vec(3, 3.0f);
    ag_tensor *loss = ag_sum_all(ag_mul(a, b));
    ck_assert_int_eq(ag_from_host(a, five, sizeof five), AG_OK);
    ck_assert_int_eq(ag_backward(loss, NULL), AG_OK);
    values(ag_grad(a), (const float[]){3, 3, 3}, 3);

    ag_zero_grad(a);
    loss = ag_sum_all(ag_mul(a, b));
    ck_assert_int_eq(ag_from_host(b, five, sizeof five), AG_OK);
    EXPECT_ST(AG_ERR_STATE, "saved by 'mul'", ag_backward(loss, NULL));

    /* add reads neither input */
    ag_zero_grad(a);
    loss = ag_sum_all(ag_add(a, b));
    ck_assert_int_eq(ag_from_host(a, five, sizeof five), AG_OK);
    ck_assert_int_eq(ag_from_host(b, five, sizeof five), AG_OK);
    ag_clear_error();
    ck_assert_int_eq(ag_backward(loss, NULL), AG_OK);
    values(ag_grad(a), (const float[]){1, 1, 1}, 3);
    ag_scope_end();
}
END_TEST

START_TEST(inplace_saved_output)
{
    ag_scope_begin();
    ag_tensor *x = leaf(vec(2, 0.5f));
    ag_tensor *y = ag_exp(x);
    ag_tensor *loss = ag_sum_all(y);
    ck_assert_int_eq(ag_from_host(y, (const float[]){1, 1}, 2 * sizeof(float)), AG_OK);
    EXPECT_ST(AG_ERR_STATE, "saved by 'exp'", ag_backward(loss, NULL));
    ag_scope_end();
}
END_TEST

/* Views share their storage's version: writing through the base, or through
 * another view, is seen. */
START_TEST(inplace_through_views)
{
    ag_scope_begin();
    ag_tensor *x = leaf(mat(2, 3, 1.0f));
    ag_tensor *v = ag_transpose(x, 0, 1);
    ag_tensor *loss = ag_sum_all(ag_mul(v, v));
    ag_tensor *row = ag_slice(ag_detach(x), 0, 1, 2, 1);
    ck_assert_int_eq(ag_from_host(row, (const float[]){7, 7, 7}, 3 * sizeof(float)), AG_OK);
    EXPECT_ST(AG_ERR_STATE, "saved by 'mul'", ag_backward(loss, NULL));
    ag_scope_end();
}
END_TEST

/* The classic silent bug: a reused input buffer refilled before backward. */
START_TEST(inplace_refilled_input_of_matmul)
{
    ag_scope_begin();
    ag_tensor *x = mat(1, 3, 1.0f), *w = leaf(mat(3, 2, 0.5f));
    ag_tensor *loss = ag_sum_all(ag_matmul(x, w));
    ck_assert_int_eq(ag_from_host(x, (const float[]){9, 9, 9}, 3 * sizeof(float)), AG_OK);
    EXPECT_ST(AG_ERR_STATE, "saved by 'matmul'", ag_backward(loss, NULL));
    /* the other operand, for the other gradient */
    ag_tensor *x2 = leaf(mat(1, 3, 1.0f)), *w2 = mat(3, 2, 0.5f);
    loss = ag_sum_all(ag_matmul(x2, w2));
    ck_assert_int_eq(ag_from_host(w2, (const float[]){1, 2, 3, 4, 5, 6}, 6 * sizeof(float)), AG_OK);
    EXPECT_ST(AG_ERR_STATE, "saved by 'matmul'", ag_backward(loss, NULL));
    ag_scope_end();
}
END_TEST

/* An optimizer step between a forward pass and its backward. */
START_TEST(inplace_optimizer_step)
{
    ag_tensor *w = leaf(vec(2, 1.0f));
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_SGD, 0.1f);
    ag_optim *opt = ag_optim_new(&cfg, 1, &w);
    ck_assert_ptr_nonnull(opt);
    ag_scope_begin();
    ck_assert_int_eq(ag_backward(ag_sum_all(ag_mul(w, w)), NULL), AG_OK);
    ag_tensor *loss = ag_sum_all(ag_mul(w, w));
    ck_assert_int_eq(ag_optim_step(opt), AG_OK);
    EXPECT_ST(AG_ERR_STATE, "saved by 'mul'", ag_backward(loss, NULL));
    /* The usual order (forward, backward, step) is fine. */
    ag_optim_zero_grad(opt);
    ck_assert_int_eq(ag_backward(ag_sum_all(ag_mul(w, w)), NULL), AG_OK);
    ck_assert_int_eq(ag_optim_step(opt), AG_OK);
    ag_scope_end();
    ag_optim_free(opt);
    ag_release(w);
}
END_TEST

/* Re-initialising a weight (ag_init_*) between forward and backward, and linear's
 * saved operands: each is caught. */
START_TEST(inplace_init_and_linear)
{
    ag_scope_begin();
    int64_t ws[2] = {3, 2};
    ag_tensor *w = ag_zeros(2, ws), *x = leaf(vec(2, 1.0f));
    ag_set_requires_grad(w, true);
    ag_tensor *loss = ag_sum_all(ag_linear(x, w, NULL)); /* W's gradient reads x */
    ck_assert_int_eq(ag_init_constant(x, 2.0f), AG_OK);
    EXPECT_ST(AG_ERR_STATE, "saved by 'linear'", ag_backward(loss, NULL));
    loss = ag_sum_all(ag_linear(x, w, NULL)); /* x's gradient reads W */
    ck_assert_int_eq(ag_init_uniform(w, -1.0f, 1.0f), AG_OK);
    EXPECT_ST(AG_ERR_STATE, "saved by 'linear'", ag_backward(loss, NULL));
    ck_assert_int_eq(ag_backward(ag_sum_all(ag_linear(x, w, NULL)), NULL), AG_OK);
    ag_scope_end();
}
END_TEST

/* Gradient clipping scales gradients in place: a graph that read one sees it. */
START_TEST(inplace_clip_grad_norm)
{
    ag_scope_begin();
    ag_tensor *w = leaf(vec(2, 3.0f)), *x = leaf(vec(2, 1.0f));
    ck_assert_int_eq(ag_backward(ag_sum_all(ag_mul_scalar(w, 4.0f)), NULL), AG_OK);
    ag_tensor *loss = ag_sum_all(ag_mul(x, ag_grad(w)));
    float norm;
    ck_assert_int_eq(ag_clip_grad_norm(1, &w, 1.0f, &norm), AG_OK);
    EXPECT_ST(AG_ERR_STATE, "saved by 'mul'", ag_backward(loss, NULL));
    ag_scope_end();
}
END_TEST

/* batch_norm's running statistics are written in place in training mode. */
START_TEST(inplace_batch_norm_running_stats)
{
    ag_scope_begin();
    ag_tensor *rm = vec(2, 0.0f), *rv = vec(2, 1.0f), *x = leaf(vec(2, 1.0f));
    ag_tensor *loss = ag_sum_all(ag_mul(x, rm));
    ag_tensor *img = ag_rand(2, (const int64_t[]){4, 2}, 0.0f, 1.0f);
    ck_assert_ptr_nonnull(ag_batch_norm(img, rm, rv, NULL, NULL, true, 0.1f, 1e-5f));
    EXPECT_ST(AG_ERR_STATE, "saved by 'mul'", ag_backward(loss, NULL));
    /* eval mode only reads them */
    loss = ag_sum_all(ag_mul(x, rm));
    ck_assert_ptr_nonnull(ag_batch_norm(img, rm, rv, NULL, NULL, false, 0.1f, 1e-5f));
    ag_clear_error();
    ck_assert_int_eq(ag_backward(loss, NULL), AG_OK);
    ag_scope_end();
}
END_TEST

START_TEST(inplace_labels_of_cross_entropy)
{
    ag_scope_begin();
    ag_tensor *logits = leaf(mat(2, 3, 0.5f));
    ag_tensor *lab = ag_from_i32((const int32_t[]){0, 1}, 1, (const int64_t[]){2});
    ag_tensor *loss = ag_cross_entropy(logits, lab, AG_REDUCTION_MEAN, 0.0f);
    ck_assert_int_eq(ag_from_host(lab, (const int32_t[]){2, 2}, 2 * sizeof(int32_t)), AG_OK);
    EXPECT_ST(AG_ERR_STATE, "saved by 'cross_entropy'", ag_backward(loss, NULL));
    ag_scope_end();
}
END_TEST

/* ---- autograd misuse ------------------------------------------------------------------ */

START_TEST(backward_twice)
{
    ag_scope_begin();
    ag_tensor *x = leaf(vec(3, 1.0f));
    ag_tensor *loss = ag_sum_all(ag_exp(x));
    ck_assert_int_eq(ag_backward(loss, NULL), AG_OK);
    EXPECT_ST(AG_ERR_STATE, "already freed", ag_backward(loss, NULL));
    /* through an intermediate the first backward freed */
    ag_tensor *h = ag_exp(x);
    ck_assert_int_eq(ag_backward(ag_sum_all(h), NULL), AG_OK);
    EXPECT_ST(AG_ERR_STATE, "freed", ag_backward(ag_sum_all(ag_mul_scalar(h, 2.0f)), NULL));
    ag_scope_end();
}
END_TEST

/* Tensors on two devices meet in every kind of op: AG_ERR_DEVICE. Needs two
 * devices (CI has the CPU, PoCL and lavapipe). */
START_TEST(devices_mixed_in_ops)
{
    int n = ag_device_count();
    for (int i = 0; i + 1 < n; i++) {
        ag_device *d0 = ag_device_get(i), *d1 = ag_device_get(i + 1);
        ag_scope_begin();
        ag_set_default_device(d0);
        ag_tensor *a = leaf(mat(2, 3, 1.0f)), *img = ag_ones(4, (const int64_t[]){1, 2, 4, 4});
        ag_tensor *lab = ag_from_i32((const int32_t[]){0, 1}, 1, (const int64_t[]){2});
        ag_tensor *loss = ag_sum_all(ag_mul_scalar(a, 2.0f));
        ag_set_default_device(d1);
        ag_tensor *b = mat(2, 3, 1.0f), *w = mat(4, 3, 1.0f), *c2 = vec(2, 1.0f);
        ag_tensor *cw = ag_ones(4, (const int64_t[]){2, 2, 3, 3}), *g = ag_scalar(1.0f);
        ag_tensor *idx = ag_from_i32((const int32_t[]){0, 0, 0, 0, 0, 0}, 2, (const int64_t[]){2, 3});
        ag_tensor *pair[2] = {a, b};
        ck_assert_msg(a && img && lab && loss && b && w && c2 && cw && g && idx, "%s", ag_last_error());
        EXPECT_PTR_FAIL(AG_ERR_DEVICE, "different devices", ag_add(a, b));
        EXPECT_PTR_FAIL(AG_ERR_DEVICE, NULL, ag_where(a, b, a));
        EXPECT_PTR_FAIL(AG_ERR_DEVICE, NULL, ag_matmul(a, ag_transpose(w, 0, 1)));
        EXPECT_PTR_FAIL(AG_ERR_DEVICE, NULL, ag_linear(a, w, NULL));
        EXPECT_PTR_FAIL(AG_ERR_DEVICE, NULL, ag_concat(2, pair, 0));
        EXPECT_PTR_FAIL(AG_ERR_DEVICE, NULL, ag_conv2d(img, cw, NULL, NULL));
        EXPECT_PTR_FAIL(AG_ERR_DEVICE, NULL, ag_batch_norm(img, NULL, NULL, c2, NULL, true, 0.1f, 1e-5f));
        EXPECT_PTR_FAIL(AG_ERR_DEVICE, NULL, ag_layer_norm(a, 1, ag_ones(1, (const int64_t[]){3}), NULL, 1e-5f));
        EXPECT_PTR_FAIL(AG_ERR_DEVICE, NULL, ag_mse_loss(a, b, AG_REDUCTION_MEAN));
        EXPECT_PTR_FAIL(AG_ERR_DEVICE, NULL, ag_cross_entropy(b, lab, AG_REDUCTION_MEAN, 0.0f));
        EXPECT_PTR_FAIL(AG_ERR_DEVICE, NULL, ag_gather(a, 1, idx));
        EXPECT_PTR_FAIL(AG_ERR_DEVICE, NULL, ag_embedding(lab, w));
        EXPECT_ST(AG_ERR_DEVICE, NULL, ag_backward(loss, g));
        ag_set_default_device(NULL);
        ag_scope_end();
    }
}
END_TEST

/* Indices outside the table are not an error (checking them would cost a
 * device sync per op): every backend gathers 0 for them and scatters nothing,
 * never reading or writing out of bounds; cross_entropy and nll give NaN. */
START_TEST(indices_out_of_range)
{
    ag_scope_begin();
    ag_tensor *w = ag_reshape(ag_arange(6), 2, (const int64_t[]){3, 2});
    ag_tensor *bad = ag_from_i32((const int32_t[]){7, -1, 1}, 1, (const int64_t[]){3});
    values(ag_embedding(bad, w), (const float[]){0, 0, 0, 0, 2, 3}, 6);
    ag_tensor *col = ag_reshape(bad, 2, (const int64_t[]){3, 1});
    values(ag_gather(w, 0, col), (const float[]){0, 0, 2}, 3);
    values(ag_scatter_add(w, 0, col, ag_ones(2, (const int64_t[]){3, 1})),
           (const float[]){0, 1, 3, 3, 4, 5}, 6);
    float v = 0;
    ag_tensor *lab = ag_from_i32((const int32_t[]){0, 3}, 1, (const int64_t[]){2});
    ck_assert_int_eq(ag_item(ag_cross_entropy(mat(2, 3, 0.0f), lab, AG_REDUCTION_MEAN, 0.0f), &v), AG_OK);
    ck_assert(isnan(v));
    ck_assert_int_eq(ag_item(ag_nll_loss(mat(2, 3, 0.0f), lab, AG_REDUCTION_SUM), &v), AG_OK);
    ck_assert(isnan(v));
    ag_scope_end();
}
END_TEST

/* ---- sizes ------------------------------------------------------------------------------ */

/* Empty tensors go through forward and backward with empty results. */
START_TEST(zero_size_tensors)
{
    ag_scope_begin();
    ag_tensor *z = leaf(ag_zeros(2, (const int64_t[]){0, 3}));
    ag_tensor *y = ag_sum_all(ag_mul_scalar(ag_exp(z), 2.0f));
    float v = -1;
    ck_assert_int_eq(ag_item(y, &v), AG_OK);
    ck_assert(v == 0.0f);
    ck_assert_int_eq(ag_backward(y, NULL), AG_OK);
    ck_assert_int_eq(ag_numel(ag_grad(z)), 0);
    ck_assert_int_eq(ag_dim(ag_grad(z), 1), 3);

    ag_tensor *m = ag_matmul(z, mat(3, 4, 1.0f));
    ck_assert_int_eq(ag_dim(m, 0), 0);
    ck_assert_int_eq(ag_dim(m, 1), 4);
    /* an empty inner dimension gives zeros */
    values(ag_matmul(ag_zeros(2, (const int64_t[]){2, 0}), ag_zeros(2, (const int64_t[]){0, 2})),
           (const float[]){0, 0, 0, 0}, 4);
    ck_assert_int_eq(ag_item(ag_mean_all(z), &v), AG_OK);
    ck_assert(isnan(v)); /* PyTorch: mean of nothing is NaN */
    ck_assert_int_eq(ag_numel(ag_softmax(z, 1)), 0);
    ck_assert_int_eq(ag_numel(ag_log_softmax(z, 0)), 0);
    ck_assert_int_eq(ag_dim(ag_reshape(z, 2, (const int64_t[]){3, 0}), 0), 3);
    ck_assert_int_eq(ag_dim(ag_reshape(z, 1, (const int64_t[]){-1}), 0), 0);
    ag_tensor *pair[2] = {z, mat(2, 3, 1.0f)};
    ck_assert_int_eq(ag_dim(ag_concat(2, pair, 0), 0), 2);
    ag_tensor *c = ag_conv2d(ag_zeros(4, (const int64_t[]){0, 1, 4, 4}),
                             ag_ones(4, (const int64_t[]){1, 1, 3, 3}), NULL, NULL);
    ck_assert_msg(c && ag_dim(c, 0) == 0 && ag_dim(c, 2) == 2, "%s", ag_last_error());
    ck_assert_int_eq(ag_last_status(), AG_OK);
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, "empty", ag_max(z, 1, (const int[]){0}, false));
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, "empty", ag_argmax(z, 0, false));
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, NULL, ag_reshape(z, 2, (const int64_t[]){-1, 0}));
    ag_scope_end();
}
END_TEST

/* Sizes whose products overflow int64 are refused before anything is
 * allocated or read (the sanitizer build catches the overflow itself). */
START_TEST(huge_shapes)
{
    ag_scope_begin();
    const int64_t big = (int64_t)1 << 40;
    const float one = 1.0f;
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, "too large", ag_from_f32(&one, 1, (const int64_t[]){(int64_t)1 << 62}));
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, NULL, ag_from_f32(&one, 2, (const int64_t[]){(int64_t)1 << 31, (int64_t)1 << 31}));
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, NULL, ag_zeros(3, (const int64_t[]){1 << 30, 1 << 30, 1 << 30}));
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, NULL, ag_empty(2, (const int64_t[]){INT64_MAX, 2}, AG_F32));
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, NULL, ag_ones(2, (const int64_t[]){0, (int64_t)1 << 62}));
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, NULL, ag_rand(2, (const int64_t[]){big, big}, 0.0f, 1.0f));
    EXPECT_PTR_FAIL(AG_ERR_ARG, NULL, ag_arange(big));

    ag_tensor *x = ag_arange(16), *e = ag_zeros(1, (const int64_t[]){0});
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, NULL, ag_reshape(x, 2, (const int64_t[]){(int64_t)1 << 62, -1}));
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, NULL, ag_reshape(e, 3, (const int64_t[]){big, big, 0}));
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, NULL, ag_expand(vec(1, 1.0f), 2, (const int64_t[]){big, big}));

    /* matmul: an output of 2^80 elements; an empty product with a huge inner
     * size (inputs too large to copy are test_errors.c's test_alloc_too_large) */
    ag_tensor *one11 = mat(1, 1, 1.0f);
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, NULL, ag_matmul(ag_expand(one11, 2, (const int64_t[]){big, 1}),
                                                  ag_expand(one11, 2, (const int64_t[]){1, big})));
    ag_clear_error();
    ag_tensor *k0 = ag_matmul(ag_expand(ag_zeros(2, (const int64_t[]){0, 1}), 2, (const int64_t[]){0, big}),
                              ag_expand(ag_zeros(2, (const int64_t[]){1, 0}), 2, (const int64_t[]){big, 0}));
    ck_assert_msg(k0 && ag_numel(k0) == 0, "%s", ag_last_error());

    /* conv2d: a dilated kernel extent beyond int64, padding beyond the output size */
    ag_tensor *img = ag_ones(4, (const int64_t[]){1, 1, 4, 4});
    ag_tensor *wbig = ag_expand(ag_ones(4, (const int64_t[]){1, 1, 1, 1}), 4, (const int64_t[]){1, 1, big, 1});
    ag_conv2d_params p = {{1, 1}, {0, 0}, {1 << 30, 1}, 1};
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, NULL, ag_conv2d(img, wbig, NULL, &p));
    ag_conv2d_params pad = {{1, 1}, {INT_MAX, INT_MAX}, {1, 1}, 1};
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, NULL, ag_conv2d(img, ag_ones(4, (const int64_t[]){1, 1, 1, 1}), NULL, &pad));
    ag_pool2d_params pool = {{INT_MAX, INT_MAX}, {1, 1}, {0, 0}};
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, NULL, ag_max_pool2d(img, &pool));

    /* concat: the sizes of many huge (expanded) inputs add up past int64 */
    ag_tensor *parts[40];
    for (int k = 0; k < 40; k++) parts[k] = ag_expand(vec(1, 1.0f), 1, (const int64_t[]){(int64_t)1 << 58});
    EXPECT_PTR_FAIL(AG_ERR_SHAPE, "too large", ag_concat(40, parts, 0));
    ag_scope_end();
}
END_TEST

/* A step far beyond the axis picks one element; the stride must not
 * overflow, forward or backward. */
START_TEST(slice_huge_step_2d)
{
    ag_scope_begin();
    ag_tensor *x = leaf(ag_reshape(ag_arange(12), 2, (const int64_t[]){3, 4}));
    ag_tensor *s = ag_slice(x, 0, 1, 3, INT64_MAX);
    ck_assert_msg(s && ag_dim(s, 0) == 1, "%s", ag_last_error());
    values(s, (const float[]){4, 5, 6, 7}, 4);
    /* x is a reshape of a leaf: take the gradient on a fresh leaf */
    ag_tensor *l = leaf(ag_zeros(2, (const int64_t[]){3, 4}));
    ck_assert_int_eq(ag_backward(ag_sum_all(ag_slice(l, 0, -2, INT64_MAX, INT64_MAX)), NULL), AG_OK);
    values(ag_grad(l), (const float[]){0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0}, 12);
    s = ag_slice(x, 1, INT64_MIN, INT64_MAX, 1);
    ck_assert_int_eq(ag_dim(s, 1), 4);
    ag_scope_end();
}
END_TEST

Suite *suite_misuse(void)
{
    Suite *s = suite_create("misuse");
    TCase *tc = h_tcase_create("misuse");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, null_handles);
    tcase_add_test(tc, released_handles);
    tcase_add_test(tc, table_covers_header);
    tcase_add_test(tc, use_after_release);
    tcase_add_test(tc, release_once_too_often);
    tcase_add_test(tc, scope_owned_tensor_released);
    tcase_add_test(tc, optimizer_parameter_released);
    tcase_add_test(tc, graph_input_released);
    tcase_add_test(tc, quarantine_window);
    tcase_add_test(tc, threads_and_slots);
    tcase_add_test(tc, big_tensors_two_threads);
    tcase_add_test(tc, inplace_input_of_mul);
    tcase_add_test(tc, inplace_init_and_linear);
    tcase_add_test(tc, inplace_checks_only_what_backward_reads);
    tcase_add_test(tc, inplace_saved_output);
    tcase_add_test(tc, inplace_through_views);
    tcase_add_test(tc, inplace_refilled_input_of_matmul);
    tcase_add_test(tc, inplace_optimizer_step);
    tcase_add_test(tc, inplace_clip_grad_norm);
    tcase_add_test(tc, inplace_batch_norm_running_stats);
    tcase_add_test(tc, inplace_labels_of_cross_entropy);
    tcase_add_test(tc, backward_twice);
    tcase_add_test(tc, devices_mixed_in_ops);
    tcase_add_test(tc, indices_out_of_range);
    tcase_add_test(tc, zero_size_tensors);
    tcase_add_test(tc, huge_shapes);
    tcase_add_test(tc, slice_huge_step_2d);
    suite_add_tcase(s, tc);
    return s;
}
