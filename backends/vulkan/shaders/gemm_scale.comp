#version 450
#extension GL_GOOGLE_include_directive : require
// C = beta C (0 when beta == 0, whatever C held): the whole product when K == 0
// or alpha == 0. Grid-stride over batches * M * N.
#include "gemm.glsl"

layout(std430, binding = 1) buffer C { float c[]; };

void main()
{
    AG_FOR(i, P.total) {
        int col = i % P.n, t = i / P.n, row = t % P.m, batch = t / P.m;
        int idx = P.c_off + batch * P.c_bs + row * P.c_rs + col;
        c[idx] = P.beta == 0.0 ? 0.0 : P.beta * c[idx];
    }
}
