/* Generation from a .sympack equals generation from its source, through the public engine on
 * the CPU (and reference) backend: greedy ids over the whole context and the logits of the last
 * prompt position, bit for bit —
 * - aidreams260K.gguf (f32, real trained weights) packed with the auto codec choice, for the
 *   three prompts of its expected-output file (whose ids the GGUF reproduces: test_e2e);
 * - the bundled toy-fortunes.gguf (f16, real trained weights) packed with bytesplit;
 * - a synthetic qwen2 safetensors directory (bf16, tokenizer.json + chat template) packed with
 *   zstd: same token ids for a text, same chat template, same logits. */
#include "infer/engine.h"
#include "model/writer.h"
#include "pack/store.h"
#include "store_util.h"
#include "test_util.h"

#define MAX_IDS 512

static char g_dir[1024];

typedef struct collect {
    int32_t ids[MAX_IDS];
    int n;
} collect;

static int on_token(void *user, int32_t id, const char *text, size_t len) {
    collect *c = user;
    (void)text, (void)len;
    if (id >= 0 && c->n < MAX_IDS) c->ids[c->n++] = id;
    return 0;
}

static sym_engine *open_engine(const char *model, const char *backend) {
    sym_engine_params p;
    sym_engine_params_init(&p);
    snprintf(p.cfg.model_path, sizeof p.cfg.model_path, "%s", model);
    p.backend = backend;
    p.cfg.n_threads = 2;
    sym_engine *e = NULL;
    CHECK_OK(sym_engine_open_params(&p, &e));
    return e;
}

static void pack(const char *src, const char *out, sym_codec_id id, uint64_t limit) {
    sym_model *m = NULL;
    CHECK_OK(sym_model_open(src, &m));
    if (!m) return;
    sym_store_write_options o = test_store_opts(id, limit);
    sym_store_write_stats s;
    CHECK_OK(sym_store_write(m, out, &o, &s));
    fprintf(stderr, "packed %s: %u packs, ratio %.3f\n", src, s.n_packs,
            (double)s.raw_bytes / (double)s.stored_bytes);
    sym_model_close(m);
}

/* Same prompt ids, greedy ids and last-position logits from a and b. */
static void compare(sym_engine *a, sym_engine *b, const char *prompt, int max_tokens,
                    const char *what) {
    int32_t ia[MAX_IDS], ib[MAX_IDS];
    size_t na = 0, nb = 0;
    CHECK_OK(sym_encode(a, prompt, strlen(prompt), 1, 0, ia, MAX_IDS, &na));
    CHECK_OK(sym_encode(b, prompt, strlen(prompt), 1, 0, ib, MAX_IDS, &nb));
    CHECK(na == nb && na > 0 && !memcmp(ia, ib, na * sizeof *ia), "%s: prompt ids differ", what);
    int n_vocab = sym_n_vocab(a);
    CHECK(n_vocab == sym_n_vocab(b), "%s: n_vocab", what);
    float *la = malloc((size_t)n_vocab * sizeof *la), *lb = malloc((size_t)n_vocab * sizeof *lb);
    sym_reset(a);
    sym_reset(b);
    CHECK_OK(sym_forward(a, ia, na, la));
    CHECK_OK(sym_forward(b, ib, nb, lb));
    CHECK(!memcmp(la, lb, (size_t)n_vocab * sizeof *la), "%s: logits differ", what);
    free(la);
    free(lb);
    sym_sampling s;
    sym_sampling_init(&s);
    s.temperature = 0;
    collect ga = {.n = 0}, gb = {.n = 0};
    sym_reset(a);
    sym_reset(b);
    CHECK_OK(sym_generate_ex(a, prompt, strlen(prompt), max_tokens, &s, 1, on_token, &ga));
    CHECK_OK(sym_generate_ex(b, prompt, strlen(prompt), max_tokens, &s, 1, on_token, &gb));
    CHECK(ga.n == gb.n && ga.n > 0 && !memcmp(ga.ids, gb.ids, (size_t)ga.n * sizeof *ga.ids),
          "%s: greedy ids differ (%d vs %d tokens)", what, ga.n, gb.n);
    fprintf(stderr, "%s: %zu prompt + %d generated ids equal, logits equal\n", what, na, ga.n);
}

static void test_aidreams(void) {
    char src[1024], out[1200];
    test_shared_path("models/aidreams260K.gguf", src, sizeof src);
    snprintf(out, sizeof out, "%s/aidreams.sympack", g_dir);
    pack(src, out, SYM_CODEC_COUNT, 64 << 10);
    static const char *const backends[] = {"cpu", "reference"};
    static const char *const prompts[] = {"Once upon a time", "The little", "I am"};
    for (int k = 0; k < 2; k++) {
        sym_engine *a = open_engine(src, backends[k]), *b = open_engine(out, backends[k]);
        for (int i = 0; a && b && i < 3; i++) {
            char what[96];
            snprintf(what, sizeof what, "aidreams/%s '%s'", backends[k], prompts[i]);
            compare(a, b, prompts[i], 128, what); /* up to the full context */
        }
        sym_engine_close(a);
        sym_engine_close(b);
    }
}

static void test_toy(void) {
    char out[1200];
    const char *src = SYM_SOURCE_DIR "/models/toy-fortunes.gguf";
    snprintf(out, sizeof out, "%s/toy.sympack", g_dir);
    pack(src, out, SYM_CODEC_BYTESPLIT, 1 << 20);
    sym_engine *a = open_engine(src, "cpu"), *b = open_engine(out, "cpu");
    if (a && b) {
        compare(a, b, "A computer", 40, "toy-fortunes/cpu");
        CHECK(sym_engine_chat_template(a) == sym_engine_chat_template(b), "chat template");
    }
    sym_engine_close(a);
    sym_engine_close(b);
}

static void test_safetensors(void) {
    sym_make_model_options mo;
    sym_make_model_options_init(&mo);
    sym_make_model_preset(&mo, "tiny-qwen2");
    mo.format = SYM_MODEL_SAFETENSORS;
    mo.dtype = SYM_DT_BF16;
    char dir[1200], out[1200], cmd[1300];
    snprintf(dir, sizeof dir, "%s/st_model", g_dir);
    snprintf(out, sizeof out, "%s/st.sympack", g_dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "rm");
    CHECK_OK(sym_make_model(&mo, dir));
    pack(dir, out, SYM_CODEC_ZSTD, 32 << 10);
    sym_engine *a = open_engine(dir, "cpu"), *b = open_engine(out, "cpu");
    if (a && b) {
        compare(a, b, "the quick brown fox jumps over the lazy dog", 24, "qwen2-safetensors/cpu");
        CHECK(sym_engine_chat_template(a) == sym_engine_chat_template(b), "chat template");
    }
    sym_engine_close(a);
    sym_engine_close(b);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/tests/test_store_e2e.tmp", SYM_BUILD_DIR);
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_dir, g_dir);
    if (system(cmd) != 0) return 1;
    test_aidreams();
    test_toy();
    test_safetensors();
    return test_finish("test_store_e2e");
}
