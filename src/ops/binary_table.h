/* The binary op table: one row per ag_binary_op (NumPy broadcasting), the single
 * source of the public enum and wrappers (include/anygrad.h's generated region,
 * scripts/gen_ops.py), the front end's names and which ops record a gradient
 * (src/ops/ops_elementwise.c, whose binary_bwd holds the rules), each backend's
 * dispatch (the CPU row and vector tables; OpenCL C and GLSL opcodes and switch,
 * generated at build time), which backends implement the op, and the fp64
 * reference, conformance and element-wise test rows. Each backend writes the
 * formula b_<name>(a, b).
 *
 * X(ENUM, name, "doc", grad, on, dist, "tol", ref)
 *   ENUM   AG_BINARY_<ENUM>; rows are numbered in order (ABI: append only)
 *   name   ag_<name>() and the op's name in messages and kernels
 *   doc    the enum's comment in anygrad.h
 *   grad   1: differentiable (a rule in binary_bwd); 0: a comparison, f32 0/1,
 *          no gradient
 *   on     backends with a kernel (AG_ON_*); elsewhere the op fails clearly
 *   dist   the conformance row's input domain (OT_D_<dist>)
 *   tol    its tolerance class (conformance/harness.c)
 *   ref    the fp64 reference, an expression of double a, b (conformance/ref.c) */
#ifndef AG_BINARY_TABLE_H
#define AG_BINARY_TABLE_H
#include "ops/table_common.h"

#define AG_BINARY_TABLE(X)                                                                         \
    X(ADD, add, "a + b", 1, AG_ON_ALL, NORMAL, "arith", a + b)                                      \
    X(SUB, sub, "a - b", 1, AG_ON_ALL, NORMAL, "arith", a - b)                                      \
    X(MUL, mul, "a * b", 1, AG_ON_ALL, NORMAL, "arith", a * b)                                      \
    X(DIV, div, "a / b", 1, AG_ON_ALL, AWAY0, "arith", a / b)                                       \
    X(MAXIMUM, maximum, "NaN wins, as torch.maximum", 1, AG_ON_ALL, NORMAL, "exact",                \
      (isnan(a) || isnan(b)) ? NAN : (a > b ? a : b))                                              \
    X(MINIMUM, minimum, "NaN wins, as torch.minimum", 1, AG_ON_ALL, NORMAL, "exact",                \
      (isnan(a) || isnan(b)) ? NAN : (a < b ? a : b))                                              \
    X(EQ, eq, "a == b", 0, AG_ON_ALL, MASK, "exact", a == b)                                        \
    X(NE, ne, "a != b", 0, AG_ON_ALL, MASK, "exact", a != b)                                        \
    X(LT, lt, "a < b", 0, AG_ON_ALL, NORMAL, "exact", a < b)                                        \
    X(LE, le, "a <= b", 0, AG_ON_ALL, MASK, "exact", a <= b)                                        \
    X(GT, gt, "a > b", 0, AG_ON_ALL, NORMAL, "exact", a > b)                                        \
    X(GE, ge, "a >= b", 0, AG_ON_ALL, MASK, "exact", a >= b)

/* Which backends implement each op (the `on` column). */
#define AG__BINARY_ON(E, name, doc, grad, on, ...) [AG_BINARY_##E] = (on),
static const unsigned ag_binary_on[] = {AG_BINARY_TABLE(AG__BINARY_ON)};
#undef AG__BINARY_ON

#endif /* AG_BINARY_TABLE_H */
