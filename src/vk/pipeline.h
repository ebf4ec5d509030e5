/* pipeline.h — compute pipelines: one descriptor-set layout and pipeline layout per kernel, one
 * pipeline per (kernel variant, specialization constants), created on first use and kept; the
 * driver's pipeline cache is loaded from and saved to $XDG_CACHE_HOME/symbiote/ (or
 * ~/.cache/symbiote/). SPIR-V comes from the embedded table (shaders.h) or, with a shader
 * directory, from GLSL compiled at run time (shader_dir.h); sym_vk_pipelines_reload() rebuilds
 * the kernels whose sources changed (hot reload). Not thread-safe: the engine's thread only.
 */
#ifndef SYM_VK_PIPELINE_H
#define SYM_VK_PIPELINE_H

#include "vk/device.h"

typedef enum sym_vk_kernel {
    SYM_VK_K_EMBED = 0,
    SYM_VK_K_RMSNORM,
    SYM_VK_K_MATVEC,
    SYM_VK_K_MATMUL,
    SYM_VK_K_GEMM_SPLIT,
    SYM_VK_K_MATMUL_COOP,
    SYM_VK_K_ROPE,
    SYM_VK_K_STORE_ROWS,
    SYM_VK_K_ATTN_DECODE,
    SYM_VK_K_ATTN_COMBINE,
    SYM_VK_K_ATTN_PREFILL,
    SYM_VK_K_SILU_MUL,
    SYM_VK_K_ADD,
    SYM_VK_K_SOFTMAX,
    SYM_VK_K_ARGMAX,
    SYM_VK_K_MV,
    SYM_VK_K_MV_GATE,
    SYM_VK_K_MV_QKV,
    SYM_VK_K_ATTN_DECODE_SG,
    SYM_VK_K_PROBE_READ,
    SYM_VK_K_SET_COLS,
    SYM_VK_K_ADD_ROWS_SCALED,
    SYM_VK_K_SCALE_COLS,
    SYM_VK_K_ATTN_PREFILL_RT,
    SYM_VK_K_PROBE_CHAIN,
    SYM_VK_K_ATTN_PREFILL_TC,
    SYM_VK_K_ROPE_STORE,
    SYM_VK_K_PROBE_DCHAIN,
    SYM_VK_K_TOPK,
    SYM_VK_K_COUNT
} sym_vk_kernel;

/* Specialization constant ids (shaders/common.glsl): 0 workgroup size, 1 use subgroups,
 * 2 fp16 math, 3 dtype, 4..11 per kernel. All 32-bit. */
#define SYM_VK_N_SPEC       12
#define SYM_VK_MAX_BINDINGS 12 /* storage buffers of one kernel (mv_qkv) */
typedef struct sym_vk_spec {
    uint32_t v[SYM_VK_N_SPEC];
} sym_vk_spec;

typedef enum sym_vk_variant {
    SYM_VK_VAR_DEFAULT = 0, /* "<kernel>" */
    SYM_VK_VAR_NOSG,        /* "<kernel>_nosg" */
    SYM_VK_VAR_FP16,        /* "<kernel>_fp16" */
} sym_vk_variant;

typedef struct sym_vk_pipeline {
    VkPipeline pipe;
    VkPipelineLayout layout;   /* the kernel's, shared by its pipelines */
    VkDescriptorSetLayout dsl; /* the kernel's */
    sym_vk_kernel kernel;
    uint32_t n_bindings;
    uint32_t push_bytes;
} sym_vk_pipeline;

typedef struct sym_vk_pipelines sym_vk_pipelines;

/* cache_dir: NULL for the default location, "" for no on-disk cache. push_descriptors selects
 * set layouts for vkCmdPushDescriptorSetKHR. Fails with SYM_ERR_VULKAN or SYM_ERR_OOM. */
sym_status sym_vk_pipelines_create(sym_vk_device *d, int push_descriptors, const char *cache_dir,
                                   sym_vk_pipelines **out);
/* Saves the pipeline cache (a failure to save is logged, not fatal) and destroys everything.
 * The device must be idle. */
void sym_vk_pipelines_destroy(sym_vk_pipelines *p);

/* The pipeline for kernel k, variant and spec; built on first request. The pointer stays valid
 * until sym_vk_pipelines_drop or destroy. SYM_ERR_INTERNAL if the variant is not embedded or
 * its push-constant block disagrees with push.h; SYM_ERR_VULKAN if creation fails. */
sym_status sym_vk_pipeline_get(sym_vk_pipelines *p, sym_vk_kernel k, sym_vk_variant var,
                               const sym_vk_spec *spec, const sym_vk_pipeline **out);

/* Destroys kernel k's pipelines and shader modules (device idle); they are rebuilt on demand.
 * Every pointer from sym_vk_pipeline_get is invalid afterwards (entries move). */
void sym_vk_pipelines_drop(sym_vk_pipelines *p, sym_vk_kernel k);

/* From now on kernels are compiled from DIR/<kernel>.comp at run time (see shader_dir.h; a
 * kernel without a file there keeps its embedded SPIR-V); pipelines made so far are dropped, as
 * by sym_vk_pipelines_drop. SYM_ERR_UNSUPPORTED in a build without libshaderc, SYM_ERR_IO if DIR
 * is not a directory holding .comp files. */
sym_status sym_vk_pipelines_use_shader_dir(sym_vk_pipelines *p, const char *dir);
/* Hot reload: recompiles the kernels whose sources changed since they were compiled; each that
 * compiles (every variant in use) and keeps its push-constant block is dropped, so its next use
 * builds the new pipeline; one that does not keeps its pipelines and the error is logged.
 * Returns the number of kernels dropped (0 without a shader dir). Same conditions as drop:
 * the device is idle and no pipeline pointer is held. */
int sym_vk_pipelines_reload(sym_vk_pipelines *p);
/* The shader dir in use, NULL if none. */
const char *sym_vk_pipelines_shader_dir(const sym_vk_pipelines *p);

const char *sym_vk_kernel_name(sym_vk_kernel k);
/* Bytes of the push-constant block declared in a SPIR-V module (0 if none); -1 if the module
 * cannot be parsed or the block has members other than 32-bit scalars. */
int sym_vk_spirv_push_bytes(const uint32_t *code, size_t bytes);

/* Where the on-disk pipeline cache lives ("" if disabled); for logs and `symbiote devices`. */
const char *sym_vk_pipelines_cache_path(const sym_vk_pipelines *p);
int sym_vk_pipelines_count(const sym_vk_pipelines *p);

#endif
