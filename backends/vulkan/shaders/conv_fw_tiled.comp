#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "conv.glsl"
// Tiled forward (see conv.glsl): work group (group g, tile) computes a 64 x 64
// block of y[g * ocg + m, (img, pix)]. Work-group size 256.

layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer W { float w[]; };

shared float As[TK][TM + 1];
shared float Bs[TK][TN];
shared int kt_off[2][TK], kt_h[2][TK], kt_w[2][TK]; // x offset, tap row, tap column

void main()
{
    ConvDims p = P.p;
    int tiles_m = P.tiles_m, tiles_n = P.tiles_n, yo = P.out_off, xo = P.a_off, wo = P.b_off;
    int ohw = p.oh * p.ow, khw = p.kh * p.kw, hw = p.h * p.w;
    int M = p.ocg, N = p.n * ohw, K = p.cg * khw;
    int lid = int(gl_LocalInvocationID.x);
    int tx = lid % 16, ty = lid / 16, ak = lid % TK, am = lid / TK, bcol = lid % TN, bk = lid / TN;
    AG_GROUPS(gid, P.groups) {
        int tn = gid % tiles_n, t = gid / tiles_n, tm = t % tiles_m, g = t / tiles_m;
        int m0 = tm * TM, n0 = tn * TN;
        int wa = wo + (g * p.ocg + m0) * K;
        int bn = n0 + bcol;
        bool bn_ok = bn < N;
        int bimg = bn_ok ? bn / ohw : 0, bpix = bn_ok ? bn % ohw : 0;
        int ih0 = bpix / p.ow * p.sh - p.ph, iw0 = bpix % p.ow * p.sw - p.pw;
        int xb = xo + (bimg * p.c + g * p.cg) * hw + ih0 * p.w + iw0; // tap (0, 0), maybe outside

        if (lid < TK && lid < K) {
            int q = lid % khw;
            kt_h[0][lid] = q / p.kw * p.dlh;
            kt_w[0][lid] = q % p.kw * p.dlw;
            kt_off[0][lid] = lid / khw * hw + kt_h[0][lid] * p.w + kt_w[0][lid];
        }
        barrier();
        TILE_ACC_ZERO();
        int cur = 0;
        for (int k0 = 0; k0 < K; k0 += TK) {
            int k = k0 + ak;
            for (int r = 0; r < 4; r++) {
                int m = am + 16 * r;
                As[ak][m] = m0 + m < M && k < K ? w[wa + m * K + k] : 0.0;
            }
            for (int r = 0; r < 4; r++) {
                int kl = bk + 4 * r;
                float v = 0.0;
                if (bn_ok && k0 + kl < K) {
                    int ih = ih0 + kt_h[cur][kl], iw = iw0 + kt_w[cur][kl];
                    if (ih >= 0 && ih < p.h && iw >= 0 && iw < p.w) v = x[xb + kt_off[cur][kl]];
                }
                Bs[kl][bcol] = v;
            }
            int kn = k0 + TK + lid;
            if (lid < TK && kn < K) {
                int q = kn % khw;
                kt_h[cur ^ 1][lid] = q / p.kw * p.dlh;
                kt_w[cur ^ 1][lid] = q % p.kw * p.dlw;
                kt_off[cur ^ 1][lid] = kn / khw * hw + kt_h[cur ^ 1][lid] * p.w + kt_w[cur ^ 1][lid];
            }
            barrier();
            TILE_MAC();
            barrier();
            cur ^= 1;
        }
        for (int v = 0; v < 4; v++) {
            int n = n0 + tx + 16 * v;
            if (n >= N) continue;
            int yn = yo + (n / ohw * p.oc + g * p.ocg + m0) * ohw + n % ohw;
            for (int u = 0; u < 4; u++) {
                int m = ty + 16 * u;
                if (m0 + m < M) y[yn + m * ohw] = acc[u][v];
            }
        }
    }
}
