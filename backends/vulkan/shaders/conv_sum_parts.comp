#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "conv.glsl"
// dw = the split-reduction partials [parts][numel] summed in order.

layout(std430, binding = 1) writeonly buffer DW { float dw[]; };
layout(std430, binding = 2) readonly buffer Part { float part[]; };

void main()
{
    int numel = P.numel, parts = P.parts, dwo = P.out_off, po = P.a_off;
    AG_FOR(i, numel) {
        float s = 0.0;
        for (int k = 0; k < parts; k++) s += part[po + k * numel + i];
        dw[dwo + i] = s;
    }
}
