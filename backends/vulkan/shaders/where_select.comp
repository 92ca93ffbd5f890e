#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = cond ? a : b; cond read as raw bits: int32 nonzero, or f32 != 0 (NaN is true).

AG_PARAMS {
    int cond_is_int;
    Shape sh;
    Strides ys, cs, as, bs;
} P;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer C { uint cond[]; };
layout(std430, binding = 3) readonly buffer A { float a[]; };
layout(std430, binding = 4) readonly buffer B { float b[]; };

void main()
{
    int c[8];
    AG_FOR(i, P.sh.numel) {
        int oy, oc, oa, ob;
        if (P.sh.nd <= 1) {
            oy = ag_lin(P.ys, i);
            oc = ag_lin(P.cs, i);
            oa = ag_lin(P.as, i);
            ob = ag_lin(P.bs, i);
        } else {
            ag_coords(P.sh, i, c);
            oy = ag_dot(P.ys, c, P.sh.nd);
            oc = ag_dot(P.cs, c, P.sh.nd);
            oa = ag_dot(P.as, c, P.sh.nd);
            ob = ag_dot(P.bs, c, P.sh.nd);
        }
        uint bits = cond[oc];
        bool t = P.cond_is_int != 0 ? bits != 0u : uintBitsToFloat(bits) != 0.0;
        y[oy] = t ? a[oa] : b[ob];
    }
}
