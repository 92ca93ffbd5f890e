/* Guide, section 10: threads. Four threads each seed their own generator,
 * build a small model and train it on input tensors the main thread shares
 * read-only; each must get exactly the numbers the main thread got running
 * the same function alone. Meanwhile the main thread has a scope open, grad
 * mode off, another seed, another default device and an error set: all of
 * that is per thread and must not leak into the workers. Exits 1 on any
 * mismatch. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "anygrad.h"
#include "check.h"

enum { THREADS = 4, STEPS = 20, ROWS = 32 };

typedef struct job {
    ag_tensor *x, *y;        /* shared by every thread, only read */
    float losses[STEPS];
    ag_tensor *pred;         /* handed back: a reference the main thread releases */
    /* what the thread saw of the per-thread state */
    int scope_depth;
    bool grad_enabled, error_clear;
    ag_device *dev;
    bool ok;
} job;

static void *train_job(void *arg)
{
    job *j = arg;
    j->scope_depth = ag_scope_depth();
    j->grad_enabled = ag_grad_enabled();
    j->error_clear = ag_last_status() == AG_OK;
    j->dev = ag_device_default();

    ag_manual_seed(7); /* seeds this thread's generator only */
    ag_module *layers[] = {ag_linear_new(4, 16, true), ag_relu_new(), ag_dropout_new(0.1f),
                           ag_linear_new(16, 1, true)};
    ag_module *m = ag_sequential_new(4, layers); /* this thread's own module ... */
    int np = 0;
    ag_tensor *const *params = m ? ag_module_parameters(m, &np) : NULL;
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_SGD, 0.05f);
    cfg.momentum = 0.9f;
    ag_optim *opt = params ? ag_optim_new(&cfg, np, params) : NULL; /* ... and optimizer */
    j->ok = opt != NULL;
    for (int s = 0; s < STEPS && j->ok; s++) {
        ag_scope_begin(); /* this thread's scope stack */
        ag_tensor *loss = ag_mse_loss(ag_module_forward(m, j->x), j->y, AG_REDUCTION_MEAN);
        j->ok = ag_optim_zero_grad(opt) == AG_OK && ag_backward(loss, NULL) == AG_OK &&
                ag_optim_step(opt) == AG_OK && ag_item(loss, &j->losses[s]) == AG_OK;
        ag_scope_end();
    }
    ag_module_train(m, false);
    ag_no_grad_begin();
    j->pred = j->ok ? ag_module_forward(m, j->x) : NULL; /* no scope open: ours */
    ag_no_grad_end();
    j->ok = j->ok && j->pred;
    ag_optim_free(opt);
    ag_module_free(m);
    return NULL;
}

int main(void)
{
    /* Inputs every thread reads: made once, never written while threads run. */
    ag_manual_seed(123);
    const int64_t xs[2] = {ROWS, 4}, ys[2] = {ROWS, 1};
    ag_tensor *x = ag_randn(2, xs, 0.0f, 1.0f), *y = ag_randn(2, ys, 0.0f, 1.0f);
    ag_device *dflt = ag_device_default();

    job alone = {.x = x, .y = y};
    train_job(&alone); /* the reference: the same function on the main thread */
    CHECK(alone.ok && alone.losses[STEPS - 1] < alone.losses[0]);

    /* Per-thread state on the main thread that the workers must not see. */
    ag_manual_seed(999);
    ag_scope_begin();
    ag_no_grad_begin();
    ag_device *other = ag_device_count() > 1 ? ag_device_get(ag_device_index(dflt) == 0 ? 1 : 0) : dflt;
    ag_set_default_device(other);
    CHECK(ag_transpose(x, 0, 7) == NULL); /* leaves an error on this thread */

    job jobs[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (job){.x = x, .y = y};
        CHECK(pthread_create(&th[t], NULL, train_job, &jobs[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++) CHECK(pthread_join(th[t], NULL) == 0);

    CHECK(ag_last_status() == AG_ERR_ARG); /* the main thread's error is still its own */
    ag_clear_error();
    ag_set_default_device(NULL);
    ag_no_grad_end();
    ag_scope_end();

    float want[ROWS], got[ROWS];
    CHECK(ag_to_host(alone.pred, want, sizeof want) == AG_OK);
    for (int t = 0; t < THREADS; t++) {
        job *j = &jobs[t];
        CHECK(j->ok && j->scope_depth == 0 && j->grad_enabled && j->error_clear && j->dev == dflt);
        CHECK(memcmp(j->losses, alone.losses, sizeof alone.losses) == 0);
        CHECK(ag_to_host(j->pred, got, sizeof got) == AG_OK && !memcmp(got, want, sizeof got));
        ag_release(j->pred); /* made on another thread, released on this one */
    }
    printf("%d threads: losses %.6f -> %.6f, bit-identical to the main thread's\n", THREADS,
           (double)alone.losses[0], (double)alone.losses[STEPS - 1]);

    ag_release(alone.pred);
    ag_release(x);
    ag_release(y);
    CHECK(ag_debug_live_buffers() == 0);
    if (failed) fprintf(stderr, "10_threads: %d check(s) failed\n", failed);
    else printf("10_threads: all checks passed\n");
    return failed ? 1 : 0;
}
