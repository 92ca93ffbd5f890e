/* Max and average 2-D pooling, NCHW, contiguous views; offsets in elements.
 * The rules mirror backends/cpu/cpu_pool.c: windows are clipped to the input
 * (padding is never chosen, but avg divides by kh * kw); max picks the first
 * maximum in row-major window order, and a NaN wins and ends the search. */

/* Laid out as pool_p in ocl_pool.c. */
typedef struct {
    int planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
} pool_p;

/* One work item per output element. idx is bound only when has_idx. */
kernel void pool_max_fw(pool_p p_in, int has_idx, global float *y, int yo, global int *idx, int io,
                        global const float *x, int xo)
{
    const pool_p p = p_in; /* a private copy: see common.cl */
    int ohw = p.oh * p.ow, total = p.planes * ohw;
    AG_FOR(i, total) {
        int o = i % ohw, pl = i / ohw;
        int hs = o / p.ow * p.sh - p.ph, ws = o % p.ow * p.sw - p.pw;
        int h0 = max(hs, 0), h1 = min(hs + p.kh, p.h);
        int w0 = max(ws, 0), w1 = min(ws + p.kw, p.w);
        global const float *xp = x + xo + pl * p.h * p.w;
        float best = -INFINITY;
        int at = -1;
        bool stop = false;
        for (int ih = h0; ih < h1 && !stop; ih++)
            for (int iw = w0; iw < w1; iw++) {
                float v = xp[ih * p.w + iw];
                if (at < 0 || v > best || isnan(v)) {
                    best = v;
                    at = ih * p.w + iw;
                    if (isnan(v)) {
                        stop = true;
                        break;
                    }
                }
            }
        y[yo + i] = best;
        if (has_idx) idx[io + i] = at;
    }
}

/* The window's sum in row-major order times 1 / (kh * kw), as the CPU does. */
kernel void pool_avg_fw(pool_p p_in, float inv, global float *y, int yo, global const float *x,
                        int xo)
{
    const pool_p p = p_in; /* a private copy: see common.cl */
    int ohw = p.oh * p.ow, total = p.planes * ohw;
    AG_FOR(i, total) {
        int o = i % ohw, pl = i / ohw;
        int hs = o / p.ow * p.sh - p.ph, ws = o % p.ow * p.sw - p.pw;
        int h0 = max(hs, 0), h1 = min(hs + p.kh, p.h);
        int w0 = max(ws, 0), w1 = min(ws + p.kw, p.w);
        global const float *xp = x + xo + pl * p.h * p.w;
        float sum = 0.0f;
        for (int ih = h0; ih < h1; ih++)
            for (int iw = w0; iw < w1; iw++) sum += xp[ih * p.w + iw];
        y[yo + i] = sum * inv;
    }
}

/* Output rows whose windows cover input row i: oh * s - pad <= i < oh * s - pad + k. */
inline void covering(int i, int pad, int k, int s, int n, int *lo, int *hi)
{
    int a = i + pad - k + 1, b = i + pad; /* b >= 0 */
    *lo = a <= 0 ? 0 : (a + s - 1) / s;
    *hi = min(b / s + 1, n);
}

/* One work item per dx element, gathering from the windows that cover it in
 * increasing output order (the order the CPU adds them in): max takes the dy of
 * the windows whose index names this element, avg dy / (kh * kw) of all. */
kernel void pool_bw(pool_p p_in, int is_max, float inv, global float *dx, int dxo,
                    global const float *dy, int dyo, global const int *idx, int io)
{
    const pool_p p = p_in; /* a private copy: see common.cl */
    int hw = p.h * p.w, ohw = p.oh * p.ow, total = p.planes * hw;
    AG_FOR(i, total) {
        int pix = i % hw, pl = i / hw, ih = pix / p.w, iw = pix % p.w;
        int oh0, oh1, ow0, ow1;
        covering(ih, p.ph, p.kh, p.sh, p.oh, &oh0, &oh1);
        covering(iw, p.pw, p.kw, p.sw, p.ow, &ow0, &ow1);
        global const float *g = dy + dyo + pl * ohw;
        global const int *ip = idx + io + pl * ohw;
        float acc = 0.0f;
        for (int oh = oh0; oh < oh1; oh++)
            for (int ow = ow0; ow < ow1; ow++) {
                int o = oh * p.ow + ow;
                if (is_max) {
                    if (ip[o] == pix) acc += g[o];
                } else {
                    float share = g[o] * inv; /* its own statement: not fused into the sum */
                    acc += share;
                }
            }
        dx[dxo + i] = acc;
    }
}
