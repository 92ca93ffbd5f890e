#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "conv.glsl"
// Tiled backward input (see conv.glsl): dx as a GEMM over (oc, ki, kj); taps
// that land between strides or outside dy stage zeros (the host sends strided
// convolutions to the direct kernel). Work-group size 256.

layout(std430, binding = 1) writeonly buffer DX { float dx[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) readonly buffer W { float w[]; };

shared float As[TK][TM + 1];
shared float Bs[TK][TN];
// w offset of (oc, tap) for row 0, dy offset of the channel, tap row, column
shared int kt_w_off[2][TK], kt_dy[2][TK], kt_h[2][TK], kt_w[2][TK];

void main()
{
    ConvDims p = P.p;
    int tiles_m = P.tiles_m, tiles_n = P.tiles_n, dxo = P.out_off, dyo = P.a_off, wo = P.b_off;
    int ohw = p.oh * p.ow, khw = p.kh * p.kw, hw = p.h * p.w;
    int M = p.cg, N = p.n * hw, K = p.ocg * khw;
    int lid = int(gl_LocalInvocationID.x);
    int tx = lid % 16, ty = lid / 16, ak = lid % TK, am = lid / TK, bcol = lid % TN, bk = lid / TN;
    bool unit = p.sh == 1 && p.sw == 1;
    AG_GROUPS(gid, P.groups) {
        int tn = gid % tiles_n, t = gid / tiles_n, tm = t % tiles_m, g = t / tiles_m;
        int m0 = tm * TM, n0 = tn * TN;
        int wa = wo + (g * p.ocg * p.cg + m0) * khw; // w[g * ocg + oc][m0 + m][q]
        int bn = n0 + bcol;
        bool bn_ok = bn < N;
        int bimg = bn_ok ? bn / hw : 0, bpix = bn_ok ? bn % hw : 0;
        int th0 = bpix / p.w + p.ph, tw0 = bpix % p.w + p.pw;
        int dyb = dyo + (bimg * p.oc + g * p.ocg) * ohw;

        if (lid < TK && lid < K) {
            int q = lid % khw, oc = lid / khw;
            kt_w_off[0][lid] = oc * p.cg * khw + q;
            kt_dy[0][lid] = oc * ohw;
            kt_h[0][lid] = q / p.kw * p.dlh;
            kt_w[0][lid] = q % p.kw * p.dlw;
        }
        barrier();
        TILE_ACC_ZERO();
        int cur = 0;
        for (int k0 = 0; k0 < K; k0 += TK) {
            bool k_ok = k0 + ak < K;
            int aoff = k_ok ? kt_w_off[cur][ak] : 0;
            for (int r = 0; r < 4; r++) {
                int m = am + 16 * r;
                As[ak][m] = m0 + m < M && k_ok ? w[wa + aoff + m * khw] : 0.0;
            }
            for (int r = 0; r < 4; r++) {
                int kl = bk + 4 * r;
                float v = 0.0;
                if (bn_ok && k0 + kl < K) {
                    int th = th0 - kt_h[cur][kl], tw = tw0 - kt_w[cur][kl];
                    if (th >= 0 && tw >= 0 && (unit || (th % p.sh == 0 && tw % p.sw == 0))) {
                        int oh = unit ? th : th / p.sh, ow = unit ? tw : tw / p.sw;
                        if (oh < p.oh && ow < p.ow) v = dy[dyb + kt_dy[cur][kl] + oh * p.ow + ow];
                    }
                }
                Bs[kl][bcol] = v;
            }
            int kn = k0 + TK + lid;
            if (lid < TK && kn < K) {
                int q = kn % khw, oc = kn / khw;
                kt_w_off[cur ^ 1][lid] = oc * p.cg * khw + q;
                kt_dy[cur ^ 1][lid] = oc * ohw;
                kt_h[cur ^ 1][lid] = q / p.kw * p.dlh;
                kt_w[cur ^ 1][lid] = q % p.kw * p.dlw;
            }
            barrier();
            TILE_MAC();
            barrier();
            cur ^= 1;
        }
        for (int v = 0; v < 4; v++) {
            int n = n0 + tx + 16 * v;
            if (n >= N) continue;
            int dxn = dxo + (n / hw * p.c + g * p.cg + m0) * hw + n % hw;
            for (int u = 0; u < 4; u++) {
                int m = ty + 16 * u;
                if (m0 + m < M) dx[dxn + m * hw] = acc[u][v];
            }
        }
    }
}
