/* trace_rec.c — pack-access traces of real runs. */
#include "infer/trace_rec.h"

#include <string.h>

#include "base/alloc.h"
#include "infer/moe.h"

struct sym_trace_rec {
    const sym_pack_plan *plan;
    sym_trace *t;
    uint32_t *trace_id;   /* plan pack -> trace pack (trace.h's numbering) */
    int max_tok, n_layer, n_expert, k;
    int32_t *expert;      /* (n_layer, max_tok, k): this chunk's routing */
    float *weight;
    uint32_t token;       /* tokens recorded so far */
    sym_status err;
};

sym_status sym_trace_rec_create(const sym_pack_plan *plan, int max_tok, sym_trace_rec **out) {
    *out = NULL;
    sym_trace_rec *r = sym_calloc(1, sizeof *r);
    if (!r) return SYM_FAIL(SYM_ERR_OOM, "trace: out of memory");
    r->plan = plan;
    r->max_tok = max_tok;
    r->n_layer = plan->n_layer;
    r->n_expert = plan->n_expert;
    r->k = plan->n_expert_used;
    sym_status st = SYM_OK;
    r->trace_id = sym_malloc(plan->n_packs * sizeof *r->trace_id);
    if (!r->trace_id) SYM_FAIL_GOTO(SYM_ERR_OOM, "trace: out of memory");
    SYM_TRY_GOTO(sym_trace_create_for_plan(plan, r->trace_id, &r->t));
    if (r->n_expert > 0) {
        size_t n = (size_t)plan->n_layer * (size_t)max_tok * (size_t)r->k;
        r->expert = sym_malloc(n * sizeof *r->expert);
        r->weight = sym_malloc(n * sizeof *r->weight);
        if (!r->expert || !r->weight) SYM_FAIL_GOTO(SYM_ERR_OOM, "trace: out of memory");
        for (size_t i = 0; i < n; i++) r->expert[i] = -1;
    }
    *out = r;
    return SYM_OK;
fail:
    sym_trace_rec_destroy(r);
    return st;
}

void sym_trace_rec_destroy(sym_trace_rec *r) {
    if (!r) return;
    sym_trace_destroy(r->t);
    sym_free(r->trace_id);
    sym_free(r->expert);
    sym_free(r->weight);
    sym_free(r);
}

void sym_trace_rec_route(void *user, int layer, const sym_moe_route *route) {
    sym_trace_rec *r = user;
    if (!r->expert || layer < 0 || layer >= r->n_layer || route->n_expert_used != r->k ||
        route->n_tok > r->max_tok)
        return;
    size_t at = (size_t)layer * (size_t)r->max_tok * (size_t)r->k;
    size_t n = (size_t)route->n_tok * (size_t)r->k;
    memcpy(r->expert + at, route->expert, n * sizeof *r->expert);
    memcpy(r->weight + at, route->weight, n * sizeof *r->weight);
}

void sym_trace_rec_chunk(void *user, int n_tok) {
    sym_trace_rec *r = user;
    const sym_pack_plan *p = r->plan;
    uint32_t n_dense = r->t->n_dense;
    for (int j = 0; j < n_tok && r->err == SYM_OK; j++, r->token++) {
        int last_layer = -1; /* the layer whose experts were recorded for this token */
        for (uint32_t u = 0; u < p->n_uses && r->err == SYM_OK; u++) {
            const sym_pack *pk = &p->packs[p->schedule[u].pack_id];
            if (pk->type != SYM_PACK_EXPERT) {
                sym_trace_kind kind = p->schedule[u].kind == SYM_PACK_USE_GATHER
                                          ? SYM_TRACE_GATHER : SYM_TRACE_FULL;
                r->err = sym_trace_append(r->t, r->token, r->trace_id[pk->id], kind,
                                          SYM_TRACE_PROB_UNKNOWN);
                continue;
            }
            if (pk->layer == last_layer || !r->expert) continue;
            last_layer = pk->layer; /* the layer's chosen experts, in expert order */
            const int32_t *ex = r->expert + ((size_t)pk->layer * (size_t)r->max_tok +
                                             (size_t)j) * (size_t)r->k;
            const float *w = r->weight + ((size_t)pk->layer * (size_t)r->max_tok +
                                          (size_t)j) * (size_t)r->k;
            for (int e = 0; e < r->n_expert && r->err == SYM_OK; e++)
                for (int i = 0; i < r->k; i++)
                    if (ex[i] == e)
                        r->err = sym_trace_append(
                            r->t, r->token, n_dense + (uint32_t)(pk->layer * r->n_expert + e),
                            SYM_TRACE_EXPERT, w[i]);
        }
    }
}

sym_status sym_trace_rec_write(sym_trace_rec *r, const char *path) {
    SYM_TRY(r->err);
    return sym_trace_write(r->t, path);
}
