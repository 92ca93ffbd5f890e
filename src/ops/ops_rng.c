/* The Philox generator: a seed and a counter of random ops, one per thread.
 * Every random op takes its thread's next stream number, so op k after
 * ag_manual_seed(s) draws the same numbers on every backend, thread count and
 * thread: threads that each seed and build a model never interleave their draws
 * (a process-wide counter made them depend on scheduling). */
#include "core.h"

#define DEFAULT_SEED 0x5eed5eedULL

static _Thread_local uint64_t rng_seed = DEFAULT_SEED;
static _Thread_local uint64_t rng_stream;

void ag_manual_seed(uint64_t seed)
{
    rng_seed = seed;
    rng_stream = 0;
}

void ag__rng_next(uint64_t *seed, uint64_t *stream)
{
    *seed = rng_seed;
    *stream = rng_stream++;
}

void ag__rng_peek(uint64_t *seed, uint64_t *stream)
{
    *seed = rng_seed;
    *stream = rng_stream;
}

static ag_tensor *random_tensor(const char *op, int ndim, const int64_t *shape, ag_rand_dist dist,
                                float a, float b)
{
    if (!(a == a) || !(b == b)) return ag_set_error(AG_ERR_ARG, "%s: NaN parameter", op), NULL;
    if (dist == AG_RAND_UNIFORM && !(a <= b))
        return ag_set_error(AG_ERR_ARG, "%s: lo %g > hi %g", op, a, b), NULL;
    if (dist == AG_RAND_NORMAL && b < 0)
        return ag_set_error(AG_ERR_ARG, "%s: std %g < 0", op, b), NULL;
    ag_scope_begin();
    ag_tensor *y = ag_empty(ndim, shape, AG_F32);
    if (y) {
        ag_rand_args r = {.dist = dist, .a = a, .b = b};
        ag__rng_next(&r.seed, &r.stream);
        ag_view v = ag__view(y);
        if (AG_LAUNCH(ag__dev(y), rand, &r, &v) != AG_OK) y = NULL;
    }
    return ag__done(y);
}

ag_tensor *ag_rand(int ndim, const int64_t *shape, float lo, float hi)
{
    return random_tensor("ag_rand", ndim, shape, AG_RAND_UNIFORM, lo, hi);
}

ag_tensor *ag_randn(int ndim, const int64_t *shape, float mean, float std)
{
    return random_tensor("ag_randn", ndim, shape, AG_RAND_NORMAL, mean, std);
}
