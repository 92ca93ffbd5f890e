/* Vulkan backend internals. libvulkan.so.1 is opened with dlopen at run time
 * (vk_loader.c); the headers give types only (VK_NO_PROTOTYPES). */
#ifndef AG_VK_H
#define AG_VK_H

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>
#include <pthread.h>
#include <stdbool.h>

#include "backend.h"

/* Entry points resolved through vkGetInstanceProcAddr; device-level ones go
 * through the loader's dispatch, so one table serves every device. */
#define VK_GLOBAL_LIST(X) \
    X(vkCreateInstance) X(vkEnumerateInstanceLayerProperties) X(vkEnumerateInstanceExtensionProperties)
#define VK_INSTANCE_LIST(X)                                                                   \
    X(vkDestroyInstance) X(vkEnumeratePhysicalDevices) X(vkGetPhysicalDeviceProperties)       \
    X(vkGetPhysicalDeviceProperties2) X(vkGetPhysicalDeviceQueueFamilyProperties)             \
    X(vkGetPhysicalDeviceFeatures2)                                                           \
    X(vkGetPhysicalDeviceMemoryProperties) X(vkEnumerateDeviceExtensionProperties)            \
    X(vkCreateDevice) X(vkDestroyDevice) X(vkGetDeviceQueue) X(vkQueueSubmit)                 \
    X(vkQueueWaitIdle) X(vkDeviceWaitIdle) X(vkAllocateMemory) X(vkFreeMemory)                \
    X(vkMapMemory) X(vkUnmapMemory) X(vkCreateBuffer) X(vkDestroyBuffer)                      \
    X(vkGetBufferMemoryRequirements) X(vkBindBufferMemory) X(vkCreateShaderModule)            \
    X(vkDestroyShaderModule) X(vkCreateDescriptorSetLayout) X(vkDestroyDescriptorSetLayout)   \
    X(vkCreatePipelineLayout) X(vkDestroyPipelineLayout) X(vkCreateComputePipelines)          \
    X(vkDestroyPipeline) X(vkCreatePipelineCache) X(vkDestroyPipelineCache)                   \
    X(vkGetPipelineCacheData) X(vkCreateDescriptorPool) X(vkDestroyDescriptorPool)            \
    X(vkResetDescriptorPool) X(vkAllocateDescriptorSets) X(vkUpdateDescriptorSets)            \
    X(vkCreateCommandPool) X(vkDestroyCommandPool) X(vkAllocateCommandBuffers)                \
    X(vkBeginCommandBuffer) X(vkEndCommandBuffer) X(vkResetCommandBuffer)                     \
    X(vkCmdBindPipeline) X(vkCmdBindDescriptorSets) X(vkCmdDispatch)                          \
    X(vkCmdPipelineBarrier) X(vkCmdCopyBuffer) X(vkCreateFence) X(vkDestroyFence)             \
    X(vkWaitForFences) X(vkResetFences)

typedef struct vk_api {
#define VK_API_FIELD(fn) PFN_##fn fn;
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
    VK_GLOBAL_LIST(VK_API_FIELD)
    VK_INSTANCE_LIST(VK_API_FIELD)
    PFN_vkCreateDebugUtilsMessengerEXT vkCreateDebugUtilsMessengerEXT;   /* optional */
    PFN_vkDestroyDebugUtilsMessengerEXT vkDestroyDebugUtilsMessengerEXT; /* optional */
#undef VK_API_FIELD
} vk_api;

extern vk_api vk;

/* Opens the loader and creates the one instance (with the Khronos validation
 * layer when AG_VULKAN_VALIDATION=1). AG_OK or AG_ERR_UNSUPPORTED + reason. */
ag_status vk_instance(VkInstance *out);
/* Validation messages of severity error seen so far (all devices). */
int vk_validation_errors(void);

/* ---- memory: sub-allocated blocks (vk_memory.c) ---------------------------- */

typedef struct vk_block vk_block;

struct ag_buffer {
    vk_block *block;
    VkDeviceSize offset;  /* inside the block's VkBuffer, aligned for descriptors */
    VkDeviceSize size;    /* bytes reserved (>= bytes, > 0) */
    size_t bytes;         /* what was asked for */
};

/* A host-visible, coherent, persistently mapped buffer. */
typedef struct vk_host_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    void *map;
    VkDeviceSize size;
} vk_host_buf;

/* One command buffer with what its dispatches use; two alternate so the host
 * records one while the device runs the other. */
typedef struct vk_slot {
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorPool pool;
    vk_host_buf params;      /* per-dispatch parameter blocks, written by the host */
    /* where tensors live in device-local memory the host cannot map (discrete
     * GPUs): the blocks' device-local copy, which the shaders read, filled by
     * pcmd, submitted ahead of cmd */
    vk_host_buf params_dev;
    VkCommandBuffer pcmd;
    VkDeviceSize params_used;
    int ndispatch;
    bool recording, in_flight;
} vk_slot;

typedef struct vk_pipeline vk_pipeline;

/* A buffer range a recorded command reads or writes (vk_dispatch.c). */
typedef struct vk_span {
    VkBuffer buf;
    VkDeviceSize off, size;
} vk_span;
#define VK_TRACK_SPANS 48

typedef struct vk_ctx {
    VkPhysicalDevice phys;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties memprops;
    uint32_t subgroup_size;
    bool subgroup_arith;     /* subgroup arithmetic in compute shaders */
    bool portable;           /* AG_VULKAN_PORTABLE=1: no optional features */
    /* VK_KHR_shader_float_controls with signed zero, inf and NaN preserved for
     * f32: enabled, and every shader declares it (vk_spirv.c), so that no
     * driver may assume NaN and inf away (the NaN rules rely on isnan) */
    bool float_preserve;
    /* VK_EXT_subgroup_size_control: pipelines whose shader uses subgroup
     * operations require subgroup_size (which lies in [sg_min, sg_max]), so
     * the size the host planned for is the size the driver runs; without it a
     * driver may run another (Intel reports 32, runs 8 or 16) and the shaders
     * fall back at run time. */
    bool sg_control;
    uint32_t sg_min, sg_max;
    uint8_t uuid[VK_UUID_SIZE];
    char name[96];
    pthread_mutex_t lock;    /* recording state: one thread at a time */

    uint32_t mem_type;       /* device-local type for tensors */
    bool mem_host_visible;   /* tensors' memory is mappable (unified memory) */
    VkDeviceSize heap_size, max_alloc, block_size, align;
    pthread_mutex_t mem_lock; /* the block lists */
    vk_block *blocks;
    vk_host_buf staging;     /* synchronous uploads and downloads */
    pthread_mutex_t staging_lock; /* held from filling the staging buffer to reading it back */
    uint32_t max_storage_buffers; /* maxPerStageDescriptorStorageBuffers (or emulated) */
    bool emulate_discrete;   /* AG_VULKAN_EMULATE=discrete (vk_device.c) */
    uint32_t host_type;      /* host-visible coherent type */

    VkCommandPool cmd_pool;
    vk_slot slots[2];
    int cur;                 /* the slot being recorded */
    uint32_t wg;             /* work-group size of 1-D kernels */
    VkPipelineCache pcache;
    vk_pipeline *pipelines;
    ag_buffer *dummy;        /* bound where an optional operand is absent */
    vk_span touched[VK_TRACK_SPANS]; /* ranges commands used since the last barrier */
    int ntouched;
    bool all_barriers;       /* AG_VULKAN_BARRIERS=all: a barrier before every command */
    int seen_validation;     /* validation errors already reported */
} vk_ctx;

ag_status vk_check(VkResult r, const char *what);
const char *vk_result_name(VkResult r);

ag_status vk_host_buf_create(vk_ctx *c, VkDeviceSize size, VkBufferUsageFlags usage, vk_host_buf *out);
/* The same with device-local memory, not mapped (map NULL). */
ag_status vk_dev_buf_create(vk_ctx *c, VkDeviceSize size, VkBufferUsageFlags usage, vk_host_buf *out);
void vk_host_buf_destroy(vk_ctx *c, vk_host_buf *b);
void vk_memory_destroy(vk_ctx *c);
/* Frees dedicated blocks nothing uses any more; only when no work is in flight. */
void vk_memory_trim(vk_ctx *c);
/* Picks memory types, block size and alignment. */
ag_status vk_memory_init(vk_ctx *c);
VkBuffer vk_block_buffer(const vk_block *b);
void *vk_block_map(const vk_block *b); /* NULL unless host-visible */

/* ---- pipelines and dispatch (vk_pipeline.c, vk_dispatch.c) ----------------- */

/* Embedded SPIR-V, generated from the .comp files at build time. */
typedef struct vk_shader {
    const char *name;
    const uint32_t *code;
    size_t size; /* bytes */
} vk_shader;
extern const vk_shader vk_shaders[];
/* code (n words) with f32 signed zero, inf and NaN preservation declared
 * (vk_spirv.c); malloc'ed, its length in *out_n; NULL to use code as it is. */
uint32_t *vk_spirv_preserve(const uint32_t *code, size_t n, size_t *out_n);
/* Whether a module declares a GroupNonUniform capability (uses subgroup operations). */
bool vk_spirv_uses_subgroups(const uint32_t *code, size_t n);
extern const int vk_nshaders;

#define VK_MAX_BINDINGS 10 /* attn_bw_kv: parameters + 9 */
#define VK_MAX_SPEC 4

/* A view's buffer for a dispatch; NULL binds the context's dummy buffer. */
typedef const ag_buffer *vk_bind;

/* Records shader `name` over groups (gx, gy, gz), workgroup size from the
 * shader's specialization constant 0 = spec[0] (or c->wg when nspec == 0),
 * binding 0 = a copy of params (std430 layout, plain 4-byte members), bindings
 * 1..nbufs = the buffers. Submits when the batch is full; never waits per op. */
ag_status vk_dispatch(vk_ctx *c, const char *name, const uint32_t *spec, int nspec,
                      const void *params, size_t params_size, int nbufs, const vk_bind *bufs,
                      uint32_t gx, uint32_t gy, uint32_t gz);
/* 1-D: enough groups of c->wg for n items (capped; shaders loop with a grid stride). */
ag_status vk_run1(vk_ctx *c, const char *name, const void *params, size_t params_size,
                  int nbufs, const vk_bind *bufs, size_t n);
#define VK_BUFS(...) (int)(sizeof((vk_bind[]){__VA_ARGS__}) / sizeof(vk_bind)), (vk_bind[]){__VA_ARGS__}
/* Work-group size for shared-memory reductions: power of two <= 256 the device allows. */
uint32_t vk_reduce_wg(const vk_ctx *c);

/* AG_VULKAN_STATS=1: commands of every Vulkan device counted and printed to
 * stderr at exit (dispatches, copies, barriers, submits, host waits). */
typedef enum {
    VK_STAT_DISPATCH, VK_STAT_COPY, VK_STAT_BARRIER, VK_STAT_SUBMIT, VK_STAT_WAIT,
    VK_STAT_PIPELINE, VK_STAT_PIPELINE_SIZED, /* created; with a required subgroup size */
    VK_STAT_COUNT
} vk_stat;
void vk_count(vk_stat which); /* counted when AG_VULKAN_STATS=1 */
void vk_stats_init(void);

/* Submits what is recorded (if anything) and waits for all work. */
ag_status vk_flush_wait(vk_ctx *c);
/* Records a buffer copy into the current batch (with the barrier it needs). */
ag_status vk_record_copy(vk_ctx *c, VkBuffer src, VkDeviceSize soff, VkBuffer dst,
                         VkDeviceSize doff, VkDeviceSize bytes);
ag_status vk_batches_init(vk_ctx *c);
void vk_batches_destroy(vk_ctx *c);
ag_status vk_pipelines_init(vk_ctx *c);
void vk_pipelines_destroy(vk_ctx *c);
/* Finds or creates the pipeline; call with c->lock held. Where nbufs storage
 * buffers and the parameter block exceed the device's limit, the shader's _u
 * variant (parameters in a uniform buffer) if it has one. */
vk_pipeline *vk_pipeline_get(vk_ctx *c, const char *name, const uint32_t *spec, int nspec, int nbufs);
VkPipeline vk_pipeline_handle(const vk_pipeline *p);
VkPipelineLayout vk_pipeline_layout(const vk_pipeline *p);
VkDescriptorSetLayout vk_pipeline_set_layout(const vk_pipeline *p);
bool vk_pipeline_uniform(const vk_pipeline *p); /* parameters in a uniform buffer */

/* ---- views as shaders take them (same layout as backends/vulkan/shaders/common.glsl) ------- */


/* ---- devices (vk_device.c) ------------------------------------------------- */

int vk_create_all(vk_ctx **out, int max);
void vk_destroy(void *ctx);
void vk_describe(void *ctx, char *buf, size_t size);
void vk_details(void *ctx, char *buf, size_t size);
void vk_props(void *ctx, ag_backend_props *out);

/* ---- the contract (backend.h), implemented one family per file ------------ */

AG_BACKEND_DECLARE(vk);

#endif /* AG_VK_H */
