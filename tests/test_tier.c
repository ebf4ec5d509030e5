/* The pack manager and scheduler on models cut into packs of a few KB, under budgets of a few
 * packs: after every get the pack's bytes in the tier equal the file's (read back through the
 * backend for DEVICE, the CPU backend playing the device); the manager's invariants hold after
 * every step; the memory really allocated (device allocations, host arena and staging, counted by
 * wrappers) and the high-water marks never exceed the budgets; budgets below the minimum working
 * set fail at create saying what is needed; Belady moves no more bytes than LRU on the cyclic
 * schedule (fewer when more than one pack fits) and the vitality oracle as the policy moves
 * exactly what Belady moves; random operation sequences; pinned-full tiers
 * fail with SYM_ERR_BUDGET instead of hanging; concurrent gets and prefetches; shutdown with
 * moves in flight; the scheduler runs jobs in priority order, honours cancel and reprioritize.
 * Faults (failing reads and allocations, cancellation, the page cache) are in
 * test_tier_faults.c. Run under ASan and TSan too. */
#include "tier/oracle.h"
#include "tier_util.h"

#define STAGING 8192u

static test_rng g_rng;

/* Options for budgets in units of fx->need (plus staging for RAM when direct). */
static sym_pack_manager_options opts_for(const fixture *fx, double dev_units, double ram_units,
                                         sym_io_mode io) {
    sym_pack_manager_options o;
    sym_pack_manager_options_init(&o);
    o.device_budget_bytes = (uint64_t)(dev_units * (double)fx->need);
    o.ram_budget_bytes = (uint64_t)(ram_units * (double)fx->need) + 2 * STAGING;
    o.staging_bytes = STAGING;
    o.io_mode = io;
    return o;
}

/* Creates a manager with counted host memory and the wrapped device. */
static sym_status make(const fixture *fx, sym_pack_manager_options *o, dev_wrap *dw, host_count *hc,
                       sym_pack_manager **pm) {
    if (hc) o->host_mem = hc_mem(hc); /* else the default: populated anonymous mmap */
    return sym_pack_manager_create(fx->plan, fx->paths, 1,
                                   o->device_budget_bytes ? &dw->base : NULL, o, pm);
}

/* Budgets held: high-water marks, and what was really allocated. */
static void check_budgets(const fixture *fx, sym_pack_manager *pm, const dev_wrap *dw,
                          host_count *hc, const sym_pack_manager_options *o) {
    sym_tier_stats d, r;
    sym_pack_manager_stats(pm, SYM_TIER_DEVICE, &d);
    sym_pack_manager_stats(pm, SYM_TIER_RAM, &r);
    CHECK(r.high_water_bytes <= o->ram_budget_bytes && r.capacity_bytes <= o->ram_budget_bytes,
          "%s: RAM high water %llu, capacity %llu, budget %llu", fx->name,
          (unsigned long long)r.high_water_bytes, (unsigned long long)r.capacity_bytes,
          (unsigned long long)o->ram_budget_bytes);
    CHECK(!hc || atomic_load(&hc->peak) <= o->ram_budget_bytes,
          "%s: host memory %llu > budget %llu", fx->name,
          hc ? (unsigned long long)atomic_load(&hc->peak) : 0ull,
          (unsigned long long)o->ram_budget_bytes);
    CHECK(d.high_water_bytes <= o->device_budget_bytes && dw->peak_bytes <= o->device_budget_bytes,
          "%s: device high water %llu, allocated %llu, budget %llu", fx->name,
          (unsigned long long)d.high_water_bytes, (unsigned long long)dw->peak_bytes,
          (unsigned long long)o->device_budget_bytes);
}

/* ---- minimum budgets ------------------------------------------------------------------------- */

static bool says_needed(uint64_t need) {
    char num[64];
    snprintf(num, sizeof num, "need at least %llu bytes", (unsigned long long)need);
    return strstr(sym_last_error(), num) && strstr(sym_last_error(), " GB)");
}

static void test_minimum_budgets(const fixture *fx) {
    dev_wrap dw;
    host_count hc = {0};
    sym_pack_manager *pm = NULL;
    if (dev_open(&dw, 0)) return;
    /* AUTO on this filesystem may be O_DIRECT (staging counts) or not; BUFFERED has none */
    sym_pack_manager_options o = opts_for(fx, 0, 1, SYM_IO_BUFFERED);
    o.ram_budget_bytes = fx->need - 1;
    CHECK_STATUS(make(fx, &o, &dw, &hc, &pm), SYM_ERR_BUDGET);
    CHECK(says_needed(fx->need), "%s: RAM: %s", fx->name, sym_last_error());
    o.ram_budget_bytes = fx->need;
    CHECK_OK(make(fx, &o, &dw, &hc, &pm));
    if (pm) CHECK(walk(fx, pm, NULL, SYM_TIER_RAM, 2, 2, true) == 0, "%s: minimum RAM", fx->name);
    sym_pack_manager_destroy(pm);
    pm = NULL;

    o = opts_for(fx, 1, 1, SYM_IO_DIRECT);
    o.ram_budget_bytes = fx->need + 2 * STAGING - 1;
    sym_status st = make(fx, &o, &dw, &hc, &pm);
    if (st == SYM_ERR_UNSUPPORTED) {
        fprintf(stderr, "%s: O_DIRECT unsupported here: %s\n", fx->name, sym_last_error());
    } else {
        CHECK(st == SYM_ERR_BUDGET && says_needed(fx->need + 2 * STAGING),
              "%s: RAM with staging: %s %s", fx->name, sym_status_name(st), sym_last_error());
        o.ram_budget_bytes = fx->need + 2 * STAGING;
        o.device_budget_bytes = fx->need - 1;
        CHECK_STATUS(make(fx, &o, &dw, &hc, &pm), SYM_ERR_BUDGET);
        CHECK(says_needed(fx->need), "%s: device: %s", fx->name, sym_last_error());
        o.device_budget_bytes = 4 * fx->need;
        o.device_max_alloc_bytes = fx->need / 2;
        CHECK_STATUS(make(fx, &o, &dw, &hc, &pm), SYM_ERR_BUDGET);
        CHECK(says_needed(fx->need) && strstr(sym_last_error(), "one allocation"),
              "%s: max alloc: %s", fx->name, sym_last_error());
        o.device_budget_bytes = fx->need;
        o.device_max_alloc_bytes = 0;
        CHECK_OK(make(fx, &o, &dw, &hc, &pm));
        if (pm) {
            CHECK(walk(fx, pm, &dw.base, SYM_TIER_DEVICE, 2, 3, true) == 0, "%s: minimum device",
                  fx->name);
            check_budgets(fx, pm, &dw, &hc, &o);
        }
        sym_pack_manager_destroy(pm);
    }
    CHECK(dw.live_bytes == 0 && atomic_load(&hc.live) == 0, "%s: memory left after destroy",
          fx->name);
    dev_close(&dw);
}

/* ---- cyclic walks: integrity and budgets over a matrix of settings ----------------------------
 */

typedef struct cfg {
    sym_tier tier;
    double dev_units, ram_units;
    uint32_t lookahead;
    sym_io_mode io;
    bool upload_thread;
    uint64_t max_alloc_units; /* device allocations of at most this many units (0: one) */
    bool default_mem;         /* the default arena allocator instead of the counting one */
} cfg;

static void run_cfg(const fixture *fx, const cfg *c, int n_tokens) {
    dev_wrap dw;
    host_count hc = {0};
    sym_pack_manager *pm = NULL;
    if (dev_open(&dw, 0)) return;
    sym_pack_manager_options o = opts_for(fx, c->dev_units, c->ram_units, c->io);
    o.upload_thread = c->upload_thread;
    o.device_max_alloc_bytes = c->max_alloc_units * fx->need;
    host_count *hcp = c->default_mem ? NULL : &hc;
    sym_status st = make(fx, &o, &dw, hcp, &pm);
    CHECK(st == SYM_OK, "%s: create: %s", fx->name, sym_last_error());
    if (st == SYM_OK) {
        int bad = walk(fx, pm, &dw.base, c->tier, n_tokens, c->lookahead, true);
        CHECK(bad == 0,
              "%s: %s walk (dev %.1f, ram %.1f units, lookahead %u, %s, uploads on %s):"
              " %d failures",
              fx->name, sym_tier_name(c->tier), c->dev_units, c->ram_units, c->lookahead,
              sym_io_mode_name(c->io), c->upload_thread ? "worker" : "engine", bad);
        check_budgets(fx, pm, &dw, hcp, &o);
        sym_tier_stats s;
        sym_pack_manager_stats(pm, c->tier, &s);
        CHECK(s.hits + s.misses == (uint64_t)n_tokens * fx->plan->n_uses, "%s: %llu gets counted",
              fx->name, (unsigned long long)(s.hits + s.misses));
        /* "pin what fits": when everything fits, every pack moves exactly once */
        if ((c->tier == SYM_TIER_RAM ? c->ram_units : c->dev_units) * (double)fx->need >=
            (double)fx->plan->pow2_bytes * 2)
            CHECK(s.bytes_in == fx->plan->total_bytes, "%s: moved %llu bytes, model has %llu",
                  fx->name, (unsigned long long)s.bytes_in,
                  (unsigned long long)fx->plan->total_bytes);
    }
    sym_pack_manager_destroy(pm);
    CHECK(dw.live_bytes == 0 && atomic_load(&hc.live) == 0, "%s: memory left after destroy",
          fx->name);
    dev_close(&dw);
}

static void test_cyclic(const fixture *fx) {
    double all = 2.0 * (double)fx->plan->pow2_bytes / (double)fx->need + 1;
    const cfg cfgs[] = {
        {SYM_TIER_RAM, 0, 1, 0, SYM_IO_AUTO, false, 0, false},
        {SYM_TIER_RAM, 0, 3, 2, SYM_IO_AUTO, false, 0, true},
        {SYM_TIER_RAM, 0, 5, 6, SYM_IO_BUFFERED, false, 0, false},
        {SYM_TIER_RAM, 0, all, 4, SYM_IO_AUTO, false, 0, false},
        {SYM_TIER_DEVICE, 1, 1, 0, SYM_IO_AUTO, false, 0, false},
        {SYM_TIER_DEVICE, 2, 3, 3, SYM_IO_AUTO, false, 0, true},
        {SYM_TIER_DEVICE, 4, 2, 5, SYM_IO_BUFFERED, true, 0, false},
        {SYM_TIER_DEVICE, 3, 6, 8, SYM_IO_AUTO, true, 1, false},
        {SYM_TIER_DEVICE, 7, 3, 4, SYM_IO_AUTO, false, 2, false},
        {SYM_TIER_DEVICE, all, all, 4, SYM_IO_AUTO, true, 0, false},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
        run_cfg(fx, &cfgs[i], 3);
}

/* ---- Belady against LRU ---------------------------------------------------------------------- */

static uint64_t bytes_moved(const fixture *fx, sym_tier tier, double units, sym_evict_policy pol) {
    dev_wrap dw;
    host_count hc = {0};
    sym_pack_manager *pm = NULL;
    uint64_t moved = UINT64_MAX;
    if (dev_open(&dw, 0)) return moved;
    sym_pack_manager_options o = opts_for(fx, tier == SYM_TIER_DEVICE ? units : 0,
                                          tier == SYM_TIER_RAM ? units : 1, SYM_IO_AUTO);
    o.policy = pol;
    if (make(fx, &o, &dw, &hc, &pm) == SYM_OK && walk(fx, pm, &dw.base, tier, 4, 0, false) == 0) {
        sym_tier_stats s;
        sym_pack_manager_stats(pm, tier, &s);
        moved = s.bytes_in;
    }
    sym_pack_manager_destroy(pm);
    dev_close(&dw);
    return moved;
}

static void test_belady_vs_lru(const fixture *fx) {
    int strictly = 0, n = 0;
    /* the vitality oracle as the manager's policy: on a dense schedule it is Belady's rule */
    sym_oracle *orc = NULL;
    sym_oracle_options oo;
    sym_oracle_options_init(&oo);
    CHECK_OK(sym_oracle_create_for_plan(fx->plan, &oo, &orc));
    for (int tier = 0; tier < 2; tier++)
        for (double units = 1; units <= 8; units *= 1.5) {
            uint64_t b = bytes_moved(fx, (sym_tier)tier, units, sym_evict_policy_belady());
            uint64_t l = bytes_moved(fx, (sym_tier)tier, units, sym_evict_policy_lru());
            CHECK(b != UINT64_MAX && b <= l, "%s: %s %.2f units: Belady moved %llu, LRU %llu",
                  fx->name, sym_tier_name((sym_tier)tier), units, (unsigned long long)b,
                  (unsigned long long)l);
            if (orc) {
                uint64_t v = bytes_moved(fx, (sym_tier)tier, units, sym_oracle_evict_policy(orc));
                CHECK(v == b, "%s: %s %.2f units: the oracle moved %llu, Belady %llu", fx->name,
                      sym_tier_name((sym_tier)tier), units, (unsigned long long)v,
                      (unsigned long long)b);
            }
            strictly += b < l;
            n++;
            fprintf(stderr,
                    "%s: %s budget %.2f packs: bytes moved over 4 tokens: Belady %llu, "
                    "LRU %llu\n",
                    fx->name, sym_tier_name((sym_tier)tier), units, (unsigned long long)b,
                    (unsigned long long)l);
        }
    CHECK(strictly >= n / 2, "%s: Belady beat LRU in only %d of %d budgets", fx->name, strictly, n);
    sym_oracle_destroy(orc);
}

/* ---- random operation sequences -------------------------------------------------------------- */

#define MAX_HELD 3

static void test_random(const fixture *fx, int n_ops) {
    dev_wrap dw;
    host_count hc = {0};
    sym_pack_manager *pm = NULL;
    if (dev_open(&dw, 0)) return;
    sym_pack_manager_options o = opts_for(fx, 5, 6, SYM_IO_AUTO);
    o.upload_thread = test_rng_below(&g_rng, 2);
    if (test_rng_below(&g_rng, 2)) o.policy = sym_evict_policy_lru();
    CHECK_OK(make(fx, &o, &dw, &hc, &pm));
    if (!pm) return;
    sym_pack_handle held[2][MAX_HELD];
    int n_held[2] = {0, 0};
    uint32_t n_packs = fx->plan->n_packs;
    for (int i = 0; i < n_ops; i++) {
        uint32_t id = (uint32_t)test_rng_below(&g_rng, n_packs);
        int t = (int)test_rng_below(&g_rng, 2);
        switch (test_rng_below(&g_rng, 8)) {
        case 0:
        case 1:
        case 2: { /* get, keep it pinned for a while */
            if (n_held[t] == MAX_HELD) {
                int k = (int)test_rng_below(&g_rng, MAX_HELD);
                CHECK_OK(sym_pack_manager_release(pm, &held[t][k]));
                held[t][k] = held[t][--n_held[t]];
            }
            sym_pack_handle h;
            sym_status st = sym_pack_manager_get(pm, id, (sym_tier)t, &h);
            /* with nothing pinned any pack fits; with pins, buddy splits may leave no room */
            CHECK(st == SYM_OK || (st == SYM_ERR_BUDGET && n_held[t] > 0),
                  "%s: op %d get(%u, %s) with %d held: %s %s", fx->name, i, id,
                  sym_tier_name((sym_tier)t), n_held[t], sym_status_name(st), sym_last_error());
            if (st == SYM_OK) {
                CHECK(verify_pack(fx, pm, &dw.base, &h), "%s: op %d", fx->name, i);
                held[t][n_held[t]++] = h;
            }
            break;
        }
        case 3:
            if (n_held[t] > 0) CHECK_OK(sym_pack_manager_release(pm, &held[t][--n_held[t]]));
            break;
        case 4: {
            sym_status st = sym_pack_manager_prefetch(pm, id, (sym_tier)t);
            CHECK(st == SYM_OK || st == SYM_ERR_BUDGET, "%s: prefetch: %s", fx->name,
                  sym_last_error());
            sym_pack_manager_prefetch_ahead(pm, (sym_tier)t, (uint32_t)test_rng_below(&g_rng, 6));
            break;
        }
        case 5: { /* unload: refused exactly when we hold a pin on what it would drop */
            sym_tier ut = test_rng_below(&g_rng, 3) ? (sym_tier)t : SYM_TIER_UNLOADED;
            bool pinned = false;
            for (int tt = 0; tt < 2; tt++)
                for (int k = 0; k < n_held[tt]; k++)
                    pinned |= held[tt][k].pack_id == id && (ut == SYM_TIER_UNLOADED || tt == t);
            CHECK_STATUS(sym_pack_manager_unload(pm, id, ut), pinned ? SYM_ERR_ARG : SYM_OK);
            break;
        }
        case 6: {
            uint64_t want = test_rng_below(&g_rng, 4) * fx->need;
            sym_status st = sym_pack_manager_evict_until(pm, (sym_tier)t, want);
            CHECK(st == SYM_OK || (st == SYM_ERR_BUDGET && n_held[t] > 0), "%s: evict_until: %s",
                  fx->name, sym_last_error());
            if (st == SYM_OK) {
                sym_tier_stats s;
                sym_pack_manager_stats(pm, (sym_tier)t, &s);
                CHECK(s.capacity_bytes - s.used_bytes >= want, "%s: evict_until left %llu free",
                      fx->name, (unsigned long long)(s.capacity_bytes - s.used_bytes));
            }
            break;
        }
        default:
            if (test_rng_below(&g_rng, 4) == 0)
                sym_pack_manager_set_position(pm,
                                              (uint32_t)test_rng_below(&g_rng, fx->plan->n_uses));
            sym_pack_manager_poll(pm);
            break;
        }
        if (sym_pack_manager_check(pm) != SYM_OK) {
            CHECK(0, "%s: op %d: %s", fx->name, i, sym_last_error());
            break;
        }
    }
    for (int t = 0; t < 2; t++)
        while (n_held[t] > 0)
            CHECK_OK(sym_pack_manager_release(pm, &held[t][--n_held[t]]));
    check_budgets(fx, pm, &dw, &hc, &o);
    sym_pack_manager_destroy(pm);
    dev_close(&dw);
}

/* ---- a tier full of pinned packs fails, it does not hang --------------------------------------
 */

static void test_pinned_full(const fixture *fx, sym_tier tier) {
    dev_wrap dw;
    host_count hc = {0};
    sym_pack_manager *pm = NULL;
    if (dev_open(&dw, 0)) return;
    sym_pack_manager_options o = opts_for(fx, 2, 2, SYM_IO_AUTO);
    CHECK_OK(make(fx, &o, &dw, &hc, &pm));
    if (!pm) return;
    sym_pack_handle h[64];
    int n = 0;
    sym_status st = SYM_OK;
    for (uint32_t id = 0; id < fx->plan->n_packs && n < 64; id++) {
        sym_pack_manager_prefetch_ahead(pm, tier, 4); /* in flight while the tier fills */
        st = sym_pack_manager_get(pm, id, tier, &h[n]);
        if (st != SYM_OK) break;
        n++;
    }
    CHECK(st == SYM_ERR_BUDGET && strstr(sym_last_error(), "pinned"), "%s: %s full of pins: %s %s",
          fx->name, sym_tier_name(tier), sym_status_name(st), sym_last_error());
    CHECK(n >= 1, "%s: nothing could be pinned", fx->name);
    CHECK_OK(sym_pack_manager_check(pm));
    while (n > 0)
        CHECK_OK(sym_pack_manager_release(pm, &h[--n]));
    CHECK_STATUS(sym_pack_manager_release(pm, &h[0]), SYM_ERR_ARG); /* a cleared handle */
    CHECK(walk(fx, pm, &dw.base, tier, 1, 2, true) == 0, "%s: after unpinning", fx->name);
    sym_pack_manager_destroy(pm);
    dev_close(&dw);
}

/* ---- concurrency ----------------------------------------------------------------------------- */

typedef struct conc {
    const fixture *fx;
    sym_pack_manager *pm;
    int n_ops;
    atomic_int failures;
    atomic_int done;
} conc;

typedef struct client {
    conc *c;
    uint64_t seed;
} client;

static void *ram_client(void *arg) {
    conc *c = ((client *)arg)->c;
    test_rng r = {((client *)arg)->seed};
    for (int i = 0; i < c->n_ops; i++) {
        uint32_t id = (uint32_t)test_rng_below(&r, c->fx->plan->n_packs);
        if (test_rng_below(&r, 3) == 0) {
            sym_pack_manager_prefetch(c->pm, (uint32_t)test_rng_below(&r, c->fx->plan->n_packs),
                                      SYM_TIER_RAM);
            continue;
        }
        sym_pack_handle h;
        sym_status st = sym_pack_manager_get(c->pm, id, SYM_TIER_RAM, &h);
        if (st == SYM_ERR_BUDGET) continue; /* other clients hold pins: legitimate */
        if (st != SYM_OK || !verify_pack(c->fx, c->pm, NULL, &h) ||
            sym_pack_manager_release(c->pm, &h) != SYM_OK)
            atomic_fetch_add(&c->failures, 1);
    }
    atomic_fetch_add(&c->done, 1);
    return NULL;
}

#define N_CLIENTS 3

static void test_concurrent(const fixture *fx, bool upload_thread) {
    dev_wrap dw;
    host_count hc = {0};
    sym_pack_manager *pm = NULL;
    if (dev_open(&dw, 0)) return;
    sym_pack_manager_options o = opts_for(fx, 4, 8, SYM_IO_AUTO);
    o.upload_thread = upload_thread;
    o.n_io_threads = 3;
    o.ram_budget_bytes += STAGING;
    CHECK_OK(make(fx, &o, &dw, &hc, &pm));
    if (!pm) return;
    conc c = {.fx = fx, .pm = pm, .n_ops = 400};
    pthread_t th[N_CLIENTS];
    client cl[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) {
        cl[i] = (client){.c = &c, .seed = test_rng_u64(&g_rng)};
        pthread_create(&th[i], NULL, ram_client, &cl[i]);
    }
    /* the engine: walks the schedule on the device with lookahead while the clients run */
    int bad = walk(fx, pm, &dw.base, SYM_TIER_DEVICE, 3, 4, false);
    while (atomic_load(&c.done) < N_CLIENTS)
        if (sym_pack_manager_poll(pm) == 0) usleep(100); /* clients may wait for our uploads */
    for (int i = 0; i < N_CLIENTS; i++)
        pthread_join(th[i], NULL);
    CHECK(bad == 0 && atomic_load(&c.failures) == 0, "%s: concurrent: engine %d, clients %d",
          fx->name, bad, atomic_load(&c.failures));
    CHECK_OK(sym_pack_manager_check(pm));
    check_budgets(fx, pm, &dw, &hc, &o);
    sym_pack_manager_destroy(pm);
    dev_close(&dw);
}

/* ---- shutdown with moves in flight ----------------------------------------------------------- */

static ssize_t slow_pread(void *user, int fd, void *buf, size_t n, off_t off) {
    (void)user;
    usleep(300);
    return pread(fd, buf, n, off);
}

static void test_shutdown(const fixture *fx) {
    for (int round = 0; round < 6; round++) {
        dev_wrap dw;
        host_count hc = {0};
        sym_pack_manager *pm = NULL;
        if (dev_open(&dw, 0)) return;
        sym_pack_manager_options o = opts_for(fx, 6, 8, round % 2 ? SYM_IO_BUFFERED : SYM_IO_AUTO);
        o.pread_fn = slow_pread;
        o.upload_thread = round % 3 == 0;
        CHECK_OK(make(fx, &o, &dw, &hc, &pm));
        if (!pm) return;
        uint32_t n = sym_pack_manager_prefetch_ahead(pm, SYM_TIER_DEVICE, fx->plan->n_uses);
        n += sym_pack_manager_prefetch_ahead(pm, SYM_TIER_RAM, fx->plan->n_uses);
        CHECK(n > 0, "%s: nothing prefetched", fx->name);
        if (round >= 3) { /* a get in the middle, then destroy with the rest in flight */
            sym_pack_handle h;
            uint32_t id = fx->plan->schedule[fx->plan->n_uses / 2].pack_id;
            CHECK_OK(sym_pack_manager_get(pm, id, SYM_TIER_RAM, &h));
            CHECK_OK(sym_pack_manager_release(pm, &h));
        }
        sym_pack_manager_destroy(pm);
        CHECK(dw.live_bytes == 0 && atomic_load(&hc.live) == 0, "%s: leaked at shutdown", fx->name);
        dev_close(&dw);
    }
}

/* ---- the scheduler: priority order, cancel, reprioritize ------------------------------------- */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int entered;
} gate;

static ssize_t gated_pread(void *user, int fd, void *buf, size_t n, off_t off) {
    gate *g = user;
    pthread_mutex_lock(&g->mu);
    g->entered++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return pread(fd, buf, n, off);
}

#define SCHED_N 40

typedef struct order {
    pthread_mutex_t mu;
    uint32_t ids[SCHED_N];
    int n, failed;
} order;

static void order_done(void *user, const sym_sched_job *job, sym_status st, const char *detail,
                       const sym_pack_io_counts *counts, uint64_t ns) {
    (void)detail, (void)counts, (void)ns;
    order *o = user;
    pthread_mutex_lock(&o->mu);
    if (o->n < SCHED_N) o->ids[o->n] = job->pack_id;
    o->n++;
    o->failed += st != SYM_OK;
    pthread_mutex_unlock(&o->mu);
}

static void test_scheduler(const fixture *fx) {
    uint32_t n = fx->plan->n_packs < SCHED_N ? fx->plan->n_packs : SCHED_N;
    if (n < 6) return;
    gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    order ord = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sym_pack_io *io = NULL;
    sym_scheduler *s = NULL;
    CHECK_OK(sym_pack_io_open(fx->plan, fx->paths, 1, SYM_IO_BUFFERED, gated_pread, &g, &io));
    sym_scheduler_options so = {
        .plan = fx->plan, .io = io, .n_io_threads = 1, .done = order_done, .done_user = &ord};
    CHECK_OK(sym_scheduler_create(&so, &s));
    if (!s) return;
    void *dst[SCHED_N];
    uint64_t key[SCHED_N];
    for (uint32_t i = 0; i < n; i++) {
        dst[i] = calloc(1, fx->plan->packs[i].buffer_bytes);
        key[i] = 100 + test_rng_below(&g_rng, 1000) * SCHED_N + i; /* distinct, random order */
    }
    sym_sched_job job = {.pack_id = 0, .kind = SYM_SCHED_READ, .key = 0, .host = dst[0]};
    CHECK_OK(sym_scheduler_submit(s, &job)); /* the worker takes it and blocks in the gate */
    pthread_mutex_lock(&g.mu);
    while (g.entered == 0)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    for (uint32_t i = 1; i < n; i++) {
        job = (sym_sched_job){.pack_id = i, .kind = SYM_SCHED_READ, .key = key[i], .host = dst[i]};
        CHECK_OK(sym_scheduler_submit(s, &job));
    }
    CHECK_STATUS(sym_scheduler_submit(s, &job), SYM_ERR_ARG); /* already queued */
    job.kind = SYM_SCHED_UPLOAD;
    CHECK_STATUS(sym_scheduler_submit(s, &job), SYM_ERR_ARG); /* no backend */
    CHECK(sym_scheduler_cancel(s, 2, SYM_SCHED_READ), "cancel of a queued job");
    CHECK(!sym_scheduler_cancel(s, 0, SYM_SCHED_READ), "cancel of a running job");
    CHECK(!sym_scheduler_cancel(s, 2, SYM_SCHED_READ), "cancel twice");
    CHECK(sym_scheduler_queued(s, 3, SYM_SCHED_READ) &&
              !sym_scheduler_queued(s, 2, SYM_SCHED_READ) &&
              !sym_scheduler_queued(s, 0, SYM_SCHED_READ),
          "queued: a queued, a cancelled and a running job");
    sym_scheduler_reprioritize(s, 5, SYM_SCHED_READ, 1);
    uint32_t queued, running;
    sym_scheduler_depth(s, SYM_SCHED_READ, &queued, &running);
    CHECK(queued == n - 2 && running == 1, "depth %u queued, %u running", queued, running);
    pthread_mutex_lock(&g.mu);
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    for (int spin = 0; spin < 10000; spin++) {
        pthread_mutex_lock(&ord.mu);
        int done = ord.n;
        pthread_mutex_unlock(&ord.mu);
        if (done == (int)n - 1) break;
        usleep(500);
    }
    sym_scheduler_destroy(s);
    CHECK(ord.n == (int)n - 1 && ord.failed == 0, "%d jobs reported, %d failed", ord.n, ord.failed);
    /* 0 was running, 5 was raised to key 1, the rest by key; 2 never ran */
    bool ok = ord.ids[0] == 0 && ord.ids[1] == 5;
    for (int i = 2; ok && i < ord.n; i++)
        ok = ord.ids[i] != 2 && (i == 2 || key[ord.ids[i - 1]] < key[ord.ids[i]]);
    CHECK(ok, "%s: jobs ran out of priority order", fx->name);
    for (uint32_t i = 0; i < n; i++) {
        const sym_pack_piece *pc = sym_pack_pieces(fx->plan, &fx->plan->packs[i]);
        for (uint32_t j = 0; i != 2 && j < fx->plan->packs[i].n_pieces; j++)
            CHECK(memcmp((char *)dst[i] + pc[j].pack_offset, fx->file + pc[j].file_offset,
                         pc[j].n_bytes) == 0,
                  "%s: scheduler read pack %u piece %u wrong", fx->name, i, j);
        free(dst[i]);
    }
    sym_pack_io_close(io);
}

int main(void) {
    alarm(600); /* a hang is a failure, not a stuck CI job */
    g_rng = test_rng_init("test_tier");
    tu_tmpdir("test_tier");
    fixture fx[3];
    int n = 0;
    char shared[1024];
    if (fixture_make(&fx[n], "tiny-f16", "tiny", SYM_DT_F16, 4096) == 0)
        n++;
    else
        CHECK(0, "tiny model");
    if (fixture_make(&fx[n], "qwen2-tied-f32", "tiny-qwen2", SYM_DT_F32, 6000) == 0)
        n++;
    else
        CHECK(0, "qwen2 model");
    if (fixture_open(&fx[n], "aidreams260K",
                     test_shared_path("models/aidreams260K.gguf", shared, sizeof shared),
                     3000) == 0)
        n++;
    else
        fprintf(stderr, "test_tier: shared model not found, skipped\n");
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "%s: %u packs, %u uses per token, largest block %llu bytes\n", fx[i].name,
                fx[i].plan->n_packs, fx[i].plan->n_uses, (unsigned long long)fx[i].need);
        test_scheduler(&fx[i]);
        test_minimum_budgets(&fx[i]);
        test_cyclic(&fx[i]);
        test_belady_vs_lru(&fx[i]);
        for (int k = 0; k < 3; k++)
            test_random(&fx[i], 1500);
        test_pinned_full(&fx[i], SYM_TIER_RAM);
        test_pinned_full(&fx[i], SYM_TIER_DEVICE);
        test_concurrent(&fx[i], true);
        test_concurrent(&fx[i], false);
        test_shutdown(&fx[i]);
        fixture_close(&fx[i]);
    }
    return test_finish("test_tier");
}
