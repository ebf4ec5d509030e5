/* hf.h — Hugging Face checkpoint metadata: config.json (hyperparameters) and
 * model.safetensors.index.json (which shard holds which tensor). Both are strict JSON
 * (model/json.h); every field is type- and range-checked.
 *
 * config.json keys read: model_type (llama, mistral, mixtral -> "llama"; qwen2), hidden_size,
 * num_hidden_layers, num_attention_heads, num_key_value_heads (default: heads), intermediate_size,
 * vocab_size, max_position_embeddings, rope_theta (10000), rms_norm_eps (1e-6),
 * tie_word_embeddings (false), head_dim (hidden_size / heads), rope_scaling ({type|rope_type:
 * linear, factor}; "default" = none), bos_token_id / eos_token_id (int or list: the first);
 * mixtral: num_local_experts, num_experts_per_tok (experts stored apart: expert_split).
 * Rejected as SYM_ERR_UNSUPPORTED: other model types, hidden_act other than silu,
 * attention_bias / mlp_bias true, other RoPE scaling types, qwen2 use_sliding_window true.
 */
#ifndef SYM_MODEL_HF_H
#define SYM_MODEL_HF_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

typedef struct sym_hf_config {
    sym_hparams hp;  /* rope_neox = 1 (HF layout); n_vocab = vocab_size */
    int64_t bos_id;  /* -1 if absent */
    int64_t eos_id;
} sym_hf_config;

/* Parses config.json text. SYM_ERR_FORMAT / SYM_ERR_UNSUPPORTED naming the key. */
sym_status sym_hf_config_parse(const char *text, size_t len, sym_hf_config *out);
sym_status sym_hf_config_load(const char *path, sym_hf_config *out);

typedef struct sym_hf_index sym_hf_index;

/* Parses model.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor: file}}. Shard
 * file names must be plain names in the same directory (no '/', not "." or ".."). Caller owns
 * *out (sym_hf_index_destroy). */
sym_status sym_hf_index_parse(const char *text, size_t len, sym_hf_index **out);
sym_status sym_hf_index_load(const char *path, sym_hf_index **out);
void sym_hf_index_destroy(sym_hf_index *ix);

/* Distinct shard files, sorted by name. */
int sym_hf_index_n_files(const sym_hf_index *ix);
const char *sym_hf_index_file(const sym_hf_index *ix, int i);
uint64_t sym_hf_index_n_entries(const sym_hf_index *ix);
/* The file index the map gives a tensor; -1 if the tensor is not in the map. */
int sym_hf_index_lookup(const sym_hf_index *ix, const char *tensor);

#endif
