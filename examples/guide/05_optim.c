/* Guide, section 5: optimizers and learning-rate schedules. One SGD step
 * against its formula, the schedules against theirs, gradient clipping, then
 * a linear model fitted with Adam, warm-up + cosine decay and clipping.
 * Exits 1 on any mismatch. */
#include <math.h>
#include <stdio.h>

#include "anygrad.h"
#include "check.h"

static bool near(double got, double want, double tol) { return fabs(got - want) <= tol * (1 + fabs(want)); }

/* The rate for step s: linear warm-up for `warm` steps, then cosine decay to min_lr. */
static float schedule(int64_t s, int64_t warm, int64_t total, float base, float min_lr)
{
    return s < warm ? ag_lr_warmup(base, s, warm) : ag_lr_cosine(base, s - warm, total - warm, min_lr);
}

int main(void)
{
    /* ---- schedules: the rate for a 0-based step ---- */
    CHECK(near(ag_lr_step_decay(0.1f, 25, 10, 0.5f), 0.1 * 0.25, 1e-6)); /* base * gamma^(25/10) */
    CHECK(near(ag_lr_cosine(0.1f, 0, 100, 0.001f), 0.1, 1e-6));
    CHECK(near(ag_lr_cosine(0.1f, 50, 100, 0.001f), (0.1 + 0.001) / 2, 1e-6));
    CHECK(near(ag_lr_cosine(0.1f, 100, 100, 0.001f), 0.001, 1e-6));
    CHECK(near(ag_lr_warmup(0.1f, 0, 5), 0.1 / 5, 1e-6)); /* (step + 1) / warmup_steps */
    CHECK(near(ag_lr_warmup(0.1f, 4, 5), 0.1, 1e-6) && near(ag_lr_warmup(0.1f, 9, 5), 0.1, 1e-6));

    /* ---- one SGD step: loss = sum(p^2), grad 2p, p := p - lr * 2p ---- */
    const int64_t two = 2;
    const float p0[2] = {1.0f, -2.0f};
    ag_tensor *p = ag_from_f32(p0, 1, &two);
    ag_set_requires_grad(p, true); /* optimizers take leaf f32 tensors that require grad */
    ag_optim_config sgd_cfg = ag_optim_defaults(AG_OPTIM_SGD, 0.1f);
    ag_optim *sgd = ag_optim_new(&sgd_cfg, 1, &p);
    ag_scope_begin();
    CHECK(ag_optim_zero_grad(sgd) == AG_OK);
    CHECK(ag_backward(ag_sum_all(ag_square(p)), NULL) == AG_OK);
    CHECK(ag_optim_step(sgd) == AG_OK);
    ag_scope_end();
    float p1[2];
    CHECK(ag_to_host(p, p1, sizeof p1) == AG_OK);
    for (int i = 0; i < 2; i++) CHECK(near(p1[i], p0[i] * (1.0 - 0.1 * 2.0), 1e-6));
    CHECK(ag_optim_steps(sgd) == 1);
    ag_optim_free(sgd);
    ag_release(p);

    /* ---- clipping: four gradients of 3 have norm 6; max_norm 3 halves them ---- */
    const int64_t four = 4;
    ag_tensor *q = ag_zeros(1, &four);
    ag_set_requires_grad(q, true);
    ag_scope_begin();
    CHECK(ag_backward(ag_sum_all(ag_mul_scalar(q, 3.0f)), NULL) == AG_OK);
    ag_scope_end();
    float norm = 0.0f, g[4];
    CHECK(ag_clip_grad_norm(1, &q, 3.0f, &norm) == AG_OK && near(norm, 6.0, 1e-6));
    CHECK(ag_to_host(ag_grad(q), g, sizeof g) == AG_OK);
    for (int i = 0; i < 4; i++) CHECK(near(g[i], 1.5, 1e-5));
    ag_release(q);

    /* ---- training: fit y = 2 x0 - 3 x1 + 0.5 with a Linear(2, 1) ---- */
    ag_manual_seed(7);
    const int64_t xs[2] = {64, 2};
    const float wt[2] = {2.0f, -3.0f};
    const int64_t wshape[2] = {1, 2};
    ag_tensor *x = ag_randn(2, xs, 0.0f, 1.0f);
    ag_tensor *w_true = ag_from_f32(wt, 2, wshape);
    const int64_t one = 1;
    ag_tensor *b_true = ag_full(1, &one, 0.5f); /* a bias has shape [out] */
    ag_tensor *y = ag_linear(x, w_true, b_true); /* [64, 1]; nothing requires grad */

    ag_module *model = ag_linear_new(2, 1, true);
    int np = 0;
    ag_tensor *const *params = ag_module_parameters(model, &np);
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_ADAM, 0.1f); /* betas 0.9, 0.999 */
    ag_optim *opt = params ? ag_optim_new(&cfg, np, params) : NULL;
    CHECK(opt != NULL);

    const int64_t steps = 150, warm = 10;
    float first = NAN, last = NAN;
    for (int64_t s = 0; s < steps && opt; s++) {
        ag_optim_set_lr(opt, schedule(s, warm, steps, 0.1f, 0.001f));
        ag_scope_begin();
        ag_tensor *loss = ag_mse_loss(ag_module_forward(model, x), y, AG_REDUCTION_MEAN);
        float lv = NAN, total = NAN;
        bool ok = ag_optim_zero_grad(opt) == AG_OK && ag_backward(loss, NULL) == AG_OK &&
                  ag_clip_grad_norm(np, params, 10.0f, &total) == AG_OK &&
                  ag_optim_step(opt) == AG_OK && ag_item(loss, &lv) == AG_OK;
        ag_scope_end();
        if (!CHECK(ok)) break;
        if (s == 0) first = lv;
        last = lv;
    }
    printf("loss %.6f -> %.8f after %lld steps, lr now %g\n", (double)first, (double)last,
           (long long)ag_optim_steps(opt), (double)ag_optim_lr(opt));
    CHECK(ag_optim_steps(opt) == steps);
    CHECK(near(ag_optim_lr(opt), ag_lr_cosine(0.1f, steps - 1 - warm, steps - warm, 0.001f), 1e-6));
    CHECK(last < first * 1e-3f && last < 1e-3f);
    float wv[2], bv = NAN;
    CHECK(ag_to_host(params[0], wv, sizeof wv) == AG_OK && ag_item(params[1], &bv) == AG_OK);
    CHECK(near(wv[0], 2.0, 0.02) && near(wv[1], -3.0, 0.02) && near(bv, 0.5, 0.02));

    ag_optim_free(opt);
    ag_module_free(model);
    ag_release(x);
    ag_release(w_true);
    ag_release(b_true);
    ag_release(y);
    CHECK(ag_debug_live_buffers() == 0);
    if (failed) fprintf(stderr, "05_optim: %d check(s) failed\n", failed);
    else printf("05_optim: all checks passed\n");
    return failed ? 1 : 0;
}
