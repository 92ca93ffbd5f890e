/* The device-name parser: ag_device_by_name and AG_DEVICE through
 * ag_device_default. The input up to its first NUL is the name. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *name = malloc(size + 1);
    if (!name) return 0;
    memcpy(name, data, size);
    name[size] = '\0';

    ag_clear_error();
    ag_device *d = ag_device_by_name(name);
    if (d) {
        if (!ag_device_name(d) || !ag_device_backend(d)) abort();
    } else {
        fuzz_expect_error("ag_device_by_name");
    }

    /* AG_DEVICE is read on every call while no thread default is set; an empty
     * value means "the probe's choice" and must always work. putenv with our
     * own buffer: setenv keeps every old value, which grows without bound. */
    static char *env;
    static size_t env_cap;
    if (size + 11 > env_cap) {
        unsetenv("AG_DEVICE"); /* environ must not point into the old buffer */
        free(env);
        env_cap = size + 64;
        env = malloc(env_cap);
        if (!env) abort();
    }
    snprintf(env, env_cap, "AG_DEVICE=%s", name);
    if (putenv(env) != 0) abort();
    ag_clear_error();
    ag_device *e = ag_device_default();
    if (!*name && !e) abort();
    if (e != d && *name) abort(); /* same parser, same answer */
    if (!e) fuzz_expect_error("ag_device_default");
    unsetenv("AG_DEVICE");
    free(name);
    return 0;
}
