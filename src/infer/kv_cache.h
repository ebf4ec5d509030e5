/* kv_cache.h — per-layer key and value caches in backend memory: (n_ctx, n_head_kv * head_dim)
 * each, f16 by default (f32 with --fp32). n_past counts the positions already filled. */
#ifndef SYM_INFER_KV_CACHE_H
#define SYM_INFER_KV_CACHE_H

#include "infer/ops.h"

typedef struct sym_kv_cache {
    sym_backend *b; /* borrowed */
    int n_layer, n_ctx, n_kv_dim;
    sym_dtype type;
    sym_tensor *k, *v; /* n_layer each */
    int n_past;
} sym_kv_cache;

/* Allocates the caches in b. SYM_ERR_OOM / the backend's allocation error on failure; a failed
 * create leaves nothing allocated. */
sym_status sym_kv_cache_create(sym_kv_cache *kv, sym_backend *b, int n_layer, int n_ctx,
                               int n_kv_dim, sym_dtype type);
void sym_kv_cache_destroy(sym_kv_cache *kv);
/* Bytes the caches occupy (for budgets and the start-up plan). */
uint64_t sym_kv_cache_bytes(int n_layer, int n_ctx, int n_kv_dim, sym_dtype type);

#endif
