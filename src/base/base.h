/* The base layer (docs/architecture.md): what every other layer may call. Errors as
 * values, fault injection, the Philox reference and dtype names; no calls upward. */
#ifndef AG_BASE_H
#define AG_BASE_H
#include <stdbool.h>
#include <stdint.h>
#include "anygrad.h"

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
