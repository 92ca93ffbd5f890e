/* Tensor creation, inspection, host copies, views, dtype casts, lifetime and
 * scopes, and RNG reproducibility. Expected values are small and exact, worked
 * out by hand from the documented semantics. */
#include <math.h>
#include <string.h>

#include "anygrad.h"
#include "suites.h"

#define LEN(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

static void clear_error(void) { ag_clear_error(); }

/* t's elements in logical order must equal want exactly. */
static void expect_f32(const ag_tensor *t, const float *want, int64_t n)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(ag_numel(t), n);
    float got[64];
    ck_assert(n <= LEN(got));
    ck_assert_msg(ag_to_host(t, got, (size_t)n * sizeof(float)) == AG_OK, "to_host: %s",
                  ag_last_error());
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "element %lld: got %g, want %g", (long long)i,
                      (double)got[i], (double)want[i]);
}

static void expect_i32(const ag_tensor *t, const int32_t *want, int64_t n)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(ag_numel(t), n);
    int32_t got[64];
    ck_assert(n <= LEN(got));
    ck_assert_msg(ag_to_host(t, got, (size_t)n * sizeof(int32_t)) == AG_OK, "to_host: %s",
                  ag_last_error());
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "element %lld: got %d, want %d", (long long)i, got[i],
                      want[i]);
}

static void expect_shape(const ag_tensor *t, int ndim, const int64_t *shape)
{
    ck_assert_ptr_nonnull(t);
    int64_t got[AG_MAX_DIMS];
    ck_assert_int_eq(ag_ndim(t), ndim);
    ck_assert_int_eq(ag_shape(t, got), ndim);
    for (int d = 0; d < ndim; d++) ck_assert_int_eq(got[d], shape[d]);
}

static void fill_all(ag_tensor *t, float v, int64_t n)
{
    float buf[64];
    ck_assert(n <= LEN(buf));
    for (int64_t i = 0; i < n; i++) buf[i] = v;
    ck_assert_int_eq(ag_from_host(t, buf, (size_t)n * sizeof(float)), AG_OK);
}

/* ---- creation ------------------------------------------------------------ */

START_TEST(test_create_filled)
{
    ag_scope_begin();
    const int64_t s[2] = {2, 3};
    ag_tensor *z = ag_zeros(2, s), *o = ag_ones(2, s), *f = ag_full(2, s, 2.5f);
    const float zw[6] = {0}, ow[6] = {1, 1, 1, 1, 1, 1}, fw[6] = {2.5f, 2.5f, 2.5f, 2.5f, 2.5f, 2.5f};
    expect_shape(z, 2, s);
    expect_f32(z, zw, 6);
    expect_f32(o, ow, 6);
    expect_f32(f, fw, 6);
    ck_assert_int_eq(ag_dtype_of(z), AG_F32);
    ck_assert(ag_is_contiguous(z));
    ck_assert(!ag_requires_grad(z));

    ag_tensor *e = ag_empty(2, s, AG_I32);
    expect_shape(e, 2, s);
    ck_assert_int_eq(ag_dtype_of(e), AG_I32);
    ck_assert_int_eq(ag_numel(e), 6);

    ag_tensor *e32 = ag_empty(2, s, AG_F32);
    ck_assert_int_eq(ag_dtype_of(e32), AG_F32);
    ck_assert_ptr_nonnull(ag_device_of(e32));
    ck_assert_ptr_eq(ag_device_of(e32), ag_device_default());
    ag_scope_end();
}
END_TEST

START_TEST(test_create_from_host)
{
    ag_scope_begin();
    const float fv[6] = {1.5f, -2, 3, 0.25f, -0.0f, 1e6f};
    const int32_t iv[4] = {7, -3, 0, 2147483647};
    const int64_t s23[2] = {2, 3}, s4[1] = {4};
    ag_tensor *f = ag_from_f32(fv, 2, s23);
    expect_shape(f, 2, s23);
    expect_f32(f, fv, 6);
    ag_tensor *i = ag_from_i32(iv, 1, s4);
    expect_shape(i, 1, s4);
    ck_assert_int_eq(ag_dtype_of(i), AG_I32);
    expect_i32(i, iv, 4);

    /* The tensor holds its own copy of the host data. */
    float mutable[2] = {1, 2};
    const int64_t s2 = 2;
    ag_tensor *m = ag_from_f32(mutable, 1, &s2);
    mutable[0] = 99;
    const float mw[2] = {1, 2};
    expect_f32(m, mw, 2);

    ag_tensor *r = ag_arange(5);
    const float rw[5] = {0, 1, 2, 3, 4};
    const int64_t s5 = 5;
    expect_shape(r, 1, &s5);
    expect_f32(r, rw, 5);
    ag_tensor *r0 = ag_arange(0);
    ck_assert_ptr_nonnull(r0);
    ck_assert_int_eq(ag_numel(r0), 0);

    ag_tensor *zl = ag_zeros_like(f);
    const float zw[6] = {0};
    expect_shape(zl, 2, s23);
    expect_f32(zl, zw, 6);
    ag_tensor *ol = ag_ones_like(f);
    const float ow[6] = {1, 1, 1, 1, 1, 1};
    expect_f32(ol, ow, 6);
    ag_tensor *zi = ag_zeros_like(i);
    ck_assert_int_eq(ag_dtype_of(zi), AG_I32);
    const int32_t ziw[4] = {0};
    expect_i32(zi, ziw, 4);
    ag_scope_end();
}
END_TEST

START_TEST(test_scalar_0dim)
{
    ag_scope_begin();
    ag_tensor *s = ag_scalar(3.5f);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(ag_ndim(s), 0);
    ck_assert_int_eq(ag_numel(s), 1);
    int64_t shape[AG_MAX_DIMS];
    ck_assert_int_eq(ag_shape(s, shape), 0);
    float v = 0;
    ck_assert_int_eq(ag_item(s, &v), AG_OK);
    ck_assert(v == 3.5f);
    char buf[32];
    ck_assert_str_eq(ag_shape_str(s, buf, sizeof buf), "[] f32");
    ck_assert(ag_is_contiguous(s));
    /* A 0-dim tensor has no axes. */
    ck_assert_int_eq(ag_dim(s, 0), -1);

    /* ndim 0 through the generic constructors too. */
    ag_tensor *z = ag_zeros(0, NULL);
    ck_assert_ptr_nonnull(z);
    ck_assert_int_eq(ag_ndim(z), 0);
    ck_assert_int_eq(ag_item(z, &v), AG_OK);
    ck_assert(v == 0.0f);
    const float one = 7.0f;
    ag_tensor *h = ag_from_f32(&one, 0, NULL);
    ck_assert_int_eq(ag_item(h, &v), AG_OK);
    ck_assert(v == 7.0f);
    ag_scope_end();
}
END_TEST

START_TEST(test_size_zero)
{
    ag_scope_begin();
    const int64_t s[2] = {0, 3};
    ag_tensor *z = ag_zeros(2, s);
    ck_assert_ptr_nonnull(z);
    expect_shape(z, 2, s);
    ck_assert_int_eq(ag_numel(z), 0);
    ck_assert_int_eq(ag_dim(z, 0), 0);
    ck_assert_int_eq(ag_dim(z, 1), 3);
    float dummy[1] = {42};
    ck_assert_int_eq(ag_to_host(z, dummy, 0), AG_OK);
    ck_assert(dummy[0] == 42);
    ck_assert_int_eq(ag_from_host(z, dummy, 0), AG_OK);

    const int64_t s30[2] = {3, 0};
    ag_tensor *r = ag_reshape(z, 2, s30);
    ck_assert_msg(r, "reshape [0, 3] -> [3, 0]: %s", ag_last_error());
    expect_shape(r, 2, s30);
    ag_tensor *t = ag_transpose(z, 0, 1);
    expect_shape(t, 2, s30);
    ag_tensor *e = ag_empty(1, (const int64_t[]){0}, AG_I32);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(ag_numel(e), 0);
    char buf[32];
    ck_assert_str_eq(ag_shape_str(z, buf, sizeof buf), "[0, 3] f32");
    ag_scope_end();
}
END_TEST

START_TEST(test_eight_dims)
{
    ag_scope_begin();
    const int64_t s[8] = {1, 2, 1, 2, 1, 2, 1, 2};
    ag_tensor *o = ag_ones(8, s);
    ck_assert_msg(o, "ones 8 dims: %s", ag_last_error());
    expect_shape(o, 8, s);
    ck_assert_int_eq(ag_numel(o), 16);
    float want[16];
    for (int i = 0; i < 16; i++) want[i] = 1;
    expect_f32(o, want, 16);
    char buf[64];
    ck_assert_str_eq(ag_shape_str(o, buf, sizeof buf), "[1, 2, 1, 2, 1, 2, 1, 2] f32");
    ck_assert_int_eq(ag_dim(o, -1), 2);
    ck_assert_int_eq(ag_dim(o, -8), 1);

    /* A permutation of all eight axes, then back to a flat vector. */
    ag_tensor *a = ag_reshape(ag_arange(16), 8, s);
    const int perm[8] = {7, 6, 5, 4, 3, 2, 1, 0};
    ag_tensor *p = ag_permute(a, perm);
    const int64_t rs[8] = {2, 1, 2, 1, 2, 1, 2, 1};
    expect_shape(p, 8, rs);
    /* Reversing the four size-2 axes reverses the bits of the index. */
    float pw[16];
    for (int i = 0; i < 16; i++)
        pw[i] = (float)(((i & 1) << 3) | ((i & 2) << 1) | ((i & 4) >> 1) | ((i & 8) >> 3));
    expect_f32(p, pw, 16);
    ag_scope_end();
}
END_TEST

/* ---- inspection ---------------------------------------------------------- */

START_TEST(test_inspection)
{
    ag_scope_begin();
    const int64_t s[3] = {2, 3, 4};
    ag_tensor *t = ag_zeros(3, s);
    ck_assert_int_eq(ag_ndim(t), 3);
    ck_assert_int_eq(ag_numel(t), 24);
    ck_assert_int_eq(ag_dim(t, 0), 2);
    ck_assert_int_eq(ag_dim(t, 2), 4);
    ck_assert_int_eq(ag_dim(t, -1), 4);
    ck_assert_int_eq(ag_dim(t, -2), 3);
    ck_assert_int_eq(ag_dim(t, -3), 2);
    ck_assert_int_eq(ag_dim(t, 3), -1);
    ck_assert_int_eq(ag_dim(t, -4), -1);
    ck_assert_int_eq(ag_dtype_of(t), AG_F32);
    ck_assert(ag_is_contiguous(t));

    char buf[64];
    ck_assert_str_eq(ag_shape_str(t, buf, sizeof buf), "[2, 3, 4] f32");
    ag_tensor *i = ag_empty(1, (const int64_t[]){5}, AG_I32);
    ck_assert_str_eq(ag_shape_str(i, buf, sizeof buf), "[5] i32");
    /* A short buffer is truncated and terminated, never overrun. */
    char small[6];
    memset(small, 'x', sizeof small);
    ag_shape_str(t, small, 5);
    ck_assert_uint_lt(strlen(small), 5);
    ck_assert_int_eq(small[5], 'x');

    ck_assert_uint_eq(ag_dtype_size(AG_F32), 4);
    ck_assert_uint_eq(ag_dtype_size(AG_I32), 4);
    ck_assert_str_eq(ag_dtype_name(AG_F32), "f32");
    ck_assert_str_eq(ag_dtype_name(AG_I32), "i32");
    ag_scope_end();
}
END_TEST

START_TEST(test_host_round_trip)
{
    ag_scope_begin();
    const int64_t s[2] = {2, 2};
    ag_tensor *f = ag_empty(2, s, AG_F32);
    const float in[4] = {0.1f, -3.75f, 1e-30f, 65504.0f};
    ck_assert_int_eq(ag_from_host(f, in, sizeof in), AG_OK);
    float out[4] = {0};
    ck_assert_int_eq(ag_to_host(f, out, sizeof out), AG_OK);
    ck_assert_mem_eq(in, out, sizeof in);

    ag_tensor *i = ag_empty(2, s, AG_I32);
    const int32_t iin[4] = {-2147483647 - 1, -1, 0, 123456789};
    ck_assert_int_eq(ag_from_host(i, iin, sizeof iin), AG_OK);
    int32_t iout[4] = {0};
    ck_assert_int_eq(ag_to_host(i, iout, sizeof iout), AG_OK);
    ck_assert_mem_eq(iin, iout, sizeof iin);

    float v = 0;
    ag_tensor *one = ag_full(2, (const int64_t[]){1, 1}, -4.5f);
    ck_assert_int_eq(ag_item(one, &v), AG_OK);
    ck_assert(v == -4.5f);
    const int32_t seven = 7;
    ag_tensor *iv = ag_from_i32(&seven, 1, (const int64_t[]){1});
    ck_assert_int_eq(ag_item(iv, &v), AG_OK);
    ck_assert(v == 7.0f);
    ag_scope_end();
}
END_TEST

/* ---- views --------------------------------------------------------------- */

START_TEST(test_reshape)
{
    ag_scope_begin();
    ag_tensor *a = ag_arange(12);
    const int64_t req[2] = {3, -1}, want[2] = {3, 4};
    ag_tensor *r = ag_reshape(a, 2, req);
    expect_shape(r, 2, want);
    ck_assert(ag_is_contiguous(r));
    float w[12];
    for (int i = 0; i < 12; i++) w[i] = (float)i;
    expect_f32(r, w, 12);
    ag_tensor *r3 = ag_reshape(a, 3, (const int64_t[]){-1, 2, 3});
    expect_shape(r3, 3, (const int64_t[]){2, 2, 3});

    /* A contiguous reshape shares storage both ways. */
    fill_all(r, 5.0f, 12);
    for (int i = 0; i < 12; i++) w[i] = 5;
    expect_f32(a, w, 12);

    /* Reshaping a non-contiguous view copies and gives logical order. */
    ag_tensor *b = ag_reshape(ag_arange(6), 2, (const int64_t[]){2, 3});
    ag_tensor *bt = ag_transpose(b, 0, 1);
    ag_tensor *flat = ag_reshape(bt, 1, (const int64_t[]){-1});
    const float fw[6] = {0, 3, 1, 4, 2, 5};
    expect_f32(flat, fw, 6);
    /* ...and is a copy: writing it leaves b alone */
    fill_all(flat, 7.0f, 6);
    const float b6[6] = {0, 1, 2, 3, 4, 5};
    expect_f32(b, b6, 6);

    /* A slice whose rows are whole blocks (attention's heads) reshapes as a
     * view: [2, 8] -> columns 4..7 -> [2, 2, 2] shares storage. */
    ag_tensor *c = ag_reshape(ag_arange(16), 2, (const int64_t[]){2, 8});
    ag_tensor *heads = ag_reshape(ag_slice(c, 1, 4, 8, 1), 3, (const int64_t[]){2, 2, 2});
    const float hw[8] = {4, 5, 6, 7, 12, 13, 14, 15};
    expect_f32(heads, hw, 8);
    fill_all(heads, -1.0f, 8);
    float cw[16];
    for (int i = 0; i < 16; i++) cw[i] = i % 8 >= 4 ? -1.0f : (float)i;
    expect_f32(c, cw, 16);
    /* an expanded column splits as a view too, and merges only by copying */
    ag_tensor *col = ag_expand(ag_reshape(ag_arange(3), 2, (const int64_t[]){3, 1}), 2,
                               (const int64_t[]){3, 4});
    const float ew[12] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2};
    expect_f32(ag_reshape(col, 3, (const int64_t[]){3, 2, 2}), ew, 12);
    expect_f32(ag_reshape(col, 1, (const int64_t[]){12}), ew, 12);
    ag_scope_end();
}
END_TEST

START_TEST(test_permute_transpose)
{
    ag_scope_begin();
    ag_tensor *a = ag_reshape(ag_arange(24), 3, (const int64_t[]){2, 3, 4});
    const int perm[3] = {2, 0, 1};
    ag_tensor *p = ag_permute(a, perm);
    expect_shape(p, 3, (const int64_t[]){4, 2, 3});
    ck_assert(!ag_is_contiguous(p));
    float w[24];
    int n = 0;
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) w[n++] = (float)(i * 12 + j * 4 + k);
    expect_f32(p, w, 24);

    /* Negative entries in perm count from the end. */
    ag_tensor *pn = ag_permute(a, (const int[]){-1, 0, -2});
    expect_f32(pn, w, 24);

    ag_tensor *m = ag_reshape(ag_arange(6), 2, (const int64_t[]){2, 3});
    ag_tensor *t = ag_transpose(m, 0, 1);
    expect_shape(t, 2, (const int64_t[]){3, 2});
    const float tw[6] = {0, 3, 1, 4, 2, 5};
    expect_f32(t, tw, 6);
    ag_tensor *tn = ag_transpose(m, -1, -2);
    expect_f32(tn, tw, 6);
    ag_tensor *tt = ag_transpose(t, 1, 0);
    const float mw[6] = {0, 1, 2, 3, 4, 5};
    expect_f32(tt, mw, 6);
    ck_assert(ag_is_contiguous(tt));

    /* Writing through the transposed view lands in the base's storage. */
    const float in[6] = {10, 11, 12, 13, 14, 15}; /* t[r][c] */
    ck_assert_int_eq(ag_from_host(t, in, sizeof in), AG_OK);
    const float mw2[6] = {10, 12, 14, 11, 13, 15};
    expect_f32(m, mw2, 6);
    ag_scope_end();
}
END_TEST

START_TEST(test_slice)
{
    ag_scope_begin();
    ag_tensor *a = ag_arange(10);
    ag_tensor *s = ag_slice(a, 0, -7, 10, 2); /* 3, 5, 7, 9 */
    expect_shape(s, 1, (const int64_t[]){4});
    const float sw[4] = {3, 5, 7, 9};
    expect_f32(s, sw, 4);
    ck_assert(!ag_is_contiguous(s));

    ag_tensor *s2 = ag_slice(a, -1, -7, -1, 2); /* 3, 5, 7 */
    const float s2w[3] = {3, 5, 7};
    expect_f32(s2, s2w, 3);
    ag_tensor *s3 = ag_slice(a, 0, 8, 100, 1); /* end clamps */
    const float s3w[2] = {8, 9};
    expect_f32(s3, s3w, 2);
    ag_tensor *s4 = ag_slice(a, 0, 6, 2, 1); /* empty */
    ck_assert_ptr_nonnull(s4);
    ck_assert_int_eq(ag_numel(s4), 0);

    /* ag_from_host into the strided slice writes exactly those elements. */
    const float in[4] = {-1, -2, -3, -4};
    ck_assert_int_eq(ag_from_host(s, in, sizeof in), AG_OK);
    const float aw[10] = {0, 1, 2, -1, 4, -2, 6, -3, 8, -4};
    expect_f32(a, aw, 10);

    /* Columns 1 and 3 of a [3, 4] matrix. */
    ag_tensor *m = ag_zeros(2, (const int64_t[]){3, 4});
    ag_tensor *cols = ag_slice(m, 1, 1, 4, 2);
    expect_shape(cols, 2, (const int64_t[]){3, 2});
    const float cin[6] = {1, 2, 3, 4, 5, 6};
    ck_assert_int_eq(ag_from_host(cols, cin, sizeof cin), AG_OK);
    const float mw[12] = {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6};
    expect_f32(m, mw, 12);
    expect_f32(cols, cin, 6);

    /* A row slice of a matrix with an offset, read back in logical order. */
    ag_tensor *rows = ag_slice(m, 0, 1, 3, 1);
    const float rw[8] = {0, 3, 0, 4, 0, 5, 0, 6};
    expect_f32(rows, rw, 8);
    ag_scope_end();
}
END_TEST

START_TEST(test_expand)
{
    ag_scope_begin();
    const float v[3] = {1, 2, 3};
    ag_tensor *c = ag_from_f32(v, 2, (const int64_t[]){3, 1});
    ag_tensor *e = ag_expand(c, 2, (const int64_t[]){3, 4});
    expect_shape(e, 2, (const int64_t[]){3, 4});
    ck_assert(!ag_is_contiguous(e));
    const float ew[12] = {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
    expect_f32(e, ew, 12);

    /* Stride 0: one stored element per row, so changing the base changes the row. */
    const float v2[3] = {7, 8, 9};
    ck_assert_int_eq(ag_from_host(c, v2, sizeof v2), AG_OK);
    const float ew2[12] = {7, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9};
    expect_f32(e, ew2, 12);

    /* New leading axes, and -1 keeps a size. */
    ag_tensor *e3 = ag_expand(c, 3, (const int64_t[]){2, -1, 2});
    expect_shape(e3, 3, (const int64_t[]){2, 3, 2});
    const float e3w[12] = {7, 7, 8, 8, 9, 9, 7, 7, 8, 8, 9, 9};
    expect_f32(e3, e3w, 12);

    /* A contiguous copy of an expanded view is independent of the base. */
    ag_tensor *ce = ag_contiguous(e);
    ck_assert(ag_is_contiguous(ce));
    ck_assert_int_eq(ag_from_host(c, v, sizeof v), AG_OK);
    expect_f32(ce, ew2, 12);
    ag_scope_end();
}
END_TEST

START_TEST(test_squeeze_unsqueeze_flatten)
{
    ag_scope_begin();
    ag_tensor *a = ag_reshape(ag_arange(6), 3, (const int64_t[]){3, 1, 2});
    ag_tensor *s = ag_squeeze(a, 1);
    expect_shape(s, 2, (const int64_t[]){3, 2});
    ag_tensor *sn = ag_squeeze(a, -2);
    expect_shape(sn, 2, (const int64_t[]){3, 2});
    const float w[6] = {0, 1, 2, 3, 4, 5};
    expect_f32(s, w, 6);

    ag_tensor *u0 = ag_unsqueeze(s, 0);
    expect_shape(u0, 3, (const int64_t[]){1, 3, 2});
    ag_tensor *u1 = ag_unsqueeze(s, -1);
    expect_shape(u1, 3, (const int64_t[]){3, 2, 1});
    ag_tensor *u2 = ag_unsqueeze(s, 1);
    expect_shape(u2, 3, (const int64_t[]){3, 1, 2});
    expect_f32(u1, w, 6);
    ag_tensor *us = ag_unsqueeze(ag_scalar(2.0f), 0);
    expect_shape(us, 1, (const int64_t[]){1});

    /* Unsqueeze of a transposed view keeps its logical order. */
    ag_tensor *t = ag_transpose(s, 0, 1); /* [2, 3]: 0 2 4 / 1 3 5 */
    ag_tensor *tu = ag_unsqueeze(t, 1);
    expect_shape(tu, 3, (const int64_t[]){2, 1, 3});
    const float tw[6] = {0, 2, 4, 1, 3, 5};
    expect_f32(tu, tw, 6);

    ag_tensor *b = ag_reshape(ag_arange(24), 3, (const int64_t[]){2, 3, 4});
    ag_tensor *f1 = ag_flatten(b, 1, -1);
    expect_shape(f1, 2, (const int64_t[]){2, 12});
    ag_tensor *f0 = ag_flatten(b, 0, 1);
    expect_shape(f0, 2, (const int64_t[]){6, 4});
    ag_tensor *fa = ag_flatten(b, 0, -1);
    expect_shape(fa, 1, (const int64_t[]){24});
    float bw[24];
    for (int i = 0; i < 24; i++) bw[i] = (float)i;
    expect_f32(fa, bw, 24);
    ag_scope_end();
}
END_TEST

START_TEST(test_contiguous_detach_clone)
{
    ag_scope_begin();
    ag_tensor *m = ag_reshape(ag_arange(6), 2, (const int64_t[]){2, 3});
    /* Already contiguous: the result shares m's storage. */
    ag_tensor *c = ag_contiguous(m);
    ck_assert(ag_is_contiguous(c));
    fill_all(c, 1.0f, 6);
    const float ones[6] = {1, 1, 1, 1, 1, 1};
    expect_f32(m, ones, 6);

    /* Not contiguous: a copy in logical order, independent of m. */
    const float base[6] = {0, 1, 2, 3, 4, 5};
    ck_assert_int_eq(ag_from_host(m, base, sizeof base), AG_OK);
    ag_tensor *t = ag_transpose(m, 0, 1);
    ag_tensor *tc = ag_contiguous(t);
    ck_assert(ag_is_contiguous(tc));
    expect_shape(tc, 2, (const int64_t[]){3, 2});
    const float tw[6] = {0, 3, 1, 4, 2, 5};
    expect_f32(tc, tw, 6);
    fill_all(tc, 9.0f, 6);
    expect_f32(m, base, 6);

    /* detach shares storage and drops requires_grad. */
    ck_assert_int_eq(ag_set_requires_grad(m, true), AG_OK);
    ag_tensor *d = ag_detach(m);
    ck_assert(!ag_requires_grad(d));
    ck_assert(ag_requires_grad(m));
    expect_f32(d, base, 6);
    fill_all(d, 2.0f, 6);
    const float twos[6] = {2, 2, 2, 2, 2, 2};
    expect_f32(m, twos, 6);

    /* clone copies and stays differentiable. */
    ag_tensor *k = ag_clone(m);
    ck_assert(ag_requires_grad(k));
    expect_f32(k, twos, 6);
    ck_assert_int_eq(ag_from_host(m, base, sizeof base), AG_OK);
    expect_f32(k, twos, 6);

    /* clone of a non-contiguous view is a contiguous copy in logical order. */
    ag_tensor *kt = ag_clone(ag_transpose(m, 0, 1));
    ck_assert(ag_is_contiguous(kt));
    expect_f32(kt, tw, 6);
    ag_scope_end();
}
END_TEST

START_TEST(test_to_dtype)
{
    ag_scope_begin();
    const float fv[6] = {1.7f, -1.7f, 2.0f, -0.5f, 0.99f, -3.0f};
    ag_tensor *f = ag_from_f32(fv, 1, (const int64_t[]){6});
    ag_tensor *i = ag_to_dtype(f, AG_I32);
    ck_assert_int_eq(ag_dtype_of(i), AG_I32);
    expect_shape(i, 1, (const int64_t[]){6});
    const int32_t iw[6] = {1, -1, 2, 0, 0, -3};
    expect_i32(i, iw, 6);

    const int32_t iv[4] = {3, -4, 0, 1000000};
    ag_tensor *j = ag_from_i32(iv, 2, (const int64_t[]){2, 2});
    ag_tensor *g = ag_to_dtype(j, AG_F32);
    ck_assert_int_eq(ag_dtype_of(g), AG_F32);
    const float gw[4] = {3, -4, 0, 1000000};
    expect_f32(g, gw, 4);

    /* A cast of a non-contiguous view follows logical order. */
    ag_tensor *jt = ag_to_dtype(ag_transpose(j, 0, 1), AG_F32);
    const float jtw[4] = {3, 0, -4, 1000000};
    expect_f32(jt, jtw, 4);

    /* Same dtype: a copy, not an alias. */
    ag_tensor *same = ag_to_dtype(f, AG_F32);
    expect_f32(same, fv, 6);
    fill_all(same, 0.0f, 6);
    expect_f32(f, fv, 6);
    ag_scope_end();
}
END_TEST

/* u8 is data-set storage: on the CPU it is created, viewed, concatenated and
 * converted; other backends keep its bytes and refuse conversions clearly; no
 * compute op takes it. */
START_TEST(test_u8)
{
    ag_scope_begin();
    const uint8_t bv[6] = {0, 1, 127, 128, 200, 255};
    ag_tensor *b = ag_from_u8(bv, 2, (const int64_t[]){2, 3});
    ck_assert_msg(b != NULL, "%s", ag_last_error());
    ck_assert_int_eq(ag_dtype_of(b), AG_U8);
    uint8_t back[6];
    ck_assert_int_eq(ag_to_host(b, back, sizeof back), AG_OK);
    ck_assert(!memcmp(back, bv, 6));
    /* a view at an odd byte offset reads its own bytes */
    uint8_t two[2];
    ck_assert_int_eq(ag_to_host(ag_slice(ag_reshape(b, 1, (const int64_t[]){6}), 0, 3, 5, 1), two, 2),
                     AG_OK);
    ck_assert(two[0] == 128 && two[1] == 200);
    ck_assert_int_eq(ag_to_dtype(b, AG_F16) == NULL, 1);
    ag_tensor *bad = ag_add(b, b);
    ck_assert_ptr_null(bad);
    ck_assert_int_eq(ag_last_status(), AG_ERR_DTYPE);

    bool cpu = !strcmp(ag_device_backend(ag_device_default()), "cpu");
    ag_tensor *f = ag_to_dtype(ag_transpose(b, 0, 1), AG_F32);
    if (!cpu) {
        /* GPU copies convert f32 and i32 only: a clear error, no wrong values */
        ck_assert_ptr_null(f);
        ck_assert_int_eq(ag_last_status(), AG_ERR_DTYPE);
        ck_assert_msg(strstr(ag_last_error(), "u8"), "%s", ag_last_error());
        ag_scope_end();
        return;
    }
    const float fw[6] = {0, 128, 1, 200, 127, 255};
    expect_f32(f, fw, 6);
    ag_tensor *i = ag_to_dtype(b, AG_I32);
    const int32_t iw[6] = {0, 1, 127, 128, 200, 255};
    expect_i32(i, iw, 6);
    float it = 0;
    ck_assert_int_eq(ag_item(ag_slice(ag_reshape(b, 1, (const int64_t[]){6}), 0, 4, 5, 1), &it),
                     AG_OK);
    ck_assert(it == 200.0f);

    /* into u8: truncation toward zero, saturation, NaN to 0 */
    const float fv[8] = {-1.0f, 0.9f, 1.5f, 254.99f, 255.0f, 256.0f, 1e30f, NAN};
    const uint8_t fwant[8] = {0, 0, 1, 254, 255, 255, 255, 0};
    uint8_t got[8];
    ag_tensor *fu = ag_to_dtype(ag_from_f32(fv, 1, (const int64_t[]){8}), AG_U8);
    ck_assert_int_eq(ag_to_host(fu, got, 8), AG_OK);
    ck_assert_msg(!memcmp(got, fwant, 8), "f32 -> u8: %u %u %u %u %u %u %u %u", got[0], got[1],
                  got[2], got[3], got[4], got[5], got[6], got[7]);
    const int32_t iv[4] = {-7, 0, 300, 77};
    const uint8_t iwant[4] = {0, 0, 255, 77};
    ag_tensor *iu = ag_to_dtype(ag_from_i32(iv, 1, (const int64_t[]){4}), AG_U8);
    ck_assert_int_eq(ag_to_host(iu, got, 4), AG_OK);
    ck_assert(!memcmp(got, iwant, 4));

    /* strided copies and concatenation keep bytes in logical order */
    ag_tensor *bt = ag_contiguous(ag_transpose(b, 0, 1));
    const uint8_t btw[6] = {0, 128, 1, 200, 127, 255};
    ck_assert_int_eq(ag_to_host(bt, got, 6), AG_OK);
    ck_assert(!memcmp(got, btw, 6));
    ag_tensor *parts[2] = {b, b};
    ag_tensor *cat = ag_concat(2, parts, 1);
    ck_assert_msg(cat != NULL, "%s", ag_last_error());
    uint8_t cw[12];
    ck_assert_int_eq(ag_to_host(cat, cw, 12), AG_OK);
    ck_assert(!memcmp(cw, bv, 3) && !memcmp(cw + 3, bv, 3) && !memcmp(cw + 9, bv + 3, 3));
    ag_scope_end();
}
END_TEST

/* ---- lifetime ------------------------------------------------------------ */

START_TEST(test_refcount)
{
    ag_tensor *t = ag_ones(1, (const int64_t[]){3});
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_eq(ag_retain(t), t);
    ag_release(t);
    const float w[3] = {1, 1, 1};
    expect_f32(t, w, 3); /* still alive: one reference left */
    ag_release(t);
    ag_release(NULL);
    ck_assert_ptr_null(ag_retain(NULL));

    /* A view keeps the storage alive after its base is released. */
    ag_tensor *base = ag_arange(4);
    ag_tensor *v = ag_reshape(base, 2, (const int64_t[]){2, 2});
    ag_tensor *s = ag_slice(base, 0, 1, 4, 2);
    ag_release(base);
    const float vw[4] = {0, 1, 2, 3}, sw[2] = {1, 3};
    expect_f32(v, vw, 4);
    expect_f32(s, sw, 2);
    ag_release(v);
    expect_f32(s, sw, 2);
    ag_release(s);

    /* An op's result does not depend on the caller keeping its inputs. */
    ag_tensor *a = ag_full(1, (const int64_t[]){2}, 3.0f);
    ag_tensor *b = ag_add(a, a);
    ag_release(a);
    const float bw[2] = {6, 6};
    expect_f32(b, bw, 2);
    ag_release(b);
}
END_TEST

START_TEST(test_scope_basic)
{
    /* Created outside any scope: the caller owns it, a scope does not free it. */
    ag_tensor *a = ag_full(1, (const int64_t[]){2}, 2.0f);
    ag_scope_begin();
    ag_tensor *b = ag_mul(a, a);
    ag_tensor *c = ag_add(b, a);
    const float cw[2] = {6, 6};
    expect_f32(c, cw, 2);
    /* A retained temporary survives the scope with one reference. */
    ag_tensor *kept = ag_retain(c);
    ag_scope_end();
    expect_f32(kept, cw, 2);
    ag_release(kept);
    const float aw[2] = {2, 2};
    expect_f32(a, aw, 2);
    ag_release(a);

    /* Many temporaries in a loop go away with the scope. */
    ag_scope_begin();
    ag_tensor *x = ag_zeros(1, (const int64_t[]){4});
    for (int i = 0; i < 1000; i++) x = ag_add_scalar(x, 1.0f);
    const float xw[4] = {1000, 1000, 1000, 1000};
    expect_f32(x, xw, 4);
    ag_scope_end();

    /* An empty scope is harmless. */
    ag_scope_begin();
    ag_scope_end();
}
END_TEST

START_TEST(test_scope_return)
{
    ag_scope_begin();
    ag_tensor *a = ag_arange(3);
    ag_tensor *t = ag_scope_return(ag_mul_scalar(a, 2.0f));
    /* No scope is open now: the caller owns t. */
    ck_assert_ptr_nonnull(t);
    const float w[3] = {0, 2, 4};
    expect_f32(t, w, 3);
    ag_release(t);

    /* Nested: the inner result belongs to the outer scope. */
    ag_scope_begin();
    ag_tensor *outer = ag_ones(1, (const int64_t[]){3});
    ag_scope_begin();
    ag_tensor *inner = ag_add(outer, ag_arange(3));
    ag_tensor *r = ag_scope_return(inner);
    ck_assert_ptr_eq(r, inner);
    const float rw[3] = {1, 2, 3};
    expect_f32(r, rw, 3);
    /* Still inside the outer scope: its tensors are usable. */
    ag_tensor *r2 = ag_mul(r, outer);
    expect_f32(r2, rw, 3);
    ag_scope_end(); /* frees outer, r and r2 */

    /* scope_return(NULL) closes the scope and passes the NULL on. */
    ag_scope_begin();
    ag_tensor *n = ag_scope_return(NULL);
    ck_assert_ptr_null(n);
}
END_TEST

START_TEST(test_keep)
{
    ag_scope_begin();
    ag_tensor *a = ag_full(1, (const int64_t[]){2}, 1.5f);
    ag_tensor *k = ag_retain(ag_mul_scalar(a, 2.0f));
    ck_assert_ptr_nonnull(k);
    ag_scope_end();
    const float w[2] = {3, 3};
    expect_f32(k, w, 2);
    ag_release(k);

    /* Kept from an inner scope, it outlives both scopes. */
    ag_scope_begin();
    ag_scope_begin();
    ag_tensor *k2 = ag_retain(ag_arange(4));
    ag_scope_end();
    ag_tensor *k3 = ag_retain(ag_add_scalar(k2, 1.0f));
    ag_scope_end();
    const float w2[4] = {0, 1, 2, 3}, w3[4] = {1, 2, 3, 4};
    expect_f32(k2, w2, 4);
    expect_f32(k3, w3, 4);
    ag_release(k3);
    ag_release(k2);

    /* Keeping a tensor the caller already owns adds a reference. */
    ag_tensor *own = ag_ones(1, (const int64_t[]){1});
    ag_tensor *own2 = ag_retain(own);
    ck_assert_ptr_eq(own, own2);
    ag_release(own);
    float v = 0;
    ck_assert_int_eq(ag_item(own2, &v), AG_OK);
    ck_assert(v == 1.0f);
    ag_release(own2);
}
END_TEST

/* ---- RNG ------------------------------------------------------------------ */

START_TEST(test_rng_reproducible)
{
    ag_scope_begin();
    const int64_t n = 64;
    float u1[64], u2[64], g1[64], g2[64], u3[64], u4[64];
    ag_manual_seed(1234);
    ck_assert_int_eq(ag_to_host(ag_rand(1, &n, -2.0f, 3.0f), u1, sizeof u1), AG_OK);
    ck_assert_int_eq(ag_to_host(ag_randn(1, &n, 1.0f, 0.5f), g1, sizeof g1), AG_OK);
    ck_assert_int_eq(ag_to_host(ag_rand(1, &n, -2.0f, 3.0f), u3, sizeof u3), AG_OK);
    ag_manual_seed(1234);
    ck_assert_int_eq(ag_to_host(ag_rand(1, &n, -2.0f, 3.0f), u2, sizeof u2), AG_OK);
    ck_assert_int_eq(ag_to_host(ag_randn(1, &n, 1.0f, 0.5f), g2, sizeof g2), AG_OK);
    ck_assert_mem_eq(u1, u2, sizeof u1);
    ck_assert_mem_eq(g1, g2, sizeof g1);
    /* Successive calls draw new numbers. */
    ck_assert(memcmp(u1, u3, sizeof u1) != 0);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(u1[i] >= -2.0f && u1[i] <= 3.0f, "rand[%d] = %g outside [-2, 3]", i,
                      (double)u1[i]);
        ck_assert(isfinite(g1[i]));
    }
    /* Another seed gives other numbers. */
    ag_manual_seed(1235);
    ck_assert_int_eq(ag_to_host(ag_rand(1, &n, -2.0f, 3.0f), u4, sizeof u4), AG_OK);
    ck_assert(memcmp(u1, u4, sizeof u1) != 0);
    ag_scope_end();
}
END_TEST

START_TEST(test_rng_moments)
{
    ag_scope_begin();
    enum { N = 20000 };
    static float v[N];
    const int64_t n = N;
    ag_manual_seed(7);
    ck_assert_int_eq(ag_to_host(ag_randn(1, &n, 2.0f, 3.0f), v, sizeof v), AG_OK);
    double s = 0, s2 = 0;
    for (int i = 0; i < N; i++) s += v[i];
    double mean = s / N;
    for (int i = 0; i < N; i++) s2 += (v[i] - mean) * (v[i] - mean);
    double sd = sqrt(s2 / (N - 1));
    /* Standard error of the mean is 3 / sqrt(20000) ~ 0.02. */
    ck_assert_msg(fabs(mean - 2.0) < 0.1, "randn mean %g, want 2", mean);
    ck_assert_msg(fabs(sd - 3.0) < 0.1, "randn std %g, want 3", sd);

    ck_assert_int_eq(ag_to_host(ag_rand(1, &n, 0.0f, 1.0f), v, sizeof v), AG_OK);
    s = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(v[i] >= 0.0f && v[i] <= 1.0f);
        s += v[i];
    }
    ck_assert_msg(fabs(s / N - 0.5) < 0.02, "rand mean %g, want 0.5", s / N);
    ag_scope_end();
}
END_TEST

Suite *suite_tensor(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = h_tcase_create("core");
    tcase_add_checked_fixture(tc, clear_error, NULL);
    tcase_add_test(tc, test_create_filled);
    tcase_add_test(tc, test_create_from_host);
    tcase_add_test(tc, test_scalar_0dim);
    tcase_add_test(tc, test_size_zero);
    tcase_add_test(tc, test_eight_dims);
    tcase_add_test(tc, test_inspection);
    tcase_add_test(tc, test_host_round_trip);
    tcase_add_test(tc, test_reshape);
    tcase_add_test(tc, test_permute_transpose);
    tcase_add_test(tc, test_slice);
    tcase_add_test(tc, test_expand);
    tcase_add_test(tc, test_squeeze_unsqueeze_flatten);
    tcase_add_test(tc, test_contiguous_detach_clone);
    tcase_add_test(tc, test_to_dtype);
    tcase_add_test(tc, test_u8);
    tcase_add_test(tc, test_refcount);
    tcase_add_test(tc, test_scope_basic);
    tcase_add_test(tc, test_scope_return);
    tcase_add_test(tc, test_keep);
    tcase_add_test(tc, test_rng_reproducible);
    tcase_add_test(tc, test_rng_moments);
    suite_add_tcase(s, tc);
    return s;
}
