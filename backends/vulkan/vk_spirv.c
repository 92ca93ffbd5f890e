/* SPIR-V patching at pipeline creation. glslc cannot declare float controls
 * from GLSL, so where the device offers them (vk_ctx.float_preserve) every
 * module gets OpCapability SignedZeroInfNanPreserve, OpExtension
 * "SPV_KHR_float_controls" and OpExecutionMode SignedZeroInfNanPreserve 32 on
 * its entry point: the driver may then not fold isnan(x) to false or x * 0 to
 * 0, which the NaN and inf rules of every op rely on. */
#include <stdlib.h>
#include <string.h>

#include "vk.h"

enum {
    SPV_MAGIC = 0x07230203u,
    OP_EXTENSION = 10,
    OP_ENTRY_POINT = 15,
    OP_EXECUTION_MODE = 16,
    OP_CAPABILITY = 17,
    OP_EXT_INST_IMPORT = 11,
    CAP_GROUP_NON_UNIFORM = 61, /* ... GroupNonUniformQuad = 68 */
    CAP_GROUP_NON_UNIFORM_QUAD = 68,
    CAP_PRESERVE = 4466,
    MODE_PRESERVE = 4461,
};

static const char EXT_NAME[] = "SPV_KHR_float_controls";
#define EXT_WORDS ((sizeof EXT_NAME + 3) / 4) /* the name, NUL-terminated, padded */

bool vk_spirv_uses_subgroups(const uint32_t *code, size_t n)
{
    if (n < 5 || code[0] != SPV_MAGIC) return false;
    for (size_t i = 5; i < n;) {
        const uint32_t wc = code[i] >> 16, op = code[i] & 0xffffu;
        if (wc == 0 || wc > n - i) return false;
        if (op == OP_CAPABILITY && wc == 2 && code[i + 1] >= CAP_GROUP_NON_UNIFORM &&
            code[i + 1] <= CAP_GROUP_NON_UNIFORM_QUAD)
            return true;
        if (op != OP_CAPABILITY && op != OP_EXTENSION && op != OP_EXT_INST_IMPORT) break; /* past the capabilities */
        i += wc;
    }
    return false;
}

uint32_t *vk_spirv_preserve(const uint32_t *code, size_t n, size_t *out_n)
{
    if (n < 5 || code[0] != SPV_MAGIC) return NULL;
    size_t cap_end = 5, ep_end = 0;
    uint32_t ep_id = 0;
    for (size_t i = 5; i < n;) {
        const uint32_t wc = code[i] >> 16, op = code[i] & 0xffffu;
        if (wc == 0 || wc > n - i) return NULL; /* malformed: leave it to the driver */
        if (op == OP_CAPABILITY && wc == 2) {
            if (code[i + 1] == CAP_PRESERVE) return NULL; /* declared already */
            cap_end = i + wc;
        } else if (op == OP_ENTRY_POINT && wc >= 3) {
            if (ep_id) return NULL; /* one entry point, as glslc writes */
            ep_id = code[i + 2];
            ep_end = i + wc;
        }
        i += wc;
    }
    if (!ep_id) return NULL;
    const size_t add = 2 + (1 + EXT_WORDS) + 4;
    uint32_t *out = malloc((n + add) * sizeof *out);
    if (!out) return NULL;
    size_t o = 0;
    memcpy(out, code, cap_end * sizeof *out);
    o = cap_end;
    out[o++] = (2u << 16) | OP_CAPABILITY;
    out[o++] = CAP_PRESERVE;
    out[o++] = (uint32_t)(1 + EXT_WORDS) << 16 | OP_EXTENSION;
    memset(out + o, 0, EXT_WORDS * sizeof *out);
    for (size_t k = 0; k < sizeof EXT_NAME; k++) /* literal strings: bytes low first */
        out[o + k / 4] |= (uint32_t)(unsigned char)EXT_NAME[k] << (8 * (k % 4));
    o += EXT_WORDS;
    memcpy(out + o, code + cap_end, (ep_end - cap_end) * sizeof *out);
    o += ep_end - cap_end;
    out[o++] = (4u << 16) | OP_EXECUTION_MODE;
    out[o++] = ep_id;
    out[o++] = MODE_PRESERVE;
    out[o++] = 32; /* f32 */
    memcpy(out + o, code + ep_end, (n - ep_end) * sizeof *out);
    o += n - ep_end;
    *out_n = o;
    return out;
}
