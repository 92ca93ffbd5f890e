#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef AG_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
// argmin; the rules of reduce_argmax.comp with the order reversed
#define RED_ARG 1
#define RED_IS_MAX 0
#define RED_KAHAN 0
#define RED_INIT RED_INF
#define RED_BETTER(av, ai, bv, bi) arg_better(av, ai, bv, bi)
bool arg_better(float av, int ai, float bv, int bi)
{
    if (isnan(av)) return isnan(bv) && bi < ai;
    if (isnan(bv)) return true;
    return bv < av || (bv == av && bi < ai);
}
#include "reduce.glsl"
