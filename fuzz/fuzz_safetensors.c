/* ag_safetensors_load on arbitrary bytes: loads must succeed with readable
 * tensors or fail with a message, never crash or leak. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_clear_error();
    ag_tensor_dict *d = ag_safetensors_load(fuzz_file(data, size));
    if (!d) {
        fuzz_expect_error("ag_safetensors_load");
        return 0;
    }
    for (int i = 0; i < d->n; i++) {
        if (!d->names[i] || !d->tensors[i]) abort();
        if (ag_tensor_dict_get(d, d->names[i]) == NULL) abort();
        fuzz_touch(d->tensors[i]);
    }
    for (int i = 0; i < d->nmeta; i++)
        if (!ag_tensor_dict_meta(d, d->meta_keys[i])) abort();
    ag_tensor_dict_free(d);
    return 0;
}
