/* GGUF reader: the real shared model parses with the right metadata and tensor table, and every
 * truncation and a set of targeted corruptions of it give SYM_ERR_FORMAT (never a crash; run
 * under ASan in CI). */
#include "gguf_build.h"
#include "model/gguf.h"
#include "test_util.h"

static void test_real_model(void) {
    char path[1024];
    sym_gguf *g = NULL;
    CHECK_OK(sym_gguf_open(test_shared_path("models/aidreams260K.gguf", path, sizeof path), &g));
    if (!g) return;
    CHECK(sym_gguf_version(g) == 3, "version %u", sym_gguf_version(g));
    CHECK(sym_gguf_n_tensors(g) == 39, "n_tensors %llu", (unsigned long long)sym_gguf_n_tensors(g));
    sym_str arch = {0};
    CHECK_OK(sym_gguf_get_str(g, "general.architecture", &arch));
    CHECK(sym_str_eq(arch, "llama"), "architecture %.*s", (int)arch.len, arch.ptr);
    uint32_t n_embd = 0;
    CHECK_OK(sym_gguf_get_u32(g, "llama.embedding_length", &n_embd));
    CHECK(n_embd == 64, "n_embd %u", n_embd);
    const sym_gguf_kv *tokens = NULL;
    CHECK_OK(sym_gguf_get_arr(g, "tokenizer.ggml.tokens", SYM_GGUF_STRING, &tokens));
    if (tokens) {
        CHECK(tokens->arr_n == 512, "n tokens %llu", (unsigned long long)tokens->arr_n);
        CHECK(sym_str_eq(tokens->strs[1], "<s>"), "token 1 is %.*s", (int)tokens->strs[1].len,
              tokens->strs[1].ptr);
    }
    const sym_gguf_tensor *t = sym_gguf_find_tensor(g, "token_embd.weight");
    CHECK(t != NULL, "token_embd.weight missing");
    if (t) {
        CHECK(t->type == SYM_GGML_F32 && t->ne[0] == 64 && t->ne[1] == 512,
              "token_embd type %u shape %llu x %llu", t->type, (unsigned long long)t->ne[0],
              (unsigned long long)t->ne[1]);
        CHECK(t->n_bytes == 64 * 512 * 4, "n_bytes %llu", (unsigned long long)t->n_bytes);
        CHECK((const uint8_t *)t->data + t->n_bytes <= sym_gguf_base(g) + sym_gguf_file_size(g),
              "data past end");
    }
    CHECK(sym_gguf_find_tensor(g, "no.such.tensor") == NULL, "found a missing tensor");
    uint32_t u = 7;
    CHECK_STATUS(sym_gguf_get_u32(g, "no.such.key", &u), SYM_ERR_FORMAT);
    CHECK_OK(sym_gguf_get_u32_opt(g, "no.such.key", &u));
    CHECK(u == 7, "optional getter changed the value");
    CHECK_STATUS(sym_gguf_get_u32(g, "general.architecture", &u), SYM_ERR_FORMAT);
    sym_gguf_close(g);
}

/* Every prefix of the file shorter than its data section's end must be rejected. */
static void test_truncations(const unsigned char *data, size_t size) {
    sym_gguf *g = NULL;
    CHECK_OK(sym_gguf_open_memory(data, size, &g));
    if (!g) return;
    size_t header_end = (size_t)sym_gguf_data_offset(g);
    sym_gguf_close(g);
    int bad = 0;
    for (size_t n = 0; n < header_end + 64; n++) {
        sym_gguf *t = NULL;
        sym_status st = sym_gguf_open_memory(data, n, &t);
        if (st != SYM_ERR_FORMAT) {
            if (bad++ < 5) CHECK(0, "prefix of %zu bytes: %s (%s)", n, sym_status_name(st),
                                 sym_last_error());
        }
        sym_gguf_close(t);
    }
    /* truncating inside the data section is caught by the tensor bounds check */
    sym_gguf *t = NULL;
    CHECK_STATUS(sym_gguf_open_memory(data, size - 1, &t), SYM_ERR_FORMAT);
    CHECK(strstr(sym_last_error(), "past the end") != NULL, "detail: %s", sym_last_error());
    sym_gguf_close(t);
}

static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

static void expect_format(const unsigned char *buf, size_t size, const char *needle,
                          const char *what) {
    sym_gguf *g = NULL;
    sym_status st = sym_gguf_open_memory(buf, size, &g);
    CHECK(st == SYM_ERR_FORMAT || st == SYM_ERR_UNSUPPORTED, "%s: got %s", what,
          sym_status_name(st));
    CHECK(strstr(sym_last_error(), needle) != NULL, "%s: detail '%s' lacks '%s'", what,
          sym_last_error(), needle);
    sym_gguf_close(g);
}

static void test_corruptions(const unsigned char *data, size_t size) {
    unsigned char *buf = malloc(size);
    memcpy(buf, data, size);
    buf[0] = 'X';
    expect_format(buf, size, "bad magic", "magic");
    memcpy(buf, data, size);
    put_u32(buf + 4, 1);
    expect_format(buf, size, "version 1", "v1");
    put_u32(buf + 4, 0x03000000);
    expect_format(buf, size, "unsupported version", "big-endian");
    memcpy(buf, data, size);
    put_u64(buf + 8, UINT64_MAX);
    expect_format(buf, size, "tensors cannot fit", "huge tensor count");
    memcpy(buf, data, size);
    put_u64(buf + 16, 1ull << 40);
    expect_format(buf, size, "metadata entries cannot fit", "huge kv count");
    memcpy(buf, data, size);
    put_u64(buf + 24, UINT64_MAX); /* first key's length */
    expect_format(buf, size, "truncated", "huge key length");
    memcpy(buf, data, size);
    /* first value type: after the first key */
    uint64_t klen;
    memcpy(&klen, data + 24, 8);
    put_u32(buf + 32 + klen, 99);
    expect_format(buf, size, "unknown value type 99", "bad value type");
    free(buf);
}


/* ---- hand-built files: one defect each ------------------------------------------------------- */

static void expect_built(const gguf_builder *g, sym_status want, const char *needle,
                         const char *what) {
    size_t size;
    unsigned char *buf = gb_finish(g, &size);
    sym_gguf *out = NULL;
    sym_status st = sym_gguf_open_memory(buf, size, &out);
    CHECK(st == want, "%s: got %s (%s), want %s", what, sym_status_name(st), sym_last_error(),
          sym_status_name(want));
    if (needle)
        CHECK(strstr(sym_last_error(), needle) != NULL, "%s: detail '%s' lacks '%s'", what,
              sym_last_error(), needle);
    sym_gguf_close(out);
    free(buf);
}

static void test_built(void) {
    const uint64_t ne2[2] = {8, 2};
    gguf_builder g;
#define CASE(setup, want, needle)                                                                 \
    do {                                                                                          \
        gb_init(&g);                                                                              \
        setup;                                                                                    \
        expect_built(&g, want, needle, #setup);                                                   \
        gb_free(&g);                                                                              \
    } while (0)
    CASE((void)0, SYM_OK, NULL); /* nothing at all */
    CASE((gb_kv_u32(&g, "a", 1), gb_tensor(&g, "t", 8, 2, 0, 4), g.version = 2), SYM_OK, NULL);
    CASE((gb_kv_u32(&g, "dup", 1), gb_kv_u32(&g, "dup", 2)), SYM_ERR_FORMAT,
         "duplicate metadata key 'dup'");
    CASE((gb_tensor(&g, "t", 8, 2, 0, 4), gb_tensor(&g, "t", 8, 2, 0, 4)), SYM_ERR_FORMAT,
         "duplicate tensor name 't'");
    CASE(gb_key(&g, "", 4), SYM_ERR_FORMAT, "metadata key 0 is empty");
    CASE((gb_tensor_at(&g, "t", 2, ne2, 0, 0, 96), gb_tensor_at(&g, "u", 2, ne2, 0, 32, 0)),
         SYM_ERR_FORMAT, "tensors 't' and 'u' overlap");
    CASE(gb_tensor_at(&g, "t", 2, ne2, 0, 0, 63), SYM_ERR_FORMAT,
         "tensor 't' (64 bytes at data offset 0) ends past the end of the file");
    CASE(gb_tensor_at(&g, "t", 2, ne2, 0, 1ull << 62, 0), SYM_ERR_FORMAT, "ends past the end");
    CASE(gb_tensor_at(&g, "t", 2, ne2, 0, 16, 96), SYM_ERR_FORMAT,
         "offset 16 is not a multiple of the alignment 32");
    CASE((gb_kv_u32(&g, "general.alignment", 64), gb_tensor_at(&g, "t", 2, ne2, 0, 32, 128)),
         SYM_ERR_FORMAT, "not a multiple of the alignment 64");
    CASE(gb_kv_u32(&g, "general.alignment", 3), SYM_ERR_FORMAT, "alignment 3 is not a power of two");
    CASE(gb_kv_u32(&g, "general.alignment", 0), SYM_ERR_FORMAT, "alignment 0 is not a power of two");
    CASE(gb_kv_str(&g, "general.alignment", "32"), SYM_ERR_FORMAT,
         "general.alignment has type string (u32 expected)");
    CASE(gb_tensor(&g, "t", 8, 2, 99, 4), SYM_ERR_FORMAT, "tensor 't' has unknown type id 99");
    CASE(gb_tensor(&g, "t", 8, 2, 4, 4), SYM_ERR_FORMAT, "unknown type id 4"); /* removed Q4_2 */
    CASE(gb_tensor(&g, "t", 16, 2, 2, 1), SYM_ERR_FORMAT,
         "row length 16 is not a multiple of the Q4_0 block size 32");
    const uint64_t big[3] = {1ull << 32, 1ull << 32, 1ull << 10};
    CASE(gb_tensor_at(&g, "t", 3, big, 0, 0, 0), SYM_ERR_FORMAT, "tensor 't': element count overflows");
    const uint64_t zero[2] = {8, 0};
    CASE(gb_tensor_at(&g, "t", 2, zero, 0, 0, 0), SYM_ERR_FORMAT, "has a zero dimension");
    const uint64_t five[5] = {1, 1, 1, 1, 1};
    CASE(gb_tensor_at(&g, "t", 5, five, 0, 0, 4), SYM_ERR_FORMAT, "has 5 dimensions (1..4 allowed)");
    CASE(gb_tensor_at(&g, "", 2, ne2, 0, 0, 64), SYM_ERR_FORMAT, "tensor 0 has an empty name");
    CASE(gb_kv_bool(&g, "b", 2), SYM_ERR_FORMAT, "key 'b': bool value 2 is not 0 or 1");
    CASE((gb_key(&g, "ba", 9), gb_u32(&g.kvs, 7), gb_u64(&g.kvs, 3), gb_put(&g.kvs, "\1\0\3", 3)),
         SYM_ERR_FORMAT, "key 'ba': bool element 2 is 3");
    CASE((gb_key(&g, "n", 9), gb_u32(&g.kvs, 9), gb_u64(&g.kvs, 1)), SYM_ERR_FORMAT,
         "key 'n': nested arrays are not supported");
    CASE((gb_key(&g, "u", 9), gb_u32(&g.kvs, 13), gb_u64(&g.kvs, 1)), SYM_ERR_FORMAT,
         "key 'u': unknown array element type 13");
    CASE((gb_key(&g, "v", 77)), SYM_ERR_FORMAT, "key 'v': unknown value type 77");
    CASE((gb_key(&g, "h", 9), gb_u32(&g.kvs, 4), gb_u64(&g.kvs, 1ull << 61)), SYM_ERR_FORMAT,
         "key 'h': array of 2305843009213693952 u32 elements runs past the end");
    CASE((gb_key(&g, "s", 9), gb_u32(&g.kvs, 8), gb_u64(&g.kvs, 1ull << 40)), SYM_ERR_FORMAT,
         "key 's': array of 1099511627776 strings cannot fit");
    CASE((gb_key(&g, "l", 8), gb_u64(&g.kvs, UINT64_MAX)), SYM_ERR_FORMAT,
         "file truncated while reading a string value");
    CASE((gb_kv_u32(&g, "x", 1), g.n_kv = 1ull << 40), SYM_ERR_FORMAT, "metadata entries cannot fit");
    CASE((gb_tensor(&g, "t", 8, 2, 0, 4), g.n_tensors = 5), SYM_ERR_FORMAT, "cannot fit");
    CASE(g.version = 4, SYM_ERR_FORMAT, "unsupported version 4");
#undef CASE
    /* typed getters on a built file */
    gb_init(&g);
    gb_kv_u32(&g, "u", 7);
    gb_kv_f32(&g, "f", 2.5f);
    gb_kv_str(&g, "s", "x");
    gb_kv_bool(&g, "b", 1);
    gb_key(&g, "neg", 5);
    gb_u32(&g.kvs, (uint32_t)-3);
    size_t size;
    unsigned char *buf = gb_finish(&g, &size);
    sym_gguf *out = NULL;
    CHECK_OK(sym_gguf_open_memory(buf, size, &out));
    if (out) {
        uint32_t u = 0;
        float f = 0;
        bool b = false;
        CHECK_OK(sym_gguf_get_u32(out, "u", &u));
        CHECK_OK(sym_gguf_get_f32(out, "f", &f));
        CHECK_OK(sym_gguf_get_bool_opt(out, "b", &b));
        CHECK(u == 7 && f == 2.5f && b, "getters");
        CHECK_STATUS(sym_gguf_get_u32(out, "neg", &u), SYM_ERR_FORMAT);
        CHECK(strstr(sym_last_error(), "= -3 is out of range") != NULL, "%s", sym_last_error());
        CHECK_STATUS(sym_gguf_get_bool_opt(out, "u", &b), SYM_ERR_FORMAT);
        const sym_gguf_kv *kv = sym_gguf_find(out, "s");
        CHECK(kv && kv->raw_len == 8 + 1 + 4 + 8 + 1 && kv->raw[8] == 's', "raw span");
    }
    sym_gguf_close(out);
    free(buf);
    gb_free(&g);
}

int main(void) {
    char path[1024];
    size_t size = 0;
    unsigned char *data =
        test_read_file(test_shared_path("models/aidreams260K.gguf", path, sizeof path), &size);
    CHECK(data != NULL, "cannot read %s", path);
    test_real_model();
    test_built();
    if (data) {
        test_truncations(data, size);
        test_corruptions(data, size);
    }
    sym_gguf *g = NULL;
    CHECK_STATUS(sym_gguf_open("/nonexistent/x.gguf", &g), SYM_ERR_IO);
    CHECK_STATUS(sym_gguf_open("/", &g), SYM_ERR_IO);
    free(data);
    return test_finish("test_gguf");
}
