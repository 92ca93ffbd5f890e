/* Instruction-set detection and the AG_CPU_ISA override, decided once.
 *
 * Portable code: no -m flags. On x86-64 a feature counts only when cpuid
 * reports it AND the OS saves the register state (xgetbv), otherwise the first
 * wide instruction faults even though the CPU has it. On aarch64 Linux the
 * kernel's HWCAP says whether Advanced SIMD is there (the architecture makes
 * it mandatory, but a kernel may still disable it). */
#include "cpu_isa.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ISA kernels exist in x86-64 and aarch64 builds; elsewhere only the portable ones */
#if defined(__x86_64__)
#include <cpuid.h>
#define CPU_X86 1
#define CPU_BUILD_ARCH "x86-64"
#elif defined(__aarch64__)
#define CPU_BUILD_ARCH "aarch64"
#ifdef __linux__
#include <sys/auxv.h>
#endif
#else
#define CPU_BUILD_ARCH NULL /* the portable kernels only */
#endif

static const char *const isa_names[CPU_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};
/* the architecture each instruction set belongs to (NULL: any) */
static const char *const isa_arch[CPU_ISA_COUNT] = {NULL, "x86-64", "x86-64", "aarch64"};

const char *cpu_isa_name(cpu_isa_level isa)
{
    return (unsigned)isa < CPU_ISA_COUNT ? isa_names[isa] : "?";
}

#ifdef CPU_X86
/* xgetbv by its encoding: needs no -mxsave. */
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect_x86(bool have[CPU_ISA_COUNT])
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(1, 0, &a, &b, &c, &d)) return;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28);
    if (!osxsave || !avx) return;
    const uint64_t xcr0 = xgetbv0();
    const bool os_ymm = (xcr0 & 0x6) == 0x6;     /* SSE and AVX state */
    const bool os_zmm = (xcr0 & 0xe6) == 0xe6;   /* + opmask, ZMM0-15 high, ZMM16-31 */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    const bool avx2 = b & (1u << 5), avx512f = b & (1u << 16);
    have[CPU_ISA_AVX2] = os_ymm && avx2 && fma;
    have[CPU_ISA_AVX512] = have[CPU_ISA_AVX2] && os_zmm && avx512f;
}
#endif

/* ---- the decision, taken once ---------------------------------------------- */

static struct {
    pthread_once_t once;
    cpu_isa_level level;
    char error[256]; /* non-empty: AG_CPU_ISA asked for something unusable */
} isa_state = {PTHREAD_ONCE_INIT, CPU_ISA_SCALAR, ""};

static void supported_list(const bool have[CPU_ISA_COUNT], char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < CPU_ISA_COUNT && len < cap; i++)
        if (have[i])
            len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "", isa_names[i]);
}

static void isa_init(void)
{
    bool have[CPU_ISA_COUNT] = {[CPU_ISA_SCALAR] = true};
#ifdef CPU_X86
    detect_x86(have);
#elif defined(__aarch64__)
    /* Advanced SIMD is mandatory in AArch64; HWCAP confirms it where available */
#if defined(__linux__) && defined(HWCAP_ASIMD)
    have[CPU_ISA_NEON] = (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
#else
    have[CPU_ISA_NEON] = true;
#endif
#endif
    cpu_isa_level best = CPU_ISA_SCALAR;
    for (int i = 0; i < CPU_ISA_COUNT; i++)
        if (have[i]) best = (cpu_isa_level)i; /* the enum is ordered by preference */
    isa_state.level = best;

    const char *want = getenv("AG_CPU_ISA");
    if (!want || !*want) return;
    static const char *const long_names[CPU_ISA_COUNT] = {
        "portable C", "AVX2 and FMA", "AVX-512F", "Advanced SIMD (NEON)"};
    char list[96];
    supported_list(have, list, sizeof list);
    for (int i = 0; i < CPU_ISA_COUNT; i++) {
        if (strcmp(want, isa_names[i]) != 0) continue;
        const char *build = CPU_BUILD_ARCH;
        if (have[i]) {
            isa_state.level = (cpu_isa_level)i;
        } else if (isa_arch[i] && (!build || strcmp(isa_arch[i], build) != 0)) {
            /* not this CPU's fault: the build has no such kernels */
            snprintf(isa_state.error, sizeof isa_state.error,
                     "AG_CPU_ISA=%s: %s kernels exist only in %s builds of anygrad; this one "
                     "is for %s (supported: %s)",
                     want, long_names[i], isa_arch[i], build ? build : "another architecture",
                     list);
        } else {
            snprintf(isa_state.error, sizeof isa_state.error,
                     "AG_CPU_ISA=%s: this CPU/OS does not support %s (supported: %s)", want,
                     long_names[i], list);
        }
        return;
    }
    snprintf(isa_state.error, sizeof isa_state.error,
             "AG_CPU_ISA=%.40s: unknown instruction set (expected one of scalar, avx2, avx512, "
             "neon; supported here: %s)",
             want, list);
}

cpu_isa_level cpu_isa(void)
{
    pthread_once(&isa_state.once, isa_init);
    return isa_state.level;
}

const char *cpu_isa_error(void)
{
    pthread_once(&isa_state.once, isa_init);
    return isa_state.error[0] ? isa_state.error : NULL;
}
