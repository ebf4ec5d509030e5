/* engine.h — the engine's internal entry point for tools that already merged a configuration
 * (the CLI: defaults < INI < environment < flags). The public API (symbiote.h) builds the same
 * parameters from sym_engine_options. */
#ifndef SYM_INFER_ENGINE_H
#define SYM_INFER_ENGINE_H

#include "base/config.h"
#include "infer/ops.h"
#include "symbiote.h"
#include "text/chat.h"
#include "tier/pack_io.h"
#include "tier/tier.h"

typedef struct sym_engine_params {
    sym_config cfg;            /* model_path, budgets, enable_gpu, threads, logging … */
    bool fp32;                 /* f32 KV cache (and f32 math where a backend offers a choice) */
    bool force_integrated_gpu;
    const char *device;        /* Vulkan device index or name substring; NULL: automatic */
    /* "auto" (NULL): a Vulkan GPU if there is one, else the CPU backend — a software Vulkan
     * device (llvmpipe) counts as none, being far slower than the native CPU backend;
     * "vulkan": Vulkan on any device, software included; "cpu"; "reference" (plain loops). */
    const char *backend;
    int n_ctx;                 /* 0: the model's training context */
    int n_batch;               /* 0: default prefill chunk */
    /* Test seam: the pread the streaming engine's disk reads go through (NULL: pread(2)). */
    sym_pread_fn pread_fn;
    void *pread_user;
    /* Where the oracle's weights are kept per model and device (streamed mixtures of experts
     * under the oracle policy): NULL, sym_cache_dir(); "": neither loaded nor saved. */
    const char *oracle_cache_dir;
    /* Test seams: stream the weights through the pack manager even when they fit the budget, so
     * that small real models (aidreams260K) exercise the streaming path; and cap the RAM tier at
     * this many bytes (0: what --ram-gb leaves), so that a test's tier does not depend on how
     * much the process grew while opening (a sanitizer's allocator grows it by megabytes). The
     * budgets still hold. */
    bool force_stream;
    uint64_t ram_tier_cap;
    /* Loading the weights at open (a resident model's copy to its backend): called with the bytes
     * loaded so far and the model's weight bytes. NULL: none. */
    void (*load_progress)(void *user, uint64_t done, uint64_t total);
    void *load_progress_user;
} sym_engine_params;

void sym_engine_params_init(sym_engine_params *p);
sym_status sym_engine_open_params(const sym_engine_params *p, sym_engine **out);

/* The chat template family of the model (from GGUF tokenizer.chat_template or the
 * tokenizer_config.json beside a safetensors model); SYM_CHAT_NONE if it has none we know. */
sym_chat_template sym_engine_chat_template(const sym_engine *e);

/* The ids the engine holds (*n of them; the last may be a sampled, not yet evaluated one).
 * Valid until the next call on e. */
const int32_t *sym_engine_history(const sym_engine *e, int *n);
/* The backend the engine runs on (owned by the engine; valid until sym_engine_close), for tools
 * that ask a backend for more than ops.h offers (profiles, device probes). */
sym_backend *sym_engine_backend(sym_engine *e);
/* Expert prediction per layer (see sym_forward_prediction_stats). */
void sym_engine_prediction_stats(const sym_engine *e, int layer, uint64_t *right,
                                 uint64_t *guessed, uint64_t *used);
/* Pack-access traces (infer/trace_rec.h): records every token evaluated from now on;
 * sym_engine_trace_write writes them as a .symtrace (the recording's first error, or the
 * file's). */
sym_status sym_engine_trace_start(sym_engine *e);
sym_status sym_engine_trace_write(sym_engine *e, const char *path);
/* Streaming: the pack plan the engine streams with (a .sympack's own) and the pack manager's
 * counters of a tier (DEVICE or RAM); NULL and zeros when the model is resident. */
const sym_pack_plan *sym_engine_pack_plan(const sym_engine *e);
void sym_engine_tier_stats(const sym_engine *e, sym_tier tier, sym_tier_stats *out);
/* The placement line ("placement: resident ..." / "placement: streaming ..."). */
void sym_engine_placement(const sym_engine *e, char *buf, size_t cap);

/* Name of the backend in use ("cpu", "vulkan") and a one-line device description. */
const char *sym_engine_backend_name(const sym_engine *e);
const char *sym_engine_device_name(const sym_engine *e);

#endif
