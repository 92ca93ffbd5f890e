/* The seed's single neuron, by hand and by autograd:
 *   z = w x + b,  a = sigmoid(z),  E = 1/2 (a - y)^2
 *   delta = dE/da * f'(z) = (a - y) a (1 - a)
 *   dE/dw = delta x,  dE/db = delta
 * then one gradient-descent step w := w - eta dE/dw, b := b - eta dE/db.
 * Prints both columns and exits 0 only when every row agrees within 1e-5. */
#include <math.h>
#include <stdio.h>

#include "anygrad.h"

static const double X = 1.5, Y = 1.0, W0 = 0.8, B0 = 0.2, ETA = 0.5;
static const double TOL = 1e-5;

static int fail(const char *what)
{
    fprintf(stderr, "neuron: %s: %s\n", what, ag_last_error());
    return 1;
}

int main(void)
{
    /* by hand, in double */
    double z = W0 * X + B0, a = 1.0 / (1.0 + exp(-z)), e = 0.5 * (a - Y) * (a - Y);
    double delta = (a - Y) * a * (1.0 - a);
    double dw = delta * X, db = delta;
    double w1 = W0 - ETA * dw, b1 = B0 - ETA * db;

    /* by autograd, in f32 */
    ag_tensor *w = ag_scalar((float)W0), *b = ag_scalar((float)B0);
    if (!w || !b || ag_set_requires_grad(w, true) != AG_OK ||
        ag_set_requires_grad(b, true) != AG_OK)
        return fail("parameters");
    ag_tensor *params[2] = {w, b};
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_SGD, (float)ETA);
    ag_optim *opt = ag_optim_new(&cfg, 2, params);
    if (!opt) return fail("optimizer");

    float got[7];
    ag_status s = AG_OK;
    ag_scope_begin();
    ag_tensor *zt = ag_add(ag_mul_scalar(w, (float)X), b);
    ag_tensor *at = ag_sigmoid(zt);
    ag_tensor *et = ag_mul_scalar(ag_square(ag_sub_scalar(at, (float)Y)), 0.5f);
    if (!et) s = ag_last_status();
    /* read z, a, E before backward frees the graph */
    if (s == AG_OK) s = ag_item(zt, &got[0]);
    if (s == AG_OK) s = ag_item(at, &got[1]);
    if (s == AG_OK) s = ag_item(et, &got[2]);
    if (s == AG_OK) s = ag_backward(et, NULL);
    if (s == AG_OK) s = ag_item(ag_grad(w), &got[3]);
    if (s == AG_OK) s = ag_item(ag_grad(b), &got[4]);
    if (s == AG_OK) s = ag_optim_step(opt);
    if (s == AG_OK) s = ag_item(w, &got[5]);
    if (s == AG_OK) s = ag_item(b, &got[6]);
    ag_scope_end();
    if (s != AG_OK) return fail("forward/backward");

    const struct { const char *name; double hand; } rows[7] = {
        {"z = w x + b", z},
        {"a = sigmoid(z)", a},
        {"E = 1/2 (a - y)^2", e},
        {"dE/dw = delta x", dw},
        {"dE/db = delta", db},
        {"w - eta dE/dw", w1},
        {"b - eta dE/db", b1},
    };
    printf("neuron: x = %g, y = %g, w = %g, b = %g, eta = %g\n", X, Y, W0, B0, ETA);
    printf("delta = (a - y) a (1 - a) = %.9f\n\n", delta);
    printf("%-20s %16s %16s %10s\n", "", "by hand (f64)", "autograd (f32)", "|diff|");
    int bad = 0;
    for (int i = 0; i < 7; i++) {
        double diff = fabs(rows[i].hand - (double)got[i]);
        bool ok = diff <= TOL;
        bad += !ok;
        printf("%-20s %16.9f %16.9f %10.2e%s\n", rows[i].name, rows[i].hand, (double)got[i], diff,
               ok ? "" : "  MISMATCH");
    }
    printf("\n%s (tolerance %g)\n", bad ? "autograd DISAGREES with the hand derivation"
                                        : "autograd agrees with the hand derivation",
           TOL);

    ag_optim_free(opt);
    ag_release(w);
    ag_release(b);
    return bad ? 1 : 0;
}
