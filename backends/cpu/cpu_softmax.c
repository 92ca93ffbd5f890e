/* Softmax, log-softmax and cross entropy over the last axis, threaded over rows. */
#include <math.h>

#include "cpu.h"
#include "cpu_simd.h"

/* Below this many elements a thread team costs more than it saves. */
#define PAR_MIN 16384

/* Splits a contiguous view into rows of its last axis. */
static ag_status rows_cols(const char *op, const ag_view *v, int64_t *rows, int64_t *cols)
{
    if (v->dtype != AG_F32) return ag_set_error(AG_ERR_DTYPE, "%s: expected f32 data", op);
    *cols = v->ndim ? v->shape[v->ndim - 1] : 1;
    int64_t n = ag_view_numel(v);
    *rows = *cols ? n / *cols : 0;
    return AG_OK;
}

static ag_status same_numel(const char *op, const ag_view *a, const ag_view *b)
{
    if (a->dtype != AG_F32 || b->dtype != AG_F32)
        return ag_set_error(AG_ERR_DTYPE, "%s: expected f32 data", op);
    if (ag_view_numel(a) != ag_view_numel(b) ||
        (a->ndim && b->ndim && a->shape[a->ndim - 1] != b->shape[b->ndim - 1]))
        return ag_set_error(AG_ERR_SHAPE, "%s: views of %lld and %lld elements differ", op,
                            (long long)ag_view_numel(a), (long long)ag_view_numel(b));
    return AG_OK;
}

static float row_max(const float *x, int64_t n)
{
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] > m) m = x[i];
        else if (isnan(x[i])) return x[i];
    }
    return m;
}

/* sum(exp(x - m)), storing the terms in y unless it is NULL */
static double row_exp_sum(float *y, const float *x, int64_t n, float m)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        float e = expf(x[i] - m);
        if (y) y[i] = e;
        s += e;
    }
    return s;
}

static void row_scale(float *y, int64_t n, float s)
{
    for (int64_t i = 0; i < n; i++) y[i] *= s;
}

static void row_sub2(float *y, const float *x, int64_t n, float a, float b)
{
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - a) - b;
}

static double row_sum(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}

static double row_dot(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double row_lse_minus(const float *x, int64_t n, double lse)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += lse - x[i];
    return s;
}

static void row_lsm_bw(float *dx, const float *dy, const float *y, int64_t n, float sum)
{
    for (int64_t i = 0; i < n; i++) dx[i] = dy[i] - expf(y[i]) * sum;
}

static void row_sm_bw(float *dx, const float *dy, const float *y, int64_t n, float dot)
{
    for (int64_t i = 0; i < n; i++) dx[i] = y[i] * (dy[i] - dot);
}

static void row_ce_bw(float *dx, const float *x, int64_t n, float m, float ls, float g, float uni)
{
    for (int64_t i = 0; i < n; i++) dx[i] = g * (expf((x[i] - m) - ls) - uni);
}

static void rows_softmax(float *y, const float *x, int64_t rows, int64_t n, bool log_)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        float m = row_max(xr, n);
        if (log_) {
            row_sub2(yr, xr, n, m, (float)log(row_exp_sum(NULL, xr, n, m)));
        } else {
            double sum = row_exp_sum(yr, xr, n, m);
            row_scale(yr, n, (float)(1.0 / sum));
        }
    }
}

static void rows_softmax_bw(float *dx, const float *dy, const float *y, int64_t rows, int64_t n,
                            bool log_)
{
    for (int64_t r = 0; r < rows; r++) {
        const int64_t o = r * n;
        if (log_) row_lsm_bw(dx + o, dy + o, y + o, n, (float)row_sum(dy + o, n));
        else row_sm_bw(dx + o, dy + o, y + o, n, (float)row_dot(dy + o, y + o, n));
    }
}

static const cpu_row_ops scalar_rows = {
    .max = row_max, .exp_sum = row_exp_sum, .lse_minus = row_lse_minus, .ce_bw = row_ce_bw,
    .softmax = rows_softmax, .softmax_bw = rows_softmax_bw,
};

/* the vector rows of the chosen ISA, else the scalar ones above */
const cpu_row_ops *cpu_rows(void)
{
    const cpu_simd_ops *v = cpu_simd();
    return v ? &v->rows : &scalar_rows;
}

/* threads for rows x cols of row work: one below PAR_MIN elements, never more
 * than rows */
static int threads_for(int64_t rows, int64_t cols)
{
    if (rows * cols <= PAR_MIN || rows <= 1) return 1;
    int nt = cpu_threads();
    return nt > rows ? (int)rows : nt;
}

/* log(sum(exp(x - max))); callers subtract x - max first and this second, which
 * keeps the small results near the row's maximum accurate. */
static double row_logsum(const cpu_row_ops *R, const float *x, int64_t n, float m)
{
    return log(R->exp_sum(NULL, x, n, m));
}

/* Rows [r0, r1) of a softmax (out = y, in = x) or of its backward (out = dx,
 * in = dy, y = y), for cpu_run_parts. */
typedef struct sm_args {
    const cpu_row_ops *R;
    int64_t cols;
    bool log_;
    float *out;
    const float *in, *y;
} sm_args;

static void sm_rows(void *arg, int64_t r0, int64_t r1)
{
    const sm_args *a = arg;
    a->R->softmax(a->out + r0 * a->cols, a->in + r0 * a->cols, r1 - r0, a->cols, a->log_);
}

static void sm_bw_rows(void *arg, int64_t r0, int64_t r1)
{
    const sm_args *a = arg;
    a->R->softmax_bw(a->out + r0 * a->cols, a->in + r0 * a->cols, a->y + r0 * a->cols, r1 - r0,
                     a->cols, a->log_);
}

ag_status cpu_softmax(void *ctx, bool log_, const ag_view *y, const ag_view *x)
{
    (void)ctx;
    int64_t rows = 0, cols = 0;
    ag_status s = same_numel("softmax", y, x);
    if (s || (s = rows_cols("softmax", x, &rows, &cols))) return s;
    const float *xd = cpu_f32(x);
    float *yd = cpu_f32(y);
    const cpu_row_ops *R = cpu_rows();

    /* contiguous blocks of rows, one per thread */
    sm_args a = {R, cols, log_, yd, xd, NULL};
    cpu_run_parts(threads_for(rows, cols), rows, sm_rows, &a);
    return AG_OK;
}

ag_status cpu_softmax_backward(void *ctx, bool log_, const ag_view *dx, const ag_view *dy,
                               const ag_view *y)
{
    (void)ctx;
    int64_t rows = 0, cols = 0;
    ag_status s = same_numel("softmax_backward", dx, dy);
    if (s || (s = same_numel("softmax_backward", dx, y)) ||
        (s = rows_cols("softmax_backward", y, &rows, &cols)))
        return s;
    float *dxd = cpu_f32(dx);
    const float *dyd = cpu_f32(dy), *yd = cpu_f32(y);
    const cpu_row_ops *R = cpu_rows();

    sm_args a = {R, cols, log_, dxd, dyd, yd};
    cpu_run_parts(threads_for(rows, cols), rows, sm_bw_rows, &a);
    return AG_OK;
}

/* ---- cross entropy ------------------------------------------------------ */

/* Checks logits [N, C] f32, labels int32 [N] and a per-row f32 view [N]. */
static ag_status ce_check(const char *op, const ag_view *logits, const ag_view *labels,
                          const ag_view *per_row, const ag_view *out2)
{
    if (logits->ndim != 2 || labels->ndim != 1 || per_row->ndim != 1 ||
        labels->shape[0] != logits->shape[0] || per_row->shape[0] != logits->shape[0] ||
        (out2 && (out2->ndim != 2 || out2->shape[0] != logits->shape[0] ||
                  out2->shape[1] != logits->shape[1])))
        return ag_set_error(AG_ERR_SHAPE,
                            "%s: expected logits [N, C], labels [N] and a [N] view; got logits "
                            "of %d dims [%lld, ...], labels [%lld] (%d dims), [%lld] (%d dims)",
                            op, logits->ndim, (long long)(logits->ndim ? logits->shape[0] : 0),
                            (long long)(labels->ndim ? labels->shape[0] : 0), labels->ndim,
                            (long long)(per_row->ndim ? per_row->shape[0] : 0), per_row->ndim);
    if (logits->dtype != AG_F32 || per_row->dtype != AG_F32 || labels->dtype != AG_I32 ||
        (out2 && out2->dtype != AG_F32))
        return ag_set_error(AG_ERR_DTYPE, "%s: expected f32 logits and int32 labels", op);
    return AG_OK;
}

/* Rows [r0, r1) of the cross-entropy (out: the per-row loss) or of its
 * backward (out: dlogits, from the per-row gradient g), for cpu_run_parts. */
typedef struct ce_args {
    const cpu_row_ops *R;
    float smoothing;
    int64_t n, cols;
    const float *x;
    const int32_t *labels;
    int64_t ls;
    float *out;
    int64_t os;
    const float *g;
    int64_t gs;
    float uni;
} ce_args;

static void ce_rows(void *arg, int64_t r0, int64_t r1)
{
    const ce_args *a = arg;
    const cpu_row_ops *R = a->R;
    const int64_t cols = a->cols;
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = a->x + r * cols;
        int32_t label = a->labels[r * a->ls];
        if (label < 0 || label >= cols) {
            a->out[r * a->os] = NAN;
            continue;
        }
        float m = R->max(xr, cols);
        double lse = (double)m + row_logsum(R, xr, cols, m);
        /* sum_c q_c (lse - x_c): every term is >= 0, so no cancellation. The smoothing
         * term is skipped when s == 0 so that -inf logits off the label stay finite. */
        double l = (1.0 - a->smoothing) * (lse - xr[label]);
        if (a->smoothing != 0) l += a->smoothing * R->lse_minus(xr, cols, lse) / (double)cols;
        a->out[r * a->os] = (float)l;
    }
}

static void ce_bw_rows(void *arg, int64_t r0, int64_t r1)
{
    const ce_args *a = arg;
    const cpu_row_ops *R = a->R;
    const int64_t cols = a->cols;
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = a->x + r * cols;
        float *dr = a->out + r * cols;
        int32_t label = a->labels[r * a->ls];
        if (label < 0 || label >= cols) {
            for (int64_t c = 0; c < cols; c++) dr[c] = NAN;
            continue;
        }
        float g = a->g[r * a->gs];
        float m = R->max(xr, cols);
        R->ce_bw(dr, xr, cols, m, (float)row_logsum(R, xr, cols, m), g, a->uni);
        dr[label] -= g * (1.0f - a->smoothing);
    }
}

ag_status cpu_cross_entropy(void *ctx, float smoothing, const ag_view *loss,
                            const ag_view *logits, const ag_view *labels)
{
    (void)ctx;
    ag_status s = ce_check("cross_entropy", logits, labels, loss, NULL);
    if (s) return s;
    int64_t n = logits->shape[0], cols = logits->shape[1];
    const float *xd = cpu_f32(logits);
    const int32_t *ld = cpu_i32(labels);
    float *out = cpu_f32(loss);
    int64_t ls = labels->stride[0], os = loss->stride[0];
    const cpu_row_ops *R = cpu_rows();

    ce_args a = {R, smoothing, n, cols, xd, ld, ls, out, os, NULL, 0, 0};
    cpu_run_parts(n * cols > PAR_MIN && n > 1 ? cpu_threads() : 1, n, ce_rows, &a);
    return AG_OK;
}

ag_status cpu_cross_entropy_backward(void *ctx, float smoothing, const ag_view *dlogits,
                                     const ag_view *dloss, const ag_view *logits,
                                     const ag_view *labels)
{
    (void)ctx;
    ag_status s = ce_check("cross_entropy_backward", logits, labels, dloss, dlogits);
    if (s) return s;
    int64_t n = logits->shape[0], cols = logits->shape[1];
    const float *xd = cpu_f32(logits), *gd = cpu_f32(dloss);
    const int32_t *ld = cpu_i32(labels);
    float *dd = cpu_f32(dlogits);
    int64_t ls = labels->stride[0], gs = dloss->stride[0];
    float uni = cols ? smoothing / (float)cols : 0.0f;
    const cpu_row_ops *R = cpu_rows();

    ce_args a = {R, smoothing, n, cols, xd, ld, ls, dd, 0, gd, gs, uni};
    cpu_run_parts(n * cols > PAR_MIN && n > 1 ? cpu_threads() : 1, n, ce_bw_rows, &a);
    return AG_OK;
}
