/* ops_attn.c — causal attention over the KV cache. Up to 4 query tokens (decode): attn_decode
 * splits the positions into chunks (one workgroup per kv head, head group, chunk and token)
 * and attn_combine joins the partial softmax states; more tokens (prefill): attn_prefill tiles
 * queries and positions through shared memory. Neither materializes a score matrix. */
#include "vk/ops_impl.h"

#define DECODE_MAX_TOK    4
#define TARGET_WORKGROUPS 1024 /* decode: chunks enough to fill a large GPU at batch 1 */

typedef struct attn_args {
    sym_tensor *out;
    const sym_tensor *q, *k, *v;
    uint64_t T, H, HKV, D, pos0, n_pos; /* n_pos: cache rows visible to the last token */
    uint64_t q_stride, kv_stride, out_stride, es;
    float scale;
} attn_args;

/* Binds q and out rows [0, T) and k, v rows [0, n_pos). */
static sym_status bind_qkvo(sym_vkb *b, const attn_args *a, sym_vk_arg *aq, uint32_t *q_off,
                            sym_vk_arg *ak, uint32_t *k_off, sym_vk_arg *av, uint32_t *v_off,
                            sym_vk_arg *ao, uint32_t *o_off) {
    SYM_TRY(sym_vkb_bind(b, a->q, 0, a->T * a->q_stride * 4, 0, aq, q_off));
    SYM_TRY(sym_vkb_bind(b, a->k, 0, a->n_pos * a->kv_stride * a->es, 0, ak, k_off));
    SYM_TRY(sym_vkb_bind(b, a->v, 0, a->n_pos * a->kv_stride * a->es, 0, av, v_off));
    return sym_vkb_bind(b, a->out, 0, a->T * a->out_stride * 4, 1, ao, o_off);
}

static sym_status decode(sym_vkb *b, const attn_args *a) {
    const sym_vk_caps *c = &b->dev->caps;
    uint64_t group = a->H / a->HKV, gb = group < 8 ? group : 8;
    while (gb > 0 && (gb * a->D + gb * b->wg + b->wg) * 4 > c->max_shared_bytes)
        gb--;
    SYM_CHECK(gb > 0, SYM_ERR_UNSUPPORTED, "attention: head_dim %llu needs more shared memory",
              (unsigned long long)a->D);
    uint64_t n_hgroups = (group + gb - 1) / gb;
    uint64_t per_chunk = a->HKV * n_hgroups * a->T;
    uint64_t target = per_chunk >= TARGET_WORKGROUPS ? 1 : TARGET_WORKGROUPS / per_chunk;
    uint64_t chunk_len = (a->n_pos + target - 1) / target;
    chunk_len = (chunk_len + b->wg - 1) / b->wg * b->wg;
    uint64_t U = b->max_range - b->align - 16;
    uint64_t win_rows = U / (a->kv_stride * a->es); /* positions one K/V binding holds */
    SYM_CHECK(win_rows > 0, SYM_ERR_UNSUPPORTED, "attention: a cache row is wider than a binding");
    uint64_t n_chunks, part_bytes;
    for (;;) {
        if (chunk_len > win_rows) chunk_len = win_rows;
        n_chunks = (a->n_pos + chunk_len - 1) / chunk_len;
        part_bytes = a->T * a->H * n_chunks * (a->D + 2) * 4;
        if (part_bytes <= U || n_chunks == 1 || chunk_len == win_rows) break;
        chunk_len *= 2;
    }
    SYM_CHECK(part_bytes <= U && a->HKV * n_hgroups <= 65535 && a->T <= 65535, SYM_ERR_UNSUPPORTED,
              "attention: %llu heads x %llu tokens is too large for one dispatch",
              (unsigned long long)a->H, (unsigned long long)a->T);
    uint64_t per_dispatch = win_rows / chunk_len; /* chunks whose K/V fit one binding */
    if (per_dispatch > 65535) per_dispatch = 65535;
    sym_vk_buffer *scr;
    SYM_TRY(sym_vkb_scratch(b, part_bytes, &scr));
    sym_tensor part = {
        .type = SYM_DT_F32, .n_cols = 1, .n_rows = (int64_t)(part_bytes / 4), .buf = scr};

    sym_vk_spec spec = sym_vkb_spec(b, b->wg, a->k->type);
    spec.v[4] = (uint32_t)a->D;
    spec.v[5] = (uint32_t)gb;
    const sym_vk_pipeline *pd, *pc;
    SYM_TRY(sym_vk_pipeline_get(b->pipes, SYM_VK_K_ATTN_DECODE, b->red_var, &spec, &pd));
    spec = sym_vkb_spec(b, b->wg, SYM_DT_F32);
    spec.v[4] = (uint32_t)a->D;
    SYM_TRY(sym_vk_pipeline_get(b->pipes, SYM_VK_K_ATTN_COMBINE, SYM_VK_VAR_DEFAULT, &spec, &pc));

    sym_vk_arg args[4];
    sym_vk_push_attn_decode pu = {.n_tok = (uint32_t)a->T,
                                  .n_head = (uint32_t)a->H,
                                  .n_head_kv = (uint32_t)a->HKV,
                                  .pos0 = (uint32_t)a->pos0,
                                  .q_stride = (uint32_t)a->q_stride,
                                  .kv_stride = (uint32_t)a->kv_stride,
                                  .chunk_len = (uint32_t)chunk_len,
                                  .n_chunks = (uint32_t)n_chunks,
                                  .n_hgroups = (uint32_t)n_hgroups,
                                  .scale = a->scale};
    SYM_TRY(sym_vkb_bind(b, a->q, 0, a->T * a->q_stride * 4, 0, &args[0], &pu.q_off));
    SYM_TRY(sym_vkb_bind(b, &part, 0, part_bytes, 1, &args[3], &pu.part_off));
    uint64_t row_bytes = a->kv_stride * a->es;
    for (uint64_t c0 = 0; c0 < n_chunks; c0 += per_dispatch) {
        uint64_t c1 = c0 + per_dispatch < n_chunks ? c0 + per_dispatch : n_chunks;
        uint64_t p0 = c0 * chunk_len, p1 = c1 * chunk_len < a->n_pos ? c1 * chunk_len : a->n_pos;
        pu.c_base = (uint32_t)c0;
        SYM_TRY(sym_vkb_bind(b, a->k, p0 * row_bytes, p1 * row_bytes, 0, &args[1], &pu.k_off));
        SYM_TRY(sym_vkb_bind(b, a->v, p0 * row_bytes, p1 * row_bytes, 0, &args[2], &pu.v_off));
        /* K rows: 16-byte loads (2) when every row start is 16-byte aligned, else word pairs
         * (1) for 16-bit types when rows start on even elements, else elements (0) */
        uint64_t per16 = 16 / a->es;
        if (pu.k_off % per16 == 0 && a->kv_stride % per16 == 0 && a->D % per16 == 0 &&
            a->D % 8 == 0)
            pu.pair_ok = 2;
        else
            pu.pair_ok = a->es == 2 && pu.k_off % 2 == 0 && a->kv_stride % 2 == 0 && a->D % 2 == 0;
        double kv_bytes = 2.0 * (double)(p1 - p0) * (double)(a->HKV * a->D * a->es);
        SYM_TRY(sym_vk_cmd_dispatch(
            b->cmd, pd, args, &pu, (uint32_t)(a->HKV * n_hgroups), (uint32_t)(c1 - c0),
            (uint32_t)a->T, kv_bytes + (double)part_bytes,
            4.0 * (double)a->T * (double)a->H * (double)(p1 - p0) * (double)a->D));
    }

    sym_vk_push_attn_combine pm = {.n_tok = (uint32_t)a->T,
                                   .n_head = (uint32_t)a->H,
                                   .n_chunks = (uint32_t)n_chunks,
                                   .out_stride = (uint32_t)a->out_stride};
    SYM_TRY(sym_vkb_bind(b, &part, 0, part_bytes, 0, &args[0], &pm.part_off));
    SYM_TRY(sym_vkb_bind(b, a->out, 0, a->T * a->out_stride * 4, 1, &args[1], &pm.out_off));
    return sym_vk_cmd_dispatch(b->cmd, pc, args, &pm, (uint32_t)a->H, (uint32_t)a->T, 1,
                               (double)part_bytes + (double)(a->T * a->H * a->D * 4), 0);
}

/* One dispatch (attn_decode_sg): K/V bound whole, partial states joined by the last workgroup
 * of each (kv head, head group, token). Returns SYM_ERR_UNSUPPORTED (nothing recorded, no
 * message) for shapes it does not take; decode() handles those. */
#define SG_MAX_CHUNKS                                                                              \
    16                       /* MAX_CHUNKS of attn_decode_sg.comp: the last workgroup              \
                              * joins that many partial states with their loads in flight */
#define SG_MAX_CHUNK_LEN 256 /* longer contexts: decode() (its own combine dispatch) */
#define SG_COUNTERS      16384

static sym_status decode_sg(sym_vkb *b, const attn_args *a) {
    const sym_vk_caps *c = &b->dev->caps;
    uint32_t sgs = c->subgroup_size, nsg = b->attn_wg / sgs;
    /* at most 2 query heads per workgroup: more workgroups, fewer reductions per step (the K/V
     * rows a group shares are then read from cache by each) */
    uint64_t group = a->H / a->HKV, gb = group < 2 ? group : 2;
    uint64_t U = b->max_range - b->align - 16;
    uint64_t dpl = (a->D + sgs - 1) / sgs;
    if (!b->use_sg || a->n_pos * a->kv_stride * a->es > U || dpl > 8 ||
        (uint64_t)nsg * gb * (a->D + 2) * 4 + 64 > c->max_shared_bytes)
        return SYM_ERR_UNSUPPORTED;
    uint64_t n_hgroups = (group + gb - 1) / gb;
    uint64_t per_chunk = a->HKV * n_hgroups * a->T;
    /* chunks enough for b->attn_target workgroups (1024: several per multiprocessor of a large
     * GPU) */
    uint64_t n_chunks = per_chunk >= b->attn_target ? 1 : b->attn_target / per_chunk;
    uint64_t min_chunk = (uint64_t)nsg * 4; /* one step of 4 positions per subgroup */
    uint64_t max_chunks = (a->n_pos + min_chunk - 1) / min_chunk;
    if (n_chunks > max_chunks) n_chunks = max_chunks;
    if (n_chunks > SG_MAX_CHUNKS) n_chunks = SG_MAX_CHUNKS;
    uint64_t chunk_len = (a->n_pos + n_chunks - 1) / n_chunks;
    n_chunks = (a->n_pos + chunk_len - 1) / chunk_len;
    if (chunk_len > SG_MAX_CHUNK_LEN) return SYM_ERR_UNSUPPORTED;
    uint64_t part_bytes = n_chunks > 1 ? a->T * a->H * n_chunks * (a->D + 2) * 4 : 16;
    if (part_bytes > U || per_chunk > SG_COUNTERS || a->HKV * n_hgroups > 65535)
        return SYM_ERR_UNSUPPORTED;
    sym_vk_buffer *scr;
    SYM_TRY(sym_vkb_scratch(b, part_bytes, &scr));
    sym_tensor part = {
        .type = SYM_DT_F32, .n_cols = 1, .n_rows = (int64_t)(part_bytes / 4), .buf = scr};
    sym_tensor cnt = {.type = SYM_DT_F32, .n_cols = 1, .n_rows = SG_COUNTERS, .buf = b->counters};

    sym_vk_spec spec = sym_vkb_spec(b, b->attn_wg, a->k->type);
    spec.v[4] = (uint32_t)a->D;
    spec.v[5] = (uint32_t)gb;
    spec.v[6] = sgs;
    const sym_vk_pipeline *p;
    SYM_TRY(sym_vk_pipeline_get(b->pipes, SYM_VK_K_ATTN_DECODE_SG, SYM_VK_VAR_DEFAULT, &spec, &p));
    sym_vk_arg args[6];
    sym_vk_push_attn_decode_sg pu = {.n_tok = (uint32_t)a->T,
                                     .n_head = (uint32_t)a->H,
                                     .n_head_kv = (uint32_t)a->HKV,
                                     .pos0 = (uint32_t)a->pos0,
                                     .q_stride = (uint32_t)a->q_stride,
                                     .kv_stride = (uint32_t)a->kv_stride,
                                     .out_stride = (uint32_t)a->out_stride,
                                     .chunk_len = (uint32_t)chunk_len,
                                     .n_chunks = (uint32_t)n_chunks,
                                     .n_hgroups = (uint32_t)n_hgroups,
                                     .scale = a->scale};
    SYM_TRY(bind_qkvo(b, a, &args[0], &pu.q_off, &args[1], &pu.k_off, &args[2], &pu.v_off, &args[3],
                      &pu.out_off));
    SYM_TRY(sym_vkb_bind(b, &part, 0, part_bytes, 1, &args[4], &pu.part_off));
    SYM_TRY(sym_vkb_bind(b, &cnt, 0, per_chunk * 4, 1, &args[5], &pu.cnt_off));
    double kv_bytes = 2.0 * (double)a->n_pos * (double)(a->HKV * a->D * a->es);
    return sym_vk_cmd_dispatch(b->cmd, p, args, &pu, (uint32_t)(a->HKV * n_hgroups),
                               (uint32_t)n_chunks, (uint32_t)a->T, kv_bytes + 2.0 * part_bytes,
                               4.0 * (double)a->T * (double)a->H * (double)a->n_pos * (double)a->D);
}

/* attn_prefill_rt's shared memory: Q and K/V tiles of 32 rows of D + 4 floats, the 32 x 33
 * score tile, three row vectors (shaders/attn_prefill_rt.comp). */
static uint64_t rt_shared(uint64_t D) { return 2 * 32 * (D + 4) * 4 + 32 * 33 * 4 + 3 * 32 * 4; }

/* attn_prefill_tc's shared memory: the query block (or the K and V tiles), P, S, row vectors
 * (shaders/attn_prefill_tc.comp). */
static uint64_t tc_shared(uint64_t D) {
    uint64_t rs = D / 8 + 1, q = 64 * rs, kv = 2 * 32 * rs;
    return (q > kv ? q : kv) * 16 + 64 * 5 * 16 + 64 * 32 * 4 + 64 * 4 + 128 * 4;
}

static sym_status prefill(sym_vkb *b, const attn_args *a) {
    uint32_t max_shared = b->dev->caps.max_shared_bytes;
    sym_vk_kernel kernel;
    sym_vk_spec spec;
    uint64_t bq; /* tokens per workgroup */
    sym_vk_arg args[4];
    sym_vk_push_attn_prefill pu = {.n_tok = (uint32_t)a->T,
                                   .n_head = (uint32_t)a->H,
                                   .n_head_kv = (uint32_t)a->HKV,
                                   .pos0 = (uint32_t)a->pos0,
                                   .q_stride = (uint32_t)a->q_stride,
                                   .kv_stride = (uint32_t)a->kv_stride,
                                   .out_stride = (uint32_t)a->out_stride,
                                   .scale = a->scale};
    SYM_TRY(bind_qkvo(b, a, &args[0], &pu.q_off, &args[1], &pu.k_off, &args[2], &pu.v_off, &args[3],
                      &pu.out_off));
    if (b->coopmat && !b->no_tc_attn && !b->f32_gemm_act && a->k->type == SYM_DT_F16 &&
        a->D % 16 == 0 && a->D <= 128 && a->kv_stride % 8 == 0 && pu.k_off % 8 == 0 &&
        pu.v_off % 8 == 0 && tc_shared(a->D) <= max_shared) {
        /* tensor cores (f16 queries and probabilities, as the GEMMs' f16 activations):
         * workgroups of 4 subgroups for (head, 64 tokens) */
        kernel = SYM_VK_K_ATTN_PREFILL_TC;
        spec = sym_vkb_spec(b, 128, a->k->type);
        bq = 64;
    } else if (a->D % 4 == 0 && a->D <= 128 && rt_shared(a->D) <= max_shared &&
               b->dev->caps.max_workgroup_invocations >= 128 && !b->no_rt_attn) {
        /* the register-tiled kernel: workgroups of 128 for (head, 32 tokens) */
        kernel = SYM_VK_K_ATTN_PREFILL_RT;
        spec = sym_vkb_spec(b, 128, a->k->type);
        bq = 32;
    } else {
        uint64_t bkv = 32;
        bq = 16;
#define SHARED(bq_, bkv_) ((2 * (bq_)*a->D + (bkv_)*a->D + (bq_) * (bkv_) + 3 * (bq_)) * 4)
        while (SHARED(bq, bkv) > max_shared && bkv > 8)
            bkv /= 2;
        while (SHARED(bq, bkv) > max_shared && bq > 1)
            bq /= 2;
        while (SHARED(bq, bkv) > max_shared && bkv > 1)
            bkv /= 2;
        SYM_CHECK(SHARED(bq, bkv) <= max_shared, SYM_ERR_UNSUPPORTED,
                  "attention: head_dim %llu needs more shared memory", (unsigned long long)a->D);
#undef SHARED
        kernel = SYM_VK_K_ATTN_PREFILL;
        spec = sym_vkb_spec(b, b->wg, a->k->type);
        spec.v[5] = (uint32_t)bq;
        spec.v[6] = (uint32_t)bkv;
    }
    spec.v[4] = (uint32_t)a->D;
    uint64_t n_blocks = (a->T + bq - 1) / bq;
    SYM_CHECK(n_blocks <= 65535 && a->H <= 65535, SYM_ERR_UNSUPPORTED,
              "attention: %llu tokens in one call is too many", (unsigned long long)a->T);
    const sym_vk_pipeline *p;
    SYM_TRY(sym_vk_pipeline_get(b->pipes, kernel, SYM_VK_VAR_DEFAULT, &spec, &p));
    double kv_bytes = 2.0 * (double)n_blocks * (double)a->H * (double)a->n_pos *
                      (double)(a->D * a->es) / 2.0; /* causal: half the positions on average */
    return sym_vk_cmd_dispatch(b->cmd, p, args, &pu, (uint32_t)a->H, (uint32_t)n_blocks, 1,
                               kv_bytes,
                               2.0 * (double)a->T * (double)a->H * (double)a->n_pos * (double)a->D);
}

void sym_vkb_attention(sym_backend *bb, sym_tensor *out, const sym_tensor *q, const sym_tensor *k,
                       const sym_tensor *v, int n_head, int n_head_kv, int head_dim, int pos0,
                       float scale) {
    sym_vkb *b = sym_vkb_of(bb);
    if (b->err != SYM_OK) return;
    sym_vkb_begin_op(b);
    sym_status st;
    if ((st = sym_vkb_check_tensor(q, "attention", "q", SYM_DT_F32)) != SYM_OK ||
        (st = sym_vkb_check_tensor(out, "attention", "out", SYM_DT_F32)) != SYM_OK ||
        (st = sym_vkb_check_tensor(k, "attention", "k", SYM_DT_COUNT)) != SYM_OK ||
        (st = sym_vkb_check_tensor(v, "attention", "v", k->type)) != SYM_OK)
        goto fail;
    if (n_head <= 0 || n_head_kv <= 0 || n_head % n_head_kv != 0 || head_dim <= 0 ||
        head_dim > 1024 || pos0 < 0 || (int64_t)n_head * head_dim > q->n_cols ||
        out->n_cols != q->n_cols || out->n_rows != q->n_rows ||
        (int64_t)n_head_kv * head_dim > k->n_cols || k->n_cols != v->n_cols ||
        k->n_rows != v->n_rows) {
        st = SYM_FAIL(SYM_ERR_ARG,
                      "attention: shapes disagree (%d heads, %d kv heads, head_dim "
                      "%d)",
                      n_head, n_head_kv, head_dim);
        goto fail;
    }
    if (pos0 + q->n_rows > k->n_rows) {
        st = SYM_FAIL(SYM_ERR_RANGE, "attention: positions up to %lld, cache holds %lld",
                      (long long)(pos0 + q->n_rows), (long long)k->n_rows);
        goto fail;
    }
    attn_args a = {.out = out,
                   .q = q,
                   .k = k,
                   .v = v,
                   .T = (uint64_t)q->n_rows,
                   .H = (uint64_t)n_head,
                   .HKV = (uint64_t)n_head_kv,
                   .D = (uint64_t)head_dim,
                   .pos0 = (uint64_t)pos0,
                   .n_pos = (uint64_t)pos0 + (uint64_t)q->n_rows,
                   .q_stride = (uint64_t)q->n_cols,
                   .kv_stride = (uint64_t)k->n_cols,
                   .out_stride = (uint64_t)out->n_cols,
                   .es = sym_dtype_size(k->type),
                   .scale = scale};
    /* prefill binds K and V whole; when they exceed one binding the chunked decode kernel
     * (correct for any number of tokens, slower for many) takes over */
    uint64_t U = b->max_range - b->align - 16;
    int fits = a.n_pos * a.kv_stride * a.es <= U;
    if (a.T <= DECODE_MAX_TOK) {
        st = decode_sg(b, &a);
        if (st == SYM_ERR_UNSUPPORTED) st = decode(b, &a);
    } else {
        st = fits ? prefill(b, &a) : decode(b, &a);
    }
    if (st == SYM_OK) return;
fail:
    sym_vkb_latch(b, st);
}
