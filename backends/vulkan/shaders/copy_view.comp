#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Strided copy, f32 <-> i32 conversion; dst and src of one shape (same != 0)
// or of different shapes with the same number of elements, walked row-major.

AG_PARAMS {
    int mode; // 0 bits, 1 f32 -> i32 (truncation, saturating, NaN -> 0), 2 i32 -> f32
    int same;
    Shape dsh;
    Strides ds;
    Shape ssh;
    Strides ss;
} P;
layout(std430, binding = 1) writeonly buffer Dst { uint dst[]; };
layout(std430, binding = 2) readonly buffer Src { uint src[]; };

void main()
{
    int c[8];
    AG_FOR(i, P.dsh.numel) {
        int od, os;
        if (P.dsh.nd <= 1) {
            od = ag_lin(P.ds, i);
        } else {
            ag_coords(P.dsh, i, c);
            od = ag_dot(P.ds, c, P.dsh.nd);
        }
        if (P.same != 0 && P.dsh.nd > 1) {
            os = ag_dot(P.ss, c, P.dsh.nd);
        } else if (P.ssh.nd <= 1) {
            os = ag_lin(P.ss, i);
        } else {
            ag_coords(P.ssh, i, c);
            os = ag_dot(P.ss, c, P.ssh.nd);
        }
        uint v = src[os];
        if (P.mode == 1) {
            float f = uintBitsToFloat(v);
            int r = isnan(f) ? 0 : f >= 2147483648.0 ? 2147483647 : f <= -2147483648.0 ? (-2147483647 - 1) : int(f);
            v = uint(r);
        } else if (P.mode == 2) {
            v = floatBitsToUint(float(int(v)));
        }
        dst[od] = v;
    }
}
