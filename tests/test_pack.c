/* The pack planner on synthetic models of several shapes (llama GQA, qwen2 with biases and tied
 * embeddings, f32/f16/bf16, GGUF and sharded safetensors), on the shared trained model, and on
 * the hyperparameters of real-size presets (no files). Each plan is checked by the library's own
 * validator AND independently here: every file byte of every weight covered exactly once (a byte
 * map), the limit respected except by lone oversized rows, the fewest packs (no two neighbours of
 * a block fit together), even sizes, norms riding with their matrices, the schedule; for
 * mixtures of experts (tiny-moe stacked, split and safetensors; mini-moe and mixtral-8x7b
 * shapes) also one expert per EXPERT pack, the router riding with ffn_norm, each layer's expert
 * packs in expert order after its MLP pack, and the routed bytes per token. */
#include <sys/stat.h>

#include "test_util.h"

#include "model/writer.h"
#include "pack/pack.h"

#define PAD (SYM_PACK_RANGE_ALIGN - 1)

static char g_dir[1024];

static uint64_t pow2ceil(uint64_t x) {
    uint64_t p = 1;
    while (p < x)
        p <<= 1;
    return p;
}

static void rm_rf(const char *path) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "rm -rf %s failed\n", path);
}

/* The expert a piece's rows belong to (-1: none): from the name of a split expert tensor, from
 * the rows of a stacked one (-2 if they cross experts). */
static int expert_of(const sym_pack_plan *p, const sym_pack_piece *pc) {
    const sym_pack_weight *w = &p->weights[pc->weight_idx];
    int layer, e;
    char kind[8];
    if (sscanf(w->name, "blk.%d.ffn_%7[a-z].%d.weight", &layer, kind, &e) == 3) return e;
    if (!strstr(w->name, "_exps.weight")) return -1;
    int64_t per = w->n_rows / p->n_expert;
    e = (int)(pc->row0 / per);
    return (pc->row0 + pc->n_rows - 1) / per == e ? e : -2;
}

/* Block of a piece in the order of use: embed 0, per layer attention, mlp (with the router),
 * expert 0, 1, …, then output. */
static int64_t rank_of(const sym_pack_plan *p, const sym_pack_piece *pc) {
    const sym_pack_weight *w = &p->weights[pc->weight_idx];
    int64_t stride = 2 + p->n_expert, base = 1 + stride * w->layer;
    int e = expert_of(p, pc);
    if (e >= 0) return base + 2 + e;
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
    default:
        return base;
    }
}

static int64_t pack_rank(const sym_pack_plan *p, const sym_pack *k) {
    return rank_of(p, sym_pack_pieces(p, k));
}

static bool is_vector_role(sym_tensor_role r) {
    return r == SYM_ROLE_ATTN_NORM || r == SYM_ROLE_FFN_NORM || r == SYM_ROLE_OUTPUT_NORM ||
           r == SYM_ROLE_BQ || r == SYM_ROLE_BK || r == SYM_ROLE_BV;
}

/* Every byte of every weight in exactly one piece, nothing else (byte map per file). */
static void check_bytes(const sym_pack_plan *p, const char *what) {
    int n_files = 0;
    for (uint32_t i = 0; i < p->n_weights; i++)
        if (p->weights[i].file_idx + 1 > n_files) n_files = p->weights[i].file_idx + 1;
    for (int f = 0; f < n_files; f++) {
        uint64_t end = 0;
        for (uint32_t i = 0; i < p->n_weights; i++)
            if (p->weights[i].file_idx == f &&
                p->weights[i].file_offset + p->weights[i].n_bytes > end)
                end = p->weights[i].file_offset + p->weights[i].n_bytes;
        uint8_t *count = calloc((size_t)end + 1, 1);
        for (uint32_t i = 0; i < p->n_pieces; i++) {
            const sym_pack_piece *pc = &p->pieces[i];
            if (pc->file_idx != f) continue;
            for (uint64_t b = 0; b < pc->n_bytes; b++)
                count[pc->file_offset + b]++;
        }
        uint64_t bad = 0;
        for (uint32_t i = 0; i < p->n_weights; i++) {
            const sym_pack_weight *w = &p->weights[i];
            if (w->file_idx != f) continue;
            for (uint64_t b = 0; b < w->n_bytes; b++) {
                bad += count[w->file_offset + b] != 1;
                count[w->file_offset + b] = 0;
            }
        }
        for (uint64_t b = 0; b < end; b++)
            bad += count[b] != 0; /* bytes of no weight */
        CHECK(bad == 0, "%s: file %d: %llu bytes not covered exactly once", what, f,
              (unsigned long long)bad);
        free(count);
    }
}

/* Properties of the cut, seen from outside. */
static void check_plan(const sym_pack_plan *p, const char *what) {
    CHECK_OK(sym_pack_plan_validate(p));
    uint64_t L = p->max_pack_bytes;
    uint32_t n_embed = 0;
    uint64_t weight_bytes = 0;
    for (uint32_t i = 0; i < p->n_weights; i++)
        weight_bytes += p->weights[i].n_bytes;
    CHECK(p->total_bytes == weight_bytes, "%s: total %llu of %llu", what,
          (unsigned long long)p->total_bytes, (unsigned long long)weight_bytes);
    for (uint32_t i = 0; i < p->n_packs; i++) {
        const sym_pack *k = &p->packs[i];
        const sym_pack_piece *pc = sym_pack_pieces(p, k);
        n_embed += k->type == SYM_PACK_EMBED;
        /* one block per pack; an expert's pack holds rows of that expert only */
        int e0 = expert_of(p, &pc[0]);
        for (uint32_t j = 0; j < k->n_pieces; j++)
            CHECK(rank_of(p, &pc[j]) == rank_of(p, &pc[0]) && expert_of(p, &pc[j]) == e0 &&
                      e0 != -2,
                  "%s: pack %u mixes blocks or experts (piece %u)", what, i, j);
        CHECK((k->type == SYM_PACK_EXPERT) == (e0 >= 0) && k->expert == (e0 >= 0 ? e0 : -1),
              "%s: pack %u is %s (expert %d) but holds rows of expert %d", what, i,
              sym_pack_type_name(k->type), k->expert, e0);
        if (k->n_bytes > L)
            CHECK(k->oversized && k->n_pieces == 1 && pc[0].n_rows == 1 &&
                      p->weights[pc[0].weight_idx].row_bytes > L,
                  "%s: pack %u has %llu bytes over the limit %llu", what, i,
                  (unsigned long long)k->n_bytes, (unsigned long long)L);
        CHECK(k->buffer_bytes >= k->n_bytes &&
                  k->buffer_bytes < k->n_bytes + (uint64_t)k->n_ranges * SYM_PACK_RANGE_ALIGN &&
                  (k->oversized || k->buffer_bytes <= L),
              "%s: pack %u buffer %llu for %llu bytes", what, i,
              (unsigned long long)k->buffer_bytes, (unsigned long long)k->n_bytes);
        /* even cut, fewest packs: two neighbours of one block never fit in one pack (each piece
         * after a pack's first reserves PAD bytes of range padding) */
        const sym_pack *nx = &p->packs[i + 1];
        if (p->cut == SYM_PACK_CUT_EVEN && i + 1 < p->n_packs &&
            pack_rank(p, k) == pack_rank(p, nx) && !k->oversized && !nx->oversized)
            CHECK(k->n_bytes + nx->n_bytes + PAD * (k->n_pieces + nx->n_pieces - 1) > L,
                  "%s: packs %u and %u (%llu + %llu bytes) fit together under %llu", what, i, i + 1,
                  (unsigned long long)k->n_bytes, (unsigned long long)nx->n_bytes,
                  (unsigned long long)L);
        /* vectors come first in a pack, right before their matrix's first rows */
        for (uint32_t j = 0; j < k->n_pieces; j++) {
            const sym_pack_weight *w = &p->weights[pc[j].weight_idx];
            if (!is_vector_role(w->role) || w->role == SYM_ROLE_OUTPUT_NORM) continue;
            bool last = j + 1 == k->n_pieces;
            if (last) {
                /* only when the vector and one row of what follows exceed the limit */
                const sym_pack *nk = &p->packs[i + 1];
                const sym_pack_piece *npc = sym_pack_pieces(p, nk);
                const sym_pack_weight *nw = &p->weights[npc[0].weight_idx];
                uint64_t run = 0; /* the vectors that end the pack, each piece after the
                                     first reserving PAD bytes, and PAD before the next row */
                for (uint32_t q = k->n_pieces; q-- > 0 && p->weights[pc[q].weight_idx].n_rows == 1;)
                    run += pc[q].n_bytes + PAD;
                CHECK(run + nw->row_bytes > L,
                      "%s: pack %u ends with %s although it could "
                      "ride with %s",
                      what, i, w->name, nw->name);
            } else {
                const sym_pack_weight *nw = &p->weights[pc[j + 1].weight_idx];
                CHECK(pc[j + 1].row0 == 0 && (is_vector_role(nw->role) || nw->n_rows > 1),
                      "%s: %s is followed by rows %lld of %s", what, w->name,
                      (long long)pc[j + 1].row0, nw->name);
            }
        }
    }
    /* even: within a block of n packs, none above ceil(bytes / n) + the largest unit;
     * buddy: the block's packs in power-of-two blocks waste at most P/8 plus a unit per pack */
    uint64_t big = 1;
    while (big <= L / 2)
        big <<= 1;
    for (uint32_t i = 0; i < p->n_packs;) {
        uint32_t j = i, max_pieces = 0;
        uint64_t bytes = 0, largest = 0, unit = 0, buf = 0, pow2 = 0;
        bool over = false;
        while (j < p->n_packs && pack_rank(p, &p->packs[j]) == pack_rank(p, &p->packs[i])) {
            bytes += p->packs[j].n_bytes;
            buf += p->packs[j].buffer_bytes;
            pow2 += pow2ceil(p->packs[j].buffer_bytes);
            if (p->packs[j].n_pieces > max_pieces) max_pieces = p->packs[j].n_pieces;
            if (p->packs[j].n_bytes > largest) largest = p->packs[j].n_bytes;
            over |= p->packs[j].oversized;
            const sym_pack_piece *pc = sym_pack_pieces(p, &p->packs[j]);
            uint64_t lead = 0;
            for (uint32_t q = 0; q < p->packs[j].n_pieces; q++) {
                const sym_pack_weight *w = &p->weights[pc[q].weight_idx];
                lead = w->n_rows == 1 ? lead + w->row_bytes : 0;
                if (w->row_bytes > unit) unit = w->row_bytes;
                if (lead + w->row_bytes > unit && lead + w->row_bytes <= L)
                    unit = lead + w->row_bytes;
            }
            j++;
        }
        uint64_t n = j - i, slack = unit + PAD * max_pieces;
        if (!over && n > 1 && p->cut == SYM_PACK_CUT_EVEN)
            CHECK(largest <= (bytes + n - 1) / n + slack,
                  "%s: block of %llu packs, %llu bytes: "
                  "largest %llu",
                  what, (unsigned long long)n, (unsigned long long)bytes,
                  (unsigned long long)largest);
        if (!over && p->cut == SYM_PACK_CUT_BUDDY)
            CHECK(pow2 - buf <= big / 8 + n * slack,
                  "%s: block of %llu packs, %llu bytes, "
                  "wastes %llu in power-of-two blocks",
                  what, (unsigned long long)n, (unsigned long long)buf,
                  (unsigned long long)(pow2 - buf));
        i = j;
    }
    /* the schedule: embed (gather), layers, output; tied: the embed packs again at the end */
    uint32_t want_uses = p->n_packs + (p->tied_embeddings ? n_embed : 0);
    CHECK(p->n_uses == want_uses, "%s: %u uses, want %u", what, p->n_uses, want_uses);
    for (uint32_t u = 0; u < p->n_uses && u < p->n_packs; u++)
        CHECK(p->schedule[u].pack_id == u &&
                  (p->schedule[u].kind == SYM_PACK_USE_GATHER) == (u < n_embed),
              "%s: schedule %u", what, u);
    for (uint32_t u = p->n_packs; u < p->n_uses; u++)
        CHECK(p->schedule[u].pack_id == u - p->n_packs && p->schedule[u].kind == SYM_PACK_USE_FULL,
              "%s: tied output use %u", what, u);
    uint64_t embed_bytes = p->bytes_by_type[SYM_PACK_EMBED];
    CHECK(p->full_bytes_per_token == p->total_bytes - (p->tied_embeddings ? 0 : embed_bytes),
          "%s: %llu bytes per token", what, (unsigned long long)p->full_bytes_per_token);
    uint64_t routed = p->full_bytes_per_token;
    for (uint32_t i = 0; i < p->n_packs; i++)
        if (p->packs[i].type == SYM_PACK_EXPERT)
            routed -= p->packs[i].n_bytes -
                      p->packs[i].n_bytes * (uint64_t)p->n_expert_used / (uint64_t)p->n_expert;
    CHECK(p->routed_bytes_per_token == routed, "%s: %llu routed bytes per token, want %llu", what,
          (unsigned long long)p->routed_bytes_per_token, (unsigned long long)routed);
    CHECK((p->n_packs_by_type[SYM_PACK_EXPERT] > 0) == (p->n_expert > 0) &&
              p->n_packs_by_type[SYM_PACK_EXPERT] >= (uint32_t)(p->n_layer * p->n_expert),
          "%s: %u expert packs for %d x %d experts", what, p->n_packs_by_type[SYM_PACK_EXPERT],
          p->n_layer, p->n_expert);
    if (p->tied_embeddings) {
        const sym_pack *last = &p->packs[p->n_packs - 1];
        CHECK(last->type == SYM_PACK_NORM && last->n_pieces == 1 && last->layer == -1 &&
                  p->weights[sym_pack_pieces(p, last)->weight_idx].role == SYM_ROLE_OUTPUT_NORM,
              "%s: tied: output_norm is the last pack, alone", what);
    }
    uint32_t n_by_type = 0;
    for (int t = 0; t < SYM_PACK_TYPE_COUNT; t++)
        n_by_type += p->n_packs_by_type[t];
    CHECK(n_by_type == p->n_packs, "%s: packs by type", what);
}

/* Two plans of the same weights and limit are identical. */
static void check_same(const sym_pack_plan *a, const sym_pack_plan *b, int64_t file_shift,
                       const char *what) {
    bool same = a->n_packs == b->n_packs && a->n_pieces == b->n_pieces &&
                a->n_ranges == b->n_ranges && a->n_uses == b->n_uses;
    for (uint32_t i = 0; same && i < a->n_packs; i++) {
        const sym_pack *x = &a->packs[i], *y = &b->packs[i];
        same = x->id == y->id && x->type == y->type && x->layer == y->layer &&
               x->n_pieces == y->n_pieces && x->n_bytes == y->n_bytes &&
               x->n_ranges == y->n_ranges && x->buffer_bytes == y->buffer_bytes;
    }
    for (uint32_t i = 0; same && i < a->n_pieces; i++) {
        const sym_pack_piece *x = &a->pieces[i], *y = &b->pieces[i];
        same = x->weight_idx == y->weight_idx && x->row0 == y->row0 && x->n_rows == y->n_rows &&
               (int64_t)(x->file_offset - y->file_offset) == file_shift &&
               x->pack_offset == y->pack_offset &&
               !strcmp(a->weights[x->weight_idx].name, b->weights[y->weight_idx].name);
    }
    for (uint32_t i = 0; same && i < a->n_uses; i++)
        same = a->schedule[i].pack_id == b->schedule[i].pack_id &&
               a->schedule[i].kind == b->schedule[i].kind;
    CHECK(same, "%s: the two plans differ", what);
}

static void plan_model(const char *path, const sym_pack_options *o, const char *what,
                       sym_pack_plan **out) {
    sym_model *m = NULL;
    *out = NULL;
    CHECK_OK(sym_model_open(path, &m));
    if (!m) return;
    sym_pack_plan *p = NULL, *q = NULL;
    CHECK_OK(sym_pack_plan_create(m, o, &p));
    CHECK_OK(sym_pack_plan_create(m, o, &q));
    if (p && q) {
        char w[160];
        snprintf(w, sizeof w, "%s, %s cut, limit %llu", what, sym_pack_cut_name(o->cut),
                 (unsigned long long)o->max_pack_bytes);
        check_plan(p, w);
        check_bytes(p, w);
        check_same(p, q, 0, w);
    }
    sym_pack_plan_destroy(q);
    sym_model_close(m);
    *out = p;
}

/* Synthetic files: every shape at limits from "one row per pack" to "one pack per block". */
static void test_files(void) {
    static const struct {
        const char *preset;
        sym_dtype dt;
        sym_model_format fmt;
        bool tied;
        bool split_experts;
    } k[] = {
        {"tiny", SYM_DT_F32, SYM_MODEL_GGUF, false, false},
        {"tiny", SYM_DT_BF16, SYM_MODEL_GGUF, true, false},
        {"tiny-qwen2", SYM_DT_F16, SYM_MODEL_GGUF, true, false},
        {"tiny-qwen2", SYM_DT_F32, SYM_MODEL_GGUF, false, false},
        {"tiny-qwen2", SYM_DT_F32, SYM_MODEL_SAFETENSORS, false, false},
        {"tiny", SYM_DT_F16, SYM_MODEL_SAFETENSORS, true, false},
        /* mixtures of experts: stacked (an expert is rows of three tensors), split, HF */
        {"tiny-moe", SYM_DT_F32, SYM_MODEL_GGUF, false, false},
        {"tiny-moe", SYM_DT_BF16, SYM_MODEL_GGUF, true, true},
        {"tiny-moe", SYM_DT_F16, SYM_MODEL_SAFETENSORS, false, false},
    };
    static const uint64_t limits[] = {100, 500, 1000, 4096, 20000, 100000, 32u << 20};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        sym_make_model_options o;
        sym_make_model_options_init(&o);
        CHECK_OK(sym_make_model_preset(&o, k[i].preset));
        o.dtype = k[i].dt;
        o.format = k[i].fmt;
        o.tied_embeddings = k[i].tied;
        o.split_experts = k[i].split_experts;
        o.shard_bytes = 40000; /* several safetensors shards: file_idx > 0 */
        char path[1200], what[128];
        snprintf(path, sizeof path, "%s/m%zu%s", g_dir, i,
                 k[i].fmt == SYM_MODEL_GGUF ? ".gguf" : "");
        CHECK_OK(sym_make_model(&o, path));
        for (size_t jc = 0; jc < 2 * sizeof limits / sizeof limits[0]; jc++) {
            size_t j = jc / 2;
            sym_pack_options po = {limits[j], jc % 2 ? SYM_PACK_CUT_EVEN : SYM_PACK_CUT_BUDDY};
            snprintf(what, sizeof what, "%s %s %s%s", k[i].preset, sym_dtype_name(k[i].dt),
                     k[i].fmt == SYM_MODEL_GGUF ? "gguf" : "safetensors", k[i].tied ? " tied" : "");
            sym_pack_plan *p;
            plan_model(path, &po, what, &p);
            if (!p) continue;
            if (limits[j] == (32u << 20)) { /* everything fits: one pack per block */
                uint32_t want = 1 + (2 + (uint32_t)p->n_expert) * (uint32_t)p->n_layer + 1;
                CHECK(p->n_packs == want && p->n_oversized == 0, "%s: %u packs, want %u", what,
                      p->n_packs, want);
                CHECK(p->n_packs_by_type[k[i].tied ? SYM_PACK_NORM : SYM_PACK_OUTPUT] == 1,
                      "%s: the output block", what);
                /* GGUF f32 tensors are contiguous (sizes are multiples of 32): one read each,
                 * but for an expert of stacked tensors (rows of three tensors: three reads) */
                if (k[i].fmt == SYM_MODEL_GGUF && k[i].dt == SYM_DT_F32)
                    for (uint32_t q = 0; q < p->n_packs; q++)
                        CHECK(p->packs[q].n_ranges ==
                                  (p->packs[q].type == SYM_PACK_EXPERT && !k[i].split_experts ? 3u
                                                                                              : 1u),
                              "%s: pack %u has %u ranges", what, q, p->packs[q].n_ranges);
                for (uint32_t q = 0; q < p->n_packs && p->n_expert > 0; q++) {
                    const sym_pack *pk = &p->packs[q];
                    const sym_pack_piece *pc = sym_pack_pieces(p, pk);
                    if (pk->type == SYM_PACK_MLP) /* the router rides with ffn_norm */
                        CHECK(pk->n_pieces == 2 &&
                                  p->weights[pc[0].weight_idx].role == SYM_ROLE_FFN_NORM &&
                                  p->weights[pc[1].weight_idx].role == SYM_ROLE_FFN_GATE_INP,
                              "%s: mlp pack %u", what, q);
                    if (pk->type == SYM_PACK_EXPERT) /* gate, up, down, in that order */
                        CHECK(pk->n_pieces == 3 && pk->expert == (int)(q - 3) % (2 + p->n_expert) &&
                                  strstr(p->weights[pc[0].weight_idx].name, "gate") &&
                                  strstr(p->weights[pc[1].weight_idx].name, "up") &&
                                  strstr(p->weights[pc[2].weight_idx].name, "down"),
                              "%s: expert pack %u (expert %d)", what, q, pk->expert);
                }
            }
            if (limits[j] == 100) { /* every row above the limit: one row per pack */
                CHECK(p->n_pieces == p->n_packs, "%s: %u pieces in %u packs", what, p->n_pieces,
                      p->n_packs);
                for (uint32_t q = 0; q < p->n_packs; q++) /* only small biases fit */
                    CHECK(p->packs[q].oversized || p->packs[q].type == SYM_PACK_NORM, "%s: pack %u",
                          what, q);
            }
            if (k[i].fmt == SYM_MODEL_SAFETENSORS) {
                int max_file = 0;
                for (uint32_t q = 0; q < p->n_ranges; q++)
                    if (p->ranges[q].file_idx > max_file) max_file = p->ranges[q].file_idx;
                CHECK(max_file > 0, "%s: shards", what);
            }
            if (!strcmp(k[i].preset, "tiny-qwen2")) { /* biases right before their matrix */
                for (uint32_t q = 0; q < p->n_pieces; q++) {
                    sym_tensor_role r = p->weights[p->pieces[q].weight_idx].role;
                    if (r != SYM_ROLE_BQ && r != SYM_ROLE_BK && r != SYM_ROLE_BV) continue;
                    sym_tensor_role next = r == SYM_ROLE_BQ   ? SYM_ROLE_WQ
                                           : r == SYM_ROLE_BK ? SYM_ROLE_WK
                                                              : SYM_ROLE_WV;
                    bool ok = q + 1 < p->n_pieces &&
                              p->weights[p->pieces[q + 1].weight_idx].role == next &&
                              p->pieces[q + 1].row0 == 0;
                    CHECK(ok || limits[j] <= 1000, "%s: bias not followed by its matrix", what);
                }
            }
            /* the same plan from the hyperparameters alone (GGUF: same layout, shifted) */
            if (k[i].fmt == SYM_MODEL_GGUF) {
                sym_hparams hp;
                CHECK_OK(sym_make_model_hparams(&o, &hp));
                sym_pack_table t;
                CHECK_OK(sym_pack_table_from_hparams(&hp, k[i].dt, 32, &t));
                sym_pack_plan *q = NULL;
                CHECK_OK(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &q));
                if (q) check_same(p, q, (int64_t)p->weights[0].file_offset, what);
                sym_pack_plan_destroy(q);
                sym_pack_table_free(&t);
            }
            sym_pack_plan_destroy(p);
        }
    }
}

/* The shared trained model: tiny (64 wide, 4 layers), f32. */
static void test_aidreams(void) {
    char path[1024];
    test_shared_path("models/aidreams260K.gguf", path, sizeof path);
    sym_pack_plan *p;
    sym_pack_options po;
    sym_pack_options_init(&po);
    plan_model(path, &po, "aidreams", &p);
    if (!p) return;
    CHECK(p->n_layer == 4 && p->n_packs == 10 && p->n_uses == (p->tied_embeddings ? 11u : 10u),
          "aidreams: %u packs, %u uses", p->n_packs, p->n_uses);
    CHECK(p->total_bytes == 1054976, "aidreams: %llu bytes", (unsigned long long)p->total_bytes);
    sym_pack_plan_destroy(p);
    uint64_t limits[] = {1024, 4096, 16384, 65536};
    for (size_t i = 0; i < 4; i++) {
        po.max_pack_bytes = limits[i];
        po.cut = i % 2 ? SYM_PACK_CUT_EVEN : SYM_PACK_CUT_BUDDY;
        plan_model(path, &po, "aidreams", &p);
        if (p)
            CHECK(p->n_packs > 10 && p->largest_pack_bytes <= limits[i], "aidreams at %llu",
                  (unsigned long long)limits[i]);
        sym_pack_plan_destroy(p);
    }
}

/* Real sizes from hyperparameters: the planner never needs the bytes. */
static void test_presets(void) {
    static const char *presets[] = {"tinyllama-1.1b", "llama2-7b", "llama3-8b",   "mistral-7b",
                                    "qwen2-0.5b",     "mini-moe",  "mixtral-8x7b"};
    static const int mbs[] = {1, 7, 8, 32, 256};
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        sym_make_model_options o;
        sym_make_model_options_init(&o);
        CHECK_OK(sym_make_model_preset(&o, presets[i]));
        sym_hparams hp;
        CHECK_OK(sym_make_model_hparams(&o, &hp));
        for (int dt = 0; dt < SYM_DT_COUNT; dt += 1) {
            sym_pack_table t;
            CHECK_OK(sym_pack_table_from_hparams(&hp, (sym_dtype)dt, 32, &t));
            uint64_t buddy_pow2 = 0;
            for (size_t jc = 0; jc < 2 * sizeof mbs / sizeof mbs[0]; jc++) {
                int mb = mbs[jc / 2];
                sym_pack_options po;
                sym_pack_options_init(&po);
                po.cut = jc % 2 ? SYM_PACK_CUT_EVEN : SYM_PACK_CUT_BUDDY;
                CHECK_OK(sym_pack_limit_from_mb(mb, &po.max_pack_bytes));
                sym_pack_plan *p = NULL;
                CHECK_OK(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p));
                if (!p) continue;
                char what[96];
                snprintf(what, sizeof what, "%s %s %d MiB %s", presets[i],
                         sym_dtype_name((sym_dtype)dt), mb, sym_pack_cut_name(po.cut));
                check_plan(p, what);
                CHECK(p->n_oversized == 0, "%s: oversized rows", what);
                double waste =
                    100.0 * (double)(p->pow2_bytes - p->total_bytes) / (double)p->pow2_bytes;
                if (dt == SYM_DT_BF16 && (mb == 8 || mb == 32))
                    fprintf(stderr,
                            "  %-32s %6u packs (%u embed, %u attention, %u mlp, %u norm, "
                            "%u output, %u expert), largest %.2f MiB, %.1f%% buddy rounding\n",
                            what, p->n_packs, p->n_packs_by_type[SYM_PACK_EMBED],
                            p->n_packs_by_type[SYM_PACK_ATTENTION],
                            p->n_packs_by_type[SYM_PACK_MLP], p->n_packs_by_type[SYM_PACK_NORM],
                            p->n_packs_by_type[SYM_PACK_OUTPUT],
                            p->n_packs_by_type[SYM_PACK_EXPERT],
                            (double)p->largest_pack_bytes / 1048576.0, waste);
                /* the point of the buddy cut: packs fill their power-of-two blocks (the rest
                 * of a block may round up by P/8: tinyllama's 18 MiB attention at 32 MiB is
                 * 16 + 2.01 -> blocks of 16 + 4). Not so for blocks far below the limit:
                 * mini-moe's 64 experts of 2.25 MiB (f16) each round up to 4 MiB. */
                if (po.cut == SYM_PACK_CUT_BUDDY && mb <= 32 && strcmp(presets[i], "mini-moe"))
                    CHECK(waste < 5.0, "%s: %.1f%% lost to rounding", what, waste);
                if (po.cut == SYM_PACK_CUT_EVEN) {
                    CHECK(p->pow2_bytes >= buddy_pow2, "%s: even rounds less than buddy", what);
                } else {
                    buddy_pow2 = p->pow2_bytes;
                }
                if (!strcmp(presets[i], "mixtral-8x7b") && dt == SYM_DT_BF16 && mb == 32 &&
                    po.cut == SYM_PACK_CUT_EVEN) {
                    /* an expert: 3 x 112 MiB -> 11 packs of <= 32 MiB; attention 80 MiB -> 3;
                     * ffn_norm + router 64 KiB -> 1; embed and output 250 MiB -> 8 each */
                    CHECK(p->n_packs_by_type[SYM_PACK_EXPERT] == 32 * 8 * 11 &&
                              p->n_packs_by_type[SYM_PACK_ATTENTION] == 32 * 3 &&
                              p->n_packs_by_type[SYM_PACK_MLP] == 32 &&
                              p->n_packs_by_type[SYM_PACK_EMBED] == 8,
                          "mixtral: %u expert, %u attention, %u mlp, %u embed packs",
                          p->n_packs_by_type[SYM_PACK_EXPERT],
                          p->n_packs_by_type[SYM_PACK_ATTENTION], p->n_packs_by_type[SYM_PACK_MLP],
                          p->n_packs_by_type[SYM_PACK_EMBED]);
                    /* per token: every layer's 2 of 8 experts, the rest in full */
                    uint64_t exp = p->bytes_by_type[SYM_PACK_EXPERT];
                    CHECK(p->routed_bytes_per_token <= p->full_bytes_per_token - exp + exp / 4 &&
                              p->routed_bytes_per_token + 1000 >=
                                  p->full_bytes_per_token - exp + exp / 4,
                          "mixtral: %llu routed bytes per token",
                          (unsigned long long)p->routed_bytes_per_token);
                }
                if (!strcmp(presets[i], "tinyllama-1.1b") && dt == SYM_DT_F16 && mb == 32 &&
                    po.cut == SYM_PACK_CUT_EVEN) {
                    /* embed 125 MiB -> 4; attention 18 MiB -> 1; MLP 66 MiB -> 3; output 4 */
                    CHECK(p->n_packs == 4 + 22 * 4 + 4 && p->n_packs_by_type[SYM_PACK_EMBED] == 4 &&
                              p->n_packs_by_type[SYM_PACK_ATTENTION] == 22 &&
                              p->n_packs_by_type[SYM_PACK_MLP] == 66 &&
                              p->n_packs_by_type[SYM_PACK_OUTPUT] == 4,
                          "tinyllama: %u packs", p->n_packs);
                    CHECK(p->largest_pack_bytes <= (32u << 20) &&
                              p->largest_pack_bytes > (31u << 20),
                          "tinyllama: largest %llu", (unsigned long long)p->largest_pack_bytes);
                }
                sym_pack_plan_destroy(p);
            }
            sym_pack_table_free(&t);
        }
    }
}

/* A row wider than the limit, and norms that cannot ride: hyperparameters only. */
static void test_oversized(void) {
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    o.n_embd = 8192;
    o.n_head = 8;
    o.n_head_kv = 8;
    o.n_ff = 16384;
    o.n_layer = 2;
    sym_hparams hp;
    CHECK_OK(sym_make_model_hparams(&o, &hp));
    sym_pack_table t;
    CHECK_OK(sym_pack_table_from_hparams(&hp, SYM_DT_F32, 32, &t));
    /* rows: 32 KiB (n_embd), 64 KiB (w_down); norms 32 KiB */
    uint64_t limits[] = {40000, 50000, 70000, 1u << 20};
    for (size_t i = 0; i < 4; i++) {
        sym_pack_plan *p = NULL;
        sym_pack_options po = {limits[i], i % 2 ? SYM_PACK_CUT_EVEN : SYM_PACK_CUT_BUDDY};
        CHECK_OK(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p));
        if (!p) continue;
        char what[64];
        snprintf(what, sizeof what, "wide rows, limit %llu", (unsigned long long)limits[i]);
        check_plan(p, what);
        uint32_t want_over = limits[i] < 65536 ? (uint32_t)(2 * 8192) : 0; /* w_down rows */
        CHECK(p->n_oversized == want_over, "%s: %u oversized", what, p->n_oversized);
        /* norm (32 KiB) + one row (32 KiB) > limit: every norm alone, a NORM pack */
        uint32_t want_norms = limits[i] < 65536 ? 2 * 2 + 1 : 0;
        CHECK(p->n_packs_by_type[SYM_PACK_NORM] == want_norms, "%s: %u norm packs", what,
              p->n_packs_by_type[SYM_PACK_NORM]);
        sym_pack_plan_destroy(p);
    }
    sym_pack_table_free(&t);
}

static void test_errors(void) {
    uint64_t b = 0;
    CHECK_OK(sym_pack_limit_from_mb(0, &b)); /* automatic: the default */
    CHECK(b == (uint64_t)SYM_PACK_DEFAULT_MB << 20, "0 MiB means the default");
    CHECK_STATUS(sym_pack_limit_from_mb(257, &b), SYM_ERR_CONFIG);
    CHECK_STATUS(sym_pack_limit_from_mb(-5, &b), SYM_ERR_CONFIG);
    CHECK_OK(sym_pack_limit_from_mb(1, &b));
    CHECK(b == 1u << 20, "1 MiB");
    CHECK_OK(sym_pack_limit_from_mb(256, &b));
    CHECK(b == 256u << 20, "256 MiB");

    sym_make_model_options o;
    sym_make_model_options_init(&o);
    CHECK_OK(sym_make_model_preset(&o, "tiny-qwen2"));
    o.tied_embeddings = false;
    sym_hparams hp;
    CHECK_OK(sym_make_model_hparams(&o, &hp));
    sym_pack_table t;
    CHECK_OK(sym_pack_table_from_hparams(&hp, SYM_DT_F16, 32, &t));
    CHECK_STATUS(sym_pack_table_from_hparams(&hp, SYM_DT_F16, 24, &(sym_pack_table){0}),
                 SYM_ERR_ARG);
    sym_pack_plan *p = NULL;
    sym_pack_options po = {0, SYM_PACK_CUT_BUDDY};
    CHECK_STATUS(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p), SYM_ERR_ARG);
    po.max_pack_bytes = 4096;
    po.cut = (sym_pack_cut)7;
    CHECK_STATUS(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p), SYM_ERR_ARG);
    po.cut = SYM_PACK_CUT_EVEN;
    CHECK_STATUS(sym_pack_plan_from_table(&hp, t.weights, t.n_weights - 1, &po, &p), SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "missing") != NULL, "missing: %s", sym_last_error());
    sym_weight saved = t.weights[5];
    t.weights[5].n_rows++;
    CHECK_STATUS(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p), SYM_ERR_ARG);
    t.weights[5] = saved;
    t.weights[5].n_bytes--;
    CHECK_STATUS(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p), SYM_ERR_ARG);
    t.weights[5] = saved;
    t.weights[5] = t.weights[4];
    CHECK_STATUS(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p), SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "twice") != NULL, "duplicate: %s", sym_last_error());
    t.weights[5] = saved;
    t.weights[5].name = "blk.0.attn_qkv.weight";
    CHECK_STATUS(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p), SYM_ERR_ARG);
    t.weights[5] = saved;
    t.weights[5].file_offset = t.weights[4].file_offset + 2;
    CHECK_STATUS(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p), SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "overlap") != NULL, "overlap: %s", sym_last_error());
    t.weights[5] = saved;
    hp.tied_embeddings = true; /* output.weight is then one weight too many */
    CHECK_STATUS(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p), SYM_ERR_ARG);
    hp.tied_embeddings = false;
    CHECK(p == NULL, "no plan on failure");

    /* the validator notices a corrupted plan */
    CHECK_OK(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p));
    if (p) {
        CHECK_OK(sym_pack_plan_validate(p));
        p->pieces[3].row0++;
        CHECK_STATUS(sym_pack_plan_validate(p), SYM_ERR_INTERNAL);
        p->pieces[3].row0--;
        p->packs[2].n_bytes++;
        CHECK_STATUS(sym_pack_plan_validate(p), SYM_ERR_INTERNAL);
        p->packs[2].n_bytes--;
        p->schedule[p->n_uses - 1].pack_id = 0;
        CHECK_STATUS(sym_pack_plan_validate(p), SYM_ERR_INTERNAL);
        p->schedule[p->n_uses - 1].pack_id = p->n_packs - 1;
        p->ranges[1].pack_offset += 1;
        CHECK_STATUS(sym_pack_plan_validate(p), SYM_ERR_INTERNAL);
        p->ranges[1].pack_offset -= 1;
        sym_pack_type type = p->packs[1].type;
        p->packs[1].type = type == SYM_PACK_MLP ? SYM_PACK_ATTENTION : SYM_PACK_MLP;
        CHECK_STATUS(sym_pack_plan_validate(p), SYM_ERR_INTERNAL);
        p->packs[1].type = type;
        CHECK_OK(sym_pack_plan_validate(p));
        sym_pack_plan_destroy(p);
    }
    sym_pack_table_free(&t);
    CHECK(!strcmp(sym_pack_type_name(SYM_PACK_MLP), "mlp") &&
              !strcmp(sym_pack_type_name(SYM_PACK_TYPE_COUNT), "?"),
          "type names");
}

/* Mixtures of experts: tables with an expert missing or misshapen, and the validator noticing
 * expert packs that mix experts, name the wrong one, or pass for an MLP pack. */
static void test_moe_errors(void) {
    for (int split = 0; split < 2; split++) {
        sym_make_model_options o;
        sym_make_model_options_init(&o);
        CHECK_OK(sym_make_model_preset(&o, "tiny-moe"));
        o.n_expert = 5;
        o.split_experts = split;
        sym_hparams hp;
        CHECK_OK(sym_make_model_hparams(&o, &hp));
        sym_pack_table t;
        CHECK_OK(sym_pack_table_from_hparams(&hp, SYM_DT_F16, 32, &t));
        sym_pack_options po = {20000, SYM_PACK_CUT_BUDDY};
        sym_pack_plan *p = NULL;
        /* the last weight before output_norm's layer... the last layer's last expert matrix */
        uint64_t last = t.n_weights - 1;
        CHECK(strstr(t.weights[last].name, split ? "ffn_down.4" : "ffn_down_exps"), "%s",
              t.weights[last].name);
        CHECK_STATUS(sym_pack_plan_from_table(&hp, t.weights, last, &po, &p), SYM_ERR_ARG);
        CHECK(strstr(sym_last_error(), "missing") != NULL, "missing: %s", sym_last_error());
        sym_weight saved = t.weights[last];
        t.weights[last].n_rows -= 1;
        CHECK_STATUS(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p), SYM_ERR_ARG);
        t.weights[last] = saved;
        t.weights[last].name = split ? "blk.1.ffn_down.5.weight" : "blk.1.ffn_down.4.weight";
        CHECK_STATUS(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p), SYM_ERR_ARG);
        CHECK(strstr(sym_last_error(), "is not a weight") != NULL, "%s", sym_last_error());
        t.weights[last] = saved;
        CHECK_OK(sym_pack_plan_from_table(&hp, t.weights, t.n_weights, &po, &p));
        if (p) {
            check_plan(p, split ? "tiny-moe split, 20000 bytes" : "tiny-moe, 20000 bytes");
            uint32_t x = 0; /* the first expert pack holding a whole expert-0 piece of gate */
            while (x < p->n_packs && p->packs[x].type != SYM_PACK_EXPERT)
                x++;
            sym_pack *k = &p->packs[x];
            CHECK(x < p->n_packs && k->expert == 0 && k->layer == 0, "first expert pack %u", x);
            k->expert = 1;
            CHECK_STATUS(sym_pack_plan_validate(p), SYM_ERR_INTERNAL);
            k->expert = 0;
            k->type = SYM_PACK_MLP;
            CHECK_STATUS(sym_pack_plan_validate(p), SYM_ERR_INTERNAL);
            k->type = SYM_PACK_EXPERT;
            CHECK_OK(sym_pack_plan_validate(p));
            if (!split) { /* read with another expert count, pieces straddle experts */
                p->n_expert = 4;
                CHECK_STATUS(sym_pack_plan_validate(p), SYM_ERR_INTERNAL);
                CHECK(strstr(sym_last_error(), "cross experts") != NULL, "%s", sym_last_error());
                p->n_expert = 5;
            }
            sym_pack_plan_totals(p); /* recomputes each expert pack's expert */
            CHECK(k->expert == 0, "derived expert %d", k->expert);
            CHECK_OK(sym_pack_plan_validate(p));
            sym_pack_plan_destroy(p);
        }
        sym_pack_table_free(&t);
    }
    CHECK(!strcmp(sym_pack_type_name(SYM_PACK_EXPERT), "expert"), "expert type name");
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/tests/test_pack.tmp", SYM_BUILD_DIR);
    rm_rf(g_dir);
    mkdir(g_dir, 0755);
    test_errors();
    test_moe_errors();
    test_oversized();
    test_files();
    test_aidreams();
    test_presets();
    rm_rf(g_dir);
    return test_finish("test_pack");
}
