/* pack.h — the pack planner: cuts a model's weights into packs, the units that move between
 * tiers (VRAM, RAM, disk), and gives the order in which one token uses them.
 *
 * Blocks, in the forward pass's order of use:
 *   EMBED      token_embd, row-sliced
 *   per layer  ATTENTION: attn_norm, (bq) wq, (bk) wk, (bv) wv, wo
 *              MLP:       ffn_norm, w_gate, w_up, w_down; with experts: ffn_norm, ffn_gate_inp
 *                         (the router rides with the norm)
 *              EXPERT e = 0 .. n_expert-1 (mixtures of experts): expert e's gate, up and down
 *                         matrices — rows [e * n_ff, (e + 1) * n_ff) of ffn_gate_exps and
 *                         ffn_up_exps and [e * n_embd, (e + 1) * n_embd) of ffn_down_exps when
 *                         stacked, ffn_gate.e, ffn_up.e, ffn_down.e when split — so each expert
 *                         moves between tiers on its own (a large expert is cut like any block;
 *                         a pack never holds rows of two experts)
 *   OUTPUT     output_norm, output (row-sliced). Tied embeddings have no output matrix: the
 *              output projection reads the EMBED packs again (the schedule lists them a second
 *              time, in FULL mode), so no byte is planned twice, and output_norm, which then has
 *              no block to ride with, becomes a NORM pack.
 * A block larger than the limit is cut into several packs of the same type and layer, each
 * holding consecutive row ranges ("pieces") of the block's weights in that order; a matrix is
 * cut only between rows (rows are contiguous in GGUF and safetensors files), a vector (norm,
 * bias) never. Biases come before their matrix so the first slice already has its bias.
 * Where to cut (sym_pack_cut): BUDDY (the default) sizes packs for the fractal allocator, which
 * rounds blocks up to powers of two: full packs of the largest power of two <= the limit, then
 * the rest in power-of-two steps, accepting at most 1/8 of that power of two of rounding per
 * block (66 MiB under 32 MiB: 32 + 32 + 2). EVEN uses the fewest packs a row-granular cut
 * allows and, among those, the most even sizes (66 MiB: 3 x 22 MiB, which a buddy allocator
 * holds in 3 x 32 MiB). The limit bounds a pack's whole buffer (weights + range padding).
 * A norm always rides with the first rows of its block unless the norm plus one row of the next
 * matrix exceeds the limit; it is then a NORM pack of its own (any pack holding only vectors —
 * norms, or a bias that could not share a pack with its matrix — is a NORM pack). No pack exceeds
 * the limit unless a single row (or vector) does: that row is then a pack alone, flagged
 * oversized.
 *
 * Ids are stable (same weights, limit and cut -> same plan) and equal the order of first use.
 * Everything in a plan is owned by it; nothing points into the model, so a plan may outlive it.
 * Plans are immutable after creation and may be read from any thread.
 */
#ifndef SYM_PACK_PACK_H
#define SYM_PACK_PACK_H

#include <stdbool.h>
#include <stdint.h>

#include "model/arch.h"
#include "model/model.h"

#define SYM_PACK_MIN_MB     1
#define SYM_PACK_MAX_MB     256
#define SYM_PACK_DEFAULT_MB 32
/* Each file range starts at a multiple of this in a pack's buffer (Vulkan's largest
 * minStorageBufferOffsetAlignment). */
#define SYM_PACK_RANGE_ALIGN 256u

typedef enum sym_pack_type {
    SYM_PACK_EMBED = 0,
    SYM_PACK_ATTENTION,
    SYM_PACK_MLP,
    SYM_PACK_NORM,
    SYM_PACK_OUTPUT,
    SYM_PACK_EXPERT, /* one expert of one layer (mixtures of experts) */
    SYM_PACK_TYPE_COUNT
} sym_pack_type;

/* "embed", "attention", "mlp", "norm", "output", "expert". */
const char *sym_pack_type_name(sym_pack_type t);

/* One weight as the plan saw it; plan->weights[i] is input weight i (for a model:
 * sym_model_weight_at(m, i)). */
typedef struct sym_pack_weight {
    char name[48];
    sym_tensor_role role;
    int layer;  /* -1 for token_embd, output_norm, output */
    int expert; /* split expert tensors (SYM_ROLE_*_EXP): the expert; -1 otherwise (stacked
                 * tensors hold every expert: a piece's rows say which) */
    sym_dtype type;
    int64_t n_rows, n_cols;
    uint64_t row_bytes;
    uint64_t n_bytes;
    uint64_t file_offset;
    int file_idx;
} sym_pack_weight;

/* Rows [row0, row0 + n_rows) of one weight: n_bytes at file_offset in file file_idx, found at
 * pack_offset in the pack's buffer. */
typedef struct sym_pack_piece {
    uint32_t weight_idx;
    int64_t row0, n_rows;
    uint64_t n_bytes;
    uint64_t file_offset;
    int file_idx;
    uint64_t pack_offset;
} sym_pack_piece;

/* A contiguous run of file bytes holding one or more pieces of a pack (one read). The pack's
 * buffer is its ranges in file order, each at a SYM_PACK_RANGE_ALIGN-aligned pack_offset. */
typedef struct sym_pack_range {
    int file_idx;
    uint64_t file_offset, n_bytes;
    uint64_t pack_offset;
} sym_pack_range;

typedef struct sym_pack {
    uint32_t id; /* index in plan->packs = order of first use */
    sym_pack_type type;
    int layer;                 /* -1 for EMBED, OUTPUT and the output NORM */
    int expert;                /* EXPERT packs: the expert (0 .. n_expert-1); -1 otherwise */
    uint32_t piece0, n_pieces; /* plan->pieces[piece0 ..], in order of use */
    uint32_t range0, n_ranges; /* plan->ranges[range0 ..], in file order */
    uint64_t n_bytes;          /* weight bytes (sum of the pieces) */
    uint64_t buffer_bytes;     /* bytes of the pack's buffer (ranges plus alignment padding):
                                  at most the limit unless oversized */
    uint32_t first_use;        /* index of its first entry in plan->schedule */
    bool oversized;            /* one row larger than the limit, alone */
} sym_pack;

typedef enum sym_pack_use_kind {
    SYM_PACK_USE_FULL = 0, /* every byte is read (a matrix product, a norm) */
    SYM_PACK_USE_GATHER,   /* only the rows of the current tokens (embedding lookup) */
} sym_pack_use_kind;

typedef struct sym_pack_use {
    uint32_t pack_id;
    sym_pack_use_kind kind;
} sym_pack_use;

typedef enum sym_pack_cut {
    SYM_PACK_CUT_BUDDY = 0, /* power-of-two friendly sizes (for the fractal allocator) */
    SYM_PACK_CUT_EVEN,      /* fewest packs, even sizes */
} sym_pack_cut;

/* "buddy", "even"; sym_pack_cut_parse: SYM_ERR_ARG for other names. */
const char *sym_pack_cut_name(sym_pack_cut c);
sym_status sym_pack_cut_parse(const char *name, sym_pack_cut *out);

typedef struct sym_pack_options {
    uint64_t max_pack_bytes; /* any positive value: see sym_pack_limit_from_mb */
    sym_pack_cut cut;
} sym_pack_options;

/* SYM_PACK_DEFAULT_MB, SYM_PACK_CUT_BUDDY. */
void sym_pack_options_init(sym_pack_options *o);

typedef struct sym_pack_plan {
    uint64_t max_pack_bytes;
    sym_pack_cut cut;
    int n_layer;
    bool tied_embeddings;
    int n_expert, n_expert_used; /* mixture of experts (0, 0: dense) */
    sym_pack_weight *weights;
    uint32_t n_weights;
    sym_pack *packs;
    uint32_t n_packs;
    sym_pack_piece *pieces;
    uint32_t n_pieces;
    sym_pack_range *ranges;
    uint32_t n_ranges;
    /* The cyclic schedule of one token: EMBED packs (GATHER), each layer's ATTENTION then MLP
     * packs, then (mixtures of experts) the layer's EXPERT packs in expert order, then
     * output_norm and the output projection (OUTPUT packs, or with tied embeddings the NORM pack
     * and the EMBED packs again in FULL mode). Every pack appears at least once. At run time a
     * token uses only the n_expert_used experts its router picks in each layer: the EXPERT
     * entries list what may be used, in the order it would be, not what will be (which the
     * oracle predicts; infer/moe.h reports the actual choices). */
    sym_pack_use *schedule;
    uint32_t n_uses;
    /* totals */
    uint32_t n_packs_by_type[SYM_PACK_TYPE_COUNT];
    uint64_t bytes_by_type[SYM_PACK_TYPE_COUNT];
    uint64_t total_bytes;          /* every weight byte once */
    uint64_t pow2_bytes;           /* the buffers rounded up to powers of two: what the packs take
                                      in a buddy allocator (all resident at once) */
    uint64_t full_bytes_per_token; /* bytes of the FULL uses: what one token streams at most */
    uint64_t routed_bytes_per_token; /* the same with each EXPERT pack counted n_expert_used /
                                        n_expert times: what one token reads when it is routed
                                        to n_expert_used experts per layer (equal for dense) */
    uint64_t largest_pack_bytes;
    uint32_t largest_pack_id;
    uint32_t n_oversized;
} sym_pack_plan;

/* max_pack_mb from the configuration ([memory] max_pack_mb) in bytes (0, automatic:
 * SYM_PACK_DEFAULT_MB): SYM_ERR_CONFIG unless 0 or SYM_PACK_MIN_MB <= mb <= SYM_PACK_MAX_MB. */
sym_status sym_pack_limit_from_mb(int max_pack_mb, uint64_t *max_pack_bytes);

/* Plans the packs of an open model with buffers of at most o->max_pack_bytes (any positive value:
 * the configuration's 1–256 MiB range is enforced by sym_pack_limit_from_mb; tests use smaller
 * limits to exercise the cuts on tiny models). SYM_ERR_ARG for a zero limit or an unknown cut,
 * SYM_ERR_OOM. Caller owns *out (sym_pack_plan_destroy). */
sym_status sym_pack_plan_create(const sym_model *m, const sym_pack_options *o, sym_pack_plan **out);

/* The same from hyperparameters and a weight table (data may be NULL: only names, types,
 * shapes, sizes and file positions are read), so that models too big to write can be planned.
 * SYM_ERR_ARG naming the weight if the table is not exactly the model's set (unknown, duplicate,
 * missing, wrong shape or byte count, output present with tied embeddings). */
sym_status sym_pack_plan_from_table(const sym_hparams *hp, const sym_weight *weights,
                                    uint64_t n_weights, const sym_pack_options *o,
                                    sym_pack_plan **out);
void sym_pack_plan_destroy(sym_pack_plan *p);

/* (Re)computes the derived fields from the packs and the schedule, for plans assembled outside
 * the planner (read from a pack store; n_layer, n_expert, n_expert_used set): each EXPERT pack's
 * expert (from its first piece) and the totals (by type, total, pow2, per token, largest,
 * oversized). Every pack type and schedule pack id must be in range. */
void sym_pack_plan_totals(sym_pack_plan *p);

/* Re-checks a plan from scratch: every byte of every weight in exactly one piece, pieces and
 * ranges consistent with the weights, the limit respected (except lone oversized rows), ids in
 * order of first use, blocks in the order of use, no pack mixing blocks (or experts), EXPERT
 * packs holding exactly their expert's rows, the schedule complete. SYM_ERR_INTERNAL naming the
 * first violation. */
sym_status sym_pack_plan_validate(const sym_pack_plan *p);

static inline const sym_pack_piece *sym_pack_pieces(const sym_pack_plan *p, const sym_pack *k) {
    return p->pieces + k->piece0;
}
static inline const sym_pack_range *sym_pack_ranges(const sym_pack_plan *p, const sym_pack *k) {
    return p->ranges + k->range0;
}

/* ---- weight tables without files ----------------------------------------------------------- */

/* The weights a GGUF file of these hyperparameters holds, all of one dtype, in llama.cpp's
 * tensor order with each tensor at an `align`-byte boundary (32 in GGUF; sym_make_model writes
 * exactly this layout), offsets relative to the data section; data pointers are NULL. */
typedef struct sym_pack_table {
    sym_weight *weights;
    uint64_t n_weights;
    char (*names)[48];
} sym_pack_table;

sym_status sym_pack_table_from_hparams(const sym_hparams *hp, sym_dtype type, uint64_t align,
                                       sym_pack_table *out);
void sym_pack_table_free(sym_pack_table *t);

#endif
