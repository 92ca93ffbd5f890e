/* Placeholder until the ISA dispatch lands: always the portable kernels. */
#include "cpu.h"

cpu_isa_level cpu_isa(void) { return CPU_ISA_SCALAR; }

const char *cpu_isa_name(cpu_isa_level isa)
{
    static const char *const names[CPU_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};
    return (unsigned)isa < CPU_ISA_COUNT ? names[isa] : "?";
}
