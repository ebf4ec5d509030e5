/* device.h — the Vulkan instance, the choice of physical device, the logical device and its
 * compute queue, and what the device can do (sym_vk_caps). Every failing VkResult reaches the
 * caller as SYM_ERR_VULKAN with a detail such as "vkAllocateMemory: VK_ERROR_OUT_OF_DEVICE_MEMORY".
 * No Vulkan device at all gives SYM_ERR_NO_DEVICE (the engine then warns and uses the CPU).
 * One thread at a time per device (the engine's).
 */
#ifndef SYM_VK_DEVICE_H
#define SYM_VK_DEVICE_H

#include <pthread.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

#include "base/status.h"

#define SYM_VK_MAX_HEAPS VK_MAX_MEMORY_HEAPS
#define SYM_VK_MAX_TYPES VK_MAX_MEMORY_TYPES

/* What a physical device offers, as far as Symbiote cares. Plain data: safe to copy. */
typedef struct sym_vk_caps {
    char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
    char driver_name[VK_MAX_DRIVER_NAME_SIZE];
    char driver_info[VK_MAX_DRIVER_INFO_SIZE];
    const char *type_name; /* "discrete", "integrated", "virtual", "cpu", "other" (static) */
    VkPhysicalDeviceType type;
    uint32_t vendor_id, device_id, api_version, driver_version;
    uint8_t pipeline_cache_uuid[VK_UUID_SIZE];

    /* arithmetic and storage */
    int shader_float16;      /* VkPhysicalDeviceVulkan12Features.shaderFloat16 */
    int storage_16bit;       /* storageBuffer16BitAccess */
    int vulkan_memory_model; /* vulkanMemoryModel (the cooperative-matrix kernel needs it) */
    int memory_model_device_scope; /* and vulkanMemoryModelDeviceScope (grid barriers: enabled
                                    * with it; shaders/grid_sync.glsl) */
    uint32_t subgroup_size;
    uint32_t subgroup_ops;   /* VkSubgroupFeatureFlags usable in compute shaders (0 if none) */
    int subgroup_arithmetic; /* subgroupAdd/Max usable in compute shaders */
    int coopmat_khr;    /* VK_KHR_cooperative_matrix advertised (not used: glslc can't target it) */
    int coopmat_nv;     /* VK_NV_cooperative_matrix advertised */
    int coopmat_nv_f16; /* ...with a 16x16x16 f16*f16+f32 subgroup configuration (what we use) */
    int push_descriptor; /* VK_KHR_push_descriptor */
    int memory_budget;   /* VK_EXT_memory_budget */
    int timeline_semaphore;      /* Vulkan 1.2 timelineSemaphore */
    int external_memory_host;    /* VK_EXT_external_memory_host: host memory imported for DMA */
    uint64_t host_import_align;  /* its minImportedHostPointerAlignment */

    /* queues */
    uint32_t compute_family;  /* the queue family we use (compute, with timestamps if any) */
    int dedicated_transfer;   /* a transfer-only queue family exists */
    uint32_t transfer_family; /* valid when dedicated_transfer */
    uint32_t compute_queue_count; /* queues in compute_family */
    uint32_t timestamp_valid_bits;
    float timestamp_period_ns;

    /* limits */
    uint64_t max_storage_buffer_range;
    uint64_t max_memory_allocation_size;
    uint64_t max_buffer_size; /* from Vulkan 1.3 maintenance4; = max allocation size if unknown */
    uint32_t max_shared_bytes;
    uint32_t sm_count; /* multiprocessors (VK_NV_shader_sm_builtins; 0: unknown) */
    uint32_t max_workgroup_invocations;
    uint32_t max_workgroup_size[3];
    uint32_t max_workgroup_count[3];
    uint32_t max_push_constants_bytes;
    uint64_t min_storage_buffer_offset_alignment;

    /* memory */
    uint32_t n_heaps, n_types;
    struct {
        uint64_t size_bytes;
        uint64_t budget_bytes, usage_bytes; /* from VK_EXT_memory_budget; 0 if unknown */
        int device_local;
    } heaps[SYM_VK_MAX_HEAPS];
    struct {
        VkMemoryPropertyFlags flags;
        uint32_t heap;
    } types[SYM_VK_MAX_TYPES];
} sym_vk_caps;

/* How to choose the device and what to enable on it. */
typedef struct sym_vk_device_request {
    int index;            /* >= 0: that device (vulkaninfo order); -1: automatic */
    const char *name;     /* non-NULL: first device whose name contains this (case-insensitive) */
    int force_integrated; /* prefer integrated over discrete */
    int enable_fp16;      /* enable shaderFloat16 if offered */
    int enable_coopmat;   /* enable VK_NV_cooperative_matrix if offered */
    int validation;       /* enable VK_LAYER_KHRONOS_validation if installed (also with
                           * SYM_VK_VALIDATION=1); its messages go to the log and are counted */
} sym_vk_device_request;

struct shared_instance;

typedef struct sym_vk_device {
    VkInstance instance; /* the process-wide instance (see sym_vk_shutdown), borrowed */
    struct shared_instance *shared;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    /* The upload queue (vk/xfer.h): a queue of the dedicated transfer family, else a second
     * compute queue, else the compute queue itself (xfer_shared: submissions to it then take
     * queue_lock, which is otherwise NULL). VK_NULL_HANDLE without timeline semaphores. */
    VkQueue xfer_queue;
    uint32_t xfer_family;
    int xfer_shared;
    pthread_mutex_t *queue_lock;
    pthread_mutex_t queue_lock_storage;
    /* queue families a buffer is shared between (1 or 2: concurrent sharing when 2) */
    uint32_t families[2], n_families;
    int host_import_enabled; /* VK_EXT_external_memory_host enabled */
    sym_vk_caps caps;
    int fp16_enabled, coopmat_enabled, push_descriptor_enabled, budget_enabled;
    PFN_vkCmdPushDescriptorSetKHR cmd_push_descriptor_set;
    int validation_enabled;
} sym_vk_device;

void sym_vk_device_request_init(sym_vk_device_request *req);

/* Creates the instance, picks a device (discrete > integrated > virtual > cpu unless the request
 * says otherwise) and creates the logical device with one compute queue. Fails with
 * SYM_ERR_NO_DEVICE if there is no Vulkan device (or no loader/driver), SYM_ERR_ARG if the
 * requested index or name matches none, SYM_ERR_VULKAN on a failing call. *out is owned by the
 * caller (sym_vk_device_close). */
sym_status sym_vk_device_open(const sym_vk_device_request *req, sym_vk_device **out);
void sym_vk_device_close(sym_vk_device *d);

/* Devices share one VkInstance per process (two when validation is asked for), created on first
 * use and kept after the last device closes: drivers may not survive many instance create/
 * destroy cycles in one process. sym_vk_shutdown destroys the unused ones (optional: before exit
 * under a leak checker, or to start over). */
void sym_vk_shutdown(void);

/* Refreshes caps.heaps[].budget/usage (VK_EXT_memory_budget); no-op without it. */
void sym_vk_device_update_budget(sym_vk_device *d);

/* Lists every device: *out (caller frees with sym_free) gets *n entries; *chosen gets the index
 * automatic selection would take (-1 if none). SYM_ERR_NO_DEVICE if there are none. */
sym_status sym_vk_device_list(sym_vk_caps **out, int *n, int *chosen);

/* Number of validation-layer errors (and warnings) reported since the process started. */
int sym_vk_validation_error_count(void);

/* "VK_ERROR_OUT_OF_DEVICE_MEMORY" etc. (never NULL). */
const char *sym_vk_result_name(VkResult r);
/* "basic vote arithmetic ..." : space-separated names of VkSubgroupFeatureFlags into buf. */
void sym_vk_subgroup_ops_string(uint32_t ops, char *buf, size_t cap);

/* Records SYM_ERR_VULKAN "<function>: <VkResult name>" (function = expr up to its '(')
 * if r < 0 and returns it; SYM_OK otherwise. */
sym_status sym_vk_check_at(VkResult r, const char *expr, const char *file, int line);

/* Fault injection for tests: the n-th checked Vulkan call from now (1 = the next one) is not made
 * and reports VK_ERROR_OUT_OF_DEVICE_MEMORY instead; 0 disables. Process-wide. */
void sym_vk_debug_fail_after(int n);
int sym_vk_debug_inject(void); /* used by SYM_VK_CALL: 1 if this call is to fail */

/* Checks a VkResult-returning call: SYM_VK_TRY returns its status, SYM_VK_TRY_GOTO jumps to
 * fail with st set (see status.h). */
#define SYM_VK_CALL(call)                                                                          \
    sym_vk_check_at(sym_vk_debug_inject() ? VK_ERROR_OUT_OF_DEVICE_MEMORY : (call), #call,         \
                    __FILE__, __LINE__)
#define SYM_VK_TRY(call)      SYM_TRY(SYM_VK_CALL(call))
#define SYM_VK_TRY_GOTO(call) SYM_TRY_GOTO(SYM_VK_CALL(call))

#endif
