/* The fast CPU backend against the reference backend: every op, every ISA this CPU has
 * (generic, avx2, avx512) x 1, 2, 3 threads, on seeded random inputs of awkward sizes (1 row and
 * many; not multiples of 8/16/32; tiny and large). Outputs live in buffers with canary guard
 * bytes on both sides, prefilled with a NaN canary: the guards must survive and every output
 * element must be overwritten.
 *
 * Error measure: max |got - ref| / max |ref| over the output (relative to the result's scale).
 * Tolerances (TOL_*) are below; f16/bf16 weights and caches convert to f32 exactly, so they get
 * the f32 tolerances: only the order of f32 sums differs from the reference.
 */
#include <math.h>

#include "base/alloc.h"
#include "base/half.h"
#include "cpu/ops.h"
#include "cpu/ref.h"
#include "test_util.h"

#define TOL_MATMUL  2e-5 /* sums of up to ~5000 products in a different order (and FMA) */
#define TOL_RMSNORM 1e-6 /* + the reference's own error (below) */
#define TOL_ROPE    1e-6 /* same float expressions as ref: expected bit-exact */
#define TOL_ATTN    1e-5 /* online softmax (rescaled partial sums), vector exp ~1 ulp */
#define TOL_SILU    1e-6 /* vector exp ~1 ulp, then the same divide and multiply */
#define TOL_SOFTMAX 1e-6 /* + the reference's own error (below) */
/* add, add_rows_scaled, embed and store_rows must be bit-exact.
 * rmsnorm and softmax sum a whole row (up to ~40K terms) sequentially in f32 in the reference,
 * which costs it up to ~5e-5 on long rows; there the bound is TOL + e_ref, e_ref being the
 * reference's error against a double-precision evaluation, and we also require our own error
 * against that evaluation to be <= TOL. */

#define GUARD_BYTES 256
static const unsigned char k_canary[4] = {0xad, 0xdb, 0xba, 0x7f}; /* f32 0x7fbadbad: a NaN */

typedef struct cfg {
    sym_backend *b;
    char name[32];
} cfg;
static cfg g_cfg[3 * SYM_CPU_ISA_COUNT];
static int g_n_cfg;
static sym_backend *g_ref;
static double g_worst[16];
static char g_worst_name[16][24];

/* ---- guarded buffers ---- */

typedef struct gbuf {
    unsigned char *raw;
    size_t bytes;
} gbuf;

static void *gbuf_new(gbuf *g, size_t bytes) {
    g->bytes = bytes;
    g->raw = malloc(bytes + 2 * GUARD_BYTES);
    for (size_t i = 0; i < bytes + 2 * GUARD_BYTES; i++)
        g->raw[i] = k_canary[i & 3];
    return g->raw + GUARD_BYTES;
}

static int gbuf_guards_ok(const gbuf *g) {
    for (size_t i = 0; i < GUARD_BYTES; i++) {
        if (g->raw[i] != k_canary[i & 3]) return 0;
        size_t j = GUARD_BYTES + g->bytes + i;
        if (g->raw[j] != k_canary[j & 3]) return 0;
    }
    return 1;
}

static int64_t n_unwritten_f32(const float *p, int64_t n) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++)
        c += memcmp(&p[i], k_canary, 4) == 0;
    return c;
}

static sym_tensor tensor(sym_dtype t, int64_t n_cols, int64_t n_rows, void *data) {
    sym_tensor x = {.type = t, .n_cols = n_cols, .n_rows = n_rows, .data = data};
    return x;
}

static void fill(test_rng *r, sym_tensor *t, float amp) {
    for (int64_t i = 0; i < t->n_rows; i++)
        for (int64_t j = 0; j < t->n_cols; j++)
            sym_ref_set(t, i, j, amp * test_rng_f32(r));
}

static double rel_err(const float *got, const float *want, int64_t n) {
    double scale = 0, err = 0;
    for (int64_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs((double)want[i]));
        double e = fabs((double)got[i] - (double)want[i]);
        if (!(e <= err)) err = e; /* NaN-safe: a NaN makes err NaN */
    }
    return err / (scale > 0 ? scale : 1.0);
}

static double rel_err_exact(const float *got, const double *exact, int64_t n) {
    double scale = 0, err = 0;
    for (int64_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs(exact[i]));
        double e = fabs((double)got[i] - exact[i]);
        if (!(e <= err)) err = e;
    }
    return err / (scale > 0 ? scale : 1.0);
}

static void note(int op, const char *name, double err) {
    snprintf(g_worst_name[op], sizeof g_worst_name[op], "%.*s", (int)strcspn(name, " "), name);
    if (!(err <= g_worst[op])) g_worst[op] = err;
}

/* Checks a guarded f32 output of n elements against want. */
static void check_f32_exact(const char *what, const cfg *c, const gbuf *g, const float *got,
                            const float *want, int64_t n, double tol, int op, const double *exact,
                            double e_ref) {
    CHECK(gbuf_guards_ok(g), "%s [%s]: guard bytes overwritten", what, c->name);
    int64_t miss = n_unwritten_f32(got, n);
    CHECK(miss == 0, "%s [%s]: %lld of %lld outputs not written", what, c->name, (long long)miss,
          (long long)n);
    double e = rel_err(got, want, n);
    note(op, what, e);
    CHECK(e <= tol + e_ref, "%s [%s]: relative error %.3g > %.3g (+ %.3g, the reference's own)",
          what, c->name, e, tol, e_ref);
    if (exact) {
        double e_own = rel_err_exact(got, exact, n);
        CHECK(e_own <= tol, "%s [%s]: error %.3g against double precision > %.3g", what, c->name,
              e_own, tol);
    }
    CHECK_OK(c->b->ops->sync(c->b));
}

static void check_f32(const char *what, const cfg *c, const gbuf *g, const float *got,
                      const float *want, int64_t n, double tol, int op) {
    check_f32_exact(what, c, g, got, want, n, tol, op, NULL, 0.0);
}

/* ---- matmul ---- */

static void test_matmul(test_rng *r, sym_dtype wt, int64_t n_tok, int64_t n_in, int64_t n_out,
                        int with_bias) {
    char what[96];
    snprintf(what, sizeof what, "matmul %s tok %lld in %lld out %lld%s", sym_dtype_name(wt),
             (long long)n_tok, (long long)n_in, (long long)n_out, with_bias ? " +bias" : "");
    float *xd = malloc((size_t)(n_tok * n_in) * 4), *bd = malloc((size_t)n_out * 4);
    void *wd = malloc((size_t)(n_out * n_in) * sym_dtype_size(wt));
    float *want = malloc((size_t)(n_tok * n_out) * 4);
    sym_tensor x = tensor(SYM_DT_F32, n_in, n_tok, xd), w = tensor(wt, n_in, n_out, wd);
    sym_tensor bias = tensor(SYM_DT_F32, n_out, 1, bd),
               ref_out = tensor(SYM_DT_F32, n_out, n_tok, want);
    fill(r, &x, 1.0f);
    fill(r, &w, 1.0f);
    fill(r, &bias, 4.0f);
    g_ref->ops->matmul(g_ref, &ref_out, &x, &w, with_bias ? &bias : NULL);
    for (int i = 0; i < g_n_cfg; i++) {
        gbuf g;
        sym_tensor out =
            tensor(SYM_DT_F32, n_out, n_tok, gbuf_new(&g, (size_t)(n_tok * n_out) * 4));
        g_cfg[i].b->ops->matmul(g_cfg[i].b, &out, &x, &w, with_bias ? &bias : NULL);
        check_f32(what, &g_cfg[i], &g, out.data, want, n_tok * n_out, TOL_MATMUL, 0);
        free(g.raw);
    }
    free(xd), free(bd), free(wd), free(want);
}

/* ---- rmsnorm, silu_mul, add, softmax ---- */

/* rmsnorm of x with weight w (NULL: ones) on every configuration, against the reference (into
 * ref_out) and a double-precision computation (into exact). */
static void check_rmsnorm(const char *what, const sym_tensor *x, const sym_tensor *w,
                          sym_tensor *ref_out, double *exact) {
    int64_t n_tok = x->n_rows, n = x->n_cols;
    const float *xd = x->data;
    float *want = ref_out->data;
    size_t bytes = (size_t)(n_tok * n) * 4;
    g_ref->ops->rmsnorm(g_ref, ref_out, x, w, 1e-5f);
    for (int64_t t = 0; t < n_tok; t++) {
        double ss = 0;
        for (int64_t i = 0; i < n; i++)
            ss += (double)xd[t * n + i] * xd[t * n + i];
        double sc = 1.0 / sqrt(ss / (double)n + 1e-5);
        for (int64_t i = 0; i < n; i++)
            exact[t * n + i] = xd[t * n + i] * sc * (w ? sym_ref_get(w, 0, i) : 1.0);
    }
    double e_ref = rel_err_exact(want, exact, n_tok * n);
    for (int i = 0; i < g_n_cfg; i++) {
        gbuf g;
        sym_tensor out = tensor(SYM_DT_F32, n, n_tok, gbuf_new(&g, bytes));
        g_cfg[i].b->ops->rmsnorm(g_cfg[i].b, &out, x, w, 1e-5f);
        check_f32_exact(what, &g_cfg[i], &g, out.data, want, n_tok * n, TOL_RMSNORM, 1, exact,
                        e_ref);
        free(g.raw);
    }
}

static void test_rows(test_rng *r, int64_t n_tok, int64_t n, sym_dtype wt) {
    char what[80];
    size_t bytes = (size_t)(n_tok * n) * 4;
    float *xd = malloc(bytes), *ud = malloc(bytes), *want = malloc(bytes);
    double *exact = malloc((size_t)(n_tok * n) * sizeof *exact);
    void *wd = malloc((size_t)n * sym_dtype_size(wt));
    sym_tensor x = tensor(SYM_DT_F32, n, n_tok, xd), u = tensor(SYM_DT_F32, n, n_tok, ud);
    sym_tensor w = tensor(wt, n, 1, wd), ref_out = tensor(SYM_DT_F32, n, n_tok, want);
    fill(r, &x, 6.0f);
    fill(r, &u, 2.0f);
    fill(r, &w, 1.5f);

    snprintf(what, sizeof what, "rmsnorm %s %lld x %lld", sym_dtype_name(wt), (long long)n_tok,
             (long long)n);
    check_rmsnorm(what, &x, &w, &ref_out, exact);
    if (wt != SYM_DT_F32) goto done; /* the rest do not depend on the weight type */

    /* a weight of ones (w NULL: the norm folded into the products after it) */
    snprintf(what, sizeof what, "rmsnorm ones %lld x %lld", (long long)n_tok, (long long)n);
    check_rmsnorm(what, &x, NULL, &ref_out, exact);

    snprintf(what, sizeof what, "silu_mul %lld x %lld", (long long)n_tok, (long long)n);
    g_ref->ops->silu_mul(g_ref, &ref_out, &x, &u);
    for (int i = 0; i < g_n_cfg; i++) {
        gbuf g;
        sym_tensor out = tensor(SYM_DT_F32, n, n_tok, gbuf_new(&g, bytes));
        g_cfg[i].b->ops->silu_mul(g_cfg[i].b, &out, &x, &u);
        check_f32(what, &g_cfg[i], &g, out.data, want, n_tok * n, TOL_SILU, 2);
        /* out aliasing gate */
        memcpy(out.data, xd, bytes);
        g_cfg[i].b->ops->silu_mul(g_cfg[i].b, &out, &out, &u);
        check_f32("silu_mul in place", &g_cfg[i], &g, out.data, want, n_tok * n, TOL_SILU, 2);
        free(g.raw);
    }

    snprintf(what, sizeof what, "add %lld x %lld", (long long)n_tok, (long long)n);
    g_ref->ops->add(g_ref, &ref_out, &x, &u);
    for (int i = 0; i < g_n_cfg; i++) {
        gbuf g;
        sym_tensor out = tensor(SYM_DT_F32, n, n_tok, gbuf_new(&g, bytes));
        g_cfg[i].b->ops->add(g_cfg[i].b, &out, &x, &u);
        check_f32(what, &g_cfg[i], &g, out.data, want, n_tok * n, 0.0, 3);
        memcpy(out.data, xd, bytes);
        g_cfg[i].b->ops->add(g_cfg[i].b, &out, &out, &u);
        check_f32("add in place", &g_cfg[i], &g, out.data, want, n_tok * n, 0.0, 3);
        free(g.raw);
    }

    snprintf(what, sizeof what, "softmax %lld x %lld", (long long)n_tok, (long long)n);
    memcpy(want, xd, bytes);
    g_ref->ops->softmax(g_ref, &ref_out);
    for (int64_t t = 0; t < n_tok; t++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t i = 0; i < n; i++)
            mx = fmax(mx, xd[t * n + i]);
        for (int64_t i = 0; i < n; i++)
            sum += exact[t * n + i] = exp(xd[t * n + i] - mx);
        for (int64_t i = 0; i < n; i++)
            exact[t * n + i] /= sum;
    }
    double e_ref = rel_err_exact(want, exact, n_tok * n);
    for (int i = 0; i < g_n_cfg; i++) {
        gbuf g;
        sym_tensor out = tensor(SYM_DT_F32, n, n_tok, gbuf_new(&g, bytes));
        memcpy(out.data, xd, bytes);
        g_cfg[i].b->ops->softmax(g_cfg[i].b, &out);
        check_f32_exact(what, &g_cfg[i], &g, out.data, want, n_tok * n, TOL_SOFTMAX, 4, exact,
                        e_ref);
        free(g.raw);
    }
done:
    free(xd), free(ud), free(want), free(wd), free(exact);
}

/* ---- add_rows_scaled (the scatter of a mixture-of-experts expert's rows) ---- */

static void test_add_rows_scaled(test_rng *r, int64_t n_rows, int64_t n, int64_t n_entries) {
    char what[80];
    snprintf(what, sizeof what, "add_rows_scaled %lld of %lld x %lld", (long long)n_entries,
             (long long)n_rows, (long long)n);
    size_t bytes = (size_t)(n_rows * n) * 4;
    float *init = malloc(bytes), *want = malloc(bytes), *ad = malloc((size_t)(n_entries * n) * 4);
    float *scales = malloc((size_t)n_entries * sizeof *scales);
    int32_t *rows = malloc((size_t)n_entries * sizeof *rows);
    sym_tensor a = tensor(SYM_DT_F32, n, n_entries, ad),
               ref_out = tensor(SYM_DT_F32, n, n_rows, want);
    fill(r, &a, 3.0f);
    fill(r, &ref_out, 3.0f);
    memcpy(init, want, bytes);
    for (int64_t i = 0, k = 0; i < n_rows && k < n_entries; i++) /* increasing, random */
        if (test_rng_below(r, (uint64_t)(n_rows - i)) < (uint64_t)(n_entries - k))
            rows[k++] = (int32_t)i;
    for (int64_t i = 0; i < n_entries; i++)
        scales[i] = 2.0f * test_rng_f32(r);
    g_ref->ops->add_rows_scaled(g_ref, &ref_out, &a, rows, scales);
    for (int i = 0; i < g_n_cfg; i++) {
        gbuf g;
        sym_tensor out = tensor(SYM_DT_F32, n, n_rows, gbuf_new(&g, bytes));
        memcpy(out.data, init, bytes);
        g_cfg[i].b->ops->add_rows_scaled(g_cfg[i].b, &out, &a, rows, scales);
        check_f32(what, &g_cfg[i], &g, out.data, want, n_rows * n, 0.0, 9);
        free(g.raw);
    }
    free(init), free(want), free(ad), free(scales), free(rows);
}

/* ---- embed ---- */

static void test_embed(test_rng *r, sym_dtype t, int64_t n_vocab, int64_t n_embd, int n_tok) {
    char what[64];
    snprintf(what, sizeof what, "embed %s %lld x %lld", sym_dtype_name(t), (long long)n_vocab,
             (long long)n_embd);
    void *td = malloc((size_t)(n_vocab * n_embd) * sym_dtype_size(t));
    float *want = malloc((size_t)(n_tok * n_embd) * 4);
    int32_t *ids = malloc((size_t)n_tok * sizeof *ids);
    sym_tensor table = tensor(t, n_embd, n_vocab, td),
               ref_out = tensor(SYM_DT_F32, n_embd, n_tok, want);
    fill(r, &table, 3.0f);
    for (int i = 0; i < n_tok; i++)
        ids[i] = (int32_t)test_rng_below(r, (uint64_t)n_vocab);
    ids[0] = (int32_t)n_vocab - 1;
    g_ref->ops->embed(g_ref, &ref_out, &table, ids, n_tok);
    for (int i = 0; i < g_n_cfg; i++) {
        gbuf g;
        sym_tensor out =
            tensor(SYM_DT_F32, n_embd, n_tok, gbuf_new(&g, (size_t)(n_tok * n_embd) * 4));
        g_cfg[i].b->ops->embed(g_cfg[i].b, &out, &table, ids, n_tok);
        check_f32(what, &g_cfg[i], &g, out.data, want, n_tok * n_embd, 0.0, 5);
        free(g.raw);
    }
    free(td), free(want), free(ids);
}

/* ---- rope ---- */

static void test_rope(test_rng *r, int64_t n_tok, int n_head, int head_dim, int pos0, int neox) {
    char what[80];
    snprintf(what, sizeof what, "rope %s tok %lld heads %d x %d pos0 %d", neox ? "neox" : "norm",
             (long long)n_tok, n_head, head_dim, pos0);
    int64_t n = (int64_t)n_head * head_dim;
    size_t bytes = (size_t)(n_tok * n) * 4;
    float *xd = malloc(bytes), *want = malloc(bytes);
    sym_tensor x = tensor(SYM_DT_F32, n, n_tok, xd), ref_x = tensor(SYM_DT_F32, n, n_tok, want);
    fill(r, &x, 2.0f);
    memcpy(want, xd, bytes);
    g_ref->ops->rope(g_ref, &ref_x, n_head, head_dim, pos0, 10000.0f, 0.5f + (float)neox * 0.5f,
                     neox);
    for (int i = 0; i < g_n_cfg; i++) {
        gbuf g;
        sym_tensor out = tensor(SYM_DT_F32, n, n_tok, gbuf_new(&g, bytes));
        memcpy(out.data, xd, bytes);
        g_cfg[i].b->ops->rope(g_cfg[i].b, &out, n_head, head_dim, pos0, 10000.0f,
                              0.5f + (float)neox * 0.5f, neox);
        check_f32(what, &g_cfg[i], &g, out.data, want, n_tok * n, TOL_ROPE, 6);
        free(g.raw);
    }
    free(xd), free(want);
}

/* ---- store_rows: bit-exact, rows outside the range untouched ---- */

static void test_store_rows(test_rng *r, sym_dtype t, int64_t n_ctx, int64_t n_cols, int64_t row0,
                            int64_t n_rows) {
    char what[80];
    snprintf(what, sizeof what, "store_rows %s %lld rows at %lld of %lld x %lld", sym_dtype_name(t),
             (long long)n_rows, (long long)row0, (long long)n_ctx, (long long)n_cols);
    size_t cbytes = (size_t)(n_ctx * n_cols) * sym_dtype_size(t);
    float *sd = malloc((size_t)(n_rows * n_cols) * 4);
    sym_tensor src = tensor(SYM_DT_F32, n_cols, n_rows, sd);
    /* magnitudes from 1e-9 to 1e6: f16 subnormals, rounding ties, overflow to inf */
    for (int64_t i = 0; i < n_rows * n_cols; i++)
        sd[i] = test_rng_f32(r) * powf(10.0f, (float)test_rng_below(r, 16) - 9.0f);
    sd[0] = 65520.0f; /* rounds to f16 inf */
    sd[n_rows * n_cols - 1] = -0.0f;
    gbuf gw;
    void *want = gbuf_new(&gw, cbytes);
    sym_tensor ref_cache = tensor(t, n_cols, n_ctx, want);
    g_ref->ops->store_rows(g_ref, &ref_cache, row0, &src);
    for (int i = 0; i < g_n_cfg; i++) {
        gbuf g;
        sym_tensor cache = tensor(t, n_cols, n_ctx, gbuf_new(&g, cbytes));
        g_cfg[i].b->ops->store_rows(g_cfg[i].b, &cache, row0, &src);
        CHECK_OK(g_cfg[i].b->ops->sync(g_cfg[i].b));
        CHECK(gbuf_guards_ok(&g), "%s [%s]: guard bytes overwritten", what, g_cfg[i].name);
        CHECK(memcmp(g.raw, gw.raw, cbytes + 2 * GUARD_BYTES) == 0, "%s [%s]: differs from ref",
              what, g_cfg[i].name);
        free(g.raw);
    }
    note(7, "store_rows", 0.0);
    free(sd), free(gw.raw);
}

/* ---- attention ---- */

static void test_attention(test_rng *r, sym_dtype kvt, int64_t n_tok, int n_head, int n_head_kv,
                           int head_dim, int pos0) {
    char what[96];
    snprintf(what, sizeof what, "attention %s tok %lld heads %d/%d x %d pos0 %d",
             sym_dtype_name(kvt), (long long)n_tok, n_head, n_head_kv, head_dim, pos0);
    int64_t n_ctx = pos0 + n_tok + 3, nq = (int64_t)n_head * head_dim;
    int64_t nkv = (int64_t)n_head_kv * head_dim;
    size_t qbytes = (size_t)(n_tok * nq) * 4, kvbytes = (size_t)(n_ctx * nkv) * sym_dtype_size(kvt);
    float *qd = malloc(qbytes), *want = malloc(qbytes);
    void *kd = malloc(kvbytes), *vd = malloc(kvbytes);
    sym_tensor q = tensor(SYM_DT_F32, nq, n_tok, qd), ref_out = tensor(SYM_DT_F32, nq, n_tok, want);
    sym_tensor k = tensor(kvt, nkv, n_ctx, kd), v = tensor(kvt, nkv, n_ctx, vd);
    fill(r, &q, 3.0f); /* peaky enough that the softmax is not flat */
    fill(r, &k, 2.0f);
    fill(r, &v, 1.0f);
    float scale = 1.0f / sqrtf((float)head_dim);
    g_ref->ops->attention(g_ref, &ref_out, &q, &k, &v, n_head, n_head_kv, head_dim, pos0, scale);
    for (int i = 0; i < g_n_cfg; i++) {
        gbuf g;
        sym_tensor out = tensor(SYM_DT_F32, nq, n_tok, gbuf_new(&g, qbytes));
        g_cfg[i].b->ops->attention(g_cfg[i].b, &out, &q, &k, &v, n_head, n_head_kv, head_dim, pos0,
                                   scale);
        check_f32(what, &g_cfg[i], &g, out.data, want, n_tok * nq, TOL_ATTN, 8);
        free(g.raw);
    }
    free(qd), free(want), free(kd), free(vd);
}

/* ---- latched errors ---- */

static void test_errors(void) {
    for (int i = 0; i < g_n_cfg; i++) {
        sym_backend *b = g_cfg[i].b;
        float x[6] = {1, 2, 3, 4, 5, 6}, w[6] = {1, 1, 1, 1, 1, 1}, out[4] = {7, 7, 7, 7};
        sym_tensor tx = tensor(SYM_DT_F32, 3, 2, x), tw = tensor(SYM_DT_F32, 2, 3, w);
        sym_tensor to = tensor(SYM_DT_F32, 2, 2, out);
        b->ops->matmul(b, &to, &tx, &tw, NULL); /* 3 inputs against rows of 2 */
        CHECK_STATUS(b->ops->sync(b), SYM_ERR_ARG);
        CHECK(out[0] == 7 && out[3] == 7, "[%s] failed matmul wrote its output", g_cfg[i].name);
        CHECK_OK(b->ops->sync(b)); /* reported once */
        int32_t ids[2] = {0, 3};
        sym_tensor table = tensor(SYM_DT_F32, 2, 3, w);
        b->ops->embed(b, &to, &table, ids, 2);
        float back[4];
        CHECK_STATUS(b->ops->read(b, &to, back, sizeof back), SYM_ERR_RANGE);
        CHECK(strstr(sym_last_error(), "token id 3") != NULL, "detail: %s", sym_last_error());
        CHECK_OK(b->ops->read(b, &to, back, sizeof back));
        static const int32_t bad[][2] = {{1, 1}, {1, 0}, {0, 2}, {-1, 1}};
        const float sc[2] = {1, 1};
        sym_tensor two = tensor(SYM_DT_F32, 2, 2, x);
        for (int k = 0; k < 4; k++) {
            b->ops->add_rows_scaled(b, &to, &two, bad[k], sc);
            CHECK_STATUS(b->ops->sync(b), SYM_ERR_ARG);
        }
        CHECK(out[0] == 7 && out[3] == 7, "[%s] refused add_rows_scaled wrote", g_cfg[i].name);
    }
}

/* ---- the per-token path does not allocate; failed scratch growth is latched ---- */

static int g_n_alloc, g_fail_alloc;
static void *count_malloc(void *u, size_t n) {
    (void)u;
    g_n_alloc++;
    return g_fail_alloc ? NULL : malloc(n);
}
static void *count_realloc(void *u, void *p, size_t n) {
    (void)u;
    g_n_alloc++;
    return g_fail_alloc ? NULL : realloc(p, n);
}
static void count_free(void *u, void *p) {
    (void)u;
    free(p);
}

/* One decode step and one 64-token prefill of a small llama-shaped layer. */
static void run_layer(sym_backend *b, int n_tok, int pos0, float *buf, uint16_t *w16,
                      uint16_t *kv) {
    enum { E = 256, FF = 688, NH = 8, NKV = 2, HD = 32, CTX = 160 };
    float *x = buf, *h = x + 64 * E, *q = h + 64 * E, *kk = q + 64 * E, *vv = kk + 64 * NKV * HD,
          *a = vv + 64 * NKV * HD, *g = a + 64 * E, *u = g + 64 * FF, *lg = u + 64 * FF;
    sym_tensor tx = tensor(SYM_DT_F32, E, n_tok, x), th = tensor(SYM_DT_F32, E, n_tok, h);
    sym_tensor tq = tensor(SYM_DT_F32, E, n_tok, q), tk = tensor(SYM_DT_F32, NKV * HD, n_tok, kk);
    sym_tensor tv = tensor(SYM_DT_F32, NKV * HD, n_tok, vv), ta = tensor(SYM_DT_F32, E, n_tok, a);
    sym_tensor tg = tensor(SYM_DT_F32, FF, n_tok, g), tu = tensor(SYM_DT_F32, FF, n_tok, u);
    sym_tensor tl = tensor(SYM_DT_F32, 1000, 1, lg), tn = tensor(SYM_DT_F16, E, 1, w16);
    sym_tensor wq = tensor(SYM_DT_F16, E, E, w16), wk = tensor(SYM_DT_F16, E, NKV * HD, w16);
    sym_tensor wg = tensor(SYM_DT_F16, E, FF, w16), wd = tensor(SYM_DT_F16, FF, E, w16);
    sym_tensor wo = tensor(SYM_DT_F16, E, 1000, w16);
    sym_tensor kc = tensor(SYM_DT_F16, NKV * HD, CTX, kv),
               vc = tensor(SYM_DT_F16, NKV * HD, CTX, kv);
    int32_t ids[64];
    for (int i = 0; i < 64; i++)
        ids[i] = i;
    b->ops->embed(b, &tx, &wo, ids, n_tok);
    b->ops->rmsnorm(b, &th, &tx, &tn, 1e-5f);
    b->ops->matmul(b, &tq, &th, &wq, NULL);
    b->ops->matmul(b, &tk, &th, &wk, NULL);
    b->ops->matmul(b, &tv, &th, &wk, NULL);
    b->ops->rope(b, &tq, NH, HD, pos0, 10000.0f, 1.0f, 0);
    b->ops->rope(b, &tk, NKV, HD, pos0, 10000.0f, 1.0f, 0);
    b->ops->store_rows(b, &kc, pos0, &tk);
    b->ops->store_rows(b, &vc, pos0, &tv);
    b->ops->attention(b, &ta, &tq, &kc, &vc, NH, NKV, HD, pos0, 0.17f);
    b->ops->matmul(b, &th, &ta, &wq, NULL);
    b->ops->add(b, &tx, &tx, &th);
    static const float scales[64] = {0.5f, 0.25f}; /* a mixture-of-experts scatter */
    b->ops->add_rows_scaled(b, &tx, &th, ids, scales);
    b->ops->matmul(b, &tg, &tx, &wg, NULL);
    b->ops->matmul(b, &tu, &tx, &wg, NULL);
    b->ops->silu_mul(b, &tg, &tg, &tu);
    b->ops->matmul(b, &th, &tg, &wd, NULL);
    sym_tensor last = tensor(SYM_DT_F32, E, 1, x + (n_tok - 1) * E);
    sym_tensor tl1 = tensor(SYM_DT_F32, 1000, 1, lg);
    b->ops->matmul(b, &tl1, &last, &wo, NULL);
    b->ops->softmax(b, &tl);
}

static void test_no_alloc(void) {
    float *buf = calloc(64 * 4096, sizeof *buf);
    uint16_t *w16 = calloc(1000 * 688, 2), *kv = calloc(160 * 64, 2);
    for (size_t i = 0; i < 1000 * 688; i++)
        w16[i] = (uint16_t)(0x3000 | (i & 0x3ff));
    sym_alloc_hooks hooks = {count_malloc, count_realloc, count_free, NULL};
    for (int i = 0; i < g_n_cfg; i++) {
        sym_backend *b = g_cfg[i].b;
        run_layer(b, 64, 0, buf, w16, kv); /* warm-up: scratch reaches its size */
        sym_set_alloc_hooks(&hooks);
        g_n_alloc = 0;
        run_layer(b, 64, 64, buf, w16, kv);
        for (int t = 0; t < 8; t++)
            run_layer(b, 1, 128 + t, buf, w16, kv);
        sym_set_alloc_hooks(NULL);
        CHECK(g_n_alloc == 0, "[%s] %d allocations on the per-token path", g_cfg[i].name,
              g_n_alloc);
        CHECK_OK(b->ops->sync(b));
    }
    /* a scratch that must grow (head_dim 512) while allocation fails: latched, output untouched */
    sym_backend *b = g_cfg[0].b;
    enum { HD = 512 };
    float *q = calloc(64 * HD, 4), *o = calloc(64 * HD, 4), *kvf = calloc(64 * HD, 4);
    o[0] = 42.0f;
    sym_tensor tq = tensor(SYM_DT_F32, HD, 64, q), to = tensor(SYM_DT_F32, HD, 64, o);
    sym_tensor tkv = tensor(SYM_DT_F32, HD, 64, kvf);
    sym_set_alloc_hooks(&hooks);
    g_fail_alloc = 1;
    b->ops->attention(b, &to, &tq, &tkv, &tkv, 1, 1, HD, 0, 1.0f);
    g_fail_alloc = 0;
    sym_set_alloc_hooks(NULL);
    CHECK_STATUS(b->ops->sync(b), SYM_ERR_OOM);
    CHECK(o[0] == 42.0f, "failed attention wrote its output");
    b->ops->attention(b, &to, &tq, &tkv, &tkv, 1, 1, HD, 0, 1.0f);
    CHECK_OK(b->ops->sync(b));
    CHECK(o[0] == 0.0f, "attention after the failure: %g", o[0]);
    free(q), free(o), free(kvf), free(buf), free(w16), free(kv);
}

int main(void) {
    test_rng r = test_rng_init("test_cpu_ops");
    CHECK_OK(sym_ref_backend_create(&g_ref));
    for (int isa = SYM_CPU_ISA_GENERIC; isa < SYM_CPU_ISA_COUNT; isa++) {
        if (!sym_cpu_isa_supported((sym_cpu_isa)isa)) {
            sym_backend *b = NULL;
            CHECK_STATUS(sym_cpu_backend_create_isa(1, (sym_cpu_isa)isa, &b), SYM_ERR_UNSUPPORTED);
            fprintf(stderr, "test_cpu_ops: %s not supported here, skipped\n",
                    sym_cpu_isa_name((sym_cpu_isa)isa));
            continue;
        }
        for (int nt = 1; nt <= 3; nt++) {
            cfg *c = &g_cfg[g_n_cfg];
            CHECK_OK(sym_cpu_backend_create_isa(nt, (sym_cpu_isa)isa, &c->b));
            if (!c->b) continue;
            CHECK(sym_cpu_backend_n_threads(c->b) == nt, "threads");
            snprintf(c->name, sizeof c->name, "%s x%d", sym_cpu_isa_name((sym_cpu_isa)isa), nt);
            g_n_cfg++;
        }
    }
    sym_backend *autob = NULL;
    CHECK_OK(sym_cpu_backend_create(0, &autob));
    if (autob) {
        CHECK(sym_cpu_backend_isa(autob) == sym_cpu_isa_best(), "auto picks the best ISA");
        fprintf(stderr, "test_cpu_ops: best ISA here: %s\n", sym_cpu_isa_name(sym_cpu_isa_best()));
        autob->ops->destroy(autob);
    }

    for (int dt = 0; dt < SYM_DT_COUNT; dt++) {
        sym_dtype t = (sym_dtype)dt;
        /* decode (gemv): large, odd, and a 1-wide tail in every dimension */
        test_matmul(&r, t, 1, 4000 + (int64_t)test_rng_below(&r, 1000),
                    2000 + (int64_t)test_rng_below(&r, 1000), 0);
        test_matmul(&r, t, 1, 5632 + 13, 37, 1); /* long rows: chunked inputs */
        test_matmul(&r, t, 1, 4097, 70, 0);
        test_matmul(&r, t, 1, 4096, 33, 1);
        test_matmul(&r, t, 1, 1, 1, 1);
        test_matmul(&r, t, 1, 17, 3, 0);
        test_matmul(&r, t, 2, 333, 129, 1);
        test_matmul(&r, t, 3, 48, 64, 0);
        test_matmul(&r, t, 4, 1029, 77, 1);
        /* prefill (gemm): token and output tails, several k-chunks, a single input */
        test_matmul(&r, t, 5, 1300, 45, 0);
        test_matmul(&r, t, 9, 3, 2, 1);
        test_matmul(&r, t, 13, 1, 33, 0);
        test_matmul(&r, t, 37 + (int64_t)test_rng_below(&r, 30),
                    700 + (int64_t)test_rng_below(&r, 900), 200 + (int64_t)test_rng_below(&r, 200),
                    1);
        test_matmul(&r, t, 64, 2048, 96, 0);
        test_matmul(&r, t, 300, 129, 67, 1); /* more tokens than one task block */
        test_matmul(&r, t, 16 + (int64_t)test_rng_below(&r, 8),
                    4000 + (int64_t)test_rng_below(&r, 1000),
                    2000 + (int64_t)test_rng_below(&r, 1000), 0);

        test_rows(&r, 1, 1, t);
        test_rows(&r, 3, 2053, t);
        test_rows(&r, 1, 40000 + (int64_t)test_rng_below(&r, 999), t); /* parallel single row */
        test_rows(&r, 29, 3001, t);
        if (t == SYM_DT_F32) {
            test_add_rows_scaled(&r, 1, 1, 1);
            test_add_rows_scaled(&r, 7, 4096, 7);
            test_add_rows_scaled(&r, 300, 333, 41);
        }
        test_embed(&r, t, 1000, 333, 7);
        test_embed(&r, t, 50, 2048 + 5, 40);
        test_store_rows(&r, t, 40, 67, 5, 1);
        test_store_rows(&r, t, 300, 1029, 20, 260);
        test_attention(&r, t, 1, 32, 4, 64, 0);
        test_attention(&r, t, 1, 32, 4, 64, 200 + (int)test_rng_below(&r, 300));
        test_attention(&r, t, 37, 8, 2, 40, 77);
        test_attention(&r, t, 70, 6, 6, 24, 0);    /* no GQA, more tokens than one block */
        test_attention(&r, t, 3, 12, 1, 80, 1000); /* one KV head for all */
    }
    test_rope(&r, 1, 32, 64, 0, 0);
    test_rope(&r, 1, 32, 64, 4095, 1);
    test_rope(&r, 45, 7, 18, 1000, 0);
    test_rope(&r, 45, 7, 18, 3, 1);
    test_rope(&r, 200, 16, 128, 17, 1);
    test_errors();
    test_no_alloc();

    for (int i = 0; i < 16; i++)
        if (g_worst_name[i][0])
            fprintf(stderr, "test_cpu_ops: worst error vs ref %-10s %.3g\n", g_worst_name[i],
                    g_worst[i]);
    for (int i = 0; i < g_n_cfg; i++)
        g_cfg[i].b->ops->destroy(g_cfg[i].b);
    g_ref->ops->destroy(g_ref);
    return test_finish("test_cpu_ops");
}
