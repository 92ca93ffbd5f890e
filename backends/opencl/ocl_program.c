/* Programs: kernels/common.cl + kernels/<name>.cl, built for a device on first
 * use. Binaries are cached on disk under a key that hashes the device, driver,
 * sources and options, so a second process skips the compiler. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ocl.h"

#define OCL_MAX_KERNELS 32

struct ocl_program {
    const ocl_source *src;
    cl_program program; /* NULL: an optional program that failed to build (not retried) */
    int nkernels;
    char kernel_names[OCL_MAX_KERNELS][64];
    cl_kernel kernels[OCL_MAX_KERNELS]; /* NULL: needs more local memory than the device has */
    size_t kernel_wg[OCL_MAX_KERNELS]; /* its work-group limit, queried once */
    ocl_program *next;
};

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static uint64_t fnv1a_str(uint64_t h, const char *s) { return fnv1a(h, s, strlen(s) + 1); }

static const ocl_source *find_source(const char *name)
{
    for (int i = 0; i < ocl_nsources; i++)
        if (strcmp(ocl_sources[i].name, name) == 0) return &ocl_sources[i];
    return NULL;
}

/* $AG_CACHE_DIR, else $XDG_CACHE_HOME/anygrad, else ~/.cache/anygrad; then
 * /opencl. Empty when there is no home or caching is off (AG_OPENCL_CACHE=0). */
static void cache_dir(char *buf, size_t size)
{
    buf[0] = '\0';
    const char *off = getenv("AG_OPENCL_CACHE");
    if (off && strcmp(off, "0") == 0) return;
    const char *d = getenv("AG_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (d && *d) snprintf(buf, size, "%s/opencl", d);
    else if (x && *x) snprintf(buf, size, "%s/anygrad/opencl", x);
    else if (h && *h) snprintf(buf, size, "%s/.cache/anygrad/opencl", h);
}

/* mkdir -p; failures only mean no cache */
static bool make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST) return false;
    }
    return mkdir(path, 0755) == 0 || errno == EEXIST;
}

static void cache_path(const ocl_ctx *c, const ocl_source *src, char *buf, size_t size)
{
    char dir[512];
    cache_dir(dir, sizeof dir);
    if (!dir[0]) {
        buf[0] = '\0';
        return;
    }
    uint64_t h = 1469598103934665603ull;
    h = fnv1a_str(h, c->name);
    h = fnv1a_str(h, c->vendor);
    h = fnv1a_str(h, c->driver);
    h = fnv1a_str(h, c->version);
    h = fnv1a_str(h, c->platform_name);
    h = fnv1a_str(h, c->build_options);
    h = fnv1a_str(h, find_source("common")->text);
    h = fnv1a_str(h, src->text);
    snprintf(buf, size, "%s/%s-%016" PRIx64 ".bin", dir, src->name, h);
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *data = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long len = ftell(f);
        if (len > 0 && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)len))) {
            if (fread(data, 1, (size_t)len, f) == (size_t)len) {
                *n = (size_t)len;
            } else {
                free(data);
                data = NULL;
            }
        }
    }
    fclose(f);
    return data;
}

/* Written to a temporary name and renamed: readers never see half a file. */
static void write_cache(const char *path, cl_program prog)
{
    size_t n = 0;
    if (ocl.clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) != CL_SUCCESS || n == 0) return;
    unsigned char *bin = malloc(n);
    if (!bin) return;
    unsigned char *bins[1] = {bin};
    if (ocl.clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS) {
        char dir[512], tmp[600];
        /* a cut name would be another file: no cache rather than a wrong one */
        bool fits = snprintf(dir, sizeof dir, "%s", path) < (int)sizeof dir &&
                    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) < (int)sizeof tmp;
        char *slash = fits ? strrchr(dir, '/') : NULL;
        if (slash) *slash = '\0';
        if (fits && make_dirs(dir)) {
            FILE *f = fopen(tmp, "wb");
            if (f) {
                bool ok = fwrite(bin, 1, n, f) == n;
                ok = fclose(f) == 0 && ok;
                if (!ok || rename(tmp, path) != 0) remove(tmp);
            }
        }
    }
    free(bin);
}

static cl_program from_cache(ocl_ctx *c, const char *path)
{
    size_t n = 0;
    unsigned char *bin = path[0] ? read_file(path, &n) : NULL;
    if (!bin) return NULL;
    const unsigned char *bins[1] = {bin};
    cl_int status = CL_SUCCESS, err;
    cl_program p = ocl.clCreateProgramWithBinary(c->context, 1, &c->device, &n, bins, &status, &err);
    free(bin);
    if (err != CL_SUCCESS || status != CL_SUCCESS) {
        if (p) ocl.clReleaseProgram(p);
        return NULL;
    }
    if (ocl.clBuildProgram(p, 1, &c->device, c->build_options, NULL, NULL) != CL_SUCCESS) {
        ocl.clReleaseProgram(p); /* stale or foreign binary: compile from source */
        return NULL;
    }
    return p;
}

static cl_program from_source(ocl_ctx *c, const ocl_source *src)
{
    const char *texts[2] = {find_source("common")->text, src->text};
    cl_int err;
    cl_program p = ocl.clCreateProgramWithSource(c->context, 2, texts, NULL, &err);
    if (err != CL_SUCCESS) {
        ocl_check(err, "clCreateProgramWithSource");
        return NULL;
    }
    err = ocl.clBuildProgram(p, 1, &c->device, c->build_options, NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[2048] = "";
        size_t len = 0;
        ocl.clGetProgramBuildInfo(p, c->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, &len);
        log[sizeof log - 1] = '\0';
        ag_set_error(err == CL_OUT_OF_HOST_MEMORY ? AG_ERR_OOM : AG_ERR_DEVICE,
                     "opencl: building kernels/%s.cl for %s failed (%s): %s", src->name, c->name,
                     ocl_error_name(err), log[0] ? log : "(no build log)");
        ocl.clReleaseProgram(p);
        return NULL;
    }
    return p;
}

/* optional: a program with a fallback; its build failure is remembered, so
 * later calls do not rebuild it */
static ocl_program *get_program(ocl_ctx *c, const char *name, bool optional)
{
    for (ocl_program *p = c->programs; p; p = p->next)
        if (strcmp(p->src->name, name) == 0) {
            if (p->program) return p;
            ag_set_error(AG_ERR_DEVICE, "opencl: kernels/%s.cl did not build for %s", name, c->name);
            return NULL;
        }
    const ocl_source *src = find_source(name);
    if (!src) {
        ag_set_error(AG_ERR_UNSUPPORTED, "opencl: no kernel source '%s'", name);
        return NULL;
    }
    ocl_program *p = calloc(1, sizeof *p);
    if (!p) {
        ag_set_error(AG_ERR_OOM, "opencl: out of host memory");
        return NULL;
    }
    p->src = src;
    if (ag_fault_hit(AG_FAULT_BUILD)) {
        ag_set_error(AG_ERR_DEVICE, "opencl: injected fault: building kernels/%s.cl for %s failed", name, c->name);
    } else {
        char path[640];
        cache_path(c, src, path, sizeof path);
        p->program = from_cache(c, path);
        if (!p->program) {
            p->program = from_source(c, src);
            if (p->program && path[0]) write_cache(path, p->program);
        }
    }
    if (!p->program && !optional) {
        free(p);
        return NULL;
    }
    p->next = c->programs;
    c->programs = p;
    return p->program ? p : NULL;
}

/* The kernel, its program built on first use; NULL + error. */
static cl_kernel find_kernel(ocl_ctx *c, const char *prog, const char *kernel, size_t *wg, bool optional)
{
    ocl_program *p = get_program(c, prog, optional);
    if (!p) return NULL;
    for (int i = 0; i < p->nkernels; i++)
        if (strcmp(p->kernel_names[i], kernel) == 0) {
            if (!p->kernels[i])
                ag_set_error(AG_ERR_UNSUPPORTED, "opencl: kernel %s needs more local memory than %s has (%llu bytes)",
                             kernel, c->name, (unsigned long long)c->local_mem);
            if (wg) *wg = p->kernel_wg[i];
            return p->kernels[i];
        }
    if (p->nkernels == OCL_MAX_KERNELS || strlen(kernel) >= sizeof p->kernel_names[0]) {
        ag_set_error(AG_ERR_UNSUPPORTED, "opencl: too many kernels in %s.cl", prog);
        return NULL;
    }
    cl_int err;
    cl_kernel k = ocl.clCreateKernel(p->program, kernel, &err);
    if (err != CL_SUCCESS) {
        ag_set_error(AG_ERR_DEVICE, "opencl: kernel %s in %s.cl: %s", kernel, prog, ocl_error_name(err));
        return NULL;
    }
    /* the device's and the compiled kernel's limit (register-heavy kernels get
     * less on many mobile GPUs), capped by AG_OPENCL_MAX_WG */
    size_t lim = 0;
    if (ocl.clGetKernelWorkGroupInfo(k, c->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof lim, &lim, NULL) !=
            CL_SUCCESS ||
        lim == 0 || lim > c->max_wg)
        lim = c->max_wg;
    if (c->wg_cap && lim > c->wg_cap) lim = c->wg_cap;
    /* its own local arrays (the tiles of the tiled kernels) must fit the
     * device's local memory (AG_OPENCL_LOCAL_KB emulates a smaller one) */
    cl_ulong local = 0;
    if (ocl.clGetKernelWorkGroupInfo(k, c->device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof local, &local, NULL) !=
        CL_SUCCESS)
        local = 0;
    if (local > c->local_mem) {
        ocl.clReleaseKernel(k);
        k = NULL;
        lim = 0;
    }
    snprintf(p->kernel_names[p->nkernels], sizeof p->kernel_names[0], "%s", kernel);
    p->kernel_wg[p->nkernels] = lim;
    p->kernels[p->nkernels++] = k;
    if (!k)
        ag_set_error(AG_ERR_UNSUPPORTED, "opencl: kernel %s needs %llu bytes of local memory; %s has %llu",
                     kernel, (unsigned long long)local, c->name, (unsigned long long)c->local_mem);
    if (wg) *wg = lim;
    return k;
}

cl_kernel ocl_kernel(ocl_ctx *c, const char *prog, const char *kernel, size_t *wg)
{
    return find_kernel(c, prog, kernel, wg, false);
}

size_t ocl_kernel_wg_optional(ocl_ctx *c, const char *prog, const char *kernel)
{
    size_t wg = 0;
    pthread_mutex_lock(&c->lock);
    if (!find_kernel(c, prog, kernel, &wg, true)) {
        wg = 0;
        ag_clear_error();
    }
    pthread_mutex_unlock(&c->lock);
    return wg;
}

void ocl_programs_free(ocl_ctx *c)
{
    ocl_program *p = c->programs;
    while (p) {
        ocl_program *next = p->next;
        for (int i = 0; i < p->nkernels; i++)
            if (p->kernels[i]) ocl.clReleaseKernel(p->kernels[i]);
        if (p->program) ocl.clReleaseProgram(p->program);
        free(p);
        p = next;
    }
    c->programs = NULL;
}
