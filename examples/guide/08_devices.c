/* Guide, section 8: devices. Lists what the probe found, checks that the
 * default honours AG_DEVICE, moves tensors to every device, runs the same
 * computation there and compares it with the default device's result.
 * Exits 1 on any mismatch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anygrad.h"
#include "check.h"

/* softmax(a b) summed over rows: the same ops on whatever device a and b are on. */
static ag_tensor *compute(ag_tensor *a, ag_tensor *b)
{
    ag_scope_begin();
    const int axes[1] = {0};
    return ag_scope_return(ag_sum(ag_softmax(ag_matmul(a, b), -1), 1, axes, false));
}

int main(void)
{
    /* ---- what is there ---- */
    int n = ag_device_count();
    CHECK(n >= 1);
    for (int i = 0; i < n; i++) {
        ag_device_props p;
        if (!CHECK(ag_device_info(ag_device_get(i), &p) == AG_OK)) continue;
        printf("%c %d  %-7s %-15s %s\n", p.is_default ? '*' : ' ', i, p.backend,
               ag_device_kind_name(p.kind), p.name);
    }
    for (int i = 0; i < ag_device_unavailable_count(); i++) {
        const char *why = NULL;
        const char *backend = ag_device_unavailable(i, &why);
        printf("  %s unavailable: %s\n", backend, why);
    }

    /* ---- the default: AG_DEVICE, else the best by kind ---- */
    ag_device *dflt = ag_device_default();
    if (!CHECK(dflt != NULL)) return 1;
    const char *env = getenv("AG_DEVICE");
    if (env && *env) CHECK(dflt == ag_device_by_name(env));
    printf("default: %s (%s)\n", ag_device_name(dflt), ag_device_backend(dflt));
    CHECK(ag_device_by_name("cpu") != NULL); /* by backend, backend:N or part of a name */

    /* ---- the same computation on every device ---- */
    ag_manual_seed(3); /* random numbers are the same on every backend */
    const int64_t as[2] = {16, 8}, bs[2] = {8, 5};
    ag_tensor *a = ag_randn(2, as, 0.0f, 1.0f), *b = ag_randn(2, bs, 0.0f, 1.0f);
    ag_tensor *ref = compute(a, b);
    float want[5];
    CHECK(ag_to_host(ref, want, sizeof want) == AG_OK);
    for (int i = 0; i < n; i++) {
        ag_device *dev = ag_device_get(i);
        ag_scope_begin();
        ag_tensor *ad = ag_to_device(a, dev), *bd = ag_to_device(b, dev); /* copies */
        ag_tensor *c = compute(ad, bd);
        float got[5] = {0};
        CHECK(ag_device_of(c) == dev && ag_to_host(c, got, sizeof got) == AG_OK);
        float worst = 0.0f;
        for (int j = 0; j < 5; j++) worst = fmaxf(worst, fabsf(got[j] - want[j]));
        printf("device %d: largest difference from the default device %.2g\n", i, (double)worst);
        CHECK(worst <= 1e-5f);
        ag_scope_end();
    }

    /* ---- tensors of two devices do not mix ---- */
    if (n >= 2) {
        ag_device *other = ag_device_get(ag_device_index(dflt) == 0 ? 1 : 0);
        ag_tensor *a2 = ag_to_device(a, other);
        ag_tensor *bad = ag_add(a, a2);
        CHECK(bad == NULL && ag_last_status() == AG_ERR_DEVICE);
        printf("expected error: %s\n", ag_last_error());
        ag_clear_error();
        ag_release(a2);

        /* ag_set_default_device: where this thread's new tensors go */
        CHECK(ag_set_default_device(other) == AG_OK);
        ag_tensor *z = ag_zeros(2, as);
        CHECK(ag_device_of(z) == other && ag_device_default() == other);
        ag_release(z);
        ag_set_default_device(NULL); /* back to AG_DEVICE / the probe's choice */
        CHECK(ag_device_default() == dflt);
    }
    CHECK(ag_device_sync(dflt) == AG_OK); /* waits for queued work (GPU backends) */

    ag_release(a);
    ag_release(b);
    ag_release(ref);
    CHECK(ag_debug_live_buffers() == 0);
    if (failed) fprintf(stderr, "08_devices: %d check(s) failed\n", failed);
    else printf("08_devices: all checks passed\n");
    return failed ? 1 : 0;
}
