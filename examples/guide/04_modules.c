/* Guide, section 4: modules. Constructors, Sequential (by index and by name),
 * forward, parameters and state under PyTorch's names, train/eval mode.
 * Exits 1 on any mismatch. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "anygrad.h"
#include "check.h"

int main(void)
{
    /* Constructors nest: a failed one makes ag_sequential_new return NULL with its error. */
    ag_manual_seed(1); /* initialisation draws from the calling thread's generator */
    ag_module *layers[] = {ag_linear_new(3, 8, true), ag_relu_new(), ag_linear_new(8, 2, true)};
    ag_module *net = ag_sequential_new(3, layers); /* takes ownership of the layers */
    if (!CHECK(net != NULL)) return 1;

    /* Parameters in PyTorch's order, under PyTorch's names and layouts. */
    int np = 0;
    ag_tensor *const *params = ag_module_parameters(net, &np);
    const char *const *names = ag_module_parameter_names(net, &np);
    const char *want[4] = {"0.weight", "0.bias", "2.weight", "2.bias"};
    const int64_t rows[4] = {8, 8, 2, 2};
    CHECK(np == 4 && ag_module_num_parameters(net) == 3 * 8 + 8 + 8 * 2 + 2);
    for (int i = 0; i < np && i < 4; i++) {
        char s[64];
        printf("%-9s %s\n", names[i], ag_shape_str(params[i], s, sizeof s));
        CHECK(strcmp(names[i], want[i]) == 0 && ag_dim(params[i], 0) == rows[i]);
        CHECK(ag_requires_grad(params[i]));
    }
    CHECK(!strcmp(ag_module_kind(net), "Sequential") && ag_module_num_children(net) == 3);
    CHECK(!strcmp(ag_module_kind(ag_module_child(net, 1)), "ReLU"));

    /* Linear weights start in U(-1/sqrt(in), 1/sqrt(in)), as in PyTorch. */
    float w0[24];
    CHECK(ag_to_host(params[0], w0, sizeof w0) == AG_OK);
    for (int i = 0; i < 24; i++) CHECK(fabsf(w0[i]) <= 1.0f / sqrtf(3.0f));

    /* forward is the functional ops on the module's own tensors. */
    ag_scope_begin();
    const int64_t xs[2] = {5, 3};
    ag_tensor *x = ag_randn(2, xs, 0.0f, 1.0f);
    ag_tensor *y = ag_module_forward(net, x);
    ag_tensor *ref = ag_linear(ag_relu(ag_linear(x, params[0], params[1])), params[2], params[3]);
    float hy[10], hr[10];
    CHECK(ag_dim(y, 0) == 5 && ag_dim(y, 1) == 2);
    CHECK(ag_to_host(y, hy, sizeof hy) == AG_OK && ag_to_host(ref, hr, sizeof hr) == AG_OK);
    CHECK(memcmp(hy, hr, sizeof hy) == 0);
    ag_scope_end();

    /* Children added by name; buffers are state but not parameters. */
    ag_module *m = ag_sequential_new(0, NULL);
    CHECK(ag_sequential_add(m, "fc1", ag_linear_new(4, 4, true)) == AG_OK);
    CHECK(ag_sequential_add(m, "bn", ag_batch_norm_new(4, 1)) == AG_OK);
    CHECK(ag_sequential_add(m, "act", ag_tanh_new()) == AG_OK);
    CHECK(ag_sequential_add(m, "drop", ag_dropout_new(0.5f)) == AG_OK);
    CHECK(ag_sequential_add(m, "fc2", ag_linear_new(4, 1, false)) == AG_OK);
    int ns = 0;
    const char *const *snames = ag_module_state_names(m, &ns);
    const char *want_state[] = {"fc1.weight", "fc1.bias", "bn.weight", "bn.bias",
                                "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
                                "fc2.weight"};
    CHECK(ns == 8);
    for (int i = 0; i < ns && i < 8; i++) CHECK(strcmp(snames[i], want_state[i]) == 0);
    ag_module_parameters(m, &np);
    CHECK(np == 5); /* no running statistics among the parameters */
    CHECK(ag_module_get(m, "bn.running_var") != NULL && ag_module_get(m, "nope") == NULL);

    /* Modules start in training mode (dropout active, batch statistics updated);
     * eval mode makes forward deterministic. */
    ag_scope_begin();
    const int64_t bs[2] = {16, 4};
    ag_tensor *xb = ag_randn(2, bs, 0.0f, 1.0f);
    CHECK(ag_module_is_training(m));
    CHECK(ag_module_forward(m, xb) != NULL); /* updates bn's running statistics */
    float rm[4];
    CHECK(ag_to_host(ag_module_get(m, "bn.running_mean"), rm, sizeof rm) == AG_OK);
    CHECK(rm[0] != 0.0f); /* was 0; now 0.1 * the batch mean */
    ag_module_train(m, false); /* eval, recursively */
    CHECK(!ag_module_is_training(ag_module_child(m, 3)));
    float e1[16], e2[16];
    CHECK(ag_to_host(ag_module_forward(m, xb), e1, sizeof e1) == AG_OK);
    CHECK(ag_to_host(ag_module_forward(m, xb), e2, sizeof e2) == AG_OK);
    CHECK(memcmp(e1, e2, sizeof e1) == 0);
    ag_scope_end();

    /* Dropout on its own: eval passes x through, training zeroes each element with
     * probability p and scales the rest by 1 / (1 - p). */
    ag_module *drop = ag_dropout_new(0.5f);
    ag_scope_begin();
    const int64_t k = 1000;
    ag_tensor *ones = ag_ones(1, &k);
    static float d[1000];
    CHECK(ag_to_host(ag_module_forward(drop, ones), d, sizeof d) == AG_OK);
    int zeros = 0;
    for (int i = 0; i < 1000; i++) {
        CHECK(d[i] == 0.0f || d[i] == 2.0f);
        zeros += d[i] == 0.0f;
    }
    CHECK(zeros > 400 && zeros < 600);
    ag_module_train(drop, false);
    CHECK(ag_to_host(ag_module_forward(drop, ones), d, sizeof d) == AG_OK);
    for (int i = 0; i < 1000; i++) CHECK(d[i] == 1.0f);
    ag_scope_end();

    ag_module_free(drop);
    ag_module_free(m);
    ag_module_free(net); /* frees its children and their parameters */
    CHECK(ag_debug_live_buffers() == 0);
    if (failed) fprintf(stderr, "04_modules: %d check(s) failed\n", failed);
    else printf("04_modules: all checks passed\n");
    return failed ? 1 : 0;
}
