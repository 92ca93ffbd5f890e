/* Host time of one op on tiny tensors: what a batch-1 step or an RNN pays per
 * call besides the arithmetic. Each figure is nanoseconds per op, the median of
 * --rounds rounds of --calls calls, each call in its own scope (as a training
 * step's ops are), on the default device (AG_DEVICE picks another).
 *
 * Usage: overhead [--calls N] [--rounds R] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anygrad.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct ops_in {
    ag_tensor *a, *b, *x, *w, *leaf;
} ops_in;

typedef ag_tensor *(*op_fn)(const ops_in *in);
static ag_tensor *op_add(const ops_in *in) { return ag_add(in->a, in->b); }
static ag_tensor *op_relu(const ops_in *in) { return ag_relu(in->a); }
static ag_tensor *op_sum(const ops_in *in) { return ag_sum_all(in->a); }
static ag_tensor *op_reshape(const ops_in *in) { return ag_reshape(in->a, 2, (const int64_t[]){2, 2}); }
static ag_tensor *op_matmul(const ops_in *in) { return ag_matmul(in->x, in->w); }
static ag_tensor *op_add_grad(const ops_in *in) { return ag_add(in->leaf, in->b); }

static const struct {
    const char *name;
    op_fn fn;
} OPS[] = {
    {"add [4] + [4]", op_add},
    {"relu [4]", op_relu},
    {"sum_all [4]", op_sum},
    {"reshape [4] -> [2, 2] (a view)", op_reshape},
    {"matmul [1, 128] x [128, 10]", op_matmul},
    {"add, input requires grad (records a node)", op_add_grad},
};

int main(int argc, char **argv)
{
    long calls = 100000, rounds = 7;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--calls")) calls = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds")) rounds = atol(argv[i + 1]);
    }
    if (calls < 1 || rounds < 1 || rounds > 99) {
        fprintf(stderr, "usage: overhead [--calls N] [--rounds R (1-99)]\n");
        return 2;
    }
    ops_in in = {ag_ones(1, (const int64_t[]){4}), ag_ones(1, (const int64_t[]){4}),
                 ag_ones(2, (const int64_t[]){1, 128}), ag_ones(2, (const int64_t[]){128, 10}),
                 ag_ones(1, (const int64_t[]){4})};
    if (!in.a || !in.b || !in.x || !in.w || !in.leaf || ag_set_requires_grad(in.leaf, true) != AG_OK) {
        fprintf(stderr, "overhead: %s\n", ag_last_error());
        return 1;
    }
    printf("device %s; ns per op, median of %ld rounds of %ld calls, one scope per call\n",
           ag_device_name(ag_device_default()), rounds, calls);
    for (size_t k = 0; k < sizeof OPS / sizeof OPS[0]; k++) {
        double t[99];
        for (long r = 0; r < rounds; r++) {
            double t0 = now();
            for (long i = 0; i < calls; i++) {
                ag_scope_begin();
                if (!OPS[k].fn(&in)) {
                    fprintf(stderr, "overhead: %s: %s\n", OPS[k].name, ag_last_error());
                    return 1;
                }
                ag_scope_end();
            }
            t[r] = (now() - t0) / (double)calls * 1e9;
        }
        qsort(t, (size_t)rounds, sizeof t[0], cmp);
        printf("%-44s %6.0f ns\n", OPS[k].name, t[rounds / 2]);
    }
    ag_device_sync(ag_device_default());
    return 0;
}
