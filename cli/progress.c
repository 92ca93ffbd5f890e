/* The training progress bar: one line redrawn in place with a carriage return,
 * only when stdout is a terminal (logs and pipes get the plain epoch lines). */
#define _DEFAULT_SOURCE /* TIOCGWINSZ on glibc under -D_POSIX_C_SOURCE */
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define BAR_WIDTH 24
#define REDRAW_S 0.1 /* ten redraws a second are smooth and cost nothing */

/* RUSAGE_SELF: the device probe's child process is not part of the figure
 * (/usr/bin/time reports the larger of the two). */
double cli_peak_mb(void)
{
    struct rusage u;
    return getrusage(RUSAGE_SELF, &u) == 0 ? u.ru_maxrss / 1024.0 : 0.0;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress_begin(cli_progress *p, const char *label, int64_t total_batches)
{
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDOUT_FILENO) == 1 && !cli_dist_on(); /* mpirun gives ranks a pty even when piped */
    p->total = total_batches;
    p->t0 = cli_now();
    snprintf(p->label, sizeof p->label, "%s", label);
}

static void fmt_duration(char *buf, size_t n, double s)
{
    if (!(s >= 0.0) || s > 359999.0) {
        snprintf(buf, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* A line longer than the terminal wraps and \r no longer redraws it. */
static int term_width(void)
{
#ifdef TIOCGWINSZ
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
#endif
    const char *c = getenv("COLUMNS");
    int w = c ? atoi(c) : 0;
    return w >= 20 ? w : 80;
}

void cli_progress_update(cli_progress *p, int64_t done, int64_t samples, double loss, double acc)
{
    if (!p->tty) return;
    double now = cli_now();
    if (done < p->total && now - p->last_draw < REDRAW_S) return;
    p->last_draw = now;
    double el = now - p->t0, frac = p->total > 0 ? (double)done / (double)p->total : 1.0;
    if (frac > 1.0) frac = 1.0;
    char bar[BAR_WIDTH + 1];
    int fill = (int)(frac * BAR_WIDTH);
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[BAR_WIDTH] = '\0';
    char eta[32];
    fmt_duration(eta, sizeof eta, done > 0 ? el * (double)(p->total - done) / (double)done : -1.0);
    /* Fields that do not fit the terminal are left out whole, the least
     * important first, never cut in the middle of a number. */
    char line[512], field[4][64];
    snprintf(line, sizeof line, "%s [%s] %lld/%lld", p->label, bar, (long long)done,
             (long long)p->total);
    snprintf(field[0], sizeof field[0], " ETA %s", eta);
    snprintf(field[1], sizeof field[1], " loss %.4f", loss);
    snprintf(field[2], sizeof field[2], " acc %.4f", acc);
    snprintf(field[3], sizeof field[3], " %.0f samples/s", el > 0.0 ? (double)samples / el : 0.0);
    size_t w = (size_t)term_width() - 1, len = strlen(line);
    for (int k = 0; k < 4; k++) {
        size_t fl = strlen(field[k]);
        if (len + fl > w) break;
        memcpy(line + len, field[k], fl + 1);
        len += fl;
    }
    if (len > w) line[w] = '\0'; /* a terminal narrower than the bar itself */
    /* \033[K clears what a longer previous line left behind. */
    printf("\r%s\033[K", line);
    fflush(stdout);
    p->drawn = true;
}

void cli_progress_end(cli_progress *p)
{
    if (p->tty && p->drawn) {
        printf("\r\033[K");
        fflush(stdout);
    }
    p->drawn = false;
}
