/* Kernel launches and the view descriptors kernels index with. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl.h"

static _Atomic uint64_t stats[OCL_STAT_COUNT];
static atomic_bool stats_on;

void ocl_count(ocl_stat which)
{
    if (atomic_load_explicit(&stats_on, memory_order_relaxed))
        atomic_fetch_add_explicit(&stats[which], 1, memory_order_relaxed);
}

static void print_stats(void)
{
    fprintf(stderr, "anygrad opencl: %llu launches, %llu library calls, %llu uploads, %llu downloads, "
                    "%llu host waits\n",
            (unsigned long long)stats[OCL_STAT_LAUNCH], (unsigned long long)stats[OCL_STAT_LIBRARY],
            (unsigned long long)stats[OCL_STAT_UPLOAD], (unsigned long long)stats[OCL_STAT_DOWNLOAD],
            (unsigned long long)stats[OCL_STAT_WAIT]);
}

void ocl_stats_init(void)
{
    const char *e = getenv("AG_OPENCL_STATS");
    bool was = false;
    if (e && strcmp(e, "1") == 0 && atomic_compare_exchange_strong(&stats_on, &was, true))
        atexit(print_stats);
}

/* Enqueues kernel; with n1 > 0 a 1-D grid-stride launch of at least n1 items,
 * shaped here from the kernel's own work-group limit (one lookup, one lock). */
static ag_status launch(ocl_ctx *c, const char *prog, const char *kernel, int dims,
                        const size_t *global, const size_t *local, size_t n1, int nargs,
                        const ocl_arg *args)
{
    ag_status s = AG_OK;
    pthread_mutex_lock(&c->lock);
    size_t lim = 0, g1, wg1;
    cl_kernel k = ocl_kernel(c, prog, kernel, &lim);
    if (!k) {
        pthread_mutex_unlock(&c->lock);
        return ocl_build_status();
    }
    if (n1) {
        wg1 = c->wg;
        while (wg1 > 1 && wg1 > lim) wg1 /= 2;
        size_t cap = (size_t)(c->compute_units ? c->compute_units : 1) * wg1 * 16;
        g1 = (n1 + wg1 - 1) / wg1 * wg1;
        if (g1 > cap) g1 = cap;
        global = &g1;
        local = &wg1;
    }
    char what[128];
    for (int i = 0; i < nargs && s == AG_OK; i++) {
        cl_int err = ocl.clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].ptr);
        if (err != CL_SUCCESS) {
            snprintf(what, sizeof what, "%s argument %d", kernel, i);
            s = ocl_check(err, what);
        }
    }
    if (s == AG_OK) {
        cl_int err = ocl.clEnqueueNDRangeKernel(c->queue, k, (cl_uint)dims, NULL, global, local, 0,
                                                NULL, NULL);
        snprintf(what, sizeof what, "launching %s", kernel);
        s = ocl_check(err, what);
        if (s == AG_OK) ocl_count(OCL_STAT_LAUNCH);
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

ag_status ocl_run(ocl_ctx *c, const char *prog, const char *kernel, int dims,
                  const size_t *global, const size_t *local, int nargs, const ocl_arg *args)
{
    for (int d = 0; d < dims; d++)
        if (global[d] == 0) return AG_OK;
    return launch(c, prog, kernel, dims, global, local, 0, nargs, args);
}

size_t ocl_kernel_wg(ocl_ctx *c, const char *prog, const char *kernel)
{
    size_t wg = 0;
    pthread_mutex_lock(&c->lock);
    ocl_kernel(c, prog, kernel, &wg);
    pthread_mutex_unlock(&c->lock);
    return wg;
}

size_t ocl_reduce_wg(ocl_ctx *c, const char *prog, const char *kernel)
{
    size_t lim = ocl_kernel_wg(c, prog, kernel), wg = 256;
    if (lim == 0) return 0;
    while (wg > 1 && wg > lim) wg /= 2;
    return wg;
}

ag_status ocl_build_status(void) { return ag_last_status() ? ag_last_status() : AG_ERR_DEVICE; }

ag_status ocl_run1(ocl_ctx *c, const char *prog, const char *kernel, size_t n, int nargs,
                   const ocl_arg *args)
{
    if (n == 0) return AG_OK;
    return launch(c, prog, kernel, 1, NULL, NULL, n, nargs, args);
}

ag_status ocl_run_groups(ocl_ctx *c, const char *prog, const char *kernel, size_t groups,
                         size_t wg, int nargs, const ocl_arg *args)
{
    size_t global = groups * wg;
    return ocl_run(c, prog, kernel, 1, &global, &wg, nargs, args);
}



cl_mem ocl_mem_or_dummy(const ocl_ctx *c, const ag_view *v)
{
    return v && v->buf ? v->buf->mem : c->dummy;
}

ag_status ocl_check_view(const char *op, const char *what, const ag_view *v, ag_dtype dtype)
{
    return ag_check_view("opencl", op, what, v, dtype);
}

ag_status ocl_offset(const char *op, const ag_view *v, cl_int *off)
{
    return ag_offset32("opencl", op, v, off);
}

ag_status ocl_ew_layout(const char *op, int nops, const ag_view *const *v, ag_shape32 *shape,
                        ag_strides32 *st)
{
    return ag_layout32("opencl", op, nops, v, shape, st);
}
