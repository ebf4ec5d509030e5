/* placement.c — budgets, the resident/streamed decision, the pack manager's set-up. */
#include "infer/placement.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
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

static sym_backend *vk_of(sym_backend *b) {
#ifdef SYM_HAVE_VULKAN
    return sym_vk_backend_is(b) ? b : NULL;
#else
    (void)b;
    return NULL;
#endif
}

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
    uint64_t k = (uint64_t)hp->n_embd;
    if ((uint64_t)hp->n_ff > k) k = (uint64_t)hp->n_ff;
    if ((uint64_t)hp->n_head * hp->head_dim > k) k = (uint64_t)hp->n_head * hp->head_dim;
    uint64_t nb = (uint64_t)(fo->n_batch < fo->n_ctx ? fo->n_batch : fo->n_ctx);
    return sym_vk_backend_scratch_bound(b, nb, k, (uint64_t)hp->n_head, (uint64_t)hp->head_dim);
#else
    (void)b, (void)hp, (void)fo;
    return 0;
#endif
}

sym_status sym_placement_decide(sym_placement *pl, const sym_config *cfg, sym_backend *b,
                                bool device, const sym_model *m, sym_forward_options *fo,
                                bool n_batch_given) {
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
    if (!budget || base + pl->weight_bytes + pl->scratch_bytes <= budget) return SYM_OK;

    /* streamed: a prefill chunk big enough that each pack moves once per 512 tokens */
    fo->streamed = 1;
    pl->streamed = true;
    if (!n_batch_given && fo->n_batch < STREAM_BATCH) fo->n_batch = STREAM_BATCH;
    if (fo->n_batch > fo->n_ctx) fo->n_batch = fo->n_ctx;
    pl->scratch_bytes = sym_forward_scratch_bytes(hp, fo) + kernel_scratch(b, hp, fo) +
                        sym_forward_vector_bytes(m);
    SYM_CHECK(pl->scratch_bytes < budget, SYM_ERR_BUDGET,
              "the %s budget of %.3f GB cannot hold the KV cache, activations and scratch "
              "(%.3f GB for a context of %d and chunks of %d tokens): need at least %.3f GB plus "
              "room for one pack; lower --ctx-size or raise --%s-gb",
              device ? "VRAM" : "RAM", GB(budget), GB(pl->scratch_bytes), fo->n_ctx, fo->n_batch,
              GB(pl->scratch_bytes), device ? "vram" : "ram");
    return SYM_OK;
}

#ifdef SYM_HAVE_VULKAN
/* Host -> device rate through the transfer queue: three 64 MiB copies (the first warms up). */
static double measure_link(sym_backend *vk, sym_vk_xfer *x, uint64_t room) {
    const uint64_t n = 64ull << 20;
    if (room < n) return 0;
    void *host = sym_vk_xfer_host_alloc(x, n);
    if (!host) return 0;
    sym_tensor t;
    double gbps = 0;
    if (vk->ops->alloc(vk, &t, SYM_DT_F32, (int64_t)(n / 4), 1) == SYM_OK &&
        vk->ops->sync(vk) == SYM_OK) {
        struct timespec t0, t1;
        double best = 0;
        for (int i = 0; i < 3; i++) {
            clock_gettime(CLOCK_MONOTONIC, &t0);
            if (sym_vk_backend_upload(NULL, vk, &t, host, n) != SYM_OK) break;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
            if (i > 0 && s > 0 && (double)n / s / 1e9 > best) best = (double)n / s / 1e9;
        }
        gbps = best;
        vk->ops->release(vk, &t);
    }
    sym_vk_xfer_host_free(x, host, n);
    return gbps;
}
#endif

/* Bytes a cyclic scan moves per token into a tier of capacity cap (Belady keeps what fits
 * beside the window of packs in use and prefetched). */
static uint64_t moved_per_token(const sym_pack_plan *p, uint64_t cap, int lookahead) {
    uint64_t full = p->full_bytes_per_token;
    uint64_t window = (uint64_t)(lookahead + 2) * p->largest_pack_bytes;
    uint64_t kept = cap > window ? cap - window : 0;
    if (kept >= p->total_bytes) return 0;
    return full > kept ? full - kept : 0;
}

sym_status sym_placement_stream(sym_placement *pl, const sym_config *cfg, sym_backend *b,
                                const sym_model *m, sym_forward_pass *f, sym_pread_fn pread_fn,
                                void *pread_user) {
    sym_status st = SYM_OK;
    SYM_CHECK(sym_model_format_of(m) != SYM_MODEL_SYMPACK, SYM_ERR_UNSUPPORTED,
              "streaming a .sympack is not supported yet (its packs are decompressed into RAM at "
              "open): run the GGUF it was made from, or raise the budget to hold the model");

    sym_pack_manager_options o;
    sym_pack_manager_options_init(&o);
    o.n_io_threads = 4;
    o.pread_fn = pread_fn;
    o.pread_user = pread_user;
    sym_backend *vk = vk_of(b);
    if (pl->device) {
        uint64_t held = b->ops->held_bytes ? b->ops->held_bytes(b) : 0;
#ifdef SYM_HAVE_VULKAN
        if (vk) {
            const sym_hparams *hp = sym_model_hparams(m);
            uint64_t k = (uint64_t)hp->n_embd;
            if ((uint64_t)hp->n_ff > k) k = (uint64_t)hp->n_ff;
            if ((uint64_t)hp->n_head * hp->head_dim > k) k = (uint64_t)hp->n_head * hp->head_dim;
            SYM_TRY(sym_vk_backend_reserve_scratch(
                vk, sym_vk_backend_scratch_bound(vk, (uint64_t)sym_forward_n_batch(f), k,
                                                 (uint64_t)hp->n_head, (uint64_t)hp->head_dim)));
            held = b->ops->held_bytes(b);
            const sym_vk_caps *c = sym_vk_backend_caps(vk);
            o.device_max_alloc_bytes = c->max_memory_allocation_size < c->max_buffer_size
                                           ? c->max_memory_allocation_size
                                           : c->max_buffer_size;
            sym_vk_xfer *x;
            if (sym_vk_backend_xfer(vk, &x) == SYM_OK) {
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
                  "(%.3f GB): need more than that plus room for one pack (%.3f GB)",
                  GB(pl->vram_budget), GB(held), GB(pl->plan->largest_pack_bytes));
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
    if (cfg->max_pack_mb > 0) {
        SYM_TRY(sym_pack_limit_from_mb(cfg->max_pack_mb, &po.max_pack_bytes));
    } else {
        uint64_t tier = pl->device ? pl->device_tier_bytes : pl->ram_budget - rss_now();
        uint64_t mb = 1;
        while (mb < 128 && (mb * 2 << 20) * 16 <= tier) mb *= 2;
        po.max_pack_bytes = mb << 20;
    }
    SYM_TRY(sym_pack_plan_create(m, &po, &pl->plan));
    if (pl->device && pl->device_tier_bytes > pl->plan->pow2_bytes + pl->plan->largest_pack_bytes)
        pl->device_tier_bytes = pl->plan->pow2_bytes + pl->plan->largest_pack_bytes;
    o.device_budget_bytes = pl->device_tier_bytes;
    uint64_t rss = rss_now() + RAM_MARGIN;
    SYM_CHECK(pl->ram_budget > rss, SYM_ERR_BUDGET,
              "the RAM budget of %.3f GB is taken by the process as it stands (%.3f GB with "
              "the KV cache, activations and the device driver): need more than that plus room "
              "for one pack (%.3f GB)",
              GB(pl->ram_budget), GB(rss), GB(pl->plan->largest_pack_bytes));
    pl->ram_tier_bytes = pl->ram_budget - rss;
    /* I/O staging: 4 threads of 4 MiB where there is room, else less */
    uint64_t stg = (pl->plan->largest_pack_bytes + 4095) / 4096 * 4096;
    if (stg > o.staging_bytes) stg = o.staging_bytes;
    if (stg < (64u << 10)) stg = 64u << 10;
    o.staging_bytes = (size_t)stg;
    if (pl->ram_tier_bytes < 16 * 4 * stg) o.n_io_threads = 1;
    uint64_t ram_useful = pl->plan->pow2_bytes + pl->plan->largest_pack_bytes +
                          (uint64_t)o.n_io_threads * o.staging_bytes;
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
    if (pl->device && pl->link_gbps > 0 && pl->stream_bytes_per_token)
        pl->predicted_tok_s = pl->link_gbps * 1e9 / (double)pl->stream_bytes_per_token;
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
                     "placement: streaming %.2f GB of weights in %u packs — %sRAM tier %.2f GB; "
                     "per token %.2f GB %s",
                     GB(pl->weight_bytes), pl->plan ? pl->plan->n_packs : 0, vram,
                     GB(pl->ram_tier_bytes),
                     GB(pl->stream_bytes_per_token),
                     pl->device ? "over the host link" : "from disk");
    if (n > 0 && (size_t)n < cap && pl->device)
        n += snprintf(buf + n, cap - (size_t)n, " (%.2f GB of it from disk)",
                      GB(pl->disk_bytes_per_token));
    if (n > 0 && (size_t)n < cap && pl->link_gbps > 0)
        n += snprintf(buf + n, cap - (size_t)n, "; link measured %.1f GB/s%s", pl->link_gbps,
                      pl->direct_uploads ? " (transfer queue, imported host memory)" : "");
    if (n > 0 && (size_t)n < cap && pl->predicted_tok_s > 0)
        snprintf(buf + n, cap - (size_t)n, " -> predicted %.2f tok/s (upload-bound)",
                 pl->predicted_tok_s);
}

void sym_placement_destroy(sym_placement *pl) {
    sym_pack_manager_destroy(pl->pm);
    sym_pack_plan_destroy(pl->plan);
    pl->pm = NULL;
    pl->plan = NULL;
}
