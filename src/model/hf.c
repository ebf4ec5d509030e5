#include "model/hf.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "model/arch.h"
#include "model/json.h"

#define CONFIG_MAX_BYTES (16u << 20)
#define INDEX_MAX_BYTES (64u << 20)
#define INDEX_MAX_FILES 65536

static const char k_cfg[] = "config.json";

/* ---- config.json ------------------------------------------------------------------------------- */

static sym_status get_dim(json_object *root, const char *key, int64_t max, bool required,
                          int *out) {
    int64_t v = -1;
    if (required) SYM_TRY(sym_json_get_int(k_cfg, root, key, 1, max, &v));
    else SYM_TRY(sym_json_get_int_opt(k_cfg, root, key, 1, max, &v));
    if (v > 0) *out = (int)v;
    return SYM_OK;
}

/* bos_token_id / eos_token_id: an integer, a list of integers (the first counts) or absent. */
static sym_status get_token_id(json_object *root, const char *key, int64_t *out) {
    json_object *v = NULL;
    *out = -1;
    if (!json_object_object_get_ex(root, key, &v) || !v) return SYM_OK;
    if (json_object_is_type(v, json_type_array)) {
        if (json_object_array_length(v) == 0) return SYM_OK;
        v = json_object_array_get_idx(v, 0);
    }
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
        json_object_get_int64(v) >= SYM_ARCH_MAX_DIM)
        return SYM_FAIL(SYM_ERR_FORMAT, "config.json: '%s' is not a token id", key);
    *out = json_object_get_int64(v);
    return SYM_OK;
}

static sym_status get_rope_scaling(json_object *root, sym_hparams *hp) {
    json_object *rs = NULL;
    char nb[48];
    if (!json_object_object_get_ex(root, "rope_scaling", &rs) || !rs) return SYM_OK;
    if (!json_object_is_type(rs, json_type_object))
        return SYM_FAIL(SYM_ERR_FORMAT, "config.json: rope_scaling is not an object");
    const char *type = NULL;
    SYM_TRY(sym_json_get_str_opt(k_cfg, rs, "rope_type", &type));
    if (!type) SYM_TRY(sym_json_get_str_opt(k_cfg, rs, "type", &type));
    if (!type) return SYM_FAIL(SYM_ERR_FORMAT, "config.json: rope_scaling has no type");
    if (!strcmp(type, "default")) return SYM_OK;
    if (strcmp(type, "linear") != 0)
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "config.json: RoPE scaling type '%s' is not "
                        "supported (only linear)", sym_json_show(type, nb));
    double factor = 0.0;
    SYM_TRY(sym_json_get_num_opt(k_cfg, rs, "factor", &factor));
    if (!(factor > 0.0) || factor > 1e6)
        return SYM_FAIL(SYM_ERR_FORMAT, "config.json: rope_scaling factor %g is not a positive "
                        "number", factor);
    hp->rope_freq_scale = (float)(1.0 / factor);
    return SYM_OK;
}

static sym_status parse_config(json_object *root, sym_hf_config *out) {
    char nb[48];
    sym_hparams *hp = &out->hp;
    if (!json_object_is_type(root, json_type_object))
        return SYM_FAIL(SYM_ERR_FORMAT, "config.json: not a JSON object");
    const char *mt;
    SYM_TRY(sym_json_get_str(k_cfg, root, "model_type", &mt));
    bool mixtral = !strcmp(mt, "mixtral");
    if (!strcmp(mt, "llama") || !strcmp(mt, "mistral") || mixtral)
        SYM_TRY(sym_arch_init(hp, "llama"));
    else if (!strcmp(mt, "qwen2")) SYM_TRY(sym_arch_init(hp, "qwen2"));
    else
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "config.json: model_type '%s' is not supported "
                        "(llama, mistral, mixtral, qwen2)", sym_json_show(mt, nb));
    if (mixtral) { /* experts stored apart: block_sparse_moe.experts.E.w1/w2/w3 */
        SYM_TRY(get_dim(root, "num_local_experts", SYM_ARCH_MAX_EXPERTS, true, &hp->n_expert));
        SYM_TRY(get_dim(root, "num_experts_per_tok", hp->n_expert, true, &hp->n_expert_used));
        hp->expert_split = true;
    }
    hp->rope_neox = 1; /* HF checkpoints keep Q/K rows in the rotate_half layout */

    SYM_TRY(get_dim(root, "hidden_size", SYM_ARCH_MAX_DIM, true, &hp->n_embd));
    SYM_TRY(get_dim(root, "num_hidden_layers", SYM_ARCH_MAX_LAYERS, true, &hp->n_layer));
    SYM_TRY(get_dim(root, "num_attention_heads", SYM_ARCH_MAX_DIM, true, &hp->n_head));
    hp->n_head_kv = hp->n_head;
    SYM_TRY(get_dim(root, "num_key_value_heads", SYM_ARCH_MAX_DIM, false, &hp->n_head_kv));
    SYM_TRY(get_dim(root, "intermediate_size", SYM_ARCH_MAX_DIM, true, &hp->n_ff));
    SYM_TRY(get_dim(root, "vocab_size", SYM_ARCH_MAX_DIM, true, &hp->n_vocab));
    SYM_TRY(get_dim(root, "max_position_embeddings", SYM_ARCH_MAX_CTX, true, &hp->n_ctx_train));
    SYM_TRY(get_dim(root, "head_dim", SYM_ARCH_MAX_HEAD_DIM, false, &hp->head_dim));
    if (hp->head_dim == 0) {
        if (hp->n_embd % hp->n_head != 0)
            return SYM_FAIL(SYM_ERR_FORMAT, "config.json: hidden_size %d is not a multiple of "
                            "num_attention_heads %d", hp->n_embd, hp->n_head);
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    double theta = 10000.0, eps = 1e-6;
    SYM_TRY(sym_json_get_num_opt(k_cfg, root, "rope_theta", &theta));
    SYM_TRY(sym_json_get_num_opt(k_cfg, root, "rms_norm_eps", &eps));
    if (!(theta > 0.0 && theta < 1e30) || !(eps > 0.0 && eps <= 1.0))
        return SYM_FAIL(SYM_ERR_FORMAT, "config.json: rope_theta %g or rms_norm_eps %g is out of "
                        "range", theta, eps);
    hp->rope_theta = (float)theta;
    hp->rms_eps = (float)eps;
    hp->rope_freq_scale = 1.0f;
    SYM_TRY(get_rope_scaling(root, hp));
    int tie = 0, attn_bias = 0, mlp_bias = 0, sliding = 0;
    SYM_TRY(sym_json_get_bool_opt(k_cfg, root, "tie_word_embeddings", &tie));
    hp->tied_embeddings = tie != 0;
    SYM_TRY(sym_json_get_bool_opt(k_cfg, root, "attention_bias", &attn_bias));
    SYM_TRY(sym_json_get_bool_opt(k_cfg, root, "mlp_bias", &mlp_bias));
    if ((attn_bias && !hp->qkv_bias) || mlp_bias)
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "config.json: %s projections with biases are not "
                        "supported", mlp_bias ? "MLP" : "llama attention");
    if (!strcmp(mt, "qwen2")) {
        SYM_TRY(sym_json_get_bool_opt(k_cfg, root, "use_sliding_window", &sliding));
        if (sliding)
            return SYM_FAIL(SYM_ERR_UNSUPPORTED, "config.json: qwen2 sliding-window attention "
                            "(use_sliding_window) is not supported");
    }
    const char *act = NULL;
    SYM_TRY(sym_json_get_str_opt(k_cfg, root, "hidden_act", &act));
    if (act && strcmp(act, "silu") != 0)
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "config.json: hidden_act '%s' is not supported "
                        "(silu)", sym_json_show(act, nb));
    SYM_TRY(get_token_id(root, "bos_token_id", &out->bos_id));
    SYM_TRY(get_token_id(root, "eos_token_id", &out->eos_id));
    sym_status st = sym_arch_check_hparams(hp);
    if (st != SYM_OK) sym_error_prefix("config.json");
    return st;
}

sym_status sym_hf_config_parse(const char *text, size_t len, sym_hf_config *out) {
    memset(out, 0, sizeof *out);
    json_object *root = NULL;
    SYM_TRY(sym_json_parse(k_cfg, text, len, &root));
    sym_status st = parse_config(root, out);
    json_object_put(root);
    return st;
}

sym_status sym_hf_config_load(const char *path, sym_hf_config *out) {
    char *text = NULL;
    size_t len = 0;
    SYM_TRY(sym_json_read_file(path, CONFIG_MAX_BYTES, &text, &len));
    sym_status st = sym_hf_config_parse(text, len, out);
    sym_free(text);
    return st;
}

/* ---- model.safetensors.index.json ------------------------------------------------------------- */

typedef struct ix_entry {
    char *tensor;
    int file;
    const char *file_name; /* into the JSON tree, during parsing only */
} ix_entry;

struct sym_hf_index {
    ix_entry *entries; /* sorted by tensor name */
    uint64_t n_entries;
    char **files;      /* sorted by name: shards are numbered, so this is their natural order */
    int n_files;
};

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const ix_entry *)a)->tensor, ((const ix_entry *)b)->tensor);
}

static int cmp_entry_file(const void *a, const void *b) {
    return strcmp(((const ix_entry *)a)->file_name, ((const ix_entry *)b)->file_name);
}

static bool plain_file_name(const char *s) {
    size_t n = strlen(s);
    return n > 0 && n < 256 && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static sym_status parse_index(json_object *root, sym_hf_index *ix) {
    char nb[48], nb2[48];
    const char *w = "model.safetensors.index.json";
    json_object *map = NULL;
    if (!json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "weight_map", &map) ||
        !json_object_is_type(map, json_type_object))
        return SYM_FAIL(SYM_ERR_FORMAT, "%s: no \"weight_map\" object", w);
    size_t n = (size_t)json_object_object_length(map);
    if (n == 0) return SYM_FAIL(SYM_ERR_FORMAT, "%s: weight_map is empty", w);
    ix->entries = sym_calloc(n, sizeof *ix->entries);
    if (!ix->entries) return SYM_FAIL(SYM_ERR_OOM, "%s: out of memory", w);
    struct json_object_iter it;
    json_object_object_foreachC(map, it) {
        if (!json_object_is_type(it.val, json_type_string))
            return SYM_FAIL(SYM_ERR_FORMAT, "%s: weight_map['%s'] is not a string", w,
                            sym_json_show(it.key, nb));
        const char *file = json_object_get_string(it.val);
        if (!plain_file_name(file))
            return SYM_FAIL(SYM_ERR_FORMAT, "%s: weight_map['%s'] = '%s' is not a file name in "
                            "the model's directory", w, sym_json_show(it.key, nb),
                            sym_json_show(file, nb2));
        ix_entry *e = &ix->entries[ix->n_entries++];
        e->file_name = file;
        if (!(e->tensor = sym_strdup(it.key))) return SYM_FAIL(SYM_ERR_OOM, "%s: out of memory", w);
    }
    /* distinct files: sort by file name, number the runs */
    qsort(ix->entries, ix->n_entries, sizeof *ix->entries, cmp_entry_file);
    int n_files = 0;
    for (uint64_t i = 0; i < ix->n_entries; i++)
        if (i == 0 || strcmp(ix->entries[i].file_name, ix->entries[i - 1].file_name) != 0)
            n_files++;
    if (n_files > INDEX_MAX_FILES)
        return SYM_FAIL(SYM_ERR_FORMAT, "%s: %d shard files (at most %d)", w, n_files,
                        INDEX_MAX_FILES);
    ix->files = sym_calloc((size_t)n_files, sizeof *ix->files);
    if (!ix->files) return SYM_FAIL(SYM_ERR_OOM, "%s: out of memory", w);
    const char *prev = NULL;
    for (uint64_t i = 0; i < ix->n_entries; i++) {
        ix_entry *e = &ix->entries[i];
        if (!prev || strcmp(e->file_name, prev) != 0) {
            if (!(ix->files[ix->n_files] = sym_strdup(e->file_name)))
                return SYM_FAIL(SYM_ERR_OOM, "%s: out of memory", w);
            ix->n_files++;
        }
        e->file = ix->n_files - 1;
        prev = e->file_name;
    }
    for (uint64_t i = 0; i < ix->n_entries; i++) ix->entries[i].file_name = NULL;
    qsort(ix->entries, ix->n_entries, sizeof *ix->entries, cmp_entry);
    return SYM_OK;
}

sym_status sym_hf_index_parse(const char *text, size_t len, sym_hf_index **out) {
    *out = NULL;
    json_object *root = NULL;
    SYM_TRY(sym_json_parse("model.safetensors.index.json", text, len, &root));
    sym_hf_index *ix = sym_calloc(1, sizeof *ix);
    sym_status st = ix ? parse_index(root, ix) : SYM_FAIL(SYM_ERR_OOM, "index: out of memory");
    json_object_put(root);
    if (st != SYM_OK) {
        sym_hf_index_destroy(ix);
        return st;
    }
    *out = ix;
    return SYM_OK;
}

sym_status sym_hf_index_load(const char *path, sym_hf_index **out) {
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    SYM_TRY(sym_json_read_file(path, INDEX_MAX_BYTES, &text, &len));
    sym_status st = sym_hf_index_parse(text, len, out);
    sym_free(text);
    return st;
}

void sym_hf_index_destroy(sym_hf_index *ix) {
    if (!ix) return;
    for (uint64_t i = 0; i < ix->n_entries; i++) sym_free(ix->entries[i].tensor);
    for (int i = 0; i < ix->n_files; i++) sym_free(ix->files[i]);
    sym_free(ix->entries);
    sym_free(ix->files);
    sym_free(ix);
}

int sym_hf_index_n_files(const sym_hf_index *ix) { return ix->n_files; }
const char *sym_hf_index_file(const sym_hf_index *ix, int i) { return ix->files[i]; }
uint64_t sym_hf_index_n_entries(const sym_hf_index *ix) { return ix->n_entries; }

int sym_hf_index_lookup(const sym_hf_index *ix, const char *tensor) {
    ix_entry key = {(char *)tensor, 0, NULL};
    const ix_entry *e = bsearch(&key, ix->entries, ix->n_entries, sizeof key, cmp_entry);
    return e ? e->file : -1;
}
