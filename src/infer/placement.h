/* placement.h — where the weights live, decided at engine open from the budgets.
 *
 * Budgets are hard limits on everything the engine holds: --vram-gb on all device memory
 * (weights, KV cache, activations, kernel scratch), --ram-gb on the process's resident memory.
 * 0 means automatic: what the device reports free (VK_EXT_memory_budget, else 80% of the
 * device-local heap), and 90% of MemAvailable.
 *
 * RESIDENT  the weights, the KV cache and the activations fit the budget of the memory the
 *           backend computes from (VRAM for Vulkan, RAM for the CPU backends): every weight is
 *           loaded once at open and nothing moves per token.
 * STREAMED  they do not: the forward pass keeps only the vectors (norms, biases), and the pack
 *           manager (tier/pack_manager.h) brings each pack of the plan (pack/pack.h) in schedule
 *           order into the tier the ops read from (DEVICE for Vulkan, RAM for the CPU), keeping
 *           what fits by the eviction policy ([memory] eviction_policy: Belady's rule for dense
 *           models, the vitality oracle for mixtures of experts, which the engine tells each
 *           layer's routing) and prefetching [memory] prefetch_lookahead packs ahead.
 *           On Vulkan the RAM tier is imported host memory and uploads run on the transfer queue
 *           (vk/xfer.h); the disk tier is read with O_DIRECT. A .sympack streams with its own
 *           pack table (max_pack_mb other than 0 or the store's is SYM_ERR_CONFIG): the disk tier
 *           reads each pack's stored bytes from it, and the I/O threads check and decompress
 *           them into the RAM tier.
 * A budget below the minimum working set (the KV cache, activations and scratch plus one pack)
 * fails with SYM_ERR_BUDGET naming the GB needed.
 */
#ifndef SYM_INFER_PLACEMENT_H
#define SYM_INFER_PLACEMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "infer/forward.h"
#include "tier/oracle.h"

typedef struct sym_placement {
    bool streamed;
    bool device;               /* the backend computes from device memory */
    uint64_t vram_budget;      /* bytes; 0 for host backends */
    uint64_t ram_budget;       /* bytes */
    uint64_t weight_bytes;     /* every weight once */
    uint64_t scratch_bytes;    /* KV cache + activations (+ kernel scratch on devices) */
    uint64_t kernel_scratch_bytes; /* the Vulkan kernels' scratch bound (reserved when streaming) */
    /* streamed only */
    sym_pack_plan *plan;       /* owned, or the .sympack's own (plan_borrowed) */
    bool plan_borrowed;
    uint64_t store_raw_bytes, store_stored_bytes; /* streaming a .sympack: its totals; else 0 */
    sym_pack_manager *pm;
    sym_tier tier;             /* where the ops read packs */
    uint64_t device_tier_bytes, ram_tier_bytes;
    uint64_t ram_tier_cap;     /* test seam (sym_engine_params): at most this RAM tier; 0: none */
    uint64_t stream_bytes_per_token; /* predicted bytes moved per decoded token (after the first) */
    uint64_t disk_bytes_per_token;   /* ... of which come from disk */
    double link_gbps;          /* host -> device, measured at open (0: not measured) */
    bool direct_uploads;       /* uploads on the transfer queue from imported host memory */
    double predicted_tok_s;    /* from the measured link rate (0: unknown) */
    /* the CPU/GPU split of decode (cpu_gpu_split) */
    bool split;
    double cpu_gbps;           /* the CPU's f16 matrix-vector rate from RAM, measured alone */
    double cpu_gbps_loaded;    /* ... while the transfer queue uploads (0: not measured) */
    double link_gbps_loaded;   /* the link's rate meanwhile */
    bool split_rates_loaded;   /* the split was planned with the two rates under load */
    uint64_t cpu_bytes_per_token; /* planned bytes the CPU computes per decoded token */
    sym_backend *cpu;          /* the CPU backend doing it (owned) */
    /* eviction ([memory] eviction_policy; auto: the oracle for mixtures of experts, else Belady) */
    const char *policy_name;   /* "oracle", "belady", "lru" (static) */
    sym_oracle *oracle;        /* the oracle policy's (owned), NULL for the others */
} sym_placement;

/* Resolves the budgets and decides RESIDENT or STREAMED for backend b (device: a Vulkan backend;
 * force_stream: STREAMED even if the weights fit, for tests of small real models); sets
 * fo->streamed and, when streaming and n_batch_given is false, a prefill chunk that streams each
 * pack once per 512 tokens. SYM_ERR_BUDGET for a budget that cannot hold even the KV cache and
 * activations. */
sym_status sym_placement_decide(sym_placement *pl, const sym_config *cfg, sym_backend *b,
                                bool device, const sym_model *m, sym_forward_options *fo,
                                bool n_batch_given, bool force_stream);

/* After the forward pass exists (streamed): plans the packs, measures the link, creates the pack
 * manager with what the budgets leave and hands it to f. Logs the placement. */
sym_status sym_placement_stream(sym_placement *pl, const sym_config *cfg, sym_backend *b,
                                const sym_model *m, sym_forward_pass *f, sym_pread_fn pread_fn,
                                void *pread_user);

/* A one-line summary ("resident: ..." / "streaming: ..."). */
void sym_placement_describe(const sym_placement *pl, char *buf, size_t cap);

void sym_placement_destroy(sym_placement *pl);

#endif
