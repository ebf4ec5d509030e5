/* vk/ops.h — the Vulkan sym_backend (infer/ops.h): tensors live in device-local buffers, ops are
 * recorded into one command buffer and submitted at read() or sync(), so a token (or a layer) is
 * one submission. Errors inside ops are latched and returned by the next read()/sync().
 *
 *   sym_vk_options o;
 *   sym_vk_options_from_config(&o, &cfg);    // or sym_vk_options_init
 *   sym_backend *b;
 *   SYM_TRY(sym_vk_backend_create(&o, &b));  // SYM_ERR_NO_DEVICE: fall back to the CPU
 *   ... b->ops->matmul(b, ...); b->ops->read(b, &t, host, bytes); ...
 *   b->ops->destroy(b);
 *
 * Tensor handles: sym_tensor.buf is a sym_vk_buffer*, .offset a byte offset into it. release()
 * only on tensors returned by alloc/load (not on views). Engine thread only.
 */
#ifndef SYM_VK_OPS_H
#define SYM_VK_OPS_H

#include "base/config.h"
#include "infer/ops.h"
#include "vk/cmd.h"
#include "vk/xfer.h"

typedef struct sym_vk_options {
    int device_index;             /* >= 0: that device; -1 (default): automatic */
    const char *device_name;      /* non-NULL: first device whose name contains it */
    int force_integrated;         /* prefer an integrated GPU over a discrete one */
    int workgroup_size;           /* threads per workgroup of every kernel that takes one
                                   * (1..maxComputeWorkGroupInvocations); 0: 256 for the row and
                                   * elementwise kernels and decode attention, 64 for decode's
                                   * matrix-vector products */
    int matvec_rows;              /* output rows per matrix-vector workgroup (1..8; 0: 1); with
                                   * subgroups, rows per group of the mv kernels (1..4; 0: 1) */
    int mv_split;                 /* subgroups sharing each row of the mv kernels (a divisor of the
                                   * workgroup's subgroups; 0: all of them) */
    int no_fused;                 /* 1: attn_in, ffn_in and norm_matmul run their plain sequences
                                   * (for comparison; also $SYM_VK_NO_FUSED=1) */
    uint64_t norm_fuse_max_bytes; /* norm_matmul fuses the RMSNorm into the product only for
                                   * weights up to this many bytes (0: $SYM_VK_NORM_FUSE_MAX_MB
                                   * MiB, else 64 MiB): over a vocabulary-sized matrix the saved
                                   * dispatch is worth less than the norm's extra loads */
    int plain_matvec;             /* products without a fused norm: 1 the matvec kernel, -1 the
                                   * subgroup kernel mv; 0: $SYM_VK_PLAIN_MATVEC, else matvec (it
                                   * streams ~25% faster on an H100, docs/VULKAN.md) */
    int use_subgroups;            /* 1 (default): subgroup reductions where the device has them */
    int use_fp16_math; /* 1: f16 arithmetic where it pays (needs shaderFloat16); 0 default */
    int use_coopmat;   /* 1 (default): cooperative-matrix GEMM where the device offers it */
    int f32_gemm_act;  /* 1: tensor-core GEMMs keep f32 activations (split into f16 hi + lo
                        * halves: twice the tensor work); 0 (default): activations rounded to
                        * f16 first, as other engines do (the engine sets 1 with --fp32) */
    int fp32_kv;       /* recorded for the engine, which picks the KV cache's dtype; the
                        * backend only converts to whatever dtype the cache tensor has */
    int profiling;     /* 1: per-kernel GPU timestamps (serializes dispatches) */
    int validation;    /* 1: Khronos validation layer if installed (also SYM_VK_VALIDATION=1) */
    int force_descriptor_pool; /* 1: per-batch descriptor pools even where push descriptors
                                * exist (the path for devices without them; tests use it) */
    int coop_tile[4];          /* tuning of the cooperative-matrix GEMM: 16x16 blocks per subgroup
                                * in M and N (1..4), shared-row padding in 16-byte units (0..2), K
                                * step in units of 8 (even, 2..16); all 0: the defaults */
    int coop_warps[2];         /* subgroups of the GEMM's workgroup along M and N (product at
                                * most 16); 0: the default */
    const char *pipeline_cache_dir; /* NULL: $XDG_CACHE_HOME/symbiote or ~/.cache/symbiote;
                                     * "": no on-disk cache */
    uint64_t staging_bytes;         /* host->device staging ring (0: 64 MiB) */
    int submit_every;               /* dispatches per submission inside a batch, so that the
                                     * GPU runs while the host records the rest (0: 32, or
                                     * $SYM_VK_SUBMIT_EVERY; -1: one submission per batch) */
    uint64_t max_binding_bytes;     /* cap on one descriptor's range below the device's
                                     * maxStorageBufferRange (0: the device's); tests use it to make
                                     * small tensors take the sliced paths */
    const char *shader_dir;         /* non-NULL, not "": kernels are compiled at run time from
                                     * DIR/<kernel>.comp and rebuilt when their sources change
                                     * (hot reload, docs/VULKAN.md); copied at creation */
    int shader_poll_ms;             /* with shader_dir: sources are checked for changes at the
                                     * first op after the GPU went idle (each token), at most
                                     * this often (0: 500 ms; -1: every time) */
} sym_vk_options;

void sym_vk_options_init(sym_vk_options *o);
/* Defaults, then [performance] workgroup_size_x/_y, use_subgroup_ops, use_fp16_math,
 * enable_profiling, shader_dir from cfg (o borrows cfg's shader_dir until backend creation). */
void sym_vk_options_from_config(sym_vk_options *o, const sym_config *cfg);

/* Opens the device and creates the backend; *out is owned by the caller (ops->destroy).
 * SYM_ERR_NO_DEVICE without a Vulkan device, SYM_ERR_ARG for bad options or a device index/name
 * that matches none, SYM_ERR_UNSUPPORTED if fp16 math is asked of a device without it or a
 * shader dir of a build without libshaderc, SYM_ERR_IO if the shader dir is not a directory
 * holding .comp files, SYM_ERR_VULKAN if a call fails. */
sym_status sym_vk_backend_create(const sym_vk_options *opts, sym_backend **out);

/* 1 if b was made by sym_vk_backend_create. The functions below require it. */
int sym_vk_backend_is(const sym_backend *b);
const sym_vk_caps *sym_vk_backend_caps(const sym_backend *b);
/* 1 if prefill products of f16/bf16 weights use the cooperative-matrix kernel. */
int sym_vk_backend_uses_coopmat(const sym_backend *b);
/* 1 if those products keep f32 activations (hi + lo halves), 0 if they round them to f16. */
int sym_vk_backend_f32_gemm_act(const sym_backend *b);
/* Per-kernel GPU time (profiling on): see sym_vk_cmd_profile. */
int sym_vk_backend_profile(const sym_backend *b, sym_vk_profile_entry *out, int cap);
void sym_vk_backend_profile_reset(sym_backend *b);
/* Profiling on or off at run time (see sym_vk_cmd_set_profiling). */
sym_status sym_vk_backend_set_profiling(sym_backend *b, int on);
/* How long waits poll their fence before blocking, in microseconds (sym_vk_cmd_set_spin). */
void sym_vk_backend_set_fence_spin(sym_backend *b, double us);
void sym_vk_backend_stats(const sym_backend *b, sym_vk_cmd_stats *out);
/* With a shader dir: kernels rebuilt from changed sources so far (a source that failed to
 * compile does not count). */
uint64_t sym_vk_backend_shader_reloads(const sym_backend *b);
const sym_vk_device *sym_vk_backend_device(const sym_backend *b);
/* Device scratch the kernels may ask for with prefill chunks of n_batch tokens, products of at
 * most max_k inputs and attention of n_head heads of head_dim: an upper bound, so that a hard
 * VRAM budget can set it aside up front (sym_vk_backend_reserve_scratch). */
uint64_t sym_vk_backend_scratch_bound(const sym_backend *b, uint64_t n_batch, uint64_t max_k,
                                      uint64_t n_head, uint64_t head_dim);
/* Allocates the scratch buffer at bytes now (if it is smaller), so it never grows later. */
sym_status sym_vk_backend_reserve_scratch(sym_backend *b, uint64_t bytes);

/* Streaming: the backend's upload queue (vk/xfer.h), created on first call; from then on the
 * compute submissions wait for its uploads. SYM_ERR_UNSUPPORTED without one. */
sym_status sym_vk_backend_xfer(sym_backend *b, sym_vk_xfer **out);
/* A pack manager upload function (tier/scheduler.h sym_upload_fn) copying through that queue:
 * any thread. */
sym_status sym_vk_backend_upload(void *user, sym_backend *b, sym_tensor *dst, const void *src,
                                 size_t bytes);

#endif
