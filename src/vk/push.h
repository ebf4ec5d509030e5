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
} sym_vk_push_rmsnorm;
SYM_VK_PUSH_CHECK(sym_vk_push_rmsnorm, 6);

/* matvec (n_tok <= 8): rows [row0, row0 + n_rows) of out come from the bound slice of W. */
typedef struct sym_vk_push_matvec {
    uint32_t n_in, n_rows, n_tok;
    uint32_t x_off, w_off, b_off, out_off;
    uint32_t out_stride, row0, has_bias, vec_ok;
} sym_vk_push_matvec;
SYM_VK_PUSH_CHECK(sym_vk_push_matvec, 11);

/* matmul (shared-memory tiles): out[m][row0 + n] = sum_k x[m][k] W[n][k] (+ bias[row0 + n]). */
typedef struct sym_vk_push_matmul {
    uint32_t m, n, k;
    uint32_t x_off, w_off, b_off, out_off;
    uint32_t out_stride, row0, has_bias, vec_ok;
} sym_vk_push_matmul;
SYM_VK_PUSH_CHECK(sym_vk_push_matmul, 11);

/* gemm_split: x rows -> power-of-two scaled f16 hi + lo halves (k_pad columns) and 1/scale. */
typedef struct sym_vk_push_split {
    uint32_t m, k, k_pad;
    uint32_t x_off, hi_off, lo_off, scale_off;
} sym_vk_push_split;
SYM_VK_PUSH_CHECK(sym_vk_push_split, 7);

/* matmul_coop: like matmul, A from gemm_split's output. */
typedef struct sym_vk_push_coop {
    uint32_t m, n, k, k_pad;
    uint32_t hi_off, lo_off, scale_off, w_off, b_off, out_off;
    uint32_t out_stride, row0, has_bias, use_lo, vec_ok;
} sym_vk_push_coop;
SYM_VK_PUSH_CHECK(sym_vk_push_coop, 15);

typedef struct sym_vk_push_rope {
    uint32_t n_tok, n_head, head_dim, row_stride;
    int32_t pos0;
    float freq_scale;
    uint32_t neox, x_off, freq_off;
} sym_vk_push_rope;
SYM_VK_PUSH_CHECK(sym_vk_push_rope, 9);

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

/* softmax (in place) and argmax (out[row] = index as f32). */
typedef struct sym_vk_push_rows {
    uint32_t n_cols, n_rows, x_off, out_off;
} sym_vk_push_rows;
SYM_VK_PUSH_CHECK(sym_vk_push_rows, 4);

#endif
