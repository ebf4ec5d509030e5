/* ops.h — the backend interface. Every backend (cpu/ref.c: the specification; cpu/ops.c: fast
 * CPU; vk/: Vulkan) fills a sym_backend_ops table; forward.c is written once against it.
 *
 * Tensors are 2-D, row-major: n_rows rows of n_cols contiguous elements. Activations are f32
 * with one row per token; weights are f32/f16/bf16 with one row per output feature (GGUF's
 * ne[0] = n_cols). Sums accumulate in f32. Ops may run asynchronously: results are visible to
 * the host only through read() (which waits); errors inside ops are latched and returned by the
 * next read() or sync(). All calls come from one thread (the engine's).
 */
#ifndef SYM_INFER_OPS_H
#define SYM_INFER_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef enum sym_dtype { SYM_DT_F32 = 0, SYM_DT_F16, SYM_DT_BF16, SYM_DT_COUNT } sym_dtype;

static inline size_t sym_dtype_size(sym_dtype t) { return t == SYM_DT_F32 ? 4 : 2; }
const char *sym_dtype_name(sym_dtype t); /* "f32", "f16", "bf16" */

typedef struct sym_tensor {
    sym_dtype type;
    int64_t n_cols, n_rows;
    void *data;      /* host memory (CPU backends); NULL on devices */
    void *buf;       /* backend buffer handle (devices); NULL on CPU */
    uint64_t offset; /* bytes from the start of buf (devices) */
} sym_tensor;

static inline size_t sym_tensor_bytes(const sym_tensor *t) {
    return (size_t)t->n_cols * (size_t)t->n_rows * sym_dtype_size(t->type);
}

/* A view of rows [row0, row0 + n_rows) of t (no copy, same backend memory). */
static inline sym_tensor sym_tensor_rows(const sym_tensor *t, int64_t row0, int64_t n_rows) {
    sym_tensor v = *t;
    size_t skip = (size_t)row0 * (size_t)t->n_cols * sym_dtype_size(t->type);
    v.n_rows = n_rows;
    if (v.data) v.data = (char *)v.data + skip;
    v.offset += skip;
    return v;
}

typedef struct sym_backend sym_backend;

/* The largest k of the topk op (sym_backend_ops). */
#define SYM_TOPK_MAX 128

/* Arguments of the optional fused op attn_in (see sym_backend_ops). */
typedef struct sym_attn_in_args {
    const sym_tensor *x;            /* (n_tok, n_embd) residual stream; not modified */
    const sym_tensor *norm;         /* (1, n_embd) attention RMSNorm weight; NULL: ones (folded
                                     * into Wq, Wk, Wv by scale_cols) */
    float eps;
    const sym_tensor *wq, *wk, *wv; /* (n_head * head_dim, n_embd), (n_head_kv * head_dim,
                                     * n_embd) twice */
    const sym_tensor *bq, *bk, *bv; /* NULL or (1, rows) f32 */
    int n_head, n_head_kv, head_dim;
    int pos0;                       /* token t sits at position pos0 + t */
    float theta, freq_scale;        /* RoPE, as in rope() */
    int neox;
    sym_tensor *q;                  /* out: (n_tok, n_head * head_dim), RoPE applied */
    sym_tensor *k_cache, *v_cache;  /* rows [pos0, pos0 + n_tok) receive k (RoPE applied), v */
    sym_tensor *xn, *k, *v;         /* scratch: (n_tok, n_embd), (n_tok, n_head_kv * head_dim)
                                     * twice; contents afterwards unspecified */
} sym_attn_in_args;

typedef struct sym_backend_ops {
    const char *name;
    void (*destroy)(sym_backend *b);

    /* memory: alloc gives zeroed backend memory; load makes a weight tensor from host data
     * (CPU backends may borrow the pointer, which must then outlive the tensor); write copies
     * host bytes into t; read waits for pending work and copies t out. */
    sym_status (*alloc)(sym_backend *b, sym_tensor *t, sym_dtype type, int64_t n_cols,
                        int64_t n_rows);
    sym_status (*load)(sym_backend *b, sym_tensor *t, const void *host, sym_dtype type,
                       int64_t n_cols, int64_t n_rows);
    void (*release)(sym_backend *b, sym_tensor *t);
    sym_status (*write)(sym_backend *b, sym_tensor *t, const void *src, size_t bytes);
    sym_status (*read)(sym_backend *b, const sym_tensor *t, void *dst, size_t bytes);
    sym_status (*sync)(sym_backend *b);

    /* out[t] = table[ids[t]] as f32; out: (n_tok, n_embd), table: (n_vocab, n_embd). */
    void (*embed)(sym_backend *b, sym_tensor *out, const sym_tensor *table, const int32_t *ids,
                  int n_tok);
    /* out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w; x, out: (n_tok, n), w: (1, n), or NULL for
     * a weight of ones (the norm's weight folded into the products that follow, scale_cols). */
    void (*rmsnorm)(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                    float eps);
    /* out[t][o] = sum_i x[t][i] * W[o][i] (+ bias[o]); x: (n_tok, n_in), W: (n_out, n_in),
     * bias: NULL or (1, n_out) f32, out: (n_tok, n_out). */
    void (*matmul)(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                   const sym_tensor *bias);
    /* Rotates each head of x (n_tok, n_head * head_dim) in place; token t is at position
     * pos0 + t. Angle for pair i: pos * freq_scale * theta^(-2i/head_dim). neox = 0 rotates
     * pairs (2i, 2i+1) (GGUF llama); neox = 1 rotates (i, i + head_dim/2). */
    void (*rope)(sym_backend *b, sym_tensor *x, int n_head, int head_dim, int pos0, float theta,
                 float freq_scale, int neox);
    /* Copies the rows of src (f32) into rows [row0, row0 + src->n_rows) of cache, converting to
     * the cache's type. */
    void (*store_rows)(sym_backend *b, sym_tensor *cache, int64_t row0, const sym_tensor *src);
    /* Causal attention of q (n_tok, n_head * head_dim) over cache rows [0, pos0 + t] for token t;
     * k, v: (n_ctx, n_head_kv * head_dim); query head h uses kv head h / (n_head / n_head_kv);
     * scores scaled by scale; out: (n_tok, n_head * head_dim). */
    void (*attention)(sym_backend *b, sym_tensor *out, const sym_tensor *q, const sym_tensor *k,
                      const sym_tensor *v, int n_head, int n_head_kv, int head_dim, int pos0,
                      float scale);
    /* out = silu(gate) * up, elementwise; all (n_tok, n_ff) f32. out may alias gate. */
    void (*silu_mul)(sym_backend *b, sym_tensor *out, const sym_tensor *gate,
                     const sym_tensor *up);
    /* out = a + c elementwise (f32, same shape); out may alias a. */
    void (*add)(sym_backend *b, sym_tensor *out, const sym_tensor *a, const sym_tensor *c);
    /* Softmax of each row of x in place (f32). */
    void (*softmax)(sym_backend *b, sym_tensor *x);

    /* Optional (NULL: not tracked): the most device memory this backend has held at once. */
    uint64_t (*peak_bytes)(sym_backend *b);
    /* Optional (NULL: not offered; greedy sampling then reads the logits back). out[t] = index
     * of the first largest non-NaN x[t][i] (0 if every value is NaN), stored as f32, exact for
     * n < 2^24; x: (n_tok, n) f32, out: (n_tok, 1) f32. Lets the GPU return one number per
     * token instead of n_vocab logits. */
    void (*argmax)(sym_backend *b, sym_tensor *out, const sym_tensor *x);
    /* Optional (NULL: not offered; top-k sampling then reads the logits back). The k largest
     * non-NaN values of x's one row, largest first, equal values by the lower index (-0 as
     * +0): out[2i] = value, out[2i + 1] = index as f32 (exact for n < 2^24), index -1 past the
     * row's non-NaN values; x: (1, n) f32, out: (1, 2k) f32, 1 <= k <= SYM_TOPK_MAX. The
     * candidates the sampler's top-k keeps, in n_vocab / k fewer bytes. */
    void (*topk)(sym_backend *b, sym_tensor *out, const sym_tensor *x, int k);

    /* Optional fused ops (NULL: not offered). Each stands for a fixed sequence of the plain ops
     * above, written out once in infer/fused.c (sym_fused_*): forward.c runs that sequence when
     * a backend leaves the op NULL, and the tests use it as the reference. Scratch tensors are
     * what the plain sequence needs; their contents afterwards are unspecified. A backend may
     * run the plain sequence itself for shapes its fused kernels do not take. */

    /* xn = rmsnorm(x); q, k, v = xn Wq^T (+bq), xn Wk^T (+bk), xn Wv^T (+bv); rope(q), rope(k);
     * store_rows(k_cache, pos0, k), store_rows(v_cache, pos0, v). */
    void (*attn_in)(sym_backend *b, const sym_attn_in_args *a);
    /* out += x W^T (the residual add fused into the product): x (n_tok, n_in), W (n_out, n_in),
     * out (n_tok, n_out); tmp: scratch (n_tok, n_out) for matmul(tmp) + add(out, out, tmp). */
    void (*matmul_add)(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                       sym_tensor *tmp);
    /* out = silu(xn W_gate^T) * (xn W_up^T) with xn = rmsnorm(x, norm, eps): x (n_tok, n_embd),
     * W_gate, W_up (n_ff, n_embd), out (n_tok, n_ff); scratch xn (n_tok, n_embd) and
     * up (n_tok, n_ff). norm NULL: ones (folded into W_gate and W_up). */
    void (*ffn_in)(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *norm,
                   float eps, const sym_tensor *w_gate, const sym_tensor *w_up, sym_tensor *xn,
                   sym_tensor *up);
    /* out = rmsnorm(x, norm, eps) W^T: x (n_tok, n_in), W (n_out, n_in), out (n_tok, n_out);
     * scratch xn (n_tok, n_in). norm NULL: ones. */
    void (*norm_matmul)(sym_backend *b, sym_tensor *out, const sym_tensor *x,
                        const sym_tensor *norm, float eps, const sym_tensor *w, sym_tensor *xn);

    /* out[t][col0 + j] = src[t][j] (accumulate: +=) for j < src->n_cols: writes a block of
     * columns of out (n_tok, n), src (n_tok, w) with col0 + w <= n, both f32. The streaming
     * forward pass uses it to assemble a product whose weight rows arrive in slices (packs).
     * Every backend offers it. */
    void (*set_cols)(sym_backend *b, sym_tensor *out, int64_t col0, const sym_tensor *src,
                     int accumulate);

    /* Optional, for backends whose ops run after they return (NULL: every op has finished when
     * it returns, as on the CPU). fence submits the work recorded so far and returns a ticket
     * for it (0: nothing pending). fence_done returns 1 once that work has finished (waiting
     * for it if wait) or failed (the error is latched for the next read/sync), 0 while it runs.
     * The streaming forward pass gives a pack's memory back only when the ops reading it are
     * done. */
    uint64_t (*fence)(sym_backend *b);
    int (*fence_done)(sym_backend *b, uint64_t ticket, int wait);
    /* Optional (NULL: not tracked): device memory this backend holds now. */
    uint64_t (*held_bytes)(sym_backend *b);
    /* out[rows[i]] += scales[i] * a[i] for i < a->n_rows (f32; a->n_cols == out->n_cols): the
     * scaled scatter-add that returns a mixture-of-experts expert's output rows to the residual
     * stream of the tokens routed to it (infer/moe.c). rows must be strictly increasing and
     * below out->n_rows (else SYM_ERR_ARG, latched). rows and scales are host arrays, read
     * before the call returns. Every backend offers it. */
    void (*add_rows_scaled)(sym_backend *b, sym_tensor *out, const sym_tensor *a,
                            const int32_t *rows, const float *scales);
    /* Optional (NULL: not offered; CPU backends borrow their weights and cannot). w[r][i] *=
     * g[i] for every row r, rounded to w's type (to nearest even, as base/half.h does); w: a
     * weight (n_rows, n) f32 or f16 (f16 rows of an even length), g: (1, n) of any type.
     * Synchronous: waits for pending work, checks every product first and returns SYM_ERR_RANGE,
     * w unchanged, if one of finite values would not fit w's type; apply 0: only that check.
     * The forward pass folds an RMSNorm's weight into the products that read the norm's output
     * with it, and then passes NULL for the norm: the fused kernels then load no norm weight
     * per row. */
    sym_status (*scale_cols)(sym_backend *b, sym_tensor *w, const sym_tensor *g, int apply);
} sym_backend_ops;

struct sym_backend {
    const sym_backend_ops *ops;
};

#endif
