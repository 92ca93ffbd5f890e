/* Compute pipelines, created on first use from the embedded SPIR-V and kept.
 * A VkPipelineCache is loaded from and saved to disk ($AG_CACHE_DIR, else
 * $XDG_CACHE_HOME/anygrad, else ~/.cache/anygrad; AG_VULKAN_CACHE=0 disables),
 * so the driver's compiler runs once per device and driver. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vk.h"

struct vk_pipeline {
    char name[64];
    uint32_t spec[VK_MAX_SPEC];
    int nspec, nbufs;
    bool uniform; /* the parameter block (binding 0) is a uniform buffer */
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipe;
    vk_pipeline *next;
};

VkPipeline vk_pipeline_handle(const vk_pipeline *p) { return p->pipe; }
VkPipelineLayout vk_pipeline_layout(const vk_pipeline *p) { return p->layout; }
VkDescriptorSetLayout vk_pipeline_set_layout(const vk_pipeline *p) { return p->dsl; }
bool vk_pipeline_uniform(const vk_pipeline *p) { return p->uniform; }

static void cache_file(const vk_ctx *c, char *buf, size_t size, char *dir, size_t dsize)
{
    buf[0] = dir[0] = '\0';
    const char *off = getenv("AG_VULKAN_CACHE");
    if (off && strcmp(off, "0") == 0) return;
    const char *d = getenv("AG_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (d && *d) snprintf(dir, dsize, "%s/vulkan", d);
    else if (x && *x) snprintf(dir, dsize, "%s/anygrad/vulkan", x);
    else if (h && *h) snprintf(dir, dsize, "%s/.cache/anygrad/vulkan", h);
    else return;
    char uuid[2 * VK_UUID_SIZE + 1];
    for (unsigned i = 0; i < VK_UUID_SIZE; i++) snprintf(uuid + 2 * i, 3, "%02x", c->props.pipelineCacheUUID[i]);
    snprintf(buf, size, "%s/%04x-%04x-%08x-%s.bin", dir, c->props.vendorID, c->props.deviceID,
             c->props.driverVersion, uuid);
}

static bool make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST) return false;
    }
    return mkdir(path, 0755) == 0 || errno == EEXIST;
}

ag_status vk_pipelines_init(vk_ctx *c)
{
    char path[600], dir[512];
    cache_file(c, path, sizeof path, dir, sizeof dir);
    void *data = NULL;
    size_t n = 0;
    FILE *f = path[0] ? fopen(path, "rb") : NULL;
    if (f) {
        if (fseek(f, 0, SEEK_END) == 0) {
            long len = ftell(f);
            if (len > 0 && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)len))) {
                if (fread(data, 1, (size_t)len, f) == (size_t)len) n = (size_t)len;
            }
        }
        fclose(f);
    }
    /* the driver checks the header and ignores a foreign or stale cache */
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                    .initialDataSize = n,
                                    .pInitialData = n ? data : NULL};
    VkResult r = vk.vkCreatePipelineCache(c->device, &ci, NULL, &c->pcache);
    if (r != VK_SUCCESS && n) {
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        r = vk.vkCreatePipelineCache(c->device, &ci, NULL, &c->pcache);
    }
    free(data);
    return vk_check(r, "pipeline cache");
}

/* Written to a temporary name and renamed: readers never see half a file. */
static void save_cache(vk_ctx *c)
{
    char path[600], dir[512], tmp[640];
    cache_file(c, path, sizeof path, dir, sizeof dir);
    size_t n = 0;
    if (!path[0] || vk.vkGetPipelineCacheData(c->device, c->pcache, &n, NULL) != VK_SUCCESS || n == 0) return;
    void *data = malloc(n);
    if (data && vk.vkGetPipelineCacheData(c->device, c->pcache, &n, data) == VK_SUCCESS && make_dirs(dir)) {
        snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
        FILE *f = fopen(tmp, "wb");
        if (f) {
            bool ok = fwrite(data, 1, n, f) == n;
            ok = fclose(f) == 0 && ok;
            if (!ok || rename(tmp, path) != 0) remove(tmp);
        }
    }
    free(data);
}

void vk_pipelines_destroy(vk_ctx *c)
{
    if (c->pcache && c->pipelines) save_cache(c);
    while (c->pipelines) {
        vk_pipeline *p = c->pipelines;
        c->pipelines = p->next;
        vk.vkDestroyPipeline(c->device, p->pipe, NULL);
        vk.vkDestroyPipelineLayout(c->device, p->layout, NULL);
        vk.vkDestroyDescriptorSetLayout(c->device, p->dsl, NULL);
        free(p);
    }
    if (c->pcache) vk.vkDestroyPipelineCache(c->device, c->pcache, NULL);
}

static const vk_shader *find_shader(const char *name)
{
    for (int i = 0; i < vk_nshaders; i++)
        if (strcmp(vk_shaders[i].name, name) == 0) return &vk_shaders[i];
    return NULL;
}

/* Variants named _u take their parameters as a uniform buffer (meson.build). */
static bool uniform_variant(const char *name)
{
    size_t n = strlen(name);
    return n > 2 && strcmp(name + n - 2, "_u") == 0;
}

vk_pipeline *vk_pipeline_get(vk_ctx *c, const char *name, const uint32_t *spec, int nspec, int nbufs)
{
    /* Vulkan guarantees only 4 storage buffers a stage and some mobile drivers
     * offer no more: past that, the shader's _u variant, whose parameter block
     * is a uniform buffer (12 guaranteed), if it has one */
    char alt[56];
    bool uniform = uniform_variant(name);
    if (!uniform && (uint32_t)nbufs + 1 > c->max_storage_buffers) {
        snprintf(alt, sizeof alt, "%s_u", name);
        if (find_shader(alt)) {
            name = alt;
            uniform = true;
        }
    }
    uint32_t sp[VK_MAX_SPEC] = {0};
    if (nspec == 0) {
        sp[0] = c->wg;
        nspec = 1;
    } else {
        memcpy(sp, spec, (size_t)nspec * sizeof sp[0]);
    }
    for (vk_pipeline *p = c->pipelines; p; p = p->next)
        if (strcmp(p->name, name) == 0 && p->nspec == nspec && !memcmp(p->spec, sp, sizeof sp)) {
            if (p->nbufs != nbufs) {
                ag_set_error(AG_ERR_ARG, "vulkan %s: bound with %d buffers, created with %d", name,
                             nbufs, p->nbufs);
                return NULL;
            }
            return p;
        }
    const vk_shader *sh = find_shader(name);
    if (!sh || strlen(name) >= sizeof ((vk_pipeline *)0)->name) {
        ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: no shader '%s'", name);
        return NULL;
    }
    int nstorage = nbufs + (uniform ? 0 : 1);
    if ((uint32_t)nstorage > c->max_storage_buffers) {
        ag_set_error(AG_ERR_UNSUPPORTED,
                     "vulkan %s: needs %d storage buffers a shader; %s allows %u", name, nstorage,
                     c->name, c->max_storage_buffers);
        return NULL;
    }
    if (ag_fault_hit(AG_FAULT_BUILD)) {
        ag_set_error(AG_ERR_DEVICE, "vulkan: injected fault: creating pipeline %s failed", name);
        return NULL;
    }
    vk_pipeline *p = calloc(1, sizeof *p);
    if (!p) {
        ag_set_error(AG_ERR_OOM, "vulkan: out of host memory");
        return NULL;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    memcpy(p->spec, sp, sizeof sp);
    p->nspec = nspec;
    p->nbufs = nbufs;
    p->uniform = uniform;

    VkDescriptorSetLayoutBinding b[VK_MAX_BINDINGS];
    for (int i = 0; i <= nbufs; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                              .descriptorType = i == 0 && uniform
                                                                    ? VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER
                                                                    : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo li = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = (uint32_t)nbufs + 1,
                                          .pBindings = b};
    VkResult r = vk.vkCreateDescriptorSetLayout(c->device, &li, NULL, &p->dsl);
    VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .setLayoutCount = 1,
                                      .pSetLayouts = &p->dsl};
    if (r == VK_SUCCESS) r = vk.vkCreatePipelineLayout(c->device, &pli, NULL, &p->layout);
    VkShaderModule mod = VK_NULL_HANDLE;
    size_t nw = 0;
    uint32_t *patched = c->float_preserve ? vk_spirv_preserve(sh->code, sh->size / 4, &nw) : NULL;
    VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = patched ? nw * 4 : sh->size,
                                   .pCode = patched ? patched : sh->code};
    if (r == VK_SUCCESS) r = vk.vkCreateShaderModule(c->device, &mi, NULL, &mod);
    free(patched);
    VkSpecializationMapEntry map[VK_MAX_SPEC];
    for (int i = 0; i < nspec; i++) map[i] = (VkSpecializationMapEntry){(uint32_t)i, (uint32_t)(4 * i), 4};
    VkSpecializationInfo si = {(uint32_t)nspec, map, (size_t)nspec * 4, p->spec};
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfoEXT rs = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO_EXT,
        .requiredSubgroupSize = c->subgroup_size};
    const bool sized = c->sg_control && vk_spirv_uses_subgroups(sh->code, sh->size / 4);
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .pNext = sized ? &rs : NULL,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod,
                  .pName = "main",
                  .pSpecializationInfo = &si},
        .layout = p->layout};
    if (r == VK_SUCCESS) r = vk.vkCreateComputePipelines(c->device, c->pcache, 1, &ci, NULL, &p->pipe);
    if (r == VK_SUCCESS) {
        vk_count(VK_STAT_PIPELINE);
        if (sized) vk_count(VK_STAT_PIPELINE_SIZED);
    }
    if (mod) vk.vkDestroyShaderModule(c->device, mod, NULL);
    if (r != VK_SUCCESS) {
        char what[96];
        snprintf(what, sizeof what, "creating pipeline %s", name);
        vk_check(r, what);
        if (p->layout) vk.vkDestroyPipelineLayout(c->device, p->layout, NULL);
        if (p->dsl) vk.vkDestroyDescriptorSetLayout(c->device, p->dsl, NULL);
        free(p);
        return NULL;
    }
    p->next = c->pipelines;
    c->pipelines = p;
    save_cache(c);
    return p;
}
