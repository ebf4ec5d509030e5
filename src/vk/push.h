/* push.h — the push-constant layout of every kernel, mirrored once in shaders/<kernel>.comp.
 * All members are 32-bit, so C and GLSL (std430 push-constant blocks) lay them out alike;
 * pipeline.c also reads the block size out of each SPIR-V module and refuses a mismatch.
 * "*_off" members are element offsets inside the bound window (see shaders/common.glsl). */
#ifndef SYM_VK_PUSH_H
#define SYM_VK_PUSH_H

#include <stdint.h>

#define SYM_VK_PUSH_CHECK(type, n_words)                                                           \
    _Static_assert(sizeof(type) == 4 * (n_words), #type " must be " #n_words " 32-bit words")

/* embed: out[t][i] = table[ids[t]][i] for ids[t] in [row_lo, row_hi) (a slice of the table). */
typedef struct sym_vk_push_embed {
    uint32_t n_cols, n_tok, row_lo, row_hi;
    uint32_t table_off, ids_off, out_off;
} sym_vk_push_embed;
SYM_VK_PUSH_CHECK(sym_vk_push_embed, 7);

typedef struct sym_vk_push_rmsnorm {
    uint32_t n_cols, n_rows, x_off, w_off, out_off;
    float eps;
    uint32_t unit_w; /* a weight of ones (w NULL): w is not read */
} sym_vk_push_rmsnorm;
SYM_VK_PUSH_CHECK(sym_vk_push_rmsnorm, 7);

/* matvec (n_tok <= 8): rows [row0, row0 + n_rows) of out come from the bound slice of W. */
typedef struct sym_vk_push_matvec {
    uint32_t n_in, n_rows, n_tok;
    uint32_t x_off, w_off, b_off, out_off;
    uint32_t out_stride, row0, has_bias, vec_ok;
    uint32_t accumulate; /* 1: out += product */
} sym_vk_push_matvec;
SYM_VK_PUSH_CHECK(sym_vk_push_matvec, 12);

/* matmul (shared-memory tiles): out[m][row0 + n] = sum_k x[m][k] W[n][k] (+ bias[row0 + n]). */
typedef struct sym_vk_push_matmul {
    uint32_t m, n, k;
    uint32_t x_off, w_off, b_off, out_off;
    uint32_t out_stride, row0, has_bias, vec_ok;
    uint32_t accumulate; /* 1: out += product (the residual add fused) */
} sym_vk_push_matmul;
SYM_VK_PUSH_CHECK(sym_vk_push_matmul, 12);

/* gemm_split: x rows (RMS-normalized first, with the spec constant NORM) -> power-of-two scaled
 * f16 hi + lo halves (k_pad columns) and 1/scale. */
typedef struct sym_vk_push_split {
    uint32_t m, k, k_pad;
    uint32_t x_off, hi_off, lo_off, scale_off;
    uint32_t g_off; /* the norm's weight (NORM 2) */
    float eps;
} sym_vk_push_split;
SYM_VK_PUSH_CHECK(sym_vk_push_split, 9);

/* matmul_coop: like matmul, A from gemm_split's output. */
typedef struct sym_vk_push_coop {
    uint32_t m, n, k, k_pad;
    uint32_t hi_off, lo_off, scale_off, w_off, b_off, out_off;
    uint32_t out_stride, row0, has_bias, use_lo, vec_ok;
    uint32_t accumulate; /* 1: out += product */
} sym_vk_push_coop;
SYM_VK_PUSH_CHECK(sym_vk_push_coop, 16);

/* Flags of the subgroup matrix-vector kernels (mv, mv_gate, mv_qkv); whether x is RMS-normalized
 * on the fly is their specialization constant 10, not a flag (a run-time branch cost ~25%). */
#define SYM_VK_MV_BIAS       1u  /* mv: add bias */
#define SYM_VK_MV_ACCUMULATE 2u  /* mv: out += product */
#define SYM_VK_MV_VEC        8u  /* 16-byte loads: K % 8 == 0 and every row start aligned */
#define SYM_VK_MV_NEOX       16u /* mv_qkv: RoPE pairs (i, i + head_dim/2) */
#define SYM_VK_MV_BQ         32u /* mv_qkv: biases present */
#define SYM_VK_MV_BK         64u
#define SYM_VK_MV_BV         128u

/* mv (n_tok <= 8, subgroups): out[t][row0 + r] (+)= rmsnorm?(x[t]) . W[r] (+ bias[row0 + r]). */
typedef struct sym_vk_push_mv {
    uint32_t n_in, n_rows, n_tok, x_off, g_off, w_off, b_off, out_off;
    uint32_t out_stride, row0, flags;
    float eps;
} sym_vk_push_mv;
SYM_VK_PUSH_CHECK(sym_vk_push_mv, 12);

/* mv_gate: out[t][r] = silu(xn[t] . Wg[r]) * (xn[t] . Wu[r]), xn = rmsnorm?(x). */
typedef struct sym_vk_push_mv_gate {
    uint32_t n_in, n_rows, n_tok, x_off, g_off, wg_off, wu_off, out_off, out_stride, flags;
    float eps;
} sym_vk_push_mv_gate;
SYM_VK_PUSH_CHECK(sym_vk_push_mv_gate, 11);

/* mv_qkv: q, k, v of rmsnorm?(x); RoPE; q -> q_out, k/v -> cache rows (kc_off/vc_off: element
 * of token 0's row in the bound window). */
typedef struct sym_vk_push_mv_qkv {
    uint32_t n_in, n_tok, x_off, g_off, wq_off, wk_off, wv_off, bq_off, bk_off, bv_off;
    uint32_t q_off, q_stride, kc_off, vc_off, kv_stride;
    uint32_t n_head, n_head_kv, head_dim, pos0, freq_off, flags;
    float eps, freq_scale;
} sym_vk_push_mv_qkv;
SYM_VK_PUSH_CHECK(sym_vk_push_mv_qkv, 23);

typedef struct sym_vk_push_rope {
    uint32_t n_tok, n_head, head_dim, row_stride;
    int32_t pos0;
    float freq_scale;
    uint32_t neox, x_off, freq_off;
} sym_vk_push_rope;
SYM_VK_PUSH_CHECK(sym_vk_push_rope, 9);

/* rope_store: q rotated in place, k rotated and v copied into cache rows (prefill attn_in). */
typedef struct sym_vk_push_rope_store {
    uint32_t n_tok, n_head, n_head_kv, head_dim, q_stride, kv_dim;
    int32_t pos0;
    float freq_scale;
    uint32_t neox, q_off, k_off, v_off, kc_off, vc_off, freq_off;
} sym_vk_push_rope_store;
SYM_VK_PUSH_CHECK(sym_vk_push_rope_store, 15);

/* store_rows: src (n_rows, n_cols) f32 -> cache elements [cache_off, cache_off + n_rows*n_cols). */
typedef struct sym_vk_push_store {
    uint32_t n_elems, src_off, cache_off;
} sym_vk_push_store;
SYM_VK_PUSH_CHECK(sym_vk_push_store, 3);

/* attn_decode: one workgroup per (kv head, head group, chunk, token); partial softmax state.
 * A dispatch covers chunks [c_base, c_base + grid y); k_off/v_off locate position
 * c_base * chunk_len (K and V may be bound in position slices). */
typedef struct sym_vk_push_attn_decode {
    uint32_t n_tok, n_head, n_head_kv, pos0;
    uint32_t q_off, k_off, v_off, part_off;
    uint32_t q_stride, kv_stride, chunk_len, n_chunks, n_hgroups, pair_ok, c_base;
    float scale;
} sym_vk_push_attn_decode;
SYM_VK_PUSH_CHECK(sym_vk_push_attn_decode, 16);

/* attn_decode_sg: one dispatch; workgroup per (kv head, head group, chunk, token); partial
 * states in part, joined by the last workgroup of each (kv head, head group, token), counted in
 * cnt (zero before and after). */
typedef struct sym_vk_push_attn_decode_sg {
    uint32_t n_tok, n_head, n_head_kv, pos0;
    uint32_t q_off, k_off, v_off, out_off, part_off, cnt_off;
    uint32_t q_stride, kv_stride, out_stride, chunk_len, n_chunks, n_hgroups;
    float scale;
} sym_vk_push_attn_decode_sg;
SYM_VK_PUSH_CHECK(sym_vk_push_attn_decode_sg, 17);

typedef struct sym_vk_push_attn_combine {
    uint32_t n_tok, n_head, n_chunks, part_off, out_off, out_stride;
} sym_vk_push_attn_combine;
SYM_VK_PUSH_CHECK(sym_vk_push_attn_combine, 6);

/* attn_prefill: one workgroup per (head, block of BQ tokens), causal, online softmax. */
typedef struct sym_vk_push_attn_prefill {
    uint32_t n_tok, n_head, n_head_kv, pos0;
    uint32_t q_off, k_off, v_off, out_off;
    uint32_t q_stride, kv_stride, out_stride;
    float scale;
} sym_vk_push_attn_prefill;
SYM_VK_PUSH_CHECK(sym_vk_push_attn_prefill, 12);

/* silu_mul and add: n elementwise. */
typedef struct sym_vk_push_binary {
    uint32_t n, a_off, b_off, out_off;
} sym_vk_push_binary;
SYM_VK_PUSH_CHECK(sym_vk_push_binary, 4);

/* set_cols: out[t][col0 + j] (+)= src[t][j]; out_off already points at column col0 of row 0. */
typedef struct sym_vk_push_set_cols {
    uint32_t w, n_rows, out_cols, src_off, out_off, accumulate;
} sym_vk_push_set_cols;
SYM_VK_PUSH_CHECK(sym_vk_push_set_cols, 6);
/* add_rows_scaled: out[rows[i]] += scales[i] * a[i] for entries idx_off + i of the staged rows
 * and scales; rows[i] - row0 is the row's place in out's bound window. */
typedef struct sym_vk_push_add_rows {
    uint32_t n_cols, n, a_off, out_off, idx_off, row0;
} sym_vk_push_add_rows;
SYM_VK_PUSH_CHECK(sym_vk_push_add_rows, 6);

/* softmax (in place) and argmax (out[row] = index as f32). */
/* scale_cols: w[r][i] = round(w[r][i] * g[i]) for rows [0, n_rows) of the bound window (apply
 * 0: only flag products that overflow). */
typedef struct sym_vk_push_scale_cols {
    uint32_t n_cols, n_rows, w_off, g_off, apply;
} sym_vk_push_scale_cols;
SYM_VK_PUSH_CHECK(sym_vk_push_scale_cols, 5);

typedef struct sym_vk_push_rows {
    uint32_t n_cols, n_rows, x_off, out_off;
} sym_vk_push_rows;
SYM_VK_PUSH_CHECK(sym_vk_push_rows, 4);

/* probe_read: reads n16 uvec4 from src_off (in uvec4); writes sink only if the fold == magic. */
typedef struct sym_vk_push_probe {
    uint32_t n16, src_off, magic;
} sym_vk_push_probe;
SYM_VK_PUSH_CHECK(sym_vk_push_probe, 3);

/* topk: the k best of n values from x_off (per_group per workgroup; workgroups' keys in part,
 * the last to finish counted in cnt[cnt_off]) as (value, index) pairs at out_off. */
typedef struct sym_vk_push_topk {
    uint32_t n, k, per_group, x_off, out_off, part_off, cnt_off;
} sym_vk_push_topk;
SYM_VK_PUSH_CHECK(sym_vk_push_topk, 7);

/* probe_chain: phases [ph0, ph1) of x[ph + 1] = W[ph] x[ph] (n x n f16), grid barriers between
 * them counted from base (shaders/grid_sync.glsl); with dynamic rows, blocks claimed from a second
 * counter counted from claim_base. */
typedef struct sym_vk_push_probe_chain {
    uint32_t n, ph0, ph1, base, claim_base;
} sym_vk_push_probe_chain;
SYM_VK_PUSH_CHECK(sym_vk_push_probe_chain, 5);

/* probe_dchain: product ph of a chain, x[ph + 1] = W[ph] x[ph] (n x n f16), one dispatch; with an
 * in-shader wait, until the arrivals counter reaches target. */
typedef struct sym_vk_push_probe_dchain {
    uint32_t n, ph, target;
} sym_vk_push_probe_dchain;
SYM_VK_PUSH_CHECK(sym_vk_push_probe_dchain, 3);

#endif
