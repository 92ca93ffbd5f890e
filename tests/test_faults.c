/* Fault injection: every device allocation, upload and kernel launch of a
 * training step is made to fail in turn (ag_debug_fault). Each failure must
 * come back as an error that says it was injected, leave no device buffer
 * behind, and leave the model trainable: the next step succeeds. Builds are
 * exercised by tests/faults.sh in fresh processes (they happen once each). */
#include <math.h>
#include <string.h>

#include "anygrad.h"
#include "suites.h"

typedef struct net {
    ag_module *m;
    ag_optim *opt;
} net;

static net net_new(void)
{
    ag_manual_seed(3);
    ag_module *layers[] = {ag_linear_new(8, 16, true), ag_relu_new(), ag_linear_new(16, 4, true)};
    net n = {ag_sequential_new(3, layers), NULL};
    ck_assert_msg(n.m != NULL, "%s", ag_last_error());
    int np;
    ag_tensor *const *p = ag_module_parameters(n.m, &np);
    ag_optim_config c = ag_optim_defaults(AG_OPTIM_ADAM, 0.01f);
    n.opt = ag_optim_new(&c, np, p);
    ck_assert_msg(n.opt != NULL, "%s", ag_last_error());
    return n;
}

static void net_free(net *n)
{
    ag_optim_free(n->opt);
    ag_module_free(n->m);
}

/* One step as a training loop does it: a batch uploaded from the host, forward,
 * loss, backward, optimizer step, the loss read back. */
static ag_status step(net *n, float *loss_out)
{
    float xs[32 * 8];
    int32_t ys[32];
    for (int i = 0; i < 32 * 8; i++) xs[i] = sinf(0.37f * (float)i);
    for (int i = 0; i < 32; i++) ys[i] = i % 4;
    const int64_t xshape[2] = {32, 8}, yshape[1] = {32};
    ag_scope_begin();
    ag_tensor *x = ag_from_f32(xs, 2, xshape), *y = ag_from_i32(ys, 1, yshape);
    ag_tensor *loss = ag_cross_entropy(ag_module_forward(n->m, x), y, AG_REDUCTION_MEAN, 0.0f);
    ag_status s = loss ? ag_optim_zero_grad(n->opt) : ag_last_status();
    if (s == AG_OK) s = ag_backward(loss, NULL);
    if (s == AG_OK) s = ag_optim_step(n->opt);
    float v = NAN;
    if (s == AG_OK) s = ag_item(loss, &v);
    ag_scope_end();
    if (loss_out) *loss_out = v;
    return s == AG_OK ? AG_OK : (ag_last_status() ? ag_last_status() : s);
}

static void walk(ag_fault_point point)
{
    net n = net_new();
    ck_assert_int_eq(step(&n, NULL), AG_OK); /* optimizer state exists from here on */
    ck_assert_int_eq(ag_debug_fault(point, 0), AG_OK);
    ck_assert_int_eq(step(&n, NULL), AG_OK);
    int64_t events = ag_debug_fault_events(point);
    ck_assert_msg(events > 0, "a training step has no %s events", point == AG_FAULT_ALLOC ? "alloc" : "such");
    const int64_t live = ag_debug_live_buffers();
    for (int64_t k = 1; k <= events; k++) {
        ck_assert_int_eq(ag_debug_fault(point, k), AG_OK);
        ag_clear_error();
        ag_status s = step(&n, NULL);
        ck_assert_msg(s != AG_OK, "fault %lld of %lld did not fail the step", (long long)k, (long long)events);
        ck_assert_msg(strstr(ag_last_error(), "injected fault") != NULL,
                      "fault %lld: the error does not say so: %s", (long long)k, ag_last_error());
        ck_assert_int_eq(ag_debug_fault(point, 0), AG_OK);
        /* fewer is fine: zero_grad may have dropped the gradients before the failure */
        ck_assert_msg(ag_debug_live_buffers() <= live, "fault %lld: %lld buffers leaked", (long long)k,
                      (long long)(ag_debug_live_buffers() - live));
        float loss;
        s = step(&n, &loss);
        ck_assert_msg(s == AG_OK && isfinite(loss), "after fault %lld the next step failed: %s",
                      (long long)k, ag_last_error());
        ck_assert_msg(ag_debug_live_buffers() == live, "after fault %lld: %lld buffers more than before",
                      (long long)k, (long long)(ag_debug_live_buffers() - live));
    }
    net_free(&n);
}

START_TEST(t_fault_alloc) { walk(AG_FAULT_ALLOC); }
END_TEST

START_TEST(t_fault_upload) { walk(AG_FAULT_UPLOAD); }
END_TEST

START_TEST(t_fault_launch) { walk(AG_FAULT_LAUNCH); }
END_TEST

START_TEST(t_fault_args)
{
    ck_assert_int_eq(ag_debug_fault(AG_FAULT_COUNT, 1), AG_ERR_ARG);
    ck_assert_int_eq(ag_debug_fault(AG_FAULT_ALLOC, -1), AG_ERR_ARG);
    ck_assert_int_eq(ag_debug_fault_events(AG_FAULT_COUNT), -1);
}
END_TEST

Suite *suite_faults(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = h_tcase_create("faults");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, t_fault_alloc);
    tcase_add_test(tc, t_fault_upload);
    tcase_add_test(tc, t_fault_launch);
    tcase_add_test(tc, t_fault_args);
    suite_add_tcase(s, tc);
    return s;
}
