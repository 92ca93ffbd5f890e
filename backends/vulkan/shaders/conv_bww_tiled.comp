#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "conv.glsl"
// Tiled backward weight (see conv.glsl): dw as a GEMM reducing over
// (img, oh, ow), split into chunks of P.chunk steps: work group (split s,
// group g, tile) writes out[s * numel + ...]. With one split, out is dw itself.
// Work-group size 256.

layout(std430, binding = 1) writeonly buffer Out { float outp[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) readonly buffer X { float x[]; };

shared float As[TK][TM + 1];
shared float Bs[TK][TN];
// dy offset of (img, pix), x offset of its window corner, its oh * sh, ow * sw
shared int kt_dy[2][TK], kt_x[2][TK], kt_h[2][TK], kt_w[2][TK];

void main()
{
    ConvDims p = P.p;
    int tiles_m = P.tiles_m, tiles_n = P.tiles_n, chunk = P.chunk;
    int outo = P.out_off, dyo = P.a_off, xo = P.b_off;
    int ohw = p.oh * p.ow, khw = p.kh * p.kw, hw = p.h * p.w;
    int M = p.ocg, N = p.cg * khw, K = p.n * ohw;
    int numel = p.oc * N;
    int lid = int(gl_LocalInvocationID.x);
    int tx = lid % 16, ty = lid / 16, ak = lid % TK, am = lid / TK, bcol = lid % TN, bk = lid / TN;
    AG_GROUPS(gid, P.groups) {
        int tn = gid % tiles_n, t = gid / tiles_n, tm = t % tiles_m;
        t /= tiles_m;
        int g = t % p.g, s = t / p.g;
        int m0 = tm * TM, n0 = tn * TN;
        int kbeg = s * chunk, kend = kbeg + min(chunk, K - kbeg);
        int dya = dyo + (g * p.ocg + m0) * ohw;
        int bn = n0 + bcol;
        bool bn_ok = bn < N;
        int bc = bn_ok ? bn / khw : 0, bq = bn_ok ? bn % khw : 0;
        int offh = bq / p.kw * p.dlh - p.ph, offw = bq % p.kw * p.dlw - p.pw;
        int xb = xo + (g * p.cg + bc) * hw + offh * p.w + offw; // maybe outside

        int kn = kbeg + lid;
        if (lid < TK && kn < kend) {
            int img = kn / ohw, pix = kn % ohw;
            kt_dy[0][lid] = img * p.oc * ohw + pix;
            kt_h[0][lid] = pix / p.ow * p.sh;
            kt_w[0][lid] = pix % p.ow * p.sw;
            kt_x[0][lid] = img * p.c * hw + kt_h[0][lid] * p.w + kt_w[0][lid];
        }
        barrier();
        TILE_ACC_ZERO();
        int cur = 0;
        for (int k0 = kbeg; k0 < kend; k0 += TK) {
            bool k_ok = k0 + ak < kend;
            int aoff = k_ok ? kt_dy[cur][ak] : 0;
            for (int r = 0; r < 4; r++) {
                int m = am + 16 * r;
                As[ak][m] = m0 + m < M && k_ok ? dy[dya + aoff + m * ohw] : 0.0;
            }
            for (int r = 0; r < 4; r++) {
                int kl = bk + 4 * r;
                float v = 0.0;
                if (bn_ok && k0 + kl < kend) {
                    int ih = kt_h[cur][kl] + offh, iw = kt_w[cur][kl] + offw;
                    if (ih >= 0 && ih < p.h && iw >= 0 && iw < p.w) v = x[xb + kt_x[cur][kl]];
                }
                Bs[kl][bcol] = v;
            }
            kn = k0 + TK + lid;
            if (lid < TK && kn < kend) {
                int img = kn / ohw, pix = kn % ohw;
                kt_dy[cur ^ 1][lid] = img * p.oc * ohw + pix;
                kt_h[cur ^ 1][lid] = pix / p.ow * p.sh;
                kt_w[cur ^ 1][lid] = pix % p.ow * p.sw;
                kt_x[cur ^ 1][lid] = img * p.c * hw + kt_h[cur ^ 1][lid] * p.w + kt_w[cur ^ 1][lid];
            }
            barrier();
            TILE_MAC();
            barrier();
            cur ^= 1;
        }
        int o = outo + s * numel + (g * p.ocg + m0) * N;
        for (int v = 0; v < 4; v++) {
            int n = n0 + tx + 16 * v;
            if (n >= N) continue;
            for (int u = 0; u < 4; u++) {
                int m = ty + 16 * u;
                if (m0 + m < M) outp[o + m * N + n] = acc[u][v];
            }
        }
    }
}
