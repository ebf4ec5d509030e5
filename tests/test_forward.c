/* The forward pass against the reference backend:
 * - the shared trained model's logits (independent implementation) on the reference backend;
 * - prefill chunking: one chunk, small chunks and token-by-token decode give the same logits;
 * - the fast CPU backend vs the reference on synthetic models (llama with GQA, qwen2 with Q/K/V
 *   biases, untied output) in f32 (relative error < 1e-5) and f16 / bf16 (< 1e-3), at several
 *   positions, with f32 and f16 KV caches;
 * - a GGUF file and a safetensors directory made from the same seed (interleaved vs rotate_half
 *   RoPE layouts) give the same logits.
 * Relative error: max |a - b| / max |b| over the logits of a position. */
#include <unistd.h>

#include "cpu/ops.h"
#include "cpu/ref.h"
#include "infer/forward.h"
#include "model/writer.h"
#include "test_util.h"

static double rel_err(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return den > 0 ? num / den : num;
}

/* Runs ids through a fresh forward pass in chunks of `chunk` and returns the logits after each
 * chunk boundary listed in `at` (positions, ascending). */
static int run(sym_backend *b, const sym_model *m, int n_ctx, int chunk, sym_dtype kv,
               const int32_t *ids, int n, float *logits /* (n_at, n_vocab) */, const int *at,
               int n_at) {
    sym_forward_pass *f = NULL;
    sym_forward_options o = {.n_ctx = n_ctx, .n_batch = chunk, .kv_type = kv};
    sym_status st = sym_forward_create(b, m, &o, &f);
    CHECK(st == SYM_OK, "forward create: %s", sym_last_error());
    if (st) return -1;
    int n_vocab = sym_model_hparams(m)->n_vocab, done = 0;
    for (int k = 0; k < n_at; k++) {
        st = sym_forward_eval(f, ids + done, at[k] - done, logits + (size_t)k * n_vocab);
        CHECK(st == SYM_OK, "eval: %s", sym_last_error());
        done = at[k];
    }
    sym_forward_destroy(f);
    return st ? -1 : 0;
}

static void test_shared_model(void) {
    char path[1024];
    sym_model *m = NULL;
    CHECK_OK(sym_model_open(test_shared_path("models/aidreams260K.gguf", path, sizeof path), &m));
    if (!m) return;
    sym_backend *ref = NULL;
    CHECK_OK(sym_ref_backend_create(&ref));
    int32_t ids[] = {1, 303, 281, 269, 435, 447, 328};
    float got[3][512], want[512];
    int at7[] = {7}, at_steps[] = {3, 5, 6, 7};
    float steps[4][512];
    run(ref, m, 128, 7, SYM_DT_F32, ids, 7, got[0], at7, 1);
    run(ref, m, 128, 2, SYM_DT_F32, ids, 7, got[1], at7, 1);
    run(ref, m, 128, 1, SYM_DT_F32, ids, 7, steps[0], at_steps, 4);
    FILE *f = fopen(test_shared_path("models/aidreams260K.logits1.txt", path, sizeof path), "r");
    int k = 0;
    while (f && k < 512 && fscanf(f, "%f", &want[k]) == 1) k++;
    if (f) fclose(f);
    CHECK(k == 512, "read %d logits", k);
    double e0 = 0, e1 = rel_err(got[1], got[0], 512), e2 = rel_err(steps[3], got[0], 512);
    for (int i = 0; i < 512; i++) e0 = fmax(e0, fabs((double)got[0][i] - want[i]));
    CHECK(e0 <= 1e-4, "reference vs independent logits: max abs error %.3g", e0);
    CHECK(e1 <= 1e-5 && e2 <= 1e-5, "chunking changes logits: %.3g %.3g", e1, e2);
    fprintf(stderr, "shared model (reference backend): max abs error %.2e\n", e0);
    ref->ops->destroy(ref);
    sym_model_close(m);
}

typedef struct variant {
    const char *name, *arch;
    sym_dtype dtype;
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab;
    bool tied;
    double tol;
} variant;

static void test_cpu_vs_ref(test_rng *r) {
    static const variant vs[] = {
        {"llama-f32-gqa", "llama", SYM_DT_F32, 72, 2, 6, 2, 200, 300, true, 1e-5},
        {"llama-f16-mha", "llama", SYM_DT_F16, 64, 2, 4, 4, 176, 333, false, 1e-3},
        {"llama-bf16-gqa", "llama", SYM_DT_BF16, 96, 2, 8, 4, 260, 280, true, 1e-3},
        {"qwen2-f32-bias", "qwen2", SYM_DT_F32, 80, 2, 5, 1, 150, 270, false, 1e-5},
        {"qwen2-f16-bias", "qwen2", SYM_DT_F16, 64, 3, 4, 2, 130, 300, true, 1e-3},
    };
    char path[1024];
    for (size_t v = 0; v < sizeof vs / sizeof vs[0]; v++) {
        const variant *x = &vs[v];
        sym_make_model_options o;
        sym_make_model_options_init(&o);
        snprintf(o.arch, sizeof o.arch, "%s", x->arch);
        o.dtype = x->dtype;
        o.n_embd = x->n_embd, o.n_layer = x->n_layer, o.n_head = x->n_head;
        o.n_head_kv = x->n_head_kv, o.n_ff = x->n_ff, o.n_vocab = x->n_vocab, o.n_ctx = 64;
        o.tied_embeddings = x->tied;
        o.seed = test_rng_u64(r);
        snprintf(path, sizeof path, "%s/fwd-%s-%d.gguf", SYM_BUILD_DIR, x->name, (int)getpid());
        CHECK_OK(sym_make_model(&o, path));
        sym_model *m = NULL;
        CHECK_OK(sym_model_open(path, &m));
        if (!m) continue;
        int n = 37, at[] = {1, 20, 33, 36, 37};
        int32_t ids[37];
        for (int i = 0; i < n; i++) ids[i] = (int32_t)test_rng_below(r, (uint64_t)x->n_vocab);
        size_t nv = (size_t)x->n_vocab;
        float *want = malloc(5 * nv * sizeof(float)), *got = malloc(5 * nv * sizeof(float));
        sym_backend *ref = NULL, *cpu = NULL;
        CHECK_OK(sym_ref_backend_create(&ref));
        for (int kvf = 0; kvf < 2; kvf++) {
            sym_dtype kv = kvf ? SYM_DT_F16 : SYM_DT_F32;
            run(ref, m, 64, 16, kv, ids, n, want, at, 5);
            for (int threads = 1; threads <= 3; threads += 2) {
                CHECK_OK(sym_cpu_backend_create(threads, &cpu));
                if (!cpu) continue;
                run(cpu, m, 64, 16, kv, ids, n, got, at, 5);
                /* an f16 cache rounds K/V to 11 bits: a last-bit difference in a K value
                 * before rounding can flip its f16 rounding, so f16 precision bounds the error */
                double tol = kvf ? fmax(x->tol, 1e-3) : x->tol;
                for (int k = 0; k < 5; k++) {
                    double e = rel_err(got + k * nv, want + k * nv, x->n_vocab);
                    CHECK(e <= tol, "%s kv=%s threads=%d pos %d: relative error %.3g > %.1g",
                          x->name, sym_dtype_name(kv), threads, at[k], e, tol);
                }
                cpu->ops->destroy(cpu);
                cpu = NULL;
            }
        }
        ref->ops->destroy(ref);
        free(want);
        free(got);
        sym_model_close(m);
        unlink(path);
    }
}

/* The same seed written as GGUF (interleaved RoPE) and safetensors (rotate_half) must compute
 * the same function. */
static void test_gguf_vs_safetensors(test_rng *r) {
    for (int qwen = 0; qwen < 2; qwen++) {
        sym_make_model_options o;
        sym_make_model_options_init(&o);
        if (qwen) snprintf(o.arch, sizeof o.arch, "qwen2");
        o.dtype = SYM_DT_F32;
        o.seed = test_rng_u64(r);
        o.tied_embeddings = false;
        char g[1024], s[1024];
        snprintf(g, sizeof g, "%s/eq-%d-%d.gguf", SYM_BUILD_DIR, qwen, (int)getpid());
        snprintf(s, sizeof s, "%s/eq-%d-%d.st", SYM_BUILD_DIR, qwen, (int)getpid());
        CHECK_OK(sym_make_model(&o, g));
        o.format = SYM_MODEL_SAFETENSORS;
        CHECK_OK(sym_make_model(&o, s));
        sym_model *mg = NULL, *ms = NULL;
        CHECK_OK(sym_model_open(g, &mg));
        CHECK_OK(sym_model_open(s, &ms));
        if (!mg || !ms) continue;
        CHECK(sym_model_hparams(mg)->rope_neox == qwen && sym_model_hparams(ms)->rope_neox == 1,
              "rope layouts: gguf %d safetensors %d", sym_model_hparams(mg)->rope_neox,
              sym_model_hparams(ms)->rope_neox);
        int nv = sym_model_hparams(mg)->n_vocab, at[] = {9, 23};
        int32_t ids[23];
        for (int i = 0; i < 23; i++) ids[i] = (int32_t)test_rng_below(r, (uint64_t)nv);
        float *a = malloc(2 * (size_t)nv * 4), *b = malloc(2 * (size_t)nv * 4);
        sym_backend *cpu = NULL;
        CHECK_OK(sym_cpu_backend_create(2, &cpu));
        if (cpu) {
            run(cpu, mg, 32, 8, SYM_DT_F32, ids, 23, a, at, 2);
            run(cpu, ms, 32, 8, SYM_DT_F32, ids, 23, b, at, 2);
            for (int k = 0; k < 2; k++) {
                double e = rel_err(b + k * nv, a + k * nv, nv);
                CHECK(e <= 1e-5, "%s: gguf vs safetensors at pos %d: relative error %.3g",
                      qwen ? "qwen2" : "llama", at[k], e);
            }
            cpu->ops->destroy(cpu);
        }
        free(a);
        free(b);
        sym_model_close(mg);
        sym_model_close(ms);
        unlink(g);
        char cmd[2200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s);
        CHECK(system(cmd) == 0, "cleanup");
    }
}

int main(void) {
    test_rng r = test_rng_init("test_forward");
    test_shared_model();
    test_cpu_vs_ref(&r);
    test_gguf_vs_safetensors(&r);
    return test_finish("test_forward");
}
