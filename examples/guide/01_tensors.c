/* Guide, section 1: tensors and ownership. Creation, shapes, host copies,
 * views, retain/release and NULL propagation. Exits 1 on any mismatch. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "anygrad.h"
#include "check.h"

int main(void)
{
    /* ---- creation: every call returns a new reference the caller owns ---- */
    const int64_t shape[2] = {2, 3};
    const float data[6] = {1, 2, 3, 4, 5, 6};
    ag_tensor *a = ag_from_f32(data, 2, shape); /* copies data onto the default device */
    ag_tensor *half = ag_full(2, shape, 0.5f);
    ag_tensor *two = ag_scalar(2.0f);           /* 0-dim */
    ag_tensor *r = ag_arange(6);                /* 0, 1, ..., 5 as f32 */
    ag_tensor *z = ag_zeros_like(a);

    /* ---- shapes ---- */
    char buf[64];
    printf("a is %s on %s\n", ag_shape_str(a, buf, sizeof buf), ag_device_name(ag_device_of(a)));
    CHECK(strcmp(buf, "[2, 3] f32") == 0);
    CHECK(ag_ndim(a) == 2 && ag_dim(a, 0) == 2 && ag_dim(a, -1) == 3 && ag_numel(a) == 6);
    CHECK(ag_ndim(two) == 0 && ag_numel(two) == 1);
    int64_t s[AG_MAX_DIMS];
    CHECK(ag_shape(a, s) == 2 && s[0] == 2 && s[1] == 3);

    /* ---- ops and host copies: a * 2 + 0.5, broadcasting the scalar ---- */
    ag_tensor *a2 = ag_mul(a, two);
    ag_tensor *b = ag_add(a2, half);
    ag_release(a2); /* outside a scope, release every intermediate */
    float out[6];
    CHECK(ag_to_host(b, out, sizeof out) == AG_OK);
    for (int i = 0; i < 6; i++) CHECK(out[i] == data[i] * 2.0f + 0.5f);

    float sum = 0.0f;
    ag_tensor *total = ag_sum_all(a);
    CHECK(ag_item(total, &sum) == AG_OK && sum == 21.0f);
    ag_release(total);

    /* ---- views share storage; ag_to_host copies in logical (row-major) order ---- */
    ag_tensor *at = ag_transpose(a, 0, 1); /* [3, 2] view, not contiguous */
    CHECK(ag_dim(at, 0) == 3 && !ag_is_contiguous(at));
    CHECK(ag_to_host(at, out, sizeof out) == AG_OK);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) CHECK(out[i * 2 + j] == data[j * 3 + i]);

    ag_tensor *cols = ag_slice(a, 1, 0, 3, 2); /* columns 0 and 2: [2, 2] */
    const float ten[6] = {10, 20, 30, 40, 50, 60};
    CHECK(ag_from_host(a, ten, sizeof ten) == AG_OK); /* writes a's storage in place */
    float c[4];
    CHECK(ag_to_host(cols, c, sizeof c) == AG_OK); /* the view sees the new values */
    CHECK(c[0] == 10 && c[1] == 30 && c[2] == 40 && c[3] == 60);

    const int64_t three_by_two[2] = {3, -1}; /* -1: inferred */
    ag_tensor *rr = ag_reshape(r, 2, three_by_two);
    CHECK(ag_dim(rr, 1) == 2);
    ag_tensor *ri = ag_to_dtype(rr, AG_I32); /* new storage, int32 */
    int32_t iv[6];
    CHECK(ag_dtype_of(ri) == AG_I32 && ag_to_host(ri, iv, sizeof iv) == AG_OK);
    for (int i = 0; i < 6; i++) CHECK(iv[i] == i);

    /* ---- random tensors: reproducible after ag_manual_seed ---- */
    const int64_t n = 1000;
    ag_manual_seed(42);
    ag_tensor *u1 = ag_rand(1, &n, -1.0f, 1.0f);
    ag_manual_seed(42);
    ag_tensor *u2 = ag_rand(1, &n, -1.0f, 1.0f);
    static float h1[1000], h2[1000];
    CHECK(ag_to_host(u1, h1, sizeof h1) == AG_OK && ag_to_host(u2, h2, sizeof h2) == AG_OK);
    CHECK(memcmp(h1, h2, sizeof h1) == 0);
    for (int i = 0; i < 1000; i++) CHECK(h1[i] >= -1.0f && h1[i] < 1.0f);

    /* ---- reference counting ---- */
    ag_tensor *extra = ag_retain(b); /* the same tensor, one more reference */
    CHECK(extra == b);
    ag_release(b);                   /* one reference left: still usable */
    CHECK(ag_numel(extra) == 6 && ag_last_status() == AG_OK);
    ag_release(extra);               /* the last one: b is freed */

    /* ---- NULL propagation: a failed op returns NULL, the next ones pass it on ---- */
    ag_tensor *bad = ag_matmul(a, a);  /* [2, 3] x [2, 3]: AG_ERR_SHAPE */
    ag_tensor *worse = ag_relu(bad);   /* NULL in, NULL out, the first error kept */
    CHECK(bad == NULL && worse == NULL && ag_last_status() == AG_ERR_SHAPE);
    printf("expected error: %s: %s\n", ag_status_name(ag_last_status()), ag_last_error());
    ag_clear_error();
    ag_release(NULL); /* releasing NULL is fine */

    ag_release(a);
    ag_release(half);
    ag_release(two);
    ag_release(r);
    ag_release(z);
    ag_release(at);
    ag_release(cols);
    ag_release(rr);
    ag_release(ri);
    ag_release(u1);
    ag_release(u2);
    CHECK(ag_debug_live_buffers() == 0); /* everything this program made is gone */
    if (failed) fprintf(stderr, "01_tensors: %d check(s) failed\n", failed);
    else printf("01_tensors: all checks passed\n");
    return failed ? 1 : 0;
}
