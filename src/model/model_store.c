/* model_store.c — a pack store (.sympack) opened as a model, so that the engine, `info` and the
 * tokenizer take it exactly like a GGUF file. This is the one place where model/ reaches up into
 * pack/: the store format belongs with the packs, while sym_model_open is where every model
 * file is recognized.
 *
 * Until the streaming engine reads packs on demand, every pack is decompressed at open into one
 * anonymous mapping (the "image") that holds the weights in their source order, each at a
 * 256-byte aligned offset, and the sym_weight views point into it. Packs are read and
 * decompressed on a thread pool; a pack's pieces are then copied to their weights' places. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/threadpool.h"
#include "model/model_impl.h"
#include "pack/store.h"

#define IMAGE_ALIGN 256u

typedef struct loader_thread {
    sym_store_reader *reader;
    uint8_t *buf; /* the largest pack's raw bytes */
    sym_status st;
    uint32_t bad_pack; /* the lowest pack id that failed on this thread */
    char err[512];
} loader_thread;

typedef struct loader {
    const sym_store *store;
    const sym_pack_plan *plan;
    uint8_t *image;
    const uint64_t *offsets; /* per plan weight: its place in the image */
    loader_thread *threads;
    atomic_int failed;
} loader;

static void load_pack(void *ctx, int64_t task_idx, int thread_idx) {
    loader *l = ctx;
    loader_thread *t = &l->threads[thread_idx];
    uint32_t id = (uint32_t)task_idx;
    if (atomic_load_explicit(&l->failed, memory_order_relaxed)) return;
    sym_status st = sym_store_read_pack_with(l->store, t->reader, id, t->buf);
    if (st != SYM_OK) {
        if (t->st == SYM_OK || id < t->bad_pack) {
            t->st = st;
            t->bad_pack = id;
            snprintf(t->err, sizeof t->err, "%s", sym_last_error());
        }
        atomic_store(&l->failed, 1);
        return;
    }
    const sym_pack *k = &l->plan->packs[id];
    const sym_pack_piece *pc = sym_pack_pieces(l->plan, k);
    for (uint32_t j = 0; j < k->n_pieces; j++) {
        const sym_pack_weight *w = &l->plan->weights[pc[j].weight_idx];
        memcpy(l->image + l->offsets[pc[j].weight_idx] + (uint64_t)pc[j].row0 * w->row_bytes,
               t->buf + pc[j].pack_offset, (size_t)pc[j].n_bytes);
    }
}

/* Decompresses every pack into m->image (offsets per plan weight). */
static sym_status load_packs(sym_model *m, const uint64_t *offsets) {
    const sym_pack_plan *plan = sym_store_plan(m->store);
    uint64_t largest = 0;
    for (uint32_t i = 0; i < plan->n_packs; i++)
        if (plan->packs[i].buffer_bytes > largest) largest = plan->packs[i].buffer_bytes;
    int n = sym_threadpool_cpu_count();
    if ((uint32_t)n > plan->n_packs) n = (int)plan->n_packs;
    sym_threadpool *pool = NULL;
    loader l = {m->store, plan, m->image, offsets, NULL, 0};
    sym_status st = sym_threadpool_create(n, &pool);
    if (st == SYM_OK) {
        n = sym_threadpool_size(pool);
        l.threads = sym_calloc((size_t)n, sizeof *l.threads);
        if (!l.threads) st = SYM_FAIL(SYM_ERR_OOM, "model: out of memory");
    }
    for (int t = 0; st == SYM_OK && t < n; t++) {
        st = sym_store_reader_create(&l.threads[t].reader);
        if (st == SYM_OK && !(l.threads[t].buf = sym_malloc((size_t)largest)))
            st = SYM_FAIL(SYM_ERR_OOM, "model: out of memory for %d pack buffers of %llu bytes",
                          n, (unsigned long long)largest);
    }
    if (st == SYM_OK) {
        sym_threadpool_parallel_for(pool, plan->n_packs, load_pack, &l);
        int bad = -1;
        for (int t = 0; t < n; t++)
            if (l.threads[t].st != SYM_OK && (bad < 0 || l.threads[t].bad_pack <
                                                             l.threads[bad].bad_pack))
                bad = t;
        if (bad >= 0) st = SYM_FAIL(l.threads[bad].st, "%s", l.threads[bad].err);
    }
    for (int t = 0; l.threads && t < n; t++) {
        sym_store_reader_destroy(l.threads[t].reader);
        sym_free(l.threads[t].buf);
    }
    sym_free(l.threads);
    sym_threadpool_destroy(pool);
    return st;
}

static int cmp_name(const void *a, const void *b, void *ctx) {
    const sym_pack_weight *w = ctx;
    return strcmp(w[*(const uint32_t *)a].name, w[*(const uint32_t *)b].name);
}

/* Binds the image's weights to the architecture's specs. */
static sym_status bind_all(sym_model *m, const uint64_t *offsets, uint32_t *by_name) {
    const sym_pack_plan *plan = sym_store_plan(m->store);
    for (uint32_t i = 0; i < plan->n_weights; i++) by_name[i] = i;
    qsort_r(by_name, plan->n_weights, sizeof *by_name, cmp_name, plan->weights);
    SYM_TRY(sym_model_alloc_tables(m));
    uint64_t n_specs = sym_arch_n_specs(&m->hp);
    for (uint64_t i = 0; i < n_specs; i++) {
        sym_tensor_spec s;
        sym_arch_spec_at(&m->hp, i, &s);
        uint32_t lo = 0, hi = plan->n_weights;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (strcmp(plan->weights[by_name[mid]].name, s.name) < 0) lo = mid + 1;
            else hi = mid;
        }
        if (lo == plan->n_weights || strcmp(plan->weights[by_name[lo]].name, s.name) != 0) {
            if (s.optional) continue;
            return SYM_FAIL(SYM_ERR_FORMAT, "sympack: missing tensor '%s'", s.name);
        }
        const sym_pack_weight *w = &plan->weights[by_name[lo]];
        found f;
        memset(&f, 0, sizeof f);
        f.file_name = w->name;
        f.type_name = sym_dtype_name(w->type);
        f.runnable = true;
        f.type = w->type;
        f.n_dims = sym_arch_spec_dims(&s, true, f.dims); /* the store checked the shape */
        f.ggml_order = true;
        f.data = (const uint8_t *)m->image + offsets[by_name[lo]];
        f.n_bytes = w->n_bytes;
        f.file_offset = offsets[by_name[lo]];
        SYM_TRY(sym_model_bind(m, i, &s, &f));
    }
    sym_model_finish_tables(m);
    return SYM_OK;
}

sym_status sym_model_open_store(sym_model *m, const char *path) {
    m->format = SYM_MODEL_SYMPACK;
    SYM_TRY(sym_store_open(path, &m->store));
    m->paths = sym_calloc(1, sizeof *m->paths);
    if (!m->paths || !(m->paths[0] = sym_strdup(path)))
        return SYM_FAIL(SYM_ERR_OOM, "model: out of memory");
    m->n_files = 1;
    m->hp = *sym_store_hparams(m->store);
    m->gguf = (sym_gguf *)sym_store_gguf(m->store); /* the store's: not closed by the model */
    m->bos_id = sym_store_bos_id(m->store);
    m->eos_id = sym_store_eos_id(m->store);
    const sym_pack_plan *plan = sym_store_plan(m->store);
    uint64_t *offsets = sym_malloc((size_t)plan->n_weights * sizeof *offsets);
    uint32_t *by_name = sym_malloc((size_t)plan->n_weights * sizeof *by_name);
    sym_status st = SYM_OK;
    if (!offsets || !by_name) SYM_FAIL_GOTO(SYM_ERR_OOM, "model: out of memory");
    uint64_t at = 0;
    for (uint32_t i = 0; i < plan->n_weights; i++) {
        at = (at + IMAGE_ALIGN - 1) / IMAGE_ALIGN * IMAGE_ALIGN;
        offsets[i] = at;
        at += plan->weights[i].n_bytes;
    }
    /* an anonymous mapping: pages come zeroed and go back to the system at close */
    void *img = mmap(NULL, (size_t)at, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (img == MAP_FAILED)
        SYM_FAIL_GOTO(SYM_ERR_OOM, "sympack: '%s' needs %.1f MiB of RAM to hold its decompressed "
                      "weights (until packs stream from disk) and the mapping failed", path,
                      (double)at / 1048576.0);
    m->image = img;
    m->image_bytes = at;
    SYM_INFO("%s: decompressing %u packs (%.1f MiB stored) into %.1f MiB of RAM", path,
             plan->n_packs, (double)sym_store_stored_bytes(m->store) / 1048576.0,
             (double)at / 1048576.0);
    SYM_TRY_GOTO(load_packs(m, offsets));
    SYM_TRY_GOTO(bind_all(m, offsets, by_name));
fail:
    sym_free(offsets);
    sym_free(by_name);
    return st;
}

void sym_model_close_store(sym_model *m) {
    if (m->image) munmap(m->image, (size_t)m->image_bytes);
    m->image = NULL;
    sym_store_close(m->store);
    m->store = NULL;
    m->gguf = NULL;
}

bool sym_model_tokenizer_text(const sym_model *m, sym_str *json, sym_str *config) {
    if (!m->store || sym_store_source_format(m->store) != SYM_STORE_FROM_SAFETENSORS) return false;
    *json = sym_store_tokenizer_json(m->store);
    *config = sym_store_tokenizer_config(m->store);
    return true;
}
