/* Device memory: tensors are sub-allocated from large blocks (one
 * vkAllocateMemory per block, not per tensor), first fit with coalescing free
 * lists. Large tensors get a block of their own, freed once nothing runs. */
#include <stdio.h>
#include <stdlib.h>

#include "vk.h"

typedef struct vk_range {
    VkDeviceSize off, size;
    struct vk_range *next;
} vk_range;

struct vk_block {
    VkDeviceMemory mem;
    VkBuffer buf;
    VkDeviceSize size, used;
    void *map;          /* persistently mapped when host-visible */
    vk_range *free;     /* sorted by offset */
    bool dedicated;
    vk_block *next;
};

#define VK_BLOCK_SIZE ((VkDeviceSize)64 << 20)

VkBuffer vk_block_buffer(const vk_block *b) { return b->buf; }
void *vk_block_map(const vk_block *b) { return b->map; }

static int find_type(const vk_ctx *c, uint32_t bits, VkMemoryPropertyFlags want)
{
    for (uint32_t i = 0; i < c->memprops.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (c->memprops.memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

ag_status vk_memory_init(vk_ctx *c)
{
    const VkMemoryPropertyFlags dl = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    bool unified = c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
                   c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    /* the device-local type in the largest heap; on unified memory one the host
     * can map too, so transfers are plain memcpy */
    int best = -1;
    VkDeviceSize best_heap = 0;
    for (uint32_t i = 0; i < c->memprops.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = c->memprops.memoryTypes[i].propertyFlags;
        if (!(f & dl)) continue;
        if (unified && (f & hv) != hv) continue;
        VkDeviceSize heap = c->memprops.memoryHeaps[c->memprops.memoryTypes[i].heapIndex].size;
        if (best < 0 || heap > best_heap) {
            best = (int)i;
            best_heap = heap;
        }
    }
    if (best < 0) best = find_type(c, ~0u, dl);
    if (best < 0) best = find_type(c, ~0u, 0);
    int host = find_type(c, ~0u, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    if (host < 0) host = find_type(c, ~0u, hv);
    if (best < 0 || host < 0)
        return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan: %s has no usable memory type", c->name);
    c->mem_type = (uint32_t)best;
    c->host_type = (uint32_t)host;
    c->mem_host_visible = (c->memprops.memoryTypes[best].propertyFlags & hv) == hv;
    /* AG_VULKAN_EMULATE=discrete: unified-memory drivers (lavapipe) take the
     * staging paths too */
    if (c->emulate_discrete) c->mem_host_visible = false;
    c->heap_size = c->memprops.memoryHeaps[c->memprops.memoryTypes[best].heapIndex].size;
    c->block_size = VK_BLOCK_SIZE < c->max_alloc ? VK_BLOCK_SIZE : c->max_alloc;
    VkDeviceSize a = c->props.limits.minStorageBufferOffsetAlignment;
    c->align = a > 16 ? a : 16;
    return AG_OK;
}

static ag_status new_block(vk_ctx *c, VkDeviceSize size, bool dedicated, vk_block **out)
{
    vk_block *b = calloc(1, sizeof *b);
    vk_range *r = calloc(1, sizeof *r);
    if (!b || !r) {
        free(b);
        free(r);
        return ag_set_error(AG_ERR_OOM, "vulkan alloc: out of host memory");
    }
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult res = vk.vkCreateBuffer(c->device, &bi, NULL, &b->buf);
    VkMemoryRequirements req;
    if (res == VK_SUCCESS) {
        vk.vkGetBufferMemoryRequirements(c->device, b->buf, &req);
        if (!(req.memoryTypeBits & (1u << c->mem_type))) res = VK_ERROR_FEATURE_NOT_PRESENT;
    }
    if (res == VK_SUCCESS) {
        VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                   .allocationSize = req.size,
                                   .memoryTypeIndex = c->mem_type};
        res = vk.vkAllocateMemory(c->device, &ai, NULL, &b->mem);
    }
    if (res == VK_SUCCESS) res = vk.vkBindBufferMemory(c->device, b->buf, b->mem, 0);
    if (res == VK_SUCCESS && c->mem_host_visible)
        res = vk.vkMapMemory(c->device, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map);
    if (res != VK_SUCCESS) {
        if (b->mem) vk.vkFreeMemory(c->device, b->mem, NULL);
        if (b->buf) vk.vkDestroyBuffer(c->device, b->buf, NULL);
        free(b);
        free(r);
        char what[96];
        snprintf(what, sizeof what, "allocating a %.1f MiB block", size / 1048576.0);
        return vk_check(res, what);
    }
    b->size = size;
    b->dedicated = dedicated;
    r->off = 0;
    r->size = size;
    b->free = r;
    *out = b;
    return AG_OK;
}

static void destroy_block(vk_ctx *c, vk_block *b)
{
    while (b->free) {
        vk_range *n = b->free->next;
        free(b->free);
        b->free = n;
    }
    if (b->map) vk.vkUnmapMemory(c->device, b->mem);
    vk.vkDestroyBuffer(c->device, b->buf, NULL);
    vk.vkFreeMemory(c->device, b->mem, NULL);
    free(b);
}

/* First fit inside one block; offsets stay multiples of c->align. */
static bool take_range(vk_block *b, VkDeviceSize size, VkDeviceSize *off)
{
    for (vk_range **p = &b->free; *p; p = &(*p)->next) {
        vk_range *r = *p;
        if (r->size < size) continue;
        *off = r->off;
        r->off += size;
        r->size -= size;
        if (r->size == 0) {
            *p = r->next;
            free(r);
        }
        b->used += size;
        return true;
    }
    return false;
}

static bool give_range(vk_block *b, VkDeviceSize off, VkDeviceSize size)
{
    vk_range *prev = NULL, *next = b->free;
    while (next && next->off < off) {
        prev = next;
        next = next->next;
    }
    b->used -= size;
    if (prev && prev->off + prev->size == off) {
        prev->size += size;
        if (next && prev->off + prev->size == next->off) {
            prev->size += next->size;
            prev->next = next->next;
            free(next);
        }
        return true;
    }
    if (next && off + size == next->off) {
        next->off = off;
        next->size += size;
        return true;
    }
    vk_range *r = malloc(sizeof *r);
    if (!r) return false; /* the range is lost to this block, not to the device */
    r->off = off;
    r->size = size;
    r->next = next;
    if (prev) prev->next = r;
    else b->free = r;
    return true;
}

ag_buffer *vk_alloc(void *ctx, size_t bytes)
{
    vk_ctx *c = ctx;
    VkDeviceSize size = ((bytes ? bytes : 4) + c->align - 1) / c->align * c->align;
    if (size > c->heap_size) {
        ag_set_error(AG_ERR_OOM, "vulkan alloc: %zu bytes exceed %s's memory (%.1f GiB)", bytes,
                     c->name, c->heap_size / 1073741824.0);
        return NULL;
    }
    if (size > c->max_alloc || size > c->props.limits.maxStorageBufferRange) {
        ag_set_error(AG_ERR_UNSUPPORTED,
                     "vulkan alloc: %zu bytes exceed what %s can bind as one buffer (%llu bytes); "
                     "use smaller tensors",
                     bytes, c->name,
                     (unsigned long long)(c->max_alloc < c->props.limits.maxStorageBufferRange
                                              ? c->max_alloc
                                              : c->props.limits.maxStorageBufferRange));
        return NULL;
    }
    ag_buffer *buf = malloc(sizeof *buf);
    if (!buf) {
        ag_set_error(AG_ERR_OOM, "vulkan alloc: out of host memory");
        return NULL;
    }
    pthread_mutex_lock(&c->mem_lock);
    vk_block *hit = NULL;
    VkDeviceSize off = 0;
    bool dedicated = size > c->block_size / 2;
    for (vk_block *b = c->blocks; b && !hit && !dedicated; b = b->next)
        if (!b->dedicated && take_range(b, size, &off)) hit = b;
    ag_status s = AG_OK;
    if (!hit) {
        vk_block *b = NULL;
        s = new_block(c, dedicated ? size : c->block_size, dedicated, &b);
        if (s == AG_OK) {
            b->next = c->blocks;
            c->blocks = b;
            take_range(b, size, &off);
            hit = b;
        }
    }
    pthread_mutex_unlock(&c->mem_lock);
    if (s != AG_OK) {
        free(buf);
        return NULL;
    }
    buf->block = hit;
    buf->offset = off;
    buf->size = size;
    buf->bytes = bytes;
    return buf;
}

/* Work recorded before this and still queued may use the range: that is safe,
 * because a later command that uses an overlapping range gets a barrier before
 * it (vk_dispatch.c, order()), so it runs after. */
void vk_free(void *ctx, ag_buffer *buf)
{
    vk_ctx *c = ctx;
    if (!buf) return;
    pthread_mutex_lock(&c->mem_lock);
    give_range(buf->block, buf->offset, buf->size);
    pthread_mutex_unlock(&c->mem_lock);
    free(buf);
}

void vk_memory_trim(vk_ctx *c)
{
    pthread_mutex_lock(&c->mem_lock);
    for (vk_block **p = &c->blocks; *p;) {
        vk_block *b = *p;
        if (b->dedicated && b->used == 0) {
            *p = b->next;
            destroy_block(c, b);
        } else {
            p = &b->next;
        }
    }
    pthread_mutex_unlock(&c->mem_lock);
}

void vk_memory_destroy(vk_ctx *c)
{
    while (c->blocks) {
        vk_block *n = c->blocks->next;
        destroy_block(c, c->blocks);
        c->blocks = n;
    }
    vk_host_buf_destroy(c, &c->staging);
}

/* A buffer with memory of its own: host-visible and mapped, or (device) of
 * the tensors' device-local type, unmapped. */
static ag_status buf_create(vk_ctx *c, VkDeviceSize size, VkBufferUsageFlags usage, bool device,
                            vk_host_buf *out)
{
    vk_host_buf b = {0};
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size,
                             .usage = usage,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vk.vkCreateBuffer(c->device, &bi, NULL, &b.buf);
    VkMemoryRequirements req;
    if (r == VK_SUCCESS) {
        vk.vkGetBufferMemoryRequirements(c->device, b.buf, &req);
        int type = -1;
        const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        const uint32_t pref = device ? c->mem_type : c->host_type;
        if (req.memoryTypeBits & (1u << pref)) type = (int)pref;
        else type = find_type(c, req.memoryTypeBits, device ? VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT : hv);
        if (type < 0) r = VK_ERROR_FEATURE_NOT_PRESENT;
        VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                   .allocationSize = req.size,
                                   .memoryTypeIndex = (uint32_t)(type < 0 ? 0 : type)};
        if (r == VK_SUCCESS) r = vk.vkAllocateMemory(c->device, &ai, NULL, &b.mem);
    }
    if (r == VK_SUCCESS) r = vk.vkBindBufferMemory(c->device, b.buf, b.mem, 0);
    if (r == VK_SUCCESS && !device) r = vk.vkMapMemory(c->device, b.mem, 0, VK_WHOLE_SIZE, 0, &b.map);
    if (r != VK_SUCCESS) {
        vk_host_buf_destroy(c, &b);
        return vk_check(r, device ? "allocating device memory" : "allocating host-visible memory");
    }
    b.size = size;
    *out = b;
    return AG_OK;
}

ag_status vk_host_buf_create(vk_ctx *c, VkDeviceSize size, VkBufferUsageFlags usage, vk_host_buf *out)
{
    return buf_create(c, size, usage, false, out);
}

ag_status vk_dev_buf_create(vk_ctx *c, VkDeviceSize size, VkBufferUsageFlags usage, vk_host_buf *out)
{
    return buf_create(c, size, usage, true, out);
}

void vk_host_buf_destroy(vk_ctx *c, vk_host_buf *b)
{
    if (b->map) vk.vkUnmapMemory(c->device, b->mem);
    if (b->buf) vk.vkDestroyBuffer(c->device, b->buf, NULL);
    if (b->mem) vk.vkFreeMemory(c->device, b->mem, NULL);
    *b = (vk_host_buf){0};
}
