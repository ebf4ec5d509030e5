/* forward.h — the llama-family forward pass, written once against the backend interface (ops.h).
 * Owns the weights as backend tensors, the KV cache and the activation buffers; prompts are run
 * in chunks of n_batch tokens as matrix-matrix products, then decode one token at a time. */
#ifndef SYM_INFER_FORWARD_H
#define SYM_INFER_FORWARD_H

#include "infer/kv_cache.h"
#include "infer/ops.h"
#include "model/model.h"
#include "tier/pack_manager.h"

typedef struct sym_forward_options {
    int n_ctx;         /* positions the KV cache holds (<= the model's n_ctx_train is advised) */
    int n_batch;       /* most tokens per forward chunk (prefill), >= 1 */
    sym_dtype kv_type; /* SYM_DT_F16 or SYM_DT_F32 */
    float rope_scale;  /* extra linear RoPE position scale on top of the model's (0 or 1: none) */
    int streamed;      /* 1: only vectors (norms, biases) are loaded; the matrices stream through a
                        * pack manager (sym_forward_set_packs) */
    int no_fold_norms; /* 1: keep the RMSNorm weights apart from the products even where the
                        * backend offers scale_cols (resident f32/f16 matrices get them folded) */
    /* called after each weight is loaded with the bytes so far and progress_total (NULL: none) */
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *progress_user;
    uint64_t progress_total;
} sym_forward_options;

typedef struct sym_forward_stream_stats {
    uint64_t n_gets; /* packs pinned */
    double get_ms;   /* host time spent pinning them (waiting for uploads / reads) */
    double disk_wait_ms; /* ... of which for packs not yet in RAM (the disk's share) */
    uint64_t cpu_bytes; /* weight bytes the CPU computed from RAM (the split) */
    double cpu_ms;      /* host time computing them */
    double readback_ms; /* host time reading stage inputs back (waiting for the GPU) */
    uint64_t n_readbacks; /* ... how many */
} sym_forward_stream_stats;

typedef struct sym_forward_pass sym_forward_pass;

/* Loads every weight of m into b (CPU backends borrow the mapping; devices copy) and allocates
 * the cache and activations. b and m must outlive the result. */
sym_status sym_forward_create(sym_backend *b, const sym_model *m, const sym_forward_options *opts,
                              sym_forward_pass **out);
void sym_forward_destroy(sym_forward_pass *f);

/* Runs ids at positions n_past .. n_past + n_tok - 1, appending to the KV cache. If logits is
 * not NULL, writes the n_vocab logits of the last position there. SYM_ERR_ARG for an id outside
 * the vocabulary; SYM_ERR_RANGE if the context would overflow (nothing is run then). */
sym_status sym_forward_eval(sym_forward_pass *f, const int32_t *ids, int n_tok, float *logits);

/* As sym_forward_eval, but instead of the logits sets *id to the index of the last position's
 * largest logit (the first of equals; NaN never wins; 0 if all are NaN): what greedy sampling
 * takes. Where the backend has an argmax op and the pass is resident, the argmax runs there and
 * 4 bytes are read back instead of n_vocab floats. */
sym_status sym_forward_eval_argmax(sym_forward_pass *f, const int32_t *ids, int n_tok, int32_t *id);
/* 1 if sym_forward_eval_topk finds the top candidates where the logits are (a backend with the
 * topk op, a resident pass), so that it is worth calling instead of reading the logits. */
int sym_forward_has_topk(const sym_forward_pass *f);
/* As sym_forward_eval, but instead of the logits writes the last position's k largest
 * (1 <= k <= SYM_TOPK_MAX), largest first, equal values by the lower index, NaN never: vals[i]
 * is logit ids[i], *n of them (fewer than k only where fewer are not NaN). Only where
 * sym_forward_has_topk (else SYM_ERR_UNSUPPORTED, before anything runs). */
sym_status sym_forward_eval_topk(sym_forward_pass *f, const int32_t *ids, int n_tok, int k,
                                 float *vals, int32_t *top_ids, int *n);
/* 1 if sym_forward_eval_topk finds the top candidates where the logits are (a backend with the
 * topk op, a resident pass), so that it is worth calling instead of reading the logits. */
int sym_forward_has_topk(const sym_forward_pass *f);
/* As sym_forward_eval, but instead of the logits writes the last position's k largest
 * (1 <= k <= SYM_TOPK_MAX), largest first, equal values by the lower index, NaN never: vals[i]
 * is logit ids[i], *n of them (fewer than k only where fewer are not NaN). Only where
 * sym_forward_has_topk (else SYM_ERR_UNSUPPORTED, before anything runs). */
sym_status sym_forward_eval_topk(sym_forward_pass *f, const int32_t *ids, int n_tok, int k,
                                 float *vals, int32_t *top_ids, int *n);
/* Reads the logits the last evaluation computed (n_vocab floats) into out. */
sym_status sym_forward_read_logits(sym_forward_pass *f, float *out);

/* Streaming: the matrices come from pm, which holds the packs of plan (planned from the same
 * model), pinned in tier (DEVICE: device memory of the forward pass's backend; RAM: host memory,
 * for host backends) one pack at a time in schedule order, with lookahead schedule entries
 * prefetched ahead. pm and plan are borrowed and must outlive f. */
sym_status sym_forward_set_packs(sym_forward_pass *f, sym_pack_manager *pm,
                                 const sym_pack_plan *plan, sym_tier tier, int lookahead);
void sym_forward_stream_stats_get(const sym_forward_pass *f, sym_forward_stream_stats *out);

/* The CPU/GPU split of decode: packs with cpu_pack[id] set (n_packs entries, copied) are
 * computed on cpu (a host backend, borrowed) from the RAM tier in single-token chunks, the rest
 * uploaded and computed on the forward pass's backend. Needs streaming (set_packs first); dense
 * models without Q/K/V biases (else SYM_ERR_UNSUPPORTED). */
sym_status sym_forward_set_split(sym_forward_pass *f, sym_backend *cpu, const bool *cpu_pack);

/* Mixtures of experts: called after each layer's routing with the tokens' choices (valid during
 * the call). For traces and the oracle. */
typedef struct sym_moe_route sym_moe_route;
typedef void (*sym_forward_route_fn)(void *user, int layer, const sym_moe_route *route);
void sym_forward_set_route_hook(sym_forward_pass *f, sym_forward_route_fn fn, void *user);
/* Called after each chunk of n_tok tokens has run (traces). */
void sym_forward_set_chunk_hook(sym_forward_pass *f, void (*fn)(void *user, int n_tok),
                                void *user);

/* Expert prediction (streamed mixtures of experts): before layer l runs, layer l's router is
 * applied to the residual stream layer l - 1 left, and the top n_expert_used experts of each
 * token are prefetched. Off unless asked ([memory] predict_experts). */
void sym_forward_set_predict(sym_forward_pass *f, bool on);
/* Per layer since create: experts predicted and then used (right), predicted (guessed), used
 * (distinct per chunk). precision = right / guessed, recall = right / used. */
void sym_forward_prediction_stats(const sym_forward_pass *f, int layer, uint64_t *right,
                                  uint64_t *guessed, uint64_t *used);

void sym_forward_reset(sym_forward_pass *f);
int sym_forward_n_past(const sym_forward_pass *f);
int sym_forward_n_ctx(const sym_forward_pass *f);
int sym_forward_n_batch(const sym_forward_pass *f);
/* Bytes of backend memory the forward pass allocates besides the weights (KV + activations). */
uint64_t sym_forward_scratch_bytes(const sym_hparams *hp, const sym_forward_options *opts);
/* The widest input or output of a layer's products: max(n_embd, n_ff, n_head * head_dim). */
int64_t sym_forward_widest(const sym_hparams *hp);
/* Bytes of the vectors (norms, biases as f32) a streamed forward pass keeps resident. */
uint64_t sym_forward_vector_bytes(const sym_model *m);

#endif
