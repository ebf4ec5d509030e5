/* ops_impl.h — internals shared by the Vulkan backend's files (ops.c: backend, memory, simple
 * ops; ops_matmul.c: matrix products; ops_attn.c: attention). Not a public header; names carry the
 * sym_vkb_ prefix. */
#ifndef SYM_VK_OPS_IMPL_H
#define SYM_VK_OPS_IMPL_H

#include "vk/ops.h"
#include "vk/push.h"

typedef struct sym_vkb {
    sym_backend base;
    sym_vk_options o;
    sym_vk_device *dev;
    sym_vk_pipelines *pipes;
    sym_vk_cmd *cmd;
    sym_vk_xfer *xfer;       /* the upload queue, made on first use (streaming) */
    uint64_t max_range;      /* bytes one descriptor may cover */
    uint64_t align;          /* minStorageBufferOffsetAlignment (at least 16) */
    uint32_t wg;             /* threads per workgroup of the row/elementwise kernels */
    uint32_t nr;             /* matvec rows per workgroup */
    uint32_t matvec_wg;      /* threads per workgroup of matvec */
    uint32_t mv_wg;          /* threads per workgroup of the mv kernels: a multiple of the
                              * subgroup size */
    uint32_t attn_wg;        /* the same for decode attention (attn_decode_sg) */
    uint32_t attn_target;    /* decode attention's chunks: enough for this many workgroups */
    uint32_t mv_nr;          /* mv rows per group of subgroups */
    uint32_t mv_ks;          /* subgroups per group (sharing the rows) */
    int plain_matvec;        /* products without a fused norm on matvec, not mv */
    int no_fused;            /* attn_in, ffn_in, norm_matmul as their plain sequences */
    uint32_t coop_min_groups; /* fewer workgroups than this: a smaller tile (0: never) */
    int f32_gemm_act;         /* tensor-core GEMMs with f32 activations (hi + lo) */
    int no_rt_attn;           /* prefill attention on attn_prefill only ($SYM_VK_NO_RT_ATTN) */
    int no_tc_attn;           /* no prefill attention on tensor cores ($SYM_VK_NO_TC_ATTN) */
    uint64_t norm_fuse_max;  /* largest weights of norm_matmul's fused kernel */
    sym_vk_buffer *counters; /* zeroed uints for kernels that count finished workgroups */
    int use_sg;              /* spec constant USE_SUBGROUPS */
    sym_vk_variant red_var;  /* variant of kernels with reductions: DEFAULT or NOSG */
    int fp16;                /* fp16 math on (and possible) */
    int coopmat;             /* cooperative-matrix GEMM usable */
    uint32_t coop_tile[4];   /* SM, SN, PAD, BK8 (spec constants 4..7 of matmul_coop) */
    uint32_t coop_warps[2];  /* WM, WN (spec constants 8, 9) */
    sym_vk_buffer *scratch;  /* GEMM split rows, attention partials; grows */
    sym_vk_buffer *dummy;    /* bound where a kernel's optional tensor is absent */
    sym_vk_buffer *flag;     /* scale_cols' overflow flag */
    sym_status err;          /* latched error of an op (SYM_OK if none) */
    char err_msg[512];
    int hot;                 /* kernels come from a shader dir: poll it for changes */
    int64_t poll_ns;         /* least time between two polls (0: every idle op) */
    int64_t last_poll_ns;    /* CLOCK_MONOTONIC of the last poll */
    uint64_t n_reloads;      /* kernels rebuilt by hot reload */
} sym_vkb;

static inline sym_vkb *sym_vkb_of(sym_backend *b) { return (sym_vkb *)b; }

/* Hot reload's poll point, at the start of every op (before it takes a pipeline): when nothing
 * is recorded or in flight and poll_ns has passed, rebuilds the kernels whose sources changed.
 * Pipelines are dropped only there, so no command buffer and no op still uses them. */
void sym_vkb_poll_shaders(sym_vkb *b);
static inline void sym_vkb_begin_op(sym_vkb *b) {
    if (b->hot) sym_vkb_poll_shaders(b);
}

/* Records the first failure of an op; later ops of the batch are skipped until read/sync. */
void sym_vkb_latch(sym_vkb *b, sym_status st);

/* A tensor bound for a dispatch: its window and the offset of byte_lo in elements. */
sym_status sym_vkb_bind(sym_vkb *b, const sym_tensor *t, uint64_t byte_lo, uint64_t byte_hi,
                        int write, sym_vk_arg *arg, uint32_t *elem_off);
/* A small placeholder argument for an absent optional tensor. */
sym_vk_arg sym_vkb_dummy_arg(sym_vkb *b);
/* Stages RoPE's frequencies theta^(-2i / head_dim), i < head_dim / 2 (head_dim <= 4096), as the
 * reference computes them (powf), for the next dispatch. */
sym_status sym_vkb_stage_rope_freq(sym_vkb *b, float theta, uint64_t head_dim, sym_vk_arg *arg);
/* Rows of row_bytes each that one binding can always cover (0 if not even one). */
uint64_t sym_vkb_rows_per_binding(const sym_vkb *b, uint64_t row_bytes);
/* The scratch buffer with at least bytes (grown if needed; the old one is released after the
 * pending work). */
sym_status sym_vkb_scratch(sym_vkb *b, uint64_t bytes, sym_vk_buffer **out);
/* Spec constants with the common ones filled (wg, subgroups, fp16, dtype). */
sym_vk_spec sym_vkb_spec(const sym_vkb *b, uint32_t wg, sym_dtype dtype);
/* The same for the mv kernels (mv_wg, unroll, split); *n_groups: groups per workgroup. */
sym_vk_spec sym_vkb_mv_spec(const sym_vkb *b, sym_dtype dtype, uint32_t *n_groups);
/* 1 if the tensor-core GEMM takes the lo halves of f32 activations (f32_gemm_act without fp16
 * math): its pipelines then hold a second activation tile in shared memory (matmul_coop's LO). */
static inline int sym_vkb_gemm_lo(const sym_vkb *b) { return !b->fp16 && b->f32_gemm_act; }
/* Splits n workgroups into a grid within the device's per-dimension limit (x <= 65535). */
void sym_vkb_grid(uint64_t n, uint32_t *gx, uint32_t *gy);
/* Checks that t is a device tensor of this backend with the given dtype (SYM_DT_COUNT: any). */
sym_status sym_vkb_check_tensor(const sym_tensor *t, const char *op, const char *what,
                                sym_dtype type);

/* out (+)= rmsnorm(x, norm, eps) W^T (+ bias); norm NULL: x as it is; norm needs
 * sym_vkb_mv_ok(T). Checks its arguments. */
/* Prefill products of one input (x: T rows, f32): x RMS-normalized (norm NULL: a weight of ones)
 * and split into f16 halves once, by one gemm_split dispatch, then outs[i] = xn ws[i]^T (+
 * biases[i]) on the cooperative-matrix kernel. _ok says whether these products all take that
 * path in one chunk of tokens (else the caller runs rmsnorm and plain products). */
int sym_vkb_norm_products_ok(sym_vkb *b, const sym_tensor *x, const sym_tensor *norm, int n,
                             const sym_tensor *const *ws);
sym_status sym_vkb_norm_products(sym_vkb *b, const sym_tensor *x, const sym_tensor *norm,
                                 float eps, int n, sym_tensor *const *outs,
                                 const sym_tensor *const *ws, const sym_tensor *const *biases);
sym_status sym_vkb_matmul_ex(sym_vkb *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                             const sym_tensor *bias, const sym_tensor *norm, float eps,
                             int accumulate);
/* 1 if n_tok tokens take the subgroup matrix-vector kernels (and the fused norm). */
int sym_vkb_mv_ok(const sym_vkb *b, uint64_t n_tok);
void sym_vkb_matmul(sym_backend *bb, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                    const sym_tensor *bias);
void sym_vkb_attn_in(sym_backend *bb, const sym_attn_in_args *a);
void sym_vkb_matmul_add(sym_backend *bb, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                        sym_tensor *tmp);
void sym_vkb_ffn_in(sym_backend *bb, sym_tensor *out, const sym_tensor *x, const sym_tensor *norm,
                    float eps, const sym_tensor *w_gate, const sym_tensor *w_up, sym_tensor *xn,
                    sym_tensor *up);
void sym_vkb_norm_matmul(sym_backend *bb, sym_tensor *out, const sym_tensor *x,
                         const sym_tensor *norm, float eps, const sym_tensor *w, sym_tensor *xn);
void sym_vkb_attention(sym_backend *bb, sym_tensor *out, const sym_tensor *q, const sym_tensor *k,
                       const sym_tensor *v, int n_head, int n_head_kv, int head_dim, int pos0,
                       float scale);

#endif
