/* Shared by every program (prepended at build time). OpenCL C 1.2, no
 * extensions, no doubles. Views arrive as a shape plus per-operand strides in
 * elements, laid out exactly as ag_shape32 / ag_strides32 in ocl.h. */

typedef struct { int nd, numel, pad0, pad1; int n[8]; } ag_shape;
typedef struct { int off, pad0, pad1, pad2; int s[8]; } ag_strides;

/* Kernels copy their by-value struct arguments (shapes, strides, parameter
 * blocks) into private variables first and use only the copies: mesa's rusticl
 * crashes when a kernel reads a struct argument inside a loop or takes its
 * address. The helpers below take structs by value for the same reason. */

/* Row-major coordinates of linear index i. */
inline void ag_coords(ag_shape sh, int i, int *c)
{
    for (int d = sh.nd - 1; d >= 0; d--) {
        int n = sh.n[d];
        c[d] = i % n;
        i /= n;
    }
}

inline int ag_dot(ag_strides st, const int *c, int nd)
{
    int o = st.off;
    for (int d = 0; d < nd; d++) o += c[d] * st.s[d];
    return o;
}

/* Grid-stride loop over [0, n). */
#define AG_FOR(i, n) for (int i = (int)get_global_id(0); i < (n); i += (int)get_global_size(0))

/* exp of a non-positive argument never overflows */
inline float ag_sigmoid(float x)
{
    if (x >= 0.0f) return 1.0f / (1.0f + exp(-x));
    float e = exp(x);
    return e / (1.0f + e);
}
