/* generate.c — the smallest program using Symbiote's public API (the seed's vk_symbiote_example):
 * open a model, generate from a prompt with streaming output, print the metrics, close.
 *
 *   generate MODEL [PROMPT] [N_TOKENS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symbiote.h"

static int print_token(void *user, int32_t id, const char *text, size_t len) {
    (void)user;
    (void)id;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0; /* non-zero would stop generation */
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [PROMPT] [N_TOKENS]\n", argv[0]);
        return 2;
    }
    sym_engine_options opts;
    sym_engine_options_init(&opts);
    opts.model_path = argv[1];
    const char *prompt = argc > 2 ? argv[2] : "";
    int n_tokens = argc > 3 ? atoi(argv[3]) : 64;

    sym_engine *engine = NULL;
    sym_status st = sym_engine_open(&opts, &engine);
    if (st != SYM_OK) {
        fprintf(stderr, "open failed: %s: %s\n", sym_status_name(st), sym_last_error());
        return 1;
    }
    sym_sampling sampling;
    sym_sampling_init(&sampling);
    sampling.temperature = 0.0f; /* greedy: reproducible */

    fputs(prompt, stdout);
    st = sym_generate(engine, prompt, n_tokens, &sampling, print_token, NULL);
    putchar('\n');
    if (st != SYM_OK) {
        fprintf(stderr, "generate failed: %s: %s\n", sym_status_name(st), sym_last_error());
        sym_engine_close(engine);
        return 1;
    }
    sym_metrics m;
    sym_metrics_get(engine, &m);
    fprintf(stderr, "%s: %llu prompt tokens at %.1f tok/s, %llu generated at %.1f tok/s\n",
            m.backend, (unsigned long long)m.prompt_tokens, m.prefill_tok_s,
            (unsigned long long)m.generated_tokens, m.decode_tok_s);
    sym_engine_close(engine);
    return 0;
}
