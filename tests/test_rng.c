/* The Philox stream is part of the cross-backend contract: every backend must
 * produce these exact bits, so they are pinned here against the published
 * Random123 known-answer vectors and the element mapping of backend.h. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "anygrad.h"
#include "backend.h"
#include "suites.h"

START_TEST(philox_known_answers)
{
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t k = 0; k < sizeof kat / sizeof kat[0]; k++) {
        uint32_t out[4];
        ag_philox4x32(kat[k].key, kat[k].ctr, out);
        for (int w = 0; w < 4; w++)
            ck_assert_msg(out[w] == kat[k].out[w], "vector %zu word %d: %08x, want %08x", k, w,
                          out[w], kat[k].out[w]);
    }
}
END_TEST

/* Word w of block b of stream s under seed. */
static uint32_t word(uint64_t seed, uint64_t stream, uint64_t block, int w)
{
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                       (uint32_t)(stream >> 32)};
    uint32_t out[4];
    ag_philox4x32(key, ctr, out);
    return out[w];
}

START_TEST(rand_follows_documented_mapping)
{
    const uint64_t seed = 0x0123456789abcdefULL;
    const int64_t n = 1001;
    ag_manual_seed(seed);
    ag_tensor *u = ag_rand(1, &n, -2.0f, 3.0f); /* stream 0 */
    ag_tensor *z = ag_randn(1, &n, 1.0f, 0.5f); /* stream 1 */
    ck_assert_ptr_nonnull(u);
    ck_assert_ptr_nonnull(z);
    float *hu = malloc(n * sizeof *hu), *hz = malloc(n * sizeof *hz);
    ck_assert_int_eq(ag_to_host(u, hu, n * sizeof *hu), AG_OK);
    ck_assert_int_eq(ag_to_host(z, hz, n * sizeof *hz), AG_OK);
    for (int64_t i = 0; i < n; i++) {
        double r = (word(seed, 0, i / 4, i % 4) >> 8) * 0x1p-24;
        double want = -2.0 + 5.0 * r;
        ck_assert_msg(fabs(hu[i] - want) <= 1e-6 * 5, "uniform %lld: %g, want %g", (long long)i,
                      hu[i], want);
        int pair = (int)(i % 2);
        double a = ((word(seed, 1, i / 2, 2 * pair) >> 8) + 1) * 0x1p-24;
        double b = ((word(seed, 1, i / 2, 2 * pair + 1) >> 8) + 1) * 0x1p-24;
        double g = 1.0 + 0.5 * sqrt(-2.0 * log(a)) * cos(2.0 * 3.14159265358979323846 * b);
        ck_assert_msg(fabs(hz[i] - g) <= 1e-5 * (1 + fabs(g)), "normal %lld: %g, want %g",
                      (long long)i, hz[i], g);
    }
    free(hu);
    free(hz);
    ag_release(u);
    ag_release(z);
}
END_TEST

/* ag_rand and ag_randn give the same bits on this device as on the CPU (the
 * normal transform is one definition for every backend: rand_normal.h; with
 * the drivers' own log, sqrt and cos, 900 of 4096 normal draws differed on
 * PoCL and 808 on lavapipe). */
START_TEST(draws_match_the_cpu_bit_for_bit)
{
    ag_device *here = ag_device_default(), *cpu = ag_device_by_name("cpu");
    if (!cpu) {
        ag_clear_error();
        return; /* nothing to compare with */
    }
    enum { N = 4099 };
    static float v[2][2][N];
    ag_device *devs[2] = {here, cpu};
    for (int d = 0; d < 2; d++) {
        ck_assert_int_eq(ag_set_default_device(devs[d]), AG_OK);
        ag_manual_seed(5);
        const int64_t n = N;
        ag_tensor *z = ag_randn(1, &n, 0.0f, 1.0f), *u = ag_rand(1, &n, -1.0f, 2.0f);
        ck_assert_msg(z && u, "%s", ag_last_error());
        ck_assert_int_eq(ag_to_host(z, v[d][0], sizeof v[d][0]), AG_OK);
        ck_assert_int_eq(ag_to_host(u, v[d][1], sizeof v[d][1]), AG_OK);
        ag_release(z);
        ag_release(u);
    }
    ck_assert_int_eq(ag_set_default_device(here), AG_OK);
    for (int k = 0; k < 2; k++) {
        int differ = 0, first = -1;
        for (int i = 0; i < N; i++)
            if (memcmp(&v[0][k][i], &v[1][k][i], sizeof(float))) {
                if (first < 0) first = i;
                differ++;
            }
        ck_assert_msg(differ == 0, "%s: %d of %d %s draws differ from the CPU's (first: %d, %.9g vs %.9g)",
                      ag_device_name(here), differ, N, k ? "uniform" : "normal", first,
                      (double)v[0][k][first], (double)v[1][k][first]);
    }
}
END_TEST

/* What one seeded "training setup" draws: a Linear layer's initial weights, then
 * a randn and a dropout mask, read back to the host. */
enum { DRAW_N = 64 + 8 + 100 + 100 };
typedef struct {
    float v[DRAW_N];
    int ok;
} draw_out;

static void *seeded_draws(void *arg)
{
    draw_out *o = arg;
    ag_manual_seed(77);
    ag_module *lin = ag_linear_new(8, 8, true);
    const int64_t n = 100;
    ag_tensor *z = ag_randn(1, &n, 0.0f, 1.0f);
    ag_tensor *ones = ag_ones(1, &n);
    ag_tensor *d = ag_dropout(ones, 0.5f, true);
    int np = 0;
    ag_tensor *const *ps = lin ? ag_module_parameters(lin, &np) : NULL;
    o->ok = ps && np == 2 && z && d && ag_to_host(ps[0], o->v, 64 * sizeof(float)) == AG_OK &&
            ag_to_host(ps[1], o->v + 64, 8 * sizeof(float)) == AG_OK &&
            ag_to_host(z, o->v + 72, 100 * sizeof(float)) == AG_OK &&
            ag_to_host(d, o->v + 172, 100 * sizeof(float)) == AG_OK;
    ag_release(d);
    ag_release(ones);
    ag_release(z);
    ag_module_free(lin);
    return NULL;
}

typedef struct {
    float v[16];
    int ok;
} unseeded_out;

static void *unseeded_draw(void *arg)
{
    unseeded_out *o = arg;
    const int64_t n = 16;
    ag_tensor *a = ag_rand(1, &n, 0.0f, 1.0f);
    o->ok = a && ag_to_host(a, o->v, sizeof o->v) == AG_OK;
    ag_release(a);
    return NULL;
}

/* Threads that each seed and build a model get exactly what the same code gets
 * alone: each thread has its own generator (a shared counter interleaved the
 * threads' draws, so they depended on scheduling). A thread that never seeds
 * starts from the default seed, not from another thread's. */
START_TEST(seeded_threads_draw_alike)
{
    draw_out alone;
    seeded_draws(&alone);
    ck_assert_msg(alone.ok, "%s", ag_last_error());
    for (int round = 0; round < 5; round++) {
        enum { T = 4 };
        pthread_t th[T];
        draw_out out[T];
        for (int t = 0; t < T; t++) ck_assert_int_eq(pthread_create(&th[t], NULL, seeded_draws, &out[t]), 0);
        for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
        for (int t = 0; t < T; t++) {
            ck_assert_msg(out[t].ok, "thread %d failed", t);
            ck_assert_msg(memcmp(out[t].v, alone.v, sizeof alone.v) == 0,
                          "round %d: thread %d drew other numbers than the same code alone", round, t);
        }
    }
    /* a thread that never seeds starts from the default, whatever the main thread seeded */
    unseeded_out u1, u2;
    pthread_t th;
    ag_manual_seed(12345);
    ck_assert_int_eq(pthread_create(&th, NULL, unseeded_draw, &u1), 0);
    pthread_join(th, NULL);
    ag_manual_seed(999);
    ck_assert_int_eq(pthread_create(&th, NULL, unseeded_draw, &u2), 0);
    pthread_join(th, NULL);
    ck_assert(u1.ok && u2.ok);
    ck_assert(memcmp(u1.v, u2.v, sizeof u1.v) == 0);
    ag_manual_seed(12345);
    unseeded_out here;
    unseeded_draw(&here);
    ck_assert(here.ok);
    ck_assert(memcmp(here.v, u1.v, sizeof here.v) != 0);
}
END_TEST

Suite *suite_rng(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = h_tcase_create("philox");
    tcase_add_test(tc, philox_known_answers);
    tcase_add_test(tc, rand_follows_documented_mapping);
    tcase_add_test(tc, draws_match_the_cpu_bit_for_bit);
    tcase_add_test(tc, seeded_threads_draw_alike);
    suite_add_tcase(s, tc);
    return s;
}
