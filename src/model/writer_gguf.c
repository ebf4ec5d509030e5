/* writer_gguf.c — a synthetic model as one GGUF v3 file (layout in gguf.h): the header (metadata
 * and tensor table) is built in memory, then each tensor is generated and streamed, every one at
 * a 32-byte aligned offset. Tensor order and names are llama.cpp's. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "model/writer_internal.h"

#define ALIGNMENT 32

typedef struct gbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
    uint64_t n_kv;
} gbuf;

static void put(gbuf *b, const void *d, size_t n) {
    if (b->oom) return;
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n) cap *= 2;
        uint8_t *p = sym_realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_u32(gbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(gbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(gbuf *b, const char *s, size_t n) {
    put_u64(b, n);
    put(b, s, n);
}

static void kv_key(gbuf *b, const char *key, sym_gguf_type t) {
    put_str(b, key, strlen(key));
    put_u32(b, (uint32_t)t);
    b->n_kv++;
}
static void kv_str(gbuf *b, const char *key, const char *v) {
    kv_key(b, key, SYM_GGUF_STRING);
    put_str(b, v, strlen(v));
}
static void kv_u32(gbuf *b, const char *key, uint32_t v) {
    kv_key(b, key, SYM_GGUF_U32);
    put_u32(b, v);
}
static void kv_u64(gbuf *b, const char *key, uint64_t v) {
    kv_key(b, key, SYM_GGUF_U64);
    put_u64(b, v);
}
static void kv_f32(gbuf *b, const char *key, float v) {
    kv_key(b, key, SYM_GGUF_F32);
    put(b, &v, 4);
}
static void kv_bool(gbuf *b, const char *key, bool v) {
    uint8_t x = v;
    kv_key(b, key, SYM_GGUF_BOOL);
    put(b, &x, 1);
}
static void kv_arr(gbuf *b, const char *key, sym_gguf_type elem, uint64_t n) {
    kv_key(b, key, SYM_GGUF_ARRAY);
    put_u32(b, (uint32_t)elem);
    put_u64(b, n);
}

static void arch_kv(gbuf *b, const sym_hparams *hp, const char *suffix, uint32_t v) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", hp->arch, suffix);
    kv_u32(b, key, v);
}
static void arch_kv_f32(gbuf *b, const sym_hparams *hp, const char *suffix, float v) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", hp->arch, suffix);
    kv_f32(b, key, v);
}

static void tokenizer_kvs(gbuf *b, const sym_wvocab *v) {
    if (v->src) { /* vocab_from: every tokenizer.* entry, byte for byte */
        for (uint64_t i = 0; i < sym_gguf_n_kv(v->src); i++) {
            const sym_gguf_kv *kv = sym_gguf_kv_at(v->src, i);
            if (kv->key.len >= 10 && !memcmp(kv->key.ptr, "tokenizer.", 10)) {
                put(b, kv->raw, (size_t)kv->raw_len);
                b->n_kv++;
            }
        }
        return;
    }
    kv_str(b, "tokenizer.ggml.model", v->model);
    kv_arr(b, "tokenizer.ggml.tokens", SYM_GGUF_STRING, v->n);
    for (uint32_t i = 0; i < v->n; i++) put_str(b, v->tokens[i].ptr, (size_t)v->tokens[i].len);
    kv_arr(b, "tokenizer.ggml.scores", SYM_GGUF_F32, v->n);
    put(b, v->scores, (size_t)v->n * 4);
    kv_arr(b, "tokenizer.ggml.token_type", SYM_GGUF_I32, v->n);
    put(b, v->types, (size_t)v->n * 4);
    kv_u32(b, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
    kv_u32(b, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
    kv_u32(b, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
    kv_bool(b, "tokenizer.ggml.add_bos_token", true);
    kv_bool(b, "tokenizer.ggml.add_eos_token", false);
}

static void metadata(gbuf *b, const sym_writer *w) {
    const sym_hparams *hp = &w->hp;
    char name[96];
    snprintf(name, sizeof name, "symbiote synthetic %s", w->o->preset[0] ? w->o->preset : "model");
    kv_str(b, "general.architecture", hp->arch);
    kv_str(b, "general.name", name);
    kv_u32(b, "general.alignment", ALIGNMENT);
    /* llama.cpp's file types: ALL_F32 0, MOSTLY_F16 1, MOSTLY_BF16 32 */
    kv_u32(b, "general.file_type",
           w->o->dtype == SYM_DT_F32 ? 0 : w->o->dtype == SYM_DT_F16 ? 1 : 32);
    kv_u64(b, "symbiote.make_model.seed", w->o->seed);
    arch_kv(b, hp, "context_length", (uint32_t)hp->n_ctx_train);
    arch_kv(b, hp, "embedding_length", (uint32_t)hp->n_embd);
    arch_kv(b, hp, "block_count", (uint32_t)hp->n_layer);
    arch_kv(b, hp, "feed_forward_length", (uint32_t)hp->n_ff);
    arch_kv(b, hp, "attention.head_count", (uint32_t)hp->n_head);
    arch_kv(b, hp, "attention.head_count_kv", (uint32_t)hp->n_head_kv);
    arch_kv(b, hp, "rope.dimension_count", (uint32_t)hp->head_dim);
    arch_kv(b, hp, "vocab_size", (uint32_t)hp->n_vocab);
    if (hp->head_dim * hp->n_head != hp->n_embd) {
        arch_kv(b, hp, "attention.key_length", (uint32_t)hp->head_dim);
        arch_kv(b, hp, "attention.value_length", (uint32_t)hp->head_dim);
    }
    if (hp->n_expert > 0) {
        arch_kv(b, hp, "expert_count", (uint32_t)hp->n_expert);
        arch_kv(b, hp, "expert_used_count", (uint32_t)hp->n_expert_used);
    }
    arch_kv_f32(b, hp, "rope.freq_base", hp->rope_theta);
    arch_kv_f32(b, hp, "attention.layer_norm_rms_epsilon", hp->rms_eps);
    tokenizer_kvs(b, &w->vocab);
}

sym_status sym_writer_gguf(sym_writer *w, const char *path) {
    sym_status st = SYM_OK;
    gbuf kvs = {0}, head = {0};
    sym_wfile f = {.fd = -1};
    metadata(&kvs, w);

    uint64_t n_specs = sym_arch_n_specs(&w->hp), n_tensors = 0, offset = 0;
    gbuf infos = {0};
    for (uint64_t i = 0; i < n_specs; i++) {
        sym_tensor_spec s;
        sym_arch_spec_at(&w->hp, i, &s);
        if (s.optional && w->hp.tied_embeddings) continue;
        put_str(&infos, s.name, strlen(s.name));
        uint64_t dims[3];
        uint32_t n_dims = sym_arch_spec_dims(&s, true, dims);
        put_u32(&infos, n_dims);
        for (uint32_t d = 0; d < n_dims; d++) put_u64(&infos, dims[d]);
        put_u32(&infos, sym_arch_dtype_to_ggml(w->o->dtype));
        put_u64(&infos, offset);
        offset += (sym_writer_tensor_bytes(w, &s) + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
        n_tensors++;
    }
    put_u32(&head, 0x46554747u); /* "GGUF" */
    put_u32(&head, 3);
    put_u64(&head, n_tensors);
    put_u64(&head, kvs.n_kv);
    put(&head, kvs.p, kvs.n);
    put(&head, infos.p, infos.n);
    if (kvs.oom || infos.oom || head.oom)
        SYM_FAIL_GOTO(SYM_ERR_OOM, "make-model: out of memory for the GGUF header");

    SYM_TRY_GOTO(sym_wfile_open(&f, path));
    SYM_TRY_GOTO(sym_wfile_write(&f, head.p, head.n));
    SYM_TRY_GOTO(sym_wfile_pad(&f, head.n, ALIGNMENT));
    for (uint64_t i = 0; i < n_specs; i++) {
        sym_tensor_spec s;
        sym_arch_spec_at(&w->hp, i, &s);
        if (s.optional && w->hp.tied_embeddings) continue;
        SYM_TRY_GOTO(sym_writer_stream(w, &f, &s, false));
        SYM_TRY_GOTO(sym_wfile_pad(&f, sym_writer_tensor_bytes(w, &s), ALIGNMENT));
    }
    st = sym_wfile_commit(&f);
fail:
    sym_wfile_abort(&f);
    sym_free(kvs.p);
    sym_free(infos.p);
    sym_free(head.p);
    return st;
}
