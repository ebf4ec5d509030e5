/* symbiote.h — the one public header of the Symbiote inference engine.
 *
 * Opaque handles, open/close pairs, and every fallible call returns a sym_status; the one-line
 * detail of the last failure on the calling thread is in sym_last_error(). The library never
 * prints to stdout, never exits and never aborts on bad input.
 */
#ifndef SYMBIOTE_H
#define SYMBIOTE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sym_status {
    SYM_OK = 0,
    SYM_ERR_ARG,         /* a caller passed an invalid argument */
    SYM_ERR_IO,          /* open/read/write/mmap failed */
    SYM_ERR_FORMAT,      /* a file is truncated, corrupt or inconsistent */
    SYM_ERR_UNSUPPORTED, /* valid input we do not run (quantized types, unknown architecture) */
    SYM_ERR_OOM,         /* host allocation failed */
    SYM_ERR_BUDGET,      /* a VRAM/RAM budget is too small for what was asked */
    SYM_ERR_VULKAN,      /* a Vulkan call failed (the detail names the VkResult) */
    SYM_ERR_NO_DEVICE,   /* no usable compute device */
    SYM_ERR_CONFIG,      /* bad configuration file, key or value */
    SYM_ERR_CHECKSUM,    /* stored data does not match its checksum */
    SYM_ERR_RANGE,       /* a value is out of range (prompt longer than the context, …) */
    SYM_ERR_INTERNAL,    /* a broken invariant of ours */
    SYM_STATUS_COUNT
} sym_status;

/* "SYM_ERR_FORMAT" etc.; never NULL. */
const char *sym_status_name(sym_status status);
/* The detail of the last failure recorded on this thread ("" if none). Valid until the next
 * failing call on this thread. */
const char *sym_last_error(void);

const char *sym_version(void);

/* ---- engine (see docs/API.md) ------------------------------------------------------------ */

typedef struct sym_engine sym_engine;

typedef struct sym_engine_options {
    const char *model_path;  /* GGUF file, .sympack, or safetensors file/directory */
    const char *config_path; /* optional INI file (NULL: VK_SYMBIOTE_CONFIG or none) */
    int disable_gpu;         /* 1: CPU backend only */
    int fp32;                /* 1: f32 everywhere (KV cache included) */
    int n_threads;           /* CPU threads (0: all cores) */
    int n_ctx;               /* context length (0: the model's training context) */
    double vram_gb;          /* budgets (0: from config / automatic) */
    double ram_gb;
} sym_engine_options;

/* Fills *opts with defaults (all zero / NULL). */
void sym_engine_options_init(sym_engine_options *opts);

/* Opens the model and creates the backend. On success *out is owned by the caller and freed by
 * sym_engine_close. Fails with the status of the first problem (file, format, device, budget). */
sym_status sym_engine_open(const sym_engine_options *opts, sym_engine **out);
void sym_engine_close(sym_engine *engine);

/* Tokenizes UTF-8 text. Writes at most cap ids; *n_ids gets the full count (SYM_ERR_RANGE
 * if it exceeds cap). add_bos prepends the model's BOS; parse_special matches special tokens. */
sym_status sym_encode(sym_engine *engine, const char *text, size_t len, int add_bos,
                      int parse_special, int32_t *ids, size_t cap, size_t *n_ids);
/* Text of one token, as raw bytes (may be a partial UTF-8 sequence). *len gets its length. */
sym_status sym_token_piece(sym_engine *engine, int32_t id, const char **bytes, size_t *len);

/* Runs the model on n ids appended after what the engine already holds in its KV cache
 * (use sym_reset to start over); copies the logits of the last position into logits
 * (n_vocab floats) if logits is not NULL. */
sym_status sym_forward(sym_engine *engine, const int32_t *ids, size_t n, float *logits);
/* As sym_forward, but sets *id to the greedy choice — the index of the last position's largest
 * logit (the first of equals; NaN never wins) — instead of copying the logits: on a GPU the
 * argmax runs there and 4 bytes are read back instead of n_vocab floats. */
sym_status sym_forward_argmax(sym_engine *engine, const int32_t *ids, size_t n, int32_t *id);
void sym_reset(sym_engine *engine);
int sym_n_vocab(const sym_engine *engine);
int sym_n_ctx(const sym_engine *engine);

typedef struct sym_sampling {
    float temperature;        /* 0: greedy */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off */
    float repeat_penalty;     /* 1: off */
    int repeat_last_n;        /* window for the penalty */
    uint64_t seed;
} sym_sampling;
void sym_sampling_init(sym_sampling *s);

/* Called with each generated token's id and text (complete UTF-8 only: bytes of an unfinished
 * character are held until it completes; a final call with id -1 carries anything held at the
 * end). Return non-zero to stop. */
typedef int (*sym_token_fn)(void *user, int32_t id, const char *text, size_t len);

/* Generates up to max_tokens after prompt (tokenized with BOS), streaming through on_token.
 * Stops at EOS or when the context is full. */
sym_status sym_generate(sym_engine *engine, const char *prompt, int max_tokens,
                        const sym_sampling *sampling, sym_token_fn on_token, void *user);

/* As sym_generate, for a prompt of prompt_len bytes (may hold NUL bytes); ignore_eos keeps going
 * past end-of-generation tokens. */
sym_status sym_generate_ex(sym_engine *engine, const char *prompt, size_t prompt_len,
                           int max_tokens, const sym_sampling *sampling, int ignore_eos,
                           sym_token_fn on_token, void *user);

/* Continues the conversation: tokenizes text (parse_special: match special tokens such as
 * "<|im_start|>" — chat templates need it) after everything the engine already holds (BOS only
 * if it holds nothing), runs it, and generates up to max_tokens, stopping at an end-of-generation
 * token. The KV cache is kept: only the new text is evaluated. SYM_ERR_RANGE (nothing run) if
 * the text does not fit in the positions left; sym_reset starts over. */
sym_status sym_generate_append(sym_engine *engine, const char *text, size_t len, int parse_special,
                               int max_tokens, const sym_sampling *sampling,
                               sym_token_fn on_token, void *user);
/* Tokens the engine holds (evaluated, plus at most one sampled but not yet evaluated). */
int sym_n_past(const sym_engine *engine);

typedef struct sym_metrics {
    uint64_t prompt_tokens, generated_tokens;
    double prefill_ms, decode_ms;
    double prefill_tok_s, decode_tok_s;
    uint64_t peak_ram_bytes, peak_vram_bytes;
    uint64_t bytes_uploaded, bytes_read_disk;
    uint64_t pack_hits, pack_misses;
    double stall_ms;     /* streaming: time the forward pass waited for packs */
    double stall_disk_ms; /* ... of it for packs that were not in RAM yet (the rest: uploads) */
    const char *backend; /* "cpu", "vulkan" — static string */
    /* streaming (all 0 when the model is resident) */
    int streamed;           /* 1: weights stream through the pack manager */
    double predicted_tok_s; /* decode rate predicted at open from the measured link (0: unknown) */
    double upload_ms;       /* time the upload worker spent copying to the device */
    double disk_ms;         /* time the I/O threads spent reading (summed over threads) */
    double link_gb_s;       /* host -> device rate measured at open (0: not measured) */
    uint64_t vram_tier_bytes, ram_tier_bytes; /* what the budgets left for packs */
    int split;              /* 1: the CPU decodes a share of the streamed packs from RAM */
    uint64_t bytes_cpu;     /* weight bytes the CPU computed from RAM (the split) */
    double cpu_ms;          /* time the CPU spent computing them */
    double readback_ms;     /* time waiting for the GPU to read a stage's input back (the split) */
    uint64_t readbacks;     /* ... how many times */
    double cpu_gb_s;        /* the CPU's f16 product rate measured at open, alone (the split) */
    double cpu_gb_s_loaded; /* ... and while the link uploads (0: not measured) */
    double link_gb_s_loaded; /* the link's rate meanwhile */
    /* eviction (streaming) */
    const char *eviction_policy; /* "oracle", "belady", "lru" — static string; NULL: resident */
    uint64_t expert_hits, expert_misses; /* gets of EXPERT packs in the tier the ops read from */
    uint64_t expert_bytes_moved; /* expert bytes brought into it (uploaded; on the CPU, read) */
    uint64_t oracle_samples;     /* samples the oracle's MLP has learned from, loaded ones too */
    double oracle_log_loss;      /* mean log loss of its expert predictions (0: none) */
    uint64_t vram_tier_high_water_bytes, ram_tier_high_water_bytes; /* the most the tiers held */
    /* streaming a .sympack: bytes_read_disk counts the stored (compressed) bytes read */
    uint64_t bytes_decompressed; /* raw bytes the I/O threads decompressed from the store */
    double decompress_ms;        /* time they spent checking and decompressing (summed) */
} sym_metrics;
void sym_metrics_get(const sym_engine *engine, sym_metrics *out);
void sym_metrics_reset(sym_engine *engine);

#ifdef __cplusplus
}
#endif
#endif
