/* ag_idx_load on the raw bytes: plain IDX files and gzip streams alike (the
 * seed corpus has both), so zlib's stream handling is exercised too. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_clear_error();
    ag_tensor *t = ag_idx_load(fuzz_file(data, size));
    if (!t) {
        fuzz_expect_error("ag_idx_load");
        return 0;
    }
    fuzz_touch(t);
    ag_release(t);
    return 0;
}
