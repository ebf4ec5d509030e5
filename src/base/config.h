/* config.h — engine settings with the precedence defaults < INI file < environment < command line.
 *
 * INI sections and keys (docs/CONFIG.md has the meaning and range of each):
 *   [memory]      vram_budget_gb ram_budget_gb prefetch_lookahead eviction_aggression
 *                 eviction_policy enable_compression compression_algorithm max_packs_in_memory
 *                 max_pack_mb predict_experts
 *   [performance] enable_gpu enable_profiling workgroup_size_x workgroup_size_y use_subgroup_ops
 *                 use_fp16_math scale_factor n_threads shader_dir
 *   [logging]     log_level log_to_file log_file_path log_performance log_memory_usage
 *                 max_log_file_size_mb
 *   [model]       model_path
 * Environment: VK_SYMBIOTE_VRAM_GB, VK_SYMBIOTE_RAM_GB, VK_SYMBIOTE_PREFETCH (and
 * VK_SYMBIOTE_CONFIG names the INI file, read by the tools).
 * Unknown sections or keys and bad values are errors (SYM_ERR_CONFIG) naming file, line and key.
 */
#ifndef SYM_BASE_CONFIG_H
#define SYM_BASE_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "base/log.h"

#define SYM_CONFIG_PATH_MAX 4096

/* [memory] compression_algorithm: the codec `symbiote pack` uses (pack/codec.h has the codecs;
 * base cannot include it, hence a choice of its own, with "auto"). */
typedef enum sym_codec_choice {
    SYM_CODEC_CHOICE_AUTO = 0,
    SYM_CODEC_CHOICE_NONE,
    SYM_CODEC_CHOICE_ZSTD,
    SYM_CODEC_CHOICE_BLOSC,
    SYM_CODEC_CHOICE_ZFP,
    SYM_CODEC_CHOICE_BYTESPLIT,
} sym_codec_choice;

/* [memory] eviction_policy: what leaves a tier first when streaming (tier/evict.h, tier/oracle.h;
 * base cannot include them). AUTO: the vitality oracle for mixtures of experts, Belady for dense
 * models (on a dense model the oracle makes Belady's choices). */
typedef enum sym_evict_choice {
    SYM_EVICT_CHOICE_AUTO = 0,
    SYM_EVICT_CHOICE_ORACLE,
    SYM_EVICT_CHOICE_BELADY,
    SYM_EVICT_CHOICE_LRU,
} sym_evict_choice;

typedef struct sym_config {
    /* [memory] */
    double vram_budget_gb;      /* 0: automatic (what the device reports free) */
    double ram_budget_gb;       /* 0: automatic (available RAM) */
    int prefetch_lookahead;     /* packs fetched ahead of use */
    double eviction_aggression; /* 0..1: how early low-vitality packs leave (the oracle's) */
    sym_evict_choice eviction_policy;
    bool enable_compression;    /* false: `symbiote pack` stores every pack raw */
    sym_codec_choice compression_algorithm;
    int max_packs_in_memory;    /* 0: unlimited */
    bool predict_experts;       /* streamed mixtures of experts: prefetch the experts the next
                                 * layer's router predicts from the current hidden state (false) */
    int max_pack_mb;            /* pack size limit for the planner, 1..256 MiB; 0: automatic
                                 * (32 for `symbiote pack` and `info --packs`; when streaming,
                                 * what the placement picks from the tier's size, up to 128) */
    /* [performance] */
    bool enable_gpu;
    bool enable_profiling;
    int workgroup_size_x, workgroup_size_y;
    bool use_subgroup_ops;
    bool use_fp16_math;
    double scale_factor;        /* linear RoPE position scale (context extension); 1: none */
    int n_threads;              /* CPU threads; 0: all online cores */
    bool cpu_gpu_split;         /* streaming on a GPU: decode a share of the streamed packs on the
                                 * CPU from RAM while the rest is uploaded (where rates say so) */
    char shader_dir[SYM_CONFIG_PATH_MAX]; /* "": embedded SPIR-V; else GLSL compiled at run time */
    /* [logging] */
    sym_log_level log_level;
    bool log_to_file;
    char log_file_path[SYM_CONFIG_PATH_MAX];
    bool log_performance;
    bool log_memory_usage;
    int max_log_file_size_mb;   /* 0: never rotate */
    /* [model] */
    char model_path[SYM_CONFIG_PATH_MAX];
} sym_config;

void sym_config_defaults(sym_config *cfg);

/* Sets one key from its text form, validating type and range. origin (e.g. "file.ini:12" or
 * "--vram-gb") prefixes the error detail. Fails with SYM_ERR_CONFIG. */
sym_status sym_config_set(sym_config *cfg, const char *section, const char *key,
                          const char *value, const char *origin);

/* Reads an INI file over cfg. SYM_ERR_IO if unreadable; SYM_ERR_CONFIG naming file:line and key
 * for an unknown section or key, a bad value, or a syntax error. cfg is unchanged on failure. */
sym_status sym_config_load_ini(sym_config *cfg, const char *path);

/* Applies VK_SYMBIOTE_VRAM_GB, VK_SYMBIOTE_RAM_GB, VK_SYMBIOTE_PREFETCH if set. */
sym_status sym_config_apply_env(sym_config *cfg);

/* Writes cfg as an INI file that sym_config_load_ini reads back to the same values. */
void sym_config_write_ini(const sym_config *cfg, FILE *out);

const char *sym_codec_choice_name(sym_codec_choice c);
/* "auto", "oracle", "belady", "lru". */
const char *sym_evict_choice_name(sym_evict_choice c);

/* The directory of the caches symbiote keeps (the Vulkan pipeline cache, the oracle's weights):
 * $XDG_CACHE_HOME/symbiote if XDG_CACHE_HOME is an absolute path, else $HOME/.cache/symbiote.
 * false (buf "") when neither is set or the path does not fit in cap. */
bool sym_cache_dir(char *buf, size_t cap);

#endif
