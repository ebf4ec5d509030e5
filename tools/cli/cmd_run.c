/* symbiote run: generate text from a prompt. stdout carries exactly the prompt followed by the
 * generated text, streamed as tokens arrive; the summary and logs go to stderr. */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "infer/engine.h"

static void help(FILE *out) {
    fprintf(out,
            "usage: symbiote run [-m MODEL] [-p PROMPT | -f FILE] [-n N] [options]\n"
            "Generates text. Without -m (and without [model] model_path) it runs the bundled\n"
            "toy model models/toy-fortunes.gguf.\n\n"
            "  -p, --prompt TEXT        prompt (default: empty, generation starts from BOS)\n"
            "  -f, --file PATH          read the prompt from a file (raw bytes)\n"
            "  -n, --n-predict N        tokens to generate (default 128; -1: until EOS or full)\n"
            "  -c, --ctx N              context length (default: the model's)\n"
            "  -b, --batch N            prefill chunk in tokens (default 256)\n"
            "      --ignore-eos         keep generating past end-of-sequence\n"
            "      --stats-json FILE    write timing and memory statistics as JSON\n"
            "      --trace-out FILE     write the run's pack accesses as a .symtrace (for\n"
            "                           symbiote policy-sim --trace FILE)\n"
            "      --progress           a live line on stderr while generating: tokens, tok/s,\n"
            "                           ms per token waiting for uploads / for the disk /\n"
            "                           computing, ETA (the\n"
            "                           default when stderr is a terminal and stdout is not;\n"
            "                           a line a second when stderr is not a terminal)\n"
            "      --no-progress        never (nor the loading bar a terminal shows at open)\n");
    cli_sampling_help(out);
    fputc('\n', out);
    cli_common_help(out);
}

typedef struct run_state {
    size_t n_out;
    int ok;
    /* the live progress line (progress: 0 off, 1 rewritten in place, 2 a line a second) */
    int progress;
    sym_engine *e;
    int max_tokens;
    double t_first, t_shown;  /* when the first token came, when the line was last written */
    sym_metrics m_first;      /* the counters then */
} run_state;

/* Decode so far, from the first generated token on (the prompt's prefill is not in it). */
static void show_progress(run_state *rs, bool last) {
    double t = cli_now_s();
    if (rs->n_out == 1) {
        rs->t_first = t;
        sym_metrics_get(rs->e, &rs->m_first);
    }
    if (!last && t - rs->t_shown < (rs->progress == 1 ? 0.2 : 1.0)) return;
    rs->t_shown = t;
    double n = (double)rs->n_out - 1, dt = t - rs->t_first;
    char line[256];
    int k = snprintf(line, sizeof line, "[token %zu", rs->n_out);
    if (rs->max_tokens > 0) k += snprintf(line + k, sizeof line - (size_t)k, "/%d", rs->max_tokens);
    k += snprintf(line + k, sizeof line - (size_t)k, "]");
    if (n > 0 && dt > 0) {
        sym_metrics m;
        sym_metrics_get(rs->e, &m);
        double ms = dt * 1e3 / n, wait = (m.stall_ms - rs->m_first.stall_ms) / n;
        double disk = (m.stall_disk_ms - rs->m_first.stall_disk_ms) / n;
        k += snprintf(line + k, sizeof line - (size_t)k, " %.2f tok/s, %.1f ms/token", n / dt, ms);
        if (m.streamed && m.vram_tier_bytes) /* a device: uploads, then reads */
            k += snprintf(line + k, sizeof line - (size_t)k,
                          " (%.1f waiting for uploads, %.1f for disk, %.1f computing)",
                          wait - disk, disk, ms - wait);
        else if (m.streamed)
            k += snprintf(line + k, sizeof line - (size_t)k,
                          " (%.1f waiting for disk, %.1f computing)", disk, ms - wait);
        if (rs->max_tokens > 0 && !last)
            k += snprintf(line + k, sizeof line - (size_t)k, " | ETA %.0f s",
                          (double)(rs->max_tokens - (int)rs->n_out) * dt / n);
    }
    if (rs->progress == 1) fprintf(stderr, "\r\033[K%s%s", line, last ? "\n" : "");
    else fprintf(stderr, "symbiote: %s\n", line);
}

/* The weights' load at open, on a terminal: shown once it has taken half a second. */
static void on_load(void *user, uint64_t done, uint64_t total) {
    cli_progress *p = user;
    if (p->shown || cli_progress_elapsed(p) > 0.5) cli_progress_update(p, done, total);
}

static int on_token(void *user, int32_t id, const char *text, size_t len) {
    run_state *rs = user;
    (void)id;
    if (len && fwrite(text, 1, len, stdout) != len) {
        rs->ok = 0;
        return 1;
    }
    fflush(stdout);
    rs->n_out++;
    if (rs->progress) show_progress(rs, false);
    return 0;
}

static char *read_prompt_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "symbiote: error: cannot open prompt file '%s': %s\n", path,
                strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        fprintf(stderr, "symbiote: error: cannot read prompt file '%s'\n", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int write_stats(const char *path, const sym_metrics *m, const char *device, uint64_t seed) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "prompt_tokens", json_object_new_int64((int64_t)m->prompt_tokens));
    json_object_object_add(o, "generated_tokens",
                           json_object_new_int64((int64_t)m->generated_tokens));
    json_object_object_add(o, "prefill_ms", json_object_new_double(m->prefill_ms));
    json_object_object_add(o, "decode_ms", json_object_new_double(m->decode_ms));
    json_object_object_add(o, "prefill_tok_s", json_object_new_double(m->prefill_tok_s));
    json_object_object_add(o, "decode_tok_s", json_object_new_double(m->decode_tok_s));
    json_object_object_add(o, "peak_ram_bytes", json_object_new_int64((int64_t)m->peak_ram_bytes));
    json_object_object_add(o, "peak_vram_bytes",
                           json_object_new_int64((int64_t)m->peak_vram_bytes));
    json_object_object_add(o, "bytes_uploaded", json_object_new_int64((int64_t)m->bytes_uploaded));
    json_object_object_add(o, "bytes_read_disk",
                           json_object_new_int64((int64_t)m->bytes_read_disk));
    json_object_object_add(o, "pack_hits", json_object_new_int64((int64_t)m->pack_hits));
    json_object_object_add(o, "pack_misses", json_object_new_int64((int64_t)m->pack_misses));
    json_object_object_add(o, "stall_ms", json_object_new_double(m->stall_ms));
    json_object_object_add(o, "stall_disk_ms", json_object_new_double(m->stall_disk_ms));
    json_object_object_add(o, "streamed", json_object_new_boolean(m->streamed));
    json_object_object_add(o, "predicted_tok_s", json_object_new_double(m->predicted_tok_s));
    json_object_object_add(o, "link_gb_s", json_object_new_double(m->link_gb_s));
    json_object_object_add(o, "upload_ms", json_object_new_double(m->upload_ms));
    json_object_object_add(o, "disk_ms", json_object_new_double(m->disk_ms));
    json_object_object_add(o, "bytes_decompressed",
                           json_object_new_int64((int64_t)m->bytes_decompressed));
    json_object_object_add(o, "decompress_ms", json_object_new_double(m->decompress_ms));
    json_object_object_add(o, "vram_tier_bytes", json_object_new_int64((int64_t)m->vram_tier_bytes));
    json_object_object_add(o, "ram_tier_bytes", json_object_new_int64((int64_t)m->ram_tier_bytes));
    if (m->eviction_policy) {
        json_object_object_add(o, "eviction_policy", json_object_new_string(m->eviction_policy));
        json_object_object_add(o, "expert_pack_hits",
                               json_object_new_int64((int64_t)m->expert_hits));
        json_object_object_add(o, "expert_pack_misses",
                               json_object_new_int64((int64_t)m->expert_misses));
        json_object_object_add(o, "expert_bytes_moved",
                               json_object_new_int64((int64_t)m->expert_bytes_moved));
        if (m->oracle_samples) {
            json_object_object_add(o, "oracle_samples_learned",
                                   json_object_new_int64((int64_t)m->oracle_samples));
            json_object_object_add(o, "oracle_log_loss",
                                   json_object_new_double(m->oracle_log_loss));
        }
    }
    json_object_object_add(o, "backend", json_object_new_string(m->backend ? m->backend : "?"));
    json_object_object_add(o, "device", json_object_new_string(device));
    json_object_object_add(o, "seed", json_object_new_int64((int64_t)seed));
    int rc = json_object_to_file_ext(path, o, JSON_C_TO_STRING_PRETTY);
    json_object_put(o);
    if (rc != 0) {
        fprintf(stderr, "symbiote: error: cannot write '%s'\n", path);
        return 1;
    }
    return 0;
}

int cmd_run(int argc, char **argv) {
    cli_common c;
    cli_common_init(&c);
    sym_engine_params ep;
    sym_engine_params_init(&ep);
    sym_sampling sp;
    sym_sampling_init(&sp);
    sp.seed = 0;
    bool seed_set = false, ignore_eos = false;
    int progress = -1; /* -1: by the terminals */
    const char *prompt = "", *prompt_file = NULL, *stats_path = NULL, *trace_path = NULL;
    long long n_predict = 128, v;
    for (int i = 0; i < argc;) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return 0;
        }
        int r = cli_common_parse(&c, argc, argv, &i);
        if (r == 0) r = cli_sampling_parse(&sp, &seed_set, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--ignore-eos")) {
            ignore_eos = true;
            i++;
            continue;
        }
        if (!strcmp(a, "--progress") || !strcmp(a, "--no-progress")) {
            progress = !strcmp(a, "--progress");
            i++;
            continue;
        }
        if (i + 1 >= argc) return cli_usage_error("run: unknown option or missing value '%s'", a);
        const char *val = argv[i + 1];
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = val;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) prompt_file = val;
        else if (!strcmp(a, "--stats-json")) stats_path = val;
        else if (!strcmp(a, "--trace-out")) trace_path = val;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!cli_parse_int(a, val, -1, 1 << 30, &n_predict)) return 2;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (!cli_parse_int(a, val, 1, 1 << 24, &v)) return 2;
            ep.n_ctx = (int)v;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            if (!cli_parse_int(a, val, 1, 1 << 16, &v)) return 2;
            ep.n_batch = (int)v;
        } else {
            return cli_usage_error("run: unknown option '%s'", a);
        }
        i += 2;
    }
    if (prompt_file && strcmp(prompt, "") != 0)
        return cli_usage_error("run: give the prompt with -p or -f, not both");
    if (cli_common_finish(&c)) return 1;
    if (cli_default_model(&c)) return 1;
    if (!seed_set) sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    (void)ignore_eos;

    char *file_prompt = NULL;
    size_t prompt_len = strlen(prompt);
    if (prompt_file) {
        file_prompt = read_prompt_file(prompt_file, &prompt_len);
        if (!file_prompt) return 1;
        prompt = file_prompt;
    }

    cli_engine_params(&c, &ep);
    cli_progress lp;
    cli_progress_start(&lp, "symbiote: loading the weights");
    if (progress != 0 && isatty(STDERR_FILENO)) {
        ep.load_progress = on_load;
        ep.load_progress_user = &lp;
    }
    sym_engine *e = NULL;
    sym_status st = sym_engine_open_params(&ep, &e);
    cli_progress_end(&lp);
    if (st != SYM_OK) {
        free(file_prompt);
        return cli_fail(st);
    }
    if (trace_path && (st = sym_engine_trace_start(e)) != SYM_OK) {
        free(file_prompt);
        sym_engine_close(e);
        return cli_fail(st);
    }
    char place[512];
    sym_engine_placement(e, place, sizeof place);
    if (strstr(place, "streaming")) fprintf(stderr, "symbiote: %s\n", place);
    fwrite(prompt, 1, prompt_len, stdout);
    fflush(stdout);
    int max_tokens = n_predict < 0 ? sym_n_ctx(e) : (int)n_predict;
    bool err_tty = isatty(STDERR_FILENO);
    if (progress < 0) progress = err_tty && !isatty(STDOUT_FILENO);
    run_state rs = {.ok = 1, .e = e, .max_tokens = n_predict < 0 ? 0 : max_tokens,
                    .progress = !progress ? 0 : err_tty ? 1 : 2};
    st = sym_generate_ex(e, prompt, prompt_len, max_tokens, &sp, ignore_eos, on_token, &rs);
    fflush(stdout);
    if (rs.progress && rs.n_out) show_progress(&rs, true);
    int rc = 0;
    if (st != SYM_OK) rc = cli_fail(st);
    sym_metrics m;
    sym_metrics_get(e, &m);
    if (isatty(STDOUT_FILENO) && isatty(STDERR_FILENO)) fputc('\n', stderr);
    fprintf(stderr,
            "symbiote: %s on %s | prompt %llu tokens, %.1f tok/s | generated %llu tokens, "
            "%.1f tok/s | peak RAM %.1f MiB, VRAM %.1f MiB | seed %llu\n",
            m.backend, sym_engine_device_name(e), (unsigned long long)m.prompt_tokens,
            m.prefill_tok_s, (unsigned long long)m.generated_tokens, m.decode_tok_s,
            m.peak_ram_bytes / 1048576.0, m.peak_vram_bytes / 1048576.0,
            (unsigned long long)sp.seed);
    if (m.streamed && m.generated_tokens + m.prompt_tokens > 0) {
        double wall = m.prefill_ms + m.decode_ms, n = (double)(m.prompt_tokens ? 1 : 0) +
                                                        (double)m.generated_tokens;
        fprintf(stderr,
                "symbiote: streaming | %.2f GB uploaded, %.2f GB read from disk | per pass "
                "%.1f ms: %.1f waiting for uploads, %.1f waiting for disk, %.1f computing | "
                "uploads %.1f ms, disk reads %.1f ms (summed over threads)\n",
                m.bytes_uploaded / 1e9, m.bytes_read_disk / 1e9, wall / n,
                (m.stall_ms - m.stall_disk_ms) / n, m.stall_disk_ms / n, (wall - m.stall_ms) / n,
                m.upload_ms / n, m.disk_ms / n);
        fprintf(stderr, "symbiote: eviction %s", m.eviction_policy ? m.eviction_policy : "?");
        if (m.expert_hits + m.expert_misses)
            fprintf(stderr, " | expert packs: %llu hits, %llu misses, %.3f GB moved",
                    (unsigned long long)m.expert_hits, (unsigned long long)m.expert_misses,
                    m.expert_bytes_moved / 1e9);
        if (m.oracle_samples)
            fprintf(stderr, " | oracle: log loss %.3f, %llu samples learned", m.oracle_log_loss,
                    (unsigned long long)m.oracle_samples);
        fputc('\n', stderr);
        if (m.bytes_decompressed)
            fprintf(stderr,
                    "symbiote: streaming | %.2f GB decompressed from the .sympack by the I/O "
                    "threads, %.1f ms per pass (summed over threads)\n",
                    m.bytes_decompressed / 1e9, m.decompress_ms / n);
    }
    if (c.cfg.enable_profiling)
        cli_print_profile(stderr, e, "prompt and generation, ms per token",
                          (double)(m.prompt_tokens + m.generated_tokens));
    if (stats_path && write_stats(stats_path, &m, sym_engine_device_name(e), sp.seed)) rc = 1;
    if (trace_path) {
        sym_status ts = sym_engine_trace_write(e, trace_path);
        if (ts != SYM_OK) rc = cli_fail(ts);
    }
    sym_engine_close(e);
    free(file_prompt);
    return rc;
}
