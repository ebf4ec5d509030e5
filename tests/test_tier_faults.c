/* Faults in the tier module: a read that fails, hits the end of the file or comes back short
 * (injected as the Nth pread) gives a clear error naming the pack and the file, for gets and
 * prefetches into RAM and DEVICE, with O_DIRECT and buffered reads, and the next get recovers;
 * reads failing at random under concurrent prefetches never hang; a failing device allocation,
 * arena or staging allocation, or any host allocation at create fails cleanly (nothing leaked);
 * missing and truncated files and bad arguments are refused; unload cancels queued moves and
 * discards running ones; and O_DIRECT reads leave nothing of the file in the page cache
 * (pread + DONTNEED at most the pages at range edges). Run under ASan and TSan too. */
#include <fcntl.h>
#include <sys/mman.h>

#include "tier_util.h"

#include "base/alloc.h"

#define STAGING 8192u

enum { F_NONE = 0, F_EIO, F_EOF, F_PARTIAL, F_EVERY };

typedef struct fault {
    atomic_int calls;
    atomic_int fail_at; /* the call (1-based) that misbehaves; F_EVERY: every fail_at-th */
    atomic_int kind;
    atomic_int n_injected;
    useconds_t delay_us;
} fault;

static ssize_t faulty_pread(void *user, int fd, void *buf, size_t n, off_t off) {
    fault *f = user;
    if (f->delay_us) usleep(f->delay_us);
    int call = atomic_fetch_add(&f->calls, 1) + 1;
    int kind = atomic_load(&f->kind), at = atomic_load(&f->fail_at);
    bool hit = kind == F_EVERY ? at > 0 && call % at == 0 : call == at;
    if (!hit) return pread(fd, buf, n, off);
    atomic_fetch_add(&f->n_injected, 1);
    switch (kind) {
    case F_EOF:
        return 0;
    case F_PARTIAL: { /* fewer bytes than asked (512-aligned so O_DIRECT accepts it) */
        size_t part = n / 2 & ~(size_t)511;
        return pread(fd, buf, part ? part : n, off);
    }
    default:
        errno = EIO;
        return -1;
    }
}

static void arm(fault *f, int kind, int after_calls) {
    atomic_store(&f->kind, kind);
    atomic_store(&f->fail_at, atomic_load(&f->calls) + after_calls);
}

static sym_pack_manager *make(const fixture *fx, sym_io_mode io, fault *f, dev_wrap *dw,
                              host_count *hc, bool upload_thread) {
    sym_pack_manager_options o;
    sym_pack_manager_options_init(&o);
    o.device_budget_bytes = 3 * fx->need;
    o.ram_budget_bytes = 4 * fx->need + 2 * STAGING;
    o.staging_bytes = STAGING;
    o.io_mode = io;
    o.pread_fn = faulty_pread;
    o.pread_user = f;
    o.upload_thread = upload_thread;
    o.host_mem = hc_mem(hc);
    sym_pack_manager *pm = NULL;
    sym_status st = sym_pack_manager_create(fx->plan, fx->paths, 1, &dw->base, &o, &pm);
    CHECK(st == SYM_OK, "%s: create: %s", fx->name, sym_last_error());
    return pm;
}

static bool names_pack_and_file(const fixture *fx, uint32_t id) {
    char pack[32];
    snprintf(pack, sizeof pack, "pack %u:", id);
    return strstr(sym_last_error(), pack) && strstr(sym_last_error(), fx->path);
}

/* Waits (bounded) until the tier has counted n errors. */
static bool wait_errors(sym_pack_manager *pm, sym_tier t, uint64_t n) {
    for (int i = 0; i < 5000; i++) {
        sym_tier_stats s;
        sym_pack_manager_stats(pm, t, &s);
        if (s.errors >= n) return true;
        sym_pack_manager_poll(pm);
        usleep(1000);
    }
    return false;
}

/* ---- read faults ----------------------------------------------------------------------------- */

static void test_read_faults(const fixture *fx, sym_io_mode io) {
    static const int kinds[] = {F_EIO, F_EOF, F_PARTIAL};
    static const char *const kind_names[] = {"", "EIO", "end of file", "partial"};
    for (int tier = 0; tier < 2; tier++)
        for (size_t k = 0; k < 3; k++) {
            fault f = {0};
            dev_wrap dw;
            host_count hc = {0};
            if (dev_open(&dw, 0)) return;
            sym_pack_manager *pm = make(fx, io, &f, &dw, &hc, tier == 0 && k == 1);
            if (!pm) return;
            uint32_t id = fx->plan->schedule[fx->plan->n_uses / 2].pack_id;
            sym_pack_handle h;
            arm(&f, kinds[k], 1);
            sym_status st = sym_pack_manager_get(pm, id, (sym_tier)tier, &h);
            const char *what = kind_names[kinds[k]];
            if (kinds[k] == F_PARTIAL) {
                CHECK(st == SYM_OK && verify_pack(fx, pm, &dw.base, &h),
                      "%s: %s %s: a partial read must be completed: %s", fx->name,
                      sym_io_mode_name(io), sym_tier_name((sym_tier)tier), sym_last_error());
                if (st == SYM_OK) CHECK_OK(sym_pack_manager_release(pm, &h));
            } else {
                CHECK(st == SYM_ERR_IO && names_pack_and_file(fx, id), "%s: %s %s %s: got %s: %s",
                      fx->name, what, sym_io_mode_name(io), sym_tier_name((sym_tier)tier),
                      sym_status_name(st), sym_last_error());
                if (kinds[k] == F_EOF)
                    CHECK(strstr(sym_last_error(), "short read"), "%s", sym_last_error());
                else
                    CHECK(strstr(sym_last_error(), "Input/output error"), "%s", sym_last_error());
                sym_tier_stats s;
                sym_pack_manager_stats(pm, SYM_TIER_RAM, &s);
                CHECK(s.errors == 1, "%s: %llu read errors counted", fx->name,
                      (unsigned long long)s.errors);
            }
            CHECK(atomic_load(&f.n_injected) == 1, "%s: fault not injected", fx->name);
            CHECK_OK(sym_pack_manager_check(pm));
            /* the next get reads again and succeeds */
            CHECK_OK(sym_pack_manager_get(pm, id, (sym_tier)tier, &h));
            CHECK(verify_pack(fx, pm, &dw.base, &h), "%s: after a %s", fx->name, what);
            CHECK_OK(sym_pack_manager_release(pm, &h));

            /* a failed prefetch: the error stays with the prefetch, a later get reads again */
            uint32_t id2 = fx->plan->schedule[fx->plan->n_uses / 3].pack_id;
            CHECK_OK(sym_pack_manager_unload(pm, id2, SYM_TIER_UNLOADED));
            sym_tier_stats before;
            sym_pack_manager_stats(pm, SYM_TIER_RAM, &before);
            arm(&f, kinds[k] == F_PARTIAL ? F_EIO : kinds[k], 1);
            CHECK_OK(sym_pack_manager_prefetch(pm, id2, (sym_tier)tier));
            CHECK(wait_errors(pm, SYM_TIER_RAM, before.errors + 1), "%s: prefetch error never came",
                  fx->name);
            CHECK(sym_pack_manager_tier_of(pm, id2) == SYM_TIER_DISK, "%s: failed pack resident",
                  fx->name);
            CHECK_OK(sym_pack_manager_check(pm));
            CHECK_OK(sym_pack_manager_get(pm, id2, (sym_tier)tier, &h));
            CHECK(verify_pack(fx, pm, &dw.base, &h), "%s: after a failed prefetch", fx->name);
            CHECK_OK(sym_pack_manager_release(pm, &h));
            sym_pack_manager_destroy(pm);
            CHECK(dw.live_bytes == 0 && atomic_load(&hc.live) == 0, "%s: leak", fx->name);
            dev_close(&dw);
        }
}

/* Every 5th read fails while prefetches run ahead: gets retry until they succeed; no hang. */
static void test_faults_under_load(const fixture *fx, bool upload_thread) {
    fault f = {0};
    dev_wrap dw;
    host_count hc = {0};
    if (dev_open(&dw, 0)) return;
    sym_pack_manager *pm = make(fx, SYM_IO_AUTO, &f, &dw, &hc, upload_thread);
    if (!pm) return;
    atomic_store(&f.kind, F_EVERY);
    atomic_store(&f.fail_at, 5);
    int errors = 0, bad = 0;
    for (uint32_t u = 0; u < 2 * fx->plan->n_uses; u++) {
        uint32_t id = fx->plan->schedule[u % fx->plan->n_uses].pack_id;
        sym_tier t = u % 3 ? SYM_TIER_DEVICE : SYM_TIER_RAM;
        sym_pack_handle h;
        sym_status st;
        int tries = 0;
        while ((st = sym_pack_manager_get(pm, id, t, &h)) == SYM_ERR_IO && ++tries < 50)
            errors++;
        CHECK(st == SYM_OK, "%s: get(%u) under faults: %s", fx->name, id, sym_last_error());
        if (st != SYM_OK) break;
        sym_pack_manager_prefetch_ahead(pm, t, 6);
        bad += !verify_pack(fx, pm, &dw.base, &h);
        CHECK_OK(sym_pack_manager_release(pm, &h));
        sym_pack_manager_poll(pm);
    }
    CHECK(bad == 0 && errors > 0, "%s: %d corrupt packs, %d errors seen", fx->name, bad, errors);
    CHECK_OK(sym_pack_manager_check(pm));
    sym_pack_manager_destroy(pm);
    dev_close(&dw);
}

/* ---- create failures and bad arguments ------------------------------------------------------- */

static int g_fail_at, g_n_calls;
static void *fail_malloc(void *u, size_t n) {
    (void)u;
    return ++g_n_calls == g_fail_at ? NULL : malloc(n);
}
static void *fail_realloc(void *u, void *p, size_t n) {
    (void)u;
    return ++g_n_calls == g_fail_at ? NULL : realloc(p, n);
}
static void fail_free(void *u, void *p) {
    (void)u;
    free(p);
}

static void test_create_failures(const fixture *fx) {
    dev_wrap dw;
    host_count hc = {0};
    sym_pack_manager *pm = NULL;
    sym_pack_manager_options o;
    sym_pack_manager_options_init(&o);
    o.device_budget_bytes = 4 * fx->need;
    o.device_max_alloc_bytes = fx->need; /* four backend allocations */
    o.ram_budget_bytes = 4 * fx->need + 2 * STAGING;
    o.staging_bytes = STAGING;
    for (int k = 1; k <= 4; k++) {
        if (dev_open(&dw, k)) return;
        o.host_mem = hc_mem(&hc);
        CHECK_STATUS(sym_pack_manager_create(fx->plan, fx->paths, 1, &dw.base, &o, &pm),
                     SYM_ERR_OOM);
        char want[64];
        snprintf(want, sizeof want, "device allocation %d of 4", k);
        CHECK(strstr(sym_last_error(), want), "%s: %s", fx->name, sym_last_error());
        CHECK(pm == NULL && dw.live_bytes == 0 && atomic_load(&hc.live) == 0,
              "%s: device failure %d leaked", fx->name, k);
        dev_close(&dw);
    }
    if (dev_open(&dw, 0)) return;
    for (int k = 1; k <= 3; k++) { /* arena, then the staging buffers (when O_DIRECT) */
        host_count hf = {.fail_at = k};
        o.host_mem = hc_mem(&hf);
        sym_status st = sym_pack_manager_create(fx->plan, fx->paths, 1, &dw.base, &o, &pm);
        if (st == SYM_OK) { /* buffered files: no staging to fail */
            CHECK(k > 1, "%s: arena failure not seen", fx->name);
            sym_pack_manager_destroy(pm);
            pm = NULL;
        } else {
            CHECK(st == SYM_ERR_OOM && strstr(sym_last_error(), k == 1 ? "arena" : "staging"),
                  "%s: host failure %d: %s", fx->name, k, sym_last_error());
        }
        CHECK(dw.live_bytes == 0 && atomic_load(&hf.live) == 0, "%s: host failure leaked",
              fx->name);
    }
    /* every library allocation on the create path, failing one at a time */
    o.host_mem = hc_mem(&hc);
    sym_alloc_hooks hooks = {fail_malloc, fail_realloc, fail_free, NULL};
    int n_ok = 0;
    for (g_fail_at = 1; g_fail_at < 400 && n_ok == 0; g_fail_at++) {
        g_n_calls = 0;
        sym_set_alloc_hooks(&hooks);
        sym_status st = sym_pack_manager_create(fx->plan, fx->paths, 1, &dw.base, &o, &pm);
        if (st == SYM_OK) {
            n_ok++;
            sym_pack_handle h;
            CHECK_OK(sym_pack_manager_get(pm, 0, SYM_TIER_DEVICE, &h));
            CHECK_OK(sym_pack_manager_release(pm, &h));
            sym_pack_manager_destroy(pm);
            pm = NULL;
        } else {
            CHECK(st == SYM_ERR_OOM, "%s: allocation %d failing gave %s: %s", fx->name, g_fail_at,
                  sym_status_name(st), sym_last_error());
        }
        sym_set_alloc_hooks(NULL);
        CHECK(dw.live_bytes == 0 && atomic_load(&hc.live) == 0, "%s: allocation %d leaked",
              fx->name, g_fail_at);
    }
    CHECK(n_ok == 1 && g_fail_at > 5, "%s: create never succeeded under injection", fx->name);

    /* bad input */
    char path[700];
    snprintf(path, sizeof path, "%s/missing.gguf", g_tmp);
    const char *missing[1] = {path};
    CHECK_STATUS(sym_pack_manager_create(fx->plan, missing, 1, &dw.base, &o, &pm), SYM_ERR_IO);
    CHECK(strstr(sym_last_error(), path), "%s", sym_last_error());
    snprintf(path, sizeof path, "%s/truncated.gguf", g_tmp);
    CHECK(test_write_file(path, fx->file, fx->file_size - 1) == 0, "write %s", path);
    const char *trunc[1] = {path};
    CHECK_STATUS(sym_pack_manager_create(fx->plan, trunc, 1, &dw.base, &o, &pm), SYM_ERR_FORMAT);
    CHECK(strstr(sym_last_error(), path), "%s", sym_last_error());
    sym_pack_manager_options bad = o;
    bad.staging_bytes = 5000;
    CHECK_STATUS(sym_pack_manager_create(fx->plan, fx->paths, 1, &dw.base, &bad, &pm), SYM_ERR_ARG);
    bad = o;
    CHECK_STATUS(sym_pack_manager_create(fx->plan, fx->paths, 1, NULL, &bad, &pm), SYM_ERR_ARG);
    bad.ram_budget_bytes = 0;
    CHECK_STATUS(sym_pack_manager_create(fx->plan, fx->paths, 1, &dw.base, &bad, &pm), SYM_ERR_ARG);
    bad = o;
    bad.device_budget_bytes = 0;
    CHECK_OK(sym_pack_manager_create(fx->plan, fx->paths, 1, NULL, &bad, &pm));
    if (pm) {
        sym_pack_handle h;
        CHECK_STATUS(sym_pack_manager_get(pm, 0, SYM_TIER_DEVICE, &h), SYM_ERR_ARG);
        CHECK_STATUS(sym_pack_manager_get(pm, fx->plan->n_packs, SYM_TIER_RAM, &h), SYM_ERR_ARG);
        CHECK_STATUS(sym_pack_manager_get(pm, 0, SYM_TIER_DISK, &h), SYM_ERR_ARG);
        CHECK_OK(sym_pack_manager_get(pm, 0, SYM_TIER_RAM, &h));
        sym_pack_handle copy = h;
        CHECK_STATUS(sym_pack_manager_unload(pm, 0, SYM_TIER_RAM), SYM_ERR_ARG);
        CHECK_STATUS(sym_pack_manager_unload(pm, 0, SYM_TIER_UNLOADED), SYM_ERR_ARG);
        CHECK_OK(sym_pack_manager_release(pm, &h));
        CHECK_STATUS(sym_pack_manager_release(pm, &copy), SYM_ERR_ARG); /* released twice */
        CHECK_OK(sym_pack_manager_unload(pm, 0, SYM_TIER_UNLOADED));
        sym_pack_manager_destroy(pm);
    }
    dev_close(&dw);
}

/* ---- unload cancels moves in flight ---------------------------------------------------------- */

static bool settle(sym_pack_manager *pm, sym_tier t, uint64_t used) {
    for (int i = 0; i < 5000; i++) {
        sym_tier_stats s;
        sym_pack_manager_stats(pm, t, &s);
        if (s.used_bytes == used) return true;
        sym_pack_manager_poll(pm);
        usleep(1000);
    }
    return false;
}

static void test_unload_in_flight(const fixture *fx, bool upload_thread) {
    fault f = {.delay_us = 500};
    dev_wrap dw;
    host_count hc = {0};
    if (dev_open(&dw, 0)) return;
    sym_pack_manager *pm = make(fx, SYM_IO_AUTO, &f, &dw, &hc, upload_thread);
    if (!pm) return;
    sym_tier_stats r0;
    sym_pack_manager_stats(pm, SYM_TIER_RAM, &r0); /* staging only */
    for (int tier = 0; tier < 2; tier++) {
        for (int round = 0; round < 4; round++) {
            uint32_t n = sym_pack_manager_prefetch_ahead(pm, (sym_tier)tier, 8);
            CHECK(n > 0, "%s: nothing prefetched", fx->name);
            if (round % 2) usleep(700); /* let some reads start */
            for (uint32_t id = 0; id < fx->plan->n_packs; id++)
                CHECK_OK(sym_pack_manager_unload(pm, id,
                                                 round == 3 ? SYM_TIER_UNLOADED : (sym_tier)tier));
            CHECK_OK(sym_pack_manager_check(pm));
        }
        for (uint32_t id = 0; id < fx->plan->n_packs; id++)
            CHECK_OK(sym_pack_manager_unload(pm, id, SYM_TIER_UNLOADED));
        /* running moves finish and their results are thrown away */
        CHECK(settle(pm, SYM_TIER_DEVICE, 0) && settle(pm, SYM_TIER_RAM, r0.used_bytes),
              "%s: unloaded moves kept their blocks", fx->name);
        CHECK_OK(sym_pack_manager_check(pm));
    }
    /* a get right after the unload of its in-flight prefetch takes the move over */
    for (uint32_t u = 0; u < 20 && u < fx->plan->n_uses; u++) {
        uint32_t id = fx->plan->schedule[u].pack_id;
        sym_tier t = u % 2 ? SYM_TIER_DEVICE : SYM_TIER_RAM;
        sym_pack_handle h;
        CHECK(sym_pack_manager_prefetch(pm, id, t) == SYM_OK, "%s", sym_last_error());
        CHECK_OK(sym_pack_manager_unload(pm, id, t));
        CHECK_OK(sym_pack_manager_get(pm, id, t, &h));
        CHECK(verify_pack(fx, pm, &dw.base, &h), "%s: get after unload", fx->name);
        CHECK_OK(sym_pack_manager_release(pm, &h));
        CHECK_OK(sym_pack_manager_unload(pm, id, SYM_TIER_UNLOADED));
    }
    CHECK_OK(sym_pack_manager_check(pm));
    sym_pack_manager_destroy(pm);
    CHECK(dw.live_bytes == 0 && atomic_load(&hc.live) == 0, "%s: leak", fx->name);
    dev_close(&dw);
}

/* ---- the page cache -------------------------------------------------------------------------- */

/* Pages of the file's pack ranges that are in the page cache. */
static long cached_range_pages(const fixture *fx, long *n_ranges) {
    int fd = open(fx->path, O_RDONLY);
    long page = sysconf(_SC_PAGESIZE), n = 0;
    size_t n_pages = (fx->file_size + (size_t)page - 1) / (size_t)page;
    void *map = mmap(NULL, fx->file_size, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char *vec = calloc(n_pages, 1);
    if (map == MAP_FAILED || !vec || mincore(map, fx->file_size, vec) != 0) n = -1;
    for (uint32_t i = 0; n >= 0 && i < fx->plan->n_ranges; i++) {
        const sym_pack_range *r = &fx->plan->ranges[i];
        for (uint64_t p = r->file_offset / (uint64_t)page;
             p <= (r->file_offset + r->n_bytes - 1) / (uint64_t)page; p++) {
            n += vec[p] & 1;
            vec[p] = 0; /* count each page once */
        }
    }
    *n_ranges = fx->plan->n_ranges;
    free(vec);
    if (map != MAP_FAILED) munmap(map, fx->file_size);
    close(fd);
    return n;
}

static void drop_cache(const fixture *fx) {
    int fd = open(fx->path, O_RDONLY);
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

static void test_page_cache(const fixture *fx) {
    for (int mode = 0; mode < 2; mode++) {
        fault f = {0};
        dev_wrap dw;
        host_count hc = {0};
        if (dev_open(&dw, 0)) return;
        sym_pack_manager *pm = make(fx, mode ? SYM_IO_BUFFERED : SYM_IO_AUTO, &f, &dw, &hc, false);
        if (!pm) return;
        bool direct = sym_pack_manager_direct_io(pm, 0);
        fprintf(stderr, "%s: file read with %s\n", fx->name, sym_pack_manager_io_note(pm, 0));
        long n_ranges, before;
        drop_cache(fx);
        before = cached_range_pages(fx, &n_ranges);
        CHECK(walk(fx, pm, NULL, SYM_TIER_RAM, 1, 4, false) == 0, "%s: walk", fx->name);
        long after = cached_range_pages(fx, &n_ranges);
        fprintf(stderr,
                "%s: %s: pages of the %ld pack ranges in the page cache: %ld before a token, "
                "%ld after\n",
                fx->name, direct ? "O_DIRECT" : "pread + DONTNEED", n_ranges, before, after);
        if (before == 0 && mode == 0 && !direct)
            fprintf(stderr, "%s: O_DIRECT not available here; buffered checked only\n", fx->name);
        if (before == 0 && direct)
            CHECK(after == 0, "%s: O_DIRECT left %ld pages", fx->name, after);
        if (before == 0 && !direct)
            CHECK(after <= 2, "%s: DONTNEED left %ld pages", fx->name, after);
        sym_pack_manager_destroy(pm);
        dev_close(&dw);
    }
}

int main(void) {
    alarm(600);
    test_rng r = test_rng_init("test_tier_faults");
    (void)r;
    tu_tmpdir("test_tier_faults");
    fixture fx;
    if (fixture_make(&fx, "faults-f32", "tiny", SYM_DT_F32, 5000) != 0) {
        CHECK(0, "model");
        return test_finish("test_tier_faults");
    }
    fprintf(stderr, "%s: %u packs, largest block %llu bytes\n", fx.name, fx.plan->n_packs,
            (unsigned long long)fx.need);
    test_read_faults(&fx, SYM_IO_AUTO);
    test_read_faults(&fx, SYM_IO_BUFFERED);
    test_faults_under_load(&fx, false);
    test_faults_under_load(&fx, true);
    test_create_failures(&fx);
    test_unload_in_flight(&fx, false);
    test_unload_in_flight(&fx, true);
    test_page_cache(&fx);
    fixture_close(&fx);
    return test_finish("test_tier_faults");
}
