// Unary op codes (ag_unary_op order) and formulas, shared by unary_fw and
// unary_bw; they mirror backends/cpu/cpu_elementwise.c.

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

#define K_SQRT_2_OVER_PI 0.79788456080286535588
#define K_INV_SQRT_2 0.70710678118654752440
#define K_INV_SQRT_2PI 0.39894228040143267794
#define K_GELU_C 0.044715

float gelu_tanh_u(float x) { return K_SQRT_2_OVER_PI * (x + K_GELU_C * x * x * x); }
// 0.5 (1 + erf(z)) as 0.5 ag_erfc(-z): no cancellation for negative x
float gelu_cdf(float x) { return 0.5 * ag_erfc(-x * K_INV_SQRT_2); }

float unary_f(int op, float x, float p0, float p1)
{
    switch (op) {
    case U_NEG: return -x;
    case U_EXP: return ag_exp(x);
    case U_LOG: return ag_log(x);
    case U_SQRT: return sqrt(x);
    case U_RSQRT: return 1.0 / sqrt(x);
    case U_ABS: return abs(x);
    case U_SQUARE: return x * x;
    case U_RELU: return x < 0.0 ? 0.0 : x; // NaN passes through
    case U_LEAKY_RELU: return x > 0.0 ? x : p0 * x;
    case U_ELU: return x > 0.0 ? x : p0 * ag_expm1(x);
    case U_SIGMOID: return ag_sigmoid(x);
    case U_TANH: return ag_tanh(x);
    case U_GELU_TANH: return x * ag_sigmoid(2.0 * gelu_tanh_u(x));
    case U_GELU_ERF: return x * gelu_cdf(x);
    case U_SILU:
        // far left, exp(x) is subnormal but x exp(x) is not: scale before rounding
        if (x < -80.0 && x >= -103.0) { int n; float p = ag_exp_parts(x, n); return ag_scale2(p * x, n); }
        return x * ag_sigmoid(x);
    case U_SOFTPLUS: return max(x, 0.0) + ag_log1p(ag_exp(-abs(x)));
    case U_CLAMP: { float t = x < p0 ? p0 : x; return t > p1 ? p1 : t; }
    case U_POW: return ag_pow(x, p0);
    case U_ADD_SCALAR: return x + p0;
    case U_MUL_SCALAR: return x * p0;
    }
    return 0.0 / 0.0;
}

// f'(x) given x and y = f(x). Saturating functions use e = ag_exp(-|x|) rather
// than y: once y rounds to 1, 1 - y has no correct digits.
float unary_d(int op, float x, float y, float p0)
{
    switch (op) {
    case U_NEG: return -1.0;
    case U_EXP: return y;
    case U_LOG: return 1.0 / x;
    case U_SQRT: return 0.5 / y;
    case U_RSQRT: return -0.5 * y * y * y;
    case U_ABS: return x > 0.0 ? 1.0 : x < 0.0 ? -1.0 : x == 0.0 ? 0.0 : x;
    case U_SQUARE: return 2.0 * x;
    case U_RELU: return x > 0.0 ? 1.0 : 0.0;
    case U_LEAKY_RELU: return x > 0.0 ? 1.0 : p0;
    case U_ELU: return x > 0.0 ? 1.0 : p0 * ag_exp(x);
    case U_SIGMOID: { float e = ag_exp(-abs(x)), d = 1.0 + e; return e / (d * d); }
    case U_TANH: { float e = ag_exp(-2.0 * abs(x)), d = 1.0 + e; return 4.0 * e / (d * d); }
    case U_GELU_TANH: {
        float s = ag_sigmoid(2.0 * gelu_tanh_u(x));
        float du = K_SQRT_2_OVER_PI * (1.0 + 3.0 * K_GELU_C * x * x);
        return s + 2.0 * x * s * (1.0 - s) * du;
    }
    case U_GELU_ERF: return gelu_cdf(x) + x * K_INV_SQRT_2PI * ag_exp(-0.5 * x * x);
    case U_SILU: { float s = ag_sigmoid(x); return s * (1.0 + x * (1.0 - s)); }
    case U_SOFTPLUS: return ag_sigmoid(x);
    case U_POW: return p0 == 0.0 ? 0.0 : p0 * ag_pow(x, p0 - 1.0);
    case U_ADD_SCALAR: return 1.0;
    case U_MUL_SCALAR: return p0;
    }
    return 0.0 / 0.0;
}

