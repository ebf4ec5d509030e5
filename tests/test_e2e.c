/* End to end on the real trained models:
 * - aidreams260K.gguf (expected outputs from an independent llama2.c implementation): prompt ids,
 *   greedy ids up to the full 128-token context, and the logits at the last prompt position
 *   within 1e-4 absolute — on the fast CPU backend and on the reference backend.
 * - models/toy-fortunes.gguf (the bundled default model, f16; expected outputs from PyTorch f32):
 *   SentencePiece prompt ids, greedy ids, and the top logits within 2e-3.
 * Usage: test_e2e [cpu|reference|vulkan]   (default cpu) */
#include "infer/engine.h"
#include "test_util.h"
#include "text/sampler.h"

#define MAX_IDS 512

typedef struct expect_case {
    char prompt[256];
    int32_t prompt_ids[MAX_IDS], gen_ids[MAX_IDS];
    int n_prompt, n_gen;
    char logits_file[256];
    int top_ids[16];
    float top_logits[16];
    int n_top;
} expect_case;

static int parse_ids(const char *s, int32_t *ids) {
    int n = 0;
    char *end;
    for (long v = strtol(s, &end, 10); end != s && n < MAX_IDS; v = strtol(s, &end, 10)) {
        ids[n++] = (int32_t)v;
        s = end;
    }
    return n;
}

static int load_cases(const char *path, expect_case *cases, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[16384];
    int n = -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "prompt: ", 8) || !strcmp(line, "prompt:")) {
            if (++n >= max) break;
            memset(&cases[n], 0, sizeof cases[n]);
            snprintf(cases[n].prompt, sizeof cases[n].prompt, "%.250s", line[7] ? line + 8 : "");
        } else if (n >= 0 && !strncmp(line, "prompt_ids:", 11)) {
            cases[n].n_prompt = parse_ids(line + 11, cases[n].prompt_ids);
        } else if (n >= 0 && !strncmp(line, "generated_ids:", 14)) {
            cases[n].n_gen = parse_ids(line + 14, cases[n].gen_ids);
        } else if (n >= 0 && !strncmp(line, "logits_file: ", 13)) {
            snprintf(cases[n].logits_file, sizeof cases[n].logits_file, "%.200s", line + 13);
        } else if (n >= 0 && !strncmp(line, "top_logits: ", 12)) {
            char *s = line + 12, *end;
            while (cases[n].n_top < 16) {
                long id = strtol(s, &end, 10);
                if (end == s || *end != ':') break;
                cases[n].top_ids[cases[n].n_top] = (int)id;
                cases[n].top_logits[cases[n].n_top++] = strtof(end + 1, &s);
            }
        }
    }
    fclose(f);
    return n + 1 > max ? max : n + 1;
}

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

static sym_engine *open_engine(const char *model, const char *backend, int fp32) {
    sym_engine_params p;
    sym_engine_params_init(&p);
    snprintf(p.cfg.model_path, sizeof p.cfg.model_path, "%s", model);
    p.backend = backend;
    p.fp32 = fp32;
    sym_engine *e = NULL;
    CHECK_OK(sym_engine_open_params(&p, &e));
    if (e)
        CHECK(!strcmp(sym_engine_backend_name(e), backend), "backend is %s, wanted %s",
              sym_engine_backend_name(e), backend);
    return e;
}

/* Greedy generation must reproduce the expected ids; returns how many matched in a row. */
static int check_greedy(sym_engine *e, const expect_case *c, int min_match, const char *what) {
    int32_t ids[MAX_IDS];
    size_t n = 0;
    CHECK_OK(sym_encode(e, c->prompt, strlen(c->prompt), 1, 0, ids, MAX_IDS, &n));
    CHECK((int)n == c->n_prompt && !memcmp(ids, c->prompt_ids, n * sizeof *ids),
          "%s: prompt '%s' ids differ (%zu vs %d)", what, c->prompt, n, c->n_prompt);
    sym_sampling s;
    sym_sampling_init(&s);
    s.temperature = 0;
    collect got = {.n = 0};
    CHECK_OK(sym_generate(e, c->prompt, c->n_gen, &s, on_token, &got));
    int match = 0;
    while (match < got.n && match < c->n_gen && got.ids[match] == c->gen_ids[match]) match++;
    CHECK(match >= min_match, "%s: prompt '%s': %d of %d generated ids match (need %d); first "
          "difference at %d: got %d, want %d", what, c->prompt, match, c->n_gen, min_match, match,
          match < got.n ? got.ids[match] : -1, match < c->n_gen ? c->gen_ids[match] : -1);
    return match;
}

/* The first largest non-NaN value's index, as the sampler's greedy choice. */
static int32_t argmax_of(const float *v, int n) {
    int32_t best = -1;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]) && (best < 0 || v[i] > v[best])) best = i;
    return best < 0 ? 0 : best;
}

/* sym_forward_argmax (on a GPU the argmax runs there) picks what the host picks from the
 * logits sym_forward copies back, after the prompt and after each of 3 decoded tokens; and a
 * greedy generation with nothing new to evaluate starts from the logits that a sym_forward
 * into the caller's buffer left. logits: the prompt's, from sym_forward. */
static void test_argmax(sym_engine *e, const expect_case *c, const float *logits,
                        const char *backend) {
    int n_vocab = sym_n_vocab(e);
    float lg[512];
    int32_t id = -1, want = argmax_of(logits, n_vocab);
    sym_reset(e);
    CHECK_OK(sym_forward_argmax(e, c->prompt_ids, (size_t)c->n_prompt, &id));
    CHECK(id == want, "%s: argmax after the prompt %d, host %d", backend, id, want);
    for (int t = 0; t < 3; t++) {
        int32_t tok = (int32_t)((id + 7 * t) % n_vocab), id2 = -1;
        sym_reset(e);
        CHECK_OK(sym_forward(e, c->prompt_ids, (size_t)c->n_prompt, lg));
        CHECK_OK(sym_forward(e, &tok, 1, lg));
        sym_reset(e);
        CHECK_OK(sym_forward_argmax(e, c->prompt_ids, (size_t)c->n_prompt, &id2));
        CHECK_OK(sym_forward_argmax(e, &tok, 1, &id2));
        CHECK(id2 == argmax_of(lg, n_vocab), "%s: argmax after token %d: %d, host %d", backend, tok,
              id2, argmax_of(lg, n_vocab));
    }
    sym_reset(e);
    CHECK_OK(sym_forward(e, c->prompt_ids, (size_t)c->n_prompt, lg));
    sym_sampling s;
    sym_sampling_init(&s);
    s.temperature = 0;
    collect got = {.n = 0};
    CHECK_OK(sym_generate_append(e, "", 0, 0, 1, &s, on_token, &got));
    CHECK(got.n == 1 && got.ids[0] == argmax_of(lg, n_vocab),
          "%s: greedy token from the logits left by sym_forward: %d, want %d", backend,
          got.n ? got.ids[0] : -1, argmax_of(lg, n_vocab));
}

/* Sampled generation (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, a seed): where the
 * backend finds the top candidates itself (the GPU's topk), the ids must be those of the same
 * sampler fed the whole logits after each token. */
static void test_topk_generate(sym_engine *e, const expect_case *c, const char *backend) {
    enum { N = 24 };
    sym_sampling s;
    sym_sampling_init(&s);
    s.seed = 1234;
    collect got = {.n = 0};
    CHECK_OK(sym_generate_ex(e, c->prompt, strlen(c->prompt), N, &s, 1, on_token, &got));
    sym_sampler *smp = NULL;
    CHECK_OK(sym_sampler_create(&s, sym_n_vocab(e), &smp));
    if (!smp) return;
    float lg[512];
    int32_t hist[MAX_IDS];
    memcpy(hist, c->prompt_ids, (size_t)c->n_prompt * sizeof *hist);
    size_t n_hist = (size_t)c->n_prompt;
    sym_reset(e);
    CHECK_OK(sym_forward(e, c->prompt_ids, (size_t)c->n_prompt, lg));
    int match = 0;
    for (int t = 0; t < N && t < got.n; t++) {
        int32_t id = sym_sampler_sample(smp, lg, hist, n_hist);
        if (id != got.ids[t]) break;
        match++;
        hist[n_hist++] = id;
        if (t + 1 < N) CHECK_OK(sym_forward(e, &id, 1, lg));
    }
    CHECK(got.n == N && match == N, "%s: top-k generation: %d of %d ids as from the whole logits",
          backend, match, got.n);
    sym_sampler_destroy(smp);
}

static void test_aidreams(const char *backend) {
    char path[1024], lpath[300];
    expect_case cases[4];
    int n = load_cases(test_shared_path("models/aidreams260K.expected.txt", path, sizeof path),
                       cases, 4);
    CHECK(n == 3, "expected 3 cases in %s, got %d", path, n);
    sym_engine *e = open_engine(test_shared_path("models/aidreams260K.gguf", path, sizeof path),
                                backend, 1);
    if (!e) return;
    CHECK(sym_n_ctx(e) == 128, "context %d", sym_n_ctx(e));
    for (int i = 0; i < n; i++) {
        const expect_case *c = &cases[i];
        /* generation runs until the cache is full, plus the token sampled from its last position */
        CHECK(c->n_prompt + c->n_gen == 129, "case %d: %d + %d ids", i, c->n_prompt, c->n_gen);
        /* CPU backends reproduce every id; a GPU sums in other orders, so near-ties late in the
         * sequence may flip: there the bar is the first 40 generated ids (issue criterion) */
        int gpu = !strcmp(backend, "vulkan");
        int matched = check_greedy(e, c, gpu ? 40 : c->n_gen, backend);
        fprintf(stderr, "aidreams/%s case %d: %d of %d generated ids match\n", backend, i, matched,
                c->n_gen);
        /* logits at the last prompt position */
        float logits[512], want;
        sym_reset(e);
        CHECK_OK(sym_forward(e, c->prompt_ids, (size_t)c->n_prompt, logits));
        snprintf(lpath, sizeof lpath, "models/%.200s", c->logits_file);
        FILE *f = fopen(test_shared_path(lpath, path, sizeof path), "r");
        CHECK(f != NULL, "cannot open %s", path);
        double max_err = 0;
        int k = 0;
        while (f && k < 512 && fscanf(f, "%f", &want) == 1) {
            double err = fabs((double)logits[k++] - want);
            if (err > max_err) max_err = err;
        }
        if (f) fclose(f);
        CHECK(k == 512, "read %d logits", k);
        double tol = gpu ? 1e-3 : 1e-4;
        CHECK(max_err <= tol, "%s: case %d: max |logit error| %.3g > %g", backend, i, max_err, tol);
        fprintf(stderr, "aidreams/%s case %d: max |logit error| %.2e\n", backend, i, max_err);
        test_argmax(e, c, logits, backend);
        test_topk_generate(e, c, backend);
    }
    /* a prompt longer than the context is a clear error */
    char longp[4096];
    memset(longp, 0, sizeof longp);
    for (int i = 0; i < 200; i++) strcat(longp, "dream ");
    sym_sampling s;
    sym_sampling_init(&s);
    CHECK_STATUS(sym_generate(e, longp, 4, &s, NULL, NULL), SYM_ERR_RANGE);
    CHECK(strstr(sym_last_error(), "context") != NULL, "detail: %s", sym_last_error());
    int32_t bad = 100000;
    sym_reset(e);
    CHECK_STATUS(sym_forward(e, &bad, 1, NULL), SYM_ERR_ARG);
    sym_engine_close(e);
}

static void test_toy(const char *backend) {
    char path[1024];
    expect_case cases[4];
    snprintf(path, sizeof path, "%s/models/toy-fortunes.expected.txt", SYM_SOURCE_DIR);
    int n = load_cases(path, cases, 4);
    CHECK(n == 3, "expected 3 cases in %s, got %d", path, n);
    snprintf(path, sizeof path, "%s/models/toy-fortunes.gguf", SYM_SOURCE_DIR);
    sym_engine *e = open_engine(path, backend, 1);
    if (!e) return;
    for (int i = 0; i < n; i++) {
        const expect_case *c = &cases[i];
        /* f16 weights, f32 arithmetic on both sides, different summation orders: near-ties may
         * flip late, so the first 20 tokens must match exactly */
        check_greedy(e, c, c->n_gen < 20 ? c->n_gen : 20, backend);
        float logits[1024];
        sym_reset(e);
        CHECK_OK(sym_forward(e, c->prompt_ids, (size_t)c->n_prompt, logits));
        for (int k = 0; k < c->n_top; k++)
            CHECK(fabs(logits[c->top_ids[k]] - c->top_logits[k]) < 2e-3,
                  "%s: toy case %d: logit[%d] = %f, want %f", backend, i, c->top_ids[k],
                  logits[c->top_ids[k]], c->top_logits[k]);
    }
    sym_engine_close(e);
}

/* Without --fp32 a device backend folds each layer's norm weights into the products that read
 * the normed input (forward.c fold_norms): the logits must stay those of the unfolded run (same
 * f16 KV cache, SYM_NO_FOLD_NORMS=1) up to the weights' rounding, and greedy ids must agree.
 * The toy model's weights are f16 (folded products rounded to f16), aidreams260K's f32. */
static void test_fold(const char *backend, const char *model, double tol) {
    expect_case cases[4];
    char path[1024];
    int n = load_cases(model[0] == 'a' ? test_shared_path("models/aidreams260K.expected.txt",
                                                          path, sizeof path)
                                       : (snprintf(path, sizeof path,
                                                   "%s/models/toy-fortunes.expected.txt",
                                                   SYM_SOURCE_DIR),
                                          path),
                       cases, 4);
    CHECK(n == 3, "fold %s: %d cases", model, n);
    if (model[0] == 'a')
        test_shared_path("models/aidreams260K.gguf", path, sizeof path);
    else
        snprintf(path, sizeof path, "%s/models/toy-fortunes.gguf", SYM_SOURCE_DIR);
    setenv("SYM_NO_FOLD_NORMS", "1", 1);
    sym_engine *plain = open_engine(path, backend, 0);
    unsetenv("SYM_NO_FOLD_NORMS");
    sym_engine *folded = open_engine(path, backend, 0);
    if (!plain || !folded) {
        sym_engine_close(plain);
        sym_engine_close(folded);
        return;
    }
    int nv = sym_n_vocab(folded);
    float *a = malloc((size_t)nv * sizeof *a), *b = malloc((size_t)nv * sizeof *b);
    for (int i = 0; i < n && a && b; i++) {
        const expect_case *c = &cases[i];
        sym_reset(plain);
        sym_reset(folded);
        CHECK_OK(sym_forward(plain, c->prompt_ids, (size_t)c->n_prompt, a));
        CHECK_OK(sym_forward(folded, c->prompt_ids, (size_t)c->n_prompt, b));
        double max_ref = 0, max_err = 0;
        for (int k = 0; k < nv; k++) {
            if (fabs(a[k]) > max_ref) max_ref = fabs(a[k]);
            if (fabs(a[k] - b[k]) > max_err) max_err = fabs(a[k] - b[k]);
        }
        /* measured on lavapipe: 1.9e-5 (f32) and 2.6e-4 (f16) of the largest logit */
        CHECK(max_err <= tol * max_ref, "fold %s case %d: logits differ by %.3g (max |logit| %g)",
              model, i, max_err, max_ref);
        fprintf(stderr, "fold/%s %s case %d: max |logit difference| %.2e of %.2f\n", backend,
                model, i, max_err, max_ref);
        /* decode steps too (the fused single-token kernels) */
        int32_t ida = c->gen_ids[0], idb = c->gen_ids[0];
        for (int t = 0; t < 8; t++) {
            CHECK_OK(sym_forward(plain, &ida, 1, a));
            CHECK_OK(sym_forward(folded, &idb, 1, b));
            int am = 0, bm = 0;
            for (int k = 1; k < nv; k++) {
                if (a[k] > a[am]) am = k;
                if (b[k] > b[bm]) bm = k;
            }
            CHECK(am == bm, "fold %s case %d step %d: greedy %d vs %d", model, i, t, am, bm);
            ida = am, idb = bm;
        }
    }
    free(a);
    free(b);
    sym_engine_close(plain);
    sym_engine_close(folded);
}

int main(int argc, char **argv) {
    const char *backend = argc > 1 ? argv[1] : "cpu";
    test_aidreams(backend);
    test_toy(backend);
    if (!strcmp(backend, "vulkan")) {
        test_fold(backend, "aidreams", 1e-4);
        test_fold(backend, "toy", 2e-3);
    }
    return test_finish("test_e2e");
}
