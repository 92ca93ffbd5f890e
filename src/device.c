/* Device registry: the CPU, then every OpenCL and Vulkan device. The CPU stays the default
 * until ranking arrives (issue 7); AG_DEVICE selects by backend or name. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define MAX_DEVICES 16

static ag_device devices[MAX_DEVICES];
static int ndevices;
static ag_status probe_status = AG_OK;
static char probe_error[256];
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static _Thread_local ag_device *thread_default;

static void add_device(const ag_backend_i *iface, void *ctx)
{
    ag_device *d = &devices[ndevices];
    d->i = iface;
    d->ctx = ctx;
    d->index = ndevices;
    if (iface->describe) iface->describe(ctx, d->name, sizeof d->name);
    else snprintf(d->name, sizeof d->name, "%s", iface->name);
    ndevices++;
}

static void probe(void)
{
    const ag_backend_i *iface;
    void *ctx;
    if (ag_cpu_backend_create(&iface, &ctx) == AG_OK) {
        add_device(iface, ctx);
    } else {
        probe_status = ag_last_status();
        snprintf(probe_error, sizeof probe_error, "%s", ag_last_error());
    }
#ifdef AG_HAVE_OPENCL
    void *ctxs[MAX_DEVICES];
    int n = ag_opencl_backends_create(&iface, ctxs, MAX_DEVICES - ndevices);
    for (int i = 0; i < n; i++) add_device(iface, ctxs[i]);
#endif
#ifdef AG_HAVE_VULKAN
    void *vctxs[MAX_DEVICES];
    int nv = ag_vulkan_backends_create(&iface, vctxs, MAX_DEVICES - ndevices);
    for (int i = 0; i < nv; i++) add_device(iface, vctxs[i]);
#endif
}

static bool ensure_probed(void)
{
    pthread_once(&probe_once, probe);
    if (ndevices == 0) {
        ag_set_error(probe_status ? probe_status : AG_ERR_DEVICE, "no usable device: %s",
                     probe_error);
        return false;
    }
    return true;
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
ag_device *ag_device_by_name(const char *name)
{
    if (!name) {
        ag_set_error(AG_ERR_ARG, "ag_device_by_name: name is NULL");
        return NULL;
    }
    if (!ensure_probed()) return NULL;
    char backend[32];
    const char *colon = strchr(name, ':');
    size_t blen = colon ? (size_t)(colon - name) : strlen(name);
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
    for (int i = 0; i < ndevices && !colon; i++)
        if (name[0] && strstr(devices[i].name, name)) return &devices[i];

    char list[256] = "";
    for (int i = 0; i < ndevices; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s:%d", i ? ", " : "", devices[i].i->name, i);
    }
    ag_set_error(AG_ERR_ARG, "unknown device '%s'; available: %s", name, list);
    return NULL;
}

ag_device *ag_device_default(void)
{
    if (thread_default) return thread_default;
    if (!ensure_probed()) return NULL;
    const char *env = getenv("AG_DEVICE");
    if (env && *env) return ag_device_by_name(env);
    return &devices[0];
}

ag_status ag_set_default_device(ag_device *dev)
{
    thread_default = dev; /* NULL restores the probe's choice */
    return AG_OK;
}

const char *ag_device_name(const ag_device *dev) { return dev ? dev->name : "(null)"; }
const char *ag_device_backend(const ag_device *dev) { return dev ? dev->i->name : "(null)"; }

ag_status ag_device_details(const ag_device *dev, char *buf, size_t size)
{
    if (!dev || !buf || size == 0)
        return ag_set_error(AG_ERR_ARG, "ag_device_details: device, buffer and size must be given");
    buf[0] = '\0';
    if (dev->i->details) dev->i->details(dev->ctx, buf, size);
    return AG_OK;
}

ag_status ag_device_sync(ag_device *dev)
{
    if (!dev) return ag_set_error(AG_ERR_ARG, "ag_device_sync: device is NULL");
    return dev->i->sync(dev->ctx);
}
