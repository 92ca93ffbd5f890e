/* The op table: one row per public op of anygrad.h, the single source that drives
 * the conformance matrix (matrix.c), `anygrad check` and docs/ops.md.
 *
 * A row says how to build the op from input tensors (public API only), which fp64
 * reference function (ref.c) it is judged against, the input shape families it
 * runs on, the input domain, which inputs are differentiated, which edge values
 * have one agreed result, and its tolerance class (the one tolerance table lives
 * in harness.c). test_conformance.c counts rows against the op enums and against
 * the op functions declared in anygrad.h, so an op added without a row fails.
 */
#ifndef AG_TEST_OPTABLE_H
#define AG_TEST_OPTABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "anygrad.h"
#include "harness.h"
#include "ref.h"

typedef enum ot_kind {
    OT_UNARY, OT_SCALAR, OT_BINARY, OT_WHERE, OT_REDUCE, OT_VAR, OT_MATMUL, OT_LINEAR,
    OT_SOFTMAX, OT_LOSS, OT_CONV, OT_POOL, OT_NORM, OT_DROPOUT, OT_INDEX, OT_JOIN, OT_VIEW,
    OT_KIND_COUNT
} ot_kind;
const char *ot_kind_name(ot_kind k);

/* Edge-value categories (values listed in optable.c). A row takes the ones whose
 * result is defined the same way everywhere: IEEE limits, NaN propagation. */
enum {
    OT_E_ZERO = 1 << 0,  /* 0, -0 */
    OT_E_TINY = 1 << 1,  /* +-1e-30, +-2e-38 (normal floats; subnormal inputs may be flushed) */
    OT_E_HUGE = 1 << 2,  /* +-1e30 */
    OT_E_MAXF = 1 << 3,  /* +-3e38: overflows on any growth */
    OT_E_SAT = 1 << 4,   /* +-10, +-20, +-40, +-90: activation saturation, exp overflow */
    OT_E_INF = 1 << 5,   /* +-inf */
    OT_E_NAN = 1 << 6,   /* NaN */
    OT_E_ALL = (1 << 7) - 1
};
int ot_edge_values(unsigned mask, double *out, int cap); /* the pool for a mask */
const char *ot_edge_str(unsigned mask, char *buf, int size);

/* Input domains (each also has a wide-range variant, ot_dist_make()). */
typedef enum ot_dist {
    OT_D_NORMAL,    /* N(0, 1) */
    OT_D_AWAY0,     /* N(0, 1) kept 1e-3 away from the kink at 0 */
    OT_D_POSITIVE,  /* [0.5, 3): log, sqrt, rsqrt, pow, running variances */
    OT_D_UNIT,      /* [0, 1): probabilities, bce targets */
    OT_D_MASK,      /* 0 or 1: where's condition */
    OT_D_CLAMP,     /* N(0, 1) away from clamp's bounds -0.5 and 1.25 */
    OT_D_COUNT
} ot_dist;
const char *ot_dist_name(ot_dist d);
h_dist ot_dist_make(ot_dist d, bool wide);

typedef struct ot_input {
    int nd;
    int64_t shape[AG_MAX_DIMS];
    h_layout layout;
    int32_t int_hi;  /* > 0: an int32 input drawn from [0, int_hi) */
    int dist;        /* 0: the row's domain; else ot_dist + 1 (fixed domain, no edges) */
    bool nodiff;     /* never differentiated (running statistics, masks) */
} ot_input;

#define OT_MAX_IN 5
typedef struct ot_family {
    const char *name;
    int n;
    ot_input in[OT_MAX_IN];
    int64_t len;      /* reduction length for the growing tolerance classes */
    const void *arg;  /* op-specific: axes, conv parameters, ... */
} ot_family;

typedef struct ot_row ot_row;
/* What build and ref functions receive as their arg. */
typedef struct ot_ctx {
    const ot_row *row;
    const ot_family *fam;
} ot_ctx;

/* A property check for ops without a deterministic reference (training dropout):
 * gets the inputs, returns the worst error / tolerance ratio (<= 1 passes) and
 * writes what went wrong into msg. Covers forward and backward. */
typedef double (*ot_check_fn)(const ot_ctx *c, h_in *in, bool backward, char *msg, int size);

struct ot_row {
    const char *name;
    ot_kind kind;
    int op;              /* the enum value for unary, binary and reduce rows; else -1 */
    const char *api;     /* the public functions the row exercises, space separated */
    h_op_fn build;       /* arg is an ot_ctx */
    h_ref_fn ref;        /* arg is an ot_ctx */
    const void *arg;     /* row constants (unary parameters, losses' reduction, ...) */
    const ot_family *fam;
    int nfam;
    ot_dist dist;
    unsigned edges;      /* OT_E_* the row is judged on (forward only) */
    bool diff;           /* float inputs are differentiated (except nodiff ones) */
    const char *tol;     /* tolerance class (harness.c) */
    ot_check_fn check;   /* replaces ref and gradcheck when set */
};

int ot_row_count(void);
const ot_row *ot_row_at(int i);
const ot_row *ot_row_find(const char *name);

/* Op functions of anygrad.h that need no row, with the reason (NULL-terminated
 * pairs: name, why). test_conformance.c checks every other `ag_tensor *ag_*(`
 * declaration of anygrad.h is in some row's api. */
extern const char *const ot_not_ops[];

#endif /* AG_TEST_OPTABLE_H */
