/* Regression tests for bugs found in review; each failed before its fix. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anygrad.h"
#include "suites.h"

static void setup(void) { ag_clear_error(); }

/* A second backward that reaches an intermediate freed by the first must
 * fail cleanly, not crash or drop gradients. */
START_TEST(backward_through_freed_intermediate)
{
    ag_scope_begin();
    int64_t n = 3, s2[2] = {3, 1};
    ag_tensor *x = ag_ones(1, &n);
    ag_set_requires_grad(x, true);
    ag_tensor *h = ag_reshape(x, 2, s2);
    ck_assert_int_eq(ag_backward(ag_sum_all(h), NULL), AG_OK);
    ag_status s = ag_backward(ag_sum_all(ag_mul_scalar(h, 3.0f)), NULL);
    ck_assert_int_eq(s, AG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "freed"));
    ag_scope_end();
}
END_TEST

START_TEST(reshape_and_expand_overflow)
{
    ag_scope_begin();
    ag_tensor *x = ag_arange(16);
    int64_t big[2] = {((int64_t)1 << 60) + 1, 16};
    ck_assert_ptr_null(ag_reshape(x, 2, big));
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    int64_t one = 1, huge[2] = {(int64_t)1 << 61, 8};
    ck_assert_ptr_null(ag_expand(ag_ones(1, &one), 2, huge));
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    ag_scope_end();
}
END_TEST

START_TEST(slice_with_huge_step)
{
    ag_scope_begin();
    ag_tensor *y = ag_slice(ag_arange(10), 0, 3, 10, INT64_MAX);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(ag_numel(y), 1);
    float v;
    ck_assert_int_eq(ag_item(y, &v), AG_OK);
    ck_assert_float_eq(v, 3.0f);
    ag_scope_end();
}
END_TEST

START_TEST(var_correction_beyond_count)
{
    ag_scope_begin();
    const float d[2] = {1, 2};
    int64_t n = 2;
    float v;
    ck_assert_int_eq(ag_item(ag_var(ag_from_f32(d, 1, &n), 0, NULL, 3, false), &v), AG_OK);
    ck_assert(isinf(v) && v > 0);
    ag_scope_end();
}
END_TEST

START_TEST(empty_tensor_is_contiguous)
{
    int64_t s[3] = {2, 0, 3};
    ag_tensor *t = ag_zeros(3, s);
    ck_assert(ag_is_contiguous(t));
    ag_release(t);
}
END_TEST

START_TEST(scope_return_without_scope)
{
    int64_t n = 2;
    ag_tensor *t = ag_ones(1, &n);
    ck_assert_ptr_eq(ag_scope_return(t), t);
    ag_release(t); /* the only reference: LeakSanitizer checks nothing is left */
}
END_TEST

/* Adam's bias correction and SGD's first momentum use the parameter's own
 * update count, as PyTorch's per-parameter state['step'] does. */
START_TEST(late_parameter_gets_its_own_step_count)
{
    int64_t one = 1;
    ag_tensor *a = ag_ones(1, &one), *b = ag_ones(1, &one);
    ag_set_requires_grad(a, true);
    ag_set_requires_grad(b, true);
    ag_tensor *ps[2] = {a, b};
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_ADAM, 0.1f);
    ag_optim *opt = ag_optim_new(&cfg, 2, ps);
    ck_assert_ptr_nonnull(opt);
    for (int step = 0; step < 2; step++) {
        ag_scope_begin();
        ag_optim_zero_grad(opt);
        ag_tensor *loss = step == 0 ? ag_sum_all(a) : ag_sum_all(ag_add(a, b));
        ck_assert_int_eq(ag_backward(loss, NULL), AG_OK);
        ck_assert_int_eq(ag_optim_step(opt), AG_OK);
        ag_scope_end();
    }
    float bv;
    ck_assert_int_eq(ag_item(b, &bv), AG_OK);
    ck_assert_float_eq_tol(bv, 0.9f, 1e-6f); /* first Adam step moves by exactly lr */
    ck_assert_int_eq(ag_optim_steps(opt), 2);
    ag_optim_free(opt);
    ag_release(a);
    ag_release(b);
}
END_TEST

/* Accuracy counting, used by the examples and the CLI. */
START_TEST(count_correct_counts_argmax_hits)
{
    ag_scope_begin();
    const float lg[6] = {0.1f, 0.9f, 0.0f, 2.0f, -1.0f, 1.0f};
    const int32_t lb[3] = {1, 1, 0}; /* argmax rows: 1, 1, 1 */
    int64_t s2[2] = {3, 2}, n = 3, correct = -1;
    ck_assert_int_eq(ag_count_correct(ag_from_f32(lg, 2, s2), ag_from_i32(lb, 1, &n), &correct),
                     AG_OK);
    ck_assert_int_eq(correct, 2);
    ck_assert_int_eq(ag_count_correct(ag_from_f32(lg, 1, (int64_t[]){6}), ag_from_i32(lb, 1, &n),
                                      &correct),
                     AG_ERR_SHAPE);
    ag_scope_end();
}
END_TEST

/* A NUL byte inside a CSV field is not silently cut off. */
START_TEST(csv_rejects_embedded_nul)
{
    char path[] = "/tmp/ag-regress-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char data[] = "1\0x,2\n";
    ck_assert_int_eq(write(fd, data, sizeof data - 1), (ssize_t)(sizeof data - 1));
    close(fd);
    ag_tensor *t = ag_csv_load(path, false);
    unlink(path);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(ag_last_status(), AG_ERR_IO);
}
END_TEST

/* Threads share a read-only weight; the reference counts must be atomic
 * (the sanitizer run reports use-after-free otherwise). */
static ag_tensor *shared_w;

static void *infer(void *arg)
{
    (void)arg;
    int64_t xs[2] = {4, 8};
    for (int i = 0; i < 200; i++) {
        ag_scope_begin();
        ag_tensor *y = ag_matmul(ag_ones(2, xs), ag_transpose(shared_w, 0, 1));
        float v = 0;
        if (!y || ag_item(ag_sum_all(y), &v) != AG_OK || v != 4 * 8 * 8) {
            ag_scope_end();
            return (void *)1;
        }
        ag_scope_end();
    }
    return NULL;
}

START_TEST(threads_share_a_tensor)
{
    int64_t ws[2] = {8, 8};
    shared_w = ag_ones(2, ws);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, infer, NULL);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        ck_assert_ptr_null(r);
    }
    ag_release(shared_w);
}
END_TEST

Suite *suite_regress(void)
{
    Suite *s = suite_create("regress");
    TCase *tc = h_tcase_create("review");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, backward_through_freed_intermediate);
    tcase_add_test(tc, reshape_and_expand_overflow);
    tcase_add_test(tc, slice_with_huge_step);
    tcase_add_test(tc, var_correction_beyond_count);
    tcase_add_test(tc, empty_tensor_is_contiguous);
    tcase_add_test(tc, scope_return_without_scope);
    tcase_add_test(tc, late_parameter_gets_its_own_step_count);
    tcase_add_test(tc, threads_share_a_tensor);
    tcase_add_test(tc, count_correct_counts_argmax_hits);
    tcase_add_test(tc, csv_rejects_embedded_nul);
    suite_add_tcase(s, tc);
    return s;
}
