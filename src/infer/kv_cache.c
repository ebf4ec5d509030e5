#include "infer/kv_cache.h"

#include <string.h>

#include "base/alloc.h"

uint64_t sym_kv_cache_bytes(int n_layer, int n_ctx, int n_kv_dim, sym_dtype type) {
    return 2ull * (uint64_t)n_layer * (uint64_t)n_ctx * (uint64_t)n_kv_dim * sym_dtype_size(type);
}

sym_status sym_kv_cache_create(sym_kv_cache *kv, sym_backend *b, int n_layer, int n_ctx,
                               int n_kv_dim, sym_dtype type) {
    memset(kv, 0, sizeof *kv);
    SYM_CHECK(n_layer > 0 && n_ctx > 0 && n_kv_dim > 0, SYM_ERR_ARG, "kv cache: bad shape");
    kv->b = b;
    kv->n_layer = n_layer;
    kv->n_ctx = n_ctx;
    kv->n_kv_dim = n_kv_dim;
    kv->type = type;
    kv->k = sym_calloc((size_t)n_layer, sizeof *kv->k);
    kv->v = sym_calloc((size_t)n_layer, sizeof *kv->v);
    sym_status st = SYM_OK;
    if (!kv->k || !kv->v) SYM_FAIL_GOTO(SYM_ERR_OOM, "kv cache: out of memory");
    for (int l = 0; l < n_layer; l++) {
        SYM_TRY_GOTO(b->ops->alloc(b, &kv->k[l], type, n_kv_dim, n_ctx));
        SYM_TRY_GOTO(b->ops->alloc(b, &kv->v[l], type, n_kv_dim, n_ctx));
    }
    return SYM_OK;
fail:
    sym_kv_cache_destroy(kv);
    return st;
}

void sym_kv_cache_destroy(sym_kv_cache *kv) {
    for (int l = 0; l < kv->n_layer; l++) {
        if (kv->k && kv->k[l].n_rows) kv->b->ops->release(kv->b, &kv->k[l]);
        if (kv->v && kv->v[l].n_rows) kv->b->ops->release(kv->b, &kv->v[l]);
    }
    sym_free(kv->k);
    sym_free(kv->v);
    memset(kv, 0, sizeof *kv);
}
