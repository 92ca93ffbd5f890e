/* The CPU backend's op table and thread-count policy. */
#include "cpu.h"
#include "cpu_isa.h"
#include "ops/unary_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* The CPU's model name from /proc/cpuinfo (Linux) and the kernels' ISA. */
static void cpu_describe(void *ctx, char *buf, size_t size)
{
    (void)ctx;
    char model[128] = "CPU", line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(model, sizeof model, "%s", colon + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f) fclose(f);
    snprintf(buf, size, "%s (%s)", model, cpu_isa_name(cpu_isa()));
}

static void cpu_details(void *ctx, char *buf, size_t size)
{
    (void)ctx;
    const int fixed = cpu_threads_fixed();
    if (fixed)
        snprintf(buf, size, "kernels: %s (AG_CPU_ISA overrides); threads: %d (AG_NUM_THREADS)",
                 cpu_isa_name(cpu_isa()), fixed);
    else
        snprintf(buf, size,
                 "kernels: %s (AG_CPU_ISA overrides); threads: %d of %d cores, fewer while other "
                 "work keeps cores busy (now %.1f; AG_NUM_THREADS fixes the count)",
                 cpu_isa_name(cpu_isa()), cpu_threads(), cpu_cores(), cpu_threads_load());
}

static void cpu_props(void *ctx, ag_backend_props *out)
{
    (void)ctx;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    *out = (ag_backend_props){.kind = AG_DEVICE_CPU,
                              .memory_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0};
}

/* The backend keeps no state: everything lives in the buffers. */
static void cpu_destroy(void *ctx) { (void)ctx; }

static void *cpu_host_data(void *ctx, ag_buffer *buf)
{
    (void)ctx;
    return buf ? buf->data : NULL;
}

static const ag_backend_i cpu_iface = {
    .name = "cpu",
    .table_bit = AG_ON_CPU,
    .destroy = cpu_destroy,
    .describe = cpu_describe,
    .details = cpu_details,
    .props = cpu_props,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .host_data = cpu_host_data,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .sync = cpu_sync,
    .unary = cpu_unary,
    .unary_backward = cpu_unary_backward,
    .binary = cpu_binary,
    .where = cpu_where,
    .reduce = cpu_reduce,
    .gemm = cpu_gemm,
    .softmax = cpu_softmax,
    .softmax_backward = cpu_softmax_backward,
    .cross_entropy = cpu_cross_entropy,
    .cross_entropy_backward = cpu_cross_entropy_backward,
    .conv2d = cpu_conv2d,
    .conv2d_backward_input = cpu_conv2d_backward_input,
    .conv2d_backward_weight = cpu_conv2d_backward_weight,
    .pool2d = cpu_pool2d,
    .pool2d_backward = cpu_pool2d_backward,
    .attention = cpu_attention,
    .attention_backward = cpu_attention_backward,
    .layer_norm = cpu_layer_norm,
    .layer_norm_backward = cpu_layer_norm_backward,
    .batch_norm = cpu_batch_norm,
    .batch_norm_backward = cpu_batch_norm_backward,
    .gather = cpu_gather,
    .scatter_add = cpu_scatter_add,
    .rand = cpu_rand,
    .dropout = cpu_dropout,
    .optim_step = cpu_optim_step,
};

ag_status ag_cpu_backend_create(const ag_backend_i **iface, void **ctx)
{
    if (!iface || !ctx)
        return ag_set_error(AG_ERR_ARG, "ag_cpu_backend_create: iface and ctx must not be NULL");
    *iface = NULL;
    *ctx = NULL;
    /* a forced ISA the machine cannot run is a configuration error, not a hint */
    const char *isa_err = cpu_isa_error();
    if (isa_err) return ag_set_error(AG_ERR_UNSUPPORTED, "%s", isa_err);
    *iface = &cpu_iface;
    return AG_OK;
}
