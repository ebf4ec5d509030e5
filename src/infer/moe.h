/* moe.h — the mixture-of-experts feed-forward block (Mixtral), written once against the backend
 * interface (ops.h) so that every backend runs it:
 *
 *     p      = softmax(xn router^T)                       per token, over the n_expert experts
 *     chosen = the k = n_expert_used largest p, their weights w renormalized to sum 1
 *     x     += sum over chosen e of w_e * ((silu(xn Wg_e^T) * (xn Wu_e^T)) Wd_e^T)
 *
 * xn is the block's RMS-normalized input (the caller applies ffn_norm), x the residual stream.
 * Routing is decided on the host from the router logits, read back (n_tok x n_expert floats):
 * that is the one synchronization per call. The decisions come back to the caller
 * (sym_moe_route), so a streaming engine can fetch the chosen experts' weights between the two
 * halves (sym_moe_route_tokens, then sym_moe_experts) and an oracle can learn from them.
 * Each expert then runs once on the rows of all tokens routed to it (gathered with embed unless
 * that is every token), and its rows are added back scaled (add_rows_scaled). Experts are visited
 * in id order, so every backend sums a token's experts in the same order.
 *
 * Nothing here allocates: scratch tensors and host arrays come from the caller
 * (sym_moe_scratch_alloc makes them once). Single-threaded, like the backend.
 */
#ifndef SYM_INFER_MOE_H
#define SYM_INFER_MOE_H

#include <stdint.h>

#include "infer/ops.h"

/* One expert's matrices, backend tensors of any weight dtype; all-zero (n_rows 0) = absent,
 * allowed for experts no token is routed to (e.g. not resident). */
typedef struct sym_moe_expert {
    sym_tensor gate, up; /* (n_ff, n_embd) */
    sym_tensor down;     /* (n_embd, n_ff) */
} sym_moe_expert;

/* Expert e of stacked tensors (GGUF ffn_gate_exps / ffn_up_exps as (n_expert * n_ff, n_embd),
 * ffn_down_exps as (n_expert * n_embd, n_ff)): row views, no copy. */
sym_moe_expert sym_moe_expert_view(const sym_tensor *gate_exps, const sym_tensor *up_exps,
                                   const sym_tensor *down_exps, int n_expert, int e);

/* The routing of n_tok tokens. The caller owns the arrays (each >= n_tok * n_expert_used). */
typedef struct sym_moe_route {
    int n_tok;         /* set by the routing functions */
    int n_expert_used; /* k, set by the routing functions */
    int32_t *expert;   /* (n_tok, k): token t's experts, by falling weight (ties: lower id) */
    float *weight;     /* (n_tok, k): their weights, summing to 1 per token */
} sym_moe_route;

/* Scratch: tensors of the backend (f32, at least n_tok rows; only the first rows are used) and
 * host arrays. */
typedef struct sym_moe_scratch {
    sym_tensor logits;  /* (>= n_tok, n_expert) router logits */
    sym_tensor xe;      /* (>= n_tok, n_embd): rows of xn routed to one expert */
    sym_tensor gate;    /* (>= n_tok, n_ff) */
    sym_tensor up;      /* (>= n_tok, n_ff) */
    sym_tensor out;     /* (>= n_tok, n_embd): one expert's output rows */
    float *logits_host; /* >= n_tok * n_expert floats */
    int32_t *rows;      /* >= n_tok: the tokens routed to one expert */
    float *scales;      /* >= n_tok: their weights */
    int max_tok;        /* the rows the scratch was made for */
} sym_moe_scratch;

/* Allocates scratch for up to max_tok tokens on b (tensors) and the host (arrays). On failure
 * (SYM_ERR_OOM, or the backend's alloc status) everything made is released. Caller releases
 * with sym_moe_scratch_release (fine on a zeroed struct). */
sym_status sym_moe_scratch_alloc(sym_backend *b, int n_embd, int n_ff, int n_expert, int max_tok,
                                 sym_moe_scratch *s);
void sym_moe_scratch_release(sym_backend *b, sym_moe_scratch *s);

/* Mixtral's routing of n_tok rows of router logits (n_tok, n_expert) on the host: a softmax over
 * each row, the k largest probabilities, renormalized to sum 1 — computed as a softmax over the
 * k chosen logits, which is the same number. Ties go to the lower expert id; NaN logits rank
 * below every number. A NaN or +inf among the chosen logits, or all of them -inf, gives NaN
 * weights (which then show in the output: never a silent guess).
 * expert, weight: (n_tok, k), 1 <= k <= n_expert. */
void sym_moe_topk(const float *logits, int n_tok, int n_expert, int k, int32_t *expert,
                  float *weight);

/* Runs the router on the backend (s->logits = xn router^T), reads the logits back into
 * s->logits_host (waiting for the backend) and routes every token (sym_moe_topk) into route.
 * xn: (n_tok, n_embd) f32; router: (n_expert, n_embd). SYM_ERR_ARG for mismatched shapes, too
 * small scratch or k outside [1, n_expert]; the backend's latched error otherwise. */
sym_status sym_moe_route_tokens(sym_backend *b, const sym_tensor *xn, const sym_tensor *router,
                                int n_expert_used, const sym_moe_scratch *s, sym_moe_route *route);

/* x += the chosen experts' outputs, weighted (route from sym_moe_route_tokens, or any valid
 * routing). experts: n_expert entries; an expert some token is routed to must be present. Records
 * backend ops only (no wait): errors inside them surface at the next read or sync. SYM_ERR_ARG,
 * before any op, for mismatched shapes, an absent routed expert, an expert id out of range, a token
 * routed twice to one expert, too small scratch. */
sym_status sym_moe_experts(sym_backend *b, sym_tensor *x, const sym_tensor *xn,
                           const sym_moe_route *route, const sym_moe_expert *experts, int n_expert,
                           const sym_moe_scratch *s);

/* The whole block: sym_moe_route_tokens, then sym_moe_experts (n_expert = router rows). */
sym_status sym_moe_ffn(sym_backend *b, sym_tensor *x, const sym_tensor *xn,
                       const sym_tensor *router, const sym_moe_expert *experts, int n_expert_used,
                       const sym_moe_scratch *s, sym_moe_route *route);

#endif
