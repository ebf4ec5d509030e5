/* libFuzzer target: the GGUF reader on arbitrary bytes, then every metadata entry and tensor
 * walked (every string and array element read, every tensor's first and last byte touched) and
 * the architecture reader run on the result. Any crash, leak or UB is a bug. */
#include <stddef.h>
#include <stdint.h>

#include "model/arch.h"
#include "model/gguf.h"

static volatile uint64_t g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sym_gguf *g = NULL;
    if (sym_gguf_open_memory(data, size, &g) != SYM_OK) return 0;
    uint64_t acc = sym_gguf_version(g) + sym_gguf_alignment(g) + sym_gguf_data_offset(g);
    for (uint64_t i = 0; i < sym_gguf_n_kv(g); i++) {
        const sym_gguf_kv *kv = sym_gguf_kv_at(g, i);
        acc += kv->key.len ? (uint8_t)kv->key.ptr[kv->key.len - 1] : 0;
        acc += kv->raw[0] + kv->raw[kv->raw_len - 1];
        if (kv->type == SYM_GGUF_STRING && kv->str.len) acc += (uint8_t)kv->str.ptr[kv->str.len - 1];
        if (kv->type != SYM_GGUF_ARRAY) continue;
        for (uint64_t j = 0; j < kv->arr_n; j++) {
            if (kv->arr_type == SYM_GGUF_STRING)
                acc += kv->strs[j].len ? (uint8_t)kv->strs[j].ptr[0] : 1;
            else if (kv->arr_type == SYM_GGUF_F32 || kv->arr_type == SYM_GGUF_F64)
                acc += (uint64_t)(sym_gguf_arr_f64(kv, j) != 0.0);
            else
                acc += (uint64_t)sym_gguf_arr_i64(kv, j);
        }
        char key[64];
        size_t n = kv->key.len < sizeof key - 1 ? (size_t)kv->key.len : sizeof key - 1;
        for (size_t k = 0; k < n; k++) key[k] = kv->key.ptr[k] ? kv->key.ptr[k] : '?';
        key[n] = '\0';
        acc += sym_gguf_find(g, key) != NULL;
    }
    for (uint64_t i = 0; i < sym_gguf_n_tensors(g); i++) {
        const sym_gguf_tensor *t = sym_gguf_tensor_at(g, i);
        const uint8_t *p = t->data;
        acc += p[0] + p[t->n_bytes - 1] + t->n_elems;
    }
    const sym_gguf_tensor *te = sym_gguf_find_tensor(g, "token_embd.weight");
    if (te) acc += te->ne[0];
    uint32_t u;
    float f;
    sym_str s;
    sym_gguf_get_u32(g, "llama.embedding_length", &u);
    sym_gguf_get_f32(g, "llama.rope.freq_base", &f);
    sym_gguf_get_str(g, "general.architecture", &s);
    sym_hparams hp;
    if (sym_arch_hparams_from_gguf(g, &hp) == SYM_OK) {
        /* every spec of the hyperparameters the file claims (bounded by the file's tensors) */
        uint64_t n = sym_arch_n_specs(&hp);
        for (uint64_t i = 0; i < n && i < 4 * sym_gguf_n_tensors(g) + 3; i++) {
            sym_tensor_spec spec;
            sym_arch_spec_at(&hp, i, &spec);
            acc += sym_gguf_find_tensor(g, spec.name) != NULL;
        }
    }
    g_sink = acc;
    sym_gguf_close(g);
    return 0;
}
