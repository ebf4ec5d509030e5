/* symbiote chat: an interactive, multi-turn conversation. Each line on stdin is a user turn; the
 * model's answer streams to stdout. The KV cache is kept between turns: only the new turn's text
 * is evaluated. The model's chat template (tokenizer.chat_template) picks the format; a model
 * without one continues the text as typed. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "infer/engine.h"

static void help(FILE *out) {
    fprintf(out,
            "usage: symbiote chat [-m MODEL] [--system TEXT] [options]\n"
            "Reads user turns from stdin, one per line; the answers stream to stdout.\n"
            "Lines: /reset starts over, /exit (or end of input) quits.\n\n"
            "      --system TEXT        system prompt\n"
            "      --chat-template NAME none, chatml, llama2, llama3, mistral, phi3, zephyr,\n"
            "                           gemma (default: detected from the model)\n"
            "  -n, --n-predict N        most tokens per answer (default 512)\n"
            "  -c, --ctx N              context length (default: the model's, at most 4096)\n");
    cli_sampling_help(out);
    fputc('\n', out);
    cli_common_help(out);
}

typedef struct answer {
    char *text;
    size_t len, cap;
} answer;

static int on_token(void *user, int32_t id, const char *text, size_t len) {
    answer *a = user;
    (void)id;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    if (a->len + len + 1 > a->cap) {
        size_t cap = (a->len + len + 1) * 2;
        char *p = realloc(a->text, cap);
        if (!p) return 1;
        a->text = p;
        a->cap = cap;
    }
    memcpy(a->text + a->len, text, len);
    a->len += len;
    a->text[a->len] = '\0';
    return 0;
}

/* Formats msgs into *buf (grown as needed); returns the length or -1 (error printed). */
static long format(sym_chat_template t, const sym_chat_msg *msgs, size_t n, bool gen, char **buf,
                   size_t *cap) {
    size_t len;
    sym_status st = sym_chat_format(t, msgs, n, gen, *buf, *cap, &len);
    if (st == SYM_ERR_RANGE) {
        char *p = realloc(*buf, len + 1);
        if (!p) return -1;
        *buf = p;
        *cap = len + 1;
        st = sym_chat_format(t, msgs, n, gen, *buf, *cap, &len);
    }
    if (st != SYM_OK) {
        cli_fail(st);
        return -1;
    }
    return (long)len;
}

int cmd_chat(int argc, char **argv) {
    cli_common c;
    cli_common_init(&c);
    sym_engine_params ep;
    sym_engine_params_init(&ep);
    sym_sampling sp;
    sym_sampling_init(&sp);
    bool seed_set = false;
    const char *system = NULL, *tmpl_name = NULL;
    long long n_predict = 512, v;
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
        if (i + 1 >= argc) return cli_usage_error("chat: unknown option or missing value '%s'", a);
        const char *val = argv[i + 1];
        if (!strcmp(a, "--system")) system = val;
        else if (!strcmp(a, "--chat-template")) tmpl_name = val;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!cli_parse_int(a, val, 1, 1 << 30, &n_predict)) return 2;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (!cli_parse_int(a, val, 1, 1 << 24, &v)) return 2;
            ep.n_ctx = (int)v;
        } else {
            return cli_usage_error("chat: unknown option '%s'", a);
        }
        i += 2;
    }
    if (cli_common_finish(&c)) return 1;
    if (cli_default_model(&c)) return 1;
    if (!seed_set) sp.seed = (uint64_t)time(NULL);
    cli_engine_params(&c, &ep);
    sym_engine *e = NULL;
    sym_status st = sym_engine_open_params(&ep, &e);
    if (st != SYM_OK) return cli_fail(st);
    sym_chat_template tmpl = sym_engine_chat_template(e);
    if (tmpl_name && (st = sym_chat_template_parse(tmpl_name, &tmpl)) != SYM_OK) {
        sym_engine_close(e);
        return cli_fail(st);
    }
    bool tty = isatty(STDIN_FILENO);
    if (tty)
        fprintf(stderr, "symbiote chat: %s, template %s, context %d tokens. /reset, /exit.\n",
                c.cfg.model_path, sym_chat_template_name(tmpl), sym_n_ctx(e));

    /* the conversation: messages own their strings */
    size_t n_msgs = 0, cap_msgs = 16, fmt_cap = 0;
    sym_chat_msg *msgs = malloc(cap_msgs * sizeof *msgs);
    char *fmt = NULL, *line = NULL;
    size_t line_cap = 0;
    long prev_len = 0;
    int rc = 0;
    if (!msgs) return cli_fail(SYM_FAIL(SYM_ERR_OOM, "chat: out of memory"));
    if (system) msgs[n_msgs++] = (sym_chat_msg){"system", strdup(system)};
    for (;;) {
        if (tty) fputs("> ", stderr);
        ssize_t n = getline(&line, &line_cap, stdin);
        if (n < 0) break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (!strcmp(line, "/exit")) break;
        if (!strcmp(line, "/reset")) {
            sym_reset(e);
            for (size_t k = system ? 1 : 0; k < n_msgs; k++) free((char *)msgs[k].content);
            n_msgs = system ? 1 : 0;
            prev_len = 0;
            continue;
        }
        if (n_msgs + 2 > cap_msgs) {
            sym_chat_msg *p = realloc(msgs, 2 * cap_msgs * sizeof *msgs);
            if (!p) break;
            msgs = p;
            cap_msgs *= 2;
        }
        msgs[n_msgs++] = (sym_chat_msg){"user", strdup(line)};
        long len = format(tmpl, msgs, n_msgs, true, &fmt, &fmt_cap);
        if (len < 0) {
            rc = 1;
            break;
        }
        answer ans = {NULL, 0, 0};
        st = sym_generate_append(e, fmt + prev_len, (size_t)(len - prev_len), 1, (int)n_predict,
                                 &sp, on_token, &ans);
        fputc('\n', stdout);
        fflush(stdout);
        if (st == SYM_ERR_RANGE) {
            fprintf(stderr, "symbiote: %s; /reset to start over\n", sym_last_error());
            free((char *)msgs[--n_msgs].content);
            free(ans.text);
            continue;
        }
        if (st != SYM_OK) {
            free(ans.text);
            rc = cli_fail(st);
            break;
        }
        msgs[n_msgs++] = (sym_chat_msg){"assistant", ans.text ? ans.text : strdup("")};
        len = format(tmpl, msgs, n_msgs, false, &fmt, &fmt_cap);
        if (len < 0) {
            rc = 1;
            break;
        }
        prev_len = len;
    }
    sym_metrics m;
    sym_metrics_get(e, &m);
    fprintf(stderr, "symbiote: %s | %llu prompt tokens evaluated, %.1f tok/s | %llu generated, "
            "%.1f tok/s | context used %d of %d\n", m.backend,
            (unsigned long long)m.prompt_tokens, m.prefill_tok_s,
            (unsigned long long)m.generated_tokens, m.decode_tok_s, sym_n_past(e), sym_n_ctx(e));
    for (size_t k = 0; k < n_msgs; k++) free((char *)msgs[k].content);
    free(msgs);
    free(fmt);
    free(line);
    sym_engine_close(e);
    return rc;
}
