// Shared by every shader (#include). GLSL 450 for Vulkan 1.1, no extensions
// beyond the include directive glslc resolves at build time. Views arrive in
// the parameter block (binding 0) as a shape plus per-operand strides in
// elements, laid out as ag_shape32 / ag_strides32 in backends/backend.h.
//
// The parameter block is declared `AG_PARAMS { ... } P;`, AG_PARAMS given on
// glslc's command line (backends/vulkan/meson.build): a storage buffer
// (std430), or in the _u variants a uniform buffer (std140), for devices that
// allow only 4 storage buffers a shader. Every block is laid out so that both
// rules give the C struct's offsets.

layout(local_size_x_id = 0) in;

// The arrays as ivec4 pairs so that std140 (the uniform parameter blocks) and
// std430 lay them out alike: element d is n4[d >> 2][d & 3] (AG_N, AG_S).
struct Shape {
    int nd, numel, pad0, pad1;
    ivec4 n4[2];
};
struct Strides {
    int off, pad0, pad1, pad2;
    ivec4 s4[2];
};
#define AG_N(sh, d) (sh).n4[(d) >> 2][(d) & 3]
#define AG_S(st, d) (st).s4[(d) >> 2][(d) & 3]

// Row-major coordinates of linear index i.
void ag_coords(Shape sh, int i, out int c[8])
{
    for (int d = 7; d >= 0; d--) {
        c[d] = 0;
        if (d < sh.nd) {
            c[d] = i % AG_N(sh, d);
            i /= AG_N(sh, d);
        }
    }
}

int ag_dot(Strides st, int c[8], int nd)
{
    int o = st.off;
    for (int d = 0; d < nd; d++) o += c[d] * AG_S(st, d);
    return o;
}

// Offset of element i of a view when nd <= 1 (the common dense case).
int ag_lin(Strides st, int i) { return st.off + i * st.s4[0].x; }

// Grid-stride loop over [0, n).
#define AG_FOR(i, n) for (int i = int(gl_GlobalInvocationID.x); i < (n); i += int(gl_NumWorkGroups.x * gl_WorkGroupSize.x))

// exp and log with float accuracy (about 1 ulp) on every driver: GLSL only
// promises 3 ulp for exp and an absolute 2^-21 for log near 1, and software
// drivers use that freedom. Cody-Waite range reduction with ln 2 split in two,
// then minimax polynomials (the classic Cephes single-precision coefficients).
// exp(x) = p 2^n with p in [0.7, 1.5): callers that scale the result first
// (silu) round once instead of twice when the result is tiny.
float ag_exp_parts(float x, out int n)
{
    float k = floor(x * 1.44269504088896341 + 0.5);
    // precise: folding the two halves of ln 2 back into one constant (which
    // optimisers do) costs 2^-25 k of accuracy
    precise float r = x - k * 0.693359375;
    r = r - k * -2.12194440e-4;
    float z = r * r;
    float p = ((((1.9875691500e-4 * r + 1.3981999507e-3) * r + 8.3334519073e-3) * r +
                4.1665795894e-2) * r + 1.6666665459e-1) * r + 5.0000001201e-1;
    n = int(k);
    return p * z + r + 1.0;
}

// Two steps: 2^128 alone overflows, 2^-149 alone underflows.
float ag_scale2(float p, int n) { return ldexp(ldexp(p, n / 2), n - n / 2); }

float ag_exp(float x)
{
    if (isnan(x)) return x;
    if (x > 88.72283935546875) return 1.0 / 0.0;
    if (x < -103.972084045410) return 0.0;
    int n;
    float p = ag_exp_parts(x, n);
    return ag_scale2(p, n);
}

float ag_log(float x)
{
    if (isnan(x) || x < 0.0) return 0.0 / 0.0;
    if (x == 0.0) return -1.0 / 0.0;
    if (isinf(x)) return x;
    int e;
    float m = frexp(x, e); // x = m 2^e, m in [0.5, 1)
    if (m < 0.70710678118654752) {
        m = m + m;
        e -= 1;
    }
    float f = m - 1.0;
    float z = f * f;
    float y = ((((((((7.0376836292e-2 * f - 1.1514610310e-1) * f + 1.1676998740e-1) * f -
                     1.2420140846e-1) * f + 1.4249322787e-1) * f - 1.6668057665e-1) * f +
                  2.0000714765e-1) * f - 2.4999993993e-1) * f + 3.3333331174e-1) * f * z;
    float fe = float(e);
    precise float t = y + fe * -2.12194440e-4; // precise: keep ln 2 split in two
    t -= 0.5 * z;
    precise float res = f + t + fe * 0.693359375;
    return res;
}

// exp of a non-positive argument never overflows
float ag_sigmoid(float x)
{
    if (x >= 0.0) return 1.0 / (1.0 + ag_exp(-x));
    float e = ag_exp(x);
    return e / (1.0 + e);
}

// GLSL has no expm1, log1p or erfc: these keep full float precision near 0.
float ag_expm1(float x)
{
    if (abs(x) < 1e-5) return x + 0.5 * x * x;
    if (abs(x) < 0.5) { // exp(x) - 1 cancels; use the series to x^7
        float t = x;
        float s = x;
        for (int k = 2; k <= 8; k++) {
            t *= x / float(k);
            s += t;
        }
        return s;
    }
    return ag_exp(x) - 1.0;
}

// `precise`: drivers may otherwise fold (1 + x) - 1 into x and lose the correction.
float ag_log1p(float x)
{
    precise float u = 1.0 + x;
    if (u == 1.0) return x;
    if (isinf(u)) return u;
    precise float d = u - 1.0;
    return ag_log(u) * (x / d); // corrects the rounding of 1 + x
}

// Complementary error function: rational approximation of exp(-z^2) times a
// polynomial in t = 1 / (1 + z / 2), fractional error below 1.2e-7.
float ag_erfc(float x)
{
    float z = abs(x);
    float t = 1.0 / (1.0 + 0.5 * z);
    float p = -z * z - 1.26551223 +
              t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
              t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 +
              t * 0.17087277))))))));
    float r = t * ag_exp(p);
    return x >= 0.0 ? r : 2.0 - r;
}

// pow as C's powf: negative bases with integral exponents, zeros, NaN.
float ag_pow(float x, float p)
{
    if (p == 0.0) return 1.0;
    if (isnan(x) || isnan(p)) return x + p;
    if (x == 0.0) return p > 0.0 ? 0.0 : 1.0 / 0.0;
    bool odd = floor(p) == p && mod(p, 2.0) == 1.0;
    if (isinf(x)) { // as C: (-inf)^p is +-inf or +-0, signed for odd integral p
        float r = p > 0.0 ? x * sign(x) : 0.0;
        return x < 0.0 && odd ? -r : r;
    }
    float ax = abs(x);
    float r;
    if (floor(p) == p && abs(p) <= 64.0) { // small integral powers by squaring: a few ulp
        int k = int(abs(p));
        float b = ax;
        r = 1.0;
        while (k > 0) {
            if ((k & 1) != 0) r *= b;
            b *= b;
            k >>= 1;
        }
        if (p < 0.0) r = 1.0 / r;
    } else {
        r = ag_exp(p * ag_log(ax));
    }
    if (x < 0.0) {
        if (floor(p) != p) return 0.0 / 0.0;
        if (mod(p, 2.0) == 1.0) r = -r;
    }
    return r;
}

// tanh from expm1: no overflow for large |x| (some drivers' tanh divides
// infinities) and no cancellation near 0.
float ag_tanh(float x)
{
    float e = ag_expm1(-2.0 * abs(x));
    float r = -e / (2.0 + e);
    return x < 0.0 ? -r : r;
}
