#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Binary ops on strided, broadcast (stride 0) views. One formula per row of
// src/ops/binary_table.h; binary_dispatch.glsl (generated) numbers the ops and
// switches over them.

#define B(name) float b_##name(float a, float b)

B(add) { return a + b; }
B(sub) { return a - b; }
B(mul) { return a * b; }
B(div) { return a / b; }
// NaN in either operand wins, as torch.maximum/minimum
B(maximum) { return isnan(a) ? a : isnan(b) ? b : a > b ? a : b; }
B(minimum) { return isnan(a) ? a : isnan(b) ? b : a < b ? a : b; }
B(eq) { return a == b ? 1.0 : 0.0; }
B(ne) { return a != b ? 1.0 : 0.0; }
B(lt) { return a < b ? 1.0 : 0.0; }
B(le) { return a <= b ? 1.0 : 0.0; }
B(gt) { return a > b ? 1.0 : 0.0; }
B(ge) { return a >= b ? 1.0 : 0.0; }

#include "binary_dispatch.glsl"

AG_PARAMS {
    int op;
    Shape sh;
    Strides ys, as, bs;
} P;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer A { float a[]; };
layout(std430, binding = 3) readonly buffer B { float b[]; };

void main()
{
    int c[8];
    AG_FOR(i, P.sh.numel) {
        int oy, oa, ob;
        if (P.sh.nd <= 1) {
            oy = ag_lin(P.ys, i);
            oa = ag_lin(P.as, i);
            ob = ag_lin(P.bs, i);
        } else {
            ag_coords(P.sh, i, c);
            oy = ag_dot(P.ys, c, P.sh.nd);
            oa = ag_dot(P.as, c, P.sh.nd);
            ob = ag_dot(P.bs, c, P.sh.nd);
        }
        y[oy] = binary_f(P.op, a[oa], b[ob]);
    }
}
