/* The guide programs' checks: CHECK(cond) reports a condition that does not
 * hold, with its file, line and the thread's last error, and counts it in
 * `failed`; each program exits 1 when any failed. */
#ifndef GUIDE_CHECK_H
#define GUIDE_CHECK_H
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anygrad.h"

static int failed;
#define CHECK(cond) check((cond), #cond, __FILE__, __LINE__)
static bool check(bool ok, const char *what, const char *file, int line)
{
    if (!ok) {
        const char *base = strrchr(file, '/');
        fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", base ? base + 1 : file, line,
                what, ag_last_error());
        failed++;
    }
    return ok;
}

/* A fresh directory under $TMPDIR (or /tmp) for the files a program writes; the
 * program removes it at the end. False, with the reason printed, on failure. */
static inline bool guide_tmpdir(char *dir, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(dir, size, "%s/anygrad-guide-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (n < 0 || (size_t)n >= size || !mkdtemp(dir)) {
        perror("mkdtemp");
        return false;
    }
    return true;
}

#endif
