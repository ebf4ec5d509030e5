/* buffer.c — buffers, memory-type choice, size checks against the device's limits. */
#include "vk/buffer.h"

#include <stdatomic.h>

#include "base/alloc.h"
#include "base/log.h"

static _Atomic uint64_t g_device_bytes;
static _Atomic uint64_t g_device_peak;

uint64_t sym_vk_buffer_device_bytes(void) { return atomic_load(&g_device_bytes); }
uint64_t sym_vk_buffer_device_peak(void) { return atomic_load(&g_device_peak); }
void sym_vk_buffer_device_peak_reset(void) {
    atomic_store(&g_device_peak, atomic_load(&g_device_bytes));
}

/* Best memory type for kind among those allowed by type_bits; -1 if none. */
static int pick_type(const sym_vk_caps *c, uint32_t type_bits, sym_vk_mem kind) {
    const VkMemoryPropertyFlags DL = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                                HV = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT,
                                HC = VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                CA = VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
    int best = -1, best_score = -1;
    for (uint32_t i = 0; i < c->n_types; i++) {
        if (!(type_bits & (1u << i))) continue;
        VkMemoryPropertyFlags f = c->types[i].flags;
        int score;
        switch (kind) {
        case SYM_VK_MEM_DEVICE:
            score = (f & DL) ? 2 + !(f & HV) : 1;
            break;
        case SYM_VK_MEM_UPLOAD:
            if ((f & (HV | HC)) != (HV | HC)) continue;
            score = 1 + !(f & DL) + !(f & CA); /* system memory, write-combined */
            break;
        default:
            if ((f & (HV | HC)) != (HV | HC)) continue;
            score = 1 + 2 * !!(f & CA) + !(f & DL);
            break;
        }
        if (score > best_score) best = (int)i, best_score = score;
    }
    return best;
}

static double gib(uint64_t b) { return (double)b / (double)(1ull << 30); }

sym_status sym_vk_buffer_create(sym_vk_device *d, uint64_t size, sym_vk_mem kind,
                                sym_vk_buffer **out) {
    *out = NULL;
    const sym_vk_caps *c = &d->caps;
    SYM_CHECK(size > 0 && size < (1ull << 62), SYM_ERR_ARG, "vulkan: bad buffer size %llu",
              (unsigned long long)size);
    size = (size + 63) & ~63ull;
    SYM_CHECK(size <= c->max_buffer_size, SYM_ERR_BUDGET,
              "vulkan: a %.2f GiB buffer exceeds the device's maxBufferSize (%.2f GiB); split the "
              "tensor",
              gib(size), gib(c->max_buffer_size));
    SYM_CHECK(size <= c->max_memory_allocation_size, SYM_ERR_BUDGET,
              "vulkan: a %.2f GiB buffer exceeds the device's maxMemoryAllocationSize (%.2f GiB); "
              "split the tensor",
              gib(size), gib(c->max_memory_allocation_size));
    sym_status st = SYM_OK;
    sym_vk_buffer *b = sym_calloc(1, sizeof *b);
    if (!b) return SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory");
    b->kind = kind;
    b->size = size;
    b->bf16_fits_f16 = 1;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    if (d->n_families > 1) { /* read and written by the compute and transfer queues */
        bi.sharingMode = VK_SHARING_MODE_CONCURRENT;
        bi.queueFamilyIndexCount = d->n_families;
        bi.pQueueFamilyIndices = d->families;
    }
    SYM_VK_TRY_GOTO(vkCreateBuffer(d->dev, &bi, NULL, &b->buf));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d->dev, b->buf, &req);
    int t = pick_type(c, req.memoryTypeBits, kind);
    if (t < 0)
        SYM_FAIL_GOTO(SYM_ERR_VULKAN, "vulkan: no memory type for a %s buffer",
                      kind == SYM_VK_MEM_DEVICE ? "device" : "host-visible");
    b->mem_type = (uint32_t)t;
    uint32_t heap = c->types[t].heap;
    if (req.size > c->heaps[heap].size_bytes)
        SYM_FAIL_GOTO(SYM_ERR_BUDGET,
                      "vulkan: a %.2f GiB buffer is larger than memory heap %u (%.2f GiB)",
                      gib(req.size), heap, gib(c->heaps[heap].size_bytes));
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)t};
    st = SYM_VK_CALL(vkAllocateMemory(d->dev, &ai, NULL, &b->mem));
    if (st != SYM_OK) {
        b->mem = VK_NULL_HANDLE;
        sym_vk_device_update_budget(d);
        if (c->heaps[heap].budget_bytes)
            sym_error_prefix("vulkan: %.2f GiB from heap %u (%.2f of %.2f GiB budget in use)",
                             gib(req.size), heap, gib(c->heaps[heap].usage_bytes),
                             gib(c->heaps[heap].budget_bytes));
        else
            sym_error_prefix("vulkan: %.2f GiB from heap %u", gib(req.size), heap);
        goto fail;
    }
    if (kind == SYM_VK_MEM_DEVICE) {
        uint64_t now = atomic_fetch_add(&g_device_bytes, req.size) + req.size;
        uint64_t peak = atomic_load(&g_device_peak);
        while (now > peak && !atomic_compare_exchange_weak(&g_device_peak, &peak, now)) {
        }
    }
    SYM_VK_TRY_GOTO(vkBindBufferMemory(d->dev, b->buf, b->mem, 0));
    if (kind != SYM_VK_MEM_DEVICE)
        SYM_VK_TRY_GOTO(vkMapMemory(d->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map));
    *out = b;
    return SYM_OK;
fail:
    sym_vk_buffer_destroy(d, b);
    return st;
}

void sym_vk_buffer_destroy(sym_vk_device *d, sym_vk_buffer *b) {
    if (!b) return;
    if (b->map) vkUnmapMemory(d->dev, b->mem);
    if (b->kind == SYM_VK_MEM_DEVICE && b->mem) {
        VkMemoryRequirements req;
        vkGetBufferMemoryRequirements(d->dev, b->buf, &req);
        atomic_fetch_sub(&g_device_bytes, req.size);
    }
    if (b->buf) vkDestroyBuffer(d->dev, b->buf, NULL);
    if (b->mem) vkFreeMemory(d->dev, b->mem, NULL);
    sym_free(b);
}
