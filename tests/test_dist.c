/* ag_dist_* in one process (the ranks' side runs under mpirun in tests/mpi.sh)
 * and the loader's sharding that every rank relies on. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anygrad.h"
#include "suites.h"

/* Ten samples whose x holds their index. */
static ag_loader *ten(int64_t batch, bool shuffle)
{
    float v[10];
    int32_t lab[10];
    for (int i = 0; i < 10; i++) v[i] = (float)i, lab[i] = i % 3;
    ag_tensor *x = ag_from_f32(v, 2, (int64_t[]){10, 1}), *y = ag_from_i32(lab, 1, (int64_t[]){10});
    ag_loader_config c = {.batch_size = batch, .shuffle = shuffle, .seed = 3};
    ag_loader *l = ag_loader_new(x, y, &c);
    ag_release(x);
    ag_release(y);
    ck_assert_ptr_nonnull(l);
    return l;
}

/* The samples of one epoch, in order, as a rank sees them; sizes[k] its part of batch k. */
static int epoch_of(ag_loader *l, float *out, int64_t *sizes, int64_t *globals)
{
    ck_assert_int_eq(ag_loader_start_epoch(l, 1), AG_OK);
    int n = 0, k = 0;
    ag_tensor *x, *y;
    while (ag_loader_next(l, &x, &y)) {
        int64_t b = ag_dim(x, 0), loc = -1, glob = -1;
        ck_assert_int_eq(ag_dim(y, 0), b);
        ck_assert_int_eq(ag_loader_last_batch(l, &loc, &glob), AG_OK);
        ck_assert_int_eq(loc, b);
        sizes[k] = b;
        globals[k++] = glob;
        if (b) ck_assert_int_eq(ag_to_host(x, out + n, (size_t)b * sizeof(float)), AG_OK);
        n += (int)b;
        ag_release(x);
        ag_release(y);
    }
    ck_assert_int_eq(ag_last_status(), AG_OK);
    return n;
}

START_TEST(t_shard_parts_make_the_batches)
{
    for (int nr = 1; nr <= 4; nr++) {
        ag_loader *whole = ten(4, true);
        float all[10];
        int64_t sz[8], gl[8];
        ck_assert_int_eq(epoch_of(whole, all, sz, gl), 10);
        /* batches of 4, 4, 2: rank r holds [b*r/nr, b*(r+1)/nr) of each */
        float got[4][10];
        int64_t psz[4][8], pgl[4][8];
        int total = 0;
        for (int r = 0; r < nr; r++) {
            ag_loader *l = ten(4, true);
            ck_assert_int_eq(ag_loader_shard(l, r, nr), AG_OK);
            ck_assert_int_eq(ag_loader_num_batches(l), 3); /* global batches */
            total += epoch_of(l, got[r], psz[r], pgl[r]);
            ag_loader_free(l);
        }
        ck_assert_int_eq(total, 10);
        int64_t start = 0;
        for (int k = 0; k < 3; k++) {
            int64_t b = k < 2 ? 4 : 2;
            for (int r = 0; r < nr; r++) {
                int64_t lo = b * r / nr, hi = b * (r + 1) / nr, off = 0;
                ck_assert_int_eq(psz[r][k], hi - lo);
                ck_assert_int_eq(pgl[r][k], b);
                for (int j = 0; j < k; j++) off += psz[r][j];
                for (int64_t i = lo; i < hi; i++)
                    ck_assert_float_eq(got[r][off + i - lo], all[start + i]);
            }
            start += b;
        }
        ag_loader_free(whole);
    }
}
END_TEST

START_TEST(t_shard_empty_part_and_bad_arguments)
{
    /* a last batch of 2 over 3 ranks: rank 0's part is empty, a tensor of 0 samples */
    ag_loader *l = ten(4, false);
    ck_assert_int_eq(ag_loader_shard(l, 0, 3), AG_OK);
    float v[10];
    int64_t sz[8], gl[8];
    ck_assert_int_eq(epoch_of(l, v, sz, gl), 1 + 1 + 0);
    ck_assert_int_eq(sz[2], 0);
    ck_assert_int_eq(gl[2], 2);
    ck_assert_float_eq(v[0], 0.0f);
    ck_assert_float_eq(v[1], 4.0f);
    /* nranks 1 undoes it */
    ck_assert_int_eq(ag_loader_shard(l, 0, 1), AG_OK);
    ck_assert_int_eq(epoch_of(l, v, sz, gl), 10);
    ck_assert_int_eq(ag_loader_shard(l, 3, 3), AG_ERR_ARG);
    ck_assert_int_eq(ag_loader_shard(l, -1, 2), AG_ERR_ARG);
    ck_assert_int_eq(ag_loader_shard(l, 0, 0), AG_ERR_ARG);
    ck_assert_int_eq(ag_loader_shard(NULL, 0, 1), AG_ERR_ARG);
    int64_t a, b;
    ck_assert_int_eq(ag_loader_last_batch(NULL, &a, &b), AG_ERR_ARG);
    ck_assert_int_eq(ag_loader_last_batch(l, NULL, &b), AG_ERR_ARG);
    ag_loader_free(l);
}
END_TEST

START_TEST(t_average_gradients_one_process)
{
    /* not initialised: a job of one rank, so the result is weight * grad */
    ck_assert_int_eq(ag_dist_rank(), 0);
    ck_assert_int_eq(ag_dist_size(), 1);
    ag_tensor *w = ag_from_f32((float[]){1, 2, 3, 4, 5, 6}, 2, (int64_t[]){2, 3});
    ag_tensor *b = ag_from_f32((float[]){1, 1}, 1, (int64_t[]){2});
    ag_tensor *unused = ag_zeros(1, (int64_t[]){4});
    ck_assert_int_eq(ag_set_requires_grad(w, true), AG_OK);
    ck_assert_int_eq(ag_set_requires_grad(b, true), AG_OK);
    ck_assert_int_eq(ag_set_requires_grad(unused, true), AG_OK);
    ag_scope_begin();
    ag_tensor *loss = ag_sum_all(ag_mul(w, w));
    ck_assert_int_eq(ag_backward(loss, NULL), AG_OK);
    ag_scope_end();
    ag_tensor *params[3] = {w, unused, b};
    ck_assert_ptr_null(ag_grad(b));
    ck_assert_int_eq(ag_dist_average_gradients(3, params, 1.0), AG_OK);
    float g[6];
    ck_assert_int_eq(ag_to_host(ag_grad(w), g, sizeof g), AG_OK);
    for (int i = 0; i < 6; i++) ck_assert_float_eq(g[i], 2.0f * (float)(i + 1));
    ck_assert_int_eq(ag_dist_average_gradients(3, params, 0.25), AG_OK);
    ck_assert_int_eq(ag_to_host(ag_grad(w), g, sizeof g), AG_OK);
    for (int i = 0; i < 6; i++) ck_assert_float_eq(g[i], 0.5f * (float)(i + 1));
    ck_assert_ptr_null(ag_grad(b));      /* no rank had one: none made up */
    ck_assert_ptr_null(ag_grad(unused));
    /* refused */
    ck_assert_int_eq(ag_dist_average_gradients(3, params, -1.0), AG_ERR_ARG);
    ck_assert_int_eq(ag_dist_average_gradients(3, params, NAN), AG_ERR_ARG);
    ck_assert_int_eq(ag_dist_average_gradients(-1, params, 1.0), AG_ERR_ARG);
    ck_assert_int_eq(ag_dist_average_gradients(1, NULL, 1.0), AG_ERR_ARG);
    ag_tensor *with_null[2] = {w, NULL};
    ck_assert_int_eq(ag_dist_average_gradients(2, with_null, 1.0), AG_ERR_ARG);
    ag_tensor *ints = ag_from_i32((int32_t[]){1}, 1, (int64_t[]){1});
    ck_assert_int_eq(ag_dist_average_gradients(1, &ints, 0.5), AG_ERR_DTYPE);
    ck_assert_int_eq(ag_dist_average_gradients(0, NULL, 1.0), AG_OK);
    ag_release(ints);
    ag_release(w);
    ag_release(b);
    ag_release(unused);
}
END_TEST

START_TEST(t_collectives_of_one_rank)
{
    double v[2] = {1.5, -2.0};
    ck_assert_int_eq(ag_dist_sum(v, 2), AG_OK);
    ck_assert(v[0] == 1.5 && v[1] == -2.0);
    ck_assert_int_eq(ag_dist_sum(NULL, 1), AG_ERR_ARG);
    ck_assert_int_eq(ag_dist_sum(v, -1), AG_ERR_ARG);
    ck_assert_int_eq(ag_dist_barrier(), AG_OK);
    ag_module *m = ag_sequential_new(2, (ag_module *[]){ag_linear_new(3, 4, true), ag_batch_norm_new(4, 1)});
    ck_assert_ptr_nonnull(m);
    ag_tensor *before = ag_clone(ag_module_get(m, "0.weight"));
    ck_assert_int_eq(ag_dist_broadcast_module(m, NULL, 0), AG_OK);
    ck_assert_int_eq(ag_dist_average_buffers(m), AG_OK);
    float a[12], b[12];
    ck_assert_int_eq(ag_to_host(before, a, sizeof a), AG_OK);
    ck_assert_int_eq(ag_to_host(ag_module_get(m, "0.weight"), b, sizeof b), AG_OK);
    ck_assert(!memcmp(a, b, sizeof a));
    ck_assert_int_eq(ag_dist_broadcast_module(m, NULL, 1), AG_ERR_ARG);
    ck_assert_int_eq(ag_dist_broadcast_module(NULL, NULL, 0), AG_ERR_ARG);
    ck_assert_int_eq(ag_dist_average_buffers(NULL), AG_ERR_ARG);
    ag_release(before);
    ag_module_free(m);
    ag_dist_abort(3, "a test: without a job this only prints"); /* must return */
    ck_assert_int_eq(ag_dist_finalize(), AG_OK);
}
END_TEST

Suite *suite_dist(void)
{
    Suite *s = suite_create("dist");
    TCase *tc = h_tcase_create("dist");
    tcase_add_test(tc, t_shard_parts_make_the_batches);
    tcase_add_test(tc, t_shard_empty_part_and_bad_arguments);
    tcase_add_test(tc, t_average_gradients_one_process);
    tcase_add_test(tc, t_collectives_of_one_rank);
    suite_add_tcase(s, tc);
    return s;
}
