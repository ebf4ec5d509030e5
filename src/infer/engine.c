/* engine.c — the public API: opens a model, its tokenizer and a backend, and runs forward /
 * generate. Backend choice: Vulkan unless the GPU is disabled; no Vulkan device at all → a warning
 * and the CPU backend. */
#include "infer/engine.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cpu/ops.h"
#include "cpu/ref.h"
#include "infer/check.h"
#include "infer/forward.h"
#include "infer/moe.h"
#include "infer/placement.h"
#include "infer/trace_rec.h"
#include "model/model.h"
#include "pack/store.h"
#include "text/sampler.h"
#include "text/tokenizer.h"
#ifdef SYM_HAVE_VULKAN
#include "vk/ops.h"
#endif

#define DEFAULT_MAX_CTX 4096
#define DEFAULT_BATCH 256

struct sym_engine {
    sym_engine_params params;
    sym_model *model;
    sym_tokenizer *tok;
    sym_backend *backend;
    const char *backend_name;
    char device_name[256];
    sym_forward_pass *fwd;
    sym_placement place;
    sym_pack_plan *trace_plan; /* --trace-out on a resident model: a plan of its own */
    sym_trace_rec *trace;
    /* the oracle policy of a streamed mixture of experts (place.oracle): its weight file */
    char oracle_dir[SYM_CONFIG_PATH_MAX]; /* "": not persisted */
    char oracle_key[256];                 /* the model and the device */
    uint64_t oracle_trained0;             /* samples it had learned from at open */
    bool oracle_failed;                   /* a routing it refused (warned once) */
    sym_tier_stats base[SYM_TIER_N_MEM]; /* pack manager counters at the last metrics reset */
    double base_stall_ms, base_stall_disk_ms;
    uint64_t base_cpu_bytes;
    double base_cpu_ms, base_readback_ms;
    uint64_t base_readbacks;
    float *logits;    /* n_vocab: the last position's logits */
    int32_t *history; /* n_ctx: the ids in the KV cache */
    int n_history;
    sym_metrics metrics;
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void sym_engine_params_init(sym_engine_params *p) {
    memset(p, 0, sizeof *p);
    sym_config_defaults(&p->cfg);
}

void sym_engine_options_init(sym_engine_options *o) { memset(o, 0, sizeof *o); }

/* ---- backend choice ---------------------------------------------------------------------------- */

static sym_status create_cpu(sym_engine *e) {
    int n_threads = e->params.cfg.n_threads;
    if (n_threads <= 0) n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads <= 0) n_threads = 1;
    SYM_TRY(sym_cpu_backend_create(n_threads, &e->backend));
    e->backend_name = "cpu";
    snprintf(e->device_name, sizeof e->device_name, "CPU (%d threads)", n_threads);
    return SYM_OK;
}

/* A shader dir that does not exist is an error whichever backend runs (the Vulkan backend also
 * checks what it holds); on a backend without shaders it is ignored with a warning. */
static sym_status check_shader_dir(const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return SYM_FAIL(SYM_ERR_IO, "shader dir '%s': %s", dir, strerror(errno));
    SYM_CHECK(S_ISDIR(sb.st_mode), SYM_ERR_IO, "shader dir '%s' is not a directory", dir);
    return SYM_OK;
}

static sym_status create_backend(sym_engine *e) {
    const char *want = e->params.backend ? e->params.backend : "auto";
    if (e->params.cfg.shader_dir[0]) SYM_TRY(check_shader_dir(e->params.cfg.shader_dir));
    if (!strcmp(want, "reference")) {
        SYM_TRY(sym_ref_backend_create(&e->backend));
        e->backend_name = "reference";
        snprintf(e->device_name, sizeof e->device_name, "CPU reference (single thread)");
        return SYM_OK;
    }
    SYM_CHECK(!strcmp(want, "auto") || !strcmp(want, "cpu") || !strcmp(want, "vulkan"),
              SYM_ERR_ARG, "unknown backend '%s' (auto, vulkan, cpu, reference)", want);
    if (!strcmp(want, "cpu") || !e->params.cfg.enable_gpu) return create_cpu(e);
#ifdef SYM_HAVE_VULKAN
    sym_vk_options vo;
    sym_vk_options_from_config(&vo, &e->params.cfg);
    const char *dev = e->params.device;
    bool explicit_device = dev && *dev;
    if (explicit_device) {
        char *end;
        long idx = strtol(dev, &end, 10);
        if (*end == '\0' && idx >= 0) vo.device_index = (int)idx;
        else vo.device_name = dev;
    }
    vo.force_integrated = e->params.force_integrated_gpu;
    vo.fp32_kv = e->params.fp32;
    vo.f32_gemm_act = e->params.fp32; /* --fp32: f32 activations on tensor cores too */
    sym_status st = sym_vk_backend_create(&vo, &e->backend);
    if (st == SYM_OK) {
        const sym_vk_caps *caps = sym_vk_backend_caps(e->backend);
        if (caps->type == VK_PHYSICAL_DEVICE_TYPE_CPU && !explicit_device &&
            strcmp(want, "vulkan") != 0) {
            SYM_INFO("the only Vulkan device is a software one (%s): using the CPU backend, which "
                     "is faster (--backend vulkan to use it anyway)", caps->name);
            e->backend->ops->destroy(e->backend);
            e->backend = NULL;
            return create_cpu(e);
        }
        e->backend_name = "vulkan";
        snprintf(e->device_name, sizeof e->device_name, "%.200s (%.20s)", caps->name,
                 caps->type_name);
        return SYM_OK;
    }
    if (st != SYM_ERR_NO_DEVICE || !strcmp(want, "vulkan")) return st;
    SYM_WARN("no Vulkan device (%s); running on the CPU", sym_last_error());
#else
    SYM_CHECK(strcmp(want, "vulkan") != 0, SYM_ERR_UNSUPPORTED, "built without Vulkan");
    SYM_WARN("built without Vulkan; running on the CPU");
#endif
    return create_cpu(e);
}

/* ---- the hooks of the forward pass: traces and the oracle ---------------------------------- */

static bool oracle_on(const sym_engine *e) {
    return e->place.oracle && e->place.plan && e->place.plan->n_expert > 0;
}

static void on_route(void *user, int layer, const sym_moe_route *route) {
    sym_engine *e = user;
    if (e->trace) sym_trace_rec_route(e->trace, layer, route);
    if (!oracle_on(e) || e->oracle_failed) return;
    if (sym_oracle_route(e->place.oracle, layer, route->n_tok, route->n_expert_used,
                         route->expert, route->weight) != SYM_OK) {
        SYM_WARN("oracle: %s; it stops learning (eviction goes on from what it knows)",
                 sym_last_error());
        e->oracle_failed = true;
    }
}

static void on_chunk(void *user, int n_tok) {
    sym_engine *e = user;
    if (e->trace) sym_trace_rec_chunk(e->trace, n_tok);
    if (oracle_on(e)) sym_oracle_end_pass(e->place.oracle);
}

/* The oracle's weights for this model and device: loaded if a valid file is there, else fresh
 * (a file that is not valid: a warning); the hooks feed it the routing. */
static void oracle_open(sym_engine *e) {
    if (!oracle_on(e)) return;
    sym_forward_set_route_hook(e->fwd, on_route, e);
    sym_forward_set_chunk_hook(e->fwd, on_chunk, e);
    const sym_hparams *hp = sym_model_hparams(e->model);
    const char *path = e->params.cfg.model_path, *slash = strrchr(path, '/');
    const char *name = slash && slash[1] ? slash + 1 : path;
    const char *dev = strcmp(e->backend_name, "vulkan") == 0 ? e->device_name : e->backend_name;
    snprintf(e->oracle_key, sizeof e->oracle_key,
             "%.96s (%.16s, %d layers, %d experts, top %d, %llu bytes) @ %.80s", name, hp->arch,
             hp->n_layer, hp->n_expert, hp->n_expert_used,
             (unsigned long long)sym_model_weight_bytes(e->model), dev);
    const char *dir = e->params.oracle_cache_dir;
    if (dir) snprintf(e->oracle_dir, sizeof e->oracle_dir, "%s", dir);
    else sym_cache_dir(e->oracle_dir, sizeof e->oracle_dir);
    sym_oracle_loss loss;
    if (e->oracle_dir[0]) {
        sym_status st = sym_oracle_load(e->place.oracle, e->oracle_dir, e->oracle_key);
        if (st == SYM_OK) {
            sym_oracle_loss_get(e->place.oracle, &loss, false);
            SYM_INFO("oracle: weights for '%s' loaded (%llu samples learned)", e->oracle_key,
                     (unsigned long long)loss.n_trained);
        } else if (st == SYM_ERR_IO) {
            SYM_INFO("oracle: no saved weights for '%s' (%s): fresh ones", e->oracle_key,
                     sym_last_error());
        } else {
            SYM_WARN("%s; starting from fresh weights", sym_last_error());
        }
    }
    sym_oracle_loss_get(e->place.oracle, &loss, true);
    e->oracle_trained0 = loss.n_trained;
}

/* Saves what the oracle learned since open (temporary file, then rename); a warning if it
 * cannot. */
static void oracle_close(sym_engine *e) {
    if (!oracle_on(e) || !e->oracle_dir[0]) return;
    sym_oracle_loss loss;
    sym_oracle_loss_get(e->place.oracle, &loss, false);
    if (loss.n_trained == e->oracle_trained0) return;
    if (sym_oracle_save(e->place.oracle, e->oracle_dir, e->oracle_key) != SYM_OK)
        SYM_WARN("%s; the oracle's weights were not saved", sym_last_error());
}

/* ---- open / close ------------------------------------------------------------------------------ */

sym_status sym_engine_open_params(const sym_engine_params *p, sym_engine **out) {
    SYM_CHECK(p->cfg.model_path[0], SYM_ERR_ARG, "engine: no model path given");
    sym_engine *e = sym_calloc(1, sizeof *e);
    if (!e) return SYM_FAIL(SYM_ERR_OOM, "engine: out of memory");
    e->params = *p;
    sym_status st = SYM_OK;
    /* lazily: a .sympack's packs are read once the placement knows whether they stay resident
     * or stream from the store */
    SYM_TRY_GOTO(sym_model_open_lazy(p->cfg.model_path, &e->model));
    const sym_hparams *hp = sym_model_hparams(e->model);
    const sym_store *store = sym_model_store(e->model);
    if (store && !p->cfg.enable_compression && sym_store_n_compressed(store) > 0)
        SYM_FAIL_GOTO(SYM_ERR_CONFIG, "%s holds %u compressed packs of %u, and compression is off "
                      "([memory] enable_compression = false, --no-compression): a store's codecs "
                      "cannot be ignored; repack it with `symbiote pack --no-compression`, or "
                      "turn compression on", p->cfg.model_path, sym_store_n_compressed(store),
                      sym_store_plan(store)->n_packs);

    sym_str tok_json, tok_config;
    if (sym_model_gguf(e->model)) {
        SYM_TRY_GOTO(sym_tokenizer_create_gguf(sym_model_gguf(e->model), &e->tok));
    } else if (sym_model_tokenizer_text(e->model, &tok_json, &tok_config) && tok_json.ptr) {
        /* a .sympack made from safetensors keeps tokenizer.json as text */
        SYM_TRY_GOTO(sym_tokenizer_create_hf(tok_json.ptr, (size_t)tok_json.len, tok_config.ptr,
                                             (size_t)tok_config.len, &e->tok));
    } else if (sym_model_tokenizer_json(e->model)) {
        SYM_TRY_GOTO(sym_tokenizer_open(sym_model_tokenizer_json(e->model), &e->tok));
    } else {
        SYM_FAIL_GOTO(SYM_ERR_FORMAT, "%s: the model has no tokenizer (tokenizer.ggml.* metadata "
                      "or tokenizer.json)", p->cfg.model_path);
    }
    if (sym_tokenizer_n_vocab(e->tok) > hp->n_vocab)
        SYM_FAIL_GOTO(SYM_ERR_FORMAT, "%s: the tokenizer has %d tokens but the model only %d "
                      "embeddings", p->cfg.model_path, sym_tokenizer_n_vocab(e->tok), hp->n_vocab);

    int n_ctx = p->n_ctx > 0 ? p->n_ctx : hp->n_ctx_train;
    if (p->n_ctx <= 0 && n_ctx > DEFAULT_MAX_CTX) n_ctx = DEFAULT_MAX_CTX;
    if (n_ctx <= 0) n_ctx = DEFAULT_MAX_CTX;
    sym_forward_options fo = {
        .n_ctx = n_ctx,
        .n_batch = p->n_batch > 0 ? p->n_batch : DEFAULT_BATCH,
        .kv_type = p->fp32 ? SYM_DT_F32 : SYM_DT_F16,
        .rope_scale = (float)p->cfg.scale_factor,
        /* --fp32 keeps every weight as stored; SYM_NO_FOLD_NORMS=1 too (measurements) */
        .no_fold_norms = p->fp32 || (getenv("SYM_NO_FOLD_NORMS") && atoi(getenv("SYM_NO_FOLD_NORMS")) > 0),
    };
    SYM_TRY_GOTO(create_backend(e));
    if (p->cfg.shader_dir[0] && strcmp(e->backend_name, "vulkan") != 0)
        SYM_WARN("shader dir %s ignored: the %s backend runs no GPU kernels", p->cfg.shader_dir,
                 e->backend_name);
    const char *check = getenv("VK_SYMBIOTE_CHECK");
    if (check && strcmp(check, "0") != 0 && *check) {
        const char *tol = getenv("VK_SYMBIOTE_CHECK_TOL");
        SYM_WARN("VK_SYMBIOTE_CHECK: every op is re-run on the CPU reference (slow)");
        sym_backend *primary = e->backend;
        e->backend = NULL; /* the wrapper owns it now, even if its creation fails */
        SYM_TRY_GOTO(sym_check_backend_create(primary, tol ? atof(tol) : 0, &e->backend));
    }
    SYM_INFO("model %s: %s, %d layers, n_embd %d, %d heads (%d kv), vocab %d; backend %s on %s; "
             "context %d", p->cfg.model_path, hp->arch, hp->n_layer, hp->n_embd, hp->n_head,
             hp->n_head_kv, hp->n_vocab, e->backend_name, e->device_name, n_ctx);
    SYM_TRY_GOTO(sym_placement_decide(&e->place, &p->cfg, e->backend,
                                      !strcmp(e->backend_name, "vulkan"), e->model, &fo,
                                      p->n_batch > 0, p->force_stream));
    e->place.ram_tier_cap = p->ram_tier_cap;
#ifdef SYM_HAVE_VULKAN
    /* Streaming, the GPU waits for uploads and a token takes ~0.1 s: fence waits block at once
     * rather than poll, and leave the core to the CPU's share of the split (whose rates the
     * placement measures next). */
    if (e->place.streamed && sym_vk_backend_is(e->backend))
        sym_vk_backend_set_fence_spin(e->backend, 0);
#endif
    SYM_TRY_GOTO(sym_model_load_weights(e->model, e->place.streamed ? SYM_MODEL_LOAD_VECTORS
                                                                      : SYM_MODEL_LOAD_ALL));
    if (!e->place.streamed && p->load_progress) {
        fo.progress = p->load_progress;
        fo.progress_user = p->load_progress_user;
        fo.progress_total = sym_model_weight_bytes(e->model);
    }
    SYM_TRY_GOTO(sym_forward_create(e->backend, e->model, &fo, &e->fwd));
    if (e->place.streamed) {
        SYM_TRY_GOTO(sym_placement_stream(&e->place, &p->cfg, e->backend, e->model, e->fwd,
                                          p->pread_fn, p->pread_user));
        sym_forward_set_predict(e->fwd, p->cfg.predict_experts);
        oracle_open(e);
        e->metrics.streamed = 1;
    } else {
        char line[512];
        sym_placement_describe(&e->place, line, sizeof line);
        SYM_INFO("%s", line);
    }
    e->logits = sym_calloc((size_t)hp->n_vocab, sizeof *e->logits);
    e->history = sym_calloc((size_t)n_ctx + 1, sizeof *e->history); /* + the unevaluated last */
    if (!e->logits || !e->history) SYM_FAIL_GOTO(SYM_ERR_OOM, "engine: out of memory");
    e->metrics.backend = e->backend_name;
    *out = e;
    return SYM_OK;
fail:
    sym_engine_close(e);
    return st;
}

sym_status sym_engine_open(const sym_engine_options *o, sym_engine **out) {
    SYM_CHECK(o && o->model_path, SYM_ERR_ARG, "engine: no model path given");
    sym_engine_params p;
    sym_engine_params_init(&p);
    const char *ini = o->config_path ? o->config_path : getenv("VK_SYMBIOTE_CONFIG");
    if (ini && *ini) SYM_TRY(sym_config_load_ini(&p.cfg, ini));
    SYM_TRY(sym_config_apply_env(&p.cfg));
    SYM_CHECK(strlen(o->model_path) < sizeof p.cfg.model_path, SYM_ERR_ARG,
              "engine: model path too long");
    strcpy(p.cfg.model_path, o->model_path);
    if (o->disable_gpu) p.cfg.enable_gpu = false;
    if (o->n_threads > 0) p.cfg.n_threads = o->n_threads;
    if (o->vram_gb > 0) p.cfg.vram_budget_gb = o->vram_gb;
    if (o->ram_gb > 0) p.cfg.ram_budget_gb = o->ram_gb;
    p.fp32 = o->fp32 != 0;
    p.n_ctx = o->n_ctx;
    return sym_engine_open_params(&p, out);
}

void sym_engine_close(sym_engine *e) {
    if (!e) return;
    oracle_close(e);
    sym_forward_destroy(e->fwd); /* gives its pinned packs back first */
    sym_trace_rec_destroy(e->trace);
    sym_pack_plan_destroy(e->trace_plan);
    sym_placement_destroy(&e->place);
    if (e->backend) e->backend->ops->destroy(e->backend);
    sym_tokenizer_destroy(e->tok);
    sym_model_close(e->model);
    sym_free(e->logits);
    sym_free(e->history);
    sym_free(e);
}

sym_chat_template sym_engine_chat_template(const sym_engine *e) {
    const sym_gguf *g = sym_model_gguf(e->model);
    if (g) {
        const sym_gguf_kv *kv = sym_gguf_find(g, "tokenizer.chat_template");
        return kv && kv->type == SYM_GGUF_STRING ? sym_chat_detect(kv->str.ptr, kv->str.len)
                                                 : SYM_CHAT_NONE;
    }
    const char *tj = sym_model_tokenizer_json(e->model);
    sym_str tok_json, tok_config;
    json_object *cfg = NULL, *t;
    if (sym_model_tokenizer_text(e->model, &tok_json, &tok_config)) {
        if (!tok_config.ptr) return SYM_CHAT_NONE;
        json_tokener *jt = json_tokener_new();
        if (jt) {
            if (tok_config.len < INT32_MAX)
                cfg = json_tokener_parse_ex(jt, tok_config.ptr, (int)tok_config.len);
            json_tokener_free(jt);
        }
    } else {
        if (!tj) return SYM_CHAT_NONE;
        char path[4096];
        const char *slash = strrchr(tj, '/');
        int dir_len = slash ? (int)(slash - tj) : 1;
        snprintf(path, sizeof path, "%.*s/tokenizer_config.json", dir_len, slash ? tj : ".");
        cfg = json_object_from_file(path);
    }
    sym_chat_template ct = SYM_CHAT_NONE;
    if (cfg && json_object_object_get_ex(cfg, "chat_template", &t) &&
        json_object_is_type(t, json_type_string))
        ct = sym_chat_detect(json_object_get_string(t), (size_t)json_object_get_string_len(t));
    json_object_put(cfg);
    return ct;
}

sym_backend *sym_engine_backend(sym_engine *e) { return e->backend; }
void sym_engine_prediction_stats(const sym_engine *e, int layer, uint64_t *right,
                                 uint64_t *guessed, uint64_t *used) {
    sym_forward_prediction_stats(e->fwd, layer, right, guessed, used);
}

sym_status sym_engine_trace_start(sym_engine *e) {
    if (e->trace) return SYM_OK;
    const sym_pack_plan *plan = e->place.plan;
    const sym_store *store = sym_model_store(e->model);
    if (!plan && store && e->params.cfg.max_pack_mb == 0) plan = sym_store_plan(store);
    if (!plan) {
        sym_pack_options po;
        sym_pack_options_init(&po);
        SYM_TRY(sym_pack_limit_from_mb(e->params.cfg.max_pack_mb, &po.max_pack_bytes));
        SYM_TRY(sym_pack_plan_create(e->model, &po, &e->trace_plan));
        plan = e->trace_plan;
    }
    SYM_TRY(sym_trace_rec_create(plan, sym_forward_n_batch(e->fwd), &e->trace));
    sym_forward_set_route_hook(e->fwd, on_route, e);
    sym_forward_set_chunk_hook(e->fwd, on_chunk, e);
    return SYM_OK;
}

sym_status sym_engine_trace_write(sym_engine *e, const char *path) {
    SYM_CHECK(e->trace, SYM_ERR_ARG, "engine: no trace was started");
    return sym_trace_rec_write(e->trace, path);
}

const sym_pack_plan *sym_engine_pack_plan(const sym_engine *e) { return e->place.plan; }

void sym_engine_tier_stats(const sym_engine *e, sym_tier tier, sym_tier_stats *out) {
    memset(out, 0, sizeof *out);
    if (e->place.pm) sym_pack_manager_stats(e->place.pm, tier, out);
}

void sym_engine_placement(const sym_engine *e, char *buf, size_t cap) {
    sym_placement_describe(&e->place, buf, cap);
}
const char *sym_engine_backend_name(const sym_engine *e) { return e->backend_name; }
const char *sym_engine_device_name(const sym_engine *e) { return e->device_name; }
int sym_n_vocab(const sym_engine *e) { return sym_model_hparams(e->model)->n_vocab; }
int sym_n_ctx(const sym_engine *e) { return sym_forward_n_ctx(e->fwd); }

/* ---- text ------------------------------------------------------------------------------------ */

sym_status sym_encode(sym_engine *e, const char *text, size_t len, int add_bos, int parse_special,
                      int32_t *ids, size_t cap, size_t *n_ids) {
    return sym_tokenizer_encode(e->tok, text, len, add_bos != 0, parse_special != 0, ids, cap,
                                n_ids);
}

sym_status sym_token_piece(sym_engine *e, int32_t id, const char **bytes, size_t *len) {
    return sym_tokenizer_piece(e->tok, id, bytes, len);
}

/* ---- running --------------------------------------------------------------------------------- */

void sym_reset(sym_engine *e) {
    sym_forward_reset(e->fwd);
    e->n_history = 0;
}

static void update_peaks(sym_engine *e) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        uint64_t rss = (uint64_t)ru.ru_maxrss * 1024;
        if (rss > e->metrics.peak_ram_bytes) e->metrics.peak_ram_bytes = rss;
    }
    if (e->backend->ops->peak_bytes) {
        uint64_t v = e->backend->ops->peak_bytes(e->backend);
        if (v > e->metrics.peak_vram_bytes) e->metrics.peak_vram_bytes = v;
    }
}

/* sym_forward, or with id sym_forward_argmax */
static sym_status forward(sym_engine *e, const int32_t *ids, size_t n, float *logits, int32_t *id) {
    /* after a generation the history may end with a sampled token that was never evaluated */
    int n_past = sym_forward_n_past(e->fwd), room = sym_n_ctx(e) - n_past;
    SYM_CHECK(n > 0 && n <= (size_t)room, SYM_ERR_RANGE,
              "forward: %zu tokens after %d exceed the context of %d", n, n_past, sym_n_ctx(e));
    if (id)
        SYM_TRY(sym_forward_eval_argmax(e->fwd, ids, (int)n, id));
    else
        SYM_TRY(sym_forward_eval(e->fwd, ids, (int)n, logits ? logits : e->logits));
    memcpy(e->history + n_past, ids, n * sizeof *ids);
    e->n_history = n_past + (int)n;
    update_peaks(e);
    return SYM_OK;
}

sym_status sym_forward(sym_engine *e, const int32_t *ids, size_t n, float *logits) {
    return forward(e, ids, n, logits, NULL);
}

sym_status sym_forward_argmax(sym_engine *e, const int32_t *ids, size_t n, int32_t *id) {
    SYM_CHECK(id, SYM_ERR_ARG, "forward: NULL id");
    return forward(e, ids, n, NULL, id);
}

/* What generation reads back of each evaluation: the greedy choice (argmax), the top_k
 * candidates (top_k: found by the backend itself), or else the logits (e->logits). The first two
 * are found on the GPU, and 4 or 8 top_k bytes are read back instead of the logits. */
typedef struct pick {
    int argmax, top_k;
    int ready; /* next or the top candidates hold the last evaluation's */
    int32_t next;
    int n_top;
    int32_t top_ids[SYM_TOPK_MAX];
    float top_vals[SYM_TOPK_MAX];
} pick;

static void pick_init(pick *pk, sym_engine *e, const sym_sampler *smp, int max_tokens) {
    memset(pk, 0, sizeof *pk);
    /* (max_tokens 0: the logits, kept for a later call; SYM_HOST_SAMPLING=1: always the
     * logits, for comparisons) */
    const char *hs = getenv("SYM_HOST_SAMPLING");
    if (max_tokens <= 0 || (hs && *hs == '1')) return;
    pk->argmax = sym_sampler_is_argmax(smp);
    if (!pk->argmax && sym_forward_has_topk(e->fwd))
        pk->top_k = sym_sampler_top_k(smp, SYM_TOPK_MAX);
}

static sym_status pick_eval(sym_engine *e, pick *pk, const int32_t *ids, int n) {
    if (pk->argmax)
        SYM_TRY(sym_forward_eval_argmax(e->fwd, ids, n, &pk->next));
    else if (pk->top_k)
        SYM_TRY(sym_forward_eval_topk(e->fwd, ids, n, pk->top_k, pk->top_vals, pk->top_ids,
                                      &pk->n_top));
    else
        SYM_TRY(sym_forward_eval(e->fwd, ids, n, e->logits));
    pk->ready = pk->argmax || pk->top_k;
    return SYM_OK;
}

static int32_t pick_sample(sym_engine *e, const pick *pk, sym_sampler *smp) {
    if (pk->ready && pk->argmax) return pk->next;
    if (pk->ready && pk->top_k)
        return sym_sampler_sample_top(smp, pk->top_vals, pk->top_ids, pk->n_top);
    return sym_sampler_sample(smp, e->logits, e->history, (size_t)e->n_history);
}

static void finish_rates(sym_metrics *m) {
    m->prefill_tok_s = m->prefill_ms > 0 ? (double)m->prompt_tokens * 1e3 / m->prefill_ms : 0;
    m->decode_tok_s = m->decode_ms > 0 ? (double)m->generated_tokens * 1e3 / m->decode_ms : 0;
}

/* Tokenizes text after what the cache holds (with BOS only when it holds nothing), evaluates it
 * together with a sampled token the previous call left unevaluated, then generates. */
static sym_status append_generate(sym_engine *e, const char *text, size_t len, bool parse_special,
                                  int max_tokens, const sym_sampling *sampling, int ignore_eos,
                                  sym_token_fn on_token, void *user) {
    SYM_CHECK(text || len == 0, SYM_ERR_ARG, "generate: NULL prompt");
    SYM_CHECK(max_tokens >= 0, SYM_ERR_ARG, "generate: max_tokens %d < 0", max_tokens);
    int n_ctx = sym_n_ctx(e), n_past = sym_forward_n_past(e->fwd);
    SYM_CHECK(e->n_history < n_ctx, SYM_ERR_RANGE,
              "the context of %d tokens is full (start over with a reset)", n_ctx);
    size_t n_text_ids = 0, room = (size_t)(n_ctx - e->n_history);
    bool bos = e->n_history == 0 && sym_tokenizer_wants_bos(e->tok) && sym_tokenizer_bos(e->tok) >= 0;
    sym_status st = sym_tokenizer_encode(e->tok, text, len, bos, parse_special,
                                         e->history + e->n_history, room, &n_text_ids);
    if (st == SYM_ERR_RANGE) {
        if (e->n_history == 0)
            return SYM_FAIL(SYM_ERR_RANGE, "the prompt has %zu tokens but the context holds %d "
                            "(raise it with --ctx, up to the model's %d)", n_text_ids, n_ctx,
                            sym_model_hparams(e->model)->n_ctx_train);
        return SYM_FAIL(SYM_ERR_RANGE, "the text has %zu tokens but only %zu of the context's %d "
                        "positions are left", n_text_ids, room, n_ctx);
    }
    SYM_TRY(st);
    int n_new = e->n_history + (int)n_text_ids - n_past; /* a pending sampled token + the text */
    SYM_CHECK(n_new > 0 || n_past > 0, SYM_ERR_ARG,
              "generate: empty prompt and the vocabulary has no BOS token to start from");
    sym_sampler *smp = NULL;
    SYM_TRY(sym_sampler_create(sampling, sym_n_vocab(e), &smp));
    char *out = sym_malloc(sym_tokenizer_max_piece(e->tok) + 16);
    if (!out) {
        sym_sampler_destroy(smp);
        return SYM_FAIL(SYM_ERR_OOM, "generate: out of memory");
    }
    sym_detokenizer detok;
    sym_detokenizer_init(&detok, e->tok, SYM_DECODE_KEEP_SPACE);

    pick pk;
    pick_init(&pk, e, smp, max_tokens);
    sym_metrics *m = &e->metrics;
    if (n_new > 0) {
        double t0 = now_ms();
        SYM_TRY_GOTO(pick_eval(e, &pk, e->history + n_past, n_new));
        m->prompt_tokens += (uint64_t)n_new;
        m->prefill_ms += now_ms() - t0;
    }
    e->n_history = n_past + n_new;
    update_peaks(e);

    /* As llama2.c does, the token sampled from the last position's logits is emitted even when
     * the cache is full; it stays in the history unevaluated (a later call evaluates it first). */
    size_t cap = sym_tokenizer_max_piece(e->tok) + 16, n_out;
    /* With nothing new to evaluate, the sampler takes the logits the last evaluation left (a
     * sym_forward call's: on the device, whatever buffer that call copied them to). */
    if (n_new == 0) SYM_TRY_GOTO(sym_forward_read_logits(e->fwd, e->logits));
    for (int i = 0; i < max_tokens; i++) {
        double ts = now_ms();
        int32_t id = pick_sample(e, &pk, smp);
        e->history[e->n_history++] = id;
        m->generated_tokens++;
        bool eog = sym_tokenizer_is_eog(e->tok, id) && !ignore_eos;
        SYM_TRY_GOTO(sym_detokenizer_push(&detok, id, out, cap, &n_out));
        bool stop = on_token && on_token(user, id, out, n_out);
        if (stop || eog || e->n_history > n_ctx || i + 1 == max_tokens) {
            m->decode_ms += now_ms() - ts;
            break;
        }
        SYM_TRY_GOTO(pick_eval(e, &pk, &id, 1));
        m->decode_ms += now_ms() - ts;
    }
    SYM_TRY_GOTO(sym_detokenizer_flush(&detok, out, cap, &n_out));
    if (n_out && on_token) on_token(user, -1, out, n_out);
    update_peaks(e);
fail:
    finish_rates(m);
    sym_free(out);
    sym_sampler_destroy(smp);
    return st;
}

sym_status sym_generate_ex(sym_engine *e, const char *prompt, size_t prompt_len, int max_tokens,
                           const sym_sampling *sampling, int ignore_eos, sym_token_fn on_token,
                           void *user) {
    sym_reset(e);
    return append_generate(e, prompt, prompt_len, false, max_tokens, sampling, ignore_eos,
                           on_token, user);
}

sym_status sym_generate_append(sym_engine *e, const char *text, size_t len, int parse_special,
                               int max_tokens, const sym_sampling *sampling,
                               sym_token_fn on_token, void *user) {
    return append_generate(e, text, len, parse_special != 0, max_tokens, sampling, 0, on_token,
                           user);
}

int sym_n_past(const sym_engine *e) { return e->n_history; }

const int32_t *sym_engine_history(const sym_engine *e, int *n) {
    *n = e->n_history;
    return e->history;
}

sym_status sym_generate(sym_engine *e, const char *prompt, int max_tokens,
                        const sym_sampling *sampling, sym_token_fn on_token, void *user) {
    SYM_CHECK(prompt, SYM_ERR_ARG, "generate: NULL prompt");
    return sym_generate_ex(e, prompt, strlen(prompt), max_tokens, sampling, 0, on_token, user);
}

static double ss_disk_wait(const sym_engine *e) {
    if (!e->place.pm) return 0;
    sym_forward_stream_stats ss;
    sym_forward_stream_stats_get(e->fwd, &ss);
    return ss.disk_wait_ms;
}

static void tier_counters(const sym_engine *e, sym_tier_stats st[SYM_TIER_N_MEM], double *stall) {
    memset(st, 0, SYM_TIER_N_MEM * sizeof *st);
    *stall = 0;
    if (!e->place.pm) return;
    for (int t = 0; t < SYM_TIER_N_MEM; t++) sym_pack_manager_stats(e->place.pm, (sym_tier)t, &st[t]);
    sym_forward_stream_stats ss;
    sym_forward_stream_stats_get(e->fwd, &ss);
    *stall = ss.get_ms;
}

void sym_metrics_get(const sym_engine *e, sym_metrics *out) {
    *out = e->metrics;
    out->streamed = e->place.streamed;
    out->predicted_tok_s = e->place.predicted_tok_s;
    out->link_gb_s = e->place.link_gbps;
    out->vram_tier_bytes = e->place.device_tier_bytes;
    out->ram_tier_bytes = e->place.ram_tier_bytes;
    out->split = e->place.split;
    out->cpu_gb_s = e->place.split ? e->place.cpu_gbps : 0;
    out->cpu_gb_s_loaded = e->place.split ? e->place.cpu_gbps_loaded : 0;
    out->link_gb_s_loaded = e->place.split ? e->place.link_gbps_loaded : 0;
    if (e->place.pm) {
        sym_tier_stats st[SYM_TIER_N_MEM];
        double stall;
        tier_counters(e, st, &stall);
        const sym_tier_stats *d = &st[SYM_TIER_DEVICE], *r = &st[SYM_TIER_RAM];
        const sym_tier_stats *bd = &e->base[SYM_TIER_DEVICE], *br = &e->base[SYM_TIER_RAM];
        const sym_tier_stats *use = e->place.tier == SYM_TIER_DEVICE ? d : r;
        const sym_tier_stats *buse = e->place.tier == SYM_TIER_DEVICE ? bd : br;
        out->bytes_uploaded = d->bytes_in - bd->bytes_in;
        out->bytes_read_disk = r->io_bytes - br->io_bytes;
        out->pack_hits = use->hits - buse->hits;
        out->pack_misses = use->misses - buse->misses;
        out->stall_ms = stall - e->base_stall_ms;
        out->stall_disk_ms = ss_disk_wait(e) - e->base_stall_disk_ms;
        out->upload_ms = (double)(d->io_ns - bd->io_ns) / 1e6;
        sym_forward_stream_stats ss;
        sym_forward_stream_stats_get(e->fwd, &ss);
        out->bytes_cpu = ss.cpu_bytes - e->base_cpu_bytes;
        out->cpu_ms = ss.cpu_ms - e->base_cpu_ms;
        out->readback_ms = ss.readback_ms - e->base_readback_ms;
        out->readbacks = ss.n_readbacks - e->base_readbacks;
        out->disk_ms = (double)(r->io_ns - br->io_ns) / 1e6;
        out->bytes_decompressed = r->decoded_bytes - br->decoded_bytes;
        out->decompress_ms = (double)(r->decode_ns - br->decode_ns) / 1e6;
        out->eviction_policy = e->place.policy_name;
        out->expert_hits = use->expert_hits - buse->expert_hits;
        out->expert_misses = use->expert_misses - buse->expert_misses;
        out->expert_bytes_moved = use->expert_bytes_in - buse->expert_bytes_in;
        out->vram_tier_high_water_bytes = d->high_water_bytes;
        out->ram_tier_high_water_bytes = r->high_water_bytes;
    }
    if (oracle_on(e)) {
        sym_oracle_loss loss;
        sym_oracle_loss_get(e->place.oracle, &loss, false);
        out->oracle_samples = loss.n_trained;
        out->oracle_log_loss = loss.log_loss;
    }
    finish_rates(out);
}

void sym_metrics_reset(sym_engine *e) {
    memset(&e->metrics, 0, sizeof e->metrics);
    e->metrics.backend = e->backend_name;
    tier_counters(e, e->base, &e->base_stall_ms);
    e->base_stall_disk_ms = ss_disk_wait(e);
    if (oracle_on(e)) { /* a new window of the oracle's prediction loss */
        sym_oracle_loss loss;
        sym_oracle_loss_get(e->place.oracle, &loss, true);
    }
    if (e->place.pm) {
        sym_forward_stream_stats ss;
        sym_forward_stream_stats_get(e->fwd, &ss);
        e->base_cpu_bytes = ss.cpu_bytes;
        e->base_cpu_ms = ss.cpu_ms;
        e->base_readback_ms = ss.readback_ms;
        e->base_readbacks = ss.n_readbacks;
    }
}
