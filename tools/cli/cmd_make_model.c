/* symbiote make-model: writes a synthetic llama-family model with random weights (GGUF file or
 * safetensors directory), from a preset and/or explicit dimensions. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "model/arch.h"
#include "model/writer.h"

static void help(FILE *out) {
    fprintf(out,
            "usage: symbiote make-model -o OUT [--preset NAME] [dimensions] [options]\n\n"
            "Writes a model with deterministic random weights: a GGUF file, or a Hugging Face\n"
            "directory (config.json, model.safetensors or shards + index, tokenizer.json).\n"
            "The same --seed gives the same model in both formats.\n\n"
            "  -o, --output PATH     where to write (a GGUF file is replaced; a safetensors\n"
            "                        directory must not exist or be empty)\n"
            "      --preset NAME     starting dimensions (default tiny):\n");
    for (int i = 0; sym_make_model_preset_name(i); i++)
        fprintf(out, "                          %-15s %s\n", sym_make_model_preset_name(i),
                sym_make_model_preset_summary(i));
    fprintf(out,
            "      --arch NAME       llama or qwen2 (Q/K/V biases)\n"
            "      --n-embd N        embedding width\n"
            "      --n-layer N       number of layers\n"
            "      --n-head N        attention heads\n"
            "      --n-head-kv N     key/value heads (GQA when < n-head)\n"
            "      --head-dim N      head size (default n-embd / n-head)\n"
            "      --n-ff N          feed-forward width\n"
            "      --n-vocab N       vocabulary size (synthetic vocabulary: at least 260)\n"
            "      --n-ctx N         training context length\n"
            "      --rope-theta X    RoPE base frequency\n"
            "      --rms-eps X       RMSNorm epsilon\n"
            "      --tied | --untied output projection shared with the embeddings, or not\n"
            "      --n-expert N      mixture of experts: experts per layer (0: dense MLP)\n"
            "      --n-expert-used N experts each token is routed to (top-k)\n"
            "      --split-experts   GGUF: one tensor per expert (blk.N.ffn_gate.E.weight, the\n"
            "                        older layout) instead of stacked blk.N.ffn_gate_exps\n"
            "      --dtype TYPE      f32, f16 (default) or bf16\n"
            "      --seed N          weight seed (default 1)\n"
            "      --vocab-from F    copy the tokenizer of GGUF file F (n-vocab becomes its size)\n"
            "      --format FMT      gguf (default) or safetensors\n"
            "      --shard-mb N      safetensors: split into shards of at most N MiB\n"
            "  -q, --quiet           no progress display\n"
            "  -h, --help            this help\n");
}


static bool parse_dim(const char *flag, const char *v, int *out) {
    long long x;
    if (!cli_parse_int(flag, v, 1, 1 << 20, &x)) return false;
    *out = (int)x;
    return true;
}

static bool parse_count(const char *flag, const char *v, int *out) {
    long long x;
    if (!cli_parse_int(flag, v, 0, SYM_ARCH_MAX_EXPERTS, &x)) return false;
    *out = (int)x;
    return true;
}

static bool parse_float(const char *flag, const char *v, double lo, double hi, float *out) {
    double x;
    if (!cli_parse_double(flag, v, lo, hi, &x)) return false;
    *out = (float)x;
    return true;
}

int cmd_make_model(int argc, char **argv) {
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    const char *out = NULL, *preset = NULL;
    bool quiet = false, explicit_vocab = false;
    /* the preset first, so explicit dimensions override it whatever the order */
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--preset")) preset = argv[i + 1];
    if (preset) {
        sym_status st = sym_make_model_preset(&o, preset);
        if (st != SYM_OK) return cli_usage_error("%s", sym_last_error());
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return 0;
        }
        if (!strcmp(a, "--tied") || !strcmp(a, "--untied")) {
            o.tied_embeddings = !strcmp(a, "--tied");
            continue;
        }
        if (!strcmp(a, "--split-experts")) {
            o.split_experts = true;
            continue;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
            continue;
        }
        static const char *const valued[] = {
            "-o", "--output", "--preset", "--arch", "--n-embd", "--n-layer", "--n-head",
            "--n-head-kv", "--head-dim", "--n-ff", "--n-vocab", "--n-ctx", "--rope-theta",
            "--rms-eps", "--dtype", "--seed", "--vocab-from", "--format", "--shard-mb",
            "--n-expert", "--n-expert-used",
        };
        bool known = false;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) known |= !strcmp(a, valued[k]);
        if (!known) return cli_usage_error("make-model: unknown option '%s'", a);
        if (i + 1 >= argc) return cli_usage_error("%s needs a value", a);
        const char *v = argv[++i];
        bool ok = true;
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--preset")) continue;
        else if (!strcmp(a, "--arch")) {
            if (strcmp(v, "llama") != 0 && strcmp(v, "qwen2") != 0)
                return cli_usage_error("--arch: '%s' is not llama or qwen2", v);
            snprintf(o.arch, sizeof o.arch, "%s", v);
        } else if (!strcmp(a, "--n-embd")) ok = parse_dim(a, v, &o.n_embd);
        else if (!strcmp(a, "--n-layer")) ok = parse_dim(a, v, &o.n_layer);
        else if (!strcmp(a, "--n-head")) ok = parse_dim(a, v, &o.n_head);
        else if (!strcmp(a, "--n-head-kv")) ok = parse_dim(a, v, &o.n_head_kv);
        else if (!strcmp(a, "--head-dim")) ok = parse_dim(a, v, &o.head_dim);
        else if (!strcmp(a, "--n-ff")) ok = parse_dim(a, v, &o.n_ff);
        else if (!strcmp(a, "--n-vocab")) ok = parse_dim(a, v, &o.n_vocab), explicit_vocab = true;
        else if (!strcmp(a, "--n-ctx")) ok = parse_dim(a, v, &o.n_ctx);
        else if (!strcmp(a, "--n-expert")) ok = parse_count(a, v, &o.n_expert);
        else if (!strcmp(a, "--n-expert-used")) ok = parse_count(a, v, &o.n_expert_used);
        else if (!strcmp(a, "--rope-theta")) ok = parse_float(a, v, 1.0, 1e12, &o.rope_theta);
        else if (!strcmp(a, "--rms-eps")) ok = parse_float(a, v, 1e-12, 1.0, &o.rms_eps);
        else if (!strcmp(a, "--vocab-from")) o.vocab_from = v;
        else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "f32")) o.dtype = SYM_DT_F32;
            else if (!strcmp(v, "f16")) o.dtype = SYM_DT_F16;
            else if (!strcmp(v, "bf16")) o.dtype = SYM_DT_BF16;
            else return cli_usage_error("--dtype: '%s' is not f32, f16 or bf16", v);
        } else if (!strcmp(a, "--format")) {
            if (!strcmp(v, "gguf")) o.format = SYM_MODEL_GGUF;
            else if (!strcmp(v, "safetensors")) o.format = SYM_MODEL_SAFETENSORS;
            else return cli_usage_error("--format: '%s' is not gguf or safetensors", v);
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            o.seed = strtoull(v, &end, 0);
            if (errno || end == v || *end || v[0] == '-')
                return cli_usage_error("--seed: '%s' is not a non-negative integer", v);
        } else if (!strcmp(a, "--shard-mb")) {
            long long mb;
            ok = cli_parse_int(a, v, 1, 1 << 24, &mb);
            o.shard_bytes = (uint64_t)mb << 20;
        }
        if (!ok) return 2;
    }
    if (!out) return cli_usage_error("make-model: no output given (-o PATH)");
    if (explicit_vocab && o.vocab_from)
        return cli_usage_error("make-model: --n-vocab conflicts with --vocab-from (the vocabulary "
                               "sets n_vocab)");
    if (o.shard_bytes && o.format != SYM_MODEL_SAFETENSORS)
        return cli_usage_error("make-model: --shard-mb needs --format safetensors");

    cli_progress ps;
    cli_progress_start(&ps, "make-model");
    if (!quiet && isatty(STDERR_FILENO)) {
        o.progress = cli_progress_update;
        o.progress_user = &ps;
    }
    sym_hparams hp;
    sym_status st = sym_make_model_hparams(&o, &hp);
    if (st == SYM_OK) st = sym_make_model(&o, out);
    cli_progress_end(&ps);
    if (st != SYM_OK) return cli_fail(st);
    char experts[64] = "";
    if (hp.n_expert > 0)
        snprintf(experts, sizeof experts, ", %d experts (top-%d%s)", hp.n_expert,
                 hp.n_expert_used, hp.expert_split ? ", split" : "");
    printf("wrote %s: %s %s, n_embd %d, n_layer %d, n_head %d/%d, n_ff %d%s, n_vocab %d, %s, "
           "seed %llu (%.1f s)\n", out, o.format == SYM_MODEL_GGUF ? "gguf" : "safetensors",
           hp.arch, hp.n_embd, hp.n_layer, hp.n_head, hp.n_head_kv, hp.n_ff, experts, hp.n_vocab,
           sym_dtype_name(o.dtype), (unsigned long long)o.seed, cli_progress_elapsed(&ps));
    return 0;
}
