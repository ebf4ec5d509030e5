/* Hostile tokenizer metadata: hand-made GGUF vocabularies with missing, mismatched or
 * out-of-range fields give precise errors; random corruptions of a valid one give a status or a
 * working tokenizer, never a crash (run under ASan in CI). */
#include "base/log.h"
#include "tokenizer_util.h"

/* ---- hostile GGUF metadata
 * ------------------------------------------------------------------------ */

typedef struct gbuf {
    unsigned char *p;
    size_t n, cap;
    uint64_t n_kv;
} gbuf;

static void put(gbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u32(gbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(gbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(gbuf *b, const char *s, size_t n) {
    put_u64(b, n);
    put(b, s, n);
}
static void kv_head(gbuf *b, const char *key, uint32_t type) {
    put_str(b, key, strlen(key));
    put_u32(b, type);
    b->n_kv++;
}
static void kv_str(gbuf *b, const char *key, const char *v) {
    kv_head(b, key, SYM_GGUF_STRING);
    put_str(b, v, strlen(v));
}
static void kv_u32(gbuf *b, const char *key, uint32_t v) {
    kv_head(b, key, SYM_GGUF_U32);
    put_u32(b, v);
}
static void kv_strs(gbuf *b, const char *key, const char *const *v, size_t n) {
    kv_head(b, key, SYM_GGUF_ARRAY);
    put_u32(b, SYM_GGUF_STRING);
    put_u64(b, n);
    for (size_t i = 0; i < n; i++)
        put_str(b, v[i], strlen(v[i]));
}
static void kv_f32s(gbuf *b, const char *key, size_t n) {
    kv_head(b, key, SYM_GGUF_ARRAY);
    put_u32(b, SYM_GGUF_F32);
    put_u64(b, n);
    for (size_t i = 0; i < n; i++) {
        float f = -(float)i;
        put(b, &f, 4);
    }
}
static void kv_i32s(gbuf *b, const char *key, const int32_t *v, size_t n) {
    kv_head(b, key, SYM_GGUF_ARRAY);
    put_u32(b, SYM_GGUF_I32);
    put_u64(b, n);
    put(b, v, n * 4);
}
/* header in front of the kvs: magic, version 3, 0 tensors, n_kv */
static unsigned char *finish_gguf(gbuf *kvs, size_t *size) {
    gbuf out = {0};
    put_u32(&out, 0x46554747);
    put_u32(&out, 3);
    put_u64(&out, 0);
    put_u64(&out, kvs->n_kv);
    put(&out, kvs->p, kvs->n);
    free(kvs->p);
    *size = out.n;
    return out.p;
}

static sym_status create_from(gbuf *kvs, sym_tokenizer **t) {
    size_t size;
    unsigned char *data = finish_gguf(kvs, &size);
    sym_gguf *g = NULL;
    *t = NULL;
    sym_status st = sym_gguf_open_memory(data, size, &g);
    if (st == SYM_OK) st = sym_tokenizer_create_gguf(g, t);
    sym_gguf_close(g);
    free(data);
    return st;
}

static const char *const k_small_tokens[] = {"<unk>",
                                             "<s>",
                                             "</s>",
                                             "\xe2\x96\x81",
                                             "a",
                                             "b",
                                             ("\xe2\x96\x81"
                                              "a"),
                                             "ab",
                                             "\xff\xfe"};
#define SMALL_N (sizeof k_small_tokens / sizeof k_small_tokens[0])
static const int32_t k_small_types[SMALL_N] = {2, 3, 3, 1, 1, 1, 1, 1, 1};

static const char *const k_bpe_tokens[] = {"a",
                                           "b",
                                           "c",
                                           "ab",
                                           "abc",
                                           "\xc4\xa0",
                                           ("\xc4\xa0"
                                            "a"),
                                           "<|endoftext|>",
                                           "\xff"};
#define BPE_N (sizeof k_bpe_tokens / sizeof k_bpe_tokens[0])
static const char *const k_bpe_merges[] = {"a b", "ab c", "\xc4\xa0 a"};

static void test_hostile_gguf(void) {
    sym_tokenizer *t = NULL;
    gbuf b = {0};
    /* a valid small SPM vocabulary first */
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    kv_f32s(&b, "tokenizer.ggml.scores", SMALL_N);
    kv_i32s(&b, "tokenizer.ggml.token_type", k_small_types, SMALL_N);
    CHECK_OK(create_from(&b, &t));
    if (t) {
        /* invalid UTF-8 input and tokens: defined results, no crash */
        int32_t ids[64];
        size_t n = 0;
        CHECK_OK(sym_tokenizer_encode(t, "a \xff\xfe b\xc3", 8, true, true, ids, 64, &n));
        CHECK(n >= 3, "ids %zu", n);
        sym_tokenizer_destroy(t);
    }

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "tokenizer.ggml.tokens", "no tokens");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, 0);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "empty vocabulary", "empty vocabulary");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    kv_f32s(&b, "tokenizer.ggml.scores", SMALL_N - 1);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "scores", "scores length");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    kv_i32s(&b, "tokenizer.ggml.token_type", k_small_types, SMALL_N - 2);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "token_type", "types length");

    int32_t bad_types[SMALL_N];
    memcpy(bad_types, k_small_types, sizeof bad_types);
    bad_types[4] = 77;
    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    kv_i32s(&b, "tokenizer.ggml.token_type", bad_types, SMALL_N);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "type 77", "bad type");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    kv_u32(&b, "tokenizer.ggml.bos_token_id", 1000);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "bos_token_id", "bos out of range");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    kv_u32(&b, "tokenizer.ggml.eos_token_id", 0xFFFFFFFFu); /* "none" */
    CHECK_OK(create_from(&b, &t));
    if (t) CHECK(sym_tokenizer_eos(t) == -1, "eos none");
    sym_tokenizer_destroy(t);

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "t5");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    expect_fail(create_from(&b, &t), SYM_ERR_UNSUPPORTED, "'t5'", "unknown model");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_strs(&b, "tokenizer.ggml.tokens", k_bpe_tokens, BPE_N);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "without merges", "no merges");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_str(&b, "tokenizer.ggml.pre", "no-such-pre");
    kv_strs(&b, "tokenizer.ggml.tokens", k_bpe_tokens, BPE_N);
    kv_strs(&b, "tokenizer.ggml.merges", k_bpe_merges, 3);
    expect_fail(create_from(&b, &t), SYM_ERR_UNSUPPORTED, "no-such-pre", "unknown pre");

    static const char *const unknown_merges[] = {"x y", "nospace", "a zz"};
    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_str(&b, "tokenizer.ggml.pre", "gpt-2");
    kv_strs(&b, "tokenizer.ggml.tokens", k_bpe_tokens, BPE_N);
    kv_strs(&b, "tokenizer.ggml.merges", unknown_merges, 3);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "merges", "only unknown merges");

    /* some merges unknown, a duplicate token, an out-of-alphabet token: usable */
    static const char *const mixed_merges[] = {"a b", "x y", "ab c", "\xc4\xa0 a", "a b"};
    static const char *const dup_tokens[] = {"a",
                                             "b",
                                             "c",
                                             "ab",
                                             "abc",
                                             "\xc4\xa0",
                                             ("\xc4\xa0"
                                              "a"),
                                             "<|endoftext|>",
                                             "\xff",
                                             "a"};
    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_str(&b, "tokenizer.ggml.pre", "gpt-2");
    kv_strs(&b, "tokenizer.ggml.tokens", dup_tokens, 10);
    kv_strs(&b, "tokenizer.ggml.merges", mixed_merges, 5);
    CHECK_OK(create_from(&b, &t));
    if (t) {
        int32_t ids[16];
        size_t n = 0;
        CHECK_OK(sym_tokenizer_encode(t, "abc a\xfe", 6, false, false, ids, 16, &n));
        /* "abc" -> 4, " a" -> 6; 0xFE has no byte token and there is no <unk>: dropped */
        CHECK(n == 2 && ids[0] == 4 && ids[1] == 6, "mixed merges: %zu ids", n);
        sym_tokenizer_destroy(t);
    }
}

/* Random corruption of a small valid vocabulary: every outcome is a status, never a crash. */
static void test_corrupted_gguf(void) {
    test_rng r = test_rng_init("test_tokenizer corruption");
    gbuf b = {0};
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_str(&b, "tokenizer.ggml.pre", "llama3");
    kv_strs(&b, "tokenizer.ggml.tokens", k_bpe_tokens, BPE_N);
    kv_strs(&b, "tokenizer.ggml.merges", k_bpe_merges, 3);
    kv_u32(&b, "tokenizer.ggml.bos_token_id", 7);
    size_t size;
    unsigned char *good = finish_gguf(&b, &size);
    unsigned char *buf = malloc(size);
    int created = 0;
    for (int it = 0; it < 2000; it++) {
        memcpy(buf, good, size);
        int flips = 1 + (int)test_rng_below(&r, 4);
        for (int f = 0; f < flips; f++)
            buf[test_rng_below(&r, size)] ^= (uint8_t)(1 + test_rng_below(&r, 255));
        sym_gguf *g = NULL;
        sym_tokenizer *t = NULL;
        if (sym_gguf_open_memory(buf, size, &g) == SYM_OK &&
            sym_tokenizer_create_gguf(g, &t) == SYM_OK) {
            created++;
            char text[64];
            size_t len = random_text(&r, text, sizeof text, false);
            int32_t ids[256];
            char back[1024];
            size_t n = 0, m = 0;
            if (sym_tokenizer_encode(t, text, len, true, true, ids, 256, &n) == SYM_OK)
                (void)sym_tokenizer_decode(t, ids, n, SYM_DECODE_SPECIAL, back, sizeof back, &m);
        }
        sym_tokenizer_destroy(t);
        sym_gguf_close(g);
    }
    fprintf(stderr, "corruption: %d of 2000 corrupted files still made a tokenizer\n", created);
    free(buf);
    free(good);
}

int main(void) {
    sym_log_set_level(SYM_LOG_ERROR); /* the skipped-merge warnings are expected here */
    test_hostile_gguf();
    test_corrupted_gguf();
    return test_finish("test_tokenizer_bad");
}
