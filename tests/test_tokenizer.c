/* Tokenizers against real vocabularies: every case of ../shared/tokenizer/ (each .inp) gives
 * exactly the ids of its .out (no BOS, special tokens not parsed); the aidreams prompts;
 * decode(encode(s)) == s on seeded random text; the streaming detokenizer never emits a partial
 * character; special tokens and the API's contracts; long inputs stay fast. tokenizer.json:
 * test_tokenizer_hf.c; hostile metadata: test_tokenizer_bad.c. */
#include "tokenizer_util.h"

static void test_vocab_cases(void) {
    size_t total = 0, passed = 0;
    for (size_t v = 0; v < N_VOCABS; v++) {
        vcases vc;
        CHECK(load_cases(k_vocabs[v], &vc), "cannot read the cases of %s", k_vocabs[v]);
        sym_tokenizer *t = open_vocab(k_vocabs[v]);
        if (t && vc.n) {
            char label[64];
            snprintf(label, sizeof label, "gguf %s", k_vocabs[v]);
            passed += run_cases(t, &vc, label);
            total += vc.n;
        }
        sym_tokenizer_destroy(t);
        free_cases(&vc);
    }
    fprintf(stderr, "gguf vocabularies: %zu/%zu cases match\n", passed, total);
    CHECK(total == 46 * N_VOCABS, "expected %zu cases, read %zu", 46 * N_VOCABS, total);
}

/* ---- aidreams -------------------------------------------------------------------------------- */

static void test_aidreams(void) {
    char p[1024];
    sym_tokenizer *t = NULL;
    CHECK_OK(sym_tokenizer_open(test_shared_path("models/aidreams260K.gguf", p, sizeof p), &t));
    if (!t) return;
    static const struct {
        const char *prompt;
        int32_t ids[16];
        size_t n;
    } cases[] = {
        {"I dreamed", {1, 303, 281, 269, 435, 447, 328}, 7},
        {"The network", {1, 368, 430, 324, 323, 449, 284, 453}, 8},
        {"", {1}, 1},
    };
    CHECK(sym_tokenizer_n_vocab(t) == 512, "n_vocab %d", sym_tokenizer_n_vocab(t));
    CHECK(sym_tokenizer_wants_bos(t) && sym_tokenizer_bos(t) == 1, "bos");
    CHECK(sym_tokenizer_is_eog(t, 2) && !sym_tokenizer_is_eog(t, 1), "eog");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t ids[64];
        size_t n = 0;
        CHECK_OK(sym_tokenizer_encode(t, cases[i].prompt, strlen(cases[i].prompt), true, false, ids,
                                      64, &n));
        CHECK(n == cases[i].n && !memcmp(ids, cases[i].ids, n * 4), "aidreams '%s': %zu ids",
              cases[i].prompt, n);
        char text[256];
        size_t len = 0;
        CHECK_OK(sym_tokenizer_decode(t, ids, n, 0, text, sizeof text, &len));
        CHECK(len == strlen(cases[i].prompt) && !memcmp(text, cases[i].prompt, len),
              "aidreams decode '%.*s'", (int)len, text);
    }
    sym_tokenizer_destroy(t);
}

static void test_round_trips(void) {
    test_rng r = test_rng_init("test_tokenizer round trips");
    for (size_t v = 0; v < N_VOCABS; v++) {
        sym_tokenizer *t = open_vocab(k_vocabs[v]);
        if (!t) continue;
        char label[64];
        snprintf(label, sizeof label, "round trip %s", k_vocabs[v]);
        int bad = round_trips(t, label, &r, 400, lossless_for(k_vocabs[v]));
        CHECK(bad == 0, "%s: %d of 400 strings differ", label, bad);
        fprintf(stderr, "%s: %d of 400 strings differ\n", label, bad);
        sym_tokenizer_destroy(t);
    }
}

/* A character split over byte tokens comes out only when complete. */
static void test_stream_bytes(void) {
    sym_tokenizer *t = open_vocab("llama-spm");
    if (!t) return;
    /* "🦙" is not in the vocabulary: byte tokens <0xF0><0x9F><0xA6><0x99> */
    const char *s = " \xf0\x9f\xa6\x99!";
    int32_t ids[16];
    size_t n = 0;
    CHECK_OK(sym_tokenizer_encode(t, s, strlen(s), false, false, ids, 16, &n));
    sym_detokenizer d;
    sym_detokenizer_init(&d, t, SYM_DECODE_KEEP_SPACE);
    char out[256];
    size_t got = 0, total = 0;
    char all[64];
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(sym_detokenizer_push(&d, ids[i], out, sizeof out, &got));
        CHECK(got == 0 || sym_utf8_valid_prefix((uint8_t *)out, got) == got, "partial output");
        memcpy(all + total, out, got);
        total += got;
    }
    CHECK_OK(sym_detokenizer_flush(&d, out, sizeof out, &got));
    CHECK(got == 0, "flush emitted %zu bytes", got);
    /* KEEP_SPACE keeps the prefix's space: "▁" + " " + 🦙 + "!" */
    CHECK(total == 7 && !memcmp(all, "  \xf0\x9f\xa6\x99!", 7), "stream gave %zu bytes", total);
    /* a lone lead byte: held, then U+FFFD at flush */
    int32_t lone = 3 + 0xE2; /* <0xE2> */
    sym_detokenizer_init(&d, t, 0);
    CHECK_OK(sym_detokenizer_push(&d, lone, out, sizeof out, &got));
    CHECK(got == 0, "lead byte emitted %zu bytes", got);
    CHECK_OK(sym_detokenizer_flush(&d, out, sizeof out, &got));
    CHECK(got == 3 && !memcmp(out, "\xef\xbf\xbd", 3), "flush gave %zu bytes", got);
    /* an invalid continuation: U+FFFD at once */
    CHECK_OK(sym_detokenizer_push(&d, 3 + 0x80, out, sizeof out, &got));
    CHECK(got == 3 && !memcmp(out, "\xef\xbf\xbd", 3), "stray continuation gave %zu bytes", got);
    /* too small a buffer: SYM_ERR_RANGE, state unchanged */
    int32_t hello = 15043;
    CHECK_STATUS(sym_detokenizer_push(&d, hello, out, 2, &got), SYM_ERR_RANGE);
    CHECK(got == 6, "needed %zu", got);
    CHECK_OK(sym_detokenizer_push(&d, hello, out, sizeof out, &got));
    CHECK(got == 6 && !memcmp(out, " Hello", 6), "after range error: %zu bytes", got);
    CHECK_STATUS(sym_detokenizer_push(&d, 99999, out, sizeof out, &got), SYM_ERR_ARG);
    sym_tokenizer_destroy(t);
}

static void test_specials(void) {
    sym_tokenizer *spm = open_vocab("llama-spm");
    sym_tokenizer *phi = open_vocab("phi-3");
    sym_tokenizer *gpt = open_vocab("gpt-2");
    if (!spm || !phi || !gpt) goto done;
    expect_ids(spm, "<s>Hello", false, true, (const int32_t[]){1, 15043}, 2, "<s> parsed");
    CHECK(!contains_id(spm, "<s>Hello", false, 1), "<s> must be text without parse_special");
    expect_ids(spm, "Hello", true, false, (const int32_t[]){1, 15043}, 2, "add_bos");
    CHECK(contains_id(phi, "<|user|>\nHi<|end|>", true, 32010), "<|user|>");
    CHECK(contains_id(phi, "<|user|>\nHi<|end|>", true, 32007), "<|end|>");
    CHECK(!contains_id(phi, "<|user|>\nHi<|end|>", false, 32007), "<|end|> as text");
    CHECK(contains_id(gpt, "a<|endoftext|>b", true, 50256), "<|endoftext|> parsed");
    CHECK(!contains_id(gpt, "a<|endoftext|>b", false, 50256), "<|endoftext|> as text");

    /* decode: control tokens hidden unless asked; the prefix space removed after them */
    int32_t ids[] = {1, 15043, 2, 15043};
    char out[64];
    size_t n = 0;
    CHECK_OK(sym_tokenizer_decode(spm, ids, 4, 0, out, sizeof out, &n));
    CHECK(n == 10 && !memcmp(out, "HelloHello", n), "decode: '%.*s'", (int)n, out);
    CHECK_OK(sym_tokenizer_decode(spm, ids, 4, SYM_DECODE_SPECIAL, out, sizeof out, &n));
    CHECK(n == 17 && !memcmp(out, "<s>Hello</s>Hello", n), "decode special: '%.*s'", (int)n, out);
    CHECK_OK(sym_tokenizer_decode(spm, ids + 1, 1, SYM_DECODE_KEEP_SPACE, out, sizeof out, &n));
    CHECK(n == 6 && !memcmp(out, " Hello", n), "keep space: '%.*s'", (int)n, out);
    CHECK_STATUS(sym_tokenizer_decode(spm, ids, 4, 0, out, 3, &n), SYM_ERR_RANGE);
    CHECK(n == 10, "decode needs %zu", n);
    int32_t bad = 32000;
    CHECK_STATUS(sym_tokenizer_decode(spm, &bad, 1, 0, out, sizeof out, &n), SYM_ERR_ARG);

    /* round trip with parsed specials */
    const char *chat = "<|user|>\nHow are you?<|end|>\n<|assistant|>";
    int32_t cid[64];
    CHECK_OK(sym_tokenizer_encode(phi, chat, strlen(chat), false, true, cid, 64, &n));
    size_t m = 0;
    char back[128];
    CHECK_OK(sym_tokenizer_decode(phi, cid, n, SYM_DECODE_SPECIAL, back, sizeof back, &m));
    /* Phi-3's special tokens swallow the whitespace after them (rstrip) */
    const char *want = "<|user|>How are you?<|end|><|assistant|>";
    CHECK(m == strlen(want) && !memcmp(back, want, m), "phi-3 chat: '%.*s'", (int)m, back);

    /* encode: too small a buffer reports the count */
    const char *text = "Hello world, this is a test.";
    int32_t small[3];
    CHECK_STATUS(sym_tokenizer_encode(gpt, text, strlen(text), false, false, small, 3, &n),
                 SYM_ERR_RANGE);
    CHECK(n == 8, "needed %zu ids", n);
    CHECK_STATUS(sym_tokenizer_encode(gpt, text, strlen(text), false, false, NULL, 0, &n),
                 SYM_ERR_RANGE); /* counting only */
    CHECK(n == 8, "counted %zu ids", n);
    CHECK_STATUS(sym_tokenizer_encode(gpt, "x", 1, true, false, small, 3, &n), SYM_OK);
    CHECK(n == 2 && small[0] == 50256, "gpt-2 with BOS");
    CHECK(!sym_tokenizer_wants_bos(gpt), "gpt-2 adds no BOS by default");

    /* EOG */
    CHECK(sym_tokenizer_is_eog(spm, 2) && !sym_tokenizer_is_eog(spm, 1), "spm eog");
    CHECK(sym_tokenizer_is_eog(phi, 32000) && sym_tokenizer_is_eog(phi, 32007), "phi-3 eog");
    CHECK(sym_tokenizer_is_eog(gpt, 50256) && !sym_tokenizer_is_eog(gpt, -1) &&
              !sym_tokenizer_is_eog(gpt, 1 << 20),
          "gpt-2 eog");

    /* pieces and texts */
    const char *p;
    size_t len;
    CHECK_OK(sym_tokenizer_piece(spm, 13, &p, &len)); /* <0x0A> */
    CHECK(len == 1 && p[0] == '\n', "byte piece");
    CHECK_OK(sym_tokenizer_token_text(spm, 13, &p, &len));
    CHECK(len == 6 && !memcmp(p, "<0x0A>", 6), "byte text");
    CHECK_OK(sym_tokenizer_piece(gpt, 995, &p, &len)); /* "Ġworld" */
    CHECK(len == 6 && !memcmp(p, " world", 6), "byte-level piece '%.*s'", (int)len, p);
    CHECK_STATUS(sym_tokenizer_piece(gpt, 50257, &p, &len), SYM_ERR_ARG);
    CHECK(sym_tokenizer_token_type(spm, 1) == SYM_TOKEN_CONTROL, "type of <s>");
    CHECK(!strcmp(sym_tokenizer_model(gpt), "gpt2") && !strcmp(sym_tokenizer_pre(gpt), "gpt-2"),
          "names %s %s", sym_tokenizer_model(gpt), sym_tokenizer_pre(gpt));
done:
    sym_tokenizer_destroy(spm);
    sym_tokenizer_destroy(phi);
    sym_tokenizer_destroy(gpt);
}

/* ---- long inputs
 * --------------------------------------------------------------------------------- */

static void test_long_inputs(void) {
    const size_t n = 1 << 20;
    char *text = malloc(n);
    int32_t *ids = malloc(sizeof *ids * (n + 1));
    static const char *const fills[] = {"a", " ", "3", "\n", "\xf0\x9f\xa6\x99"};
    double worst = 0;
    for (size_t v = 0; v < N_VOCABS; v++) {
        sym_tokenizer *t = open_vocab(k_vocabs[v]);
        if (!t) continue;
        for (size_t f = 0; f < sizeof fills / sizeof *fills; f++) {
            size_t fl = strlen(fills[f]);
            for (size_t i = 0; i < n; i++)
                text[i] = fills[f][i % fl];
            size_t m = 0;
            double t0 = now_s();
            CHECK_OK(sym_tokenizer_encode(t, text, n, false, false, ids, n + 1, &m));
            double dt = now_s() - t0;
            CHECK(m > 0 && dt < 20.0, "%s: 1 MiB of '%s' took %.2f s", k_vocabs[v], fills[f], dt);
            if (dt > worst) worst = dt;
        }
        sym_tokenizer_destroy(t);
    }
    fprintf(stderr, "long inputs: slowest 1 MiB line of one repeated character: %.3f s\n", worst);
    free(text);
    free(ids);
}

int main(void) {
    test_vocab_cases();
    test_aidreams();
    test_specials();
    test_stream_bytes();
    test_round_trips();
    test_long_inputs();
    return test_finish("test_tokenizer");
}
