// Counter-based random numbers: Philox-4x32-10 with the mapping of
// backends/backend.h, bit-compatible with src/base/philox.c, and the float maps
// the CPU backend applies to its words.

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

// Key (k0, k1), counter (block lo, block hi, s0, s1).
uvec4 philox_block64(uint k0, uint k1, uint s0, uint s1, uint lo, uint hi)
{
    uvec4 c = uvec4(lo, hi, s0, s1);
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

// Blocks below 2^31: every tensor has fewer than 2^31 elements.
uvec4 philox_block(uint k0, uint k1, uint s0, uint s1, int block)
{
    return philox_block64(k0, k1, s0, s1, uint(block), 0u);
}

// [0, 1) from the top 24 bits (exact)
float u01(uint w) { return float(w >> 8) * (1.0 / 16777216.0); }
