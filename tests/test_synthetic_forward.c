/* Synthetic models through the reference backend (cpu/ref.c): a GGUF file and a safetensors
 * directory made from one seed compute the same logits, each with its own RoPE layout
 * (rope_neox 0 vs 1) — and different ones if the layout is swapped, so the check has teeth; and
 * activations stay finite and moderate through a deep model. The forward pass here is a minimal
 * plain loop over the backend ops (prefill from position 0), not the engine's. */
#include <sys/stat.h>

#include "cpu/ref.h"
#include "model/model.h"
#include "model/writer.h"
#include "test_util.h"

static char g_dir[1024];

static sym_tensor view(const sym_weight *w) {
    sym_tensor t = {w->type, w->n_cols, w->n_rows, (void *)w->data, NULL, 0};
    return t;
}

typedef struct stats {
    double max_rms; /* of the residual stream, over layers and tokens */
} stats;

/* Logits of the last token of ids (n_vocab floats into out); neox overrides the model's layout
 * when >= 0. */
static void forward(const sym_model *m, const int32_t *ids, int n_tok, int neox, float *out,
                    stats *st) {
    const sym_hparams *hp = sym_model_hparams(m);
    const sym_model_weights *w = sym_model_weights_of(m);
    sym_backend *b = NULL;
    CHECK_OK(sym_ref_backend_create(&b));
    if (!b) return;
    const sym_backend_ops *o = b->ops;
    int64_t q_dim = (int64_t)hp->n_head * hp->head_dim, kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    sym_tensor x, h, q, k, v, att, proj, gate, up, kc, vc, logits;
    o->alloc(b, &x, SYM_DT_F32, hp->n_embd, n_tok);
    o->alloc(b, &h, SYM_DT_F32, hp->n_embd, n_tok);
    o->alloc(b, &proj, SYM_DT_F32, hp->n_embd, n_tok);
    o->alloc(b, &q, SYM_DT_F32, q_dim, n_tok);
    o->alloc(b, &att, SYM_DT_F32, q_dim, n_tok);
    o->alloc(b, &k, SYM_DT_F32, kv_dim, n_tok);
    o->alloc(b, &v, SYM_DT_F32, kv_dim, n_tok);
    o->alloc(b, &kc, SYM_DT_F32, kv_dim, n_tok);
    o->alloc(b, &vc, SYM_DT_F32, kv_dim, n_tok);
    o->alloc(b, &gate, SYM_DT_F32, hp->n_ff, n_tok);
    o->alloc(b, &up, SYM_DT_F32, hp->n_ff, n_tok);
    o->alloc(b, &logits, SYM_DT_F32, hp->n_vocab, n_tok);
    sym_tensor emb = view(&w->token_embd);
    o->embed(b, &x, &emb, ids, n_tok);
    int layout = neox >= 0 ? neox : hp->rope_neox;
    for (int l = 0; l < hp->n_layer; l++) {
        const sym_layer_weights *L = &w->layers[l];
        sym_tensor an = view(&L->attn_norm), wq = view(&L->wq), wk = view(&L->wk),
                   wv = view(&L->wv), wo = view(&L->wo), fn = view(&L->ffn_norm),
                   wg = view(&L->w_gate), wu = view(&L->w_up), wd = view(&L->w_down);
        sym_tensor bq = view(&L->bq), bk = view(&L->bk), bv = view(&L->bv);
        o->rmsnorm(b, &h, &x, &an, hp->rms_eps);
        o->matmul(b, &q, &h, &wq, hp->qkv_bias ? &bq : NULL);
        o->matmul(b, &k, &h, &wk, hp->qkv_bias ? &bk : NULL);
        o->matmul(b, &v, &h, &wv, hp->qkv_bias ? &bv : NULL);
        o->rope(b, &q, hp->n_head, hp->head_dim, 0, hp->rope_theta, hp->rope_freq_scale, layout);
        o->rope(b, &k, hp->n_head_kv, hp->head_dim, 0, hp->rope_theta, hp->rope_freq_scale, layout);
        o->store_rows(b, &kc, 0, &k);
        o->store_rows(b, &vc, 0, &v);
        o->attention(b, &att, &q, &kc, &vc, hp->n_head, hp->n_head_kv, hp->head_dim, 0,
                     1.0f / sqrtf((float)hp->head_dim));
        o->matmul(b, &proj, &att, &wo, NULL);
        o->add(b, &x, &x, &proj);
        o->rmsnorm(b, &h, &x, &fn, hp->rms_eps);
        o->matmul(b, &gate, &h, &wg, NULL);
        o->matmul(b, &up, &h, &wu, NULL);
        o->silu_mul(b, &gate, &gate, &up);
        o->matmul(b, &proj, &gate, &wd, NULL);
        o->add(b, &x, &x, &proj);
        for (int t = 0; t < n_tok; t++) {
            double ss = 0;
            for (int i = 0; i < hp->n_embd; i++) ss += (double)sym_ref_get(&x, t, i) * sym_ref_get(&x, t, i);
            double rms = sqrt(ss / hp->n_embd);
            CHECK(isfinite(rms), "layer %d token %d: residual not finite", l, t);
            if (rms > st->max_rms) st->max_rms = rms;
        }
    }
    sym_tensor on = view(&w->output_norm), ow = view(&w->output);
    o->rmsnorm(b, &h, &x, &on, hp->rms_eps);
    o->matmul(b, &logits, &h, &ow, NULL);
    for (int i = 0; i < hp->n_vocab; i++) out[i] = sym_ref_get(&logits, n_tok - 1, i);
    sym_tensor *all[] = {&x, &h, &proj, &q, &att, &k, &v, &kc, &vc, &gate, &up, &logits};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) o->release(b, all[i]);
    o->destroy(b);
}

static sym_model *make(sym_make_model_options *o, const char *name) {
    char path[1200], cmd[1400];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    CHECK(system(cmd) == 0, "rm");
    CHECK_OK(sym_make_model(o, path));
    sym_model *m = NULL;
    CHECK_OK(sym_model_open(path, &m));
    return m;
}

static void same_function(const char *preset) {
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    CHECK_OK(sym_make_model_preset(&o, preset));
    o.dtype = SYM_DT_F32;
    o.seed = 99;
    sym_model *g = make(&o, "fwd.gguf");
    o.format = SYM_MODEL_SAFETENSORS;
    sym_model *s = make(&o, "fwd_st");
    if (!g || !s) return;
    const int32_t ids[] = {1, 300, 17, 42, 259, 511, 3, 280};
    int n_vocab = sym_model_hparams(g)->n_vocab;
    float *lg = malloc(sizeof *lg * (size_t)n_vocab), *ls = malloc(sizeof *ls * (size_t)n_vocab);
    float *lx = malloc(sizeof *lx * (size_t)n_vocab);
    stats st = {0};
    forward(g, ids, 8, -1, lg, &st);
    forward(s, ids, 8, -1, ls, &st);
    double d = test_max_rel_diff(lg, ls, (size_t)n_vocab);
    CHECK(d < 1e-4, "%s: GGUF and safetensors logits differ by %g (relative)", preset, d);
    double sd = 0;
    for (int i = 0; i < n_vocab; i++) sd += (double)lg[i] * lg[i];
    sd = sqrt(sd / n_vocab);
    CHECK(sd > 0.1 && sd < 50, "%s: logit rms %g", preset, sd);
    if (!strcmp(sym_model_hparams(g)->arch, "llama")) {
        /* the safetensors weights with GGUF's rotation are a different function */
        forward(s, ids, 8, 0, lx, &st);
        double dx = test_max_rel_diff(lg, lx, (size_t)n_vocab);
        CHECK(dx > 1e-3, "%s: swapping the RoPE layout changed nothing (%g)", preset, dx);
    }
    fprintf(stderr, "%s: logits rms %.3f, GGUF vs safetensors %.2g, residual rms max %.2f\n",
            preset, sd, d, st.max_rms);
    free(lg);
    free(ls);
    free(lx);
    sym_model_close(g);
    sym_model_close(s);
}

/* 48 layers: the residual stream grows like sqrt(layers), never explodes. */
static void deep(void) {
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    o.n_layer = 48;
    o.n_embd = 64;
    o.n_head = 4;
    o.n_head_kv = 1;
    o.n_ff = 172;
    o.dtype = SYM_DT_BF16;
    sym_model *m = make(&o, "deep.gguf");
    if (!m) return;
    int n_vocab = sym_model_hparams(m)->n_vocab;
    float *lg = malloc(sizeof *lg * (size_t)n_vocab);
    const int32_t ids[] = {1, 400, 401, 402};
    stats st = {0};
    forward(m, ids, 4, -1, lg, &st);
    bool finite = true;
    for (int i = 0; i < n_vocab; i++) finite &= isfinite(lg[i]) != 0;
    CHECK(finite, "deep: logits not finite");
    CHECK(st.max_rms < 50, "deep: residual rms reached %g", st.max_rms);
    fprintf(stderr, "deep: residual rms max %.2f over 48 layers\n", st.max_rms);
    free(lg);
    sym_model_close(m);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/tests/test_synthetic_forward.tmp", SYM_BUILD_DIR);
    mkdir(g_dir, 0755);
    same_function("tiny");
    same_function("tiny-qwen2");
    deep();
    return test_finish("test_synthetic_forward");
}
