#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef AG_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
// max; NaN sticks: once a is NaN neither test replaces it
#define RED_ARG 0
#define RED_IS_MAX 1
#define RED_KAHAN 0
#define RED_INIT (-RED_INF)
#define RED_OP(a, b) red_max(a, b)
float red_max(float a, float b) { return b > a || isnan(b) ? b : a; }
#include "reduce.glsl"
