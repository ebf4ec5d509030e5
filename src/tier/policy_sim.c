/* policy_sim.c — trace replay under the policies of policy_sim.h, and the oracle's expert
 * prediction scores. */
#include "tier/policy_sim.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

#define NONE UINT64_MAX

static const char *const k_names[SYM_POLICY_SIM_COUNT] = {"lru",    "lfu",         "static",
                                                          "oracle", "oracle-freq", "min"};

const char *sym_policy_sim_name(sym_policy_sim_kind k) {
    return (unsigned)k < SYM_POLICY_SIM_COUNT ? k_names[k] : "?";
}

sym_status sym_policy_sim_parse(const char *name, sym_policy_sim_kind *out) {
    for (int i = 0; i < SYM_POLICY_SIM_COUNT; i++)
        if (!strcmp(name, k_names[i])) {
            *out = (sym_policy_sim_kind)i;
            return SYM_OK;
        }
    return SYM_FAIL(SYM_ERR_ARG,
                    "policy-sim: unknown policy '%s' (lru, lfu, static, oracle, oracle-freq, min)",
                    name);
}

void sym_policy_sim_options_init(sym_policy_sim_options *o) {
    *o = (sym_policy_sim_options){.eviction_aggression = 0.5, .seed = 1};
}

/* ---- the skeleton ---------------------------------------------------------------------------- */

static uint32_t entry_of(const sym_trace *t, const sym_trace_record *r) {
    return r->pack_id < t->n_dense ? r->pack_id : SYM_ORACLE_SLOT | (uint32_t)r->layer;
}

sym_status sym_policy_sim_layout(const sym_trace *t, sym_oracle_layout *l, uint32_t **skel,
                                 uint64_t **bytes) {
    *skel = NULL;
    *bytes = NULL;
    uint64_t n0 = 0;
    for (uint64_t i = 0; i < t->n_records && t->records[i].token == t->records[0].token; i++)
        n0 += t->records[i].kind != SYM_TRACE_GATHER;
    SYM_CHECK(n0 > 0 && n0 <= UINT32_MAX, SYM_ERR_FORMAT,
              "trace: the first token has %llu uses (FULL or EXPERT): no skeleton for the oracle",
              (unsigned long long)n0);
    uint32_t *s = sym_malloc((size_t)n0 * sizeof *s);
    uint64_t *b = sym_malloc((size_t)t->n_packs * sizeof *b);
    if (!s || !b) {
        sym_free(s);
        sym_free(b);
        return SYM_FAIL(SYM_ERR_OOM, "policy-sim: out of memory");
    }
    uint32_t n = 0;
    for (uint64_t i = 0; n < n0; i++)
        if (t->records[i].kind != SYM_TRACE_GATHER) s[n++] = entry_of(t, &t->records[i]);
    for (uint32_t i = 0; i < t->n_packs; i++)
        b[i] = t->packs[i].bytes;
    /* every token follows it (the last one may stop early) */
    uint32_t j = 0, tok = t->records[0].token;
    for (uint64_t i = 0; i < t->n_records; i++) {
        const sym_trace_record *r = &t->records[i];
        if (r->kind == SYM_TRACE_GATHER) continue;
        if (r->token != tok) {
            if (j != n) {
                sym_free(s);
                sym_free(b);
                return SYM_FAIL(SYM_ERR_FORMAT,
                                "trace: token %u has %u uses, token 0 has %u: the oracle needs "
                                "the same order of uses in every token",
                                tok, j, n);
            }
            tok = r->token;
            j = 0;
        }
        if (j >= n || entry_of(t, r) != s[j]) {
            sym_free(s);
            sym_free(b);
            return SYM_FAIL(SYM_ERR_FORMAT,
                            "trace: token %u, use %u (pack %u) differs from the first token's: "
                            "the oracle needs the same order of uses in every token",
                            r->token, j, r->pack_id);
        }
        j++;
    }
    *l = (sym_oracle_layout){.n_packs = t->n_packs,
                             .n_dense = t->n_dense,
                             .n_layer = t->n_layer,
                             .n_expert = t->n_expert,
                             .top_k = t->top_k,
                             .pack_bytes = b,
                             .skeleton = s,
                             .n_skeleton = n};
    *skel = s;
    *bytes = b;
    return SYM_OK;
}

static sym_status make_oracle(const sym_trace *t, const sym_policy_sim_options *so, bool use_mlp,
                              sym_oracle **out) {
    sym_oracle_layout l;
    uint32_t *skel;
    uint64_t *bytes;
    SYM_TRY(sym_policy_sim_layout(t, &l, &skel, &bytes));
    sym_oracle_options oo;
    sym_oracle_options_init(&oo);
    oo.eviction_aggression = so->eviction_aggression;
    oo.seed = so->seed;
    oo.use_mlp = use_mlp;
    sym_status st = sym_oracle_create(&l, &oo, out);
    sym_free(skel);
    sym_free(bytes);
    if (st == SYM_OK && so->weights) sym_oracle_set_weights(*out, so->weights);
    return st;
}

/* ---- the replay ------------------------------------------------------------------------------ */

typedef struct sim {
    const sym_trace *t;
    sym_policy_sim_kind kind;
    uint64_t cap, used;
    uint32_t *list; /* resident packs */
    uint32_t n_list;
    uint32_t *where;   /* pack -> index in list, or UINT32_MAX */
    uint64_t *last;    /* pack -> record index of its latest use */
    uint64_t *count;   /* pack -> uses so far (lfu), uses in the trace (static) */
    uint64_t *nxt;     /* pack -> record index of its next use (min) */
    uint64_t *next_of; /* record -> record index of the same pack's next use (min) */
    uint8_t *pinned;
    sym_oracle *oracle;
} sim;

static void sim_free(sim *s) {
    sym_free(s->list);
    sym_free(s->where);
    sym_free(s->last);
    sym_free(s->count);
    sym_free(s->nxt);
    sym_free(s->next_of);
    sym_free(s->pinned);
    sym_oracle_destroy(s->oracle);
}

static bool older(const sim *s, uint32_t a, uint32_t b) { return s->last[a] < s->last[b]; }

/* index into s->list of the victim */
static uint32_t victim(sim *s) {
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < s->n_list; i++) {
        uint32_t p = s->list[i];
        if (s->kind == SYM_POLICY_SIM_STATIC && s->pinned[p]) continue;
        if (best == UINT32_MAX) {
            best = i;
            continue;
        }
        uint32_t q = s->list[best];
        bool take = false;
        switch (s->kind) {
        case SYM_POLICY_SIM_LFU:
            take = s->count[p] < s->count[q] || (s->count[p] == s->count[q] && older(s, p, q));
            break;
        case SYM_POLICY_SIM_MIN:
            take = s->nxt[p] > s->nxt[q] ||
                   (s->nxt[p] == s->nxt[q] && s->t->packs[p].bytes > s->t->packs[q].bytes);
            break;
        default: /* LRU, and the unpinned packs of STATIC */
            take = older(s, p, q);
            break;
        }
        if (take) best = i;
    }
    return best;
}

static void evict_at(sim *s, uint32_t i) {
    uint32_t p = s->list[i];
    s->used -= s->t->packs[p].bytes;
    s->where[p] = UINT32_MAX;
    s->list[i] = s->list[--s->n_list];
    if (i < s->n_list) s->where[s->list[i]] = i;
}

static int cmp_count(const void *a, const void *b, void *ctx) {
    const uint64_t *count = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (count[x] != count[y]) return count[x] > count[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* pins the most used packs, leaving room for the largest one */
static sym_status plan_static(sim *s) {
    const sym_trace *t = s->t;
    uint32_t *order = sym_malloc((size_t)t->n_packs * sizeof *order);
    if (!order) return SYM_FAIL(SYM_ERR_OOM, "policy-sim: out of memory");
    uint64_t largest = 0;
    uint32_t n = 0;
    for (uint32_t p = 0; p < t->n_packs; p++)
        if (s->count[p]) {
            order[n++] = p;
            if (t->packs[p].bytes > largest) largest = t->packs[p].bytes;
        }
    qsort_r(order, n, sizeof *order, cmp_count, s->count);
    uint64_t room = s->cap - largest, pinned = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t b = t->packs[order[i]].bytes;
        if (pinned + b <= room) {
            s->pinned[order[i]] = 1;
            pinned += b;
        }
    }
    sym_free(order);
    return SYM_OK;
}

sym_status sym_policy_sim_run(const sym_trace *t, sym_policy_sim_kind k, uint64_t cache_bytes,
                              const sym_policy_sim_options *o, sym_policy_sim_result *out) {
    memset(out, 0, sizeof *out);
    SYM_CHECK((unsigned)k < SYM_POLICY_SIM_COUNT, SYM_ERR_ARG, "policy-sim: policy %d", (int)k);
    uint64_t largest = 0;
    uint32_t largest_id = 0;
    for (uint64_t i = 0; i < t->n_records; i++) {
        const sym_trace_record *r = &t->records[i];
        if (r->kind != SYM_TRACE_GATHER && t->packs[r->pack_id].bytes > largest) {
            largest = t->packs[r->pack_id].bytes;
            largest_id = r->pack_id;
        }
    }
    /* every use may move its pack: the byte counts stay below 2^64 */
    SYM_CHECK(largest == 0 || t->n_records <= UINT64_MAX / largest, SYM_ERR_FORMAT,
              "policy-sim: %llu uses of packs up to %llu bytes overflow the byte counts",
              (unsigned long long)t->n_records, (unsigned long long)largest);
    SYM_CHECK(largest <= cache_bytes, SYM_ERR_BUDGET,
              "policy-sim: a cache of %llu bytes cannot hold pack %u (%llu bytes)",
              (unsigned long long)cache_bytes, largest_id, (unsigned long long)largest);
    sim s = {.t = t, .kind = k, .cap = cache_bytes};
    sym_status st = SYM_OK;
    size_t np = t->n_packs;
    s.list = sym_malloc(np * sizeof *s.list);
    s.where = sym_malloc(np * sizeof *s.where);
    s.last = sym_calloc(np, sizeof *s.last);
    s.count = sym_calloc(np, sizeof *s.count);
    s.nxt = sym_malloc(np * sizeof *s.nxt);
    s.pinned = sym_calloc(np, 1);
    if (!s.list || !s.where || !s.last || !s.count || !s.nxt || !s.pinned)
        SYM_FAIL_GOTO(SYM_ERR_OOM, "policy-sim: out of memory");
    for (size_t p = 0; p < np; p++)
        s.where[p] = UINT32_MAX;
    if (k == SYM_POLICY_SIM_MIN) {
        s.next_of = sym_malloc((size_t)(t->n_records ? t->n_records : 1) * sizeof *s.next_of);
        if (!s.next_of) SYM_FAIL_GOTO(SYM_ERR_OOM, "policy-sim: out of memory");
        for (size_t p = 0; p < np; p++)
            s.nxt[p] = NONE;
        for (uint64_t i = t->n_records; i-- > 0;) {
            const sym_trace_record *r = &t->records[i];
            if (r->kind == SYM_TRACE_GATHER) continue;
            s.next_of[i] = s.nxt[r->pack_id];
            s.nxt[r->pack_id] = i;
        }
    }
    if (k == SYM_POLICY_SIM_STATIC) {
        for (uint64_t i = 0; i < t->n_records; i++)
            if (t->records[i].kind != SYM_TRACE_GATHER) s.count[t->records[i].pack_id]++;
        SYM_TRY_GOTO(plan_static(&s));
    }
    if (k == SYM_POLICY_SIM_ORACLE || k == SYM_POLICY_SIM_ORACLE_FREQ)
        SYM_TRY_GOTO(make_oracle(t, o, k == SYM_POLICY_SIM_ORACLE, &s.oracle));

    /* the oracle is told it evicts from a full tier */
    const sym_oracle_telemetry tel = {.vram_pressure = 1.0};
    uint32_t tok = t->n_records ? t->records[0].token : 0;
    for (uint64_t i = 0; i < t->n_records; i++) {
        const sym_trace_record *r = &t->records[i];
        if (r->kind == SYM_TRACE_GATHER) {
            out->n_gather++;
            continue;
        }
        if (s.oracle && r->token != tok) {
            sym_oracle_update_model(s.oracle);
            tok = r->token;
        }
        uint32_t p = r->pack_id;
        uint64_t b = t->packs[p].bytes;
        out->n_uses++;
        out->bytes_used += b;
        if (s.where[p] != UINT32_MAX) {
            out->n_hits++;
        } else {
            while (s.used + b > s.cap) {
                uint32_t v;
                if (s.oracle)
                    v = sym_oracle_pick_victim(s.oracle, s.list, s.n_list, NULL, &tel);
                else
                    v = victim(&s);
                SYM_ASSERT(v < s.n_list); /* the largest pack fits, and static leaves its room */
                evict_at(&s, v);
                out->n_evictions++;
            }
            s.where[p] = s.n_list;
            s.list[s.n_list++] = p;
            s.used += b;
            out->bytes_moved += b;
            if (p >= t->n_dense) out->bytes_moved_experts += b;
        }
        s.last[p] = i;
        if (k == SYM_POLICY_SIM_LFU) s.count[p]++;
        if (k == SYM_POLICY_SIM_MIN) s.nxt[p] = s.next_of[i];
        if (s.oracle) SYM_TRY_GOTO(sym_oracle_access(s.oracle, p, r->prob));
    }
fail:
    sim_free(&s);
    return st;
}

/* ---- expert predictions ---------------------------------------------------------------------- */

void sym_policy_sim_pred_free(sym_policy_sim_pred *p) {
    if (!p) return;
    sym_free(p->layers);
    memset(p, 0, sizeof *p);
}

static uint32_t count_hits(const uint32_t *pred, uint32_t n_pred, const uint8_t *chosen,
                           uint32_t base) {
    uint32_t h = 0;
    for (uint32_t i = 0; i < n_pred; i++)
        h += chosen[pred[i] - base];
    return h;
}

sym_status sym_policy_sim_predict(const sym_trace *t, const sym_policy_sim_options *o,
                                  uint32_t count, sym_policy_sim_pred *out) {
    memset(out, 0, sizeof *out);
    SYM_CHECK(t->n_expert > 0, SYM_ERR_ARG, "policy-sim: the trace has no experts to predict");
    if (count == 0) count = t->top_k;
    SYM_CHECK(count <= t->n_expert, SYM_ERR_ARG, "policy-sim: cannot predict %u of %u experts",
              count, t->n_expert);
    uint32_t n_exp = t->n_expert;
    size_t ne = (size_t)t->n_layer * n_exp;
    sym_oracle *mlp = NULL, *freq = NULL;
    sym_status st = SYM_OK;
    uint32_t *pred = sym_malloc((size_t)count * sizeof *pred);
    uint8_t *chosen = sym_calloc(n_exp, 1);
    uint8_t *prev = sym_calloc(ne, 1); /* the previous token's choices per layer */
    uint8_t *cur = sym_calloc(ne, 1);
    out->layers = sym_calloc((size_t)t->n_layer, sizeof *out->layers);
    if (!pred || !chosen || !prev || !cur || !out->layers)
        SYM_FAIL_GOTO(SYM_ERR_OOM, "policy-sim: out of memory");
    out->count = count;
    out->top_k = t->top_k;
    out->n_layer = t->n_layer;
    SYM_TRY_GOTO(make_oracle(t, o, true, &mlp));
    SYM_TRY_GOTO(make_oracle(t, o, false, &freq));

    uint32_t first_end = t->n_tokens / 10, last_start = t->n_tokens - t->n_tokens / 10;
    uint32_t tok = t->records[0].token;
    sym_oracle_loss loss;
    for (uint64_t i = 0; i < t->n_records;) {
        const sym_trace_record *r = &t->records[i];
        if (r->kind == SYM_TRACE_GATHER) {
            i++;
            continue;
        }
        if (r->token != tok) {
            sym_oracle_update_model(mlp);
            sym_oracle_update_model(freq);
            memcpy(prev, cur, ne);
            memset(cur, 0, ne);
            if (tok < first_end && r->token >= first_end) {
                sym_oracle_loss_get(mlp, &loss, true);
                out->log_loss_first = loss.log_loss;
            }
            if (tok < last_start && r->token >= last_start) sym_oracle_loss_get(mlp, &loss, true);
            tok = r->token;
        }
        if (r->kind != SYM_TRACE_EXPERT) {
            SYM_TRY_GOTO(sym_oracle_access(mlp, r->pack_id, r->prob));
            SYM_TRY_GOTO(sym_oracle_access(freq, r->pack_id, r->prob));
            i++;
            continue;
        }
        /* a slot: the router's choices, then the predictions made before it */
        uint32_t l = (uint32_t)r->layer, base = t->n_dense + l * n_exp;
        uint64_t j = i;
        memset(chosen, 0, n_exp);
        for (; j < t->n_records && t->records[j].token == r->token &&
               t->records[j].kind == SYM_TRACE_EXPERT && t->records[j].layer == r->layer;
             j++)
            chosen[t->records[j].pack_id - base] = 1;
        sym_policy_sim_layer_pred *lp = &out->layers[l];
        lp->n_slots++;
        uint32_t n = sym_oracle_predict_experts(mlp, (int)l, count, pred, NULL);
        lp->n_hit += count_hits(pred, n, chosen, base);
        n = sym_oracle_predict_experts(freq, (int)l, count, pred, NULL);
        lp->n_hit_freq += count_hits(pred, n, chosen, base);
        for (uint32_t e = 0; e < n_exp; e++) {
            lp->n_hit_last += prev[(size_t)l * n_exp + e] && chosen[e];
            cur[(size_t)l * n_exp + e] = chosen[e];
        }
        for (; i < j; i++) {
            SYM_TRY_GOTO(sym_oracle_access(mlp, t->records[i].pack_id, t->records[i].prob));
            SYM_TRY_GOTO(sym_oracle_access(freq, t->records[i].pack_id, t->records[i].prob));
        }
    }
    sym_oracle_update_model(mlp);
    sym_oracle_loss_get(mlp, &loss, true);
    out->log_loss_last = loss.n ? loss.log_loss : 0;
    out->n_trained = loss.n_trained;
    out->weights = *sym_oracle_weights(mlp);
fail:
    if (st != SYM_OK) sym_policy_sim_pred_free(out);
    sym_oracle_destroy(mlp);
    sym_oracle_destroy(freq);
    sym_free(pred);
    sym_free(chosen);
    sym_free(prev);
    sym_free(cur);
    return st;
}
