#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "unary_ops.glsl"

AG_PARAMS {
    int op;
    float p0, p1;
    Shape sh;
    Strides ys, xs;
} P;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };

void main()
{
    int c[8];
    AG_FOR(i, P.sh.numel) {
        int oy, ox;
        if (P.sh.nd <= 1) {
            oy = ag_lin(P.ys, i);
            ox = ag_lin(P.xs, i);
        } else {
            ag_coords(P.sh, i, c);
            oy = ag_dot(P.ys, c, P.sh.nd);
            ox = ag_dot(P.xs, c, P.sh.nd);
        }
        y[oy] = unary_f(P.op, x[ox], P.p0, P.p1);
    }
}
