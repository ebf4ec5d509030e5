/* moe.c — the mixture-of-experts block of moe.h: host routing, then one batch per expert. */
#include "infer/moe.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"

sym_moe_expert sym_moe_expert_view(const sym_tensor *gate_exps, const sym_tensor *up_exps,
                                   const sym_tensor *down_exps, int n_expert, int e) {
    SYM_ASSERT(n_expert > 0 && e >= 0 && e < n_expert);
    int64_t ff = gate_exps->n_rows / n_expert, embd = down_exps->n_rows / n_expert;
    return (sym_moe_expert){.gate = sym_tensor_rows(gate_exps, e * ff, ff),
                            .up = sym_tensor_rows(up_exps, e * ff, ff),
                            .down = sym_tensor_rows(down_exps, e * embd, embd)};
}

/* ---- scratch ------------------------------------------------------------------------------- */

void sym_moe_scratch_release(sym_backend *b, sym_moe_scratch *s) {
    sym_tensor *t[] = {&s->logits, &s->xe, &s->gate, &s->up, &s->out};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i]->n_rows) b->ops->release(b, t[i]);
    sym_free(s->logits_host);
    sym_free(s->rows);
    sym_free(s->scales);
    memset(s, 0, sizeof *s);
}

sym_status sym_moe_scratch_alloc(sym_backend *b, int n_embd, int n_ff, int n_expert, int max_tok,
                                 sym_moe_scratch *s) {
    memset(s, 0, sizeof *s);
    SYM_CHECK(n_embd > 0 && n_ff > 0 && n_expert > 0 && max_tok > 0, SYM_ERR_ARG,
              "moe: scratch for %d tokens, n_embd %d, n_ff %d, %d experts", max_tok, n_embd, n_ff,
              n_expert);
    sym_status st = SYM_OK;
    SYM_TRY_GOTO(b->ops->alloc(b, &s->logits, SYM_DT_F32, n_expert, max_tok));
    SYM_TRY_GOTO(b->ops->alloc(b, &s->xe, SYM_DT_F32, n_embd, max_tok));
    SYM_TRY_GOTO(b->ops->alloc(b, &s->gate, SYM_DT_F32, n_ff, max_tok));
    SYM_TRY_GOTO(b->ops->alloc(b, &s->up, SYM_DT_F32, n_ff, max_tok));
    SYM_TRY_GOTO(b->ops->alloc(b, &s->out, SYM_DT_F32, n_embd, max_tok));
    s->logits_host = sym_malloc((size_t)max_tok * (size_t)n_expert * sizeof *s->logits_host);
    s->rows = sym_malloc((size_t)max_tok * sizeof *s->rows);
    s->scales = sym_malloc((size_t)max_tok * sizeof *s->scales);
    if (!s->logits_host || !s->rows || !s->scales)
        SYM_FAIL_GOTO(SYM_ERR_OOM, "moe: out of memory for the routing of %d tokens", max_tok);
    s->max_tok = max_tok;
    return SYM_OK;
fail:
    sym_moe_scratch_release(b, s);
    return st;
}

/* ---- routing ------------------------------------------------------------------------------- */

/* a ranks before b: larger, NaN last, ties to the lower id (a < b here). */
static int ranks_before(float a, float b) { return !isnan(a) && (isnan(b) || a > b); }

void sym_moe_topk(const float *logits, int n_tok, int n_expert, int k, int32_t *expert,
                  float *weight) {
    SYM_ASSERT(k >= 1 && k <= n_expert);
    for (int t = 0; t < n_tok; t++) {
        const float *l = logits + (size_t)t * (size_t)n_expert;
        int32_t *ex = expert + (size_t)t * (size_t)k;
        float *w = weight + (size_t)t * (size_t)k;
        /* k selection passes: the best expert not yet taken; scanning ids upward with a strict
         * comparison keeps the lower id on ties */
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < n_expert; e++) {
                int taken = 0;
                for (int i = 0; i < j && !taken; i++)
                    taken = ex[i] == e;
                if (!taken && (best < 0 || ranks_before(l[e], l[best]))) best = e;
            }
            ex[j] = best;
        }
        /* softmax over the chosen logits (the first is the largest): the full softmax's top k
         * renormalized */
        double m = l[ex[0]], sum = 0.0;
        for (int j = 0; j < k; j++)
            sum += exp((double)l[ex[j]] - m);
        for (int j = 0; j < k; j++)
            w[j] = (float)(exp((double)l[ex[j]] - m) / sum);
    }
}

static sym_status check_scratch(const sym_moe_scratch *s, const sym_tensor *xn, int64_t n_ff,
                                int n_expert) {
    int64_t n = xn->n_rows, d = xn->n_cols;
    SYM_CHECK(s->max_tok >= n && s->logits.n_rows >= n && s->logits.n_cols == n_expert &&
                  s->xe.n_rows >= n && s->xe.n_cols == d && s->out.n_rows >= n &&
                  s->out.n_cols == d && s->gate.n_rows >= n && s->up.n_rows >= n &&
                  (n_ff < 0 || (s->gate.n_cols == n_ff && s->up.n_cols == n_ff)) &&
                  s->logits_host && s->rows && s->scales,
              SYM_ERR_ARG,
              "moe: scratch for %d tokens does not fit %lld tokens of %lld, %d experts", s->max_tok,
              (long long)n, (long long)d, n_expert);
    return SYM_OK;
}

sym_status sym_moe_route_tokens(sym_backend *b, const sym_tensor *xn, const sym_tensor *router,
                                int n_expert_used, const sym_moe_scratch *s, sym_moe_route *route) {
    int64_t n = xn->n_rows;
    SYM_CHECK(xn->type == SYM_DT_F32 && n > 0 && router->n_cols == xn->n_cols &&
                  router->n_rows >= 1 && router->n_rows <= INT32_MAX,
              SYM_ERR_ARG, "moe: router (%lld x %lld) for input (%lld x %lld)",
              (long long)router->n_rows, (long long)router->n_cols, (long long)n,
              (long long)xn->n_cols);
    int n_expert = (int)router->n_rows;
    SYM_CHECK(n_expert_used >= 1 && n_expert_used <= n_expert, SYM_ERR_ARG,
              "moe: %d experts per token out of %d", n_expert_used, n_expert);
    SYM_TRY(check_scratch(s, xn, -1, n_expert));
    SYM_CHECK(route && route->expert && route->weight, SYM_ERR_ARG, "moe: no routing arrays");
    sym_tensor logits = sym_tensor_rows(&s->logits, 0, n);
    b->ops->matmul(b, &logits, xn, router, NULL);
    SYM_TRY(b->ops->read(b, &logits, s->logits_host, sym_tensor_bytes(&logits)));
    sym_moe_topk(s->logits_host, (int)n, n_expert, n_expert_used, route->expert, route->weight);
    route->n_tok = (int)n;
    route->n_expert_used = n_expert_used;
    return SYM_OK;
}

/* ---- the experts ---------------------------------------------------------------------------- */

static sym_status check_route(const sym_moe_route *r, const sym_moe_expert *experts, int n_expert,
                              int64_t n_embd, int64_t *n_ff) {
    int k = r->n_expert_used;
    SYM_CHECK(r->expert && r->weight && k >= 1 && k <= n_expert, SYM_ERR_ARG,
              "moe: a routing of %d experts per token among %d", k, n_expert);
    *n_ff = -1;
    for (int t = 0; t < r->n_tok; t++)
        for (int j = 0; j < k; j++) {
            int32_t e = r->expert[(size_t)t * (size_t)k + (size_t)j];
            SYM_CHECK(e >= 0 && e < n_expert, SYM_ERR_ARG,
                      "moe: token %d is routed to expert %d of %d", t, e, n_expert);
            for (int i = 0; i < j; i++)
                SYM_CHECK(r->expert[(size_t)t * (size_t)k + (size_t)i] != e, SYM_ERR_ARG,
                          "moe: token %d is routed twice to expert %d", t, e);
            const sym_moe_expert *x = &experts[e];
            SYM_CHECK(x->gate.n_rows > 0 && x->up.n_rows > 0 && x->down.n_rows > 0, SYM_ERR_ARG,
                      "moe: expert %d is routed to but absent", e);
            int64_t ff = x->gate.n_rows;
            SYM_CHECK(x->gate.n_cols == n_embd && x->up.n_cols == n_embd && x->up.n_rows == ff &&
                          x->down.n_rows == n_embd && x->down.n_cols == ff &&
                          (*n_ff < 0 || *n_ff == ff),
                      SYM_ERR_ARG,
                      "moe: expert %d has gate (%lld x %lld), up (%lld x %lld), "
                      "down (%lld x %lld) for n_embd %lld",
                      e, (long long)x->gate.n_rows, (long long)x->gate.n_cols,
                      (long long)x->up.n_rows, (long long)x->up.n_cols, (long long)x->down.n_rows,
                      (long long)x->down.n_cols, (long long)n_embd);
            *n_ff = ff;
        }
    return SYM_OK;
}

sym_status sym_moe_experts(sym_backend *b, sym_tensor *x, const sym_tensor *xn,
                           const sym_moe_route *route, const sym_moe_expert *experts, int n_expert,
                           const sym_moe_scratch *s) {
    const sym_backend_ops *o = b->ops;
    int64_t n = xn->n_rows, d = xn->n_cols, n_ff = -1;
    SYM_CHECK(route && experts && n_expert >= 1 && route->n_tok == n && x->n_rows == n &&
                  x->n_cols == d && x->type == SYM_DT_F32 && xn->type == SYM_DT_F32,
              SYM_ERR_ARG, "moe: x (%lld x %lld), xn (%lld x %lld), a routing of %d tokens",
              (long long)x->n_rows, (long long)x->n_cols, (long long)n, (long long)d,
              route ? route->n_tok : -1);
    SYM_TRY(check_route(route, experts, n_expert, d, &n_ff));
    SYM_TRY(check_scratch(s, xn, n_ff, n_expert));
    int k = route->n_expert_used;
    for (int e = 0; e < n_expert; e++) {
        /* the tokens routed to e, in order (what add_rows_scaled needs), and their weights */
        int n_e = 0;
        for (int t = 0; t < route->n_tok; t++)
            for (int j = 0; j < k; j++)
                if (route->expert[(size_t)t * (size_t)k + (size_t)j] == e) {
                    s->rows[n_e] = t;
                    s->scales[n_e++] = route->weight[(size_t)t * (size_t)k + (size_t)j];
                }
        if (n_e == 0) continue;
        const sym_moe_expert *w = &experts[e];
        sym_tensor xe = *xn;
        if (n_e < n) { /* gather the routed rows (rows 0..n-1 when every token is) */
            xe = sym_tensor_rows(&s->xe, 0, n_e);
            o->embed(b, &xe, xn, s->rows, n_e);
        }
        sym_tensor gate = sym_tensor_rows(&s->gate, 0, n_e), up = sym_tensor_rows(&s->up, 0, n_e);
        sym_tensor out = sym_tensor_rows(&s->out, 0, n_e);
        o->matmul(b, &gate, &xe, &w->gate, NULL);
        o->matmul(b, &up, &xe, &w->up, NULL);
        o->silu_mul(b, &gate, &gate, &up);
        o->matmul(b, &out, &gate, &w->down, NULL);
        o->add_rows_scaled(b, x, &out, s->rows, s->scales);
    }
    return SYM_OK;
}

sym_status sym_moe_ffn(sym_backend *b, sym_tensor *x, const sym_tensor *xn,
                       const sym_tensor *router, const sym_moe_expert *experts, int n_expert_used,
                       const sym_moe_scratch *s, sym_moe_route *route) {
    SYM_TRY(sym_moe_route_tokens(b, xn, router, n_expert_used, s, route));
    return sym_moe_experts(b, x, xn, route, experts, (int)router->n_rows, s);
}
