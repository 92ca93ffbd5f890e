/* Runs every suite on the device AG_DEVICE selects (default: the best one) and
 * prints "N passed, N failed" for tests/run.sh to add up. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anygrad.h"
#include "harness.h"
#include "suites.h"

static void reset_state(void)
{
    while (ag_scope_depth() > 0) ag_scope_end();
    ag_set_default_device(NULL);
    ag_clear_error();
}

TCase *h_tcase_create(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, NULL, reset_state);
    return tc;
}

/* Harness checks fail the running Check test. */
static void check_fail(const char *msg) { ck_abort_msg("%s", msg); }

int main(void)
{
    h_set_fail_handler(check_fail);
    ag_device *dev = ag_device_default();
    if (!dev) {
        fprintf(stderr, "no device: %s\n", ag_last_error());
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("device: %s (%s)\n", ag_device_name(dev), ag_device_backend(dev));
    Suite *(*suites[])(void) = {suite_tensor, suite_elementwise, suite_reduce, suite_matmul,
                                suite_softmax_loss, suite_nn, suite_autograd, suite_errors,
                                suite_optim, suite_rng, suite_regress, suite_fuzz_regress, suite_misuse, suite_modules, suite_faults, suite_threads, suite_dist, suite_attention,
                                suite_conformance};
    SRunner *sr = srunner_create(suites[0]());
    for (size_t i = 1; i < sizeof suites / sizeof suites[0]; i++) srunner_add_suite(sr, suites[i]());
    /* GPU drivers keep threads a fork() does not copy, and some tests use every
     * device: with a GPU backend present, tests run in this process (the
     * fixture in h_tcase_create cleans up after a failed one). CK_FORK=yes
     * forces forking anyway. */
    bool gpu = false;
    for (int i = 0; i < ag_device_count(); i++)
        gpu |= strcmp(ag_device_backend(ag_device_get(i)), "cpu") != 0;
    const char *fork_env = getenv("CK_FORK");
    if (gpu && !(fork_env && strcmp(fork_env, "yes") == 0)) srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int run = srunner_ntests_run(sr), failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    printf("%d passed, %d failed\n", run - failed, failed);
    return failed ? 1 : 0;
}
