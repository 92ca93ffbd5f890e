#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "unary_ops.glsl"
// dx = dy * f'(x); y = f(x) is read when given (has_y), else recomputed.

AG_PARAMS {
    int op;
    float p0, p1;
    int has_y;
    Shape sh;
    Strides dxs, dys, xs, ys;
} P;
layout(std430, binding = 1) writeonly buffer DX { float dx[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) readonly buffer X { float x[]; };
layout(std430, binding = 4) readonly buffer Y { float y[]; };

void main()
{
    int c[8];
    AG_FOR(i, P.sh.numel) {
        int odx, ody, ox, oy;
        if (P.sh.nd <= 1) {
            odx = ag_lin(P.dxs, i);
            ody = ag_lin(P.dys, i);
            ox = ag_lin(P.xs, i);
            oy = ag_lin(P.ys, i);
        } else {
            ag_coords(P.sh, i, c);
            odx = ag_dot(P.dxs, c, P.sh.nd);
            ody = ag_dot(P.dys, c, P.sh.nd);
            ox = ag_dot(P.xs, c, P.sh.nd);
            oy = ag_dot(P.ys, c, P.sh.nd);
        }
        float xv = x[ox];
        float yv = P.has_y != 0 ? y[oy] : unary_f(P.op, xv, P.p0, P.p1);
        dx[odx] = dy[ody] * unary_d(P.op, xv, yv, P.p0, P.p1);
    }
}
