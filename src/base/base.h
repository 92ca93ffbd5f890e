/* The base layer (docs/architecture.md): what every other layer may call. Errors as
 * values, fault injection, the Philox reference and dtype names; no calls upward. */
#ifndef AG_BASE_H
#define AG_BASE_H
#include <stdbool.h>
#include <stdint.h>
#include "anygrad.h"

/* A shared library reaches its thread-local variables through __tls_get_addr,
 * and GCC recomputes such an address after every call rather than keep it in a
 * register: ag_scope_end called it 7 times an op. Passing the address through
 * an empty asm makes it an ordinary pointer the compiler must keep. */
#if defined(__GNUC__)
#define AG_TLS_ONCE(p) __asm__("" : "+r"(p))
#else
#define AG_TLS_ONCE(p) ((void)0)
#endif

/* Sets the calling thread's error (ag_last_error) and returns s (error.c). */
ag_status ag_set_error(ag_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Fault injection (fault.c, ag_debug_fault): true when this event is the one armed to
 * fail; the caller then fails it with an error naming the point. */
bool ag_fault_hit(ag_fault_point point);
const char *ag_fault_name(ag_fault_point point);

/* Philox-4x32-10 block (philox.c): the reference every backend's RNG must match. */
void ag_philox4x32(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]);

#endif
