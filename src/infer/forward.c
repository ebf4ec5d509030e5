#include "infer/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cpu/ref.h"
#include "infer/fused.h"
#include "infer/moe.h"
#include "text/sampler.h"
#include "tier/pack_manager.h"

typedef struct layer_tensors {
    sym_tensor attn_norm, wq, wk, wv, bq, bk, bv, wo;
    sym_tensor ffn_norm, w_gate, w_up, w_down;
    /* mixture of experts (resident): the router, the stacked tensors (or none when split), and
     * each expert's matrices (views of the stacked ones, or loaded one by one) */
    sym_tensor router, gate_exps, up_exps, down_exps;
    sym_moe_expert *experts;
    bool attn_folded, ffn_folded; /* the norm's weight is in Wq/Wk/Wv (W_gate/W_up) already */
} layer_tensors;

struct sym_forward_pass {
    uint64_t loaded_bytes; /* weights loaded so far (the open's progress) */
    sym_backend *b;
    const sym_hparams *hp;
    sym_forward_options opt;
    sym_tensor token_embd, output_norm, output; /* output aliases token_embd when tied */
    layer_tensors *layers;
    sym_kv_cache kv;
    /* activations, n_batch rows each */
    sym_tensor x;      /* (n_batch, n_embd) residual stream */
    sym_tensor xn;     /* (n_batch, n_embd) normed input / projection output */
    sym_tensor q;      /* (n_batch, n_head * head_dim) */
    sym_tensor k, v;   /* (n_batch, n_head_kv * head_dim) */
    sym_tensor att;    /* (n_batch, n_head * head_dim) */
    sym_tensor gate, up; /* (n_batch, n_ff) */
    sym_tensor logits; /* (1, n_vocab) */
    sym_tensor amax;   /* (1, 1): the argmax of logits, where the backend has the op */
    sym_tensor top;    /* (1, 2 SYM_TOPK_MAX): (value, index) pairs, where it has topk */
    float *host_logits; /* n_vocab, for sym_forward_eval_argmax without the op (on first use) */
    /* mixture of experts */
    sym_moe_scratch moe;
    sym_moe_route route;       /* the last layer's routing */
    sym_forward_route_fn route_fn;
    void *route_user;
    void (*chunk_fn)(void *user, int n_tok);
    void *chunk_user;

    /* streaming (opt.streamed): matrices come from the pack manager, piece by piece */
    sym_pack_manager *pm;      /* borrowed; NULL until sym_forward_set_packs */
    const sym_pack_plan *plan; /* borrowed */
    sym_tier tier;             /* where the ops read packs: DEVICE (devices) or RAM (host) */
    int lookahead;             /* schedule entries prefetched ahead of the one in use */
    sym_tensor tmp;            /* (n_batch, widest row slice) a slice's product before set_cols */
    float *x_host;             /* (n_batch, n_embd) embedding rows gathered on the host */
    struct deferred {          /* packs whose ops may still run: released once fence_done */
        sym_pack_handle h;
        uint64_t ticket;
    } *deferred;
    uint32_t n_deferred, deferred_head, cap_deferred;
    int stage;                 /* the last stage begun (see stage_enter), -1 before the first */
    bool split_now;            /* the chunk running is split between the CPU and the GPU */
    bool cpu_packs_to_drop;    /* a chunk without the split ran: CPU packs may sit in VRAM */
    int exp_cur;               /* streamed experts: the expert whose pieces are running (-1) */
    int exp_n;                 /* ... the tokens routed to it */
    int64_t exp_down_rows;     /* ... rows of its down projection done */
    bool *routed;              /* (n_expert): experts the current layer's tokens use */
    /* expert prediction (streamed MoE): before layer l runs, layer l's router applied to the
     * residual stream as layer l - 1 left it says which experts to prefetch */
    bool predict;
    int pred_layer;            /* the layer predicted[] is for (-1: none) */
    bool *predicted;           /* (n_expert) */
    int32_t *pred_expert;      /* (n_batch * n_expert) scratch for the top-k */
    float *pred_weight;
    uint64_t *pred_tp, *pred_np, *pred_na; /* per layer: right guesses, guesses, experts used */
    /* the CPU/GPU split of decode (sym_forward_set_split) */
    sym_backend *cpu;          /* borrowed; NULL: no split */
    bool *cpu_pack;            /* (n_packs): decoded on the CPU from the RAM tier */
    struct split_unit {        /* one matrix piece of a layer stage */
        uint32_t use, piece;
    } *units;
    uint32_t *stage_units;     /* (4 * n_layer + 1): units of stage s are units[stage_units[s] ..
                                * stage_units[s + 1]), the CPU ones first */
    uint32_t *stage_cpu;       /* (4 * n_layer): how many of them are CPU units */
    bool *unit_done;           /* per unit: recorded in the stage running */
    bool *host_ffn;            /* (n_layer): the layer's whole MLP is the CPU's (its down
                                * projection's input never leaves the host) */
    int split_order;           /* SPLIT_*: what a stage runs first */
    float *h_in, *h_out;       /* host: a stage's input (widest row) and the CPU pieces' outputs */
    sym_forward_stream_stats ss;
};

static void release_deferred(sym_forward_pass *f, int all);
static sym_status route_layer(sym_forward_pass *f, int l, const sym_tensor *xn,
                              const sym_tensor *router);
static const sym_tensor *opt(const sym_tensor *t) { return t->n_rows ? t : NULL; }

/* ---- set-up ------------------------------------------------------------------------------------ */

static sym_status load_weight(sym_forward_pass *f, sym_backend *b, sym_tensor *t,
                              const sym_weight *w) {
    if (!w->data) return SYM_OK; /* optional and absent */
    sym_status st = b->ops->load(b, t, w->data, w->type, w->n_cols, w->n_rows);
    if (st != SYM_OK) sym_error_prefix("loading %s", w->name);
    if (st == SYM_OK && f->opt.progress) {
        f->loaded_bytes += sym_dtype_size(w->type) * (uint64_t)w->n_cols * (uint64_t)w->n_rows;
        f->opt.progress(f->opt.progress_user, f->loaded_bytes, f->opt.progress_total);
    }
    return st;
}

/* Biases are tiny and the backend interface takes them as f32: convert once at load. */
static sym_status load_bias(sym_forward_pass *f, sym_backend *b, sym_tensor *t,
                            const sym_weight *w) {
    if (!w->data || w->type == SYM_DT_F32) return load_weight(f, b, t, w);
    size_t n = (size_t)w->n_cols * (size_t)w->n_rows;
    float *tmp = sym_malloc(n * sizeof *tmp);
    if (!tmp) return SYM_FAIL(SYM_ERR_OOM, "forward: out of memory converting %s", w->name);
    sym_tensor src = {.type = w->type, .n_cols = w->n_cols, .n_rows = w->n_rows,
                      .data = (void *)w->data};
    for (int64_t r = 0; r < w->n_rows; r++)
        for (int64_t c = 0; c < w->n_cols; c++)
            tmp[(size_t)r * (size_t)w->n_cols + (size_t)c] = sym_ref_get(&src, r, c);
    sym_status st = b->ops->alloc(b, t, SYM_DT_F32, w->n_cols, w->n_rows);
    if (st == SYM_OK) st = b->ops->write(b, t, tmp, n * sizeof *tmp);
    sym_free(tmp);
    if (st != SYM_OK) sym_error_prefix("loading %s", w->name);
    return st;
}

static void release(sym_backend *b, sym_tensor *t) {
    if (t->n_rows) b->ops->release(b, t);
}

/* Can scale_cols fold a norm into w? (f32, or f16 rows of an even length: bf16 would round the
 * products to 8 bits) */
static bool foldable(const sym_tensor *w) {
    return w->type == SYM_DT_F32 || (w->type == SYM_DT_F16 && w->n_cols % 2 == 0);
}

/* Folds norm g into the n matrices of ws, all or none: every product is checked first (a
 * product of finite values beyond the weights' type leaves them as they are: false). */
static sym_status fold_group(sym_backend *b, sym_tensor **ws, int n, const sym_tensor *g,
                             bool *folded) {
    *folded = false;
    for (int i = 0; i < n; i++)
        if (!foldable(ws[i])) return SYM_OK;
    for (int i = 0; i < n; i++) {
        sym_status st = b->ops->scale_cols(b, ws[i], g, 0);
        if (st == SYM_ERR_RANGE) {
            SYM_WARN("forward: %s; the norm stays apart from these products", sym_last_error());
            return SYM_OK;
        }
        SYM_TRY(st);
    }
    for (int i = 0; i < n; i++)
        SYM_TRY(b->ops->scale_cols(b, ws[i], g, 1));
    *folded = true;
    return SYM_OK;
}

/* Folds each layer's attention norm into Wq, Wk, Wv and (dense MLPs) its FFN norm into W_gate
 * and W_up: the fused kernels then read no norm weight for every row (docs/VULKAN.md: 8% of a 7B
 * token on an H100). Each product then sees x / rms(x) times norm-scaled weights, rounded once
 * to the weights' type. */
static sym_status fold_norms(sym_forward_pass *f) {
    sym_backend *b = f->b;
    for (int l = 0; l < f->hp->n_layer; l++) {
        layer_tensors *t = &f->layers[l];
        sym_tensor *attn[] = {&t->wq, &t->wk, &t->wv}, *ffn[] = {&t->w_gate, &t->w_up};
        SYM_TRY(fold_group(b, attn, 3, &t->attn_norm, &t->attn_folded));
        if (f->hp->n_expert == 0) SYM_TRY(fold_group(b, ffn, 2, &t->ffn_norm, &t->ffn_folded));
    }
    return SYM_OK;
}

/* The widest input or output of a layer's products (the output projection aside): columns of the
 * streaming scratch, the widest row slice whose product has more than one row. */
int64_t sym_forward_widest(const sym_hparams *hp) {
    int64_t c = hp->n_embd;
    if (hp->n_ff > c) c = hp->n_ff;
    if ((int64_t)hp->n_head * hp->head_dim > c) c = (int64_t)hp->n_head * hp->head_dim;
    return c;
}

uint64_t sym_forward_scratch_bytes(const sym_hparams *hp, const sym_forward_options *o) {
    uint64_t q = (uint64_t)hp->n_head * hp->head_dim, kvd = (uint64_t)hp->n_head_kv * hp->head_dim;
    uint64_t nb = (uint64_t)(o->n_batch < o->n_ctx ? o->n_batch : o->n_ctx);
    uint64_t act = nb * (2 * hp->n_embd + 2 * q + 2 * kvd + 2 * hp->n_ff) * 4;
    if (o->streamed) act += nb * (uint64_t)sym_forward_widest(hp) * 4;
    if (hp->n_expert > 0) act += nb * (uint64_t)(hp->n_expert + 2 * hp->n_embd + 2 * hp->n_ff) * 4;
    return act + (uint64_t)hp->n_vocab * 4 +
           sym_kv_cache_bytes(hp->n_layer, o->n_ctx, (int)kvd, o->kv_type);
}

uint64_t sym_forward_vector_bytes(const sym_model *m) {
    const sym_hparams *hp = sym_model_hparams(m);
    const sym_model_weights *mw = sym_model_weights_of(m);
    uint64_t n = (uint64_t)mw->output_norm.n_cols * 4;
    for (int l = 0; l < hp->n_layer; l++) {
        const sym_layer_weights *w = &mw->layers[l];
        const sym_weight *v[] = {&w->attn_norm, &w->ffn_norm, &w->bq, &w->bk, &w->bv};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
            if (v[i]->data) n += (uint64_t)v[i]->n_cols * (uint64_t)v[i]->n_rows * 4;
    }
    return n;
}

sym_status sym_forward_create(sym_backend *b, const sym_model *m, const sym_forward_options *opts,
                              sym_forward_pass **out) {
    const sym_hparams *hp = sym_model_hparams(m);
    const sym_model_weights *mw = sym_model_weights_of(m);
    SYM_CHECK(opts->n_ctx > 0 && opts->n_batch > 0, SYM_ERR_ARG, "forward: n_ctx %d, n_batch %d",
              opts->n_ctx, opts->n_batch);
    SYM_CHECK(opts->kv_type == SYM_DT_F16 || opts->kv_type == SYM_DT_F32, SYM_ERR_ARG,
              "forward: KV cache type must be f16 or f32");
    sym_forward_pass *f = sym_calloc(1, sizeof *f);
    if (!f) return SYM_FAIL(SYM_ERR_OOM, "forward: out of memory");
    f->b = b;
    f->hp = hp;
    f->opt = *opts;
    if (f->opt.n_batch > f->opt.n_ctx) f->opt.n_batch = f->opt.n_ctx;
    sym_status st = SYM_OK;
    f->layers = sym_calloc((size_t)hp->n_layer, sizeof *f->layers);
    if (!f->layers) SYM_FAIL_GOTO(SYM_ERR_OOM, "forward: out of memory");

    /* vectors (norms, biases) always; matrices only when resident */
    bool mats = !opts->streamed;
    if (mats) SYM_TRY_GOTO(load_weight(f, b, &f->token_embd, &mw->token_embd));
    SYM_TRY_GOTO(load_weight(f, b, &f->output_norm, &mw->output_norm));
    if (mats && !hp->tied_embeddings) SYM_TRY_GOTO(load_weight(f, b, &f->output, &mw->output));
    for (int l = 0; l < hp->n_layer; l++) {
        const sym_layer_weights *w = &mw->layers[l];
        layer_tensors *t = &f->layers[l];
        SYM_TRY_GOTO(load_weight(f, b, &t->attn_norm, &w->attn_norm));
        SYM_TRY_GOTO(load_bias(f, b, &t->bq, &w->bq));
        SYM_TRY_GOTO(load_bias(f, b, &t->bk, &w->bk));
        SYM_TRY_GOTO(load_bias(f, b, &t->bv, &w->bv));
        SYM_TRY_GOTO(load_weight(f, b, &t->ffn_norm, &w->ffn_norm));
        if (hp->n_expert > 0) SYM_TRY_GOTO(load_weight(f, b, &t->router, &w->ffn_gate_inp));
        if (!mats) continue;
        if (hp->n_expert > 0) {
            t->experts = sym_calloc((size_t)hp->n_expert, sizeof *t->experts);
            if (!t->experts) SYM_FAIL_GOTO(SYM_ERR_OOM, "forward: out of memory");
            if (!hp->expert_split) {
                SYM_TRY_GOTO(load_weight(f, b, &t->gate_exps, &w->ffn_gate_exps));
                SYM_TRY_GOTO(load_weight(f, b, &t->up_exps, &w->ffn_up_exps));
                SYM_TRY_GOTO(load_weight(f, b, &t->down_exps, &w->ffn_down_exps));
                for (int e = 0; e < hp->n_expert; e++)
                    t->experts[e] = sym_moe_expert_view(&t->gate_exps, &t->up_exps,
                                                        &t->down_exps, hp->n_expert, e);
            } else {
                for (int e = 0; e < hp->n_expert; e++) {
                    SYM_TRY_GOTO(load_weight(f, b, &t->experts[e].gate, &w->exp_gate[e]));
                    SYM_TRY_GOTO(load_weight(f, b, &t->experts[e].up, &w->exp_up[e]));
                    SYM_TRY_GOTO(load_weight(f, b, &t->experts[e].down, &w->exp_down[e]));
                }
            }
        }
        SYM_TRY_GOTO(load_weight(f, b, &t->wq, &w->wq));
        SYM_TRY_GOTO(load_weight(f, b, &t->wk, &w->wk));
        SYM_TRY_GOTO(load_weight(f, b, &t->wv, &w->wv));
        SYM_TRY_GOTO(load_weight(f, b, &t->wo, &w->wo));
        SYM_TRY_GOTO(load_weight(f, b, &t->w_gate, &w->w_gate));
        SYM_TRY_GOTO(load_weight(f, b, &t->w_up, &w->w_up));
        SYM_TRY_GOTO(load_weight(f, b, &t->w_down, &w->w_down));
    }

    if (mats && !opts->no_fold_norms && b->ops->scale_cols) SYM_TRY_GOTO(fold_norms(f));

    int nb = f->opt.n_batch, qd = hp->n_head * hp->head_dim, kvd = hp->n_head_kv * hp->head_dim;
    SYM_TRY_GOTO(sym_kv_cache_create(&f->kv, b, hp->n_layer, f->opt.n_ctx, kvd, f->opt.kv_type));
    SYM_TRY_GOTO(b->ops->alloc(b, &f->x, SYM_DT_F32, hp->n_embd, nb));
    SYM_TRY_GOTO(b->ops->alloc(b, &f->xn, SYM_DT_F32, hp->n_embd, nb));
    SYM_TRY_GOTO(b->ops->alloc(b, &f->q, SYM_DT_F32, qd, nb));
    SYM_TRY_GOTO(b->ops->alloc(b, &f->k, SYM_DT_F32, kvd, nb));
    SYM_TRY_GOTO(b->ops->alloc(b, &f->v, SYM_DT_F32, kvd, nb));
    SYM_TRY_GOTO(b->ops->alloc(b, &f->att, SYM_DT_F32, qd, nb));
    SYM_TRY_GOTO(b->ops->alloc(b, &f->gate, SYM_DT_F32, hp->n_ff, nb));
    SYM_TRY_GOTO(b->ops->alloc(b, &f->up, SYM_DT_F32, hp->n_ff, nb));
    SYM_TRY_GOTO(b->ops->alloc(b, &f->logits, SYM_DT_F32, hp->n_vocab, 1));
    if (b->ops->argmax) SYM_TRY_GOTO(b->ops->alloc(b, &f->amax, SYM_DT_F32, 1, 1));
    if (b->ops->topk) SYM_TRY_GOTO(b->ops->alloc(b, &f->top, SYM_DT_F32, 2 * SYM_TOPK_MAX, 1));
    if (hp->n_expert > 0) {
        SYM_TRY_GOTO(sym_moe_scratch_alloc(b, hp->n_embd, hp->n_ff, hp->n_expert, nb, &f->moe));
        size_t nr = (size_t)nb * (size_t)hp->n_expert_used;
        f->route.expert = sym_malloc(nr * sizeof *f->route.expert);
        f->route.weight = sym_malloc(nr * sizeof *f->route.weight);
        f->routed = sym_calloc((size_t)hp->n_expert, sizeof *f->routed);
        f->predicted = sym_calloc((size_t)hp->n_expert, sizeof *f->predicted);
        size_t ne = (size_t)nb * (size_t)hp->n_expert;
        f->pred_expert = sym_malloc(ne * sizeof *f->pred_expert);
        f->pred_weight = sym_malloc(ne * sizeof *f->pred_weight);
        f->pred_tp = sym_calloc((size_t)hp->n_layer, sizeof *f->pred_tp);
        f->pred_np = sym_calloc((size_t)hp->n_layer, sizeof *f->pred_np);
        f->pred_na = sym_calloc((size_t)hp->n_layer, sizeof *f->pred_na);
        if (!f->route.expert || !f->route.weight || !f->routed || !f->predicted ||
            !f->pred_expert || !f->pred_weight || !f->pred_tp || !f->pred_np || !f->pred_na)
            SYM_FAIL_GOTO(SYM_ERR_OOM, "forward: out of memory");
        f->pred_layer = -1;
    }
    if (opts->streamed) {
        SYM_TRY_GOTO(b->ops->alloc(b, &f->tmp, SYM_DT_F32, sym_forward_widest(hp), nb));
        f->x_host = sym_malloc((size_t)nb * (size_t)hp->n_embd * sizeof *f->x_host);
        if (!f->x_host) SYM_FAIL_GOTO(SYM_ERR_OOM, "forward: out of memory");
    }
    *out = f;
    return SYM_OK;
fail:
    sym_forward_destroy(f);
    return st;
}

void sym_forward_destroy(sym_forward_pass *f) {
    if (!f) return;
    sym_backend *b = f->b;
    release_deferred(f, 1);
    sym_free(f->deferred);
    sym_moe_scratch_release(b, &f->moe);
    sym_free(f->route.expert);
    sym_free(f->route.weight);
    sym_free(f->routed);
    sym_free(f->predicted);
    sym_free(f->pred_expert);
    sym_free(f->pred_weight);
    sym_free(f->pred_tp);
    sym_free(f->pred_np);
    sym_free(f->pred_na);
    sym_free(f->cpu_pack);
    sym_free(f->unit_done);
    sym_free(f->host_ffn);
    sym_free(f->units);
    sym_free(f->stage_units);
    sym_free(f->stage_cpu);
    sym_free(f->h_in);
    sym_free(f->h_out);
    sym_free(f->x_host);
    sym_free(f->host_logits);
    sym_tensor *acts[] = {&f->x,    &f->xn, &f->q,      &f->k,    &f->v,   &f->att,
                          &f->gate, &f->up, &f->logits, &f->amax, &f->top, &f->tmp};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) release(b, acts[i]);
    if (f->kv.k) sym_kv_cache_destroy(&f->kv);
    if (f->layers) {
        for (int l = 0; l < f->hp->n_layer; l++) {
            layer_tensors *t = &f->layers[l];
            sym_tensor *ws[] = {&t->attn_norm, &t->wq,        &t->wk,      &t->wv,
                                &t->bq,        &t->bk,        &t->bv,      &t->wo,
                                &t->ffn_norm,  &t->w_gate,    &t->w_up,    &t->w_down,
                                &t->router,    &t->gate_exps, &t->up_exps, &t->down_exps};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) release(b, ws[i]);
            if (t->experts && f->hp->expert_split)
                for (int e = 0; e < f->hp->n_expert; e++) {
                    release(b, &t->experts[e].gate);
                    release(b, &t->experts[e].up);
                    release(b, &t->experts[e].down);
                }
            sym_free(t->experts);
        }
    }
    release(b, &f->token_embd);
    release(b, &f->output_norm);
    release(b, &f->output);
    sym_free(f->layers);
    sym_free(f);
}

void sym_forward_reset(sym_forward_pass *f) { f->kv.n_past = 0; }
int sym_forward_n_past(const sym_forward_pass *f) { return f->kv.n_past; }
int sym_forward_n_ctx(const sym_forward_pass *f) { return f->opt.n_ctx; }
int sym_forward_n_batch(const sym_forward_pass *f) { return f->opt.n_batch; }

/* ---- streaming ------------------------------------------------------------------------------- */
/* The weights arrive as packs, in schedule order, each holding row slices ("pieces") of one
 * block's matrices. Each piece is run as soon as its pack is pinned: a slice of Wq fills its
 * columns of q, a slice of Wo adds its columns into x, and so on. The steps that need a whole
 * product (RoPE and attention after Q/K/V, silu after gate/up) run when the first piece of the
 * next matrix arrives. A pack is given back once the ops reading it have finished (fence), so
 * the device tier needs room for one pack plus what is prefetched. */

sym_status sym_forward_set_packs(sym_forward_pass *f, sym_pack_manager *pm,
                                 const sym_pack_plan *plan, sym_tier tier, int lookahead) {
    SYM_CHECK(f->opt.streamed, SYM_ERR_ARG, "forward: packs given to a resident forward pass");
    SYM_CHECK(tier == SYM_TIER_DEVICE || tier == SYM_TIER_RAM, SYM_ERR_ARG,
              "forward: packs must be read from the device or RAM tier");
    SYM_CHECK(plan->n_layer == f->hp->n_layer, SYM_ERR_ARG, "forward: the plan is of another model");
    sym_free(f->deferred);
    f->deferred = sym_calloc(plan->n_packs, sizeof *f->deferred);
    if (!f->deferred) return SYM_FAIL(SYM_ERR_OOM, "forward: out of memory");
    f->cap_deferred = plan->n_packs;
    f->n_deferred = f->deferred_head = 0;
    f->pm = pm;
    f->plan = plan;
    f->tier = tier;
    f->lookahead = lookahead > 0 ? lookahead : 0;
    return SYM_OK;
}

void sym_forward_set_predict(sym_forward_pass *f, bool on) { f->predict = on; }

void sym_forward_set_chunk_hook(sym_forward_pass *f, void (*fn)(void *user, int n_tok),
                                void *user) {
    f->chunk_fn = fn;
    f->chunk_user = user;
}

void sym_forward_prediction_stats(const sym_forward_pass *f, int layer, uint64_t *right,
                                  uint64_t *guessed, uint64_t *used) {
    bool ok = f->pred_tp && layer >= 0 && layer < f->hp->n_layer;
    *right = ok ? f->pred_tp[layer] : 0;
    *guessed = ok ? f->pred_np[layer] : 0;
    *used = ok ? f->pred_na[layer] : 0;
}

void sym_forward_set_route_hook(sym_forward_pass *f, sym_forward_route_fn fn, void *user) {
    f->route_fn = fn;
    f->route_user = user;
}

void sym_forward_stream_stats_get(const sym_forward_pass *f, sym_forward_stream_stats *out) {
    *out = f->ss;
}

static double ms_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Releases deferred packs whose ops are done: the finished prefix (all: every one, after a
 * sync). */
static void release_deferred(sym_forward_pass *f, int all) {
    const sym_backend_ops *o = f->b->ops;
    while (f->n_deferred) {
        struct deferred *d = &f->deferred[f->deferred_head];
        if (!all && o->fence_done && !o->fence_done(f->b, d->ticket, 0)) break;
        sym_pack_manager_release(f->pm, &d->h);
        f->deferred_head = (f->deferred_head + 1) % f->cap_deferred;
        f->n_deferred--;
    }
}

/* Waits for the oldest deferred pack's ops and releases it. */
static void release_oldest(sym_forward_pass *f) {
    struct deferred *d = &f->deferred[f->deferred_head];
    if (f->b->ops->fence_done) f->b->ops->fence_done(f->b, d->ticket, 1);
    sym_pack_manager_release(f->pm, &d->h);
    f->deferred_head = (f->deferred_head + 1) % f->cap_deferred;
    f->n_deferred--;
}

static void defer_release(sym_forward_pass *f, sym_pack_handle *h) {
    const sym_backend_ops *o = f->b->ops;
    uint64_t ticket = o->fence ? o->fence(f->b) : 0;
    if (!o->fence || !ticket) { /* nothing can still read it */
        sym_pack_manager_release(f->pm, h);
        return;
    }
    SYM_ASSERT(f->n_deferred < f->cap_deferred);
    struct deferred *d = &f->deferred[(f->deferred_head + f->n_deferred) % f->cap_deferred];
    d->h = *h;
    d->ticket = ticket;
    f->n_deferred++;
}

/* Pins pack id in tier; when the tier is full of packs that ops may still read, waits for the
 * oldest of them and tries again. */
static sym_status get_pack(sym_forward_pass *f, uint32_t id, sym_tier tier, sym_pack_handle *h) {
    release_deferred(f, 0);
    /* not in RAM yet (absent or still being read): the wait is the disk's */
    bool from_disk = sym_pack_manager_tier_of(f->pm, id) == SYM_TIER_DISK;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sym_status st;
    for (;;) {
        st = sym_pack_manager_get(f->pm, id, tier, h);
        if (st != SYM_ERR_BUDGET || !f->n_deferred) break;
        release_oldest(f);
    }
    double ms = ms_since(&t0);
    f->ss.get_ms += ms;
    if (from_disk) f->ss.disk_wait_ms += ms;
    f->ss.n_gets++;
    return st;
}

/* An EXPERT pack is needed when its layer is the one running and a token is routed to it. */
static bool expert_needed(const sym_forward_pass *f, const sym_pack *pk) {
    return f->stage == pk->layer * 4 + 3 /* ST_FFN_OUT */ && pk->expert >= 0 &&
           f->routed[pk->expert];
}

/* ... or worth prefetching: predicted for its layer before the layer's router has run. */
static bool expert_wanted(const sym_forward_pass *f, const sym_pack *pk) {
    return expert_needed(f, pk) || (f->predict && pk->layer == f->pred_layer && pk->expert >= 0 &&
                                    f->stage < pk->layer * 4 + 3 && f->predicted[pk->expert]);
}

/* Prefetches the packs of the next lookahead FULL uses after schedule entry u (skipping the
 * output uses when no logits are wanted this chunk): they move while this one computes. */
static void prefetch_after(sym_forward_pass *f, uint32_t u) {
    const sym_pack_plan *p = f->plan;
    for (int k = 1, n = 0; n < f->lookahead && k < (int)p->n_uses; k++) {
        const sym_pack_use *use = &p->schedule[(u + (uint32_t)k) % p->n_uses];
        if (use->kind == SYM_PACK_USE_GATHER) continue;
        const sym_pack *pk = &p->packs[use->pack_id];
        if (pk->type == SYM_PACK_EXPERT && !expert_wanted(f, pk)) continue; /* not known yet */
        if (f->split_now && f->cpu_pack[use->pack_id]) continue; /* read from RAM by the CPU */
        if (sym_pack_manager_prefetch(f->pm, use->pack_id, f->tier) != SYM_OK) break;
        n++;
    }
}

/* What a split stage runs first: the GPU pieces whose packs are in VRAM, then the CPU's, then
 * the GPU's others (default); the CPU's; or every GPU piece (each get waiting for its upload).
 * SYM_SPLIT_ORDER=ready|cpu|gpu chooses (benchmarks). */
enum { SPLIT_READY_FIRST = 0, SPLIT_CPU_FIRST, SPLIT_GPU_FIRST };

/* Stages of a layer in their order; stage numbers are layer * 4 + stage, then OUT. */
enum { ST_ATTN_IN = 0, ST_ATTN_OUT, ST_FFN_IN, ST_FFN_OUT };

typedef struct chunk_ctx chunk_ctx;
static sym_status predict_experts(sym_forward_pass *f, chunk_ctx *c, int l);

struct chunk_ctx {
    int n, pos0;
    sym_tensor x, xn, q, k, v, att, gate, up;
};

/* Layer l's router applied to the residual stream as layer l - 1 left it (normed with layer l's
 * FFN norm): each token's top n_expert_used experts are predicted, and their packs prefetched
 * while layer l's attention runs. Layer 0 gets no prediction. */
static sym_status predict_experts(sym_forward_pass *f, chunk_ctx *c, int l) {
    const sym_hparams *hp = f->hp;
    memset(f->predicted, 0, (size_t)hp->n_expert * sizeof *f->predicted);
    f->pred_layer = -1;
    if (l == 0) return SYM_OK;
    sym_backend *b = f->b;
    sym_moe_scratch *s = &f->moe;
    sym_tensor xn = sym_tensor_rows(&s->xe, 0, c->n), lg = sym_tensor_rows(&s->logits, 0, c->n);
    b->ops->rmsnorm(b, &xn, &c->x, &f->layers[l].ffn_norm, hp->rms_eps);
    b->ops->matmul(b, &lg, &xn, &f->layers[l].router, NULL);
    SYM_TRY(b->ops->read(b, &lg, s->logits_host,
                         (size_t)c->n * (size_t)hp->n_expert * sizeof *s->logits_host));
    int k = hp->n_expert_used;
    sym_moe_topk(s->logits_host, c->n, hp->n_expert, k, f->pred_expert, f->pred_weight);
    for (int j = 0; j < c->n * k; j++) f->predicted[f->pred_expert[j]] = true;
    f->pred_layer = l;
    /* prefetch them now, ahead of the attention */
    const sym_pack_plan *p = f->plan;
    for (uint32_t u = 0; u < p->n_uses; u++) {
        const sym_pack *pk = &p->packs[p->schedule[u].pack_id];
        if (pk->type == SYM_PACK_EXPERT && pk->layer == l && pk->expert >= 0 &&
            f->predicted[pk->expert])
            (void)sym_pack_manager_prefetch(f->pm, pk->id, f->tier);
    }
    return SYM_OK;
}

/* Begins stage s of layer l: runs what lies between the previous stage's products and this
 * one's. SYM_ERR_INTERNAL if the schedule does not bring stages in order. */
static sym_status stage_enter(sym_forward_pass *f, chunk_ctx *c, int l, int s) {
    int want = l * 4 + s;
    if (f->stage == want) return SYM_OK;
    SYM_CHECK(f->stage == want - 1, SYM_ERR_INTERNAL,
              "forward: the pack schedule reaches stage %d of layer %d out of order", s, l);
    f->stage = want;
    sym_backend *b = f->b;
    const sym_backend_ops *o = b->ops;
    const sym_hparams *hp = f->hp;
    layer_tensors *w = &f->layers[l];
    switch (s) {
    case ST_ATTN_IN:
        if (f->predict && hp->n_expert > 0 && f->pm) SYM_TRY(predict_experts(f, c, l));
        o->rmsnorm(b, &c->xn, &c->x, &w->attn_norm, hp->rms_eps);
        break;
    case ST_ATTN_OUT: {
        float freq_scale = hp->rope_freq_scale;
        if (f->opt.rope_scale > 0.0f) freq_scale /= f->opt.rope_scale;
        o->rope(b, &c->q, hp->n_head, hp->head_dim, c->pos0, hp->rope_theta, freq_scale,
                hp->rope_neox);
        o->rope(b, &c->k, hp->n_head_kv, hp->head_dim, c->pos0, hp->rope_theta, freq_scale,
                hp->rope_neox);
        o->store_rows(b, &f->kv.k[l], c->pos0, &c->k);
        o->store_rows(b, &f->kv.v[l], c->pos0, &c->v);
        o->attention(b, &c->att, &c->q, &f->kv.k[l], &f->kv.v[l], hp->n_head, hp->n_head_kv,
                     hp->head_dim, c->pos0, 1.0f / sqrtf((float)hp->head_dim));
        break;
    }
    case ST_FFN_IN:
        o->rmsnorm(b, &c->xn, &c->x, &w->ffn_norm, hp->rms_eps);
        break;
    default:
        if (hp->n_expert == 0) o->silu_mul(b, &c->gate, &c->gate, &c->up);
        break;
    }
    return SYM_OK;
}

/* Columns [col0, col0 + w) of a (n_rows, n) f32 tensor with one row: a contiguous view. */
static sym_tensor col_view(const sym_tensor *t, int64_t col0, int64_t w) {
    sym_tensor v = *t;
    v.n_cols = w;
    if (v.data) v.data = (float *)v.data + col0;
    v.offset += (uint64_t)col0 * 4;
    return v;
}

/* out[:, row0 .. row0 + slice rows) (+)= x slice^T (+ bias slice). */
static void slice_product(sym_forward_pass *f, sym_tensor *out, const sym_tensor *x,
                          const sym_tensor *slice, const sym_tensor *bias, int64_t row0,
                          int accumulate) {
    sym_backend *b = f->b;
    int64_t nr = slice->n_rows, n = x->n_rows;
    sym_tensor bv, *bp = NULL;
    if (bias) {
        bv = col_view(bias, row0, nr);
        bp = &bv;
    }
    if ((row0 == 0 && nr == out->n_cols) || n == 1) {
        sym_tensor ov = row0 == 0 && nr == out->n_cols ? *out : col_view(out, row0, nr);
        if (accumulate) {
            sym_tensor tmp = sym_tensor_rows(&f->tmp, 0, n);
            tmp.n_cols = nr;
            sym_op_matmul_add(b, &ov, x, slice, &tmp);
        } else {
            b->ops->matmul(b, &ov, x, slice, bp);
        }
        return;
    }
    sym_tensor tmp = f->tmp;
    tmp.n_cols = nr;
    tmp.n_rows = n;
    b->ops->matmul(b, &tmp, x, slice, bp);
    b->ops->set_cols(b, out, row0, &tmp, accumulate);
}

/* Gathers the embedding rows of the chunk's tokens that lie in pinned pack h (host memory). */
static void gather_rows(sym_forward_pass *f, const sym_pack_handle *h, const int32_t *ids, int n) {
    const sym_pack *pk = &f->plan->packs[h->pack_id];
    for (uint32_t i = 0; i < pk->n_pieces; i++) {
        const sym_pack_piece *pc = &f->plan->pieces[pk->piece0 + i];
        if (f->plan->weights[pc->weight_idx].role != SYM_ROLE_TOKEN_EMBD) continue;
        sym_tensor t;
        if (sym_pack_manager_view(f->pm, h, i, &t) != SYM_OK) continue;
        int64_t ne = f->hp->n_embd;
        for (int j = 0; j < n; j++) {
            int64_t r = ids[j] - pc->row0;
            if (r < 0 || r >= pc->n_rows) continue;
            float *dst = f->x_host + (size_t)j * (size_t)ne;
            for (int64_t e = 0; e < ne; e++) dst[e] = sym_ref_get(&t, r, e);
        }
    }
}

static bool pack_has_ids(const sym_forward_pass *f, const sym_pack *pk, const int32_t *ids, int n) {
    for (uint32_t i = 0; i < pk->n_pieces; i++) {
        const sym_pack_piece *pc = &f->plan->pieces[pk->piece0 + i];
        if (f->plan->weights[pc->weight_idx].role != SYM_ROLE_TOKEN_EMBD) continue;
        for (int j = 0; j < n; j++)
            if (ids[j] >= pc->row0 && ids[j] < pc->row0 + pc->n_rows) return true;
    }
    return false;
}

/* A row slice of expert e's gate, up or down matrix (rows from row0 of the whole tensor: stacked
 * tensors hold every expert). The expert's tokens are gathered at its first piece; its output
 * rows go back into x, weighted, after its last down rows. */
static sym_status run_expert_piece(sym_forward_pass *f, chunk_ctx *c, int l, int e,
                                   sym_tensor_role role, int64_t row0, const sym_tensor *w) {
    sym_backend *b = f->b;
    const sym_hparams *hp = f->hp;
    SYM_CHECK(f->stage == l * 4 + ST_FFN_OUT && e >= 0 && e < hp->n_expert, SYM_ERR_INTERNAL,
              "forward: expert %d of layer %d comes before its router", e, l);
    if (!f->routed[e]) return SYM_OK;
    sym_moe_scratch *s = &f->moe;
    if (f->exp_cur != e) { /* the expert's first piece: its tokens */
        SYM_CHECK(f->exp_cur < 0, SYM_ERR_INTERNAL, "forward: expert %d of layer %d is unfinished",
                  f->exp_cur, l);
        int k = f->route.n_expert_used, n_e = 0;
        for (int t = 0; t < f->route.n_tok; t++)
            for (int j = 0; j < k; j++)
                if (f->route.expert[t * k + j] == e) {
                    s->rows[n_e] = t;
                    s->scales[n_e++] = f->route.weight[t * k + j];
                }
        f->exp_cur = e;
        f->exp_n = n_e;
        f->exp_down_rows = 0;
        if (n_e < c->n) {
            sym_tensor xe = sym_tensor_rows(&s->xe, 0, n_e);
            b->ops->embed(b, &xe, &c->xn, s->rows, n_e);
        }
    }
    int n_e = f->exp_n;
    sym_tensor xe = n_e < c->n ? sym_tensor_rows(&s->xe, 0, n_e) : c->xn;
    sym_tensor gate = sym_tensor_rows(&s->gate, 0, n_e), up = sym_tensor_rows(&s->up, 0, n_e);
    bool stacked = role == SYM_ROLE_GATE_EXPS || role == SYM_ROLE_UP_EXPS ||
                   role == SYM_ROLE_DOWN_EXPS;
    if (role == SYM_ROLE_GATE_EXPS || role == SYM_ROLE_GATE_EXP ||
        role == SYM_ROLE_UP_EXPS || role == SYM_ROLE_UP_EXP) {
        SYM_CHECK(f->exp_down_rows == 0, SYM_ERR_INTERNAL,
                  "forward: expert %d's gate/up rows come after its down rows", e);
        int64_t r0 = row0 - (stacked ? (int64_t)e * hp->n_ff : 0);
        bool is_gate = role == SYM_ROLE_GATE_EXPS || role == SYM_ROLE_GATE_EXP;
        slice_product(f, is_gate ? &gate : &up, &xe, w, NULL, r0, 0);
        return SYM_OK;
    }
    if (f->exp_down_rows == 0) b->ops->silu_mul(b, &gate, &gate, &up);
    sym_tensor out = sym_tensor_rows(&s->out, 0, n_e);
    int64_t r0 = row0 - (stacked ? (int64_t)e * hp->n_embd : 0);
    slice_product(f, &out, &gate, w, NULL, r0, 0);
    f->exp_down_rows += w->n_rows;
    if (f->exp_down_rows == hp->n_embd) {
        b->ops->add_rows_scaled(b, &c->x, &out, s->rows, s->scales);
        f->exp_cur = -1;
    }
    return SYM_OK;
}

/* Runs piece i of pinned pack h. */
static sym_status run_piece(sym_forward_pass *f, chunk_ctx *c, const sym_pack_handle *h,
                            uint32_t i, bool want_logits) {
    const sym_pack *pk = &f->plan->packs[h->pack_id];
    const sym_pack_piece *pc = &f->plan->pieces[pk->piece0 + i];
    const sym_pack_weight *pw = &f->plan->weights[pc->weight_idx];
    int l = pw->layer;
    layer_tensors *lw = l >= 0 ? &f->layers[l] : NULL;
    sym_tensor w;
    switch (pw->role) {
    case SYM_ROLE_WQ: case SYM_ROLE_WK: case SYM_ROLE_WV: {
        SYM_TRY(stage_enter(f, c, l, ST_ATTN_IN));
        SYM_TRY(sym_pack_manager_view(f->pm, h, i, &w));
        sym_tensor *out = pw->role == SYM_ROLE_WQ ? &c->q : pw->role == SYM_ROLE_WK ? &c->k : &c->v;
        const sym_tensor *bias = opt(pw->role == SYM_ROLE_WQ   ? &lw->bq
                                     : pw->role == SYM_ROLE_WK ? &lw->bk
                                                               : &lw->bv);
        slice_product(f, out, &c->xn, &w, bias, pc->row0, 0);
        break;
    }
    case SYM_ROLE_WO:
        SYM_TRY(stage_enter(f, c, l, ST_ATTN_OUT));
        SYM_TRY(sym_pack_manager_view(f->pm, h, i, &w));
        slice_product(f, &c->x, &c->att, &w, NULL, pc->row0, 1);
        break;
    case SYM_ROLE_W_GATE: case SYM_ROLE_W_UP:
        SYM_TRY(stage_enter(f, c, l, ST_FFN_IN));
        SYM_TRY(sym_pack_manager_view(f->pm, h, i, &w));
        slice_product(f, pw->role == SYM_ROLE_W_GATE ? &c->gate : &c->up, &c->xn, &w, NULL,
                      pc->row0, 0);
        break;
    case SYM_ROLE_FFN_GATE_INP: /* the router: route now; the experts come next */
        SYM_TRY(stage_enter(f, c, l, ST_FFN_IN));
        SYM_TRY(sym_pack_manager_view(f->pm, h, i, &w));
        SYM_CHECK(pc->row0 == 0 && pc->n_rows == w.n_rows && w.n_rows == f->hp->n_expert,
                  SYM_ERR_INTERNAL, "forward: layer %d's router is cut across packs", l);
        SYM_TRY(route_layer(f, l, &c->xn, &lw->router)); /* the resident copy */
        SYM_TRY(stage_enter(f, c, l, ST_FFN_OUT));
        memset(f->routed, 0, (size_t)f->hp->n_expert * sizeof *f->routed);
        for (int j = 0; j < f->route.n_tok * f->route.n_expert_used; j++)
            f->routed[f->route.expert[j]] = true;
        if (f->pred_layer == l) /* how the prediction did */
            for (int e = 0; e < f->hp->n_expert; e++) {
                f->pred_np[l] += f->predicted[e];
                f->pred_na[l] += f->routed[e];
                f->pred_tp[l] += f->predicted[e] && f->routed[e];
            }
        f->exp_cur = -1;
        break;
    case SYM_ROLE_GATE_EXPS: case SYM_ROLE_UP_EXPS: case SYM_ROLE_DOWN_EXPS:
    case SYM_ROLE_GATE_EXP: case SYM_ROLE_UP_EXP: case SYM_ROLE_DOWN_EXP:
        SYM_TRY(sym_pack_manager_view(f->pm, h, i, &w));
        SYM_TRY(run_expert_piece(f, c, l, pk->expert, pw->role, pc->row0, &w));
        break;
    case SYM_ROLE_W_DOWN:
        SYM_TRY(stage_enter(f, c, l, ST_FFN_OUT));
        SYM_TRY(sym_pack_manager_view(f->pm, h, i, &w));
        slice_product(f, &c->x, &c->gate, &w, NULL, pc->row0, 1);
        break;
    case SYM_ROLE_OUTPUT: case SYM_ROLE_TOKEN_EMBD: { /* the embedding: tied output (FULL use) */
        if (!want_logits) break;
        int out_stage = f->hp->n_layer * 4;
        if (f->stage != out_stage) {
            SYM_CHECK(f->stage == out_stage - 1, SYM_ERR_INTERNAL,
                      "forward: the pack schedule reaches the output before the last layer");
            f->stage = out_stage;
            sym_tensor last = sym_tensor_rows(&c->x, c->n - 1, 1);
            sym_tensor xn1 = sym_tensor_rows(&c->xn, 0, 1);
            f->b->ops->rmsnorm(f->b, &xn1, &last, &f->output_norm, f->hp->rms_eps);
        }
        SYM_TRY(sym_pack_manager_view(f->pm, h, i, &w));
        sym_tensor xn1 = sym_tensor_rows(&c->xn, 0, 1);
        slice_product(f, &f->logits, &xn1, &w, NULL, pc->row0, 0);
        break;
    }
    default: /* norms and biases: their resident copies are used */
        break;
    }
    return SYM_OK;
}

/* Pins the pack of schedule entry u in the ops' tier, prefetches ahead, runs its pieces and
 * defers its release. */
static sym_status run_pack(sym_forward_pass *f, chunk_ctx *c, uint32_t u, bool want_logits) {
    const sym_pack *pk = &f->plan->packs[f->plan->schedule[u].pack_id];
    sym_pack_handle h;
    SYM_TRY(get_pack(f, pk->id, f->tier, &h));
    prefetch_after(f, u);
    sym_status st = SYM_OK;
    for (uint32_t i = 0; i < pk->n_pieces && st == SYM_OK; i++)
        st = run_piece(f, c, &h, i, want_logits);
    defer_release(f, &h);
    return st;
}

static bool is_output_use(const sym_forward_pass *f, const sym_pack_use *use) {
    const sym_pack *pk = &f->plan->packs[use->pack_id];
    return pk->type == SYM_PACK_OUTPUT || (pk->type == SYM_PACK_EMBED) ||
           (pk->type == SYM_PACK_NORM && pk->layer < 0);
}

/* ---- the CPU/GPU split of decode ------------------------------------------------------------ */
/* A decoded token reads every streamed byte once; the link and the CPU's RAM bandwidth are two
 * ways to get bytes to arithmetic. With a split, the CPU computes its packs' products from the
 * RAM tier while the transfer queue uploads the GPU's: per layer stage, the stage input is read
 * back once; the GPU pieces whose packs are in VRAM already are submitted, the CPU pieces run
 * (the GPU computes and the link brings the stage's other packs meanwhile), then the remaining
 * GPU pieces, and the CPU's outputs are written into their columns before the next stage. (Had
 * the GPU pieces gone first, each get would hold the CPU until the link delivered its pack.)
 * Single-token chunks only: prefill is the GPU's (its GEMMs are far faster). */

/* Layer stage of a piece's role, or -1 (vectors, output, experts). */
static int piece_stage(const sym_pack_weight *pw) {
    switch (pw->role) {
    case SYM_ROLE_WQ: case SYM_ROLE_WK: case SYM_ROLE_WV: return pw->layer * 4 + ST_ATTN_IN;
    case SYM_ROLE_WO: return pw->layer * 4 + ST_ATTN_OUT;
    case SYM_ROLE_W_GATE: case SYM_ROLE_W_UP: return pw->layer * 4 + ST_FFN_IN;
    case SYM_ROLE_W_DOWN: return pw->layer * 4 + ST_FFN_OUT;
    default: return -1;
    }
}

sym_status sym_forward_set_split(sym_forward_pass *f, sym_backend *cpu, const bool *cpu_pack) {
    const sym_pack_plan *p = f->plan;
    const sym_hparams *hp = f->hp;
    SYM_CHECK(f->pm && p, SYM_ERR_ARG, "forward: a split needs streaming");
    SYM_CHECK(hp->n_expert == 0 && !hp->qkv_bias, SYM_ERR_UNSUPPORTED,
              "forward: the CPU/GPU split runs dense models without Q/K/V biases");
    int n_st = 4 * hp->n_layer;
    f->cpu_pack = sym_calloc(p->n_packs, sizeof *f->cpu_pack);
    f->stage_units = sym_calloc((size_t)n_st + 1, sizeof *f->stage_units);
    f->stage_cpu = sym_calloc((size_t)n_st, sizeof *f->stage_cpu);
    f->units = sym_calloc(p->n_pieces + p->n_uses, sizeof *f->units);
    f->unit_done = sym_calloc(p->n_pieces + p->n_uses, sizeof *f->unit_done);
    f->host_ffn = sym_calloc((size_t)hp->n_layer, sizeof *f->host_ffn);
    const char *order = getenv("SYM_SPLIT_ORDER");
    f->split_order = !order || !*order || !strcmp(order, "ready") ? SPLIT_READY_FIRST
                     : !strcmp(order, "cpu")                      ? SPLIT_CPU_FIRST
                     : !strcmp(order, "gpu")                      ? SPLIT_GPU_FIRST
                                                                  : -1;
    SYM_CHECK(f->split_order >= 0, SYM_ERR_ARG,
              "forward: SYM_SPLIT_ORDER is '%s', not ready, cpu or gpu", order);
    int64_t wide = sym_forward_widest(hp);
    /* outputs: q | k | v | gate | up | dx, each at its own offset */
    int64_t qd = (int64_t)hp->n_head * hp->head_dim, kvd = (int64_t)hp->n_head_kv * hp->head_dim;
    f->h_in = sym_malloc((size_t)wide * sizeof *f->h_in);
    f->h_out = sym_malloc((size_t)(qd + 2 * kvd + 2 * (int64_t)hp->n_ff + hp->n_embd) *
                          sizeof *f->h_out);
    if (!f->cpu_pack || !f->stage_units || !f->stage_cpu || !f->units || !f->unit_done ||
        !f->host_ffn || !f->h_in || !f->h_out)
        return SYM_FAIL(SYM_ERR_OOM, "forward: out of memory");
    memcpy(f->cpu_pack, cpu_pack, p->n_packs * sizeof *f->cpu_pack);
    /* counting sort of the units by stage, CPU units first within a stage */
    for (int pass = 0; pass < 3; pass++) {
        uint32_t *fill = pass == 2 ? sym_calloc((size_t)n_st, sizeof *fill) : NULL;
        if (pass == 2 && !fill) return SYM_FAIL(SYM_ERR_OOM, "forward: out of memory");
        uint32_t *cpu_fill = pass == 2 ? sym_calloc((size_t)n_st, sizeof *cpu_fill) : NULL;
        if (pass == 2 && !cpu_fill) {
            sym_free(fill);
            return SYM_FAIL(SYM_ERR_OOM, "forward: out of memory");
        }
        for (uint32_t u = 0; u < p->n_uses; u++) {
            const sym_pack_use *use = &p->schedule[u];
            if (use->kind != SYM_PACK_USE_FULL) continue;
            const sym_pack *pk = &p->packs[use->pack_id];
            for (uint32_t i = 0; i < pk->n_pieces; i++) {
                int st = piece_stage(&p->weights[p->pieces[pk->piece0 + i].weight_idx]);
                if (st < 0) continue;
                bool on_cpu = f->cpu_pack[use->pack_id];
                if (pass == 0) {
                    f->stage_units[st + 1]++;
                    if (on_cpu) f->stage_cpu[st]++;
                } else if (pass == 2) {
                    uint32_t at = f->stage_units[st] +
                                  (on_cpu ? cpu_fill[st]++ : f->stage_cpu[st] + fill[st]++);
                    f->units[at] = (struct split_unit){u, i};
                }
            }
        }
        if (pass == 0)
            for (int st = 0; st < n_st; st++) f->stage_units[st + 1] += f->stage_units[st];
        sym_free(fill);
        sym_free(cpu_fill);
    }
    for (int l = 0; l < hp->n_layer; l++) {
        int in = l * 4 + ST_FFN_IN, out = l * 4 + ST_FFN_OUT;
        uint32_t n_in = f->stage_units[in + 1] - f->stage_units[in];
        uint32_t n_out = f->stage_units[out + 1] - f->stage_units[out];
        f->host_ffn[l] = n_in && n_out && f->stage_cpu[in] == n_in && f->stage_cpu[out] == n_out;
    }
    f->cpu = cpu;
    return SYM_OK;
}

/* The stage input the CPU pieces of stage s read, and the device tensor their outputs go to
 * (accumulate: added into x). */
static const sym_tensor *split_input(const chunk_ctx *c, int s) {
    return s == ST_ATTN_OUT ? &c->att : s == ST_FFN_OUT ? &c->gate : &c->xn;
}

/* Where in f->h_out a role's outputs live, and the device tensor they belong to. */
static float *split_out(sym_forward_pass *f, chunk_ctx *c, sym_tensor_role role,
                        sym_tensor **dev) {
    const sym_hparams *hp = f->hp;
    int64_t qd = (int64_t)hp->n_head * hp->head_dim, kvd = (int64_t)hp->n_head_kv * hp->head_dim;
    float *o = f->h_out;
    switch (role) {
    case SYM_ROLE_WQ: *dev = &c->q; return o;
    case SYM_ROLE_WK: *dev = &c->k; return o + qd;
    case SYM_ROLE_WV: *dev = &c->v; return o + qd + kvd;
    case SYM_ROLE_W_GATE: *dev = &c->gate; return o + qd + 2 * kvd;
    case SYM_ROLE_W_UP: *dev = &c->up; return o + qd + 2 * kvd + hp->n_ff;
    default: *dev = &c->x; return o + qd + 2 * kvd + 2 * hp->n_ff; /* dx */
    }
}

/* Runs the CPU units of stage st (the GPU has recorded the stage's input), then writes their
 * outputs into the device tensors is done by split_finish. */
static sym_status split_cpu_units(sym_forward_pass *f, chunk_ctx *c, int st) {
    const sym_pack_plan *p = f->plan;
    uint32_t u0 = f->stage_units[st], n_cpu = f->stage_cpu[st];
    if (!n_cpu) return SYM_OK;
    const sym_tensor *in = split_input(c, st % 4); /* read back by run_split */
    if (st % 4 == ST_ATTN_OUT || st % 4 == ST_FFN_OUT) {
        sym_tensor *dev;
        float *dx = split_out(f, c, SYM_ROLE_WO, &dev);
        memset(dx, 0, (size_t)f->hp->n_embd * sizeof *dx);
    }
    sym_tensor x = {.type = SYM_DT_F32, .n_cols = in->n_cols, .n_rows = 1, .data = f->h_in};
    sym_pack_handle h = {0};
    bool pinned = false;
    sym_status ret = SYM_OK;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint32_t k = u0; k < u0 + n_cpu && ret == SYM_OK; k++) {
        const struct split_unit *un = &f->units[k];
        uint32_t id = p->schedule[un->use].pack_id;
        if (!pinned || h.pack_id != id) {
            if (pinned) sym_pack_manager_release(f->pm, &h);
            pinned = false;
            sym_pack_manager_set_position(f->pm, un->use);
            if ((ret = get_pack(f, id, SYM_TIER_RAM, &h)) != SYM_OK) break;
            pinned = true;
        }
        const sym_pack *pk = &p->packs[id];
        const sym_pack_piece *pc = &p->pieces[pk->piece0 + un->piece];
        sym_tensor w, *dev;
        if ((ret = sym_pack_manager_view(f->pm, &h, un->piece, &w)) != SYM_OK) break;
        float *o = split_out(f, c, p->weights[pc->weight_idx].role, &dev);
        sym_tensor out = {.type = SYM_DT_F32, .n_cols = pc->n_rows, .n_rows = 1,
                          .data = o + pc->row0};
        f->cpu->ops->matmul(f->cpu, &out, &x, &w, NULL);
        ret = f->cpu->ops->sync(f->cpu);
        f->ss.cpu_bytes += pc->n_bytes;
    }
    if (pinned) sym_pack_manager_release(f->pm, &h);
    f->ss.cpu_ms += ms_since(&t0);
    return ret;
}

/* Writes the CPU units' outputs of stage st into the device tensors (in the ops stream). */
static sym_status split_finish(sym_forward_pass *f, chunk_ctx *c, int st) {
    const sym_pack_plan *p = f->plan;
    sym_backend *b = f->b;
    uint32_t u0 = f->stage_units[st], n_cpu = f->stage_cpu[st];
    if (!n_cpu) return SYM_OK;
    if (st % 4 == ST_ATTN_OUT || st % 4 == ST_FFN_OUT) { /* x += dx (zero outside CPU rows) */
        sym_tensor *dev;
        float *dx = split_out(f, c, SYM_ROLE_WO, &dev);
        sym_tensor t = f->tmp;
        t.n_rows = 1;
        t.n_cols = f->hp->n_embd;
        SYM_TRY(b->ops->write(b, &t, dx, (size_t)f->hp->n_embd * sizeof *dx));
        b->ops->add(b, &c->x, &c->x, &t);
        return SYM_OK;
    }
    if (st % 4 == ST_FFN_IN && f->host_ffn[st / 4]) return SYM_OK; /* the CPU's down reads it */
    for (uint32_t k = u0; k < u0 + n_cpu; k++) {
        const struct split_unit *un = &f->units[k];
        const sym_pack *pk = &p->packs[p->schedule[un->use].pack_id];
        const sym_pack_piece *pc = &p->pieces[pk->piece0 + un->piece];
        sym_tensor *dev;
        float *o = split_out(f, c, p->weights[pc->weight_idx].role, &dev);
        sym_tensor v = col_view(dev, pc->row0, pc->n_rows);
        SYM_TRY(b->ops->write(b, &v, o + pc->row0, (size_t)pc->n_rows * sizeof *o));
    }
    return SYM_OK;
}

/* Records the GPU units [g0, g1) of a stage not run yet; ready_only: only those whose pack is in
 * VRAM now (their gets do not wait for the link). Marks what it ran in f->unit_done. */
static sym_status split_gpu_units(sym_forward_pass *f, chunk_ctx *c, uint32_t g0, uint32_t g1,
                                  bool ready_only, bool want_logits) {
    const sym_pack_plan *p = f->plan;
    sym_pack_handle h = {0};
    bool pinned = false;
    sym_status ret = SYM_OK;
    for (uint32_t k = g0; k < g1 && ret == SYM_OK; k++) {
        const struct split_unit *un = &f->units[k];
        uint32_t id = p->schedule[un->use].pack_id;
        if (f->unit_done[k]) continue;
        if (!pinned || h.pack_id != id) {
            if (pinned) defer_release(f, &h);
            pinned = false;
            if (ready_only && sym_pack_manager_tier_of(f->pm, id) != SYM_TIER_DEVICE) continue;
            sym_pack_manager_set_position(f->pm, un->use);
            if ((ret = get_pack(f, id, f->tier, &h)) != SYM_OK) break;
            pinned = true;
            prefetch_after(f, un->use);
        }
        ret = run_piece(f, c, &h, un->piece, want_logits);
        f->unit_done[k] = true;
    }
    if (pinned) defer_release(f, &h);
    return ret;
}

/* One decoded token with the split: stage by stage, then the output as usual. */
static sym_status run_split(sym_forward_pass *f, chunk_ctx *c, bool want_logits) {
    const sym_pack_plan *p = f->plan;
    int n_st = 4 * f->hp->n_layer;
    /* packs the CPU computes have no business in VRAM (a prefill may have brought them) */
    for (uint32_t id = 0; f->cpu_packs_to_drop && id < p->n_packs; id++)
        if (f->cpu_pack[id] && sym_pack_manager_tier_of(f->pm, id) == SYM_TIER_DEVICE)
            (void)sym_pack_manager_unload(f->pm, id, SYM_TIER_DEVICE);
    f->cpu_packs_to_drop = false;
    for (int st = 0; st < n_st; st++) {
        SYM_TRY(stage_enter(f, c, st / 4, st % 4));
        /* the stage input on the host: the one wait per stage */
        if (st % 4 == ST_FFN_OUT && f->host_ffn[st / 4]) {
            /* the down projection's input from the CPU's own gate and up products */
            sym_tensor *dev;
            int64_t n_ff = f->hp->n_ff;
            float *g = split_out(f, c, SYM_ROLE_W_GATE, &dev), *up = g + n_ff;
            sym_tensor gt = {.type = SYM_DT_F32, .n_cols = n_ff, .n_rows = 1, .data = g};
            sym_tensor ut = {.type = SYM_DT_F32, .n_cols = n_ff, .n_rows = 1, .data = up};
            sym_tensor ht = {.type = SYM_DT_F32, .n_cols = n_ff, .n_rows = 1, .data = f->h_in};
            f->cpu->ops->silu_mul(f->cpu, &ht, &gt, &ut);
            SYM_TRY(f->cpu->ops->sync(f->cpu));
        } else if (f->stage_cpu[st]) {
            const sym_tensor *in = split_input(c, st % 4);
            struct timespec t0;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            SYM_TRY(f->b->ops->read(f->b, in, f->h_in, (size_t)in->n_cols * sizeof(float)));
            f->ss.readback_ms += ms_since(&t0);
            f->ss.n_readbacks++;
        }
        /* the GPU pieces whose packs are in VRAM already, submitted; then the CPU's own while
         * the GPU runs those and the link brings the rest; then the rest */
        uint32_t g0 = f->stage_units[st] + f->stage_cpu[st], g1 = f->stage_units[st + 1];
        memset(f->unit_done + g0, 0, (g1 - g0) * sizeof *f->unit_done);
        if (f->split_order != SPLIT_GPU_FIRST && f->stage_cpu[st]) {
            if (f->split_order == SPLIT_READY_FIRST)
                SYM_TRY(split_gpu_units(f, c, g0, g1, true, want_logits));
            if (g0 < g1) prefetch_after(f, f->units[g0].use);
            SYM_TRY(split_cpu_units(f, c, st));
        }
        SYM_TRY(split_gpu_units(f, c, g0, g1, false, want_logits));
        if (f->split_order == SPLIT_GPU_FIRST || !f->stage_cpu[st])
            SYM_TRY(split_cpu_units(f, c, st));
        SYM_TRY(split_finish(f, c, st));
    }
    if (!want_logits) return SYM_OK;
    for (uint32_t u = 0; u < p->n_uses; u++) { /* the output projection */
        const sym_pack_use *use = &p->schedule[u];
        if (use->kind != SYM_PACK_USE_FULL || !is_output_use(f, use)) continue;
        sym_pack_manager_set_position(f->pm, u);
        SYM_TRY(run_pack(f, c, u, want_logits));
    }
    return SYM_OK;
}

/* One chunk through every pack of the schedule. */
static sym_status run_streamed(sym_forward_pass *f, const int32_t *ids, int n, int pos0,
                               bool want_logits) {
    const sym_pack_plan *p = f->plan;
    sym_backend *b = f->b;
    SYM_CHECK(f->pm, SYM_ERR_ARG, "forward: streaming without a pack manager");
    chunk_ctx c = {.n = n, .pos0 = pos0,
                   .x = sym_tensor_rows(&f->x, 0, n), .xn = sym_tensor_rows(&f->xn, 0, n),
                   .q = sym_tensor_rows(&f->q, 0, n), .k = sym_tensor_rows(&f->k, 0, n),
                   .v = sym_tensor_rows(&f->v, 0, n), .att = sym_tensor_rows(&f->att, 0, n),
                   .gate = sym_tensor_rows(&f->gate, 0, n), .up = sym_tensor_rows(&f->up, 0, n)};
    f->stage = -1;
    f->split_now = f->cpu && n == 1;
    if (f->cpu && !f->split_now) f->cpu_packs_to_drop = true;
    bool embedded = false;
    sym_pack_manager_set_position(f->pm, 0);
    for (uint32_t u = 0; u < p->n_uses; u++) {
        const sym_pack_use *use = &p->schedule[u];
        const sym_pack *pk = &p->packs[use->pack_id];
        sym_pack_handle h;
        if (use->kind == SYM_PACK_USE_GATHER) {
            if (!pack_has_ids(f, pk, ids, n)) continue;
            SYM_TRY(get_pack(f, use->pack_id, SYM_TIER_RAM, &h));
            gather_rows(f, &h, ids, n);
            SYM_TRY(sym_pack_manager_release(f->pm, &h));
            continue;
        }
        if (!embedded) {
            SYM_TRY(b->ops->write(b, &c.x, f->x_host,
                                  (size_t)n * (size_t)f->hp->n_embd * sizeof *f->x_host));
            embedded = true;
        }
        if (f->split_now) { /* the layers stage by stage, then the output */
            SYM_TRY(run_split(f, &c, want_logits));
            break;
        }
        if (!want_logits && is_output_use(f, use)) continue;
        if (pk->type == SYM_PACK_EXPERT && !expert_needed(f, pk)) continue;
        SYM_TRY(run_pack(f, &c, u, want_logits));
    }
    SYM_CHECK(f->stage == f->hp->n_layer * 4 + (want_logits ? 0 : -1), SYM_ERR_INTERNAL,
              "forward: the pack schedule did not cover every layer (stage %d)", f->stage);
    return SYM_OK;
}

/* ---- one chunk ------------------------------------------------------------------------------- */


/* Routes n tokens of layer l (xn holds their normed input) and tells the hook. */
static sym_status route_layer(sym_forward_pass *f, int l, const sym_tensor *xn,
                              const sym_tensor *router) {
    SYM_TRY(sym_moe_route_tokens(f->b, xn, router, f->hp->n_expert_used, &f->moe, &f->route));
    if (f->route_fn) f->route_fn(f->route_user, l, &f->route);
    return SYM_OK;
}

/* Runs n tokens at positions pos0.. through every layer; leaves the residual stream in x. */
static sym_status run_layers(sym_forward_pass *f, const int32_t *ids, int n, int pos0) {
    const sym_backend_ops *o = f->b->ops;
    sym_backend *b = f->b;
    const sym_hparams *hp = f->hp;
    sym_tensor x = sym_tensor_rows(&f->x, 0, n), xn = sym_tensor_rows(&f->xn, 0, n);
    sym_tensor q = sym_tensor_rows(&f->q, 0, n), k = sym_tensor_rows(&f->k, 0, n);
    sym_tensor v = sym_tensor_rows(&f->v, 0, n), att = sym_tensor_rows(&f->att, 0, n);
    sym_tensor gate = sym_tensor_rows(&f->gate, 0, n), up = sym_tensor_rows(&f->up, 0, n);
    float scale = 1.0f / sqrtf((float)hp->head_dim);
    float freq_scale = hp->rope_freq_scale;
    if (f->opt.rope_scale > 0.0f) freq_scale /= f->opt.rope_scale;

    o->embed(b, &x, &f->token_embd, ids, n);
    for (int l = 0; l < hp->n_layer; l++) {
        layer_tensors *w = &f->layers[l];
        /* attention: norm, Q/K/V, RoPE, K/V into the cache (one fused op where offered) */
        sym_attn_in_args ai = {.x = &x, .norm = w->attn_folded ? NULL : &w->attn_norm,
                               .eps = hp->rms_eps,
                               .wq = &w->wq, .wk = &w->wk, .wv = &w->wv,
                               .bq = opt(&w->bq), .bk = opt(&w->bk), .bv = opt(&w->bv),
                               .n_head = hp->n_head, .n_head_kv = hp->n_head_kv,
                               .head_dim = hp->head_dim, .pos0 = pos0,
                               .theta = hp->rope_theta, .freq_scale = freq_scale,
                               .neox = hp->rope_neox, .q = &q,
                               .k_cache = &f->kv.k[l], .v_cache = &f->kv.v[l],
                               .xn = &xn, .k = &k, .v = &v};
        sym_op_attn_in(b, &ai);
        o->attention(b, &att, &q, &f->kv.k[l], &f->kv.v[l], hp->n_head, hp->n_head_kv,
                     hp->head_dim, pos0, scale);
        sym_op_matmul_add(b, &x, &att, &w->wo, &xn); /* x += att Wo^T */
        if (hp->n_expert > 0) { /* mixture of experts: x += the routed experts' outputs */
            o->rmsnorm(b, &xn, &x, &w->ffn_norm, hp->rms_eps);
            SYM_TRY(route_layer(f, l, &xn, &w->router));
            SYM_TRY(sym_moe_experts(b, &x, &xn, &f->route, w->experts, hp->n_expert, &f->moe));
            continue;
        }
        /* SiLU-gated MLP: gate = silu(norm(x) Wg^T) * (norm(x) Wu^T); x += gate Wd^T */
        sym_op_ffn_in(b, &gate, &x, w->ffn_folded ? NULL : &w->ffn_norm, hp->rms_eps, &w->w_gate,
                      &w->w_up, &xn, &up);
        sym_op_matmul_add(b, &x, &gate, &w->w_down, &xn);
    }
    return SYM_OK;
}

/* What an evaluation returns of the last position's logits: all of them (logits), their
 * argmax (id), or the k largest (vals, top_ids, n_top). */
typedef struct eval_out {
    float *logits;
    int32_t *id;
    int k;
    float *vals;
    int32_t *top_ids;
    int *n_top;
} eval_out;

int sym_forward_has_topk(const sym_forward_pass *f) {
    return f->b->ops->topk && f->top.buf && !f->opt.streamed;
}

/* Reads back what out asks for: on the device where it can, else from a host copy. */
static sym_status finish_logits(sym_forward_pass *f, const eval_out *out) {
    const sym_backend_ops *o = f->b->ops;
    int n_vocab = f->hp->n_vocab;
    float *logits = out->logits;
    int32_t *id = out->id;
    if (logits) return o->read(f->b, &f->logits, logits, (size_t)n_vocab * sizeof(float));
    if (out->k > 0) {
        float pairs[2 * SYM_TOPK_MAX];
        sym_tensor top = f->top;
        top.n_cols = 2 * out->k;
        o->topk(f->b, &top, &f->logits, out->k);
        SYM_TRY(o->read(f->b, &top, pairs, (size_t)out->k * 2 * sizeof(float)));
        int m = 0;
        for (; m < out->k && pairs[2 * m + 1] >= 0; m++) {
            SYM_CHECK(pairs[2 * m + 1] < (float)n_vocab, SYM_ERR_INTERNAL,
                      "forward: the device's topk returned index %g for %d logits",
                      (double)pairs[2 * m + 1], n_vocab);
            out->vals[m] = pairs[2 * m];
            out->top_ids[m] = (int32_t)pairs[2 * m + 1];
        }
        *out->n_top = m;
        return SYM_OK;
    }
    if (o->argmax && f->amax.buf && !f->opt.streamed) {
        float v;
        o->argmax(f->b, &f->amax, &f->logits);
        SYM_TRY(o->read(f->b, &f->amax, &v, sizeof v));
        SYM_CHECK(v >= 0 && v < (float)n_vocab, SYM_ERR_INTERNAL,
                  "forward: the device's argmax returned %g for %d logits", (double)v, n_vocab);
        *id = (int32_t)v;
        return SYM_OK;
    }
    if (!f->host_logits) {
        f->host_logits = sym_malloc((size_t)n_vocab * sizeof *f->host_logits);
        if (!f->host_logits) return SYM_FAIL(SYM_ERR_OOM, "forward: out of memory");
    }
    SYM_TRY(o->read(f->b, &f->logits, f->host_logits, (size_t)n_vocab * sizeof(float)));
    *id = sym_argmax_f32(f->host_logits, n_vocab);
    return SYM_OK;
}

/* sym_forward_eval and its variants; out NULL: no logits wanted. */
static sym_status eval(sym_forward_pass *f, const int32_t *ids, int n_tok, const eval_out *out) {
    const sym_hparams *hp = f->hp;
    int want = out != NULL; /* the last position's logits are computed */
    SYM_CHECK(n_tok > 0, SYM_ERR_ARG, "forward: no tokens");
    SYM_CHECK(n_tok <= f->opt.n_ctx - f->kv.n_past, SYM_ERR_RANGE,
              "forward: %d tokens after %d exceed the context of %d", n_tok, f->kv.n_past,
              f->opt.n_ctx);
    for (int i = 0; i < n_tok; i++)
        SYM_CHECK(ids[i] >= 0 && ids[i] < hp->n_vocab, SYM_ERR_ARG,
                  "forward: token id %d is outside the vocabulary (%d)", ids[i], hp->n_vocab);
    const sym_backend_ops *o = f->b->ops;
    for (int done = 0; done < n_tok;) {
        int n = n_tok - done < f->opt.n_batch ? n_tok - done : f->opt.n_batch;
        if (f->opt.streamed) {
            sym_status st = run_streamed(f, ids + done, n, f->kv.n_past, done + n == n_tok && want);
            sym_status ss = o->sync(f->b);
            release_deferred(f, 1);
            SYM_TRY(st);
            SYM_TRY(ss);
            if (f->chunk_fn) f->chunk_fn(f->chunk_user, n);
            f->kv.n_past += n;
            done += n;
            if (done == n_tok && want) SYM_TRY(finish_logits(f, out));
            continue;
        }
        sym_status st = run_layers(f, ids + done, n, f->kv.n_past);
        if (st != SYM_OK) {
            (void)o->sync(f->b);
            return st;
        }
        if (f->chunk_fn) f->chunk_fn(f->chunk_user, n);
        f->kv.n_past += n;
        done += n;
        if (done == n_tok && want) {
            sym_tensor last = sym_tensor_rows(&f->x, n - 1, 1);
            sym_tensor xn = sym_tensor_rows(&f->xn, 0, 1);
            sym_op_norm_matmul(f->b, &f->logits, &last, &f->output_norm, hp->rms_eps,
                               hp->tied_embeddings ? &f->token_embd : &f->output, &xn);
            SYM_TRY(finish_logits(f, out));
        } else {
            SYM_TRY(o->sync(f->b));
        }
    }
    return SYM_OK;
}

sym_status sym_forward_eval(sym_forward_pass *f, const int32_t *ids, int n_tok, float *logits) {
    eval_out o = {.logits = logits};
    return eval(f, ids, n_tok, logits ? &o : NULL);
}

sym_status sym_forward_eval_argmax(sym_forward_pass *f, const int32_t *ids, int n_tok,
                                   int32_t *id) {
    SYM_CHECK(id, SYM_ERR_ARG, "forward: NULL id");
    eval_out o = {.id = id};
    return eval(f, ids, n_tok, &o);
}

sym_status sym_forward_eval_topk(sym_forward_pass *f, const int32_t *ids, int n_tok, int k,
                                 float *vals, int32_t *top_ids, int *n) {
    SYM_CHECK(k >= 1 && k <= SYM_TOPK_MAX && vals && top_ids && n, SYM_ERR_ARG,
              "forward: top %d (1 to %d)", k, SYM_TOPK_MAX);
    SYM_CHECK(sym_forward_has_topk(f), SYM_ERR_UNSUPPORTED,
              "forward: the backend does not find the top candidates here (no topk op, or "
              "streamed); read the logits instead");
    eval_out o = {.k = k, .vals = vals, .top_ids = top_ids, .n_top = n};
    return eval(f, ids, n_tok, &o);
}

sym_status sym_forward_read_logits(sym_forward_pass *f, float *out) {
    return f->b->ops->read(f->b, &f->logits, out, (size_t)f->hp->n_vocab * sizeof(float));
}
