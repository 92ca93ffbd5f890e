#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Max pooling, NCHW, contiguous views, one invocation per output element. The
// rules mirror backends/cpu/cpu_pool.c: windows are clipped to the input
// (padding is never chosen); the first maximum in row-major window order wins,
// and a NaN wins and ends the search. Indices are h * W + w within the plane.

// Laid out as pool_params in backends/vulkan/vk_pool.c.
AG_PARAMS {
    int planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
    int flag; // has indices
    float inv;
    int out_off, a_off, b_off;
} P;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer I { int idx[]; }; // the dummy when !flag
layout(std430, binding = 3) readonly buffer X { float x[]; };

void main()
{
    int H = P.h, W = P.w, OW = P.ow, kh = P.kh, kw = P.kw, sh = P.sh, sw = P.sw;
    int ph = P.ph, pw = P.pw, yo = P.out_off, io = P.a_off, xo = P.b_off;
    bool has_idx = P.flag != 0;
    int ohw = P.oh * OW, total = P.planes * ohw;
    AG_FOR(i, total) {
        int o = i % ohw, pl = i / ohw;
        int hs = o / OW * sh - ph, ws = o % OW * sw - pw;
        int h0 = max(hs, 0), h1 = min(hs + kh, H);
        int w0 = max(ws, 0), w1 = min(ws + kw, W);
        int xp = xo + pl * H * W;
        float best = uintBitsToFloat(0xff800000u); // -inf
        int at = -1;
        bool stop = false;
        for (int ih = h0; ih < h1 && !stop; ih++)
            for (int iw = w0; iw < w1; iw++) {
                float v = x[xp + ih * W + iw];
                if (at < 0 || v > best || isnan(v)) {
                    best = v;
                    at = ih * W + iw;
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
