/* safetensors: header parsing from memory (a valid file, then one hand-made defect per case, each
 * with its precise status and detail; every truncation; byte flips), and model directories
 * (config.json and index variants, renamed tensors, other dtypes) made from the writer's output. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "model/model.h"
#include "model/safetensors.h"
#include "model/writer.h"
#include "test_util.h"

static char g_dir[1024];

static bool g_no_pad; /* set: keep the header length as given (alignment tests) */

/* u64 length | json (padded with spaces to a multiple of 8, as writers do) | data */
static unsigned char *st_make(const char *json, size_t data_bytes, size_t *size) {
    size_t hl = strlen(json), pad = g_no_pad ? 0 : (8 - hl % 8) % 8;
    char *padded = malloc(hl + pad + 1);
    memcpy(padded, json, hl);
    memset(padded + hl, ' ', pad);
    padded[hl + pad] = '\0';
    json = padded;
    hl += pad;
    *size = 8 + hl + data_bytes;
    unsigned char *p = malloc(*size);
    uint64_t l = hl;
    memcpy(p, &l, 8);
    memcpy(p + 8, json, hl);
    for (size_t i = 0; i < data_bytes; i++) p[8 + hl + i] = (unsigned char)i;
    free(padded);
    return p;
}

static void expect_mem(const char *what, const unsigned char *p, size_t size, sym_status want,
                       const char *needle) {
    sym_st_file *f = NULL;
    sym_status st = sym_st_open_memory(p, size, &f);
    CHECK(st == want, "%s: got %s (%s), want %s", what, sym_status_name(st), sym_last_error(),
          sym_status_name(want));
    if (needle)
        CHECK(strstr(sym_last_error(), needle) != NULL, "%s: detail '%s' lacks '%s'", what,
              sym_last_error(), needle);
    CHECK(st == SYM_OK || f == NULL, "%s: object returned on failure", what);
    sym_st_close(f);
}

static void expect_json(const char *what, const char *json, size_t data, const char *needle) {
    size_t size;
    unsigned char *p = st_make(json, data, &size);
    expect_mem(what, p, size, SYM_ERR_FORMAT, needle);
    free(p);
}

#define T_A "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"
#define T_B "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]}"
static const char k_valid[] = "{\"__metadata__\":{\"format\":\"pt\"}," T_B "," T_A "}  ";

static void test_valid(void) {
    size_t size;
    unsigned char *p = st_make(k_valid, 32, &size);
    sym_st_file *f = NULL;
    CHECK_OK(sym_st_open_memory(p, size, &f));
    if (f) {
        CHECK(sym_st_n_tensors(f) == 2, "n %llu", (unsigned long long)sym_st_n_tensors(f));
        const sym_st_tensor *a = sym_st_find(f, "a"), *b = sym_st_find(f, "b");
        CHECK(a && a->dtype == SYM_ST_F32 && a->n_dims == 2 && a->shape[0] == 2 &&
                  a->shape[1] == 3 && a->n_bytes == 24 && a->data == p + size - 32,
              "tensor a");
        CHECK(b && b->dtype == SYM_ST_BF16 && b->n_elems == 4 &&
                  b->file_offset == size - 8,
              "tensor b");
        CHECK(sym_st_tensor_at(f, 0) == a && sym_st_tensor_at(f, 1) == b, "offset order");
        CHECK(sym_st_find(f, "c") == NULL && sym_st_find(f, "__metadata__") == NULL, "find");
        const char *fmt = sym_st_metadata(f, "format");
        CHECK(fmt && !strcmp(fmt, "pt"), "metadata");
        CHECK(sym_st_metadata(f, "other") == NULL, "metadata absent");
    }
    sym_st_close(f);
    /* every prefix is rejected, never read past */
    int bad = 0;
    for (size_t n = 0; n < size; n++) {
        sym_st_file *t = NULL;
        sym_status st = sym_st_open_memory(p, n, &t);
        if (st != SYM_ERR_FORMAT && bad++ < 3)
            CHECK(0, "prefix %zu: %s (%s)", n, sym_status_name(st), sym_last_error());
        sym_st_close(t);
    }
    /* every header byte set to a few values: any status, no crash (ASan watches) */
    for (size_t i = 0; i < size - 32; i++) {
        static const unsigned char vals[] = {0, '"', '{', '}', '[', ']', ',', ':', '9', 0xff, '\\'};
        for (size_t k = 0; k < sizeof vals; k++) {
            unsigned char *q = malloc(size);
            memcpy(q, p, size);
            q[i] = vals[k];
            sym_st_file *t = NULL;
            sym_st_open_memory(q, size, &t);
            sym_st_close(t);
            free(q);
        }
    }
    free(p);
    p = st_make("{}", 0, &size);
    expect_mem("empty object", p, size, SYM_OK, NULL);
    free(p);
}

static void test_header_defects(void) {
    unsigned char small[4] = {1, 0, 0, 0};
    expect_mem("4 bytes", small, 4, SYM_ERR_FORMAT, "too small for the 8-byte header length");
    size_t size;
    unsigned char *p = st_make(k_valid, 32, &size);
    uint64_t l = 1000;
    memcpy(p, &l, 8);
    expect_mem("length > file", p, size, SYM_ERR_FORMAT, "header length 1000 exceeds the file");
    l = UINT64_MAX;
    memcpy(p, &l, 8);
    expect_mem("length 2^64-1", p, size, SYM_ERR_FORMAT, "exceeds the file");
    free(p);

    expect_json("not an object", "[1, 2]", 0, "does not start with '{'");
    expect_json("cut JSON", "{\"a\": {\"dtype\"", 0, "invalid JSON");
    expect_json("trailing bytes", "{} x", 0, "invalid JSON");
    expect_json("single quotes", "{'a': 1}", 0, "expected a double-quoted string");
    expect_json("NaN", "{\"a\":{\"dtype\":\"F32\",\"shape\":[NaN],\"data_offsets\":[0,4]}}", 4,
                "invalid JSON");
    expect_json("bad UTF-8", "{\"\xff\xfe\":{}}", 0, "invalid JSON");
    expect_json("duplicate name", "{" T_A "," T_A "}", 24, "duplicate key 'a'");
    expect_json("duplicate field",
                "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                4, "duplicate key 'dtype'");
    expect_json("escaped duplicate",
                "{" T_A ",\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}",
                24, "duplicate key (written with different escapes)");
    expect_json("unknown dtype", "{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                1, "tensor 'a' has unknown dtype 'Q4'");
    expect_json("dtype type", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                "dtype is not a string");
    expect_json("shape type", "{\"a\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,12]}}",
                12, "shape is not an array");
    expect_json("negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
                4, "shape[0] is not a non-negative integer");
    expect_json("float dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}",
                8, "shape[0] is not a non-negative integer");
    expect_json("9 dims",
                "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
                1, "has 9 dimensions");
    expect_json("count overflow",
                "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,16],"
                "\"data_offsets\":[0,1]}}", 1, "element count overflows");
    expect_json("bytes overflow",
                "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
                "\"data_offsets\":[0,1]}}", 1, "byte size overflows");
    expect_json("huge offset",
                "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
                "\"data_offsets\":[18446744073709551615,18446744073709551615]}}", 1,
                "run past the end of the data");
    expect_json("one offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                "data_offsets is not two non-negative integers");
    expect_json("reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
                "data_offsets [8, 4] end before they begin");
    expect_json("past end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                12, "data_offsets [0, 16] run past the end of the data (12 bytes)");
    expect_json("wrong size", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,8]}}",
                8, "tensor 'a' spans 8 bytes but its shape and dtype F32 need 24");
    expect_json("overlap",
                "{" T_A ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", 24,
                "tensors 'a' and 'b' overlap");
    expect_json("unknown field",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4,
                "tensor 'a' has unknown field 'extra'");
    expect_json("missing field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
                "tensor 'a' lacks 'data_offsets'");
    expect_json("entry type", "{\"a\":[1]}", 0, "entry 'a' is not an object");
    expect_json("metadata type", "{\"__metadata__\":[1]}", 0, "__metadata__ is not an object");
    expect_json("metadata value", "{\"__metadata__\":{\"x\":1}}", 0,
                "__metadata__ value 'x' is not a string");
    expect_json("empty name", "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                "empty name");
    /* F32 data at an odd file offset: 8 + 9-byte... pad the header so data starts at 8 + 4k + 1 */
    char mis[256];
    snprintf(mis, sizeof mis, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
    while (strlen(mis) % 4 != 1) strcat(mis, " ");
    g_no_pad = true;
    expect_json("misaligned", mis, 4, "not aligned to its 4-byte elements");
    g_no_pad = false;
    char deep[512] = "{\"__metadata__\":";
    for (int i = 0; i < 100; i++) strcat(deep, "[");
    expect_json("deep", deep, 0, "invalid JSON");
}

/* A header over the 100 MB cap, in a sparse file (no 100 MB buffer needed). */
static void test_header_cap(void) {
    char path[1200];
    snprintf(path, sizeof path, "%s/huge.safetensors", g_dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    uint64_t l = 150u << 20;
    CHECK(fd >= 0 && write(fd, &l, 8) == 8 && write(fd, "{", 1) == 1 &&
              ftruncate(fd, (off_t)(200u << 20)) == 0,
          "sparse file");
    if (fd >= 0) close(fd);
    sym_st_file *f = NULL;
    CHECK_STATUS(sym_st_open(path, &f), SYM_ERR_FORMAT);
    CHECK(strstr(sym_last_error(), "exceeds the 100 MB cap") != NULL, "%s", sym_last_error());
    unlink(path);
    CHECK_STATUS(sym_st_open("/nonexistent.safetensors", &f), SYM_ERR_IO);
}

/* ---- model directories -------------------------------------------------------------------------- */

static void sh(const char *fmt, const char *a, const char *b) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    CHECK(system(cmd) == 0, "command failed: %s", cmd);
}

/* Copies the reference model dir to a fresh case dir. */
static void fresh(const char *ref, char *dir, size_t cap) {
    snprintf(dir, cap, "%s/case", g_dir);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", dir, ref, dir);
    CHECK(system(cmd) == 0, "command failed: %s", cmd);
}

/* Sets key in dir/config.json to the JSON value text (NULL: removes it). */
static void set_config(const char *dir, const char *key, const char *value) {
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_object *c = json_object_from_file(path);
    CHECK(c != NULL, "read %s", path);
    if (!c) return;
    if (value) json_object_object_add(c, key, json_tokener_parse(value));
    else json_object_object_del(c, key);
    CHECK(json_object_to_file(path, c) == 0, "write %s", path);
    json_object_put(c);
}

static sym_model *expect_dir(const char *what, const char *dir, sym_status want,
                             const char *needle) {
    sym_model *m = NULL;
    sym_status st = sym_model_open(dir, &m);
    CHECK(st == want, "%s: got %s (%s), want %s", what, sym_status_name(st), sym_last_error(),
          sym_status_name(want));
    if (needle)
        CHECK(strstr(sym_last_error(), needle) != NULL, "%s: detail '%s' lacks '%s'", what,
              sym_last_error(), needle);
    return m;
}

static void config_case(const char *ref, const char *key, const char *value, sym_status want,
                        const char *needle) {
    char dir[1200];
    fresh(ref, dir, sizeof dir);
    set_config(dir, key, value);
    sym_model_close(expect_dir(key, dir, want, needle));
}

/* Replaces the first occurrence of `from` by `to` (same length) in a file. */
static void patch_file(const char *path, const char *from, const char *to) {
    size_t n = 0;
    unsigned char *p = test_read_file(path, &n);
    CHECK(p != NULL, "read %s", path);
    if (!p) return;
    unsigned char *hit = memmem(p, n, from, strlen(from));
    CHECK(hit != NULL && strlen(from) == strlen(to), "patch %s", from);
    if (hit) memcpy(hit, to, strlen(to));
    test_write_file(path, p, n);
    free(p);
}

static void test_model_dirs(void) {
    char ref[1200], dir[1200], path[1300];
    snprintf(ref, sizeof ref, "%s/ref", g_dir);
    sh("rm -rf '%s'%s", ref, "");
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    o.format = SYM_MODEL_SAFETENSORS;
    CHECK_OK(sym_make_model(&o, ref));
    sym_model *m = expect_dir("reference", ref, SYM_OK, NULL);
    CHECK(m && sym_model_tokenizer_json(m) && strstr(sym_model_tokenizer_json(m), "tokenizer.json"),
          "tokenizer.json path");
    sym_model_close(m);
    /* the .safetensors file itself opens too (config.json beside it) */
    snprintf(path, sizeof path, "%s/model.safetensors", ref);
    sym_model_close(expect_dir("file path", path, SYM_OK, NULL));

    config_case(ref, "model_type", "\"gemma\"", SYM_ERR_UNSUPPORTED,
                "model_type 'gemma' is not supported");
    config_case(ref, "model_type", "\"mistral\"", SYM_OK, NULL);
    config_case(ref, "hidden_act", "\"gelu\"", SYM_ERR_UNSUPPORTED, "hidden_act 'gelu'");
    config_case(ref, "rope_scaling", "{\"type\":\"yarn\",\"factor\":4.0}", SYM_ERR_UNSUPPORTED,
                "RoPE scaling type 'yarn' is not supported");
    config_case(ref, "rope_scaling", "{\"rope_type\":\"llama3\",\"factor\":8.0}",
                SYM_ERR_UNSUPPORTED, "'llama3'");
    config_case(ref, "rope_scaling", "{\"factor\":2.0}", SYM_ERR_FORMAT, "rope_scaling has no type");
    config_case(ref, "vocab_size", "516", SYM_ERR_FORMAT,
                "tensor 'model.embed_tokens.weight' (token_embd.weight) has shape [515, 80] but "
                "[516, 80] is expected");
    config_case(ref, "hidden_size", NULL, SYM_ERR_FORMAT, "config.json: missing key 'hidden_size'");
    config_case(ref, "hidden_size", "\"80\"", SYM_ERR_FORMAT, "'hidden_size' is not an integer");
    config_case(ref, "hidden_size", "-80", SYM_ERR_FORMAT, "'hidden_size' = -80 is out of range");
    config_case(ref, "num_key_value_heads", "3", SYM_ERR_FORMAT,
                "n_head 4 is not a multiple of n_head_kv 3");
    config_case(ref, "num_hidden_layers", "1", SYM_ERR_FORMAT,
                "unexpected tensor 'model.layers.1.");
    config_case(ref, "attention_bias", "true", SYM_ERR_UNSUPPORTED, "with biases");
    config_case(ref, "rms_norm_eps", "0", SYM_ERR_FORMAT, "rms_norm_eps 0");
    config_case(ref, "tie_word_embeddings", "true", SYM_OK, NULL); /* lm_head ignored, as HF does */

    fresh(ref, dir, sizeof dir);
    set_config(dir, "rope_scaling", "{\"rope_type\":\"linear\",\"factor\":2.0}");
    m = expect_dir("linear", dir, SYM_OK, NULL);
    CHECK(m && sym_model_hparams(m)->rope_freq_scale == 0.5f && sym_model_hparams(m)->rope_neox == 1,
          "linear scaling");
    sym_model_close(m);

    fresh(ref, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/config.json", dir);
    test_write_file(path, "{\"model_type\": ", 15);
    sym_model_close(expect_dir("cut config", dir, SYM_ERR_FORMAT, "config.json: invalid JSON"));
    unlink(path);
    sym_model_close(expect_dir("no config", dir, SYM_ERR_IO, "no config.json"));

    fresh(ref, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    patch_file(path, "\"F16\"", "\"I16\"");
    sym_model_close(expect_dir("I16", dir, SYM_ERR_UNSUPPORTED,
                               "tensor model.embed_tokens.weight (token_embd.weight) is I16: "
                               "Symbiote runs unquantized models"));
    fresh(ref, dir, sizeof dir);
    patch_file(path, "model.norm.weight", "model.nrom.weight");
    sym_model_close(expect_dir("renamed", dir, SYM_ERR_FORMAT,
                               "unexpected tensor 'model.nrom.weight'"));
    fresh(ref, dir, sizeof dir);
    patch_file(path, "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.up_prox.weight");
    sym_model_close(expect_dir("unknown name", dir, SYM_ERR_FORMAT, "model.layers.0.mlp.up_pro"));
}

static void test_index(void) {
    char ref[1200], dir[1200], path[1300];
    snprintf(ref, sizeof ref, "%s/ref_sharded", g_dir);
    sh("rm -rf '%s'%s", ref, "");
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    o.format = SYM_MODEL_SAFETENSORS;
    o.shard_bytes = 100000;
    CHECK_OK(sym_make_model(&o, ref));
    sym_model *m = expect_dir("sharded", ref, SYM_OK, NULL);
    int n_files = m ? sym_model_n_files(m) : 0;
    CHECK(n_files >= 3, "%d shards", n_files);
    sym_model_close(m);
    char shard1[64], shard2[64];
    snprintf(shard1, sizeof shard1, "model-00001-of-%05d.safetensors", n_files);
    snprintf(shard2, sizeof shard2, "model-00002-of-%05d.safetensors", n_files);

    fresh(ref, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    char evil[64] = "../";
    while (strlen(evil) + 12 < strlen(shard1)) strcat(evil, "x");
    strcat(evil, ".safetensors");
    patch_file(path, shard1, evil);
    sym_model_close(expect_dir("traversal", dir, SYM_ERR_FORMAT, "is not a file name in the "
                                                                 "model's directory"));
    fresh(ref, dir, sizeof dir);
    patch_file(path, "model.norm.weight", "model.nrom.weight");
    sym_model_close(expect_dir("unlisted", dir, SYM_ERR_FORMAT, "the index does not list it"));
    fresh(ref, dir, sizeof dir);
    /* the embeddings are in shard 1: point them at shard 2 */
    char from[128], to[128];
    snprintf(from, sizeof from, "\"model.embed_tokens.weight\": \"%s\"", shard1);
    snprintf(to, sizeof to, "\"model.embed_tokens.weight\": \"%s\"", shard2);
    patch_file(path, from, to);
    sym_model_close(expect_dir("wrong shard", dir, SYM_ERR_FORMAT, "but the index maps it to"));
    fresh(ref, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s", dir, shard2);
    unlink(path);
    sym_model_close(expect_dir("missing shard", dir, SYM_ERR_IO, "cannot open"));
    fresh(ref, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    test_write_file(path, "{\"weight_map\": {}}", 18);
    sym_model_close(expect_dir("empty map", dir, SYM_ERR_FORMAT, "weight_map is empty"));
    test_write_file(path, "{\"weight_map\": {\"a\": 3}}", 24);
    sym_model_close(expect_dir("map value", dir, SYM_ERR_FORMAT, "weight_map['a'] is not a string"));
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/tests/test_safetensors.tmp", SYM_BUILD_DIR);
    mkdir(g_dir, 0755);
    test_valid();
    test_header_defects();
    test_header_cap();
    test_model_dirs();
    test_index();
    return test_finish("test_safetensors");
}
