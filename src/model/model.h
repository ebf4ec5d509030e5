/* model.h — an opened model: architecture, hyperparameters and a table of weight views, from a
 * GGUF file, a safetensors file / directory (sharded, with config.json) or a pack store
 * (.sympack, written by `symbiote pack`). GGUF and safetensors weights point into the read-only
 * file mappings (never copied whole); a .sympack's packs are decompressed into one anonymous
 * host mapping (sym_model_host_bytes): all of them at open, or with sym_model_open_lazy only what
 * sym_model_load_weights asks for (the streaming engine reads the rest from the store on demand).
 * Names are the internal (GGUF) names.
 *
 * Supported: the llama family — llama 1/2/3, TinyLlama, Mistral (GGUF arch "llama"), Qwen2
 * (Q/K/V biases; GGUF arch "qwen2"), Mixtral-style mixtures of experts (GGUF arch "llama" with
 * llama.expert_count; HF model_type "mixtral") — with f32/f16/bf16 weights. Anything else is
 * rejected with SYM_ERR_UNSUPPORTED naming the architecture or the tensor type.
 *
 * RoPE layout: GGUF llama files rotate interleaved pairs (2i, 2i+1); HF checkpoints (and GGUF
 * qwen2) rotate halves (i, i + head_dim/2). Rather than permuting Q/K rows at load (a copy of
 * every Q/K matrix), the model records the layout in hparams.rope_neox and the rope op applies
 * the matching rotation: the two are the same function of the same weights.
 */
#ifndef SYM_MODEL_MODEL_H
#define SYM_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "infer/ops.h"
#include "model/gguf.h"

typedef struct sym_hparams {
    char arch[32];       /* "llama", "qwen2" */
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;       /* < n_head: grouped-query attention */
    int head_dim;        /* usually n_embd / n_head */
    int n_ff;
    int n_vocab;
    int n_ctx_train;
    float rope_theta;    /* base frequency (10000, 500000 for llama 3, …) */
    float rope_freq_scale; /* 1 / linear scaling factor (1: none) */
    int rope_neox;       /* 0: interleaved pairs (GGUF llama); 1: halves (HF, qwen2) */
    float rms_eps;
    bool tied_embeddings; /* no output.weight: the output projection is token_embd */
    bool qkv_bias;        /* Q/K/V projections have biases (qwen2) */
    int n_expert;         /* mixture of experts: experts per layer (0: a dense MLP) */
    int n_expert_used;    /* experts each token is routed to (top-k); 0 when dense */
    bool expert_split;    /* experts stored as separate 2-D tensors (older GGUF, HF) rather than
                             one 3-D tensor per projection (GGUF's ffn_*_exps) */
} sym_hparams;

/* A read-only view of one weight. data == NULL means "absent" (optional tensors). */
typedef struct sym_weight {
    const char *name;    /* internal name, e.g. "blk.3.attn_q.weight" (owned by the model) */
    sym_dtype type;
    int64_t n_cols;      /* contiguous dimension (GGUF ne[0], HF shape[-1]) */
    int64_t n_rows;
    const void *data;    /* into a file mapping */
    uint64_t n_bytes;
    uint64_t file_offset; /* byte offset in its file (for the pack planner / O_DIRECT reads) */
    int file_idx;         /* which file (shards) */
} sym_weight;

typedef struct sym_layer_weights {
    sym_weight attn_norm;       /* (1, n_embd) */
    sym_weight wq;              /* (n_head * head_dim, n_embd) */
    sym_weight wk, wv;          /* (n_head_kv * head_dim, n_embd) */
    sym_weight bq, bk, bv;      /* (1, rows of wq/wk/wv) when qkv_bias, else absent */
    sym_weight wo;              /* (n_embd, n_head * head_dim) */
    sym_weight ffn_norm;        /* (1, n_embd) */
    sym_weight w_gate, w_up;    /* (n_ff, n_embd); absent with experts */
    sym_weight w_down;          /* (n_embd, n_ff); absent with experts */
    /* mixture of experts (n_expert > 0), absent otherwise */
    sym_weight ffn_gate_inp;    /* (n_expert, n_embd): the router */
    sym_weight ffn_gate_exps, ffn_up_exps; /* (n_expert * n_ff, n_embd): the 3-D tensors of the
                                 * stacked layout as matrices; absent with expert_split */
    sym_weight ffn_down_exps;   /* (n_expert * n_embd, n_ff) */
    sym_weight *exp_gate, *exp_up; /* n_expert entries: expert e's (n_ff, n_embd) matrices (with
                                 * stacked experts: views of rows [e * n_ff, (e + 1) * n_ff) of
                                 * the stacked tensor, named after it); NULL when dense */
    sym_weight *exp_down;       /* n_expert entries: (n_embd, n_ff) */
} sym_layer_weights;

typedef struct sym_model_weights {
    sym_weight token_embd;      /* (n_vocab, n_embd) */
    sym_weight output_norm;     /* (1, n_embd) */
    sym_weight output;          /* (n_vocab, n_embd); == token_embd when tied */
    sym_layer_weights *layers;  /* n_layer entries */
} sym_model_weights;

typedef enum sym_model_format {
    SYM_MODEL_GGUF = 0,
    SYM_MODEL_SAFETENSORS,
    SYM_MODEL_SYMPACK,
} sym_model_format;

/* "gguf", "safetensors", "sympack". */
const char *sym_model_format_name(sym_model_format f);

typedef struct sym_model sym_model;
typedef struct sym_store sym_store; /* pack/store.h */

/* Opens path: a .gguf file, a .sympack pack store (recognized by its magic), a .safetensors
 * file (config.json beside it), or a directory holding model.safetensors or
 * model.safetensors.index.json + shards, and config.json. Validates every tensor's presence,
 * dtype and shape against the hyperparameters. SYM_ERR_IO / SYM_ERR_FORMAT / SYM_ERR_UNSUPPORTED
 * with a detail naming the file, key or tensor; a .sympack also SYM_ERR_CHECKSUM naming a damaged
 * pack, and SYM_ERR_OOM saying how much RAM its weights need. Caller owns *out. */
sym_status sym_model_open(const char *path, sym_model **out);
void sym_model_close(sym_model *m);

/* What of a model's weights are in memory (a .sympack opened lazily fills them on request). */
typedef enum sym_model_load {
    SYM_MODEL_LOAD_NONE = 0, /* views only: their data must not be read */
    SYM_MODEL_LOAD_VECTORS,  /* the norms, biases and MoE routers (ffn_gate_inp): what a streamed
                                forward pass keeps resident */
    SYM_MODEL_LOAD_ALL,
} sym_model_load;

/* As sym_model_open, except that a .sympack's packs are not read: every weight view is set (its
 * data points into address space reserved for it, without access) but holds nothing until
 * sym_model_load_weights. GGUF and safetensors models are the same as from sym_model_open
 * (their weights are file mappings, read as they are touched). For the streaming engine, which
 * decides only after opening whether the weights stay resident or stream from the store. */
sym_status sym_model_open_lazy(const char *path, sym_model **out);
/* Fills the weights `what` names (no-op when they are there, and for other formats): reads,
 * checks and decompresses the packs that hold them. Errors as sym_model_open for a .sympack
 * (SYM_ERR_CHECKSUM naming a damaged pack, SYM_ERR_OOM). */
sym_status sym_model_load_weights(sym_model *m, sym_model_load what);
/* SYM_MODEL_LOAD_ALL for GGUF and safetensors models and a .sympack opened with sym_model_open. */
sym_model_load sym_model_loaded(const sym_model *m);

sym_model_format sym_model_format_of(const sym_model *m);
const sym_hparams *sym_model_hparams(const sym_model *m);
const sym_model_weights *sym_model_weights_of(const sym_model *m);

/* Every weight of the model in file order (for info, the pack planner, round-trip tests): each
 * tensor once (stacked expert tensors whole, not their per-expert views). For a
 * .sympack, file_idx is 0 and file_offset the weight's offset in the decompressed host image
 * (the weights in their source order, each at a 256-byte aligned offset). */
uint64_t sym_model_n_weights(const sym_model *m);
const sym_weight *sym_model_weight_at(const sym_model *m, uint64_t i);
const sym_weight *sym_model_find_weight(const sym_model *m, const char *name);

/* Totals for `info`: parameters and bytes of all weights. */
uint64_t sym_model_n_params(const sym_model *m);
uint64_t sym_model_weight_bytes(const sym_model *m);

/* Tokenizer source: the GGUF file (its tokenizer.ggml.* metadata; for a .sympack made from GGUF,
 * the copy of that metadata) or, for safetensors, the path of tokenizer.json (NULL if none). */
const sym_gguf *sym_model_gguf(const sym_model *m);
const char *sym_model_tokenizer_json(const sym_model *m);
/* A .sympack made from safetensors keeps tokenizer.json and tokenizer_config.json as text:
 * true and the texts (ptr NULL when absent) for such a model, false otherwise. */
bool sym_model_tokenizer_text(const sym_model *m, sym_str *json, sym_str *config);

/* .sympack: the open pack store (valid until sym_model_close) and the bytes of host memory the
 * decompressed weights take (only those loaded, for a lazy open); NULL and 0 for other
 * formats. */
const sym_store *sym_model_store(const sym_model *m);
uint64_t sym_model_host_bytes(const sym_model *m);

/* The file paths the model's weights live in (file_idx indexes these). */
int sym_model_n_files(const sym_model *m);
const char *sym_model_file_path(const sym_model *m, int file_idx);

/* A summary of the tokenizer for `info` (the tokenizer itself lives in text/). */
typedef struct sym_tokenizer_summary {
    char model[32];   /* GGUF tokenizer.ggml.model ("llama", "gpt2") or tokenizer.json's
                         model.type ("BPE", …); "" if the model has no tokenizer */
    int64_t n_tokens; /* -1 if unknown */
    int64_t bos_id;   /* -1 if not given */
    int64_t eos_id;
} sym_tokenizer_summary;

/* Fills *out. For safetensors it parses tokenizer.json (SYM_ERR_IO / SYM_ERR_FORMAT if that file
 * is unreadable or malformed) and takes BOS/EOS from config.json. */
sym_status sym_model_tokenizer_summary(const sym_model *m, sym_tokenizer_summary *out);

#endif
