/* Counter-based random numbers: Philox-4x32-10 with the mapping of backend.h,
 * bit-compatible with src/base/philox.c. Contraction is off so that a + span * u
 * rounds as the CPU's does (the uniform values are identical). */
#pragma OPENCL FP_CONTRACT OFF

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#include "rand_normal.h"

/* Key (k0, k1), counter (block, 0, s0, s1): blocks stay below 2^31 because
 * every tensor has fewer than 2^31 elements. */
inline uint4 philox_block(uint k0, uint k1, uint s0, uint s1, int block)
{
    uint4 c = (uint4)((uint)block, 0u, s0, s1);
    for (int r = 0; r < 10; r++) {
        uint lo0 = PHILOX_M0 * c.x, hi0 = mul_hi(PHILOX_M0, c.x);
        uint lo1 = PHILOX_M1 * c.z, hi1 = mul_hi(PHILOX_M1, c.z);
        c = (uint4)(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    return c;
}

inline uint word4(uint4 w, int k) { return k == 0 ? w.x : k == 1 ? w.y : k == 2 ? w.z : w.w; }

/* [0, 1) from the top 24 bits */
inline float u01(uint w) { return (float)(w >> 8) * 0x1p-24f; }

/* One work-item per Philox block: 4 uniform or 2 normal values. */
kernel void rand_fill(int normal, int n, int yo, uint k0, uint k1, uint s0, uint s1, float a,
                      float b, global float *y)
{
    int per = normal ? 2 : 4;
    int nblocks = n / per + (n % per != 0);
    AG_FOR(blk, nblocks) {
        uint4 w = philox_block(k0, k1, s0, s1, blk);
        int i0 = blk * per;
        if (normal) {
            /* Box-Muller, cosine branch only (rand_normal.h) */
            for (int k = 0; k < 2 && i0 + k < n; k++) {
                float z = rn_normal(word4(w, 2 * k), word4(w, 2 * k + 1));
                y[yo + i0 + k] = a + b * z;
            }
        } else {
            /* a is the low end, b the span */
            for (int k = 0; k < 4 && i0 + k < n; k++) y[yo + i0 + k] = a + b * u01(word4(w, k));
        }
    }
}

kernel void dropout_fw(int n, int yo, int mo, int xo, int has_mask, uint k0, uint k1, uint s0,
                       uint s1, float p, float scale, global float *y, global float *mask,
                       global const float *x)
{
    int nblocks = n / 4 + (n % 4 != 0);
    AG_FOR(blk, nblocks) {
        uint4 w = philox_block(k0, k1, s0, s1, blk);
        int i0 = blk * 4;
        for (int k = 0; k < 4 && i0 + k < n; k++) {
            float m = u01(word4(w, k)) >= p ? scale : 0.0f;
            if (has_mask) mask[mo + i0 + k] = m;
            y[yo + i0 + k] = x[xo + i0 + k] * m;
        }
    }
}
