/* Model loading: the shared real model's hyperparameters and weight table; hand-built GGUF models
 * with one thing wrong each (missing/extra tensor, wrong shape or type, bad or absent metadata),
 * each expecting a precise status and detail; allocation failure at every step of opening. */
#include <sys/stat.h>

#include "base/alloc.h"
#include "gguf_build.h"
#include "model/model.h"
#include "model/writer.h"
#include "test_util.h"

static char g_dir[1024];

static void test_shared_model(void) {
    char path[1024];
    sym_model *m = NULL;
    CHECK_OK(sym_model_open(test_shared_path("models/aidreams260K.gguf", path, sizeof path), &m));
    if (!m) return;
    const sym_hparams *hp = sym_model_hparams(m);
    CHECK(!strcmp(hp->arch, "llama"), "arch %s", hp->arch);
    CHECK(hp->n_embd == 64 && hp->n_layer == 4 && hp->n_head == 4 && hp->n_head_kv == 4 &&
              hp->n_ff == 172 && hp->n_vocab == 512 && hp->n_ctx_train == 128 &&
              hp->head_dim == 16,
          "dims %d %d %d %d %d %d %d %d", hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv,
          hp->n_ff, hp->n_vocab, hp->n_ctx_train, hp->head_dim);
    CHECK(hp->rope_neox == 0 && !hp->qkv_bias && hp->rope_theta == 10000.0f &&
              hp->rope_freq_scale == 1.0f && fabsf(hp->rms_eps - 1e-5f) < 1e-9f,
          "rope/eps");
    /* the file stores output.weight (a byte copy of token_embd): not tied in the file's terms */
    CHECK(!hp->tied_embeddings, "tied");
    CHECK(sym_model_format_of(m) == SYM_MODEL_GGUF, "format");
    CHECK(sym_model_n_weights(m) == 39, "n_weights %llu", (unsigned long long)sym_model_n_weights(m));
    CHECK(sym_model_n_params(m) == 263744, "n_params %llu", (unsigned long long)sym_model_n_params(m));
    CHECK(sym_model_weight_bytes(m) == 263744 * 4, "bytes");
    const sym_model_weights *w = sym_model_weights_of(m);
    CHECK(w->layers[3].w_down.n_rows == 64 && w->layers[3].w_down.n_cols == 172 &&
              w->layers[3].w_down.type == SYM_DT_F32,
          "w_down shape");
    CHECK(w->layers[0].bq.data == NULL, "llama has no biases");
    const sym_weight *up = sym_model_find_weight(m, "blk.2.ffn_up.weight");
    const sym_gguf_tensor *t = sym_gguf_find_tensor(sym_model_gguf(m), "blk.2.ffn_up.weight");
    CHECK(up && t && up->data == t->data && up->n_bytes == 172 * 64 * 4 &&
              up->data == w->layers[2].w_up.data,
          "ffn_up binding");
    CHECK(up && up->file_offset == sym_gguf_data_offset(sym_model_gguf(m)) + t->offset, "offset");
    CHECK(sym_model_find_weight(m, "output.weight") != NULL, "output");
    CHECK(sym_model_find_weight(m, "blk.4.ffn_up.weight") == NULL, "found layer 4");
    for (uint64_t i = 1; i < sym_model_n_weights(m); i++)
        CHECK(sym_model_weight_at(m, i - 1)->file_offset < sym_model_weight_at(m, i)->file_offset,
              "table not in file order at %llu", (unsigned long long)i);
    sym_tokenizer_summary ts;
    CHECK_OK(sym_model_tokenizer_summary(m, &ts));
    CHECK(!strcmp(ts.model, "llama") && ts.n_tokens == 512 && ts.bos_id == 1 && ts.eos_id == 2,
          "tokenizer %s %lld", ts.model, (long long)ts.n_tokens);
    CHECK(sym_model_n_files(m) == 1 && !strcmp(sym_model_file_path(m, 0), path), "paths");
    sym_model_close(m);
}

/* ---- hand-built GGUF variants ----------------------------------------------------------------- */

typedef struct tcase {
    const char *what;
    const char *arch;          /* default llama */
    int n_embd, n_head, n_head_kv, n_ff, n_vocab; /* 0: defaults 8, 2, 1, 12, 10 */
    const char *skip;          /* tensor left out */
    const char *bad_shape;     /* tensor whose last dimension is one too large */
    const char *retype;        /* tensor written with type `type` */
    uint32_t type;
    const char *extra;         /* an extra tensor */
    const char *drop_key;      /* metadata key left out */
    void (*more)(gguf_builder *g);
    bool tied;
    int n_tokens;              /* tokenizer.ggml.tokens length (0: n_vocab, -1: none) */
    uint32_t all_type;         /* ggml type of every tensor (0 f32, 1 f16, 30 bf16) */
} tcase;

static void put_key(gguf_builder *g, const tcase *tc, const char *arch, const char *suffix,
                    uint32_t v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (tc->drop_key && !strcmp(tc->drop_key, key)) return;
    gb_kv_u32(g, key, v);
}

static void put_tensor(gguf_builder *g, const tcase *tc, const char *name, uint64_t ne0,
                       uint64_t ne1) {
    if (tc->skip && !strcmp(tc->skip, name)) return;
    if (tc->bad_shape && !strcmp(tc->bad_shape, name)) ne1 ? ne1++ : ne0++;
    uint32_t type = tc->all_type;
    if (tc->retype && !strcmp(tc->retype, name)) type = tc->type;
    size_t elem = type == 0 ? 4 : type == 28 ? 8 : type == 24 ? 1 : 2;
    if (type == 8) { /* Q8_0: 34 bytes per 32 elements */
        uint64_t ne[2] = {ne0, ne1};
        gb_tensor_at(g, name, ne1 ? 2 : 1, ne, type, UINT64_MAX,
                     (size_t)(ne0 / 32 * 34 * (ne1 ? ne1 : 1)));
        return;
    }
    gb_tensor(g, name, ne0, ne1, type, elem);
}

static unsigned char *build(const tcase *tc, size_t *size) {
    const char *arch = tc->arch ? tc->arch : "llama";
    int n_embd = tc->n_embd ? tc->n_embd : 8, n_head = tc->n_head ? tc->n_head : 2;
    int n_kv = tc->n_head_kv ? tc->n_head_kv : 1, n_ff = tc->n_ff ? tc->n_ff : 12;
    int n_vocab = tc->n_vocab ? tc->n_vocab : 10, hd = n_embd / n_head;
    bool bias = !strcmp(arch, "qwen2");
    gguf_builder g;
    gb_init(&g);
    gb_kv_str(&g, "general.architecture", arch);
    put_key(&g, tc, arch, "context_length", 64);
    put_key(&g, tc, arch, "embedding_length", (uint32_t)n_embd);
    put_key(&g, tc, arch, "block_count", 1);
    put_key(&g, tc, arch, "feed_forward_length", (uint32_t)n_ff);
    put_key(&g, tc, arch, "attention.head_count", (uint32_t)n_head);
    put_key(&g, tc, arch, "attention.head_count_kv", (uint32_t)n_kv);
    gb_kv_f32(&g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    if (tc->n_tokens >= 0) {
        gb_kv_str(&g, "tokenizer.ggml.model", "llama");
        gb_kv_tokens(&g, "tokenizer.ggml.tokens", (uint64_t)(tc->n_tokens ? tc->n_tokens : n_vocab));
    }
    if (tc->more) tc->more(&g);
    put_tensor(&g, tc, "token_embd.weight", (uint64_t)n_embd, (uint64_t)n_vocab);
    put_tensor(&g, tc, "output_norm.weight", (uint64_t)n_embd, 0);
    if (!tc->tied) put_tensor(&g, tc, "output.weight", (uint64_t)n_embd, (uint64_t)n_vocab);
    put_tensor(&g, tc, "blk.0.attn_norm.weight", (uint64_t)n_embd, 0);
    put_tensor(&g, tc, "blk.0.attn_q.weight", (uint64_t)n_embd, (uint64_t)(n_head * hd));
    put_tensor(&g, tc, "blk.0.attn_k.weight", (uint64_t)n_embd, (uint64_t)(n_kv * hd));
    put_tensor(&g, tc, "blk.0.attn_v.weight", (uint64_t)n_embd, (uint64_t)(n_kv * hd));
    if (bias) {
        put_tensor(&g, tc, "blk.0.attn_q.bias", (uint64_t)(n_head * hd), 0);
        put_tensor(&g, tc, "blk.0.attn_k.bias", (uint64_t)(n_kv * hd), 0);
        put_tensor(&g, tc, "blk.0.attn_v.bias", (uint64_t)(n_kv * hd), 0);
    }
    put_tensor(&g, tc, "blk.0.attn_output.weight", (uint64_t)(n_head * hd), (uint64_t)n_embd);
    put_tensor(&g, tc, "blk.0.ffn_norm.weight", (uint64_t)n_embd, 0);
    put_tensor(&g, tc, "blk.0.ffn_gate.weight", (uint64_t)n_embd, (uint64_t)n_ff);
    put_tensor(&g, tc, "blk.0.ffn_up.weight", (uint64_t)n_embd, (uint64_t)n_ff);
    put_tensor(&g, tc, "blk.0.ffn_down.weight", (uint64_t)n_ff, (uint64_t)n_embd);
    if (tc->extra) put_tensor(&g, tc, tc->extra, (uint64_t)n_embd, 0);
    unsigned char *p = gb_finish(&g, size);
    gb_free(&g);
    return p;
}

static sym_model *open_case(const tcase *tc, sym_status want, const char *needle) {
    size_t size;
    unsigned char *data = build(tc, &size);
    char path[1200];
    snprintf(path, sizeof path, "%s/case.gguf", g_dir);
    CHECK(test_write_file(path, data, size) == 0, "write %s", path);
    free(data);
    sym_model *m = NULL;
    sym_status st = sym_model_open(path, &m);
    CHECK(st == want, "%s: got %s (%s), want %s", tc->what, sym_status_name(st), sym_last_error(),
          sym_status_name(want));
    if (needle)
        CHECK(strstr(sym_last_error(), needle) != NULL, "%s: detail '%s' lacks '%s'", tc->what,
              sym_last_error(), needle);
    if (st != SYM_OK) CHECK(m == NULL, "%s: model returned on failure", tc->what);
    return m;
}

static void expect(const tcase *tc, sym_status want, const char *needle) {
    sym_model_close(open_case(tc, want, needle));
}

static void kv_rope_yarn(gguf_builder *g) { gb_kv_str(g, "llama.rope.scaling.type", "yarn"); }
static void kv_rope_linear(gguf_builder *g) {
    gb_kv_str(g, "llama.rope.scaling.type", "linear");
    gb_kv_f32(g, "llama.rope.scaling.factor", 4.0f);
}
static void kv_rope_linear_neg(gguf_builder *g) {
    gb_kv_str(g, "llama.rope.scaling.type", "linear");
    gb_kv_f32(g, "llama.rope.scaling.factor", -2.0f);
}
static void kv_partial_rope(gguf_builder *g) { gb_kv_u32(g, "llama.rope.dimension_count", 2); }
static void kv_key_length(gguf_builder *g) {
    gb_kv_u32(g, "llama.attention.key_length", 6);
    gb_kv_u32(g, "llama.attention.value_length", 6);
}
static void kv_theta_str(gguf_builder *g) { gb_kv_str(g, "llama.rope.freq_base", "big"); }
static void kv_theta_zero(gguf_builder *g) { gb_kv_f32(g, "llama.rope.freq_base", 0.0f); }
static void kv_vocab_size(gguf_builder *g) { gb_kv_u32(g, "llama.vocab_size", 11); }
static void kv_huge_embd(gguf_builder *g) { gb_kv_u32(g, "llama.embedding_length", 1u << 31); }
static void kv_layers_5000(gguf_builder *g) { gb_kv_u32(g, "llama.block_count", 5000); }
static void kv_zero_embd(gguf_builder *g) { gb_kv_u32(g, "llama.embedding_length", 0); }

static void test_variants(void) {
    tcase ok = {.what = "valid"};
    sym_model *m = open_case(&ok, SYM_OK, NULL);
    if (m) {
        const sym_hparams *hp = sym_model_hparams(m);
        CHECK(hp->n_embd == 8 && hp->n_head == 2 && hp->n_head_kv == 1 && hp->head_dim == 4 &&
                  hp->n_ff == 12 && hp->n_vocab == 10 && hp->n_layer == 1 && hp->n_ctx_train == 64,
              "valid dims");
        CHECK(sym_model_n_weights(m) == 12, "n_weights %llu", (unsigned long long)sym_model_n_weights(m));
        CHECK(sym_model_weights_of(m)->layers[0].wk.n_rows == 4, "wk rows");
        sym_model_close(m);
    }
    tcase tied = {.what = "tied", .tied = true};
    m = open_case(&tied, SYM_OK, NULL);
    if (m) {
        const sym_model_weights *w = sym_model_weights_of(m);
        CHECK(sym_model_hparams(m)->tied_embeddings && w->output.data == w->token_embd.data,
              "tied output");
        CHECK(sym_model_n_weights(m) == 11, "tied weights counted once");
        sym_model_close(m);
    }
    tcase f16 = {.what = "f16", .all_type = 1}, bf16 = {.what = "bf16", .all_type = 30};
    m = open_case(&f16, SYM_OK, NULL);
    CHECK(m && sym_model_weights_of(m)->layers[0].w_up.type == SYM_DT_F16, "f16 type");
    sym_model_close(m);
    m = open_case(&bf16, SYM_OK, NULL);
    CHECK(m && sym_model_weights_of(m)->token_embd.type == SYM_DT_BF16, "bf16 type");
    sym_model_close(m);
    tcase lin = {.what = "linear rope", .more = kv_rope_linear};
    m = open_case(&lin, SYM_OK, NULL);
    CHECK(m && sym_model_hparams(m)->rope_freq_scale == 0.25f, "freq scale");
    sym_model_close(m);
    tcase kl = {.what = "key_length", .n_embd = 8, .more = kv_key_length};
    /* head_dim 6 != 8/2: wq is (12, 8) in this file only if built so; the builder uses n_embd /
     * n_head, so the shapes are wrong and the loader says which */
    expect(&kl, SYM_ERR_FORMAT, "blk.0.attn_q.weight' has shape [8, 8] but [8, 12] is expected");

    tcase qwen = {.what = "qwen2", .arch = "qwen2"};
    m = open_case(&qwen, SYM_OK, NULL);
    if (m) {
        const sym_hparams *hp = sym_model_hparams(m);
        CHECK(hp->qkv_bias && hp->rope_neox == 1, "qwen2 flags");
        CHECK(sym_model_weights_of(m)->layers[0].bk.n_cols == 4, "bk");
        sym_model_close(m);
    }
    tcase qnob = {.what = "qwen2 no bias", .arch = "qwen2", .skip = "blk.0.attn_v.bias"};
    expect(&qnob, SYM_ERR_FORMAT, "missing tensor 'blk.0.attn_v.bias'");

    tcase c1 = {.what = "missing", .skip = "blk.0.ffn_up.weight"};
    expect(&c1, SYM_ERR_FORMAT, "gguf: missing tensor 'blk.0.ffn_up.weight'");
    tcase c2 = {.what = "shape", .bad_shape = "blk.0.attn_k.weight"};
    expect(&c2, SYM_ERR_FORMAT, "tensor 'blk.0.attn_k.weight' has shape [8, 5] but [8, 4] is expected");
    tcase c3 = {.what = "norm shape", .bad_shape = "output_norm.weight"};
    expect(&c3, SYM_ERR_FORMAT, "tensor 'output_norm.weight' has shape [9] but [8] is expected");
    tcase c4 = {.what = "Q8_0", .n_embd = 32, .retype = "blk.0.attn_q.weight", .type = 8};
    expect(&c4, SYM_ERR_UNSUPPORTED, "tensor blk.0.attn_q.weight is Q8_0: Symbiote runs "
                                     "unquantized models (f32, f16, bf16)");
    tcase c5 = {.what = "F64", .retype = "blk.0.ffn_norm.weight", .type = 28};
    expect(&c5, SYM_ERR_UNSUPPORTED, "tensor blk.0.ffn_norm.weight is F64");
    tcase c6 = {.what = "arch", .arch = "gpt2"};
    expect(&c6, SYM_ERR_UNSUPPORTED, "unknown architecture 'gpt2'");
    tcase c7 = {.what = "extra", .extra = "blk.0.attn_q_norm.weight"};
    expect(&c7, SYM_ERR_FORMAT, "unexpected tensor 'blk.0.attn_q_norm.weight' for architecture llama");
    tcase c7b = {.what = "layer 1", .extra = "blk.1.attn_norm.weight"};
    expect(&c7b, SYM_ERR_FORMAT, "unexpected tensor 'blk.1.attn_norm.weight'");
    tcase c8 = {.what = "rope_freqs", .extra = "rope_freqs.weight"};
    expect(&c8, SYM_ERR_UNSUPPORTED, "rope_freqs.weight");
    tcase c9 = {.what = "heads", .n_head = 3, .n_head_kv = 3};
    expect(&c9, SYM_ERR_FORMAT, "embedding_length 8 is not a multiple of head_count 3");
    tcase c10 = {.what = "gqa", .n_head = 4, .n_head_kv = 3};
    expect(&c10, SYM_ERR_FORMAT, "n_head 4 is not a multiple of n_head_kv 3");
    tcase c11 = {.what = "no embd", .drop_key = "llama.embedding_length"};
    expect(&c11, SYM_ERR_FORMAT, "missing metadata key 'llama.embedding_length'");
    tcase c12 = {.what = "zero embd", .drop_key = "llama.embedding_length", .more = kv_zero_embd};
    expect(&c12, SYM_ERR_FORMAT, "llama.embedding_length = 0 is out of range");
    tcase c13 = {.what = "huge embd", .drop_key = "llama.embedding_length", .more = kv_huge_embd};
    expect(&c13, SYM_ERR_FORMAT, "llama.embedding_length = 2147483648 is out of range");
    tcase c14 = {.what = "5000 layers", .drop_key = "llama.block_count", .more = kv_layers_5000};
    expect(&c14, SYM_ERR_FORMAT, "llama.block_count = 5000 is out of range");
    tcase c15 = {.what = "tokens", .n_tokens = 11};
    expect(&c15, SYM_ERR_FORMAT, "token_embd.weight has 10 rows but tokenizer.ggml.tokens has 11");
    tcase c16 = {.what = "no tokenizer", .n_tokens = -1};
    expect(&c16, SYM_OK, NULL);
    tcase c17 = {.what = "vocab_size", .more = kv_vocab_size};
    expect(&c17, SYM_ERR_FORMAT, "llama.vocab_size = 11 but token_embd.weight has 10 rows");
    tcase c18 = {.what = "yarn", .more = kv_rope_yarn};
    expect(&c18, SYM_ERR_UNSUPPORTED, "RoPE scaling type 'yarn' is not supported");
    tcase c19 = {.what = "neg factor", .more = kv_rope_linear_neg};
    expect(&c19, SYM_ERR_FORMAT, "RoPE linear scaling factor -2 is not a positive number");
    tcase c20 = {.what = "partial rope", .more = kv_partial_rope};
    expect(&c20, SYM_ERR_UNSUPPORTED, "partial rotary embeddings");
    tcase c21 = {.what = "theta type", .more = kv_theta_str};
    expect(&c21, SYM_ERR_FORMAT, "llama.rope.freq_base' has type string");
    tcase c22 = {.what = "theta 0", .more = kv_theta_zero};
    expect(&c22, SYM_ERR_FORMAT, "rope_theta 0 is not a positive number");
    tcase c23 = {.what = "no embedding table", .skip = "token_embd.weight"};
    expect(&c23, SYM_ERR_FORMAT, "missing tensor 'token_embd.weight'");
}

static void test_paths(void) {
    sym_model *m = NULL;
    CHECK_STATUS(sym_model_open("/nonexistent/model.gguf", &m), SYM_ERR_IO);
    CHECK(strstr(sym_last_error(), "No such file") != NULL, "%s", sym_last_error());
    CHECK_STATUS(sym_model_open(g_dir, &m), SYM_ERR_IO); /* a directory without a model */
    CHECK(strstr(sym_last_error(), "holds neither model.safetensors") != NULL, "%s",
          sym_last_error());
    char path[1200];
    snprintf(path, sizeof path, "%s/notes.txt", g_dir);
    test_write_file(path, "hello", 5);
    CHECK_STATUS(sym_model_open(path, &m), SYM_ERR_FORMAT);
    CHECK(strstr(sym_last_error(), "neither a GGUF file") != NULL, "%s", sym_last_error());
    CHECK_STATUS(sym_model_open(NULL, &m), SYM_ERR_ARG);
}

/* ---- allocation failures ------------------------------------------------------------------------ */

static long g_fail_at, g_count, g_live;
static void *fail_malloc(void *u, size_t n) {
    (void)u;
    if (g_count++ == g_fail_at) return NULL;
    void *p = malloc(n);
    if (p) g_live++;
    return p;
}
static void *fail_realloc(void *u, void *p, size_t n) {
    (void)u;
    if (g_count++ == g_fail_at) return NULL;
    void *q = realloc(p, n);
    if (q && !p) g_live++;
    return q;
}
static void fail_free(void *u, void *p) {
    (void)u;
    if (p) g_live--;
    free(p);
}

/* Fails the Nth allocation for N = 0, 1, … until opening succeeds: every failure must be OOM and
 * leave nothing allocated. */
static void test_oom(const char *path, const char *what) {
    sym_alloc_hooks hooks = {fail_malloc, fail_realloc, fail_free, NULL};
    int n_fail = 0;
    for (g_fail_at = 0; g_fail_at < 100000; g_fail_at++) {
        g_count = g_live = 0;
        sym_set_alloc_hooks(&hooks);
        sym_model *m = NULL;
        sym_status st = sym_model_open(path, &m);
        sym_model_close(m);
        sym_set_alloc_hooks(NULL);
        CHECK(g_live == 0, "%s: fail at %ld: %ld allocations leaked", what, g_fail_at, g_live);
        if (st == SYM_OK && g_count <= g_fail_at) break; /* no allocation was failed */
        CHECK(st == SYM_ERR_OOM, "%s: fail at %ld: got %s (%s)", what, g_fail_at,
              sym_status_name(st), sym_last_error());
        n_fail++;
    }
    fprintf(stderr, "%s: %d allocation failures injected\n", what, n_fail);
    CHECK(n_fail > 3, "%s: only %d allocations", what, n_fail);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/tests/test_model.tmp", SYM_BUILD_DIR);
    mkdir(g_dir, 0755);
    test_shared_model();
    test_variants();
    test_paths();
    char path[1200];
    test_oom(test_shared_path("models/aidreams260K.gguf", path, sizeof path), "oom gguf");
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    o.format = SYM_MODEL_SAFETENSORS;
    o.shard_bytes = 100000;
    snprintf(path, sizeof path, "%s/oom_st", g_dir);
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    CHECK(system(cmd) == 0, "rm");
    CHECK_OK(sym_make_model(&o, path));
    test_oom(path, "oom safetensors");
    return test_finish("test_model");
}
