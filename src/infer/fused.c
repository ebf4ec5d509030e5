/* fused.c — each optional fused op of ops.h as the sequence of plain ops it replaces. These are
 * the specification: a backend's fused kernel must give the same result within its stated
 * tolerance (tests/test_vk_ops.c compares them). */
#include "infer/fused.h"

void sym_fused_attn_in(sym_backend *b, const sym_attn_in_args *a) {
    const sym_backend_ops *o = b->ops;
    int64_t n = a->x->n_rows;
    sym_tensor xn = sym_tensor_rows(a->xn, 0, n), k = sym_tensor_rows(a->k, 0, n),
               v = sym_tensor_rows(a->v, 0, n);
    o->rmsnorm(b, &xn, a->x, a->norm, a->eps);
    o->matmul(b, a->q, &xn, a->wq, a->bq);
    o->matmul(b, &k, &xn, a->wk, a->bk);
    o->matmul(b, &v, &xn, a->wv, a->bv);
    o->rope(b, a->q, a->n_head, a->head_dim, a->pos0, a->theta, a->freq_scale, a->neox);
    o->rope(b, &k, a->n_head_kv, a->head_dim, a->pos0, a->theta, a->freq_scale, a->neox);
    o->store_rows(b, a->k_cache, a->pos0, &k);
    o->store_rows(b, a->v_cache, a->pos0, &v);
}

void sym_fused_matmul_add(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                          sym_tensor *tmp) {
    sym_tensor t = sym_tensor_rows(tmp, 0, x->n_rows);
    b->ops->matmul(b, &t, x, w, NULL);
    b->ops->add(b, out, out, &t);
}

void sym_fused_ffn_in(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *norm,
                      float eps, const sym_tensor *w_gate, const sym_tensor *w_up, sym_tensor *xn,
                      sym_tensor *up) {
    const sym_backend_ops *o = b->ops;
    int64_t n = x->n_rows;
    sym_tensor xs = sym_tensor_rows(xn, 0, n), us = sym_tensor_rows(up, 0, n);
    o->rmsnorm(b, &xs, x, norm, eps);
    o->matmul(b, out, &xs, w_gate, NULL);
    o->matmul(b, &us, &xs, w_up, NULL);
    o->silu_mul(b, out, out, &us);
}

void sym_fused_norm_matmul(sym_backend *b, sym_tensor *out, const sym_tensor *x,
                           const sym_tensor *norm, float eps, const sym_tensor *w, sym_tensor *xn) {
    sym_tensor xs = sym_tensor_rows(xn, 0, x->n_rows);
    b->ops->rmsnorm(b, &xs, x, norm, eps);
    b->ops->matmul(b, out, &xs, w, NULL);
}

void sym_op_attn_in(sym_backend *b, const sym_attn_in_args *a) {
    if (b->ops->attn_in)
        b->ops->attn_in(b, a);
    else
        sym_fused_attn_in(b, a);
}

void sym_op_matmul_add(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                       sym_tensor *tmp) {
    if (b->ops->matmul_add)
        b->ops->matmul_add(b, out, x, w, tmp);
    else
        sym_fused_matmul_add(b, out, x, w, tmp);
}

void sym_op_ffn_in(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *norm,
                   float eps, const sym_tensor *w_gate, const sym_tensor *w_up, sym_tensor *xn,
                   sym_tensor *up) {
    if (b->ops->ffn_in)
        b->ops->ffn_in(b, out, x, norm, eps, w_gate, w_up, xn, up);
    else
        sym_fused_ffn_in(b, out, x, norm, eps, w_gate, w_up, xn, up);
}

void sym_op_norm_matmul(sym_backend *b, sym_tensor *out, const sym_tensor *x,
                        const sym_tensor *norm, float eps, const sym_tensor *w, sym_tensor *xn) {
    if (b->ops->norm_matmul)
        b->ops->norm_matmul(b, out, x, norm, eps, w, xn);
    else
        sym_fused_norm_matmul(b, out, x, norm, eps, w, xn);
}
