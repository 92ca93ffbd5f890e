/* Bad input gives the documented error and never crashes: NULL inputs, the first
 * error surviving nested calls, shape and dtype mismatches with messages that
 * name the shapes, bad axes and sizes, host copies of the wrong size, devices,
 * and the error API itself.
 * out-of-memory on the device under test, and tensors on different devices. */
#include <string.h>

#include "anygrad.h"
#include "suites.h"

static void clear_error(void) { ag_clear_error(); }

/* expr must return NULL with status st. The error is cleared first, so a NULL
 * input has no earlier error to preserve and must report AG_ERR_ARG itself. */
#define EXPECT_FAIL(st, expr)                                                              \
    do {                                                                                   \
        ag_clear_error();                                                                  \
        ag_tensor *r_ = (expr);                                                            \
        ck_assert_msg(r_ == NULL, "%s should fail", #expr);                                \
        ck_assert_msg(ag_last_status() == (st), "%s: status '%s' (%s), want '%s'", #expr,  \
                      ag_status_name(ag_last_status()), ag_last_error(),                   \
                      ag_status_name(st));                                                 \
        ck_assert_str_ne(ag_last_error(), "no error");                                     \
        ck_assert_uint_gt(strlen(ag_last_error()), 0);                                     \
    } while (0)

/* Same for functions that return a status. */
#define EXPECT_STATUS(st, expr)                                                            \
    do {                                                                                   \
        ag_clear_error();                                                                  \
        ag_status s_ = (expr);                                                             \
        ck_assert_msg(s_ == (st), "%s: returned '%s', want '%s' (%s)", #expr,              \
                      ag_status_name(s_), ag_status_name(st), ag_last_error());            \
        ck_assert_msg(ag_last_status() == (st), "%s: last status '%s'", #expr,             \
                      ag_status_name(ag_last_status()));                                   \
    } while (0)

/* Fails with AG_ERR_SHAPE or AG_ERR_ARG: both describe the mistake and the
 * header does not pick one. */
#define EXPECT_FAIL_SHAPE_OR_ARG(expr)                                                     \
    do {                                                                                   \
        ag_clear_error();                                                                  \
        ag_tensor *r_ = (expr);                                                            \
        ck_assert_msg(r_ == NULL, "%s should fail", #expr);                                \
        ck_assert_msg(ag_last_status() == AG_ERR_SHAPE || ag_last_status() == AG_ERR_ARG,  \
                      "%s: status '%s' (%s)", #expr, ag_status_name(ag_last_status()),     \
                      ag_last_error());                                                    \
    } while (0)

/* The last error message contains every one of the given strings. */
static void expect_msg(const char *a, const char *b)
{
    const char *msg = ag_last_error();
    ck_assert_msg(strstr(msg, a), "message '%s' lacks '%s'", msg, a);
    if (b) ck_assert_msg(strstr(msg, b), "message '%s' lacks '%s'", msg, b);
}

static ag_tensor *zeros2(int64_t r, int64_t c) { return ag_zeros(2, (const int64_t[]){r, c}); }

static ag_tensor *labels_i32(int64_t n)
{
    int32_t v[8] = {0};
    return ag_from_i32(v, 1, &n);
}

/* ---- NULL inputs ------------------------------------------------------------ */

/* A tensor far larger than any device's memory (1 TiB) fails cleanly, and the
 * device keeps working afterwards. */
START_TEST(test_alloc_too_large)
{
    const int64_t huge[2] = {1 << 20, 1 << 18};
    ag_clear_error();
    ag_tensor *t = ag_empty(2, huge, AG_F32);
    ck_assert_msg(t == NULL, "a 1 TiB tensor on %s was allocated", ag_device_name(ag_device_default()));
    ck_assert_msg(ag_last_status() == AG_ERR_OOM || ag_last_status() == AG_ERR_UNSUPPORTED,
                  "status %s (%s)", ag_status_name(ag_last_status()), ag_last_error());
    const int64_t n = 5;
    ag_tensor *x = ag_full(1, &n, 2.5f);
    ag_tensor *y = ag_add_scalar(x, 1.0f);
    float v[5] = {0};
    ck_assert_msg(y && ag_to_host(y, v, sizeof v) == AG_OK, "after the failed allocation: %s", ag_last_error());
    for (int i = 0; i < 5; i++) ck_assert_float_eq(v[i], 3.5f);
    ag_release(y);
    ag_release(x);
}
END_TEST

/* Calibration measures every device, inside a scope or not, and reports it. */
START_TEST(test_calibrate)
{
    for (int i = 0; i < ag_device_count(); i++) {
        ag_device *d = ag_device_get(i);
        ag_scope_begin();
        ck_assert_msg(ag_device_calibrate(d, true) == AG_OK, "%s: %s", ag_device_name(d), ag_last_error());
        ag_scope_end();
        ag_device_props p;
        ck_assert_int_eq(ag_device_info(d, &p), AG_OK);
        ck_assert_msg(p.gflops > 0 && p.gbps > 0, "%s: %g GFLOP/s %g GB/s", p.name, p.gflops, p.gbps);
        ck_assert_int_eq(ag_device_calibrate(d, false), AG_OK); /* cached */
    }
    ck_assert_int_eq(ag_device_calibrate(NULL, false), AG_ERR_ARG);
}
END_TEST

/* Ops refuse tensors on two devices; ag_to_device moves values between every
 * pair of devices the machine has (a single-device machine checks only itself). */
START_TEST(test_devices_mixed)
{
    const float data[6] = {1.5f, -2.0f, 0.25f, 1e-3f, -7.0f, 3.0f};
    const int64_t shape[2] = {2, 3};
    int n = ag_device_count();
    ck_assert_int_ge(n, 1);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            ag_device *a = ag_device_get(i), *b = ag_device_get(j);
            ag_set_default_device(a);
            ag_tensor *x = ag_from_f32(data, 2, shape);
            ag_tensor *y = ag_to_device(x, b);
            ck_assert_msg(y && ag_device_of(y) == b, "to_device %d -> %d: %s", i, j, ag_last_error());
            float back[6];
            ck_assert_int_eq(ag_to_host(y, back, sizeof back), AG_OK);
            for (int k = 0; k < 6; k++) ck_assert_float_eq(back[k], data[k]);
            if (i != j) {
                ag_clear_error();
                ag_tensor *z = ag_add(x, y);
                ck_assert_msg(z == NULL && ag_last_status() == AG_ERR_DEVICE,
                              "add across devices %d and %d: %s", i, j, ag_last_error());
            }
            ag_release(y);
            ag_release(x);
        }
    }
    ag_set_default_device(NULL);
    /* a pointer that is not a device is refused, not stored */
    int not_a_device = 0;
    ag_device *before = ag_device_default();
    ck_assert_int_eq(ag_set_default_device((ag_device *)&not_a_device), AG_ERR_ARG);
    ck_assert_ptr_eq(ag_device_default(), before);
}
END_TEST

START_TEST(test_null_unary_binary)
{
    ag_scope_begin();
    ag_tensor *a = zeros2(2, 3);
    EXPECT_FAIL(AG_ERR_ARG, ag_exp(NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_neg(NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_relu(NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_sigmoid(NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_unary(AG_UNARY_TANH, NULL, 0, 0));
    EXPECT_FAIL(AG_ERR_ARG, ag_clamp(NULL, 0, 1));
    EXPECT_FAIL(AG_ERR_ARG, ag_pow(NULL, 2));
    EXPECT_FAIL(AG_ERR_ARG, ag_add_scalar(NULL, 1));
    EXPECT_FAIL(AG_ERR_ARG, ag_div_scalar(NULL, 2));
    EXPECT_FAIL(AG_ERR_ARG, ag_div_scalar(NULL, 0));
    EXPECT_FAIL(AG_ERR_ARG, ag_add(NULL, a));
    EXPECT_FAIL(AG_ERR_ARG, ag_add(a, NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_mul(NULL, NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_binary(AG_BINARY_SUB, a, NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_lt(NULL, a));
    EXPECT_FAIL(AG_ERR_ARG, ag_where(NULL, a, a));
    EXPECT_FAIL(AG_ERR_ARG, ag_where(a, a, NULL));
    ag_scope_end();
}
END_TEST

START_TEST(test_null_other_ops)
{
    ag_scope_begin();
    ag_tensor *a = zeros2(2, 3), *w = zeros2(4, 3), *lab = labels_i32(2);
    const int axes[1] = {0};
    EXPECT_FAIL(AG_ERR_ARG, ag_sum_all(NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_mean_all(NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_sum(NULL, 1, axes, false));
    EXPECT_FAIL(AG_ERR_ARG, ag_max(NULL, 0, NULL, false));
    EXPECT_FAIL(AG_ERR_ARG, ag_var(NULL, 0, NULL, 1, false));
    EXPECT_FAIL(AG_ERR_ARG, ag_argmax(NULL, 0, false));
    EXPECT_FAIL(AG_ERR_ARG, ag_matmul(NULL, a));
    EXPECT_FAIL(AG_ERR_ARG, ag_matmul(a, NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_linear(NULL, w, NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_linear(a, NULL, NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_softmax(NULL, 0));
    EXPECT_FAIL(AG_ERR_ARG, ag_log_softmax(NULL, -1));
    EXPECT_FAIL(AG_ERR_ARG, ag_mse_loss(NULL, a, AG_REDUCTION_MEAN));
    EXPECT_FAIL(AG_ERR_ARG, ag_mse_loss(a, NULL, AG_REDUCTION_MEAN));
    EXPECT_FAIL(AG_ERR_ARG, ag_cross_entropy(NULL, lab, AG_REDUCTION_MEAN, 0));
    EXPECT_FAIL(AG_ERR_ARG, ag_cross_entropy(a, NULL, AG_REDUCTION_MEAN, 0));
    EXPECT_FAIL(AG_ERR_ARG, ag_nll_loss(NULL, lab, AG_REDUCTION_SUM));
    EXPECT_FAIL(AG_ERR_ARG, ag_bce_with_logits(a, NULL, AG_REDUCTION_NONE));
    EXPECT_FAIL(AG_ERR_ARG, ag_conv2d(NULL, w, NULL, NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_layer_norm(NULL, 1, NULL, NULL, 1e-5f));
    EXPECT_FAIL(AG_ERR_ARG, ag_dropout(NULL, 0.5f, true));
    EXPECT_FAIL(AG_ERR_ARG, ag_embedding(NULL, w));
    EXPECT_FAIL(AG_ERR_ARG, ag_embedding(lab, NULL));
    ag_tensor *pair[2] = {a, NULL};
    EXPECT_FAIL(AG_ERR_ARG, ag_concat(2, pair, 0));
    EXPECT_FAIL(AG_ERR_ARG, ag_stack(2, pair, 0));
    ag_scope_end();
}
END_TEST

START_TEST(test_null_views_and_creation)
{
    ag_scope_begin();
    const int64_t s2[2] = {3, 2};
    const int perm[2] = {1, 0};
    EXPECT_FAIL(AG_ERR_ARG, ag_reshape(NULL, 2, s2));
    EXPECT_FAIL(AG_ERR_ARG, ag_permute(NULL, perm));
    EXPECT_FAIL(AG_ERR_ARG, ag_transpose(NULL, 0, 1));
    EXPECT_FAIL(AG_ERR_ARG, ag_slice(NULL, 0, 0, 1, 1));
    EXPECT_FAIL(AG_ERR_ARG, ag_expand(NULL, 2, s2));
    EXPECT_FAIL(AG_ERR_ARG, ag_squeeze(NULL, 0));
    EXPECT_FAIL(AG_ERR_ARG, ag_unsqueeze(NULL, 0));
    EXPECT_FAIL(AG_ERR_ARG, ag_flatten(NULL, 0, -1));
    EXPECT_FAIL(AG_ERR_ARG, ag_contiguous(NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_detach(NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_clone(NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_zeros_like(NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_ones_like(NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_from_f32(NULL, 2, s2));
    EXPECT_FAIL(AG_ERR_ARG, ag_from_i32(NULL, 2, s2));
    EXPECT_FAIL(AG_ERR_ARG, ag_to_dtype(NULL, AG_I32));
    EXPECT_FAIL(AG_ERR_ARG, ag_to_device(NULL, ag_device_default()));
    /* A shape pointer is required when ndim > 0. */
    EXPECT_FAIL(AG_ERR_ARG, ag_zeros(2, NULL));
    ag_tensor *a = zeros2(2, 3);
    EXPECT_FAIL(AG_ERR_ARG, ag_to_device(a, NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_reshape(a, 2, NULL));
    EXPECT_FAIL(AG_ERR_ARG, ag_permute(a, NULL));
    ag_scope_end();
}
END_TEST

START_TEST(test_null_status_functions)
{
    ag_scope_begin();
    ag_tensor *a = zeros2(1, 1);
    float buf[1];
    EXPECT_STATUS(AG_ERR_ARG, ag_to_host(NULL, buf, sizeof buf));
    EXPECT_STATUS(AG_ERR_ARG, ag_to_host(a, NULL, sizeof buf));
    EXPECT_STATUS(AG_ERR_ARG, ag_from_host(NULL, buf, sizeof buf));
    EXPECT_STATUS(AG_ERR_ARG, ag_from_host(a, NULL, sizeof buf));
    EXPECT_STATUS(AG_ERR_ARG, ag_item(NULL, buf));
    EXPECT_STATUS(AG_ERR_ARG, ag_item(a, NULL));
    EXPECT_STATUS(AG_ERR_ARG, ag_backward(NULL, NULL));
    EXPECT_STATUS(AG_ERR_ARG, ag_set_requires_grad(NULL, true));
    EXPECT_STATUS(AG_ERR_ARG, ag_zero_grad(NULL));
    EXPECT_STATUS(AG_ERR_ARG, ag_device_sync(NULL));

    ag_clear_error();
    int64_t shape[AG_MAX_DIMS];
    ck_assert_int_eq(ag_shape(NULL, shape), -1);
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ag_clear_error();
    ck_assert_int_eq(ag_dim(NULL, 0), -1);
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    /* Harmless on NULL. */
    ag_release(NULL);
    ck_assert_ptr_null(ag_grad(NULL));
    ck_assert(!ag_requires_grad(NULL));
    char sbuf[32];
    ck_assert_ptr_eq(ag_shape_str(NULL, sbuf, sizeof sbuf), sbuf);
    ag_scope_end();
}
END_TEST

/* ---- the first error survives nested calls ------------------------------------ */

START_TEST(test_first_error_kept)
{
    ag_scope_begin();
    ag_tensor *a = zeros2(2, 3), *bad = zeros2(4, 5);
    ag_clear_error();
    ck_assert_ptr_null(ag_exp(ag_matmul(a, bad)));
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    expect_msg("matmul", NULL);
    expect_msg("[2, 3]", "[4, 5]");

    /* Several levels deep, and through binary ops on either side. */
    ag_clear_error();
    ck_assert_ptr_null(ag_sum_all(ag_relu(ag_add(a, ag_reshape(a, 2, (const int64_t[]){4, 5})))));
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    expect_msg("reshape", NULL);
    expect_msg("[2, 3]", "[4, 5]");

    /* The NULL may arrive as either operand. (Only one argument fails per call:
     * C leaves the order of evaluating arguments open.) */
    ag_clear_error();
    ck_assert_ptr_null(ag_mul(ag_softmax(a, 5), bad));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    expect_msg("softmax", NULL);
    ag_clear_error();
    ck_assert_ptr_null(ag_where(a, a, ag_log_softmax(a, -3)));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    expect_msg("softmax", NULL);

    /* A dtype error deep inside stays a dtype error. */
    ag_tensor *i = labels_i32(3);
    ag_clear_error();
    ck_assert_ptr_null(ag_mean_all(ag_mul_scalar(ag_exp(i), 2.0f)));
    ck_assert_int_eq(ag_last_status(), AG_ERR_DTYPE);

    /* backward of a failed expression reports the expression's error. */
    ag_clear_error();
    ck_assert_int_ne(ag_backward(ag_sum_all(ag_matmul(a, bad)), NULL), AG_OK);
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    expect_msg("matmul", NULL);
    ag_scope_end();
}
END_TEST

/* ---- shapes -------------------------------------------------------------------- */

START_TEST(test_binary_shape_mismatch)
{
    ag_scope_begin();
    ag_tensor *a = zeros2(2, 3), *b = zeros2(4, 5);
    for (int op = 0; op < AG_BINARY_COUNT; op++) {
        EXPECT_FAIL(AG_ERR_SHAPE, ag_binary((ag_binary_op)op, a, b));
        expect_msg("[2, 3]", "[4, 5]");
    }
    EXPECT_FAIL(AG_ERR_SHAPE, ag_sub(b, a));
    expect_msg("[2, 3]", "[4, 5]");

    /* Broadcasting aligns trailing axes: [2, 3] and [2] do not broadcast. */
    ag_tensor *v2 = ag_zeros(1, (const int64_t[]){2});
    EXPECT_FAIL(AG_ERR_SHAPE, ag_add(a, v2));
    expect_msg("[2, 3]", "[2]");
    ag_tensor *c = ag_zeros(3, (const int64_t[]){2, 1, 3});
    ag_tensor *d = ag_zeros(3, (const int64_t[]){3, 4, 3});
    EXPECT_FAIL(AG_ERR_SHAPE, ag_mul(c, d));
    expect_msg("[2, 1, 3]", "[3, 4, 3]");
    EXPECT_FAIL(AG_ERR_SHAPE, ag_where(a, b, b));
    EXPECT_FAIL(AG_ERR_SHAPE, ag_where(v2, a, a));

    /* The same shapes that do broadcast succeed. */
    ag_clear_error();
    ag_tensor *ok1 = ag_add(a, ag_zeros(1, (const int64_t[]){3}));
    ck_assert_ptr_nonnull(ok1);
    ag_tensor *ok2 = ag_add(ag_zeros(2, (const int64_t[]){3, 1}), ag_zeros(1, (const int64_t[]){4}));
    ck_assert_ptr_nonnull(ok2);
    ck_assert_int_eq(ag_dim(ok2, 0), 3);
    ck_assert_int_eq(ag_dim(ok2, 1), 4);
    ck_assert_int_eq(ag_last_status(), AG_OK);
    ag_scope_end();
}
END_TEST

START_TEST(test_matmul_mismatch)
{
    ag_scope_begin();
    ag_tensor *a = zeros2(2, 3), *b = zeros2(2, 3);
    EXPECT_FAIL(AG_ERR_SHAPE, ag_matmul(a, b));
    expect_msg("[2, 3]", "matmul");
    ag_tensor *c = zeros2(4, 5);
    EXPECT_FAIL(AG_ERR_SHAPE, ag_matmul(a, c));
    expect_msg("[2, 3]", "[4, 5]");
    /* 1-D operands. */
    EXPECT_FAIL(AG_ERR_SHAPE, ag_matmul(ag_zeros(1, (const int64_t[]){3}), ag_zeros(1, (const int64_t[]){4})));
    EXPECT_FAIL(AG_ERR_SHAPE, ag_matmul(a, ag_zeros(1, (const int64_t[]){2})));
    /* Batch dims that do not broadcast. */
    ag_tensor *x = ag_zeros(3, (const int64_t[]){2, 2, 3}), *y = ag_zeros(3, (const int64_t[]){3, 3, 4});
    EXPECT_FAIL(AG_ERR_SHAPE, ag_matmul(x, y));
    /* linear: weight [out, in] must match x's last axis; bias [out]. */
    EXPECT_FAIL(AG_ERR_SHAPE, ag_linear(a, c, NULL));
    ag_tensor *w = zeros2(4, 3);
    EXPECT_FAIL(AG_ERR_SHAPE, ag_linear(a, w, ag_zeros(1, (const int64_t[]){3})));
    EXPECT_FAIL(AG_ERR_SHAPE, ag_linear(a, ag_zeros(1, (const int64_t[]){3}), NULL));
    ag_clear_error();
    ck_assert_ptr_nonnull(ag_linear(a, w, ag_zeros(1, (const int64_t[]){4})));
    ag_scope_end();
}
END_TEST

START_TEST(test_reshape_expand_bad)
{
    ag_scope_begin();
    ag_tensor *a = zeros2(2, 3);
    EXPECT_FAIL(AG_ERR_SHAPE, ag_reshape(a, 2, (const int64_t[]){4, 5}));
    expect_msg("[2, 3]", "[4, 5]");
    EXPECT_FAIL(AG_ERR_SHAPE, ag_reshape(a, 1, (const int64_t[]){5}));
    EXPECT_FAIL(AG_ERR_SHAPE, ag_reshape(a, 2, (const int64_t[]){4, -1}));
    EXPECT_FAIL_SHAPE_OR_ARG(ag_reshape(a, 2, (const int64_t[]){-1, -1}));
    EXPECT_FAIL_SHAPE_OR_ARG(ag_reshape(a, 2, (const int64_t[]){-2, -3}));
    EXPECT_FAIL_SHAPE_OR_ARG(ag_reshape(a, 0, NULL));

    ag_tensor *c = zeros2(3, 2);
    EXPECT_FAIL(AG_ERR_SHAPE, ag_expand(c, 2, (const int64_t[]){3, 4}));
    expect_msg("[3, 2]", "[3, 4]");
    EXPECT_FAIL_SHAPE_OR_ARG(ag_expand(c, 1, (const int64_t[]){2}));
    EXPECT_FAIL_SHAPE_OR_ARG(ag_expand(c, 2, (const int64_t[]){-2, 2}));
    ag_scope_end();
}
END_TEST

START_TEST(test_bad_axes)
{
    ag_scope_begin();
    ag_tensor *a = zeros2(2, 3);
    EXPECT_FAIL(AG_ERR_ARG, ag_sum(a, 1, (const int[]){2}, false));
    EXPECT_FAIL(AG_ERR_ARG, ag_sum(a, 1, (const int[]){-3}, false));
    EXPECT_FAIL(AG_ERR_ARG, ag_sum(a, 2, (const int[]){0, 0}, false));
    EXPECT_FAIL(AG_ERR_ARG, ag_sum(a, 2, (const int[]){1, -1}, true));
    EXPECT_FAIL(AG_ERR_ARG, ag_mean(a, 2, (const int[]){0, -2}, false));
    EXPECT_FAIL(AG_ERR_ARG, ag_max(a, 1, (const int[]){5}, false));
    EXPECT_FAIL(AG_ERR_ARG, ag_min(a, 1, (const int[]){-5}, false));
    EXPECT_FAIL(AG_ERR_ARG, ag_var(a, 1, (const int[]){2}, 1, false));
    EXPECT_FAIL(AG_ERR_ARG, ag_argmax(a, 2, false));
    EXPECT_FAIL(AG_ERR_ARG, ag_argmin(a, -3, false));
    EXPECT_FAIL(AG_ERR_ARG, ag_softmax(a, 2));
    EXPECT_FAIL(AG_ERR_ARG, ag_log_softmax(a, -3));
    EXPECT_FAIL(AG_ERR_ARG, ag_transpose(a, 0, 2));
    EXPECT_FAIL(AG_ERR_ARG, ag_permute(a, (const int[]){0, 0}));
    EXPECT_FAIL(AG_ERR_ARG, ag_permute(a, (const int[]){0, 2}));
    EXPECT_FAIL(AG_ERR_ARG, ag_permute(a, (const int[]){1, -1}));
    EXPECT_FAIL(AG_ERR_ARG, ag_slice(a, 2, 0, 1, 1));
    EXPECT_FAIL(AG_ERR_ARG, ag_slice(a, 0, 0, 1, 0));
    EXPECT_FAIL(AG_ERR_ARG, ag_slice(a, 0, 0, 1, -1));
    EXPECT_FAIL(AG_ERR_ARG, ag_squeeze(a, 2));
    EXPECT_FAIL(AG_ERR_ARG, ag_unsqueeze(a, 3));
    EXPECT_FAIL(AG_ERR_ARG, ag_unsqueeze(a, -4));
    EXPECT_FAIL(AG_ERR_ARG, ag_flatten(a, 1, 0));
    EXPECT_FAIL(AG_ERR_ARG, ag_flatten(a, 0, 2));
    ag_tensor *pair[2] = {a, a};
    EXPECT_FAIL(AG_ERR_ARG, ag_concat(2, pair, 2));
    EXPECT_FAIL(AG_ERR_ARG, ag_stack(2, pair, 3));

    ag_clear_error();
    ck_assert_int_eq(ag_dim(a, 2), -1);
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);

    /* The valid extremes work. */
    ag_clear_error();
    ck_assert_ptr_nonnull(ag_sum(a, 2, (const int[]){-1, 0}, false));
    ck_assert_ptr_nonnull(ag_unsqueeze(a, 2));
    ck_assert_ptr_nonnull(ag_unsqueeze(a, -3));
    ck_assert_ptr_nonnull(ag_stack(2, pair, -3));
    ck_assert_int_eq(ag_last_status(), AG_OK);
    ag_scope_end();
}
END_TEST

START_TEST(test_other_shape_errors)
{
    ag_scope_begin();
    ag_tensor *a = zeros2(2, 3), *b = zeros2(2, 4);
    ag_tensor *pair[2] = {a, b};
    EXPECT_FAIL(AG_ERR_SHAPE, ag_concat(2, pair, 0));
    EXPECT_FAIL(AG_ERR_SHAPE, ag_stack(2, pair, 0));
    EXPECT_FAIL_SHAPE_OR_ARG(ag_concat(0, pair, 0));
    /* labels must be [N] for logits [N, C]. */
    EXPECT_FAIL(AG_ERR_SHAPE, ag_cross_entropy(a, labels_i32(3), AG_REDUCTION_MEAN, 0));
    /* conv2d: 4-D input whose channels match the weight. */
    ag_tensor *x = ag_zeros(4, (const int64_t[]){1, 3, 5, 5});
    ag_tensor *w = ag_zeros(4, (const int64_t[]){2, 4, 3, 3});
    EXPECT_FAIL(AG_ERR_SHAPE, ag_conv2d(x, w, NULL, NULL));
    EXPECT_FAIL(AG_ERR_SHAPE, ag_conv2d(a, w, NULL, NULL));
    ag_scope_end();
}
END_TEST

/* ---- dtypes ------------------------------------------------------------------ */

START_TEST(test_wrong_dtype)
{
    ag_scope_begin();
    ag_tensor *i = labels_i32(3), *f = ag_zeros(1, (const int64_t[]){3});
    EXPECT_FAIL(AG_ERR_DTYPE, ag_exp(i));
    EXPECT_FAIL(AG_ERR_DTYPE, ag_relu(i));
    EXPECT_FAIL(AG_ERR_DTYPE, ag_add(i, f));
    EXPECT_FAIL(AG_ERR_DTYPE, ag_mul(f, i));
    EXPECT_FAIL(AG_ERR_DTYPE, ag_matmul(ag_reshape(i, 2, (const int64_t[]){1, 3}),
                                        ag_reshape(f, 2, (const int64_t[]){3, 1})));
    EXPECT_FAIL(AG_ERR_DTYPE, ag_softmax(i, 0));

    ag_tensor *logits = zeros2(2, 3);
    ag_tensor *flab = ag_zeros(1, (const int64_t[]){2});
    EXPECT_FAIL(AG_ERR_DTYPE, ag_cross_entropy(logits, flab, AG_REDUCTION_MEAN, 0));
    EXPECT_FAIL(AG_ERR_DTYPE, ag_nll_loss(logits, flab, AG_REDUCTION_MEAN));
    EXPECT_FAIL(AG_ERR_DTYPE, ag_embedding(flab, logits));
    EXPECT_FAIL(AG_ERR_DTYPE, ag_gather(logits, 1, zeros2(2, 1)));

    /* Gradients exist for f32 tensors only. */
    EXPECT_STATUS(AG_ERR_DTYPE, ag_set_requires_grad(i, true));
    ck_assert(!ag_requires_grad(i));

    /* An upstream gradient of the right shape but the wrong dtype. */
    ag_tensor *x = ag_zeros(1, (const int64_t[]){3});
    ck_assert_int_eq(ag_set_requires_grad(x, true), AG_OK);
    ag_tensor *y = ag_mul_scalar(x, 2.0f);
    EXPECT_STATUS(AG_ERR_DTYPE, ag_backward(y, i));

    /* The right dtype passes. */
    ag_clear_error();
    ck_assert_ptr_nonnull(ag_cross_entropy(logits, labels_i32(2), AG_REDUCTION_MEAN, 0));
    ck_assert_int_eq(ag_last_status(), AG_OK);
    ag_scope_end();
}
END_TEST

/* ---- host copies --------------------------------------------------------------- */

START_TEST(test_host_copy_size)
{
    ag_scope_begin();
    ag_tensor *a = zeros2(2, 3);
    float buf[8];
    for (int k = 0; k < 8; k++) buf[k] = 42.0f;
    EXPECT_STATUS(AG_ERR_ARG, ag_to_host(a, buf, 5 * sizeof(float)));
    EXPECT_STATUS(AG_ERR_ARG, ag_to_host(a, buf, 7 * sizeof(float)));
    EXPECT_STATUS(AG_ERR_ARG, ag_to_host(a, buf, 6 * sizeof(float) - 1));
    for (int k = 0; k < 8; k++) ck_assert(buf[k] == 42.0f); /* nothing written */
    EXPECT_STATUS(AG_ERR_ARG, ag_from_host(a, buf, 5 * sizeof(float)));
    EXPECT_STATUS(AG_ERR_ARG, ag_from_host(a, buf, 8 * sizeof(float)));
    float back[6];
    ck_assert_int_eq(ag_to_host(a, back, sizeof back), AG_OK);
    for (int k = 0; k < 6; k++) ck_assert(back[k] == 0.0f); /* nothing read */

    /* A view's size is its own element count, not its storage's. */
    ag_tensor *col = ag_slice(a, 1, 0, 1, 1);
    EXPECT_STATUS(AG_ERR_ARG, ag_to_host(col, back, sizeof back));
    ag_clear_error();
    ck_assert_int_eq(ag_to_host(col, back, 2 * sizeof(float)), AG_OK);
    ag_scope_end();
}
END_TEST

START_TEST(test_item_errors)
{
    ag_scope_begin();
    float v = 5.0f;
    EXPECT_STATUS(AG_ERR_SHAPE, ag_item(ag_zeros(1, (const int64_t[]){2}), &v));
    ck_assert(v == 5.0f);
    EXPECT_STATUS(AG_ERR_SHAPE, ag_item(zeros2(2, 3), &v));
    EXPECT_STATUS(AG_ERR_SHAPE, ag_item(ag_zeros(1, (const int64_t[]){0}), &v));
    ck_assert(v == 5.0f);
    ag_clear_error();
    ck_assert_int_eq(ag_item(ag_full(3, (const int64_t[]){1, 1, 1}, 2.0f), &v), AG_OK);
    ck_assert(v == 2.0f);
    ag_scope_end();
}
END_TEST

/* ---- sizes ----------------------------------------------------------------------- */

START_TEST(test_bad_sizes)
{
    ag_scope_begin();
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    float data[1] = {0};
    EXPECT_FAIL(AG_ERR_ARG, ag_zeros(9, nine));
    EXPECT_FAIL(AG_ERR_ARG, ag_ones(9, nine));
    EXPECT_FAIL(AG_ERR_ARG, ag_full(9, nine, 1.0f));
    EXPECT_FAIL(AG_ERR_ARG, ag_empty(9, nine, AG_F32));
    EXPECT_FAIL(AG_ERR_ARG, ag_from_f32(data, 9, nine));
    EXPECT_FAIL(AG_ERR_ARG, ag_rand(9, nine, 0, 1));
    EXPECT_FAIL(AG_ERR_ARG, ag_zeros(-1, nine));
    ag_tensor *a = zeros2(1, 1);
    EXPECT_FAIL(AG_ERR_ARG, ag_reshape(a, 9, nine));
    EXPECT_FAIL(AG_ERR_ARG, ag_expand(a, 9, nine));
    ag_tensor *eight = ag_zeros(8, nine);
    ck_assert_ptr_nonnull(eight);
    EXPECT_FAIL_SHAPE_OR_ARG(ag_unsqueeze(eight, 0));

    const int64_t neg[2] = {2, -1};
    EXPECT_FAIL_SHAPE_OR_ARG(ag_zeros(2, neg));
    EXPECT_FAIL_SHAPE_OR_ARG(ag_ones(2, neg));
    EXPECT_FAIL_SHAPE_OR_ARG(ag_empty(2, neg, AG_I32));
    EXPECT_FAIL_SHAPE_OR_ARG(ag_from_f32(data, 2, neg));
    EXPECT_FAIL_SHAPE_OR_ARG(ag_randn(2, neg, 0, 1));
    EXPECT_FAIL(AG_ERR_ARG, ag_arange(-1));
    ag_scope_end();
}
END_TEST

START_TEST(test_bad_parameters)
{
    ag_scope_begin();
    ag_tensor *a = zeros2(2, 3);
    EXPECT_FAIL(AG_ERR_ARG, ag_clamp(a, 1.0f, -1.0f));
    ag_clear_error();
    ag_tensor *c = ag_clamp(ag_full(1, (const int64_t[]){2}, 5.0f), 1.0f, 1.0f);
    float v[2];
    ck_assert_int_eq(ag_to_host(c, v, sizeof v), AG_OK);
    ck_assert(v[0] == 1.0f && v[1] == 1.0f);

    const int64_t n = 4;
    EXPECT_FAIL(AG_ERR_ARG, ag_rand(1, &n, 1.0f, 0.0f));
    EXPECT_FAIL(AG_ERR_ARG, ag_randn(1, &n, 0.0f, -1.0f));
    EXPECT_FAIL(AG_ERR_ARG, ag_dropout(a, 1.5f, true));
    EXPECT_FAIL(AG_ERR_ARG, ag_dropout(a, -0.1f, true));
    EXPECT_FAIL(AG_ERR_ARG, ag_unary((ag_unary_op)AG_UNARY_COUNT, a, 0, 0));
    EXPECT_FAIL(AG_ERR_ARG, ag_binary((ag_binary_op)AG_BINARY_COUNT, a, a));
    ag_scope_end();
}
END_TEST

/* ---- devices ---------------------------------------------------------------------- */

START_TEST(test_devices)
{
    ag_clear_error();
    ag_device *d = ag_device_by_name("nonsense");
    ck_assert_ptr_null(d);
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    expect_msg("nonsense", "cpu"); /* names the request and lists what exists */

    ck_assert_int_ge(ag_device_count(), 1);
    ag_device *cpu = ag_device_by_name("cpu");
    ck_assert_ptr_nonnull(cpu);
    ck_assert_str_eq(ag_device_backend(cpu), "cpu");
    ck_assert_ptr_eq(ag_device_by_name("cpu:0"), cpu);
    /* blanks around a name are not part of it (" cpu" picked lavapipe, whose
     * name contains "(Vulkan, cpu (software))") */
    ck_assert_ptr_eq(ag_device_by_name(" cpu"), cpu);
    ck_assert_ptr_eq(ag_device_by_name("cpu \n"), cpu);
    /* a name part shared by several devices is an error, not the first of them */
    char part[4] = {0};
    memcpy(part, ag_device_name(cpu), 3);
    int sharing = 0;
    for (int i = 0; i < ag_device_count(); i++)
        sharing += strstr(ag_device_name(ag_device_get(i)), part) != NULL;
    ag_device *by_part = ag_device_by_name(part);
    if (sharing > 1) {
        ck_assert_ptr_null(by_part);
        ck_assert_msg(strstr(ag_last_error(), "devices' names"), "%s", ag_last_error());
    } else {
        ck_assert_ptr_eq(by_part, cpu);
    }

    ag_clear_error();
    ck_assert_ptr_null(ag_device_by_name("cpu:7"));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ag_clear_error();
    ck_assert_ptr_null(ag_device_by_name("cpu:x"));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ag_clear_error();
    ck_assert_ptr_null(ag_device_by_name(""));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ag_clear_error();
    ck_assert_ptr_null(ag_device_by_name(NULL));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ag_clear_error();
    ck_assert_ptr_null(ag_device_get(-1));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ag_clear_error();
    ck_assert_ptr_null(ag_device_get(ag_device_count()));
    ck_assert_int_eq(ag_last_status(), AG_ERR_ARG);
    ck_assert_ptr_nonnull(ag_device_get(0));
}
END_TEST

/* ---- the error API -------------------------------------------------------------- */

START_TEST(test_status_names)
{
    const char *names[AG_ERR_UNSUPPORTED + 1];
    for (int s = AG_OK; s <= AG_ERR_UNSUPPORTED; s++) {
        names[s] = ag_status_name((ag_status)s);
        ck_assert_ptr_nonnull(names[s]);
        ck_assert_uint_gt(strlen(names[s]), 0);
        for (int t = AG_OK; t < s; t++)
            ck_assert_msg(strcmp(names[s], names[t]) != 0, "status %d and %d share the name '%s'",
                          s, t, names[s]);
    }
    const char *unknown = ag_status_name((ag_status)1000);
    ck_assert_ptr_nonnull(unknown);
    ck_assert_ptr_nonnull(ag_status_name((ag_status)-1));
}
END_TEST

START_TEST(test_last_error)
{
    ag_clear_error();
    ck_assert_str_eq(ag_last_error(), "no error");
    ck_assert_int_eq(ag_last_status(), AG_OK);

    ag_scope_begin();
    ck_assert_ptr_null(ag_reshape(zeros2(2, 3), 1, (const int64_t[]){7}));
    ag_scope_end();
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    ck_assert_str_ne(ag_last_error(), "no error");
    ck_assert_uint_gt(strlen(ag_last_error()), 0);

    ag_clear_error();
    ck_assert_str_eq(ag_last_error(), "no error");
    ck_assert_int_eq(ag_last_status(), AG_OK);
}
END_TEST

/* Failing ops inside a scope leave nothing behind and never disturb the scope. */
START_TEST(test_errors_in_scopes)
{
    ag_tensor *keep = ag_ones(1, (const int64_t[]){2});
    for (int k = 0; k < 100; k++) {
        ag_scope_begin();
        ag_tensor *a = zeros2(2, 3);
        ck_assert_ptr_null(ag_add(ag_exp(a), ag_matmul(a, a)));
        ck_assert_ptr_null(ag_scope_return(ag_relu(NULL)));
    }
    float v[2];
    ck_assert_int_eq(ag_to_host(keep, v, sizeof v), AG_OK);
    ck_assert(v[0] == 1.0f && v[1] == 1.0f);
    ag_release(keep);
}
END_TEST

Suite *suite_errors(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = h_tcase_create("errors");
    tcase_add_checked_fixture(tc, clear_error, NULL);
    tcase_add_test(tc, test_alloc_too_large);
    tcase_add_test(tc, test_devices_mixed);
    tcase_add_test(tc, test_calibrate);
    tcase_add_test(tc, test_null_unary_binary);
    tcase_add_test(tc, test_null_other_ops);
    tcase_add_test(tc, test_null_views_and_creation);
    tcase_add_test(tc, test_null_status_functions);
    tcase_add_test(tc, test_first_error_kept);
    tcase_add_test(tc, test_binary_shape_mismatch);
    tcase_add_test(tc, test_matmul_mismatch);
    tcase_add_test(tc, test_reshape_expand_bad);
    tcase_add_test(tc, test_bad_axes);
    tcase_add_test(tc, test_other_shape_errors);
    tcase_add_test(tc, test_wrong_dtype);
    tcase_add_test(tc, test_host_copy_size);
    tcase_add_test(tc, test_item_errors);
    tcase_add_test(tc, test_bad_sizes);
    tcase_add_test(tc, test_bad_parameters);
    tcase_add_test(tc, test_devices);
    tcase_add_test(tc, test_status_names);
    tcase_add_test(tc, test_last_error);
    tcase_add_test(tc, test_errors_in_scopes);
    suite_add_tcase(s, tc);
    return s;
}
