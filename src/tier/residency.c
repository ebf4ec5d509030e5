/* residency.c — the state machine of moves (see residency.h): reserving blocks under the
 * budgets, eviction by policy, cancelling prefetches, starting reads and uploads, completions.
 *
 * Lock order: pm->mu, then the scheduler's lock (submit/cancel under pm->mu); the scheduler never
 * calls back while holding its own. Every wait is a condition wait on pm->changed, which every
 * completed move broadcasts; a waiter waits only while a move in the tier it needs is in flight
 * (n_transient > 0), so each wait ends.
 */
#include "tier/residency.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"

#define DEV     SYM_RES_DEV
#define RAM     SYM_RES_RAM
#define ABSENT  SYM_RES_ABSENT
#define LOADING SYM_RES_LOADING
#define READY   SYM_RES_READY

typedef sym_res res;
typedef sym_res_pack pack_state;

/* ---- blocks ---------------------------------------------------------------------------------- */

sym_tier_place sym_residency_place(const sym_pack_manager *pm, int t, const res *r) {
    if (t == RAM) return (sym_tier_place){.data = (char *)pm->arena + r->offset};
    const sym_tensor *b = &pm->blocks[r->block].t;
    return (sym_tier_place){.data = b->data ? (char *)b->data + r->offset : NULL,
                            .buf = b->buf,
                            .offset = b->offset + r->offset};
}

static sym_fractal *fractal_of(const sym_pack_manager *pm, int t, const res *r) {
    return t == RAM ? pm->arena_f : pm->blocks[r->block].f;
}

uint64_t sym_residency_block_bytes(const sym_pack_manager *pm, int t, const res *r) {
    sym_fractal_block b;
    SYM_ASSERT(sym_fractal_lookup(fractal_of(pm, t, r), r->offset, &b));
    return b.block_bytes;
}

/* Reserves a block for pack id in tier t: SYM_ERR_BUDGET when nothing fits now. */
static sym_status alloc_block(sym_pack_manager *pm, int t, uint32_t id, res *r) {
    uint64_t bytes = pm->plan->packs[id].buffer_bytes;
    sym_status st = SYM_ERR_BUDGET;
    if (t == RAM) {
        st = sym_fractal_alloc(pm->arena_f, bytes, 0, id, &r->offset);
    } else {
        for (uint32_t b = 0; b < pm->n_blocks && st == SYM_ERR_BUDGET; b++) {
            st = sym_fractal_alloc(pm->blocks[b].f, bytes, 0, id, &r->offset);
            r->block = b;
        }
    }
    if (st != SYM_OK) return st;
    pm->used[t] += sym_residency_block_bytes(pm, t, r);
    if (pm->used[t] > pm->st[t].high_water_bytes) pm->st[t].high_water_bytes = pm->used[t];
    return SYM_OK;
}

static void free_block(sym_pack_manager *pm, int t, res *r) {
    SYM_ASSERT(r->pins == 0);
    pm->used[t] -= sym_residency_block_bytes(pm, t, r);
    SYM_ASSERT(sym_fractal_free(fractal_of(pm, t, r), r->offset) == SYM_OK);
    uint32_t fail_seq = r->fail_seq;
    *r = (res){.fail_seq = fail_seq};
}

/* Ends a LOADING reservation without a result. */
static void drop_loading(sym_pack_manager *pm, int t, res *r) {
    SYM_ASSERT(r->state == LOADING);
    pm->n_transient[t]--;
    free_block(pm, t, r);
}

uint64_t sym_residency_free_bytes(const sym_pack_manager *pm, int t) {
    uint64_t cap = pm->st[t].capacity_bytes - pm->st[t].staging_bytes;
    uint64_t used = pm->used[t] - pm->st[t].staging_bytes;
    return cap - used;
}

/* ---- policy ---------------------------------------------------------------------------------- */

sym_evict_ctx sym_residency_policy_ctx(const sym_pack_manager *pm, int t) {
    return (sym_evict_ctx){.plan = pm->plan,
                           .tier = t,
                           .next_pos = pm->next_pos,
                           .now_tick = pm->tick,
                           .last_tick = pm->last_tick[t],
                           .use_idx0 = pm->use_idx0,
                           .use_pos = pm->use_pos,
                           .used_bytes = pm->used[t] - pm->st[t].staging_bytes,
                           .capacity_bytes = pm->st[t].capacity_bytes - pm->st[t].staging_bytes};
}

static bool evictable(const res *r) {
    return r->state == READY && r->pins == 0 && !r->busy && !r->cancelled;
}

/* The policy's victim in tier t, or -1. */
int64_t sym_residency_victim(sym_pack_manager *pm, int t, uint32_t for_pack, bool optional) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < pm->plan->n_packs; i++)
        if (evictable(&pm->packs[i].r[t])) pm->cands[n++] = i;
    if (n == 0) return -1;
    sym_evict_ctx c = sym_residency_policy_ctx(pm, t);
    int64_t k = pm->o.policy.fn(pm->o.policy.user, &c, pm->cands, n, for_pack, optional);
    SYM_ASSERT(k < (int64_t)n);
    return k < 0 ? -1 : (int64_t)pm->cands[k];
}

void sym_residency_evict(sym_pack_manager *pm, int t, uint32_t id) {
    res *r = &pm->packs[id].r[t];
    pm->st[t].evictions++;
    pm->st[t].evicted_bytes += pm->plan->packs[id].buffer_bytes;
    free_block(pm, t, r);
}

/* The RAM copy of id is no longer read by an upload. */
static void unbusy(sym_pack_manager *pm, uint32_t id) {
    res *s = &pm->packs[id].r[RAM];
    SYM_ASSERT(s->busy);
    s->busy = false;
    pm->n_transient[RAM]--;
    pm->n_uploads_pending--;
    if (s->cancelled) free_block(pm, RAM, s); /* unloaded while the upload read it */
}

/* A DEVICE load of id waiting for its RAM copy gives up (that copy is gone). */
static void drop_waiting_upload(sym_pack_manager *pm, uint32_t id) {
    res *d = &pm->packs[id].r[DEV];
    if (d->state == LOADING && !d->upload_queued) drop_loading(pm, DEV, d);
}

/* Cancels the queued prefetch in tier t needed last; false if none could be cancelled. */
static bool cancel_prefetch(sym_pack_manager *pm, int t) {
    sym_evict_ctx c = sym_residency_policy_ctx(pm, t);
    for (;;) {
        int64_t best = -1;
        uint32_t best_d = 0;
        for (uint32_t i = 0; i < pm->plan->n_packs; i++) {
            const res *r = &pm->packs[i].r[t];
            if (r->state != LOADING || !r->prefetch) continue;
            uint32_t d = sym_evict_next_use(&c, i);
            if (best < 0 || d > best_d) best = i, best_d = d;
        }
        if (best < 0) return false;
        uint32_t id = (uint32_t)best;
        res *r = &pm->packs[id].r[t];
        bool done = false;
        if (t == RAM) {
            if (sym_scheduler_cancel(pm->sched, id, SYM_SCHED_READ)) {
                drop_loading(pm, RAM, r);
                drop_waiting_upload(pm, id);
                done = true;
            }
        } else if (!r->upload_queued) {
            drop_loading(pm, DEV, r); /* its RAM read goes on and stays as a cache fill */
            done = true;
        } else if (sym_scheduler_cancel(pm->sched, id, SYM_SCHED_UPLOAD)) {
            unbusy(pm, id);
            drop_loading(pm, DEV, r);
            done = true;
        }
        if (done) {
            pm->st[t].prefetch_cancelled++;
            return true;
        }
        r->prefetch = false; /* running: no longer cancellable; look for another */
    }
}

static sym_status budget_fail(sym_pack_manager *pm, int t, uint32_t id, bool prefetch) {
    uint32_t n_pinned = 0;
    uint64_t pinned = 0;
    for (uint32_t i = 0; i < pm->plan->n_packs; i++) {
        const res *r = &pm->packs[i].r[t];
        if (r->state == READY && (r->pins || r->busy)) {
            n_pinned++;
            pinned += sym_residency_block_bytes(pm, t, r);
        }
    }
    return SYM_FAIL(SYM_ERR_BUDGET,
                    "tier: no room in %s for pack %u (%llu bytes)%s: %u pinned packs hold %llu "
                    "of %llu bytes, %llu free",
                    sym_tier_name((sym_tier)t), id,
                    (unsigned long long)pm->plan->packs[id].buffer_bytes,
                    prefetch ? " that the policy lets a prefetch take" : "", n_pinned,
                    (unsigned long long)pinned,
                    (unsigned long long)(pm->st[t].capacity_bytes - pm->st[t].staging_bytes),
                    (unsigned long long)sym_residency_free_bytes(pm, t));
}

/* Reserves room for id in tier t, evicting by policy. blocking (a get): also cancels queued
 * prefetches, and sets *wait instead of failing while moves in t are in flight. A prefetch
 * (!blocking) only evicts what the policy allows and never waits. */
static sym_status reserve(sym_pack_manager *pm, int t, uint32_t id, bool blocking, bool *wait) {
    res *r = &pm->packs[id].r[t];
    *wait = false;
    for (;;) {
        sym_status st = alloc_block(pm, t, id, r);
        if (st != SYM_ERR_BUDGET) return st;
        int64_t v = sym_residency_victim(pm, t, id, !blocking);
        if (v >= 0) {
            sym_residency_evict(pm, t, (uint32_t)v);
            continue;
        }
        if (blocking && cancel_prefetch(pm, t)) continue;
        if (blocking && pm->n_transient[t] > 0) {
            *wait = true;
            return SYM_OK;
        }
        return budget_fail(pm, t, id, !blocking);
    }
}

/* ---- starting moves -------------------------------------------------------------------------- */

static sym_status start_read(sym_pack_manager *pm, uint32_t id, bool prefetch, uint64_t key) {
    res *s = &pm->packs[id].r[RAM];
    s->state = LOADING;
    s->prefetch = prefetch;
    s->key = key;
    pm->n_transient[RAM]++;
    sym_sched_job job = {
        .pack_id = id, .kind = SYM_SCHED_READ, .key = key, .host = (char *)pm->arena + s->offset};
    sym_status st = sym_scheduler_submit(pm->sched, &job);
    if (st != SYM_OK) drop_loading(pm, RAM, s);
    return st;
}

static sym_status start_upload(sym_pack_manager *pm, uint32_t id) {
    res *s = &pm->packs[id].r[RAM], *d = &pm->packs[id].r[DEV];
    SYM_ASSERT(s->state == READY && !s->busy && d->state == LOADING && !d->upload_queued);
    s->busy = true;
    pm->n_transient[RAM]++;
    pm->n_uploads_pending++;
    d->upload_queued = true;
    sym_sched_job job = {.pack_id = id,
                         .kind = SYM_SCHED_UPLOAD,
                         .key = d->key,
                         .host = (char *)pm->arena + s->offset,
                         .device = sym_residency_place(pm, DEV, d)};
    sym_status st = sym_scheduler_submit(pm->sched, &job);
    if (st != SYM_OK) {
        d->upload_queued = false;
        unbusy(pm, id);
    }
    return st;
}

/* A LOADING move becomes a get's: never cancelled, served first. */
static void adopt(sym_pack_manager *pm, uint32_t id, int t) {
    res *r = &pm->packs[id].r[t];
    r->prefetch = false;
    r->cancelled = false;
    r->key = 0;
    if (t == RAM)
        sym_scheduler_reprioritize(pm->sched, id, SYM_SCHED_READ, 0);
    else if (r->upload_queued)
        sym_scheduler_reprioritize(pm->sched, id, SYM_SCHED_UPLOAD, 0);
}

/* Waits for some move to finish. Uploads that run on the owner's thread cannot be waited for
 * there: the owner runs them (its own pack's first). */
static void wait_step(sym_pack_manager *pm, uint32_t id) {
    if (!pm->o.upload_thread && pm->n_uploads_pending > 0 &&
        pthread_equal(pthread_self(), pm->owner)) {
        pthread_mutex_unlock(&pm->mu);
        int ran = sym_scheduler_run_uploads(pm->sched, id, 1);
        if (ran == 0) ran = sym_scheduler_run_uploads(pm->sched, UINT32_MAX, 1);
        pthread_mutex_lock(&pm->mu);
        (void)ran; /* none ran: another thread cancelled it meanwhile; the caller re-checks */
        return;
    }
    pthread_cond_wait(&pm->changed, &pm->mu);
}

/* Brings id to READY in tier t for a get; seen: fail_seq of both tiers when the get began. */
sym_status sym_residency_bring(sym_pack_manager *pm, uint32_t id, int t, const uint32_t seen[2]) {
    pack_state *ps = &pm->packs[id];
    for (;;) {
        res *r = &ps->r[t];
        if (r->state == READY) return SYM_OK;
        bool wait;
        if (r->state == ABSENT) {
            if (r->fail_seq != seen[t]) return SYM_FAIL(ps->err, "%s", ps->err_msg);
            SYM_TRY(reserve(pm, t, id, true, &wait));
            if (wait) {
                wait_step(pm, id);
                continue;
            }
            if (t == RAM) {
                SYM_TRY(start_read(pm, id, false, 0));
                continue;
            }
            r->state = LOADING;
            r->key = 0;
            pm->n_transient[DEV]++;
        } else {
            adopt(pm, id, t);
        }
        if (t == DEV && !r->upload_queued) {
            res *s = &ps->r[RAM];
            sym_status st = SYM_OK;
            if (s->state == READY) {
                st = start_upload(pm, id);
            } else if (s->state == LOADING) {
                adopt(pm, id, RAM);
            } else {
                st = reserve(pm, RAM, id, true, &wait);
                if (st == SYM_OK && !wait) st = start_read(pm, id, false, 0);
            }
            if (st != SYM_OK) {
                drop_loading(pm, DEV, r);
                return st;
            }
        }
        wait_step(pm, id);
    }
}

/* The cursor moves to id's first use at or after it. */
void sym_residency_move_cursor(sym_pack_manager *pm, uint32_t id) {
    sym_evict_ctx c = sym_residency_policy_ctx(pm, RAM);
    uint32_t d = sym_evict_next_use(&c, id);
    pm->abs_next += (uint64_t)d + 1;
    pm->next_pos = (uint32_t)((pm->next_pos + (uint64_t)d + 1) % pm->plan->n_uses);
}

/* ---- completions (worker threads, or the engine thread for uploads) ---------------------------
 */

static void record_error(pack_state *ps, sym_status st, const char *detail) {
    ps->err = st;
    snprintf(ps->err_msg, sizeof ps->err_msg, "%s", detail && detail[0] ? detail : "move failed");
}

static void on_read_done(sym_pack_manager *pm, uint32_t id, sym_status st, const char *detail,
                         const sym_pack_io_counts *c, uint64_t ns) {
    pack_state *ps = &pm->packs[id];
    res *s = &ps->r[RAM];
    SYM_ASSERT(s->state == LOADING);
    pm->st[RAM].io_bytes += c->io_bytes;
    pm->st[RAM].io_ns += ns - (c->decode_ns < ns ? c->decode_ns : ns);
    pm->st[RAM].decoded_bytes += c->decoded_bytes;
    pm->st[RAM].decode_ns += c->decode_ns;
    if (st != SYM_OK) {
        record_error(ps, st, detail);
        pm->st[RAM].errors++;
        drop_loading(pm, RAM, s);
        s->fail_seq++;
        res *d = &ps->r[DEV];
        if (d->state == LOADING && !d->upload_queued) {
            drop_loading(pm, DEV, d);
            d->fail_seq++;
        }
        return;
    }
    if (s->cancelled) {
        drop_loading(pm, RAM, s);
        drop_waiting_upload(pm, id);
        return;
    }
    pm->n_transient[RAM]--;
    s->state = READY;
    s->by_prefetch = s->prefetch;
    s->prefetch = false;
    pm->st[RAM].n_loads++;
    pm->st[RAM].bytes_in += pm->plan->packs[id].n_bytes;
    if (pm->plan->packs[id].type == SYM_PACK_EXPERT)
        pm->st[RAM].expert_bytes_in += pm->plan->packs[id].n_bytes;
    pm->last_tick[RAM][id] = ++pm->tick;
    res *d = &ps->r[DEV];
    if (d->state == LOADING && !d->upload_queued && start_upload(pm, id) != SYM_OK) {
        record_error(ps, SYM_ERR_INTERNAL, sym_last_error());
        drop_loading(pm, DEV, d);
        d->fail_seq++;
    }
}

static void on_upload_done(sym_pack_manager *pm, uint32_t id, sym_status st, const char *detail,
                           uint64_t ns) {
    pack_state *ps = &pm->packs[id];
    res *d = &ps->r[DEV];
    SYM_ASSERT(d->state == LOADING && d->upload_queued);
    unbusy(pm, id);
    d->upload_queued = false;
    pm->st[DEV].io_ns += ns;
    if (st != SYM_OK) {
        record_error(ps, st, detail);
        pm->st[DEV].errors++;
        drop_loading(pm, DEV, d);
        d->fail_seq++;
        return;
    }
    if (d->cancelled) {
        drop_loading(pm, DEV, d);
        return;
    }
    pm->n_transient[DEV]--;
    d->state = READY;
    d->by_prefetch = d->prefetch;
    d->prefetch = false;
    pm->st[DEV].n_loads++;
    pm->st[DEV].bytes_in += pm->plan->packs[id].n_bytes;
    if (pm->plan->packs[id].type == SYM_PACK_EXPERT)
        pm->st[DEV].expert_bytes_in += pm->plan->packs[id].n_bytes;
    pm->last_tick[DEV][id] = ++pm->tick;
}

void sym_residency_on_done(void *user, const sym_sched_job *job, sym_status st, const char *detail,
                           const sym_pack_io_counts *counts, uint64_t ns) {
    sym_pack_manager *pm = user;
    pthread_mutex_lock(&pm->mu);
    if (job->kind == SYM_SCHED_READ)
        on_read_done(pm, job->pack_id, st, detail, counts, ns);
    else
        on_upload_done(pm, job->pack_id, st, detail, ns);
    pthread_cond_broadcast(&pm->changed);
    pthread_mutex_unlock(&pm->mu);
}

sym_status sym_residency_evict_until(sym_pack_manager *pm, int t, uint64_t free_bytes) {
    while (sym_residency_free_bytes(pm, t) < free_bytes) {
        int64_t v = sym_residency_victim(pm, t, SYM_EVICT_NO_PACK, false);
        if (v >= 0) {
            sym_residency_evict(pm, t, (uint32_t)v);
        } else if (!cancel_prefetch(pm, t)) {
            SYM_CHECK(pm->n_transient[t] > 0, SYM_ERR_BUDGET,
                      "tier: cannot free %llu bytes in %s: %llu free, the rest pinned",
                      (unsigned long long)free_bytes, sym_tier_name((sym_tier)t),
                      (unsigned long long)sym_residency_free_bytes(pm, t));
            wait_step(pm, UINT32_MAX); /* a move in flight: evict it when it lands */
        }
    }
    return SYM_OK;
}

/* ---- prefetch and unload --------------------------------------------------------------------- */

sym_status sym_residency_prefetch(sym_pack_manager *pm, uint32_t id, int t) {
    pack_state *ps = &pm->packs[id];
    res *r = &ps->r[t];
    if (r->state != ABSENT) {
        r->cancelled = false; /* wanted again (a running move, or a RAM copy an upload reads) */
        return SYM_OK;
    }
    sym_evict_ctx c = sym_residency_policy_ctx(pm, t);
    uint64_t key = pm->abs_next + sym_evict_next_use(&c, id) + 1;
    bool wait;
    sym_status st = reserve(pm, t, id, false, &wait);
    if (st == SYM_OK && t == RAM) st = start_read(pm, id, true, key);
    if (st == SYM_OK && t == DEV) {
        r->state = LOADING;
        r->prefetch = true;
        r->key = key;
        pm->n_transient[DEV]++;
        res *s = &ps->r[RAM];
        if (s->state == READY) {
            st = start_upload(pm, id);
        } else if (s->state == LOADING) {
            s->cancelled = false; /* its completion starts the upload */
        } else {
            st = reserve(pm, RAM, id, false, &wait);
            if (st == SYM_OK) st = start_read(pm, id, true, key);
        }
        if (st != SYM_OK) drop_loading(pm, DEV, r);
    }
    if (st == SYM_ERR_BUDGET) pm->st[t].prefetch_dropped++;
    if (st == SYM_OK) pm->st[t].prefetches++;
    return st;
}

sym_status sym_residency_unload(sym_pack_manager *pm, uint32_t id, int t) {
    res *r = &pm->packs[id].r[t];
    SYM_CHECK(r->pins == 0, SYM_ERR_ARG, "tier: pack %u is pinned in %s by %u handle(s)", id,
              sym_tier_name((sym_tier)t), r->pins);
    if (r->state == READY) {
        if (t == RAM && r->busy)
            r->cancelled = true; /* freed when the upload is done */
        else
            free_block(pm, t, r);
    } else if (r->state == LOADING && t == RAM) {
        if (sym_scheduler_cancel(pm->sched, id, SYM_SCHED_READ))
            drop_loading(pm, RAM, r);
        else
            r->cancelled = true;
        drop_waiting_upload(pm, id);
    } else if (r->state == LOADING) {
        if (!r->upload_queued) {
            drop_loading(pm, DEV, r);
        } else if (sym_scheduler_cancel(pm->sched, id, SYM_SCHED_UPLOAD)) {
            unbusy(pm, id);
            drop_loading(pm, DEV, r);
        } else {
            r->cancelled = true;
        }
    }
    return SYM_OK;
}
