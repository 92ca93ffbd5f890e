/* The unary op table: one row per ag_unary_op, the single source of
 *   - the public enum, wrappers and their declarations (include/anygrad.h's
 *     generated region, scripts/gen_ops.py),
 *   - the front end's names and wrappers (src/ops/ops_elementwise.c), the nn
 *     activation modules (src/nn/nn.c),
 *   - each backend's dispatch: the CPU row and vector tables, the opcode
 *     numbers and dispatch switches of OpenCL C and GLSL (generated at build
 *     time by scripts/gen_ops.py), and which backends implement the op,
 *   - the fp64 reference, the conformance and misuse rows (tests/).
 * Each backend writes the formulas f_<name> (value) and d_<name> (derivative):
 * docs/adding-an-op.md walks through one op.
 *
 * X(ENUM, name, np, "params", "doc", "Module", uses_y, on, wrap,
 *   "test name", tp0, tp1, dist, edges, "tol", ref)
 *   ENUM     AG_UNARY_<ENUM>; rows are numbered in order
 *   name     ag_<name>() and the op's name in messages and kernels
 *   np       parameters (0-2) the wrapper takes as p0, p1; "params" names them
 *   "doc"    the enum's comment in anygrad.h
 *   Module   PyTorch's module class (ag_activation_new)
 *   uses_y   the derivative reads y = f(x) (the kernels recompute it when absent)
 *   on       backends with a kernel (AG_ON_*); elsewhere the op fails with a
 *            message naming the backend, never runs wrong
 *   wrap     1: ag_<name>() is generated; 0: written in ops_elementwise.c
 *   test     the conformance row: name, parameters, input domain (OT_D_<dist>),
 *            edge values (E_<edges> in conformance/optable.c), tolerance class
 *   ref      the fp64 reference, an expression of double x, p0, p1 (conformance/ref.c)
 * Rows keep their order: the enum values are ABI. */
#ifndef AG_UNARY_TABLE_H
#define AG_UNARY_TABLE_H

#include "ops/table_common.h"

#define AG_UNARY_TABLE(X)                                                                          \
    X(NEG, neg, 0, "", "", "Neg", 0, AG_ON_ALL, 1,                                                 \
      "neg", 0, 0, NORMAL, EW, "exact", -x)                                                        \
    X(EXP, exp, 0, "", "", "Exp", 1, AG_ON_ALL, 1,                                                 \
      "exp", 0, 0, NORMAL, EW, "ulp", exp(x))                                                      \
    X(LOG, log, 0, "", "", "Log", 0, AG_ON_ALL, 1,                                                 \
      "log", 0, 0, POSITIVE, EW, "ulp", log(x))                                                    \
    X(SQRT, sqrt, 0, "", "", "Sqrt", 1, AG_ON_ALL, 1,                                              \
      "sqrt", 0, 0, POSITIVE, EW, "ulp", sqrt(x))                                                  \
    X(RSQRT, rsqrt, 0, "", "", "Rsqrt", 1, AG_ON_ALL, 1,                                           \
      "rsqrt", 0, 0, POSITIVE, EW, "ulp", 1.0 / sqrt(x))                                           \
    X(ABS, abs, 0, "", "", "Abs", 0, AG_ON_ALL, 1,                                                 \
      "abs", 0, 0, AWAY0, EW, "exact", fabs(x))                                                    \
    X(SQUARE, square, 0, "", "", "Square", 0, AG_ON_ALL, 1,                                        \
      "square", 0, 0, NORMAL, EW, "arith", x * x)                                                  \
    X(RELU, relu, 0, "", "", "ReLU", 0, AG_ON_ALL, 1,                                              \
      "relu", 0, 0, AWAY0, EW, "exact", (x > 0 || isnan(x)) ? x : 0.0)                             \
    X(LEAKY_RELU, leaky_relu, 1, "negative_slope", "p0 = negative slope", "LeakyReLU", 0,          \
      AG_ON_ALL, 1, "leaky_relu(0.01)", 0.01f, 0, AWAY0, EW, "arith", x > 0 ? x : p0 * x)          \
    X(ELU, elu, 1, "alpha", "p0 = alpha", "ELU", 0, AG_ON_ALL, 1,                                  \
      "elu(1)", 1.0f, 0, AWAY0, EW, "transc", x > 0 ? x : p0 * expm1(x))                           \
    X(SIGMOID, sigmoid, 0, "", "", "Sigmoid", 0, AG_ON_ALL, 1,                                     \
      "sigmoid", 0, 0, NORMAL, EW, "ulp", ref_sigmoid(x))                                          \
    X(TANH, tanh, 0, "", "", "Tanh", 0, AG_ON_ALL, 1,                                              \
      "tanh", 0, 0, NORMAL, EW, "ulp", tanh(x))                                                    \
    X(GELU_TANH, gelu_tanh, 0, "", "tanh approximation", "GELU", 0, AG_ON_ALL, 1,                  \
      "gelu_tanh", 0, 0, NORMAL, NOINF, "transc",                                                  \
      0.5 * x * (1.0 + tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x))))                 \
    X(GELU_ERF, gelu, 0, "", "erf form", "GELU", 0, AG_ON_ALL, 1,                                  \
      "gelu", 0, 0, NORMAL, NOINF, "transc", 0.5 * x * erfc(-x / sqrt(2.0)))                       \
    X(SILU, silu, 0, "", "", "SiLU", 0, AG_ON_ALL, 1,                                              \
      "silu", 0, 0, NORMAL, NOINF, "ulp", x * ref_sigmoid(x))                                      \
    X(SOFTPLUS, softplus, 0, "", "", "Softplus", 0, AG_ON_ALL, 1,                                  \
      "softplus", 0, 0, NORMAL, EW, "ulp", x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)))             \
    X(CLAMP, clamp, 2, "lo, hi", "p0 = lo, p1 = hi", "Hardtanh", 0, AG_ON_ALL, 0,                  \
      "clamp(-0.5,1.25)", -0.5f, 1.25f, CLAMP, EW, "exact", isnan(x) ? x : fmin(fmax(x, p0), p1))  \
    X(POW, pow, 1, "exponent", "p0 = exponent", "Pow", 0, AG_ON_ALL, 1,                            \
      "pow(2.5)", 2.5f, 0, POSITIVE, EW, "ulp", pow(x, p0))                                        \
    X(ADD_SCALAR, add_scalar, 1, "s", "p0", "AddScalar", 0, AG_ON_ALL, 1,                          \
      "add_scalar(1.75)", 1.75f, 0, NORMAL, EW, "arith", x + p0)                                   \
    X(MUL_SCALAR, mul_scalar, 1, "s", "p0", "MulScalar", 0, AG_ON_ALL, 1,                          \
      "mul_scalar(-2.5)", -2.5f, 0, NORMAL, EW, "arith", x * p0)                                   \
    X(MISH, mish, 0, "", "", "Mish", 0, AG_ON_ALL, 1,                                              \
      "mish", 0, 0, NORMAL, NOINF, "transc",                                                       \
      x * tanh(x > 0 ? x + log1p(exp(-x)) : log1p(exp(x))))

/* Which backends implement each op (the `on` column). */
#define AG__UNARY_ON(E, name, np, pn, doc, mod, uy, on, ...) [AG_UNARY_##E] = (on),
static const unsigned ag_unary_on[] = {AG_UNARY_TABLE(AG__UNARY_ON)};
#undef AG__UNARY_ON

#endif /* AG_UNARY_TABLE_H */
