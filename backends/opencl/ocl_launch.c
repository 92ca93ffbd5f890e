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

ag_status ocl_run1(ocl_ctx *c, const char *prog, const char *kernel, size_t n, int nargs,
                   const ocl_arg *args)
{
    if (n == 0) return AG_OK;
    size_t wg = c->wg;
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

size_t ocl_reduce_wg(const ocl_ctx *c)
{
    size_t wg = 256;
    while (wg > 1 && wg > c->max_wg) wg /= 2;
    return wg;
}

int64_t ocl_numel(const ag_view *v)
{
    int64_t n = 1;
    for (int d = 0; d < v->ndim; d++) n *= v->shape[d];
    return n;
}

cl_mem ocl_mem_or_dummy(const ocl_ctx *c, const ag_view *v)
{
    return v && v->buf ? v->buf->mem : c->dummy;
}

ag_status ocl_check_view(const char *op, const char *what, const ag_view *v, ag_dtype dtype)
{
    if (!v || !v->buf || v->ndim < 0 || v->ndim > AG_MAX_DIMS)
        return ag_set_error(AG_ERR_ARG, "opencl %s: %s is not a valid view", op, what);
    if (v->dtype != dtype)
        return ag_set_error(AG_ERR_DTYPE, "opencl %s: %s is %s, expected %s", op, what,
                            ag_dtype_name(v->dtype), ag_dtype_name(dtype));
    return AG_OK;
}

/* Largest element index a view can touch, +1; views never have negative strides. */
static int64_t view_extent(const ag_view *v)
{
    int64_t end = v->offset + 1;
    for (int d = 0; d < v->ndim; d++)
        if (v->shape[d] > 0) end += (v->shape[d] - 1) * (v->stride[d] < 0 ? -v->stride[d] : v->stride[d]);
    return end;
}

static ag_status too_large(const char *op)
{
    return ag_set_error(AG_ERR_UNSUPPORTED,
                        "opencl %s: tensor addresses 2^31 elements or more; the OpenCL kernels "
                        "index with 32-bit integers",
                        op);
}

ag_status ocl_offset(const char *op, const ag_view *v, cl_int *off)
{
    if (view_extent(v) > INT32_MAX) return too_large(op);
    *off = (cl_int)v->offset;
    return AG_OK;
}

ag_status ocl_ew_layout(const char *op, int nops, const ag_view *const *v, ocl_shape *shape,
                        ocl_strides *st)
{
    const ag_view *y = v[0];
    int64_t numel = ocl_numel(y);
    if (numel > INT32_MAX) return too_large(op);
    for (int k = 0; k < nops; k++) {
        if (view_extent(v[k]) > INT32_MAX) return too_large(op);
        st[k].off = (cl_int)v[k]->offset;
        for (int d = 0; d < AG_MAX_DIMS; d++) st[k].s[d] = 0;
    }
    for (int d = 0; d < AG_MAX_DIMS; d++) shape->n[d] = 1;
    int nd = 0;
    for (int d = 0; d < y->ndim; d++) {
        if (y->shape[d] == 1) continue;
        bool merge = nd > 0;
        for (int k = 0; k < nops && merge; k++)
            merge = (int64_t)st[k].s[nd - 1] == v[k]->stride[d] * y->shape[d];
        if (merge) {
            shape->n[nd - 1] *= (cl_int)y->shape[d];
            for (int k = 0; k < nops; k++) st[k].s[nd - 1] = (cl_int)v[k]->stride[d];
        } else {
            shape->n[nd] = (cl_int)y->shape[d];
            for (int k = 0; k < nops; k++) st[k].s[nd] = (cl_int)v[k]->stride[d];
            nd++;
        }
    }
    shape->nd = nd;
    shape->numel = (cl_int)numel;
    return AG_OK;
}
