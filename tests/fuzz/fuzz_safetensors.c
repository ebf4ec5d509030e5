/* libFuzzer target: the safetensors header parser on arbitrary bytes (every tensor's data and
 * every metadata value touched on success), and the same bytes as config.json and as a shard
 * index, through the strict JSON layer. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model/hf.h"
#include "model/safetensors.h"

static volatile uint64_t g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t acc = 0;
    sym_st_file *f = NULL;
    if (sym_st_open_memory(data, size, &f) == SYM_OK) {
        for (uint64_t i = 0; i < sym_st_n_tensors(f); i++) {
            const sym_st_tensor *t = sym_st_tensor_at(f, i);
            const uint8_t *p = t->data;
            if (t->n_bytes) acc += p[0] + p[t->n_bytes - 1];
            acc += strlen(t->name) + t->n_dims + (sym_st_find(f, t->name) == t);
        }
        const char *fmt = sym_st_metadata(f, "format");
        if (fmt) acc += strlen(fmt);
        sym_st_close(f);
    }
    sym_hf_config cfg;
    if (sym_hf_config_parse((const char *)data, size, &cfg) == SYM_OK) acc += (uint64_t)cfg.hp.n_embd;
    sym_hf_index *ix = NULL;
    if (sym_hf_index_parse((const char *)data, size, &ix) == SYM_OK) {
        for (int i = 0; i < sym_hf_index_n_files(ix); i++) acc += strlen(sym_hf_index_file(ix, i));
        acc += (uint64_t)sym_hf_index_lookup(ix, "model.norm.weight");
        sym_hf_index_destroy(ix);
    }
    g_sink = acc;
    return 0;
}
