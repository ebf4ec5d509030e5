/* trace.h — pack-access traces: the sequence of pack uses an engine makes, token by token, for
 * replaying replacement policies offline (policy_sim.h) and training the vitality oracle.
 *
 * A trace describes its packs once (bytes, layer; expert packs also their index) and then one
 * record per use: token index, pack id, layer, kind, and for an expert the router's probability
 * when known. Packs [0, n_dense) are dense (a plan's packs: used by every token); when the model
 * is a mixture of experts, expert e of layer l is pack n_dense + l * n_expert + e (one trace
 * pack per expert, whatever number of plan packs hold it: they move together).
 *
 * File format (.symtrace), little-endian, version 1:
 *   header, 64 bytes
 *     0  char[8] "SYMTRACE"
 *     8  u32 version (1)
 *    12  u32 n_packs             n_dense + n_layer * n_expert, 1 .. 2^24
 *    16  u32 n_dense
 *    20  u32 n_layer             <= 65536
 *    24  u32 n_expert            per layer; 0 for a dense model
 *    28  u32 top_k               experts per token and layer: 0 iff n_expert is 0, else <= n_expert
 *    32  u64 n_records
 *    40  u32 n_tokens            every record's token is < n_tokens
 *    44  u32 reserved (0)
 *    48  u64 XXH3-64 of the body (everything after the header)
 *    56  u64 XXH3-64 of header bytes [0, 56)
 *   pack table, n_packs x 16 bytes
 *     0  u64 bytes               > 0: what one load of the pack moves (its buffer)
 *     8  i32 layer               -1 (embedding, output, ...) .. n_layer - 1
 *    12  u32 expert              the expert's index in its layer; 0xffffffff for a dense pack
 *   records, n_records x 16 bytes, in order of use
 *     0  u32 token               non-decreasing
 *     4  u32 pack_id             < n_packs
 *     8  i16 layer               the pack's layer
 *    10  u8  kind                0 FULL, 1 GATHER (rows of the current tokens only), 2 EXPERT;
 *                                EXPERT exactly for expert packs
 *    11  u8  flags (0)
 *    12  f32 prob                EXPERT: router probability in [0, 1], or -1 (unknown);
 *                                otherwise -1
 * The file is exactly 64 + 16 * (n_packs + n_records) bytes. The reader is strict: every field
 * above is checked, and any violation, a truncated file or a checksum mismatch is SYM_ERR_FORMAT
 * with a detail naming the field (and record) — never a crash.
 *
 * Threads: a trace is a plain value; build it on one thread, then read it from any.
 */
#ifndef SYM_TIER_TRACE_H
#define SYM_TIER_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pack/pack.h"

#define SYM_TRACE_NO_EXPERT    UINT32_MAX
#define SYM_TRACE_PROB_UNKNOWN (-1.0f)
#define SYM_TRACE_MAX_PACKS    (1u << 24)
#define SYM_TRACE_MAX_LAYERS   65536
/* 256 GiB: with at most SYM_TRACE_MAX_PACKS packs the working set stays below 2^62 bytes */
#define SYM_TRACE_MAX_PACK_BYTES (1ull << 38)

typedef enum sym_trace_kind {
    SYM_TRACE_FULL = 0, /* every byte of the pack is read */
    SYM_TRACE_GATHER,   /* only the rows of the current tokens (embedding lookup) */
    SYM_TRACE_EXPERT,   /* an expert the router chose */
    SYM_TRACE_KIND_COUNT
} sym_trace_kind;

/* "full", "gather", "expert". */
const char *sym_trace_kind_name(sym_trace_kind k);

typedef struct sym_trace_pack {
    uint64_t bytes;
    int32_t layer;
    uint32_t expert; /* SYM_TRACE_NO_EXPERT for dense packs */
} sym_trace_pack;

typedef struct sym_trace_record {
    uint32_t token;
    uint32_t pack_id;
    int16_t layer;
    uint8_t kind; /* sym_trace_kind */
    float prob;   /* router probability, or SYM_TRACE_PROB_UNKNOWN */
} sym_trace_record;

typedef struct sym_trace {
    uint32_t n_packs, n_dense;
    int n_layer;
    uint32_t n_expert, top_k;
    uint32_t n_tokens; /* last record's token + 1 */
    sym_trace_pack *packs;
    sym_trace_record *records;
    uint64_t n_records, cap_records;
} sym_trace;

/* An empty trace with n_dense dense packs (bytes 0 and layer -1 until sym_trace_set_pack) and
 * n_layer * n_expert expert packs (bytes 0 until set). SYM_ERR_ARG for shapes the format cannot
 * hold, SYM_ERR_OOM. Caller owns *out (sym_trace_destroy). */
sym_status sym_trace_create(uint32_t n_dense, int n_layer, uint32_t n_expert, uint32_t top_k,
                            sym_trace **out);
void sym_trace_destroy(sym_trace *t);
/* Sets a pack's bytes (> 0) and, for a dense pack, its layer (-1 .. n_layer - 1; an expert's
 * layer is fixed by its id). SYM_ERR_ARG otherwise. */
sym_status sym_trace_set_pack(sym_trace *t, uint32_t pack_id, uint64_t bytes, int layer);
/* Appends one use, checked as the reader checks a record (the layer is taken from the pack).
 * SYM_ERR_ARG naming the broken rule, SYM_ERR_OOM. */
sym_status sym_trace_append(sym_trace *t, uint32_t token, uint32_t pack_id, sym_trace_kind kind,
                            float prob);
/* Total bytes of the distinct packs the trace uses (its working set). */
uint64_t sym_trace_working_set(const sym_trace *t);

/* Writes t to path (under a temporary name, renamed into place when complete). SYM_ERR_ARG if a
 * pack has no bytes, SYM_ERR_IO naming the file and the system error. */
sym_status sym_trace_write(const sym_trace *t, const char *path);
/* Reads and checks a trace file; SYM_ERR_IO if it cannot be read, SYM_ERR_FORMAT (see above).
 * Caller owns *out. */
sym_status sym_trace_read(const char *path, sym_trace **out);
/* The same from memory (data is not kept). */
sym_status sym_trace_read_memory(const void *data, size_t size, sym_trace **out);

/* An empty trace (no records) holding plan's packs in the numbering above: the packs that are
 * not EXPERT packs are dense, numbered in order of first use (plan ids are that order) with their
 * buffer_bytes and layer; a plan with EXPERT packs gives n_layer x n_expert expert packs, each
 * the sum of its plan packs' buffer_bytes, top_k = n_expert_used. map (plan->n_packs entries, may
 * be NULL) receives each plan pack's trace pack. The shared numbering of run traces
 * (infer/trace_rec.h), synthetic ones (sym_trace_moe) and the oracle's layout of a plan.
 * SYM_ERR_ARG for a plan the format cannot hold or an expert without packs, SYM_ERR_OOM. */
sym_status sym_trace_create_for_plan(const sym_pack_plan *plan, uint32_t *map, sym_trace **out);

/* ---- generators ------------------------------------------------------------------------------ */

/* The plan of a synthetic model preset (model/writer.h: "tinyllama-1.1b", "llama2-7b", ...) in
 * dtype dt with packs of at most max_pack_bytes (buddy cut): no file is written. SYM_ERR_ARG for
 * an unknown preset. Caller owns *out. */
sym_status sym_trace_plan_preset(const char *preset, sym_dtype dt, uint64_t max_pack_bytes,
                                 sym_pack_plan **out);

/* A dense model's trace: n_tokens repetitions of plan->schedule (FULL and GATHER uses). The
 * packs are the plan's, with their buffer_bytes. SYM_ERR_ARG for a plan with EXPERT packs (its
 * schedule lists every expert; use sym_trace_moe). */
sym_status sym_trace_dense(const sym_pack_plan *plan, uint32_t n_tokens, sym_trace **out);

/* A synthetic routing of a mixture of experts. On a plan with EXPERT packs (a MoE model: pack.h)
 * each layer's EXPERT uses become one slot of n_expert_used of its n_expert experts (the options'
 * n_expert and top_k are not used), each expert one trace pack holding all of its plan packs
 * (they always move together). On a dense plan each layer's MLP packs become a slot of top_k of
 * n_expert synthetic experts. The other packs keep their order of use and are renumbered in that
 * order (ids 0 .. n_dense - 1). The router is simulated:
 *   topics  each token has a hidden topic z_t in [0, n_topics): z_0 uniform; z_t = z_{t-1} with
 *           probability topic_stay, else drawn uniformly again (runs of 1 / (1 - stay) tokens).
 *   skew    topic z ranks the experts of layer l by a permutation pi(z, l): pi(z, 0) uniform;
 *           pi(z, l) is pi(z, l - 1) with each rank position swapped, with probability
 *           layer_drift, with a uniform random position (consecutive layers prefer the same
 *           expert indices). The expert at rank r gets the logit -zipf_s * ln(r + 1), so without
 *           noise softmax gives Zipf(zipf_s) preferences. Every layer also has one uniformly
 *           random ranking g(l) that all topics share, adding -global_zipf * ln(g + 1): some
 *           experts are popular whatever the topic (what frequency-based policies can use).
 *   input   per token, layer and expert a Gaussian n(t, l, e) = layer_corr * n(t, l - 1, e) +
 *           sqrt(1 - layer_corr^2) * N(0, 1) (n(t, 0, e) = N(0, 1)) is added times noise.
 *   router  the top_k logits win (ties: lower index); each record's prob is the softmax of all
 *           n_expert logits at the chosen expert; records in descending probability.
 * expert_bytes 0: the expert's packs (a MoE plan), or the bytes of layer 0's MLP packs / top_k
 * (a dense plan; fine-grained experts: a token reads as many MLP bytes as the dense model).
 * Everything is a function of the seed. */
typedef struct sym_trace_moe_options {
    uint32_t n_tokens; /* default 512 */
    uint32_t n_expert; /* default 32 */
    uint32_t top_k;    /* default 4 */
    uint64_t expert_bytes;
    uint32_t n_topics;  /* default 8 */
    double topic_stay;  /* default 0.9 */
    double zipf_s;      /* default 1.2 */
    double global_zipf; /* default 0.6 */
    double layer_drift; /* default 0.2 */
    double noise;       /* default 1.0 */
    double layer_corr;  /* default 0.5 */
    uint64_t seed;      /* default 1 */
} sym_trace_moe_options;

void sym_trace_moe_options_init(sym_trace_moe_options *o);
/* SYM_ERR_ARG for options out of range (named), SYM_ERR_OOM. Caller owns *out. */
sym_status sym_trace_moe(const sym_pack_plan *plan, const sym_trace_moe_options *o,
                         sym_trace **out);

#endif
