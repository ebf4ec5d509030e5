/* tier_util.h — what the tier tests share: a fixture (a model file planned into tiny packs, with
 * the file's bytes read independently), a CPU backend playing the device behind a wrapper that
 * counts (and can fail) its allocations, a host allocator that counts the RAM tier's memory,
 * byte-exact verification of a pinned pack, and a cyclic walk of the schedule. */
#ifndef SYM_TIER_UTIL_H
#define SYM_TIER_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

#include "base/status.h"
#include "cpu/ops.h"
#include "model/writer.h"
#include "pack/pack.h"
#include "tier/pack_manager.h"

typedef struct fixture {
    char name[64];
    char path[1024];
    sym_pack_plan *plan;
    unsigned char *file; /* the whole file, read with stdio */
    size_t file_size;
    const char *paths[1];
    uint64_t need; /* the largest pack's buddy block: the minimum of each budget */
} fixture;

static char g_tmp[512];

static inline uint64_t tu_pow2ceil(uint64_t x) {
    uint64_t p = 1;
    while (p < x)
        p <<= 1;
    return p;
}

static inline void tu_tmpdir(const char *test) {
    snprintf(g_tmp, sizeof g_tmp, "%s/tests/%s.tmp", SYM_BUILD_DIR, test);
    mkdir(g_tmp, 0755);
}

/* Plans path with packs of at most max_pack bytes and reads the file. */
static inline int fixture_open(fixture *fx, const char *name, const char *path, uint64_t max_pack) {
    memset(fx, 0, sizeof *fx);
    snprintf(fx->name, sizeof fx->name, "%s", name);
    snprintf(fx->path, sizeof fx->path, "%s", path);
    fx->paths[0] = fx->path;
    sym_model *m = NULL;
    sym_pack_options o;
    sym_pack_options_init(&o);
    o.max_pack_bytes = max_pack;
    if (sym_model_open(path, &m) != SYM_OK || sym_pack_plan_create(m, &o, &fx->plan) != SYM_OK) {
        fprintf(stderr, "%s: %s\n", name, sym_last_error());
        sym_model_close(m);
        return -1;
    }
    sym_model_close(m); /* the plan owns what it needs */
    fx->file = test_read_file(path, &fx->file_size);
    uint64_t largest = 0;
    for (uint32_t i = 0; i < fx->plan->n_packs; i++)
        if (fx->plan->packs[i].buffer_bytes > largest) largest = fx->plan->packs[i].buffer_bytes;
    fx->need = tu_pow2ceil(largest < 256 ? 256 : largest);
    return fx->file ? 0 : -1;
}

/* A synthetic model written to the scratch directory. */
static inline int fixture_make(fixture *fx, const char *name, const char *preset, sym_dtype dt,
                               uint64_t max_pack) {
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    if (sym_make_model_preset(&o, preset) != SYM_OK) return -1;
    o.dtype = dt;
    o.seed = 7;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.gguf", g_tmp, name);
    if (sym_make_model(&o, path) != SYM_OK) {
        fprintf(stderr, "%s: %s\n", name, sym_last_error());
        return -1;
    }
    return fixture_open(fx, name, path, max_pack);
}

static inline void fixture_close(fixture *fx) {
    sym_pack_plan_destroy(fx->plan);
    free(fx->file);
    memset(fx, 0, sizeof *fx);
}

/* ---- the device: the CPU backend behind a counting, failable wrapper ------------------------- */

typedef struct dev_wrap {
    sym_backend base;
    sym_backend *inner;
    sym_backend_ops ops;
    int fail_at; /* the alloc call (1-based) that fails with SYM_ERR_OOM; 0: none */
    int n_allocs;
    uint64_t live_bytes, peak_bytes;
} dev_wrap;

static inline dev_wrap *dw_of(sym_backend *b) { return (dev_wrap *)b; }

static inline sym_status dw_alloc(sym_backend *b, sym_tensor *t, sym_dtype type, int64_t n_cols,
                                  int64_t n_rows) {
    dev_wrap *w = dw_of(b);
    if (++w->n_allocs == w->fail_at)
        return SYM_FAIL(SYM_ERR_OOM, "test: injected device allocation failure");
    SYM_TRY(w->inner->ops->alloc(w->inner, t, type, n_cols, n_rows));
    w->live_bytes += sym_tensor_bytes(t);
    if (w->live_bytes > w->peak_bytes) w->peak_bytes = w->live_bytes;
    return SYM_OK;
}
static inline void dw_release(sym_backend *b, sym_tensor *t) {
    dw_of(b)->live_bytes -= sym_tensor_bytes(t);
    dw_of(b)->inner->ops->release(dw_of(b)->inner, t);
}
static inline sym_status dw_write(sym_backend *b, sym_tensor *t, const void *src, size_t n) {
    return dw_of(b)->inner->ops->write(dw_of(b)->inner, t, src, n);
}
static inline sym_status dw_read(sym_backend *b, const sym_tensor *t, void *dst, size_t n) {
    return dw_of(b)->inner->ops->read(dw_of(b)->inner, t, dst, n);
}

static inline int dev_open(dev_wrap *w, int fail_at) {
    memset(w, 0, sizeof *w);
    if (sym_cpu_backend_create(1, &w->inner) != SYM_OK) return -1;
    w->ops = (sym_backend_ops){.name = "test-device",
                               .alloc = dw_alloc,
                               .release = dw_release,
                               .write = dw_write,
                               .read = dw_read};
    w->base.ops = &w->ops;
    w->fail_at = fail_at;
    return 0;
}

static inline void dev_close(dev_wrap *w) {
    if (w->inner) w->inner->ops->destroy(w->inner);
    w->inner = NULL;
}

/* ---- host memory: counted, failable ---------------------------------------------------------- */

typedef struct host_count {
    atomic_uint_fast64_t live, peak;
    int fail_at; /* the alloc call (1-based) that returns NULL; 0: none */
    int n_allocs;
} host_count;

static inline void *hc_alloc(void *user, size_t bytes) {
    host_count *h = user;
    if (++h->n_allocs == h->fail_at) return NULL;
    void *p = aligned_alloc(4096, (bytes + 4095) & ~(size_t)4095);
    if (!p) return NULL;
    uint64_t now = atomic_fetch_add(&h->live, bytes) + bytes;
    if (now > atomic_load(&h->peak)) atomic_store(&h->peak, now);
    return p;
}
static inline void hc_free(void *user, void *p, size_t bytes) {
    host_count *h = user;
    if (!p) return;
    atomic_fetch_sub(&h->live, bytes);
    free(p);
}
static inline sym_tier_host_mem hc_mem(host_count *h) {
    return (sym_tier_host_mem){.alloc = hc_alloc, .free = hc_free, .user = h};
}

/* ---- verification ---------------------------------------------------------------------------- */

/* Every piece of the pinned pack equals the file's bytes (DEVICE: read back through the backend).
 */
static inline bool verify_pack(const fixture *fx, sym_pack_manager *pm, sym_backend *dev,
                               const sym_pack_handle *h) {
    const sym_pack *k = &fx->plan->packs[h->pack_id];
    const sym_pack_piece *pcs = sym_pack_pieces(fx->plan, k);
    static _Thread_local unsigned char buf[1 << 20];
    for (uint32_t i = 0; i < k->n_pieces; i++) {
        sym_tensor v;
        if (sym_pack_manager_view(pm, h, i, &v) != SYM_OK) return false;
        if (sym_tensor_bytes(&v) != pcs[i].n_bytes || pcs[i].n_bytes > sizeof buf) return false;
        const void *got = v.data;
        if (h->tier == SYM_TIER_DEVICE) {
            if (dev->ops->read(dev, &v, buf, pcs[i].n_bytes) != SYM_OK) return false;
            got = buf;
        }
        if (!got || memcmp(got, fx->file + pcs[i].file_offset, pcs[i].n_bytes) != 0) {
            fprintf(stderr,
                    "%s: pack %u piece %u (%s rows %lld+%lld) differs from the file in %s\n",
                    fx->name, h->pack_id, i, fx->plan->weights[pcs[i].weight_idx].name,
                    (long long)pcs[i].row0, (long long)pcs[i].n_rows, sym_tier_name(h->tier));
            return false;
        }
    }
    return true;
}

/* Walks the schedule n_tokens times: get, prefetch lookahead uses ahead, verify, release.
 * Returns the number of failures. */
static inline int walk(const fixture *fx, sym_pack_manager *pm, sym_backend *dev, sym_tier tier,
                       int n_tokens, uint32_t lookahead, bool check_each) {
    int bad = 0;
    for (int tok = 0; tok < n_tokens; tok++)
        for (uint32_t u = 0; u < fx->plan->n_uses; u++) {
            sym_pack_handle h;
            uint32_t id = fx->plan->schedule[u].pack_id;
            sym_status st = sym_pack_manager_get(pm, id, tier, &h);
            if (st != SYM_OK) {
                fprintf(stderr, "%s: get(%u, %s): %s: %s\n", fx->name, id, sym_tier_name(tier),
                        sym_status_name(st), sym_last_error());
                return bad + 1;
            }
            if (lookahead) sym_pack_manager_prefetch_ahead(pm, tier, lookahead);
            sym_pack_manager_poll(pm); /* the engine runs queued uploads between ops */
            bad += !verify_pack(fx, pm, dev, &h);
            bad += sym_pack_manager_release(pm, &h) != SYM_OK;
            if (check_each && sym_pack_manager_check(pm) != SYM_OK) {
                fprintf(stderr, "%s: %s\n", fx->name, sym_last_error());
                bad++;
            }
        }
    return bad;
}

#endif
