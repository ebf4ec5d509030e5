/* writer.h — synthetic llama-family models with random weights, for tests and for measuring speed
 * and memory at real sizes (1B–8B) without downloading anything.
 *
 * A test makes a tiny model like this:
 *     sym_make_model_options o;
 *     sym_make_model_options_init(&o);          // the "tiny" preset, f16, seed 1, GGUF
 *     o.dtype = SYM_DT_F32;
 *     o.seed = 42;
 *     SYM_TRY(sym_make_model(&o, "/tmp/tiny.gguf"));   // then sym_model_open / sym_engine_open
 *
 * Weights are a pure function of (seed, internal tensor name, element index), so a GGUF file and a
 * safetensors directory made with the same options hold the same model: safetensors stores Q/K
 * rows in Hugging Face's rotate_half layout (loaded with rope_neox = 1), GGUF llama in
 * llama.cpp's interleaved layout (rope_neox = 0). Values are near-normal with std 1/sqrt(n_in)
 * (norm weights near 1), so activations stay finite through every layer. Mixture-of-experts
 * routers are built to route skewed and input-dependent (writer.c and docs/FORMATS.md say how);
 * an expert's matrices are the same numbers in the stacked, split and Hugging Face layouts.
 *
 * Output is streamed tensor by tensor through a bounded buffer (a 16 GB model needs a few MB of
 * RAM), written under a temporary name beside the target and renamed into place only when
 * complete; the input of vocab_from is never overwritten.
 */
#ifndef SYM_MODEL_WRITER_H
#define SYM_MODEL_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

typedef struct sym_make_model_options {
    char preset[32];     /* the preset last applied (recorded as general.name) */
    char arch[16];       /* "llama" or "qwen2" (Q/K/V biases) */
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    int head_dim;        /* 0: n_embd / n_head */
    float rope_theta;
    float rms_eps;
    bool tied_embeddings; /* no output.weight / lm_head.weight */
    int n_expert;         /* mixture of experts (llama only): experts per layer, 0: dense */
    int n_expert_used;    /* experts per token (top-k) */
    bool split_experts;   /* GGUF: per-expert tensors blk.N.ffn_gate.E.weight (the older
                             layout) instead of stacked ffn_*_exps; safetensors always splits */
    sym_dtype dtype;
    uint64_t seed;
    sym_model_format format; /* SYM_MODEL_GGUF: one file; SYM_MODEL_SAFETENSORS: a directory */
    uint64_t shard_bytes;    /* safetensors: start a new shard before exceeding this (0: one file) */
    /* GGUF whose tokenizer.ggml.* metadata is copied (n_vocab becomes its token count); NULL:
     * a synthetic SentencePiece-style vocabulary of n_vocab tokens (at least 260). */
    const char *vocab_from;
    /* Called after each chunk written (from the calling thread); may be NULL. */
    void (*progress)(void *user, uint64_t done_bytes, uint64_t total_bytes);
    void *progress_user;
} sym_make_model_options;

/* The "tiny" preset, dtype f16, seed 1, GGUF, no sharding, no vocab_from, no progress. */
void sym_make_model_options_init(sym_make_model_options *o);

/* Applies a preset's architecture and dimensions (leaves dtype, seed, format, … alone).
 * SYM_ERR_ARG listing the presets if name is unknown. */
sym_status sym_make_model_preset(sym_make_model_options *o, const char *name);
/* Preset names and one-line descriptions, i = 0, 1, …; NULL past the end. */
const char *sym_make_model_preset_name(int i);
const char *sym_make_model_preset_summary(int i);

/* The hyperparameters a model made with o has (n_vocab from vocab_from if set), validated:
 * SYM_ERR_ARG naming the bad option. */
sym_status sym_make_model_hparams(const sym_make_model_options *o, sym_hparams *out);

/* Writes the model: a .gguf file at out_path, or (safetensors) a new directory out_path holding
 * config.json, model.safetensors (or shards + model.safetensors.index.json) and tokenizer.json.
 * An existing GGUF file is replaced; an existing non-empty directory is refused (SYM_ERR_ARG).
 * SYM_ERR_IO names the file and the system error (ENOSPC: "No space left on device"); nothing
 * is left behind on failure. */
sym_status sym_make_model(const sym_make_model_options *o, const char *out_path);

/* Rows [row0, row0 + n_rows) of internal tensor `name` (e.g. "blk.0.attn_q.weight") exactly as
 * the writer stores them in a GGUF file made with this seed and hyperparameters, converted to
 * type. dst holds n_rows * n_cols elements. SYM_ERR_ARG if name is not a tensor of hp or the
 * rows are out of range. */
sym_status sym_make_model_rows(const sym_hparams *hp, uint64_t seed, const char *name,
                               int64_t row0, int64_t n_rows, sym_dtype type, void *dst);

/* The GGUF row a safetensors (HF) row of a llama Q or K projection holds (heads of head_dim
 * rows): within a head, HF row s * head_dim / 2 + j is GGUF row 2j + s (the inverse of
 * llama.cpp's convert permute). */
int64_t sym_make_model_gguf_row(int64_t hf_row, int head_dim);

#endif
