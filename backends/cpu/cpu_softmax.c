/* Softmax, log-softmax and cross entropy over the last axis, threaded over rows. */
#include <math.h>

#include "cpu.h"

/* Below this many elements a thread team costs more than it saves. */
#define PAR_MIN 16384

/* Splits a contiguous view into rows of its last axis. */
static ag_status rows_cols(const char *op, const ag_view *v, int64_t *rows, int64_t *cols)
{
    if (v->dtype != AG_F32) return ag_set_error(AG_ERR_DTYPE, "%s: expected f32 data", op);
    *cols = v->ndim ? v->shape[v->ndim - 1] : 1;
    int64_t n = cpu_numel(v);
    *rows = *cols ? n / *cols : 0;
    return AG_OK;
}

static ag_status same_numel(const char *op, const ag_view *a, const ag_view *b)
{
    if (a->dtype != AG_F32 || b->dtype != AG_F32)
        return ag_set_error(AG_ERR_DTYPE, "%s: expected f32 data", op);
    if (cpu_numel(a) != cpu_numel(b) ||
        (a->ndim && b->ndim && a->shape[a->ndim - 1] != b->shape[b->ndim - 1]))
        return ag_set_error(AG_ERR_SHAPE, "%s: views of %lld and %lld elements differ", op,
                            (long long)cpu_numel(a), (long long)cpu_numel(b));
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

/* log(sum(exp(x - max))); callers subtract x - max first and this second, which
 * keeps the small results near the row's maximum accurate. */
static double row_logsum(const float *x, int64_t n, float m)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += expf(x[i] - m);
    return log(s);
}

ag_status cpu_softmax(void *ctx, bool log_, const ag_view *y, const ag_view *x)
{
    (void)ctx;
    int64_t rows, cols;
    ag_status s = same_numel("softmax", y, x);
    if (s || (s = rows_cols("softmax", x, &rows, &cols))) return s;
    const float *xd = cpu_f32(x);
    float *yd = cpu_f32(y);

    OMP(omp parallel for schedule(static) num_threads(cpu_threads())
        if(rows * cols > PAR_MIN && rows > 1))
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = xd + r * cols;
        float *yr = yd + r * cols;
        float m = row_max(xr, cols);
        if (log_) {
            float ls = (float)row_logsum(xr, cols, m);
            for (int64_t c = 0; c < cols; c++) yr[c] = (xr[c] - m) - ls;
        } else {
            double sum = 0;
            for (int64_t c = 0; c < cols; c++) {
                yr[c] = expf(xr[c] - m);
                sum += yr[c];
            }
            float inv = (float)(1.0 / sum);
            for (int64_t c = 0; c < cols; c++) yr[c] *= inv;
        }
    }
    return AG_OK;
}

ag_status cpu_softmax_backward(void *ctx, bool log_, const ag_view *dx, const ag_view *dy,
                               const ag_view *y)
{
    (void)ctx;
    int64_t rows, cols;
    ag_status s = same_numel("softmax_backward", dx, dy);
    if (s || (s = same_numel("softmax_backward", dx, y)) ||
        (s = rows_cols("softmax_backward", y, &rows, &cols)))
        return s;
    float *dxd = cpu_f32(dx);
    const float *dyd = cpu_f32(dy), *yd = cpu_f32(y);

    OMP(omp parallel for schedule(static) num_threads(cpu_threads())
        if(rows * cols > PAR_MIN && rows > 1))
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = yd + r * cols, *gr = dyd + r * cols;
        float *dr = dxd + r * cols;
        double acc = 0;
        if (log_) {
            for (int64_t c = 0; c < cols; c++) acc += gr[c];
            float sum = (float)acc;
            for (int64_t c = 0; c < cols; c++) dr[c] = gr[c] - expf(yr[c]) * sum;
        } else {
            for (int64_t c = 0; c < cols; c++) acc += (double)gr[c] * yr[c];
            float dot = (float)acc;
            for (int64_t c = 0; c < cols; c++) dr[c] = yr[c] * (gr[c] - dot);
        }
    }
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

    OMP(omp parallel for schedule(static) num_threads(cpu_threads())
        if(n * cols > PAR_MIN && n > 1))
    for (int64_t r = 0; r < n; r++) {
        const float *xr = xd + r * cols;
        int32_t label = ld[r * ls];
        if (label < 0 || label >= cols) {
            out[r * os] = NAN;
            continue;
        }
        float m = row_max(xr, cols);
        double lse = (double)m + row_logsum(xr, cols, m);
        /* sum_c q_c (lse - x_c): every term is >= 0, so no cancellation. The smoothing
         * term is skipped when s == 0 so that -inf logits off the label stay finite. */
        double l = (1.0 - smoothing) * (lse - xr[label]);
        if (smoothing != 0) {
            double u = 0;
            for (int64_t c = 0; c < cols; c++) u += lse - xr[c];
            l += smoothing * u / (double)cols;
        }
        out[r * os] = (float)l;
    }
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

    OMP(omp parallel for schedule(static) num_threads(cpu_threads())
        if(n * cols > PAR_MIN && n > 1))
    for (int64_t r = 0; r < n; r++) {
        const float *xr = xd + r * cols;
        float *dr = dd + r * cols;
        int32_t label = ld[r * ls];
        if (label < 0 || label >= cols) {
            for (int64_t c = 0; c < cols; c++) dr[c] = NAN;
            continue;
        }
        float g = gd[r * gs];
        float m = row_max(xr, cols);
        float ls = (float)row_logsum(xr, cols, m);
        for (int64_t c = 0; c < cols; c++) dr[c] = g * (expf((xr[c] - m) - ls) - uni);
        dr[label] -= g * (1.0f - smoothing);
    }
    return AG_OK;
}
