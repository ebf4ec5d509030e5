/* policy_sim.h — replays a pack-access trace (trace.h) through one cache of a given size under a
 * replacement policy, and measures the vitality oracle's expert predictions.
 *
 * The model: one cache (a tier: VRAM, say) of cache_bytes, demand loading. Each FULL or EXPERT
 * record is a use: a hit if the pack is resident, else a miss that moves the pack's bytes in,
 * first evicting packs the policy picks until it fits. GATHER records (embedding rows) are
 * counted but not replayed: the engine gathers those rows on the CPU from RAM (TIERS.md), so they
 * never bring a pack into the cache. Policies:
 *   lru          evict the least recently used pack
 *   lfu          the least frequently used (counts over the whole replay, kept across
 *                evictions; ties: least recently used)
 *   static       "pin what fits, stream the rest": the packs used most often in the trace (ties:
 *                lower id) are pinned, leaving room for the largest pack; the others stream
 *                through that room under LRU (the counts come from the trace itself: a profile)
 *   oracle       the vitality oracle (oracle.h), learning online; eviction_aggression as given
 *   oracle-freq  the same with p = the expert's use rate instead of the MLP (a baseline for the
 *                learned part)
 *   min          Belady's MIN over the trace's actual future: evict the pack whose next use is
 *                farthest (never used again: first). With packs of different sizes this rule is
 *                not guaranteed optimal (that problem is NP-hard); it is the standard heuristic
 *                bound, and exact when the sizes are equal.
 * The oracle needs every token to use the dense packs in the same order (one skeleton, taken
 * from token 0); a trace that does not is refused for the oracle with SYM_ERR_FORMAT.
 *
 * Threads: pure functions of their arguments.
 */
#ifndef SYM_TIER_POLICY_SIM_H
#define SYM_TIER_POLICY_SIM_H

#include <stdint.h>

#include "tier/oracle.h"
#include "tier/trace.h"

typedef enum sym_policy_sim_kind {
    SYM_POLICY_SIM_LRU = 0,
    SYM_POLICY_SIM_LFU,
    SYM_POLICY_SIM_STATIC,
    SYM_POLICY_SIM_ORACLE,
    SYM_POLICY_SIM_ORACLE_FREQ,
    SYM_POLICY_SIM_MIN,
    SYM_POLICY_SIM_COUNT
} sym_policy_sim_kind;

/* "lru", "lfu", "static", "oracle", "oracle-freq", "min"; parse: SYM_ERR_ARG for others. */
const char *sym_policy_sim_name(sym_policy_sim_kind k);
sym_status sym_policy_sim_parse(const char *name, sym_policy_sim_kind *out);

typedef struct sym_policy_sim_options {
    double eviction_aggression;    /* the oracle's; default 0.5 */
    uint64_t seed;                 /* the oracle's weight initialization; default 1 */
    const sym_oracle_mlp *weights; /* start the oracle from these (NULL: fresh) */
} sym_policy_sim_options;

void sym_policy_sim_options_init(sym_policy_sim_options *o);

typedef struct sym_policy_sim_result {
    uint64_t n_uses; /* FULL and EXPERT records replayed */
    uint64_t n_hits;
    uint64_t n_gather;            /* GATHER records (not replayed) */
    uint64_t bytes_used;          /* bytes of the packs of all replayed uses */
    uint64_t bytes_moved;         /* bytes loaded into the cache (the misses) */
    uint64_t bytes_moved_experts; /* the part of bytes_moved that is expert packs */
    uint64_t n_evictions;
} sym_policy_sim_result;

/* Replays t under policy k with a cache of cache_bytes. SYM_ERR_BUDGET if a pack the trace uses
 * is larger than the cache; SYM_ERR_FORMAT (oracle policies) if the trace has no fixed skeleton;
 * SYM_ERR_OOM. */
sym_status sym_policy_sim_run(const sym_trace *t, sym_policy_sim_kind k, uint64_t cache_bytes,
                              const sym_policy_sim_options *o, sym_policy_sim_result *out);

/* Expert prediction quality per layer. Before each expert slot, as soon as the previous layer's
 * router has chosen (one layer of lead time: what a prefetcher could use), the oracle predicts
 * `count` experts of that layer (sym_oracle_predict_experts); they are compared with the router's
 * top_k. Two baselines predict in the same places: the oracle with p = use rate (oracle-freq),
 * and "last": the experts this layer chose for the previous token. precision = hits / (slots x
 * count), recall = hits / (slots x top_k); "last" predicts top_k, so its precision is its recall.
 */
typedef struct sym_policy_sim_layer_pred {
    uint64_t n_slots;
    uint64_t n_hit;      /* oracle (MLP) */
    uint64_t n_hit_freq; /* oracle-freq */
    uint64_t n_hit_last; /* the previous token's experts */
} sym_policy_sim_layer_pred;

typedef struct sym_policy_sim_pred {
    uint32_t count, top_k;
    int n_layer;
    sym_policy_sim_layer_pred *layers;    /* n_layer entries, owned */
    double log_loss_first, log_loss_last; /* the MLP's online log loss over the first and the
                                             last tenth of the tokens */
    uint64_t n_trained;
    sym_oracle_mlp weights; /* the MLP at the end (to save: sym_oracle_set_weights + save) */
} sym_policy_sim_pred;

/* For a mixture-of-experts trace (SYM_ERR_ARG otherwise); count 0: top_k. Caller frees with
 * sym_policy_sim_pred_free. */
sym_status sym_policy_sim_predict(const sym_trace *t, const sym_policy_sim_options *o,
                                  uint32_t count, sym_policy_sim_pred *out);
void sym_policy_sim_pred_free(sym_policy_sim_pred *p);

/* The oracle's layout for t (skeleton from token 0, checked against every token): *skel and
 * *bytes are allocated for l to point at; the caller frees them (sym_free). */
sym_status sym_policy_sim_layout(const sym_trace *t, sym_oracle_layout *l, uint32_t **skel,
                                 uint64_t **bytes);

#endif
