/* A 784-256-128-10 ReLU MLP trained with Adam on Fashion-MNIST: the issue's
 * "real data" example. See --help; `make demo` runs it for two epochs. */
#include "fashion_common.h"

int main(int argc, char **argv)
{
    fashion_opts o = {.prog = "fashion_mlp", .data_dir = FASHION_DIR, .epochs = 2, .batch = 128,
                      .lr = 1e-3f, .seed = 1};
    int rc = fashion_parse(argc, argv, &o, "a 784-256-128-10 ReLU MLP");
    if (rc) return rc < 0 ? 0 : rc;
    ag_manual_seed(o.seed);
    ag_module *layers[] = {ag_linear_new(784, 256, true), ag_relu_new(),
                           ag_linear_new(256, 128, true), ag_relu_new(),
                           ag_linear_new(128, 10, true)};
    const int64_t sample[1] = {784};
    return fashion_main(&o, ag_sequential_new(5, layers), 1, sample);
}
