/* Guide, section 9: errors. Each failure returns NULL or a status, and
 * ag_last_error() (per thread) says why; nothing aborts, and the program goes
 * on after every one. Exits 1 on any mismatch. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "anygrad.h"
#include "check.h"

/* The expected status is set, and its message mentions `word`. */
static bool expect(ag_status want, const char *word)
{
    ag_status got = ag_last_status();
    bool ok = got == want && strstr(ag_last_error(), word) != NULL;
    printf("%-17s %s\n", ag_status_name(got), ag_last_error());
    ag_clear_error();
    return ok;
}

/* The usual shape of a function that calls anygrad: a scope for the
 * temporaries, one check at the end thanks to NULL propagation. */
static ag_status mean_of_product(ag_tensor *a, ag_tensor *b, float *out)
{
    ag_scope_begin();
    ag_status s = ag_item(ag_mean_all(ag_mul(a, b)), out); /* a NULL anywhere ends here */
    ag_scope_end();
    return s;
}

static void *thread_errors(void *arg)
{
    bool *ok = arg;
    *ok = ag_last_status() == AG_OK; /* the main thread's error is not visible here */
    ag_tensor *t = ag_idx_load("/nonexistent/file.idx");
    *ok = *ok && t == NULL && ag_last_status() == AG_ERR_IO;
    return NULL;
}

int main(void)
{
    const int64_t s23[2] = {2, 3}, s4 = 4;
    ag_tensor *a = ag_ones(2, s23), *v = ag_ones(1, &s4);
    float r = 0.0f;

    /* AG_ERR_SHAPE, reported through nested calls and by the status return */
    CHECK(mean_of_product(a, v, &r) == AG_ERR_SHAPE);
    CHECK(expect(AG_ERR_SHAPE, "mul"));
    CHECK(mean_of_product(a, a, &r) == AG_OK && r == 1.0f);
    CHECK(ag_last_status() == AG_OK && !strcmp(ag_last_error(), "no error"));

    /* AG_ERR_ARG: a bad argument */
    CHECK(ag_device_by_name("no-such-device") == NULL);
    CHECK(expect(AG_ERR_ARG, "no-such-device")); /* the message lists the devices */
    CHECK(ag_transpose(a, 0, 5) == NULL && expect(AG_ERR_ARG, "axis"));

    /* AG_ERR_DTYPE: int32 tensors have no gradients */
    const int32_t iv[4] = {1, 2, 3, 4};
    ag_tensor *ints = ag_from_i32(iv, 1, &s4);
    CHECK(ag_set_requires_grad(ints, true) == AG_ERR_DTYPE && expect(AG_ERR_DTYPE, "i32"));

    /* AG_ERR_IO: missing or malformed files */
    CHECK(ag_csv_load("/nonexistent/table.csv", false) == NULL && expect(AG_ERR_IO, "cannot open"));

    /* AG_ERR_STATE: misuse, e.g. a handle used after its last release */
    ag_tensor *gone = ag_zeros(1, &s4);
    ag_release(gone);
    CHECK(ag_numel(gone) == 0 && expect(AG_ERR_STATE, "released"));
    ag_release(gone); /* one release too many: reported, nothing freed twice */
    CHECK(expect(AG_ERR_STATE, "released"));

    /* Errors from constructors nest too: Sequential keeps the first one. */
    ag_module *layers[] = {ag_linear_new(3, 0, true), ag_relu_new()};
    CHECK(ag_sequential_new(2, layers) == NULL && expect(AG_ERR_ARG, "out_features"));

    /* AG_ERR_OOM, here injected: the next device allocation fails once; nothing
     * leaks and the next allocation works. */
    int64_t live = ag_debug_live_buffers();
    CHECK(ag_debug_fault(AG_FAULT_ALLOC, 1) == AG_OK);
    CHECK(ag_zeros(2, s23) == NULL && expect(AG_ERR_OOM, "injected"));
    CHECK(ag_debug_live_buffers() == live);
    ag_tensor *fine = ag_zeros(2, s23);
    CHECK(fine != NULL);
    ag_release(fine);

    /* The last error belongs to the thread that made it. */
    CHECK(ag_transpose(a, 0, 5) == NULL); /* leaves AG_ERR_ARG on this thread */
    bool thread_ok = false;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, thread_errors, &thread_ok) == 0 && pthread_join(th, NULL) == 0);
    CHECK(thread_ok);
    CHECK(expect(AG_ERR_ARG, "axis")); /* still this thread's own */

    ag_release(a);
    ag_release(v);
    ag_release(ints);
    CHECK(ag_debug_live_buffers() == 0);
    if (failed) fprintf(stderr, "09_errors: %d check(s) failed\n", failed);
    else printf("09_errors: all checks passed\n");
    return failed ? 1 : 0;
}
