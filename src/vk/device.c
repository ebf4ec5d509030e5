/* device.c — instance, physical-device choice and capabilities, logical device, VkResult names.
 */
#include "vk/device.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"

/* ---- VkResult names and the checking wrapper ---------------------------------------------------
 */

const char *sym_vk_result_name(VkResult r) {
    switch (r) {
#define R(x)                                                                                       \
    case x:                                                                                        \
        return #x;
        R(VK_SUCCESS)
        R(VK_NOT_READY)
        R(VK_TIMEOUT)
        R(VK_EVENT_SET)
        R(VK_EVENT_RESET)
        R(VK_INCOMPLETE)
        R(VK_ERROR_OUT_OF_HOST_MEMORY)
        R(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        R(VK_ERROR_INITIALIZATION_FAILED)
        R(VK_ERROR_DEVICE_LOST)
        R(VK_ERROR_MEMORY_MAP_FAILED)
        R(VK_ERROR_LAYER_NOT_PRESENT)
        R(VK_ERROR_EXTENSION_NOT_PRESENT)
        R(VK_ERROR_FEATURE_NOT_PRESENT)
        R(VK_ERROR_INCOMPATIBLE_DRIVER)
        R(VK_ERROR_TOO_MANY_OBJECTS)
        R(VK_ERROR_FORMAT_NOT_SUPPORTED)
        R(VK_ERROR_FRAGMENTED_POOL)
        R(VK_ERROR_UNKNOWN)
        R(VK_ERROR_OUT_OF_POOL_MEMORY)
        R(VK_ERROR_INVALID_EXTERNAL_HANDLE)
        R(VK_ERROR_FRAGMENTATION)
        R(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
        R(VK_PIPELINE_COMPILE_REQUIRED)
        R(VK_ERROR_SURFACE_LOST_KHR)
        R(VK_ERROR_NATIVE_WINDOW_IN_USE_KHR)
        R(VK_SUBOPTIMAL_KHR)
        R(VK_ERROR_OUT_OF_DATE_KHR)
        R(VK_ERROR_INCOMPATIBLE_DISPLAY_KHR)
        R(VK_ERROR_VALIDATION_FAILED_EXT)
        R(VK_ERROR_INVALID_SHADER_NV)
        R(VK_ERROR_NOT_PERMITTED_KHR)
        R(VK_THREAD_IDLE_KHR)
        R(VK_THREAD_DONE_KHR)
        R(VK_OPERATION_DEFERRED_KHR)
        R(VK_OPERATION_NOT_DEFERRED_KHR)
#undef R
    default:
        return "VK_RESULT_UNKNOWN";
    }
}

static atomic_int g_fail_after;
static atomic_int g_validation_errors;

void sym_vk_debug_fail_after(int n) { atomic_store(&g_fail_after, n); }

int sym_vk_debug_inject(void) {
    int n = atomic_load(&g_fail_after);
    if (n <= 0) return 0;
    atomic_store(&g_fail_after, n - 1);
    return n == 1;
}

int sym_vk_validation_error_count(void) { return atomic_load(&g_validation_errors); }

sym_status sym_vk_check_at(VkResult r, const char *expr, const char *file, int line) {
    if (r >= 0) return SYM_OK;
    size_t n = strcspn(expr, "(");
    return sym_fail_at(file, line, SYM_ERR_VULKAN, "%.*s: %s", (int)n, expr, sym_vk_result_name(r));
}

void sym_vk_subgroup_ops_string(uint32_t ops, char *buf, size_t cap) {
    static const struct {
        uint32_t bit;
        const char *name;
    } k[] = {
        {VK_SUBGROUP_FEATURE_BASIC_BIT, "basic"},
        {VK_SUBGROUP_FEATURE_VOTE_BIT, "vote"},
        {VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "arithmetic"},
        {VK_SUBGROUP_FEATURE_BALLOT_BIT, "ballot"},
        {VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "shuffle"},
        {VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT, "shuffle_relative"},
        {VK_SUBGROUP_FEATURE_CLUSTERED_BIT, "clustered"},
        {VK_SUBGROUP_FEATURE_QUAD_BIT, "quad"},
    };
    size_t used = 0;
    if (cap) buf[0] = '\0';
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        if (!(ops & k[i].bit)) continue;
        int w = snprintf(buf + used, cap - used, "%s%s", used ? " " : "", k[i].name);
        if (w < 0 || (size_t)w >= cap - used) return;
        used += (size_t)w;
    }
}

/* ---- capabilities ------------------------------------------------------------------------------
 */

static const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return "cpu";
    default:
        return "other";
    }
}

static int has_ext(const VkExtensionProperties *e, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(e[i].extensionName, name)) return 1;
    return 0;
}

/* Fills caps for one device. Devices older than Vulkan 1.2 get api_version only (unusable). */
static sym_status query_caps(VkInstance inst, VkPhysicalDevice pd, sym_vk_caps *c) {
    memset(c, 0, sizeof *c);
    VkPhysicalDeviceProperties p0;
    vkGetPhysicalDeviceProperties(pd, &p0);
    snprintf(c->name, sizeof c->name, "%s", p0.deviceName);
    c->type = p0.deviceType;
    c->type_name = type_name(p0.deviceType);
    c->vendor_id = p0.vendorID;
    c->device_id = p0.deviceID;
    c->api_version = p0.apiVersion;
    c->driver_version = p0.driverVersion;
    memcpy(c->pipeline_cache_uuid, p0.pipelineCacheUUID, VK_UUID_SIZE);
    const VkPhysicalDeviceLimits *L = &p0.limits;
    c->max_storage_buffer_range = L->maxStorageBufferRange;
    c->max_shared_bytes = L->maxComputeSharedMemorySize;
    c->max_workgroup_invocations = L->maxComputeWorkGroupInvocations;
    memcpy(c->max_workgroup_size, L->maxComputeWorkGroupSize, sizeof c->max_workgroup_size);
    memcpy(c->max_workgroup_count, L->maxComputeWorkGroupCount, sizeof c->max_workgroup_count);
    c->max_push_constants_bytes = L->maxPushConstantsSize;
    c->min_storage_buffer_offset_alignment = L->minStorageBufferOffsetAlignment;
    c->timestamp_period_ns = L->timestampPeriod;
    if (p0.apiVersion < VK_API_VERSION_1_2) return SYM_OK;

    uint32_t n_ext = 0;
    SYM_VK_TRY(vkEnumerateDeviceExtensionProperties(pd, NULL, &n_ext, NULL));
    VkExtensionProperties *ext = sym_calloc(n_ext ? n_ext : 1, sizeof *ext);
    if (!ext) return SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory");
    sym_status st = SYM_VK_CALL(vkEnumerateDeviceExtensionProperties(pd, NULL, &n_ext, ext));
    if (st != SYM_OK) {
        sym_free(ext);
        return st;
    }
    c->push_descriptor = has_ext(ext, n_ext, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
    c->memory_budget = has_ext(ext, n_ext, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    c->coopmat_nv = has_ext(ext, n_ext, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    c->coopmat_khr = has_ext(ext, n_ext, "VK_KHR_cooperative_matrix");
    c->external_memory_host = has_ext(ext, n_ext, VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
    int has_maint4 = p0.apiVersion >= VK_API_VERSION_1_3;
    int has_sm = has_ext(ext, n_ext, VK_NV_SHADER_SM_BUILTINS_EXTENSION_NAME);
    sym_free(ext);

    VkPhysicalDeviceExternalMemoryHostPropertiesEXT emh = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT};
    VkPhysicalDeviceMaintenance4Properties m4 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES,
        .pNext = c->external_memory_host ? &emh : NULL};
    VkPhysicalDeviceVulkan12Properties p12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES,
        .pNext = has_maint4 ? (void *)&m4 : c->external_memory_host ? (void *)&emh : NULL};
    VkPhysicalDeviceVulkan11Properties p11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES, .pNext = &p12};
    VkPhysicalDeviceShaderSMBuiltinsPropertiesNV smp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SM_BUILTINS_PROPERTIES_NV, .pNext = &p11};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = has_sm ? (void *)&smp : (void *)&p11};
    vkGetPhysicalDeviceProperties2(pd, &p2);
    c->sm_count = has_sm ? smp.shaderSMCount : 0;
    snprintf(c->driver_name, sizeof c->driver_name, "%s", p12.driverName);
    snprintf(c->driver_info, sizeof c->driver_info, "%s", p12.driverInfo);
    c->max_memory_allocation_size = p11.maxMemoryAllocationSize;
    c->host_import_align = emh.minImportedHostPointerAlignment;
    if (c->external_memory_host && !c->host_import_align) c->external_memory_host = 0;
    c->max_buffer_size = has_maint4 ? m4.maxBufferSize : p11.maxMemoryAllocationSize;
    c->subgroup_size = p11.subgroupSize;
    if (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT)
        c->subgroup_ops = p11.subgroupSupportedOperations;
    c->subgroup_arithmetic = (c->subgroup_ops & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
                             (c->subgroup_ops & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);

    VkPhysicalDeviceCooperativeMatrixFeaturesNV cmf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .pNext = c->coopmat_nv ? &cmf : NULL};
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &f12};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                    .pNext = &f11};
    vkGetPhysicalDeviceFeatures2(pd, &f2);
    c->shader_float16 = f12.shaderFloat16;
    c->storage_16bit = f11.storageBuffer16BitAccess;
    c->vulkan_memory_model = f12.vulkanMemoryModel;
    c->memory_model_device_scope = f12.vulkanMemoryModel && f12.vulkanMemoryModelDeviceScope;
    c->timeline_semaphore = f12.timelineSemaphore;
    /* the cooperative-matrix kernel's SPIR-V uses the Vulkan memory model */
    if (c->coopmat_nv && cmf.cooperativeMatrix && c->shader_float16 && c->vulkan_memory_model) {
        PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get =
            (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)vkGetInstanceProcAddr(
                inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
        uint32_t n = 0;
        if (get && get(pd, &n, NULL) >= 0 && n > 0 && n < 256) {
            VkCooperativeMatrixPropertiesNV props[256];
            for (uint32_t i = 0; i < n; i++)
                props[i] = (VkCooperativeMatrixPropertiesNV){
                    .sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV};
            if (get(pd, &n, props) >= 0)
                for (uint32_t i = 0; i < n; i++) {
                    const VkCooperativeMatrixPropertiesNV *q = &props[i];
                    if (q->MSize == 16 && q->NSize == 16 && q->KSize == 16 &&
                        q->AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                        q->BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                        q->CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                        q->DType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                        q->scope == VK_SCOPE_SUBGROUP_NV)
                        c->coopmat_nv_f16 = 1;
                }
        }
    }

    uint32_t n_q = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n_q, NULL);
    VkQueueFamilyProperties qf[32];
    if (n_q > 32) n_q = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n_q, qf);
    int best = -1;
    for (uint32_t i = 0; i < n_q; i++) {
        VkQueueFlags f = qf[i].queueFlags;
        if ((f & VK_QUEUE_COMPUTE_BIT) &&
            (best < 0 || (qf[i].timestampValidBits && !qf[best].timestampValidBits)))
            best = (int)i;
        if ((f & VK_QUEUE_TRANSFER_BIT) && !(f & (VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT)) &&
            !c->dedicated_transfer) {
            c->dedicated_transfer = 1;
            c->transfer_family = i;
        }
    }
    if (best < 0)
        c->api_version = 0; /* no compute queue: unusable */
    else {
        c->compute_family = (uint32_t)best;
        c->compute_queue_count = qf[best].queueCount;
        c->timestamp_valid_bits = qf[best].timestampValidBits;
    }

    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 mp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
        .pNext = c->memory_budget ? &budget : NULL};
    vkGetPhysicalDeviceMemoryProperties2(pd, &mp);
    c->n_heaps = mp.memoryProperties.memoryHeapCount;
    c->n_types = mp.memoryProperties.memoryTypeCount;
    for (uint32_t i = 0; i < c->n_heaps; i++) {
        c->heaps[i].size_bytes = mp.memoryProperties.memoryHeaps[i].size;
        c->heaps[i].device_local =
            !!(mp.memoryProperties.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT);
        if (c->memory_budget) {
            c->heaps[i].budget_bytes = budget.heapBudget[i];
            c->heaps[i].usage_bytes = budget.heapUsage[i];
        }
    }
    for (uint32_t i = 0; i < c->n_types; i++) {
        c->types[i].flags = mp.memoryProperties.memoryTypes[i].propertyFlags;
        c->types[i].heap = mp.memoryProperties.memoryTypes[i].heapIndex;
    }
    return SYM_OK;
}

/* ---- instance ----------------------------------------------------------------------------------
 */

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation(
    VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT types,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    (void)types, (void)user;
    if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
        atomic_fetch_add(&g_validation_errors, 1);
        SYM_ERROR("vulkan validation: %s", data->pMessage);
    } else {
        SYM_WARN("vulkan validation: %s", data->pMessage);
    }
    return VK_FALSE;
}

static int want_validation(int requested) {
    const char *e = getenv("SYM_VK_VALIDATION");
    return requested || (e && *e && strcmp(e, "0") != 0);
}

/* Creates the instance; *validation gets whether the validation layer and messenger are on. */
static sym_status create_instance(int validation_wanted, VkInstance *out, int *validation) {
    *out = VK_NULL_HANDLE;
    *validation = 0;
    uint32_t version = VK_API_VERSION_1_0;
    PFN_vkEnumerateInstanceVersion ev =
        (PFN_vkEnumerateInstanceVersion)vkGetInstanceProcAddr(NULL, "vkEnumerateInstanceVersion");
    if (ev && ev(&version) != VK_SUCCESS) version = VK_API_VERSION_1_0;
    if (version < VK_API_VERSION_1_2)
        return SYM_FAIL(SYM_ERR_NO_DEVICE, "vulkan: the loader offers Vulkan %u.%u; 1.2 is needed",
                        VK_API_VERSION_MAJOR(version), VK_API_VERSION_MINOR(version));

    uint32_t n_ext = 0;
    VkExtensionProperties ext[64];
    if (vkEnumerateInstanceExtensionProperties(NULL, &n_ext, NULL) < 0) n_ext = 0;
    if (n_ext > 64) n_ext = 64;
    if (n_ext && vkEnumerateInstanceExtensionProperties(NULL, &n_ext, ext) < 0) n_ext = 0;
    const char *exts[4];
    uint32_t n_use = 0;
    VkInstanceCreateFlags flags = 0;
    if (has_ext(ext, n_ext, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[n_use++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    const char *layers[1];
    uint32_t n_layers = 0;
    if (validation_wanted) {
        uint32_t n_lp = 0;
        VkLayerProperties lp[64];
        if (vkEnumerateInstanceLayerProperties(&n_lp, NULL) < 0) n_lp = 0;
        if (n_lp > 64) n_lp = 64;
        if (n_lp && vkEnumerateInstanceLayerProperties(&n_lp, lp) < 0) n_lp = 0;
        int have = 0;
        for (uint32_t i = 0; i < n_lp; i++)
            if (!strcmp(lp[i].layerName, "VK_LAYER_KHRONOS_validation")) have = 1;
        if (have && has_ext(ext, n_ext, VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
            layers[n_layers++] = "VK_LAYER_KHRONOS_validation";
            exts[n_use++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
            *validation = 1;
        } else {
            SYM_WARN("vulkan: validation requested but VK_LAYER_KHRONOS_validation is not "
                     "installed (Debian: vulkan-validationlayers)");
        }
    }
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "symbiote",
                             .applicationVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
                             .pEngineName = "symbiote",
                             .engineVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
                             .apiVersion = version >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3
                                                                         : VK_API_VERSION_1_2};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .flags = flags,
                               .pApplicationInfo = &app,
                               .enabledLayerCount = n_layers,
                               .ppEnabledLayerNames = layers,
                               .enabledExtensionCount = n_use,
                               .ppEnabledExtensionNames = exts};
    VkResult r =
        sym_vk_debug_inject() ? VK_ERROR_OUT_OF_HOST_MEMORY : vkCreateInstance(&ci, NULL, out);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED) {
        *out = VK_NULL_HANDLE;
        return SYM_FAIL(SYM_ERR_NO_DEVICE, "vulkan: no driver (vkCreateInstance: %s)",
                        sym_vk_result_name(r));
    }
    if (r < 0) *out = VK_NULL_HANDLE;
    return sym_vk_check_at(r, "vkCreateInstance", __FILE__, __LINE__);
}

/* The process keeps its VkInstance: drivers may not survive many create/destroy cycles (on an
 * H100 with driver 580, vkCreateInstance failed for good after ~30, presumably as the ICD library
 * was unloaded and reloaded each time). Slot 1 is the instance made with validation wanted. */
typedef struct shared_instance {
    VkInstance inst;
    VkDebugUtilsMessengerEXT messenger;
    int validation; /* the layer is really on */
    int refs;
} shared_instance;

static shared_instance g_instances[2];
static pthread_mutex_t g_instances_lock = PTHREAD_MUTEX_INITIALIZER;

static sym_status instance_acquire(int validation_wanted, shared_instance **out) {
    pthread_mutex_lock(&g_instances_lock);
    shared_instance *si = &g_instances[validation_wanted ? 1 : 0];
    sym_status st = SYM_OK;
    if (!si->inst) {
        st = create_instance(validation_wanted, &si->inst, &si->validation);
        if (st == SYM_OK && si->validation) {
            PFN_vkCreateDebugUtilsMessengerEXT mk =
                (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                    si->inst, "vkCreateDebugUtilsMessengerEXT");
            VkDebugUtilsMessengerCreateInfoEXT mi = {
                .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
                .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                                   VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
                .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                               VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT,
                .pfnUserCallback = on_validation};
            if (mk) st = SYM_VK_CALL(mk(si->inst, &mi, NULL, &si->messenger));
            if (st != SYM_OK) {
                si->messenger = VK_NULL_HANDLE;
                vkDestroyInstance(si->inst, NULL);
                si->inst = VK_NULL_HANDLE;
            }
        }
    }
    if (st == SYM_OK) {
        si->refs++;
        *out = si;
    }
    pthread_mutex_unlock(&g_instances_lock);
    return st;
}

static void instance_release(shared_instance *si) {
    if (!si) return;
    pthread_mutex_lock(&g_instances_lock);
    si->refs--;
    pthread_mutex_unlock(&g_instances_lock);
}

void sym_vk_shutdown(void) {
    pthread_mutex_lock(&g_instances_lock);
    for (int i = 0; i < 2; i++) {
        shared_instance *si = &g_instances[i];
        if (!si->inst || si->refs > 0) continue;
        if (si->messenger) {
            PFN_vkDestroyDebugUtilsMessengerEXT rm =
                (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                    si->inst, "vkDestroyDebugUtilsMessengerEXT");
            if (rm) rm(si->inst, si->messenger, NULL);
        }
        vkDestroyInstance(si->inst, NULL);
        memset(si, 0, sizeof *si);
    }
    pthread_mutex_unlock(&g_instances_lock);
}

/* Ranks a usable device for automatic choice; higher is better, < 0 unusable. */
static int rank(const sym_vk_caps *c, int force_integrated) {
    if (c->api_version < VK_API_VERSION_1_2) return -1;
    switch (c->type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return force_integrated ? 3 : 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return force_integrated ? 4 : 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return 1;
    default:
        return 0;
    }
}

static int contains_nocase(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return n == 0;
}

/* Enumerates devices with their caps. *pds and *caps are sym_malloc'ed (caller frees). */
static sym_status enumerate(VkInstance inst, VkPhysicalDevice **pds, sym_vk_caps **caps,
                            uint32_t *n) {
    *pds = NULL;
    *caps = NULL;
    *n = 0;
    uint32_t count = 0;
    SYM_VK_TRY(vkEnumeratePhysicalDevices(inst, &count, NULL));
    if (count == 0) return SYM_FAIL(SYM_ERR_NO_DEVICE, "vulkan: no physical device");
    VkPhysicalDevice *p = sym_calloc(count, sizeof *p);
    sym_vk_caps *c = sym_calloc(count, sizeof *c);
    sym_status st = SYM_OK;
    if (!p || !c) SYM_FAIL_GOTO(SYM_ERR_OOM, "vulkan: out of memory");
    SYM_VK_TRY_GOTO(vkEnumeratePhysicalDevices(inst, &count, p));
    for (uint32_t i = 0; i < count; i++)
        SYM_TRY_GOTO(query_caps(inst, p[i], &c[i]));
    *pds = p;
    *caps = c;
    *n = count;
    return SYM_OK;
fail:
    sym_free(p);
    sym_free(c);
    return st;
}

static sym_status choose(const sym_vk_caps *caps, uint32_t n, const sym_vk_device_request *req,
                         int *chosen) {
    *chosen = -1;
    if (req->index >= 0) {
        SYM_CHECK((uint32_t)req->index < n, SYM_ERR_ARG,
                  "vulkan: device %d requested, %u device(s) present", req->index, n);
        SYM_CHECK(rank(&caps[req->index], 0) >= 0, SYM_ERR_NO_DEVICE,
                  "vulkan: device %d (%s) lacks Vulkan 1.2 or a compute queue", req->index,
                  caps[req->index].name);
        *chosen = req->index;
        return SYM_OK;
    }
    int best = -1, best_rank = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (req->name && !contains_nocase(caps[i].name, req->name)) continue;
        int r = rank(&caps[i], req->force_integrated);
        if (r > best_rank) best = (int)i, best_rank = r;
    }
    if (best < 0 && req->name)
        return SYM_FAIL(SYM_ERR_ARG, "vulkan: no usable device named like '%s'", req->name);
    SYM_CHECK(best >= 0, SYM_ERR_NO_DEVICE, "vulkan: no device with Vulkan 1.2 and compute");
    *chosen = best;
    return SYM_OK;
}

/* ---- public ------------------------------------------------------------------------------------
 */

void sym_vk_device_request_init(sym_vk_device_request *req) {
    memset(req, 0, sizeof *req);
    req->index = -1;
    req->enable_coopmat = 1;
}

sym_status sym_vk_device_list(sym_vk_caps **out, int *n, int *chosen) {
    *out = NULL;
    *n = 0;
    *chosen = -1;
    shared_instance *si;
    SYM_TRY(instance_acquire(0, &si));
    VkPhysicalDevice *pds = NULL;
    sym_vk_caps *caps = NULL;
    uint32_t count = 0;
    sym_status st = enumerate(si->inst, &pds, &caps, &count);
    if (st == SYM_OK) {
        sym_vk_device_request req;
        sym_vk_device_request_init(&req);
        if (choose(caps, count, &req, chosen) != SYM_OK) *chosen = -1;
        *out = caps;
        *n = (int)count;
    }
    sym_free(pds);
    instance_release(si);
    return st;
}

void sym_vk_device_update_budget(sym_vk_device *d) {
    if (!d->budget_enabled) return;
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 mp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &budget};
    vkGetPhysicalDeviceMemoryProperties2(d->phys, &mp);
    for (uint32_t i = 0; i < d->caps.n_heaps; i++) {
        d->caps.heaps[i].budget_bytes = budget.heapBudget[i];
        d->caps.heaps[i].usage_bytes = budget.heapUsage[i];
    }
}

static void log_caps(const sym_vk_caps *c, const sym_vk_device *d) {
    char ops[160];
    sym_vk_subgroup_ops_string(c->subgroup_ops, ops, sizeof ops);
    SYM_INFO("vulkan: %s (%s, %s %s, Vulkan %u.%u.%u)", c->name, c->type_name, c->driver_name,
             c->driver_info, VK_API_VERSION_MAJOR(c->api_version),
             VK_API_VERSION_MINOR(c->api_version), VK_API_VERSION_PATCH(c->api_version));
    SYM_INFO("vulkan: fp16 arithmetic %s, 16-bit storage %s, subgroup size %u [%s], "
             "cooperative matrix: NV %s%s, KHR %s",
             c->shader_float16 ? "yes" : "no", c->storage_16bit ? "yes" : "no", c->subgroup_size,
             ops, c->coopmat_nv ? "yes" : "no", c->coopmat_nv_f16 ? " (16x16x16 f16)" : "",
             c->coopmat_khr ? "yes" : "no");
    SYM_INFO("vulkan: maxStorageBufferRange %llu, maxMemoryAllocationSize %llu, maxBufferSize "
             "%llu, shared memory %u bytes, push descriptors %s, memory budget %s, dedicated "
             "transfer queue %s",
             (unsigned long long)c->max_storage_buffer_range,
             (unsigned long long)c->max_memory_allocation_size,
             (unsigned long long)c->max_buffer_size, c->max_shared_bytes,
             c->push_descriptor ? "yes" : "no", c->memory_budget ? "yes" : "no",
             c->dedicated_transfer ? "yes" : "no");
    for (uint32_t i = 0; i < c->n_heaps; i++)
        SYM_INFO("vulkan: heap %u: %.2f GiB%s%s", i, (double)c->heaps[i].size_bytes / (1 << 30),
                 c->heaps[i].device_local ? " device-local" : "",
                 c->heaps[i].budget_bytes ? ", budget known" : "");
    SYM_INFO("vulkan: enabled: fp16 %s, cooperative matrix %s, push descriptors %s",
             d->fp16_enabled ? "yes" : "no", d->coopmat_enabled ? "yes" : "no",
             d->push_descriptor_enabled ? "yes" : "no");
}

sym_status sym_vk_device_open(const sym_vk_device_request *req, sym_vk_device **out) {
    *out = NULL;
    sym_status st = SYM_OK;
    VkPhysicalDevice *pds = NULL;
    sym_vk_caps *caps = NULL;
    uint32_t n = 0;
    int chosen;
    sym_vk_device *d = sym_calloc(1, sizeof *d);
    if (!d) return SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory");
    SYM_TRY_GOTO(instance_acquire(want_validation(req->validation), &d->shared));
    d->instance = d->shared->inst;
    d->validation_enabled = d->shared->validation;
    SYM_TRY_GOTO(enumerate(d->instance, &pds, &caps, &n));
    SYM_TRY_GOTO(choose(caps, n, req, &chosen));
    d->phys = pds[chosen];
    d->caps = caps[chosen];
    const sym_vk_caps *c = &d->caps;

    const char *exts[8];
    uint32_t n_ext = 0;
    if (c->push_descriptor) {
        exts[n_ext++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
        d->push_descriptor_enabled = 1;
    }
    if (c->memory_budget) {
        exts[n_ext++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
        d->budget_enabled = 1;
    }
    d->coopmat_enabled = req->enable_coopmat && c->coopmat_nv_f16 && c->shader_float16;
    if (d->coopmat_enabled) exts[n_ext++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
    d->fp16_enabled = c->shader_float16 && (req->enable_fp16 || d->coopmat_enabled);

    VkPhysicalDeviceCooperativeMatrixFeaturesNV cmf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
        .cooperativeMatrix = VK_TRUE};
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .pNext = d->coopmat_enabled ? &cmf : NULL,
        .shaderFloat16 = d->fp16_enabled ? VK_TRUE : VK_FALSE,
        .vulkanMemoryModel = c->vulkan_memory_model ? VK_TRUE : VK_FALSE,
        .vulkanMemoryModelDeviceScope = c->memory_model_device_scope ? VK_TRUE : VK_FALSE};
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
        .pNext = &f12,
        .storageBuffer16BitAccess = c->storage_16bit ? VK_TRUE : VK_FALSE};
    f12.timelineSemaphore = c->timeline_semaphore ? VK_TRUE : VK_FALSE;
    if (c->external_memory_host) {
        exts[n_ext++] = VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME;
        d->host_import_enabled = 1;
    }
    /* queues: compute, plus one for uploads (vk/xfer.h) where timeline semaphores let the two
     * synchronize: the dedicated transfer family, else a second compute queue, else shared */
    float prio[2] = {1.0f, 1.0f};
    VkDeviceQueueCreateInfo qi[2] = {{.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                      .queueFamilyIndex = c->compute_family,
                                      .queueCount = 1,
                                      .pQueuePriorities = prio}};
    uint32_t n_qi = 1;
    int xfer_mode = 0; /* 0 none, 1 dedicated family, 2 second compute queue, 3 shared */
    if (c->timeline_semaphore) {
        if (c->dedicated_transfer && !getenv("SYM_VK_NO_TRANSFER_QUEUE")) {
            qi[1] = qi[0];
            qi[1].queueFamilyIndex = c->transfer_family;
            n_qi = 2;
            xfer_mode = 1;
        } else if (c->compute_queue_count >= 2) {
            qi[0].queueCount = 2;
            xfer_mode = 2;
        } else {
            xfer_mode = 3;
        }
    }
    VkDeviceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .pNext = &f11,
                             .queueCreateInfoCount = n_qi,
                             .pQueueCreateInfos = qi,
                             .enabledExtensionCount = n_ext,
                             .ppEnabledExtensionNames = exts};
    SYM_VK_TRY_GOTO(vkCreateDevice(d->phys, &ci, NULL, &d->dev));
    vkGetDeviceQueue(d->dev, c->compute_family, 0, &d->queue);
    d->families[0] = c->compute_family;
    d->n_families = 1;
    if (xfer_mode == 1) {
        vkGetDeviceQueue(d->dev, c->transfer_family, 0, &d->xfer_queue);
        d->xfer_family = c->transfer_family;
        d->families[d->n_families++] = c->transfer_family;
    } else if (xfer_mode == 2) {
        vkGetDeviceQueue(d->dev, c->compute_family, 1, &d->xfer_queue);
        d->xfer_family = c->compute_family;
    } else if (xfer_mode == 3) {
        d->xfer_queue = d->queue;
        d->xfer_family = c->compute_family;
        d->xfer_shared = 1;
        pthread_mutex_init(&d->queue_lock_storage, NULL);
        d->queue_lock = &d->queue_lock_storage;
    }
    if (d->push_descriptor_enabled) {
        d->cmd_push_descriptor_set =
            (PFN_vkCmdPushDescriptorSetKHR)vkGetDeviceProcAddr(d->dev, "vkCmdPushDescriptorSetKHR");
        if (!d->cmd_push_descriptor_set) d->push_descriptor_enabled = 0;
    }
    log_caps(c, d);
    sym_free(pds);
    sym_free(caps);
    *out = d;
    return SYM_OK;
fail:
    sym_free(pds);
    sym_free(caps);
    sym_vk_device_close(d);
    return st;
}

void sym_vk_device_close(sym_vk_device *d) {
    if (!d) return;
    if (d->dev) vkDestroyDevice(d->dev, NULL);
    if (d->queue_lock) pthread_mutex_destroy(d->queue_lock);
    instance_release(d->shared);
    sym_free(d);
}
