/* OpenCL backend internals. The ICD loader and CLBlast are opened with dlopen
 * at run time (ocl_loader.c): the headers give types and prototypes only, so a
 * machine without OpenCL still runs anygrad on its other backends. */
#ifndef AG_OCL_H
#define AG_OCL_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <pthread.h>
#include <stdbool.h>

#include "backend.h"

/* The OpenCL entry points the backend uses, resolved from libOpenCL.so.1. */
#define OCL_API_LIST(X)                                                                   \
    X(clGetPlatformIDs) X(clGetPlatformInfo) X(clGetDeviceIDs) X(clGetDeviceInfo)         \
    X(clCreateContext) X(clReleaseContext) X(clCreateCommandQueue)                        \
    X(clReleaseCommandQueue) X(clCreateBuffer) X(clReleaseMemObject)                      \
    X(clEnqueueWriteBuffer) X(clEnqueueReadBuffer) X(clEnqueueCopyBuffer)                 \
    X(clCreateProgramWithSource) X(clCreateProgramWithBinary) X(clBuildProgram)           \
    X(clGetProgramInfo) X(clGetProgramBuildInfo) X(clReleaseProgram) X(clCreateKernel)    \
    X(clReleaseKernel) X(clSetKernelArg) X(clEnqueueNDRangeKernel) X(clFinish)            \
    X(clFlush) X(clGetKernelWorkGroupInfo)

typedef struct ocl_api {
#define OCL_API_FIELD(fn) __typeof__(fn) *fn;
    OCL_API_LIST(OCL_API_FIELD)
#undef OCL_API_FIELD
} ocl_api;

/* The loaded API (NULL members until ocl_load succeeds). */
extern ocl_api ocl;
/* Opens libOpenCL.so.1 once; AG_OK or AG_ERR_UNSUPPORTED with the reason. */
ag_status ocl_load(void);

/* CLBlast, loaded on first GEMM; NULL members when absent or AG_OPENCL_CLBLAST=0. */
typedef struct ocl_clblast_api {
    int (*sgemm_strided_batched)(int layout, int ta, int tb, size_t m, size_t n, size_t k,
                                 float alpha, cl_mem a, size_t a_off, size_t a_ld, size_t a_stride,
                                 cl_mem b, size_t b_off, size_t b_ld, size_t b_stride, float beta,
                                 cl_mem c, size_t c_off, size_t c_ld, size_t c_stride,
                                 size_t batch, cl_command_queue *queue, cl_event *event);
    int (*sgemm_with_temp)(int layout, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                           cl_mem a, size_t a_off, size_t a_ld, cl_mem b, size_t b_off,
                           size_t b_ld, float beta, cl_mem c, size_t c_off, size_t c_ld,
                           cl_command_queue *queue, cl_event *event, cl_mem temp);
    int (*sgemm_temp_size)(int layout, int ta, int tb, size_t m, size_t n, size_t k,
                           size_t a_off, size_t a_ld, size_t b_off, size_t b_ld, size_t c_off,
                           size_t c_ld, cl_command_queue *queue, size_t *bytes);
} ocl_clblast_api;
/* NULL when CLBlast cannot be used (the reason in *why when given). */
const ocl_clblast_api *ocl_clblast(const char **why);

struct ag_buffer {
    cl_mem mem;
    size_t bytes;        /* what was asked for */
    size_t cap;          /* what the cl_mem holds (a size class) */
    ag_buffer *next;     /* in the free-buffer cache */
};

#define OCL_CACHE_BUCKETS 64

typedef struct ocl_program ocl_program; /* ocl_program.c */

/* One OpenCL device: its own context and in-order queue. */
typedef struct ocl_ctx {
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    pthread_mutex_t lock;    /* kernel arguments are shared state: one launch at a time */
    char name[96];           /* device name as the driver reports it */
    char platform_name[64];
    char vendor[64];
    char driver[128];         /* driver version: part of the program cache key */
    char version[128];       /* OpenCL version string of the device */
    cl_device_type type;
    cl_ulong global_mem, max_alloc;
    cl_uint compute_units;
    size_t max_wg;           /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
    size_t wg;               /* work-group size used by 1-D launches */
    size_t wg_cap;           /* AG_OPENCL_MAX_WG, 0: none */
    cl_ulong local_mem;      /* CL_DEVICE_LOCAL_MEM_SIZE, or AG_OPENCL_LOCAL_KB if less */
    bool unified_memory;
    char build_options[96];  /* part of the program cache key */
    cl_uint vendor_id;
    cl_uchar uuid[16];       /* cl_khr_device_uuid, when the driver has it */
    bool has_uuid;
    cl_mem dummy;            /* bound where an optional operand is absent */
    ocl_program *programs;   /* built on first use */
    bool clblast_failed;     /* CLBlast returned an error once: the own GEMM from then on */
    cl_mem gemm_temp;        /* CLBlast's temporary buffer, grown on demand */
    size_t gemm_temp_bytes;
    pthread_mutex_t cache_lock;
    ag_buffer *cache[OCL_CACHE_BUCKETS]; /* freed buffers by size class */
    size_t cache_bytes, cache_limit;
    /* host copies of uploads in flight (non-blocking writes read them until
     * they complete); freed after the next command that waits (under lock) */
    struct ocl_pending *pending;
    size_t pending_bytes;
} ocl_ctx;

/* Frees the copies of uploads that have completed: call after a blocking
 * command or clFinish on c->queue (in-order: everything before it is done),
 * with c->lock held. */
void ocl_pending_release(ocl_ctx *c);

/* ---- errors ---------------------------------------------------------------- */

const char *ocl_error_name(cl_int err);
/* AG_OK on CL_SUCCESS; otherwise sets "opencl <what>: <error>" (AG_ERR_OOM for
 * allocation failures, AG_ERR_DEVICE otherwise) and returns it. */
ag_status ocl_check(cl_int err, const char *what);

/* AG_OPENCL_STATS=1: commands of every OpenCL device counted and printed to
 * stderr at exit (ocl_launch.c): kernel launches, CLBlast calls, uploads,
 * downloads, host waits (every blocking transfer and sync). */
typedef enum {
    OCL_STAT_LAUNCH, OCL_STAT_LIBRARY, OCL_STAT_UPLOAD, OCL_STAT_DOWNLOAD, OCL_STAT_WAIT,
    OCL_STAT_COUNT
} ocl_stat;
void ocl_stats_init(void);
void ocl_count(ocl_stat which);

/* ---- programs (ocl_program.c) ---------------------------------------------- */

/* Kernel `kernel` of kernels/<prog>.cl, built (or loaded from the disk cache) on
 * first use; *wg (unless NULL) gets its work-group limit, queried once then.
 * Call with c->lock held. NULL + error on failure. */
cl_kernel ocl_kernel(ocl_ctx *c, const char *prog, const char *kernel, size_t *wg);
void ocl_programs_free(ocl_ctx *c);

/* Embedded kernel sources, generated from the .cl files at build time. */
typedef struct ocl_source {
    const char *name;
    const char *text;
} ocl_source;
extern const ocl_source ocl_sources[];
extern const int ocl_nsources;

/* ---- launching (ocl_launch.c) ---------------------------------------------- */

/* A kernel argument: size and address, as clSetKernelArg takes them; ptr NULL
 * with a size reserves local memory. */
typedef struct ocl_arg {
    size_t size;
    const void *ptr;
} ocl_arg;
#define OA(x) ((ocl_arg){sizeof(x), &(x)})
#define OA_LOCAL(bytes) ((ocl_arg){(bytes), NULL})

/* Enqueues kernel over `dims` dimensions. local may be NULL (driver's choice). */
ag_status ocl_run(ocl_ctx *c, const char *prog, const char *kernel, int dims,
                  const size_t *global, const size_t *local, int nargs, const ocl_arg *args);
/* 1-D launch of at least n work items (rounded up to c->wg, capped; kernels
 * loop with a grid stride). Nothing happens when n == 0. */
ag_status ocl_run1(ocl_ctx *c, const char *prog, const char *kernel, size_t n, int nargs,
                   const ocl_arg *args);
/* One work group of `wg` items per group index in [0, groups). */
ag_status ocl_run_groups(ocl_ctx *c, const char *prog, const char *kernel, size_t groups,
                         size_t wg, int nargs, const ocl_arg *args);
#define OCL_ARGS(...) (int)(sizeof((ocl_arg[]){__VA_ARGS__}) / sizeof(ocl_arg)), (ocl_arg[]){__VA_ARGS__}

/* The largest work group `kernel` of `prog` may run with here: the device's
 * and the compiled kernel's limit (CL_KERNEL_WORK_GROUP_SIZE: register-heavy
 * kernels get less than the device maximum on many mobile GPUs), capped by
 * AG_OPENCL_MAX_WG when set. 0, with the error set, when the kernel cannot be
 * built. */
size_t ocl_kernel_wg(ocl_ctx *c, const char *prog, const char *kernel);
/* Work-group size for a reduction kernel: a power of two <= 256 it may run
 * with; 0 when it cannot be built, and then ocl_build_status() says why. */
size_t ocl_reduce_wg(ocl_ctx *c, const char *prog, const char *kernel);
/* For a kernel with a fallback (the tiled GEMM and convolution kernels, each a
 * program of its own): its work-group limit, or 0 with no error when its
 * program does not build on this device; the failure is remembered (no
 * rebuild is tried on this device). */
size_t ocl_kernel_wg_optional(ocl_ctx *c, const char *prog, const char *kernel);
ag_status ocl_build_status(void);

/* Kernels take shapes and strides as ag_shape32/ag_strides32 (kernels/common.cl
 * declares the same structs): int32 indexing, so a view addresses < 2^31 elements. */
#define OCL_MAX_OPS 4
/* Describes nops views of v[0]'s shape for an element-wise kernel: size-1 axes
 * dropped, axes that every operand lays out as one merged. Fails with
 * AG_ERR_UNSUPPORTED when an index does not fit in int32. */
ag_status ocl_ew_layout(const char *op, int nops, const ag_view *const *v, ag_shape32 *shape,
                        ag_strides32 *st);
/* A contiguous view's element offset as a kernel argument, checked for int32. */
ag_status ocl_offset(const char *op, const ag_view *v, cl_int *off);
/* The buffer to bind for an optional view: its own or the context's dummy. */
cl_mem ocl_mem_or_dummy(const ocl_ctx *c, const ag_view *v);
/* Validates a view: non-NULL with a buffer, ndim in range, the wanted dtype. */
ag_status ocl_check_view(const char *op, const char *what, const ag_view *v, ag_dtype dtype);

/* ---- devices (ocl_device.c) ------------------------------------------------- */

/* Every OpenCL device of every platform, one context each; returns how many were
 * created (0 when OpenCL is absent, with the reason in the thread's error). */
int ocl_create_all(const ag_backend_i *iface, ocl_ctx **out, int max);
void ocl_destroy(void *ctx);
void ocl_describe(void *ctx, char *buf, size_t size);
void ocl_details(void *ctx, char *buf, size_t size);
void ocl_props(void *ctx, ag_backend_props *out);

/* ---- the contract (backend.h), implemented one family per file ------------ */

AG_BACKEND_DECLARE(ocl);
/* Drops the freed buffers ocl_free keeps for reuse (ocl_memory.c). */
void ocl_cache_flush(ocl_ctx *c);

#endif /* AG_OCL_H */
