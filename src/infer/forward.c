#include "infer/forward.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "cpu/ref.h"
#include "infer/fused.h"

typedef struct layer_tensors {
    sym_tensor attn_norm, wq, wk, wv, bq, bk, bv, wo;
    sym_tensor ffn_norm, w_gate, w_up, w_down;
} layer_tensors;

struct sym_forward_pass {
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
};

/* ---- set-up ------------------------------------------------------------------------------------ */

static sym_status load_weight(sym_backend *b, sym_tensor *t, const sym_weight *w) {
    if (!w->data) return SYM_OK; /* optional and absent */
    sym_status st = b->ops->load(b, t, w->data, w->type, w->n_cols, w->n_rows);
    if (st != SYM_OK) sym_error_prefix("loading %s", w->name);
    return st;
}

/* Biases are tiny and the backend interface takes them as f32: convert once at load. */
static sym_status load_bias(sym_backend *b, sym_tensor *t, const sym_weight *w) {
    if (!w->data || w->type == SYM_DT_F32) return load_weight(b, t, w);
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

uint64_t sym_forward_scratch_bytes(const sym_hparams *hp, const sym_forward_options *o) {
    uint64_t q = (uint64_t)hp->n_head * hp->head_dim, kvd = (uint64_t)hp->n_head_kv * hp->head_dim;
    uint64_t act = (uint64_t)o->n_batch * (2 * hp->n_embd + 2 * q + 2 * kvd + 2 * hp->n_ff) * 4;
    return act + (uint64_t)hp->n_vocab * 4 +
           sym_kv_cache_bytes(hp->n_layer, o->n_ctx, (int)kvd, o->kv_type);
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

    SYM_TRY_GOTO(load_weight(b, &f->token_embd, &mw->token_embd));
    SYM_TRY_GOTO(load_weight(b, &f->output_norm, &mw->output_norm));
    if (!hp->tied_embeddings) SYM_TRY_GOTO(load_weight(b, &f->output, &mw->output));
    for (int l = 0; l < hp->n_layer; l++) {
        const sym_layer_weights *w = &mw->layers[l];
        layer_tensors *t = &f->layers[l];
        SYM_TRY_GOTO(load_weight(b, &t->attn_norm, &w->attn_norm));
        SYM_TRY_GOTO(load_weight(b, &t->wq, &w->wq));
        SYM_TRY_GOTO(load_weight(b, &t->wk, &w->wk));
        SYM_TRY_GOTO(load_weight(b, &t->wv, &w->wv));
        SYM_TRY_GOTO(load_bias(b, &t->bq, &w->bq));
        SYM_TRY_GOTO(load_bias(b, &t->bk, &w->bk));
        SYM_TRY_GOTO(load_bias(b, &t->bv, &w->bv));
        SYM_TRY_GOTO(load_weight(b, &t->wo, &w->wo));
        SYM_TRY_GOTO(load_weight(b, &t->ffn_norm, &w->ffn_norm));
        SYM_TRY_GOTO(load_weight(b, &t->w_gate, &w->w_gate));
        SYM_TRY_GOTO(load_weight(b, &t->w_up, &w->w_up));
        SYM_TRY_GOTO(load_weight(b, &t->w_down, &w->w_down));
    }

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
    *out = f;
    return SYM_OK;
fail:
    sym_forward_destroy(f);
    return st;
}

void sym_forward_destroy(sym_forward_pass *f) {
    if (!f) return;
    sym_backend *b = f->b;
    sym_tensor *acts[] = {&f->x, &f->xn, &f->q, &f->k, &f->v, &f->att, &f->gate, &f->up, &f->logits};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) release(b, acts[i]);
    if (f->kv.k) sym_kv_cache_destroy(&f->kv);
    if (f->layers) {
        for (int l = 0; l < f->hp->n_layer; l++) {
            layer_tensors *t = &f->layers[l];
            sym_tensor *ws[] = {&t->attn_norm, &t->wq, &t->wk, &t->wv, &t->bq, &t->bk,
                                &t->bv, &t->wo, &t->ffn_norm, &t->w_gate, &t->w_up, &t->w_down};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) release(b, ws[i]);
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

/* ---- one chunk ------------------------------------------------------------------------------- */

static const sym_tensor *opt(const sym_tensor *t) { return t->n_rows ? t : NULL; }

/* Runs n tokens at positions pos0.. through every layer; leaves the residual stream in x. */
static void run_layers(sym_forward_pass *f, const int32_t *ids, int n, int pos0) {
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
        sym_attn_in_args ai = {.x = &x, .norm = &w->attn_norm, .eps = hp->rms_eps,
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
        /* SiLU-gated MLP: gate = silu(norm(x) Wg^T) * (norm(x) Wu^T); x += gate Wd^T */
        sym_op_ffn_in(b, &gate, &x, &w->ffn_norm, hp->rms_eps, &w->w_gate, &w->w_up, &xn, &up);
        sym_op_matmul_add(b, &x, &gate, &w->w_down, &xn);
    }
}

sym_status sym_forward_eval(sym_forward_pass *f, const int32_t *ids, int n_tok, float *logits) {
    const sym_hparams *hp = f->hp;
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
        run_layers(f, ids + done, n, f->kv.n_past);
        f->kv.n_past += n;
        done += n;
        if (done == n_tok && logits) {
            sym_tensor last = sym_tensor_rows(&f->x, n - 1, 1);
            sym_tensor xn = sym_tensor_rows(&f->xn, 0, 1);
            sym_op_norm_matmul(f->b, &f->logits, &last, &f->output_norm, hp->rms_eps,
                               hp->tied_embeddings ? &f->token_embd : &f->output, &xn);
            SYM_TRY(o->read(f->b, &f->logits, logits, (size_t)hp->n_vocab * sizeof(float)));
        } else {
            SYM_TRY(o->sync(f->b));
        }
    }
    return SYM_OK;
}
