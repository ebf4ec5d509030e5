/* gguf_build.h — builds small GGUF files in memory for tests, including broken ones: any key,
 * any value type, tensors with any dims/type/offset. Layout as in src/model/gguf.h. */
#ifndef SYM_TEST_GGUF_BUILD_H
#define SYM_TEST_GGUF_BUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gb_buf {
    unsigned char *p;
    size_t n, cap;
} gb_buf;

typedef struct gguf_builder {
    gb_buf kvs, infos, data;
    uint64_t n_kv, n_tensors;
    uint32_t version;
    uint64_t alignment; /* for laying out data (the file's general.alignment is a kv) */
} gguf_builder;

static inline void gb_put(gb_buf *b, const void *d, size_t n) {
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static inline void gb_u32(gb_buf *b, uint32_t v) { gb_put(b, &v, 4); }
static inline void gb_u64(gb_buf *b, uint64_t v) { gb_put(b, &v, 8); }
static inline void gb_str(gb_buf *b, const char *s) {
    gb_u64(b, strlen(s));
    gb_put(b, s, strlen(s));
}

static inline void gb_init(gguf_builder *g) {
    memset(g, 0, sizeof *g);
    g->version = 3;
    g->alignment = 32;
}
static inline void gb_free(gguf_builder *g) {
    free(g->kvs.p);
    free(g->infos.p);
    free(g->data.p);
}

static inline void gb_key(gguf_builder *g, const char *key, uint32_t type) {
    gb_str(&g->kvs, key);
    gb_u32(&g->kvs, type);
    g->n_kv++;
}
static inline void gb_kv_u32(gguf_builder *g, const char *key, uint32_t v) {
    gb_key(g, key, 4);
    gb_u32(&g->kvs, v);
}
static inline void gb_kv_f32(gguf_builder *g, const char *key, float v) {
    gb_key(g, key, 6);
    gb_put(&g->kvs, &v, 4);
}
static inline void gb_kv_str(gguf_builder *g, const char *key, const char *v) {
    gb_key(g, key, 8);
    gb_str(&g->kvs, v);
}
static inline void gb_kv_bool(gguf_builder *g, const char *key, uint8_t v) {
    gb_key(g, key, 7);
    gb_put(&g->kvs, &v, 1);
}
/* An array of n strings "t0", "t1", … */
static inline void gb_kv_tokens(gguf_builder *g, const char *key, uint64_t n) {
    gb_key(g, key, 9);
    gb_u32(&g->kvs, 8);
    gb_u64(&g->kvs, n);
    for (uint64_t i = 0; i < n; i++) {
        char t[32];
        snprintf(t, sizeof t, "t%llu", (unsigned long long)i);
        gb_str(&g->kvs, t);
    }
}
/* Raw bytes appended to the kv section as one entry (for hand-made corruptions). */
static inline void gb_kv_raw(gguf_builder *g, const void *d, size_t n) {
    gb_put(&g->kvs, d, n);
    g->n_kv++;
}

/* A tensor with explicit offset (UINT64_MAX: next aligned position) and byte size of its data
 * appended (data_bytes 0: none appended). */
static inline void gb_tensor_at(gguf_builder *g, const char *name, uint32_t n_dims,
                                const uint64_t *ne, uint32_t type, uint64_t offset,
                                size_t data_bytes) {
    if (offset == UINT64_MAX) {
        while (g->data.n % g->alignment) gb_put(&g->data, "", 1);
        offset = g->data.n;
    }
    gb_str(&g->infos, name);
    gb_u32(&g->infos, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) gb_u64(&g->infos, ne[d]);
    gb_u32(&g->infos, type);
    gb_u64(&g->infos, offset);
    g->n_tensors++;
    for (size_t i = 0; i < data_bytes; i++) {
        unsigned char c = (unsigned char)(i * 7 + g->n_tensors);
        gb_put(&g->data, &c, 1);
    }
}

/* An f32/f16/bf16 tensor (type 0, 1, 30) or any other with block size 1 (I8 24, F64 28, …);
 * elem_bytes gives its size. Quantized types: pass data_bytes via gb_tensor_at. */
static inline void gb_tensor(gguf_builder *g, const char *name, uint64_t ne0, uint64_t ne1,
                             uint32_t type, size_t elem_bytes) {
    uint64_t ne[2] = {ne0, ne1};
    gb_tensor_at(g, name, ne1 ? 2 : 1, ne, type, UINT64_MAX,
                 (size_t)(ne0 * (ne1 ? ne1 : 1)) * elem_bytes);
}

/* The whole file; caller frees. */
static inline unsigned char *gb_finish(const gguf_builder *g, size_t *size) {
    gb_buf out = {0};
    gb_u32(&out, 0x46554747u);
    gb_u32(&out, g->version);
    gb_u64(&out, g->n_tensors);
    gb_u64(&out, g->n_kv);
    gb_put(&out, g->kvs.p, g->kvs.n);
    gb_put(&out, g->infos.p, g->infos.n);
    while (out.n % g->alignment) gb_put(&out, "", 1);
    gb_put(&out, g->data.p, g->data.n);
    *size = out.n;
    return out.p;
}

#endif
