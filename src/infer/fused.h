/* fused.h — the optional fused ops of ops.h written as the plain ops they stand for (the
 * specification of each fused op), and sym_op_* helpers that run a backend's fused op when it
 * offers one and the plain sequence otherwise. Same threading and error rules as ops.h: ops
 * may be asynchronous, errors are latched by the backend and returned by read()/sync(). */
#ifndef SYM_INFER_FUSED_H
#define SYM_INFER_FUSED_H

#include "infer/ops.h"

/* The plain sequences (see the fused ops in ops.h for shapes and scratch tensors). */
void sym_fused_attn_in(sym_backend *b, const sym_attn_in_args *a);
void sym_fused_matmul_add(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                          sym_tensor *tmp);
void sym_fused_ffn_in(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *norm,
                      float eps, const sym_tensor *w_gate, const sym_tensor *w_up, sym_tensor *xn,
                      sym_tensor *up);
void sym_fused_norm_matmul(sym_backend *b, sym_tensor *out, const sym_tensor *x,
                           const sym_tensor *norm, float eps, const sym_tensor *w, sym_tensor *xn);

/* The backend's fused op if it has one, else the plain sequence. */
void sym_op_attn_in(sym_backend *b, const sym_attn_in_args *a);
void sym_op_matmul_add(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                       sym_tensor *tmp);
void sym_op_ffn_in(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *norm,
                   float eps, const sym_tensor *w_gate, const sym_tensor *w_up, sym_tensor *xn,
                   sym_tensor *up);
void sym_op_norm_matmul(sym_backend *b, sym_tensor *out, const sym_tensor *x,
                        const sym_tensor *norm, float eps, const sym_tensor *w, sym_tensor *xn);

#endif
