/* libFuzzer target: the pack store's header and table parser (sym_store_open_memory), then every
 * pack of a store that opens (checksums, decoders on damaged streams).
 *
 * Both checksums of the header and the tables are recomputed over the input before parsing, so
 * mutations reach the structure checks behind them rather than stopping at "damaged"; when the
 * store opens, each pack's stored checksum is recomputed too and the store reopened, so the
 * codecs decode mutated streams (their raw checksum still guards the result); a store that
 * still opens is then opened as a model (through a memfd), which binds its weights, and lazily
 * (the vectors alone, then everything), and its packs are read the streaming engine's way
 * (tier/pack_io.h: stored bytes into staging, checked and decoded by an I/O slot). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "model/model.h"
#include "pack/store.h"
#include "tier/pack_io.h"

#define MAX_INPUT (4u << 20)
#define MAX_PACK_BYTES (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void rehash(uint8_t *p, size_t size) {
    uint64_t off = rd64(p + 24), n = rd64(p + 32), h;
    if (off <= size && n <= size - off) {
        h = XXH3_64bits(p + off, (size_t)n);
        memcpy(p + 104, &h, 8);
    }
    h = XXH3_64bits(p, 120);
    memcpy(p + 120, &h, 8);
}

static void read_all(const sym_store *s) {
    const sym_pack_plan *plan = sym_store_plan(s);
    for (uint32_t i = 0; i < plan->n_packs; i++) {
        const sym_store_pack *k = sym_store_pack_at(s, i);
        if (k->raw_bytes > MAX_PACK_BYTES) continue;
        void *buf = malloc((size_t)k->raw_bytes);
        if (buf) sym_store_read_pack(s, i, buf);
        free(buf);
    }
}

static void open_model(const uint8_t *p, size_t size) {
    int fd = memfd_create("fuzz_store", 0);
    if (fd < 0) return;
    if (write(fd, p, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        sym_model *m = NULL;
        if (sym_model_open(path, &m) == SYM_OK) {
            const sym_weight *w = sym_model_weight_at(m, sym_model_n_weights(m) - 1);
            volatile uint8_t sink = ((const uint8_t *)w->data)[w->n_bytes - 1];
            (void)sink;
        }
        sym_model_close(m);
        m = NULL;
        if (sym_model_open_lazy(path, &m) == SYM_OK &&
            sym_model_load_weights(m, SYM_MODEL_LOAD_VECTORS) == SYM_OK) {
            const sym_weight *w = &sym_model_weights_of(m)->output_norm;
            volatile uint8_t sink = ((const uint8_t *)w->data)[w->n_bytes - 1];
            (void)sink;
            if (sym_model_load_weights(m, SYM_MODEL_LOAD_ALL) == SYM_OK) {
                w = sym_model_weight_at(m, 0);
                sink = ((const uint8_t *)w->data)[w->n_bytes - 1];
            }
        }
        sym_model_close(m);
        sym_store *s = NULL;
        sym_pack_io *io = NULL;
        if (sym_store_open(path, &s) == SYM_OK &&
            sym_pack_io_open_store(s, 1, SYM_IO_AUTO, NULL, NULL, &io) == SYM_OK) {
            size_t need = (size_t)sym_pack_io_staging_need(io);
            void *staging = NULL;
            if (posix_memalign(&staging, SYM_PACK_IO_ALIGN, need ? need : SYM_PACK_IO_ALIGN) == 0) {
                const sym_pack_plan *plan = sym_store_plan(s);
                for (uint32_t i = 0; i < plan->n_packs; i++) {
                    void *dst = malloc((size_t)plan->packs[i].buffer_bytes);
                    sym_pack_io_counts c = {0, 0, 0};
                    if (dst) sym_pack_io_read(io, 0, i, dst, staging, need, &c);
                    free(dst);
                }
                free(staging);
            }
        }
        sym_pack_io_close(io);
        sym_store_close(s);
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 128 || size > MAX_INPUT) return 0;
    uint8_t *p = malloc(size);
    if (!p) return 0;
    memcpy(p, data, size);
    rehash(p, size);
    sym_store *s = NULL;
    if (sym_store_open_memory(p, size, &s) == SYM_OK) {
        read_all(s);
        /* make every pack's stored checksum match its (mutated) bytes, and decode them */
        const sym_pack_plan *plan = sym_store_plan(s);
        size_t rec = 128 + 128 + (size_t)rd32(p + 68) * 24 + (size_t)rd32(p + 48) * 96;
        for (uint32_t i = 0; i < plan->n_packs; i++) {
            const sym_store_pack *k = sym_store_pack_at(s, i);
            uint64_t h = XXH3_64bits(p + k->file_offset, (size_t)k->stored_bytes);
            memcpy(p + rec + (size_t)i * 96 + 88, &h, 8);
        }
        sym_store_close(s);
        s = NULL;
        rehash(p, size);
        if (sym_store_open_memory(p, size, &s) == SYM_OK) {
            read_all(s);
            if (sym_store_raw_bytes(s) <= MAX_PACK_BYTES) open_model(p, size);
        }
    }
    sym_store_close(s);
    free(p);
    return 0;
}
