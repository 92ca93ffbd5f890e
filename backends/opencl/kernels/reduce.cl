/* Reductions over strided views (see ocl_reduce.c for the plan).
 *
 * x's axes are split into kept axes (ks, strides kx in x and ky in y: the
 * output index space) and reduced axes (rs, strides rx in x). A work group of
 * tx_n * ty_n items handles tx_n consecutive outputs and one chunk of the
 * reduction: item (tx, ty) folds positions ty, ty + ty_n, ... of the chunk
 * serially (the host bounds how many), then the ty_n partial results of each
 * output meet in a local-memory tree. ty_fast numbers the items ty-first,
 * so that neighbours read neighbouring memory when the reduced axis is the
 * dense one; otherwise tx-first (a kept axis is the dense one).
 *
 * final_ = 1 writes y through ky (mean divides by count); final_ = 0 writes a
 * partial result per (chunk, output) at yv/yi[chunk * nout + output] for a
 * following pass. Arg kernels read candidate indices from xi when has_idx (a
 * second pass), else the position along the reduced axis. */

/* x offset of reduction position r */
inline int red_roff(ag_shape rs, ag_strides rx, int r)
{
    if (rs.nd == 1) return r * rx.s[0];
    int o = 0;
    for (int d = rs.nd - 1; d >= 0; d--) {
        int n = rs.n[d];
        o += (r % n) * rx.s[d];
        r /= n;
    }
    return o;
}

inline float red_sum(float a, float b) { return a + b; }
/* NaN sticks: once a is NaN neither test replaces it */
inline float red_max(float a, float b) { return b > a || isnan(b) ? b : a; }
inline float red_min(float a, float b) { return b < a || isnan(b) ? b : a; }

/* Does candidate (bv, bi) beat (av, ai)? NaN is the extreme; equal values (or
 * two NaNs) go to the smaller index, which gives the first index on ties
 * whatever order the partial results meet in. */
inline bool arg_better_max(float av, int ai, float bv, int bi)
{
    if (isnan(av)) return isnan(bv) && bi < ai;
    if (isnan(bv)) return true;
    return bv > av || (bv == av && bi < ai);
}

inline bool arg_better_min(float av, int ai, float bv, int bi)
{
    if (isnan(av)) return isnan(bv) && bi < ai;
    if (isnan(bv)) return true;
    return bv < av || (bv == av && bi < ai);
}

/* Common prologue: this item's output o (valid when o < nout), its kept
 * coordinates c, x offset xo, and its reduction range [r0, r0 + len). */
#define RED_PROLOGUE                                                                     \
    const ag_shape ks = ks_in, rs = rs_in; /* private copies: see common.cl */           \
    const ag_strides kx = kx_in, ky = ky_in, rx = rx_in;                                 \
    int lid = (int)get_local_id(0);                                                      \
    int tx = ty_fast ? lid / ty_n : lid % tx_n;                                          \
    int ty = ty_fast ? lid % ty_n : lid / tx_n;                                          \
    int step = ty_fast ? 1 : tx_n; /* local distance between ty and ty + 1 */            \
    int ngo = (nout + tx_n - 1) / tx_n;                                                  \
    int g = (int)get_group_id(0);                                                        \
    int chunk_id = g / ngo;                                                              \
    int o = (g % ngo) * tx_n + tx;                                                       \
    int r0 = chunk_id * chunk;                                                           \
    int len = max(0, min(chunk, nred - r0));                                             \
    int c[8];                                                                            \
    int xo = 0;                                                                          \
    if (o < nout) {                                                                      \
        ag_coords(ks, o, c);                                                             \
        xo = ag_dot(kx, c, ks.nd);                                                       \
    }

#define RED_ARGS                                                                         \
    int final_, int divide, int tx_n, int ty_n, int ty_fast, int nout, int nred,         \
        int chunk, float count, ag_shape ks_in, ag_strides kx_in, ag_strides ky_in,      \
        ag_shape rs_in, ag_strides rx_in, int has_idx, global const float *x, global const int *xi, \
        global float *yv, global int *yi, local float *lv, local int *li

/* sum (and mean), max, min. The sum's serial part is compensated (Kahan), so
 * that a run of a few hundred terms per item costs no accuracy; an infinite
 * partial sum drops the compensation, which would otherwise turn it to NaN. */
#define RED_VALUE_KERNEL(NAME, INIT, OP, COMPENSATED)                                    \
    kernel void NAME(RED_ARGS)                                                           \
    {                                                                                    \
        RED_PROLOGUE                                                                     \
        float acc = INIT, comp = 0.0f;                                                   \
        if (o < nout)                                                                    \
            for (uint k = (uint)ty; k < (uint)len; k += (uint)ty_n) {                    \
                float v = x[xo + red_roff(rs, rx, r0 + (int)k)];                         \
                if (COMPENSATED) {                                                       \
                    float yk = v - comp, t = acc + yk;                                   \
                    comp = isinf(t) ? 0.0f : (t - acc) - yk;                             \
                    acc = t;                                                             \
                } else {                                                                 \
                    acc = OP(acc, v);                                                    \
                }                                                                        \
            }                                                                            \
        if (COMPENSATED) acc -= comp;                                                    \
        lv[lid] = acc;                                                                   \
        for (int s = ty_n / 2; s > 0; s >>= 1) {                                         \
            barrier(CLK_LOCAL_MEM_FENCE);                                                \
            if (ty < s) {                                                                \
                acc = OP(acc, lv[lid + s * step]);                                       \
                lv[lid] = acc;                                                           \
            }                                                                            \
        }                                                                                \
        if (ty != 0 || o >= nout) return;                                                \
        if (final_)                                                                      \
            yv[ag_dot(ky, c, ks.nd)] = divide ? acc / count : acc;                       \
        else                                                                             \
            yv[chunk_id * nout + o] = acc;                                               \
    }

RED_VALUE_KERNEL(reduce_sum, 0.0f, red_sum, 1)
RED_VALUE_KERNEL(reduce_max, -INFINITY, red_max, 0)
RED_VALUE_KERNEL(reduce_min, INFINITY, red_min, 0)

/* argmax, argmin: (value, index) pairs; an item with no elements holds
 * (INIT, INT_MAX), which any real element beats. */
#define RED_ARG_KERNEL(NAME, INIT, BETTER)                                               \
    kernel void NAME(RED_ARGS)                                                           \
    {                                                                                    \
        RED_PROLOGUE                                                                     \
        float acc = INIT;                                                                \
        int ai = INT_MAX;                                                                \
        if (o < nout)                                                                    \
            for (uint k = (uint)ty; k < (uint)len; k += (uint)ty_n) {                    \
                int r = r0 + (int)k;                                                     \
                int off = xo + red_roff(rs, rx, r);                                      \
                float v = x[off];                                                        \
                int i = has_idx ? xi[off] : r;                                           \
                if (BETTER(acc, ai, v, i)) {                                             \
                    acc = v;                                                             \
                    ai = i;                                                              \
                }                                                                        \
            }                                                                            \
        lv[lid] = acc;                                                                   \
        li[lid] = ai;                                                                    \
        for (int s = ty_n / 2; s > 0; s >>= 1) {                                         \
            barrier(CLK_LOCAL_MEM_FENCE);                                                \
            if (ty < s) {                                                                \
                float bv = lv[lid + s * step];                                           \
                int bi = li[lid + s * step];                                             \
                if (BETTER(acc, ai, bv, bi)) {                                           \
                    acc = bv;                                                            \
                    ai = bi;                                                             \
                }                                                                        \
                lv[lid] = acc;                                                           \
                li[lid] = ai;                                                            \
            }                                                                            \
        }                                                                                \
        if (ty != 0 || o >= nout) return;                                                \
        if (final_) {                                                                    \
            yi[ag_dot(ky, c, ks.nd)] = ai;                                               \
        } else {                                                                         \
            yv[chunk_id * nout + o] = acc;                                               \
            yi[chunk_id * nout + o] = ai;                                                \
        }                                                                                \
    }

RED_ARG_KERNEL(reduce_argmax, -INFINITY, arg_better_max)
RED_ARG_KERNEL(reduce_argmin, INFINITY, arg_better_min)
