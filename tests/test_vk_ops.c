/* Every Vulkan kernel against the reference backend (cpu/ref.c) on fresh seeded random inputs of
 * awkward sizes, for each weight/cache dtype. Every device tensor sits between guard rows; the
 * whole allocation is poisoned with 0xff bytes (NaN in all three dtypes) before the op, and after
 * it the guards must still hold the poison and the interior must match the reference.
 *
 * Error measure: max |gpu - ref| / max |ref| over the tensor (NaN anywhere fails). Tolerances:
 *   exact (0): embed, store_rows, argmax (pure data movement / comparisons)
 *   1e-6: add, add_rows_scaled (one rounding, or a fused multiply-add, per element)
 *   1e-5: rmsnorm, matmul (all dtypes: both sides use the same rounded weights, so only the f32
 *         summation order differs), attention, silu_mul, softmax
 *   2e-5: rope (GPU sin/cos after exact range reduction)
 *   1e-3: f16/bf16 matmul with fp16 math (f16 products in matvec; activations rounded to f16
 *         for the tensor-core GEMM)
 *   Products over K > 1024 terms (matmul and the fused ops): the above times sqrt(K / 1024), as
 *   summation error grows (k_tol; a K = 16384 f16 product measured 1.01e-5 under one seed)
 * Fused ops (attn_in, ffn_in, matmul_add, norm_matmul) against their plain sequences
 * (infer/fused.c) run on the reference: 1e-5 like the products they contain (the norm factor is
 * applied after the dot product instead of before), f16/bf16 K/V cache rows 1e-3 / 8e-3 (one
 * rounding step of the cache type, since the f32 values before rounding may differ in the
 * last bit).
 * Suites: default options; no subgroups with 64-thread workgroups and descriptor pools instead
 * of push descriptors; a 96-thread (not a power of two) workgroup, 3 matvec rows per workgroup
 * and a 300 KiB binding limit so that the ops take their sliced paths (embedding table,
 * weight rows, token chunks, K/V positions, row chunks), with the mv kernels' rows split over 4
 * subgroups, which also take the plain products; fp16 math if offered (two mv rows per
 * subgroup).
 * Then error paths: impossible allocations, bad arguments (latched, reported by read), bad token
 * ids, and a Vulkan failure injected at every call of a short session.
 * Exit 77 only when there is no Vulkan device at all.
 */
#include "cpu/ref.h"
#include "infer/fused.h"
#include "test_util.h"
#include "vk/ops.h"
#include "vk/ops_impl.h"
#include "vk/probe.h"

#include "base/half.h"

#define GUARD 2 /* guard rows each side */

static sym_backend *g_ref;
static const char *g_suite = "";

/* ---- paired tensors: a reference host tensor and a guarded device view -------------------- */

typedef struct pair {
    sym_tensor h;     /* reference (host) */
    sym_tensor dfull; /* device allocation: GUARD + rows + GUARD */
    sym_tensor d;     /* the view the op sees */
} pair;

static void poison(sym_backend *vk, sym_tensor *full) {
    size_t n = sym_tensor_bytes(full);
    unsigned char *p = malloc(n);
    memset(p, 0xff, n);
    CHECK_OK(vk->ops->write(vk, full, p, n));
    free(p);
}

/* rows x cols of type; random values in [-scale, scale) (rounded to type) if r, else zeros. */
static void pair_make(sym_backend *vk, pair *p, sym_dtype type, int64_t cols, int64_t rows,
                      test_rng *r, float scale) {
    memset(p, 0, sizeof *p);
    CHECK_OK(g_ref->ops->alloc(g_ref, &p->h, type, cols, rows));
    if (r)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++)
                sym_ref_set(&p->h, i, j, test_rng_f32(r) * scale);
    CHECK_OK(vk->ops->alloc(vk, &p->dfull, type, cols, rows + 2 * GUARD));
    poison(vk, &p->dfull);
    p->d = sym_tensor_rows(&p->dfull, GUARD, rows);
    if (r) CHECK_OK(vk->ops->write(vk, &p->d, p->h.data, sym_tensor_bytes(&p->h)));
}

static void pair_free(sym_backend *vk, pair *p) {
    g_ref->ops->release(g_ref, &p->h);
    vk->ops->release(vk, &p->dfull);
}

/* Reads the device tensor back, checks the guards, compares with the reference. */
static double pair_check(sym_backend *vk, pair *p, double tol, const char *what) {
    size_t n = sym_tensor_bytes(&p->dfull), row = sym_tensor_bytes(&p->h) / (size_t)p->h.n_rows;
    unsigned char *buf = malloc(n);
    sym_status st = vk->ops->read(vk, &p->dfull, buf, n);
    CHECK(st == SYM_OK, "%s [%s]: read: %s %s", what, g_suite, sym_status_name(st),
          sym_last_error());
    if (st != SYM_OK) {
        free(buf);
        return INFINITY;
    }
    size_t gb = GUARD * row;
    int guards_ok = 1;
    for (size_t i = 0; i < gb; i++)
        if (buf[i] != 0xff || buf[n - 1 - i] != 0xff) guards_ok = 0;
    CHECK(guards_ok, "%s [%s]: a guard row was overwritten", what, g_suite);
    sym_tensor got = p->h;
    got.data = buf + gb;
    double max_ref = 0, max_err = 0;
    int bad = 0;
    for (int64_t i = 0; i < p->h.n_rows; i++)
        for (int64_t j = 0; j < p->h.n_cols; j++) {
            double r = sym_ref_get(&p->h, i, j), g = sym_ref_get(&got, i, j);
            if (isnan(g) != isnan(r) || isinf(g) != isinf(r)) {
                if (bad++ < 3)
                    CHECK(0, "%s [%s]: [%lld][%lld] = %g, reference %g", what, g_suite,
                          (long long)i, (long long)j, g, r);
                continue;
            }
            if (isnan(r) || isinf(r)) continue;
            if (fabs(r) > max_ref) max_ref = fabs(r);
            if (fabs(g - r) > max_err) max_err = fabs(g - r);
        }
    double err = max_ref > 0 ? max_err / max_ref : max_err;
    CHECK(!bad && err <= tol, "%s [%s]: relative error %.3g > %.3g (max |ref| %g)", what, g_suite,
          err, tol, max_ref);
    free(buf);
    return bad ? INFINITY : err;
}

static const sym_dtype k_types[] = {SYM_DT_F32, SYM_DT_F16, SYM_DT_BF16};

/* ---- ops ---------------------------------------------------------------------------------- */

static void test_embed(sym_backend *vk, test_rng *r) {
    for (int ti = 0; ti < 3; ti++) {
        static const int shapes[][3] = {{37, 1000, 7}, {5, 1, 1}, {300, 600, 40}};
        for (int s = 0; s < 3; s++) {
            int V = shapes[s][0], n = shapes[s][1], T = shapes[s][2];
            pair tab, out;
            pair_make(vk, &tab, k_types[ti], n, V, r, 2.0f);
            pair_make(vk, &out, SYM_DT_F32, n, T, NULL, 0);
            int32_t ids[64];
            for (int t = 0; t < T; t++)
                ids[t] = (int32_t)test_rng_below(r, (uint64_t)V);
            vk->ops->embed(vk, &out.d, &tab.d, ids, T);
            g_ref->ops->embed(g_ref, &out.h, &tab.h, ids, T);
            char what[96];
            snprintf(what, sizeof what, "embed %s V=%d n=%d T=%d", sym_dtype_name(k_types[ti]), V,
                     n, T);
            pair_check(vk, &out, 0.0, what);
            pair_free(vk, &tab);
            pair_free(vk, &out);
        }
    }
}

static void test_rmsnorm(sym_backend *vk, test_rng *r) {
    static const int shapes[][2] = {{1, 1}, {5, 129}, {2, 4097}};
    for (int ti = 0; ti < 3; ti++)
        for (int s = 0; s < 3; s++) {
            int T = shapes[s][0], n = shapes[s][1];
            pair x, w, out;
            pair_make(vk, &x, SYM_DT_F32, n, T, r, 3.0f);
            pair_make(vk, &w, k_types[ti], n, 1, r, 1.0f);
            pair_make(vk, &out, SYM_DT_F32, n, T, NULL, 0);
            vk->ops->rmsnorm(vk, &out.d, &x.d, &w.d, 1e-5f);
            g_ref->ops->rmsnorm(g_ref, &out.h, &x.h, &w.h, 1e-5f);
            char what[96];
            snprintf(what, sizeof what, "rmsnorm w=%s T=%d n=%d", sym_dtype_name(k_types[ti]), T,
                     n);
            pair_check(vk, &out, 1e-5, what);
            /* in place (out aliases x) */
            vk->ops->rmsnorm(vk, &x.d, &x.d, &w.d, 1e-5f);
            g_ref->ops->rmsnorm(g_ref, &x.h, &x.h, &w.h, 1e-5f);
            pair_check(vk, &x, 1e-5, "rmsnorm in place");
            pair_free(vk, &x);
            pair_free(vk, &w);
            pair_free(vk, &out);
        }
    /* a weight of ones (NULL: the norm folded into the next products) */
    for (int s = 0; s < 3; s++) {
        int T = shapes[s][0], n = shapes[s][1];
        pair x, out;
        pair_make(vk, &x, SYM_DT_F32, n, T, r, 3.0f);
        pair_make(vk, &out, SYM_DT_F32, n, T, NULL, 0);
        vk->ops->rmsnorm(vk, &out.d, &x.d, NULL, 1e-5f);
        g_ref->ops->rmsnorm(g_ref, &out.h, &x.h, NULL, 1e-5f);
        char what[96];
        snprintf(what, sizeof what, "rmsnorm w=ones T=%d n=%d", T, n);
        pair_check(vk, &out, 1e-5, what);
        pair_free(vk, &x);
        pair_free(vk, &out);
    }
}

/* scale_cols: w[r][i] * g[i] rounded to w's type, bit for bit the reference's rounding; rows
 * past the product of rows and columns a window holds take the sliced path (the small-window
 * suite). A check-only call (apply 0) first must write nothing (else the result is scaled
 * twice). An f16 matrix of odd rows is refused; one whose products overflow f16 is refused and
 * left as it was. */
static void test_scale_cols(sym_backend *vk, test_rng *r) {
    static const int shapes[][2] = {{1, 2}, {7, 258}, {33, 1002}, {700, 130}};
    static const sym_dtype wts[] = {SYM_DT_F32, SYM_DT_F16};
    for (int wi = 0; wi < 2; wi++)
        for (int gi = 0; gi < 3; gi++)
            for (int s = 0; s < 4; s++) {
                int R = shapes[s][0], n = shapes[s][1] + (wts[wi] == SYM_DT_F32 ? s % 2 : 0);
                pair w, g;
                pair_make(vk, &w, wts[wi], n, R, r, 2.0f);
                pair_make(vk, &g, k_types[gi], n, 1, r, 1.5f);
                CHECK_OK(vk->ops->scale_cols(vk, &w.d, &g.d, 0));
                CHECK_OK(vk->ops->scale_cols(vk, &w.d, &g.d, 1));
                for (int i = 0; i < R; i++)
                    for (int j = 0; j < n; j++)
                        sym_ref_set(&w.h, i, j, sym_ref_get(&w.h, i, j) * sym_ref_get(&g.h, 0, j));
                char what[96];
                snprintf(what, sizeof what, "scale_cols W=%s g=%s %dx%d",
                         sym_dtype_name(wts[wi]), sym_dtype_name(k_types[gi]), R, n);
                pair_check(vk, &w, 0.0, what);
                pair_free(vk, &w);
                pair_free(vk, &g);
            }
    pair w, g;
    pair_make(vk, &w, SYM_DT_F16, 5, 3, r, 1.0f);
    pair_make(vk, &g, SYM_DT_F32, 5, 1, r, 1.0f);
    sym_status st = vk->ops->scale_cols(vk, &w.d, &g.d, 1);
    CHECK(st == SYM_ERR_UNSUPPORTED, "scale_cols of odd f16 rows: %s", sym_status_name(st));
    pair_free(vk, &w);
    pair_free(vk, &g);
    /* |w| up to 2000 times |g| up to 60: beyond f16's 65504 somewhere */
    pair_make(vk, &w, SYM_DT_F16, 64, 9, r, 2000.0f);
    pair_make(vk, &g, SYM_DT_F32, 64, 1, r, 60.0f);
    st = vk->ops->scale_cols(vk, &w.d, &g.d, 1);
    CHECK(st == SYM_ERR_RANGE && strstr(sym_last_error(), "overflows"), "overflowing scale: %s: %s",
          sym_status_name(st), sym_last_error());
    pair_check(vk, &w, 0.0, "scale_cols refused: w unchanged");
    pair_free(vk, &w);
    pair_free(vk, &g);
}

/* Sums of K products in another order than the reference's: their rounding grows like sqrt(K),
 * so past 1024 terms the tolerance does too (K = 4104: twice; 16384: four times). */
static double k_tol(double tol, int K) { return K > 1024 ? tol * sqrt((double)K / 1024.0) : tol; }

static void test_matmul(sym_backend *vk, test_rng *r, double tol16) {
    /* T, K, N, bias: matvec (T <= 8) with the 16-byte path (K % 8 == 0) and the element path,
     * then GEMM shapes with edges in every dimension */
    static const int shapes[][4] = {{1, 1, 1, 0},     {1, 1000, 37, 1},  {3, 4104, 67, 0},
                                    {8, 257, 130, 1}, {1, 16384, 33, 0}, {2, 96, 300, 1},
                                    {9, 64, 70, 0},   {37, 1001, 65, 1}, {130, 520, 131, 0},
                                    {70, 8, 1, 1},    {130, 700, 40, 1}};
    for (int ti = 0; ti < 3; ti++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int T = shapes[s][0], K = shapes[s][1], N = shapes[s][2], has_bias = shapes[s][3];
            pair x, w, bias, out;
            pair_make(vk, &x, SYM_DT_F32, K, T, r, 1.0f);
            pair_make(vk, &w, k_types[ti], K, N, r, 1.0f);
            pair_make(vk, &bias, SYM_DT_F32, N, 1, r, 1.0f);
            pair_make(vk, &out, SYM_DT_F32, N, T, NULL, 0);
            vk->ops->matmul(vk, &out.d, &x.d, &w.d, has_bias ? &bias.d : NULL);
            g_ref->ops->matmul(g_ref, &out.h, &x.h, &w.h, has_bias ? &bias.h : NULL);
            char what[96];
            snprintf(what, sizeof what, "matmul %s T=%d K=%d N=%d bias=%d",
                     sym_dtype_name(k_types[ti]), T, K, N, has_bias);
            pair_check(vk, &out, k_tol(k_types[ti] != SYM_DT_F32 ? tol16 : 1e-5, K), what);
            pair_free(vk, &x);
            pair_free(vk, &w);
            pair_free(vk, &bias);
            pair_free(vk, &out);
        }
}

/* bf16 weights beyond f16's range must not take the f16 cooperative-matrix path. */
static void test_matmul_bf16_range(sym_backend *vk, test_rng *r) {
    pair x, w, out;
    pair_make(vk, &x, SYM_DT_F32, 96, 20, r, 1.0f);
    pair_make(vk, &w, SYM_DT_BF16, 96, 33, r, 1.0f);
    sym_ref_set(&w.h, 5, 7, 1.0e6f);
    CHECK_OK(vk->ops->write(vk, &w.d, w.h.data, sym_tensor_bytes(&w.h)));
    pair_make(vk, &out, SYM_DT_F32, 33, 20, NULL, 0);
    vk->ops->matmul(vk, &out.d, &x.d, &w.d, NULL);
    g_ref->ops->matmul(g_ref, &out.h, &x.h, &w.h, NULL);
    pair_check(vk, &out, 1e-5, "matmul bf16 with a value beyond f16");
    pair_free(vk, &x);
    pair_free(vk, &w);
    pair_free(vk, &out);
}

static void test_rope(sym_backend *vk, test_rng *r) {
    static const int cfg[][5] = {/* T, n_head, head_dim, pos0, neox */
                                 {1, 3, 6, 0, 0},
                                 {6, 2, 64, 4990, 1},
                                 {1, 4, 128, 777, 0},
                                 {3, 1, 2, 12345, 1}};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        int T = cfg[c][0], H = cfg[c][1], D = cfg[c][2], pos0 = cfg[c][3], neox = cfg[c][4];
        float fs = c % 2 ? 0.5f : 1.0f;
        pair x;
        pair_make(vk, &x, SYM_DT_F32, H * D + 3, T, r, 1.0f); /* 3 untouched columns */
        vk->ops->rope(vk, &x.d, H, D, pos0, 10000.0f, fs, neox);
        g_ref->ops->rope(g_ref, &x.h, H, D, pos0, 10000.0f, fs, neox);
        char what[96];
        snprintf(what, sizeof what, "rope T=%d H=%d D=%d pos0=%d neox=%d", T, H, D, pos0, neox);
        pair_check(vk, &x, 2e-5, what);
        pair_free(vk, &x);
    }
}

static void test_store_rows(sym_backend *vk, test_rng *r) {
    for (int ti = 0; ti < 3; ti++)
        for (int C = 7; C <= 64; C += 57) {
            pair cache, s1, s2;
            pair_make(vk, &cache, k_types[ti], C, 20, NULL, 0);
            poison(vk, &cache.dfull);
            /* the reference cache starts poisoned too: untouched rows must stay so */
            memset(cache.h.data, 0xff, sym_tensor_bytes(&cache.h));
            pair_make(vk, &s1, SYM_DT_F32, C, 3, r, 100.0f);
            pair_make(vk, &s2, SYM_DT_F32, C, 1, r, 1e-6f); /* f16 subnormals */
            /* adjacent rows in one batch: with odd C they share a 32-bit word */
            vk->ops->store_rows(vk, &cache.d, 4, &s1.d);
            vk->ops->store_rows(vk, &cache.d, 7, &s2.d);
            vk->ops->store_rows(vk, &cache.d, 19, &s2.d);
            g_ref->ops->store_rows(g_ref, &cache.h, 4, &s1.h);
            g_ref->ops->store_rows(g_ref, &cache.h, 7, &s2.h);
            g_ref->ops->store_rows(g_ref, &cache.h, 19, &s2.h);
            /* bit-exact, poison included; then the guard rows */
            size_t n = sym_tensor_bytes(&cache.h);
            unsigned char *buf = malloc(n);
            CHECK_OK(vk->ops->read(vk, &cache.d, buf, n));
            CHECK(!memcmp(buf, cache.h.data, n), "store_rows %s C=%d [%s]: not bit-exact",
                  sym_dtype_name(k_types[ti]), C, g_suite);
            free(buf);
            pair_check(vk, &cache, 0.0, "store_rows");
            pair_free(vk, &cache);
            pair_free(vk, &s1);
            pair_free(vk, &s2);
        }
}

/* tol_f16: the tolerance with an f16 cache (tensor-core prefill attention rounds queries and
 * probabilities to f16 where the backend takes f16 activations); 1e-5 otherwise. */
static void test_attention(sym_backend *vk, test_rng *r, double tol_f16) {
    static const int cfg[][5] = {/* T, n_head, n_head_kv, head_dim, pos0 */
                                 {1, 4, 4, 64, 0},     {1, 8, 2, 64, 300},  {3, 6, 3, 32, 17},
                                 {4, 2, 1, 128, 1000}, {1, 16, 1, 8, 2000}, {5, 4, 2, 64, 0},
                                 {37, 4, 1, 32, 10},   {70, 2, 2, 80, 3},   {17, 3, 3, 6, 40},
                                 /* attn_prefill_rt: D % 4 == 0, <= 128 (128 needs 38 KiB of
                                  * shared memory: attn_prefill on lavapipe) */
                                 {65, 2, 1, 64, 0},    {33, 2, 2, 4, 7},    {100, 4, 2, 128, 50},
                                 /* attn_prefill_tc: D % 16 == 0, <= 128, 64 tokens a block */
                                 {64, 2, 2, 128, 0},   {130, 2, 1, 16, 0},  {150, 4, 2, 64, 33}};
    for (int ti = 0; ti < 3; ti++)
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
            int T = cfg[c][0], H = cfg[c][1], HKV = cfg[c][2], D = cfg[c][3], pos0 = cfg[c][4];
            int n_ctx = pos0 + T + 5; /* rows past pos0 + T stay poisoned (NaN) */
            pair q, k, v, out;
            pair_make(vk, &q, SYM_DT_F32, H * D, T, r, 1.0f);
            pair_make(vk, &k, k_types[ti], HKV * D, n_ctx, NULL, 0);
            pair_make(vk, &v, k_types[ti], HKV * D, n_ctx, NULL, 0);
            pair_make(vk, &out, SYM_DT_F32, H * D, T, NULL, 0);
            for (int64_t i = 0; i < pos0 + T; i++)
                for (int64_t j = 0; j < HKV * D; j++) {
                    sym_ref_set(&k.h, i, j, 2.0f * test_rng_f32(r));
                    sym_ref_set(&v.h, i, j, test_rng_f32(r));
                }
            size_t valid = (size_t)(pos0 + T) * (size_t)(HKV * D) * sym_dtype_size(k_types[ti]);
            CHECK_OK(vk->ops->write(vk, &k.d, k.h.data, valid));
            CHECK_OK(vk->ops->write(vk, &v.d, v.h.data, valid));
            float scale = 1.0f / sqrtf((float)D);
            vk->ops->attention(vk, &out.d, &q.d, &k.d, &v.d, H, HKV, D, pos0, scale);
            g_ref->ops->attention(g_ref, &out.h, &q.h, &k.h, &v.h, H, HKV, D, pos0, scale);
            char what[112];
            snprintf(what, sizeof what, "attention %s T=%d H=%d HKV=%d D=%d pos0=%d",
                     sym_dtype_name(k_types[ti]), T, H, HKV, D, pos0);
            pair_check(vk, &out, k_types[ti] == SYM_DT_F16 ? tol_f16 : 1e-5, what);
            pair_free(vk, &q);
            pair_free(vk, &k);
            pair_free(vk, &v);
            pair_free(vk, &out);
        }
}

static void test_elementwise(sym_backend *vk, test_rng *r) {
    static const int shapes[][2] = {{1, 1}, {3, 1001}, {2, 4096}};
    for (int s = 0; s < 3; s++) {
        int T = shapes[s][0], n = shapes[s][1];
        pair a, c, out;
        pair_make(vk, &a, SYM_DT_F32, n, T, r, 8.0f);
        pair_make(vk, &c, SYM_DT_F32, n, T, r, 8.0f);
        pair_make(vk, &out, SYM_DT_F32, n, T, NULL, 0);
        vk->ops->silu_mul(vk, &out.d, &a.d, &c.d);
        g_ref->ops->silu_mul(g_ref, &out.h, &a.h, &c.h);
        pair_check(vk, &out, 1e-5, "silu_mul");
        vk->ops->add(vk, &out.d, &a.d, &c.d);
        g_ref->ops->add(g_ref, &out.h, &a.h, &c.h);
        pair_check(vk, &out, 1e-6, "add");
        /* aliasing: out = gate, then out = a */
        vk->ops->silu_mul(vk, &a.d, &a.d, &c.d);
        g_ref->ops->silu_mul(g_ref, &a.h, &a.h, &c.h);
        vk->ops->add(vk, &a.d, &a.d, &c.d);
        g_ref->ops->add(g_ref, &a.h, &a.h, &c.h);
        pair_check(vk, &a, 1e-5, "silu_mul + add in place");
        pair_free(vk, &a);
        pair_free(vk, &c);
        pair_free(vk, &out);
    }
}

/* set_cols: a block of columns written or accumulated; the columns outside it keep their values
 * (out starts random, not poisoned, so an op that clobbers them fails). */
static void test_set_cols(sym_backend *vk, test_rng *r) {
    static const int shapes[][4] = {{1, 7, 3, 2}, {5, 300, 77, 101}, {33, 1000, 999, 1}, {3, 64, 0, 64}};
    for (int s = 0; s < 4; s++) {
        int T = shapes[s][0], n = shapes[s][1], w = shapes[s][2] ? shapes[s][2] : n,
            c0 = shapes[s][3] % (n - w + 1);
        for (int acc = 0; acc < 2; acc++) {
            pair out, src;
            pair_make(vk, &out, SYM_DT_F32, n, T, r, 3.0f);
            pair_make(vk, &src, SYM_DT_F32, w, T, r, 3.0f);
            vk->ops->set_cols(vk, &out.d, c0, &src.d, acc);
            g_ref->ops->set_cols(g_ref, &out.h, c0, &src.h, acc);
            char what[80];
            snprintf(what, sizeof what, "set_cols %dx%d cols %d..%d%s", T, n, c0, c0 + w,
                     acc ? " (+=)" : "");
            pair_check(vk, &out, acc ? 1e-6 : 0.0, what);
            pair_free(vk, &out);
            pair_free(vk, &src);
        }
    }
}

/* n strictly increasing rows out of [0, n_rows) (selection sampling). */
static void random_rows(test_rng *r, int n_rows, int n, int32_t *rows) {
    for (int i = 0, k = 0; i < n_rows && k < n; i++)
        if (test_rng_below(r, (uint64_t)(n_rows - i)) < (uint64_t)(n - k)) rows[k++] = i;
}

static void test_add_rows_scaled(sym_backend *vk, test_rng *r) {
    /* out rows, columns, entries: single element, every row, sparse, a slice per binding */
    static const int shapes[][3] = {
        {1, 1, 1}, {5, 4096, 5}, {7, 129, 3}, {64, 1001, 20}, {300, 1000, 151}};
    for (int s = 0; s < 5; s++) {
        int R = shapes[s][0], n = shapes[s][1], N = shapes[s][2];
        pair out, a;
        pair_make(vk, &out, SYM_DT_F32, n, R, r, 4.0f);
        pair_make(vk, &a, SYM_DT_F32, n, N, r, 4.0f);
        int32_t *rows = malloc((size_t)N * sizeof *rows);
        float *scales = malloc((size_t)N * sizeof *scales);
        random_rows(r, R, N, rows);
        for (int i = 0; i < N; i++)
            scales[i] = i == N / 2 ? 0.0f : 2.0f * test_rng_f32(r);
        vk->ops->add_rows_scaled(vk, &out.d, &a.d, rows, scales);
        g_ref->ops->add_rows_scaled(g_ref, &out.h, &a.h, rows, scales);
        char what[96];
        snprintf(what, sizeof what, "add_rows_scaled rows=%d n=%d entries=%d", R, n, N);
        pair_check(vk, &out, 1e-6, what);
        free(rows);
        free(scales);
        pair_free(vk, &out);
        pair_free(vk, &a);
    }
    /* rows not increasing, or out of range: latched SYM_ERR_ARG, nothing written */
    pair out, a;
    pair_make(vk, &out, SYM_DT_F32, 3, 4, r, 1.0f);
    pair_make(vk, &a, SYM_DT_F32, 3, 2, r, 1.0f);
    static const int32_t bad[][2] = {{2, 1}, {1, 1}, {0, 4}, {-1, 0}};
    const float sc[2] = {1.0f, 1.0f};
    for (int i = 0; i < 4; i++) {
        vk->ops->add_rows_scaled(vk, &out.d, &a.d, bad[i], sc);
        sym_status st = vk->ops->sync(vk);
        CHECK(st == SYM_ERR_ARG && strstr(sym_last_error(), "add_rows_scaled"),
              "bad rows %d %d: %s: %s", bad[i][0], bad[i][1], sym_status_name(st),
              sym_last_error());
    }
    pair_check(vk, &out, 0.0, "add_rows_scaled refused");
    pair_free(vk, &out);
    pair_free(vk, &a);
}

static void test_softmax_argmax(sym_backend *vk, test_rng *r) {
    static const int shapes[][2] = {{1, 1}, {4, 5}, {3, 3000}, {2, 70001}};
    for (int s = 0; s < 4; s++) {
        int T = shapes[s][0], n = shapes[s][1];
        pair x, am;
        pair_make(vk, &x, SYM_DT_F32, n, T, r, 10.0f);
        pair_make(vk, &am, SYM_DT_F32, 1, T, NULL, 0);
        if (n > 4) { /* a tie for the maximum (the first must win) and a NaN */
            float big = 50.0f;
            int i0 = (int)test_rng_below(r, (uint64_t)n / 2),
                i1 = i0 + 1 + (int)test_rng_below(r, (uint64_t)n / 2 - 1);
            sym_ref_set(&x.h, 0, i1, big);
            sym_ref_set(&x.h, 0, i0, big);
            sym_ref_set(&x.h, T - 1, (int64_t)test_rng_below(r, (uint64_t)n), NAN);
            CHECK_OK(vk->ops->write(vk, &x.d, x.h.data, sym_tensor_bytes(&x.h)));
        }
        vk->ops->argmax(vk, &am.d, &x.d);
        g_ref->ops->argmax(g_ref, &am.h, &x.h);
        char what[64];
        snprintf(what, sizeof what, "argmax T=%d n=%d", T, n);
        pair_check(vk, &am, 0.0, what);
        if (n > 4) { /* softmax of a row with NaN is NaN in both; keep the test to finite rows */
            sym_ref_set(&x.h, T - 1, 0, 0.0f);
            for (int64_t j = 0; j < n; j++)
                if (isnan(sym_ref_get(&x.h, T - 1, j))) sym_ref_set(&x.h, T - 1, j, 1.0f);
            CHECK_OK(vk->ops->write(vk, &x.d, x.h.data, sym_tensor_bytes(&x.h)));
        }
        vk->ops->softmax(vk, &x.d);
        g_ref->ops->softmax(g_ref, &x.h);
        snprintf(what, sizeof what, "softmax T=%d n=%d", T, n);
        pair_check(vk, &x, 1e-5, what);
        pair_free(vk, &x);
        pair_free(vk, &am);
    }
}

/* topk against the reference, exactly: rows of awkward lengths (one workgroup's slice, a few,
 * a vocabulary, more keys to merge than one sort holds), values from a few levels (ties, broken
 * by the lower index), NaN, -0 and +0, a row with fewer non-NaN values than k, and an all-NaN
 * row; outputs poisoned first. (Rows stay under 300 KiB: one suite limits bindings to that.) */
static void test_topk(sym_backend *vk, test_rng *r) {
    static const int shapes[][2] = {{1, 1},      {7, 5},      {2000, 40},   {2049, 64},
                                    {32000, 40}, {40001, 50}, {70001, 128}, {300, 128}};
    for (int s = 0; s < 8; s++) {
        int n = shapes[s][0], k = shapes[s][1];
        pair x, out;
        pair_make(vk, &x, SYM_DT_F32, n, 1, r, 10.0f);
        pair_make(vk, &out, SYM_DT_F32, 2 * k, 1, NULL, 0);
        for (int j = 0; j < n; j++) { /* a few levels: many ties */
            float v = sym_ref_get(&x.h, 0, j);
            if (s % 2) sym_ref_set(&x.h, 0, j, floorf(v));
            if (test_rng_below(r, 50) == 0) sym_ref_set(&x.h, 0, j, NAN);
            if (test_rng_below(r, 97) == 0)
                sym_ref_set(&x.h, 0, j, test_rng_below(r, 2) ? -0.0f : 0.0f);
        }
        if (s == 7) /* fewer non-NaN values than k */
            for (int j = 0; j < n; j++)
                if (j % 5) sym_ref_set(&x.h, 0, j, NAN);
        if (s == 0) sym_ref_set(&x.h, 0, 0, NAN); /* none at all */
        CHECK_OK(vk->ops->write(vk, &x.d, x.h.data, sym_tensor_bytes(&x.h)));
        vk->ops->topk(vk, &out.d, &x.d, k);
        g_ref->ops->topk(g_ref, &out.h, &x.h, k);
        char what[64];
        snprintf(what, sizeof what, "topk n=%d k=%d", n, k);
        pair_check(vk, &out, 0.0, what);
        pair_free(vk, &x);
        pair_free(vk, &out);
    }
}

/* ---- fused ops: each against its plain sequence (infer/fused.c) on the reference backend ---- */

static double cache_tol(sym_dtype t) {
    return t == SYM_DT_F32 ? 1e-5 : t == SYM_DT_F16 ? 1e-3 : 8e-3;
}

static void test_attn_in(sym_backend *vk, test_rng *r, double tol16) {
    static const int cfg[][8] = {/* T, n_embd, n_head, n_head_kv, head_dim, pos0, neox, bias */
                                 {1, 1000, 4, 2, 64, 0, 0, 0},  {1, 256, 2, 2, 128, 37, 1, 1},
                                 {3, 257, 3, 1, 6, 5, 1, 0},    {8, 96, 8, 2, 8, 100, 0, 1},
                                 {2, 64, 2, 1, 32, 3000, 0, 0}, {11, 72, 4, 2, 16, 2, 1, 1},
                                 /* prefill shapes (tensor cores: x split once for Q, K, V) */
                                 {40, 256, 4, 2, 32, 0, 1, 1},  {70, 200, 5, 1, 40, 9, 0, 0}};
    for (int ti = 0; ti < 3; ti++)
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
            int T = cfg[c][0], n = cfg[c][1], H = cfg[c][2], HKV = cfg[c][3], D = cfg[c][4];
            int pos0 = cfg[c][5], neox = cfg[c][6], has_bias = cfg[c][7];
            sym_dtype wt = k_types[ti], nt = k_types[(ti + 1 + c) % 3];
            sym_dtype ct = c % 2 ? SYM_DT_F16 : k_types[(ti + c) % 3];
            int qd = H * D, kvd = HKV * D, n_ctx = pos0 + T + 3;
            pair x, g, wq, wk, wv, bq, bk, bv, q, kc, vc, xn, k, v;
            pair_make(vk, &x, SYM_DT_F32, n, T, r, 2.0f);
            pair_make(vk, &g, nt, n, 1, r, 1.5f);
            pair_make(vk, &wq, wt, n, qd, r, 1.0f);
            pair_make(vk, &wk, wt, n, kvd, r, 1.0f);
            pair_make(vk, &wv, wt, n, kvd, r, 1.0f);
            pair_make(vk, &bq, SYM_DT_F32, qd, 1, r, 1.0f);
            pair_make(vk, &bk, SYM_DT_F32, kvd, 1, r, 1.0f);
            pair_make(vk, &bv, SYM_DT_F32, kvd, 1, r, 1.0f);
            pair_make(vk, &q, SYM_DT_F32, qd, T, NULL, 0);
            pair_make(vk, &kc, ct, kvd, n_ctx, NULL, 0);
            pair_make(vk, &vc, ct, kvd, n_ctx, NULL, 0);
            pair_make(vk, &xn, SYM_DT_F32, n, T, NULL, 0);
            pair_make(vk, &k, SYM_DT_F32, kvd, T, NULL, 0);
            pair_make(vk, &v, SYM_DT_F32, kvd, T, NULL, 0);
            /* rows of the caches the op does not write stay poisoned (NaN) on both sides */
            memset(kc.h.data, 0xff, sym_tensor_bytes(&kc.h));
            memset(vc.h.data, 0xff, sym_tensor_bytes(&vc.h));
            sym_attn_in_args a = {.eps = 1e-5f,
                                  .n_head = H,
                                  .n_head_kv = HKV,
                                  .head_dim = D,
                                  .pos0 = pos0,
                                  .theta = 10000.0f,
                                  .freq_scale = c % 2 ? 0.5f : 1.0f,
                                  .neox = neox};
            sym_attn_in_args ad = a, ah = a;
            int unit = c % 3 == 1; /* the norm folded into the weights: NULL */
            ad.x = &x.d, ad.norm = unit ? NULL : &g.d, ad.wq = &wq.d, ad.wk = &wk.d, ad.wv = &wv.d;
            ad.bq = has_bias ? &bq.d : NULL, ad.bk = has_bias ? &bk.d : NULL;
            ad.bv = has_bias ? &bv.d : NULL;
            ad.q = &q.d, ad.k_cache = &kc.d, ad.v_cache = &vc.d, ad.xn = &xn.d, ad.k = &k.d,
            ad.v = &v.d;
            ah.x = &x.h, ah.norm = unit ? NULL : &g.h, ah.wq = &wq.h, ah.wk = &wk.h, ah.wv = &wv.h;
            ah.bq = has_bias ? &bq.h : NULL, ah.bk = has_bias ? &bk.h : NULL;
            ah.bv = has_bias ? &bv.h : NULL;
            ah.q = &q.h, ah.k_cache = &kc.h, ah.v_cache = &vc.h, ah.xn = &xn.h, ah.k = &k.h,
            ah.v = &v.h;
            vk->ops->attn_in(vk, &ad);
            sym_fused_attn_in(g_ref, &ah);
            char what[160];
            snprintf(what, sizeof what,
                     "attn_in W=%s norm=%s cache=%s T=%d n=%d H=%d/%d D=%d pos0=%d neox=%d bias=%d",
                     sym_dtype_name(wt), unit ? "ones" : sym_dtype_name(nt), sym_dtype_name(ct), T, n, H, HKV, D,
                     pos0, neox, has_bias);
            double tq = k_tol(wt != SYM_DT_F32 ? tol16 : 1e-5, n); /* sums of n_embd terms */
            pair_check(vk, &q, tq, what);
            pair_check(vk, &kc, cache_tol(ct) > tq ? cache_tol(ct) : tq, what);
            pair_check(vk, &vc, cache_tol(ct) > tq ? cache_tol(ct) : tq, what);
            pair *all[] = {&x, &g, &wq, &wk, &wv, &bq, &bk, &bv, &q, &kc, &vc, &xn, &k, &v};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                pair_free(vk, all[i]);
        }
}

static void test_ffn_in(sym_backend *vk, test_rng *r, double tol16) {
    /* (a single output of a short row can be all cancellation: the relative measure needs
     * several outputs to see the scale) */
    static const int shapes[][3] = {
        {1, 1000, 37}, {3, 257, 130}, {8, 64, 300}, {12, 96, 40}, {1, 8, 24},
        {40, 256, 200}, {70, 136, 90}}; /* the last two: prefill (x split once on tensor cores) */
    for (int ti = 0; ti < 3; ti++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int T = shapes[s][0], K = shapes[s][1], F = shapes[s][2];
            sym_dtype wt = k_types[ti], nt = k_types[(ti + s) % 3];
            pair x, g, wg, wu, out, xn, up;
            pair_make(vk, &x, SYM_DT_F32, K, T, r, 2.0f);
            pair_make(vk, &g, nt, K, 1, r, 1.5f);
            pair_make(vk, &wg, wt, K, F, r, 1.0f);
            pair_make(vk, &wu, wt, K, F, r, 1.0f);
            pair_make(vk, &out, SYM_DT_F32, F, T, NULL, 0);
            pair_make(vk, &xn, SYM_DT_F32, K, T, NULL, 0);
            pair_make(vk, &up, SYM_DT_F32, F, T, NULL, 0);
            int unit = s % 2 == 1; /* the norm folded into the weights: NULL */
            vk->ops->ffn_in(vk, &out.d, &x.d, unit ? NULL : &g.d, 1e-5f, &wg.d, &wu.d, &xn.d,
                            &up.d);
            sym_fused_ffn_in(g_ref, &out.h, &x.h, unit ? NULL : &g.h, 1e-5f, &wg.h, &wu.h, &xn.h,
                             &up.h);
            char what[112];
            snprintf(what, sizeof what, "ffn_in W=%s norm=%s T=%d K=%d F=%d", sym_dtype_name(wt),
                     unit ? "ones" : sym_dtype_name(nt), T, K, F);
            pair_check(vk, &out, k_tol(wt != SYM_DT_F32 ? tol16 : 1e-5, K), what);
            pair *all[] = {&x, &g, &wg, &wu, &out, &xn, &up};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                pair_free(vk, all[i]);
        }
}

/* matmul_add and norm_matmul: decode (mv) and GEMM shapes, awkward sizes. */
static void test_matmul_fused(sym_backend *vk, test_rng *r, double tol16) {
    static const int shapes[][3] = {
        {1, 4104, 67}, {5, 257, 33}, {8, 1000, 1001}, {20, 520, 131}, {1, 1, 1}};
    for (int ti = 0; ti < 3; ti++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int T = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
            sym_dtype wt = k_types[ti], nt = k_types[(ti + s + 1) % 3];
            pair x, w, out, tmp, g, xn;
            pair_make(vk, &x, SYM_DT_F32, K, T, r, 1.0f);
            pair_make(vk, &w, wt, K, N, r, 1.0f);
            pair_make(vk, &out, SYM_DT_F32, N, T, r, 4.0f); /* the residual */
            pair_make(vk, &tmp, SYM_DT_F32, N, T, NULL, 0);
            pair_make(vk, &g, nt, K, 1, r, 1.5f);
            pair_make(vk, &xn, SYM_DT_F32, K, T, NULL, 0);
            double tol = k_tol(wt != SYM_DT_F32 ? tol16 : 1e-5, K);
            char what[112];
            /* twice in one batch: the second adds to the first's result */
            for (int rep = 0; rep < 2; rep++) {
                vk->ops->matmul_add(vk, &out.d, &x.d, &w.d, &tmp.d);
                sym_fused_matmul_add(g_ref, &out.h, &x.h, &w.h, &tmp.h);
            }
            snprintf(what, sizeof what, "matmul_add W=%s T=%d K=%d N=%d", sym_dtype_name(wt), T, K,
                     N);
            pair_check(vk, &out, tol, what);
            vk->ops->norm_matmul(vk, &out.d, &x.d, &g.d, 1e-5f, &w.d, &xn.d);
            sym_fused_norm_matmul(g_ref, &out.h, &x.h, &g.h, 1e-5f, &w.h, &xn.h);
            snprintf(what, sizeof what, "norm_matmul W=%s norm=%s T=%d K=%d N=%d",
                     sym_dtype_name(wt), sym_dtype_name(nt), T, K, N);
            pair_check(vk, &out, tol, what);
            pair *all[] = {&x, &w, &out, &tmp, &g, &xn};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                pair_free(vk, all[i]);
        }
}

/* Decode attention twice in one batch over a long context: the one-dispatch kernel's counters
 * must be reset by the first dispatch for the second to combine its chunks. */
static void test_attention_repeat(sym_backend *vk, test_rng *r) {
    int H = 8, HKV = 2, D = 64, pos0 = 700, n_ctx = pos0 + 2;
    pair q, k, v, o1, o2;
    pair_make(vk, &q, SYM_DT_F32, H * D, 1, r, 1.0f);
    pair_make(vk, &k, SYM_DT_F16, HKV * D, n_ctx, r, 2.0f);
    pair_make(vk, &v, SYM_DT_F16, HKV * D, n_ctx, r, 1.0f);
    pair_make(vk, &o1, SYM_DT_F32, H * D, 1, NULL, 0);
    pair_make(vk, &o2, SYM_DT_F32, H * D, 1, NULL, 0);
    float scale = 0.125f;
    vk->ops->attention(vk, &o1.d, &q.d, &k.d, &v.d, H, HKV, D, pos0, scale);
    vk->ops->attention(vk, &o2.d, &q.d, &k.d, &v.d, H, HKV, D, pos0, scale);
    g_ref->ops->attention(g_ref, &o1.h, &q.h, &k.h, &v.h, H, HKV, D, pos0, scale);
    g_ref->ops->attention(g_ref, &o2.h, &q.h, &k.h, &v.h, H, HKV, D, pos0, scale);
    pair_check(vk, &o1, 1e-5, "attention, first of two");
    pair_check(vk, &o2, 1e-5, "attention, second of two");
    pair *all[] = {&q, &k, &v, &o1, &o2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pair_free(vk, all[i]);
}

static void run_suite(sym_backend *vk, test_rng *r, const char *name, double tol16) {
    g_suite = name;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int before = g_test_failures;
    test_embed(vk, r);
    test_rmsnorm(vk, r);
    test_scale_cols(vk, r);
    test_matmul(vk, r, tol16);
    test_matmul_bf16_range(vk, r);
    test_rope(vk, r);
    test_store_rows(vk, r);
    test_attention(vk, r, tol16); /* f16 activations: tensor-core prefill attention */
    test_elementwise(vk, r);
    test_softmax_argmax(vk, r);
    test_topk(vk, r);
    test_set_cols(vk, r);
    test_add_rows_scaled(vk, r);
    test_attn_in(vk, r, tol16);
    test_ffn_in(vk, r, tol16);
    test_matmul_fused(vk, r, tol16);
    test_attention_repeat(vk, r);
    CHECK_OK(vk->ops->sync(vk));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "suite %-40s %s (%.1f s)\n", name, g_test_failures == before ? "ok" : "FAILED",
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
}

/* ---- error paths -------------------------------------------------------------------------- */

/* probe_chain (bench_vk_sync): a chain of dependent products run as one dispatch with grid
 * barriers, and as one dispatch per product, against the host's f64 chain; on a device that
 * says how many multiprocessors it has, one workgroup on each (the barriers then synchronize
 * them), else one workgroup. */
static void test_probe_chain(sym_backend *vk) {
    g_suite = "probe_chain";
    const int sizes[2] = {264, 1032}, counts[2] = {5, 3};
    for (int i = 0; i < 4; i++) { /* fixed row blocks, then rows claimed from a counter */
        sym_vk_chain_probe pr;
        sym_status st =
            sym_vk_probe_chain(vk, sizes[i % 2], counts[i % 2], 0, 128, 3, i < 2 ? 0 : 4, &pr);
        if (st == SYM_ERR_UNSUPPORTED) return;
        CHECK_OK(st);
        CHECK(pr.persist_err <= 1e-5 && pr.split_err <= 1e-5,
              "chain of %d x %d^2 on %d groups, mode %d: errors %.3g (grid barriers) %.3g "
              "(dispatches)",
              counts[i % 2], sizes[i % 2], pr.n_groups, pr.mode, pr.persist_err, pr.split_err);
    }
}

/* probe_dchain (bench_vk_sync --dchain): a chain of dependent products, one dispatch each, with
 * pipeline barriers, with in-shader waits, and with the weights loaded before the wait, against
 * the host's f64 chain. The waits are checked on a CPU device only: lavapipe runs the dispatches
 * one by one, so what that checks is the arithmetic and the counters' targets; on an H100 the
 * in-shader waits read stale or missing data in some runs (docs/VULKAN.md, fifth session), which
 * is what the probe documents, not a defect to test for. */
static void test_probe_dchain(sym_backend *vk) {
    g_suite = "probe_dchain";
    const int sizes[2] = {264, 1032}, counts[2] = {5, 3}, wgs[2] = {64, 128}, rbs[2] = {3, 1};
    for (int i = 0; i < 2; i++) {
        sym_vk_dchain_probe pr;
        sym_status st = sym_vk_probe_dchain(vk, sizes[i], counts[i], wgs[i], rbs[i], 4, &pr);
        if (st == SYM_ERR_UNSUPPORTED) return;
        CHECK_OK(st);
        int cpu = sym_vkb_of(vk)->dev->caps.type == VK_PHYSICAL_DEVICE_TYPE_CPU;
        for (int m = 0; m < 6; m++)
            CHECK(m == 1 || (!cpu && m > 0) || pr.err[m] <= 1e-5,
                  "dispatch chain of %d x %d^2, wg %d, rb %d, mode %d: error %.3g", counts[i],
                  sizes[i], wgs[i], rbs[i], m, pr.err[m]);
    }
}

static void test_errors(sym_backend *vk) {
    g_suite = "errors";
    sym_tensor t;
    /* 2^40 bytes: beyond any allocation limit */
    sym_status st = vk->ops->alloc(vk, &t, SYM_DT_F32, 1 << 20, 1 << 18);
    CHECK(st == SYM_ERR_BUDGET || st == SYM_ERR_VULKAN, "huge alloc: %s", sym_status_name(st));
    CHECK(strlen(sym_last_error()) > 10, "huge alloc: no message");
    fprintf(stderr, "huge alloc -> %s: %s\n", sym_status_name(st), sym_last_error());
    CHECK_STATUS(vk->ops->alloc(vk, &t, SYM_DT_F32, 0, 5), SYM_ERR_ARG);

    /* a bad op is latched and reported by the next read; the backend keeps working */
    sym_tensor x, w, out;
    CHECK_OK(vk->ops->alloc(vk, &x, SYM_DT_F32, 8, 2));
    CHECK_OK(vk->ops->alloc(vk, &w, SYM_DT_F16, 9, 4)); /* n_in 9 != 8 */
    CHECK_OK(vk->ops->alloc(vk, &out, SYM_DT_F32, 4, 2));
    vk->ops->matmul(vk, &out, &x, &w, NULL);
    float host[8];
    st = vk->ops->read(vk, &out, host, sizeof host);
    CHECK(st == SYM_ERR_ARG && strstr(sym_last_error(), "matmul"), "latched: %s: %s",
          sym_status_name(st), sym_last_error());
    CHECK_OK(vk->ops->read(vk, &out, host, sizeof host));
    int32_t ids[2] = {0, 99};
    sym_tensor tab;
    CHECK_OK(vk->ops->alloc(vk, &tab, SYM_DT_F32, 8, 10));
    vk->ops->embed(vk, &x, &tab, ids, 2);
    CHECK_STATUS(vk->ops->sync(vk), SYM_ERR_RANGE);
    CHECK_OK(vk->ops->sync(vk));
    CHECK_STATUS(vk->ops->read(vk, &out, host, 1000), SYM_ERR_ARG);
    vk->ops->release(vk, &x);
    vk->ops->release(vk, &w);
    vk->ops->release(vk, &out);
    vk->ops->release(vk, &tab);
}

/* A short session (create, alloc, write, matmul, read) with the n-th Vulkan call failing, for
 * every n until a session completes: each must fail cleanly with SYM_ERR_VULKAN (or succeed). */
static void test_fault_injection(void) {
    g_suite = "fault injection";
    int n, completed = 0;
    for (n = 1; n < 200 && !completed; n++) {
        sym_vk_options o;
        sym_vk_options_init(&o);
        o.pipeline_cache_dir = "";
        sym_vk_debug_fail_after(n);
        sym_backend *b = NULL;
        sym_status st = sym_vk_backend_create(&o, &b);
        float host[6] = {1, 2, 3, 4, 5, 6}, res[2] = {0, 0};
        sym_tensor x = {0}, w = {0}, out = {0};
        if (st == SYM_OK) st = b->ops->load(b, &w, host, SYM_DT_F32, 3, 2);
        if (st == SYM_OK) st = b->ops->alloc(b, &x, SYM_DT_F32, 3, 1);
        if (st == SYM_OK) st = b->ops->alloc(b, &out, SYM_DT_F32, 2, 1);
        if (st == SYM_OK) st = b->ops->write(b, &x, host, 12);
        if (st == SYM_OK) {
            b->ops->matmul(b, &out, &x, &w, NULL);
            st = b->ops->read(b, &out, res, sizeof res);
        }
        sym_vk_debug_fail_after(0);
        if (st == SYM_OK) {
            CHECK(res[0] == 14 && res[1] == 32, "fault %d: wrong result %g %g", n, res[0], res[1]);
            completed = 1;
        } else {
            CHECK(st == SYM_ERR_VULKAN && strstr(sym_last_error(), "VK_ERROR_"),
                  "fault at call %d: %s: %s", n, sym_status_name(st), sym_last_error());
        }
        if (b) {
            b->ops->release(b, &x);
            b->ops->release(b, &w);
            b->ops->release(b, &out);
            b->ops->destroy(b);
        }
    }
    fprintf(stderr, "fault injection: %d failing sessions, then one that completed\n", n - 2);
    CHECK(completed, "no session completed");
}

int main(void) {
    test_rng r = test_rng_init("test_vk_ops");
    CHECK_OK(sym_ref_backend_create(&g_ref));
    sym_vk_options o;
    sym_vk_options_init(&o);
    o.pipeline_cache_dir = SYM_BUILD_DIR "/vk-cache";
    o.f32_gemm_act = 1; /* the 1e-5 suites: f32 activations on tensor cores too (hi + lo) */
    sym_backend *vk = NULL;
    sym_status st = sym_vk_backend_create(&o, &vk);
    if (st == SYM_ERR_NO_DEVICE) {
        fprintf(stderr, "test_vk_ops: no Vulkan device (%s): skipped\n", sym_last_error());
        g_ref->ops->destroy(g_ref);
        return TEST_SKIP;
    }
    CHECK_OK(st);
    if (st != SYM_OK) return test_finish("test_vk_ops");
    const sym_vk_caps *caps = sym_vk_backend_caps(vk);
    fprintf(stderr, "device: %s (%s), subgroup %u, coopmat %s\n", caps->name, caps->driver_name,
            caps->subgroup_size, sym_vk_backend_uses_coopmat(vk) ? "yes" : "no");
    int has_fp16 = caps->shader_float16 && caps->subgroup_arithmetic;
    int coop = sym_vk_backend_uses_coopmat(vk);
    run_suite(vk, &r, "default", 1e-5);
    test_probe_chain(vk);
    test_probe_dchain(vk);
    test_errors(vk);
    vk->ops->destroy(vk);

    o.use_subgroups = 0;
    o.workgroup_size = 64;
    o.force_descriptor_pool = 1;
    CHECK_OK(sym_vk_backend_create(&o, &vk));
    run_suite(vk, &r, "no subgroups, wg 64, descriptor pools", 1e-5);
    vk->ops->destroy(vk);

    sym_vk_options_init(&o);
    o.pipeline_cache_dir = SYM_BUILD_DIR "/vk-cache";
    o.f32_gemm_act = 1;
    o.workgroup_size = 96;
    o.matvec_rows = 3;
    o.mv_split = 4; /* groups of 4 of the 12 subgroups share each row group of the mv kernels */
    o.plain_matvec = -1; /* plain products on mv too */
    o.max_binding_bytes = 300 << 10;
    o.staging_bytes = 256 << 10;
    CHECK_OK(sym_vk_backend_create(&o, &vk));
    run_suite(vk, &r, "wg 96, 3 rows, 300 KiB bindings", 1e-5);
    sym_vk_cmd_stats stats;
    sym_vk_backend_stats(vk, &stats);
    CHECK(stats.n_early_flushes > 0, "a small staging ring should have flushed early");
    vk->ops->destroy(vk);

    if (has_fp16) {
        sym_vk_options_init(&o);
        o.pipeline_cache_dir = SYM_BUILD_DIR "/vk-cache";
        o.use_fp16_math = 1;
        o.profiling = 1;
        o.mv_split = 1; /* a subgroup per row group */
        o.matvec_rows = 2;
        CHECK_OK(sym_vk_backend_create(&o, &vk));
        run_suite(vk, &r, "fp16 math, profiling", 1e-3);
        sym_vk_profile_entry prof[SYM_VK_K_COUNT];
        int n = sym_vk_backend_profile(vk, prof, SYM_VK_K_COUNT);
        CHECK(n >= 10, "profile has %d kernels", n);
        int fused = 0;
        for (int i = 0; i < n; i++) {
            CHECK(prof[i].gpu_ms >= 0, "%s: negative time", prof[i].name);
            fused += !strcmp(prof[i].name, "mv_qkv") || !strcmp(prof[i].name, "mv_gate") ||
                     !strcmp(prof[i].name, "attn_decode_sg");
        }
        CHECK(fused == 3, "the fused decode kernels did not all run (%d of 3)", fused);
        vk->ops->destroy(vk);
    }

    if (coop) { /* f16 activations, as the engine runs by default: prefill attention on tensor
                 * cores (attn_prefill_tc) where the cache is f16 */
        sym_vk_options_init(&o);
        o.pipeline_cache_dir = SYM_BUILD_DIR "/vk-cache";
        CHECK_OK(sym_vk_backend_create(&o, &vk));
        g_suite = "f16 activations: attention";
        test_attention(vk, &r, 3e-3);
        vk->ops->destroy(vk);
    }

    if (coop) { /* every cooperative-matrix tile shape the benchmark compares, on the edge cases */
        static const int tiles[][6] = {{2, 2, 0, 4, 2, 4}, {2, 2, 1, 4, 2, 2}, {4, 4, 1, 4, 1, 1},
                                       {4, 2, 1, 8, 1, 2}, {2, 4, 2, 2, 2, 1}, {1, 1, 1, 6, 4, 2},
                                       {2, 2, 1, 4, 4, 2}, {4, 2, 1, 4, 2, 2}, {4, 2, 1, 4, 2, 4},
                                       {4, 2, 1, 8, 2, 4}, {2, 2, 1, 6, 2, 2}, {2, 4, 1, 8, 4, 2},
                                       /* results staged in a larger area than Ah's tile; 80
                                        * and 112 of K per step; 4 subgroups of 64 x 64 */
                                       {1, 1, 0, 2, 2, 4}, {4, 2, 1, 10, 2, 4}, {1, 1, 1, 14, 1, 1},
                                       {4, 4, 1, 8, 2, 2},
                                       /* 16 subgroups: the default with f16 activations */
                                       {1, 1, 1, 4, 4, 4}, {2, 2, 1, 8, 4, 4},
                                       /* the default with f32 activations (hi + lo) */
                                       {2, 2, 1, 6, 4, 4}};
        for (int t = 0; t < (int)(sizeof tiles / sizeof tiles[0]); t++) {
            sym_vk_options_init(&o);
            o.pipeline_cache_dir = SYM_BUILD_DIR "/vk-cache";
            memcpy(o.coop_tile, tiles[t], sizeof o.coop_tile);
            memcpy(o.coop_warps, tiles[t] + 4, sizeof o.coop_warps);
            o.f32_gemm_act = t % 2 == 0; /* odd tiles: f16 activations, the default */
            CHECK_OK(sym_vk_backend_create(&o, &vk));
            CHECK(sym_vk_backend_uses_coopmat(vk), "coopmat tile %d not used", t);
            char name[64];
            snprintf(name, sizeof name, "coopmat tile %d %d %d %d, subgroups %d x %d", tiles[t][0],
                     tiles[t][1], tiles[t][2], tiles[t][3], tiles[t][4], tiles[t][5]);
            g_suite = name;
            test_matmul(vk, &r, o.f32_gemm_act ? 1e-5 : 1e-3);
            CHECK_OK(vk->ops->sync(vk));
            vk->ops->destroy(vk);
        }
    }
    sym_vk_shutdown(); /* so that the first injected fault hits vkCreateInstance */
    test_fault_injection();
    sym_vk_shutdown();
    CHECK(sym_vk_validation_error_count() == 0, "%d validation errors",
          sym_vk_validation_error_count());
    g_ref->ops->destroy(g_ref);
    return test_finish("test_vk_ops");
}
