/* Guide, section 3: autograd. Gradients against their known derivatives,
 * accumulation, explicit output gradients, no-grad mode, detach, and the
 * errors autograd reports. Exits 1 on any mismatch. */
#include <math.h>
#include <stdio.h>

#include "anygrad.h"
#include "check.h"

static bool close_to(float got, double want) { return fabs(got - want) <= 1e-5 * (1 + fabs(want)); }

/* The gradient of t as host floats (n of them); false when there is none. */
static bool grad_of(ag_tensor *t, float *out, size_t n)
{
    ag_tensor *g = ag_grad(t); /* borrowed: do not release */
    return g && ag_to_host(g, out, n * sizeof *out) == AG_OK;
}

int main(void)
{
    const int64_t n = 3;
    const float xv[3] = {0.5f, -1.0f, 2.0f}, wv[3] = {3.0f, 2.0f, 1.0f};
    ag_tensor *x = ag_from_f32(xv, 1, &n), *w = ag_from_f32(wv, 1, &n);
    CHECK(ag_set_requires_grad(x, true) == AG_OK && ag_set_requires_grad(w, true) == AG_OK);
    float gx[3], gw[3];

    /* y = sum(w x^2 + exp(x)):  dy/dx = 2 w x + exp(x),  dy/dw = x^2 */
    ag_scope_begin();
    ag_tensor *y = ag_sum_all(ag_add(ag_mul(w, ag_square(x)), ag_exp(x)));
    CHECK(ag_requires_grad(y));
    CHECK(ag_backward(y, NULL) == AG_OK); /* y has one element: seeded with 1 */
    CHECK(grad_of(x, gx, 3) && grad_of(w, gw, 3));
    for (int i = 0; i < 3; i++) {
        CHECK(close_to(gx[i], 2.0 * wv[i] * xv[i] + exp(xv[i])));
        CHECK(close_to(gw[i], (double)xv[i] * xv[i]));
    }
    /* The graph is freed by backward: a second one is an error. */
    CHECK(ag_backward(y, NULL) == AG_ERR_STATE);
    ag_clear_error();
    ag_scope_end();

    /* Gradients accumulate until dropped, as in PyTorch. */
    ag_scope_begin();
    CHECK(ag_backward(ag_sum_all(ag_mul(w, ag_square(x))), NULL) == AG_OK);
    CHECK(grad_of(w, gw, 3));
    for (int i = 0; i < 3; i++) CHECK(close_to(gw[i], 2.0 * xv[i] * xv[i])); /* x^2 twice */
    ag_scope_end();
    CHECK(ag_zero_grad(x) == AG_OK && ag_zero_grad(w) == AG_OK);
    CHECK(ag_grad(x) == NULL && ag_grad(w) == NULL);

    /* A non-scalar root needs the gradient of its output: here v, so x.grad = 2 v. */
    ag_scope_begin();
    const float vv[3] = {1, 10, 100};
    ag_tensor *z = ag_mul_scalar(x, 2.0f);
    CHECK(ag_backward(z, NULL) == AG_ERR_SHAPE); /* 3 elements, no gradient given */
    ag_clear_error();
    CHECK(ag_backward(z, ag_from_f32(vv, 1, &n)) == AG_OK);
    CHECK(grad_of(x, gx, 3));
    for (int i = 0; i < 3; i++) CHECK(close_to(gx[i], 2.0 * vv[i]));
    ag_scope_end();
    ag_zero_grad(x);

    /* No-grad mode (per thread, nests): nothing is recorded. */
    ag_no_grad_begin();
    CHECK(!ag_grad_enabled());
    ag_scope_begin();
    ag_tensor *p = ag_mul(x, w);
    CHECK(p != NULL && !ag_requires_grad(p));
    CHECK(ag_backward(ag_sum_all(p), NULL) == AG_ERR_STATE); /* nothing to differentiate */
    ag_clear_error();
    ag_scope_end();
    ag_no_grad_end();
    CHECK(ag_grad_enabled());

    /* detach: the same storage without history, so x gets no gradient here. */
    ag_scope_begin();
    ag_tensor *xd = ag_detach(x);
    CHECK(!ag_requires_grad(xd));
    CHECK(ag_backward(ag_sum_all(ag_mul(xd, w)), NULL) == AG_OK);
    CHECK(ag_grad(x) == NULL && grad_of(w, gw, 3));
    for (int i = 0; i < 3; i++) CHECK(close_to(gw[i], xv[i]));
    ag_scope_end();
    ag_zero_grad(w);

    /* Only leaves can change requires_grad; backward refuses a graph whose
     * saved inputs were overwritten after the forward pass. */
    ag_scope_begin();
    ag_tensor *prod = ag_mul(x, w); /* backward of mul reads x and w */
    CHECK(ag_set_requires_grad(prod, false) == AG_ERR_STATE);
    CHECK(ag_from_host(w, xv, sizeof xv) == AG_OK); /* in-place write to w */
    CHECK(ag_backward(ag_sum_all(prod), NULL) == AG_ERR_STATE);
    printf("expected error: %s\n", ag_last_error());
    ag_clear_error();
    ag_scope_end();

    ag_release(x);
    ag_release(w);
    CHECK(ag_debug_live_buffers() == 0);
    if (failed) fprintf(stderr, "03_autograd: %d check(s) failed\n", failed);
    else printf("03_autograd: all checks passed\n");
    return failed ? 1 : 0;
}
