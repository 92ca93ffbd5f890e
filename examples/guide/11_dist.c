/* Guide, section 11: several processes. Trains a small classifier with data
 * parallelism, the loop of docs/guide.md, and checks it against the same
 * training in this process alone on whole batches: the parameters must agree
 * to float rounding (the ranks add each batch's gradient in another order).
 * Run it as it is (a job of one) or under mpirun -np N; without MPI, or where
 * MPI cannot start, it trains as a job of one. Exits 1 on any mismatch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "anygrad.h"
#include "check.h"

enum { N = 300, F = 6, C = 3, BATCH = 32, EPOCHS = 3 };

static ag_module *model(void)
{
    ag_manual_seed(11);
    return ag_sequential_new(3, (ag_module *[]){ag_linear_new(F, 16, true), ag_relu_new(),
                                                ag_linear_new(16, C, true)});
}

/* Trains m on l; with dist, on this rank's parts and averaged gradients. */
static bool train(ag_module *m, ag_loader *l, bool dist)
{
    int np = 0;
    ag_tensor *const *params = ag_module_parameters(m, &np);
    ag_optim_config c = ag_optim_defaults(AG_OPTIM_ADAM, 0.01f);
    ag_optim *opt = ag_optim_new(&c, np, params);
    bool ok = opt && (!dist || ag_dist_broadcast_module(m, opt, 0) == AG_OK);
    for (int e = 0; ok && e < EPOCHS; e++) {
        ok = ag_loader_start_epoch(l, e) == AG_OK;
        for (;;) {
            ag_tensor *x, *y;
            ag_scope_begin();
            if (!ag_loader_next(l, &x, &y)) {
                ok = ok && ag_last_status() == AG_OK;
                ag_scope_end();
                break;
            }
            int64_t local = ag_dim(x, 0), global = local;
            if (dist) ag_loader_last_batch(l, &local, &global);
            ok = ok && ag_optim_zero_grad(opt) == AG_OK;
            if (ok && local > 0) /* a short last batch can leave a rank none */
                ok = ag_backward(ag_cross_entropy(ag_module_forward(m, x), y, AG_REDUCTION_MEAN, 0.0f),
                                 NULL) == AG_OK;
            if (dist && ag_dist_average_gradients(np, params, (double)local / (double)global) != AG_OK)
                ag_dist_abort(1, ag_last_error()); /* the others wait on this rank: end the job */
            ok = ok && ag_optim_step(opt) == AG_OK;
            ag_scope_end();
        }
    }
    ag_optim_free(opt);
    return CHECK(ok);
}

int main(void)
{
    if (ag_dist_init() != AG_OK) printf("no MPI (%s): a job of one process\n", ag_last_error());
    const int rank = ag_dist_rank(), size = ag_dist_size();
    /* a data set every rank makes alike: three classes, by the sign of two sums */
    float *xs = malloc(sizeof(float) * N * F);
    int32_t *ys = malloc(sizeof(int32_t) * N);
    if (!CHECK(xs && ys)) return 1;
    for (int i = 0; i < N; i++) {
        float s0 = 0.0f, s1 = 0.0f;
        for (int j = 0; j < F; j++) {
            xs[i * F + j] = sinf((float)(i * F + j) * 0.37f);
            *(j < 3 ? &s0 : &s1) += xs[i * F + j];
        }
        ys[i] = s0 > 0.0f ? (s1 > 0.0f ? 0 : 1) : 2;
    }
    ag_tensor *x = ag_from_f32(xs, 2, (int64_t[]){N, F}), *y = ag_from_i32(ys, 1, (int64_t[]){N});
    ag_loader_config cfg = {.batch_size = BATCH, .shuffle = true, .seed = 5};
    ag_loader *mine = ag_loader_new(x, y, &cfg), *whole = ag_loader_new(x, y, &cfg);
    CHECK(mine && whole && ag_loader_shard(mine, rank, size) == AG_OK);

    ag_module *together = model(), *alone = model();
    CHECK(together && alone);
    if (together && alone && mine && whole && train(together, mine, true) && train(alone, whole, false)) {
        double worst = 0.0;
        int n = 0;
        ag_tensor *const *a = ag_module_parameters(together, &n);
        ag_tensor *const *b = ag_module_parameters(alone, &n);
        for (int i = 0; i < n; i++) {
            int64_t k = ag_numel(a[i]);
            float *va = malloc(sizeof(float) * (size_t)k), *vb = malloc(sizeof(float) * (size_t)k);
            if (CHECK(va && vb && ag_to_host(a[i], va, sizeof(float) * (size_t)k) == AG_OK &&
                      ag_to_host(b[i], vb, sizeof(float) * (size_t)k) == AG_OK))
                for (int64_t j = 0; j < k; j++) worst = fmax(worst, fabs((double)va[j] - vb[j]));
            free(va);
            free(vb);
        }
        /* every rank must hold the same model: the sum over ranks of the
         * difference to rank 0's checksum is 0 */
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            ag_tensor *s = ag_sum_all(a[i]);
            float v = 0.0f;
            CHECK(s && ag_item(s, &v) == AG_OK);
            sum += v;
            ag_release(s);
        }
        double all[2] = {sum, rank == 0 ? sum : 0.0};
        CHECK(ag_dist_sum(all, 2) == AG_OK);
        CHECK(all[0] == all[1] * size);
        CHECK(worst < 1e-4);
        printf("rank %d of %d: %d epochs of %d samples; largest difference to one process on whole "
               "batches %.3g\n", rank, size, EPOCHS, N, worst);
    }
    ag_module_free(together);
    ag_module_free(alone);
    ag_loader_free(mine);
    ag_loader_free(whole);
    ag_release(x);
    ag_release(y);
    free(xs);
    free(ys);
    CHECK(ag_dist_finalize() == AG_OK);
    if (rank == 0) printf("%s\n", failed ? "FAILED" : "all checks passed");
    return failed ? 1 : 0;
}
