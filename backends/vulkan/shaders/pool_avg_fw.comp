#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Average pooling, NCHW, contiguous views, one invocation per output element:
// the window clipped to the input summed in row-major order, times
// 1 / (kh * kw) (padding counts), as backends/cpu/cpu_pool.c does.

// Laid out as pool_params in backends/vulkan/vk_pool.c.
AG_PARAMS {
    int planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
    int flag; // unused
    float inv;
    int out_off, a_off, b_off;
} P;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };

void main()
{
    int H = P.h, W = P.w, OW = P.ow, kh = P.kh, kw = P.kw, sh = P.sh, sw = P.sw;
    int ph = P.ph, pw = P.pw, yo = P.out_off, xo = P.a_off;
    float inv = P.inv;
    int ohw = P.oh * OW, total = P.planes * ohw;
    AG_FOR(i, total) {
        int o = i % ohw, pl = i / ohw;
        int hs = o / OW * sh - ph, ws = o % OW * sw - pw;
        int h0 = max(hs, 0), h1 = min(hs + kh, H);
        int w0 = max(ws, 0), w1 = min(ws + kw, W);
        int xp = xo + pl * H * W;
        precise float sum = 0.0; // the CPU's order, nothing reassociated
        for (int ih = h0; ih < h1; ih++)
            for (int iw = w0; iw < w1; iw++) sum += x[xp + ih * W + iw];
        y[yo + i] = sum * inv;
    }
}
