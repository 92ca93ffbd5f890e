/* The seed's toy: fit y_pred = w x + b to x = [1, 2, 3, 4], y = [100, 200, 300, 400]
 * with loss = mean((y - y_pred)^2) and plain gradient descent (SGD, no momentum),
 * starting from w = b = 0.
 *
 * Why the defaults (lr 0.05, 500 iterations) converge: the loss is quadratic,
 * L = e^T A e with e = (w - 100, b - 0) and A = [[mean x^2, mean x], [mean x, 1]]
 * = [[7.5, 2.5], [2.5, 1]]. Gradient descent maps e -> (I - 2 lr A) e; the
 * eigenvalues of 2A are 8.5 +- sqrt(67.25) = 16.7006 and 0.29939. It converges
 * when lr < 2 / 16.7006 = 0.1198, and the slow direction shrinks by
 * 1 - 0.05 * 0.29939 = 0.985030 per iteration. The start e = (-100, 0) puts a
 * loss of 155.2 into that direction (of 75000 in all; the rest shrinks by
 * |1 - 0.05 * 16.7006| = 0.165 per iteration and is gone within 20), so after k
 * iterations L ~= 155.2 * 0.985030^(2k): 4.4e-5 at k = 500. The seed's lr 0.01
 * shrinks the slow part by only 0.997006 per iteration: L ~= 85 after 100.
 *
 * Exits 0 only when the final loss is below 1, so tests/run.sh uses it as a check. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anygrad.h"

#define DEFAULT_LR 0.05f
#define DEFAULT_ITERS 500

/* Python's str() of a float32 (numpy.float32, as the seed's TensorFlow loss
 * printed): the shortest digits that read back as the same float, positional
 * for exponents -4..15 with at least one decimal ("75000.0"), else "1.5e-05". */
static const char *py_float(float v, char *out, size_t size)
{
    if (isnan(v) || isinf(v) || v == 0.0f) {
        snprintf(out, size, "%s", isnan(v) ? "nan" : isinf(v) ? (v < 0 ? "-inf" : "inf")
                                  : signbit(v) ? "-0.0" : "0.0");
        return out;
    }
    char sci[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec - 1, (double)v);
        if (strtof(sci, NULL) == v) break;
    }
    /* sci is "-d.ddde+XX": split into sign, digits and exponent */
    const char *s = sci;
    bool neg = *s == '-';
    if (neg) s++;
    char digits[16];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.') digits[nd++] = *s;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    int exp = atoi(s + 1);

    char body[48]; /* at most 25 characters: 16 digits, a point, 8 decimals */
    size_t n = 0;
    if (exp < -4 || exp >= 16) {
        n += (size_t)snprintf(body + n, sizeof body - n, "%c", digits[0]);
        if (nd > 1) n += (size_t)snprintf(body + n, sizeof body - n, ".%s", digits + 1);
        snprintf(body + n, sizeof body - n, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
    } else if (exp < 0) {
        n += (size_t)snprintf(body + n, sizeof body - n, "0.");
        for (int i = 0; i < -exp - 1; i++) body[n++] = '0';
        snprintf(body + n, sizeof body - n, "%s", digits);
    } else {
        for (int i = 0; i <= exp; i++) body[n++] = i < nd ? digits[i] : '0';
        body[n++] = '.';
        snprintf(body + n, sizeof body - n, "%s", nd > exp + 1 ? digits + exp + 1 : "0");
    }
    snprintf(out, size, "%s%s", neg ? "-" : "", body);
    return out;
}

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [--lr X] [--iters N]\n"
            "Fits y = w x + b to x = [1, 2, 3, 4], y = [100, 200, 300, 400] by gradient\n"
            "descent, printing the loss every 10 iterations and w, b at the end.\n"
            "  --lr X      learning rate (default %g)\n"
            "  --iters N   iterations (default %d)\n"
            "Exit status: 0 if the final loss is below 1 (converged), 1 if not or on an\n"
            "error, 2 for bad arguments.\n",
            prog, (double)DEFAULT_LR, DEFAULT_ITERS);
}

static int fail(const char *what)
{
    fprintf(stderr, "linear_regression: %s: %s\n", what, ag_last_error());
    return 1;
}

/* loss = mean((y - (w x + b))^2), in the current scope */
static ag_tensor *loss_of(ag_tensor *w, ag_tensor *b, ag_tensor *x, ag_tensor *y)
{
    ag_tensor *pred = ag_add(ag_mul(w, x), b);
    return ag_mean_all(ag_square(ag_sub(y, pred)));
}

int main(int argc, char **argv)
{
    float lr = DEFAULT_LR;
    long iters = DEFAULT_ITERS;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        errno = 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout, argv[0]);
            return 0;
        } else if (!strcmp(argv[i], "--lr") && i + 1 < argc) {
            lr = strtof(argv[++i], &end);
            if (*end || errno || !(lr >= 0.0f)) {
                fprintf(stderr, "linear_regression: bad --lr '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--iters") && i + 1 < argc) {
            iters = strtol(argv[++i], &end, 10);
            if (*end || errno || iters < 0) {
                fprintf(stderr, "linear_regression: bad --iters '%s'\n", argv[i]);
                return 2;
            }
        } else {
            usage(stderr, argv[0]);
            return 2;
        }
    }

    static const float xs[4] = {1, 2, 3, 4}, ys[4] = {100, 200, 300, 400};
    const int64_t n = 4;
    ag_tensor *x = ag_from_f32(xs, 1, &n), *y = ag_from_f32(ys, 1, &n);
    ag_tensor *w = ag_scalar(0.0f), *b = ag_scalar(0.0f);
    if (!x || !y || !w || !b) return fail("creating tensors");
    if (ag_set_requires_grad(w, true) != AG_OK || ag_set_requires_grad(b, true) != AG_OK)
        return fail("requires_grad");
    ag_tensor *params[2] = {w, b};
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_SGD, lr);
    ag_optim *opt = ag_optim_new(&cfg, 2, params);
    if (!opt) return fail("optimizer");

    char buf[64];
    float loss_v = NAN;
    for (long it = 0; it < iters; it++) {
        ag_scope_begin();
        ag_tensor *loss = loss_of(w, b, x, y);
        ag_status s = loss ? ag_optim_zero_grad(opt) : ag_last_status();
        if (s == AG_OK) s = ag_backward(loss, NULL);
        if (s == AG_OK) s = ag_item(loss, &loss_v);
        if (s == AG_OK) s = ag_optim_step(opt);
        ag_scope_end();
        if (s != AG_OK) return fail("training step");
        if (it % 10 == 0)
            printf("Iteration %ld, Loss: %s\n", it, py_float(loss_v, buf, sizeof buf));
    }

    /* the loss at the fitted parameters, after the last update */
    float wv, bv;
    ag_no_grad_begin();
    ag_scope_begin();
    ag_status s = ag_item(loss_of(w, b, x, y), &loss_v);
    ag_scope_end();
    ag_no_grad_end();
    if (s != AG_OK || ag_item(w, &wv) != AG_OK || ag_item(b, &bv) != AG_OK)
        return fail("reading results");
    printf("Final loss after %ld iterations (lr %g): %s\n", iters, (double)lr,
           py_float(loss_v, buf, sizeof buf));
    printf("w = %.6f, b = %.6f (exact fit: w = 100, b = 0)\n", (double)wv, (double)bv);

    ag_optim_free(opt);
    ag_release(w);
    ag_release(b);
    ag_release(x);
    ag_release(y);
    if (!(loss_v < 1.0f)) {
        printf("not converged: final loss is not below 1\n");
        return 1;
    }
    return 0;
}
