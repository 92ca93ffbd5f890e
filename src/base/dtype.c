/* Element types: names and sizes, below the backends, which name them in messages. */
#include <stddef.h>

#include "anygrad.h"

static const struct { const char *name; size_t size; } dtypes[] = {
    [AG_F32] = {"f32", 4}, [AG_I32] = {"i32", 4}, [AG_F16] = {"f16", 2}, [AG_BF16] = {"bf16", 2},
    [AG_U8] = {"u8", 1},
};

size_t ag_dtype_size(ag_dtype dt) { return (unsigned)dt <= AG_U8 ? dtypes[dt].size : 0; }
const char *ag_dtype_name(ag_dtype dt) { return (unsigned)dt <= AG_U8 ? dtypes[dt].name : "?"; }
