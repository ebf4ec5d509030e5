/* symbiote info: what a model file holds — architecture, hyperparameters, tensors by type,
 * parameters, tokenizer — as text or JSON (--json). A GGUF file Symbiote cannot run (quantized,
 * unknown architecture) is still described from its raw metadata, then the reason is printed
 * and the exit status is 1. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "model/gguf.h"
#include "model/model.h"
#include "pack/store.h"

typedef struct type_total {
    const char *name;
    uint64_t count, bytes;
} type_total;

#define MAX_TYPES 48

static void add_type(type_total *t, int *n, const char *name, uint64_t bytes) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(t[i].name, name)) {
            t[i].count++;
            t[i].bytes += bytes;
            return;
        }
    if (*n == MAX_TYPES) return;
    t[*n].name = name;
    t[*n].count = 1;
    t[*n].bytes = bytes;
    ++*n;
}

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

static json_object *types_json(const type_total *t, int n) {
    json_object *o = json_object_new_object();
    for (int i = 0; i < n; i++) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "count", json_object_new_uint64(t[i].count));
        json_object_object_add(e, "bytes", json_object_new_uint64(t[i].bytes));
        json_object_object_add(o, t[i].name, e);
    }
    return o;
}

static void print_types(const type_total *t, int n) {
    for (int i = 0; i < n; i++)
        printf("%s%s %llu (%.2f MiB)", i ? ", " : "", t[i].name, (unsigned long long)t[i].count,
               mib(t[i].bytes));
    printf("\n");
}

/* A float printed with the digits it was given ("1e-05", not 9.9999997473787516e-06). */
static json_object *short_double(float f) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)f);
    return json_object_new_double_s((double)f, buf);
}

/* Packs per codec (with its parameters: "bytesplit-3", "blosc-bit-lz4-5") of a pack store. */
#define MAX_CODECS 16
typedef struct codec_total {
    char name[32];
    uint32_t n;
    uint64_t raw, stored;
} codec_total;

static int store_codecs(const sym_store *s, codec_total *t) {
    int n = 0;
    for (uint32_t i = 0; i < sym_store_plan(s)->n_packs; i++) {
        const sym_store_pack *k = sym_store_pack_at(s, i);
        char name[32];
        sym_codec_describe(&k->codec, name, sizeof name);
        int j = 0;
        while (j < n && strcmp(t[j].name, name) != 0) j++;
        if (j == n) {
            if (n == MAX_CODECS) continue;
            memset(&t[n], 0, sizeof t[n]);
            snprintf(t[n++].name, sizeof t[0].name, "%s", name);
        }
        t[j].n++;
        t[j].raw += k->raw_bytes;
        t[j].stored += k->stored_bytes;
    }
    return n;
}

static json_object *store_json(const sym_store *s, const sym_model *m) {
    const sym_pack_plan *p = sym_store_plan(s);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "version", json_object_new_int(SYM_STORE_VERSION));
    json_object_object_add(o, "source", json_object_new_string(
        sym_store_source_format(s) == SYM_STORE_FROM_GGUF ? "gguf" : "safetensors"));
    json_object_object_add(o, "n_packs", json_object_new_int64(p->n_packs));
    json_object_object_add(o, "max_pack_bytes", json_object_new_uint64(p->max_pack_bytes));
    json_object_object_add(o, "pack_cut", json_object_new_string(sym_pack_cut_name(p->cut)));
    json_object_object_add(o, "raw_bytes", json_object_new_uint64(sym_store_raw_bytes(s)));
    json_object_object_add(o, "stored_bytes", json_object_new_uint64(sym_store_stored_bytes(s)));
    json_object_object_add(o, "file_bytes", json_object_new_uint64(sym_store_file_bytes(s)));
    json_object_object_add(o, "host_bytes", json_object_new_uint64(sym_model_host_bytes(m)));
    codec_total t[MAX_CODECS];
    int n = store_codecs(s, t);
    json_object *by = json_object_new_object();
    for (int c = 0; c < n; c++) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "packs", json_object_new_int64(t[c].n));
        json_object_object_add(e, "raw_bytes", json_object_new_uint64(t[c].raw));
        json_object_object_add(e, "stored_bytes", json_object_new_uint64(t[c].stored));
        json_object_object_add(by, t[c].name, e);
    }
    json_object_object_add(o, "by_codec", by);
    return o;
}

static void print_store(const sym_store *s, const sym_model *m) {
    const sym_pack_plan *p = sym_store_plan(s);
    printf(" (version %u, made from %s)\n", SYM_STORE_VERSION,
           sym_store_source_format(s) == SYM_STORE_FROM_GGUF ? "gguf" : "safetensors");
    printf("packs:         %u (limit %.2f MiB, %s cut), %.2f MiB raw -> %.2f MiB stored "
           "(ratio %.3f), file %.2f MiB\n", p->n_packs, mib(p->max_pack_bytes),
           sym_pack_cut_name(p->cut), mib(sym_store_raw_bytes(s)), mib(sym_store_stored_bytes(s)),
           (double)sym_store_raw_bytes(s) / (double)sym_store_stored_bytes(s),
           mib(sym_store_file_bytes(s)));
    codec_total t[MAX_CODECS];
    int n = store_codecs(s, t);
    printf("codecs:        ");
    for (int c = 0; c < n; c++)
        printf("%s%s %u (ratio %.3f)", c ? ", " : "", t[c].name, t[c].n,
               (double)t[c].raw / (double)t[c].stored);
    printf("\nhost memory:   %.2f MiB (the packs decompressed at open)\n",
           mib(sym_model_host_bytes(m)));
}

static int describe_model(const char *path, const sym_model *m, bool json) {
    const sym_hparams *hp = sym_model_hparams(m);
    type_total types[MAX_TYPES];
    int n_types = 0;
    for (uint64_t i = 0; i < sym_model_n_weights(m); i++) {
        const sym_weight *w = sym_model_weight_at(m, i);
        add_type(types, &n_types, sym_dtype_name(w->type), w->n_bytes);
    }
    sym_tokenizer_summary tok;
    sym_status st = sym_model_tokenizer_summary(m, &tok);
    if (st != SYM_OK) return cli_fail(st);
    sym_model_format fmt = sym_model_format_of(m);
    const sym_store *store = sym_model_store(m);
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "path", json_object_new_string(path));
        json_object_object_add(o, "format", json_object_new_string(sym_model_format_name(fmt)));
        if (store) json_object_object_add(o, "store", store_json(store, m));
        json_object *files = json_object_new_array();
        for (int i = 0; i < sym_model_n_files(m); i++)
            json_object_array_add(files, json_object_new_string(sym_model_file_path(m, i)));
        json_object_object_add(o, "files", files);
        json_object_object_add(o, "architecture", json_object_new_string(hp->arch));
        const struct { const char *k; int v; } ints[] = {
            {"n_embd", hp->n_embd}, {"n_layer", hp->n_layer}, {"n_head", hp->n_head},
            {"n_head_kv", hp->n_head_kv}, {"head_dim", hp->head_dim}, {"n_ff", hp->n_ff},
            {"n_vocab", hp->n_vocab}, {"n_ctx_train", hp->n_ctx_train}, {"rope_neox", hp->rope_neox},
            {"n_expert", hp->n_expert}, {"n_expert_used", hp->n_expert_used},
        };
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
            json_object_object_add(o, ints[i].k, json_object_new_int(ints[i].v));
        json_object_object_add(o, "rope_theta", short_double(hp->rope_theta));
        json_object_object_add(o, "rope_freq_scale", short_double(hp->rope_freq_scale));
        json_object_object_add(o, "rms_eps", short_double(hp->rms_eps));
        json_object_object_add(o, "tied_embeddings", json_object_new_boolean(hp->tied_embeddings));
        json_object_object_add(o, "qkv_bias", json_object_new_boolean(hp->qkv_bias));
        json_object_object_add(o, "n_tensors", json_object_new_uint64(sym_model_n_weights(m)));
        json_object_object_add(o, "n_params", json_object_new_uint64(sym_model_n_params(m)));
        json_object_object_add(o, "weight_bytes", json_object_new_uint64(sym_model_weight_bytes(m)));
        json_object_object_add(o, "tensor_types", types_json(types, n_types));
        json_object *t = json_object_new_object();
        json_object_object_add(t, "model", json_object_new_string(tok.model));
        json_object_object_add(t, "n_tokens", json_object_new_int64(tok.n_tokens));
        json_object_object_add(t, "bos_id", json_object_new_int64(tok.bos_id));
        json_object_object_add(t, "eos_id", json_object_new_int64(tok.eos_id));
        if (sym_model_tokenizer_json(m))
            json_object_object_add(t, "path", json_object_new_string(sym_model_tokenizer_json(m)));
        json_object_object_add(o, "tokenizer", t);
        json_object_object_add(o, "runnable", json_object_new_boolean(1));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return 0;
    }
    printf("file:          %s\n", path);
    printf("format:        %s", sym_model_format_name(fmt));
    if (fmt == SYM_MODEL_GGUF) printf(" (version %u)\n", sym_gguf_version(sym_model_gguf(m)));
    else if (fmt == SYM_MODEL_SAFETENSORS)
        printf(" (%d file%s)\n", sym_model_n_files(m), sym_model_n_files(m) == 1 ? "" : "s");
    else print_store(store, m);
    printf("architecture:  %s%s\n", hp->arch, hp->qkv_bias ? " (Q/K/V biases)" : "");
    printf("dimensions:    n_embd %d, n_layer %d, n_head %d, n_head_kv %d, head_dim %d, n_ff %d, "
           "n_vocab %d\n", hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim,
           hp->n_ff, hp->n_vocab);
    if (hp->n_expert > 0)
        printf("experts:       %d per layer, %d per token (%s)\n", hp->n_expert,
               hp->n_expert_used, hp->expert_split ? "one tensor each" : "stacked tensors");
    printf("context:       %d tokens (training)\n", hp->n_ctx_train);
    printf("rope:          theta %g, freq_scale %g, %s\n", (double)hp->rope_theta,
           (double)hp->rope_freq_scale, hp->rope_neox ? "halves (neox)" : "interleaved pairs");
    printf("rms_eps:       %g\n", (double)hp->rms_eps);
    printf("embeddings:    %s\n", hp->tied_embeddings ? "tied (output = token_embd)" : "separate output");
    printf("tensors:       %llu, %.2f MiB: ", (unsigned long long)sym_model_n_weights(m),
           mib(sym_model_weight_bytes(m)));
    print_types(types, n_types);
    printf("parameters:    %llu (%.3f M)\n", (unsigned long long)sym_model_n_params(m),
           (double)sym_model_n_params(m) / 1e6);
    if (tok.model[0])
        printf("tokenizer:     %s, %lld tokens, bos %lld, eos %lld\n", tok.model,
               (long long)tok.n_tokens, (long long)tok.bos_id, (long long)tok.eos_id);
    else
        printf("tokenizer:     none\n");
    return 0;
}

/* A GGUF file the model loader rejected: describe what its metadata says. */
static void describe_raw_gguf(const char *path, const sym_gguf *g, const char *why, bool json) {
    sym_str arch = {"", 0};
    sym_gguf_get_str_opt(g, "general.architecture", &arch);
    char a[64];
    snprintf(a, sizeof a, "%.*s", (int)(arch.len < 63 ? arch.len : 63), arch.ptr);
    static const char *const keys[][2] = {
        {"n_embd", "embedding_length"}, {"n_layer", "block_count"},
        {"n_head", "attention.head_count"}, {"n_head_kv", "attention.head_count_kv"},
        {"n_ff", "feed_forward_length"}, {"n_ctx_train", "context_length"},
    };
    type_total types[MAX_TYPES];
    int n_types = 0;
    uint64_t n_params = 0, bytes = 0;
    for (uint64_t i = 0; i < sym_gguf_n_tensors(g); i++) {
        const sym_gguf_tensor *t = sym_gguf_tensor_at(g, i);
        add_type(types, &n_types, sym_ggml_type_name(t->type), t->n_bytes);
        n_params += t->n_elems;
        bytes += t->n_bytes;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "path", json_object_new_string(path));
    json_object_object_add(o, "format", json_object_new_string("gguf"));
    json_object_object_add(o, "architecture", json_object_new_string(a));
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char key[128];
        uint32_t v;
        snprintf(key, sizeof key, "%s.%s", a, keys[i][1]);
        bool ok = sym_gguf_find(g, key) && sym_gguf_get_u32(g, key, &v) == SYM_OK;
        json_object_object_add(o, keys[i][0], ok ? json_object_new_int64(v) : NULL);
    }
    json_object_object_add(o, "n_tensors", json_object_new_uint64(sym_gguf_n_tensors(g)));
    json_object_object_add(o, "n_params", json_object_new_uint64(n_params));
    json_object_object_add(o, "weight_bytes", json_object_new_uint64(bytes));
    json_object_object_add(o, "tensor_types", types_json(types, n_types));
    json_object_object_add(o, "runnable", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(why));
    if (json) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
    } else {
        printf("file:          %s\nformat:        gguf (version %u)\narchitecture:  %s\n", path,
               sym_gguf_version(g), a);
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            json_object *v = NULL;
            if (json_object_object_get_ex(o, keys[i][0], &v) && v)
                printf("%-14s %lld\n", keys[i][0], (long long)json_object_get_int64(v));
        }
        printf("tensors:       %llu, %.2f MiB: ", (unsigned long long)sym_gguf_n_tensors(g),
               mib(bytes));
        print_types(types, n_types);
        printf("parameters:    %llu\nrunnable:      no\n", (unsigned long long)n_params);
    }
    json_object_put(o);
}

static void help(FILE *out) {
    fprintf(out, "usage: symbiote info MODEL [--json]\n"
                 "       symbiote info -m MODEL [--json]\n"
                 "       symbiote info MODEL --packs [--max-pack-mb N] [--pack-cut buddy|even]\n"
                 "                     [--config FILE] [--json]\n"
                 "       symbiote info --devices [--json]   (the same as symbiote devices)\n\n"
                 "Describes a model: a GGUF file, a .safetensors file (with config.json beside it)\n"
                 "or a Hugging Face directory (config.json + model.safetensors or shards).\n\n"
                 "  -m, --model PATH   the model (or give it as the first argument)\n"
                 "      --json         print one JSON object (keys: architecture, n_embd, n_layer,\n"
                 "                     n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx_train,\n"
                 "                     n_expert, n_expert_used, n_params, weight_bytes,\n"
                 "                     tensor_types, tokenizer, runnable, …)\n"
                 "      --packs        print the pack plan instead: id, type, layer, MiB, file\n"
                 "                     ranges and pieces per pack, totals per type (JSON: packs,\n"
                 "                     schedule, totals)\n"
                 "      --max-pack-mb N  largest pack, 1..256 MiB (default: [memory] max_pack_mb\n"
                 "                     of --config FILE / $VK_SYMBIOTE_CONFIG, else 32)\n"
                 "      --pack-cut C   buddy (default): sizes that fill power-of-two blocks;\n"
                 "                     even: the fewest packs, even sizes\n"
                 "  -h, --help         this help\n\n"
                 "Exit status: 0 for a model Symbiote can run; 1 for an error, and for a GGUF file\n"
                 "it cannot run (quantized, unknown architecture), which is described first\n"
                 "(\"runnable\": false and the reason); 2 for a usage error.\n");
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool json = false, packs = false, devices = false;
    const char *cut = NULL;
    cli_common common;
    cli_common_init(&common);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--packs")) {
            packs = true;
        } else if (!strcmp(a, "--devices")) {
            devices = true;
        } else if (!strcmp(a, "--pack-cut")) {
            if (i + 1 >= argc) return cli_usage_error("%s needs a value", a);
            cut = argv[++i];
        } else if (!strcmp(a, "--max-pack-mb") || !strcmp(a, "--config")) {
            if (cli_common_parse(&common, argc, argv, &i) < 0) return 2;
            i--; /* cli_common_parse moved past the value */
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (i + 1 >= argc) return cli_usage_error("%s needs a value", a);
            path = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("info: unknown option '%s'", a);
        } else if (!path) {
            path = a;
        } else {
            return cli_usage_error("info: more than one model given ('%s', '%s')", path, a);
        }
    }
    if (devices) {
        if (path || packs) return cli_usage_error("info: --devices takes no model");
        return cli_print_devices(json);
    }
    if (!path) return cli_usage_error("info: no model given");
    if (!packs && (common.n_overrides || common.config_path || cut))
        return cli_usage_error("info: --max-pack-mb, --pack-cut and --config go with --packs");
    sym_model *m = NULL;
    sym_status st = sym_model_open(path, &m);
    if (st == SYM_OK) {
        int rc = packs ? cli_info_packs(path, m, &common, cut, json) : describe_model(path, m, json);
        sym_model_close(m);
        return rc;
    }
    char why[1024];
    snprintf(why, sizeof why, "%s", sym_last_error());
    sym_gguf *g = NULL;
    if (!packs && (st == SYM_ERR_UNSUPPORTED || st == SYM_ERR_FORMAT) &&
        sym_gguf_open(path, &g) == SYM_OK) {
        describe_raw_gguf(path, g, why, json);
        sym_gguf_close(g);
        fflush(stdout);
        fprintf(stderr, "symbiote: error: %s: %s\n", sym_status_name(st), why);
        if (st == SYM_ERR_UNSUPPORTED)
            fprintf(stderr, "symbiote: this file is described above but Symbiote cannot run it\n");
        return 1;
    }
    fprintf(stderr, "symbiote: error: %s: %s\n", sym_status_name(st), why);
    return 1;
}
