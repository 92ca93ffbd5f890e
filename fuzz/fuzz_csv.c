/* ag_csv_load, with and without a header line. A table that loads is 2-D f32
 * with at least one row; with a header it has at most the rows without one. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    int64_t rows[2] = {-1, -1};
    for (int header = 0; header < 2; header++) {
        ag_clear_error();
        ag_tensor *t = ag_csv_load(path, header);
        if (!t) {
            fuzz_expect_error("ag_csv_load");
            continue;
        }
        if (ag_ndim(t) != 2 || ag_dtype_of(t) != AG_F32 || ag_dim(t, 0) < 1 || ag_dim(t, 1) < 1)
            abort();
        rows[header] = ag_dim(t, 0);
        fuzz_touch(t);
        ag_release(t);
    }
    if (rows[0] >= 0 && rows[1] >= 0 && rows[1] != rows[0] - 1) abort();
    return 0;
}
