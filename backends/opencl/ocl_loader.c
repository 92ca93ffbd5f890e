/* Opens the OpenCL ICD loader and CLBlast with dlopen: neither is a link-time
 * dependency, so a binary built with this backend starts anywhere. */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl.h"

ocl_api ocl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256];

/* ---- live objects ------------------------------------------------------------
 * The create and release entry points in `ocl` are wrappers that count every
 * object the backend makes until it is released (ag_debug_live_cl_objects).
 * The backend never retains an object; a clRetain* added to OCL_API_LIST must
 * count as well. Enqueues pass no event, so there are none to count. */
static ocl_api real;
static _Atomic int64_t live[AG_CL_OBJECT_COUNT];

int64_t ag_opencl_live_objects(ag_cl_object type) { return atomic_load(&live[type]); }

/* Counts a new object (any the driver hands out, even with an error code: the
 * caller must release it); err may be NULL, as the API allows. */
static void *made(void *obj, cl_int e, cl_int *err, ag_cl_object type)
{
    if (err) *err = e;
    if (obj) atomic_fetch_add(&live[type], 1);
    return obj;
}

static cl_int released(cl_int e, ag_cl_object type)
{
    if (e == CL_SUCCESS) atomic_fetch_sub(&live[type], 1);
    return e;
}

static cl_context CL_API_CALL w_create_context(const cl_context_properties *props, cl_uint n,
                                               const cl_device_id *devs,
                                               void(CL_CALLBACK *notify)(const char *, const void *,
                                                                         size_t, void *),
                                               void *user, cl_int *err)
{
    cl_int e = CL_SUCCESS;
    void *obj = real.clCreateContext(props, n, devs, notify, user, &e);
    return made(obj, e, err, AG_CL_CONTEXT);
}

static cl_command_queue CL_API_CALL w_create_queue(cl_context c, cl_device_id d,
                                                   cl_command_queue_properties p, cl_int *err)
{
    cl_int e = CL_SUCCESS;
    void *obj = real.clCreateCommandQueue(c, d, p, &e);
    return made(obj, e, err, AG_CL_QUEUE);
}

static cl_mem CL_API_CALL w_create_buffer(cl_context c, cl_mem_flags f, size_t size, void *host,
                                          cl_int *err)
{
    cl_int e = CL_SUCCESS;
    void *obj = real.clCreateBuffer(c, f, size, host, &e);
    return made(obj, e, err, AG_CL_MEM);
}

static cl_program CL_API_CALL w_program_source(cl_context c, cl_uint n, const char **texts,
                                               const size_t *lens, cl_int *err)
{
    cl_int e = CL_SUCCESS;
    void *obj = real.clCreateProgramWithSource(c, n, texts, lens, &e);
    return made(obj, e, err, AG_CL_PROGRAM);
}

static cl_program CL_API_CALL w_program_binary(cl_context c, cl_uint n, const cl_device_id *devs,
                                               const size_t *lens, const unsigned char **bins,
                                               cl_int *status, cl_int *err)
{
    cl_int e = CL_SUCCESS;
    void *obj = real.clCreateProgramWithBinary(c, n, devs, lens, bins, status, &e);
    return made(obj, e, err, AG_CL_PROGRAM);
}

static cl_kernel CL_API_CALL w_create_kernel(cl_program p, const char *name, cl_int *err)
{
    cl_int e = CL_SUCCESS;
    void *obj = real.clCreateKernel(p, name, &e);
    return made(obj, e, err, AG_CL_KERNEL);
}

static cl_int CL_API_CALL w_release_context(cl_context c)
{
    return released(real.clReleaseContext(c), AG_CL_CONTEXT);
}
static cl_int CL_API_CALL w_release_queue(cl_command_queue q)
{
    return released(real.clReleaseCommandQueue(q), AG_CL_QUEUE);
}
static cl_int CL_API_CALL w_release_mem(cl_mem m)
{
    return released(real.clReleaseMemObject(m), AG_CL_MEM);
}
static cl_int CL_API_CALL w_release_program(cl_program p)
{
    return released(real.clReleaseProgram(p), AG_CL_PROGRAM);
}
static cl_int CL_API_CALL w_release_kernel(cl_kernel k)
{
    return released(real.clReleaseKernel(k), AG_CL_KERNEL);
}

static void wrap(ocl_api *api)
{
    real = *api;
    api->clCreateContext = w_create_context;
    api->clCreateCommandQueue = w_create_queue;
    api->clCreateBuffer = w_create_buffer;
    api->clCreateProgramWithSource = w_program_source;
    api->clCreateProgramWithBinary = w_program_binary;
    api->clCreateKernel = w_create_kernel;
    api->clReleaseContext = w_release_context;
    api->clReleaseCommandQueue = w_release_queue;
    api->clReleaseMemObject = w_release_mem;
    api->clReleaseProgram = w_release_program;
    api->clReleaseKernel = w_release_kernel;
}

static void load(void)
{
    /* AG_OPENCL_LIBRARY names another loader (or hides it, for tests) */
    const char *lib = getenv("AG_OPENCL_LIBRARY");
    const char *names[] = {lib && *lib ? lib : "libOpenCL.so.1", lib && *lib ? NULL : "libOpenCL.so"};
    void *h = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && names[i] && !h; i++)
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_error, sizeof load_error, "cannot load the OpenCL loader (%s)", dlerror());
        return;
    }
    ocl_api api;
    memset(&api, 0, sizeof api);
#define OCL_RESOLVE(fn)                                                                   \
    *(void **)&api.fn = dlsym(h, #fn);                                                    \
    if (!api.fn) {                                                                        \
        snprintf(load_error, sizeof load_error, "libOpenCL.so.1 lacks %s", #fn);         \
        dlclose(h);                                                                       \
        return;                                                                           \
    }
    OCL_API_LIST(OCL_RESOLVE)
#undef OCL_RESOLVE
    wrap(&api);
    ocl = api; /* kept open for the life of the process */
}

ag_status ocl_load(void)
{
    const char *off = getenv("AG_OPENCL");
    if (off && strcmp(off, "0") == 0)
        return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: disabled by AG_OPENCL=0");
    pthread_once(&load_once, load);
    if (!ocl.clGetPlatformIDs) return ag_set_error(AG_ERR_UNSUPPORTED, "opencl: %s", load_error);
    return AG_OK;
}

/* ---- CLBlast ---------------------------------------------------------------- */

static pthread_once_t clblast_once = PTHREAD_ONCE_INIT;
static ocl_clblast_api clblast;
static bool clblast_ok;
static char clblast_error[256];

static void load_clblast(void)
{
    const char *off = getenv("AG_OPENCL_CLBLAST");
    if (off && strcmp(off, "0") == 0) {
        snprintf(clblast_error, sizeof clblast_error, "disabled by AG_OPENCL_CLBLAST=0");
        return;
    }
    const char *names[] = {"libclblast.so.1", "libclblast.so"};
    void *h = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(clblast_error, sizeof clblast_error, "cannot load libclblast.so.1 (%s)", dlerror());
        return;
    }
    *(void **)&clblast.sgemm_strided_batched = dlsym(h, "CLBlastSgemmStridedBatched");
    *(void **)&clblast.sgemm_with_temp = dlsym(h, "CLBlastSgemmWithTempBuffer");
    *(void **)&clblast.sgemm_temp_size = dlsym(h, "CLBlastSGemmTempBufferSize");
    if (!clblast.sgemm_strided_batched || !clblast.sgemm_with_temp || !clblast.sgemm_temp_size) {
        snprintf(clblast_error, sizeof clblast_error, "libclblast.so.1 lacks the SGEMM entry points");
        dlclose(h);
        return;
    }
    clblast_ok = true;
}

const ocl_clblast_api *ocl_clblast(const char **why)
{
    pthread_once(&clblast_once, load_clblast);
    if (why) *why = clblast_ok ? NULL : clblast_error;
    return clblast_ok ? &clblast : NULL;
}

/* ---- errors ----------------------------------------------------------------- */

const char *ocl_error_name(cl_int err)
{
    static const struct { cl_int code; const char *name; } names[] = {
        {CL_SUCCESS, "CL_SUCCESS"},
        {CL_DEVICE_NOT_FOUND, "CL_DEVICE_NOT_FOUND"},
        {CL_DEVICE_NOT_AVAILABLE, "CL_DEVICE_NOT_AVAILABLE"},
        {CL_COMPILER_NOT_AVAILABLE, "CL_COMPILER_NOT_AVAILABLE"},
        {CL_MEM_OBJECT_ALLOCATION_FAILURE, "CL_MEM_OBJECT_ALLOCATION_FAILURE"},
        {CL_OUT_OF_RESOURCES, "CL_OUT_OF_RESOURCES"},
        {CL_OUT_OF_HOST_MEMORY, "CL_OUT_OF_HOST_MEMORY"},
        {CL_BUILD_PROGRAM_FAILURE, "CL_BUILD_PROGRAM_FAILURE"},
        {CL_INVALID_VALUE, "CL_INVALID_VALUE"},
        {CL_INVALID_DEVICE, "CL_INVALID_DEVICE"},
        {CL_INVALID_BINARY, "CL_INVALID_BINARY"},
        {CL_INVALID_BUILD_OPTIONS, "CL_INVALID_BUILD_OPTIONS"},
        {CL_INVALID_PROGRAM_EXECUTABLE, "CL_INVALID_PROGRAM_EXECUTABLE"},
        {CL_INVALID_KERNEL_NAME, "CL_INVALID_KERNEL_NAME"},
        {CL_INVALID_KERNEL_ARGS, "CL_INVALID_KERNEL_ARGS"},
        {CL_INVALID_ARG_INDEX, "CL_INVALID_ARG_INDEX"},
        {CL_INVALID_ARG_VALUE, "CL_INVALID_ARG_VALUE"},
        {CL_INVALID_ARG_SIZE, "CL_INVALID_ARG_SIZE"},
        {CL_INVALID_WORK_GROUP_SIZE, "CL_INVALID_WORK_GROUP_SIZE"},
        {CL_INVALID_WORK_ITEM_SIZE, "CL_INVALID_WORK_ITEM_SIZE"},
        {CL_INVALID_GLOBAL_WORK_SIZE, "CL_INVALID_GLOBAL_WORK_SIZE"},
        {CL_INVALID_BUFFER_SIZE, "CL_INVALID_BUFFER_SIZE"},
        {CL_INVALID_MEM_OBJECT, "CL_INVALID_MEM_OBJECT"},
        {CL_INVALID_COMMAND_QUEUE, "CL_INVALID_COMMAND_QUEUE"},
        {CL_INVALID_CONTEXT, "CL_INVALID_CONTEXT"},
        {CL_INVALID_PLATFORM, "CL_INVALID_PLATFORM"},
        {CL_INVALID_OPERATION, "CL_INVALID_OPERATION"},
        {CL_MISALIGNED_SUB_BUFFER_OFFSET, "CL_MISALIGNED_SUB_BUFFER_OFFSET"},
        {CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST, "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST"},
        {-1001, "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL driver installed)"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].code == err) return names[i].name;
    static _Thread_local char buf[32];
    snprintf(buf, sizeof buf, "OpenCL error %d", (int)err);
    return buf;
}

ag_status ocl_check(cl_int err, const char *what)
{
    if (err == CL_SUCCESS) return AG_OK;
    ag_status s = (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
                   err == CL_OUT_OF_HOST_MEMORY || err == CL_INVALID_BUFFER_SIZE)
                      ? AG_ERR_OOM
                      : AG_ERR_DEVICE;
    return ag_set_error(s, "opencl %s: %s", what, ocl_error_name(err));
}
