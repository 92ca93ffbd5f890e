#version 450
#extension GL_GOOGLE_include_directive : require
// Tiled SGEMM with 16-byte loads and stores (aligned operands): see gemm_tiled.glsl.
#define GEMM_VEC4 1
#include "gemm_tiled.glsl"
