/* Shared by the libFuzzer harnesses. The library reads files by path only, so
 * each input is written to one memfd per process (a temporary file where memfd
 * is missing) and handed over as /proc/self/fd/N. */
#ifndef AG_FUZZ_COMMON_H
#define AG_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "anygrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Path naming a file that holds exactly data[0, size). Aborts on setup
 * failure: that is the harness's problem, not an input's. */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("agfuzz", 0);
        if (fd < 0) {
            char tmpl[] = "/tmp/agfuzz.XXXXXX";
            fd = mkstemp(tmpl);
            if (fd >= 0) unlink(tmpl);
        }
        if (fd < 0) {
            perror("fuzz_file");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    size_t at = 0;
    while (at < size) {
        ssize_t k = pwrite(fd, data + at, size - at, (off_t)at);
        if (k <= 0) abort();
        at += (size_t)k;
    }
    return path;
}

/* A failed load must say why: NULL with AG_OK would leave callers guessing. */
static inline void fuzz_expect_error(const char *what)
{
    if (ag_last_status() == AG_OK || !ag_last_error() || !*ag_last_error()) {
        fprintf(stderr, "%s failed without an error message\n", what);
        abort();
    }
}

/* Reads every element back so loaded tensors are touched end to end. */
static inline void fuzz_touch(const ag_tensor *t)
{
    int64_t n = ag_numel(t);
    if (n < 0) abort();
    size_t bytes = (size_t)n * ag_dtype_size(ag_dtype_of(t));
    void *buf = malloc(bytes ? bytes : 1);
    if (!buf) return;
    if (ag_to_host(t, buf, bytes) != AG_OK) {
        fprintf(stderr, "ag_to_host on a loaded tensor failed: %s\n", ag_last_error());
        abort();
    }
    free(buf);
}

#endif
