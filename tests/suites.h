/* One Check suite per file; test_main.c runs them all. */
#ifndef AG_TEST_SUITES_H
#define AG_TEST_SUITES_H
#include <check.h>

/* tcase_create with a fixture that, after every test, closes the scopes a
 * failed test left open and restores the default device: the GPU backends run
 * without forking, so one failure must not leak into the next test. */
TCase *h_tcase_create(const char *name);

Suite *suite_tensor(void);        /* test_tensor.c: creation, views, host copies, scopes */
Suite *suite_elementwise(void);   /* test_elementwise.c: unary, binary, where, scalars */
Suite *suite_reduce(void);        /* test_reduce.c */
Suite *suite_matmul(void);        /* test_matmul.c: matmul, linear */
Suite *suite_softmax_loss(void);  /* test_softmax_loss.c */
Suite *suite_nn(void);            /* test_nn.c: conv, pool, norms, dropout, embedding, concat... */
Suite *suite_autograd(void);      /* test_autograd.c: engine behaviour */
Suite *suite_errors(void);        /* test_errors.c: bad input gives the documented error */
Suite *suite_optim(void);        /* test_optim.c: optimizers, clipping, schedules */
Suite *suite_rng(void);          /* test_rng.c: Philox known answers and element mapping */
Suite *suite_regress(void);       /* test_regress.c: bugs found in review */
Suite *suite_fuzz_regress(void);  /* test_fuzz_regress.c: inputs the fuzzers found */
Suite *suite_conformance(void);  /* test_conformance.c: the op table and the conformance matrix */
Suite *suite_faults(void);       /* test_faults.c: injected failures leave no leak and no damage */
Suite *suite_modules(void);      /* test_nn_modules.c: modules, data, checkpoints */
Suite *suite_threads(void);      /* test_threads.c: the CPU backend's thread count under load */
Suite *suite_dist(void);        /* test_dist.c: ag_dist_* in one process, loader sharding */
Suite *suite_misuse(void);       /* test_misuse.c: NULL and released handles, in-place writes, sizes */
Suite *suite_attention(void);    /* test_attention.c: the fused attention against a double reference */

#endif
