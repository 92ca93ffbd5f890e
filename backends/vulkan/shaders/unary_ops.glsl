// Unary formulas for each row of src/ops/unary_table.h: f_<name> (value) and
// d_<name> (derivative, given x and y = f(x)). The opcode numbers and the
// unary_f/unary_d dispatch are generated from the table (unary_dispatch.glsl).
// They mirror backends/cpu/cpu_elementwise.c.

#define K_SQRT_2_OVER_PI 0.79788456080286535588
#define K_INV_SQRT_2 0.70710678118654752440
#define K_INV_SQRT_2PI 0.39894228040143267794
#define K_GELU_C 0.044715

float gelu_tanh_u(float x) { return K_SQRT_2_OVER_PI * (x + K_GELU_C * x * x * x); }
// 0.5 (1 + erf(z)) as 0.5 ag_erfc(-z): no cancellation for negative x
float gelu_cdf(float x) { return 0.5 * ag_erfc(-x * K_INV_SQRT_2); }

#define F(name) float f_##name(float x, float p0, float p1)
#define D(name) float d_##name(float x, float y, float p0, float p1)

F(neg) { return -x; }
F(exp) { return ag_exp(x); }
F(log) { return ag_log(x); }
F(sqrt) { return sqrt(x); }
F(rsqrt) { return 1.0 / sqrt(x); }
F(abs) { return abs(x); }
F(square) { return x * x; }
F(relu) { return x < 0.0 ? 0.0 : x; } // NaN passes through
F(leaky_relu) { return x > 0.0 ? x : p0 * x; }
F(elu) { return x > 0.0 ? x : p0 * ag_expm1(x); }
F(sigmoid) { return ag_sigmoid(x); }
F(tanh) { return ag_tanh(x); }
F(gelu_tanh) { return x * ag_sigmoid(2.0 * gelu_tanh_u(x)); }
F(gelu) { return x * gelu_cdf(x); }
F(silu)
{
    // far left, exp(x) is subnormal but x exp(x) is not: scale before rounding
    if (x < -80.0 && x >= -103.0) { int n; float p = ag_exp_parts(x, n); return ag_scale2(p * x, n); }
    return x * ag_sigmoid(x);
}
F(softplus) { return max(x, 0.0) + ag_log1p(ag_exp(-abs(x))); }
F(clamp) { float t = x < p0 ? p0 : x; return t > p1 ? p1 : t; }
F(pow) { return ag_pow(x, p0); }
F(add_scalar) { return x + p0; }
F(mul_scalar) { return x * p0; }
F(mish) { return x * ag_tanh(f_softplus(x, p0, p1)); }

// Saturating functions use e = ag_exp(-|x|) rather than y: once y rounds to 1,
// 1 - y has no correct digits.
D(neg) { return -1.0; }
D(exp) { return y; }
D(log) { return 1.0 / x; }
D(sqrt) { return 0.5 / y; }
D(rsqrt) { return -0.5 * y * y * y; }
D(abs) { return x > 0.0 ? 1.0 : x < 0.0 ? -1.0 : x == 0.0 ? 0.0 : x; }
D(square) { return 2.0 * x; }
D(relu) { return x > 0.0 ? 1.0 : 0.0; }
D(leaky_relu) { return x > 0.0 ? 1.0 : p0; }
D(elu) { return x > 0.0 ? 1.0 : p0 * ag_exp(x); }
D(sigmoid) { float e = ag_exp(-abs(x)), d = 1.0 + e; return e / (d * d); }
D(tanh) { float e = ag_exp(-2.0 * abs(x)), d = 1.0 + e; return 4.0 * e / (d * d); }
D(gelu_tanh)
{
    float s = ag_sigmoid(2.0 * gelu_tanh_u(x));
    float du = K_SQRT_2_OVER_PI * (1.0 + 3.0 * K_GELU_C * x * x);
    return s + 2.0 * x * s * (1.0 - s) * du;
}
D(gelu) { return gelu_cdf(x) + x * K_INV_SQRT_2PI * ag_exp(-0.5 * x * x); }
D(silu)
{
    // s = exp(x) is subnormal there (flushed on many GPUs) while s (1 + x) is not
    if (x < -80.0) { float h = ag_exp(0.5 * x); return ((1.0 + x) * h) * h; }
    float s = ag_sigmoid(x);
    return s * (1.0 + x * (1.0 - s));
}
D(softplus) { return ag_sigmoid(x); }
D(clamp) { return x >= p0 && x <= p1 ? 1.0 : 0.0; }
D(pow) { return p0 == 0.0 ? 0.0 : p0 * ag_pow(x, p0 - 1.0); }
D(add_scalar) { return 1.0; }
D(mul_scalar) { return p0; }
D(mish) { float t = ag_tanh(f_softplus(x, p0, p1)); return t + x * (1.0 - t * t) * ag_sigmoid(x); }

#include "unary_dispatch.glsl"
