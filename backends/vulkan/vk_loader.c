/* Opens libvulkan.so.1 with dlopen and creates the process's one VkInstance.
 * AG_VULKAN_VALIDATION=1 enables the Khronos validation layer: its errors are
 * printed and counted, and the next sync reports them as a device error. */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk.h"

vk_api vk;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static VkInstance instance;
static char load_error[256];
static _Atomic int validation_errors;
static VkDebugUtilsMessengerEXT messenger;

int vk_validation_errors(void) { return atomic_load(&validation_errors); }

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT type,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                 void *user)
{
    (void)type;
    (void)user;
    if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
        atomic_fetch_add(&validation_errors, 1);
        fprintf(stderr, "anygrad vulkan validation error: %s\n", data->pMessage);
    } else if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
        fprintf(stderr, "anygrad vulkan validation warning: %s\n", data->pMessage);
    }
    return VK_FALSE;
}

static bool has_layer(const char *name)
{
    uint32_t n = 0;
    if (vk.vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0) return false;
    VkLayerProperties *props = calloc(n, sizeof *props);
    bool found = false;
    if (props && vk.vkEnumerateInstanceLayerProperties(&n, props) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = strcmp(props[i].layerName, name) == 0;
    free(props);
    return found;
}

static void load(void)
{
    /* AG_VULKAN_LIBRARY names another loader (or hides it, for tests) */
    const char *lib = getenv("AG_VULKAN_LIBRARY");
    void *h = dlopen(lib && *lib ? lib : "libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h && !(lib && *lib)) h = dlopen("libvulkan.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_error, sizeof load_error, "cannot load the Vulkan loader (%s)", dlerror());
        return;
    }
    *(void **)&vk.vkGetInstanceProcAddr = dlsym(h, "vkGetInstanceProcAddr");
    if (!vk.vkGetInstanceProcAddr) {
        snprintf(load_error, sizeof load_error, "libvulkan.so.1 lacks vkGetInstanceProcAddr");
        return;
    }
#define VK_LOAD_GLOBAL(fn)                                                                  \
    vk.fn = (PFN_##fn)vk.vkGetInstanceProcAddr(NULL, #fn);                                \
    if (!vk.fn) {                                                                           \
        snprintf(load_error, sizeof load_error, "the Vulkan loader lacks %s", #fn);        \
        return;                                                                             \
    }
    VK_GLOBAL_LIST(VK_LOAD_GLOBAL)
#undef VK_LOAD_GLOBAL

    const char *v = getenv("AG_VULKAN_VALIDATION");
    bool validate = v && strcmp(v, "1") == 0;
    const char *layer = "VK_LAYER_KHRONOS_validation";
    if (validate && !has_layer(layer)) {
        snprintf(load_error, sizeof load_error,
                 "AG_VULKAN_VALIDATION=1 but %s is not installed (Debian: vulkan-validationlayers)", layer);
        return;
    }
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "anygrad",
                             .pEngineName = "anygrad",
                             .apiVersion = VK_API_VERSION_1_1};
    const char *ext[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME};
    /* synchronization validation too: a missing barrier is a hazard the core
     * checks cannot see, and software drivers that run shaders serially hide it */
    const VkValidationFeatureEnableEXT feat[] = {VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
    VkValidationFeaturesEXT vf = {.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
                                  .enabledValidationFeatureCount = 1,
                                  .pEnabledValidationFeatures = feat};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pNext = validate ? &vf : NULL,
                               .pApplicationInfo = &app,
                               .enabledLayerCount = validate ? 1 : 0,
                               .ppEnabledLayerNames = validate ? &layer : NULL,
                               .enabledExtensionCount = validate ? 2 : 0,
                               .ppEnabledExtensionNames = validate ? ext : NULL};
    VkResult r = vk.vkCreateInstance(&ci, NULL, &instance);
    if (r != VK_SUCCESS) {
        snprintf(load_error, sizeof load_error, "vkCreateInstance: %s", vk_result_name(r));
        instance = VK_NULL_HANDLE;
        return;
    }
#define VK_LOAD_INSTANCE(fn)                                                                \
    vk.fn = (PFN_##fn)vk.vkGetInstanceProcAddr(instance, #fn);                            \
    if (!vk.fn) {                                                                           \
        snprintf(load_error, sizeof load_error, "the Vulkan loader lacks %s", #fn);        \
        instance = VK_NULL_HANDLE;                                                          \
        return;                                                                             \
    }
    VK_INSTANCE_LIST(VK_LOAD_INSTANCE)
#undef VK_LOAD_INSTANCE
    if (validate) {
        vk.vkCreateDebugUtilsMessengerEXT = (PFN_vkCreateDebugUtilsMessengerEXT)vk.vkGetInstanceProcAddr(
            instance, "vkCreateDebugUtilsMessengerEXT");
        vk.vkDestroyDebugUtilsMessengerEXT = (PFN_vkDestroyDebugUtilsMessengerEXT)vk.vkGetInstanceProcAddr(
            instance, "vkDestroyDebugUtilsMessengerEXT");
        VkDebugUtilsMessengerCreateInfoEXT mi = {
            .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
            .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT |
                               VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT,
            .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
            .pfnUserCallback = on_message};
        if (!vk.vkCreateDebugUtilsMessengerEXT ||
            vk.vkCreateDebugUtilsMessengerEXT(instance, &mi, NULL, &messenger) != VK_SUCCESS) {
            snprintf(load_error, sizeof load_error, "cannot install the validation message callback");
            vk.vkDestroyInstance(instance, NULL);
            instance = VK_NULL_HANDLE;
            return;
        }
    }
}

ag_status vk_instance(VkInstance *out)
{
    const char *off = getenv("AG_VULKAN");
    if (off && strcmp(off, "0") == 0)
        return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: disabled by AG_VULKAN=0");
    pthread_once(&once, load);
    if (!instance) return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: %s", load_error);
    *out = instance;
    return AG_OK;
}

const char *vk_result_name(VkResult r)
{
    static const struct { VkResult r; const char *name; } names[] = {
        {VK_SUCCESS, "VK_SUCCESS"},
        {VK_NOT_READY, "VK_NOT_READY"},
        {VK_TIMEOUT, "VK_TIMEOUT"},
        {VK_ERROR_OUT_OF_HOST_MEMORY, "VK_ERROR_OUT_OF_HOST_MEMORY"},
        {VK_ERROR_OUT_OF_DEVICE_MEMORY, "VK_ERROR_OUT_OF_DEVICE_MEMORY"},
        {VK_ERROR_INITIALIZATION_FAILED, "VK_ERROR_INITIALIZATION_FAILED"},
        {VK_ERROR_DEVICE_LOST, "VK_ERROR_DEVICE_LOST"},
        {VK_ERROR_MEMORY_MAP_FAILED, "VK_ERROR_MEMORY_MAP_FAILED"},
        {VK_ERROR_LAYER_NOT_PRESENT, "VK_ERROR_LAYER_NOT_PRESENT"},
        {VK_ERROR_EXTENSION_NOT_PRESENT, "VK_ERROR_EXTENSION_NOT_PRESENT"},
        {VK_ERROR_FEATURE_NOT_PRESENT, "VK_ERROR_FEATURE_NOT_PRESENT"},
        {VK_ERROR_INCOMPATIBLE_DRIVER, "VK_ERROR_INCOMPATIBLE_DRIVER (no Vulkan driver installed)"},
        {VK_ERROR_TOO_MANY_OBJECTS, "VK_ERROR_TOO_MANY_OBJECTS"},
        {VK_ERROR_FRAGMENTED_POOL, "VK_ERROR_FRAGMENTED_POOL"},
        {VK_ERROR_OUT_OF_POOL_MEMORY, "VK_ERROR_OUT_OF_POOL_MEMORY"},
        {VK_ERROR_INVALID_SHADER_NV, "VK_ERROR_INVALID_SHADER_NV"},
        {VK_ERROR_UNKNOWN, "VK_ERROR_UNKNOWN"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].r == r) return names[i].name;
    static _Thread_local char buf[32];
    snprintf(buf, sizeof buf, "VkResult %d", (int)r);
    return buf;
}

ag_status vk_check(VkResult r, const char *what)
{
    if (r == VK_SUCCESS) return AG_OK;
    ag_status s = (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY ||
                   r == VK_ERROR_OUT_OF_POOL_MEMORY)
                      ? AG_ERR_OOM
                      : AG_ERR_DEVICE;
    return ag_set_error(s, "vulkan %s: %s", what, vk_result_name(r));
}
