/* The op table (see optable.h): builders, reference adapters, shape families and
 * the rows themselves, at the end of the file. */
#include "optable.h"
#include "ops/binary_table.h"
#include "ops/unary_table.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- edge values and domains -------------------------------------------- */

static const struct {
    unsigned bit;
    const char *name;
    int n;
    double v[8];
} EDGES[] = {
    {OT_E_ZERO, "zero", 2, {0.0, -0.0}},
    {OT_E_TINY, "tiny", 4, {1e-30, -1e-30, 2e-38, -2e-38}},
    {OT_E_HUGE, "huge", 2, {1e30, -1e30}},
    {OT_E_MAXF, "maxf", 2, {3e38, -3e38}},
    {OT_E_SAT, "sat", 8, {10, -10, 20, -20, 40, -40, 90, -90}},
    {OT_E_INF, "inf", 2, {INFINITY, -INFINITY}},
    {OT_E_NAN, "nan", 1, {NAN}},
};
#define NEDGES ((int)(sizeof EDGES / sizeof EDGES[0]))

int ot_edge_values(unsigned mask, double *out, int cap)
{
    int k = 0;
    for (int e = 0; e < NEDGES; e++)
        if (mask & EDGES[e].bit)
            for (int i = 0; i < EDGES[e].n && k < cap; i++) out[k++] = EDGES[e].v[i];
    return k;
}

const char *ot_edge_str(unsigned mask, char *buf, int size)
{
    int k = 0;
    buf[0] = '\0';
    if (!mask) snprintf(buf, (size_t)size, "-");
    for (int e = 0; e < NEDGES && k < size; e++)
        if (mask & EDGES[e].bit) k += snprintf(buf + k, (size_t)(size - k), "%s%s", k ? " " : "", EDGES[e].name);
    return buf;
}

const char *ot_dist_name(ot_dist d)
{
    static const char *const names[OT_D_COUNT] = {"normal", "away from 0", "positive", "[0, 1)",
                                                  "0/1 mask", "away from clamp bounds"};
    return (d >= 0 && d < OT_D_COUNT) ? names[d] : "?";
}

/* wide: the same domain over a wider range (uniform, several binades) */
h_dist ot_dist_make(ot_dist d, bool wide)
{
    static const double mask[2] = {0.0, 1.0};
    h_dist n = wide ? h_dist_wide() : h_dist_normal();
    switch (d) {
    case OT_D_AWAY0: return h_dist_away(n, 0.0, 0.05);
    /* two decades: wider makes central differences of log/rsqrt truncation-bound */
    case OT_D_POSITIVE: return wide ? h_dist_uniform(0.1, 10.0) : h_dist_positive();
    case OT_D_UNIT: return h_dist_uniform(0.0, 1.0);
    case OT_D_MASK: {
        h_dist m = h_dist_uniform(0.0, 1.0);
        m.pool = mask, m.npool = 2, m.pool_p = 1.0;
        return m;
    }
    case OT_D_CLAMP: return h_dist_away(h_dist_away(n, -0.5, 0.05), 1.25, 0.05);
    default: return n;
    }
}

const char *ot_kind_name(ot_kind k)
{
    static const char *const names[OT_KIND_COUNT] = {
        "unary", "scalar", "binary", "where", "reduce", "var", "matmul", "linear", "softmax",
        "loss", "conv", "pool", "norm", "dropout", "index", "join", "view"};
    return (k >= 0 && k < OT_KIND_COUNT) ? names[k] : "?";
}

/* ---- family helpers ------------------------------------------------------ */

#define CTX(a) ((const ot_ctx *)(a))
#define RARG(a, T) ((const T *)CTX(a)->row->arg)
#define FARG(a, T) ((const T *)CTX(a)->fam->arg)
#define NIN(a) (CTX(a)->fam->n)

#define IN(nd_, ...) {.nd = nd_, .shape = {__VA_ARGS__}}
#define INL(l, nd_, ...) {.nd = nd_, .shape = {__VA_ARGS__}, .layout = l}
#define INI(hi, nd_, ...) {.nd = nd_, .shape = {__VA_ARGS__}, .int_hi = hi}
#define IND(d, nd_, ...) {.nd = nd_, .shape = {__VA_ARGS__}, .dist = (d) + 1, .nodiff = true}
#define INDD(d, nd_, ...) {.nd = nd_, .shape = {__VA_ARGS__}, .dist = (d) + 1}
#define FAM(nm, ln, ag, ...) \
    {.name = nm, .n = (int)(sizeof((ot_input[]){__VA_ARGS__}) / sizeof(ot_input)), \
     .in = {__VA_ARGS__}, .len = ln, .arg = ag}
#define NF(a) ((int)(sizeof a / sizeof a[0]))
#define T_ H_TRANSPOSED
#define S_ H_SLICED
#define E_ H_EXPANDED

/* ---- element-wise ------------------------------------------------------- */

typedef struct u_arg {
    ag_unary_op op;
    float p0, p1;
    ag_tensor *(*fn)(ag_tensor *, float, float);
} u_arg;

#define W0(fn) \
    static ag_tensor *w_##fn(ag_tensor *x, float p0, float p1) { (void)p0, (void)p1; return ag_##fn(x); }
#define W1(fn) \
    static ag_tensor *w_##fn(ag_tensor *x, float p0, float p1) { (void)p1; return ag_##fn(x, p0); }
#define W2(fn) \
    static ag_tensor *w_##fn(ag_tensor *x, float p0, float p1) { return ag_##fn(x, p0, p1); }
#define WRAP_ROW(E, name, np, ...) W##np(name)
AG_UNARY_TABLE(WRAP_ROW)
#undef WRAP_ROW
W1(sub_scalar) W1(div_scalar)

static ag_tensor *b_unary(ag_tensor *const *in, const void *a)
{
    const u_arg *u = RARG(a, u_arg);
    return u->fn(in[0], u->p0, u->p1);
}
static rt r_unary(const rt *const *in, const void *a)
{
    const u_arg *u = RARG(a, u_arg);
    return ref_unary(u->op, in[0], u->p0, u->p1);
}
/* sub_scalar / div_scalar: no enum of their own, judged as x - s and x / s */
static rt r_sub_scalar(const rt *const *in, const void *a)
{
    rt s = rt_scalar(RARG(a, u_arg)->p0), y = ref_binary(AG_BINARY_SUB, in[0], &s);
    rt_free(&s);
    return y;
}
static rt r_div_scalar(const rt *const *in, const void *a)
{
    rt s = rt_scalar(RARG(a, u_arg)->p0), y = ref_binary(AG_BINARY_DIV, in[0], &s);
    rt_free(&s);
    return y;
}

typedef struct bin_arg {
    ag_binary_op op;
    ag_tensor *(*fn)(ag_tensor *, ag_tensor *);
} bin_arg;

static ag_tensor *b_binary(ag_tensor *const *in, const void *a) { return RARG(a, bin_arg)->fn(in[0], in[1]); }
static rt r_binary(const rt *const *in, const void *a) { return ref_binary(RARG(a, bin_arg)->op, in[0], in[1]); }
static ag_tensor *b_where(ag_tensor *const *in, const void *a) { (void)a; return ag_where(in[0], in[1], in[2]); }
static rt r_where(const rt *const *in, const void *a) { (void)a; return ref_where(in[0], in[1], in[2]); }

/* size 1, 0-dim, odd sizes, 1000+, a length past a GPU workgroup (1500), every layout */
static const ot_family F_UNARY[] = {
    FAM("[1]", 1, NULL, IN(1, 1)),
    FAM("[] 0-dim", 1, NULL, IN(0, 0)),
    FAM("[3,7]", 1, NULL, IN(2, 3, 7)),
    FAM("[33,3] transposed", 1, NULL, INL(T_, 2, 33, 3)),
    FAM("[2,3,33] sliced", 1, NULL, INL(S_, 3, 2, 3, 33)),
    FAM("[4,7] expanded", 1, NULL, INL(E_, 2, 4, 7)),
    FAM("[1500]", 1, NULL, IN(1, 1500)),
};
static const ot_family F_BINARY[] = {
    FAM("[1] . [1]", 1, NULL, IN(1, 1), IN(1, 1)),
    FAM("[3,7] . [3,7]", 1, NULL, IN(2, 3, 7), IN(2, 3, 7)),
    FAM("[33,3]T . [33,3]", 1, NULL, INL(T_, 2, 33, 3), IN(2, 33, 3)),
    FAM("[7,33]S . [7,33]E", 1, NULL, INL(S_, 2, 7, 33), INL(E_, 2, 7, 33)),
    FAM("[3,1,5] . [4,5] broadcast", 1, NULL, IN(3, 3, 1, 5), IN(2, 4, 5)),
    FAM("[1500] . [] broadcast", 1, NULL, IN(1, 1500), IN(0, 0)),
    FAM("[] . [7] broadcast", 1, NULL, IN(0, 0), IN(1, 7)),
    FAM("[1500] . [1500]", 1, NULL, IN(1, 1500), IN(1, 1500)),
};
static const ot_family F_WHERE[] = {
    FAM("[1]", 1, NULL, IND(OT_D_MASK, 1, 1), IN(1, 1), IN(1, 1)),
    FAM("[3,7]", 1, NULL, IND(OT_D_MASK, 2, 3, 7), IN(2, 3, 7), IN(2, 3, 7)),
    FAM("[3,1] ? [3,7] : [7] broadcast", 1, NULL, IND(OT_D_MASK, 2, 3, 1), IN(2, 3, 7), IN(1, 7)),
    FAM("[33,3]T ? [33,3]S : []", 1, NULL, IND(OT_D_MASK, 2, 33, 3), INL(T_, 2, 33, 3), IN(0, 0)),
    FAM("[1500]", 1, NULL, IND(OT_D_MASK, 1, 1500), IN(1, 1500), IN(1, 1500)),
};

/* ---- reductions ---------------------------------------------------------- */

typedef struct red_arg {
    int naxes, axes[2];
    bool keepdim;
    int correction;
} red_arg;
typedef struct redop_arg {
    ag_reduce_op op;
    ag_tensor *(*fn)(ag_tensor *, int, const int *, bool);
} redop_arg;

/* argmax/argmin take one axis: adapted to the reductions' signature */
static ag_tensor *w_argmax(ag_tensor *x, int n, const int *ax, bool k) { (void)n; return ag_argmax(x, ax[0], k); }
static ag_tensor *w_argmin(ag_tensor *x, int n, const int *ax, bool k) { (void)n; return ag_argmin(x, ax[0], k); }
#define ag_argmax w_argmax
#define ag_argmin w_argmin

static ag_tensor *b_reduce(ag_tensor *const *in, const void *a)
{
    const red_arg *r = FARG(a, red_arg);
    return RARG(a, redop_arg)->fn(in[0], r->naxes, r->axes, r->keepdim);
}
static rt r_reduce(const rt *const *in, const void *a)
{
    const red_arg *r = FARG(a, red_arg);
    return ref_reduce(RARG(a, redop_arg)->op, in[0], r->naxes, r->axes, r->keepdim);
}
static ag_tensor *b_sum_all(ag_tensor *const *in, const void *a) { (void)a; return ag_sum_all(in[0]); }
static ag_tensor *b_mean_all(ag_tensor *const *in, const void *a) { (void)a; return ag_mean_all(in[0]); }
static rt r_sum_all(const rt *const *in, const void *a) { (void)a; return ref_reduce(AG_REDUCE_SUM, in[0], 0, NULL, false); }
static rt r_mean_all(const rt *const *in, const void *a) { (void)a; return ref_reduce(AG_REDUCE_MEAN, in[0], 0, NULL, false); }
static ag_tensor *b_var(ag_tensor *const *in, const void *a)
{
    const red_arg *r = FARG(a, red_arg);
    return ag_var(in[0], r->naxes, r->axes, r->correction, r->keepdim);
}
static rt r_var(const rt *const *in, const void *a)
{
    const red_arg *r = FARG(a, red_arg);
    return ref_var(in[0], r->naxes, r->axes, r->correction, r->keepdim);
}

static const red_arg RA_ALL = {0, {0}, false, 1}, RA_1 = {1, {1}, false, 1},
                     RA_0K = {1, {0}, true, 1}, RA_M1 = {1, {-1}, false, 1},
                     RA_02 = {2, {0, 2}, false, 0}, RA_0 = {1, {0}, false, 1};
static const ot_family F_REDUCE[] = {
    FAM("[1] all", 1, &RA_ALL, IN(1, 1)),
    FAM("[3,7] axis 1", 7, &RA_1, IN(2, 3, 7)),
    FAM("[33,7] axis 0 keepdim", 33, &RA_0K, IN(2, 33, 7)),
    FAM("[2,3,33] axes 0,2", 66, &RA_02, IN(3, 2, 3, 33)),
    FAM("[7,33]T axis 0", 7, &RA_0, INL(T_, 2, 7, 33)),
    FAM("[5,66]S axis -1", 66, &RA_M1, INL(S_, 2, 5, 66)),
    FAM("[4,9]E axis 0", 4, &RA_0, INL(E_, 2, 4, 9)),
    FAM("[3,1500] axis -1", 1500, &RA_M1, IN(2, 3, 1500)),
    FAM("[1500] all", 1500, &RA_ALL, IN(1, 1500)),
};
/* var: one element has no unbiased variance (NaN, no gradient): population there */
static const red_arg RA_ALL0 = {0, {0}, false, 0};
static const ot_family F_VAR[] = {
    FAM("[1] all correction 0", 1, &RA_ALL0, IN(1, 1)),
    FAM("[3,7] axis 1", 7, &RA_1, IN(2, 3, 7)),
    FAM("[33,7] axis 0 keepdim", 33, &RA_0K, IN(2, 33, 7)),
    FAM("[2,3,33] axes 0,2 correction 0", 66, &RA_02, IN(3, 2, 3, 33)),
    FAM("[7,33]T axis 0", 7, &RA_0, INL(T_, 2, 7, 33)),
    FAM("[5,66]S axis -1", 66, &RA_M1, INL(S_, 2, 5, 66)),
    FAM("[3,1500] axis -1", 1500, &RA_M1, IN(2, 3, 1500)),
    FAM("[1500] all", 1500, &RA_ALL, IN(1, 1500)),
};
static const ot_family F_ARG[] = {
    FAM("[1] axis 0", 1, &RA_0, IN(1, 1)),
    FAM("[3,7] axis 1", 7, &RA_1, IN(2, 3, 7)),
    FAM("[33,7] axis 0 keepdim", 33, &RA_0K, IN(2, 33, 7)),
    FAM("[7,33]T axis 0", 7, &RA_0, INL(T_, 2, 7, 33)),
    FAM("[5,66]S axis -1", 66, &RA_M1, INL(S_, 2, 5, 66)),
    FAM("[3,1500] axis -1", 1500, &RA_M1, IN(2, 3, 1500)),
};
static const ot_family F_ALL[] = {
    FAM("[1]", 1, NULL, IN(1, 1)),
    FAM("[] 0-dim", 1, NULL, IN(0, 0)),
    FAM("[3,7]", 21, NULL, IN(2, 3, 7)),
    FAM("[7,33]T", 231, NULL, INL(T_, 2, 7, 33)),
    FAM("[1500]", 1500, NULL, IN(1, 1500)),
};

/* ---- linear algebra ------------------------------------------------------ */

static ag_tensor *b_matmul(ag_tensor *const *in, const void *a) { (void)a; return ag_matmul(in[0], in[1]); }
static rt r_matmul(const rt *const *in, const void *a) { (void)a; return ref_matmul(in[0], in[1]); }
static ag_tensor *b_linear(ag_tensor *const *in, const void *a) { return ag_linear(in[0], in[1], NIN(a) > 2 ? in[2] : NULL); }
static rt r_linear(const rt *const *in, const void *a) { return ref_linear(in[0], in[1], NIN(a) > 2 ? in[2] : NULL); }

static const ot_family F_MATMUL[] = {
    FAM("[1,1] @ [1,1]", 1, NULL, IN(2, 1, 1), IN(2, 1, 1)),
    FAM("[3,7] @ [7,5]", 7, NULL, IN(2, 3, 7), IN(2, 7, 5)),
    FAM("[33,65] @ [65,17]", 65, NULL, IN(2, 33, 65), IN(2, 65, 17)),
    FAM("[64,33]T @ [33,5]S", 33, NULL, INL(T_, 2, 64, 33), INL(S_, 2, 33, 5)),
    FAM("[2,3,7] @ [7,4] batch broadcast", 7, NULL, IN(3, 2, 3, 7), IN(2, 7, 4)),
    FAM("[7] @ [7,3] vector", 7, NULL, IN(1, 7), IN(2, 7, 3)),
    FAM("[3,1500] @ [1500] K=1500", 1500, NULL, IN(2, 3, 1500), IN(1, 1500)),
    FAM("[4,1500] @ [1500,3] K=1500", 1500, NULL, IN(2, 4, 1500), IN(2, 1500, 3)),
};
static const ot_family F_LINEAR[] = {
    FAM("[1,1] W[1,1] b[1]", 1, NULL, IN(2, 1, 1), IN(2, 1, 1), IN(1, 1)),
    FAM("[3,7] W[5,7] b[5]", 7, NULL, IN(2, 3, 7), IN(2, 5, 7), IN(1, 5)),
    FAM("[7] W[5,7]T b[5]", 7, NULL, IN(1, 7), INL(T_, 2, 5, 7), IN(1, 5)),
    FAM("[33,65] W[17,65] b[17]", 65, NULL, IN(2, 33, 65), IN(2, 17, 65), IN(1, 17)),
    FAM("[2,3,7]T W[4,7] no bias", 7, NULL, INL(T_, 3, 2, 3, 7), IN(2, 4, 7)),
    FAM("[4,1500] W[3,1500]S b[3]", 1500, NULL, IN(2, 4, 1500), INL(S_, 2, 3, 1500), IN(1, 3)),
};

/* ---- softmax and losses -------------------------------------------------- */

typedef struct sm_arg { int axis; } sm_arg;
static ag_tensor *b_softmax(ag_tensor *const *in, const void *a) { return ag_softmax(in[0], FARG(a, sm_arg)->axis); }
static ag_tensor *b_log_softmax(ag_tensor *const *in, const void *a) { return ag_log_softmax(in[0], FARG(a, sm_arg)->axis); }
static rt r_softmax(const rt *const *in, const void *a) { return ref_softmax(in[0], FARG(a, sm_arg)->axis, false); }
static rt r_log_softmax(const rt *const *in, const void *a) { return ref_softmax(in[0], FARG(a, sm_arg)->axis, true); }

static const sm_arg SM_M1 = {-1}, SM_0 = {0}, SM_1 = {1};
static const ot_family F_SOFTMAX[] = {
    FAM("[1,1] axis -1", 1, &SM_M1, IN(2, 1, 1)),
    FAM("[3,7] axis -1", 7, &SM_M1, IN(2, 3, 7)),
    FAM("[33,7] axis 0", 33, &SM_0, IN(2, 33, 7)),
    FAM("[3,4,5] axis 1", 4, &SM_1, IN(3, 3, 4, 5)),
    FAM("[5,7]T axis -1", 7, &SM_M1, INL(T_, 2, 5, 7)),
    FAM("[4,33]S axis -1", 33, &SM_M1, INL(S_, 2, 4, 33)),
    FAM("[2,1500] axis -1", 1500, &SM_M1, IN(2, 2, 1500)),
};

typedef struct loss_arg {
    ag_reduction red;
    float smoothing;
} loss_arg;
static ag_tensor *b_mse(ag_tensor *const *in, const void *a) { return ag_mse_loss(in[0], in[1], FARG(a, loss_arg)->red); }
static rt r_mse(const rt *const *in, const void *a) { return ref_mse(in[0], in[1], FARG(a, loss_arg)->red); }
static ag_tensor *b_ce(ag_tensor *const *in, const void *a)
{
    const loss_arg *l = FARG(a, loss_arg);
    return ag_cross_entropy(in[0], in[1], l->red, l->smoothing);
}
static rt r_ce(const rt *const *in, const void *a)
{
    const loss_arg *l = FARG(a, loss_arg);
    return ref_cross_entropy(in[0], in[1], l->red, l->smoothing);
}
static ag_tensor *b_nll(ag_tensor *const *in, const void *a) { return ag_nll_loss(in[0], in[1], FARG(a, loss_arg)->red); }
static rt r_nll(const rt *const *in, const void *a) { return ref_nll(in[0], in[1], FARG(a, loss_arg)->red); }
static ag_tensor *b_bce(ag_tensor *const *in, const void *a) { return ag_bce_with_logits(in[0], in[1], FARG(a, loss_arg)->red); }
static rt r_bce(const rt *const *in, const void *a) { return ref_bce_with_logits(in[0], in[1], FARG(a, loss_arg)->red); }

static const loss_arg L_MEAN = {AG_REDUCTION_MEAN, 0}, L_SUM = {AG_REDUCTION_SUM, 0},
                      L_NONE = {AG_REDUCTION_NONE, 0}, L_MEAN_LS = {AG_REDUCTION_MEAN, 0.1f},
                      L_SUM_LS = {AG_REDUCTION_SUM, 0.25f};
static const ot_family F_MSE[] = {
    FAM("[1] mean", 1, &L_MEAN, IN(1, 1), IN(1, 1)),
    FAM("[3,7] mean", 21, &L_MEAN, IN(2, 3, 7), IN(2, 3, 7)),
    FAM("[33,3]T none", 1, &L_NONE, INL(T_, 2, 33, 3), IN(2, 33, 3)),
    FAM("[7,33]S sum", 231, &L_SUM, INL(S_, 2, 7, 33), IN(2, 7, 33)),
    FAM("[1500] sum", 1500, &L_SUM, IN(1, 1500), IN(1, 1500)),
};
/* labels: int32 in [0, C) */
static const ot_family F_CE[] = {
    FAM("[1,1] mean", 1, &L_MEAN, IN(2, 1, 1), INI(1, 1, 1)),
    FAM("[3,7] mean", 21, &L_MEAN, IN(2, 3, 7), INI(7, 1, 3)),
    FAM("[33,5] sum smoothing 0.25", 165, &L_SUM_LS, IN(2, 33, 5), INI(5, 1, 33)),
    FAM("[7,3]T mean smoothing 0.1", 21, &L_MEAN_LS, INL(T_, 2, 7, 3), INI(3, 1, 7)),
    FAM("[5,9]S none", 9, &L_NONE, INL(S_, 2, 5, 9), INI(9, 1, 5)),
    FAM("[4,1500] mean", 6000, &L_MEAN, IN(2, 4, 1500), INI(1500, 1, 4)),
};
static const ot_family F_NLL[] = {
    FAM("[1,1] mean", 1, &L_MEAN, IN(2, 1, 1), INI(1, 1, 1)),
    FAM("[3,7] mean", 3, &L_MEAN, IN(2, 3, 7), INI(7, 1, 3)),
    FAM("[33,5] sum", 33, &L_SUM, IN(2, 33, 5), INI(5, 1, 33)),
    FAM("[7,3]T none", 1, &L_NONE, INL(T_, 2, 7, 3), INI(3, 1, 7)),
    FAM("[1500,3] mean", 1500, &L_MEAN, IN(2, 1500, 3), INI(3, 1, 1500)),
};
static const ot_family F_BCE[] = {
    FAM("[1] mean", 1, &L_MEAN, IN(1, 1), IND(OT_D_UNIT, 1, 1)),
    FAM("[3,7] mean", 21, &L_MEAN, IN(2, 3, 7), IND(OT_D_UNIT, 2, 3, 7)),
    FAM("[33,3]T none", 1, &L_NONE, INL(T_, 2, 33, 3), IND(OT_D_UNIT, 2, 33, 3)),
    FAM("[7,33]S sum", 231, &L_SUM, INL(S_, 2, 7, 33), IND(OT_D_UNIT, 2, 7, 33)),
    FAM("[1500] sum", 1500, &L_SUM, IN(1, 1500), IND(OT_D_UNIT, 1, 1500)),
};

/* ---- convolution and pooling ---------------------------------------------- */

/* Weights and biases of conv and the norms stay in the normal domain and edge
 * values go into x only: where a tap meets only zero padding, 0 * NaN (im2col)
 * and skipping the tap (direct loops) are both correct; and algebraically equal
 * forms such as x * (g rstd) + (b - m g rstd) differ at inf. */
#define WB(nd_, ...) INDD(OT_D_NORMAL, nd_, __VA_ARGS__)

static ag_tensor *b_conv(ag_tensor *const *in, const void *a)
{
    return ag_conv2d(in[0], in[1], NIN(a) > 2 ? in[2] : NULL, FARG(a, ag_conv2d_params));
}
static rt r_conv(const rt *const *in, const void *a)
{
    return ref_conv2d(in[0], in[1], NIN(a) > 2 ? in[2] : NULL, FARG(a, ag_conv2d_params));
}
static const ag_conv2d_params CV_1 = {{1, 1}, {0, 0}, {1, 1}, 1}, CV_P1 = {{1, 1}, {1, 1}, {1, 1}, 1},
                              CV_S2G2 = {{2, 2}, {1, 0}, {1, 1}, 2}, CV_D2 = {{1, 2}, {2, 1}, {2, 2}, 1},
                              CV_P2 = {{1, 1}, {2, 2}, {1, 1}, 1};
static const ot_family F_CONV[] = {
    FAM("x[1,1,1,1] w[1,1,1,1]", 1, &CV_1, IN(4, 1, 1, 1, 1), WB(4, 1, 1, 1, 1), WB(1, 1)),
    FAM("x[2,3,7,7] w[5,3,3,3] pad 1", 27, &CV_P1, IN(4, 2, 3, 7, 7), WB(4, 5, 3, 3, 3), WB(1, 5)),
    FAM("x[1,4,9,7] w[6,2,3,3] stride 2 groups 2", 18, &CV_S2G2, IN(4, 1, 4, 9, 7), WB(4, 6, 2, 3, 3), WB(1, 6)),
    FAM("x[2,3,8,9] w[4,3,3,2] dilation 2", 18, &CV_D2, IN(4, 2, 3, 8, 9), WB(4, 4, 3, 3, 2)),
    FAM("x[2,2,5,6]T w[3,2,3,3] no bias", 18, &CV_P1, INL(T_, 4, 2, 2, 5, 6), WB(4, 3, 2, 3, 3)),
    FAM("x[1,2,40,40] w[2,2,5,5] pad 2", 50, &CV_P2, IN(4, 1, 2, 40, 40), WB(4, 2, 2, 5, 5), WB(1, 2)),
};

typedef struct pool_arg { bool max; } pool_arg;
static ag_tensor *b_pool(ag_tensor *const *in, const void *a)
{
    const ag_pool2d_params *p = FARG(a, ag_pool2d_params);
    return RARG(a, pool_arg)->max ? ag_max_pool2d(in[0], p) : ag_avg_pool2d(in[0], p);
}
static rt r_pool(const rt *const *in, const void *a) { return ref_pool2d(RARG(a, pool_arg)->max, in[0], FARG(a, ag_pool2d_params)); }
static const ag_pool2d_params PL_1 = {{1, 1}, {1, 1}, {0, 0}}, PL_2 = {{2, 2}, {2, 2}, {0, 0}},
                              PL_3P = {{3, 3}, {2, 2}, {1, 1}}, PL_3 = {{3, 2}, {1, 1}, {0, 1}};
static const ot_family F_POOL[] = {
    FAM("[1,1,1,1] k1", 1, &PL_1, IN(4, 1, 1, 1, 1)),
    FAM("[2,3,7,7] k2 s2", 4, &PL_2, IN(4, 2, 3, 7, 7)),
    FAM("[1,2,9,8] k3 s2 pad 1", 9, &PL_3P, IN(4, 1, 2, 9, 8)),
    FAM("[2,2,6,5]T k3x2 pad 0,1", 6, &PL_3, INL(T_, 4, 2, 2, 6, 5)),
    FAM("[1,3,33,33] k2 s2", 4, &PL_2, IN(4, 1, 3, 33, 33)),
};

/* ---- normalisation -------------------------------------------------------- */

/* inputs in order: x, [running_mean, running_var], [weight, bias] */
typedef struct bn_arg { bool track, affine; } bn_arg;
typedef struct bnrow_arg { bool training; } bnrow_arg;
static ag_tensor *b_bn(ag_tensor *const *in, const void *a)
{
    const bn_arg *f = FARG(a, bn_arg);
    int k = f->track ? 3 : 1;
    return ag_batch_norm(in[0], f->track ? in[1] : NULL, f->track ? in[2] : NULL,
                         f->affine ? in[k] : NULL, f->affine ? in[k + 1] : NULL,
                         RARG(a, bnrow_arg)->training, 0.1f, 1e-5f);
}
static rt r_bn(const rt *const *in, const void *a)
{
    const bn_arg *f = FARG(a, bn_arg);
    int k = f->track ? 3 : 1;
    /* the reference updates running statistics in place: work on copies */
    rt m = f->track ? rt_clone(in[1]) : rt_invalid(), v = f->track ? rt_clone(in[2]) : rt_invalid();
    rt y = ref_batch_norm(in[0], f->track ? &m : NULL, f->track ? &v : NULL, f->affine ? in[k] : NULL,
                          f->affine ? in[k + 1] : NULL, RARG(a, bnrow_arg)->training,
                          (double)0.1f, (double)1e-5f);
    rt_free(&m);
    rt_free(&v);
    return y;
}
static const bn_arg BN_TA = {true, true}, BN_T = {true, false}, BN_A = {false, true};
#define RM(C) IND(OT_D_NORMAL, 1, C)
#define RV(C) IND(OT_D_POSITIVE, 1, C)
static const ot_family F_BN_TRAIN[] = {
    FAM("[4,3] affine", 4, &BN_TA, IN(2, 4, 3), RM(3), RV(3), WB(1, 3), WB(1, 3)),
    FAM("[2,3,5,5] affine", 50, &BN_TA, IN(4, 2, 3, 5, 5), RM(3), RV(3), WB(1, 3), WB(1, 3)),
    FAM("[8,5,33] plain", 264, &BN_T, IN(3, 8, 5, 33), RM(5), RV(5)),
    FAM("[7,3]T affine, no running stats", 7, &BN_A, INL(T_, 2, 7, 3), WB(1, 3), WB(1, 3)),
    FAM("[4,2,200] affine", 800, &BN_TA, IN(3, 4, 2, 200), RM(2), RV(2), WB(1, 2), WB(1, 2)),
};
static const ot_family F_BN_EVAL[] = {
    FAM("[4,3] affine", 1, &BN_TA, IN(2, 4, 3), RM(3), RV(3), WB(1, 3), WB(1, 3)),
    FAM("[2,3,5,5] affine", 1, &BN_TA, IN(4, 2, 3, 5, 5), RM(3), RV(3), WB(1, 3), WB(1, 3)),
    FAM("[8,5,33]S plain", 1, &BN_T, INL(S_, 3, 8, 5, 33), RM(5), RV(5)),
    FAM("[3,1500] plain", 1, &BN_T, IN(2, 3, 1500), RM(1500), RV(1500)),
};

typedef struct ln_arg { int nnd; bool affine; } ln_arg;
static ag_tensor *b_ln(ag_tensor *const *in, const void *a)
{
    const ln_arg *f = FARG(a, ln_arg);
    return ag_layer_norm(in[0], f->nnd, f->affine ? in[1] : NULL, f->affine ? in[2] : NULL, 1e-5f);
}
static rt r_ln(const rt *const *in, const void *a)
{
    const ln_arg *f = FARG(a, ln_arg);
    return ref_layer_norm(in[0], f->nnd, f->affine ? in[1] : NULL, f->affine ? in[2] : NULL, (double)1e-5f);
}
static const ln_arg LN_1A = {1, true}, LN_1 = {1, false}, LN_2A = {2, true};
static const ot_family F_LN[] = {
    FAM("[3,7] affine", 7, &LN_1A, IN(2, 3, 7), WB(1, 7), WB(1, 7)),
    FAM("[2,3,33] last 2 axes affine", 99, &LN_2A, IN(3, 2, 3, 33), WB(2, 3, 33), WB(2, 3, 33)),
    FAM("[5,7]T plain", 7, &LN_1, INL(T_, 2, 5, 7)),
    FAM("[4,33]S affine", 33, &LN_1A, INL(S_, 2, 4, 33), WB(1, 33), WB(1, 33)),
    FAM("[2,1500] affine", 1500, &LN_1A, IN(2, 2, 1500), WB(1, 1500), WB(1, 1500)),
};

/* ---- attention ------------------------------------------------------------ */

typedef struct attn_arg { bool mask, causal; float scale; } attn_arg;
static ag_tensor *b_attn(ag_tensor *const *in, const void *a)
{
    const attn_arg *f = FARG(a, attn_arg);
    return ag_scaled_dot_product_attention(in[0], in[1], in[2], f->mask ? in[3] : NULL, 0.0f,
                                           f->causal, f->scale);
}
static rt r_attn(const rt *const *in, const void *a)
{
    const attn_arg *f = FARG(a, attn_arg);
    return ref_attention(in[0], in[1], in[2], f->mask ? in[3] : NULL, f->causal, f->scale);
}
static const attn_arg AT_PLAIN = {false, false, 0.0f}, AT_CAUSAL = {false, true, 0.0f},
                      AT_MASK = {true, false, 0.0f}, AT_SCALE = {false, false, 0.5f};
static const ot_family F_ATTN[] = {
    FAM("q[2,3,5] k[2,4,5] v[2,4,3]", 5, &AT_PLAIN, IN(3, 2, 3, 5), IN(3, 2, 4, 5), IN(3, 2, 4, 3)),
    FAM("[1,2,6,8] causal", 8, &AT_CAUSAL, IN(4, 1, 2, 6, 8), IN(4, 1, 2, 6, 8), IN(4, 1, 2, 6, 8)),
    FAM("q[3,8] k,v[5,8] causal, L < S", 8, &AT_CAUSAL, IN(2, 3, 8), IN(2, 5, 8), IN(2, 5, 2)),
    FAM("[2,4,6] mask[4,7] broadcast", 7, &AT_MASK, IN(3, 2, 4, 6), IN(3, 2, 7, 6), IN(3, 2, 7, 5),
        IN(2, 4, 7)),
    FAM("q[3,5,8]T k,v[4,8] batch broadcast, scale 0.5", 8, &AT_SCALE, INL(T_, 3, 3, 5, 8),
        IN(2, 4, 8), INL(S_, 2, 4, 6)),
    FAM("[1,40,33] long rows", 40, &AT_CAUSAL, IN(3, 1, 40, 33), IN(3, 1, 40, 33), IN(3, 1, 40, 33)),
};

/* ---- dropout -------------------------------------------------------------- */

typedef struct drop_arg { float p; bool training; } drop_arg;
static ag_tensor *b_dropout(ag_tensor *const *in, const void *a)
{
    const drop_arg *d = RARG(a, drop_arg);
    return ag_dropout(in[0], d->p, d->training);
}
static rt r_identity(const rt *const *in, const void *a) { (void)a; return rt_clone(in[0]); }

/* Training dropout keeps each element with probability 1 - p, scaled by 1/(1 - p):
 * every output is 0 or x / (1 - p), the gradient is u / (1 - p) exactly where the
 * output is kept, and the kept fraction is within 6 sigma of 1 - p. */
static double check_dropout(const ot_ctx *c, h_in *in, bool backward, char *msg, int size)
{
    const drop_arg *d = c->row->arg;
    double scale = 1.0 / (1.0 - (double)d->p), worst = 0;
    h_tol tol = h_tol_get("arith", 1);
    ag_scope_begin();
    ag_tensor *v = in[0].t;
    if (backward) {
        ag_zero_grad(in[0].leaf);
        ag_set_requires_grad(in[0].leaf, true);
        v = h_view(&in[0]);
    }
    ag_tensor *y = ag_dropout(v, d->p, true);
    rt got = h_read(y), kept = rt_invalid(), gwant = rt_invalid(), ggot = rt_invalid();
    if (!rt_valid(&got)) {
        snprintf(msg, (size_t)size, "dropout returned no result: %s", ag_last_error());
        worst = INFINITY;
        goto done;
    }
    int64_t n = rt_numel(&got), nkept = 0;
    kept = rt_clone(&in[0].val);
    for (int64_t i = 0; i < n; i++) {
        bool k = got.data[i] != 0.0;
        nkept += k;
        kept.data[i] = k ? in[0].val.data[i] * scale : 0.0;
    }
    worst = h_measure("dropout (kept values)", &got, &kept, tol, msg, size);
    if (n >= 100) {
        double q = 1.0 - d->p, dev = fabs((double)nkept / (double)n - q), sd = sqrt(q * (1 - q) / (double)n);
        double r = dev / (6 * sd);
        if (r > 1 && r > worst)
            snprintf(msg, (size_t)size, "dropout: kept %lld of %lld, expected %.3f of them (6 sigma %.3g)",
                     (long long)nkept, (long long)n, q, 6 * sd);
        worst = fmax(worst, r);
    }
    if (backward && worst <= 1) {
        rt u = rt_clone(&got);
        for (int64_t i = 0; i < n; i++) u.data[i] = h_normal();
        ag_tensor *ut = h_tensor(&u);
        if (ag_backward(y, ut) != AG_OK || !ag_grad(in[0].leaf)) {
            snprintf(msg, (size_t)size, "dropout backward failed: %s", ag_last_error());
            worst = INFINITY;
        } else {
            /* the gradient lands on the leaf; this row's families are contiguous */
            ggot = h_read(ag_grad(in[0].leaf));
            gwant = rt_clone(&u);
            for (int64_t i = 0; i < n; i++) gwant.data[i] = got.data[i] != 0.0 ? u.data[i] * scale : 0.0;
            char m2[512];
            double r = h_measure("dropout gradient", &ggot, &gwant, tol, m2, sizeof m2);
            if (r > 1 && r > worst) snprintf(msg, (size_t)size, "%s", m2);
            worst = fmax(worst, r);
        }
        rt_free(&u);
    }
done:
    if (backward) {
        ag_zero_grad(in[0].leaf);
        ag_set_requires_grad(in[0].leaf, false);
    }
    rt_free(&got), rt_free(&kept), rt_free(&gwant), rt_free(&ggot);
    ag_scope_end();
    return worst;
}

static const ot_family F_DROP[] = {
    FAM("[1]", 1, NULL, IN(1, 1)),
    FAM("[3,7]", 1, NULL, IN(2, 3, 7)),
    FAM("[33,7]", 1, NULL, IN(2, 33, 7)),
    FAM("[1500]", 1, NULL, IN(1, 1500)),
};
static const ot_family F_DROP_ID[] = {
    FAM("[1]", 1, NULL, IN(1, 1)),
    FAM("[33,3]T", 1, NULL, INL(T_, 2, 33, 3)),
    FAM("[1500]", 1, NULL, IN(1, 1500)),
};

/* ---- indexing ------------------------------------------------------------- */

typedef struct ax_arg { int axis; } ax_arg;
static ag_tensor *b_embedding(ag_tensor *const *in, const void *a) { (void)a; return ag_embedding(in[0], in[1]); }
static rt r_embedding(const rt *const *in, const void *a) { (void)a; return ref_embedding(in[0], in[1]); }
static ag_tensor *b_gather(ag_tensor *const *in, const void *a) { return ag_gather(in[0], FARG(a, ax_arg)->axis, in[1]); }
static rt r_gather(const rt *const *in, const void *a) { return ref_gather(in[0], FARG(a, ax_arg)->axis, in[1]); }
static ag_tensor *b_scatter(ag_tensor *const *in, const void *a) { return ag_scatter_add(in[0], FARG(a, ax_arg)->axis, in[1], in[2]); }
static rt r_scatter(const rt *const *in, const void *a) { return ref_scatter_add(in[0], FARG(a, ax_arg)->axis, in[1], in[2]); }

static const ax_arg AX_0 = {0}, AX_1 = {1}, AX_M1 = {-1}, AX_2 = {2};
static const ot_family F_EMB[] = {
    FAM("[1] from [1,1]", 1, NULL, INI(1, 1, 1), IN(2, 1, 1)),
    FAM("[3] from [7,5]", 1, NULL, INI(7, 1, 3), IN(2, 7, 5)),
    FAM("[2,33] from [7,3]T (repeats)", 1, NULL, INI(7, 2, 2, 33), INL(T_, 2, 7, 3)),
    FAM("[50] from [1500,3]", 1, NULL, INI(1500, 1, 50), IN(2, 1500, 3)),
};
static const ot_family F_GATHER[] = {
    FAM("[1] axis 0", 1, &AX_0, IN(1, 1), INI(1, 1, 1)),
    FAM("[3,7] axis 1 index [3,4]", 1, &AX_1, IN(2, 3, 7), INI(7, 2, 3, 4)),
    FAM("[33,5]T axis 0 index [40,5]", 1, &AX_0, INL(T_, 2, 33, 5), INI(33, 2, 40, 5)),
    FAM("[2,3,9]S axis -1 index [2,2,4]", 1, &AX_M1, INL(S_, 3, 2, 3, 9), INI(9, 3, 2, 2, 4)),
    FAM("[1500] axis 0 index [2000]", 1, &AX_0, IN(1, 1500), INI(1500, 1, 2000)),
};
static const ot_family F_SCATTER[] = {
    FAM("[1] axis 0", 2, &AX_0, IN(1, 1), INI(1, 1, 1), IN(1, 1)),
    FAM("[3,7] axis 1 index [3,4] src [3,5]", 4, &AX_1, IN(2, 3, 7), INI(7, 2, 3, 4), IN(2, 3, 5)),
    FAM("[33,5]T axis 0 index [40,5]", 8, &AX_0, INL(T_, 2, 33, 5), INI(33, 2, 40, 5), IN(2, 40, 5)),
    FAM("[2,3,9] axis 2 index [2,2,4] src S", 4, &AX_2, IN(3, 2, 3, 9), INI(9, 3, 2, 2, 4), INL(S_, 3, 2, 3, 4)),
    FAM("[1500] axis 0 index [2000]", 8, &AX_0, IN(1, 1500), INI(1500, 1, 2000), IN(1, 2000)),
};

/* ---- joins ---------------------------------------------------------------- */

static ag_tensor *b_concat(ag_tensor *const *in, const void *a) { return ag_concat(NIN(a), in, FARG(a, ax_arg)->axis); }
static rt r_concat(const rt *const *in, const void *a) { return ref_concat(NIN(a), in, FARG(a, ax_arg)->axis); }
static ag_tensor *b_stack(ag_tensor *const *in, const void *a) { return ag_stack(NIN(a), in, FARG(a, ax_arg)->axis); }
static rt r_stack(const rt *const *in, const void *a) { return ref_stack(NIN(a), in, FARG(a, ax_arg)->axis); }

static const ot_family F_CONCAT[] = {
    FAM("[1] + [1]", 1, &AX_0, IN(1, 1), IN(1, 1)),
    FAM("[2,3] + [4,3] + [1,3] axis 0", 1, &AX_0, IN(2, 2, 3), IN(2, 4, 3), IN(2, 1, 3)),
    FAM("[3,7]T + [3,1] + [3,33]S axis -1", 1, &AX_M1, INL(T_, 2, 3, 7), IN(2, 3, 1), INL(S_, 2, 3, 33)),
    FAM("[1500] + [7] axis 0", 1, &AX_0, IN(1, 1500), IN(1, 7)),
};
static const ot_family F_STACK[] = {
    FAM("2 x [1] axis 0", 1, &AX_0, IN(1, 1), IN(1, 1)),
    FAM("3 x [3,7] axis 0", 1, &AX_0, IN(2, 3, 7), INL(T_, 2, 3, 7), INL(S_, 2, 3, 7)),
    FAM("2 x [33] axis -1", 1, &AX_M1, IN(1, 33), IN(1, 33)),
    FAM("2 x [4,7]E axis 1", 1, &AX_1, INL(E_, 2, 4, 7), IN(2, 4, 7)),
    FAM("2 x [1500] axis 1", 1, &AX_1, IN(1, 1500), IN(1, 1500)),
};

/* ---- views ---------------------------------------------------------------- */

typedef struct view_arg {
    int nd;
    int64_t shape[AG_MAX_DIMS];
    int ax[AG_MAX_DIMS];
    int64_t start, end, step;
} view_arg;
typedef enum view_op {
    V_RESHAPE, V_PERMUTE, V_TRANSPOSE, V_SLICE, V_EXPAND, V_SQUEEZE, V_UNSQUEEZE, V_FLATTEN,
    V_CONTIGUOUS, V_CLONE, V_DETACH, V_TO_DTYPE
} view_op;
typedef struct vrow_arg { view_op op; } vrow_arg;

static ag_tensor *b_view(ag_tensor *const *in, const void *a)
{
    const view_arg *v = FARG(a, view_arg);
    ag_tensor *x = in[0];
    switch (RARG(a, vrow_arg)->op) {
    case V_RESHAPE: return ag_reshape(x, v->nd, v->shape);
    case V_PERMUTE: return ag_permute(x, v->ax);
    case V_TRANSPOSE: return ag_transpose(x, v->ax[0], v->ax[1]);
    case V_SLICE: return ag_slice(x, v->ax[0], v->start, v->end, v->step);
    case V_EXPAND: return ag_expand(x, v->nd, v->shape);
    case V_SQUEEZE: return ag_squeeze(x, v->ax[0]);
    case V_UNSQUEEZE: return ag_unsqueeze(x, v->ax[0]);
    case V_FLATTEN: return ag_flatten(x, v->ax[0], v->ax[1]);
    case V_CONTIGUOUS: return ag_contiguous(x);
    case V_CLONE: return ag_clone(x);
    case V_DETACH: return ag_detach(x);
    case V_TO_DTYPE: return ag_to_dtype(x, ag_dtype_of(x) == AG_F32 ? AG_I32 : AG_F32);
    }
    return NULL;
}
static rt r_view(const rt *const *in, const void *a)
{
    const view_arg *v = FARG(a, view_arg);
    const rt *x = in[0];
    switch (RARG(a, vrow_arg)->op) {
    case V_RESHAPE: return ref_reshape(x, v->nd, v->shape);
    case V_PERMUTE: return ref_permute(x, v->ax);
    case V_TRANSPOSE: return ref_transpose(x, v->ax[0], v->ax[1]);
    case V_SLICE: return ref_slice(x, v->ax[0], v->start, v->end, v->step);
    case V_EXPAND: return ref_expand(x, v->nd, v->shape);
    case V_SQUEEZE: return ref_squeeze(x, v->ax[0]);
    case V_UNSQUEEZE: return ref_unsqueeze(x, v->ax[0]);
    case V_FLATTEN: return ref_flatten(x, v->ax[0], v->ax[1]);
    case V_TO_DTYPE: {
        rt y = rt_clone(x); /* float to int32 truncates toward zero */
        for (int64_t i = 0; i < rt_numel(&y) && rt_valid(&y); i++) y.data[i] = trunc(y.data[i]);
        return y;
    }
    default: return rt_clone(x);
    }
}

static const view_arg VA_NONE = {0, {0}, {0}, 0, 0, 0};
static const view_arg VR_1 = {2, {7, -1}, {0}, 0, 0, 0}, VR_2 = {1, {-1}, {0}, 0, 0, 0},
                      VR_3 = {3, {2, 5, 150}, {0}, 0, 0, 0}, VR_0 = {0, {0}, {0}, 0, 0, 0};
static const ot_family F_RESHAPE[] = {
    FAM("[1] -> []", 1, &VR_0, IN(1, 1)),
    FAM("[3,7]T -> [7,-1] (copies)", 1, &VR_1, INL(T_, 2, 3, 7)),
    FAM("[3,33]S -> [-1]", 1, &VR_2, INL(S_, 2, 3, 33)),
    FAM("[1500] -> [2,5,150]", 1, &VR_3, IN(1, 1500)),
};
static const view_arg VP_1 = {0, {0}, {1, 0}, 0, 0, 0}, VP_2 = {0, {0}, {2, 0, 1}, 0, 0, 0};
static const ot_family F_PERMUTE[] = {
    FAM("[3,7] (1,0)", 1, &VP_1, IN(2, 3, 7)),
    FAM("[2,3,33]S (2,0,1)", 1, &VP_2, INL(S_, 3, 2, 3, 33)),
    FAM("[4,5,6]E (2,0,1)", 1, &VP_2, INL(E_, 3, 4, 5, 6)),
};
static const view_arg VT_1 = {0, {0}, {0, 1}, 0, 0, 0}, VT_2 = {0, {0}, {0, -1}, 0, 0, 0};
static const ot_family F_TRANSPOSE[] = {
    FAM("[3,7] (0,1)", 1, &VT_1, IN(2, 3, 7)),
    FAM("[33,3]T (0,1)", 1, &VT_1, INL(T_, 2, 33, 3)),
    FAM("[2,3,1500] (0,-1)", 1, &VT_2, IN(3, 2, 3, 1500)),
};
static const view_arg VS_1 = {0, {0}, {1}, 1, 6, 2}, VS_2 = {0, {0}, {0}, 7, -20, 3},
                      VS_3 = {0, {0}, {-1}, 0, 1, 1}, VS_4 = {0, {0}, {0}, -20, 1000, 1};
static const ot_family F_SLICE[] = {
    FAM("[3,7] axis 1 [1:6:2]", 1, &VS_1, IN(2, 3, 7)),
    FAM("[1500] [-20:1000] (empty)", 1, &VS_4, IN(1, 1500)),
    FAM("[1500,5]T axis 0 [7:-20:3]", 1, &VS_2, INL(T_, 2, 1500, 5)),
    FAM("[4,9]S axis -1 [0:1]", 1, &VS_3, INL(S_, 2, 4, 9)),
};
static const view_arg VE_1 = {2, {5, 7}, {0}, 0, 0, 0}, VE_2 = {3, {2, -1, 1500}, {0}, 0, 0, 0},
                      VE_3 = {3, {4, 3, 7}, {0}, 0, 0, 0};
static const ot_family F_EXPAND[] = {
    FAM("[1,7] -> [5,7]", 1, &VE_1, IN(2, 1, 7)),
    FAM("[3,1] -> [2,-1,1500]", 1, &VE_2, IN(2, 3, 1)),
    FAM("[3,7]T -> [4,3,7]", 1, &VE_3, INL(T_, 2, 3, 7)),
};
static const view_arg VQ_0 = {0, {0}, {0}, 0, 0, 0}, VQ_1 = {0, {0}, {1}, 0, 0, 0}, VQ_M1 = {0, {0}, {-1}, 0, 0, 0};
static const ot_family F_SQUEEZE[] = {
    FAM("[1] axis 0", 1, &VQ_0, IN(1, 1)),
    FAM("[3,1,7] axis 1", 1, &VQ_1, IN(3, 3, 1, 7)),
    FAM("[3,7] axis 1 (no-op)", 1, &VQ_1, IN(2, 3, 7)),
    FAM("[33,1]T axis -1", 1, &VQ_M1, INL(T_, 2, 33, 1)),
};
static const ot_family F_UNSQUEEZE[] = {
    FAM("[] axis 0", 1, &VQ_0, IN(0, 0)),
    FAM("[3,7] axis 1", 1, &VQ_1, IN(2, 3, 7)),
    FAM("[33,5]S axis -1", 1, &VQ_M1, INL(S_, 2, 33, 5)),
};
static const view_arg VF_1 = {0, {0}, {0, -1}, 0, 0, 0}, VF_2 = {0, {0}, {1, 2}, 0, 0, 0};
static const ot_family F_FLATTEN[] = {
    FAM("[] all", 1, &VF_1, IN(0, 0)),
    FAM("[3,7] all", 1, &VF_1, IN(2, 3, 7)),
    FAM("[2,3,5,7]T axes 1..2", 1, &VF_2, INL(T_, 4, 2, 3, 5, 7)),
    FAM("[2,3,33]S axes 1..2", 1, &VF_2, INL(S_, 3, 2, 3, 33)),
};
static const ot_family F_COPY[] = {
    FAM("[1]", 1, &VA_NONE, IN(1, 1)),
    FAM("[3,7]T", 1, &VA_NONE, INL(T_, 2, 3, 7)),
    FAM("[2,3,33]S", 1, &VA_NONE, INL(S_, 3, 2, 3, 33)),
    FAM("[4,7]E", 1, &VA_NONE, INL(E_, 2, 4, 7)),
    FAM("[1500]", 1, &VA_NONE, IN(1, 1500)),
};
static const ot_family F_TODTYPE[] = {
    FAM("f32 [3,7] -> i32", 1, &VA_NONE, IN(2, 3, 7)),
    FAM("f32 [33,3]T -> i32", 1, &VA_NONE, INL(T_, 2, 33, 3)),
    FAM("i32 [1500] -> f32", 1, &VA_NONE, INI(1000000, 1, 1500)),
};

/* ---- the rows -------------------------------------------------------------- */

/* one conformance row per row of the op table (src/ops/unary_table.h) */
#define UROW(E, f, np, pn, doc, mod, uy, on, wrap, nm, p0, p1, d, e, tol, ref)                   \
    {nm, OT_UNARY, AG_UNARY_##E, "ag_" #f, b_unary, r_unary, &(const u_arg){AG_UNARY_##E, p0, p1, w_##f}, \
     F_UNARY, NF(F_UNARY), OT_D_##d, E_##e, true, tol, NULL},
/* one conformance row per row of src/ops/binary_table.h */
#define BROW(E, f, doc, grad, on, d, tol, ref)                                                   \
    {#f, OT_BINARY, AG_BINARY_##E, "ag_" #f, b_binary, r_binary, &(const bin_arg){AG_BINARY_##E, ag_##f}, \
     F_BINARY, NF(F_BINARY), OT_D_##d, E_EW, (grad) != 0, tol, NULL},
#define RROW(nm, OP, f, fam, e, diff, tol) \
    {nm, OT_REDUCE, OP, #f, b_reduce, r_reduce, &(const redop_arg){OP, f}, fam, NF(fam), OT_D_NORMAL, e, diff, tol, NULL}
#define ROW(nm, kind, api, b, r, arg, fam, d, e, diff, tol) \
    {nm, kind, -1, api, b, r, arg, fam, NF(fam), d, e, diff, tol, NULL}

/* no edges for ops whose result depends on summation order at huge values, or
 * whose true limit at inf is 0 while inf * 0 gives NaN (silu, gelu) */
#define E_EW OT_E_ALL
#define E_NOINF (OT_E_ALL & ~OT_E_INF)
#define E_SUM (OT_E_ZERO | OT_E_TINY | OT_E_INF | OT_E_NAN)
#define E_MOVE OT_E_ALL

static const ot_row ROWS[] = {
    AG_UNARY_TABLE(UROW)
    {"sub_scalar(1.5)", OT_SCALAR, -1, "ag_sub_scalar", b_unary, r_sub_scalar,
     &(const u_arg){AG_UNARY_ADD_SCALAR, 1.5f, 0, w_sub_scalar}, F_UNARY, NF(F_UNARY), OT_D_NORMAL, E_EW, true, "arith", NULL},
    {"div_scalar(3)", OT_SCALAR, -1, "ag_div_scalar", b_unary, r_div_scalar,
     &(const u_arg){AG_UNARY_MUL_SCALAR, 3.0f, 0, w_div_scalar}, F_UNARY, NF(F_UNARY), OT_D_NORMAL, E_EW, true, "arith", NULL},

    AG_BINARY_TABLE(BROW)
    ROW("where", OT_WHERE, "ag_where", b_where, r_where, NULL, F_WHERE, OT_D_NORMAL, E_EW, true, "exact"),

    RROW("sum", AG_REDUCE_SUM, ag_sum, F_REDUCE, E_SUM, true, "sum"),
    RROW("mean", AG_REDUCE_MEAN, ag_mean, F_REDUCE, E_SUM, true, "mean"),
    RROW("max", AG_REDUCE_MAX, ag_max, F_REDUCE, E_MOVE, true, "exact"),
    RROW("min", AG_REDUCE_MIN, ag_min, F_REDUCE, E_MOVE, true, "exact"),
    RROW("argmax", AG_REDUCE_ARGMAX, ag_argmax, F_ARG, E_MOVE, false, "exact"),
    RROW("argmin", AG_REDUCE_ARGMIN, ag_argmin, F_ARG, E_MOVE, false, "exact"),
    ROW("sum_all", OT_REDUCE, "ag_sum_all", b_sum_all, r_sum_all, NULL, F_ALL, OT_D_NORMAL, E_SUM, true, "sum"),
    ROW("mean_all", OT_REDUCE, "ag_mean_all", b_mean_all, r_mean_all, NULL, F_ALL, OT_D_NORMAL, E_SUM, true, "mean"),
    ROW("var", OT_VAR, "ag_var", b_var, r_var, NULL, F_VAR, OT_D_NORMAL, E_SUM, true, "sum"),

    ROW("matmul", OT_MATMUL, "ag_matmul", b_matmul, r_matmul, NULL, F_MATMUL, OT_D_NORMAL,
        OT_E_ZERO | OT_E_INF | OT_E_NAN, true, "sum"),
    ROW("linear", OT_LINEAR, "ag_linear", b_linear, r_linear, NULL, F_LINEAR, OT_D_NORMAL,
        OT_E_ZERO | OT_E_INF | OT_E_NAN, true, "sum"),

    ROW("softmax", OT_SOFTMAX, "ag_softmax", b_softmax, r_softmax, NULL, F_SOFTMAX, OT_D_NORMAL,
        OT_E_ZERO | OT_E_SAT | OT_E_HUGE | OT_E_NAN, true, "softmax"),
    ROW("log_softmax", OT_SOFTMAX, "ag_log_softmax", b_log_softmax, r_log_softmax, NULL, F_SOFTMAX,
        OT_D_NORMAL, OT_E_ZERO | OT_E_SAT | OT_E_HUGE | OT_E_NAN, true, "softmax"),
    ROW("mse_loss", OT_LOSS, "ag_mse_loss", b_mse, r_mse, NULL, F_MSE, OT_D_NORMAL,
        OT_E_ZERO | OT_E_TINY | OT_E_NAN, true, "sum"),
    ROW("cross_entropy", OT_LOSS, "ag_cross_entropy", b_ce, r_ce, NULL, F_CE, OT_D_NORMAL,
        OT_E_ZERO | OT_E_SAT | OT_E_NAN, true, "softmax"),
    ROW("nll_loss", OT_LOSS, "ag_nll_loss", b_nll, r_nll, NULL, F_NLL, OT_D_NORMAL,
        OT_E_ZERO | OT_E_INF | OT_E_NAN, true, "sum"),
    ROW("bce_with_logits", OT_LOSS, "ag_bce_with_logits", b_bce, r_bce, NULL, F_BCE, OT_D_NORMAL,
        OT_E_ZERO | OT_E_SAT | OT_E_HUGE | OT_E_NAN, true, "sum"),

    ROW("conv2d", OT_CONV, "ag_conv2d", b_conv, r_conv, NULL, F_CONV, OT_D_NORMAL,
        OT_E_ZERO | OT_E_NAN, true, "sum"),
    ROW("max_pool2d", OT_POOL, "ag_max_pool2d", b_pool, r_pool, &(const pool_arg){true}, F_POOL,
        OT_D_NORMAL, E_MOVE, true, "exact"),
    ROW("avg_pool2d", OT_POOL, "ag_avg_pool2d", b_pool, r_pool, &(const pool_arg){false}, F_POOL,
        OT_D_NORMAL, OT_E_ZERO | OT_E_INF | OT_E_NAN, true, "sum"),
    ROW("batch_norm(train)", OT_NORM, "ag_batch_norm", b_bn, r_bn, &(const bnrow_arg){true},
        F_BN_TRAIN, OT_D_NORMAL, OT_E_ZERO | OT_E_NAN, true, "norm"),
    ROW("batch_norm(eval)", OT_NORM, "ag_batch_norm", b_bn, r_bn, &(const bnrow_arg){false},
        F_BN_EVAL, OT_D_NORMAL, OT_E_ZERO | OT_E_INF | OT_E_NAN, true, "norm"),
    ROW("layer_norm", OT_NORM, "ag_layer_norm", b_ln, r_ln, NULL, F_LN, OT_D_NORMAL,
        OT_E_ZERO | OT_E_NAN, true, "norm"),
    ROW("scaled_dot_product_attention", OT_SOFTMAX, "ag_scaled_dot_product_attention", b_attn,
        r_attn, NULL, F_ATTN, OT_D_NORMAL, OT_E_ZERO | OT_E_NAN, true, "sum"),
    ROW("dropout(eval)", OT_DROPOUT, "ag_dropout", b_dropout, r_identity,
        (&(const drop_arg){0.5f, false}), F_DROP_ID, OT_D_NORMAL, E_MOVE, true, "exact"),
    ROW("dropout(p=0,train)", OT_DROPOUT, "ag_dropout", b_dropout, r_identity,
        (&(const drop_arg){0.0f, true}), F_DROP_ID, OT_D_NORMAL, E_MOVE, true, "exact"),
    {"dropout(p=0.3,train)", OT_DROPOUT, -1, "ag_dropout", b_dropout, NULL, &(const drop_arg){0.3f, true},
     F_DROP, NF(F_DROP), OT_D_AWAY0, 0, true, "arith", check_dropout},

    ROW("embedding", OT_INDEX, "ag_embedding", b_embedding, r_embedding, NULL, F_EMB, OT_D_NORMAL,
        E_MOVE, true, "exact"),
    ROW("gather", OT_INDEX, "ag_gather", b_gather, r_gather, NULL, F_GATHER, OT_D_NORMAL, E_MOVE,
        true, "exact"),
    ROW("scatter_add", OT_INDEX, "ag_scatter_add", b_scatter, r_scatter, NULL, F_SCATTER,
        OT_D_NORMAL, OT_E_ZERO | OT_E_TINY | OT_E_NAN, true, "sum"),
    ROW("concat", OT_JOIN, "ag_concat", b_concat, r_concat, NULL, F_CONCAT, OT_D_NORMAL, E_MOVE,
        true, "exact"),
    ROW("stack", OT_JOIN, "ag_stack", b_stack, r_stack, NULL, F_STACK, OT_D_NORMAL, E_MOVE, true,
        "exact"),

    ROW("reshape", OT_VIEW, "ag_reshape", b_view, r_view, &(const vrow_arg){V_RESHAPE}, F_RESHAPE, OT_D_NORMAL, E_MOVE, true, "exact"),
    ROW("permute", OT_VIEW, "ag_permute", b_view, r_view, &(const vrow_arg){V_PERMUTE}, F_PERMUTE, OT_D_NORMAL, E_MOVE, true, "exact"),
    ROW("transpose", OT_VIEW, "ag_transpose", b_view, r_view, &(const vrow_arg){V_TRANSPOSE}, F_TRANSPOSE, OT_D_NORMAL, E_MOVE, true, "exact"),
    ROW("slice", OT_VIEW, "ag_slice", b_view, r_view, &(const vrow_arg){V_SLICE}, F_SLICE, OT_D_NORMAL, E_MOVE, true, "exact"),
    ROW("expand", OT_VIEW, "ag_expand", b_view, r_view, &(const vrow_arg){V_EXPAND}, F_EXPAND, OT_D_NORMAL, E_MOVE, true, "exact"),
    ROW("squeeze", OT_VIEW, "ag_squeeze", b_view, r_view, &(const vrow_arg){V_SQUEEZE}, F_SQUEEZE, OT_D_NORMAL, E_MOVE, true, "exact"),
    ROW("unsqueeze", OT_VIEW, "ag_unsqueeze", b_view, r_view, &(const vrow_arg){V_UNSQUEEZE}, F_UNSQUEEZE, OT_D_NORMAL, E_MOVE, true, "exact"),
    ROW("flatten", OT_VIEW, "ag_flatten", b_view, r_view, &(const vrow_arg){V_FLATTEN}, F_FLATTEN, OT_D_NORMAL, E_MOVE, true, "exact"),
    ROW("contiguous", OT_VIEW, "ag_contiguous", b_view, r_view, &(const vrow_arg){V_CONTIGUOUS}, F_COPY, OT_D_NORMAL, E_MOVE, true, "exact"),
    ROW("clone", OT_VIEW, "ag_clone", b_view, r_view, &(const vrow_arg){V_CLONE}, F_COPY, OT_D_NORMAL, E_MOVE, true, "exact"),
    ROW("detach", OT_VIEW, "ag_detach", b_view, r_view, &(const vrow_arg){V_DETACH}, F_COPY, OT_D_NORMAL, E_MOVE, false, "exact"),
    ROW("to_dtype", OT_VIEW, "ag_to_dtype", b_view, r_view, &(const vrow_arg){V_TO_DTYPE}, F_TODTYPE, OT_D_NORMAL, OT_E_ZERO | OT_E_TINY, false, "exact"),
};

int ot_row_count(void) { return NF(ROWS); }
const ot_row *ot_row_at(int i) { return (i >= 0 && i < NF(ROWS)) ? &ROWS[i] : NULL; }

const ot_row *ot_row_find(const char *name)
{
    for (int i = 0; i < NF(ROWS); i++)
        if (!strcmp(ROWS[i].name, name)) return &ROWS[i];
    /* also by the row's name without parameters: "pow" finds "pow(2.5)" */
    size_t n = strlen(name);
    for (int i = 0; i < NF(ROWS); i++)
        if (!strncmp(ROWS[i].name, name, n) && ROWS[i].name[n] == '(') return &ROWS[i];
    return NULL;
}

const char *const ot_not_ops[] = {
    "ag_empty", "creation", "ag_zeros", "creation", "ag_ones", "creation", "ag_full", "creation",
    "ag_scalar", "creation", "ag_zeros_like", "creation", "ag_ones_like", "creation",
    "ag_from_f32", "creation", "ag_from_i32", "creation",
    "ag_from_u8", "creation (u8 data-set storage: test_tensor.c)", "ag_arange", "creation (test_tensor.c)",
    "ag_to_device", "transfer between devices (needs two devices)",
    "ag_rand", "random: Philox known answers in test_rng.c",
    "ag_randn", "random: Philox known answers in test_rng.c",
    "ag_retain", "lifetime", "ag_scope_return", "lifetime",
    "ag_grad", "autograd accessor",
    "ag_unary", "generic entry of the unary rows' kernels; test_elementwise.c checks both routes agree",
    "ag_binary", "generic entry of the binary rows' kernels; test_elementwise.c checks both routes agree",
    NULL, NULL,
};
