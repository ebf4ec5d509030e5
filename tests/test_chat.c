/* Chat: template detection and formatting for each family, and multi-turn generation that keeps
 * the KV cache gives the same next-token logits as evaluating the whole conversation at once. */
#include "infer/engine.h"
#include "test_util.h"
#include "text/chat.h"

static void expect_format(sym_chat_template t, const char *want, bool gen) {
    const sym_chat_msg msgs[] = {
        {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "2+2?"}};
    char buf[1024];
    size_t n = 0;
    CHECK_OK(sym_chat_format(t, msgs, 4, gen, buf, sizeof buf, &n));
    CHECK(n == strlen(want) && !strcmp(buf, want), "%s: got\n%s\nwant\n%s",
          sym_chat_template_name(t), buf, want);
    /* too small a buffer reports the size needed */
    char small[8];
    size_t need = 0;
    CHECK_STATUS(sym_chat_format(t, msgs, 4, gen, small, sizeof small, &need), SYM_ERR_RANGE);
    CHECK(need == n, "%s: needed %zu, full %zu", sym_chat_template_name(t), need, n);
}

static void test_templates(void) {
    expect_format(SYM_CHAT_CHATML,
                  "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                  "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
                  "<|im_start|>assistant\n", true);
    expect_format(SYM_CHAT_LLAMA3,
                  "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n", true);
    expect_format(SYM_CHAT_LLAMA2,
                  "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello.</s><s>[INST] 2+2? "
                  "[/INST]", true);
    expect_format(SYM_CHAT_MISTRAL, "[INST] Be brief.\n\nHi[/INST] Hello.</s><s>[INST] 2+2?[/INST]",
                  true);
    expect_format(SYM_CHAT_PHI3,
                  "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n"
                  "<|user|>\n2+2?<|end|>\n", false);
    expect_format(SYM_CHAT_GEMMA,
                  "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
                  "Hello.<end_of_turn>\n<start_of_turn>user\n2+2?<end_of_turn>\n"
                  "<start_of_turn>model\n", true);
    expect_format(SYM_CHAT_NONE, "Be brief.HiHello.2+2?", true);

    static const struct { const char *jinja; sym_chat_template want; } d[] = {
        {"{% for m in messages %}<|im_start|>{{ m.role }}", SYM_CHAT_CHATML},
        {"{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>' }}", SYM_CHAT_LLAMA3},
        {"{{ '[INST] <<SYS>>\\n' + system }}", SYM_CHAT_LLAMA2},
        {"{{ '[INST] ' + message['content'] + ' [/INST]' }}", SYM_CHAT_MISTRAL},
        {"{{'<|user|>' + '\\n'}}{{'<|end|>'}}{{'<|assistant|>'}}", SYM_CHAT_PHI3},
        {"{{ '<|user|>\\n' + content + eos_token }}", SYM_CHAT_ZEPHYR},
        {"<start_of_turn>user", SYM_CHAT_GEMMA},
        {"{{ messages }}", SYM_CHAT_NONE},
    };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        CHECK(sym_chat_detect(d[i].jinja, strlen(d[i].jinja)) == d[i].want, "detect '%s'",
              d[i].jinja);
    const sym_chat_msg bad = {"robot", "x"};
    char buf[64];
    size_t n;
    CHECK_STATUS(sym_chat_format(SYM_CHAT_CHATML, &bad, 1, true, buf, sizeof buf, &n), SYM_ERR_ARG);
    sym_chat_template t;
    CHECK_STATUS(sym_chat_template_parse("vicuna", &t), SYM_ERR_ARG);
}

static int quiet(void *user, int32_t id, const char *text, size_t len) {
    (void)user, (void)id, (void)text, (void)len;
    return 0;
}

/* Three appended turns with the cache kept, then one more step, must give the logits of running
 * the whole history in one go from an empty cache. */
static void test_kv_reuse(void) {
    sym_engine_params p;
    sym_engine_params_init(&p);
    snprintf(p.cfg.model_path, sizeof p.cfg.model_path, "%s/models/toy-fortunes.gguf",
             SYM_SOURCE_DIR);
    p.backend = "cpu";
    p.fp32 = true;
    sym_engine *e = NULL, *f = NULL;
    CHECK_OK(sym_engine_open_params(&p, &e));
    CHECK_OK(sym_engine_open_params(&p, &f));
    if (!e || !f) return;
    sym_sampling s;
    sym_sampling_init(&s);
    s.temperature = 0;
    const char *turns[] = {"A computer", " Never trust", " The meaning of life"};
    for (int i = 0; i < 3; i++)
        CHECK_OK(sym_generate_append(e, turns[i], strlen(turns[i]), 0, 7, &s, quiet, NULL));
    int n = 0;
    const int32_t *hist = sym_engine_history(e, &n);
    CHECK(n > 21 && n < 64, "history of %d tokens", n);
    int32_t all[128];
    memcpy(all, hist, (size_t)n * sizeof *all);
    all[n] = 300; /* a probe token after the last (still unevaluated) sampled one */
    float a[1024], b[1024];
    /* cached: evaluates the pending sampled token and the probe */
    CHECK_OK(sym_generate_append(e, "", 0, 0, 0, &s, quiet, NULL));
    CHECK(sym_n_past(e) == n, "pending token evaluated: %d vs %d", sym_n_past(e), n);
    CHECK_OK(sym_forward(e, &all[n], 1, a));
    /* from scratch: every id in one forward */
    CHECK_OK(sym_forward(f, all, (size_t)n + 1, b));
    double err = 0, scale = 0;
    for (int i = 0; i < 1024; i++) {
        err = fmax(err, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    CHECK(err <= 1e-4 * scale, "kept-cache logits differ from a fresh run: %.3g (scale %.3g)",
          err, scale);
    /* the context-full path: a text longer than what is left is refused, nothing run */
    char longtext[4096] = "";
    for (int i = 0; i < 400; i++) strcat(longtext, " x");
    int before = sym_n_past(e);
    CHECK_STATUS(sym_generate_append(e, longtext, strlen(longtext), 0, 4, &s, quiet, NULL),
                 SYM_ERR_RANGE);
    CHECK(sym_n_past(e) == before, "a refused turn changed the history");
    sym_engine_close(e);
    sym_engine_close(f);
}

int main(void) {
    test_templates();
    test_kv_reuse();
    return test_finish("test_chat");
}
