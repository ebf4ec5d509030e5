/* ops_matmul.c — out (+)= x W^T (+ bias): for up to 8 tokens (decode) the subgroup kernel mv
 * (which can also normalize x on the fly) or, without subgroup arithmetic, matvec; else a tiled
 * GEMM: the cooperative-matrix kernel (after gemm_split) for f16/bf16 weights where the device
 * has it, the shared-memory kernel otherwise. Every path can add into out (accumulate: the
 * residual add fused). Tensors larger than one binding are cut into W row slices and token
 * chunks; each piece is a dispatch on its own windows. */
#include <string.h>

#include "vk/ops_impl.h"

#define MATVEC_MAX_TOK 8

typedef struct mm_plan {
    uint64_t T, K, N, es;
    uint64_t slice; /* W rows per dispatch */
    uint64_t tc;    /* tokens per chunk */
    int coop;
} mm_plan;

static sym_status plan(sym_vkb *b, const sym_tensor *x, const sym_tensor *w, mm_plan *pl) {
    pl->T = (uint64_t)x->n_rows;
    pl->K = (uint64_t)x->n_cols;
    pl->N = (uint64_t)w->n_rows;
    pl->es = sym_dtype_size(w->type);
    const sym_vk_buffer *wb = w->buf;
    pl->coop = pl->T > MATVEC_MAX_TOK && b->coopmat &&
               (w->type == SYM_DT_F16 || (w->type == SYM_DT_BF16 && wb->bf16_fits_f16));
    uint64_t U = b->max_range - b->align - 16;
    pl->slice = U / (pl->K * pl->es);
    uint64_t by_x = U / (pl->K * 4);
    SYM_CHECK(pl->slice > 0 && by_x > 0, SYM_ERR_UNSUPPORTED,
              "matmul: rows of %llu elements are too wide for one binding (%llu bytes)",
              (unsigned long long)pl->K, (unsigned long long)b->max_range);
    if (pl->slice > pl->N) pl->slice = pl->N;
    if (pl->slice > U / 4) pl->slice = U / 4; /* its out columns must fit too */
    /* out window of tc tokens and one slice: ((tc - 1) * N + slice) * 4 bytes */
    uint64_t by_out = (U / 4 - pl->slice) / pl->N + 1;
    pl->tc = pl->T;
    if (pl->tc > by_x) pl->tc = by_x;
    if (pl->tc > by_out) pl->tc = by_out;
    if (pl->coop) {
        uint64_t k_pad = (pl->K + 31) / 32 * 32;
        uint64_t by_split = U / (4 * k_pad);
        if (pl->tc > by_split) pl->tc = by_split;
        if (pl->tc <= MATVEC_MAX_TOK) pl->coop = 0;
    }
    if (pl->T > MATVEC_MAX_TOK && pl->tc > 65535 * 64) pl->tc = 65535 * 64;
    SYM_ASSERT(pl->tc > 0);
    return SYM_OK;
}

/* The windows shared by every kernel: x rows [t0, t0 + tc), W rows [o0, o1), out, bias. */
static sym_status bind_common(sym_vkb *b, const sym_tensor *out, const sym_tensor *x,
                              const sym_tensor *w, const sym_tensor *bias, const mm_plan *pl,
                              uint64_t t0, uint64_t tc, uint64_t o0, uint64_t o1, sym_vk_arg *ax,
                              uint32_t *x_off, sym_vk_arg *aw, uint32_t *w_off, sym_vk_arg *ab,
                              uint32_t *b_off, sym_vk_arg *ao, uint32_t *o_off) {
    if (ax) SYM_TRY(sym_vkb_bind(b, x, t0 * pl->K * 4, (t0 + tc) * pl->K * 4, 0, ax, x_off));
    SYM_TRY(sym_vkb_bind(b, w, o0 * pl->K * pl->es, o1 * pl->K * pl->es, 0, aw, w_off));
    if (bias)
        SYM_TRY(sym_vkb_bind(b, bias, o0 * 4, o1 * 4, 0, ab, b_off));
    else {
        *ab = sym_vkb_dummy_arg(b);
        *b_off = 0;
    }
    return sym_vkb_bind(b, out, (t0 * pl->N + o0) * 4, ((t0 + tc - 1) * pl->N + o1) * 4, 1, ao,
                        o_off);
}

static sym_status matvec(sym_vkb *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                         const sym_tensor *bias, int accumulate, const mm_plan *pl) {
    sym_vk_variant var = b->red_var;
    if (b->fp16 && w->type == SYM_DT_F16) var = SYM_VK_VAR_FP16;
    sym_vk_spec spec = sym_vkb_spec(b, b->matvec_wg, w->type);
    spec.v[4] = b->nr;
    const sym_vk_pipeline *p;
    SYM_TRY(sym_vk_pipeline_get(b->pipes, SYM_VK_K_MATVEC, var, &spec, &p));
    for (uint64_t t0 = 0; t0 < pl->T; t0 += pl->tc) {
        uint64_t tc = pl->T - t0 < pl->tc ? pl->T - t0 : pl->tc;
        for (uint64_t o0 = 0; o0 < pl->N; o0 += pl->slice) {
            uint64_t o1 = o0 + pl->slice < pl->N ? o0 + pl->slice : pl->N;
            sym_vk_arg a[4];
            sym_vk_push_matvec pc = {.n_in = (uint32_t)pl->K,
                                     .n_rows = (uint32_t)(o1 - o0),
                                     .n_tok = (uint32_t)tc,
                                     .out_stride = (uint32_t)pl->N,
                                     .has_bias = bias != NULL,
                                     .accumulate = accumulate != 0};
            SYM_TRY(bind_common(b, out, x, w, bias, pl, t0, tc, o0, o1, &a[0], &pc.x_off, &a[1],
                                &pc.w_off, &a[2], &pc.b_off, &a[3], &pc.out_off));
            pc.vec_ok = pl->K % 8 == 0 && pc.w_off % 8 == 0 && pc.x_off % 4 == 0;
            uint32_t gx, gy;
            sym_vkb_grid((o1 - o0 + b->nr - 1) / b->nr, &gx, &gy);
            double bytes = (double)(o1 - o0) * (double)(pl->K * pl->es + tc * 4) +
                           (double)tc * (double)pl->K * 4;
            SYM_TRY(sym_vk_cmd_dispatch(b->cmd, p, a, &pc, gx, gy, 1, bytes,
                                        2.0 * (double)tc * (double)(o1 - o0) * (double)pl->K));
        }
    }
    return SYM_OK;
}

/* The subgroup kernel: norm (NULL: none) is applied to x on the fly. */
static sym_status mv(sym_vkb *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                     const sym_tensor *bias, const sym_tensor *norm, float eps, int accumulate,
                     const mm_plan *pl) {
    uint32_t n_groups;
    sym_vk_spec spec = sym_vkb_mv_spec(b, w->type, &n_groups);
    spec.v[4] = b->mv_nr;
    spec.v[5] = n_groups; /* blocks of mv_nr rows per workgroup: one per group */
    spec.v[6] = norm ? (uint32_t)norm->type : 0;
    spec.v[10] = norm != NULL;
    uint32_t rows_per_wg = n_groups * b->mv_nr;
    const sym_vk_pipeline *p;
    SYM_TRY(sym_vk_pipeline_get(b->pipes, SYM_VK_K_MV, SYM_VK_VAR_DEFAULT, &spec, &p));
    uint64_t w_align = w->type == SYM_DT_F32 ? 4 : 8;
    for (uint64_t t0 = 0; t0 < pl->T; t0 += pl->tc) {
        uint64_t tc = pl->T - t0 < pl->tc ? pl->T - t0 : pl->tc;
        for (uint64_t o0 = 0; o0 < pl->N; o0 += pl->slice) {
            uint64_t o1 = o0 + pl->slice < pl->N ? o0 + pl->slice : pl->N;
            sym_vk_arg a[5];
            sym_vk_push_mv pc = {.n_in = (uint32_t)pl->K,
                                 .n_rows = (uint32_t)(o1 - o0),
                                 .n_tok = (uint32_t)tc,
                                 .out_stride = (uint32_t)pl->N,
                                 .eps = eps};
            SYM_TRY(bind_common(b, out, x, w, bias, pl, t0, tc, o0, o1, &a[0], &pc.x_off, &a[2],
                                &pc.w_off, &a[3], &pc.b_off, &a[4], &pc.out_off));
            int vec = pl->K % 8 == 0 && pc.w_off % w_align == 0 && pc.x_off % 4 == 0;
            if (norm) {
                uint64_t ge = sym_dtype_size(norm->type);
                SYM_TRY(sym_vkb_bind(b, norm, 0, pl->K * ge, 0, &a[1], &pc.g_off));
                vec = vec && pc.g_off % (norm->type == SYM_DT_F32 ? 4 : 8) == 0;
            } else {
                a[1] = sym_vkb_dummy_arg(b);
            }
            pc.flags |= (bias ? SYM_VK_MV_BIAS : 0) | (accumulate ? SYM_VK_MV_ACCUMULATE : 0) |
                        (vec ? SYM_VK_MV_VEC : 0);
            uint32_t gx, gy;
            sym_vkb_grid((o1 - o0 + rows_per_wg - 1) / rows_per_wg, &gx, &gy);
            double bytes = (double)(o1 - o0) * (double)(pl->K * pl->es + tc * 4) +
                           (double)tc * (double)pl->K * 4;
            SYM_TRY(sym_vk_cmd_dispatch(b->cmd, p, a, &pc, gx, gy, 1, bytes,
                                        2.0 * (double)tc * (double)(o1 - o0) * (double)pl->K));
        }
    }
    return SYM_OK;
}

static sym_status gemm(sym_vkb *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                       const sym_tensor *bias, int accumulate, const mm_plan *pl) {
    sym_vk_spec spec = sym_vkb_spec(b, 256, w->type);
    const sym_vk_pipeline *p;
    SYM_TRY(sym_vk_pipeline_get(b->pipes, SYM_VK_K_MATMUL, SYM_VK_VAR_DEFAULT, &spec, &p));
    for (uint64_t t0 = 0; t0 < pl->T; t0 += pl->tc) {
        uint64_t tc = pl->T - t0 < pl->tc ? pl->T - t0 : pl->tc;
        for (uint64_t o0 = 0; o0 < pl->N; o0 += pl->slice) {
            uint64_t o1 = o0 + pl->slice < pl->N ? o0 + pl->slice : pl->N;
            sym_vk_arg a[4];
            sym_vk_push_matmul pc = {.m = (uint32_t)tc,
                                     .n = (uint32_t)(o1 - o0),
                                     .k = (uint32_t)pl->K,
                                     .out_stride = (uint32_t)pl->N,
                                     .has_bias = bias != NULL,
                                     .accumulate = accumulate != 0};
            SYM_TRY(bind_common(b, out, x, w, bias, pl, t0, tc, o0, o1, &a[0], &pc.x_off, &a[1],
                                &pc.w_off, &a[2], &pc.b_off, &a[3], &pc.out_off));
            pc.vec_ok = pl->K % 2 == 0 && pc.w_off % 2 == 0;
            double bytes = (double)(o1 - o0) * (double)pl->K * (double)pl->es +
                           (double)tc * (double)(pl->K + (o1 - o0)) * 4;
            SYM_TRY(sym_vk_cmd_dispatch(b->cmd, p, a, &pc, (uint32_t)((o1 - o0 + 63) / 64),
                                        (uint32_t)((tc + 63) / 64), 1, bytes,
                                        2.0 * (double)tc * (double)(o1 - o0) * (double)pl->K));
        }
    }
    return SYM_OK;
}

/* The cooperative-matrix tile of a product of tc tokens by n rows: the configured one (default
 * 128 x 128 with f16 activations, 16 subgroups; 64 x 256 with f32 ones, 8), unless that gives fewer
 * than coop_min_groups workgroups (a 512-token prefill of a 2048-row matrix: 64, under one per
 * multiprocessor of an H100), then the first of 64 x 128 and 64 x 64 that gives enough, or the
 * smallest. tile: SM SN PAD BK8; warps: WM WN. */
static void coop_shape(const sym_vkb *b, uint64_t tc, uint64_t n, uint32_t tile[4],
                       uint32_t warps[2]) {
    static const uint32_t k_small[2][6] = {{2, 2, 1, 4, 2, 4}, {2, 2, 1, 4, 2, 2}};
    memcpy(tile, b->coop_tile, sizeof b->coop_tile);
    memcpy(warps, b->coop_warps, sizeof b->coop_warps);
    for (int s = 0; s < 2 && b->coop_min_groups; s++) {
        uint64_t bm = 16 * tile[0] * warps[0], bn = 16 * tile[1] * warps[1];
        if ((tc + bm - 1) / bm * ((n + bn - 1) / bn) >= b->coop_min_groups) return;
        memcpy(tile, k_small[s], 4 * sizeof *tile);
        memcpy(warps, k_small[s] + 4, 2 * sizeof *warps);
    }
}

/* The activations of cooperative-matrix products: rows of x split into f16 halves by gemm_split,
 * in the scratch buffer: hi (tc x k_pad), lo (the same, written with f32 activations only), then
 * 1/scale per row. */
typedef struct coop_x {
    sym_tensor xs, sc;
    uint64_t tc, k_pad;
} coop_x;

/* Splits rows [t0, t0 + tc) of x (K columns), RMS-normalized first when normed (with a weight of
 * ones where norm is NULL). */
static sym_status coop_split(sym_vkb *b, const sym_tensor *x, uint64_t K, uint64_t t0,
                             uint64_t tc, int normed, const sym_tensor *norm, float eps,
                             coop_x *cx) {
    uint64_t k_pad = (K + 31) / 32 * 32;
    uint64_t xs_bytes = 4 * tc * k_pad, sc_at = (xs_bytes + 255) / 256 * 256;
    sym_vk_buffer *scr;
    SYM_TRY(sym_vkb_scratch(b, sc_at + tc * 4, &scr));
    cx->xs = (sym_tensor){
        .type = SYM_DT_F16, .n_cols = (int64_t)k_pad, .n_rows = 2 * (int64_t)tc, .buf = scr};
    cx->sc = (sym_tensor){
        .type = SYM_DT_F32, .n_cols = 1, .n_rows = (int64_t)tc, .buf = scr, .offset = sc_at};
    cx->tc = tc;
    cx->k_pad = k_pad;
    sym_vk_spec spec = sym_vkb_spec(b, b->wg, norm ? norm->type : SYM_DT_F32);
    spec.v[4] = (uint32_t)sym_vkb_gemm_lo(b); /* lo halves written only where they are read */
    spec.v[5] = !normed ? 0 : norm ? 2 : 1;
    const sym_vk_pipeline *ps;
    SYM_TRY(sym_vk_pipeline_get(b->pipes, SYM_VK_K_GEMM_SPLIT, b->red_var, &spec, &ps));
    sym_vk_arg a[4];
    sym_vk_push_split sp = {.m = (uint32_t)tc, .k = (uint32_t)K, .k_pad = (uint32_t)k_pad, .eps = eps};
    SYM_TRY(sym_vkb_bind(b, x, t0 * K * 4, (t0 + tc) * K * 4, 0, &a[0], &sp.x_off));
    SYM_TRY(sym_vkb_bind(b, &cx->xs, 0, 4 * tc * k_pad, 1, &a[1], &sp.hi_off));
    sp.lo_off = sp.hi_off + (uint32_t)(tc * k_pad);
    SYM_TRY(sym_vkb_bind(b, &cx->sc, 0, tc * 4, 1, &a[2], &sp.scale_off));
    if (norm)
        SYM_TRY(sym_vkb_bind(b, norm, 0, K * sym_dtype_size(norm->type), 0, &a[3], &sp.g_off));
    else
        a[3] = sym_vkb_dummy_arg(b);
    uint32_t gx = tc < 65535 ? (uint32_t)tc : 65535; /* the shader loops over the rest */
    return sym_vk_cmd_dispatch(b->cmd, ps, a, &sp, gx, 1, 1,
                               (double)tc * (double)(K * 4 + k_pad * (sym_vkb_gemm_lo(b) ? 4 : 2)),
                               0);
}

/* out rows [t0, t0 + cx->tc) (+)= cx W^T (+ bias), W in row slices of pl->slice. */
static sym_status coop_product(sym_vkb *b, sym_tensor *out, const coop_x *cx, const sym_tensor *w,
                               const sym_tensor *bias, int accumulate, const mm_plan *pl,
                               uint64_t t0) {
    uint64_t tc = cx->tc, k_pad = cx->k_pad;
    uint32_t tile[4], warps[2];
    coop_shape(b, pl->tc, pl->slice, tile, warps);
    sym_vk_spec spec = sym_vkb_spec(b, 32 * warps[0] * warps[1], w->type);
    for (int i = 0; i < 4; i++)
        spec.v[4 + i] = tile[i];
    spec.v[8] = warps[0];
    spec.v[9] = warps[1];
    spec.v[10] = (uint32_t)sym_vkb_gemm_lo(b);
    uint64_t bm = 16 * tile[0] * warps[0];
    uint64_t bn = 16 * tile[1] * warps[1];
    const sym_vk_pipeline *pm;
    SYM_TRY(sym_vk_pipeline_get(b->pipes, SYM_VK_K_MATMUL_COOP, SYM_VK_VAR_DEFAULT, &spec, &pm));
    for (uint64_t o0 = 0; o0 < pl->N; o0 += pl->slice) {
        uint64_t o1 = o0 + pl->slice < pl->N ? o0 + pl->slice : pl->N;
        sym_vk_arg a[5];
        sym_vk_push_coop pc = {.m = (uint32_t)tc,
                               .n = (uint32_t)(o1 - o0),
                               .k = (uint32_t)pl->K,
                               .k_pad = (uint32_t)k_pad,
                               .out_stride = (uint32_t)pl->N,
                               .has_bias = bias != NULL,
                               .use_lo = (uint32_t)sym_vkb_gemm_lo(b),
                               .accumulate = accumulate != 0};
        SYM_TRY(sym_vkb_bind(b, &cx->xs, 0, 4 * tc * k_pad, 0, &a[0], &pc.hi_off));
        pc.lo_off = pc.hi_off + (uint32_t)(tc * k_pad);
        SYM_TRY(sym_vkb_bind(b, &cx->sc, 0, tc * 4, 0, &a[1], &pc.scale_off));
        SYM_TRY(bind_common(b, out, NULL, w, bias, pl, t0, tc, o0, o1, NULL, NULL, &a[2],
                            &pc.w_off, &a[3], &pc.b_off, &a[4], &pc.out_off));
        pc.vec_ok = pl->K % 8 == 0 && pc.w_off % 8 == 0;
        double bytes = (double)(o1 - o0) * (double)pl->K * (double)pl->es +
                       (double)tc * (double)(k_pad * 4 + (o1 - o0) * 4);
        SYM_TRY(sym_vk_cmd_dispatch(b->cmd, pm, a, &pc, (uint32_t)((o1 - o0 + bn - 1) / bn),
                                    (uint32_t)((tc + bm - 1) / bm), 1, bytes,
                                    2.0 * (double)tc * (double)(o1 - o0) * (double)pl->K));
    }
    return SYM_OK;
}

static sym_status gemm_coop(sym_vkb *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                            const sym_tensor *bias, int accumulate, const mm_plan *pl) {
    for (uint64_t t0 = 0; t0 < pl->T; t0 += pl->tc) {
        uint64_t tc = pl->T - t0 < pl->tc ? pl->T - t0 : pl->tc;
        coop_x cx;
        SYM_TRY(coop_split(b, x, pl->K, t0, tc, 0, NULL, 0.0f, &cx));
        SYM_TRY(coop_product(b, out, &cx, w, bias, accumulate, pl, t0));
    }
    return SYM_OK;
}

int sym_vkb_norm_products_ok(sym_vkb *b, const sym_tensor *x, const sym_tensor *norm, int n,
                             const sym_tensor *const *ws) {
    if (b->no_fused || (norm && sym_dtype_size(norm->type) * (uint64_t)x->n_cols + 16 >
                                    b->max_range - b->align))
        return 0;
    for (int i = 0; i < n; i++) {
        mm_plan pl = {0};
        if (plan(b, x, ws[i], &pl) != SYM_OK || !pl.coop || pl.tc != pl.T) {
            sym_clear_error();
            return 0;
        }
    }
    return 1;
}

sym_status sym_vkb_norm_products(sym_vkb *b, const sym_tensor *x, const sym_tensor *norm,
                                 float eps, int n, sym_tensor *const *outs,
                                 const sym_tensor *const *ws, const sym_tensor *const *biases) {
    SYM_ASSERT(n > 0 && sym_vkb_norm_products_ok(b, x, norm, n, ws));
    for (int i = 0; i < n; i++) {
        const sym_tensor *bias = biases ? biases[i] : NULL;
        SYM_TRY(sym_vkb_check_tensor(outs[i], "matmul", "out", SYM_DT_F32));
        if (bias) SYM_TRY(sym_vkb_check_tensor(bias, "matmul", "bias", SYM_DT_F32));
        SYM_CHECK(ws[i]->n_cols == x->n_cols && outs[i]->n_rows == x->n_rows &&
                      outs[i]->n_cols == ws[i]->n_rows && (!bias || bias->n_cols == ws[i]->n_rows),
                  SYM_ERR_ARG, "matmul: x %lld x %lld, W %lld x %lld, out %lld x %lld",
                  (long long)x->n_rows, (long long)x->n_cols, (long long)ws[i]->n_rows,
                  (long long)ws[i]->n_cols, (long long)outs[i]->n_rows,
                  (long long)outs[i]->n_cols);
    }
    coop_x cx;
    SYM_TRY(coop_split(b, x, (uint64_t)x->n_cols, 0, (uint64_t)x->n_rows, 1, norm, eps, &cx));
    for (int i = 0; i < n; i++) {
        mm_plan pl = {0};
        SYM_TRY(plan(b, x, ws[i], &pl));
        SYM_TRY(coop_product(b, outs[i], &cx, ws[i], biases ? biases[i] : NULL, 0, &pl, 0));
    }
    return SYM_OK;
}

sym_status sym_vkb_matmul_ex(sym_vkb *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                             const sym_tensor *bias, const sym_tensor *norm, float eps,
                             int accumulate) {
    mm_plan pl;
    SYM_TRY(sym_vkb_check_tensor(x, "matmul", "x", SYM_DT_F32));
    SYM_TRY(sym_vkb_check_tensor(w, "matmul", "W", SYM_DT_COUNT));
    SYM_TRY(sym_vkb_check_tensor(out, "matmul", "out", SYM_DT_F32));
    if (bias) SYM_TRY(sym_vkb_check_tensor(bias, "matmul", "bias", SYM_DT_F32));
    if (norm) SYM_TRY(sym_vkb_check_tensor(norm, "matmul", "norm", SYM_DT_COUNT));
    SYM_CHECK(w->n_cols == x->n_cols && out->n_rows == x->n_rows && out->n_cols == w->n_rows &&
                  (!bias || bias->n_cols == w->n_rows) && (!norm || norm->n_cols == x->n_cols),
              SYM_ERR_ARG, "matmul: x %lld x %lld, W %lld x %lld, out %lld x %lld%s%s",
              (long long)x->n_rows, (long long)x->n_cols, (long long)w->n_rows,
              (long long)w->n_cols, (long long)out->n_rows, (long long)out->n_cols,
              bias && bias->n_cols != w->n_rows ? ", bias of the wrong length" : "",
              norm && norm->n_cols != x->n_cols ? ", norm of the wrong length" : "");
    SYM_TRY(plan(b, x, w, &pl));
    SYM_ASSERT(!norm || sym_vkb_mv_ok(b, pl.T));
    if (pl.T <= MATVEC_MAX_TOK && sym_vkb_mv_ok(b, pl.T) && (norm || !b->plain_matvec))
        return mv(b, out, x, w, bias, norm, eps, accumulate, &pl);
    if (pl.T <= MATVEC_MAX_TOK) return matvec(b, out, x, w, bias, accumulate, &pl);
    if (pl.coop) return gemm_coop(b, out, x, w, bias, accumulate, &pl);
    return gemm(b, out, x, w, bias, accumulate, &pl);
}

int sym_vkb_mv_ok(const sym_vkb *b, uint64_t n_tok) { return b->use_sg && n_tok <= MATVEC_MAX_TOK; }

void sym_vkb_matmul(sym_backend *bb, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                    const sym_tensor *bias) {
    sym_vkb *b = sym_vkb_of(bb);
    if (b->err != SYM_OK) return;
    sym_vkb_begin_op(b);
    sym_vkb_latch(b, sym_vkb_matmul_ex(b, out, x, w, bias, NULL, 0.0f, 0));
}
