/* Layer and batch normalisation. Both are reductions over the elements of a
 * "channel" of a [N, C, S] layout (element e of channel ch sits at
 * (n C + ch) S + s with n = e / S, s = e % S): layer norm is N = 1, C = rows,
 * S = D; batch norm is the input as it comes.
 *
 * A work-group handles cpg consecutive channels with wg / cpg lanes each
 * (cpg = 1 unless S == 1, where consecutive work-items then read consecutive
 * channels). Each lane sums its elements with compensation, then the lanes of
 * a channel meet in a local-memory tree: no float atomics, and the result is
 * the same on every run. Barriers are never inside branches (every work-item
 * runs every reduction, over nothing when it has no channel or no work). */

#define NORM_LN 0
#define NORM_BN 1

#define HAS_GAMMA 1
#define HAS_BETA 2
#define HAS_MEAN 4
#define HAS_RSTD 8
#define HAS_RMEAN 16
#define HAS_RVAR 32
#define HAS_DX 64
#define HAS_DGAMMA 128
#define HAS_DBETA 256

/* Laid out as ocl_norm_dims / ocl_norm_offs in ocl_norm.c. */
typedef struct {
    int mode, training, N, C, S, cpg, has;
    float eps, momentum;
} norm_dims;
typedef struct {
    int x, y, dy, dx, mean, rstd, gamma, beta, rmean, rvar, dgamma, dbeta;
} norm_offs;

/* Kahan step; an infinite sum stops compensating so that inf stays inf. */
inline void kadd(float *s, float *c, float v)
{
    float y = v - *c, t = *s + y;
    *c = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

/* Sums v over the lanes that share t % cpg; every work-item gets its channel's
 * total. Call from all work-items of the group. */
inline float group_sum(local float *lm, int t, int wg, int cpg, float v)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    lm[t] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int off = wg >> 1; off >= cpg; off >>= 1) {
        if (t < off) lm[t] += lm[t + off];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return lm[t % cpg];
}

/* The division only when both N and S exceed 1 (uniform branches). */
inline int chan_addr(int e, int ch, int N, int C, int S)
{
    if (N == 1) return ch * S + e;
    if (S == 1) return e * C + ch;
    int n = e / S;
    return (n * C + ch) * S + (e - n * S);
}

kernel void norm_fw(norm_dims d_in, norm_offs o_in, global const float *x, global float *y,
                    global float *mean, global float *rstd, global const float *gamma,
                    global const float *beta, global float *rmean, global float *rvar,
                    local float *lm)
{
    const norm_dims d = d_in; /* a private copy: see common.cl */
    const norm_offs o = o_in; /* a private copy: see common.cl */
    int t = (int)get_local_id(0), wg = (int)get_local_size(0);
    int lane = t / d.cpg, lanes = wg / d.cpg;
    int ch = (int)get_group_id(0) * d.cpg + t % d.cpg;
    bool live = ch < d.C, ln = d.mode == NORM_LN;
    int cnt = live ? d.N * d.S : 0;
    /* batch statistics unless batch norm evaluates; the reductions run (over
     * nothing) either way so that every work-item meets the same barriers */
    bool batch = ln || d.training;
    int scnt = batch ? cnt : 0;
    float n = (float)(d.N * d.S);
    /* corrected two-pass statistics: with u = x - m0 for a first mean m0,
     * mean = m0 + sum(u) / n and var = (sum(u^2) - sum(u)^2 / n) / n; the
     * correction recovers m0's rounding error, which 1 / std would magnify
     * when the spread is small against the mean */
    float s = 0.0f, c = 0.0f;
    for (int e = lane; e < scnt; e += lanes) kadd(&s, &c, x[o.x + chan_addr(e, ch, d.N, d.C, d.S)]);
    float tot = group_sum(lm, t, wg, d.cpg, s - c);
    /* layer norm divides as the CPU does (an empty row gives NaN) */
    bool divide = ln || d.N * d.S > 0;
    float m0 = divide ? tot / n : 0.0f;
    float s2 = 0.0f, c2 = 0.0f;
    s = 0.0f;
    c = 0.0f;
    for (int e = lane; e < scnt; e += lanes) {
        float v = x[o.x + chan_addr(e, ch, d.N, d.C, d.S)] - m0;
        kadd(&s, &c, v);
        kadd(&s2, &c2, v * v);
    }
    float d1 = group_sum(lm, t, wg, d.cpg, s - c);
    float d2 = group_sum(lm, t, wg, d.cpg, s2 - c2);
    float delta = divide ? d1 / n : 0.0f;
    /* sum of squared deviations; rounding may leave it below 0, NaN stays */
    float ss = d2 - d1 * delta;
    if (ss < 0.0f) ss = 0.0f;
    float var = divide ? ss / n : 0.0f;
    float rs = 1.0f / sqrt(var + d.eps);
    if (live && !batch) {
        m0 = rmean[o.rmean + ch];
        delta = 0.0f;
        rs = 1.0f / sqrt(rvar[o.rvar + ch] + d.eps);
    }
    float m = m0 + delta;
    if (live && lane == 0) {
        if (!ln && d.training) {
            /* the running variance moves towards the unbiased estimate */
            float unbiased = d.N * d.S > 1 ? ss / (n - 1.0f) : var;
            if (d.has & HAS_RMEAN)
                rmean[o.rmean + ch] = (1.0f - d.momentum) * rmean[o.rmean + ch] + d.momentum * m;
            if (d.has & HAS_RVAR)
                rvar[o.rvar + ch] = (1.0f - d.momentum) * rvar[o.rvar + ch] + d.momentum * unbiased;
        }
        if (d.has & HAS_MEAN) mean[o.mean + ch] = m;
        if (d.has & HAS_RSTD) rstd[o.rstd + ch] = rs;
    }
    if (ln) {
        for (int e = lane; e < cnt; e += lanes) {
            int a = ch * d.S + e;
            float h = ((x[o.x + a] - m0) - delta) * rs;
            if (d.has & HAS_GAMMA) h *= gamma[o.gamma + e];
            if (d.has & HAS_BETA) h += beta[o.beta + e];
            y[o.y + a] = h;
        }
    } else if (live) {
        /* (x - m) scale + shift: x - m is exact for x near m, unlike x scale - m scale */
        float scale = d.has & HAS_GAMMA ? rs * gamma[o.gamma + ch] : rs;
        float shift = d.has & HAS_BETA ? beta[o.beta + ch] : 0.0f;
        for (int e = lane; e < cnt; e += lanes) {
            int a = chan_addr(e, ch, d.N, d.C, d.S);
            y[o.y + a] = ((x[o.x + a] - m0) - delta) * scale + shift;
        }
    }
}

/* Per channel: A = sum(ge), B = sum(ge xhat) with ge = dy (gamma[s] for layer
 * norm), then dx = k (ge - A' - xhat B') where
 *   layer norm: k = rstd, A' = A / D, B' = B / D;
 *   batch norm: k = gamma[ch] rstd, A' = A / cnt, B' = B / cnt when training,
 *               0 in eval (the statistics are constants); dgamma = B, dbeta = A. */
kernel void norm_bw(norm_dims d_in, norm_offs o_in, global const float *x, global const float *dy,
                    global const float *mean, global const float *rstd,
                    global const float *gamma, global float *dx, global float *dgamma,
                    global float *dbeta, local float *lm)
{
    const norm_dims d = d_in; /* a private copy: see common.cl */
    const norm_offs o = o_in; /* a private copy: see common.cl */
    int t = (int)get_local_id(0), wg = (int)get_local_size(0);
    int lane = t / d.cpg, lanes = wg / d.cpg;
    int ch = (int)get_group_id(0) * d.cpg + t % d.cpg;
    bool live = ch < d.C;
    int cnt = live ? d.N * d.S : 0;
    bool ln = d.mode == NORM_LN, lng = ln && (d.has & HAS_GAMMA);
    float m = live ? mean[o.mean + ch] : 0.0f, rs = live ? rstd[o.rstd + ch] : 0.0f;
    /* batch norm in eval wants the sums only for dgamma / dbeta */
    bool sums = ln || d.training || (d.has & (HAS_DGAMMA | HAS_DBETA));
    int scnt = sums ? cnt : 0;
    float sa = 0.0f, ca = 0.0f, sb = 0.0f, cb = 0.0f;
    for (int e = lane; e < scnt; e += lanes) {
        int a = chan_addr(e, ch, d.N, d.C, d.S);
        float ge = dy[o.dy + a];
        if (lng) ge *= gamma[o.gamma + e];
        kadd(&sa, &ca, ge);
        kadd(&sb, &cb, ge * ((x[o.x + a] - m) * rs));
    }
    float A = group_sum(lm, t, wg, d.cpg, sa - ca);
    float B = group_sum(lm, t, wg, d.cpg, sb - cb);
    if (!live) return;
    if (!ln && lane == 0) {
        if (d.has & HAS_DGAMMA) dgamma[o.dgamma + ch] = B;
        if (d.has & HAS_DBETA) dbeta[o.dbeta + ch] = A;
    }
    if (!(d.has & HAS_DX)) return;
    float n = (float)(d.N * d.S);
    float k = ln || !(d.has & HAS_GAMMA) ? rs : gamma[o.gamma + ch] * rs;
    bool centre = ln || (d.training && d.N * d.S > 0);
    float am = centre ? A / n : 0.0f, bm = centre ? B / n : 0.0f;
    for (int e = lane; e < cnt; e += lanes) {
        int a = chan_addr(e, ch, d.N, d.C, d.S);
        float ge = dy[o.dy + a];
        if (lng) ge *= gamma[o.gamma + e];
        float xh = (x[o.x + a] - m) * rs;
        dx[o.dx + a] = k * (ge - am - xh * bm);
    }
}

/* Layer norm's dgamma / dbeta: sums over the rows of [rows, D]. Work-group
 * (block, chunk) covers cpg consecutive columns (consecutive work-items read
 * consecutive columns) over rows [chunk R, chunk R + R). With one chunk it
 * writes the results; otherwise partials part[chunk][2][D], which
 * ln_param_final adds in chunk order. */
kernel void ln_param_grad(int rows, int D, int R, int cpg, int has, norm_offs o_in,
                          global const float *x, global const float *dy,
                          global const float *mean, global const float *rstd,
                          global float *dgamma, global float *dbeta, global float *part,
                          local float *lm)
{
    const norm_offs o = o_in; /* a private copy: see common.cl */
    int t = (int)get_local_id(0), wg = (int)get_local_size(0);
    int lane = t / cpg, lanes = wg / cpg;
    int col = (int)get_group_id(0) * cpg + t % cpg;
    int chunk = (int)get_group_id(1), nchunk = (int)get_num_groups(1);
    bool live = col < D;
    int r0 = chunk * R, r1 = live ? min(rows, r0 + R) : r0;
    float sg = 0.0f, cg = 0.0f, sb = 0.0f, cb = 0.0f;
    for (int r = r0 + lane; r < r1; r += lanes) {
        int a = r * D + col;
        float g = dy[o.dy + a];
        kadd(&sb, &cb, g);
        kadd(&sg, &cg, g * ((x[o.x + a] - mean[o.mean + r]) * rstd[o.rstd + r]));
    }
    float G = group_sum(lm, t, wg, cpg, sg - cg);
    float B = group_sum(lm, t, wg, cpg, sb - cb);
    if (!live || lane != 0) return;
    if (nchunk == 1) {
        if (has & HAS_DGAMMA) dgamma[o.dgamma + col] = G;
        if (has & HAS_DBETA) dbeta[o.dbeta + col] = B;
    } else {
        part[2 * chunk * D + col] = G;
        part[(2 * chunk + 1) * D + col] = B;
    }
}

kernel void ln_param_final(int D, int nchunk, int has, norm_offs o_in, global const float *part,
                           global float *dgamma, global float *dbeta)
{
    const norm_offs o = o_in; /* a private copy: see common.cl */
    AG_FOR(col, D) {
        float sg = 0.0f, cg = 0.0f, sb = 0.0f, cb = 0.0f;
        for (int k = 0; k < nchunk; k++) {
            kadd(&sg, &cg, part[2 * k * D + col]);
            kadd(&sb, &cb, part[(2 * k + 1) * D + col]);
        }
        if (has & HAS_DGAMMA) dgamma[o.dgamma + col] = sg - cg;
        if (has & HAS_DBETA) dbeta[o.dbeta + col] = sb - cb;
    }
}
