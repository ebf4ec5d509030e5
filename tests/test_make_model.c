/* The synthetic model writer: make -> open -> every tensor byte-identical to the generator, for
 * GGUF and safetensors (single and sharded), f32/f16/bf16, llama and qwen2; the GGUF and the
 * safetensors of one seed hold the same weights once the Q/K row permutation is undone; weights
 * are finite with the intended scale; vocab_from copies a real tokenizer; outputs that would
 * destroy something are refused; a full disk (RLIMIT_FSIZE) is reported and leaves nothing. */
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "base/half.h"
#include "model/model.h"
#include "model/writer.h"
#include "test_util.h"

static char g_dir[1024];

static void rm_rf(const char *path) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "rm -rf %s failed\n", path);
}

static const char *tmp_path(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", g_dir, name);
    return buf;
}

/* Every weight equals what the generator produces (Q/K rows of llama safetensors permuted). */
static void check_against_generator(const sym_model *m, uint64_t seed, const char *what) {
    const sym_hparams *hp = sym_model_hparams(m);
    bool hf = sym_model_format_of(m) == SYM_MODEL_SAFETENSORS;
    int n_bad = 0;
    for (uint64_t i = 0; i < sym_model_n_weights(m); i++) {
        const sym_weight *w = sym_model_weight_at(m, i);
        size_t row_bytes = (size_t)w->n_cols * sym_dtype_size(w->type);
        unsigned char *buf = malloc(row_bytes);
        bool permute = hf && !strcmp(hp->arch, "llama") &&
                       (strstr(w->name, "attn_q.weight") || strstr(w->name, "attn_k.weight"));
        for (int64_t r = 0; r < w->n_rows && buf; r++) {
            int64_t src = permute ? sym_make_model_gguf_row(r, hp->head_dim) : r;
            CHECK_OK(sym_make_model_rows(hp, seed, w->name, src, 1, w->type, buf));
            if (memcmp(buf, (const unsigned char *)w->data + (size_t)r * row_bytes, row_bytes)) {
                if (n_bad++ < 3) CHECK(0, "%s: %s row %lld differs", what, w->name, (long long)r);
                break;
            }
        }
        free(buf);
    }
}

static sym_model *make_and_open(sym_make_model_options *o, const char *name, const char *what) {
    char path[1200];
    tmp_path(name, path, sizeof path);
    rm_rf(path);
    CHECK_OK(sym_make_model(o, path));
    sym_model *m = NULL;
    CHECK_OK(sym_model_open(path, &m));
    if (m) check_against_generator(m, o->seed, what);
    return m;
}

static float weight_at(const sym_weight *w, int64_t r, int64_t c) {
    size_t i = (size_t)r * (size_t)w->n_cols + (size_t)c;
    if (w->type == SYM_DT_F32) return ((const float *)w->data)[i];
    uint16_t h = ((const uint16_t *)w->data)[i];
    if (w->type == SYM_DT_BF16) return sym_bits_to_f32((uint32_t)h << 16);
    return sym_f16_to_f32(h);
}

/* GGUF and safetensors of the same options: same hyperparameters (but the RoPE layout), same
 * values once HF's Q/K row order is mapped back. */
static void compare_formats(const sym_model *g, const sym_model *s, const char *what) {
    const sym_hparams *a = sym_model_hparams(g), *b = sym_model_hparams(s);
    CHECK(a->n_embd == b->n_embd && a->n_layer == b->n_layer && a->n_head == b->n_head &&
              a->n_head_kv == b->n_head_kv && a->n_ff == b->n_ff && a->n_vocab == b->n_vocab &&
              a->head_dim == b->head_dim && a->n_ctx_train == b->n_ctx_train &&
              a->rope_theta == b->rope_theta && a->rms_eps == b->rms_eps &&
              a->tied_embeddings == b->tied_embeddings && a->qkv_bias == b->qkv_bias,
          "%s: hparams differ", what);
    CHECK(b->rope_neox == 1 && a->rope_neox == !strcmp(a->arch, "qwen2"), "%s: rope layout", what);
    CHECK(sym_model_n_weights(g) == sym_model_n_weights(s), "%s: weight count", what);
    for (uint64_t i = 0; i < sym_model_n_weights(g); i++) {
        const sym_weight *wg = sym_model_weight_at(g, i);
        const sym_weight *ws = sym_model_find_weight(s, wg->name);
        CHECK(ws != NULL, "%s: %s missing in safetensors", what, wg->name);
        if (!ws) continue;
        CHECK(ws->n_rows == wg->n_rows && ws->n_cols == wg->n_cols && ws->type == wg->type,
              "%s: %s shape", what, wg->name);
        bool permute = !strcmp(a->arch, "llama") &&
                       (strstr(wg->name, "attn_q.weight") || strstr(wg->name, "attn_k.weight"));
        size_t rb = (size_t)wg->n_cols * sym_dtype_size(wg->type);
        for (int64_t r = 0; r < wg->n_rows; r++) {
            int64_t rg = permute ? sym_make_model_gguf_row(r, a->head_dim) : r;
            if (memcmp((const char *)ws->data + (size_t)r * rb,
                       (const char *)wg->data + (size_t)rg * rb, rb) != 0) {
                CHECK(0, "%s: %s HF row %lld != GGUF row %lld", what, wg->name, (long long)r,
                      (long long)rg);
                break;
            }
        }
    }
}

static void test_round_trips(void) {
    const sym_dtype types[] = {SYM_DT_F32, SYM_DT_F16, SYM_DT_BF16};
    for (int t = 0; t < 3; t++) {
        for (int q = 0; q < 2; q++) {
            sym_make_model_options o;
            sym_make_model_options_init(&o);
            if (q) CHECK_OK(sym_make_model_preset(&o, "tiny-qwen2"));
            o.dtype = types[t];
            o.seed = 1000 + (uint64_t)t;
            char what[64];
            snprintf(what, sizeof what, "%s %s", q ? "qwen2" : "llama", sym_dtype_name(types[t]));
            sym_model *g = make_and_open(&o, "rt.gguf", what);
            o.format = SYM_MODEL_SAFETENSORS;
            sym_model *s = make_and_open(&o, "rt_st", what);
            if (g && s) compare_formats(g, s, what);
            if (g) CHECK(sym_model_weights_of(g)->token_embd.type == types[t], "%s dtype", what);
            if (s && q) CHECK(sym_model_weights_of(s)->layers[1].bv.data != NULL, "qwen2 bias");
            sym_model_close(g);
            sym_model_close(s);
        }
    }
}

static void test_sharded(void) {
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    o.format = SYM_MODEL_SAFETENSORS;
    o.dtype = SYM_DT_F32;
    o.shard_bytes = 120000; /* tiny f32 is ~0.9 MB: several shards, token_embd alone in one */
    o.seed = 77;
    sym_model *s = make_and_open(&o, "sharded", "sharded");
    char path[1200];
    if (s) {
        CHECK(sym_model_n_files(s) >= 5, "only %d shards", sym_model_n_files(s));
        for (int i = 0; i < sym_model_n_files(s); i++) {
            struct stat sb;
            CHECK(stat(sym_model_file_path(s, i), &sb) == 0, "shard %d", i);
            CHECK(strstr(sym_model_file_path(s, i), "-of-") != NULL, "shard name %s",
                  sym_model_file_path(s, i));
        }
    }
    CHECK(access(tmp_path("sharded/model.safetensors.index.json", path, sizeof path), R_OK) == 0,
          "index missing");
    /* opening through the index file itself works too */
    sym_model *s2 = NULL;
    CHECK_OK(sym_model_open(path, &s2));
    o.format = SYM_MODEL_GGUF;
    sym_model *g = make_and_open(&o, "sharded.gguf", "sharded gguf");
    if (g && s) compare_formats(g, s, "sharded");
    sym_model_close(s);
    sym_model_close(s2);
    sym_model_close(g);
}

static void test_values(void) {
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    o.dtype = SYM_DT_F32;
    o.n_embd = 256;
    o.n_head = 4;
    o.n_head_kv = 4;
    o.n_ff = 600;
    sym_model *m = make_and_open(&o, "values.gguf", "values");
    if (!m) return;
    const sym_model_weights *w = sym_model_weights_of(m);
    const sym_weight *mats[] = {&w->layers[0].wq, &w->layers[1].w_down, &w->layers[0].w_up};
    for (int k = 0; k < 3; k++) {
        double s = 0, s2 = 0, mx = 0;
        const sym_weight *x = mats[k];
        for (int64_t r = 0; r < x->n_rows; r++)
            for (int64_t c = 0; c < x->n_cols; c++) {
                double v = weight_at(x, r, c);
                CHECK(isfinite(v), "%s not finite", x->name);
                s += v;
                s2 += v * v;
                if (fabs(v) > mx) mx = fabs(v);
            }
        double n = (double)x->n_rows * (double)x->n_cols, mean = s / n;
        double sd = sqrt(s2 / n - mean * mean), want = 1.0 / sqrt((double)x->n_cols);
        CHECK(fabs(mean) < 0.1 * want && fabs(sd / want - 1.0) < 0.05 && mx < 3.5 * want,
              "%s: mean %g std %g (want %g) max %g", x->name, mean, sd, want, mx);
    }
    double s = 0;
    for (int64_t c = 0; c < w->output_norm.n_cols; c++) s += weight_at(&w->output_norm, 0, c);
    CHECK(fabs(s / (double)w->output_norm.n_cols - 1.0) < 0.05, "norm mean %g", s / 256);
    sym_model_close(m);
}

static void test_determinism(void) {
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    char a[1200], b[1200];
    CHECK_OK(sym_make_model(&o, tmp_path("d1.gguf", a, sizeof a)));
    CHECK_OK(sym_make_model(&o, tmp_path("d2.gguf", b, sizeof b)));
    size_t na = 0, nb = 0;
    unsigned char *pa = test_read_file(a, &na), *pb = test_read_file(b, &nb);
    CHECK(pa && pb && na == nb && !memcmp(pa, pb, na), "same seed, different files");
    free(pb);
    o.seed = 2;
    CHECK_OK(sym_make_model(&o, b)); /* replaces the file */
    pb = test_read_file(b, &nb);
    CHECK(pa && pb && na == nb && memcmp(pa, pb, na) != 0, "different seeds, same file");
    free(pa);
    free(pb);
}

static void test_tokenizer_json(void) {
    char path[1200];
    size_t n = 0;
    char *text = (char *)test_read_file(tmp_path("rt_st/tokenizer.json", path, sizeof path), &n);
    CHECK(text != NULL, "no tokenizer.json");
    if (!text) return;
    json_object *root = json_tokener_parse(text);
    json_object *model = NULL, *vocab = NULL, *merges = NULL, *fb = NULL, *type = NULL;
    CHECK(root && json_object_object_get_ex(root, "model", &model) &&
              json_object_object_get_ex(model, "vocab", &vocab) &&
              json_object_object_get_ex(model, "merges", &merges) &&
              json_object_object_get_ex(model, "byte_fallback", &fb) &&
              json_object_object_get_ex(model, "type", &type),
          "tokenizer.json shape");
    if (vocab && merges && fb && type) {
        CHECK(!strcmp(json_object_get_string(type), "BPE") && json_object_get_boolean(fb),
              "BPE with byte_fallback");
        CHECK(json_object_object_length(vocab) == 600, "vocab %d", json_object_object_length(vocab));
        json_object *id = NULL;
        CHECK(json_object_object_get_ex(vocab, "<0x41>", &id) && json_object_get_int(id) == 3 + 0x41,
              "byte token id");
        size_t nm = json_object_array_length(merges);
        CHECK(nm > 100, "%zu merges", nm);
        for (size_t i = 0; i < nm; i++) { /* every merge makes a piece of the vocabulary */
            char m[256];
            snprintf(m, sizeof m, "%s", json_object_get_string(json_object_array_get_idx(merges, i)));
            char *sp = strchr(m, ' ');
            CHECK(sp != NULL, "merge '%s'", m);
            if (!sp) break;
            memmove(sp, sp + 1, strlen(sp));
            if (!json_object_object_get_ex(vocab, m, NULL)) {
                CHECK(0, "merge %zu makes '%s', not in the vocabulary", i, m);
                break;
            }
        }
    }
    json_object_put(root);
    free(text);
}

static void test_vocab_from(void) {
    char voc[1024], out[1200], st_out[1200];
    test_shared_path("tokenizer/ggml-vocab-llama-spm.gguf", voc, sizeof voc);
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    o.vocab_from = voc;
    o.n_layer = 1;
    sym_hparams hp;
    CHECK_OK(sym_make_model_hparams(&o, &hp));
    CHECK(hp.n_vocab == 32000, "n_vocab %d", hp.n_vocab);
    sym_model *m = make_and_open(&o, "voc.gguf", "vocab_from");
    sym_gguf *src = NULL;
    CHECK_OK(sym_gguf_open(voc, &src));
    if (m && src) {
        CHECK(sym_model_hparams(m)->n_vocab == 32000, "model n_vocab");
        const sym_gguf_kv *a = sym_gguf_find(src, "tokenizer.ggml.tokens");
        const sym_gguf_kv *b = sym_gguf_find(sym_model_gguf(m), "tokenizer.ggml.tokens");
        CHECK(a && b && a->raw_len == b->raw_len && !memcmp(a->raw, b->raw, a->raw_len),
              "tokens not copied verbatim");
        sym_tokenizer_summary ts;
        CHECK_OK(sym_model_tokenizer_summary(m, &ts));
        CHECK(ts.n_tokens == 32000 && ts.bos_id == 1 && ts.eos_id == 2, "summary");
    }
    sym_gguf_close(src);
    sym_model_close(m);
    o.format = SYM_MODEL_SAFETENSORS;
    tmp_path("voc_st", st_out, sizeof st_out);
    rm_rf(st_out);
    CHECK_OK(sym_make_model(&o, st_out));
    m = NULL;
    CHECK_OK(sym_model_open(st_out, &m));
    sym_tokenizer_summary ts;
    if (m) CHECK_OK(sym_model_tokenizer_summary(m, &ts));
    if (m) CHECK(ts.n_tokens == 32000 && !strcmp(ts.model, "BPE"), "st summary %lld", (long long)ts.n_tokens);
    sym_model_close(m);
    /* a byte-level BPE vocabulary (gpt2) converts too */
    test_shared_path("tokenizer/ggml-vocab-gpt-2.gguf", voc, sizeof voc);
    tmp_path("voc_gpt2", st_out, sizeof st_out);
    rm_rf(st_out);
    CHECK_OK(sym_make_model(&o, st_out));
    m = NULL;
    CHECK_OK(sym_model_open(st_out, &m));
    if (m) CHECK_OK(sym_model_tokenizer_summary(m, &ts));
    if (m) CHECK(ts.n_tokens == 50257 && sym_model_hparams(m)->n_vocab == 50257, "gpt2 vocab");
    sym_model_close(m);

    /* never overwrite the vocabulary's own file */
    tmp_path("vocab_copy.gguf", out, sizeof out);
    size_t n = 0;
    unsigned char *orig = test_read_file(voc, &n);
    CHECK(orig && test_write_file(out, orig, n) == 0, "copy");
    o.vocab_from = out;
    o.format = SYM_MODEL_GGUF;
    CHECK_STATUS(sym_make_model(&o, out), SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "refusing to overwrite") != NULL, "%s", sym_last_error());
    size_t n2 = 0;
    unsigned char *after = test_read_file(out, &n2);
    CHECK(after && n2 == n && !memcmp(orig, after, n), "vocab file changed");
    free(orig);
    free(after);
    o.vocab_from = "/nonexistent.gguf";
    CHECK_STATUS(sym_make_model(&o, tmp_path("x.gguf", out, sizeof out)), SYM_ERR_IO);
}

static void test_refusals(void) {
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    char p[1200];
    CHECK_STATUS(sym_make_model(&o, g_dir), SYM_ERR_ARG); /* a directory as a GGUF file */
    CHECK(strstr(sym_last_error(), "is a directory") != NULL, "%s", sym_last_error());
    o.format = SYM_MODEL_SAFETENSORS;
    CHECK_STATUS(sym_make_model(&o, g_dir), SYM_ERR_ARG); /* non-empty directory */
    CHECK(strstr(sym_last_error(), "is not empty") != NULL, "%s", sym_last_error());
    CHECK_STATUS(sym_make_model(&o, tmp_path("d1.gguf", p, sizeof p)), SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "not a directory") != NULL, "%s", sym_last_error());
    tmp_path("empty_dir", p, sizeof p);
    rm_rf(p);
    mkdir(p, 0755);
    CHECK_OK(sym_make_model(&o, p)); /* an empty directory is replaced */
    CHECK_STATUS(sym_make_model(&o, "/nonexistent/dir/model"), SYM_ERR_IO);
    o.format = SYM_MODEL_GGUF;
    CHECK_STATUS(sym_make_model(&o, "/nonexistent/dir/model.gguf"), SYM_ERR_IO);
    CHECK(strstr(sym_last_error(), "No such file") != NULL, "%s", sym_last_error());

    sym_make_model_options bad;
    sym_make_model_options_init(&bad);
    bad.n_vocab = 100;
    CHECK_STATUS(sym_make_model(&bad, tmp_path("bad.gguf", p, sizeof p)), SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "at least 260") != NULL, "%s", sym_last_error());
    sym_make_model_options_init(&bad);
    bad.n_embd = 81;
    CHECK_STATUS(sym_make_model(&bad, p), SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "not a multiple of n_head") != NULL, "%s", sym_last_error());
    sym_make_model_options_init(&bad);
    bad.n_head_kv = 3;
    CHECK_STATUS(sym_make_model(&bad, p), SYM_ERR_ARG);
    sym_make_model_options_init(&bad);
    snprintf(bad.arch, sizeof bad.arch, "gpt2");
    CHECK_STATUS(sym_make_model(&bad, p), SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "unknown architecture 'gpt2'") != NULL, "%s", sym_last_error());
    CHECK_STATUS(sym_make_model_preset(&bad, "llama9"), SYM_ERR_ARG);
    CHECK(strstr(sym_last_error(), "tinyllama-1.1b") != NULL, "%s", sym_last_error());
    CHECK(access(p, F_OK) != 0, "a failed make left %s", p);
    sym_hparams hp;
    sym_make_model_options_init(&bad);
    CHECK_OK(sym_make_model_hparams(&bad, &hp));
    float x[80];
    CHECK_STATUS(sym_make_model_rows(&hp, 1, "blk.7.attn_q.weight", 0, 1, SYM_DT_F32, x), SYM_ERR_ARG);
    CHECK_STATUS(sym_make_model_rows(&hp, 1, "blk.0.attn_q.weight", 80, 1, SYM_DT_F32, x), SYM_ERR_ARG);
}

/* A disk that fills up: RLIMIT_FSIZE makes write() fail with EFBIG past 64 KiB. */
static void test_disk_full(void) {
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 64 << 10;
    signal(SIGXFSZ, SIG_IGN);
    char p[1200];
    for (int fmt = 0; fmt < 2; fmt++) {
        sym_make_model_options o;
        sym_make_model_options_init(&o);
        o.dtype = SYM_DT_F32;
        o.format = fmt ? SYM_MODEL_SAFETENSORS : SYM_MODEL_GGUF;
        tmp_path(fmt ? "full_st" : "full.gguf", p, sizeof p);
        rm_rf(p);
        CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
        sym_status st = sym_make_model(&o, p);
        setrlimit(RLIMIT_FSIZE, &old);
        CHECK(st == SYM_ERR_IO, "disk full: got %s (%s)", sym_status_name(st), sym_last_error());
        CHECK(strstr(sym_last_error(), "cannot write") && strstr(sym_last_error(), "too large"),
              "detail: %s", sym_last_error());
        CHECK(access(p, F_OK) != 0, "%s exists after a failed write", p);
    }
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.tmp\\.' >/dev/null", g_dir);
    CHECK(system(cmd) != 0, "temporary files left in %s", g_dir);
}

static uint64_t g_last_done, g_last_total;
static int g_calls;
static void on_progress(void *u, uint64_t done, uint64_t total) {
    (void)u;
    CHECK(done >= g_last_done && done <= total, "progress %llu/%llu", (unsigned long long)done,
          (unsigned long long)total);
    g_last_done = done;
    g_last_total = total;
    g_calls++;
}

static void test_progress(void) {
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    o.progress = on_progress;
    char p[1200];
    CHECK_OK(sym_make_model(&o, tmp_path("progress.gguf", p, sizeof p)));
    sym_model *m = NULL;
    CHECK_OK(sym_model_open(p, &m));
    CHECK(g_calls > 10 && m && g_last_done == g_last_total &&
              g_last_total == sym_model_weight_bytes(m),
          "progress calls %d done %llu", g_calls, (unsigned long long)g_last_done);
    sym_model_close(m);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/tests/test_make_model.tmp", SYM_BUILD_DIR);
    rm_rf(g_dir);
    mkdir(g_dir, 0755);
    test_round_trips();
    test_sharded();
    test_values();
    test_determinism();
    test_tokenizer_json();
    test_vocab_from();
    test_refusals();
    test_disk_full();
    test_progress();
    return test_finish("test_make_model");
}
