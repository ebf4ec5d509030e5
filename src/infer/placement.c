/* placement.c — budgets, the resident/streamed decision, the pack manager's set-up. */
#include "infer/placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/threadpool.h"

#include "base/alloc.h"
#include "base/log.h"
#include "cpu/ops.h"
#include "cpu/probe.h"
#include "pack/store.h"
#ifdef SYM_HAVE_VULKAN
#include "vk/ops.h"
#endif

#define GB(x)           ((double)(x) / 1e9)
#define RAM_MARGIN      (8ull << 20) /* RSS growth after open: logits, tokenizer work, stacks */
#define STREAM_BATCH    512

static uint64_t gb_bytes(double gb) { return (uint64_t)(gb * 1e9); }

/* MemAvailable from /proc/meminfo, 0 if unknown. */
static uint64_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* Resident set size of this process now. */
static uint64_t rss_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, res = 0;
    int n = fscanf(f, "%llu %llu", &size, &res);
    fclose(f);
    return n == 2 ? (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

#ifdef SYM_HAVE_VULKAN
static sym_backend *vk_of(sym_backend *b) { return sym_vk_backend_is(b) ? b : NULL; }
#endif

static uint64_t vram_auto(sym_backend *b) {
#ifdef SYM_HAVE_VULKAN
    if (!vk_of(b)) return 0;
    const sym_vk_caps *c = sym_vk_backend_caps(b);
    uint64_t best = 0;
    for (uint32_t i = 0; i < c->n_heaps; i++) {
        if (!c->heaps[i].device_local) continue;
        uint64_t v = c->heaps[i].budget_bytes
                         ? (c->heaps[i].budget_bytes > c->heaps[i].usage_bytes
                                ? (c->heaps[i].budget_bytes - c->heaps[i].usage_bytes) / 10 * 9
                                : 0)
                         : c->heaps[i].size_bytes / 10 * 8;
        if (v > best) best = v;
    }
    return best;
#else
    (void)b;
    return 0;
#endif
}

static uint64_t kernel_scratch(sym_backend *b, const sym_hparams *hp, const sym_forward_options *fo) {
#ifdef SYM_HAVE_VULKAN
    if (!vk_of(b)) return 0;
    uint64_t nb = (uint64_t)(fo->n_batch < fo->n_ctx ? fo->n_batch : fo->n_ctx);
    return sym_vk_backend_scratch_bound(b, nb, (uint64_t)sym_forward_widest(hp),
                                        (uint64_t)hp->n_head, (uint64_t)hp->head_dim);
#else
    (void)b, (void)hp, (void)fo;
    return 0;
#endif
}

sym_status sym_placement_decide(sym_placement *pl, const sym_config *cfg, sym_backend *b,
                                bool device, const sym_model *m, sym_forward_options *fo,
                                bool n_batch_given, bool force_stream) {
    memset(pl, 0, sizeof *pl);
    const sym_hparams *hp = sym_model_hparams(m);
    pl->device = device;
    pl->weight_bytes = sym_model_weight_bytes(m);
    pl->ram_budget = cfg->ram_budget_gb > 0 ? gb_bytes(cfg->ram_budget_gb) : mem_available() / 10 * 9;
    if (device) {
        pl->vram_budget = cfg->vram_budget_gb > 0 ? gb_bytes(cfg->vram_budget_gb) : vram_auto(b);
        if (!pl->vram_budget) pl->vram_budget = UINT64_MAX; /* unknown: let allocation decide */
    }
    uint64_t budget = device ? pl->vram_budget : pl->ram_budget;
    fo->streamed = 0;
    pl->scratch_bytes = sym_forward_scratch_bytes(hp, fo) + kernel_scratch(b, hp, fo);
    /* on the host, what the process already holds (runtime, tokenizer, driver) counts too */
    uint64_t base = device ? 0 : rss_now();
    if (!force_stream && (!budget || base + pl->weight_bytes + pl->scratch_bytes <= budget))
        return SYM_OK;

    /* streamed: a prefill chunk big enough that each pack moves once per 512 tokens */
    fo->streamed = 1;
    pl->streamed = true;
    if (!n_batch_given && fo->n_batch < STREAM_BATCH) fo->n_batch = STREAM_BATCH;
    if (fo->n_batch > fo->n_ctx) fo->n_batch = fo->n_ctx;
    pl->kernel_scratch_bytes = kernel_scratch(b, hp, fo);
    pl->scratch_bytes = sym_forward_scratch_bytes(hp, fo) + pl->kernel_scratch_bytes +
                        sym_forward_vector_bytes(m);
    SYM_CHECK(pl->scratch_bytes < budget, SYM_ERR_BUDGET,
              "the %s budget of %.3f GB cannot hold the KV cache, activations and scratch "
              "(%.3f GB for a context of %d and chunks of %d tokens): need at least %.3f GB plus "
              "room for one pack; lower --ctx-size or raise --%s-gb",
              device ? "VRAM" : "RAM", GB(budget), GB(pl->scratch_bytes), fo->n_ctx, fo->n_batch,
              GB(pl->scratch_bytes), device ? "vram" : "ram");
    return SYM_OK;
}

static double secs_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

#ifdef SYM_HAVE_VULKAN
/* 64 MiB of imported host memory and a device buffer to upload it into: what the link
 * measurements copy. */
#define LINK_TEST_BYTES (64ull << 20)

typedef struct link_test {
    sym_backend *vk;
    sym_vk_xfer *x;
    sym_tensor t;
    void *host;
} link_test;

static bool link_test_open(link_test *l, sym_backend *vk, sym_vk_xfer *x) {
    *l = (link_test){.vk = vk, .x = x};
    if (!vk || !x || !(l->host = sym_vk_xfer_host_alloc(x, LINK_TEST_BYTES))) return false;
    if (vk->ops->alloc(vk, &l->t, SYM_DT_F32, (int64_t)(LINK_TEST_BYTES / 4), 1) == SYM_OK) {
        if (vk->ops->sync(vk) == SYM_OK) return true;
        vk->ops->release(vk, &l->t);
    }
    sym_vk_xfer_host_free(x, l->host, LINK_TEST_BYTES);
    return false;
}

static void link_test_close(link_test *l) {
    l->vk->ops->release(l->vk, &l->t);
    sym_vk_xfer_host_free(l->x, l->host, LINK_TEST_BYTES);
}

/* One upload of the buffer: its seconds, or -1 on failure. */
static double link_test_upload(link_test *l) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (sym_vk_backend_upload(NULL, l->vk, &l->t, l->host, LINK_TEST_BYTES) != SYM_OK) return -1;
    return secs_since(&t0);
}

/* Host -> device rate through the transfer queue: three 64 MiB copies (the first warms up). */
static double measure_link(sym_backend *vk, sym_vk_xfer *x, uint64_t room) {
    link_test l;
    if (room < LINK_TEST_BYTES || !link_test_open(&l, vk, x)) return 0;
    double best = 0;
    for (int i = 0; i < 3; i++) {
        double s = link_test_upload(&l);
        if (s < 0) break;
        if (i > 0 && s > 0 && (double)LINK_TEST_BYTES / s / 1e9 > best)
            best = (double)LINK_TEST_BYTES / s / 1e9;
    }
    link_test_close(&l);
    return best;
}

/* Uploads on the transfer queue, over and over until told to stop: the link's load while the CPU's
 * rate is measured (both read the same RAM). */
typedef struct link_load {
    link_test l;
    _Atomic int stop;
    uint64_t bytes;
    double s;
} link_load;

static void *link_load_run(void *arg) {
    link_load *ll = arg;
    while (!atomic_load(&ll->stop)) {
        double s = link_test_upload(&ll->l);
        if (s < 0) break;
        ll->bytes += LINK_TEST_BYTES;
        ll->s += s;
    }
    return NULL;
}

static bool link_load_start(link_load *ll, sym_backend *vk, sym_vk_xfer *x, pthread_t *th) {
    *ll = (link_load){.bytes = 0};
    if (!link_test_open(&ll->l, vk, x)) return false;
    if (pthread_create(th, NULL, link_load_run, ll) == 0) return true;
    link_test_close(&ll->l);
    return false;
}

/* Stops the load; its rate in GB/s. */
static double link_load_stop(link_load *ll, pthread_t th) {
    atomic_store(&ll->stop, 1);
    pthread_join(th, NULL);
    link_test_close(&ll->l);
    return ll->s > 0 ? (double)ll->bytes / ll->s / 1e9 : 0;
}
#endif

/* Bytes a cyclic scan moves per token into a tier of capacity cap (Belady keeps what fits
 * beside the window of packs in use and prefetched). */
static uint64_t moved_per_token(const sym_pack_plan *p, uint64_t cap, int lookahead) {
    /* a mixture of experts reads only the routed experts: n_expert_used / n_expert of them */
    uint64_t full = p->n_expert > 0 ? p->routed_bytes_per_token : p->full_bytes_per_token;
    if (cap >= p->pow2_bytes) return 0; /* every pack fits at once: after the first token */
    uint64_t window = (uint64_t)(lookahead + 2) * p->largest_pack_bytes;
    uint64_t kept = cap > window ? cap - window : 0;
    if (kept >= p->total_bytes) return 0;
    return full > kept ? full - kept : 0;
}

static int split_threads(const sym_config *cfg) {
    if (cfg->n_threads > 0) return cfg->n_threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 3 ? (int)n - 2 : 1; /* the transfer and I/O threads need cores too */
}

/* The CPU's matrix-vector rate from RAM: the CPU backend's own f16 product over a buffer of at
 * most 512 MiB and half the RAM budget left (freed before the RAM tier is taken), best of three;
 * then, where vk and xfer are given, again while the transfer queue uploads meanwhile (both read
 * the same RAM: pl->cpu_gbps_loaded, pl->link_gbps_loaded). Creates pl->cpu. 0 if there is no
 * room for a meaningful measurement. */
/* One product on c: its seconds, or -1 on failure. */
static double timed_product(sym_backend *c, sym_tensor *out, const sym_tensor *x,
                           const sym_tensor *w) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    c->ops->matmul(c, out, x, w, NULL);
    return c->ops->sync(c) == SYM_OK ? secs_since(&t0) : -1;
}

static double measure_cpu(sym_placement *pl, const sym_config *cfg, sym_backend *vk, void *xfer) {
    uint64_t rss = rss_now() + RAM_MARGIN;
    uint64_t room = pl->ram_budget > rss ? (pl->ram_budget - rss) / 2 : 0;
    size_t bytes = room < (512ull << 20) ? (size_t)(room / (8 << 20) * (8 << 20)) : 512u << 20;
    if (bytes < (64u << 20)) return 0;
    void *buf = sym_map_pages(bytes); /* pages like the RAM tier's */
    if (!buf) return 0;
    memset(buf, 0x3c, bytes); /* f16 1.0-ish values */
    const int64_t cols = 4096, rows = (int64_t)(bytes / (2 * (size_t)cols));
    float *x = sym_calloc((size_t)cols + (size_t)rows, sizeof *x);
    double best = 0;
    if (x && sym_cpu_backend_create(split_threads(cfg), &pl->cpu) == SYM_OK) {
        sym_backend *c = pl->cpu;
        sym_tensor w = {.type = SYM_DT_F16, .n_cols = cols, .n_rows = rows, .data = buf};
        sym_tensor xv = {.type = SYM_DT_F32, .n_cols = cols, .n_rows = 1, .data = x};
        sym_tensor out = {.type = SYM_DT_F32, .n_cols = rows, .n_rows = 1, .data = x + cols};
        bool ok = true;
        for (int i = 0; i < 4 && ok; i++) {
            double s = timed_product(c, &out, &xv, &w);
            ok = s >= 0;
            if (ok && i > 0 && s > 0 && (double)bytes / s > best) best = (double)bytes / s;
        }
#ifdef SYM_HAVE_VULKAN
        link_load l;
        pthread_t th;
        if (ok && link_load_start(&l, vk, xfer, &th)) {
            /* a warm-up product, then the mean of eight while the link is busy throughout */
            double s = 0;
            for (int i = 0; i < 9 && ok; i++) {
                double si = timed_product(c, &out, &xv, &w);
                ok = si >= 0;
                if (ok && i > 0) s += si;
            }
            double u = link_load_stop(&l, th);
            if (ok && s > 0 && u > 0) {
                pl->cpu_gbps_loaded = 8.0 * (double)bytes / s / 1e9;
                pl->link_gbps_loaded = u;
            }
        }
#else
        (void)vk, (void)xfer;
#endif
    }
    sym_free(x);
    sym_unmap_pages(buf, bytes);
    return best / 1e9;
}

/* The CPU/GPU split of decode: when the weights stream over the link from a RAM tier that holds
 * them all, the CPU can compute a share X of the streamed bytes from RAM meanwhile. With the
 * CPU's rate c and the link's u, the token takes max(X / c, (S - X) / u) for S streamed bytes:
 * X = S c / (c + u). The CPU's packs are picked evenly through the schedule among the layers'
 * MLP packs. */
static sym_status plan_split(sym_placement *pl, const sym_config *cfg, const sym_model *m,
                             sym_forward_pass *f) {
    const sym_hparams *hp = sym_model_hparams(m);
    const sym_pack_plan *p = pl->plan;
    /* SYM_SPLIT_FRACTION (tests): the share of the layers' bytes the CPU takes, whatever the
     * rates */
    const char *force = getenv("SYM_SPLIT_FRACTION");
    double forced = force && *force ? atof(force) : -1;
    if (!pl->device || !cfg->cpu_gpu_split || hp->n_expert > 0 || hp->qkv_bias) return SYM_OK;
    if (forced < 0 && (pl->link_gbps <= 0 || pl->cpu_gbps <= 0 || pl->disk_bytes_per_token > 0 ||
                       pl->stream_bytes_per_token == 0))
        return SYM_OK;
    int threads = split_threads(cfg);
    double c = pl->cpu_gbps > 0 ? pl->cpu_gbps : 1.0;
    double u = pl->link_gbps, S = (double)pl->stream_bytes_per_token;
    /* the rates of the two working at once (they share the RAM) where measured;
     * SYM_SPLIT_RATES=alone (benchmarks) takes each measured alone */
    const char *rates = getenv("SYM_SPLIT_RATES");
    pl->split_rates_loaded = pl->cpu_gbps_loaded > 0 && pl->link_gbps_loaded > 0 &&
                             !(rates && !strcmp(rates, "alone"));
    if (pl->split_rates_loaded) {
        c = pl->cpu_gbps_loaded;
        u = pl->link_gbps_loaded;
    }
    double X = S * c / (c + u);
    if (forced < 0 && X < 0.05 * S) return SYM_OK; /* not worth a read-back per stage */
    /* MLP packs only: two read-backs per layer instead of four, and two thirds of the bytes */
    uint64_t eligible = 0;
    for (uint32_t i = 0; i < p->n_uses; i++) {
        const sym_pack *pk = &p->packs[p->schedule[i].pack_id];
        if (p->schedule[i].kind == SYM_PACK_USE_FULL && pk->type == SYM_PACK_MLP)
            eligible += pk->n_bytes;
    }
    if (!eligible) return SYM_OK;
    double t = forced >= 0 ? forced : X / (double)eligible;
    if (t > 0.9) t = 0.9;
    bool *cpu_pack = sym_calloc(p->n_packs, sizeof *cpu_pack);
    if (!cpu_pack) return SYM_FAIL(SYM_ERR_OOM, "placement: out of memory");
    /* whole layers' MLPs (default): the CPU computes gate, up and down of its layers, so its
     * down projection needs no second read-back; SYM_SPLIT_LAYERS=0 (benchmarks) picks packs */
    const char *layers = getenv("SYM_SPLIT_LAYERS");
    bool whole = !(layers && !strcmp(layers, "0"));
    uint64_t seen = 0, on_cpu = 0;
    uint64_t *layer_bytes = whole ? sym_calloc((size_t)hp->n_layer, sizeof *layer_bytes) : NULL;
    if (whole && !layer_bytes) {
        sym_free(cpu_pack);
        return SYM_FAIL(SYM_ERR_OOM, "placement: out of memory");
    }
    for (uint32_t i = 0; whole && i < p->n_uses; i++) {
        const sym_pack *pk = &p->packs[p->schedule[i].pack_id];
        if (p->schedule[i].kind == SYM_PACK_USE_FULL && pk->type == SYM_PACK_MLP &&
            pk->layer >= 0 && pk->layer < hp->n_layer)
            layer_bytes[pk->layer] += pk->n_bytes;
    }
    for (int l = 0; whole && l < hp->n_layer; l++) { /* evenly through the layers */
        uint64_t lb = layer_bytes[l];
        seen += lb;
        bool take = (double)(on_cpu + lb / 2) <= t * (double)seen;
        if (take) on_cpu += lb;
        layer_bytes[l] = take; /* from here on: the layer is the CPU's */
    }
    on_cpu = 0;
    for (uint32_t i = 0; i < p->n_uses; i++) {
        const sym_pack *pk = &p->packs[p->schedule[i].pack_id];
        if (p->schedule[i].kind != SYM_PACK_USE_FULL || pk->type != SYM_PACK_MLP) continue;
        bool mine;
        if (whole) {
            mine = pk->layer >= 0 && pk->layer < hp->n_layer && layer_bytes[pk->layer];
        } else {
            seen += pk->n_bytes;
            mine = (double)(on_cpu + pk->n_bytes / 2) <= t * (double)seen;
        }
        if (mine && !cpu_pack[pk->id]) {
            cpu_pack[pk->id] = true;
            on_cpu += pk->n_bytes;
        }
    }
    sym_free(layer_bytes);
    sym_status st = pl->cpu ? SYM_OK : sym_cpu_backend_create(threads, &pl->cpu);
    if (st == SYM_OK) st = sym_forward_set_split(f, pl->cpu, cpu_pack);
    sym_free(cpu_pack);
    if (st != SYM_OK) {
        if (pl->cpu) pl->cpu->ops->destroy(pl->cpu);
        pl->cpu = NULL;
        return st;
    }
    pl->split = true;
    pl->cpu_bytes_per_token = on_cpu;
    double gpu = S - (double)on_cpu;
    if (gpu < 0) gpu = 0;
    double tc = (double)on_cpu / (c * 1e9), tg = u > 0 ? gpu / (u * 1e9) : 0;
    pl->predicted_tok_s = tc > 0 || tg > 0 ? 1.0 / (tc > tg ? tc : tg) : 0;
    return SYM_OK;
}

/* The eviction policy of the pack manager (pl->plan made): the oracle is built on the plan. */
static sym_status choose_policy(sym_placement *pl, const sym_config *cfg,
                                sym_pack_manager_options *o) {
    sym_evict_choice c = cfg->eviction_policy;
    if (c == SYM_EVICT_CHOICE_AUTO)
        c = pl->plan->n_expert > 0 ? SYM_EVICT_CHOICE_ORACLE : SYM_EVICT_CHOICE_BELADY;
    if (c == SYM_EVICT_CHOICE_ORACLE) {
        sym_oracle_options oo;
        sym_oracle_options_init(&oo);
        oo.eviction_aggression = cfg->eviction_aggression;
        SYM_TRY(sym_oracle_create_for_plan(pl->plan, &oo, &pl->oracle));
        o->policy = sym_oracle_evict_policy(pl->oracle);
    } else {
        o->policy = c == SYM_EVICT_CHOICE_LRU ? sym_evict_policy_lru() : sym_evict_policy_belady();
    }
    pl->policy_name = o->policy.name;
    return SYM_OK;
}

/* A .sympack streams with the pack table it was written with: its packs are the units the
 * store compressed and checksummed, so the plan cannot be cut again. A pack size asked for in
 * the configuration that differs from the store's is an error, not a silent re-cut. */
static sym_status store_plan(sym_placement *pl, const sym_config *cfg, const sym_store *store) {
    const sym_pack_plan *p = sym_store_plan(store);
    if (cfg->max_pack_mb > 0) {
        uint64_t want;
        SYM_TRY(sym_pack_limit_from_mb(cfg->max_pack_mb, &want));
        SYM_CHECK(want == p->max_pack_bytes, SYM_ERR_CONFIG,
                  "%s was cut into packs of at most %.3g MiB when it was written, and a pack "
                  "store's packs cannot be cut again: max_pack_mb = %d (--max-pack-mb) asks for "
                  "%d MiB. Leave it at 0 (automatic: the store's packs), or repack with "
                  "`symbiote pack --max-pack-mb %d`",
                  sym_store_path(store), (double)p->max_pack_bytes / 1048576.0, cfg->max_pack_mb,
                  cfg->max_pack_mb, cfg->max_pack_mb);
    }
    pl->plan = (sym_pack_plan *)p; /* borrowed: the store owns it (plan_borrowed) */
    pl->plan_borrowed = true;
    pl->store_raw_bytes = sym_store_raw_bytes(store);
    pl->store_stored_bytes = sym_store_stored_bytes(store);
    return SYM_OK;
}

sym_status sym_placement_stream(sym_placement *pl, const sym_config *cfg, sym_backend *b,
                                const sym_model *m, sym_forward_pass *f, sym_pread_fn pread_fn,
                                void *pread_user) {
    sym_status st = SYM_OK;
    sym_backend *load_vk = NULL; /* with the transfer queue: the CPU rate is measured under load */
    void *load_xfer = NULL;
    const sym_store *store = sym_model_store(m);

    sym_pack_manager_options o;
    sym_pack_manager_options_init(&o);
    o.n_io_threads = 4;
    o.pread_fn = pread_fn;
    o.pread_user = pread_user;
    if (pl->device) {
        uint64_t held = b->ops->held_bytes ? b->ops->held_bytes(b) : 0;
#ifdef SYM_HAVE_VULKAN
        sym_backend *vk = vk_of(b);
        if (vk) {
            SYM_TRY(sym_vk_backend_reserve_scratch(vk, pl->kernel_scratch_bytes));
            held = b->ops->held_bytes(b);
            const sym_vk_caps *c = sym_vk_backend_caps(vk);
            o.device_max_alloc_bytes = c->max_memory_allocation_size < c->max_buffer_size
                                           ? c->max_memory_allocation_size
                                           : c->max_buffer_size;
            sym_vk_xfer *x;
            if (sym_vk_backend_xfer(vk, &x) == SYM_OK) {
                if (pl->vram_budget > held && pl->vram_budget - held >= LINK_TEST_BYTES) {
                    load_vk = vk; /* room for the load's buffer within the budget */
                    load_xfer = x;
                }
                pl->link_gbps = measure_link(vk, x, pl->vram_budget > held ? pl->vram_budget - held : 0);
                o.host_mem = (sym_tier_host_mem){
                    .alloc = (void *(*)(void *, size_t))sym_vk_xfer_host_alloc,
                    .free = (void (*)(void *, void *, size_t))sym_vk_xfer_host_free,
                    .user = x};
                o.upload = sym_vk_backend_upload;
                o.upload_thread = true;
                pl->direct_uploads = true;
            } else {
                SYM_WARN("vulkan: no upload queue (%s): uploads run on the compute queue",
                         sym_last_error());
            }
        }
#endif
        SYM_CHECK(pl->vram_budget > held, SYM_ERR_BUDGET,
                  "the VRAM budget of %.3f GB is taken by the KV cache, activations and scratch "
                  "(%.3f GB): need more than that plus room for at least one pack",
                  GB(pl->vram_budget), GB(held));
        pl->device_tier_bytes = pl->vram_budget - held;
        pl->tier = SYM_TIER_DEVICE;
    } else {
        pl->tier = SYM_TIER_RAM;
    }
    /* the plan: packs of max_pack_mb, or automatic — a sixteenth of the tier the ops read from,
     * as a power of two in 1..128 MiB (large packs keep the prefill GEMMs whole and the link busy
     * with few round trips; 16 of them leave room for the prefetch window) */
    sym_pack_options po;
    sym_pack_options_init(&po);
    if (store) {
        SYM_TRY(store_plan(pl, cfg, store));
    } else if (cfg->max_pack_mb > 0) {
        SYM_TRY(sym_pack_limit_from_mb(cfg->max_pack_mb, &po.max_pack_bytes));
    } else {
        uint64_t tier = pl->device ? pl->device_tier_bytes : pl->ram_budget - rss_now();
        uint64_t mb = 1;
        while (mb < 128 && (mb * 2 << 20) * 16 <= tier) mb *= 2;
        po.max_pack_bytes = mb << 20;
    }
    if (!store) SYM_TRY(sym_pack_plan_create(m, &po, &pl->plan));
    if (pl->device && pl->device_tier_bytes > pl->plan->pow2_bytes + pl->plan->largest_pack_bytes)
        pl->device_tier_bytes = pl->plan->pow2_bytes + pl->plan->largest_pack_bytes;
    o.device_budget_bytes = pl->device_tier_bytes;
    SYM_TRY(choose_policy(pl, cfg, &o));
    const sym_hparams *mhp = sym_model_hparams(m);
    if (pl->device && cfg->cpu_gpu_split && mhp->n_expert == 0 && !mhp->qkv_bias)
        pl->cpu_gbps = measure_cpu(pl, cfg, load_vk, load_xfer);
    uint64_t rss = rss_now() + RAM_MARGIN;
    SYM_CHECK(pl->ram_budget > rss, SYM_ERR_BUDGET,
              "the RAM budget of %.3f GB is taken by the process as it stands (%.3f GB with "
              "the KV cache, activations and the device driver): need more than that plus room "
              "for one pack (%.3f GB)",
              GB(pl->ram_budget), GB(rss), GB(pl->plan->largest_pack_bytes));
    pl->ram_tier_bytes = pl->ram_budget - rss;
    if (pl->ram_tier_cap && pl->ram_tier_bytes > pl->ram_tier_cap)
        pl->ram_tier_bytes = pl->ram_tier_cap;
    /* I/O staging: 4 threads of 4 MiB where there is room, else less; from a store, each thread
     * holds the largest stored pack and its decoder's scratch */
    uint64_t stg = (pl->plan->largest_pack_bytes + 4095) / 4096 * 4096;
    if (stg > o.staging_bytes) stg = o.staging_bytes;
    if (stg < (64u << 10)) stg = 64u << 10;
    o.staging_bytes = (size_t)stg;
    if (store) {
        o.store = store;
        stg = sym_store_reader_bytes(store);
    }
    if (pl->ram_tier_bytes < 16 * 4 * stg) o.n_io_threads = 1;
    uint64_t ram_useful = pl->plan->pow2_bytes + pl->plan->largest_pack_bytes +
                          (uint64_t)o.n_io_threads * stg;
    if (pl->ram_tier_bytes > ram_useful) pl->ram_tier_bytes = ram_useful;
    o.ram_budget_bytes = pl->ram_tier_bytes;


    int n_files = sym_model_n_files(m);
    const char *paths[64];
    SYM_CHECK(n_files > 0 && n_files <= 64, SYM_ERR_UNSUPPORTED, "streaming: %d model files",
              n_files);
    for (int i = 0; i < n_files; i++) paths[i] = sym_model_file_path(m, i);
    SYM_TRY(sym_pack_manager_create(pl->plan, paths, n_files, pl->device ? b : NULL, &o, &pl->pm));
    /* alloc zero-fills device memory in the compute stream: done before the transfer queue
     * writes packs there */
    SYM_TRY(b->ops->sync(b));
    int lookahead = cfg->prefetch_lookahead > 0 ? cfg->prefetch_lookahead : 0;
    SYM_TRY(sym_forward_set_packs(f, pl->pm, pl->plan, pl->tier, lookahead));

    /* the prediction */
    uint64_t cap = pl->device ? pl->device_tier_bytes : pl->ram_tier_bytes;
    pl->stream_bytes_per_token = moved_per_token(pl->plan, cap, lookahead);
    pl->disk_bytes_per_token = moved_per_token(pl->plan, pl->ram_tier_bytes, lookahead);
    if (store && pl->store_raw_bytes) /* a store's packs come off the disk compressed */
        pl->disk_bytes_per_token = (uint64_t)((double)pl->disk_bytes_per_token *
                                              (double)pl->store_stored_bytes /
                                              (double)pl->store_raw_bytes);
    if (store) {
        uint64_t cap_t = pl->device ? pl->device_tier_bytes : pl->ram_tier_bytes;
        if (pl->plan->largest_pack_bytes > cap_t / 4)
            SYM_WARN("%s: its packs (up to %.1f MiB, fixed when it was written) are large for a "
                     "%s tier of %.1f MiB: few fit beside the prefetch window (repack with a "
                     "smaller --max-pack-mb)",
                     sym_store_path(store), (double)pl->plan->largest_pack_bytes / 1048576.0,
                     pl->device ? "VRAM" : "RAM", (double)cap_t / 1048576.0);
    }
    if (pl->device && pl->link_gbps > 0 && pl->stream_bytes_per_token)
        pl->predicted_tok_s = pl->link_gbps * 1e9 / (double)pl->stream_bytes_per_token;
    SYM_TRY(plan_split(pl, cfg, m, f));
    if (!pl->split && pl->cpu) { /* measured, not needed */
        pl->cpu->ops->destroy(pl->cpu);
        pl->cpu = NULL;
    }
    char line[512];
    sym_placement_describe(pl, line, sizeof line);
    SYM_INFO("%s", line);
    return st;
}

void sym_placement_describe(const sym_placement *pl, char *buf, size_t cap) {
    if (!pl->streamed) {
        snprintf(buf, cap, "placement: resident — %.2f GB of weights and %.2f GB of cache and "
                 "activations in %s (budget %.2f GB); nothing moves per token",
                 GB(pl->weight_bytes), GB(pl->scratch_bytes), pl->device ? "VRAM" : "RAM",
                 GB(pl->device ? pl->vram_budget : pl->ram_budget));
        return;
    }
    char vram[64] = "";
    if (pl->device) snprintf(vram, sizeof vram, "VRAM tier %.2f GB, ", GB(pl->device_tier_bytes));
    int n = snprintf(buf, cap,
                     "placement: streaming %.2f GB of weights in %u packs — %sRAM tier %.2f GB, "
                     "eviction %s; per token %.2f GB %s",
                     GB(pl->weight_bytes), pl->plan ? pl->plan->n_packs : 0, vram,
                     GB(pl->ram_tier_bytes), pl->policy_name ? pl->policy_name : "belady",
                     GB(pl->stream_bytes_per_token),
                     pl->device ? "over the host link" : "from disk");
    const char *stored = pl->store_stored_bytes ? ", compressed" : "";
    if (n > 0 && (size_t)n < cap && pl->device)
        n += snprintf(buf + n, cap - (size_t)n, " (%.2f GB of it from disk%s)",
                      GB(pl->disk_bytes_per_token), stored);
    else if (n > 0 && (size_t)n < cap && pl->store_stored_bytes)
        n += snprintf(buf + n, cap - (size_t)n, " (%.2f GB read%s)", GB(pl->disk_bytes_per_token),
                      stored);
    if (n > 0 && (size_t)n < cap && pl->store_stored_bytes)
        n += snprintf(buf + n, cap - (size_t)n,
                      "; the .sympack's packs are read as stored (compression ratio %.3f) and "
                      "decompressed by the I/O threads",
                      (double)pl->store_raw_bytes / (double)pl->store_stored_bytes);
    if (n > 0 && (size_t)n < cap && pl->link_gbps > 0)
        n += snprintf(buf + n, cap - (size_t)n, "; link measured %.1f GB/s%s", pl->link_gbps,
                      pl->direct_uploads ? " (transfer queue, imported host memory)" : "");
    if (n > 0 && (size_t)n < cap && pl->split)
        n += snprintf(buf + n, cap - (size_t)n,
                      "; CPU/GPU split: the CPU decodes %.2f GB per token from RAM (its f16 "
                      "product measured at %.0f GB/s alone",
                      GB(pl->cpu_bytes_per_token), pl->cpu_gbps);
    if (n > 0 && (size_t)n < cap && pl->split && pl->cpu_gbps_loaded > 0)
        n += snprintf(buf + n, cap - (size_t)n,
                      ", %.0f GB/s while the link moves %.1f GB/s%s", pl->cpu_gbps_loaded,
                      pl->link_gbps_loaded, pl->split_rates_loaded ? ": planned with these" : "");
    if (n > 0 && (size_t)n < cap && pl->split)
        n += snprintf(buf + n, cap - (size_t)n, ")");
    if (n > 0 && (size_t)n < cap && pl->predicted_tok_s > 0)
        snprintf(buf + n, cap - (size_t)n, " -> predicted %.2f tok/s (%s)", pl->predicted_tok_s,
                 pl->split ? "link and CPU" : "upload-bound");
}

void sym_placement_destroy(sym_placement *pl) {
    if (pl->cpu) pl->cpu->ops->destroy(pl->cpu);
    pl->cpu = NULL;
    sym_pack_manager_destroy(pl->pm); /* before the oracle its policy reads */
    sym_oracle_destroy(pl->oracle);
    if (!pl->plan_borrowed) sym_pack_plan_destroy(pl->plan);
    pl->pm = NULL;
    pl->oracle = NULL;
    pl->plan = NULL;
}
