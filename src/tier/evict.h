/* evict.h — eviction policies: which resident, unpinned pack leaves a tier when room is needed.
 *
 * A policy is one small function. The pack manager calls it under its lock with the packs it may
 * evict (READY in that tier, no handle, no move reading them) and evicts the one it returns,
 * repeating until the allocation fits. The vitality oracle (oracle.h, sym_oracle_evict_policy)
 * is another: it makes Belady's choices for the packs of a dense schedule and scores expert packs
 * by their predicted use. Two are built in here:
 *   Belady  the pack whose next use in the cyclic schedule is farthest from the cursor. For the
 *           known schedule of a dense model this is the offline optimum (Belady's MIN): on a
 *           cyclic scan of N packs through room for C it keeps C - 1 packs and streams the rest,
 *           N - C + 1 moves per token where LRU needs N.
 *   LRU     the pack used (or loaded) longest ago: for comparison, and for access patterns that
 *           do not follow the schedule. It is the worst policy for a cyclic scan.
 *
 * Threads: pure functions of their arguments; the manager serializes calls.
 */
#ifndef SYM_TIER_EVICT_H
#define SYM_TIER_EVICT_H

#include <stdbool.h>
#include <stdint.h>

#include "pack/pack.h"

#define SYM_EVICT_NO_PACK UINT32_MAX

/* What a policy may look at. Borrowed from the manager for the duration of one call. */
typedef struct sym_evict_ctx {
    const sym_pack_plan *plan;
    int tier;                  /* the sym_tier room is made in */
    uint32_t next_pos;         /* the cursor: schedule index of the next use, < plan->n_uses */
    uint64_t now_tick;         /* a counter bumped by every get and every completed load */
    const uint64_t *last_tick; /* per pack: tick of its latest get or load in this tier */
    const uint32_t *use_idx0;  /* per pack p: use_pos[use_idx0[p] .. use_idx0[p + 1]) are */
    const uint32_t *use_pos;   /*   the schedule indices where p is used, ascending */
    uint64_t used_bytes;       /* the tier's blocks in use and its capacity (0: unknown): */
    uint64_t capacity_bytes;   /*   the pressure a policy may weigh */
} sym_evict_ctx;

/* Schedule entries from the cursor to pack_id's next use: 0 if it is used at next_pos, at most
 * n_uses - 1. O(uses of the pack). */
uint32_t sym_evict_next_use(const sym_evict_ctx *c, uint32_t pack_id);

/* Picks a victim among cands[0 .. n) (n >= 1). for_pack is the pack the room is for
 * (SYM_EVICT_NO_PACK: evict_until). optional is true for a prefetch: the policy may refuse
 * (return -1) when every candidate is worth more than what is being fetched. Returns an index
 * into cands, or -1 to evict nothing. */
typedef int64_t (*sym_evict_fn)(void *user, const sym_evict_ctx *c, const uint32_t *cands,
                                uint32_t n, uint32_t for_pack, bool optional);

typedef struct sym_evict_policy {
    const char *name;
    sym_evict_fn fn;
    void *user;
} sym_evict_policy;

/* Belady: the farthest next use; for a prefetch only a victim used after for_pack (evicting a
 * pack needed sooner than the one fetched would move bytes twice). Ties: the larger block. */
int64_t sym_evict_belady(void *user, const sym_evict_ctx *c, const uint32_t *cands, uint32_t n,
                         uint32_t for_pack, bool optional);
/* LRU: the smallest last_tick (ties: the lower id). Never refuses. */
int64_t sym_evict_lru(void *user, const sym_evict_ctx *c, const uint32_t *cands, uint32_t n,
                      uint32_t for_pack, bool optional);

sym_evict_policy sym_evict_policy_belady(void);
sym_evict_policy sym_evict_policy_lru(void);

#endif
