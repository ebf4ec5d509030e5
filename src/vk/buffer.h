/* buffer.h — Vulkan buffers with their own memory: device-local ones for tensors, host-visible
 * ones for staging uploads and reading back. Each tensor allocation is one VkBuffer (the pack
 * manager's fractal allocator will later sub-allocate large blocks; this is the seam).
 * Fails with SYM_ERR_BUDGET when a size cannot fit the device at all (larger than a heap, than
 * maxMemoryAllocationSize or maxBufferSize) and SYM_ERR_VULKAN when the driver refuses.
 */
#ifndef SYM_VK_BUFFER_H
#define SYM_VK_BUFFER_H

#include "vk/device.h"

typedef enum sym_vk_mem {
    SYM_VK_MEM_DEVICE = 0, /* device-local: tensors */
    SYM_VK_MEM_UPLOAD,     /* host-visible, coherent, mapped: staging host -> device */
    SYM_VK_MEM_READBACK,   /* host-visible, coherent, cached if possible, mapped */
} sym_vk_mem;

typedef struct sym_vk_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    uint64_t size; /* bytes usable (rounded up to 64: word and 16-byte loads stay inside) */
    void *map;     /* host pointer for UPLOAD / READBACK, else NULL */
    sym_vk_mem kind;
    uint32_t mem_type;
    /* 1 while every bf16 value written through the host fits f16's range (the
     * cooperative-matrix GEMM converts bf16 weights to f16); 0 once one does not */
    int bf16_fits_f16;
} sym_vk_buffer;

/* Creates a buffer of at least size bytes (usage: storage, transfer source and destination).
 * *out owned by the caller (sym_vk_buffer_destroy). */
sym_status sym_vk_buffer_create(sym_vk_device *d, uint64_t size, sym_vk_mem kind,
                                sym_vk_buffer **out);
void sym_vk_buffer_destroy(sym_vk_device *d, sym_vk_buffer *b);

/* Total bytes of device-local memory this process holds through sym_vk_buffer (all devices). */
uint64_t sym_vk_buffer_device_bytes(void);
/* The most device-local memory held at once by this process (the high-water mark budgets are
 * checked against). */
uint64_t sym_vk_buffer_device_peak(void);
/* Starts a new high-water mark from what is held now (tests measuring one run after another). */
void sym_vk_buffer_device_peak_reset(void);

#endif
