/* How many threads the CPU kernels use, and why not always every core.
 *
 * The kernels' parallel regions end in a barrier. On a machine whose cores are
 * busy with other processes, a thread of the team is often descheduled, and
 * every region then waits a scheduler time slice (milliseconds) for it: an MLP
 * epoch took 13-130x longer with two threads than with one beside a few
 * CPU-bound processes. So unless AG_NUM_THREADS fixes the count, the team is
 * every core the process may run on less the cores other work keeps busy right
 * now, sampled at most every CPU_SAMPLE_NS by whichever thread asks and
 * smoothed over about four samples. "Other work" is the CPU time those cores
 * spent busy (/proc/stat, steal included) less this process's own, plus this
 * process's runnable threads beyond the team (an application's own busy
 * threads). Counting runnable tasks instead (/proc/loadavg) misjudged machines
 * whose count includes tasks that hardly run: a virtual machine reporting 3
 * runnable on 2 idle cores kept the team at one thread, a CNN epoch 1.5x
 * slower. With one core's worth of other work on two cores the team is one
 * thread, which is never slower than two (bench/contention.sh). Without /proc
 * (not Linux) the count stays fixed at every core.
 *
 * No thread count may change a result, or results would depend on the
 * machine's load or on AG_NUM_THREADS: wherever a sum is split (partial sums
 * of a reduction, of a weight gradient, of layer norm's parameter gradients)
 * the number of parts follows the sizes alone, and the team (cpu_threads())
 * only decides who computes them. cpu_plan_threads() - AG_NUM_THREADS or every
 * core - sizes work shares whose boundaries change no value (row blocks,
 * batch chunks). */
#define _GNU_SOURCE /* sched_getaffinity */
#include "cpu.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirent.h>
#include <sched.h>
#include <unistd.h>

/* Above this AG_NUM_THREADS is treated as a typo rather than a request. */
#define CPU_MAX_THREADS 1024
/* at most one sample of the machine's load this often (/proc/stat counts in
 * clock ticks, 10 ms: a shorter window would be mostly rounding) */
#define CPU_SAMPLE_NS 40000000LL
/* the smoothed load in 1/256ths of a core; each sample moves it a quarter of
 * the way (a time constant of about four samples) */
#define LOAD_ONE 256

static _Atomic long long next_sample;   /* monotonic ns; 0: never sampled */
static _Atomic int others_256 = 0;      /* cores other work keeps busy, smoothed, x 256 */
/* the previous sample: wall clock (ns), the cores' busy clock ticks, this
 * process's CPU time (ns) */
static _Atomic long long prev_wall, prev_busy, prev_own;
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

bool cpu_parse_stat_cpu(const char *line, int *cpu, long long *busy)
{
    /* "cpu3 4705 356 584 3699 23 23 0 0 ...": user nice system idle iowait irq
     * softirq steal (guest time is inside user); busy is all but idle and iowait */
    if (!line || strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9') return false;
    long long v[8] = {0};
    int k = sscanf(line + 3, "%d %lld %lld %lld %lld %lld %lld %lld %lld", cpu, &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]);
    if (k < 5 || *cpu < 0) return false;
    for (int i = 0; i < 8; i++)
        if (v[i] < 0) return false;
    *busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return true;
}

/* Busy clock ticks of the cores this process may run on (the main thread's
 * mask: a worker's may be one core), and how many of this process's threads
 * are runnable now. */
static bool sample_busy(long long *busy_ticks, int *own_running)
{
    cpu_set_t mine;
    bool have_mask = sched_getaffinity(getpid(), sizeof mine, &mine) == 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return false;
    char line[512];
    long long ticks = 0;
    bool any = false;
    while (fgets(line, sizeof line, f)) {
        int cpu;
        long long b;
        if (!cpu_parse_stat_cpu(line, &cpu, &b)) continue;
        if (have_mask && (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &mine))) continue;
        ticks += b;
        any = true;
    }
    fclose(f);
    if (!any) return false;
    *busy_ticks = ticks;
    DIR *d = opendir("/proc/self/task");
    if (!d) return false;
    *own_running = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
        FILE *t = fopen(path, "r");
        if (!t) continue;
        size_t m = fread(line, 1, sizeof line - 1, t);
        fclose(t);
        line[m] = '\0';
        /* "tid (name) S ...": the state follows the last ')' (a name may hold one) */
        const char *close = strrchr(line, ')');
        if (close && close[1] == ' ' && close[2] == 'R') (*own_running)++;
    }
    closedir(d);
    return true;
}

static long long clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* the coarse clock where there is one: a check per call must be cheap */
static long long now_ns(void)
{
#ifdef CLOCK_MONOTONIC_COARSE
    return clock_ns(CLOCK_MONOTONIC_COARSE);
#else
    return clock_ns(CLOCK_MONOTONIC);
#endif
}

static void maybe_sample(void)
{
    long long now = now_ns(), due = atomic_load_explicit(&next_sample, memory_order_relaxed);
    if (now < due) return;
    /* no file reads inside a parallel region: the team would wait at its barrier */
    if (cpu_team_size() > 1) return;
    /* one thread samples a period; the others go on with the last estimate */
    if (!atomic_compare_exchange_strong(&next_sample, &due, now + CPU_SAMPLE_NS)) return;
    /* and a slow sample (a loaded machine) never overlaps the next */
    static atomic_flag sampling = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&sampling)) return;
    const long hz = sysconf(_SC_CLK_TCK);
    long long busy, wall = clock_ns(CLOCK_MONOTONIC), own = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    int running;
    if (hz <= 0 || !sample_busy(&busy, &running)) {
        atomic_store(&adapt_state, 0);
        atomic_flag_clear(&sampling);
        return;
    }
    atomic_store(&adapt_state, 1);
    long long w0 = atomic_exchange(&prev_wall, wall), b0 = atomic_exchange(&prev_busy, busy),
              o0 = atomic_exchange(&prev_own, own);
    if (w0 != 0 && wall > w0) { /* the first sample only sets the baseline */
        /* cores busy with other processes over the window, and this process's
         * runnable threads beyond the team (the team's own, spinning between
         * regions, are not competition) */
        double others = ((double)(busy - b0) * (1e9 / (double)hz) - (double)(own - o0)) /
                        (double)(wall - w0);
        int team = atomic_load_explicit(&last_team, memory_order_relaxed);
        if (running > team) others += running - team;
        if (others < 0) others = 0;
        if (others > CPU_MAX_THREADS) others = CPU_MAX_THREADS;
        int cur = atomic_load_explicit(&others_256, memory_order_relaxed);
        int target = (int)(others * LOAD_ONE + 0.5);
        atomic_store_explicit(&others_256, cur + (target - cur) / 4, memory_order_relaxed);
    }
    atomic_flag_clear(&sampling);
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

void cpu_run_parts(int nt, int64_t n, cpu_parts_fn fn, void *arg)
{
    if (nt > n) nt = n > 0 ? (int)n : 1;
    if (nt <= 1) {
        fn(arg, 0, n);
        return;
    }
    OMP(omp parallel for schedule(static) num_threads(nt))
    for (int t = 0; t < nt; t++) fn(arg, n * t / nt, n * (t + 1) / nt);
}
