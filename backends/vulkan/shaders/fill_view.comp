#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Writes one 32-bit pattern to every element of a strided view.

AG_PARAMS {
    uint bits;
    Shape sh;
    Strides ds;
} P;
layout(std430, binding = 1) writeonly buffer Dst { uint dst[]; };

void main()
{
    int c[8];
    AG_FOR(i, P.sh.numel) {
        int od;
        if (P.sh.nd <= 1) {
            od = ag_lin(P.ds, i);
        } else {
            ag_coords(P.sh, i, c);
            od = ag_dot(P.ds, c, P.sh.nd);
        }
        dst[od] = P.bits;
    }
}
