/* Platforms and devices: every device of every platform gets its own context
 * and in-order queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl.h"

#define OCL_MAX_PLATFORMS 16
#define OCL_MAX_PLATFORM_DEVICES 16

/* Copies src into buf[size], cut to fit (on purpose: snprintf's truncation
 * warning has no way to hear that); returns the copied length. */
static size_t copy_cut(char *buf, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(buf, src, n);
    buf[n] = '\0';
    return n;
}

static void info_str(cl_device_id d, cl_device_info what, char *buf, size_t size)
{
    char tmp[1024] = "";
    if (ocl.clGetDeviceInfo(d, what, sizeof tmp - 1, tmp, NULL) != CL_SUCCESS) tmp[0] = '\0';
    tmp[sizeof tmp - 1] = '\0';
    size_t n = copy_cut(buf, size, tmp); /* long strings are cut: they are only shown */
    /* drivers pad names with spaces */
    while (n && buf[n - 1] == ' ') buf[--n] = '\0';
}

static size_t cache_limit(cl_ulong global_mem)
{
    const char *s = getenv("AG_OPENCL_CACHE_MB");
    char *end;
    long v = s && *s ? strtol(s, &end, 10) : -1;
    if (s && *s && v >= 0 && *end == '\0') return (size_t)v << 20;
    size_t limit = (size_t)(global_mem / 4);
    return limit < ((size_t)2048 << 20) ? limit : (size_t)2048 << 20;
}

static ag_status create_one(cl_platform_id platform, cl_device_id device, ocl_ctx **out)
{
    ocl_ctx *c = calloc(1, sizeof *c);
    if (!c) return ag_set_error(AG_ERR_OOM, "opencl: out of host memory");
    c->platform = platform;
    c->device = device;
    info_str(device, CL_DEVICE_NAME, c->name, sizeof c->name);
    info_str(device, CL_DEVICE_VENDOR, c->vendor, sizeof c->vendor);
    info_str(device, CL_DRIVER_VERSION, c->driver, sizeof c->driver);
    info_str(device, CL_DEVICE_VERSION, c->version, sizeof c->version);
    char pname[1024] = "";
    if (ocl.clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL) != CL_SUCCESS)
        pname[0] = '\0';
    copy_cut(c->platform_name, sizeof c->platform_name, pname);
    cl_bool unified = CL_FALSE;
    ocl.clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof c->type, &c->type, NULL);
    ocl.clGetDeviceInfo(device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof c->global_mem, &c->global_mem, NULL);
    ocl.clGetDeviceInfo(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof c->max_alloc, &c->max_alloc, NULL);
    ocl.clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof c->compute_units, &c->compute_units, NULL);
    ocl.clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof c->max_wg, &c->max_wg, NULL);
    ocl.clGetDeviceInfo(device, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL);
    c->unified_memory = unified == CL_TRUE;
    /* correctly rounded / and sqrt where the device offers them: closer to the CPU */
    cl_device_fp_config fp = 0;
    ocl.clGetDeviceInfo(device, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
    snprintf(c->build_options, sizeof c->build_options, "-cl-std=CL1.2%s",
             (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) ? " -cl-fp32-correctly-rounded-divide-sqrt" : "");
    ocl.clGetDeviceInfo(device, CL_DEVICE_VENDOR_ID, sizeof c->vendor_id, &c->vendor_id, NULL);
    char ext[4096] = "";
    if (ocl.clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, sizeof ext - 1, ext, NULL) != CL_SUCCESS) ext[0] = '\0';
    ext[sizeof ext - 1] = '\0';
    /* CL_DEVICE_UUID_KHR: matches Vulkan's deviceUUID for the same GPU */
    if (strstr(ext, "cl_khr_device_uuid"))
        c->has_uuid = ocl.clGetDeviceInfo(device, 0x106A, sizeof c->uuid, c->uuid, NULL) == CL_SUCCESS;
    if (c->max_wg == 0) c->max_wg = 1;
    /* AG_OPENCL_MAX_WG=n: every kernel limited to n work-items, as register-heavy
     * kernels are on many mobile GPUs, so PoCL runs those paths too */
    const char *cap = getenv("AG_OPENCL_MAX_WG");
    if (cap && atoi(cap) > 0 && (size_t)atoi(cap) < c->max_wg) c->wg_cap = (size_t)atoi(cap);
    c->wg = c->max_wg < 256 ? c->max_wg : 256;
    /* AG_OPENCL_LOCAL_KB=n: kernels get at most n KiB of local memory (the tiled
     * ones need up to 17), as on small GPUs */
    ocl.clGetDeviceInfo(device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof c->local_mem, &c->local_mem, NULL);
    const char *lkb = getenv("AG_OPENCL_LOCAL_KB");
    if (lkb && atoi(lkb) > 0 && (cl_ulong)atoi(lkb) * 1024 < c->local_mem) c->local_mem = (cl_ulong)atoi(lkb) * 1024;

    /* OpenCL C 1.2 is what the kernels are written in */
    int major = 0, minor = 0;
    if (sscanf(c->version, "OpenCL %d.%d", &major, &minor) != 2 || major * 10 + minor < 12) {
        ag_status s = ag_set_error(AG_ERR_UNSUPPORTED, "opencl: %s reports '%s'; OpenCL 1.2 is needed",
                                   c->name, c->version);
        free(c);
        return s;
    }
    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)platform, 0};
    c->context = ocl.clCreateContext(props, 1, &device, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        free(c);
        return ocl_check(err, "clCreateContext");
    }
    c->queue = ocl.clCreateCommandQueue(c->context, device, 0, &err);
    if (err == CL_SUCCESS)
        c->dummy = ocl.clCreateBuffer(c->context, CL_MEM_READ_WRITE, 16, NULL, &err);
    if (err != CL_SUCCESS) {
        ag_status s = ocl_check(err, "creating a queue");
        if (c->queue) ocl.clReleaseCommandQueue(c->queue);
        ocl.clReleaseContext(c->context);
        free(c);
        return s;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->cache_lock, NULL);
    c->cache_limit = cache_limit(c->global_mem);
    *out = c;
    return AG_OK;
}

int ocl_create_all(const ag_backend_i *iface, ocl_ctx **out, int max)
{
    (void)iface;
    if (ocl_load() != AG_OK) return 0;
    cl_platform_id plats[OCL_MAX_PLATFORMS];
    cl_uint np = 0;
    cl_int err = ocl.clGetPlatformIDs(OCL_MAX_PLATFORMS, plats, &np);
    if (err != CL_SUCCESS || np == 0) {
        ocl_check(err != CL_SUCCESS ? err : CL_DEVICE_NOT_FOUND, "no platform");
        return 0;
    }
    if (np > OCL_MAX_PLATFORMS) np = OCL_MAX_PLATFORMS;
    int n = 0;
    for (cl_uint p = 0; p < np && n < max; p++) {
        cl_device_id devs[OCL_MAX_PLATFORM_DEVICES];
        cl_uint nd = 0;
        if (ocl.clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, OCL_MAX_PLATFORM_DEVICES, devs, &nd) != CL_SUCCESS)
            continue;
        if (nd > OCL_MAX_PLATFORM_DEVICES) nd = OCL_MAX_PLATFORM_DEVICES;
        for (cl_uint d = 0; d < nd && n < max; d++)
            if (create_one(plats[p], devs[d], &out[n]) == AG_OK) n++;
    }
    return n;
}

void ocl_destroy(void *ctx)
{
    ocl_ctx *c = ctx;
    if (!c) return;
    if (c->queue) ocl.clFinish(c->queue);
    ocl_pending_release(c); /* finished, or the queue is lost with them */
    ocl_programs_free(c);
    ocl_cache_flush(c);
    if (c->gemm_temp) ocl.clReleaseMemObject(c->gemm_temp);
    if (c->dummy) ocl.clReleaseMemObject(c->dummy);
    if (c->queue) ocl.clReleaseCommandQueue(c->queue);
    if (c->context) ocl.clReleaseContext(c->context);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->cache_lock);
    free(c);
}

static const char *type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return "gpu";
    if (t & CL_DEVICE_TYPE_CPU) return "cpu";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    return "other";
}

void ocl_describe(void *ctx, char *buf, size_t size)
{
    const ocl_ctx *c = ctx;
    snprintf(buf, size, "%s (%s, %s)", c->name, c->platform_name, type_name(c->type));
}

void ocl_details(void *ctx, char *buf, size_t size)
{
    const ocl_ctx *c = ctx;
    const char *why = NULL;
    char gemm[160];
    if (c->clblast_failed) snprintf(gemm, sizeof gemm, "own kernel (CLBlast failed here)");
    else if (ocl_clblast(&why)) snprintf(gemm, sizeof gemm, "CLBlast");
    else snprintf(gemm, sizeof gemm, "own kernel (%s)", why);
    snprintf(buf, size,
             "vendor: %s; version: %s; driver: %s; type: %s; memory: %.1f GiB (largest buffer "
             "%.1f GiB)%s; compute units: %u; max work-group: %zu; local memory: %llu KiB; gemm: %s",
             c->vendor, c->version, c->driver, type_name(c->type), c->global_mem / 1073741824.0,
             c->max_alloc / 1073741824.0, c->unified_memory ? ", shared with the host" : "",
             c->compute_units, c->max_wg, (unsigned long long)(c->local_mem / 1024), gemm);
}

void ocl_props(void *ctx, ag_backend_props *out)
{
    const ocl_ctx *c = ctx;
    ag_device_kind kind = AG_DEVICE_OTHER;
    if (c->type & CL_DEVICE_TYPE_GPU) kind = c->unified_memory ? AG_DEVICE_INTEGRATED_GPU : AG_DEVICE_DISCRETE_GPU;
    else if (c->type & CL_DEVICE_TYPE_CPU) kind = AG_DEVICE_SOFTWARE; /* PoCL and the like: the CPU backend is native */
    *out = (ag_backend_props){.kind = kind, .memory_bytes = c->global_mem, .vendor_id = c->vendor_id,
                              .has_uuid = c->has_uuid};
    memcpy(out->uuid, c->uuid, sizeof out->uuid);
}
