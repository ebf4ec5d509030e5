/* symbiote — the command-line front end. Argument parsing and printing only; the work is in the
 * library. Exit codes: 0 success, 1 failure (the error is on stderr), 2 usage error. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "symbiote.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command k_commands[] = {
    {"run", cmd_run, "generate text from a prompt"},
    {"chat", cmd_chat, "interactive multi-turn chat (keeps the KV cache between turns)"},
    {"bench", cmd_bench, "measure prefill and decode speed (tokens/s)"},
    {"config", cmd_config, "print the effective configuration (INI)"},
    {"info", cmd_info, "describe a model: architecture, hyperparameters, tensors, tokenizer"},
    {"pack", cmd_pack, "write a model's packs into a compressed pack store (.sympack)"},
    {"make-model", cmd_make_model, "write a synthetic model with random weights (GGUF or safetensors)"},
    {"tokenize", cmd_tokenize, "print the token ids (or pieces) of a text"},
    {"devices", cmd_devices, "list Vulkan devices and their capabilities [--json]"},
    {"policy-sim", cmd_policy_sim, "replay a pack-access trace under eviction policies (LRU ... MIN)"},
};
#define N_COMMANDS (sizeof k_commands / sizeof k_commands[0])

static void usage(FILE *out) {
    fprintf(out, "usage: symbiote COMMAND [options]   (symbiote COMMAND --help for details)\n\n"
                 "Runs large unquantized language models on small GPUs through Vulkan.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-12s %s\n", k_commands[i].name, k_commands[i].summary);
    fputc('\n', out);
    cli_common_help(out);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("symbiote %s\n", sym_version());
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], k_commands[i].name)) return k_commands[i].fn(argc - 2, argv + 2);
    return cli_usage_error("unknown command '%s'", argv[1]);
}
