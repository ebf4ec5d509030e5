/* VK_SYMBIOTE_CHECK's wrapper: a correct backend passes a whole forward pass with every op
 * checked; a backend with one wrong op is caught, and the report names that op (not a later one
 * that inherits its error). */
#include <unistd.h>

#include "cpu/ops.h"
#include "infer/check.h"
#include "infer/forward.h"
#include "model/writer.h"
#include "test_util.h"

static sym_backend_ops g_broken_ops;
static const sym_backend_ops *g_cpu_ops;
static int g_break_after; /* the silu_mul call to corrupt */
static int g_calls;

/* silu_mul that perturbs one element of its g_break_after-th call */
static void broken_silu_mul(sym_backend *b, sym_tensor *out, const sym_tensor *gate,
                            const sym_tensor *up) {
    g_cpu_ops->silu_mul(b, out, gate, up);
    if (++g_calls == g_break_after) ((float *)out->data)[out->n_cols / 2] += 1.0f;
}

int main(void) {
    test_rng r = test_rng_init("test_check");
    char path[1024];
    snprintf(path, sizeof path, "%s/check-%d.gguf", SYM_BUILD_DIR, (int)getpid());
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    o.dtype = SYM_DT_F16;
    o.seed = test_rng_u64(&r);
    CHECK_OK(sym_make_model(&o, path));
    sym_model *m = NULL;
    CHECK_OK(sym_model_open(path, &m));
    if (!m) return test_finish("test_check");
    const sym_hparams *hp = sym_model_hparams(m);
    int32_t ids[9];
    for (int i = 0; i < 9; i++) ids[i] = (int32_t)test_rng_below(&r, (uint64_t)hp->n_vocab);
    float *logits = malloc((size_t)hp->n_vocab * sizeof *logits);
    sym_forward_options fo = {.n_ctx = 32, .n_batch = 4, .kv_type = SYM_DT_F16};

    for (int broken = 0; broken < 2; broken++) {
        sym_backend *cpu = NULL, *chk = NULL;
        CHECK_OK(sym_cpu_backend_create(2, &cpu));
        if (!cpu) break;
        if (broken) {
            g_cpu_ops = cpu->ops;
            g_broken_ops = *cpu->ops;
            g_broken_ops.silu_mul = broken_silu_mul;
            cpu->ops = &g_broken_ops;
            g_calls = 0;
            g_break_after = 3; /* second chunk, first layer */
        }
        CHECK_OK(sym_check_backend_create(cpu, 1e-3, &chk));
        if (!chk) break;
        sym_forward_pass *f = NULL;
        CHECK_OK(sym_forward_create(chk, m, &fo, &f));
        if (f) {
            sym_status st = sym_forward_eval(f, ids, 9, logits);
            if (!broken) {
                CHECK(st == SYM_OK, "correct backend flagged: %s", sym_last_error());
                /* 3 chunks x (embed + layers x 17 ops) + final norm + output matmul */
                uint64_t want = 3 * (1 + (uint64_t)hp->n_layer * 17) + 2;
                CHECK(sym_check_backend_n_ops(chk) == want, "checked %llu ops, want %llu",
                      (unsigned long long)sym_check_backend_n_ops(chk), (unsigned long long)want);
            } else {
                CHECK(st == SYM_ERR_INTERNAL, "broken op not caught: %s", sym_status_name(st));
                CHECK(strstr(sym_last_error(), "silu_mul") != NULL, "report names %s",
                      sym_last_error());
            }
            sym_forward_destroy(f);
        }
        chk->ops->destroy(chk);
    }
    free(logits);
    sym_model_close(m);
    unlink(path);
    return test_finish("test_check");
}
