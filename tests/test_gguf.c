/* GGUF reader: the real shared model parses with the right metadata and tensor table, and every
 * truncation and a set of targeted corruptions of it give SYM_ERR_FORMAT (never a crash; run
 * under ASan in CI). */
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

int main(void) {
    char path[1024];
    size_t size = 0;
    unsigned char *data =
        test_read_file(test_shared_path("models/aidreams260K.gguf", path, sizeof path), &size);
    CHECK(data != NULL, "cannot read %s", path);
    test_real_model();
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
