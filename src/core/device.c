/* Device registry: the probe, ranking and selection. The CPU, then every OpenCL
 * and every Vulkan device; a GPU stack that fails to load or initialise is
 * recorded as unavailable and skipped, never fatal. Devices keep their probe
 * order (indices are stable); the default is chosen by kind, then by
 * calibrated speed (src/ops/calibrate.c) when devices of the best kind tie.
 *
 * Backends are probed in registry order and only as far as needed: asking for
 * "cpu" by name (--device cpu, AG_DEVICE=cpu) probes the CPU alone, so no GPU
 * driver is loaded or initialised (each costs tens of MB, and a broken one
 * can crash in its own initialisation); anything that needs the whole list
 * (the count, the default, an index, a name's substring) probes the rest.
 * A GPU backend that is listed without being asked for by name is probed in
 * a child process (src/core/probe_child.c): its devices are known by name and
 * properties, and its driver is loaded here only when one of them is first
 * used (ag__device_open). AG_PROBE=inprocess probes everything here. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define MAX_DEVICES AG_PROBE_MAX
#define MAX_UNAVAILABLE 4

static ag_device devices[MAX_DEVICES];
static ag_backend_props props[MAX_DEVICES];
static int same_as[MAX_DEVICES];
static int backend_of[MAX_DEVICES];                /* registry index */
static char probed_details[MAX_DEVICES][1024];     /* of a device not yet opened */
static char open_error[MAX_DEVICES][256];          /* why a listed device could not be opened */
static bool gpu_here; /* a GPU driver is loaded here: later probes stay here too (below) */
static _Atomic int ndevices; /* published after a device's entry is complete */
static struct {
    const char *backend;
    char reason[256];
} unavailable[MAX_UNAVAILABLE];
static int nunavailable;
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int nprobed; /* registry entries probed, in order */
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static int default_index;
static _Thread_local ag_device *thread_default;

void ag__probe_describe(const ag_backend_i *iface, void *ctx, ag_probe_record *out)
{
    if (iface->describe) iface->describe(ctx, out->name, sizeof out->name);
    else snprintf(out->name, sizeof out->name, "%s", iface->name);
    out->details[0] = '\0';
    if (iface->details) iface->details(ctx, out->details, sizeof out->details);
    out->props = (ag_backend_props){.kind = AG_DEVICE_OTHER};
    if (iface->props) iface->props(ctx, &out->props);
}

/* rec is given for a device the child process found (opened on first use),
 * NULL for one made here (ctx; the CPU's may be NULL). */
static void add_device(int backend, const ag_backend_i *iface, void *ctx, const ag_probe_record *rec)
{
    if (ndevices == MAX_DEVICES) return;
    ag_device *d = &devices[ndevices];
    ag_probe_record made;
    const bool here = rec == NULL;
    if (here) {
        ag__probe_describe(iface, ctx, &made);
        rec = &made;
    }
    d->i = iface;
    d->ctx = ctx;
    d->index = ndevices;
    _Static_assert(sizeof d->name == sizeof rec->name && sizeof probed_details[0] == sizeof rec->details,
                   "records and entries hold the same strings");
    memcpy(d->name, rec->name, sizeof d->name); /* both NUL-terminated within their size */
    memcpy(probed_details[ndevices], rec->details, sizeof probed_details[0]);
    props[ndevices] = rec->props;
    backend_of[ndevices] = backend;
    same_as[ndevices] = -1;
    atomic_store_explicit(&d->opened, here, memory_order_release);
    ndevices++;
}

static void add_unavailable(const char *backend, const char *reason)
{
    if (nunavailable == MAX_UNAVAILABLE) return;
    unavailable[nunavailable].backend = backend;
    snprintf(unavailable[nunavailable].reason, sizeof unavailable[0].reason, "%s", reason);
    nunavailable++;
}

static int cpu_backends_create(const ag_backend_i **iface, void **ctxs, int max)
{
    return max > 0 && ag_cpu_backend_create(iface, &ctxs[0]) == AG_OK;
}

/* The backends, in probe order; GPU ones only where the build has them. */
static const struct {
    const char *name;
    ag_backend_create_fn create; /* every device at once, at most max; max 0 sets *iface only */
    bool gpu;                    /* may be probed in a child; ag_debug_device_reset may remake it */
} registry[] = {
    {"cpu", cpu_backends_create, false},
#ifdef AG_HAVE_OPENCL
    {"opencl", ag_opencl_backends_create, true},
#endif
#ifdef AG_HAVE_VULKAN
    {"vulkan", ag_vulkan_backends_create, true},
#endif
};

static bool probe_in_child(void)
{
    const char *e = getenv("AG_PROBE");
    return !(e && strcmp(e, "inprocess") == 0);
}

/* Once a GPU driver runs here, its threads (and, shared between PoCL and
 * lavapipe, LLVM's locks) would be copied mid-flight into a forked child, and
 * its libraries are mapped already: the remaining backends are probed here. */
static void probe_backend(int b, bool here)
{
    const ag_backend_i *iface = NULL;
    void *ctxs[MAX_DEVICES];
    const int room = MAX_DEVICES - ndevices;
    ag_clear_error();
    if (registry[b].gpu && !here && !gpu_here && room > 0 && probe_in_child()) {
        static ag_probe_record recs[MAX_DEVICES]; /* under probe_lock */
        char why[256];
        int n = ag__probe_in_child(registry[b].name, registry[b].create, recs, room, why, sizeof why);
        if (n >= 0) {
            registry[b].create(&iface, ctxs, 0);
            if (n == 0) add_unavailable(registry[b].name, why);
            for (int i = 0; i < n; i++) add_device(b, iface, NULL, &recs[i]);
            return;
        }
    }
    if (registry[b].gpu) gpu_here = true;
    int n = registry[b].create(&iface, ctxs, room);
    if (n <= 0) add_unavailable(registry[b].name, ag_last_status() ? ag_last_error() : "no device found");
    for (int i = 0; i < n; i++) add_device(b, iface, ctxs[i], NULL);
}

/* Opens, under probe_lock, every device of backend b that the child found:
 * the backend's devices are made again and matched by name and UUID; the rest
 * go. A device that does not open keeps its reason in open_error. */
static void open_backend(int b)
{
    const ag_backend_i *iface = NULL;
    void *made[MAX_DEVICES];
    bool used[MAX_DEVICES] = {false};
    ag_clear_error();
    gpu_here = true;
    int n = registry[b].create(&iface, made, MAX_DEVICES);
    char why[256];
    snprintf(why, sizeof why, "%s", n > 0 ? "not found again" : ag_last_status() ? ag_last_error() : "no device found");
    for (int i = 0; i < ndevices; i++) {
        if (backend_of[i] != b || atomic_load(&devices[i].opened)) continue;
        for (int k = 0; k < n; k++) {
            ag_probe_record r;
            if (used[k]) continue;
            ag__probe_describe(iface, made[k], &r);
            /* two identical GPUs differ by UUID only, and may enumerate in
             * another order */
            const ag_backend_props *q = &props[i];
            if (strcmp(r.name, devices[i].name) != 0 ||
                (r.props.has_uuid && q->has_uuid && memcmp(r.props.uuid, q->uuid, sizeof q->uuid) != 0))
                continue;
            used[k] = true;
            devices[i].ctx = made[k];
            atomic_store_explicit(&devices[i].opened, 1, memory_order_release);
            break;
        }
    }
    for (int k = 0; k < n; k++)
        if (!used[k]) iface->destroy(made[k]);
    /* the backend is not made again for every allocation: each device that
     * did not open keeps its reason */
    for (int i = 0; i < ndevices; i++)
        if (backend_of[i] == b && !atomic_load(&devices[i].opened) && !open_error[i][0])
            snprintf(open_error[i], sizeof open_error[i], "%s", why);
}

ag_status ag__device_open(ag_device *dev)
{
    pthread_mutex_lock(&probe_lock);
    if (!atomic_load(&dev->opened) && !open_error[dev->index][0]) open_backend(backend_of[dev->index]);
    ag_status s = atomic_load(&dev->opened)
                      ? AG_OK
                      : ag_set_error(AG_ERR_DEVICE, "%s: listed by the probe but cannot be opened: %s",
                                     dev->name, open_error[dev->index]);
    pthread_mutex_unlock(&probe_lock);
    return s;
}

/* One physical GPU seen through two APIs: equal UUIDs when both report one,
 * else equal PCI vendor id and name. */
static bool same_gpu(int a, int b)
{
    const ag_backend_props *p = &props[a], *q = &props[b];
    bool gpu = (p->kind == AG_DEVICE_DISCRETE_GPU || p->kind == AG_DEVICE_INTEGRATED_GPU) && p->kind == q->kind;
    if (!gpu || devices[a].i == devices[b].i) return false;
    if (p->has_uuid && q->has_uuid) return memcmp(p->uuid, q->uuid, sizeof p->uuid) == 0;
    if (!p->vendor_id || p->vendor_id != q->vendor_id) return false;
    /* names differ in decoration ("NVIDIA H200" vs "NVIDIA H200 (Vulkan, ...)") */
    char na[96], nb[96];
    snprintf(na, sizeof na, "%s", devices[a].name);
    snprintf(nb, sizeof nb, "%s", devices[b].name);
    na[strcspn(na, "(")] = nb[strcspn(nb, "(")] = '\0';
    return strcmp(na, nb) == 0;
}

#define NREGISTRY ((int)(sizeof registry / sizeof registry[0]))

/* Probes registry entries up to and including last that are not yet probed;
 * entry `here` (a backend asked for by name) in this process. */
static void probe_upto(int last, int here)
{
    if (atomic_load(&nprobed) > last) return;
    pthread_mutex_lock(&probe_lock);
    const int first_new = ndevices;
    for (int b = atomic_load(&nprobed); b <= last && b < NREGISTRY; b++) {
        probe_backend(b, b == here);
        atomic_store(&nprobed, b + 1);
    }
    for (int i = first_new; i < ndevices; i++)
        for (int j = 0; j < i; j++)
            if (same_as[j] < 0 && same_gpu(i, j)) {
                same_as[i] = j; /* provisional: the faster one is kept below */
                break;
            }
    pthread_mutex_unlock(&probe_lock);
    ag_clear_error();
}

static bool ensure_probed(void)
{
    probe_upto(NREGISTRY - 1, -1);
    if (ndevices == 0) {
        ag_set_error(AG_ERR_DEVICE, "no usable device: %s",
                     nunavailable ? unavailable[0].reason : "the probe found nothing");
        return false;
    }
    return true;
}

static int kind_rank(ag_device_kind k)
{
    static const int rank[] = {[AG_DEVICE_DISCRETE_GPU] = 0, [AG_DEVICE_INTEGRATED_GPU] = 1,
                               [AG_DEVICE_CPU] = 2, [AG_DEVICE_OTHER] = 3, [AG_DEVICE_SOFTWARE] = 4};
    return (unsigned)k < sizeof rank / sizeof rank[0] ? rank[k] : 3;
}

static double speed(int i)
{
    double g = 0, b = 0;
    ag__calibration_get(&devices[i], &g, &b);
    return g;
}

/* Best kind wins; devices of that kind (a GPU through both APIs, two GPUs)
 * are calibrated and the fastest is kept. Software devices are never chosen
 * while anything else exists. */
static bool is_gpu(int i)
{
    return props[i].kind == AG_DEVICE_DISCRETE_GPU || props[i].kind == AG_DEVICE_INTEGRATED_GPU;
}

static void choose_default(void)
{
    /* a GPU the child process listed must also open here, or the next kind
     * (in the end the CPU) is the default */
    bool skip[MAX_DEVICES] = {false};
    int best, ties;
    for (;;) {
        best = -1, ties = 0;
        for (int i = 0; i < ndevices; i++) {
            if (skip[i]) continue;
            int r = kind_rank(props[i].kind);
            if (best < 0 || r < kind_rank(props[best].kind)) {
                best = i;
                ties = 1;
            } else if (r == kind_rank(props[best].kind)) {
                ties++;
            }
        }
        if (best < 0 || !is_gpu(best)) break;
        bool again = false;
        for (int i = 0; i < ndevices; i++)
            if (!skip[i] && kind_rank(props[i].kind) == kind_rank(props[best].kind) &&
                ag__device_ready(&devices[i]) != AG_OK)
                skip[i] = again = true;
        if (!again) break;
    }
    if (best < 0) {
        default_index = 0;
        ag_clear_error();
        return;
    }
    /* only GPUs are worth measuring: CPU and software ties keep probe order */
    if (ties > 1 && is_gpu(best)) {
        ag_device *saved = thread_default;
        double fastest = -1;
        int rank = kind_rank(props[best].kind);
        for (int i = 0; i < ndevices; i++) {
            if (skip[i] || kind_rank(props[i].kind) != rank) continue;
            ag_device_calibrate(&devices[i], false);
            double g = speed(i);
            if (g > fastest) {
                fastest = g;
                best = i;
            }
        }
        thread_default = saved;
        /* the preferred entry of a duplicated GPU is the faster API */
        for (int i = 0; i < ndevices; i++)
            if (same_as[i] >= 0 && speed(i) > speed(same_as[i])) {
                int j = same_as[i];
                same_as[j] = i;
                same_as[i] = -1;
            }
    }
    default_index = best < 0 ? 0 : best;
    ag_clear_error();
}

int ag_device_count(void) { return ensure_probed() ? ndevices : 0; }

ag_device *ag_device_get(int index)
{
    if (!ensure_probed()) return NULL;
    if (index < 0 || index >= ndevices) {
        ag_set_error(AG_ERR_ARG, "ag_device_get: index %d out of range [0, %d)", index, ndevices);
        return NULL;
    }
    return &devices[index];
}

/* "backend" or "backend:N" (N counts devices of that backend), or a substring of a name. */
ag_device *ag_device_by_name(const char *name_in)
{
    if (!name_in) {
        ag_set_error(AG_ERR_ARG, "ag_device_by_name: name is NULL");
        return NULL;
    }
    /* surrounding blanks (AG_DEVICE=" cpu") are not part of the name: " cpu"
     * matched the "(Vulkan, cpu (software))" of lavapipe's name */
    char name[256];
    while (*name_in == ' ' || *name_in == '\t') name_in++;
    snprintf(name, sizeof name, "%s", name_in);
    for (size_t k = strlen(name); k > 0 && (name[k - 1] == ' ' || name[k - 1] == '\t' ||
                                            name[k - 1] == '\n'); k--)
        name[k - 1] = '\0';
    char backend[32];
    const char *colon = strchr(name, ':');
    size_t blen = colon ? (size_t)(colon - name) : strlen(name);
    /* a backend's name probes only as far as that backend */
    int upto = NREGISTRY - 1;
    bool is_backend = false;
    for (int b = 0; b < NREGISTRY; b++)
        if (strlen(registry[b].name) == blen && strncmp(registry[b].name, name, blen) == 0) {
            upto = b;
            is_backend = true;
        }
    probe_upto(upto, is_backend ? upto : -1);
    if (ndevices == 0 && !ensure_probed()) return NULL;
    long want = 0;
    if (colon) {
        char *end;
        want = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end != '\0' || want < 0) {
            ag_set_error(AG_ERR_ARG, "device '%s': expected BACKEND:INDEX", name);
            return NULL;
        }
    }
    if (blen < sizeof backend) {
        memcpy(backend, name, blen);
        backend[blen] = '\0';
        long seen = 0;
        for (int i = 0; i < ndevices; i++)
            if (strcmp(devices[i].i->name, backend) == 0 && seen++ == want) return &devices[i];
    }
    /* a substring of a device's name, unless it names a backend: "cpu" must
     * not fall back to an OpenCL device whose name mentions a CPU */
    int matches = 0;
    ag_device *match = NULL;
    if (!colon && name[0] && !is_backend) {
        ensure_probed();
        /* one device, or one GPU seen through two APIs (the first of them);
         * else it is ambiguous: "Intel" is in the names of a CPU and PoCL */
        for (int i = 0; i < ndevices; i++) {
            if (!strstr(devices[i].name, name)) continue;
            bool again = false; /* a GPU already counted through another API */
            for (int j = 0; j < i && !again; j++)
                again = strstr(devices[j].name, name) && same_gpu(j, i);
            if (!again) matches++;
            if (!match) match = &devices[i];
        }
        if (matches == 1) return match;
    }
    ensure_probed(); /* the message lists every device */

    char list[512] = "";
    for (int i = 0; i < ndevices; i++) {
        size_t len = strlen(list);
        int k = 0;
        for (int j = 0; j < i; j++) k += devices[j].i == devices[i].i;
        snprintf(list + len, sizeof list - len, "%s%s:%d (%s)", i ? ", " : "", devices[i].i->name, k,
                 devices[i].name);
    }
    for (int u = 0; u < nunavailable; u++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "; %s unavailable: %s", unavailable[u].backend,
                 unavailable[u].reason);
    }
    if (matches > 1)
        ag_set_error(AG_ERR_ARG, "device '%s' is part of %d devices' names; name one (BACKEND:INDEX "
                                 "or more of its name): %s", name, matches, list);
    else
        ag_set_error(AG_ERR_ARG, "unknown device '%s'; available: %s", name, list);
    return NULL;
}

ag_device *ag_device_default(void)
{
    if (thread_default) return thread_default;
    const char *env = getenv("AG_DEVICE");
    if (env && *env) return ag_device_by_name(env);
    if (!ensure_probed()) return NULL;
    pthread_once(&default_once, choose_default);
    return &devices[default_index];
}

ag_device *ag__thread_default(void) { return thread_default; }

ag_device_kind ag__device_kind(const ag_device *dev) { return props[dev->index].kind; }

ag_status ag_set_default_device(ag_device *dev)
{
    /* only a device the probe made: anything else would be dereferenced later */
    bool known = dev == NULL;
    for (int i = 0; i < ndevices && !known; i++) known = dev == &devices[i];
    if (!known)
        return ag_set_error(AG_ERR_ARG, "ag_set_default_device: %p is not a device of ag_device_get",
                            (void *)dev);
    thread_default = dev; /* NULL restores the probe's choice */
    return AG_OK;
}

const char *ag_device_name(const ag_device *dev) { return dev ? dev->name : "(null)"; }
const char *ag_device_backend(const ag_device *dev) { return dev ? dev->i->name : "(null)"; }
int ag_device_index(const ag_device *dev) { return dev ? dev->index : -1; }

const char *ag_device_kind_name(ag_device_kind kind)
{
    static const char *const names[] = {"discrete gpu", "integrated gpu", "cpu", "software", "other"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "unknown";
}

ag_status ag_device_info(const ag_device *dev, ag_device_props *out)
{
    if (!dev || !out) return ag_set_error(AG_ERR_ARG, "ag_device_info: device and out must not be NULL");
    if (!ensure_probed()) return ag_last_status();
    const ag_backend_props *p = &props[dev->index];
    *out = (ag_device_props){.backend = dev->i->name,
                             .name = dev->name,
                             .kind = p->kind,
                             .memory_bytes = p->memory_bytes,
                             .same_as = same_as[dev->index]};
    ag__calibration_get(dev, &out->gflops, &out->gbps);
    pthread_once(&default_once, choose_default); /* is_default needs the choice */
    out->is_default = dev->index == default_index;
    return AG_OK;
}

ag_status ag_device_details(const ag_device *dev, char *buf, size_t size)
{
    if (!dev || !buf || size == 0)
        return ag_set_error(AG_ERR_ARG, "ag_device_details: device, buffer and size must be given");
    buf[0] = '\0';
    if (!atomic_load(&dev->opened)) snprintf(buf, size, "%s", probed_details[dev->index]);
    else if (dev->i->details) dev->i->details(dev->ctx, buf, size);
    return AG_OK;
}

int ag_device_unavailable_count(void)
{
    probe_upto(NREGISTRY - 1, -1);
    return nunavailable;
}

const char *ag_device_unavailable(int i, const char **reason)
{
    probe_upto(NREGISTRY - 1, -1);
    if (i < 0 || i >= nunavailable) {
        if (reason) *reason = NULL;
        return NULL;
    }
    if (reason) *reason = unavailable[i].reason;
    return unavailable[i].backend;
}

ag_status ag_device_sync(ag_device *dev)
{
    if (!dev) return ag_set_error(AG_ERR_ARG, "ag_device_sync: device is NULL");
    if (!atomic_load(&dev->opened)) return AG_OK; /* nothing ran on it */
    return dev->i->sync(dev->ctx);
}

/* ---- debugging ----------------------------------------------------------------- */

int64_t ag_debug_live_cl_objects(ag_cl_object type)
{
    if ((unsigned)type >= AG_CL_OBJECT_COUNT) return -1;
#ifdef AG_HAVE_OPENCL
    return ag_opencl_live_objects(type);
#else
    return 0;
#endif
}

/* The backend's devices are made again all at once (their constructors take
 * no device); dev's new context is the one at dev's place among them, and the
 * rest go. The new context exists before the old one is destroyed, so a failure
 * leaves dev as it was. */
ag_status ag_debug_device_reset(ag_device *dev)
{
    if (!dev) return ag_set_error(AG_ERR_ARG, "ag_debug_device_reset: device is NULL");
    if (!ensure_probed()) return ag_last_status();
    int64_t busy = ag_debug_live_buffers();
    if (busy)
        return ag_set_error(AG_ERR_ARG, "ag_debug_device_reset: %lld device buffers are alive",
                            (long long)busy);
    ag_backend_create_fn create = registry[backend_of[dev->index]].gpu ? registry[backend_of[dev->index]].create : NULL;
    if (!create)
        return ag_set_error(AG_ERR_UNSUPPORTED, "ag_debug_device_reset: %s devices cannot be reset",
                            dev->i->name);
    ag_status s = ag__device_ready(dev);
    if (s != AG_OK) return s;
    int at = 0;
    for (int i = 0; i < dev->index; i++) at += devices[i].i == dev->i;
    s = dev->i->sync(dev->ctx);
    if (s != AG_OK) return s;
    const ag_backend_i *iface = NULL;
    void *made[MAX_DEVICES];
    ag_clear_error();
    int n = create(&iface, made, MAX_DEVICES);
    char name[sizeof dev->name] = "";
    if (at < n && iface == dev->i) {
        if (iface->describe) iface->describe(made[at], name, sizeof name);
        else snprintf(name, sizeof name, "%s", iface->name);
    }
    bool same = at < n && iface == dev->i && !strcmp(name, dev->name);
    if (same) {
        dev->i->destroy(dev->ctx);
        dev->ctx = made[at];
    }
    for (int i = 0; i < n; i++)
        if (!same || i != at) iface->destroy(made[i]);
    if (!same) {
        char why[256]; /* the message is about to be replaced */
        snprintf(why, sizeof why, "%s", ag_last_status() ? ag_last_error() : "not found again");
        return ag_set_error(AG_ERR_DEVICE, "ag_debug_device_reset: %s: %s", dev->name, why);
    }
    return AG_OK;
}
