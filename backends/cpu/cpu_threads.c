/* How many threads the CPU kernels use, and why not always every core.
 *
 * The kernels' parallel regions end in a barrier. On a machine whose cores are
 * busy with other processes, a thread of the team is often descheduled, and
 * every region then waits a scheduler time slice (milliseconds) for it: an MLP
 * epoch took 13-130x longer with two threads than with one beside a few
 * CPU-bound processes. So unless AG_NUM_THREADS fixes the count, the team is
 * every core the process may run on less the cores other work keeps busy right
 * now: the kernel's count of runnable tasks (/proc/loadavg), less this
 * process's own runnable team, smoothed over about 100 ms and sampled at most
 * every CPU_SAMPLE_NS by whichever thread asks. With one core's worth of other
 * work on two cores that is one thread, which is never slower than the team
 * (measured by bench/contention.sh). Without /proc (not Linux) the count stays
 * fixed at every core.
 *
 * No thread count may change a result, or results would depend on the
 * machine's load or on AG_NUM_THREADS: wherever a sum is split (partial sums
 * of a reduction, of a weight gradient, of layer norm's parameter gradients)
 * the number of parts follows the sizes alone, and the team (cpu_threads())
 * only decides who computes them. cpu_plan_threads() - AG_NUM_THREADS or every
 * core - sizes work shares whose boundaries change no value (row blocks,
 * batch chunks). */
#include "cpu.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirent.h>

/* Above this AG_NUM_THREADS is treated as a typo rather than a request. */
#define CPU_MAX_THREADS 1024
/* at most one sample of the machine's load this often */
#define CPU_SAMPLE_NS 20000000LL
/* the smoothed load in 1/256ths of a task; each sample moves it a quarter of
 * the way (a time constant of about four samples) */
#define LOAD_ONE 256

static _Atomic long long next_sample;   /* monotonic ns; 0: never sampled */
static _Atomic int others_256 = 0;      /* other runnable tasks, smoothed, x 256 */
static _Atomic int last_team = 1;       /* the team size last handed out */
static _Atomic int adapt_state = -1;    /* -1 unknown, 0 off (no /proc), 1 on */
static _Atomic int forced = 0;          /* cpu_threads_force's team; 0: none */

int cpu_threads_fixed(void)
{
    const char *s = getenv("AG_NUM_THREADS");
    if (s && *s) {
        char *end = NULL;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno == 0 && *end == '\0' && v > 0 && v <= CPU_MAX_THREADS) return (int)v;
    }
    return 0;
}

int cpu_cores(void)
{
#ifdef _OPENMP
    /* the cores this process may run on (its affinity mask) */
    int n = omp_get_num_procs();
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

int cpu_threads_choose(int cores, int others_256_value)
{
    /* round to the nearest whole task: a stray short-lived task (a shell, a
     * daemon waking up) moves the average by a quarter and changes nothing */
    int others = (others_256_value + LOAD_ONE / 2) / LOAD_ONE;
    int n = cores - others;
    return n < 1 ? 1 : n > cores ? cores : n;
}

bool cpu_parse_loadavg(const char *text, int *running)
{
    /* "0.52 0.58 0.59 3/251 12345": the fourth field's numerator */
    double a, b, c;
    int r, t;
    if (!text || sscanf(text, "%lf %lf %lf %d/%d", &a, &b, &c, &r, &t) != 5 || r < 0) return false;
    *running = r;
    return true;
}

/* Runnable tasks on the machine, and how many of them are this process's. */
static bool sample_running(int *total, int *own)
{
    char buf[256];
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (!cpu_parse_loadavg(buf, total)) return false;
    DIR *d = opendir("/proc/self/task");
    if (!d) return false;
    *own = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
        FILE *t = fopen(path, "r");
        if (!t) continue;
        size_t m = fread(buf, 1, sizeof buf - 1, t);
        fclose(t);
        buf[m] = '\0';
        /* "tid (name) S ...": the state follows the last ')' (a name may hold one) */
        const char *close = strrchr(buf, ')');
        if (close && close[1] == ' ' && close[2] == 'R') (*own)++;
    }
    closedir(d);
    return true;
}

static long long now_ns(void)
{
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void maybe_sample(void)
{
    long long now = now_ns(), due = atomic_load_explicit(&next_sample, memory_order_relaxed);
    if (now < due) return;
    /* one thread samples a period; the others go on with the last estimate */
    if (!atomic_compare_exchange_strong(&next_sample, &due, now + CPU_SAMPLE_NS)) return;
    int total, own;
    if (!sample_running(&total, &own)) {
        atomic_store(&adapt_state, 0);
        return;
    }
    atomic_store(&adapt_state, 1);
    /* The team's own threads (spinning between regions) are not competition;
     * this process's threads beyond the team (the application's own busy
     * threads) are. */
    int team = atomic_load_explicit(&last_team, memory_order_relaxed);
    int others = total - (own < team ? own : team);
    if (others < 0) others = 0;
    int cur = atomic_load_explicit(&others_256, memory_order_relaxed);
    atomic_store_explicit(&others_256, cur + (others * LOAD_ONE - cur) / 4, memory_order_relaxed);
}

int cpu_plan_threads(void)
{
    int fixed = cpu_threads_fixed();
    return fixed ? fixed : cpu_cores();
}

void cpu_threads_force(int n) { atomic_store(&forced, n > 0 ? n : 0); }

int cpu_threads(void)
{
    int f = atomic_load_explicit(&forced, memory_order_relaxed);
    if (f) return f;
    int fixed = cpu_threads_fixed();
    if (fixed) return fixed;
    int cores = cpu_cores();
    if (cores <= 1 || atomic_load_explicit(&adapt_state, memory_order_relaxed) == 0) return cores;
    maybe_sample();
    int n = cpu_threads_choose(cores, atomic_load_explicit(&others_256, memory_order_relaxed));
    atomic_store_explicit(&last_team, n, memory_order_relaxed);
    return n;
}

double cpu_threads_load(void)
{
    return (double)atomic_load_explicit(&others_256, memory_order_relaxed) / LOAD_ONE;
}
