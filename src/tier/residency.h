/* residency.h — inside the pack manager (not for other modules): its state, and the state
 * machine of moves that pack_manager.c's public functions drive.
 *
 * Per pack and memory tier (res): ABSENT -> LOADING (a block reserved; a job queued or running)
 * -> READY -> ABSENT. A DEVICE load needs a READY RAM copy: while it waits for one it is LOADING
 * without upload_queued; the upload marks that copy busy (pinned) until it finishes.
 * n_transient[t] counts what in tier t will change by itself (LOADING reservations, busy RAM
 * copies): a get that finds no room waits only while it is non-zero.
 *
 * Threads: every sym_residency_* function runs with pm->mu held, except on_done (the scheduler's
 * callback, which takes it). bring and the wait inside it release the lock while waiting or
 * running engine-thread uploads.
 */
#ifndef SYM_TIER_RESIDENCY_H
#define SYM_TIER_RESIDENCY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mem/fractal.h"
#include "tier/pack_manager.h"

#define SYM_RES_DEV SYM_TIER_DEVICE
#define SYM_RES_RAM SYM_TIER_RAM

typedef enum { SYM_RES_ABSENT = 0, SYM_RES_LOADING, SYM_RES_READY } sym_res_state;

/* One pack in one memory tier. */
typedef struct sym_res {
    uint8_t state;
    bool prefetch;      /* LOADING for a prefetch: may be cancelled while its job is queued */
    bool cancelled;     /* unloaded while its job runs (or, RAM, while an upload reads it) */
    bool by_prefetch;   /* READY thanks to a prefetch and not used since (prefetch_hits) */
    bool upload_queued; /* DEVICE LOADING: its UPLOAD job exists (and marks the RAM copy busy) */
    bool busy;          /* RAM READY: an upload is reading this copy */
    uint32_t pins;      /* handles */
    uint32_t block;     /* DEVICE: which backend allocation */
    uint64_t offset;    /* in the arena or that allocation */
    uint64_t key;       /* LOADING: the priority its jobs were given */
    uint32_t fail_seq;  /* bumped by every failed move into this tier */
} sym_res;

typedef struct sym_res_pack {
    sym_res r[SYM_TIER_N_MEM];
    sym_status err; /* the latest failed move */
    char err_msg[384];
} sym_res_pack;

typedef struct sym_res_block {
    sym_tensor t; /* one backend allocation */
    sym_fractal *f;
    uint64_t bytes;
} sym_res_block;

struct sym_pack_manager {
    const sym_pack_plan *plan;
    sym_pack_manager_options o;
    sym_backend *dev;
    sym_pack_io *io;
    sym_scheduler *sched;
    pthread_t owner; /* created the manager: runs uploads unless upload_thread */
    pthread_mutex_t mu;
    pthread_cond_t changed;
    sym_res_pack *packs;
    uint64_t *last_tick[SYM_TIER_N_MEM]; /* per pack, for the policy */
    uint32_t *use_idx0, *use_pos;        /* schedule positions per pack (evict.h) */
    uint32_t *cands;                     /* scratch: n_packs */
    uint32_t next_pos;                   /* the cursor */
    uint64_t abs_next;                   /* uses since create (next_pos = abs_next mod n_uses) */
    uint64_t tick;
    sym_res_block *blocks;
    uint32_t n_blocks;
    void *arena;
    uint64_t arena_bytes;
    sym_fractal *arena_f;
    void **staging;
    int n_staging;
    uint64_t used[SYM_TIER_N_MEM];        /* block bytes (plus staging for RAM) */
    uint32_t n_transient[SYM_TIER_N_MEM]; /* LOADING reservations (+ busy RAM copies) */
    uint32_t n_uploads_pending;           /* UPLOAD jobs submitted and not done */
    sym_tier_stats st[SYM_TIER_N_MEM];
};

/* Where r's block starts; its block bytes; free bytes of tier t (staging excluded). */
sym_tier_place sym_residency_place(const sym_pack_manager *pm, int t, const sym_res *r);
uint64_t sym_residency_block_bytes(const sym_pack_manager *pm, int t, const sym_res *r);
uint64_t sym_residency_free_bytes(const sym_pack_manager *pm, int t);
sym_evict_ctx sym_residency_policy_ctx(const sym_pack_manager *pm, int t);

/* The policy's victim among tier t's READY unpinned packs (-1: none or refused); evicts one. */
int64_t sym_residency_victim(sym_pack_manager *pm, int t, uint32_t for_pack, bool optional);
void sym_residency_evict(sym_pack_manager *pm, int t, uint32_t id);

/* Evicts (policy order), cancels queued prefetches and waits for moves in flight until tier t
 * has free_bytes free; SYM_ERR_BUDGET when pinned packs hold the rest. */
sym_status sym_residency_evict_until(sym_pack_manager *pm, int t, uint64_t free_bytes);
/* Brings id to READY in tier t for a get, waiting as needed; seen: fail_seq of both tiers when
 * the get began (a failure after that is this get's error). */
sym_status sym_residency_bring(sym_pack_manager *pm, uint32_t id, int t, const uint32_t seen[2]);
/* Starts moving id to tier t without waiting (SYM_ERR_BUDGET: no room the policy allows). */
sym_status sym_residency_prefetch(sym_pack_manager *pm, uint32_t id, int t);
/* Drops id from tier t (cancelling or discarding its move). SYM_ERR_ARG if pinned. */
sym_status sym_residency_unload(sym_pack_manager *pm, uint32_t id, int t);
/* The cursor moves to id's first use at or after it. */
void sym_residency_move_cursor(sym_pack_manager *pm, uint32_t id);

/* The scheduler's completion callback (user = pm). */
void sym_residency_on_done(void *user, const sym_sched_job *job, sym_status st, const char *detail,
                           const sym_pack_io_counts *counts, uint64_t ns);

#endif
