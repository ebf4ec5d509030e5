/* evict.c — Belady's rule for the cyclic schedule, and LRU. */
#include "tier/evict.h"

uint32_t sym_evict_next_use(const sym_evict_ctx *c, uint32_t pack_id) {
    uint32_t n_uses = c->plan->n_uses;
    uint32_t i0 = c->use_idx0[pack_id], i1 = c->use_idx0[pack_id + 1];
    if (i0 == i1) return n_uses - 1; /* never used: as far as anything can be */
    /* the first use at or after the cursor, else the first use of the next cycle */
    for (uint32_t i = i0; i < i1; i++)
        if (c->use_pos[i] >= c->next_pos) return c->use_pos[i] - c->next_pos;
    return n_uses - c->next_pos + c->use_pos[i0];
}

int64_t sym_evict_belady(void *user, const sym_evict_ctx *c, const uint32_t *cands, uint32_t n,
                         uint32_t for_pack, bool optional) {
    (void)user;
    int64_t best = -1;
    uint32_t best_d = 0;
    uint64_t best_bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t d = sym_evict_next_use(c, cands[i]);
        uint64_t bytes = c->plan->packs[cands[i]].buffer_bytes;
        if (best < 0 || d > best_d || (d == best_d && bytes > best_bytes)) {
            best = i;
            best_d = d;
            best_bytes = bytes;
        }
    }
    if (optional && for_pack != SYM_EVICT_NO_PACK && best_d <= sym_evict_next_use(c, for_pack))
        return -1;
    return best;
}

int64_t sym_evict_lru(void *user, const sym_evict_ctx *c, const uint32_t *cands, uint32_t n,
                      uint32_t for_pack, bool optional) {
    (void)user, (void)for_pack, (void)optional;
    int64_t best = -1;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t t = c->last_tick[cands[i]];
        if (best < 0 || t < c->last_tick[cands[best]] ||
            (t == c->last_tick[cands[best]] && cands[i] < cands[best]))
            best = i;
    }
    return best;
}

sym_evict_policy sym_evict_policy_belady(void) {
    return (sym_evict_policy){.name = "belady", .fn = sym_evict_belady};
}

sym_evict_policy sym_evict_policy_lru(void) {
    return (sym_evict_policy){.name = "lru", .fn = sym_evict_lru};
}
