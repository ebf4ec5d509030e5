#include "base/config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { K_BOOL, K_INT, K_DOUBLE, K_STRING, K_LOGLEVEL, K_CODEC, K_EVICT } key_kind;

typedef struct key_spec {
    const char *section;
    const char *key;
    key_kind kind;
    size_t offset;
    double min, max; /* for K_INT / K_DOUBLE */
} key_spec;

#define F(field) offsetof(sym_config, field)
static const key_spec k_keys[] = {
    {"memory", "vram_budget_gb", K_DOUBLE, F(vram_budget_gb), 0, 1 << 20},
    {"memory", "ram_budget_gb", K_DOUBLE, F(ram_budget_gb), 0, 1 << 20},
    {"memory", "prefetch_lookahead", K_INT, F(prefetch_lookahead), 0, 4096},
    {"memory", "eviction_aggression", K_DOUBLE, F(eviction_aggression), 0, 1},
    {"memory", "eviction_policy", K_EVICT, F(eviction_policy), 0, 0},
    {"memory", "enable_compression", K_BOOL, F(enable_compression), 0, 0},
    {"memory", "compression_algorithm", K_CODEC, F(compression_algorithm), 0, 0},
    {"memory", "max_packs_in_memory", K_INT, F(max_packs_in_memory), 0, 1 << 30},
    {"memory", "max_pack_mb", K_INT, F(max_pack_mb), 0, 256},
    {"memory", "predict_experts", K_BOOL, F(predict_experts), 0, 0},
    {"performance", "enable_gpu", K_BOOL, F(enable_gpu), 0, 0},
    {"performance", "enable_profiling", K_BOOL, F(enable_profiling), 0, 0},
    {"performance", "workgroup_size_x", K_INT, F(workgroup_size_x), 0, 1024},
    {"performance", "workgroup_size_y", K_INT, F(workgroup_size_y), 1, 1024},
    {"performance", "use_subgroup_ops", K_BOOL, F(use_subgroup_ops), 0, 0},
    {"performance", "use_fp16_math", K_BOOL, F(use_fp16_math), 0, 0},
    {"performance", "scale_factor", K_DOUBLE, F(scale_factor), 1e-3, 1e3},
    {"performance", "n_threads", K_INT, F(n_threads), 0, 1024},
    {"performance", "shader_dir", K_STRING, F(shader_dir), 0, 0},
    {"performance", "cpu_gpu_split", K_BOOL, F(cpu_gpu_split), 0, 0},
    {"logging", "log_level", K_LOGLEVEL, F(log_level), 0, 0},
    {"logging", "log_to_file", K_BOOL, F(log_to_file), 0, 0},
    {"logging", "log_file_path", K_STRING, F(log_file_path), 0, 0},
    {"logging", "log_performance", K_BOOL, F(log_performance), 0, 0},
    {"logging", "log_memory_usage", K_BOOL, F(log_memory_usage), 0, 0},
    {"logging", "max_log_file_size_mb", K_INT, F(max_log_file_size_mb), 0, 1 << 20},
    {"model", "model_path", K_STRING, F(model_path), 0, 0},
};
#undef F
#define N_KEYS (sizeof k_keys / sizeof k_keys[0])

static const char *const k_codecs[] = {"auto", "none", "zstd", "blosc", "zfp", "bytesplit"};

const char *sym_codec_choice_name(sym_codec_choice c) {
    return (unsigned)c < sizeof k_codecs / sizeof k_codecs[0] ? k_codecs[c] : "?";
}

static const char *const k_evicts[] = {"auto", "oracle", "belady", "lru"};

/* *out = the index of value among names (case-insensitive); else SYM_ERR_CONFIG naming them. */
static sym_status name_index(const char *origin, const char *key, const char *value,
                             const char *what, const char *const *names, size_t n, int *out) {
    char list[128] = "";
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(value, names[i]) == 0) {
            *out = (int)i;
            return SYM_OK;
        }
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
    }
    return SYM_FAIL(SYM_ERR_CONFIG, "%s: key '%s': unknown %s '%s' (%s)", origin, key, what, value,
                    list);
}

const char *sym_evict_choice_name(sym_evict_choice c) {
    return (unsigned)c < sizeof k_evicts / sizeof k_evicts[0] ? k_evicts[c] : "?";
}

bool sym_cache_dir(char *buf, size_t cap) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n = -1;
    if (xdg && *xdg == '/')
        n = snprintf(buf, cap, "%s/symbiote", xdg);
    else if (home && *home)
        n = snprintf(buf, cap, "%s/.cache/symbiote", home);
    if (n > 0 && (size_t)n < cap) return true;
    if (cap) buf[0] = '\0';
    return false;
}

void sym_config_defaults(sym_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->vram_budget_gb = 0;
    cfg->ram_budget_gb = 0;
    cfg->prefetch_lookahead = 4;
    cfg->eviction_aggression = 0.5;
    cfg->eviction_policy = SYM_EVICT_CHOICE_AUTO;
    cfg->enable_compression = true;
    cfg->compression_algorithm = SYM_CODEC_CHOICE_AUTO;
    cfg->max_packs_in_memory = 0;
    cfg->max_pack_mb = 0; /* automatic */
    cfg->enable_gpu = true;
    cfg->cpu_gpu_split = true;
    cfg->predict_experts = false; /* measured: it costs more than it saves so far (TIERS.md) */
    cfg->enable_profiling = false;
    cfg->workgroup_size_x = 0; /* automatic: per kernel family (vk/ops.h) */
    cfg->workgroup_size_y = 1;
    cfg->use_subgroup_ops = true;
    cfg->use_fp16_math = false;
    cfg->scale_factor = 1.0;
    cfg->n_threads = 0;
    cfg->log_level = SYM_LOG_WARNING;
    cfg->log_to_file = false;
    strcpy(cfg->log_file_path, "symbiote.log");
    cfg->log_performance = false;
    cfg->log_memory_usage = false;
    cfg->max_log_file_size_mb = 64;
}

static const key_spec *find_key(const char *section, const char *key, int *section_known) {
    *section_known = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(k_keys[i].section, section) != 0) continue;
        *section_known = 1;
        if (strcmp(k_keys[i].key, key) == 0) return &k_keys[i];
    }
    return NULL;
}

static int parse_bool(const char *v, bool *out) {
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) return *out = true, 1;
        if (strcasecmp(v, no[i]) == 0) return *out = false, 1;
    }
    return 0;
}

sym_status sym_config_set(sym_config *cfg, const char *section, const char *key,
                          const char *value, const char *origin) {
    int section_known;
    const key_spec *ks = find_key(section, key, &section_known);
    if (!section_known)
        return SYM_FAIL(SYM_ERR_CONFIG, "%s: unknown section [%s] (key '%s')", origin, section,
                        key);
    if (!ks) return SYM_FAIL(SYM_ERR_CONFIG, "%s: unknown key '%s' in [%s]", origin, key, section);
    char *field = (char *)cfg + ks->offset;
    char *end = NULL;
    switch (ks->kind) {
    case K_BOOL:
        if (!parse_bool(value, (bool *)field))
            return SYM_FAIL(SYM_ERR_CONFIG, "%s: key '%s': '%s' is not a boolean (true/false)",
                            origin, key, value);
        return SYM_OK;
    case K_INT: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end != '\0')
            return SYM_FAIL(SYM_ERR_CONFIG, "%s: key '%s': '%s' is not an integer", origin, key,
                            value);
        if ((double)v < ks->min || (double)v > ks->max)
            return SYM_FAIL(SYM_ERR_CONFIG, "%s: key '%s': %lld is outside [%.0f, %.0f]", origin,
                            key, v, ks->min, ks->max);
        *(int *)field = (int)v;
        return SYM_OK;
    }
    case K_DOUBLE: {
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end != '\0' || !isfinite(v))
            return SYM_FAIL(SYM_ERR_CONFIG, "%s: key '%s': '%s' is not a number", origin, key,
                            value);
        if (v < ks->min || v > ks->max)
            return SYM_FAIL(SYM_ERR_CONFIG, "%s: key '%s': %g is outside [%g, %g]", origin, key, v,
                            ks->min, ks->max);
        *(double *)field = v;
        return SYM_OK;
    }
    case K_STRING: {
        size_t n = strlen(value);
        if (n >= SYM_CONFIG_PATH_MAX)
            return SYM_FAIL(SYM_ERR_CONFIG, "%s: key '%s': value longer than %d bytes", origin,
                            key, SYM_CONFIG_PATH_MAX - 1);
        memcpy(field, value, n + 1);
        return SYM_OK;
    }
    case K_LOGLEVEL: {
        sym_log_level lv;
        if (sym_log_level_parse(value, &lv) != SYM_OK)
            return SYM_FAIL(SYM_ERR_CONFIG,
                            "%s: key '%s': '%s' is not a log level (DEBUG, INFO, WARNING, ERROR)",
                            origin, key, value);
        *(sym_log_level *)field = lv;
        return SYM_OK;
    }
    case K_CODEC: {
        int i = 0;
        SYM_TRY(name_index(origin, key, value, "codec", k_codecs,
                           sizeof k_codecs / sizeof k_codecs[0], &i));
        *(sym_codec_choice *)field = (sym_codec_choice)i;
        return SYM_OK;
    }
    case K_EVICT: {
        int i = 0;
        SYM_TRY(name_index(origin, key, value, "eviction policy", k_evicts,
                           sizeof k_evicts / sizeof k_evicts[0], &i));
        *(sym_evict_choice *)field = (sym_evict_choice)i;
        return SYM_OK;
    }
    }
    return SYM_FAIL(SYM_ERR_INTERNAL, "config: bad key kind");
}

typedef struct ini_ctx {
    sym_config *cfg;
    const char *path;
    sym_status st;
    char detail[1024];
} ini_ctx;

/* inih calls this per key; returning 0 makes ini_parse return the line number. The detail is
 * kept here because inih tells us the line only after the parse stops. */
static int on_ini_key(void *user, const char *section, const char *name, const char *value) {
    ini_ctx *ctx = user;
    if (ctx->st != SYM_OK) return 0;
    sym_status st = sym_config_set(ctx->cfg, section, name, value, "");
    if (st != SYM_OK) {
        ctx->st = st;
        /* sym_config_set's detail starts with ": " because origin was "". */
        snprintf(ctx->detail, sizeof ctx->detail, "%s", sym_last_error() + 2);
        return 0;
    }
    return 1;
}

sym_status sym_config_load_ini(sym_config *cfg, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return SYM_FAIL(SYM_ERR_IO, "config: cannot open '%s': %s", path, strerror(errno));
    sym_config tmp = *cfg;
    ini_ctx ctx = {.cfg = &tmp, .path = path, .st = SYM_OK};
    int line = ini_parse_file(f, on_ini_key, &ctx);
    fclose(f);
    if (line != 0) {
        if (ctx.st != SYM_OK) return SYM_FAIL(ctx.st, "%s:%d: %s", path, line, ctx.detail);
        return SYM_FAIL(SYM_ERR_CONFIG, "%s:%d: syntax error (expected [section] or key = value)",
                        path, line);
    }
    *cfg = tmp;
    return SYM_OK;
}

sym_status sym_config_apply_env(sym_config *cfg) {
    static const struct { const char *env, *section, *key; } k_env[] = {
        {"VK_SYMBIOTE_VRAM_GB", "memory", "vram_budget_gb"},
        {"VK_SYMBIOTE_RAM_GB", "memory", "ram_budget_gb"},
        {"VK_SYMBIOTE_PREFETCH", "memory", "prefetch_lookahead"},
    };
    for (size_t i = 0; i < sizeof k_env / sizeof k_env[0]; i++) {
        const char *v = getenv(k_env[i].env);
        if (v && *v) SYM_TRY(sym_config_set(cfg, k_env[i].section, k_env[i].key, v, k_env[i].env));
    }
    return SYM_OK;
}

void sym_config_write_ini(const sym_config *cfg, FILE *out) {
    const char *section = "";
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_spec *ks = &k_keys[i];
        if (strcmp(section, ks->section) != 0) {
            fprintf(out, "%s[%s]\n", i ? "\n" : "", ks->section);
            section = ks->section;
        }
        const char *field = (const char *)cfg + ks->offset;
        fprintf(out, "%s = ", ks->key);
        switch (ks->kind) {
        case K_BOOL: fprintf(out, "%s\n", *(const bool *)field ? "true" : "false"); break;
        case K_INT: fprintf(out, "%d\n", *(const int *)field); break;
        case K_DOUBLE: fprintf(out, "%.17g\n", *(const double *)field); break;
        case K_STRING: fprintf(out, "%s\n", field); break;
        case K_LOGLEVEL:
            fprintf(out, "%s\n", sym_log_level_name(*(const sym_log_level *)field));
            break;
        case K_CODEC:
            fprintf(out, "%s\n", sym_codec_choice_name(*(const sym_codec_choice *)field));
            break;
        case K_EVICT:
            fprintf(out, "%s\n", sym_evict_choice_name(*(const sym_evict_choice *)field));
            break;
        }
    }
}
