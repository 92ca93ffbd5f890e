/* Fault injection (ag_debug_fault, AG_FAULT=point:n): the n-th event of a kind
 * fails, so tests reach the error paths of allocation, upload, kernel builds,
 * launches and file writes. Below the backends and the core, which both ask. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

static _Atomic int64_t fault_events[AG_FAULT_COUNT], fault_at[AG_FAULT_COUNT];
static pthread_once_t fault_env_once = PTHREAD_ONCE_INIT;

const char *ag_fault_name(ag_fault_point point)
{
    static const char *const names[AG_FAULT_COUNT] = {"alloc", "upload", "build", "launch", "write"};
    return (unsigned)point < AG_FAULT_COUNT ? names[point] : "?";
}

static void fault_from_env(void)
{
    const char *e = getenv("AG_FAULT");
    if (!e || !*e) return;
    for (int p = 0; p < AG_FAULT_COUNT; p++) {
        size_t len = strlen(ag_fault_name((ag_fault_point)p));
        if (strncmp(e, ag_fault_name((ag_fault_point)p), len) == 0 && e[len] == ':') {
            long long n = atoll(e + len + 1);
            if (n > 0) atomic_store(&fault_at[p], n);
        }
    }
}

ag_status ag_debug_fault(ag_fault_point point, int64_t n)
{
    pthread_once(&fault_env_once, fault_from_env);
    if ((unsigned)point >= AG_FAULT_COUNT || n < 0)
        return ag_set_error(AG_ERR_ARG, "ag_debug_fault: bad point %d or count %lld", (int)point, (long long)n);
    atomic_store(&fault_events[point], 0);
    atomic_store(&fault_at[point], n);
    return AG_OK;
}

int64_t ag_debug_fault_events(ag_fault_point point)
{
    return (unsigned)point < AG_FAULT_COUNT ? atomic_load(&fault_events[point]) : -1;
}

bool ag_fault_hit(ag_fault_point point)
{
    pthread_once(&fault_env_once, fault_from_env);
    int64_t k = atomic_fetch_add(&fault_events[point], 1) + 1;
    int64_t at = atomic_load(&fault_at[point]);
    if (at <= 0 || k != at) return false;
    atomic_store(&fault_at[point], 0); /* once */
    return true;
}
