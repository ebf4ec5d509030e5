/* oracle.c — the vitality oracle of oracle.h: the cursor in the skeleton, expert features and
 * slots, scores and predictions, the MLP and its online training, the weight file, and the
 * eviction policy for the pack manager.
 *
 * Weight file (oracle-*.weights), little-endian, version 1, exactly 1204 bytes:
 *     0  char[8] "SYMORACL"
 *     8  u32 version (1)
 *    12  u32 n_in (4), 16 u32 n_h1 (16), 20 u32 n_h2 (8), 24 u32 n_out (1)
 *    28  u32 key_bytes (1 .. 255)
 *    32  u64 samples trained
 *    40  char[256] key, zero-padded (the model + device key it was trained for)
 *   296  f32[225] w1 (16 x 4, row-major), b1[16], w2 (8 x 16), b2[8], w3[8], b3
 *  1196  u64 XXH3-64 of bytes [0, 1196)
 */
#include "tier/oracle.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "tier/trace.h"

#define NEVER        UINT64_MAX
#define RATE_ALPHA   (1.0f / 16.0f)
#define P_MIN        1e-4f
#define SHORT_TOKENS 32   /* tokens an MLP prediction is trusted for (expected_gap) */
#define RATE_PRIOR   8.0f /* slots of prior (top_k / n_expert) in the long-run rate */
#define FLOOR_KEY    1e15 /* above any expected distance: n_skeleton * (SHORT_TOKENS + 1 / P_MIN) */
#define BACKLOG_S    0.01 /* a transfer backlog of this many seconds halves the vitality floor */
#define BUF_SAMPLES  4096u
/* the hedge between the MLP and the long-run rate (blend): each predictor's log loss, discounted
 * by HEDGE_DECAY per labelled sample, weighs it by exp(-HEDGE_ETA * loss) */
#define HEDGE_DECAY 0.999
#define HEDGE_ETA   0.1

#define W_MAGIC_BYTES 8
#define W_KEY_CAP     256
#define W_N_PARAMS                                                                                 \
    (SYM_ORACLE_N_H1 * (SYM_ORACLE_N_IN + 1) + SYM_ORACLE_N_H2 * (SYM_ORACLE_N_H1 + 1) +           \
     SYM_ORACLE_N_H2 + 1)
#define W_PARAMS_OFF 296
#define W_HASH_OFF   (W_PARAMS_OFF + 4 * W_N_PARAMS)
#define W_FILE_BYTES (W_HASH_OFF + 8)
#define W_VERSION    1u
_Static_assert(W_N_PARAMS == 225, "the weight file holds a 4-16-8-1 MLP");
_Static_assert(sizeof(sym_oracle_mlp) == 4 * W_N_PARAMS, "sym_oracle_mlp is packed f32");

static const char k_wmagic[W_MAGIC_BYTES] = {'S', 'Y', 'M', 'O', 'R', 'A', 'C', 'L'};

struct sym_oracle {
    sym_oracle_options opt;
    uint32_t n_packs, n_dense, n_expert, top_k;
    uint32_t n_layer;
    uint64_t *bytes; /* n_packs */
    uint32_t *skel;  /* n_skel */
    uint32_t n_skel;
    uint32_t *use_idx0, *use_pos; /* dense pack p: use_pos[use_idx0[p] .. use_idx0[p + 1]) */
    uint32_t *slot_start;         /* per layer: skeleton index of its slot (experts only) */
    /* the cursor: skeleton index of the next access; the open slot, if any */
    uint32_t pos;
    int64_t open_layer; /* -1: none */
    uint32_t n_open;
    double open_rest;                 /* sum of snap_p over the experts not chosen yet */
    uint8_t *open_chosen;             /* n_expert */
    float *open_prob;                 /* n_expert */
    float (*snap_x)[SYM_ORACLE_N_IN]; /* n_expert: features when the slot opened */
    float *snap_p;
    /* predictions waiting for their label: per layer a ring of `horizon` snapshots (features,
     * p, and whether the expert has been chosen since), index (layer * horizon + h) * n_expert + e
     */
    uint32_t horizon;
    float (*ring_x)[SYM_ORACLE_N_IN];
    float *ring_p;
    float *ring_pm, *ring_pl; /* the two predictions p blends (the MLP's, the long-run rate's) */
    uint8_t *ring_hit;
    uint32_t *ring_n; /* per layer: snapshots pending */
    /* per expert, index l * n_expert + e */
    float *rate, *last_prob, *hint, *p;
    float *pm, *pl;  /* p = w pm + (1 - w) pl: the MLP's prediction and the long-run rate's */
    double hedge_m, hedge_l; /* their discounted log losses */
    float w;                 /* the MLP's weight in p (sym_oracle_mlp_weight) */
    float *n_chosen; /* slots that chose it */
    float *gap;      /* expected tokens after the next slot until its next use */
    float *snap_gap;
    uint64_t *last_slot;
    uint64_t *n_slots; /* per layer: slots closed */
    /* the engine's side (sym_oracle_create_for_plan of a MoE plan, sym_oracle_route) */
    uint32_t *plan_map; /* plan pack -> oracle pack; NULL: not made from a MoE plan */
    uint32_t n_plan_packs;
    uint64_t pass;         /* walks of the schedule ended (sym_oracle_end_pass) */
    uint64_t *routed_pass; /* per layer: the pass its router last ran in (NEVER: not yet) */
    uint64_t *chosen_pass; /* per expert: the pass it was last chosen in */
    /* training */
    float (*buf_x)[SYM_ORACLE_N_IN];
    float *buf_y;
    uint32_t n_buf;
    sym_oracle_mlp mlp;
    uint64_t n_trained;
    uint64_t loss_n;
    double loss_ll, loss_brier;
};

/* ---- the MLP --------------------------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *s, float limit) {
    double u = (double)(splitmix(s) >> 11) * (1.0 / 9007199254740992.0);
    return (float)((2.0 * u - 1.0) * limit);
}

void sym_oracle_mlp_init(sym_oracle_mlp *m, uint64_t seed, float prior) {
    memset(m, 0, sizeof *m);
    uint64_t s = seed;
    float l1 = sqrtf(6.0f / (SYM_ORACLE_N_IN + SYM_ORACLE_N_H1));
    float l2 = sqrtf(6.0f / (SYM_ORACLE_N_H1 + SYM_ORACLE_N_H2));
    float l3 = sqrtf(6.0f / (SYM_ORACLE_N_H2 + 1));
    for (int i = 0; i < SYM_ORACLE_N_H1; i++)
        for (int j = 0; j < SYM_ORACLE_N_IN; j++)
            m->w1[i][j] = uniform(&s, l1);
    for (int i = 0; i < SYM_ORACLE_N_H2; i++)
        for (int j = 0; j < SYM_ORACLE_N_H1; j++)
            m->w2[i][j] = uniform(&s, l2);
    for (int i = 0; i < SYM_ORACLE_N_H2; i++)
        m->w3[i] = uniform(&s, l3);
    if (!(prior > 0.0f && prior < 1.0f)) prior = 0.5f;
    m->b3 = logf(prior / (1.0f - prior));
}

typedef struct mlp_act {
    float h1[SYM_ORACLE_N_H1], h2[SYM_ORACLE_N_H2], y;
} mlp_act;

static void forward(const sym_oracle_mlp *m, const float *x, mlp_act *a) {
    for (int i = 0; i < SYM_ORACLE_N_H1; i++) {
        float s = m->b1[i];
        for (int j = 0; j < SYM_ORACLE_N_IN; j++)
            s += m->w1[i][j] * x[j];
        a->h1[i] = tanhf(s);
    }
    float z = m->b3;
    for (int i = 0; i < SYM_ORACLE_N_H2; i++) {
        float s = m->b2[i];
        for (int j = 0; j < SYM_ORACLE_N_H1; j++)
            s += m->w2[i][j] * a->h1[j];
        a->h2[i] = tanhf(s);
        z += m->w3[i] * a->h2[i];
    }
    a->y = 1.0f / (1.0f + expf(-z));
}

float sym_oracle_mlp_predict(const sym_oracle_mlp *m, const float x[SYM_ORACLE_N_IN]) {
    mlp_act a;
    forward(m, x, &a);
    return a.y;
}

static float log_loss(float p, float y) {
    float q = fminf(fmaxf(p, 1e-7f), 1.0f - 1e-7f);
    return -(y * logf(q) + (1.0f - y) * logf(1.0f - q));
}

float sym_oracle_mlp_train(sym_oracle_mlp *m, const float x[SYM_ORACLE_N_IN], float y, float lr) {
    mlp_act a;
    forward(m, x, &a);
    float loss = log_loss(a.y, y);
    float dz = a.y - y; /* d loss / d logit for sigmoid + cross-entropy */
    float d2[SYM_ORACLE_N_H2], d1[SYM_ORACLE_N_H1];
    for (int i = 0; i < SYM_ORACLE_N_H2; i++)
        d2[i] = dz * m->w3[i] * (1.0f - a.h2[i] * a.h2[i]);
    for (int j = 0; j < SYM_ORACLE_N_H1; j++) {
        float s = 0;
        for (int i = 0; i < SYM_ORACLE_N_H2; i++)
            s += m->w2[i][j] * d2[i];
        d1[j] = s * (1.0f - a.h1[j] * a.h1[j]);
    }
    for (int i = 0; i < SYM_ORACLE_N_H2; i++)
        m->w3[i] -= lr * dz * a.h2[i];
    m->b3 -= lr * dz;
    for (int i = 0; i < SYM_ORACLE_N_H2; i++) {
        for (int j = 0; j < SYM_ORACLE_N_H1; j++)
            m->w2[i][j] -= lr * d2[i] * a.h1[j];
        m->b2[i] -= lr * d2[i];
    }
    for (int i = 0; i < SYM_ORACLE_N_H1; i++) {
        for (int j = 0; j < SYM_ORACLE_N_IN; j++)
            m->w1[i][j] -= lr * d1[i] * x[j];
        m->b1[i] -= lr * d1[i];
    }
    return loss;
}

/* ---- create / destroy ------------------------------------------------------------------------ */

void sym_oracle_options_init(sym_oracle_options *o) {
    *o = (sym_oracle_options){.eviction_aggression = 0.5,
                              .learning_rate = 0.05f,
                              .seed = 1,
                              .horizon = 1,
                              .use_mlp = true,
                              .learn = true};
}

static sym_status check_layout(const sym_oracle_layout *l) {
    SYM_CHECK(l->n_layer >= 0 && l->n_layer <= SYM_TRACE_MAX_LAYERS, SYM_ERR_ARG,
              "oracle: n_layer %d", l->n_layer);
    SYM_CHECK(l->n_expert ? l->top_k >= 1 && l->top_k <= l->n_expert : l->top_k == 0, SYM_ERR_ARG,
              "oracle: top_k %u with %u experts", l->top_k, l->n_expert);
    SYM_CHECK(l->n_packs >= 1 && l->n_packs <= SYM_TRACE_MAX_PACKS &&
                  (uint64_t)l->n_dense + (uint64_t)l->n_layer * l->n_expert == l->n_packs,
              SYM_ERR_ARG, "oracle: %u packs are not %u dense + %d layers x %u experts", l->n_packs,
              l->n_dense, l->n_layer, l->n_expert);
    SYM_CHECK(l->n_skeleton >= 1 && l->pack_bytes && l->skeleton, SYM_ERR_ARG,
              "oracle: the layout has no skeleton or pack sizes");
    return SYM_OK;
}

void sym_oracle_destroy(sym_oracle *o) {
    if (!o) return;
    sym_free(o->bytes);
    sym_free(o->skel);
    sym_free(o->use_idx0);
    sym_free(o->use_pos);
    sym_free(o->slot_start);
    sym_free(o->open_chosen);
    sym_free(o->open_prob);
    sym_free(o->snap_x);
    sym_free(o->snap_p);
    sym_free(o->ring_x);
    sym_free(o->ring_p);
    sym_free(o->ring_pm);
    sym_free(o->ring_pl);
    sym_free(o->pm);
    sym_free(o->pl);
    sym_free(o->ring_hit);
    sym_free(o->ring_n);
    sym_free(o->rate);
    sym_free(o->n_chosen);
    sym_free(o->gap);
    sym_free(o->snap_gap);
    sym_free(o->last_prob);
    sym_free(o->hint);
    sym_free(o->p);
    sym_free(o->last_slot);
    sym_free(o->n_slots);
    sym_free(o->buf_x);
    sym_free(o->buf_y);
    sym_free(o->plan_map);
    sym_free(o->routed_pass);
    sym_free(o->chosen_pass);
    sym_free(o);
}

static void features(const sym_oracle *o, uint32_t l, uint32_t e, float *x) {
    size_t i = (size_t)l * o->n_expert + e;
    x[0] = o->rate[i];
    x[1] = o->last_slot[i] == NEVER ? 0.0f
                                    : 1.0f / (1.0f + (float)(o->n_slots[l] - 1 - o->last_slot[i]));
    x[2] = o->last_prob[i];
    x[3] = o->hint[i];
}

/* Expected tokens after the next slot until the next use when each of the next SHORT_TOKENS
 * slots uses the expert with probability q (the MLP's, for the context now) and later ones with
 * its long-run rate r: sum of j * q * (1 - q)^j for j < SHORT_TOKENS, then a geometric tail. */
static float expected_gap(float q, float r) {
    double qq = fmin(fmax(q, P_MIN), 1.0), rr = fmin(fmax(r, P_MIN), 1.0), surv = 1, t = 0;
    for (int j = 0; j < SHORT_TOKENS; j++) {
        t += surv * qq * j;
        surv *= 1.0 - qq;
    }
    return (float)(t + surv * (SHORT_TOKENS + (1.0 - rr) / rr));
}

/* chosen / slots, with RATE_PRIOR slots of prior top_k / n_expert */
static float long_run_rate(const sym_oracle *o, uint32_t l, size_t i, float extra) {
    float prior = (float)o->top_k / (float)o->n_expert;
    return (o->n_chosen[i] + extra + prior * RATE_PRIOR) /
           ((float)o->n_slots[l] + extra + RATE_PRIOR);
}

/* the MLP's p covers `horizon` slots: the per-slot probability that gives it */
static float per_slot(const sym_oracle *o, float p) {
    if (o->horizon <= 1 || !o->opt.use_mlp) return p;
    return 1.0f - powf(1.0f - fminf(p, 0.999999f), 1.0f / (float)o->horizon);
}

/* p of expert i from features x: with the MLP, its prediction blended with the long-run rate's
 * (use within the horizon at the rate chosen / slots) by the hedge's weight, so that a router
 * whose preferences do not drift, where counting beats the MLP's short memory, is served by the
 * count; without, the recent rate x[0] */
static void set_p(sym_oracle *o, size_t i, const float *x, float long_rate) {
    if (!o->opt.use_mlp) {
        o->p[i] = o->pm[i] = o->pl[i] = x[0];
        return;
    }
    o->pm[i] = sym_oracle_mlp_predict(&o->mlp, x);
    o->pl[i] = 1.0f - powf(1.0f - fminf(long_rate, 0.999999f), (float)o->horizon);
    o->p[i] = o->w * o->pm[i] + (1.0f - o->w) * o->pl[i];
}

static void refresh_layer(sym_oracle *o, uint32_t l) {
    for (uint32_t e = 0; e < o->n_expert; e++) {
        float x[SYM_ORACLE_N_IN];
        size_t i = (size_t)l * o->n_expert + e;
        features(o, l, e, x);
        float r = long_run_rate(o, l, i, 0.0f);
        set_p(o, i, x, r);
        o->gap[i] = expected_gap(per_slot(o, o->p[i]), r);
    }
}

/* the skeleton's checks need the slot positions: every layer's slot once, top_k entries long */
static sym_status index_skeleton(sym_oracle *o) {
    uint32_t *count = o->use_idx0; /* counts first, then prefix sums */
    for (uint32_t i = 0; i < o->n_layer; i++)
        o->slot_start[i] = UINT32_MAX;
    for (uint32_t i = 0; i < o->n_skel; i++) {
        uint32_t s = o->skel[i];
        if (s & SYM_ORACLE_SLOT) {
            uint32_t l = s & ~SYM_ORACLE_SLOT;
            SYM_CHECK(o->n_expert && l < o->n_layer, SYM_ERR_ARG,
                      "oracle: skeleton entry %u is a slot of layer %u, which has no experts", i,
                      l);
            SYM_CHECK(o->slot_start[l] == UINT32_MAX, SYM_ERR_ARG,
                      "oracle: layer %u has two expert slots in the skeleton", l);
            SYM_CHECK(i + o->top_k <= o->n_skel, SYM_ERR_ARG,
                      "oracle: layer %u's slot is cut short by the end of the skeleton", l);
            for (uint32_t j = 1; j < o->top_k; j++)
                SYM_CHECK(o->skel[i + j] == s, SYM_ERR_ARG,
                          "oracle: layer %u's slot has fewer than top_k (%u) entries", l, o->top_k);
            o->slot_start[l] = i;
            i += o->top_k - 1;
        } else {
            SYM_CHECK(s < o->n_dense, SYM_ERR_ARG,
                      "oracle: skeleton entry %u names pack %u, not a dense pack (< %u)", i, s,
                      o->n_dense);
            count[s + 1]++;
        }
    }
    for (uint32_t l = 0; l < o->n_layer && o->n_expert; l++)
        SYM_CHECK(o->slot_start[l] != UINT32_MAX, SYM_ERR_ARG,
                  "oracle: layer %u has no expert slot in the skeleton", l);
    for (uint32_t p = 0; p < o->n_dense; p++)
        count[p + 1] += count[p];
    uint32_t *fill = sym_calloc(o->n_dense + 1, sizeof *fill);
    if (!fill) return SYM_FAIL(SYM_ERR_OOM, "oracle: out of memory");
    for (uint32_t i = 0; i < o->n_skel; i++) {
        uint32_t s = o->skel[i];
        if (!(s & SYM_ORACLE_SLOT)) o->use_pos[o->use_idx0[s] + fill[s]++] = i;
    }
    sym_free(fill);
    return SYM_OK;
}

sym_status sym_oracle_create(const sym_oracle_layout *l, const sym_oracle_options *opt,
                             sym_oracle **out) {
    *out = NULL;
    SYM_TRY(check_layout(l));
    SYM_CHECK(opt->eviction_aggression >= 0 && opt->eviction_aggression <= 1, SYM_ERR_ARG,
              "oracle: eviction_aggression %g is outside 0..1", opt->eviction_aggression);
    SYM_CHECK(opt->horizon >= 1 && opt->horizon <= 64, SYM_ERR_ARG,
              "oracle: horizon %u is outside 1..64 tokens", opt->horizon);
    SYM_CHECK(opt->learning_rate >= 0 && opt->learning_rate <= 10, SYM_ERR_ARG,
              "oracle: learning rate %g is outside 0..10", (double)opt->learning_rate);
    sym_oracle *o = sym_calloc(1, sizeof *o);
    if (!o) return SYM_FAIL(SYM_ERR_OOM, "oracle: out of memory");
    o->opt = *opt;
    o->n_packs = l->n_packs;
    o->n_dense = l->n_dense;
    o->n_layer = (uint32_t)l->n_layer;
    o->n_expert = l->n_expert;
    o->top_k = l->top_k;
    o->n_skel = l->n_skeleton;
    o->open_layer = -1;
    size_t ne = (size_t)o->n_layer * o->n_expert, ee = o->n_expert ? o->n_expert : 1;
    o->bytes = sym_malloc((size_t)o->n_packs * sizeof *o->bytes);
    o->skel = sym_malloc((size_t)o->n_skel * sizeof *o->skel);
    o->use_idx0 = sym_calloc((size_t)o->n_dense + 2, sizeof *o->use_idx0);
    o->use_pos = sym_malloc((size_t)o->n_skel * sizeof *o->use_pos);
    o->slot_start = sym_malloc(((size_t)o->n_layer + 1) * sizeof *o->slot_start);
    o->open_chosen = sym_calloc(ee, 1);
    o->open_prob = sym_calloc(ee, sizeof *o->open_prob);
    o->snap_x = sym_calloc(ee, sizeof *o->snap_x);
    o->snap_p = sym_calloc(ee, sizeof *o->snap_p);
    o->horizon = opt->horizon;
    size_t nr = ne * o->horizon + 1;
    o->ring_x = sym_calloc(nr, sizeof *o->ring_x);
    o->ring_p = sym_calloc(nr, sizeof *o->ring_p);
    o->ring_pm = sym_calloc(nr, sizeof *o->ring_pm);
    o->ring_pl = sym_calloc(nr, sizeof *o->ring_pl);
    o->pm = sym_calloc(ne + 1, sizeof *o->pm);
    o->pl = sym_calloc(ne + 1, sizeof *o->pl);
    o->w = 0.5f;
    o->ring_hit = sym_calloc(nr, 1);
    o->ring_n = sym_calloc((size_t)o->n_layer + 1, sizeof *o->ring_n);
    o->rate = sym_calloc(ne + 1, sizeof *o->rate);
    o->n_chosen = sym_calloc(ne + 1, sizeof *o->n_chosen);
    o->gap = sym_calloc(ne + 1, sizeof *o->gap);
    o->snap_gap = sym_calloc(ee, sizeof *o->snap_gap);
    o->last_prob = sym_calloc(ne + 1, sizeof *o->last_prob);
    o->hint = sym_calloc(ne + 1, sizeof *o->hint);
    o->p = sym_calloc(ne + 1, sizeof *o->p);
    o->last_slot = sym_malloc((ne + 1) * sizeof *o->last_slot);
    o->n_slots = sym_calloc((size_t)o->n_layer + 1, sizeof *o->n_slots);
    o->buf_x = sym_malloc(BUF_SAMPLES * sizeof *o->buf_x);
    o->buf_y = sym_malloc(BUF_SAMPLES * sizeof *o->buf_y);
    o->routed_pass = sym_malloc(((size_t)o->n_layer + 1) * sizeof *o->routed_pass);
    o->chosen_pass = sym_malloc((ne + 1) * sizeof *o->chosen_pass);
    sym_status st = SYM_OK;
    if (!o->bytes || !o->skel || !o->use_idx0 || !o->use_pos || !o->slot_start || !o->open_chosen ||
        !o->open_prob || !o->snap_x || !o->snap_p || !o->rate || !o->ring_x || !o->ring_p ||
        !o->ring_hit || !o->ring_n || !o->n_chosen || !o->gap || !o->snap_gap || !o->last_prob ||
        !o->hint || !o->p || !o->last_slot || !o->n_slots || !o->buf_x || !o->buf_y ||
        !o->routed_pass || !o->chosen_pass || !o->ring_pm || !o->ring_pl || !o->pm || !o->pl)
        SYM_FAIL_GOTO(SYM_ERR_OOM, "oracle: out of memory");
    memcpy(o->bytes, l->pack_bytes, (size_t)o->n_packs * sizeof *o->bytes);
    memcpy(o->skel, l->skeleton, (size_t)o->n_skel * sizeof *o->skel);
    SYM_TRY_GOTO(index_skeleton(o));
    for (size_t i = 0; i <= ne; i++)
        o->last_slot[i] = o->chosen_pass[i] = NEVER;
    for (uint32_t i = 0; i <= o->n_layer; i++)
        o->routed_pass[i] = NEVER;
    sym_oracle_mlp_init(&o->mlp, opt->seed,
                        o->n_expert ? (float)o->top_k / (float)o->n_expert : 0.5f);
    for (uint32_t i = 0; i < o->n_layer && o->n_expert; i++)
        refresh_layer(o, i);
    *out = o;
    return SYM_OK;
fail:
    sym_oracle_destroy(o);
    return st;
}

/* The skeleton of a plan with EXPERT packs: its schedule in trace numbering (map), GATHER uses
 * left out, each layer's EXPERT block one slot of top_k entries (as a run's trace has it). */
static uint32_t plan_skeleton(const sym_pack_plan *plan, const uint32_t *map, uint32_t *skel) {
    uint32_t n = 0;
    int slot_layer = -1;
    for (uint32_t u = 0; u < plan->n_uses; u++) {
        const sym_pack_use *use = &plan->schedule[u];
        const sym_pack *pk = &plan->packs[use->pack_id];
        if (use->kind == SYM_PACK_USE_GATHER) continue;
        if (pk->type != SYM_PACK_EXPERT) {
            skel[n++] = map[pk->id];
            continue;
        }
        if (pk->layer == slot_layer) continue;
        slot_layer = pk->layer;
        for (int j = 0; j < plan->n_expert_used; j++)
            skel[n++] = SYM_ORACLE_SLOT | (uint32_t)pk->layer;
    }
    return n;
}

sym_status sym_oracle_create_for_plan(const sym_pack_plan *plan, const sym_oracle_options *opt,
                                      sym_oracle **out) {
    *out = NULL;
    bool moe = plan->n_expert > 0;
    /* a slot has n_expert_used entries where the schedule has n_expert or more */
    size_t n_skel = (size_t)plan->n_uses + (moe ? (size_t)plan->n_layer * plan->n_expert_used : 0);
    uint64_t *bytes = sym_malloc((size_t)plan->n_packs * sizeof *bytes);
    uint32_t *skel = sym_malloc((n_skel + 1) * sizeof *skel);
    uint32_t *map = moe ? sym_malloc((size_t)plan->n_packs * sizeof *map) : NULL;
    sym_trace *t = NULL;
    sym_status st = SYM_OK;
    if (!bytes || !skel || (moe && !map)) SYM_FAIL_GOTO(SYM_ERR_OOM, "oracle: out of memory");
    sym_oracle_layout l = {.n_layer = plan->n_layer, .pack_bytes = bytes, .skeleton = skel};
    if (moe) {
        SYM_TRY_GOTO(sym_trace_create_for_plan(plan, map, &t));
        for (uint32_t i = 0; i < t->n_packs; i++)
            bytes[i] = t->packs[i].bytes;
        l.n_packs = t->n_packs;
        l.n_dense = t->n_dense;
        l.n_expert = t->n_expert;
        l.top_k = t->top_k;
        l.n_skeleton = plan_skeleton(plan, map, skel);
    } else {
        for (uint32_t i = 0; i < plan->n_packs; i++)
            bytes[i] = plan->packs[i].buffer_bytes;
        for (uint32_t i = 0; i < plan->n_uses; i++)
            skel[i] = plan->schedule[i].pack_id;
        l.n_packs = l.n_dense = plan->n_packs;
        l.n_skeleton = plan->n_uses;
    }
    SYM_TRY_GOTO(sym_oracle_create(&l, opt, out));
    if (moe) {
        (*out)->plan_map = map;
        (*out)->n_plan_packs = plan->n_packs;
        map = NULL;
    }
fail:
    sym_trace_destroy(t);
    sym_free(bytes);
    sym_free(skel);
    sym_free(map);
    return st;
}

/* ---- the cursor and the slots ---------------------------------------------------------------- */

static void record_sample(sym_oracle *o, const float *x, bool used, float predicted) {
    float y = used ? 1.0f : 0.0f, q = fminf(fmaxf(predicted, 0.0f), 1.0f);
    o->loss_n++;
    o->loss_ll += log_loss(q, y);
    o->loss_brier += (double)((q - y) * (q - y));
    if (!x) return;
    if (o->n_buf == BUF_SAMPLES) sym_oracle_update_model(o);
    memcpy(o->buf_x[o->n_buf], x, sizeof o->buf_x[0]);
    o->buf_y[o->n_buf++] = y;
}

/* p and gap of expert (l, e) as they will be after the open slot that just chose it */
static void predict_used(sym_oracle *o, uint32_t l, uint32_t e) {
    size_t i = (size_t)l * o->n_expert + e;
    float x[SYM_ORACLE_N_IN] = {o->rate[i] + RATE_ALPHA * (1.0f - o->rate[i]), 1.0f,
                                o->open_prob[e], o->hint[i]};
    float r = long_run_rate(o, l, i, 1.0f);
    set_p(o, i, x, r);
    o->gap[i] = expected_gap(per_slot(o, o->p[i]), r);
}

static size_t ring_at(const sym_oracle *o, uint32_t l, uint64_t slot) {
    return ((size_t)l * o->horizon + (size_t)(slot % o->horizon)) * o->n_expert;
}

static void open_slot(sym_oracle *o, uint32_t l) {
    o->open_layer = l;
    o->n_open = 0;
    o->open_rest = 0;
    size_t r = ring_at(o, l, o->n_slots[l]);
    for (uint32_t e = 0; e < o->n_expert; e++) {
        o->open_chosen[e] = 0;
        o->open_prob[e] = 0;
        features(o, l, e, o->snap_x[e]);
        o->snap_p[e] = o->p[(size_t)l * o->n_expert + e];
        o->snap_gap[e] = o->gap[(size_t)l * o->n_expert + e];
        o->open_rest += o->snap_p[e];
        memcpy(o->ring_x[r + e], o->snap_x[e], sizeof o->ring_x[0]);
        o->ring_p[r + e] = o->snap_p[e];
        o->ring_pm[r + e] = o->pm[(size_t)l * o->n_expert + e];
        o->ring_pl[r + e] = o->pl[(size_t)l * o->n_expert + e];
        o->ring_hit[r + e] = 0;
    }
    o->ring_n[l]++;
}

static void close_slot(sym_oracle *o) {
    if (o->open_layer < 0) return;
    uint32_t l = (uint32_t)o->open_layer, next = (l + 1) % o->n_layer, n = o->n_expert;
    /* every pending prediction of this layer sees this slot's choices; the oldest, made
     * `horizon` slots ago (this one included), is complete */
    uint64_t s = o->n_slots[l];
    for (uint32_t h = 0; h < o->ring_n[l]; h++) {
        size_t r = ring_at(o, l, s - h);
        for (uint32_t e = 0; e < n; e++)
            o->ring_hit[r + e] |= o->open_chosen[e];
    }
    if (o->ring_n[l] == o->horizon) {
        size_t r = ring_at(o, l, s + 1 - o->horizon);
        for (uint32_t e = 0; e < n; e++) {
            record_sample(o, o->ring_x[r + e], o->ring_hit[r + e], o->ring_p[r + e]);
            float y = o->ring_hit[r + e] ? 1.0f : 0.0f;
            o->hedge_m = HEDGE_DECAY * o->hedge_m + log_loss(o->ring_pm[r + e], y);
            o->hedge_l = HEDGE_DECAY * o->hedge_l + log_loss(o->ring_pl[r + e], y);
        }
        o->w = (float)(1.0 / (1.0 + exp(HEDGE_ETA * (o->hedge_m - o->hedge_l))));
        o->ring_n[l]--;
    }
    for (uint32_t e = 0; e < n; e++) {
        size_t i = (size_t)l * n + e;
        bool used = o->open_chosen[e];
        o->rate[i] += RATE_ALPHA * ((used ? 1.0f : 0.0f) - o->rate[i]);
        if (used) {
            o->n_chosen[i] += 1.0f;
            o->last_slot[i] = o->n_slots[l];
            o->last_prob[i] = o->open_prob[e];
        }
        o->hint[(size_t)next * n + e] = used ? o->open_prob[e] : 0.0f;
    }
    o->n_slots[l]++;
    o->open_layer = -1;
    refresh_layer(o, l);
    if (next != l) refresh_layer(o, next);
}

/* Moves the cursor to skeleton index q (in the next token if q is behind it). */
static void seek(sym_oracle *o, uint32_t q) { o->pos = q; }

static void advance(sym_oracle *o) {
    if (++o->pos == o->n_skel) o->pos = 0;
}

sym_status sym_oracle_access(sym_oracle *o, uint32_t pack_id, float prob) {
    SYM_CHECK(pack_id < o->n_packs, SYM_ERR_ARG, "oracle: pack %u of %u", pack_id, o->n_packs);
    if (pack_id < o->n_dense) {
        uint32_t i0 = o->use_idx0[pack_id], i1 = o->use_idx0[pack_id + 1];
        SYM_CHECK(i0 < i1, SYM_ERR_ARG, "oracle: pack %u is not in the skeleton", pack_id);
        close_slot(o);
        uint32_t q = o->use_pos[i0];
        for (uint32_t i = i0; i < i1; i++)
            if (o->use_pos[i] >= o->pos) {
                q = o->use_pos[i];
                break;
            }
        seek(o, q);
        advance(o);
        return SYM_OK;
    }
    uint32_t l = (pack_id - o->n_dense) / o->n_expert, e = (pack_id - o->n_dense) % o->n_expert;
    if (o->open_layer != (int64_t)l) {
        close_slot(o);
        seek(o, o->slot_start[l]);
        open_slot(o, l);
    }
    if (!o->open_chosen[e]) {
        o->open_chosen[e] = 1;
        o->open_prob[e] = prob >= 0.0f && prob <= 1.0f ? prob : 1.0f / (float)o->top_k;
        o->open_rest -= o->snap_p[e];
        predict_used(o, l, e);
    }
    o->n_open++;
    advance(o);
    if (o->n_open >= o->top_k) close_slot(o);
    return SYM_OK;
}

void sym_oracle_start_token(sym_oracle *o) {
    close_slot(o);
    if (o->pos != 0) seek(o, 0);
}

sym_status sym_oracle_route(sym_oracle *o, int layer, int n_tok, int k, const int32_t *expert,
                            const float *weight) {
    SYM_CHECK(o->n_expert && layer >= 0 && (uint32_t)layer < o->n_layer, SYM_ERR_ARG,
              "oracle: layer %d has no experts to route to", layer);
    SYM_CHECK(k == (int)o->top_k && n_tok >= 0, SYM_ERR_ARG,
              "oracle: %d tokens routed to %d experts each; the layout has top_k %u", n_tok, k,
              o->top_k);
    for (int i = 0; i < n_tok * k; i++)
        SYM_CHECK(expert[i] >= 0 && (uint32_t)expert[i] < o->n_expert, SYM_ERR_ARG,
                  "oracle: layer %d routed to expert %d of %u", layer, expert[i], o->n_expert);
    uint32_t base = o->n_dense + (uint32_t)layer * o->n_expert;
    for (int i = 0; i < n_tok * k; i++) { /* each token one slot: top_k accesses */
        SYM_TRY(sym_oracle_access(o, base + (uint32_t)expert[i], weight[i]));
        o->chosen_pass[(size_t)layer * o->n_expert + (size_t)expert[i]] = o->pass;
    }
    o->routed_pass[layer] = o->pass;
    return SYM_OK;
}

float sym_oracle_end_pass(sym_oracle *o) {
    close_slot(o);
    o->pass++;
    return sym_oracle_update_model(o);
}

/* ---- scores and predictions ------------------------------------------------------------------ */

static uint32_t dist(const sym_oracle *o, uint32_t q) {
    return q >= o->pos ? q - o->pos : o->n_skel - o->pos + q;
}

static double vitality_floor(const sym_oracle *o, const sym_oracle_telemetry *tel) {
    double pressure = tel ? fmin(fmax(tel->vram_pressure, 0.0), 1.0) : 0.0;
    double backlog = tel && tel->transfer_backlog_s > 0 ? tel->transfer_backlog_s : 0.0;
    return o->opt.eviction_aggression * (0.1 + 0.4 * pressure) / (1.0 + backlog / BACKLOG_S);
}

/* p and the expected skeleton entries to the next use of expert (l, e) */
static float expert_score(const sym_oracle *o, uint32_t l, uint32_t e, double *next_use) {
    size_t i = (size_t)l * o->n_expert + e;
    uint32_t s = o->slot_start[l];
    if (o->open_layer == (int64_t)l) {
        double to_next = (double)(o->n_skel - o->pos + s); /* the next token's slot */
        if (o->open_chosen[e]) { /* just used: p and gap as after the slot (set by access) */
            *next_use = to_next + (double)o->n_skel * o->gap[i];
            return o->p[i];
        }
        /* picked in the rest of this slot with p_rest (the remaining picks shared in proportion
         * to the predictions), else from the next token's slot on */
        double p_rest = o->snap_p[e] * (double)(o->top_k - o->n_open) / fmax(o->open_rest, 1e-6);
        p_rest = fmin(p_rest, 1.0);
        *next_use = (1.0 - p_rest) * (to_next + (double)o->n_skel * o->snap_gap[e]);
        return o->snap_p[e];
    }
    *next_use = dist(o, s) + (double)o->n_skel * o->gap[i];
    return o->p[i];
}

sym_oracle_score sym_oracle_score_pack(const sym_oracle *o, uint32_t pack_id, double reload_cost,
                                       const sym_oracle_telemetry *tel) {
    sym_oracle_score r = {.p_use = 1.0f};
    if (reload_cost <= 0) reload_cost = 1.0;
    if (pack_id >= o->n_packs) {
        r.p_use = 0;
        r.next_use = r.evict_key = FLOOR_KEY * 2;
        return r;
    }
    if (pack_id < o->n_dense) {
        uint32_t i0 = o->use_idx0[pack_id], i1 = o->use_idx0[pack_id + 1];
        if (i0 == i1) { /* never used: as far as anything can be */
            r.p_use = 0;
            r.next_use = r.evict_key = FLOOR_KEY * 2;
            return r;
        }
        uint32_t q = o->use_pos[i0];
        for (uint32_t i = i0; i < i1; i++)
            if (o->use_pos[i] >= o->pos) {
                q = o->use_pos[i];
                break;
            }
        r.next_use = dist(o, q);
        r.evict_key = r.next_use / reload_cost;
        return r;
    }
    uint32_t l = (pack_id - o->n_dense) / o->n_expert, e = (pack_id - o->n_dense) % o->n_expert;
    r.p_use = expert_score(o, l, e, &r.next_use);
    r.evict_key = r.next_use / reload_cost;
    if (r.p_use < vitality_floor(o, tel)) r.evict_key += FLOOR_KEY;
    return r;
}

uint32_t sym_oracle_pick_victim(const sym_oracle *o, const uint32_t *cands, uint32_t n,
                                const double *reload_cost, const sym_oracle_telemetry *tel) {
    uint32_t best = 0;
    double best_key = -1;
    uint64_t best_bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        double key =
            sym_oracle_score_pack(o, cands[i], reload_cost ? reload_cost[i] : 1.0, tel).evict_key;
        uint64_t b = cands[i] < o->n_packs ? o->bytes[cands[i]] : 0;
        if (i == 0 || key > best_key || (key == best_key && b > best_bytes)) {
            best = i;
            best_key = key;
            best_bytes = b;
        }
    }
    return best;
}

/* Inserts (id, p) into the n-long list kept in descending p (ties: first come), cap entries. */
static uint32_t insert_ranked(uint32_t *ids, float *ps, uint32_t n, uint32_t cap, uint32_t id,
                              float p) {
    if (cap == 0 || (n == cap && !(p > ps[n - 1]))) return n;
    uint32_t i = n < cap ? n : cap - 1;
    while (i > 0 && p > ps[i - 1]) {
        ids[i] = ids[i - 1];
        ps[i] = ps[i - 1];
        i--;
    }
    ids[i] = id;
    ps[i] = p;
    return n < cap ? n + 1 : n;
}

uint32_t sym_oracle_predict_experts(const sym_oracle *o, int layer, uint32_t count, uint32_t *ids,
                                    float *p) {
    if (!o->n_expert || layer < 0 || (uint32_t)layer >= o->n_layer) return 0;
    float scratch[64], *ps = p ? p : scratch;
    if (!p && count > 64) count = 64;
    uint32_t n = 0;
    for (uint32_t e = 0; e < o->n_expert; e++) {
        double next_use;
        float pe = expert_score(o, (uint32_t)layer, e, &next_use);
        n = insert_ranked(ids, ps, n, count, o->n_dense + (uint32_t)layer * o->n_expert + e, pe);
    }
    return n;
}

uint32_t sym_oracle_predict_next_packs(const sym_oracle *o, uint32_t lookahead, uint32_t count,
                                       uint32_t *ids, float *p) {
    uint32_t n = 0, n_known = 0;
    if (lookahead > o->n_skel) lookahead = o->n_skel;
    /* scheduled packs first, in order of use, once each */
    for (uint32_t k = 0; k < lookahead && n < count; k++) {
        uint32_t s = o->skel[(o->pos + k) % o->n_skel];
        if (s & SYM_ORACLE_SLOT) continue;
        bool dup = false;
        for (uint32_t i = 0; i < n && !dup; i++)
            dup = ids[i] == s;
        if (dup) continue;
        ids[n] = s;
        if (p) p[n] = 1.0f;
        n++;
    }
    n_known = n;
    float scratch[256], *ps = p ? p + n_known : scratch;
    uint32_t cap = count - n_known;
    if (!p && cap > 256) cap = 256;
    uint32_t m = 0, prev = UINT32_MAX;
    for (uint32_t k = 0; k < lookahead && cap; k++) {
        uint32_t s = o->skel[(o->pos + k) % o->n_skel];
        bool again = s == prev; /* one look per slot */
        prev = s;
        if (!(s & SYM_ORACLE_SLOT) || again) continue;
        uint32_t l = s & ~SYM_ORACLE_SLOT;
        for (uint32_t e = 0; e < o->n_expert; e++) {
            double next_use;
            float pe = expert_score(o, l, e, &next_use);
            if (o->open_layer == (int64_t)l && o->open_chosen[e]) continue; /* already used */
            m = insert_ranked(ids + n_known, ps, m, cap, o->n_dense + l * o->n_expert + e, pe);
        }
    }
    return n_known + m;
}

void sym_oracle_record_access(sym_oracle *o, uint32_t pack_id, bool was_used, float predicted) {
    if (pack_id >= o->n_packs) return;
    if (pack_id < o->n_dense || !o->n_expert) {
        record_sample(o, NULL, was_used, predicted);
        return;
    }
    uint32_t l = (pack_id - o->n_dense) / o->n_expert, e = (pack_id - o->n_dense) % o->n_expert;
    float x[SYM_ORACLE_N_IN];
    if (o->open_layer == (int64_t)l)
        memcpy(x, o->snap_x[e], sizeof x);
    else
        features(o, l, e, x);
    record_sample(o, x, was_used, predicted);
}

float sym_oracle_update_model(sym_oracle *o) {
    double sum = 0;
    uint32_t n = o->n_buf;
    o->n_buf = 0;
    if (!n || !o->opt.learn) return 0.0f;
    for (uint32_t i = 0; i < n; i++)
        sum += sym_oracle_mlp_train(&o->mlp, o->buf_x[i], o->buf_y[i], o->opt.learning_rate);
    o->n_trained += n;
    /* an open slot keeps the predictions it was opened with (snap_p) */
    for (uint32_t l = 0; l < o->n_layer && o->n_expert; l++)
        refresh_layer(o, l);
    return (float)(sum / n);
}

void sym_oracle_loss_get(const sym_oracle *o, sym_oracle_loss *out, bool reset) {
    out->n = o->loss_n;
    out->log_loss = o->loss_n ? o->loss_ll / (double)o->loss_n : 0;
    out->brier = o->loss_n ? o->loss_brier / (double)o->loss_n : 0;
    out->n_trained = o->n_trained;
    if (reset) {
        sym_oracle *m = (sym_oracle *)o; /* the window is bookkeeping, not the oracle's state */
        m->loss_n = 0;
        m->loss_ll = m->loss_brier = 0;
    }
}

const sym_oracle_mlp *sym_oracle_weights(const sym_oracle *o) { return &o->mlp; }

void sym_oracle_set_weights(sym_oracle *o, const sym_oracle_mlp *m) {
    o->mlp = *m;
    for (uint32_t l = 0; l < o->n_layer && o->n_expert; l++)
        refresh_layer(o, l);
}

/* ---- the weight file ------------------------------------------------------------------------- */

sym_status sym_oracle_weights_path(const char *cache_dir, const char *key, char *buf, size_t cap) {
    char safe[64];
    size_t n = 0;
    for (const char *c = key; *c && n + 1 < sizeof safe; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-';
        safe[n++] = ok ? *c : '_';
    }
    safe[n] = '\0';
    int w = snprintf(buf, cap, "%s/oracle-%s-%016llx.weights", cache_dir, safe,
                     (unsigned long long)XXH3_64bits(key, strlen(key)));
    SYM_CHECK(w > 0 && (size_t)w < cap, SYM_ERR_ARG, "oracle: the weight file path is too long");
    return SYM_OK;
}

static sym_status check_key(const char *key) {
    size_t n = key ? strlen(key) : 0;
    SYM_CHECK(n >= 1 && n < W_KEY_CAP, SYM_ERR_ARG,
              "oracle: the weight key must be 1..%d bytes (got %zu)", W_KEY_CAP - 1, n);
    return SYM_OK;
}

static int mkdirs(const char *path) {
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s", path);
    if (n <= 0 || (size_t)n >= sizeof tmp) return -1;
    for (char *c = tmp + 1; *c; c++)
        if (*c == '/') {
            *c = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *c = '/';
        }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

sym_status sym_oracle_save(const sym_oracle *o, const char *cache_dir, const char *key) {
    SYM_TRY(check_key(key));
    char path[4096], tmp[4200];
    SYM_TRY(sym_oracle_weights_path(cache_dir, key, path, sizeof path));
    SYM_CHECK(mkdirs(cache_dir) == 0, SYM_ERR_IO, "oracle: cannot create %s: %s", cache_dir,
              strerror(errno));
    uint8_t b[W_FILE_BYTES];
    memset(b, 0, sizeof b);
    uint32_t hdr[6] = {W_VERSION, SYM_ORACLE_N_IN,      SYM_ORACLE_N_H1, SYM_ORACLE_N_H2,
                       1,         (uint32_t)strlen(key)};
    memcpy(b, k_wmagic, W_MAGIC_BYTES);
    memcpy(b + 8, hdr, sizeof hdr);
    memcpy(b + 32, &o->n_trained, 8);
    memcpy(b + 40, key, strlen(key));
    memcpy(b + W_PARAMS_OFF, &o->mlp, sizeof o->mlp);
    uint64_t h = XXH3_64bits(b, W_HASH_OFF);
    memcpy(b + W_HASH_OFF, &h, 8);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return SYM_FAIL(SYM_ERR_IO, "oracle: cannot create %s: %s", tmp, strerror(errno));
    bool ok = fwrite(b, 1, sizeof b, f) == sizeof b;
    int err = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        remove(tmp);
        return SYM_FAIL(SYM_ERR_IO, "oracle: cannot write %s: %s", path, strerror(err));
    }
    return SYM_OK;
}

#define WBAD(...) SYM_FAIL(SYM_ERR_FORMAT, "oracle: %s: " __VA_ARGS__)

sym_status sym_oracle_load(sym_oracle *o, const char *cache_dir, const char *key) {
    SYM_TRY(check_key(key));
    char path[4096];
    SYM_TRY(sym_oracle_weights_path(cache_dir, key, path, sizeof path));
    FILE *f = fopen(path, "rb");
    if (!f) return SYM_FAIL(SYM_ERR_IO, "oracle: cannot open %s: %s", path, strerror(errno));
    uint8_t b[W_FILE_BYTES + 1];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (n != W_FILE_BYTES)
        return WBAD("%zu%s bytes, not %d (truncated or not a weight file)", path, n,
                    n > W_FILE_BYTES ? " or more" : "", W_FILE_BYTES);
    if (memcmp(b, k_wmagic, W_MAGIC_BYTES) != 0) return WBAD("not an oracle weight file", path);
    uint32_t hdr[6];
    memcpy(hdr, b + 8, sizeof hdr);
    if (hdr[0] != W_VERSION)
        return WBAD("version %u; this build reads version %u", path, hdr[0], W_VERSION);
    if (hdr[1] != SYM_ORACLE_N_IN || hdr[2] != SYM_ORACLE_N_H1 || hdr[3] != SYM_ORACLE_N_H2 ||
        hdr[4] != 1)
        return WBAD("an MLP %u-%u-%u-%u, not %d-%d-%d-1", path, hdr[1], hdr[2], hdr[3], hdr[4],
                    SYM_ORACLE_N_IN, SYM_ORACLE_N_H1, SYM_ORACLE_N_H2);
    uint64_t h;
    memcpy(&h, b + W_HASH_OFF, 8);
    if (XXH3_64bits(b, W_HASH_OFF) != h) return WBAD("checksum mismatch (corrupt)", path);
    size_t klen = strlen(key);
    if (hdr[5] == 0 || hdr[5] >= W_KEY_CAP) return WBAD("key length %u", path, hdr[5]);
    for (size_t i = hdr[5]; i < W_KEY_CAP; i++)
        if (b[40 + i]) return WBAD("key padding is not zero", path);
    if (hdr[5] != klen || memcmp(b + 40, key, klen) != 0)
        return WBAD("trained for '%.*s', not '%s'", path, (int)hdr[5], (const char *)(b + 40), key);
    sym_oracle_mlp m;
    memcpy(&m, b + W_PARAMS_OFF, sizeof m);
    const float *w = (const float *)&m;
    for (int i = 0; i < W_N_PARAMS; i++)
        if (!isfinite(w[i]) || fabsf(w[i]) > 1e6f)
            return WBAD("weight %d is %g (not finite or absurd)", path, i, (double)w[i]);
    o->mlp = m;
    memcpy(&o->n_trained, b + 32, 8);
    for (uint32_t l = 0; l < o->n_layer && o->n_expert; l++)
        refresh_layer(o, l);
    return SYM_OK;
}

/* ---- the pack manager's policy --------------------------------------------------------------- */

/* The key of plan pack `pack` in schedule entries from the manager's cursor (oracle.h). */
static double manager_key(const sym_oracle *o, const sym_evict_ctx *c, uint32_t pack) {
    double d = sym_evict_next_use(c, pack);
    uint32_t id = o && o->plan_map && pack < o->n_plan_packs ? o->plan_map[pack] : 0;
    if (!o || !o->plan_map || id < o->n_dense) return d; /* known: Belady */
    uint32_t l = (id - o->n_dense) / o->n_expert;
    size_t i = (size_t)(id - o->n_dense);
    double n = (double)c->plan->n_uses;
    double key = d + n * o->gap[i];
    /* its listing ahead is in the pass under way, whose router already chose for its layer */
    if (c->next_pos + d < n && o->routed_pass[l] == o->pass) {
        if (o->chosen_pass[i] == o->pass) return d; /* about to be used */
        key += n;                                   /* not before the next pass */
    }
    sym_oracle_telemetry tel = {
        .vram_pressure = c->capacity_bytes ? (double)c->used_bytes / (double)c->capacity_bytes : 0};
    if (o->p[i] < vitality_floor(o, &tel)) key += FLOOR_KEY;
    return key;
}

int64_t sym_oracle_evict(void *user, const sym_evict_ctx *c, const uint32_t *cands, uint32_t n,
                         uint32_t for_pack, bool optional) {
    const sym_oracle *o = user;
    int64_t best = -1;
    double best_key = 0;
    uint64_t best_bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        double key = manager_key(o, c, cands[i]);
        uint64_t bytes = c->plan->packs[cands[i]].buffer_bytes;
        if (best < 0 || key > best_key || (key == best_key && bytes > best_bytes)) {
            best = i;
            best_key = key;
            best_bytes = bytes;
        }
    }
    if (optional && for_pack != SYM_EVICT_NO_PACK && best_key <= manager_key(o, c, for_pack))
        return -1;
    return best;
}

sym_evict_policy sym_oracle_evict_policy(sym_oracle *o) {
    return (sym_evict_policy){.name = "oracle", .fn = sym_oracle_evict, .user = o};
}
