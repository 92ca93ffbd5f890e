/* Unary (forward and backward), binary and where on strided f32 views. The
 * unary formulas are f_<name> (value) and d_<name> (derivative, given x and
 * y = f(x)) for each row of src/ops/unary_table.h; the opcode numbers and the
 * unary_f/unary_d dispatch are generated from that table (unary_dispatch.cl).
 * They mirror backends/cpu/cpu_elementwise.c. */

#define K_SQRT_2_OVER_PI 0.79788456080286535588f
#define K_INV_SQRT_2 0.70710678118654752440f
#define K_INV_SQRT_2PI 0.39894228040143267794f
#define K_GELU_C 0.044715f

inline float gelu_tanh_u(float x) { return K_SQRT_2_OVER_PI * (x + K_GELU_C * x * x * x); }
/* 0.5 (1 + erf(z)) as 0.5 erfc(-z): no cancellation for negative x */
inline float gelu_cdf(float x) { return 0.5f * erfc(-x * K_INV_SQRT_2); }

#define F(name) inline float f_##name(float x, float p0, float p1)
#define D(name) inline float d_##name(float x, float y, float p0, float p1)

F(neg) { return -x; }
F(exp) { return exp(x); }
F(log) { return log(x); }
F(sqrt) { return sqrt(x); }
F(rsqrt) { return 1.0f / sqrt(x); }
F(abs) { return fabs(x); }
F(square) { return x * x; }
F(relu) { return x < 0.0f ? 0.0f : x; } /* NaN passes through */
F(leaky_relu) { return x > 0.0f ? x : p0 * x; }
F(elu) { return x > 0.0f ? x : p0 * expm1(x); }
F(sigmoid) { return ag_sigmoid(x); }
F(tanh) { return tanh(x); }
F(gelu_tanh) { return x * ag_sigmoid(2.0f * gelu_tanh_u(x)); }
F(gelu) { return x * gelu_cdf(x); }
/* far left exp(x) is subnormal, which many GPUs flush to zero, while x exp(x)
 * is not: two normal halves */
F(silu)
{
    if (x < -80.0f) { float h = exp(0.5f * x); return (x * h) * h; }
    return x * ag_sigmoid(x);
}
F(softplus) { return fmax(x, 0.0f) + log1p(exp(-fabs(x))); }
F(clamp) { float t = x < p0 ? p0 : x; return t > p1 ? p1 : t; }
F(pow) { return pow(x, p0); }
F(add_scalar) { return x + p0; }
F(mul_scalar) { return x * p0; }
F(mish) { return x * tanh(f_softplus(x, p0, p1)); }

/* Saturating functions use e = exp(-|x|) rather than y: once y rounds to 1,
 * 1 - y has no correct digits. */
D(neg) { return -1.0f; }
D(exp) { return y; }
D(log) { return 1.0f / x; }
D(sqrt) { return 0.5f / y; }
D(rsqrt) { return -0.5f * y * y * y; }
D(abs) { return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x == 0.0f ? 0.0f : x; }
D(square) { return 2.0f * x; }
D(relu) { return x > 0.0f ? 1.0f : 0.0f; }
D(leaky_relu) { return x > 0.0f ? 1.0f : p0; }
D(elu) { return x > 0.0f ? 1.0f : p0 * exp(x); }
D(sigmoid) { float e = exp(-fabs(x)), d = 1.0f + e; return e / (d * d); }
D(tanh) { float e = exp(-2.0f * fabs(x)), d = 1.0f + e; return 4.0f * e / (d * d); }
D(gelu_tanh)
{
    float s = ag_sigmoid(2.0f * gelu_tanh_u(x));
    float du = K_SQRT_2_OVER_PI * (1.0f + 3.0f * K_GELU_C * x * x);
    return s + 2.0f * x * s * (1.0f - s) * du;
}
D(gelu) { return gelu_cdf(x) + x * K_INV_SQRT_2PI * exp(-0.5f * x * x); }
D(silu)
{
    if (x < -80.0f) { float h = exp(0.5f * x); return ((1.0f + x) * h) * h; } /* as in f_silu */
    float s = ag_sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}
D(softplus) { return ag_sigmoid(x); }
D(clamp) { return x >= p0 && x <= p1 ? 1.0f : 0.0f; }
D(pow) { return p0 == 0.0f ? 0.0f : p0 * pow(x, p0 - 1.0f); }
D(add_scalar) { return 1.0f; }
D(mul_scalar) { return p0; }
D(mish) { float t = tanh(f_softplus(x, p0, p1)); return t + x * (1.0f - t * t) * ag_sigmoid(x); }

#include "unary_dispatch.cl"

kernel void unary_fw(int op, float p0, float p1, ag_shape sh_in, ag_strides ys_in, ag_strides xs_in,
                     global float *y, global const float *x)
{
    const ag_shape sh = sh_in; /* a private copy: see common.cl */
    const ag_strides ys = ys_in; /* a private copy: see common.cl */
    const ag_strides xs = xs_in; /* a private copy: see common.cl */
    int c[8];
    AG_FOR(i, sh.numel) {
        int oy, ox;
        if (sh.nd <= 1) {
            oy = ys.off + i * ys.s[0];
            ox = xs.off + i * xs.s[0];
        } else {
            ag_coords(sh, i, c);
            oy = ag_dot(ys, c, sh.nd);
            ox = ag_dot(xs, c, sh.nd);
        }
        y[oy] = unary_f(op, x[ox], p0, p1);
    }
}

kernel void unary_bw(int op, float p0, float p1, int has_y, ag_shape sh_in, ag_strides dxs_in,
                     ag_strides dys_in, ag_strides xs_in, ag_strides ys_in, global float *dx,
                     global const float *dy, global const float *x, global const float *y)
{
    const ag_shape sh = sh_in; /* a private copy: see common.cl */
    const ag_strides dxs = dxs_in; /* a private copy: see common.cl */
    const ag_strides dys = dys_in; /* a private copy: see common.cl */
    const ag_strides xs = xs_in; /* a private copy: see common.cl */
    const ag_strides ys = ys_in; /* a private copy: see common.cl */
    int c[8];
    AG_FOR(i, sh.numel) {
        int odx, ody, ox, oy;
        if (sh.nd <= 1) {
            odx = dxs.off + i * dxs.s[0];
            ody = dys.off + i * dys.s[0];
            ox = xs.off + i * xs.s[0];
            oy = ys.off + i * ys.s[0];
        } else {
            ag_coords(sh, i, c);
            odx = ag_dot(dxs, c, sh.nd);
            ody = ag_dot(dys, c, sh.nd);
            ox = ag_dot(xs, c, sh.nd);
            oy = ag_dot(ys, c, sh.nd);
        }
        float xv = x[ox];
        float yv = has_y ? y[oy] : unary_f(op, xv, p0, p1);
        dx[odx] = dy[ody] * unary_d(op, xv, yv, p0, p1);
    }
}

/* Binary formulas, one per row of src/ops/binary_table.h; binary_dispatch.cl
 * (generated) numbers the ops and switches over them. */
#define B(name) inline float b_##name(float a, float b)

B(add) { return a + b; }
B(sub) { return a - b; }
B(mul) { return a * b; }
B(div) { return a / b; }
/* NaN in either operand wins, as torch.maximum/minimum */
B(maximum) { return isnan(a) ? a : isnan(b) ? b : a > b ? a : b; }
B(minimum) { return isnan(a) ? a : isnan(b) ? b : a < b ? a : b; }
B(eq) { return a == b ? 1.0f : 0.0f; }
B(ne) { return a != b ? 1.0f : 0.0f; }
B(lt) { return a < b ? 1.0f : 0.0f; }
B(le) { return a <= b ? 1.0f : 0.0f; }
B(gt) { return a > b ? 1.0f : 0.0f; }
B(ge) { return a >= b ? 1.0f : 0.0f; }

#include "binary_dispatch.cl"

kernel void binary(int op, ag_shape sh_in, ag_strides ys_in, ag_strides as_in, ag_strides bs_in,
                   global float *y, global const float *a, global const float *b)
{
    const ag_shape sh = sh_in; /* a private copy: see common.cl */
    const ag_strides ys = ys_in; /* a private copy: see common.cl */
    const ag_strides as = as_in; /* a private copy: see common.cl */
    const ag_strides bs = bs_in; /* a private copy: see common.cl */
    int c[8];
    AG_FOR(i, sh.numel) {
        int oy, oa, ob;
        if (sh.nd <= 1) {
            oy = ys.off + i * ys.s[0];
            oa = as.off + i * as.s[0];
            ob = bs.off + i * bs.s[0];
        } else {
            ag_coords(sh, i, c);
            oy = ag_dot(ys, c, sh.nd);
            oa = ag_dot(as, c, sh.nd);
            ob = ag_dot(bs, c, sh.nd);
        }
        y[oy] = binary_f(op, a[oa], b[ob]);
    }
}

/* cond is read as raw bits: int32 nonzero, or f32 != 0 (NaN counts as true) */
kernel void where_select(int cond_is_int, ag_shape sh_in, ag_strides ys_in, ag_strides cs_in, ag_strides as_in,
                         ag_strides bs_in, global float *y, global const uint *cond,
                         global const float *a, global const float *b)
{
    const ag_shape sh = sh_in; /* a private copy: see common.cl */
    const ag_strides ys = ys_in; /* a private copy: see common.cl */
    const ag_strides cs = cs_in; /* a private copy: see common.cl */
    const ag_strides as = as_in; /* a private copy: see common.cl */
    const ag_strides bs = bs_in; /* a private copy: see common.cl */
    int c[8];
    AG_FOR(i, sh.numel) {
        int oy, oc, oa, ob;
        if (sh.nd <= 1) {
            oy = ys.off + i * ys.s[0];
            oc = cs.off + i * cs.s[0];
            oa = as.off + i * as.s[0];
            ob = bs.off + i * bs.s[0];
        } else {
            ag_coords(sh, i, c);
            oy = ag_dot(ys, c, sh.nd);
            oc = ag_dot(cs, c, sh.nd);
            oa = ag_dot(as, c, sh.nd);
            ob = ag_dot(bs, c, sh.nd);
        }
        uint bits = cond[oc];
        bool t = cond_is_int ? bits != 0u : as_float(bits) != 0.0f;
        y[oy] = t ? a[oa] : b[ob];
    }
}
