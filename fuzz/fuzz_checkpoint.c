/* ag_checkpoint_load into a fixed model (Linear 3->2) and Adam optimizer: the
 * metadata parser (optimizer kind, lr, step counts, epoch) and the checks of
 * names and shapes. A checkpoint that loads must leave a model that trains one
 * step. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    ag_clear_error();
    ag_manual_seed(1);
    ag_module *m = ag_linear_new(3, 2, true);
    int np = 0;
    ag_tensor *const *params = m ? ag_module_parameters(m, &np) : NULL;
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_ADAM, 1e-3f);
    ag_optim *opt = params ? ag_optim_new(&cfg, np, params) : NULL;
    if (!opt) {
        fprintf(stderr, "setup failed: %s\n", ag_last_error());
        abort();
    }
    int64_t epoch = -2;
    ag_status s = ag_checkpoint_load(path, m, opt, &epoch);
    if (s != AG_OK) {
        fuzz_expect_error("ag_checkpoint_load");
    } else {
        if (epoch < -1) abort();
        ag_scope_begin();
        const float xs[6] = {1, 2, 3, 4, 5, 6};
        const int64_t shape[2] = {2, 3};
        ag_tensor *x = ag_from_f32(xs, 2, shape);
        ag_tensor *loss = ag_sum_all(ag_module_forward(m, x));
        if (!loss || ag_backward(loss, NULL) != AG_OK || ag_optim_step(opt) != AG_OK) {
            fprintf(stderr, "training after a successful load failed: %s\n", ag_last_error());
            abort();
        }
        ag_scope_end();
    }
    ag_optim_free(opt);
    ag_module_free(m);
    return 0;
}
