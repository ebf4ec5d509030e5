/* pack_manager.c — the pack manager's public functions: budgets and workers at create, then
 * get / release / prefetch / evict_until / unload / statistics, each under the one mutex; the
 * state machine of moves they drive is residency.c. */
#include "tier/pack_manager.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "base/alloc.h"
#include "tier/residency.h"

#define DEV       SYM_RES_DEV
#define RAM       SYM_RES_RAM
#define MIN_BLOCK ((uint64_t)SYM_PACK_RANGE_ALIGN)
#define GB(x)     ((double)(x) / 1e9)

typedef sym_res res;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t pow2ceil(uint64_t x) {
    uint64_t p = 1;
    while (p < x)
        p <<= 1;
    return p;
}

static uint64_t pow2floor(uint64_t x) {
    uint64_t p = 1;
    while (p <= x / 2)
        p <<= 1;
    return x ? p : 0;
}

static void *mmap_alloc(void *user, size_t bytes) {
    (void)user;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void mmap_free(void *user, void *ptr, size_t bytes) {
    (void)user;
    if (ptr) munmap(ptr, bytes);
}

void sym_pack_manager_options_init(sym_pack_manager_options *o) {
    memset(o, 0, sizeof *o);
    o->n_io_threads = 2;
    o->staging_bytes = 4u << 20;
    o->io_mode = SYM_IO_AUTO;
    o->policy = sym_evict_policy_belady();
}

/* ---- create / destroy ------------------------------------------------------------------------ */

/* The schedule positions of every pack (use_idx0 / use_pos, as evict.h describes). */
static sym_status index_schedule(sym_pack_manager *pm) {
    const sym_pack_plan *p = pm->plan;
    pm->use_idx0 = sym_calloc((size_t)p->n_packs + 1, sizeof *pm->use_idx0);
    pm->use_pos = sym_calloc(p->n_uses ? p->n_uses : 1, sizeof *pm->use_pos);
    if (!pm->use_idx0 || !pm->use_pos) return SYM_FAIL(SYM_ERR_OOM, "tier: out of memory");
    for (uint32_t i = 0; i < p->n_uses; i++) {
        SYM_CHECK(p->schedule[i].pack_id < p->n_packs, SYM_ERR_ARG,
                  "tier: schedule entry %u names pack %u of %u", i, p->schedule[i].pack_id,
                  p->n_packs);
        pm->use_idx0[p->schedule[i].pack_id + 1]++;
    }
    for (uint32_t k = 0; k < p->n_packs; k++)
        pm->use_idx0[k + 1] += pm->use_idx0[k];
    uint32_t *fill = pm->cands; /* scratch: next free slot per pack */
    memcpy(fill, pm->use_idx0, (size_t)p->n_packs * sizeof *fill);
    for (uint32_t i = 0; i < p->n_uses; i++)
        pm->use_pos[fill[p->schedule[i].pack_id]++] = i; /* ascending by construction */
    return SYM_OK;
}

/* The DEVICE tier: ceil(budget / max_alloc) backend allocations, each under a fractal. */
static sym_status create_device(sym_pack_manager *pm, uint64_t need, uint32_t largest_id) {
    const sym_pack_manager_options *o = &pm->o;
    uint64_t budget = o->device_budget_bytes;
    uint64_t max_alloc = o->device_max_alloc_bytes ? o->device_max_alloc_bytes : budget;
    if (max_alloc > budget) max_alloc = budget;
    max_alloc &= ~(MIN_BLOCK - 1);
    SYM_CHECK(pow2floor(max_alloc / MIN_BLOCK) * MIN_BLOCK >= need, SYM_ERR_BUDGET,
              "tier: the device budget of %llu bytes (%.3f GB) in allocations of at most %llu "
              "bytes cannot hold the largest pack (pack %u, %llu bytes, a %llu-byte buddy block): "
              "need at least %llu bytes (%.3f GB)%s",
              (unsigned long long)budget, GB(budget), (unsigned long long)max_alloc, largest_id,
              (unsigned long long)pm->plan->packs[largest_id].buffer_bytes,
              (unsigned long long)need, (unsigned long long)need, GB(need),
              max_alloc < budget ? " in one allocation" : "");
    uint64_t n = (budget + max_alloc - 1) / max_alloc;
    pm->blocks = sym_calloc((size_t)n, sizeof *pm->blocks);
    if (!pm->blocks) return SYM_FAIL(SYM_ERR_OOM, "tier: out of memory");
    uint64_t left = budget;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t bytes = (left < max_alloc ? left : max_alloc) & ~(MIN_BLOCK - 1);
        if (bytes < MIN_BLOCK) break;
        sym_res_block *b = &pm->blocks[pm->n_blocks];
        sym_status st = pm->dev->ops->alloc(pm->dev, &b->t, SYM_DT_F32, (int64_t)(bytes / 4), 1);
        if (st != SYM_OK) {
            sym_error_prefix("tier: device allocation %llu of %llu (%llu bytes)",
                             (unsigned long long)i + 1, (unsigned long long)n,
                             (unsigned long long)bytes);
            return st;
        }
        pm->n_blocks++;
        b->bytes = bytes;
        SYM_TRY(sym_fractal_create(bytes, MIN_BLOCK, &b->f));
        pm->st[DEV].capacity_bytes += bytes;
        left -= bytes;
    }
    return SYM_OK;
}

/* The RAM tier: the arena (a fractal over it) and the staging buffers. */
static sym_status create_ram(sym_pack_manager *pm, uint64_t need, uint32_t largest_id) {
    const sym_pack_manager_options *o = &pm->o;
    uint64_t budget = o->ram_budget_bytes;
    /* a store's packs are always read whole into staging, then decoded with the slot's scratch */
    bool store = sym_pack_io_store(pm->io) != NULL;
    int n_staging = store || sym_pack_io_any_direct(pm->io) ? o->n_io_threads : 0;
    uint64_t per_thread = o->staging_bytes + sym_pack_io_slot_bytes(pm->io);
    uint64_t staging = (uint64_t)n_staging * per_thread;
    SYM_CHECK(
        budget >= staging && budget - staging >= need, SYM_ERR_BUDGET,
        "tier: the RAM budget of %llu bytes (%.3f GB) cannot hold the largest pack (pack %u, "
        "%llu bytes, a %llu-byte buddy block) plus %d I/O %s of %llu bytes: "
        "need at least %llu bytes (%.3f GB)",
        (unsigned long long)budget, GB(budget), largest_id,
        (unsigned long long)pm->plan->packs[largest_id].buffer_bytes, (unsigned long long)need,
        n_staging, store ? "buffer(s) for stored bytes and decoding" : "staging buffer(s)",
        (unsigned long long)per_thread, (unsigned long long)(need + staging), GB(need + staging));
    pm->arena_bytes = (budget - staging) & ~(MIN_BLOCK - 1); /* still >= need, a power of two */
    pm->arena = pm->o.host_mem.alloc(pm->o.host_mem.user, (size_t)pm->arena_bytes);
    SYM_CHECK(pm->arena, SYM_ERR_OOM, "tier: cannot allocate the %llu-byte RAM arena",
              (unsigned long long)pm->arena_bytes);
    SYM_TRY(sym_fractal_create(pm->arena_bytes, MIN_BLOCK, &pm->arena_f));
    if (n_staging > 0) {
        pm->staging = sym_calloc((size_t)n_staging, sizeof *pm->staging);
        if (!pm->staging) return SYM_FAIL(SYM_ERR_OOM, "tier: out of memory");
        for (int i = 0; i < n_staging; i++) {
            pm->staging[i] = pm->o.host_mem.alloc(pm->o.host_mem.user, o->staging_bytes);
            SYM_CHECK(pm->staging[i], SYM_ERR_OOM,
                      "tier: cannot allocate a %zu-byte staging buffer", o->staging_bytes);
            pm->n_staging = i + 1;
        }
    }
    pm->st[RAM].staging_bytes = staging;
    pm->st[RAM].capacity_bytes = pm->arena_bytes + staging;
    pm->used[RAM] = staging;
    pm->st[RAM].high_water_bytes = staging;
    return SYM_OK;
}

sym_status sym_pack_manager_create(const sym_pack_plan *plan, const char *const *paths, int n_files,
                                   sym_backend *device, const sym_pack_manager_options *opts,
                                   sym_pack_manager **out) {
    sym_status st = SYM_OK;
    *out = NULL;
    SYM_CHECK(plan && opts && plan->n_packs > 0 && plan->n_uses > 0, SYM_ERR_ARG,
              "tier: no plan or options");
    sym_pack_manager_options o = *opts;
    if (!o.policy.fn) o.policy = sym_evict_policy_belady();
    if (!o.host_mem.alloc) o.host_mem = (sym_tier_host_mem){.alloc = mmap_alloc, .free = mmap_free};
    if (o.n_io_threads <= 0) o.n_io_threads = 2;
    if (o.staging_bytes == 0) o.staging_bytes = 4u << 20;
    SYM_CHECK(o.ram_budget_bytes > 0, SYM_ERR_ARG, "tier: no RAM budget");
    SYM_CHECK(o.device_budget_bytes == 0 || device, SYM_ERR_ARG,
              "tier: a device budget without a device backend");
    SYM_CHECK(o.staging_bytes % SYM_PACK_IO_ALIGN == 0, SYM_ERR_ARG,
              "tier: staging of %zu bytes is not a multiple of %u", o.staging_bytes,
              SYM_PACK_IO_ALIGN);
    SYM_CHECK(o.n_io_threads <= 64, SYM_ERR_ARG, "tier: %d I/O threads (at most 64)",
              o.n_io_threads);
    sym_pack_manager *pm = sym_calloc(1, sizeof *pm);
    if (!pm) return SYM_FAIL(SYM_ERR_OOM, "tier: out of memory");
    pm->plan = plan;
    pm->o = o;
    pm->dev = o.device_budget_bytes ? device : NULL;
    pm->owner = pthread_self();
    pthread_mutex_init(&pm->mu, NULL);
    pthread_cond_init(&pm->changed, NULL);
    pm->packs = sym_calloc(plan->n_packs, sizeof *pm->packs);
    pm->cands = sym_calloc(plan->n_packs, sizeof *pm->cands);
    for (int t = 0; t < SYM_TIER_N_MEM; t++)
        pm->last_tick[t] = sym_calloc(plan->n_packs, sizeof *pm->last_tick[t]);
    if (!pm->packs || !pm->cands || !pm->last_tick[0] || !pm->last_tick[1])
        SYM_FAIL_GOTO(SYM_ERR_OOM, "tier: out of memory");
    SYM_TRY_GOTO(index_schedule(pm));

    uint32_t largest = 0;
    for (uint32_t i = 1; i < plan->n_packs; i++)
        if (plan->packs[i].buffer_bytes > plan->packs[largest].buffer_bytes) largest = i;
    uint64_t bytes = plan->packs[largest].buffer_bytes;
    uint64_t need = pow2ceil(bytes > MIN_BLOCK ? bytes : MIN_BLOCK);

    if (o.store) {
        if (plan != sym_store_plan(o.store))
            SYM_FAIL_GOTO(SYM_ERR_ARG, "tier: streaming a pack store needs the store's own plan");
        SYM_TRY_GOTO(sym_pack_io_open_store(o.store, o.n_io_threads, o.io_mode, o.pread_fn,
                                            o.pread_user, &pm->io));
        pm->o.staging_bytes = (size_t)sym_pack_io_staging_need(pm->io);
    } else {
        SYM_TRY_GOTO(
            sym_pack_io_open(plan, paths, n_files, o.io_mode, o.pread_fn, o.pread_user, &pm->io));
    }
    pm->st[DEV].budget_bytes = o.device_budget_bytes;
    pm->st[RAM].budget_bytes = o.ram_budget_bytes;
    if (pm->dev) SYM_TRY_GOTO(create_device(pm, need, largest));
    SYM_TRY_GOTO(create_ram(pm, need, largest));

    sym_scheduler_options so = {.plan = plan,
                                .io = pm->io,
                                .n_io_threads = o.n_io_threads,
                                .staging = pm->staging,
                                .staging_bytes = pm->o.staging_bytes,
                                .backend = pm->dev,
                                .upload = o.upload,
                                .upload_user = o.upload_user,
                                .upload_thread = o.upload_thread && pm->dev,
                                .done = sym_residency_on_done,
                                .done_user = pm};
    SYM_TRY_GOTO(sym_scheduler_create(&so, &pm->sched));
    *out = pm;
    return SYM_OK;
fail:
    sym_pack_manager_destroy(pm);
    return st;
}

void sym_pack_manager_destroy(sym_pack_manager *pm) {
    if (!pm) return;
    sym_scheduler_destroy(pm->sched); /* running moves finish and report first */
    for (uint32_t i = 0; i < pm->n_blocks; i++) {
        sym_fractal_destroy(pm->blocks[i].f);
        pm->dev->ops->release(pm->dev, &pm->blocks[i].t);
    }
    sym_free(pm->blocks);
    for (int i = 0; i < pm->n_staging; i++)
        pm->o.host_mem.free(pm->o.host_mem.user, pm->staging[i], pm->o.staging_bytes);
    sym_free(pm->staging);
    sym_fractal_destroy(pm->arena_f);
    if (pm->arena) pm->o.host_mem.free(pm->o.host_mem.user, pm->arena, (size_t)pm->arena_bytes);
    sym_pack_io_close(pm->io);
    for (int t = 0; t < SYM_TIER_N_MEM; t++)
        sym_free(pm->last_tick[t]);
    sym_free(pm->use_idx0);
    sym_free(pm->use_pos);
    sym_free(pm->cands);
    sym_free(pm->packs);
    pthread_cond_destroy(&pm->changed);
    pthread_mutex_destroy(&pm->mu);
    sym_free(pm);
}

/* ---- get / release / prefetch ---------------------------------------------------------------- */

static bool mem_tier(const sym_pack_manager *pm, sym_tier t) {
    return t == SYM_TIER_RAM || (t == SYM_TIER_DEVICE && pm->dev);
}

sym_status sym_pack_manager_get(sym_pack_manager *pm, uint32_t pack_id, sym_tier tier,
                                sym_pack_handle *h) {
    memset(h, 0, sizeof *h);
    SYM_CHECK(pack_id < pm->plan->n_packs, SYM_ERR_ARG, "tier: pack %u of %u", pack_id,
              pm->plan->n_packs);
    SYM_CHECK(mem_tier(pm, tier), SYM_ERR_ARG, "tier: cannot get a pack in %s%s",
              sym_tier_name(tier), tier == SYM_TIER_DEVICE ? " (no device tier)" : "");
    SYM_CHECK(tier != SYM_TIER_DEVICE || pm->o.upload_thread ||
                  pthread_equal(pthread_self(), pm->owner),
              SYM_ERR_ARG, "tier: get(DEVICE) uploads on the thread that created the manager");
    int t = (int)tier;
    pthread_mutex_lock(&pm->mu);
    sym_res_pack *ps = &pm->packs[pack_id];
    res *r = &ps->r[t];
    sym_residency_move_cursor(pm, pack_id);
    pm->last_tick[t][pack_id] = ++pm->tick;
    uint32_t seen[SYM_TIER_N_MEM] = {ps->r[0].fail_seq, ps->r[1].fail_seq};
    uint64_t ex = pm->plan->packs[pack_id].type == SYM_PACK_EXPERT;
    sym_status st = SYM_OK;
    if (r->state == SYM_RES_READY) {
        pm->st[t].hits++;
        pm->st[t].expert_hits += ex;
        if (r->by_prefetch) pm->st[t].prefetch_hits++;
    } else {
        uint64_t t0 = now_ns();
        pm->st[t].misses++;
        pm->st[t].expert_misses += ex;
        if (t == DEV) {
            bool in_ram = ps->r[RAM].state == SYM_RES_READY;
            pm->st[RAM].hits += in_ram;
            pm->st[RAM].misses += !in_ram;
            pm->st[RAM].expert_hits += ex && in_ram;
            pm->st[RAM].expert_misses += ex && !in_ram;
        }
        st = sym_residency_bring(pm, pack_id, t, seen);
        pm->st[t].stall_ns += now_ns() - t0;
    }
    if (st == SYM_OK) {
        r->by_prefetch = false;
        r->cancelled = false; /* an unload waiting for an upload to finish is overruled */
        r->pins++;
        *h = (sym_pack_handle){
            .pack_id = pack_id, .tier = tier, .place = sym_residency_place(pm, t, r)};
    }
    pthread_mutex_unlock(&pm->mu);
    return st;
}

sym_status sym_pack_manager_release(sym_pack_manager *pm, sym_pack_handle *h) {
    SYM_CHECK(h && h->pack_id < pm->plan->n_packs && mem_tier(pm, h->tier), SYM_ERR_ARG,
              "tier: release of an invalid handle");
    pthread_mutex_lock(&pm->mu);
    res *r = &pm->packs[h->pack_id].r[h->tier];
    bool ok = r->state == SYM_RES_READY && r->pins > 0;
    if (ok) r->pins--;
    pthread_mutex_unlock(&pm->mu);
    SYM_CHECK(ok, SYM_ERR_ARG, "tier: release of pack %u in %s, which holds no pin", h->pack_id,
              sym_tier_name(h->tier));
    memset(h, 0, sizeof *h);
    return SYM_OK;
}

sym_status sym_pack_manager_view(const sym_pack_manager *pm, const sym_pack_handle *h,
                                 uint32_t piece_idx, sym_tensor *out) {
    return sym_tier_piece_view(pm->plan, h->pack_id, &h->place, piece_idx, out);
}

sym_status sym_pack_manager_prefetch(sym_pack_manager *pm, uint32_t pack_id, sym_tier tier) {
    SYM_CHECK(pack_id < pm->plan->n_packs, SYM_ERR_ARG, "tier: pack %u of %u", pack_id,
              pm->plan->n_packs);
    SYM_CHECK(mem_tier(pm, tier), SYM_ERR_ARG, "tier: cannot prefetch into %s",
              sym_tier_name(tier));
    pthread_mutex_lock(&pm->mu);
    sym_status st = sym_residency_prefetch(pm, pack_id, (int)tier);
    pthread_mutex_unlock(&pm->mu);
    return st;
}

uint32_t sym_pack_manager_prefetch_ahead(sym_pack_manager *pm, sym_tier tier, uint32_t n_uses) {
    if (!mem_tier(pm, tier)) return 0;
    const sym_pack_plan *p = pm->plan;
    uint32_t n = 0;
    pthread_mutex_lock(&pm->mu);
    for (uint32_t i = 0; i < n_uses && i < p->n_uses; i++) {
        uint32_t id = p->schedule[(pm->next_pos + i) % p->n_uses].pack_id;
        if (sym_residency_prefetch(pm, id, (int)tier) != SYM_OK) break;
        n++;
    }
    pthread_mutex_unlock(&pm->mu);
    return n;
}

/* ---- evict / unload / poll ------------------------------------------------------------------- */

sym_status sym_pack_manager_evict_until(sym_pack_manager *pm, sym_tier tier, uint64_t free_bytes) {
    SYM_CHECK(mem_tier(pm, tier), SYM_ERR_ARG, "tier: cannot evict from %s", sym_tier_name(tier));
    pthread_mutex_lock(&pm->mu);
    sym_status st = sym_residency_evict_until(pm, (int)tier, free_bytes);
    pthread_mutex_unlock(&pm->mu);
    return st;
}

sym_status sym_pack_manager_unload(sym_pack_manager *pm, uint32_t pack_id, sym_tier tier) {
    SYM_CHECK(pack_id < pm->plan->n_packs && (unsigned)tier < SYM_TIER_COUNT, SYM_ERR_ARG,
              "tier: unload of pack %u from tier %d", pack_id, (int)tier);
    sym_status st = SYM_OK;
    pthread_mutex_lock(&pm->mu);
    sym_res_pack *ps = &pm->packs[pack_id];
    if (tier == SYM_TIER_DISK || tier == SYM_TIER_UNLOADED) {
        /* all or nothing: refuse before dropping anything */
        for (int t = 0; t < SYM_TIER_N_MEM && st == SYM_OK; t++)
            if (ps->r[t].pins)
                st = SYM_FAIL(SYM_ERR_ARG, "tier: pack %u is pinned in %s by %u handle(s)", pack_id,
                              sym_tier_name((sym_tier)t), ps->r[t].pins);
        if (st == SYM_OK && pm->dev) st = sym_residency_unload(pm, pack_id, DEV);
        if (st == SYM_OK) st = sym_residency_unload(pm, pack_id, RAM);
    } else if (mem_tier(pm, tier)) {
        st = sym_residency_unload(pm, pack_id, (int)tier);
    }
    pthread_cond_broadcast(&pm->changed);
    pthread_mutex_unlock(&pm->mu);
    return st;
}

int sym_pack_manager_poll(sym_pack_manager *pm) {
    if (pm->o.upload_thread || !pm->dev || !pthread_equal(pthread_self(), pm->owner)) return 0;
    return sym_scheduler_run_uploads(pm->sched, UINT32_MAX, INT32_MAX);
}

/* ---- queries --------------------------------------------------------------------------------- */

sym_tier sym_pack_manager_tier_of(sym_pack_manager *pm, uint32_t pack_id) {
    if (pack_id >= pm->plan->n_packs) return SYM_TIER_DISK;
    pthread_mutex_lock(&pm->mu);
    sym_tier t = SYM_TIER_DISK;
    if (pm->packs[pack_id].r[RAM].state == SYM_RES_READY) t = SYM_TIER_RAM;
    if (pm->packs[pack_id].r[DEV].state == SYM_RES_READY) t = SYM_TIER_DEVICE;
    pthread_mutex_unlock(&pm->mu);
    return t;
}

void sym_pack_manager_set_position(sym_pack_manager *pm, uint32_t use_idx) {
    pthread_mutex_lock(&pm->mu);
    uint32_t n = pm->plan->n_uses, pos = use_idx % n;
    pm->abs_next += (pos + n - pm->next_pos) % n;
    pm->next_pos = pos;
    pthread_mutex_unlock(&pm->mu);
}

void sym_pack_manager_stats(sym_pack_manager *pm, sym_tier tier, sym_tier_stats *out) {
    memset(out, 0, sizeof *out);
    if ((unsigned)tier >= SYM_TIER_N_MEM) return;
    pthread_mutex_lock(&pm->mu);
    *out = pm->st[tier];
    out->used_bytes = pm->used[tier];
    for (uint32_t i = 0; i < pm->plan->n_packs; i++)
        out->n_resident += pm->packs[i].r[tier].state == SYM_RES_READY;
    pthread_mutex_unlock(&pm->mu);
}

bool sym_pack_manager_direct_io(const sym_pack_manager *pm, int file_idx) {
    return sym_pack_io_is_direct(pm->io, file_idx);
}

const char *sym_pack_manager_io_note(const sym_pack_manager *pm, int file_idx) {
    return sym_pack_io_note(pm->io, file_idx);
}

/* ---- invariants ------------------------------------------------------------------------------ */

static sym_status check_locked(sym_pack_manager *pm) {
    const sym_pack_plan *p = pm->plan;
    for (int t = 0; t < SYM_TIER_N_MEM; t++) {
        if (t == DEV && !pm->dev) continue;
        const char *tn = sym_tier_name((sym_tier)t);
        uint64_t used = t == RAM ? pm->st[RAM].staging_bytes : 0;
        uint32_t transient = 0;
        for (uint32_t i = 0; i < p->n_packs; i++) {
            const res *r = &pm->packs[i].r[t];
            if (r->state == SYM_RES_ABSENT) {
                SYM_CHECK(!r->pins && !r->busy && !r->upload_queued, SYM_ERR_INTERNAL,
                          "tier: %s: absent pack %u has pins or a job", tn, i);
                continue;
            }
            sym_fractal_block b;
            sym_fractal *f = t == RAM ? pm->arena_f : pm->blocks[r->block].f;
            SYM_CHECK(sym_fractal_lookup(f, r->offset, &b) && b.tag == i &&
                          b.requested_bytes == p->packs[i].buffer_bytes,
                      SYM_ERR_INTERNAL, "tier: %s: pack %u's block is not its own", tn, i);
            used += b.block_bytes;
            transient += r->state == SYM_RES_LOADING || r->busy;
            SYM_CHECK(r->state == SYM_RES_READY || (!r->pins && !r->busy), SYM_ERR_INTERNAL,
                      "tier: %s: loading pack %u is pinned", tn, i);
            SYM_CHECK(!r->busy || (pm->packs[i].r[DEV].state == SYM_RES_LOADING &&
                                   pm->packs[i].r[DEV].upload_queued),
                      SYM_ERR_INTERNAL, "tier: pack %u's RAM copy is busy with no upload", i);
        }
        uint64_t fr_used = 0;
        if (t == RAM) {
            sym_fractal_stats fs;
            SYM_TRY(sym_fractal_check(pm->arena_f));
            sym_fractal_stats_get(pm->arena_f, &fs);
            fr_used = fs.used_bytes + pm->st[RAM].staging_bytes;
        } else {
            for (uint32_t b = 0; b < pm->n_blocks; b++) {
                sym_fractal_stats fs;
                SYM_TRY(sym_fractal_check(pm->blocks[b].f));
                sym_fractal_stats_get(pm->blocks[b].f, &fs);
                fr_used += fs.used_bytes;
            }
        }
        SYM_CHECK(used == pm->used[t] && fr_used == used, SYM_ERR_INTERNAL,
                  "tier: %s: blocks of packs %llu, counted %llu, allocators %llu", tn,
                  (unsigned long long)used, (unsigned long long)pm->used[t],
                  (unsigned long long)fr_used);
        SYM_CHECK(transient == pm->n_transient[t], SYM_ERR_INTERNAL,
                  "tier: %s: %u moves in flight, counted %u", tn, transient, pm->n_transient[t]);
        SYM_CHECK(pm->st[t].capacity_bytes <= pm->st[t].budget_bytes &&
                      pm->st[t].high_water_bytes <= pm->st[t].budget_bytes &&
                      used <= pm->st[t].high_water_bytes,
                  SYM_ERR_INTERNAL, "tier: %s: high water %llu, capacity %llu, budget %llu", tn,
                  (unsigned long long)pm->st[t].high_water_bytes,
                  (unsigned long long)pm->st[t].capacity_bytes,
                  (unsigned long long)pm->st[t].budget_bytes);
    }
    return SYM_OK;
}

sym_status sym_pack_manager_check(sym_pack_manager *pm) {
    pthread_mutex_lock(&pm->mu);
    sym_status st = check_locked(pm);
    pthread_mutex_unlock(&pm->mu);
    return st;
}
