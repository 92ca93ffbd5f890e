/* The global Philox generator: a seed and a counter of random ops. Every random
 * op takes the next stream number, so op k after ag_manual_seed(s) draws the
 * same numbers on every backend and thread count. */
#include <stdatomic.h>

#include "core.h"

static _Atomic uint64_t rng_seed = 0x5eed5eedULL;
static _Atomic uint64_t rng_stream;

void ag_manual_seed(uint64_t seed)
{
    atomic_store(&rng_seed, seed);
    atomic_store(&rng_stream, 0);
}

void ag__rng_next(uint64_t *seed, uint64_t *stream)
{
    *seed = atomic_load(&rng_seed);
    *stream = atomic_fetch_add(&rng_stream, 1);
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
