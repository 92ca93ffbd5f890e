/* The autograd engine: gradients of small expressions worked out by hand,
 * accumulation, explicit upstream gradients, broadcasting, no_grad, detach,
 * misuse errors, deep graphs and ownership of leaf gradients. */
#include <math.h>
#include <string.h>

#include "anygrad.h"
#include "suites.h"

#define LEN(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

static void clear_error(void) { ag_clear_error(); }

static void expect_f32(const ag_tensor *t, const float *want, int64_t n)
{
    ck_assert_msg(t, "tensor is NULL (%s)", ag_last_error());
    ck_assert_int_eq(ag_numel(t), n);
    float got[64];
    ck_assert(n <= LEN(got));
    ck_assert_msg(ag_to_host(t, got, (size_t)n * sizeof(float)) == AG_OK, "to_host: %s",
                  ag_last_error());
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "element %lld: got %g, want %g", (long long)i,
                      (double)got[i], (double)want[i]);
}

static void expect_shape(const ag_tensor *t, int ndim, const int64_t *shape)
{
    ck_assert_ptr_nonnull(t);
    int64_t got[AG_MAX_DIMS];
    ck_assert_int_eq(ag_shape(t, got), ndim);
    for (int d = 0; d < ndim; d++) ck_assert_int_eq(got[d], shape[d]);
}

/* A leaf that requires grad. */
static ag_tensor *leaf(const float *v, int ndim, const int64_t *shape)
{
    ag_tensor *t = ag_from_f32(v, ndim, shape);
    ck_assert_msg(t, "from_f32: %s", ag_last_error());
    ck_assert_int_eq(ag_set_requires_grad(t, true), AG_OK);
    return t;
}

static void backward_ok(ag_tensor *root, ag_tensor *grad)
{
    ck_assert_msg(root, "root is NULL: %s", ag_last_error());
    ck_assert_msg(ag_backward(root, grad) == AG_OK, "backward: %s", ag_last_error());
}

/* ---- gradients by hand ------------------------------------------------------ */

START_TEST(test_poly)
{
    ag_scope_begin();
    const float xv[3] = {1, -2, 0.5f};
    ag_tensor *x = leaf(xv, 1, (const int64_t[]){3});
    /* y = sum(x*x + 3x) = 1+3 + 4-6 + 0.25+1.5 */
    ag_tensor *y = ag_sum_all(ag_add(ag_mul(x, x), ag_mul_scalar(x, 3.0f)));
    ck_assert(ag_requires_grad(y));
    const float yw[1] = {3.75f};
    expect_f32(y, yw, 1);
    ck_assert_ptr_null(ag_grad(x));
    backward_ok(y, NULL);
    const float gw[3] = {5, -1, 4}; /* 2x + 3 */
    expect_f32(ag_grad(x), gw, 3);
    expect_shape(ag_grad(x), 1, (const int64_t[]){3});
    ck_assert_int_eq(ag_dtype_of(ag_grad(x)), AG_F32);
    ag_scope_end();
}
END_TEST

START_TEST(test_used_twice)
{
    ag_scope_begin();
    const float xv[2] = {2, -3};
    ag_tensor *x = leaf(xv, 1, (const int64_t[]){2});
    /* x appears in three places: d/dx (x + x + x*4) = 6. */
    ag_tensor *y = ag_sum_all(ag_add(ag_add(x, x), ag_mul_scalar(x, 4.0f)));
    backward_ok(y, NULL);
    const float gw[2] = {6, 6};
    expect_f32(ag_grad(x), gw, 2);

    /* A non-leaf used twice: h = 2x, y = sum(h*h) = 4 sum(x^2), dy/dx = 8x. */
    const float zv[2] = {1, -0.5f};
    ag_tensor *z = leaf(zv, 1, (const int64_t[]){2});
    ag_tensor *h = ag_mul_scalar(z, 2.0f);
    backward_ok(ag_sum_all(ag_mul(h, h)), NULL);
    const float zw[2] = {8, -4};
    expect_f32(ag_grad(z), zw, 2);
    /* Gradients go to leaves only. */
    ck_assert_ptr_null(ag_grad(h));
    ag_scope_end();
}
END_TEST

START_TEST(test_diamond)
{
    ag_scope_begin();
    const float av[3] = {1, 2, -1};
    ag_tensor *a = leaf(av, 1, (const int64_t[]){3});
    ag_tensor *b = ag_mul_scalar(a, 2.0f); /* 2a */
    ag_tensor *c = ag_mul(a, a);           /* a^2 */
    ag_tensor *d = ag_sum_all(ag_mul(b, c)); /* 2a^3 */
    const float dw[1] = {2 + 16 - 2};
    expect_f32(d, dw, 1);
    backward_ok(d, NULL);
    const float gw[3] = {6, 24, 6}; /* 6a^2 */
    expect_f32(ag_grad(a), gw, 3);

    /* Two paths of different length: e = a + (a*3 + 1)*2 -> de/da = 7. */
    const float pv[2] = {0.5f, 4};
    ag_tensor *p = leaf(pv, 1, (const int64_t[]){2});
    ag_tensor *longer = ag_mul_scalar(ag_add_scalar(ag_mul_scalar(p, 3.0f), 1.0f), 2.0f);
    backward_ok(ag_sum_all(ag_add(p, longer)), NULL);
    const float pw[2] = {7, 7};
    expect_f32(ag_grad(p), pw, 2);
    ag_scope_end();
}
END_TEST

START_TEST(test_accumulate_and_zero)
{
    ag_scope_begin();
    const float xv[3] = {1, 2, 3};
    ag_tensor *x = leaf(xv, 1, (const int64_t[]){3});
    backward_ok(ag_sum_all(ag_mul_scalar(x, 2.0f)), NULL);
    const float g1[3] = {2, 2, 2};
    expect_f32(ag_grad(x), g1, 3);
    /* A second, separate graph adds to the gradient. */
    backward_ok(ag_sum_all(ag_mul(x, x)), NULL);
    const float g2[3] = {4, 6, 8}; /* 2 + 2x */
    expect_f32(ag_grad(x), g2, 3);
    ck_assert_int_eq(ag_zero_grad(x), AG_OK);
    ck_assert_ptr_null(ag_grad(x));
    backward_ok(ag_sum_all(x), NULL);
    const float g3[3] = {1, 1, 1};
    expect_f32(ag_grad(x), g3, 3);
    /* zero_grad on a tensor without a gradient is fine. */
    ag_tensor *plain = ag_zeros(1, (const int64_t[]){1});
    ck_assert_int_eq(ag_zero_grad(plain), AG_OK);
    ck_assert_ptr_null(ag_grad(plain));
    ag_scope_end();
}
END_TEST

START_TEST(test_explicit_upstream)
{
    ag_scope_begin();
    const float xv[6] = {1, 2, 3, 4, 5, 6};
    ag_tensor *x = leaf(xv, 2, (const int64_t[]){2, 3});
    ag_tensor *y = ag_mul(ag_mul_scalar(x, 3.0f), x); /* 3x^2, non-scalar */
    const float gv[6] = {1, -1, 0.5f, 0, 2, 1};
    ag_tensor *g = ag_from_f32(gv, 2, (const int64_t[]){2, 3});
    backward_ok(y, g);
    const float want[6] = {6, -12, 9, 0, 60, 36}; /* g * 6x */
    expect_f32(ag_grad(x), want, 6);
    expect_shape(ag_grad(x), 2, (const int64_t[]){2, 3});
    /* The upstream gradient is not modified. */
    expect_f32(g, gv, 6);

    /* backward on a leaf itself: its gradient is a copy of the upstream one. */
    ag_tensor *l = leaf(xv, 2, (const int64_t[]){2, 3});
    backward_ok(l, g);
    expect_f32(ag_grad(l), gv, 6);
    const float zero[6] = {0};
    ck_assert_int_eq(ag_from_host(g, zero, sizeof zero), AG_OK);
    expect_f32(ag_grad(l), gv, 6);
    ag_scope_end();
}
END_TEST

START_TEST(test_broadcast_grads)
{
    ag_scope_begin();
    const float xv[3] = {1, 2, 3}, yv[4] = {10, 20, 30, 40};
    ag_tensor *x = leaf(xv, 2, (const int64_t[]){3, 1});
    ag_tensor *y = leaf(yv, 1, (const int64_t[]){4});
    ag_tensor *s = ag_add(x, y);
    expect_shape(s, 2, (const int64_t[]){3, 4});
    backward_ok(ag_sum_all(s), NULL);
    expect_shape(ag_grad(x), 2, (const int64_t[]){3, 1});
    expect_shape(ag_grad(y), 1, (const int64_t[]){4});
    const float gx[3] = {4, 4, 4}, gy[4] = {3, 3, 3, 3};
    expect_f32(ag_grad(x), gx, 3);
    expect_f32(ag_grad(y), gy, 4);

    ag_zero_grad(x);
    ag_zero_grad(y);
    /* sum(x * y): dx_i = sum_j y_j = 100, dy_j = sum_i x_i = 6. */
    backward_ok(ag_sum_all(ag_mul(x, y)), NULL);
    const float mx[3] = {100, 100, 100}, my[4] = {6, 6, 6, 6};
    expect_shape(ag_grad(x), 2, (const int64_t[]){3, 1});
    expect_f32(ag_grad(x), mx, 3);
    expect_f32(ag_grad(y), my, 4);

    /* A 0-dim operand gets a 0-dim gradient summed over everything. */
    ag_tensor *k = leaf((const float[]){2.0f}, 0, NULL);
    backward_ok(ag_sum_all(ag_mul(y, k)), NULL);
    ck_assert_int_eq(ag_ndim(ag_grad(k)), 0);
    const float kw[1] = {100};
    expect_f32(ag_grad(k), kw, 1);
    ag_scope_end();
}
END_TEST

START_TEST(test_view_grads)
{
    ag_scope_begin();
    const float xv[6] = {1, 2, 3, 4, 5, 6};
    ag_tensor *x = leaf(xv, 2, (const int64_t[]){2, 3});
    /* sum(transpose(x) * w): dx = w^T. */
    const float wv[6] = {1, 2, 3, 4, 5, 6}; /* [3, 2] */
    ag_tensor *w = ag_from_f32(wv, 2, (const int64_t[]){3, 2});
    backward_ok(ag_sum_all(ag_mul(ag_transpose(x, 0, 1), w)), NULL);
    const float tw[6] = {1, 3, 5, 2, 4, 6};
    expect_f32(ag_grad(x), tw, 6);
    ag_zero_grad(x);

    /* A step-2 slice of the columns, scaled: gradient only at columns 0 and 2. */
    backward_ok(ag_sum_all(ag_mul_scalar(ag_slice(x, 1, 0, 3, 2), 5.0f)), NULL);
    const float sw[6] = {5, 0, 5, 5, 0, 5};
    expect_f32(ag_grad(x), sw, 6);
    ag_zero_grad(x);

    /* reshape + expand: each element is used four times. */
    ag_tensor *r = ag_reshape(x, 3, (const int64_t[]){2, 3, 1});
    ag_tensor *e = ag_expand(r, 3, (const int64_t[]){2, 3, 4});
    backward_ok(ag_sum_all(e), NULL);
    const float ew[6] = {4, 4, 4, 4, 4, 4};
    expect_f32(ag_grad(x), ew, 6);
    ag_zero_grad(x);

    /* clone is differentiable; flatten/unsqueeze/squeeze pass gradients through. */
    ag_tensor *f = ag_squeeze(ag_unsqueeze(ag_flatten(ag_clone(x), 0, -1), 0), 0);
    backward_ok(ag_sum_all(ag_mul(f, f)), NULL);
    const float cw[6] = {2, 4, 6, 8, 10, 12};
    expect_f32(ag_grad(x), cw, 6);
    ag_scope_end();
}
END_TEST

/* ---- modes and flags --------------------------------------------------------- */

START_TEST(test_no_grad)
{
    ag_scope_begin();
    const float xv[2] = {1, 2};
    ag_tensor *x = leaf(xv, 1, (const int64_t[]){2});
    ck_assert(ag_grad_enabled());
    ag_no_grad_begin();
    ck_assert(!ag_grad_enabled());
    ag_tensor *y = ag_sum_all(ag_mul(x, x));
    ck_assert_ptr_nonnull(y);
    ck_assert(!ag_requires_grad(y));
    ck_assert(!ag_requires_grad(ag_reshape(x, 2, (const int64_t[]){1, 2})));
    /* Nested blocks: grad mode returns only at the outermost end. */
    ag_no_grad_begin();
    ag_no_grad_end();
    ck_assert(!ag_grad_enabled());
    ag_no_grad_end();
    ck_assert(ag_grad_enabled());
    /* The leaf itself still requires grad. */
    ck_assert(ag_requires_grad(x));
    ck_assert_int_ne(ag_backward(y, NULL), AG_OK);
    ck_assert_ptr_null(ag_grad(x));

    ag_tensor *z = ag_mul(x, x);
    ck_assert(ag_requires_grad(z));
    ag_scope_end();
}
END_TEST

START_TEST(test_detach_stops)
{
    ag_scope_begin();
    const float xv[3] = {1, -2, 3};
    ag_tensor *x = leaf(xv, 1, (const int64_t[]){3});
    ag_tensor *d = ag_detach(ag_mul_scalar(x, 2.0f));
    ck_assert(!ag_requires_grad(d));
    /* y = sum(x * stop(2x)): gradient is 2x, not 4x. */
    backward_ok(ag_sum_all(ag_mul(x, d)), NULL);
    const float gw[3] = {2, -4, 6};
    expect_f32(ag_grad(x), gw, 3);

    /* Only a detached path to the root: the root needs no gradient. */
    ag_tensor *only = ag_sum_all(ag_detach(x));
    ck_assert(!ag_requires_grad(only));
    ag_scope_end();
}
END_TEST

START_TEST(test_leaf_without_grad)
{
    ag_scope_begin();
    const float av[2] = {1, 2}, bv[2] = {3, 4};
    ag_tensor *a = leaf(av, 1, (const int64_t[]){2});
    ag_tensor *b = ag_from_f32(bv, 1, (const int64_t[]){2});
    ck_assert(!ag_requires_grad(b));
    ag_tensor *y = ag_sum_all(ag_mul(a, b));
    ck_assert(ag_requires_grad(y));
    backward_ok(y, NULL);
    expect_f32(ag_grad(a), bv, 2);
    ck_assert_ptr_null(ag_grad(b));

    /* Turning requires_grad off on a leaf is allowed, and stops gradients. */
    ck_assert_int_eq(ag_set_requires_grad(a, false), AG_OK);
    ck_assert(!ag_requires_grad(a));
    ck_assert(!ag_requires_grad(ag_mul(a, b)));

    /* No input requires grad: the result does not either. */
    ck_assert(!ag_requires_grad(ag_add(b, b)));
    ag_scope_end();
}
END_TEST

START_TEST(test_set_requires_grad_non_leaf)
{
    ag_scope_begin();
    const float xv[2] = {1, 2};
    ag_tensor *x = leaf(xv, 1, (const int64_t[]){2});
    ag_tensor *y = ag_mul(x, x);
    ck_assert_int_eq(ag_set_requires_grad(y, false), AG_ERR_STATE);
    ck_assert_int_eq(ag_last_status(), AG_ERR_STATE);
    ck_assert_str_ne(ag_last_error(), "no error");
    ck_assert(ag_requires_grad(y));
    ag_clear_error();
    ck_assert_int_eq(ag_set_requires_grad(y, true), AG_ERR_STATE);
    ag_scope_end();
}
END_TEST

START_TEST(test_backward_twice)
{
    ag_scope_begin();
    const float xv[2] = {1, 2};
    ag_tensor *x = leaf(xv, 1, (const int64_t[]){2});
    ag_tensor *y = ag_sum_all(ag_mul(x, x));
    backward_ok(y, NULL);
    ag_clear_error();
    ck_assert_int_eq(ag_backward(y, NULL), AG_ERR_STATE);
    ck_assert_int_eq(ag_last_status(), AG_ERR_STATE);
    const char *msg = ag_last_error();
    ck_assert_msg(strstr(msg, "freed") || strstr(msg, "released"),
                  "message should say the graph was freed: %s", msg);
    /* The failed call did not touch the gradient. */
    const float gw[2] = {2, 4};
    expect_f32(ag_grad(x), gw, 2);
    ag_scope_end();
}
END_TEST

START_TEST(test_backward_nonscalar)
{
    ag_scope_begin();
    const float xv[3] = {1, 2, 3};
    ag_tensor *x = leaf(xv, 1, (const int64_t[]){3});
    ag_tensor *y = ag_mul_scalar(x, 2.0f);
    ck_assert_int_eq(ag_backward(y, NULL), AG_ERR_SHAPE);
    ck_assert_str_ne(ag_last_error(), "no error");
    ck_assert_ptr_null(ag_grad(x));

    /* An upstream gradient of the wrong shape. */
    ag_tensor *g = ag_ones(1, (const int64_t[]){4});
    ck_assert_int_eq(ag_backward(y, g), AG_ERR_SHAPE);
    ck_assert_ptr_null(ag_grad(x));

    /* A one-element non-0-dim root is fine without a gradient. */
    backward_ok(ag_sum(y, 1, (const int[]){0}, true), NULL);
    const float gw[3] = {2, 2, 2};
    expect_f32(ag_grad(x), gw, 3);
    ag_scope_end();
}
END_TEST

/* ---- deep graphs and ownership ------------------------------------------------ */

START_TEST(test_long_chain)
{
    enum { DEPTH = 10000 };
    ag_scope_begin();
    ag_tensor *x = leaf((const float[]){0.5f}, 0, NULL);
    ag_tensor *y = x;
    for (int i = 0; i < DEPTH; i++) {
        y = ag_add_scalar(y, 1.0f);
        ck_assert_msg(y, "add_scalar %d: %s", i, ag_last_error());
    }
    const float yw[1] = {DEPTH + 0.5f};
    expect_f32(y, yw, 1);
    backward_ok(y, NULL);
    const float gw[1] = {1};
    expect_f32(ag_grad(x), gw, 1);
    ag_scope_end();
}
END_TEST

/* Without scopes: each step drops its reference to the previous tensor, so the
 * root alone keeps the whole chain alive. Releasing it frees the chain. */
START_TEST(test_long_chain_release)
{
    enum { DEPTH = 10000 };
    const float one = 1.0f;
    ag_tensor *x = leaf(&one, 0, NULL);
    ag_tensor *y = ag_retain(x);
    for (int i = 0; i < DEPTH; i++) {
        ag_tensor *next = ag_mul_scalar(y, 1.0f);
        ag_release(y);
        y = next;
        ck_assert_ptr_nonnull(y);
    }
    /* Released without backward: the graph is freed with its root. */
    ag_release(y);

    y = ag_retain(x);
    for (int i = 0; i < DEPTH; i++) {
        ag_tensor *next = ag_add_scalar(y, 1.0f);
        ag_release(y);
        y = next;
    }
    ck_assert_int_eq(ag_backward(y, NULL), AG_OK);
    ag_release(y);
    const float gw[1] = {1};
    expect_f32(ag_grad(x), gw, 1);
    ag_release(x);
}
END_TEST

/* Explicit ownership end to end, for the leak checkers. */
START_TEST(test_no_leak_manual)
{
    const float wv[6] = {1, 2, 3, 4, 5, 6}, xv[2] = {1, -1};
    ag_tensor *w = leaf(wv, 2, (const int64_t[]){3, 2});
    ag_tensor *x = ag_from_f32(xv, 2, (const int64_t[]){1, 2});
    ag_tensor *wt = ag_transpose(w, 0, 1);
    ag_tensor *h = ag_matmul(x, wt); /* [1, 3]: -1 -1 -1 */
    ag_tensor *r = ag_relu(h);
    ag_tensor *s = ag_add(h, r);
    ag_tensor *loss = ag_sum_all(s);
    ck_assert_int_eq(ag_backward(loss, NULL), AG_OK);
    /* relu is 0 for negatives: d loss / dh = 1, dw[j][k] = x[k]. */
    const float gw[6] = {1, -1, 1, -1, 1, -1};
    expect_f32(ag_grad(w), gw, 6);
    ag_release(loss);
    ag_release(s);
    ag_release(r);
    ag_release(h);
    ag_release(wt);
    ag_release(x);
    ag_release(w);

    /* A graph released without ever running backward. */
    ag_tensor *a = leaf(xv, 1, (const int64_t[]){2});
    ag_tensor *b = ag_mul(a, a);
    ag_tensor *c = ag_sum_all(b);
    ag_release(a);
    ag_release(b);
    ag_release(c);

    /* Inputs released before backward: the graph keeps what it needs alive. */
    ag_tensor *p = leaf(xv, 1, (const int64_t[]){2});
    ag_tensor *m = ag_mul_scalar(p, 3.0f);
    ag_tensor *q = ag_sum_all(m);
    ag_release(p);
    ag_release(m);
    ck_assert_int_eq(ag_backward(q, NULL), AG_OK);
    ag_release(q);
}
END_TEST

/* An activation that no backward rule reads is freed as soon as only the graph
 * holds it (its shape and history stay); one a rule reads is kept. */
START_TEST(test_unread_activation_freed)
{
    const float xv[4] = {-2, -1, 1, 2};
    ag_tensor *x = leaf(xv, 1, (const int64_t[]){4});
    int64_t live = ag_debug_live_buffers();
    ag_tensor *h = ag_add(x, x);   /* add reads neither input */
    ag_tensor *r = ag_relu(h);     /* relu's rule reads h, not its output */
    ag_tensor *e = ag_exp(r);      /* exp's rule reads its output */
    ag_tensor *loss = ag_sum_all(e);
    ck_assert_ptr_nonnull(loss);
    ck_assert_int_eq(ag_debug_live_buffers(), live + 4);
    ag_release(h); /* saved by relu: kept */
    ck_assert_int_eq(ag_debug_live_buffers(), live + 4);
    ag_release(r); /* read by exp's rule (as its x): kept */
    ck_assert_int_eq(ag_debug_live_buffers(), live + 4);
    ag_release(e); /* exp saved its output: kept; sum reads nothing */
    ck_assert_int_eq(ag_debug_live_buffers(), live + 4);

    ag_tensor *m = ag_mul_scalar(x, 1.0f);
    ag_tensor *n = ag_relu(m); /* relu keeps its input (m), not its output */
    ag_tensor *a = ag_add(n, loss);
    ag_tensor *s = ag_sum_all(a);
    ck_assert_ptr_nonnull(s);
    int64_t before = ag_debug_live_buffers();
    ag_release(n); /* only add's node (shape only) holds it now: freed */
    ck_assert_int_eq(ag_debug_live_buffers(), before - 1);
    ck_assert_int_eq(ag_backward(s, NULL), AG_OK);
    /* d/dx: relu'(x) + 4 (loss is broadcast over 4 elements) 2 relu'(2x) exp(relu(2x)) */
    float g[4];
    ck_assert_int_eq(ag_to_host(ag_grad(x), g, sizeof g), AG_OK);
    for (int i = 0; i < 4; i++) {
        float want = xv[i] > 0 ? 1.0f + 8.0f * expf(2.0f * xv[i]) : 0.0f;
        ck_assert_msg(fabsf(g[i] - want) <= 1e-5f * fabsf(want) + 1e-6f, "element %d: %g, want %g", i,
                      (double)g[i], (double)want);
    }
    ag_release(s);
    ag_release(a);
    ag_release(m);
    ag_release(loss);
    ag_release(x);
    ck_assert_int_eq(ag_debug_live_buffers(), live - 1);
}
END_TEST

/* requires_grad turned on after the forward pass: the product's rule never
 * kept the other factor, so that leaf gets no gradient (as in PyTorch, whose
 * graph would not include it), and backward succeeds without a stale error. */
START_TEST(test_requires_grad_after_forward)
{
    const float xv[4] = {1, 2, 3, 4}, cv[4] = {2, 2, 2, 2};
    ag_tensor *x = leaf(xv, 2, (const int64_t[]){2, 2});
    ag_tensor *c = ag_from_f32(cv, 2, (const int64_t[]){2, 2});
    ag_tensor *d = ag_from_f32(cv, 2, (const int64_t[]){2, 2});
    ag_tensor *h = ag_add(x, x);
    ag_tensor *m = ag_mul(h, c), *p = ag_matmul(h, d);
    ag_tensor *s = ag_add(m, p), *loss = ag_sum_all(s);
    ck_assert_ptr_nonnull(loss);
    ag_release(h); /* nothing kept it: its memory goes */
    ck_assert_int_eq(ag_set_requires_grad(c, true), AG_OK);
    ck_assert_int_eq(ag_set_requires_grad(d, true), AG_OK);
    ag_clear_error();
    ck_assert_int_eq(ag_backward(loss, NULL), AG_OK);
    ck_assert_int_eq(ag_last_status(), AG_OK);
    ck_assert_ptr_null(ag_grad(c));
    ck_assert_ptr_null(ag_grad(d));
    /* x's own gradient still flows: 2 (c + row sums of d) = 2 (2 + 4) */
    const float gx[4] = {12, 12, 12, 12};
    expect_f32(ag_grad(x), gx, 4);
    ag_release(loss);
    ag_release(s);
    ag_release(m);
    ag_release(p);
    ag_release(c);
    ag_release(d);
    ag_release(x);
}
END_TEST

START_TEST(test_leaf_grad_own_storage)
{
    ag_scope_begin();
    const float av[3] = {1, 2, 3}, bv[3] = {4, 5, 6};
    ag_tensor *a = leaf(av, 1, (const int64_t[]){3});
    ag_tensor *b = leaf(bv, 1, (const int64_t[]){3});
    backward_ok(ag_sum_all(ag_add(a, b)), NULL);
    ag_tensor *ga = ag_grad(a), *gb = ag_grad(b);
    ck_assert_ptr_nonnull(ga);
    ck_assert_ptr_nonnull(gb);
    const float ones[3] = {1, 1, 1}, fives[3] = {5, 5, 5};
    expect_f32(ga, ones, 3);
    expect_f32(gb, ones, 3);
    ck_assert_int_eq(ag_from_host(ga, fives, sizeof fives), AG_OK);
    expect_f32(ag_grad(a), fives, 3);
    expect_f32(ag_grad(b), ones, 3);

    /* Same with a non-scalar root and an explicit gradient. */
    ag_zero_grad(a);
    ag_zero_grad(b);
    ag_tensor *g = ag_from_f32(ones, 1, (const int64_t[]){3});
    backward_ok(ag_add(a, b), g);
    ck_assert_int_eq(ag_from_host(ag_grad(b), fives, sizeof fives), AG_OK);
    expect_f32(ag_grad(a), ones, 3);
    expect_f32(g, ones, 3);
    ag_scope_end();
}
END_TEST

Suite *suite_autograd(void)
{
    Suite *s = suite_create("autograd");
    TCase *tc = h_tcase_create("engine");
    tcase_add_checked_fixture(tc, clear_error, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_poly);
    tcase_add_test(tc, test_used_twice);
    tcase_add_test(tc, test_diamond);
    tcase_add_test(tc, test_accumulate_and_zero);
    tcase_add_test(tc, test_explicit_upstream);
    tcase_add_test(tc, test_broadcast_grads);
    tcase_add_test(tc, test_view_grads);
    tcase_add_test(tc, test_no_grad);
    tcase_add_test(tc, test_detach_stops);
    tcase_add_test(tc, test_leaf_without_grad);
    tcase_add_test(tc, test_set_requires_grad_non_leaf);
    tcase_add_test(tc, test_backward_twice);
    tcase_add_test(tc, test_backward_nonscalar);
    tcase_add_test(tc, test_no_leak_manual);
    tcase_add_test(tc, test_leaf_grad_own_storage);
    tcase_add_test(tc, test_unread_activation_freed);
    tcase_add_test(tc, test_requires_grad_after_forward);
    suite_add_tcase(s, tc);
    /* 30,000 launches: tagged so a driver with a slow launch path (rusticl on
     * llvmpipe: ~3 ms each) can leave them out (CK_EXCLUDE_TAGS=slow) */
    tc = h_tcase_create("deep");
    tcase_set_tags(tc, "slow");
    tcase_add_checked_fixture(tc, clear_error, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_long_chain);
    tcase_add_test(tc, test_long_chain_release);
    suite_add_tcase(s, tc);
    return s;
}
