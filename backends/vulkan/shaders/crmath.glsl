// Correctly rounded float division and square root. Vulkan lets a driver's
// a / b be 2.5 ulp off and sqrt inherit inversesqrt's error, and GPU drivers
// use that (software ones rarely do); the CPU backend's IEEE results need the
// exact ones. The hardware value is corrected by exact midpoint tests on the
// integer significands (umulExtended gives the 48-bit products), only for
// normal operands and results: elsewhere (zeros, infinities, NaN, subnormals,
// which a device may flush anyway) the hardware value stands.

// (hi, lo) 64-bit compare
bool cr_gt64(uvec2 a, uvec2 b) { return a.x > b.x || (a.x == b.x && a.y > b.y); }

// m << sh as (hi, lo), 0 < sh < 64
uvec2 cr_shl64(uint m, int sh)
{
    if (sh >= 32) return uvec2(m << (sh - 32), 0u);
    return uvec2(m >> (32 - sh), m << sh);
}

uint cr_sig(uint bits) { return (bits & 0x7FFFFFu) | 0x800000u; }
int cr_exp(uint bits) { return int(bits >> 23); } // biased; callers keep signs apart

// Is |a| / |b| above the midpoint between c and the next float up? (Normal
// positive bits throughout; the quotient is never exactly a midpoint.) With c
// a few ulp from the quotient the shift stays in [23, 26].
bool cr_div_above(uint a, uint b, uint c)
{
    uint hi, lo;
    umulExtended(2u * cr_sig(c) + 1u, cr_sig(b), hi, lo);
    int sh = cr_exp(a) - cr_exp(b) - cr_exp(c) + 151;
    return cr_gt64(cr_shl64(cr_sig(a), sh), uvec2(hi, lo));
}

float cr_div(float a, float b)
{
    float q = a / b;
    uint ua = floatBitsToUint(a) & 0x7FFFFFFFu, ub = floatBitsToUint(b) & 0x7FFFFFFFu;
    uint uq = floatBitsToUint(q), mq = uq & 0x7FFFFFFFu;
    int ea = cr_exp(ua), eb = cr_exp(ub), eq = cr_exp(mq);
    if (ea == 0 || ea == 255 || eb == 0 || eb == 255 || eq < 8 || eq > 246) return q;
    for (int k = 0; k < 6 && cr_div_above(ua, ub, mq); k++) mq++;
    for (int k = 0; k < 6 && !cr_div_above(ua, ub, mq - 1u); k++) mq--;
    return uintBitsToFloat((uq & 0x80000000u) | mq);
}

// Is sqrt(x) above the midpoint between c and the next float up? (A square
// of a 25-bit odd number is never 24 bits times a power of two: no ties.)
bool cr_sqrt_above(uint x, uint c)
{
    uint m = 2u * cr_sig(c) + 1u, hi, lo;
    umulExtended(m, m, hi, lo);
    int sh = cr_exp(x) - 2 * cr_exp(c) + 152;
    return cr_gt64(cr_shl64(cr_sig(x), sh), uvec2(hi, lo));
}

float cr_sqrt(float x)
{
    float s = sqrt(x);
    uint ux = floatBitsToUint(x), us = floatBitsToUint(s);
    int ex = cr_exp(ux), es = cr_exp(us);
    // negative, zero, subnormal, infinite, NaN: sqrt's own answer
    if (ux >= 0x80000000u || ex == 0 || ex == 255 || es == 0 || es == 255) return s;
    for (int k = 0; k < 8 && cr_sqrt_above(ux, us); k++) us++;
    for (int k = 0; k < 8 && !cr_sqrt_above(ux, us - 1u); k++) us--;
    return uintBitsToFloat(us);
}
