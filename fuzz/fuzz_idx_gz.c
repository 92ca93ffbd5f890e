/* ag_idx_load through the gzip path: the input is an IDX file that the harness
 * gzips first, so mutations reach the IDX parser instead of failing zlib's CRC. */
#include <zlib.h>

#include "fuzz_common.h"

static uint8_t *gzip_bytes(const uint8_t *data, size_t size, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    uLong cap = deflateBound(&z, (uLong)size) + 32;
    uint8_t *out = malloc(cap);
    if (!out) abort();
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    *out_len = (size_t)z.total_out;
    deflateEnd(&z);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t glen = 0;
    uint8_t *gz = gzip_bytes(data, size, &glen);
    ag_clear_error();
    ag_tensor *t = ag_idx_load(fuzz_file(gz, glen));
    free(gz);
    if (!t) {
        fuzz_expect_error("ag_idx_load (gzip)");
        return 0;
    }
    fuzz_touch(t);
    ag_release(t);
    return 0;
}
