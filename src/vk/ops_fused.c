/* ops_fused.c — the Vulkan backend's fused ops (ops.h): attn_in (mv_qkv: RMSNorm, Q/K/V, RoPE
 * and the K/V stores in one dispatch), ffn_in (mv_gate: RMSNorm, gate and up, SiLU), matmul_add
 * and norm_matmul (mv with the residual add or the RMSNorm fused; GEMMs add in their epilogue).
 * With more than 8 tokens (prefill), attn_in and ffn_in split the normalized x once for all
 * their tensor-core products, and attn_in does RoPE and the cache stores in one rope_store
 * dispatch. Other shapes the fused kernels do not take (no subgroup arithmetic, tensors beyond
 * one binding; for norm_matmul weights above norm_fuse_max, where the plain sequence is faster)
 * run the plain sequence of infer/fused.c on this backend's plain ops. */
#include "infer/fused.h"
#include "vk/ops_impl.h"

/* Binds t whole (read-only) if it fits one binding. */
static int fits(const sym_vkb *b, const sym_tensor *t) {
    return sym_tensor_bytes(t) + 16 <= b->max_range - b->align;
}

/* norm NULL: a weight of ones (folded into the products' columns, ops.h scale_cols) */
static sym_status check_norm(const sym_tensor *x, const sym_tensor *norm, const char *op) {
    SYM_TRY(sym_vkb_check_tensor(x, op, "x", SYM_DT_F32));
    if (!norm) return SYM_OK;
    SYM_TRY(sym_vkb_check_tensor(norm, op, "norm", SYM_DT_COUNT));
    SYM_CHECK(norm->n_cols == x->n_cols, SYM_ERR_ARG, "%s: norm of %lld for rows of %lld", op,
              (long long)norm->n_cols, (long long)x->n_cols);
    return SYM_OK;
}

/* Binds x rows and the norm weight (args 0 and 1; a NULL norm is not read: the dummy); 1 if
 * 16-byte loads are possible. */
static sym_status bind_x_norm(sym_vkb *b, const sym_tensor *x, const sym_tensor *norm,
                              sym_vk_arg *a, uint32_t *x_off, uint32_t *g_off, int *vec) {
    uint64_t K = (uint64_t)x->n_cols;
    SYM_TRY(sym_vkb_bind(b, x, 0, (uint64_t)x->n_rows * K * 4, 0, &a[0], x_off));
    *vec = K % 8 == 0 && *x_off % 4 == 0;
    if (!norm) {
        a[1] = sym_vkb_dummy_arg(b);
        *g_off = 0;
        return SYM_OK;
    }
    SYM_TRY(sym_vkb_bind(b, norm, 0, K * sym_dtype_size(norm->type), 0, &a[1], g_off));
    *vec = *vec && *g_off % (norm->type == SYM_DT_F32 ? 4 : 8) == 0;
    return SYM_OK;
}

/* The norm's specialization constants of the mv kernels: its type, on, and whether its weight
 * is ones (NULL: folded into the products; then not loaded for every row, which cost 8% of a
 * 7B token on an H100). */
static void norm_spec(sym_vk_spec *spec, const sym_tensor *norm) {
    spec->v[6] = norm ? (uint32_t)norm->type : 0;
    spec->v[10] = 1;
    spec->v[11] = norm == NULL;
}

static int w_aligned(const sym_tensor *w, uint32_t w_off) {
    return w_off % (w->type == SYM_DT_F32 ? 4u : 8u) == 0;
}

/* ---- attn_in ----------------------------------------------------------------------------- */

static sym_status attn_in_check(const sym_attn_in_args *a) {
    const char *op = "attn_in";
    SYM_TRY(check_norm(a->x, a->norm, op));
    SYM_TRY(sym_vkb_check_tensor(a->wq, op, "Wq", SYM_DT_COUNT));
    SYM_TRY(sym_vkb_check_tensor(a->wk, op, "Wk", a->wq->type));
    SYM_TRY(sym_vkb_check_tensor(a->wv, op, "Wv", a->wq->type));
    SYM_TRY(sym_vkb_check_tensor(a->q, op, "q", SYM_DT_F32));
    SYM_TRY(sym_vkb_check_tensor(a->k_cache, op, "k_cache", SYM_DT_COUNT));
    SYM_TRY(sym_vkb_check_tensor(a->v_cache, op, "v_cache", a->k_cache->type));
    const sym_tensor *bs[3] = {a->bq, a->bk, a->bv}, *ws[3] = {a->wq, a->wk, a->wv};
    for (int i = 0; i < 3; i++)
        if (bs[i]) {
            SYM_TRY(sym_vkb_check_tensor(bs[i], op, "bias", SYM_DT_F32));
            SYM_CHECK(bs[i]->n_cols == ws[i]->n_rows, SYM_ERR_ARG, "%s: bias of the wrong length",
                      op);
        }
    int64_t n = a->x->n_cols, T = a->x->n_rows, hd = a->head_dim;
    SYM_CHECK(
        a->n_head > 0 && a->n_head_kv > 0 && hd > 0 && hd % 2 == 0 && hd <= 4096 && a->pos0 >= 0,
        SYM_ERR_ARG, "%s: %d heads, %d kv heads of %d", op, a->n_head, a->n_head_kv, a->head_dim);
    int64_t qd = a->n_head * hd, kvd = a->n_head_kv * hd;
    SYM_CHECK(a->wq->n_cols == n && a->wk->n_cols == n && a->wv->n_cols == n &&
                  a->wq->n_rows == qd && a->wk->n_rows == kvd && a->wv->n_rows == kvd &&
                  a->q->n_rows == T && a->q->n_cols >= qd && a->k_cache->n_cols == kvd &&
                  a->v_cache->n_cols == kvd && a->k_cache->n_rows == a->v_cache->n_rows,
              SYM_ERR_ARG, "%s: shapes disagree", op);
    SYM_CHECK(a->pos0 + T <= a->k_cache->n_rows, SYM_ERR_RANGE,
              "%s: rows [%d, %lld) past a cache of %lld", op, a->pos0, (long long)(a->pos0 + T),
              (long long)a->k_cache->n_rows);
    return SYM_OK;
}

static sym_status attn_in(sym_vkb *b, const sym_attn_in_args *a) {
    uint64_t T = (uint64_t)a->x->n_rows, K = (uint64_t)a->x->n_cols;
    uint64_t hd = (uint64_t)a->head_dim, kvd = (uint64_t)a->n_head_kv * hd;
    sym_vk_arg args[12];
    SYM_TRY(sym_vkb_stage_rope_freq(b, a->theta, hd, &args[11]));
    sym_vk_push_mv_qkv pc = {.n_in = (uint32_t)K,
                             .n_tok = (uint32_t)T,
                             .q_stride = (uint32_t)a->q->n_cols,
                             .kv_stride = (uint32_t)kvd,
                             .n_head = (uint32_t)a->n_head,
                             .n_head_kv = (uint32_t)a->n_head_kv,
                             .head_dim = (uint32_t)hd,
                             .pos0 = (uint32_t)a->pos0,
                             .eps = a->eps,
                             .freq_scale = a->freq_scale};
    int vec;
    SYM_TRY(bind_x_norm(b, a->x, a->norm, args, &pc.x_off, &pc.g_off, &vec));
    const sym_tensor *ws[3] = {a->wq, a->wk, a->wv}, *bs[3] = {a->bq, a->bk, a->bv};
    uint32_t *w_off[3] = {&pc.wq_off, &pc.wk_off, &pc.wv_off};
    uint32_t *b_off[3] = {&pc.bq_off, &pc.bk_off, &pc.bv_off};
    for (int i = 0; i < 3; i++) {
        SYM_TRY(sym_vkb_bind(b, ws[i], 0, sym_tensor_bytes(ws[i]), 0, &args[2 + i], w_off[i]));
        vec = vec && w_aligned(ws[i], *w_off[i]);
        if (bs[i]) {
            SYM_TRY(sym_vkb_bind(b, bs[i], 0, sym_tensor_bytes(bs[i]), 0, &args[5 + i], b_off[i]));
            pc.flags |= SYM_VK_MV_BQ << i;
        } else {
            args[5 + i] = sym_vkb_dummy_arg(b);
        }
    }
    SYM_TRY(sym_vkb_bind(b, a->q, 0, T * (uint64_t)a->q->n_cols * 4, 1, &args[8], &pc.q_off));
    uint64_t row = kvd * sym_dtype_size(a->k_cache->type), p0 = (uint64_t)a->pos0;
    SYM_TRY(sym_vkb_bind(b, a->k_cache, p0 * row, (p0 + T) * row, 1, &args[9], &pc.kc_off));
    SYM_TRY(sym_vkb_bind(b, a->v_cache, p0 * row, (p0 + T) * row, 1, &args[10], &pc.vc_off));
    pc.flags |= (vec ? SYM_VK_MV_VEC : 0) | (a->neox ? SYM_VK_MV_NEOX : 0);

    uint32_t n_groups;
    sym_vk_spec spec = sym_vkb_mv_spec(b, a->wq->type, &n_groups);
    spec.v[5] = n_groups * ((b->mv_nr + 1) / 2); /* pairs per workgroup */
    spec.v[7] = (uint32_t)a->k_cache->type;
    norm_spec(&spec, a->norm);
    const sym_vk_pipeline *p;
    SYM_TRY(sym_vk_pipeline_get(b->pipes, SYM_VK_K_MV_QKV, SYM_VK_VAR_DEFAULT, &spec, &p));
    uint64_t q_pairs = (uint64_t)a->n_head * hd / 2, kv_pairs = kvd / 2;
    uint64_t rows = 2 * (q_pairs + 2 * kv_pairs), rpw = spec.v[5];
    uint32_t gx, gy; /* whole workgroups per matrix: Q, K, V */
    sym_vkb_grid((q_pairs + rpw - 1) / rpw + 2 * ((kv_pairs + rpw - 1) / rpw), &gx, &gy);
    double bytes = (double)rows * (double)K * (double)sym_dtype_size(a->wq->type) +
                   (double)T * (double)(K * 4 + rows * 4);
    return sym_vk_cmd_dispatch(b->cmd, p, args, &pc, gx, gy, 1, bytes,
                               2.0 * (double)T * (double)rows * (double)K);
}

/* rope_store's threads: per token, two RoPE pairs of each q and k head, four elements of v. */
static uint64_t rope_store_items(const sym_attn_in_args *a) {
    uint64_t hd = (uint64_t)a->head_dim, kvd = (uint64_t)a->n_head_kv * hd;
    return (uint64_t)a->x->n_rows *
           (((uint64_t)a->n_head + (uint64_t)a->n_head_kv) * (hd / 4) + kvd / 4);
}

/* rope_store applies: head_dim a multiple of 4, k and v rows of kv_dim, every tensor and the
 * caches' rows [pos0, pos0 + T) within one binding. */
static int rope_store_ok(const sym_vkb *b, const sym_attn_in_args *a, const sym_tensor *k,
                         const sym_tensor *v) {
    uint64_t T = (uint64_t)a->x->n_rows, kvd = (uint64_t)a->n_head_kv * (uint64_t)a->head_dim;
    uint64_t row = kvd * sym_dtype_size(a->k_cache->type);
    return a->head_dim % 4 == 0 && (uint64_t)k->n_cols == kvd && (uint64_t)v->n_cols == kvd &&
           fits(b, a->q) && fits(b, k) && fits(b, v) && T * row + 16 <= b->max_range - b->align &&
           rope_store_items(a) <= UINT32_MAX; /* the shader's thread index */
}

static sym_status rope_store(sym_vkb *b, const sym_attn_in_args *a, const sym_tensor *k,
                             const sym_tensor *v) {
    uint64_t T = (uint64_t)a->x->n_rows, hd = (uint64_t)a->head_dim;
    uint64_t kvd = (uint64_t)a->n_head_kv * hd;
    sym_vk_arg args[6];
    SYM_TRY(sym_vkb_stage_rope_freq(b, a->theta, hd, &args[5]));
    sym_vk_push_rope_store pc = {.n_tok = (uint32_t)T,
                                 .n_head = (uint32_t)a->n_head,
                                 .n_head_kv = (uint32_t)a->n_head_kv,
                                 .head_dim = (uint32_t)hd,
                                 .q_stride = (uint32_t)a->q->n_cols,
                                 .kv_dim = (uint32_t)kvd,
                                 .pos0 = a->pos0,
                                 .freq_scale = a->freq_scale,
                                 .neox = a->neox ? 1u : 0u};
    SYM_TRY(sym_vkb_bind(b, a->q, 0, T * (uint64_t)a->q->n_cols * 4, 1, &args[0], &pc.q_off));
    SYM_TRY(sym_vkb_bind(b, k, 0, T * kvd * 4, 0, &args[1], &pc.k_off));
    SYM_TRY(sym_vkb_bind(b, v, 0, T * kvd * 4, 0, &args[2], &pc.v_off));
    uint64_t row = kvd * sym_dtype_size(a->k_cache->type), p0 = (uint64_t)a->pos0;
    SYM_TRY(sym_vkb_bind(b, a->k_cache, p0 * row, (p0 + T) * row, 1, &args[3], &pc.kc_off));
    SYM_TRY(sym_vkb_bind(b, a->v_cache, p0 * row, (p0 + T) * row, 1, &args[4], &pc.vc_off));
    SYM_ASSERT(a->k_cache->type == SYM_DT_F32 || (pc.kc_off % 2 == 0 && pc.vc_off % 2 == 0));
    sym_vk_spec spec = sym_vkb_spec(b, b->wg, a->k_cache->type);
    const sym_vk_pipeline *p;
    SYM_TRY(sym_vk_pipeline_get(b->pipes, SYM_VK_K_ROPE_STORE, SYM_VK_VAR_DEFAULT, &spec, &p));
    uint32_t gx, gy;
    sym_vkb_grid((rope_store_items(a) + b->wg - 1) / b->wg, &gx, &gy);
    double bytes = (double)T * ((double)a->n_head * (double)hd * 8 +
                                (double)kvd * (8 + 2 * (double)sym_dtype_size(a->k_cache->type)));
    return sym_vk_cmd_dispatch(b->cmd, p, args, &pc, gx, gy, 1, bytes, 0);
}

/* More tokens than the fused decode kernel takes: Q, K and V on tensor cores from x normalized
 * and split once (sym_vkb_norm_products), or rmsnorm and plain products; then RoPE and the
 * cache stores in one rope_store dispatch, or the plain ops. 0: neither applies (nothing
 * recorded; the caller runs the plain sequence). */
static int prefill_attn_in(sym_vkb *b, const sym_attn_in_args *a, sym_status *st) {
    const sym_tensor *ws[3] = {a->wq, a->wk, a->wv}, *bs[3] = {a->bq, a->bk, a->bv};
    int64_t n = a->x->n_rows;
    sym_tensor k = sym_tensor_rows(a->k, 0, n), v = sym_tensor_rows(a->v, 0, n);
    int coop = sym_vkb_norm_products_ok(b, a->x, a->norm, 3, ws);
    int rs = !b->no_fused && rope_store_ok(b, a, &k, &v);
    if (!coop && !rs) return 0;
    sym_backend *bb = &b->base;
    const sym_backend_ops *o = bb->ops;
    if (coop) {
        sym_tensor *outs[3] = {a->q, &k, &v};
        *st = sym_vkb_norm_products(b, a->x, a->norm, a->eps, 3, outs, ws, bs);
        if (*st != SYM_OK) return 1;
    } else {
        sym_tensor xn = sym_tensor_rows(a->xn, 0, n);
        o->rmsnorm(bb, &xn, a->x, a->norm, a->eps);
        o->matmul(bb, a->q, &xn, a->wq, a->bq);
        o->matmul(bb, &k, &xn, a->wk, a->bk);
        o->matmul(bb, &v, &xn, a->wv, a->bv);
    }
    if (b->err != SYM_OK) {
        *st = b->err;
        return 1;
    }
    if (rs) {
        *st = rope_store(b, a, &k, &v);
        return 1;
    }
    o->rope(bb, a->q, a->n_head, a->head_dim, a->pos0, a->theta, a->freq_scale, a->neox);
    o->rope(bb, &k, a->n_head_kv, a->head_dim, a->pos0, a->theta, a->freq_scale, a->neox);
    o->store_rows(bb, a->k_cache, a->pos0, &k);
    o->store_rows(bb, a->v_cache, a->pos0, &v);
    *st = b->err;
    return 1;
}

void sym_vkb_attn_in(sym_backend *bb, const sym_attn_in_args *a) {
    sym_vkb *b = sym_vkb_of(bb);
    if (b->err != SYM_OK) return;
    sym_vkb_begin_op(b);
    sym_status st = attn_in_check(a);
    if (st == SYM_OK) {
        const sym_tensor *all[] = {a->x, a->norm, a->wq, a->wk, a->wv, a->q};
        int ok = sym_vkb_mv_ok(b, (uint64_t)a->x->n_rows) && !b->no_fused;
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            ok = ok && (!all[i] || fits(b, all[i]));
        if (!ok && prefill_attn_in(b, a, &st)) goto done;
        if (!ok) {
            sym_fused_attn_in(bb, a);
            return;
        }
        st = attn_in(b, a);
    }
done:
    sym_vkb_latch(b, st);
}

/* ---- ffn_in ------------------------------------------------------------------------------ */

static sym_status ffn_in(sym_vkb *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *norm,
                         float eps, const sym_tensor *wg, const sym_tensor *wu) {
    uint64_t T = (uint64_t)x->n_rows, K = (uint64_t)x->n_cols, F = (uint64_t)wg->n_rows;
    sym_vk_arg args[5];
    sym_vk_push_mv_gate pc = {.n_in = (uint32_t)K,
                              .n_rows = (uint32_t)F,
                              .n_tok = (uint32_t)T,
                              .out_stride = (uint32_t)out->n_cols,
                              .eps = eps};
    int vec;
    SYM_TRY(bind_x_norm(b, x, norm, args, &pc.x_off, &pc.g_off, &vec));
    SYM_TRY(sym_vkb_bind(b, wg, 0, sym_tensor_bytes(wg), 0, &args[2], &pc.wg_off));
    SYM_TRY(sym_vkb_bind(b, wu, 0, sym_tensor_bytes(wu), 0, &args[3], &pc.wu_off));
    SYM_TRY(sym_vkb_bind(b, out, 0, T * (uint64_t)out->n_cols * 4, 1, &args[4], &pc.out_off));
    vec = vec && w_aligned(wg, pc.wg_off) && w_aligned(wu, pc.wu_off);
    pc.flags = vec ? SYM_VK_MV_VEC : 0;
    uint32_t n_groups;
    sym_vk_spec spec = sym_vkb_mv_spec(b, wg->type, &n_groups);
    spec.v[5] = n_groups * ((b->mv_nr + 1) / 2); /* rows per workgroup */
    norm_spec(&spec, norm);
    const sym_vk_pipeline *p;
    SYM_TRY(sym_vk_pipeline_get(b->pipes, SYM_VK_K_MV_GATE, SYM_VK_VAR_DEFAULT, &spec, &p));
    uint32_t gx, gy;
    sym_vkb_grid((F + spec.v[5] - 1) / spec.v[5], &gx, &gy);
    double bytes = 2.0 * (double)F * (double)K * (double)sym_dtype_size(wg->type) +
                   (double)T * (double)(K * 4 + F * 4);
    return sym_vk_cmd_dispatch(b->cmd, p, args, &pc, gx, gy, 1, bytes,
                               4.0 * (double)T * (double)F * (double)K);
}

/* More tokens, on tensor cores: x normalized and split once for the gate and up products
 * (sym_vkb_norm_products), then silu_mul. 0: not taken (nothing recorded). */
static int prefill_ffn_in(sym_vkb *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *norm,
                          float eps, const sym_tensor *wg, const sym_tensor *wu, sym_tensor *up,
                          sym_status *st) {
    const sym_tensor *ws[2] = {wg, wu};
    if (!sym_vkb_norm_products_ok(b, x, norm, 2, ws)) return 0;
    sym_tensor us = sym_tensor_rows(up, 0, x->n_rows);
    sym_tensor *outs[2] = {out, &us};
    *st = sym_vkb_norm_products(b, x, norm, eps, 2, outs, ws, NULL);
    if (*st != SYM_OK) return 1;
    b->base.ops->silu_mul(&b->base, out, out, &us);
    *st = b->err;
    return 1;
}

void sym_vkb_ffn_in(sym_backend *bb, sym_tensor *out, const sym_tensor *x, const sym_tensor *norm,
                    float eps, const sym_tensor *w_gate, const sym_tensor *w_up, sym_tensor *xn,
                    sym_tensor *up) {
    sym_vkb *b = sym_vkb_of(bb);
    if (b->err != SYM_OK) return;
    sym_vkb_begin_op(b);
    const char *op = "ffn_in";
    sym_status st = check_norm(x, norm, op);
    if (st == SYM_OK) st = sym_vkb_check_tensor(w_gate, op, "W_gate", SYM_DT_COUNT);
    if (st == SYM_OK) st = sym_vkb_check_tensor(w_up, op, "W_up", w_gate->type);
    if (st == SYM_OK) st = sym_vkb_check_tensor(out, op, "out", SYM_DT_F32);
    if (st == SYM_OK && (w_gate->n_cols != x->n_cols || w_up->n_cols != x->n_cols ||
                         w_up->n_rows != w_gate->n_rows || out->n_rows != x->n_rows ||
                         out->n_cols != w_gate->n_rows))
        st = SYM_FAIL(SYM_ERR_ARG, "%s: shapes disagree", op);
    if (st == SYM_OK) {
        int fused = sym_vkb_mv_ok(b, (uint64_t)x->n_rows) && !b->no_fused && fits(b, x) &&
                    fits(b, w_gate) && fits(b, w_up) && fits(b, out);
        if (!fused && prefill_ffn_in(b, out, x, norm, eps, w_gate, w_up, up, &st)) goto done;
        if (!fused) {
            sym_fused_ffn_in(bb, out, x, norm, eps, w_gate, w_up, xn, up);
            return;
        }
        st = ffn_in(b, out, x, norm, eps, w_gate, w_up);
    }
done:
    sym_vkb_latch(b, st);
}

/* ---- matmul_add, norm_matmul ------------------------------------------------------------- */

void sym_vkb_matmul_add(sym_backend *bb, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                        sym_tensor *tmp) {
    (void)tmp; /* every product path adds in its epilogue */
    sym_vkb *b = sym_vkb_of(bb);
    if (b->err != SYM_OK) return;
    sym_vkb_begin_op(b);
    sym_vkb_latch(b, sym_vkb_matmul_ex(b, out, x, w, NULL, NULL, 0.0f, 1));
}

void sym_vkb_norm_matmul(sym_backend *bb, sym_tensor *out, const sym_tensor *x,
                         const sym_tensor *norm, float eps, const sym_tensor *w, sym_tensor *xn) {
    sym_vkb *b = sym_vkb_of(bb);
    if (b->err != SYM_OK) return;
    sym_vkb_begin_op(b);
    sym_status st = check_norm(x, norm, "norm_matmul");
    if (st == SYM_OK) {
        if (!norm || !sym_vkb_mv_ok(b, (uint64_t)x->n_rows) || b->no_fused ||
            sym_tensor_bytes(w) > b->norm_fuse_max || !fits(b, x) || !fits(b, norm)) {
            sym_fused_norm_matmul(bb, out, x, norm, eps, w, xn);
            return;
        }
        st = sym_vkb_matmul_ex(b, out, x, w, NULL, norm, eps, 0);
    }
    sym_vkb_latch(b, st);
}
