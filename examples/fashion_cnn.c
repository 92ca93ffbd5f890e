/* The TensorFlow layers-tutorial CNN on Fashion-MNIST with Adam: conv 5x5x32
 * (padding 2), ReLU, max-pool 2, conv 5x5x64, ReLU, max-pool 2, dense 1024,
 * ReLU, dropout 0.4, dense 10. Full runs take long on a CPU; --limit and
 * --epochs make short ones. */
#include "fashion_common.h"

int main(int argc, char **argv)
{
    fashion_opts o = {.prog = "fashion_cnn", .data_dir = FASHION_DIR, .epochs = 1, .batch = 100,
                      .lr = 1e-3f, .seed = 1};
    int rc = fashion_parse(argc, argv, &o, "the TensorFlow tutorial CNN");
    if (rc) return rc < 0 ? 0 : rc;
    ag_manual_seed(o.seed);
    const ag_conv2d_params same5 = {{1, 1}, {2, 2}, {1, 1}, 1};
    const ag_pool2d_params pool2 = {{2, 2}, {2, 2}, {0, 0}};
    ag_module *layers[] = {
        ag_conv2d_new(1, 32, 5, 5, &same5, true),  ag_relu_new(), ag_max_pool2d_new(&pool2),
        ag_conv2d_new(32, 64, 5, 5, &same5, true), ag_relu_new(), ag_max_pool2d_new(&pool2),
        ag_flatten_new(), ag_linear_new(7 * 7 * 64, 1024, true), ag_relu_new(),
        ag_dropout_new(0.4f), ag_linear_new(1024, 10, true),
    };
    const int64_t sample[3] = {1, 28, 28};
    return fashion_main(&o, ag_sequential_new(sizeof layers / sizeof layers[0], layers), 3,
                        sample);
}
