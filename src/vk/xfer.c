/* xfer.c — the upload queue, imported host memory, the staging fallback. */
#include "vk/xfer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"

#define MAX_IMPORTS   256
#define STAGING_BYTES (32ull << 20)
#define MAX_REGIONS   64

typedef struct import {
    char *base;  /* start of the imported range */
    uint64_t size;
    VkDeviceMemory mem;
    VkBuffer buf;
} import;

typedef struct mapping { /* one host_alloc */
    void *ptr;
    size_t bytes;
    uint32_t import0, n_imports;
    int used;
} mapping;

struct sym_vk_xfer {
    sym_vk_device *d;
    VkCommandPool pool;
    VkCommandBuffer cb;
    VkSemaphore sem;
    uint64_t next_value;
    _Atomic uint64_t completed;
    sym_vk_buffer *staging; /* created on first need */
    pthread_mutex_t lock;
    import imports[MAX_IMPORTS];
    uint32_t n_imports;
    mapping maps[16];
    PFN_vkGetMemoryHostPointerPropertiesEXT host_ptr_props;
    sym_vk_xfer_stats st;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

sym_status sym_vk_xfer_create(sym_vk_device *d, sym_vk_xfer **out) {
    *out = NULL;
    SYM_CHECK(d->xfer_queue != VK_NULL_HANDLE, SYM_ERR_UNSUPPORTED,
              "vulkan: the device has no upload queue (timeline semaphores are missing)");
    sym_vk_xfer *x = sym_calloc(1, sizeof *x);
    if (!x) return SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory");
    x->d = d;
    pthread_mutex_init(&x->lock, NULL);
    sym_status st = SYM_OK;
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = d->xfer_family};
    SYM_VK_TRY_GOTO(vkCreateCommandPool(d->dev, &pci, NULL, &x->pool));
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = x->pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    SYM_VK_TRY_GOTO(vkAllocateCommandBuffers(d->dev, &ai, &x->cb));
    VkSemaphoreTypeCreateInfo tci = {.sType = VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO,
                                     .semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE};
    VkSemaphoreCreateInfo sci = {.sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO, .pNext = &tci};
    SYM_VK_TRY_GOTO(vkCreateSemaphore(d->dev, &sci, NULL, &x->sem));
    if (d->host_import_enabled)
        x->host_ptr_props = (PFN_vkGetMemoryHostPointerPropertiesEXT)vkGetDeviceProcAddr(
            d->dev, "vkGetMemoryHostPointerPropertiesEXT");
    SYM_INFO("vulkan: uploads on %s; host memory %s", d->xfer_shared ? "the compute queue"
             : d->xfer_family != d->caps.compute_family ? "the dedicated transfer queue"
                                                         : "a second compute queue",
             x->host_ptr_props ? "imported for direct copies" : "copied through staging");
    *out = x;
    return SYM_OK;
fail:
    sym_vk_xfer_destroy(x);
    return st;
}

static void drop_imports(sym_vk_xfer *x, uint32_t i0, uint32_t n) {
    for (uint32_t i = i0; i < i0 + n; i++) {
        import *im = &x->imports[i];
        if (im->buf) vkDestroyBuffer(x->d->dev, im->buf, NULL);
        if (im->mem) vkFreeMemory(x->d->dev, im->mem, NULL);
        x->st.imported_bytes -= im->mem ? im->size : 0;
        memset(im, 0, sizeof *im);
    }
}

void sym_vk_xfer_destroy(sym_vk_xfer *x) {
    if (!x) return;
    VkDevice dev = x->d->dev;
    for (int i = 0; i < 16; i++)
        if (x->maps[i].used) sym_vk_xfer_host_free(x, x->maps[i].ptr, x->maps[i].bytes);
    if (x->staging) sym_vk_buffer_destroy(x->d, x->staging);
    if (x->sem) vkDestroySemaphore(dev, x->sem, NULL);
    if (x->pool) vkDestroyCommandPool(dev, x->pool, NULL);
    pthread_mutex_destroy(&x->lock);
    sym_free(x);
}

/* Imports [p, p + bytes) as one VkDeviceMemory + transfer-source buffer. */
static sym_status import_range(sym_vk_xfer *x, char *p, uint64_t bytes, import *im) {
    sym_vk_device *d = x->d;
    VkMemoryHostPointerPropertiesEXT hp = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT};
    SYM_VK_TRY(x->host_ptr_props(d->dev, VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT, p,
                                 &hp));
    VkExternalMemoryBufferCreateInfo ebi = {
        .sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO,
        .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT};
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .pNext = &ebi,
                             .size = bytes,
                             .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    if (d->n_families > 1) {
        bi.sharingMode = VK_SHARING_MODE_CONCURRENT;
        bi.queueFamilyIndexCount = d->n_families;
        bi.pQueueFamilyIndices = d->families;
    }
    SYM_VK_TRY(vkCreateBuffer(d->dev, &bi, NULL, &im->buf));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d->dev, im->buf, &req);
    uint32_t bits = req.memoryTypeBits & hp.memoryTypeBits;
    int type = -1;
    for (uint32_t i = 0; i < d->caps.n_types && type < 0; i++)
        if ((bits & (1u << i)) && (d->caps.types[i].flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT))
            type = (int)i;
    for (uint32_t i = 0; i < d->caps.n_types && type < 0; i++)
        if (bits & (1u << i)) type = (int)i;
    SYM_CHECK(type >= 0 && req.size <= bytes, SYM_ERR_UNSUPPORTED,
              "vulkan: no memory type can import host memory for copies");
    VkImportMemoryHostPointerInfoEXT ii = {
        .sType = VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT,
        .handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT,
        .pHostPointer = p};
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                .pNext = &ii,
                                .allocationSize = bytes,
                                .memoryTypeIndex = (uint32_t)type};
    SYM_VK_TRY(vkAllocateMemory(d->dev, &mai, NULL, &im->mem));
    SYM_VK_TRY(vkBindBufferMemory(d->dev, im->buf, im->mem, 0));
    im->base = p;
    im->size = bytes;
    return SYM_OK;
}

void *sym_vk_xfer_host_alloc(sym_vk_xfer *x, size_t bytes) {
    int slot = -1;
    for (int i = 0; i < 16 && slot < 0; i++)
        if (!x->maps[i].used) slot = i;
    if (slot < 0 || bytes == 0) return NULL;
    uint64_t align = x->d->caps.host_import_align > 4096 ? x->d->caps.host_import_align : 4096;
    size_t len = (bytes + align - 1) / align * align;
    void *p = sym_map_pages(len);
    if (!p) return NULL;
    mapping *m = &x->maps[slot];
    *m = (mapping){.ptr = p, .bytes = len, .import0 = x->n_imports, .used = 1};
    if (x->host_ptr_props && !getenv("SYM_VK_NO_HOST_IMPORT")) {
        /* chunks no larger than one allocation may be (and 1 GiB, so that a failure costs little) */
        uint64_t chunk = x->d->caps.max_memory_allocation_size;
        if (chunk > (1ull << 30)) chunk = 1ull << 30;
        chunk = chunk / align * align;
        pthread_mutex_lock(&x->lock);
        for (uint64_t at = 0; chunk && at < len; at += chunk) {
            uint64_t n = len - at < chunk ? len - at : chunk;
            if (x->n_imports == MAX_IMPORTS ||
                import_range(x, (char *)p + at, n, &x->imports[x->n_imports]) != SYM_OK) {
                if (x->n_imports < MAX_IMPORTS) drop_imports(x, x->n_imports, 1);
                SYM_WARN("vulkan: host memory could not be imported (%s); uploads are staged",
                         sym_last_error());
                drop_imports(x, m->import0, x->n_imports - m->import0);
                x->n_imports = m->import0;
                break;
            }
            x->st.imported_bytes += n;
            x->n_imports++;
        }
        m->n_imports = x->n_imports - m->import0;
        pthread_mutex_unlock(&x->lock);
    }
    return p;
}

void sym_vk_xfer_host_free(sym_vk_xfer *x, void *ptr, size_t bytes) {
    (void)bytes;
    for (int i = 0; i < 16; i++) {
        mapping *m = &x->maps[i];
        if (!m->used || m->ptr != ptr) continue;
        pthread_mutex_lock(&x->lock);
        drop_imports(x, m->import0, m->n_imports);
        if (m->import0 + m->n_imports == x->n_imports) x->n_imports = m->import0;
        pthread_mutex_unlock(&x->lock);
        sym_unmap_pages(m->ptr, m->bytes);
        m->used = 0;
        return;
    }
}

/* The import holding host byte p, or NULL. */
static const import *find_import(const sym_vk_xfer *x, const char *p) {
    for (uint32_t i = 0; i < x->n_imports; i++) {
        const import *im = &x->imports[i];
        if (im->mem && p >= im->base && p < im->base + im->size) return im;
    }
    return NULL;
}

/* Records copies (one per source buffer), submits them signalling the next timeline value and
 * waits for it. Called with the lock held. */
static sym_status submit_copies(sym_vk_xfer *x, const VkBuffer *src, const VkBufferCopy *regions,
                                uint32_t n, VkBuffer dst) {
    sym_vk_device *d = x->d;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    SYM_VK_TRY(vkBeginCommandBuffer(x->cb, &bi));
    for (uint32_t i = 0; i < n; i++)
        vkCmdCopyBuffer(x->cb, src[i], dst, 1, &regions[i]);
    SYM_VK_TRY(vkEndCommandBuffer(x->cb));
    uint64_t value = ++x->next_value;
    VkTimelineSemaphoreSubmitInfo tsi = {.sType = VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO,
                                         .signalSemaphoreValueCount = 1,
                                         .pSignalSemaphoreValues = &value};
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .pNext = &tsi,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &x->cb,
                       .signalSemaphoreCount = 1,
                       .pSignalSemaphores = &x->sem};
    if (d->queue_lock) pthread_mutex_lock(d->queue_lock);
    sym_status st = SYM_VK_CALL(vkQueueSubmit(d->xfer_queue, 1, &si, VK_NULL_HANDLE));
    if (d->queue_lock) pthread_mutex_unlock(d->queue_lock);
    SYM_TRY(st);
    VkSemaphoreWaitInfo wi = {.sType = VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO,
                              .semaphoreCount = 1,
                              .pSemaphores = &x->sem,
                              .pValues = &value};
    SYM_VK_TRY(vkWaitSemaphores(d->dev, &wi, UINT64_MAX));
    SYM_VK_TRY(vkResetCommandBuffer(x->cb, 0));
    atomic_store(&x->completed, value);
    return SYM_OK;
}

sym_status sym_vk_xfer_upload(sym_vk_xfer *x, sym_vk_buffer *dst, uint64_t off, const void *src,
                              uint64_t bytes) {
    SYM_CHECK(off + bytes <= dst->size, SYM_ERR_ARG, "vulkan: upload past the end of a buffer");
    uint64_t t0 = now_ns();
    pthread_mutex_lock(&x->lock);
    sym_status st = SYM_OK;
    const char *s = src;
    /* direct: the whole range in imported chunks */
    VkBuffer srcs[MAX_REGIONS];
    VkBufferCopy reg[MAX_REGIONS];
    uint32_t n = 0;
    for (uint64_t done = 0; done < bytes && n < MAX_REGIONS;) {
        const import *im = find_import(x, s + done);
        if (!im) break;
        uint64_t in = (uint64_t)(im->base + im->size - (s + done));
        uint64_t len = bytes - done < in ? bytes - done : in;
        srcs[n] = im->buf;
        reg[n++] = (VkBufferCopy){.srcOffset = (uint64_t)(s + done - im->base),
                                  .dstOffset = off + done, .size = len};
        done += len;
        if (done == bytes) {
            st = submit_copies(x, srcs, reg, n, dst->buf);
            goto out;
        }
    }
    /* staged */
    if (!x->staging) {
        st = sym_vk_buffer_create(x->d, STAGING_BYTES, SYM_VK_MEM_UPLOAD, &x->staging);
        if (st != SYM_OK) goto out;
    }
    for (uint64_t done = 0; done < bytes && st == SYM_OK;) {
        uint64_t len = bytes - done < STAGING_BYTES ? bytes - done : STAGING_BYTES;
        memcpy(x->staging->map, s + done, len);
        VkBufferCopy r = {.srcOffset = 0, .dstOffset = off + done, .size = len};
        st = submit_copies(x, &x->staging->buf, &r, 1, dst->buf);
        done += len;
    }
    x->st.bytes_staged += bytes;
out:
    if (st == SYM_OK) {
        x->st.n_uploads++;
        x->st.bytes += bytes;
        x->st.ns += now_ns() - t0;
    }
    pthread_mutex_unlock(&x->lock);
    return st;
}

VkSemaphore sym_vk_xfer_semaphore(const sym_vk_xfer *x) { return x->sem; }
const _Atomic uint64_t *sym_vk_xfer_completed(const sym_vk_xfer *x) { return &x->completed; }

void sym_vk_xfer_get_stats(sym_vk_xfer *x, sym_vk_xfer_stats *out) {
    pthread_mutex_lock(&x->lock);
    *out = x->st;
    pthread_mutex_unlock(&x->lock);
}
