/* ISA dispatch internals beyond cpu.h's cpu_isa()/cpu_isa_name(). */
#ifndef AG_CPU_ISA_H
#define AG_CPU_ISA_H

#include "cpu.h"

/* Why AG_CPU_ISA cannot be honoured (an ISA this CPU/OS lacks, one of another
 * architecture, or an unknown name), or NULL when it is unset or fine.
 * cpu_isa() then returns the best supported level; ag_cpu_backend_create
 * refuses to start with this message. */
const char *cpu_isa_error(void);

#endif /* AG_CPU_ISA_H */
