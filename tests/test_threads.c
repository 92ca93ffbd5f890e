/* The CPU backend's thread count (backends/cpu/cpu_threads.c): AG_NUM_THREADS
 * fixes it; otherwise it is every core less what other processes keep busy,
 * so a busy machine does not make training wait on descheduled threads. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cpu/cpu.h"
#include "harness.h"
#include "suites.h"

START_TEST(t_stat_parse)
{
    int cpu = -1;
    long long busy = -1;
    /* user nice system idle iowait irq softirq steal guest guest_nice */
    ck_assert(cpu_parse_stat_cpu("cpu3 4705 356 584 3699 23 23 7 11 0 0\n", &cpu, &busy));
    ck_assert_int_eq(cpu, 3);
    ck_assert(busy == 4705 + 356 + 584 + 23 + 7 + 11); /* idle and iowait are not busy */
    ck_assert(cpu_parse_stat_cpu("cpu12 1 2 3 4", &cpu, &busy)); /* old kernels: 4 fields */
    ck_assert_int_eq(cpu, 12);
    ck_assert(busy == 1 + 2 + 3);
    ck_assert(!cpu_parse_stat_cpu("cpu  1039232 10 184038 1081425 9260 0 763 1144 0 0", &cpu, &busy));
    ck_assert(!cpu_parse_stat_cpu("intr 123 0 0", &cpu, &busy));
    ck_assert(!cpu_parse_stat_cpu("cpu1 5 6", &cpu, &busy));
    ck_assert(!cpu_parse_stat_cpu("cpu1 5 -6 7 8", &cpu, &busy));
    ck_assert(!cpu_parse_stat_cpu("", &cpu, &busy));
    ck_assert(!cpu_parse_stat_cpu(NULL, &cpu, &busy));
}
END_TEST

START_TEST(t_choose)
{
    /* the smoothed load is in 1/256ths of a core, rounded to the nearest */
    ck_assert_int_eq(cpu_threads_choose(2, 0), 2);
    ck_assert_int_eq(cpu_threads_choose(2, 100), 2);  /* a stray task: no change */
    ck_assert_int_eq(cpu_threads_choose(2, 200), 1);
    ck_assert_int_eq(cpu_threads_choose(2, 256), 1);
    ck_assert_int_eq(cpu_threads_choose(2, 4 * 256), 1); /* never fewer than one */
    ck_assert_int_eq(cpu_threads_choose(16, 4 * 256), 12);
    ck_assert_int_eq(cpu_threads_choose(16, 0), 16);
    ck_assert_int_eq(cpu_threads_choose(1, 0), 1);
}
END_TEST

/* AG_NUM_THREADS, restored afterwards */
static char *saved_env;
static void env_save(void)
{
    const char *p = getenv("AG_NUM_THREADS");
    saved_env = p ? strdup(p) : NULL;
}
static void env_restore(void)
{
    if (saved_env)
        setenv("AG_NUM_THREADS", saved_env, 1);
    else
        unsetenv("AG_NUM_THREADS");
    free(saved_env);
    saved_env = NULL;
}

START_TEST(t_fixed)
{
    env_save();
    setenv("AG_NUM_THREADS", "3", 1);
    ck_assert_int_eq(cpu_threads_fixed(), 3);
    ck_assert_int_eq(cpu_threads(), 3);
    /* typos and absurd values are not requests: the adaptive count applies */
    const char *bad[] = {"0", "-2", "two", "3x", "100000", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("AG_NUM_THREADS", bad[i], 1);
        ck_assert_int_eq(cpu_threads_fixed(), 0);
        int n = cpu_threads();
        ck_assert_msg(n >= 1 && n <= cpu_cores(), "AG_NUM_THREADS=%s: %d threads of %d cores",
                      bad[i], n, cpu_cores());
    }
    env_restore();
}
END_TEST

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* With a busy process on every core the team shrinks (to one thread on a
 * machine that busy), within the ~100 ms the estimate takes to follow. Only
 * on the CPU device (the other runs test the GPU backends; this is the same
 * code), and only where /proc gives the counts. */
START_TEST(t_busy_machine)
{
    ag_device_props props;
    if (ag_device_info(ag_device_default(), &props) != AG_OK || strcmp(props.backend, "cpu") != 0)
        return;
    if (access("/proc/stat", R_OK) != 0) return;
    env_save();
    unsetenv("AG_NUM_THREADS");
    const int cores = cpu_cores();
    enum { MAX_SPIN = 256 };
    pid_t kids[MAX_SPIN];
    int nk = cores < MAX_SPIN ? cores : MAX_SPIN;
    for (int i = 0; i < nk; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            alarm(10); /* never outlive a crashed parent */
            for (volatile unsigned long x = 0;; x++) {
            }
        }
        ck_assert_msg(kids[i] > 0, "fork failed");
    }
    int least = cores;
    const double t0 = now_s();
    while (now_s() - t0 < 3.0 && least > 1) {
        int n = cpu_threads();
        if (n < least) least = n;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    const double took = now_s() - t0;
    for (int i = 0; i < nk; i++) kill(kids[i], SIGKILL);
    for (int i = 0; i < nk; i++) waitpid(kids[i], NULL, 0);
    env_restore();
    if (cores > 1)
        ck_assert_msg(least == 1,
                      "with %d busy processes on %d cores the team stayed at %d threads or more "
                      "for %.2f s (estimate: %.2f cores busy with other work)",
                      nk, cores, least, took, cpu_threads_load());
}
END_TEST

/* FNV-1a over a tensor's bytes */
static uint64_t mix_tensor(uint64_t h, ag_tensor *t)
{
    H_REQUIRE(t, "no tensor: %s", ag_last_error());
    size_t n = (size_t)ag_numel(t) * sizeof(float);
    unsigned char *b = malloc(n ? n : 1);
    H_REQUIRE(b && ag_to_host(t, b, n) == AG_OK, "read back: %s", ag_last_error());
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    free(b);
    return h;
}

static ag_tensor *leaf(int nd, const int64_t *shape)
{
    ag_tensor *t = ag_randn(nd, shape, 0.0f, 1.0f);
    H_REQUIRE(t && ag_set_requires_grad(t, true) == AG_OK, "%s", ag_last_error());
    return t;
}

/* A forward and backward pass through the ops whose CPU kernels split work
 * (convolution, pooling, batch and layer norm, GEMM, cross-entropy, a long
 * reduction), hashed: the same bits whatever the team. */
static uint64_t workload_hash(void)
{
    ag_manual_seed(42);
    ag_scope_begin();
    const int64_t xs[4] = {8, 4, 28, 28}, ws[4] = {16, 4, 5, 5}, cs[1] = {16},
                  fs[1] = {3136}, ls[2] = {3136, 10}, bs[1] = {1 << 20}, ns[1] = {8};
    ag_tensor *x = leaf(4, xs), *w = leaf(4, ws), *b = leaf(1, cs), *g = leaf(1, fs),
              *beta = leaf(1, fs), *w2 = leaf(2, ls), *big = ag_randn(1, bs, 0.0f, 1.0f);
    ag_tensor *labels = ag_empty(1, ns, AG_I32);
    int32_t lab[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    H_REQUIRE(labels && ag_from_host(labels, lab, sizeof lab) == AG_OK, "%s", ag_last_error());
    const ag_conv2d_params cp = {.stride = {1, 1}, .padding = {2, 2}, .dilation = {1, 1}, .groups = 1};
    const ag_pool2d_params pp = {.kernel = {2, 2}, .stride = {2, 2}};
    ag_tensor *y = ag_conv2d(x, w, b, &cp);
    y = ag_batch_norm(y, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f);
    y = ag_max_pool2d(y, &pp);
    const int64_t flat[2] = {8, 3136};
    y = ag_layer_norm(ag_reshape(y, 2, flat), 1, g, beta, 1e-5f);
    ag_tensor *loss = ag_cross_entropy(ag_matmul(y, w2), labels, AG_REDUCTION_MEAN, 0.0f);
    H_REQUIRE(loss && ag_backward(loss, NULL) == AG_OK, "%s", ag_last_error());
    uint64_t h = 1469598103934665603ull;
    h = mix_tensor(h, loss);
    ag_tensor *leaves[] = {x, w, b, g, beta, w2};
    for (size_t i = 0; i < sizeof leaves / sizeof *leaves; i++) h = mix_tensor(h, ag_grad(leaves[i]));
    h = mix_tensor(h, ag_sum_all(big));
    /* a narrow kernel takes the convolution's other weight-gradient path */
    const int64_t x2s[4] = {2, 1, 16, 16}, w2s[4] = {3, 1, 5, 2};
    ag_tensor *x2 = leaf(4, x2s), *k2 = leaf(4, w2s);
    ag_tensor *y2 = ag_sum_all(ag_conv2d(x2, k2, NULL, NULL));
    H_REQUIRE(y2 && ag_backward(y2, NULL) == AG_OK, "%s", ag_last_error());
    h = mix_tensor(mix_tensor(h, ag_grad(x2)), ag_grad(k2));
    /* the case of issue 17: ten taps over one channel, padded */
    const int64_t x3s[4] = {1, 1, 8, 8}, w3s[4] = {1, 1, 5, 2};
    const ag_conv2d_params p1 = {.stride = {1, 1}, .padding = {1, 1}, .dilation = {1, 1}, .groups = 1};
    ag_tensor *x3 = leaf(4, x3s), *k3 = leaf(4, w3s);
    ag_tensor *y3 = ag_conv2d(x3, k3, NULL, &p1);
    H_REQUIRE(y3 && ag_backward(y3, ag_randn(4, (const int64_t[]){1, 1, 6, 9}, 0.0f, 1.0f)) == AG_OK,
              "%s", ag_last_error());
    h = mix_tensor(h, ag_grad(k3));
    /* a 5x5 "same" convolution of 16 channels: the CPU's Winograd path */
    const int64_t x4s[4] = {5, 16, 9, 10}, w4s[4] = {16, 16, 5, 5};
    ag_tensor *x4 = leaf(4, x4s), *k4 = leaf(4, w4s);
    ag_tensor *y4 = ag_sum_all(ag_square(ag_conv2d(x4, k4, NULL, &cp)));
    H_REQUIRE(y4 && ag_backward(y4, NULL) == AG_OK, "%s", ag_last_error());
    h = mix_tensor(mix_tensor(mix_tensor(h, y4), ag_grad(x4)), ag_grad(k4));
    /* fused attention with dropout, several heads and row blocks (300 keys) */
    const int64_t qs[4] = {2, 3, 300, 16};
    ag_tensor *aq = leaf(4, qs), *ak = leaf(4, qs), *av = leaf(4, qs);
    ag_tensor *ya = ag_sum_all(ag_scaled_dot_product_attention(aq, ak, av, NULL, 0.1f, true, 0.0f));
    H_REQUIRE(ya && ag_backward(ya, NULL) == AG_OK, "%s", ag_last_error());
    h = mix_tensor(mix_tensor(mix_tensor(mix_tensor(h, ya), ag_grad(aq)), ag_grad(ak)), ag_grad(av));
    ag_scope_end();
    return h;
}

/* The team shrinks and grows with the machine's load: no result may change
 * with it (the splits of sums are the plan's, cpu_plan_threads()). */
START_TEST(t_team_changes_nothing)
{
    ag_device_props props;
    if (ag_device_info(ag_device_default(), &props) != AG_OK || strcmp(props.backend, "cpu") != 0)
        return;
    uint64_t first = 0;
    for (int team = 1; team <= 3; team++) {
        cpu_threads_force(team);
        uint64_t h = workload_hash();
        cpu_threads_force(0);
        if (team == 1)
            first = h;
        else
            ck_assert_msg(h == first, "a team of %d threads gave hash %016llx, one thread %016llx",
                          team, (unsigned long long)h, (unsigned long long)first);
    }
}
END_TEST

/* Nor with AG_NUM_THREADS, which fixes the team: sums are split by their
 * sizes, never by a thread count (docs/testing.md). */
START_TEST(t_thread_count_changes_nothing)
{
    ag_device_props props;
    if (ag_device_info(ag_device_default(), &props) != AG_OK || strcmp(props.backend, "cpu") != 0)
        return;
    const char *old = getenv("AG_NUM_THREADS");
    char *saved = old ? strdup(old) : NULL;
    uint64_t first = 0;
    for (int n = 1; n <= 3; n++) {
        char v[8];
        snprintf(v, sizeof v, "%d", n);
        setenv("AG_NUM_THREADS", v, 1);
        uint64_t h = workload_hash();
        if (n == 1)
            first = h;
        else
            ck_assert_msg(h == first, "AG_NUM_THREADS=%d gave hash %016llx, 1 gave %016llx", n,
                          (unsigned long long)h, (unsigned long long)first);
    }
    if (saved) setenv("AG_NUM_THREADS", saved, 1);
    else unsetenv("AG_NUM_THREADS");
    free(saved);
}
END_TEST

Suite *suite_threads(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = h_tcase_create("threads");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, t_stat_parse);
    tcase_add_test(tc, t_choose);
    tcase_add_test(tc, t_fixed);
    tcase_add_test(tc, t_busy_machine);
    tcase_add_test(tc, t_team_changes_nothing);
    tcase_add_test(tc, t_thread_count_changes_nothing);
    suite_add_tcase(s, tc);
    return s;
}
