#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Binary ops (ag_binary_op order) on strided, broadcast (stride 0) views.

#define B_ADD 0
#define B_SUB 1
#define B_MUL 2
#define B_DIV 3
#define B_MAXIMUM 4
#define B_MINIMUM 5
#define B_EQ 6
#define B_NE 7
#define B_LT 8
#define B_LE 9
#define B_GT 10
#define B_GE 11

float binary_f(int op, float a, float b)
{
    switch (op) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    // NaN in either operand wins, as torch.maximum/minimum
    case B_MAXIMUM: return isnan(a) ? a : isnan(b) ? b : a > b ? a : b;
    case B_MINIMUM: return isnan(a) ? a : isnan(b) ? b : a < b ? a : b;
    case B_EQ: return a == b ? 1.0 : 0.0;
    case B_NE: return a != b ? 1.0 : 0.0;
    case B_LT: return a < b ? 1.0 : 0.0;
    case B_LE: return a <= b ? 1.0 : 0.0;
    case B_GT: return a > b ? 1.0 : 0.0;
    case B_GE: return a >= b ? 1.0 : 0.0;
    }
    return 0.0 / 0.0;
}

layout(std430, binding = 0) readonly buffer Params {
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
