/* model_store.c — a pack store (.sympack) opened as a model, so that the engine, `info` and the
 * tokenizer take it exactly like a GGUF file. This is the one place where model/ reaches up into
 * pack/: the store format belongs with the packs, while sym_model_open is where every model
 * file is recognized.
 *
 * The weights live in one anonymous mapping (the "image") that holds them in their source order,
 * each at a 256-byte aligned offset, and the sym_weight views point into it. sym_model_open fills
 * it at once: every pack is read, checked and decompressed on a thread pool, and its pieces are
 * copied to their weights' places. sym_model_open_lazy only reserves it (PROT_NONE, no memory
 * committed) and fills what sym_model_load_weights asks for: everything (the engine's resident
 * case) or the vectors a streamed forward pass keeps (then only the packs holding them are read,
 * and only the pages holding them are made accessible; the matrices stream from the store
 * through the pack manager, and a stray read of one faults instead of seeing zeros). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
    const uint32_t *ids;     /* the packs to read (task i reads ids[i]) */
    const bool *want;        /* per plan weight: copy its pieces (NULL: all) */
    loader_thread *threads;
    atomic_int failed;
} loader;

static void load_pack(void *ctx, int64_t task_idx, int thread_idx) {
    loader *l = ctx;
    loader_thread *t = &l->threads[thread_idx];
    uint32_t id = l->ids[task_idx];
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
        if (l->want && !l->want[pc[j].weight_idx]) continue;
        const sym_pack_weight *w = &l->plan->weights[pc[j].weight_idx];
        memcpy(l->image + l->offsets[pc[j].weight_idx] + (uint64_t)pc[j].row0 * w->row_bytes,
               t->buf + pc[j].pack_offset, (size_t)pc[j].n_bytes);
    }
}

/* Reads packs ids[0 .. n_ids) on up to max_threads threads and copies their pieces of the
 * wanted weights (want NULL: all) to their places in m->image. The lowest failing pack's error
 * wins, so the detail does not depend on thread timing. */
static sym_status load_packs(sym_model *m, const uint32_t *ids, uint32_t n_ids, const bool *want,
                             int max_threads) {
    const sym_pack_plan *plan = sym_store_plan(m->store);
    uint64_t largest = 0;
    for (uint32_t i = 0; i < n_ids; i++)
        if (plan->packs[ids[i]].buffer_bytes > largest) largest = plan->packs[ids[i]].buffer_bytes;
    int n = sym_threadpool_cpu_count();
    if (n > max_threads) n = max_threads;
    if ((uint32_t)n > n_ids) n = (int)n_ids;
    if (n < 1) return SYM_OK;
    sym_threadpool *pool = NULL;
    loader l = {m->store, plan, m->image, m->image_offsets, ids, want, NULL, 0};
    sym_status st = sym_threadpool_create(n, &pool);
    if (st == SYM_OK) {
        n = sym_threadpool_size(pool);
        l.threads = sym_calloc((size_t)n, sizeof *l.threads);
        if (!l.threads) st = SYM_FAIL(SYM_ERR_OOM, "model: out of memory");
    }
    /* the pack buffers are mapped, not malloc'ed: they go back to the system at once (a
     * streamed engine measures what the process holds right after this) */
    for (int t = 0; st == SYM_OK && t < n; t++) {
        st = sym_store_reader_create(&l.threads[t].reader);
        void *b = st == SYM_OK ? mmap(NULL, (size_t)largest, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                               : MAP_FAILED;
        if (st == SYM_OK && b == MAP_FAILED)
            st = SYM_FAIL(SYM_ERR_OOM, "model: out of memory for %d pack buffers of %llu bytes",
                          n, (unsigned long long)largest);
        if (b != MAP_FAILED) l.threads[t].buf = b;
    }
    if (st == SYM_OK) {
        sym_threadpool_parallel_for(pool, n_ids, load_pack, &l);
        int bad = -1;
        for (int t = 0; t < n; t++)
            if (l.threads[t].st != SYM_OK && (bad < 0 || l.threads[t].bad_pack <
                                                             l.threads[bad].bad_pack))
                bad = t;
        if (bad >= 0) st = SYM_FAIL(l.threads[bad].st, "%s", l.threads[bad].err);
    }
    for (int t = 0; l.threads && t < n; t++) {
        sym_store_reader_destroy(l.threads[t].reader);
        if (l.threads[t].buf) munmap(l.threads[t].buf, (size_t)largest);
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

/* The weights a streamed forward pass keeps resident: norms, biases and MoE routers. */
static bool is_vector_role(sym_tensor_role r) {
    return r == SYM_ROLE_ATTN_NORM || r == SYM_ROLE_FFN_NORM || r == SYM_ROLE_OUTPUT_NORM ||
           r == SYM_ROLE_BQ || r == SYM_ROLE_BK || r == SYM_ROLE_BV || r == SYM_ROLE_FFN_GATE_INP;
}

/* Makes bytes [off, off + n) of the image readable and writable (whole pages). */
static sym_status commit(sym_model *m, uint64_t off, uint64_t n) {
    uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t p0 = off / pg * pg, p1 = (off + n + pg - 1) / pg * pg;
    if (p1 > m->image_bytes) p1 = m->image_bytes;
    if (p1 <= p0) return SYM_OK;
    if (mprotect((uint8_t *)m->image + p0, (size_t)(p1 - p0), PROT_READ | PROT_WRITE) != 0)
        return SYM_FAIL(SYM_ERR_OOM, "sympack: cannot commit %.1f MiB of RAM for the weights",
                        (double)(p1 - p0) / 1048576.0);
    return SYM_OK;
}

sym_status sym_model_load_store(sym_model *m, sym_model_load what) {
    const sym_pack_plan *plan = sym_store_plan(m->store);
    if (m->loaded == SYM_MODEL_LOAD_ALL || (int)m->loaded >= (int)what) return SYM_OK;
    sym_status st = SYM_OK;
    uint32_t *ids = sym_malloc((size_t)plan->n_packs * sizeof *ids);
    bool *want = sym_calloc(plan->n_weights ? plan->n_weights : 1, sizeof *want);
    if (!ids || !want) SYM_FAIL_GOTO(SYM_ERR_OOM, "model: out of memory");
    uint32_t n_ids = 0;
    if (what == SYM_MODEL_LOAD_ALL) {
        SYM_TRY_GOTO(commit(m, 0, m->image_bytes));
        for (uint32_t i = 0; i < plan->n_packs; i++) ids[n_ids++] = i;
        SYM_INFO("%s: decompressing %u packs (%.1f MiB stored) into %.1f MiB of RAM",
                 sym_store_path(m->store), plan->n_packs,
                 (double)sym_store_stored_bytes(m->store) / 1048576.0,
                 (double)m->image_bytes / 1048576.0);
        SYM_TRY_GOTO(load_packs(m, ids, n_ids, NULL, sym_threadpool_cpu_count()));
        m->committed_bytes = m->image_bytes;
    } else {
        uint64_t bytes = 0;
        for (uint32_t i = 0; i < plan->n_weights; i++) {
            if (!is_vector_role(plan->weights[i].role)) continue;
            want[i] = true;
            bytes += plan->weights[i].n_bytes;
            SYM_TRY_GOTO(commit(m, m->image_offsets[i], plan->weights[i].n_bytes));
        }
        for (uint32_t i = 0; i < plan->n_packs; i++) {
            const sym_pack_piece *pc = sym_pack_pieces(plan, &plan->packs[i]);
            for (uint32_t j = 0; j < plan->packs[i].n_pieces; j++)
                if (want[pc[j].weight_idx]) {
                    ids[n_ids++] = i;
                    break;
                }
        }
        SYM_INFO("%s: reading the %u packs that hold the norms, biases and routers (%.2f MiB of "
                 "them); the rest streams", sym_store_path(m->store), n_ids,
                 (double)bytes / 1048576.0);
        /* two threads: each holds a pack's buffers, and the budgets are measured after this */
        SYM_TRY_GOTO(load_packs(m, ids, n_ids, want, 2));
        m->committed_bytes = bytes;
    }
    m->loaded = what;
fail:
    sym_free(ids);
    sym_free(want);
    return st;
}

sym_status sym_model_open_store(sym_model *m, const char *path, bool lazy) {
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
    uint64_t *offsets = m->image_offsets = sym_malloc((size_t)plan->n_weights * sizeof *offsets);
    uint32_t *by_name = sym_malloc((size_t)plan->n_weights * sizeof *by_name);
    sym_status st = SYM_OK;
    if (!offsets || !by_name) SYM_FAIL_GOTO(SYM_ERR_OOM, "model: out of memory");
    uint64_t at = 0;
    for (uint32_t i = 0; i < plan->n_weights; i++) {
        at = (at + IMAGE_ALIGN - 1) / IMAGE_ALIGN * IMAGE_ALIGN;
        offsets[i] = at;
        at += plan->weights[i].n_bytes;
    }
    /* an anonymous mapping, reserved without access (nothing committed) until loaded: pages come
     * zeroed and go back to the system at close */
    void *img = mmap(NULL, (size_t)at, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (img == MAP_FAILED)
        SYM_FAIL_GOTO(SYM_ERR_OOM, "sympack: cannot reserve %.1f MiB of address space for the "
                      "weights of '%s'", (double)at / 1048576.0, path);
    m->image = img;
    m->image_bytes = at;
    SYM_TRY_GOTO(bind_all(m, offsets, by_name));
    if (!lazy) SYM_TRY_GOTO(sym_model_load_store(m, SYM_MODEL_LOAD_ALL));
fail:
    sym_free(by_name);
    return st;
}

void sym_model_close_store(sym_model *m) {
    if (m->image) munmap(m->image, (size_t)m->image_bytes);
    m->image = NULL;
    sym_free(m->image_offsets);
    m->image_offsets = NULL;
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
