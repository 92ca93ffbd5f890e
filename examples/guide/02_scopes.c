/* Guide, section 2: scopes. A scope owns every tensor created while it is open;
 * ag_scope_return hands one result out of a function's scope, ag_retain keeps
 * a tensor past the end of the scope. Exits 1 on any mismatch. */
#include <math.h>
#include <stdio.h>

#include "anygrad.h"
#include "check.h"

/* (x - mean) / std over all elements. Its temporaries die with its scope; the
 * result goes to the caller's scope, or to the caller when none is open. */
static ag_tensor *standardize(ag_tensor *x)
{
    ag_scope_begin();
    ag_tensor *centered = ag_sub(x, ag_mean_all(x));
    ag_tensor *std = ag_sqrt(ag_mean_all(ag_square(centered)));
    return ag_scope_return(ag_div(centered, std)); /* NULL passes through */
}

int main(void)
{
    const float data[4] = {1, 2, 3, 6};
    const int64_t n = 4;
    ag_tensor *x = ag_from_f32(data, 1, &n); /* no scope open: ours to release */
    int64_t base = ag_debug_live_buffers();  /* device buffers alive now */

    /* Called outside any scope: the result is ours, the temporaries are gone. */
    ag_tensor *y = standardize(x);
    CHECK(y != NULL && ag_scope_depth() == 0);
    CHECK(ag_debug_live_buffers() == base + 1);
    float h[4];
    CHECK(ag_to_host(y, h, sizeof h) == AG_OK);
    /* mean 3, population std sqrt((4 + 1 + 0 + 9) / 4) = sqrt(3.5) */
    for (int i = 0; i < 4; i++)
        CHECK(fabsf(h[i] - (data[i] - 3.0f) / sqrtf(3.5f)) < 1e-6f);
    ag_release(y);
    CHECK(ag_debug_live_buffers() == base);

    /* A loop whose iterations each free their tensors, keeping the best one. */
    ag_tensor *best = NULL; /* a reference we own, outside every scope */
    float best_val = INFINITY;
    for (int step = 0; step < 10; step++) {
        ag_scope_begin();
        ag_tensor *shifted = ag_add_scalar(x, (float)step - 6.0f);
        ag_tensor *loss = ag_mean_all(ag_square(shifted)); /* nested: no leak in a scope */
        float v = NAN;
        CHECK(ag_item(loss, &v) == AG_OK);
        if (v < best_val) {
            best_val = v;
            ag_release(best);           /* drop the previous best (NULL is fine) */
            best = ag_retain(shifted);  /* survives ag_scope_end */
        }
        ag_scope_end(); /* frees shifted, loss and the square, except what we retained */
        CHECK(ag_debug_live_buffers() == base + 1);
    }
    /* mean((x + s)^2) is smallest at s = -mean(x) = -3, i.e. step 3, where it is
     * the variance 3.5 */
    float first = 0.0f;
    ag_tensor *b0 = ag_slice(best, 0, 0, 1, 1);
    CHECK(ag_item(b0, &first) == AG_OK && first == 1.0f - 3.0f);
    ag_release(b0);
    CHECK(best_val == 3.5f);
    ag_release(best);

    /* Nested scopes: standardize's result lands in the enclosing scope. */
    ag_scope_begin();
    CHECK(ag_scope_depth() == 1);
    ag_tensor *inner = standardize(x);
    CHECK(inner != NULL && ag_scope_depth() == 1);
    ag_scope_end(); /* frees inner too */
    CHECK(ag_scope_depth() == 0 && ag_debug_live_buffers() == base);

    ag_release(x);
    CHECK(ag_debug_live_buffers() == base - 1);
    if (failed) fprintf(stderr, "02_scopes: %d check(s) failed\n", failed);
    else printf("02_scopes: all checks passed\n");
    return failed ? 1 : 0;
}
