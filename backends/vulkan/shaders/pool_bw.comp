#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Pooling backward, gathering instead of scattering: no atomics, and each dx
// element sums its windows in increasing output order (the order the CPU adds
// them in). Max takes the dy of the windows whose index names this element (an
// index outside the element's windows, never produced by pool_max_fw,
// contributes nothing); avg takes dy / (kh * kw) of all of them.

// Laid out as pool_params in backends/vulkan/vk_pool.c.
AG_PARAMS {
    int planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
    int flag; // max pooling (idx bound)
    float inv;
    int out_off, a_off, b_off;
} P;
layout(std430, binding = 1) writeonly buffer DX { float dx[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) readonly buffer I { int idx[]; }; // the dummy for avg

// Output positions whose windows cover input position i: o * s - pad <= i < o * s - pad + k.
void covering(int i, int pad, int k, int s, int n, out int lo, out int hi)
{
    int a = i + pad - k + 1, b = i + pad; // b >= 0
    lo = a <= 0 ? 0 : (a + s - 1) / s;
    hi = min(b / s + 1, n);
}

void main()
{
    int H = P.h, W = P.w, OH = P.oh, OW = P.ow, dxo = P.out_off, dyo = P.a_off, io = P.b_off;
    bool is_max = P.flag != 0;
    float inv = P.inv;
    int hw = H * W, ohw = OH * OW, total = P.planes * hw;
    AG_FOR(i, total) {
        int pix = i % hw, pl = i / hw, ih = pix / W, iw = pix % W;
        int oh0, oh1, ow0, ow1;
        covering(ih, P.ph, P.kh, P.sh, OH, oh0, oh1);
        covering(iw, P.pw, P.kw, P.sw, OW, ow0, ow1);
        int gp = dyo + pl * ohw, ip = io + pl * ohw;
        // precise: the product is rounded before it is added, as on the CPU
        precise float acc = 0.0;
        for (int oh = oh0; oh < oh1; oh++)
            for (int ow = ow0; ow < ow1; ow++) {
                int o = oh * OW + ow;
                if (is_max) {
                    if (idx[ip + o] == pix) acc += dy[gp + o];
                } else {
                    precise float share = dy[gp + o] * inv;
                    acc += share;
                }
            }
        dx[dxo + i] = acc;
    }
}
