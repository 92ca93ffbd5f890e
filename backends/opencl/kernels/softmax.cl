/* Softmax, log-softmax and cross entropy over the rows of contiguous
 * [rows, cols] views, with the formulas of backends/cpu/cpu_softmax.c.
 *
 * A work group holds rpg rows of tpr items each (tpr a power of two; one row
 * per group when rows are wide). The items of a row stride over its columns
 * and meet in local-memory trees for the row's max and sums. The row max is
 * subtracted before exp, so nothing overflows; a NaN anywhere in a row makes
 * the whole row NaN, as on the CPU. */

/* No fused multiply-adds: the cross-entropy gradient at the label subtracts
 * g (1 - sm) from g (p - uni), and a fused rounding there leaves a residue
 * where the exact answer (a single class, say) is 0. */
#pragma OPENCL FP_CONTRACT OFF

/* Running sums per item are compensated (Kahan): a wide row leaves each item
 * thousands of terms before the tree. An infinite partial sum drops the
 * compensation, which would otherwise turn it to NaN. */
typedef struct { float s, c; } sm_acc;

inline void sm_add(sm_acc *a, float v)
{
    float y = v - a->c;
    float t = a->s + y;
    a->c = isinf(t) ? 0.0f : (t - a->s) - y;
    a->s = t;
}

inline float sm_total(const sm_acc *a) { return a->s - a->c; }

/* NaN sticks */
inline float sm_max(float a, float b) { return b > a || isnan(b) ? b : a; }

/* The row's combined value, broadcast to all its items. t is the item's place
 * in its row, red + lid - t the row's slice of local memory. */
inline float row_sum(local float *red, int lid, int t, int tpr, float v)
{
    red[lid] = v;
    for (int s = tpr / 2; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (t < s) {
            v += red[lid + s];
            red[lid] = v;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    v = red[lid - t];
    barrier(CLK_LOCAL_MEM_FENCE); /* red is reused by the next call */
    return v;
}

inline float row_max(local float *red, int lid, int t, int tpr, float v)
{
    red[lid] = v;
    for (int s = tpr / 2; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (t < s) {
            v = sm_max(v, red[lid + s]);
            red[lid] = v;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    v = red[lid - t];
    barrier(CLK_LOCAL_MEM_FENCE);
    return v;
}

/* Every kernel starts here: item t of row `row` (valid when live), with its
 * row's offset into the [rows, cols] views. Items of a row past the last one
 * still take part in the barriers. */
#define SM_PROLOGUE                                                                       \
    int lid = (int)get_local_id(0);                                                       \
    int t = lid % tpr;                                                                    \
    int row = (int)get_group_id(0) * ((int)get_local_size(0) / tpr) + lid / tpr;          \
    bool live = row < rows;                                                               \
    int base = live ? row * cols : 0;

/* max and sum(exp(x - max)) of one row */
#define SM_MAX_SUMEXP(X, XOFF, M, S)                                                      \
    float M = -INFINITY;                                                                  \
    if (live)                                                                             \
        for (int j = t; j < cols; j += tpr) M = sm_max(M, X[XOFF + base + j]);            \
    M = row_max(red, lid, t, tpr, M);                                                     \
    sm_acc S##_a = {0.0f, 0.0f};                                                          \
    if (live)                                                                             \
        for (int j = t; j < cols; j += tpr) sm_add(&S##_a, exp(X[XOFF + base + j] - M));  \
    float S = row_sum(red, lid, t, tpr, sm_total(&S##_a));

kernel void softmax_fw(int log_, int rows, int cols, int tpr, int xoff, int yoff,
                       global const float *x, global float *y, local float *red)
{
    SM_PROLOGUE
    SM_MAX_SUMEXP(x, xoff, m, s)
    if (!live) return;
    if (log_) {
        /* x - max first, then the log-sum: small results near the max stay accurate */
        float ls = log(s);
        for (int j = t; j < cols; j += tpr) y[yoff + base + j] = (x[xoff + base + j] - m) - ls;
    } else {
        float inv = 1.0f / s;
        for (int j = t; j < cols; j += tpr) y[yoff + base + j] = exp(x[xoff + base + j] - m) * inv;
    }
}

/* softmax: dx = y (dy - sum(dy y)); log: dx = dy - exp(y) sum(dy) */
kernel void softmax_bw(int log_, int rows, int cols, int tpr, int dxoff, int dyoff, int yoff,
                       global float *dx, global const float *dy, global const float *y,
                       local float *red)
{
    SM_PROLOGUE
    sm_acc a = {0.0f, 0.0f};
    if (live)
        for (int j = t; j < cols; j += tpr)
            sm_add(&a, log_ ? dy[dyoff + base + j] : dy[dyoff + base + j] * y[yoff + base + j]);
    float s = row_sum(red, lid, t, tpr, sm_total(&a));
    if (!live) return;
    if (log_)
        for (int j = t; j < cols; j += tpr)
            dx[dxoff + base + j] = dy[dyoff + base + j] - exp(y[yoff + base + j]) * s;
    else
        for (int j = t; j < cols; j += tpr)
            dx[dxoff + base + j] = y[yoff + base + j] * (dy[dyoff + base + j] - s);
}

/* loss = (1 - sm) (lse - x[label]) + sm mean_c(lse - x_c); every term of the
 * smoothing sum is >= 0, so it does not cancel. The smoothing sum is skipped
 * when sm == 0 so that -inf logits off the label keep the loss finite. A label
 * outside [0, cols) gives NaN. */
kernel void cross_entropy_fw(float sm, int rows, int cols, int tpr, int xoff, int loff, int ls,
                             int ooff, int os, global const float *x, global const int *labels,
                             global float *loss, local float *red)
{
    SM_PROLOGUE
    int label = live ? labels[loff + row * ls] : 0;
    SM_MAX_SUMEXP(x, xoff, m, s)
    float lse = m + log(s);
    float smooth = 0.0f;
    if (sm != 0.0f) {
        sm_acc a = {0.0f, 0.0f};
        if (live)
            for (int j = t; j < cols; j += tpr) sm_add(&a, lse - x[xoff + base + j]);
        smooth = row_sum(red, lid, t, tpr, sm_total(&a));
    }
    if (!live || t != 0) return;
    float l;
    if (label < 0 || label >= cols) {
        l = NAN;
    } else {
        l = (1.0f - sm) * (lse - x[xoff + base + label]);
        if (sm != 0.0f) l += sm * smooth / (float)cols;
    }
    loss[ooff + row * os] = l;
}

/* dlogits = dloss (softmax - target), target = (1 - sm) onehot + sm / cols */
kernel void cross_entropy_bw(float sm, float uni, int rows, int cols, int tpr, int dxoff, int xoff,
                             int loff, int ls, int goff, int gs, global float *dx,
                             global const float *x, global const int *labels,
                             global const float *dloss, local float *red)
{
    SM_PROLOGUE
    int label = live ? labels[loff + row * ls] : 0;
    float g = live ? dloss[goff + row * gs] : 0.0f;
    SM_MAX_SUMEXP(x, xoff, m, s)
    if (!live) return;
    if (label < 0 || label >= cols) {
        for (int j = t; j < cols; j += tpr) dx[dxoff + base + j] = NAN;
        return;
    }
    float lsum = log(s);
    for (int j = t; j < cols; j += tpr) {
        float d = g * (exp((x[xoff + base + j] - m) - lsum) - uni);
        if (j == label) d -= g * (1.0f - sm);
        dx[dxoff + base + j] = d;
    }
}
