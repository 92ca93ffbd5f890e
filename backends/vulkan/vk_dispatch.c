/* Command batches: dispatches are recorded into one command buffer and
 * submitted when the batch is full or someone waits. Two batches alternate, so
 * recording never waits for the device unless both are busy. A command is
 * preceded by a full compute/transfer barrier only when it uses a buffer range
 * that a command since the last barrier used (read or write: every binding
 * counts as both), so independent commands, such as an optimizer's steps over
 * many parameters, run without one between them. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk.h"

static _Atomic uint64_t stats[VK_STAT_COUNT];
static atomic_bool stats_on;

void vk_count(vk_stat which)
{
    if (atomic_load_explicit(&stats_on, memory_order_relaxed))
        atomic_fetch_add_explicit(&stats[which], 1, memory_order_relaxed);
}

static void print_stats(void)
{
    fprintf(stderr, "anygrad vulkan: %llu dispatches, %llu copies, %llu barriers, %llu submits, %llu host waits\n",
            (unsigned long long)stats[VK_STAT_DISPATCH], (unsigned long long)stats[VK_STAT_COPY],
            (unsigned long long)stats[VK_STAT_BARRIER], (unsigned long long)stats[VK_STAT_SUBMIT],
            (unsigned long long)stats[VK_STAT_WAIT]);
    fprintf(stderr, "anygrad vulkan: %llu pipelines, %llu with a required subgroup size\n",
            (unsigned long long)stats[VK_STAT_PIPELINE], (unsigned long long)stats[VK_STAT_PIPELINE_SIZED]);
}

void vk_stats_init(void)
{
    const char *e = getenv("AG_VULKAN_STATS");
    bool was = false;
    if (e && strcmp(e, "1") == 0 && atomic_compare_exchange_strong(&stats_on, &was, true)) atexit(print_stats);
}

/* Small batches keep desktop watchdogs away and the latency of a sync low. */
#define VK_BATCH_DISPATCHES 256
#define VK_PARAMS_BYTES ((VkDeviceSize)1 << 20)

static const VkPipelineStageFlags ALL_WORK =
    VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;

ag_status vk_batches_init(vk_ctx *c)
{
    VkCommandPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                  .queueFamilyIndex = c->queue_family};
    ag_status s = vk_check(vk.vkCreateCommandPool(c->device, &pi, NULL, &c->cmd_pool), "command pool");
    for (int i = 0; i < 2 && s == AG_OK; i++) {
        vk_slot *sl = &c->slots[i];
        VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                          .commandPool = c->cmd_pool,
                                          .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                          .commandBufferCount = 1};
        s = vk_check(vk.vkAllocateCommandBuffers(c->device, &ai, &sl->cmd), "command buffer");
        if (s == AG_OK && !c->mem_host_visible)
            s = vk_check(vk.vkAllocateCommandBuffers(c->device, &ai, &sl->pcmd), "command buffer");
        VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        if (s == AG_OK) s = vk_check(vk.vkCreateFence(c->device, &fi, NULL, &sl->fence), "fence");
        VkDescriptorPoolSize sizes[2] = {
            {VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER, VK_BATCH_DISPATCHES + 8},
            {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, (VK_BATCH_DISPATCHES + 8) * (VK_MAX_BINDINGS + 1)}};
        VkDescriptorPoolCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                         .maxSets = VK_BATCH_DISPATCHES + 8,
                                         .poolSizeCount = 2,
                                         .pPoolSizes = sizes};
        if (s == AG_OK) s = vk_check(vk.vkCreateDescriptorPool(c->device, &di, NULL, &sl->pool), "descriptor pool");
        const VkBufferUsageFlags pu = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT;
        if (s == AG_OK)
            s = vk_host_buf_create(c, VK_PARAMS_BYTES, pu | VK_BUFFER_USAGE_TRANSFER_SRC_BIT, &sl->params);
        if (s == AG_OK && !c->mem_host_visible)
            s = vk_dev_buf_create(c, VK_PARAMS_BYTES, pu | VK_BUFFER_USAGE_TRANSFER_DST_BIT, &sl->params_dev);
    }
    return s;
}

void vk_batches_destroy(vk_ctx *c)
{
    for (int i = 0; i < 2; i++) {
        vk_slot *sl = &c->slots[i];
        if (sl->pool) vk.vkDestroyDescriptorPool(c->device, sl->pool, NULL);
        if (sl->fence) vk.vkDestroyFence(c->device, sl->fence, NULL);
        vk_host_buf_destroy(c, &sl->params);
        vk_host_buf_destroy(c, &sl->params_dev);
    }
    if (c->cmd_pool) vk.vkDestroyCommandPool(c->device, c->cmd_pool, NULL);
}

static ag_status wait_slot(vk_ctx *c, vk_slot *sl)
{
    if (!sl->in_flight) return AG_OK;
    vk_count(VK_STAT_WAIT);
    VkResult r = vk.vkWaitForFences(c->device, 1, &sl->fence, VK_TRUE, UINT64_MAX);
    sl->in_flight = false;
    if (r == VK_SUCCESS) r = vk.vkResetFences(c->device, 1, &sl->fence);
    return vk_check(r, "waiting for the device");
}

/* The current slot, recording; waits for it first if it is still running. */
static ag_status begin(vk_ctx *c, vk_slot **out)
{
    vk_slot *sl = &c->slots[c->cur];
    *out = sl;
    if (sl->recording) return AG_OK;
    ag_status s = wait_slot(c, sl);
    if (s != AG_OK) return s;
    vk.vkResetDescriptorPool(c->device, sl->pool, 0);
    sl->params_used = 0;
    sl->ndispatch = 0;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    s = vk_check(vk.vkBeginCommandBuffer(sl->cmd, &bi), "begin command buffer");
    sl->recording = s == AG_OK;
    return s;
}

static ag_status submit(vk_ctx *c)
{
    vk_slot *sl = &c->slots[c->cur];
    if (!sl->recording) return AG_OK;
    /* results become visible to the host (mapped memory, staging) */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    vk.vkCmdPipelineBarrier(sl->cmd, ALL_WORK, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    sl->recording = false;
    ag_status s = vk_check(vk.vkEndCommandBuffer(sl->cmd), "end command buffer");
    if (s != AG_OK) return s;
    /* device-local parameters: copied in by pcmd, ahead of the batch in the
     * same submission (its barrier orders the copy before every shader) */
    VkCommandBuffer cmds[2] = {sl->pcmd, sl->cmd};
    const bool copy = sl->params_dev.buf && sl->params_used > 0;
    if (copy) {
        VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                       .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
        s = vk_check(vk.vkBeginCommandBuffer(sl->pcmd, &bi), "begin command buffer");
        if (s != AG_OK) return s;
        VkBufferCopy region = {0, 0, sl->params_used};
        vk.vkCmdCopyBuffer(sl->pcmd, sl->params.buf, sl->params_dev.buf, 1, &region);
        VkMemoryBarrier pb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                              .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                              .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_UNIFORM_READ_BIT};
        vk.vkCmdPipelineBarrier(sl->pcmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                                VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &pb, 0, NULL, 0, NULL);
        s = vk_check(vk.vkEndCommandBuffer(sl->pcmd), "end command buffer");
        if (s != AG_OK) return s;
    }
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = copy ? 2 : 1,
                       .pCommandBuffers = copy ? cmds : &sl->cmd};
    s = vk_check(vk.vkQueueSubmit(c->queue, 1, &si, sl->fence), "queue submit");
    if (s != AG_OK) return s;
    sl->in_flight = true;
    vk_count(VK_STAT_SUBMIT);
    c->cur ^= 1;
    return AG_OK;
}

static void barrier(VkCommandBuffer cmd)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    vk.vkCmdPipelineBarrier(cmd, ALL_WORK, ALL_WORK, 0, 1, &mb, 0, NULL, 0, NULL);
}

static bool overlap(const vk_span *a, const vk_span *b)
{
    return a->buf == b->buf && a->off < b->off + b->size && b->off < a->off + a->size;
}

/* Before a command that uses spans[0, n): a barrier if one of them overlaps a
 * range used since the last barrier (the earlier command may still be writing
 * or reading it; a barrier's first scope covers every command submitted
 * before it, in earlier batches too). Called with c->lock held. */
static void order(vk_ctx *c, VkCommandBuffer cmd, int n, const vk_span *spans)
{
    bool need = c->all_barriers || c->ntouched + n > VK_TRACK_SPANS;
    for (int i = 0; i < n && !need; i++)
        for (int j = 0; j < c->ntouched && !need; j++) need = overlap(&spans[i], &c->touched[j]);
    if (need) {
        vk_count(VK_STAT_BARRIER);
        barrier(cmd);
        c->ntouched = 0;
    }
    for (int i = 0; i < n && c->ntouched < VK_TRACK_SPANS; i++) c->touched[c->ntouched++] = spans[i];
}

ag_status vk_flush_wait(vk_ctx *c)
{
    pthread_mutex_lock(&c->lock);
    ag_status s = submit(c);
    for (int i = 0; i < 2; i++) {
        ag_status w = wait_slot(c, &c->slots[i]);
        if (s == AG_OK) s = w;
    }
    int errs = vk_validation_errors();
    if (s == AG_OK && errs > c->seen_validation) {
        s = ag_set_error(AG_ERR_DEVICE, "vulkan: the validation layer reported %d error(s); see stderr",
                         errs - c->seen_validation);
        c->seen_validation = errs;
    }
    /* Unused large blocks go while the lock still keeps other threads from
     * recording: right now nothing recorded is unsubmitted, so no command can
     * name a block freed here (after the unlock, one could). */
    if (s == AG_OK) vk_memory_trim(c);
    pthread_mutex_unlock(&c->lock);
    return s;
}

ag_status vk_record_copy(vk_ctx *c, VkBuffer src, VkDeviceSize soff, VkBuffer dst,
                         VkDeviceSize doff, VkDeviceSize bytes)
{
    pthread_mutex_lock(&c->lock);
    vk_slot *sl;
    ag_status s = begin(c, &sl);
    if (s == AG_OK) {
        const vk_span sp[2] = {{src, soff, bytes}, {dst, doff, bytes}};
        order(c, sl->cmd, 2, sp);
        VkBufferCopy region = {soff, doff, bytes};
        vk.vkCmdCopyBuffer(sl->cmd, src, dst, 1, &region);
        vk_count(VK_STAT_COPY);
        if (++sl->ndispatch >= VK_BATCH_DISPATCHES) s = submit(c);
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

ag_status vk_dispatch(vk_ctx *c, const char *name, const uint32_t *spec, int nspec,
                      const void *params, size_t params_size, int nbufs, const vk_bind *bufs,
                      uint32_t gx, uint32_t gy, uint32_t gz)
{
    if (gx == 0 || gy == 0 || gz == 0) return AG_OK;
    if (nbufs < 0 || nbufs + 1 > VK_MAX_BINDINGS || nspec < 0 || nspec > VK_MAX_SPEC)
        return ag_set_error(AG_ERR_ARG, "vulkan %s: bad binding or constant count", name);
    const uint32_t *lim = c->props.limits.maxComputeWorkGroupCount;
    if (gx > lim[0] || gy > lim[1] || gz > lim[2])
        return ag_set_error(AG_ERR_UNSUPPORTED, "vulkan %s: %u x %u x %u work groups exceed %s's limit",
                            name, gx, gy, gz, c->name);
    /* the parameter block: a storage buffer, or a uniform one (std140, laid out
     * to match the C structs) in _u variants; offsets aligned for both */
    VkDeviceSize psize = params_size ? (params_size + 15) / 16 * 16 : 16;
    VkDeviceSize palign = c->props.limits.minUniformBufferOffsetAlignment;
    if (palign < c->align) palign = c->align;
    VkDeviceSize pstep = (psize + palign - 1) / palign * palign;
    if (psize > c->props.limits.maxUniformBufferRange || pstep > VK_PARAMS_BYTES)
        return ag_set_error(AG_ERR_ARG, "vulkan %s: parameters too large", name);

    pthread_mutex_lock(&c->lock);
    vk_slot *sl;
    ag_status s = AG_OK;
    vk_pipeline *p = vk_pipeline_get(c, name, spec, nspec, nbufs);
    if (!p) s = ag_last_status() ? ag_last_status() : AG_ERR_DEVICE;
    if (s == AG_OK) s = begin(c, &sl);
    if (s == AG_OK && sl->params_used + pstep > VK_PARAMS_BYTES) {
        s = submit(c);
        if (s == AG_OK) s = begin(c, &sl);
    }
    VkDescriptorSet set = VK_NULL_HANDLE;
    if (s == AG_OK) {
        VkDescriptorSetLayout dsl = vk_pipeline_set_layout(p);
        VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                          .descriptorPool = sl->pool,
                                          .descriptorSetCount = 1,
                                          .pSetLayouts = &dsl};
        s = vk_check(vk.vkAllocateDescriptorSets(c->device, &ai, &set), "descriptor set");
    }
    if (s == AG_OK) {
        VkDeviceSize poff = sl->params_used;
        if (params_size) memcpy((char *)sl->params.map + poff, params, params_size);
        sl->params_used += pstep;
        VkDescriptorBufferInfo info[VK_MAX_BINDINGS];
        VkWriteDescriptorSet w[VK_MAX_BINDINGS];
        vk_span spans[VK_MAX_BINDINGS];
        int nspans = 0;
        info[0] = (VkDescriptorBufferInfo){sl->params_dev.buf ? sl->params_dev.buf : sl->params.buf,
                                           poff, psize};
        for (int i = 0; i < nbufs; i++) {
            const ag_buffer *b = bufs[i] ? bufs[i] : c->dummy;
            info[i + 1] = (VkDescriptorBufferInfo){vk_block_buffer(b->block), b->offset, b->size};
            /* the dummy is never written; each dispatch's parameters are its own */
            if (b != c->dummy) spans[nspans++] = (vk_span){info[i + 1].buffer, b->offset, b->size};
        }
        for (int i = 0; i <= nbufs; i++)
            w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                          .dstSet = set,
                                          .dstBinding = (uint32_t)i,
                                          .descriptorCount = 1,
                                          .descriptorType = i == 0 && vk_pipeline_uniform(p)
                                                                ? VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER
                                                                : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                          .pBufferInfo = &info[i]};
        vk.vkUpdateDescriptorSets(c->device, (uint32_t)nbufs + 1, w, 0, NULL);
        order(c, sl->cmd, nspans, spans);
        vk.vkCmdBindPipeline(sl->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk_pipeline_handle(p));
        vk.vkCmdBindDescriptorSets(sl->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk_pipeline_layout(p), 0, 1,
                                   &set, 0, NULL);
        vk.vkCmdDispatch(sl->cmd, gx, gy, gz);
        vk_count(VK_STAT_DISPATCH);
        if (++sl->ndispatch >= VK_BATCH_DISPATCHES) s = submit(c);
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

ag_status vk_run1(vk_ctx *c, const char *name, const void *params, size_t params_size,
                  int nbufs, const vk_bind *bufs, size_t n)
{
    if (n == 0) return AG_OK;
    size_t groups = (n + c->wg - 1) / c->wg;
    size_t cap = c->props.limits.maxComputeWorkGroupCount[0];
    if (cap > 65535) cap = 65535; /* shaders loop with a grid stride beyond this */
    if (groups > cap) groups = cap;
    return vk_dispatch(c, name, NULL, 0, params, params_size, nbufs, bufs, (uint32_t)groups, 1, 1);
}

uint32_t vk_reduce_wg(const vk_ctx *c)
{
    uint32_t wg = 256;
    while (wg > 1 && (wg > c->props.limits.maxComputeWorkGroupInvocations ||
                      wg > c->props.limits.maxComputeWorkGroupSize[0]))
        wg /= 2;
    return wg;
}
