#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef AG_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
// sum and mean, Kahan-compensated per item, then a tree
#define RED_ARG 0
#define RED_IS_MAX 0
#define RED_KAHAN 1
#define RED_INIT 0.0
#define RED_OP(a, b) ((a) + (b))
#include "reduce.glsl"
