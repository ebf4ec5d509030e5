/* pack.c — the pack planner of pack.h: validate the weight table, walk the blocks in the order
 * of use, cut each block into the fewest, most even packs, lay out each pack's file ranges. */
#include "pack/pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

#define NIL       UINT32_MAX
#define MAX_BLOCK 8 /* attn_norm, bq, wq, bk, wk, bv, wv, wo */

static const char *const k_type_names[SYM_PACK_TYPE_COUNT] = {"embed", "attention", "mlp",
                                                              "norm",  "output",    "expert"};

const char *sym_pack_type_name(sym_pack_type t) {
    return (unsigned)t < SYM_PACK_TYPE_COUNT ? k_type_names[t] : "?";
}

static const char *const k_cut_names[] = {"buddy", "even"};

const char *sym_pack_cut_name(sym_pack_cut c) {
    return (unsigned)c < sizeof k_cut_names / sizeof k_cut_names[0] ? k_cut_names[c] : "?";
}

sym_status sym_pack_cut_parse(const char *name, sym_pack_cut *out) {
    for (unsigned i = 0; i < sizeof k_cut_names / sizeof k_cut_names[0]; i++)
        if (!strcmp(name, k_cut_names[i])) {
            *out = (sym_pack_cut)i;
            return SYM_OK;
        }
    return SYM_FAIL(SYM_ERR_ARG, "pack: unknown cut '%s' (buddy, even)", name);
}

void sym_pack_options_init(sym_pack_options *o) {
    o->max_pack_bytes = (uint64_t)SYM_PACK_DEFAULT_MB << 20;
    o->cut = SYM_PACK_CUT_BUDDY;
}

sym_status sym_pack_limit_from_mb(int max_pack_mb, uint64_t *max_pack_bytes) {
    if (max_pack_mb == 0) max_pack_mb = SYM_PACK_DEFAULT_MB; /* automatic */
    SYM_CHECK(max_pack_mb >= SYM_PACK_MIN_MB && max_pack_mb <= SYM_PACK_MAX_MB, SYM_ERR_CONFIG,
              "max_pack_mb = %d is out of range (%d..%d)", max_pack_mb, SYM_PACK_MIN_MB,
              SYM_PACK_MAX_MB);
    *max_pack_bytes = (uint64_t)max_pack_mb << 20;
    return SYM_OK;
}

/* ---- growing arrays -------------------------------------------------------------------------- */

static sym_status grow(void **arr, uint32_t *cap, uint32_t n, size_t elem) {
    if (n < *cap) return SYM_OK;
    SYM_CHECK(*cap < UINT32_MAX / 2, SYM_ERR_ARG, "pack: the plan has too many entries");
    uint32_t c = *cap ? *cap * 2 : 64;
    void *p = sym_realloc(*arr, (size_t)c * elem);
    if (!p) return SYM_FAIL(SYM_ERR_OOM, "pack: out of memory for the plan");
    *arr = p;
    *cap = c;
    return SYM_OK;
}

typedef struct builder {
    sym_pack_plan *p;
    uint64_t limit;
    sym_pack_cut cut;
    uint32_t *slot;     /* (n_layer + 1) * SYM_ROLE_COUNT weight indices (NIL: absent) */
    uint32_t *exp_slot; /* split experts: n_layer * n_expert * 3 (gate, up, down) indices */
    uint32_t cap_packs, cap_pieces, cap_ranges, cap_uses;
    uint32_t *order; /* scratch: a pack's pieces sorted by file position */
    uint32_t cap_order;
} builder;

static uint32_t slot_of(const builder *b, int layer, sym_tensor_role role) {
    return b->slot[(size_t)(layer + 1) * SYM_ROLE_COUNT + role];
}

static bool per_expert_role(sym_tensor_role r) {
    return r == SYM_ROLE_GATE_EXP || r == SYM_ROLE_UP_EXP || r == SYM_ROLE_DOWN_EXP;
}
static bool stacked_role(sym_tensor_role r) {
    return r == SYM_ROLE_GATE_EXPS || r == SYM_ROLE_UP_EXPS || r == SYM_ROLE_DOWN_EXPS;
}

/* The slot of a weight: split experts have one per (layer, expert, matrix). */
static uint32_t *slot_ptr(builder *b, const sym_tensor_spec *s, int n_expert) {
    if (per_expert_role(s->role))
        return &b->exp_slot[((size_t)s->layer * (size_t)n_expert + (size_t)s->expert) * 3 +
                            (size_t)(s->role - SYM_ROLE_GATE_EXP)];
    return &b->slot[(size_t)(s->layer + 1) * SYM_ROLE_COUNT + s->role];
}

/* ---- validating the input table -------------------------------------------------------------- */

static int cmp_file_pos(const void *x, const void *y, void *ctx) {
    const sym_pack_weight *w = ctx;
    const sym_pack_weight *a = &w[*(const uint32_t *)x], *b = &w[*(const uint32_t *)y];
    if (a->file_idx != b->file_idx) return a->file_idx < b->file_idx ? -1 : 1;
    return a->file_offset < b->file_offset ? -1 : a->file_offset > b->file_offset;
}

static sym_status read_table(builder *b, const sym_hparams *hp, const sym_weight *in, uint64_t n) {
    sym_pack_plan *p = b->p;
    SYM_CHECK(n <= sym_arch_n_specs(hp), SYM_ERR_ARG,
              "pack: %llu weights for a model of %llu tensors", (unsigned long long)n,
              (unsigned long long)sym_arch_n_specs(hp));
    size_t n_slots = (size_t)(hp->n_layer + 1) * SYM_ROLE_COUNT;
    size_t n_exp = hp->expert_split ? (size_t)hp->n_layer * (size_t)hp->n_expert * 3 : 1;
    p->weights = sym_calloc(n ? (size_t)n : 1, sizeof *p->weights);
    b->slot = sym_malloc(n_slots * sizeof *b->slot);
    b->exp_slot = sym_malloc(n_exp * sizeof *b->exp_slot);
    if (!p->weights || !b->slot || !b->exp_slot)
        return SYM_FAIL(SYM_ERR_OOM, "pack: out of memory");
    memset(b->slot, 0xff, n_slots * sizeof *b->slot);
    memset(b->exp_slot, 0xff, n_exp * sizeof *b->exp_slot);
    p->n_weights = (uint32_t)n;
    for (uint64_t i = 0; i < n; i++) {
        const sym_weight *w = &in[i];
        sym_pack_weight *o = &p->weights[i];
        sym_tensor_spec s;
        SYM_CHECK(w->name && sym_arch_find_spec(hp, w->name, &s), SYM_ERR_ARG,
                  "pack: '%s' is not a weight of this %s model", w->name ? w->name : "(null)",
                  hp->arch);
        SYM_CHECK((unsigned)w->type < SYM_DT_COUNT, SYM_ERR_ARG, "pack: %s has type %d", s.name,
                  (int)w->type);
        SYM_CHECK(w->n_rows == s.n_rows && w->n_cols == s.n_cols, SYM_ERR_ARG,
                  "pack: %s is %lld x %lld, the model needs %lld x %lld", s.name,
                  (long long)w->n_rows, (long long)w->n_cols, (long long)s.n_rows,
                  (long long)s.n_cols);
        uint64_t rb = (uint64_t)s.n_cols * sym_dtype_size(w->type);
        SYM_CHECK(w->n_bytes == rb * (uint64_t)s.n_rows, SYM_ERR_ARG,
                  "pack: %s has %llu bytes, its shape and type make %llu", s.name,
                  (unsigned long long)w->n_bytes, (unsigned long long)(rb * (uint64_t)s.n_rows));
        SYM_CHECK(w->file_offset <= UINT64_MAX - w->n_bytes && w->file_idx >= 0, SYM_ERR_ARG,
                  "pack: %s has an impossible file position", s.name);
        SYM_CHECK(!(s.role == SYM_ROLE_OUTPUT && hp->tied_embeddings), SYM_ERR_ARG,
                  "pack: %s is present but the embeddings are tied", s.name);
        uint32_t *sl = slot_ptr(b, &s, hp->n_expert);
        SYM_CHECK(*sl == NIL, SYM_ERR_ARG, "pack: %s appears twice", s.name);
        *sl = (uint32_t)i;
        snprintf(o->name, sizeof o->name, "%s", s.name);
        o->role = s.role;
        o->layer = s.layer;
        o->expert = s.expert;
        o->type = w->type;
        o->n_rows = w->n_rows;
        o->n_cols = w->n_cols;
        o->row_bytes = rb;
        o->n_bytes = w->n_bytes;
        o->file_offset = w->file_offset;
        o->file_idx = w->file_idx;
    }
    for (uint64_t i = 0; i < sym_arch_n_specs(hp); i++) {
        sym_tensor_spec s;
        sym_arch_spec_at(hp, i, &s);
        bool needed = s.role != SYM_ROLE_OUTPUT || !hp->tied_embeddings;
        SYM_CHECK(!needed || *slot_ptr(b, &s, hp->n_expert) != NIL, SYM_ERR_ARG,
                  "pack: weight %s is missing", s.name);
    }
    /* weights may not share file bytes: every byte is planned once */
    uint32_t *ix = sym_malloc((n ? (size_t)n : 1) * sizeof *ix);
    if (!ix) return SYM_FAIL(SYM_ERR_OOM, "pack: out of memory");
    for (uint32_t i = 0; i < n; i++)
        ix[i] = i;
    qsort_r(ix, (size_t)n, sizeof *ix, cmp_file_pos, p->weights);
    sym_status st = SYM_OK;
    for (uint64_t i = 1; i < n && st == SYM_OK; i++) {
        const sym_pack_weight *a = &p->weights[ix[i - 1]], *c = &p->weights[ix[i]];
        if (a->file_idx == c->file_idx && a->file_offset + a->n_bytes > c->file_offset)
            st = SYM_FAIL(SYM_ERR_ARG, "pack: %s and %s overlap in file %d", a->name, c->name,
                          a->file_idx);
    }
    sym_free(ix);
    return st;
}

/* ---- cutting a block ------------------------------------------------------------------------- */

/* A block is a sequence of weights, or of row ranges of weights (an expert's rows of a stacked
 * expert tensor); a matrix is a run of rows, a vector a single row. Packs are
 * filled next-fit, row by row, up to a capacity ("cap"). A run of vectors is placed together with
 * the first row of the matrix that follows (a "lead"), so norms and biases open the pack holding
 * their matrix's first rows. Every piece after a pack's first reserves SYM_PACK_RANGE_ALIGN - 1
 * bytes for the padding before its range, so the capacity bounds the pack's whole buffer.
 *
 * SYM_PACK_CUT_BUDDY: packs are sized for the fractal (buddy) allocator, which rounds every block
 * up to a power of two. Each pack's cap is chosen when it opens, from the bytes the block still has
 * (rest): rest itself when it fits in P (the largest power of two <= the limit) and rounding it up
 * wastes at most P/8; otherwise min(P, the largest power of two <= rest). So a block of 66 MiB
 * under 32 MiB becomes 32 + 32 + 2 (not 3 x 22, each of which would take a 32 MiB block), 18 MiB
 * becomes 16 + 2.
 *
 * SYM_PACK_CUT_EVEN: next-fit with one cap gives the fewest packs for that cap (the furthest reach
 * is optimal for contiguous cuts) and the count only falls as the cap grows; the fewest packs at
 * the limit, n_min, is kept while the cap is binary-searched down to the smallest value that still
 * gives n_min: the most even cut with the fewest packs.
 *
 * Neither cap goes below the largest row or lead that fits the limit. */

#define PAD (SYM_PACK_RANGE_ALIGN - 1)

typedef struct block {
    sym_pack_type type;
    int layer;
    int expert; /* EXPERT blocks; -1 otherwise */
    uint32_t w[MAX_BLOCK];
    int64_t row0[MAX_BLOCK], n_rows[MAX_BLOCK]; /* the rows of w[i] the block holds */
    int n;
} block;

/* Bytes the vectors from position i on and the next matrix's first row take in a pack: opening a
 * fresh pack (fresh) or joining one (every piece then reserves padding). */
static uint64_t lead_bytes(const builder *b, const block *k, int i, bool fresh) {
    uint64_t s = 0;
    for (bool first = fresh; i < k->n; i++, first = false) {
        const sym_pack_weight *w = &b->p->weights[k->w[i]];
        s += w->row_bytes + (first ? 0 : PAD);
        if (w->n_rows > 1) break;
    }
    return s;
}

static inline uint64_t pow2_floor(uint64_t x) {
    return x ? (uint64_t)1 << (63 - __builtin_clzll(x)) : 0;
}
static inline uint64_t pow2_ceil(uint64_t x) { return x <= 1 ? 1 : pow2_floor(x - 1) << 1; }

typedef struct cutter {
    builder *b;
    const block *k;
    uint64_t cap;     /* EVEN: the cap of every pack; BUDDY: of the open pack */
    uint64_t min_cap; /* the largest row or lead that fits the limit */
    bool emit;
    uint32_t n_packs;
    uint64_t cur;    /* bytes the open pack takes, reserved padding included */
    uint64_t data;   /* its weight bytes */
    uint64_t rest;   /* weight bytes of the block not yet placed */
    int n_rest;      /* weights not (completely) placed */
    uint32_t piece0; /* the open pack's first piece (emit) */
} cutter;

/* BUDDY: the cap of a pack opened with c->rest bytes to go (padding estimated per weight). */
static void open_pack(cutter *c) {
    if (c->b->cut != SYM_PACK_CUT_BUDDY) return;
    uint64_t rest = c->rest + (uint64_t)c->n_rest * PAD, big = pow2_floor(c->b->limit);
    if (rest <= big && pow2_ceil(rest) - rest <= big / 8)
        c->cap = pow2_ceil(rest);
    else
        c->cap = rest > big ? big : pow2_floor(rest);
    if (c->cap < c->min_cap) c->cap = c->min_cap;
}

static sym_status close_pack(cutter *c);

static sym_status add_piece(cutter *c, uint32_t wi, int64_t row0, int64_t n_rows) {
    const sym_pack_weight *w = &c->b->p->weights[wi];
    if (c->emit) {
        sym_pack_plan *p = c->b->p;
        SYM_TRY(grow((void **)&p->pieces, &c->b->cap_pieces, p->n_pieces, sizeof *p->pieces));
        p->pieces[p->n_pieces++] =
            (sym_pack_piece){.weight_idx = wi,
                             .row0 = row0,
                             .n_rows = n_rows,
                             .n_bytes = (uint64_t)n_rows * w->row_bytes,
                             .file_offset = w->file_offset + (uint64_t)row0 * w->row_bytes,
                             .file_idx = w->file_idx};
    }
    uint64_t bytes = (uint64_t)n_rows * w->row_bytes;
    c->cur += bytes + (c->cur ? PAD : 0);
    c->data += bytes;
    c->rest -= bytes;
    return SYM_OK;
}

static sym_status cut(cutter *c) {
    const block *k = c->k;
    c->n_packs = 0;
    c->cur = c->data = 0;
    c->rest = 0;
    c->n_rest = k->n;
    for (int i = 0; i < k->n; i++)
        c->rest += (uint64_t)k->n_rows[i] * c->b->p->weights[k->w[i]].row_bytes;
    c->piece0 = c->b->p->n_pieces;
    open_pack(c);
    for (int i = 0; i < k->n; i++) {
        uint32_t wi = k->w[i];
        const sym_pack_weight *w = &c->b->p->weights[wi];
        uint64_t rb = w->row_bytes;
        bool starts_lead = w->n_rows == 1 && (i == 0 || c->b->p->weights[k->w[i - 1]].n_rows > 1);
        if (starts_lead && c->cur > 0 && c->cur + lead_bytes(c->b, k, i, false) > c->cap)
            SYM_TRY(close_pack(c));
        int64_t end = k->row0[i] + k->n_rows[i];
        for (int64_t r = k->row0[i]; r < end;) {
            uint64_t need = c->cur ? c->cur + PAD : 0;
            uint64_t fit = need < c->cap ? (c->cap - need) / rb : 0;
            if (fit == 0 && c->cur > 0) {
                SYM_TRY(close_pack(c));
                continue;
            }
            if (fit == 0) { /* one row above the cap (hence the limit): alone */
                SYM_TRY(add_piece(c, wi, r, 1));
                SYM_TRY(close_pack(c));
                r++;
                continue;
            }
            int64_t take = (uint64_t)(end - r) < fit ? end - r : (int64_t)fit;
            SYM_TRY(add_piece(c, wi, r, take));
            r += take;
        }
        c->n_rest--;
    }
    if (c->cur > 0) SYM_TRY(close_pack(c));
    return SYM_OK;
}

static int cmp_piece_pos(const void *x, const void *y, void *ctx) {
    const sym_pack_piece *pc = ctx;
    const sym_pack_piece *a = &pc[*(const uint32_t *)x], *b = &pc[*(const uint32_t *)y];
    if (a->file_idx != b->file_idx) return a->file_idx < b->file_idx ? -1 : 1;
    return a->file_offset < b->file_offset ? -1 : a->file_offset > b->file_offset;
}

/* Merges the pack's pieces into file ranges and lays the ranges out in its buffer. */
static sym_status lay_out(builder *b, sym_pack *pk) {
    sym_pack_plan *p = b->p;
    if (pk->n_pieces > b->cap_order) {
        uint32_t *o = sym_realloc(b->order, (size_t)pk->n_pieces * sizeof *o);
        if (!o) return SYM_FAIL(SYM_ERR_OOM, "pack: out of memory");
        b->order = o;
        b->cap_order = pk->n_pieces;
    }
    for (uint32_t i = 0; i < pk->n_pieces; i++)
        b->order[i] = pk->piece0 + i;
    qsort_r(b->order, pk->n_pieces, sizeof *b->order, cmp_piece_pos, p->pieces);
    pk->range0 = p->n_ranges;
    uint64_t end = 0;
    for (uint32_t i = 0; i < pk->n_pieces; i++) {
        sym_pack_piece *pc = &p->pieces[b->order[i]];
        sym_pack_range *r = p->n_ranges > pk->range0 ? &p->ranges[p->n_ranges - 1] : NULL;
        if (r && r->file_idx == pc->file_idx && r->file_offset + r->n_bytes == pc->file_offset) {
            r->n_bytes += pc->n_bytes;
        } else {
            SYM_TRY(grow((void **)&p->ranges, &b->cap_ranges, p->n_ranges, sizeof *p->ranges));
            uint64_t at =
                (end + SYM_PACK_RANGE_ALIGN - 1) / SYM_PACK_RANGE_ALIGN * SYM_PACK_RANGE_ALIGN;
            r = &p->ranges[p->n_ranges++];
            *r = (sym_pack_range){.file_idx = pc->file_idx,
                                  .file_offset = pc->file_offset,
                                  .n_bytes = pc->n_bytes,
                                  .pack_offset = at};
        }
        pc->pack_offset = r->pack_offset + (pc->file_offset - r->file_offset);
        end = r->pack_offset + r->n_bytes;
    }
    pk->n_ranges = p->n_ranges - pk->range0;
    pk->buffer_bytes = end;
    return SYM_OK;
}

static sym_status add_use(builder *b, uint32_t id, sym_pack_use_kind kind) {
    sym_pack_plan *p = b->p;
    SYM_TRY(grow((void **)&p->schedule, &b->cap_uses, p->n_uses, sizeof *p->schedule));
    p->schedule[p->n_uses++] = (sym_pack_use){id, kind};
    return SYM_OK;
}

static sym_status close_pack(cutter *c) {
    c->n_packs++;
    uint64_t bytes = c->data;
    c->cur = c->data = 0;
    open_pack(c);
    if (!c->emit) return SYM_OK;
    builder *b = c->b;
    sym_pack_plan *p = b->p;
    SYM_TRY(grow((void **)&p->packs, &b->cap_packs, p->n_packs, sizeof *p->packs));
    sym_pack *pk = &p->packs[p->n_packs];
    memset(pk, 0, sizeof *pk);
    pk->id = p->n_packs;
    pk->layer = c->k->layer;
    pk->expert = c->k->expert;
    pk->piece0 = c->piece0;
    pk->n_pieces = p->n_pieces - c->piece0;
    pk->n_bytes = bytes;
    pk->oversized = bytes > b->limit;
    bool only_vectors = true;
    for (uint32_t i = 0; i < pk->n_pieces; i++)
        only_vectors &= p->weights[p->pieces[pk->piece0 + i].weight_idx].n_rows == 1;
    pk->type = only_vectors ? SYM_PACK_NORM : c->k->type;
    if (only_vectors) pk->expert = -1;
    SYM_TRY(lay_out(b, pk));
    pk->first_use = p->n_uses;
    p->n_packs++;
    c->piece0 = p->n_pieces;
    return add_use(b, pk->id,
                   c->k->type == SYM_PACK_EMBED ? SYM_PACK_USE_GATHER : SYM_PACK_USE_FULL);
}

static sym_status plan_block(builder *b, const block *k) {
    cutter c = {.b = b, .k = k, .cap = b->limit, .min_cap = 1, .emit = false};
    for (int i = 0; i < k->n; i++) { /* no cap below a row or lead that fits the limit */
        uint64_t rb = b->p->weights[k->w[i]].row_bytes, lead = lead_bytes(b, k, i, true);
        if (rb <= b->limit && rb > c.min_cap) c.min_cap = rb;
        if (lead <= b->limit && lead > c.min_cap) c.min_cap = lead;
    }
    if (b->cut == SYM_PACK_CUT_EVEN) {
        SYM_TRY(cut(&c));
        uint32_t n_min = c.n_packs;
        uint64_t lo = c.min_cap, hi = b->limit;
        while (n_min > 1 && lo < hi) {
            c.cap = lo + (hi - lo) / 2;
            SYM_TRY(cut(&c));
            if (c.n_packs <= n_min)
                hi = c.cap;
            else
                lo = c.cap + 1;
        }
        c.cap = hi;
    }
    c.emit = true;
    return cut(&c);
}

/* ---- the plan -------------------------------------------------------------------------------- */

static void add_rows(block *k, const sym_pack_plan *p, uint32_t wi, int64_t row0, int64_t n) {
    SYM_ASSERT(k->n < MAX_BLOCK);
    if (wi == NIL) return;
    k->w[k->n] = wi;
    k->row0[k->n] = row0;
    k->n_rows[k->n++] = n < 0 ? p->weights[wi].n_rows : n;
}

static void add_w(block *k, const sym_pack_plan *p, uint32_t wi) { add_rows(k, p, wi, 0, -1); }

/* Expert e of layer l: its gate, up and down rows (stacked tensors) or matrices (split). */
static void expert_block(builder *b, const sym_hparams *hp, int l, int e, block *k) {
    *k = (block){SYM_PACK_EXPERT, l, e, {0}, {0}, {0}, 0};
    const sym_pack_plan *p = b->p;
    if (hp->expert_split) {
        for (int j = 0; j < 3; j++)
            add_w(k, p,
                  b->exp_slot[((size_t)l * (size_t)hp->n_expert + (size_t)e) * 3 + (size_t)j]);
        return;
    }
    static const sym_tensor_role stacked[] = {SYM_ROLE_GATE_EXPS, SYM_ROLE_UP_EXPS,
                                              SYM_ROLE_DOWN_EXPS};
    for (int j = 0; j < 3; j++) {
        uint32_t wi = slot_of(b, l, stacked[j]);
        int64_t per = p->weights[wi].n_rows / hp->n_expert;
        add_rows(k, p, wi, (int64_t)e * per, per);
    }
}

static sym_status plan_blocks(builder *b, const sym_hparams *hp) {
    sym_pack_plan *p = b->p;
    block k = {SYM_PACK_EMBED, -1, -1, {0}, {0}, {0}, 0};
    add_w(&k, p, slot_of(b, -1, SYM_ROLE_TOKEN_EMBD));
    SYM_TRY(plan_block(b, &k));
    uint32_t n_embed = p->n_packs;
    static const sym_tensor_role attn[] = {SYM_ROLE_ATTN_NORM, SYM_ROLE_BQ, SYM_ROLE_WQ,
                                           SYM_ROLE_BK,        SYM_ROLE_WK, SYM_ROLE_BV,
                                           SYM_ROLE_WV,        SYM_ROLE_WO};
    /* dense: the MLP; mixture of experts: ffn_norm and the router (absent roles are NIL) */
    static const sym_tensor_role mlp[] = {SYM_ROLE_FFN_NORM, SYM_ROLE_FFN_GATE_INP, SYM_ROLE_W_GATE,
                                          SYM_ROLE_W_UP, SYM_ROLE_W_DOWN};
    for (int l = 0; l < hp->n_layer; l++) {
        k = (block){SYM_PACK_ATTENTION, l, -1, {0}, {0}, {0}, 0};
        for (size_t i = 0; i < sizeof attn / sizeof attn[0]; i++)
            add_w(&k, p, slot_of(b, l, attn[i]));
        SYM_TRY(plan_block(b, &k));
        k = (block){SYM_PACK_MLP, l, -1, {0}, {0}, {0}, 0};
        for (size_t i = 0; i < sizeof mlp / sizeof mlp[0]; i++)
            add_w(&k, p, slot_of(b, l, mlp[i]));
        SYM_TRY(plan_block(b, &k));
        for (int e = 0; e < hp->n_expert; e++) {
            expert_block(b, hp, l, e, &k);
            SYM_TRY(plan_block(b, &k));
        }
    }
    k = (block){SYM_PACK_OUTPUT, -1, -1, {0}, {0}, {0}, 0};
    add_w(&k, p, slot_of(b, -1, SYM_ROLE_OUTPUT_NORM));
    if (!hp->tied_embeddings) add_w(&k, p, slot_of(b, -1, SYM_ROLE_OUTPUT));
    SYM_TRY(plan_block(b, &k));
    if (hp->tied_embeddings) /* the output projection reads the embedding table */
        for (uint32_t i = 0; i < n_embed; i++)
            SYM_TRY(add_use(b, i, SYM_PACK_USE_FULL));
    return SYM_OK;
}

/* The expert a piece's rows belong to: the weight's (split), the rows' (stacked: -2 if the rows
 * cross experts), or -1. */
static int piece_expert(const sym_pack_plan *p, const sym_pack_piece *pc) {
    const sym_pack_weight *w = &p->weights[pc->weight_idx];
    if (per_expert_role(w->role)) return w->expert;
    if (!stacked_role(w->role) || p->n_expert <= 0) return -1;
    int64_t per = w->n_rows / p->n_expert;
    if (per <= 0 || pc->row0 < 0 || pc->n_rows < 1) return -2;
    int64_t e = pc->row0 / per;
    return (pc->row0 + pc->n_rows - 1) / per == e ? (int)e : -2;
}

void sym_pack_plan_totals(sym_pack_plan *p) {
    memset(p->n_packs_by_type, 0, sizeof p->n_packs_by_type);
    memset(p->bytes_by_type, 0, sizeof p->bytes_by_type);
    p->total_bytes = p->pow2_bytes = p->full_bytes_per_token = p->largest_pack_bytes = 0;
    p->routed_bytes_per_token = 0;
    p->largest_pack_id = p->n_oversized = 0;
    for (uint32_t i = 0; i < p->n_packs; i++) {
        sym_pack *k = &p->packs[i];
        k->expert = k->type == SYM_PACK_EXPERT && k->n_pieces > 0 && k->piece0 < p->n_pieces &&
                            p->pieces[k->piece0].weight_idx < p->n_weights
                        ? piece_expert(p, &p->pieces[k->piece0])
                        : -1;
        p->n_packs_by_type[k->type]++;
        p->bytes_by_type[k->type] += k->n_bytes;
        p->total_bytes += k->n_bytes;
        p->pow2_bytes += pow2_ceil(k->buffer_bytes);
        p->n_oversized += k->oversized;
        if (k->n_bytes > p->largest_pack_bytes) {
            p->largest_pack_bytes = k->n_bytes;
            p->largest_pack_id = k->id;
        }
    }
    for (uint32_t i = 0; i < p->n_uses; i++) {
        if (p->schedule[i].kind != SYM_PACK_USE_FULL) continue;
        const sym_pack *k = &p->packs[p->schedule[i].pack_id];
        p->full_bytes_per_token += k->n_bytes;
        p->routed_bytes_per_token +=
            k->type == SYM_PACK_EXPERT && p->n_expert > 0
                ? k->n_bytes * (uint64_t)p->n_expert_used / (uint64_t)p->n_expert
                : k->n_bytes;
    }
}

sym_status sym_pack_plan_from_table(const sym_hparams *hp, const sym_weight *weights,
                                    uint64_t n_weights, const sym_pack_options *o,
                                    sym_pack_plan **out) {
    SYM_CHECK(o->max_pack_bytes > 0, SYM_ERR_ARG, "pack: the pack size limit is 0");
    SYM_CHECK(o->cut == SYM_PACK_CUT_BUDDY || o->cut == SYM_PACK_CUT_EVEN, SYM_ERR_ARG,
              "pack: unknown cut %d", (int)o->cut);
    SYM_CHECK(hp->n_layer >= 1 && hp->n_layer <= SYM_ARCH_MAX_LAYERS, SYM_ERR_ARG,
              "pack: n_layer %d is out of range", hp->n_layer);
    builder b;
    memset(&b, 0, sizeof b);
    b.limit = o->max_pack_bytes;
    b.cut = o->cut;
    b.p = sym_calloc(1, sizeof *b.p);
    if (!b.p) return SYM_FAIL(SYM_ERR_OOM, "pack: out of memory");
    b.p->max_pack_bytes = o->max_pack_bytes;
    b.p->cut = o->cut;
    b.p->n_layer = hp->n_layer;
    b.p->tied_embeddings = hp->tied_embeddings;
    b.p->n_expert = hp->n_expert;
    b.p->n_expert_used = hp->n_expert_used;
    sym_status st = read_table(&b, hp, weights, n_weights);
    if (st == SYM_OK) st = plan_blocks(&b, hp);
    sym_free(b.slot);
    sym_free(b.exp_slot);
    sym_free(b.order);
    if (st != SYM_OK) {
        sym_pack_plan_destroy(b.p);
        return st;
    }
    sym_pack_plan_totals(b.p);
    *out = b.p;
    return SYM_OK;
}

sym_status sym_pack_plan_create(const sym_model *m, const sym_pack_options *o,
                                sym_pack_plan **out) {
    uint64_t n = sym_model_n_weights(m);
    sym_weight *w = sym_malloc((n ? (size_t)n : 1) * sizeof *w);
    if (!w) return SYM_FAIL(SYM_ERR_OOM, "pack: out of memory");
    for (uint64_t i = 0; i < n; i++)
        w[i] = *sym_model_weight_at(m, i);
    sym_status st = sym_pack_plan_from_table(sym_model_hparams(m), w, n, o, out);
    sym_free(w);
    return st;
}

void sym_pack_plan_destroy(sym_pack_plan *p) {
    if (!p) return;
    sym_free(p->weights);
    sym_free(p->packs);
    sym_free(p->pieces);
    sym_free(p->ranges);
    sym_free(p->schedule);
    sym_free(p);
}

/* ---- validation ------------------------------------------------------------------------------ */

#define BAD(...) return SYM_FAIL(SYM_ERR_INTERNAL, "pack plan: " __VA_ARGS__)

/* Position of a piece's block in the order of use: embed 0, then per layer l (of stride
 * 2 + n_expert) attention, mlp, expert 0, 1, …; output last. -1: the piece's rows cross experts. */
static int64_t block_rank(const sym_pack_plan *p, const sym_pack_piece *pc) {
    const sym_pack_weight *w = &p->weights[pc->weight_idx];
    int64_t stride = 2 + (p->n_expert > 0 ? p->n_expert : 0), base = 1 + stride * w->layer;
    int e;
    switch (w->role) {
    case SYM_ROLE_TOKEN_EMBD:
        return 0;
    case SYM_ROLE_OUTPUT_NORM:
    case SYM_ROLE_OUTPUT:
        return 1 + stride * (int64_t)p->n_layer;
    case SYM_ROLE_FFN_NORM:
    case SYM_ROLE_W_GATE:
    case SYM_ROLE_W_UP:
    case SYM_ROLE_W_DOWN:
    case SYM_ROLE_FFN_GATE_INP:
        return base + 1;
    case SYM_ROLE_GATE_EXPS:
    case SYM_ROLE_UP_EXPS:
    case SYM_ROLE_DOWN_EXPS:
    case SYM_ROLE_GATE_EXP:
    case SYM_ROLE_UP_EXP:
    case SYM_ROLE_DOWN_EXP:
        e = piece_expert(p, pc);
        return e < 0 || e >= p->n_expert ? -1 : base + 2 + e;
    default:
        return base;
    }
}

static int cmp_piece_rows(const void *x, const void *y, void *ctx) {
    const sym_pack_piece *pc = ctx;
    const sym_pack_piece *a = &pc[*(const uint32_t *)x], *b = &pc[*(const uint32_t *)y];
    if (a->weight_idx != b->weight_idx) return a->weight_idx < b->weight_idx ? -1 : 1;
    return a->row0 < b->row0 ? -1 : a->row0 > b->row0;
}

static sym_status check_pack(const sym_pack_plan *p, const sym_pack *k, uint32_t i,
                             uint32_t next_piece, uint32_t next_range) {
    if (k->id != i || (unsigned)k->type >= SYM_PACK_TYPE_COUNT) BAD("pack %u: bad id or type", i);
    if (k->piece0 != next_piece || k->n_pieces == 0 || k->n_pieces > p->n_pieces - k->piece0)
        BAD("pack %u: pieces %u+%u do not follow the previous pack's", i, k->piece0, k->n_pieces);
    if (k->range0 != next_range || k->n_ranges == 0 || k->n_ranges > p->n_ranges - k->range0)
        BAD("pack %u: ranges %u+%u do not follow the previous pack's", i, k->range0, k->n_ranges);
    const sym_pack_piece *pc = sym_pack_pieces(p, k);
    const sym_pack_range *rg = sym_pack_ranges(p, k);
    uint64_t bytes = 0, range_bytes = 0;
    bool only_vectors = true;
    for (uint32_t j = 0; j < k->n_pieces; j++) {
        if (pc[j].weight_idx >= p->n_weights) BAD("pack %u: piece %u has no weight", i, j);
        const sym_pack_weight *w = &p->weights[pc[j].weight_idx];
        if (pc[j].row0 < 0 || pc[j].n_rows < 1 || pc[j].row0 > w->n_rows - pc[j].n_rows ||
            pc[j].n_bytes != (uint64_t)pc[j].n_rows * w->row_bytes ||
            pc[j].file_idx != w->file_idx ||
            pc[j].file_offset != w->file_offset + (uint64_t)pc[j].row0 * w->row_bytes)
            BAD("pack %u: piece of %s (rows %lld+%lld) does not match the weight", i, w->name,
                (long long)pc[j].row0, (long long)pc[j].n_rows);
        if (w->layer != k->layer) BAD("pack %u (layer %d) holds %s", i, k->layer, w->name);
        int64_t rank = block_rank(p, &pc[j]);
        if (rank < 0)
            BAD("pack %u: rows %lld+%lld of %s cross experts", i, (long long)pc[j].row0,
                (long long)pc[j].n_rows, w->name);
        if (j && rank != block_rank(p, &pc[0])) BAD("pack %u mixes blocks (%s)", i, w->name);
        int e = piece_expert(p, &pc[j]);
        if (k->type == SYM_PACK_EXPERT ? e < 0 || e != k->expert
                                       : e >= 0 && k->type != SYM_PACK_NORM)
            BAD("pack %u (%s, expert %d) holds rows of expert %d of %s", i,
                sym_pack_type_name(k->type), k->expert, e, w->name);
        only_vectors &= w->n_rows == 1;
        bytes += pc[j].n_bytes;
        /* inside exactly one of the pack's ranges, at the matching buffer offset */
        uint32_t n_in = 0;
        for (uint32_t r = 0; r < k->n_ranges; r++) {
            if (rg[r].file_idx != pc[j].file_idx || pc[j].file_offset < rg[r].file_offset ||
                pc[j].file_offset + pc[j].n_bytes > rg[r].file_offset + rg[r].n_bytes)
                continue;
            n_in++;
            if (pc[j].pack_offset != rg[r].pack_offset + (pc[j].file_offset - rg[r].file_offset))
                BAD("pack %u: piece of %s at buffer offset %llu, its range says otherwise", i,
                    w->name, (unsigned long long)pc[j].pack_offset);
        }
        if (n_in != 1) BAD("pack %u: piece of %s lies in %u ranges", i, w->name, n_in);
    }
    for (uint32_t r = 0; r < k->n_ranges; r++) {
        range_bytes += rg[r].n_bytes;
        if (rg[r].pack_offset % SYM_PACK_RANGE_ALIGN || rg[r].n_bytes == 0)
            BAD("pack %u: range %u is empty or misaligned in the buffer", i, r);
        if (r && (rg[r - 1].pack_offset + rg[r - 1].n_bytes > rg[r].pack_offset ||
                  rg[r - 1].file_idx > rg[r].file_idx ||
                  (rg[r - 1].file_idx == rg[r].file_idx &&
                   rg[r - 1].file_offset + rg[r - 1].n_bytes >= rg[r].file_offset)))
            BAD("pack %u: ranges %u and %u overlap, touch or are out of order", i, r - 1, r);
    }
    if (bytes != k->n_bytes || range_bytes != bytes)
        BAD("pack %u: %llu bytes recorded, pieces hold %llu, ranges %llu", i,
            (unsigned long long)k->n_bytes, (unsigned long long)bytes,
            (unsigned long long)range_bytes);
    if (k->buffer_bytes != rg[k->n_ranges - 1].pack_offset + rg[k->n_ranges - 1].n_bytes)
        BAD("pack %u: buffer of %llu bytes does not end with its last range", i,
            (unsigned long long)k->buffer_bytes);
    if (k->oversized != (bytes > p->max_pack_bytes) ||
        (k->oversized && (k->n_pieces != 1 || pc[0].n_rows != 1)) ||
        (!k->oversized && k->buffer_bytes > p->max_pack_bytes))
        BAD("pack %u: %llu bytes over the limit of %llu and not a lone row", i,
            (unsigned long long)bytes, (unsigned long long)p->max_pack_bytes);
    if ((k->type == SYM_PACK_NORM) != only_vectors)
        BAD("pack %u: type %s but %s", i, sym_pack_type_name(k->type),
            only_vectors ? "only vectors" : "holds a matrix");
    return SYM_OK;
}

sym_status sym_pack_plan_validate(const sym_pack_plan *p) {
    uint32_t next_piece = 0, next_range = 0;
    int64_t rank = -1;
    for (uint32_t i = 0; i < p->n_packs; i++) {
        const sym_pack *k = &p->packs[i];
        SYM_TRY(check_pack(p, k, i, next_piece, next_range));
        next_piece += k->n_pieces;
        next_range += k->n_ranges;
        int64_t r = block_rank(p, sym_pack_pieces(p, k));
        if (r < rank) BAD("pack %u comes before a block it follows in the forward pass", i);
        rank = r;
        if (k->first_use >= p->n_uses || p->schedule[k->first_use].pack_id != i ||
            (i && p->packs[i - 1].first_use >= k->first_use))
            BAD("pack %u: first use %u is not in id order", i, k->first_use);
    }
    if (next_piece != p->n_pieces || next_range != p->n_ranges)
        BAD("%u pieces and %u ranges, the packs hold %u and %u", p->n_pieces, p->n_ranges,
            next_piece, next_range);
    for (uint32_t u = 0; u < p->n_uses; u++) {
        uint32_t id = p->schedule[u].pack_id;
        if (id >= p->n_packs || p->packs[id].first_use > u)
            BAD("schedule entry %u names pack %u before its first use", u, id);
        if ((p->schedule[u].kind == SYM_PACK_USE_GATHER) !=
            (p->packs[id].type == SYM_PACK_EMBED && u == p->packs[id].first_use))
            BAD("schedule entry %u: pack %u used in the wrong mode", u, id);
    }
    /* every byte of every weight exactly once: per weight, the pieces tile [0, n_rows) */
    uint32_t *ix = sym_malloc((p->n_pieces ? (size_t)p->n_pieces : 1) * sizeof *ix);
    if (!ix) return SYM_FAIL(SYM_ERR_OOM, "pack: out of memory");
    for (uint32_t i = 0; i < p->n_pieces; i++)
        ix[i] = i;
    qsort_r(ix, p->n_pieces, sizeof *ix, cmp_piece_rows, p->pieces);
    uint32_t j = 0;
    sym_status st = SYM_OK;
    uint64_t total = 0;
    for (uint32_t w = 0; w < p->n_weights && st == SYM_OK; w++) {
        int64_t row = 0;
        for (; j < p->n_pieces && p->pieces[ix[j]].weight_idx == w; j++) {
            if (p->pieces[ix[j]].row0 != row) break;
            row += p->pieces[ix[j]].n_rows;
        }
        if (row != p->weights[w].n_rows || (j < p->n_pieces && p->pieces[ix[j]].weight_idx == w))
            st = SYM_FAIL(SYM_ERR_INTERNAL,
                          "pack plan: rows of %s are not covered exactly once "
                          "(a gap or an overlap at row %lld)",
                          p->weights[w].name, (long long)row);
        total += p->weights[w].n_bytes;
    }
    sym_free(ix);
    SYM_TRY(st);
    if (total != p->total_bytes)
        BAD("total of %llu bytes, the weights hold %llu", (unsigned long long)p->total_bytes,
            (unsigned long long)total);
    return SYM_OK;
}

/* ---- weight tables without files ------------------------------------------------------------- */

sym_status sym_pack_table_from_hparams(const sym_hparams *hp, sym_dtype type, uint64_t align,
                                       sym_pack_table *out) {
    memset(out, 0, sizeof *out);
    SYM_CHECK((unsigned)type < SYM_DT_COUNT, SYM_ERR_ARG, "pack: unknown dtype %d", (int)type);
    SYM_CHECK(align > 0 && !(align & (align - 1)), SYM_ERR_ARG,
              "pack: alignment %llu is not a power of two", (unsigned long long)align);
    sym_status st = sym_arch_check_hparams(hp);
    if (st != SYM_OK) {
        sym_error_prefix("pack");
        return SYM_ERR_ARG;
    }
    uint64_t n = sym_arch_n_specs(hp);
    out->weights = sym_calloc((size_t)n, sizeof *out->weights);
    out->names = sym_calloc((size_t)n, sizeof *out->names);
    if (!out->weights || !out->names) {
        sym_pack_table_free(out);
        return SYM_FAIL(SYM_ERR_OOM, "pack: out of memory");
    }
    uint64_t offset = 0;
    for (uint64_t i = 0; i < n; i++) {
        sym_tensor_spec s;
        sym_arch_spec_at(hp, i, &s);
        if (s.optional && hp->tied_embeddings) continue;
        sym_weight *w = &out->weights[out->n_weights];
        snprintf(out->names[out->n_weights], sizeof out->names[0], "%s", s.name);
        w->name = out->names[out->n_weights++];
        w->type = type;
        w->n_rows = s.n_rows;
        w->n_cols = s.n_cols;
        w->n_bytes = (uint64_t)s.n_rows * (uint64_t)s.n_cols * sym_dtype_size(type);
        w->file_offset = offset;
        offset += (w->n_bytes + align - 1) / align * align;
    }
    return SYM_OK;
}

void sym_pack_table_free(sym_pack_table *t) {
    if (!t) return;
    sym_free(t->weights);
    sym_free(t->names);
    memset(t, 0, sizeof *t);
}
