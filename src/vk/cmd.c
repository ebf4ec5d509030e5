/* cmd.c — the command buffer of the current batch, hazards and barriers, descriptors, staging,
 * submission, timestamps. */
#include "vk/cmd.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"

#define MAX_WRITES 64
#define MAX_READS  128
#define MAX_TIMED  2048 /* timed dispatches per batch (2 queries each) */
#define POOL_SETS  512  /* descriptor sets per pool (pool path) */
#define MAX_POOLS  64
#define N_CB       16 /* command buffers in flight within one batch */
/* A wait polls its fence (yielding the core between polls) this long before it blocks: the
 * driver's blocking wait returned ~50 us after the GPU finished on an H100, a tenth of a
 * decoded 1.1B token (SYM_VK_SPIN_US; 0: block at once). */
#define SPIN_US 20000
/* The first command buffer of a batch is submitted after this many dispatches, the next after
 * twice as many, up to submit_every: the GPU starts on a token after 4 dispatches recorded, not
 * 32 (SYM_VK_SUBMIT_FIRST; 0: submit_every from the start). */
#define SUBMIT_FIRST 4

typedef struct range {
    VkBuffer buf;
    uint64_t lo, hi;
} range;

struct sym_vk_cmd {
    sym_vk_device *d;
    sym_vk_cmd_options o;
    VkCommandPool pool;
    VkCommandBuffer cbs[N_CB];
    VkFence fences[N_CB];
    int pending[N_CB];          /* submitted, fence not yet waited for */
    double spin_s;              /* a wait polls the fence this long before blocking (SPIN_US) */
    int spin_env;               /* spin_s came from $SYM_VK_SPIN_US: sym_vk_cmd_set_spin keeps it */
    int no_barriers;            /* SYM_VK_DEBUG_NO_BARRIERS: measurement only (wrong results) */
    int exec_barriers;          /* SYM_VK_DEBUG_EXEC_BARRIERS: compute-to-compute barriers
                                 * without their memory dependency (measurement only) */
    uint64_t seq[N_CB];         /* submission number of each pending command buffer */
    uint64_t n_seq;             /* submissions so far */
    VkSemaphore wait_sem;       /* if set, every submission waits for it to reach *wait_value */
    const _Atomic uint64_t *wait_value;
    int cur;                    /* cbs[cur] is the one being recorded */
    VkCommandBuffer cb;         /* cbs[cur] */
    int recording;              /* cb begun and holds commands */
    int lost;                   /* device lost: every call fails */
    uint32_t n_in_cb;           /* dispatches recorded into cb */
    uint32_t cb_in_batch;       /* command buffers of this batch before cb */
    uint32_t submit_first;      /* the first submission of a batch after this many dispatches,
                                 * doubling with each until submit_every (0: submit_every) */
    double batch_t0;            /* when the batch's first command was recorded (s) */
    int transfer_since_barrier; /* a copy or fill was recorded after the last barrier */

    range writes[MAX_WRITES], reads[MAX_READS];
    int n_writes, n_reads;

    sym_vk_buffer *staging; /* upload ring */
    uint64_t staging_head;
    sym_vk_buffer *readback;

    VkDescriptorPool dpools[MAX_POOLS];
    int n_dpools, cur_dpool;

    sym_vk_buffer **garbage;
    int n_garbage, cap_garbage;

    VkQueryPool qpool;
    uint32_t n_timed;
    uint8_t timed_kernel[MAX_TIMED];
    double timed_bytes[MAX_TIMED], timed_flops[MAX_TIMED];
    sym_vk_profile_entry prof[SYM_VK_K_COUNT];

    sym_vk_cmd_stats stats;
};

static sym_status lost_error(void) {
    return SYM_FAIL(SYM_ERR_VULKAN, "vulkan: the device was lost (VK_ERROR_DEVICE_LOST) earlier");
}

sym_status sym_vk_cmd_create(sym_vk_device *d, const sym_vk_cmd_options *o, sym_vk_cmd **out) {
    *out = NULL;
    sym_status st = SYM_OK;
    sym_vk_cmd *c = sym_calloc(1, sizeof *c);
    if (!c) return SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory");
    c->d = d;
    c->o = *o;
    if (!c->o.staging_bytes) c->o.staging_bytes = 64ull << 20;
    /* SYM_VK_DEBUG_NO_BARRIERS=1 (benchmarks of what the barriers cost; results are wrong):
     * dispatches follow each other without compute-to-compute barriers */
    const char *nb = getenv("SYM_VK_DEBUG_NO_BARRIERS");
    c->no_barriers = nb && *nb == '1';
    const char *eb = getenv("SYM_VK_DEBUG_EXEC_BARRIERS");
    c->exec_barriers = eb && *eb == '1';
    const char *spin = getenv("SYM_VK_SPIN_US");
    /* (not on a CPU device: lavapipe's threads need the cores the poll would take) */
    double spin_us = d->caps.type == VK_PHYSICAL_DEVICE_TYPE_CPU ? 0 : SPIN_US;
    c->spin_env = spin && *spin;
    c->spin_s = (c->spin_env ? atof(spin) : spin_us) * 1e-6;
    const char *sf = getenv("SYM_VK_SUBMIT_FIRST");
    c->submit_first = sf && *sf ? (uint32_t)atoi(sf) : SUBMIT_FIRST;
    if (c->o.profiling && !d->caps.timestamp_valid_bits) {
        SYM_WARN("vulkan: the compute queue has no timestamps; profiling is off");
        c->o.profiling = 0;
    }
    for (int k = 0; k < SYM_VK_K_COUNT; k++)
        c->prof[k].name = sym_vk_kernel_name((sym_vk_kernel)k);
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT |
                                            VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = d->caps.compute_family};
    SYM_VK_TRY_GOTO(vkCreateCommandPool(d->dev, &pci, NULL, &c->pool));
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                       .commandPool = c->pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                       .commandBufferCount = N_CB};
    SYM_VK_TRY_GOTO(vkAllocateCommandBuffers(d->dev, &cai, c->cbs));
    c->cb = c->cbs[0];
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    for (int i = 0; i < N_CB; i++)
        SYM_VK_TRY_GOTO(vkCreateFence(d->dev, &fci, NULL, &c->fences[i]));
    SYM_TRY_GOTO(sym_vk_buffer_create(d, c->o.staging_bytes, SYM_VK_MEM_UPLOAD, &c->staging));
    SYM_TRY_GOTO(sym_vk_buffer_create(d, 1u << 20, SYM_VK_MEM_READBACK, &c->readback));
    if (c->o.profiling) {
        VkQueryPoolCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                     .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                     .queryCount = 2 * MAX_TIMED};
        SYM_VK_TRY_GOTO(vkCreateQueryPool(d->dev, &qci, NULL, &c->qpool));
    }
    *out = c;
    return SYM_OK;
fail:
    sym_vk_cmd_destroy(c);
    return st;
}

static void free_garbage(sym_vk_cmd *c) {
    for (int i = 0; i < c->n_garbage; i++)
        sym_vk_buffer_destroy(c->d, c->garbage[i]);
    c->n_garbage = 0;
}

void sym_vk_cmd_destroy(sym_vk_cmd *c) {
    if (!c) return;
    if (c->recording && sym_vk_cmd_flush(c) != SYM_OK)
        SYM_WARN("vulkan: pending work failed at shutdown: %s", sym_last_error());
    if (c->d->dev) vkDeviceWaitIdle(c->d->dev);
    free_garbage(c);
    sym_free(c->garbage);
    VkDevice dev = c->d->dev;
    for (int i = 0; i < c->n_dpools; i++)
        vkDestroyDescriptorPool(dev, c->dpools[i], NULL);
    if (c->qpool) vkDestroyQueryPool(dev, c->qpool, NULL);
    sym_vk_buffer_destroy(c->d, c->staging);
    sym_vk_buffer_destroy(c->d, c->readback);
    for (int i = 0; i < N_CB; i++)
        if (c->fences[i]) vkDestroyFence(dev, c->fences[i], NULL);
    if (c->pool) vkDestroyCommandPool(dev, c->pool, NULL); /* frees the command buffers */
    sym_free(c);
}

/* ---- recording state ----------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static sym_status wait_slot(sym_vk_cmd *c, int i) {
    if (!c->pending[i]) return SYM_OK;
    c->pending[i] = 0;
    if (c->spin_s > 0) {
        double t0 = now_s();
        while (vkGetFenceStatus(c->d->dev, c->fences[i]) == VK_NOT_READY && now_s() - t0 < c->spin_s)
            sched_yield(); /* the CPU backend's workers (the CPU/GPU split) keep their cores */
    }
    VkResult r = vkWaitForFences(c->d->dev, 1, &c->fences[i], VK_TRUE, UINT64_MAX);
    const char *what = "vkWaitForFences";
    if (r == VK_SUCCESS) what = "vkResetFences", r = vkResetFences(c->d->dev, 1, &c->fences[i]);
    if (r == VK_ERROR_DEVICE_LOST) c->lost = 1;
    return sym_vk_check_at(r, what, __FILE__, __LINE__);
}

static sym_status begin(sym_vk_cmd *c) {
    if (c->lost) return lost_error();
    if (c->recording) return SYM_OK;
    int first = 1;
    for (int i = 0; i < N_CB; i++)
        first = first && !c->pending[i];
    if (first) c->batch_t0 = now_s();
    SYM_TRY(wait_slot(c, c->cur)); /* the ring of command buffers went round */
    c->cb = c->cbs[c->cur];
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    SYM_VK_TRY(vkBeginCommandBuffer(c->cb, &bi));
    if (c->qpool && c->o.profiling) vkCmdResetQueryPool(c->cb, c->qpool, 0, 2 * MAX_TIMED);
    c->recording = 1;
    c->n_in_cb = 0;
    c->cb_in_batch = first ? 0 : c->cb_in_batch + 1;
    if (first) c->n_timed = 0;
    return SYM_OK;
}

/* Ends and submits the command buffer being recorded, without waiting for it. */
static sym_status submit(sym_vk_cmd *c) {
    c->recording = 0;
    sym_status st = SYM_VK_CALL(vkEndCommandBuffer(c->cb));
    if (st != SYM_OK) return st;
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &c->cb};
    uint64_t wv = 0;
    VkPipelineStageFlags ws = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    VkTimelineSemaphoreSubmitInfo tsi = {.sType = VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO,
                                         .waitSemaphoreValueCount = 1,
                                         .pWaitSemaphoreValues = &wv};
    if (c->wait_sem && (wv = *c->wait_value) > 0) {
        /* the transfer queue's finished uploads: a memory dependency on what they wrote */
        si.pNext = &tsi;
        si.waitSemaphoreCount = 1;
        si.pWaitSemaphores = &c->wait_sem;
        si.pWaitDstStageMask = &ws;
    }
    if (c->d->queue_lock) pthread_mutex_lock(c->d->queue_lock);
    VkResult r = sym_vk_debug_inject() ? VK_ERROR_DEVICE_LOST
                                       : vkQueueSubmit(c->d->queue, 1, &si, c->fences[c->cur]);
    if (c->d->queue_lock) pthread_mutex_unlock(c->d->queue_lock);
    if (r == VK_ERROR_DEVICE_LOST) c->lost = 1;
    SYM_TRY(sym_vk_check_at(r, "vkQueueSubmit", __FILE__, __LINE__));
    c->pending[c->cur] = 1;
    c->seq[c->cur] = ++c->n_seq;
    c->cur = (c->cur + 1) % N_CB;
    c->stats.n_submits++;
    return SYM_OK;
}

/* A barrier between compute (and, where a copy or fill was recorded since the last barrier or
 * is next, transfer) work: the narrowest one that covers the hazard. */
static void barrier_for(sym_vk_cmd *c, int next_is_transfer) {
    VkPipelineStageFlags src = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         dst = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    if (c->transfer_since_barrier) {
        src |= VK_PIPELINE_STAGE_TRANSFER_BIT;
        mb.srcAccessMask |= VK_ACCESS_TRANSFER_WRITE_BIT;
    }
    if (next_is_transfer) {
        dst |= VK_PIPELINE_STAGE_TRANSFER_BIT;
        mb.dstAccessMask |= VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    }
    if (c->exec_barriers && !c->transfer_since_barrier && !next_is_transfer)
        vkCmdPipelineBarrier(c->cb, src, dst, 0, 0, NULL, 0, NULL, 0, NULL);
    else
        vkCmdPipelineBarrier(c->cb, src, dst, 0, 1, &mb, 0, NULL, 0, NULL);
    c->n_writes = c->n_reads = 0;
    c->transfer_since_barrier = 0;
    c->stats.n_barriers++;
}

static void barrier(sym_vk_cmd *c) { barrier_for(c, 1); }

static int overlaps(const range *r, int n, VkBuffer b, uint64_t lo, uint64_t hi) {
    for (int i = 0; i < n; i++)
        if (r[i].buf == b && lo < r[i].hi && r[i].lo < hi) return 1;
    return 0;
}

/* Does touching [lo, hi) of b conflict with what was touched since the last barrier? */
static int conflicts(const sym_vk_cmd *c, VkBuffer b, uint64_t lo, uint64_t hi, int write) {
    return overlaps(c->writes, c->n_writes, b, lo, hi) ||
           (write && overlaps(c->reads, c->n_reads, b, lo, hi));
}

static void note(sym_vk_cmd *c, VkBuffer b, uint64_t lo, uint64_t hi, int write) {
    if (write ? c->n_writes == MAX_WRITES : c->n_reads == MAX_READS) barrier(c);
    range *r = write ? &c->writes[c->n_writes++] : &c->reads[c->n_reads++];
    *r = (range){b, lo, hi};
}

/* Barrier if any of the accesses of the next command (a dispatch, or a copy or fill) conflicts,
 * then records them. */
static void track(sym_vk_cmd *c, const sym_vk_arg *a, uint32_t n, int is_transfer) {
    int need = c->o.profiling; /* timing serializes dispatches */
    for (uint32_t i = 0; i < n && !need; i++)
        need = conflicts(c, a[i].buf->buf, a[i].lo, a[i].hi, a[i].write);
    if (need && c->no_barriers && !is_transfer && !c->transfer_since_barrier) {
        c->n_writes = c->n_reads = 0; /* what the barriers cost: the hazards are left open */
        need = 0;
    }
    if (need) barrier_for(c, is_transfer);
    for (uint32_t i = 0; i < n; i++)
        if (a[i].lo < a[i].hi) note(c, a[i].buf->buf, a[i].lo, a[i].hi, a[i].write);
    if (is_transfer) c->transfer_since_barrier = 1;
}

/* ---- descriptors --------------------------------------------------------------------------- */

static sym_status bind_pool_set(sym_vk_cmd *c, const sym_vk_pipeline *p,
                                const VkWriteDescriptorSet *w) {
    VkDescriptorSet set = VK_NULL_HANDLE;
    for (;;) {
        if (c->cur_dpool < c->n_dpools) {
            VkDescriptorSetAllocateInfo ai = {.sType =
                                                  VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                              .descriptorPool = c->dpools[c->cur_dpool],
                                              .descriptorSetCount = 1,
                                              .pSetLayouts = &p->dsl};
            VkResult r = sym_vk_debug_inject() ? VK_ERROR_OUT_OF_DEVICE_MEMORY
                                               : vkAllocateDescriptorSets(c->d->dev, &ai, &set);
            if (r == VK_SUCCESS) break;
            if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL)
                return sym_vk_check_at(r, "vkAllocateDescriptorSets", __FILE__, __LINE__);
            c->cur_dpool++;
            continue;
        }
        SYM_CHECK(c->n_dpools < MAX_POOLS, SYM_ERR_VULKAN,
                  "vulkan: more than %d descriptor sets in one batch", MAX_POOLS * POOL_SETS);
        VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                   .descriptorCount = POOL_SETS * 5};
        VkDescriptorPoolCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                         .maxSets = POOL_SETS,
                                         .poolSizeCount = 1,
                                         .pPoolSizes = &ps};
        SYM_VK_TRY(vkCreateDescriptorPool(c->d->dev, &ci, NULL, &c->dpools[c->n_dpools]));
        c->n_dpools++;
    }
    VkWriteDescriptorSet ws[SYM_VK_MAX_BINDINGS];
    for (uint32_t i = 0; i < p->n_bindings; i++) {
        ws[i] = w[i];
        ws[i].dstSet = set;
    }
    vkUpdateDescriptorSets(c->d->dev, p->n_bindings, ws, 0, NULL);
    vkCmdBindDescriptorSets(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
    return SYM_OK;
}

/* ---- commands ------------------------------------------------------------------------------ */

sym_status sym_vk_cmd_dispatch(sym_vk_cmd *c, const sym_vk_pipeline *p, const sym_vk_arg *args,
                               const void *push, uint32_t gx, uint32_t gy, uint32_t gz,
                               double bytes, double flops) {
    SYM_ASSERT(p->n_bindings <= SYM_VK_MAX_BINDINGS);
    const uint32_t *maxc = c->d->caps.max_workgroup_count;
    SYM_CHECK(gx <= maxc[0] && gy <= maxc[1] && gz <= maxc[2], SYM_ERR_INTERNAL,
              "vulkan: %s grid %u x %u x %u exceeds the device's limit",
              sym_vk_kernel_name(p->kernel), gx, gy, gz);
    if (gx == 0 || gy == 0 || gz == 0) return SYM_OK;
    SYM_TRY(begin(c));
    VkDescriptorBufferInfo bi[SYM_VK_MAX_BINDINGS];
    VkWriteDescriptorSet w[SYM_VK_MAX_BINDINGS];
    for (uint32_t i = 0; i < p->n_bindings; i++) {
        SYM_ASSERT(args[i].buf && args[i].offset + args[i].range <= args[i].buf->size);
        bi[i] = (VkDescriptorBufferInfo){args[i].buf->buf, args[i].offset, args[i].range};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstBinding = i,
                                      .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &bi[i]};
    }
    track(c, args, p->n_bindings, 0);
    vkCmdBindPipeline(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipe);
    if (c->o.push_descriptors)
        c->d->cmd_push_descriptor_set(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0,
                                      p->n_bindings, w);
    else
        SYM_TRY(bind_pool_set(c, p, w));
    vkCmdPushConstants(c->cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, p->push_bytes, push);
    int timed = c->qpool && c->o.profiling && c->n_timed < MAX_TIMED;
    if (timed)
        vkCmdWriteTimestamp(c->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool, 2 * c->n_timed);
    vkCmdDispatch(c->cb, gx, gy, gz);
    if (timed) {
        vkCmdWriteTimestamp(c->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool,
                            2 * c->n_timed + 1);
        c->timed_kernel[c->n_timed] = (uint8_t)p->kernel;
        c->timed_bytes[c->n_timed] = bytes;
        c->timed_flops[c->n_timed] = flops;
        c->n_timed++;
    }
    c->stats.n_dispatches++;
    /* hand finished stretches to the GPU while the rest of the batch is recorded */
    if (c->o.submit_every > 0 && !c->o.profiling) {
        uint32_t every = (uint32_t)c->o.submit_every;
        if (c->submit_first && c->cb_in_batch < 16 && (c->submit_first << c->cb_in_batch) < every)
            every = c->submit_first << c->cb_in_batch;
        if (++c->n_in_cb >= every)
            SYM_TRY(submit(c)); /* (not with timestamps: their pool is
                                 * reset per batch) */
    }
    return SYM_OK;
}

sym_status sym_vk_cmd_zero(sym_vk_cmd *c, sym_vk_buffer *b) {
    SYM_TRY(begin(c));
    sym_vk_arg a = {.buf = b, .lo = 0, .hi = b->size, .write = 1};
    track(c, &a, 1, 1);
    vkCmdFillBuffer(c->cb, b->buf, 0, b->size, 0);
    return SYM_OK;
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* Reserves bytes in the staging ring (flushing when full); returns the offset. */
static sym_status ring_take(sym_vk_cmd *c, uint64_t bytes, uint64_t *off) {
    uint64_t a = c->d->caps.min_storage_buffer_offset_alignment;
    if (a < 16) a = 16;
    uint64_t at = align_up(c->staging_head, a);
    if (at + bytes > c->staging->size) {
        SYM_TRY(sym_vk_cmd_flush(c));
        c->stats.n_early_flushes++;
        at = 0;
    }
    SYM_ASSERT(at + bytes <= c->staging->size);
    c->staging_head = at + bytes;
    *off = at;
    return SYM_OK;
}

sym_status sym_vk_cmd_upload(sym_vk_cmd *c, sym_vk_buffer *b, uint64_t off, const void *src,
                             uint64_t bytes) {
    SYM_CHECK(off + bytes <= b->size, SYM_ERR_ARG, "vulkan: upload past the end of a buffer");
    const unsigned char *s = src;
    while (bytes) {
        uint64_t chunk = bytes < c->o.staging_bytes / 2 ? bytes : c->o.staging_bytes / 2;
        uint64_t at;
        SYM_TRY(ring_take(c, chunk, &at));
        SYM_TRY(begin(c));
        memcpy((unsigned char *)c->staging->map + at, s, chunk);
        sym_vk_arg a = {.buf = b, .lo = off, .hi = off + chunk, .write = 1};
        track(c, &a, 1, 1);
        VkBufferCopy region = {.srcOffset = at, .dstOffset = off, .size = chunk};
        vkCmdCopyBuffer(c->cb, c->staging->buf, b->buf, 1, &region);
        c->stats.bytes_uploaded += chunk;
        s += chunk;
        off += chunk;
        bytes -= chunk;
    }
    return SYM_OK;
}

sym_status sym_vk_cmd_stage(sym_vk_cmd *c, const void *src, uint64_t bytes, sym_vk_arg *out) {
    uint64_t padded = align_up(bytes ? bytes : 4, 16);
    SYM_CHECK(padded <= c->o.staging_bytes / 2, SYM_ERR_ARG,
              "vulkan: %llu bytes of host data is too large to stage", (unsigned long long)bytes);
    uint64_t at;
    SYM_TRY(ring_take(c, padded, &at));
    memcpy((unsigned char *)c->staging->map + at, src, bytes);
    /* the ring is only written by the host before submission: no device hazard to track, and
     * the range is its own (lo == hi marks "untracked") */
    *out = (sym_vk_arg){.buf = c->staging, .offset = at, .range = padded, .lo = 0, .hi = 0};
    return SYM_OK;
}

sym_status sym_vk_cmd_download(sym_vk_cmd *c, const sym_vk_buffer *b, uint64_t off, void *dst,
                               uint64_t bytes) {
    SYM_CHECK(off + bytes <= b->size, SYM_ERR_ARG, "vulkan: download past the end of a buffer");
    const uint64_t max_chunk = 64ull << 20;
    if (bytes > c->readback->size && c->readback->size < max_chunk) {
        /* grow the readback buffer (after pending work: it may be the target of a copy) */
        SYM_TRY(sym_vk_cmd_flush(c));
        uint64_t want = bytes < max_chunk ? bytes : max_chunk;
        sym_vk_buffer *nb;
        SYM_TRY(sym_vk_buffer_create(c->d, want, SYM_VK_MEM_READBACK, &nb));
        sym_vk_buffer_destroy(c->d, c->readback);
        c->readback = nb;
    }
    unsigned char *d = dst;
    while (bytes) {
        uint64_t chunk = bytes < c->readback->size ? bytes : c->readback->size;
        SYM_TRY(begin(c));
        sym_vk_arg a = {.buf = b, .lo = off, .hi = off + chunk, .write = 0};
        track(c, &a, 1, 1);
        VkBufferCopy region = {.srcOffset = off, .dstOffset = 0, .size = chunk};
        vkCmdCopyBuffer(c->cb, b->buf, c->readback->buf, 1, &region);
        VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                              .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                              .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
        vkCmdPipelineBarrier(c->cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0,
                             1, &mb, 0, NULL, 0, NULL);
        SYM_TRY(sym_vk_cmd_flush(c));
        memcpy(d, c->readback->map, chunk);
        c->stats.bytes_downloaded += chunk;
        d += chunk;
        off += chunk;
        bytes -= chunk;
    }
    return SYM_OK;
}

static void collect_timestamps(sym_vk_cmd *c) {
    if (!c->qpool || !c->n_timed) return;
    uint64_t ts[2 * 64];
    uint32_t bits = c->d->caps.timestamp_valid_bits;
    uint64_t mask = bits >= 64 ? ~0ull : ((1ull << bits) - 1);
    double ns_per_tick = c->d->caps.timestamp_period_ns;
    for (uint32_t base = 0; base < c->n_timed; base += 64) {
        uint32_t n = c->n_timed - base < 64 ? c->n_timed - base : 64;
        if (vkGetQueryPoolResults(c->d->dev, c->qpool, 2 * base, 2 * n, sizeof ts, ts, sizeof ts[0],
                                  VK_QUERY_RESULT_64_BIT) != VK_SUCCESS)
            return;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t t0 = ts[2 * i] & mask, t1 = ts[2 * i + 1] & mask;
            sym_vk_profile_entry *e = &c->prof[c->timed_kernel[base + i]];
            e->n_dispatch++;
            e->gpu_ms += (double)((t1 - t0) & mask) * ns_per_tick * 1e-6;
            e->bytes += c->timed_bytes[base + i];
            e->flops += c->timed_flops[base + i];
        }
    }
}

sym_status sym_vk_cmd_flush(sym_vk_cmd *c) {
    if (c->lost) return lost_error();
    int any = c->recording;
    for (int i = 0; i < N_CB; i++)
        any = any || c->pending[i];
    if (!any) {
        free_garbage(c);
        c->staging_head = 0;
        return SYM_OK;
    }
    sym_status st = SYM_OK;
    if (c->recording) st = submit(c);
    double t_sub = now_s();
    /* wait for every command buffer, oldest first, even after a failure */
    for (int k = 0; k < N_CB; k++) {
        sym_status sw = wait_slot(c, (c->cur + k) % N_CB);
        if (st == SYM_OK) st = sw;
    }
    c->recording = 0;
    c->n_writes = c->n_reads = 0;
    c->transfer_since_barrier = 0;
    double t_done = now_s();
    c->stats.record_ms += (t_sub - c->batch_t0) * 1e3;
    c->stats.wait_ms += (t_done - t_sub) * 1e3;
    c->stats.n_batches++;
    if (st == SYM_OK) collect_timestamps(c);
    /* whatever happened, the batch is over: reset for the next one */
    if (!c->lost) {
        vkResetCommandPool(c->d->dev, c->pool, 0);
        for (int i = 0; i < c->n_dpools; i++)
            vkResetDescriptorPool(c->d->dev, c->dpools[i], 0);
        c->cur_dpool = 0;
        free_garbage(c);
    }
    c->cur = 0;
    c->staging_head = 0;
    return st;
}

uint64_t sym_vk_cmd_mark(sym_vk_cmd *c, sym_status *st) {
    *st = c->lost ? lost_error() : SYM_OK;
    if (*st != SYM_OK) return 0;
    if (c->recording && (*st = submit(c)) != SYM_OK) return 0;
    for (int i = 0; i < N_CB; i++)
        if (c->pending[i]) return c->n_seq;
    return 0;
}

int sym_vk_cmd_mark_done(sym_vk_cmd *c, uint64_t mark, int wait, sym_status *st) {
    *st = SYM_OK;
    if (c->lost) {
        *st = lost_error();
        return 1;
    }
    for (int k = 0; k < N_CB; k++) { /* oldest first */
        int i = (c->cur + k) % N_CB;
        if (!c->pending[i] || c->seq[i] > mark) continue;
        if (!wait) {
            VkResult r = vkGetFenceStatus(c->d->dev, c->fences[i]);
            if (r == VK_NOT_READY) return 0;
            if (r != VK_SUCCESS) {
                if (r == VK_ERROR_DEVICE_LOST) c->lost = 1;
                *st = sym_vk_check_at(r, "vkGetFenceStatus", __FILE__, __LINE__);
                return 1;
            }
        }
        if ((*st = wait_slot(c, i)) != SYM_OK) return 1;
    }
    return 1;
}

int sym_vk_cmd_idle(const sym_vk_cmd *c) {
    if (c->recording) return 0;
    for (int i = 0; i < N_CB; i++)
        if (c->pending[i]) return 0;
    return 1;
}

void sym_vk_cmd_set_wait(sym_vk_cmd *c, VkSemaphore sem, const _Atomic uint64_t *value) {
    c->wait_sem = sem;
    c->wait_value = value;
}

void sym_vk_cmd_release(sym_vk_cmd *c, sym_vk_buffer *b) {
    if (!b) return;
    if (!c->recording && !c->lost) {
        sym_vk_buffer_destroy(c->d, b);
        return;
    }
    if (c->n_garbage == c->cap_garbage) {
        int cap = c->cap_garbage ? 2 * c->cap_garbage : 64;
        sym_vk_buffer **g = sym_realloc(c->garbage, (size_t)cap * sizeof *g);
        if (!g) { /* cannot defer: wait for the GPU instead */
            vkDeviceWaitIdle(c->d->dev);
            sym_vk_buffer_destroy(c->d, b);
            return;
        }
        c->garbage = g;
        c->cap_garbage = cap;
    }
    c->garbage[c->n_garbage++] = b;
}

void sym_vk_cmd_set_spin(sym_vk_cmd *c, double us) {
    if (!c->spin_env && us >= 0) c->spin_s = us * 1e-6;
}

sym_status sym_vk_cmd_set_profiling(sym_vk_cmd *c, int on) {
    SYM_TRY(sym_vk_cmd_flush(c));
    if (on && !c->qpool) {
        SYM_CHECK(c->d->caps.timestamp_valid_bits, SYM_ERR_UNSUPPORTED,
                  "vulkan: the compute queue has no timestamps");
        VkQueryPoolCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                     .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                     .queryCount = 2 * MAX_TIMED};
        SYM_VK_TRY(vkCreateQueryPool(c->d->dev, &qci, NULL, &c->qpool));
    }
    c->o.profiling = on != 0;
    return SYM_OK;
}

int sym_vk_cmd_profile(const sym_vk_cmd *c, sym_vk_profile_entry *out, int cap) {
    int n = 0;
    for (int k = 0; k < SYM_VK_K_COUNT && n < cap; k++)
        if (c->prof[k].n_dispatch) out[n++] = c->prof[k];
    return n;
}

void sym_vk_cmd_profile_reset(sym_vk_cmd *c) {
    for (int k = 0; k < SYM_VK_K_COUNT; k++) {
        const char *name = c->prof[k].name;
        memset(&c->prof[k], 0, sizeof c->prof[k]);
        c->prof[k].name = name;
    }
}

void sym_vk_cmd_get_stats(const sym_vk_cmd *c, sym_vk_cmd_stats *out) { *out = c->stats; }
