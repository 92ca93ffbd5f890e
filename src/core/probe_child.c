/* The GPU backends' probe, run in a child process. Opening a driver stack maps
 * tens of MB (LLVM for PoCL and lavapipe, every installed ICD) that dlclose
 * never gives back, and a broken driver can crash or hang inside its own
 * initialisation. The child makes the devices, sends their names and
 * properties back through a pipe and exits; the parent then opens only the
 * stack of a device it uses (src/core/device.c), and a driver that crashes
 * in the probe costs its backend, not the process. */
#define _GNU_SOURCE /* pipe2, NSIG, prctl's PR_SET_PDEATHSIG */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

/* A driver that takes longer than this to list its devices is treated as hung
 * (lavapipe under valgrind needs about 20 s); AG_PROBE_TIMEOUT=seconds. */
static int timeout_ms(void)
{
    const char *e = getenv("AG_PROBE_TIMEOUT");
    char *end;
    double s = e ? strtod(e, &end) : 0;
    return e && end != e && s > 0 && s < 86400 ? (int)(s * 1000) : 120000;
}

enum { REC_DEVICE, REC_REASON, REC_END };

typedef struct {
    int type;
    ag_probe_record r;
} message;

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        c += k;
        n -= (size_t)k;
    }
    return true;
}

/* A driver that calls exit() in the child: no stdio flush of the parent's
 * unwritten output, none of the parent's exit handlers (registered last, so
 * it runs first). No END record: the parent reports the early end. */
static void child_exit(void) { _exit(3); }

/* The child is the parent's copy: its signal handlers (a Ctrl-C flag, a crash
 * reporter) and blocked signals are the parent's business, and it must not
 * outlive a parent that dies. */
static void child_setup(pid_t parent)
{
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    if (getppid() != parent) _exit(3); /* the parent died before prctl */
    for (int s = 1; s < NSIG; s++) {
        struct sigaction old;
        if (sigaction(s, NULL, &old) == 0 && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
            struct sigaction dfl = {.sa_handler = SIG_DFL};
            sigemptyset(&dfl.sa_mask);
            sigaction(s, &dfl, NULL);
        }
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    atexit(child_exit);
    /* a driver that crashes here is reported; it leaves no core file behind */
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
}

static _Noreturn void child(int fd, ag_backend_create_fn create, int max)
{
    const ag_backend_i *iface = NULL;
    void *ctxs[AG_PROBE_MAX];
    ag_clear_error();
    int n = create(&iface, ctxs, max < AG_PROBE_MAX ? max : AG_PROBE_MAX);
    message m;
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        memset(&m, 0, sizeof m);
        m.type = REC_DEVICE;
        ag__probe_describe(iface, ctxs[i], &m.r);
        ok = write_all(fd, &m, sizeof m);
    }
    if (n <= 0) {
        memset(&m, 0, sizeof m);
        m.type = REC_REASON;
        snprintf(m.r.details, sizeof m.r.details, "%s", ag_last_status() ? ag_last_error() : "no device found");
        ok = ok && write_all(fd, &m, sizeof m);
    }
    memset(&m, 0, sizeof m);
    m.type = REC_END;
    if (ok) write_all(fd, &m, sizeof m);
    _exit(0); /* no atexit handlers, no stdio flush: they belong to the parent */
}

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads one whole message before the deadline: 1 read, 0 end of file, -1 timeout or error. */
static int read_message(int fd, message *m, int64_t deadline)
{
    char *c = (char *)m;
    size_t got = 0;
    while (got < sizeof *m) {
        int64_t left = deadline - ms_now();
        if (left <= 0) return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        ssize_t k = read(fd, c + got, sizeof *m - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) return got ? -1 : 0;
        got += (size_t)k;
    }
    return 1;
}

int ag__probe_in_child(const char *backend, ag_backend_create_fn create, ag_probe_record *out, int max,
                       char *why, size_t wsize)
{
    int fds[2];
    /* close-on-exec from the start: a program another thread starts must not
     * hold the write end (the parent would then wait for the timeout) */
#ifdef __linux__
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
#else
    if (pipe(fds) != 0) return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
#endif
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        child_setup(parent);
        child(fds[1], create, max);
    }
    close(fds[1]);
    int n = 0;
    bool ended = false, timed_out = false;
    snprintf(why, wsize, "no device found");
    const int limit = timeout_ms();
    const int64_t deadline = ms_now() + limit;
    message m;
    for (;;) {
        int r = read_message(fds[0], &m, deadline);
        if (r < 0) timed_out = ms_now() >= deadline;
        if (r <= 0) break;
        if (m.type == REC_END) {
            ended = true;
            break;
        }
        m.r.name[sizeof m.r.name - 1] = m.r.details[sizeof m.r.details - 1] = '\0';
        if (m.type == REC_REASON) snprintf(why, wsize, "%s", m.r.details);
        else if (m.type == REC_DEVICE && n < max) out[n++] = m.r;
    }
    close(fds[0]);
    if (!ended) kill(pid, SIGKILL);
    /* a child stuck in the kernel (a hung GPU ioctl) may not die at once: it
     * is waited for a moment, then left (it stays a zombie until it dies) */
    int st = 0;
    pid_t w = 0;
    for (int64_t until = ms_now() + 2000; w == 0 && ms_now() < until;) {
        w = waitpid(pid, &st, WNOHANG);
        if (w < 0 && errno == EINTR) w = 0;
        if (w == 0) {
            struct timespec pause = {0, 1000000};
            nanosleep(&pause, NULL);
        }
    }
    if (ended) return n; /* a process-wide SIGCHLD handler may have reaped it: ECHILD */
    /* devices listed before a crash are not trusted: opening them may crash too */
    if (timed_out)
        snprintf(why, wsize, "the %s driver did not list its devices within %.1f s (AG_PROBE_TIMEOUT)",
                 backend, limit / 1000.0);
    else if (w == pid && WIFSIGNALED(st) && (WTERMSIG(st) == SIGINT || WTERMSIG(st) == SIGTERM))
        snprintf(why, wsize, "the probe of %s was interrupted (signal %d)", backend, WTERMSIG(st));
    else if (w == pid && WIFSIGNALED(st))
        snprintf(why, wsize, "the %s driver crashed while the probe opened it (signal %d, %s)", backend,
                 WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(why, wsize, "the probe's process for %s ended early", backend);
    return 0;
}
