/* Physical devices with a compute queue: one VkDevice, queue, memory pool and
 * pipeline set each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk.h"

#define VK_MAX_PHYS 16

static const char *type_name(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete gpu";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated gpu";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual gpu";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu (software)";
    default: return "other";
    }
}

/* The number after `key` in AG_VULKAN_EMULATE ("discrete,subgroup32"): 1 for a
 * key without one, 0 if absent. */
static int emulated(const char *emu, const char *key)
{
    const char *at = emu ? strstr(emu, key) : NULL;
    if (!at) return 0;
    at += strlen(key);
    return *at >= '0' && *at <= '9' ? atoi(at) : 1;
}

/* AG_VULKAN_EMULATE: what real GPUs do that lavapipe hides, for the tests.
 * discrete: tensor memory not mapped, every transfer staged (vk_memory_init).
 * subgroup<n>: the host plans for subgroups of n while the driver runs its own
 * size, as drivers that report one size and run another (Intel: 32 reported, 8
 * or 16 run); the shaders must notice. (An n the device can run is required
 * with VK_EXT_subgroup_size_control, so it is then what the driver runs.)
 * storage<n>: at most n storage buffers a shader (Vulkan guarantees 4; older
 * Mali drivers offer just that). mobile: a
 * small GPU: 4 storage buffers, 64 invocations a group (below Vulkan's 128, as
 * register-heavy kernels get on mobile GPUs), 16 KiB of shared memory, a
 * 128 MiB buffer range, subgroups planned as 16. */
static void clamp_u32(uint32_t *v, uint32_t max)
{
    if (*v > max) *v = max;
}

static void emulate(vk_ctx *c)
{
    const char *emu = getenv("AG_VULKAN_EMULATE");
    c->emulate_discrete = emulated(emu, "discrete") != 0;
    VkPhysicalDeviceLimits *l = &c->props.limits;
    if (emulated(emu, "mobile")) {
        clamp_u32(&c->max_storage_buffers, 4);
        clamp_u32(&l->maxComputeWorkGroupInvocations, 64);
        for (int i = 0; i < 3; i++) clamp_u32(&l->maxComputeWorkGroupSize[i], 64);
        clamp_u32(&l->maxComputeSharedMemorySize, 16384);
        clamp_u32(&l->maxStorageBufferRange, 128u << 20);
        c->subgroup_size = 16;
    }
    int n = emulated(emu, "subgroup");
    if (n > 0) c->subgroup_size = (uint32_t)n;
    n = emulated(emu, "storage");
    if (n > 0) clamp_u32(&c->max_storage_buffers, (uint32_t)n);
}

static bool has_extension(VkPhysicalDevice phys, const char *name)
{
    uint32_t n = 0;
    if (vk.vkEnumerateDeviceExtensionProperties(phys, NULL, &n, NULL) != VK_SUCCESS || n == 0) return false;
    VkExtensionProperties *e = malloc(n * sizeof *e);
    bool has = false;
    if (e && vk.vkEnumerateDeviceExtensionProperties(phys, NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !has; i++) has = strcmp(e[i].extensionName, name) == 0;
    free(e);
    return has;
}

/* Whether the device offers VK_KHR_shader_float_controls with f32 signed zero,
 * inf and NaN preservation (its properties may be queried only then). */
static bool float_controls_preserve(VkPhysicalDevice phys)
{
    if (!has_extension(phys, "VK_KHR_shader_float_controls")) return false;
    VkPhysicalDeviceFloatControlsPropertiesKHR fc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FLOAT_CONTROLS_PROPERTIES_KHR};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &fc};
    vk.vkGetPhysicalDeviceProperties2(phys, &p2);
    return fc.shaderSignedZeroInfNanPreserveFloat32;
}

/* Subgroup size control where compute pipelines may require a size and the
 * planned size is one of the device's (an emulated size outside its range
 * stays uncontrolled: the case the shaders' run-time checks are tested on). */
static void subgroup_control(vk_ctx *c)
{
    if (c->portable || !c->subgroup_arith || !has_extension(c->phys, "VK_EXT_subgroup_size_control")) return;
    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT f = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f};
    vk.vkGetPhysicalDeviceFeatures2(c->phys, &f2);
    VkPhysicalDeviceSubgroupSizeControlPropertiesEXT p = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &p};
    vk.vkGetPhysicalDeviceProperties2(c->phys, &p2);
    const uint32_t s = c->subgroup_size;
    c->sg_min = p.minSubgroupSize;
    c->sg_max = p.maxSubgroupSize;
    /* every group size the host plans (at most c->wg) must fit in the
     * device's subgroups per group at the required size */
    c->sg_control = f.subgroupSizeControl && (p.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                    s && (s & (s - 1)) == 0 && s >= p.minSubgroupSize && s <= p.maxSubgroupSize &&
                    (uint64_t)p.maxComputeWorkgroupSubgroups * s >= c->wg;
}

static ag_status create_one(VkPhysicalDevice phys, vk_ctx **out)
{
    vk_ctx *c = calloc(1, sizeof *c);
    if (!c) return ag_set_error(AG_ERR_OOM, "vulkan: out of host memory");
    c->phys = phys;
    VkPhysicalDeviceIDProperties ids = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES};
    VkPhysicalDeviceSubgroupProperties sub = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
                                              .pNext = &ids};
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
                                                 .pNext = &sub};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
    vk.vkGetPhysicalDeviceProperties2(phys, &p2);
    c->props = p2.properties;
    memcpy(c->uuid, ids.deviceUUID, sizeof c->uuid);
    snprintf(c->name, sizeof c->name, "%.95s", c->props.deviceName);
    if (VK_API_VERSION_MAJOR(c->props.apiVersion) == 1 && VK_API_VERSION_MINOR(c->props.apiVersion) < 1) {
        /* the message reads c->name: set it before c is freed */
        ag_status s = ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: %s supports only Vulkan 1.0", c->name);
        free(c);
        return s;
    }
    c->max_alloc = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : ((VkDeviceSize)1 << 30);
    c->subgroup_size = sub.subgroupSize;
    c->max_storage_buffers = c->props.limits.maxPerStageDescriptorStorageBuffers;
    emulate(c);
    const char *bar = getenv("AG_VULKAN_BARRIERS");
    c->all_barriers = bar && strcmp(bar, "all") == 0;
    const char *portable = getenv("AG_VULKAN_PORTABLE");
    c->portable = portable && strcmp(portable, "1") == 0;
    c->subgroup_arith = !c->portable && (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                        (sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    vk.vkGetPhysicalDeviceMemoryProperties(phys, &c->memprops);
    c->float_preserve = !c->portable && float_controls_preserve(phys);

    uint32_t nq = 0;
    vk.vkGetPhysicalDeviceQueueFamilyProperties(phys, &nq, NULL);
    VkQueueFamilyProperties qf[32];
    if (nq > 32) nq = 32;
    vk.vkGetPhysicalDeviceQueueFamilyProperties(phys, &nq, qf);
    int family = -1;
    for (uint32_t i = 0; i < nq && family < 0; i++) /* a compute-only family first */
        if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) family = (int)i;
    for (uint32_t i = 0; i < nq && family < 0; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) family = (int)i;
    if (family < 0) {
        ag_status s = ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: %s has no compute queue", c->name);
        free(c);
        return s;
    }
    c->queue_family = (uint32_t)family;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = c->queue_family,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    /* the group size the host plans with (before the device exists: the
     * subgroup control check needs it) */
    c->wg = 256;
    while (c->wg > 1 && (c->wg > c->props.limits.maxComputeWorkGroupInvocations ||
                         c->wg > c->props.limits.maxComputeWorkGroupSize[0]))
        c->wg /= 2;
    subgroup_control(c);
    const char *ext[2];
    uint32_t next = 0;
    if (c->float_preserve) ext[next++] = "VK_KHR_shader_float_controls";
    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT sgf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT, .subgroupSizeControl = VK_TRUE};
    if (c->sg_control) ext[next++] = "VK_EXT_subgroup_size_control";
    VkDeviceCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .pNext = c->sg_control ? &sgf : NULL,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi,
                             .enabledExtensionCount = next,
                             .ppEnabledExtensionNames = next ? ext : NULL};
    ag_status s = vk_check(vk.vkCreateDevice(phys, &di, NULL, &c->device), "vkCreateDevice");
    if (s != AG_OK) {
        free(c);
        return s;
    }
    vk.vkGetDeviceQueue(c->device, c->queue_family, 0, &c->queue);
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->mem_lock, NULL);
    pthread_mutex_init(&c->staging_lock, NULL);
    s = vk_memory_init(c);
    if (s == AG_OK) s = vk_batches_init(c);
    if (s == AG_OK) s = vk_pipelines_init(c);
    if (s == AG_OK) {
        c->dummy = vk_alloc(c, 16);
        if (!c->dummy) s = ag_last_status() ? ag_last_status() : AG_ERR_OOM;
    }
    if (s != AG_OK) {
        vk_destroy(c);
        return s;
    }
    *out = c;
    return AG_OK;
}

int vk_create_all(vk_ctx **out, int max)
{
    VkInstance inst;
    if (vk_instance(&inst) != AG_OK) return 0;
    vk_stats_init();
    uint32_t n = VK_MAX_PHYS;
    VkPhysicalDevice phys[VK_MAX_PHYS];
    VkResult r = vk.vkEnumeratePhysicalDevices(inst, &n, phys);
    if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || n == 0) {
        vk_check(r != VK_SUCCESS ? r : VK_ERROR_INCOMPATIBLE_DRIVER, "no physical device");
        return 0;
    }
    int made = 0;
    for (uint32_t i = 0; i < n && made < max; i++)
        if (create_one(phys[i], &out[made]) == AG_OK) made++;
    return made;
}

void vk_destroy(void *ctx)
{
    vk_ctx *c = ctx;
    if (!c) return;
    if (c->device) {
        vk.vkDeviceWaitIdle(c->device);
        if (c->dummy) vk_free(c, c->dummy);
        vk_pipelines_destroy(c);
        vk_batches_destroy(c);
        vk_memory_destroy(c);
        vk.vkDestroyDevice(c->device, NULL);
        pthread_mutex_destroy(&c->lock);
        pthread_mutex_destroy(&c->mem_lock);
        pthread_mutex_destroy(&c->staging_lock);
    }
    free(c);
}

void vk_describe(void *ctx, char *buf, size_t size)
{
    const vk_ctx *c = ctx;
    snprintf(buf, size, "%s (Vulkan, %s)", c->name, type_name(c->props.deviceType));
}

void vk_details(void *ctx, char *buf, size_t size)
{
    const vk_ctx *c = ctx;
    const VkPhysicalDeviceLimits *l = &c->props.limits;
    char sgc[64] = "";
    if (c->sg_control)
        snprintf(sgc, sizeof sgc, ", required of %u-%u (size control)", c->sg_min, c->sg_max);
    snprintf(buf, size,
             "api: %u.%u.%u; driver: 0x%x; vendor id: 0x%04x; type: %s; memory: %.1f GiB%s; "
             "largest buffer: %.1f GiB; subgroup: %u%s%s; max work-group: %u; shared memory: %u KiB; "
             "inf/NaN preserved: %s%s",
             VK_API_VERSION_MAJOR(c->props.apiVersion), VK_API_VERSION_MINOR(c->props.apiVersion),
             VK_API_VERSION_PATCH(c->props.apiVersion), c->props.driverVersion, c->props.vendorID,
             type_name(c->props.deviceType), c->heap_size / 1073741824.0,
             c->mem_host_visible ? " (host-visible)" : "",
             (c->max_alloc < l->maxStorageBufferRange ? c->max_alloc : l->maxStorageBufferRange) / 1073741824.0,
             c->subgroup_size, c->subgroup_arith ? " (arithmetic)" : "", sgc,
             l->maxComputeWorkGroupInvocations, l->maxComputeSharedMemorySize / 1024,
             c->float_preserve ? "yes (float controls)" : "not declared", c->portable ? "; portable paths forced (AG_VULKAN_PORTABLE=1)" : "");
}

void vk_props(void *ctx, ag_backend_props *out)
{
    const vk_ctx *c = ctx;
    ag_device_kind kind = AG_DEVICE_OTHER;
    switch (c->props.deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: kind = AG_DEVICE_DISCRETE_GPU; break;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: kind = AG_DEVICE_INTEGRATED_GPU; break;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: kind = AG_DEVICE_SOFTWARE; break; /* lavapipe, SwiftShader */
    default: break;
    }
    *out = (ag_backend_props){.kind = kind, .memory_bytes = c->heap_size, .vendor_id = c->props.vendorID,
                              .device_id = c->props.deviceID, .has_uuid = true};
    memcpy(out->uuid, c->uuid, sizeof out->uuid);
}
