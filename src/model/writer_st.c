/* writer_st.c — a synthetic model as a Hugging Face directory: config.json, tokenizer.json and
 * model.safetensors, or model-0000k-of-0000n.safetensors shards + model.safetensors.index.json
 * when the weights exceed shard_bytes. Everything is written into a fresh temporary directory
 * beside the target, which is renamed into place at the end. Q/K rows of llama models are stored
 * in HF's rotate_half order (see sym_make_model_gguf_row). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "base/alloc.h"
#include "model/writer_internal.h"

typedef struct planned {
    sym_tensor_spec spec;
    char hf_name[96];
    uint64_t n_bytes, begin; /* begin: offset in its shard's data region */
    int shard;
} planned;

/* json-c reports allocation failure by returning NULL; collect it in one flag. */
static json_object *jset(json_object *o, const char *key, json_object *v, bool *oom) {
    if (!o || !v || json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        *oom = true;
    }
    return v;
}

static json_object *jpush(json_object *arr, json_object *v, bool *oom) {
    if (!arr || !v || json_object_array_add(arr, v) != 0) {
        json_object_put(v);
        *oom = true;
    }
    return v;
}

static const char *st_dtype(sym_dtype t) {
    return t == SYM_DT_F32 ? "F32" : t == SYM_DT_F16 ? "F16" : "BF16";
}

static sym_status dump_json(json_object *o, bool oom, const char *path) {
    if (oom) return SYM_FAIL(SYM_ERR_OOM, "make-model: out of memory building '%s'", path);
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE,
        &len);
    if (!s) return SYM_FAIL(SYM_ERR_OOM, "make-model: out of memory writing '%s'", path);
    return sym_wfile_put(path, s, len);
}

static sym_status write_config(const sym_writer *w, const char *path) {
    const sym_hparams *hp = &w->hp;
    bool oom = false, qwen = !strcmp(hp->arch, "qwen2");
    json_object *c = json_object_new_object();
    json_object *archs = jset(c, "architectures", json_object_new_array(), &oom);
    bool moe = hp->n_expert > 0;
    jpush(archs, json_object_new_string(qwen  ? "Qwen2ForCausalLM"
                                        : moe ? "MixtralForCausalLM"
                                              : "LlamaForCausalLM"),
          &oom);
    jset(c, "model_type", json_object_new_string(moe ? "mixtral" : hp->arch), &oom);
    if (moe) {
        jset(c, "num_local_experts", json_object_new_int(hp->n_expert), &oom);
        jset(c, "num_experts_per_tok", json_object_new_int(hp->n_expert_used), &oom);
    }
    jset(c, "hidden_size", json_object_new_int(hp->n_embd), &oom);
    jset(c, "intermediate_size", json_object_new_int(hp->n_ff), &oom);
    jset(c, "num_hidden_layers", json_object_new_int(hp->n_layer), &oom);
    jset(c, "num_attention_heads", json_object_new_int(hp->n_head), &oom);
    jset(c, "num_key_value_heads", json_object_new_int(hp->n_head_kv), &oom);
    jset(c, "head_dim", json_object_new_int(hp->head_dim), &oom);
    jset(c, "vocab_size", json_object_new_int(hp->n_vocab), &oom);
    jset(c, "max_position_embeddings", json_object_new_int(hp->n_ctx_train), &oom);
    jset(c, "rope_theta", json_object_new_double(hp->rope_theta), &oom);
    jset(c, "rms_norm_eps", json_object_new_double(hp->rms_eps), &oom);
    jset(c, "tie_word_embeddings", json_object_new_boolean(hp->tied_embeddings), &oom);
    jset(c, "hidden_act", json_object_new_string("silu"), &oom);
    jset(c, "torch_dtype", json_object_new_string(w->o->dtype == SYM_DT_F32   ? "float32"
                                                  : w->o->dtype == SYM_DT_F16 ? "float16"
                                                                              : "bfloat16"),
         &oom);
    if (qwen) jset(c, "use_sliding_window", json_object_new_boolean(0), &oom);
    else jset(c, "attention_bias", json_object_new_boolean(0), &oom);
    if (w->vocab.bos >= 0) jset(c, "bos_token_id", json_object_new_int64(w->vocab.bos), &oom);
    if (w->vocab.eos >= 0) jset(c, "eos_token_id", json_object_new_int64(w->vocab.eos), &oom);
    jset(c, "symbiote_seed", json_object_new_uint64(w->o->seed), &oom);
    sym_status st = dump_json(c, oom || !c, path);
    json_object_put(c);
    return st;
}

static void shard_name(char *buf, size_t cap, int k, int n) {
    if (n == 1) snprintf(buf, cap, "model.safetensors");
    else snprintf(buf, cap, "model-%05d-of-%05d.safetensors", k + 1, n);
}

static sym_status write_index(const planned *p, uint64_t n, int n_shards, uint64_t total,
                              const char *path) {
    bool oom = false;
    char name[64];
    json_object *ix = json_object_new_object();
    json_object *meta = jset(ix, "metadata", json_object_new_object(), &oom);
    jset(meta, "total_size", json_object_new_uint64(total), &oom);
    json_object *map = jset(ix, "weight_map", json_object_new_object(), &oom);
    for (uint64_t i = 0; i < n && !oom; i++) {
        shard_name(name, sizeof name, p[i].shard, n_shards);
        jset(map, p[i].hf_name, json_object_new_string(name), &oom);
    }
    sym_status st = dump_json(ix, oom || !ix, path);
    json_object_put(ix);
    return st;
}

/* One shard: u64 header length, the JSON header padded with spaces to a multiple of 8, data. */
static sym_status write_shard(sym_writer *w, const planned *p, uint64_t n, int k,
                              const char *path) {
    bool oom = false;
    json_object *h = json_object_new_object();
    json_object *meta = jset(h, "__metadata__", json_object_new_object(), &oom);
    jset(meta, "format", json_object_new_string("pt"), &oom);
    for (uint64_t i = 0; i < n && !oom; i++) {
        if (p[i].shard != k) continue;
        json_object *t = jset(h, p[i].hf_name, json_object_new_object(), &oom);
        jset(t, "dtype", json_object_new_string(st_dtype(w->o->dtype)), &oom);
        json_object *shape = jset(t, "shape", json_object_new_array(), &oom);
        uint64_t dims[3];
        uint32_t n_dims = sym_arch_spec_dims(&p[i].spec, false, dims);
        for (uint32_t d = 0; d < n_dims; d++)
            jpush(shape, json_object_new_int64((int64_t)dims[d]), &oom);
        json_object *offs = jset(t, "data_offsets", json_object_new_array(), &oom);
        jpush(offs, json_object_new_uint64(p[i].begin), &oom);
        jpush(offs, json_object_new_uint64(p[i].begin + p[i].n_bytes), &oom);
    }
    size_t len = 0;
    const char *s = (oom || !h) ? NULL
                                : json_object_to_json_string_length(h, JSON_C_TO_STRING_PLAIN |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE,
                                                                    &len);
    if (!s) {
        json_object_put(h);
        return SYM_FAIL(SYM_ERR_OOM, "make-model: out of memory for a safetensors header");
    }
    sym_wfile f;
    sym_status st = sym_wfile_open(&f, path);
    if (st != SYM_OK) {
        json_object_put(h);
        return st;
    }
    uint64_t padded = (len + 7) / 8 * 8;
    st = sym_wfile_write(&f, &padded, 8);
    if (st == SYM_OK) st = sym_wfile_write(&f, s, len);
    json_object_put(h);
    for (uint64_t i = len; st == SYM_OK && i < padded; i++) st = sym_wfile_write(&f, " ", 1);
    for (uint64_t i = 0; st == SYM_OK && i < n; i++)
        if (p[i].shard == k) st = sym_writer_stream(w, &f, &p[i].spec, true);
    if (st == SYM_OK) return sym_wfile_commit(&f);
    sym_wfile_abort(&f);
    return st;
}

/* Removes the temporary directory and what we wrote into it (nothing else can be inside: we
 * created it). */
static void remove_tmp_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        const struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char path[4096];
            if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

sym_status sym_writer_safetensors(sym_writer *w, const char *dir) {
    sym_status st = SYM_OK;
    planned *p = NULL;
    char *text = NULL, tmp[4096], path[4200], name[64];
    bool made = false;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid()) >= sizeof tmp)
        return SYM_FAIL(SYM_ERR_ARG, "make-model: output path too long");
    uint64_t n_specs = sym_arch_n_specs(&w->hp), n = 0;
    if (!(p = sym_calloc((size_t)n_specs, sizeof *p)))
        SYM_FAIL_GOTO(SYM_ERR_OOM, "make-model: out of memory");
    /* shards fill in order; a tensor larger than shard_bytes gets a shard of its own */
    int shard = 0;
    uint64_t used = 0;
    for (uint64_t i = 0; i < n_specs; i++) {
        planned *t = &p[n];
        sym_arch_spec_at(&w->hp, i, &t->spec);
        if (t->spec.optional && w->hp.tied_embeddings) continue;
        bool ok = sym_arch_internal_to_hf(t->spec.name, t->hf_name, sizeof t->hf_name);
        SYM_ASSERT(ok);
        t->n_bytes = sym_writer_tensor_bytes(w, &t->spec);
        if (w->o->shard_bytes && used > 0 && used + t->n_bytes > w->o->shard_bytes) {
            shard++;
            used = 0;
        }
        t->shard = shard;
        t->begin = used;
        used += t->n_bytes;
        n++;
    }
    int n_shards = shard + 1;

    if (mkdir(tmp, 0755) != 0)
        SYM_FAIL_GOTO(SYM_ERR_IO, "make-model: cannot create '%s': %s", tmp, strerror(errno));
    made = true;
    for (int k = 0; k < n_shards; k++) {
        shard_name(name, sizeof name, k, n_shards);
        snprintf(path, sizeof path, "%s/%s", tmp, name);
        SYM_TRY_GOTO(write_shard(w, p, n, k, path));
    }
    if (n_shards > 1) {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", tmp);
        SYM_TRY_GOTO(write_index(p, n, n_shards, w->total_bytes, path));
    }
    snprintf(path, sizeof path, "%s/config.json", tmp);
    SYM_TRY_GOTO(write_config(w, path));
    size_t len = 0;
    SYM_TRY_GOTO(sym_wvocab_tokenizer_json(&w->vocab, &text, &len));
    snprintf(path, sizeof path, "%s/tokenizer.json", tmp);
    SYM_TRY_GOTO(sym_wfile_put(path, text, len));
    if (rename(tmp, dir) != 0)
        SYM_FAIL_GOTO(SYM_ERR_IO, "make-model: cannot rename '%s' to '%s': %s", tmp, dir,
                      strerror(errno));
    made = false;
fail:
    if (made) remove_tmp_dir(tmp);
    sym_free(text);
    sym_free(p);
    return st;
}
