// Counter-based random numbers: Philox-4x32-10 with the mapping of
// backends/backend.h, bit-compatible with src/base/philox.c, and the float maps
// the CPU backend applies to its words.

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

// Key (k0, k1), counter (block, 0, s0, s1): blocks stay below 2^31 because
// every tensor has fewer than 2^31 elements.
uvec4 philox_block(uint k0, uint k1, uint s0, uint s1, int block)
{
    uvec4 c = uvec4(uint(block), 0u, s0, s1);
    for (int r = 0; r < 10; r++) {
        uint hi0, lo0, hi1, lo1;
        umulExtended(PHILOX_M0, c.x, hi0, lo0);
        umulExtended(PHILOX_M1, c.z, hi1, lo1);
        c = uvec4(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    return c;
}

// [0, 1) from the top 24 bits, and (0, 1] for the logarithm (both exact)
float u01(uint w) { return float(w >> 8) * (1.0 / 16777216.0); }
float u01_open(uint w) { return float((w >> 8) + 1u) * (1.0 / 16777216.0); }

// cos(x) for 0 <= x <= 8 to about 1 ulp: GLSL's cos has a driver-defined
// error. x - k pi/2 with pi/2 split in three (12-bit leading parts, so k p
// is exact and x - k p1 cancels exactly), then the minimax polynomials of
// sin and cos on [-pi/4, pi/4] (the Cephes single-precision coefficients).
float ag_cos_small(float x)
{
    int k = int(floor(x * 0.636619772367581343 + 0.5));
    precise float fk = float(k);
    precise float r = ((x - fk * 1.57080078125) - fk * -4.453584551811218e-06) -
                      fk * -8.705516307827565e-10;
    precise float z = r * r;
    precise float c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z +
                       4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
    precise float s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
    switch (k & 3) {
    case 0: return c;
    case 1: return -s;
    case 2: return -c;
    }
    return s;
}
