/* The conformance matrix: every op-table row x shape family x seed x device,
 * forward against the fp64 reference, backward against central differences of
 * the reference (h_gradcheck), devices against each other, and a small MLP
 * trained 50 steps with Adam on every device. Used by test_conformance.c and by
 * `anygrad check`; nothing here aborts: every outcome is recorded.
 */
#ifndef AG_TEST_MATRIX_H
#define AG_TEST_MATRIX_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "anygrad.h"

#define MX_MAX_TARGETS 8
#define MX_MODEL_STEPS 50

/* A device, optionally with AG_NUM_THREADS set while it runs (the self-comparison
 * variant when only one device exists). */
typedef struct mx_target {
    ag_device *dev;
    char label[48];
    char threads[8];     /* "" = inherit */
} mx_target;

typedef struct mx_config {
    bool quick;          /* 3 seeds (normal, wide, edge) instead of 6 */
    const char *op;      /* only this row ("pow" matches "pow(2.5)"); NULL = all */
    ag_device *device;   /* only this device; NULL = every device */
    bool self_compare;   /* one device: add it again with AG_NUM_THREADS=1, compare */
    bool model;          /* run the MLP agreement check */
    FILE *progress;      /* one line per row as it finishes; NULL = quiet */
} mx_config;

typedef struct mx_case {
    int row, fam, seed, target;
    double fwd, bwd, cross; /* worst error / tolerance; -1 = not measured */
    bool ok;
    char *msg;              /* first failure of the case, or NULL */
} mx_case;

typedef struct mx_cell {    /* one row on one target (or the cross comparison) */
    int ncases, nfail;
    double fwd, bwd;        /* worst ratios; -1 = never measured */
    const char *first_fail; /* borrowed from the case list */
} mx_cell;

typedef struct mx_model {
    bool run, ok;
    double loss0, loss_last;   /* first and last step's loss */
    double loss_ratio, weight_ratio; /* against target 0, / tolerance; -1 for target 0 */
    bool deterministic;        /* target 0 only: two runs bit-identical */
    char msg[256];
} mx_model;

typedef struct mx_results {
    int ntargets;
    mx_target targets[MX_MAX_TARGETS];
    int nrows;
    int *rows;              /* op-table indices run */
    mx_cell *cells;         /* [row][target] */
    mx_cell *cross;         /* [row][target]: target t against target 0 (t >= 1) */
    mx_case *cases;
    int ncases, capcases;
    int nfail;              /* failed cases */
    mx_model model[MX_MAX_TARGETS];
    int model_fail;
    double seconds;
    int nseeds;
} mx_results;

/* Runs the matrix; returns the number of failures (cases + model checks), or -1
 * when nothing could run (no device, unknown op: see the message in res). */
int mx_run(const mx_config *cfg, mx_results *res, char *err, int errsize);
void mx_free(mx_results *res);

const char *mx_seed_name(int seed, bool quick);
mx_cell *mx_cell_at(const mx_results *res, int r, int t);
mx_cell *mx_cross_at(const mx_results *res, int r, int t);

/* op rows x device columns, PASS/FAIL with the worst ratio, then the failures
 * (up to max_fail messages) and one summary line. */
void mx_print_table(FILE *f, const mx_results *res, int max_fail);
void mx_print_summary(FILE *f, const mx_results *res);
int mx_write_json(const char *path, const mx_results *res);
/* docs/ops.md: op x backend (forward, backward), metric and tolerance per row. */
int mx_write_docs(FILE *f, const mx_results *res);

/* Model-agreement tolerances (docs/testing.md explains them). */
#define MX_MODEL_LOSS_RTOL 1e-4
#define MX_MODEL_WEIGHT_ATOL 1e-3

#endif /* AG_TEST_MATRIX_H */
