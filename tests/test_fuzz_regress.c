/* Inputs the fuzzers (fuzz/) found, fed through the public API. Each failed
 * before its fix: under the sanitizer build as undefined behaviour, and in the
 * plain build through the assertions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anygrad.h"
#include "suites.h"

static void setup(void) { ag_clear_error(); }

/* Writes n bytes to a new temporary file; its path goes to path. */
static void write_tmp(char *path, size_t size, const void *bytes, size_t n)
{
    snprintf(path, size, "/tmp/ag-fuzz-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "mkstemp failed");
    ck_assert_int_eq(write(fd, bytes, n), (ssize_t)n);
    close(fd);
}

/* A safetensors file: 8-byte little-endian header length, header, data. */
static void write_safetensors(char *path, size_t size, const char *header, const void *data,
                              size_t ndata)
{
    size_t h = strlen(header), n = 8 + h + ndata;
    unsigned char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)h >> (8 * k));
    memcpy(b + 8, header, h);
    if (ndata) memcpy(b + 8 + h, data, ndata);
    write_tmp(path, size, b, n);
    free(b);
}

/* A zero-size first axis makes the element count 0, so huge later axes pass
 * the size check and the strides overflow int64 (tensor.c contiguous_strides,
 * views.c ag_reshape, cpu_reduce.c on an expanded view). fuzz_idx, fuzz_idx_gz. */
START_TEST(zero_size_tensor_with_huge_axes)
{
    static const unsigned char idx[] = {0x00, 0x00, 0x08, 0x03, 0x00, 0x00, 0x00, 0x00,
                                        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    char path[64];
    write_tmp(path, sizeof path, idx, sizeof idx);
    ag_tensor *t = ag_idx_load(path);
    unlink(path);
    ck_assert_ptr_null(t);
    ck_assert_int_ne(ag_last_status(), AG_OK);

    ag_clear_error();
    write_safetensors(path, sizeof path,
                      "{\"z\":{\"dtype\":\"F32\",\"shape\":[0,4294967295,4294967295],"
                      "\"data_offsets\":[0,0]}}", NULL, 0);
    ag_tensor_dict *d = ag_safetensors_load(path);
    unlink(path);
    ck_assert_ptr_null(d);
    ck_assert_int_ne(ag_last_status(), AG_OK);

    /* the same shape made by the API; views compute their own strides */
    ag_clear_error();
    ag_scope_begin();
    int64_t shape[3] = {0, (int64_t)1 << 40, (int64_t)1 << 40}, zero = 0, flat[3] = {0, 1, 1};
    ck_assert_ptr_null(ag_zeros(3, shape));
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    ag_clear_error();
    ag_tensor *z = ag_zeros(1, &zero);
    ck_assert_ptr_nonnull(z);
    ck_assert_ptr_null(ag_reshape(z, 3, shape));
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    ag_clear_error();
    ag_tensor *z3 = ag_reshape(z, 3, flat);
    ck_assert_ptr_nonnull(z3);
    ck_assert_ptr_null(ag_expand(z3, 3, shape)); /* else ag_sum overflows in cpu_reduce.c */
    ck_assert_int_eq(ag_last_status(), AG_ERR_SHAPE);
    ag_scope_end();
}
END_TEST

/* A checkpoint may claim any step count; INT64_MAX loaded, and the next
 * ag_optim_step overflowed the per-parameter and total counters (optim.c
 * ag_optim_step: signed overflow, then a confusing "step must be 1-based"
 * error). The load must refuse it. fuzz_checkpoint. */
START_TEST(checkpoint_step_count_overflow)
{
    static const float w[6] = {1, 2, 3, 4, 5, 6}, b[2] = {1, 2};
    float data[24];
    memcpy(data, w, sizeof w);       /* weight [2, 3] */
    memcpy(data + 6, b, sizeof b);   /* bias [2] */
    memcpy(data + 8, w, sizeof w);   /* exp_avg of weight */
    memcpy(data + 14, w, sizeof w);  /* exp_avg_sq of weight */
    memcpy(data + 20, b, sizeof b);  /* exp_avg of bias */
    memcpy(data + 22, b, sizeof b);  /* exp_avg_sq of bias */
    const char *header =
        "{\"__metadata__\":{\"optimizer.kind\":\"Adam\",\"optimizer.lr\":\"0.001\","
        "\"optimizer.steps\":\"9223372036854775807\","
        "\"optimizer.param_steps\":\"9223372036854775807,9223372036854775807\"},"
        "\"weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]},"
        "\"optimizer.state.0.exp_avg\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[32,56]},"
        "\"optimizer.state.0.exp_avg_sq\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[56,80]},"
        "\"optimizer.state.1.exp_avg\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[80,88]},"
        "\"optimizer.state.1.exp_avg_sq\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[88,96]}}";
    char path[64];
    write_safetensors(path, sizeof path, header, data, sizeof data);

    ag_manual_seed(1);
    ag_module *m = ag_linear_new(3, 2, true);
    ck_assert_ptr_nonnull(m);
    int np = 0;
    ag_tensor *const *params = ag_module_parameters(m, &np);
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_ADAM, 1e-3f);
    ag_optim *opt = ag_optim_new(&cfg, np, params);
    ck_assert_ptr_nonnull(opt);
    ag_status s = ag_checkpoint_load(path, m, opt, NULL);
    unlink(path);
    ck_assert_int_ne(s, AG_OK);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "step"));
    ck_assert_int_eq(ag_optim_steps(opt), 0); /* a refused file changes nothing */
    ag_optim_free(opt);
    ag_module_free(m);
}
END_TEST

Suite *suite_fuzz_regress(void)
{
    Suite *s = suite_create("fuzz_regress");
    TCase *tc = h_tcase_create("fuzz");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, zero_size_tensor_with_huge_axes);
    tcase_add_test(tc, checkpoint_step_count_overflow);
    suite_add_tcase(s, tc);
    return s;
}
