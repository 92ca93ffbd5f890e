#version 450
#extension GL_GOOGLE_include_directive : require
// Tiled SGEMM with scalar loads and stores (any sizes): see gemm_tiled.glsl.
#define GEMM_VEC4 0
#include "gemm_tiled.glsl"
