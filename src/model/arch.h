/* arch.h — the architectures we run (llama family, qwen2): hyperparameters from GGUF metadata,
 * their validation, and the table of tensors a model must hold (internal names and shapes).
 * Shared by the GGUF and safetensors loaders and by the synthetic model writer, so the three
 * agree on names, shapes and order by construction. */
#ifndef SYM_MODEL_ARCH_H
#define SYM_MODEL_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "model/gguf.h"
#include "model/model.h"

/* Upper bounds that keep every product of dimensions far from overflow (int64 and size_t). */
#define SYM_ARCH_MAX_DIM (1 << 20)      /* n_embd, n_ff, n_vocab, n_head * head_dim */
#define SYM_ARCH_MAX_LAYERS 4096
#define SYM_ARCH_MAX_HEAD_DIM 4096
#define SYM_ARCH_MAX_CTX (1 << 24)
#define SYM_ARCH_MAX_EXPERTS 256        /* mixture of experts: experts per layer */

/* true for "llama" and "qwen2". */
bool sym_arch_supported(const char *arch);
/* Sets the per-architecture fields (qkv_bias; rope_neox for GGUF files: 0 llama, 1 qwen2).
 * SYM_ERR_UNSUPPORTED naming arch if it is not one we run. */
sym_status sym_arch_init(sym_hparams *hp, const char *arch);

/* Reads the hyperparameters of a GGUF model (<arch>.* keys; n_vocab from token_embd's rows,
 * checked against tokenizer.ggml.tokens and <arch>.vocab_size when present) and validates them.
 * SYM_ERR_FORMAT for missing/ill-typed keys, SYM_ERR_UNSUPPORTED for what we do not run. */
sym_status sym_arch_hparams_from_gguf(const sym_gguf *g, sym_hparams *hp);

/* Range and consistency checks of every field (positive, bounded, n_head % n_head_kv == 0,
 * even head_dim, finite positive theta/eps/scale, 1 <= n_expert_used <= n_expert for mixtures of
 * experts, both 0 for dense models). SYM_ERR_FORMAT naming the field. */
sym_status sym_arch_check_hparams(const sym_hparams *hp);

/* One tensor a model of these hyperparameters holds. Shapes are (n_rows, n_cols) with n_cols
 * contiguous; vectors (norms, biases) have n_rows 1 and are 1-D in files. */
typedef enum sym_tensor_role {
    SYM_ROLE_TOKEN_EMBD = 0,
    SYM_ROLE_OUTPUT_NORM,
    SYM_ROLE_OUTPUT, /* optional: absent means tied embeddings */
    SYM_ROLE_ATTN_NORM,
    SYM_ROLE_WQ,
    SYM_ROLE_BQ,
    SYM_ROLE_WK,
    SYM_ROLE_BK,
    SYM_ROLE_WV,
    SYM_ROLE_BV,
    SYM_ROLE_WO,
    SYM_ROLE_FFN_NORM,
    SYM_ROLE_W_GATE,
    SYM_ROLE_W_UP,
    SYM_ROLE_W_DOWN,
    /* mixture of experts (n_expert > 0): these replace W_GATE, W_UP, W_DOWN */
    SYM_ROLE_FFN_GATE_INP, /* the router: (n_expert, n_embd) */
    SYM_ROLE_GATE_EXPS,    /* all experts' gates stacked: (n_expert * n_ff, n_embd), 3-D in files */
    SYM_ROLE_UP_EXPS,      /* (n_expert * n_ff, n_embd) */
    SYM_ROLE_DOWN_EXPS,    /* (n_expert * n_embd, n_ff) */
    SYM_ROLE_GATE_EXP,     /* expert_split: one expert's gate, (n_ff, n_embd) */
    SYM_ROLE_UP_EXP,       /* (n_ff, n_embd) */
    SYM_ROLE_DOWN_EXP,     /* (n_embd, n_ff) */
    SYM_ROLE_COUNT
} sym_tensor_role;

typedef struct sym_tensor_spec {
    char name[48];        /* internal (GGUF) name: "blk.3.attn_q.weight" */
    sym_tensor_role role;
    int layer;            /* -1 for the global tensors */
    int expert;           /* SYM_ROLE_*_EXP: the expert; -1 for every other role */
    int64_t n_rows, n_cols;
    int n_stack;          /* SYM_ROLE_*_EXPS: n_expert (the tensor is n_stack matrices of
                             n_rows / n_stack rows, 3-D in files); 0 for every other role */
    bool vector;
    bool optional;
} sym_tensor_spec;

/* Per layer, after the attention tensors and ffn_norm:
 *   dense            ffn_gate, ffn_up, ffn_down
 *   experts stacked  ffn_gate_inp, ffn_gate_exps, ffn_up_exps, ffn_down_exps (llama.cpp's
 *                    Mixtral layout: GGUF ne [n_embd, n_ff, n_expert] for gate/up, [n_ff, n_embd,
 *                    n_expert] for down, so expert e is rows [e * n_ff, (e + 1) * n_ff) of the
 *                    stacked matrix, contiguous in the file)
 *   experts split    ffn_gate_inp, then per expert E: ffn_gate.E, ffn_up.E, ffn_down.E (older
 *                    GGUF files; Hugging Face block_sparse_moe.experts.E.w1/w3/w2)
 * Number of specs: 3 global + per layer 5 attention (8 with Q/K/V biases) + ffn_norm + the
 * above, in the order: token_embd, output_norm, output, then blk.0 …, blk.n_layer-1. */
uint64_t sym_arch_n_specs(const sym_hparams *hp);
void sym_arch_spec_at(const sym_hparams *hp, uint64_t i, sym_tensor_spec *out);
/* The spec of role in layer (-1 for the global roles) and, for the per-expert roles, expert (-1
 * otherwise), whether or not a model of hp holds that tensor. */
void sym_arch_spec_of(const sym_hparams *hp, sym_tensor_role role, int layer, int expert,
                      sym_tensor_spec *out);
/* Finds the spec of an internal name; false if the name is not a weight of this model. */
bool sym_arch_find_spec(const sym_hparams *hp, const char *name, sym_tensor_spec *out);
/* The field of w a spec fills (w->layers must hold n_layer entries). */
sym_weight *sym_arch_slot(sym_model_weights *w, const sym_tensor_spec *s);

/* Internal name <-> Hugging Face name ("blk.3.attn_q.weight" <->
 * "model.layers.3.self_attn.q_proj.weight", "blk.3.ffn_gate.5.weight" <->
 * "model.layers.3.block_sparse_moe.experts.5.w1.weight"). false if the name has no counterpart
 * (stacked expert tensors have none: Hugging Face stores experts apart). */
bool sym_arch_hf_to_internal(const char *hf, char *out, size_t cap);
bool sym_arch_internal_to_hf(const char *internal, char *out, size_t cap);

/* The dimensions a file stores for a spec: 1 for vectors, 2 for matrices, 3 for stacked experts;
 * in GGUF order (columns first) when ggml_order, else Hugging Face order (rows first). */
uint32_t sym_arch_spec_dims(const sym_tensor_spec *s, bool ggml_order, uint64_t dims[3]);

/* ggml type id / safetensors dtype <-> sym_dtype; false for types we do not run. */
bool sym_arch_dtype_from_ggml(uint32_t ggml_type, sym_dtype *out);
uint32_t sym_arch_dtype_to_ggml(sym_dtype t);

#endif
