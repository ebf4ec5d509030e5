/* simd_template.h — the SIMD kernels, written once over a small vector abstraction and included
 * by kernels_avx512.c and kernels_avx2.c after they define, for their ISA: VW (lanes), MR (gemm
 * tokens per register block), KTABLE (the table's name), KISA, vec_t, and the always-inline
 * primitives v_zero v_set1 v_load v_store v_load_n v_store_n v_fma v_add v_sub v_mul v_div v_max
 * v_hsum v_hmax v_exp v_load_f16 v_load_bf16 v_load_f16_n v_load_bf16_n v_load2_f16 v_load2_bf16
 * v_store_f16 v_store_bf16 v_store_f16_n v_store_bf16_n v_transpose.
 * The including file applies its target attributes to everything here (pragma), so nothing in
 * this file runs unless ops.c has checked the CPU. `_n` primitives touch only lanes < n (loads
 * fill the rest with zeros). Not a standalone header: no include guard on purpose.
 */
#include <math.h>
#include <stdint.h>

#define NR (2 * VW) /* gemm panel: two vectors of outputs */
/* gemv, one token: rows longer than GEMV_KC_LONG inputs are split in chunks of at most
 * GEMV_KC_MAX (12 KB of f32 x), taken GEMV_KROWS rows at a time */
#define GEMV_KC_LONG 4096
#define GEMV_KC_MAX  3072
#define GEMV_KROWS   32

/* ---- loads of any weight dtype (dt is a constant after inlining) ----------------------------- */

AI vec_t load_dt(const void *p, const sym_dtype dt, int64_t i) {
    if (dt == SYM_DT_F16) return v_load_f16((const uint16_t *)p + i);
    if (dt == SYM_DT_BF16) return v_load_bf16((const uint16_t *)p + i);
    return v_load((const float *)p + i);
}

/* 2 * VW consecutive weights: 16-bit types with one full-width load (one load per cache line
 * keeps more distinct lines in flight when streaming from DRAM). */
AI void load2_dt(const void *p, const sym_dtype dt, int64_t i, vec_t *a, vec_t *b) {
    if (dt == SYM_DT_F16)
        v_load2_f16((const uint16_t *)p + i, a, b);
    else if (dt == SYM_DT_BF16)
        v_load2_bf16((const uint16_t *)p + i, a, b);
    else {
        *a = v_load((const float *)p + i);
        *b = v_load((const float *)p + i + VW);
    }
}

AI vec_t load_dt_n(const void *p, const sym_dtype dt, int64_t i, int n) {
    if (dt == SYM_DT_F16) return v_load_f16_n((const uint16_t *)p + i, n);
    if (dt == SYM_DT_BF16) return v_load_bf16_n((const uint16_t *)p + i, n);
    return v_load_n((const float *)p + i, n);
}

AI void store_dt(void *p, const sym_dtype dt, int64_t i, vec_t v) {
    if (dt == SYM_DT_F16)
        v_store_f16((uint16_t *)p + i, v);
    else if (dt == SYM_DT_BF16)
        v_store_bf16((uint16_t *)p + i, v);
    else
        v_store((float *)p + i, v);
}

AI void store_dt_n(void *p, const sym_dtype dt, int64_t i, vec_t v, int n) {
    if (dt == SYM_DT_F16)
        v_store_f16_n((uint16_t *)p + i, v, n);
    else if (dt == SYM_DT_BF16)
        v_store_bf16_n((uint16_t *)p + i, v, n);
    else
        v_store_n((float *)p + i, v, n);
}

AI const void *row_ptr(const void *w, const sym_dtype dt, int64_t row, int64_t n_cols) {
    return (const char *)w + (size_t)row * (size_t)n_cols * (dt == SYM_DT_F32 ? 4 : 2);
}

/* ---- gemv: decode, straight from the weights ------------------------------------------------- */

/* NROWS weight rows at o against MRT tokens (used for 2..4 tokens). */
AI void gemv_block(const int mrt, const int nrows, const sym_dtype dt, const float *x, int64_t ldx,
                   const void *w, int64_t n_in, int64_t o, const float *bias, float *out,
                   int64_t ldo) {
    const void *row[4];
    vec_t acc[SYM_CPU_GEMV_MAX_TOK][4][2];
#pragma GCC unroll 4
    for (int r = 0; r < nrows; r++)
        row[r] = row_ptr(w, dt, o + r, n_in);
#pragma GCC unroll 4
    for (int t = 0; t < mrt; t++)
#pragma GCC unroll 4
        for (int r = 0; r < nrows; r++)
            acc[t][r][0] = acc[t][r][1] = v_zero();
    int64_t i = 0;
    for (; i + VW <= n_in; i += VW) {
        vec_t xv[SYM_CPU_GEMV_MAX_TOK];
#pragma GCC unroll 4
        for (int t = 0; t < mrt; t++)
            xv[t] = v_load(x + t * ldx + i);
#pragma GCC unroll 4
        for (int r = 0; r < nrows; r++) {
            vec_t wv = load_dt(row[r], dt, i);
#pragma GCC unroll 4
            for (int t = 0; t < mrt; t++)
                acc[t][r][0] = v_fma(wv, xv[t], acc[t][r][0]);
        }
    }
    if (i < n_in) {
        int n = (int)(n_in - i);
        vec_t xv[SYM_CPU_GEMV_MAX_TOK];
#pragma GCC unroll 4
        for (int t = 0; t < mrt; t++)
            xv[t] = v_load_n(x + t * ldx + i, n);
#pragma GCC unroll 4
        for (int r = 0; r < nrows; r++) {
            vec_t wv = load_dt_n(row[r], dt, i, n);
#pragma GCC unroll 4
            for (int t = 0; t < mrt; t++)
                acc[t][r][1] = v_fma(wv, xv[t], acc[t][r][1]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < mrt; t++)
#pragma GCC unroll 4
        for (int r = 0; r < nrows; r++) {
            float s = v_hsum(v_add(acc[t][r][0], acc[t][r][1]));
            if (bias) s += bias[o + r];
            out[t * ldo + o + r] = s;
        }
}

/* One row at a time for mrt tokens: the task's rows are contiguous, so this reads one
 * sequential stream (what the hardware prefetchers follow best). Two (one token: four) vectors
 * per step keep enough independent FMA chains in flight. */
AI void gemv_row(const int mrt, const sym_dtype dt, const float *x, int64_t ldx, const void *w,
                 int64_t n_in, int64_t o, const float *bias, float *out, int64_t ldo) {
    const void *row = row_ptr(w, dt, o, n_in);
    const int u = mrt == 1 ? 4 : 2; /* vectors per step */
    vec_t acc[SYM_CPU_GEMV_MAX_TOK][4];
#pragma GCC unroll 4
    for (int t = 0; t < mrt; t++)
#pragma GCC unroll 4
        for (int k = 0; k < u; k++)
            acc[t][k] = v_zero();
    int64_t i = 0;
    for (; i + u * VW <= n_in; i += u * VW) {
#pragma GCC unroll 4
        for (int k = 0; k < u; k += 2) {
            vec_t w0, w1;
            load2_dt(row, dt, i + k * VW, &w0, &w1);
#pragma GCC unroll 4
            for (int t = 0; t < mrt; t++) {
                acc[t][k] = v_fma(w0, v_load(x + t * ldx + i + k * VW), acc[t][k]);
                acc[t][k + 1] = v_fma(w1, v_load(x + t * ldx + i + (k + 1) * VW), acc[t][k + 1]);
            }
        }
    }
    for (; i + VW <= n_in; i += VW) {
        vec_t wv = load_dt(row, dt, i);
#pragma GCC unroll 4
        for (int t = 0; t < mrt; t++)
            acc[t][0] = v_fma(wv, v_load(x + t * ldx + i), acc[t][0]);
    }
    if (i < n_in) {
        int n = (int)(n_in - i);
        vec_t wv = load_dt_n(row, dt, i, n);
#pragma GCC unroll 4
        for (int t = 0; t < mrt; t++)
            acc[t][1] = v_fma(wv, v_load_n(x + t * ldx + i, n), acc[t][1]);
    }
#pragma GCC unroll 4
    for (int t = 0; t < mrt; t++) {
        vec_t a = v_add(acc[t][0], acc[t][1]);
        if (u == 4) a = v_add(a, v_add(acc[t][2], acc[t][3]));
        float s = v_hsum(a);
        if (bias) s += bias[o];
        out[t * ldo + o] = s;
    }
}

/* sum_{i0 <= i < i1} row[i] * x[i] for one token, four accumulators; meanwhile prefetches
 * (into L2) the same span of the row chunk at pf, the one read two steps later. */
AI float dot_range(const sym_dtype dt, const float *x, const void *row, int64_t i0, int64_t i1,
                   const char *pf) {
    const int64_t esz = dt == SYM_DT_F32 ? 4 : 2;
    vec_t a0 = v_zero(), a1 = v_zero(), a2 = v_zero(), a3 = v_zero();
    int64_t i = i0;
    for (; i + 4 * VW <= i1; i += 4 * VW) {
        if (pf)
            for (int64_t b = 0; b < 4 * VW * esz; b += 64)
                __builtin_prefetch(pf + (i - i0) * esz + b, 0, 2);
        vec_t w0, w1, w2, w3;
        load2_dt(row, dt, i, &w0, &w1);
        load2_dt(row, dt, i + 2 * VW, &w2, &w3);
        a0 = v_fma(w0, v_load(x + i), a0);
        a1 = v_fma(w1, v_load(x + i + VW), a1);
        a2 = v_fma(w2, v_load(x + i + 2 * VW), a2);
        a3 = v_fma(w3, v_load(x + i + 3 * VW), a3);
    }
    for (; i + VW <= i1; i += VW)
        a0 = v_fma(load_dt(row, dt, i), v_load(x + i), a0);
    if (i < i1) {
        int n = (int)(i1 - i);
        a1 = v_fma(load_dt_n(row, dt, i, n), v_load_n(x + i, n), a1);
    }
    return v_hsum(v_add(v_add(a0, a1), v_add(a2, a3)));
}

/* One token, long rows (x over GEMV_KC_MAX floats no longer stays in L1 beside the weight
 * stream: measured 45-60 % of the read bandwidth). GEMV_KROWS rows at a time take one chunk of
 * at most GEMV_KC_MAX inputs each in turn, so the x chunk stays in L1. The hardware prefetchers
 * do not follow this chunked pattern, so each chunk prefetches the one read two steps later. */
AI void gemv_kchunked(const sym_dtype dt, const float *x, const void *w, int64_t n_in, int64_t o0,
                      int64_t o1, const float *bias, float *out) {
    const int64_t esz = dt == SYM_DT_F32 ? 4 : 2;
    int64_t n_chunk = (n_in + GEMV_KC_MAX - 1) / GEMV_KC_MAX;
    int64_t ck = ((n_in + n_chunk - 1) / n_chunk + 63) & ~(int64_t)63; /* even chunks */
    for (int64_t o = o0; o < o1; o += GEMV_KROWS) {
        int nr = o1 - o < GEMV_KROWS ? (int)(o1 - o) : GEMV_KROWS;
        float part[GEMV_KROWS] = {0};
        for (int64_t k0 = 0; k0 < n_in; k0 += ck) {
            int64_t k1 = n_in - k0 < ck ? n_in : k0 + ck;
            for (int r = 0; r < nr; r++) {
                /* two steps later: row r + 2 of this chunk, else of the next chunk, else the
                 * first chunk of the next group of rows */
                int64_t rn = o + r + 2, kn = k0;
                if (r + 2 >= nr) rn -= nr, kn += ck;
                if (kn >= n_in) rn += nr, kn = 0;
                const char *pf = NULL;
                if (rn < o1) pf = (const char *)row_ptr(w, dt, rn, n_in) + kn * esz;
                part[r] += dot_range(dt, x, row_ptr(w, dt, o + r, n_in), k0, k1, pf);
            }
        }
        for (int r = 0; r < nr; r++)
            out[o + r] = bias ? part[r] + bias[o + r] : part[r];
    }
}

/* One token: row by row (one stream). More tokens: four rows at a time, so each x vector
 * loaded serves four rows (x of 4 tokens no longer fits L1 next to the weight stream). */
AI void gemv_range(const int mrt, const sym_dtype dt, const float *x, int64_t ldx, const void *w,
                   int64_t n_in, int64_t o0, int64_t o1, const float *bias, float *out,
                   int64_t ldo) {
    int64_t o = o0;
    if (mrt > 1)
        for (; o + 4 <= o1; o += 4)
            gemv_block(mrt, 4, dt, x, ldx, w, n_in, o, bias, out, ldo);
    else if (n_in > GEMV_KC_LONG) {
        gemv_kchunked(dt, x, w, n_in, o0, o1, bias, out);
        return;
    }
    for (; o < o1; o++)
        gemv_row(mrt, dt, x, ldx, w, n_in, o, bias, out, ldo);
}

AI void gemv_dt(const sym_dtype dt, int n_tok, const float *x, int64_t ldx, const void *w,
                int64_t n_in, int64_t o0, int64_t o1, const float *bias, float *out, int64_t ldo) {
    switch (n_tok) {
    case 1:
        gemv_range(1, dt, x, ldx, w, n_in, o0, o1, bias, out, ldo);
        break;
    case 2:
        gemv_range(2, dt, x, ldx, w, n_in, o0, o1, bias, out, ldo);
        break;
    case 3:
        gemv_range(3, dt, x, ldx, w, n_in, o0, o1, bias, out, ldo);
        break;
    default:
        gemv_range(4, dt, x, ldx, w, n_in, o0, o1, bias, out, ldo);
        break;
    }
}

static void k_gemv(int n_tok, const float *x, int64_t ldx, const void *w, sym_dtype wt,
                   int64_t n_in, int64_t o0, int64_t o1, const float *bias, float *out,
                   int64_t ldo) {
    switch (wt) {
    case SYM_DT_F16:
        gemv_dt(SYM_DT_F16, n_tok, x, ldx, w, n_in, o0, o1, bias, out, ldo);
        break;
    case SYM_DT_BF16:
        gemv_dt(SYM_DT_BF16, n_tok, x, ldx, w, n_in, o0, o1, bias, out, ldo);
        break;
    default:
        gemv_dt(SYM_DT_F32, n_tok, x, ldx, w, n_in, o0, o1, bias, out, ldo);
        break;
    }
}

/* ---- gemm: prefill, packed f32 panels and an MR x NR register block -------------------------- */

/* Transposes VW x VW blocks of weights (converted to f32 on load) into the panel. Full blocks
 * take the fast path, with the block held in registers throughout (a variable index would spill
 * it to the stack); edges go through a zero-padded copy. */
AI void pack_block(const sym_dtype dt, const void *w, int64_t n_in, int64_t row0, int64_t k,
                   float *dst) {
    vec_t r[VW];
#pragma GCC unroll 16
    for (int j = 0; j < VW; j++)
        r[j] = load_dt(row_ptr(w, dt, row0 + j, n_in), dt, k);
    v_transpose(r);
#pragma GCC unroll 16
    for (int j = 0; j < VW; j++)
        v_store(dst + j * NR, r[j]);
}

static void pack_edge(const sym_dtype dt, const void *w, int64_t n_in, int64_t row0, int n_rows,
                      int64_t k, int nk, float *dst) {
    vec_t r[VW];
    float tmp[VW * VW];
    for (int j = 0; j < VW; j++)
        r[j] = j < n_rows ? load_dt_n(row_ptr(w, dt, row0 + j, n_in), dt, k, nk) : v_zero();
    v_transpose(r);
    for (int j = 0; j < VW; j++)
        v_store(tmp + j * VW, r[j]);
    for (int j = 0; j < nk; j++)
        v_store(dst + j * NR, v_load(tmp + j * VW));
}

AI void pack_dt(const sym_dtype dt, const void *w, int64_t n_in, int64_t o0, int n_rows, int64_t k0,
                int64_t kc, float *panel) {
    for (int h = 0; h < NR / VW; h++) {
        int hr = n_rows - h * VW; /* rows of this half */
        hr = hr < 0 ? 0 : hr > VW ? VW : hr;
        int64_t kb = 0;
        if (hr == VW)
            for (; kb + VW <= kc; kb += VW)
                pack_block(dt, w, n_in, o0 + h * VW, k0 + kb, panel + kb * NR + h * VW);
        for (; kb < kc; kb += VW) {
            int nk = kc - kb < VW ? (int)(kc - kb) : VW;
            pack_edge(dt, w, n_in, o0 + h * VW, hr, k0 + kb, nk, panel + kb * NR + h * VW);
        }
    }
}

static void k_pack(const void *w, sym_dtype wt, int64_t n_in, int64_t o0, int n_rows, int64_t k0,
                   int64_t kc, float *panel) {
    switch (wt) {
    case SYM_DT_F16:
        pack_dt(SYM_DT_F16, w, n_in, o0, n_rows, k0, kc, panel);
        break;
    case SYM_DT_BF16:
        pack_dt(SYM_DT_BF16, w, n_in, o0, n_rows, k0, kc, panel);
        break;
    default:
        pack_dt(SYM_DT_F32, w, n_in, o0, n_rows, k0, kc, panel);
        break;
    }
}

/* mrt tokens x NR outputs, all in registers; each step: two panel vectors, mrt broadcasts of x,
 * 2 * mrt FMAs. */
AI void ukernel(const int mrt, const float *x, int64_t ldx, const float *panel, int64_t kc,
                float *c, int64_t ldc, int n_rows, int accumulate, const float *bias) {
    vec_t acc[MR][2];
    int n0 = n_rows < VW ? n_rows : VW, n1 = n_rows - VW;
    if (accumulate) {
#pragma GCC unroll 16
        for (int t = 0; t < mrt; t++) {
            acc[t][0] = n0 == VW ? v_load(c + t * ldc) : v_load_n(c + t * ldc, n0);
            acc[t][1] = n1 >= VW ? v_load(c + t * ldc + VW)
                        : n1 > 0 ? v_load_n(c + t * ldc + VW, n1)
                                 : v_zero();
        }
    } else {
        vec_t b0 = v_zero(), b1 = v_zero();
        if (bias) {
            b0 = n0 == VW ? v_load(bias) : v_load_n(bias, n0);
            b1 = n1 >= VW ? v_load(bias + VW) : n1 > 0 ? v_load_n(bias + VW, n1) : v_zero();
        }
#pragma GCC unroll 16
        for (int t = 0; t < mrt; t++) {
            acc[t][0] = b0;
            acc[t][1] = b1;
        }
    }
    const float *xr[MR];
#pragma GCC unroll 16
    for (int t = 0; t < mrt; t++)
        xr[t] = x + t * ldx;
    for (int64_t k = 0; k < kc; k++) {
        vec_t w0 = v_load(panel + k * NR), w1 = v_load(panel + k * NR + VW);
#pragma GCC unroll 16
        for (int t = 0; t < mrt; t++) {
            vec_t b = v_set1(xr[t][k]);
            acc[t][0] = v_fma(w0, b, acc[t][0]);
            acc[t][1] = v_fma(w1, b, acc[t][1]);
        }
    }
#pragma GCC unroll 16
    for (int t = 0; t < mrt; t++) {
        if (n0 == VW)
            v_store(c + t * ldc, acc[t][0]);
        else
            v_store_n(c + t * ldc, acc[t][0], n0);
        if (n1 >= VW)
            v_store(c + t * ldc + VW, acc[t][1]);
        else if (n1 > 0)
            v_store_n(c + t * ldc + VW, acc[t][1], n1);
    }
}

static void k_gemm_panel(int64_t n_tok, const float *x, int64_t ldx, const float *panel, int64_t kc,
                         float *c, int64_t ldc, int n_rows, int accumulate, const float *bias) {
    int64_t t = 0;
    for (; t + MR <= n_tok; t += MR)
        ukernel(MR, x + t * ldx, ldx, panel, kc, c + t * ldc, ldc, n_rows, accumulate, bias);
    x += t * ldx;
    c += t * ldc;
    switch (n_tok - t) {
    case 0:
        break;
    case 1:
        ukernel(1, x, ldx, panel, kc, c, ldc, n_rows, accumulate, bias);
        break;
    case 2:
        ukernel(2, x, ldx, panel, kc, c, ldc, n_rows, accumulate, bias);
        break;
    case 3:
        ukernel(3, x, ldx, panel, kc, c, ldc, n_rows, accumulate, bias);
        break;
    case 4:
        ukernel(4, x, ldx, panel, kc, c, ldc, n_rows, accumulate, bias);
        break;
    case 5:
        ukernel(5, x, ldx, panel, kc, c, ldc, n_rows, accumulate, bias);
        break;
#if MR > 6
    case 6:
        ukernel(6, x, ldx, panel, kc, c, ldc, n_rows, accumulate, bias);
        break;
    case 7:
        ukernel(7, x, ldx, panel, kc, c, ldc, n_rows, accumulate, bias);
        break;
#endif
    default:
        SYM_ASSERT(0 && "gemm tail");
    }
}

/* ---- conversions ----------------------------------------------------------------------------- */

AI void to_f32_dt(const sym_dtype dt, const void *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + VW <= n; i += VW)
        v_store(dst + i, load_dt(src, dt, i));
    if (i < n) v_store_n(dst + i, load_dt_n(src, dt, i, (int)(n - i)), (int)(n - i));
}

static void k_to_f32(const void *src, sym_dtype st, float *dst, int64_t n) {
    switch (st) {
    case SYM_DT_F16:
        to_f32_dt(SYM_DT_F16, src, dst, n);
        break;
    case SYM_DT_BF16:
        to_f32_dt(SYM_DT_BF16, src, dst, n);
        break;
    default:
        to_f32_dt(SYM_DT_F32, src, dst, n);
        break;
    }
}

AI void from_f32_dt(const sym_dtype dt, const float *src, void *dst, int64_t n) {
    int64_t i = 0;
    for (; i + VW <= n; i += VW)
        store_dt(dst, dt, i, v_load(src + i));
    if (i < n) store_dt_n(dst, dt, i, v_load_n(src + i, (int)(n - i)), (int)(n - i));
}

static void k_from_f32(const float *src, void *dst, sym_dtype dt, int64_t n) {
    switch (dt) {
    case SYM_DT_F16:
        from_f32_dt(SYM_DT_F16, src, dst, n);
        break;
    case SYM_DT_BF16:
        from_f32_dt(SYM_DT_BF16, src, dst, n);
        break;
    default:
        from_f32_dt(SYM_DT_F32, src, dst, n);
        break;
    }
}

/* ---- row ops --------------------------------------------------------------------------------- */

static float k_sumsq(const float *x, int64_t n) {
    vec_t a0 = v_zero(), a1 = v_zero(), a2 = v_zero(), a3 = v_zero();
    int64_t i = 0;
    for (; i + 4 * VW <= n; i += 4 * VW) {
        vec_t x0 = v_load(x + i), x1 = v_load(x + i + VW);
        vec_t x2 = v_load(x + i + 2 * VW), x3 = v_load(x + i + 3 * VW);
        a0 = v_fma(x0, x0, a0);
        a1 = v_fma(x1, x1, a1);
        a2 = v_fma(x2, x2, a2);
        a3 = v_fma(x3, x3, a3);
    }
    for (; i + VW <= n; i += VW) {
        vec_t x0 = v_load(x + i);
        a0 = v_fma(x0, x0, a0);
    }
    if (i < n) {
        vec_t x0 = v_load_n(x + i, (int)(n - i));
        a1 = v_fma(x0, x0, a1);
    }
    return v_hsum(v_add(v_add(a0, a1), v_add(a2, a3)));
}

AI void scale_mul_dt(const sym_dtype dt, float *out, const float *x, float scale, const void *w,
                     int64_t n) {
    vec_t s = v_set1(scale);
    int64_t i = 0;
    for (; i + VW <= n; i += VW)
        v_store(out + i, v_mul(v_mul(v_load(x + i), s), load_dt(w, dt, i)));
    if (i < n) {
        int m = (int)(n - i);
        v_store_n(out + i, v_mul(v_mul(v_load_n(x + i, m), s), load_dt_n(w, dt, i, m)), m);
    }
}

static void k_scale_mul(float *out, const float *x, float scale, const void *w, sym_dtype wt,
                        int64_t n) {
    switch (wt) {
    case SYM_DT_F16:
        scale_mul_dt(SYM_DT_F16, out, x, scale, w, n);
        break;
    case SYM_DT_BF16:
        scale_mul_dt(SYM_DT_BF16, out, x, scale, w, n);
        break;
    default:
        scale_mul_dt(SYM_DT_F32, out, x, scale, w, n);
        break;
    }
}

AI vec_t silu_mul_v(vec_t g, vec_t u) {
    vec_t e = v_exp(v_sub(v_zero(), g));
    return v_mul(v_div(g, v_add(v_set1(1.0f), e)), u);
}

static void k_silu_mul(float *out, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + VW <= n; i += VW)
        v_store(out + i, silu_mul_v(v_load(g + i), v_load(u + i)));
    if (i < n) {
        int m = (int)(n - i);
        v_store_n(out + i, silu_mul_v(v_load_n(g + i, m), v_load_n(u + i, m)), m);
    }
}

static void k_add(float *out, const float *a, const float *c, int64_t n) {
    int64_t i = 0;
    for (; i + VW <= n; i += VW)
        v_store(out + i, v_add(v_load(a + i), v_load(c + i)));
    if (i < n) {
        int m = (int)(n - i);
        v_store_n(out + i, v_add(v_load_n(a + i, m), v_load_n(c + i, m)), m);
    }
}

/* x[i] = exp(x[i] - mx) for i < n; returns the sum of the new values. */
AI float exp_sub_sum(float *x, int64_t n, float mx) {
    vec_t m = v_set1(mx), s0 = v_zero(), s1 = v_zero();
    int64_t i = 0;
    for (; i + 2 * VW <= n; i += 2 * VW) {
        vec_t e0 = v_exp(v_sub(v_load(x + i), m)), e1 = v_exp(v_sub(v_load(x + i + VW), m));
        v_store(x + i, e0);
        v_store(x + i + VW, e1);
        s0 = v_add(s0, e0);
        s1 = v_add(s1, e1);
    }
    for (; i + VW <= n; i += VW) {
        vec_t e = v_exp(v_sub(v_load(x + i), m));
        v_store(x + i, e);
        s0 = v_add(s0, e);
    }
    if (i < n) {
        int r = (int)(n - i);
        v_store_n(x + i, v_exp(v_sub(v_load_n(x + i, r), m)), r);
        s1 = v_add(s1, v_load_n(x + i, r)); /* reload: lanes >= r are zero */
    }
    return v_hsum(v_add(s0, s1));
}

AI float max_of(const float *x, int64_t n) {
    float mx = -INFINITY;
    int64_t i = 0;
    if (n >= VW) {
        vec_t m = v_load(x);
        for (i = VW; i + VW <= n; i += VW)
            m = v_max(m, v_load(x + i));
        mx = v_hmax(m);
    }
    for (; i < n; i++)
        mx = fmaxf(mx, x[i]);
    return mx;
}

static void k_softmax(float *x, int64_t n) {
    float sum = exp_sub_sum(x, n, max_of(x, n));
    vec_t s = v_set1(sum);
    int64_t i = 0;
    for (; i + VW <= n; i += VW)
        v_store(x + i, v_div(v_load(x + i), s));
    if (i < n) v_store_n(x + i, v_div(v_load_n(x + i, (int)(n - i)), s), (int)(n - i));
}

/* ---- attention ------------------------------------------------------------------------------- */

#define BLK SYM_CPU_ATTN_BLOCK
#define NCH (BLK / VW) /* vectors of positions per block */

AI void kt_block(const sym_dtype dt, const void *src, int64_t ld, int jb, int nj, int db, int nd,
                 float *kt) {
    vec_t r[VW];
    if (nj == VW && nd == VW) {
#pragma GCC unroll 16
        for (int j = 0; j < VW; j++)
            r[j] = load_dt(row_ptr(src, dt, jb + j, ld), dt, db);
        v_transpose(r);
#pragma GCC unroll 16
        for (int d = 0; d < VW; d++)
            v_store(kt + (int64_t)(db + d) * BLK + jb, r[d]);
        return;
    }
    for (int j = 0; j < VW; j++)
        r[j] = j < nj ? load_dt_n(row_ptr(src, dt, jb + j, ld), dt, db, nd) : v_zero();
    v_transpose(r);
    for (int d = 0; d < nd; d++)
        v_store(kt + (int64_t)(db + d) * BLK + jb, r[d]);
}

AI void attn_kt_dt(const sym_dtype dt, const void *src, int64_t ld, int n_p, int hd, float *kt) {
    for (int jb = 0; jb < BLK; jb += VW) {
        if (jb >= n_p) {
            for (int d = 0; d < hd; d++)
                v_store(kt + (int64_t)d * BLK + jb, v_zero());
            continue;
        }
        int nj = n_p - jb < VW ? n_p - jb : VW;
        for (int db = 0; db < hd; db += VW)
            kt_block(dt, src, ld, jb, nj, db, hd - db < VW ? hd - db : VW, kt);
    }
}

static void k_attn_kt(const void *src, sym_dtype st, int64_t ld, int n_p, int head_dim, float *kt) {
    switch (st) {
    case SYM_DT_F16:
        attn_kt_dt(SYM_DT_F16, src, ld, n_p, head_dim, kt);
        break;
    case SYM_DT_BF16:
        attn_kt_dt(SYM_DT_BF16, src, ld, n_p, head_dim, kt);
        break;
    default:
        attn_kt_dt(SYM_DT_F32, src, ld, n_p, head_dim, kt);
        break;
    }
}

/* s[j] = q . k_j for the whole block, NCH independent vectors of positions */
AI void attn_scores(const float *q, const float *kt, int hd, float *s) {
    vec_t acc[NCH];
#pragma GCC unroll 8
    for (int c = 0; c < NCH; c++)
        acc[c] = v_zero();
    for (int d = 0; d < hd; d++) {
        vec_t qd = v_set1(q[d]);
#pragma GCC unroll 8
        for (int c = 0; c < NCH; c++)
            acc[c] = v_fma(qd, v_load(kt + (int64_t)d * BLK + c * VW), acc[c]);
    }
#pragma GCC unroll 8
    for (int c = 0; c < NCH; c++)
        v_store(s + c * VW, acc[c]);
}

/* acc[d] = acc[d] * corr + sum_j p[j] * v[j][d]. Four vectors of d at a time stay in registers
 * over all positions: four independent FMA chains (one chain would wait on FMA latency). */
AI void accumulate_pv(float *acc, float corr, const float *p, int n_p, const float *v, int64_t ld_v,
                      int hd) {
    vec_t cr = v_set1(corr);
    int d = 0;
    for (; d + 4 * VW <= hd; d += 4 * VW) {
        vec_t a0 = v_mul(v_load(acc + d), cr), a1 = v_mul(v_load(acc + d + VW), cr);
        vec_t a2 = v_mul(v_load(acc + d + 2 * VW), cr), a3 = v_mul(v_load(acc + d + 3 * VW), cr);
        for (int j = 0; j < n_p; j++) {
            const float *vr = v + j * ld_v + d;
            vec_t pj = v_set1(p[j]);
            a0 = v_fma(pj, v_load(vr), a0);
            a1 = v_fma(pj, v_load(vr + VW), a1);
            a2 = v_fma(pj, v_load(vr + 2 * VW), a2);
            a3 = v_fma(pj, v_load(vr + 3 * VW), a3);
        }
        v_store(acc + d, a0);
        v_store(acc + d + VW, a1);
        v_store(acc + d + 2 * VW, a2);
        v_store(acc + d + 3 * VW, a3);
    }
    for (; d < hd; d += VW) {
        int m = hd - d < VW ? hd - d : VW;
        vec_t a0 = v_mul(v_load_n(acc + d, m), cr), a1 = v_zero();
        int j = 0;
        for (; j + 2 <= n_p; j += 2) {
            a0 = v_fma(v_set1(p[j]), v_load_n(v + j * ld_v + d, m), a0);
            a1 = v_fma(v_set1(p[j + 1]), v_load_n(v + (j + 1) * ld_v + d, m), a1);
        }
        if (j < n_p) a0 = v_fma(v_set1(p[j]), v_load_n(v + j * ld_v + d, m), a0);
        v_store_n(acc + d, v_add(a0, a1), m);
    }
}

static void k_attn_step(int n_q, const float *q, const int *lim, int head_dim, int p0, int n_p,
                        const float *kt, const float *vf, int64_t ld_v, float *m, float *l,
                        float *acc, float *s) {
    for (int qi = 0; qi < n_q; qi++) {
        int np = lim[qi] - p0 < n_p ? lim[qi] - p0 : n_p;
        if (np <= 0) continue;
        attn_scores(q + (int64_t)qi * head_dim, kt, head_dim, s);
        float m_new = fmaxf(m[qi], max_of(s, np));
        float corr = expf(m[qi] - m_new); /* 0 on the first block (m = -inf) */
        float sum = exp_sub_sum(s, np, m_new);
        l[qi] = l[qi] * corr + sum;
        m[qi] = m_new;
        accumulate_pv(acc + (int64_t)qi * head_dim, corr, s, np, vf, ld_v, head_dim);
    }
}

const sym_cpu_kernels KTABLE = {
    .isa = KISA,
    .nr = NR,
    .mr = MR,
    .gemv = k_gemv,
    .pack = k_pack,
    .gemm_panel = k_gemm_panel,
    .to_f32 = k_to_f32,
    .from_f32 = k_from_f32,
    .sumsq = k_sumsq,
    .scale_mul = k_scale_mul,
    .silu_mul = k_silu_mul,
    .add = k_add,
    .softmax = k_softmax,
    .attn_kt = k_attn_kt,
    .attn_step = k_attn_step,
};
