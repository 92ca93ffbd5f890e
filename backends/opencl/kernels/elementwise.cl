/* Unary (forward and backward), binary and where on strided f32 views. The op
 * codes are ag_unary_op / ag_binary_op from anygrad.h, in that order; the
 * formulas mirror backends/cpu/cpu_elementwise.c. */

#define U_NEG 0
#define U_EXP 1
#define U_LOG 2
#define U_SQRT 3
#define U_RSQRT 4
#define U_ABS 5
#define U_SQUARE 6
#define U_RELU 7
#define U_LEAKY_RELU 8
#define U_ELU 9
#define U_SIGMOID 10
#define U_TANH 11
#define U_GELU_TANH 12
#define U_GELU_ERF 13
#define U_SILU 14
#define U_SOFTPLUS 15
#define U_CLAMP 16
#define U_POW 17
#define U_ADD_SCALAR 18
#define U_MUL_SCALAR 19

#define K_SQRT_2_OVER_PI 0.79788456080286535588f
#define K_INV_SQRT_2 0.70710678118654752440f
#define K_INV_SQRT_2PI 0.39894228040143267794f
#define K_GELU_C 0.044715f

inline float gelu_tanh_u(float x) { return K_SQRT_2_OVER_PI * (x + K_GELU_C * x * x * x); }
/* 0.5 (1 + erf(z)) as 0.5 erfc(-z): no cancellation for negative x */
inline float gelu_cdf(float x) { return 0.5f * erfc(-x * K_INV_SQRT_2); }

inline float unary_f(int op, float x, float p0, float p1)
{
    switch (op) {
    case U_NEG: return -x;
    case U_EXP: return exp(x);
    case U_LOG: return log(x);
    case U_SQRT: return sqrt(x);
    case U_RSQRT: return 1.0f / sqrt(x);
    case U_ABS: return fabs(x);
    case U_SQUARE: return x * x;
    case U_RELU: return x < 0.0f ? 0.0f : x; /* NaN passes through */
    case U_LEAKY_RELU: return x > 0.0f ? x : p0 * x;
    case U_ELU: return x > 0.0f ? x : p0 * expm1(x);
    case U_SIGMOID: return ag_sigmoid(x);
    case U_TANH: return tanh(x);
    case U_GELU_TANH: return x * ag_sigmoid(2.0f * gelu_tanh_u(x));
    case U_GELU_ERF: return x * gelu_cdf(x);
    case U_SILU: return x * ag_sigmoid(x);
    case U_SOFTPLUS: return fmax(x, 0.0f) + log1p(exp(-fabs(x)));
    case U_CLAMP: { float t = x < p0 ? p0 : x; return t > p1 ? p1 : t; }
    case U_POW: return pow(x, p0);
    case U_ADD_SCALAR: return x + p0;
    case U_MUL_SCALAR: return x * p0;
    }
    return NAN;
}

/* f'(x) given x and y = f(x). Saturating functions use e = exp(-|x|) rather
 * than y: once y rounds to 1, 1 - y has no correct digits. */
inline float unary_d(int op, float x, float y, float p0)
{
    switch (op) {
    case U_NEG: return -1.0f;
    case U_EXP: return y;
    case U_LOG: return 1.0f / x;
    case U_SQRT: return 0.5f / y;
    case U_RSQRT: return -0.5f * y * y * y;
    case U_ABS: return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x == 0.0f ? 0.0f : x;
    case U_SQUARE: return 2.0f * x;
    case U_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case U_LEAKY_RELU: return x > 0.0f ? 1.0f : p0;
    case U_ELU: return x > 0.0f ? 1.0f : p0 * exp(x);
    case U_SIGMOID: { float e = exp(-fabs(x)), d = 1.0f + e; return e / (d * d); }
    case U_TANH: { float e = exp(-2.0f * fabs(x)), d = 1.0f + e; return 4.0f * e / (d * d); }
    case U_GELU_TANH: {
        float s = ag_sigmoid(2.0f * gelu_tanh_u(x));
        float du = K_SQRT_2_OVER_PI * (1.0f + 3.0f * K_GELU_C * x * x);
        return s + 2.0f * x * s * (1.0f - s) * du;
    }
    case U_GELU_ERF: return gelu_cdf(x) + x * K_INV_SQRT_2PI * exp(-0.5f * x * x);
    case U_SILU: { float s = ag_sigmoid(x); return s * (1.0f + x * (1.0f - s)); }
    case U_SOFTPLUS: return ag_sigmoid(x);
    case U_POW: return p0 == 0.0f ? 0.0f : p0 * pow(x, p0 - 1.0f);
    case U_ADD_SCALAR: return 1.0f;
    case U_MUL_SCALAR: return p0;
    }
    return NAN;
}

kernel void unary_fw(int op, float p0, float p1, ag_shape sh, ag_strides ys, ag_strides xs,
                     global float *y, global const float *x)
{
    int c[8];
    AG_FOR(i, sh.numel) {
        int oy, ox;
        if (sh.nd <= 1) {
            oy = ys.off + i * ys.s[0];
            ox = xs.off + i * xs.s[0];
        } else {
            ag_coords(&sh, i, c);
            oy = ag_dot(&ys, c, sh.nd);
            ox = ag_dot(&xs, c, sh.nd);
        }
        y[oy] = unary_f(op, x[ox], p0, p1);
    }
}

/* clamp's derivative needs both bounds, so it is handled here */
kernel void unary_bw(int op, float p0, float p1, int has_y, ag_shape sh, ag_strides dxs,
                     ag_strides dys, ag_strides xs, ag_strides ys, global float *dx,
                     global const float *dy, global const float *x, global const float *y)
{
    int c[8];
    AG_FOR(i, sh.numel) {
        int odx, ody, ox, oy;
        if (sh.nd <= 1) {
            odx = dxs.off + i * dxs.s[0];
            ody = dys.off + i * dys.s[0];
            ox = xs.off + i * xs.s[0];
            oy = ys.off + i * ys.s[0];
        } else {
            ag_coords(&sh, i, c);
            odx = ag_dot(&dxs, c, sh.nd);
            ody = ag_dot(&dys, c, sh.nd);
            ox = ag_dot(&xs, c, sh.nd);
            oy = ag_dot(&ys, c, sh.nd);
        }
        float xv = x[ox];
        float d;
        if (op == U_CLAMP) {
            d = xv >= p0 && xv <= p1 ? 1.0f : 0.0f;
        } else {
            float yv = has_y ? y[oy] : unary_f(op, xv, p0, p1);
            d = unary_d(op, xv, yv, p0);
        }
        dx[odx] = dy[ody] * d;
    }
}

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

inline float binary_f(int op, float a, float b)
{
    switch (op) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    /* NaN in either operand wins, as torch.maximum/minimum */
    case B_MAXIMUM: return isnan(a) ? a : isnan(b) ? b : a > b ? a : b;
    case B_MINIMUM: return isnan(a) ? a : isnan(b) ? b : a < b ? a : b;
    case B_EQ: return a == b ? 1.0f : 0.0f;
    case B_NE: return a != b ? 1.0f : 0.0f;
    case B_LT: return a < b ? 1.0f : 0.0f;
    case B_LE: return a <= b ? 1.0f : 0.0f;
    case B_GT: return a > b ? 1.0f : 0.0f;
    case B_GE: return a >= b ? 1.0f : 0.0f;
    }
    return NAN;
}

kernel void binary(int op, ag_shape sh, ag_strides ys, ag_strides as, ag_strides bs,
                   global float *y, global const float *a, global const float *b)
{
    int c[8];
    AG_FOR(i, sh.numel) {
        int oy, oa, ob;
        if (sh.nd <= 1) {
            oy = ys.off + i * ys.s[0];
            oa = as.off + i * as.s[0];
            ob = bs.off + i * bs.s[0];
        } else {
            ag_coords(&sh, i, c);
            oy = ag_dot(&ys, c, sh.nd);
            oa = ag_dot(&as, c, sh.nd);
            ob = ag_dot(&bs, c, sh.nd);
        }
        y[oy] = binary_f(op, a[oa], b[ob]);
    }
}

/* cond is read as raw bits: int32 nonzero, or f32 != 0 (NaN counts as true) */
kernel void where_select(int cond_is_int, ag_shape sh, ag_strides ys, ag_strides cs, ag_strides as,
                         ag_strides bs, global float *y, global const uint *cond,
                         global const float *a, global const float *b)
{
    int c[8];
    AG_FOR(i, sh.numel) {
        int oy, oc, oa, ob;
        if (sh.nd <= 1) {
            oy = ys.off + i * ys.s[0];
            oc = cs.off + i * cs.s[0];
            oa = as.off + i * as.s[0];
            ob = bs.off + i * bs.s[0];
        } else {
            ag_coords(&sh, i, c);
            oy = ag_dot(&ys, c, sh.nd);
            oc = ag_dot(&cs, c, sh.nd);
            oa = ag_dot(&as, c, sh.nd);
            ob = ag_dot(&bs, c, sh.nd);
        }
        uint bits = cond[oc];
        bool t = cond_is_int ? bits != 0u : as_float(bits) != 0.0f;
        y[oy] = t ? a[oa] : b[ob];
    }
}
