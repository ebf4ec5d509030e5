/* oracle.h — the vitality oracle: how soon each pack will be used, which packs come next, and an
 * eviction policy built on that; for mixture-of-experts models a tiny MLP learns online which
 * experts the router will choose.
 *
 * What it knows. A layout describes one token's accesses in order (the skeleton): dense packs by
 * id, and for a mixture of experts one slot of top_k entries per layer whose experts the router
 * picks at run time. The oracle keeps a cursor in that skeleton, moved by sym_oracle_access.
 *   dense pack   the next use is known exactly: next_use = skeleton entries from the cursor to it.
 *   expert pack  p = P(chosen at its layer's next slot), from the MLP (below). The next use is
 *                d_slot (entries to that slot) + n_skeleton * gap, where gap is the expected
 *                number of further tokens: each of the next 32 slots chooses it with probability
 *                p, later ones with its long-run rate r (chosen / slots, 8 slots of prior
 *                top_k / n_expert). An expert just chosen in the open slot is scored as after the
 *                slot; one not chosen yet may still be picked by the rest of the slot (the
 *                remaining picks shared in proportion to the predictions).
 * Eviction takes the pack with the largest key = next_use / reload_cost (reload_cost 1: the usual
 * cost per byte; 0.1: ten times cheaper to bring back, e.g. it has a RAM copy). For a dense
 * schedule this is Belady's rule exactly (distances only, no learned term), which is the
 * offline optimum for the known cyclic order. Size does not enter the key: when the goal is bytes
 * moved, keeping a pack saves its bytes and costs its bytes of room, so size cancels out (it
 * breaks ties: the larger pack leaves first, as in evict.c's Belady).
 *
 * Aggression and telemetry. eviction_aggression a in [0, 1] ([memory] eviction_aggression) and the
 * hardware telemetry set a vitality floor theta = a * (0.1 + 0.4 * vram_pressure) /
 * (1 + transfer_backlog_s / 0.01): expert packs with p < theta leave before any other pack (among
 * themselves by key). Pressure makes low-vitality packs leave earlier; a transfer backlog makes
 * the oracle keep more (reloading would queue behind it). Known (dense) packs are never affected.
 *
 * The learned part. Each expert (l, e) has four features in [0, 1]:
 *   x0 use rate: an exponential moving average (alpha 1/16) of "chosen" over layer l's slots
 *   x1 recency:  1 / (1 + slots of layer l since e was last chosen); 0 if never
 *   x2 strength: the router probability when e was last chosen (1 / top_k if unknown); 0 if never
 *   x3 hint:     the router probability of expert e in the previous layer's latest slot (layer
 *                n_layer - 1 of the previous token for layer 0); 0 if not chosen there
 * and p = MLP(x), an MLP 4-16-8-1 (tanh, tanh, sigmoid; f32). When a layer's slot opens the
 * oracle snapshots the features and p of all its experts; `horizon` slots later (default 1: at
 * the slot's end) each snapshot becomes a training sample labelled by whether the expert was
 * chosen in those slots (sym_oracle_record_access), and sym_oracle_update_model runs SGD on
 * binary cross-entropy over the samples gathered. With use_mlp false, p = x0 (a frequency
 * baseline).
 *
 * Weights persist per model and device: sym_oracle_save / sym_oracle_load in a cache directory
 * (file layout in oracle.c), versioned, checksummed and strictly checked.
 *
 * Threads: an oracle is used by one thread at a time (the pack manager calls its policy under
 * its lock, from the threads calling get / prefetch / evict_until: in the engine its own, which
 * also reports the routing).
 */
#ifndef SYM_TIER_ORACLE_H
#define SYM_TIER_ORACLE_H

#include <stdbool.h>
#include <stdint.h>

#include "pack/pack.h"
#include "tier/evict.h"

/* A skeleton entry SYM_ORACLE_SLOT | l is one of the top_k accesses of layer l's experts. */
#define SYM_ORACLE_SLOT 0x80000000u

#define SYM_ORACLE_N_IN 4
#define SYM_ORACLE_N_H1 16
#define SYM_ORACLE_N_H2 8

/* ---- the MLP --------------------------------------------------------------------------------- */

typedef struct sym_oracle_mlp {
    float w1[SYM_ORACLE_N_H1][SYM_ORACLE_N_IN], b1[SYM_ORACLE_N_H1];
    float w2[SYM_ORACLE_N_H2][SYM_ORACLE_N_H1], b2[SYM_ORACLE_N_H2];
    float w3[SYM_ORACLE_N_H2], b3;
} sym_oracle_mlp;

/* Xavier-uniform weights from seed, zero biases except b3 = logit(prior) (prior in (0, 1)). */
void sym_oracle_mlp_init(sym_oracle_mlp *m, uint64_t seed, float prior);
/* P(y = 1 | x). */
float sym_oracle_mlp_predict(const sym_oracle_mlp *m, const float x[SYM_ORACLE_N_IN]);
/* One SGD step on the binary cross-entropy of (x, y in {0, 1}); returns the loss before it. */
float sym_oracle_mlp_train(sym_oracle_mlp *m, const float x[SYM_ORACLE_N_IN], float y, float lr);

/* ---- the oracle ------------------------------------------------------------------------------ */

typedef struct sym_oracle_layout {
    uint32_t n_packs; /* n_dense + n_layer * n_expert */
    uint32_t n_dense; /* expert e of layer l is pack n_dense + l * n_expert + e */
    int n_layer;
    uint32_t n_expert, top_k;   /* 0, 0 for a dense model */
    const uint64_t *pack_bytes; /* n_packs entries */
    const uint32_t *skeleton;   /* one token's accesses: dense pack ids, SYM_ORACLE_SLOT | layer */
    uint32_t n_skeleton;
} sym_oracle_layout;

typedef struct sym_oracle_options {
    double eviction_aggression; /* 0..1; default 0.5 (the configuration's default) */
    float learning_rate;        /* SGD step; default 0.05 */
    uint32_t horizon;           /* slots the MLP's p covers, 1..64; default 1 (the next slot) */
    uint64_t seed;              /* weight initialization; default 1 */
    bool use_mlp;               /* default true; false: p = the use rate x0 */
    bool learn;                 /* default true; false: the weights stay as loaded */
} sym_oracle_options;

void sym_oracle_options_init(sym_oracle_options *o);

/* What the hardware says now (zero: idle). */
typedef struct sym_oracle_telemetry {
    double vram_pressure;      /* used / budget of the tier room is made in, 0..1 */
    double transfer_backlog_s; /* seconds of transfers queued on the link */
} sym_oracle_telemetry;

typedef struct sym_oracle_score {
    float p_use;      /* probability of use at the pack's next possible use (1: scheduled) */
    double next_use;  /* expected skeleton entries until it */
    double evict_key; /* larger leaves first */
} sym_oracle_score;

typedef struct sym_oracle sym_oracle;

/* Checks the layout (every expert slot has exactly top_k consecutive entries per layer, once per
 * token; ids in range) and copies it. SYM_ERR_ARG naming the problem, SYM_ERR_OOM. Caller owns
 * *out. */
sym_status sym_oracle_create(const sym_oracle_layout *l, const sym_oracle_options *o,
                             sym_oracle **out);
/* The layout of a plan, for the pack manager's policy (sym_oracle_evict_policy) over that plan.
 * A dense plan: its packs and its whole schedule, every pack scheduled (the oracle is then
 * Belady's rule). A plan with EXPERT packs (pack.h): the packs numbered as a trace of the plan
 * numbers them (sym_trace_create_for_plan: the other packs dense, one oracle pack per expert
 * however many plan packs hold it), the skeleton its schedule without GATHER uses and with each
 * layer's EXPERT block as one slot of n_expert_used entries (what sym_policy_sim_layout makes of
 * a run's trace); the router's choices come in through sym_oracle_route. SYM_ERR_ARG for a plan
 * the layout cannot hold, SYM_ERR_OOM. */
sym_status sym_oracle_create_for_plan(const sym_pack_plan *plan, const sym_oracle_options *o,
                                      sym_oracle **out);
void sym_oracle_destroy(sym_oracle *o);

/* An access happened: pack_id was used, with router probability prob for an expert
 * (SYM_TRACE_PROB_UNKNOWN, -1, if not known). Moves the cursor to that use (to the pack's next
 * place in the skeleton when it is not the expected one), closes and opens expert slots.
 * SYM_ERR_ARG for an id out of range or a dense pack that is not in the skeleton. */
sym_status sym_oracle_access(sym_oracle *o, uint32_t pack_id, float prob);
/* Moves the cursor to the start of a token (the next one unless the cursor is at a start). */
void sym_oracle_start_token(sym_oracle *o);

/* The engine's side (an oracle of sym_oracle_create_for_plan): one walk of the plan's schedule
 * (a pass: a chunk of tokens) routed layer's tokens to experts. expert[t * k + j] is token t's
 * j-th expert (k = top_k) with routing weight weight[t * k + j]; each token is one slot of the
 * layer, in order (as in a trace). Marks the layer routed in this pass, and the experts chosen,
 * for the policy. SYM_ERR_ARG for a layer, k or expert out of range (nothing recorded then). */
sym_status sym_oracle_route(sym_oracle *o, int layer, int n_tok, int k, const int32_t *expert,
                            const float *weight);
/* The pass is over (the chunk ran): the next one starts, and the MLP learns from the slots seen
 * (sym_oracle_update_model; its return value). */
float sym_oracle_end_pass(sym_oracle *o);

/* The score of one pack at the cursor (see the top). reload_cost <= 0 counts as 1; tel may be
 * NULL. */
sym_oracle_score sym_oracle_score_pack(const sym_oracle *o, uint32_t pack_id, double reload_cost,
                                       const sym_oracle_telemetry *tel);
/* The victim among cands[0 .. n) (n >= 1): the largest key, ties to the larger pack, then the
 * earlier candidate. reload_cost may be NULL (all 1), else one per candidate. */
uint32_t sym_oracle_pick_victim(const sym_oracle *o, const uint32_t *cands, uint32_t n,
                                const double *reload_cost, const sym_oracle_telemetry *tel);

/* Packs used within the next lookahead skeleton entries, most likely first (scheduled packs
 * with p = 1 in order of use, then experts by p), at most count of them into ids / p (p may be
 * NULL). Returns how many were written. */
uint32_t sym_oracle_predict_next_packs(const sym_oracle *o, uint32_t lookahead, uint32_t count,
                                       uint32_t *ids, float *p);
/* The count most likely experts of layer's next slot into ids / p (p may be NULL), most likely
 * first. Returns how many were written (0 for a dense model or a bad layer). */
uint32_t sym_oracle_predict_experts(const sym_oracle *o, int layer, uint32_t count, uint32_t *ids,
                                    float *p);

/* Records the outcome of a prediction: pack_id was (or was not) used where predicted was the
 * probability given. Expert packs add a training sample (their features as of the prediction);
 * the log loss and Brier score are kept (sym_oracle_loss). */
void sym_oracle_record_access(sym_oracle *o, uint32_t pack_id, bool was_used, float predicted);
/* One SGD pass over the samples recorded since the last update (nothing with learn false),
 * then forgets them. Returns their mean log loss under the weights before the pass (0 if none). */
float sym_oracle_update_model(sym_oracle *o);

typedef struct sym_oracle_loss {
    uint64_t n;         /* outcomes recorded */
    double log_loss;    /* mean binary cross-entropy of the predictions */
    double brier;       /* mean squared error */
    uint64_t n_trained; /* samples the weights have seen, over their life (loaded ones too) */
} sym_oracle_loss;
/* Since the last reset (reset: start a new window). */
void sym_oracle_loss_get(const sym_oracle *o, sym_oracle_loss *out, bool reset);

/* The weight file for (cache_dir, key) — key names the model and the device, any text — into
 * buf: "<cache_dir>/oracle-<key, [A-Za-z0-9._-] kept>-<hash of key>.weights". SYM_ERR_ARG if
 * it does not fit. */
sym_status sym_oracle_weights_path(const char *cache_dir, const char *key, char *buf, size_t cap);
/* Writes the weights (creating cache_dir if needed; temporary name, then rename). SYM_ERR_ARG
 * for an empty key or one over 255 bytes, SYM_ERR_IO naming the file. */
sym_status sym_oracle_save(const sym_oracle *o, const char *cache_dir, const char *key);
/* Replaces the weights with the saved ones. SYM_ERR_IO if there is no file (start fresh),
 * SYM_ERR_FORMAT naming what is wrong (size, magic, version, shape, another key, checksum,
 * a weight that is not finite); the weights are unchanged on failure. */
sym_status sym_oracle_load(sym_oracle *o, const char *cache_dir, const char *key);
/* The MLP itself (for tests and tools), and replacing it (the predictions are recomputed). */
const sym_oracle_mlp *sym_oracle_weights(const sym_oracle *o);
void sym_oracle_set_weights(sym_oracle *o, const sym_oracle_mlp *m);

/* The oracle as a pack manager policy (evict.h); o must outlive the manager and come from
 * sym_oracle_create_for_plan of the manager's plan (otherwise every pack is ranked as Belady
 * ranks it). Keys are in schedule entries from the manager's cursor, so that dense packs and
 * experts compare:
 *   dense pack   sym_evict_next_use: exactly Belady's rule, ties and refusals included
 *   expert pack  d = sym_evict_next_use to its next listing in the schedule; when that listing
 *                is in the current pass and its layer was routed in this pass: d if the expert
 *                was chosen (it is about to be used), else d + n_uses * (1 + gap) (not before
 *                the next pass); otherwise d + n_uses * gap (gap as at the top: the expected
 *                passes skipped before it is chosen). Experts below the vitality floor (the
 *                pressure from the context's used / capacity) leave first, unless about to be
 *                used.
 * A prefetch is refused like Belady's: when no candidate's key exceeds the fetched pack's. */
sym_evict_policy sym_oracle_evict_policy(sym_oracle *o);
int64_t sym_oracle_evict(void *user, const sym_evict_ctx *c, const uint32_t *cands, uint32_t n,
                         uint32_t for_pack, bool optional);

#endif
