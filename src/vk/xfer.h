/* xfer.h — uploads on their own queue: the streaming engine's RAM -> VRAM link.
 *
 * The RAM tier's memory (the pack manager's host arena) comes from sym_vk_xfer_host_alloc: an
 * anonymous mapping committed up front and, where the device offers VK_EXT_external_memory_host,
 * imported into Vulkan in chunks, so an upload is one DMA copy straight from it (no staging copy:
 * ~50 GB/s over PCIe Gen5 instead of a memcpy's ~10). Memory that is not imported is copied
 * through a small staging buffer.
 *
 * Copies run on the device's upload queue (device.h: the dedicated transfer family where there is
 * one) and signal a timeline semaphore; sym_vk_xfer_upload returns once its copy is done and the
 * compute queue's later submissions wait for the semaphore's value (cmd.h sym_vk_cmd_set_wait),
 * which makes the copied bytes visible to the kernels that read them.
 *
 * Threads: upload may be called from any thread (a mutex serializes them); create/destroy and
 * the host allocations from one. */
#ifndef SYM_VK_XFER_H
#define SYM_VK_XFER_H

#include <stdatomic.h>

#include "vk/buffer.h"

typedef struct sym_vk_xfer sym_vk_xfer;

typedef struct sym_vk_xfer_stats {
    uint64_t n_uploads, bytes, bytes_staged; /* staged: through the staging buffer */
    uint64_t ns;                              /* summed wall time of uploads */
    uint64_t imported_bytes;                  /* host memory imported for direct copies */
} sym_vk_xfer_stats;

/* SYM_ERR_UNSUPPORTED if the device has no upload queue (no timeline semaphores). */
sym_status sym_vk_xfer_create(sym_vk_device *d, sym_vk_xfer **out);
/* Waits for nothing: the caller has no upload running. Frees the host allocations still held. */
void sym_vk_xfer_destroy(sym_vk_xfer *x);

/* bytes of committed host memory aligned to 4 KiB (and to the import alignment), imported for
 * direct copies where possible; NULL when the memory cannot be had. */
void *sym_vk_xfer_host_alloc(sym_vk_xfer *x, size_t bytes);
void sym_vk_xfer_host_free(sym_vk_xfer *x, void *ptr, size_t bytes);

/* Copies bytes from host src into dst at off and waits until the copy is complete. */
sym_status sym_vk_xfer_upload(sym_vk_xfer *x, sym_vk_buffer *dst, uint64_t off, const void *src,
                              uint64_t bytes);

/* The timeline semaphore and the value of the latest completed upload (cmd.h set_wait). */
VkSemaphore sym_vk_xfer_semaphore(const sym_vk_xfer *x);
const _Atomic uint64_t *sym_vk_xfer_completed(const sym_vk_xfer *x);
void sym_vk_xfer_get_stats(sym_vk_xfer *x, sym_vk_xfer_stats *out);

#endif
