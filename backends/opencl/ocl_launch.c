/* Kernel launches and the view descriptors kernels index with. */
#include <stdio.h>

#include "ocl.h"

ag_status ocl_run(ocl_ctx *c, const char *prog, const char *kernel, int dims,
                  const size_t *global, const size_t *local, int nargs, const ocl_arg *args)
{
    for (int d = 0; d < dims; d++)
        if (global[d] == 0) return AG_OK;
    ag_status s = AG_OK;
    pthread_mutex_lock(&c->lock);
    cl_kernel k = ocl_kernel(c, prog, kernel);
    if (!k) {
        s = AG_ERR_DEVICE;
        pthread_mutex_unlock(&c->lock);
        return ag_last_status() ? ag_last_status() : s;
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
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

size_t ocl_kernel_wg(ocl_ctx *c, const char *prog, const char *kernel)
{
    size_t wg = 0;
    pthread_mutex_lock(&c->lock);
    cl_kernel k = ocl_kernel(c, prog, kernel);
    if (k && ocl.clGetKernelWorkGroupInfo(k, c->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg,
                                          NULL) != CL_SUCCESS)
        wg = c->max_wg;
    pthread_mutex_unlock(&c->lock);
    if (wg > c->max_wg) wg = c->max_wg;
    if (c->wg_cap && wg > c->wg_cap) wg = c->wg_cap;
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
    size_t wg = c->wg, lim = ocl_kernel_wg(c, prog, kernel);
    if (lim == 0) return ag_last_status() ? ag_last_status() : AG_ERR_DEVICE;
    while (wg > 1 && wg > lim) wg /= 2;
    size_t cap = (size_t)(c->compute_units ? c->compute_units : 1) * wg * 16;
    size_t global = (n + wg - 1) / wg * wg;
    if (global > cap) global = cap;
    return ocl_run(c, prog, kernel, 1, &global, &wg, nargs, args);
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
