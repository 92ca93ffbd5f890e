/* Device calibration: SGEMM GFLOP/s and copy GB/s, measured in about 100 ms
 * and cached on disk by backend, name and driver details ($AG_CACHE_DIR, else
 * $XDG_CACHE_HOME/anygrad, else ~/.cache/anygrad; calibration/). The probe
 * uses it only to break ties between devices of the best kind. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

#define MAX_CAL 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bool known;
    double gflops, gbps;
} cal[MAX_CAL];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool cache_path(const ag_device *dev, char *path, size_t size, char *dir, size_t dsize)
{
    const char *d = getenv("AG_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (d && *d) snprintf(dir, dsize, "%s/calibration", d);
    else if (x && *x) snprintf(dir, dsize, "%s/anygrad/calibration", x);
    else if (h && *h) snprintf(dir, dsize, "%s/.cache/anygrad/calibration", h);
    else return false;
    char details[1024] = "";
    ag_device_details(dev, details, sizeof details);
    /* the CPU's line ends with the live load ("(now 0.4; ..."): not part of the key */
    char *live = strstr(details, "(now ");
    if (live) *live = '\0';
    uint64_t hash = 1469598103934665603ull;
    const char *parts[3] = {ag_device_backend(dev), ag_device_name(dev), details};
    for (int k = 0; k < 3; k++)
        for (const char *p = parts[k]; ; p++) {
            hash = (hash ^ (unsigned char)*p) * 1099511628211ull;
            if (!*p) break;
        }
    snprintf(path, size, "%s/%s-%016" PRIx64 ".txt", dir, ag_device_backend(dev), hash);
    return true;
}

static void load(const ag_device *dev, int i)
{
    char path[700], dir[600];
    if (!cache_path(dev, path, sizeof path, dir, sizeof dir)) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    double g, b;
    if (fscanf(f, "%lf %lf", &g, &b) == 2 && g > 0 && b > 0) {
        cal[i].known = true;
        cal[i].gflops = g;
        cal[i].gbps = b;
    }
    fclose(f);
}

static void save(const ag_device *dev, double g, double b)
{
    char path[700], dir[600], tmp[720];
    if (!cache_path(dev, path, sizeof path, dir, sizeof dir)) return;
    for (char *p = dir + 1; *p; p++) { /* mkdir -p; failing only means no cache */
        if (*p != '/') continue;
        *p = '\0';
        mkdir(dir, 0755);
        *p = '/';
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return;
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    bool ok = fprintf(f, "%.3f %.3f\n", g, b) > 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) remove(tmp);
}

void ag__calibration_get(const ag_device *dev, double *gflops, double *gbps)
{
    *gflops = *gbps = 0;
    int i = ag_device_index(dev);
    if (i < 0 || i >= MAX_CAL) return;
    pthread_mutex_lock(&lock);
    if (!cal[i].known) load(dev, i);
    if (cal[i].known) {
        *gflops = cal[i].gflops;
        *gbps = cal[i].gbps;
    }
    pthread_mutex_unlock(&lock);
}

/* Seconds per call of fn, over at least `min_s` seconds and two calls. */
static double time_calls(ag_device *dev, ag_tensor *(*fn)(ag_tensor *, ag_tensor *), ag_tensor *a,
                         ag_tensor *b, double min_s)
{
    /* each call in a scope of its own: the enclosing scope owns a and b */
    ag_scope_begin();
    bool ok = fn(a, b) != NULL; /* warm-up: kernels built, memory pooled */
    ag_scope_end();
    if (!ok || ag_device_sync(dev) != AG_OK) return -1;
    int reps = 0;
    double t0 = now(), t;
    do {
        ag_scope_begin();
        ok = fn(a, b) != NULL;
        ag_scope_end();
        if (!ok) return -1;
        reps++;
        if (ag_device_sync(dev) != AG_OK) return -1;
        t = now() - t0;
    } while (t < min_s || reps < 2);
    return t / reps;
}

static ag_tensor *copy_op(ag_tensor *a, ag_tensor *b)
{
    (void)b;
    return ag_clone(a);
}

ag_status ag_device_calibrate(ag_device *dev, bool force)
{
    if (!dev) return ag_set_error(AG_ERR_ARG, "ag_device_calibrate: device is NULL");
    int i = ag_device_index(dev);
    if (i < 0 || i >= MAX_CAL) return ag_set_error(AG_ERR_ARG, "ag_device_calibrate: bad device");
    double g, b;
    ag__calibration_get(dev, &g, &b);
    if (g > 0 && !force) return AG_OK;

    ag_device_kind kind = ag__device_kind(dev);
    bool gpu = kind == AG_DEVICE_DISCRETE_GPU || kind == AG_DEVICE_INTEGRATED_GPU;
    const int64_t n = gpu ? 2048 : 384, elems = gpu ? (16 << 20) : (4 << 20);
    ag_device *saved = ag__thread_default();
    ag_set_default_device(dev);
    ag_scope_begin();
    const int64_t sq[2] = {n, n};
    ag_tensor *x = ag_rand(2, sq, -1.0f, 1.0f), *w = ag_rand(2, sq, -1.0f, 1.0f);
    ag_tensor *v = ag_rand(1, &elems, -1.0f, 1.0f);
    double tg = x && w ? time_calls(dev, ag_matmul, x, w, 0.06) : -1;
    double tb = v ? time_calls(dev, copy_op, v, NULL, 0.03) : -1;
    ag_scope_end();
    ag_set_default_device(saved);
    if (tg <= 0 || tb <= 0) {
        char why[256]; /* the message is about to be replaced */
        snprintf(why, sizeof why, "%s", ag_last_error());
        return ag_set_error(ag_last_status() ? ag_last_status() : AG_ERR_DEVICE, "calibrating %s failed: %s",
                            ag_device_name(dev), why);
    }
    g = 2.0 * n * n * n / tg / 1e9;
    b = 2.0 * 4.0 * elems / tb / 1e9;
    pthread_mutex_lock(&lock);
    cal[i].known = true;
    cal[i].gflops = g;
    cal[i].gbps = b;
    pthread_mutex_unlock(&lock);
    save(dev, g, b);
    return AG_OK;
}
