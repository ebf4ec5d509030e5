/* Mixture-of-experts models (Mixtral-style llama), model side: make-model round trips in the
 * three expert layouts (GGUF stacked ffn_*_exps, GGUF split ffn_gate.E, Hugging Face
 * experts.E.w1/w2/w3) hold the generator's bytes and the same experts; the per-expert views
 * point at the right rows of the stacked tensors; hand-built GGUF files with one thing wrong
 * each (expert counts, 3-D shapes, missing/extra/out-of-range experts) and bad config.json
 * files fail with a precise status and detail; the synthetic router routes skewed (the most
 * popular expert wins more than twice its uniform share of top-1 choices) yet input-dependent
 * (more than one distinct winner, and a different favourite across layers). */
#include <sys/stat.h>

#include "gguf_build.h"
#include "model/arch.h"
#include "model/hf.h"
#include "model/model.h"
#include "model/writer.h"
#include "pack/store.h"
#include "test_util.h"

static char g_dir[1024];

static void rm_rf(const char *path) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "rm -rf %s failed\n", path);
}

/* ---- round trips -------------------------------------------------------------------------------
 */

/* Every weight of the table equals the generator's rows; every expert view matches its stacked
 * tensor's rows (or, split, is that expert's tensor). */
static void check_model(const sym_model *m, uint64_t seed, const char *what) {
    const sym_hparams *hp = sym_model_hparams(m);
    int n_bad = 0;
    for (uint64_t i = 0; i < sym_model_n_weights(m); i++) {
        const sym_weight *w = sym_model_weight_at(m, i);
        size_t rb = (size_t)w->n_cols * sym_dtype_size(w->type);
        unsigned char *buf = malloc(rb);
        bool hf = sym_model_format_of(m) == SYM_MODEL_SAFETENSORS;
        bool permute = hf && (strstr(w->name, "attn_q.weight") || strstr(w->name, "attn_k.weight"));
        for (int64_t r = 0; r < w->n_rows && buf; r++) {
            int64_t src = permute ? sym_make_model_gguf_row(r, hp->head_dim) : r;
            CHECK_OK(sym_make_model_rows(hp, seed, w->name, src, 1, w->type, buf));
            if (memcmp(buf, (const unsigned char *)w->data + (size_t)r * rb, rb) != 0) {
                if (n_bad++ < 3) CHECK(0, "%s: %s row %lld differs", what, w->name, (long long)r);
                break;
            }
        }
        free(buf);
    }
    const sym_model_weights *mw = sym_model_weights_of(m);
    for (int l = 0; l < hp->n_layer; l++) {
        const sym_layer_weights *lw = &mw->layers[l];
        CHECK(!lw->w_gate.data && !lw->w_up.data && !lw->w_down.data, "%s: dense MLP present",
              what);
        CHECK(lw->ffn_gate_inp.data && lw->ffn_gate_inp.n_rows == hp->n_expert &&
                  lw->ffn_gate_inp.n_cols == hp->n_embd,
              "%s: router of layer %d", what, l);
        CHECK(hp->expert_split == !lw->ffn_gate_exps.data, "%s: stacked tensors vs layout", what);
        for (int e = 0; e < hp->n_expert; e++) {
            const sym_weight *v[3] = {&lw->exp_gate[e], &lw->exp_up[e], &lw->exp_down[e]};
            const sym_weight *all[3] = {&lw->ffn_gate_exps, &lw->ffn_up_exps, &lw->ffn_down_exps};
            int64_t rows[3] = {hp->n_ff, hp->n_ff, hp->n_embd},
                    cols[3] = {hp->n_embd, hp->n_embd, hp->n_ff};
            for (int j = 0; j < 3; j++) {
                CHECK(v[j]->data && v[j]->n_rows == rows[j] && v[j]->n_cols == cols[j] &&
                          v[j]->n_bytes ==
                              (uint64_t)(rows[j] * cols[j]) * sym_dtype_size(v[j]->type),
                      "%s: layer %d expert %d view %d shape", what, l, e, j);
                if (hp->expert_split) {
                    char name[64];
                    snprintf(name, sizeof name, "blk.%d.ffn_%s.%d.weight", l,
                             j == 0   ? "gate"
                             : j == 1 ? "up"
                                      : "down",
                             e);
                    const sym_weight *t = sym_model_find_weight(m, name);
                    CHECK(t && t->data == v[j]->data && !strcmp(v[j]->name, name),
                          "%s: %s is not its own view", what, name);
                } else {
                    CHECK(!strcmp(v[j]->name, all[j]->name) &&
                              (const char *)v[j]->data ==
                                  (const char *)all[j]->data + (size_t)e * v[j]->n_bytes &&
                              v[j]->file_offset ==
                                  all[j]->file_offset + (uint64_t)e * v[j]->n_bytes,
                          "%s: layer %d expert %d view %d does not point at rows %lld..", what, l,
                          e, j, (long long)(e * rows[j]));
                }
            }
        }
    }
}

static sym_model *make_open(sym_make_model_options *o, const char *name, const char *what) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    rm_rf(path);
    CHECK_OK(sym_make_model(o, path));
    sym_model *m = NULL;
    CHECK_OK(sym_model_open(path, &m));
    if (!m) return NULL;
    const sym_hparams *hp = sym_model_hparams(m);
    CHECK(hp->n_expert == o->n_expert && hp->n_expert_used == o->n_expert_used &&
              hp->expert_split == (o->split_experts || o->format == SYM_MODEL_SAFETENSORS),
          "%s: experts %d/%d split %d", what, hp->n_expert, hp->n_expert_used, hp->expert_split);
    check_model(m, o->seed, what);
    return m;
}

/* Two models of the same options in different layouts hold the same routers and experts. */
static void same_experts(const sym_model *a, const sym_model *b, const char *what) {
    const sym_hparams *hp = sym_model_hparams(a);
    const sym_model_weights *wa = sym_model_weights_of(a), *wb = sym_model_weights_of(b);
    for (int l = 0; l < hp->n_layer; l++) {
        const sym_layer_weights *x = &wa->layers[l], *y = &wb->layers[l];
        CHECK(x->ffn_gate_inp.n_bytes == y->ffn_gate_inp.n_bytes &&
                  !memcmp(x->ffn_gate_inp.data, y->ffn_gate_inp.data, x->ffn_gate_inp.n_bytes),
              "%s: routers of layer %d differ", what, l);
        for (int e = 0; e < hp->n_expert; e++) {
            const sym_weight *p[3] = {&x->exp_gate[e], &x->exp_up[e], &x->exp_down[e]};
            const sym_weight *q[3] = {&y->exp_gate[e], &y->exp_up[e], &y->exp_down[e]};
            for (int j = 0; j < 3; j++)
                CHECK(p[j]->n_bytes == q[j]->n_bytes &&
                          !memcmp(p[j]->data, q[j]->data, p[j]->n_bytes),
                      "%s: layer %d expert %d matrix %d differs", what, l, e, j);
        }
    }
}

/* A pack store of m (experts cut at 64 KiB) opens as the same model: hyperparameters, every
 * weight and every expert view. */
static void store_round_trip(const sym_model *m, uint64_t seed, const char *what) {
    char path[1200];
    snprintf(path, sizeof path, "%s/moe.sympack", g_dir);
    sym_store_write_options o;
    sym_store_write_options_init(&o);
    o.max_pack_bytes = 64 << 10;
    o.n_threads = 1;
    CHECK_OK(sym_store_write(m, path, &o, NULL));
    sym_model *s = NULL;
    CHECK_OK(sym_model_open(path, &s));
    if (!s) return;
    const sym_hparams *a = sym_model_hparams(m), *b = sym_model_hparams(s);
    CHECK(a->n_expert == b->n_expert && a->n_expert_used == b->n_expert_used &&
              a->expert_split == b->expert_split,
          "%s: store hparams %d %d %d", what, b->n_expert, b->n_expert_used, b->expert_split);
    check_model(s, seed, what);
    same_experts(m, s, what);
    const sym_pack_plan *p = sym_store_plan(sym_model_store(s));
    CHECK(p->n_expert == a->n_expert &&
              p->n_packs_by_type[SYM_PACK_EXPERT] >= (uint32_t)(a->n_layer * a->n_expert),
          "%s: store plan has %u expert packs", what, p->n_packs_by_type[SYM_PACK_EXPERT]);
    sym_model_close(s);
}

static void test_round_trips(void) {
    const sym_dtype types[] = {SYM_DT_F32, SYM_DT_F16, SYM_DT_BF16};
    for (int t = 0; t < 3; t++) {
        sym_make_model_options o;
        sym_make_model_options_init(&o);
        CHECK_OK(sym_make_model_preset(&o, "tiny-moe"));
        o.dtype = types[t];
        o.seed = 7 + (uint64_t)t;
        o.n_expert = 5; /* awkward on purpose */
        o.n_expert_used = 2;
        o.n_layer = 3;
        char what[64];
        snprintf(what, sizeof what, "stacked %s", sym_dtype_name(types[t]));
        sym_model *stacked = make_open(&o, "stacked.gguf", what);
        o.split_experts = true;
        snprintf(what, sizeof what, "split %s", sym_dtype_name(types[t]));
        sym_model *split = make_open(&o, "split.gguf", what);
        o.split_experts = false;
        o.format = SYM_MODEL_SAFETENSORS;
        o.shard_bytes = t == 2 ? 200000 : 0;
        snprintf(what, sizeof what, "safetensors %s", sym_dtype_name(types[t]));
        sym_model *st = make_open(&o, "st", what);
        if (stacked && split) {
            same_experts(stacked, split, "stacked vs split");
            CHECK(sym_model_n_weights(split) ==
                      sym_model_n_weights(stacked) + (uint64_t)o.n_layer * 3 * (o.n_expert - 1),
                  "split has %llu tensors, stacked %llu",
                  (unsigned long long)sym_model_n_weights(split),
                  (unsigned long long)sym_model_n_weights(stacked));
            CHECK(sym_model_n_params(split) == sym_model_n_params(stacked), "params differ");
        }
        if (stacked && st) same_experts(stacked, st, "stacked vs safetensors");
        if (stacked) store_round_trip(stacked, o.seed, "store of stacked");
        if (split) store_round_trip(split, o.seed, "store of split");
        sym_model_close(stacked);
        sym_model_close(split);
        sym_model_close(st);
    }
    /* the mixtral preset's shapes (hyperparameters only: 93 GB in f16) */
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    CHECK_OK(sym_make_model_preset(&o, "mixtral-8x7b"));
    sym_hparams hp;
    CHECK_OK(sym_make_model_hparams(&o, &hp));
    CHECK(hp.n_embd == 4096 && hp.n_layer == 32 && hp.n_head == 32 && hp.n_head_kv == 8 &&
              hp.n_ff == 14336 && hp.n_expert == 8 && hp.n_expert_used == 2 && hp.n_vocab == 32000,
          "mixtral-8x7b shapes");
    uint64_t params = 0;
    for (uint64_t i = 0; i < sym_arch_n_specs(&hp); i++) {
        sym_tensor_spec s;
        sym_arch_spec_at(&hp, i, &s);
        params += (uint64_t)s.n_rows * (uint64_t)s.n_cols;
    }
    CHECK(params > 46600000000ull && params < 46800000000ull, "mixtral has %llu params",
          (unsigned long long)params);
    /* options that cannot be written */
    sym_make_model_options bad;
    sym_make_model_options_init(&bad);
    bad.n_expert = 4;
    bad.n_expert_used = 5;
    CHECK_STATUS(sym_make_model_hparams(&bad, &hp), SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "n_expert_used = 5") != NULL, "%s", sym_last_error());
    bad.n_expert_used = 2;
    snprintf(bad.arch, sizeof bad.arch, "qwen2");
    CHECK_STATUS(sym_make_model_hparams(&bad, &hp), SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "llama models only") != NULL, "%s", sym_last_error());
    sym_make_model_options_init(&bad);
    bad.split_experts = true;
    CHECK_STATUS(sym_make_model_hparams(&bad, &hp), SYM_ERR_ARG);
}

/* ---- names
 * --------------------------------------------------------------------------------------- */

static void test_names(void) {
    char out[128];
    CHECK(sym_arch_internal_to_hf("blk.3.ffn_gate.5.weight", out, sizeof out) &&
              !strcmp(out, "model.layers.3.block_sparse_moe.experts.5.w1.weight"),
          "gate -> %s", out);
    CHECK(sym_arch_internal_to_hf("blk.0.ffn_down.7.weight", out, sizeof out) &&
              !strcmp(out, "model.layers.0.block_sparse_moe.experts.7.w2.weight"),
          "down -> %s", out);
    CHECK(sym_arch_hf_to_internal("model.layers.12.block_sparse_moe.experts.0.w3.weight", out,
                                  sizeof out) &&
              !strcmp(out, "blk.12.ffn_up.0.weight"),
          "w3 -> %s", out);
    CHECK(sym_arch_hf_to_internal("model.layers.1.block_sparse_moe.gate.weight", out, sizeof out) &&
              !strcmp(out, "blk.1.ffn_gate_inp.weight"),
          "router -> %s", out);
    CHECK(!sym_arch_internal_to_hf("blk.0.ffn_gate_exps.weight", out, sizeof out),
          "stacked experts have no HF name");
    static const char *const bad[] = {
        "model.layers.1.block_sparse_moe.experts.01.w1.weight",  /* leading zero */
        "model.layers.1.block_sparse_moe.experts.256.w1.weight", /* past the bound */
        "model.layers.1.block_sparse_moe.experts.2.w4.weight",
        "model.layers.1.block_sparse_moe.experts..w1.weight",
        "model.layers.1.block_sparse_moe.experts.-1.w1.weight",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!sym_arch_hf_to_internal(bad[i], out, sizeof out), "%s mapped to %s", bad[i], out);
    sym_hparams hp;
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    CHECK_OK(sym_make_model_preset(&o, "tiny-moe"));
    CHECK_OK(sym_make_model_hparams(&o, &hp));
    sym_tensor_spec s;
    CHECK(sym_arch_find_spec(&hp, "blk.1.ffn_down_exps.weight", &s) && s.n_stack == 8 &&
              s.n_rows == 8 * 80 && s.n_cols == 216 && s.expert == -1,
          "stacked spec");
    CHECK(!sym_arch_find_spec(&hp, "blk.1.ffn_down.3.weight", &s), "split name in stacked model");
    CHECK(!sym_arch_find_spec(&hp, "blk.1.ffn_down.weight", &s), "dense name in a MoE model");
    hp.expert_split = true;
    CHECK(sym_arch_find_spec(&hp, "blk.1.ffn_down.7.weight", &s) && s.expert == 7 &&
              s.n_rows == 80 && s.n_cols == 216 && s.n_stack == 0,
          "split spec");
    CHECK(!sym_arch_find_spec(&hp, "blk.1.ffn_down.8.weight", &s), "expert 8 of 8");
    CHECK(!sym_arch_find_spec(&hp, "blk.1.ffn_down_exps.weight", &s), "stacked in split model");
    uint64_t dims[3];
    sym_arch_spec_of(&hp, SYM_ROLE_GATE_EXPS, 0, -1, &s);
    CHECK(sym_arch_spec_dims(&s, true, dims) == 3 && dims[0] == 80 && dims[1] == 216 &&
              dims[2] == 8,
          "ggml dims %llu %llu %llu", (unsigned long long)dims[0], (unsigned long long)dims[1],
          (unsigned long long)dims[2]);
    CHECK(sym_arch_spec_dims(&s, false, dims) == 3 && dims[0] == 8 && dims[2] == 80, "hf dims");
}

/* ---- broken files
 * --------------------------------------------------------------------------------- */

enum { E = 3, EMBD = 8, FF = 12, VOCAB = 10 };

typedef struct mcase {
    const char *what;
    int n_expert, n_used; /* -1: key absent */
    bool split;
    const char *skip;      /* tensor left out */
    const char *extra;     /* an extra tensor (n_embd vector) */
    const char *bad_shape; /* last dimension one too large */
    const char *flat;      /* a stacked tensor written 2-D */
    uint32_t n_layer;      /* 0: 1 */
    bool dense_mlp;        /* write ffn_gate/up/down instead of the experts */
} mcase;

static void put(gguf_builder *g, const mcase *c, const char *name, uint32_t n_dims, uint64_t a,
                uint64_t b, uint64_t d) {
    if (c->skip && !strcmp(c->skip, name)) return;
    uint64_t ne[3] = {a, b, d};
    if (c->bad_shape && !strcmp(c->bad_shape, name)) ne[n_dims - 1]++;
    if (c->flat && !strcmp(c->flat, name) && n_dims == 3) {
        ne[1] *= ne[2];
        n_dims = 2;
    }
    uint64_t n = ne[0] * (n_dims > 1 ? ne[1] : 1) * (n_dims > 2 ? ne[2] : 1);
    gb_tensor_at(g, name, n_dims, ne, 0, UINT64_MAX, (size_t)n * 4);
}

static unsigned char *build(const mcase *c, size_t *size) {
    gguf_builder g;
    gb_init(&g);
    uint32_t n_layer = c->n_layer ? c->n_layer : 1;
    gb_kv_str(&g, "general.architecture", "llama");
    gb_kv_u32(&g, "llama.context_length", 64);
    gb_kv_u32(&g, "llama.embedding_length", EMBD);
    gb_kv_u32(&g, "llama.block_count", n_layer);
    gb_kv_u32(&g, "llama.feed_forward_length", FF);
    gb_kv_u32(&g, "llama.attention.head_count", 2);
    gb_kv_u32(&g, "llama.attention.head_count_kv", 1);
    if (c->n_expert >= 0) gb_kv_u32(&g, "llama.expert_count", (uint32_t)c->n_expert);
    if (c->n_used >= 0) gb_kv_u32(&g, "llama.expert_used_count", (uint32_t)c->n_used);
    put(&g, c, "token_embd.weight", 2, EMBD, VOCAB, 0);
    put(&g, c, "output_norm.weight", 1, EMBD, 0, 0);
    put(&g, c, "output.weight", 2, EMBD, VOCAB, 0);
    for (uint32_t l = 0; l < (n_layer < 2 ? n_layer : 2); l++) {
        char n[64];
#define PUT(suffix, nd, a, b, d)                                                                   \
    do {                                                                                           \
        snprintf(n, sizeof n, "blk.%u.%s", l, suffix);                                             \
        put(&g, c, n, nd, a, b, d);                                                                \
    } while (0)
        PUT("attn_norm.weight", 1, EMBD, 0, 0);
        PUT("attn_q.weight", 2, EMBD, EMBD, 0);
        PUT("attn_k.weight", 2, EMBD, EMBD / 2, 0);
        PUT("attn_v.weight", 2, EMBD, EMBD / 2, 0);
        PUT("attn_output.weight", 2, EMBD, EMBD, 0);
        PUT("ffn_norm.weight", 1, EMBD, 0, 0);
        if (c->dense_mlp) {
            PUT("ffn_gate.weight", 2, EMBD, FF, 0);
            PUT("ffn_up.weight", 2, EMBD, FF, 0);
            PUT("ffn_down.weight", 2, FF, EMBD, 0);
            continue;
        }
        PUT("ffn_gate_inp.weight", 2, EMBD, E, 0);
        if (!c->split) {
            PUT("ffn_gate_exps.weight", 3, EMBD, FF, E);
            PUT("ffn_up_exps.weight", 3, EMBD, FF, E);
            PUT("ffn_down_exps.weight", 3, FF, EMBD, E);
            continue;
        }
        for (int e = 0; e < E; e++) {
            char s[48];
            snprintf(s, sizeof s, "ffn_gate.%d.weight", e);
            PUT(s, 2, EMBD, FF, 0);
            snprintf(s, sizeof s, "ffn_up.%d.weight", e);
            PUT(s, 2, EMBD, FF, 0);
            snprintf(s, sizeof s, "ffn_down.%d.weight", e);
            PUT(s, 2, FF, EMBD, 0);
        }
#undef PUT
    }
    if (c->extra) put(&g, c, c->extra, 2, EMBD, FF, 0);
    unsigned char *p = gb_finish(&g, size);
    gb_free(&g);
    return p;
}

static void expect(const mcase *c, sym_status want, const char *needle) {
    size_t size;
    unsigned char *data = build(c, &size);
    char path[1200];
    snprintf(path, sizeof path, "%s/case.gguf", g_dir);
    CHECK(test_write_file(path, data, size) == 0, "write %s", path);
    free(data);
    sym_model *m = NULL;
    sym_status st = sym_model_open(path, &m);
    CHECK(st == want, "%s: got %s (%s), want %s", c->what, sym_status_name(st), sym_last_error(),
          sym_status_name(want));
    if (needle && st != SYM_OK)
        CHECK(strstr(sym_last_error(), needle) != NULL, "%s: detail '%s' lacks '%s'", c->what,
              sym_last_error(), needle);
    if (st == SYM_OK && m && !c->dense_mlp) {
        const sym_hparams *hp = sym_model_hparams(m);
        CHECK(hp->n_expert == E && hp->n_expert_used == c->n_used && hp->expert_split == c->split,
              "%s: hparams %d %d %d", c->what, hp->n_expert, hp->n_expert_used, hp->expert_split);
        const sym_layer_weights *lw = &sym_model_weights_of(m)->layers[0];
        CHECK(lw->exp_down[2].n_rows == EMBD && lw->exp_down[2].n_cols == FF, "%s: view", c->what);
    }
    sym_model_close(m);
}

static void test_broken(void) {
    expect(&(mcase){.what = "stacked", .n_expert = E, .n_used = 2}, SYM_OK, NULL);
    expect(&(mcase){.what = "split", .n_expert = E, .n_used = 1, .split = true}, SYM_OK, NULL);
    expect(&(mcase){.what = "top-k = all", .n_expert = E, .n_used = E}, SYM_OK, NULL);
    expect(&(mcase){.what = "used > count", .n_expert = E, .n_used = E + 1}, SYM_ERR_FORMAT,
           "llama.expert_used_count = 4 is out of range (1..llama.expert_count = 3)");
    expect(&(mcase){.what = "used 0", .n_expert = E, .n_used = 0}, SYM_ERR_FORMAT,
           "expert_used_count = 0 is out of range");
    expect(&(mcase){.what = "used absent", .n_expert = E, .n_used = -1}, SYM_ERR_FORMAT,
           "expert_used_count = 0");
    expect(&(mcase){.what = "count absent", .n_expert = -1, .n_used = 2}, SYM_ERR_FORMAT,
           "llama.expert_used_count = 2 without llama.expert_count");
    expect(&(mcase){.what = "count 300", .n_expert = 300, .n_used = 2}, SYM_ERR_FORMAT,
           "llama.expert_count = 300 is out of range (1..256)");
    expect(&(mcase){.what = "router, .n_expert = no count", .n_used = -1, .split = -1},
           SYM_ERR_FORMAT, "expert routers (blk.0.ffn_gate_inp.weight) but no llama.expert_count");
    expect(
        &(mcase){
            .what = "count 0 with a dense MLP", .n_expert = 0, .n_used = -1, .dense_mlp = true},
        SYM_OK, NULL);
    expect(
        &(mcase){.what = "dense MLP in a MoE model", .n_expert = E, .n_used = 2, .dense_mlp = true},
        SYM_ERR_FORMAT, "missing tensor 'blk.0.ffn_gate_inp.weight'");
    expect(&(mcase){.what = "missing down_exps",
                    .n_expert = E,
                    .n_used = 2,
                    .skip = "blk.0.ffn_down_exps.weight"},
           SYM_ERR_FORMAT, "missing tensor 'blk.0.ffn_down_exps.weight'");
    expect(&(mcase){.what = "missing router",
                    .n_expert = E,
                    .n_used = 2,
                    .skip = "blk.0.ffn_gate_inp.weight"},
           SYM_ERR_FORMAT, "missing tensor 'blk.0.ffn_gate_inp.weight'");
    expect(&(mcase){.what = "router shape",
                    .n_expert = E,
                    .n_used = 2,
                    .bad_shape = "blk.0.ffn_gate_inp.weight"},
           SYM_ERR_FORMAT, "tensor 'blk.0.ffn_gate_inp.weight' has shape [8, 4] but [8, 3]");
    expect(&(mcase){.what = "4 experts in a 3-expert file",
                    .n_expert = E,
                    .n_used = 2,
                    .bad_shape = "blk.0.ffn_up_exps.weight"},
           SYM_ERR_FORMAT, "has shape [8, 12, 4] but [8, 12, 3] is expected");
    expect(&(mcase){.what = "stacked written 2-D",
                    .n_expert = E,
                    .n_used = 2,
                    .flat = "blk.0.ffn_gate_exps.weight"},
           SYM_ERR_FORMAT, "has shape [8, 36] but [8, 12, 3] is expected");
    expect(&(mcase){.what = "split: missing expert",
                    .n_expert = E,
                    .n_used = 2,
                    .split = true,
                    .skip = "blk.0.ffn_up.2.weight"},
           SYM_ERR_FORMAT, "missing tensor 'blk.0.ffn_up.2.weight'");
    expect(&(mcase){.what = "split: expert 3 of 3",
                    .n_expert = E,
                    .n_used = 2,
                    .split = true,
                    .extra = "blk.0.ffn_gate.3.weight"},
           SYM_ERR_FORMAT, "unexpected tensor 'blk.0.ffn_gate.3.weight'");
    expect(&(mcase){.what = "split: shape",
                    .n_expert = E,
                    .n_used = 2,
                    .split = true,
                    .bad_shape = "blk.0.ffn_down.1.weight"},
           SYM_ERR_FORMAT, "tensor 'blk.0.ffn_down.1.weight' has shape [12, 9]");
    expect(&(mcase){.what = "stacked plus a split tensor",
                    .n_expert = E,
                    .n_used = 2,
                    .extra = "blk.0.ffn_gate.0.weight"},
           SYM_ERR_FORMAT, "unexpected tensor 'blk.0.ffn_gate.0.weight'");
    expect(&(mcase){.what = "dense tensor beside experts",
                    .n_expert = E,
                    .n_used = 2,
                    .extra = "blk.0.ffn_gate.weight"},
           SYM_ERR_FORMAT, "unexpected tensor 'blk.0.ffn_gate.weight'");
    /* 4000 layers x 256 split experts would need 3 million tensors: refused before sizing
     * tables for them */
    expect(&(mcase){.what = "huge expert table",
                    .n_expert = 256,
                    .n_used = 2,
                    .split = true,
                    .n_layer = 4000},
           SYM_ERR_FORMAT, "a llama model of these dimensions (4000 layers, experts) has");
}

static void test_hf_config(void) {
    static const char base[] =
        "{\"model_type\": \"mixtral\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "
        "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"intermediate_size\": 100, "
        "\"vocab_size\": 300, \"max_position_embeddings\": 128%s}";
    static const struct {
        const char *extra;
        sym_status want;
        const char *needle;
    } cases[] = {
        {", \"num_local_experts\": 8, \"num_experts_per_tok\": 2", SYM_OK, NULL},
        {", \"num_experts_per_tok\": 2", SYM_ERR_FORMAT, "num_local_experts"},
        {", \"num_local_experts\": 8", SYM_ERR_FORMAT, "num_experts_per_tok"},
        {", \"num_local_experts\": 8, \"num_experts_per_tok\": 9", SYM_ERR_FORMAT,
         "num_experts_per_tok"},
        {", \"num_local_experts\": 257, \"num_experts_per_tok\": 2", SYM_ERR_FORMAT,
         "num_local_experts"},
        {", \"num_local_experts\": \"8\", \"num_experts_per_tok\": 2", SYM_ERR_FORMAT,
         "num_local_experts"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, base, cases[i].extra);
        sym_hf_config c;
        sym_status st = sym_hf_config_parse(text, strlen(text), &c);
        CHECK(st == cases[i].want, "config %zu: %s (%s)", i, sym_status_name(st), sym_last_error());
        if (st == SYM_OK)
            CHECK(c.hp.n_expert == 8 && c.hp.n_expert_used == 2 && c.hp.expert_split &&
                      !strcmp(c.hp.arch, "llama"),
                  "mixtral config: %d %d %d %s", c.hp.n_expert, c.hp.n_expert_used,
                  c.hp.expert_split, c.hp.arch);
        else if (cases[i].needle)
            CHECK(strstr(sym_last_error(), cases[i].needle) != NULL, "config %zu: %s", i,
                  sym_last_error());
    }
}

/* ---- the synthetic router's skew --------------------------------------------------------------
 */

/* Top-1 winners of layer l's router over n random inputs with unit-variance entries (what an
 * RMS-normalized hidden state looks like). Returns the most popular expert. */
static int router_winners(const sym_hparams *hp, int l, test_rng *r, int n, int *wins) {
    char name[64];
    snprintf(name, sizeof name, "blk.%d.ffn_gate_inp.weight", l);
    float *w = malloc((size_t)hp->n_expert * (size_t)hp->n_embd * sizeof *w);
    float *x = malloc((size_t)hp->n_embd * sizeof *x);
    CHECK_OK(sym_make_model_rows(hp, 1, name, 0, hp->n_expert, SYM_DT_F32, w));
    memset(wins, 0, (size_t)hp->n_expert * sizeof *wins);
    for (int t = 0; t < n; t++) {
        for (int c = 0; c < hp->n_embd; c++)
            x[c] = test_rng_f32(r) * 1.7320508f; /* var 1 */
        int best = 0;
        float best_l = -INFINITY;
        for (int e = 0; e < hp->n_expert; e++) {
            float s = 0;
            for (int c = 0; c < hp->n_embd; c++)
                s += w[(size_t)e * hp->n_embd + c] * x[c];
            if (s > best_l) best_l = s, best = e;
        }
        wins[best]++;
    }
    int top = 0;
    for (int e = 1; e < hp->n_expert; e++)
        if (wins[e] > wins[top]) top = e;
    free(w);
    free(x);
    return top;
}

static void test_router_skew(test_rng *r) {
    const char *presets[] = {"tiny-moe", "mini-moe", "mixtral-8x7b"};
    for (int p = 0; p < 3; p++) {
        sym_make_model_options o;
        sym_make_model_options_init(&o);
        CHECK_OK(sym_make_model_preset(&o, presets[p]));
        sym_hparams hp;
        CHECK_OK(sym_make_model_hparams(&o, &hp));
        int n_layers = hp.n_layer < 8 ? hp.n_layer : 8, favourites[8], n = p == 2 ? 400 : 2000;
        bool differ = false;
        for (int l = 0; l < n_layers; l++) {
            int wins[SYM_ARCH_MAX_EXPERTS], distinct = 0;
            favourites[l] = router_winners(&hp, l, r, n, wins);
            for (int e = 0; e < hp.n_expert; e++)
                distinct += wins[e] > 0;
            double share = (double)wins[favourites[l]] / n, uniform = 1.0 / hp.n_expert;
            fprintf(stderr,
                    "%s layer %d: expert %d wins %.0f%% of top-1 choices (uniform %.1f%%), "
                    "%d distinct winners\n",
                    presets[p], l, favourites[l], 100 * share, 100 * uniform, distinct);
            CHECK(share > 2 * uniform, "%s layer %d: favourite wins %.3f, uniform %.3f", presets[p],
                  l, share, uniform);
            CHECK(distinct > hp.n_expert / 2, "%s layer %d: only %d distinct winners", presets[p],
                  l, distinct);
            differ |= l > 0 && favourites[l] != favourites[0];
        }
        if (n_layers > 2)
            CHECK(differ, "%s: every layer favours expert %d", presets[p], favourites[0]);
    }
}

int main(void) {
    test_rng r = test_rng_init("test_moe_model");
    snprintf(g_dir, sizeof g_dir, "%s/test_moe_model.tmp", SYM_BUILD_DIR);
    rm_rf(g_dir);
    mkdir(g_dir, 0755);
    test_names();
    test_round_trips();
    test_broken();
    test_hf_config();
    test_router_skew(&r);
    rm_rf(g_dir);
    return test_finish("test_moe_model");
}
