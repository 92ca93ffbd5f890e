/* Times one training step (forward, backward, optimizer) of the 784-256-128-10
 * MLP on random data shaped like Fashion-MNIST; prints the median over repeats.
 * Usage: mlp_step [batch] [steps] [sgd|adam] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anygrad.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static ag_tensor *param(int64_t out, int64_t in)
{
    int64_t shape[2] = {out, in};
    float bound = 1.0f / (float)in;
    ag_tensor *t = in ? ag_rand(2, shape, -bound, bound) : ag_zeros(1, shape);
    ag_set_requires_grad(t, true);
    return t;
}

int main(int argc, char **argv)
{
    int64_t batch = argc > 1 ? atoll(argv[1]) : 128;
    int steps = argc > 2 ? atoi(argv[2]) : 200;
    bool adam = argc > 3 && strcmp(argv[3], "adam") == 0;
    if (batch <= 0 || steps <= 0) {
        fprintf(stderr, "usage: mlp_step [batch > 0] [steps > 0] [sgd|adam]\n");
        return 2;
    }
    ag_manual_seed(1);
    ag_tensor *p[6] = {param(256, 784), param(256, 0), param(128, 256), param(128, 0),
                       param(10, 128), param(10, 0)};
    int64_t xs[2] = {batch, 784};
    ag_tensor *x = ag_rand(2, xs, 0.0f, 1.0f);
    int32_t *lab = malloc((size_t)batch * sizeof *lab);
    for (int64_t i = 0; i < batch; i++) lab[i] = (int32_t)(i * 7 % 10);
    ag_tensor *y = ag_from_i32(lab, 1, &batch);
    ag_optim_config cfg = adam ? ag_optim_defaults(AG_OPTIM_ADAM, 1e-3f)
                               : ag_optim_defaults(AG_OPTIM_SGD, 0.05f);
    if (!adam) cfg.momentum = 0.9f;
    ag_optim *opt = ag_optim_new(&cfg, 6, p);
    if (!opt || !x || !y) {
        fprintf(stderr, "setup failed: %s\n", ag_last_error());
        return 1;
    }
    double *t = malloc((size_t)steps * sizeof *t);
    float loss_v = 0;
    for (int s = 0; s < steps; s++) {
        double t0 = now_us();
        ag_scope_begin();
        ag_tensor *h = ag_relu(ag_linear(x, p[0], p[1]));
        h = ag_relu(ag_linear(h, p[2], p[3]));
        ag_tensor *loss = ag_cross_entropy(ag_linear(h, p[4], p[5]), y, AG_REDUCTION_MEAN, 0.0f);
        ag_optim_zero_grad(opt);
        if (ag_backward(loss, NULL) != AG_OK || ag_optim_step(opt) != AG_OK) {
            fprintf(stderr, "step failed: %s\n", ag_last_error());
            return 1;
        }
        ag_item(loss, &loss_v);
        ag_scope_end();
        t[s] = now_us() - t0;
    }
    qsort(t, (size_t)steps, sizeof *t, cmp);
    printf("mlp 784-256-128-10 %s batch %lld: median step %.0f us (min %.0f, p90 %.0f) over %d "
           "steps, final loss %.4f\n",
           adam ? "adam" : "sgd-momentum", (long long)batch, t[steps / 2], t[0],
           t[steps * 9 / 10], steps, loss_v);
    for (int i = 0; i < 6; i++) ag_release(p[i]);
    ag_release(x);
    ag_release(y);
    ag_optim_free(opt);
    free(lab);
    free(t);
    return 0;
}
