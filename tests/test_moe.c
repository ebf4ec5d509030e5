/* The mixture-of-experts block (infer/moe.c):
 *   - routing math (sym_moe_topk) against a plain reference written here (a double-precision
 *     softmax over all experts, a stable sort, the top k renormalized) on random logits, logits
 *     full of ties (lower id first), NaN and infinite logits, k = 1 and k = n_expert;
 *   - sym_moe_ffn on the reference backend against plain C loops in double precision;
 *   - the reference, CPU and (argument "vulkan") Vulkan backends against each other, weights
 *     f32/f16/bf16, experts stacked (row views of one tensor) and apart, n_tok 1 / 3 / 40,
 *     every scratch tensor poisoned with NaN and x between NaN guard rows;
 *   - a full MoE layer of the tiny-moe synthetic model (ffn_norm, router, experts) run through
 *     moe.c on each backend, stacked and split files giving the same result, and its router
 *     skewed on real hidden states (the token embeddings);
 *   - argument errors.
 * Routing is discrete: when two backends' logits straddle a near-tie (the k-th and (k+1)-th
 * logits closer than 1e-4 of the logits' scale) the token may legitimately be routed
 * differently; such tokens are counted and left out of the output comparison, every other
 * token must be routed identically. Tolerances, max |got - want| / max |want| over the change
 * made to x (the residual itself would hide errors):
 *   2e-5  ref vs the double-precision loops (f32 sums of up to a few hundred products)
 *   1e-4  CPU or Vulkan vs ref (three chained products and a SiLU, each within 1e-5)
 *   0     stacked vs split experts on one backend (the same numbers through the same ops)
 * Weights (routing): 1e-6 absolute against the reference, 1e-5 across backends.
 */
#include "cpu/ops.h"
#include "cpu/ref.h"
#include "infer/moe.h"
#include "model/model.h"
#include "model/writer.h"
#include "test_util.h"
#ifdef SYM_HAVE_VULKAN
#include "vk/ops.h"
#endif

static sym_backend *g_ref;
static char g_dir[1024];

/* ---- routing math --------------------------------------------------------------------------- */

static const float *g_sort_l;
static int cmp_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    float x = g_sort_l[i], y = g_sort_l[j];
    int xn = isnan(x), yn = isnan(y);
    if (xn != yn) return xn - yn; /* NaN last */
    if (!xn && x != y) return x > y ? -1 : 1;
    return i - j; /* ties: lower id first */
}

/* The plain reference: softmax over all experts in double, sort, top k, renormalize. */
static void ref_topk(const float *l, int n_expert, int k, int32_t *ex, double *w) {
    int idx[512];
    double p[512], mx = -INFINITY, sum = 0, top = 0;
    for (int e = 0; e < n_expert; e++) {
        idx[e] = e;
        if (!isnan(l[e]) && l[e] > mx) mx = l[e];
    }
    for (int e = 0; e < n_expert; e++)
        sum += p[e] = exp((double)l[e] - mx);
    for (int e = 0; e < n_expert; e++)
        p[e] /= sum;
    g_sort_l = l;
    qsort(idx, (size_t)n_expert, sizeof *idx, cmp_desc);
    for (int j = 0; j < k; j++)
        top += p[idx[j]];
    for (int j = 0; j < k; j++) {
        ex[j] = idx[j];
        w[j] = p[idx[j]] / top;
    }
}

static void check_topk(const float *l, int n_tok, int n_expert, int k, const char *what) {
    int32_t *ex = malloc((size_t)(n_tok * k) * sizeof *ex);
    float *w = malloc((size_t)(n_tok * k) * sizeof *w);
    sym_moe_topk(l, n_tok, n_expert, k, ex, w);
    int bad = 0;
    for (int t = 0; t < n_tok && bad < 3; t++) {
        int32_t rex[512];
        double rw[512], sum = 0;
        ref_topk(l + (size_t)t * n_expert, n_expert, k, rex, rw);
        for (int j = 0; j < k; j++) {
            sum += w[t * k + j];
            if (ex[t * k + j] != rex[j] || !(fabs(w[t * k + j] - rw[j]) <= 1e-6)) {
                CHECK(0, "%s: token %d choice %d: expert %d weight %g, want %d %g", what, t, j,
                      ex[t * k + j], w[t * k + j], rex[j], rw[j]);
                bad++;
                break;
            }
        }
        CHECK(fabs(sum - 1.0) <= 1e-6, "%s: token %d weights sum to %g", what, t, sum);
    }
    free(ex);
    free(w);
}

static void test_topk(test_rng *r) {
    static const int shapes[][2] = {{1, 1}, {2, 1}, {2, 2},  {5, 2},  {8, 2},
                                    {8, 1}, {8, 8}, {60, 4}, {256, 8}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int n = shapes[s][0], k = shapes[s][1], n_tok = 50;
        float *l = malloc((size_t)(n_tok * n) * sizeof *l);
        char what[64];
        for (int i = 0; i < n_tok * n; i++)
            l[i] = 6.0f * test_rng_f32(r);
        snprintf(what, sizeof what, "top-%d of %d, random", k, n);
        check_topk(l, n_tok, n, k, what);
        for (int i = 0; i < n_tok * n; i++)
            l[i] = (float)test_rng_below(r, 3); /* many ties */
        snprintf(what, sizeof what, "top-%d of %d, ties", k, n);
        check_topk(l, n_tok, n, k, what);
        free(l);
    }
    int32_t ex[4];
    float w[4];
    const float ties[5] = {1, 3, 3, 0, 3};
    sym_moe_topk(ties, 1, 5, 3, ex, w);
    CHECK(ex[0] == 1 && ex[1] == 2 && ex[2] == 4 && fabsf(w[0] - 1.0f / 3) < 1e-7f &&
              fabsf(w[2] - 1.0f / 3) < 1e-7f,
          "ties: %d %d %d, %g", ex[0], ex[1], ex[2], w[0]);
    const float with_nan[3] = {NAN, 1, 2};
    sym_moe_topk(with_nan, 1, 3, 2, ex, w);
    CHECK(ex[0] == 2 && ex[1] == 1 && fabsf(w[0] - 0.7310586f) < 1e-6f, "NaN ranks last: %d %d",
          ex[0], ex[1]);
    sym_moe_topk(with_nan, 1, 3, 3, ex, w);
    CHECK(ex[2] == 0 && isnan(w[0]) && isnan(w[2]), "a chosen NaN: %d, %g", ex[2], w[0]);
    const float minf[3] = {-INFINITY, 0, 0};
    sym_moe_topk(minf, 1, 3, 3, ex, w);
    CHECK(ex[0] == 1 && ex[1] == 2 && ex[2] == 0 && w[0] == 0.5f && w[2] == 0.0f,
          "-inf: %d %d %d, %g %g %g", ex[0], ex[1], ex[2], w[0], w[1], w[2]);
    const float pinf[3] = {0, INFINITY, 1};
    sym_moe_topk(pinf, 1, 3, 2, ex, w);
    CHECK(ex[0] == 1 && ex[1] == 2 && isnan(w[0]), "+inf: %d %d %g", ex[0], ex[1], w[0]);
    const float big[2] = {1000.0f, 999.0f}; /* no overflow: the softmax is shifted */
    sym_moe_topk(big, 1, 2, 2, ex, w);
    CHECK(ex[0] == 0 && fabsf(w[0] - 0.7310586f) < 1e-6f && fabsf(w[1] - 0.2689414f) < 1e-6f,
          "large logits: %g %g", w[0], w[1]);
}

/* ---- a random MoE block --------------------------------------------------------------------- */

typedef struct block {
    int n_tok, n_embd, n_ff, n_expert, k;
    sym_dtype wt;
    float *x, *xn;       /* (n_tok, n_embd) */
    sym_tensor router;   /* host, wt */
    sym_tensor gate, up; /* host stacked (n_expert * n_ff, n_embd), wt */
    sym_tensor down;     /* host stacked (n_expert * n_embd, n_ff), wt */
} block;

static void host_tensor(sym_tensor *t, sym_dtype type, int64_t cols, int64_t rows, test_rng *r,
                        float scale) {
    CHECK_OK(g_ref->ops->alloc(g_ref, t, type, cols, rows));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            sym_ref_set(t, i, j, scale * test_rng_f32(r));
}

static void block_make(block *k, test_rng *r, int n_tok, int n_embd, int n_ff, int n_expert,
                       int n_used, sym_dtype wt) {
    *k = (block){.n_tok = n_tok,
                 .n_embd = n_embd,
                 .n_ff = n_ff,
                 .n_expert = n_expert,
                 .k = n_used,
                 .wt = wt};
    k->x = malloc((size_t)(n_tok * n_embd) * sizeof *k->x);
    k->xn = malloc((size_t)(n_tok * n_embd) * sizeof *k->xn);
    for (int i = 0; i < n_tok * n_embd; i++) {
        k->x[i] = 4.0f * test_rng_f32(r);
        k->xn[i] = 1.7f * test_rng_f32(r);
    }
    float s = 1.7f / sqrtf((float)n_embd);
    host_tensor(&k->router, wt, n_embd, n_expert, r, 3 * s);
    host_tensor(&k->gate, wt, n_embd, (int64_t)n_expert * n_ff, r, s);
    host_tensor(&k->up, wt, n_embd, (int64_t)n_expert * n_ff, r, s);
    host_tensor(&k->down, wt, n_ff, (int64_t)n_expert * n_embd, r, 1.7f / sqrtf((float)n_ff));
}

static void block_free(block *k) {
    free(k->x);
    free(k->xn);
    g_ref->ops->release(g_ref, &k->router);
    g_ref->ops->release(g_ref, &k->gate);
    g_ref->ops->release(g_ref, &k->up);
    g_ref->ops->release(g_ref, &k->down);
}

/* Router logits in double and, per token, whether its routing is a near-tie. */
static void block_logits(const block *k, double *logits, bool *ambiguous) {
    double scale = 0;
    for (int t = 0; t < k->n_tok; t++)
        for (int e = 0; e < k->n_expert; e++) {
            double s = 0;
            for (int c = 0; c < k->n_embd; c++)
                s += (double)k->xn[t * k->n_embd + c] * sym_ref_get(&k->router, e, c);
            logits[t * k->n_expert + e] = s;
            if (fabs(s) > scale) scale = fabs(s);
        }
    for (int t = 0; t < k->n_tok; t++) {
        ambiguous[t] = false;
        if (k->k == k->n_expert) continue;
        float l[512];
        int32_t ex[512];
        double w[512];
        for (int e = 0; e < k->n_expert; e++)
            l[e] = (float)logits[t * k->n_expert + e];
        ref_topk(l, k->n_expert, k->k, ex, w);
        double kth = logits[t * k->n_expert + ex[k->k - 1]], next = -INFINITY;
        for (int e = 0; e < k->n_expert; e++) {
            bool chosen = false;
            for (int j = 0; j < k->k; j++)
                chosen |= ex[j] == e;
            if (!chosen && logits[t * k->n_expert + e] > next) next = logits[t * k->n_expert + e];
        }
        ambiguous[t] = kth - next < 1e-4 * scale;
    }
}

/* x + the experts' outputs, in double. */
static void block_reference(const block *k, double *want, int32_t *route_ex, double *route_w) {
    double *logits = malloc((size_t)(k->n_tok * k->n_expert) * sizeof *logits);
    double *h = malloc((size_t)k->n_ff * sizeof *h);
    bool amb[1024];
    block_logits(k, logits, amb);
    for (int t = 0; t < k->n_tok; t++) {
        float l[512];
        for (int e = 0; e < k->n_expert; e++)
            l[e] = (float)logits[t * k->n_expert + e];
        int32_t *ex = route_ex + t * k->k;
        double *w = route_w + t * k->k;
        ref_topk(l, k->n_expert, k->k, ex, w);
        for (int c = 0; c < k->n_embd; c++)
            want[t * k->n_embd + c] = k->x[t * k->n_embd + c];
        for (int j = 0; j < k->k; j++) {
            int64_t g0 = (int64_t)ex[j] * k->n_ff, d0 = (int64_t)ex[j] * k->n_embd;
            for (int f = 0; f < k->n_ff; f++) {
                double g = 0, u = 0;
                for (int c = 0; c < k->n_embd; c++) {
                    g += (double)k->xn[t * k->n_embd + c] * sym_ref_get(&k->gate, g0 + f, c);
                    u += (double)k->xn[t * k->n_embd + c] * sym_ref_get(&k->up, g0 + f, c);
                }
                h[f] = g / (1.0 + exp(-g)) * u;
            }
            for (int c = 0; c < k->n_embd; c++) {
                double s = 0;
                for (int f = 0; f < k->n_ff; f++)
                    s += h[f] * sym_ref_get(&k->down, d0 + c, f);
                want[t * k->n_embd + c] += w[j] * s;
            }
        }
    }
    free(logits);
    free(h);
}

/* ---- a block on a backend ------------------------------------------------------------------ */

#define GUARD 2

typedef struct dev_block {
    sym_tensor router, gate, up, down; /* stacked */
    sym_tensor *eg, *eu, *ed;          /* apart: one tensor per expert matrix */
    sym_moe_expert *stacked, *apart;
    sym_tensor xfull, x, xn; /* x: rows GUARD .. GUARD + n_tok of xfull */
    sym_moe_scratch s;
} dev_block;

static void upload(sym_backend *b, sym_tensor *t, const sym_tensor *h, int64_t row0,
                   int64_t n_rows) {
    sym_tensor v = sym_tensor_rows(h, row0, n_rows);
    CHECK_OK(b->ops->alloc(b, t, h->type, h->n_cols, n_rows));
    CHECK_OK(b->ops->write(b, t, v.data, sym_tensor_bytes(&v)));
}

static void poison(sym_backend *b, sym_tensor *t) {
    size_t n = sym_tensor_bytes(t);
    unsigned char *p = malloc(n);
    memset(p, 0xff, n); /* NaN */
    CHECK_OK(b->ops->write(b, t, p, n));
    free(p);
}

static void dev_make(sym_backend *b, const block *k, dev_block *d, int max_tok) {
    memset(d, 0, sizeof *d);
    upload(b, &d->router, &k->router, 0, k->n_expert);
    upload(b, &d->gate, &k->gate, 0, k->gate.n_rows);
    upload(b, &d->up, &k->up, 0, k->up.n_rows);
    upload(b, &d->down, &k->down, 0, k->down.n_rows);
    d->eg = calloc((size_t)k->n_expert, sizeof *d->eg);
    d->eu = calloc((size_t)k->n_expert, sizeof *d->eu);
    d->ed = calloc((size_t)k->n_expert, sizeof *d->ed);
    d->stacked = calloc((size_t)k->n_expert, sizeof *d->stacked);
    d->apart = calloc((size_t)k->n_expert, sizeof *d->apart);
    for (int e = 0; e < k->n_expert; e++) {
        upload(b, &d->eg[e], &k->gate, (int64_t)e * k->n_ff, k->n_ff);
        upload(b, &d->eu[e], &k->up, (int64_t)e * k->n_ff, k->n_ff);
        upload(b, &d->ed[e], &k->down, (int64_t)e * k->n_embd, k->n_embd);
        d->stacked[e] = sym_moe_expert_view(&d->gate, &d->up, &d->down, k->n_expert, e);
        d->apart[e] = (sym_moe_expert){d->eg[e], d->eu[e], d->ed[e]};
    }
    CHECK_OK(b->ops->alloc(b, &d->xfull, SYM_DT_F32, k->n_embd, k->n_tok + 2 * GUARD));
    CHECK_OK(b->ops->alloc(b, &d->xn, SYM_DT_F32, k->n_embd, k->n_tok));
    CHECK_OK(b->ops->write(b, &d->xn, k->xn, (size_t)(k->n_tok * k->n_embd) * 4));
    d->x = sym_tensor_rows(&d->xfull, GUARD, k->n_tok);
    CHECK_OK(sym_moe_scratch_alloc(b, k->n_embd, k->n_ff, k->n_expert, max_tok, &d->s));
}

/* x := k->x with NaN guard rows around it and NaN in every scratch tensor. */
static void dev_reset(sym_backend *b, const block *k, dev_block *d) {
    poison(b, &d->xfull);
    CHECK_OK(b->ops->write(b, &d->x, k->x, (size_t)(k->n_tok * k->n_embd) * 4));
    sym_tensor *t[] = {&d->s.logits, &d->s.xe, &d->s.gate, &d->s.up, &d->s.out};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        poison(b, t[i]);
}

/* Reads x back (checking the guards) into got. */
static void dev_read_x(sym_backend *b, const block *k, dev_block *d, float *got, const char *what) {
    size_t row = (size_t)k->n_embd * 4, n = sym_tensor_bytes(&d->xfull);
    unsigned char *buf = malloc(n);
    CHECK_OK(b->ops->read(b, &d->xfull, buf, n));
    bool guards = true;
    for (size_t i = 0; i < GUARD * row; i++)
        guards &= buf[i] == 0xff && buf[n - 1 - i] == 0xff;
    CHECK(guards, "%s: a guard row of x was written", what);
    memcpy(got, buf + GUARD * row, (size_t)k->n_tok * row);
    free(buf);
}

static void dev_free(sym_backend *b, const block *k, dev_block *d) {
    sym_tensor *t[] = {&d->router, &d->gate, &d->up, &d->down, &d->xfull, &d->xn};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        b->ops->release(b, t[i]);
    for (int e = 0; e < k->n_expert; e++) {
        b->ops->release(b, &d->eg[e]);
        b->ops->release(b, &d->eu[e]);
        b->ops->release(b, &d->ed[e]);
    }
    free(d->eg), free(d->eu), free(d->ed), free(d->stacked), free(d->apart);
    sym_moe_scratch_release(b, &d->s);
}

/* max |got - want| / max |want - x| over tokens not marked skip: the error in the change. */
static double delta_err(const block *k, const float *got, const double *want, const bool *skip) {
    double scale = 0, err = 0;
    for (int t = 0; t < k->n_tok; t++) {
        if (skip && skip[t]) continue;
        for (int c = 0; c < k->n_embd; c++) {
            int i = t * k->n_embd + c;
            scale = fmax(scale, fabs(want[i] - k->x[i]));
            double e = fabs((double)got[i] - want[i]);
            if (!(e <= err)) err = e;
        }
    }
    return err / (scale > 0 ? scale : 1.0);
}

/* ---- ref against double precision ----------------------------------------------------------- */

static void run_against_double(test_rng *r, int n_tok, int n_embd, int n_ff, int n_expert, int kk,
                               sym_dtype wt) {
    block k;
    block_make(&k, r, n_tok, n_embd, n_ff, n_expert, kk, wt);
    double *want = malloc((size_t)(n_tok * n_embd) * sizeof *want);
    int32_t *rex = malloc((size_t)(n_tok * kk) * sizeof *rex);
    double *rw = malloc((size_t)(n_tok * kk) * sizeof *rw), logits[4096];
    bool amb[1024];
    block_reference(&k, want, rex, rw);
    block_logits(&k, logits, amb);
    dev_block d;
    dev_make(g_ref, &k, &d, n_tok + 3);
    dev_reset(g_ref, &k, &d);
    int32_t *ex = malloc((size_t)(n_tok * kk) * sizeof *ex);
    float *w = malloc((size_t)(n_tok * kk) * sizeof *w),
          *got = malloc((size_t)(n_tok * n_embd) * 4);
    sym_moe_route route = {.expert = ex, .weight = w};
    CHECK_OK(sym_moe_ffn(g_ref, &d.x, &d.xn, &d.router, d.stacked, kk, &d.s, &route));
    char what[96];
    snprintf(what, sizeof what, "ref vs double: %d tokens, %d/%d experts, %d x %d, %s", n_tok, kk,
             n_expert, n_embd, n_ff, sym_dtype_name(wt));
    CHECK(route.n_tok == n_tok && route.n_expert_used == kk, "%s: route %d %d", what, route.n_tok,
          route.n_expert_used);
    int n_amb = 0;
    for (int t = 0; t < n_tok; t++) {
        n_amb += amb[t];
        for (int j = 0; j < kk && !amb[t]; j++)
            CHECK(ex[t * kk + j] == rex[t * kk + j] && fabs(w[t * kk + j] - rw[t * kk + j]) < 1e-5,
                  "%s: token %d choice %d: %d %g, want %d %g", what, t, j, ex[t * kk + j],
                  w[t * kk + j], rex[t * kk + j], rw[t * kk + j]);
    }
    dev_read_x(g_ref, &k, &d, got, what);
    double e = delta_err(&k, got, want, amb);
    CHECK(e <= 2e-5, "%s: error %.3g", what, e);
    CHECK(n_amb <= n_tok / 4, "%s: %d of %d tokens near a routing tie", what, n_amb, n_tok);
    free(want), free(rex), free(rw), free(ex), free(w), free(got);
    dev_free(g_ref, &k, &d);
    block_free(&k);
}

/* ---- backends against ref ------------------------------------------------------------------ */

static void run_backend(sym_backend *b, const char *name, test_rng *r, int n_tok, int n_embd,
                        int n_ff, int n_expert, int kk, sym_dtype wt) {
    block k;
    block_make(&k, r, n_tok, n_embd, n_ff, n_expert, kk, wt);
    char what[128];
    snprintf(what, sizeof what, "%s: %d tokens, %d/%d experts, %d x %d, %s", name, n_tok, kk,
             n_expert, n_embd, n_ff, sym_dtype_name(wt));
    double logits[8192];
    bool amb[1024];
    block_logits(&k, logits, amb);
    size_t xb = (size_t)(n_tok * n_embd);
    int32_t *ex_ref = malloc((size_t)(n_tok * kk) * 4), *ex = malloc((size_t)(n_tok * kk) * 4);
    float *w_ref = malloc((size_t)(n_tok * kk) * 4), *w = malloc((size_t)(n_tok * kk) * 4);
    float *x_ref = malloc(xb * 4), *got = malloc(xb * 4), *got2 = malloc(xb * 4);
    double *want = malloc(xb * sizeof *want);
    sym_moe_route rr = {.expert = ex_ref, .weight = w_ref}, rb = {.expert = ex, .weight = w};
    dev_block dr, db;
    dev_make(g_ref, &k, &dr, n_tok);
    dev_make(b, &k, &db, n_tok + 5);
    /* the reference's full block */
    dev_reset(g_ref, &k, &dr);
    CHECK_OK(sym_moe_ffn(g_ref, &dr.x, &dr.xn, &dr.router, dr.stacked, kk, &dr.s, &rr));
    dev_read_x(g_ref, &k, &dr, x_ref, what);
    for (size_t i = 0; i < xb; i++)
        want[i] = x_ref[i];
    /* 1. routing on the backend: the same as ref but near ties */
    CHECK_OK(sym_moe_route_tokens(b, &db.xn, &db.router, kk, &db.s, &rb));
    int n_amb = 0;
    bool differs[1024];
    for (int t = 0; t < n_tok; t++) {
        differs[t] = false;
        for (int j = 0; j < kk; j++)
            differs[t] |= ex[t * kk + j] != ex_ref[t * kk + j] ||
                          !(fabsf(w[t * kk + j] - w_ref[t * kk + j]) <= 1e-5f);
        n_amb += amb[t];
        CHECK(!differs[t] || amb[t], "%s: token %d routed differently (not a near tie)", what, t);
    }
    /* 2. the experts with ref's routing, stacked and apart: match ref; the two are identical */
    dev_reset(b, &k, &db);
    CHECK_OK(sym_moe_experts(b, &db.x, &db.xn, &rr, db.stacked, n_expert, &db.s));
    dev_read_x(b, &k, &db, got, what);
    double e = delta_err(&k, got, want, NULL);
    CHECK(e <= 1e-4, "%s: experts (stacked) error %.3g", what, e);
    dev_reset(b, &k, &db);
    CHECK_OK(sym_moe_experts(b, &db.x, &db.xn, &rr, db.apart, n_expert, &db.s));
    dev_read_x(b, &k, &db, got2, what);
    CHECK(!memcmp(got, got2, xb * 4), "%s: stacked and separate experts differ", what);
    /* 3. the whole block on the backend */
    dev_reset(b, &k, &db);
    CHECK_OK(sym_moe_ffn(b, &db.x, &db.xn, &db.router, db.stacked, kk, &db.s, &rb));
    dev_read_x(b, &k, &db, got, what);
    e = delta_err(&k, got, want, differs);
    CHECK(e <= 1e-4, "%s: block error %.3g", what, e);
    if (n_amb) fprintf(stderr, "%s: %d token(s) near a routing tie\n", what, n_amb);
    free(ex_ref), free(ex), free(w_ref), free(w), free(x_ref), free(got), free(got2), free(want);
    dev_free(g_ref, &k, &dr);
    dev_free(b, &k, &db);
    block_free(&k);
}

static void run_backend_suite(sym_backend *b, const char *name, test_rng *r) {
    static const int shapes[][5] = {
        /* n_tok, n_embd, n_ff, n_expert, k */
        {1, 80, 216, 8, 2},  {3, 37, 53, 5, 1},   {40, 80, 216, 8, 2},
        {17, 64, 100, 4, 4}, {40, 129, 70, 6, 3}, {2, 33, 17, 1, 1},
    };
    for (int t = 0; t < SYM_DT_COUNT; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            run_backend(b, name, r, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3],
                        shapes[s][4], (sym_dtype)t);
}

/* ---- a layer of the tiny-moe model ---------------------------------------------------------- */

typedef struct layer_dev {
    sym_tensor norm, router, gate, up, down; /* stacked tensors, or absent */
    sym_tensor eg[8], eu[8], ed[8];          /* split files */
    sym_moe_expert ex[8];
} layer_dev;

static void load_w(sym_backend *b, sym_tensor *t, const sym_weight *w) {
    CHECK_OK(b->ops->alloc(b, t, w->type, w->n_cols, w->n_rows));
    CHECK_OK(b->ops->write(b, t, w->data, (size_t)w->n_bytes));
}

static void layer_load(sym_backend *b, const sym_model *m, int l, layer_dev *d) {
    memset(d, 0, sizeof *d);
    const sym_hparams *hp = sym_model_hparams(m);
    const sym_layer_weights *w = &sym_model_weights_of(m)->layers[l];
    load_w(b, &d->norm, &w->ffn_norm);
    load_w(b, &d->router, &w->ffn_gate_inp);
    if (!hp->expert_split) {
        load_w(b, &d->gate, &w->ffn_gate_exps);
        load_w(b, &d->up, &w->ffn_up_exps);
        load_w(b, &d->down, &w->ffn_down_exps);
        for (int e = 0; e < hp->n_expert; e++)
            d->ex[e] = sym_moe_expert_view(&d->gate, &d->up, &d->down, hp->n_expert, e);
        return;
    }
    for (int e = 0; e < hp->n_expert; e++) {
        load_w(b, &d->eg[e], &w->exp_gate[e]);
        load_w(b, &d->eu[e], &w->exp_up[e]);
        load_w(b, &d->ed[e], &w->exp_down[e]);
        d->ex[e] = (sym_moe_expert){d->eg[e], d->eu[e], d->ed[e]};
    }
}

static void layer_free(sym_backend *b, layer_dev *d) {
    sym_tensor *t[] = {&d->norm, &d->router, &d->gate, &d->up, &d->down};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i]->n_rows) b->ops->release(b, t[i]);
    for (int e = 0; e < 8; e++) {
        if (d->eg[e].n_rows) b->ops->release(b, &d->eg[e]);
        if (d->eu[e].n_rows) b->ops->release(b, &d->eu[e]);
        if (d->ed[e].n_rows) b->ops->release(b, &d->ed[e]);
    }
}

/* x (n_tok rows of the embedding table) through layer l's MoE block on b: x_out, the routing. */
static void run_layer(sym_backend *b, const sym_model *m, int l, const float *x_in, int n_tok,
                      float *x_out, int32_t *ex, float *w) {
    const sym_hparams *hp = sym_model_hparams(m);
    layer_dev d;
    layer_load(b, m, l, &d);
    sym_tensor x, xn;
    sym_moe_scratch s;
    CHECK_OK(b->ops->alloc(b, &x, SYM_DT_F32, hp->n_embd, n_tok));
    CHECK_OK(b->ops->alloc(b, &xn, SYM_DT_F32, hp->n_embd, n_tok));
    CHECK_OK(b->ops->write(b, &x, x_in, (size_t)n_tok * hp->n_embd * 4));
    CHECK_OK(sym_moe_scratch_alloc(b, hp->n_embd, hp->n_ff, hp->n_expert, n_tok, &s));
    b->ops->rmsnorm(b, &xn, &x, &d.norm, hp->rms_eps);
    sym_moe_route route = {.expert = ex, .weight = w};
    CHECK_OK(sym_moe_ffn(b, &x, &xn, &d.router, d.ex, hp->n_expert_used, &s, &route));
    CHECK_OK(b->ops->read(b, &x, x_out, (size_t)n_tok * hp->n_embd * 4));
    sym_moe_scratch_release(b, &s);
    b->ops->release(b, &x);
    b->ops->release(b, &xn);
    layer_free(b, &d);
}

static void test_model_layer(sym_backend **bs, const char **names, int n_b) {
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    CHECK_OK(sym_make_model_preset(&o, "tiny-moe"));
    char p_stacked[1200], p_split[1200];
    snprintf(p_stacked, sizeof p_stacked, "%s/tiny-moe.gguf", g_dir);
    snprintf(p_split, sizeof p_split, "%s/tiny-moe-split.gguf", g_dir);
    CHECK_OK(sym_make_model(&o, p_stacked));
    o.split_experts = true;
    CHECK_OK(sym_make_model(&o, p_split));
    sym_model *m = NULL, *ms = NULL;
    CHECK_OK(sym_model_open(p_stacked, &m));
    CHECK_OK(sym_model_open(p_split, &ms));
    if (!m || !ms) return;
    const sym_hparams *hp = sym_model_hparams(m);
    int n_tok = hp->n_vocab, d = hp->n_embd, kk = hp->n_expert_used; /* every token once */
    float *x_in = malloc((size_t)n_tok * d * 4);
    const sym_weight *te = &sym_model_weights_of(m)->token_embd;
    sym_tensor tab = {.type = te->type, .n_cols = d, .n_rows = n_tok, .data = (void *)te->data};
    for (int t = 0; t < n_tok; t++)
        for (int c = 0; c < d; c++)
            x_in[t * d + c] = sym_ref_get(&tab, t, c);
    float *x_ref = malloc((size_t)n_tok * d * 4), *x = malloc((size_t)n_tok * d * 4);
    int32_t *ex_ref = malloc((size_t)n_tok * kk * 4), *ex = malloc((size_t)n_tok * kk * 4);
    float *w_ref = malloc((size_t)n_tok * kk * 4), *w = malloc((size_t)n_tok * kk * 4);
    for (int l = 0; l < hp->n_layer; l++) {
        run_layer(g_ref, m, l, x_in, n_tok, x_ref, ex_ref, w_ref);
        /* skew on real hidden states: top-1 choices over the whole vocabulary */
        int wins[8] = {0}, distinct = 0, top = 0;
        for (int t = 0; t < n_tok; t++)
            wins[ex_ref[t * kk]]++;
        for (int e = 0; e < hp->n_expert; e++) {
            distinct += wins[e] > 0;
            if (wins[e] > wins[top]) top = e;
        }
        fprintf(stderr,
                "tiny-moe layer %d on the token embeddings: expert %d wins %d of %d "
                "top-1 choices (uniform %d), %d distinct winners\n",
                l, top, wins[top], n_tok, n_tok / hp->n_expert, distinct);
        CHECK(wins[top] > 2 * n_tok / hp->n_expert && distinct > 1,
              "layer %d: routing not skewed (%d of %d) or not input-dependent (%d winners)", l,
              wins[top], n_tok, distinct);
        run_layer(g_ref, ms, l, x_in, n_tok, x, ex, w);
        CHECK(!memcmp(x, x_ref, (size_t)n_tok * d * 4) &&
                  !memcmp(ex, ex_ref, (size_t)n_tok * kk * 4),
              "layer %d: split and stacked files differ on the reference backend", l);
        for (int i = 0; i < n_b; i++) {
            run_layer(bs[i], m, l, x_in, n_tok, x, ex, w);
            double scale = 0, err = 0;
            int n_diff = 0;
            for (int t = 0; t < n_tok; t++) {
                bool same = !memcmp(ex + t * kk, ex_ref + t * kk, (size_t)kk * 4);
                n_diff += !same;
                for (int c = 0; c < d && same; c++) {
                    scale = fmax(scale, fabs(x_ref[t * d + c] - x_in[t * d + c]));
                    err = fmax(err, fabs(x[t * d + c] - x_ref[t * d + c]));
                }
            }
            CHECK(n_diff <= n_tok / 100, "%s layer %d: %d of %d tokens routed differently",
                  names[i], l, n_diff, n_tok);
            CHECK(err <= 1e-4 * scale, "%s layer %d: error %.3g (scale %.3g)", names[i], l, err,
                  scale);
        }
    }
    free(x_in), free(x_ref), free(x), free(ex_ref), free(ex), free(w_ref), free(w);
    sym_model_close(m);
    sym_model_close(ms);
}

/* ---- errors --------------------------------------------------------------------------------- */

static void test_errors(test_rng *r) {
    block k;
    block_make(&k, r, 4, 16, 24, 4, 2, SYM_DT_F32);
    dev_block d;
    dev_make(g_ref, &k, &d, 4);
    int32_t ex[8];
    float w[8];
    sym_moe_route route = {.expert = ex, .weight = w};
    CHECK_STATUS(sym_moe_route_tokens(g_ref, &d.xn, &d.router, 5, &d.s, &route), SYM_ERR_ARG);
    CHECK_STATUS(sym_moe_route_tokens(g_ref, &d.xn, &d.router, 0, &d.s, &route), SYM_ERR_ARG);
    CHECK_OK(sym_moe_route_tokens(g_ref, &d.xn, &d.router, 2, &d.s, &route));
    sym_moe_expert saved = d.stacked[ex[0]];
    memset(&d.stacked[ex[0]], 0, sizeof saved); /* the first token's expert is absent */
    CHECK_STATUS(sym_moe_experts(g_ref, &d.x, &d.xn, &route, d.stacked, 4, &d.s), SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "is routed to but absent") != NULL, "%s", sym_last_error());
    d.stacked[ex[0]] = saved;
    int32_t keep = ex[1];
    ex[1] = ex[0];
    CHECK_STATUS(sym_moe_experts(g_ref, &d.x, &d.xn, &route, d.stacked, 4, &d.s), SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "routed twice") != NULL, "%s", sym_last_error());
    ex[1] = 4;
    CHECK_STATUS(sym_moe_experts(g_ref, &d.x, &d.xn, &route, d.stacked, 4, &d.s), SYM_ERR_ARG);
    ex[1] = keep;
    sym_moe_expert wrong = d.stacked[ex[0]];
    d.stacked[ex[0]].down = d.stacked[ex[0]].gate; /* (n_ff, n_embd) where (n_embd, n_ff) goes */
    CHECK_STATUS(sym_moe_experts(g_ref, &d.x, &d.xn, &route, d.stacked, 4, &d.s), SYM_ERR_ARG);
    d.stacked[ex[0]] = wrong;
    sym_moe_scratch small;
    CHECK_OK(sym_moe_scratch_alloc(g_ref, 16, 24, 4, 3, &small));
    CHECK_STATUS(sym_moe_ffn(g_ref, &d.x, &d.xn, &d.router, d.stacked, 2, &small, &route),
                 SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "scratch for 3 tokens") != NULL, "%s", sym_last_error());
    sym_moe_scratch_release(g_ref, &small);
    sym_moe_scratch_release(g_ref, &small); /* twice is fine */
    CHECK_STATUS(sym_moe_scratch_alloc(g_ref, 16, 24, 0, 3, &small), SYM_ERR_ARG);
    CHECK_OK(sym_moe_experts(g_ref, &d.x, &d.xn, &route, d.stacked, 4, &d.s));
    dev_free(g_ref, &k, &d);
    block_free(&k);
}

int main(int argc, char **argv) {
    test_rng r = test_rng_init("test_moe");
    bool vulkan = argc > 1 && !strcmp(argv[1], "vulkan");
    CHECK_OK(sym_ref_backend_create(&g_ref));
    snprintf(g_dir, sizeof g_dir, "%s/test_moe%s.tmp", SYM_BUILD_DIR, vulkan ? "_vk" : "");
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_dir, g_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot make %s\n", g_dir);
    sym_backend *b = NULL;
    const char *name = "cpu";
    if (vulkan) {
#ifdef SYM_HAVE_VULKAN
        sym_vk_options o;
        sym_vk_options_init(&o);
        o.pipeline_cache_dir = SYM_BUILD_DIR "/vk-cache";
        sym_status st = sym_vk_backend_create(&o, &b);
        if (st == SYM_ERR_NO_DEVICE) {
            fprintf(stderr, "test_moe: no Vulkan device (%s): skipped\n", sym_last_error());
            g_ref->ops->destroy(g_ref);
            return TEST_SKIP;
        }
        CHECK_OK(st);
        name = "vulkan";
#else
        fprintf(stderr, "test_moe: built without Vulkan: skipped\n");
        return TEST_SKIP;
#endif
    } else {
        test_topk(&r);
        run_against_double(&r, 1, 80, 216, 8, 2, SYM_DT_F32);
        run_against_double(&r, 30, 37, 53, 5, 2, SYM_DT_F32);
        run_against_double(&r, 30, 37, 53, 5, 5, SYM_DT_BF16);
        run_against_double(&r, 9, 64, 100, 8, 1, SYM_DT_F16);
        test_errors(&r);
        CHECK_OK(sym_cpu_backend_create(2, &b));
    }
    if (b) {
        run_backend_suite(b, name, &r);
        test_model_layer(&b, &name, 1);
        b->ops->destroy(b);
    }
#ifdef SYM_HAVE_VULKAN
    if (vulkan) {
        sym_vk_shutdown();
        CHECK(sym_vk_validation_error_count() == 0, "%d validation errors",
              sym_vk_validation_error_count());
    }
#endif
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_dir);
    g_ref->ops->destroy(g_ref);
    return test_finish("test_moe");
}
