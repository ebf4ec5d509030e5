/* libFuzzer target: sym_model_open on an arbitrary GGUF file (held in a memfd), so the
 * architecture, hyperparameter and tensor-binding checks above the reader are fuzzed too; on
 * success every weight's first and last byte is touched and the tokenizer summary read. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model/model.h"

static volatile uint64_t g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* model files are recognized by their magic; make every input look like GGUF */
    if (size < 4 || data[0] != 'G' || data[1] != 'G' || data[2] != 'U' || data[3] != 'F') return 0;
    int fd = memfd_create("fuzz_model", 0);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    sym_model *m = NULL;
    if (sym_model_open(path, &m) == SYM_OK) {
        uint64_t acc = sym_model_n_params(m) + sym_model_weight_bytes(m);
        for (uint64_t i = 0; i < sym_model_n_weights(m); i++) {
            const sym_weight *w = sym_model_weight_at(m, i);
            const uint8_t *p = w->data;
            acc += p[0] + p[w->n_bytes - 1] + (sym_model_find_weight(m, w->name) == w);
        }
        sym_tokenizer_summary ts;
        if (sym_model_tokenizer_summary(m, &ts) == SYM_OK) acc += (uint64_t)ts.n_tokens;
        const sym_model_weights *ws = sym_model_weights_of(m);
        acc += (uint64_t)ws->output.n_rows + (uint64_t)ws->layers[0].wq.n_rows;
        g_sink = acc;
        sym_model_close(m);
    }
    close(fd);
    return 0;
}
