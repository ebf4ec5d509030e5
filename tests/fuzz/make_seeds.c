/* Writes the fuzzers' seed files (a few hundred bytes each) into DIR/fuzz_gguf/, DIR/fuzz_model/
 * and DIR/fuzz_safetensors/: a minimal GGUF, one with every value type, two tiny models (llama
 * f32, qwen2 f16), a safetensors file, a config.json and a shard index. Run it after changing the
 * formats: build-fuzz/tests/fuzz/make_fuzz_seeds tests/fuzz/seeds */
#include <stdio.h>
#include <sys/stat.h>

#include "gguf_build.h"

static char g_dir[1024];

static void put(const char *sub, const char *name, const void *p, size_t n) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", g_dir, sub);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", g_dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void put_gguf(const gguf_builder *g, const char *name) {
    size_t n;
    unsigned char *p = gb_finish(g, &n);
    put("fuzz_gguf", name, p, n);
    put("fuzz_model", name, p, n);
    free(p);
}

static void tiny_model(const char *arch, uint32_t type, size_t elem, const char *name) {
    gguf_builder g;
    gb_init(&g);
    char key[64];
    gb_kv_str(&g, "general.architecture", arch);
    const char *dims[][2] = {{"embedding_length", "4"}, {"block_count", "1"},
                             {"attention.head_count", "2"}, {"attention.head_count_kv", "1"},
                             {"feed_forward_length", "6"}, {"context_length", "8"}};
    for (int i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, dims[i][0]);
        gb_kv_u32(&g, key, (uint32_t)atoi(dims[i][1]));
    }
    gb_kv_tokens(&g, "tokenizer.ggml.tokens", 3);
    gb_tensor(&g, "token_embd.weight", 4, 3, type, elem);
    gb_tensor(&g, "output_norm.weight", 4, 0, type, elem);
    gb_tensor(&g, "blk.0.attn_norm.weight", 4, 0, type, elem);
    gb_tensor(&g, "blk.0.attn_q.weight", 4, 4, type, elem);
    gb_tensor(&g, "blk.0.attn_k.weight", 4, 2, type, elem);
    gb_tensor(&g, "blk.0.attn_v.weight", 4, 2, type, elem);
    if (!strcmp(arch, "qwen2")) {
        gb_tensor(&g, "blk.0.attn_q.bias", 4, 0, type, elem);
        gb_tensor(&g, "blk.0.attn_k.bias", 2, 0, type, elem);
        gb_tensor(&g, "blk.0.attn_v.bias", 2, 0, type, elem);
    }
    gb_tensor(&g, "blk.0.attn_output.weight", 4, 4, type, elem);
    gb_tensor(&g, "blk.0.ffn_norm.weight", 4, 0, type, elem);
    gb_tensor(&g, "blk.0.ffn_gate.weight", 4, 6, type, elem);
    gb_tensor(&g, "blk.0.ffn_up.weight", 4, 6, type, elem);
    gb_tensor(&g, "blk.0.ffn_down.weight", 6, 4, type, elem);
    put_gguf(&g, name);
    gb_free(&g);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEED_DIR\n", argv[0]);
        return 2;
    }
    snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
    mkdir(g_dir, 0755);
    gguf_builder g;
    gb_init(&g);
    put_gguf(&g, "empty.gguf");
    gb_free(&g);

    gb_init(&g);
    gb_kv_u32(&g, "general.alignment", 64);
    gb_kv_str(&g, "s", "text");
    gb_kv_f32(&g, "f", 1.5f);
    gb_kv_bool(&g, "b", 1);
    for (uint32_t t = 0; t <= 12; t++) {
        if (t == 8 || t == 9) continue;
        static const uint8_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        char key[16];
        snprintf(key, sizeof key, "k%u", t);
        gb_key(&g, key, t);
        gb_put(&g.kvs, "\x01\0\0\0\0\0\0\0", sz[t]);
        snprintf(key, sizeof key, "a%u", t);
        gb_key(&g, key, 9);
        gb_u32(&g.kvs, t);
        gb_u64(&g.kvs, 2);
        gb_put(&g.kvs, "\x01\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0", 2u * sz[t]);
    }
    gb_kv_tokens(&g, "strs", 3);
    g.alignment = 64;
    gb_tensor(&g, "f16", 3, 2, 1, 2);
    gb_tensor(&g, "bf16", 5, 0, 30, 2);
    put_gguf(&g, "types.gguf");
    gb_free(&g);

    tiny_model("llama", 0, 4, "llama_f32.gguf");
    tiny_model("qwen2", 1, 2, "qwen2_f16.gguf");

    static const char st[] =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"lm_head.weight\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[8,16]}}";
    size_t hl = sizeof st - 1, pad = (8 - hl % 8) % 8;
    unsigned char buf[512] = {0};
    uint64_t len = hl + pad;
    memcpy(buf, &len, 8);
    memcpy(buf + 8, st, hl);
    memset(buf + 8 + hl, ' ', pad);
    put("fuzz_safetensors", "model.safetensors", buf, 8 + len + 16);
    static const char cfg[] =
        "{\"model_type\": \"llama\", \"hidden_size\": 8, \"num_hidden_layers\": 1, "
        "\"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"intermediate_size\": 12, "
        "\"vocab_size\": 10, \"max_position_embeddings\": 64, \"rope_theta\": 10000.0, "
        "\"rms_norm_eps\": 1e-05, \"tie_word_embeddings\": false, \"bos_token_id\": [1, 2], "
        "\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2.0}, \"hidden_act\": \"silu\"}";
    put("fuzz_safetensors", "config.json", cfg, sizeof cfg - 1);
    static const char ix[] =
        "{\"metadata\": {\"total_size\": 24}, \"weight_map\": {\"model.norm.weight\": "
        "\"model-00001-of-00002.safetensors\", \"lm_head.weight\": "
        "\"model-00002-of-00002.safetensors\"}}";
    put("fuzz_safetensors", "index.json", ix, sizeof ix - 1);
    return 0;
}
