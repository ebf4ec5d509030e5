#include "cli.h"

#include <time.h>
#include <unistd.h>

#include "infer/engine.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void cli_common_init(cli_common *c) {
    memset(c, 0, sizeof *c);
    sym_config_defaults(&c->cfg);
}

int cli_fail(sym_status st) {
    fprintf(stderr, "symbiote: error: %s: %s\n", sym_status_name(st), sym_last_error());
    return 1;
}

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("symbiote: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see --help)\n", stderr);
    va_end(ap);
    return 2;
}

bool cli_parse_int(const char *flag, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        cli_usage_error("%s: '%s' is not an integer in [%lld, %lld]", flag, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_double(const char *flag, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        cli_usage_error("%s: '%s' is not a number in [%g, %g]", flag, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

/* Flags that map one-to-one onto config keys. */
static const struct {
    const char *flag, *alias, *section, *key, *fixed; /* fixed: value for flags without one */
} k_flags[] = {
    {"--vram-gb", NULL, "memory", "vram_budget_gb", NULL},
    {"--ram-gb", NULL, "memory", "ram_budget_gb", NULL},
    {"--prefetch-lookahead", NULL, "memory", "prefetch_lookahead", NULL},
    {"--eviction-aggression", NULL, "memory", "eviction_aggression", NULL},
    {"--eviction-policy", NULL, "memory", "eviction_policy", NULL},
    {"--max-pack-mb", NULL, "memory", "max_pack_mb", NULL},
    {"--no-compression", NULL, "memory", "enable_compression", "false"},
    {"--disable-gpu", NULL, "performance", "enable_gpu", "false"},
    {"--no-subgroups", NULL, "performance", "use_subgroup_ops", "false"},
    {"--no-split", NULL, "performance", "cpu_gpu_split", "false"},
    {"--predict-experts", NULL, "memory", "predict_experts", "true"},
    {"--fp16-math", NULL, "performance", "use_fp16_math", "true"},
    {"--profile", NULL, "performance", "enable_profiling", "true"},
    {"--threads", "-t", "performance", "n_threads", NULL},
    {"--shader-dir", NULL, "performance", "shader_dir", NULL},
    {"--log-file", NULL, "logging", "log_file_path", NULL},
    {"--log-level", NULL, "logging", "log_level", NULL},
    {"--verbose", "-v", "logging", "log_level", "INFO"},
};

static int add_override(cli_common *c, const char *flag, const char *section, const char *key,
                        const char *value) {
    if (c->n_overrides == CLI_MAX_OVERRIDES) {
        cli_usage_error("too many options");
        return -1;
    }
    c->overrides[c->n_overrides].flag = flag;
    c->overrides[c->n_overrides].section = section;
    c->overrides[c->n_overrides].key = key;
    c->overrides[c->n_overrides].value = value;
    c->n_overrides++;
    return 1;
}

int cli_common_parse(cli_common *c, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    for (size_t k = 0; k < sizeof k_flags / sizeof k_flags[0]; k++) {
        if (strcmp(a, k_flags[k].flag) != 0 && !(k_flags[k].alias && !strcmp(a, k_flags[k].alias)))
            continue;
        const char *value = k_flags[k].fixed;
        if (!value) {
            if (*i + 1 >= argc) {
                cli_usage_error("%s needs a value", a);
                return -1;
            }
            value = argv[++*i];
        }
        if (!strcmp(k_flags[k].flag, "--log-file"))
            if (add_override(c, a, "logging", "log_to_file", "true") < 0) return -1;
        int r = add_override(c, a, k_flags[k].section, k_flags[k].key, value);
        if (r > 0) ++*i;
        return r;
    }
    if (!strcmp(a, "--config") || !strcmp(a, "--model") || !strcmp(a, "-m") ||
        !strcmp(a, "--device") || !strcmp(a, "--backend")) {
        if (*i + 1 >= argc) {
            cli_usage_error("%s needs a value", a);
            return -1;
        }
        const char *v = argv[++*i];
        if (!strcmp(a, "--config")) c->config_path = v;
        else if (!strcmp(a, "--device")) c->device = v;
        else if (!strcmp(a, "--backend")) c->backend = v;
        else c->model_path = v;
        ++*i;
        return 1;
    }
    if (!strcmp(a, "--workgroup-size")) {
        if (*i + 2 >= argc) {
            cli_usage_error("--workgroup-size needs two values (X Y)");
            return -1;
        }
        if (add_override(c, a, "performance", "workgroup_size_x", argv[*i + 1]) < 0 ||
            add_override(c, a, "performance", "workgroup_size_y", argv[*i + 2]) < 0)
            return -1;
        *i += 3;
        return 1;
    }
    if (!strcmp(a, "--fp32")) {
        c->fp32 = true;
        ++*i;
        return 1;
    }
    if (!strcmp(a, "--force-integrated-gpu")) {
        c->force_integrated_gpu = true;
        ++*i;
        return 1;
    }
    return 0;
}

int cli_common_finish(cli_common *c) {
    sym_config_defaults(&c->cfg);
    const char *ini = c->config_path;
    if (!ini) {
        const char *env = getenv("VK_SYMBIOTE_CONFIG");
        if (env && *env) ini = env;
    }
    sym_status st;
    if (ini && (st = sym_config_load_ini(&c->cfg, ini)) != SYM_OK) return cli_fail(st);
    if ((st = sym_config_apply_env(&c->cfg)) != SYM_OK) return cli_fail(st);
    for (int k = 0; k < c->n_overrides; k++) {
        st = sym_config_set(&c->cfg, c->overrides[k].section, c->overrides[k].key,
                            c->overrides[k].value, c->overrides[k].flag);
        if (st != SYM_OK) return cli_fail(st);
    }
    if (c->model_path) {
        if (strlen(c->model_path) >= SYM_CONFIG_PATH_MAX)
            return cli_usage_error("--model: path too long");
        strcpy(c->cfg.model_path, c->model_path);
    }
    sym_log_set_level(c->cfg.log_level);
    if (c->cfg.log_to_file) {
        st = sym_log_open_file(c->cfg.log_file_path,
                               (uint64_t)c->cfg.max_log_file_size_mb << 20);
        if (st != SYM_OK) return cli_fail(st);
    }
    return 0;
}

void cli_common_help(FILE *out) {
    fputs("Common options (precedence: defaults < INI file < environment < command line):\n"
          "  -m, --model PATH            model: GGUF file, .sympack, safetensors file or directory\n"
          "      --config FILE           INI configuration (default: $VK_SYMBIOTE_CONFIG)\n"
          "      --vram-gb GB            VRAM budget, a hard limit (0: automatic) [$VK_SYMBIOTE_VRAM_GB]\n"
          "      --ram-gb GB             RAM budget, a hard limit (0: automatic) [$VK_SYMBIOTE_RAM_GB]\n"
          "      --prefetch-lookahead N  packs fetched ahead of use [$VK_SYMBIOTE_PREFETCH]\n"
          "      --eviction-aggression X 0..1, how early low-vitality packs leave (the oracle's)\n"
          "      --eviction-policy P     streaming: oracle, belady, lru, or auto (the oracle for a\n"
          "                              mixture of experts, belady for a dense model)\n"
          "      --max-pack-mb N         largest pack the planner makes (1..256; 0: automatic)\n"
          "      --no-compression        `symbiote pack`: store every pack raw; the engine:\n"
          "                              refuse a .sympack holding compressed packs\n"
          "      --disable-gpu           CPU backend only\n"
          "      --force-integrated-gpu  prefer an integrated GPU over a discrete one\n"
          "      --device INDEX|NAME     use this Vulkan device\n"
          "      --backend NAME          auto (a Vulkan GPU, else the CPU; a software Vulkan\n"
          "                              device such as llvmpipe counts as none), vulkan (any\n"
          "                              Vulkan device), cpu, reference (plain loops, debugging)\n"
          "      --fp32                  f32 everywhere: KV cache, GPU matrix products' activations\n"
          "                              and prefill attention's queries and probabilities (else\n"
          "                              rounded to f16 on tensor cores), weights as stored\n"
          "                              (else RMSNorm weights folded into f32/f16 products)\n"
          "      --fp16-math             allow fp16 arithmetic in GPU kernels\n"
          "      --no-subgroups          do not use subgroup operations in GPU kernels\n"
          "      --predict-experts       streaming a mixture of experts: prefetch the experts the next\n"
          "                              layer's router predicts from the current hidden state\n"
          "      --no-split              streaming on a GPU: upload every streamed pack rather than\n"
          "                              decoding a share of them on the CPU from RAM\n"
          "      --workgroup-size X Y    GPU workgroup size X for every kernel (0: automatic)\n"
          "                              and Y output rows per matrix-vector workgroup\n"
          "      --profile               per-kernel GPU timing table\n"
          "      --shader-dir DIR        compile the GPU kernels from DIR/<kernel>.comp at run\n"
          "                              time (a copy of shaders/); an edited file is rebuilt\n"
          "                              while running, one that does not compile is logged\n"
          "  -t, --threads N             CPU threads (0: all cores)\n"
          "  -v, --verbose               log level INFO\n"
          "      --log-level LEVEL       DEBUG, INFO, WARNING, ERROR\n"
          "      --log-file PATH         log to PATH (rotated at max_log_file_size_mb)\n",
          out);
}

int cli_sampling_parse(sym_sampling *s, bool *seed_set, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    static const char *const flags[] = {"--temp", "--top-k", "--top-p", "--min-p",
                                        "--repeat-penalty", "--repeat-last-n", "--seed"};
    int which = -1;
    for (int k = 0; k < 7; k++)
        if (!strcmp(a, flags[k])) which = k;
    if (which < 0) return 0;
    if (*i + 1 >= argc) {
        cli_usage_error("%s needs a value", a);
        return -1;
    }
    const char *v = argv[*i + 1];
    double d;
    long long n;
    switch (which) {
    case 0: if (!cli_parse_double(a, v, 0, 100, &d)) return -1; s->temperature = (float)d; break;
    case 1: if (!cli_parse_int(a, v, 0, 1 << 30, &n)) return -1; s->top_k = (int)n; break;
    case 2: if (!cli_parse_double(a, v, 1e-6, 1, &d)) return -1; s->top_p = (float)d; break;
    case 3: if (!cli_parse_double(a, v, 0, 0.999999, &d)) return -1; s->min_p = (float)d; break;
    case 4:
        if (!cli_parse_double(a, v, 1e-3, 1e3, &d)) return -1;
        s->repeat_penalty = (float)d;
        break;
    case 5: if (!cli_parse_int(a, v, 0, 1 << 30, &n)) return -1; s->repeat_last_n = (int)n; break;
    default: {
        char *end;
        errno = 0;
        unsigned long long seed = strtoull(v, &end, 0);
        if (errno || end == v || *end) {
            cli_usage_error("--seed: bad value '%s'", v);
            return -1;
        }
        s->seed = seed;
        *seed_set = true;
    }
    }
    *i += 2;
    return 1;
}

void cli_sampling_help(FILE *out) {
    fputs("      --temp T             temperature (default 0.8; 0: greedy)\n"
          "      --top-k K            keep the K most likely tokens (default 40; 0: off)\n"
          "      --top-p P            nucleus sampling (default 0.95; 1: off)\n"
          "      --min-p P            drop tokens below P x the best one's probability (0.05)\n"
          "      --repeat-penalty R   penalty for recent tokens (default 1: off)\n"
          "      --repeat-last-n N    window of the penalty (default 64)\n"
          "      --seed S             RNG seed (default: time based; printed in the summary)\n",
          out);
}

void cli_engine_params(const cli_common *c, sym_engine_params *ep) {
    ep->cfg = c->cfg;
    ep->fp32 = c->fp32;
    ep->force_integrated_gpu = c->force_integrated_gpu;
    ep->device = c->device;
    ep->backend = c->backend;
}

/* The bundled toy model: next to the source tree the binary was built from, or ../models
 * relative to the executable. */
static const char *find_default_model(char *buf, size_t cap) {
    /* cap >= 4096 */
    snprintf(buf, cap, "%s/toy-fortunes.gguf", SYM_MODELS_DIR);
    if (access(buf, R_OK) == 0) return buf;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        int n_out = snprintf(buf, cap, "%.3900s/../models/toy-fortunes.gguf", exe);
        if (n_out > 0 && (size_t)n_out < cap && access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

int cli_default_model(cli_common *c) {
    if (c->cfg.model_path[0]) return 0;
    char buf[4096];
    const char *def = find_default_model(buf, sizeof buf);
    if (!def) {
        fprintf(stderr, "symbiote: error: no model given (-m MODEL) and the bundled toy model "
                        "models/toy-fortunes.gguf was not found\n");
        return 1;
    }
    snprintf(c->cfg.model_path, sizeof c->cfg.model_path, "%s", def);
    return 0;
}

double cli_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, const char *label) {
    p->label = label;
    p->start_s = cli_now_s();
    p->last_s = 0;
    p->shown = false;
}

void cli_progress_update(void *user, uint64_t done, uint64_t total) {
    cli_progress *p = user;
    double now = cli_now_s();
    if (done < total && now - p->last_s < 0.25) return;
    p->last_s = now;
    p->shown = true;
    double el = now - p->start_s;
    fprintf(stderr, "\r%s: %8.2f / %.2f GiB (%3.0f%%) %7.1f MiB/s", p->label,
            (double)done / 1073741824.0, (double)total / 1073741824.0,
            total ? 100.0 * (double)done / (double)total : 100.0,
            el > 0 ? (double)done / 1048576.0 / el : 0.0);
    fflush(stderr);
}

int cli_progress_update_fn(void *user, uint64_t done, uint64_t total) {
    cli_progress_update(user, done, total);
    return 0;
}

void cli_progress_end(cli_progress *p) {
    if (p->shown) fputc('\n', stderr);
}

double cli_progress_elapsed(const cli_progress *p) { return cli_now_s() - p->start_s; }
