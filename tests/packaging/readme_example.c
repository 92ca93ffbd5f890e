#include <stdio.h>
#include <anygrad.h>

int main(void)
{
    const float xs[4] = {1, 2, 3, 4}, ys[4] = {3, 5, 7, 9};  /* y = 2x + 1 */
    const int64_t n = 4;
    ag_tensor *x = ag_from_f32(xs, 1, &n), *y = ag_from_f32(ys, 1, &n);
    ag_tensor *w = ag_scalar(0.0f), *b = ag_scalar(0.0f);
    ag_set_requires_grad(w, true);
    ag_set_requires_grad(b, true);

    ag_tensor *params[] = {w, b};
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_ADAM, 0.1f);
    ag_optim *opt = ag_optim_new(&cfg, 2, params);
    if (!opt) { fprintf(stderr, "%s\n", ag_last_error()); return 1; }

    for (int step = 0; step < 500; step++) {
        ag_scope_begin();                 /* frees this step's tensors at the end */
        ag_tensor *pred = ag_add(ag_mul(w, x), b);
        ag_tensor *loss = ag_mse_loss(pred, y, AG_REDUCTION_MEAN);
        ag_optim_zero_grad(opt);
        ag_backward(loss, NULL);
        ag_optim_step(opt);
        ag_scope_end();
    }
    float wv, bv;
    ag_item(w, &wv);
    ag_item(b, &bv);
    printf("w = %.3f, b = %.3f\n", wv, bv);  /* w = 2.000, b = 1.000 */

    ag_optim_free(opt);
    ag_release(x); ag_release(y); ag_release(w); ag_release(b);
    return 0;
}
